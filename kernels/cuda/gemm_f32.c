/* gemm_f32.c - the cuda variants and launch plan of gemm_f32 (gemm_f32.cu):
 * D[N][M] = W[M][K] X[N][K], f32. Tensors: w, x, d. */
#include "kernels/cuda/cuda_ops.h"

static const kbcu_variant variants[] = {
    {"tiled_v1_64x64", "gemm_f32.cu", "gemm_f32_tiled_v1", "-DBM=64 -DBN=64 -DBK=16", 75, 0, 0},
    {"gemv_v1_b128", "gemm_f32.cu", "gemm_f32_gemv_v1", "-DWARPS=4 -DNB=4", 75, 0, 0},
    {"gemv_v2_b128", "gemm_f32.cu", "gemm_f32_gemv_v2", "-DWARPS=4 -DNB=4", 75, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

/* The GEMVs read W once per NB tokens: past this many tokens the tiled kernel's turn. */
#define GEMV_MAX_N 64

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "M, N, K >= 1");
    if (!kbcu_fits_i32(c->m) || !kbcu_fits_i32(c->n) || !kbcu_fits_i32(c->k))
        return kb_fail(msg, KB_NOT_SUPPORTED, "M, N or K beyond int32");
    kbcu_launch *l;
    if (kbcu_is(j->v, "tiled")) {
        const int bm = kbcu_def_int(j->v, "BM", 64), bn = kbcu_def_int(j->v, "BN", 64);
        l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(c->m, bm), kbcu_ceil_div(c->n, bn), 1, 256);
    } else {
        if (c->n > GEMV_MAX_N)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s is for N <= %d tokens (N = %lld): tiled_v1 runs it", j->v->name,
                           GEMV_MAX_N, (long long)c->n);
        if (kbcu_is(j->v, "gemv_v2")) {
            if (c->k % 4) return kb_fail(msg, KB_NOT_SUPPORTED, "%s reads float4: needs K %% 4 == 0", j->v->name);
            for (int t = 0; t < 2; t++) {
                int rc = kbcu_need_aligned(j, t, 16, "reads float4", msg);
                if (rc != KB_OK) return rc;
            }
        }
        const int warps = kbcu_def_int(j->v, "WARPS", 4), nb = kbcu_def_int(j->v, "NB", 4);
        l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(c->m, warps), kbcu_ceil_div(c->n, nb), 1, warps * 32);
    }
    kbcu_arg_tensor(p, l, 0);
    kbcu_arg_tensor(p, l, 1);
    kbcu_arg_tensor(p, l, 2);
    kbcu_arg_i32(p, l, c->m);
    kbcu_arg_i32(p, l, c->n);
    kbcu_arg_i32(p, l, c->k);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    int n = 0;
    if (n < max) out[n++] = (kb_case){.op = KB_OP_gemm_f32, .m = 3584, .n = 4, .k = 3584};
    if (n < max) out[n++] = (kb_case){.op = KB_OP_gemm_f32, .m = 512, .n = 512, .k = 3584};
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    {"BM", 16, 128, 1, "tiled: rows of W a block (16 threads a column)"},
    {"BN", 16, 128, 1, "tiled: tokens a block (16 threads a row)"},
    {"BK", 8, 32, 1, "tiled: the depth of a shared-memory tile"},
    {"WARPS", 1, 32, 1, "gemv: warps a block, a row of W each"},
    {"NB", 1, 16, 1, "gemv: tokens a block"},
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_gemm_f32 = {variants, 2, 1, plan, samples, tunables, NULL, NULL};
