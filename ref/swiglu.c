/* swiglu.c - ref_swiglu: y = silu(gate) * up, silu(g) = g * sigmoid(g) = g / (1 + exp(-g))
 * (Shazeer, "GLU Variants Improve Transformer", 2020; Qwen2MLP computes
 * down(act_fn(gate(x)) * up(x)) with act_fn = SiLU). mag = |y|: every step of a float
 * silu (exp, 1 + e, g / (1 + e), * up) rounds relative to its own result, and the
 * sensitivity of g / (1 + e) to e's relative error is e / (1 + e) <= 1. */
#include "ref/ref.h"

#include <math.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

void ref_swiglu(int64_t count, const double *gate, const double *up, double *y, double *mag) {
    for (int64_t i = 0; i < count; i++) {
        const double g = gate[i];
        y[i] = g / (1.0 + exp(-g)) * up[i];
        if (mag) mag[i] = fabs(y[i]);
    }
}
