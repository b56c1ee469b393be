// add.cu - y = a + b over count elements: the residual connection. a and y are f32, b
// is f32, f16 or bf16 (btype, floatio.cuh). One fp32 addition per element, rounded
// once (__fadd_rn: never contracted).
//
// -D options: BLOCK (threads per block).
#include "floatio.cuh"

#ifndef BLOCK
#define BLOCK 256
#endif

// v1: one thread per element.
extern "C" __global__ void __launch_bounds__(BLOCK)
add_v1(const float *__restrict__ a, const void *__restrict__ b, float *__restrict__ y, long long count, int btype) {
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= count) return;
    y[i] = __fadd_rn(a[i], load_float(b, btype, i));
}

// v2: four consecutive elements a thread, 16-byte loads and stores (a, b, y 16-byte
// aligned); the last thread takes a tail of count % 4 one at a time.
extern "C" __global__ void __launch_bounds__(BLOCK)
add_v2(const float *__restrict__ a, const void *__restrict__ b, float *__restrict__ y, long long count, int btype) {
    const long long i = ((long long)blockIdx.x * BLOCK + threadIdx.x) * 4;
    if (i >= count) return;
    if (i + 4 <= count) {
        const float4 x = *(const float4 *)(a + i), z = load_float4(b, btype, i);
        *(float4 *)(y + i) =
            make_float4(__fadd_rn(x.x, z.x), __fadd_rn(x.y, z.y), __fadd_rn(x.z, z.z), __fadd_rn(x.w, z.w));
    } else {
        for (long long e = i; e < count; e++) y[e] = __fadd_rn(a[e], load_float(b, btype, e));
    }
}
