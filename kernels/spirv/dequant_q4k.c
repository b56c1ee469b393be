/* dequant_q4k.c - the vulkan dequant_q4k: Q4_K or Q6_K blocks -> f32 (dequant_q4k.comp). */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>

#include "spv_dequant_q4k.h"
#include "spv_dequant_q6k.h"

static const vk_module mod_q4k = {"dequant_q4k.comp", kb_spv_dequant_q4k, sizeof kb_spv_dequant_q4k};
static const vk_module mod_q6k = {"dequant_q4k.comp -DKB_BLOCKS_Q6K", kb_spv_dequant_q6k, sizeof kb_spv_dequant_q6k};

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    int n = 0;
    if (c->a_type != KB_Q4K && c->a_type != KB_Q6K) {
        snprintf(msg, KB_MSG, "vulkan dequant_q4k: q4_k or q6_k blocks, not %s", kb_dtype_name(c->a_type));
        return 0;
    }
    vk_variant_add(out, max, &n, "block256", "%s: one %s block per 256-thread workgroup",
                   c->a_type == KB_Q6K ? mod_q6k.name : mod_q4k.name, kb_dtype_name(c->a_type));
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    if (c->k % 256) return kb_fail(msg, KB_NOT_SUPPORTED, "dequant_q4k needs k %% 256 == 0");
    const int64_t nblocks = c->m * c->k / 256;
    if (!vk_fits_u32(nblocks * 256)) return kb_fail(msg, KB_NOT_SUPPORTED, "more than 2^32 values");
    vk_dispatch *d = vk_plan_dispatch(p, c->a_type == KB_Q6K ? &mod_q6k : &mod_q4k, (uint32_t)nblocks);
    if (!d) return vk_plan_oom(msg);
    d->push[0] = (uint32_t)nblocks;
    vk_bind_arg(d, 0, 0);
    vk_bind_arg(d, 1, 1);
    return KB_OK;
}

const vk_op vk_op_dequant_q4k = {variants, plan, NULL};
