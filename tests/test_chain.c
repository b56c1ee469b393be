/* test_chain.c - three ops chained on device buffers with no host copy between them:
 *   rmsnorm(x, w) -> y;  quant_fp8(y) -> q, s (per token);  gemm_fp8(W, q, sa, s) -> D
 * on every device here: cpu; vulkan when a Vulkan device exists; cuda with the GEMM
 * on cuBLASLt when a GPU exists (two fronts of one device, one enqueue). y, q and s
 * live in views of ONE allocation (offsets, not separate buffers). The three states
 * are enqueued in one call and waited for once; then every intermediate is
 * downloaded and judged:
 *   - each stage against its op's fp64 reference on the previous stage's downloaded
 *     output, with the op's own tolerance (chaining corrupted nothing);
 *   - D against the references chained in fp64 (y exact, quantized from f32(y)):
 *     cosine and rel_l2 printed, cosine >= 0.999 required (FP8's rounding of X is the
 *     only difference left; its relative error is at most 2^-4 per element);
 *   - the chain timed as one device-timed sequence (run_timed over the 3 states).
 * A device without the backend built or present prints SKIP for it; the test fails
 * when no device at all ran the chain. Prints "N passed, M failed". */
#include "bench/harness.h"
#include "bench/metrics.h"
#include "bench/op.h"
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kb_check.h"

enum { N = 4, K = 512, M = 256 };

typedef struct {
    kb_case c;
    kb_case_data d; /* host tensors: generated inputs, downloaded outputs, references */
} stage;

static void make_case(kb_case *c, kb_op_id op) {
    kb_case_init(c, op);
    c->n = N;
    c->k = K;
    c->m = M;
    c->seed = 7;
    c->scale_mode = KB_SCALE_OUTER; /* per-token X scales, per-row W scales */
    c->out_type = op == KB_OP_gemm_fp8 ? KB_F32 : KB_E4M3;
    kb_case_label(c);
}

static uint64_t align256(uint64_t v) { return (v + 255) / 256 * 256; }

/* The first non-test variant of `b` that prepares; its accumulation unit roundoff
 * (cuBLASLt's FP8 accumulator is narrower than fp32) goes to *acc_u for the judge. */
static int prepare_any(const kb_backend *b, const kb_case *c, const kb_arg *args, void **state, double *acc_u,
                       char *msg) {
    kb_variant v[64];
    kb_options opt = {.algo = "heuristic", .fast_accum = 0, .vk_device = -1};
    int nv = b->variants(c, &opt, v, 64, msg);
    int rc = KB_NOT_SUPPORTED;
    for (int i = 0; i < nv; i++) {
        if (v[i].test_only) continue;
        rc = b->prepare(c, &v[i], args, kb_ops[c->op]->n_in, kb_ops[c->op]->n_out, state, msg);
        if (rc == KB_OK) {
            *acc_u = v[i].acc_unit_roundoff;
            return KB_OK;
        }
    }
    if (nv <= 0 && !msg[0]) snprintf(msg, KB_MSG, "no variants");
    return rc;
}

static int judge(const char *what, stage *s, double acc_u) {
    kb_row row;
    memset(&row, 0, sizeof row);
    kb_judge(&s->d, acc_u, &row);
    CHECK(row.verdict == KB_PASS, "%s: %s (err/tol %.3f)", what, row.reason, row.m.worst);
    return row.verdict == KB_PASS;
}

/* Run the chain on `norm_b` (rmsnorm, quant) and `gemm_b` (the GEMM): same device. */
static void chain(const kb_backend *norm_b, const kb_backend *gemm_b) {
    char msg[KB_MSG] = "";
    stage st[3];
    make_case(&st[0].c, KB_OP_rmsnorm);
    make_case(&st[1].c, KB_OP_quant_fp8);
    make_case(&st[2].c, KB_OP_gemm_fp8);
    for (int i = 0; i < 3; i++) {
        if (kb_case_data_make(&st[i].d, &st[i].c, i != 1, msg) != KB_OK) {
            CHECK(0, "case data: %s", msg);
            return;
        }
    }
    kb_tensor *x = &st[0].d.t[0], *w = &st[0].d.t[1], *y = &st[0].d.t[2];
    kb_tensor *q = &st[1].d.t[1], *s = &st[1].d.t[2];
    kb_tensor *W = &st[2].d.t[0], *sa = &st[2].d.t[2], *D = &st[2].d.t[4];

    /* one allocation holds y, q and s; x, w, W, sa and D have their own */
    const uint64_t off_y = 0, off_q = align256(y->bytes), off_s = off_q + align256(q->bytes);
    const uint64_t act_bytes = off_s + align256(s->bytes);
    kb_buf act = 0, bx = 0, bw = 0, bW = 0, bsa = 0, bD = 0;
    void *states[3] = {NULL, NULL, NULL};
    int ok = norm_b->alloc(act_bytes, &act, msg) == KB_OK && norm_b->alloc(x->bytes, &bx, msg) == KB_OK &&
             norm_b->alloc(w->bytes, &bw, msg) == KB_OK && norm_b->alloc(W->bytes, &bW, msg) == KB_OK &&
             norm_b->alloc(sa->bytes, &bsa, msg) == KB_OK && norm_b->alloc(D->bytes, &bD, msg) == KB_OK;
    CHECK(ok, "%s: alloc: %s", norm_b->name, msg);
    if (!ok) goto out;
    const kb_view vx = {bx, 0, x->bytes}, vw = {bw, 0, w->bytes}, vy = {act, off_y, y->bytes},
                  vq = {act, off_q, q->bytes}, vs = {act, off_s, s->bytes}, vW = {bW, 0, W->bytes},
                  vsa = {bsa, 0, sa->bytes}, vD = {bD, 0, D->bytes};
    ok = norm_b->upload(vx, x->host, msg) == KB_OK && norm_b->upload(vw, w->host, msg) == KB_OK &&
         norm_b->upload(vW, W->host, msg) == KB_OK && norm_b->upload(vsa, sa->host, msg) == KB_OK;
    CHECK(ok, "%s: upload: %s", norm_b->name, msg);
    if (!ok) goto out;
    /* poison every output, so an op that writes nothing (or the wrong view) shows */
    kb_tensor *outs[4] = {y, q, s, D};
    const kb_view vouts[4] = {vy, vq, vs, vD};
    for (int i = 0; i < 4; i++) {
        kb_poison(outs[i]->type, outs[i]->host, outs[i]->count);
        ok = ok && norm_b->upload(vouts[i], outs[i]->host, msg) == KB_OK;
    }
    const kb_arg a_norm[3] = {{x->type, x->count, vx}, {w->type, w->count, vw}, {y->type, y->count, vy}};
    const kb_arg a_quant[3] = {{y->type, y->count, vy}, {q->type, q->count, vq}, {s->type, s->count, vs}};
    const kb_arg a_gemm[5] = {{W->type, W->count, vW}, {q->type, q->count, vq}, {sa->type, sa->count, vsa},
                              {s->type, s->count, vs}, {D->type, D->count, vD}};
    double acc_u[3] = {0, 0, 0};
    ok = ok && prepare_any(norm_b, &st[0].c, a_norm, &states[0], &acc_u[0], msg) == KB_OK &&
         prepare_any(norm_b, &st[1].c, a_quant, &states[1], &acc_u[1], msg) == KB_OK &&
         prepare_any(gemm_b, &st[2].c, a_gemm, &states[2], &acc_u[2], msg) == KB_OK;
    CHECK(ok, "%s+%s: prepare: %s", norm_b->name, gemm_b->name, msg);
    if (!ok) goto out;
    ok = norm_b->enqueue(states, 3, msg) == KB_OK && norm_b->wait(msg) == KB_OK;
    CHECK(ok, "%s: one enqueue of the 3 states, one wait: %s", norm_b->name, msg);
    if (!ok) goto out;
    for (int i = 0; i < 4; i++) ok = ok && norm_b->download(outs[i]->host, vouts[i], msg) == KB_OK;
    CHECK(ok, "%s: download: %s", norm_b->name, msg);
    if (!ok) goto out;

    /* each stage against its reference on the previous stage's own output */
    judge("rmsnorm in the chain", &st[0], acc_u[0]);
    memcpy(st[1].d.t[0].host, y->host, y->bytes);
    kb_ops[KB_OP_quant_fp8]->reference(&st[1].c, st[1].d.t, st[1].d.ref);
    judge("quant_fp8 on the chain's y", &st[1], acc_u[1]);
    memcpy(st[2].d.t[1].host, q->host, q->bytes);
    memcpy(st[2].d.t[3].host, s->host, s->bytes);
    kb_ops[KB_OP_gemm_fp8]->reference(&st[2].c, st[2].d.t, st[2].d.ref);
    judge("gemm_fp8 on the chain's q and s", &st[2], acc_u[2]);

    /* the end result against the chain in fp64 */
    {
        double *xd = malloc(sizeof(double) * N * K), *wd = malloc(sizeof(double) * K);
        double *yd = malloc(sizeof(double) * N * K), *dd = malloc(sizeof(double) * N * M);
        float *yf = malloc(sizeof(float) * N * K), *sref = malloc(sizeof(float) * N);
        uint8_t *qref = malloc(N * K);
        kb_decode(KB_F32, x->host, xd, N * K);
        kb_decode(KB_F32, w->host, wd, K);
        ref_rmsnorm(N, K, st[0].c.eps, xd, wd, yd, NULL);
        kb_round_to(KB_F32, yd, yf, N * K);
        ref_quant_fp8_args qa = {N, K, KB_F32, KB_E4M3, KB_SCALE_OUTER, 0};
        ref_quant_fp8(&qa, yf, sref, qref, NULL);
        ref_gemm_fp8_dims gd = {M, N, K, KB_E4M3, KB_E4M3, KB_SCALE_OUTER};
        ref_gemm_fp8(&gd, W->host, qref, sa->host, sref, dd, NULL);
        kb_metrics m;
        kb_compute_metrics(D->type, D->host, dd, NULL, N * M, NULL, &m);
        printf("  %s+%s: D vs the fp64 chain: cosine %.6f rel_l2 %.3g\n", norm_b->name, gemm_b->name, m.cosine,
               m.rel_l2);
        CHECK(m.n_nan == 0 && m.n_unwritten == 0 && m.cosine >= 0.999, "end result vs fp64 chain: cosine %.6f",
              m.cosine);
        free(xd);
        free(wd);
        free(yd);
        free(dd);
        free(yf);
        free(sref);
        free(qref);
    }

    /* the chain as one device-timed sequence */
    double sec = -1;
    ok = norm_b->run_timed(states, 3, 0, &sec, msg) == KB_OK;
    CHECK(ok && sec > 0, "%s: run_timed over the chain: %s (%.3g s)", norm_b->name, msg, sec);
    if (ok) printf("  %s+%s: the chain took %.2f us (device timer)\n", norm_b->name, gemm_b->name, sec * 1e6);

out:
    for (int i = 0; i < 3; i++)
        if (states[i]) (i == 2 ? gemm_b : norm_b)->release(states[i]);
    kb_buf bufs[6] = {act, bx, bw, bW, bsa, bD};
    for (int i = 0; i < 6; i++)
        if (bufs[i]) norm_b->free(bufs[i]);
    for (int i = 0; i < 3; i++) kb_case_data_free(&st[i].d);
}

int main(void) {
    kb_options opt = {.algo = "heuristic", .fast_accum = 0, .vk_device = -1};
    const char *pairs[][2] = {{"cpu", "cpu"}, {"vulkan", "vulkan"}, {"cuda", "cublaslt"}};
    int ran = 0;
    for (int p = 0; p < 3; p++) {
        const kb_backend *a = kb_backend_find(pairs[p][0]), *b = kb_backend_find(pairs[p][1]);
        char why[KB_MSG] = "";
        if (!a || !b || a->probe(&opt, why) != KB_OK || b->probe(&opt, why) != KB_OK) {
            printf("SKIP %s+%s: %s\n", pairs[p][0], pairs[p][1], why);
            continue;
        }
        CHECK(!strcmp(a->device()->key, b->device()->key), "%s and %s share one device (%s vs %s)", a->name, b->name,
              a->device()->key, b->device()->key);
        printf("chain on %s+%s (%s)\n", a->name, b->name, a->device()->name);
        chain(a, b);
        ran++;
    }
    CHECK(ran > 0, "the chain ran on at least one device");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
