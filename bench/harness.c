/* harness.c - the one loop every case goes through (ARCHITECTURE.md):
 *   inputs = op.generate(case)            seeded, realistic, never zeros
 *   ref    = op.reference(case, inputs)   fp64, once per case
 *   per backend, per variant:
 *     upload -> poison output -> prepare -> run -> download -> metrics -> verdict
 *     warm-up, then samples through Google Benchmark with the device timer
 *     (cold: caches flushed before each sample) -> one row -> every reporter
 * A backend that loses its context (a sticky fault) is reset; the row says
 * error and the cases after it run on a fresh context. */
#include "bench/harness.h"

#include "bench/gbench_shim.h"
#include "bench/metrics.h"
#include "bench/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARIANTS 512

/* ---- host-side case data, shared by every backend ------------------------ */
typedef struct {
    const kb_case *c;
    const kb_op *op;
    kb_tensor in[KB_MAX_INPUTS];
    int n_in;
    kb_tensor out;
    double *ref, *mag;
} case_data;

static void case_prepare(case_data *d, const kb_case *c) {
    memset(d, 0, sizeof *d);
    d->c = c;
    d->op = &kb_ops[c->op];
    d->n_in = d->op->tensors(c, d->in, &d->out);
    for (int i = 0; i < d->n_in; i++) d->in[i].host = calloc(1, d->in[i].bytes ? d->in[i].bytes : 1);
    d->out.host = malloc(d->out.bytes);
    d->op->generate(c, d->in);
    d->ref = malloc((size_t)d->out.count * sizeof *d->ref);
    d->mag = malloc((size_t)d->out.count * sizeof *d->mag);
    d->op->reference(c, d->in, d->ref, d->mag);
}

static void case_free(case_data *d) {
    for (int i = 0; i < d->n_in; i++) free(d->in[i].host);
    free(d->out.host);
    free(d->ref);
    free(d->mag);
}

/* ---- one backend x variant ---------------------------------------------- */
typedef struct {
    const kb_backend *b;
    void *state;
    int cold;
    int fatal;
} sample_ctx;

static double take_sample(void *user, char *msg) {
    sample_ctx *s = user;
    double sec = -1;
    int rc = KB_OK;
    if (s->cold) rc = s->b->flush_cache(msg);
    if (rc == KB_OK) rc = s->b->run(s->state, &sec, msg);
    if (rc != KB_OK) {
        s->fatal = rc == KB_ERROR_FATAL;
        return -1;
    }
    return sec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void timing_stats(double *s, int n, kb_row *row) {
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    row->reps = n;
    row->t_min = s[0];
    row->t_max = s[n - 1];
    row->t_med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += s[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (s[i] - mean) * (s[i] - mean);
    row->cv = n > 1 && mean > 0 ? sqrt(var / (n - 1)) / mean : 0;
}

static int variant_matches(const char *filter, const char *name) {
    if (!filter) return 1;
    const char *p = filter;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0 && p[len - 1] == '*') {
            if (strncmp(name, p, len - 1) == 0) return 1;
        } else if (strlen(name) == len && strncmp(name, p, len) == 0) {
            return 1;
        }
        p += len + (e ? 1 : 0);
    }
    return 0;
}

static void emit(kb_harness *h, kb_row *row) {
    for (int i = 0; i < h->n_reporters; i++) kb_report_row(h->reporters[i], &h->info, row);
}

/* After a fatal error every device buffer and state of the backend is gone. */
static void backend_lost(const kb_backend *b, kb_row *row) {
    char msg[KB_MSG];
    if (b->reset(msg) != KB_OK) {
        size_t len = strlen(row->reason);
        snprintf(row->reason + len, sizeof row->reason - len, " (reset failed: %s)", msg);
    }
}

/* Parity (and timing) of one variant; fills row. */
static void run_variant(kb_harness *h, case_data *d, const kb_backend *b, kb_row *row) {
    char msg[KB_MSG] = "";
    void *dev_in[KB_MAX_INPUTS] = {0}, *dev_out = NULL, *state = NULL;
    int rc = KB_OK, lost = 0;

#define FAIL_STEP(what)                                                                                               \
    do {                                                                                                              \
        row->verdict = rc == KB_NOT_SUPPORTED ? KB_UNSUPPORTED : KB_ERRORED;                                          \
        if (rc == KB_NOT_SUPPORTED) snprintf(row->reason, sizeof row->reason, "%s", msg);                             \
        else snprintf(row->reason, sizeof row->reason, "%s: %s", what, msg);                                          \
        lost = rc == KB_ERROR_FATAL;                                                                                  \
        goto cleanup;                                                                                                 \
    } while (0)

    for (int i = 0; i < d->n_in; i++) {
        if ((rc = b->alloc(d->in[i].bytes, &dev_in[i], msg)) != KB_OK) FAIL_STEP("alloc");
        if ((rc = b->upload(dev_in[i], d->in[i].host, d->in[i].bytes, msg)) != KB_OK) FAIL_STEP("upload");
    }
    if ((rc = b->alloc(d->out.bytes, &dev_out, msg)) != KB_OK) FAIL_STEP("alloc");
    /* poison the output so every element the kernel does not write is caught */
    kb_poison(d->out.type, d->out.host, d->out.count);
    if ((rc = b->upload(dev_out, d->out.host, d->out.bytes, msg)) != KB_OK) FAIL_STEP("upload");
    if ((rc = b->prepare(d->c, &row->variant, dev_in, dev_out, &state, msg)) != KB_OK) FAIL_STEP("prepare");
    if ((rc = b->run(state, NULL, msg)) != KB_OK) FAIL_STEP("run");
    if ((rc = b->download(d->out.host, dev_out, d->out.bytes, msg)) != KB_OK) FAIL_STEP("download");

    kb_compute_metrics(d->out.type, d->out.host, d->ref, d->mag, d->out.count, &row->tol, &row->m);
    row->have_metrics = 1;
    row->verdict = kb_metrics_pass(&row->m) ? KB_PASS : KB_FAIL;
    if (row->verdict == KB_FAIL) {
        const kb_metrics *m = &row->m;
        int64_t i = m->first_bad;
        snprintf(row->reason, sizeof row->reason,
                 "%lld beyond tolerance, %lld NaN/Inf, %lld overflowed %s, %lld unwritten; first at [%lld] "
                 "ref=%.9g",
                 (long long)m->n_bad, (long long)m->n_nan, (long long)m->n_overflow, kb_dtype_name(d->out.type),
                 (long long)m->n_unwritten, (long long)i, i >= 0 ? d->ref[i] : 0.0);
    }

    if (h->timing) {
        sample_ctx s = {b, state, h->cold, 0};
        /* warm-up: module load, compilation, handle creation stay out. The parity
         * run above was the first; more only while they are cheap next to the
         * samples (a 9 s cpu GEMM needs no second warm-up). */
        double first = 0, warm_total = 0;
        for (int w = 0; w < h->warmup; w++) {
            if ((first = take_sample(&s, msg)) < 0) break;
            warm_total += first;
            if (warm_total > 0.1 * h->max_time) break;
        }
        if (h->warmup == 0 || first >= 0) {
            if (h->warmup == 0 && (first = take_sample(&s, msg)) < 0) goto timing_failed;
            int reps = h->reps;
            if (first > 0 && first * reps > h->max_time) reps = (int)(h->max_time / first);
            if (reps < 3) reps = 3;
            if (reps > h->reps) reps = h->reps;
            double *samples = malloc((size_t)reps * sizeof *samples);
            char name[256];
            snprintf(name, sizeof name, "%s/%s/%s/%s/%s", kb_op_name(d->c->op), d->c->label, b->name,
                     row->variant.name, h->cold ? "cold" : "hot");
            int n = kb_gb_time(name, reps, take_sample, &s, row->bytes, row->flops, samples, msg);
            if (n > 0) {
                row->mode = h->cold ? "cold" : "hot";
                timing_stats(samples, n, row);
            }
            free(samples);
            if (n > 0) goto timed;
        }
    timing_failed:
        row->verdict = KB_ERRORED;
        snprintf(row->reason, sizeof row->reason, "timing: %s", msg);
        lost = s.fatal;
    timed:;
    }

cleanup:
    if (lost) {
        backend_lost(b, row);
        return; /* every buffer died with the context */
    }
    if (state) b->release(state);
    for (int i = 0; i < d->n_in; i++)
        if (dev_in[i]) b->free(dev_in[i]);
    if (dev_out) b->free(dev_out);
#undef FAIL_STEP
}

static void row_init(kb_row *row, const case_data *d, const kb_backend *b, int available) {
    memset(row, 0, sizeof *row);
    row->c = d->c;
    row->backend = b->name;
    row->device = available ? b->device_name() : "";
    row->driver = available ? b->driver_version() : "";
    row->bytes = d->op->bytes(d->c);
    row->flops = d->op->flops(d->c);
    if (available && b->ceilings) b->ceilings(d->c, &row->bw_ceiling, &row->flop_ceiling);
    kb_variant_init(&row->variant, "-");
}

int kb_harness_run(kb_harness *h, const kb_case_list *cases) {
    int any_fail = 0, any_error = 0;
    int available[8];
    char why[8][KB_MSG];
    for (int i = 0; i < h->n_backends; i++) available[i] = h->backends[i]->probe(&h->opt, why[i]) == KB_OK;

    kb_variant *vars = malloc(MAX_VARIANTS * sizeof *vars);
    for (int ci = 0; ci < cases->count; ci++) {
        const kb_case *c = &cases->cases[ci];
        if (h->progress) fprintf(stderr, "[%d/%d] %s %s: generating inputs and fp64 reference\n", ci + 1, cases->count,
                                 kb_op_name(c->op), c->label);
        case_data d;
        case_prepare(&d, c);
        for (int bi = 0; bi < h->n_backends; bi++) {
            const kb_backend *b = h->backends[bi];
            kb_row row;
            row_init(&row, &d, b, available[bi]);
            if (!available[bi]) {
                row.verdict = KB_SKIPPED;
                snprintf(row.reason, sizeof row.reason, "%s unavailable: %s", b->name, why[bi]);
                emit(h, &row);
                continue;
            }
            char msg[KB_MSG] = "";
            int nv = b->variants(c, &h->opt, vars, MAX_VARIANTS, msg);
            if (nv <= 0) {
                row.verdict = nv == 0 ? KB_UNSUPPORTED : KB_ERRORED;
                snprintf(row.reason, sizeof row.reason, "%s", nv == 0 ? (msg[0] ? msg : "op not implemented") : msg);
                if (nv < 0) any_error = 1;
                if (nv == 0 && !msg[0]) snprintf(row.reason, sizeof row.reason, "%s has no %s kernel", b->name, kb_op_name(c->op));
                emit(h, &row);
                continue;
            }
            for (int vi = 0; vi < nv; vi++) {
                if (!variant_matches(h->variant_filter, vars[vi].name)) continue;
                h->variants_matched++;
                row_init(&row, &d, b, 1);
                row.variant = vars[vi];
                d.op->tolerance(c, d.in, vars[vi].acc_unit_roundoff, &row.tol);
                run_variant(h, &d, b, &row);
                if (row.verdict == KB_FAIL) any_fail = 1;
                if (row.verdict == KB_ERRORED) any_error = 1;
                if (h->progress)
                    fprintf(stderr, "[%d/%d] %s %s %s/%s: %s\n", ci + 1, cases->count, kb_op_name(c->op), c->label,
                            b->name, row.variant.name, kb_verdict_name(row.verdict));
                emit(h, &row);
            }
        }
        case_free(&d);
    }
    free(vars);
    return any_fail ? KB_EXIT_FAIL : any_error ? KB_EXIT_ERROR : KB_EXIT_PASS;
}
