// dequant_q4k.cu - ggml Q4_K blocks -> f32, M rows x K cols (K % 256 == 0), row-major.
//
// Block (144 bytes, 256 values): half d; half dmin; u8 scales[12]; u8 qs[128].
// Sub-block j (32 values) has a 6-bit scale sc and min m packed in scales
// (REFERENCE.md section 2); for 64-value chunk c, q = qs + 32c:
//   y[64c+l]    = (d*sc(2c))   * (q[l] & 0xF) - dmin*m(2c)
//   y[64c+32+l] = (d*sc(2c+1)) * (q[l] >> 4)  - dmin*m(2c+1)
// with d*sc and dmin*m formed as float products first, as ggml's dequantize_row_q4_K.
// __fmul_rn/__fsub_rn keep NVRTC from contracting into an fma, so the bits match
// ggml's scalar C (and ref/formats.c's kb_dequant_q4k).
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

// v1: one thread per output value; the simplest correct kernel.
extern "C" __global__ void __launch_bounds__(BLOCK)
dequant_q4k_v1(const block_q4k *__restrict__ x, float *__restrict__ y, long long nvalues) {
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= nvalues) return;
    const block_q4k *b = x + (i >> 8);
    const int v = (int)(i & 255), c = v >> 6, hi = (v >> 5) & 1, l = v & 31;
    u32 sc, m;
    q4k_scale_min(2 * c + hi, b->scales, &sc, &m);
    const u32 q = b->qs[32 * c + l];
    const float d1 = __fmul_rn(h2f(b->d), (float)sc), m1 = __fmul_rn(h2f(b->dmin), (float)m);
    y[i] = __fsub_rn(__fmul_rn(d1, (float)(hi ? q >> 4 : q & 0xF)), m1);
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
    const block_q4k *b = x + bi;
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
    float *out = y + bi * 256 + 64 * c + 4 * g;
    __stcs((float4 *)out, lo);
    __stcs((float4 *)(out + 32), hv);
}
