/* metrics.h - how an output is judged against the fp64 reference.
 * Definitions (results/README.md, "Row schema"), over the n output elements:
 *   max_abs   max |out - ref|
 *   max_rel   max |out - ref| / max(|ref|, floor), floor = 1e-3 * rms(ref), so
 *             near-zero outputs do not dominate
 *   rel_l2    ||out - ref|| / ||ref||
 *   nmse      sum (out - ref)^2 / sum ref^2 (llama.cpp test-backend-ops' metric)
 *   cosine    out.ref / (||out|| ||ref||);  pearson: the same on mean-removed values
 *   n_bad     elements with |out - ref| > tol_i (the op's tolerance model)
 *   worst     max |out - ref| / tol_i (how close to failing; > 1 fails)
 *   n_nan     NaN/Inf outputs where the reference is finite (poison excluded)
 *   n_overflow outputs that are +-inf because |ref| exceeds the type's max
 *   n_unwritten elements still holding the poison pattern
 *   hash      64-bit FNV-1a of the output bytes (determinism checks)
 * Metrics over non-finite outputs use only the finite elements. */
#ifndef KB_METRICS_H
#define KB_METRICS_H

#include "bench/kbench.h"
#include "bench/op.h"

#include <pthread.h>

typedef struct {
    int64_t n;
    double max_abs, max_rel, rel_l2, nmse, cosine, pearson, worst;
    int64_t n_bad, n_nan, n_overflow, n_unwritten;
    int64_t first_bad; /* index of the first failing element, -1 if none */
    uint64_t hash;
} kb_metrics;

/* The poison written into outputs before every run: a NaN with a payload no
 * arithmetic produces, per type. */
void kb_poison(kb_dtype t, void *buf, int64_t count);
int kb_is_poison(kb_dtype t, const void *buf, int64_t i);

uint64_t kb_fnv1a64(const void *data, size_t n);
/* FNV-1a continued over more bytes: kb_fnv1a64_update(kb_fnv1a64(a), b) hashes a then b. */
uint64_t kb_fnv1a64_update(uint64_t h, const void *data, size_t n);

/* FNV-1a over the concatenation of n buffers on a thread of its own (byte-serial, ~0.9
 * GB/s: the largest part of judging a big output), so the caller can go on with work
 * that leaves the buffers alone; kb_hash_finish waits and returns the hash. Without a
 * thread it hashes at once. */
typedef struct {
    const void *data[KB_MAX_OUT];
    size_t bytes[KB_MAX_OUT];
    int n, threaded;
    uint64_t hash;
    pthread_t thread;
} kb_hash_task;
void kb_hash_start(kb_hash_task *t, const void *const *data, const size_t *bytes, int n);
uint64_t kb_hash_finish(kb_hash_task *t);

/* out: raw output in its dtype; ref/mag: the reference and its magnitude. tol NULL:
 * measure only (nothing counts as beyond tolerance; worst stays 0). with_hash 0: m->hash
 * is left 0 (the caller hashes, e.g. with kb_hash_start). */
void kb_compute_metrics_ex(kb_dtype t, const void *out, const double *ref, const double *mag, int64_t n,
                           const kb_tolerance *tol, int with_hash, kb_metrics *m);
/* kb_compute_metrics_ex with the hash */
void kb_compute_metrics(kb_dtype t, const void *out, const double *ref, const double *mag, int64_t n,
                        const kb_tolerance *tol, kb_metrics *m);
/* 1 when every element is within tolerance, written, finite and not overflowed. */
int kb_metrics_pass(const kb_metrics *m);

#endif
