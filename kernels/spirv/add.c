/* add.c - the vulkan add: y = a + b, b in f32/f16/bf16; `elem256` one element per thread,
 * `vec4` four with vector loads (add.comp, one -D build per input type and loop). */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>
#include <string.h>

#include "spv_add_bf16.h"
#include "spv_add_f16.h"
#include "spv_add_f32.h"
#include "spv_add_vec4_bf16.h"
#include "spv_add_vec4_f16.h"
#include "spv_add_vec4_f32.h"

static const vk_module mod_f32 = {"add.comp", kb_spv_add_f32, sizeof kb_spv_add_f32};
static const vk_module mod_f16 = {"add.comp -DKB_IN_F16", kb_spv_add_f16, sizeof kb_spv_add_f16};
static const vk_module mod_bf16 = {"add.comp -DKB_IN_BF16", kb_spv_add_bf16, sizeof kb_spv_add_bf16};

static const vk_module mod4_f32 = {"add.comp -DKB_VEC4", kb_spv_add_vec4_f32, sizeof kb_spv_add_vec4_f32};
static const vk_module mod4_f16 = {"add.comp -DKB_VEC4 -DKB_IN_F16", kb_spv_add_vec4_f16, sizeof kb_spv_add_vec4_f16};
static const vk_module mod4_bf16 = {"add.comp -DKB_VEC4 -DKB_IN_BF16", kb_spv_add_vec4_bf16, sizeof kb_spv_add_vec4_bf16};

static const vk_module *module_for(kb_dtype t, int vec4) {
    switch (t) {
    case KB_F32: return vec4 ? &mod4_f32 : &mod_f32;
    case KB_F16: return vec4 ? &mod4_f16 : &mod_f16;
    case KB_BF16: return vec4 ? &mod4_bf16 : &mod_bf16;
    default: return NULL;
    }
}

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    const vk_module *m = module_for(c->a_type, 0);
    int n = 0;
    if (!m) {
        snprintf(msg, KB_MSG, "vulkan add: input type %s: f32, f16, bf16 only", kb_dtype_name(c->a_type));
        return 0;
    }
    vk_variant_add(out, max, &n, "elem256", "%s: one element per thread, 256-thread workgroups", m->name);
    vk_variant_add(out, max, &n, "vec4", "%s: 4 elements per thread, 16-byte loads and stores where aligned",
                   module_for(c->a_type, 1)->name);
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    const int vec4 = !strcmp(p->variant, "vec4");
    if (!vec4 && strcmp(p->variant, "elem256")) return kb_fail(msg, KB_ERROR, "add: no variant '%s'", p->variant);
    const vk_module *m = module_for(c->a_type, vec4);
    if (!m) return kb_fail(msg, KB_NOT_SUPPORTED, "input type %s: f32, f16, bf16 only", kb_dtype_name(c->a_type));
    const int64_t count = c->n * c->k;
    if (count < 1 || !vk_fits_u32(count)) return kb_fail(msg, KB_NOT_SUPPORTED, "add: 1 to 2^32-1 elements");
    vk_dispatch *d = vk_plan_dispatch(p, m, (uint32_t)vk_ceil_div(count, vec4 ? 1024 : 256));
    if (!d) return vk_plan_oom(msg);
    d->push[0] = (uint32_t)count;
    /* vec4: 16-byte vectors of a and y, 8-byte ones of a 16-bit b */
    if (vec4) d->push[1] = p->args[0].view.offset % 16 == 0 && p->args[2].view.offset % 16 == 0 &&
                           p->args[1].view.offset % (c->a_type == KB_F32 ? 16 : 8) == 0;
    for (int i = 0; i < 3; i++) vk_bind_arg(d, i, i); /* a, b, y */
    return KB_OK;
}

const vk_op vk_op_add = {variants, plan, NULL};
