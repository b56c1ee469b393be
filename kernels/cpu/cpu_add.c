/* cpu_add.c - y = a + b in float32 (b widened from its type), ggml_add. */
#include "kernels/cpu/cpu_ops.h"

static int add_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = *slice_floats = 0;
    if (c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "add needs n, k >= 1");
    if (!kb_dtype_is_float(c->a_type)) return kb_fail(msg, KB_NOT_SUPPORTED, "add: b is f32, f16 or bf16");
    return KB_OK;
}

static void add_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const float *a = s->in[0];
    float *y = s->out[0];
    for (int64_t i = begin * s->c.k; i < end * s->c.k; i++) y[i] = a[i] + cpu_load(s->c.a_type, s->in[1], i);
}

static int add_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n, add_rows, NULL);
    return KB_OK;
}

const cpu_op cpu_op_add = {add_check, NULL, add_run, "float32 a + b", NULL};
