/* test_vulkan_selftest.c - drives the vulkan backend through kb_backend alone, with
 * hand-made inputs and tiny inline fp64 references (independent of ref/), on whatever Vulkan
 * device probe() picks (lavapipe in CI). Checks:
 *   - the device facts (key, bandwidth, cache, memory, launch floor) and the device list;
 *   - every op and variant at small odd sizes, each against its inline reference, and each
 *     op's test_short_write (exactly the last element of output 0 left unwritten);
 *   - views: tensors at a non-zero offset of their buffers, an unaligned offset refused with
 *     the alignment named, out-of-bounds views refused;
 *   - chaining: rmsnorm -> add -> quant_fp8 (three states, five dispatches, in views of one
 *     buffer) in ONE enqueue, the barriers between the dependent dispatches counted, then
 *     recorded once and replayed (enqueue and run_timed) with the same results;
 *   - gemm_fp8's fp8 decodes exact for every code of both operands (NaN, inf included), and
 *     gemv_sg's check that the device runs the subgroup size its plan assumed;
 *   - timestamps that scale with the work, the cache flush, the CPU-device GFLOP limit, the
 *     missing-feature path (KB_VK_DISABLE_FEATURES, subgroup operations included), reset().
 * Exit 0 all passed, 1 a check failed, 77 no Vulkan device (CTest: skipped, never passed). */
#include "bench/kbench.h"
#include "kernels/spirv/backend_vulkan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kb_backend *B = &kb_backend_vulkan;
static kb_options OPT = {.algo = "heuristic", .vk_device = -1};
static int n_pass, n_fail;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) n_pass++;
    else n_fail++;
}

#define U32 (1.0 / 16777216.0) /* 2^-24 */

/* ---- deterministic inputs ------------------------------------------------------------ */
static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t next_u32(void) { /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() >> 8) / 16777216.0f; }

/* ---- tiny codecs (exact decodes; ggml's block layouts, OCP FP8, IEEE binary16) ---------- */
static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0) return s * ldexp(m, -24);
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * ldexp(1024 + m, e - 25);
}
static double bf16_to_double(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double e4m3_to_double(uint8_t v) {
    int e = (v >> 3) & 15, m = v & 7;
    double s = (v & 0x80) ? -1.0 : 1.0;
    if (e == 15 && m == 7) return NAN;
    if (e == 0) return s * ldexp(m, -9);
    return s * ldexp(8 + m, e - 10);
}
static double e5m2_to_double(uint8_t v) {
    int e = (v >> 2) & 31, m = v & 3;
    double s = (v & 0x80) ? -1.0 : 1.0;
    if (e == 31) return m ? NAN : s * INFINITY;
    if (e == 0) return s * ldexp(m, -16);
    return s * ldexp(4 + m, e - 17);
}
static double fp8(kb_dtype t, uint8_t v) { return t == KB_E4M3 ? e4m3_to_double(v) : e5m2_to_double(v); }
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static void q4k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}
/* ggml dequantize_row_q4_K for one 144-byte block, in float as ggml does. */
static void q4k_block(const uint8_t *b, float *y) {
    uint16_t dh, mh;
    memcpy(&dh, b, 2);
    memcpy(&mh, b + 2, 2);
    float d = (float)half_to_double(dh), dmin = (float)half_to_double(mh);
    const uint8_t *q = b + 16;
    for (int c = 0; c < 4; c++) {
        int sc, m;
        q4k_scale_min(2 * c, b + 4, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        q4k_scale_min(2 * c + 1, b + 4, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) y[64 * c + l] = d1 * (float)(q[32 * c + l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) y[64 * c + 32 + l] = d2 * (float)(q[32 * c + l] >> 4) - m2;
    }
}
/* ggml dequantize_row_q6_K for one 210-byte block. */
static void q6k_block(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    uint16_t dh;
    memcpy(&dh, b + 208, 2);
    float d = (float)half_to_double(dh);
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}
static void random_q4k(uint8_t *b, int64_t nblocks) {
    for (int64_t i = 0; i < nblocks * 144; i++) b[i] = (uint8_t)next_u32();
    for (int64_t i = 0; i < nblocks; i++) {
        uint16_t d = (uint16_t)(0x1800 + (next_u32() & 0x3ff)), m = (uint16_t)(0x1400 + (next_u32() & 0x3ff));
        memcpy(b + 144 * i, &d, 2);
        memcpy(b + 144 * i + 2, &m, 2);
    }
}
static void random_q6k(uint8_t *b, int64_t nblocks) {
    for (int64_t i = 0; i < nblocks * 210; i++) b[i] = (uint8_t)next_u32();
    for (int64_t i = 0; i < nblocks; i++) {
        uint16_t d = (uint16_t)(0x1000 + (next_u32() & 0x3ff));
        memcpy(b + 210 * i + 208, &d, 2);
    }
}
static void dequant_blocks(kb_dtype t, const uint8_t *b, int64_t nblocks, float *y) {
    for (int64_t i = 0; i < nblocks; i++) {
        if (t == KB_Q4K) q4k_block(b + 144 * i, y + 256 * i);
        else q6k_block(b + 210 * i, y + 256 * i);
    }
}
/* A finite fp8 byte (no NaN / inf), magnitudes spread over the range. */
static uint8_t random_fp8(kb_dtype t) {
    for (;;) {
        uint8_t v = (uint8_t)next_u32();
        double x = fp8(t, v);
        if (isfinite(x) && fabs(x) < (t == KB_E4M3 ? 64.0 : 256.0)) return v;
    }
}
/* A float value as 16-bit bits of type t (f16: round to nearest by search-free bit
 * arithmetic is not needed: any exact f16 is fine, so the value is built from bits). */
static uint16_t random_16(kb_dtype t, float lo, float hi) {
    float v = uniform(lo, hi);
    if (t == KB_BF16) return (uint16_t)(f32_bits(v) >> 16); /* truncated: an exact bf16 */
    /* f16: the nearest f16 below |v| in magnitude, by its exponent and top 10 bits */
    uint32_t u = f32_bits(v), sign = (u >> 16) & 0x8000u;
    int e = (int)((u >> 23) & 255) - 127 + 15;
    if (e <= 0) return (uint16_t)sign; /* a zero: tiny values are not what these tests probe */
    if (e >= 31) return (uint16_t)(sign | 0x7bffu);
    return (uint16_t)(sign | ((uint32_t)e << 10) | ((u >> 13) & 0x3ffu));
}
static double value_16(kb_dtype t, uint16_t h) { return t == KB_BF16 ? bf16_to_double(h) : half_to_double(h); }

/* The fp8 code nearest to v (ties to the even code), saturating at the largest finite
 * value: by exhaustive search over the codes, independent of any bit trick. */
static uint8_t fp8_nearest(kb_dtype t, float v) {
    const uint8_t top = t == KB_E4M3 ? 0x7e : 0x7b;
    const uint8_t sign = signbit(v) ? 0x80 : 0;
    const double a = fabs((double)v);
    if (a >= fp8(t, top)) return sign | top;
    uint8_t best = 0;
    for (int c = 1; c <= top; c++) {
        const double d = fabs(fp8(t, (uint8_t)c) - a), db = fabs(fp8(t, best) - a);
        if (d < db || (d == db && (c & 1) == 0)) best = (uint8_t)c;
    }
    return sign | best;
}
static int fp8_subnormal(kb_dtype t, uint8_t code) {
    const int mbits = t == KB_E4M3 ? 3 : 2;
    return ((code & 0x7f) >> mbits) == 0 && (code & ((1 << mbits) - 1)) != 0;
}

/* ---- one case on the device ------------------------------------------------------------- */
typedef struct {
    int nin, nout;
    kb_dtype type[KB_MAX_ARGS];
    int64_t count[KB_MAX_ARGS];
    const void *in[KB_MAX_ARGS]; /* host inputs */
    void *out[KB_MAX_ARGS];      /* host outputs, [nin + o] */
} io;

typedef struct {
    kb_buf buf[KB_MAX_ARGS];
    kb_arg args[KB_MAX_ARGS];
    void *state;
} dev_case;

#define POISON 0xFF /* f32 0xFFFFFFFF, f16/bf16 0xFFFF and fp8 0xFF are all NaN */

static uint64_t tensor_bytes(const io *x, int i) { return kb_dtype_bytes(x->type[i], x->count[i]); }

static void dev_case_free(dev_case *dc, int n) {
    if (dc->state) B->release(dc->state);
    for (int i = 0; i < n; i++)
        if (dc->buf[i]) B->free(dc->buf[i]);
    memset(dc, 0, sizeof *dc);
}

/* Each tensor in its own buffer at byte `offset`; inputs uploaded, outputs poisoned,
 * prepared. */
static int dev_case_make(const kb_case *c, const char *variant, const io *x, uint64_t offset, dev_case *dc, char *msg) {
    memset(dc, 0, sizeof *dc);
    const int n = x->nin + x->nout;
    int rc = KB_OK;
    for (int i = 0; i < n && rc == KB_OK; i++) {
        const uint64_t bytes = tensor_bytes(x, i);
        rc = B->alloc(offset + bytes, &dc->buf[i], msg);
        if (rc != KB_OK) break;
        dc->args[i] = (kb_arg){x->type[i], x->count[i], {dc->buf[i], offset, bytes}};
        if (i < x->nin) {
            rc = B->upload(dc->args[i].view, x->in[i], msg);
        } else {
            memset(x->out[i], POISON, bytes);
            rc = B->upload(dc->args[i].view, x->out[i], msg);
        }
    }
    kb_variant v;
    kb_variant_init(&v, variant);
    if (rc == KB_OK) rc = B->prepare(c, &v, dc->args, x->nin, x->nout, &dc->state, msg);
    if (rc != KB_OK) dev_case_free(dc, n);
    return rc;
}

static int dev_case_download(dev_case *dc, const io *x, char *msg) {
    int rc = KB_OK;
    for (int o = x->nin; o < x->nin + x->nout && rc == KB_OK; o++) rc = B->download(x->out[o], dc->args[o].view, msg);
    return rc;
}

/* Prepare, run (timed when seconds != NULL, else enqueue + wait), download, free. */
static int run_case(const kb_case *c, const char *variant, const io *x, uint64_t offset, double *seconds, char *msg) {
    dev_case dc;
    int rc = dev_case_make(c, variant, x, offset, &dc, msg);
    if (rc != KB_OK) return rc;
    if (seconds) {
        rc = B->run_timed(&dc.state, 1, 0, seconds, msg);
    } else {
        rc = B->enqueue(&dc.state, 1, msg);
        if (rc == KB_OK) rc = B->wait(msg);
    }
    if (rc == KB_OK) rc = dev_case_download(&dc, x, msg);
    dev_case_free(&dc, x->nin + x->nout);
    return rc;
}

/* Elements of a float output (f32 / f16 / bf16) outside |out - ref| <= bound (NaN never
 * within); *worst: the largest error / bound. `skip_last`: the last element is not judged. */
static int64_t count_bad(kb_dtype t, const void *out, const double *ref, const double *bound, int64_t n, double *worst) {
    int64_t bad = 0;
    *worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double o = t == KB_F32 ? ((const float *)out)[i]
                   : t == KB_F16 ? half_to_double(((const uint16_t *)out)[i])
                                 : bf16_to_double(((const uint16_t *)out)[i]);
        double err = fabs(o - ref[i]);
        if (!(err <= bound[i]) && !(isinf(ref[i]) && o == ref[i])) {
            bad++;
            double r = bound[i] > 0 ? err / bound[i] : INFINITY;
            if (!(r <= *worst)) *worst = isnan(r) ? INFINITY : r;
        } else if (bound[i] > 0 && err / bound[i] > *worst) {
            *worst = err / bound[i];
        }
    }
    return bad;
}

/* The output 0 of a float op against ref within bound: `variant` must pass, then (when
 * short_write) test_short_write must leave exactly the last element unwritten. offset: the
 * views' byte offset. */
static void check_float_op(const char *what, const kb_case *c, const char *variant, io *x, const double *ref,
                           const double *bound, int short_write, uint64_t offset) {
    char msg[KB_MSG] = "";
    const int o = x->nin;
    const int64_t n = x->count[o];
    double secs = -1, worst;
    int rc = run_case(c, variant, x, offset, &secs, msg);
    if (rc != KB_OK) {
        check(0, "%s [%s]: status %d: %s", what, variant, rc, msg);
    } else {
        int64_t bad = count_bad(x->type[o], x->out[o], ref, bound, n, &worst);
        check(bad == 0, "%s [%s%s]: %lld/%lld elements outside tolerance (worst %.3g x bound), %.1f us", what, variant,
              offset ? ", views at an offset" : "", (long long)bad, (long long)n, worst, secs * 1e6);
        check(secs > 0 && secs < 30, "%s [%s]: timestamp time %.3g s is positive", what, variant, secs);
    }
    if (!short_write) return;
    rc = run_case(c, "test_short_write", x, offset, NULL, msg);
    if (rc != KB_OK) {
        check(0, "%s [test_short_write]: status %d: %s", what, rc, msg);
        return;
    }
    const uint64_t eb = kb_dtype_bytes(x->type[o], 1);
    const unsigned char *last = (const unsigned char *)x->out[o] + (n - 1) * (int64_t)eb;
    int poisoned = 1;
    for (uint64_t b = 0; b < eb; b++) poisoned &= last[b] == POISON;
    int64_t bad = count_bad(x->type[o], x->out[o], ref, bound, n - 1, &worst);
    check(bad == 0 && poisoned, "%s [test_short_write]: all but the last element right (%lld bad), the last unwritten",
          what, (long long)bad);
}

static double *dalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* ---- the ops ------------------------------------------------------------------------------- */
static void test_dequant(kb_dtype t, int64_t m, int64_t k, uint64_t offset) {
    kb_case c = {.op = KB_OP_dequant_q4k, .m = m, .k = k, .a_type = t};
    const int64_t nb = m * k / 256;
    uint8_t *blocks = malloc((size_t)kb_dtype_bytes(t, m * k));
    float *y = malloc(sizeof(float) * (size_t)(m * k)), *out = malloc(sizeof(float) * (size_t)(m * k));
    double *ref = dalloc(m * k), *bound = dalloc(m * k);
    if (t == KB_Q4K) random_q4k(blocks, nb);
    else random_q6k(blocks, nb);
    dequant_blocks(t, blocks, nb, y);
    for (int64_t i = 0; i < m * k; i++) ref[i] = y[i];
    io x = {.nin = 1, .nout = 1, .type = {t, KB_F32}, .count = {m * k, m * k}, .in = {blocks}, .out = {NULL, out}};
    char what[96];
    snprintf(what, sizeof what, "dequant_q4k %s %lldx%lld bit-exact", kb_dtype_name(t), (long long)m, (long long)k);
    check_float_op(what, &c, "block256", &x, ref, bound, offset == 0, offset);
    free(blocks);
    free(y);
    free(out);
    free(ref);
    free(bound);
}

static void test_rmsnorm(void) {
    kb_case c = {.op = KB_OP_rmsnorm, .n = 3, .k = 1000, .eps = 1e-6};
    int64_t n = c.n * c.k;
    float *xv = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)c.k), *out = malloc(4 * (size_t)n);
    double *ref = dalloc(n), *bound = dalloc(n);
    for (int64_t i = 0; i < n; i++) xv[i] = uniform(-2, 2) * (i % 97 == 0 ? 30.0f : 1.0f);
    for (int64_t i = 0; i < c.k; i++) w[i] = uniform(0.5f, 1.5f);
    for (int64_t r = 0; r < c.n; r++) {
        double s = 0;
        for (int64_t i = 0; i < c.k; i++) s += (double)xv[r * c.k + i] * xv[r * c.k + i];
        double scale = 1.0 / sqrt(s / (double)c.k + c.eps);
        for (int64_t i = 0; i < c.k; i++) ref[r * c.k + i] = xv[r * c.k + i] * scale * w[i];
    }
    for (int64_t i = 0; i < n; i++) bound[i] = 1e-6 + 1e-5 * fabs(ref[i]);
    io x = {.nin = 2, .nout = 1, .type = {KB_F32, KB_F32, KB_F32}, .count = {n, c.k, n}, .in = {xv, w}, .out = {NULL, NULL, out}};
    check_float_op("rmsnorm 3x1000", &c, "row256", &x, ref, bound, 1, 0);
    check_float_op("rmsnorm 3x1000", &c, "row256", &x, ref, bound, 0, 256);
    free(xv);
    free(w);
    free(out);
    free(ref);
    free(bound);
}

/* FP8 GEMM: every scale mode, both fp8 types, f32/f16/bf16 out, both variants. */
static void gemm_case(int64_t m, int64_t n, int64_t k, kb_dtype at, kb_dtype bt, kb_dtype ot, kb_scale_mode sm,
                      const char *variant, int short_write) {
    kb_case c = {.op = KB_OP_gemm_fp8, .m = m, .n = n, .k = k, .a_type = at, .b_type = bt, .out_type = ot, .scale_mode = sm};
    int64_t kb = (k + 127) / 128, mb = (m + 127) / 128;
    int64_t na = sm == KB_SCALE_TENSOR ? 1 : sm == KB_SCALE_OUTER ? m : sm == KB_SCALE_VEC128 ? m * kb : mb * kb;
    int64_t nbs = sm == KB_SCALE_TENSOR ? 1 : sm == KB_SCALE_OUTER ? n : n * kb;
    uint8_t *w = malloc((size_t)(m * k)), *xq = malloc((size_t)(n * k));
    float *sa = malloc(sizeof(float) * (size_t)na), *sb = malloc(sizeof(float) * (size_t)nbs);
    for (int64_t i = 0; i < m * k; i++) w[i] = random_fp8(at);
    for (int64_t i = 0; i < n * k; i++) xq[i] = random_fp8(bt);
    for (int64_t i = 0; i < na; i++) sa[i] = uniform(0.25f, 2.0f);
    for (int64_t i = 0; i < nbs; i++) sb[i] = uniform(0.25f, 2.0f);
    double *ref = dalloc(m * n), *bound = dalloc(m * n);
    for (int64_t ni = 0; ni < n; ni++)
        for (int64_t mi = 0; mi < m; mi++) {
            double acc = 0, am = 0;
            for (int64_t ki = 0; ki < k; ki++) {
                int64_t b = ki / 128;
                double s;
                switch (sm) {
                case KB_SCALE_TENSOR: s = (double)sa[0] * sb[0]; break;
                case KB_SCALE_OUTER: s = (double)sa[mi] * sb[ni]; break;
                case KB_SCALE_VEC128: s = (double)sa[mi * kb + b] * sb[ni * kb + b]; break;
                default: s = (double)sa[(mi / 128) * kb + b] * sb[ni * kb + b]; break;
                }
                double t = fp8(at, w[mi * k + ki]) * fp8(bt, xq[ni * k + ki]) * s;
                acc += t;
                am += fabs(t);
            }
            ref[ni * m + mi] = acc;
            /* fp32 accumulation: error <= k * 2^-24 * sum|terms| (a loose Higham bound, with
             * the per-block scale products); then the output type's rounding, half an ulp;
             * f16 overflows to inf (count_bad takes an inf equal to an inf reference) */
            const double acc_err = (double)(k + 4) * U32 * am;
            const double unit = ldexp(1, ot == KB_F32 ? -24 : ot == KB_F16 ? -11 : -8);
            bound[ni * m + mi] = acc_err * (1 + unit) + unit * fabs(acc) + (ot == KB_F16 ? ldexp(1, -25) : 0);
            if (ot == KB_F16 && fabs(acc) > 65520 + acc_err) ref[ni * m + mi] = acc > 0 ? INFINITY : -INFINITY;
        }
    void *out = malloc((size_t)kb_dtype_bytes(ot, m * n));
    io x = {.nin = 4,
            .nout = 1,
            .type = {at, bt, KB_F32, KB_F32, ot},
            .count = {m * k, n * k, na, nbs, m * n},
            .in = {w, xq, sa, sb},
            .out = {NULL, NULL, NULL, NULL, out}};
    char what[160];
    snprintf(what, sizeof what, "gemm_fp8 %lldx%lldx%lld %s*%s->%s %s", (long long)m, (long long)n, (long long)k,
             kb_dtype_name(at), kb_dtype_name(bt), kb_dtype_name(ot), kb_scale_mode_name(sm));
    check_float_op(what, &c, variant, &x, ref, bound, short_write, 0);
    free(out);
    free(w);
    free(xq);
    free(sa);
    free(sb);
    free(ref);
    free(bound);
}

/* f16 overflow: 448 * 448 * 128 = 25.7e6 > 65504 must be +inf in f16 and finite in bf16. */
static void gemm_overflow(const char *variant) {
    kb_case c = {.op = KB_OP_gemm_fp8, .m = 3, .n = 2, .k = 128, .a_type = KB_E4M3, .b_type = KB_E4M3,
                 .scale_mode = KB_SCALE_TENSOR};
    uint8_t w[3 * 128], xq[2 * 128];
    memset(w, 0x7E, sizeof w); /* e4m3 448 */
    memset(xq, 0x7E, sizeof xq);
    w[0] = 0xFE; /* -448: row 0 sums to (127 - 1) * 448^2 */
    float sa = 1, sb = 1;
    uint16_t out[6];
    io x = {.nin = 4,
            .nout = 1,
            .type = {KB_E4M3, KB_E4M3, KB_F32, KB_F32, KB_F16},
            .count = {3 * 128, 2 * 128, 1, 1, 6},
            .in = {w, xq, &sa, &sb},
            .out = {NULL, NULL, NULL, NULL, out}};
    char msg[KB_MSG] = "";
    c.out_type = KB_F16;
    int rc = run_case(&c, variant, &x, 0, NULL, msg);
    check(rc == KB_OK && out[0] == 0x7C00 && out[1] == 0x7C00 && out[4] == 0x7C00,
          "gemm_fp8 f16 overflow -> +inf [%s] (0x%04x 0x%04x) %s", variant, out[0], out[1], msg);
    c.out_type = KB_BF16;
    x.type[4] = KB_BF16;
    rc = run_case(&c, variant, &x, 0, NULL, msg);
    /* 128 * 200704 = 25690112 = 0x4BC40000 in f32 -> bf16 0x4BC4 exactly */
    check(rc == KB_OK && out[1] == 0x4BC4, "gemm_fp8 bf16 large value exact [%s] (0x%04x) %s", variant, out[1], msg);
}

/* Exact decodes of every code, both operands, on M = K = 256, N = 3, scales 1, f32 out: each
 * output is one product with 1.0 plus exact zeros, so it must equal the fp8 value bit for bit,
 * and NaN / inf codes must come out NaN / inf (also where they meet a zero weight: 0 x inf and
 * 0 x NaN are NaN).
 *   W side: W[m][m] = code m (every byte position of a 16-byte load carries codes), X = 1.0:
 *           D[n][m] = value of code m.
 *   X side: W the identity in 1.0; token 0: X[0][k] = code k, NaN and inf codes replaced by 0;
 *           token 1: a NaN code at k = 5 (every output of it NaN); token 2: the largest code
 *           at k = 9 (448, or e5m2 +inf: +inf at m = 9, NaN elsewhere). */
static void gemm_codes(const char *variant, kb_dtype at, kb_dtype bt, int w_side) {
    const uint8_t one_a = at == KB_E4M3 ? 0x38 : 0x3C, one_b = bt == KB_E4M3 ? 0x38 : 0x3C; /* 1.0 */
    const int64_t m = 256, n = 3, k = 256;
    uint8_t *w = calloc((size_t)(m * k), 1), *xq = calloc((size_t)(n * k), 1);
    if (w_side) {
        for (int64_t i = 0; i < m; i++) w[i * k + i] = (uint8_t)i;
        memset(xq, one_b, (size_t)(n * k));
    } else {
        for (int64_t i = 0; i < m; i++) w[i * k + i] = one_a;
        for (int64_t i = 0; i < k; i++) xq[i] = isfinite(fp8(bt, (uint8_t)i)) ? (uint8_t)i : 0;
        xq[k + 5] = 0x7F;
        xq[2 * k + 9] = bt == KB_E4M3 ? 0x7E : 0x7C;
    }
    float s1 = 1.0f, s2 = 1.0f;
    float *out = malloc(sizeof(float) * (size_t)(m * n));
    io x = {.nin = 4,
            .nout = 1,
            .type = {at, bt, KB_F32, KB_F32, KB_F32},
            .count = {m * k, n * k, 1, 1, m * n},
            .in = {w, xq, &s1, &s2},
            .out = {NULL, NULL, NULL, NULL, out}};
    kb_case c = {.op = KB_OP_gemm_fp8, .m = m, .n = n, .k = k, .a_type = at, .b_type = bt, .out_type = KB_F32,
                 .scale_mode = KB_SCALE_TENSOR};
    char msg[KB_MSG] = "";
    int rc = run_case(&c, variant, &x, 0, NULL, msg);
    int64_t bad = 0, nan = 0, inf = 0, first = -1;
    for (int64_t t = 0; rc == KB_OK && t < n; t++)
        for (int64_t i = 0; i < m; i++) {
            double want = 0; /* the IEEE double sum of the exact products */
            for (int64_t j = 0; j < k; j++) want += fp8(at, w[i * k + j]) * fp8(bt, xq[t * k + j]);
            const double got = out[t * m + i];
            const int ok = isnan(want) ? isnan(got) : got == want;
            nan += isnan(want) != 0;
            inf += isinf(want) != 0; /* glibc: -1 for -inf */
            if (!ok && first < 0) first = t * m + i;
            bad += !ok;
        }
    check(rc == KB_OK && bad == 0,
          "gemm_fp8 %s x %s, every code of %s [%s]: %lld/%lld outputs not exact (first: %lld; %lld NaN, %lld inf "
          "expected) %s",
          kb_dtype_name(at), kb_dtype_name(bt), w_side ? "W" : "X", variant, (long long)bad, (long long)(m * n),
          (long long)first, (long long)nan, (long long)inf, msg);
    free(w);
    free(xq);
    free(out);
}

/* gemv_sg sizes its workgroup by the subgroup size the device reports; told another one
 * (KB_VK_SUBGROUP_SIZE), the shader must notice and write NaN everywhere, not skip rows. */
static void gemm_subgroup_mismatch(void) {
    char msg[KB_MSG] = "", env[16];
    kb_case c = {.op = KB_OP_gemm_fp8, .m = 40, .n = 2, .k = 64, .a_type = KB_E4M3, .b_type = KB_E4M3,
                 .out_type = KB_F32, .scale_mode = KB_SCALE_TENSOR};
    uint8_t w[40 * 64], xq[2 * 64];
    memset(w, 0x38, sizeof w);
    memset(xq, 0x38, sizeof xq);
    float s1 = 1, s2 = 1, out[80];
    io x = {.nin = 4,
            .nout = 1,
            .type = {KB_E4M3, KB_E4M3, KB_F32, KB_F32, KB_F32},
            .count = {40 * 64, 2 * 64, 1, 1, 80},
            .in = {w, xq, &s1, &s2},
            .out = {NULL, NULL, NULL, NULL, out}};
    int rc = run_case(&c, "gemv_sg", &x, 0, NULL, msg);
    int exact = 0;
    for (int i = 0; i < 80 && rc == KB_OK; i++) exact += out[i] == 64.0f;
    check(rc == KB_OK && exact == 80, "gemm_fp8 [gemv_sg] 40x2x64 of ones: %d/80 outputs are 64 %s", exact, msg);
    /* the device's size: the smallest power of two that runs without NaN */
    uint32_t real = 0;
    for (uint32_t s = 1; s <= 128 && !real; s *= 2) {
        snprintf(env, sizeof env, "%u", s);
        setenv("KB_VK_SUBGROUP_SIZE", env, 1);
        rc = run_case(&c, "gemv_sg", &x, 0, NULL, msg);
        int nan = 0;
        for (int i = 0; i < 80 && rc == KB_OK; i++) nan += isnan(out[i]);
        if (rc == KB_OK && nan == 0) real = s; /* the device's own size runs right */
    }
    /* half and twice the device's size: every output NaN */
    int checked = 0;
    for (uint32_t s = real / 2; real && s <= 2 * real; s *= 4) {
        if (s == 0) continue;
        snprintf(env, sizeof env, "%u", s);
        setenv("KB_VK_SUBGROUP_SIZE", env, 1);
        rc = run_case(&c, "gemv_sg", &x, 0, NULL, msg);
        int nan = 0;
        for (int i = 0; i < 80 && rc == KB_OK; i++) nan += isnan(out[i]);
        check(rc == KB_OK && nan == 80, "gemm_fp8 [gemv_sg] planned for subgroups of %u on a device of %u: %d/80 NaN %s",
              s, real, nan, msg);
        checked++;
    }
    unsetenv("KB_VK_SUBGROUP_SIZE");
    check(real > 0 && checked == 2, "gemm_fp8 [gemv_sg] runs right only with the device's subgroup size (%u)", real);
}

static void test_gemm_fp8(void) {
    const kb_dtype outs[3] = {KB_F32, KB_F16, KB_BF16};
    for (int sm = 0; sm < KB_SCALE_COUNT; sm++)
        for (int o = 0; o < 3; o++) {
            gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, outs[o], (kb_scale_mode)sm, "gemv", 0);
            gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, outs[o], (kb_scale_mode)sm, "tiled64", 0);
        }
    /* gemv_sg, every scale mode and output type (n = 2: each pipeline is compiled by llvmpipe in
     * seconds, the smaller the faster): W rows on 16 bytes (k % 16 == 0: 16-byte loads), k % 16
     * == 12 (words), k % 4 != 0 (bytes); 200 rows for BLK128's second row block; e5m2 W and X */
    const int64_t sg_k[KB_SCALE_COUNT] = {384, 300, 131, 260};
    for (int sm = 0; sm < KB_SCALE_COUNT; sm++)
        for (int o = 0; o < 3; o++)
            gemm_case(sm == KB_SCALE_BLK128 ? 200 : 70, 2, sg_k[sm], o == 1 ? KB_E5M2 : KB_E4M3, o == 2 ? KB_E5M2 : KB_E4M3,
                      outs[o], (kb_scale_mode)sm, "gemv_sg", 0);
    /* 4 rows per subgroup from n = 3; K in several chunks (the next chunk's W loaded during
     * this one): n = 1 at k = 3000, n = 16 (X of 16 tokens in shared memory) at k = 1000 */
    gemm_case(45, 3, 200, KB_E4M3, KB_E4M3, KB_F32, KB_SCALE_OUTER, "gemv_sg", 0);
    gemm_case(45, 7, 200, KB_E4M3, KB_E5M2, KB_F16, KB_SCALE_VEC128, "gemv_sg", 0);
    gemm_case(37, 1, 3000, KB_E4M3, KB_E4M3, KB_F32, KB_SCALE_VEC128, "gemv_sg", 0);
    gemm_case(37, 16, 1000, KB_E5M2, KB_E5M2, KB_BF16, KB_SCALE_BLK128, "gemv_sg", 0);
    const kb_dtype fp8s[2] = {KB_E4M3, KB_E5M2};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int side = 0; side < 2; side++) {
                gemm_codes("gemv_sg", fp8s[a], fp8s[b], side);
                gemm_codes("gemv", fp8s[a], fp8s[b], side);
            }
    /* WDEC=1 (W through binary16 bits): every code of W, either format, exact; each scale mode,
     * both W formats, K in one chunk and in several */
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) gemm_codes("gemv_sg[WDEC=1]", fp8s[a], fp8s[b], 1);
    for (int sm = 0; sm < KB_SCALE_COUNT; sm++)
        gemm_case(sm == KB_SCALE_BLK128 ? 200 : 70, 2, sg_k[sm], sm & 1 ? KB_E5M2 : KB_E4M3, KB_E4M3, outs[sm % 3],
                  (kb_scale_mode)sm, "gemv_sg[WDEC=1]", 0);
    /* XDEC=1 (X's staging through binary16 bits): every code of X, with W through either decode */
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            gemm_codes("gemv_sg[WDEC=1,XDEC=1]", fp8s[a], fp8s[b], 0);
            gemm_codes("gemv_sg[WDEC=0,XDEC=1]", fp8s[a], fp8s[b], 0);
        }
    gemm_case(45, 7, 200, KB_E4M3, KB_E5M2, KB_F16, KB_SCALE_OUTER, "gemv_sg[XDEC=1]", 0);
    gemm_case(37, 16, 1000, KB_E5M2, KB_E4M3, KB_F32, KB_SCALE_VEC128, "gemv_sg[XDEC=1]", 0);
    gemm_case(37, 1, 3000, KB_E4M3, KB_E5M2, KB_F32, KB_SCALE_VEC128, "gemv_sg[WDEC=1]", 0);
    gemm_case(37, 16, 1000, KB_E5M2, KB_E4M3, KB_BF16, KB_SCALE_BLK128, "gemv_sg[WDEC=1]", 0);
    gemm_overflow("gemv_sg[WDEC=1]");
    gemm_subgroup_mismatch();
    gemm_case(200, 67, 384, KB_E4M3, KB_E5M2, KB_F32, KB_SCALE_BLK128, "tiled64", 0);
    gemm_case(200, 67, 384, KB_E4M3, KB_E5M2, KB_BF16, KB_SCALE_VEC128, "gemv", 0);
    gemm_case(33, 3, 130, KB_E5M2, KB_E4M3, KB_F16, KB_SCALE_OUTER, "gemv", 0);
    gemm_case(33, 3, 130, KB_E5M2, KB_E5M2, KB_F16, KB_SCALE_OUTER, "tiled64", 0);
    gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, KB_F32, KB_SCALE_VEC128, "gemv", 1);
    gemm_case(70, 20, 300, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR, "tiled64", 1);
    gemm_overflow("gemv");
    gemm_overflow("gemv_sg");
    gemm_overflow("tiled64");
}

static void test_rope(void) {
    kb_case c = {.op = KB_OP_rope_neox, .n = 4, .heads = 3, .head_dim = 64, .theta = 1e6, .max_pos = 200000};
    int32_t pos[4] = {0, 17, 32767, 199999};
    int64_t total = c.n * c.heads * c.head_dim, half = c.head_dim / 2;
    float *xv = malloc(sizeof(float) * (size_t)total), *out = malloc(sizeof(float) * (size_t)total);
    double *ref = dalloc(total), *bound = dalloc(total);
    for (int64_t i = 0; i < total; i++) xv[i] = uniform(-3, 3);
    for (int64_t t = 0; t < c.n; t++)
        for (int64_t h = 0; h < c.heads; h++)
            for (int64_t i = 0; i < half; i++) {
                const float *r = xv + (t * c.heads + h) * c.head_dim;
                double th = pos[t] * pow(c.theta, -2.0 * (double)i / (double)c.head_dim);
                double x0 = r[i], x1 = r[i + half];
                ref[(t * c.heads + h) * c.head_dim + i] = x0 * cos(th) - x1 * sin(th);
                ref[(t * c.heads + h) * c.head_dim + i + half] = x0 * sin(th) + x1 * cos(th);
            }
    /* |x| <= 3: a few fp32 roundings of the products and the angle's ~1e-7 rad. */
    for (int64_t i = 0; i < total; i++) bound[i] = 3e-6;
    io x = {.nin = 2, .nout = 1, .type = {KB_F32, KB_I32, KB_F32}, .count = {total, c.n, total}, .in = {xv, pos}, .out = {NULL, NULL, out}};
    check_float_op("rope_neox 4x3x64 pos up to 199999", &c, "pairs", &x, ref, bound, 1, 0);
    /* The GPT-J pairing must be caught by the same comparison. */
    char msg[KB_MSG] = "";
    double worst;
    int rc = run_case(&c, "test_rope_gptj", &x, 0, NULL, msg);
    int64_t bad = rc == KB_OK ? count_bad(KB_F32, out, ref, bound, total, &worst) : -1;
    check(rc == KB_OK && bad > total / 4, "rope_neox [test_rope_gptj]: the GPT-J pairing is caught (%lld/%lld wrong)",
          (long long)bad, (long long)total);
    free(xv);
    free(out);
    free(ref);
    free(bound);
}

static void attention_ref(const kb_case *c, const float *q, const float *k, const float *v, double *out) {
    int64_t d = c->head_dim, group = c->heads / c->kv_heads;
    double *s = dalloc(c->kv_len);
    for (int64_t i = 0; i < c->n; i++)
        for (int64_t h = 0; h < c->heads; h++) {
            int64_t qpos = c->kv_len - c->n + i, g = h / group;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j <= qpos; j++) {
                double dot = 0;
                for (int64_t e = 0; e < d; e++) dot += (double)q[(i * c->heads + h) * d + e] * k[(j * c->kv_heads + g) * d + e];
                s[j] = dot / sqrt((double)d);
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j <= qpos; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t e = 0; e < d; e++) {
                double a = 0;
                for (int64_t j = 0; j <= qpos; j++) a += s[j] * v[(j * c->kv_heads + g) * d + e];
                out[(i * c->heads + h) * d + e] = a / sum;
            }
        }
    free(s);
}

static void attention_case(int64_t n, int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t d, const char *variant,
                           int short_write) {
    kb_case c = {.op = KB_OP_attention, .n = n, .kv_len = kv_len, .heads = heads, .kv_heads = kv_heads, .head_dim = d};
    int64_t nq = n * heads * d, nk = kv_len * kv_heads * d;
    float *q = malloc(4 * (size_t)nq), *k = malloc(4 * (size_t)nk), *v = malloc(4 * (size_t)nk), *out = malloc(4 * (size_t)nq);
    double *ref = dalloc(nq), *bound = dalloc(nq);
    for (int64_t i = 0; i < nq; i++) q[i] = uniform(-1, 1);
    for (int64_t i = 0; i < nk; i++) k[i] = uniform(-1, 1) * ((i % 31) == 0 ? 8.0f : 1.0f);
    for (int64_t i = 0; i < nk; i++) v[i] = uniform(-1, 1);
    attention_ref(&c, q, k, v, ref);
    for (int64_t i = 0; i < nq; i++) bound[i] = 2e-5 + 1e-4 * fabs(ref[i]);
    io x = {.nin = 3,
            .nout = 1,
            .type = {KB_F32, KB_F32, KB_F32, KB_F32},
            .count = {nq, nk, nk, nq},
            .in = {q, k, v},
            .out = {NULL, NULL, NULL, out}};
    char what[128];
    snprintf(what, sizeof what, "attention n=%lld kv_len=%lld heads=%lld/%lld d=%lld", (long long)n, (long long)kv_len,
             (long long)heads, (long long)kv_heads, (long long)d);
    check_float_op(what, &c, variant, &x, ref, bound, short_write, 0);
    free(q);
    free(k);
    free(v);
    free(out);
    free(ref);
    free(bound);
}

static void test_attention(void) {
    attention_case(5, 9, 4, 2, 64, "prefill", 1);
    attention_case(70, 70, 6, 2, 80, "prefill", 0); /* prefill, d not a multiple of 64, 2 key chunks */
    attention_case(1, 300, 7, 1, 128, "prefill", 0);
    attention_case(1, 600, 7, 1, 128, "decode_split", 0); /* 3 splits, the last one partial */
    attention_case(1, 5, 4, 4, 32, "decode_split", 0);
    /* decode_split takes one query only */
    kb_case c = {.op = KB_OP_attention, .n = 2, .kv_len = 9, .heads = 2, .kv_heads = 1, .head_dim = 32};
    float buf[2 * 2 * 32] = {0}, kv[9 * 32] = {0};
    io x = {.nin = 3,
            .nout = 1,
            .type = {KB_F32, KB_F32, KB_F32, KB_F32},
            .count = {2 * 2 * 32, 9 * 32, 9 * 32, 2 * 2 * 32},
            .in = {buf, kv, kv},
            .out = {NULL, NULL, NULL, buf}};
    char msg[KB_MSG] = "";
    int rc = run_case(&c, "decode_split", &x, 0, NULL, msg);
    check(rc == KB_NOT_SUPPORTED, "attention decode_split with n=2 is not_supported (%s)", msg);
}

static void embed_case(kb_dtype t, int64_t m, int64_t k, int short_write) {
    kb_case c = {.op = KB_OP_embed, .m = m, .n = 5, .k = k, .a_type = t};
    int32_t ids[5] = {3, 0, (int32_t)m - 1, 3, 7};
    uint8_t *tab = malloc((size_t)kb_dtype_bytes(t, m * k));
    float *rows = malloc(sizeof(float) * (size_t)(m * k)), *out = malloc(sizeof(float) * (size_t)(5 * k));
    double *ref = dalloc(5 * k), *bound = dalloc(5 * k);
    if (t == KB_Q4K || t == KB_Q6K) {
        if (t == KB_Q4K) random_q4k(tab, m * k / 256);
        else random_q6k(tab, m * k / 256);
        dequant_blocks(t, tab, m * k / 256, rows);
    } else if (t == KB_F16) {
        for (int64_t i = 0; i < m * k; i++) {
            /* every half, subnormals included, except inf/NaN */
            uint16_t h = (uint16_t)next_u32();
            if (((h >> 10) & 31) == 31) h &= 0x83ff;
            memcpy(tab + 2 * i, &h, 2);
            rows[i] = (float)half_to_double(h);
        }
    } else {
        for (int64_t i = 0; i < m * k; i++) {
            rows[i] = uniform(-1, 1);
            memcpy(tab + 4 * i, &rows[i], 4);
        }
    }
    for (int i = 0; i < 5; i++)
        for (int64_t j = 0; j < k; j++) ref[i * k + j] = rows[ids[i] * k + j];
    io x = {.nin = 2, .nout = 1, .type = {t, KB_I32, KB_F32}, .count = {m * k, 5, 5 * k}, .in = {tab, ids}, .out = {NULL, NULL, out}};
    char what[96];
    snprintf(what, sizeof what, "embed %s %lldx%lld, 5 ids, bit-exact", kb_dtype_name(t), (long long)m, (long long)k);
    check_float_op(what, &c, "lookup", &x, ref, bound, short_write, 0);
    free(tab);
    free(rows);
    free(out);
    free(ref);
    free(bound);
}

static void test_embed(void) {
    embed_case(KB_Q4K, 10, 512, 1);
    embed_case(KB_Q6K, 10, 512, 0);
    embed_case(KB_F16, 9, 300, 0);
    embed_case(KB_F32, 9, 300, 0);
}

/* gemm_f32: (2 sqrt(K) + 4) u32 sum|w x| (the op's own bound). */
static void gemm_f32_case(int64_t m, int64_t n, int64_t k, const char *variant, int short_write, uint64_t offset) {
    kb_case c = {.op = KB_OP_gemm_f32, .m = m, .n = n, .k = k};
    float *w = malloc(4 * (size_t)(m * k)), *xv = malloc(4 * (size_t)(n * k)), *out = malloc(4 * (size_t)(m * n));
    double *ref = dalloc(m * n), *bound = dalloc(m * n);
    for (int64_t i = 0; i < m * k; i++) w[i] = uniform(-0.05f, 0.05f);
    for (int64_t i = 0; i < n * k; i++) xv[i] = uniform(-2, 2) * (i % 53 == 0 ? 20.0f : 1.0f);
    for (int64_t ni = 0; ni < n; ni++)
        for (int64_t mi = 0; mi < m; mi++) {
            double acc = 0, mag = 0;
            for (int64_t ki = 0; ki < k; ki++) {
                const double t = (double)w[mi * k + ki] * xv[ni * k + ki];
                acc += t;
                mag += fabs(t);
            }
            ref[ni * m + mi] = acc;
            bound[ni * m + mi] = (2 * sqrt((double)k) + 4) * U32 * mag;
        }
    io x = {.nin = 2, .nout = 1, .type = {KB_F32, KB_F32, KB_F32}, .count = {m * k, n * k, m * n}, .in = {w, xv}, .out = {NULL, NULL, out}};
    char what[96];
    snprintf(what, sizeof what, "gemm_f32 %lldx%lldx%lld", (long long)m, (long long)n, (long long)k);
    check_float_op(what, &c, variant, &x, ref, bound, short_write, offset);
    free(w);
    free(xv);
    free(out);
    free(ref);
    free(bound);
}

static void test_gemm_f32(void) {
    gemm_f32_case(70, 5, 300, "gemv", 1, 0);     /* vec4 loads */
    gemm_f32_case(33, 3, 131, "gemv", 0, 0);     /* k % 4 != 0: scalar loads */
    gemm_f32_case(70, 16, 300, "gemv", 0, 256);  /* vec4 loads at an offset */
    gemm_f32_case(130, 67, 300, "tiled64", 1, 0);
    gemm_f32_case(65, 9, 131, "tiled64", 0, 0);
    gemm_f32_case(64, 64, 512, "tiled64", 0, 256);
}

/* The vec4 variant of an element-wise op: within the bound, and bit for bit elem256's output
 * (the same arithmetic per element, only the loads and stores are wider). */
static void check_vec4(const char *what, const kb_case *c, io *x, const double *ref, const double *bound, uint64_t offset) {
    char msg[KB_MSG] = "";
    const int o = x->nin;
    const size_t bytes = (size_t)tensor_bytes(x, o);
    void *want = malloc(bytes);
    int rc = run_case(c, "elem256", x, offset, NULL, msg);
    if (rc == KB_OK) memcpy(want, x->out[o], bytes);
    check_float_op(what, c, "vec4", x, ref, bound, 0, offset);
    int64_t differ = 0;
    for (size_t i = 0; rc == KB_OK && i < bytes / 4; i++)
        differ += memcmp((char *)x->out[o] + 4 * i, (char *)want + 4 * i, 4) != 0;
    check(rc == KB_OK && differ == 0, "%s [vec4]: %lld of %lld values differ from elem256's bits %s", what,
          (long long)differ, (long long)(bytes / 4), msg);
    free(want);
}

/* add and bias_add: one rounding of the float sum, u32 (|a| + |b|). */
static void add_case(kb_dtype bt, int64_t n, int64_t k, int bias, int short_write, uint64_t offset) {
    const int64_t count = n * k, nb = bias ? k : count;
    kb_case c = {.op = bias ? KB_OP_bias_add : KB_OP_add, .n = n, .k = bias ? 0 : k, .m = bias ? k : 0, .a_type = bt};
    float *a = malloc(4 * (size_t)count), *b32 = malloc(4 * (size_t)count), *out = malloc(4 * (size_t)count);
    uint16_t *b16 = malloc(2 * (size_t)count);
    double *ref = dalloc(count), *bound = dalloc(count), *bv = dalloc(count);
    /* add: a f32 + b (bt); bias_add: x (bt) + bias f32: the 16-bit operand is b / x */
    for (int64_t i = 0; i < count; i++) {
        a[i] = uniform(-4, 4);
        b32[i] = uniform(-1, 1) * (i % 17 == 0 ? 1000.0f : 1.0f);
        b16[i] = random_16(bt, -3, 3);
        bv[i] = bt == KB_F32 ? b32[i] : value_16(bt, b16[i]);
    }
    for (int64_t i = 0; i < count; i++) {
        const double other = bias ? a[i % k] : a[i];
        ref[i] = bv[i] + other;
        bound[i] = U32 * (fabs(bv[i]) + fabs(other));
    }
    const void *typed = bt == KB_F32 ? (const void *)b32 : (const void *)b16;
    io x = {.nin = 2, .nout = 1, .out = {NULL, NULL, out}};
    if (bias) {
        x.type[0] = bt, x.count[0] = count, x.in[0] = typed;
        x.type[1] = KB_F32, x.count[1] = nb, x.in[1] = a;
    } else {
        x.type[0] = KB_F32, x.count[0] = count, x.in[0] = a;
        x.type[1] = bt, x.count[1] = count, x.in[1] = typed;
    }
    x.type[2] = KB_F32;
    x.count[2] = count;
    char what[96];
    snprintf(what, sizeof what, "%s %s %lldx%lld", bias ? "bias_add" : "add", kb_dtype_name(bt), (long long)n, (long long)k);
    check_float_op(what, &c, "elem256", &x, ref, bound, short_write, offset);
    check_vec4(what, &c, &x, ref, bound, offset);
    free(a);
    free(b32);
    free(b16);
    free(out);
    free(ref);
    free(bound);
    free(bv);
}

static void test_add(void) {
    /* counts not multiples of 4 (vec4's tail); bias rows of m % 4 == 0 (vector bias loads) and not */
    add_case(KB_F32, 3, 1001, 0, 1, 0);
    add_case(KB_F16, 3, 1001, 0, 0, 0); /* an odd count of 16-bit values */
    add_case(KB_BF16, 5, 333, 0, 0, 256);
    add_case(KB_F32, 5, 301, 1, 1, 0);
    add_case(KB_F16, 4, 257, 1, 0, 256);
    add_case(KB_BF16, 3, 100, 1, 0, 0);
    add_case(KB_F32, 3, 512, 1, 0, 256);
}

/* swiglu within 8 u32 |y| (the op's tolerance): exp and the division must be accurate. */
static void swiglu_case(kb_dtype t, int64_t n, int64_t k, int short_write) {
    const int64_t count = n * k;
    kb_case c = {.op = KB_OP_swiglu, .n = n, .k = k, .a_type = t};
    float *g32 = malloc(4 * (size_t)count), *u32v = malloc(4 * (size_t)count), *out = malloc(4 * (size_t)count);
    uint16_t *g16 = malloc(2 * (size_t)count), *u16 = malloc(2 * (size_t)count);
    double *ref = dalloc(count), *bound = dalloc(count);
    static const float special[] = {0.0f, -0.0f, 1e-3f, -1e-3f, 0.5f, -0.5f, 1.0f, -1.0f, 20.0f, -20.0f, 60.0f, -60.0f,
                                    87.0f, 88.0f, 100.0f, -70.0f, 0.34657359f, -0.34657359f, 0.34657362f, 3.0e-8f};
    for (int64_t i = 0; i < count; i++) {
        float g = i < (int64_t)(sizeof special / sizeof special[0]) ? special[i] : uniform(-30, 30);
        if (t == KB_F32) {
            g32[i] = g;
            u32v[i] = uniform(-2, 2);
        } else {
            g16[i] = random_16(t, -12, 12);
            u16[i] = random_16(t, -2, 2);
        }
        const double gd = t == KB_F32 ? g32[i] : value_16(t, g16[i]);
        const double ud = t == KB_F32 ? u32v[i] : value_16(t, u16[i]);
        ref[i] = gd / (1.0 + exp(-gd)) * ud;
        bound[i] = 8 * U32 * fabs(ref[i]);
    }
    io x = {.nin = 2,
            .nout = 1,
            .type = {t, t, KB_F32},
            .count = {count, count, count},
            .in = {t == KB_F32 ? (const void *)g32 : g16, t == KB_F32 ? (const void *)u32v : u16},
            .out = {NULL, NULL, out}};
    char what[96];
    snprintf(what, sizeof what, "swiglu %s %lldx%lld within 8 u32 |y|", kb_dtype_name(t), (long long)n, (long long)k);
    check_float_op(what, &c, "elem256", &x, ref, bound, short_write, 0);
    check_vec4(what, &c, &x, ref, bound, 0);
    /* how close, in units of u32 |y|: the accurate exp and division leave about 5 at worst */
    double worst_u = 0;
    for (int64_t i = 0; i < count; i++)
        if (ref[i] != 0) worst_u = fmax(worst_u, fabs(out[i] - ref[i]) / (U32 * fabs(ref[i])));
    printf("       swiglu %s: worst error %.2f u32 |y|\n", kb_dtype_name(t), worst_u);
    free(g32);
    free(u32v);
    free(g16);
    free(u16);
    free(out);
    free(ref);
    free(bound);
}

static void test_swiglu(void) {
    swiglu_case(KB_F32, 7, 1111, 1);
    swiglu_case(KB_F16, 3, 257, 0);
    swiglu_case(KB_BF16, 3, 100, 0);
}

/* ---- fp8 quantization: codes and scales bit-exact with the definition ------------------------ */
/* The codes and scales of rows x k values v (exact floats) under case c, by the definition:
 * amax per group, s = f32(amax / fp8_max) (1 when 0), code = fp8(f32(v / s)) nearest even,
 * saturating, flushed when subnormal and c->flush. */
static void quant_oracle(const kb_case *c, int64_t rows, const float *v, uint8_t *codes, float *scales) {
    const int64_t k = c->k, kb = (k + 127) / 128;
    const int64_t ns = c->scale_mode == KB_SCALE_TENSOR ? 1 : c->scale_mode == KB_SCALE_OUTER ? rows
                       : c->scale_mode == KB_SCALE_VEC128                                       ? rows * kb
                                                                                                : (rows + 127) / 128 * kb;
    double *amax = dalloc(ns);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++) {
            const int64_t g = c->scale_mode == KB_SCALE_TENSOR ? 0 : c->scale_mode == KB_SCALE_OUTER ? r
                              : c->scale_mode == KB_SCALE_VEC128 ? r * kb + j / 128
                                                                 : (r / 128) * kb + j / 128;
            amax[g] = fmax(amax[g], fabs((double)v[r * k + j]));
        }
    const double fmax8 = c->out_type == KB_E4M3 ? 448.0 : 57344.0;
    for (int64_t g = 0; g < ns; g++) scales[g] = amax[g] > 0 ? (float)(amax[g] / fmax8) : 1.0f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++) {
            const int64_t g = c->scale_mode == KB_SCALE_TENSOR ? 0 : c->scale_mode == KB_SCALE_OUTER ? r
                              : c->scale_mode == KB_SCALE_VEC128 ? r * kb + j / 128
                                                                 : (r / 128) * kb + j / 128;
            uint8_t code = fp8_nearest(c->out_type, (float)((double)v[r * k + j] / (double)scales[g]));
            if (c->flush && fp8_subnormal(c->out_type, code)) code &= 0x80;
            codes[r * k + j] = code;
        }
    free(amax);
}

/* Run quant_fp8 / weight_fp8 case c on input `in` (rows x k, decoded values v), compare codes
 * and scales bit for bit; then test_short_write leaves exactly the last code unwritten. */
static void check_quant(const char *what, const kb_case *c, int64_t rows, kb_dtype in_type, const void *in,
                        const float *v, int short_write) {
    const int64_t count = rows * c->k, kb = (c->k + 127) / 128;
    const int64_t ns = c->scale_mode == KB_SCALE_TENSOR ? 1 : c->scale_mode == KB_SCALE_OUTER ? rows
                       : c->scale_mode == KB_SCALE_VEC128                                       ? rows * kb
                                                                                                : (rows + 127) / 128 * kb;
    uint8_t *want = malloc((size_t)count), *codes = malloc((size_t)count);
    float *want_s = malloc(4 * (size_t)ns), *scales = malloc(4 * (size_t)ns);
    quant_oracle(c, rows, v, want, want_s);
    io x = {.nin = 1,
            .nout = 2,
            .type = {in_type, c->out_type, KB_F32},
            .count = {count, count, ns},
            .in = {in},
            .out = {NULL, codes, scales}};
    char msg[KB_MSG] = "";
    double secs = -1;
    int rc = run_case(c, "group256", &x, 0, &secs, msg);
    if (rc != KB_OK) {
        check(0, "%s: status %d: %s", what, rc, msg);
    } else {
        int64_t bad_c = 0, bad_s = 0, first = -1;
        for (int64_t i = 0; i < count; i++)
            if (codes[i] != want[i]) {
                bad_c++;
                if (first < 0) first = i;
            }
        for (int64_t g = 0; g < ns; g++) bad_s += f32_bits(scales[g]) != f32_bits(want_s[g]);
        check(bad_c == 0 && bad_s == 0, "%s: codes %lld/%lld and scales %lld/%lld differ from the definition%s, %.1f us",
              what, (long long)bad_c, (long long)count, (long long)bad_s, (long long)ns,
              first >= 0 ? " (see below)" : "", secs * 1e6);
        if (first >= 0)
            printf("       first at %lld: value %.9g, code 0x%02x, want 0x%02x\n", (long long)first, v[first], codes[first],
                   want[first]);
    }
    if (short_write) {
        rc = run_case(c, "test_short_write", &x, 0, NULL, msg);
        int64_t bad = 0;
        for (int64_t i = 0; rc == KB_OK && i + 1 < count; i++) bad += codes[i] != want[i];
        check(rc == KB_OK && bad == 0 && codes[count - 1] == POISON,
              "%s [test_short_write]: all but the last code right (%lld bad), the last unwritten %s", what,
              (long long)bad, msg);
    }
    free(want);
    free(codes);
    free(want_s);
    free(scales);
}

static void quant_case(kb_dtype in_type, int64_t n, int64_t k, kb_dtype fp8t, kb_scale_mode sm, int flush, int short_write) {
    kb_case c = {.op = KB_OP_quant_fp8, .n = n, .k = k, .a_type = in_type, .out_type = fp8t, .scale_mode = sm, .flush = flush};
    const int64_t count = n * k;
    float *v = malloc(4 * (size_t)count);
    uint16_t *h = malloc(2 * (size_t)count);
    for (int64_t i = 0; i < count; i++) {
        /* mostly ordinary values, some outliers (the amax), some tiny (fp8 subnormal codes),
         * exact zeros of both signs, and a zero row (scale 1) */
        const int64_t row = i / k;
        float x = uniform(-3, 3);
        if (i % 41 == 0) x *= 50.0f;
        if (i % 7 == 0) x *= 1e-3f;
        if (i % 13 == 0) x = (i % 2) ? -0.0f : 0.0f;
        if (row == 1 && n > 2) x = 0.0f;
        if (in_type == KB_F32) {
            v[i] = x;
        } else {
            h[i] = in_type == KB_BF16 ? (uint16_t)(f32_bits(x) >> 16) : random_16(KB_F16, -3, 3);
            if (row == 1 && n > 2) h[i] = 0;
            v[i] = (float)value_16(in_type, h[i]);
        }
    }
    char what[128];
    snprintf(what, sizeof what, "quant_fp8 %s %lldx%lld -> %s %s flush=%d", kb_dtype_name(in_type), (long long)n,
             (long long)k, kb_dtype_name(fp8t), kb_scale_mode_name(sm), flush);
    check_quant(what, &c, n, in_type, in_type == KB_F32 ? (const void *)v : h, v, short_write);
    free(v);
    free(h);
}

/* Exact ties: amax = fp8_max makes s = 1, and every other value is the midpoint of two
 * neighbouring fp8 codes (subnormals included, both signs): round to nearest *even*. */
static void quant_ties(kb_dtype fp8t, int flush) {
    const uint8_t top = fp8t == KB_E4M3 ? 0x7e : 0x7b;
    const int64_t k = 2 * top + 2;
    kb_case c = {.op = KB_OP_quant_fp8, .n = 1, .k = k, .a_type = KB_F32, .out_type = fp8t, .scale_mode = KB_SCALE_TENSOR,
                 .flush = flush};
    float *v = malloc(4 * (size_t)k);
    v[0] = (float)fp8(fp8t, top);
    v[1] = -v[0];
    for (int i = 0; i < top; i++) {
        const float mid = (float)(0.5 * (fp8(fp8t, (uint8_t)i) + fp8(fp8t, (uint8_t)(i + 1)))); /* exact */
        v[2 + 2 * i] = mid;
        v[3 + 2 * i] = -mid;
    }
    char what[96];
    snprintf(what, sizeof what, "quant_fp8 ties to even, every %s midpoint, flush=%d", kb_dtype_name(fp8t), flush);
    check_quant(what, &c, 1, KB_F32, v, v, 0);
    free(v);
}

static void weight_case(kb_dtype t, int64_t m, int64_t k, kb_dtype fp8t, kb_scale_mode sm, int flush, int short_write) {
    kb_case c = {.op = KB_OP_weight_fp8, .m = m, .k = k, .a_type = t, .out_type = fp8t, .scale_mode = sm, .flush = flush};
    const int64_t nb = m * k / 256;
    uint8_t *blocks = malloc((size_t)kb_dtype_bytes(t, m * k));
    float *v = malloc(4 * (size_t)(m * k));
    if (t == KB_Q4K) random_q4k(blocks, nb);
    else random_q6k(blocks, nb);
    dequant_blocks(t, blocks, nb, v);
    char what[128];
    snprintf(what, sizeof what, "weight_fp8 %s %lldx%lld -> %s %s flush=%d", kb_dtype_name(t), (long long)m, (long long)k,
             kb_dtype_name(fp8t), kb_scale_mode_name(sm), flush);
    check_quant(what, &c, m, t, blocks, v, short_write);
    free(blocks);
    free(v);
}

static void test_quant(void) {
    quant_case(KB_F32, 9, 1000, KB_E4M3, KB_SCALE_TENSOR, 0, 1); /* 3 chunks in the amax pass */
    quant_case(KB_F32, 4, 512, KB_E4M3, KB_SCALE_TENSOR, 1, 0);
    quant_case(KB_F32, 5, 384, KB_E4M3, KB_SCALE_OUTER, 1, 1);
    quant_case(KB_BF16, 3, 200, KB_E5M2, KB_SCALE_VEC128, 1, 0);
    quant_case(KB_F16, 4, 300, KB_E4M3, KB_SCALE_VEC128, 0, 1);
    quant_case(KB_F16, 3, 130, KB_E5M2, KB_SCALE_TENSOR, 0, 0);
    quant_ties(KB_E4M3, 0);
    quant_ties(KB_E4M3, 1);
    quant_ties(KB_E5M2, 0);
    quant_ties(KB_E5M2, 1);
    weight_case(KB_Q4K, 130, 512, KB_E4M3, KB_SCALE_BLK128, 0, 1); /* two row blocks, the second partial */
    weight_case(KB_Q6K, 7, 256, KB_E4M3, KB_SCALE_VEC128, 1, 0);
    weight_case(KB_Q4K, 9, 256, KB_E5M2, KB_SCALE_TENSOR, 0, 1);
    weight_case(KB_Q6K, 20, 512, KB_E5M2, KB_SCALE_OUTER, 1, 0);
    weight_case(KB_Q4K, 64, 512, KB_E4M3, KB_SCALE_TENSOR, 1, 0);
    /* quant_fp8 has no 128x128 activation scales */
    kb_case c = {.op = KB_OP_quant_fp8, .n = 2, .k = 128, .a_type = KB_F32, .out_type = KB_E4M3, .scale_mode = KB_SCALE_BLK128};
    float v[256] = {0};
    uint8_t q[256];
    float s[1];
    io x = {.nin = 1, .nout = 2, .type = {KB_F32, KB_E4M3, KB_F32}, .count = {256, 256, 1}, .in = {v}, .out = {NULL, q, s}};
    char msg[KB_MSG] = "";
    int rc = run_case(&c, "group256", &x, 0, NULL, msg);
    check(rc == KB_NOT_SUPPORTED, "quant_fp8 blk128 is not_supported (%s)", msg);
}

/* ---- the device, the contract -------------------------------------------------------------- */
static void test_device_info(void) {
    const kb_device_info *d = B->device();
    printf("device: %s [%s]; driver %s\n", d->name, d->key, d->driver);
    printf("        bw %.1f GB/s (%s); cache %.1f MiB; memory %.2f GiB, %.2f GiB free; launch floor %.2f us (%s)\n",
           d->bw * 1e-9, d->bw_source, (double)d->cache_bytes / 1048576.0, (double)d->mem_bytes / 1073741824.0,
           (double)d->mem_free / 1073741824.0, d->launch_floor_s * 1e6, d->launch_source);
    check(strncmp(d->key, "vulkan:", 7) == 0 && d->key[7] >= '0' && d->key[7] <= '9', "device key '%s' is vulkan:N", d->key);
    check(d->name[0] && d->driver[0], "device name and driver are set");
    check(d->bw > 1e8 && strstr(d->bw_source, "compute copy") != NULL, "bandwidth measured by a timed copy (%.1f GB/s)",
          d->bw * 1e-9);
    check(d->launch_floor_s > 0 && d->launch_floor_s < 0.01 && d->launch_source[0], "launch floor measured (%.2f us)",
          d->launch_floor_s * 1e6);
    check(d->mem_bytes > 0, "device memory from the heaps (%.2f GiB)", (double)d->mem_bytes / 1073741824.0);
    check(!strstr(d->name, "(cpu,") || d->cache_bytes > 0, "a CPU device reports the host's last-level cache");
    char list[2048];
    int nd = kb_vulkan_list_devices(list, sizeof list);
    printf("%s", list);
    check(nd >= 1 && strstr(list, "(selected)") != NULL, "kb_vulkan_list_devices lists %d device(s), one selected", nd);
}

static int has_variant(const kb_variant *v, int n, const char *name, int test_only) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].name, name)) return v[i].test_only == test_only;
    return 0;
}

static void test_variants_listing(void) {
    kb_variant v[16];
    char msg[KB_MSG] = "";
    kb_case rope = {.op = KB_OP_rope_neox, .n = 1, .heads = 1, .head_dim = 64, .theta = 1e4};
    kb_options opt = OPT;
    int n0 = B->variants(&rope, &opt, v, 16, msg);
    int leaked = 0;
    for (int i = 0; i < n0; i++) leaked |= strncmp(v[i].name, "test_", 5) == 0;
    check(n0 == 1 && !leaked, "rope_neox lists %d variant(s) and no test variant without test_variants", n0);
    opt.test_variants = 1;
    int n1 = B->variants(&rope, &opt, v, 16, msg);
    check(has_variant(v, n1, "test_rope_gptj", 1) && has_variant(v, n1, "test_short_write", 1) &&
              has_variant(v, n1, "pairs", 0),
          "test_variants adds test_short_write and test_rope_gptj, marked test_only");
    kb_case g = {.op = KB_OP_gemm_fp8, .m = 64, .n = 1, .k = 128};
    int ng = B->variants(&g, &OPT, v, 16, msg);
    check(ng == 2 && strcmp(v[0].name, "gemv") == 0 && strcmp(v[1].name, "gemv_sg") == 0,
          "gemm_fp8 n=1 lists gemv (the default) and gemv_sg");
    g.n = 16;
    ng = B->variants(&g, &OPT, v, 16, msg);
    check(ng == 3 && strcmp(v[0].name, "gemv") == 0 && strcmp(v[1].name, "gemv_sg") == 0 &&
              strcmp(v[2].name, "tiled64") == 0,
          "gemm_fp8 n=16 lists gemv, gemv_sg and tiled64");
    g.n = 17;
    ng = B->variants(&g, &OPT, v, 16, msg);
    check(ng == 1 && strcmp(v[0].name, "tiled64") == 0, "gemm_fp8 n=17 lists tiled64 only");
    g.op = KB_OP_gemm_f32;
    ng = B->variants(&g, &OPT, v, 16, msg);
    check(ng == 1 && strcmp(v[0].name, "tiled64") == 0, "gemm_f32 n=17 lists tiled64 only");
    kb_case ad = {.op = KB_OP_add, .n = 2, .k = 64, .a_type = KB_F16};
    int na = B->variants(&ad, &OPT, v, 16, msg);
    check(na == 2 && strcmp(v[0].name, "elem256") == 0 && strcmp(v[1].name, "vec4") == 0,
          "add lists elem256 (the default) and vec4");
    kb_case e = {.op = KB_OP_embed, .m = 4, .n = 1, .k = 256, .a_type = KB_BF16};
    int ne = B->variants(&e, &OPT, v, 16, msg);
    check(ne == 0 && strstr(msg, "bf16") != NULL, "embed from a bf16 table lists nothing, saying why (%s)", msg);
    kb_case d = {.op = KB_OP_dequant_q4k, .m = 1, .k = 256, .a_type = KB_Q6K};
    int nd = B->variants(&d, &OPT, v, 16, msg);
    check(nd == 1 && strstr(v[0].detail, "Q6K") != NULL, "dequant_q4k of q6_k blocks: %s", nd ? v[0].detail : msg);
}

/* Views: a misaligned offset is refused with the alignment named (or runs, on a device that
 * allows it), views outside their buffer and views too small for their tensor are errors. */
static void test_views(void) {
    char msg[KB_MSG] = "";
    kb_case c = {.op = KB_OP_rmsnorm, .n = 2, .k = 64, .eps = 1e-6};
    float xv[128], w[64], out[128];
    for (int i = 0; i < 128; i++) xv[i] = uniform(-1, 1);
    for (int i = 0; i < 64; i++) w[i] = 1.0f;
    io x = {.nin = 2, .nout = 1, .type = {KB_F32, KB_F32, KB_F32}, .count = {128, 64, 128}, .in = {xv, w}, .out = {NULL, NULL, out}};
    int rc = run_case(&c, "row256", &x, 4, NULL, msg);
    check(rc == KB_OK || (rc == KB_NOT_SUPPORTED && strstr(msg, "minStorageBufferOffsetAlignment")),
          "a view at byte 4 runs or is not_supported naming the alignment (%d: %s)", rc, msg);

    kb_buf buf = 0;
    msg[0] = 0;
    rc = B->alloc(1024, &buf, msg);
    check(rc == KB_OK, "alloc 1024 bytes %s", msg);
    unsigned char host[2048] = {0};
    rc = B->upload((kb_view){buf, 1000, 100}, host, msg);
    check(rc == KB_ERROR, "an upload past the buffer's end is an error (%s)", msg);
    rc = B->download(host, (kb_view){buf, 0, 1025}, msg);
    check(rc == KB_ERROR, "a download past the buffer's end is an error (%s)", msg);
    msg[0] = 0;
    rc = B->upload((kb_view){buf, 512, 512}, host, msg);
    check(rc == KB_OK, "an upload that ends on the buffer's end is fine %s", msg);
    rc = B->download(host, (kb_view){0, 0, 4}, msg);
    check(rc == KB_ERROR, "a view of no buffer is an error (%s)", msg);
    /* prepare: a view smaller than its tensor */
    kb_arg args[3] = {{KB_F32, 128, {buf, 0, 512}}, {KB_F32, 64, {buf, 512, 256}}, {KB_F32, 128, {buf, 768, 256}}};
    kb_variant v;
    kb_variant_init(&v, "row256");
    void *state = NULL;
    rc = B->prepare(&c, &v, args, 2, 1, &state, msg);
    check(rc == KB_ERROR && !state, "prepare with a 256-byte view for 128 floats is an error (%s)", msg);
    rc = B->prepare(&c, &v, args, 1, 1, &state, msg);
    check(rc == KB_ERROR && !state, "prepare with the wrong number of arguments is an error (%s)", msg);
    B->free(buf);
}

/* rmsnorm -> add -> quant_fp8 (tensor scale: three dispatches) with y, z, q and s in views of
 * one buffer: y = rmsnorm(x, w); z = y + r; (q, s) = fp8(z). */
enum { CN = 4, CK = 512 };
typedef struct {
    kb_buf in, mid;
    kb_view x, w, r, y, z, q, s;
    void *st[3];
} chain;

static uint64_t up256(uint64_t v) { return (v + 255) / 256 * 256; }

static int chain_make(chain *ch, const float *x, const float *w, const float *r, char *msg) {
    memset(ch, 0, sizeof *ch);
    const uint64_t act = 4 * (uint64_t)CN * CK;
    int rc = B->alloc(2 * act + 4 * CK, &ch->in, msg);
    if (rc == KB_OK) rc = B->alloc(256 + up256(act) * 2 + up256((uint64_t)CN * CK) + 4, &ch->mid, msg);
    if (rc != KB_OK) return rc;
    ch->x = (kb_view){ch->in, 0, act};
    ch->r = (kb_view){ch->in, act, act};
    ch->w = (kb_view){ch->in, 2 * act, 4 * CK};
    ch->y = (kb_view){ch->mid, 256, act};
    ch->z = (kb_view){ch->mid, 256 + up256(act), act};
    ch->q = (kb_view){ch->mid, 256 + 2 * up256(act), (uint64_t)CN * CK};
    ch->s = (kb_view){ch->mid, 256 + 2 * up256(act) + up256((uint64_t)CN * CK), 4};
    if ((rc = B->upload(ch->x, x, msg)) != KB_OK || (rc = B->upload(ch->r, r, msg)) != KB_OK ||
        (rc = B->upload(ch->w, w, msg)) != KB_OK)
        return rc;
    kb_case cn = {.op = KB_OP_rmsnorm, .n = CN, .k = CK, .eps = 1e-6};
    kb_case ca = {.op = KB_OP_add, .n = CN, .k = CK, .a_type = KB_F32};
    kb_case cq = {.op = KB_OP_quant_fp8, .n = CN, .k = CK, .a_type = KB_F32, .out_type = KB_E4M3, .scale_mode = KB_SCALE_TENSOR};
    kb_arg an[3] = {{KB_F32, CN * CK, ch->x}, {KB_F32, CK, ch->w}, {KB_F32, CN * CK, ch->y}};
    kb_arg aa[3] = {{KB_F32, CN * CK, ch->y}, {KB_F32, CN * CK, ch->r}, {KB_F32, CN * CK, ch->z}};
    kb_arg aq[3] = {{KB_F32, CN * CK, ch->z}, {KB_E4M3, CN * CK, ch->q}, {KB_F32, 1, ch->s}};
    kb_variant vn, va, vq;
    kb_variant_init(&vn, "row256");
    kb_variant_init(&va, "elem256");
    kb_variant_init(&vq, "group256");
    if ((rc = B->prepare(&cn, &vn, an, 2, 1, &ch->st[0], msg)) != KB_OK) return rc;
    if ((rc = B->prepare(&ca, &va, aa, 2, 1, &ch->st[1], msg)) != KB_OK) return rc;
    return B->prepare(&cq, &vq, aq, 1, 2, &ch->st[2], msg);
}

typedef struct {
    float y[CN * CK], z[CN * CK], s;
    uint8_t q[CN * CK];
} chain_out;

static int chain_poison(chain *ch, char *msg) {
    static unsigned char junk[4 * CN * CK];
    memset(junk, POISON, sizeof junk);
    int rc = B->upload(ch->y, junk, msg);
    if (rc == KB_OK) rc = B->upload(ch->z, junk, msg);
    if (rc == KB_OK) rc = B->upload(ch->q, junk, msg);
    if (rc == KB_OK) rc = B->upload(ch->s, junk, msg);
    return rc;
}

static int chain_download(chain *ch, chain_out *o, char *msg) {
    int rc = B->download(o->y, ch->y, msg);
    if (rc == KB_OK) rc = B->download(o->z, ch->z, msg);
    if (rc == KB_OK) rc = B->download(o->q, ch->q, msg);
    if (rc == KB_OK) rc = B->download(&o->s, ch->s, msg);
    return rc;
}

/* Each stage against its definition on the previous stage's downloaded output. */
static void chain_judge(const char *what, const chain_out *o, const float *x, const float *w, const float *r) {
    int64_t bad_y = 0, bad_z = 0, bad_q = 0;
    for (int t = 0; t < CN; t++) {
        double ss = 0;
        for (int i = 0; i < CK; i++) ss += (double)x[t * CK + i] * x[t * CK + i];
        const double scale = 1.0 / sqrt(ss / CK + 1e-6);
        for (int i = 0; i < CK; i++) {
            const double ref = x[t * CK + i] * scale * w[i];
            bad_y += !(fabs(o->y[t * CK + i] - ref) <= 1e-6 + 1e-5 * fabs(ref));
        }
    }
    for (int i = 0; i < CN * CK; i++) bad_z += f32_bits(o->z[i]) != f32_bits(o->y[i] + r[i]);
    kb_case cq = {.op = KB_OP_quant_fp8, .n = CN, .k = CK, .a_type = KB_F32, .out_type = KB_E4M3, .scale_mode = KB_SCALE_TENSOR};
    static uint8_t want[CN * CK];
    float want_s;
    quant_oracle(&cq, CN, o->z, want, &want_s);
    for (int i = 0; i < CN * CK; i++) bad_q += o->q[i] != want[i];
    check(bad_y == 0 && bad_z == 0 && bad_q == 0 && f32_bits(o->s) == f32_bits(want_s),
          "%s: y %lld bad, z %lld bad, q %lld bad, s %s", what, (long long)bad_y, (long long)bad_z, (long long)bad_q,
          f32_bits(o->s) == f32_bits(want_s) ? "exact" : "wrong");
}

static void test_chain(void) {
    static float x[CN * CK], r[CN * CK], w[CK];
    for (int i = 0; i < CN * CK; i++) x[i] = uniform(-2, 2);
    for (int i = 0; i < CN * CK; i++) r[i] = uniform(-1, 1);
    for (int i = 0; i < CK; i++) w[i] = uniform(0.5f, 1.5f);
    char msg[KB_MSG] = "";
    chain ch;
    static chain_out first, again;
    int rc = chain_make(&ch, x, w, r, msg);
    check(rc == KB_OK, "chain: three states on views of one buffer prepared %s", msg);
    if (rc != KB_OK) goto done;

    /* one enqueue, no wait between the states; the download waits on its own */
    rc = chain_poison(&ch, msg);
    if (rc == KB_OK) rc = B->enqueue(ch.st, 3, msg);
    const int barriers = kb_vulkan_last_barriers();
    if (rc == KB_OK) rc = B->wait(msg);
    if (rc == KB_OK) rc = chain_download(&ch, &first, msg);
    check(rc == KB_OK, "chain: one enqueue of rmsnorm -> add -> quant_fp8 %s", msg);
    /* 2 between the states + 2 inside quant_fp8 (amax -> scale -> codes) */
    check(barriers == 4, "chain: %d barriers between dependent dispatches (4 expected)", barriers);
    if (rc == KB_OK) chain_judge("chain, one enqueue", &first, x, w, r);

    /* record once, replay: enqueue (twice before a wait), run_timed with and without flush */
    void *seq = NULL;
    rc = B->record(ch.st, 3, &seq, msg);
    check(rc == KB_OK && kb_vulkan_last_barriers() == 4, "chain: recorded once (%d barriers inside) %s",
          kb_vulkan_last_barriers(), msg);
    if (rc == KB_OK) {
        rc = chain_poison(&ch, msg);
        if (rc == KB_OK) rc = B->enqueue(&seq, 1, msg);
        if (rc == KB_OK) rc = B->enqueue(&seq, 1, msg);
        if (rc == KB_OK) rc = B->wait(msg);
        if (rc == KB_OK) rc = chain_download(&ch, &again, msg);
        check(rc == KB_OK && memcmp(&first, &again, sizeof first) == 0,
              "chain: the recorded sequence replayed twice gives the same bytes %s", msg);
        double t_seq = 0, t_cold = 0, t_states = 0;
        rc = B->run_timed(&seq, 1, 0, &t_seq, msg);
        if (rc == KB_OK) rc = B->run_timed(&seq, 1, 1, &t_cold, msg);
        if (rc == KB_OK) rc = B->run_timed(ch.st, 3, 1, &t_states, msg);
        check(rc == KB_OK && t_seq > 0 && t_cold > 0 && t_states > 0,
              "chain: run_timed of the recording %.1f us (cold %.1f us), of the states %.1f us %s", t_seq * 1e6,
              t_cold * 1e6, t_states * 1e6, msg);
        if (rc == KB_OK) rc = chain_download(&ch, &again, msg);
        check(rc == KB_OK && memcmp(&first, &again, sizeof first) == 0, "chain: timed replays give the same bytes");
        /* a recording of a recording and a state: flattened */
        void *seq2 = NULL;
        void *items[2] = {seq, ch.st[0]};
        rc = B->record(items, 2, &seq2, msg);
        check(rc == KB_OK && kb_vulkan_last_barriers() == 5, "chain: record(recording, state) flattens (%d barriers) %s",
              kb_vulkan_last_barriers(), msg);
        /* release the states first: the recordings keep them until they go */
        for (int i = 0; i < 3; i++) B->release(ch.st[i]);
        if (rc == KB_OK) {
            rc = chain_poison(&ch, msg);
            if (rc == KB_OK) rc = B->enqueue(&seq2, 1, msg);
            if (rc == KB_OK) rc = B->wait(msg);
            if (rc == KB_OK) rc = chain_download(&ch, &again, msg);
            check(rc == KB_OK && memcmp(&first, &again, sizeof first) == 0,
                  "chain: replay after its states were released gives the same bytes %s", msg);
            B->release(seq2);
        }
        B->release(seq);
        ch.st[0] = ch.st[1] = ch.st[2] = NULL;
    }
done:
    for (int i = 0; i < 3; i++)
        if (ch.st[i]) B->release(ch.st[i]);
    if (ch.in) B->free(ch.in);
    if (ch.mid) B->free(ch.mid);
}

static void test_timing(void) {
    char msg[KB_MSG] = "";
    /* A bigger dispatch takes longer than a tiny one: the timestamps measure the work. */
    kb_case small = {.op = KB_OP_rmsnorm, .n = 1, .k = 256, .eps = 1e-6};
    kb_case big = {.op = KB_OP_rmsnorm, .n = 4096, .k = 3584, .eps = 1e-6};
    int64_t nb = big.n * big.k;
    float *xv = calloc((size_t)nb, 4), *w = calloc((size_t)big.k, 4), *out = malloc(4 * (size_t)nb);
    for (int64_t i = 0; i < nb; i++) xv[i] = 1.0f + (float)(i % 7);
    for (int64_t i = 0; i < big.k; i++) w[i] = 1.0f;
    double ts = 0, tb = 0;
    io xs = {.nin = 2, .nout = 1, .type = {KB_F32, KB_F32, KB_F32}, .count = {256, 256, 256}, .in = {xv, w}, .out = {NULL, NULL, out}};
    io xb = {.nin = 2, .nout = 1, .type = {KB_F32, KB_F32, KB_F32}, .count = {nb, big.k, nb}, .in = {xv, w}, .out = {NULL, NULL, out}};
    int r1 = run_case(&small, "row256", &xs, 0, &ts, msg);
    int r2 = run_case(&big, "row256", &xb, 0, &tb, msg);
    check(r1 == KB_OK && r2 == KB_OK && tb > 4 * ts, "timestamps scale with the work: 1x256 %.1f us, 4096x3584 %.1f us",
          ts * 1e6, tb * 1e6);
    /* the cold path: run_timed with the cache flush */
    dev_case dc;
    int rc = dev_case_make(&small, "row256", &xs, 0, &dc, msg);
    double tc = 0;
    if (rc == KB_OK) rc = B->run_timed(&dc.state, 1, 1, &tc, msg);
    check(rc == KB_OK && tc > 0, "run_timed with the cache flush: %.1f us %s", tc * 1e6, msg);
    dev_case_free(&dc, 3);
    free(xv);
    free(w);
    free(out);
}

/* On a CPU device a case over KB_VK_CPU_MAX_GFLOP (the op's own flop model) is not_supported. */
static void test_cpu_gflop_limit(void) {
    const int cpu = strstr(B->device()->name, "(cpu,") != NULL;
    kb_case c = {.op = KB_OP_gemm_f32, .m = 1024, .n = 1024, .k = 1024}; /* 2.1 GFLOP */
    kb_buf buf = 0;
    char msg[KB_MSG] = "";
    int rc = B->alloc(3 * 4u << 20, &buf, msg);
    kb_arg args[3] = {{KB_F32, 1 << 20, {buf, 0, 4u << 20}}, {KB_F32, 1 << 20, {buf, 4u << 20, 4u << 20}},
                      {KB_F32, 1 << 20, {buf, 8u << 20, 4u << 20}}};
    kb_variant v;
    kb_variant_init(&v, "tiled64");
    void *state = NULL;
    unsetenv("KB_VK_CPU_MAX_GFLOP");
    if (rc == KB_OK) rc = B->prepare(&c, &v, args, 2, 1, &state, msg);
    if (cpu)
        check(rc == KB_NOT_SUPPORTED && strstr(msg, "KB_VK_CPU_MAX_GFLOP"), "CPU device: a 2.1 GFLOP gemm is not_supported (%s)",
              msg);
    else check(rc == KB_OK, "GPU: a 2.1 GFLOP gemm prepares %s", msg);
    if (state) B->release(state);
    state = NULL;
    setenv("KB_VK_CPU_MAX_GFLOP", "3", 1);
    msg[0] = 0;
    rc = B->prepare(&c, &v, args, 2, 1, &state, msg);
    check(rc == KB_OK, "KB_VK_CPU_MAX_GFLOP=3 lets it prepare %s", msg);
    if (state) B->release(state);
    unsetenv("KB_VK_CPU_MAX_GFLOP");
    if (buf) B->free(buf);
}

static void test_missing_feature(void) {
    char msg[KB_MSG] = "";
    /* a state from before the reset */
    kb_case r = {.op = KB_OP_rmsnorm, .n = 1, .k = 256, .eps = 1e-6};
    float xv[256], w[256], out[256];
    for (int i = 0; i < 256; i++) xv[i] = w[i] = 1.0f;
    io xr = {.nin = 2, .nout = 1, .type = {KB_F32, KB_F32, KB_F32}, .count = {256, 256, 256}, .in = {xv, w}, .out = {NULL, NULL, out}};
    dev_case old;
    int rc = dev_case_make(&r, "row256", &xr, 0, &old, msg);

    setenv("KB_VK_DISABLE_FEATURES", "storageBuffer8BitAccess,storageBuffer16BitAccess", 1);
    rc = B->reset(msg);
    check(rc == KB_OK, "reset with storageBuffer8BitAccess and storageBuffer16BitAccess hidden %s", msg);
    if (old.state) {
        rc = B->enqueue(&old.state, 1, msg);
        check(rc == KB_ERROR, "a state from before the reset is refused (%s)", msg);
        dev_case_free(&old, 3); /* its buffers died with the device: freeing them is safe */
    }
    kb_case c = {.op = KB_OP_dequant_q4k, .m = 1, .k = 256, .a_type = KB_Q4K};
    uint8_t blk[144] = {0};
    io x = {.nin = 1, .nout = 1, .type = {KB_Q4K, KB_F32}, .count = {256, 256}, .in = {blk}, .out = {NULL, out}};
    rc = run_case(&c, "block256", &x, 0, NULL, msg);
    check(rc == KB_NOT_SUPPORTED && strstr(msg, "storageBuffer8BitAccess") != NULL,
          "dequant_q4k without 8-bit storage is not_supported naming the feature (%s)", msg);
    kb_case a = {.op = KB_OP_add, .n = 1, .k = 256, .a_type = KB_BF16};
    uint16_t b16[256] = {0};
    io xa = {.nin = 2, .nout = 1, .type = {KB_F32, KB_BF16, KB_F32}, .count = {256, 256, 256}, .in = {xv, b16}, .out = {NULL, NULL, out}};
    rc = run_case(&a, "elem256", &xa, 0, NULL, msg);
    check(rc == KB_NOT_SUPPORTED && strstr(msg, "storageBuffer16BitAccess") != NULL,
          "add with a bf16 operand without 16-bit storage is not_supported naming the feature (%s)", msg);
    msg[0] = 0;
    rc = run_case(&r, "row256", &xr, 0, NULL, msg);
    check(rc == KB_OK && fabsf(out[255] - 1.0f) < 1e-5f, "rmsnorm (needs no optional feature) still runs %s", msg);
    unsetenv("KB_VK_DISABLE_FEATURES");
    msg[0] = 0;
    rc = B->reset(msg);
    check(rc == KB_OK, "reset with every feature back %s", msg);
}

/* Subgroup operations are features too: without subgroup arithmetic in compute shaders,
 * gemm_fp8's gemv_sg is not_supported naming it, and gemv still runs. */
static void test_missing_subgroup(void) {
    char msg[KB_MSG] = "";
    setenv("KB_VK_DISABLE_FEATURES", "subgroupArithmetic", 1);
    int rc = B->reset(msg);
    check(rc == KB_OK, "reset with subgroupArithmetic hidden %s", msg);
    kb_case c = {.op = KB_OP_gemm_fp8, .m = 8, .n = 1, .k = 128, .a_type = KB_E4M3, .b_type = KB_E4M3,
                 .out_type = KB_F32, .scale_mode = KB_SCALE_TENSOR};
    uint8_t w[8 * 128], xq[128];
    memset(w, 0x38, sizeof w); /* 1.0 */
    memset(xq, 0x38, sizeof xq);
    float s1 = 1, s2 = 1, out[8];
    io x = {.nin = 4,
            .nout = 1,
            .type = {KB_E4M3, KB_E4M3, KB_F32, KB_F32, KB_F32},
            .count = {8 * 128, 128, 1, 1, 8},
            .in = {w, xq, &s1, &s2},
            .out = {NULL, NULL, NULL, NULL, out}};
    rc = run_case(&c, "gemv_sg", &x, 0, NULL, msg);
    check(rc == KB_NOT_SUPPORTED && strstr(msg, "subgroupArithmetic") != NULL,
          "gemm_fp8 gemv_sg without subgroup arithmetic is not_supported naming it (%s)", msg);
    msg[0] = 0;
    rc = run_case(&c, "gemv", &x, 0, NULL, msg);
    check(rc == KB_OK && out[0] == 128.0f && out[7] == 128.0f, "gemm_fp8 gemv (no subgroup operations) still runs %s", msg);
    unsetenv("KB_VK_DISABLE_FEATURES");
    msg[0] = 0;
    rc = B->reset(msg);
    check(rc == KB_OK, "reset with every feature back %s", msg);
}

int main(void) {
    char msg[KB_MSG] = "";
    const char *dev = getenv("KB_VK_DEVICE");
    if (dev) OPT.vk_device = atoi(dev);
    int rc = B->probe(&OPT, msg);
    if (rc != KB_OK) {
        printf("SKIP - no usable Vulkan device: %s\n", msg);
        return 77;
    }
    test_device_info();
    test_variants_listing();
    test_dequant(KB_Q4K, 3, 512, 0);
    test_dequant(KB_Q6K, 5, 512, 0);
    test_dequant(KB_Q6K, 2, 256, 256);
    test_rmsnorm();
    test_gemm_fp8();
    test_rope();
    test_attention();
    test_embed();
    test_gemm_f32();
    test_add();
    test_swiglu();
    test_quant();
    test_views();
    test_chain();
    test_timing();
    test_cpu_gflop_limit();
    test_missing_feature();
    test_missing_subgroup();
    test_dequant(KB_Q4K, 3, 512, 0); /* after the resets: a fresh device works */

    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
