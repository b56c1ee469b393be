/* falsify.c - `kbench falsify`: stages A-E of a CPU-vs-GPU divergence hunt, each a
 * hypothesis that can be refuted, with its bound, the numbers and a verdict
 * (docs/FALSIFY.md):
 *   A determinism        the forward 5 times on fresh contexts (and after a faulting
 *                        case where the backend has one): logits bit-identical?
 *   B per-layer parity   the forward pass: does any op exceed its tolerance?
 *   C embedding          the prompt's ids through the backend's embedding: bit-exact
 *                        against the reference's decode of the same blocks?
 *   D pre-attention norm every layer's input norm on the reference's inputs: within
 *                        1 ulp of the fp64 value rounded to f32 (else within the op's
 *                        bound)? and what eps 1e-5 would change
 *   E Q/K/V FP8 GEMM     layer 0's real normed input through Q/K/V at each recipe, each
 *                        algorithm, FAST_ACCUM off/on: the kernel's own error against fp64
 *                        on the same FP8 operands, the recipe's quantization error
 *                        against the unquantized product. */
#include "bench/forward.h"
#include "bench/forward_ref.h"
#include "bench/metrics.h"
#include "ref/ref.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum { V_REFUTED = 0, V_CONFIRMED, V_INCONCLUSIVE } stage_verdict;
static const char *verdict_name(stage_verdict v) {
    return v == V_REFUTED ? "refuted" : v == V_CONFIRMED ? "confirmed" : "inconclusive";
}

typedef struct {
    char id;
    const char *title;
    const char *hypothesis;
    char bound[512];
    char measured[8192];
    size_t mlen;
    stage_verdict verdict;
    char why[1024];
} stage;

static void measured(stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void measured(stage *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (s->mlen < sizeof s->measured) s->mlen += (size_t)vsnprintf(s->measured + s->mlen, sizeof s->measured - s->mlen, fmt, ap);
    va_end(ap);
    if (s->mlen >= sizeof s->measured) s->mlen = sizeof s->measured - 1;
}

typedef struct {
    kb_forward_cfg cfg;   /* model, recipe, backends, tokens */
    const char *model_spec, *recipe_name, *backend_name, *gemm_name;
    uint64_t seed;
    char command[2048];   /* to reproduce */
    kb_forward_reference *ref; /* the reference forward (prompt and decode steps), made once */
    const kb_ref_step *prompt;  /* its prompt step */
} ctx;

static int reference(ctx *x) {
    if (x->ref) return 0;
    char msg[256];
    int rc;
    if (!(x->ref = kb_forward_reference_make(&x->cfg, &rc, msg, sizeof msg))) {
        fprintf(stderr, "kbench falsify: %s\n", msg);
        return -1;
    }
    x->prompt = kb_forward_reference_step(x->ref, 0);
    return 0;
}

/* One op on the backend, inputs from host buffers, outputs back: the isolated run of
 * the forward pass without its graph. v: the variant (NULL: the first non-test one). */
static int run_op(const kb_backend *b, const kb_options *opt, const kb_case *c, const kb_variant *v, kb_case_data *d,
                  kb_variant *used, char *msg) {
    const kb_op *op = kb_ops[c->op];
    kb_buf bufs[KB_MAX_ARGS] = {0};
    kb_arg args[KB_MAX_ARGS];
    kb_variant vars[512];
    void *state = NULL;
    int rc = KB_OK;
    if (!v) {
        const int nv = b->variants(c, opt, vars, 512, msg);
        for (int i = 0; i < nv && !v; i++)
            if (!vars[i].test_only) v = &vars[i];
        if (!v) return kb_fail(msg, KB_NOT_SUPPORTED, "%s has no %s variant", b->name, op->name);
    }
    *used = *v;
    for (int i = 0; i < op->n_in + op->n_out && rc == KB_OK; i++) {
        kb_tensor *t = &d->t[i];
        if ((rc = b->alloc(t->bytes, &bufs[i], msg)) != KB_OK) break;
        args[i] = (kb_arg){t->type, t->count, {bufs[i], 0, t->bytes}};
        if (i >= op->n_in) kb_poison(t->type, t->host, t->count);
        rc = b->upload(args[i].view, t->host, msg);
    }
    if (rc == KB_OK) rc = b->prepare(c, v, args, op->n_in, op->n_out, &state, msg);
    if (rc == KB_OK) rc = b->enqueue(&state, 1, msg);
    if (rc == KB_OK) rc = b->wait(msg);
    for (int o = 0; rc == KB_OK && o < op->n_out; o++) rc = b->download(d->t[op->n_in + o].host, args[op->n_in + o].view, msg);
    if (state) b->release(state);
    if (rc == KB_ERROR_FATAL) {
        char why[KB_MSG];
        b->reset(why); /* every buffer went with the context */
        return rc;
    }
    for (int i = 0; i < KB_MAX_ARGS; i++)
        if (bufs[i]) b->free(bufs[i]);
    return rc;
}

/* The test-only variant --plant puts at (layer, node), or NULL. */
static const char *plant_at(const ctx *x, int layer, const char *node) {
    for (int i = 0; i < x->cfg.n_plants; i++)
        if (x->cfg.plants[i].layer == layer && !strcmp(x->cfg.plants[i].node, node)) return x->cfg.plants[i].variant;
    return NULL;
}

/* run_op with the planted variant when there is one, else the backend's first. */
static int run_planted(const ctx *x, const kb_backend *b, int layer, const char *node, const kb_case *c, kb_case_data *d,
                       kb_variant *used, char *msg) {
    const char *plant = plant_at(x, layer, node);
    if (!plant) return run_op(b, &x->cfg.opt, c, NULL, d, used, msg);
    kb_options opt = x->cfg.opt;
    opt.test_variants = 1;
    kb_variant vars[512];
    const int nv = b->variants(c, &opt, vars, 512, msg);
    for (int i = 0; i < nv; i++)
        if (!strcmp(vars[i].name, plant)) return run_op(b, &opt, c, &vars[i], d, used, msg);
    return kb_fail(msg, KB_ERROR, "--plant: %s has no variant '%s' for %s", b->name, plant, kb_op_name(c->op));
}

/* ---- A: determinism ---------------------------------------------------------------------------- */
static void stage_a(ctx *x, stage *s) {
    s->hypothesis = "the backend's forward pass is not deterministic: the same inputs give different logits run to run";
    snprintf(s->bound, sizeof s->bound,
             "bit-identical logits (FNV-1a 64 of their bytes) across 5 runs, each on a fresh context (a fresh worker "
             "process on cuda), and again after a deliberately faulting case");
    kb_forward_cfg cfg = x->cfg;
    cfg.repeat = 5;
    cfg.isolated = 0;
    cfg.timing = 0;
    cfg.check_weights = 0;
    kb_harness h;
    memset(&h, 0, sizeof h);
    kb_forward_result r;
    memset(&r, 0, sizeof r);
    r.deterministic = -1;
    int rc = reference(x) ? KB_EXIT_ERROR : kb_forward_run(&cfg, &h, x->ref, &r);
    if (rc == KB_EXIT_ERROR || r.deterministic < 0) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "the runs did not complete (backend errors: %d; the first: %.700s)", r.errors,
                 r.first_error[0] ? r.first_error : "not recorded");
        kb_forward_result_free(&r);
        return;
    }
    measured(s, "- %d runs x %d steps: logits %s\n", cfg.repeat, r.steps, r.deterministic ? "bit-identical" : "DIFFER");
    for (int i = 0; i < r.steps; i++) measured(s, "  - step %d: FNV-1a %016llx\n", i, (unsigned long long)r.logits_hash[i]);
    uint64_t first[64];
    memcpy(first, r.logits_hash, sizeof first);
    const int det = r.deterministic;
    kb_forward_result_free(&r);
    /* a faulting case first, on the same backend, then the forward again */
    kb_case c;
    kb_case_init(&c, KB_OP_rmsnorm);
    c.n = 2, c.k = 256;
    kb_case_label(&c);
    kb_options opt = x->cfg.opt;
    opt.test_variants = 1;
    kb_variant vars[64], *fault = NULL;
    char msg[KB_MSG];
    const int nv = x->cfg.backend->variants(&c, &opt, vars, 64, msg);
    for (int i = 0; i < nv; i++)
        if (!strcmp(vars[i].name, "test_fault")) fault = &vars[i];
    int after_fault_ok = -1, faulted = 0;
    if (fault) {
        kb_case_data d;
        kb_variant used;
        if (kb_case_data_make(&d, &c, 1, msg) == KB_OK) {
            const int frc = run_op(x->cfg.backend, &opt, &c, fault, &d, &used, msg);
            measured(s, "- a faulting case (%s %s %s): %s\n", x->cfg.backend->name, kb_op_name(c.op), fault->name,
                     frc == KB_OK ? "did not fault" : msg);
            faulted = frc == KB_ERROR || frc == KB_ERROR_FATAL;
            kb_case_data_free(&d);
        }
    }
    if (fault && !faulted) {
        measured(s, "- the forward after a fault: not run, the faulting case did not fault\n");
    } else if (fault) {
        cfg.repeat = 1;
        rc = kb_forward_run(&cfg, &h, x->ref, &r);
        after_fault_ok = rc != KB_EXIT_ERROR;
        int same = after_fault_ok;
        for (int i = 0; after_fault_ok && i < r.steps; i++) same &= r.logits_hash[i] == first[i];
        measured(s, "- the forward after the fault: %s\n",
                 !after_fault_ok ? "did not complete" : same ? "bit-identical to the runs before" : "DIFFERENT logits");
        after_fault_ok = same;
        kb_forward_result_free(&r);
    } else {
        measured(s, "- %s has no test_fault variant: the after-a-fault check does not apply here\n", x->cfg.backend->name);
    }
    if (det && fault && !faulted) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "every run gave the same logit bits, but the check after a faulting case did "
                                        "not run: the test-only fault did not fault");
    } else if (!det || after_fault_ok == 0) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why, "%s", !det ? "the logits differ between runs on fresh contexts"
                                                   : "the logits after a faulting case differ (a poisoned context)");
    } else {
        s->verdict = V_REFUTED;
        snprintf(s->why, sizeof s->why, "every run gave the same logit bits%s",
                 after_fault_ok == 1 ? ", the run after a faulting case too" : "");
    }
}

/* ---- B: per-layer parity ----------------------------------------------------------------------------- */
static void stage_b(ctx *x, stage *s, kb_harness *h) {
    s->hypothesis = "an op of the decoder, on this backend, exceeds its tolerance at some layer (a kernel bug)";
    snprintf(s->bound, sizeof s->bound,
             "each op's tolerance (results/README.md: output unit roundoff + accumulation length x accumulator "
             "roundoff), on the reference's inputs (isolated); the chained cosine threshold %g marks where drift shows",
             x->cfg.threshold);
    kb_forward_cfg cfg = x->cfg;
    cfg.repeat = 1;
    kb_forward_result r;
    memset(&r, 0, sizeof r);
    const int rc = reference(x) ? KB_EXIT_ERROR : kb_forward_run(&cfg, h, x->ref, &r);
    if (rc == KB_EXIT_ERROR || rc == KB_EXIT_USAGE) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "the forward pass did not complete (%d backend errors; the first: %.700s)", r.errors,
                 r.first_error[0] ? r.first_error : "not recorded");
        kb_forward_result_free(&r);
        return;
    }
    for (int i = 0; i < r.steps; i++)
        measured(s, "- step %d logits: argmax %d vs reference %d, pearson %.6f, backend = %.4f x ref + %.4g\n", i,
                 r.argmax[i], r.ref_argmax[i], r.pearson[i], r.fit_a[i], r.fit_b[i]);
    if (r.drop_layer > -2)
        measured(s, "- chained cosine first below %g: layer %d, %s (%.6f)\n", cfg.threshold, r.drop_layer, r.drop_node,
                 r.drop_cosine);
    else
        measured(s, "- chained cosine >= %g at every node of every layer\n", cfg.threshold);
    if (r.overflow_nodes) measured(s, "- %d node outputs overflowed their type\n", r.overflow_nodes);
    if (r.culprit_found) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why, "%s (%s) at step %d, layer %d exceeds its tolerance: %s", r.culprit_node,
                 r.culprit_op, r.culprit_step, r.culprit_layer, r.culprit_reason);
    } else {
        s->verdict = V_REFUTED;
        snprintf(s->why, sizeof s->why, "no op exceeds its tolerance: the drift is accumulated rounding%s",
                 r.drop_layer > -2 ? " (it shows in the chained cosine, see above)" : "");
    }
    kb_forward_result_free(&r);
}

/* ---- C: embedding ------------------------------------------------------------------------------------ */
static void stage_c(ctx *x, stage *s) {
    const kb_model *m = x->cfg.model;
    s->hypothesis = "the backend's embedding lookup returns other values than the model's table holds";
    snprintf(s->bound, sizeof s->bound,
             "bit-exact: every looked-up value equals the reference's decode of the same %s blocks (ggml's "
             "dequantize_row definition, exact in float); the op's tolerance (2 u32 of |d*sc*q| + |dmin*m|) shown too",
             kb_dtype_name(m->tok_embd.type));
    kb_case c;
    kb_case_init(&c, KB_OP_embed);
    c.m = m->d.vocab, c.n = x->cfg.n_tokens, c.k = m->d.hidden, c.a_type = m->tok_embd.type;
    kb_case_label(&c);
    kb_case_data d;
    char msg[KB_MSG];
    kb_variant used;
    if (kb_case_data_make(&d, &c, 0, msg) != KB_OK) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "%s", msg);
        return;
    }
    memcpy(d.t[0].host, m->tok_embd.data, d.t[0].bytes);
    memcpy(d.t[1].host, x->cfg.tokens, d.t[1].bytes);
    const int rc = run_planted(x, x->cfg.backend, -1, "embed", &c, &d, &used, msg);
    if (rc != KB_OK) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "%s", msg);
        kb_case_data_free(&d);
        return;
    }
    kb_ops[KB_OP_embed]->reference(&c, d.t, d.ref);
    const float *got = d.t[2].host;
    int64_t differ = 0, first = -1;
    double max_ulp = 0;
    for (int64_t i = 0; i < c.n * c.k; i++) {
        const float want = (float)d.ref[0].ref[i];
        if (memcmp(&want, &got[i], 4) != 0) {
            differ++;
            if (first < 0) first = i;
            const double ulp = fabs((double)got[i] - want) / (nextafterf(fabsf(want), INFINITY) - fabsf(want));
            if (ulp > max_ulp) max_ulp = ulp;
        }
    }
    kb_row row;
    memset(&row, 0, sizeof row);
    kb_judge(&d, used.acc_unit_roundoff, &row);
    measured(s, "- %d ids (", (int)c.n);
    for (int i = 0; i < c.n && i < 24; i++) measured(s, "%s%d", i ? "," : "", x->cfg.tokens[i]);
    measured(s, "%s) on %s/%s: %lld of %lld values differ from the reference's bits (max %.0f ulp); against the op's "
                "tolerance: %s, worst err/tol %.3f\n",
             c.n > 24 ? ",..." : "", x->cfg.backend->name, used.name, (long long)differ, (long long)(c.n * c.k), max_ulp,
             kb_verdict_name(row.verdict), row.m.worst);
    if (differ) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why, "%lld embedding values differ from the table's (first: token %d, channel %lld; "
                 "%s the op's tolerance)", (long long)differ, x->cfg.tokens[first / c.k], (long long)(first % c.k),
                 row.verdict == KB_PASS ? "within" : "BEYOND");
    } else {
        s->verdict = V_REFUTED;
        snprintf(s->why, sizeof s->why, "every looked-up value is bit-exact");
    }
    kb_case_data_free(&d);
}

/* ---- D: pre-attention RMSNorm ------------------------------------------------------------------------- */
static void stage_d(ctx *x, stage *s) {
    const kb_model *m = x->cfg.model;
    const kb_model_dims *dm = &m->d;
    s->hypothesis = "the backend's pre-attention RMSNorm differs from the model's definition (e.g. another eps)";
    snprintf(s->bound, sizeof s->bound,
             "within 1 ulp of float32 per element against the fp64 reference rounded to f32, eps %.9g read from the "
             "model on both sides; where a float32 implementation cannot promise 1 ulp (its sum of K squares rounds), "
             "the op's bound (sqrt(K) u_acc + 6 u32)|y| decides",
             dm->eps);
    if (reference(x)) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "the reference forward failed");
        return;
    }
    const int64_t n = x->cfg.n_tokens, H = dm->hidden;
    int beyond_tol = 0, beyond_ulp = 0, eps_like = -1;
    double worst_ulp = 0;
    for (int64_t l = 0; l < dm->layers; l++) {
        kb_case c;
        kb_case_init(&c, KB_OP_rmsnorm);
        c.n = n, c.k = H, c.eps = dm->eps;
        kb_case_label(&c);
        kb_case_data d;
        char msg[KB_MSG];
        kb_variant used;
        if (kb_case_data_make(&d, &c, 0, msg) != KB_OK) continue;
        kb_round_to(KB_F32, x->prompt->v[l * FV_COUNT + FV_X_IN], d.t[0].host, n * H);
        memcpy(d.t[1].host, m->layer[l].attn_norm.data, d.t[1].bytes);
        if (run_planted(x, x->cfg.backend, (int)l, "attn_norm", &c, &d, &used, msg) != KB_OK) {
            measured(s, "- layer %lld: %s\n", (long long)l, msg);
            kb_case_data_free(&d);
            continue;
        }
        kb_ops[KB_OP_rmsnorm]->reference(&c, d.t, d.ref);
        kb_row row;
        memset(&row, 0, sizeof row);
        kb_judge(&d, used.acc_unit_roundoff, &row);
        /* ulps against the f32 rounding of the reference, and distance to an eps-1e-5 reference */
        const float *y = d.t[2].host;
        double max_ulp = 0, err_true = 0, err_1e5 = 0, move = 0, ref2 = 0;
        double *y5 = malloc(sizeof(double) * (size_t)(n * H)), *xd = malloc(sizeof(double) * (size_t)(n * H)),
               *wd = malloc(sizeof(double) * (size_t)H);
        kb_decode(KB_F32, d.t[0].host, xd, n * H);
        kb_decode(KB_F32, d.t[1].host, wd, H);
        ref_rmsnorm(n, H, 1e-5, xd, wd, y5, NULL);
        for (int64_t i = 0; i < n * H; i++) {
            const float want = (float)d.ref[0].ref[i];
            const double spacing = nextafterf(fabsf(want), INFINITY) - fabsf(want);
            const double ulp = fabs((double)y[i] - (double)want) / spacing;
            if (ulp > max_ulp) max_ulp = ulp;
            err_true += (y[i] - d.ref[0].ref[i]) * (y[i] - d.ref[0].ref[i]);
            err_1e5 += (y[i] - y5[i]) * (y[i] - y5[i]);
            move += (y5[i] - d.ref[0].ref[i]) * (y5[i] - d.ref[0].ref[i]);
            ref2 += d.ref[0].ref[i] * d.ref[0].ref[i];
        }
        /* Where eps 1e-5 moves the output by less than the backend's own rounding (a
         * large mean square makes eps vanish, as massive activations do), "nearer" is
         * noise: only a shift at least twice the nearer distance (in L2) tells. */
        const int resolvable = move > 4.0 * (err_1e5 < err_true ? err_1e5 : err_true);
        measured(s, "- layer %lld (%s): max %.1f ulp, err/tol %.3f (%s); eps 1e-5 would move it by rel_l2 %.3g; %s\n",
                 (long long)l, used.name, max_ulp, row.m.worst, kb_verdict_name(row.verdict), sqrt(move / ref2),
                 !resolvable ? "below the backend's rounding: eps not resolvable here"
                 : err_1e5 < err_true ? "the backend sits NEARER eps 1e-5 than the file's eps"
                                      : "the backend sits at the file's eps");
        if (resolvable && err_1e5 < err_true && eps_like < 0 && fabs(dm->eps - 1e-5) > 1e-12) eps_like = (int)l;
        beyond_tol |= row.verdict != KB_PASS;
        beyond_ulp |= max_ulp > 1.0;
        if (max_ulp > worst_ulp) worst_ulp = max_ulp;
        free(y5);
        free(xd);
        free(wd);
        kb_case_data_free(&d);
    }
    if (beyond_tol) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why, "a layer's norm exceeds the op's tolerance%s",
                 eps_like >= 0 ? " and sits nearer the eps-1e-5 output: the eps bug class" : "");
    } else if (eps_like >= 0) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why, "layer %d's output is nearer an eps of 1e-5 than the file's %g", eps_like, dm->eps);
    } else {
        s->verdict = V_REFUTED;
        snprintf(s->why, sizeof s->why, "every layer within %s (max %.1f ulp)",
                 beyond_ulp ? "the op's tolerance (not 1 ulp: a float sum of squares)" : "1 ulp", worst_ulp);
    }
}

/* ---- E: the Q/K/V FP8 GEMM ------------------------------------------------------------------------------ */
typedef struct {
    double rms_rel;       /* rms of |err| / max(|want|, rms(want)): small outputs judged on the output's scale */
    double max_over_mag;  /* max |err| / sum|w x|: the error against the dot product's terms */
    double frac_over_fmt; /* elements beyond the FP8 format bound (2 u_fp8 of sum|w x|) */
} rel_stats;

/* Errors of got against want; mag: sum|w x| per element (NULL: not judged on it). A dot
 * product of operands each rounded within u_fp8 relative errs by at most
 * (2 u_fp8 + u_fp8^2) sum|w x|: the FP8 format bound. */
static rel_stats rel_errors(const double *got, const double *want, const double *mag, int64_t n) {
    double rms = 0;
    for (int64_t i = 0; i < n; i++) rms += want[i] * want[i];
    rms = sqrt(rms / (double)n) + 1e-300;
    const double u = kb_unit_roundoff(KB_E4M3), fmt = 2 * u + u * u;
    rel_stats r = {0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs(got[i] - want[i]), rel = e / fmax(fabs(want[i]), rms);
        r.rms_rel += rel * rel;
        if (mag && mag[i] > 0) {
            if (e / mag[i] > r.max_over_mag) r.max_over_mag = e / mag[i];
            r.frac_over_fmt += e > fmt * mag[i] * (1 + 1e-9);
        }
    }
    r.rms_rel = sqrt(r.rms_rel / (double)n);
    r.frac_over_fmt /= (double)n;
    return r;
}

static void stage_e(ctx *x, stage *s) {
    const kb_model *m = x->cfg.model;
    const kb_model_dims *dm = &m->d;
    const kb_backend *gb = x->cfg.gemm;
    s->hypothesis = "the Q/K/V FP8 GEMM is where the drift comes from: its scales, its accumulator, its algorithm, or "
                    "a stale kernel";
    snprintf(s->bound, sizeof s->bound,
             "the kernel's own error: gemm_fp8's tolerance (u_out|d| + (2 sqrt(K) u_acc + 4 u32) sum|s a b|) against "
             "fp64 on the same FP8 operands; the recipe's error against the unquantized product: the FP8 format "
             "bound (e4m3 rounds each operand within 2^-4 relative, so a product within ~2^-3 of sum|w x|) and a 1%% "
             "relative bound per element");
    if (reference(x)) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "the reference forward failed");
        return;
    }
    const int64_t n = x->cfg.n_tokens, H = dm->hidden, KV = dm->kv_heads * dm->head_dim;
    const double *n1 = x->prompt->v[FV_N1]; /* layer 0's normed input: the real activation */
    float *x32 = malloc(sizeof(float) * (size_t)(n * H));
    kb_round_to(KB_F32, n1, x32, n * H);
    const kb_weight *ws[3] = {&m->layer[0].wq, &m->layer[0].wk, &m->layer[0].wv};
    const char *wn[3] = {"Q", "K", "V"};
    int kernel_fail = 0, quant_over = 0, stale = 0, cases = 0;
    double worst_quant_rms[8] = {0};
    for (int ri = 0; ri < kb_recipe_count; ri++) {
        const kb_recipe *r = &kb_recipes[ri];
        if (!r->fp8) continue;
        for (int wi = 0; wi < 3; wi++) {
            const kb_weight *w = ws[wi];
            const int64_t M = wi == 0 ? H : KV;
            kb_case c;
            kb_case_init(&c, KB_OP_gemm_fp8);
            c.m = M, c.n = n, c.k = H, c.a_type = c.b_type = KB_E4M3, c.out_type = KB_F32, c.scale_mode = r->gemm_scale;
            kb_case_label(&c);
            kb_case_data d;
            char msg[KB_MSG];
            if (kb_case_data_make(&d, &c, 0, msg) != KB_OK) continue;
            ref_quant_fp8_args wa = {M, H, w->type, KB_E4M3, r->w_scale, x->cfg.flush};
            ref_quant_fp8(&wa, w->data, d.t[2].host, d.t[0].host, NULL);
            ref_quant_fp8_args xa = {n, H, KB_F32, KB_E4M3, r->x_scale, x->cfg.flush};
            ref_quant_fp8(&xa, x32, d.t[3].host, d.t[1].host, NULL);
            kb_ops[KB_OP_gemm_fp8]->reference(&c, d.t, d.ref);
            /* the recipe's quantization error: fp64 on the FP8 operands vs the unquantized product */
            double *exact = malloc(sizeof(double) * (size_t)(n * M)), *mag = malloc(sizeof(double) * (size_t)(n * M));
            ref_matmul(M, n, H, w->type, w->data, n1, exact, mag);
            const rel_stats q = rel_errors(d.ref[0].ref, exact, mag, n * M);
            measured(s, "- %s, %s [%lldx%lldx%lld]: quantization vs the unquantized product: rms rel %.3g (%s 1%%), max "
                        "%.3g of sum|w x|, %.2f%% of elements beyond the FP8 format bound\n",
                     r->name, wn[wi], (long long)M, (long long)n, (long long)H, q.rms_rel, q.rms_rel > 0.01 ? "above" : "within",
                     q.max_over_mag, 100 * q.frac_over_fmt);
            if (q.rms_rel > worst_quant_rms[ri]) worst_quant_rms[ri] = q.rms_rel;
            quant_over |= q.frac_over_fmt > 0;
            free(mag);
            /* every variant of the GEMM backend (FAST_ACCUM off and on on cuBLASLt) */
            kb_options opt = x->cfg.opt;
            opt.fast_accum = -1;
            const char *nodes[3] = {"attn_q_gemm", "attn_k_gemm", "attn_v_gemm"};
            const char *plant = plant_at(x, 0, nodes[wi]);
            opt.test_variants = plant != NULL;
            kb_variant vars[256];
            const int nv = gb->variants(&c, &opt, vars, 256, msg);
            double lo = INFINITY, hi = 0;
            for (int vi = 0; vi < nv; vi++) {
                if (vars[vi].test_only && !(plant && !strcmp(vars[vi].name, plant))) continue;
                kb_variant used;
                uint64_t hash[2] = {0, 0};
                int ok = 1;
                kb_row row;
                memset(&row, 0, sizeof row);
                for (int twice = 0; twice < 2 && ok; twice++) { /* the same algorithm twice: a stale kernel? */
                    if (run_op(gb, &opt, &c, &vars[vi], &d, &used, msg) != KB_OK) {
                        ok = 0;
                        break;
                    }
                    hash[twice] = kb_fnv1a64(d.t[4].host, d.t[4].bytes);
                }
                if (!ok) continue;
                kb_judge(&d, used.acc_unit_roundoff, &row);
                double *got = malloc(sizeof(double) * (size_t)(n * M));
                kb_decode(KB_F32, d.t[4].host, got, n * M);
                const rel_stats k = rel_errors(got, d.ref[0].ref, NULL, n * M);
                free(got);
                cases++;
                if (k.rms_rel < lo) lo = k.rms_rel;
                if (k.rms_rel > hi) hi = k.rms_rel;
                kernel_fail |= row.verdict != KB_PASS;
                stale |= hash[0] != hash[1];
                measured(s, "  - %s %s: kernel error rms rel %.3g (err/tol %.3f, %s)%s\n", gb->name, used.name, k.rms_rel,
                         row.m.worst, kb_verdict_name(row.verdict), hash[0] != hash[1] ? "; TWO RUNS DIFFER" : "");
            }
            if (cases && hi > 0) measured(s, "  - spread across algorithms: rms rel %.3g .. %.3g\n", lo, hi);
            free(exact);
            kb_case_data_free(&d);
        }
    }
    free(x32);
    if (!cases) {
        s->verdict = V_INCONCLUSIVE;
        snprintf(s->why, sizeof s->why, "no FP8 GEMM ran on %s", gb->name);
        return;
    }
    const char *best = NULL;
    double best_rms = INFINITY;
    for (int ri = 0; ri < kb_recipe_count; ri++)
        if (kb_recipes[ri].fp8 && worst_quant_rms[ri] < best_rms) best_rms = worst_quant_rms[ri], best = kb_recipes[ri].name;
    if (kernel_fail || stale) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why, "%s", kernel_fail ? "a GEMM algorithm exceeds its own tolerance on FP8 operands"
                                                          : "the same algorithm gives different bits run to run");
    } else if (quant_over) {
        s->verdict = V_CONFIRMED;
        snprintf(s->why, sizeof s->why,
                 "every kernel is within its tolerance, but a recipe's quantization errs beyond the FP8 format bound "
                 "(subnormals crushed or flushed, a scale that does not fit the data): scale calibration explains the "
                 "drift (least error: %s, rms rel %.3g)",
                 best ? best : "-", best_rms);
    } else {
        s->verdict = V_REFUTED;
        snprintf(s->why, sizeof s->why,
                 "every algorithm within its tolerance and every recipe within the FP8 format bound: what remains is "
                 "e4m3's own precision (least error: %s, rms rel %.3g; above 1%% is e4m3's 4-bit significand, not a "
                 "bug)",
                 best ? best : "-", best_rms);
    }
}

/* ---- the command --------------------------------------------------------------------------------------- */
static const char usage[] =
    "usage: kbench falsify --stage A|B|C|D|E|all [options]\n"
    "Stages of a CPU-vs-GPU divergence hunt, each a hypothesis with its bound, the\n"
    "numbers and a verdict (refuted: not where the divergence comes from; confirmed;\n"
    "inconclusive, with why):\n"
    "  A determinism  B per-layer parity  C embedding lookup  D pre-attention RMSNorm\n"
    "  E Q/K/V FP8 GEMM (every recipe, every algorithm, FAST_ACCUM off/on)\n"
    "Options as `kbench forward` (--model --backend --gemm --recipe --flush --tokens\n"
    "--steps --seed --threshold --fast-accum --prefer --threads) plus:\n"
    "  --out DIR     write DIR/falsify.json and DIR/falsify.md (default: print only)\n"
    "Exit codes: 0 every stage gave a verdict and none confirmed, 1 a stage confirmed\n"
    "a divergence source, 2 bad usage or input, 3 every stage inconclusive.\n";

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned char)*s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void write_md(FILE *f, const ctx *x, const stage *st, int n) {
    fprintf(f, "# kbench falsify: %s on %s%s%s, recipe %s%s\n\n", x->cfg.model->name, x->cfg.backend->name,
            x->cfg.gemm != x->cfg.backend ? " + " : "", x->cfg.gemm != x->cfg.backend ? x->cfg.gemm->name : "",
            x->cfg.recipe->name, x->cfg.flush ? " (flush)" : "");
    fprintf(f, "Reproduce: `%s`\n\n", x->command);
    for (int i = 0; i < n; i++) {
        fprintf(f, "## Stage %c: %s - **%s**\n\n", st[i].id, st[i].title, verdict_name(st[i].verdict));
        fprintf(f, "- Hypothesis: %s.\n- Bound: %s.\n- Verdict: %s: %s.\n\nMeasured:\n\n%s\n", st[i].hypothesis, st[i].bound,
                verdict_name(st[i].verdict), st[i].why, st[i].measured);
    }
    int confirmed = -1;
    for (int i = 0; i < n && confirmed < 0; i++)
        if (st[i].verdict == V_CONFIRMED) confirmed = i;
    fprintf(f, "## Summary\n\n");
    if (confirmed >= 0)
        fprintf(f, "Stage %c (%s) confirmed a divergence source: %s. ", st[confirmed].id, st[confirmed].title,
                st[confirmed].why);
    else
        fprintf(f, "No stage confirmed a divergence source. ");
    for (int i = 0; i < n; i++)
        fprintf(f, "%c %s%s", st[i].id, verdict_name(st[i].verdict), i + 1 < n ? ", " : ".\n");
}

static void write_json(FILE *f, const ctx *x, const stage *st, int n) {
    fprintf(f, "{\"schema\": \"kbench-falsify-1\", \"model\": ");
    json_str(f, x->cfg.model->name);
    fprintf(f, ", \"backend\": ");
    json_str(f, x->cfg.backend->name);
    fprintf(f, ", \"gemm\": ");
    json_str(f, x->cfg.gemm->name);
    fprintf(f, ", \"recipe\": ");
    json_str(f, x->cfg.recipe->name);
    fprintf(f, ", \"flush\": %d, \"command\": ", x->cfg.flush);
    json_str(f, x->command);
    fprintf(f, ", \"stages\": [");
    for (int i = 0; i < n; i++) {
        char id[2] = {st[i].id, 0};
        fprintf(f, "%s{\"stage\": ", i ? ", " : "");
        json_str(f, id);
        fprintf(f, ", \"title\": ");
        json_str(f, st[i].title);
        fprintf(f, ", \"hypothesis\": ");
        json_str(f, st[i].hypothesis);
        fprintf(f, ", \"bound\": ");
        json_str(f, st[i].bound);
        fprintf(f, ", \"measured\": ");
        json_str(f, st[i].measured);
        fprintf(f, ", \"verdict\": ");
        json_str(f, verdict_name(st[i].verdict));
        fprintf(f, ", \"why\": ");
        json_str(f, st[i].why);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
}

int kb_falsify_main(int argc, char **argv) {
    const char *stages = NULL, *out_dir = NULL;
    /* the forward options: reuse kbench forward's parser by building its argv */
    char *fargv[256];
    int fargc = 0;
    fargv[fargc++] = "forward";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--stage") && i + 1 < argc) stages = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_dir = argv[++i];
        else if (fargc < 250) fargv[fargc++] = argv[i];
    }
    if (!stages) {
        fprintf(stderr, "kbench falsify: --stage A|B|C|D|E|all is required (see kbench falsify --help)\n");
        return KB_EXIT_USAGE;
    }
    char which[8] = "";
    if (!strcmp(stages, "all")) snprintf(which, sizeof which, "ABCDE");
    else
        for (const char *p = stages; *p; p++) {
            if (*p == ',') continue;
            if (!strchr("ABCDE", *p) || strlen(which) >= 5) {
                fprintf(stderr, "kbench falsify: --stage '%s' is not A, B, C, D, E or all (see kbench falsify --help)\n", stages);
                return KB_EXIT_USAGE;
            }
            if (!strchr(which, *p)) strncat(which, p, 1);
        }
    kb_forward_cli cli;
    int rc = kb_forward_setup(fargc, fargv, 1, &cli); /* stage A runs the test-only fault */
    if (rc >= 0) return rc; /* an error, or --info done */
    const kb_forward_cfg cfg = cli.cfg;
    ctx x;
    memset(&x, 0, sizeof x);
    x.cfg = cfg;
    size_t o = (size_t)snprintf(x.command, sizeof x.command, "kbench falsify --stage %s", stages);
    for (int i = 1; i < fargc && o < sizeof x.command; i++) o += (size_t)snprintf(x.command + o, sizeof x.command - o, " %s", fargv[i]);
    stage st[5];
    memset(st, 0, sizeof st);
    int n = 0;
    kb_harness h; /* stage B's rows go to --csv / --json */
    memset(&h, 0, sizeof h);
    kb_run_info_fill(&h.info);
    FILE *csv = cli.csv_path ? fopen(cli.csv_path, "w") : NULL, *json = cli.json_path ? fopen(cli.json_path, "w") : NULL;
    if ((cli.csv_path && !csv) || (cli.json_path && !json)) {
        fprintf(stderr, "kbench falsify: cannot write %s\n", cli.csv_path && !csv ? cli.csv_path : cli.json_path);
        kb_forward_cli_free(&cli);
        return KB_EXIT_USAGE;
    }
    if (csv) h.reporters[h.n_reporters++] = kb_csv_reporter(csv);
    if (json) h.reporters[h.n_reporters++] = kb_jsonl_reporter(json);
    for (const char *p = which; *p; p++, n++) {
        stage *s = &st[n];
        s->id = *p;
        if (cfg.progress) fprintf(stderr, "falsify: stage %c\n", *p);
        switch (*p) {
        case 'A': s->title = "determinism"; stage_a(&x, s); break;
        case 'B': s->title = "per-layer parity"; stage_b(&x, s, &h); break;
        case 'C': s->title = "embedding lookup"; stage_c(&x, s); break;
        case 'D': s->title = "pre-attention RMSNorm"; stage_d(&x, s); break;
        default: s->title = "Q/K/V FP8 GEMM"; stage_e(&x, s); break;
        }
    }
    for (int i = 0; i < h.n_reporters; i++) kb_report_end(h.reporters[i], 0);
    if (csv) fclose(csv);
    if (json) fclose(json);
    write_md(stdout, &x, st, n);
    if (out_dir) {
        char path[PATH_MAX];
        mkdir(out_dir, 0755);
        snprintf(path, sizeof path, "%s/falsify.md", out_dir);
        FILE *f = fopen(path, "w");
        if (f) write_md(f, &x, st, n), fclose(f);
        snprintf(path, sizeof path, "%s/falsify.json", out_dir);
        FILE *j = fopen(path, "w");
        if (j) write_json(j, &x, st, n), fclose(j);
        if (!f || !j) fprintf(stderr, "kbench falsify: cannot write into %s: %s\n", out_dir, strerror(errno));
    }
    kb_forward_reference_free(x.ref);
    kb_forward_cli_free(&cli);
    int confirmed = 0, inconclusive = 0;
    for (int i = 0; i < n; i++) confirmed |= st[i].verdict == V_CONFIRMED, inconclusive += st[i].verdict == V_INCONCLUSIVE;
    return confirmed ? KB_EXIT_FAIL : inconclusive == n ? KB_EXIT_ERROR : KB_EXIT_PASS;
}
