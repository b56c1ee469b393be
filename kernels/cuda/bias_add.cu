// bias_add.cu - y[t][i] = x[t][i] + bias[i], N tokens x M features: the q/k/v projection
// biases. x is f32, f16 or bf16 (xtype, floatio.cuh), bias and y f32. One fp32
// addition per element, rounded once (__fadd_rn).
//
// grid.x covers M (BLOCK features, or 4*BLOCK in v2), grid.y strides over the tokens
// (at most 65535 rows of blocks; each takes every gridDim.y-th token).
//
// -D options: BLOCK (threads per block).
#include "floatio.cuh"

#ifndef BLOCK
#define BLOCK 256
#endif

// v1: one thread per feature of a token.
extern "C" __global__ void __launch_bounds__(BLOCK)
bias_add_v1(const void *__restrict__ x, const float *__restrict__ bias, float *__restrict__ y, int N, int M,
            int xtype) {
    const int i = blockIdx.x * BLOCK + threadIdx.x;
    if (i >= M) return;
    const float b = bias[i];
    for (int t = blockIdx.y; t < N; t += gridDim.y) {
        const long long e = (long long)t * M + i;
        y[e] = __fadd_rn(load_float(x, xtype, e), b);
    }
}

// v2: four consecutive features a thread, 16-byte loads and stores; needs M % 4 == 0
// and x, bias, y 16-byte aligned.
extern "C" __global__ void __launch_bounds__(BLOCK)
bias_add_v2(const void *__restrict__ x, const float *__restrict__ bias, float *__restrict__ y, int N, int M,
            int xtype) {
    const int i = (blockIdx.x * BLOCK + threadIdx.x) * 4;
    if (i >= M) return;
    const float4 b = *(const float4 *)(bias + i);
    for (int t = blockIdx.y; t < N; t += gridDim.y) {
        const long long e = (long long)t * M + i;
        const float4 v = load_float4(x, xtype, e);
        *(float4 *)(y + e) =
            make_float4(__fadd_rn(v.x, b.x), __fadd_rn(v.y, b.y), __fadd_rn(v.z, b.z), __fadd_rn(v.w, b.w));
    }
}
