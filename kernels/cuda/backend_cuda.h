/* backend_cuda.h - the cuda backend's kernel table and launch planning, exposed for
 * the tests (tests/test_nvrtc_compile.c compiles every build; tests/test_cuda_host.c
 * checks the planning arithmetic). The backend itself is kb_backend_cuda. */
#ifndef KB_BACKEND_CUDA_H
#define KB_BACKEND_CUDA_H

#include "bench/kbench.h"

#include <stddef.h>
#include <stdint.h>

/* One named variant: a kernel source compiled with fixed tunables. */
typedef struct {
    kb_op_id op;
    const char *name;    /* what --variant matches: "gemv_v2_b256_u2" */
    const char *source;  /* "gemm_fp8.cu" */
    const char *kernel;  /* entry point(s), for the detail text */
    const char *defines; /* the tunables: "-DWARPS=8 -DUNROLL=2" */
    int min_sm;          /* lowest compute capability, major*10+minor */
    int test_only;       /* listed only when KB_TEST_VARIANTS=1 */
} kbcu_kernel_def;

extern const kbcu_kernel_def kbcu_kernel_defs[];
extern const int kbcu_kernel_def_count;

/* The case-dependent -D sets a definition can be compiled with (today: the one empty
 * set for every op). Writes up to max strings into specs and returns the count. */
int kbcu_def_specs(const kbcu_kernel_def *def, char specs[][64], int max);
/* The spec a case needs ("" today). */
void kbcu_case_spec(const kb_case *c, char *out, size_t cap);
/* "defines spec" */
void kbcu_def_options(const kbcu_kernel_def *def, const char *spec, char *out, size_t cap);
/* The integer value of -DNAME=v in def->defines, or fallback. */
int kbcu_def_int(const kbcu_kernel_def *def, const char *name, int fallback);
/* The definition for (op, variant name); test-only ones only when allow_test. */
const kbcu_kernel_def *kbcu_find_def(kb_op_id op, const char *name, int allow_test);

/* ---- launch planning (pure arithmetic, no device) ---- */
enum {
    KBCU_ARG_IN0 = 0, /* device pointers: inputs 0..3, the output, the workspace */
    KBCU_ARG_IN1,
    KBCU_ARG_IN2,
    KBCU_ARG_IN3,
    KBCU_ARG_OUT,
    KBCU_ARG_WS,
    KBCU_ARG_I32, /* by value */
    KBCU_ARG_I64,
    KBCU_ARG_F32,
    KBCU_ARG_F64
};
typedef struct {
    int kind;
    int64_t i;
    double f;
} kbcu_arg;

#define KBCU_MAX_ARGS 12
typedef struct {
    char kernel[48];
    unsigned grid[3], block[3];
    unsigned smem; /* dynamic shared memory, bytes */
    int nargs;
    kbcu_arg args[KBCU_MAX_ARGS];
} kbcu_launch;

typedef struct {
    int nlaunch;
    kbcu_launch launch[2];
    size_t workspace; /* device scratch bytes (attention decode splits) */
    char spec[64];    /* case-dependent -D options */
} kbcu_plan;

typedef struct {
    int sm;             /* compute capability, major*10+minor */
    int sm_count;       /* multiprocessors */
    int smem_optin;     /* max dynamic shared memory per block after opt-in, bytes */
} kbcu_devinfo;

/* Grid, block, shared memory, arguments and workspace for case c on variant def.
 * KB_OK, or KB_NOT_SUPPORTED with the reason (a size or alignment the kernel does
 * not take, a device too old). */
int kbcu_plan_case(const kb_case *c, const kbcu_kernel_def *def, const kbcu_devinfo *dev, kbcu_plan *p, char *msg);

/* Attention decode: how many key splits for this case on this many SMs, and the
 * keys per split. */
void kbcu_decode_splits(const kb_case *c, int warps, int kpw, int sm_count, int *splits, int *chunk);
/* decode_v2: splits of whole KT-key tiles, at most ~8 blocks per SM in all. */
void kbcu_decode_splits_v2(const kb_case *c, int kt, int sm_count, int *splits, int *chunk);

#endif
