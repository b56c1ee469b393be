/* quant_fp8.c - activations (f32, f16 or bf16, N tokens x K) to fp8 with amax scales:
 * tensor-wide, per token (outer) or 1x128 blocks (vec128), saturating, with or
 * without a subnormal flush (ref/quant_fp8.c). Outputs: the codes and the scales. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) {
    c->a_type = KB_F32;
    c->out_type = KB_E4M3;
    c->scale_mode = KB_SCALE_TENSOR;
}

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "tokens (N)", c->n) || op_positive(msg, "cols (K)", c->k)) return KB_ERROR;
    if (op_validate_float_type(msg, "quant_fp8", "the input type (a_type)", c->a_type)) return KB_ERROR;
    if (!kb_dtype_is_fp8(c->out_type))
        return kb_fail(msg, KB_ERROR, "quant_fp8: out_type must be e4m3 or e5m2 (got %s)", kb_dtype_name(c->out_type));
    if (c->scale_mode == KB_SCALE_BLK128 || (unsigned)c->scale_mode >= KB_SCALE_COUNT)
        return kb_fail(msg, KB_ERROR,
                       "quant_fp8: activation scales are tensor, outer or vec128 (a blk128 GEMM's activations take vec128)");
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "x", c->a_type, c->n * c->k);
    op_tensor(&t[1], "q", c->out_type, c->n * c->k);
    op_tensor(&t[2], "s", KB_F32, kb_scale_count(c->scale_mode, c->n, c->k));
}

static void generate(const kb_case *c, kb_tensor *in) {
    op_gen_float(c->seed, c->a_type, in[0].host, c->n, c->k, 91, KB_GEN_RESIDUAL, 1.0);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    op_fp8_quant_reference(c, c->n, in[0].host, out);
}

static double flops(const kb_case *c) { return 3.0 * (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) {
    return ((double)kb_dtype_bytes(c->a_type, 1) + 1.0) * (double)c->n * (double)c->k +
           4.0 * (double)kb_scale_count(c->scale_mode, c->n, c->k);
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)u_acc;
    op_fp8_quant_tolerance(c->out_type, out, t);
}

const kb_op kb_op_quant_fp8 = {
    .name = "quant_fp8",
    .summary = "activations -> fp8 + amax scales (tensor, per token, 1x128), saturating, optional flush",
    .dims = {KB_P_N, KB_P_K},
    .n_dims = 2,
    .dims_text = "NxK",
    .params = KB_PBIT(KB_P_A_TYPE) | KB_PBIT(KB_P_OUT_TYPE) | KB_PBIT(KB_P_SCALE) | KB_PBIT(KB_P_FLUSH),
    .n_in = 1,
    .n_out = 2,
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
