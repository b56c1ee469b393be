// q6k.cuh - ggml's Q6_K block and its dequantization, shared by dequant_q4k.cu,
// embed.cu and weight_fp8.cu (NVRTC gets it as an embedded header; nvrtc_build.c).
//
// Block (210 bytes, 256 values): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits),
// i8 scales[16], half d. Value v: half n = v/128, w = v%128, quarter r = w/32,
// l = w%32; with ql += 64n, qh += 32n, sc = scales + 8n:
//   q = ((ql[l + 32*(r&1)] >> 4*(r>>1)) & 0xF | ((qh[l] >> 2r) & 3) << 4) - 32
//   y = (d * sc[l/16 + 2r]) * q
// (ggml's dequantize_row_q6_K: y[l + 32r] = d * sc[is + 2r] * q_r, is = l/16,
// evaluated left to right in float). __fmul_rn keeps the two products uncontracted.
// Blocks are 210 bytes apart, so only 2-byte alignment holds: bytes are read singly.
#pragma once
#include "q4k.cuh" // u8, h2f

struct block_q6k {
    u8 ql[128];
    u8 qh[64];
    signed char scales[16];
    unsigned short d;
};

// Value v (0..255) of a block.
__device__ __forceinline__ float q6k_value(const block_q6k *b, int v) {
    const int n = v >> 7, w = v & 127, r = w >> 5, l = w & 31;
    const u8 *ql = b->ql + 64 * n, *qh = b->qh + 32 * n;
    const signed char *sc = b->scales + 8 * n;
    const int lo = (ql[l + 32 * (r & 1)] >> (4 * (r >> 1))) & 0xF;
    const int q = (lo | (((qh[l] >> (2 * r)) & 3) << 4)) - 32;
    return __fmul_rn(__fmul_rn(h2f(b->d), (float)sc[l / 16 + 2 * r]), (float)q);
}
