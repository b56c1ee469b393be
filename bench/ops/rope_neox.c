/* rope_neox.c - rotary position embedding, NEOX pairs (i, i + d/2), base theta,
 * over N tokens x HEADS x HEAD_DIM. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) {
    c->theta = 1e6;     /* Qwen2.5 rope_theta */
    c->max_pos = 32768; /* Qwen2.5-7B max_position_embeddings */
}

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "tokens (N)", c->n) || op_positive(msg, "heads", c->heads) ||
        op_positive(msg, "head_dim", c->head_dim))
        return KB_ERROR;
    if (c->head_dim % 2) return kb_fail(msg, KB_ERROR, "rope_neox: head_dim must be even (got %lld)", (long long)c->head_dim);
    if (!(c->theta > 0)) return kb_fail(msg, KB_ERROR, "rope_neox: theta (base) must be > 0 (got %g)", c->theta);
    if (c->max_pos <= 0) return kb_fail(msg, KB_ERROR, "rope_neox: max_pos must be positive");
    if (c->max_pos > 2147483647LL) return kb_fail(msg, KB_ERROR, "rope_neox: max_pos must fit int32");
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->heads * c->head_dim == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "x", KB_F32, c->n * c->heads * c->head_dim);
    op_tensor(&t[1], "pos", KB_I32, c->n);
    op_tensor(&t[2], "y", KB_F32, c->n * c->heads * c->head_dim);
}

static void generate(const kb_case *c, kb_tensor *in) {
    kb_gen_activations(c->seed, in[0].host, c->n, c->heads * c->head_dim, 21, KB_GEN_PLAIN, 1.0);
    /* positions: the first and last of the context always, the rest uniform */
    kb_rng r;
    kb_rng_seed(&r, c->seed, 22);
    int32_t *pos = in[1].host;
    for (int64_t i = 0; i < c->n; i++) pos[i] = (int32_t)(kb_rng_next(&r) % (uint64_t)c->max_pos);
    pos[0] = 0;
    if (c->n > 1) pos[c->n - 1] = (int32_t)(c->max_pos - 1);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *x = op_decode(&in[0]);
    ref_rope_neox(c->n, c->heads, c->head_dim, c->theta, x, in[1].host, out[0].ref, out[0].mag);
    free(x);
}

static double flops(const kb_case *c) { return 6.0 * (double)c->n * (double)c->heads * (double)c->head_dim / 2; }
static double bytes(const kb_case *c) {
    return 8.0 * (double)c->n * (double)c->heads * (double)c->head_dim + 4.0 * (double)c->n;
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)c;
    (void)out;
    (void)u_acc;
    /* fp32 cos/sin of the fp32 angle (a few ulp), two products and a sum; mag
     * (ref/rope_neox.c) carries the angle's error */
    op_tol(t, 0, 4 * U32, 0, "4*u32*((theta_i*(i+2) + 1)*(|x_i|+|x_pair|) + |y|)");
}

const kb_op kb_op_rope_neox = {
    .name = "rope_neox",
    .summary = "rotary embedding, NEOX pairs (i, i+d/2), base theta",
    .dims = {KB_P_N, KB_P_HEADS, KB_P_HEAD_DIM},
    .n_dims = 3,
    .dims_text = "NxHEADSxHEAD_DIM",
    .params = KB_PBIT(KB_P_THETA) | KB_PBIT(KB_P_MAX_POS),
    .n_in = 2,
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
