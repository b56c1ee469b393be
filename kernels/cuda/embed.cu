// embed.cu - embedding lookup: y[t][:] = dequant(table[ids[t]][:]), table M rows x K.
//
// Table types: Q4_K (K % 256 == 0), Q6_K (K % 256 == 0), F16, F32. The Q4_K and Q6_K
// arithmetic is ggml's dequantize_row_q4_K / dequantize_row_q6_K, uncontracted
// (__fmul_rn/__fsub_rn), so the values match ggml's scalar C bit for bit.
// A token id outside [0, M) writes NaN across its row: loud in the metrics.
//
// -D options: BLOCK (threads per block).
#include <cuda_fp16.h>

#ifndef BLOCK
#define BLOCK 256
#endif

typedef unsigned char u8;
typedef unsigned int u32;

struct block_q4k {
    unsigned short d, dmin;
    u8 scales[12];
    u8 qs[128];
};
struct block_q6k {
    u8 ql[128];
    u8 qh[64];
    signed char scales[16];
    unsigned short d;
};

__device__ __forceinline__ float h2f(unsigned short h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float nan_f32() { return __uint_as_float(0x7fc00000u); }

__device__ __forceinline__ void q4k_scale_min(int j, const u8 *s, u32 *sc, u32 *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// ---- v1: one thread per output value, every table type ----
// grid.x covers K (in BLOCK-wide pieces), grid.y is the token.
extern "C" __global__ void __launch_bounds__(BLOCK)
embed_q4k_v1(const block_q4k *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
    const int i = blockIdx.x * BLOCK + threadIdx.x, t = blockIdx.y;
    if (i >= K) return;
    const int id = ids[t];
    float *dst = y + (long long)t * K + i;
    if (id < 0 || id >= M) { *dst = nan_f32(); return; }
    const block_q4k *b = table + (long long)id * (K / 256) + i / 256;
    const int v = i & 255, c = v >> 6, hi = (v >> 5) & 1, l = v & 31;
    u32 sc, m;
    q4k_scale_min(2 * c + hi, b->scales, &sc, &m);
    const u32 q = b->qs[32 * c + l];
    const float d1 = __fmul_rn(h2f(b->d), (float)sc), m1 = __fmul_rn(h2f(b->dmin), (float)m);
    *dst = __fsub_rn(__fmul_rn(d1, (float)(hi ? q >> 4 : q & 0xF)), m1);
}

// Q6_K, value v of a block: half n = v/128, w = v%128, quarter r = w/32, l = w%32;
// ql = ql + 64n, qh = qh + 32n, sc = scales + 8n;
// q = ((ql[l + 32*(r&1)] >> 4*(r>>1)) & 0xF) | (((qh[l] >> 2r) & 3) << 4)) - 32;
// y = (d * sc[l/16 + 2r]) * q   (ggml: y[l + 32r] = d * sc[is + 2r] * q_r, is = l/16).
extern "C" __global__ void __launch_bounds__(BLOCK)
embed_q6k_v1(const block_q6k *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
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
    const int i = blockIdx.x * BLOCK + threadIdx.x, t = blockIdx.y;
    if (i >= K) return;
    const int id = ids[t];
    y[(long long)t * K + i] = (id < 0 || id >= M) ? nan_f32() : h2f(table[(long long)id * K + i]);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
embed_f32_v1(const float *__restrict__ table, const int *__restrict__ ids, float *__restrict__ y, int M, int K) {
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
    const block_q4k *b = table + (long long)id * nb + j;
    const u32 q4 = *(const u32 *)(b->qs + 32 * c + 4 * g);
    u32 sc0, m0, sc1, m1;
    q4k_scale_min(2 * c, b->scales, &sc0, &m0);
    q4k_scale_min(2 * c + 1, b->scales, &sc1, &m1);
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    const float dl = __fmul_rn(d, (float)sc0), ml = __fmul_rn(dmin, (float)m0);
    const float dh = __fmul_rn(d, (float)sc1), mh = __fmul_rn(dmin, (float)m1);
    float4 lo, hv;
    lo.x = __fsub_rn(__fmul_rn(dl, (float)(q4 & 0xF)), ml);
    lo.y = __fsub_rn(__fmul_rn(dl, (float)((q4 >> 8) & 0xF)), ml);
    lo.z = __fsub_rn(__fmul_rn(dl, (float)((q4 >> 16) & 0xF)), ml);
    lo.w = __fsub_rn(__fmul_rn(dl, (float)((q4 >> 24) & 0xF)), ml);
    hv.x = __fsub_rn(__fmul_rn(dh, (float)((q4 >> 4) & 0xF)), mh);
    hv.y = __fsub_rn(__fmul_rn(dh, (float)((q4 >> 12) & 0xF)), mh);
    hv.z = __fsub_rn(__fmul_rn(dh, (float)((q4 >> 20) & 0xF)), mh);
    hv.w = __fsub_rn(__fmul_rn(dh, (float)(q4 >> 28)), mh);
    __stcs((float4 *)out, lo);
    __stcs((float4 *)(out + 32), hv);
}
