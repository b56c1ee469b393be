/* cpu_ops.h - what the float32 cpu backend's op files share with backend_cpu.c.
 *
 * The cpu backend is plain float32 C, like a CPU inference path (ggml's CPU backend
 * is the model): float32 data, float32 accumulation, float32 libm (expf, sqrtf,
 * cosf, sinf, powf), threads over independent rows. Each op lives in its own file,
 * kernels/cpu/cpu_<op>.c, defining `const cpu_op cpu_op_<op>` (bench/op_list.h names
 * them all): a check (can this case run here?), a run, and the op's own test-only
 * broken variants. */
#ifndef KB_CPU_OPS_H
#define KB_CPU_OPS_H

#include "bench/kbench.h"
#include "ref/formats.h"
#include "ref/pool.h"

/* Test-only variants every op has (listed only when KB_TEST_VARIANTS=1): they run
 * the op and then damage output 0, to prove the harness catches each failure. */
typedef enum {
    CPU_TEST_NONE = 0,
    CPU_TEST_UNWRITTEN, /* the last output element is left unwritten */
    CPU_TEST_OFF1E3,    /* 1e-3 added to the middle element (one code up in a narrow type) */
    CPU_TEST_NAN,       /* NaN written into the middle element */
    CPU_TEST_NONDET,    /* the middle element's last bit differs from run to run (a racy reduction) */
    CPU_TEST_GENERIC_COUNT
} cpu_generic_test;

typedef struct cpu_state {
    kb_case c;
    int test;            /* 0: the real kernel; 1..: generic tests; 100 + i: the op's tests[i] */
    unsigned runs;       /* runs so far (CPU_TEST_NONDET) */
    const void *in[KB_MAX_ARGS];
    void *out[KB_MAX_ARGS];
    kb_dtype out_type[KB_MAX_ARGS];
    int64_t out_count[KB_MAX_ARGS];
    int n_in, n_out;
    int slices;       /* independent slices of work, one per thread (kb_ref_threads at prepare) */
    float *shared;    /* working memory of the whole op (gemm: X decoded), shared_floats */
    float *slice_mem; /* working memory per slice, slices x slice_floats */
    size_t shared_floats, slice_floats;
    float fp8_table[2][256]; /* gemm: the values of the fp8 codes of W and X */
} cpu_state;
#define CPU_OP_TEST(i) (100 + (i))

/* Run fn(s, slice, begin, end, arg) for s->slices contiguous slices of [0, count)
 * over the thread pool; slice i may use cpu_slice_mem(s, i). Slice boundaries never
 * change a result: every output is computed the same way wherever it lands. */
typedef void (*cpu_slice_fn)(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg);
void cpu_for_slices(const cpu_state *s, int64_t count, cpu_slice_fn fn, void *arg);
float *cpu_slice_mem(const cpu_state *s, int slice);

/* An op's own test-only broken variant: a name and what it breaks. */
typedef struct {
    const char *name;
    const char *detail;
} cpu_test;

/* One op of the cpu backend. check: KB_OK, or KB_NOT_SUPPORTED with the reason,
 * plus the working memory (floats) the op needs in all and per slice. setup
 * (optional) runs once in prepare. run: KB_OK or KB_ERROR. */
typedef struct {
    int (*check)(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg);
    void (*setup)(cpu_state *s);
    int (*run)(cpu_state *s, char *msg);
    const char *detail;    /* how it computes, for the variant's detail text */
    const cpu_test *tests; /* the op's own broken variants, NULL-name terminated (or NULL) */
} cpu_op;

#define CPU_OP_DECL(name) extern const cpu_op cpu_op_##name;
KB_OP_LIST(CPU_OP_DECL)
#undef CPU_OP_DECL

/* ggml's dequantize_row_q4_K, written out here (not borrowed from ref/formats.c) so
 * that the cpu backend checks the reference's codec instead of sharing it. */
void cpu_dequant_q4k_blocks(const kb_block_q4k *x, float *y, int64_t nblocks);
/* Values of one element of a float/fp8 type, and the store that rounds to it. */
float cpu_load(kb_dtype t, const void *p, int64_t i);
void cpu_store(kb_dtype t, void *p, int64_t i, float v);

#endif
