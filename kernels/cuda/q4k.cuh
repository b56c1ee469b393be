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

// The eight values of one lane from a 64-value chunk's two (scale, min) pairs and the
// lane's word of qs: low nibbles with (sc0, m0), high nibbles with (sc1, m1).
__device__ __forceinline__ void q4k_expand8(float d, float dmin, u32 sc0, u32 m0, u32 sc1, u32 m1, u32 q4, float4 *lo,
                                            float4 *hi) {
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

// The eight values warp lane (c = lane/8, g = lane%8) owns: it reads qs[32c+4g..+3]
// (one 32-bit load) and gets the low nibbles (values 64c+4g..+3) in lo and the high
// nibbles (values 64c+32+4g..+3) in hi.
__device__ __forceinline__ void q4k_decode8(const block_q4k *b, int c, int g, float4 *lo, float4 *hi) {
    const u32 q4 = *(const u32 *)(b->qs + 32 * c + 4 * g);
    u32 sc0, m0, sc1, m1;
    q4k_scale_min(2 * c, b->scales, &sc0, &m0);
    q4k_scale_min(2 * c + 1, b->scales, &sc1, &m1);
    q4k_expand8(h2f(b->d), h2f(b->dmin), sc0, m0, sc1, m1, q4, lo, hi);
}

// q4k_decode8 from registers: hdr is the block's first 16 bytes (d | dmin << 16, then
// scales[0..3], [4..7], [8..11] little-endian), read with one 16-byte load (a block starts
// on 16 bytes when the table does: 144 = 9 x 16), q4 lane (c, g)'s word of qs. Sub-block
// j = 2c + h (h = 0, 1) takes byte b = 2(c & 1) + h of the words: for c < 2 (j < 4)
// scales[j] and scales[j + 4] are bytes b of words 1 and 2; for c >= 2, scales[j + 4],
// scales[j - 4] and scales[j] are bytes b of words 3, 1 and 2: get_scale_min_k4's bits.
__device__ __forceinline__ void q4k_scale_min_regs(uint4 hdr, int c, int h, u32 *sc, u32 *m) {
    const int sh = 8 * (2 * (c & 1) + h);
    const u32 s1 = (hdr.y >> sh) & 0xffu, s2 = (hdr.z >> sh) & 0xffu, s3 = (hdr.w >> sh) & 0xffu;
    *sc = c < 2 ? s1 & 63u : (s3 & 0xFu) | ((s1 >> 6) << 4);
    *m = c < 2 ? s2 & 63u : (s3 >> 4) | ((s2 >> 6) << 4);
}

__device__ __forceinline__ void q4k_decode8_regs(uint4 hdr, u32 q4, int c, float4 *lo, float4 *hi) {
    u32 sc0, m0, sc1, m1;
    q4k_scale_min_regs(hdr, c, 0, &sc0, &m0);
    q4k_scale_min_regs(hdr, c, 1, &sc1, &m1);
    q4k_expand8(h2f((unsigned short)(hdr.x & 0xffffu)), h2f((unsigned short)(hdr.x >> 16)), sc0, m0, sc1, m1, q4, lo,
                hi);
}
