/* attention.c - the vulkan attention: `prefill` (one workgroup per query and head) and,
 * for a single query, `decode_split` (key splits, then a combine pass) (attention.comp). */
#include "kernels/spirv/vk_op.h"

#include <math.h>
#include <string.h>

#include "spv_attention.h"

static const vk_module mod = {"attention.comp", kb_spv_attention, sizeof kb_spv_attention};

#define ATTN_MAX_HEAD_DIM 256 /* each of the 64 threads owns head dims t, t+64, t+128, t+192 */
#define ATTN_SPLIT_KEYS 256   /* decode split: keys per workgroup (a multiple of the 64-key chunk) */

static int variants(const kb_case *c, kb_variant *out, int max, char *msg) {
    (void)msg;
    int n = 0;
    vk_variant_add(out, max, &n, "prefill", "attention.comp mode 0: one 64-thread workgroup per (query, head)");
    if (c->n == 1)
        vk_variant_add(out, max, &n, "decode_split",
                       "attention.comp modes 1+2: %d keys per workgroup per head, then a combine pass", ATTN_SPLIT_KEYS);
    return n;
}

static int plan(vk_plan *p, char *msg) {
    const kb_case *c = p->c;
    int decode;
    if (!strcmp(p->variant, "prefill")) decode = 0;
    else if (!strcmp(p->variant, "decode_split")) decode = 1;
    else return kb_fail(msg, KB_ERROR, "attention: no variant '%s'", p->variant);
    if (c->head_dim <= 0 || c->head_dim > ATTN_MAX_HEAD_DIM)
        return kb_fail(msg, KB_NOT_SUPPORTED, "head_dim %lld: 1..%d only", (long long)c->head_dim, ATTN_MAX_HEAD_DIM);
    if (c->kv_heads <= 0 || c->heads % c->kv_heads) return kb_fail(msg, KB_NOT_SUPPORTED, "heads %% kv_heads != 0");
    if (c->n > c->kv_len || c->n <= 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "n %lld > kv_len %lld", (long long)c->n, (long long)c->kv_len);
    if (decode && c->n != 1)
        return kb_fail(msg, KB_NOT_SUPPORTED, "decode_split takes one query (n == 1), not %lld", (long long)c->n);
    if (!vk_fits_u32(c->kv_len * c->kv_heads * c->head_dim) || !vk_fits_u32(c->n * c->heads * c->head_dim))
        return kb_fail(msg, KB_NOT_SUPPORTED, "more than 2^32 values");
    const uint32_t nsplit = decode ? (uint32_t)vk_ceil_div(c->kv_len, ATTN_SPLIT_KEYS) : 0;
    const uint32_t push[8] = {(uint32_t)c->n,
                              (uint32_t)c->kv_len,
                              (uint32_t)c->heads,
                              (uint32_t)c->kv_heads,
                              (uint32_t)c->head_dim,
                              vk_f32_bits((float)(1.0 / sqrt((double)c->head_dim))),
                              nsplit,
                              ATTN_SPLIT_KEYS};
    int part = -1;
    if (decode) { /* (m, l, acc[head_dim]) per head and split */
        part = vk_plan_scratch(p, sizeof(float) * (uint64_t)c->heads * nsplit * (uint64_t)(2 + c->head_dim), NULL);
        if (part < 0) return vk_plan_oom(msg);
    }
    /* prefill: mode 0 over (query, head); decode: mode 1 over (head, split), then mode 2 over heads */
    for (int pass = 0; pass < (decode ? 2 : 1); pass++) {
        const uint32_t mode = decode ? 1u + (uint32_t)pass : 0u;
        const uint32_t groups = mode == 0 ? (uint32_t)(c->n * c->heads) : mode == 1 ? (uint32_t)c->heads * nsplit
                                                                                  : (uint32_t)c->heads;
        vk_dispatch *d = vk_plan_dispatch(p, &mod, groups);
        if (!d) return vk_plan_oom(msg);
        d->spec[1] = mode;
        d->nspec = 2;
        memcpy(d->push, push, sizeof push);
        for (int i = 0; i < 4; i++) vk_bind_arg(d, i, i); /* q, k, v, o */
        if (decode) vk_bind_scratch(d, 4, part);
    }
    return KB_OK;
}

const vk_op vk_op_attention = {variants, plan, NULL};
