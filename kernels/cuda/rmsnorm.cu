// rmsnorm.cu - y[t][i] = x[t][i] / sqrt(mean_j(x[t][j]^2) + eps) * w[i]   (N tokens x K hidden)
//
// Order of operations as ggml: scale = 1/sqrt(sum/K + eps), y = (x*scale)*w. The sum of
// squares is fp32 (ggml's CPU uses double): per-thread partial sums, then a tree over
// the block; the tolerance model charges sqrt(K)*u32 for it.
// eps comes from the case (Qwen2.5: 1e-6).
//
// -D options: BLOCK (threads per block, a multiple of 32, <= 1024),
//             ITEMS (v2: float4 per thread kept in registers; v2 needs K % 4 == 0
//                    and K <= BLOCK*4*ITEMS),
//             PDL (1: a programmatic dependent launch, pdl.cuh),
//             LDHINT, STHINT (v2: cache hints of x's loads and y's stores, stream.cuh),
//             WPRE (v2: 1 loads the weights beside x, before the reduction, so that no
//                   block waits on them between its reduction and its stores).
#include "pdl.cuh"    // pdl_enter, pdl_wait: the PDL tunable
#include "stream.cuh" // ld_stream, st_stream: the LDHINT and STHINT tunables
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 4
#endif
#ifndef WPRE
#define WPRE 0
#endif

// Sum over the block; every thread gets the total.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float part[BLOCK / 32];
    __shared__ float total;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        float s = threadIdx.x < BLOCK / 32 ? part[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (threadIdx.x == 0) total = s;
    }
    __syncthreads();
    return total;
}

// v1: one block per token, two passes over the row (the second from L1/L2). Any K.
extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_v1(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y, int K, float eps) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const float *xr = x + (long long)blockIdx.x * K;
    float *yr = y + (long long)blockIdx.x * K;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < K; i += BLOCK) ss = fmaf(xr[i], xr[i], ss);
    const float scale = 1.0f / sqrtf(block_sum(ss) / (float)K + eps);
    for (int i = threadIdx.x; i < K; i += BLOCK) yr[i] = (xr[i] * scale) * w[i];
}

// v2: one block per token; the row is read once with 16-byte loads into registers
// (ITEMS float4 per thread), so x crosses DRAM once and y once: 8 bytes per element.
extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_v2(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y, int K, float eps) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const float4 *xr = (const float4 *)(x + (long long)blockIdx.x * K);
    float4 *yr = (float4 *)(y + (long long)blockIdx.x * K);
    const float4 *w4 = (const float4 *)w;
    const int K4 = K / 4;
    float4 v[ITEMS], wv[WPRE ? ITEMS : 1];
    float ss = 0.0f;
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int i = threadIdx.x + it * BLOCK;
        v[it] = i < K4 ? ld_stream(xr + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (WPRE && i < K4) wv[WPRE ? it : 0] = w4[i];
    }
#pragma unroll
    for (int it = 0; it < ITEMS; it++)
        ss = fmaf(v[it].x, v[it].x, fmaf(v[it].y, v[it].y, fmaf(v[it].z, v[it].z, fmaf(v[it].w, v[it].w, ss))));
    const float scale = 1.0f / sqrtf(block_sum(ss) / (float)K + eps);
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int i = threadIdx.x + it * BLOCK;
        if (i < K4) {
            const float4 g = WPRE ? wv[WPRE ? it : 0] : w4[i];
            float4 o;
            o.x = (v[it].x * scale) * g.x;
            o.y = (v[it].y * scale) * g.y;
            o.z = (v[it].z * scale) * g.z;
            o.w = (v[it].w * scale) * g.w;
            st_stream(yr + i, o);
        }
    }
}
