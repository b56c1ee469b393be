/* test_formats.c - checks of ref/formats.c that need no Python.
 *
 *  1. Hand-computed blocks: Q4_K blocks (and one Q6_K block) whose values were worked
 *     out by hand from docs/FORMATS.md's formulas; the expected numbers are
 *     literals below, with the arithmetic in comments.
 *  2. Codec self-consistency: every code of fp16, bf16, e4m3, e5m2 survives
 *     decode -> encode; encoding a sweep of float32s is monotone, picks the nearest
 *     representable value, breaks ties to the even code, and overflows / saturates /
 *     handles NaN as formats.h says.
 *  3. Golden Q4_K quantizer output: the FNV-1a hash of kb_quantize_q4k's blocks for a
 *     fixed input, equal to the hash of ggml's own quantize_row_q4_K_ref on the same
 *     input (ggml 0.25.3 as vendored by llama-cpp-python 0.3.36, built without
 *     -march, run once by hand; the value is pinned here).
 *  4. Q6_K quantizer bound: every value within half a group step.
 * Prints `N passed, M failed`; exits non-zero on any failure. */
#include "ref/formats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_pass, g_fail;

static void check(int ok, const char *what) {
    if (ok) {
        g_pass++;
    } else {
        g_fail++;
        printf("FAIL: %s\n", what);
    }
}

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- 1. hand-computed blocks ----------------------------------------------- */

/* Block A: d = 1.0 (0x3C00), dmin = 0.5 (0x3800).
 * Sub-block scales sc = {1, 2, 3, 4, 63, 32, 17, 5}, mins m = {0, 1, 2, 3, 4, 63, 40, 16}.
 * Packing (docs/FORMATS.md): for j < 4, scales[j] = sc[j] | (sc[j+4] >> 4) << 6,
 * scales[j+4] = m[j] | (m[j+4] >> 4) << 6, scales[j+8] = (sc[j+4] & 15) | (m[j+4] & 15) << 4:
 *   scales[0] = 1 | 3<<6 = 0xC1   scales[4] = 0 | 0<<6 = 0x00   scales[8]  = 15 | 4<<4  = 0x4F
 *   scales[1] = 2 | 2<<6 = 0x82   scales[5] = 1 | 3<<6 = 0xC1   scales[9]  = 0  | 15<<4 = 0xF0
 *   scales[2] = 3 | 1<<6 = 0x43   scales[6] = 2 | 2<<6 = 0x82   scales[10] = 1  | 8<<4  = 0x81
 *   scales[3] = 4 | 0<<6 = 0x04   scales[7] = 3 | 1<<6 = 0x43   scales[11] = 5  | 0<<4  = 0x05
 * qs[32c + l] = (l & 15) | (15 - (l & 15)) << 4: sub-block 2c sees q = l & 15,
 * sub-block 2c+1 sees q = 15 - (l & 15). y = d*sc*q - dmin*m. */
static const uint8_t kBlockA_scales[12] = {0xC1, 0x82, 0x43, 0x04, 0x00, 0xC1, 0x82, 0x43, 0x4F, 0xF0, 0x81, 0x05};
static const uint8_t kBlockA_sc[8] = {1, 2, 3, 4, 63, 32, 17, 5};
static const uint8_t kBlockA_m[8] = {0, 1, 2, 3, 4, 63, 40, 16};

static const struct {
    int index;
    float value;
} kBlockA_expect[] = {
    {0, 0.0f},       /* sub 0, q 0:  1*0 - 0.5*0 */
    {5, 5.0f},       /* sub 0, q 5:  1*5 - 0 */
    {31, 15.0f},     /* sub 0, l 31 -> q 15: 1*15 - 0 */
    {32, 29.5f},     /* sub 1, q 15: 2*15 - 0.5*1 */
    {47, -0.5f},     /* sub 1, l 15 -> q 0: 2*0 - 0.5 */
    {71, 20.0f},     /* sub 2, q 7:  3*7 - 0.5*2 */
    {99, 46.5f},     /* sub 3, l 3 -> q 12: 4*12 - 0.5*3 */
    {143, 943.0f},   /* sub 4, l 15 -> q 15: 63*15 - 0.5*4 */
    {160, 448.5f},   /* sub 5, l 0 -> q 15: 32*15 - 0.5*63 */
    {175, -31.5f},   /* sub 5, l 15 -> q 0: 32*0 - 31.5 */
    {201, 133.0f},   /* sub 6, q 9:  17*9 - 0.5*40 */
    {224, 67.0f},    /* sub 7, l 0 -> q 15: 5*15 - 0.5*16 */
    {255, -8.0f},    /* sub 7, l 31 -> q 0: 5*0 - 8 */
};

static void make_block_a(kb_block_q4k *b) {
    memset(b, 0, sizeof *b);
    b->d = 0x3C00;
    b->dmin = 0x3800;
    memcpy(b->scales, kBlockA_scales, 12);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            b->qs[32 * c + l] = (uint8_t)((l & 15) | ((15 - (l & 15)) << 4));
        }
    }
}

static void test_hand_q4k(void) {
    char msg[160];
    kb_block_q4k b;
    float y[KB_QK_K];
    make_block_a(&b);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kb_q4k_scale_min(j, b.scales, &sc, &m);
        snprintf(msg, sizeof msg, "Q4_K block A sub-block %d: sc %u m %u, want %u %u", j, sc, m, kBlockA_sc[j],
                 kBlockA_m[j]);
        check(sc == kBlockA_sc[j] && m == kBlockA_m[j], msg);
    }
    kb_dequant_q4k(&b, y, 1);
    for (size_t i = 0; i < sizeof kBlockA_expect / sizeof kBlockA_expect[0]; i++) {
        const int at = kBlockA_expect[i].index;
        snprintf(msg, sizeof msg, "Q4_K block A y[%d] = %.9g, want %.9g", at, y[at], kBlockA_expect[i].value);
        check(y[at] == kBlockA_expect[i].value, msg);
    }

    /* Block B: rounding in the final subtraction. d = 0x3C01 = 1 + 2^-10, sc(0) = 63,
     * dmin = 0x0001 = 2^-24 (fp16 subnormal), m(0) = 1, q = 15:
     * d*sc = 63 + 63*2^-10 = 63.0615234375 (exact), *15 = 945.9228515625 (exact),
     * minus 2^-24: float spacing at 945 is 2^-14, so the result rounds back to
     * 945.9228515625. q = 1 in sub-block 1 (sc 1, m 0): 1 + 2^-10 = 1.0009765625. */
    memset(&b, 0, sizeof b);
    b.d = 0x3C01;
    b.dmin = 0x0001;
    b.scales[0] = 63;
    b.scales[4] = 1;
    b.scales[1] = 1;
    b.qs[0] = 0x1F; /* low nibble 15 (y[0]), high nibble 1 (y[32]) */
    kb_dequant_q4k(&b, y, 1);
    snprintf(msg, sizeof msg, "Q4_K block B y[0] = %.12g, want 945.9228515625", y[0]);
    check(y[0] == 945.9228515625f, msg);
    snprintf(msg, sizeof msg, "Q4_K block B y[1] = %.12g, want -2^-24 (q 0 - dmin*m)", y[1]);
    check(y[1] == -0x1p-24f, msg);
    snprintf(msg, sizeof msg, "Q4_K block B y[32] = %.12g, want 1.0009765625", y[32]);
    check(y[32] == 1.0009765625f, msg);
    snprintf(msg, sizeof msg, "Q4_K block B y[64] = %.12g, want 0 (sc 0, m 0)", y[64]);
    check(y[64] == 0.0f, msg);

    /* Block C: d = 0x0001 = 2^-24 (smallest fp16 subnormal), sc(7) = 1 via the split
     * packing (scales[11] low nibble 1, scales[3] top bits 0), q = 1 in the high nibble
     * of the last chunk: y[224] = 2^-24 * 1 * 1 - 0 = 2^-24. */
    memset(&b, 0, sizeof b);
    b.d = 0x0001;
    b.scales[11] = 0x01;
    b.qs[96] = 0x10;
    kb_dequant_q4k(&b, y, 1);
    check(y[224] == 0x1p-24f && y[225] == 0.0f && y[192] == 0.0f, "Q4_K block C: subnormal d, sub-block 7");

    /* Two blocks in a row: the second must not reuse the first's scales. */
    kb_block_q4k two[2];
    float y2[2 * KB_QK_K];
    make_block_a(&two[0]);
    two[1] = b;
    kb_dequant_q4k(two, y2, 2);
    check(y2[143] == 943.0f && y2[KB_QK_K + 224] == 0x1p-24f && y2[KB_QK_K + 143] == 0.0f,
          "Q4_K two blocks dequantize independently");
}

/* Q6_K block: d = 0.5 (0x3800), scales[g] = g - 8 (negative ones included), L = 6-bit
 * code, q = L - 32, y = d*scales[g]*q. Index pattern (dequantize_row_q6_K): in half h,
 * value n (0..127), l = n & 31, quadrant = n >> 5:
 *   quadrant 0: ql[64h + l] low nibble,  qh[32h + l] bits 0-1
 *   quadrant 1: ql[64h + 32 + l] low,    qh bits 2-3
 *   quadrant 2: ql[64h + l] high nibble, qh bits 4-5
 *   quadrant 3: ql[64h + 32 + l] high,   qh bits 6-7;  group g = 8h + n/16. */
static void test_hand_q6k(void) {
    kb_block_q6k b;
    float y[KB_QK_K];
    char msg[160];
    memset(&b, 0, sizeof b);
    b.d = 0x3800;
    for (int g = 0; g < 16; g++) b.scales[g] = (int8_t)(g - 8);
    /* value 3 (half 0, quadrant 0, group 0): L = 0x3F = 63 -> q 31; ql[3] low = 15, qh[3] bits0-1 = 3
     *   y = 0.5 * (-8) * 31 = -124
     * value 40 (half 0, quadrant 1, l 8, group 2): L = 0 -> q -32; ql[40] low = 0, qh[8] bits2-3 = 0
     *   y = 0.5 * (-6) * (-32) = 96
     * value 85 (half 0, quadrant 2, l 21, group 5): L = 0x25 = 37 -> q 5; ql[21] high = 5, qh[21] bits4-5 = 2
     *   y = 0.5 * (-3) * 5 = -7.5
     * value 255 (half 1, quadrant 3, l 31, group 15): L = 33 -> q 1; ql[64+32+31] high = 1, qh[32+31] bits6-7 = 2
     *   y = 0.5 * 7 * 1 = 3.5
     * every other value: L = 32 -> q 0 -> y 0 (low/high nibble 0, qh bits 2) */
    for (int i = 0; i < 128; i++) b.ql[i] = 0x00;
    for (int i = 0; i < 64; i++) b.qh[i] = 0xAA; /* every 2-bit field = 2 -> L = 32 */
    b.ql[3] = 0x0F;
    b.qh[3] = (uint8_t)((b.qh[3] & ~0x03) | 0x03);
    b.qh[8] = (uint8_t)(b.qh[8] & ~0x0C);
    b.ql[21] = 0x50;
    b.qh[21] = (uint8_t)((b.qh[21] & ~0x30) | 0x20);
    b.ql[64 + 32 + 31] = 0x10;
    b.qh[32 + 31] = (uint8_t)((b.qh[32 + 31] & ~0xC0) | 0x80);
    kb_dequant_q6k(&b, y, 1);
    const int idx[4] = {3, 40, 85, 255};
    const float want[4] = {-124.0f, 96.0f, -7.5f, 3.5f};
    int others_zero = 1;
    for (int i = 0; i < KB_QK_K; i++) {
        if (i != 3 && i != 40 && i != 85 && i != 255 && y[i] != 0.0f) others_zero = 0;
    }
    for (int k = 0; k < 4; k++) {
        snprintf(msg, sizeof msg, "Q6_K hand block y[%d] = %.9g, want %.9g", idx[k], y[idx[k]], want[k]);
        check(y[idx[k]] == want[k], msg);
    }
    check(others_zero, "Q6_K hand block: all other values 0");
}

/* ---- 2. codec self-consistency ----------------------------------------------- */

typedef struct {
    const char *name;
    int bits;
    uint32_t max_code;  /* largest finite magnitude code */
    uint32_t over_code; /* magnitude code of a non-saturated overflow (inf or NaN) */
    uint32_t (*enc)(float, int);
    float (*dec)(uint32_t);
} codec;

static uint32_t enc_f16(float x, int s) { return kb_f32_to_f16(x, s); }
static float dec_f16(uint32_t c) { return kb_f16_to_f32((uint16_t)c); }
static uint32_t enc_bf16(float x, int s) { return kb_f32_to_bf16(x, s); }
static float dec_bf16(uint32_t c) { return kb_bf16_to_f32((uint16_t)c); }
static uint32_t enc_e4m3(float x, int s) { return kb_f32_to_e4m3(x, s); }
static float dec_e4m3(uint32_t c) { return kb_e4m3_to_f32((uint8_t)c); }
static uint32_t enc_e5m2(float x, int s) { return kb_f32_to_e5m2(x, s); }
static float dec_e5m2(uint32_t c) { return kb_e5m2_to_f32((uint8_t)c); }

static const codec kCodecs[] = {
    {"fp16", 16, 0x7BFF, 0x7C00, enc_f16, dec_f16},
    {"bf16", 16, 0x7F7F, 0x7F80, enc_bf16, dec_bf16},
    {"e4m3", 8, 0x7E, 0x7F, enc_e4m3, dec_e4m3},
    {"e5m2", 8, 0x7B, 0x7C, enc_e5m2, dec_e5m2},
};

static void test_codec(const codec *c) {
    char msg[200];
    const uint32_t sign = 1u << (c->bits - 1);
    const uint32_t ncodes = 1u << c->bits;

    /* every code: decode -> encode returns it (NaN -> some NaN of the same sign) */
    int bad_round_trip = 0;
    for (uint32_t code = 0; code < ncodes; code++) {
        const float v = c->dec(code);
        for (int sat = 0; sat < 2; sat++) {
            const uint32_t back = c->enc(v, sat);
            int ok;
            if (isnan(v)) {
                ok = isnan(c->dec(back)) && (back & sign) == (code & sign);
            } else if (isinf(v)) {
                ok = back == (sat ? (code & sign) | c->max_code : code);
            } else {
                ok = back == code;
            }
            if (!ok && bad_round_trip++ < 3) {
                printf("  %s code 0x%x -> %g -> 0x%x (saturate %d)\n", c->name, code, (double)v, back, sat);
            }
        }
    }
    snprintf(msg, sizeof msg, "%s: every code survives decode -> encode (%d bad)", c->name, bad_round_trip);
    check(bad_round_trip == 0, msg);

    /* positive float32 sweep (bit order = value order): monotone codes, nearest value,
     * ties to the even code, overflow per the format */
    int bad_mono = 0, bad_near = 0, bad_tie = 0, bad_over = 0, bad_sign = 0;
    uint32_t prev = 0;
    const double max_val = (double)c->dec(c->max_code);
    const double next_past_max = max_val + (max_val - (double)c->dec(c->max_code - 1));
    for (uint64_t u = 0; u < 0x7F800000u; u += 251) {
        const float x = bits_f32((uint32_t)u);
        const uint32_t code = c->enc(x, 0);
        const uint32_t code_sat = c->enc(x, 1);
        const uint32_t neg = c->enc(-x, 0);
        if (neg != (code | sign)) bad_sign++;
        if (code < prev) bad_mono++;
        prev = code;
        if (code > c->max_code) { /* overflow: only past the tie between max and the next step */
            const double tie = (max_val + next_past_max) / 2;
            const int max_is_even = (c->max_code & 1) == 0;
            if (code != c->over_code || (double)x < tie || ((double)x == tie && max_is_even) ||
                code_sat != c->max_code) {
                bad_over++;
            }
            continue;
        }
        if (code_sat != code) bad_over++;
        /* nearest: no other neighbour is strictly closer; a tie goes to the even code */
        const double v = (double)c->dec(code);
        const double err = fabs(v - (double)x);
        const double lo = code > 0 ? (double)c->dec(code - 1) : -INFINITY;
        const double hi = code < c->max_code ? (double)c->dec(code + 1) : next_past_max;
        const double err_lo = code > 0 ? fabs(lo - (double)x) : INFINITY;
        const double err_hi = fabs(hi - (double)x);
        if (err > err_lo || err > err_hi) {
            if (bad_near++ < 3) printf("  %s: %a -> 0x%x (%a) not nearest\n", c->name, (double)x, code, v);
        }
        if ((err == err_lo || err == err_hi) && err > 0 && (code & 1)) {
            if (bad_tie++ < 3) printf("  %s: tie %a -> odd code 0x%x\n", c->name, (double)x, code);
        }
    }
    snprintf(msg, sizeof msg, "%s: float32 sweep monotone (%d), nearest (%d), ties even (%d), overflow (%d), sign (%d)",
             c->name, bad_mono, bad_near, bad_tie, bad_over, bad_sign);
    check(!bad_mono && !bad_near && !bad_tie && !bad_over && !bad_sign, msg);

    /* specials */
    const float nan = bits_f32(0x7FC00000u);
    check(isnan(c->dec(c->enc(nan, 0))) && isnan(c->dec(c->enc(nan, 1))), "NaN encodes to NaN (both modes)");
    check(c->enc(INFINITY, 1) == c->max_code && c->enc(-INFINITY, 1) == (sign | c->max_code),
          "saturating +-inf -> +-max");
    check(c->enc(INFINITY, 0) == c->over_code && c->enc(-INFINITY, 0) == (sign | c->over_code),
          "non-saturating +-inf -> inf (NaN for e4m3)");
    check(c->enc(-0.0f, 0) == sign && c->enc(0.0f, 0) == 0, "+-0 keep their sign");
}

static void test_codecs(void) {
    for (size_t i = 0; i < sizeof kCodecs / sizeof kCodecs[0]; i++) test_codec(&kCodecs[i]);
    /* decoders: exact values at a few landmarks */
    check(kb_e4m3_to_f32(0x7E) == 448.0f && kb_e4m3_to_f32(0x01) == 0x1p-9f && isnan(kb_e4m3_to_f32(0xFF)),
          "e4m3 landmarks: 448, 2^-9, NaN");
    check(kb_e5m2_to_f32(0x7B) == 57344.0f && kb_e5m2_to_f32(0x01) == 0x1p-16f && isinf(kb_e5m2_to_f32(0xFC)),
          "e5m2 landmarks: 57344, 2^-16, -inf");
    check(kb_f16_to_f32(0x7BFF) == 65504.0f && kb_f16_to_f32(0x0001) == 0x1p-24f && kb_f16_to_f32(0x3555) == 0x1.554p-2f,
          "fp16 landmarks: 65504, 2^-24, 0x3555");
    check(kb_bf16_to_f32(0x7F7F) == 0x1.FEp127f && kb_bf16_to_f32(0x0001) == 0x1p-133f,
          "bf16 landmarks: max, smallest subnormal");
}

/* ---- 3. golden Q4_K quantizer output ------------------------------------------- */

static uint64_t fnv1a(const void *data, size_t n, uint64_t h) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* xorshift64: integer-only, so the input is the same on every platform */
static uint64_t g_rng;
static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

/* Golden input: nblocks*256 floats, exactly representable arithmetic only (sums of
 * integers times powers of two), so no libm call can change a bit. Per block a kind:
 * 0 near-normal (sum of 4 uniforms) * 2^-9, 1 uniform * 2^-3, 2 near-normal with 1%
 * outliers x64, 3 all positive, 4 per-sub-block scales 2^-12..2^2, 5 constant,
 * 6 all zero, 7 tiny (2^-22 scale: fp16-subnormal d). */
static void golden_input(float *x, int nblocks) {
    g_rng = 0x9E3779B97F4A7C15ull;
    for (int b = 0; b < nblocks; b++) {
        const int kind = b % 8;
        const float constant = (float)((int)(rnd32() % 2001) - 1000) * 0x1p-10f;
        for (int i = 0; i < KB_QK_K; i++) {
            const int sum4 = (int)(rnd32() % 1024) + (int)(rnd32() % 1024) + (int)(rnd32() % 1024) +
                             (int)(rnd32() % 1024) - 2046;
            const int uni = (int)(rnd32() % 4096) - 2048;
            float v;
            switch (kind) {
            case 0: v = (float)sum4 * 0x1p-9f * 0x1p-9f; break;
            case 1: v = (float)uni * 0x1p-3f * 0x1p-11f; break;
            case 2: v = (float)sum4 * 0x1p-18f * ((rnd32() % 100) == 0 ? 64.0f : 1.0f); break;
            case 3: v = (float)(uni + 4096) * 0x1p-14f; break;
            case 4: v = (float)sum4 * ldexpf(1.0f, -12 - 10 + 2 * (i / 32)); break;
            case 5: v = constant; break;
            case 6: v = 0.0f; break;
            default: v = (float)sum4 * 0x1p-22f * 0x1p-10f; break;
            }
            x[b * KB_QK_K + i] = v;
        }
    }
}

#define GOLDEN_BLOCKS 512
/* FNV-1a of ggml's quantize_row_q4_K_ref output on golden_input(GOLDEN_BLOCKS),
 * one hash per input kind (blocks of kind k are b % 8 == k). */
static const uint64_t kGoldenQ4K[8] = {
    0xe3a1fb73a6f567bfull, 0x8d1c0c794a9941ccull, 0xe030b6dde6083313ull, 0x8a9d47409f48bc1eull,
    0x73745b7cb0d0a189ull, 0x1a88258add6a9f14ull, 0xf3fb6a6deb5af325ull, 0x8f1117eb76b08a23ull,
};

static void golden_hashes(const kb_block_q4k *y, int nblocks, uint64_t out[8]) {
    for (int k = 0; k < 8; k++) out[k] = 0xcbf29ce484222325ull;
    for (int b = 0; b < nblocks; b++) out[b % 8] = fnv1a(&y[b], sizeof y[b], out[b % 8]);
}

static void test_golden_q4k(void) {
    float *x = malloc(sizeof(float) * KB_QK_K * GOLDEN_BLOCKS);
    kb_block_q4k *y = malloc(sizeof(kb_block_q4k) * GOLDEN_BLOCKS);
    if (!x || !y) {
        check(0, "golden: out of memory");
        free(x);
        free(y);
        return;
    }
    golden_input(x, GOLDEN_BLOCKS);
    kb_quantize_q4k(x, y, GOLDEN_BLOCKS);
    uint64_t h[8];
    golden_hashes(y, GOLDEN_BLOCKS, h);
    for (int k = 0; k < 8; k++) {
        char msg[160];
        snprintf(msg, sizeof msg, "Q4_K golden kind %d: hash 0x%016llx, ggml's 0x%016llx", k, (unsigned long long)h[k],
                 (unsigned long long)kGoldenQ4K[k]);
        check(h[k] == kGoldenQ4K[k], msg);
    }
    /* the all-zero kind must be all-zero bytes */
    int zero_ok = 1;
    for (int b = 6; b < GOLDEN_BLOCKS; b += 8) {
        const uint8_t *p = (const uint8_t *)&y[b];
        for (size_t i = 0; i < sizeof y[b]; i++) zero_ok &= p[i] == 0;
    }
    check(zero_ok, "Q4_K: all-zero input -> all-zero blocks");
    /* ggml promises no per-value error bound; finiteness is what must hold */
    float *deq = malloc(sizeof(float) * KB_QK_K * GOLDEN_BLOCKS);
    int finite = deq != NULL;
    if (deq) {
        kb_dequant_q4k(y, deq, GOLDEN_BLOCKS);
        for (int i = 0; i < KB_QK_K * GOLDEN_BLOCKS; i++) finite &= isfinite(deq[i]) != 0;
    }
    check(finite, "Q4_K golden: dequantized values finite");
    free(deq);
    free(x);
    free(y);
}

/* ---- 4. Q6_K quantizer bound ------------------------------------------------------ */

static void test_q6k_quantizer(void) {
    const int nb = 256;
    float *x = malloc(sizeof(float) * KB_QK_K * nb);
    float *y = malloc(sizeof(float) * KB_QK_K * nb);
    kb_block_q6k *q = malloc(sizeof(kb_block_q6k) * nb);
    if (!x || !y || !q) {
        check(0, "q6k: out of memory");
        free(x);
        free(y);
        free(q);
        return;
    }
    golden_input(x, nb);
    /* more range: scale block b by 2^(b % 40 - 30), from fp16-subnormal d to large */
    for (int b = 0; b < nb; b++) {
        for (int i = 0; i < KB_QK_K; i++) x[b * KB_QK_K + i] = ldexpf(x[b * KB_QK_K + i], b % 40 - 20);
    }
    kb_quantize_q6k(x, q, nb);
    kb_dequant_q6k(q, y, nb);
    int bad = 0;
    for (int b = 0; b < nb; b++) {
        const double d = (double)kb_f16_to_f32(q[b].d);
        for (int i = 0; i < KB_QK_K; i++) {
            const double half_step = d * q[b].scales[i / 16] / 2;
            const double xv = x[b * KB_QK_K + i];
            const double err = fabs((double)y[b * KB_QK_K + i] - xv);
            if (q[b].scales[i / 16] < 0 || err > half_step * (1 + 0x1p-20) + fabs(xv) * 0x1p-22) {
                if (bad++ < 3) printf("  q6k block %d value %d: x %a y %a half-step %a\n", b, i, xv, (double)y[b * KB_QK_K + i], half_step);
            }
        }
    }
    char msg[120];
    snprintf(msg, sizeof msg, "Q6_K quantizer: every value within half a step (%d bad)", bad);
    check(bad == 0, msg);
    free(x);
    free(y);
    free(q);
}

#ifndef KB_TEST_FORMATS_NO_MAIN
int main(void) {
    test_hand_q4k();
    test_hand_q6k();
    test_codecs();
    test_golden_q4k();
    test_q6k_quantizer();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
#endif
