/* formats.c - scalar, bit-exact codecs for fp16, bf16, OCP FP8 (e4m3fn, e5m2) and
 * ggml's Q4_K / Q6_K blocks (see formats.h for the contract).
 *
 * Sources for the formulas:
 *  - IEEE 754-2008 binary16, round to nearest, ties to even.
 *  - bf16: the top 16 bits of a binary32, rounded to nearest even.
 *  - OCP 8-bit Floating Point Specification (OFP8) rev 1.0: e4m3 bias 7, no inf,
 *    NaN = S.1111.111; e5m2 bias 15, IEEE inf/NaN. Out-of-range results follow
 *    ml_dtypes' float32 casts (e4m3fn -> NaN, e5m2 -> inf); saturation follows
 *    CUDA's __NV_SATFINITE (clamp to +-max, inf included).
 *  - Q4_K / Q6_K: ggml/src/ggml-quants.c (dequantize_row_q4_K, dequantize_row_q6_K,
 *    quantize_row_q4_K_ref, make_qkx2_quants, nearest_int, get_scale_min_k4) and
 *    ggml-common.h (block layouts). docs/FORMATS.md states the formulas.
 *
 * The Q4_K quantizer reproduces ggml's float arithmetic operation by operation, so
 * it needs float expressions evaluated in float (FLT_EVAL_METHOD 0) and no fused
 * multiply-add contraction (switched off below for GCC and clang, whatever -std or
 * -march the build uses). Checked bit-exact against ggml's own quantize_row_q4_K_ref. */
#include "formats.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "formats.c needs FLT_EVAL_METHOD == 0 to be bit-exact with ggml (x86-64 SSE, aarch64)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off") /* GNU modes default to fast contraction */
#endif

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* v >> s rounded to nearest, ties to even (s >= 1). */
static uint32_t shift_rne(uint32_t v, int s) {
    if (s >= 32) {
        return 0; /* v < 2^24 <= 2^(s-1): below half an ulp */
    }
    const uint32_t q = v >> s;
    const uint32_t rest = v & ((1u << s) - 1u);
    const uint32_t half = 1u << (s - 1);
    return q + (rest > half || (rest == half && (q & 1u)));
}

/* Round a finite non-negative float32 (bits `a`, sign cleared) to a binary format
 * with `mbits` stored mantissa bits and exponent bias `bias`, nearest even. Returns
 * the magnitude code (exponent << mbits | mantissa); a carry out of the top
 * exponent lands above the largest finite code, which the caller treats as overflow.
 * Target normals: drop 23 - mbits bits of the re-biased float (the carry from
 * rounding moves into the exponent field on its own). Target subnormals: the
 * significand with its implicit bit, scaled to units of the smallest subnormal
 * 2^(1 - bias - mbits). */
static uint32_t round_magnitude(uint32_t a, int mbits, int bias) {
    const int e = (int)(a >> 23);              /* float32 biased exponent */
    const int min_normal_e = 127 - bias + 1;   /* float32 exponent of the target's 2^(1-bias) */
    if (e >= min_normal_e) {
        return shift_rne(a - ((uint32_t)(127 - bias) << 23), 23 - mbits);
    }
    const uint32_t sig = (a & 0x7fffffu) | (e ? 0x800000u : 0u);
    const int e_eff = e ? e : 1; /* float32 subnormals share exponent 2^-126 */
    /* value = sig * 2^(e_eff - 150); code = value / 2^(1 - bias - mbits) */
    return shift_rne(sig, 151 - bias - mbits - e_eff);
}

/* ---- fp16 ---------------------------------------------------------------- */

uint16_t kb_f32_to_f16(float x, int saturate) {
    const uint32_t u = f32_bits(x);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) { /* NaN: quiet, top payload bits kept (as F16C's vcvtps2ph) */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    }
    const uint32_t code = (a == 0x7f800000u) ? 0x7c00u : round_magnitude(a, 10, 15);
    if (code > 0x7bffu) { /* beyond 65504 after rounding, or inf */
        return (uint16_t)(sign | (saturate ? 0x7bffu : 0x7c00u));
    }
    return (uint16_t)(sign | code);
}

float kb_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    if (e == 0x1f) { /* inf, or NaN made quiet */
        return bits_f32(sign | 0x7f800000u | (mant ? 0x400000u | (mant << 13) : 0u));
    }
    if (e == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        const float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e - 15 + 127) << 23) | (mant << 13));
}

/* ---- bf16 ---------------------------------------------------------------- */

uint16_t kb_f32_to_bf16(float x, int saturate) {
    const uint32_t u = f32_bits(x);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (uint16_t)(sign | 0x7fc0u | ((a >> 16) & 0x7fu));
    }
    /* Same exponent range as float32: rounding the low 16 bits away is the whole
     * conversion, subnormals included. */
    const uint32_t code = (a == 0x7f800000u) ? 0x7f80u : shift_rne(a, 16);
    if (code > 0x7f7fu) {
        return (uint16_t)(sign | (saturate ? 0x7f7fu : 0x7f80u));
    }
    return (uint16_t)(sign | code);
}

float kb_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        u |= 0x400000u; /* quiet */
    }
    return bits_f32(u);
}

/* ---- OCP FP8 ------------------------------------------------------------- */

uint8_t kb_f32_to_e4m3(float x, int saturate) {
    const uint32_t u = f32_bits(x);
    const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (uint8_t)(sign | 0x7fu);
    }
    /* e4m3fn has no inf: codes 0x7f (NaN) and above are out of range; 464 (the tie
     * between 448 = 1.110b*2^8 and 480) rounds to even, down to 448. */
    const uint32_t code = (a == 0x7f800000u) ? 0x80u : round_magnitude(a, 3, 7);
    if (code > 0x7eu) {
        return (uint8_t)(sign | (saturate ? 0x7eu : 0x7fu));
    }
    return (uint8_t)(sign | code);
}

float kb_e4m3_to_f32(uint8_t v) {
    const uint32_t sign = (uint32_t)(v & 0x80u) << 24;
    const uint32_t e = (v >> 3) & 0xfu;
    const uint32_t mant = v & 0x7u;
    if (e == 0xf && mant == 0x7) {
        return bits_f32(sign | 0x7fc00000u);
    }
    if (e == 0) { /* mant * 2^-9 */
        const float f = ldexpf((float)mant, -9);
        return sign ? -f : f;
    }
    return bits_f32(sign | ((e - 7 + 127) << 23) | (mant << 20));
}

uint8_t kb_f32_to_e5m2(float x, int saturate) {
    const uint32_t u = f32_bits(x);
    const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (uint8_t)(sign | 0x7eu); /* quiet NaN */
    }
    const uint32_t code = (a == 0x7f800000u) ? 0x7cu : round_magnitude(a, 2, 15);
    if (code > 0x7bu) { /* beyond 57344 after rounding, or inf */
        return (uint8_t)(sign | (saturate ? 0x7bu : 0x7cu));
    }
    return (uint8_t)(sign | code);
}

float kb_e5m2_to_f32(uint8_t v) {
    /* e5m2 is the top byte of an fp16 */
    return kb_f16_to_f32((uint16_t)((uint16_t)v << 8));
}

/* ---- Q4_K / Q6_K --------------------------------------------------------- */

/* ggml get_scale_min_k4: sub-blocks 0..3 keep 6 bits in scales[j] / scales[j+4];
 * 4..7 keep the low nibbles in scales[j+4] and the top 2 bits in the spare top
 * bits of scales[j-4] (scale) and scales[j] (min). */
void kb_q4k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* ggml dequantize_row_q4_K: per 64-value chunk, d1 = d*sc, m1 = dmin*m as floats,
 * then y = d1 * q - m1 (low nibbles first, then high nibbles). */
void kb_dequant_q4k(const kb_block_q4k *x, float *y, int64_t nblocks) {
    for (int64_t i = 0; i < nblocks; i++) {
        const float d = kb_f16_to_f32(x[i].d);
        const float dmin = kb_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int c = 0; c < 4; c++) {
            uint8_t sc, m;
            kb_q4k_scale_min(2 * c, x[i].scales, &sc, &m);
            const float d1 = d * sc;
            const float m1 = dmin * m;
            kb_q4k_scale_min(2 * c + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc;
            const float m2 = dmin * m;
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (float)(q[l] & 0xF) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (float)(q[l] >> 4) - m2;
            }
            q += 32;
        }
    }
}

/* ggml dequantize_row_q6_K: per 128-value half, q = (ql nibble | 2 qh bits << 4) - 32;
 * value n of the half uses scale n/16 (the half's 8 scales), y = (d * scale) * q. */
void kb_dequant_q6k(const kb_block_q6k *x, float *y, int64_t nblocks) {
    for (int64_t i = 0; i < nblocks; i++) {
        const float d = kb_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ggml nearest_int: adding 1.5*2^23 leaves round-to-nearest-even(fval) in the low
 * mantissa bits (valid for |fval| < 2^22; ggml asserts that, we keep its result
 * for anything else so the bits still match a release build). */
static int nearest_int(float fval) {
    const float val = fval + 12582912.f;
    const uint32_t i = f32_bits(val);
    return (int)(i & 0x007fffffu) - 0x00400000;
}

static int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* round(v) to nearest even, clamped to [lo, hi] before converting (NaN -> lo). */
static int round_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v > (float)hi) return hi;
    return (int)lrintf(v);
}

/* ggml make_qkx2_quants: fit x ~ scale * L + min (min <= 0, L in [0, nmax]) by a
 * weighted least-squares search over nstep+1 trial inverse scales
 * (rmin + rdelta*is + nmax) / (max - min). All sums in float, in ggml's order;
 * use_mad is false for Q4_K (squared error). Returns scale, *the_min = -min. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)clamp_int(l, 0, nmax);
        const float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                const float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml quantize_row_q4_K_ref (no importance matrix). Per sub-block of 32: weights
 * av_x + |x| with av_x = sqrt(mean x^2), make_qkx2_quants(32, 15, ..., -1, 0.1, 20);
 * 6-bit scales and mins relative to the block maxima (d = max_scale/63 and
 * dmin = max_min/63 stored as fp16); then every value is requantized against the
 * fp16-rounded d*sc and dmin*m. A sub-block whose d*sc is 0 keeps the L of the
 * first fit, as ggml does. */
void kb_quantize_q4k(const float *x, kb_block_q4k *y, int64_t nblocks) {
    uint8_t L[KB_QK_K];
    uint8_t Laux[32];
    float weights[32];
    float mins[KB_QK_K / 32];
    float scales[KB_QK_K / 32];

    for (int64_t i = 0; i < nblocks; i++) {
        float max_scale = 0;
        float max_min = 0;
        for (int j = 0; j < KB_QK_K / 32; ++j) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(xs[l]);
            scales[j] = make_qkx2_quants(32, 15, xs, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }

        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(y[i].scales, 0, sizeof y[i].scales);
        for (int j = 0; j < KB_QK_K / 32; ++j) {
            /* ggml stores nearest_int into a uint8_t, then takes MIN(63, .): keep the wrap */
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            if (ls > 63) ls = 63;
            if (lm > 63) lm = 63;
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = kb_f32_to_f16(max_scale / 63.f, 0);
        y[i].dmin = kb_f32_to_f16(max_min / 63.f, 0);

        const float d_block = kb_f16_to_f32(y[i].d);
        const float dmin_block = kb_f16_to_f32(y[i].dmin);
        for (int j = 0; j < KB_QK_K / 32; ++j) {
            uint8_t sc, m;
            kb_q4k_scale_min(j, y[i].scales, &sc, &m);
            const float d = d_block * sc;
            if (!d) continue;
            const float dm = dmin_block * m;
            for (int ii = 0; ii < 32; ++ii) {
                L[32 * j + ii] = (uint8_t)clamp_int(nearest_int((x[32 * j + ii] + dm) / d), 0, 15);
            }
        }

        uint8_t *q = y[i].qs;
        for (int j = 0; j < KB_QK_K; j += 64) {
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
        x += KB_QK_K;
    }
}

/* A plain Q6_K quantizer (not ggml's make_qx_quants search). Per 16-value group
 * s = absmax/31; block d = max(s)/127 rounded *up* to fp16; int8 group scale
 * ceil(s/d) <= 127, so the group step d*scale >= s and every |x| <= 31 steps:
 * q = round(x / step) never clamps and each value is off by at most half a step.
 * Packing follows dequantize_row_q6_K's index pattern (see kb_dequant_q6k). */
void kb_quantize_q6k(const float *x, kb_block_q6k *y, int64_t nblocks) {
    uint8_t L[KB_QK_K];
    float group_scale[KB_QK_K / 16];

    for (int64_t i = 0; i < nblocks; i++) {
        const float *xb = x + i * KB_QK_K;
        float max_scale = 0;
        for (int g = 0; g < KB_QK_K / 16; g++) {
            float amax = 0;
            for (int l = 0; l < 16; l++) {
                const float a = fabsf(xb[16 * g + l]);
                if (a > amax) amax = a;
            }
            group_scale[g] = amax / 31.f;
            if (group_scale[g] > max_scale) max_scale = group_scale[g];
        }
        const float d_want = max_scale / 127.f;
        uint16_t dh = kb_f32_to_f16(d_want, 1); /* saturated: huge inputs still give a finite block */
        if (kb_f16_to_f32(dh) < d_want && dh < 0x7bffu) {
            dh++; /* next fp16 up: positive codes are ordered like their values */
        }
        y[i].d = dh;
        const float d = kb_f16_to_f32(dh);
        for (int g = 0; g < KB_QK_K / 16; g++) {
            const int s = d > 0 ? round_clamp(ceilf(group_scale[g] / d), 0, 127) : 0;
            y[i].scales[g] = (int8_t)s;
            const float step = d * (float)s;
            for (int l = 0; l < 16; l++) {
                const int q = step > 0 ? round_clamp(xb[16 * g + l] / step, -32, 31) : 0;
                L[16 * g + l] = (uint8_t)(q + 32);
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int h = 0; h < KB_QK_K; h += 128) {
            const uint8_t *Lh = L + h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}
