/* gemm_fp8.c - the vulkan gemm_fp8: `gemv` for decode-sized batches, `tiled64` from 8
 * tokens (gemm_fp8.comp and its -D builds). */
#include "kernels/spirv/vk_op.h"

#include <string.h>

#include "spv_gemm_gemv.h"
#include "spv_gemm_gemv_out16.h"
#include "spv_gemm_tiled.h"
#include "spv_gemm_tiled_out16.h"

static const vk_module mod_gemv = {"gemm_fp8.comp", kb_spv_gemm_gemv, sizeof kb_spv_gemm_gemv};
static const vk_module mod_gemv16 = {"gemm_fp8.comp -DKB_OUT16", kb_spv_gemm_gemv_out16, sizeof kb_spv_gemm_gemv_out16};
static const vk_module mod_tiled = {"gemm_fp8.comp -DKB_GEMM_TILED", kb_spv_gemm_tiled, sizeof kb_spv_gemm_tiled};
static const vk_module mod_tiled16 = {"gemm_fp8.comp -DKB_GEMM_TILED -DKB_OUT16", kb_spv_gemm_tiled_out16,
                                      sizeof kb_spv_gemm_tiled_out16};

#define TILED_MIN_N 8 /* tiled64 listed from 8 tokens (both variants at 8..16): a 64-token tile is mostly padding below */
#define GEMV_MAX_N 16 /* gemv re-reads W once per 4 tokens: listed for decode-sized batches */

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)msg;
    int n = 0;
    if (c->n <= GEMV_MAX_N) vk_variant_add(out, max, &n, "gemv", "gemm_fp8.comp: 128 threads per output row, 4 tokens a pass");
    if (c->n >= TILED_MIN_N)
        vk_variant_add(out, max, &n, "tiled64",
                       "gemm_fp8.comp -DKB_GEMM_TILED: 64x64 tile, 256 threads x 4x4, K step 32 in shared memory");
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    int tiled;
    if (!strcmp(p->variant, "gemv")) tiled = 0;
    else if (!strcmp(p->variant, "tiled64")) tiled = 1;
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
    const vk_module *m = tiled ? (out16 ? &mod_tiled16 : &mod_tiled) : (out16 ? &mod_gemv16 : &mod_gemv);
    const int64_t groups = tiled ? vk_ceil_div(c->m, 64) * vk_ceil_div(c->n, 64) : c->m;
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
    return KB_OK;
}

const vk_op vk_op_gemm_fp8 = {variants, plan, NULL};
