/* embed.c - the vulkan embed: one 256-column block of a row per workgroup (embed.comp,
 * one -D build per table type). */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>

#include "spv_embed_f16.h"
#include "spv_embed_f32.h"
#include "spv_embed_q4k.h"
#include "spv_embed_q6k.h"

static const vk_module mod_q4k = {"embed.comp -DKB_TABLE_Q4K", kb_spv_embed_q4k, sizeof kb_spv_embed_q4k};
static const vk_module mod_q6k = {"embed.comp -DKB_TABLE_Q6K", kb_spv_embed_q6k, sizeof kb_spv_embed_q6k};
static const vk_module mod_f16 = {"embed.comp -DKB_TABLE_F16", kb_spv_embed_f16, sizeof kb_spv_embed_f16};
static const vk_module mod_f32 = {"embed.comp -DKB_TABLE_F32", kb_spv_embed_f32, sizeof kb_spv_embed_f32};

static const vk_module *module_for(kb_dtype t) {
    switch (t) {
    case KB_Q4K: return &mod_q4k;
    case KB_Q6K: return &mod_q6k;
    case KB_F16: return &mod_f16;
    case KB_F32: return &mod_f32;
    default: return NULL;
    }
}

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    const vk_module *m = module_for(c->a_type);
    int n = 0;
    if (!m) {
        snprintf(msg, KB_MSG, "vulkan embed: table type %s: q4_k, q6_k, f16, f32 only", kb_dtype_name(c->a_type));
        return 0;
    }
    vk_variant_add(out, max, &n, "lookup", "%s: one 256-column block of a row per workgroup", m->name);
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    const vk_module *m = module_for(c->a_type);
    if (!m) return kb_fail(msg, KB_NOT_SUPPORTED, "table type %s: q4_k, q6_k, f16, f32 only", kb_dtype_name(c->a_type));
    if ((c->a_type == KB_Q4K || c->a_type == KB_Q6K) && c->k % 256)
        return kb_fail(msg, KB_NOT_SUPPORTED, "quantized table needs k %% 256 == 0");
    if (!vk_fits_u32(c->m * c->k) || !vk_fits_u32(c->n * c->k)) return kb_fail(msg, KB_NOT_SUPPORTED, "more than 2^32 values");
    vk_dispatch *d = vk_plan_dispatch(p, m, (uint32_t)(c->n * vk_ceil_div(c->k, 256)));
    if (!d) return vk_plan_oom(msg);
    d->push[0] = (uint32_t)c->m;
    d->push[1] = (uint32_t)c->n;
    d->push[2] = (uint32_t)c->k;
    vk_bind_arg(d, 0, 0); /* table */
    vk_bind_arg(d, 1, 1); /* ids */
    vk_bind_arg(d, 2, 2); /* y */
    return KB_OK;
}

const vk_op vk_op_embed = {variants, plan, NULL};
