/* rope_neox.c - ref_rope_neox. For i < d/2, theta_i = pos * base^(-2i/d) (Su et al.,
 * "RoFormer", 2021, eq. 15), rotating the pair (i, i + d/2) (the GPT-NeoX layout):
 *   y_i = x_i cos - x_{i+d/2} sin,   y_{i+d/2} = x_i sin + x_{i+d/2} cos
 * The angle is computed in fp64 (ggml's CPU builds it by repeated float
 * multiplication, its CUDA and HF's torch code in float32: they round differently).
 *
 * mag, per output element, in units of the float32 unit roundoff a float
 * implementation works in (the tolerance multiplies by a few u32):
 *   (theta_i * (i + 2) + 1) * (|x_i| + |x_pair|) + |y_i|
 * - the products and the sum x_i cos -+ x_pair sin round to a few u32 of
 *   |x_i| + |x_pair| (not of |y|: the two products can cancel);
 * - a float angle carries a relative error of up to (i + 2) u32 when
 *   base^(-2i/d) is built by repeated multiplication (ggml's CPU), about 3 u32
 *   with powf; y moves by |d theta| (|x_i| + |x_pair|). */
#include "ref/ref.h"
#include "ref/ref_util.h"

#include <math.h>
#include <stdlib.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct {
    int64_t heads, d;
    double theta;
    const double *x;
    const int32_t *pos;
    double *y, *mag;
} rope_job;

static void rope_token(int64_t t, void *p) {
    const rope_job *j = p;
    const int64_t d = j->d, half = d / 2, heads = j->heads;
    double *angle = ref_malloc((size_t)half * sizeof(double));
    double *cs = ref_malloc((size_t)half * sizeof(double));
    double *sn = ref_malloc((size_t)half * sizeof(double));
    for (int64_t i = 0; i < half; i++) {
        angle[i] = (double)j->pos[t] * pow(j->theta, -2.0 * (double)i / (double)d);
        cs[i] = cos(angle[i]);
        sn[i] = sin(angle[i]);
    }
    for (int64_t h = 0; h < heads; h++) {
        const int64_t base = (t * heads + h) * d;
        const double *x = j->x + base;
        double *y = j->y + base;
        for (int64_t i = 0; i < half; i++) {
            const double x0 = x[i], x1 = x[i + half];
            y[i] = x0 * cs[i] - x1 * sn[i];
            y[i + half] = x0 * sn[i] + x1 * cs[i];
        }
        if (j->mag) {
            double *mg = j->mag + base;
            for (int64_t i = 0; i < half; i++) {
                const double e = (angle[i] * (double)(i + 2) + 1.0) * (fabs(x[i]) + fabs(x[i + half]));
                mg[i] = e + fabs(y[i]);
                mg[i + half] = e + fabs(y[i + half]);
            }
        }
    }
    free(angle);
    free(cs);
    free(sn);
}

void ref_rope_neox(int64_t n, int64_t heads, int64_t head_dim, double theta, const double *x, const int32_t *pos,
                   double *y, double *mag) {
    if (head_dim % 2) ref_abort("ref_rope_neox: head_dim must be even");
    rope_job j = {heads, head_dim, theta, x, pos, y, mag};
    kb_parallel_for(n, rope_token, &j);
}

/* g_i < 1/(2 pi); fp64 gives 53 significant bits, so the fraction's error is < 2^-53 g_i
 * and pos * error stays below 2^-30 turn for any int32 position. A backend then forms
 * (pos * g_i) mod 1 exactly in integer arithmetic (kernels/spirv/rope_neox.comp). */
void kb_rope_turns(double theta, int64_t head_dim, uint32_t *tab) {
    const double two_pi = 6.283185307179586476925286766559;
    for (int64_t i = 0; i < head_dim / 2; i++) {
        const double gi = pow(theta, -2.0 * (double)i / (double)head_dim) / two_pi;
        const double hi = floor(ldexp(gi, 32));
        const double lo = floor(ldexp(ldexp(gi, 32) - hi, 32));
        tab[2 * i] = (uint32_t)hi;
        tab[2 * i + 1] = (uint32_t)lo;
    }
}
