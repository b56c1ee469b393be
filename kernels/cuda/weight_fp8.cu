// weight_fp8.cu - Q4_K or Q6_K weights M x K (K % 256 == 0) to fp8 codes and f32 amax
// scales: tensor, outer (per row), vec128 (1x128) or blk128 (128x128) groups,
// saturating, optional subnormal flush; how an FP8 stack converts a GGUF model's
// weights once at load. Each value is ggml's float dequantization (q4k.cuh, q6k.cuh,
// bit-exact), then fp8_quant.cuh's three launches.
//
// -D options: BLOCK (threads per block, a multiple of 32).
#include "fp8_quant.cuh"
#include "q4k.cuh"
#include "q6k.cuh"

#ifndef BLOCK
#define BLOCK 256
#endif

struct q4k_src {
    const block_q4k *p;
    long long nb; // blocks per row
    __device__ __forceinline__ float operator()(long long row, int col) const {
        return q4k_value(p + row * nb + (col >> 8), col & 255);
    }
};

struct q6k_src {
    const block_q6k *p;
    long long nb;
    __device__ __forceinline__ float operator()(long long row, int col) const {
        return q6k_value(p + row * nb + (col >> 8), col & 255);
    }
};

extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_amax_q4k_v1(const block_q4k *__restrict__ w, float *__restrict__ amax, long long rows, int k) {
    const q4k_src src = {w, k / 256};
    kbq_block_amax(src, amax, rows, k);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_amax_q6k_v1(const block_q6k *__restrict__ w, float *__restrict__ amax, long long rows, int k) {
    const q6k_src src = {w, k / 256};
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
fp8_quant_q4k_v1(const block_q4k *__restrict__ w, const float *__restrict__ s, unsigned char *__restrict__ q,
                 long long rows, int k, int mode, int e5m2, int flush) {
    const q4k_src src = {w, k / 256};
    kbq_quantize(src, s, q, rows, k, mode, e5m2, flush);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
fp8_quant_q6k_v1(const block_q6k *__restrict__ w, const float *__restrict__ s, unsigned char *__restrict__ q,
                 long long rows, int k, int mode, int e5m2, int flush) {
    const q6k_src src = {w, k / 256};
    kbq_quantize(src, s, q, rows, k, mode, e5m2, flush);
}
