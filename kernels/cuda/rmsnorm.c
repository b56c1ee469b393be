/* rmsnorm.c - the cuda variants and launch plan of rmsnorm (rmsnorm.cu): x [N][K],
 * w [K] -> y [N][K]. Also the test-only kernels with rmsnorm's signature
 * (test_fault.cu): a sticky fault, a kernel that never ends, and one unwritten element. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"v1_b256", "rmsnorm.cu", "rmsnorm_v1", "-DBLOCK=256 -DPDL=0", 75, 0, 0},
    {"v2_b256_i4", "rmsnorm.cu", "rmsnorm_v2", "-DBLOCK=256 -DITEMS=4 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0", 75, 0, 0},
    {"v2_b128_i8", "rmsnorm.cu", "rmsnorm_v2", "-DBLOCK=128 -DITEMS=8 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0", 75, 0, 0},
    /* the weights loaded beside x (before the reduction) and plain write-back stores: 4096x3584
     * 30.64 us against 31.73 (89.9 % of the copy rate; results/h200/rope32-rmsnorm.csv) */
    {"v2_b256_i4_w", "rmsnorm.cu", "rmsnorm_v2", "-DBLOCK=256 -DITEMS=4 -DPDL=0 -DLDHINT=1 -DSTHINT=2 -DWPRE=1", 75, 0, 0},
    {"test_fault", "test_fault.cu", "rmsnorm_test_fault", "-DBLOCK=256", 75, 1, 0},
    {"test_hang", "test_fault.cu", "rmsnorm_test_hang", "-DBLOCK=256", 75, 1, 0},
    {"test_unwritten", "test_fault.cu", "rmsnorm_test_unwritten", "-DBLOCK=256", 75, 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    if (c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "N, K >= 1");
    if (!kbcu_fits_i32(c->k) || !kbcu_fits_i32(c->n)) return kb_fail(msg, KB_NOT_SUPPORTED, "N or K beyond int32");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    if (kbcu_is(j->v, "v2")) {
        const int items = kbcu_def_int(j->v, "ITEMS", 4);
        if (c->k % 4 || c->k > (int64_t)block * 4 * items)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s keeps a row in registers: needs K %% 4 == 0 and K <= %d",
                           j->v->name, block * 4 * items);
        for (int t = 0; t < 3; t++) {
            int rc = kbcu_need_aligned(j, t, 16, "reads and writes float4", msg);
            if (rc != KB_OK) return rc;
        }
    }
    /* the entry point is the variant's one kernel ("rmsnorm_v1", "rmsnorm_test_fault"...) */
    kbcu_launch *l = kbcu_add_launch(p, j->v, j->v->kernel, c->n, 1, 1, block);
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_i32(p, l, c->k);
    kbcu_arg_f32(p, l, c->eps);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    if (max < 1) return 0;
    out[0] = (kb_case){.op = KB_OP_rmsnorm, .n = 4, .k = 3584, .eps = 1e-6};
    return 1;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    KBCU_TUNE_BLOCK,
    {"ITEMS", 1, 8, 0, "v2: float4s a thread keeps in registers"},
    KBCU_TUNE_PDL,
    KBCU_TUNE_LDHINT,
    KBCU_TUNE_STHINT,
    {"WPRE", 0, 1, 0, "v2: 1 loads the weights before the reduction"},
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_rmsnorm = {variants, 2, 1, plan, samples, tunables, NULL, NULL};
