/* formats.h - scalar codecs for every number format kbench touches.
 * Plain, bit-exact C; the oracles in tests/oracle check them against ml_dtypes and gguf. */
#ifndef KB_FORMATS_H
#define KB_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* fp16 (IEEE binary16) and bf16: round to nearest even; NaN stays NaN (quiet),
 * overflow goes to +-inf (IEEE), or to +-max when `saturate` is set. */
uint16_t kb_f32_to_f16(float x, int saturate);
float kb_f16_to_f32(uint16_t h);
uint16_t kb_f32_to_bf16(float x, int saturate);
float kb_bf16_to_f32(uint16_t h);

/* OCP FP8. e4m3 "FN": bias 7, max 448, no inf, NaN = S.1111.111.
 * e5m2: bias 15, max 57344, IEEE inf/NaN.
 * Round to nearest even. saturate = 0: out of range -> NaN (e4m3) / inf (e5m2),
 * as ml_dtypes does; saturate = 1: clamp to +-max (CUDA's __NV_SATFINITE).
 * NaN inputs give NaN either way. Decoding is exact (every fp8 value is a float). */
uint8_t kb_f32_to_e4m3(float x, int saturate);
float kb_e4m3_to_f32(uint8_t v);
uint8_t kb_f32_to_e5m2(float x, int saturate);
float kb_e5m2_to_f32(uint8_t v);

/* ggml K-quants (QK_K = 256). */
#define KB_QK_K 256
#define KB_Q4K_BLOCK_BYTES 144
#define KB_Q6K_BLOCK_BYTES 210

typedef struct {
    uint16_t d;    /* fp16 super-block scale for the sub-block scales */
    uint16_t dmin; /* fp16 super-block scale for the sub-block mins */
    uint8_t scales[12];
    uint8_t qs[128];
} kb_block_q4k;

typedef struct {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} kb_block_q6k;

/* Sub-block j (0..7) 6-bit scale and min from the packed scales[12]. */
void kb_q4k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m);

/* Dequantize nblocks consecutive blocks into 256*nblocks floats, exactly as ggml's
 * dequantize_row_q4_K / dequantize_row_q6_K (float products, same order). */
void kb_dequant_q4k(const kb_block_q4k *x, float *y, int64_t nblocks);
void kb_dequant_q6k(const kb_block_q6k *x, float *y, int64_t nblocks);

/* Quantize 256*nblocks floats to Q4_K, bit-identical to ggml's
 * quantize_row_q4_K_ref (no importance matrix). */
void kb_quantize_q4k(const float *x, kb_block_q4k *y, int64_t nblocks);
/* A plain Q6_K quantizer (per-16 absmax scales) for building Q6_K tables; it need
 * not match ggml's, only produce valid blocks. */
void kb_quantize_q6k(const float *x, kb_block_q6k *y, int64_t nblocks);

#endif
