/* gemm_f32.c - the vulkan gemm_f32: `gemv` for decode-sized batches, `tiled64` from 8
 * tokens (gemm_f32.comp and its -D build), vec4 loads where k and the views allow. */
#include "kernels/spirv/vk_op.h"

#include <string.h>

#include "spv_gemm_f32_gemv.h"
#include "spv_gemm_f32_tiled.h"

static const vk_module mod_gemv = {"gemm_f32.comp", kb_spv_gemm_f32_gemv, sizeof kb_spv_gemm_f32_gemv};
static const vk_module mod_tiled = {"gemm_f32.comp -DKB_GEMM_TILED", kb_spv_gemm_f32_tiled, sizeof kb_spv_gemm_f32_tiled};

#define TILED_MIN_N 8 /* a 64-token tile is mostly padding below 8 tokens */
#define GEMV_MAX_N 16 /* gemv re-reads W once per 4 tokens: for decode-sized batches */

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)msg;
    int n = 0;
    if (c->n <= GEMV_MAX_N) vk_variant_add(out, max, &n, "gemv", "gemm_f32.comp: 128 threads per output row, 4 tokens a pass");
    if (c->n >= TILED_MIN_N)
        vk_variant_add(out, max, &n, "tiled64",
                       "gemm_f32.comp -DKB_GEMM_TILED: 64x64 tile, 256 threads x 4x4, K step 32 in shared memory");
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    int tiled;
    if (!strcmp(p->variant, "gemv")) tiled = 0;
    else if (!strcmp(p->variant, "tiled64")) tiled = 1;
    else return kb_fail(msg, KB_ERROR, "gemm_f32: no variant '%s'", p->variant);
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "gemm_f32 needs m, n, k >= 1");
    if (!vk_fits_u32(c->m * c->k) || !vk_fits_u32(c->n * c->k) || !vk_fits_u32(c->m * c->n))
        return kb_fail(msg, KB_NOT_SUPPORTED, "more than 2^32 elements in an operand");
    const int64_t groups = tiled ? vk_ceil_div(c->m, 64) * vk_ceil_div(c->n, 64) : c->m;
    vk_dispatch *d = vk_plan_dispatch(p, tiled ? &mod_tiled : &mod_gemv, (uint32_t)groups);
    if (!d) return vk_plan_oom(msg);
    /* vec4 loads: every row starts on 16 bytes when k % 4 == 0 and the views do */
    d->spec[1] = c->k % 4 == 0 && p->args[0].view.offset % 16 == 0 && p->args[1].view.offset % 16 == 0;
    d->nspec = 2;
    d->push[0] = (uint32_t)c->m;
    d->push[1] = (uint32_t)c->n;
    d->push[2] = (uint32_t)c->k;
    for (int i = 0; i < 3; i++) vk_bind_arg(d, i, i); /* w, x, d */
    return KB_OK;
}

const vk_op vk_op_gemm_f32 = {variants, plan, NULL};
