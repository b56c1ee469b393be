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
// Three -D builds of the loop:
//   default        "gemv": one workgroup of 128 threads per output row m; thread t takes
//                  k = t, t+128, ... (one element of every 128-block), 4 tokens at a time, then
//                  a shared-memory tree sum. For small n (decode).
//   KB_GEMV_SG     "gemv_sg": ROWS output rows per subgroup, 16-byte loads of W (16 values a
//                  lane), every token (n <= 16) at once so W is read once, X staged in shared
//                  memory as decoded floats, a subgroupAdd per output (see the section below).
//   KB_GEMM_TILED  "tiled64": 64(m) x 64(n) output tile per workgroup of 256 threads, 4x4
//                  outputs each, K in steps of 32 staged in shared memory as decoded floats.
// Needs storageBuffer8BitAccess (the fp8 bytes); the 16-bit output build also needs
// storageBuffer16BitAccess; gemv_sg needs subgroup basic + arithmetic operations in compute.
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_control_flow_attributes : require // [[unroll]] on the 4-wide loops
#ifdef KB_OUT16
#extension GL_EXT_shader_16bit_storage : require
#endif
#ifdef KB_GEMV_SG
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#if defined(KB_GEMV_SG)
layout(local_size_x_id = 5) in; // the plan's subgroups per workgroup x its subgroup size
#elif defined(KB_GEMM_TILED)
#define LOCAL 256u
layout(local_size_x = LOCAL) in;
#else
#define LOCAL 128u
layout(local_size_x = LOCAL) in;
#endif

layout(std430, set = 0, binding = 0) readonly buffer W { uint8_t wq[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { uint8_t xq[]; };
// The same buffers as 32-bit words: 4 fp8 values per load when k % 4 == 0.
layout(std430, set = 0, binding = 0) readonly buffer W32 { uint w32[]; };
layout(std430, set = 0, binding = 1) readonly buffer X32 { uint x32[]; };
#ifdef KB_GEMV_SG
// And W as 16-byte vectors: 16 fp8 values per load when every row starts on 16 bytes.
layout(std430, set = 0, binding = 0) readonly buffer W128 { uvec4 w128[]; };
#endif
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
#ifdef KB_GEMV_SG
    uint flags;   // bit 0: W rows start on 16 bytes (uvec4 loads); bit 1: W and X rows start on 4 bytes
#endif
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

#ifndef KB_GEMV_SG
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
#endif

#if defined(KB_GEMV_SG)
// ---- gemv_sg ------------------------------------------------------------------------------
// A workgroup is NSG subgroups of SG lanes; subgroup g owns output rows m0 + g*ROWS + r
// (r < ROWS) for every token (NTOK = n <= 16), so each W byte is read once. K goes in chunks of
// CK = 16*USL*SG: the whole workgroup decodes the chunk of X (NTOK rows) into shared memory
// (floats, times dec_factor: dec4 or, XDEC = 1, dec4h); each lane takes the 16-wide slices lane, lane + SG, ...
// of the chunk: one uvec4 (16 fp8 values) of each of its ROWS rows, decoded in registers by bit
// manipulation, times 4 vec4 of each token's X from shared memory (consecutive lanes read
// consecutive vec4: no bank conflicts). The next chunk's W is loaded before this chunk is
// computed, so its latency overlaps the compute and the next staging (when one chunk covers K,
// ONE_CHUNK, every W load of a lane is issued at the start). At the end one subgroupAdd
// per (row, token) and one lane stores it.
// Math contract as gemv: products are exact in fp32 (both decodes exact; the power-of-two factors
// are exact and removed at the end); TENSOR/OUTER: one fp32 sum, scaled once; VEC128/BLK128: each
// lane's 16-value partial sum of a block is multiplied by sa*sb of that block (a slice never
// straddles a block: 16 divides 128), then summed.
// The plan sizes the workgroup by the subgroup size the device reports; a device that runs
// another subgroup size (not allowed for SPIR-V 1.5 compute shaders without
// VK_EXT_subgroup_size_control) gets NaN outputs, never silently missing rows.
layout(constant_id = 6) const uint ROWS = 2u; // output rows per subgroup
layout(constant_id = 7) const uint NTOK = 1u; // tokens: n itself (1..16)
layout(constant_id = 8) const uint SG = 32u;  // the subgroup size the plan assumed
layout(constant_id = 9) const uint USL = 1u;  // 16-byte slices per lane per row in a K chunk
layout(constant_id = 10) const bool ONE_CHUNK = false; // USL covers K: no next chunk to load
layout(constant_id = 11) const uint WDEC = 0u; // W's decode: 0 through f32 bits (dec4), 1 through binary16 (dec4h)
layout(constant_id = 12) const uint XDEC = 0u; // X's decode (the staging), the same choice
const uint NSG = gl_WorkGroupSize.x / SG;     // subgroups per workgroup
const uint CSL = USL * SG;                    // 16-wide K slices per chunk
const uint CK = 16u * CSL;                    // K per chunk
const uint STAGE_IT = (CK / 4u + gl_WorkGroupSize.x - 1u) / gl_WorkGroupSize.x; // X words per invocation per token
// xs[(n*4 + q)*CSL + s] = X[n][c0 + 16s + 4q .. +4], decoded and scaled
shared vec4 xs[NTOK * 4u * CSL];

// Four fp8 values (one word, little-endian) -> S * value, S = 2^8 (e4m3) or 2^16 (e5m2), exactly
// and without a subnormal float anywhere (Vulkan devices may flush them). Each byte's 7
// magnitude bits go to f32 bits 20..26 (e4m3 eeee.mmm) or 21..27 (e5m2 eeeee.mm) under exponent
// bit 30: for e >= 1 that float is g = 2^(e+1) * 1.m = S * value; for e = 0 (zero, subnormals)
// it is g = 2 + S*value/2. So S*value = min(g, 2g - 4): for e >= 1, g >= 4 so 2g - 4 >= g; for
// e = 0, 2g - 4 = S*value exactly (g - 2 is exact, Sterbenz) and <= g. The sign bit is OR'd in.
// The e4m3 NaN and e5m2 inf/NaN codes come out finite here: callers test words with special4
// and fix those (fix4).
vec4 dec4(uint w, bool e5m2) {
    uint sh = e5m2 ? 21u : 20u;
    uvec4 b = uvec4(w << sh, w << (sh - 8u), w << (sh - 16u), w >> (24u - sh));
    vec4 g = uintBitsToFloat((b & (0x7fu << sh)) | 0x40000000u);
    vec4 v = min(g, fma(g, vec4(2.0), vec4(-4.0))); // 2g is exact: fused or not, one rounding
    uvec4 sgn = uvec4(w << 24u, w << 16u, w << 8u, w) & 0x80000000u;
    return uintBitsToFloat(floatBitsToUint(v) | sgn);
}
// Per byte, whether it is an e4m3 NaN (magnitude 0x7f) or an e5m2 inf/NaN (exponent 31): adding
// 1 (4) to the masked magnitude carries into bit 7 exactly for those (never into the next byte).
uint special4(uint w, bool e5m2) {
    return e5m2 ? ((w & 0x7c7c7c7cu) + 0x04040404u) & 0x80808080u : ((w & 0x7f7f7f7fu) + 0x01010101u) & 0x80808080u;
}
// Any of 16 (one test for the four words).
bool special16(uvec4 w, bool e5m2) {
    uint mask = e5m2 ? 0x7c7c7c7cu : 0x7f7f7f7fu, one = e5m2 ? 0x04040404u : 0x01010101u;
    uvec4 t = (w & mask) + one;
    return ((t.x | t.y | t.z | t.w) & 0x80808080u) != 0u;
}
// dec4's value for such a code has its exponent bits all set here: e4m3 0x7f -> 2^16 * 1.875
// becomes NaN; e5m2 exponent 31 -> 2^32 * 1.mm keeps mm: +-inf for mm = 0, NaN otherwise. t is
// special4(w): bit 8i+7 flags byte i.
vec4 fix4(vec4 v, uint t, bool e5m2) {
    uvec4 f = uvec4(ivec4(uvec4(t << 24u, t << 16u, t << 8u, t)) >> 31) & (e5m2 ? 0x7f800000u : 0x7fc00000u);
    return uintBitsToFloat(floatBitsToUint(v) | f);
}

// 16 W bytes of row `row` from k (k < K), zeros past K.
uvec4 load_w16(uint row, uint k) {
    uint base = row * pc.k + k;
    if ((pc.flags & 1u) != 0u) return w128[base >> 4];
    uvec4 v = uvec4(0u);
    if ((pc.flags & 2u) != 0u) { // K % 4 == 0: words
        [[unroll]] for (uint q = 0u; q < 4u; q++)
            if (k + 4u * q < pc.k) v[q] = w32[(base >> 2) + q];
    } else {
        [[unroll]] for (uint b = 0u; b < 16u; b++)
            if (k + b < pc.k) v[b >> 2] |= uint(wq[base + b]) << (8u * (b & 3u));
    }
    return v;
}
// 4 X bytes of token n from k, zeros past K.
uint load_x4(uint n, uint k) {
    if (k >= pc.k) return 0u;
    uint base = n * pc.k + k;
    if ((pc.flags & 2u) != 0u) return x32[base >> 2];
    uint w = 0u;
    [[unroll]] for (uint b = 0u; b < 4u; b++)
        if (k + b < pc.k) w |= uint(xq[base + b]) << (8u * b);
    return w;
}
// Four fp8 values -> H * value through binary16 bits and unpackHalf2x16 (WDEC = 1): fewer
// integer operations than dec4 (two values a 32-bit operation), the conversion is the hardware's.
// e5m2 is binary16 with its low byte zero (H = 1, inf and NaN included: nothing to fix). e4m3's
// sign goes to bit 15 and its 7 magnitude bits eeee.mmm to bits 13..7, i.e. binary16 exponent
// 0eeee and mantissa mmm0000000: 2^(e-15) * 1.mmm against e4m3's 2^(e-7) * 1.mmm, and for e = 0
// binary16's subnormal 2^-14 * 0.mmm against 2^-6 * 0.mmm: H = 2^-8 both (the selftest checks
// every code, on a device that flushed binary16 subnormals it would fail). e4m3's NaN code comes
// out finite (binary16 1.875, H * 480): fixed as in dec4 (special4 / fix4). Output: bytes 0..3.
vec4 dec4h(uint w, bool e5m2) {
    uint lo, hi; // binary16 pairs: (byte 0, byte 2) and (byte 1, byte 3)
    if (e5m2) {
        lo = (w << 8) & 0xff00ff00u;
        hi = w & 0xff00ff00u;
    } else {
        lo = ((w << 8) & 0x80008000u) | ((w << 7) & 0x3f803f80u);
        hi = (w & 0x80008000u) | ((w >> 1) & 0x3f803f80u);
    }
    vec2 a = unpackHalf2x16(lo), b = unpackHalf2x16(hi);
    return vec4(a.x, b.x, a.y, b.y);
}
// The decode of an operand: dec4 (f32 bits, values times S) or, h16, dec4h (binary16 bits, times
// H). Codes left to fix (fix4) after it: e4m3's NaN by either, e5m2's inf/NaN by dec4 only.
vec4 dec4_by(uint w, bool e5m2, bool h16) { return h16 ? dec4h(w, e5m2) : dec4(w, e5m2); }
bool leaves_specials(bool e5m2, bool h16) { return !(h16 && e5m2); }
// The factor S or H that decode's values carry (a power of two, removed at the end).
float dec_factor(bool e5m2, bool h16) { return h16 ? (e5m2 ? 1.0 : 0.00390625) : (e5m2 ? 65536.0 : 256.0); }
// 4 fp8 values -> factor * value, the NaN / inf codes fixed.
vec4 dec4_checked(uint w, bool e5m2, bool h16) {
    vec4 v = dec4_by(w, e5m2, h16);
    if (!leaves_specials(e5m2, h16)) return v;
    uint t = special4(w, e5m2);
    return t != 0u ? fix4(v, t, e5m2) : v;
}
// 16 fp8 values (one uvec4) -> factor * value, the NaN / inf codes fixed (rare: one test for all 16).
void dec16(uvec4 q, bool e5m2, bool h16, out vec4 d0, out vec4 d1, out vec4 d2, out vec4 d3) {
    d0 = dec4_by(q.x, e5m2, h16);
    d1 = dec4_by(q.y, e5m2, h16);
    d2 = dec4_by(q.z, e5m2, h16);
    d3 = dec4_by(q.w, e5m2, h16);
    if (leaves_specials(e5m2, h16) && special16(q, e5m2)) {
        d0 = fix4(d0, special4(q.x, e5m2), e5m2);
        d1 = fix4(d1, special4(q.y, e5m2), e5m2);
        d2 = fix4(d2, special4(q.z, e5m2), e5m2);
        d3 = fix4(d3, special4(q.w, e5m2), e5m2);
    }
}
// a0..a3 . b0..b3: 16 products (exact in fp32, so fused or not the same), two chains of 8.
float dot16(vec4 a0, vec4 a1, vec4 a2, vec4 a3, vec4 b0, vec4 b1, vec4 b2, vec4 b3) {
    float s = a0.x * b0.x, t = a2.x * b2.x;
    [[unroll]] for (uint i = 1u; i < 4u; i++) {
        s = fma(a0[i], b0[i], s);
        t = fma(a2[i], b2[i], t);
    }
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        s = fma(a1[i], b1[i], s);
        t = fma(a3[i], b3[i], t);
    }
    return s + t;
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint m_wg = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * (NSG * ROWS);
    if (m_wg >= pc.m) return; // uniform per workgroup
    if (gl_SubgroupSize != SG || gl_NumSubgroups != NSG) { // uniform too: the layout is not the plan's
        for (uint i = gl_LocalInvocationIndex; i < NSG * ROWS * NTOK; i += gl_WorkGroupSize.x) {
            uint mi = m_wg + i % (NSG * ROWS);
            if (mi < pc.m) store(i / (NSG * ROWS), mi, uintBitsToFloat(0x7fc00000u));
        }
        return;
    }
    uint row0 = m_wg + gl_SubgroupID * ROWS; // rows past m are clamped for loading, never stored
    float acc[ROWS * NTOK];
    [[unroll]] for (uint i = 0u; i < ROWS * NTOK; i++) acc[i] = 0.0;

    uvec4 wnext[ROWS * USL]; // [r*USL + j]: slice j of row r in the next chunk
    [[unroll]] for (uint r = 0u; r < ROWS; r++)
        [[unroll]] for (uint j = 0u; j < USL; j++) {
            uint k = 16u * (j * SG + lane);
            wnext[r * USL + j] = k < pc.k ? load_w16(min(row0 + r, pc.m - 1u), k) : uvec4(0u);
        }

    for (uint c0 = 0u; c0 < pc.k; c0 += CK) {
        barrier(); // every subgroup is done with the previous chunk's xs
        // (a fixed trip count, unrolled: each invocation's X loads are all in flight at once)
        [[unroll]] for (uint n = 0u; n < NTOK; n++)
            [[unroll]] for (uint it = 0u; it < STAGE_IT; it++) {
                uint i = it * gl_WorkGroupSize.x + gl_LocalInvocationIndex;
                uint s = i % CSL, q = i / CSL; // consecutive invocations write consecutive vec4
                if (i < CK / 4u) xs[(n * 4u + q) * CSL + s] =
                    dec4_checked(load_x4(n, c0 + 16u * s + 4u * q), B_E5M2, XDEC == 1u);
            }
        barrier();

        uvec4 wcur[ROWS * USL]; // (arrays sized by specialization constants copy element-wise)
        [[unroll]] for (uint i = 0u; i < ROWS * USL; i++) wcur[i] = wnext[i];
        if (!ONE_CHUNK && c0 + CK < pc.k) {
            [[unroll]] for (uint r = 0u; r < ROWS; r++)
                [[unroll]] for (uint j = 0u; j < USL; j++) {
                    uint k = c0 + CK + 16u * (j * SG + lane);
                    wnext[r * USL + j] = k < pc.k ? load_w16(min(row0 + r, pc.m - 1u), k) : uvec4(0u);
                }
        }

        [[unroll]] for (uint j = 0u; j < USL; j++) {
            uint s = j * SG + lane;
            uint k = c0 + 16u * s;
            if (k >= pc.k) break; // later slices of this lane lie further out
            vec4 wd[ROWS * 4u];
            [[unroll]] for (uint r = 0u; r < ROWS; r++)
                dec16(wcur[r * USL + j], A_E5M2, WDEC == 1u, wd[4u * r], wd[4u * r + 1u], wd[4u * r + 2u],
                      wd[4u * r + 3u]);
            uint kb = k >> 7;
            float sar[ROWS];
            [[unroll]] for (uint r = 0u; r < ROWS; r++) {
                uint mi = min(row0 + r, pc.m - 1u);
                sar[r] = PER_BLOCK ? sa[((SCALE_MODE == SCALE_BLK128) ? mi / 128u : mi) * pc.kblocks + kb] : 1.0;
            }
            [[unroll]] for (uint n = 0u; n < NTOK; n++) {
                vec4 x0 = xs[(n * 4u) * CSL + s], x1 = xs[(n * 4u + 1u) * CSL + s];
                vec4 x2 = xs[(n * 4u + 2u) * CSL + s], x3 = xs[(n * 4u + 3u) * CSL + s];
                float sbn = PER_BLOCK ? sb[n * pc.kblocks + kb] : 1.0;
                [[unroll]] for (uint r = 0u; r < ROWS; r++) {
                    // the slice's 16 products summed apart (independent chains across slices
                    // and rows: latency hidden at n = 1 too), then added in, scaled per block
                    uint i = r * NTOK + n;
                    float p = dot16(wd[4u * r], wd[4u * r + 1u], wd[4u * r + 2u], wd[4u * r + 3u], x0, x1, x2, x3);
                    acc[i] = PER_BLOCK ? fma(p, sar[r] * sbn, acc[i]) : acc[i] + p;
                }
            }
        }
    }

    // Undo the decode's factors (powers of two: exact), then the output scale as gemv does.
    float unscale = 1.0 / (dec_factor(A_E5M2, WDEC == 1u) * dec_factor(B_E5M2, XDEC == 1u));
    [[unroll]] for (uint r = 0u; r < ROWS; r++)
        [[unroll]] for (uint n = 0u; n < NTOK; n++) {
            float v = subgroupAdd(acc[r * NTOK + n]); // every lane, then one stores
            uint mi = row0 + r;
            if (lane == (n * ROWS + r) % SG && mi < pc.m) store(n, mi, v * unscale * final_scale(mi, n));
        }
}

#elif !defined(KB_GEMM_TILED)
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
