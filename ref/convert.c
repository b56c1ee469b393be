/* convert.c - kb_decode and kb_round_to (convert.h). */
#include "ref/convert.h"

#include "ref/formats.h"
#include "ref/ref_util.h"

#include <float.h>
#include <math.h>
#include <string.h>

void kb_decode(kb_dtype t, const void *src, double *dst, int64_t count) {
    switch (t) {
    case KB_F32: {
        const float *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = s[i];
        break;
    }
    case KB_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_f16_to_f32(s[i]);
        break;
    }
    case KB_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_bf16_to_f32(s[i]);
        break;
    }
    case KB_E4M3: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_e4m3_to_f32(s[i]);
        break;
    }
    case KB_E5M2: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_e5m2_to_f32(s[i]);
        break;
    }
    case KB_I32: {
        const int32_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = s[i];
        break;
    }
    case KB_Q4K:
    case KB_Q6K: {
        /* ggml's block dequant is float arithmetic by definition (ref/formats.h):
         * its float results are the exact values the format stands for. */
        if (count % KB_QK_K) ref_abort("kb_decode: Q4_K/Q6_K count is not a multiple of 256");
        float y[KB_QK_K];
        for (int64_t b = 0; b < count / KB_QK_K; b++) {
            if (t == KB_Q4K)
                kb_dequant_q4k((const kb_block_q4k *)src + b, y, 1);
            else
                kb_dequant_q6k((const kb_block_q6k *)src + b, y, 1);
            for (int i = 0; i < KB_QK_K; i++) dst[b * KB_QK_K + i] = y[i];
        }
        break;
    }
    default: ref_abort("kb_decode: unknown dtype");
    }
}

/* double -> float with round-to-odd: x itself if representable, otherwise the one
 * of its two float neighbours whose last significand bit is 1. Rounding that float
 * to a narrower format (<= 22 significand bits, here at most 11) with round to
 * nearest even then gives the correctly rounded result of x, which rounding through
 * an ordinary (float)x would not always: x just above a half-way point of the
 * narrow format can land exactly on it in float and then tie to even the wrong way.
 * (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
 * algorithms using rounding to odd", IEEE TC 2008.) */
static float f32_round_to_odd(double x) {
    float f = (float)x;
    if (isnan(x) || (double)f == x) return f;
    if (isinf(f))
        f = copysignf(FLT_MAX, f); /* truncating an overflow gives the largest float */
    else if (fabs((double)f) > fabs(x))
        f = nextafterf(f, 0.0f); /* the neighbour toward zero */
    uint32_t u;
    memcpy(&u, &f, 4);
    u |= 1u; /* even -> the next float up in magnitude, which is odd */
    memcpy(&f, &u, 4);
    return f;
}

void kb_round_to(kb_dtype t, const double *src, void *dst, int64_t count) {
    switch (t) {
    case KB_F32: {
        float *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = (float)src[i]; /* IEEE: nearest even, overflow -> inf */
        break;
    }
    case KB_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_f16(f32_round_to_odd(src[i]), 0);
        break;
    }
    case KB_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_bf16(f32_round_to_odd(src[i]), 0);
        break;
    }
    case KB_E4M3: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_e4m3(f32_round_to_odd(src[i]), 0);
        break;
    }
    case KB_E5M2: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_e5m2(f32_round_to_odd(src[i]), 0);
        break;
    }
    default: ref_abort("kb_round_to: not a float output type (F32, F16, BF16, E4M3, E5M2)");
    }
}
