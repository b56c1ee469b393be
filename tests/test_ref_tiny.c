/* test_ref_tiny.c - the fp64 references on cases small enough to work out by hand,
 * plus the promise of ref.h that result bits do not depend on the thread count.
 *
 * Every expected value below is derived in the comment next to it, from the op's
 * definition, not from running the reference. Prints "N passed, M failed". */
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

/* |got - want| <= rel * |want| (rel = 0 demands equality) */
static void check_close(const char *what, double got, double want, double rel) {
    int ok = got == want || fabs(got - want) <= rel * fabs(want);
    if (!ok) printf("  %s: got %.17g want %.17g\n", what, got, want);
    check(ok, what);
}

static kb_case make_case(kb_op_id op) {
    kb_case c;
    memset(&c, 0, sizeof c);
    c.op = op;
    return c;
}

/* ---- rmsnorm ------------------------------------------------------------ */
static void test_rmsnorm(void) {
    /* x = [1, 3, 5, 7]: sum of squares 1 + 9 + 25 + 49 = 84, mean 21; eps = 4 makes
     * mean + eps = 25, rms = 5. w = [1, 2, 0.5, -1]:
     * y = x / 5 * w = [0.2, 1.2, 0.5, -1.4], mag = |y|. */
    kb_case c = make_case(KB_OP_RMSNORM);
    c.n = 1;
    c.k = 4;
    c.eps = 4.0;
    const float x[4] = {1, 3, 5, 7}, w[4] = {1, 2, 0.5f, -1};
    double y[4], mag[4];
    ref_rmsnorm(&c, x, w, y, mag);
    const double want[4] = {0.2, 1.2, 0.5, -1.4};
    for (int i = 0; i < 4; i++) {
        check_close("rmsnorm 1x4 y", y[i], want[i], 1e-15);
        check_close("rmsnorm 1x4 mag = |y|", mag[i], fabs(want[i]), 1e-15);
    }
    /* two rows, eps = 1e-6 (Qwen2.5): row [2, 2, 2, 2] has mean square 4, so
     * y = 2 / sqrt(4 + 1e-6) = 1 / sqrt(1 + 2.5e-7) = 0.99999987500002343...
     * (1 - h/2 + 3h^2/8 with h = 2.5e-7); row [0, 0, 0, 0] gives 0 / sqrt(1e-6) = 0. */
    c.n = 2;
    c.eps = 1e-6;
    const float x2[8] = {2, 2, 2, 2, 0, 0, 0, 0}, w2[4] = {1, 1, 1, 1};
    double y2[8];
    ref_rmsnorm(&c, x2, w2, y2, NULL);
    const double h = 2.5e-7, want_eps = 1.0 - h / 2 + 3 * h * h / 8;
    for (int i = 0; i < 4; i++) check_close("rmsnorm eps 1e-6", y2[i], want_eps, 1e-15);
    for (int i = 4; i < 8; i++) check(y2[i] == 0.0, "rmsnorm zero row stays 0");
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
     * A second token at pos 0 is left unchanged (all angles 0). */
    kb_case c = make_case(KB_OP_ROPE_NEOX);
    c.n = 2;
    c.heads = 1;
    c.head_dim = 4;
    c.theta = 10000.0;
    const float x[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    const int32_t pos[2] = {1, 0};
    double y[8], mag[8];
    ref_rope_neox(&c, x, pos, y, mag);
    const double want[4] = {-1.9841106485555495, 1.9599006674966640, 2.4623779024123159, 4.0197996683349945};
    for (int i = 0; i < 4; i++) check_close("rope d=4 pos 1 base 1e4", y[i], want[i], 2e-15);
    for (int i = 0; i < 4; i++) check(y[4 + i] == x[i], "rope pos 0 is the identity");
    /* mag_0 = |x0 cos1| + |x2 sin1| + |theta_0| (|x0 sin1| + |x2 cos1|)
     *       = 0.5403023058681398 + 2.5244129544236895 + 1 * (0.8414709848078965 + 1.6209069176044194)
     *       = 5.5270931627041452 */
    check_close("rope mag_0", mag[0], 5.5270931627041452, 1e-15);
    /* at pos 0 the angle term vanishes: mag_0 = |1 * 1| + |3 * 0| = 1 */
    check_close("rope mag at pos 0", mag[4], 1.0, 0);
}

/* ---- attention ---------------------------------------------------------- */
static void test_attention(void) {
    /* Prefill n = 2, kv_len = 2, one head, d = 4 (sqrt d = 2). q1 = [2, 0, 0, 0],
     * k0 = 0, k1 = [1, 0, 0, 0]: query 1 (position 1) scores s0 = 0, s1 = 2 / 2 = 1.
     * softmax: p0 = 1 / (1 + e) = 0.2689414213699951, p1 = e / (1 + e) = 0.7310585786300049.
     * v0 = [1, 0, 2, -4], v1 = [0, 1, 2, 4]:
     *   out1 = [p0, p1, 2, 4 (p1 - p0)] and 4 (p1 - p0) = 4 tanh(1/2) = 1.848468629040039.
     * Query 0 (position 0) sees only key 0: out0 = v0 exactly, whatever q0 is. */
    kb_case c = make_case(KB_OP_ATTENTION);
    c.n = 2;
    c.kv_len = 2;
    c.heads = 1;
    c.kv_heads = 1;
    c.head_dim = 4;
    const float q[8] = {5, -3, 1, 7, 2, 0, 0, 0};
    const float k[8] = {0, 0, 0, 0, 1, 0, 0, 0};
    const float v[8] = {1, 0, 2, -4, 0, 1, 2, 4};
    double out[8], mag[8];
    ref_attention(&c, q, k, v, out, mag);
    for (int i = 0; i < 4; i++) check(out[i] == v[i], "attention causal: query 0 sees key 0 only");
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
    kb_case g = make_case(KB_OP_ATTENTION);
    g.n = 1;
    g.kv_len = 1;
    g.heads = 4;
    g.kv_heads = 2;
    g.head_dim = 2;
    const float gq[8] = {1, 2, 3, 4, 5, 6, 7, 8}, gk[4] = {1, 1, -1, 1}, gv[4] = {1, -1, 2, -2};
    double gout[8];
    ref_attention(&g, gq, gk, gv, gout, NULL);
    for (int h = 0; h < 4; h++) {
        check(gout[2 * h] == gv[2 * (h / 2)] && gout[2 * h + 1] == gv[2 * (h / 2) + 1],
              "attention GQA: head h reads kv head h / (heads / kv_heads)");
    }
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
     *   D[1][0] = 1*-1.5 + 2*8 = 14.5       D[1][1] = 0.5*-1.5 - 3*8 = -24.75 */
    const float wf[4] = {1, 2, 0.5f, -3}, xf[4] = {4, 0.25f, -1.5f, 8};
    uint8_t w[4], x[4];
    encode_e4m3(wf, w, 4);
    encode_e4m3(xf, x, 4);
    kb_case c = make_case(KB_OP_GEMM_FP8);
    c.m = 2;
    c.n = 2;
    c.k = 2;
    c.a_type = KB_E4M3;
    c.b_type = KB_E4M3;
    c.out_type = KB_F32;
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
    float wf[M * K], xf[N * K];
    memset(wf, 0, sizeof wf);
    memset(xf, 0, sizeof xf);
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
    kb_case c = make_case(KB_OP_GEMM_FP8);
    c.m = M;
    c.n = N;
    c.k = K;
    c.a_type = KB_E4M3;
    c.b_type = KB_E4M3;
    c.out_type = KB_F32;
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
        check(zeros, "gemm 130x2x258: rows without entries are 0");
    }
    c.scale_mode = KB_SCALE_TENSOR;
    const float ta[1] = {2}, tb[1] = {0.25f};
    ref_gemm_fp8(&c, w, x, ta, tb, d, NULL);
    check_close("gemm 130x2x258 tensor", d[0 * M + 0], -2, 0);
    check_close("gemm 130x2x258 tensor", d[0 * M + 129], 14.5, 0);
    check_close("gemm 130x2x258 tensor", d[1 * M + 0], -0.5, 0);
    check_close("gemm 130x2x258 tensor", d[1 * M + 129], 1, 0);
}

/* ---- Q4_K decode, dequant and embed -------------------------------------- */
/* A hand-made block: d = 1 (fp16 0x3C00), dmin = 0.5 (0x3800).
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
 *      y[255] = 8*0 - 2 = -2. */
static const int q4k_sc[8] = {1, 2, 3, 4, 21, 6, 7, 8}, q4k_m[8] = {0, 1, 2, 3, 33, 2, 3, 4};

static void make_q4k_block(kb_block_q4k *b) {
    memset(b, 0, sizeof *b);
    b->d = 0x3C00;
    b->dmin = 0x3800;
    const uint8_t scales[12] = {0x41, 2, 3, 4, 0x80, 1, 2, 3, 0x15, 0x26, 0x37, 0x48};
    memcpy(b->scales, scales, 12);
    for (int i = 0; i < 128; i++) b->qs[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
}

static double q4k_expected(int i) {
    int c = i / 64, l = i % 64;
    if (l < 32) return q4k_sc[2 * c] * (l % 16) - 0.5 * q4k_m[2 * c];
    l -= 32;
    return q4k_sc[2 * c + 1] * (15 - l % 16) - 0.5 * q4k_m[2 * c + 1];
}

static void test_q4k_embed(void) {
    kb_block_q4k blk[2];
    make_q4k_block(&blk[0]);
    make_q4k_block(&blk[1]);
    blk[1].d = 0x4000; /* row 1: d = 2 doubles the sc part: y = 2 sc q - 0.5 m */
    double y[512];
    kb_case c = make_case(KB_OP_DEQUANT_Q4K);
    c.m = 2;
    c.k = 256;
    ref_dequant_q4k(&c, blk, y);
    int all = 1;
    for (int i = 0; i < 256; i++) all &= y[i] == q4k_expected(i);
    check(all, "dequant_q4k hand-made block, all 256 values");
    check(y[1] == 1 && y[33] == 27.5 && y[129] == 4.5 && y[255] == -2, "dequant_q4k spot values");
    all = 1;
    for (int i = 0; i < 256; i++) {
        int c4 = i / 64, l = i % 64, j = 2 * c4 + (l >= 32), q = l < 32 ? l % 16 : 15 - (l - 32) % 16;
        all &= y[256 + i] == 2.0 * q4k_sc[j] * q - 0.5 * q4k_m[j];
    }
    check(all, "dequant_q4k second row (d = 2)");

    /* embed from a Q4_K table of 2 rows: ids [1, 0, 1] pick rows 1, 0, 1 */
    kb_case e = make_case(KB_OP_EMBED);
    e.m = 2;
    e.k = 256;
    e.n = 3;
    e.a_type = KB_Q4K;
    const int32_t ids[3] = {1, 0, 1};
    double out[768];
    ref_embed(&e, blk, ids, out);
    check(memcmp(out, y + 256, 256 * sizeof(double)) == 0 && memcmp(out + 256, y, 256 * sizeof(double)) == 0 &&
              memcmp(out + 512, y + 256, 256 * sizeof(double)) == 0,
          "embed Q4_K rows by id");

    /* F16 table, 3 rows x 4: 0x3C00 = 1, 0xC000 = -2, 0x3555 = 1365/4096 = 0.333251953125,
     * 0x7BFF = 65504 (max), 0x0001 = 2^-24 (smallest subnormal), 0x8000 = -0. */
    const uint16_t t16[12] = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x8000, 0, 0x3800, 1, 2, 3, 4};
    e.m = 3;
    e.k = 4;
    e.n = 2;
    e.a_type = KB_F16;
    const int32_t ids16[2] = {0, 1};
    double o16[8];
    ref_embed(&e, t16, ids16, o16);
    check(o16[0] == 1 && o16[1] == -2 && o16[2] == 0.333251953125 && o16[3] == 65504, "embed F16 row 0");
    check(o16[4] == ldexp(1, -24) && o16[5] == 0 && signbit(o16[5]) && o16[6] == 0 && o16[7] == 0.5,
          "embed F16 row 1");
    /* an id outside the table gives a NaN row */
    const int32_t bad[2] = {3, -1};
    ref_embed(&e, t16, bad, o16);
    check(isnan(o16[0]) && isnan(o16[7]), "embed: out-of-range id gives NaN");
}

/* ---- kb_round_to / kb_decode ------------------------------------------- */
static void test_round_decode(void) {
    /* Round to nearest, not through float: 1 + 2^-11 + 2^-40 is just above the half-way
     * point between the fp16 neighbours 1 and 1 + 2^-10, so it rounds up to 0x3C01;
     * (float) of it is exactly the half-way point, which would tie to even (0x3C00). */
    const double f16_case = 1.0 + ldexp(1, -11) + ldexp(1, -40);
    uint16_t h;
    kb_round_to(KB_F16, &f16_case, &h, 1);
    check(h == 0x3C01, "round_to f16: correct rounding just above a tie");
    const double tie = 1.0 + ldexp(1, -11); /* an exact tie: to even, 0x3C00 */
    kb_round_to(KB_F16, &tie, &h, 1);
    check(h == 0x3C00, "round_to f16: exact tie goes to even");
    const double bf_case = 1.0 + ldexp(1, -8) + ldexp(1, -40); /* bf16 neighbours 1, 1 + 2^-7 */
    kb_round_to(KB_BF16, &bf_case, &h, 1);
    check(h == 0x3F81, "round_to bf16: correct rounding just above a tie");
    const double below = -(1.0 + ldexp(1, -8) - ldexp(1, -40)); /* just below the tie: down */
    kb_round_to(KB_BF16, &below, &h, 1);
    check(h == 0xBF80, "round_to bf16: just below a tie rounds down (negative)");
    uint8_t b;
    const double e4_case = 1.0 + ldexp(1, -4) + ldexp(1, -40); /* e4m3 neighbours 1, 1.125 */
    kb_round_to(KB_E4M3, &e4_case, &b, 1);
    check(b == 0x39, "round_to e4m3: correct rounding just above a tie");
    const double big = 500; /* past 448 + half an ulp (464): NaN in the non-saturating codec */
    kb_round_to(KB_E4M3, &big, &b, 1);
    check((b & 0x7F) == 0x7F, "round_to e4m3: overflow is NaN");
    const double big5 = 1e6; /* e5m2 overflows to inf (0x7C) */
    kb_round_to(KB_E5M2, &big5, &b, 1);
    check(b == 0x7C, "round_to e5m2: overflow is inf");
    const double f32_case = 1.0 + ldexp(1, -24) + ldexp(1, -40);
    float f;
    kb_round_to(KB_F32, &f32_case, &f, 1);
    check(f == 1.0f + 0x1p-23f, "round_to f32: nearest");
    const double tiny = ldexp(1, -30); /* far below half the smallest fp16 subnormal (2^-25): +0 */
    kb_round_to(KB_F16, &tiny, &h, 1);
    check(h == 0, "round_to f16: underflow to +0");
    const double big16 = 65520; /* the half-way point above 65504 rounds to inf */
    kb_round_to(KB_F16, &big16, &h, 1);
    check(h == 0x7C00, "round_to f16: 65520 overflows to inf");

    const int32_t i32[3] = {-7, 0, 2147483647};
    double dd[3];
    kb_decode(KB_I32, i32, dd, 3);
    check(dd[0] == -7 && dd[1] == 0 && dd[2] == 2147483647.0, "decode i32");
    const uint8_t e4[3] = {0x7E, 0x01, 0xB8}; /* 448, 2^-9, -1 */
    kb_decode(KB_E4M3, e4, dd, 3);
    check(dd[0] == 448 && dd[1] == ldexp(1, -9) && dd[2] == -1, "decode e4m3");
    const uint8_t e5[3] = {0x7B, 0x01, 0xC0}; /* 57344, 2^-16, -2 */
    kb_decode(KB_E5M2, e5, dd, 3);
    check(dd[0] == 57344 && dd[1] == ldexp(1, -16) && dd[2] == -2, "decode e5m2");
    const uint16_t bf[2] = {0x3F80, 0xC2F7}; /* 1, -123.5 */
    kb_decode(KB_BF16, bf, dd, 2);
    check(dd[0] == 1 && dd[1] == -123.5, "decode bf16");
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
    check(ok, "kb_parallel_for calls each index exactly once (1..5 threads, n 0..11)");
    kb_set_ref_threads(3);
    check(kb_ref_threads() == 3, "kb_ref_threads reports the setting");
    kb_set_ref_threads(0);
    check(kb_ref_threads() >= 1, "kb_ref_threads(0) = online cores");
}

static uint64_t rng_state = 42;
static double rnd(void) { /* splitmix64 -> [-1, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

static void test_thread_invariance(void) {
    /* gemm 203 x 37 x 300 (edges in every tile direction, K past two blocks) in every
     * scale mode, attention prefill with GQA, rmsnorm, rope: 1, 2, 3 threads bit-identical */
    kb_case c = make_case(KB_OP_GEMM_FP8);
    c.m = 203;
    c.n = 37;
    c.k = 300;
    c.a_type = KB_E4M3;
    c.b_type = KB_E5M2;
    c.out_type = KB_F32;
    const int kb = 3;
    uint8_t *w = malloc((size_t)(c.m * c.k)), *x = malloc((size_t)(c.n * c.k));
    float *sa = malloc(sizeof(float) * (size_t)(c.m * kb)), *sb = malloc(sizeof(float) * (size_t)(c.n * kb));
    for (int64_t i = 0; i < c.m * c.k; i++) w[i] = kb_f32_to_e4m3((float)(rnd() * 400), 1);
    for (int64_t i = 0; i < c.n * c.k; i++) x[i] = kb_f32_to_e5m2((float)(rnd() * 1000), 1);
    for (int64_t i = 0; i < c.m * kb; i++) sa[i] = (float)(1 + rnd() * 0.5);
    for (int64_t i = 0; i < c.n * kb; i++) sb[i] = (float)(1 + rnd() * 0.5);
    const size_t outn = (size_t)(c.m * c.n);
    double *d[3], *mg[3];
    for (int mode = 0; mode < KB_SCALE_COUNT; mode++) {
        c.scale_mode = (kb_scale_mode)mode;
        for (int t = 0; t < 3; t++) {
            d[t] = malloc(outn * sizeof(double));
            mg[t] = malloc(outn * sizeof(double));
            kb_set_ref_threads(t + 1);
            ref_gemm_fp8(&c, w, x, sa, sb, d[t], mg[t]);
        }
        int same = 1;
        for (int t = 1; t < 3; t++)
            same &= memcmp(d[0], d[t], outn * sizeof(double)) == 0 && memcmp(mg[0], mg[t], outn * sizeof(double)) == 0;
        char what[96];
        snprintf(what, sizeof what, "gemm 203x37x300 %s: 1, 2, 3 threads bit-identical",
                 kb_scale_mode_name(c.scale_mode));
        check(same, what);
        for (int t = 0; t < 3; t++) {
            free(d[t]);
            free(mg[t]);
        }
    }
    free(w);
    free(x);
    free(sa);
    free(sb);

    kb_case a = make_case(KB_OP_ATTENTION);
    a.n = 9;
    a.kv_len = 45;
    a.heads = 6;
    a.kv_heads = 2;
    a.head_dim = 16;
    const size_t qn = (size_t)(a.n * a.heads * a.head_dim), kvn = (size_t)(a.kv_len * a.kv_heads * a.head_dim);
    float *q = malloc(qn * sizeof(float)), *k = malloc(kvn * sizeof(float)), *v = malloc(kvn * sizeof(float));
    for (size_t i = 0; i < qn; i++) q[i] = (float)(rnd() * 3);
    for (size_t i = 0; i < kvn; i++) k[i] = (float)(rnd() * 3);
    for (size_t i = 0; i < kvn; i++) v[i] = (float)rnd();
    for (int t = 0; t < 3; t++) {
        d[t] = malloc(qn * sizeof(double));
        mg[t] = malloc(qn * sizeof(double));
        kb_set_ref_threads(t + 1);
        ref_attention(&a, q, k, v, d[t], mg[t]);
    }
    int same = 1;
    for (int t = 1; t < 3; t++)
        same &= memcmp(d[0], d[t], qn * sizeof(double)) == 0 && memcmp(mg[0], mg[t], qn * sizeof(double)) == 0;
    check(same, "attention 9x45 GQA 6/2 d16: 1, 2, 3 threads bit-identical");

    /* rope and rmsnorm on the same q data (9 tokens x 96) */
    kb_case r = make_case(KB_OP_ROPE_NEOX);
    r.n = a.n;
    r.heads = a.heads;
    r.head_dim = a.head_dim;
    r.theta = 1e6;
    int32_t pos[9] = {0, 1, 7, 100, 4095, 32767, 65536, 131071, 3};
    kb_case nrm = make_case(KB_OP_RMSNORM);
    nrm.n = a.n;
    nrm.k = a.heads * a.head_dim;
    nrm.eps = 1e-6;
    double *rr[3], *nn[3];
    for (int t = 0; t < 3; t++) {
        rr[t] = malloc(qn * sizeof(double));
        nn[t] = malloc(qn * sizeof(double));
        kb_set_ref_threads(t + 1);
        ref_rope_neox(&r, q, pos, rr[t], NULL);
        ref_rmsnorm(&nrm, q, k, nn[t], NULL);
    }
    same = 1;
    for (int t = 1; t < 3; t++)
        same &= memcmp(rr[0], rr[t], qn * sizeof(double)) == 0 && memcmp(nn[0], nn[t], qn * sizeof(double)) == 0;
    check(same, "rope and rmsnorm: 1, 2, 3 threads bit-identical");
    for (int t = 0; t < 3; t++) {
        free(d[t]);
        free(mg[t]);
        free(rr[t]);
        free(nn[t]);
    }
    free(q);
    free(k);
    free(v);
    kb_set_ref_threads(0);
}

/* ---- the fast references against their plain-loop transcriptions ---------- */
/* ref_ops.c reorganises the GEMM and attention loops for speed but promises the
 * operation sequence of the definition for every output. These plain loops are that
 * sequence, written out once more; the results must agree in every bit. */
static double plain_gemm_one(const kb_case *c, const double *w, const double *x, const float *sa, const float *sb,
                             int64_t n, int64_t m) {
    const int64_t kb = (c->k + 127) / 128;
    double total = 0;
    for (int64_t b = 0; b < kb; b++) {
        double block = 0;
        for (int64_t k = 128 * b; k < c->k && k < 128 * b + 128; k++) block += w[m * c->k + k] * x[n * c->k + k];
        if (c->scale_mode == KB_SCALE_VEC128)
            total += (double)sa[m * kb + b] * (double)sb[n * kb + b] * block;
        else if (c->scale_mode == KB_SCALE_BLK128)
            total += (double)sa[(m / 128) * kb + b] * (double)sb[n * kb + b] * block;
        else
            total += block;
    }
    if (c->scale_mode == KB_SCALE_TENSOR) return (double)sa[0] * (double)sb[0] * total;
    if (c->scale_mode == KB_SCALE_OUTER) return (double)sa[m] * (double)sb[n] * total;
    return total;
}

static void plain_attention_one(const kb_case *c, const float *q, const float *k, const float *v, int64_t i,
                                int64_t h, double *out) {
    const int64_t d = c->head_dim, g = h / (c->heads / c->kv_heads), visible = c->kv_len - c->n + i + 1;
    double *e = malloc((size_t)visible * sizeof(double));
    double mx = 0, z = 0;
    for (int64_t j = 0; j < visible; j++) {
        double s = 0;
        for (int64_t l = 0; l < d; l++) s += (double)q[(i * c->heads + h) * d + l] * k[(j * c->kv_heads + g) * d + l];
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
    kb_case c = make_case(KB_OP_GEMM_FP8);
    c.m = 150;
    c.n = 7;
    c.k = 333;
    c.a_type = KB_E4M3;
    c.b_type = KB_E5M2;
    c.out_type = KB_F32;
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
            for (int64_t m = 0; m < c.m; m++) same &= d[n * c.m + m] == plain_gemm_one(&c, w, x, sa, sb, n, m);
        char what[96];
        snprintf(what, sizeof what, "gemm 150x7x333 %s equals the plain loop bit for bit",
                 kb_scale_mode_name(c.scale_mode));
        check(same, what);
    }
    free(w8);
    free(x8);
    free(w);
    free(x);
    free(sa);
    free(sb);
    free(d);

    kb_case a = make_case(KB_OP_ATTENTION);
    a.n = 21;
    a.kv_len = 50;
    a.heads = 6;
    a.kv_heads = 2;
    a.head_dim = 12;
    const size_t qn = (size_t)(a.n * a.heads * a.head_dim), kvn = (size_t)(a.kv_len * a.kv_heads * a.head_dim);
    float *q = malloc(qn * sizeof(float)), *k = malloc(kvn * sizeof(float)), *v = malloc(kvn * sizeof(float));
    for (size_t i = 0; i < qn; i++) q[i] = (float)(rnd() * 4);
    for (size_t i = 0; i < kvn; i++) k[i] = (float)(rnd() * 4);
    for (size_t i = 0; i < kvn; i++) v[i] = (float)rnd();
    double *o = malloc(qn * sizeof(double)), one[12];
    ref_attention(&a, q, k, v, o, NULL);
    int same = 1;
    for (int64_t i = 0; i < a.n; i++)
        for (int64_t h = 0; h < a.heads; h++) {
            plain_attention_one(&a, q, k, v, i, h, one);
            same &= memcmp(one, o + (i * a.heads + h) * a.head_dim, sizeof one) == 0;
        }
    check(same, "attention 21x50 GQA 6/2 d12 equals the plain loop bit for bit");
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
    test_q4k_embed();
    test_round_decode();
    test_parallel_for();
    test_thread_invariance();
    test_plain_loops();
    printf("%d passed, %d failed\n", passed, failed);
    return failed || !passed ? 1 : 0;
}
