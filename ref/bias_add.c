/* bias_add.c - ref_bias_add: y[n][m] = x[n][m] + bias[m] (the q/k/v projection
 * biases of Qwen2: nn.Linear(..., bias=True) adds b after x W^T). mag = |x| + |b|. */
#include "ref/ref.h"

#include <math.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

void ref_bias_add(int64_t n, int64_t m, const double *x, const double *bias, double *y, double *mag) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < m; i++) {
            y[t * m + i] = x[t * m + i] + bias[i];
            if (mag) mag[t * m + i] = fabs(x[t * m + i]) + fabs(bias[i]);
        }
}
