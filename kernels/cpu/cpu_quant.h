/* cpu_quant.h - the fp8 quantization body quant_fp8 and weight_fp8 share. */
#ifndef KB_CPU_QUANT_H
#define KB_CPU_QUANT_H

#include "kernels/cpu/cpu_ops.h"

/* Row `row` of the op's input, as floats. */
typedef void (*cpu_fp8_decode_fn)(const cpu_state *s, int64_t row, float *dst);
int cpu_fp8_check(const kb_case *c, int64_t rows, size_t *shared_floats, size_t *slice_floats, char *msg);
/* Quantize rows x c.k into out[0] (codes) and out[1] (scales). */
int cpu_fp8_quantize(cpu_state *s, int64_t rows, cpu_fp8_decode_fn decode);

#endif
