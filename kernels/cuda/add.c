/* add.c - the cuda variants and launch plan of add (add.cu): y = a + b over N x K,
 * a f32, b in a_type (f32, f16, bf16). Tensors: a, b, y. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "add.cu", "add_v1", "-DBLOCK=256", 75, 0, 0},
    {"v2_b256", "add.cu", "add_v2", "-DBLOCK=256", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) { return kbcu_plan_elementwise3(j, p, "b's", msg); }

static int samples(kb_case *out, int max) {
    const kb_dtype types[] = {KB_F32, KB_F16, KB_BF16};
    int n = 0;
    for (int i = 0; i < 3 && n < max; i++) out[n++] = (kb_case){.op = KB_OP_add, .n = 4, .k = 3585, .a_type = types[i]};
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_add = {variants, 2, 1, plan, samples, tunables, NULL, NULL};
