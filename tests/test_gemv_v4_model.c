/* test_gemv_v4_model.c - gemm_fp8 gemv_v4 (kernels/cuda/gemm_fp8.cu) as a C model, run
 * on the CPU from the cuda backend's own plan, against ref_gemm_fp8 (fp64).
 *
 * No GPU here, so the kernel's indexing is transcribed step for step: every lane of
 * every warp of every block of the plan's grid, the rows a warp owns (clamped past M),
 * the rounds of LOADS 16-byte pieces p = base + lane + 32u, the W, X, sa and sb
 * offsets (every read bounds-checked, every W byte of a real row counted: each must
 * be read exactly once per token block), the per-piece block scale (kb = p / 8: a
 * piece lies in one 128-block), fmaf in the kernel's order, the xor butterfly and the
 * storing lane (every output written exactly once). The fp8 values are decoded by
 * ref/formats.c (the kernel's f16 path is exact, so the values are the same).
 * The test proves it can fail: two deliberately wrong indexings (the scale block of
 * a 64-wide piece, a lane stride of 16) must be caught. What it cannot catch is the
 * transcription itself being unfaithful: read it beside the kernel. */
#include "bench/op.h"
#include "kernels/cuda/cuda_ops.h"
#include "ref/formats.h"
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kb_check.h"

enum { FAULT_NONE, FAULT_SCALE_BLOCK, FAULT_LANE_STRIDE };

typedef struct {
    int M, N, K, mode;
    int warps, rpw, nb, loads;
    int ae, be;
    const uint8_t *w, *x;
    const float *sa, *sb;
    int64_t nsa, nsb;
    float *out;
    int *writes;      /* per output */
    int *wreads;      /* per W byte, this token block */
    int oob;          /* reads or writes outside a tensor */
    int fault;
} model;

static float dec(uint8_t v, int e5m2) { return e5m2 ? kb_e5m2_to_f32(v) : kb_e4m3_to_f32(v); }

/* One warp (blockIdx.x = bx, blockIdx.y = by, warp wi): the kernel's gemm_fp8_gemv_v4. */
static void warp_run(model *s, int bx, int by, int wi) {
    const int m0 = (bx * s->warps + wi) * s->rpw, n0 = by * s->nb;
    if (m0 >= s->M) return;
    const int kbs = (s->K + 127) / 128, np = s->K >> 4, blocks = s->mode >= 2;
    const int stride = s->fault == FAULT_LANE_STRIDE ? 16 : 32;
    int mr[2];
    for (int r = 0; r < s->rpw; r++) mr[r] = m0 + r < s->M - 1 ? m0 + r : s->M - 1;
    float acc[32][2][16];
    memset(acc, 0, sizeof acc);
    for (int lane = 0; lane < 32; lane++)
        for (int base = 0; base < np; base += 32 * s->loads)
            for (int u = 0; u < s->loads; u++) {
                const int p = base + lane + stride * u;
                if (p >= np) continue;
                const int kb = s->fault == FAULT_SCALE_BLOCK ? p / 4 : p / 8;
                for (int j = 0; j < s->nb; j++) {
                    if (n0 + j >= s->N) continue;
                    const int64_t xo = (int64_t)(n0 + j) * s->K + 16LL * p;
                    if (xo < 0 || xo + 16 > (int64_t)s->N * s->K) {
                        s->oob++;
                        continue;
                    }
                    for (int r = 0; r < s->rpw; r++) {
                        const int64_t wo = (int64_t)mr[r] * s->K + 16LL * p;
                        if (wo < 0 || 16LL * p + 16 > s->K) {
                            s->oob++;
                            continue;
                        }
                        if (j == 0 && m0 + r < s->M)
                            for (int e = 0; e < 16; e++) s->wreads[wo + e]++;
                        float part = 0.0f;
                        for (int e = 0; e < 16; e++)
                            part = fmaf(dec(s->w[wo + e], s->ae), dec(s->x[xo + e], s->be), part);
                        if (blocks) {
                            const int64_t ia = s->mode == 2 ? (int64_t)mr[r] * kbs + kb : (int64_t)(mr[r] / 128) * kbs + kb;
                            const int64_t ib = (int64_t)(n0 + j) * kbs + kb;
                            if (ia < 0 || ia >= s->nsa || ib < 0 || ib >= s->nsb) {
                                s->oob++;
                                continue;
                            }
                            acc[lane][r][j] = fmaf(part, s->sa[ia] * s->sb[ib], acc[lane][r][j]);
                        } else acc[lane][r][j] += part;
                    }
                }
            }
    /* the butterfly: __shfl_xor_sync over o = 16..1, all lanes at once */
    for (int r = 0; r < s->rpw; r++)
        for (int j = 0; j < s->nb; j++) {
            float v[32];
            for (int l = 0; l < 32; l++) v[l] = acc[l][r][j];
            for (int o = 16; o > 0; o >>= 1) {
                float t[32];
                for (int l = 0; l < 32; l++) t[l] = v[l] + v[l ^ o];
                memcpy(v, t, sizeof v);
            }
            const int m = m0 + r, n = n0 + j;
            for (int l = 0; l < 32; l++)
                if (l == (r * s->nb + j) % 32 && m < s->M && n < s->N) {
                    float fs = 1.0f;
                    if (s->mode == 0) fs = s->sa[0] * s->sb[0];
                    else if (s->mode == 1) fs = s->sa[m] * s->sb[n];
                    s->out[(int64_t)n * s->M + m] = v[l] * fs;
                    s->writes[(int64_t)n * s->M + m]++;
                }
        }
}

static uint64_t seed = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(seed >> 33);
}
static uint8_t code(int e5m2) { /* any finite code */
    for (;;) {
        const uint8_t v = (uint8_t)rnd();
        if (e5m2 ? (v & 0x7c) != 0x7c : (v & 0x7f) != 0x7f) return v;
    }
}

/* Plans `variant` for M x N x K, runs the model; returns the number of problems found
 * (quiet when expect_fail: a fault run must find some). */
static int run_case(const char *variant, int M, int N, int K, int mode, int ae, int be, int fault) {
    char msg[KB_MSG], what[200];
    snprintf(what, sizeof what, "%s %dx%dx%d scale %d %s x %s%s", variant, M, N, K, mode, ae ? "e5m2" : "e4m3",
             be ? "e5m2" : "e4m3", fault ? " (deliberately wrong indexing)" : "");
    kb_case c;
    kb_case_init(&c, KB_OP_gemm_fp8);
    c.m = M, c.n = N, c.k = K, c.a_type = ae ? KB_E5M2 : KB_E4M3, c.b_type = be ? KB_E5M2 : KB_E4M3;
    c.out_type = KB_F32, c.scale_mode = (kb_scale_mode)mode;
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    kb_arg args[KB_MAX_ARGS];
    if (kb_case_tensors(&c, t, msg) != KB_OK) {
        CHECK(0, "%s: %s", what, msg);
        return 1;
    }
    for (int i = 0; i < 5; i++) args[i] = (kb_arg){t[i].type, t[i].count, {1, 0, t[i].bytes}};
    kbcu_tuned tuned;
    const kbcu_variant *v;
    if (kbcu_resolve_variant(KB_OP_gemm_fp8, variant, 0, &tuned, &v, msg) != KB_OK) {
        CHECK(0, "%s: %s", what, msg);
        return 1;
    }
    const kbcu_job j = {&c, v, args, 4, 1, {90, 132, 227 * 1024}};
    kbcu_plan p;
    if (kbcu_plan_case(&j, &p, msg) != KB_OK) {
        CHECK(0, "%s plans: %s", what, msg);
        return 1;
    }
    const kbcu_launch *l = &p.launch[0];
    model s = {M, N, K, mode, kbcu_def_int(v, "WARPS", 0), kbcu_def_int(v, "RPW", 0), kbcu_def_int(v, "NB", 0),
               kbcu_def_int(v, "LOADS", 0), ae, be, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, 0, fault};
    CHECK(p.nlaunch == 1 && !strcmp(l->kernel, "gemm_fp8_gemv_v4") && l->nargs == 11 && l->smem == 0 &&
              l->block[0] == 32 * s.warps && l->args[5].i == M && l->args[6].i == N && l->args[7].i == K &&
              l->args[8].i == mode && l->args[10].i == (ae | be << 1) && s.rpw >= 1 && s.rpw <= 2 && s.nb >= 1 &&
              s.nb <= 16 && s.loads >= 1,
          "%s: the launch", what);
    uint8_t *w = malloc((size_t)M * K), *x = malloc((size_t)N * K);
    for (int64_t i = 0; i < (int64_t)M * K; i++) w[i] = code(ae);
    for (int64_t i = 0; i < (int64_t)N * K; i++) x[i] = code(be);
    s.nsa = kb_scale_count((kb_scale_mode)mode, M, K);
    s.nsb = kb_scale_count(kb_scale_mode_for_x((kb_scale_mode)mode), N, K);
    float *sa = malloc((size_t)s.nsa * sizeof(float)), *sb = malloc((size_t)s.nsb * sizeof(float));
    for (int64_t i = 0; i < s.nsa; i++) sa[i] = 0.25f + (float)(rnd() % 1024) / 256.0f;
    for (int64_t i = 0; i < s.nsb; i++) sb[i] = 0.25f + (float)(rnd() % 1024) / 256.0f;
    s.w = w, s.x = x, s.sa = sa, s.sb = sb;
    s.out = malloc((size_t)N * M * sizeof(float));
    s.writes = calloc((size_t)N * M, sizeof(int));
    s.wreads = calloc((size_t)M * K, sizeof(int));
    for (int64_t i = 0; i < (int64_t)N * M; i++) s.out[i] = NAN;

    int problems = 0;
    for (int by = 0; by < l->grid[1]; by++) {
        memset(s.wreads, 0, (size_t)M * K * sizeof(int));
        for (int bx = 0; bx < l->grid[0]; bx++)
            for (int wi = 0; wi < s.warps; wi++) warp_run(&s, bx, by, wi);
        int64_t bad = 0;
        for (int64_t i = 0; i < (int64_t)M * K; i++) bad += s.wreads[i] != 1;
        problems += bad != 0;
        if (!fault) CHECK(bad == 0, "%s: token block %d: %lld W bytes not read exactly once", what, by, (long long)bad);
    }
    int64_t badw = 0;
    for (int64_t i = 0; i < (int64_t)N * M; i++) badw += s.writes[i] != 1;
    problems += (badw != 0) + (s.oob != 0);
    if (!fault) {
        CHECK(badw == 0, "%s: %lld outputs not written exactly once", what, (long long)badw);
        CHECK(s.oob == 0, "%s: %d reads outside a tensor", what, s.oob);
    }

    /* the op's tolerance model: (2 sqrt(K) u32 + 4 u32) sum|s a b| (f32 output) */
    double *ref = malloc((size_t)N * M * sizeof(double)), *mag = malloc((size_t)N * M * sizeof(double));
    ref_gemm_fp8_dims d = {M, N, K, c.a_type, c.b_type, (kb_scale_mode)mode};
    ref_gemm_fp8(&d, w, x, sa, sb, ref, mag);
    const double u32 = 0x1p-24;
    int64_t off = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < (int64_t)N * M; i++) {
        const double tol = u32 * fabs(ref[i]) + (2.0 * sqrt((double)K) * u32 + 4 * u32) * mag[i];
        const double r = fabs(s.out[i] - ref[i]) / (tol > 0 ? tol : 1e-300);
        if (!(r <= worst)) worst = r;
        off += !(r <= 1.0);
    }
    problems += off != 0;
    if (!fault) CHECK(off == 0, "%s: %lld outputs off the reference, worst err/tol %.3g", what, (long long)off, worst);
    else CHECK(problems > 0, "%s: caught", what);
    free(w), free(x), free(sa), free(sb), free(s.out), free(s.writes), free(s.wreads), free(ref), free(mag);
    kbcu_plan_free(&p);
    return problems;
}

int main(void) {
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    const char *vars[] = {"gemv_v4_b256_n1", "gemv_v4_b256_r2_n1", "gemv_v4_b256_n2", "gemv_v4_b256_n4",
                          "gemv_v4_b256_n8"};
    /* K: one piece, one 128-block, a partial block (144), the decode widths (3584: 7
     * pieces a lane, one round; 4624: 289 pieces, a partial last round; 18944: 37 pieces,
     * 5 rounds); M not a multiple of a block's rows; M > 128 for blk128's row blocks */
    const int shapes[][3] = {{1, 1, 16}, {37, 3, 128}, {19, 8, 144}, {45, 5, 3584}, {300, 2, 4624}, {9, 7, 18944}};
    for (size_t vi = 0; vi < sizeof vars / sizeof *vars; vi++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (int mode = 0; mode < 4; mode++)
                run_case(vars[vi], shapes[si][0], shapes[si][1], shapes[si][2], mode, (int)((si + mode) & 1),
                         (int)((si + mode) >> 1 & 1), FAULT_NONE);
    /* tuned points: a round of 3 pieces, one warp a block, 2 rows x 4 tokens (N = 7) */
    run_case("gemv_v4_b256_n8[LOADS=3]", 130, 6, 4624, 3, 0, 1, FAULT_NONE);
    run_case("gemv_v4_b256_r2_n1[WARPS=1]", 7, 2, 1040, 2, 1, 0, FAULT_NONE);
    run_case("gemv_v4_b256_r2_n1[NB=4]", 301, 7, 3584, 3, 0, 0, FAULT_NONE);
    run_case("gemv_v4_b256_n4[LOADS=16,RPW=2]", 33, 4, 18944, 2, 0, 0, FAULT_NONE);
    /* the model must catch wrong indexing */
    run_case("gemv_v4_b256_n2", 45, 2, 3584, 2, 0, 0, FAULT_SCALE_BLOCK);
    run_case("gemv_v4_b256_n2", 45, 2, 3584, 0, 0, 0, FAULT_LANE_STRIDE);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
