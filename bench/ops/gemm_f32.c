/* gemm_f32.c - D[N][M] = W[M][K] x X[N][K] in float32: the GEMM of a CPU path that
 * dequantizes its Q4_K weights to f32 (the `f32` forward recipe). */
#include "bench/ops/common.h"

static void defaults(kb_case *c) { (void)c; }

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "M", c->m) || op_positive(msg, "N", c->n) || op_positive(msg, "K", c->k)) return KB_ERROR;
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->m == v && c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "w", KB_F32, c->m * c->k);
    op_tensor(&t[1], "x", KB_F32, c->n * c->k);
    op_tensor(&t[2], "d", KB_F32, c->n * c->m);
}

static void generate(const kb_case *c, kb_tensor *in) {
    kb_gen_activations(c->seed, in[0].host, c->m, c->k, 61, KB_GEN_PLAIN, 0.02);
    kb_gen_activations(c->seed, in[1].host, c->n, c->k, 62, KB_GEN_RESIDUAL, 1.0);
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    double *x = op_decode(&in[1]);
    ref_matmul(c->m, c->n, c->k, KB_F32, in[0].host, x, out[0].ref, out[0].mag);
    free(x);
}

static double flops(const kb_case *c) { return 2.0 * (double)c->m * (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) { return 4.0 * ((double)c->m * c->k + (double)c->n * c->k + (double)c->n * c->m); }

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)out;
    /* each product rounds once (u32, or none under an fma), the K-term sum costs
     * 2*sqrt(K)*u_acc*sum|w*x| (probabilistic bound, bench/ops/README) */
    op_tol(t, 0, 2.0 * sqrt((double)c->k) * (u_acc > 0 ? u_acc : U32) + 4 * U32, 0,
           "(2*sqrt(K)*u_acc + 4*u32)*sum|w*x|");
}

const kb_op kb_op_gemm_f32 = {
    .name = "gemm_f32",
    .summary = "D[N][M] = W[M][K] x X[N][K], float32",
    .dims = {KB_P_M, KB_P_N, KB_P_K},
    .n_dims = 3,
    .dims_text = "MxNxK",
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
