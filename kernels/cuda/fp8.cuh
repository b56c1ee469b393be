// fp8.cuh - float32 -> OCP FP8 (e4m3fn, e5m2) codes, round to nearest even, saturating
// (CUDA's __NV_SATFINITE: beyond +-max, infinities included, -> +-max; NaN -> NaN), bit
// for bit as ref/formats.c's kb_f32_to_e4m3 / kb_f32_to_e5m2 with saturate = 1.
// Integer arithmetic on the float's bits, so it means the same on every device; the
// same text is compiled as C by tests/test_cuda_host.c and checked against
// ref/formats.c over a sweep of float32.
//
// Formats (OCP 8-bit Floating Point Specification, OFP8, rev 1.0): e4m3fn bias 7,
// 3 mantissa bits, max 448, no inf, NaN = S.1111.111; e5m2 bias 15, 2 mantissa bits,
// max 57344, IEEE inf/NaN.
#pragma once
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define KBF8_FN __device__ __forceinline__
#define KBF8_BITS(x) __float_as_uint(x)
#else
#include <string.h>
static inline unsigned int kbf8_host_bits(float x) {
    unsigned int u;
    memcpy(&u, &x, sizeof u);
    return u;
}
#define KBF8_FN static inline
#define KBF8_BITS(x) kbf8_host_bits(x)
#endif

// v >> s rounded to nearest, ties to even (s >= 1).
KBF8_FN unsigned int kbf8_shift_rne(unsigned int v, int s) {
    if (s >= 32) return 0u; // v < 2^24 <= 2^(s-1): below half a unit
    const unsigned int q = v >> s, rest = v & ((1u << s) - 1u), half = 1u << (s - 1);
    return q + ((rest > half || (rest == half && (q & 1u))) ? 1u : 0u);
}

// A finite non-negative float (bits a) rounded to mbits mantissa bits and exponent
// bias `bias`: the magnitude code (exponent << mbits | mantissa); a carry out of the
// top lands above the largest finite code (the caller saturates). Normals: drop
// 23 - mbits bits of the re-biased float; subnormals: the significand in units of the
// smallest subnormal 2^(1 - bias - mbits).
KBF8_FN unsigned int kbf8_round_magnitude(unsigned int a, int mbits, int bias) {
    const int e = (int)(a >> 23);
    if (e >= 127 - bias + 1) return kbf8_shift_rne(a - ((unsigned int)(127 - bias) << 23), 23 - mbits);
    const unsigned int sig = (a & 0x7fffffu) | (e ? 0x800000u : 0u);
    const int e_eff = e ? e : 1;
    return kbf8_shift_rne(sig, 151 - bias - mbits - e_eff);
}

// The saturating code of x: e4m3 (e5m2 == 0) or e5m2.
KBF8_FN unsigned int kbf8_encode(float x, int e5m2) {
    const unsigned int u = KBF8_BITS(x), sign = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
    if (e5m2) {
        if (a > 0x7f800000u) return sign | 0x7eu; // NaN
        const unsigned int code = a == 0x7f800000u ? 0x7cu : kbf8_round_magnitude(a, 2, 15);
        return sign | (code > 0x7bu ? 0x7bu : code);
    }
    if (a > 0x7f800000u) return sign | 0x7fu; // NaN
    const unsigned int code = a == 0x7f800000u ? 0x80u : kbf8_round_magnitude(a, 3, 7);
    return sign | (code > 0x7eu ? 0x7eu : code);
}

// Is the code an fp8 subnormal (exponent field 0, mantissa not 0)?
KBF8_FN int kbf8_is_subnormal(unsigned int code, int e5m2) {
    const int mbits = e5m2 ? 2 : 3;
    return ((code & 0x7fu) >> mbits) == 0u && (code & ((1u << mbits) - 1u)) != 0u;
}
