/* model.c - Qwen2 models from GGUF files and from seeds (model.h, docs/FORWARD.md). */
#include "bench/model.h"

#include "bench/gen.h"
#include "ref/formats.h"
#include "ref/pool.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double kb_model_weight_bytes(const kb_model *m) {
    double b = (double)m->tok_embd.bytes + (double)m->out_norm.bytes + (m->tied ? 0 : (double)m->output.bytes);
    for (int64_t l = 0; l < m->d.layers; l++) {
        const kb_layer_weights *w = &m->layer[l];
        const kb_weight *all[] = {&w->attn_norm, &w->wq, &w->bq, &w->wk, &w->bk, &w->wv, &w->bv,
                                  &w->wo,        &w->ffn_norm, &w->wgate, &w->wup, &w->wdown};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) b += (double)all[i]->bytes;
    }
    return b;
}

void kb_model_free(kb_model *m) {
    if (!m) return;
    free(m->layer);
    free(m->owned);
    free(m->names);
    kb_gguf_close(&m->gguf);
    memset(m, 0, sizeof *m);
}

/* ---- GGUF ------------------------------------------------------------------------------- */
static int key_int(const kb_gguf *g, const char *key, int64_t *v, char *msg, size_t n) {
    const kb_gguf_kv *kv = kb_gguf_find_kv(g, key);
    if (!kv) return kb_failn(msg, n, "missing metadata key '%s'", key);
    if (kv->type > KB_GGUF_I32 && kv->type != KB_GGUF_U64 && kv->type != KB_GGUF_I64)
        return kb_failn(msg, n, "metadata '%s' is not an integer", key);
    if (kv->type == KB_GGUF_BOOL || kv->type == KB_GGUF_F32) return kb_failn(msg, n, "metadata '%s' is not an integer", key);
    if (kv->i <= 0 || kv->i > ((int64_t)1 << 40)) return kb_failn(msg, n, "metadata '%s' = %lld is out of range", key, (long long)kv->i);
    *v = kv->i;
    return 0;
}

static int key_real(const kb_gguf *g, const char *key, double *v, char *msg, size_t n) {
    const kb_gguf_kv *kv = kb_gguf_find_kv(g, key);
    if (!kv) return kb_failn(msg, n, "missing metadata key '%s'", key);
    if (kv->type != KB_GGUF_F32 && kv->type != KB_GGUF_F64) return kb_failn(msg, n, "metadata '%s' is not a float", key);
    if (!(kv->f > 0) || !isfinite(kv->f)) return kb_failn(msg, n, "metadata '%s' = %g must be positive", key, kv->f);
    *v = kv->f;
    return 0;
}

static kb_dtype ggml_to_dtype(uint32_t t) {
    switch (t) {
    case KB_GGML_F16: return KB_F16;
    case KB_GGML_Q4_K: return KB_Q4K;
    case KB_GGML_Q6_K: return KB_Q6K;
    default: return KB_F32;
    }
}

/* The tensor `name`, which must be rows x cols (cols innermost), of an allowed type. */
static int tensor(const kb_gguf *g, const char *name, int64_t rows, int64_t cols, int matrix, kb_weight *w, char *msg,
                  size_t n) {
    const kb_gguf_tensor *t = kb_gguf_find_tensor(g, name);
    if (!t) return kb_failn(msg, n, "missing tensor '%s'", name);
    const int want_dims = rows > 1 ? 2 : 1;
    if ((int)t->n_dims != want_dims || (int64_t)t->dims[0] != cols || (want_dims == 2 && (int64_t)t->dims[1] != rows))
        return kb_failn(msg, n, "tensor '%s' is [%llu x %llu], the architecture wants [%lld x %lld]", name,
                    (unsigned long long)t->dims[0], (unsigned long long)(t->n_dims > 1 ? t->dims[1] : 1),
                    (long long)cols, (long long)rows);
    if (!matrix && t->ggml_type != KB_GGML_F32) {
        char tn[32];
        return kb_failn(msg, n, "tensor '%s' is %s; norms and biases must be F32", name,
                    kb_ggml_type_name(t->ggml_type, tn, sizeof tn));
    }
    w->name = t->name;
    w->type = ggml_to_dtype(t->ggml_type);
    w->rows = rows;
    w->cols = cols;
    w->data = t->data;
    w->bytes = t->bytes;
    return 0;
}

static int from_gguf(const char *path, kb_model *m, char *msg, size_t n) {
    if (kb_gguf_open(path, &m->gguf, msg, n) != 0) return -1;
    const kb_gguf *g = &m->gguf;
    const kb_gguf_kv *arch = kb_gguf_find_kv(g, "general.architecture");
    if (!arch || arch->type != KB_GGUF_STRING) return kb_failn(msg, n, "'%s': missing metadata key 'general.architecture'", path);
    if (strcmp(arch->str, "qwen2")) return kb_failn(msg, n, "'%s': architecture '%s' is not qwen2", path, arch->str);
    kb_model_dims *d = &m->d;
    char why[256];
    if (key_int(g, "qwen2.block_count", &d->layers, why, sizeof why) ||
        key_int(g, "qwen2.embedding_length", &d->hidden, why, sizeof why) ||
        key_int(g, "qwen2.feed_forward_length", &d->ffn, why, sizeof why) ||
        key_int(g, "qwen2.attention.head_count", &d->heads, why, sizeof why) ||
        key_int(g, "qwen2.attention.head_count_kv", &d->kv_heads, why, sizeof why) ||
        key_int(g, "qwen2.context_length", &d->context, why, sizeof why) ||
        key_real(g, "qwen2.rope.freq_base", &d->rope_base, why, sizeof why) ||
        key_real(g, "qwen2.attention.layer_norm_rms_epsilon", &d->eps, why, sizeof why))
        return kb_failn(msg, n, "'%s': %s", path, why);
    if (d->layers > 4096 || d->hidden % d->heads || d->heads % d->kv_heads || (d->hidden / d->heads) % 2)
        return kb_failn(msg, n, "'%s': %lld heads, %lld KV heads and hidden %lld do not make a Qwen2 attention", path,
                    (long long)d->heads, (long long)d->kv_heads, (long long)d->hidden);
    d->head_dim = d->hidden / d->heads;
    const kb_gguf_tensor *emb = kb_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return kb_failn(msg, n, "'%s': missing tensor 'token_embd.weight' (2-D)", path);
    d->vocab = (int64_t)emb->dims[1];
    if (d->vocab < 1 || d->vocab > 2147483647LL) return kb_failn(msg, n, "'%s': vocabulary of %lld rows", path, (long long)d->vocab);
    const int64_t H = d->hidden, KV = d->kv_heads * d->head_dim, F = d->ffn;
    m->layer = calloc((size_t)d->layers, sizeof *m->layer);
    if (!m->layer) return kb_failn(msg, n, "out of memory");
#define T(name, rows, cols, mat, dst)                                                 \
    do {                                                                              \
        if (tensor(g, name, rows, cols, mat, dst, why, sizeof why))                   \
            return kb_failn(msg, n, "'%s': %s", path, why);                               \
    } while (0)
    T("token_embd.weight", d->vocab, H, 1, &m->tok_embd);
    T("output_norm.weight", 1, H, 0, &m->out_norm);
    if (kb_gguf_find_tensor(g, "output.weight")) {
        T("output.weight", d->vocab, H, 1, &m->output);
    } else {
        m->output = m->tok_embd;
        m->tied = 1;
    }
    for (int64_t l = 0; l < d->layers; l++) {
        kb_layer_weights *w = &m->layer[l];
        char name[96];
#define LT(suffix, rows, cols, mat, dst)                              \
    do {                                                              \
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, suffix); \
        T(name, rows, cols, mat, dst);                                \
    } while (0)
        LT("attn_norm.weight", 1, H, 0, &w->attn_norm);
        LT("attn_q.weight", H, H, 1, &w->wq);
        LT("attn_q.bias", 1, H, 0, &w->bq);
        LT("attn_k.weight", KV, H, 1, &w->wk);
        LT("attn_k.bias", 1, KV, 0, &w->bk);
        LT("attn_v.weight", KV, H, 1, &w->wv);
        LT("attn_v.bias", 1, KV, 0, &w->bv);
        LT("attn_output.weight", H, H, 1, &w->wo);
        LT("ffn_norm.weight", 1, H, 0, &w->ffn_norm);
        LT("ffn_gate.weight", F, H, 1, &w->wgate);
        LT("ffn_up.weight", F, H, 1, &w->wup);
        LT("ffn_down.weight", H, F, 1, &w->wdown);
#undef LT
    }
#undef T
    snprintf(m->name, sizeof m->name, "%s", path);
    return 0;
}

/* ---- synthetic models --------------------------------------------------------------------- */
/* Weights made from a seed, as a Q4_K_M file mixes them: Q4_K everywhere, Q6_K for
 * output.weight and for attn_v / ffn_down in the layers llama.cpp's use_more_bits
 * picks (i < n/8, i >= 7n/8, (i - n/8) % 3 == 2); norms and biases F32. Matrices are
 * drawn directly as K-quant blocks (a bell-shaped code distribution around 0 with a
 * per-row scale ~0.02, the spread of a trained model's weights), which is fast enough
 * for the 7B model. The embedding carries the residual stream's massive activations
 * (Sun et al., "Massive Activations in Large Language Models", 2024: a few fixed
 * channels, hundreds to thousands, at some tokens only): three channels at
 * +-(200..3000) in the rows of every fourth token id (quantized with ggml's own Q4_K
 * quantizer, so their 256-blocks lose resolution as a real file's would), and the
 * RMSNorm weights leave them large, so a per-tensor FP8 scale over a batch holding
 * such a token sees an amax thousands of times the typical channel; the other
 * tokens keep the small rows where an RMSNorm's eps matters. */
typedef struct {
    const char *name;
    kb_model_dims d;
} synth_spec;

static const synth_spec synth_specs[] = {
    {"tiny", {256, 512, 3, 4, 2, 64, 1024, 4096, 1e-6, 1e6}},
    {"qwen2.5-7b", {3584, 18944, 28, 28, 4, 128, 152064, 32768, 1e-6, 1e6}},
};

int kb_synthetic_massive_channels(const kb_model_dims *d, int64_t *ch, int max) {
    const double at[3] = {0.11, 0.47, 0.83};
    int n = 0;
    for (int i = 0; i < 3 && n < max; i++) ch[n++] = (int64_t)(at[i] * (double)d->hidden);
    return n;
}

static int use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* bytes of the synthetic model's weights, laid out in one allocation */
typedef struct {
    kb_weight *w;
    uint64_t seed, stream;
    double sigma; /* matrices: per-row N(0, sigma^2) around this */
    int kind;     /* 0 matrix, 1 norm weight, 2 bias, 3 embedding */
    int64_t massive[3];
    int nmassive;
} synth_job;

static uint16_t f16(double v) { return kb_f32_to_f16((float)v, 1); }

/* Irwin-Hall: the mean of four uniform 4-bit (or 6-bit) codes, a bell over the range */
static int bell4(uint64_t r) { return (int)(((r & 15) + ((r >> 4) & 15) + ((r >> 8) & 15) + ((r >> 12) & 15) + 2) >> 2); }
static int bell6(uint64_t r) { return (int)(((r & 63) + ((r >> 6) & 63) + ((r >> 12) & 63) + ((r >> 18) & 63) + 2) >> 2); }

static void synth_q4k_block(kb_rng *r, double sigma, kb_block_q4k *b) {
    /* y = d*sc*q - dmin*m, q bell-shaped around 7.5 with sd ~2.3: d*sc*2.3 = sigma */
    const double dsc = sigma / 2.3, d = dsc / 52.0, dmin = dsc * 7.5 / 40.0;
    b->d = f16(d);
    b->dmin = f16(dmin);
    const double dd = kb_f16_to_f32(b->d), dm = kb_f16_to_f32(b->dmin);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)(42 + kb_rng_next(r) % 22);
        long m = lround(dd * ls[j] * 7.5 / dm);
        lm[j] = (uint8_t)(m < 0 ? 0 : m > 63 ? 63 : m);
    }
    memset(b->scales, 0, sizeof b->scales);
    for (int j = 0; j < 8; j++) { /* ggml quantize_row_q4_K_ref's packing */
        if (j < 4) {
            b->scales[j] = ls[j];
            b->scales[j + 4] = lm[j];
        } else {
            b->scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            b->scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            b->scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
    for (int i = 0; i < 128; i++) {
        const uint64_t x = kb_rng_next(r);
        b->qs[i] = (uint8_t)(bell4(x) | (bell4(x >> 16) << 4));
    }
}

static void synth_q6k_block(kb_rng *r, double sigma, kb_block_q6k *b) {
    /* y = d*sc*(q - 32), q bell-shaped around 32 with sd ~9.2: d*sc*9.2 = sigma */
    b->d = f16(sigma / 9.2 / 96.0);
    for (int i = 0; i < 16; i++) b->scales[i] = (int8_t)(80 + kb_rng_next(r) % 33);
    uint8_t q[256];
    for (int i = 0; i < 256; i++) q[i] = (uint8_t)bell6(kb_rng_next(r));
    /* ggml's layout (dequantize_row_q6_K): per 128-half, l < 32: q[l], q[l+32],
     * q[l+64], q[l+96] take ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high and
     * qh[l] bits 0-1, 2-3, 4-5, 6-7 */
    for (int h = 0; h < 2; h++) {
        const uint8_t *v = q + 128 * h;
        uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((v[l] & 15) | ((v[l + 64] & 15) << 4));
            ql[l + 32] = (uint8_t)((v[l + 32] & 15) | ((v[l + 96] & 15) << 4));
            qh[l] = (uint8_t)((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
        }
    }
}

static void synth_row(int64_t row, void *arg) {
    const synth_job *j = arg;
    kb_weight *w = j->w;
    kb_rng r;
    kb_rng_seed(&r, j->seed, (j->stream << 32) ^ (uint64_t)row);
    const int64_t K = w->cols;
    if (j->kind == 1 || j->kind == 2) { /* f32 vectors */
        float *v = (float *)w->data;
        for (int64_t i = 0; i < K; i++)
            v[i] = j->kind == 1 ? (float)exp(0.25 * kb_rng_normal(&r)) : (float)(j->sigma * kb_rng_normal(&r));
        return;
    }
    const double sigma = j->sigma * exp(0.3 * kb_rng_normal(&r));
    if (j->kind == 3) { /* embedding: floats with the massive channels, ggml's quantizer */
        float *tmp = malloc((size_t)K * sizeof *tmp);
        if (!tmp) abort();
        for (int64_t i = 0; i < K; i++) tmp[i] = (float)(sigma * kb_rng_normal(&r));
        for (int c = 0; c < j->nmassive && row % 4 == 0; c++)
            tmp[j->massive[c]] = (float)((c % 2 ? -1.0 : 1.0) * (200.0 + 2800.0 * kb_rng_uniform(&r)));
        if (w->type == KB_Q4K)
            kb_quantize_q4k(tmp, (kb_block_q4k *)w->data + row * (K / 256), K / 256);
        else
            kb_quantize_q6k(tmp, (kb_block_q6k *)w->data + row * (K / 256), K / 256);
        free(tmp);
        return;
    }
    for (int64_t b = 0; b < K / 256; b++) {
        if (w->type == KB_Q4K)
            synth_q4k_block(&r, sigma, (kb_block_q4k *)w->data + row * (K / 256) + b);
        else
            synth_q6k_block(&r, sigma, (kb_block_q6k *)w->data + row * (K / 256) + b);
    }
}

static int synthetic(const char *which, uint64_t seed, kb_model *m, char *msg, size_t n) {
    const synth_spec *spec = NULL;
    for (size_t i = 0; i < sizeof synth_specs / sizeof synth_specs[0]; i++)
        if (!strcmp(which, synth_specs[i].name)) spec = &synth_specs[i];
    if (!spec) return kb_failn(msg, n, "unknown model 'synthetic:%s' (synthetic:tiny, synthetic:qwen2.5-7b)", which);
    kb_model_dims *d = &m->d;
    *d = spec->d;
    const int64_t H = d->hidden, KV = d->kv_heads * d->head_dim, F = d->ffn, V = d->vocab, L = d->layers;
    m->layer = calloc((size_t)L, sizeof *m->layer);
    if (!m->layer) return kb_failn(msg, n, "out of memory");

    /* every weight's shape and type, then one allocation */
    typedef struct {
        kb_weight *w;
        const char *name;
        kb_dtype type;
        int64_t rows, cols;
        int kind;
        double sigma;
    } plan;
    plan *p = calloc((size_t)(3 + 12 * L), sizeof *p);
    if (!p) return kb_failn(msg, n, "out of memory");
    int np = 0;
#define ADD(dst, nm, t, r, c, k, s) p[np++] = (plan){dst, nm, t, r, c, k, s}
    ADD(&m->tok_embd, "token_embd.weight", KB_Q4K, V, H, 3, 0.02);
    ADD(&m->out_norm, "output_norm.weight", KB_F32, 1, H, 1, 0);
    ADD(&m->output, "output.weight", KB_Q6K, V, H, 0, 0.02);
    for (int64_t l = 0; l < L; l++) {
        kb_layer_weights *w = &m->layer[l];
        const kb_dtype more = use_more_bits(l, L) ? KB_Q6K : KB_Q4K;
        ADD(&w->attn_norm, "attn_norm.weight", KB_F32, 1, H, 1, 0);
        ADD(&w->wq, "attn_q.weight", KB_Q4K, H, H, 0, 0.02);
        ADD(&w->bq, "attn_q.bias", KB_F32, 1, H, 2, 0.1);
        ADD(&w->wk, "attn_k.weight", KB_Q4K, KV, H, 0, 0.02);
        ADD(&w->bk, "attn_k.bias", KB_F32, 1, KV, 2, 0.5);
        ADD(&w->wv, "attn_v.weight", more, KV, H, 0, 0.02);
        ADD(&w->bv, "attn_v.bias", KB_F32, 1, KV, 2, 0.05);
        ADD(&w->wo, "attn_output.weight", KB_Q4K, H, H, 0, 0.02);
        ADD(&w->ffn_norm, "ffn_norm.weight", KB_F32, 1, H, 1, 0);
        ADD(&w->wgate, "ffn_gate.weight", KB_Q4K, F, H, 0, 0.02);
        ADD(&w->wup, "ffn_up.weight", KB_Q4K, F, H, 0, 0.02);
        ADD(&w->wdown, "ffn_down.weight", more, H, F, 0, 0.02);
    }
#undef ADD
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        const uint64_t b = kb_dtype_bytes(p[i].type, p[i].rows * p[i].cols);
        total += (size_t)((b + 63) / 64 * 64);
    }
    m->owned = malloc(total);
    if (!m->owned) {
        free(p);
        return kb_failn(msg, n, "synthetic:%s needs %.1f GiB of host memory for its weights", which, total / 1073741824.0);
    }
    m->owned_bytes = total;
    synth_job j = {.seed = seed};
    j.nmassive = kb_synthetic_massive_channels(d, j.massive, 3);
    size_t off = 0;
    enum { NAME_LEN = 48 };
    m->names = calloc((size_t)np, NAME_LEN);
    if (!m->names) {
        free(p);
        return kb_failn(msg, n, "out of memory");
    }
    for (int i = 0; i < np; i++) {
        kb_weight *w = p[i].w;
        char *name = m->names + (size_t)i * NAME_LEN;
        if (i < 3) snprintf(name, NAME_LEN, "%s", p[i].name);
        else snprintf(name, NAME_LEN, "blk.%d.%s", (i - 3) / 12, p[i].name);
        w->name = name;
        w->type = p[i].type;
        w->rows = p[i].rows;
        w->cols = p[i].cols;
        w->bytes = kb_dtype_bytes(w->type, w->rows * w->cols);
        w->data = (char *)m->owned + off;
        off += (size_t)((w->bytes + 63) / 64 * 64);
        j.w = w;
        j.stream = (uint64_t)i + 1;
        j.sigma = p[i].sigma;
        j.kind = p[i].kind;
        kb_parallel_for(p[i].kind == 1 || p[i].kind == 2 ? 1 : w->rows, synth_row, &j);
    }
    free(p);
    snprintf(m->name, sizeof m->name, "synthetic:%s (seed %llu)", which, (unsigned long long)seed);
    return 0;
}

int kb_model_load(const char *spec, uint64_t seed, kb_model *m, char *msg, size_t n) {
    memset(m, 0, sizeof *m);
    int rc = !strncmp(spec, "synthetic:", 10) ? synthetic(spec + 10, seed, m, msg, n) : from_gguf(spec, m, msg, n);
    if (rc) kb_model_free(m);
    return rc;
}
