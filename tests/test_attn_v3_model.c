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

/* ---- a case ---------------------------------------------------------------------------- */
static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Plans `variant` for (n, L, heads, kv_heads, d=128) on a device of sm_count SMs, runs the
 * model twice (copies landing at once / as late as allowed), compares with fp64. */
static void run_case(const char *variant, int n, int L, int heads, int kv_heads, int sm_count) {
    char msg[KB_MSG], what[160];
    snprintf(what, sizeof what, "%s n=%d L=%d heads=%d/%d sm=%d", variant, n, L, heads, kv_heads, sm_count);
    kb_case c;
    kb_case_init(&c, KB_OP_attention);
    c.n = n, c.kv_len = L, c.heads = heads, c.kv_heads = kv_heads, c.head_dim = 128;
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    kb_arg args[KB_MAX_ARGS];
    if (kb_case_tensors(&c, t, msg) != KB_OK) {
        CHECK(0, "%s: %s", what, msg);
        return;
    }
    for (int i = 0; i < 4; i++) args[i] = (kb_arg){t[i].type, t[i].count, {1, 0, t[i].bytes}};
    kbcu_tuned tuned;
    const kbcu_variant *v;
    if (kbcu_resolve_variant(KB_OP_attention, variant, 0, &tuned, &v, msg) != KB_OK) {
        CHECK(0, "%s: %s", what, msg);
        return;
    }
    const kbcu_job j = {&c, v, args, 3, 1, {90, sm_count, 227 * 1024}};
    kbcu_plan p;
    if (kbcu_plan_case(&j, &p, msg) != KB_OK) {
        CHECK(0, "%s plans: %s", what, msg);
        return;
    }
    CHECK(p.nlaunch == 2 && !strcmp(p.launch[0].kernel, "attn_decode_v3") &&
              !strcmp(p.launch[1].kernel, "attn_decode_combine_v3") && p.launch[0].nargs == 11 &&
              p.launch[1].nargs == 5,
          "%s: the launches", what);
    if (p.nlaunch != 2) return;
    const kbcu_launch *lm = &p.launch[0], *lc = &p.launch[1];
    v3_args a = {kbcu_def_int(v, "HD", 0), kbcu_def_int(v, "WARPS", 0), kbcu_def_int(v, "STAGES", 0),
                 (int)lm->args[4].i,       (int)lm->args[5].i,          (int)lm->args[6].i,
                 (int)lm->args[7].i,       (int)lm->args[9].i,          (float)lm->args[10].f};
    const int splits = (int)lm->grid[1];
    CHECK(a.hd == 128 && lm->block[0] == 32 * a.warps && lm->grid[0] == n && lm->grid[2] == kv_heads &&
              lm->args[8].i == 128 && lc->grid[0] == 4 && lc->grid[1] == heads && lc->grid[2] == n &&
              lc->block[0] == 256 && lc->args[4].i == splits && lc->args[2].i == n && lc->args[3].i == heads,
          "%s: geometry", what);

    mem m = {0};
    const int64_t nq = (int64_t)n * heads * 128, nk = (int64_t)L * kv_heads * 128;
    m.q = malloc(nq * sizeof(float));
    m.k = malloc(nk * sizeof(float));
    m.v = malloc(nk * sizeof(float));
    m.no = nq;
    m.o = malloc(nq * sizeof(float));
    m.nws = (int64_t)(p.workspace / sizeof(float));
    m.ws = malloc((size_t)p.workspace + 4);
    m.nsmem4 = lm->smem / 16;
    m.smem = malloc((size_t)m.nsmem4 * sizeof(f4) + 16);
    const int64_t ncsm = lc->smem / 4;
    float *csm = malloc((size_t)ncsm * sizeof(float) + 4);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(n * 1000003 + L * 131 + heads * 7 + kv_heads);
    for (int64_t i = 0; i < nq; i++) m.q[i] = (float)(2.0 * urand(&seed));
    for (int64_t i = 0; i < nk; i++) m.k[i] = (float)(2.0 * urand(&seed)), m.v[i] = (float)urand(&seed);

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

    /* fp64 attention: query i at position L - n + i sees keys 0..L-n+i */
    const int G = heads / kv_heads;
    double worst = 0.0;
    int bad = 0;
    for (int qi = 0; qi < n; qi++)
        for (int h = 0; h < heads; h++) {
            const int hk = h / G, last = L - n + qi;
            double *sc = malloc((size_t)(last + 1) * sizeof(double)), mx = -INFINITY, sum = 0.0;
            for (int jk = 0; jk <= last; jk++) {
                double d = 0.0;
                for (int e = 0; e < 128; e++)
                    d +=
                        (double)m.q[((int64_t)qi * heads + h) * 128 + e] * m.k[((int64_t)jk * kv_heads + hk) * 128 + e];
                sc[jk] = d / sqrt(128.0);
                if (sc[jk] > mx) mx = sc[jk];
            }
            for (int jk = 0; jk <= last; jk++) sum += (sc[jk] = exp(sc[jk] - mx));
            for (int e = 0; e < 128; e++) {
                double o = 0.0;
                for (int jk = 0; jk <= last; jk++) o += sc[jk] * m.v[((int64_t)jk * kv_heads + hk) * 128 + e];
                o /= sum;
                const double err = fabs(out[0][((int64_t)qi * heads + h) * 128 + e] - o);
                if (!(err <= worst)) worst = err; /* NaN sticks */
                bad += !(err <= 2e-5);
            }
            free(sc);
        }
    CHECK(bad == 0, "%s: %d outputs off the fp64 attention, worst %.3g", what, bad, worst);
    free(out[0]);
    free(out[1]);
    free(m.q), free(m.k), free(m.v), free(m.o), free(m.ws), free(m.smem), free(csm);
    kbcu_plan_free(&p);
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
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
