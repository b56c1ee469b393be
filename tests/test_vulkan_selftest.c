/* test_vulkan_selftest.c - drives the vulkan backend through kb_backend alone, with
 * hand-made inputs and a tiny inline fp64 reference (independent of ref/), on whatever Vulkan
 * device probe() picks (lavapipe in CI). Checks: device init, every op and variant at small
 * odd sizes, the f16/bf16 output rounding, the timestamp path, the cache flush, the
 * test-only broken variants (which must be caught), the missing-feature path
 * (KB_VK_DISABLE_FEATURES), and the device list.
 * Exit 0 all passed, 1 a check failed, 77 no Vulkan device (CTest: skipped, never passed). */
#include "bench/kbench.h"
#include "kernels/spirv/backend_vulkan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kb_backend *B = &kb_backend_vulkan;
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

/* ---- deterministic inputs ------------------------------------------------------------ */
static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t next_u32(void) { /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() >> 8) / 16777216.0f; }

/* ---- tiny codecs (exact decodes; ggml and OCP layouts, REFERENCE.md section 2) ---------- */
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
static void q4k_block(const uint8_t *b, double *y) {
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
        for (int l = 0; l < 32; l++) y[64 * c + l] = (float)(d1 * (float)(q[32 * c + l] & 0xF) - m1);
        for (int l = 0; l < 32; l++) y[64 * c + 32 + l] = (float)(d2 * (float)(q[32 * c + l] >> 4) - m2);
    }
}
/* ggml dequantize_row_q6_K for one 210-byte block. */
static void q6k_block(const uint8_t *b, double *y) {
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
            y[l] = (float)(d * (float)sc[is] * (float)q1);
            y[l + 32] = (float)(d * (float)sc[is + 2] * (float)q2);
            y[l + 64] = (float)(d * (float)sc[is + 4] * (float)q3);
            y[l + 96] = (float)(d * (float)sc[is + 6] * (float)q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}
static void random_q4k(uint8_t *b, int nblocks) {
    for (int i = 0; i < nblocks * 144; i++) b[i] = (uint8_t)next_u32();
    for (int i = 0; i < nblocks; i++) {
        uint16_t d = (uint16_t)(0x1800 + (next_u32() & 0x3ff)), m = (uint16_t)(0x1400 + (next_u32() & 0x3ff));
        memcpy(b + 144 * i, &d, 2);
        memcpy(b + 144 * i + 2, &m, 2);
    }
}
static void random_q6k(uint8_t *b, int nblocks) {
    for (int i = 0; i < nblocks * 210; i++) b[i] = (uint8_t)next_u32();
    for (int i = 0; i < nblocks; i++) {
        uint16_t d = (uint16_t)(0x1000 + (next_u32() & 0x3ff));
        memcpy(b + 210 * i + 208, &d, 2);
    }
}
/* A finite fp8 byte (no NaN / inf), magnitudes spread over the range. */
static uint8_t random_fp8(kb_dtype t) {
    for (;;) {
        uint8_t v = (uint8_t)next_u32();
        double x = t == KB_E4M3 ? e4m3_to_double(v) : e5m2_to_double(v);
        if (isfinite(x) && fabs(x) < (t == KB_E4M3 ? 64.0 : 256.0)) return v;
    }
}

/* ---- running one case ------------------------------------------------------------------ */
typedef struct {
    const void *host[KB_MAX_INPUTS];
    size_t bytes[KB_MAX_INPUTS];
    int nin;
    size_t out_bytes;
} io;

#define POISON 0xFF /* f32 0xFFFFFFFF and f16/bf16 0xFFFF are NaN */

/* Upload, poison the output, prepare, run (timed), download. Returns the status. */
static int run_case(const kb_case *c, const char *variant, const io *x, void *out, double *seconds, char *msg) {
    void *din[KB_MAX_INPUTS] = {0}, *dout = NULL, *state = NULL;
    int rc = KB_OK;
    for (int i = 0; i < x->nin && rc == KB_OK; i++) {
        rc = B->alloc(x->bytes[i], &din[i], msg);
        if (rc == KB_OK) rc = B->upload(din[i], x->host[i], x->bytes[i], msg);
    }
    if (rc == KB_OK) rc = B->alloc(x->out_bytes, &dout, msg);
    if (rc == KB_OK) {
        memset(out, POISON, x->out_bytes);
        rc = B->upload(dout, out, x->out_bytes, msg);
    }
    kb_variant v;
    kb_variant_init(&v, variant);
    if (rc == KB_OK) rc = B->prepare(c, &v, din, dout, &state, msg);
    if (rc == KB_OK) rc = B->run(state, seconds, msg);
    if (rc == KB_OK) rc = B->download(out, dout, x->out_bytes, msg);
    if (state) B->release(state);
    for (int i = 0; i < x->nin; i++)
        if (din[i]) B->free(din[i]);
    if (dout) B->free(dout);
    return rc;
}

/* Compare float outputs with |out - ref| <= atol + rtol |ref|; NaN never passes. Returns the
 * number of bad elements; *worst gets the largest error over the bound. */
static int64_t compare_f32(const float *out, const double *ref, int64_t n, double atol, double rtol, double *worst) {
    int64_t bad = 0;
    *worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)out[i] - ref[i]);
        double bound = atol + rtol * fabs(ref[i]);
        if (!(err <= bound) && !(isinf(ref[i]) && out[i] == ref[i])) {
            bad++;
            if (!(err / bound <= *worst)) *worst = isnan(err) ? INFINITY : err / bound;
        }
    }
    return bad;
}

/* Run `variant`, compare; then (if asked) the short-write test variant must leave exactly the
 * last element poisoned. */
static void run_and_check(const char *what, const kb_case *c, const char *variant, const io *x, const double *ref,
                          double atol, double rtol) {
    char msg[KB_MSG] = "";
    int64_t n = (int64_t)(x->out_bytes / 4);
    float *out = malloc(x->out_bytes);
    double secs = -1;
    int rc = run_case(c, variant, x, out, &secs, msg);
    if (rc != KB_OK) {
        check(0, "%s [%s]: status %d: %s", what, variant, rc, msg);
        free(out);
        return;
    }
    double worst;
    int64_t bad = compare_f32(out, ref, n, atol, rtol, &worst);
    check(bad == 0, "%s [%s]: %lld/%lld elements outside tolerance (worst %.3g x bound), %.1f us", what, variant,
          (long long)bad, (long long)n, worst, secs * 1e6);
    check(secs > 0 && secs < 30, "%s [%s]: timestamp time %.3g s is positive", what, variant, secs);
    free(out);
}

static void short_write_check(const char *what, const kb_case *c, const io *x, const double *ref, double atol,
                              double rtol) {
    char msg[KB_MSG] = "";
    int64_t n = (int64_t)(x->out_bytes / 4);
    float *out = malloc(x->out_bytes);
    int rc = run_case(c, "test_short_write", x, out, NULL, msg);
    if (rc != KB_OK) {
        check(0, "%s [test_short_write]: status %d: %s", what, rc, msg);
        free(out);
        return;
    }
    double worst;
    int64_t bad = compare_f32(out, ref, n - 1, atol, rtol, &worst);
    uint32_t last;
    memcpy(&last, &out[n - 1], 4);
    check(bad == 0 && last == 0xFFFFFFFFu, "%s [test_short_write]: all but the last element right (%lld bad), last "
          "left unwritten (0x%08x)", what, (long long)bad, last);
    free(out);
}

/* ---- ops ------------------------------------------------------------------------------- */
static void test_dequant(void) {
    kb_case c = {.op = KB_OP_DEQUANT_Q4K, .m = 3, .k = 512};
    int nb = 6;
    uint8_t *blocks = malloc(144 * (size_t)nb);
    random_q4k(blocks, nb);
    double *ref = malloc(sizeof(double) * 256 * (size_t)nb);
    for (int i = 0; i < nb; i++) q4k_block(blocks + 144 * i, ref + 256 * i);
    io x = {.host = {blocks}, .bytes = {144 * (size_t)nb}, .nin = 1, .out_bytes = 4 * 256 * (size_t)nb};
    run_and_check("dequant_q4k 3x512 bit-exact", &c, "block256", &x, ref, 0, 0);
    short_write_check("dequant_q4k 3x512", &c, &x, ref, 0, 0);
    free(blocks);
    free(ref);
}

static void test_rmsnorm(void) {
    kb_case c = {.op = KB_OP_RMSNORM, .n = 3, .k = 1000, .eps = 1e-6};
    int64_t n = c.n * c.k;
    float *xv = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)c.k);
    double *ref = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) xv[i] = uniform(-2, 2) * (i % 97 == 0 ? 30.0f : 1.0f);
    for (int64_t i = 0; i < c.k; i++) w[i] = uniform(0.5f, 1.5f);
    for (int64_t r = 0; r < c.n; r++) {
        double s = 0;
        for (int64_t i = 0; i < c.k; i++) s += (double)xv[r * c.k + i] * xv[r * c.k + i];
        double scale = 1.0 / sqrt(s / (double)c.k + c.eps);
        for (int64_t i = 0; i < c.k; i++) ref[r * c.k + i] = xv[r * c.k + i] * scale * w[i];
    }
    io x = {.host = {xv, w}, .bytes = {4 * (size_t)n, 4 * (size_t)c.k}, .nin = 2, .out_bytes = 4 * (size_t)n};
    run_and_check("rmsnorm 3x1000", &c, "row256", &x, ref, 1e-6, 1e-5);
    short_write_check("rmsnorm 3x1000", &c, &x, ref, 1e-6, 1e-5);
    free(xv);
    free(w);
    free(ref);
}

static double fp8(kb_dtype t, uint8_t v) { return t == KB_E4M3 ? e4m3_to_double(v) : e5m2_to_double(v); }

/* FP8 GEMM: every scale mode, both fp8 types, f32/f16/bf16 out, both variants. */
static void gemm_case(int64_t m, int64_t n, int64_t k, kb_dtype at, kb_dtype bt, kb_dtype ot, kb_scale_mode sm,
                      const char *variant, int short_write) {
    kb_case c = {.op = KB_OP_GEMM_FP8, .m = m, .n = n, .k = k, .a_type = at, .b_type = bt, .out_type = ot,
                 .scale_mode = sm};
    int64_t kb = (k + 127) / 128, mb = (m + 127) / 128;
    int64_t na = sm == KB_SCALE_TENSOR ? 1 : sm == KB_SCALE_OUTER ? m : sm == KB_SCALE_VEC128 ? m * kb : mb * kb;
    int64_t nbs = sm == KB_SCALE_TENSOR ? 1 : sm == KB_SCALE_OUTER ? n : n * kb;
    uint8_t *w = malloc((size_t)(m * k)), *xq = malloc((size_t)(n * k));
    float *sa = malloc(sizeof(float) * (size_t)na), *sb = malloc(sizeof(float) * (size_t)nbs);
    for (int64_t i = 0; i < m * k; i++) w[i] = random_fp8(at);
    for (int64_t i = 0; i < n * k; i++) xq[i] = random_fp8(bt);
    for (int64_t i = 0; i < na; i++) sa[i] = uniform(0.25f, 2.0f);
    for (int64_t i = 0; i < nbs; i++) sb[i] = uniform(0.25f, 2.0f);
    double *ref = malloc(sizeof(double) * (size_t)(m * n)), *mag = malloc(sizeof(double) * (size_t)(m * n));
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
            mag[ni * m + mi] = am;
        }
    size_t esz = ot == KB_F32 ? 4 : 2;
    io x = {.host = {w, xq, sa, sb},
            .bytes = {(size_t)(m * k), (size_t)(n * k), 4 * (size_t)na, 4 * (size_t)nbs},
            .nin = 4,
            .out_bytes = esz * (size_t)(m * n)};
    void *out = malloc(x.out_bytes);
    char msg[KB_MSG] = "", what[160];
    snprintf(what, sizeof what, "gemm_fp8 %lldx%lldx%lld %s*%s->%s %s", (long long)m, (long long)n, (long long)k,
             kb_dtype_name(at), kb_dtype_name(bt), kb_dtype_name(ot), kb_scale_mode_name(sm));
    const char *vname = short_write ? "test_short_write" : variant;
    double secs = 0;
    int rc = run_case(&c, vname, &x, out, &secs, msg);
    if (rc != KB_OK) {
        check(0, "%s [%s]: status %d: %s", what, vname, rc, msg);
    } else {
        /* fp32 accumulation: error <= k * 2^-24 * sum|terms| (a loose Higham bound, with the
         * per-block scale products); then the output type's rounding, half an ulp. */
        int64_t bad = 0, total = m * n - (short_write ? 1 : 0);
        for (int64_t i = 0; i < total; i++) {
            double o;
            if (ot == KB_F32) o = ((float *)out)[i];
            else if (ot == KB_F16) o = half_to_double(((uint16_t *)out)[i]);
            else o = bf16_to_double(((uint16_t *)out)[i]);
            double acc_err = (double)(k + 4) * ldexp(1, -24) * mag[i];
            double r = ref[i];
            int ok;
            if (ot == KB_F16 && fabs(r) > 65520 + acc_err) ok = isinf(o) && (o > 0) == (r > 0);
            else {
                double ulp_bits = ot == KB_F32 ? 24 : ot == KB_F16 ? 11 : 8;
                double unit = ldexp(1, -(int)ulp_bits);
                double bound = acc_err * (1 + unit) + unit * fabs(r) + (ot == KB_F16 ? ldexp(1, -25) : 0);
                ok = fabs(o - r) <= bound;
            }
            bad += !ok;
        }
        if (short_write) {
            uint16_t last16 = 0;
            uint32_t last32 = 0;
            if (esz == 2) memcpy(&last16, (uint16_t *)out + m * n - 1, 2);
            else memcpy(&last32, (float *)out + m * n - 1, 4);
            check(bad == 0 && (esz == 2 ? last16 == 0xFFFF : last32 == 0xFFFFFFFFu),
                  "%s [test_short_write]: %lld bad, last element left unwritten", what, (long long)bad);
        } else {
            check(bad == 0, "%s [%s]: %lld/%lld outside fp32-accumulation + %s rounding bound, %.1f us", what, vname,
                  (long long)bad, (long long)total, kb_dtype_name(ot), secs * 1e6);
        }
    }
    free(out);
    free(w);
    free(xq);
    free(sa);
    free(sb);
    free(ref);
    free(mag);
}

/* f16 overflow: 448 * 448 * 128 = 25.7e6 > 65504 must be +inf in f16 and finite in bf16. */
static void gemm_overflow(const char *variant) {
    kb_case c = {.op = KB_OP_GEMM_FP8, .m = 3, .n = 2, .k = 128, .a_type = KB_E4M3, .b_type = KB_E4M3,
                 .scale_mode = KB_SCALE_TENSOR};
    uint8_t w[3 * 128], xq[2 * 128];
    memset(w, 0x7E, sizeof w); /* e4m3 448 */
    memset(xq, 0x7E, sizeof xq);
    w[0] = 0xFE; /* -448: row 0 sums to (127 - 1) * 448^2 */
    float sa = 1, sb = 1;
    io x = {.host = {w, xq, &sa, &sb}, .bytes = {sizeof w, sizeof xq, 4, 4}, .nin = 4, .out_bytes = 2 * 6};
    uint16_t out[6];
    char msg[KB_MSG] = "";
    c.out_type = KB_F16;
    int rc = run_case(&c, variant, &x, out, NULL, msg);
    check(rc == KB_OK && out[0] == 0x7C00 && out[1] == 0x7C00 && out[4] == 0x7C00,
          "gemm_fp8 f16 overflow -> +inf [%s] (0x%04x 0x%04x) %s", variant, out[0], out[1], msg);
    c.out_type = KB_BF16;
    rc = run_case(&c, variant, &x, out, NULL, msg);
    /* 128 * 200704 = 25690112 = 0x4BC40000 in f32 -> bf16 0x4BC4 exactly */
    check(rc == KB_OK && out[1] == 0x4BC4, "gemm_fp8 bf16 large value exact [%s] (0x%04x) %s", variant, out[1], msg);
}

static void test_gemm(void) {
    const kb_dtype outs[3] = {KB_F32, KB_F16, KB_BF16};
    for (int sm = 0; sm < KB_SCALE_COUNT; sm++)
        for (int o = 0; o < 3; o++) {
            gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, outs[o], (kb_scale_mode)sm, "gemv", 0);
            gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, outs[o], (kb_scale_mode)sm, "tiled64", 0);
        }
    gemm_case(200, 67, 384, KB_E4M3, KB_E5M2, KB_F32, KB_SCALE_BLK128, "tiled64", 0);
    gemm_case(200, 67, 384, KB_E4M3, KB_E5M2, KB_BF16, KB_SCALE_VEC128, "gemv", 0);
    gemm_case(33, 3, 130, KB_E5M2, KB_E4M3, KB_F16, KB_SCALE_OUTER, "gemv", 0);
    gemm_case(33, 3, 130, KB_E5M2, KB_E5M2, KB_F16, KB_SCALE_OUTER, "tiled64", 0);
    gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, KB_F32, KB_SCALE_VEC128, NULL, 1);
    gemm_case(70, 5, 300, KB_E4M3, KB_E4M3, KB_BF16, KB_SCALE_TENSOR, NULL, 1);
    gemm_overflow("gemv");
    gemm_overflow("tiled64");
}

static void test_rope(void) {
    kb_case c = {.op = KB_OP_ROPE_NEOX, .n = 4, .heads = 3, .head_dim = 64, .theta = 1e6, .max_pos = 200000};
    int32_t pos[4] = {0, 17, 32767, 199999};
    int64_t total = c.n * c.heads * c.head_dim, half = c.head_dim / 2;
    float *xv = malloc(sizeof(float) * (size_t)total);
    double *ref = malloc(sizeof(double) * (size_t)total);
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
    io x = {.host = {xv, pos}, .bytes = {4 * (size_t)total, sizeof pos}, .nin = 2, .out_bytes = 4 * (size_t)total};
    /* |x| <= 3: a few fp32 roundings of the products and the angle's ~1e-7 rad. */
    run_and_check("rope_neox 4x3x64 pos up to 199999", &c, "pairs", &x, ref, 3e-6, 0);
    short_write_check("rope_neox 4x3x64", &c, &x, ref, 3e-6, 0);
    /* The GPT-J pairing must be caught by the same comparison. */
    float *out = malloc(x.out_bytes);
    char msg[KB_MSG] = "";
    int rc = run_case(&c, "test_rope_gptj", &x, out, NULL, msg);
    double worst;
    int64_t bad = rc == KB_OK ? compare_f32(out, ref, total, 3e-6, 0, &worst) : -1;
    check(rc == KB_OK && bad > total / 4, "rope_neox [test_rope_gptj]: the GPT-J pairing is caught (%lld/%lld wrong)",
          (long long)bad, (long long)total);
    free(out);
    free(xv);
    free(ref);
}

static void attention_ref(const kb_case *c, const float *q, const float *k, const float *v, double *out) {
    int64_t d = c->head_dim, group = c->heads / c->kv_heads;
    double *s = malloc(sizeof(double) * (size_t)c->kv_len);
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
    kb_case c = {.op = KB_OP_ATTENTION, .n = n, .kv_len = kv_len, .heads = heads, .kv_heads = kv_heads, .head_dim = d};
    size_t nq = (size_t)(n * heads * d), nk = (size_t)(kv_len * kv_heads * d);
    float *q = malloc(4 * nq), *k = malloc(4 * nk), *v = malloc(4 * nk);
    double *ref = malloc(sizeof(double) * nq);
    for (size_t i = 0; i < nq; i++) q[i] = uniform(-1, 1);
    for (size_t i = 0; i < nk; i++) k[i] = uniform(-1, 1) * ((i % 31) == 0 ? 8.0f : 1.0f);
    for (size_t i = 0; i < nk; i++) v[i] = uniform(-1, 1);
    attention_ref(&c, q, k, v, ref);
    io x = {.host = {q, k, v}, .bytes = {4 * nq, 4 * nk, 4 * nk}, .nin = 3, .out_bytes = 4 * nq};
    char what[128];
    snprintf(what, sizeof what, "attention n=%lld kv_len=%lld heads=%lld/%lld d=%lld", (long long)n, (long long)kv_len,
             (long long)heads, (long long)kv_heads, (long long)d);
    if (short_write) short_write_check(what, &c, &x, ref, 2e-5, 1e-4);
    else run_and_check(what, &c, variant, &x, ref, 2e-5, 1e-4);
    free(q);
    free(k);
    free(v);
    free(ref);
}

static void test_attention(void) {
    attention_case(5, 9, 4, 2, 64, "prefill", 0);
    attention_case(70, 70, 6, 2, 80, "prefill", 0); /* prefill, d not a multiple of 64, 2 key chunks */
    attention_case(1, 300, 7, 1, 128, "prefill", 0);
    attention_case(1, 600, 7, 1, 128, "decode_split", 0); /* 3 splits, the last one partial */
    attention_case(1, 5, 4, 4, 32, "decode_split", 0);
    attention_case(5, 9, 4, 2, 64, NULL, 1);
    /* decode_split takes one query only */
    kb_case c = {.op = KB_OP_ATTENTION, .n = 2, .kv_len = 9, .heads = 2, .kv_heads = 1, .head_dim = 32};
    float buf[2 * 2 * 32] = {0}, kv[9 * 32] = {0};
    io x = {.host = {buf, kv, kv}, .bytes = {sizeof buf, sizeof kv, sizeof kv}, .nin = 3, .out_bytes = sizeof buf};
    char msg[KB_MSG] = "";
    int rc = run_case(&c, "decode_split", &x, buf, NULL, msg);
    check(rc == KB_NOT_SUPPORTED, "attention decode_split with n=2 is not_supported (%s)", msg);
}

static void embed_case(kb_dtype t, int64_t m, int64_t k, int short_write) {
    kb_case c = {.op = KB_OP_EMBED, .m = m, .n = 5, .k = k, .a_type = t};
    int32_t ids[5] = {3, 0, (int32_t)m - 1, 3, 7};
    size_t tbytes = t == KB_Q4K ? (size_t)(m * k / 256 * 144)
                    : t == KB_Q6K ? (size_t)(m * k / 256 * 210)
                    : t == KB_F16 ? (size_t)(m * k * 2)
                                  : (size_t)(m * k * 4);
    uint8_t *tab = malloc(tbytes);
    double *rows = malloc(sizeof(double) * (size_t)(m * k)), *ref = malloc(sizeof(double) * (size_t)(5 * k));
    if (t == KB_Q4K) {
        random_q4k(tab, (int)(m * k / 256));
        for (int64_t b = 0; b < m * k / 256; b++) q4k_block(tab + 144 * b, rows + 256 * b);
    } else if (t == KB_Q6K) {
        random_q6k(tab, (int)(m * k / 256));
        for (int64_t b = 0; b < m * k / 256; b++) q6k_block(tab + 210 * b, rows + 256 * b);
    } else if (t == KB_F16) {
        for (int64_t i = 0; i < m * k; i++) {
            /* every half, subnormals included, except inf/NaN */
            uint16_t h = (uint16_t)next_u32();
            if (((h >> 10) & 31) == 31) h &= 0x83ff;
            memcpy(tab + 2 * i, &h, 2);
            rows[i] = half_to_double(h);
        }
    } else {
        for (int64_t i = 0; i < m * k; i++) {
            float f = uniform(-1, 1);
            memcpy(tab + 4 * i, &f, 4);
            rows[i] = f;
        }
    }
    for (int i = 0; i < 5; i++) memcpy(ref + i * k, rows + ids[i] * k, sizeof(double) * (size_t)k);
    io x = {.host = {tab, ids}, .bytes = {tbytes, sizeof ids}, .nin = 2, .out_bytes = 4 * (size_t)(5 * k)};
    char what[96];
    snprintf(what, sizeof what, "embed %s %lldx%lld, 5 ids, bit-exact", kb_dtype_name(t), (long long)m, (long long)k);
    if (short_write) short_write_check(what, &c, &x, ref, 0, 0);
    else run_and_check(what, &c, "lookup", &x, ref, 0, 0);
    free(tab);
    free(rows);
    free(ref);
}

static void test_embed(void) {
    embed_case(KB_Q4K, 10, 512, 0);
    embed_case(KB_Q6K, 10, 512, 0);
    embed_case(KB_F16, 9, 300, 0);
    embed_case(KB_F32, 9, 300, 0);
    embed_case(KB_Q4K, 10, 512, 1);
}

/* ---- device-level checks -------------------------------------------------------------- */
static void test_variants_listing(void) {
    kb_variant v[8];
    char msg[KB_MSG] = "";
    kb_case rope = {.op = KB_OP_ROPE_NEOX, .n = 1, .heads = 1, .head_dim = 64, .theta = 1e4};
    unsetenv("KB_TEST_VARIANTS");
    int n0 = B->variants(&rope, NULL, v, 8, msg);
    int leaked = 0;
    for (int i = 0; i < n0; i++) leaked |= strncmp(v[i].name, "test_", 5) == 0;
    check(n0 == 1 && !leaked, "rope_neox lists %d variant(s) and no test variant without KB_TEST_VARIANTS", n0);
    setenv("KB_TEST_VARIANTS", "1", 1);
    int n1 = B->variants(&rope, NULL, v, 8, msg);
    int has_gptj = 0, has_short = 0;
    for (int i = 0; i < n1; i++) {
        has_gptj |= strcmp(v[i].name, "test_rope_gptj") == 0;
        has_short |= strcmp(v[i].name, "test_short_write") == 0;
    }
    check(has_gptj && has_short, "KB_TEST_VARIANTS=1 adds test_short_write and test_rope_gptj");
    unsetenv("KB_TEST_VARIANTS");
    kb_case g = {.op = KB_OP_GEMM_FP8, .m = 64, .n = 1, .k = 128};
    int ng = B->variants(&g, NULL, v, 8, msg);
    check(ng == 1 && strcmp(v[0].name, "gemv") == 0, "gemm_fp8 n=1 lists gemv only");
    g.n = 8;
    ng = B->variants(&g, NULL, v, 8, msg);
    check(ng == 2 && strcmp(v[0].name, "gemv") == 0 && strcmp(v[1].name, "tiled64") == 0,
          "gemm_fp8 n=8 lists gemv and tiled64");
    g.n = 17;
    ng = B->variants(&g, NULL, v, 8, msg);
    check(ng == 1 && strcmp(v[0].name, "tiled64") == 0, "gemm_fp8 n=17 lists tiled64 only");
}

static void test_flush_and_timing(void) {
    char msg[KB_MSG] = "";
    int rc = B->flush_cache(msg);
    check(rc == KB_OK, "flush_cache (vkCmdFillBuffer over 128 MiB) %s", msg);
    /* A bigger dispatch takes longer than a tiny one: the timestamps measure the work. */
    kb_case small = {.op = KB_OP_RMSNORM, .n = 1, .k = 256, .eps = 1e-6};
    kb_case big = {.op = KB_OP_RMSNORM, .n = 4096, .k = 3584, .eps = 1e-6};
    size_t nb = (size_t)(big.n * big.k);
    float *xv = calloc(nb, 4), *w = calloc((size_t)big.k, 4), *out = malloc(4 * nb);
    for (size_t i = 0; i < nb; i++) xv[i] = 1.0f + (float)(i % 7);
    for (int64_t i = 0; i < big.k; i++) w[i] = 1.0f;
    double ts = 0, tb = 0;
    io xs = {.host = {xv, w}, .bytes = {4 * 256, 4 * 256}, .nin = 2, .out_bytes = 4 * 256};
    io xb = {.host = {xv, w}, .bytes = {4 * nb, 4 * (size_t)big.k}, .nin = 2, .out_bytes = 4 * nb};
    int r1 = run_case(&small, "row256", &xs, out, &ts, msg);
    int r2 = run_case(&big, "row256", &xb, out, &tb, msg);
    check(r1 == KB_OK && r2 == KB_OK && tb > 4 * ts, "timestamps scale with the work: 1x256 %.1f us, 4096x3584 %.1f us",
          ts * 1e6, tb * 1e6);
    free(xv);
    free(w);
    free(out);
}

static void test_missing_feature(void) {
    char msg[KB_MSG] = "";
    setenv("KB_VK_DISABLE_FEATURES", "storageBuffer8BitAccess", 1);
    int rc = B->reset(msg);
    check(rc == KB_OK, "reset with storageBuffer8BitAccess hidden %s", msg);
    kb_case c = {.op = KB_OP_DEQUANT_Q4K, .m = 1, .k = 256};
    uint8_t blk[144] = {0};
    float out[256];
    io x = {.host = {blk}, .bytes = {144}, .nin = 1, .out_bytes = sizeof out};
    rc = run_case(&c, "block256", &x, out, NULL, msg);
    check(rc == KB_NOT_SUPPORTED && strstr(msg, "storageBuffer8BitAccess") != NULL,
          "dequant_q4k without 8-bit storage is not_supported naming the feature (%s)", msg);
    kb_case r = {.op = KB_OP_RMSNORM, .n = 1, .k = 256, .eps = 1e-6};
    float xv[256], w[256];
    for (int i = 0; i < 256; i++) xv[i] = w[i] = 1.0f;
    io xr = {.host = {xv, w}, .bytes = {sizeof xv, sizeof w}, .nin = 2, .out_bytes = sizeof out};
    rc = run_case(&r, "row256", &xr, out, NULL, msg);
    check(rc == KB_OK && fabsf(out[255] - 1.0f) < 1e-5f, "rmsnorm (needs no optional feature) still runs %s", msg);
    unsetenv("KB_VK_DISABLE_FEATURES");
    rc = B->reset(msg);
    check(rc == KB_OK, "reset with every feature back %s", msg);
}

int main(void) {
    char msg[KB_MSG] = "";
    kb_options opt = {.vk_device = -1};
    const char *dev = getenv("KB_VK_DEVICE");
    if (dev) opt.vk_device = atoi(dev);
    int rc = B->probe(&opt, msg);
    if (rc != KB_OK) {
        printf("SKIP - no usable Vulkan device: %s\n", msg);
        return 77;
    }
    printf("device: %s, driver %s\n", B->device_name(), B->driver_version());
    char list[2048];
    int nd = kb_vulkan_list_devices(list, sizeof list);
    printf("%s", list);
    check(nd >= 1 && strstr(list, "(selected)") != NULL, "kb_vulkan_list_devices lists %d device(s), one selected", nd);

    test_variants_listing();
    test_dequant();
    test_rmsnorm();
    test_gemm();
    test_rope();
    test_attention();
    test_embed();
    test_flush_and_timing();
    test_missing_feature();
    test_dequant(); /* after the resets: a fresh device works */

    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
