/* forward_ref.c - the decoder in fp64 (forward_ref.h). Each line below is one node of
 * docs/FORWARD.md's graph, computed by ref/'s fp64 references. */
#include "bench/forward_ref.h"

#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t kb_fv_width(const kb_model_dims *d, kb_fv v) {
    const int64_t kv = d->kv_heads * d->head_dim;
    switch (v) {
    case FV_KP:
    case FV_K:
    case FV_VP:
    case FV_V:
    case FV_KR: return kv;
    case FV_GATE:
    case FV_UP:
    case FV_ACT: return d->ffn;
    default: return d->hidden;
    }
}

static double *dalloc(int64_t count) { return malloc((size_t)(count > 0 ? count : 1) * sizeof(double)); }

/* A weight vector (norm, bias) as doubles. */
static double *vec(const kb_weight *w) {
    double *v = dalloc(w->cols);
    if (v) kb_decode(w->type, w->data, v, w->cols);
    return v;
}

int kb_ref_forward_init(kb_ref_forward *f, const kb_model *m, int max_pos, char *msg, size_t n) {
    memset(f, 0, sizeof *f);
    f->m = m;
    f->max_pos = max_pos;
    const int64_t L = m->d.layers, kv = m->d.kv_heads * m->d.head_dim;
    f->kcache = calloc((size_t)L, sizeof *f->kcache);
    f->vcache = calloc((size_t)L, sizeof *f->vcache);
    if (!f->kcache || !f->vcache) goto oom;
    for (int64_t l = 0; l < L; l++) {
        f->kcache[l] = dalloc((int64_t)max_pos * kv);
        f->vcache[l] = dalloc((int64_t)max_pos * kv);
        if (!f->kcache[l] || !f->vcache[l]) goto oom;
    }
    return 0;
oom:
    kb_ref_forward_free(f);
    snprintf(msg, n, "out of host memory for the reference's KV cache");
    return -1;
}

void kb_ref_forward_free(kb_ref_forward *f) {
    if (!f->m) return;
    for (int64_t l = 0; f->kcache && l < f->m->d.layers; l++) free(f->kcache[l]);
    for (int64_t l = 0; f->vcache && l < f->m->d.layers; l++) free(f->vcache[l]);
    free(f->kcache);
    free(f->vcache);
    memset(f, 0, sizeof *f);
}

void kb_ref_step_free(const kb_ref_forward *f, kb_ref_step *s) {
    if (s->v) {
        for (int64_t i = 0; i < f->m->d.layers * FV_COUNT; i++)
            if (!(i % FV_COUNT == FV_X_IN && i >= FV_COUNT)) free(s->v[i]); /* X_IN of l > 0 aliases X_OUT of l-1 */
        free(s->v);
    }
    free(s->nf);
    free(s->logits);
    memset(s, 0, sizeof *s);
}

int kb_ref_forward_step(kb_ref_forward *f, const int32_t *ids, int n, int pos0, kb_ref_step *s, char *msg, size_t len) {
    const kb_model *m = f->m;
    const kb_model_dims *d = &m->d;
    const int64_t L = d->layers, H = d->hidden, KV = d->kv_heads * d->head_dim, F = d->ffn;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->pos0 = pos0;
    if (n < 1 || n > 4096 || pos0 + n > f->max_pos) {
        snprintf(msg, len, "reference step of %d tokens at %d: out of range", n, pos0);
        return -1;
    }
    memcpy(s->ids, ids, sizeof(int32_t) * (size_t)n);
    s->v = calloc((size_t)(L * FV_COUNT), sizeof *s->v);
    if (!s->v) goto oom;
    for (int64_t l = 0; l < L; l++)
        for (int v = 0; v < FV_COUNT; v++) {
            if (v == FV_X_IN && l > 0) continue;
            if (!(s->v[l * FV_COUNT + v] = dalloc(n * kb_fv_width(d, (kb_fv)v)))) goto oom;
        }
    int32_t pos[4096];
    for (int i = 0; i < n; i++) pos[i] = pos0 + i;
    ref_embed(m->tok_embd.type, m->tok_embd.data, d->vocab, H, ids, n, s->v[FV_X_IN], NULL);
    for (int64_t l = 0; l < L; l++) {
        double **v = s->v + l * FV_COUNT;
        const kb_layer_weights *w = &m->layer[l];
        if (l > 0) v[FV_X_IN] = s->v[(l - 1) * FV_COUNT + FV_X_OUT];
        double *an = vec(&w->attn_norm), *fn = vec(&w->ffn_norm), *bq = vec(&w->bq), *bk = vec(&w->bk),
               *bv = vec(&w->bv);
        if (!an || !fn || !bq || !bk || !bv) {
            free(an), free(fn), free(bq), free(bk), free(bv);
            goto oom;
        }
        ref_rmsnorm(n, H, d->eps, v[FV_X_IN], an, v[FV_N1], NULL);
        ref_matmul(H, n, H, w->wq.type, w->wq.data, v[FV_N1], v[FV_QP], NULL);
        ref_matmul(KV, n, H, w->wk.type, w->wk.data, v[FV_N1], v[FV_KP], NULL);
        ref_matmul(KV, n, H, w->wv.type, w->wv.data, v[FV_N1], v[FV_VP], NULL);
        ref_bias_add(n, H, v[FV_QP], bq, v[FV_Q], NULL);
        ref_bias_add(n, KV, v[FV_KP], bk, v[FV_K], NULL);
        ref_bias_add(n, KV, v[FV_VP], bv, v[FV_V], NULL);
        ref_rope_neox(n, d->heads, d->head_dim, d->rope_base, v[FV_Q], pos, v[FV_QR], NULL);
        ref_rope_neox(n, d->kv_heads, d->head_dim, d->rope_base, v[FV_K], pos, v[FV_KR], NULL);
        memcpy(f->kcache[l] + (int64_t)pos0 * KV, v[FV_KR], sizeof(double) * (size_t)(n * KV));
        memcpy(f->vcache[l] + (int64_t)pos0 * KV, v[FV_V], sizeof(double) * (size_t)(n * KV));
        ref_attention_dims ad = {n, pos0 + n, d->heads, d->kv_heads, d->head_dim};
        ref_attention(&ad, v[FV_QR], f->kcache[l], f->vcache[l], v[FV_ATT], NULL);
        ref_matmul(H, n, H, w->wo.type, w->wo.data, v[FV_ATT], v[FV_O], NULL);
        ref_add(n * H, v[FV_X_IN], v[FV_O], v[FV_H], NULL);
        ref_rmsnorm(n, H, d->eps, v[FV_H], fn, v[FV_N2], NULL);
        ref_matmul(F, n, H, w->wgate.type, w->wgate.data, v[FV_N2], v[FV_GATE], NULL);
        ref_matmul(F, n, H, w->wup.type, w->wup.data, v[FV_N2], v[FV_UP], NULL);
        ref_swiglu(n * F, v[FV_GATE], v[FV_UP], v[FV_ACT], NULL);
        ref_matmul(H, n, F, w->wdown.type, w->wdown.data, v[FV_ACT], v[FV_DOWN], NULL);
        ref_add(n * H, v[FV_H], v[FV_DOWN], v[FV_X_OUT], NULL);
        free(an), free(fn), free(bq), free(bk), free(bv);
    }
    /* the last token only: what a decoder samples from */
    const double *x_last = s->v[(L - 1) * FV_COUNT + FV_X_OUT] + (int64_t)(n - 1) * H;
    double *on = vec(&m->out_norm);
    s->nf = dalloc(H);
    s->logits = dalloc(d->vocab);
    if (!on || !s->nf || !s->logits) {
        free(on);
        goto oom;
    }
    ref_rmsnorm(1, H, d->eps, x_last, on, s->nf, NULL);
    ref_matmul(d->vocab, 1, H, m->output.type, m->output.data, s->nf, s->logits, NULL);
    free(on);
    s->argmax = 0;
    for (int64_t i = 1; i < d->vocab; i++)
        if (s->logits[i] > s->logits[s->argmax]) s->argmax = (int)i;
    return 0;
oom:
    kb_ref_step_free(f, s);
    snprintf(msg, len, "out of host memory for the reference step");
    return -1;
}
