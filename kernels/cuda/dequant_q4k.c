/* dequant_q4k.c - the cuda variants and launch plan of dequant_q4k (dequant_q4k.cu):
 * Q4_K or Q6_K blocks (a_type) -> f32, M x K. Tensors: w (blocks), y. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "dequant_q4k.cu", "dequant_q4k_v1 (q6_k: dequant_q6k_v1)", "-DBLOCK=256 -DPDL=0", 75, 0, 0},
    {"v2_b128", "dequant_q4k.cu", "dequant_q4k_v2 (q6_k: dequant_q6k_v2)", "-DBLOCK=128 -DITEMS=1 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    {"v2_b256", "dequant_q4k.cu", "dequant_q4k_v2 (q6_k: dequant_q6k_v2)", "-DBLOCK=256 -DITEMS=1 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    /* the fastest --tune point on the H200 at 18944x3584 (85.0 us vs 92.8 at BLOCK=256) */
    {"v2_b64", "dequant_q4k.cu", "dequant_q4k_v2 (q6_k: dequant_q6k_v2)", "-DBLOCK=64 -DITEMS=1 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    /* 4 blocks a warp, their byte loads first: Q6_K lm_head 152064x3584 962 -> 767 us (64 ->
     * 80 % of the copy rate); Q4_K unchanged within 1.5 % (results/h200/dequant-embed-items.csv) */
    {"v2_b64_i4", "dequant_q4k.cu", "dequant_q4k_v2 (q6_k: dequant_q6k_v2)", "-DBLOCK=64 -DITEMS=4 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    /* v2 with the Q4_K block header in one 16-byte load (Q4_K only) */
    {"v3_b64", "dequant_q4k.cu", "dequant_q4k_v3", "-DBLOCK=64 -DITEMS=1 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    {"v3_b128", "dequant_q4k.cu", "dequant_q4k_v3", "-DBLOCK=128 -DITEMS=1 -DPDL=0 -DSTHINT=1", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    if (c->a_type != KB_Q4K && c->a_type != KB_Q6K)
        return kb_fail(msg, KB_NOT_SUPPORTED, "blocks of type %s (q4_k or q6_k)", kb_dtype_name(c->a_type));
    if (c->m < 1 || c->k < 1 || c->k % 256) return kb_fail(msg, KB_NOT_SUPPORTED, "M, K >= 1 and K %% 256 == 0");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    const int q6 = c->a_type == KB_Q6K;
    const int64_t nvalues = c->m * c->k;
    kbcu_launch *l;
    if (kbcu_is(j->v, "v1")) {
        l = kbcu_add_launch(p, j->v, q6 ? "dequant_q6k_v1" : "dequant_q4k_v1", kbcu_ceil_div(nvalues, block), 1, 1,
                            block);
        kbcu_arg_tensor(p, l, 0);
        kbcu_arg_tensor(p, l, 1);
        kbcu_arg_i64(p, l, nvalues);
    } else {
        /* a warp per ITEMS 256-value blocks, two float4 stores a lane each */
        const int v3 = kbcu_is(j->v, "v3");
        if (v3 && q6)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s reads Q4_K block headers (this is q6_k: v2 runs it)", j->v->name);
        int rc = v3 ? kbcu_need_aligned(j, 0, 16, "reads 16-byte block headers", msg) : KB_OK;
        if (rc == KB_OK) rc = kbcu_need_aligned(j, 1, 16, "stores float4", msg);
        if (rc != KB_OK) return rc;
        const int64_t nblocks = nvalues / 256, items = kbcu_def_int(j->v, "ITEMS", 1);
        l = kbcu_add_launch(p, j->v, v3 ? "dequant_q4k_v3" : q6 ? "dequant_q6k_v2" : "dequant_q4k_v2",
                            kbcu_ceil_div(nblocks, items * (block / 32)), 1, 1, block);
        kbcu_arg_tensor(p, l, 0);
        kbcu_arg_tensor(p, l, 1);
        kbcu_arg_i64(p, l, nblocks);
    }
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    const kb_dtype types[] = {KB_Q4K, KB_Q6K};
    int n = 0;
    for (int i = 0; i < 2 && n < max; i++) {
        kb_case c = {.op = KB_OP_dequant_q4k, .m = 4, .k = 512, .a_type = types[i]};
        out[n++] = c;
    }
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    {"ITEMS", 1, 8, 0, "v2: 256-value blocks a warp decodes before its stores"},
    KBCU_TUNE_PDL,
    KBCU_TUNE_STHINT,
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_dequant_q4k = {variants, 1, 1, plan, samples, tunables, NULL, NULL};
