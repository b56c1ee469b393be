/* swiglu.c - the cuda variants and launch plan of swiglu (swiglu.cu): y = silu(gate) *
 * up over N x K, gate and up in a_type (f32, f16, bf16). Tensors: gate, up, y. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "swiglu.cu", "swiglu_v1", "-DBLOCK=256", 75, 0, 0},
    {"v2_b256", "swiglu.cu", "swiglu_v2", "-DBLOCK=256", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    const int type = kbcu_float_code(c->a_type);
    if (type < 0) return kb_fail(msg, KB_NOT_SUPPORTED, "gate/up type %s (f32, f16 or bf16)", kb_dtype_name(c->a_type));
    if (c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "N, K >= 1");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    const int64_t count = c->n * c->k;
    int64_t per_thread = 1;
    if (kbcu_is(j->v, "v2")) {
        for (int t = 0; t < 3; t++) {
            int rc = kbcu_need_aligned(j, t, 16, "loads and stores 4 elements at once", msg);
            if (rc != KB_OK) return rc;
        }
        per_thread = 4;
    }
    kbcu_launch *l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(count, block * per_thread), 1, 1, block);
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_i64(p, l, count);
    kbcu_arg_i32(p, l, type);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    const kb_dtype types[] = {KB_F32, KB_F16, KB_BF16};
    int n = 0;
    for (int i = 0; i < 3 && n < max; i++)
        out[n++] = (kb_case){.op = KB_OP_swiglu, .n = 4, .k = 18945, .a_type = types[i]};
    return n;
}

const kbcu_op kbcu_op_swiglu = {variants, 2, 1, plan, samples};
