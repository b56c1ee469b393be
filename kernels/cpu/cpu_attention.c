/* cpu_attention.c - causal GQA attention in float32, the textbook way
 * (softmax(q K^T / sqrt(d)) V, Vaswani et al. 2017), one query head at a time:
 *   s_j = (q . k_j) * (1/sqrtf(d))   dot in float, 8 partial sums like a SIMD vec_dot
 *   p_j = expf(s_j - max_j s_j)      float
 *   out = (sum_j p_j v_j) / sum_j p_j  float sums in j order
 * Query head h reads KV head h / (heads / kv_heads); query i sits at position
 * kv_len - n + i and sees keys 0..that position. */
#include "kernels/cpu/cpu_ops.h"

#include <math.h>

static int attention_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = 0;
    *slice_floats = (size_t)(c->kv_len > 0 ? c->kv_len : 0); /* the scores of one query head */
    if (c->n < 1 || c->kv_len < 1 || c->heads < 1 || c->kv_heads < 1 || c->head_dim < 1)
        return kb_fail(msg, KB_NOT_SUPPORTED, "attention needs n, kv_len, heads, kv_heads, head_dim >= 1");
    if (c->heads % c->kv_heads) return kb_fail(msg, KB_NOT_SUPPORTED, "attention needs heads %% kv_heads == 0");
    if (c->n > c->kv_len)
        return kb_fail(msg, KB_NOT_SUPPORTED, "attention: n > kv_len leaves queries that see no key");
    return KB_OK;
}

/* q . k with 8 partial sums (lane i % 8), added pairwise at the end */
static float dot8(const float *a, const float *b, int64_t n) {
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) lane[l] += a[i] * b[i];
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

static void attention_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)arg;
    const kb_case *c = &s->c;
    const int64_t heads = c->heads, kv_heads = c->kv_heads, d = c->head_dim, group = heads / kv_heads;
    const float scale = 1.0f / sqrtf((float)d);
    float *p = cpu_slice_mem(s, slice);
    for (int64_t item = begin; item < end; item++) {
        const int64_t i = item / heads, h = item % heads, g = h / group;
        int64_t visible = c->kv_len - c->n + i + 1;
        if (s->test == CPU_OP_TEST(0) && visible > 1) visible--; /* test_skip_key: the mask off by one */
        const float *q = (const float *)s->in[0] + (i * heads + h) * d;
        const float *k = s->in[1], *v = s->in[2];
        float *out = (float *)s->out[0] + (i * heads + h) * d;
        float mx = -INFINITY;
        for (int64_t j = 0; j < visible; j++) {
            p[j] = dot8(q, k + (j * kv_heads + g) * d, d) * scale;
            if (p[j] > mx) mx = p[j];
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < visible; j++) {
            p[j] = expf(p[j] - mx);
            sum += p[j];
        }
        for (int64_t l = 0; l < d; l++) out[l] = 0.0f;
        for (int64_t j = 0; j < visible; j++) {
            const float *vj = v + (j * kv_heads + g) * d;
            for (int64_t l = 0; l < d; l++) out[l] += p[j] * vj[l];
        }
        const float inv = 1.0f / sum;
        for (int64_t l = 0; l < d; l++) out[l] *= inv;
    }
}

static int attention_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n * s->c.heads, attention_rows, NULL);
    return KB_OK;
}

static const cpu_test attention_tests[] = {
    {"test_skip_key", "TEST ONLY: the causal mask hides each query's own position (one key missing)"}, {NULL, NULL}};

const cpu_op cpu_op_attention = {attention_check, NULL, attention_run,
                                 "float32: 8-lane dot, expf softmax with max, float sums in key order", attention_tests};
