/* swiglu.c - the vulkan swiglu: y = g / (1 + exp(-g)) * up with an accurate exp and division,
 * gate/up in f32/f16/bf16; `elem256` one element per thread, `vec4` four with vector loads
 * (swiglu.comp, one -D build per input type and loop). */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>
#include <string.h>

#include "spv_swiglu_bf16.h"
#include "spv_swiglu_f16.h"
#include "spv_swiglu_f32.h"
#include "spv_swiglu_vec4_bf16.h"
#include "spv_swiglu_vec4_f16.h"
#include "spv_swiglu_vec4_f32.h"

static const vk_module mod_f32 = {"swiglu.comp", kb_spv_swiglu_f32, sizeof kb_spv_swiglu_f32};
static const vk_module mod_f16 = {"swiglu.comp -DKB_IN_F16", kb_spv_swiglu_f16, sizeof kb_spv_swiglu_f16};
static const vk_module mod_bf16 = {"swiglu.comp -DKB_IN_BF16", kb_spv_swiglu_bf16, sizeof kb_spv_swiglu_bf16};

static const vk_module mod4_f32 = {"swiglu.comp -DKB_VEC4", kb_spv_swiglu_vec4_f32, sizeof kb_spv_swiglu_vec4_f32};
static const vk_module mod4_f16 = {"swiglu.comp -DKB_VEC4 -DKB_IN_F16", kb_spv_swiglu_vec4_f16,
                                   sizeof kb_spv_swiglu_vec4_f16};
static const vk_module mod4_bf16 = {"swiglu.comp -DKB_VEC4 -DKB_IN_BF16", kb_spv_swiglu_vec4_bf16,
                                    sizeof kb_spv_swiglu_vec4_bf16};

static const vk_elementwise ew = {"swiglu", {&mod_f32, &mod_f16, &mod_bf16}, {&mod4_f32, &mod4_f16, &mod4_bf16}};

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    return vk_elementwise_variants(&ew, c, out, max, msg);
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    int vec4, rc;
    vk_dispatch *d = vk_elementwise_dispatch(p, &ew, c->n * c->k, &vec4, &rc, msg);
    if (!d) return rc;
    if (vec4) { /* 16-byte vectors of y, and of gate/up (8-byte ones when 16-bit) */
        const uint64_t in_align = c->a_type == KB_F32 ? 16 : 8;
        d->push[1] = p->args[0].view.offset % in_align == 0 && p->args[1].view.offset % in_align == 0 &&
                     p->args[2].view.offset % 16 == 0;
    }
    for (int i = 0; i < 3; i++) vk_bind_arg(d, i, i); /* gate, up, y */
    return KB_OK;
}

const vk_op vk_op_swiglu = {variants, plan, NULL};
