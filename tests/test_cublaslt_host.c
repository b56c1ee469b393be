/* test_cublaslt_host.c - tests of the cublaslt backend.
 *
 * Built twice (tests/cublaslt.cmake):
 *   test_cublaslt_host   the host-only logic (kernels/cuda/cublaslt_host.c): every
 *                        enum name, identity formatting, variant names, scale
 *                        buffer sizes and layouts, the checks and their exact
 *                        messages. Needs no GPU and no CUDA library.
 *   test_cublaslt_probe  (KBLT_TEST_BACKEND) the backend itself, through kbench's
 *                        front and the worker. Without a GPU, as in CI: probe()
 *                        returns KB_NOT_SUPPORTED with a reason, twice the same.
 *                        With a GPU: every variant of small cases in every scale
 *                        mode, output type and FAST_ACCUM setting runs (enqueue,
 *                        wait, run_timed) and matches an fp64 reference computed
 *                        here from kbench's own layouts, an fp16 output past 65504
 *                        comes back as inf, and a chain quant_fp8 (cuda front) ->
 *                        gemm_fp8 (cublaslt front) runs on device buffers, enqueued
 *                        together and then recorded.
 * Prints one line per failure and ends with "N passed, M failed". */
#include <cublasLt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/kbench.h"
#include "kernels/cuda/cublaslt_host.h"

#include "tests/kb_check.h"


#define CHECK_STR(got, want) CHECK(strcmp((got), (want)) == 0, "got '%s', want '%s'", (got), (want))

static kb_case gemm_case(int64_t m, int64_t n, int64_t k, kb_dtype a, kb_dtype b, kb_dtype out, kb_scale_mode s) {
    kb_case c;
    memset(&c, 0, sizeof c);
    c.op = KB_OP_gemm_fp8;
    c.m = m;
    c.n = n;
    c.k = k;
    c.a_type = a;
    c.b_type = b;
    c.out_type = out;
    c.scale_mode = s;
    c.seed = 42;
    snprintf(c.label, sizeof c.label, "%lldx%lldx%lld", (long long)m, (long long)n, (long long)k);
    return c;
}

#ifndef KBLT_TEST_BACKEND
/* ---- enum names ------------------------------------------------------------------ */
static void test_enum_names(void) {
    /* Every tile value of this header has a name "AxB" that parses back to it. */
    int named = 0;
    for (int t = 0; t < kblt_tile_count(); t++) {
        const char *s = kblt_tile_name(t);
        CHECK(s != NULL, "tile %d has no name", t);
        if (!s) continue;
        named++;
        CHECK(kblt_tile_parse(s) == t, "tile %d '%s' parses to %d", t, s, kblt_tile_parse(s));
        int a = 0, b = 0;
        if (t > 0) CHECK(sscanf(s, "%dx%d", &a, &b) == 2 && a > 0 && b > 0, "tile %d name '%s'", t, s);
    }
    CHECK(named == CUBLASLT_MATMUL_TILE_END, "%d named of %d", named, CUBLASLT_MATMUL_TILE_END);
    CHECK_STR(kblt_tile_name(CUBLASLT_MATMUL_TILE_UNDEFINED), "undefined");
    CHECK_STR(kblt_tile_name(CUBLASLT_MATMUL_TILE_128x128), "128x128");
    CHECK_STR(kblt_tile_name(CUBLASLT_MATMUL_TILE_64x256), "64x256");
    CHECK_STR(kblt_tile_name(CUBLASLT_MATMUL_TILE_512x1024), "512x1024");
    CHECK(kblt_tile_name(-1) == NULL && kblt_tile_name(CUBLASLT_MATMUL_TILE_END) == NULL, "out of range");
    CHECK(kblt_tile_parse("129x128") == -1 && kblt_tile_parse(NULL) == -1, "bad names");

    /* Stages: the enum has gaps (29, 30); every other value is named. */
    named = 0;
    for (int s = 0; s < kblt_stages_count(); s++) {
        const char *n = kblt_stages_name(s);
        if (!n) continue;
        named++;
        CHECK(kblt_stages_parse(n) == s, "stages %d '%s'", s, n);
    }
    CHECK(named == 37, "%d stage names (undefined + 36 in cuBLAS 13.1)", named);
    CHECK(kblt_stages_name(29) == NULL && kblt_stages_name(30) == NULL, "gaps stay unnamed");
    CHECK_STR(kblt_stages_name(CUBLASLT_MATMUL_STAGES_UNDEFINED), "undefined");
    CHECK_STR(kblt_stages_name(CUBLASLT_MATMUL_STAGES_16x1), "16x1");
    CHECK_STR(kblt_stages_name(CUBLASLT_MATMUL_STAGES_64x4), "64x4");
    CHECK_STR(kblt_stages_name(CUBLASLT_MATMUL_STAGES_8xAUTO), "8xAUTO");
    CHECK_STR(kblt_stages_name(CUBLASLT_MATMUL_STAGES_768xAUTO), "768xAUTO");

    /* Cluster shapes: value 1 is unused; every other one is "auto" or "AxBxC". */
    named = 0;
    for (int c = 0; c < kblt_cluster_count(); c++) {
        const char *n = kblt_cluster_name(c);
        if (!n) continue;
        named++;
        CHECK(kblt_cluster_parse(n) == c, "cluster %d '%s'", c, n);
        int x, y, z;
        if (c > 0) CHECK(sscanf(n, "%dx%dx%d", &x, &y, &z) == 3 && z == 1, "cluster %d '%s'", c, n);
    }
    CHECK(named == CUBLASLT_CLUSTER_SHAPE_END - 1, "%d cluster names", named);
    CHECK(kblt_cluster_name(1) == NULL, "value 1 is not a cluster shape");
    CHECK_STR(kblt_cluster_name(CUBLASLT_CLUSTER_SHAPE_AUTO), "auto");
    CHECK_STR(kblt_cluster_name(CUBLASLT_CLUSTER_SHAPE_1x1x1), "1x1x1");
    CHECK_STR(kblt_cluster_name(CUBLASLT_CLUSTER_SHAPE_2x1x1), "2x1x1");
    CHECK_STR(kblt_cluster_name(CUBLASLT_CLUSTER_SHAPE_1x15x1), "1x15x1");

    /* Reduction schemes: one value each. */
    CHECK_STR(kblt_reduction_name(CUBLASLT_REDUCTION_SCHEME_NONE), "none");
    CHECK_STR(kblt_reduction_name(CUBLASLT_REDUCTION_SCHEME_INPLACE), "inplace");
    CHECK_STR(kblt_reduction_name(CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE), "compute_type");
    CHECK_STR(kblt_reduction_name(CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE), "output_type");
    CHECK(kblt_reduction_name(CUBLASLT_REDUCTION_SCHEME_MASK) == NULL, "the mask is not one scheme");
    CHECK(kblt_reduction_parse("inplace") == CUBLASLT_REDUCTION_SCHEME_INPLACE, "parse");
    CHECK(kblt_reduction_parse("output_type") == CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE, "parse");
    CHECK(kblt_reduction_parse("split") == -1, "parse");
}

/* ---- identity -------------------------------------------------------------------- */
static void test_identity(void) {
    kblt_identity id = {.algo_id = 66,
                        .tile = CUBLASLT_MATMUL_TILE_128x128,
                        .stages = CUBLASLT_MATMUL_STAGES_64x4,
                        .splitk = 4,
                        .reduction = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE,
                        .swizzle = 1,
                        .custom = 2,
                        .cluster = CUBLASLT_CLUSTER_SHAPE_1x2x1,
                        .workspace = 4194304,
                        .waves = 0.875,
                        .heuristic_rank = 3};
    kb_variant v;
    kb_variant_init(&v, "h03_fa0");
    snprintf(v.detail, sizeof v.detail, "keep me");
    kblt_identity_to_variant(&id, &v);
    CHECK_STR(v.name, "h03_fa0");
    CHECK_STR(v.detail, "keep me");
    CHECK(v.algo_id == 66, "%d", v.algo_id);
    CHECK_STR(v.tile, "128x128");
    CHECK(v.stages == CUBLASLT_MATMUL_STAGES_64x4, "%d", v.stages);
    CHECK(v.splitk == 4, "%d", v.splitk);
    CHECK_STR(v.reduction, "compute_type");
    CHECK(v.swizzle == 1 && v.custom == 2, "%d %d", v.swizzle, v.custom);
    CHECK_STR(v.cluster, "1x2x1");
    CHECK(v.workspace == 4194304, "%lld", (long long)v.workspace);
    CHECK(v.waves == 0.875, "%g", v.waves);
    CHECK(v.heuristic_rank == 3, "%d", v.heuristic_rank);

    char buf[200];
    int n = kblt_identity_format(&id, buf, sizeof buf);
    CHECK_STR(buf, "algo 66 tile 128x128 stages 64x4 splitk 4 reduction compute_type swizzle 1 custom 2 cluster "
                   "1x2x1 ws 4194304 waves 0.88 rank 3");
    CHECK(n == (int)strlen(buf), "%d", n);

    /* Round trip through the variant, as prepare() does for a variant not in its table. */
    kblt_identity back;
    char msg[KB_MSG] = "";
    CHECK(kblt_identity_from_variant(&v, &back, msg) == 0, "%s", msg);
    CHECK(back.algo_id == id.algo_id && back.tile == id.tile && back.stages == id.stages && back.splitk == id.splitk &&
              back.reduction == id.reduction && back.swizzle == id.swizzle && back.custom == id.custom &&
              back.cluster == id.cluster && back.workspace == id.workspace && back.heuristic_rank == 3,
          "round trip");

    /* Values a newer header might add print as numbers and still parse back. */
    kblt_identity odd = id;
    odd.tile = 9999;
    odd.cluster = 777;
    odd.reduction = 8;
    odd.stages = 99;
    kblt_identity_to_variant(&odd, &v);
    CHECK_STR(v.tile, "tile#9999");
    CHECK_STR(v.cluster, "cluster#777");
    CHECK_STR(v.reduction, "reduction#8");
    kblt_identity_format(&odd, buf, sizeof buf);
    CHECK(strstr(buf, "stages stages#99") != NULL, "%s", buf);
    CHECK(kblt_identity_from_variant(&v, &back, msg) == 0 && back.tile == 9999 && back.cluster == 777 &&
              back.reduction == 8,
          "%s", msg);

    /* A variant without an algorithm, or with a garbled field, does not parse. */
    kb_variant none;
    kb_variant_init(&none, "heuristic_fa1");
    CHECK(kblt_identity_from_variant(&none, &back, msg) == -1, "placeholder parsed");
    kblt_identity_to_variant(&id, &v);
    snprintf(v.tile, sizeof v.tile, "huge");
    CHECK(kblt_identity_from_variant(&v, &back, msg) == -1, "bad tile parsed");
    CHECK_STR(msg, "variant h03_fa0: unknown tile 'huge'");
}

/* ---- variant names ------------------------------------------------------------- */
static void test_names(void) {
    char name[64];
    kblt_source src;
    int idx, fa;
    kblt_variant_name(name, sizeof name, KBLT_SRC_HEURISTIC, KBLT_SRC_HEURISTIC, 3, 1);
    CHECK_STR(name, "h03_fa1");
    CHECK(kblt_variant_parse(name, &src, &idx, &fa) == 0 && src == KBLT_SRC_HEURISTIC && idx == 3 && fa == 1, "parse");
    kblt_variant_name(name, sizeof name, KBLT_SRC_HEURISTIC, KBLT_SRC_HEURISTIC, 31, 0);
    CHECK_STR(name, "h31_fa0");
    kblt_variant_name(name, sizeof name, KBLT_SRC_EXHAUSTIVE, KBLT_SRC_EXHAUSTIVE, 17, 0);
    CHECK_STR(name, "x017_fa0");
    CHECK(kblt_variant_parse(name, &src, &idx, &fa) == 0 && src == KBLT_SRC_EXHAUSTIVE && idx == 17 && fa == 0, "parse");
    kblt_variant_name(name, sizeof name, KBLT_SRC_EXHAUSTIVE, KBLT_SRC_EXHAUSTIVE, 1234, 1);
    CHECK_STR(name, "x1234_fa1");
    CHECK(kblt_variant_parse(name, NULL, &idx, NULL) == 0 && idx == 1234, "parse");
    kblt_variant_name(name, sizeof name, KBLT_SRC_NONE, KBLT_SRC_HEURISTIC, 0, 1);
    CHECK_STR(name, "heuristic_fa1");
    CHECK(kblt_variant_parse(name, &src, NULL, &fa) == 0 && src == KBLT_SRC_NONE && fa == 1, "parse");
    kblt_variant_name(name, sizeof name, KBLT_SRC_NONE, KBLT_SRC_EXHAUSTIVE, 0, 0);
    CHECK_STR(name, "exhaustive_fa0");
    const char *bad[] = {"h3_fa1", "h03_fa2", "h03", "x_fa0", "hx3_fa0", "best_fa", "fa0", "", "h03_fa1x", "bestx_fa0",
                         "best_fa1" /* --algo best is the harness's --best now */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(kblt_variant_parse(bad[i], &src, &idx, &fa) == -1, "'%s' parsed", bad[i]);

    int s[2];
    CHECK(kblt_fast_accum_settings(-1, s) == 2 && s[0] == 0 && s[1] == 1, "both");
    CHECK(kblt_fast_accum_settings(0, s) == 1 && s[0] == 0, "off");
    CHECK(kblt_fast_accum_settings(1, s) == 1 && s[0] == 1, "on");
    CHECK(kblt_fast_accum_settings(2, s) == 0, "bad");
    /* FAST_ACCUM off: 2^-10 / sqrt(k), so the harness's 2 sqrt(K) u term is
     * 32 * 2^-14 whatever k is. On: 2^-14, never below off's (k < 256). */
    CHECK(kblt_acc_unit_roundoff(1, 3584) == 0x1p-14 && kblt_acc_unit_roundoff(1, 256) == 0x1p-14, "fast accum");
    CHECK(kblt_acc_unit_roundoff(1, 16) == 0x1p-12, "fast accum, k = 16: %g", kblt_acc_unit_roundoff(1, 16));
    CHECK(kblt_acc_unit_roundoff(0, 16) == 0x1p-12, "%g", kblt_acc_unit_roundoff(0, 16));
    CHECK(fabs(kblt_acc_unit_roundoff(0, 3584) - 0x1p-10 / sqrt(3584.0)) < 1e-20, "%g", kblt_acc_unit_roundoff(0, 3584));
    for (int64_t k = 16; k <= 65536; k *= 2)
        CHECK(fabs(2 * sqrt((double)k) * kblt_acc_unit_roundoff(0, k) - 32 * 0x1p-14) < 1e-15, "k = %lld",
              (long long)k);
    /* The harness's accumulation tolerance: the numbers its CSV showed on the
     * H100 for K = 3584 (tol_acc 7.38e-06 with u = 0, 7.31e-03 with u = 2^-14). */
    CHECK(fabs(kblt_acc_tolerance(3584, 0.0) - 7.38e-6) < 0.005e-6, "%.4g", kblt_acc_tolerance(3584, 0.0));
    CHECK(fabs(kblt_acc_tolerance(3584, 0x1p-14) - 7.31e-3) < 0.005e-3, "%.4g", kblt_acc_tolerance(3584, 0x1p-14));
    CHECK(kblt_acc_tolerance(3584, 1e-30) == kblt_acc_tolerance(3584, 0.0), "u below fp32's counts as fp32");

    kblt_algo_mode m;
    CHECK(kblt_algo_mode_parse(NULL, &m) == 0 && m == KBLT_ALGO_HEURISTIC, "default");
    CHECK(kblt_algo_mode_parse("", &m) == 0 && m == KBLT_ALGO_HEURISTIC, "empty");
    CHECK(kblt_algo_mode_parse("heuristic", &m) == 0 && m == KBLT_ALGO_HEURISTIC, "heuristic");
    CHECK(kblt_algo_mode_parse("exhaustive", &m) == 0 && m == KBLT_ALGO_EXHAUSTIVE, "exhaustive");
    CHECK(kblt_algo_mode_parse("best", &m) == -1, "best is not a backend mode (the harness's --best)");
    CHECK(kblt_algo_mode_parse("fastest", &m) == -1, "unknown");
    CHECK(kblt_exhaustive_cap(0) == 256 && kblt_exhaustive_cap(-3) == 256 && kblt_exhaustive_cap(10) == 10, "cap");

    /* Subsampling keeps `cap` distinct, increasing indices spanning the range. */
    CHECK(kblt_subsample_index(5, 10, 256) == 5, "no subsampling under the cap");
    int64_t prev = -1, total = 1000, cap = 256;
    int ok = 1;
    for (int64_t j = 0; j < cap; j++) {
        int64_t i = kblt_subsample_index(j, total, cap);
        if (i <= prev || i >= total) ok = 0;
        prev = i;
    }
    CHECK(ok && kblt_subsample_index(0, total, cap) == 0 && prev >= total - (total + cap - 1) / cap, "spread, last %lld",
          (long long)prev);
}

/* ---- scales ---------------------------------------------------------------------- */
static void test_scale_sizes(void) {
    /* Qwen2.5 Q projection, 16 tokens: k = 3584 -> kb = 28 (a multiple of 4). */
    int64_t m = 3584, n = 16, k = 3584;
    CHECK(kblt_scale_elems_lt(KB_SCALE_TENSOR, 0, m, k) == 1 && kblt_scale_elems_lt(KB_SCALE_TENSOR, 1, n, k) == 1, "t");
    CHECK(kblt_scale_elems_lt(KB_SCALE_OUTER, 0, m, k) == 3584 && kblt_scale_elems_lt(KB_SCALE_OUTER, 1, n, k) == 16,
          "outer");
    CHECK(kblt_scale_elems_lt(KB_SCALE_VEC128, 0, m, k) == 28 * 3584, "vec128 a");
    CHECK(kblt_scale_elems_lt(KB_SCALE_VEC128, 1, n, k) == 28 * 16, "vec128 b");
    CHECK(kblt_scale_elems_lt(KB_SCALE_BLK128, 0, m, k) == 28 * 28, "blk128 a");
    CHECK(kblt_scale_elems_lt(KB_SCALE_BLK128, 1, n, k) == 28 * 16, "blk128 b");
    /* Odd sizes: k = 640 -> kb = 5, padded to 8 for the 128x128 blocks; m = 200 -> mb = 2. */
    CHECK(kblt_scale_elems_lt(KB_SCALE_BLK128, 0, 200, 640) == 2 * 8, "blk128 padded");
    CHECK(kblt_scale_elems_kb(KB_SCALE_BLK128, 0, 200, 640) == 2 * 5, "blk128 kbench");
    CHECK(kblt_scale_elems_lt(KB_SCALE_VEC128, 1, 1, 650) == 6, "vec128 n = 1, kb = ceil(650/128) = 6");
    /* kbench's counts agree with ref/types.c's kb_scale_count (X's layout: kb_scale_mode_for_x). */
    for (int s = 0; s < KB_SCALE_COUNT; s++) {
        kb_case c = gemm_case(200, 3, 640, KB_E4M3, KB_E4M3, KB_BF16, (kb_scale_mode)s);
        CHECK(kblt_scale_elems_kb(c.scale_mode, 0, c.m, c.k) == kb_scale_count(c.scale_mode, c.m, c.k), "mode %d a", s);
        CHECK(kblt_scale_elems_kb(c.scale_mode, 1, c.n, c.k) == kb_scale_count(kb_scale_mode_for_x(c.scale_mode), c.n, c.k),
              "mode %d b", s);
    }
    CHECK(kblt_scale_elems_lt((kb_scale_mode)9, 0, m, k) == -1 && kblt_scale_elems_kb((kb_scale_mode)9, 0, m, k) == -1,
          "unknown mode");

    CHECK(kblt_scale_mode_lt(KB_SCALE_TENSOR, 0) == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F, "t");
    CHECK(kblt_scale_mode_lt(KB_SCALE_OUTER, 1) == CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, "o");
    CHECK(kblt_scale_mode_lt(KB_SCALE_VEC128, 0) == CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F, "v");
    CHECK(kblt_scale_mode_lt(KB_SCALE_BLK128, 0) == CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, "b a");
    CHECK(kblt_scale_mode_lt(KB_SCALE_BLK128, 1) == CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F, "b b (not on both)");
    CHECK(kblt_scale_mode_lt((kb_scale_mode)7, 0) == -1, "unknown");

    CHECK(!kblt_scale_needs_reorder(KB_SCALE_TENSOR, 0, m, k) && !kblt_scale_needs_reorder(KB_SCALE_OUTER, 1, n, k),
          "scalars and vectors pass through");
    CHECK(kblt_scale_needs_reorder(KB_SCALE_VEC128, 0, m, k), "vec128 transposes");
    CHECK(!kblt_scale_needs_reorder(KB_SCALE_VEC128, 1, 1, k), "one row: the transpose is the identity");
    CHECK(!kblt_scale_needs_reorder(KB_SCALE_VEC128, 0, m, 128), "one block: the transpose is the identity");
    CHECK(!kblt_scale_needs_reorder(KB_SCALE_BLK128, 0, m, k), "kb = 28 needs no padding");
    CHECK(kblt_scale_needs_reorder(KB_SCALE_BLK128, 0, 200, 640), "kb = 5 is padded");
    CHECK(kblt_scale_needs_reorder(KB_SCALE_BLK128, 1, n, k), "blk128's X is 1x128");
}

static void test_scale_layouts(void) {
    /* VEC128, 3 rows, k = 300 (kb = 3): kbench [r][j] = 10 r + j -> cuBLASLt [j][r]. */
    float src[16], dst[16];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 3; j++) src[r * 3 + j] = (float)(10 * r + j);
    CHECK(kblt_scales_to_lt(KB_SCALE_VEC128, 0, 3, 300, src, dst) == 0, "ok");
    const float want_vec[9] = {0, 10, 20, 1, 11, 21, 2, 12, 22};
    CHECK(memcmp(dst, want_vec, sizeof want_vec) == 0, "vec128 a: %g %g %g %g", dst[0], dst[1], dst[2], dst[3]);
    CHECK(kblt_scales_to_lt(KB_SCALE_VEC128, 1, 3, 300, src, dst) == 0 && memcmp(dst, want_vec, sizeof want_vec) == 0,
          "vec128 b");
    CHECK(kblt_scales_to_lt(KB_SCALE_BLK128, 1, 3, 300, src, dst) == 0 && memcmp(dst, want_vec, sizeof want_vec) == 0,
          "blk128's X is vec128");
    /* BLK128 W, m = 200 (mb = 2), k = 640 (kb = 5 -> 8): rows of 5 padded with zeros to 8. */
    float s2[10], d2[16];
    for (int i = 0; i < 10; i++) s2[i] = (float)(i + 1);
    for (int i = 0; i < 16; i++) d2[i] = -1.0f;
    CHECK(kblt_scales_to_lt(KB_SCALE_BLK128, 0, 200, 640, s2, d2) == 0, "ok");
    const float want_blk[16] = {1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 9, 10, 0, 0, 0};
    CHECK(memcmp(d2, want_blk, sizeof want_blk) == 0, "blk128 a: %g %g %g %g %g %g", d2[4], d2[5], d2[7], d2[8], d2[12],
          d2[15]);
    /* Tensor and outer copy as they are. */
    CHECK(kblt_scales_to_lt(KB_SCALE_TENSOR, 0, 3, 300, src, dst) == 0 && dst[0] == src[0], "tensor");
    CHECK(kblt_scales_to_lt(KB_SCALE_OUTER, 1, 3, 300, src, dst) == 0 && dst[2] == src[2], "outer");
    CHECK(kblt_scales_to_lt((kb_scale_mode)8, 1, 3, 300, src, dst) == -1, "unknown");
}

/* ---- checks and their messages --------------------------------------------------- */
static void expect_check(kb_case c, int want_rc, const char *want_msg) {
    char msg[KB_MSG] = "";
    int rc = kblt_check_case(&c, msg);
    CHECK(rc == want_rc, "case %s: rc %d, want %d (%s)", c.label, rc, want_rc, msg);
    if (want_msg) CHECK_STR(msg, want_msg);
}

static void test_checks(void) {
    expect_check(gemm_case(3584, 16, 3584, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR), KB_OK, NULL);
    expect_check(gemm_case(3584, 1, 3584, KB_E4M3, KB_E5M2, KB_F16, KB_SCALE_OUTER), KB_OK, NULL); /* decode */
    expect_check(gemm_case(512, 7, 3584, KB_E5M2, KB_E4M3, KB_F32, KB_SCALE_BLK128), KB_OK, NULL);
    expect_check(gemm_case(16, 3, 16, KB_E4M3, KB_E4M3, KB_F32, KB_SCALE_VEC128), KB_OK, NULL);
    expect_check(gemm_case(3590, 16, 3584, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "m = 3590 is not a multiple of 16 (cuBLASLt FP8 needs 16-byte aligned dimensions)");
    expect_check(gemm_case(3584, 16, 3592, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "k = 3592 is not a multiple of 16 (cuBLASLt FP8 needs lda = ldb = k to be a multiple of 16 bytes)");
    expect_check(gemm_case(3584, 16, 3584, KB_E5M2, KB_E5M2, KB_BF16, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "e5m2 x e5m2 is not a cuBLASLt FP8 pair (e4m3 x e4m3, e4m3 x e5m2, e5m2 x e4m3 are)");
    expect_check(gemm_case(3584, 16, 3584, KB_F16, KB_E4M3, KB_BF16, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "A (W) type f16 is not FP8 (cuBLASLt FP8 GEMM takes e4m3 or e5m2)");
    expect_check(gemm_case(3584, 16, 3584, KB_E4M3, KB_Q4K, KB_BF16, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "B (X) type q4_k is not FP8 (cuBLASLt FP8 GEMM takes e4m3 or e5m2)");
    expect_check(gemm_case(3584, 16, 3584, KB_E4M3, KB_E4M3, KB_E4M3, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "D type e4m3 is not run here (cublaslt takes bf16, f16 or f32 output)");
    expect_check(gemm_case(3584, 0, 3584, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR), KB_NOT_SUPPORTED,
                 "empty GEMM: m = 3584, n = 0, k = 3584");
    expect_check(gemm_case(3584, 16, 3584, KB_E4M3, KB_E4M3, KB_BF16, (kb_scale_mode)6), KB_NOT_SUPPORTED,
                 "unknown scale mode 6");
    kb_case r = gemm_case(3584, 16, 3584, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR);
    r.op = KB_OP_rmsnorm;
    expect_check(r, KB_NOT_SUPPORTED, "cublaslt runs only gemm_fp8, not rmsnorm");

    char msg[KB_MSG] = "";
    CHECK(kblt_check_pointer((const void *)(uintptr_t)0x7f0000001000ULL, "W (A)", msg) == KB_OK, "aligned");
    CHECK(kblt_check_pointer(NULL, "W (A)", msg) == KB_OK, "NULL is aligned (cuBLASLt reports NULL itself)");
    CHECK(kblt_check_pointer((const void *)(uintptr_t)0x7f0000001008ULL, "D", msg) == KB_NOT_SUPPORTED, "misaligned");
    CHECK_STR(msg, "D pointer 0x7f0000001008 is not 16-byte aligned (cuBLASLt needs 16-byte aligned matrices)");
}

static void test_misc(void) {
    CHECK(kblt_cuda_error_is_sticky(cudaErrorIllegalAddress), "illegal address");
    CHECK(kblt_cuda_error_is_sticky(cudaErrorLaunchFailure), "launch failure");
    CHECK(kblt_cuda_error_is_sticky(cudaErrorMisalignedAddress), "misaligned");
    CHECK(!kblt_cuda_error_is_sticky(cudaSuccess), "success");
    CHECK(!kblt_cuda_error_is_sticky(cudaErrorMemoryAllocation), "out of memory is not sticky");
    CHECK(!kblt_cuda_error_is_sticky(cudaErrorInvalidValue), "invalid value is not sticky");
    CHECK(!kblt_cuda_error_is_sticky(cudaErrorInsufficientDriver), "no driver is not sticky");
    CHECK(kblt_elem_bytes(KB_E4M3) == 1 && kblt_elem_bytes(KB_E5M2) == 1 && kblt_elem_bytes(KB_BF16) == 2 &&
              kblt_elem_bytes(KB_F16) == 2 && kblt_elem_bytes(KB_F32) == 4 && kblt_elem_bytes(KB_Q4K) == 0,
          "sizes");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_enum_names();
    test_identity();
    test_names();
    test_scale_sizes();
    test_scale_layouts();
    test_checks();
    test_misc();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#else /* KBLT_TEST_BACKEND ------------------------------------------------------------- */
#include "bench/op.h"
#include "ref/formats.h"

extern const kb_backend kb_backend_cublaslt, kb_backend_cuda;

static uint64_t rng(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* fp8 with magnitudes in [2^-3, 2^2) and random signs (no NaN, no zeros). */
static uint8_t rand_fp8(kb_dtype t, uint64_t *s) {
    uint64_t r = rng(s);
    if (t == KB_E4M3) return (uint8_t)(((r & 1) << 7) | ((4 + (r >> 8) % 5) << 3) | ((r >> 16) & 7));
    return (uint8_t)(((r & 1) << 7) | ((12 + (r >> 8) % 5) << 2) | ((r >> 16) & 3));
}

static double dec8(kb_dtype t, uint8_t v) { return t == KB_E4M3 ? kb_e4m3_to_f32(v) : kb_e5m2_to_f32(v); }

static double dec_out(kb_dtype t, const void *d, int64_t i) {
    if (t == KB_BF16) return kb_bf16_to_f32(((const uint16_t *)d)[i]);
    if (t == KB_F16) return kb_f16_to_f32(((const uint16_t *)d)[i]);
    return ((const float *)d)[i];
}

/* kbench's scale layouts (ref/types.h), read directly: the independent side. */
static double sa_at(const kb_case *c, const float *sa, int64_t m, int64_t j) {
    int64_t kb = (c->k + 127) / 128;
    switch (c->scale_mode) {
    case KB_SCALE_OUTER: return sa[m];
    case KB_SCALE_VEC128: return sa[m * kb + j];
    case KB_SCALE_BLK128: return sa[(m / 128) * kb + j];
    default: return sa[0];
    }
}
static double sb_at(const kb_case *c, const float *sb, int64_t n, int64_t j) {
    int64_t kb = (c->k + 127) / 128;
    return c->scale_mode == KB_SCALE_TENSOR ? sb[0] : c->scale_mode == KB_SCALE_OUTER ? sb[n] : sb[n * kb + j];
}

/* D's reference and magnitude from host copies of W, X and the scales. */
static void gemm_ref(const kb_case *c, const uint8_t *w, const uint8_t *x, const float *sa, const float *sb, double *ref,
                     double *mag) {
    const int64_t kb = (c->k + 127) / 128;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t m = 0; m < c->m; m++) {
            double acc = 0, am = 0;
            for (int64_t j = 0; j < kb; j++) {
                double part = 0, pm = 0;
                for (int64_t k = j * 128; k < c->k && k < (j + 1) * 128; k++) {
                    double p = dec8(c->a_type, w[m * c->k + k]) * dec8(c->b_type, x[n * c->k + k]);
                    part += p;
                    pm += fabs(p);
                }
                double s = sa_at(c, sa, m, j) * sb_at(c, sb, n, j);
                acc += s * part;
                am += fabs(s) * pm;
            }
            ref[n * c->m + m] = acc;
            mag[n * c->m + m] = am;
        }
}

/* Outputs against the reference with the harness's model (u_out doubled); returns the
 * number of bad elements (an fp16 output past 65504 must be inf of the right sign). */
static int64_t gemm_check(const kb_case *c, const void *d, const double *ref, const double *mag, double u_acc,
                          int64_t *infs, int64_t *first) {
    const double u_out = c->out_type == KB_BF16 ? 0x1p-8 : c->out_type == KB_F16 ? 0x1p-11 : 0x1p-24;
    const double gamma = kblt_acc_tolerance(c->k, u_acc);
    int64_t bad = 0;
    *infs = 0;
    *first = -1;
    for (int64_t i = 0; i < c->m * c->n; i++) {
        const double o = dec_out(c->out_type, d, i);
        if (c->out_type == KB_F16 && isinf(o) && fabs(ref[i]) > 65504.0 && (o > 0) == (ref[i] > 0)) {
            (*infs)++;
            continue;
        }
        if (!(fabs(o - ref[i]) <= 2 * u_out * fabs(ref[i]) + gamma * mag[i])) {
            if (*first < 0) *first = i;
            bad++;
        }
    }
    return bad;
}

typedef struct {
    int ran, not_supported;
} tally;

/* Device copies of a case's tensors (registry order), inputs uploaded. */
typedef struct {
    int n;
    kb_buf buf[KB_MAX_ARGS];
    kb_arg args[KB_MAX_ARGS];
} dev_tensors;

static int dev_make(const kb_backend *b, const kb_case *c, const void *const *host, dev_tensors *t, char *msg) {
    kb_tensor ts[KB_MAX_IN + KB_MAX_OUT];
    int rc = kb_case_tensors(c, ts, msg);
    if (rc != KB_OK) return rc;
    const kb_op *op = kb_ops[c->op];
    t->n = op->n_in + op->n_out;
    for (int i = 0; i < t->n; i++) {
        if ((rc = b->alloc(ts[i].bytes, &t->buf[i], msg)) != KB_OK) return rc;
        t->args[i] = (kb_arg){ts[i].type, ts[i].count, {t->buf[i], 0, ts[i].bytes}};
        if (i < op->n_in && host[i] && (rc = b->upload(t->args[i].view, host[i], msg)) != KB_OK) return rc;
    }
    return KB_OK;
}

static void dev_free(const kb_backend *b, dev_tensors *t) {
    for (int i = 0; i < t->n; i++) b->free(t->buf[i]);
    memset(t, 0, sizeof *t);
}

/* Every variant of case c: run it, compare every output with fp64. scale_boost
 * multiplies sa (fp16 overflow case). */
static void run_case(const kb_backend *be, kb_case c, const kb_options *opt, double scale_boost, tally *t) {
    uint64_t seed = 0x1234567ULL + (uint64_t)c.m * 31 + (uint64_t)c.n * 7 + (uint64_t)c.scale_mode;
    const int64_t na = kb_scale_count(c.scale_mode, c.m, c.k), nb = kb_scale_count(kb_scale_mode_for_x(c.scale_mode), c.n, c.k);
    const size_t wn = (size_t)(c.m * c.k), xn = (size_t)(c.n * c.k), dn = (size_t)(c.m * c.n);
    const size_t ob = kblt_elem_bytes(c.out_type);
    uint8_t *w = malloc(wn), *x = malloc(xn);
    float *sa = malloc((size_t)na * 4), *sb = malloc((size_t)nb * 4);
    unsigned char *d = malloc(dn * ob);
    double *ref = malloc(dn * sizeof(double)), *mag = malloc(dn * sizeof(double));
    for (size_t i = 0; i < wn; i++) w[i] = rand_fp8(c.a_type, &seed);
    for (size_t i = 0; i < xn; i++) x[i] = rand_fp8(c.b_type, &seed);
    for (int64_t i = 0; i < na; i++) sa[i] = (float)(scale_boost * (0.25 + (double)(rng(&seed) >> 40) / (1 << 24)));
    for (int64_t i = 0; i < nb; i++) sb[i] = (float)(0.25 + (double)(rng(&seed) >> 40) / (1 << 24));
    gemm_ref(&c, w, x, sa, sb, ref, mag);

    kb_variant vars[512];
    char msg[KB_MSG] = "";
    const int nv = be->variants(&c, opt, vars, 512, msg);
    CHECK(nv > 0, "%s %s: variants returned %d (%s)", c.label, kb_scale_mode_name(c.scale_mode), nv, msg);
    dev_tensors dt;
    const void *host[4] = {w, x, sa, sb};
    CHECK(dev_make(be, &c, host, &dt, msg) == KB_OK, "device tensors: %s", msg);
    for (int v = 0; v < nv; v++) {
        memset(d, 0xFF, dn * ob); /* NaN poison */
        be->upload(dt.args[4].view, d, msg);
        void *state = NULL;
        int rc = be->prepare(&c, &vars[v], dt.args, 4, 1, &state, msg);
        if (rc == KB_NOT_SUPPORTED) {
            t->not_supported++;
            printf("  %s %s %s %s: not supported: %s\n", c.label, kb_scale_mode_name(c.scale_mode),
                   kb_dtype_name(c.out_type), vars[v].name, msg);
            CHECK(msg[0] != '\0', "not_supported without a reason");
            continue;
        }
        CHECK(rc == KB_OK, "%s %s: prepare %d: %s", c.label, vars[v].name, rc, msg);
        if (rc != KB_OK) continue;
        rc = be->enqueue(&state, 1, msg);
        if (rc == KB_OK) rc = be->wait(msg);
        CHECK(rc == KB_OK, "%s %s: run %d: %s", c.label, vars[v].name, rc, msg);
        double sec = -1;
        rc = be->run_timed(&state, 1, 1, &sec, msg);
        CHECK(rc == KB_OK && sec > 0, "%s %s: run_timed %d: %s", c.label, vars[v].name, rc, msg);
        be->download(d, dt.args[4].view, msg);
        be->release(state);
        t->ran++;
        CHECK(vars[v].acc_unit_roundoff > 0, "%s: acc_unit_roundoff unset", vars[v].name);
        int64_t infs, first;
        const int64_t bad = gemm_check(&c, d, ref, mag, vars[v].acc_unit_roundoff, &infs, &first);
        CHECK(bad == 0, "%s %s %s %s: %lld bad, first [%lld] got %g want %g", c.label, kb_scale_mode_name(c.scale_mode),
              kb_dtype_name(c.out_type), vars[v].name, (long long)bad, (long long)first,
              first >= 0 ? dec_out(c.out_type, d, first) : 0.0, first >= 0 ? ref[first] : 0.0);
        if (scale_boost > 1) CHECK(infs > 0, "%s %s: overflow case has no inf output", c.label, vars[v].name);
        printf("  %s %s %s %s: ok, %.2f us cold, %lld inf  [%s]\n", c.label, kb_scale_mode_name(c.scale_mode),
               kb_dtype_name(c.out_type), vars[v].name, sec * 1e6, (long long)infs, vars[v].detail);
    }
    dev_free(be, &dt);
    free(w), free(x), free(sa), free(sb), free(d), free(ref), free(mag);
}

/* A chain on the device, mixing the two fronts: quant_fp8 (our kernel, cuda) writes X's
 * codes and scales, gemm_fp8 (cuBLASLt) reads them in place; one enqueue of both
 * states, then the same as a recorded sequence. The GEMM is checked against fp64 from
 * the codes and scales as the device left them. */
static void chain_case(kb_scale_mode mode, const char *quant_variant) {
    const kb_backend *cu = &kb_backend_cuda, *lt = &kb_backend_cublaslt;
    char msg[KB_MSG];
    kb_case q, g;
    kb_case_init(&q, KB_OP_quant_fp8);
    q.n = 16, q.k = 1024, q.a_type = KB_F32, q.out_type = KB_E4M3, q.scale_mode = mode;
    kb_case_init(&g, KB_OP_gemm_fp8);
    g.m = 256, g.n = q.n, g.k = q.k, g.a_type = g.b_type = KB_E4M3, g.out_type = KB_F32, g.scale_mode = mode;
    kb_case_label(&q);
    kb_case_label(&g);
    uint64_t seed = 99;
    float *x = malloc((size_t)(q.n * q.k) * 4);
    for (int64_t i = 0; i < q.n * q.k; i++) x[i] = (float)(((double)(rng(&seed) >> 11) / 9007199254740992.0 - 0.5) * 6.0);
    dev_tensors qt, gt;
    const void *qhost[1] = {x};
    CHECK(dev_make(cu, &q, qhost, &qt, msg) == KB_OK, "quant tensors: %s", msg);
    const int64_t na = kb_scale_count(mode, g.m, g.k);
    uint8_t *w = malloc((size_t)(g.m * g.k));
    float *sa = malloc((size_t)na * 4);
    for (int64_t i = 0; i < g.m * g.k; i++) w[i] = rand_fp8(KB_E4M3, &seed);
    for (int64_t i = 0; i < na; i++) sa[i] = (float)(0.25 + (double)(rng(&seed) >> 40) / (1 << 24));
    const void *ghost[4] = {w, NULL, sa, NULL};
    CHECK(dev_make(lt, &g, ghost, &gt, msg) == KB_OK, "gemm tensors: %s", msg);
    /* X and its scales are the quantization's outputs, in place */
    lt->free(gt.buf[1]);
    lt->free(gt.buf[3]);
    gt.buf[1] = gt.buf[3] = 0;
    gt.args[1].view = qt.args[1].view;
    gt.args[3].view = qt.args[2].view;
    kb_variant qv, gv[64];
    kb_variant_init(&qv, quant_variant);
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    opt.algo = "heuristic";
    opt.fast_accum = 0;
    const int nv = lt->variants(&g, &opt, gv, 64, msg);
    CHECK(nv > 0, "chain %s: gemm variants: %s", kb_scale_mode_name(mode), msg);
    void *st[2] = {NULL, NULL}, *seq = NULL;
    int rc = cu->prepare(&q, &qv, qt.args, 1, 2, &st[0], msg);
    CHECK(rc == KB_OK, "chain: prepare quant_fp8 %s: %s", quant_variant, msg);
    if (rc == KB_OK && nv > 0) {
        rc = lt->prepare(&g, &gv[0], gt.args, 4, 1, &st[1], msg);
        CHECK(rc == KB_OK || rc == KB_NOT_SUPPORTED, "chain: prepare gemm_fp8 %s: %s", gv[0].name, msg);
    }
    if (rc == KB_NOT_SUPPORTED) {
        printf("  chain %s: not supported: %s\n", kb_scale_mode_name(mode), msg);
    } else if (rc == KB_OK && nv > 0) {
        rc = cu->enqueue(st, 2, msg); /* one enqueue of states of both fronts */
        if (rc == KB_OK) rc = lt->wait(msg);
        CHECK(rc == KB_OK, "chain %s: enqueue both: %s", kb_scale_mode_name(mode), msg);
        const int64_t ns = kb_scale_count(mode, q.n, q.k);
        uint8_t *xq = malloc((size_t)(q.n * q.k));
        float *sb = malloc((size_t)ns * 4), *d = malloc((size_t)(g.m * g.n) * 4), *d2 = malloc((size_t)(g.m * g.n) * 4);
        double *ref = malloc((size_t)(g.m * g.n) * 8), *mag = malloc((size_t)(g.m * g.n) * 8);
        cu->download(xq, qt.args[1].view, msg);
        cu->download(sb, qt.args[2].view, msg);
        lt->download(d, gt.args[4].view, msg);
        gemm_ref(&g, w, xq, sa, sb, ref, mag);
        int64_t infs, first;
        const int64_t bad = gemm_check(&g, d, ref, mag, gv[0].acc_unit_roundoff, &infs, &first);
        CHECK(bad == 0, "chain %s: %lld bad outputs, first [%lld] %g vs %g", kb_scale_mode_name(mode), (long long)bad,
              (long long)first, first >= 0 ? d[first] : 0.0, first >= 0 ? ref[first] : 0.0);
        rc = cu->record(st, 2, &seq, msg);
        CHECK(rc == KB_OK || rc == KB_NOT_SUPPORTED, "chain %s: record: %s", kb_scale_mode_name(mode), msg);
        if (rc == KB_OK) {
            memset(d2, 0xff, (size_t)(g.m * g.n) * 4);
            lt->upload(gt.args[4].view, d2, msg);
            rc = lt->enqueue(&seq, 1, msg);
            if (rc == KB_OK) rc = cu->wait(msg);
            lt->download(d2, gt.args[4].view, msg);
            CHECK(rc == KB_OK && !memcmp(d, d2, (size_t)(g.m * g.n) * 4), "chain %s: the recorded sequence gives the same D: %s",
                  kb_scale_mode_name(mode), msg);
            double sec = 0;
            rc = lt->run_timed(&seq, 1, 1, &sec, msg);
            CHECK(rc == KB_OK && sec > 0, "chain %s: the sequence timed: %s", kb_scale_mode_name(mode), msg);
            printf("  chain %s (quant_fp8 %s -> gemm_fp8 %s): ok, sequence %.2f us cold\n", kb_scale_mode_name(mode),
                   quant_variant, gv[0].name, sec * 1e6);
            cu->release(seq);
        } else {
            printf("  chain %s: record not supported: %s\n", kb_scale_mode_name(mode), msg);
        }
        free(xq), free(sb), free(d), free(d2), free(ref), free(mag);
    }
    cu->release(st[0]);
    lt->release(st[1]);
    dev_free(cu, &qt);
    dev_free(lt, &gt);
    free(x), free(w), free(sa);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* a killed run still shows how far it got */
    const kb_backend *b = &kb_backend_cublaslt;
    char msg[KB_MSG] = "", msg2[KB_MSG] = "";
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    opt.fast_accum = -1;
    int rc = b->probe(&opt, msg);
    if (rc == KB_NOT_SUPPORTED) {
        /* The CI path: no GPU here. The reason names CUDA (or cuBLASLt) and is stable. */
        printf("probe: not supported: %s\n", msg);
        CHECK(msg[0] != '\0', "empty reason");
        CHECK(strstr(msg, "CUDA") != NULL || strstr(msg, "cuBLASLt") != NULL || strstr(msg, "cublasLt") != NULL,
              "the reason names CUDA or cuBLASLt: %s", msg);
        CHECK(b->probe(&opt, msg2) == KB_NOT_SUPPORTED && strcmp(msg, msg2) == 0, "second probe: %s", msg2);
        kb_case c = gemm_case(256, 16, 256, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR);
        kb_variant v[4];
        CHECK(b->variants(&c, &opt, v, 4, msg2) <= 0, "no variants without cuBLASLt");
    } else {
        CHECK(rc == KB_OK, "probe returned %d: %s", rc, msg);
        if (rc == KB_OK) {
            const kb_device_info *d = b->device();
            printf("device: %s; %s\n  %.1f GB/s (%s), launch floor %.2f us (%s)\n", d->name, d->driver, d->bw * 1e-9,
                   d->bw_source, d->launch_floor_s * 1e6, d->launch_source);
            CHECK(d->name[0] != '\0' && d->bw > 0 && d->launch_floor_s > 0, "device name / bandwidth / launch floor");
            CHECK(kb_backend_cuda.device() == d, "the two fronts share the device");
            tally t = {0, 0};
            const kb_dtype outs[3] = {KB_BF16, KB_F16, KB_F32};
            for (int s = 0; s < KB_SCALE_COUNT; s++)
                for (int o = 0; o < 3; o++) {
                    opt.algo = "heuristic";
                    /* k = 640: five 128-blocks (BLK128 pads to 8); m = 384: three W blocks. */
                    run_case(b, gemm_case(384, 24, 640, KB_E4M3, KB_E4M3, outs[o], (kb_scale_mode)s), &opt, 1, &t);
                }
            /* k = 1024: eight whole blocks, in case a block mode wants k % 128 == 0. */
            run_case(b, gemm_case(384, 24, 1024, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_VEC128), &opt, 1, &t);
            run_case(b, gemm_case(384, 24, 1024, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_BLK128), &opt, 1, &t);
            run_case(b, gemm_case(256, 1, 512, KB_E4M3, KB_E5M2, KB_BF16, KB_SCALE_OUTER), &opt, 1, &t); /* decode */
            run_case(b, gemm_case(256, 8, 512, KB_E5M2, KB_E4M3, KB_F32, KB_SCALE_TENSOR), &opt, 1, &t);
            /* fp16 overflow: |ref| well past 65504 must come back as inf, not clamped. */
            run_case(b, gemm_case(256, 16, 1024, KB_E4M3, KB_E4M3, KB_F16, KB_SCALE_TENSOR), &opt, 2000.0, &t);
            opt.algo = "exhaustive";
            opt.algo_cap = 24;
            opt.fast_accum = 0;
            run_case(b, gemm_case(256, 16, 512, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR), &opt, 1, &t);
            printf("ran %d variants, %d not supported\n", t.ran, t.not_supported);
            CHECK(t.ran > 0, "nothing ran");
            /* the two fronts in one chain, scales produced on the device */
            chain_case(KB_SCALE_TENSOR, "v1_b256");
            chain_case(KB_SCALE_VEC128, "v1_b256");
            chain_case(KB_SCALE_VEC128, "v2_b256");
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
#endif
