/* gemm_fp8.c - the vulkan gemm_fp8: `gemv` and `gemv_sg` for decode-sized batches, `tiled64`
 * from 8 tokens (gemm_fp8.comp and its -D builds). */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>
#include <string.h>

#include "spv_gemm_gemv.h"
#include "spv_gemm_gemv_out16.h"
#include "spv_gemm_gemv_sg.h"
#include "spv_gemm_gemv_sg_out16.h"
#include "spv_gemm_tiled.h"
#include "spv_gemm_tiled_out16.h"

static const vk_module mod_gemv = {"gemm_fp8.comp", kb_spv_gemm_gemv, sizeof kb_spv_gemm_gemv};
static const vk_module mod_gemv16 = {"gemm_fp8.comp -DKB_OUT16", kb_spv_gemm_gemv_out16, sizeof kb_spv_gemm_gemv_out16};
static const vk_module mod_gemv_sg = {"gemm_fp8.comp -DKB_GEMV_SG", kb_spv_gemm_gemv_sg, sizeof kb_spv_gemm_gemv_sg};
static const vk_module mod_gemv_sg16 = {"gemm_fp8.comp -DKB_GEMV_SG -DKB_OUT16", kb_spv_gemm_gemv_sg_out16,
                                        sizeof kb_spv_gemm_gemv_sg_out16};
static const vk_module mod_tiled = {"gemm_fp8.comp -DKB_GEMM_TILED", kb_spv_gemm_tiled, sizeof kb_spv_gemm_tiled};
static const vk_module mod_tiled16 = {"gemm_fp8.comp -DKB_GEMM_TILED -DKB_OUT16", kb_spv_gemm_tiled_out16,
                                      sizeof kb_spv_gemm_tiled_out16};

#define TILED_MIN_N 8 /* tiled64 listed from 8 tokens (both variants at 8..16): a 64-token tile is mostly padding below */
#define GEMV_MAX_N 16 /* gemv re-reads W once per 4 tokens: listed for decode-sized batches */
/* gemv_sg (NOTES.md "gemv_sg"): every token's sums live in registers (ROWS x n per lane), so
 * n <= 16; SGS subgroups a workgroup. K goes in chunks of USL 16-byte slices per lane:
 *   - X of a chunk in shared memory: at most SG_SHARED_BYTES (more only when one slice per lane
 *     needs more);
 *   - W of a chunk in registers: when one chunk covers K, up to SG_W_REGS uvec4 per lane (all of
 *     a lane's W requested at once); otherwise the next chunk loads while this one computes (two
 *     sets), up to SG_W_REGS / 2 each;
 *   - USL x n <= SG_UNROLL and USL x ROWS x n <= SG_BODY: the unrolled body (USL x ROWS x n dot
 *     products of 16) stays a size compilers handle in reasonable time (llvmpipe: seconds); as
 *     written (ROWS <= 4) the second bound never binds. On a 32-wide subgroup the shared memory
 *     bound is the tighter one for every n.
 * Tunables (--tune, specialization constants 5, 6, 11 and 12): ROWS (rows per subgroup, as written 1 for
 * n = 1, 2 for n = 2, else 4) from 1 to SG_MAX_ROWS (two sets of one W slice per row fit
 * SG_W_REGS) with ROWS x n <= SG_BODY (the sums as written at most: 4 x 16); SGS (subgroups per
 * workgroup, as written 8 or 16 for n = 1 (below), else SG_SUBGROUPS, halved while the workgroup exceeds the
 * device's invocations) from 1 to what the device's workgroup holds; WDEC and XDEC (below) 0 or 1. */
#define SG_MAX_N 16
#define SG_SUBGROUPS 4u
#define SG_SHARED_BYTES 32768u
#define SG_W_REGS 16u
#define SG_UNROLL 16u
#define SG_BODY 64u
#define SG_MAX_ROWS (SG_W_REGS / 2u)
/* WDEC (spec constant 11): how W's fp8 bytes become floats, 0 by f32 bit manipulation (dec4), 1
 * through binary16 bits and unpackHalf2x16 (dec4h: about half the integer operations a value).
 * As written 1: faster at every decode shape on the H200, each shape and point in a process of
 * its own (results/h200/vkwdec2.csv, rotate): 3584x1x3584 14.0 -> 11.6 us at SGS 8,
 * 18944x1x3584 46.4 -> 35.5, 3584x1x18944 60.5 -> 48.4, n = 2 / 4 / 8 / 16 34.6 / 28.0 / 70.4
 * / 130.6 -> 29.8 / 25.6 / 65.9 / 126.3. */
#define SG_WDEC_WRITTEN 1u
/* XDEC (spec constant 12): the same choice for X's staging into shared memory. As written 1:
 * on the H200 (results/h200/vkxdec.csv, a process each shape and point, rotate) the same at
 * n = 1 (3584x1x3584 10.07 / 10.11 against 10.09 / 10.11, two runs each), 1-4 % faster at
 * n = 2..16 (3584x16x3584 128.2 -> 124.5 us), the same output bits. */
#define SG_XDEC_WRITTEN 1u

/* ROWS and SGS as written: 4 rows share each X read from shared memory once n > 2; at n = 1
 * one row a subgroup and 8 subgroups a workgroup (the same 8 rows and X staging a workgroup
 * as 2 x 4, twice the subgroups): on the H200 14.0 us against 18.2 at 3584x1x3584, 46.4
 * against 64.8 at 18944x1x3584 (results/h200/vk-gemv-tune.csv, rotate mode). At WDEC=1, 16
 * subgroups where M gives enough workgroups (SG_WIDE_MIN_M rows: 128 workgroups of 16 rows):
 * 3584x1x3584 10.1 us against 11.6 at 8, 18944x1x3584 34.9 / 35.5, 152064x1x3584 187 / 807
 * (that 807 an outlier of 8 subgroups at WDEC=1: 289 at WDEC=0); at 512x1x3584 (32 workgroups
 * of 16 rows) 5.75 against 5.10 (results/h200/vkwdec2.csv) */
#define SG_WIDE_MIN_M 2048
static uint32_t sg_rows_written(int64_t n) { return n == 1 ? 1u : n <= 2 ? 2u : 4u; }
static uint32_t sg_subgroups_written(int64_t n, int64_t m) {
    return n == 1 ? (m >= SG_WIDE_MIN_M ? 16u : 8u) : SG_SUBGROUPS;
}

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)msg;
    int n = 0;
    if (c->n <= GEMV_MAX_N) vk_variant_add(out, max, &n, "gemv", "gemm_fp8.comp: 128 threads per output row, 4 tokens a pass");
    if (c->n <= SG_MAX_N) {
        vk_variant_add(out, max, &n, "gemv_sg",
                       "gemm_fp8.comp -DKB_GEMV_SG: %u rows per subgroup, 16-byte W loads, all %lld tokens a pass, "
                       "subgroupAdd",
                       sg_rows_written(c->n), (long long)c->n);
        if (n && !strcmp(out[n - 1].name, "gemv_sg"))
            snprintf(out[n - 1].tunables, sizeof out[n - 1].tunables, "ROWS=%u SGS=%u WDEC=%u XDEC=%u",
                     sg_rows_written(c->n), sg_subgroups_written(c->n, c->m), SG_WDEC_WRITTEN, SG_XDEC_WRITTEN);
    }
    if (c->n >= TILED_MIN_N)
        vk_variant_add(out, max, &n, "tiled64",
                       "gemm_fp8.comp -DKB_GEMM_TILED: 64x64 tile, 256 threads x 4x4, K step 32 in shared memory");
    return n;
}

/* A decode choice (WDEC, XDEC) at the --tune point, 0 or 1; *out keeps the written one unless
 * the point sets it. */
static int sg_decode(const vk_plan *p, const char *name, uint32_t *out, char *msg) {
    const int *v = p->tune ? kb_tune_get(p->tune, name) : NULL;
    if (v && *v != 0 && *v != 1)
        return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: %s=%d: 0 (f32 bits) or 1 (binary16 bits)", name, *v);
    if (v) *out = (uint32_t)*v;
    return KB_OK;
}

/* gemv_sg's layout for this case, device and --tune point: spec constants 5..12 and the workgroup
 * count. */
static int plan_sg(vk_plan *p, vk_dispatch *d, char *msg) {
    const kb_case *c = p->c;
    if (c->n > SG_MAX_N) return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: n = %lld > %d", (long long)c->n, SG_MAX_N);
    const uint32_t sg = p->subgroup_size;
    if (sg == 0 || (sg & (sg - 1)) != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: subgroup size %u (a power of two is needed)", sg);
    const uint32_t ntok = (uint32_t)c->n;
    const int *tune_sgs = p->tune ? kb_tune_get(p->tune, "SGS") : NULL;
    const int *tune_rows = p->tune ? kb_tune_get(p->tune, "ROWS") : NULL;
    uint32_t nsg = sg_subgroups_written(c->n, c->m);
    if (tune_sgs) {
        if (*tune_sgs < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: SGS=%d subgroups: at least 1", *tune_sgs);
        nsg = (uint32_t)*tune_sgs;
        if (nsg > p->max_invocations / sg)
            return kb_fail(msg, KB_NOT_SUPPORTED,
                           "gemv_sg: SGS=%u subgroups of %u exceed the device's %u invocations per workgroup", nsg,
                           sg, p->max_invocations);
    } else {
        while (nsg > 1 && nsg * sg > p->max_invocations) nsg /= 2;
    }
    if (nsg * sg > p->max_invocations)
        return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: a subgroup of %u exceeds %u invocations per workgroup", sg,
                       p->max_invocations);
    uint32_t rows = sg_rows_written(c->n);
    if (tune_rows) {
        if (*tune_rows < 1)
            return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: ROWS=%d rows per subgroup: at least 1", *tune_rows);
        rows = (uint32_t)*tune_rows;
        if (rows > SG_MAX_ROWS)
            return kb_fail(msg, KB_NOT_SUPPORTED,
                           "gemv_sg: ROWS=%u rows per subgroup: at most %u (two sets of one 16-byte W slice per "
                           "row in %u uvec4 registers)",
                           rows, SG_MAX_ROWS, SG_W_REGS);
        if (rows * ntok > SG_BODY)
            return kb_fail(msg, KB_NOT_SUPPORTED,
                           "gemv_sg: ROWS=%u x %u tokens = %u sums per lane: at most %u (registers)", rows, ntok,
                           rows * ntok, SG_BODY);
    }
    uint32_t wdec = SG_WDEC_WRITTEN, xdec = SG_XDEC_WRITTEN;
    if (sg_decode(p, "WDEC", &wdec, msg) != KB_OK || sg_decode(p, "XDEC", &xdec, msg) != KB_OK)
        return KB_NOT_SUPPORTED;
    /* K chunk: USL slices of 16 per lane. One slice needs ntok * 64 * sg bytes of shared memory. */
    const uint64_t slice_bytes = (uint64_t)ntok * 64u * sg;
    if (slice_bytes > p->max_shared_bytes)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "gemv_sg: %u tokens x subgroup %u need %llu bytes of shared memory, the device has %u", ntok, sg,
                       (unsigned long long)slice_bytes, p->max_shared_bytes);
    const uint64_t k_slices = (uint64_t)vk_ceil_div(c->k, 16 * (int64_t)sg); /* one chunk covers K */
    uint64_t usl = SG_SHARED_BYTES / slice_bytes;
    if (usl * ntok > SG_UNROLL) usl = SG_UNROLL / ntok;
    if (usl * rows * ntok > SG_BODY) usl = SG_BODY / (rows * ntok);
    const int one_chunk = k_slices <= usl && k_slices * rows <= SG_W_REGS;
    if (one_chunk) usl = k_slices;
    else if (usl * rows > SG_W_REGS / 2) usl = SG_W_REGS / 2 / rows;
    if (usl < 1) usl = 1;
    const int64_t groups = vk_ceil_div(c->m, (int64_t)(nsg * rows));
    if (!vk_fits_u32(groups)) return kb_fail(msg, KB_NOT_SUPPORTED, "gemv_sg: %lld workgroups", (long long)groups);
    d->groups = (uint32_t)groups;
    d->spec[5] = nsg * sg;
    d->spec[6] = rows;
    d->spec[7] = ntok;
    d->spec[8] = sg;
    d->spec[9] = (uint32_t)usl;
    d->spec[10] = one_chunk ? 1u : 0u;
    d->spec[11] = wdec;
    d->spec[12] = xdec;
    d->nspec = 13;
    /* 16-byte loads need every W row on 16 bytes, word loads every row on 4 (views start where
     * minStorageBufferOffsetAlignment allows, possibly below 16) */
    const uint64_t w_off = p->args[0].view.offset, x_off = p->args[1].view.offset;
    d->push[4] = ((c->k % 16 == 0 && w_off % 16 == 0) ? 1u : 0u) |
                 ((c->k % 4 == 0 && w_off % 4 == 0 && x_off % 4 == 0) ? 2u : 0u);
    return KB_OK;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    enum { GEMV, GEMV_SG, TILED } kind;
    if (!strcmp(p->variant, "gemv")) kind = GEMV;
    else if (!strcmp(p->variant, "gemv_sg")) kind = GEMV_SG;
    else if (!strcmp(p->variant, "tiled64")) kind = TILED;
    else return kb_fail(msg, KB_ERROR, "gemm_fp8: no variant '%s'", p->variant);
    if (c->a_type != KB_E4M3 && c->a_type != KB_E5M2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "W type %s: fp8 (e4m3/e5m2) only", kb_dtype_name(c->a_type));
    if (c->b_type != KB_E4M3 && c->b_type != KB_E5M2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "X type %s: fp8 (e4m3/e5m2) only", kb_dtype_name(c->b_type));
    int out16;
    uint32_t out_mode;
    if (c->out_type == KB_F32) out16 = 0, out_mode = 0;
    else if (c->out_type == KB_F16) out16 = 1, out_mode = 1;
    else if (c->out_type == KB_BF16) out16 = 1, out_mode = 2;
    else return kb_fail(msg, KB_NOT_SUPPORTED, "output type %s: f32, f16, bf16 only", kb_dtype_name(c->out_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT) return kb_fail(msg, KB_NOT_SUPPORTED, "unknown scale mode");
    if (!vk_fits_u32(c->m * c->k) || !vk_fits_u32(c->n * c->k) || !vk_fits_u32(c->m * c->n))
        return kb_fail(msg, KB_NOT_SUPPORTED, "more than 2^32 elements in an operand");
    const vk_module *m = kind == TILED     ? (out16 ? &mod_tiled16 : &mod_tiled)
                         : kind == GEMV_SG ? (out16 ? &mod_gemv_sg16 : &mod_gemv_sg)
                                           : (out16 ? &mod_gemv16 : &mod_gemv);
    const int64_t groups = kind == TILED ? vk_ceil_div(c->m, 64) * vk_ceil_div(c->n, 64) : c->m;
    vk_dispatch *d = vk_plan_dispatch(p, m, (uint32_t)groups);
    if (!d) return vk_plan_oom(msg);
    d->spec[1] = c->a_type == KB_E5M2;
    d->spec[2] = c->b_type == KB_E5M2;
    d->spec[3] = (uint32_t)c->scale_mode;
    d->spec[4] = out_mode;
    d->nspec = 5;
    d->push[0] = (uint32_t)c->m;
    d->push[1] = (uint32_t)c->n;
    d->push[2] = (uint32_t)c->k;
    d->push[3] = (uint32_t)vk_ceil_div(c->k, 128);
    for (int i = 0; i < 5; i++) vk_bind_arg(d, i, i); /* w, x, sa, sb, d */
    if (kind == GEMV_SG) return plan_sg(p, d, msg);
    return KB_OK;
}

const vk_op vk_op_gemm_fp8 = {variants, plan, NULL};
