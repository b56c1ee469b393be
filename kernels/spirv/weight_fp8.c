/* weight_fp8.c - the vulkan weight_fp8: Q4_K/Q6_K weights to fp8 + amax scales
 * (weight_fp8.comp, one -D build per block type; the plan is quant_fp8.c's). */
#include "kernels/spirv/fp8_quant.h"

#include <stdio.h>

#include "spv_weight_fp8_q4k.h"
#include "spv_weight_fp8_q6k.h"

static const vk_module mod_q4k = {"weight_fp8.comp", kb_spv_weight_fp8_q4k, sizeof kb_spv_weight_fp8_q4k};
static const vk_module mod_q6k = {"weight_fp8.comp -DKB_BLOCKS_Q6K", kb_spv_weight_fp8_q6k, sizeof kb_spv_weight_fp8_q6k};

static const vk_module *module_for(kb_dtype t) { return t == KB_Q4K ? &mod_q4k : t == KB_Q6K ? &mod_q6k : NULL; }

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    const vk_module *m = module_for(c->a_type);
    int n = 0;
    if (!m) {
        snprintf(msg, KB_MSG, "vulkan weight_fp8: weights %s: q4_k or q6_k only", kb_dtype_name(c->a_type));
        return 0;
    }
    vk_variant_add(out, max, &n, VK_FP8_QUANT_VARIANT, "%s: %s", m->name, VK_FP8_QUANT_DETAIL);
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const vk_module *m = module_for(p->c->a_type);
    if (!m) return kb_fail(msg, KB_NOT_SUPPORTED, "weights %s: q4_k or q6_k only", kb_dtype_name(p->c->a_type));
    if (p->c->k % 256) return kb_fail(msg, KB_NOT_SUPPORTED, "weight_fp8 needs k %% 256 == 0");
    return vk_fp8_quant_plan(p, p->c->m, m, msg);
}

const vk_op vk_op_weight_fp8 = {variants, plan, NULL};
