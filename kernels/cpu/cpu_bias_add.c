/* cpu_bias_add.c - y[n][m] = x[n][m] + bias[m] in float32 (x widened from its type). */
#include "kernels/cpu/cpu_ops.h"

static int bias_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = *slice_floats = 0;
    if (c->n < 1 || c->m < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "bias_add needs n, m >= 1");
    if (!kb_dtype_is_float(c->a_type)) return kb_fail(msg, KB_NOT_SUPPORTED, "bias_add: x is f32, f16 or bf16");
    return KB_OK;
}

static void bias_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const int64_t M = s->c.m;
    const float *b = s->in[1];
    float *y = s->out[0];
    for (int64_t t = begin; t < end; t++)
        for (int64_t i = 0; i < M; i++) y[t * M + i] = cpu_load(s->c.a_type, s->in[0], t * M + i) + b[i];
}

static int bias_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n, bias_rows, NULL);
    return KB_OK;
}

const cpu_op cpu_op_bias_add = {bias_check, NULL, bias_run, "float32 x + bias", NULL};
