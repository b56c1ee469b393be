/* metrics.c - error metrics of one output against the reference (metrics.h). */
#include "bench/metrics.h"

#include "ref/ref.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Poison: quiet-bit-clear NaNs with a 0xA5 payload. Kernels that compute a NaN
 * produce the canonical quiet NaN, never these. */
#define POISON_F32 0x7FA5A5A5u
#define POISON_16 0x7DA5u  /* f16: exponent 11111, mantissa != 0 */
#define POISON_BF16 0x7FA5u

void kb_poison(kb_dtype t, void *buf, int64_t count) {
    if (t == KB_F32 || t == KB_I32) {
        uint32_t p = POISON_F32, *b = buf;
        for (int64_t i = 0; i < count; i++) b[i] = p;
    } else if (t == KB_F16 || t == KB_BF16) {
        uint16_t p = t == KB_F16 ? POISON_16 : POISON_BF16, *b = buf;
        for (int64_t i = 0; i < count; i++) b[i] = p;
    } else {
        memset(buf, 0xFF, kb_dtype_bytes(t, count)); /* fp8: 0xFF is NaN in e4m3 and e5m2 */
    }
}

int kb_is_poison(kb_dtype t, const void *buf, int64_t i) {
    if (t == KB_F32 || t == KB_I32) return ((const uint32_t *)buf)[i] == POISON_F32;
    if (t == KB_F16) return ((const uint16_t *)buf)[i] == POISON_16;
    if (t == KB_BF16) return ((const uint16_t *)buf)[i] == POISON_BF16;
    return ((const uint8_t *)buf)[i] == 0xFF;
}

uint64_t kb_fnv1a64(const void *data, size_t n) { return kb_fnv1a64_update(0xcbf29ce484222325ull, data, n); }

uint64_t kb_fnv1a64_update(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- metrics over fixed chunks: the same sums for any thread count ------------------------ */
/* Each chunk of METRICS_CHUNK elements is reduced on its own and the chunks' partials are
 * combined in chunk order, so the result depends on n, never on how many threads ran;
 * the FNV-1a hash (byte-serial by definition) runs on a thread of its own beside them. */
enum { METRICS_CHUNK = 1 << 18, METRICS_MAX_THREADS = 16 };

typedef struct {
    double ref2, err2, dot, out2, so, sr, soo, srr, sor, max_abs, max_rel, worst;
    int64_t nf, n_bad, n_nan, n_overflow, n_unwritten, first_bad;
} partial;

typedef struct {
    kb_dtype t;
    const void *out;
    const double *ref, *mag;
    int64_t n, nchunks;
    const kb_tolerance *tol;
    double floor, maxfin;
    int pass; /* 1: sum of ref^2 only; 2: everything else */
    partial *parts;
    int nthreads;
} metrics_job;

typedef struct {
    metrics_job *j;
    int index;
} metrics_worker;

static void chunk_ref2(const metrics_job *j, int64_t c, partial *p) {
    const int64_t b = c * METRICS_CHUNK, e = b + METRICS_CHUNK < j->n ? b + METRICS_CHUNK : j->n;
    double s = 0;
    for (int64_t i = b; i < e; i++) s += j->ref[i] * j->ref[i];
    p->ref2 = s;
}

static void chunk_metrics(const metrics_job *j, int64_t c, partial *p) {
    const int64_t b = c * METRICS_CHUNK, e = b + METRICS_CHUNK < j->n ? b + METRICS_CHUNK : j->n;
    double o[1024];
    const double *ref = j->ref, *mag = j->mag;
    const kb_tolerance *tol = j->tol;
    p->first_bad = -1;
    for (int64_t i0 = b; i0 < e; i0 += 1024) {
        const int64_t m = e - i0 < 1024 ? e - i0 : 1024;
        kb_decode(j->t, (const uint8_t *)j->out + kb_dtype_bytes(j->t, i0), o, m);
        for (int64_t k = 0; k < m; k++) {
            const int64_t i = i0 + k;
            int bad = 0;
            if (kb_is_poison(j->t, j->out, i)) {
                p->n_unwritten++;
                bad = 1;
            } else if (!isfinite(o[k])) {
                if (isinf(o[k]) && fabs(ref[i]) > j->maxfin && signbit(o[k]) == signbit(ref[i])) p->n_overflow++;
                else p->n_nan++;
                bad = 1;
            } else {
                double err = fabs(o[k] - ref[i]);
                double lim = tol ? tol->rel * fabs(ref[i]) + tol->acc * mag[i] + tol->abs : INFINITY;
                if (err > p->max_abs) p->max_abs = err;
                double rel = err / fmax(fabs(ref[i]), j->floor);
                if (rel > p->max_rel) p->max_rel = rel;
                double ratio = !tol ? 0 : lim > 0 ? err / lim : (err > 0 ? INFINITY : 0);
                if (ratio > p->worst) p->worst = ratio;
                if (err > lim) {
                    p->n_bad++;
                    bad = 1;
                }
                p->err2 += (o[k] - ref[i]) * (o[k] - ref[i]);
                p->dot += o[k] * ref[i];
                p->out2 += o[k] * o[k];
                p->so += o[k];
                p->sr += ref[i];
                p->soo += o[k] * o[k];
                p->srr += ref[i] * ref[i];
                p->sor += o[k] * ref[i];
                p->nf++;
            }
            if (bad && p->first_bad < 0) p->first_bad = i;
        }
    }
}

/* chunks index, index + nthreads, ...: which thread reduces a chunk does not matter */
static void *metrics_work(void *arg) {
    metrics_worker *w = arg;
    metrics_job *j = w->j;
    for (int64_t c = w->index; c < j->nchunks; c += j->nthreads) {
        if (j->pass == 1) chunk_ref2(j, c, &j->parts[c]);
        else chunk_metrics(j, c, &j->parts[c]);
    }
    return NULL;
}

static void metrics_pass(metrics_job *j, int pass) {
    j->pass = pass;
    pthread_t th[METRICS_MAX_THREADS];
    metrics_worker w[METRICS_MAX_THREADS];
    int started = 0;
    for (int k = 1; k < j->nthreads; k++) {
        w[k] = (metrics_worker){j, k};
        if (pthread_create(&th[k], NULL, metrics_work, &w[k]) != 0) break;
        started = k;
    }
    /* chunks of a thread that could not start run here, after this thread's own */
    w[0] = (metrics_worker){j, 0};
    metrics_work(&w[0]);
    for (int k = started + 1; k < j->nthreads; k++) {
        w[k] = (metrics_worker){j, k};
        metrics_work(&w[k]);
    }
    for (int k = 1; k <= started; k++) pthread_join(th[k], NULL);
}

static void *hash_task_work(void *arg) {
    kb_hash_task *t = arg;
    uint64_t h = kb_fnv1a64(NULL, 0);
    for (int i = 0; i < t->n; i++) h = kb_fnv1a64_update(h, t->data[i], t->bytes[i]);
    t->hash = h;
    return NULL;
}

void kb_hash_start(kb_hash_task *t, const void *const *data, const size_t *bytes, int n) {
    memset(t, 0, sizeof *t);
    t->n = n < 0 ? 0 : n > KB_MAX_OUT ? KB_MAX_OUT : n;
    for (int i = 0; i < t->n; i++) t->data[i] = data[i], t->bytes[i] = bytes[i];
    t->threaded = pthread_create(&t->thread, NULL, hash_task_work, t) == 0;
    if (!t->threaded) hash_task_work(t);
}

uint64_t kb_hash_finish(kb_hash_task *t) {
    if (t->threaded) pthread_join(t->thread, NULL);
    t->threaded = 0;
    return t->hash;
}

void kb_compute_metrics(kb_dtype t, const void *out, const double *ref, const double *mag, int64_t n,
                        const kb_tolerance *tol, kb_metrics *m) {
    kb_compute_metrics_ex(t, out, ref, mag, n, tol, 1, m);
}

void kb_compute_metrics_ex(kb_dtype t, const void *out, const double *ref, const double *mag, int64_t n,
                           const kb_tolerance *tol, int with_hash, kb_metrics *m) {
    memset(m, 0, sizeof *m);
    m->n = n;
    m->first_bad = -1;
    const size_t out_bytes = kb_dtype_bytes(t, n);
    metrics_job j = {.t = t, .out = out, .ref = ref, .mag = mag, .n = n, .tol = tol,
                     .nchunks = (n + METRICS_CHUNK - 1) / METRICS_CHUNK};
    j.parts = calloc((size_t)(j.nchunks > 0 ? j.nchunks : 1), sizeof *j.parts);
    if (!j.parts) {
        m->hash = with_hash ? kb_fnv1a64(out, out_bytes) : 0;
        m->n_nan = n; /* cannot judge: count every element as bad */
        return;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    j.nthreads = (int)(cores < 1 ? 1 : cores > METRICS_MAX_THREADS ? METRICS_MAX_THREADS : cores);
    if (j.nthreads > j.nchunks) j.nthreads = j.nchunks > 0 ? (int)j.nchunks : 1;
    /* the hash beside the metrics when the output spans chunks, else at once */
    kb_hash_task hash;
    const int hash_beside = with_hash && j.nchunks > 1;
    if (hash_beside) kb_hash_start(&hash, &out, &out_bytes, 1);
    else m->hash = with_hash ? kb_fnv1a64(out, out_bytes) : 0;

    metrics_pass(&j, 1);
    double ref2 = 0;
    for (int64_t c = 0; c < j.nchunks; c++) ref2 += j.parts[c].ref2;
    j.floor = 1e-3 * sqrt(ref2 / (double)(n > 0 ? n : 1));
    if (j.floor == 0) j.floor = 1e-30;
    j.maxfin = kb_max_finite(t);
    memset(j.parts, 0, (size_t)j.nchunks * sizeof *j.parts);
    metrics_pass(&j, 2);

    double err2 = 0, dot = 0, out2 = 0, so = 0, sr = 0, soo = 0, srr = 0, sor = 0;
    int64_t nf = 0;
    for (int64_t c = 0; c < j.nchunks; c++) { /* in chunk order */
        const partial *p = &j.parts[c];
        m->n_unwritten += p->n_unwritten;
        m->n_overflow += p->n_overflow;
        m->n_nan += p->n_nan;
        m->n_bad += p->n_bad;
        if (p->max_abs > m->max_abs) m->max_abs = p->max_abs;
        if (p->max_rel > m->max_rel) m->max_rel = p->max_rel;
        if (p->worst > m->worst) m->worst = p->worst;
        if (m->first_bad < 0 && p->first_bad >= 0) m->first_bad = p->first_bad;
        err2 += p->err2, dot += p->dot, out2 += p->out2, so += p->so, sr += p->sr;
        soo += p->soo, srr += p->srr, sor += p->sor, nf += p->nf;
    }
    free(j.parts);
    m->rel_l2 = ref2 > 0 ? sqrt(err2 / ref2) : sqrt(err2);
    m->nmse = ref2 > 0 ? err2 / ref2 : err2;
    m->cosine = (out2 > 0 && ref2 > 0) ? dot / sqrt(out2 * ref2) : (out2 == ref2 ? 1.0 : 0.0);
    if (nf > 1) {
        double cov = sor - so * sr / (double)nf, vo = soo - so * so / (double)nf, vr = srr - sr * sr / (double)nf;
        m->pearson = (vo > 0 && vr > 0) ? cov / sqrt(vo * vr) : 1.0;
    } else {
        m->pearson = 1.0;
    }
    if (hash_beside) m->hash = kb_hash_finish(&hash);
}

int kb_metrics_pass(const kb_metrics *m) {
    return m->n_bad == 0 && m->n_nan == 0 && m->n_unwritten == 0 && m->n_overflow == 0;
}
