// floatio.cuh - loads of the activation types the glue ops take (f32, f16, bf16), for
// add.cu, bias_add.cu, swiglu.cu and quant_fp8.cu. The type is a run-time argument
// (a uniform branch): type 0 f32, 1 f16, 2 bf16 (kbcu_float_code in cuda_ops.h).
// f16 and bf16 widen to f32 exactly.
#pragma once
#include <cuda_fp16.h>

__device__ __forceinline__ float bf16_bits_to_f32(unsigned int h) { return __uint_as_float(h << 16); }
__device__ __forceinline__ float f16_bits_to_f32(unsigned int h) {
    return __half2float(__ushort_as_half((unsigned short)h));
}

__device__ __forceinline__ float load_float(const void *p, int type, long long i) {
    if (type == 1) return f16_bits_to_f32(((const unsigned short *)p)[i]);
    if (type == 2) return bf16_bits_to_f32(((const unsigned short *)p)[i]);
    return ((const float *)p)[i];
}

// Elements i..i+3 with one load: 16 bytes (f32) or 8 (f16, bf16); i a multiple of 4
// and p 16-byte aligned.
__device__ __forceinline__ float4 load_float4(const void *p, int type, long long i) {
    if (type == 0) return *(const float4 *)((const float *)p + i);
    const uint2 w = *(const uint2 *)((const unsigned short *)p + i);
    if (type == 1)
        return make_float4(f16_bits_to_f32(w.x & 0xffffu), f16_bits_to_f32(w.x >> 16), f16_bits_to_f32(w.y & 0xffffu),
                           f16_bits_to_f32(w.y >> 16));
    return make_float4(bf16_bits_to_f32(w.x & 0xffffu), bf16_bits_to_f32(w.x >> 16), bf16_bits_to_f32(w.y & 0xffffu),
                       bf16_bits_to_f32(w.y >> 16));
}
