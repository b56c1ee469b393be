/* cpu_rmsnorm.c - RMSNorm as ggml's CPU backend computes it (ggml_compute_forward_rms_norm_f32
 * followed by the weight multiply, fused as in ggml's RMS_NORM + MUL):
 *   sum   = sum_i (double)(x_i * x_i)      squares in float, summed in double (ggml_float)
 *   mean  = (float)(sum / k)
 *   scale = 1.0f / sqrtf(mean + eps)       eps as float
 *   y_i   = x_i * scale * w_i              float, left to right */
#include "kernels/cpu/cpu_ops.h"

#include <math.h>

static int rmsnorm_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = 0;
    *slice_floats = 0;
    if (c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "rmsnorm needs n >= 1 and k >= 1");
    return KB_OK;
}

static void rmsnorm_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const int64_t k = s->c.k;
    const float eps = (float)s->c.eps; /* test_eps1e5 set it in the state's copy */
    const float *w = s->in[1];
    for (int64_t row = begin; row < end; row++) {
        const float *x = (const float *)s->in[0] + row * k;
        float *y = (float *)s->out[0] + row * k;
        double sum = 0.0;
        for (int64_t i = 0; i < k; i++) sum += (double)(x[i] * x[i]);
        const float mean = (float)(sum / (double)k);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < k; i++) y[i] = x[i] * scale * w[i];
    }
}

static int rmsnorm_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n, rmsnorm_rows, NULL);
    return KB_OK;
}

static void rmsnorm_setup(cpu_state *s) {
    if (s->test == CPU_OP_TEST(0)) s->c.eps = 1e-5; /* the hard-coded-eps bug class */
}

static const cpu_test rmsnorm_tests[] = {{"test_eps1e5", "TEST ONLY: rmsnorm with eps 1e-5 instead of the case's"},
                                         {NULL, NULL}};

const cpu_op cpu_op_rmsnorm = {rmsnorm_check, rmsnorm_setup, rmsnorm_run,
                               "ggml CPU rms_norm: float squares summed in double, 1/sqrtf(mean+eps), x*scale*w",
                               rmsnorm_tests};
