/* rmsnorm.c - y = x / sqrt(mean(x^2) + eps) * w, N tokens x K hidden. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { c->eps = 1e-6; /* Qwen2.5 rms_norm_eps */ }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "tokens (N)", c->n) || op_positive(msg, "hidden (K)", c->k)) return KB_ERROR;
    if (!(c->eps > 0)) return kb_fail(msg, KB_ERROR, "rmsnorm: eps must be > 0 (got %g)", c->eps);
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "x", KB_F32, c->n * c->k);
    op_tensor(&t[1], "w", KB_F32, c->k);
    op_tensor(&t[2], "y", KB_F32, c->n * c->k);
}

static void generate(const kb_case *c, kb_tensor *in) {
    kb_gen_activations(c->seed, in[0].host, c->n, c->k, 1, KB_GEN_RESIDUAL, 1.0);
    /* norm weights: positive, log-normal around 1 (Qwen's range ~0.1..10) */
    kb_rng r;
    kb_rng_seed(&r, c->seed, 2);
    float *w = in[1].host;
    for (int64_t i = 0; i < c->k; i++) w[i] = (float)exp(0.7 * kb_rng_normal(&r));
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *x = op_decode(&in[0]), *w = op_decode(&in[1]);
    ref_rmsnorm(c->n, c->k, c->eps, x, w, out[0].ref, out[0].mag);
    free(x);
    free(w);
}

static double flops(const kb_case *c) { return 4.0 * (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) { return 8.0 * (double)c->n * (double)c->k + 4.0 * (double)c->k; }

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)out;
    /* sum of K squares (probabilistic sqrt(K)), then rsqrt and two products; the
     * relative error of 1/sqrt(mean) is half that of the mean */
    op_tol(t, 0, sqrt((double)c->k) * (u_acc > 0 ? u_acc : U32) + 6 * U32, 0, "(sqrt(K)*u_acc + 6*u32)*|y|");
}

const kb_op kb_op_rmsnorm = {
    .name = "rmsnorm",
    .summary = "y = x / sqrt(mean(x^2) + eps) * w (N tokens x K hidden)",
    .dims = {KB_P_N, KB_P_K},
    .n_dims = 2,
    .dims_text = "NxK",
    .params = KB_PBIT(KB_P_EPS),
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
