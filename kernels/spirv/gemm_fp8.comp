#version 450
// gemm_fp8.comp - D[n][m] = sum_k W[m][k] X[n][k], scaled per kb_scale_mode (bench/kbench.h):
//   TENSOR: sa[0] sb[0]     OUTER: sa[m] sb[n]     (applied once, to the fp32 sum)
//   VEC128: sa[m][kb] sb[n][kb]    BLK128: sa[m/128][kb] sb[n][kb]  (kb = k/128, applied per
//   128-wide K block: D = sum_kb s(m,n,kb) * sum_{k in kb} W X)
// W and X are OCP FP8 bytes (e4m3 or e5m2, a specialization constant each), decoded exactly by
// bit manipulation into a 256-entry table per workgroup; products and sums are fp32.
// Output f32, or (-DKB_OUT16) f16 / bf16 bits rounded to nearest even here, f16 overflowing to
// inf (IEEE), bf16 NaN kept quiet.
//
// Two -D builds of the loop:
//   default        "gemv": one workgroup of 128 threads per output row m; thread t takes
//                  k = t, t+128, ... (one element of every 128-block), 4 tokens at a time, then
//                  a shared-memory tree sum. For small n (decode).
//   KB_GEMM_TILED  "tiled64": 64(m) x 64(n) output tile per workgroup of 256 threads, 4x4
//                  outputs each, K in steps of 32 staged in shared memory as decoded floats.
// Needs storageBuffer8BitAccess (the fp8 bytes); the 16-bit output build also needs
// storageBuffer16BitAccess.
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_control_flow_attributes : require // [[unroll]] on the 4-wide loops
#ifdef KB_OUT16
#extension GL_EXT_shader_16bit_storage : require
#endif

#ifdef KB_GEMM_TILED
#define LOCAL 256u
#else
#define LOCAL 128u
#endif
layout(local_size_x = LOCAL) in;

layout(std430, set = 0, binding = 0) readonly buffer W { uint8_t wq[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { uint8_t xq[]; };
// The same buffers as 32-bit words: 4 fp8 values per load when k % 4 == 0.
layout(std430, set = 0, binding = 0) readonly buffer W32 { uint w32[]; };
layout(std430, set = 0, binding = 1) readonly buffer X32 { uint x32[]; };
layout(std430, set = 0, binding = 2) readonly buffer SA { float sa[]; };
layout(std430, set = 0, binding = 3) readonly buffer SB { float sb[]; };
#ifdef KB_OUT16
layout(std430, set = 0, binding = 4) writeonly buffer D16 { uint16_t d16[]; };
#else
layout(std430, set = 0, binding = 4) writeonly buffer D32 { float d32[]; };
#endif

layout(push_constant) uniform Push {
    uint m;
    uint n;
    uint k;
    uint kblocks; // ceil(k / 128)
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten
layout(constant_id = 1) const bool A_E5M2 = false;
layout(constant_id = 2) const bool B_E5M2 = false;
layout(constant_id = 3) const uint SCALE_MODE = 0;          // kb_scale_mode
layout(constant_id = 4) const uint OUT_MODE = 0;            // 0 f32, 1 f16, 2 bf16

const uint SCALE_TENSOR = 0u, SCALE_OUTER = 1u, SCALE_VEC128 = 2u, SCALE_BLK128 = 3u;

// OCP FP8 -> float, exact (OCP 8-bit Floating Point Specification (OFP8) rev 1.0).
// e4m3: bias 7, subnormals m * 2^-9, S.1111.111 is NaN, no inf.
// e5m2: bias 15, subnormals m * 2^-16, exponent 31 is inf (m == 0) or NaN.
float fp8_decode(uint b, bool e5m2) {
    uint sign = (b & 0x80u) << 24;
    float v;
    if (!e5m2) {
        uint e = (b >> 3) & 15u, mant = b & 7u;
        if (e == 15u && mant == 7u) return uintBitsToFloat(0x7fc00000u);
        if (e == 0u) v = float(mant) * 0.001953125; // 2^-9
        else return uintBitsToFloat(sign | ((e + 120u) << 23) | (mant << 20));
    } else {
        uint e = (b >> 2) & 31u, mant = b & 3u;
        if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (mant << 21));
        if (e == 0u) v = float(mant) * 1.52587890625e-5; // 2^-16
        else return uintBitsToFloat(sign | ((e + 112u) << 23) | (mant << 21));
    }
    return sign != 0u ? -v : v;
}

#ifdef KB_OUT16
// float -> IEEE binary16 bits, round to nearest even, overflow to inf (values >= 65520).
uint f32_to_f16_bits(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u;      // NaN (quiet)
    if (ax >= 0x477ff000u) return sign | 0x7c00u;     // >= 65520: rounds past 65504 -> inf
    if (ax < 0x38800000u) {                           // below 2^-14: half subnormal, unit 2^-24
        // |f| * 2^24 is exact (power of two); roundEven is exact.
        return sign | uint(roundEven(uintBitsToFloat(ax) * 16777216.0));
    }
    uint r = ax - 0x38000000u;                        // rebias exponent 127 -> 15
    r += 0x0fffu + ((r >> 13) & 1u);                  // round to nearest even at bit 13
    return sign | (r >> 13);
}
// float -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN.
uint f32_to_bf16_bits(float f) {
    uint x = floatBitsToUint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;
    return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}
#endif

void store(uint row_n, uint col_m, float v) {
    uint idx = row_n * pc.m + col_m;
    if (KB_SHORT_WRITE && idx == pc.n * pc.m - 1u) return;
#ifdef KB_OUT16
    d16[idx] = uint16_t(OUT_MODE == 1u ? f32_to_f16_bits(v) : f32_to_bf16_bits(v));
#else
    d32[idx] = v;
#endif
}

// Scale of K block kb for output (mi, ni) in the per-block modes.
float block_scale(uint mi, uint ni, uint kb) {
    uint arow = (SCALE_MODE == SCALE_BLK128) ? (mi / 128u) : mi;
    return sa[arow * pc.kblocks + kb] * sb[ni * pc.kblocks + kb];
}
// Scale applied once to the whole sum in the TENSOR / OUTER modes (1 otherwise).
float final_scale(uint mi, uint ni) {
    if (SCALE_MODE == SCALE_TENSOR) return sa[0] * sb[0];
    if (SCALE_MODE == SCALE_OUTER) return sa[mi] * sb[ni];
    return 1.0;
}
const bool PER_BLOCK = (SCALE_MODE == SCALE_VEC128 || SCALE_MODE == SCALE_BLK128);

shared float lut_a[256];
shared float lut_b[256];

void fill_luts(uint t) {
    for (uint i = t; i < 256u; i += LOCAL) {
        lut_a[i] = fp8_decode(i, A_E5M2);
        lut_b[i] = fp8_decode(i, B_E5M2);
    }
}
// Four fp8 values packed little-endian in a word, decoded through a table.
vec4 unpack_a(uint w) { return vec4(lut_a[w & 255u], lut_a[(w >> 8) & 255u], lut_a[(w >> 16) & 255u], lut_a[w >> 24]); }
vec4 unpack_b(uint w) { return vec4(lut_b[w & 255u], lut_b[(w >> 8) & 255u], lut_b[(w >> 16) & 255u], lut_b[w >> 24]); }

#ifndef KB_GEMM_TILED
// ---- gemv ---------------------------------------------------------------------------------
// Tokens 4 at a time in a vec4 accumulator. When k % 4 == 0 every row starts on a word, so
// each thread reads 4 fp8 values of W and of each X row as one 32-bit word (the 4 values lie in
// one 128-block, as 4 divides 128); otherwise it reads single bytes.
shared vec4 red[LOCAL];

void main() {
    uint t = gl_LocalInvocationID.x;
    fill_luts(t);
    barrier();
    uint mi = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (mi >= pc.m) return; // uniform per workgroup
    bool words = (pc.k & 3u) == 0u;

    for (uint n0 = 0u; n0 < pc.n; n0 += 4u) {
        // Rows past n are clamped to the last one: computed, never stored.
        uvec4 nj = min(uvec4(n0, n0 + 1u, n0 + 2u, n0 + 3u), uvec4(pc.n - 1u));
        vec4 acc = vec4(0.0);
        if (words) {
            uint kw_n = pc.k >> 2;
            for (uint kw = t; kw < kw_n; kw += LOCAL) {
                vec4 w = unpack_a(w32[mi * kw_n + kw]);
                vec4 p = vec4(dot(w, unpack_b(x32[nj.x * kw_n + kw])), dot(w, unpack_b(x32[nj.y * kw_n + kw])),
                              dot(w, unpack_b(x32[nj.z * kw_n + kw])), dot(w, unpack_b(x32[nj.w * kw_n + kw])));
                if (PER_BLOCK) {
                    uint kb = kw >> 5; // (4 kw) / 128
                    p *= vec4(block_scale(mi, nj.x, kb), block_scale(mi, nj.y, kb), block_scale(mi, nj.z, kb),
                              block_scale(mi, nj.w, kb));
                }
                acc += p;
            }
        } else {
            for (uint kk = t; kk < pc.k; kk += LOCAL) {
                float w = lut_a[uint(wq[mi * pc.k + kk])];
                vec4 p = w * vec4(lut_b[uint(xq[nj.x * pc.k + kk])], lut_b[uint(xq[nj.y * pc.k + kk])],
                                  lut_b[uint(xq[nj.z * pc.k + kk])], lut_b[uint(xq[nj.w * pc.k + kk])]);
                if (PER_BLOCK) {
                    uint kb = kk >> 7;
                    p *= vec4(block_scale(mi, nj.x, kb), block_scale(mi, nj.y, kb), block_scale(mi, nj.z, kb),
                              block_scale(mi, nj.w, kb));
                }
                acc += p;
            }
        }
        red[t] = acc;
        barrier();
        for (uint stride = LOCAL / 2u; stride > 0u; stride >>= 1) {
            if (t < stride) red[t] += red[t + stride];
            barrier();
        }
        if (t < 4u && n0 + t < pc.n) store(n0 + t, mi, red[0][t] * final_scale(mi, n0 + t));
        barrier(); // red is reused by the next pass
    }
}

#else
// ---- tiled --------------------------------------------------------------------------------
// Shared tiles hold decoded floats as vec4 along the output dimension, so each thread's 4x4
// block is two vec4 reads and one outer product per k (a mat4 accumulator, no dynamically
// indexed arrays: those become scratch memory on some compilers, lavapipe's among them).
const uint BM = 64u, BN = 64u, BK = 32u;
shared vec4 ws4[BK][BM / 4u]; // ws4[c][q][i] = W[m0 + 4q + i][k0 + c]
shared vec4 xs4[BK][BN / 4u]; // xs4[c][q][j] = X[n0 + 4q + j][k0 + c]

// Scales of 4 consecutive m rows (W side) and 4 consecutive n rows (X side) for block kb.
vec4 scale_a4(uint mbase, uint kb) {
    vec4 r;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint mi = min(mbase + i, pc.m - 1u);
        r[i] = (SCALE_MODE == SCALE_OUTER) ? sa[mi]
             : (SCALE_MODE == SCALE_TENSOR) ? sa[0]
             : sa[((SCALE_MODE == SCALE_BLK128) ? mi / 128u : mi) * pc.kblocks + kb];
    }
    return r;
}
vec4 scale_b4(uint nbase, uint kb) {
    vec4 r;
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint ni = min(nbase + j, pc.n - 1u);
        r[j] = (SCALE_MODE == SCALE_OUTER) ? sb[ni] : (SCALE_MODE == SCALE_TENSOR) ? sb[0] : sb[ni * pc.kblocks + kb];
    }
    return r;
}

void main() {
    uint t = gl_LocalInvocationID.x;
    fill_luts(t);
    uint tiles_m = (pc.m + BM - 1u) / BM;
    uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint m0 = (tile % tiles_m) * BM;
    uint n0 = (tile / tiles_m) * BN;
    if (n0 >= pc.n) return; // uniform per workgroup
    uint tx = t % 16u, ty = t / 16u;
    bool words = (pc.k & 3u) == 0u;
    barrier();

    mat4 acc = mat4(0.0), part = mat4(0.0); // [j][i]: n = n0 + 4 ty + j, m = m0 + 4 tx + i

    for (uint k0 = 0u; k0 < pc.k; k0 += BK) {
        // Stage the tiles as decoded floats: 8 words (32 k) per row, consecutive threads on
        // consecutive words of a row; zeros outside the matrix.
        if (words) {
            uint kw_n = pc.k >> 2;
            for (uint e = t; e < BM * BK / 4u; e += LOCAL) {
                uint r = e / (BK / 4u), cw = e % (BK / 4u);
                uint gm = m0 + r, gk = k0 + 4u * cw;
                vec4 v = (gm < pc.m && gk < pc.k) ? unpack_a(w32[gm * kw_n + (gk >> 2)]) : vec4(0.0);
                [[unroll]] for (uint b = 0u; b < 4u; b++) ws4[4u * cw + b][r >> 2][r & 3u] = v[b];
            }
            for (uint e = t; e < BN * BK / 4u; e += LOCAL) {
                uint r = e / (BK / 4u), cw = e % (BK / 4u);
                uint gn = n0 + r, gk = k0 + 4u * cw;
                vec4 v = (gn < pc.n && gk < pc.k) ? unpack_b(x32[gn * kw_n + (gk >> 2)]) : vec4(0.0);
                [[unroll]] for (uint b = 0u; b < 4u; b++) xs4[4u * cw + b][r >> 2][r & 3u] = v[b];
            }
        } else {
            for (uint e = t; e < BM * BK; e += LOCAL) {
                uint r = e / BK, c = e % BK;
                uint gm = m0 + r, gk = k0 + c;
                ws4[c][r >> 2][r & 3u] = (gm < pc.m && gk < pc.k) ? lut_a[uint(wq[gm * pc.k + gk])] : 0.0;
            }
            for (uint e = t; e < BN * BK; e += LOCAL) {
                uint r = e / BK, c = e % BK;
                uint gn = n0 + r, gk = k0 + c;
                xs4[c][r >> 2][r & 3u] = (gn < pc.n && gk < pc.k) ? lut_b[uint(xq[gn * pc.k + gk])] : 0.0;
            }
        }
        barrier();
        for (uint c = 0u; c < BK; c++) part += outerProduct(ws4[c][tx], xs4[c][ty]);
        barrier();
        // End of a 128-wide K block (or of K): fold the block's partial sums in, scaled.
        if (((k0 + BK) & 127u) == 0u || k0 + BK >= pc.k) {
            if (PER_BLOCK) {
                uint kb = k0 >> 7;
                acc += matrixCompMult(part, outerProduct(scale_a4(m0 + 4u * tx, kb), scale_b4(n0 + 4u * ty, kb)));
            } else {
                acc += part;
            }
            part = mat4(0.0);
        }
    }
    if (!PER_BLOCK) acc = matrixCompMult(acc, outerProduct(scale_a4(m0 + 4u * tx, 0u), scale_b4(n0 + 4u * ty, 0u)));
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint ni = n0 + ty * 4u + j;
        if (ni >= pc.n) break;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint mi = m0 + tx * 4u + i;
            if (mi < pc.m) store(ni, mi, acc[j][i]);
        }
    }
}
#endif
