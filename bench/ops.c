/* ops.c - the op registry: tensors, realistic seeded inputs, the reference
 * call, the flops/bytes model and the tolerance model of every op.
 *
 * Tolerance model (documented per op in results/README.md, printed in every row):
 *   |out_i - ref_i| <= rel*|ref_i| + acc*mag_i + abs
 * - rel: rounding of the output to its type (unit roundoff u_out = 2^-24 f32,
 *   2^-11 f16, 2^-8 bf16) plus a few fp32 roundings after the accumulation.
 * - acc*mag_i: accumulation error. For a sum of n terms in a float type of unit
 *   roundoff u, |error| <= lambda*sqrt(n)*u*sum|terms| holds with overwhelming
 *   probability (Higham & Mary, "A new approach to probabilistic rounding error
 *   analysis", SIAM J. Sci. Comput. 2019); we take lambda = 2, and mag_i =
 *   sum|terms| from the reference. The worst-case bound n*u is never reached by
 *   rounding to nearest on such data and would hide real bugs.
 */
#include "bench/ops.h"

#include "ref/formats.h"
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U32 (1.0 / 16777216.0) /* 2^-24, float32 unit roundoff */

/* ---- rng: splitmix64 seeds xoshiro256** (Blackman & Vigna) -------------- */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void kb_rng_seed(kb_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull + 0x632be59bd9b4e019ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kb_rng_next(kb_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double kb_rng_uniform(kb_rng *r) { return (double)(kb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double kb_rng_normal(kb_rng *r) {
    double u1 = kb_rng_uniform(r), u2 = kb_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- number-format facts ----------------------------------------------- */
double kb_unit_roundoff(kb_dtype t) {
    switch (t) {
    case KB_F16: return 1.0 / 2048.0;  /* 11-bit significand */
    case KB_BF16: return 1.0 / 256.0;  /* 8-bit significand */
    case KB_E4M3: return 1.0 / 16.0;   /* 4-bit significand */
    case KB_E5M2: return 1.0 / 8.0;    /* 3-bit significand */
    default: return U32;
    }
}

double kb_max_finite(kb_dtype t) {
    switch (t) {
    case KB_F16: return 65504.0;
    case KB_BF16: return 3.3895313892515355e38;
    case KB_E4M3: return 448.0;
    case KB_E5M2: return 57344.0;
    default: return 3.4028234663852886e38;
    }
}

/* ---- shared generators -------------------------------------------------- */
/* Inputs are generated row by row, each row from its own rng stream, so a
 * parallel fill gives the same bytes whatever the thread count. */
typedef struct {
    const kb_case *c;
    void *dst;
    int64_t row_len;
    uint64_t stream;
    double scale;
    int kind;
} gen_job;

/* Activations like an LLM residual stream: N(0,1) per element times a per-row
 * scale (log-uniform over [1e-3, 10]: early-layer rows are tiny, which is where
 * an eps bug shows), plus a few fixed outlier channels ~20x. */
static double row_scale(const kb_case *c, uint64_t stream, int64_t row) {
    kb_rng r;
    kb_rng_seed(&r, c->seed, stream * 1000003ull + (uint64_t)row);
    return pow(10.0, -3.0 + 4.0 * kb_rng_uniform(&r));
}

static int is_outlier_channel(const kb_case *c, int64_t ch) {
    /* about 1 in 512 channels, fixed per seed */
    uint64_t x = c->seed ^ (uint64_t)ch * 0x9e3779b97f4a7c15ull;
    return (splitmix64(&x) & 511) == 0;
}

static void activation_row(const kb_case *c, uint64_t stream, int64_t row, float *dst, int64_t len,
                           int outliers, double scale) {
    kb_rng r;
    kb_rng_seed(&r, c->seed, (stream << 40) ^ (uint64_t)row);
    for (int64_t i = 0; i < len; i++) {
        double v = kb_rng_normal(&r) * scale;
        if (outliers && is_outlier_channel(c, i)) v *= 20.0;
        if (v == 0.0) v = scale * 1e-3; /* never an exact zero */
        dst[i] = (float)v;
    }
}

static void gen_activation_row(int64_t row, void *arg) {
    gen_job *j = arg;
    double scale = j->kind == 1 ? row_scale(j->c, j->stream, row) : j->scale;
    activation_row(j->c, j->stream, row, (float *)j->dst + row * j->row_len, j->row_len, j->kind == 1, scale);
}

/* kind 1: residual-stream rows (per-row scale, outlier channels); kind 0: plain N(0, scale^2). */
static void fill_activations(const kb_case *c, float *dst, int64_t rows, int64_t len, uint64_t stream, int kind,
                             double scale) {
    gen_job j = {.c = c, .dst = dst, .row_len = len, .stream = stream, .scale = scale, .kind = kind};
    kb_parallel_for(rows, gen_activation_row, &j);
}

/* Q4_K weights as a model has them: float weights ~ N(0, s^2) with s varying
 * per row around 0.02, quantized with ggml's reference quantizer. */
static void gen_q4k_row(int64_t row, void *arg) {
    gen_job *j = arg;
    int64_t len = j->row_len;
    float *tmp = malloc((size_t)len * sizeof *tmp);
    kb_rng r;
    kb_rng_seed(&r, j->c->seed, (j->stream << 40) ^ (uint64_t)row);
    double s = 0.02 * exp(0.3 * kb_rng_normal(&r));
    for (int64_t i = 0; i < len; i++) tmp[i] = (float)(kb_rng_normal(&r) * s);
    kb_quantize_q4k(tmp, (kb_block_q4k *)j->dst + row * (len / KB_QK_K), len / KB_QK_K);
    free(tmp);
}

static void gen_q6k_row(int64_t row, void *arg) {
    gen_job *j = arg;
    int64_t len = j->row_len;
    float *tmp = malloc((size_t)len * sizeof *tmp);
    kb_rng r;
    kb_rng_seed(&r, j->c->seed, (j->stream << 40) ^ (uint64_t)row);
    double s = 0.02 * exp(0.3 * kb_rng_normal(&r));
    for (int64_t i = 0; i < len; i++) tmp[i] = (float)(kb_rng_normal(&r) * s);
    kb_quantize_q6k(tmp, (kb_block_q6k *)j->dst + row * (len / KB_QK_K), len / KB_QK_K);
    free(tmp);
}

static void fill_quant_rows(const kb_case *c, kb_dtype t, void *dst, int64_t rows, int64_t len, uint64_t stream) {
    gen_job j = {.c = c, .dst = dst, .row_len = len, .stream = stream};
    kb_parallel_for(rows, t == KB_Q4K ? gen_q4k_row : gen_q6k_row, &j);
}

/* Per-element |d*sc*q| + |dmin*m| of Q4_K data: the magnitude the float
 * rounding of y = d*sc*q - dmin*m scales with (cancellation makes |y| smaller). */
static void q4k_mag(const kb_block_q4k *b, int64_t nblocks, double *mag) {
    for (int64_t bi = 0; bi < nblocks; bi++) {
        double d = kb_f16_to_f32(b[bi].d), dmin = kb_f16_to_f32(b[bi].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kb_q4k_scale_min(j, b[bi].scales, &sc, &m);
            const uint8_t *q = b[bi].qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) {
                int v = (j & 1) ? (q[l] >> 4) : (q[l] & 15);
                mag[bi * 256 + j * 32 + l] = fabs(d * sc * v) + fabs(dmin * m);
            }
        }
    }
}

static int positive(char *msg, const char *what, int64_t v) {
    if (v <= 0) return kb_fail(msg, KB_ERROR, "%s must be positive (got %lld)", what, (long long)v);
    return KB_OK;
}

static void set_tensor(kb_tensor *t, const char *name, kb_dtype type, int64_t count) {
    t->name = name;
    t->type = type;
    t->count = count;
    t->bytes = kb_dtype_bytes(type, count);
    t->host = NULL;
}

/* ======================= dequant_q4k ===================================== */
static int dq_validate(const kb_case *c, char *msg) {
    if (positive(msg, "rows (M)", c->m) || positive(msg, "cols (K)", c->k)) return KB_ERROR;
    if (c->k % 256) return kb_fail(msg, KB_ERROR, "dequant_q4k: K=%lld is not a multiple of the Q4_K block (256)", (long long)c->k);
    return KB_OK;
}
static int dq_tensors(const kb_case *c, kb_tensor *in, kb_tensor *out) {
    set_tensor(&in[0], "w", KB_Q4K, c->m * c->k);
    set_tensor(out, "y", KB_F32, c->m * c->k);
    return 1;
}
static void dq_generate(const kb_case *c, kb_tensor *in) { fill_quant_rows(c, KB_Q4K, in[0].host, c->m, c->k, 1); }
static void dq_reference(const kb_case *c, kb_tensor *in, double *ref, double *mag) {
    ref_dequant_q4k(c, in[0].host, ref);
    q4k_mag(in[0].host, c->m * c->k / 256, mag);
}
static double dq_flops(const kb_case *c) { return 2.0 * (double)c->m * (double)c->k; }
static double dq_bytes(const kb_case *c) { return (double)c->m * c->k / 256 * 144 + (double)c->m * c->k * 4; }
static void dq_tol(const kb_case *c, const kb_tensor *in, double u, kb_tolerance *t) {
    (void)in;
    (void)c;
    (void)u;
    /* y = (d*sc)*q - (dmin*m): two fp32 products and a subtraction (or one fma). */
    t->rel = 0;
    t->acc = 2 * U32;
    t->abs = 0;
    snprintf(t->formula, sizeof t->formula, "2*u32*(|d*sc*q|+|dmin*m|)");
}

/* ======================= rmsnorm ========================================= */
static int rn_validate(const kb_case *c, char *msg) {
    if (positive(msg, "tokens (N)", c->n) || positive(msg, "hidden (K)", c->k)) return KB_ERROR;
    if (!(c->eps > 0)) return kb_fail(msg, KB_ERROR, "rmsnorm: eps must be > 0 (got %g)", c->eps);
    return KB_OK;
}
static int rn_tensors(const kb_case *c, kb_tensor *in, kb_tensor *out) {
    set_tensor(&in[0], "x", KB_F32, c->n * c->k);
    set_tensor(&in[1], "w", KB_F32, c->k);
    set_tensor(out, "y", KB_F32, c->n * c->k);
    return 2;
}
static void rn_generate(const kb_case *c, kb_tensor *in) {
    fill_activations(c, in[0].host, c->n, c->k, 1, 1, 1.0);
    /* norm weights: positive, log-normal around 1 (Qwen's range ~0.1..10) */
    kb_rng r;
    kb_rng_seed(&r, c->seed, 2);
    float *w = in[1].host;
    for (int64_t i = 0; i < c->k; i++) w[i] = (float)exp(0.7 * kb_rng_normal(&r));
}
static void rn_reference(const kb_case *c, kb_tensor *in, double *ref, double *mag) {
    ref_rmsnorm(c, in[0].host, in[1].host, ref, NULL);
    for (int64_t i = 0; i < c->n * c->k; i++) mag[i] = fabs(ref[i]);
}
static double rn_flops(const kb_case *c) { return 4.0 * (double)c->n * (double)c->k; }
static double rn_bytes(const kb_case *c) { return 8.0 * c->n * c->k + 4.0 * c->k; }
static void rn_tol(const kb_case *c, const kb_tensor *in, double u, kb_tolerance *t) {
    (void)in;
    /* sum of K squares (probabilistic sqrt(K)), then rsqrt and two products. The
     * relative error of 1/sqrt(mean) is half that of the mean. */
    double uacc = u > 0 ? u : U32;
    t->rel = 0;
    t->acc = sqrt((double)c->k) * uacc + 6 * U32;
    t->abs = 0;
    snprintf(t->formula, sizeof t->formula, "(sqrt(K)*u_acc + 6*u32)*|y|");
}

/* ======================= gemm_fp8 ======================================== */
static int is_fp8(kb_dtype t) { return t == KB_E4M3 || t == KB_E5M2; }
static int gm_validate(const kb_case *c, char *msg) {
    if (positive(msg, "M", c->m) || positive(msg, "N", c->n) || positive(msg, "K", c->k)) return KB_ERROR;
    if (!is_fp8(c->a_type) || !is_fp8(c->b_type))
        return kb_fail(msg, KB_ERROR, "gemm_fp8: operands must be e4m3 or e5m2 (got %s x %s)", kb_dtype_name(c->a_type),
                       kb_dtype_name(c->b_type));
    if (c->out_type != KB_F32 && c->out_type != KB_F16 && c->out_type != KB_BF16)
        return kb_fail(msg, KB_ERROR, "gemm_fp8: output type must be f32, f16 or bf16 (got %s)", kb_dtype_name(c->out_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT) return kb_fail(msg, KB_ERROR, "gemm_fp8: unknown scale mode");
    return KB_OK;
}
static int gm_tensors(const kb_case *c, kb_tensor *in, kb_tensor *out) {
    set_tensor(&in[0], "w", c->a_type, c->m * c->k);
    set_tensor(&in[1], "x", c->b_type, c->n * c->k);
    set_tensor(&in[2], "sa", KB_F32, kb_scale_count_a(c));
    set_tensor(&in[3], "sb", KB_F32, kb_scale_count_b(c));
    set_tensor(out, "d", c->out_type, c->n * c->m);
    return 4;
}

/* Quantize real-valued rows to fp8 the way FP8 inference does: per scale group,
 * s = amax / fp8_max, q = fp8(x / s) with saturation. */
typedef struct {
    const kb_case *c;
    const float *real;
    uint8_t *q;
    float *scale;
    kb_dtype type;
    int is_a; /* W (rows = M) or X (rows = N) */
} fp8_job;

static void fp8_quant_row(int64_t row, void *arg) {
    fp8_job *j = arg;
    const kb_case *c = j->c;
    int64_t K = c->k, kb = (K + 127) / 128;
    const float *x = j->real + row * K;
    double fmax = kb_max_finite(j->type);
    for (int64_t b = 0; b < kb; b++) {
        int64_t k0 = b * 128, k1 = k0 + 128 < K ? k0 + 128 : K;
        float s;
        int64_t sidx;
        switch (c->scale_mode) {
        case KB_SCALE_VEC128: sidx = row * kb + b; break;
        case KB_SCALE_BLK128: sidx = j->is_a ? (row / 128) * kb + b : row * kb + b; break;
        case KB_SCALE_OUTER: sidx = row; break;
        default: sidx = 0; break;
        }
        s = j->scale[sidx];
        for (int64_t k = k0; k < k1; k++) {
            float v = x[k] / s;
            j->q[row * K + k] = j->type == KB_E4M3 ? kb_f32_to_e4m3(v, 1) : kb_f32_to_e5m2(v, 1);
        }
        (void)fmax;
    }
}

/* amax over each scale group -> scale = amax / fp8_max (never 0). */
static void fp8_scales(const kb_case *c, const float *real, int64_t rows, int is_a, kb_dtype t, float *scale,
                       int64_t nscale) {
    int64_t K = c->k, kb = (K + 127) / 128;
    double *amax = calloc((size_t)nscale, sizeof *amax);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            int64_t s;
            switch (c->scale_mode) {
            case KB_SCALE_VEC128: s = r * kb + k / 128; break;
            case KB_SCALE_BLK128: s = is_a ? (r / 128) * kb + k / 128 : r * kb + k / 128; break;
            case KB_SCALE_OUTER: s = r; break;
            default: s = 0; break;
            }
            double a = fabs(real[r * K + k]);
            if (a > amax[s]) amax[s] = a;
        }
    for (int64_t s = 0; s < nscale; s++) scale[s] = (float)(amax[s] > 0 ? amax[s] / kb_max_finite(t) : 1.0);
    free(amax);
}

static void gm_generate(const kb_case *c, kb_tensor *in) {
    /* W: weights N(0, 0.02^2) with per-row spread; X: residual-stream activations. */
    float *w = malloc((size_t)(c->m * c->k) * sizeof *w);
    float *x = malloc((size_t)(c->n * c->k) * sizeof *x);
    fill_activations(c, w, c->m, c->k, 11, 0, 0.02);
    fill_activations(c, x, c->n, c->k, 12, 1, 1.0);
    fp8_scales(c, w, c->m, 1, c->a_type, in[2].host, in[2].count);
    fp8_scales(c, x, c->n, 0, c->b_type, in[3].host, in[3].count);
    fp8_job ja = {c, w, in[0].host, in[2].host, c->a_type, 1};
    fp8_job jb = {c, x, in[1].host, in[3].host, c->b_type, 0};
    kb_parallel_for(c->m, fp8_quant_row, &ja);
    kb_parallel_for(c->n, fp8_quant_row, &jb);
    free(w);
    free(x);
}
static void gm_reference(const kb_case *c, kb_tensor *in, double *ref, double *mag) {
    ref_gemm_fp8(c, in[0].host, in[1].host, in[2].host, in[3].host, ref, mag);
}
static double gm_flops(const kb_case *c) { return 2.0 * (double)c->m * (double)c->n * (double)c->k; }
static double gm_bytes(const kb_case *c) {
    return (double)kb_dtype_bytes(c->a_type, c->m * c->k) + (double)kb_dtype_bytes(c->b_type, c->n * c->k) +
           (double)kb_dtype_bytes(c->out_type, c->n * c->m) + 4.0 * (kb_scale_count_a(c) + kb_scale_count_b(c));
}
static void gm_tol(const kb_case *c, const kb_tensor *in, double u, kb_tolerance *t) {
    (void)in;
    double uacc = u > 0 ? u : U32;
    double uout = kb_unit_roundoff(c->out_type);
    /* products of fp8 values are exact in fp32; the K-term sum costs
     * 2*sqrt(K)*u_acc*sum|a*b|; scaling adds a few fp32 roundings; the output
     * rounds once to its type. */
    t->rel = uout;
    t->acc = 2.0 * sqrt((double)c->k) * uacc + 4 * U32;
    t->abs = 0;
    snprintf(t->formula, sizeof t->formula, "u_out*|d| + (2*sqrt(K)*u_acc + 4*u32)*sum|s*a*b|, u_out=%.3g u_acc=%.3g", uout,
             uacc);
}

/* ======================= rope_neox ======================================= */
static int rp_validate(const kb_case *c, char *msg) {
    if (positive(msg, "tokens (N)", c->n) || positive(msg, "heads", c->heads) || positive(msg, "head_dim", c->head_dim))
        return KB_ERROR;
    if (c->head_dim % 2) return kb_fail(msg, KB_ERROR, "rope_neox: head_dim must be even (got %lld)", (long long)c->head_dim);
    if (!(c->theta > 0)) return kb_fail(msg, KB_ERROR, "rope_neox: theta (base) must be > 0 (got %g)", c->theta);
    if (c->max_pos <= 0) return kb_fail(msg, KB_ERROR, "rope_neox: max_pos must be positive");
    if (c->max_pos > 2147483647LL) return kb_fail(msg, KB_ERROR, "rope_neox: max_pos must fit int32");
    return KB_OK;
}
static int rp_tensors(const kb_case *c, kb_tensor *in, kb_tensor *out) {
    set_tensor(&in[0], "x", KB_F32, c->n * c->heads * c->head_dim);
    set_tensor(&in[1], "pos", KB_I32, c->n);
    set_tensor(out, "y", KB_F32, c->n * c->heads * c->head_dim);
    return 2;
}
static void rp_generate(const kb_case *c, kb_tensor *in) {
    fill_activations(c, in[0].host, c->n, c->heads * c->head_dim, 21, 0, 1.0);
    /* positions: the first and last of the context always, the rest uniform */
    kb_rng r;
    kb_rng_seed(&r, c->seed, 22);
    int32_t *pos = in[1].host;
    for (int64_t i = 0; i < c->n; i++) pos[i] = (int32_t)(kb_rng_next(&r) % (uint64_t)c->max_pos);
    pos[0] = 0;
    if (c->n > 1) pos[c->n - 1] = (int32_t)(c->max_pos - 1);
}
static void rp_reference(const kb_case *c, kb_tensor *in, double *ref, double *mag) {
    ref_rope_neox(c, in[0].host, in[1].host, ref, NULL);
    /* Two error sources of an fp32 implementation, per output element:
     * - the products and the sum x_i*cos -+ x_pair*sin: a few u32 of |x_i| + |x_pair|
     *   (not of |y|: the two products can cancel);
     * - the angle theta_i = pos*base^(-2i/d) in fp32: relative error up to (i+2)*u32
     *   when base^(-2i/d) is built by repeated multiplication (ggml's CPU), ~3*u32
     *   with powf; y moves by |dtheta|*(|x_i| + |x_pair|).
     * So mag_i = (theta_i*(i+2) + 1)*(|x_i| + |x_pair|) + |y_i|, in units of u32. */
    const float *x = in[0].host;
    const int32_t *pos = in[1].host;
    int64_t d = c->head_dim, half = d / 2, rows = c->n * c->heads;
    for (int64_t r = 0; r < rows; r++) {
        double p = pos[r / c->heads];
        for (int64_t i = 0; i < half; i++) {
            double th = p * pow(c->theta, -2.0 * (double)i / (double)d);
            double a = fabs(x[r * d + i]) + fabs(x[r * d + i + half]);
            double e = (th * (double)(i + 2) + 1.0) * a;
            mag[r * d + i] = e + fabs(ref[r * d + i]);
            mag[r * d + i + half] = e + fabs(ref[r * d + i + half]);
        }
    }
}
static double rp_flops(const kb_case *c) { return 6.0 * (double)c->n * c->heads * c->head_dim / 2; }
static double rp_bytes(const kb_case *c) { return 8.0 * c->n * c->heads * c->head_dim + 4.0 * c->n; }
static void rp_tol(const kb_case *c, const kb_tensor *in, double u, kb_tolerance *t) {
    (void)in;
    (void)c;
    (void)u;
    /* fp32 cos/sin of the fp32 angle (a few ulp), two products and a sum. */
    t->rel = 0;
    t->acc = 4 * U32;
    t->abs = 0;
    snprintf(t->formula, sizeof t->formula, "4*u32*((theta_i*(i+2) + 1)*(|x_i|+|x_pair|) + |y|)");
}

/* ======================= attention ======================================= */
static int at_validate(const kb_case *c, char *msg) {
    if (positive(msg, "queries (N)", c->n) || positive(msg, "kv_len", c->kv_len) || positive(msg, "heads", c->heads) ||
        positive(msg, "kv_heads", c->kv_heads) || positive(msg, "head_dim", c->head_dim))
        return KB_ERROR;
    if (c->heads % c->kv_heads)
        return kb_fail(msg, KB_ERROR, "attention: heads (%lld) must be a multiple of kv_heads (%lld)", (long long)c->heads,
                       (long long)c->kv_heads);
    if (c->n > c->kv_len)
        return kb_fail(msg, KB_ERROR, "attention: queries (%lld) cannot exceed kv_len (%lld)", (long long)c->n,
                       (long long)c->kv_len);
    return KB_OK;
}
static int at_tensors(const kb_case *c, kb_tensor *in, kb_tensor *out) {
    set_tensor(&in[0], "q", KB_F32, c->n * c->heads * c->head_dim);
    set_tensor(&in[1], "k", KB_F32, c->kv_len * c->kv_heads * c->head_dim);
    set_tensor(&in[2], "v", KB_F32, c->kv_len * c->kv_heads * c->head_dim);
    set_tensor(out, "o", KB_F32, c->n * c->heads * c->head_dim);
    return 3;
}
static void at_generate(const kb_case *c, kb_tensor *in) {
    /* q, k ~ N(0, 1): scores q.k/sqrt(d) ~ N(0, 1), a realistic softmax spread. */
    fill_activations(c, in[0].host, c->n, c->heads * c->head_dim, 31, 0, 1.0);
    fill_activations(c, in[1].host, c->kv_len, c->kv_heads * c->head_dim, 32, 0, 1.0);
    fill_activations(c, in[2].host, c->kv_len, c->kv_heads * c->head_dim, 33, 0, 1.0);
}
static void at_reference(const kb_case *c, kb_tensor *in, double *ref, double *mag) {
    ref_attention(c, in[0].host, in[1].host, in[2].host, ref, mag);
}
static double at_pairs(const kb_case *c) {
    /* (query, key) pairs visible under the causal mask */
    double first = (double)(c->kv_len - c->n + 1), last = (double)c->kv_len;
    return (first + last) * (double)c->n / 2.0;
}
static double at_flops(const kb_case *c) { return 4.0 * at_pairs(c) * c->heads * c->head_dim; }
static double at_bytes(const kb_case *c) {
    return 4.0 * (2.0 * c->n * c->heads * c->head_dim + 2.0 * c->kv_len * c->kv_heads * c->head_dim);
}
static void at_tol(const kb_case *c, const kb_tensor *in, double u, kb_tolerance *t) {
    (void)in;
    double uacc = u > 0 ? u : U32;
    /* The reference's mag already carries the score sensitivity:
     * mag_c = sum_j p_j |v_jc| + sum_j p_j |v_jc - o_c| (S_j + 1), S_j = sum_l |q_l k_jl| / sqrt(d)
     * (ref/ref_ops.c). So: the output sum over L keys (2*sqrt(L)), the d-term dot
     * products (2*sqrt(d)), and a few ulps for exp, max and the divide (16). */
    t->rel = 0;
    t->acc = (2 * sqrt((double)c->kv_len) + 2 * sqrt((double)c->head_dim) + 16) * uacc;
    t->abs = 0;
    snprintf(t->formula, sizeof t->formula, "(2*sqrt(L) + 2*sqrt(d) + 16)*u_acc*mag, mag = sum p|v| + sum p|v-o|(S+1)");
}

/* ======================= embed =========================================== */
static int em_validate(const kb_case *c, char *msg) {
    if (positive(msg, "vocab (M)", c->m) || positive(msg, "hidden (K)", c->k) || positive(msg, "tokens (N)", c->n))
        return KB_ERROR;
    if (c->a_type != KB_Q4K && c->a_type != KB_Q6K && c->a_type != KB_F16 && c->a_type != KB_F32)
        return kb_fail(msg, KB_ERROR, "embed: table type must be q4_k, q6_k, f16 or f32 (got %s)", kb_dtype_name(c->a_type));
    if ((c->a_type == KB_Q4K || c->a_type == KB_Q6K) && c->k % 256)
        return kb_fail(msg, KB_ERROR, "embed: hidden %lld is not a multiple of the %s block (256)", (long long)c->k,
                       kb_dtype_name(c->a_type));
    if (c->m > 2147483647LL) return kb_fail(msg, KB_ERROR, "embed: vocab must fit int32 token ids");
    return KB_OK;
}
static int em_tensors(const kb_case *c, kb_tensor *in, kb_tensor *out) {
    set_tensor(&in[0], "table", c->a_type, c->m * c->k);
    set_tensor(&in[1], "ids", KB_I32, c->n);
    set_tensor(out, "y", KB_F32, c->n * c->k);
    return 2;
}
/* The 152064-row table is too big to quantize row by row in a test run: a pool
 * of distinct generated rows is tiled over it (row r = pool[r mod P], P = 1024 or
 * the vocab), so every looked-up row is a real quantized row. */
#define EMBED_POOL 1024
static void em_generate(const kb_case *c, kb_tensor *in) {
    int64_t pool = c->m < EMBED_POOL ? c->m : EMBED_POOL;
    size_t row_bytes = kb_dtype_bytes(c->a_type, c->k);
    uint8_t *table = in[0].host;
    if (c->a_type == KB_Q4K || c->a_type == KB_Q6K) {
        fill_quant_rows(c, c->a_type, table, pool, c->k, 41);
    } else {
        float *tmp = malloc((size_t)(pool * c->k) * sizeof *tmp);
        fill_activations(c, tmp, pool, c->k, 41, 0, 0.02);
        for (int64_t i = 0; i < pool * c->k; i++) {
            if (c->a_type == KB_F32) ((float *)table)[i] = tmp[i];
            else ((uint16_t *)table)[i] = kb_f32_to_f16(tmp[i], 0);
        }
        free(tmp);
    }
    for (int64_t r = pool; r < c->m; r++) memcpy(table + r * row_bytes, table + (r % pool) * row_bytes, row_bytes);
    kb_rng r;
    kb_rng_seed(&r, c->seed, 42);
    int32_t *ids = in[1].host;
    for (int64_t i = 0; i < c->n; i++) ids[i] = (int32_t)(kb_rng_next(&r) % (uint64_t)c->m);
    ids[0] = (int32_t)(c->m - 1); /* the last row always: catches an off-by-one row stride */
}
static void em_reference(const kb_case *c, kb_tensor *in, double *ref, double *mag) {
    ref_embed(c, in[0].host, in[1].host, ref);
    const int32_t *ids = in[1].host;
    for (int64_t t = 0; t < c->n; t++) {
        double *m = mag + t * c->k;
        if (c->a_type == KB_Q4K) {
            const kb_block_q4k *row = (const kb_block_q4k *)in[0].host + (int64_t)ids[t] * (c->k / 256);
            q4k_mag(row, c->k / 256, m);
        } else {
            for (int64_t i = 0; i < c->k; i++) m[i] = fabs(ref[t * c->k + i]);
        }
    }
}
static double em_flops(const kb_case *c) { return 2.0 * c->n * c->k; }
static double em_bytes(const kb_case *c) {
    return (double)kb_dtype_bytes(c->a_type, c->n * c->k) + 4.0 * c->n + 4.0 * c->n * c->k;
}
static void em_tol(const kb_case *c, const kb_tensor *in, double u, kb_tolerance *t) {
    (void)in;
    (void)u;
    /* same arithmetic as the dequant (q4_k/q6_k), exact for f16/f32 */
    t->rel = 0;
    t->acc = (c->a_type == KB_F16 || c->a_type == KB_F32) ? 0 : 2 * U32;
    t->abs = 0;
    snprintf(t->formula, sizeof t->formula, "%s", t->acc > 0 ? "2*u32*(|d*sc*q|+|dmin*m|)" : "exact");
}

/* ======================= the registry ==================================== */
const kb_op kb_ops[KB_OP_COUNT] = {
    [KB_OP_DEQUANT_Q4K] = {KB_OP_DEQUANT_Q4K, "dequant_q4k", "Q4_K blocks -> f32 (M rows x K cols)", dq_validate,
                           dq_tensors, dq_generate, dq_reference, dq_flops, dq_bytes, dq_tol},
    [KB_OP_RMSNORM] = {KB_OP_RMSNORM, "rmsnorm", "y = x / sqrt(mean(x^2) + eps) * w (N tokens x K hidden)",
                       rn_validate, rn_tensors, rn_generate, rn_reference, rn_flops, rn_bytes, rn_tol},
    [KB_OP_GEMM_FP8] = {KB_OP_GEMM_FP8, "gemm_fp8", "D[N][M] = scaled W[M][K] (fp8) x X[N][K] (fp8)", gm_validate,
                        gm_tensors, gm_generate, gm_reference, gm_flops, gm_bytes, gm_tol},
    [KB_OP_ROPE_NEOX] = {KB_OP_ROPE_NEOX, "rope_neox", "rotary embedding, NEOX pairs (i, i+d/2), base theta",
                         rp_validate, rp_tensors, rp_generate, rp_reference, rp_flops, rp_bytes, rp_tol},
    [KB_OP_ATTENTION] = {KB_OP_ATTENTION, "attention", "causal GQA softmax(q k^T / sqrt(d)) v, decode and prefill",
                         at_validate, at_tensors, at_generate, at_reference, at_flops, at_bytes, at_tol},
    [KB_OP_EMBED] = {KB_OP_EMBED, "embed", "rows of a Q4_K/Q6_K/F16/F32 token table by id", em_validate, em_tensors,
                     em_generate, em_reference, em_flops, em_bytes, em_tol},
};

const kb_op *kb_op_find(const char *name) {
    for (int i = 0; i < KB_OP_COUNT; i++)
        if (strcmp(kb_ops[i].name, name) == 0) return &kb_ops[i];
    return NULL;
}

void kb_case_defaults(kb_case *c) {
    c->eps = 1e-6;     /* Qwen2.5 rms_norm_eps */
    c->theta = 1e6;    /* Qwen2.5 rope_theta */
    c->max_pos = 32768; /* Qwen2.5-7B max_position_embeddings */
    c->a_type = c->op == KB_OP_EMBED ? KB_Q4K : KB_E4M3;
    c->b_type = KB_E4M3;
    c->out_type = KB_BF16;
    c->scale_mode = KB_SCALE_TENSOR;
}
