// gemm_fp8.cu - FP8 GEMM for small N ("GEMV-style"): D[n][m] = scale * sum_k W[m][k] X[n][k].
//
// W is a_type [M][K] (the weights), X is b_type [N][K] (the tokens), D is out_type [N][M].
// Compiled by NVRTC at run time; the backend passes -D options (the tunables):
//   v1: WARPS (warps per block, one output row each), NB (tokens per block)
//   v2: WARPS (warps per block, splitting K), UNROLL (64-wide K chunks in flight per warp),
//       NT (n8 token tiles per block: 2 = 16 tokens; 1 = 8 tokens and fewer registers,
//       room for a deeper UNROLL)
// Scale mode, output type and the fp8 formats (fmt bit 0: W is e5m2, bit 1: X is e5m2;
// e4m3 otherwise) are run-time arguments: uniform branches, a few instructions per
// conversion, and one compiled module per variant instead of four.
//
// Scale modes (bench/kbench.h), kb = ceil(K/128):
//   0 TENSOR sa[0]*sb[0]     1 OUTER sa[m]*sb[n]
//   2 VEC128 sa[m][kb]*sb[n][kb]   3 BLK128 sa[m/128][kb]*sb[n][kb]
// Every fp8 value is decoded exactly; products of two fp8 values are exact in fp32
// (4+4 significant bits) and in the f16 tensor-core path (fp8 -> f16 is exact, and
// HMMA multiplies f16 exactly into an fp32 accumulator). Sums are fp32.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

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

extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemm_fp8_gemv_v2(const u8 *__restrict__ W, const u8 *__restrict__ X, const float *__restrict__ sa,
                 const float *__restrict__ sb, void *__restrict__ out, int M, int N, int K, int scale_mode, int out_type,
                 int fmt) {
    const bool ae = fmt & 1, be = fmt & 2;
    __shared__ float red[WARPS][NT][4][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int m0 = blockIdx.x * 16, n0 = blockIdx.y * (8 * NT);
    const int kbs = (K + 127) / 128;
    const int nchunks = (K + 63) / 64;
    const bool tile1 = NT > 1 && n0 + 8 < N; // the second n8 tile has tokens (warp-uniform)
    // Rows past M are clamped for loading (their results are never stored).
    const int ra = min(m0 + g, M - 1), rb = min(m0 + g + 8, M - 1);
    const bool x0ok = n0 + g < N, x1ok = NT > 1 && n0 + 8 + g < N;
    const u8 *wa = W + (long long)ra * K + 16 * t;
    const u8 *wb = W + (long long)rb * K + 16 * t;
    const u8 *x0 = X + (long long)(x0ok ? n0 + g : 0) * K + 16 * t;
    const u8 *x1 = X + (long long)(x1ok ? n0 + 8 + g : 0) * K + 16 * t;

    float acc[2][4];
#pragma unroll
    for (int i = 0; i < 4; i++) acc[0][i] = acc[1][i] = 0.0f;

    for (int c0 = warp; c0 < nchunks; c0 += WARPS * UNROLL) {
        uint4 qa[UNROLL], qb[UNROLL], qx0[UNROLL], qx1[NT > 1 ? UNROLL : 1];
        if (NT == 1) qx1[0] = make_uint4(0, 0, 0, 0); // never used: keeps it defined
        // Issue every load of UNROLL chunks before the first use (bytes in flight).
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * WARPS;
            const long long k = (long long)c * 64;
            const bool kok = c < nchunks && k + 16 * t < K;
            const uint4 z = make_uint4(0, 0, 0, 0);
            qa[u] = kok ? *(const uint4 *)(wa + k) : z;
            qb[u] = kok ? *(const uint4 *)(wb + k) : z;
            qx0[u] = (kok && x0ok) ? *(const uint4 *)(x0 + k) : z;
            if (NT > 1) qx1[NT > 1 ? u : 0] = (kok && x1ok && tile1) ? *(const uint4 *)(x1 + k) : z;
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int c = c0 + u * WARPS;
            if (c >= nchunks) break;
            const u32 wa4[4] = {qa[u].x, qa[u].y, qa[u].z, qa[u].w};
            const u32 wb4[4] = {qb[u].x, qb[u].y, qb[u].z, qb[u].w};
            const u32 xa4[4] = {qx0[u].x, qx0[u].y, qx0[u].z, qx0[u].w};
            const uint4 x1v = qx1[NT > 1 ? u : 0];
            const u32 xb4[4] = {x1v.x, x1v.y, x1v.z, x1v.w};
            float p0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, p1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int s = 0; s < 4; s++) {
                // halves 2s, 2s+1 = bytes 4s..4s+3 of the 16 = word s
                const u32 a[4] = {fp8x2_to_f16x2(wa4[s], ae), fp8x2_to_f16x2(wb4[s], ae),
                                  fp8x2_to_f16x2(wa4[s] >> 16, ae), fp8x2_to_f16x2(wb4[s] >> 16, ae)};
                mma16816(p0, a, fp8x2_to_f16x2(xa4[s], be), fp8x2_to_f16x2(xa4[s] >> 16, be));
                if (tile1) mma16816(p1, a, fp8x2_to_f16x2(xb4[s], be), fp8x2_to_f16x2(xb4[s] >> 16, be));
            }
            if (scale_mode >= 2) {
                // a 64-wide chunk lies inside one 128-wide scale block
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
    }

    // Sum the warps' partials: thread e of the first NT*128 owns fragment element
    // (tile, i) = (e/128, e/32 % 4) of lane e % 32.
#pragma unroll
    for (int i = 0; i < 4; i++) {
        red[warp][0][i][lane] = acc[0][i];
        if (NT > 1) red[warp][NT - 1][i][lane] = acc[1][i];
    }
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
