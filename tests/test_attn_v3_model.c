/* test_attn_v3_model.c - attention decode_v3 (kernels/cuda/attention.cu) as a C model,
 * run on the CPU from the cuda backend's own plan, against an fp64 attention.
 *
 * No GPU here, so the kernel's logic is transcribed step for step: every thread of
 * every block (lanes as arrays, shuffles as lane exchanges), the plan's grid, block,
 * arguments, workspace and shared memory sizes (every shared and workspace access is
 * bounds-checked against what the plan allocates; the workspace starts as NaN, so an
 * entry no block writes shows), the per-warp cp.async pipeline (each copy group lands
 * either at once or only at the cp.async.wait_group that must wait for it: both must give
 * the same bits, else a stage is refilled while still to be read or read before it
 * lands), the reduce-scatter, the online softmax with its -inf start, the causal mask,
 * zero-filled keys past a query's last, warps and splits without keys, the in-block
 * merge and the combine. What it cannot catch is the transcription itself being
 * unfaithful: read it beside the kernel. */
#include "bench/op.h"
#include "kernels/cuda/cuda_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kb_check.h"

#define G8 8 /* V3_G */
#define KU 4 /* V3_KU */

typedef struct {
    float x[4];
} f4;

static int oob; /* out-of-bounds accesses seen */

/* ---- the device memory of one run --------------------------------------------------- */
typedef struct {
    float *q, *k, *v, *o, *ws;
    int64_t nws, no;
    f4 *smem; /* one block's dynamic shared memory */
    int64_t nsmem4;
} mem;

static f4 *sm4(mem *m, int64_t i) {
    if (i < 0 || i >= m->nsmem4) {
        oob++;
        static f4 dummy;
        return &dummy;
    }
    return &m->smem[i];
}
static float *smf(mem *m, int64_t i) { return &sm4(m, i / 4)->x[i % 4]; }
static float *wsf(mem *m, int64_t i) {
    if (i < 0 || i >= m->nws) {
        oob++;
        static float dummy;
        return &dummy;
    }
    return &m->ws[i];
}

/* ---- attn_decode_v3 ------------------------------------------------------------------ */
typedef struct { /* a pending cp.async: 16 bytes (or zeros) into shared */
    int64_t dst4;
    const float *src; /* NULL: zero-fill */
} copy;

typedef struct {
    copy *c;
    int n, cap;
    int *group_end; /* copies of group g end at group_end[g] */
    int ngroups, landed_groups, landed_copies;
} pipe_q;

static void q_push(pipe_q *p, int64_t dst4, const float *src) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        p->c = realloc(p->c, (size_t)p->cap * sizeof *p->c);
    }
    p->c[p->n++] = (copy){dst4, src};
}
static void q_land_to(mem *m, pipe_q *p, int groups) {
    for (; p->landed_groups < groups; p->landed_groups++)
        for (; p->landed_copies < p->group_end[p->landed_groups]; p->landed_copies++) {
            const copy *c = &p->c[p->landed_copies];
            f4 *d = sm4(m, c->dst4);
            for (int e = 0; e < 4; e++) d->x[e] = c->src ? c->src[e] : 0.0f;
        }
}
static void q_commit(mem *m, pipe_q *p, int land_now) {
    p->group_end = realloc(p->group_end, (size_t)(p->ngroups + 1) * sizeof *p->group_end);
    p->group_end[p->ngroups++] = p->n;
    if (land_now) q_land_to(m, p, p->ngroups);
}
static void q_wait(mem *m, pipe_q *p, int pending) { /* cp.async.wait_group pending */
    if (p->ngroups - pending > p->landed_groups) q_land_to(m, p, p->ngroups - pending);
}

typedef struct {
    int hd, warps, stages;                 /* the module's -D options */
    int n, kv_len, heads, kv_heads, chunk; /* the main launch's arguments */
    float scale;
} v3_args;

typedef struct { /* one warp through its steps */
    pipe_q pq;
    int mine;
    f4 qr[32][G8][2], acc[32][G8][2]; /* [lane][head][c], c < hd/128 <= 2 */
    float m[32], l[32];
} warp_st;

static void v3_issue(mem *mm, warp_st *w, const v3_args *a, int64_t wpipe4, int hk, int t0, int jend, int i,
                     int land_now) {
    const int hd4 = a->hd / 4, nc = a->hd / 128, stage4 = 2 * KU * hd4;
    if (i < w->mine)
        for (int lane = 0; lane < 32; lane++) {
            const int64_t st = wpipe4 + (int64_t)(i % a->stages) * stage4;
            for (int kk = 0; kk < KU; kk++) {
                const int t = t0 + kk, ok = t < jend;
                const int64_t o = ((int64_t)(ok ? t : 0) * a->kv_heads + hk) * a->hd; /* floats */
                for (int c = 0; c < nc; c++) {
                    const int64_t e = o + 4 * (lane + 32 * c);
                    q_push(&w->pq, st + kk * hd4 + lane + 32 * c, ok ? mm->k + e : NULL);
                    q_push(&w->pq, st + (KU + kk) * hd4 + lane + 32 * c, ok ? mm->v + e : NULL);
                }
            }
        }
    q_commit(mm, &w->pq, land_now);
}

/* the kernel's v3_reduce_scatter on all lanes at once: v[lane][32] -> v[lane][0] */
static void reduce_scatter(float v[32][32]) {
    for (int O = 16; O >= 1; O >>= 1) {
        float send[32][16], keep[32][16];
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < O; i++) {
                const int up = (lane & O) != 0;
                send[lane][i] = up ? v[lane][i] : v[lane][i + O];
                keep[lane][i] = up ? v[lane][i + O] : v[lane][i];
            }
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < O; i++) v[lane][i] = keep[lane][i] + send[lane ^ O][i];
    }
}

/* One block (qi, split, hk) of attn_decode_v3; warps interleaved a step at a time. */
static void v3_block(mem *mm, const v3_args *a, int qi, int split, int hk, int splits, int land_now) {
    const int hd4 = a->hd / 4, nc = a->hd / 128, stage4 = 2 * KU * hd4, W = a->warps;
    const int64_t pipe4 = (int64_t)W * a->stages * stage4, merge4 = (int64_t)W * (G8 * hd4 + 4);
    const int64_t region4 = pipe4 > merge4 ? pipe4 : merge4;
    const int G = a->heads / a->kv_heads;
    const int j0 = split * a->chunk;
    const int jend = (j0 + a->chunk < a->kv_len - a->n + qi + 1) ? j0 + a->chunk : a->kv_len - a->n + qi + 1;
    const int nsteps = jend > j0 ? (jend - j0 + KU - 1) / KU : 0;
    const float ninf = -INFINITY;
    for (int64_t i = 0; i < mm->nsmem4; i++)
        for (int e = 0; e < 4; e++) mm->smem[i].x[e] = NAN; /* what was there: never read unwritten */

    warp_st *ws = calloc((size_t)W, sizeof *ws);
    int most = 0;
    for (int w = 0; w < W; w++) {
        warp_st *st = &ws[w];
        st->mine = w < nsteps ? (nsteps - 1 - w) / W + 1 : 0;
        if (st->mine > most) most = st->mine;
        for (int lane = 0; lane < 32; lane++) {
            for (int g = 0; g < G8; g++)
                for (int c = 0; c < nc; c++)
                    for (int e = 0; e < 4; e++) {
                        float x = g < G ? mm->q[((int64_t)qi * a->heads + hk * G + g) * a->hd + 4 * (lane + 32 * c) + e]
                                        : 0.0f;
                        st->qr[lane][g][c].x[e] = x * a->scale;
                        st->acc[lane][g][c].x[e] = 0.0f;
                    }
            st->m[lane] = ninf;
            st->l[lane] = 0.0f;
        }
        for (int i = 0; i < a->stages; i++)
            v3_issue(mm, st, a, (int64_t)w * a->stages * stage4, hk, j0 + (w + i * W) * KU, jend, i, land_now);
    }
    for (int i = 0; i < most; i++)
        for (int w = 0; w < W; w++) {
            warp_st *st = &ws[w];
            if (i >= st->mine) continue;
            q_wait(mm, &st->pq, a->stages - 1);
            const int64_t stg = (int64_t)w * a->stages * stage4 + (int64_t)(i % a->stages) * stage4;
            const int64_t wx = region4 * 4 + (int64_t)w * 40; /* float index */
            const int t0 = j0 + (w + i * W) * KU;
            float s[32][32];
            for (int lane = 0; lane < 32; lane++)
                for (int kk = 0; kk < KU; kk++)
                    for (int g = 0; g < G8; g++) {
                        float dot = 0.0f;
                        for (int c = 0; c < nc; c++) {
                            const f4 kr = *sm4(mm, stg + kk * hd4 + lane + 32 * c);
                            for (int e = 0; e < 4; e++) dot = fmaf(st->qr[lane][g][c].x[e], kr.x[e], dot);
                        }
                        s[lane][g * KU + kk] = dot;
                    }
            reduce_scatter(s);
            float sc[32], mt[32], mt2[32], pr[32], corr[32], ps[32], ps2[32];
            for (int lane = 0; lane < 32; lane++) sc[lane] = t0 + (lane & 3) >= jend ? ninf : s[lane][0];
            for (int lane = 0; lane < 32; lane++) mt[lane] = fmaxf(sc[lane], sc[lane ^ 1]);
            for (int lane = 0; lane < 32; lane++) mt2[lane] = fmaxf(mt[lane], mt[lane ^ 2]);
            for (int lane = 0; lane < 32; lane++) {
                const float mn = fmaxf(st->m[lane], mt2[lane]);
                if (!isfinite(mn)) oob++; /* the kernel relies on it: key t0 is in the step */
                corr[lane] = expf(st->m[lane] - mn);
                pr[lane] = expf(sc[lane] - mn);
                st->m[lane] = mn;
            }
            for (int lane = 0; lane < 32; lane++) ps[lane] = pr[lane] + pr[lane ^ 1];
            for (int lane = 0; lane < 32; lane++) ps2[lane] = ps[lane] + ps[lane ^ 2];
            for (int lane = 0; lane < 32; lane++) {
                st->l[lane] = st->l[lane] * corr[lane] + ps2[lane];
                *smf(mm, wx + lane) = pr[lane];
                if ((lane & 3) == 0) *smf(mm, wx + 32 + (lane >> 2)) = corr[lane];
            }
            for (int lane = 0; lane < 32; lane++) {
                f4 vr[KU][2];
                for (int kk = 0; kk < KU; kk++)
                    for (int c = 0; c < nc; c++) vr[kk][c] = *sm4(mm, stg + (KU + kk) * hd4 + lane + 32 * c);
                for (int g = 0; g < G8; g++) {
                    const float cg = *smf(mm, wx + 32 + g);
                    const f4 pg = *sm4(mm, wx / 4 + g);
                    for (int c = 0; c < nc; c++)
                        for (int e = 0; e < 4; e++) {
                            float *x = &st->acc[lane][g][c].x[e];
                            *x = fmaf(pg.x[3], vr[3][c].x[e],
                                      fmaf(pg.x[2], vr[2][c].x[e],
                                           fmaf(pg.x[1], vr[1][c].x[e], fmaf(pg.x[0], vr[0][c].x[e], *x * cg))));
                        }
                }
            }
            v3_issue(mm, st, a, (int64_t)w * a->stages * stage4, hk, j0 + (w + (i + a->stages) * W) * KU, jend,
                     i + a->stages, land_now);
        }
    for (int w = 0; w < W; w++) q_wait(mm, &ws[w].pq, 0);

    /* merge (after __syncthreads) */
    const int64_t mmf = (int64_t)W * G8 * hd4 * 4, mlf = mmf + W * G8, wg = region4 * 4;
    for (int w = 0; w < W; w++)
        for (int lane = 0; lane < 32; lane++) {
            for (int g = 0; g < G8; g++)
                for (int c = 0; c < nc; c++)
                    *sm4(mm, (int64_t)(w * G8 + g) * hd4 + lane + 32 * c) = ws[w].acc[lane][g][c];
            if ((lane & 3) == 0) {
                *smf(mm, mmf + w * G8 + (lane >> 2)) = ws[w].m[lane];
                *smf(mm, mlf + w * G8 + (lane >> 2)) = ws[w].l[lane];
            }
        }
    for (int g = 0; g < G8 && g < W * 32; g++) {
        float M = ninf, L = 0.0f;
        for (int w = 0; w < W; w++) M = fmaxf(M, *smf(mm, mmf + w * G8 + g));
        for (int w = 0; w < W; w++) {
            const float mw = *smf(mm, mmf + w * G8 + g), wt = mw == ninf ? 0.0f : expf(mw - M);
            *smf(mm, wg + w * G8 + g) = wt;
            L = fmaf(*smf(mm, mlf + w * G8 + g), wt, L);
        }
        *smf(mm, wg + W * G8 + g) = M;
        *smf(mm, wg + W * G8 + G8 + g) = L;
    }
    const int64_t S = (int64_t)a->n * a->heads * splits;
    const int64_t b0 = ((int64_t)qi * a->heads + hk * G) * splits + split;
    for (int e = 0; e < G * hd4; e++) {
        const int g = e / hd4, f = e - g * hd4;
        f4 acc = {{0, 0, 0, 0}};
        for (int w = 0; w < W; w++) {
            const float wt = *smf(mm, wg + w * G8 + g);
            const f4 b = *sm4(mm, (int64_t)(w * G8 + g) * hd4 + f);
            for (int x = 0; x < 4; x++) acc.x[x] = fmaf(wt, b.x[x], acc.x[x]);
        }
        for (int x = 0; x < 4; x++) *wsf(mm, ((b0 + (int64_t)g * splits) * hd4 + f) * 4 + x) = acc.x[x];
    }
    for (int g = 0; g < G; g++) {
        const int64_t b = b0 + (int64_t)g * splits;
        *wsf(mm, S * a->hd + b) = *smf(mm, wg + W * G8 + g);
        *wsf(mm, S * a->hd + S + b) = *smf(mm, wg + W * G8 + G8 + g);
    }
    for (int w = 0; w < W; w++) {
        free(ws[w].pq.c);
        free(ws[w].pq.group_end);
    }
    free(ws);
}

/* ---- attn_decode_combine_v3: block (x, h, qi), 256 threads -------------------------- */
static float *cs(float *csm, int64_t n, int64_t i) {
    if (i < 0 || i >= n) {
        oob++;
        static float dummy;
        return &dummy;
    }
    return &csm[i];
}

static void combine_block(mem *mm, int hd, int n, int heads, int splits, int bx, int h, int qi, float *csm,
                          int64_t ncsm) {
    for (int64_t i = 0; i < ncsm; i++) csm[i] = NAN;
    const int64_t wsm = 0, rmax = splits, rsum = rmax + 8, part = rsum + 8;
    const int64_t S = (int64_t)n * heads * splits, wm = S * hd, wl = wm + S, b0 = ((int64_t)qi * heads + h) * splits;
    float Mt[256], Lt[256];
    for (int t = 0; t < 256; t++) {
        Mt[t] = -INFINITY;
        for (int s = t; s < splits; s += 256) Mt[t] = fmaxf(Mt[t], *wsf(mm, wm + b0 + s));
    }
    for (int w = 0; w < 8; w++) { /* warp_max: any order */
        float x = -INFINITY;
        for (int lane = 0; lane < 32; lane++) x = fmaxf(x, Mt[w * 32 + lane]);
        *cs(csm, ncsm, rmax + w) = x;
    }
    float M = *cs(csm, ncsm, rmax);
    for (int w = 1; w < 8; w++) M = fmaxf(M, *cs(csm, ncsm, rmax + w));
    if (!isfinite(M)) oob++; /* split 0 holds key 0 */
    for (int t = 0; t < 256; t++) {
        Lt[t] = 0.0f;
        for (int s = t; s < splits; s += 256) {
            const float ms = *wsf(mm, wm + b0 + s), w = ms == -INFINITY ? 0.0f : expf(ms - M);
            *cs(csm, ncsm, wsm + s) = w;
            Lt[t] = fmaf(*wsf(mm, wl + b0 + s), w, Lt[t]);
        }
    }
    for (int w = 0; w < 8; w++) { /* warp_sum: the xor butterfly */
        float v[32];
        for (int lane = 0; lane < 32; lane++) v[lane] = Lt[w * 32 + lane];
        for (int o = 16; o > 0; o >>= 1) {
            float nv[32];
            for (int lane = 0; lane < 32; lane++) nv[lane] = v[lane] + v[lane ^ o];
            memcpy(v, nv, sizeof v);
        }
        *cs(csm, ncsm, rsum + w) = v[0];
    }
    float L = 0.0f;
    for (int w = 0; w < 8; w++) L += *cs(csm, ncsm, rsum + w);
    for (int w = 0; w < 8; w++)
        for (int lane = 0; lane < 32; lane++) {
            const int64_t ap = b0 * hd + bx * 32 + lane;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            int s = w;
            for (; s + 24 < splits; s += 32) {
                a0 = fmaf(*wsf(mm, ap + (int64_t)s * hd), *cs(csm, ncsm, wsm + s), a0);
                a1 = fmaf(*wsf(mm, ap + (int64_t)(s + 8) * hd), *cs(csm, ncsm, wsm + s + 8), a1);
                a2 = fmaf(*wsf(mm, ap + (int64_t)(s + 16) * hd), *cs(csm, ncsm, wsm + s + 16), a2);
                a3 = fmaf(*wsf(mm, ap + (int64_t)(s + 24) * hd), *cs(csm, ncsm, wsm + s + 24), a3);
            }
            for (; s < splits; s += 8) a0 = fmaf(*wsf(mm, ap + (int64_t)s * hd), *cs(csm, ncsm, wsm + s), a0);
            *cs(csm, ncsm, part + w * 32 + lane) = (a0 + a1) + (a2 + a3);
        }
    for (int lane = 0; lane < 32; lane++) {
        float a = 0.0f;
        for (int w = 0; w < 8; w++) a += *cs(csm, ncsm, part + w * 32 + lane);
        const int64_t oi = ((int64_t)qi * heads + h) * hd + bx * 32 + lane;
        if (oi < 0 || oi >= mm->no) oob++;
        else mm->o[oi] = a / L;
    }
}

/* ---- attn_decode_v4: v3's block, then the tickets and the merges ----------------------- */
/* Deliberate mistakes the checks must catch (main runs each once). */
enum { V4_OK, V4_NO_RESET, V4_EARLY_TICKET, V4_ARRIVAL_ORDER };

typedef struct {
    int64_t ws2, ctr; /* float offsets of the group partials and the counters (the plan's) */
    int group, bug;
    int *arrived; /* per counter: the members in the order they took tickets */
    int most;     /* entries a counter */
} v4_args;

static uint32_t *ctrp(mem *m, int64_t i) { return (uint32_t *)wsf(m, i); } /* a counter's 4 bytes */

/* The block's ticket (thread 0: atomicAdd, the last resets); `member` is recorded. */
static int v4_last_ticket(mem *m, v4_args *b, int64_t ci, int count, int member) {
    uint32_t *c = ctrp(m, b->ctr + ci);
    const uint32_t t = (*c)++;
    if (t < (uint32_t)b->most) b->arrived[ci * b->most + t] = member;
    const int last = b->bug == V4_EARLY_TICKET ? t == (uint32_t)count - 2u || (count == 1 && t == 0)
                                               : t == (uint32_t)count - 1u;
    if (last && b->bug != V4_NO_RESET) *c = 0;
    return last;
}

/* v4_merge: partials first .. first+cnt-1 of src (v3's layout over S, per a head) of
 * heads hk*G + g of query qi into dst's partial di (dper a head, over Sd) or o.
 * Shared memory: 8*cnt + 16 floats from 0, within the region (the flag is past it). */
static void v4_merge(mem *m, int64_t src, int64_t S, int per, int first, int cnt, int64_t dst, int64_t Sd, int dper,
                     int di, int to_o, int qi, int heads, int hk, int G, int64_t region_floats, const int *arrival) {
    if (8 * (int64_t)cnt + 16 > region_floats) oob++;
    const int64_t sw = 0, sM = 8 * (int64_t)cnt, sL = sM + 8;
    const int64_t b0 = ((int64_t)qi * heads + hk * G) * per + first;
    for (int g = 0; g < G; g++) {
        const int64_t pm = src + S * 128 + b0 + (int64_t)g * per, pl = pm + S;
        float M = -INFINITY, L = 0.0f;
        for (int c = 0; c < cnt; c++) M = fmaxf(M, *wsf(m, pm + c));
        for (int i = 0; i < cnt; i++) {
            const int c = arrival ? arrival[i] : i;
            const float mc = *wsf(m, pm + c), w = mc == -INFINITY ? 0.0f : expf(mc - M);
            *smf(m, sw + g * cnt + c) = w;
            L = fmaf(*wsf(m, pl + c), w, L);
        }
        *smf(m, sM + g) = M;
        *smf(m, sL + g) = L;
    }
    for (int e = 0; e < G * 32; e++) {
        const int g = e / 32, f = e - g * 32;
        float a[4] = {0, 0, 0, 0};
        for (int i = 0; i < cnt; i++) {
            const int c = arrival ? arrival[i] : i;
            const float w = *smf(m, sw + g * cnt + c);
            for (int x = 0; x < 4; x++) a[x] = fmaf(w, *wsf(m, src + ((b0 + (int64_t)g * per + c) * 32 + f) * 4 + x), a[x]);
        }
        if (to_o) {
            const float L = *smf(m, sL + g);
            for (int x = 0; x < 4; x++) {
                const int64_t oi = (((int64_t)qi * heads + hk * G + g) * 32 + f) * 4 + x;
                if (oi < 0 || oi >= m->no) oob++;
                else m->o[oi] = a[x] / L;
            }
        } else {
            for (int x = 0; x < 4; x++)
                *wsf(m, dst + ((((int64_t)qi * heads + hk * G + g) * dper + di) * 32 + f) * 4 + x) = a[x];
        }
    }
    if (!to_o)
        for (int g = 0; g < G; g++) {
            const int64_t bd = ((int64_t)qi * heads + hk * G + g) * dper + di;
            *wsf(m, dst + Sd * 128 + bd) = *smf(m, sM + g);
            *wsf(m, dst + Sd * 128 + Sd + bd) = *smf(m, sL + g);
        }
}

/* What attn_decode_v4 does after v3_partial, block (qi, split, hk). */
static void v4_tail(mem *m, const v3_args *a, v4_args *b, int qi, int split, int hk, int splits, int64_t region_floats) {
    const int G = a->heads / a->kv_heads, ngroups = (splits + b->group - 1) / b->group, grp = split / b->group;
    const int first = grp * b->group, cnt = b->group < splits - first ? b->group : splits - first;
    const int64_t S = (int64_t)a->n * a->heads * splits, S2 = (int64_t)a->n * a->heads * ngroups;
    const int64_t gc = ((int64_t)qi * a->kv_heads + hk) * ngroups + grp;
    if (!v4_last_ticket(m, b, gc, cnt, split - first)) return;
    const int *arr = b->bug == V4_ARRIVAL_ORDER ? &b->arrived[gc * b->most] : NULL;
    if (ngroups == 1) {
        v4_merge(m, 0, S, splits, 0, splits, 0, 0, 0, 0, 1, qi, a->heads, hk, G, region_floats, arr);
        return;
    }
    v4_merge(m, 0, S, splits, first, cnt, b->ws2, S2, ngroups, grp, 0, qi, a->heads, hk, G, region_floats, arr);
    const int64_t tc = (int64_t)a->n * a->kv_heads * ngroups + (int64_t)qi * a->kv_heads + hk;
    if (!v4_last_ticket(m, b, tc, ngroups, grp)) return;
    arr = b->bug == V4_ARRIVAL_ORDER ? &b->arrived[tc * b->most] : NULL;
    v4_merge(m, b->ws2, S2, ngroups, 0, ngroups, 0, 0, 0, 0, 1, qi, a->heads, hk, G, region_floats, arr);
}

/* ---- a case ---------------------------------------------------------------------------- */
static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Plans `variant` for (n, L, heads, kv_heads, d=128) on a device of sm_count SMs into p. */
static int plan_case(const char *variant, int n, int L, int heads, int kv_heads, int sm_count, const char *what,
                     kb_case *c, kbcu_tuned *tuned, const kbcu_variant **v, kbcu_plan *p) {
    char msg[KB_MSG];
    kb_case_init(c, KB_OP_attention);
    c->n = n, c->kv_len = L, c->heads = heads, c->kv_heads = kv_heads, c->head_dim = 128;
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    kb_arg args[KB_MAX_ARGS];
    if (kb_case_tensors(c, t, msg) != KB_OK) {
        CHECK(0, "%s: %s", what, msg);
        return 0;
    }
    for (int i = 0; i < 4; i++) args[i] = (kb_arg){t[i].type, t[i].count, {1, 0, t[i].bytes}};
    if (kbcu_resolve_variant(KB_OP_attention, variant, 0, tuned, v, msg) != KB_OK) {
        CHECK(0, "%s: %s", what, msg);
        return 0;
    }
    const kbcu_job j = {c, *v, args, 3, 1, {90, sm_count, 227 * 1024}};
    if (kbcu_plan_case(&j, p, msg) != KB_OK) {
        CHECK(0, "%s plans: %s", what, msg);
        return 0;
    }
    return 1;
}

/* The inputs (seeded by the case) and the outputs' memory; the workspace from the plan. */
static void alloc_mem(mem *m, const kbcu_plan *p, int64_t smem, int n, int L, int heads, int kv_heads) {
    memset(m, 0, sizeof *m);
    const int64_t nq = (int64_t)n * heads * 128, nk = (int64_t)L * kv_heads * 128;
    m->q = malloc(nq * sizeof(float));
    m->k = malloc(nk * sizeof(float));
    m->v = malloc(nk * sizeof(float));
    m->no = nq;
    m->o = malloc(nq * sizeof(float));
    m->nws = (int64_t)(p->workspace / sizeof(float));
    m->ws = malloc((size_t)p->workspace + 4);
    m->nsmem4 = smem / 16;
    m->smem = malloc((size_t)m->nsmem4 * sizeof(f4) + 16);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(n * 1000003 + L * 131 + heads * 7 + kv_heads);
    for (int64_t i = 0; i < nq; i++) m->q[i] = (float)(2.0 * urand(&seed));
    for (int64_t i = 0; i < nk; i++) m->k[i] = (float)(2.0 * urand(&seed)), m->v[i] = (float)urand(&seed);
}
static void free_mem(mem *m) { free(m->q), free(m->k), free(m->v), free(m->o), free(m->ws), free(m->smem); }

/* Outputs off fp64 attention by more than 2e-5 (query i at position L - n + i sees keys
 * 0..L-n+i); *worst the largest error (NaN sticks). */
static int fp64_bad(const mem *m, const float *out, int n, int L, int heads, int kv_heads, double *worst) {
    const int G = heads / kv_heads;
    int bad = 0;
    *worst = 0.0;
    for (int qi = 0; qi < n; qi++)
        for (int h = 0; h < heads; h++) {
            const int hk = h / G, last = L - n + qi;
            double *sc = malloc((size_t)(last + 1) * sizeof(double)), mx = -INFINITY, sum = 0.0;
            for (int jk = 0; jk <= last; jk++) {
                double d = 0.0;
                for (int e = 0; e < 128; e++)
                    d += (double)m->q[((int64_t)qi * heads + h) * 128 + e] *
                         m->k[((int64_t)jk * kv_heads + hk) * 128 + e];
                sc[jk] = d / sqrt(128.0);
                if (sc[jk] > mx) mx = sc[jk];
            }
            for (int jk = 0; jk <= last; jk++) sum += (sc[jk] = exp(sc[jk] - mx));
            for (int e = 0; e < 128; e++) {
                double o = 0.0;
                for (int jk = 0; jk <= last; jk++) o += sc[jk] * m->v[((int64_t)jk * kv_heads + hk) * 128 + e];
                o /= sum;
                const double err = fabs(out[((int64_t)qi * heads + h) * 128 + e] - o);
                if (!(err <= *worst)) *worst = err;
                bad += !(err <= 2e-5);
            }
            free(sc);
        }
    return bad;
}

static v3_args main_args(const kbcu_variant *v, const kbcu_launch *lm, int at) {
    /* at: where n is in the launch's arguments (after q k v ws; v4: q k v o ws ws2 ctr) */
    return (v3_args){kbcu_def_int(v, "HD", 0),   kbcu_def_int(v, "WARPS", 0), kbcu_def_int(v, "STAGES", 0),
                     (int)lm->args[at].i,        (int)lm->args[at + 1].i,      (int)lm->args[at + 2].i,
                     (int)lm->args[at + 3].i,    (int)lm->args[at + 5].i,      (float)lm->args[at + 6].f};
}

/* decode_v3: runs the model twice (copies landing at once / as late as allowed), compares
 * with fp64. */
static void run_case(const char *variant, int n, int L, int heads, int kv_heads, int sm_count) {
    char what[160];
    snprintf(what, sizeof what, "%s n=%d L=%d heads=%d/%d sm=%d", variant, n, L, heads, kv_heads, sm_count);
    kb_case c;
    kbcu_tuned tuned;
    const kbcu_variant *v;
    kbcu_plan p;
    if (!plan_case(variant, n, L, heads, kv_heads, sm_count, what, &c, &tuned, &v, &p)) return;
    CHECK(p.nlaunch == 2 && !strcmp(p.launch[0].kernel, "attn_decode_v3") &&
              !strcmp(p.launch[1].kernel, "attn_decode_combine_v3") && p.launch[0].nargs == 11 &&
              p.launch[1].nargs == 5,
          "%s: the launches", what);
    if (p.nlaunch != 2) return;
    const kbcu_launch *lm = &p.launch[0], *lc = &p.launch[1];
    v3_args a = main_args(v, lm, 4);
    const int splits = (int)lm->grid[1];
    CHECK(a.hd == 128 && lm->block[0] == 32 * a.warps && lm->grid[0] == n && lm->grid[2] == kv_heads &&
              lm->args[8].i == 128 && lc->grid[0] == 4 && lc->grid[1] == heads && lc->grid[2] == n &&
              lc->block[0] == 256 && lc->args[4].i == splits && lc->args[2].i == n && lc->args[3].i == heads,
          "%s: geometry", what);

    mem m;
    alloc_mem(&m, &p, lm->smem, n, L, heads, kv_heads);
    const int64_t nq = m.no, ncsm = lc->smem / 4;
    float *csm = malloc((size_t)ncsm * sizeof(float) + 4);

    float *out[2];
    for (int mode = 0; mode < 2; mode++) {
        oob = 0;
        for (int64_t i = 0; i < m.nws; i++) m.ws[i] = NAN;
        for (int64_t i = 0; i < nq; i++) m.o[i] = NAN;
        for (int qi = 0; qi < lm->grid[0]; qi++)
            for (int s = 0; s < lm->grid[1]; s++)
                for (int hk = 0; hk < lm->grid[2]; hk++) v3_block(&m, &a, qi, s, hk, splits, mode);
        int64_t unwritten = 0;
        for (int64_t i = 0; i < m.nws; i++) unwritten += isnan(m.ws[i]);
        CHECK(unwritten == 0, "%s: every workspace float written (%lld not)", what, (long long)unwritten);
        for (int qi = 0; qi < lc->grid[2]; qi++)
            for (int h = 0; h < lc->grid[1]; h++)
                for (int bx = 0; bx < lc->grid[0]; bx++)
                    combine_block(&m, 128, (int)lc->args[2].i, (int)lc->args[3].i, splits, bx, h, qi, csm, ncsm);
        CHECK(oob == 0, "%s (copies land %s): %d accesses outside shared memory, workspace or o, or a -inf maximum",
              what, mode ? "at once" : "late", oob);
        out[mode] = malloc(nq * sizeof(float));
        memcpy(out[mode], m.o, nq * sizeof(float));
    }
    CHECK(!memcmp(out[0], out[1], nq * sizeof(float)), "%s: the same bits whenever the copies land", what);
    double worst;
    const int bad = fp64_bad(&m, out[0], n, L, heads, kv_heads, &worst);
    CHECK(bad == 0, "%s: %d outputs off the fp64 attention, worst %.3g", what, bad, worst);
    free(out[0]);
    free(out[1]);
    free(csm);
    free_mem(&m);
    kbcu_plan_free(&p);
}

/* decode_v4: one launch, its blocks run one after another in 3 orders (grid order,
 * reverse, shuffled: a different block takes each last ticket), each order twice on the
 * same workspace (the second launch finds the counters as the first left them; the
 * partials are NaN again before each launch, the counters zero only before the first,
 * as the worker's zeroing at prepare). Every run must give the same bits, leave every
 * counter at 0, write every output, and match fp64. bug != V4_OK: a deliberate mistake
 * in the model, which these checks must notice (returns the problems seen, no CHECK). */
static int run_case_v4(const char *variant, int n, int L, int heads, int kv_heads, int sm_count, int bug) {
    char what[200];
    snprintf(what, sizeof what, "%s n=%d L=%d heads=%d/%d sm=%d bug=%d", variant, n, L, heads, kv_heads, sm_count, bug);
    kb_case c;
    kbcu_tuned tuned;
    const kbcu_variant *v;
    kbcu_plan p;
    if (!plan_case(variant, n, L, heads, kv_heads, sm_count, what, &c, &tuned, &v, &p)) return 1;
    CHECK(p.nlaunch == 1 && !strcmp(p.launch[0].kernel, "attn_decode_v4") && p.launch[0].nargs == 15 &&
              p.zero_workspace == 1,
          "%s: one launch, a zeroed workspace", what);
    if (p.nlaunch != 1 || p.launch[0].nargs != 15) return 1;
    const kbcu_launch *lm = &p.launch[0];
    const v3_args a = main_args(v, lm, 7);
    const int splits = (int)lm->grid[1], group = (int)lm->args[14].i, ngroups = (splits + group - 1) / group;
    CHECK(a.hd == 128 && lm->block[0] == 32 * a.warps && lm->grid[0] == n && lm->grid[2] == kv_heads &&
              lm->args[11].i == 128 && lm->args[3].tensor == 3 && lm->args[4].i == 0 && lm->args[5].i % 16 == 0 &&
              lm->args[6].i % 16 == 0,
          "%s: geometry", what);
    const int64_t S = (int64_t)n * heads * splits, S2 = (int64_t)n * heads * ngroups;
    const int64_t nctr = (int64_t)n * kv_heads * (ngroups + 1);
    v4_args b = {lm->args[5].i / 4, lm->args[6].i / 4, group, bug, NULL, group > ngroups ? group : ngroups};
    /* the parts do not overlap and end with the workspace */
    CHECK(b.ws2 >= S * 130 && b.ctr >= b.ws2 + (ngroups > 1 ? S2 * 130 : 0) &&
              (uint64_t)(b.ctr + nctr) * 4 == p.workspace,
          "%s: workspace layout", what);
    b.arrived = calloc((size_t)(nctr * b.most), sizeof(int));
    const int W = a.warps, hd4 = 32, stage4 = 2 * KU * hd4;
    const int64_t pipe4 = (int64_t)W * a.stages * stage4, merge4 = (int64_t)W * (G8 * hd4 + 4);
    const int64_t region_floats = (pipe4 > merge4 ? pipe4 : merge4) * 4;
    mem m;
    alloc_mem(&m, &p, lm->smem, n, L, heads, kv_heads);
    const int64_t nq = m.no, nblocks = (int64_t)n * splits * kv_heads;
    int64_t *order = malloc((size_t)nblocks * sizeof *order);
    float *first = malloc(nq * sizeof(float));
    uint64_t seed = 12345u + (uint64_t)L;
    int problems = 0;
#define V4_CHECK(cond, ...)                                                                                            \
    do {                                                                                                               \
        if (bug) problems += !(cond);                                                                                  \
        else CHECK(cond, __VA_ARGS__);                                                                                 \
    } while (0)
    for (int64_t i = 0; i < m.nws; i++) m.ws[i] = NAN;
    for (int64_t i = 0; i < nctr; i++) *ctrp(&m, b.ctr + i) = 0;
    for (int ord = 0; ord < 3; ord++) {
        for (int64_t i = 0; i < nblocks; i++) order[i] = ord == 1 ? nblocks - 1 - i : i;
        if (ord == 2)
            for (int64_t i = nblocks - 1; i > 0; i--) {
                const int64_t r = (int64_t)((urand(&seed) + 1.0) * 0.5 * (double)(i + 1)) % (i + 1), t = order[i];
                order[i] = order[r], order[r] = t;
            }
        for (int launch = 0; launch < 2; launch++) {
            oob = 0;
            for (int64_t i = 0; i < b.ctr; i++) m.ws[i] = NAN;
            for (int64_t i = 0; i < nq; i++) m.o[i] = NAN;
            for (int64_t i = 0; i < nblocks; i++) { /* block id: x fastest (qi, split, hk) */
                const int qi = (int)(order[i] % n), sp = (int)(order[i] / n % splits), hk = (int)(order[i] / n / splits);
                v3_block(&m, &a, qi, sp, hk, splits, (ord + launch) & 1);
                v4_tail(&m, &a, &b, qi, sp, hk, splits, region_floats);
            }
            int64_t nonzero = 0, unwritten = 0;
            for (int64_t i = 0; i < nctr; i++) nonzero += *ctrp(&m, b.ctr + i) != 0;
            for (int64_t i = 0; i < nq; i++) unwritten += isnan(m.o[i]);
            V4_CHECK(oob == 0, "%s order %d launch %d: %d accesses outside shared memory, workspace or o", what, ord,
                     launch, oob);
            V4_CHECK(nonzero == 0, "%s order %d launch %d: %lld counters not back at 0", what, ord, launch,
                     (long long)nonzero);
            V4_CHECK(unwritten == 0, "%s order %d launch %d: %lld outputs NaN or unwritten", what, ord, launch,
                     (long long)unwritten);
            if (ord == 0 && launch == 0) memcpy(first, m.o, nq * sizeof(float));
            else
                V4_CHECK(!memcmp(first, m.o, nq * sizeof(float)), "%s order %d launch %d: other bits than grid order",
                         what, ord, launch);
        }
    }
    double worst;
    const int bad = fp64_bad(&m, first, n, L, heads, kv_heads, &worst);
    V4_CHECK(bad == 0, "%s: %d outputs off the fp64 attention, worst %.3g", what, bad, worst);
#undef V4_CHECK
    free(order);
    free(first);
    free(b.arrived);
    free_mem(&m);
    kbcu_plan_free(&p);
    return problems;
}

int main(void) {
    const char *v = "decode_v3_w4_s4";
    /* one step a warp (132 SMs) and many (2 SMs: one or two splits), partial steps */
    const int Ls[] = {1, 3, 4, 5, 17, 64, 100, 333};
    for (int i = 0; i < (int)(sizeof Ls / sizeof Ls[0]); i++) {
        run_case(v, 1, Ls[i], 28, 4, 132);
        run_case(v, 1, Ls[i], 28, 4, 2);
    }
    /* n > 1: splits past some queries' last key (empty for them), masks inside a step */
    run_case(v, 3, 20, 28, 4, 132);
    run_case(v, 16, 16, 28, 4, 132);
    run_case(v, 16, 20, 28, 4, 132);
    run_case(v, 16, 37, 28, 4, 3);
    run_case(v, 5, 300, 28, 4, 132);
    /* GQA groups of 1, 3 and 8 */
    run_case(v, 2, 77, 8, 8, 132);
    run_case(v, 2, 77, 6, 2, 4);
    run_case(v, 1, 150, 16, 2, 132);
    /* tuned points: one warp, one stage (the merge area outgrows the stages), 8 warps x 3 */
    run_case("decode_v3_w4_s4[WARPS=1]", 2, 90, 28, 4, 132);
    run_case("decode_v3_w4_s4[STAGES=1,WARPS=2]", 3, 130, 28, 4, 2);
    run_case("decode_v3_w4_s4[STAGES=2]", 1, 1000, 28, 4, 132);
    run_case("decode_v3_w4_s4[STAGES=3,WARPS=8]", 4, 257, 28, 4, 5);
    /* decode_v4 (hidden until it runs on a GPU) */
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    const char *v4 = "decode_v4_w4_s4";
    /* one level (<= 8 splits: 2 SMs, n = 16) and two (132 SMs: 32 and 99 splits, a short
     * last group), n > 1 with empty splits, GQA groups of 1, 3, 8, tuned points */
    const int v4_L[] = {1, 5, 64, 333, 1000};
    for (int i = 0; i < (int)(sizeof v4_L / sizeof v4_L[0]); i++) {
        run_case_v4(v4, 1, v4_L[i], 28, 4, 132, V4_OK);
        run_case_v4(v4, 1, v4_L[i], 28, 4, 2, V4_OK);
    }
    run_case_v4(v4, 3, 20, 28, 4, 132, V4_OK);
    run_case_v4(v4, 16, 37, 28, 4, 3, V4_OK);
    run_case_v4(v4, 5, 300, 28, 4, 132, V4_OK);
    run_case_v4(v4, 2, 77, 8, 8, 132, V4_OK);
    run_case_v4(v4, 2, 77, 6, 2, 4, V4_OK);
    run_case_v4(v4, 1, 150, 16, 2, 132, V4_OK);
    run_case_v4("decode_v4_w4_s4[WARPS=1]", 2, 90, 28, 4, 132, V4_OK);
    run_case_v4("decode_v4_w4_s4[STAGES=1,WARPS=2]", 3, 130, 28, 4, 2, V4_OK);
    /* the checks notice a counter left behind, a merge before the last partial, and a
     * merge in arrival order (one level and two) */
    CHECK(run_case_v4(v4, 1, 1000, 28, 4, 132, V4_NO_RESET) > 0, "v4 model: a counter not reset is caught");
    CHECK(run_case_v4(v4, 1, 1000, 28, 4, 132, V4_EARLY_TICKET) > 0, "v4 model: an early merge is caught");
    CHECK(run_case_v4(v4, 1, 1000, 28, 4, 132, V4_ARRIVAL_ORDER) > 0, "v4 model: arrival order is caught (2 levels)");
    CHECK(run_case_v4(v4, 1, 100, 28, 4, 132, V4_ARRIVAL_ORDER) > 0, "v4 model: arrival order is caught (1 level)");
    CHECK(run_case_v4(v4, 2, 77, 6, 2, 4, V4_NO_RESET) > 0, "v4 model: a counter not reset is caught (1 level)");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
