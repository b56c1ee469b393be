/* common.h - what the op entries (bench/ops/<op>.c) share. Not part of the registry
 * API: op.h is. */
#ifndef KB_OPS_COMMON_H
#define KB_OPS_COMMON_H

#include "bench/gen.h"
#include "bench/op.h"
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U32 (1.0 / 16777216.0) /* 2^-24, float32 unit roundoff */

static inline void op_tensor(kb_tensor *t, const char *name, kb_dtype type, int64_t count) {
    t->name = name;
    t->type = type;
    t->count = count;
}

/* A tensor's values as a new double array (kb_decode); the caller frees it. */
double *op_decode(const kb_tensor *t);

/* KB_OK, or KB_ERROR with "<what> must be positive" */
int op_positive(char *msg, const char *what, int64_t v);

static inline void op_tol(kb_tolerance *t, double rel, double acc, double abs, const char *formula) {
    t->rel = rel;
    t->acc = acc;
    t->abs = abs;
    snprintf(t->formula, sizeof t->formula, "%s", formula);
}

/* The tolerance of an fp8 quantization's outputs (quant_fp8, weight_fp8):
 * out 0, the codes: within half an fp8 step of the exact quotient x/s (a correct
 * rounding), plus a few u32 for a float quotient; out 1, the scales: amax/fp8_max
 * rounded to f32 by a division accurate to a few ulp. */
void op_fp8_quant_tolerance(kb_dtype fp8, int out, kb_tolerance *t);

#endif

/* a_type of the glue ops' "activation from a GEMM" operand: f32, f16 or bf16. */
int op_validate_float_type(char *msg, const char *op, const char *what, kb_dtype t);
/* rows x len activations (gen.h) of kind/scale, rounded to t (f32, f16, bf16). */
void op_gen_float(uint64_t seed, kb_dtype t, void *dst, int64_t rows, int64_t len, uint64_t stream, int kind,
                  double scale);
/* The reference of quant_fp8 / weight_fp8 over rows x c->k of c->a_type:
 * out[0] the exact quotients x/s (ref_quant_fp8), out[1] the float32 scales as the
 * definition rounds them. */
void op_fp8_quant_reference(const kb_case *c, int64_t rows, const void *x, kb_ref_out *out);
