/* gen.c - the input generators of gen.h. */
#include "bench/gen.h"

#include "ref/ref.h"

#include <math.h>
#include <stdlib.h>

/* ---- rng ------------------------------------------------------------------------ */
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

/* ---- activations ------------------------------------------------------------------- */
typedef struct {
    uint64_t seed;
    void *dst;
    int64_t row_len;
    uint64_t stream;
    double scale;
    int kind;
    kb_dtype type;
} gen_job;

static double row_scale(uint64_t seed, uint64_t stream, int64_t row) {
    kb_rng r;
    kb_rng_seed(&r, seed, stream * 1000003ull + (uint64_t)row);
    return pow(10.0, -3.0 + 4.0 * kb_rng_uniform(&r));
}

static int is_outlier_channel(uint64_t seed, int64_t ch) {
    uint64_t x = seed ^ (uint64_t)ch * 0x9e3779b97f4a7c15ull; /* about 1 in 512 channels, fixed per seed */
    return (splitmix64(&x) & 511) == 0;
}

static void activation_row(int64_t row, void *arg) {
    const gen_job *j = arg;
    const int residual = j->kind == KB_GEN_RESIDUAL;
    const double scale = residual ? row_scale(j->seed, j->stream, row) : j->scale;
    float *dst = (float *)j->dst + row * j->row_len;
    kb_rng r;
    kb_rng_seed(&r, j->seed, (j->stream << 40) ^ (uint64_t)row);
    for (int64_t i = 0; i < j->row_len; i++) {
        double v = kb_rng_normal(&r) * scale;
        if (residual && is_outlier_channel(j->seed, i)) v *= 20.0;
        if (v == 0.0) v = scale * 1e-3; /* never an exact zero */
        dst[i] = (float)v;
    }
}

void kb_gen_activations(uint64_t seed, float *dst, int64_t rows, int64_t len, uint64_t stream, int kind,
                        double scale) {
    gen_job j = {.seed = seed, .dst = dst, .row_len = len, .stream = stream, .scale = scale, .kind = kind};
    kb_parallel_for(rows, activation_row, &j);
}

/* ---- K-quant weights ---------------------------------------------------------------- */
static void kquant_row(int64_t row, void *arg) {
    const gen_job *j = arg;
    const int64_t len = j->row_len;
    float *tmp = malloc((size_t)len * sizeof *tmp);
    if (!tmp) abort();
    kb_rng r;
    kb_rng_seed(&r, j->seed, (j->stream << 40) ^ (uint64_t)row);
    const double s = 0.02 * exp(0.3 * kb_rng_normal(&r));
    for (int64_t i = 0; i < len; i++) tmp[i] = (float)(kb_rng_normal(&r) * s);
    if (j->type == KB_Q4K)
        kb_quantize_q4k(tmp, (kb_block_q4k *)j->dst + row * (len / KB_QK_K), len / KB_QK_K);
    else
        kb_quantize_q6k(tmp, (kb_block_q6k *)j->dst + row * (len / KB_QK_K), len / KB_QK_K);
    free(tmp);
}

void kb_gen_kquant_rows(uint64_t seed, kb_dtype t, void *dst, int64_t rows, int64_t len, uint64_t stream) {
    gen_job j = {.seed = seed, .dst = dst, .row_len = len, .stream = stream, .type = t};
    kb_parallel_for(rows, kquant_row, &j);
}

/* ---- fp8 ------------------------------------------------------------------------------ */
void kb_gen_fp8(uint64_t seed, kb_dtype fp8, kb_scale_mode mode, uint8_t *dst, float *scales, int64_t rows,
                int64_t len, uint64_t stream, int kind, double scale) {
    float *real = malloc((size_t)(rows * len) * sizeof *real);
    if (!real) abort();
    kb_gen_activations(seed, real, rows, len, stream, kind, scale);
    ref_quant_fp8_args a = {.rows = rows, .k = len, .in_type = KB_F32, .fp8 = fp8, .mode = mode, .flush = 0};
    ref_quant_fp8(&a, real, scales, dst, NULL);
    free(real);
}
