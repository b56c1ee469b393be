// embed.cu - embedding lookup: y[t][:] = dequant(table[ids[t]][:]), table M rows x K.
//
// Table types: Q4_K (K % 256 == 0), Q6_K (K % 256 == 0), F16, F32. The Q4_K and Q6_K
// arithmetic is ggml's dequantize_row_q4_K / dequantize_row_q6_K, uncontracted
// (__fmul_rn/__fsub_rn), so the values match ggml's scalar C bit for bit.
// A token id outside [0, M) writes NaN across its row: loud in the metrics.
//
// -D options: BLOCK (threads per block); PDL (1: a programmatic dependent launch, pdl.cuh);
// ITEMS (v3: 256-value blocks of the row a warp); STHINT (v2, v3: the stores' cache hint,
// stream.cuh).
#include "q4k.cuh" // block_q4k, q4k_value, q4k_decode8, q4k_decode8_regs, h2f
#include "q6k.cuh" // block_q6k
#include "pdl.cuh"    // pdl_enter, pdl_wait: the PDL tunable
#include "stream.cuh" // st_stream: the STHINT tunable (v2, v3)

#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

__device__ __forceinline__ float nan_f32() { return __uint_as_float(0x7fc00000u); }

// ---- v1: one thread per output value, every table type ----
// grid.x covers K (in BLOCK-wide pieces), grid.y is the token.
extern "C" __global__ void __launch_bounds__(BLOCK)
embed_q4k_v1(const block_q4k *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int i = blockIdx.x * BLOCK + threadIdx.x, t = blockIdx.y;
    if (i >= K) return;
    const int id = ids[t];
    float *dst = y + (long long)t * K + i;
    if (id < 0 || id >= M) { *dst = nan_f32(); return; }
    *dst = q4k_value(table + (long long)id * (K / 256) + i / 256, i & 255);
}

// Q6_K, value v of a block: half n = v/128, w = v%128, quarter r = w/32, l = w%32;
// ql = ql + 64n, qh = qh + 32n, sc = scales + 8n;
// q = ((ql[l + 32*(r&1)] >> 4*(r>>1)) & 0xF) | (((qh[l] >> 2r) & 3) << 4)) - 32;
// y = (d * sc[l/16 + 2r]) * q   (ggml: y[l + 32r] = d * sc[is + 2r] * q_r, is = l/16).
extern "C" __global__ void __launch_bounds__(BLOCK)
embed_q6k_v1(const block_q6k *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int i = blockIdx.x * BLOCK + threadIdx.x, t = blockIdx.y;
    if (i >= K) return;
    const int id = ids[t];
    float *dst = y + (long long)t * K + i;
    if (id < 0 || id >= M) { *dst = nan_f32(); return; }
    const block_q6k *b = table + (long long)id * (K / 256) + i / 256;
    const int v = i & 255, n = v >> 7, w = v & 127, r = w >> 5, l = w & 31;
    const u8 *ql = b->ql + 64 * n, *qh = b->qh + 32 * n;
    const signed char *sc = b->scales + 8 * n;
    const int lo = (ql[l + 32 * (r & 1)] >> (4 * (r >> 1))) & 0xF;
    const int q = (lo | (((qh[l] >> (2 * r)) & 3) << 4)) - 32;
    *dst = __fmul_rn(__fmul_rn(h2f(b->d), (float)sc[l / 16 + 2 * r]), (float)q);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
embed_f16_v1(const unsigned short *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int i = blockIdx.x * BLOCK + threadIdx.x, t = blockIdx.y;
    if (i >= K) return;
    const int id = ids[t];
    y[(long long)t * K + i] = (id < 0 || id >= M) ? nan_f32() : h2f(table[(long long)id * K + i]);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
embed_f32_v1(const float *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int i = blockIdx.x * BLOCK + threadIdx.x, t = blockIdx.y;
    if (i >= K) return;
    const int id = ids[t];
    y[(long long)t * K + i] = (id < 0 || id >= M) ? nan_f32() : table[(long long)id * K + i];
}

// ---- v2 (Q4_K only): one warp per 256-value block of a looked-up row, the layout of
// dequant_q4k_v2: lane (c = lane/8, g = lane%8) reads qs[32c+4g..+3] and writes two
// float4 (low nibbles at 64c+4g, high nibbles at 64c+32+4g). grid.x covers the K/256
// blocks of a row in BLOCK/32 pieces, grid.y is the token.
extern "C" __global__ void __launch_bounds__(BLOCK)
embed_q4k_v2(const block_q4k *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int nb = K / 256;
    const int j = blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5), t = blockIdx.y;
    if (j >= nb) return;
    const int lane = threadIdx.x & 31, c = lane >> 3, g = lane & 7;
    float *out = y + (long long)t * K + 256 * j + 64 * c + 4 * g;
    const int id = ids[t];
    if (id < 0 || id >= M) {
        const float4 bad = make_float4(nan_f32(), nan_f32(), nan_f32(), nan_f32());
        *(float4 *)out = bad;
        *(float4 *)(out + 32) = bad;
        return;
    }
    float4 lo, hv;
    q4k_decode8(table + (long long)id * nb + j, c, g, &lo, &hv);
    st_stream((float4 *)out, lo);
    st_stream((float4 *)(out + 32), hv);
}

// ---- v3 (Q4_K only): v2 with ITEMS 256-value blocks of the row a warp, item `it` the
// BLOCK/32 blocks at (blockIdx.x * ITEMS + it) * BLOCK/32 (each item's stores contiguous
// across the warps). The id is read once; each block's 16-byte header (d, dmin, scales: one
// load, where v2 makes eight byte and half loads of it) and the lane's word of qs are
// requested for every item before the first store. Table and output start on 16 bytes.
extern "C" __global__ void __launch_bounds__(BLOCK)
embed_q4k_v3(const block_q4k *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int nb = K / 256, t = blockIdx.y;
    const int lane = threadIdx.x & 31, c = lane >> 3, g = lane & 7;
    const int j0 = blockIdx.x * ITEMS * (BLOCK / 32) + (threadIdx.x >> 5);
    const int id = ids[t];
    const bool ok = id >= 0 && id < M;
    const block_q4k *row = table + (long long)(ok ? id : 0) * nb;
    uint4 hdr[ITEMS];
    u32 q4[ITEMS];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int j = j0 + it * (BLOCK / 32);
        if (ok && j < nb) {
            hdr[it] = *(const uint4 *)(row + j);
            q4[it] = *(const u32 *)(row[j].qs + 32 * c + 4 * g);
        }
    }
    float *out = y + (long long)t * K + 64 * c + 4 * g;
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int j = j0 + it * (BLOCK / 32);
        if (j >= nb) break;
        float4 lo, hv;
        if (ok) q4k_decode8_regs(hdr[it], q4[it], c, &lo, &hv);
        else lo = hv = make_float4(nan_f32(), nan_f32(), nan_f32(), nan_f32());
        st_stream((float4 *)(out + 256 * j), lo);
        st_stream((float4 *)(out + 256 * j + 32), hv);
    }
}
