/* gemm.c - ref_gemm_fp8 and ref_matmul.
 *
 * gemm_fp8: D[n][m] = sum_k W[m][k] X[n][k], scaled per the layouts of ref/types.h
 * (D = sA sB sum_k A B over exactly decoded fp8 operands, as cuBLASLt defines its
 * scaled FP8 matmul):
 *   blocksum_b = sum_{k in block b} W[m][k] X[n][k], k order, blocks of 128
 *   TENSOR: D = (sa[0] sb[0]) * sum_b blocksum_b
 *   OUTER : D = (sa[m] sb[n]) * sum_b blocksum_b
 *   VEC128: D = sum_b (sa[m][b] sb[n][b]) * blocksum_b
 *   BLK128: D = sum_b (sa[m/128][b] sb[n][b]) * blocksum_b
 * The products of two fp8 values (<= 4 significand bits each) and of two float
 * scales are exact in double; only the sums round.
 * matmul: the same sums with no scales, W of any decodable type, X in double.
 *
 * Speed without reassociation: a work item is a panel of GEMM_MB rows of W, decoded
 * once and stored transposed ([k][m]) so that GEMM_MR consecutive m sit side by
 * side; the inner loop updates a GEMM_NR x GEMM_MR tile of independent sums per k,
 * which the compiler vectorises across outputs (each lane is one output's own sum,
 * still in strict k order) and whose adds overlap. mag runs the same tile on |W|
 * and |X|. */
#include "ref/ref.h"
#include "ref/ref_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

enum { GEMM_KB = 128, GEMM_MB = 32, GEMM_MR = 4, GEMM_NR = 4, GEMM_NC = 128 };

typedef struct {
    int64_t M, N, K, kblocks;
    kb_dtype w_type;
    const uint8_t *w;        /* W, w_type [M][K] */
    const double *x, *x_abs; /* X decoded, [N][K], and |X| */
    int scaled;              /* 0: matmul */
    kb_scale_mode mode;
    const float *sa, *sb;
    double *out, *mag;
} gemm_job;

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

/* A thread's working memory for its panels, allocated once per run of panels (fresh
 * pages for every panel cost more than the sums at small N). */
typedef struct {
    double *ap, *ap_abs, *row, *tot, *tot_mag;
} panel_scratch;

/* The same sums for one column (a decode step's N = 1): the 4-wide tile would compute
 * the column four times; each sum is still its own, in k order, so no bit changes. */
static inline void gemm_tile_1(const double *a, const double *x, int64_t kl, double s[GEMM_MR]) {
    for (int r = 0; r < GEMM_MR; r++) s[r] = 0.0;
    for (int64_t kk = 0; kk < kl; kk++) {
        const double *ak = a + kk * GEMM_MB;
        const double xv = x[kk];
        for (int r = 0; r < GEMM_MR; r++) s[r] += xv * ak[r];
    }
}

static void gemm_panel(const gemm_job *g, int64_t item, const panel_scratch *sc) {
    const int64_t M = g->M, N = g->N, K = g->K, kblocks = g->kblocks;
    const int64_t m0 = item * GEMM_MB, mrows = ref_min64(GEMM_MB, M - m0);
    const int64_t mtiles = (mrows + GEMM_MR - 1) / GEMM_MR;
    const uint64_t w_row_bytes = kb_dtype_bytes(g->w_type, K);
    const int with_mag = g->mag != NULL;

    /* the panel of W decoded and transposed, ap[k][r], and |W| in ap_abs; rows past
     * M are 0 (their sums are computed and dropped) */
    double *ap = sc->ap, *ap_abs = sc->ap_abs, *row = sc->row;
    for (int64_t r = 0; r < GEMM_MB; r++) {
        if (r < mrows) kb_decode(g->w_type, g->w + (uint64_t)(m0 + r) * w_row_bytes, row, K);
        for (int64_t k = 0; k < K; k++) ap[k * GEMM_MB + r] = r < mrows ? row[k] : 0.0;
        if (with_mag)
            for (int64_t k = 0; k < K; k++) ap_abs[k * GEMM_MB + r] = r < mrows ? fabs(row[k]) : 0.0;
    }

    /* running totals over the k-blocks, tot[n][r] */
    double *tot = sc->tot, *tot_mag = sc->tot_mag;
    memset(tot, 0, (size_t)N * GEMM_MB * sizeof(double));
    if (with_mag) memset(tot_mag, 0, (size_t)N * GEMM_MB * sizeof(double));
    const int per_block = g->scaled && (g->mode == KB_SCALE_VEC128 || g->mode == KB_SCALE_BLK128);
    const kb_scale_mode xmode = kb_scale_mode_for_x(g->mode);

    /* columns in chunks of GEMM_NC so the X rows of a k-block stay in L2 */
    for (int64_t nc = 0; nc < N; nc += GEMM_NC) {
        for (int64_t b = 0; b < kblocks; b++) {
            const int64_t k0 = b * GEMM_KB, kl = ref_min64(GEMM_KB, K - k0);
            for (int64_t n0 = nc; n0 < ref_min64(nc + GEMM_NC, N); n0 += GEMM_NR) {
                const double *x[GEMM_NR], *x_abs[GEMM_NR];
                for (int jn = 0; jn < GEMM_NR; jn++) {
                    const int64_t n = ref_min64(n0 + jn, N - 1); /* past N: a repeat, dropped below */
                    x[jn] = g->x + n * K + k0;
                    x_abs[jn] = with_mag ? g->x_abs + n * K + k0 : NULL;
                }
                for (int64_t t = 0; t < mtiles; t++) {
                    double s[GEMM_NR][GEMM_MR], sm[GEMM_NR][GEMM_MR];
                    if (N - n0 == 1) {
                        gemm_tile_1(ap + k0 * GEMM_MB + t * GEMM_MR, x[0], kl, s[0]);
                        if (with_mag) gemm_tile_1(ap_abs + k0 * GEMM_MB + t * GEMM_MR, x_abs[0], kl, sm[0]);
                    } else {
                        gemm_tile(ap + k0 * GEMM_MB + t * GEMM_MR, x, kl, s);
                        if (with_mag) gemm_tile(ap_abs + k0 * GEMM_MB + t * GEMM_MR, x_abs, kl, sm);
                    }
                    for (int jn = 0; jn < GEMM_NR && n0 + jn < N; jn++) {
                        const int64_t n = n0 + jn;
                        for (int r = 0; r < GEMM_MR && t * GEMM_MR + r < mrows; r++) {
                            const int64_t mr = t * GEMM_MR + r, m = m0 + mr;
                            double *acc = &tot[n * GEMM_MB + mr];
                            if (per_block) {
                                const double scale = (double)g->sa[kb_scale_index(g->mode, m, k0, K)] *
                                                     (double)g->sb[kb_scale_index(xmode, n, k0, K)]; /* exact */
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
            double scale = 1.0; /* matmul, or per-block modes that applied theirs already */
            if (g->scaled && g->mode == KB_SCALE_TENSOR)
                scale = (double)g->sa[0] * (double)g->sb[0];
            else if (g->scaled && g->mode == KB_SCALE_OUTER)
                scale = (double)g->sa[m] * (double)g->sb[n];
            g->out[n * M + m] = scale * tot[n * GEMM_MB + mr];
            if (with_mag) g->mag[n * M + m] = fabs(scale) * tot_mag[n * GEMM_MB + mr];
        }
    }
}

typedef struct {
    const gemm_job *g;
    int64_t panels, parts;
} panel_parts;

/* Part `part` of the panels, a contiguous run of them on one scratch: each panel is
 * computed as it would be alone, so how the panels are split changes no bit. */
static void gemm_part(int64_t part, void *p) {
    const panel_parts *pp = p;
    const gemm_job *g = pp->g;
    const int64_t begin = pp->panels * part / pp->parts, end = pp->panels * (part + 1) / pp->parts;
    const int with_mag = g->mag != NULL;
    panel_scratch sc = {
        .ap = ref_malloc((size_t)g->K * GEMM_MB * sizeof(double)),
        .ap_abs = with_mag ? ref_malloc((size_t)g->K * GEMM_MB * sizeof(double)) : NULL,
        .row = ref_malloc((size_t)g->K * sizeof(double)),
        .tot = ref_malloc((size_t)g->N * GEMM_MB * sizeof(double)),
        .tot_mag = with_mag ? ref_malloc((size_t)g->N * GEMM_MB * sizeof(double)) : NULL,
    };
    for (int64_t item = begin; item < end; item++) gemm_panel(g, item, &sc);
    free(sc.ap);
    free(sc.ap_abs);
    free(sc.row);
    free(sc.tot);
    free(sc.tot_mag);
}

static void gemm_run(gemm_job *g) {
    g->kblocks = (g->K + GEMM_KB - 1) / GEMM_KB;
    panel_parts pp = {g, (g->M + GEMM_MB - 1) / GEMM_MB, kb_ref_threads()};
    if (pp.parts > pp.panels) pp.parts = pp.panels;
    kb_parallel_for(pp.parts, gemm_part, &pp);
}

typedef struct {
    kb_dtype t;
    const uint8_t *x;
    int64_t k;
    double *x_dec, *x_abs;
} decode_job;

static void decode_row(int64_t n, void *p) {
    const decode_job *j = p;
    if (j->x) kb_decode(j->t, j->x + kb_dtype_bytes(j->t, n * j->k), j->x_dec + n * j->k, j->k);
    if (j->x_abs)
        for (int64_t i = 0; i < j->k; i++) j->x_abs[n * j->k + i] = fabs(j->x_dec[n * j->k + i]);
}

void ref_gemm_fp8(const ref_gemm_fp8_dims *d, const void *w, const void *x, const float *sa, const float *sb,
                  double *out, double *mag) {
    if ((unsigned)d->scale_mode >= KB_SCALE_COUNT) ref_abort("ref_gemm_fp8: unknown scale mode");
    if (d->m < 1 || d->n < 1 || d->k < 1) ref_abort("ref_gemm_fp8: m, n, k must be positive");
    const size_t xcount = (size_t)d->n * (size_t)d->k;
    double *x_dec = ref_malloc(xcount * sizeof(double));
    double *x_abs = mag ? ref_malloc(xcount * sizeof(double)) : NULL;
    decode_job dj = {d->b_type, x, d->k, x_dec, x_abs};
    kb_parallel_for(d->n, decode_row, &dj);
    gemm_job g = {.M = d->m, .N = d->n, .K = d->k, .w_type = d->a_type, .w = w, .x = x_dec, .x_abs = x_abs,
                  .scaled = 1, .mode = d->scale_mode, .sa = sa, .sb = sb, .out = out, .mag = mag};
    gemm_run(&g);
    free(x_dec);
    free(x_abs);
}

void ref_matmul(int64_t m, int64_t n, int64_t k, kb_dtype w_type, const void *w, const double *x, double *out,
                double *mag) {
    if (m < 1 || n < 1 || k < 1) ref_abort("ref_matmul: m, n, k must be positive");
    if (k % kb_dtype_block(w_type)) ref_abort("ref_matmul: a Q4_K/Q6_K row is a multiple of 256");
    double *x_abs = NULL;
    if (mag) {
        x_abs = ref_malloc((size_t)n * (size_t)k * sizeof(double));
        decode_job dj = {KB_F32, NULL, k, (double *)x, x_abs};
        kb_parallel_for(n, decode_row, &dj);
    }
    gemm_job g = {.M = m, .N = n, .K = k, .w_type = w_type, .w = w, .x = x, .x_abs = x_abs, .scaled = 0,
                  .out = out, .mag = mag};
    gemm_run(&g);
    free(x_abs);
}
