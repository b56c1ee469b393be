/* weight_fp8.c - the cuda variant and launch plan of weight_fp8 (weight_fp8.cu):
 * Q4_K/Q6_K weights M x K -> fp8 codes + f32 amax scales (tensor, outer, vec128,
 * blk128), the three launches of fp8_quant.h. Tensors: w, q, s. */
#include "kernels/cuda/fp8_quant.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "weight_fp8.cu", "fp8_amax_{q4k,q6k}_v1,fp8_scales_v1|fp8_scale_tensor_v1,fp8_quant_{q4k,q6k}_v1",
     "-DBLOCK=256", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    if (c->a_type != KB_Q4K && c->a_type != KB_Q6K)
        return kb_fail(msg, KB_NOT_SUPPORTED, "weights of type %s (q4_k or q6_k)", kb_dtype_name(c->a_type));
    if (c->k % 256) return kb_fail(msg, KB_NOT_SUPPORTED, "K %% 256 != 0");
    int rc = kbcu_fp8_check(j, c->m, 1, msg);
    if (rc != KB_OK) return rc;
    const int q6 = c->a_type == KB_Q6K;
    return kbcu_plan_fp8_v1(j, p, c->m, q6 ? "fp8_amax_q6k_v1" : "fp8_amax_q4k_v1",
                            q6 ? "fp8_quant_q6k_v1" : "fp8_quant_q4k_v1", -1, msg);
}

static int samples(kb_case *out, int max) {
    int n = 0;
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 2 && n < max; t++)
            out[n++] = (kb_case){.op = KB_OP_weight_fp8,
                                 .m = 300,
                                 .k = 3584,
                                 .a_type = t ? KB_Q6K : KB_Q4K,
                                 .out_type = t ? KB_E5M2 : KB_E4M3,
                                 .scale_mode = (kb_scale_mode)s,
                                 .flush = t};
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_weight_fp8 = {variants, 1, 2, plan, samples, tunables, NULL, NULL};
