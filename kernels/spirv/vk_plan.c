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
