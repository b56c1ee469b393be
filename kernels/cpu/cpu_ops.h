/* cpu_ops.h - what the float32 cpu backend's op files share with backend_cpu.c.
 *
 * The cpu backend is plain float32 C, like a CPU inference path (ggml's CPU backend
 * is the model): float32 data, float32 accumulation, float32 libm (expf, sqrtf,
 * cosf, sinf, powf), threads over independent rows. Each op lives in its own file
 * and provides a check (can this case run here?) and a run. */
#ifndef KB_CPU_OPS_H
#define KB_CPU_OPS_H

#include "bench/kbench.h"
#include "ref/formats.h"

/* Variants: "f32" is the backend; the test_* ones exist only to prove that the
 * harness catches each kind of failure (listed only when KB_TEST_VARIANTS=1). */
typedef enum {
    CPU_VARIANT_F32 = 0,
    CPU_VARIANT_TEST_UNWRITTEN, /* the last output element is left unwritten */
    CPU_VARIANT_TEST_OFF1E3,    /* 1e-3 added to the middle element */
    CPU_VARIANT_TEST_NAN,       /* NaN written into the middle element */
    CPU_VARIANT_TEST_EPS1E5,    /* rmsnorm only: eps 1e-5 instead of the case's */
    CPU_VARIANT_COUNT
} cpu_variant_kind;

typedef struct cpu_state {
    kb_case c; /* a copy; test_eps1e5 changes its eps */
    cpu_variant_kind kind;
    const void *in[KB_MAX_INPUTS];
    void *out;
    kb_dtype out_type;
    int64_t out_count;
    int slices;    /* independent slices of work, one per thread (kb_ref_threads at prepare) */
    float *shared; /* working memory of the whole op (gemm: X decoded), shared_floats */
    float *slice_mem; /* working memory per slice, slices x slice_floats */
    size_t shared_floats, slice_floats;
    float fp8_table[2][256]; /* gemm: the values of the fp8 codes of W and X */
} cpu_state;

/* Run fn(s, slice, begin, end, arg) for s->slices contiguous slices of [0, count)
 * over the reference thread pool (kb_parallel_for); slice i may use
 * cpu_slice_mem(s, i). Slice boundaries never change a result: every output is
 * computed the same way wherever it lands. */
typedef void (*cpu_slice_fn)(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg);
void cpu_for_slices(const cpu_state *s, int64_t count, cpu_slice_fn fn, void *arg);
float *cpu_slice_mem(const cpu_state *s, int slice);

/* One op of the cpu backend. check: KB_OK, or KB_NOT_SUPPORTED with the reason,
 * plus the working memory (floats) the op needs in all and per slice. setup
 * (optional) runs once in prepare, after buffers are bound. run: KB_OK or KB_ERROR. */
typedef struct {
    int (*check)(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg);
    void (*setup)(cpu_state *s);
    int (*run)(cpu_state *s, char *msg);
    const char *detail; /* how it computes, for the variant's detail text */
} cpu_op;

extern const cpu_op cpu_op_dequant_q4k, cpu_op_rmsnorm, cpu_op_gemm_fp8, cpu_op_rope_neox, cpu_op_attention,
    cpu_op_embed;

/* ggml's dequantize_row_q4_K, written out here (not borrowed from ref/formats.c) so
 * that the cpu backend checks the reference's codec instead of sharing it. */
void cpu_dequant_q4k_blocks(const kb_block_q4k *x, float *y, int64_t nblocks);

#endif
