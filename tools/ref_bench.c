/* ref_bench.c - how long the fp64 GEMM reference takes, and proof that its bits do
 * not depend on the thread count.
 *
 *   ref_bench [M N K]        default 3584 512 3584 (Qwen2.5-7B Q projection, N=512)
 *
 * Runs ref_gemm_fp8 (e4m3 x e4m3, VEC128 scales, with mag) once on 1 thread and once
 * on all online cores, prints both wall times, and exits 1 if the two outputs or
 * mags differ in any bit. */
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: a small seeded generator, enough for benchmark inputs */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double next_normal(uint64_t *s) { /* Box-Muller */
    double u1 = ((double)(next_u64(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(next_u64(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static double time_gemm(const ref_gemm_fp8_dims *c, int threads, const uint8_t *w, const uint8_t *x, const float *sa,
                        const float *sb, double *out, double *mag) {
    kb_set_ref_threads(threads);
    double t0 = now_s();
    ref_gemm_fp8(c, w, x, sa, sb, out, mag);
    return now_s() - t0;
}

int main(int argc, char **argv) {
    ref_gemm_fp8_dims c = {.m = 3584, .n = 512, .k = 3584, .a_type = KB_E4M3, .b_type = KB_E4M3,
                           .scale_mode = KB_SCALE_VEC128};
    if (argc == 4) {
        c.m = atoll(argv[1]);
        c.n = atoll(argv[2]);
        c.k = atoll(argv[3]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [M N K]\n", argv[0]);
        return 2;
    }
    if (c.m < 1 || c.n < 1 || c.k < 1) {
        fprintf(stderr, "M, N, K must be positive\n");
        return 2;
    }
    const int64_t kb = (c.k + 127) / 128;
    uint8_t *w = malloc((size_t)(c.m * c.k));
    uint8_t *x = malloc((size_t)(c.n * c.k));
    float *sa = malloc((size_t)(c.m * kb) * sizeof(float));
    float *sb = malloc((size_t)(c.n * kb) * sizeof(float));
    size_t outn = (size_t)(c.n * c.m);
    double *out1 = malloc(outn * sizeof(double)), *mag1 = malloc(outn * sizeof(double));
    double *outn_ = malloc(outn * sizeof(double)), *magn = malloc(outn * sizeof(double));
    if (!w || !x || !sa || !sb || !out1 || !mag1 || !outn_ || !magn) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t seed = 1234;
    for (int64_t i = 0; i < c.m * c.k; i++) w[i] = kb_f32_to_e4m3((float)(16.0 * next_normal(&seed)), 1);
    for (int64_t i = 0; i < c.n * c.k; i++) x[i] = kb_f32_to_e4m3((float)(16.0 * next_normal(&seed)), 1);
    for (int64_t i = 0; i < c.m * kb; i++) sa[i] = (float)(0.01 * (1.0 + next_normal(&seed) * 0.1));
    for (int64_t i = 0; i < c.n * kb; i++) sb[i] = (float)(0.01 * (1.0 + next_normal(&seed) * 0.1));

    kb_set_ref_threads(0);
    const int all = kb_ref_threads();
    printf("ref_gemm_fp8 %lldx%lldx%lld (MxNxK), e4m3 x e4m3, vec128 scales, with mag\n", (long long)c.m,
           (long long)c.n, (long long)c.k);
    double t1 = time_gemm(&c, 1, w, x, sa, sb, out1, mag1);
    printf("  1 thread : %8.3f s  (%.2f GMAC/s)\n", t1, (double)c.m * c.n * c.k / t1 * 1e-9);
    double tn = time_gemm(&c, all, w, x, sa, sb, outn_, magn);
    printf("  %d threads: %8.3f s  (%.2f GMAC/s)\n", all, tn, (double)c.m * c.n * c.k / tn * 1e-9);
    const int same = memcmp(out1, outn_, outn * sizeof(double)) == 0 && memcmp(mag1, magn, outn * sizeof(double)) == 0;
    printf("  1 vs %d threads: %s\n", all, same ? "bit-identical" : "DIFFERENT");
    free(w);
    free(x);
    free(sa);
    free(sb);
    free(out1);
    free(mag1);
    free(outn_);
    free(magn);
    return same ? 0 : 1;
}
