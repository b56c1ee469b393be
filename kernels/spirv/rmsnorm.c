/* rmsnorm.c - the vulkan rmsnorm: one row per 256-thread workgroup (rmsnorm.comp). */
#include "kernels/spirv/vk_op.h"

#include "spv_rmsnorm.h"

static const vk_module mod = {"rmsnorm.comp", kb_spv_rmsnorm, sizeof kb_spv_rmsnorm};

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)c;
    (void)msg;
    int n = 0;
    vk_variant_add(out, max, &n, "row256", "rmsnorm.comp: one row per 256-thread workgroup, fp32 tree sum");
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    if (!vk_fits_u32(c->n * c->k) || c->k <= 0) return kb_fail(msg, KB_NOT_SUPPORTED, "bad rmsnorm size");
    vk_dispatch *d = vk_plan_dispatch(p, &mod, (uint32_t)c->n);
    if (!d) return vk_plan_oom(msg);
    d->push[0] = (uint32_t)c->n;
    d->push[1] = (uint32_t)c->k;
    d->push[2] = vk_f32_bits((float)c->eps);
    vk_bind_arg(d, 0, 0); /* x */
    vk_bind_arg(d, 1, 1); /* w */
    vk_bind_arg(d, 2, 2); /* y */
    return KB_OK;
}

const vk_op vk_op_rmsnorm = {variants, plan, NULL};
