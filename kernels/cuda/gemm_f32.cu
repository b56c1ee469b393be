// gemm_f32.cu - D[n][m] = sum_k W[m][k] X[n][k], float32 in and out, fp32 accumulation
// (the GEMM of a path that dequantizes its weights to f32). W [M][K] and X [N][K]
// are both K-major ("TN"), D is [N][M].
//
// Every output is one fp32 dot product accumulated with fmaf in increasing k (each
// kernel's order is fixed, so its output hash is stable); the tolerance charges
// 2*sqrt(K)*u32*sum|w*x| for the sum (bench/ops/gemm_f32.c).
//
// -D options:
//   tiled_v1: BM x BN outputs a block (BM rows of W x BN tokens), BK-deep tiles of W
//             and X in shared memory, 256 threads of (BM/16) x (BN/16) outputs each.
//   gemv_v*:  WARPS (warps a block, one row of W each), NB (tokens a block).
#ifndef BM
#define BM 64
#endif
#ifndef BN
#define BN 64
#endif
#ifndef BK
#define BK 16
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef NB
#define NB 4
#endif

// tiled_v1: CUDA cores. Thread (tx, ty) = (tid % 16, tid / 16) owns rows m0 + tx + 16i
// and tokens n0 + ty + 16j: its W reads in shared memory are consecutive across the
// warp (conflict-free), its X reads are broadcasts, its stores consecutive in m.
// Tiles are loaded k-fastest (consecutive threads read consecutive k of one row) and
// stored transposed with a pad, zero-filled past M, N and K (adding fmaf(0, x, acc)
// changes nothing).
extern "C" __global__ void __launch_bounds__(256)
gemm_f32_tiled_v1(const float *__restrict__ W, const float *__restrict__ X, float *__restrict__ D, int M, int N,
                  int K) {
    __shared__ float Ws[BK][BM + 1];
    __shared__ float Xs[BK][BN + 1];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    float acc[BM / 16][BN / 16];
#pragma unroll
    for (int i = 0; i < BM / 16; i++)
#pragma unroll
        for (int j = 0; j < BN / 16; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int e = tid; e < BM * BK; e += 256) {
            const int r = e / BK, kk = e % BK, m = m0 + r, k = k0 + kk;
            Ws[kk][r] = (m < M && k < K) ? W[(long long)m * K + k] : 0.0f;
        }
        for (int e = tid; e < BN * BK; e += 256) {
            const int r = e / BK, kk = e % BK, n = n0 + r, k = k0 + kk;
            Xs[kk][r] = (n < N && k < K) ? X[(long long)n * K + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float a[BM / 16], b[BN / 16];
#pragma unroll
            for (int i = 0; i < BM / 16; i++) a[i] = Ws[kk][tx + 16 * i];
#pragma unroll
            for (int j = 0; j < BN / 16; j++) b[j] = Xs[kk][ty + 16 * j];
#pragma unroll
            for (int i = 0; i < BM / 16; i++)
#pragma unroll
                for (int j = 0; j < BN / 16; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < BM / 16; i++)
#pragma unroll
        for (int j = 0; j < BN / 16; j++) {
            const int m = m0 + tx + 16 * i, n = n0 + ty + 16 * j;
            if (m < M && n < N) D[(long long)n * M + m] = acc[i][j];
        }
}

// Sum over the warp; every lane gets it.
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// gemv_v1: small N. One warp per row m of W, NB tokens a block (grid.y covers N): lanes
// stride K one float at a time (W crosses DRAM once per NB tokens), then a warp sum.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemm_f32_gemv_v1(const float *__restrict__ W, const float *__restrict__ X, float *__restrict__ D, int M, int N, int K) {
    const int lane = threadIdx.x & 31;
    const int m = blockIdx.x * WARPS + (threadIdx.x >> 5);
    const int n0 = blockIdx.y * NB;
    if (m >= M) return;
    const float *w = W + (long long)m * K;
    float acc[NB];
#pragma unroll
    for (int j = 0; j < NB; j++) acc[j] = 0.0f;
    for (int k = lane; k < K; k += 32) {
        const float a = w[k];
#pragma unroll
        for (int j = 0; j < NB; j++)
            if (n0 + j < N) acc[j] = fmaf(a, X[(long long)(n0 + j) * K + k], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < NB; j++) {
        const float v = warp_sum(acc[j]);
        if (lane == 0 && n0 + j < N) D[(long long)(n0 + j) * M + m] = v;
    }
}

// gemv_v2: gemv_v1 with 16-byte loads (4 consecutive k a lane: a warp reads 512
// contiguous bytes of W a step). Needs K % 4 == 0 and 16-byte aligned W and X.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemm_f32_gemv_v2(const float *__restrict__ W, const float *__restrict__ X, float *__restrict__ D, int M, int N, int K) {
    const int lane = threadIdx.x & 31;
    const int m = blockIdx.x * WARPS + (threadIdx.x >> 5);
    const int n0 = blockIdx.y * NB;
    if (m >= M) return;
    const int K4 = K / 4;
    const float4 *w = (const float4 *)(W + (long long)m * K);
    float acc[NB];
#pragma unroll
    for (int j = 0; j < NB; j++) acc[j] = 0.0f;
    for (int k = lane; k < K4; k += 32) {
        const float4 a = w[k];
#pragma unroll
        for (int j = 0; j < NB; j++)
            if (n0 + j < N) {
                const float4 x = ((const float4 *)(X + (long long)(n0 + j) * K))[k];
                acc[j] = fmaf(a.x, x.x, acc[j]);
                acc[j] = fmaf(a.y, x.y, acc[j]);
                acc[j] = fmaf(a.z, x.z, acc[j]);
                acc[j] = fmaf(a.w, x.w, acc[j]);
            }
    }
#pragma unroll
    for (int j = 0; j < NB; j++) {
        const float v = warp_sum(acc[j]);
        if (lane == 0 && n0 + j < N) D[(long long)(n0 + j) * M + m] = v;
    }
}
