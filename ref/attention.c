/* attention.c - ref_attention: out = softmax(q K^T / sqrt(d)) V over the visible keys
 * (Vaswani et al., "Attention is all you need", 2017, eq. 1), causal, with grouped
 * KV heads (Ainslie et al., "GQA", 2023): query head h reads KV head
 * h / (heads / kv_heads). Query i sits at position kv_len - n + i and sees keys
 * 0..that position. Softmax subtracts the max score first (exact in math, keeps exp
 * in range). A query that sees no key (n > kv_len) gets NaN.
 *
 * mag_c = sum_j p_j |v_jc|  +  sum_j p_j |v_jc - out_c| * (S_j + 1),
 * S_j = sum_l |q_l k_jl| / sqrt(d). The first part bounds the weighted sum of V and
 * the softmax normalisation; the second is the sensitivity of out_c to relative
 * errors in the scores (a score error ds_j moves out_c by p_j (v_jc - out_c) ds_j,
 * and a float score has |ds_j| ~ d u S_j; the +1 stands for exp's and the
 * division's own rounding). */
#include "ref/ref.h"
#include "ref/ref_util.h"

#include <math.h>
#include <stdlib.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif


/* Speed without reassociation: a work item is a block of ATT_QB queries of one  */
/* head, so each K tile and V row is reused from cache by all of them. K is      */
/* packed once per call into tiles of ATT_KT keys stored [l][key]; the scores of  */
/* ATT_QT queries x ATT_KT keys are then computed side by side (vectorised across */
/* keys, the adds of different scores overlapping), each still summed in strict   */
/* l order, so the bits equal those of the plain one-dot-at-a-time loop.          */

enum { ATT_QB = 16, ATT_KT = 4, ATT_QT = 4 };

typedef struct {
    const ref_attention_dims *c;
    const double *q, *k, *v;
    double *out, *mag;
    int64_t ntiles;          /* key tiles per KV head */
    double *kp, *kp_abs;     /* packed K and |K|: [kv_heads][ntiles][d][ATT_KT], zero past kv_len */
} attention_job;

static void attention_pack(int64_t item, void *p) {
    const attention_job *j = p;
    const ref_attention_dims *c = j->c;
    const int64_t d = c->head_dim, g = item / j->ntiles, jt = item % j->ntiles;
    double *dst = j->kp + (size_t)item * (size_t)(d * ATT_KT);
    double *dst_abs = j->kp_abs ? j->kp_abs + (size_t)item * (size_t)(d * ATT_KT) : NULL;
    for (int t = 0; t < ATT_KT; t++) {
        const int64_t key = jt * ATT_KT + t;
        const double *kr = key < c->kv_len ? j->k + (key * c->kv_heads + g) * d : NULL;
        for (int64_t l = 0; l < d; l++) {
            dst[l * ATT_KT + t] = kr ? kr[l] : 0.0;
            if (dst_abs) dst_abs[l * ATT_KT + t] = kr ? fabs(kr[l]) : 0.0;
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
    const ref_attention_dims *c = j->c;
    const int64_t heads = c->heads, kv_heads = c->kv_heads, d = c->head_dim;
    const int64_t h = item % heads, i0 = (item / heads) * ATT_QB, nq = ref_min64(ATT_QB, c->n - i0);
    const int64_t g = h / (heads / kv_heads);
    const double sqrt_d = sqrt((double)d);
    const int with_mag = j->mag != NULL;

    int64_t visible[ATT_QB] = {0}; /* query i0+qi sees keys 0..visible[qi]-1 */
    for (int64_t qi = 0; qi < nq; qi++) visible[qi] = c->kv_len - c->n + i0 + qi + 1;
    const int64_t max_visible = visible[nq - 1] > 0 ? visible[nq - 1] : 0;

    double *qd = ref_malloc((size_t)(nq * d) * sizeof(double));
    double *qd_abs = with_mag ? ref_malloc((size_t)(nq * d) * sizeof(double)) : NULL;
    for (int64_t qi = 0; qi < nq; qi++)
        for (int64_t l = 0; l < d; l++) {
            qd[qi * d + l] = j->q[((i0 + qi) * heads + h) * d + l];
            if (with_mag) qd_abs[qi * d + l] = fabs(qd[qi * d + l]);
        }
    double *score = ref_calloc((size_t)(nq * max_visible), sizeof(double));
    double *abs_score = with_mag ? ref_calloc((size_t)(nq * max_visible), sizeof(double)) : NULL;

    /* scores s_j = (q . k_j) / sqrt(d) and S_j = sum_l |q_l k_jl| / sqrt(d) */
    for (int64_t jt = 0; jt * ATT_KT < max_visible; jt++) {
        const size_t tile_at = (size_t)((g * j->ntiles + jt) * d * ATT_KT);
        for (int64_t q0 = 0; q0 < nq; q0 += ATT_QT) {
            const int64_t last = ref_min64(q0 + ATT_QT, nq) - 1;
            if (visible[last] <= jt * ATT_KT) continue; /* visible grows with qi */
            const double *qr[ATT_QT], *qa[ATT_QT];
            for (int r = 0; r < ATT_QT; r++) {
                const int64_t qi = ref_min64(q0 + r, nq - 1); /* past nq: a repeat, dropped */
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
        const double *vj = j->v + (jk * kv_heads + g) * d;
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
            const double *vj = j->v + (jk * kv_heads + g) * d;
            for (int64_t qi = 0; qi < nq; qi++) {
                if (jk >= visible[qi]) continue;
                const double *o = j->out + ((i0 + qi) * heads + h) * d;
                double *mg = j->mag + ((i0 + qi) * heads + h) * d;
                const double pj = score[qi * max_visible + jk] / z[qi];
                const double sens = abs_score[qi * max_visible + jk] + 1.0;
                for (int64_t l = 0; l < d; l++) mg[l] += pj * (fabs(vj[l]) + fabs(vj[l] - o[l]) * sens);
            }
        }
    }
    free(qd);
    free(qd_abs);
    free(score);
    free(abs_score);
}

void ref_attention(const ref_attention_dims *c, const double *q, const double *k, const double *v, double *out,
                   double *mag) {
    if (c->n < 1 || c->kv_len < 1 || c->heads < 1 || c->kv_heads < 1 || c->head_dim < 1 || c->heads % c->kv_heads)
        ref_abort("ref_attention: needs n, kv_len, heads, kv_heads, head_dim >= 1 and heads % kv_heads == 0");
    const int64_t ntiles = (c->kv_len + ATT_KT - 1) / ATT_KT;
    const size_t packed = (size_t)(c->kv_heads * ntiles * c->head_dim * ATT_KT);
    attention_job j = {c, q, k, v, out, mag, ntiles, ref_malloc(packed * sizeof(double)),
                       mag ? ref_malloc(packed * sizeof(double)) : NULL};
    kb_parallel_for(c->kv_heads * ntiles, attention_pack, &j);
    kb_parallel_for((c->n + ATT_QB - 1) / ATT_QB * c->heads, attention_block, &j);
    free(j.kp);
    free(j.kp_abs);
}
