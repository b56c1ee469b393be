/* cuda_ops.h - what an op's CUDA files share with the rest of the cuda backend.
 *
 * Each op owns two files: kernels/cuda/<op>.cu (device code, compiled at run time
 * by NVRTC) and kernels/cuda/<op>.c (host C: its variant table and its launch plan),
 * which defines `const kbcu_op kbcu_op_<op>` for every op of bench/op_list.h. Nothing
 * else in the backend knows an op: the worker turns a plan into launches, the
 * kbench-side front lists the variants.
 *
 * A plan is pure arithmetic (no device): any number of launches, each naming its
 * module (a source and its -D options) and entry point, its grid, block, dynamic
 * shared memory and arguments; plus device workspace. Planning is unit-tested
 * (tests/test_cuda_host.c) and every variant's module is compiled for sm_80, sm_89
 * and sm_90 by tests/test_nvrtc_compile.c. */
#ifndef KB_CUDA_OPS_H
#define KB_CUDA_OPS_H

#include "bench/kbench.h"

#include <stddef.h>
#include <stdint.h>

#define KBCU_OPTS 160 /* a module's -D options */

/* One named variant: a kernel source compiled with fixed tunables. Numbered
 * versions per op, llm.c dev/cuda style: v1 is the simplest correct kernel. */
typedef struct {
    const char *name;    /* what --variant matches: "gemv_v2_b256_u2" */
    const char *source;  /* "gemm_fp8.cu" */
    const char *kernel;  /* entry point(s), for the detail text */
    const char *defines; /* the tunables: "-DWARPS=8 -DUNROLL=2" */
    int min_sm;          /* lowest compute capability, major*10+minor */
    int test_only;       /* a deliberately broken variant, listed only with KB_TEST_VARIANTS=1 */
    int unverified;      /* compiled (NVRTC test) but never run on a GPU: listed only with
                          * KB_CUDA_UNVERIFIED=1, so a default run never meets it */
} kbcu_variant;

/* A tunable of an op's kernels: a -D option a variant may carry, that --tune may set
 * (kb_tune_point). The range is what every kernel of the op that reads it takes: a
 * tuned value outside it is KB_NOT_SUPPORTED before planning, and
 * tests/test_nvrtc_compile.c compiles every value of it. -D options an op does not list
 * here are fixed (attention's KT: lane j scores key j of a 32-key tile). */
typedef struct {
    const char *name; /* the -D option: "BLOCK" */
    int lo, hi;       /* the range */
    int pow2;         /* only the powers of two in it */
    const char *what; /* "threads a block": the reason's words */
} kbcu_tunable;

/* The block size of most kernels: a power of two (the warp-level reductions and the
 * BLOCK/32 warps of the one-warp-per-item kernels), at most CUDA's 1024 threads. */
#define KBCU_TUNE_BLOCK {"BLOCK", 32, 1024, 1, "threads a block"}
/* Programmatic dependent launch (pdl.cuh): an op may list it when every kernel of its
 * module waits (pdl_wait) before touching what the previous kernel may write; a launch of
 * the variant's own module then carries the PDL launch attribute (kbcu_add_launch). */
#define KBCU_TUNE_PDL {"PDL", 0, 1, 0, "1: a programmatic dependent launch (sm_90)"}
/* The cache hints of the streaming ops' 16-byte loads and stores (stream.cuh): an op lists
 * them for the variants whose -D options name them. */
#define KBCU_TUNE_LDHINT {"LDHINT", 1, 2, 0, "loads: 1 plain, 2 no L1 line and a 256-byte L2 prefetch"}
#define KBCU_TUNE_STHINT {"STHINT", 1, 2, 0, "stores: 1 streaming (evict-first), 2 plain write-back"}
#define KBCU_TUNE_END {NULL, 0, 0, 0, NULL}

/* A variant at a tune point: the table's variant with its name and -D options
 * rewritten. Filled by kbcu_resolve_variant; `v` points into it (do not copy). */
typedef struct {
    kbcu_variant v;
    char name[64];
    char defines[KBCU_OPTS];
} kbcu_tuned;

/* What planning needs to know about the device. */
typedef struct {
    int sm;         /* compute capability, major*10+minor */
    int sm_count;   /* multiprocessors */
    int smem_optin; /* max dynamic shared memory per block after opt-in, bytes */
} kbcu_devinfo;

/* ---- a plan ------------------------------------------------------------------------ */
typedef enum {
    KBCU_ARG_TENSOR = 0, /* device pointer of tensor `tensor` (inputs then outputs) + i bytes */
    KBCU_ARG_WS,         /* device pointer of the workspace + i bytes */
    KBCU_ARG_I32,        /* by value; planning fails when i does not fit */
    KBCU_ARG_I64,
    KBCU_ARG_F32,
    KBCU_ARG_F64
} kbcu_arg_kind;

typedef struct {
    kbcu_arg_kind kind;
    int tensor;
    int64_t i;
    double f;
} kbcu_arg;

typedef struct {
    char source[40];           /* module: source file ... */
    char opts[KBCU_OPTS];      /* ... and its -D options */
    char kernel[64];           /* entry point */
    int64_t grid[3], block[3]; /* checked against CUDA's limits by kbcu_plan_finish */
    int64_t smem;              /* dynamic shared memory, bytes */
    /* 1: a programmatic dependent launch (sm_90; the PDL tunable, pdl.cuh): it may start
     * while the stream's previous kernel runs, so the kernel must wait (pdl_wait) before
     * it reads or writes anything that kernel may touch */
    int pdl;
    kbcu_arg *args;
    int nargs, cap;
} kbcu_launch;

typedef struct {
    kbcu_launch *launch;
    int nlaunch, cap;
    uint64_t workspace; /* device scratch bytes, owned by the prepared state */
    int zero_workspace; /* 1: set to 0 once, at prepare (counters the kernels return to 0) */
    void *ws_init;      /* host bytes copied to the workspace's start once, at prepare (a
                           constant table the plan computes: rope v4's frequencies); or NULL */
    uint64_t ws_init_bytes;
    int oom;            /* an allocation failed while building */
} kbcu_plan;

/* What a plan is for: the case, the variant, its tensors (inputs then outputs, as the
 * op's entry orders them; views tell the alignment) and the device. */
typedef struct {
    const kb_case *c;
    const kbcu_variant *v;
    const kb_arg *args;
    int n_in, n_out;
    kbcu_devinfo dev;
} kbcu_job;

/* One op of the cuda backend. */
typedef struct {
    const kbcu_variant *variants; /* terminated by a NULL name */
    int n_in, n_out;              /* tensors, as bench/ops/<op>.c lists them */
    /* Launches, arguments and workspace for j; KB_OK, or KB_NOT_SUPPORTED with the
     * reason (a size, type or alignment the kernel does not take). */
    int (*plan)(const kbcu_job *j, kbcu_plan *p, char *msg);
    /* Representative cases (the tests plan them and look for the entry points in the
     * compiled modules); returns how many it wrote (<= max). */
    int (*samples)(kb_case *out, int max);
    const kbcu_tunable *tunables; /* terminated by a NULL name; NULL: none */
    /* What a tuned variant must satisfy beyond each tunable's range (a product of two
     * of them, say): KB_OK or KB_NOT_SUPPORTED with the reason. NULL: nothing. */
    int (*tune_check)(const kbcu_variant *v, char *msg);
    /* The unit roundoff of v's accumulation at inner dimension k on a device of compute
     * capability sm (0: not known yet) where it is coarser than fp32 (the op's tolerance takes
     * it: bench/op.h), else 0. NULL: every kernel sums in fp32. */
    double (*acc_unit_roundoff)(const kbcu_variant *v, int64_t k, int sm);
} kbcu_op;

#define KBCU_OP_DECL(name) extern const kbcu_op kbcu_op_##name;
KB_OP_LIST(KBCU_OP_DECL)
#undef KBCU_OP_DECL

/* The op table (bench/op_list.h order), NULL for an op id out of range. */
const kbcu_op *kbcu_op_of(kb_op_id op);
/* The variant named `name` of op (the generic test-only variants included when
 * allow_test), or NULL. */
const kbcu_variant *kbcu_find_variant(kb_op_id op, const char *name, int allow_test);
/* Variants of op in listing order: the op's own, then (allow_test) the generic
 * test-only ones. Writes up to max pointers, returns the count. */
int kbcu_list_variants(kb_op_id op, int allow_test, const kbcu_variant **out, int max);
/* The integer value of -DNAME=v in v->defines, or fallback. */
int kbcu_def_int(const kbcu_variant *v, const char *name, int fallback);
/* The variant a name denotes: a table name ("v2_b256_i4", as kbcu_find_variant), or a
 * tuned one ("v2_b256_i4[BLOCK=128]", kbench.h): that variant with the point's values
 * written into its -D options, in t. *out is the table's entry or &t->v. KB_OK;
 * KB_ERROR when the base name is unknown or the brackets malformed; KB_NOT_SUPPORTED
 * with the reason when the point sets a -D option the variant does not have or the op
 * does not tune, or a value outside the op's range. The one reading of a tuned name:
 * the front's variant list and the worker's prepare both call it. */
int kbcu_resolve_variant(kb_op_id op, const char *name, int allow_test, kbcu_tuned *t, const kbcu_variant **out,
                         char *msg);
/* The op's tunable called name, or NULL. */
const kbcu_tunable *kbcu_find_tunable(kb_op_id op, const char *name);
/* The values of a tunable's range (the NVRTC test compiles each): up to max into out;
 * returns the count. */
int kbcu_tunable_values(const kbcu_tunable *t, int *out, int max);
/* The variant's tunables at its values, "BLOCK=256 ITEMS=4" (its -D options the op
 * tunes), into out[n]. */
void kbcu_variant_tunables(kb_op_id op, const kbcu_variant *v, char *out, size_t n);
/* The op's name from bench/op_list.h (the worker has no registry). */
const char *kbcu_op_name(kb_op_id op);

/* Plan j: the op's plan plus what every plan needs (architecture, tensor count,
 * element alignment of every view, CUDA's grid/block/shared-memory limits, int32
 * arguments that fit). Test-only generic variants append their damage here. On
 * KB_OK the caller owns p (kbcu_plan_free); on failure p is freed. */
int kbcu_plan_case(const kbcu_job *j, kbcu_plan *p, char *msg);
void kbcu_plan_free(kbcu_plan *p);

/* ---- building a plan (for the ops' plan functions) -------------------------------- */
/* A launch of the variant's own module, a programmatic dependent one when its -D options
 * say PDL=1. NULL when out of memory (p->oom is set and the argument helpers below
 * ignore a NULL launch). */
kbcu_launch *kbcu_add_launch(kbcu_plan *p, const kbcu_variant *v, const char *kernel, int64_t gx, int64_t gy,
                             int64_t gz, int64_t block);
/* A launch of another module (e.g. a support kernel). */
kbcu_launch *kbcu_add_launch_module(kbcu_plan *p, const char *source, const char *opts, const char *kernel, int64_t gx,
                                    int64_t gy, int64_t gz, int64_t block);
void kbcu_arg_tensor(kbcu_plan *p, kbcu_launch *l, int tensor);
void kbcu_arg_tensor_at(kbcu_plan *p, kbcu_launch *l, int tensor, int64_t byte_offset);
void kbcu_arg_ws(kbcu_plan *p, kbcu_launch *l, int64_t byte_offset);
/* A table of `bytes` for the workspace's start, filled by the caller now and copied to the
 * device at prepare (the workspace grows to hold it); NULL when out of host memory. */
void *kbcu_ws_init(kbcu_plan *p, uint64_t bytes);
void kbcu_arg_i32(kbcu_plan *p, kbcu_launch *l, int64_t v);
void kbcu_arg_i64(kbcu_plan *p, kbcu_launch *l, int64_t v);
void kbcu_arg_f32(kbcu_plan *p, kbcu_launch *l, double v);
void kbcu_arg_f64(kbcu_plan *p, kbcu_launch *l, double v);

/* ---- small helpers the plans share ------------------------------------------------- */
static inline int64_t kbcu_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int kbcu_fits_i32(int64_t v) { return v >= 0 && v <= 2147483647LL; }
/* KB_OK when tensor t's view starts on a multiple of `align` bytes (device
 * allocations are 256-byte aligned, so the offset decides), else KB_NOT_SUPPORTED
 * naming the variant and why it needs it. */
int kbcu_need_aligned(const kbcu_job *j, int t, int align, const char *why, char *msg);
/* The byte code of a NaN in type t, for the test-only damage (f32 0x7fc00000...). */
uint32_t kbcu_nan_code(kb_dtype t);
/* The kernels' run-time code of a float type (floatio.cuh, gemm_fp8.cu's output):
 * 0 f32, 1 f16, 2 bf16; -1 for any other type. */
int kbcu_float_code(kb_dtype t);
/* The plan of an elementwise op over N x K with 3 tensors (add, swiglu): v1 one element
 * a thread, v2 four (every view 16-byte aligned); args: the 3 tensors, N*K, the input
 * type's code (kbcu_float_code of a_type). `inputs` names the typed inputs for the error. */
int kbcu_plan_elementwise3(const kbcu_job *j, kbcu_plan *p, const char *inputs, char *msg);
/* Does the variant's name start with `prefix` ("v1", "gemv")? */
int kbcu_is(const kbcu_variant *v, const char *prefix);

#endif
