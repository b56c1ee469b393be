// gemm_fp8.cu - FP8 GEMM for small N ("GEMV-style"): D[n][m] = scale * sum_k W[m][k] X[n][k].
//
// W is a_type [M][K] (the weights), X is b_type [N][K] (the tokens), D is out_type [N][M].
// Compiled by NVRTC at run time; the backend passes -D options (the tunables):
//   v1: WARPS (warps per block, one output row each), NB (tokens per block)
//   v2: WARPS (warps per block, splitting K), UNROLL (64-wide K chunks in flight per warp),
//       NT (n8 token tiles per block: 2 = 16 tokens; 1 = 8 tokens and fewer registers,
//       room for a deeper UNROLL), LDHINT (W's loads: 1 plain, 2 L2::256B prefetch),
//       PDL (1: a programmatic dependent launch, pdl.cuh: W's first chunks load before
//       the wait for the previous kernel, X and the scales after), MINB (__launch_bounds__
//       blocks/SM, 0 none: fewer registers, so more blocks an SM, ours and the next kernel's),
//       MT (m16 row tiles a block, 1 or 2: each token's X converted once for all of them),
//       FMTT (0: the formats read at every conversion; 1: one compiled copy per format pair),
//       MMA8 (0: fp8 -> f16 conversions and mma.m16n8k16 .f16; 1: the fp8 bytes straight into
//       mma.m16n8k32 .e4m3/.e5m2, sm_89+: none of our conversions, half the mma instructions;
//       on sm_90 ptxas converts and issues HMMA itself; NT up to 8)
//   v3: see its section (PDL: every W copy is queued before the wait)
//   v4: WARPS (warps per block), RPW (rows of W a warp), NB (tokens per block), LOADS
//       (16-byte pieces a lane has in flight per row), MINB (__launch_bounds__ blocks/SM)
//   v5: WARPS (warps per block, splitting K), NT (as v2), RING (64-wide chunks a warp has
//       in flight), PER_SM (blocks an SM holds: the grid is at most sm_count * PER_SM)
// Scale mode, output type and the fp8 formats (fmt bit 0: W is e5m2, bit 1: X is e5m2;
// e4m3 otherwise) are run-time arguments: uniform branches, a few instructions per
// conversion, and one compiled module per variant instead of four.
//
// Scale modes (bench/kbench.h), kb = ceil(K/128):
//   0 TENSOR sa[0]*sb[0]     1 OUTER sa[m]*sb[n]
//   2 VEC128 sa[m][kb]*sb[n][kb]   3 BLK128 sa[m/128][kb]*sb[n][kb]
// Every fp8 value is decoded exactly; products of two fp8 values are exact in fp32
// (4+4 significant bits) and in the f16 tensor-core path (fp8 -> f16 is exact, and
// HMMA multiplies f16 exactly into an fp32 accumulator). Sums are fp32, except inside one
// MMA8=1 step where the device has an fp8 mma.sync (sm_89): the fp8 tensor core aligns a
// step's 32 products to the largest and keeps about 14 bits (DeepSeek-V3 report, section
// 3.3.2, measured on Hopper's wgmma), so each step starts from zero and its result is added
// in fp32 (the promotion cuBLASLt does with FAST_ACCUM off); gemm_fp8.c reports the coarser
// unit roundoff there. On sm_90 ptxas lowers the instruction to fp8 -> f16 conversions and
// HMMA (no QMMA in the SASS): fp32, as the f16 path.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "pdl.cuh"    // pdl_enter, pdl_wait: the PDL tunable
#include "stream.cuh" // ld_stream_u4: the LDHINT tunable (v2's W loads)

#ifndef WARPS
#define WARPS 4
#endif
#ifndef NB
#define NB 8
#endif
#ifndef UNROLL
#define UNROLL 2
#endif
#ifndef NT
#define NT 2
#endif
// v2's accumulator rows: NT token tiles, at least the two gemv_chunk's f16 path writes
#define NTA (NT > 2 ? NT : 2)
#if NT > 2 && !MMA8
#error "NT > 2 needs MMA8=1 (the f16 path's chunk takes at most two token tiles)"
#endif
// MINB: __launch_bounds__'s second argument, the blocks an SM must hold; 0 leaves it out.
// Not the same as 1: with (256, 1) ptxas takes more registers than with (256) alone
// (v2 b256_u7_t1: 136 against 128), and an SM then holds one block where it held two.
#ifndef MINB
#define MINB 0
#endif
#ifndef MT
#define MT 1
#endif
#ifndef MMA8
#define MMA8 0
#endif
#if MMA8 && defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
#error "MMA8=1 needs sm_89 or later (mma.sync with .e4m3/.e5m2 operands)"
#endif
#if MINB > 0
#define KB_BOUNDS(threads) __launch_bounds__(threads, MINB)
#else
#define KB_BOUNDS(threads) __launch_bounds__(threads)
#endif

typedef unsigned char u8;
typedef unsigned int u32;

// ---- exact fp8 -> f32 (bit manipulation; valid on every architecture) ----
// e4m3: s eeee mmm, bias 7. Placing eeee mmm at f32 bits 26..20 gives 2^(e-127)*(1.m)
// for e > 0 and m*2^-129 for e = 0 (an f32 subnormal); times 2^120 (exact) gives
// 2^(e-7)*(1.m) and m*2^-9, the e4m3 values. S.1111.111 is NaN (OCP "FN": no inf).
// Needs denormals kept (NVRTC's default -ftz=false).
__device__ __forceinline__ float e4m3_to_f32(u32 v) {
    float mag = __uint_as_float((v & 0x7fu) << 20) * 0x1p120f;
    if ((v & 0x7fu) == 0x7fu) mag = __uint_as_float(0x7fc00000u);
    return (v & 0x80u) ? -mag : mag;
}
// e5m2: s eeeee mm, bias 15: the same trick with bits 27..21 and 2^112; e = 31 is inf/NaN.
__device__ __forceinline__ float e5m2_to_f32(u32 v) {
    float mag = __uint_as_float((v & 0x7fu) << 21) * 0x1p112f;
    if ((v & 0x7cu) == 0x7cu) mag = (v & 0x3u) ? __uint_as_float(0x7fc00000u) : __uint_as_float(0x7f800000u);
    return (v & 0x80u) ? -mag : mag;
}
__device__ __forceinline__ float fp8_to_f32(u32 v, bool e5m2) { return e5m2 ? e5m2_to_f32(v) : e4m3_to_f32(v); }

// ---- exact fp8x2 -> f16x2 (low byte -> low half) ----
// e5m2 is the top byte of an f16. e4m3 on sm_89+ has a hardware conversion
// (cvt.rn.f16x2.e4m3x2, PTX ISA 7.8); elsewhere: place eeee mmm at f16 bits 13..7
// (value * 2^-8, f16 subnormals cover e = 0), then * 256 (exact; 448 < 65504).
// NaN (S.1111.111) maps to 480 on the fallback path only; inputs never hold NaN.
__device__ __forceinline__ u32 e5m2x2_to_f16x2(u32 v16) {
    return ((v16 & 0xffu) << 8) | ((v16 & 0xff00u) << 16);
}
__device__ __forceinline__ u32 e4m3x2_to_f16x2(u32 v16) {
#if __CUDA_ARCH__ >= 890
    u32 r;
    unsigned short s = (unsigned short)v16;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"(s));
    return r;
#else
    u32 lo = v16 & 0xffu, hi = (v16 >> 8) & 0xffu;
    u32 bits = (((lo & 0x7fu) << 7) | ((lo & 0x80u) << 8)) | ((((hi & 0x7fu) << 7) | ((hi & 0x80u) << 8)) << 16);
    __half2 h = *reinterpret_cast<__half2 *>(&bits);
    h = __hmul2(h, __floats2half2_rn(256.0f, 256.0f));
    return *reinterpret_cast<u32 *>(&h);
#endif
}
__device__ __forceinline__ u32 fp8x2_to_f16x2(u32 v16, bool e5m2) {
    return e5m2 ? e5m2x2_to_f16x2(v16) : e4m3x2_to_f16x2(v16);
}

// ---- scales and output ----
__device__ __forceinline__ float block_scale(const float *sa, const float *sb, int mode, int m, int n, int kb, int kbs) {
    // only the per-128 modes reach here
    return mode == 2 ? sa[(long long)m * kbs + kb] * sb[(long long)n * kbs + kb]
                     : sa[(long long)(m / 128) * kbs + kb] * sb[(long long)n * kbs + kb];
}
__device__ __forceinline__ float final_scale(const float *sa, const float *sb, int mode, int m, int n) {
    if (mode == 0) return sa[0] * sb[0];
    if (mode == 1) return sa[m] * sb[n];
    return 1.0f; // VEC128 / BLK128 were applied per 128-wide block
}
// Round to the output type: RNE, f16 overflows to inf (IEEE), NaN stays NaN.
__device__ __forceinline__ void store_out(void *out, int out_type, long long i, float v) {
    if (out_type == 0) ((float *)out)[i] = v;
    else if (out_type == 1) ((__half *)out)[i] = __float2half_rn(v);
    else ((__nv_bfloat16 *)out)[i] = __float2bfloat16_rn(v);
}

// ---- v1: the simple baseline. One warp per output row m, NB tokens per block (grid.y
// covers every N). Lanes stride K one byte at a time, 128-wide blocks at a time so the
// per-block scales apply to each block's partial sum. Any K, any alignment.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemm_fp8_gemv_v1(const u8 *__restrict__ W, const u8 *__restrict__ X, const float *__restrict__ sa,
                 const float *__restrict__ sb, void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                 int fmt) {
    const bool ae = fmt & 1, be = fmt & 2;
    const int lane = threadIdx.x & 31;
    const int m = blockIdx.x * WARPS + (threadIdx.x >> 5);
    const int n0 = blockIdx.y * NB;
    if (m >= M) return;
    const int kbs = (K + 127) / 128;
    const u8 *w = W + (long long)m * K;
    float acc[NB];
#pragma unroll
    for (int j = 0; j < NB; j++) acc[j] = 0.0f;
    for (int kb = 0; kb < kbs; kb++) {
        float part[NB];
#pragma unroll
        for (int j = 0; j < NB; j++) part[j] = 0.0f;
        const int kend = min(K, kb * 128 + 128);
        for (int k = kb * 128 + lane; k < kend; k += 32) {
            const float a = fp8_to_f32(w[k], ae);
#pragma unroll
            for (int j = 0; j < NB; j++)
                if (n0 + j < N) part[j] = fmaf(a, fp8_to_f32(X[(long long)(n0 + j) * K + k], be), part[j]);
        }
#pragma unroll
        for (int j = 0; j < NB; j++) {
            if (scale_mode >= 2 && n0 + j < N) acc[j] = fmaf(part[j], block_scale(sa, sb, scale_mode, m, n0 + j, kb, kbs), acc[j]);
            else acc[j] += part[j];
        }
    }
#pragma unroll
    for (int j = 0; j < NB; j++) {
        float v = acc[j];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0 && n0 + j < N)
            store_out(out, out_type, (long long)(n0 + j) * M + m, v * final_scale(sa, sb, scale_mode, m, n0 + j));
    }
}

// ---- v2: tensor cores. mma.sync m16n8k16 with f16 inputs (fp8 -> f16 exact) and fp32
// accumulation. A block owns 16 rows of W and 8*NT tokens (NT n8 tiles); its WARPS warps
// split K in 64-wide chunks and meet in shared memory at the end.
//
// Fragment layout (PTX ISA, mma.m16n8k16 .f16): lane = 4*g + t. A regs: {A[g][2t,2t+1],
// A[g+8][2t,2t+1], A[g][2t+8,2t+9], A[g+8][2t+8,2t+9]}; B regs: {B[2t,2t+1][g],
// B[2t+8,2t+9][g]}; C: {C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]}.
// A dot product may permute k as long as A and B agree, so lane (g, t) loads the
// contiguous 16 bytes [16t, 16t+16) of its rows of W and X (one 16-byte load each)
// and step s = 0..3 of the chunk feeds halves (2s, 2s+1) of them as logical k
// (2t, 2t+1) and (2t+8, 2t+9). Needs K % 16 == 0 (16-byte aligned rows).
__device__ __forceinline__ void mma16816(float *d, const u32 *a, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// MMA8=1: mma.m16n8k32 with fp8 operands (PTX ISA, sm_89+). Lane (g, t)'s A regs:
// {A[g][4t..4t+3], A[g+8][4t..4t+3], A[g][16+4t..16+4t+3], A[g+8][16+4t..]}, B regs:
// {B[4t..4t+3][g], B[16+4t..16+4t+3][g]}, the first element in the low byte; C as m16n8k16.
// With lane (g, t)'s contiguous 16 bytes of W and X, words (2s, 2s+1) serve as logical k
// (4t.., 16+4t..) of step s = 0, 1 for A and B alike. d = the step's sum from a zero
// accumulator (see the top: each step's result is promoted to fp32 by the caller).
#define KB_MMA16832(ta, tb)                                                                                    \
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32." ta "." tb ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "     \
                 "{%8,%9}, {%10,%10,%10,%10};"                                                                 \
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.0f))
__device__ __forceinline__ void mma16832_fp8(float *d, const u32 *a, u32 b0, u32 b1, bool ae, bool be) {
#if MMA8
    if (!ae && !be) KB_MMA16832("e4m3", "e4m3");
    else if (ae && !be) KB_MMA16832("e5m2", "e4m3");
    else if (!ae && be) KB_MMA16832("e4m3", "e5m2");
    else KB_MMA16832("e5m2", "e5m2");
#else
    (void)a, (void)b0, (void)b1, (void)ae, (void)be;
    d[0] = d[1] = d[2] = d[3] = 0.0f; // not compiled in (MMA8=0 never calls it)
#endif
}
// Step s of a 64-wide chunk at MMA8=1: W rows g, g+8 (words wa, wb), one n8 token tile (x),
// the step's sum added to p in fp32.
__device__ __forceinline__ void mma8_step(float p[4], const u32 *wa, const u32 *wb, const u32 *x, int s, bool ae,
                                          bool be) {
    const u32 a[4] = {wa[2 * s], wb[2 * s], wa[2 * s + 1], wb[2 * s + 1]};
    float q[4];
    mma16832_fp8(q, a, x[2 * s], x[2 * s + 1], ae, be);
#pragma unroll
    for (int i = 0; i < 4; i++) p[i] += q[i];
}

// W's 16-byte loads (stream.cuh). LDHINT 1: a plain load; 2: read-only, no L1 allocation, and
// an L2 prefetch size of 256 bytes (PTX ISA, ld: .L2::256B): a warp's load takes 64 bytes of
// each of 16 rows, the other warps the neighbouring 64 bytes a little later, and the hint asks
// the L2 to fetch the whole 256-byte stretch of the row from DRAM at the first miss
// (Nsight Compute on the H200: v2 streams lm_head at 60-72 % of the DRAM peak, cuBLASLt 90 %).
__device__ __forceinline__ uint4 ld_w16(const u8 *p) { return ld_stream_u4(p); }

// One 64-wide K chunk c of the tensor-core GEMV (v2, v5): lane (g, t)'s 16 bytes of W
// rows m0+g and m0+g+8 (qa, qb) and of tokens n0+g and n0+8+g (qx0, qx1: the second n8
// tile, used when tile1) through four m16n8k16 steps into the chunk's partial, then into
// acc: as is, or times the chunk's 128-wide block scale in the per-block modes (a 64-wide
// chunk lies inside one 128-wide block).
__device__ __forceinline__ void gemv_chunk(float acc[2][4], uint4 qa, uint4 qb, uint4 qx0, uint4 qx1, int c, bool ae,
                                           bool be, bool tile1, const float *sa, const float *sb, int scale_mode,
                                           int m0, int n0, int M, int N, int kbs, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const u32 wa4[4] = {qa.x, qa.y, qa.z, qa.w}, wb4[4] = {qb.x, qb.y, qb.z, qb.w};
    const u32 xa4[4] = {qx0.x, qx0.y, qx0.z, qx0.w}, xb4[4] = {qx1.x, qx1.y, qx1.z, qx1.w};
    float p0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, p1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int s = 0; s < 4; s++) {
        // halves 2s, 2s+1 = bytes 4s..4s+3 of the 16 = word s
        const u32 a[4] = {fp8x2_to_f16x2(wa4[s], ae), fp8x2_to_f16x2(wb4[s], ae), fp8x2_to_f16x2(wa4[s] >> 16, ae),
                          fp8x2_to_f16x2(wb4[s] >> 16, ae)};
        mma16816(p0, a, fp8x2_to_f16x2(xa4[s], be), fp8x2_to_f16x2(xa4[s] >> 16, be));
        if (tile1) mma16816(p1, a, fp8x2_to_f16x2(xb4[s], be), fp8x2_to_f16x2(xb4[s] >> 16, be));
    }
    if (scale_mode >= 2) {
        const int kb = c >> 1;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int m = min((i < 2 ? m0 + g : m0 + g + 8), M - 1);
            const int na = min(n0 + 2 * t + (i & 1), N - 1), nb = min(n0 + 8 + 2 * t + (i & 1), N - 1);
            acc[0][i] = fmaf(p0[i], block_scale(sa, sb, scale_mode, m, na, kb, kbs), acc[0][i]);
            if (tile1) acc[1][i] = fmaf(p1[i], block_scale(sa, sb, scale_mode, m, nb, kb, kbs), acc[1][i]);
        }
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            acc[0][i] += p0[i];
            acc[1][i] += p1[i];
        }
    }
}

// Word s of a 16-byte piece (s is a constant once the caller's loop unrolls).
__device__ __forceinline__ u32 u4_word(uint4 q, int s) { return s == 0 ? q.x : s == 1 ? q.y : s == 2 ? q.z : q.w; }

// gemv_chunk for MT 16-row tiles (v2, MT > 1): qa[mt], qb[mt] are lane (g, t)'s 16 bytes
// of rows m0+16mt+g and m0+16mt+g+8. The tokens' fp8 -> f16 conversions (one cvt per two
// values, a quarter-rate instruction) are done once per chunk and serve every tile: at
// N = 16 and MT = 1 they are half of a chunk's conversions.
__device__ __forceinline__ void gemv_chunk_mt(float acc[MT][2][4], const uint4 *qa, const uint4 *qb, uint4 qx0,
                                              uint4 qx1, int c, bool ae, bool be, bool tile1, const float *sa,
                                              const float *sb, int scale_mode, int m0, int n0, int M, int N, int kbs,
                                              int lane) {
    const int g = lane >> 2, t = lane & 3;
    float p[MT][2][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < 4; i++) p[mt][0][i] = p[mt][1][i] = 0.0f;
#pragma unroll
    for (int s = 0; s < 4; s++) {
        const u32 xa = u4_word(qx0, s), xb = u4_word(qx1, s);
        const u32 b00 = fp8x2_to_f16x2(xa, be), b01 = fp8x2_to_f16x2(xa >> 16, be);
        u32 b10 = 0, b11 = 0;
        if (tile1) {
            b10 = fp8x2_to_f16x2(xb, be);
            b11 = fp8x2_to_f16x2(xb >> 16, be);
        }
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            const u32 wa = u4_word(qa[mt], s), wb = u4_word(qb[mt], s);
            const u32 a[4] = {fp8x2_to_f16x2(wa, ae), fp8x2_to_f16x2(wb, ae), fp8x2_to_f16x2(wa >> 16, ae),
                              fp8x2_to_f16x2(wb >> 16, ae)};
            mma16816(p[mt][0], a, b00, b01);
            if (tile1) mma16816(p[mt][1], a, b10, b11);
        }
    }
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        if (scale_mode >= 2) {
            const int kb = c >> 1, mr = m0 + 16 * mt;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int m = min((i < 2 ? mr + g : mr + g + 8), M - 1);
                const int na = min(n0 + 2 * t + (i & 1), N - 1), nb = min(n0 + 8 + 2 * t + (i & 1), N - 1);
                acc[mt][0][i] = fmaf(p[mt][0][i], block_scale(sa, sb, scale_mode, m, na, kb, kbs), acc[mt][0][i]);
                if (tile1)
                    acc[mt][1][i] = fmaf(p[mt][1][i], block_scale(sa, sb, scale_mode, m, nb, kb, kbs), acc[mt][1][i]);
            }
        } else {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                acc[mt][0][i] += p[mt][0][i];
                acc[mt][1][i] += p[mt][1][i];
            }
        }
    }
}

// v2's chunk at MMA8=1, for MT row tiles x NT token tiles (any NT: a token tile costs its
// 16-byte load and two mma a row tile, none of our conversions), the first ntiles tiles holding tokens
// (warp-uniform). qx[nt]: lane (g, t)'s 16 bytes of token n0 + 8nt + g. The step sums go to
// the chunk's partial p in fp32, then into acc as gemv_chunk's do.
__device__ __forceinline__ void gemv_chunk_mma8(float acc[MT][NTA][4], const uint4 *qa, const uint4 *qb,
                                                const uint4 *qx, int ntiles, int c, bool ae, bool be,
                                                const float *sa, const float *sb, int scale_mode, int m0, int n0,
                                                int M, int N, int kbs, int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        const u32 wa4[4] = {qa[mt].x, qa[mt].y, qa[mt].z, qa[mt].w}, wb4[4] = {qb[mt].x, qb[mt].y, qb[mt].z, qb[mt].w};
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            if (nt >= ntiles) break;
            const u32 x4[4] = {qx[nt].x, qx[nt].y, qx[nt].z, qx[nt].w};
            float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            mma8_step(p, wa4, wb4, x4, 0, ae, be);
            mma8_step(p, wa4, wb4, x4, 1, ae, be);
            if (scale_mode >= 2) {
                const int kb = c >> 1, mr = m0 + 16 * mt;
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int m = min((i < 2 ? mr + g : mr + g + 8), M - 1);
                    const int n = min(n0 + 8 * nt + 2 * t + (i & 1), N - 1);
                    acc[mt][nt][i] = fmaf(p[i], block_scale(sa, sb, scale_mode, m, n, kb, kbs), acc[mt][nt][i]);
                }
            } else {
#pragma unroll
                for (int i = 0; i < 4; i++) acc[mt][nt][i] += p[i];
            }
        }
    }
}

// The block's warps meet on the 16-row tile m0 (v2, v5): each warp's fragments go to red,
// then thread e of the first NT*128 owns fragment element (n8 tile, i) = (e/128, e/32 % 4)
// of lane e % 32, sums it over the warps in warp order (deterministic) and stores it.
__device__ __forceinline__ void gemv_tile_store(float (*red)[NT][4][32], const float (*acc)[4], void *out,
                                                int out_type, const float *sa, const float *sb, int scale_mode,
                                                int m0, int n0, int M, int N) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++) red[warp][nt][i][lane] = acc[nt][i];
    __syncthreads();
    for (int e = threadIdx.x; e < NT * 128; e += WARPS * 32) {
        const int tile = e >> 7, i = (e >> 5) & 3, l = e & 31;
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) v += red[w][tile][i][l];
        const int m = m0 + (l >> 2) + (i >= 2 ? 8 : 0);
        const int n = n0 + tile * 8 + 2 * (l & 3) + (i & 1);
        if (m < M && n < N) store_out(out, out_type, (long long)n * M + m, v * final_scale(sa, sb, scale_mode, m, n));
    }
}

// v2's body. FMT >= 0: the operand formats are compile-time (fmt's bits, FMTT=1: the
// kernel branches once to one of four copies); FMT < 0: read from fmt at run time, a
// uniform branch at every conversion (FMTT=0).
template <int FMT>
__device__ __forceinline__ void gemv_v2_body(const u8 *__restrict__ W, const u8 *__restrict__ X,
                                             const float *__restrict__ sa, const float *__restrict__ sb,
                                             void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                                             int fmt, float (*red)[NT][4][32]) {
    const bool ae = FMT >= 0 ? (FMT & 1) != 0 : (fmt & 1) != 0, be = FMT >= 0 ? (FMT & 2) != 0 : (fmt & 2) != 0;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int m0 = blockIdx.x * 16 * MT, n0 = blockIdx.y * (8 * NT);
    const int kbs = (K + 127) / 128;
    const int nchunks = (K + 63) / 64;
    const bool tile1 = NT > 1 && n0 + 8 < N; // the second n8 tile has tokens (warp-uniform)
#if MMA8
    const int ntiles = min(NT, (N - n0 + 7) / 8); // the n8 tiles that hold tokens (warp-uniform)
#endif
    // Rows past M are clamped for loading (their results are never stored).
    int ra[MT], rb[MT];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        ra[mt] = min(m0 + 16 * mt + g, M - 1);
        rb[mt] = min(m0 + 16 * mt + g + 8, M - 1);
    }
    const bool x0ok = n0 + g < N, x1ok = NT > 1 && n0 + 8 + g < N;
    const u8 *wa[MT], *wb[MT];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        wa[mt] = W + (long long)ra[mt] * K + 16 * t;
        wb[mt] = W + (long long)rb[mt] * K + 16 * t;
    }
    const u8 *x0 = X + (long long)(x0ok ? n0 + g : 0) * K + 16 * t;
    const u8 *x1 = X + (long long)(x1ok ? n0 + 8 + g : 0) * K + 16 * t;
#if MMA8
    // (MMA8=1 takes any NT; the f16 path keeps its own two-tile code, which ptxas schedules
    // differently when written with these arrays)
    bool xok[NT]; // token n0 + 8nt + g exists
    const u8 *xp[NT];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        xok[nt] = n0 + 8 * nt + g < N;
        xp[nt] = X + (long long)(xok[nt] ? n0 + 8 * nt + g : 0) * K + 16 * t;
    }
    (void)x0, (void)x1, (void)tile1;
#endif

    float acc[MT][NTA][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int nt = 0; nt < NTA; nt++) acc[mt][nt][i] = 0.0f;

    pdl_launch_dependents(); // PDL=1: the next kernel may start its weight loads as ours end
    for (int c0 = warp; c0 < nchunks; c0 += WARPS * UNROLL) {
        uint4 qa[UNROLL][MT], qb[UNROLL][MT];
#if MMA8
        uint4 qx[UNROLL][NT];
#else
        uint4 qx0[UNROLL], qx1[NT > 1 ? UNROLL : 1];
        if (NT == 1) qx1[0] = make_uint4(0, 0, 0, 0); // never used: keeps it defined
#endif
        // Issue every load of UNROLL chunks before the first use (bytes in flight): W's
        // first, which no kernel writes, so that with PDL=1 the first chunks' weights are
        // on their way while the previous kernel ends; X and the scales only after the wait.
        const uint4 z = make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * WARPS;
            const long long k = (long long)c * 64;
            const bool kok = c < nchunks && k + 16 * t < K;
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                qa[u][mt] = kok ? ld_w16(wa[mt] + k) : z;
                qb[u][mt] = kok ? ld_w16(wb[mt] + k) : z;
            }
        }
        if (PDL && c0 == warp) pdl_wait();
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * WARPS;
            const long long k = (long long)c * 64;
            const bool kok = c < nchunks && k + 16 * t < K;
#if MMA8
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
                qx[u][nt] = (kok && nt < ntiles && xok[nt]) ? *(const uint4 *)(xp[nt] + k) : z;
#else
            qx0[u] = (kok && x0ok) ? *(const uint4 *)(x0 + k) : z;
            if (NT > 1) qx1[NT > 1 ? u : 0] = (kok && x1ok && tile1) ? *(const uint4 *)(x1 + k) : z;
#endif
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * WARPS;
            if (c >= nchunks) break;
#if MMA8
            gemv_chunk_mma8(acc, qa[u], qb[u], qx[u], ntiles, c, ae, be, sa, sb, scale_mode, m0, n0, M, N, kbs, lane);
#else
            if (MT == 1)
                gemv_chunk(acc[0], qa[u][0], qb[u][0], qx0[u], qx1[NT > 1 ? u : 0], c, ae, be, tile1, sa, sb, scale_mode,
                           m0, n0, M, N, kbs, lane);
            else
                gemv_chunk_mt(acc, qa[u], qb[u], qx0[u], qx1[NT > 1 ? u : 0], c, ae, be, tile1, sa, sb, scale_mode, m0,
                              n0, M, N, kbs, lane);
#endif
        }
    }
    pdl_wait(); // a warp with no chunk has not waited yet (once waited, it returns at once)
    gemv_tile_store(red, acc[0], out, out_type, sa, sb, scale_mode, m0, n0, M, N);
#pragma unroll
    for (int mt = 1; mt < MT; mt++) {
        __syncthreads(); // every thread has read red for the previous tile
        gemv_tile_store(red, acc[mt], out, out_type, sa, sb, scale_mode, m0 + 16 * mt, n0, M, N);
    }
}

#ifndef FMTT
#define FMTT 0
#endif
extern "C" __global__ void KB_BOUNDS(WARPS * 32)
gemm_fp8_gemv_v2(const u8 *__restrict__ W, const u8 *__restrict__ X, const float *__restrict__ sa,
                 const float *__restrict__ sb, void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                 int fmt) {
    __shared__ float red[WARPS][NT][4][32];
#if FMTT
    switch (fmt & 3) {
    case 0: gemv_v2_body<0>(W, X, sa, sb, out, M, N, K, scale_mode, out_type, fmt, red); break;
    case 1: gemv_v2_body<1>(W, X, sa, sb, out, M, N, K, scale_mode, out_type, fmt, red); break;
    case 2: gemv_v2_body<2>(W, X, sa, sb, out, M, N, K, scale_mode, out_type, fmt, red); break;
    default: gemv_v2_body<3>(W, X, sa, sb, out, M, N, K, scale_mode, out_type, fmt, red); break;
    }
#else
    gemv_v2_body<-1>(W, X, sa, sb, out, M, N, K, scale_mode, out_type, fmt, red);
#endif
}

#if NT <= 2 // v3 and v5 take one or two token tiles (their plans refuse more); v2 at MMA8=1 more
// ---- v3: v2's tensor-core math fed by TMA (sm_90). v2 loads W into registers, so the
// bytes a warp has in flight are bounded by its registers and the SM's outstanding-load
// tracking; the GEMV is then latency-bound (NOTES.md, gemm_fp8). Here one lane per row
// issues a 1-D bulk copy (cp.async.bulk, no tensor map) of its row's slice of K into
// shared memory, completing on an mbarrier: a block puts its whole W tile in flight at
// once (K = 3584: the entire weight of every resident block) and no register waits.
// A block owns 16*MT rows and 8*NT tokens; warp w takes K slices w, w + WARPS, ... of
// CPS 64-wide chunks each, STAGES slices in flight, buffers reused as a ring. X (tiny,
// L2-resident after the first block) is loaded straight into registers: the first
// slice's beside the W copies, each next one as soon as the current one is done. The
// warps' partials meet in shared memory (the W buffers, once drained) and sum in warp
// order: deterministic.
#ifndef CPS
#define CPS 7
#endif
#ifndef STAGES
#define STAGES 1
#endif
// Row stride of a slice buffer: lanes (g, t) and (g+1, t) of one 8-lane phase of a
// 16-byte shared load must fall in different 64-byte halves of the 128-byte bank line,
// so the stride is an odd multiple of 64 bytes.
#define V3_RS (CPS * 64 + ((CPS & 1) ? 0 : 64))
#define V3_ROWS (16 * MT)

#if __CUDA_ARCH__ >= 900
__device__ __forceinline__ u32 smem_addr(const void *p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void mbar_init(u32 bar) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_expect(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
    u32 done = 0;
    while (!done)
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
}
// W is read once: evict_first keeps it from pushing X and the outputs out of the L2.
__device__ __forceinline__ void bulk_copy(u32 dst, const void *src, u32 bytes, u32 bar, unsigned long long policy) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
                     dst),
                 "l"(src), "r"(bytes), "r"(bar), "l"(policy)
                 : "memory");
}

// Warp `warp` queues slice s into stage buffer buf (mbarrier bar): lane r < V3_ROWS copies
// row m0 + r (clamped to M - 1; its results are never stored).
__device__ __forceinline__ void v3_issue(const u8 *W, u32 buf, u32 bar, int s, int m0, int M, int K, int lane,
                                         unsigned long long policy) {
    const int k0 = s * (CPS * 64);
    const u32 bytes = (u32)(min(K, k0 + CPS * 64) - k0); // K % 16 == 0: a multiple of 16
    if (lane == 0) mbar_expect(bar, bytes * V3_ROWS);
    __syncwarp();
    if (lane < V3_ROWS) {
        // the buffer's previous contents were read by this warp (generic proxy) before
        // the __syncwarp above; order those reads before the copy's writes
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        const int row = min(m0 + lane, M - 1);
        bulk_copy(buf + lane * V3_RS, W + (long long)row * K + k0, bytes, bar, policy);
    }
}
#endif

extern "C" __global__ void KB_BOUNDS(WARPS * 32)
gemm_fp8_gemv_v3(const u8 *__restrict__ W, const u8 *__restrict__ X, const float *__restrict__ sa,
                 const float *__restrict__ sb, void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                 int fmt) {
#if __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) u8 v3_smem[]; // [WARPS][STAGES][V3_ROWS][V3_RS]; then the partials
    __shared__ __align__(8) unsigned long long v3_bar[WARPS][STAGES];
    const bool ae = fmt & 1, be = fmt & 2;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int m0 = blockIdx.x * V3_ROWS, n0 = blockIdx.y * (8 * NT);
    const int kbs = (K + 127) / 128;
    const int nchunks = (K + 63) / 64;
    const int nslices = (nchunks + CPS - 1) / CPS;
    const bool tile1 = NT > 1 && n0 + 8 < N; // the second n8 tile has tokens (warp-uniform)
    const bool x0ok = n0 + g < N, x1ok = NT > 1 && n0 + 8 + g < N;
    const u8 *x0 = X + (long long)(x0ok ? n0 + g : 0) * K + 16 * t;
    const u8 *x1 = X + (long long)(x1ok ? n0 + 8 + g : 0) * K + 16 * t;
    const u32 buf0 = smem_addr(v3_smem) + (u32)(warp * STAGES * V3_ROWS * V3_RS);
    const u32 bar0 = smem_addr(&v3_bar[warp][0]);
    unsigned long long policy;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    pdl_launch_dependents(); // PDL=1: the next kernel may start its weight copies as ours end

    // Each warp owns its barriers and buffers: no block-wide sync until the reduction.
    if (lane == 0) {
#pragma unroll
        for (int b = 0; b < STAGES; b++) mbar_init(bar0 + 8 * b);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncwarp();
#pragma unroll
    for (int b = 0; b < STAGES; b++) {
        const int s = warp + b * WARPS;
        if (s < nslices) v3_issue(W, buf0 + b * V3_ROWS * V3_RS, bar0 + 8 * b, s, m0, M, K, lane, policy);
    }

    float acc[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[mt][nt][i] = 0.0f;

    // PDL=1: every W copy of this warp is queued (no kernel writes W); X, the scales and
    // the output belong to the previous kernel until it is complete.
    pdl_wait();
    // X of this warp's first slice, in flight beside the W copies.
    uint4 qx[CPS][NT];
    const uint4 z = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < CPS; u++) {
        const long long k = (long long)(warp * CPS + u) * 64;
        const bool kok = warp < nslices && k + 16 * t < K;
        qx[u][0] = (kok && x0ok) ? __ldg((const uint4 *)(x0 + k)) : z;
        if (NT > 1) qx[u][NT - 1] = (kok && x1ok && tile1) ? __ldg((const uint4 *)(x1 + k)) : z;
    }

    for (int i = 0, s = warp; s < nslices; i++, s += WARPS) {
        const int b = i % STAGES;
        const u32 buf = buf0 + b * V3_ROWS * V3_RS;
        mbar_wait(bar0 + 8 * b, (u32)(i / STAGES) & 1u);
#pragma unroll
        for (int u = 0; u < CPS; u++) {
            const int c = s * CPS + u;
            if (c >= nchunks) break;
            const bool kok = (long long)c * 64 + 16 * t < K; // the last chunk may be partial
            float p[MT][NT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                uint4 wa = z, wb = z;
                if (kok) {
                    const u32 ra = buf + (u32)((mt * 16 + g) * V3_RS + u * 64 + 16 * t);
                    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                                 : "=r"(wa.x), "=r"(wa.y), "=r"(wa.z), "=r"(wa.w)
                                 : "r"(ra)
                                 : "memory");
                    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                                 : "=r"(wb.x), "=r"(wb.y), "=r"(wb.z), "=r"(wb.w)
                                 : "r"(ra + 8 * V3_RS)
                                 : "memory");
                }
                const u32 wa4[4] = {wa.x, wa.y, wa.z, wa.w};
                const u32 wb4[4] = {wb.x, wb.y, wb.z, wb.w};
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) p[mt][nt][e] = 0.0f;
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    // halves 2q, 2q+1 = bytes 4q..4q+3 of the 16 = word q (v2's k order)
                    const u32 a[4] = {fp8x2_to_f16x2(wa4[q], ae), fp8x2_to_f16x2(wb4[q], ae),
                                      fp8x2_to_f16x2(wa4[q] >> 16, ae), fp8x2_to_f16x2(wb4[q] >> 16, ae)};
                    const u32 xa = q == 0 ? qx[u][0].x : q == 1 ? qx[u][0].y : q == 2 ? qx[u][0].z : qx[u][0].w;
                    mma16816(p[mt][0], a, fp8x2_to_f16x2(xa, be), fp8x2_to_f16x2(xa >> 16, be));
                    if (tile1) {
                        const uint4 v = qx[u][NT - 1];
                        const u32 xb = q == 0 ? v.x : q == 1 ? v.y : q == 2 ? v.z : v.w;
                        mma16816(p[mt][NT - 1], a, fp8x2_to_f16x2(xb, be), fp8x2_to_f16x2(xb >> 16, be));
                    }
                }
            }
            if (scale_mode >= 2) {
                // a 64-wide chunk lies inside one 128-wide scale block
                const int kb = c >> 1;
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int nt = 0; nt < NT; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const int m = min(m0 + mt * 16 + g + (e >= 2 ? 8 : 0), M - 1);
                            const int n = min(n0 + nt * 8 + 2 * t + (e & 1), N - 1);
                            acc[mt][nt][e] = fmaf(p[mt][nt][e], block_scale(sa, sb, scale_mode, m, n, kb, kbs), acc[mt][nt][e]);
                        }
            } else {
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int nt = 0; nt < NT; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) acc[mt][nt][e] += p[mt][nt][e];
            }
        }
        // every lane's reads of this buffer are done: refill it with slice i + STAGES
        __syncwarp();
        const int sr = s + STAGES * WARPS;
        if (sr < nslices) v3_issue(W, buf, bar0 + 8 * b, sr, m0, M, K, lane, policy);
        // the next slice's X: in flight while its W is awaited (one register set, not two)
        const int sn = s + WARPS;
#pragma unroll
        for (int u = 0; u < CPS; u++) {
            const long long k = (long long)(sn * CPS + u) * 64;
            const bool kok = sn < nslices && k + 16 * t < K;
            qx[u][0] = (kok && x0ok) ? __ldg((const uint4 *)(x0 + k)) : z;
            if (NT > 1) qx[u][NT - 1] = (kok && x1ok && tile1) ? __ldg((const uint4 *)(x1 + k)) : z;
        }
    }

    // Sum the warps' partials in warp order. Every copy this block issued was waited
    // for, so the W buffers are free: red[w][mt][nt][e][lane] overlays them.
    __syncthreads();
    float *red = reinterpret_cast<float *>(v3_smem);
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) red[(((warp * MT + mt) * NT + nt) * 4 + e) * 32 + lane] = acc[mt][nt][e];
    __syncthreads();
    for (int f = threadIdx.x; f < MT * NT * 128; f += WARPS * 32) {
        const int mt = f / (NT * 128), nt = (f >> 7) % NT, e = (f >> 5) & 3, l = f & 31;
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) v += red[(((w * MT + mt) * NT + nt) * 4 + e) * 32 + l];
        const int m = m0 + mt * 16 + (l >> 2) + (e >= 2 ? 8 : 0);
        const int n = n0 + nt * 8 + 2 * (l & 3) + (e & 1);
        if (m < M && n < N) store_out(out, out_type, (long long)n * M + m, v * final_scale(sa, sb, scale_mode, m, n));
    }
#endif
}

#endif // NT <= 2 (v3)

// ---- v4: CUDA cores for decode (N <= 8; the plan refuses more), llama.cpp-mmvq style.
// v2 and v3 are latency-bound at N = 1 (NOTES.md, "gemm_fp8 v4"): v2's warps split K and
// meet in shared memory after loads issued in rounds. Here a warp owns RPW whole rows of
// W: lane l takes the 16-byte pieces l, l + 32, l + 64, ... of each row (p < K/16; a warp
// load is 512 contiguous bytes) and issues LOADS of them per row before any math, so at
// K = 3584 (7 pieces a lane) a row is in flight at once and at K = 18944 (37) it goes in
// rounds of LOADS. No shared memory, no __syncthreads: a warp's sums meet by shuffles.
// X (NB tokens, a few KB) is read with ld.global.nc beside the math: every warp of the
// SM reads the same pieces, so after the first they hit L1; W bypasses L1
// (L1::no_allocate, it is read once) so it does not evict X.
// Math as v1, in fp32: fp8 -> f16x2 exactly as v2 (cvt.rn.f16x2.e4m3x2 on sm_89+),
// f16 -> f32 exact, fmaf. A 16-byte piece lies inside one 128-wide scale block
// (kb = p / 8), so the per-block modes scale each piece's partial sum, as v1 and v2
// scale theirs. Each lane sums its pieces in order, then the shuffle tree: a fixed
// order, no atomics.
#ifndef RPW
#define RPW 1
#endif
#ifndef LOADS
#define LOADS 8
#endif

// W is streamed once: read-only path, no L1 allocation (PTX ISA, ld: .L1::no_allocate).
__device__ __forceinline__ uint4 ld_stream16(const u8 *p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}
// Codes 2e, 2e+1 of a 16-byte piece (bytes 4s + 2h, +1 of word s = e/2, h = e%2) as
// floats, exact: fp8x2 -> f16x2 (v2's conversion), then f16 -> f32.
__device__ __forceinline__ float2 fp8_pair_to_f32(uint4 q, int e, bool e5m2) {
    const u32 word = (e >> 1) == 0 ? q.x : (e >> 1) == 1 ? q.y : (e >> 1) == 2 ? q.z : q.w;
    u32 pair = fp8x2_to_f16x2(word >> (16 * (e & 1)), e5m2);
    return __half22float2(*reinterpret_cast<__half2 *>(&pair));
}

extern "C" __global__ void KB_BOUNDS(WARPS * 32)
gemm_fp8_gemv_v4(const u8 *__restrict__ W, const u8 *__restrict__ X, const float *__restrict__ sa,
                 const float *__restrict__ sb, void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                 int fmt) {
    const bool ae = fmt & 1, be = fmt & 2;
    const int lane = threadIdx.x & 31;
    const int m0 = (blockIdx.x * WARPS + (threadIdx.x >> 5)) * RPW;
    const int n0 = blockIdx.y * NB;
    if (m0 >= M) return; // warp-uniform; nothing below synchronises the block
    const int kbs = (K + 127) / 128;
    const int np = K >> 4; // 16-byte pieces a row (K % 16 == 0)
    const bool blocks = scale_mode >= 2;
    // Rows past M (RPW > 1) are clamped for loading; their sums are never stored.
    int mr[RPW];
    const u8 *wr[RPW];
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        mr[r] = min(m0 + r, M - 1);
        wr[r] = W + (long long)mr[r] * K;
    }
    float acc[RPW][NB];
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int j = 0; j < NB; j++) acc[r][j] = 0.0f;

    for (int base = 0; base < np; base += 32 * LOADS) { // a round: pieces base + lane + 32u, u < LOADS
        // Every load of the round first (LOADS x RPW pieces in flight), then the math.
        uint4 q[RPW][LOADS];
        float swa[RPW][LOADS]; // W's block scale of each piece (per-block modes)
#pragma unroll
        for (int u = 0; u < LOADS; u++) {
            const int p = base + lane + 32 * u;
#pragma unroll
            for (int r = 0; r < RPW; r++) {
                q[r][u] = p < np ? ld_stream16(wr[r] + 16LL * p) : make_uint4(0, 0, 0, 0);
                swa[r][u] = 0.0f;
                if (blocks && p < np)
                    swa[r][u] = scale_mode == 2 ? sa[(long long)mr[r] * kbs + p / 8]
                                                : sa[(long long)(mr[r] / 128) * kbs + p / 8];
            }
        }
#pragma unroll
        for (int u = 0; u < LOADS; u++) {
            const int p = base + lane + 32 * u;
            if (p < np) { // lanes differ only in a row's last round
                uint4 xq[NB]; // the tokens' pieces at p (L1 hits after the SM's first warp)
#pragma unroll
                for (int j = 0; j < NB; j++)
                    xq[j] = n0 + j < N ? __ldg((const uint4 *)(X + (long long)(n0 + j) * K + 16LL * p))
                                       : make_uint4(0, 0, 0, 0);
                float part[RPW][NB];
#pragma unroll
                for (int r = 0; r < RPW; r++)
#pragma unroll
                    for (int j = 0; j < NB; j++) part[r][j] = 0.0f;
                // two values at a time: W's pair once, each token's pair once, RPW x NB fmas
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    float2 wf[RPW];
#pragma unroll
                    for (int r = 0; r < RPW; r++) wf[r] = fp8_pair_to_f32(q[r][u], e, ae);
#pragma unroll
                    for (int j = 0; j < NB; j++)
                        if (n0 + j < N) {
                            const float2 xf = fp8_pair_to_f32(xq[j], e, be);
#pragma unroll
                            for (int r = 0; r < RPW; r++) {
                                part[r][j] = fmaf(wf[r].x, xf.x, part[r][j]);
                                part[r][j] = fmaf(wf[r].y, xf.y, part[r][j]);
                            }
                        }
                }
#pragma unroll
                for (int r = 0; r < RPW; r++)
#pragma unroll
                    for (int j = 0; j < NB; j++) {
                        // block_scale's product, sa * sb, then one fma (v1, v2)
                        if (blocks && n0 + j < N)
                            acc[r][j] = fmaf(part[r][j], swa[r][u] * sb[(long long)(n0 + j) * kbs + p / 8], acc[r][j]);
                        else acc[r][j] += part[r][j];
                    }
            }
        }
    }

    // Butterfly: every lane ends with every sum; lane r*NB + j stores (row r, token j).
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int j = 0; j < NB; j++) {
            float v = acc[r][j];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            const int m = m0 + r, n = n0 + j;
            if (lane == (r * NB + j) % 32 && m < M && n < N)
                store_out(out, out_type, (long long)n * M + m, v * final_scale(sa, sb, scale_mode, m, n));
        }
}

#if NT <= 2 // v3 and v5 take one or two token tiles (their plans refuse more); v2 at MMA8=1 more
// ---- v5: v2's tensor-core math fed by a cp.async ring per warp, blocks persistent over
// row tiles (sm_80). On the H200 (NOTES.md, "gemm_fp8 v5") v2 streams large weights at
// 60-72 % of the DRAM peak against cuBLASLt's 90 % (Nsight Compute, lm_head 152064x1x3584):
// v2 holds its loads in registers (124 of them: 2 blocks, 16 warps an SM), issues them in
// rounds and waits, and each block ends in a __syncthreads reduction before the SM gets a
// new one, so an SM's bytes in flight drop to nothing between rounds and between blocks.
// Here a lane copies its own 16-byte pieces of each 64-wide chunk (rows g and g+8 of W,
// token g and 8+g of X) global -> shared with cp.async.cg (L2 only), RING chunks ahead,
// into its warp's ring, and reads back only what it copied: cp.async.wait_group is the
// only synchronisation inside the K loop (attention decode_v3 does the same). The
// registers hold no loads in flight, so PER_SM blocks fit an SM. A block owns the 16-row
// tiles blockIdx.x, + gridDim.x, ... (grid.x <= sm_count * PER_SM, one wave): each warp's
// chunk stream runs on across the block's tiles, so the next tile's first chunks are in
// flight while a tile's warps meet in shared memory. Warp w takes chunks w, w + WARPS, ...
// of each tile, summed in that order, then the warps in warp order (v2's order).
#ifndef PER_SM
#define PER_SM 4
#endif
#ifndef RING
#define RING 8
#endif
#define V5_PIECES (2 + NT) // 16-byte pieces a lane copies a chunk: W rows g, g+8; X tokens g (, 8+g)
// __launch_bounds__'s blocks an SM, at most what sm_89's 1536 threads an SM hold: every
// gemm_fp8 module compiles v5 too, at its own WARPS (tuned points go to 32), and ptxas
// warns of a bound it cannot honour (the plan refuses such v5 points: tune_check)
#define V5_MINB_CAP (1536 / (WARPS * 32) > 0 ? 1536 / (WARPS * 32) : 1)
#define V5_MINB (PER_SM < V5_MINB_CAP ? PER_SM : V5_MINB_CAP)

#if __CUDA_ARCH__ >= 800
__device__ __forceinline__ void v5_cp16(const uint4 *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"((u32)__cvta_generic_to_shared(dst)), "l"(src),
                 "r"(src_bytes)
                 : "memory");
}
// The warp's chunk c of the block's tile i (tile blockIdx.x + i * gridDim.x). A piece
// wholly past K (K % 16 == 0) or a token past N is zero-filled (src-size 0, from a valid
// address), so the math needs no tests.
__device__ __forceinline__ void v5_issue(uint4 *slot, int i, int c, const u8 *W, const u8 *X, int M, int N, int K,
                                         int n0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const int m0 = (blockIdx.x + i * gridDim.x) * 16;
    const long long k = (long long)c * 64 + 16 * t;
    const bool kok = k < K;
    const int ra = min(m0 + g, M - 1), rb = min(m0 + g + 8, M - 1);
    v5_cp16(slot + lane, kok ? W + (long long)ra * K + k : W, kok ? 16 : 0);
    v5_cp16(slot + 32 + lane, kok ? W + (long long)rb * K + k : W, kok ? 16 : 0);
    const bool x0 = kok && n0 + g < N;
    v5_cp16(slot + 64 + lane, x0 ? X + (long long)(n0 + g) * K + k : X, x0 ? 16 : 0);
    if (NT > 1) {
        const bool x1 = kok && n0 + 8 + g < N;
        v5_cp16(slot + 96 + lane, x1 ? X + (long long)(n0 + 8 + g) * K + k : X, x1 ? 16 : 0);
    }
}
#endif

extern "C" __global__ void __launch_bounds__(WARPS * 32, V5_MINB)
gemm_fp8_gemv_v5(const u8 *__restrict__ W, const u8 *__restrict__ X, const float *__restrict__ sa,
                 const float *__restrict__ sb, void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                 int fmt) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(16) uint4 v5_ring[]; // [WARPS][RING][V5_PIECES][32 lanes]
    __shared__ float red5[WARPS][NT][4][32];
    const bool ae = fmt & 1, be = fmt & 2;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tiles = (M + 15) / 16, n0 = blockIdx.y * (8 * NT);
    const int kbs = (K + 127) / 128, nchunks = (K + 63) / 64;
    const bool tile1 = NT > 1 && n0 + 8 < N; // the second n8 tile has tokens (block-uniform)
    const int cpw = warp < nchunks ? (nchunks - warp + WARPS - 1) / WARPS : 0;
    const int my_tiles = (int)blockIdx.x < tiles ? (tiles - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x : 0;
    const long long total = (long long)my_tiles * cpw;
    uint4 *ring = v5_ring + warp * (RING * V5_PIECES * 32);

    // RING - 1 chunks in flight before the first is used; one commit per step (empty
    // ones too) keeps wait_group's count in step with the ring. (ti, tc): the tile and the
    // warp's chunk number of the next step to issue.
    int ti = 0, tc = 0;
    long long issued = 0;
#pragma unroll
    for (int p = 0; p < RING - 1; p++) {
        if (issued < total) {
            v5_issue(ring + p * (V5_PIECES * 32), ti, warp + tc * WARPS, W, X, M, N, K, n0, lane);
            if (++tc == cpw) tc = 0, ti++;
            issued++;
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
    long long s = 0;
    for (int i = 0; i < my_tiles; i++) { // block-uniform: the __syncthreads below are reached by all
        const int m0 = (blockIdx.x + i * gridDim.x) * 16;
        float acc[2][4];
#pragma unroll
        for (int e = 0; e < 4; e++) acc[0][e] = acc[1][e] = 0.0f;
        for (int cc = 0; cc < cpw; cc++, s++) {
            if (issued < total) { // step s + RING - 1, into the slot step s - 1 has freed
                v5_issue(ring + (int)(issued % RING) * (V5_PIECES * 32), ti, warp + tc * WARPS, W, X, M, N, K, n0, lane);
                if (++tc == cpw) tc = 0, ti++;
                issued++;
            }
            asm volatile("cp.async.commit_group;" ::: "memory");
            asm volatile("cp.async.wait_group %0;" ::"n"(RING - 1) : "memory"); // step s has landed
            const uint4 *slot = ring + (int)(s % RING) * (V5_PIECES * 32);
            const uint4 x1 = NT > 1 ? slot[96 + lane] : make_uint4(0, 0, 0, 0);
            gemv_chunk(acc, slot[lane], slot[32 + lane], slot[64 + lane], x1, warp + cc * WARPS, ae, be, tile1, sa, sb,
                       scale_mode, m0, n0, M, N, kbs, lane);
        }
        gemv_tile_store(red5, acc, out, out_type, sa, sb, scale_mode, m0, n0, M, N);
        __syncthreads(); // red5 is written again by the next tile
    }
    asm volatile("cp.async.wait_group 0;" ::: "memory");
#endif
}
#endif // NT <= 2 (v5)
