/* backend_cublaslt.c - the `cublaslt` backend: FP8 GEMM through cuBLASLt with the
 * full identity of every algorithm it runs.
 *
 * Device side: the CUDA runtime (linked statically, so kbench starts on a machine
 * without a driver and probe() says why) in device 0's primary context, one
 * cuBLASLt handle, one non-blocking stream, one 32 MiB workspace. The `cuda`
 * backend keeps its own driver-API context and never sees ours.
 *
 * The GEMM (REFERENCE.md section 4, "TN"): W [m][k] row-major is cuBLASLt's A,
 * column-major k x m with lda = k and transa = T; X [n][k] is B, k x n, ldb = k;
 * D [n][m] is m x n column-major with ldd = m. D = sA sB (A^T B), alpha = 1,
 * beta = 0 (C is D, never read). Compute CUBLAS_COMPUTE_32F, scale type fp32.
 *
 * Algorithms (kb_options.algo): "heuristic" lists every result of one 32-wide
 * cublasLtMatmulAlgoGetHeuristic query; "exhaustive" enumerates AlgoGetIds x
 * tiles x stages x split-K x reduction x swizzle x custom option x cluster shape,
 * keeps what AlgoCheck accepts, capped (kblt_exhaustive_cap); "best" times the
 * heuristic's candidates on random data, checks a sample of each one's outputs
 * against fp64, and lists the fastest that passed. Each algorithm is kept in a
 * table keyed by (case, variant name) for prepare(); a variant not in the table
 * is re-created from its identity fields (AlgoInit + config attributes).
 * A combination cuBLASLt refuses becomes a placeholder variant whose prepare()
 * returns KB_NOT_SUPPORTED with cuBLASLt's status: a not_supported row.
 *
 * Nothing here prints; every failure goes into msg. */
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/kbench.h"
#include "kernels/cuda/cublaslt_host.h"
#include "ref/formats.h"

/* ---- the device ------------------------------------------------------------- */
static struct {
    int probed, probe_rc;
    char probe_msg[KB_MSG];
    int ready; /* handle, stream, events and buffers exist */
    char device_name[320];
    char driver_version[128];
    int cc_major, cc_minor, sm_count;
    int l2_bytes;
    double bandwidth; /* bytes/s, measured by a device-to-device copy at init */
    cublasLtHandle_t lt;
    cudaStream_t stream;
    cudaEvent_t ev0, ev1;
    void *workspace;
    void *flush;
    size_t flush_bytes;
    unsigned flush_value;
} g;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cuda_fail(char *msg, cudaError_t e, const char *what) {
    int code = kblt_cuda_error_is_sticky((int)e) ? KB_ERROR_FATAL : KB_ERROR;
    return kb_fail(msg, code, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

/* A cuBLASLt status into a message; CUBLAS_STATUS_NOT_SUPPORTED is a row, not an error. */
static int lt_fail(char *msg, cublasStatus_t s, const char *what) {
    int code = s == CUBLAS_STATUS_NOT_SUPPORTED ? KB_NOT_SUPPORTED : KB_ERROR;
    return kb_fail(msg, code, "%s: %s (%s)", what, cublasLtGetStatusName(s), cublasLtGetStatusString(s));
}

/* After a failed cuBLASLt call: was it a sticky CUDA fault underneath? */
static int lt_fail_checked(char *msg, cublasStatus_t s, const char *what) {
    cudaError_t e = cudaStreamSynchronize(g.stream);
    if (e != cudaSuccess && kblt_cuda_error_is_sticky((int)e)) return cuda_fail(msg, e, what);
    return lt_fail(msg, s, what);
}

static void device_teardown(void) {
    if (g.lt) cublasLtDestroy(g.lt);
    if (g.ev0) cudaEventDestroy(g.ev0);
    if (g.ev1) cudaEventDestroy(g.ev1);
    if (g.stream) cudaStreamDestroy(g.stream);
    if (g.workspace) cudaFree(g.workspace);
    if (g.flush) cudaFree(g.flush);
    g.lt = NULL;
    g.ev0 = g.ev1 = NULL;
    g.stream = NULL;
    g.workspace = g.flush = NULL;
    g.ready = 0;
}

/* Device-to-device copy bandwidth (bytes read + written per second), the
 * ceiling REFERENCE.md section 5 measured at 3.02 TB/s on the H100. Best of 3. */
static double measure_bandwidth(void) {
    const size_t bytes = (size_t)256 << 20;
    void *a = NULL, *b = NULL;
    double best = 0.0;
    if (cudaMalloc(&a, bytes) != cudaSuccess) return 0.0;
    if (cudaMalloc(&b, bytes) != cudaSuccess) {
        cudaFree(a);
        return 0.0;
    }
    cudaMemsetAsync(a, 1, bytes, g.stream);
    for (int i = 0; i < 4; i++) {
        float ms = 0.0f;
        cudaEventRecord(g.ev0, g.stream);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, g.stream);
        cudaEventRecord(g.ev1, g.stream);
        if (cudaEventSynchronize(g.ev1) != cudaSuccess) break;
        cudaEventElapsedTime(&ms, g.ev0, g.ev1);
        if (i > 0 && ms > 0.0f) { /* i == 0 is the warm-up */
            double bw = 2.0 * (double)bytes / (ms * 1e-3);
            if (bw > best) best = bw;
        }
    }
    cudaFree(a);
    cudaFree(b);
    cudaGetLastError(); /* a failed measurement only costs the ceiling */
    return best;
}

static int device_init(char *msg) {
    int drv = 0, rt = 0, n = 0;
    cudaError_t e = cudaDriverGetVersion(&drv);
    if (e != cudaSuccess || drv == 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA driver (libcuda.so.1 not found): cudaDriverGetVersion: %s",
                       e != cudaSuccess ? cudaGetErrorString(e) : "driver version 0");
    e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device: cudaGetDeviceCount: %s (%s)", cudaGetErrorName(e),
                       cudaGetErrorString(e));
    if (n == 0) return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (cudaGetDeviceCount found 0)");
    e = cudaSetDevice(0);
    if (e != cudaSuccess) return cuda_fail(msg, e, "cudaSetDevice(0)");
    struct cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return cuda_fail(msg, e, "cudaGetDeviceProperties");
    g.cc_major = prop.major;
    g.cc_minor = prop.minor;
    g.sm_count = prop.multiProcessorCount;
    g.l2_bytes = prop.l2CacheSize;
    snprintf(g.device_name, sizeof g.device_name, "%s (sm_%d%d, %d SMs, %d MiB L2)", prop.name, prop.major,
             prop.minor, prop.multiProcessorCount, prop.l2CacheSize >> 20);
    cudaRuntimeGetVersion(&rt);
    size_t ltv = cublasLtGetVersion();
    snprintf(g.driver_version, sizeof g.driver_version, "driver CUDA %d.%d, runtime %d.%d, cuBLASLt %zu.%zu.%zu",
             drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10, ltv / 10000, ltv / 100 % 100, ltv % 100);
    /* FP8 tensor cores: Ada (8.9) and Hopper (9.0) or newer. */
    if (prop.major * 10 + prop.minor < 89)
        return kb_fail(msg, KB_NOT_SUPPORTED, "FP8 GEMM needs compute capability 8.9 or newer; %s is %d.%d",
                       prop.name, prop.major, prop.minor);

    cublasStatus_t s = cublasLtCreate(&g.lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        g.lt = NULL;
        return lt_fail(msg, s, "cublasLtCreate");
    }
    if ((e = cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaEventCreate(&g.ev0)) != cudaSuccess || (e = cudaEventCreate(&g.ev1)) != cudaSuccess) {
        device_teardown();
        return cuda_fail(msg, e, "stream/event creation");
    }
    /* cudaMalloc returns 256-byte aligned memory, what cuBLASLt wants for the workspace. */
    if ((e = cudaMalloc(&g.workspace, KBLT_WORKSPACE_BYTES)) != cudaSuccess) {
        g.workspace = NULL;
        device_teardown();
        return cuda_fail(msg, e, "cudaMalloc(workspace, 32 MiB)");
    }
    /* The cold-sample flush writes twice the L2 (nvbench writes at least the L2). */
    g.flush_bytes = 2 * (size_t)(g.l2_bytes > 0 ? g.l2_bytes : 64 << 20);
    if ((e = cudaMalloc(&g.flush, g.flush_bytes)) != cudaSuccess) {
        g.flush = NULL;
        device_teardown();
        return cuda_fail(msg, e, "cudaMalloc(L2 flush buffer)");
    }
    g.bandwidth = measure_bandwidth();
    g.ready = 1;
    return KB_OK;
}

static int lt_probe(const kb_options *opt, char *msg) {
    (void)opt;
    if (!g.probed) {
        g.probed = 1;
        g.probe_msg[0] = '\0';
        g.probe_rc = device_init(g.probe_msg);
        if (g.probe_rc != KB_OK) device_teardown();
    }
    if (g.probe_rc != KB_OK) kb_fail(msg, g.probe_rc, "%s", g.probe_msg);
    return g.probe_rc;
}

static const char *lt_device_name(void) { return g.device_name; }
static const char *lt_driver_version(void) { return g.driver_version; }

static void lt_ceilings(const kb_case *c, double *bytes_per_s, double *flops_per_s) {
    /* Measured device-to-device copy, else REFERENCE.md section 5's 3.0 TB/s. */
    *bytes_per_s = g.bandwidth > 0.0 ? g.bandwidth : 3.0e12;
    *flops_per_s = 0.0;
    /* Dense FP8 peak: H100 SXM datasheet 1979 TFLOP/s at 132 SMs, scaled by the
     * SM count for other sm_90 parts (an estimate: clocks differ too). */
    if (c && c->op == KB_OP_GEMM_FP8 && g.cc_major == 9 && g.cc_minor == 0 && g.sm_count > 0)
        *flops_per_s = 1979e12 * g.sm_count / 132.0;
}

/* ---- one problem's descriptors ---------------------------------------------- */
typedef struct {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c, d;
} lt_problem;

static cudaDataType_t lt_type(kb_dtype t) {
    switch (t) {
    case KB_E4M3: return CUDA_R_8F_E4M3;
    case KB_E5M2: return CUDA_R_8F_E5M2;
    case KB_BF16: return CUDA_R_16BF;
    case KB_F16: return CUDA_R_16F;
    default: return CUDA_R_32F;
    }
}

static void problem_destroy(lt_problem *p) {
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->c) cublasLtMatrixLayoutDestroy(p->c);
    if (p->d) cublasLtMatrixLayoutDestroy(p->d);
    memset(p, 0, sizeof *p);
}

/* Descriptors for case c with FAST_ACCUM = fast_accum and the given device scale
 * pointers (NULL = 1, cuBLASLt's default). KB_OK, or the status with the step. */
static int problem_create(const kb_case *c, int fast_accum, const void *sa, const void *sb, lt_problem *p,
                          char *msg) {
    cublasStatus_t s;
    memset(p, 0, sizeof *p);
#define LT_TRY(call, what)                                                                                        \
    do {                                                                                                          \
        if ((s = (call)) != CUBLAS_STATUS_SUCCESS) {                                                              \
            int rc_ = lt_fail(msg, s, what);                                                                      \
            problem_destroy(p);                                                                                   \
            return rc_;                                                                                           \
        }                                                                                                         \
    } while (0)
    int32_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    int8_t fa = fast_accum ? 1 : 0;
    int32_t mode_a = kblt_scale_mode_lt(c->scale_mode, 0), mode_b = kblt_scale_mode_lt(c->scale_mode, 1);
    LT_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa), "TRANSA");
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb), "TRANSB");
    LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fa, sizeof fa), "FAST_ACCUM");
    /* Only non-default modes are set, so tensor-wide scaling also runs on a
     * cuBLASLt older than the scale-mode attributes (12.9). */
    if (mode_a != CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F)
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode_a, sizeof mode_a),
               "set A_SCALE_MODE");
    if (mode_b != CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F)
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode_b, sizeof mode_b),
               "set B_SCALE_MODE");
    if (sa)
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa),
               "set A_SCALE_POINTER");
    if (sb)
        LT_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb),
               "set B_SCALE_POINTER");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->a, lt_type(c->a_type), (uint64_t)c->k, (uint64_t)c->m, c->k),
           "layout A");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->b, lt_type(c->b_type), (uint64_t)c->k, (uint64_t)c->n, c->k),
           "layout B");
    /* C has D's type for bf16/fp16/fp32 D (REFERENCE.md section 4). */
    LT_TRY(cublasLtMatrixLayoutCreate(&p->c, lt_type(c->out_type), (uint64_t)c->m, (uint64_t)c->n, c->m),
           "layout C");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->d, lt_type(c->out_type), (uint64_t)c->m, (uint64_t)c->n, c->m),
           "layout D");
#undef LT_TRY
    return KB_OK;
}

/* ---- algorithm identity from a cublasLtMatmulAlgo_t -------------------------- */
static void algo_identity(const cublasLtMatmulAlgo_t *algo, kblt_identity *id) {
    int32_t algo_id = -1, splitk = 1;
    uint32_t tile = 0, stages = 0, red = 0, swizzle = 0, custom = 0;
    uint16_t cluster = 0;
    size_t w;
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_ID, &algo_id, sizeof algo_id, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle, sizeof swizzle, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &w);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster, &w);
    memset(id, 0, sizeof *id);
    id->algo_id = algo_id;
    id->tile = (int)tile;
    id->stages = (int)stages;
    id->splitk = splitk;
    id->reduction = (int)red;
    id->swizzle = (int)swizzle;
    id->custom = (int)custom;
    id->cluster = (int)cluster;
    id->heuristic_rank = -1;
}

/* Set the configuration attributes of an initialised algo from an identity. */
static cublasStatus_t algo_configure(cublasLtMatmulAlgo_t *algo, const kblt_identity *id) {
    uint32_t tile = (uint32_t)id->tile, stages = (uint32_t)id->stages, red = (uint32_t)id->reduction;
    uint32_t swizzle = (uint32_t)id->swizzle, custom = (uint32_t)id->custom;
    int32_t splitk = id->splitk;
    uint16_t cluster = (uint16_t)id->cluster;
    cublasStatus_t s;
    if ((s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile)) ||
        (s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages)) ||
        (s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk)) ||
        (s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red)) ||
        (s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle,
                                                  sizeof swizzle)) ||
        (s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom)) ||
        (s = cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster,
                                                  sizeof cluster)))
        return s;
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t algo_init(const kb_case *c, int algo_id, cublasLtMatmulAlgo_t *algo) {
    cudaDataType_t d = lt_type(c->out_type);
    return cublasLtMatmulAlgoInit(g.lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, lt_type(c->a_type), lt_type(c->b_type), d, d,
                                  algo_id, algo);
}

/* ---- the per-case algorithm table ---------------------------------------------- */
typedef struct {
    char key[96];
    char name[64];
    int fast_accum;
    int runnable; /* 0: placeholder, prepare() returns KB_NOT_SUPPORTED with reason */
    cublasLtMatmulAlgo_t algo;
    char reason[KB_MSG];
} lt_entry;

static lt_entry *g_entries;
static int g_nentries, g_entries_cap;

static void case_key(const kb_case *c, char *key, size_t size) {
    snprintf(key, size, "%lld/%lld/%lld/%d/%d/%d/%d", (long long)c->m, (long long)c->n, (long long)c->k,
             (int)c->a_type, (int)c->b_type, (int)c->out_type, (int)c->scale_mode);
}

static void table_forget(const char *key) {
    int j = 0;
    for (int i = 0; i < g_nentries; i++)
        if (strcmp(g_entries[i].key, key) != 0) g_entries[j++] = g_entries[i];
    g_nentries = j;
}

static lt_entry *table_add(const char *key, const char *name, int fast_accum) {
    if (g_nentries == g_entries_cap) {
        int cap = g_entries_cap ? 2 * g_entries_cap : 256;
        lt_entry *e = realloc(g_entries, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        g_entries = e;
        g_entries_cap = cap;
    }
    lt_entry *e = &g_entries[g_nentries++];
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->fast_accum = fast_accum;
    return e;
}

static const lt_entry *table_find(const char *key, const char *name) {
    for (int i = 0; i < g_nentries; i++)
        if (strcmp(g_entries[i].key, key) == 0 && strcmp(g_entries[i].name, name) == 0) return &g_entries[i];
    return NULL;
}

/* ---- variants ------------------------------------------------------------------- */
typedef struct {
    const kb_case *c;
    const char *key;
    int fast_accum;
    kb_variant *out;
    int max;
    int count;
} lt_list;

/* A runnable variant: table entry + kb_variant. 0, or -1 when out of room. */
static int list_add(lt_list *l, kblt_source src, int index, const cublasLtMatmulAlgo_t *algo,
                    const kblt_identity *id, const char *detail_prefix) {
    char name[64];
    if (l->count >= l->max) return -1;
    kblt_variant_name(name, sizeof name, src, src, index, l->fast_accum);
    lt_entry *e = table_add(l->key, name, l->fast_accum);
    if (!e) return -1;
    e->runnable = 1;
    e->algo = *algo;
    kb_variant *v = &l->out[l->count++];
    kb_variant_init(v, name);
    kblt_identity_to_variant(id, v);
    char ident[160];
    kblt_identity_format(id, ident, sizeof ident);
    snprintf(v->detail, sizeof v->detail, "%s%s", detail_prefix ? detail_prefix : "", ident);
    v->acc_unit_roundoff = kblt_acc_unit_roundoff(l->fast_accum, l->c->k);
    return 0;
}

/* A placeholder: this mode found nothing runnable for this fast-accum setting. */
static void list_none(lt_list *l, kblt_source mode, const char *reason) {
    char name[64];
    if (l->count >= l->max) return;
    kblt_variant_name(name, sizeof name, KBLT_SRC_NONE, mode, 0, l->fast_accum);
    lt_entry *e = table_add(l->key, name, l->fast_accum);
    if (!e) return;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    kb_variant *v = &l->out[l->count++];
    kb_variant_init(v, name);
    snprintf(v->detail, sizeof v->detail, "not supported: %s", reason);
    v->acc_unit_roundoff = kblt_acc_unit_roundoff(l->fast_accum, l->c->k);
}

/* The heuristic's answer for one fast-accum setting. Returns the number of
 * results (0 with reason filled when cuBLASLt has none), or -KB_* on error. */
static int heuristic_query(const kb_case *c, int fast_accum, cublasLtMatmulHeuristicResult_t *res, char *reason,
                           char *msg) {
    lt_problem p;
    char why[KB_MSG];
    /* The scale-pointer values do not matter to the heuristic; non-NULL ones
     * make the query describe the same problem prepare() runs. */
    const void *dummy = c->scale_mode == KB_SCALE_TENSOR ? NULL : g.workspace;
    int rc = problem_create(c, fast_accum, dummy, dummy, &p, why);
    if (rc == KB_NOT_SUPPORTED || (rc == KB_ERROR && strstr(why, "INVALID_VALUE"))) {
        snprintf(reason, KB_MSG, "%s", why);
        return 0;
    }
    if (rc != KB_OK) return -kb_fail(msg, rc, "%s", why);
    cublasLtMatmulPreference_t pref = NULL;
    uint64_t ws = KBLT_WORKSPACE_BYTES;
    cublasStatus_t s = cublasLtMatmulPreferenceCreate(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (s != CUBLAS_STATUS_SUCCESS) {
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        problem_destroy(&p);
        return -lt_fail(msg, s, "cublasLtMatmulPreference");
    }
    int returned = 0;
    s = cublasLtMatmulAlgoGetHeuristic(g.lt, p.op, p.a, p.b, p.c, p.d, pref, KBLT_HEURISTIC_COUNT, res, &returned);
    cublasLtMatmulPreferenceDestroy(pref);
    problem_destroy(&p);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(reason, KB_MSG, "cublasLtMatmulAlgoGetHeuristic: %s (%s)", cublasLtGetStatusName(s),
                 cublasLtGetStatusString(s));
        return 0;
    }
    if (returned == 0) snprintf(reason, KB_MSG, "cublasLtMatmulAlgoGetHeuristic returned no algorithm");
    return returned;
}

static int list_heuristic(lt_list *l, char *msg) {
    cublasLtMatmulHeuristicResult_t res[KBLT_HEURISTIC_COUNT];
    char reason[KB_MSG];
    int n = heuristic_query(l->c, l->fast_accum, res, reason, msg);
    if (n < 0) return n;
    if (n == 0) {
        list_none(l, KBLT_SRC_HEURISTIC, reason);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
        kblt_identity id;
        algo_identity(&res[i].algo, &id);
        id.workspace = (int64_t)res[i].workspaceSize;
        id.waves = res[i].wavesCount;
        id.heuristic_rank = i;
        if (list_add(l, KBLT_SRC_HEURISTIC, i, &res[i].algo, &id, NULL) < 0) break;
    }
    return 0;
}

/* ---- --algo exhaustive --------------------------------------------------------- */
/* Split-K factors tried when an algorithm supports split-K (1 is always tried),
 * and the cluster shapes tried (no capability attribute lists them; AlgoCheck
 * rejects the ones an algorithm cannot use). */
static const int32_t exhaustive_splitk[] = {2, 3, 4, 6, 8, 16};
static const uint16_t exhaustive_clusters[] = {CUBLASLT_CLUSTER_SHAPE_AUTO, CUBLASLT_CLUSTER_SHAPE_1x1x1,
                                               CUBLASLT_CLUSTER_SHAPE_2x1x1, CUBLASLT_CLUSTER_SHAPE_1x2x1};

typedef struct {
    cublasLtMatmulAlgo_t algo;
    kblt_identity id;
} lt_found;


static int cap_array(const cublasLtMatmulAlgo_t *algo, cublasLtMatmulAlgoCapAttributes_t attr, uint32_t *buf,
                     int max) {
    size_t need = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(algo, attr, NULL, 0, &need) != CUBLAS_STATUS_SUCCESS) return 0;
    int n = (int)(need / sizeof(uint32_t));
    if (n > max) n = max;
    if (n == 0) return 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(algo, attr, buf, (size_t)n * sizeof(uint32_t), &written) !=
        CUBLAS_STATUS_SUCCESS)
        return 0;
    return (int)(written / sizeof(uint32_t));
}

static int list_exhaustive(lt_list *l, int cap, char *msg) {
    const kb_case *c = l->c;
    lt_problem p;
    char why[KB_MSG];
    const void *dummy = c->scale_mode == KB_SCALE_TENSOR ? NULL : g.workspace;
    int rc = problem_create(c, l->fast_accum, dummy, dummy, &p, why);
    if (rc == KB_NOT_SUPPORTED || (rc == KB_ERROR && strstr(why, "INVALID_VALUE"))) {
        list_none(l, KBLT_SRC_EXHAUSTIVE, why);
        return 0;
    }
    if (rc != KB_OK) return -kb_fail(msg, rc, "%s", why);

    int ids[256], nids = 0;
    cudaDataType_t dt = lt_type(c->out_type);
    cublasStatus_t s = cublasLtMatmulAlgoGetIds(g.lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, lt_type(c->a_type),
                                                lt_type(c->b_type), dt, dt, 256, ids, &nids);
    if (s != CUBLAS_STATUS_SUCCESS || nids == 0) {
        snprintf(why, sizeof why, "cublasLtMatmulAlgoGetIds: %s (%d ids)", cublasLtGetStatusName(s), nids);
        list_none(l, KBLT_SRC_EXHAUSTIVE, why);
        problem_destroy(&p);
        return 0;
    }
    lt_found *found = malloc((size_t)KBLT_EXHAUSTIVE_MAX_VALID * sizeof *found);
    if (!found) {
        problem_destroy(&p);
        return -kb_fail(msg, KB_ERROR, "out of host memory for the exhaustive search");
    }
    int nfound = 0, timed_out = 0;
    /* The check budget and the time are shared out per algorithm id so late ids
     * are reached whatever the early ones cost. */
    int64_t budget_per_id = KBLT_EXHAUSTIVE_MAX_CHECKS / nids;
    double t0 = now_seconds();
    cublasStatus_t last_fail = CUBLAS_STATUS_SUCCESS;
    for (int a = 0; a < nids && nfound < KBLT_EXHAUSTIVE_MAX_VALID; a++) {
        cublasLtMatmulAlgo_t algo;
        if (algo_init(c, ids[a], &algo) != CUBLAS_STATUS_SUCCESS) continue;
        uint32_t tiles[CUBLASLT_MATMUL_TILE_END], stages[CUBLASLT_MATMUL_STAGES_END];
        int ntiles = cap_array(&algo, CUBLASLT_ALGO_CAP_TILE_IDS, tiles, CUBLASLT_MATMUL_TILE_END);
        int nstages = cap_array(&algo, CUBLASLT_ALGO_CAP_STAGES_IDS, stages, CUBLASLT_MATMUL_STAGES_END);
        if (ntiles == 0) tiles[ntiles++] = CUBLASLT_MATMUL_TILE_UNDEFINED;
        if (nstages == 0) stages[nstages++] = CUBLASLT_MATMUL_STAGES_UNDEFINED;
        int32_t splitk_support = 0, custom_max = 0;
        uint32_t red_mask = 0, swizzle_max = 0;
        size_t w;
        cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &splitk_support,
                                          sizeof splitk_support, &w);
        cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &red_mask, sizeof red_mask,
                                          &w);
        cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT, &swizzle_max,
                                          sizeof swizzle_max, &w);
        cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_CUSTOM_OPTION_MAX, &custom_max, sizeof custom_max,
                                          &w);
        /* The (split-K, reduction) pairs: 1 with NONE, and each supported
         * scheme with each split-K factor that leaves >= 16 of k per split. */
        int32_t pair_splitk[1 + 6 * 3];
        uint32_t pair_red[1 + 6 * 3];
        int npairs = 0;
        pair_splitk[npairs] = 1, pair_red[npairs++] = CUBLASLT_REDUCTION_SCHEME_NONE;
        for (size_t sk = 0; splitk_support && sk < sizeof exhaustive_splitk / sizeof exhaustive_splitk[0]; sk++)
            for (uint32_t red = CUBLASLT_REDUCTION_SCHEME_INPLACE; red <= CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE; red <<= 1)
                if ((red_mask & red) && exhaustive_splitk[sk] * 16 <= c->k)
                    pair_splitk[npairs] = exhaustive_splitk[sk], pair_red[npairs++] = red;
        const int64_t nclusters = (int64_t)(sizeof exhaustive_clusters / sizeof exhaustive_clusters[0]);
        const int64_t nsw = (int64_t)swizzle_max + 1, ncu = (int64_t)(custom_max > 0 ? custom_max : 0) + 1;
        /* Every combination is a mixed-radix number in [0, total). Past the
         * per-id budget, the j-th check takes x = j * P mod total with P a prime
         * not dividing total: distinct, spread over the whole space, and not
         * aliased with any one digit (a plain stride could fix the cluster). */
        int64_t total = (int64_t)ntiles * nstages * npairs * nsw * ncu * nclusters;
        int64_t nchecks = total < budget_per_id ? total : budget_per_id;
        int64_t prime = total % 1000003 != 0 ? 1000003 : 999983;
        double deadline = t0 + KBLT_EXHAUSTIVE_MAX_SECONDS * (a + 1) / nids;
        for (int64_t j = 0; j < nchecks && nfound < KBLT_EXHAUSTIVE_MAX_VALID; j++) {
            if ((j & 63) == 63 && now_seconds() > deadline) {
                timed_out = 1;
                break;
            }
            int64_t x = nchecks == total ? j : j * prime % total; /* j * prime < 2^37 */
            int64_t r = x;
            int cl = (int)(r % nclusters);
            r /= nclusters;
            int cu = (int)(r % ncu);
            r /= ncu;
            int sw = (int)(r % nsw);
            r /= nsw;
            int pr = (int)(r % npairs);
            r /= npairs;
            int st = (int)(r % nstages);
            int t = (int)(r / nstages);
            kblt_identity id = {.algo_id = ids[a],
                                .tile = (int)tiles[t],
                                .stages = (int)stages[st],
                                .splitk = pair_splitk[pr],
                                .reduction = (int)pair_red[pr],
                                .swizzle = sw,
                                .custom = cu,
                                .cluster = exhaustive_clusters[cl],
                                .heuristic_rank = -1};
            if (algo_configure(&algo, &id) != CUBLAS_STATUS_SUCCESS) continue;
            cublasLtMatmulHeuristicResult_t res;
            memset(&res, 0, sizeof res);
            s = cublasLtMatmulAlgoCheck(g.lt, p.op, p.a, p.b, p.c, p.d, &algo, &res);
            if (s != CUBLAS_STATUS_SUCCESS) {
                last_fail = s;
                continue;
            }
            if (res.workspaceSize > KBLT_WORKSPACE_BYTES) continue;
            id.workspace = (int64_t)res.workspaceSize;
            id.waves = res.wavesCount;
            found[nfound].algo = algo;
            found[nfound].id = id;
            nfound++;
        }
    }
    problem_destroy(&p);
    if (nfound == 0) {
        snprintf(why, sizeof why, "no configuration of %d algorithm ids passed cublasLtMatmulAlgoCheck (last: %s)",
                 nids, cublasLtGetStatusName(last_fail));
        list_none(l, KBLT_SRC_EXHAUSTIVE, why);
    }
    int keep = nfound < cap ? nfound : cap;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%d of %d valid%s: ", keep, nfound, timed_out ? " (time-bounded)" : "");
    for (int j = 0; j < keep; j++) {
        const lt_found *f = &found[kblt_subsample_index(j, nfound, cap)];
        if (list_add(l, KBLT_SRC_EXHAUSTIVE, j, &f->algo, &f->id, prefix) < 0) break;
    }
    free(found);
    return 0;
}

/* ---- one timed matmul ------------------------------------------------------------
 * The events must time the kernel, not cuBLASLt's host-side work before the
 * launch (a few microseconds, as long as the whole N = 1 GEMM). So the stream is
 * held by a host function until the matmul and the end event are enqueued; the
 * start event then fires right before the kernel (nvbench's "blocking kernel"
 * idea, done with cudaLaunchHostFunc).
 * A held stream must not meet a launch that synchronises the context: CUDA's
 * lazy loading may do that the first time a kernel is launched (measured: every
 * first timed launch then waited for the hold to give up). So the hold gives up
 * after KBLT_GATE_SECONDS and says so, the timed sample is then taken again, and
 * lt_run warms a state up untimed before its first timed run. */
#define KBLT_GATE_SECONDS 0.25
static atomic_int g_gate;      /* 0: hold the stream, 1: let it go */
static atomic_int g_gate_late; /* set when a hold gave up */

static void CUDART_CB gate_hold(void *arg) {
    atomic_int *gate = arg;
    double t0 = now_seconds();
    while (!atomic_load_explicit(gate, memory_order_acquire))
        if (now_seconds() - t0 > KBLT_GATE_SECONDS) {
            atomic_store_explicit(&g_gate_late, 1, memory_order_release);
            break;
        }
}

static int matmul_once(const lt_problem *p, const cublasLtMatmulAlgo_t *algo, const void *w, const void *x, void *d,
                       double *seconds, char *msg) {
    const float alpha = 1.0f, beta = 0.0f;
    cudaError_t e = cudaSuccess;
    if (seconds) {
        atomic_store_explicit(&g_gate, 0, memory_order_release);
        atomic_store_explicit(&g_gate_late, 0, memory_order_release);
        if ((e = cudaLaunchHostFunc(g.stream, gate_hold, &g_gate)) != cudaSuccess)
            return cuda_fail(msg, e, "cudaLaunchHostFunc");
        e = cudaEventRecord(g.ev0, g.stream);
    }
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    if (e == cudaSuccess) {
        s = cublasLtMatmul(g.lt, p->op, &alpha, w, p->a, x, p->b, &beta, d, p->c, d, p->d, algo, g.workspace,
                           KBLT_WORKSPACE_BYTES, g.stream);
        if (seconds && s == CUBLAS_STATUS_SUCCESS) e = cudaEventRecord(g.ev1, g.stream);
    }
    atomic_store_explicit(&g_gate, 1, memory_order_release);
    if (s != CUBLAS_STATUS_SUCCESS) return lt_fail_checked(msg, s, "cublasLtMatmul");
    if (e != cudaSuccess) return cuda_fail(msg, e, "cudaEventRecord");
    if ((e = cudaStreamSynchronize(g.stream)) != cudaSuccess) return cuda_fail(msg, e, "cublasLtMatmul (sync)");
    if (seconds) {
        float ms = 0.0f;
        if ((e = cudaEventElapsedTime(&ms, g.ev0, g.ev1)) != cudaSuccess) return cuda_fail(msg, e, "cudaEventElapsedTime");
        *seconds = ms * 1e-3;
    }
    return KB_OK;
}

/* One run; timed when seconds != NULL. A timed sample whose hold gave up is taken
 * again (the launch that synchronised has done its one-time work by then). */
static int matmul(const lt_problem *p, const cublasLtMatmulAlgo_t *algo, const void *w, const void *x, void *d,
                  double *seconds, char *msg) {
    for (int attempt = 0;; attempt++) {
        int rc = matmul_once(p, algo, w, x, d, seconds, msg);
        if (rc != KB_OK || !seconds || !atomic_load_explicit(&g_gate_late, memory_order_acquire)) return rc;
        if (attempt == 2)
            return kb_fail(msg, KB_ERROR, "timing: the stream hold gave up 3 times (a launch synchronised the "
                                          "context each time); no sample");
    }
}

/* ---- --algo best ---------------------------------------------------------------- */
static uint64_t rng_next(uint64_t *s) { /* xorshift64* (Vigna) */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Random fp8 bytes with magnitudes in [2^-4, 2^3), random signs: no zeros, no
 * NaN, and sums that stay far from fp16's 65504 at Qwen2.5's K. */
static uint8_t random_fp8(kb_dtype t, uint64_t *s) {
    uint64_t r = rng_next(s);
    if (t == KB_E4M3) /* bias 7: exponent fields 3..9 */
        return (uint8_t)(((r & 1) << 7) | ((3 + (r >> 8) % 7) << 3) | ((r >> 16) & 7));
    return (uint8_t)(((r & 1) << 7) | ((11 + (r >> 8) % 7) << 2) | ((r >> 16) & 3)); /* e5m2, bias 15 */
}

static double decode_fp8(kb_dtype t, uint8_t v) { return t == KB_E4M3 ? kb_e4m3_to_f32(v) : kb_e5m2_to_f32(v); }

static double decode_out(kb_dtype t, const void *d, int64_t i) {
    if (t == KB_BF16) return kb_bf16_to_f32(((const uint16_t *)d)[i]);
    if (t == KB_F16) return kb_f16_to_f32(((const uint16_t *)d)[i]);
    return ((const float *)d)[i];
}

/* Scale of W row r, K block j (kbench layout, kbench.h) and of X row r. */
static double scale_a_at(const kb_case *c, const float *sa, int64_t r, int64_t j) {
    int64_t kb = (c->k + 127) / 128;
    switch (c->scale_mode) {
    case KB_SCALE_OUTER: return sa[r];
    case KB_SCALE_VEC128: return sa[r * kb + j];
    case KB_SCALE_BLK128: return sa[(r / 128) * kb + j];
    default: return sa[0];
    }
}
static double scale_b_at(const kb_case *c, const float *sb, int64_t r, int64_t j) {
    int64_t kb = (c->k + 127) / 128;
    switch (c->scale_mode) {
    case KB_SCALE_OUTER: return sb[r];
    case KB_SCALE_VEC128:
    case KB_SCALE_BLK128: return sb[r * kb + j];
    default: return sb[0];
    }
}

typedef struct {
    const kb_case *c;
    uint8_t *w, *x;       /* host fp8 */
    float *sa, *sb;       /* host scales, kbench layout */
    void *dw, *dx, *dd;   /* device */
    void *dsa, *dsb;      /* device scales, cuBLASLt layout */
    void *hd;             /* host copy of D */
    size_t d_bytes;
} lt_bench_data;

static void bench_data_free(lt_bench_data *b) {
    free(b->w);
    free(b->x);
    free(b->sa);
    free(b->sb);
    free(b->hd);
    if (b->dw) cudaFree(b->dw);
    if (b->dx) cudaFree(b->dx);
    if (b->dd) cudaFree(b->dd);
    if (b->dsa) cudaFree(b->dsa);
    if (b->dsb) cudaFree(b->dsb);
    memset(b, 0, sizeof *b);
}

static int bench_data_make(const kb_case *c, lt_bench_data *b, char *msg) {
    memset(b, 0, sizeof *b);
    b->c = c;
    uint64_t seed = c->seed * 0x9E3779B97F4A7C15ULL + 0x5DEECE66DULL;
    if (!seed) seed = 1;
    size_t wn = (size_t)(c->m * c->k), xn = (size_t)(c->n * c->k);
    int64_t na = kblt_scale_elems_kb(c->scale_mode, 0, c->m, c->k), nb = kblt_scale_elems_kb(c->scale_mode, 1, c->n, c->k);
    int64_t la = kblt_scale_elems_lt(c->scale_mode, 0, c->m, c->k), lb = kblt_scale_elems_lt(c->scale_mode, 1, c->n, c->k);
    b->d_bytes = (size_t)(c->m * c->n) * kblt_elem_bytes(c->out_type);
    b->w = malloc(wn);
    b->x = malloc(xn);
    b->sa = malloc((size_t)na * sizeof(float));
    b->sb = malloc((size_t)nb * sizeof(float));
    b->hd = malloc(b->d_bytes);
    float *lta = malloc((size_t)la * sizeof(float)), *ltb = malloc((size_t)lb * sizeof(float));
    int rc = KB_OK;
    if (!b->w || !b->x || !b->sa || !b->sb || !b->hd || !lta || !ltb) {
        rc = kb_fail(msg, KB_ERROR, "out of host memory for --algo best");
        goto done;
    }
    for (size_t i = 0; i < wn; i++) b->w[i] = random_fp8(c->a_type, &seed);
    for (size_t i = 0; i < xn; i++) b->x[i] = random_fp8(c->b_type, &seed);
    /* Scales in [0.5, 2): non-trivial, so a scale applied to the wrong block shows. */
    for (int64_t i = 0; i < na; i++) b->sa[i] = 0.5f + 1.5f * (float)(rng_next(&seed) >> 40) / (float)(1 << 24);
    for (int64_t i = 0; i < nb; i++) b->sb[i] = 0.5f + 1.5f * (float)(rng_next(&seed) >> 40) / (float)(1 << 24);
    kblt_scales_to_lt(c->scale_mode, 0, c->m, c->k, b->sa, lta);
    kblt_scales_to_lt(c->scale_mode, 1, c->n, c->k, b->sb, ltb);
    cudaError_t e;
    if ((e = cudaMalloc(&b->dw, wn)) || (e = cudaMalloc(&b->dx, xn)) || (e = cudaMalloc(&b->dd, b->d_bytes)) ||
        (e = cudaMalloc(&b->dsa, (size_t)la * sizeof(float))) || (e = cudaMalloc(&b->dsb, (size_t)lb * sizeof(float))) ||
        (e = cudaMemcpy(b->dw, b->w, wn, cudaMemcpyHostToDevice)) ||
        (e = cudaMemcpy(b->dx, b->x, xn, cudaMemcpyHostToDevice)) ||
        (e = cudaMemcpy(b->dsa, lta, (size_t)la * sizeof(float), cudaMemcpyHostToDevice)) ||
        (e = cudaMemcpy(b->dsb, ltb, (size_t)lb * sizeof(float), cudaMemcpyHostToDevice)))
        rc = cuda_fail(msg, e, "--algo best: test data");
done:
    free(lta);
    free(ltb);
    if (rc != KB_OK) bench_data_free(b);
    return rc;
}

/* 256 sampled outputs against fp64 with the harness's own model (bench/ops.c):
 * |out - ref| <= u_out |ref| + acc_tol sum|s a b|, u_out doubled for room and
 * acc_tol from the variant's unit roundoff (kblt_acc_tolerance). A wrong
 * algorithm or a misread scale misses by O(|ref|) and fails; honest rounding
 * passes. Returns 1 if all pass. */
static int sampled_check(const lt_bench_data *b, int fast_accum, double *worst) {
    const kb_case *c = b->c;
    double u_out = c->out_type == KB_BF16 ? 0x1p-8 : c->out_type == KB_F16 ? 0x1p-11 : 0x1p-24;
    double acc_tol = kblt_acc_tolerance(c->k, kblt_acc_unit_roundoff(fast_accum, c->k));
    int64_t total = c->m * c->n, kb = (c->k + 127) / 128;
    *worst = 0.0;
    for (int s = 0; s < 256; s++) {
        int64_t idx = (int64_t)(((uint64_t)s * 2654435761u + 12345u) % (uint64_t)total);
        int64_t n = idx / c->m, m = idx % c->m; /* D[n][m] */
        double ref = 0.0, mag = 0.0;
        for (int64_t j = 0; j < kb; j++) {
            double part = 0.0, pmag = 0.0;
            for (int64_t k = j * 128; k < c->k && k < (j + 1) * 128; k++) {
                double t = decode_fp8(c->a_type, b->w[m * c->k + k]) * decode_fp8(c->b_type, b->x[n * c->k + k]);
                part += t;
                pmag += fabs(t);
            }
            double sc = scale_a_at(c, b->sa, m, j) * scale_b_at(c, b->sb, n, j);
            ref += sc * part;
            mag += fabs(sc) * pmag;
        }
        double out = decode_out(c->out_type, b->hd, idx);
        double err = fabs(out - ref);
        if (!(err <= 2.0 * u_out * fabs(ref) + acc_tol * mag)) {
            *worst = isfinite(err) ? err : INFINITY;
            return 0;
        }
        if (err > *worst) *worst = err;
    }
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int list_best(lt_list *l, char *msg) {
    const kb_case *c = l->c;
    cublasLtMatmulHeuristicResult_t res[KBLT_HEURISTIC_COUNT];
    char reason[KB_MSG];
    int n = heuristic_query(c, l->fast_accum, res, reason, msg);
    if (n < 0) return n;
    if (n == 0) {
        list_none(l, KBLT_SRC_BEST, reason);
        return 0;
    }
    lt_bench_data b;
    int rc = bench_data_make(c, &b, msg);
    if (rc != KB_OK) return -rc;
    lt_problem p;
    rc = problem_create(c, l->fast_accum, b.dsa, b.dsb, &p, msg);
    if (rc != KB_OK) {
        bench_data_free(&b);
        return -rc;
    }
    int best = -1, tried = 0, failed = 0;
    double best_s = 0.0;
    for (int i = 0; i < n; i++) {
        if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > KBLT_WORKSPACE_BYTES) continue;
        double t[10];
        int ok = 1;
        cudaMemsetAsync(b.dd, 0xFF, b.d_bytes, g.stream); /* NaN poison: an unwritten output fails the check */
        for (int r = 0; r < 12 && ok; r++) {
            double sec = 0.0;
            char why[KB_MSG];
            int rc2 = matmul(&p, &res[i].algo, b.dw, b.dx, b.dd, r >= 2 ? &sec : NULL, why);
            if (rc2 == KB_ERROR_FATAL) {
                problem_destroy(&p);
                bench_data_free(&b);
                return -kb_fail(msg, rc2, "--algo best: %s", why);
            }
            if (rc2 != KB_OK) ok = 0;
            if (r >= 2) t[r - 2] = sec; /* the first two runs are the warm-up */
        }
        tried++;
        if (!ok) {
            failed++;
            continue;
        }
        cudaError_t e = cudaMemcpy(b.hd, b.dd, b.d_bytes, cudaMemcpyDeviceToHost);
        if (e != cudaSuccess) {
            problem_destroy(&p);
            bench_data_free(&b);
            return -cuda_fail(msg, e, "--algo best: download");
        }
        double worst;
        if (!sampled_check(&b, l->fast_accum, &worst)) {
            failed++;
            continue;
        }
        qsort(t, 10, sizeof t[0], cmp_double);
        double median = 0.5 * (t[4] + t[5]);
        if (best < 0 || median < best_s) {
            best = i;
            best_s = median;
        }
    }
    problem_destroy(&p);
    bench_data_free(&b);
    if (best < 0) {
        snprintf(reason, sizeof reason, "none of %d heuristic candidates ran and passed the sampled fp64 check", tried);
        list_none(l, KBLT_SRC_BEST, reason);
        return 0;
    }
    kblt_identity id;
    algo_identity(&res[best].algo, &id);
    id.workspace = (int64_t)res[best].workspaceSize;
    id.waves = res[best].wavesCount;
    id.heuristic_rank = best;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "fastest of %d (%d failed), %.2f us hot: ", tried, failed, best_s * 1e6);
    list_add(l, KBLT_SRC_BEST, 0, &res[best].algo, &id, prefix);
    return 0;
}

static int lt_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    if (c->op != KB_OP_GEMM_FP8) return 0;
    if (!g.ready) return -kb_fail(msg, KB_ERROR, "cublaslt: variants() before a successful probe()");
    kblt_algo_mode mode;
    if (kblt_algo_mode_parse(opt ? opt->algo : NULL, &mode) != 0)
        return -kb_fail(msg, KB_ERROR, "unknown --algo '%s' (heuristic, exhaustive or best)", opt->algo);
    int fas[2];
    int nfa = kblt_fast_accum_settings(opt ? opt->fast_accum : -1, fas);
    if (nfa == 0) return -kb_fail(msg, KB_ERROR, "fast_accum must be -1 (both), 0 or 1, not %d", opt->fast_accum);
    char key[96], why[KB_MSG];
    case_key(c, key, sizeof key);
    table_forget(key);
    lt_list l = {.c = c, .key = key, .out = out, .max = max, .count = 0};
    int check = kblt_check_case(c, why);
    for (int f = 0; f < nfa; f++) {
        l.fast_accum = fas[f];
        int rc = 0;
        kblt_source src = mode == KBLT_ALGO_EXHAUSTIVE ? KBLT_SRC_EXHAUSTIVE
                          : mode == KBLT_ALGO_BEST     ? KBLT_SRC_BEST
                                                       : KBLT_SRC_HEURISTIC;
        if (check != KB_OK)
            list_none(&l, src, why);
        else if (mode == KBLT_ALGO_EXHAUSTIVE)
            rc = list_exhaustive(&l, kblt_exhaustive_cap(opt ? opt->algo_cap : 0), msg);
        else if (mode == KBLT_ALGO_BEST)
            rc = list_best(&l, msg);
        else
            rc = list_heuristic(&l, msg);
        if (rc < 0) return rc;
    }
    return l.count;
}

/* ---- buffers ------------------------------------------------------------------- */
static int lt_alloc(size_t bytes, void **dbuf, char *msg) {
    cudaError_t e = cudaMalloc(dbuf, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        *dbuf = NULL;
        return cuda_fail(msg, e, "cudaMalloc");
    }
    return KB_OK;
}

static void lt_free(void *dbuf) {
    if (dbuf) cudaFree(dbuf);
}

static int lt_upload(void *dbuf, const void *host, size_t bytes, char *msg) {
    cudaError_t e = cudaMemcpy(dbuf, host, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? KB_OK : cuda_fail(msg, e, "cudaMemcpy host to device");
}

static int lt_download(void *host, const void *dbuf, size_t bytes, char *msg) {
    cudaError_t e = cudaMemcpy(host, dbuf, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? KB_OK : cuda_fail(msg, e, "cudaMemcpy device to host");
}

/* ---- prepare / run / release ----------------------------------------------------- */
typedef struct {
    lt_problem p;
    cublasLtMatmulAlgo_t algo;
    const void *w, *x;
    void *d;
    void *scale_own[2]; /* reordered copies of the scales, when cuBLASLt's layout differs */
    int warm;           /* has run once (its kernels are loaded) */
} lt_state;

static void lt_release(void *state) {
    lt_state *st = state;
    if (!st) return;
    problem_destroy(&st->p);
    for (int i = 0; i < 2; i++)
        if (st->scale_own[i]) cudaFree(st->scale_own[i]);
    free(st);
}

/* The scale pointer cuBLASLt gets for one operand: kbench's buffer as it is, or
 * a reordered copy (kblt_scales_to_lt), made here on the host from the scales
 * uploaded before prepare(). */
static int scale_pointer(const kb_case *c, int operand, void *dev, lt_state *st, const void **out, char *msg) {
    int64_t rows = operand == 0 ? c->m : c->n;
    *out = dev;
    if (!kblt_scale_needs_reorder(c->scale_mode, operand, rows, c->k)) return KB_OK;
    int64_t nk = kblt_scale_elems_kb(c->scale_mode, operand, rows, c->k);
    int64_t nl = kblt_scale_elems_lt(c->scale_mode, operand, rows, c->k);
    float *src = malloc((size_t)nk * sizeof(float)), *dst = malloc((size_t)nl * sizeof(float));
    int rc = KB_OK;
    cudaError_t e;
    if (!src || !dst)
        rc = kb_fail(msg, KB_ERROR, "out of host memory for the scale reorder");
    else if ((e = cudaMemcpy(src, dev, (size_t)nk * sizeof(float), cudaMemcpyDeviceToHost)) != cudaSuccess)
        rc = cuda_fail(msg, e, "scale download");
    else if ((e = cudaMalloc(&st->scale_own[operand], (size_t)nl * sizeof(float))) != cudaSuccess) {
        st->scale_own[operand] = NULL;
        rc = cuda_fail(msg, e, "cudaMalloc(scales)");
    } else {
        kblt_scales_to_lt(c->scale_mode, operand, rows, c->k, src, dst);
        e = cudaMemcpy(st->scale_own[operand], dst, (size_t)nl * sizeof(float), cudaMemcpyHostToDevice);
        if (e != cudaSuccess) rc = cuda_fail(msg, e, "scale upload");
        *out = st->scale_own[operand];
    }
    free(src);
    free(dst);
    return rc;
}

/* Re-create an algorithm from a variant's identity fields (a variant from an
 * earlier variants() call of another case, or from before a reset). */
static int algo_from_variant(const kb_case *c, const kb_variant *v, cublasLtMatmulAlgo_t *algo, int *fast_accum,
                             char *msg) {
    kblt_identity id;
    kblt_source src;
    if (kblt_variant_parse(v->name, &src, NULL, fast_accum) != 0 || src == KBLT_SRC_NONE)
        return kb_fail(msg, KB_ERROR, "variant '%s' is not a cublaslt algorithm", v->name);
    if (kblt_identity_from_variant(v, &id, msg) != 0) return KB_ERROR;
    cublasStatus_t s = algo_init(c, id.algo_id, algo);
    if (s != CUBLAS_STATUS_SUCCESS) return lt_fail(msg, s, "cublasLtMatmulAlgoInit");
    s = algo_configure(algo, &id);
    if (s != CUBLAS_STATUS_SUCCESS) return lt_fail(msg, s, "cublasLtMatmulAlgoConfigSetAttribute");
    return KB_OK;
}

static int lt_prepare(const kb_case *c, const kb_variant *v, void *const *dev_in, void *dev_out, void **state,
                      char *msg) {
    *state = NULL;
    if (!g.ready) return kb_fail(msg, KB_ERROR, "cublaslt: prepare() before a successful probe()");
    int rc = kblt_check_case(c, msg);
    if (rc != KB_OK) return rc;
    char key[96];
    case_key(c, key, sizeof key);
    const lt_entry *e = table_find(key, v->name);
    cublasLtMatmulAlgo_t algo;
    int fast_accum = 0;
    if (e) {
        if (!e->runnable) return kb_fail(msg, KB_NOT_SUPPORTED, "%s", e->reason);
        algo = e->algo;
        fast_accum = e->fast_accum;
    } else if ((rc = algo_from_variant(c, v, &algo, &fast_accum, msg)) != KB_OK) {
        return rc;
    }
    if ((rc = kblt_check_pointer(dev_in[0], "W (A)", msg)) != KB_OK ||
        (rc = kblt_check_pointer(dev_in[1], "X (B)", msg)) != KB_OK ||
        (rc = kblt_check_pointer(dev_out, "D", msg)) != KB_OK)
        return rc;
    lt_state *st = calloc(1, sizeof *st);
    if (!st) return kb_fail(msg, KB_ERROR, "out of host memory");
    const void *sa = NULL, *sb = NULL;
    if ((rc = scale_pointer(c, 0, dev_in[2], st, &sa, msg)) != KB_OK ||
        (rc = scale_pointer(c, 1, dev_in[3], st, &sb, msg)) != KB_OK ||
        (rc = problem_create(c, fast_accum, sa, sb, &st->p, msg)) != KB_OK) {
        lt_release(st);
        return rc;
    }
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    cublasStatus_t s = cublasLtMatmulAlgoCheck(g.lt, st->p.op, st->p.a, st->p.b, st->p.c, st->p.d, &algo, &r);
    if (s != CUBLAS_STATUS_SUCCESS) {
        lt_release(st);
        return kb_fail(msg, KB_NOT_SUPPORTED, "cublasLtMatmulAlgoCheck: %s (%s)", cublasLtGetStatusName(s),
                       cublasLtGetStatusString(s));
    }
    if (r.workspaceSize > KBLT_WORKSPACE_BYTES) {
        lt_release(st);
        return kb_fail(msg, KB_NOT_SUPPORTED, "algorithm needs %zu bytes of workspace, more than the 32 MiB allowed",
                       r.workspaceSize);
    }
    st->algo = algo;
    st->w = dev_in[0];
    st->x = dev_in[1];
    st->d = dev_out;
    *state = st;
    return KB_OK;
}

static int lt_run(void *state, double *seconds, char *msg) {
    lt_state *st = state;
    /* The first launch of a kernel may load it (and synchronise): untimed. */
    if (seconds && !st->warm) {
        int rc = matmul(&st->p, &st->algo, st->w, st->x, st->d, NULL, msg);
        if (rc != KB_OK) return rc;
    }
    st->warm = 1;
    return matmul(&st->p, &st->algo, st->w, st->x, st->d, seconds, msg);
}

static int lt_flush_cache(char *msg) {
    if (!g.ready) return kb_fail(msg, KB_ERROR, "cublaslt: flush before a successful probe()");
    /* A changing byte value: every flush really writes. */
    cudaError_t e = cudaMemsetAsync(g.flush, (int)(++g.flush_value & 0xFF), g.flush_bytes, g.stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(g.stream);
    return e == cudaSuccess ? KB_OK : cuda_fail(msg, e, "L2 flush");
}

static int lt_reset(char *msg) {
    device_teardown();
    cudaDeviceReset(); /* destroys the primary context and everything in it */
    cudaGetLastError();
    /* The algorithm table stays: a cublasLtMatmulAlgo_t is plain data. */
    int rc = device_init(msg);
    if (rc != KB_OK) device_teardown();
    g.probed = 1;
    g.probe_rc = rc;
    if (rc != KB_OK) snprintf(g.probe_msg, sizeof g.probe_msg, "%s", msg);
    return rc;
}

const kb_backend kb_backend_cublaslt = {
    .name = "cublaslt",
    .description = "cuBLASLt FP8 GEMM (TN, fp32 compute; heuristic / exhaustive / best algorithms)",
    .probe = lt_probe,
    .device_name = lt_device_name,
    .driver_version = lt_driver_version,
    .ceilings = lt_ceilings,
    .variants = lt_variants,
    .alloc = lt_alloc,
    .free = lt_free,
    .upload = lt_upload,
    .download = lt_download,
    .prepare = lt_prepare,
    .run = lt_run,
    .release = lt_release,
    .flush_cache = lt_flush_cache,
    .reset = lt_reset,
};
