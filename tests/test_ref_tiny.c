/* test_ref_tiny.c - the fp64 references (ref/ref.h) on cases small enough to work out
 * by hand, plus the promise of ref.h that result bits do not depend on the thread
 * count, plus the fast GEMM / attention loops against plain transcriptions of their
 * definitions.
 *
 * Every expected value below is derived in the comment next to it, from the op's
 * definition (the reference's own file states it), not from running the reference.
 * Where an expected value is not exactly representable, the check allows a relative
 * error of a few u = 2^-53 and the comment says which roundings it covers. Prints
 * "N passed, M failed". */
#include "ref/ref.h"
#include "tests/kb_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define U64 0x1p-53 /* fp64 unit roundoff */

/* |got - want| <= rel * |want| (rel = 0 demands equality; NaN never passes) */
static void check_close(const char *what, double got, double want, double rel) {
    CHECK(got == want || fabs(got - want) <= rel * fabs(want), "%s: got %.17g want %.17g (rel %.3g)", what, got, want,
          rel);
}

static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- rmsnorm ------------------------------------------------------------ */
static void test_rmsnorm(void) {
    /* x = [1, 3, 5, 7]: sum of squares 1 + 9 + 25 + 49 = 84, mean 21; eps = 4 makes
     * mean + eps = 25, rms = 5. w = [1, 2, 0.5, -1]:
     * y = x / 5 * w = [0.2, 1.2, 0.5, -1.4], mag = |y|. Every step up to the division
     * is exact; x/5 and * w round twice: 1e-15 > 2u covers them. */
    const double x[4] = {1, 3, 5, 7}, w[4] = {1, 2, 0.5, -1};
    double y[4], mag[4];
    ref_rmsnorm(1, 4, 4.0, x, w, y, mag);
    const double want[4] = {0.2, 1.2, 0.5, -1.4};
    for (int i = 0; i < 4; i++) {
        check_close("rmsnorm 1x4 y", y[i], want[i], 1e-15);
        check_close("rmsnorm 1x4 mag = |y|", mag[i], fabs(want[i]), 1e-15);
    }
    /* two rows, eps = 1e-6 (Qwen2.5): row [2, 2, 2, 2] has mean square 4, so
     * y = 2 / sqrt(4 + 1e-6) = 1 / sqrt(1 + 2.5e-7) = 0.99999987500002343...
     * (1 - h/2 + 3h^2/8 with h = 2.5e-7, the next term 5h^3/16 < 1e-20); row
     * [0, 0, 0, 0] gives 0 / sqrt(1e-6) = 0. The sum, the mean, + eps (1e-6 itself is
     * not a double), sqrt and the division each round: 1e-15 > 5u. */
    const double x2[8] = {2, 2, 2, 2, 0, 0, 0, 0}, w2[4] = {1, 1, 1, 1};
    double y2[8];
    ref_rmsnorm(2, 4, 1e-6, x2, w2, y2, NULL);
    const double h = 2.5e-7, want_eps = 1.0 - h / 2 + 3 * h * h / 8;
    for (int i = 0; i < 4; i++) check_close("rmsnorm eps 1e-6", y2[i], want_eps, 1e-15);
    for (int i = 4; i < 8; i++) CHECK(y2[i] == 0.0, "rmsnorm zero row stays 0 (got %g)", y2[i]);
}

/* ---- rope_neox ---------------------------------------------------------- */
static void test_rope(void) {
    /* d = 4, base 10000, pos 1: theta_0 = 1 * 10000^0 = 1, theta_1 = 10000^(-2/4) = 0.01.
     * NEOX pairs (0, 2) and (1, 3). x = [1, 2, 3, 4]; cos 1 = 0.5403023058681398,
     * sin 1 = 0.8414709848078965, cos 0.01 = 0.9999500004166653,
     * sin 0.01 = 0.009999833334166665:
     *   y0 = 1 cos1 - 3 sin1       = 0.5403023058681398 - 2.5244129544236895 = -1.9841106485555495
     *   y2 = 1 sin1 + 3 cos1       = 0.8414709848078965 + 1.6209069176044194 =  2.4623779024123159
     *   y1 = 2 cos.01 - 4 sin.01   = 1.9999000008333306 - 0.0399993333366667 =  1.9599006674966640
     *   y3 = 2 sin.01 + 4 cos.01   = 0.0199996666683333 + 3.9998000016666612 =  4.0197996683349945
     * A second token at pos 0 is left unchanged (all angles 0). The bound 2e-15 covers
     * the 16-digit literals, libm's sin/cos/pow (< 1 ulp) and the products and sum. */
    const double x[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    const int32_t pos[2] = {1, 0};
    double y[8], mag[8];
    ref_rope_neox(2, 1, 4, 10000.0, x, pos, y, mag);
    const double want[4] = {-1.9841106485555495, 1.9599006674966640, 2.4623779024123159, 4.0197996683349945};
    for (int i = 0; i < 4; i++) check_close("rope d=4 pos 1 base 1e4", y[i], want[i], 2e-15);
    for (int i = 0; i < 4; i++) CHECK(y[4 + i] == x[i], "rope pos 0 is the identity (element %d: %.17g)", i, y[4 + i]);
    /* mag (ref/rope_neox.c), pair index i < d/2, for both elements of the pair:
     *   mag = (theta_i * (i + 2) + 1) * (|x_i| + |x_{i+d/2}|) + |y|
     * pos 1, i = 0: theta 1, (1*2 + 1)(1 + 3) = 12: mag_0 = 12 + 1.9841106485555495 = 13.9841106485555495
     *                                              mag_2 = 12 + 2.4623779024123159 = 14.4623779024123159
     * pos 1, i = 1: theta 0.01, (0.01*3 + 1)(2 + 4) = 6.18: mag_1 = 6.18 + 1.9599006674966640 = 8.139900667496664
     *                                                      mag_3 = 6.18 + 4.0197996683349945 = 10.1997996683349945
     * (12 is exact: 10000^-0 = 1; 6.18 carries pow's and three roundings: 2e-15 covers them)
     * pos 0: every angle is 0, so mag = (|x_i| + |x_pair|) + |x|, exact small integers:
     *   mag_4 = 4 + 1 = 5, mag_5 = 6 + 2 = 8, mag_6 = 4 + 3 = 7, mag_7 = 6 + 4 = 10 */
    const double want_mag[4] = {13.9841106485555495, 8.139900667496664, 14.4623779024123159, 10.1997996683349945};
    for (int i = 0; i < 4; i++) check_close("rope mag pos 1", mag[i], want_mag[i], 2e-15);
    const double want_mag0[4] = {5, 8, 7, 10};
    for (int i = 0; i < 4; i++) check_close("rope mag at pos 0", mag[4 + i], want_mag0[i], 0);

    /* the angle error term grows with the pair index and the position: pos 1000, d = 8,
     * base 10000, i = 0 (theta = 1000 exactly): (1000 * 2 + 1)(|x_0| + |x_4|) with
     * x_0 = 0.5, x_4 = -0.25: 2001 * 0.75 = 1500.75, plus |y_0| <= 0.75; so
     * 1500.75 <= mag_0 <= 1501.5 and mag_4 in the same range. */
    const double x8[8] = {0.5, 0, 0, 0, -0.25, 0, 0, 0};
    const int32_t p1000 = 1000;
    double y8[8], m8[8];
    ref_rope_neox(1, 1, 8, 10000.0, x8, &p1000, y8, m8);
    CHECK(m8[0] >= 1500.75 && m8[0] <= 1501.5 && m8[4] >= 1500.75 && m8[4] <= 1501.5,
          "rope mag carries (theta*(i+2) + 1)(|x_i| + |x_pair|): got %.17g, %.17g", m8[0], m8[4]);
}

/* ---- attention ---------------------------------------------------------- */
static void test_attention(void) {
    /* Prefill n = 2, kv_len = 2, one head, d = 4 (sqrt d = 2). q1 = [2, 0, 0, 0],
     * k0 = 0, k1 = [1, 0, 0, 0]: query 1 (position 1) scores s0 = 0, s1 = 2 / 2 = 1.
     * softmax: p0 = 1 / (1 + e) = 0.2689414213699951, p1 = e / (1 + e) = 0.7310585786300049.
     * v0 = [1, 0, 2, -4], v1 = [0, 1, 2, 4]:
     *   out1 = [p0, p1, 2, 4 (p1 - p0)] and 4 (p1 - p0) = 4 tanh(1/2) = 1.848468629040039.
     * Query 0 (position 0) sees only key 0: out0 = v0 exactly, whatever q0 is. */
    const ref_attention_dims c = {.n = 2, .kv_len = 2, .heads = 1, .kv_heads = 1, .head_dim = 4};
    const double q[8] = {5, -3, 1, 7, 2, 0, 0, 0};
    const double k[8] = {0, 0, 0, 0, 1, 0, 0, 0};
    const double v[8] = {1, 0, 2, -4, 0, 1, 2, 4};
    double out[8], mag[8];
    ref_attention(&c, q, k, v, out, mag);
    for (int i = 0; i < 4; i++) CHECK(out[i] == v[i], "attention causal: query 0 sees key 0 only (c %d)", i);
    const double p0 = 0.2689414213699951, p1 = 0.7310585786300049;
    check_close("attention 2 keys out[0]", out[4], p0, 1e-15);
    check_close("attention 2 keys out[1]", out[5], p1, 1e-15);
    check_close("attention 2 keys out[2]", out[6], 2.0, 1e-15);
    check_close("attention 2 keys out[3]", out[7], 1.848468629040039, 1e-15);
    /* mag_c = sum_j p_j |v_jc| + sum_j p_j |v_jc - out_c| (S_j + 1), S_j = sum |q k_j| / 2:
     * S_0 = 0, S_1 = 1. c = 0: p0 * 1 + p1 * 0 + p0 |1 - p0| * 1 + p1 |0 - p0| * 2
     *   = p0 + p0 p1 + 2 p0 p1 = p0 + 3 p0 p1 = 0.8587772210944407.
     * c = 2: both v are 2 = out: mag = p0 * 2 + p1 * 2 = 2. */
    check_close("attention mag c=0", mag[4], 0.8587772210944407, 1e-15);
    check_close("attention mag c=2", mag[6], 2.0, 1e-15);

    /* GQA mapping: heads 4, kv_heads 2, decode with one key: out of query head h is
     * v of kv head h / 2 exactly (softmax over one key is 1). v = [[1, -1], [2, -2]]. */
    const ref_attention_dims g = {.n = 1, .kv_len = 1, .heads = 4, .kv_heads = 2, .head_dim = 2};
    const double gq[8] = {1, 2, 3, 4, 5, 6, 7, 8}, gk[4] = {1, 1, -1, 1}, gv[4] = {1, -1, 2, -2};
    double gout[8];
    ref_attention(&g, gq, gk, gv, gout, NULL);
    for (int h = 0; h < 4; h++)
        CHECK(gout[2 * h] == gv[2 * (h / 2)] && gout[2 * h + 1] == gv[2 * (h / 2) + 1],
              "attention GQA: head %d reads kv head h / (heads / kv_heads)", h);
}

/* ---- gemm_fp8 ----------------------------------------------------------- */
static void encode_e4m3(const float *x, uint8_t *y, int n) {
    for (int i = 0; i < n; i++) {
        y[i] = kb_f32_to_e4m3(x[i], 0);
        if (kb_e4m3_to_f32(y[i]) != x[i]) printf("  (test setup: %g is not an e4m3 value)\n", x[i]);
    }
}

static void test_gemm_2x2x2(void) {
    /* W[m][k] = [[1, 2], [0.5, -3]], X[n][k] = [[4, 0.25], [-1.5, 8]], all exact e4m3.
     * D[n][m] = sum_k W[m][k] X[n][k]:
     *   D[0][0] = 1*4 + 2*0.25 = 4.5        D[0][1] = 0.5*4 - 3*0.25 = 1.25
     *   D[1][0] = 1*-1.5 + 2*8 = 14.5       D[1][1] = 0.5*-1.5 - 3*8 = -24.75
     * Every product and sum here is exact in fp64: the checks demand equality. */
    const float wf[4] = {1, 2, 0.5f, -3}, xf[4] = {4, 0.25f, -1.5f, 8};
    uint8_t w[4], x[4];
    encode_e4m3(wf, w, 4);
    encode_e4m3(xf, x, 4);
    ref_gemm_fp8_dims c = {.m = 2, .n = 2, .k = 2, .a_type = KB_E4M3, .b_type = KB_E4M3};
    double d[4], mag[4];

    /* TENSOR sa = 3, sb = 0.5: 1.5 D = [6.75, 1.875, 21.75, -37.125];
     * mag[0][0] = 1.5 (|1*4| + |2*0.25|) = 6.75, mag[1][1] = 1.5 (0.75 + 24) = 37.125 */
    c.scale_mode = KB_SCALE_TENSOR;
    const float ta[1] = {3}, tb[1] = {0.5f};
    ref_gemm_fp8(&c, w, x, ta, tb, d, mag);
    const double want_t[4] = {6.75, 1.875, 21.75, -37.125};
    for (int i = 0; i < 4; i++) check_close("gemm 2x2x2 tensor", d[i], want_t[i], 0);
    check_close("gemm 2x2x2 tensor mag[0][0]", mag[0], 6.75, 0);
    check_close("gemm 2x2x2 tensor mag[1][1]", mag[3], 37.125, 0);
    /* mag[0][1] = 1.5 (|0.5*4| + |-3*0.25|) = 1.5 * 2.75 = 4.125 (the sum was 1.25) */
    check_close("gemm 2x2x2 tensor mag[0][1]", mag[1], 4.125, 0);

    /* OUTER sa[m] = [1, 2], sb[n] = [10, -1]: D[n][m] sa[m] sb[n] =
     * [4.5*10, 1.25*2*10, 14.5*-1, -24.75*2*-1] = [45, 25, -14.5, 49.5] */
    c.scale_mode = KB_SCALE_OUTER;
    const float oa[2] = {1, 2}, ob[2] = {10, -1};
    ref_gemm_fp8(&c, w, x, oa, ob, d, mag);
    const double want_o[4] = {45, 25, -14.5, 49.5};
    for (int i = 0; i < 4; i++) check_close("gemm 2x2x2 outer", d[i], want_o[i], 0);

    /* VEC128 and BLK128 with K = 2 (one k-block) and M = 2 (one m-block):
     * VEC sa[m][0] = [1, 2], sb[n][0] = [10, -1] gives the OUTER numbers again;
     * BLK sa[0][0] = 4 (both rows), sb as VEC: D * 4 * sb[n] = [180, 50, -58, 99] */
    c.scale_mode = KB_SCALE_VEC128;
    ref_gemm_fp8(&c, w, x, oa, ob, d, mag);
    for (int i = 0; i < 4; i++) check_close("gemm 2x2x2 vec128", d[i], want_o[i], 0);
    c.scale_mode = KB_SCALE_BLK128;
    const float ba[1] = {4};
    ref_gemm_fp8(&c, w, x, ba, ob, d, mag);
    const double want_b[4] = {180, 50, -58, 99};
    for (int i = 0; i < 4; i++) check_close("gemm 2x2x2 blk128", d[i], want_b[i], 0);

    /* e4m3 x e5m2: the same X values are exact in e5m2 too; TENSOR as above */
    uint8_t x52[4];
    for (int i = 0; i < 4; i++) x52[i] = kb_f32_to_e5m2(xf[i], 0);
    c.b_type = KB_E5M2;
    c.scale_mode = KB_SCALE_TENSOR;
    ref_gemm_fp8(&c, w, x52, ta, tb, d, NULL);
    for (int i = 0; i < 4; i++) check_close("gemm 2x2x2 e4m3 x e5m2", d[i], want_t[i], 0);
}

static void test_gemm_blocks(void) {
    /* M = 130 (two m-blocks), N = 2, K = 258 (three k-blocks: 0..127, 128..255, 256..257).
     * W and X are zero except at k = 0, 128, 257 (one entry per k-block):
     *   W[0]   = (1, 2, -1)     W[129] = (0.5, 4, 3)
     *   X[0]   = (2, 1, 8)      X[1]   = (-1, 0.25, 0.5)
     * block sums W[m][kb] X[n][kb]:
     *   (n0, m0): 2, 2, -8      (n0, m129): 1, 4, 24
     *   (n1, m0): -1, 0.5, -0.5 (n1, m129): -0.5, 1, 1.5
     * VEC128 sa[m][b]: row 0 (1, 2, 4), row 129 (0.5, 0.25, 2), others 1;
     *        sb[n][b]: n0 (1, 1, 0.5), n1 (2, -1, 1):
     *   (n0, m0)   = 1*1*2 + 2*1*2 + 4*0.5*-8       = 2 + 4 - 16     = -10
     *   (n0, m129) = 0.5*1*1 + 0.25*1*4 + 2*0.5*24  = 0.5 + 1 + 24   = 25.5
     *   (n1, m0)   = 1*2*-1 + 2*-1*0.5 + 4*1*-0.5   = -2 - 1 - 2     = -5
     *   (n1, m129) = 0.5*2*-0.5 + 0.25*-1*1 + 2*1*1.5 = -0.5 - 0.25 + 3 = 2.25
     *   mag (n0, m0) = 1*2 + 2*2 + 2*8 = 22
     * BLK128 sa[mb][b] with mb = m / 128: mb 0 (1, 2, 4), mb 1 (0.5, 0.25, 2): rows 0 and
     * 129 see the same scales as above, so the same four numbers.
     * TENSOR sa = 2, sb = 0.25: 0.5 * full sums: (n0,m0) 0.5*-4 = -2, (n0,m129) 0.5*29 = 14.5,
     *   (n1,m0) 0.5*-1 = -0.5, (n1,m129) 0.5*2 = 1.
     * Every other output is 0. */
    enum { M = 130, N = 2, K = 258, KB = 3 };
    static float wf[M * K], xf[N * K];
    const int ks[3] = {0, 128, 257};
    const float w0[3] = {1, 2, -1}, w129[3] = {0.5f, 4, 3}, x0[3] = {2, 1, 8}, x1[3] = {-1, 0.25f, 0.5f};
    for (int i = 0; i < 3; i++) {
        wf[0 * K + ks[i]] = w0[i];
        wf[129 * K + ks[i]] = w129[i];
        xf[0 * K + ks[i]] = x0[i];
        xf[1 * K + ks[i]] = x1[i];
    }
    static uint8_t w[M * K], x[N * K];
    encode_e4m3(wf, w, M * K);
    encode_e4m3(xf, x, N * K);
    ref_gemm_fp8_dims c = {.m = M, .n = N, .k = K, .a_type = KB_E4M3, .b_type = KB_E4M3};
    static double d[N * M], mag[N * M];

    float sa_vec[M * KB], sb[N * KB] = {1, 1, 0.5f, 2, -1, 1};
    for (int i = 0; i < M * KB; i++) sa_vec[i] = 1;
    const float sa0[3] = {1, 2, 4}, sa129[3] = {0.5f, 0.25f, 2};
    for (int b = 0; b < KB; b++) {
        sa_vec[0 * KB + b] = sa0[b];
        sa_vec[129 * KB + b] = sa129[b];
    }
    float sa_blk[2 * KB];
    for (int b = 0; b < KB; b++) {
        sa_blk[0 * KB + b] = sa0[b];
        sa_blk[1 * KB + b] = sa129[b];
    }
    const double want[4] = {-10, 25.5, -5, 2.25}; /* (n0,m0), (n0,m129), (n1,m0), (n1,m129) */
    for (int mode = 0; mode < 2; mode++) {
        c.scale_mode = mode == 0 ? KB_SCALE_VEC128 : KB_SCALE_BLK128;
        ref_gemm_fp8(&c, w, x, mode == 0 ? sa_vec : sa_blk, sb, d, mag);
        const char *name = mode == 0 ? "gemm 130x2x258 vec128" : "gemm 130x2x258 blk128";
        check_close(name, d[0 * M + 0], want[0], 0);
        check_close(name, d[0 * M + 129], want[1], 0);
        check_close(name, d[1 * M + 0], want[2], 0);
        check_close(name, d[1 * M + 129], want[3], 0);
        check_close("gemm 130x2x258 mag (n0, m0)", mag[0], 22, 0);
        int zeros = 1;
        for (int n = 0; n < N; n++)
            for (int m = 1; m < 129; m++) zeros &= d[n * M + m] == 0.0;
        CHECK(zeros, "%s: rows without entries are 0", name);
    }
    c.scale_mode = KB_SCALE_TENSOR;
    const float ta[1] = {2}, tb[1] = {0.25f};
    ref_gemm_fp8(&c, w, x, ta, tb, d, NULL);
    check_close("gemm 130x2x258 tensor", d[0 * M + 0], -2, 0);
    check_close("gemm 130x2x258 tensor", d[0 * M + 129], 14.5, 0);
    check_close("gemm 130x2x258 tensor", d[1 * M + 0], -0.5, 0);
    check_close("gemm 130x2x258 tensor", d[1 * M + 129], 1, 0);
}

/* ---- Q4_K / Q6_K blocks: dequant, embed, matmul ---------------------------- */
/* A hand-made Q4_K block: d = 1 (fp16 0x3C00), dmin = 0.5 (0x3800).
 * scales[0..3] = 0x41, 2, 3, 4:  sc0..3 = scales[j] & 63 = 1, 2, 3, 4; the 0x40 of
 *                                scales[0] is bit 4 of sc4.
 * scales[4..7] = 0x80, 1, 2, 3:  m0..3 = scales[j+4] & 63 = 0, 1, 2, 3; the 0x80 of
 *                                scales[4] gives bit 5 of m4.
 * scales[8..11] = 0x15, 0x26, 0x37, 0x48: low nibble sc4..7, high nibble m4..7:
 *   sc4 = 5 | (0x41 >> 6) << 4 = 21, sc5 = 6, sc6 = 7, sc7 = 8
 *   m4  = 1 | (0x80 >> 6) << 4 = 33, m5 = 2,  m6 = 3,  m7 = 4
 * qs[i] = (i % 16) | (15 - i % 16) << 4. For chunk c (q = qs + 32c), l < 32:
 *   y[64c + l]      = sc(2c)   * (l % 16)      - 0.5 * m(2c)
 *   y[64c + 32 + l] = sc(2c+1) * (15 - l % 16) - 0.5 * m(2c+1)
 * e.g. y[1] = 1*1 - 0 = 1, y[33] = 2*14 - 0.5 = 27.5, y[129] = 21*1 - 16.5 = 4.5,
 *      y[255] = 8*0 - 2 = -2.
 * mag (ref/dequant.c) = |d*sc*q| + |dmin*m|: mag[33] = 28 + 0.5 = 28.5,
 *      mag[129] = 21 + 16.5 = 37.5, mag[255] = 0 + 2 = 2. */
static const int q4k_sc[8] = {1, 2, 3, 4, 21, 6, 7, 8}, q4k_m[8] = {0, 1, 2, 3, 33, 2, 3, 4};

static void make_q4k_block(kb_block_q4k *b) {
    memset(b, 0, sizeof *b);
    b->d = 0x3C00;
    b->dmin = 0x3800;
    const uint8_t scales[12] = {0x41, 2, 3, 4, 0x80, 1, 2, 3, 0x15, 0x26, 0x37, 0x48};
    memcpy(b->scales, scales, 12);
    for (int i = 0; i < 128; i++) b->qs[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
}

/* value i of the block with super-block scale d (dmin = 0.5), and its mag */
static double q4k_expected(int i, double d, double *mag) {
    const int c = i / 64, l = i % 64, j = 2 * c + (l >= 32), q = l < 32 ? l % 16 : 15 - (l - 32) % 16;
    if (mag) *mag = d * q4k_sc[j] * q + 0.5 * q4k_m[j];
    return d * q4k_sc[j] * q - 0.5 * q4k_m[j];
}

/* A hand-made Q6_K block: d = 0.5 (0x3800), scales[g] = g - 8 (-8..7), every ql byte
 * 0x21 (low nibble 1, high nibble 2), every qh byte 0xE4 = 11 10 01 00b (bits 0-1: 0,
 * 2-3: 1, 4-5: 2, 6-7: 3). dequantize_row_q6_K: in half h (128 values), value n,
 * quadrant = n / 32, l = n % 32, group g = 8h + n / 16, 6-bit code L = nibble | 2 bits << 4:
 *   quadrant 0: ql[l] low  (1) | qh bits 0-1 (0) << 4 = 1   q = L - 32 = -31
 *   quadrant 1: ql[l+32] low (1) | bits 2-3 (1) << 4 = 17   q = -15
 *   quadrant 2: ql[l] high (2) | bits 4-5 (2) << 4 = 34     q = 2
 *   quadrant 3: ql[l+32] high (2) | bits 6-7 (3) << 4 = 50  q = 18
 *   y = d * scales[g] * q = 0.5 (g - 8) q
 * e.g. y[0] = 0.5*-8*-31 = 124, y[16] = 0.5*-7*-31 = 108.5, y[100] (n 100, quadrant 3,
 * g 6) = 0.5*-2*18 = -18, y[200] (h 1, n 72, quadrant 2, g 12) = 0.5*4*2 = 4,
 * y[255] (g 15) = 0.5*7*18 = 63. mag = |y|. */
static void make_q6k_block(kb_block_q6k *b) {
    memset(b, 0, sizeof *b);
    b->d = 0x3800;
    for (int g = 0; g < 16; g++) b->scales[g] = (int8_t)(g - 8);
    memset(b->ql, 0x21, sizeof b->ql);
    memset(b->qh, 0xE4, sizeof b->qh);
}

static double q6k_expected(int i) {
    static const int q[4] = {-31, -15, 2, 18};
    const int h = i / 128, n = i % 128;
    return 0.5 * (8 * h + n / 16 - 8) * q[n / 32];
}

static void test_kquant_dequant_embed(void) {
    kb_block_q4k blk[2];
    make_q4k_block(&blk[0]);
    make_q4k_block(&blk[1]);
    blk[1].d = 0x4000; /* row 1: d = 2 doubles the sc part: y = 2 sc q - 0.5 m */
    double y[512], mag[512];
    ref_dequant(KB_Q4K, blk, 2, 256, y, mag);
    int all = 1, all_mag = 1;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 256; i++) {
            double m;
            all &= y[256 * r + i] == q4k_expected(i, r ? 2.0 : 1.0, &m);
            all_mag &= mag[256 * r + i] == m;
        }
    CHECK(all, "dequant Q4_K hand-made blocks (d = 1, d = 2), all 512 values");
    CHECK(all_mag, "dequant Q4_K mag = |d sc q| + |dmin m|, all 512 values");
    CHECK(y[1] == 1 && y[33] == 27.5 && y[129] == 4.5 && y[255] == -2, "dequant Q4_K spot values");
    CHECK(mag[33] == 28.5 && mag[129] == 37.5 && mag[255] == 2, "dequant Q4_K mag spot values");

    kb_block_q6k b6[2];
    make_q6k_block(&b6[0]);
    make_q6k_block(&b6[1]);
    b6[1].d = 0xB800; /* row 1: d = -0.5 negates every value, |y| stays */
    double y6[512], mag6[512];
    ref_dequant(KB_Q6K, b6, 2, 256, y6, mag6);
    all = all_mag = 1;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 256; i++) {
            const double want = r ? -q6k_expected(i) : q6k_expected(i);
            all &= y6[256 * r + i] == want;
            all_mag &= mag6[256 * r + i] == fabs(want);
        }
    CHECK(all, "dequant Q6_K hand-made blocks (d = 0.5, d = -0.5), all 512 values");
    CHECK(all_mag, "dequant Q6_K mag = |y|");
    CHECK(y6[0] == 124 && y6[16] == 108.5 && y6[100] == -18 && y6[200] == 4 && y6[255] == 63 && y6[256] == -124,
          "dequant Q6_K spot values");
    /* NULL mag is allowed */
    double y6b[256];
    ref_dequant(KB_Q6K, b6, 1, 256, y6b, NULL);
    CHECK(same_bits(y6b, y6, sizeof y6b), "dequant Q6_K without mag gives the same values");

    /* embed from the Q4_K table of 2 rows: ids [1, 0, 1] pick rows 1, 0, 1, with
     * their dequant mags */
    const int32_t ids[3] = {1, 0, 1};
    double out[768], emag[768];
    ref_embed(KB_Q4K, blk, 2, 256, ids, 3, out, emag);
    const size_t row = 256 * sizeof(double);
    CHECK(same_bits(out, y + 256, row) && same_bits(out + 256, y, row) && same_bits(out + 512, y + 256, row),
          "embed Q4_K rows by id");
    CHECK(same_bits(emag, mag + 256, row) && same_bits(emag + 256, mag, row) && same_bits(emag + 512, mag + 256, row),
          "embed Q4_K mag = the row's dequant mag (|d sc q| + |dmin m|)");
    CHECK(emag[256 + 33] == 28.5 && emag[33] == 2 * 2 * 14 + 0.5,
          "embed Q4_K mag spot values (id 1: d = 2, mag[33] = 2*2*14 + 0.5 = 56.5)");

    /* embed from the Q6_K table: ids [1, 1, 0]; mag = |y| */
    const int32_t ids6[3] = {1, 1, 0};
    ref_embed(KB_Q6K, b6, 2, 256, ids6, 3, out, emag);
    CHECK(same_bits(out, y6 + 256, row) && same_bits(out + 256, y6 + 256, row) && same_bits(out + 512, y6, row),
          "embed Q6_K rows by id");
    all_mag = 1;
    for (int i = 0; i < 768; i++) all_mag &= emag[i] == fabs(out[i]);
    CHECK(all_mag, "embed Q6_K mag = |y|");

    /* F16 table, 3 rows x 4: 0x3C00 = 1, 0xC000 = -2, 0x3555 = 1365/4096 = 0.333251953125,
     * 0x7BFF = 65504 (max), 0x0001 = 2^-24 (smallest subnormal), 0x8000 = -0, 0x3800 = 0.5. */
    const uint16_t t16[12] = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x8000, 0, 0x3800, 1, 2, 3, 4};
    const int32_t ids16[2] = {0, 1};
    double o16[8], m16[8];
    ref_embed(KB_F16, t16, 3, 4, ids16, 2, o16, m16);
    CHECK(o16[0] == 1 && o16[1] == -2 && o16[2] == 0.333251953125 && o16[3] == 65504, "embed F16 row 0");
    CHECK(o16[4] == ldexp(1, -24) && o16[5] == 0 && signbit(o16[5]) && o16[6] == 0 && o16[7] == 0.5,
          "embed F16 row 1");
    CHECK(m16[0] == 1 && m16[1] == 2 && m16[3] == 65504 && m16[5] == 0 && !signbit(m16[5]), "embed F16 mag = |y|");
    /* F32 table: the row itself */
    const float t32[6] = {1.5f, -0.25f, 3, 7, -8, 0.125f};
    const int32_t id32 = 1;
    double o32[3], m32[3];
    ref_embed(KB_F32, t32, 2, 3, &id32, 1, o32, m32);
    CHECK(o32[0] == 7 && o32[1] == -8 && o32[2] == 0.125 && m32[1] == 8, "embed F32 row 1 and |y|");
    /* an id outside the table gives a NaN row, and a NaN mag */
    const int32_t bad[2] = {3, -1};
    ref_embed(KB_F16, t16, 3, 4, bad, 2, o16, m16);
    int nan_rows = 1;
    for (int i = 0; i < 8; i++) nan_rows &= isnan(o16[i]) && isnan(m16[i]);
    CHECK(nan_rows, "embed: out-of-range ids (3 of 3, -1) give NaN rows and NaN mags");
}

/* ---- add, bias_add, swiglu ------------------------------------------------------- */
static void test_eltwise(void) {
    /* add: one IEEE addition per element, mag = |a| + |b|:
     *   1.5 + 2 = 3.5                     mag 3.5
     *   -2.5 + 2.5 = 0                    mag 5
     *   0.1 + 0.2 = 0.30000000000000004   (the double sum: 0x3FD3333333333334), mag the same
     *   3 + (-3 + 2^-40) = 2^-40          (exact: cancellation), mag 6 - 2^-40 (exact) */
    const double a[4] = {1.5, -2.5, 0.1, 3}, b[4] = {2, 2.5, 0.2, -3 + 0x1p-40};
    double y[4], mag[4];
    ref_add(4, a, b, y, mag);
    const double want[4] = {3.5, 0, 0.30000000000000004, 0x1p-40}, want_mag[4] = {3.5, 5, 0.30000000000000004,
                                                                                   6 - 0x1p-40};
    for (int i = 0; i < 4; i++) {
        check_close("add y", y[i], want[i], 0);
        check_close("add mag = |a| + |b|", mag[i], want_mag[i], 0);
    }

    /* bias_add n = 2, m = 3: bias [10, -2, 0.5] added to every row:
     *   [[1, 2, 3], [-1, -2, -3]] -> [[11, 0, 3.5], [9, -4, -2.5]]
     *   mag = |x| + |bias| = [[11, 4, 3.5], [11, 4, 3.5]] (all exact) */
    const double x[6] = {1, 2, 3, -1, -2, -3}, bias[3] = {10, -2, 0.5};
    double yb[6], mb[6];
    ref_bias_add(2, 3, x, bias, yb, mb);
    const double want_b[6] = {11, 0, 3.5, 9, -4, -2.5}, want_mb[6] = {11, 4, 3.5, 11, 4, 3.5};
    for (int i = 0; i < 6; i++) {
        check_close("bias_add y", yb[i], want_b[i], 0);
        check_close("bias_add mag = |x| + |bias|", mb[i], want_mb[i], 0);
    }

    /* swiglu y = g / (1 + exp(-g)) * up, mag = |y|:
     *   g = 0:       0 / 2 * 5 = 0
     *   g = ln 3:    ln3 / (1 + 1/3) = 0.75 ln3; * 2 = 1.5 ln3 = 1.6479184330021645
     *   g = -ln 3:   -ln3 / (1 + 3) = -0.25 ln3; * -4 = ln3 = 1.0986122886681098
     *   g = 20:      20 / (1 + e^-20) = 19.999999958776928; * 0.5 = 9.999999979388464
     *   g = 800:     exp(-800) underflows to 0: 800 / 1 * 0.25 = 200 exactly
     *   g = -800:    exp(800) overflows to inf: -800 / inf = -0; * 3 = -0
     * (ln 3 = 1.0986122886681097821.. as a double; exp (< 1 ulp, 2u), 1 + e, the
     * division and the product each round (4u); ln 3's own rounding moves the exact
     * result by at most (1 + g sigmoid(-g)) u < 1.3u; the 17-digit literals 0.5u:
     * 8u = 8.9e-16 covers all of it, 1e-15 is used) */
    const double l3 = log(3.0);
    const double g[6] = {0, l3, -l3, 20, 800, -800}, up[6] = {5, 2, -4, 0.5, 0.25, 3};
    double ys[6], ms[6];
    ref_swiglu(6, g, up, ys, ms);
    const double want_s[6] = {0, 1.6479184330021645, 1.0986122886681098, 9.999999979388464, 200, 0};
    for (int i = 0; i < 6; i++) {
        check_close("swiglu y", ys[i], want_s[i], 1e-15);
        check_close("swiglu mag = |y|", ms[i], fabs(want_s[i]), 1e-15);
    }
    CHECK(signbit(ys[5]), "swiglu: -800 / (1 + inf) * 3 is -0");
}

/* ---- matmul ------------------------------------------------------------------------ */
static void test_matmul(void) {
    /* W[m][k] = [[1, 2], [3, -4]] in every plain type, x[n][k] = [[0.5, 0.25], [-1, 1]]:
     *   out[0][0] = 1*0.5 + 2*0.25 = 1     out[0][1] = 3*0.5 - 4*0.25 = 0.5
     *   out[1][0] = -1 + 2 = 1             out[1][1] = -3 - 4 = -7
     *   mag = sum |w x| = [1, 2.5, 3, 7]   (all exact)
     * The codes, derived from each format's fields:
     *   f16:  1 = 0x3C00, 2 = 0x4000, 3 = 1.5*2^1 = 0x4200, -4 = 0xC400
     *   bf16: 1 = 0x3F80, 2 = 0x4000, 3 = 0x4040, -4 = 0xC080
     *   e4m3: 1 = 0 0111 000 = 0x38, 2 = 0x40, 3 = 0 1000 100 = 0x44, -4 = 1 1001 000 = 0xC8
     *   e5m2: 1 = 0 01111 00 = 0x3C, 2 = 0x40, 3 = 0x42, -4 = 1 10001 00 = 0xC4 */
    const float wf32[4] = {1, 2, 3, -4};
    const uint16_t wf16[4] = {0x3C00, 0x4000, 0x4200, 0xC400}, wbf16[4] = {0x3F80, 0x4000, 0x4040, 0xC080};
    const uint8_t we4[4] = {0x38, 0x40, 0x44, 0xC8}, we5[4] = {0x3C, 0x40, 0x42, 0xC4};
    const struct {
        kb_dtype t;
        const void *w;
    } ws[5] = {{KB_F32, wf32}, {KB_F16, wf16}, {KB_BF16, wbf16}, {KB_E4M3, we4}, {KB_E5M2, we5}};
    const double x[4] = {0.5, 0.25, -1, 1};
    const double want[4] = {1, 0.5, 1, -7}, want_mag[4] = {1, 2.5, 3, 7};
    for (int t = 0; t < 5; t++) {
        double out[4], mag[4];
        ref_matmul(2, 2, 2, ws[t].t, ws[t].w, x, out, mag);
        int ok = 1;
        for (int i = 0; i < 4; i++) ok &= out[i] == want[i] && mag[i] == want_mag[i];
        CHECK(ok, "matmul 2x2x2 W %s: [%g %g %g %g] mag [%g %g %g %g]", kb_dtype_name(ws[t].t), out[0], out[1], out[2],
              out[3], mag[0], mag[1], mag[2], mag[3]);
    }

    /* Q4_K W: two rows, the hand-made block with d = 1 and d = 2 (K = 256).
     * token 0: x[1] = 1, x[33] = 2, x[255] = 1, else 0:
     *   row 0: y[1] + 2 y[33] + y[255] = 1 + 55 - 2 = 54         mag 1 + 55 + 2 = 58
     *   row 1 (y = 2 sc q - 0.5 m): 2 + 2*55.5 - 2 = 111          mag 2 + 111 + 2 = 115
     * token 1: x = 1 everywhere: out = the sum of the row's values. Per sub-block j
     *   (q runs over 0..15 twice, so sum q = 240): sum y = d sc_j 240 - 16 m_j;
     *   sum sc = 52, sum m = 48: row 0: 240*52 - 16*48 = 11712, row 1: 2*12480 - 768 = 24192.
     *   |y| differs from y only at q = 0 (-0.5 m_j, twice per sub-block), so
     *   sum |y| = sum y + 2 * 48 = 11808 (row 0), 24288 (row 1).
     * All partial sums are multiples of 0.5 below 2^30: exact. */
    kb_block_q4k blk[2];
    make_q4k_block(&blk[0]);
    make_q4k_block(&blk[1]);
    blk[1].d = 0x4000;
    static double xq[2 * 256];
    memset(xq, 0, sizeof xq);
    xq[1] = 1;
    xq[33] = 2;
    xq[255] = 1;
    for (int i = 0; i < 256; i++) xq[256 + i] = 1;
    double out[4], mag[4];
    ref_matmul(2, 2, 256, KB_Q4K, blk, xq, out, mag);
    const double want_q[4] = {54, 111, 11712, 24192}, want_qm[4] = {58, 115, 11808, 24288};
    for (int i = 0; i < 4; i++) {
        check_close("matmul Q4_K W 2x2x256", out[i], want_q[i], 0);
        check_close("matmul Q4_K W 2x2x256 mag = sum |w x|", mag[i], want_qm[i], 0);
    }
    /* NULL mag is allowed and changes nothing */
    double out2[4];
    ref_matmul(2, 2, 256, KB_Q4K, blk, xq, out2, NULL);
    CHECK(same_bits(out, out2, sizeof out), "matmul without mag gives the same values");
}

/* ---- quant_fp8 ------------------------------------------------------------------- */
static void quant(const ref_quant_fp8_args *a, const void *x, float *s, uint8_t *codes, double *quot) {
    ref_quant_fp8(a, x, s, codes, quot);
}

static void check_codes(const char *what, const uint8_t *got, const uint8_t *want, int n) {
    int ok = 1, first = -1;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) {
            ok = 0;
            if (first < 0) first = i;
        }
    CHECK(ok, "%s: code [%d] is 0x%02x, want 0x%02x", what, first, first >= 0 ? got[first] : 0,
          first >= 0 ? want[first] : 0);
}

static void test_quant_fp8(void) {
    /* TENSOR, e4m3, f32 in, 2 rows x 3: x = [[896, -448, 3], [0.01f, 0, -0]].
     * amax = 896, s = 896 / 448 = 2 (exact); x / s = [448, -224, 1.5, 0.01f / 2, 0, -0]:
     *   448  = 1.75 * 2^8:  exponent 8 + 7 = 1111, mantissa 110 -> 0 1111 110 = 0x7E
     *   -224 = 1.75 * 2^7:  1 1110 110 = 0xF6
     *   1.5  = 1.5 * 2^0:   0 0111 100 = 0x3C
     *   0.01f / 2 = 0.0049999998882..: subnormal (< 2^-6), in steps of 2^-9: 2.56 -> 3:
     *                        0 0000 011 = 0x03; with flush: +0 = 0x00, quotient 0
     *   0 -> 0x00, -0 -> 0x80 (the sign survives) */
    const float x1[6] = {896, -448, 3, 0.01f, 0, -0.0f};
    ref_quant_fp8_args a = {.rows = 2, .k = 3, .in_type = KB_F32, .fp8 = KB_E4M3, .mode = KB_SCALE_TENSOR};
    float s[4];
    uint8_t codes[260];
    double quot[260];
    for (int flush = 0; flush < 2; flush++) {
        a.flush = flush;
        quant(&a, x1, s, codes, quot);
        const uint8_t want[6] = {0x7E, 0xF6, 0x3C, flush ? 0x00 : 0x03, 0x00, 0x80};
        check_codes(flush ? "quant_fp8 tensor e4m3 flush" : "quant_fp8 tensor e4m3", codes, want, 6);
        CHECK(s[0] == 2.0f, "quant_fp8 tensor: s = amax / 448 = 2 (got %a)", s[0]);
        const double wq[6] = {448, -224, 1.5, flush ? 0.0 : (double)0.01f / 2, 0, 0};
        int ok = 1;
        for (int i = 0; i < 6; i++) ok &= quot[i] == wq[i];
        CHECK(ok && signbit(quot[5]), "quant_fp8 tensor: quotient = x / s (0 where flushed) (flush %d)", flush);
    }

    /* OUTER, e4m3, f16 in, 2 rows x 3: row 0 = [7, -3.5, 0.0703125] as f16
     * (7 = 1.75*2^2: 0 10001 1100000000 = 0x4700; -3.5 = 0xC300; 9/128 = 1.125*2^-4:
     * 0 01011 0010000000 = 0x2C80), row 1 = zeros.
     *   row 0: amax 7, s = 7 / 448 = 2^-6; x / s = [448, -224, 4.5]:
     *          4.5 = 1.125*2^2: 0 1001 001 = 0x49 -> codes [0x7E, 0xF6, 0x49]
     *   row 1: amax 0 -> s = 1, codes 0 */
    const uint16_t x2[6] = {0x4700, 0xC300, 0x2C80, 0, 0, 0};
    a = (ref_quant_fp8_args){.rows = 2, .k = 3, .in_type = KB_F16, .fp8 = KB_E4M3, .mode = KB_SCALE_OUTER};
    quant(&a, x2, s, codes, quot);
    const uint8_t want2[6] = {0x7E, 0xF6, 0x49, 0, 0, 0};
    check_codes("quant_fp8 outer e4m3 f16", codes, want2, 6);
    CHECK(s[0] == 0x1p-6f && s[1] == 1.0f, "quant_fp8 outer: s = [2^-6, 1 (amax 0)] (got %a %a)", s[0], s[1]);
    CHECK(quot[2] == 4.5 && quot[3] == 0, "quant_fp8 outer: quotient 4.5, 0");

    /* VEC128, e4m3, bf16 in, 1 row x 130 (two column blocks, the second 2 wide):
     * block 0: x[5] = 896 (1.75*2^9: 0 10001000 1100000 = 0x4460), x[6] = 1 (0x3F80),
     *          x[7] = -0.375 (-1.5*2^-2: 1 01111101 1000000 = 0xBEC0), others 0
     *          amax 896 -> s0 = 2: 448 -> 0x7E, 0.5 = 0 0110 000 = 0x30,
     *          -0.1875 = -1.5*2^-3 = 1 0100 100 = 0xA4
     * block 1: x[128] = 0.875 (1.75*2^-1: 0x3F60), x[129] = -0.4375 (-1.75*2^-2: 0xBEE0)
     *          amax 0.875 -> s1 = 0.875 / (7*64) = 2^-9: 448 -> 0x7E, -224 -> 0xF6 */
    uint16_t x3[130];
    memset(x3, 0, sizeof x3);
    x3[5] = 0x4460;
    x3[6] = 0x3F80;
    x3[7] = 0xBEC0;
    x3[128] = 0x3F60;
    x3[129] = 0xBEE0;
    a = (ref_quant_fp8_args){.rows = 1, .k = 130, .in_type = KB_BF16, .fp8 = KB_E4M3, .mode = KB_SCALE_VEC128};
    quant(&a, x3, s, codes, quot);
    uint8_t want3[130];
    memset(want3, 0, sizeof want3);
    want3[5] = 0x7E;
    want3[6] = 0x30;
    want3[7] = 0xA4;
    want3[128] = 0x7E;
    want3[129] = 0xF6;
    check_codes("quant_fp8 vec128 e4m3 bf16", codes, want3, 130);
    CHECK(s[0] == 2.0f && s[1] == 0x1p-9f, "quant_fp8 vec128: s = [2, 2^-9] (got %a %a)", s[0], s[1]);

    /* BLK128, e5m2, f32 in, 130 rows x 2 (kb = 1): group 0 = rows 0..127, group 1 =
     * rows 128..129. Group 0: x[3] = [56, -28], x[100] = [0.3f, 0]; group 1:
     * x[129] = [-7/128, 0]; every other value 0.
     *   e5m2 max 57344 = 7 * 2^13. s0 = 56 / 57344 = 2^-10; s1 = (7/128) / 57344 = 2^-20.
     *   56 / 2^-10 = 57344 = 1.75*2^15: 0 11110 11 = 0x7B; -28672 = 1 11101 11 = 0xF7;
     *   0.3f * 1024 = 307.2000122: between 1.0*2^8 = 256 and 1.25*2^8 = 320, nearer
     *   320: 0 10111 01 = 0x5D; -7/128 / 2^-20 = -57344 -> 0xFB */
    static float x4[260];
    memset(x4, 0, sizeof x4);
    x4[3 * 2] = 56;
    x4[3 * 2 + 1] = -28;
    x4[100 * 2] = 0.3f;
    x4[129 * 2] = -7.0f / 128;
    a = (ref_quant_fp8_args){.rows = 130, .k = 2, .in_type = KB_F32, .fp8 = KB_E5M2, .mode = KB_SCALE_BLK128};
    quant(&a, x4, s, codes, quot);
    uint8_t want4[260];
    memset(want4, 0, sizeof want4);
    want4[6] = 0x7B;
    want4[7] = 0xF7;
    want4[200] = 0x5D;
    want4[258] = 0xFB;
    check_codes("quant_fp8 blk128 e5m2", codes, want4, 260);
    CHECK(s[0] == 0x1p-10f && s[1] == 0x1p-20f, "quant_fp8 blk128: s = [2^-10, 2^-20] (got %a %a)", s[0], s[1]);

    /* The subnormal boundary, e4m3, s = 1 (amax 448). Subnormals are multiples of 2^-9,
     * the largest 7*2^-9 (0x07), the smallest normal 2^-6 = 8*2^-9 (0x08).
     *   7.5*2^-9:  the tie between 0x07 (odd) and 0x08 (even) goes to 0x08: a normal,
     *              kept with flush
     *   7.25*2^-9: 0x07, subnormal: flushed to 0x00
     *   -2^-9:     0x81, flushed to 0x80 (-0)
     *   2^-6:      0x08 either way
     *   -1.5*2^-9: the tie between 1 and 2 (*2^-9) goes to 2: 0x82, flushed to 0x80 */
    const float x5[6] = {448, 7.5f * 0x1p-9f, 7.25f * 0x1p-9f, -0x1p-9f, 0x1p-6f, -1.5f * 0x1p-9f};
    a = (ref_quant_fp8_args){.rows = 1, .k = 6, .in_type = KB_F32, .fp8 = KB_E4M3, .mode = KB_SCALE_TENSOR};
    for (int flush = 0; flush < 2; flush++) {
        a.flush = flush;
        quant(&a, x5, s, codes, quot);
        const uint8_t want_nf[6] = {0x7E, 0x08, 0x07, 0x81, 0x08, 0x82}, want_f[6] = {0x7E, 0x08, 0x00, 0x80, 0x08,
                                                                                       0x80};
        check_codes(flush ? "quant_fp8 e4m3 subnormal boundary, flush" : "quant_fp8 e4m3 subnormal boundary",
                    codes, flush ? want_f : want_nf, 6);
        CHECK(quot[1] == 7.5 * 0x1p-9 && quot[2] == (flush ? 0.0 : 7.25 * 0x1p-9),
              "quant_fp8 e4m3 boundary quotients (flush %d)", flush);
    }
    /* e5m2: subnormals are multiples of 2^-16, the largest 3*2^-16 (0x03), the smallest
     * normal 2^-14 (0 00001 00 = 0x04); s = 1 (amax 57344).
     *   3.5*2^-16: the tie goes to the even 0x04 (normal, kept); 3.25*2^-16 -> 0x03
     *   (flushed to 0x00); 2^-14 -> 0x04 */
    const float x6[4] = {57344, 3.5f * 0x1p-16f, 3.25f * 0x1p-16f, 0x1p-14f};
    a = (ref_quant_fp8_args){.rows = 1, .k = 4, .in_type = KB_F32, .fp8 = KB_E5M2, .mode = KB_SCALE_TENSOR};
    for (int flush = 0; flush < 2; flush++) {
        a.flush = flush;
        quant(&a, x6, s, codes, quot);
        const uint8_t want6[4] = {0x7B, 0x04, flush ? 0x00 : 0x03, 0x04};
        check_codes(flush ? "quant_fp8 e5m2 subnormal boundary, flush" : "quant_fp8 e5m2 subnormal boundary", codes,
                    want6, 4);
    }

    /* A scale that is not exact: x = [1, -0.5], amax 1, s = f32(1/448) = f32(2^-9 * 8/7).
     * 8/7 = 1.001001001..b; 23 fraction bits 00100100100100100100100, then 1001..: more
     * than half, round up to ..101: s = 0 01110110 00100100100100100100101 = 0x3B124925,
     * slightly above 1/448, so 1/s = 447.99998 and -0.5/s = -223.99999: both round to
     * 448 (0x7E) and -224 (0xF6), inside the format (no saturation needed). */
    const float x7[2] = {1, -0.5f};
    a = (ref_quant_fp8_args){.rows = 1, .k = 2, .in_type = KB_F32, .fp8 = KB_E4M3, .mode = KB_SCALE_TENSOR};
    quant(&a, x7, s, codes, quot);
    CHECK(f32_bits(s[0]) == 0x3B124925u, "quant_fp8: s = f32(1/448) = 0x3B124925 (got 0x%08X)", f32_bits(s[0]));
    const uint8_t want7[2] = {0x7E, 0xF6};
    check_codes("quant_fp8 inexact scale", codes, want7, 2);
    CHECK(quot[0] < 448 && quot[0] > 447.99 && quot[0] == 1.0 / (double)bits_f32(0x3B124925u),
          "quant_fp8: quotient = x / s in fp64 (got %.17g)", quot[0]);

    /* Saturation: x = [2^-149, -2^-149] (f32's smallest subnormal): amax / 448 is
     * below half of 2^-149, so s = f32(amax / 448) = 0 (amax > 0, so not the amax-0
     * rule); x / s = +-inf, saturated to +-448: 0x7E, 0xFE. */
    const float x8[2] = {0x1p-149f, -0x1p-149f};
    a = (ref_quant_fp8_args){.rows = 1, .k = 2, .in_type = KB_F32, .fp8 = KB_E4M3, .mode = KB_SCALE_TENSOR};
    quant(&a, x8, s, codes, quot);
    const uint8_t want8[2] = {0x7E, 0xFE};
    check_codes("quant_fp8 saturation (x / s = +-inf)", codes, want8, 2);
    CHECK(s[0] == 0.0f && isinf(quot[0]) && quot[0] > 0 && isinf(quot[1]) && quot[1] < 0,
          "quant_fp8 saturation: s = 0, quotient +-inf (got %a, %g, %g)", s[0], quot[0], quot[1]);
    a.fp8 = KB_E5M2; /* e5m2 saturates to +-57344: 0x7B, 0xFB */
    quant(&a, x8, s, codes, quot);
    const uint8_t want8b[2] = {0x7B, 0xFB};
    check_codes("quant_fp8 saturation e5m2", codes, want8b, 2);

    /* All zero: s = 1; -0 keeps its sign. Outputs may be NULL. */
    const float x9[2] = {0.0f, -0.0f};
    a = (ref_quant_fp8_args){.rows = 1, .k = 2, .in_type = KB_F32, .fp8 = KB_E4M3, .mode = KB_SCALE_TENSOR};
    quant(&a, x9, s, codes, NULL);
    CHECK(s[0] == 1.0f && codes[0] == 0x00 && codes[1] == 0x80, "quant_fp8 amax 0: s = 1, codes 0x00 0x80");
    quant(&a, x1, NULL, codes, NULL); /* scales not wanted: still computed inside */
    CHECK(codes[0] == 0x7E, "quant_fp8 with scales NULL");

    /* Q4_K in: the hand-made block (d = 1). Its values (see test_kquant_dequant_embed):
     * the largest |y| is sub-block 4, q = 15: 21*15 - 16.5 = 298.5 (y[128 + 15]). With
     * OUTER scales that row's amax is 298.5: the code of y[143] is 448 (x / s is
     * 298.5 / f32(298.5/448), within 2^-23 of 448) and y[1] = 1 has x / s ~ 1.5008:
     * between 1.5 and 1.625, nearer 1.5: 0x3C. */
    kb_block_q4k blk;
    make_q4k_block(&blk);
    a = (ref_quant_fp8_args){.rows = 1, .k = 256, .in_type = KB_Q4K, .fp8 = KB_E4M3, .mode = KB_SCALE_OUTER};
    quant(&a, &blk, s, codes, quot);
    CHECK(codes[143] == 0x7E && codes[1] == 0x3C && fabs(quot[143] - 448) < 448 * 0x1p-22,
          "quant_fp8 from Q4_K: codes[143] 0x%02x (want 0x7E), codes[1] 0x%02x (want 0x3C)", codes[143], codes[1]);
}

/* ---- kb_round_to / kb_decode ------------------------------------------- */
static void test_round_decode(void) {
    /* Round to nearest, not through float: 1 + 2^-11 + 2^-40 is just above the half-way
     * point between the fp16 neighbours 1 and 1 + 2^-10, so it rounds up to 0x3C01;
     * (float) of it is exactly the half-way point, which would tie to even (0x3C00). */
    const double f16_case = 1.0 + ldexp(1, -11) + ldexp(1, -40);
    uint16_t h;
    kb_round_to(KB_F16, &f16_case, &h, 1);
    CHECK(h == 0x3C01, "round_to f16: correct rounding just above a tie (0x%04x)", h);
    const double tie = 1.0 + ldexp(1, -11); /* an exact tie: to even, 0x3C00 */
    kb_round_to(KB_F16, &tie, &h, 1);
    CHECK(h == 0x3C00, "round_to f16: exact tie goes to even (0x%04x)", h);
    const double bf_case = 1.0 + ldexp(1, -8) + ldexp(1, -40); /* bf16 neighbours 1, 1 + 2^-7 */
    kb_round_to(KB_BF16, &bf_case, &h, 1);
    CHECK(h == 0x3F81, "round_to bf16: correct rounding just above a tie (0x%04x)", h);
    const double below = -(1.0 + ldexp(1, -8) - ldexp(1, -40)); /* just below the tie: down */
    kb_round_to(KB_BF16, &below, &h, 1);
    CHECK(h == 0xBF80, "round_to bf16: just below a tie rounds down (negative) (0x%04x)", h);
    uint8_t b;
    const double e4_case = 1.0 + ldexp(1, -4) + ldexp(1, -40); /* e4m3 neighbours 1, 1.125 */
    kb_round_to(KB_E4M3, &e4_case, &b, 1);
    CHECK(b == 0x39, "round_to e4m3: correct rounding just above a tie (0x%02x)", b);
    const double big = 500; /* past 448 + half an ulp (464): NaN in the non-saturating codec */
    kb_round_to(KB_E4M3, &big, &b, 1);
    CHECK((b & 0x7F) == 0x7F, "round_to e4m3: overflow is NaN (0x%02x)", b);
    const double big5 = 1e6; /* e5m2 overflows to inf (0x7C) */
    kb_round_to(KB_E5M2, &big5, &b, 1);
    CHECK(b == 0x7C, "round_to e5m2: overflow is inf (0x%02x)", b);
    const double f32_case = 1.0 + ldexp(1, -24) + ldexp(1, -40);
    float f;
    kb_round_to(KB_F32, &f32_case, &f, 1);
    CHECK(f == 1.0f + 0x1p-23f, "round_to f32: nearest (%a)", f);
    const double tiny = ldexp(1, -30); /* far below half the smallest fp16 subnormal (2^-25): +0 */
    kb_round_to(KB_F16, &tiny, &h, 1);
    CHECK(h == 0, "round_to f16: underflow to +0 (0x%04x)", h);
    const double big16 = 65520; /* the half-way point above 65504 rounds to inf */
    kb_round_to(KB_F16, &big16, &h, 1);
    CHECK(h == 0x7C00, "round_to f16: 65520 overflows to inf (0x%04x)", h);

    const int32_t i32[3] = {-7, 0, 2147483647};
    double dd[3];
    kb_decode(KB_I32, i32, dd, 3);
    CHECK(dd[0] == -7 && dd[1] == 0 && dd[2] == 2147483647.0, "decode i32");
    const uint8_t e4[3] = {0x7E, 0x01, 0xB8}; /* 448, 2^-9, -1 */
    kb_decode(KB_E4M3, e4, dd, 3);
    CHECK(dd[0] == 448 && dd[1] == ldexp(1, -9) && dd[2] == -1, "decode e4m3");
    const uint8_t e5[3] = {0x7B, 0x01, 0xC0}; /* 57344, 2^-16, -2 */
    kb_decode(KB_E5M2, e5, dd, 3);
    CHECK(dd[0] == 57344 && dd[1] == ldexp(1, -16) && dd[2] == -2, "decode e5m2");
    const uint16_t bf[2] = {0x3F80, 0xC2F7}; /* 1, -123.5 */
    kb_decode(KB_BF16, bf, dd, 2);
    CHECK(dd[0] == 1 && dd[1] == -123.5, "decode bf16");
}

/* ---- kb_parallel_for and thread-count invariance ------------------------- */
static void count_calls(int64_t i, void *arg) { ((int *)arg)[i]++; }

static void test_parallel_for(void) {
    int ok = 1;
    for (int threads = 1; threads <= 5; threads++) {
        kb_set_ref_threads(threads);
        for (int n = 0; n <= 11; n++) {
            int hits[11] = {0};
            kb_parallel_for(n, count_calls, hits);
            for (int i = 0; i < n; i++) ok &= hits[i] == 1;
        }
    }
    CHECK(ok, "kb_parallel_for calls each index exactly once (1..5 threads, n 0..11)");
    int hits[11] = {0};
    kb_parallel_cancel(1);
    kb_parallel_for(11, count_calls, hits);
    kb_parallel_cancel(0);
    ok = 1;
    for (int i = 0; i < 11; i++) ok &= hits[i] == 0;
    CHECK(ok, "kb_parallel_cancel(1): no index runs");
    kb_parallel_for(11, count_calls, hits);
    ok = 1;
    for (int i = 0; i < 11; i++) ok &= hits[i] == 1;
    CHECK(ok, "kb_parallel_cancel(0): every index runs again");
    kb_set_ref_threads(3);
    CHECK(kb_ref_threads() == 3, "kb_ref_threads reports the setting");
    kb_set_ref_threads(0);
    CHECK(kb_ref_threads() >= 1, "kb_ref_threads(0) = online cores");
}

static uint64_t rng_state = 42;
static double rnd(void) { /* splitmix64 -> [-1, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

static double *rnd_array(size_t n, double scale) {
    double *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = rnd() * scale;
    return a;
}

/* One reference call per thread count (1, 2, 3) into out[t] (and mag[t]); the
 * results must agree in every bit. */
typedef void (*run_fn)(const void *ctx, double *out, double *mag);

static void check_thread_invariance(const char *what, run_fn run, const void *ctx, size_t n, int with_mag) {
    double *out[3], *mag[3];
    for (int t = 0; t < 3; t++) {
        out[t] = malloc(n * sizeof(double));
        mag[t] = with_mag ? malloc(n * sizeof(double)) : NULL;
        kb_set_ref_threads(t + 1);
        run(ctx, out[t], mag[t]);
    }
    int same = 1;
    for (int t = 1; t < 3; t++)
        same &= same_bits(out[0], out[t], n * sizeof(double)) &&
                (!with_mag || same_bits(mag[0], mag[t], n * sizeof(double)));
    CHECK(same, "%s: 1, 2, 3 threads bit-identical", what);
    for (int t = 0; t < 3; t++) {
        free(out[t]);
        free(mag[t]);
    }
    kb_set_ref_threads(0);
}

typedef struct {
    ref_gemm_fp8_dims d;
    const uint8_t *w, *x;
    const float *sa, *sb;
} gemm_ctx;
static void run_gemm(const void *p, double *out, double *mag) {
    const gemm_ctx *g = p;
    ref_gemm_fp8(&g->d, g->w, g->x, g->sa, g->sb, out, mag);
}

typedef struct {
    ref_attention_dims d;
    const double *q, *k, *v;
} attention_ctx;
static void run_attention(const void *p, double *out, double *mag) {
    const attention_ctx *a = p;
    ref_attention(&a->d, a->q, a->k, a->v, out, mag);
}

typedef struct {
    int64_t n, heads, d;
    const double *x;
    const int32_t *pos;
} rope_ctx;
static void run_rope(const void *p, double *out, double *mag) {
    const rope_ctx *r = p;
    ref_rope_neox(r->n, r->heads, r->d, 1e6, r->x, r->pos, out, mag);
}

typedef struct {
    int64_t n, k;
    const double *x, *w;
} rows_ctx;
static void run_rmsnorm(const void *p, double *out, double *mag) {
    const rows_ctx *r = p;
    ref_rmsnorm(r->n, r->k, 1e-6, r->x, r->w, out, mag);
}
static void run_add(const void *p, double *out, double *mag) {
    const rows_ctx *r = p;
    ref_add(r->n * r->k, r->x, r->w, out, mag);
}
static void run_bias_add(const void *p, double *out, double *mag) {
    const rows_ctx *r = p;
    ref_bias_add(r->n, r->k, r->x, r->w, out, mag);
}
static void run_swiglu(const void *p, double *out, double *mag) {
    const rows_ctx *r = p;
    ref_swiglu(r->n * r->k, r->x, r->w, out, mag);
}

typedef struct {
    int64_t m, n, k;
    kb_dtype t;
    const void *w;
    const double *x;
} matmul_ctx;
static void run_matmul(const void *p, double *out, double *mag) {
    const matmul_ctx *c = p;
    ref_matmul(c->m, c->n, c->k, c->t, c->w, c->x, out, mag);
}

typedef struct {
    kb_dtype t;
    const void *blocks;
    int64_t rows, k, n;
    const int32_t *ids;
} table_ctx;
static void run_dequant(const void *p, double *out, double *mag) {
    const table_ctx *c = p;
    ref_dequant(c->t, c->blocks, c->rows, c->k, out, mag);
}
static void run_embed(const void *p, double *out, double *mag) {
    const table_ctx *c = p;
    ref_embed(c->t, c->blocks, c->rows, c->k, c->ids, c->n, out, mag);
}

/* quant_fp8: codes, scales and quotients packed into the double arrays compared */
typedef struct {
    ref_quant_fp8_args a;
    const void *x;
} quant_ctx;
static void run_quant(const void *p, double *out, double *mag) {
    const quant_ctx *c = p;
    const int64_t n = c->a.rows * c->a.k, ns = kb_scale_count(c->a.mode, c->a.rows, c->a.k);
    float *s = malloc((size_t)ns * sizeof(float));
    uint8_t *codes = malloc((size_t)n);
    ref_quant_fp8(&c->a, c->x, s, codes, out);
    for (int64_t i = 0; i < n; i++) mag[i] = codes[i];
    for (int64_t i = 0; i < ns; i++) mag[n + i] = out[n + i] = s[i];
    free(s);
    free(codes);
}

static void random_q4k(kb_block_q4k *b, int64_t nblocks) {
    float *v = malloc((size_t)(nblocks * KB_QK_K) * sizeof(float));
    for (int64_t i = 0; i < nblocks * KB_QK_K; i++) v[i] = (float)(rnd() * 0.05);
    kb_quantize_q4k(v, b, nblocks);
    free(v);
}
static void random_q6k(kb_block_q6k *b, int64_t nblocks) {
    float *v = malloc((size_t)(nblocks * KB_QK_K) * sizeof(float));
    for (int64_t i = 0; i < nblocks * KB_QK_K; i++) v[i] = (float)(rnd() * 3);
    kb_quantize_q6k(v, b, nblocks);
    free(v);
}

static void test_thread_invariance(void) {
    /* gemm 203 x 37 x 300 (edges in every tile direction, K past two blocks) in every
     * scale mode */
    gemm_ctx g = {.d = {.m = 203, .n = 37, .k = 300, .a_type = KB_E4M3, .b_type = KB_E5M2}};
    const int64_t kb = 3;
    uint8_t *w = malloc((size_t)(g.d.m * g.d.k)), *x = malloc((size_t)(g.d.n * g.d.k));
    float *sa = malloc(sizeof(float) * (size_t)(g.d.m * kb)), *sb = malloc(sizeof(float) * (size_t)(g.d.n * kb));
    for (int64_t i = 0; i < g.d.m * g.d.k; i++) w[i] = kb_f32_to_e4m3((float)(rnd() * 400), 1);
    for (int64_t i = 0; i < g.d.n * g.d.k; i++) x[i] = kb_f32_to_e5m2((float)(rnd() * 1000), 1);
    for (int64_t i = 0; i < g.d.m * kb; i++) sa[i] = (float)(1 + rnd() * 0.5);
    for (int64_t i = 0; i < g.d.n * kb; i++) sb[i] = (float)(1 + rnd() * 0.5);
    g.w = w, g.x = x, g.sa = sa, g.sb = sb;
    for (int mode = 0; mode < KB_SCALE_COUNT; mode++) {
        g.d.scale_mode = (kb_scale_mode)mode;
        char what[96];
        snprintf(what, sizeof what, "gemm_fp8 203x37x300 %s", kb_scale_mode_name(g.d.scale_mode));
        check_thread_invariance(what, run_gemm, &g, (size_t)(g.d.m * g.d.n), 1);
    }
    free(w);
    free(x);
    free(sa);
    free(sb);

    /* attention prefill with GQA */
    attention_ctx a = {.d = {.n = 9, .kv_len = 45, .heads = 6, .kv_heads = 2, .head_dim = 16}};
    const size_t qn = (size_t)(a.d.n * a.d.heads * a.d.head_dim), kvn = (size_t)(a.d.kv_len * a.d.kv_heads * a.d.head_dim);
    double *q = rnd_array(qn, 3), *k = rnd_array(kvn, 3), *v = rnd_array(kvn, 1);
    a.q = q, a.k = k, a.v = v;
    check_thread_invariance("attention 9x45 GQA 6/2 d16", run_attention, &a, qn, 1);

    /* rope (positions up to 2^17) and rmsnorm on the same q data (9 tokens x 96) */
    const int32_t pos[9] = {0, 1, 7, 100, 4095, 32767, 65536, 131071, 3};
    const rope_ctx r = {a.d.n, a.d.heads, a.d.head_dim, q, pos};
    check_thread_invariance("rope_neox 9 x 6 x 16", run_rope, &r, qn, 1);
    const rows_ctx nrm = {a.d.n, a.d.heads * a.d.head_dim, q, k};
    check_thread_invariance("rmsnorm 9 x 96", run_rmsnorm, &nrm, qn, 1);

    /* the element-wise glue ops: add and swiglu over 9 x 96, bias_add 9 rows x 96 */
    check_thread_invariance("add 864", run_add, &nrm, qn, 1);
    check_thread_invariance("bias_add 9 x 96", run_bias_add, &nrm, qn, 1);
    check_thread_invariance("swiglu 864", run_swiglu, &nrm, qn, 1);
    free(q);
    free(k);
    free(v);

    /* matmul with a Q4_K W (70 rows: two full 32-row panels and a partial one; K = 512,
     * four k-blocks) and with an f32 W of odd sizes */
    kb_block_q4k *wq = malloc(sizeof(kb_block_q4k) * 70 * 2);
    random_q4k(wq, 70 * 2);
    double *xm = rnd_array(9 * 512, 2);
    const matmul_ctx mq = {70, 9, 512, KB_Q4K, wq, xm};
    check_thread_invariance("matmul Q4_K W 70x9x512", run_matmul, &mq, 70 * 9, 1);
    float *wf = malloc(sizeof(float) * 45 * 133);
    for (int i = 0; i < 45 * 133; i++) wf[i] = (float)rnd();
    const matmul_ctx mf = {45, 3, 133, KB_F32, wf, xm};
    check_thread_invariance("matmul f32 W 45x3x133", run_matmul, &mf, 45 * 3, 1);

    /* dequant and embed of Q6_K (37 rows of 512) and Q4_K tables */
    kb_block_q6k *t6 = malloc(sizeof(kb_block_q6k) * 37 * 2);
    random_q6k(t6, 37 * 2);
    const int32_t ids[11] = {36, 0, 5, 5, 17, 1, 35, 2, 0, 36, 20};
    const table_ctx d6 = {KB_Q6K, t6, 37, 512, 0, NULL};
    check_thread_invariance("dequant Q6_K 37 x 512", run_dequant, &d6, 37 * 512, 1);
    const table_ctx e6 = {KB_Q6K, t6, 37, 512, 11, ids};
    check_thread_invariance("embed Q6_K 11 ids of 37 x 512", run_embed, &e6, 11 * 512, 1);
    const table_ctx e4 = {KB_Q4K, wq, 35, 1024, 11, ids}; /* the same blocks as 35 rows of 1024 */
    check_thread_invariance("embed Q4_K 11 ids of 35 x 1024", run_embed, &e4, 11 * 1024, 1);

    /* quant_fp8 of f32 rows (203 x 300, every mode, both targets, flush on and off) and
     * of the Q6_K table (37 x 512, blk128) */
    float *xf = malloc(sizeof(float) * 203 * 300);
    for (int i = 0; i < 203 * 300; i++) xf[i] = (float)(rnd() * (i % 7 == 0 ? 100 : 1));
    for (int mode = 0; mode < KB_SCALE_COUNT; mode++)
        for (int t = 0; t < 2; t++) {
            const quant_ctx qc = {{203, 300, KB_F32, t ? KB_E5M2 : KB_E4M3, (kb_scale_mode)mode, mode & 1}, xf};
            char what[96];
            snprintf(what, sizeof what, "quant_fp8 203x300 %s %s flush %d", kb_scale_mode_name(qc.a.mode),
                     kb_dtype_name(qc.a.fp8), qc.a.flush);
            check_thread_invariance(what, run_quant, &qc, (size_t)(203 * 300 + kb_scale_count(qc.a.mode, 203, 300)), 1);
        }
    const quant_ctx q6 = {{37, 512, KB_Q6K, KB_E4M3, KB_SCALE_BLK128, 0}, t6};
    check_thread_invariance("quant_fp8 Q6_K 37x512 blk128", run_quant, &q6,
                            (size_t)(37 * 512 + kb_scale_count(KB_SCALE_BLK128, 37, 512)), 1);
    free(xf);
    free(wq);
    free(xm);
    free(wf);
    free(t6);
}

/* ---- the fast references against their plain-loop transcriptions ---------- */
/* ref/gemm.c and ref/attention.c reorganise their loops for speed but promise the
 * operation sequence of the definition for every output. These plain loops are that
 * sequence, written out once more; the results must agree in every bit. */

/* one output of gemm_fp8 (scaled) or matmul (sa = sb = NULL): block sums of 128 in
 * k order, then the blocks in order, the scales as ref/gemm.c's header defines */
static double plain_gemm_one(kb_scale_mode mode, int64_t K, const double *w, const double *x, const float *sa,
                             const float *sb, int64_t n, int64_t m) {
    const int64_t kb = (K + 127) / 128;
    double total = 0;
    for (int64_t b = 0; b < kb; b++) {
        double block = 0;
        for (int64_t k = 128 * b; k < K && k < 128 * b + 128; k++) block += w[m * K + k] * x[n * K + k];
        if (sa && mode == KB_SCALE_VEC128)
            total += (double)sa[m * kb + b] * (double)sb[n * kb + b] * block;
        else if (sa && mode == KB_SCALE_BLK128)
            total += (double)sa[(m / 128) * kb + b] * (double)sb[n * kb + b] * block;
        else
            total += block;
    }
    if (sa && mode == KB_SCALE_TENSOR) return (double)sa[0] * (double)sb[0] * total;
    if (sa && mode == KB_SCALE_OUTER) return (double)sa[m] * (double)sb[n] * total;
    return total;
}

static void plain_attention_one(const ref_attention_dims *c, const double *q, const double *k, const double *v,
                                int64_t i, int64_t h, double *out) {
    const int64_t d = c->head_dim, g = h / (c->heads / c->kv_heads), visible = c->kv_len - c->n + i + 1;
    double *e = malloc((size_t)visible * sizeof(double));
    double mx = 0, z = 0;
    for (int64_t j = 0; j < visible; j++) {
        double s = 0;
        for (int64_t l = 0; l < d; l++) s += q[(i * c->heads + h) * d + l] * k[(j * c->kv_heads + g) * d + l];
        e[j] = s / sqrt((double)d);
        if (j == 0 || e[j] > mx) mx = e[j];
    }
    for (int64_t j = 0; j < visible; j++) {
        e[j] = exp(e[j] - mx);
        z += e[j];
    }
    for (int64_t l = 0; l < d; l++) {
        double o = 0;
        for (int64_t j = 0; j < visible; j++) o += e[j] * v[(j * c->kv_heads + g) * d + l];
        out[l] = o / z;
    }
    free(e);
}

static void test_plain_loops(void) {
    ref_gemm_fp8_dims c = {.m = 150, .n = 7, .k = 333, .a_type = KB_E4M3, .b_type = KB_E5M2};
    const int64_t kb = 3;
    uint8_t *w8 = malloc((size_t)(c.m * c.k)), *x8 = malloc((size_t)(c.n * c.k));
    double *w = malloc((size_t)(c.m * c.k) * sizeof(double)), *x = malloc((size_t)(c.n * c.k) * sizeof(double));
    float *sa = malloc((size_t)(c.m * kb) * sizeof(float)), *sb = malloc((size_t)(c.n * kb) * sizeof(float));
    for (int64_t i = 0; i < c.m * c.k; i++) w8[i] = kb_f32_to_e4m3((float)(rnd() * 448), 1);
    for (int64_t i = 0; i < c.n * c.k; i++) x8[i] = kb_f32_to_e5m2((float)(rnd() * 30000), 1);
    kb_decode(KB_E4M3, w8, w, c.m * c.k);
    kb_decode(KB_E5M2, x8, x, c.n * c.k);
    for (int64_t i = 0; i < c.m * kb; i++) sa[i] = (float)(0.3 + rnd() * 0.1);
    for (int64_t i = 0; i < c.n * kb; i++) sb[i] = (float)(0.7 + rnd() * 0.1);
    double *d = malloc((size_t)(c.m * c.n) * sizeof(double));
    for (int mode = 0; mode < KB_SCALE_COUNT; mode++) {
        c.scale_mode = (kb_scale_mode)mode;
        ref_gemm_fp8(&c, w8, x8, sa, sb, d, NULL);
        int same = 1;
        for (int64_t n = 0; n < c.n; n++)
            for (int64_t m = 0; m < c.m; m++)
                same &= d[n * c.m + m] == plain_gemm_one(c.scale_mode, c.k, w, x, sa, sb, n, m);
        CHECK(same, "gemm_fp8 150x7x333 %s equals the plain loop bit for bit", kb_scale_mode_name(c.scale_mode));
    }
    free(w8);
    free(x8);
    free(w);
    free(x);
    free(sa);
    free(sb);
    free(d);

    /* matmul: a Q4_K W of 37 rows x 768 (decoded once by kb_decode for the plain loop)
     * and random fp64 activations; no scales */
    const int64_t mm = 37, mn = 5, mk = 768;
    kb_block_q4k *wq = malloc(sizeof(kb_block_q4k) * (size_t)(mm * mk / KB_QK_K));
    random_q4k(wq, mm * mk / KB_QK_K);
    double *wd = malloc((size_t)(mm * mk) * sizeof(double)), *xm = rnd_array((size_t)(mn * mk), 3);
    kb_decode(KB_Q4K, wq, wd, mm * mk);
    double *om = malloc((size_t)(mm * mn) * sizeof(double));
    ref_matmul(mm, mn, mk, KB_Q4K, wq, xm, om, NULL);
    int same = 1;
    for (int64_t n = 0; n < mn; n++)
        for (int64_t m = 0; m < mm; m++) same &= om[n * mm + m] == plain_gemm_one(KB_SCALE_TENSOR, mk, wd, xm, NULL, NULL, n, m);
    CHECK(same, "matmul Q4_K W 37x5x768 equals the plain loop bit for bit");
    free(wq);
    free(wd);
    free(xm);
    free(om);

    ref_attention_dims a = {.n = 21, .kv_len = 50, .heads = 6, .kv_heads = 2, .head_dim = 12};
    const size_t qn = (size_t)(a.n * a.heads * a.head_dim), kvn = (size_t)(a.kv_len * a.kv_heads * a.head_dim);
    double *q = rnd_array(qn, 4), *k = rnd_array(kvn, 4), *v = rnd_array(kvn, 1);
    double *o = malloc(qn * sizeof(double)), one[12];
    ref_attention(&a, q, k, v, o, NULL);
    same = 1;
    for (int64_t i = 0; i < a.n; i++)
        for (int64_t h = 0; h < a.heads; h++) {
            plain_attention_one(&a, q, k, v, i, h, one);
            same &= same_bits(one, o + (i * a.heads + h) * a.head_dim, sizeof one);
        }
    CHECK(same, "attention 21x50 GQA 6/2 d12 equals the plain loop bit for bit");
    free(q);
    free(k);
    free(v);
    free(o);
}

int main(void) {
    kb_set_ref_threads(2); /* the hand cases also run through the pool */
    test_rmsnorm();
    test_rope();
    test_attention();
    test_gemm_2x2x2();
    test_gemm_blocks();
    test_kquant_dequant_embed();
    test_eltwise();
    test_matmul();
    kb_set_ref_threads(2);
    test_quant_fp8();
    test_round_decode();
    test_parallel_for();
    test_thread_invariance();
    test_plain_loops();
    printf("%d passed, %d failed\n", passed, failed);
    return failed || !passed ? 1 : 0;
}
