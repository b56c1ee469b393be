/* fp8_quant.h - the launch plan quant_fp8.c and weight_fp8.c share: fp8_quant.cuh's
 * three launches (block amax -> scales -> codes) over rows x c->k values. */
#ifndef KB_CUDA_FP8_QUANT_H
#define KB_CUDA_FP8_QUANT_H

#include "kernels/cuda/cuda_ops.h"

/* Tensors: 0 the input, 1 the codes, 2 the scales. amax_kernel and quant_kernel are
 * the input type's entry points; float_type >= 0 is passed after k (the float
 * input's type code), -1 passes nothing (Q4_K/Q6_K). */
int kbcu_plan_fp8_v1(const kbcu_job *j, kbcu_plan *p, int64_t rows, const char *amax_kernel, const char *quant_kernel,
                     int float_type, char *msg);
/* The checks both ops make: sizes, fp8 type, scale mode (blk128 only when allowed). */
int kbcu_fp8_check(const kbcu_job *j, int64_t rows, int allow_blk128, char *msg);

#endif
