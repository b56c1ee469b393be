/* add.c - y = a + b over N x K: the residual connection (a: the f32 residual
 * stream, b: a projection's output in a_type). */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { c->a_type = KB_F32; }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "rows (N)", c->n) || op_positive(msg, "cols (K)", c->k)) return KB_ERROR;
    return op_validate_float_type(msg, "add", "b's type (a_type)", c->a_type);
}

static int leading(const kb_case *c, int64_t v) { return c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "a", KB_F32, c->n * c->k);
    op_tensor(&t[1], "b", c->a_type, c->n * c->k);
    op_tensor(&t[2], "y", KB_F32, c->n * c->k);
}

static void generate(const kb_case *c, kb_tensor *in) {
    kb_gen_activations(c->seed, in[0].host, c->n, c->k, 51, KB_GEN_RESIDUAL, 1.0);
    op_gen_float(c->seed, c->a_type, in[1].host, c->n, c->k, 52, KB_GEN_RESIDUAL, 0.5);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *a = op_decode(&in[0]), *b = op_decode(&in[1]);
    ref_add(c->n * c->k, a, b, out[0].ref, out[0].mag);
    free(a);
    free(b);
}

static double flops(const kb_case *c) { return (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) {
    return (8.0 + (double)kb_dtype_bytes(c->a_type, 1)) * (double)c->n * (double)c->k;
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)c;
    (void)out;
    (void)u_acc;
    op_tol(t, 0, U32, 0, "u32*(|a|+|b|) (one rounding of the sum)");
}

const kb_op kb_op_add = {
    .name = "add",
    .summary = "y = a + b (the residual connection; b in a_type)",
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
