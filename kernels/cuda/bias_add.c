/* bias_add.c - the cuda variants and launch plan of bias_add (bias_add.cu):
 * y[N][M] = x[N][M] + bias[M], x in a_type (f32, f16, bf16). Tensors: x, bias, y. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "bias_add.cu", "bias_add_v1", "-DBLOCK=256", 75, 0, 0},
    {"v2_b256", "bias_add.cu", "bias_add_v2", "-DBLOCK=256", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    const int type = kbcu_float_code(c->a_type);
    if (type < 0) return kb_fail(msg, KB_NOT_SUPPORTED, "x's type %s (f32, f16 or bf16)", kb_dtype_name(c->a_type));
    if (c->n < 1 || c->m < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "N, M >= 1");
    if (!kbcu_fits_i32(c->n) || !kbcu_fits_i32(c->m)) return kb_fail(msg, KB_NOT_SUPPORTED, "N or M beyond int32");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    int64_t per_thread = 1;
    if (kbcu_is(j->v, "v2")) {
        if (c->m % 4)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s takes 4 features at once: needs M %% 4 == 0", j->v->name);
        for (int t = 0; t < 3; t++) {
            int rc = kbcu_need_aligned(j, t, 16, "loads and stores 4 elements at once", msg);
            if (rc != KB_OK) return rc;
        }
        per_thread = 4;
    }
    /* grid.y strides over the tokens */
    kbcu_launch *l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(c->m, block * per_thread),
                                     c->n < 65535 ? c->n : 65535, 1, block);
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_i32(p, l, c->n);
    kbcu_arg_i32(p, l, c->m);
    kbcu_arg_i32(p, l, type);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    const kb_dtype types[] = {KB_F32, KB_F16, KB_BF16};
    int n = 0;
    for (int i = 0; i < 3 && n < max; i++)
        out[n++] = (kb_case){.op = KB_OP_bias_add, .n = 4, .m = 512, .a_type = types[i]};
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_bias_add = {variants, 2, 1, plan, samples, tunables, NULL, NULL};
