/* forward.c - the decoder on a backend, node by node against the reference forward
 * (forward.h, docs/FORWARD.md).
 *
 * Every node is a registered op (kb_ops) prepared on views of device buffers; a step is
 * one enqueue of all its nodes' states and one wait. Nothing crosses to the host
 * between ops. After the step every node's output is downloaded: the chained
 * comparison. The isolated check runs each node again on scratch buffers holding the
 * reference's values (weights stay the device's own), and judges it by its op's
 * tolerance, exactly as a single-op row is judged. */
#include "bench/forward.h"
#include "bench/hostmem.h"

#include "bench/forward_ref.h"
#include "bench/metrics.h"
#include "ref/ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- recipes ---------------------------------------------------------------------------- */
const kb_recipe kb_recipes[] = {
    {"f32", 0, KB_SCALE_TENSOR, KB_SCALE_TENSOR, KB_SCALE_TENSOR, KB_F32,
     "Q4_K/Q6_K dequantized to f32 once, f32 GEMMs (a CPU path)"},
    {"q4k-fp8-tensor", 1, KB_SCALE_TENSOR, KB_SCALE_TENSOR, KB_SCALE_TENSOR, KB_F16,
     "one amax scale per weight tensor and per activation batch, e4m3, fp16 GEMM output"},
    {"q4k-fp8-row", 1, KB_SCALE_OUTER, KB_SCALE_OUTER, KB_SCALE_OUTER, KB_BF16,
     "per-output-channel weight scales, per-token activation scales, e4m3, bf16 output"},
    {"fp8-block", 1, KB_SCALE_BLK128, KB_SCALE_VEC128, KB_SCALE_BLK128, KB_BF16,
     "128x128 weight blocks, 1x128 activation blocks, e4m3, bf16 output"},
};
const int kb_recipe_count = (int)(sizeof kb_recipes / sizeof kb_recipes[0]);

const kb_recipe *kb_recipe_find(const char *name) {
    for (int i = 0; i < kb_recipe_count; i++)
        if (!strcmp(kb_recipes[i].name, name)) return &kb_recipes[i];
    return NULL;
}

/* ---- device tensors -------------------------------------------------------------------- */
typedef struct {
    kb_buf buf;
    kb_dtype type;
    int64_t count;
    uint64_t bytes;
} dtensor;

/* A converted weight: f32 values, or fp8 codes and their scales. */
typedef struct {
    const kb_weight *src;
    dtensor w, s;
    void *host_w, *host_s; /* the device's bytes, downloaded once for isolated checks (where
                            * the host has room; else downloaded for each check) */
} dweight;

typedef struct {
    dweight wq, wk, wv, wo, wgate, wup, wdown;
    dtensor attn_norm, ffn_norm, bq, bk, bv;
    dtensor kcache, vcache; /* [max_pos][kv] f32 */
} dlayer;

/* Where an isolated run's input comes from. */
typedef enum {
    SRC_REF,     /* a reference value, rounded to the input's type */
    SRC_REF_Q,   /* fp8 codes of a reference value (ref_quant_fp8, the recipe's layout) */
    SRC_REF_S,   /* ... and their scales */
    SRC_DEVICE,  /* the device's own bytes (a converted weight), as they are */
    SRC_HOST,    /* host bytes as they are (ids, the embedding table, norms, biases) */
    SRC_POS      /* the step's positions */
} src_kind;

typedef struct {
    src_kind kind;
    const double *ref; /* SRC_REF*: rows x cols */
    int64_t rows, cols;
    const void *host;    /* SRC_HOST */
    dweight *dw;         /* SRC_DEVICE */
    int scales;          /* SRC_DEVICE: the scales, not the codes */
} src;

typedef struct {
    char name[32];
    int layer;
    kb_case c;
    const kb_backend *b;
    kb_variant v;
    int n_in, n_out;
    kb_arg args[KB_MAX_ARGS];
    src in[KB_MAX_IN];
    const double *chain_ref; /* what output 0 is in the reference (NULL: no counterpart) */
    int chain_quant;         /* output 0 holds fp8 codes scaled by output 1 */
    void *state;
} node;

typedef struct {
    const kb_forward_cfg *cfg;
    const kb_model *m;
    kb_harness *h;
    kb_forward_result *res;
    const kb_backend *b, *gb;
    int max_pos;
    dlayer *dl;
    dtensor embd, out_norm;
    dweight output;
    /* the step in progress */
    int step;
    node *nodes;
    int n_nodes, cap_nodes;
    dtensor *step_bufs;
    int n_step_bufs, cap_step_bufs;
    int replay; /* --repeat: a rerun for determinism only (no rows) */
    char err[512];
} fwd;

static int ferr(fwd *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ferr(fwd *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
    return -1;
}

static kb_view view(const dtensor *t) { return (kb_view){t->buf, 0, t->bytes}; }
static kb_arg arg(const dtensor *t) { return (kb_arg){t->type, t->count, view(t)}; }
/* rows [r0, r0 + rows) of a [*][width] tensor */
static kb_arg arg_rows(const dtensor *t, int64_t r0, int64_t rows, int64_t width) {
    const uint64_t eb = kb_dtype_bytes(t->type, 1);
    return (kb_arg){t->type, rows * width, {t->buf, (uint64_t)(r0 * width) * eb, (uint64_t)(rows * width) * eb}};
}

static int dalloc(fwd *f, dtensor *t, kb_dtype type, int64_t count) {
    char msg[KB_MSG];
    t->type = type;
    t->count = count;
    t->bytes = kb_dtype_bytes(type, count);
    if (f->b->alloc(t->bytes, &t->buf, msg) != KB_OK)
        return ferr(f, "alloc of %.1f MiB on %s: %s", (double)t->bytes / 1048576.0, f->b->name, msg);
    return 0;
}

static void dfree(fwd *f, dtensor *t) {
    if (t->buf) f->b->free(t->buf);
    t->buf = 0;
}

static int upload(fwd *f, const dtensor *t, const void *host) {
    char msg[KB_MSG];
    if (f->b->upload(view(t), host, msg) != KB_OK) return ferr(f, "upload to %s: %s", f->b->name, msg);
    return 0;
}

static int download(fwd *f, void *host, kb_view v) {
    char msg[KB_MSG];
    if (f->b->download(host, v, msg) != KB_OK) return ferr(f, "download from %s: %s", f->b->name, msg);
    return 0;
}

/* ---- variants ----------------------------------------------------------------------------- */
static const char *planted(const fwd *f, int layer, const char *name) {
    for (int i = 0; i < f->cfg->n_plants; i++)
        if (f->cfg->plants[i].layer == layer && !strcmp(f->cfg->plants[i].node, name)) return f->cfg->plants[i].variant;
    return NULL;
}

static int in_list(const char *list, const char *name) {
    if (!list) return -1;
    int idx = 0;
    for (const char *p = list; *p; idx++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (strlen(name) == len && !strncmp(p, name, len)) return idx;
        p += len + (e ? 1 : 0);
    }
    return -1;
}

static int in_order(const int *order, int n, int i) {
    for (int k = 0; k < n; k++)
        if (order[k] == i) return 1;
    return 0;
}

/* Prepare a node: the planted variant if any, else the preferred (--prefer-from, then
 * --prefer), else the first non-test variant that prepares. */
static int prepare_node(fwd *f, node *nd) {
    char msg[KB_MSG] = "";
    kb_variant vars[64];
    kb_options opt = f->cfg->opt;
    const char *plant = planted(f, nd->layer, nd->name);
    opt.test_variants = opt.test_variants || plant;
    const int nv = nd->b->variants(&nd->c, &opt, vars, 64, msg);
    if (nv <= 0) return ferr(f, "%s (layer %d): %s has no %s variant: %s", nd->name, nd->layer, nd->b->name,
                             kb_op_name(nd->c.op), msg);
    int order[64], no = 0;
    if (plant) {
        for (int i = 0; i < nv; i++)
            if (!strcmp(vars[i].name, plant)) order[no++] = i;
        if (!no) return ferr(f, "--plant: %s has no variant '%s' for %s", nd->b->name, plant, kb_op_name(nd->c.op));
    } else {
        /* the ones --prefer-from timed at this op and shape, fastest first; then the
         * --prefer list's, in its order; then the rest */
        const char *fast[64];
        const int nf = kb_resume_fastest(f->cfg->prefer_from, &nd->c, nd->b->name, fast, 64);
        for (int r = 0; r < nf; r++)
            for (int i = 0; i < nv; i++)
                if (!vars[i].test_only && !strcmp(vars[i].name, fast[r])) order[no++] = i;
        const int n_fast = no;
        for (int rank = 0; rank < 64 && no < nv; rank++)
            for (int i = 0; i < nv; i++)
                if (!vars[i].test_only && in_list(f->cfg->prefer, vars[i].name) == rank && !in_order(order, n_fast, i))
                    order[no++] = i;
        for (int i = 0; i < nv; i++)
            if (!vars[i].test_only && in_list(f->cfg->prefer, vars[i].name) < 0 && !in_order(order, n_fast, i))
                order[no++] = i;
    }
    int rc = KB_NOT_SUPPORTED;
    for (int i = 0; i < no; i++) {
        rc = nd->b->prepare(&nd->c, &vars[order[i]], nd->args, nd->n_in, nd->n_out, &nd->state, msg);
        if (rc == KB_OK) {
            nd->v = vars[order[i]];
            return 0;
        }
        if (rc != KB_NOT_SUPPORTED) break;
    }
    return ferr(f, "%s (layer %d): %s %s %s: %s", nd->name, nd->layer, nd->b->name, kb_op_name(nd->c.op), nd->c.label,
                msg);
}

/* ---- load: weights converted on the device ------------------------------------------------ */
/* One node run on its own, now (loading: conversions). */
static int run_now(fwd *f, node *nd) {
    char msg[KB_MSG];
    if (prepare_node(f, nd)) return -1;
    int rc = nd->b->enqueue(&nd->state, 1, msg);
    if (rc == KB_OK) rc = nd->b->wait(msg);
    if (rc != KB_OK) ferr(f, "%s: %s", nd->name, msg);
    return rc == KB_OK ? 0 : -1;
}

static void set_case(node *nd, kb_op_id op, const char *name, int layer) {
    memset(nd, 0, sizeof *nd);
    kb_case_init(&nd->c, op);
    snprintf(nd->name, sizeof nd->name, "%s", name);
    nd->layer = layer;
    nd->n_in = kb_ops[op]->n_in;
    nd->n_out = kb_ops[op]->n_out;
}

static void emit_row(fwd *f, const node *nd, kb_row *row);

/* Judge a conversion node's outputs against its op's reference on the host weight. */
static void judge_conversion(fwd *f, node *nd, const kb_weight *w) {
    kb_case_data d;
    char msg[KB_MSG];
    kb_row row;
    memset(&row, 0, sizeof row);
    if (kb_case_data_make(&d, &nd->c, 0, msg) != KB_OK) {
        row.verdict = KB_UNSUPPORTED;
        snprintf(row.reason, sizeof row.reason, "not judged: %s", msg);
        emit_row(f, nd, &row);
        return;
    }
    memcpy(d.t[0].host, w->data, d.t[0].bytes);
    int ok = 1;
    for (int o = 0; o < nd->n_out && ok; o++) ok = download(f, d.t[nd->n_in + o].host, nd->args[nd->n_in + o].view) == 0;
    if (ok) {
        kb_ops[nd->c.op]->reference(&nd->c, d.t, d.ref);
        kb_judge(&d, nd->v.acc_unit_roundoff, &row);
    } else {
        row.verdict = KB_ERRORED;
        snprintf(row.reason, sizeof row.reason, "%.400s", f->err);
    }
    row.measure = "isolated";
    emit_row(f, nd, &row);
    kb_case_data_free(&d);
}

static int convert_weight(fwd *f, const kb_weight *w, dweight *dw, int layer, const char *name) {
    const kb_recipe *r = f->cfg->recipe;
    dw->src = w;
    dtensor raw;
    if (dalloc(f, &raw, w->type, w->rows * w->cols) || upload(f, &raw, w->data)) return -1;
    node nd;
    char nm[32];
    snprintf(nm, sizeof nm, "%s_load", name);
    if (r->fp8) {
        set_case(&nd, KB_OP_weight_fp8, nm, layer);
        nd.c.m = w->rows;
        nd.c.k = w->cols;
        nd.c.a_type = w->type;
        nd.c.out_type = KB_E4M3;
        nd.c.scale_mode = r->w_scale;
        nd.c.flush = f->cfg->flush;
        if (dalloc(f, &dw->w, KB_E4M3, w->rows * w->cols) ||
            dalloc(f, &dw->s, KB_F32, kb_scale_count(r->w_scale, w->rows, w->cols)))
            return -1;
        nd.args[2] = arg(&dw->s);
    } else {
        set_case(&nd, KB_OP_dequant_q4k, nm, layer);
        nd.c.m = w->rows;
        nd.c.k = w->cols;
        nd.c.a_type = w->type;
        if (dalloc(f, &dw->w, KB_F32, w->rows * w->cols)) return -1;
    }
    kb_case_label(&nd.c);
    nd.b = f->b; /* the conversion is the main backend's kernel; a GEMM-only backend (cublaslt) shares its device */
    nd.args[0] = arg(&raw);
    nd.args[1] = arg(&dw->w);
    if (run_now(f, &nd)) return -1;
    const int judge = f->cfg->check_weights == 2 ||
                      (f->cfg->check_weights == 1 && (layer <= 0 || layer >= f->m->d.layers - 1));
    if (judge && !f->replay) judge_conversion(f, &nd, w);
    nd.b->release(nd.state);
    dfree(f, &raw);
    return 0;
}

static int upload_vector(fwd *f, const kb_weight *w, dtensor *t) {
    return dalloc(f, t, KB_F32, w->cols) || upload(f, t, w->data);
}

static int load(fwd *f) {
    const kb_model *m = f->m;
    const int64_t L = m->d.layers, kv = m->d.kv_heads * m->d.head_dim;
    f->dl = calloc((size_t)L, sizeof *f->dl);
    if (!f->dl) return ferr(f, "out of host memory");
    if (dalloc(f, &f->embd, m->tok_embd.type, m->tok_embd.rows * m->tok_embd.cols) || upload(f, &f->embd, m->tok_embd.data) ||
        upload_vector(f, &m->out_norm, &f->out_norm) || convert_weight(f, &m->output, &f->output, (int)L, "lm_head"))
        return -1;
    for (int64_t l = 0; l < L; l++) {
        const kb_layer_weights *w = &m->layer[l];
        dlayer *d = &f->dl[l];
        if (kb_harness_stopped()) return ferr(f, "stopped by signal %d while loading", kb_harness_stopped());
        if (f->cfg->progress && !f->replay)
            fprintf(stderr, "forward: converting layer %lld of %lld (%s)\n", (long long)l + 1, (long long)L,
                    f->cfg->recipe->name);
        if (upload_vector(f, &w->attn_norm, &d->attn_norm) || upload_vector(f, &w->ffn_norm, &d->ffn_norm) ||
            upload_vector(f, &w->bq, &d->bq) || upload_vector(f, &w->bk, &d->bk) || upload_vector(f, &w->bv, &d->bv) ||
            convert_weight(f, &w->wq, &d->wq, (int)l, "attn_q") || convert_weight(f, &w->wk, &d->wk, (int)l, "attn_k") ||
            convert_weight(f, &w->wv, &d->wv, (int)l, "attn_v") ||
            convert_weight(f, &w->wo, &d->wo, (int)l, "attn_output") ||
            convert_weight(f, &w->wgate, &d->wgate, (int)l, "ffn_gate") ||
            convert_weight(f, &w->wup, &d->wup, (int)l, "ffn_up") ||
            convert_weight(f, &w->wdown, &d->wdown, (int)l, "ffn_down") ||
            dalloc(f, &d->kcache, KB_F32, (int64_t)f->max_pos * kv) || dalloc(f, &d->vcache, KB_F32, (int64_t)f->max_pos * kv))
            return -1;
    }
    return 0;
}

static void free_dweight(fwd *f, dweight *w) {
    dfree(f, &w->w);
    dfree(f, &w->s);
    free(w->host_w);
    free(w->host_s);
    w->host_w = w->host_s = NULL;
}

static void unload(fwd *f, int device_alive) {
    if (!f->dl) return;
    for (int64_t l = 0; l < f->m->d.layers; l++) {
        dlayer *d = &f->dl[l];
        dweight *ws[] = {&d->wq, &d->wk, &d->wv, &d->wo, &d->wgate, &d->wup, &d->wdown};
        dtensor *ts[] = {&d->attn_norm, &d->ffn_norm, &d->bq, &d->bk, &d->bv, &d->kcache, &d->vcache};
        for (size_t i = 0; i < 7; i++) {
            if (!device_alive) ws[i]->w.buf = ws[i]->s.buf = 0, ts[i]->buf = 0;
            free_dweight(f, ws[i]);
            dfree(f, ts[i]);
        }
    }
    if (!device_alive) f->embd.buf = f->out_norm.buf = f->output.w.buf = f->output.s.buf = 0;
    dfree(f, &f->embd);
    dfree(f, &f->out_norm);
    free_dweight(f, &f->output);
    free(f->dl);
    f->dl = NULL;
}

/* ---- a step's graph --------------------------------------------------------------------------- */
static node *add_node(fwd *f, kb_op_id op, const char *name, int layer, const kb_backend *b) {
    if (f->n_nodes == f->cap_nodes) {
        int cap = f->cap_nodes ? 2 * f->cap_nodes : 256;
        node *n = realloc(f->nodes, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        f->nodes = n;
        f->cap_nodes = cap;
    }
    node *nd = &f->nodes[f->n_nodes++];
    set_case(nd, op, name, layer);
    nd->b = b;
    return nd;
}

static dtensor *step_buf(fwd *f, kb_dtype type, int64_t count) {
    if (f->n_step_bufs == f->cap_step_bufs) {
        int cap = f->cap_step_bufs ? 2 * f->cap_step_bufs : 256;
        dtensor *t = realloc(f->step_bufs, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        f->step_bufs = t;
        f->cap_step_bufs = cap;
    }
    dtensor *t = &f->step_bufs[f->n_step_bufs];
    if (dalloc(f, t, type, count)) return NULL;
    f->n_step_bufs++;
    return t;
}

static src ref_src(const double *ref, int64_t rows, int64_t cols) { return (src){.kind = SRC_REF, .ref = ref, .rows = rows, .cols = cols}; }
static src host_src(const void *p) { return (src){.kind = SRC_HOST, .host = p}; }

/* An activation as the GEMMs want it: f32 as it is, or quantized by a quant_fp8 node. */
typedef struct {
    const dtensor *x;   /* f32 [n][k] */
    const dtensor *q, *s;
    const double *ref;  /* the reference's value */
    int64_t rows, cols;
} gemm_in;

static int quantize(fwd *f, int layer, const char *name, gemm_in *in) {
    const kb_recipe *r = f->cfg->recipe;
    if (!r->fp8) return 0;
    node *nd = add_node(f, KB_OP_quant_fp8, name, layer, f->b);
    if (!nd) return ferr(f, "out of host memory");
    nd->c.n = in->rows;
    nd->c.k = in->cols;
    nd->c.a_type = KB_F32;
    nd->c.out_type = KB_E4M3;
    nd->c.scale_mode = r->x_scale;
    nd->c.flush = f->cfg->flush;
    kb_case_label(&nd->c);
    if (!(in->q = step_buf(f, KB_E4M3, in->rows * in->cols)) ||
        !(in->s = step_buf(f, KB_F32, kb_scale_count(r->x_scale, in->rows, in->cols))))
        return -1;
    nd->args[0] = arg(in->x);
    nd->args[1] = arg(in->q);
    nd->args[2] = arg(in->s);
    nd->in[0] = ref_src(in->ref, in->rows, in->cols);
    nd->chain_ref = in->ref;
    nd->chain_quant = 1;
    return 0;
}

/* out = W in (+ nothing): gemm_fp8 on the quantized input, or gemm_f32. */
static int gemm(fwd *f, int layer, const char *name, dweight *w, const gemm_in *in, const dtensor *out,
                const double *ref) {
    const kb_recipe *r = f->cfg->recipe;
    node *nd = add_node(f, r->fp8 ? KB_OP_gemm_fp8 : KB_OP_gemm_f32, name, layer, f->gb);
    if (!nd) return ferr(f, "out of host memory");
    nd->c.m = w->src->rows;
    nd->c.n = in->rows;
    nd->c.k = w->src->cols;
    if (r->fp8) {
        nd->c.a_type = nd->c.b_type = KB_E4M3;
        nd->c.out_type = r->gemm_out;
        nd->c.scale_mode = r->gemm_scale;
        nd->args[0] = arg(&w->w);
        nd->args[1] = arg(in->q);
        nd->args[2] = arg(&w->s);
        nd->args[3] = arg(in->s);
        nd->args[4] = arg(out);
        nd->in[0] = (src){.kind = SRC_DEVICE, .dw = w};
        nd->in[1] = (src){.kind = SRC_REF_Q, .ref = in->ref, .rows = in->rows, .cols = in->cols};
        nd->in[2] = (src){.kind = SRC_DEVICE, .dw = w, .scales = 1};
        nd->in[3] = (src){.kind = SRC_REF_S, .ref = in->ref, .rows = in->rows, .cols = in->cols};
    } else {
        nd->args[0] = arg(&w->w);
        nd->args[1] = arg(in->x);
        nd->args[2] = arg(out);
        nd->in[0] = (src){.kind = SRC_DEVICE, .dw = w};
        nd->in[1] = ref_src(in->ref, in->rows, in->cols);
    }
    kb_case_label(&nd->c);
    nd->chain_ref = ref;
    return 0;
}

/* A one-input-and-a-vector elementwise node (rmsnorm, bias_add) or two inputs (add, swiglu). */
static node *node2(fwd *f, kb_op_id op, const char *name, int layer, kb_arg a0, src s0, kb_arg a1, src s1, kb_arg out,
                   const double *ref) {
    node *nd = add_node(f, op, name, layer, f->b);
    if (!nd) return NULL;
    nd->args[0] = a0;
    nd->args[1] = a1;
    nd->args[2] = out;
    nd->in[0] = s0;
    nd->in[1] = s1;
    nd->chain_ref = ref;
    return nd;
}

static int build_step(fwd *f, const kb_ref_forward *rf, const kb_ref_step *rs, const dtensor *ids, const dtensor *pos,
                      dtensor *logits) {
    const kb_model *m = f->m;
    const kb_model_dims *d = &m->d;
    const kb_recipe *r = f->cfg->recipe;
    const int64_t n = rs->n, H = d->hidden, KV = d->kv_heads * d->head_dim, F = d->ffn, L = d->layers;
    const kb_dtype go = r->fp8 ? r->gemm_out : KB_F32;
    const int pos0 = rs->pos0;
    dtensor *x = step_buf(f, KB_F32, n * H);
    if (!x) return -1;
    node *nd = add_node(f, KB_OP_embed, "embed", -1, f->b);
    if (!nd) return ferr(f, "out of host memory");
    nd->c.m = d->vocab, nd->c.n = n, nd->c.k = H, nd->c.a_type = m->tok_embd.type;
    kb_case_label(&nd->c);
    nd->args[0] = arg(&f->embd), nd->args[1] = arg(ids), nd->args[2] = arg(x);
    nd->in[0] = host_src(m->tok_embd.data), nd->in[1] = host_src(rs->ids);
    nd->chain_ref = rs->v[FV_X_IN];

    for (int64_t li = 0; li < L; li++) {
        const int l = (int)li;
        dlayer *dl = &f->dl[l];
        double *const *rv = rs->v + l * FV_COUNT;
        const kb_layer_weights *w = &m->layer[l];
#define BUF(var, type, count) \
    dtensor *var = step_buf(f, type, count); \
    if (!var) return -1
        BUF(n1, KB_F32, n * H);
        BUF(qp, go, n * H);
        BUF(kp, go, n * KV);
        BUF(vp, go, n * KV);
        BUF(q, KB_F32, n * H);
        BUF(k, KB_F32, n * KV);
        BUF(qr, KB_F32, n * H);
        BUF(att, KB_F32, n * H);
        BUF(o, go, n * H);
        BUF(hh, KB_F32, n * H);
        BUF(n2, KB_F32, n * H);
        BUF(gate, go, n * F);
        BUF(up, go, n * F);
        BUF(act, KB_F32, n * F);
        BUF(down, go, n * H);
        BUF(xo, KB_F32, n * H);
#undef BUF
        const double *x_ref = rv[FV_X_IN];
        if (!(nd = node2(f, KB_OP_rmsnorm, "attn_norm", l, arg(x), ref_src(x_ref, n, H), arg(&dl->attn_norm),
                         host_src(w->attn_norm.data), arg(n1), rv[FV_N1])))
            return ferr(f, "out of host memory");
        nd->c.n = n, nd->c.k = H, nd->c.eps = d->eps;
        kb_case_label(&nd->c);

        gemm_in in1 = {.x = n1, .ref = rv[FV_N1], .rows = n, .cols = H};
        if (quantize(f, l, "attn_in_quant", &in1) || gemm(f, l, "attn_q_gemm", &dl->wq, &in1, qp, rv[FV_QP]) ||
            gemm(f, l, "attn_k_gemm", &dl->wk, &in1, kp, rv[FV_KP]) ||
            gemm(f, l, "attn_v_gemm", &dl->wv, &in1, vp, rv[FV_VP]))
            return -1;
        const kb_arg krows = arg_rows(&dl->kcache, pos0, n, KV), vrows = arg_rows(&dl->vcache, pos0, n, KV);
        struct {
            const char *name;
            const dtensor *in;
            kb_fv in_v;
            const dtensor *bias;
            const kb_weight *bw;
            kb_arg out;
            kb_fv out_v;
            int64_t width;
        } biases[3] = {{"attn_q_bias", qp, FV_QP, &dl->bq, &w->bq, arg(q), FV_Q, H},
                       {"attn_k_bias", kp, FV_KP, &dl->bk, &w->bk, arg(k), FV_K, KV},
                       {"attn_v_bias", vp, FV_VP, &dl->bv, &w->bv, vrows, FV_V, KV}};
        for (int i = 0; i < 3; i++) {
            if (!(nd = node2(f, KB_OP_bias_add, biases[i].name, l, arg(biases[i].in), ref_src(rv[biases[i].in_v], n, biases[i].width),
                             arg(biases[i].bias), host_src(biases[i].bw->data), biases[i].out, rv[biases[i].out_v])))
                return ferr(f, "out of host memory");
            nd->c.n = n, nd->c.m = biases[i].width, nd->c.a_type = go;
            kb_case_label(&nd->c);
        }
        for (int i = 0; i < 2; i++) {
            const int is_q = i == 0;
            if (!(nd = node2(f, KB_OP_rope_neox, is_q ? "attn_q_rope" : "attn_k_rope", l, is_q ? arg(q) : arg(k),
                             ref_src(rv[is_q ? FV_Q : FV_K], n, is_q ? H : KV), arg(pos), (src){.kind = SRC_POS},
                             is_q ? arg(qr) : krows, rv[is_q ? FV_QR : FV_KR])))
                return ferr(f, "out of host memory");
            nd->c.n = n, nd->c.heads = is_q ? d->heads : d->kv_heads, nd->c.head_dim = d->head_dim;
            nd->c.theta = d->rope_base;
            nd->c.max_pos = f->max_pos;
            kb_case_label(&nd->c);
        }
        nd = add_node(f, KB_OP_attention, "attn", l, f->b);
        if (!nd) return ferr(f, "out of host memory");
        nd->c.n = n, nd->c.kv_len = pos0 + n, nd->c.heads = d->heads, nd->c.kv_heads = d->kv_heads, nd->c.head_dim = d->head_dim;
        kb_case_label(&nd->c);
        nd->args[0] = arg(qr);
        nd->args[1] = arg_rows(&dl->kcache, 0, pos0 + n, KV);
        nd->args[2] = arg_rows(&dl->vcache, 0, pos0 + n, KV);
        nd->args[3] = arg(att);
        nd->in[0] = ref_src(rv[FV_QR], n, H);
        nd->in[1] = ref_src(rf->kcache[l], pos0 + n, KV);
        nd->in[2] = ref_src(rf->vcache[l], pos0 + n, KV);
        nd->chain_ref = rv[FV_ATT];

        gemm_in ina = {.x = att, .ref = rv[FV_ATT], .rows = n, .cols = H};
        if (quantize(f, l, "attn_out_quant", &ina) || gemm(f, l, "attn_out_gemm", &dl->wo, &ina, o, rv[FV_O])) return -1;
        if (!(nd = node2(f, KB_OP_add, "attn_residual", l, arg(x), ref_src(x_ref, n, H), arg(o), ref_src(rv[FV_O], n, H),
                         arg(hh), rv[FV_H])))
            return ferr(f, "out of host memory");
        nd->c.n = n, nd->c.k = H, nd->c.a_type = go;
        kb_case_label(&nd->c);
        if (!(nd = node2(f, KB_OP_rmsnorm, "ffn_norm", l, arg(hh), ref_src(rv[FV_H], n, H), arg(&dl->ffn_norm),
                         host_src(w->ffn_norm.data), arg(n2), rv[FV_N2])))
            return ferr(f, "out of host memory");
        nd->c.n = n, nd->c.k = H, nd->c.eps = d->eps;
        kb_case_label(&nd->c);
        gemm_in in2 = {.x = n2, .ref = rv[FV_N2], .rows = n, .cols = H};
        if (quantize(f, l, "ffn_in_quant", &in2) || gemm(f, l, "ffn_gate_gemm", &dl->wgate, &in2, gate, rv[FV_GATE]) ||
            gemm(f, l, "ffn_up_gemm", &dl->wup, &in2, up, rv[FV_UP]))
            return -1;
        if (!(nd = node2(f, KB_OP_swiglu, "ffn_swiglu", l, arg(gate), ref_src(rv[FV_GATE], n, F), arg(up),
                         ref_src(rv[FV_UP], n, F), arg(act), rv[FV_ACT])))
            return ferr(f, "out of host memory");
        nd->c.n = n, nd->c.k = F, nd->c.a_type = go;
        kb_case_label(&nd->c);
        gemm_in in3 = {.x = act, .ref = rv[FV_ACT], .rows = n, .cols = F};
        if (quantize(f, l, "ffn_down_quant", &in3) || gemm(f, l, "ffn_down_gemm", &dl->wdown, &in3, down, rv[FV_DOWN]))
            return -1;
        if (!(nd = node2(f, KB_OP_add, "ffn_residual", l, arg(hh), ref_src(rv[FV_H], n, H), arg(down),
                         ref_src(rv[FV_DOWN], n, H), arg(xo), rv[FV_X_OUT])))
            return ferr(f, "out of host memory");
        nd->c.n = n, nd->c.k = H, nd->c.a_type = go;
        kb_case_label(&nd->c);
        x = xo;
    }
    /* the last token: final norm and lm_head */
    const double *x_last = rs->v[(L - 1) * FV_COUNT + FV_X_OUT] + (n - 1) * H;
    dtensor *nf = step_buf(f, KB_F32, H);
    if (!nf) return -1;
    if (!(nd = node2(f, KB_OP_rmsnorm, "output_norm", (int)L, arg_rows(x, n - 1, 1, H), ref_src(x_last, 1, H),
                     arg(&f->out_norm), host_src(m->out_norm.data), arg(nf), rs->nf)))
        return ferr(f, "out of host memory");
    nd->c.n = 1, nd->c.k = H, nd->c.eps = d->eps;
    kb_case_label(&nd->c);
    gemm_in inl = {.x = nf, .ref = rs->nf, .rows = 1, .cols = H};
    return quantize(f, (int)L, "lm_head_quant", &inl) || gemm(f, (int)L, "lm_head_gemm", &f->output, &inl, logits, rs->logits);
}

/* ---- rows -------------------------------------------------------------------------------------- */
kb_forward_layer *kb_forward_layer_at(const kb_forward_result *res, const kb_model *m, int step, int layer) {
    return &res->layer[(int64_t)step * (m->d.layers + 2) + layer + 1];
}

void kb_forward_result_free(kb_forward_result *res) {
    free(res->layer);
    res->layer = NULL;
}
static void emit_row(fwd *f, const node *nd, kb_row *row) {
    if (f->replay) return;
    row->c = &nd->c;
    row->backend = nd->b->name;
    row->dev = nd->b->device();
    row->variant = nd->v;
    row->step = f->step;
    row->layer = nd->layer;
    snprintf(row->node, sizeof row->node, "%s", nd->name);
    row->bytes = kb_ops[nd->c.op]->bytes(&nd->c);
    row->flops = kb_ops[nd->c.op]->flops(&nd->c);
    for (int i = 0; i < f->h->n_reporters; i++) kb_report_row(f->h->reporters[i], &f->h->info, row);
}

/* The node's output 0 as values: decoded, or fp8 codes times their scales. */
static double *output_values(fwd *f, const node *nd, void **raw_out) {
    const kb_arg *o = &nd->args[nd->n_in];
    void *raw = malloc(o->view.bytes ? o->view.bytes : 1);
    double *v = malloc((size_t)(o->count > 0 ? o->count : 1) * sizeof *v);
    float *s = NULL;
    if (!raw || !v || download(f, raw, o->view)) goto fail;
    kb_decode(o->type, raw, v, o->count);
    if (nd->chain_quant) {
        const kb_arg *sa = &nd->args[nd->n_in + 1];
        if (!(s = malloc(sa->view.bytes)) || download(f, s, sa->view)) goto fail;
        for (int64_t i = 0; i < o->count; i++)
            v[i] *= s[kb_scale_index(nd->c.scale_mode, i / nd->c.k, i % nd->c.k, nd->c.k)];
        free(s);
    }
    *raw_out = raw;
    return v;
fail:
    free(raw);
    free(v);
    free(s);
    return NULL;
}

/* Count a backend error; the first one's message is kept for the run's summary. */
static void result_error(kb_forward_result *res, const char *what) {
    if (!res->errors++) snprintf(res->first_error, sizeof res->first_error, "%.*s", (int)sizeof res->first_error - 1, what);
}

static void chained(fwd *f, const node *nd) {
    kb_row row;
    memset(&row, 0, sizeof row);
    row.measure = "chained";
    void *raw = NULL;
    double *v = output_values(f, nd, &raw);
    if (!v) {
        row.verdict = KB_ERRORED;
        snprintf(row.reason, sizeof row.reason, "%.400s", f->err);
        result_error(f->res, f->err);
        emit_row(f, nd, &row);
        return;
    }
    const kb_arg *o = &nd->args[nd->n_in];
    /* metrics of the values (as f32 when scaled), against the reference, no tolerance */
    float *vf = malloc((size_t)o->count * sizeof *vf);
    const void *judged = raw;
    kb_dtype t = o->type;
    if (nd->chain_quant && vf) {
        for (int64_t i = 0; i < o->count; i++) vf[i] = (float)v[i];
        judged = vf;
        t = KB_F32;
    }
    kb_compute_metrics(t, judged, nd->chain_ref, NULL, o->count, NULL, &row.m);
    row.have_metrics = 1;
    row.output = kb_ops[nd->c.op]->name;
    row.hash = kb_fnv1a64(raw, o->view.bytes);
    row.verdict = KB_MEASURED;
    if (row.m.n_overflow) {
        snprintf(row.reason, sizeof row.reason, "%lld elements overflowed %s", (long long)row.m.n_overflow,
                 kb_dtype_name(o->type));
        f->res->overflow_nodes++;
    }
    snprintf(row.tol.formula, sizeof row.tol.formula, "chained: measured against the fp64 forward, no tolerance");
    kb_forward_layer *fl = kb_forward_layer_at(f->res, f->m, f->step, nd->layer);
    if (!f->replay && (!fl->min_cosine_node[0] || row.m.cosine < fl->min_cosine)) {
        fl->min_cosine = row.m.cosine;
        snprintf(fl->min_cosine_node, sizeof fl->min_cosine_node, "%s", nd->name);
    }
    if (!f->replay && f->res->drop_layer == -2 && row.m.cosine < f->cfg->threshold) {
        f->res->drop_layer = nd->layer;
        f->res->drop_cosine = row.m.cosine;
        snprintf(f->res->drop_node, sizeof f->res->drop_node, "%s", nd->name);
    }
    emit_row(f, nd, &row);
    free(vf);
    free(v);
    free(raw);
}

/* The device's bytes of a converted weight (its codes, or its scales), downloaded once and
 * kept where the host has room beside a margin (an f32 7B model is 30 GB); else
 * downloaded into `dst` for this check. Returns where they are, NULL on an error. */
static const void *device_weight(fwd *f, dweight *w, int scales, void *dst) {
    void **host = scales ? &w->host_s : &w->host_w;
    const dtensor *t = scales ? &w->s : &w->w;
    if (!*host && (double)kb_host_mem_available() > (double)t->bytes + 8.0 * 1073741824.0) {
        *host = malloc(t->bytes);
        if (*host && download(f, *host, view(t))) {
            free(*host);
            *host = NULL;
        }
    }
    if (*host) return *host;
    return download(f, dst, view(t)) ? NULL : dst;
}

/* Fill the isolated run's host inputs from their sources. A weight's host bytes are
 * borrowed from the node's weight cache, not copied: `borrowed` marks them (the caller
 * gives them back before freeing the case data). */
static int fill_inputs(fwd *f, node *nd, kb_case_data *d, const int32_t *positions, int *borrowed) {
    const kb_recipe *r = f->cfg->recipe;
    for (int i = 0; i < nd->n_in; i++) {
        const src *s = &nd->in[i];
        kb_tensor *t = &d->t[i];
        switch (s->kind) {
        case SRC_REF: kb_round_to(t->type, s->ref, t->host, t->count); break;
        case SRC_REF_Q:
        case SRC_REF_S: {
            float *x32 = malloc((size_t)(s->rows * s->cols) * sizeof *x32);
            if (!x32) return ferr(f, "out of host memory");
            kb_round_to(KB_F32, s->ref, x32, s->rows * s->cols);
            ref_quant_fp8_args qa = {s->rows, s->cols, KB_F32, KB_E4M3, r->x_scale, f->cfg->flush};
            if (s->kind == SRC_REF_Q) ref_quant_fp8(&qa, x32, NULL, t->host, NULL);
            else ref_quant_fp8(&qa, x32, t->host, NULL, NULL);
            free(x32);
            break;
        }
        case SRC_DEVICE: {
            const void *p = device_weight(f, s->dw, s->scales, t->host);
            if (!p) return -1;
            if (p != t->host) {
                free(t->host);
                t->host = (void *)p; /* read only: the reference reads it, nothing writes it */
                borrowed[i] = 1;
            }
            break;
        }
        case SRC_HOST: memcpy(t->host, s->host, t->bytes); break;
        case SRC_POS: memcpy(t->host, positions, t->bytes); break;
        }
    }
    return 0;
}

static void isolated(fwd *f, node *nd, const int32_t *positions) {
    kb_row row;
    memset(&row, 0, sizeof row);
    row.measure = "isolated";
    kb_case_data d;
    char msg[KB_MSG];
    kb_buf scratch[KB_MAX_ARGS] = {0};
    kb_arg args[KB_MAX_ARGS];
    void *state = NULL;
    int rc = kb_case_data_make(&d, &nd->c, 0, msg);
    if (rc != KB_OK) {
        row.verdict = KB_UNSUPPORTED;
        snprintf(row.reason, sizeof row.reason, "isolated check not run: %s", msg);
        emit_row(f, nd, &row);
        return;
    }
    int borrowed[KB_MAX_IN] = {0};
    if (fill_inputs(f, nd, &d, positions, borrowed)) {
        row.verdict = KB_ERRORED;
        snprintf(row.reason, sizeof row.reason, "%.400s", f->err);
        goto out;
    }
    const kb_op *op = kb_ops[nd->c.op];
    for (int i = 0; i < nd->n_in + nd->n_out; i++) {
        kb_tensor *t = &d.t[i];
        if (i < nd->n_in && nd->in[i].kind == SRC_DEVICE) { /* a weight stays where it is */
            args[i] = nd->args[i];
            continue;
        }
        if ((rc = nd->b->alloc(t->bytes, &scratch[i], msg)) != KB_OK) break;
        args[i] = (kb_arg){t->type, t->count, {scratch[i], 0, t->bytes}};
        if (i >= nd->n_in) kb_poison(t->type, t->host, t->count);
        if ((rc = nd->b->upload(args[i].view, t->host, msg)) != KB_OK) break;
    }
    if (rc == KB_OK) rc = nd->b->prepare(&nd->c, &nd->v, args, nd->n_in, nd->n_out, &state, msg);
    if (rc == KB_OK) rc = nd->b->enqueue(&state, 1, msg);
    if (rc == KB_OK) rc = nd->b->wait(msg);
    for (int o = 0; rc == KB_OK && o < nd->n_out; o++) rc = nd->b->download(d.t[nd->n_in + o].host, args[nd->n_in + o].view, msg);
    if (rc != KB_OK) {
        row.verdict = rc == KB_NOT_SUPPORTED ? KB_UNSUPPORTED : KB_ERRORED;
        snprintf(row.reason, sizeof row.reason, "isolated run: %s", msg);
        if (rc != KB_NOT_SUPPORTED) result_error(f->res, row.reason);
        goto out;
    }
    op->reference(&nd->c, d.t, d.ref);
    kb_judge(&d, nd->v.acc_unit_roundoff, &row);
    kb_forward_layer *fl = kb_forward_layer_at(f->res, f->m, f->step, nd->layer);
    if (!fl->max_node[0] || row.m.worst > fl->max_err_over_tol) {
        fl->max_err_over_tol = row.m.worst;
        snprintf(fl->max_node, sizeof fl->max_node, "%s", nd->name);
    }
    fl->isolated_fail |= row.verdict == KB_FAIL;
    if (row.verdict == KB_FAIL && !f->res->culprit_found) {
        f->res->culprit_found = 1;
        f->res->culprit_step = f->step;
        f->res->culprit_layer = nd->layer;
        snprintf(f->res->culprit_node, sizeof f->res->culprit_node, "%s", nd->name);
        snprintf(f->res->culprit_op, sizeof f->res->culprit_op, "%s", op->name);
        snprintf(f->res->culprit_reason, sizeof f->res->culprit_reason, "%s", row.reason);
    }
out:
    if (state) nd->b->release(state);
    for (int i = 0; i < KB_MAX_ARGS; i++)
        if (scratch[i]) nd->b->free(scratch[i]);
    emit_row(f, nd, &row);
    for (int i = 0; i < KB_MAX_IN; i++)
        if (borrowed[i]) d.t[i].host = NULL;
    kb_case_data_free(&d);
}

/* ---- logits --------------------------------------------------------------------------------------- */
static void logits_summary(fwd *f, const dtensor *logits, const kb_ref_step *rs, int s) {
    const int64_t V = f->m->d.vocab;
    kb_forward_result *res = f->res;
    void *raw = malloc(logits->bytes);
    double *g = malloc((size_t)V * sizeof *g);
    if (!raw || !g || download(f, raw, view(logits))) {
        result_error(res, "the logits could not be downloaded");
        free(raw);
        free(g);
        return;
    }
    kb_decode(logits->type, raw, g, V);
    res->logits_hash[s] = kb_fnv1a64(raw, logits->bytes);
    if (!f->replay && s + 1 > res->steps_done) res->steps_done = s + 1;
    if (f->replay) {
        free(raw);
        free(g);
        return;
    }
    const double *r = rs->logits;
    int am = 0;
    double sg = 0, sr = 0, sgg = 0, srr = 0, sgr = 0, mx = 0;
    for (int64_t i = 0; i < V; i++) {
        if (g[i] > g[am] || isnan(g[am])) am = (int)i;
        sg += g[i], sr += r[i], sgg += g[i] * g[i], srr += r[i] * r[i], sgr += g[i] * r[i];
        if (fabs(g[i] - r[i]) > mx || isnan(g[i])) mx = fabs(g[i] - r[i]);
    }
    const double cov = sgr - sg * sr / (double)V, vg = sgg - sg * sg / (double)V, vr = srr - sr * sr / (double)V;
    res->argmax[s] = am;
    res->ref_argmax[s] = rs->argmax;
    res->pearson[s] = vg > 0 && vr > 0 ? cov / sqrt(vg * vr) : NAN;
    res->cosine[s] = sgg > 0 && srr > 0 ? sgr / sqrt(sgg * srr) : NAN;
    res->max_abs[s] = mx;
    res->fit_a[s] = vr > 0 ? cov / vr : NAN; /* least squares g = a r + b */
    res->fit_b[s] = (sg - res->fit_a[s] * sr) / (double)V;
    /* top-5 overlap */
    int tg[5], tr[5];
    for (int k = 0; k < 5; k++) {
        tg[k] = tr[k] = -1;
        for (int64_t i = 0; i < V; i++) {
            int taken_g = 0, taken_r = 0;
            for (int j = 0; j < k; j++) taken_g |= tg[j] == i, taken_r |= tr[j] == i;
            if (!taken_g && (tg[k] < 0 || g[i] > g[tg[k]])) tg[k] = (int)i;
            if (!taken_r && (tr[k] < 0 || r[i] > r[tr[k]])) tr[k] = (int)i;
        }
    }
    int overlap = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) overlap += tg[a] == tr[b];
    res->top5[s] = overlap;
    free(raw);
    free(g);
}

/* ---- the run ---------------------------------------------------------------------------------------- */

static void release_step(fwd *f) {
    for (int i = 0; i < f->n_nodes; i++)
        if (f->nodes[i].state) f->nodes[i].b->release(f->nodes[i].state);
    for (int i = 0; i < f->n_step_bufs; i++) dfree(f, &f->step_bufs[i]);
    f->n_nodes = f->n_step_bufs = 0;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median device time of the step's sequence, replayed (recorded once where the backend
 * can). The KV cache rows it rewrites get the same values every time. */
static double time_step(fwd *f, void **states, int n) {
    char msg[KB_MSG];
    void *seq = NULL;
    void *const *run = states;
    int nrun = n;
    if (f->b->record && f->b->record(states, n, &seq, msg) == KB_OK) {
        run = &seq;
        nrun = 1;
    }
    const int reps = f->cfg->reps > 0 ? f->cfg->reps : 10;
    double *t = malloc(sizeof(double) * (size_t)reps), sec = 0;
    int got = 0;
    if (t && f->b->run_timed(run, nrun, 0, &sec, msg) == KB_OK) /* warm-up */
        for (; got < reps; got++)
            if (f->b->run_timed(run, nrun, 0, &t[got], msg) != KB_OK) break;
    double med = 0;
    if (got > 0) {
        qsort(t, (size_t)got, sizeof *t, cmp_d);
        med = got % 2 ? t[got / 2] : 0.5 * (t[got / 2 - 1] + t[got / 2]);
    }
    if (seq) f->b->release(seq);
    free(t);
    return med;
}

static int run_backend(fwd *f, const kb_ref_forward *rf, const kb_ref_step *steps, int n_steps) {
    char msg[KB_MSG];
    const int say = f->cfg->progress && !f->replay;
    double t0 = kb_now_s();
    if (load(f)) return -1;
    if (say) fprintf(stderr, "forward: weights loaded and converted in %.1f s\n", kb_now_s() - t0);
    dtensor ids = {0}, pos = {0}, logits = {0};
    const kb_dtype lo = f->cfg->recipe->fp8 ? f->cfg->recipe->gemm_out : KB_F32;
    int failed = dalloc(f, &ids, KB_I32, KB_MAX_TOKENS) || dalloc(f, &pos, KB_I32, KB_MAX_TOKENS) ||
                 dalloc(f, &logits, lo, f->m->d.vocab);
    for (int s = 0; s < n_steps && !failed; s++) {
        const kb_ref_step *rs = &steps[s];
        f->step = s;
        if (kb_harness_stopped()) {
            failed = ferr(f, "stopped by signal %d before step %d", kb_harness_stopped(), s);
            break;
        }
        int32_t positions[KB_MAX_TOKENS];
        for (int i = 0; i < rs->n; i++) positions[i] = rs->pos0 + i;
        dtensor ids_n = {ids.buf, KB_I32, rs->n, (uint64_t)rs->n * 4}, pos_n = {pos.buf, KB_I32, rs->n, (uint64_t)rs->n * 4};
        void **states = NULL;
        if (upload(f, &ids_n, rs->ids) || upload(f, &pos_n, positions) || build_step(f, rf, rs, &ids_n, &pos_n, &logits)) {
            failed = -1;
        } else if (!(states = malloc(sizeof(void *) * (size_t)f->n_nodes))) {
            failed = ferr(f, "out of host memory");
        } else {
            for (int i = 0; i < f->n_nodes && !failed; i++) {
                failed = prepare_node(f, &f->nodes[i]);
                states[i] = f->nodes[i].state;
            }
        }
        if (!failed) {
            if (f->cfg->progress && !f->replay)
                fprintf(stderr, "forward: step %d (%d token%s at position %d): %d nodes, one enqueue\n", s, rs->n,
                        rs->n > 1 ? "s" : "", rs->pos0, f->n_nodes);
            t0 = kb_now_s();
            int rc = f->b->enqueue(states, f->n_nodes, msg);
            if (rc == KB_OK) rc = f->b->wait(msg);
            if (rc != KB_OK) failed = ferr(f, "step %d on %s: %s", s, f->b->name, msg);
            if (say) fprintf(stderr, "forward: step %d ran in %.2f s (wall, with the first launches)\n", s, kb_now_s() - t0);
        }
        if (!failed) {
            logits_summary(f, &logits, rs, s);
            if (!f->replay) {
                t0 = kb_now_s();
                for (int i = 0; i < f->n_nodes; i++)
                    if (f->nodes[i].chain_ref) chained(f, &f->nodes[i]);
                if (say) fprintf(stderr, "forward: step %d: chained rows in %.1f s\n", s, kb_now_s() - t0);
                if (f->cfg->isolated) {
                    if (say) fprintf(stderr, "forward: step %d: isolated checks\n", s);
                    t0 = kb_now_s();
                    double op_s[KB_OP_COUNT] = {0};
                    for (int i = 0; i < f->n_nodes && !kb_harness_stopped(); i++) {
                        const double tn = kb_now_s();
                        isolated(f, &f->nodes[i], positions);
                        op_s[f->nodes[i].c.op] += kb_now_s() - tn;
                    }
                    if (say) {
                        fprintf(stderr, "forward: step %d: isolated checks took %.1f s:", s, kb_now_s() - t0);
                        for (int op = 0; op < KB_OP_COUNT; op++)
                            if (op_s[op] >= 0.05) fprintf(stderr, " %s %.1f s", kb_op_name((kb_op_id)op), op_s[op]);
                        fputc('\n', stderr);
                    }
                }
                if (f->cfg->timing) {
                    const double t = time_step(f, states, f->n_nodes);
                    if (s == 0) f->res->prompt_s = t;
                    else if (f->res->decode_s == 0 || t < f->res->decode_s) f->res->decode_s = t; /* fastest decode step */
                }
            }
        }
        free(states);
        release_step(f);
    }
    dfree(f, &ids);
    dfree(f, &pos);
    dfree(f, &logits);
    return failed ? -1 : 0;
}

/* The bytes a decode token reads: every converted weight once (the embedding: one row). */
static double decode_weight_bytes(const kb_model *m, const kb_recipe *r) {
    double b = (double)m->tok_embd.bytes / (double)m->d.vocab + (double)m->out_norm.bytes;
    const kb_weight *mats[7];
    for (int64_t l = 0; l <= m->d.layers; l++) {
        int nm = 0;
        if (l < m->d.layers) {
            const kb_layer_weights *w = &m->layer[l];
            b += (double)(w->attn_norm.bytes + w->ffn_norm.bytes + w->bq.bytes + w->bk.bytes + w->bv.bytes);
            const kb_weight *all[7] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->wgate, &w->wup, &w->wdown};
            memcpy(mats, all, sizeof all);
            nm = 7;
        } else {
            mats[0] = &m->output;
            nm = 1;
        }
        for (int i = 0; i < nm; i++) {
            const double elems = (double)mats[i]->rows * (double)mats[i]->cols;
            b += r->fp8 ? elems + 4.0 * (double)kb_scale_count(r->w_scale, mats[i]->rows, mats[i]->cols) : 4.0 * elems;
        }
    }
    return b;
}

struct kb_forward_reference {
    kb_ref_forward rf;
    kb_ref_step *steps;
    int n_steps;
    const kb_model *m;
    int32_t tokens[KB_MAX_TOKENS];
    int n_tokens;
};

void kb_forward_reference_free(kb_forward_reference *r) {
    if (!r) return;
    for (int s = 0; s < r->n_steps; s++) kb_ref_step_free(&r->rf, &r->steps[s]);
    free(r->steps);
    kb_ref_forward_free(&r->rf);
    free(r);
}

const kb_ref_step *kb_forward_reference_step(const kb_forward_reference *r, int step) {
    return step >= 0 && step < r->n_steps ? &r->steps[step] : NULL;
}

kb_forward_reference *kb_forward_reference_make(const kb_forward_cfg *cfg, int *rc, char *msg, size_t n) {
    const kb_model *m = cfg->model;
    const int n_steps = 1 + cfg->steps, max_pos = cfg->n_tokens + cfg->steps;
    *rc = KB_EXIT_ERROR;
    if (max_pos > m->d.context) {
        *rc = KB_EXIT_USAGE;
        snprintf(msg, n, "%d positions exceed the model's context (%lld)", max_pos, (long long)m->d.context);
        return NULL;
    }
    kb_forward_reference *r = calloc(1, sizeof *r);
    if (!r || !(r->steps = calloc((size_t)n_steps, sizeof *r->steps))) {
        free(r);
        snprintf(msg, n, "out of host memory");
        return NULL;
    }
    if (kb_ref_forward_init(&r->rf, m, max_pos, msg, n)) {
        free(r->steps);
        free(r);
        return NULL;
    }
    r->m = m;
    r->n_tokens = cfg->n_tokens;
    memcpy(r->tokens, cfg->tokens, sizeof(int32_t) * (size_t)cfg->n_tokens);
    const double t0 = kb_now_s();
    for (int s = 0; s < n_steps; s++) {
        const int nt = s == 0 ? cfg->n_tokens : 1, pos0 = s == 0 ? 0 : cfg->n_tokens + s - 1;
        const int32_t *ids = s == 0 ? r->tokens : &r->steps[s - 1].argmax;
        if (kb_harness_stopped()) {
            *rc = 128 + kb_harness_stopped();
            snprintf(msg, n, "stopped by signal %d in the reference", kb_harness_stopped());
            kb_forward_reference_free(r);
            return NULL;
        }
        if (cfg->progress) fprintf(stderr, "forward: fp64 reference, step %d of %d\n", s + 1, n_steps);
        if (kb_ref_forward_step(&r->rf, ids, nt, pos0, &r->steps[s], msg, n)) {
            kb_forward_reference_free(r);
            return NULL;
        }
        r->n_steps = s + 1;
    }
    if (cfg->progress) fprintf(stderr, "forward: reference took %.1f s\n", kb_now_s() - t0);
    *rc = KB_EXIT_PASS;
    return r;
}

int kb_forward_run(const kb_forward_cfg *cfg, kb_harness *h, const kb_forward_reference *shared,
                   kb_forward_result *res) {
    memset(res, 0, sizeof *res);
    res->drop_layer = -2;
    res->layer = calloc((size_t)((1 + cfg->steps) * (cfg->model->d.layers + 2)), sizeof *res->layer);
    if (!res->layer) return KB_EXIT_ERROR;
    res->deterministic = -1;
    const kb_model *m = cfg->model;
    const int n_steps = 1 + cfg->steps;
    char msg[512];
    fwd f = {.cfg = cfg, .m = m, .h = h, .res = res, .b = cfg->backend, .gb = cfg->gemm, .max_pos = cfg->n_tokens + cfg->steps};
    kb_forward_reference *own = NULL;
    if (shared && (shared->m != m || shared->n_steps != n_steps || shared->n_tokens != cfg->n_tokens ||
                   memcmp(shared->tokens, cfg->tokens, sizeof(int32_t) * (size_t)cfg->n_tokens))) {
        fprintf(stderr, "kbench forward: the shared reference is of another model, prompt or step count\n");
        return KB_EXIT_ERROR;
    }
    if (!shared) {
        int rc;
        if (!(own = kb_forward_reference_make(cfg, &rc, msg, sizeof msg))) {
            fprintf(stderr, "kbench forward: %s\n", msg);
            return rc;
        }
        shared = own;
    }
    const kb_ref_forward *rfp = &shared->rf;
    const kb_ref_step *steps = shared->steps;
    res->steps = n_steps;

    int rc = run_backend(&f, rfp, steps, n_steps);
    if (rc) {
        fprintf(stderr, "kbench forward: %s\n", f.err);
        result_error(res, f.err);
    }
    unload(&f, 1);
    const kb_device_info *dev = f.b->device();
    if (dev->bw > 0) res->floor_s = decode_weight_bytes(m, cfg->recipe) / dev->bw;
    /* determinism: the whole backend run again, each on a fresh context */
    if (rc == 0 && cfg->repeat > 1) {
        uint64_t first[64];
        memcpy(first, res->logits_hash, sizeof first);
        res->deterministic = 1;
        f.replay = 1;
        for (int r = 1; r < cfg->repeat && rc == 0; r++) {
            if (cfg->progress) fprintf(stderr, "forward: repeat %d of %d on a fresh %s context\n", r + 1, cfg->repeat, f.b->name);
            char why[KB_MSG];
            if (f.b->reset(why) != KB_OK) {
                fprintf(stderr, "kbench forward: reset: %s\n", why);
                result_error(res, why);
                break;
            }
            rc = run_backend(&f, rfp, steps, n_steps);
            unload(&f, rc == 0);
            for (int s = 0; s < n_steps; s++)
                if (res->logits_hash[s] != first[s]) res->deterministic = 0;
        }
        memcpy(res->logits_hash, first, sizeof first);
        if (rc) {
            fprintf(stderr, "kbench forward: repeat: %s\n", f.err);
            result_error(res, f.err);
            res->deterministic = -1;
        }
    }
    kb_forward_reference_free(own);
    free(f.nodes);
    free(f.step_bufs);
    if (kb_harness_stopped()) return 128 + kb_harness_stopped(); /* every finished row is written */
    if (res->errors) return KB_EXIT_ERROR;
    return res->culprit_found ? KB_EXIT_FAIL : KB_EXIT_PASS;
}
