/* swiglu.c - y = silu(gate) * up over N x K: the gated activation of the MLP (gate
 * and up in a_type, GEMM outputs). */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { c->a_type = KB_F32; }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "rows (N)", c->n) || op_positive(msg, "cols (K)", c->k)) return KB_ERROR;
    return op_validate_float_type(msg, "swiglu", "gate/up type (a_type)", c->a_type);
}

static int leading(const kb_case *c, int64_t v) { return c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "gate", c->a_type, c->n * c->k);
    op_tensor(&t[1], "up", c->a_type, c->n * c->k);
    op_tensor(&t[2], "y", KB_F32, c->n * c->k);
}

static void generate(const kb_case *c, kb_tensor *in) {
    /* gate pre-activations spread over +-10 (silu's curved part and both tails) */
    op_gen_float(c->seed, c->a_type, in[0].host, c->n, c->k, 81, KB_GEN_PLAIN, 3.0);
    op_gen_float(c->seed, c->a_type, in[1].host, c->n, c->k, 82, KB_GEN_PLAIN, 1.0);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *g = op_decode(&in[0]), *u = op_decode(&in[1]);
    ref_swiglu(c->n * c->k, g, u, out[0].ref, out[0].mag);
    free(g);
    free(u);
}

static double flops(const kb_case *c) { return 5.0 * (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) {
    return (4.0 + 2.0 * (double)kb_dtype_bytes(c->a_type, 1)) * (double)c->n * (double)c->k;
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)c;
    (void)out;
    (void)u_acc;
    /* exp within 2 ulp (4 u32), then 1 + e, the divide and the product: each rounds
     * relative to its own result, and e's error reaches silu damped by e/(1+e) <= 1 */
    op_tol(t, 0, 8 * U32, 0, "8*u32*|y| (exp within 2 ulp, three roundings)");
}

const kb_op kb_op_swiglu = {
    .name = "swiglu",
    .summary = "y = silu(gate) * up (the MLP's gated activation; gate/up in a_type)",
    .dims = {KB_P_N, KB_P_K},
    .n_dims = 2,
    .dims_text = "NxK",
    .params = KB_PBIT(KB_P_A_TYPE),
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
