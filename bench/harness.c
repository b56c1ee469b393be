/* harness.c - the one loop every case goes through:
 *   inputs = op.generate(case)            seeded, realistic, never zeros
 *   ref    = op.reference(case, inputs)   fp64, once per case
 *   per backend, per variant:
 *     alloc -> upload -> poison outputs -> prepare -> enqueue -> wait -> download
 *     -> metrics of every output -> verdict
 *     warm-up, then samples through Google Benchmark with the device's timer:
 *       cold   caches flushed before each sample (outside the timed span)
 *       hot    back to back on the same buffers
 *       rotate back to back over enough copies of the tensors to outgrow the cache,
 *              as a forward pass meets its weights
 *     -> derived throughput -> one row -> every reporter
 * A backend that loses its context (a sticky fault) is reset; the row says error
 * and the cases after it run on a fresh context.
 * The next case's inputs and reference are made on a second thread while the current
 * case runs on its devices (the reference is most of the host's work in a GPU table),
 * unless a timed backend runs on the host's own cores (cpu, lavapipe), whose times the
 * reference's threads would disturb. */
#include "bench/harness.h"

#include "bench/gbench_shim.h"
#include "bench/hostmem.h"
#include "bench/metrics.h"
#include "bench/op.h"
#include "ref/pool.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARIANTS 1024 /* a backend's variants x the --tune points */
#define ROTATE_MAX_COPIES 64

const char *kb_time_mode_name(kb_time_mode m) {
    static const char *const names[] = {"cold", "hot", "rotate"};
    return (unsigned)m < 3 ? names[m] : "?";
}

static volatile sig_atomic_t stop_signal;
void kb_harness_request_stop(int signo) { stop_signal = signo; }
int kb_harness_stopped(void) { return (int)stop_signal; }

/* ---- host-side case data ------------------------------------------------------------ */
void kb_case_data_free(kb_case_data *d) {
    const kb_op *op = kb_ops[d->c->op];
    for (int i = 0; i < op->n_in + op->n_out; i++) free(d->t[i].host);
    for (int o = 0; o < op->n_out; o++) {
        free(d->ref[o].ref);
        free(d->ref[o].mag);
    }
    memset(d, 0, sizeof *d);
}

/* Host bytes of a case's data: every tensor, plus a reference and a magnitude per
 * output element. */
static double tensors_host_bytes(const kb_op *op, const kb_tensor *t) {
    double need = 0;
    for (int i = 0; i < op->n_in + op->n_out; i++) need += (double)t[i].bytes;
    for (int o = 0; o < op->n_out; o++) need += 16.0 * (double)t[op->n_in + o].count;
    return need;
}

static int host_need(const kb_case *c, kb_tensor *t, char *msg) {
    const kb_op *op = kb_ops[c->op];
    int rc = kb_case_tensors(c, t, msg);
    if (rc != KB_OK) return rc;
    const double need = tensors_host_bytes(op, t);
    if (kb_host_mem_check(need, msg) != KB_OK) {
        char why[KB_MSG];
        snprintf(why, sizeof why, "%s", msg);
        return kb_fail(msg, KB_ERROR, "%s %s %s", op->name, c->label, why);
    }
    return KB_OK;
}

int kb_case_check_size(const kb_case *c, char *msg) {
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    return host_need(c, t, msg);
}

int kb_case_data_make(kb_case_data *d, const kb_case *c, int generate, char *msg) {
    memset(d, 0, sizeof *d);
    d->c = c;
    const kb_op *op = kb_ops[c->op];
    int rc = host_need(c, d->t, msg);
    if (rc != KB_OK) return rc;
    for (int i = 0; i < op->n_in + op->n_out; i++) {
        d->t[i].host = calloc(1, d->t[i].bytes ? d->t[i].bytes : 1);
        if (!d->t[i].host) goto oom;
    }
    for (int o = 0; o < op->n_out; o++) {
        size_t n = (size_t)(d->t[op->n_in + o].count > 0 ? d->t[op->n_in + o].count : 1);
        d->ref[o].ref = malloc(n * sizeof(double));
        d->ref[o].mag = malloc(n * sizeof(double));
        if (!d->ref[o].ref || !d->ref[o].mag) goto oom;
    }
    if (generate) {
        op->generate(c, d->t);
        op->reference(c, d->t, d->ref);
    }
    return KB_OK;
oom:
    kb_case_data_free(d);
    d->c = c;
    return kb_fail(msg, KB_ERROR, "%s %s: out of host memory", op->name, c->label);
}

void kb_judge(const kb_case_data *d, double u_acc, kb_row *row) { kb_judge_ex(d, u_acc, 1, row); }

void kb_judge_ex(const kb_case_data *d, double u_acc, int with_hash, kb_row *row) {
    const kb_op *op = kb_ops[d->c->op];
    int chosen = -1;
    kb_metrics m[KB_MAX_OUT];
    kb_tolerance tol[KB_MAX_OUT];
    memset(m, 0, sizeof m);
    memset(tol, 0, sizeof tol);
    uint64_t hash = 0;
    for (int o = 0; o < op->n_out; o++) {
        const kb_tensor *t = &d->t[op->n_in + o];
        memset(&tol[o], 0, sizeof tol[o]);
        op->tolerance(d->c, o, u_acc, &tol[o]);
        kb_compute_metrics_ex(t->type, t->host, d->ref[o].ref, d->ref[o].mag, t->count, &tol[o], with_hash, &m[o]);
        if (with_hash) /* metrics hashed output 0 */
            hash = o == 0 ? m[o].hash : kb_fnv1a64_update(hash, t->host, t->bytes);
        if (chosen < 0 && !kb_metrics_pass(&m[o])) chosen = o;
    }
    if (chosen < 0) chosen = 0;
    row->have_metrics = 1;
    row->m = m[chosen];
    row->tol = tol[chosen];
    row->output = d->t[op->n_in + chosen].name;
    row->hash = hash;
    row->verdict = KB_PASS;
    for (int o = 0; o < op->n_out; o++)
        if (!kb_metrics_pass(&m[o])) row->verdict = KB_FAIL;
    if (row->verdict == KB_FAIL) {
        const kb_metrics *mm = &row->m;
        const int64_t i = mm->first_bad;
        snprintf(row->reason, sizeof row->reason,
                 "%s: %lld beyond tolerance, %lld NaN/Inf, %lld overflowed %s, %lld unwritten; first at [%lld] "
                 "ref=%.9g",
                 row->output, (long long)mm->n_bad, (long long)mm->n_nan, (long long)mm->n_overflow,
                 kb_dtype_name(d->t[op->n_in + chosen].type), (long long)mm->n_unwritten, (long long)i,
                 i >= 0 ? d->ref[chosen].ref[i] : 0.0);
    }
}

void kb_row_derive(kb_row *row) {
    if (row->reps <= 0 || !(row->t_med > 0)) return;
    row->gbps = row->bytes / row->t_med * 1e-9;
    row->tflops = row->flops / row->t_med * 1e-12;
    /* the roofline floor: the slower of moving the bytes and doing the flops */
    double floor_t = row->bw_ceiling > 0 ? row->bytes / row->bw_ceiling : 0;
    if (row->flop_ceiling > 0 && row->flops / row->flop_ceiling > floor_t) floor_t = row->flops / row->flop_ceiling;
    row->ceiling_frac = row->bw_ceiling > 0 ? floor_t / row->t_med : 0;
}

/* Bytes one copy of the case's tensors takes on a device. */
static double case_device_bytes(const kb_case_data *d) {
    const kb_op *op = kb_ops[d->c->op];
    double bytes = 0;
    for (int i = 0; i < op->n_in + op->n_out; i++) bytes += (double)d->t[i].bytes;
    return bytes;
}

/* ---- one copy of a case's tensors on a backend ---------------------------------------- */
typedef struct {
    kb_buf buf[KB_MAX_IN + KB_MAX_OUT];
    void *state;
} copy;

static void copy_free(const kb_backend *b, copy *cp, int n) {
    if (cp->state) b->release(cp->state);
    for (int i = 0; i < n; i++)
        if (cp->buf[i]) b->free(cp->buf[i]);
    memset(cp, 0, sizeof *cp);
}

/* Buffers for every tensor, prepared; their contents from `from` by device copies when
 * given, else inputs uploaded and outputs poisoned. `step` names what failed. */
static int copy_make(const kb_backend *b, const kb_case_data *d, const kb_variant *v, const copy *from, copy *cp,
                     const char **step, char *msg) {
    const kb_op *op = kb_ops[d->c->op];
    const int n = op->n_in + op->n_out;
    kb_arg args[KB_MAX_ARGS];
    memset(cp, 0, sizeof *cp);
    int rc;
    for (int i = 0; i < n; i++) {
        const kb_tensor *t = &d->t[i];
        *step = "alloc";
        if ((rc = b->alloc(t->bytes, &cp->buf[i], msg)) != KB_OK) return rc;
        args[i] = (kb_arg){t->type, t->count, {cp->buf[i], 0, t->bytes}};
        if (from) {
            *step = "device copy";
            if ((rc = b->copy(args[i].view, (kb_view){from->buf[i], 0, t->bytes}, msg)) != KB_OK) return rc;
            continue;
        }
        *step = "upload";
        if (i < op->n_in && (rc = b->upload(args[i].view, t->host, msg)) != KB_OK) return rc;
        if (i >= op->n_in) { /* every element the kernel does not write is caught */
            kb_poison(t->type, t->host, t->count);
            if ((rc = b->upload(args[i].view, t->host, msg)) != KB_OK) return rc;
        }
    }
    if (!v) return KB_OK;
    *step = "prepare";
    return b->prepare(d->c, v, args, op->n_in, op->n_out, &cp->state, msg);
}

/* A case's tensors on a backend that copies on the device (kb_backend.copy), uploaded
 * once: inputs as generated, outputs poisoned, never bound to a kernel. Every variant's
 * buffers and rotate copies are copied from it at the device's copy rate, where an
 * upload crosses the CUDA worker's socket or Vulkan's staging buffer (most of the qwen
 * table's time on the H200 went to uploads). Made by the first variant that needs it,
 * when twice the case fits the free device memory; forgotten when the backend is lost. */
typedef struct {
    copy c;
    int state; /* 0: not made yet; 1: live; -1: not used for this case */
} pristine;

static const copy *pristine_get(const kb_backend *b, const kb_case_data *d, pristine *p, const char **step,
                                char *msg, int *rc) {
    *rc = KB_OK;
    if (p->state == 0) {
        const kb_device_info *dev = b->device();
        const double need = case_device_bytes(d);
        p->state = -1;
        if (b->copy && !getenv("KB_HARNESS_UPLOADS") && (!dev->mem_free || 2 * need <= (double)dev->mem_free)) {
            *rc = copy_make(b, d, NULL, NULL, &p->c, step, msg);
            if (*rc == KB_OK) {
                p->state = 1;
            } else if (*rc == KB_ERROR_FATAL) { /* the caller resets the backend: its buffers died */
                memset(&p->c, 0, sizeof p->c);
                p->state = 0;
            } else { /* out of memory, say: the variants upload as before */
                copy_free(b, &p->c, kb_ops[d->c->op]->n_in + kb_ops[d->c->op]->n_out);
                *rc = KB_OK;
            }
        }
    }
    return p->state == 1 ? &p->c : NULL;
}

/* ---- timing ---------------------------------------------------------------------------- */
typedef struct {
    const kb_backend *b;
    void **states;
    int n;       /* states run a sample */
    int per;     /* launches a sample: the time is divided by it (a recorded sequence is one state) */
    int flush;
    int fatal;
} sample_ctx;

static double take_sample(void *user, char *msg) {
    sample_ctx *s = user;
    double sec = -1;
    if (kb_harness_stopped()) {
        kb_fail(msg, KB_ERROR, "interrupted by signal %d", kb_harness_stopped());
        return -1;
    }
    int rc = s->b->run_timed(s->states, s->n, s->flush, &sec, msg);
    if (rc != KB_OK) {
        s->fatal = rc == KB_ERROR_FATAL;
        return -1;
    }
    return sec / s->per;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
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

/* How many copies rotate mode runs over: enough to be twice the cache, at least 2,
 * within a quarter of the free device memory (2 GiB when unknown). */
static int rotate_copies(const kb_case_data *d, const kb_device_info *dev) {
    const double per = case_device_bytes(d);
    if (per <= 0) return 2;
    double want = ceil(2.0 * (double)(dev->cache_bytes ? dev->cache_bytes : 64u << 20) / per);
    double room = floor((dev->mem_free ? (double)dev->mem_free / 4 : 2.0 * (1u << 30)) / per);
    double r = want < room ? want : room;
    if (r > ROTATE_MAX_COPIES) r = ROTATE_MAX_COPIES;
    return r < 2 ? 2 : (int)r;
}

/* Warm-up and samples; fills the row's timing. -1 on a failed sample (msg). */
static int time_variant(kb_harness *h, const kb_case_data *d, const kb_backend *b, sample_ctx *s, kb_row *row,
                        char *msg) {
    /* warm-up: module load, compilation, handle creation stay out; more only while
     * they are cheap next to the samples (a 9 s cpu GEMM needs no second warm-up) */
    double first = -1, warm_total = 0;
    for (int w = 0; w < h->warmup; w++) {
        if ((first = take_sample(s, msg)) < 0) return -1;
        warm_total += first * s->per;
        if (warm_total > 0.1 * h->max_time) break;
    }
    if (h->warmup == 0 && (first = take_sample(s, msg)) < 0) return -1;
    int reps = h->reps;
    if (first > 0 && first * s->per * reps > h->max_time) reps = (int)(h->max_time / (first * s->per));
    if (reps < 3) reps = 3;
    if (reps > h->reps) reps = h->reps;
    double *samples = malloc((size_t)reps * sizeof *samples);
    if (!samples) {
        kb_fail(msg, KB_ERROR, "out of host memory");
        return -1;
    }
    char name[256];
    snprintf(name, sizeof name, "%s/%s/%s/%s/%s", kb_op_name(d->c->op), d->c->label, b->name, row->variant.name,
             kb_time_mode_name(h->mode));
    const int n = kb_gb_time(name, reps, take_sample, s, row->bytes, row->flops, samples, msg);
    if (n > 0) {
        row->mode = kb_time_mode_name(h->mode);
        timing_stats(samples, n, row);
    }
    free(samples);
    return n > 0 ? 0 : -1;
}

/* After a fatal error every device buffer and state of the backend is gone. */
static void backend_lost(const kb_backend *b, kb_row *row) {
    char msg[KB_MSG];
    if (b->reset(msg) != KB_OK) {
        size_t len = strlen(row->reason);
        snprintf(row->reason + len, sizeof row->reason - len, " (reset failed: %s)", msg);
    }
}

/* --repeat: the variant run again h->repeat - 1 times on the same inputs, its outputs
 * poisoned before each run; every run's output hash must be the parity run's. A run
 * that differs fails the row (nondeterministic: a race, an atomic's order, a read of
 * what the previous run left). */
static int repeat_runs(const kb_harness *h, const kb_case_data *d, const kb_backend *b, const copy *from,
                       const copy *cp, kb_row *row, char *msg) {
    const kb_op *op = kb_ops[d->c->op];
    void *out[KB_MAX_OUT] = {0};
    int rc = KB_OK;
    for (int o = 0; o < op->n_out && rc == KB_OK; o++)
        if (!(out[o] = malloc(d->t[op->n_in + o].bytes ? d->t[op->n_in + o].bytes : 1)))
            rc = kb_fail(msg, KB_ERROR, "out of host memory");
    row->repeats = 1;
    for (int r = 2; r <= h->repeat && rc == KB_OK; r++) {
        for (int o = 0; o < op->n_out && rc == KB_OK; o++) {
            const kb_tensor *t = &d->t[op->n_in + o];
            const kb_view dst = {cp->buf[op->n_in + o], 0, t->bytes};
            if (from) {
                rc = b->copy(dst, (kb_view){from->buf[op->n_in + o], 0, t->bytes}, msg); /* poisoned there */
                continue;
            }
            kb_poison(t->type, out[o], t->count);
            rc = b->upload(dst, out[o], msg);
        }
        if (rc == KB_OK) rc = b->enqueue((void *const *)&cp->state, 1, msg);
        if (rc == KB_OK) rc = b->wait(msg);
        uint64_t hash = 0;
        for (int o = 0; o < op->n_out && rc == KB_OK; o++) {
            const kb_tensor *t = &d->t[op->n_in + o];
            rc = b->download(out[o], (kb_view){cp->buf[op->n_in + o], 0, t->bytes}, msg);
            hash = o == 0 ? kb_fnv1a64(out[o], t->bytes) : kb_fnv1a64_update(hash, out[o], t->bytes);
        }
        if (rc != KB_OK) break;
        row->repeats = r;
        if (hash != row->hash) {
            const size_t len = strlen(row->reason);
            snprintf(row->reason + len, sizeof row->reason - len,
                     "%snondeterministic: run %d of %d gave output hash %016llx, the parity run %016llx",
                     len ? "; " : "", r, h->repeat, (unsigned long long)hash, (unsigned long long)row->hash);
            row->verdict = KB_FAIL;
            break;
        }
    }
    for (int o = 0; o < op->n_out; o++) free(out[o]);
    return rc;
}

/* Where a variant's wall time went (the --progress line): buffers made, inputs uploaded
 * and outputs poisoned; the parity run and its download; the judgement (metrics, hash,
 * --repeat); the rotate copies; the timed samples; freeing. */
typedef struct {
    double make, run, judge, copies, timing, release;
} phase_s;

/* Parity (and timing) of one variant; fills row and ph. */
static void run_variant(kb_harness *h, kb_case_data *d, const kb_backend *b, pristine *pr, kb_row *row,
                        phase_s *ph) {
    const kb_op *op = kb_ops[d->c->op];
    const int ntensors = op->n_in + op->n_out;
    char msg[KB_MSG] = "";
    const char *step = "";
    copy copies[ROTATE_MAX_COPIES];
    int ncopies = 0, lost = 0, rc, hashing = 0;
    kb_hash_task hash_task;
    memset(copies, 0, sizeof copies);

    double t = kb_now_s();
    memset(ph, 0, sizeof *ph);
    const copy *from = pristine_get(b, d, pr, &step, msg, &rc);
    if (rc == KB_OK) rc = copy_make(b, d, &row->variant, from, &copies[ncopies++], &step, msg);
    ph->make = kb_now_s() - t;
    t = kb_now_s();
    if (rc == KB_OK) {
        step = "run";
        rc = b->enqueue(&copies[0].state, 1, msg);
        if (rc == KB_OK) rc = b->wait(msg);
    }
    for (int o = 0; rc == KB_OK && o < op->n_out; o++) {
        step = "download";
        const kb_tensor *t = &d->t[op->n_in + o];
        rc = b->download(t->host, (kb_view){copies[0].buf[op->n_in + o], 0, t->bytes}, msg);
    }
    ph->run = kb_now_s() - t;
    if (rc != KB_OK) {
        row->verdict = rc == KB_NOT_SUPPORTED ? KB_UNSUPPORTED : KB_ERRORED;
        if (rc == KB_NOT_SUPPORTED) snprintf(row->reason, sizeof row->reason, "%s", msg);
        else snprintf(row->reason, sizeof row->reason, "%s: %s", step, msg);
        lost = rc == KB_ERROR_FATAL;
        goto cleanup;
    }
    t = kb_now_s();
    /* The output hash beside the rotate copies and the timing when nothing touches the
     * host outputs until then (copies made on the device; no --repeat, which compares
     * hashes at once): joined before the row leaves, the wait counted as judging. */
    hashing = from && h->timing && h->repeat <= 1;
    kb_judge_ex(d, row->variant.acc_unit_roundoff, !hashing, row);
    if (hashing) {
        const void *outs[KB_MAX_OUT];
        size_t bytes[KB_MAX_OUT];
        for (int o = 0; o < op->n_out; o++) outs[o] = d->t[op->n_in + o].host, bytes[o] = d->t[op->n_in + o].bytes;
        kb_hash_start(&hash_task, outs, bytes, op->n_out);
    }
    rc = h->repeat > 1 ? repeat_runs(h, d, b, from, &copies[0], row, msg) : KB_OK;
    ph->judge = kb_now_s() - t;
    if (rc != KB_OK) {
        row->verdict = KB_ERRORED;
        snprintf(row->reason, sizeof row->reason, "repeat: %s", msg);
        lost = rc == KB_ERROR_FATAL;
        goto cleanup;
    }

    if (h->timing) {
        void *states[ROTATE_MAX_COPIES];
        int n = 1;
        t = kb_now_s();
        if (h->mode == KB_MODE_ROTATE) {
            const int want = rotate_copies(d, b->device());
            for (; ncopies < want; ncopies++) {
                rc = copy_make(b, d, &row->variant, from, &copies[ncopies], &step, msg);
                if (rc != KB_OK) {
                    lost = rc == KB_ERROR_FATAL;
                    copy_free(b, &copies[ncopies], ntensors);
                    break;
                }
            }
            if (lost || ncopies < 2) {
                row->verdict = KB_ERRORED;
                snprintf(row->reason, sizeof row->reason, "rotate copy %d: %s: %s", ncopies, step, msg);
                goto cleanup;
            }
            row->rotate_copies = ncopies;
            n = ncopies;
        }
        ph->copies = kb_now_s() - t;
        t = kb_now_s();
        for (int i = 0; i < n; i++) states[i] = copies[i].state;
        /* rotate: the copies' launches captured once as one replayable unit where the
         * backend records (a CUDA graph, a recorded command buffer), as a decode step's
         * graph meets its weights; else launched one by one. A capture that fails
         * (a state that cannot be captured) times the launches. */
        void *seq = NULL;
        if (h->mode == KB_MODE_ROTATE && b->record) {
            char why[KB_MSG];
            rc = b->record(states, n, &seq, why);
            if (rc == KB_ERROR_FATAL) {
                row->verdict = KB_ERRORED;
                snprintf(row->reason, sizeof row->reason, "timing: record: %s", why);
                lost = 1;
                goto cleanup;
            }
            if (rc != KB_OK) { /* the row says so: its time includes the launches one by one */
                seq = NULL;
                snprintf(row->reason, sizeof row->reason, "rotate: launched one by one, not recorded (%s)", why);
            }
        }
        sample_ctx s = {b, seq ? &seq : states, seq ? 1 : n, n, h->mode == KB_MODE_COLD, 0};
        if (time_variant(h, d, b, &s, row, msg) != 0) {
            row->verdict = KB_ERRORED;
            snprintf(row->reason, sizeof row->reason, "timing: %s", msg);
            lost = s.fatal;
        }
        if (seq && !lost) b->release(seq);
        kb_row_derive(row);
        ph->timing = kb_now_s() - t;
    }

cleanup:
    if (hashing) {
        t = kb_now_s();
        row->hash = kb_hash_finish(&hash_task);
        ph->judge += kb_now_s() - t;
    }
    if (lost) {
        memset(pr, 0, sizeof *pr); /* died with the context; the next variant makes it again */
        backend_lost(b, row);
        return; /* every buffer died with the context */
    }
    t = kb_now_s();
    for (int i = 0; i < ncopies; i++) copy_free(b, &copies[i], ntensors);
    ph->release = kb_now_s() - t;
}

/* ---- the loop ------------------------------------------------------------------------- */
typedef struct {
    int any_fail, any_error;
} outcome;

static void emit(kb_harness *h, const kb_row *row, outcome *out) {
    /* --resume: a point the previous run wrote is not written twice */
    if (kb_resume_has(h->resume, row->c, row->backend, row->selection[0] ? NULL : row->variant.name)) return;
    if (row->verdict == KB_FAIL) out->any_fail = 1;
    if (row->verdict == KB_ERRORED) out->any_error = 1;
    for (int i = 0; i < h->n_reporters; i++) kb_report_row(h->reporters[i], &h->info, row);
}

static void row_init(kb_row *row, const kb_case *c, const kb_backend *b, int available) {
    memset(row, 0, sizeof *row);
    row->c = c;
    row->backend = b->name;
    row->dev = available ? b->device() : NULL;
    const kb_op *op = kb_ops[c->op];
    row->bytes = op->bytes(c);
    row->flops = op->flops(c);
    row->layer = -1;
    if (available) {
        row->bw_ceiling = row->dev->bw;
        row->flop_ceiling = b->flop_peak ? b->flop_peak(c) : 0;
    }
    kb_variant_init(&row->variant, "-");
}

/* --best: the fastest timed row that passed; the rows that lost to it on speed
 * are dropped, every failing or erroring row is kept (the fastest wrong kernel
 * never wins, and never hides). */
static void emit_best(kb_harness *h, kb_row *rows, int n, outcome *out) {
    int best = -1, passed = 0, timed = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].reps > 0) timed++;
        if (rows[i].verdict != KB_PASS) continue;
        passed++;
        if (rows[i].reps > 0 && (best < 0 || rows[i].t_med < rows[best].t_med)) best = i;
        if (!h->timing && best < 0) best = i;
    }
    for (int i = 0; i < n; i++) {
        if (i == best) {
            snprintf(rows[i].selection, sizeof rows[i].selection, "best of %d passing (%d run, %d timed)", passed, n,
                     timed);
            emit(h, &rows[i], out);
        } else if (rows[i].verdict == KB_FAIL || rows[i].verdict == KB_ERRORED || best < 0) {
            emit(h, &rows[i], out);
        }
    }
}

/* ---- the next cases' data, made beside the current case's runs ----------------------- */
/* The jobs made ahead run one at a time in case order, each waiting for the one before
 * it: the case needed next never waits behind a later case's reference (the pool runs
 * one parallel loop at a time), and a later job starts the moment the one before ends. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t started, finished; /* jobs started; jobs finished (in order) */
    int dropping;               /* the run ends: a job not begun makes nothing */
} job_order;

typedef struct {
    const kb_harness *h;
    const kb_case_list *cases;
    int ci;          /* the case, or cases->count: none */
    kb_case_data d;
    int made;        /* kb_case_data_make's code */
    double host_bytes; /* what its data takes on the host (case_host_bytes) */
    char msg[KB_MSG];
    pthread_t thread;
    int threaded;    /* running on `thread`, joined by case_data_wait */
    job_order *order;
    uint64_t seq;    /* its place in order */
} case_data_job;

static void *case_data_work(void *p) {
    case_data_job *j = p;
    const kb_case *c = &j->cases->cases[j->ci];
    job_order *o = j->order;
    pthread_mutex_lock(&o->mu);
    while (o->finished != j->seq) pthread_cond_wait(&o->cv, &o->mu);
    const int skip = o->dropping;
    pthread_mutex_unlock(&o->mu);
    if (skip) {
        j->made = kb_fail(j->msg, KB_ERROR, "not made: the run ended first");
    } else {
        if (j->h->progress)
            fprintf(stderr, "[%d/%d] %s %s: generating inputs and fp64 reference\n", j->ci + 1, j->cases->count,
                    kb_op_name(c->op), c->label);
        const double t0 = kb_now_s();
        j->made = kb_case_data_make(&j->d, c, 1, j->msg);
        if (j->h->progress)
            fprintf(stderr, "[%d/%d] %s %s: reference took %.2f s\n", j->ci + 1, j->cases->count,
                    kb_op_name(c->op), c->label, kb_now_s() - t0);
    }
    pthread_mutex_lock(&o->mu);
    o->finished++;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Start making case ci's data after the jobs started before it: on a thread when
 * `overlap`, else now. */
static void case_data_start(case_data_job *j, const kb_harness *h, const kb_case_list *cases, int ci, int overlap,
                            job_order *order) {
    memset(j, 0, sizeof *j);
    j->h = h;
    j->cases = cases;
    j->ci = ci;
    if (ci >= cases->count) return;
    j->order = order;
    j->seq = order->started++;
    j->threaded = overlap && pthread_create(&j->thread, NULL, case_data_work, j) == 0;
    if (!j->threaded) case_data_work(j);
}

static void case_data_wait(case_data_job *j) {
    if (j->threaded) pthread_join(j->thread, NULL);
    j->threaded = 0;
}

static void case_data_drop(case_data_job *j) {
    case_data_wait(j);
    if (j->ci < j->cases->count && j->made == KB_OK) kb_case_data_free(&j->d);
    j->ci = j->cases->count;
}

/* The reason of a backend's row under --tune when its variants have no tunables. */
static void untunable_reason(const kb_backend *b, char *out, size_t n) {
    size_t o = (size_t)snprintf(out, n, "%s has no tunables (--tune sets those of", b->name);
    for (int i = 0; i < kb_backend_count && o < n; i++)
        if (kb_backends[i]->tunable) o += (size_t)snprintf(out + o, n - o, " %s", kb_backends[i]->name);
    if (o < n) snprintf(out + o, n - o, ")");
}

/* --resume: is every point of case c already written? A backend's points are the rows
 * one variant each (or its one row without a variant: skipped, no kernel, no
 * tunables...), so a case cut short after some variants, or one resumed with other
 * variants or --tune points, runs again for the rows it lacks. */
static int case_done(kb_harness *h, const kb_case *c, const int *available, kb_variant *vars) {
    if (!h->resume) return 0;
    for (int bi = 0; bi < h->n_backends; bi++) {
        const kb_backend *b = h->backends[bi];
        if (kb_resume_has(h->resume, c, b->name, "-")) continue;
        if (!available[bi] || !kb_tune_runs_on(h->opt.tune, b->tunable)) return 0;
        if (h->best) { /* its one row names the winner */
            if (!kb_resume_has(h->resume, c, b->name, NULL)) return 0;
            continue;
        }
        char msg[KB_MSG] = "";
        const int nv = b->variants(c, &h->opt, vars, MAX_VARIANTS, msg);
        if (nv <= 0) return 0;
        for (int vi = 0; vi < nv; vi++) {
            if (!kb_variant_matches(h->variant_filter, vars[vi].name)) continue;
            h->variants_matched++;
            if (!kb_resume_has(h->resume, c, b->name, vars[vi].name)) return 0;
        }
    }
    return 1;
}

/* The first case from ci on that --resume has not finished (case_done). */
static int next_case(kb_harness *h, const kb_case_list *cases, int ci, const int *available, kb_variant *vars) {
    while (ci < cases->count && case_done(h, &cases->cases[ci], available, vars)) ci++;
    return ci;
}

/* The cases ahead whose data is being made (case_data_job each), in case order: the
 * next case always, up to LOOKAHEAD_MAX while the host holds them, made one after
 * another (job_order). The fp64 references of a table's large GEMMs take longer than
 * the case before them runs (15 s for 18944x4096x3584 on the H200's 16 cores) and big
 * ones come together: with one case ahead the qwen table waited ~20 s for references
 * (its --progress lines). A case beyond the next starts only when every case data alive
 * (the current one's, those ahead, its own) fits in half the host's available memory,
 * reckoned from their sizes (calloc's pages are not counted by the kernel until
 * touched). */
enum { LOOKAHEAD_MAX = 6 };
typedef struct {
    case_data_job jobs[LOOKAHEAD_MAX]; /* a ring: jobs[head] is the front */
    int head, count;
    int last;             /* the last case started (or -1) */
    int depth;            /* LOOKAHEAD_MAX, or 1 when the host also runs a timed backend */
    double current_bytes; /* the data of the case being run */
    kb_harness *h;
    const kb_case_list *cases;
    int overlap;
    job_order order;
} lookahead;

/* Host bytes of case c's data (tensors_host_bytes), 0 when its shape is invalid (its
 * job says why). */
static double case_host_bytes(const kb_case *c) {
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    char msg[KB_MSG];
    return kb_case_tensors(c, t, msg) == KB_OK ? tensors_host_bytes(kb_ops[c->op], t) : 0;
}

static void lookahead_init(lookahead *q, kb_harness *h, const kb_case_list *cases, int overlap) {
    memset(q, 0, sizeof *q);
    q->h = h;
    q->cases = cases;
    q->overlap = overlap;
    q->depth = overlap ? LOOKAHEAD_MAX : 1; /* made synchronously: one at a time */
    q->last = -1;
    pthread_mutex_init(&q->order.mu, NULL);
    pthread_cond_init(&q->order.cv, NULL);
}

/* Start cases from ci on (the next ones --resume has not finished) while there is room. */
static void lookahead_fill(lookahead *q, int ci, const int *available, kb_variant *vars) {
    while (ci < q->cases->count && q->count < q->depth) {
        const double need = case_host_bytes(&q->cases->cases[ci]);
        if (q->count > 0) { /* beyond the next case: only while the host holds them all */
            double alive = q->current_bytes + need;
            for (int i = 0; i < q->count; i++) alive += q->jobs[(q->head + i) % LOOKAHEAD_MAX].host_bytes;
            const double avail = (double)kb_host_mem_available();
            if (!(avail > 0 && alive <= 0.5 * avail)) return;
        }
        case_data_job *j = &q->jobs[(q->head + q->count) % LOOKAHEAD_MAX];
        case_data_start(j, q->h, q->cases, ci, q->overlap, &q->order);
        j->host_bytes = need;
        q->count++;
        q->last = ci;
        ci = next_case(q->h, q->cases, ci + 1, available, vars);
    }
}

/* The front case's index (cases->count: none left). */
static int lookahead_front(const lookahead *q) { return q->count ? q->jobs[q->head].ci : q->cases->count; }

/* The front job, its data made; the caller takes the data. */
static case_data_job *lookahead_pop(lookahead *q) {
    case_data_job *j = &q->jobs[q->head];
    case_data_wait(j);
    q->head = (q->head + 1) % LOOKAHEAD_MAX;
    q->count--;
    return j;
}

/* The cases made ahead that will not run (a spent budget, a signal): their references'
 * parallel loops stop early rather than finish for nobody (six large GEMMs' references
 * would hold the exit for a minute). */
static void lookahead_drop(lookahead *q) {
    if (q->count) {
        pthread_mutex_lock(&q->order.mu);
        q->order.dropping = 1;
        pthread_mutex_unlock(&q->order.mu);
        kb_parallel_cancel(1);
        while (q->count) case_data_drop(lookahead_pop(q));
        kb_parallel_cancel(0);
    }
    pthread_mutex_destroy(&q->order.mu);
    pthread_cond_destroy(&q->order.cv);
}

int kb_harness_run(kb_harness *h, const kb_case_list *cases) {
    const double t0 = kb_now_s();
    outcome out = {0, 0};
    int available[KB_MAX_BACKENDS];
    char why[KB_MAX_BACKENDS][KB_MSG];
    int overlap = 1; /* no timed backend computes on the host's cores */
    for (int i = 0; i < h->n_backends; i++) {
        available[i] = h->backends[i]->probe(&h->opt, why[i]) == KB_OK;
        if (!available[i]) continue;
        if (h->timing && h->backends[i]->device()->runs_on_host) overlap = 0;
        for (int r = 0; r < h->n_reporters; r++)
            kb_report_device(h->reporters[r], h->backends[i]->name, h->backends[i]->device());
    }

    kb_variant *vars = malloc(MAX_VARIANTS * sizeof *vars);
    kb_row *rows = malloc(MAX_VARIANTS * sizeof *rows);
    if (!vars || !rows) {
        fprintf(stderr, "kbench: out of host memory\n");
        return KB_EXIT_ERROR;
    }
    int incomplete = 0, exit_code = 0;
    lookahead q;
    lookahead_init(&q, h, cases, overlap);
    lookahead_fill(&q, next_case(h, cases, 0, available, vars), available, vars);
    for (int ci = lookahead_front(&q); ci < cases->count && !kb_harness_stopped(); ci = lookahead_front(&q)) {
        const kb_case *c = &cases->cases[ci];
        if (h->budget_s > 0 && kb_now_s() - t0 > h->budget_s) {
            fprintf(stderr, "kbench: the run's budget of %g s is spent after %d of %d cases; --resume continues\n",
                    h->budget_s, ci, cases->count);
            incomplete = 1;
            break;
        }
        case_data_job *job = lookahead_pop(&q);
        kb_case_data d = job->d;
        const int made = job->made;
        char msg[KB_MSG];
        memcpy(msg, job->msg, sizeof msg);
        const double d_bytes = job->host_bytes;
        job->ci = cases->count; /* d owns the data now */
        q.current_bytes = made == KB_OK ? d_bytes : 0;
        if (h->budget_s <= 0 || kb_now_s() - t0 <= h->budget_s)
            lookahead_fill(&q, next_case(h, cases, q.last + 1, available, vars), available, vars);
        for (int bi = 0; bi < h->n_backends && !kb_harness_stopped(); bi++) {
            const kb_backend *b = h->backends[bi];
            kb_row row;
            row_init(&row, c, b, available[bi]);
            if (!available[bi]) {
                row.verdict = KB_SKIPPED;
                snprintf(row.reason, sizeof row.reason, "%s unavailable: %s", b->name, why[bi]);
                emit(h, &row, &out);
                continue;
            }
            if (made != KB_OK) { /* too big for this host: a row, not a crash */
                row.verdict = KB_UNSUPPORTED;
                snprintf(row.reason, sizeof row.reason, "%s", msg);
                emit(h, &row, &out);
                continue;
            }
            if (!kb_tune_runs_on(h->opt.tune, b->tunable)) { /* asked for points it cannot have: say so, once per case */
                row.verdict = KB_UNSUPPORTED;
                untunable_reason(b, row.reason, sizeof row.reason);
                emit(h, &row, &out);
                continue;
            }
            char vmsg[KB_MSG] = "";
            const int nv = b->variants(c, &h->opt, vars, MAX_VARIANTS, vmsg);
            if (nv <= 0) {
                row.verdict = nv == 0 ? KB_UNSUPPORTED : KB_ERRORED;
                if (nv == 0 && !vmsg[0]) snprintf(vmsg, sizeof vmsg, "%s has no %s kernel", b->name, kb_op_name(c->op));
                snprintf(row.reason, sizeof row.reason, "%s", vmsg);
                emit(h, &row, &out);
                continue;
            }
            /* the device must hold the case's tensors; say so before allocating */
            const double dev_need = case_device_bytes(&d);
            const kb_device_info *dev = b->device();
            if (dev->mem_free && dev_need > (double)dev->mem_free) {
                if (h->strict_sizes) {
                    fprintf(stderr, "kbench: %s %s needs %.1f GiB of %s memory, %.1f GiB free\n", kb_op_name(c->op),
                            c->label, dev_need / 1073741824.0, b->name, (double)dev->mem_free / 1073741824.0);
                    exit_code = KB_EXIT_USAGE;
                    break;
                }
                row.verdict = KB_UNSUPPORTED;
                snprintf(row.reason, sizeof row.reason, "needs %.1f GiB of device memory, %.1f GiB free",
                         dev_need / 1073741824.0, (double)dev->mem_free / 1073741824.0);
                emit(h, &row, &out);
                continue;
            }
            if (h->best && kb_resume_has(h->resume, c, b->name, NULL)) continue;
            int nrows = 0;
            pristine pr = {0};
            for (int vi = 0; vi < nv && !kb_harness_stopped(); vi++) {
                if (!kb_variant_matches(h->variant_filter, vars[vi].name)) continue;
                h->variants_matched++;
                if (!h->best && kb_resume_has(h->resume, c, b->name, vars[vi].name)) continue;
                kb_row *r = &rows[nrows];
                row_init(r, c, b, 1);
                r->variant = vars[vi];
                const double tc = kb_now_s();
                phase_s ph;
                run_variant(h, &d, b, &pr, r, &ph);
                if (kb_harness_stopped()) break; /* an interrupted row is not a result */
                if (h->progress)
                    fprintf(stderr,
                            "[%d/%d] %s %s %s/%s: %s (%.2f s: make %.2f, run %.2f, judge %.2f, copies %.2f, "
                            "timing %.2f, free %.2f)\n",
                            ci + 1, cases->count, kb_op_name(c->op), c->label, b->name, r->variant.name,
                            kb_verdict_name(r->verdict), kb_now_s() - tc, ph.make, ph.run, ph.judge, ph.copies,
                            ph.timing, ph.release);
                if (h->best) nrows++;
                else emit(h, r, &out);
            }
            if (pr.state == 1) copy_free(b, &pr.c, kb_ops[c->op]->n_in + kb_ops[c->op]->n_out);
            if (h->best && !kb_harness_stopped()) emit_best(h, rows, nrows, &out);
        }
        if (made == KB_OK) kb_case_data_free(&d);
        q.current_bytes = 0;
        if (exit_code) break;
    }
    lookahead_drop(&q);
    free(vars);
    free(rows);
    for (int r = 0; r < h->n_reporters; r++) kb_report_end(h->reporters[r], kb_now_s() - t0);
    h->n_reporters = 0;
    if (exit_code) return exit_code;
    if (kb_harness_stopped()) return 128 + kb_harness_stopped();
    if (out.any_fail) return KB_EXIT_FAIL;
    if (out.any_error) return KB_EXIT_ERROR;
    return incomplete ? KB_EXIT_INCOMPLETE : KB_EXIT_PASS;
}
