/* rmsnorm.c - the vulkan rmsnorm: one row per 256-thread workgroup (rmsnorm.comp); BLOCK
 * (the workgroup size, a power of two) is its tunable. */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>

#include "spv_rmsnorm.h"

static const vk_module mod = {"rmsnorm.comp", kb_spv_rmsnorm, sizeof kb_spv_rmsnorm};

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)c;
    (void)msg;
    int n = 0;
    vk_variant_add(out, max, &n, "row256", "rmsnorm.comp: one row per 256-thread workgroup, fp32 tree sum");
    if (n) snprintf(out[0].tunables, sizeof out[0].tunables, "BLOCK=256");
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    if (!vk_fits_u32(c->n * c->k) || c->k <= 0) return kb_fail(msg, KB_NOT_SUPPORTED, "bad rmsnorm size");
    uint32_t block;
    const int rc = vk_plan_block(p, 256, &block, msg);
    if (rc != KB_OK) return rc;
    vk_dispatch *d = vk_plan_dispatch(p, &mod, (uint32_t)c->n);
    if (!d) return vk_plan_oom(msg);
    vk_set_block(d, block);
    d->push[0] = (uint32_t)c->n;
    d->push[1] = (uint32_t)c->k;
    d->push[2] = vk_f32_bits((float)c->eps);
    vk_bind_arg(d, 0, 0); /* x */
    vk_bind_arg(d, 1, 1); /* w */
    vk_bind_arg(d, 2, 2); /* y */
    return KB_OK;
}

const vk_op vk_op_rmsnorm = {variants, plan, NULL};
