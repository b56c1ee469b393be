/* gemm_fp8.c - D[N][M] = scaled W[M][K] (fp8) x X[N][K] (fp8), the FP8 GEMM of an
 * inference stack's linear layers (W: weights, X: the batch's activations). */
#include "bench/ops/common.h"

static void defaults(kb_case *c) {
    c->a_type = KB_E4M3;
    c->b_type = KB_E4M3;
    c->out_type = KB_BF16;
    c->scale_mode = KB_SCALE_TENSOR;
}

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "M", c->m) || op_positive(msg, "N", c->n) || op_positive(msg, "K", c->k)) return KB_ERROR;
    if (!kb_dtype_is_fp8(c->a_type) || !kb_dtype_is_fp8(c->b_type))
        return kb_fail(msg, KB_ERROR, "gemm_fp8: operands must be e4m3 or e5m2 (got %s x %s)", kb_dtype_name(c->a_type),
                       kb_dtype_name(c->b_type));
    if (!kb_dtype_is_float(c->out_type))
        return kb_fail(msg, KB_ERROR, "gemm_fp8: output type must be f32, f16 or bf16 (got %s)", kb_dtype_name(c->out_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT) return kb_fail(msg, KB_ERROR, "gemm_fp8: unknown scale mode");
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->m == v && c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "w", c->a_type, c->m * c->k);
    op_tensor(&t[1], "x", c->b_type, c->n * c->k);
    op_tensor(&t[2], "sa", KB_F32, kb_scale_count(c->scale_mode, c->m, c->k));
    op_tensor(&t[3], "sb", KB_F32, kb_scale_count(kb_scale_mode_for_x(c->scale_mode), c->n, c->k));
    op_tensor(&t[4], "d", c->out_type, c->n * c->m);
}

static void generate(const kb_case *c, kb_tensor *in) {
    /* W: weights N(0, 0.02^2); X: residual-stream activations; both quantized the
     * way FP8 inference does (amax scales per group, ref_quant_fp8) */
    kb_gen_fp8(c->seed, c->a_type, c->scale_mode, in[0].host, in[2].host, c->m, c->k, 11, KB_GEN_PLAIN, 0.02);
    kb_gen_fp8(c->seed, c->b_type, kb_scale_mode_for_x(c->scale_mode), in[1].host, in[3].host, c->n, c->k, 12,
               KB_GEN_RESIDUAL, 1.0);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    ref_gemm_fp8_dims d = {c->m, c->n, c->k, c->a_type, c->b_type, c->scale_mode};
    ref_gemm_fp8(&d, in[0].host, in[1].host, in[2].host, in[3].host, out[0].ref, out[0].mag);
}

static double flops(const kb_case *c) { return 2.0 * (double)c->m * (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) {
    return (double)kb_dtype_bytes(c->a_type, c->m * c->k) + (double)kb_dtype_bytes(c->b_type, c->n * c->k) +
           (double)kb_dtype_bytes(c->out_type, c->n * c->m) +
           4.0 * (double)(kb_scale_count(c->scale_mode, c->m, c->k) +
                          kb_scale_count(kb_scale_mode_for_x(c->scale_mode), c->n, c->k));
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)out;
    const double uacc = u_acc > 0 ? u_acc : U32, uout = kb_unit_roundoff(c->out_type);
    /* products of fp8 values are exact in fp32; the K-term sum costs
     * 2*sqrt(K)*u_acc*sum|a*b|; scaling adds a few fp32 roundings; the output rounds
     * once to its type */
    char f[160];
    snprintf(f, sizeof f, "u_out*|d| + (2*sqrt(K)*u_acc + 4*u32)*sum|s*a*b|, u_out=%.3g u_acc=%.3g", uout, uacc);
    op_tol(t, uout, 2.0 * sqrt((double)c->k) * uacc + 4 * U32, 0, f);
}

const kb_op kb_op_gemm_fp8 = {
    .name = "gemm_fp8",
    .summary = "D[N][M] = scaled W[M][K] (fp8) x X[N][K] (fp8)",
    .dims = {KB_P_M, KB_P_N, KB_P_K},
    .n_dims = 3,
    .dims_text = "MxNxK",
    .params = KB_PBIT(KB_P_A_TYPE) | KB_PBIT(KB_P_B_TYPE) | KB_PBIT(KB_P_OUT_TYPE) | KB_PBIT(KB_P_SCALE),
    .n_in = 4,
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
