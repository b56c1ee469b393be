/* fp8_quant.h - the dispatch plan quant_fp8 and weight_fp8 share (fp8_quant.glsl is their
 * shader body; they differ in how an element is read). */
#ifndef KB_VK_FP8_QUANT_H
#define KB_VK_FP8_QUANT_H

#include "kernels/spirv/vk_op.h"

/* The variant both offer. */
#define VK_FP8_QUANT_VARIANT "group256"
#define VK_FP8_QUANT_DETAIL                                                                                        \
    "one 256-thread workgroup per scale group (tensor: chunk amax, final amax, codes), exact divisions, bit-exact " \
    "fp8 encoding"

/* rows x c->k of module m (which reads the input) to codes (argument 1) and scales
 * (argument 2). */
int vk_fp8_quant_plan(vk_plan *p, int64_t rows, const vk_module *m, char *msg);

#endif
