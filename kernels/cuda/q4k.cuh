// q4k.cuh - ggml's Q4_K block and its dequantization, shared by dequant_q4k.cu and
// embed.cu (NVRTC gets it as an embedded header; kernels/cuda/nvrtc_build.c).
//
// Block (144 bytes, 256 values): half d; half dmin; u8 scales[12]; u8 qs[128].
// Sub-block j (32 values) has a 6-bit scale sc and min m packed in scales (ggml's
// get_scale_min_k4: j < 4 in the low 6 bits of scales[j] / scales[j+4], j >= 4 in the
// nibbles of scales[j+4] plus the top 2 bits of scales[j-4] / scales[j]; ggml-quants.c,
// docs/FORMATS.md); for 64-value chunk c, q = qs + 32c:
//   y[64c+l]    = (d*sc(2c))   * (q[l] & 0xF) - dmin*m(2c)
//   y[64c+32+l] = (d*sc(2c+1)) * (q[l] >> 4)  - dmin*m(2c+1)
// with d*sc and dmin*m formed as float products first, as ggml's dequantize_row_q4_K.
// __fmul_rn/__fsub_rn keep NVRTC from contracting into an fma, so the bits match
// ggml's scalar C (and ref/formats.c's kb_dequant_q4k).
#pragma once
#include <cuda_fp16.h>

typedef unsigned char u8;
typedef unsigned int u32;

struct block_q4k {
    unsigned short d, dmin;
    u8 scales[12];
    u8 qs[128];
};

__device__ __forceinline__ void q4k_scale_min(int j, const u8 *s, u32 *sc, u32 *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

__device__ __forceinline__ float h2f(unsigned short h) { return __half2float(__ushort_as_half(h)); }

// Value v (0..255) of a block.
__device__ __forceinline__ float q4k_value(const block_q4k *b, int v) {
    const int c = v >> 6, hi = (v >> 5) & 1, l = v & 31;
    u32 sc, m;
    q4k_scale_min(2 * c + hi, b->scales, &sc, &m);
    const u32 q = b->qs[32 * c + l];
    const float d1 = __fmul_rn(h2f(b->d), (float)sc), m1 = __fmul_rn(h2f(b->dmin), (float)m);
    return __fsub_rn(__fmul_rn(d1, (float)(hi ? q >> 4 : q & 0xF)), m1);
}

// The eight values warp lane (c = lane/8, g = lane%8) owns: it reads qs[32c+4g..+3]
// (one 32-bit load) and gets the low nibbles (values 64c+4g..+3) in lo and the high
// nibbles (values 64c+32+4g..+3) in hi.
__device__ __forceinline__ void q4k_decode8(const block_q4k *b, int c, int g, float4 *lo, float4 *hi) {
    const u32 q4 = *(const u32 *)(b->qs + 32 * c + 4 * g);
    u32 sc0, m0, sc1, m1;
    q4k_scale_min(2 * c, b->scales, &sc0, &m0);
    q4k_scale_min(2 * c + 1, b->scales, &sc1, &m1);
    const float d = h2f(b->d), dmin = h2f(b->dmin);
    const float dl = __fmul_rn(d, (float)sc0), ml = __fmul_rn(dmin, (float)m0);
    const float dh = __fmul_rn(d, (float)sc1), mh = __fmul_rn(dmin, (float)m1);
    lo->x = __fsub_rn(__fmul_rn(dl, (float)(q4 & 0xF)), ml);
    lo->y = __fsub_rn(__fmul_rn(dl, (float)((q4 >> 8) & 0xF)), ml);
    lo->z = __fsub_rn(__fmul_rn(dl, (float)((q4 >> 16) & 0xF)), ml);
    lo->w = __fsub_rn(__fmul_rn(dl, (float)((q4 >> 24) & 0xF)), ml);
    hi->x = __fsub_rn(__fmul_rn(dh, (float)((q4 >> 4) & 0xF)), mh);
    hi->y = __fsub_rn(__fmul_rn(dh, (float)((q4 >> 12) & 0xF)), mh);
    hi->z = __fsub_rn(__fmul_rn(dh, (float)((q4 >> 20) & 0xF)), mh);
    hi->w = __fsub_rn(__fmul_rn(dh, (float)(q4 >> 28)), mh);
}
