/* quant_fp8.c - ref_quant_fp8: a matrix to fp8 with amax-derived float32 scales, as
 * FP8 inference quantizes activations and weights (the OCP FP8 formats,
 * docs/FORMATS.md; scale s = amax / fp8_max so the largest |x| of a group lands on
 * fp8_max, as Transformer Engine's and DeepSeek-V3's per-tensor / per-token /
 * 1x128 / 128x128 recipes compute it; CUDA's __NV_SATFINITE saturation):
 *   amax_g = max |x| over scale group g (exact)
 *   s_g    = f32(amax_g / fp8_max), or 1 when amax_g == 0
 *   q      = fp8(f32(x / s_g)), nearest even, saturating; with flush, a result that
 *            would be an fp8 subnormal becomes +-0 (a flush-to-zero kernel's answer)
 * x / s_g of two floats computed in double and then rounded to float is the
 * correctly rounded float quotient (double has more than 2*24+2 bits: the double
 * rounding is innocuous, Figueroa 1995). */
#include "ref/ref.h"
#include "ref/ref_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct {
    const ref_quant_fp8_args *a;
    const uint8_t *x;
    uint64_t row_bytes;
    int64_t kb;       /* 128-wide column blocks */
    double *row_amax; /* [rows][kb]: amax of each row's 128-column blocks */
    const float *scales;
    float *scales_out;
    uint8_t *codes;
    double *quotient;
} quant_job;

static void decode_row(const quant_job *j, int64_t row, double *v) {
    kb_decode(j->a->in_type, j->x + (uint64_t)row * j->row_bytes, v, j->a->k);
}

static void amax_row(int64_t row, void *p) {
    const quant_job *j = p;
    double *v = ref_malloc((size_t)j->a->k * sizeof(double));
    decode_row(j, row, v);
    for (int64_t b = 0; b < j->kb; b++) {
        double m = 0;
        for (int64_t c = b * 128; c < ref_min64(j->a->k, (b + 1) * 128); c++)
            if (fabs(v[c]) > m) m = fabs(v[c]);
        j->row_amax[row * j->kb + b] = m;
    }
    free(v);
}

static int is_subnormal_code(kb_dtype t, uint8_t code) {
    const int mbits = t == KB_E4M3 ? 3 : 2;
    return (code & 0x7f) >> mbits == 0 && (code & ((1 << mbits) - 1)) != 0;
}

static void quantize_row(int64_t row, void *p) {
    const quant_job *j = p;
    const ref_quant_fp8_args *a = j->a;
    double *v = ref_malloc((size_t)a->k * sizeof(double));
    decode_row(j, row, v);
    for (int64_t c = 0; c < a->k; c++) {
        const double s = j->scales[kb_scale_index(a->mode, row, c, a->k)];
        const float qf = (float)(v[c] / s);
        uint8_t code = a->fp8 == KB_E4M3 ? kb_f32_to_e4m3(qf, 1) : kb_f32_to_e5m2(qf, 1);
        const int flushed = a->flush && is_subnormal_code(a->fp8, code);
        if (flushed) code &= 0x80; /* +-0 */
        if (j->codes) j->codes[row * a->k + c] = code;
        if (j->quotient) j->quotient[row * a->k + c] = flushed ? 0.0 : v[c] / s;
    }
    free(v);
}

void ref_quant_fp8(const ref_quant_fp8_args *a, const void *x, float *scales, uint8_t *codes, double *quotient) {
    if (!kb_dtype_is_fp8(a->fp8)) ref_abort("ref_quant_fp8: the target must be e4m3 or e5m2");
    if ((unsigned)a->mode >= KB_SCALE_COUNT) ref_abort("ref_quant_fp8: unknown scale mode");
    if (a->k % kb_dtype_block(a->in_type)) ref_abort("ref_quant_fp8: a Q4_K/Q6_K row is a multiple of 256");
    quant_job j = {.a = a, .x = x, .row_bytes = kb_dtype_bytes(a->in_type, a->k), .kb = (a->k + 127) / 128};
    j.row_amax = ref_malloc((size_t)(a->rows * j.kb) * sizeof(double));
    kb_parallel_for(a->rows, amax_row, &j);

    /* group amax: a max, exact in any order */
    const int64_t nscale = kb_scale_count(a->mode, a->rows, a->k);
    double *amax = ref_calloc((size_t)nscale, sizeof(double));
    for (int64_t r = 0; r < a->rows; r++)
        for (int64_t b = 0; b < j.kb; b++) {
            const int64_t g = kb_scale_index(a->mode, r, b * 128, a->k);
            if (j.row_amax[r * j.kb + b] > amax[g]) amax[g] = j.row_amax[r * j.kb + b];
        }
    float *s = scales ? scales : ref_malloc((size_t)nscale * sizeof(float));
    const double fmax = kb_max_finite(a->fp8);
    for (int64_t g = 0; g < nscale; g++) s[g] = amax[g] > 0 ? (float)(amax[g] / fmax) : 1.0f;
    j.scales = s;
    j.codes = codes;
    j.quotient = quotient;
    if (codes || quotient) kb_parallel_for(a->rows, quantize_row, &j);
    if (!scales) free(s);
    free(amax);
    free(j.row_amax);
}
