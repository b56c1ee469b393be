/* quant_fp8.c - the vulkan quant_fp8: activations (f32, f16, bf16) to fp8 + amax scales
 * (quant_fp8.comp, one -D build per input type; the body is fp8_quant.glsl). Also the
 * plan weight_fp8 shares (fp8_quant.h). */
#include "kernels/spirv/fp8_quant.h"

#include <stdio.h>
#include <string.h>

#include "spv_quant_fp8_bf16.h"
#include "spv_quant_fp8_f16.h"
#include "spv_quant_fp8_f32.h"

static const vk_module mod_f32 = {"quant_fp8.comp", kb_spv_quant_fp8_f32, sizeof kb_spv_quant_fp8_f32};
static const vk_module mod_f16 = {"quant_fp8.comp -DKB_IN_F16", kb_spv_quant_fp8_f16, sizeof kb_spv_quant_fp8_f16};
static const vk_module mod_bf16 = {"quant_fp8.comp -DKB_IN_BF16", kb_spv_quant_fp8_bf16, sizeof kb_spv_quant_fp8_bf16};

enum { PASS_GROUP = 0, PASS_PARTIAL, PASS_FINAL, PASS_CODES }; /* fp8_quant.glsl's PASS */
#define TENSOR_CHUNK 4096 /* tensor mode: elements per workgroup of the amax pass */

int vk_fp8_quant_plan(vk_plan *p, int64_t rows, const vk_module *m, char *msg) {
    const kb_case *c = p->c;
    if (strcmp(p->variant, VK_FP8_QUANT_VARIANT))
        return kb_fail(msg, KB_ERROR, "%s: no variant '%s'", m->name, p->variant);
    if (c->out_type != KB_E4M3 && c->out_type != KB_E5M2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "out_type %s: e4m3 or e5m2 only", kb_dtype_name(c->out_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT) return kb_fail(msg, KB_NOT_SUPPORTED, "unknown scale mode");
    const int64_t total = rows * c->k, kblocks = vk_ceil_div(c->k, 128);
    if (rows < 1 || c->k < 1 || !vk_fits_u32(total)) return kb_fail(msg, KB_NOT_SUPPORTED, "1 to 2^32-1 elements only");
    const int64_t nparts = vk_ceil_div(total, TENSOR_CHUNK);
    const uint32_t push[5] = {(uint32_t)rows, (uint32_t)c->k, (uint32_t)kblocks, (uint32_t)nparts, TENSOR_CHUNK};
    /* tensor: the amax of each chunk, the amax of those and the scale, then the codes;
     * otherwise one workgroup per scale group does all three */
    const int tensor = c->scale_mode == KB_SCALE_TENSOR;
    const int passes[3] = {PASS_PARTIAL, PASS_FINAL, PASS_CODES};
    const int64_t groups[3] = {nparts, 1, vk_ceil_div(total, 256)};
    int partial = -1;
    if (tensor && (partial = vk_plan_scratch(p, 4 * (uint64_t)nparts, NULL)) < 0) return vk_plan_oom(msg);
    for (int i = 0; i < (tensor ? 3 : 1); i++) {
        const int64_t wgs = tensor ? groups[i] : kb_scale_count(c->scale_mode, rows, c->k);
        vk_dispatch *d = vk_plan_dispatch(p, m, (uint32_t)wgs);
        if (!d) return vk_plan_oom(msg);
        d->spec[1] = (uint32_t)(tensor ? passes[i] : PASS_GROUP);
        d->spec[2] = (uint32_t)c->scale_mode;
        d->spec[3] = c->out_type == KB_E5M2;
        d->spec[4] = c->flush != 0;
        d->nspec = 5;
        memcpy(d->push, push, sizeof push);
        vk_bind_arg(d, 0, 0); /* the input */
        vk_bind_arg(d, 1, 1); /* codes */
        vk_bind_arg(d, 2, 2); /* scales */
        if (partial >= 0) vk_bind_scratch(d, 3, partial);
    }
    return KB_OK;
}

static const vk_module *module_for(kb_dtype t) {
    switch (t) {
    case KB_F32: return &mod_f32;
    case KB_F16: return &mod_f16;
    case KB_BF16: return &mod_bf16;
    default: return NULL;
    }
}

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    const vk_module *m = module_for(c->a_type);
    int n = 0;
    if (!m) {
        snprintf(msg, KB_MSG, "vulkan quant_fp8: input type %s: f32, f16, bf16 only", kb_dtype_name(c->a_type));
        return 0;
    }
    vk_variant_add(out, max, &n, VK_FP8_QUANT_VARIANT, "%s: %s", m->name, VK_FP8_QUANT_DETAIL);
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const vk_module *m = module_for(p->c->a_type);
    if (!m) return kb_fail(msg, KB_NOT_SUPPORTED, "input type %s: f32, f16, bf16 only", kb_dtype_name(p->c->a_type));
    if (p->c->scale_mode == KB_SCALE_BLK128)
        return kb_fail(msg, KB_NOT_SUPPORTED, "activation scales are tensor, outer or vec128");
    return vk_fp8_quant_plan(p, p->c->n, m, msg);
}

const vk_op vk_op_quant_fp8 = {variants, plan, NULL};
