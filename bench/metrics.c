/* metrics.c - error metrics of one output against the reference (metrics.h). */
#include "bench/metrics.h"

#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void kb_compute_metrics(kb_dtype t, const void *out, const double *ref, const double *mag, int64_t n,
                        const kb_tolerance *tol, kb_metrics *m) {
    memset(m, 0, sizeof *m);
    m->n = n;
    m->first_bad = -1;
    m->hash = kb_fnv1a64(out, kb_dtype_bytes(t, n));
    double *o = malloc((size_t)(n > 0 ? n : 1) * sizeof *o);
    if (!o) {
        m->n_nan = n; /* cannot judge: count every element as bad */
        return;
    }
    kb_decode(t, out, o, n);

    double ref2 = 0;
    for (int64_t i = 0; i < n; i++) {
        ref2 += ref[i] * ref[i];
    }
    double floor = 1e-3 * sqrt(ref2 / (double)n);
    if (floor == 0) floor = 1e-30;
    double maxfin = kb_max_finite(t);

    double err2 = 0, dot = 0, out2 = 0, so = 0, sr = 0, soo = 0, srr = 0, sor = 0;
    int64_t nf = 0;
    for (int64_t i = 0; i < n; i++) {
        int bad = 0;
        if (kb_is_poison(t, out, i)) {
            m->n_unwritten++;
            bad = 1;
        } else if (!isfinite(o[i])) {
            if (isinf(o[i]) && fabs(ref[i]) > maxfin && signbit(o[i]) == signbit(ref[i])) m->n_overflow++;
            else m->n_nan++;
            bad = 1;
        } else {
            double e = fabs(o[i] - ref[i]);
            double lim = tol ? tol->rel * fabs(ref[i]) + tol->acc * mag[i] + tol->abs : INFINITY;
            if (e > m->max_abs) m->max_abs = e;
            double rel = e / fmax(fabs(ref[i]), floor);
            if (rel > m->max_rel) m->max_rel = rel;
            double ratio = !tol ? 0 : lim > 0 ? e / lim : (e > 0 ? INFINITY : 0);
            if (ratio > m->worst) m->worst = ratio;
            if (e > lim) {
                m->n_bad++;
                bad = 1;
            }
            err2 += (o[i] - ref[i]) * (o[i] - ref[i]);
            dot += o[i] * ref[i];
            out2 += o[i] * o[i];
            so += o[i];
            sr += ref[i];
            soo += o[i] * o[i];
            srr += ref[i] * ref[i];
            sor += o[i] * ref[i];
            nf++;
        }
        if (bad && m->first_bad < 0) m->first_bad = i;
    }
    m->rel_l2 = ref2 > 0 ? sqrt(err2 / ref2) : sqrt(err2);
    m->nmse = ref2 > 0 ? err2 / ref2 : err2;
    m->cosine = (out2 > 0 && ref2 > 0) ? dot / sqrt(out2 * ref2) : (out2 == ref2 ? 1.0 : 0.0);
    if (nf > 1) {
        double cov = sor - so * sr / (double)nf, vo = soo - so * so / (double)nf, vr = srr - sr * sr / (double)nf;
        m->pearson = (vo > 0 && vr > 0) ? cov / sqrt(vo * vr) : 1.0;
    } else {
        m->pearson = 1.0;
    }
    free(o);
}

int kb_metrics_pass(const kb_metrics *m) {
    return m->n_bad == 0 && m->n_nan == 0 && m->n_unwritten == 0 && m->n_overflow == 0;
}
