// quant_fp8.cu - activations (f32, f16 or bf16; type, floatio.cuh) N x K to fp8 codes
// and f32 amax scales: tensor, outer (per token) or vec128 (1x128) groups, saturating,
// optional subnormal flush. The definition and v1's three launches: fp8_quant.cuh.
//
// v2 (outer, vec128: the row-local modes) is one launch: vec128 a warp per 128-value
// group, the values kept in registers between the amax and the codes; outer a block
// per token, two passes over the row (the second from L1/L2).
//
// -D options: BLOCK (threads per block, a multiple of 32).
#include "floatio.cuh"
#include "fp8_quant.cuh"

#ifndef BLOCK
#define BLOCK 256
#endif

struct float_src {
    const void *p;
    int type;
    long long k;
    __device__ __forceinline__ float operator()(long long row, int col) const {
        return load_float(p, type, row * k + col);
    }
};

extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_amax_v1(const void *__restrict__ x, float *__restrict__ amax, long long rows, int k, int type) {
    const float_src src = {x, type, k};
    kbq_block_amax(src, amax, rows, k);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_scales_v1(const float *__restrict__ amax, float *__restrict__ s, long long rows, int k, int mode, float fmax) {
    kbq_scales(amax, s, rows, k, mode, fmax);
}

extern "C" __global__ void __launch_bounds__(1024)
fp8_scale_tensor_v1(const float *__restrict__ amax, float *__restrict__ s, long long n, float fmax) {
    kbq_scale_tensor(amax, s, n, fmax);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_quant_v1(const void *__restrict__ x, const float *__restrict__ s, unsigned char *__restrict__ q, long long rows,
             int k, int type, int mode, int e5m2, int flush) {
    const float_src src = {x, type, k};
    kbq_quantize(src, s, q, rows, k, mode, e5m2, flush);
}

// v2, vec128: warp w = row * kb + b owns columns [128b, 128b + 128) of its row.
extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_quant_vec128_v2(const void *__restrict__ x, float *__restrict__ s, unsigned char *__restrict__ q, long long rows,
                    int k, int type, int e5m2, int flush, float fmax) {
    const long long kb = (k + 127) / 128;
    const long long w = (long long)blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5);
    if (w >= rows * kb) return;
    const long long row = w / kb, base = row * k;
    const int b = (int)(w - row * kb), lane = threadIdx.x & 31;
    float v[4], m = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int col = b * 128 + lane + 32 * i;
        v[i] = col < k ? load_float(x, type, base + col) : 0.0f;
        m = fmaxf(m, fabsf(v[i]));
    }
    const float sc = kbq_scale_of(kbq_warp_max(m), fmax);
    if (lane == 0) s[w] = sc;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int col = b * 128 + lane + 32 * i;
        if (col < k) q[base + col] = kbq_code(v[i], sc, e5m2, flush);
    }
}

// v2, outer: block `row` owns the token.
extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_quant_outer_v2(const void *__restrict__ x, float *__restrict__ s, unsigned char *__restrict__ q, int k, int type,
                   int e5m2, int flush, float fmax) {
    __shared__ float part[BLOCK / 32];
    __shared__ float total;
    const long long base = (long long)blockIdx.x * k;
    float m = 0.0f;
    for (int col = threadIdx.x; col < k; col += BLOCK) m = fmaxf(m, fabsf(load_float(x, type, base + col)));
    m = kbq_warp_max(m);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        float t = threadIdx.x < BLOCK / 32 ? part[threadIdx.x] : 0.0f;
        t = kbq_warp_max(t);
        if (threadIdx.x == 0) total = t;
    }
    __syncthreads();
    const float sc = kbq_scale_of(total, fmax);
    if (threadIdx.x == 0) s[blockIdx.x] = sc;
    for (int col = threadIdx.x; col < k; col += BLOCK)
        q[base + col] = kbq_code(load_float(x, type, base + col), sc, e5m2, flush);
}
