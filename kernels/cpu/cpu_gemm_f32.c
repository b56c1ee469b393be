/* cpu_gemm_f32.c - D[n][m] = sum_k W[m][k] X[n][k] in float32, each output one float
 * dot with 8 partial sums (like ggml's SIMD vec_dot_f32), rows of W over the threads. */
#include "kernels/cpu/cpu_ops.h"

static int gemm_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = 0;
    *slice_floats = 0;
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "gemm_f32 needs m, n, k >= 1");
    return KB_OK;
}

static float dot8(const float *a, const float *b, int64_t n) {
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) lane[l] += a[i] * b[i];
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

static void gemm_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const int64_t M = s->c.m, N = s->c.n, K = s->c.k;
    const float *w = s->in[0], *x = s->in[1];
    float *d = s->out[0];
    for (int64_t m = begin; m < end; m++)
        for (int64_t n = 0; n < N; n++) d[n * M + m] = dot8(w + m * K, x + n * K, K);
}

static int gemm_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.m, gemm_rows, NULL);
    return KB_OK;
}

const cpu_op cpu_op_gemm_f32 = {gemm_check, NULL, gemm_run, "float32 8-lane dot per output (ggml vec_dot_f32-like)", NULL};
