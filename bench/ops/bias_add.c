/* bias_add.c - y[N][M] = x[N][M] + bias[M]: the q/k/v projection biases (x in
 * a_type, a GEMM's output; bias f32). */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { c->a_type = KB_F32; }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "rows (N)", c->n) || op_positive(msg, "features (M)", c->m)) return KB_ERROR;
    return op_validate_float_type(msg, "bias_add", "x's type (a_type)", c->a_type);
}

static int leading(const kb_case *c, int64_t v) { return c->m == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "x", c->a_type, c->n * c->m);
    op_tensor(&t[1], "bias", KB_F32, c->m);
    op_tensor(&t[2], "y", KB_F32, c->n * c->m);
}

static void generate(const kb_case *c, kb_tensor *in) {
    op_gen_float(c->seed, c->a_type, in[0].host, c->n, c->m, 71, KB_GEN_PLAIN, 1.0);
    kb_gen_activations(c->seed, in[1].host, 1, c->m, 72, KB_GEN_PLAIN, 0.5);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *x = op_decode(&in[0]), *b = op_decode(&in[1]);
    ref_bias_add(c->n, c->m, x, b, out[0].ref, out[0].mag);
    free(x);
    free(b);
}

static double flops(const kb_case *c) { return (double)c->n * (double)c->m; }
static double bytes(const kb_case *c) {
    return (4.0 + (double)kb_dtype_bytes(c->a_type, 1)) * (double)c->n * (double)c->m + 4.0 * (double)c->m;
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)c;
    (void)out;
    (void)u_acc;
    op_tol(t, 0, U32, 0, "u32*(|x|+|bias|) (one rounding of the sum)");
}

const kb_op kb_op_bias_add = {
    .name = "bias_add",
    .summary = "y[N][M] = x[N][M] + bias[M] (q/k/v projection bias; x in a_type)",
    .dims = {KB_P_N, KB_P_M},
    .n_dims = 2,
    .dims_text = "NxM",
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
