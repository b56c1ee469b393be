// swiglu.cu - y = silu(gate) * up = gate / (1 + exp(-gate)) * up over count elements:
// the MLP's gated activation. gate and up are f32, f16 or bf16 (type, floatio.cuh),
// y is f32.
//
// expf is CUDA's accurate one (at most 2 ulp, CUDA C++ Programming Guide, "Mathematical
// Functions"; NVRTC compiles without --use_fast_math, so never __expf), then three
// correctly rounded steps written as intrinsics so nothing is contracted: the
// tolerance (8 u32 |y|, bench/ops/swiglu.c) counts exactly these roundings.
//
// -D options: BLOCK (threads per block).
#include "floatio.cuh"

#ifndef BLOCK
#define BLOCK 256
#endif

__device__ __forceinline__ float swiglu1(float g, float u) {
    return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
}

// v1: one thread per element.
extern "C" __global__ void __launch_bounds__(BLOCK)
swiglu_v1(const void *__restrict__ gate, const void *__restrict__ up, float *__restrict__ y, long long count,
          int type) {
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= count) return;
    y[i] = swiglu1(load_float(gate, type, i), load_float(up, type, i));
}

// v2: four consecutive elements a thread, 16-byte (f32) or 8-byte (f16, bf16) loads and
// a 16-byte store (gate, up, y 16-byte aligned); the last thread takes the tail.
extern "C" __global__ void __launch_bounds__(BLOCK)
swiglu_v2(const void *__restrict__ gate, const void *__restrict__ up, float *__restrict__ y, long long count,
          int type) {
    const long long i = ((long long)blockIdx.x * BLOCK + threadIdx.x) * 4;
    if (i >= count) return;
    if (i + 4 <= count) {
        const float4 g = load_float4(gate, type, i), u = load_float4(up, type, i);
        *(float4 *)(y + i) = make_float4(swiglu1(g.x, u.x), swiglu1(g.y, u.y), swiglu1(g.z, u.z), swiglu1(g.w, u.w));
    } else {
        for (long long e = i; e < count; e++) y[e] = swiglu1(load_float(gate, type, e), load_float(up, type, e));
    }
}
