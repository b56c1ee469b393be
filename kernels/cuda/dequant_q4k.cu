// dequant_q4k.cu - ggml Q4_K blocks -> f32, M rows x K cols (K % 256 == 0), row-major.
//
// The block format and its arithmetic: q4k.cuh (shared with embed.cu).
//
// -D options: BLOCK (threads per block).
#include "q4k.cuh"

#ifndef BLOCK
#define BLOCK 256
#endif

// v1: one thread per output value; the simplest correct kernel.
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q4k_v1(const block_q4k *__restrict__ x, float *__restrict__ y, long long nvalues) {
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= nvalues) return;
    y[i] = q4k_value(x + (i >> 8), (int)(i & 255));
}

// v2: one warp per block of 256 values. Lane (c = lane/8, g = lane%8) reads 4 bytes
// qs[32c+4g .. +3] (one 32-bit load) and writes 4 low-nibble values at 64c+4g and 4
// high-nibble values at 64c+32+4g (two 16-byte stores), so each store instruction of
// the warp writes four full 128-byte lines. Stores are streaming (evict-first): the
// output is larger than L2 and nothing here reads it back.
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q4k_v2(const block_q4k *__restrict__ x, float *__restrict__ y, long long nblocks) {
    const long long bi = (long long)blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5);
    if (bi >= nblocks) return;
    const int lane = threadIdx.x & 31, c = lane >> 3, g = lane & 7;
    float4 lo, hv;
    q4k_decode8(x + bi, c, g, &lo, &hv);
    float *out = y + bi * 256 + 64 * c + 4 * g;
    __stcs((float4 *)out, lo);
    __stcs((float4 *)(out + 32), hv);
}
