/* ref.h - the scalar fp64 references: the oracle every backend is judged by.
 *
 * Each returns the exact-as-possible result in double (fp64 accumulation, inputs
 * decoded exactly) plus, where the op accumulates, `mag`: the magnitude the
 * rounding error of a float implementation scales with (for a sum, sum |terms|).
 * The tolerance model (bench/ops.c) uses both. mag may be NULL when not wanted.
 * Rounding to an output type is a separate step (kb_round_to), never folded in.
 *
 * Independent outputs are spread over `threads` pthreads (0 = all cores); every
 * output is computed by exactly one thread in a fixed order, so the result bits do
 * not depend on the thread count. Tensor layouts: bench/kbench.h. */
#ifndef KB_REF_H
#define KB_REF_H

#include "../bench/kbench.h"
#include "formats.h"

void kb_set_ref_threads(int threads); /* 0 = number of online cores */
int kb_ref_threads(void);

/* Decode `count` elements of any kbench dtype to double (exact). */
void kb_decode(kb_dtype t, const void *src, double *dst, int64_t count);
/* Round doubles to `t` (F32/F16/BF16/E4M3/E5M2, nearest even, IEEE overflow)
 * into dst; then the value that type holds. */
void kb_round_to(kb_dtype t, const double *src, void *dst, int64_t count);

void ref_dequant_q4k(const kb_case *c, const kb_block_q4k *w, double *out);
void ref_rmsnorm(const kb_case *c, const float *x, const float *w, double *out, double *mag);
void ref_gemm_fp8(const kb_case *c, const void *a, const void *b, const float *sa, const float *sb, double *out,
                  double *mag);
void ref_rope_neox(const kb_case *c, const float *x, const int32_t *pos, double *out, double *mag);
void ref_attention(const kb_case *c, const float *q, const float *k, const float *v, double *out, double *mag);
void ref_embed(const kb_case *c, const void *table, const int32_t *ids, double *out);

/* Run fn(i, arg) for i in [0, n) over the reference thread pool, static chunks. */
void kb_parallel_for(int64_t n, void (*fn)(int64_t i, void *arg), void *arg);

#endif
