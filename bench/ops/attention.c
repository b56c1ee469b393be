/* attention.c - causal GQA softmax(q k^T / sqrt(d)) v, decode (N = 1) and prefill
 * (N = KV_LEN) and chunks in between: query i sits at position kv_len - n + i. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { (void)c; }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "queries (N)", c->n) || op_positive(msg, "kv_len", c->kv_len) ||
        op_positive(msg, "heads", c->heads) || op_positive(msg, "kv_heads", c->kv_heads) ||
        op_positive(msg, "head_dim", c->head_dim))
        return KB_ERROR;
    if (c->heads % c->kv_heads)
        return kb_fail(msg, KB_ERROR, "attention: heads (%lld) must be a multiple of kv_heads (%lld)", (long long)c->heads,
                       (long long)c->kv_heads);
    if (c->n > c->kv_len)
        return kb_fail(msg, KB_ERROR, "attention: queries (%lld) cannot exceed kv_len (%lld)", (long long)c->n,
                       (long long)c->kv_len);
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->heads * c->head_dim == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "q", KB_F32, c->n * c->heads * c->head_dim);
    op_tensor(&t[1], "k", KB_F32, c->kv_len * c->kv_heads * c->head_dim);
    op_tensor(&t[2], "v", KB_F32, c->kv_len * c->kv_heads * c->head_dim);
    op_tensor(&t[3], "o", KB_F32, c->n * c->heads * c->head_dim);
}

static void generate(const kb_case *c, kb_tensor *in) {
    /* q, k ~ N(0, 1): scores q.k/sqrt(d) ~ N(0, 1), a realistic softmax spread */
    kb_gen_activations(c->seed, in[0].host, c->n, c->heads * c->head_dim, 31, KB_GEN_PLAIN, 1.0);
    kb_gen_activations(c->seed, in[1].host, c->kv_len, c->kv_heads * c->head_dim, 32, KB_GEN_PLAIN, 1.0);
    kb_gen_activations(c->seed, in[2].host, c->kv_len, c->kv_heads * c->head_dim, 33, KB_GEN_PLAIN, 1.0);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *q = op_decode(&in[0]), *k = op_decode(&in[1]), *v = op_decode(&in[2]);
    ref_attention_dims d = {c->n, c->kv_len, c->heads, c->kv_heads, c->head_dim};
    ref_attention(&d, q, k, v, out[0].ref, out[0].mag);
    free(q);
    free(k);
    free(v);
}

static double pairs(const kb_case *c) { /* (query, key) pairs visible under the causal mask */
    const double first = (double)(c->kv_len - c->n + 1), last = (double)c->kv_len;
    return (first + last) * (double)c->n / 2.0;
}
static double flops(const kb_case *c) { return 4.0 * pairs(c) * (double)c->heads * (double)c->head_dim; }
static double bytes(const kb_case *c) {
    return 4.0 * (2.0 * (double)c->n * (double)c->heads * (double)c->head_dim +
                  2.0 * (double)c->kv_len * (double)c->kv_heads * (double)c->head_dim);
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)out;
    /* the reference's mag carries the score sensitivity (ref/attention.c); here the
     * output sum over L keys (2 sqrt(L)), the d-term dot products (2 sqrt(d)), and a
     * few ulps for exp, max and the divide (16) */
    op_tol(t, 0, (2 * sqrt((double)c->kv_len) + 2 * sqrt((double)c->head_dim) + 16) * (u_acc > 0 ? u_acc : U32), 0,
           "(2*sqrt(L) + 2*sqrt(d) + 16)*u_acc*mag, mag = sum p|v| + sum p|v-o|(S+1)");
}

const kb_op kb_op_attention = {
    .name = "attention",
    .summary = "causal GQA softmax(q k^T / sqrt(d)) v, decode and prefill",
    .dims = {KB_P_N, KB_P_KV_LEN, KB_P_HEADS, KB_P_KV_HEADS, KB_P_HEAD_DIM},
    .n_dims = 5,
    .dims_text = "NxKV_LENxHEADSxKV_HEADSxHEAD_DIM",
    .n_in = 3,
    .n_out = 1,
    .defaults = defaults,
    .validate = validate,
    .matches_leading = leading,
    .tensors = tensors,
    .generate = generate,
    .reference = reference,
    .flops = flops,
    .bytes = bytes,
    .tolerance = tolerance,
};
