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

// OCP FP8 -> float, exact (REFERENCE.md section 2).
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

#ifndef KB_GEMM_TILED
// ---- gemv ---------------------------------------------------------------------------------
const uint NB = 4u; // tokens per pass
shared float red[NB][LOCAL];

void main() {
    uint t = gl_LocalInvocationID.x;
    for (uint i = t; i < 256u; i += LOCAL) {
        lut_a[i] = fp8_decode(i, A_E5M2);
        lut_b[i] = fp8_decode(i, B_E5M2);
    }
    barrier();
    uint mi = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (mi >= pc.m) return; // uniform per workgroup
    uint wrow = mi * pc.k;

    for (uint n0 = 0u; n0 < pc.n; n0 += NB) {
        uint cnt = min(NB, pc.n - n0);
        float acc[NB] = float[NB](0.0, 0.0, 0.0, 0.0);
        for (uint kk = t; kk < pc.k; kk += LOCAL) {
            float w = lut_a[uint(wq[wrow + kk])];
            uint kb = kk >> 7;
            for (uint j = 0u; j < NB; j++) {
                if (j >= cnt) break;
                float p = w * lut_b[uint(xq[(n0 + j) * pc.k + kk])];
                acc[j] += PER_BLOCK ? p * block_scale(mi, n0 + j, kb) : p;
            }
        }
        for (uint j = 0u; j < NB; j++) red[j][t] = acc[j];
        barrier();
        for (uint stride = LOCAL / 2u; stride > 0u; stride >>= 1) {
            if (t < stride)
                for (uint j = 0u; j < NB; j++) red[j][t] += red[j][t + stride];
            barrier();
        }
        if (t < cnt) store(n0 + t, mi, red[t][0] * final_scale(mi, n0 + t));
        barrier(); // red is reused by the next pass
    }
}

#else
// ---- tiled --------------------------------------------------------------------------------
const uint BM = 64u, BN = 64u, BK = 32u;
shared float ws[BK][BM];
shared float xs[BK][BN];

void main() {
    uint t = gl_LocalInvocationID.x;
    for (uint i = t; i < 256u; i += LOCAL) {
        lut_a[i] = fp8_decode(i, A_E5M2);
        lut_b[i] = fp8_decode(i, B_E5M2);
    }
    uint tiles_m = (pc.m + BM - 1u) / BM;
    uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint m0 = (tile % tiles_m) * BM;
    uint n0 = (tile / tiles_m) * BN;
    if (n0 >= pc.n) return; // uniform per workgroup
    uint tx = t % 16u, ty = t / 16u;
    barrier();

    float acc[4][4], part[4][4];
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) { acc[i][j] = 0.0; part[i][j] = 0.0; }

    for (uint k0 = 0u; k0 < pc.k; k0 += BK) {
        // Stage the W and X tiles as decoded floats; consecutive threads read consecutive k.
        for (uint e = t; e < BM * BK; e += LOCAL) {
            uint r = e / BK, c = e % BK;
            uint gm = m0 + r, gk = k0 + c;
            ws[c][r] = (gm < pc.m && gk < pc.k) ? lut_a[uint(wq[gm * pc.k + gk])] : 0.0;
        }
        for (uint e = t; e < BN * BK; e += LOCAL) {
            uint r = e / BK, c = e % BK;
            uint gn = n0 + r, gk = k0 + c;
            xs[c][r] = (gn < pc.n && gk < pc.k) ? lut_b[uint(xq[gn * pc.k + gk])] : 0.0;
        }
        barrier();
        for (uint c = 0u; c < BK; c++) {
            float a[4], b[4];
            for (uint i = 0u; i < 4u; i++) a[i] = ws[c][tx * 4u + i];
            for (uint j = 0u; j < 4u; j++) b[j] = xs[c][ty * 4u + j];
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) part[i][j] += a[i] * b[j];
        }
        barrier();
        // End of a 128-wide K block (or of K): fold the block's partial sums in, scaled.
        if (((k0 + BK) & 127u) == 0u || k0 + BK >= pc.k) {
            uint kb = k0 >> 7;
            for (uint i = 0u; i < 4u; i++)
                for (uint j = 0u; j < 4u; j++) {
                    uint mi = m0 + tx * 4u + i, ni = n0 + ty * 4u + j;
                    float s = (PER_BLOCK && mi < pc.m && ni < pc.n) ? block_scale(mi, ni, kb) : 1.0;
                    acc[i][j] += part[i][j] * s;
                    part[i][j] = 0.0;
                }
        }
    }
    for (uint j = 0u; j < 4u; j++) {
        uint ni = n0 + ty * 4u + j;
        if (ni >= pc.n) break;
        for (uint i = 0u; i < 4u; i++) {
            uint mi = m0 + tx * 4u + i;
            if (mi < pc.m) store(ni, mi, acc[i][j] * final_scale(mi, ni));
        }
    }
}
#endif
