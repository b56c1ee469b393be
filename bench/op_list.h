/* op_list.h - every op kbench knows, in listing order. Adding an op: a line here,
 * its reference (ref/<op>.c), its entry (bench/ops/<op>.c), one kernel file per
 * backend (kernels/cpu/<op>.c, kernels/cuda/<op>.cu, kernels/spirv/<op>.comp) and a
 * block in the shape tables (README "Adding an op"). */
#ifndef KB_OP_LIST_H
#define KB_OP_LIST_H

#define KB_OP_LIST(X) \
    X(dequant_q4k)    \
    X(rmsnorm)        \
    X(gemm_fp8)       \
    X(rope_neox)      \
    X(attention)      \
    X(embed)          \
    X(gemm_f32)       \
    X(add)            \
    X(bias_add)       \
    X(swiglu)         \
    X(quant_fp8)      \
    X(weight_fp8)

#endif
