/* cpu_weight_fp8.c - Q4_K/Q6_K weights to fp8 with amax scales: each row dequantized
 * as ggml does (cpu_dequant_q4k.c), then cpu_quant_fp8.c's quantization. */
#include "kernels/cpu/cpu_quant.h"

static void decode_kquant_row(const cpu_state *s, int64_t row, float *dst) {
    const int64_t nb = s->c.k / KB_QK_K;
    if (s->c.a_type == KB_Q4K)
        cpu_dequant_q4k_blocks((const kb_block_q4k *)s->in[0] + row * nb, dst, nb);
    else
        kb_dequant_q6k((const kb_block_q6k *)s->in[0] + row * nb, dst, nb);
}

static int weight_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    if (!kb_dtype_is_kquant(c->a_type) || c->k % KB_QK_K)
        return kb_fail(msg, KB_NOT_SUPPORTED, "weight_fp8: q4_k or q6_k rows of a multiple of 256");
    return cpu_fp8_check(c, c->m, shared_floats, slice_floats, msg);
}

static int weight_run(cpu_state *s, char *msg) {
    (void)msg;
    return cpu_fp8_quantize(s, s->c.m, decode_kquant_row);
}

const cpu_op cpu_op_weight_fp8 = {weight_check, NULL, weight_run,
                                  "ggml dequant to float32, then amax per group and fp8(w/s) saturating", NULL};
