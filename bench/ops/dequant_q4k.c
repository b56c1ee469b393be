/* dequant_q4k.c - Q4_K (or Q6_K, --a-type q6_k) blocks -> f32, M rows x K cols. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { c->a_type = KB_Q4K; }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "rows (M)", c->m) || op_positive(msg, "cols (K)", c->k)) return KB_ERROR;
    if (!kb_dtype_is_kquant(c->a_type))
        return kb_fail(msg, KB_ERROR, "dequant_q4k: the blocks are q4_k or q6_k (got %s)", kb_dtype_name(c->a_type));
    if (c->k % 256) return kb_fail(msg, KB_ERROR, "dequant_q4k: K=%lld is not a multiple of the block (256)", (long long)c->k);
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->m == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "w", c->a_type, c->m * c->k);
    op_tensor(&t[1], "y", KB_F32, c->m * c->k);
}

static void generate(const kb_case *c, kb_tensor *in) { kb_gen_kquant_rows(c->seed, c->a_type, in[0].host, c->m, c->k, 1); }

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    ref_dequant(c->a_type, in[0].host, c->m, c->k, out[0].ref, out[0].mag);
}

static double flops(const kb_case *c) { return 2.0 * (double)c->m * (double)c->k; }
static double bytes(const kb_case *c) {
    return (double)kb_dtype_bytes(c->a_type, c->m * c->k) + 4.0 * (double)c->m * (double)c->k;
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)out;
    (void)u_acc;
    /* Q4_K: y = (d*sc)*q - (dmin*m), two fp32 products and a subtraction (or one
     * fma); Q6_K: y = (d*sc)*q, two products (mag = |y|). */
    op_tol(t, 0, 2 * U32, 0, c->a_type == KB_Q4K ? "2*u32*(|d*sc*q|+|dmin*m|)" : "2*u32*|y|");
}

const kb_op kb_op_dequant_q4k = {
    .name = "dequant_q4k",
    .summary = "Q4_K (or Q6_K) blocks -> f32 (M rows x K cols)",
    .dims = {KB_P_M, KB_P_K},
    .n_dims = 2,
    .dims_text = "MxK",
    .params = KB_PBIT(KB_P_A_TYPE),
    .n_in = 1,
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
