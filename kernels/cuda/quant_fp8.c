/* quant_fp8.c - the cuda variants and launch plan of quant_fp8 (quant_fp8.cu):
 * activations (f32, f16, bf16) N x K -> fp8 codes + f32 amax scales (tensor, outer,
 * vec128). Tensors: x, q, s. Also the three-launch plan weight_fp8 shares
 * (fp8_quant.h). */
#include "kernels/cuda/fp8_quant.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "quant_fp8.cu", "fp8_amax_v1,fp8_scales_v1|fp8_scale_tensor_v1,fp8_quant_v1", "-DBLOCK=256", 75, 0, 0},
    {"v2_b256", "quant_fp8.cu", "fp8_quant_vec128_v2|fp8_quant_outer_v2", "-DBLOCK=256", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

int kbcu_fp8_check(const kbcu_job *j, int64_t rows, int allow_blk128, char *msg) {
    const kb_case *c = j->c;
    if (rows < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "rows, K >= 1");
    if (!kbcu_fits_i32(c->k)) return kb_fail(msg, KB_NOT_SUPPORTED, "K beyond int32");
    if (c->out_type != KB_E4M3 && c->out_type != KB_E5M2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "codes of type %s (e4m3 or e5m2)", kb_dtype_name(c->out_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT || (c->scale_mode == KB_SCALE_BLK128 && !allow_blk128))
        return kb_fail(msg, KB_NOT_SUPPORTED, "scale mode %s", kb_scale_mode_name(c->scale_mode));
    return KB_OK;
}

int kbcu_plan_fp8_v1(const kbcu_job *j, kbcu_plan *p, int64_t rows, const char *amax_kernel, const char *quant_kernel,
                     int float_type, char *msg) {
    (void)msg;
    const kb_case *c = j->c;
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    const int64_t kb = kbcu_ceil_div(c->k, 128), blocks = rows * kb;
    const int mode = (int)c->scale_mode, e5m2 = c->out_type == KB_E5M2;
    const double fmax = e5m2 ? 57344.0 : 448.0;
    p->workspace = (uint64_t)blocks * sizeof(float); /* the amax of every row's 128-column block */

    kbcu_launch *l = kbcu_add_launch(p, j->v, amax_kernel, kbcu_ceil_div(blocks, block / 32), 1, 1, block);
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_ws(p, l, 0);
    kbcu_arg_i64(p, l, rows);
    kbcu_arg_i32(p, l, c->k);
    if (float_type >= 0) kbcu_arg_i32(p, l, float_type);

    if (c->scale_mode == KB_SCALE_TENSOR) { /* the grid-wide reduction: one block reads every block's amax */
        l = kbcu_add_launch(p, j->v, "fp8_scale_tensor_v1", 1, 1, 1, 1024);
        kbcu_arg_ws(p, l, 0);
        kbcu_arg_tensor(p, l, 2);
        kbcu_arg_i64(p, l, blocks);
        kbcu_arg_f32(p, l, fmax);
    } else {
        const int64_t groups = kb_scale_count(c->scale_mode, rows, c->k);
        l = kbcu_add_launch(p, j->v, "fp8_scales_v1", kbcu_ceil_div(groups, block), 1, 1, block);
        kbcu_arg_ws(p, l, 0);
        kbcu_arg_tensor(p, l, 2);
        kbcu_arg_i64(p, l, rows);
        kbcu_arg_i32(p, l, c->k);
        kbcu_arg_i32(p, l, mode);
        kbcu_arg_f32(p, l, fmax);
    }

    l = kbcu_add_launch(p, j->v, quant_kernel, kbcu_ceil_div(rows * c->k, block), 1, 1, block);
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_i64(p, l, rows);
    kbcu_arg_i32(p, l, c->k);
    if (float_type >= 0) kbcu_arg_i32(p, l, float_type);
    kbcu_arg_i32(p, l, mode);
    kbcu_arg_i32(p, l, e5m2);
    kbcu_arg_i32(p, l, c->flush ? 1 : 0);
    return KB_OK;
}

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    const int type = kbcu_float_code(c->a_type);
    if (type < 0) return kb_fail(msg, KB_NOT_SUPPORTED, "input type %s (f32, f16 or bf16)", kb_dtype_name(c->a_type));
    int rc = kbcu_fp8_check(j, c->n, 0, msg);
    if (rc != KB_OK) return rc;
    if (kbcu_is(j->v, "v1")) return kbcu_plan_fp8_v1(j, p, c->n, "fp8_amax_v1", "fp8_quant_v1", type, msg);

    /* v2: one launch for the row-local modes */
    const int block = kbcu_def_int(j->v, "BLOCK", 256), e5m2 = c->out_type == KB_E5M2;
    kbcu_launch *l;
    if (c->scale_mode == KB_SCALE_VEC128) {
        l = kbcu_add_launch(p, j->v, "fp8_quant_vec128_v2", kbcu_ceil_div(c->n * kbcu_ceil_div(c->k, 128), block / 32),
                            1, 1, block);
        kbcu_arg_tensor(p, l, 0);
        kbcu_arg_tensor(p, l, 2);
        kbcu_arg_tensor(p, l, 1);
        kbcu_arg_i64(p, l, c->n);
    } else if (c->scale_mode == KB_SCALE_OUTER) {
        l = kbcu_add_launch(p, j->v, "fp8_quant_outer_v2", c->n, 1, 1, block);
        kbcu_arg_tensor(p, l, 0);
        kbcu_arg_tensor(p, l, 2);
        kbcu_arg_tensor(p, l, 1);
    } else {
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "%s is for outer and vec128 scales (a tensor-wide amax needs the whole "
                       "grid): v1 runs it",
                       j->v->name);
    }
    kbcu_arg_i32(p, l, c->k);
    kbcu_arg_i32(p, l, type);
    kbcu_arg_i32(p, l, e5m2);
    kbcu_arg_i32(p, l, c->flush ? 1 : 0);
    kbcu_arg_f32(p, l, e5m2 ? 57344.0 : 448.0);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    int n = 0;
    for (int s = 0; s < 3; s++)
        for (int t = 0; t < 2 && n < max; t++)
            out[n++] = (kb_case){.op = KB_OP_quant_fp8,
                                 .n = 5,
                                 .k = 3584 + 64,
                                 .a_type = t ? KB_BF16 : KB_F32,
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

const kbcu_op kbcu_op_quant_fp8 = {variants, 1, 2, plan, samples, tunables, NULL, NULL};
