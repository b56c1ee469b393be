/* embed.c - the cuda variants and launch plan of embed (embed.cu): y[t] = the decoded
 * row ids[t] of a Q4_K, Q6_K, F16 or F32 table. Tensors: table, ids, y. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "embed.cu", "embed_{q4k,q6k,f16,f32}_v1", "-DBLOCK=256 -DPDL=0", 75, 0, 0},
    {"v2_b256", "embed.cu", "embed_q4k_v2", "-DBLOCK=256 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    /* the header in one 16-byte load, ITEMS blocks of the row a warp: 3584 = 14 blocks in
     * one 256-thread block of 2 items */
    {"v3_b256_i1", "embed.cu", "embed_q4k_v3", "-DBLOCK=256 -DITEMS=1 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    {"v3_b256_i2", "embed.cu", "embed_q4k_v3", "-DBLOCK=256 -DITEMS=2 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "M, N, K >= 1");
    if (!kbcu_fits_i32(c->m) || !kbcu_fits_i32(c->k)) return kb_fail(msg, KB_NOT_SUPPORTED, "M or K beyond int32");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    const char *kern;
    int64_t gx;
    if (kbcu_is(j->v, "v2") || kbcu_is(j->v, "v3")) {
        const int v3 = kbcu_is(j->v, "v3");
        if (c->a_type != KB_Q4K)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s is for Q4_K tables (this one is %s): v1 runs it", j->v->name,
                           kb_dtype_name(c->a_type));
        int rc = v3 ? kbcu_need_aligned(j, 0, 16, "reads 16-byte block headers", msg) : KB_OK;
        if (rc == KB_OK) rc = kbcu_need_aligned(j, 2, 16, "stores float4", msg);
        if (rc != KB_OK) return rc;
        kern = v3 ? "embed_q4k_v3" : "embed_q4k_v2";
        gx = kbcu_ceil_div(c->k / 256, (int64_t)(block / 32) * (v3 ? kbcu_def_int(j->v, "ITEMS", 1) : 1));
    } else {
        switch (c->a_type) {
        case KB_Q4K: kern = "embed_q4k_v1"; break;
        case KB_Q6K: kern = "embed_q6k_v1"; break;
        case KB_F16: kern = "embed_f16_v1"; break;
        case KB_F32: kern = "embed_f32_v1"; break;
        default: return kb_fail(msg, KB_NOT_SUPPORTED, "table type %s", kb_dtype_name(c->a_type));
        }
        gx = kbcu_ceil_div(c->k, block);
    }
    if ((c->a_type == KB_Q4K || c->a_type == KB_Q6K) && c->k % 256)
        return kb_fail(msg, KB_NOT_SUPPORTED, "K %% 256 != 0");
    if (c->n > 65535) return kb_fail(msg, KB_NOT_SUPPORTED, "%lld tokens: grid.y is at most 65535", (long long)c->n);
    kbcu_launch *l = kbcu_add_launch(p, j->v, kern, gx, c->n, 1, block);
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_i32(p, l, c->m);
    kbcu_arg_i32(p, l, c->k);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    const kb_dtype types[] = {KB_Q4K, KB_Q6K, KB_F16, KB_F32};
    int n = 0;
    for (int i = 0; i < 4 && n < max; i++)
        out[n++] = (kb_case){.op = KB_OP_embed, .m = 1000, .n = 4, .k = 3584, .a_type = types[i]};
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    {"ITEMS", 1, 8, 0, "v3: 256-value blocks of the row a warp"},
    KBCU_TUNE_PDL,
    KBCU_TUNE_STHINT,
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_embed = {variants, 2, 1, plan, samples, tunables, NULL, NULL};
