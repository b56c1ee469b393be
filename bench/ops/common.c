/* common.c - helpers of the op entries (common.h). */
#include "bench/ops/common.h"

double *op_decode(const kb_tensor *t) {
    double *d = malloc((size_t)(t->count > 0 ? t->count : 1) * sizeof *d);
    if (!d) {
        fprintf(stderr, "kbench: out of host memory decoding %s (%lld values)\n", t->name, (long long)t->count);
        exit(3);
    }
    kb_decode(t->type, t->host, d, t->count);
    return d;
}

int op_positive(char *msg, const char *what, int64_t v) {
    if (v <= 0) return kb_fail(msg, KB_ERROR, "%s must be positive (got %lld)", what, (long long)v);
    return KB_OK;
}

void op_fp8_quant_tolerance(kb_dtype fp8, int out, kb_tolerance *t) {
    char f[160];
    if (out == 0) {
        /* RNE errs by at most half a step: u_fp8 |v| for normals, step/2 for subnormals */
        snprintf(f, sizeof f, "u_fp8*|x/s| + 4*u32*|x/s| + step/2, u_fp8=%.3g step=%.3g (a correct rounding of x/s)",
                 kb_unit_roundoff(fp8), kb_subnormal_step(fp8));
        op_tol(t, kb_unit_roundoff(fp8), 4 * U32, kb_subnormal_step(fp8) / 2, f);
    } else {
        op_tol(t, 0, 8 * U32, 0, "8*u32*|s|, s = amax/fp8_max (a float division within 4 ulp)");
    }
}

int op_validate_float_type(char *msg, const char *op, const char *what, kb_dtype t) {
    if (!kb_dtype_is_float(t))
        return kb_fail(msg, KB_ERROR, "%s: %s must be f32, f16 or bf16 (got %s)", op, what, kb_dtype_name(t));
    return KB_OK;
}

void op_gen_float(uint64_t seed, kb_dtype t, void *dst, int64_t rows, int64_t len, uint64_t stream, int kind,
                  double scale) {
    if (t == KB_F32) {
        kb_gen_activations(seed, dst, rows, len, stream, kind, scale);
        return;
    }
    float *tmp = malloc((size_t)(rows * len) * sizeof *tmp);
    if (!tmp) abort();
    kb_gen_activations(seed, tmp, rows, len, stream, kind, scale);
    uint16_t *d = dst;
    for (int64_t i = 0; i < rows * len; i++) d[i] = t == KB_F16 ? kb_f32_to_f16(tmp[i], 0) : kb_f32_to_bf16(tmp[i], 0);
    free(tmp);
}

void op_fp8_quant_reference(const kb_case *c, int64_t rows, const void *x, kb_ref_out *out) {
    ref_quant_fp8_args a = {rows, c->k, c->a_type, c->out_type, c->scale_mode, c->flush};
    const int64_t ns = kb_scale_count(c->scale_mode, rows, c->k);
    float *s = malloc((size_t)ns * sizeof *s);
    if (!s) abort();
    ref_quant_fp8(&a, x, s, NULL, out[0].ref);
    for (int64_t i = 0; i < rows * c->k; i++) out[0].mag[i] = fabs(out[0].ref[i]);
    for (int64_t g = 0; g < ns; g++) {
        out[1].ref[g] = s[g];
        out[1].mag[g] = fabs((double)s[g]);
    }
    free(s);
}
