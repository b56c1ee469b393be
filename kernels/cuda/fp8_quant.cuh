// fp8_quant.cuh - the fp8 quantization quant_fp8.cu and weight_fp8.cu share: rows x k
// values (read through a decoder: floats, or Q4_K/Q6_K blocks) to fp8 codes and f32
// scales, as ref/quant_fp8.c defines it:
//   amax_g = max |x| over scale group g (exact in any order)
//   s_g    = amax_g / fp8_max rounded to f32 (IEEE division), 1 when amax_g is 0
//   q      = fp8(x / s_g): IEEE division, nearest even, saturating (fp8.cuh); with
//            flush, a code that would be an fp8 subnormal becomes +-0
// The ref computes the quotients in double and rounds once to float: that is the
// correctly rounded float quotient, which __fdiv_rn is.
//
// Scale groups (mode, ref/types.h), kb = ceil(k/128): 0 tensor (one), 1 outer (a row),
// 2 vec128 (a row's 128 columns), 3 blk128 (128 rows x 128 columns).
//
// v1 (any mode) is three launches: kbq_block_amax (a warp per row and 128-column
// block: the amax of every such block into the workspace), then the scales (a thread
// per group, or for tensor mode one block over the whole workspace: the grid-wide
// reduction), then kbq_quantize (a thread per value).
#pragma once
#include "fp8.cuh"

__device__ __forceinline__ float kbq_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ long long kbq_scale_index(int mode, long long row, long long col, long long kb) {
    if (mode == 1) return row;
    if (mode == 2) return row * kb + col / 128;
    if (mode == 3) return (row / 128) * kb + col / 128;
    return 0;
}

__device__ __forceinline__ float kbq_scale_of(float amax, float fmax) {
    return amax > 0.0f ? __fdiv_rn(amax, fmax) : 1.0f;
}

// amax[row * kb + b] = max |x| of row's columns [128b, 128b + 128). One warp per
// (row, b); blockDim.x a multiple of 32.
template <class Src>
__device__ __forceinline__ void kbq_block_amax(const Src &src, float *__restrict__ amax, long long rows, int k) {
    const long long kb = (k + 127) / 128;
    const long long w = (long long)blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (w >= rows * kb) return; // whole warps leave together
    const long long row = w / kb;
    const int b = (int)(w - row * kb), lane = threadIdx.x & 31;
    float m = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int col = b * 128 + lane + 32 * i;
        if (col < k) m = fmaxf(m, fabsf(src(row, col)));
    }
    m = kbq_warp_max(m);
    if (lane == 0) amax[w] = m;
}

// The scales of modes outer, vec128 and blk128: one thread per group.
__device__ __forceinline__ void kbq_scales(const float *__restrict__ amax, float *__restrict__ s, long long rows, int k,
                                           int mode, float fmax) {
    const long long kb = (k + 127) / 128;
    const long long groups = mode == 1 ? rows : mode == 2 ? rows * kb : ((rows + 127) / 128) * kb;
    const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups) return;
    float m = 0.0f;
    if (mode == 1) {
        for (long long b = 0; b < kb; b++) m = fmaxf(m, amax[g * kb + b]);
    } else if (mode == 2) {
        m = amax[g];
    } else {
        const long long mb = g / kb, b = g - mb * kb, r1 = min(rows, 128 * mb + 128);
        for (long long r = 128 * mb; r < r1; r++) m = fmaxf(m, amax[r * kb + b]);
    }
    s[g] = kbq_scale_of(m, fmax);
}

// Tensor mode: one block (1024 threads at most) over all n amax values, s[0].
__device__ __forceinline__ void kbq_scale_tensor(const float *__restrict__ amax, float *__restrict__ s, long long n,
                                                 float fmax) {
    __shared__ float part[32];
    float m = 0.0f;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, amax[i]);
    m = kbq_warp_max(m);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
        m = kbq_warp_max(m);
        if (threadIdx.x == 0) s[0] = kbq_scale_of(m, fmax);
    }
}

// The code of x / s.
__device__ __forceinline__ unsigned char kbq_code(float x, float s, int e5m2, int flush) {
    unsigned int code = kbf8_encode(__fdiv_rn(x, s), e5m2);
    if (flush && kbf8_is_subnormal(code, e5m2)) code &= 0x80u;
    return (unsigned char)code;
}

// q[row * k + col] for every value: one thread per value.
template <class Src>
__device__ __forceinline__ void kbq_quantize(const Src &src, const float *__restrict__ s, unsigned char *__restrict__ q,
                                             long long rows, int k, int mode, int e5m2, int flush) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= rows * k) return;
    const long long row = e / k, col = e - row * k, kb = (k + 127) / 128;
    q[e] = kbq_code(src(row, col), s[kbq_scale_index(mode, row, col, kb)], e5m2, flush);
}
