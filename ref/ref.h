/* ref.h - the scalar fp64 references: the oracle every backend is judged by.
 *
 * Each computes the exact-as-possible result in double (inputs decoded exactly,
 * fp64 accumulation in a fixed order) plus `mag`: the magnitude the rounding error
 * of a float implementation scales with (for a sum, sum |terms|). The op registry's
 * tolerance model (bench/ops/) multiplies mag by the unit roundoffs involved. mag
 * may be NULL. Rounding to an output type is a separate step (kb_round_to).
 *
 * Work is spread over the pool (ref/pool.h) by independent outputs; every output is
 * computed by one thread in one fixed order, so no result depends on the thread
 * count. All tensors are row-major, innermost index last; float activations come in
 * as doubles (decode them with kb_decode), quantized operands in their own type.
 * Each definition and its source is stated in the reference's own file. */
#ifndef KB_REF_H
#define KB_REF_H

#include "ref/convert.h"
#include "ref/formats.h"
#include "ref/pool.h"
#include "ref/types.h"

/* dequant (ref/dequant.c): out[rows][k] = the values of Q4_K or Q6_K blocks.
 * mag: Q4_K |d*sc*q| + |dmin*m| (the two products a float decode rounds); Q6_K |y|. */
void ref_dequant(kb_dtype t, const void *blocks, int64_t rows, int64_t k, double *out, double *mag);

/* rmsnorm (ref/rmsnorm.c): y[n][k] = x / sqrt(mean(x^2) + eps) * w. mag = |y|. */
void ref_rmsnorm(int64_t n, int64_t k, double eps, const double *x, const double *w, double *y, double *mag);

/* gemm_fp8 (ref/gemm.c): D[n][m] = scaled sum_k W[m][k] X[n][k] over fp8 operands,
 * scales in the layouts of ref/types.h. mag = sum over blocks |scale| sum |w x|. */
typedef struct {
    int64_t m, n, k;
    kb_dtype a_type, b_type; /* e4m3 / e5m2 */
    kb_scale_mode scale_mode;
} ref_gemm_fp8_dims;
void ref_gemm_fp8(const ref_gemm_fp8_dims *d, const void *w, const void *x, const float *sa, const float *sb,
                  double *out, double *mag);

/* matmul (ref/gemm.c): out[n][m] = sum_k W[m][k] x[n][k], W of any type kb_decode
 * takes (f32, f16, bf16, fp8, Q4_K, Q6_K), decoded row by row. mag = sum |w x|. */
void ref_matmul(int64_t m, int64_t n, int64_t k, kb_dtype w_type, const void *w, const double *x, double *out,
                double *mag);

/* rope_neox (ref/rope_neox.c): rotate pairs (i, i + d/2) of every head by
 * pos * theta^(-2i/d). mag: see the file (angle error of a float implementation). */
void ref_rope_neox(int64_t n, int64_t heads, int64_t head_dim, double theta, const double *x, const int32_t *pos,
                   double *y, double *mag);
/* For the GPU backends' rope without fp64 (ref/rope_neox.c): per i < head_dim/2 the
 * frequency in turns per position, g_i = theta^(-2i/d) / (2 pi), as the 64-bit binary
 * fraction floor(g_i * 2^64): tab[2i] its high 32 bits, tab[2i+1] its low 32. */
void kb_rope_turns(double theta, int64_t head_dim, uint32_t *tab);

/* attention (ref/attention.c): causal GQA softmax(q k^T / sqrt(d)) v; query i sits
 * at position kv_len - n + i. q [n][heads][d], k, v [kv_len][kv_heads][d]. */
typedef struct {
    int64_t n, kv_len, heads, kv_heads, head_dim;
} ref_attention_dims;
void ref_attention(const ref_attention_dims *d, const double *q, const double *k, const double *v, double *out,
                   double *mag);

/* embed (ref/embed.c): out[t] = decoded row ids[t] of a vocab x k table (Q4_K, Q6_K,
 * F16, F32); an id outside [0, vocab) gives a NaN row. mag as ref_dequant (|y| for
 * f16/f32). */
void ref_embed(kb_dtype t, const void *table, int64_t vocab, int64_t k, const int32_t *ids, int64_t n, double *out,
               double *mag);

/* add (ref/add.c): y = a + b. mag = |a| + |b|. */
void ref_add(int64_t count, const double *a, const double *b, double *y, double *mag);
/* bias_add (ref/bias_add.c): y[n][m] = x[n][m] + bias[m]. mag = |x| + |bias|. */
void ref_bias_add(int64_t n, int64_t m, const double *x, const double *bias, double *y, double *mag);
/* swiglu (ref/swiglu.c): y = silu(gate) * up, silu(g) = g / (1 + exp(-g)). mag = |y|. */
void ref_swiglu(int64_t count, const double *gate, const double *up, double *y, double *mag);

/* quant_fp8 / weight_fp8 (ref/quant_fp8.c): a rows x k matrix of `in_type` (f32, f16,
 * bf16, Q4_K, Q6_K) to fp8 with float32 scales in layout `mode`, as FP8 inference
 * quantizes:
 *   amax_g = max |x| over scale group g        (exact)
 *   s_g    = f32(amax_g / fp8_max), or 1 when amax_g == 0
 *   q      = fp8(f32(x / s_g)), nearest even, saturating at +-fp8_max;
 *            with `flush`, a result that would be subnormal becomes +-0.
 * Outputs: scales [kb_scale_count], codes [rows][k], and quotient[rows][k] = the
 * exact x / s_g (0 where flush zeroes the code): the value a correct rounding of
 * each element must be within half an fp8 step of. Any output may be NULL. */
typedef struct {
    int64_t rows, k;
    kb_dtype in_type;
    kb_dtype fp8; /* e4m3 / e5m2 */
    kb_scale_mode mode;
    int flush;
} ref_quant_fp8_args;
void ref_quant_fp8(const ref_quant_fp8_args *a, const void *x, float *scales, uint8_t *codes, double *quotient);

#endif
