/* cpu_quant_fp8.c - activations to fp8 with amax scales, in float32 as the definition
 * reads (ref/quant_fp8.c): amax per group, s = amax / fp8_max (float division, 1 when
 * amax is 0), q = fp8(x / s) saturating, optional subnormal flush. Also the body of
 * weight_fp8 (cpu_weight_fp8.c), which only decodes its rows differently. */
#include "kernels/cpu/cpu_quant.h"

#include <math.h>
#include <string.h>

int cpu_fp8_check(const kb_case *c, int64_t rows, size_t *shared_floats, size_t *slice_floats, char *msg) {
    if (rows < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "fp8 quantization needs rows, k >= 1");
    if (!kb_dtype_is_fp8(c->out_type)) return kb_fail(msg, KB_NOT_SUPPORTED, "fp8 quantization: e4m3 or e5m2 out");
    const int64_t kb = (c->k + 127) / 128;
    *shared_floats = (size_t)(rows * kb + kb_scale_count(c->scale_mode, rows, c->k));
    *slice_floats = (size_t)c->k;
    return KB_OK;
}

typedef struct {
    int64_t rows;
    cpu_fp8_decode_fn decode;
} quant_job;

static void amax_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    const quant_job *j = arg;
    const int64_t k = s->c.k, kb = (k + 127) / 128;
    float *v = cpu_slice_mem(s, slice);
    for (int64_t r = begin; r < end; r++) {
        j->decode(s, r, v);
        for (int64_t b = 0; b < kb; b++) {
            float m = 0.0f;
            for (int64_t c = b * 128; c < k && c < (b + 1) * 128; c++) m = fmaxf(m, fabsf(v[c]));
            s->shared[r * kb + b] = m;
        }
    }
}

static int subnormal_code(kb_dtype t, uint8_t code) {
    const int mbits = t == KB_E4M3 ? 3 : 2;
    return (code & 0x7f) >> mbits == 0 && (code & ((1 << mbits) - 1)) != 0;
}

static void quant_rows(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    const quant_job *j = arg;
    const int64_t k = s->c.k, kb = (k + 127) / 128;
    const float *scales = s->shared + j->rows * kb;
    uint8_t *q = s->out[0];
    float *v = cpu_slice_mem(s, slice);
    for (int64_t r = begin; r < end; r++) {
        j->decode(s, r, v);
        for (int64_t c = 0; c < k; c++) {
            const float x = v[c] / scales[kb_scale_index(s->c.scale_mode, r, c, k)];
            uint8_t code = s->c.out_type == KB_E4M3 ? kb_f32_to_e4m3(x, 1) : kb_f32_to_e5m2(x, 1);
            if (s->c.flush && subnormal_code(s->c.out_type, code)) code &= 0x80;
            q[r * k + c] = code;
        }
    }
}

int cpu_fp8_quantize(cpu_state *s, int64_t rows, cpu_fp8_decode_fn decode) {
    const int64_t k = s->c.k, kb = (k + 127) / 128;
    const int64_t ns = kb_scale_count(s->c.scale_mode, rows, k);
    quant_job j = {rows, decode};
    cpu_for_slices(s, rows, amax_rows, &j);
    float *scales = s->shared + rows * kb;
    for (int64_t g = 0; g < ns; g++) scales[g] = 0.0f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < kb; b++) {
            const int64_t g = kb_scale_index(s->c.scale_mode, r, b * 128, k);
            scales[g] = fmaxf(scales[g], s->shared[r * kb + b]);
        }
    const float fmax = (float)kb_max_finite(s->c.out_type);
    for (int64_t g = 0; g < ns; g++) scales[g] = scales[g] > 0.0f ? scales[g] / fmax : 1.0f;
    cpu_for_slices(s, rows, quant_rows, &j);
    memcpy(s->out[1], scales, (size_t)ns * sizeof(float));
    return KB_OK;
}

static void decode_float_row(const cpu_state *s, int64_t row, float *dst) {
    for (int64_t c = 0; c < s->c.k; c++) dst[c] = cpu_load(s->c.a_type, s->in[0], row * s->c.k + c);
}

static int quant_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    if (!kb_dtype_is_float(c->a_type)) return kb_fail(msg, KB_NOT_SUPPORTED, "quant_fp8: x is f32, f16 or bf16");
    return cpu_fp8_check(c, c->n, shared_floats, slice_floats, msg);
}

static int quant_run(cpu_state *s, char *msg) {
    (void)msg;
    return cpu_fp8_quantize(s, s->c.n, decode_float_row);
}

const cpu_op cpu_op_quant_fp8 = {quant_check, NULL, quant_run,
                                 "float32 amax per group, s = amax/fp8_max, fp8(x/s) saturating (ref/formats.c codec)", NULL};
