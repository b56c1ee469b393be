/* types.h - the number formats and scale layouts every part of kbench names.
 *
 * ref/ builds alone: the references, the codecs and this header depend on nothing
 * in bench/ or kernels/. docs/FORMATS.md states the formats' facts with sources. */
#ifndef KB_TYPES_H
#define KB_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* ---- element types ------------------------------------------------------ */
typedef enum {
    KB_F32 = 0,
    KB_F16,
    KB_BF16,
    KB_E4M3, /* OCP FP8 e4m3 "FN": bias 7, max 448, no inf */
    KB_E5M2, /* OCP FP8 e5m2: bias 15, max 57344, IEEE inf/NaN */
    KB_Q4K,  /* ggml Q4_K: 256 values per 144-byte block */
    KB_Q6K,  /* ggml Q6_K: 256 values per 210-byte block */
    KB_I32,
    KB_DTYPE_COUNT
} kb_dtype;

const char *kb_dtype_name(kb_dtype t);
int kb_dtype_parse(const char *s, kb_dtype *t); /* 0 on success */
int kb_dtype_is_fp8(kb_dtype t);
int kb_dtype_is_kquant(kb_dtype t);
/* The float types kernels read and write, numbered: f32 0, f16 1, bf16 2; -1 for any other. */
int kb_dtype_float_index(kb_dtype t);
int kb_dtype_is_float(kb_dtype t); /* f32, f16, bf16 */
/* Values per storage block: 256 for Q4_K/Q6_K, 1 otherwise. */
int64_t kb_dtype_block(kb_dtype t);
/* Bytes of `count` elements (count a multiple of kb_dtype_block). UINT64_MAX when
 * count is negative, not a whole number of blocks, or the product overflows. */
uint64_t kb_dtype_bytes(kb_dtype t, int64_t count);

/* Unit roundoff of a float type (2^-24 f32, 2^-11 f16, 2^-8 bf16, 2^-4 e4m3,
 * 2^-3 e5m2) and its largest finite value. */
double kb_unit_roundoff(kb_dtype t);
double kb_max_finite(kb_dtype t);
/* Smallest positive normal value of a float type (2^-6 for e4m3, 2^-14 e5m2/f16). */
double kb_min_normal(kb_dtype t);
/* Spacing of the subnormals: 2^-9 e4m3, 2^-16 e5m2, 2^-24 f16, 2^-133 bf16, 2^-149 f32. */
double kb_subnormal_step(kb_dtype t);

/* ---- FP8 scale layouts ---------------------------------------------------- */
/* How a matrix of `rows` x `k` fp8 values carries its float32 scales.
 * kb = ceil(k / 128), mb = ceil(rows / 128).
 *   TENSOR: s[1]
 *   OUTER : s[rows]                 one per row (W: output channel; X: token)
 *   VEC128: s[rows][kb]             1x128 blocks along k
 *   BLK128: s[mb][kb]               128x128 blocks (a weight layout; an activation
 *                                   operand of a BLK128 GEMM carries VEC128 scales)
 * A GEMM D = W X^T in mode M reads W's scales in layout M and X's in layout M,
 * except BLK128, whose X scales are VEC128 (cuBLASLt takes no 128x128 on both). */
typedef enum { KB_SCALE_TENSOR = 0, KB_SCALE_OUTER, KB_SCALE_VEC128, KB_SCALE_BLK128, KB_SCALE_COUNT } kb_scale_mode;

const char *kb_scale_mode_name(kb_scale_mode s);
int kb_scale_mode_parse(const char *s, kb_scale_mode *m); /* 0 on success */
/* The layout X's scales take in a GEMM of mode m (BLK128 -> VEC128, else m). */
kb_scale_mode kb_scale_mode_for_x(kb_scale_mode m);
/* Number of scales of a rows x k matrix in layout m. */
int64_t kb_scale_count(kb_scale_mode m, int64_t rows, int64_t k);
/* Index of the scale of element (row, col) in layout m. */
int64_t kb_scale_index(kb_scale_mode m, int64_t row, int64_t col, int64_t k);

#endif
