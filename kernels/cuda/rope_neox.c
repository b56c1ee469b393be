/* rope_neox.c - the cuda variants and launch plan of rope_neox (rope_neox.cu):
 * x [N][heads][d], pos [N] -> y. */
#include "kernels/cuda/cuda_ops.h"
#include "ref/ref.h" /* kb_rope_turns */

static const kbcu_variant variants[] = {
    {"v1_b256", "rope_neox.cu", "rope_neox_v1", "-DBLOCK=256 -DPDL=0", 75, 0, 0},
    {"v2_b256", "rope_neox.cu", "rope_neox_v2", "-DBLOCK=256 -DPDL=0", 75, 0, 0},
    {"v3_b256_i2", "rope_neox.cu", "rope_neox_v3", "-DBLOCK=256 -DITEMS=2 -DPDL=0 -DLDHINT=1 -DSTHINT=1", 75, 0, 0},
    /* the angle in 32-bit integer and float arithmetic from a host frequency table, one
     * thread per float4 of pairs: no fp64 pow/sincos per block, no idle lanes at 4 heads */
    {"v4_b256", "rope_neox.cu", "rope_neox_v4", "-DBLOCK=256 -DITEMS=1 -DPDL=0 -DLDHINT=1 -DSTHINT=1", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

/* v2-v4 read and write each half of a head as float4s */
static int need_float4_halves(const kbcu_job *j, char *msg) {
    if (j->c->head_dim % 8)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s needs head_dim %% 8 == 0 (float4 halves)", j->v->name);
    for (int t = 0; t < 3; t += 2) {
        const int rc = kbcu_need_aligned(j, t, 16, "reads and writes float4", msg);
        if (rc != KB_OK) return rc;
    }
    return KB_OK;
}

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    const int64_t d = c->head_dim;
    if (c->n < 1 || c->heads < 1 || d < 2 || d % 2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "N, heads >= 1, even head_dim");
    if (!kbcu_fits_i32(c->n * c->heads * d)) return kb_fail(msg, KB_NOT_SUPPORTED, "tensor beyond int32 elements");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    kbcu_launch *l;
    if (kbcu_is(j->v, "v4")) {
        /* the frequency table (d/2 64-bit fractions) in the workspace, copied at prepare */
        const int rc = need_float4_halves(j, msg);
        if (rc != KB_OK) return rc;
        uint32_t *tab = kbcu_ws_init(p, (uint64_t)d * sizeof(uint32_t));
        if (!tab) return kb_fail(msg, KB_ERROR, "out of host memory (rope frequency table)");
        kb_rope_turns(c->theta, d, tab);
        const int items = kbcu_def_int(j->v, "ITEMS", 2); /* rope_neox.cu's default */
        l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(c->n * c->heads * (d / 8), (int64_t)block * items), 1,
                            1, block);
    } else if (kbcu_is(j->v, "v1")) {
        l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(c->n * c->heads * (d / 2), block), 1, 1, block);
    } else {
        /* v2, v3: a block per token, the (cos, sin) table in shared memory */
        const int rc = need_float4_halves(j, msg);
        if (rc != KB_OK) return rc;
        l = kbcu_add_launch(p, j->v, j->v->kernel, c->n, 1, 1, block);
        if (l) l->smem = d * (int64_t)sizeof(float);
    }
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_i32(p, l, c->n);
    kbcu_arg_i32(p, l, c->heads);
    kbcu_arg_i32(p, l, d);
    if (kbcu_is(j->v, "v4")) kbcu_arg_ws(p, l, 0); /* the frequency table */
    else kbcu_arg_f64(p, l, c->theta);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    if (max < 1) return 0;
    out[0] = (kb_case){.op = KB_OP_rope_neox, .n = 4, .heads = 28, .head_dim = 128, .theta = 1e6, .max_pos = 32768};
    return 1;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    {"ITEMS", 1, 8, 0, "v3, v4: float4 pairs a thread loads before it computes"},
    KBCU_TUNE_PDL,
    KBCU_TUNE_LDHINT,
    KBCU_TUNE_STHINT,
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_rope_neox = {variants, 2, 1, plan, samples, tunables, NULL, NULL};
