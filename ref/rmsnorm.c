/* rmsnorm.c - ref_rmsnorm: y_i = x_i / sqrt(mean_j(x_j^2) + eps) * w_i.
 * Zhang & Sennrich, "Root Mean Square Layer Normalization" (2019); eps inside the
 * root and the weight applied after, as HF's Qwen2RMSNorm and ggml_rms_norm +
 * ggml_mul do. */
#include "ref/ref.h"

#include <math.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct {
    int64_t k;
    double eps;
    const double *x, *w;
    double *y, *mag;
} rmsnorm_job;

static void rmsnorm_row(int64_t row, void *p) {
    const rmsnorm_job *j = p;
    const int64_t k = j->k;
    const double *x = j->x + row * k;
    double sum_sq = 0.0;
    for (int64_t i = 0; i < k; i++) sum_sq += x[i] * x[i];
    const double rms = sqrt(sum_sq / (double)k + j->eps);
    double *y = j->y + row * k;
    for (int64_t i = 0; i < k; i++) y[i] = x[i] / rms * j->w[i];
    if (j->mag)
        for (int64_t i = 0; i < k; i++) j->mag[row * k + i] = fabs(y[i]);
}

void ref_rmsnorm(int64_t n, int64_t k, double eps, const double *x, const double *w, double *y, double *mag) {
    rmsnorm_job j = {k, eps, x, w, y, mag};
    kb_parallel_for(n, rmsnorm_row, &j);
}
