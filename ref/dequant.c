/* dequant.c - ref_dequant: the values of ggml Q4_K / Q6_K blocks.
 * Definition: ggml's dequantize_row_q4_K / dequantize_row_q6_K (ggml-quants.c),
 * docs/FORMATS.md; their float arithmetic is part of the format, so kb_decode's
 * float results are the exact values the blocks stand for. */
#include "ref/ref.h"
#include "ref/ref_util.h"

#include <math.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Q4_K: y = (d*sc)*q - (dmin*m); a float decode rounds the two products and the
 * difference, which cancels: the error scales with |d*sc*q| + |dmin*m|, not |y|. */
static void q4k_block_mag(const kb_block_q4k *b, double *mag) {
    const double d = kb_f16_to_f32(b->d), dmin = kb_f16_to_f32(b->dmin);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        kb_q4k_scale_min(j, b->scales, &sc, &m);
        const uint8_t *q = b->qs + 32 * (j / 2);
        for (int l = 0; l < 32; l++) {
            const int v = (j & 1) ? (q[l] >> 4) : (q[l] & 15);
            mag[j * 32 + l] = fabs(d * sc * v) + fabs(dmin * m);
        }
    }
}

/* Decode one row of k values (k % 256 == 0) and its mag. */
static void kquant_row(kb_dtype t, const void *row, int64_t k, double *out, double *mag) {
    kb_decode(t, row, out, k);
    if (!mag) return;
    if (t == KB_Q4K) {
        for (int64_t b = 0; b < k / KB_QK_K; b++) q4k_block_mag((const kb_block_q4k *)row + b, mag + b * KB_QK_K);
    } else {
        for (int64_t i = 0; i < k; i++) mag[i] = fabs(out[i]);
    }
}

typedef struct {
    kb_dtype t;
    const uint8_t *blocks;
    int64_t k;
    double *out, *mag;
} dequant_job;

static void dequant_row(int64_t row, void *p) {
    const dequant_job *j = p;
    const uint64_t row_bytes = kb_dtype_bytes(j->t, j->k);
    kquant_row(j->t, j->blocks + row * row_bytes, j->k, j->out + row * j->k, j->mag ? j->mag + row * j->k : NULL);
}

void ref_dequant(kb_dtype t, const void *blocks, int64_t rows, int64_t k, double *out, double *mag) {
    if (!kb_dtype_is_kquant(t) || k % KB_QK_K) ref_abort("ref_dequant: Q4_K/Q6_K with k a multiple of 256");
    dequant_job j = {t, blocks, k, out, mag};
    kb_parallel_for(rows, dequant_row, &j);
}

/* ---- embed ---------------------------------------------------------------------- */
/* out[t] = the decoded row ids[t] of the table (ggml_get_rows). */
typedef struct {
    kb_dtype t;
    const uint8_t *table;
    int64_t vocab, k;
    const int32_t *ids;
    double *out, *mag;
} embed_job;

static void embed_row(int64_t t, void *p) {
    const embed_job *j = p;
    double *y = j->out + t * j->k, *mg = j->mag ? j->mag + t * j->k : NULL;
    const int64_t id = j->ids[t];
    if (id < 0 || id >= j->vocab) {
        for (int64_t i = 0; i < j->k; i++) {
            y[i] = NAN;
            if (mg) mg[i] = NAN;
        }
        return;
    }
    const uint8_t *row = j->table + (uint64_t)id * kb_dtype_bytes(j->t, j->k);
    if (kb_dtype_is_kquant(j->t)) {
        kquant_row(j->t, row, j->k, y, mg);
    } else {
        kb_decode(j->t, row, y, j->k);
        if (mg)
            for (int64_t i = 0; i < j->k; i++) mg[i] = fabs(y[i]);
    }
}

void ref_embed(kb_dtype t, const void *table, int64_t vocab, int64_t k, const int32_t *ids, int64_t n, double *out,
               double *mag) {
    if (t != KB_Q4K && t != KB_Q6K && t != KB_F16 && t != KB_F32)
        ref_abort("ref_embed: table type must be Q4_K, Q6_K, F16 or F32");
    if (kb_dtype_is_kquant(t) && k % KB_QK_K) ref_abort("ref_embed: a Q4_K/Q6_K row is a multiple of 256");
    embed_job j = {t, table, vocab, k, ids, out, mag};
    kb_parallel_for(n, embed_row, &j);
}
