/* weight_fp8.c - Q4_K/Q6_K weights (M rows x K) to fp8 with amax scales: per tensor,
 * per output row (outer), 1x128 (vec128) or 128x128 blocks (blk128), saturating,
 * with or without a subnormal flush: how an FP8 stack converts a GGUF model's
 * weights once at load (ref/quant_fp8.c). Outputs: the codes and the scales. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) {
    c->a_type = KB_Q4K;
    c->out_type = KB_E4M3;
    c->scale_mode = KB_SCALE_TENSOR;
}

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "rows (M)", c->m) || op_positive(msg, "cols (K)", c->k)) return KB_ERROR;
    if (!kb_dtype_is_kquant(c->a_type))
        return kb_fail(msg, KB_ERROR, "weight_fp8: the weights are q4_k or q6_k (got %s)", kb_dtype_name(c->a_type));
    if (c->k % 256) return kb_fail(msg, KB_ERROR, "weight_fp8: K=%lld is not a multiple of the block (256)", (long long)c->k);
    if (!kb_dtype_is_fp8(c->out_type))
        return kb_fail(msg, KB_ERROR, "weight_fp8: out_type must be e4m3 or e5m2 (got %s)", kb_dtype_name(c->out_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT) return kb_fail(msg, KB_ERROR, "weight_fp8: unknown scale mode");
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->m == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "w", c->a_type, c->m * c->k);
    op_tensor(&t[1], "q", c->out_type, c->m * c->k);
    op_tensor(&t[2], "s", KB_F32, kb_scale_count(c->scale_mode, c->m, c->k));
}

static void generate(const kb_case *c, kb_tensor *in) { kb_gen_kquant_rows(c->seed, c->a_type, in[0].host, c->m, c->k, 101); }

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    op_fp8_quant_reference(c, c->m, in[0].host, out);
}

static double flops(const kb_case *c) { return 5.0 * (double)c->m * (double)c->k; }
static double bytes(const kb_case *c) {
    return (double)kb_dtype_bytes(c->a_type, c->m * c->k) + (double)c->m * (double)c->k +
           4.0 * (double)kb_scale_count(c->scale_mode, c->m, c->k);
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)u_acc;
    op_fp8_quant_tolerance(c->out_type, out, t);
}

const kb_op kb_op_weight_fp8 = {
    .name = "weight_fp8",
    .summary = "Q4_K/Q6_K weights -> fp8 + amax scales (tensor, per row, 1x128, 128x128)",
    .dims = {KB_P_M, KB_P_K},
    .n_dims = 2,
    .dims_text = "MxK",
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
