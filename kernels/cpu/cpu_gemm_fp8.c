/* cpu_gemm_fp8.c - the FP8 GEMM as a float32 CPU path would run it:
 *   fp8 codes decoded through a 256-entry float table (exact: every fp8 value is a float),
 *   per 128-block of K: blocksum = dot in float32 with 8 partial sums (like a SIMD
 *   vec_dot), then the scales as the reference applies them (kbench.h):
 *     TENSOR/OUTER: D = (sa sb) * sum_b blocksum_b        (float)
 *     VEC128/BLK128: D = sum_b (sa[.][b] sb[n][b]) * blocksum_b
 *   and the float result rounded to out_type with ref/formats.h (non-saturating).
 * D[n][m] = sum_k W[m][k] X[n][k]. Work: X is decoded once; each slice takes a range
 * of W rows, decodes GEMM_ROWS of them at a time and sweeps all of X with them. */
#include "kernels/cpu/cpu_ops.h"

#include <string.h>

enum { GEMM_BLOCK = 128, GEMM_ROWS = 8 };

static int is_fp8(kb_dtype t) { return t == KB_E4M3 || t == KB_E5M2; }

static int gemm_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = (size_t)(c->n > 0 && c->k > 0 ? c->n * c->k : 0);
    *slice_floats = (size_t)(c->k > 0 ? GEMM_ROWS * c->k : 0);
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "gemm_fp8 needs m, n, k >= 1");
    if (!is_fp8(c->a_type) || !is_fp8(c->b_type))
        return kb_fail(msg, KB_NOT_SUPPORTED, "gemm_fp8: operands %s x %s (cpu takes e4m3/e5m2)",
                       kb_dtype_name(c->a_type), kb_dtype_name(c->b_type));
    switch (c->out_type) {
    case KB_F32:
    case KB_F16:
    case KB_BF16:
    case KB_E4M3:
    case KB_E5M2: break;
    default:
        return kb_fail(msg, KB_NOT_SUPPORTED, "gemm_fp8: output type %s (cpu takes f32, f16, bf16, e4m3, e5m2)",
                       kb_dtype_name(c->out_type));
    }
    if ((int)c->scale_mode < 0 || c->scale_mode >= KB_SCALE_COUNT)
        return kb_fail(msg, KB_NOT_SUPPORTED, "gemm_fp8: unknown scale mode %d", (int)c->scale_mode);
    return KB_OK;
}

static float fp8_value(kb_dtype t, uint8_t code) { return t == KB_E4M3 ? kb_e4m3_to_f32(code) : kb_e5m2_to_f32(code); }

static void gemm_setup(cpu_state *s) {
    for (int i = 0; i < 256; i++) {
        s->fp8_table[0][i] = fp8_value(s->c.a_type, (uint8_t)i);
        s->fp8_table[1][i] = fp8_value(s->c.b_type, (uint8_t)i);
    }
}

/* float dot of one 128-block with 8 partial sums (lane i % 8), added pairwise */
static float block_dot(const float *a, const float *b, int64_t n) {
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) lane[l] += a[i] * b[i];
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

static void store(kb_dtype t, void *out, int64_t idx, float v) {
    switch (t) {
    case KB_F32: ((float *)out)[idx] = v; break;
    case KB_F16: ((uint16_t *)out)[idx] = kb_f32_to_f16(v, 0); break;
    case KB_BF16: ((uint16_t *)out)[idx] = kb_f32_to_bf16(v, 0); break;
    case KB_E4M3: ((uint8_t *)out)[idx] = kb_f32_to_e4m3(v, 0); break;
    case KB_E5M2: ((uint8_t *)out)[idx] = kb_f32_to_e5m2(v, 0); break;
    default: break; /* refused by gemm_check */
    }
}

static void decode_x(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const int64_t k = s->c.k;
    const uint8_t *x = s->in[1];
    for (int64_t i = begin * k; i < end * k; i++) s->shared[i] = s->fp8_table[1][x[i]];
}

static void gemm_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)arg;
    const kb_case *c = &s->c;
    const int64_t M = c->m, N = c->n, K = c->k, kblocks = (K + GEMM_BLOCK - 1) / GEMM_BLOCK;
    const uint8_t *w = s->in[0];
    const float *sa = s->in[2], *sb = s->in[3];
    const float one[1] = {1.0f};
    const int no_bscale = s->test == CPU_OP_TEST(0); /* test_no_bscale: X's scales ignored */
    float *wrows = cpu_slice_mem(s, slice);
    for (int64_t m0 = begin; m0 < end; m0 += GEMM_ROWS) {
        const int64_t rows = end - m0 < GEMM_ROWS ? end - m0 : GEMM_ROWS;
        for (int64_t i = 0; i < rows * K; i++) wrows[i] = s->fp8_table[0][w[m0 * K + i]];
        for (int64_t n = 0; n < N; n++) {
            const float *x = s->shared + n * K;
            for (int64_t r = 0; r < rows; r++) {
                const int64_t m = m0 + r;
                const float *a = wrows + r * K;
                float total = 0.0f;
                for (int64_t b = 0; b < kblocks; b++) {
                    const int64_t k0 = b * GEMM_BLOCK, kl = K - k0 < GEMM_BLOCK ? K - k0 : GEMM_BLOCK;
                    const float blocksum = block_dot(a + k0, x + k0, kl);
                    if (c->scale_mode == KB_SCALE_VEC128)
                        total += sa[m * kblocks + b] * (no_bscale ? one[0] : sb[n * kblocks + b]) * blocksum;
                    else if (c->scale_mode == KB_SCALE_BLK128)
                        total += sa[(m / GEMM_BLOCK) * kblocks + b] * (no_bscale ? one[0] : sb[n * kblocks + b]) * blocksum;
                    else
                        total += blocksum;
                }
                if (c->scale_mode == KB_SCALE_TENSOR)
                    total = sa[0] * (no_bscale ? one[0] : sb[0]) * total;
                else if (c->scale_mode == KB_SCALE_OUTER)
                    total = sa[m] * (no_bscale ? one[0] : sb[n]) * total;
                store(s->out_type[0], s->out[0], n * M + m, total);
            }
        }
    }
}

static int gemm_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n, decode_x, NULL);
    cpu_for_slices(s, s->c.m, gemm_rows, NULL);
    return KB_OK;
}

static const cpu_test gemm_tests[] = {{"test_no_bscale", "TEST ONLY: ignores X's (B's) scales"}, {NULL, NULL}};

const cpu_op cpu_op_gemm_fp8 = {gemm_check, gemm_setup, gemm_run,
                                "fp8 via 256-entry float table, float32 8-lane dot per 128-block, float scales",
                                gemm_tests};
