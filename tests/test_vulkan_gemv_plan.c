/* test_vulkan_gemv_plan.c - gemm_fp8 gemv_sg's plan (kernels/spirv/gemm_fp8.c) on made-up
 * devices, no Vulkan device needed: the layout as written (the table in kernels/spirv/NOTES.md,
 * "gemm_fp8 gemv_sg", for a 32-wide subgroup) and at --tune points ROWS (rows per subgroup),
 * SGS (subgroups per workgroup) and WDEC (W's decode): the specialization constants and the
 * workgroup count follow the point, so a point the plan ignores fails here even though its rows would pass parity;
 * points it cannot take are KB_NOT_SUPPORTED with the reason.
 * Specialization constants (gemm_fp8.comp): 5 the workgroup size, 6 ROWS, 7 NTOK, 8 SG, 9 USL
 * (16-byte slices per lane per K chunk), 10 ONE_CHUNK, 11 WDEC (W's decode), 12 XDEC (X's). */
#include "bench/kbench.h"
#include "kernels/spirv/vk_op.h"
#include "tests/kb_check.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t sg, max_inv, max_shared;
} device;
static const device H200 = {32, 1024, 49152}; /* NVIDIA: subgroups of 32, 48 KiB, 1024 invocations */

typedef struct {
    int rc;
    uint32_t wg_size, rows, ntok, sg, usl, one_chunk, groups, wdec, xdec, nspec;
    char msg[KB_MSG];
} layout;

/* The plan for gemv_sg at M x n x K on device dev, at a --tune point (its layout: specs and
 * workgroup count, or the refusal). */
static layout plan_at(const device *dev, int64_t m, int64_t n, int64_t k, const kb_tune_point *point) {
    kb_case c;
    memset(&c, 0, sizeof c);
    c.op = KB_OP_gemm_fp8;
    c.m = m, c.n = n, c.k = k;
    c.a_type = c.b_type = KB_E4M3;
    c.out_type = KB_BF16;
    c.scale_mode = KB_SCALE_TENSOR;
    kb_arg args[5];
    memset(args, 0, sizeof args);
    vk_plan p = {.c = &c,
                 .variant = "gemv_sg",
                 .tune = point,
                 .args = args,
                 .n_in = 4,
                 .n_out = 1,
                 .subgroup_size = dev->sg,
                 .max_shared_bytes = dev->max_shared,
                 .max_invocations = dev->max_inv};
    layout l;
    memset(&l, 0, sizeof l);
    l.rc = vk_op_gemm_fp8.plan(&p, l.msg);
    if (l.rc == KB_OK && p.ndisp == 1) {
        const vk_dispatch *d = &p.d[0];
        l.wg_size = d->spec[5], l.rows = d->spec[6], l.ntok = d->spec[7], l.sg = d->spec[8], l.usl = d->spec[9];
        l.one_chunk = d->spec[10], l.groups = d->groups, l.wdec = d->spec[11], l.xdec = d->spec[12];
        l.nspec = (uint32_t)d->nspec;
    } else if (l.rc == KB_OK) {
        l.rc = -1;
    }
    free(p.d);
    free(p.scratch);
    return l;
}
/* ... at the point rows/sgs (0: not set; ZERO: set to 0, which a tune point may say since PDL=0
 * is one). */
#define ZERO (-1)
static layout plan(const device *dev, int64_t m, int64_t n, int64_t k, int rows, int sgs) {
    kb_tune_point point = {0};
    if (rows) kb_tune_set(&point, "ROWS", rows == ZERO ? 0 : rows);
    if (sgs) kb_tune_set(&point, "SGS", sgs == ZERO ? 0 : sgs);
    return plan_at(dev, m, n, k, &point);
}

/* expect: the layout at M = 3584 (or m) x n x K on dev */
static void expect(const device *dev, int64_t m, int64_t n, int64_t k, int rows, int sgs, uint32_t want_rows,
                   uint32_t want_nsg, uint32_t want_usl, uint32_t want_one, uint32_t want_groups) {
    const layout l = plan(dev, m, n, k, rows, sgs);
    CHECK(l.rc == KB_OK && l.rows == want_rows && l.wg_size == want_nsg * dev->sg && l.ntok == (uint32_t)n &&
              l.sg == dev->sg && l.usl == want_usl && l.one_chunk == want_one && l.groups == want_groups,
          "%lldx%lldx%lld sg %u at ROWS=%d SGS=%d: rc %d (%s) rows %u, workgroup %u, usl %u, one chunk %u, %u groups; "
          "want rows %u, workgroup %u, usl %u, one chunk %u, %u groups",
          (long long)m, (long long)n, (long long)k, dev->sg, rows, sgs, l.rc, l.msg, l.rows, l.wg_size, l.usl,
          l.one_chunk, l.groups, want_rows, want_nsg * dev->sg, want_usl, want_one, want_groups);
}

static void refused(const device *dev, int64_t n, int rows, int sgs, const char *why) {
    const layout l = plan(dev, 3584, n, 3584, rows, sgs);
    CHECK(l.rc == KB_NOT_SUPPORTED && strstr(l.msg, why), "n = %lld at ROWS=%d SGS=%d: rc %d '%s', want not_supported '%s'",
          (long long)n, rows, sgs, l.rc, l.msg, why);
}

int main(void) {
    /* as written (no point): NOTES.md's table at M = K = 3584 on a 32-wide subgroup */
    expect(&H200, 3584, 1, 3584, 0, 0, 1, 16, 7, 1, 224); /* one 3584-wide chunk; n = 1: 1 row x 16 subgroups */
    expect(&H200, 2048, 1, 3584, 0, 0, 1, 16, 7, 1, 128);
    expect(&H200, 2047, 1, 3584, 0, 0, 1, 8, 7, 1, 256);  /* below 2048 rows: 8 subgroups */
    expect(&H200, 512, 1, 3584, 0, 0, 1, 8, 7, 1, 64);
    expect(&H200, 3584, 2, 3584, 0, 0, 2, 4, 7, 1, 448);
    for (int n = 3; n <= 8; n++) expect(&H200, 3584, n, 3584, 0, 0, 4, 4, 2, 0, 224); /* 1024-wide chunks */
    for (int n = 9; n <= 16; n++) expect(&H200, 3584, n, 3584, 0, 0, 4, 4, 1, 0, 224); /* 512 */
    expect(&H200, 18944, 1, 3584, 0, 0, 1, 16, 7, 1, 1184);
    expect(&H200, 3584, 1, 18944, 0, 0, 1, 16, 8, 0, 224); /* 4096-wide chunks (8 registers of one row) */
    expect(&H200, 3584, 2, 18944, 0, 0, 2, 4, 4, 0, 448); /* 2048-wide chunks */
    /* as written, a device of 64 invocations: SGS halved to 2 */
    const device small = {32, 64, 32768};
    expect(&small, 3584, 1, 3584, 0, 0, 1, 2, 7, 1, 1792);
    expect(&small, 3584, 2, 3584, 0, 0, 2, 2, 7, 1, 896);

    /* tuned: the point's ROWS and SGS, the K chunk re-planned for ROWS */
    expect(&H200, 3584, 1, 3584, 8, 2, 8, 2, 1, 0, 224); /* 7 x 8 slices > 16 registers: two sets of 1 */
    expect(&H200, 3584, 1, 3584, 1, 8, 1, 8, 7, 1, 448);
    expect(&H200, 3584, 1, 3584, 4, 0, 4, 16, 2, 0, 56); /* SGS as written (16 at n = 1, M >= 2048) */
    expect(&H200, 3584, 2, 3584, 0, 8, 2, 8, 7, 1, 224); /* ROWS as written */
    expect(&H200, 3584, 16, 3584, 2, 2, 2, 2, 1, 0, 896);
    expect(&H200, 40, 5, 200, 3, 3, 3, 3, 1, 1, 5); /* 9 rows a workgroup, the last one partial */
    expect(&H200, 3584, 8, 3584, 8, 32, 8, 32, 1, 0, 14); /* 8 x 8 = 64 sums: the most; 1024 invocations */
    /* the body bound USL x ROWS x n <= 64: K = 1024 would be one chunk of 2 slices a lane (80 dot
     * products at n = 5), so two sets of 1 */
    expect(&H200, 64, 5, 1024, 8, 1, 8, 1, 1, 0, 8);

    /* WDEC, XDEC: 1 as written, 0 or 1 at a point, 2 refused */
    layout w = plan(&H200, 3584, 1, 3584, 0, 0);
    CHECK(w.rc == KB_OK && w.wdec == 1 && w.xdec == 1 && w.nspec == 13,
          "WDEC and XDEC as written: 1 (specs 11, 12 of %u: %u, %u)", w.nspec, w.wdec, w.xdec);
    for (int v = 0; v <= 2; v++) {
        kb_tune_point point = {0};
        kb_tune_set(&point, "WDEC", v);
        kb_tune_set(&point, "XDEC", v);
        const layout l = plan_at(&H200, 64, 2, 256, &point);
        if (v < 2)
            CHECK(l.rc == KB_OK && l.wdec == (uint32_t)v && l.xdec == (uint32_t)v, "WDEC=XDEC=%d: specs 11, 12 = %d (%s)",
                  v, v, l.msg);
        else CHECK(l.rc == KB_NOT_SUPPORTED && strstr(l.msg, "WDEC=2: 0 (f32 bits) or 1 (binary16 bits)"), "WDEC=2 refused: %s", l.msg);
    }
    kb_tune_point xdec2 = {0};
    kb_tune_set(&xdec2, "XDEC", 2);
    const layout x2 = plan_at(&H200, 64, 2, 256, &xdec2);
    CHECK(x2.rc == KB_NOT_SUPPORTED && strstr(x2.msg, "XDEC=2: 0 (f32 bits) or 1 (binary16 bits)"), "XDEC=2 refused: %s",
          x2.msg);

    /* refused, saying why */
    refused(&H200, 1, 9, 0, "ROWS=9 rows per subgroup: at most 8");
    refused(&H200, 16, 8, 0, "ROWS=8 x 16 tokens = 128 sums per lane: at most 64");
    refused(&H200, 9, 8, 0, "ROWS=8 x 9 tokens = 72 sums per lane");
    refused(&H200, 1, 0, 33, "SGS=33 subgroups of 32 exceed the device's 1024 invocations per workgroup");
    refused(&small, 1, 0, 4, "SGS=4 subgroups of 32 exceed the device's 64 invocations per workgroup");
    refused(&H200, 1, 0, KB_TUNE_MAX, "exceed the device's 1024 invocations");
    refused(&H200, 1, ZERO, 0, "ROWS=0 rows per subgroup: at least 1");
    refused(&H200, 1, 0, ZERO, "SGS=0 subgroups: at least 1");

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
