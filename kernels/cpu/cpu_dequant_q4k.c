/* cpu_dequant_q4k.c - Q4_K blocks to float32, as ggml's dequantize_row_q4_K does (Q6_K
 * through ref/formats.c's transcription of ggml's dequantize_row_q6_K). */
#include "kernels/cpu/cpu_ops.h"

/* ggml get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed
 * bytes (docs/FORMATS.md). */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void cpu_dequant_q4k_blocks(const kb_block_q4k *x, float *y, int64_t nblocks) {
    for (int64_t b = 0; b < nblocks; b++) {
        const float d = kb_f16_to_f32(x[b].d), dmin = kb_f16_to_f32(x[b].dmin);
        const uint8_t *q = x[b].qs;
        /* four chunks of 64 values: low nibbles are sub-block 2c, high nibbles 2c+1;
         * the sub-block factors are formed as float products first, as ggml does */
        for (int is = 0; is < 8; is += 2) {
            uint8_t sc, m;
            scale_min_k4(is, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(is + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
        }
    }
}

static int dequant_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = 0;
    *slice_floats = 0;
    if (c->m < 1 || c->k < KB_QK_K || c->k % KB_QK_K)
        return kb_fail(msg, KB_NOT_SUPPORTED, "dequant_q4k needs m >= 1 and k a positive multiple of 256");
    if (!kb_dtype_is_kquant(c->a_type)) return kb_fail(msg, KB_NOT_SUPPORTED, "dequant_q4k: q4_k or q6_k blocks");
    return KB_OK;
}

static void dequant_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const int64_t nb = s->c.k / KB_QK_K;
    float *out = s->out[0];
    for (int64_t row = begin; row < end; row++) {
        if (s->c.a_type == KB_Q4K)
            cpu_dequant_q4k_blocks((const kb_block_q4k *)s->in[0] + row * nb, out + row * s->c.k, nb);
        else
            kb_dequant_q6k((const kb_block_q6k *)s->in[0] + row * nb, out + row * s->c.k, nb);
    }
}

static int dequant_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.m, dequant_rows, NULL);
    return KB_OK;
}

const cpu_op cpu_op_dequant_q4k = {dequant_check, NULL, dequant_run,
                                   "ggml dequantize_row_q4_K / _q6_K in float32 (d*sc, dmin*m as float products)", NULL};
