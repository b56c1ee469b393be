/* rope_neox.c - the vulkan rope_neox: one thread per rotated pair, the angle from a
 * fixed-point frequency table (rope_neox.comp). */
#include "kernels/spirv/vk_op.h"

#include "ref/ref.h" /* kb_rope_turns */

#include <stdlib.h>
#include <string.h>

#include "spv_rope_neox.h"

static const vk_module mod = {"rope_neox.comp", kb_spv_rope_neox, sizeof kb_spv_rope_neox};

static const vk_test tests[] = {
    {"test_rope_gptj", "TEST ONLY: pairs (2i, 2i+1) (GPT-J layout) instead of NEOX"},
    {NULL, NULL},
};

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)c;
    (void)msg;
    int n = 0;
    vk_variant_add(out, max, &n, "pairs", "rope_neox.comp: one thread per (i, i+d/2) pair, fixed-point angle");
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    const int gptj = !strcmp(p->variant, "test_rope_gptj");
    if (!gptj && strcmp(p->variant, "pairs")) return kb_fail(msg, KB_ERROR, "rope_neox: no variant '%s'", p->variant);
    if (c->head_dim <= 0 || c->head_dim % 2) return kb_fail(msg, KB_NOT_SUPPORTED, "head_dim must be even");
    if (!vk_fits_u32(c->n * c->heads * c->head_dim)) return kb_fail(msg, KB_NOT_SUPPORTED, "more than 2^32 values");
    const int64_t half = c->head_dim / 2;
    /* Frequency table, turns per position, as 64-bit binary fractions (kb_rope_turns) */
    uint32_t *tab = malloc(sizeof(uint32_t) * 2 * (size_t)half);
    if (!tab) return vk_plan_oom(msg);
    kb_rope_turns(c->theta, c->head_dim, tab);
    const int freq = vk_plan_scratch(p, sizeof(uint32_t) * 2 * (uint64_t)half, tab);
    if (freq < 0) return vk_plan_oom(msg);
    vk_dispatch *d = vk_plan_dispatch(p, &mod, (uint32_t)vk_ceil_div(c->n * c->heads * half, 256));
    if (!d) return vk_plan_oom(msg);
    d->spec[1] = gptj ? 1u : 0u;
    d->nspec = 2;
    d->push[0] = (uint32_t)c->n;
    d->push[1] = (uint32_t)c->heads;
    d->push[2] = (uint32_t)c->head_dim;
    vk_bind_arg(d, 0, 0); /* x */
    vk_bind_arg(d, 1, 1); /* pos */
    vk_bind_scratch(d, 2, freq);
    vk_bind_arg(d, 3, 2); /* y */
    return KB_OK;
}

const vk_op vk_op_rope_neox = {variants, plan, tests};
