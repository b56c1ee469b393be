/* bias_add.c - the vulkan bias_add: y[n][m] = x[n][m] + bias[m], x in f32/f16/bf16; `elem256`
 * one element per thread, `vec4` four with vector loads (bias_add.comp, one -D build per input
 * type and loop). */
#include "kernels/spirv/vk_op.h"

#include <stdio.h>
#include <string.h>

#include "spv_bias_add_bf16.h"
#include "spv_bias_add_f16.h"
#include "spv_bias_add_f32.h"
#include "spv_bias_add_vec4_bf16.h"
#include "spv_bias_add_vec4_f16.h"
#include "spv_bias_add_vec4_f32.h"

static const vk_module mod_f32 = {"bias_add.comp", kb_spv_bias_add_f32, sizeof kb_spv_bias_add_f32};
static const vk_module mod_f16 = {"bias_add.comp -DKB_IN_F16", kb_spv_bias_add_f16, sizeof kb_spv_bias_add_f16};
static const vk_module mod_bf16 = {"bias_add.comp -DKB_IN_BF16", kb_spv_bias_add_bf16, sizeof kb_spv_bias_add_bf16};

static const vk_module mod4_f32 = {"bias_add.comp -DKB_VEC4", kb_spv_bias_add_vec4_f32, sizeof kb_spv_bias_add_vec4_f32};
static const vk_module mod4_f16 = {"bias_add.comp -DKB_VEC4 -DKB_IN_F16", kb_spv_bias_add_vec4_f16,
                                   sizeof kb_spv_bias_add_vec4_f16};
static const vk_module mod4_bf16 = {"bias_add.comp -DKB_VEC4 -DKB_IN_BF16", kb_spv_bias_add_vec4_bf16,
                                    sizeof kb_spv_bias_add_vec4_bf16};

static const vk_elementwise ew = {"bias_add", {&mod_f32, &mod_f16, &mod_bf16}, {&mod4_f32, &mod4_f16, &mod4_bf16}};

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    return vk_elementwise_variants(&ew, c, out, max, msg);
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    int vec4, rc;
    vk_dispatch *d = vk_elementwise_dispatch(p, &ew, c->n * c->m, &vec4, &rc, msg);
    if (!d) return rc;
    d->push[0] = (uint32_t)c->n;
    d->push[1] = (uint32_t)c->m;
    if (vec4) { /* 16-byte vectors of y (and x, 8-byte ones of a 16-bit x); the bias by vectors when rows hold whole ones */
        d->push[2] = p->args[2].view.offset % 16 == 0 && p->args[0].view.offset % (c->a_type == KB_F32 ? 16 : 8) == 0;
        d->push[3] = c->m % 4 == 0 && p->args[1].view.offset % 16 == 0;
    }
    for (int i = 0; i < 3; i++) vk_bind_arg(d, i, i); /* x, bias, y */
    return KB_OK;
}

const vk_op vk_op_bias_add = {variants, plan, NULL};
