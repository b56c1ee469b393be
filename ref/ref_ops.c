/* ref_ops.c - the scalar fp64 references of ref/ref.h and the thread pool they run on.
 *
 * Every reference decodes its inputs exactly to double, accumulates in double in a
 * fixed order, and never rounds to an output type (kb_round_to is that separate
 * step). Work is split into independent outputs; each output is computed by exactly
 * one thread with the same sequence of operations whatever the thread count, so
 * the result bits never depend on it.
 *
 * `mag` (ref.h): the magnitude a float implementation's rounding error scales with.
 * The tolerance model (bench/ops.c) is tol_i = u_out*|ref_i| + c*u_acc*L*mag_i,
 * with L a length factor per op. Per op:
 *   rmsnorm   mag_i = |x_i| |w_i| / rms                      (= |ref_i|; L ~ k for the
 *             sum of squares, whose relative error moves every output alike)
 *   gemm_fp8  TENSOR/OUTER: mag = |sa sb| * sum_k |a_k b_k|
 *             VEC128/BLK128: mag = sum_blocks |sa sb| * sum_{k in block} |a_k b_k|
 *             (the classic dot-product bound: |err| <= gamma_L * sum |terms|, L = k)
 *   rope_neox mag_i = |x_i cos| + |x_p sin|  +  |angle| * (|x_i sin| + |x_p cos|)
 *             (p = partner index). The first part bounds the rounding of the two
 *             products and their sum; the second is |d out_i / d ln(angle)|: a float
 *             implementation's angle carries a relative error of a few u (powf) up
 *             to ~2(i+1)u (ggml's theta *= theta_scale), and at positions ~1e5 the
 *             angle is ~1e5 rad, so this term dominates (L ~ a few, see report).
 *   attention mag_c = sum_j p_j |v_jc|  +  sum_j p_j |v_jc - out_c| * (S_j + 1),
 *             S_j = sum_l |q_l k_jl| / sqrt(d). The first part bounds the weighted
 *             sum of V and the softmax normalisation; the second is the sensitivity
 *             of out_c to relative errors in the scores (a score error ds_j moves
 *             out_c by p_j (v_jc - out_c) ds_j, and a float score has |ds_j| ~
 *             d u S_j; the +1 stands for expf's and the division's own rounding).
 *   dequant_q4k, embed: no accumulation, no mag (exact decodes).
 */
#include "ref/ref.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The references' bits must not depend on the compiler fusing a*b+c into an FMA.
 * GCC in ISO C mode (-std=c11, as CMake sets) already uses -ffp-contract=off;
 * clang needs the standard pragma. (The fp8 GEMM products are exact in double,
 * so there an FMA would not change a bit anyway.) */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

static void ref_abort(const char *what) {
    fprintf(stderr, "kbench reference: %s\n", what);
    abort();
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ref_abort("out of memory");
    return p;
}

static void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ref_abort("out of memory");
    return p;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ======================================================================== */
/* Thread pool: kb_parallel_for                                              */
/* ======================================================================== */
/* The caller runs chunk 0, workers 1..T-1 run the others. Chunk t covers the
 * contiguous range [n*t/T, n*(t+1)/T), so which thread computes an output does
 * change with T, but how it is computed does not. Calls are serialised by
 * pool_lock; a call made from inside a running chunk (nested) runs serially on
 * the calling thread instead of deadlocking. */

#define KB_MAX_THREADS 256

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int requested_threads = 0; /* 0 = online cores */
static _Thread_local int inside_parallel_for = 0;

typedef struct {
    int nthreads; /* caller + workers; 0 = not started */
    pthread_t workers[KB_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t generation;
    int pending;
    int shutdown;
    /* the job of the current generation */
    int64_t n;
    int nchunks;
    void (*fn)(int64_t, void *);
    void *arg;
} kb_pool;

static kb_pool pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void run_chunk(int64_t n, int nchunks, int chunk, void (*fn)(int64_t, void *), void *arg) {
    int64_t begin = n * chunk / nchunks, end = n * (chunk + 1) / nchunks;
    for (int64_t i = begin; i < end; i++) fn(i, arg);
}

typedef struct {
    int index;
    uint64_t start_generation; /* the generation already done when it was started */
} worker_arg;

static worker_arg worker_args[KB_MAX_THREADS];

static void *pool_worker(void *p) {
    const int index = ((worker_arg *)p)->index;
    uint64_t seen = ((worker_arg *)p)->start_generation;
    inside_parallel_for = 1;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.generation == seen && !pool.shutdown) pthread_cond_wait(&pool.go, &pool.mu);
        if (pool.shutdown) break;
        seen = pool.generation;
        int64_t n = pool.n;
        int nchunks = pool.nchunks;
        void (*fn)(int64_t, void *) = pool.fn;
        void *arg = pool.arg;
        pthread_mutex_unlock(&pool.mu);
        if (index < nchunks) run_chunk(n, nchunks, index, fn, arg);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

static void pool_stop(void) {
    if (pool.nthreads <= 1) {
        pool.nthreads = 0;
        return;
    }
    pthread_mutex_lock(&pool.mu);
    pool.shutdown = 1;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    for (int w = 1; w < pool.nthreads; w++) pthread_join(pool.workers[w], NULL);
    pool.shutdown = 0;
    pool.nthreads = 0;
}

static void pool_start(int nthreads) {
    pool.nthreads = 1;
    pthread_mutex_lock(&pool.mu);
    for (int w = 1; w < nthreads; w++) {
        worker_args[w].index = w;
        worker_args[w].start_generation = pool.generation;
        if (pthread_create(&pool.workers[w], NULL, pool_worker, &worker_args[w]) != 0) break; /* run with fewer */
        pool.nthreads = w + 1;
    }
    pthread_mutex_unlock(&pool.mu);
}

void kb_set_ref_threads(int threads) {
    pthread_mutex_lock(&pool_lock);
    requested_threads = threads < 0 ? 0 : threads;
    pthread_mutex_unlock(&pool_lock);
}

static int resolve_threads(int requested) {
    long t = requested;
    if (t <= 0) t = sysconf(_SC_NPROCESSORS_ONLN);
    if (t < 1) t = 1;
    if (t > KB_MAX_THREADS) t = KB_MAX_THREADS;
    return (int)t;
}

int kb_ref_threads(void) {
    pthread_mutex_lock(&pool_lock);
    int t = resolve_threads(requested_threads);
    pthread_mutex_unlock(&pool_lock);
    return t;
}

void kb_parallel_for(int64_t n, void (*fn)(int64_t i, void *arg), void *arg) {
    if (n <= 0) return;
    if (inside_parallel_for) { /* nested: this thread already is one of the pool's */
        for (int64_t i = 0; i < n; i++) fn(i, arg);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    int want = resolve_threads(requested_threads);
    if (pool.nthreads != want) {
        pool_stop();
        pool_start(want);
    }
    int nchunks = pool.nthreads;
    if ((int64_t)nchunks > n) nchunks = (int)n;
    inside_parallel_for = 1;
    if (nchunks > 1) {
        pthread_mutex_lock(&pool.mu);
        pool.n = n;
        pool.nchunks = nchunks;
        pool.fn = fn;
        pool.arg = arg;
        pool.pending = pool.nthreads - 1;
        pool.generation++;
        pthread_cond_broadcast(&pool.go);
        pthread_mutex_unlock(&pool.mu);
        run_chunk(n, nchunks, 0, fn, arg);
        pthread_mutex_lock(&pool.mu);
        while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    } else {
        run_chunk(n, 1, 0, fn, arg);
    }
    inside_parallel_for = 0;
    pthread_mutex_unlock(&pool_lock);
}

/* ======================================================================== */
/* Decode and round                                                          */
/* ======================================================================== */

void kb_decode(kb_dtype t, const void *src, double *dst, int64_t count) {
    switch (t) {
    case KB_F32: {
        const float *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = s[i];
        break;
    }
    case KB_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_f16_to_f32(s[i]);
        break;
    }
    case KB_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_bf16_to_f32(s[i]);
        break;
    }
    case KB_E4M3: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_e4m3_to_f32(s[i]);
        break;
    }
    case KB_E5M2: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = kb_e5m2_to_f32(s[i]);
        break;
    }
    case KB_I32: {
        const int32_t *s = src;
        for (int64_t i = 0; i < count; i++) dst[i] = s[i];
        break;
    }
    case KB_Q4K:
    case KB_Q6K: {
        /* ggml's block dequant is float arithmetic by definition (ref/formats.h):
         * its float results are the exact values the format stands for. */
        if (count % KB_QK_K) ref_abort("kb_decode: Q4_K/Q6_K count is not a multiple of 256");
        float y[KB_QK_K];
        for (int64_t b = 0; b < count / KB_QK_K; b++) {
            if (t == KB_Q4K)
                kb_dequant_q4k((const kb_block_q4k *)src + b, y, 1);
            else
                kb_dequant_q6k((const kb_block_q6k *)src + b, y, 1);
            for (int i = 0; i < KB_QK_K; i++) dst[b * KB_QK_K + i] = y[i];
        }
        break;
    }
    default: ref_abort("kb_decode: unknown dtype");
    }
}

/* double -> float with round-to-odd: x itself if representable, otherwise the one
 * of its two float neighbours whose last significand bit is 1. Rounding that float
 * to a narrower format (<= 22 significand bits, here at most 11) with round to
 * nearest even then gives the correctly rounded result of x, which rounding through
 * an ordinary (float)x would not always: x just above a half-way point of the
 * narrow format can land exactly on it in float and then tie to even the wrong way.
 * (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums: proved
 * algorithms using rounding to odd", IEEE TC 2008.) */
static float f32_round_to_odd(double x) {
    float f = (float)x;
    if (isnan(x) || (double)f == x) return f;
    if (isinf(f))
        f = copysignf(FLT_MAX, f); /* truncating an overflow gives the largest float */
    else if (fabs((double)f) > fabs(x))
        f = nextafterf(f, 0.0f); /* the neighbour toward zero */
    uint32_t u;
    memcpy(&u, &f, 4);
    u |= 1u; /* even -> the next float up in magnitude, which is odd */
    memcpy(&f, &u, 4);
    return f;
}

void kb_round_to(kb_dtype t, const double *src, void *dst, int64_t count) {
    switch (t) {
    case KB_F32: {
        float *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = (float)src[i]; /* IEEE: nearest even, overflow -> inf */
        break;
    }
    case KB_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_f16(f32_round_to_odd(src[i]), 0);
        break;
    }
    case KB_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_bf16(f32_round_to_odd(src[i]), 0);
        break;
    }
    case KB_E4M3: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_e4m3(f32_round_to_odd(src[i]), 0);
        break;
    }
    case KB_E5M2: {
        uint8_t *d = dst;
        for (int64_t i = 0; i < count; i++) d[i] = kb_f32_to_e5m2(f32_round_to_odd(src[i]), 0);
        break;
    }
    default: ref_abort("kb_round_to: not a float output type (F32, F16, BF16, E4M3, E5M2)");
    }
}

/* ======================================================================== */
/* dequant_q4k: out[m][k] = the values of the Q4_K blocks (ggml dequantize_row_q4_K) */
/* ======================================================================== */

typedef struct {
    const kb_case *c;
    const kb_block_q4k *w;
    double *out;
} dequant_job;

static void dequant_row(int64_t row, void *p) {
    const dequant_job *j = p;
    const int64_t k = j->c->k;
    kb_decode(KB_Q4K, j->w + row * (k / KB_QK_K), j->out + row * k, k);
}

void ref_dequant_q4k(const kb_case *c, const kb_block_q4k *w, double *out) {
    dequant_job j = {c, w, out};
    kb_parallel_for(c->m, dequant_row, &j);
}

/* ======================================================================== */
/* rmsnorm: y_i = x_i / sqrt(mean_j(x_j^2) + eps) * w_i                       */
/* (Zhang & Sennrich, "Root Mean Square Layer Normalization", 2019; eps inside  */
/* the root and the weight applied after, as ggml_rms_norm + ggml_mul do)       */
/* ======================================================================== */

typedef struct {
    const kb_case *c;
    const float *x, *w;
    double *out, *mag;
} rmsnorm_job;

static void rmsnorm_row(int64_t row, void *p) {
    const rmsnorm_job *j = p;
    const int64_t k = j->c->k;
    const float *x = j->x + row * k;
    double sum_sq = 0.0;
    for (int64_t i = 0; i < k; i++) sum_sq += (double)x[i] * (double)x[i];
    const double rms = sqrt(sum_sq / (double)k + j->c->eps);
    double *y = j->out + row * k;
    for (int64_t i = 0; i < k; i++) y[i] = (double)x[i] / rms * (double)j->w[i];
    if (j->mag) {
        double *mg = j->mag + row * k;
        for (int64_t i = 0; i < k; i++) mg[i] = fabs((double)x[i]) * fabs((double)j->w[i]) / rms;
    }
}

void ref_rmsnorm(const kb_case *c, const float *x, const float *w, double *out, double *mag) {
    rmsnorm_job j = {c, x, w, out, mag};
    kb_parallel_for(c->n, rmsnorm_row, &j);
}

/* ======================================================================== */
/* rope_neox: for i < d/2, theta_i = pos * base^(-2i/d) (Su et al., "RoFormer",   */
/* 2021, eq. 15), rotating the pair (i, i + d/2) (the GPT-NeoX layout):          */
/*   x'_i = x_i cos - x_{i+d/2} sin,   x'_{i+d/2} = x_i sin + x_{i+d/2} cos       */
/* ======================================================================== */

typedef struct {
    const kb_case *c;
    const float *x;
    const int32_t *pos;
    double *out, *mag;
} rope_job;

static void rope_token(int64_t t, void *p) {
    const rope_job *j = p;
    const int64_t d = j->c->head_dim, half = d / 2, heads = j->c->heads;
    double *angle = xmalloc((size_t)half * sizeof(double));
    double *cs = xmalloc((size_t)half * sizeof(double));
    double *sn = xmalloc((size_t)half * sizeof(double));
    for (int64_t i = 0; i < half; i++) {
        angle[i] = (double)j->pos[t] * pow(j->c->theta, -2.0 * (double)i / (double)d);
        cs[i] = cos(angle[i]);
        sn[i] = sin(angle[i]);
    }
    for (int64_t h = 0; h < heads; h++) {
        const int64_t base = (t * heads + h) * d;
        const float *x = j->x + base;
        double *y = j->out + base;
        for (int64_t i = 0; i < half; i++) {
            const double x0 = x[i], x1 = x[i + half];
            y[i] = x0 * cs[i] - x1 * sn[i];
            y[i + half] = x0 * sn[i] + x1 * cs[i];
        }
        if (j->mag) {
            double *mg = j->mag + base;
            for (int64_t i = 0; i < half; i++) {
                const double a0c = fabs(x[i] * cs[i]), a0s = fabs(x[i] * sn[i]);
                const double a1c = fabs(x[i + half] * cs[i]), a1s = fabs(x[i + half] * sn[i]);
                const double ang = fabs(angle[i]);
                mg[i] = a0c + a1s + ang * (a0s + a1c);
                mg[i + half] = a0s + a1c + ang * (a0c + a1s);
            }
        }
    }
    free(angle);
    free(cs);
    free(sn);
}

void ref_rope_neox(const kb_case *c, const float *x, const int32_t *pos, double *out, double *mag) {
    rope_job j = {c, x, pos, out, mag};
    kb_parallel_for(c->n, rope_token, &j);
}

/* ======================================================================== */
/* attention: out = softmax(q K^T / sqrt(d)) V over the visible keys           */
/* (Vaswani et al., "Attention is all you need", 2017, eq. 1), causal, with     */
/* grouped KV heads (Ainslie et al., "GQA", 2023): query head h reads KV head    */
/* h / (heads / kv_heads). Query i sits at position kv_len - n + i and sees keys */
/* 0..that position. Softmax subtracts the max score first (exact in math, keeps */
/* exp in range). A query that sees no key (n > kv_len) gets NaN.                */
/* ======================================================================== */

/* Speed without reassociation: a work item is a block of ATT_QB queries of one  */
/* head, so each K tile and V row is reused from cache by all of them. K is      */
/* packed once per call into tiles of ATT_KT keys stored [l][key]; the scores of  */
/* ATT_QT queries x ATT_KT keys are then computed side by side (vectorised across */
/* keys, the adds of different scores overlapping), each still summed in strict   */
/* l order, so the bits equal those of the plain one-dot-at-a-time loop.          */

enum { ATT_QB = 16, ATT_KT = 4, ATT_QT = 4 };

typedef struct {
    const kb_case *c;
    const float *q, *k, *v;
    double *out, *mag;
    int64_t ntiles;          /* key tiles per KV head */
    double *kp, *kp_abs;     /* packed K and |K|: [kv_heads][ntiles][d][ATT_KT], zero past kv_len */
} attention_job;

static void attention_pack(int64_t item, void *p) {
    const attention_job *j = p;
    const kb_case *c = j->c;
    const int64_t d = c->head_dim, g = item / j->ntiles, jt = item % j->ntiles;
    double *dst = j->kp + (size_t)item * (size_t)(d * ATT_KT);
    double *dst_abs = j->kp_abs ? j->kp_abs + (size_t)item * (size_t)(d * ATT_KT) : NULL;
    for (int t = 0; t < ATT_KT; t++) {
        const int64_t key = jt * ATT_KT + t;
        const float *kr = key < c->kv_len ? j->k + (key * c->kv_heads + g) * d : NULL;
        for (int64_t l = 0; l < d; l++) {
            dst[l * ATT_KT + t] = kr ? kr[l] : 0.0;
            if (dst_abs) dst_abs[l * ATT_KT + t] = kr ? fabs((double)kr[l]) : 0.0;
        }
    }
}

/* acc[r][t] = sum over l of q[r][l] * tile[l][t], l in order: ATT_QT x ATT_KT dot products at once */
static inline void attention_tile(const double *const q[ATT_QT], const double *tile, int64_t d,
                                  double acc[ATT_QT][ATT_KT]) {
    for (int r = 0; r < ATT_QT; r++)
        for (int t = 0; t < ATT_KT; t++) acc[r][t] = 0.0;
    for (int64_t l = 0; l < d; l++) {
        const double *tl = tile + l * ATT_KT;
        for (int r = 0; r < ATT_QT; r++) {
            const double ql = q[r][l];
            for (int t = 0; t < ATT_KT; t++) acc[r][t] += ql * tl[t];
        }
    }
}

static void attention_block(int64_t item, void *p) {
    const attention_job *j = p;
    const kb_case *c = j->c;
    const int64_t heads = c->heads, kv_heads = c->kv_heads, d = c->head_dim;
    const int64_t h = item % heads, i0 = (item / heads) * ATT_QB, nq = min64(ATT_QB, c->n - i0);
    const int64_t g = h / (heads / kv_heads);
    const double sqrt_d = sqrt((double)d);
    const int with_mag = j->mag != NULL;

    int64_t visible[ATT_QB]; /* query i0+qi sees keys 0..visible[qi]-1 */
    for (int64_t qi = 0; qi < nq; qi++) visible[qi] = c->kv_len - c->n + i0 + qi + 1;
    const int64_t max_visible = visible[nq - 1] > 0 ? visible[nq - 1] : 0;

    double *qd = xmalloc((size_t)(nq * d) * sizeof(double));
    double *qd_abs = with_mag ? xmalloc((size_t)(nq * d) * sizeof(double)) : NULL;
    for (int64_t qi = 0; qi < nq; qi++)
        for (int64_t l = 0; l < d; l++) {
            qd[qi * d + l] = j->q[((i0 + qi) * heads + h) * d + l];
            if (with_mag) qd_abs[qi * d + l] = fabs(qd[qi * d + l]);
        }
    double *score = xcalloc((size_t)(nq * max_visible), sizeof(double));
    double *abs_score = with_mag ? xcalloc((size_t)(nq * max_visible), sizeof(double)) : NULL;

    /* scores s_j = (q . k_j) / sqrt(d) and S_j = sum_l |q_l k_jl| / sqrt(d) */
    for (int64_t jt = 0; jt * ATT_KT < max_visible; jt++) {
        const size_t tile_at = (size_t)((g * j->ntiles + jt) * d * ATT_KT);
        for (int64_t q0 = 0; q0 < nq; q0 += ATT_QT) {
            const int64_t last = min64(q0 + ATT_QT, nq) - 1;
            if (visible[last] <= jt * ATT_KT) continue; /* visible grows with qi */
            const double *qr[ATT_QT], *qa[ATT_QT];
            for (int r = 0; r < ATT_QT; r++) {
                const int64_t qi = min64(q0 + r, nq - 1); /* past nq: a repeat, dropped */
                qr[r] = qd + qi * d;
                qa[r] = with_mag ? qd_abs + qi * d : NULL;
            }
            double acc[ATT_QT][ATT_KT], acc_abs[ATT_QT][ATT_KT];
            attention_tile(qr, j->kp + tile_at, d, acc);
            if (with_mag) attention_tile(qa, j->kp_abs + tile_at, d, acc_abs);
            for (int r = 0; r < ATT_QT && q0 + r < nq; r++) {
                const int64_t qi = q0 + r;
                for (int t = 0; t < ATT_KT && jt * ATT_KT + t < visible[qi]; t++) {
                    score[qi * max_visible + jt * ATT_KT + t] = acc[r][t] / sqrt_d;
                    if (with_mag) abs_score[qi * max_visible + jt * ATT_KT + t] = acc_abs[r][t] / sqrt_d;
                }
            }
        }
    }

    /* softmax weights e_j = exp(s_j - max), Z = sum_j e_j (j order) */
    double z[ATT_QB];
    for (int64_t qi = 0; qi < nq; qi++) {
        double *e = score + qi * max_visible;
        if (visible[qi] <= 0) continue;
        double mx = e[0];
        for (int64_t jk = 1; jk < visible[qi]; jk++)
            if (e[jk] > mx) mx = e[jk];
        z[qi] = 0;
        for (int64_t jk = 0; jk < visible[qi]; jk++) {
            e[jk] = exp(e[jk] - mx); /* score[] now holds e_j */
            z[qi] += e[jk];
        }
    }

    /* out = (sum_j e_j v_j) / Z, each component's sum in j order */
    for (int64_t qi = 0; qi < nq; qi++) {
        double *o = j->out + ((i0 + qi) * heads + h) * d;
        for (int64_t l = 0; l < d; l++) o[l] = visible[qi] > 0 ? 0.0 : NAN;
    }
    for (int64_t jk = 0; jk < max_visible; jk++) {
        const float *vj = j->v + (jk * kv_heads + g) * d;
        for (int64_t qi = 0; qi < nq; qi++) {
            if (jk >= visible[qi]) continue;
            double *o = j->out + ((i0 + qi) * heads + h) * d;
            const double e = score[qi * max_visible + jk];
            for (int64_t l = 0; l < d; l++) o[l] += e * vj[l];
        }
    }
    for (int64_t qi = 0; qi < nq; qi++) {
        double *o = j->out + ((i0 + qi) * heads + h) * d;
        if (visible[qi] > 0)
            for (int64_t l = 0; l < d; l++) o[l] /= z[qi];
    }

    if (with_mag) {
        for (int64_t qi = 0; qi < nq; qi++) {
            double *mg = j->mag + ((i0 + qi) * heads + h) * d;
            for (int64_t l = 0; l < d; l++) mg[l] = visible[qi] > 0 ? 0.0 : NAN;
        }
        for (int64_t jk = 0; jk < max_visible; jk++) {
            const float *vj = j->v + (jk * kv_heads + g) * d;
            for (int64_t qi = 0; qi < nq; qi++) {
                if (jk >= visible[qi]) continue;
                const double *o = j->out + ((i0 + qi) * heads + h) * d;
                double *mg = j->mag + ((i0 + qi) * heads + h) * d;
                const double pj = score[qi * max_visible + jk] / z[qi];
                const double sens = abs_score[qi * max_visible + jk] + 1.0;
                for (int64_t l = 0; l < d; l++) mg[l] += pj * (fabs((double)vj[l]) + fabs(vj[l] - o[l]) * sens);
            }
        }
    }
    free(qd);
    free(qd_abs);
    free(score);
    free(abs_score);
}

void ref_attention(const kb_case *c, const float *q, const float *k, const float *v, double *out, double *mag) {
    if (c->n < 1 || c->kv_len < 1 || c->heads < 1 || c->kv_heads < 1 || c->head_dim < 1 || c->heads % c->kv_heads)
        ref_abort("ref_attention: needs n, kv_len, heads, kv_heads, head_dim >= 1 and heads % kv_heads == 0");
    const int64_t ntiles = (c->kv_len + ATT_KT - 1) / ATT_KT;
    const size_t packed = (size_t)(c->kv_heads * ntiles * c->head_dim * ATT_KT);
    attention_job j = {c, q, k, v, out, mag, ntiles, xmalloc(packed * sizeof(double)),
                       mag ? xmalloc(packed * sizeof(double)) : NULL};
    kb_parallel_for(c->kv_heads * ntiles, attention_pack, &j);
    kb_parallel_for((c->n + ATT_QB - 1) / ATT_QB * c->heads, attention_block, &j);
    free(j.kp);
    free(j.kp_abs);
}

/* ======================================================================== */
/* embed: out[t] = the decoded row ids[t] of the table (ggml_get_rows).         */
/* An id outside [0, m) gives a NaN row.                                         */
/* ======================================================================== */

typedef struct {
    const kb_case *c;
    const uint8_t *table;
    const int32_t *ids;
    double *out;
} embed_job;

static void embed_row(int64_t t, void *p) {
    const embed_job *j = p;
    const int64_t k = j->c->k;
    double *y = j->out + t * k;
    const int64_t id = j->ids[t];
    if (id < 0 || id >= j->c->m) {
        for (int64_t i = 0; i < k; i++) y[i] = NAN;
        return;
    }
    const size_t row_bytes = kb_dtype_bytes(j->c->a_type, k);
    kb_decode(j->c->a_type, j->table + (size_t)id * row_bytes, y, k);
}

void ref_embed(const kb_case *c, const void *table, const int32_t *ids, double *out) {
    if (c->a_type != KB_Q4K && c->a_type != KB_Q6K && c->a_type != KB_F16 && c->a_type != KB_F32)
        ref_abort("ref_embed: table type must be Q4_K, Q6_K, F16 or F32");
    embed_job j = {c, table, ids, out};
    kb_parallel_for(c->n, embed_row, &j);
}

/* ======================================================================== */
/* gemm_fp8: D[n][m] = sum_k W[m][k] X[n][k], scaled per kbench.h's scale modes  */
/* (REFERENCE.md section 3: D = sA sB sum_k A B, operands decoded exactly).       */
/*   blocksum_b = sum_{k in block b} W[m][k] X[n][k], k order, blocks of 128     */
/*   TENSOR: D = (sa[0] sb[0]) * sum_b blocksum_b                                */
/*   OUTER : D = (sa[m] sb[n]) * sum_b blocksum_b                                */
/*   VEC128: D = sum_b (sa[m][b] sb[n][b]) * blocksum_b                          */
/*   BLK128: D = sum_b (sa[m/128][b] sb[n][b]) * blocksum_b                      */
/* The products of two fp8 values (<= 4 significand bits each) and of two float  */
/* scales are exact in double; only the sums round.                              */
/*                                                                              */
/* Speed without reassociation: a work item is a panel of GEMM_MB rows of W,     */
/* decoded once and stored transposed ([k][m]) so that GEMM_MR consecutive m sit */
/* side by side; the inner loop updates a GEMM_NR x GEMM_MR tile of independent  */
/* sums per k, which the compiler vectorises across outputs (each lane is one    */
/* output's own sum, still in strict k order) and whose adds overlap. mag runs   */
/* the same tile on |W| and |X| (one tile at a time keeps all sums in registers).*/
/* ======================================================================== */

enum { GEMM_KB = 128, GEMM_MB = 32, GEMM_MR = 4, GEMM_NR = 4, GEMM_NC = 128 };

typedef struct {
    const kb_case *c;
    const uint8_t *w;         /* W, a_type [m][k] */
    const double *x, *x_abs;  /* X decoded, [n][k], and |X| */
    const float *sa, *sb;
    double *out, *mag;
    int64_t kblocks;
} gemm_job;

typedef struct {
    const kb_case *c;
    const uint8_t *x;
    double *x_dec, *x_abs;
} gemm_decode_job;

static void gemm_decode_x_row(int64_t n, void *p) {
    const gemm_decode_job *j = p;
    const int64_t k = j->c->k;
    kb_decode(j->c->b_type, j->x + kb_dtype_bytes(j->c->b_type, n * k), j->x_dec + n * k, k);
    if (j->x_abs)
        for (int64_t i = 0; i < k; i++) j->x_abs[n * k + i] = fabs(j->x_dec[n * k + i]);
}

/* s[jn][r] = sum over kk < kl of x[jn][kk] * a[kk][r], kk in order: one GEMM_NR x
 * GEMM_MR tile of block sums. `a` points into a panel stored [k][GEMM_MB]. */
static inline void gemm_tile(const double *a, const double *const x[GEMM_NR], int64_t kl, double s[GEMM_NR][GEMM_MR]) {
    for (int jn = 0; jn < GEMM_NR; jn++)
        for (int r = 0; r < GEMM_MR; r++) s[jn][r] = 0.0;
    for (int64_t kk = 0; kk < kl; kk++) {
        const double *ak = a + kk * GEMM_MB;
        for (int jn = 0; jn < GEMM_NR; jn++) {
            const double xv = x[jn][kk];
            for (int r = 0; r < GEMM_MR; r++) s[jn][r] += xv * ak[r];
        }
    }
}

static void gemm_panel(int64_t item, void *p) {
    const gemm_job *g = p;
    const kb_case *c = g->c;
    const int64_t M = c->m, N = c->n, K = c->k, kblocks = g->kblocks;
    const int64_t m0 = item * GEMM_MB, mrows = min64(GEMM_MB, M - m0);
    const int64_t mtiles = (mrows + GEMM_MR - 1) / GEMM_MR;
    const size_t w_row_bytes = kb_dtype_bytes(c->a_type, K);
    const int with_mag = g->mag != NULL;

    /* the panel of W decoded and transposed, ap[k][r], and |W| in ap_abs; rows
     * past M stay 0 (their sums are computed and dropped) */
    double *ap = xcalloc((size_t)K * GEMM_MB, sizeof(double));
    double *ap_abs = with_mag ? xcalloc((size_t)K * GEMM_MB, sizeof(double)) : NULL;
    double *row = xmalloc((size_t)K * sizeof(double));
    for (int64_t r = 0; r < mrows; r++) {
        kb_decode(c->a_type, g->w + (size_t)(m0 + r) * w_row_bytes, row, K);
        for (int64_t k = 0; k < K; k++) ap[k * GEMM_MB + r] = row[k];
        if (with_mag)
            for (int64_t k = 0; k < K; k++) ap_abs[k * GEMM_MB + r] = fabs(row[k]);
    }
    free(row);

    /* running totals over the k-blocks, tot[n][r] */
    double *tot = xcalloc((size_t)N * GEMM_MB, sizeof(double));
    double *tot_mag = with_mag ? xcalloc((size_t)N * GEMM_MB, sizeof(double)) : NULL;
    const int per_block = c->scale_mode == KB_SCALE_VEC128 || c->scale_mode == KB_SCALE_BLK128;

    /* columns in chunks of GEMM_NC so the X rows of a k-block stay in L2 */
    for (int64_t nc = 0; nc < N; nc += GEMM_NC) {
        for (int64_t b = 0; b < kblocks; b++) {
            const int64_t k0 = b * GEMM_KB, kl = min64(GEMM_KB, K - k0);
            for (int64_t n0 = nc; n0 < min64(nc + GEMM_NC, N); n0 += GEMM_NR) {
                const double *x[GEMM_NR], *x_abs[GEMM_NR];
                for (int jn = 0; jn < GEMM_NR; jn++) {
                    const int64_t n = min64(n0 + jn, N - 1); /* past N: a repeat, dropped below */
                    x[jn] = g->x + n * K + k0;
                    x_abs[jn] = with_mag ? g->x_abs + n * K + k0 : NULL;
                }
                for (int64_t t = 0; t < mtiles; t++) {
                    double s[GEMM_NR][GEMM_MR], sm[GEMM_NR][GEMM_MR];
                    gemm_tile(ap + k0 * GEMM_MB + t * GEMM_MR, x, kl, s);
                    if (with_mag) gemm_tile(ap_abs + k0 * GEMM_MB + t * GEMM_MR, x_abs, kl, sm);
                    for (int jn = 0; jn < GEMM_NR && n0 + jn < N; jn++) {
                        const int64_t n = n0 + jn;
                        for (int r = 0; r < GEMM_MR && t * GEMM_MR + r < mrows; r++) {
                            const int64_t mr = t * GEMM_MR + r, m = m0 + mr;
                            double *acc = &tot[n * GEMM_MB + mr];
                            if (per_block) {
                                const int64_t ia = c->scale_mode == KB_SCALE_VEC128 ? m * kblocks + b
                                                                                     : (m / GEMM_KB) * kblocks + b;
                                const double scale = (double)g->sa[ia] * (double)g->sb[n * kblocks + b]; /* exact */
                                *acc += scale * s[jn][r];
                                if (with_mag) tot_mag[n * GEMM_MB + mr] += fabs(scale) * sm[jn][r];
                            } else {
                                *acc += s[jn][r];
                                if (with_mag) tot_mag[n * GEMM_MB + mr] += sm[jn][r];
                            }
                        }
                    }
                }
            }
        }
    }

    for (int64_t n = 0; n < N; n++) {
        for (int64_t mr = 0; mr < mrows; mr++) {
            const int64_t m = m0 + mr;
            double scale = 1.0; /* per-block modes applied theirs already */
            if (c->scale_mode == KB_SCALE_TENSOR)
                scale = (double)g->sa[0] * (double)g->sb[0];
            else if (c->scale_mode == KB_SCALE_OUTER)
                scale = (double)g->sa[m] * (double)g->sb[n];
            g->out[n * M + m] = scale * tot[n * GEMM_MB + mr];
            if (with_mag) g->mag[n * M + m] = fabs(scale) * tot_mag[n * GEMM_MB + mr];
        }
    }
    free(tot);
    free(tot_mag);
    free(ap);
    free(ap_abs);
}

void ref_gemm_fp8(const kb_case *c, const void *a, const void *b, const float *sa, const float *sb, double *out,
                  double *mag) {
    if ((int)c->scale_mode < 0 || c->scale_mode >= KB_SCALE_COUNT) ref_abort("ref_gemm_fp8: unknown scale mode");
    if (c->m < 1 || c->n < 1 || c->k < 1) ref_abort("ref_gemm_fp8: m, n, k must be positive");
    const size_t xcount = (size_t)c->n * (size_t)c->k;
    double *x_dec = xmalloc(xcount * sizeof(double));
    double *x_abs = mag ? xmalloc(xcount * sizeof(double)) : NULL;
    gemm_decode_job dj = {c, b, x_dec, x_abs};
    kb_parallel_for(c->n, gemm_decode_x_row, &dj);
    gemm_job g = {c, a, x_dec, x_abs, sa, sb, out, mag, (c->k + GEMM_KB - 1) / GEMM_KB};
    kb_parallel_for((c->m + GEMM_MB - 1) / GEMM_MB, gemm_panel, &g);
    free(x_dec);
    free(x_abs);
}
