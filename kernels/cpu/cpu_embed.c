/* cpu_embed.c - embedding lookup: the rows ids[t] of the token table, decoded to
 * float32 (ggml_get_rows). Q4_K rows go through this backend's own dequant
 * (cpu_dequant_q4k.c), Q6_K through ref/formats.c's ggml dequantize_row_q6_K. */
#include "kernels/cpu/cpu_ops.h"

#include <string.h>

static int embed_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = 0;
    *slice_floats = 0;
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "embed needs m, n, k >= 1");
    switch (c->a_type) {
    case KB_F32:
    case KB_F16: return KB_OK;
    case KB_Q4K:
    case KB_Q6K:
        if (c->k % KB_QK_K)
            return kb_fail(msg, KB_NOT_SUPPORTED, "embed: a %s table needs k a multiple of 256",
                           kb_dtype_name(c->a_type));
        return KB_OK;
    default:
        return kb_fail(msg, KB_NOT_SUPPORTED, "embed: table type %s (cpu takes q4_k, q6_k, f16, f32)",
                       kb_dtype_name(c->a_type));
    }
}

static void embed_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)slice;
    (void)arg;
    const int64_t k = s->c.k;
    const size_t row_bytes = kb_dtype_bytes(s->c.a_type, k);
    const int32_t *ids = s->in[1];
    for (int64_t t = begin; t < end; t++) {
        /* test_wrong_row: the row after the one asked for (the last wraps to 0) */
        const int64_t id = s->test == CPU_OP_TEST(0) ? (ids[t] + 1) % s->c.m : ids[t];
        const uint8_t *row = (const uint8_t *)s->in[0] + (size_t)id * row_bytes;
        float *y = (float *)s->out[0] + t * k;
        switch (s->c.a_type) {
        case KB_F32: memcpy(y, row, (size_t)k * sizeof(float)); break;
        case KB_F16:
            for (int64_t i = 0; i < k; i++) y[i] = kb_f16_to_f32(((const uint16_t *)row)[i]);
            break;
        case KB_Q4K: cpu_dequant_q4k_blocks((const kb_block_q4k *)row, y, k / KB_QK_K); break;
        case KB_Q6K: kb_dequant_q6k((const kb_block_q6k *)row, y, k / KB_QK_K); break;
        default: break; /* refused by embed_check */
        }
    }
}

static int embed_run(cpu_state *s, char *msg) {
    const int32_t *ids = s->in[1];
    for (int64_t t = 0; t < s->c.n; t++)
        if (ids[t] < 0 || ids[t] >= s->c.m)
            return kb_fail(msg, KB_ERROR, "embed: token id %d at %lld is outside the table (%lld rows)", ids[t],
                           (long long)t, (long long)s->c.m);
    cpu_for_slices(s, s->c.n, embed_rows, NULL);
    return KB_OK;
}

static const cpu_test embed_tests[] = {{"test_wrong_row", "TEST ONLY: looks up row id+1 instead of id"}, {NULL, NULL}};

const cpu_op cpu_op_embed = {embed_check, NULL, embed_run,
                             "ggml get_rows: rows decoded to float32 (Q4_K/Q6_K ggml dequant, f16 widen)", embed_tests};
