// dequant_q4k.cu - ggml Q4_K (or Q6_K) blocks -> f32, M rows x K cols (K % 256 == 0),
// row-major.
//
// The block formats and their arithmetic: q4k.cuh and q6k.cuh (shared with embed.cu
// and weight_fp8.cu).
//
// -D options: BLOCK (threads per block); ITEMS (v2: 256-value blocks a warp decodes, all
// their loads issued before its first store); PDL (1: a programmatic dependent launch,
// pdl.cuh); STHINT (v2: the stores' cache hint, stream.cuh).
#include "q4k.cuh"
#include "q6k.cuh"
#include "pdl.cuh"    // pdl_enter, pdl_wait: the PDL tunable
#include "stream.cuh" // st_stream: the STHINT tunable (v2)

#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

// v1: one thread per output value; the simplest correct kernel.
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q4k_v1(const block_q4k *__restrict__ x, float *__restrict__ y, long long nvalues) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= nvalues) return;
    y[i] = q4k_value(x + (i >> 8), (int)(i & 255));
}

// v2: one warp per block of 256 values. Lane (c = lane/8, g = lane%8) reads 4 bytes
// qs[32c+4g .. +3] (one 32-bit load) and writes 4 low-nibble values at 64c+4g and 4
// high-nibble values at 64c+32+4g (two 16-byte stores), so each store instruction of
// the warp writes four full 128-byte lines. Stores are streaming (evict-first): the
// output is larger than L2 and nothing here reads it back. A thread block covers
// ITEMS x BLOCK/32 consecutive blocks, item `it` the BLOCK/32 of them at it x BLOCK/32
// (each item's stores contiguous across the warps); a warp decodes its ITEMS blocks'
// loads first, so ITEMS DRAM round trips overlap instead of following each other.
__device__ __forceinline__ long long v2_block(int it) {
    return ((long long)blockIdx.x * ITEMS + it) * (BLOCK / 32) + (threadIdx.x >> 5);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q4k_v2(const block_q4k *__restrict__ x, float *__restrict__ y, long long nblocks) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int lane = threadIdx.x & 31, c = lane >> 3, g = lane & 7;
    float4 lo[ITEMS], hv[ITEMS];
#pragma unroll
    for (int it = 0; it < ITEMS; it++)
        if (v2_block(it) < nblocks) q4k_decode8(x + v2_block(it), c, g, &lo[it], &hv[it]);
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const long long bi = v2_block(it);
        if (bi >= nblocks) break;
        float *out = y + bi * 256 + 64 * c + 4 * g;
        st_stream((float4 *)out, lo[it]);
        st_stream((float4 *)(out + 32), hv[it]);
    }
}

// v3 (Q4_K only): v2 with each block's 16-byte header (d, dmin, scales) in one load where v2
// makes eight byte and half loads of it; the blocks must start on 16 bytes (144 = 9 x 16).
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q4k_v3(const block_q4k *__restrict__ x, float *__restrict__ y, long long nblocks) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int lane = threadIdx.x & 31, c = lane >> 3, g = lane & 7;
    uint4 hdr[ITEMS];
    u32 q4[ITEMS];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const long long bi = v2_block(it);
        if (bi < nblocks) {
            hdr[it] = *(const uint4 *)(x + bi);
            q4[it] = *(const u32 *)(x[bi].qs + 32 * c + 4 * g);
        }
    }
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const long long bi = v2_block(it);
        if (bi >= nblocks) break;
        float4 lo, hv;
        q4k_decode8_regs(hdr[it], q4[it], c, &lo, &hv);
        float *out = y + bi * 256 + 64 * c + 4 * g;
        st_stream((float4 *)out, lo);
        st_stream((float4 *)(out + 32), hv);
    }
}

// ---- Q6_K (a_type q6_k): the same two layouts ----
// v1: one thread per output value.
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q6k_v1(const block_q6k *__restrict__ x, float *__restrict__ y, long long nvalues) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= nvalues) return;
    y[i] = q6k_value(x + (i >> 8), (int)(i & 255));
}

// v2: one warp per block of 256 values; lane owns the 8 consecutive values 8*lane..+7,
// which share one quarter r and one scale (8 divides 16), and writes them as two
// float4 streaming stores (the warp writes the block's 1 KiB contiguously). The quants
// are read a byte at a time: Q6_K blocks are 210 bytes apart, so wider loads would be
// misaligned. ITEMS blocks a warp, as dequant_q4k_v2.
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q6k_v2(const block_q6k *__restrict__ x, float *__restrict__ y, long long nblocks) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int lane = threadIdx.x & 31;
    const int v0 = 8 * lane, n = v0 >> 7, w = v0 & 127, r = w >> 5, l0 = w & 31;
    float v[ITEMS][8];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        if (v2_block(it) >= nblocks) break;
        const block_q6k *b = x + v2_block(it);
        const u8 *ql = b->ql + 64 * n + 32 * (r & 1) + l0, *qh = b->qh + 32 * n + l0;
        const float dsc = __fmul_rn(h2f(b->d), (float)b->scales[8 * n + l0 / 16 + 2 * r]);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int lo = (ql[i] >> (4 * (r >> 1))) & 0xF;
            const int q = (lo | (((qh[i] >> (2 * r)) & 3) << 4)) - 32;
            v[it][i] = __fmul_rn(dsc, (float)q);
        }
    }
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const long long bi = v2_block(it);
        if (bi >= nblocks) break;
        float *out = y + bi * 256 + v0;
        st_stream((float4 *)out, make_float4(v[it][0], v[it][1], v[it][2], v[it][3]));
        st_stream((float4 *)(out + 4), make_float4(v[it][4], v[it][5], v[it][6], v[it][7]));
    }
}
