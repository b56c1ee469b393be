/* cpu_swiglu.c - y = silu(gate) * up in float32, silu(g) = g / (1 + expf(-g)) as
 * ggml_vec_swiglu_f32 computes it. */
#include "kernels/cpu/cpu_ops.h"

#include <math.h>

static int swiglu_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = *slice_floats = 0;
    if (c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "swiglu needs n, k >= 1");
    if (!kb_dtype_is_float(c->a_type)) return kb_fail(msg, KB_NOT_SUPPORTED, "swiglu: gate/up are f32, f16 or bf16");
    return KB_OK;
}

static void swiglu_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    float *y = s->out[0];
    for (int64_t i = begin * s->c.k; i < end * s->c.k; i++) {
        const float g = cpu_load(s->c.a_type, s->in[0], i), u = cpu_load(s->c.a_type, s->in[1], i);
        y[i] = g / (1.0f + expf(-g)) * u;
    }
}

static int swiglu_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n, swiglu_rows, NULL);
    return KB_OK;
}

const cpu_op cpu_op_swiglu = {swiglu_check, NULL, swiglu_run, "float32 g / (1 + expf(-g)) * up", NULL};
