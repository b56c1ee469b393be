/* vk_plan.c - the helpers op files build their plans and variant lists with (vk_op.h). */
#include "kernels/spirv/vk_op.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vk_dispatch *vk_plan_dispatch(vk_plan *p, const vk_module *m, uint32_t groups) {
    if (p->ndisp == p->dcap) {
        const int cap = p->dcap ? 2 * p->dcap : 4;
        vk_dispatch *d = realloc(p->d, (size_t)cap * sizeof *d);
        if (!d) return NULL;
        p->d = d;
        p->dcap = cap;
    }
    vk_dispatch *d = &p->d[p->ndisp++];
    memset(d, 0, sizeof *d);
    d->module = m;
    d->groups = groups;
    d->spec[0] = p->short_write ? 1u : 0u;
    d->nspec = 1;
    return d;
}

int vk_plan_scratch(vk_plan *p, uint64_t bytes, void *init) {
    if (p->nscratch == p->scap) {
        const int cap = p->scap ? 2 * p->scap : 2;
        vk_scratch *s = realloc(p->scratch, (size_t)cap * sizeof *s);
        if (!s) {
            free(init);
            return -1;
        }
        p->scratch = s;
        p->scap = cap;
    }
    p->scratch[p->nscratch] = (vk_scratch){bytes, init};
    return p->nscratch++;
}

int vk_plan_block(const vk_plan *p, uint32_t written, uint32_t *block, char *msg) {
    const int *b = p->tune ? kb_tune_get(p->tune, "BLOCK") : NULL;
    *block = written;
    if (!b) return KB_OK;
    const uint32_t v = (uint32_t)*b;
    if (v < 32 || (v & (v - 1)) || v > p->max_invocations)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "%s: BLOCK=%u is no workgroup size of it (a power of two from 32 to the device's %u "
                       "invocations)",
                       p->variant, v, p->max_invocations);
    *block = v;
    return KB_OK;
}

int vk_plan_oom(char *msg) { return kb_fail(msg, KB_ERROR, "out of host memory building the dispatch plan"); }

void vk_variant_add(kb_variant *out, int max, int *n, const char *name, const char *fmt, ...) {
    if (*n >= max) return;
    kb_variant_init(&out[*n], name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out[*n].detail, sizeof out[*n].detail, fmt, ap);
    va_end(ap);
    (*n)++;
}

uint32_t vk_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

int vk_fits_u32(int64_t v) { return v >= 0 && v <= (int64_t)UINT32_MAX; }

/* ---- the elementwise ops ------------------------------------------------------------ */
int vk_elementwise_variants(const vk_elementwise *e, const kb_case *c, kb_variant *out, int max, char *msg) {
    const int t = kb_dtype_float_index(c->a_type);
    int n = 0;
    if (t < 0) {
        snprintf(msg, KB_MSG, "vulkan %s: input type %s: f32, f16, bf16 only", e->op, kb_dtype_name(c->a_type));
        return 0;
    }
    vk_variant_add(out, max, &n, "elem256", "%s: one element per thread, 256-thread workgroups", e->elem[t]->name);
    vk_variant_add(out, max, &n, "vec4", "%s: 4 elements per thread, 16-byte loads and stores where aligned",
                   e->vec4[t]->name);
    for (int i = 0; i < n; i++) snprintf(out[i].tunables, sizeof out[i].tunables, "BLOCK=256");
    return n;
}

vk_dispatch *vk_elementwise_dispatch(vk_plan *p, const vk_elementwise *e, int64_t count, int *vec4, int *rc, char *msg) {
    *vec4 = !strcmp(p->variant, "vec4");
    if (!*vec4 && strcmp(p->variant, "elem256")) {
        *rc = kb_fail(msg, KB_ERROR, "%s: no variant '%s'", e->op, p->variant);
        return NULL;
    }
    const int t = kb_dtype_float_index(p->c->a_type);
    if (t < 0) {
        *rc = kb_fail(msg, KB_NOT_SUPPORTED, "input type %s: f32, f16, bf16 only", kb_dtype_name(p->c->a_type));
        return NULL;
    }
    if (count < 1 || !vk_fits_u32(count)) {
        *rc = kb_fail(msg, KB_NOT_SUPPORTED, "%s: 1 to 2^32-1 elements", e->op);
        return NULL;
    }
    uint32_t block;
    if ((*rc = vk_plan_block(p, 256, &block, msg)) != KB_OK) return NULL;
    vk_dispatch *d = vk_plan_dispatch(p, *vec4 ? e->vec4[t] : e->elem[t],
                                      (uint32_t)vk_ceil_div(count, (int64_t)block * (*vec4 ? 4 : 1)));
    if (!d) {
        *rc = vk_plan_oom(msg);
        return NULL;
    }
    vk_set_block(d, block);
    d->push[0] = (uint32_t)count;
    return d;
}
