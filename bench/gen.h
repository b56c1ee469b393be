/* gen.h - seeded, realistic input generators the op entries share.
 *
 * Inputs are generated row by row, each row from its own rng stream, so a parallel
 * fill gives the same bytes whatever the thread count; never exact zeros. */
#ifndef KB_GEN_H
#define KB_GEN_H

#include "bench/kbench.h"

/* splitmix64 seeds xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom
 * number generators", 2021). */
typedef struct {
    uint64_t s[4];
} kb_rng;
void kb_rng_seed(kb_rng *r, uint64_t seed, uint64_t stream);
uint64_t kb_rng_next(kb_rng *r);
double kb_rng_uniform(kb_rng *r); /* [0, 1) */
double kb_rng_normal(kb_rng *r);  /* N(0, 1), Box-Muller */

/* rows x len float32 activations from (seed, stream).
 * KB_GEN_RESIDUAL: like an LLM residual stream: N(0,1) per element times a per-row
 *   scale (log-uniform over [1e-3, 10]: early-layer rows are tiny, which is where an
 *   eps bug shows), plus about 1 in 512 fixed outlier channels x20.
 * KB_GEN_PLAIN: N(0, scale^2). */
enum { KB_GEN_PLAIN = 0, KB_GEN_RESIDUAL = 1 };
void kb_gen_activations(uint64_t seed, float *dst, int64_t rows, int64_t len, uint64_t stream, int kind,
                        double scale);
/* rows x len Q4_K or Q6_K weights as a model has them: float weights N(0, s^2) with
 * s around 0.02 varying per row, quantized with ggml's reference quantizer (Q4_K)
 * or a plain one (Q6_K). len % 256 == 0. */
void kb_gen_kquant_rows(uint64_t seed, kb_dtype t, void *dst, int64_t rows, int64_t len, uint64_t stream);
/* rows x len fp8 values quantized from activations of `kind` (ref_quant_fp8:
 * amax scales in layout mode), the scales into `scales`. */
void kb_gen_fp8(uint64_t seed, kb_dtype fp8, kb_scale_mode mode, uint8_t *dst, float *scales, int64_t rows,
                int64_t len, uint64_t stream, int kind, double scale);

#endif
