/* cublaslt_device.c - the `cublaslt` backend's device side, inside kbcuda_worker
 * (cuda_worker.h): FP8 GEMM through cuBLASLt, with the full identity of every
 * algorithm it runs, in the worker's context and on its stream, next to our kernels.
 *
 * The GEMM ("TN"): W [m][k] row-major is cuBLASLt's A, column-major k x m with lda = k
 * and transa = T; X [n][k] is B, k x n, ldb = k; D [n][m] is m x n column-major with
 * ldd = m. D = sA sB (A^T B), alpha = 1, beta = 0 (C is D, never read). Compute
 * CUBLAS_COMPUTE_32F, scale type fp32 (cuBLASLt's documented FP8 configuration).
 *
 * Algorithms (kb_options.algo): "heuristic" lists every result of one 32-wide
 * cublasLtMatmulAlgoGetHeuristic query; "exhaustive" enumerates AlgoGetIds x tiles x
 * stages x split-K x reduction x swizzle x custom option x cluster shape, keeps what
 * AlgoCheck accepts, capped (kblt_exhaustive_cap). Picking the fastest is the
 * harness's job (--best). Each algorithm is kept in a table keyed by (case, variant
 * name) for prepare(); a variant not in the table is re-created from its identity
 * fields (AlgoInit + config attributes). A combination cuBLASLt refuses becomes a
 * placeholder variant whose prepare() returns KB_NOT_SUPPORTED with cuBLASLt's status.
 *
 * A prepared state is the scale reorder (cublaslt_scales.cu, where cuBLASLt's layout
 * of VEC128/BLK128 scales differs from kbench's: a device step, so scales a previous
 * op writes at run time are read as they are then) followed by cublasLtMatmul, both
 * on the worker's stream: enqueue, record (stream capture) and run_timed treat it like
 * any state. The 32 MiB workspace is shared by every state (one stream: never two at
 * once). */
#include "kernels/cuda/cublaslt_host.h"
#include "kernels/cuda/cuda_worker.h"

#include <cublasLt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    int ok;
    char reason[KB_MSG];
    cublasLtHandle_t lt;
    CUdeviceptr workspace;
    void *workspace_ptr;
    int workspace_fill; /* KB_LT_WORKSPACE_FILL: the byte set before every call, -1 none */
} g;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A cuBLASLt status into a message; CUBLAS_STATUS_NOT_SUPPORTED is a row, not an error. */
static int lt_fail(char *msg, cublasStatus_t s, const char *what) {
    const int code = s == CUBLAS_STATUS_NOT_SUPPORTED ? KB_NOT_SUPPORTED : KB_ERROR;
    return kb_fail(msg, code, "%s: %s (%s)", what, cublasLtGetStatusName(s), cublasLtGetStatusString(s));
}

/* After a failed cuBLASLt call that may have launched: was it a sticky fault underneath? */
static int lt_fail_checked(char *msg, cublasStatus_t s, const char *what) {
    int rc = kbw_lost_underneath(msg, what);
    return rc != KB_OK ? rc : lt_fail(msg, s, what);
}

int kbw_lt_init(int sm, char *reason) {
    memset(&g, 0, sizeof g);
    /* FP8 tensor cores: Ada (8.9) and Hopper (9.0) or newer */
    if (sm < 89) {
        snprintf(g.reason, sizeof g.reason, "FP8 GEMM needs compute capability 8.9 or newer (this device is %d.%d)",
                 sm / 10, sm % 10);
        return kb_fail(reason, KB_NOT_SUPPORTED, "%s", g.reason);
    }
    const cublasStatus_t s = cublasLtCreate(&g.lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        g.lt = NULL;
        lt_fail(g.reason, s, "cublasLtCreate");
        return kb_fail(reason, KB_NOT_SUPPORTED, "%s", g.reason);
    }
    /* cuMemAlloc returns 256-byte aligned memory, what cuBLASLt wants for the workspace */
    const CUresult r = kbw_driver()->MemAlloc(&g.workspace, KBLT_WORKSPACE_BYTES);
    if (r != CUDA_SUCCESS) {
        kbw_cu_fail(g.reason, r, "cuMemAlloc (cuBLASLt workspace, 32 MiB)");
        return kb_fail(reason, KB_NOT_SUPPORTED, "%s", g.reason);
    }
    g.workspace_ptr = (void *)(uintptr_t)g.workspace;
    g.ok = 1;
    /* KB_LT_WORKSPACE_FILL=zero|nan: a diagnosis, not a timing mode. The workspace is
     * set to that byte before every cublasLtMatmul, so a result that changes with the
     * fill is one that read workspace bytes the call did not write first. */
    const char *fill = getenv("KB_LT_WORKSPACE_FILL");
    g.workspace_fill = !fill || !*fill ? -1 : !strcmp(fill, "zero") ? 0x00 : !strcmp(fill, "nan") ? 0xff : -2;
    if (g.workspace_fill == -2) {
        snprintf(g.reason, KB_MSG, "KB_LT_WORKSPACE_FILL='%.40s': zero or nan", fill);
        g.ok = 0;
        return kb_fail(reason, KB_NOT_SUPPORTED, "%s", g.reason);
    }
    const size_t v = cublasLtGetVersion();
    snprintf(reason, KB_MSG, "cuBLASLt %zu.%zu.%zu%s", v / 10000, v / 100 % 100, v % 100,
             g.workspace_fill < 0    ? ""
             : g.workspace_fill == 0 ? " (workspace zeroed before every call, inside the timed span)"
                                     : " (workspace set to 0xff bytes (NaN) before every call, inside the timed span)");
    return KB_OK;
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
static int problem_create(const kb_case *c, int fast_accum, const void *sa, const void *sb, lt_problem *p, char *msg) {
    cublasStatus_t s;
    memset(p, 0, sizeof *p);
#define LT_TRY(call, what)                                                                                             \
    do {                                                                                                               \
        if ((s = (call)) != CUBLAS_STATUS_SUCCESS) {                                                                   \
            int rc_ = lt_fail(msg, s, what);                                                                           \
            problem_destroy(p);                                                                                        \
            return rc_;                                                                                                \
        }                                                                                                              \
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
    LT_TRY(cublasLtMatrixLayoutCreate(&p->a, lt_type(c->a_type), (uint64_t)c->k, (uint64_t)c->m, c->k), "layout A");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->b, lt_type(c->b_type), (uint64_t)c->k, (uint64_t)c->n, c->k), "layout B");
    /* C has D's type for a bf16/fp16/fp32 D (cuBLASLt's table of FP8 type
     * combinations for cublasLtMatmul) */
    LT_TRY(cublasLtMatrixLayoutCreate(&p->c, lt_type(c->out_type), (uint64_t)c->m, (uint64_t)c->n, c->m), "layout C");
    LT_TRY(cublasLtMatrixLayoutCreate(&p->d, lt_type(c->out_type), (uint64_t)c->m, (uint64_t)c->n, c->m), "layout D");
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
    snprintf(key, size, "%lld/%lld/%lld/%d/%d/%d/%d", (long long)c->m, (long long)c->n, (long long)c->k, (int)c->a_type,
             (int)c->b_type, (int)c->out_type, (int)c->scale_mode);
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
static int list_add(lt_list *l, kblt_source src, int index, const cublasLtMatmulAlgo_t *algo, const kblt_identity *id,
                    const char *detail_prefix) {
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
    const void *dummy = c->scale_mode == KB_SCALE_TENSOR ? NULL : g.workspace_ptr;
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

static int cap_array(const cublasLtMatmulAlgo_t *algo, cublasLtMatmulAlgoCapAttributes_t attr, uint32_t *buf, int max) {
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
    const void *dummy = c->scale_mode == KB_SCALE_TENSOR ? NULL : g.workspace_ptr;
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
            for (uint32_t red = CUBLASLT_REDUCTION_SCHEME_INPLACE; red <= CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
                 red <<= 1)
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

static int lt_ready(char *msg) {
    int rc = kbw_ready(msg);
    if (rc != KB_OK) return rc;
    if (!g.ok) return kb_fail(msg, KB_NOT_SUPPORTED, "%s", g.reason);
    return KB_OK;
}

int kbw_lt_variants(const kbcu_variants_req *r, kb_variant *out, int max, char *msg) {
    const kb_case *c = &r->c;
    int rc = lt_ready(msg);
    if (rc != KB_OK) return -rc;
    if (c->op != KB_OP_gemm_fp8) return 0;
    kblt_algo_mode mode;
    if (kblt_algo_mode_parse(r->algo[0] ? r->algo : NULL, &mode) != 0)
        return -kb_fail(msg, KB_ERROR, "unknown --algo '%s' (heuristic or exhaustive)", r->algo);
    int fas[2];
    const int nfa = kblt_fast_accum_settings(r->fast_accum, fas);
    if (nfa == 0) return -kb_fail(msg, KB_ERROR, "fast_accum must be -1 (both), 0 or 1, not %d", r->fast_accum);
    char key[96], why[KB_MSG];
    case_key(c, key, sizeof key);
    table_forget(key);
    lt_list l = {.c = c, .key = key, .out = out, .max = max, .count = 0};
    const int check = kblt_check_case(c, why);
    const kblt_source src = mode == KBLT_ALGO_EXHAUSTIVE ? KBLT_SRC_EXHAUSTIVE : KBLT_SRC_HEURISTIC;
    for (int f = 0; f < nfa; f++) {
        l.fast_accum = fas[f];
        rc = 0;
        if (check != KB_OK) list_none(&l, src, why);
        else if (mode == KBLT_ALGO_EXHAUSTIVE) rc = list_exhaustive(&l, kblt_exhaustive_cap(r->algo_cap), msg);
        else rc = list_heuristic(&l, msg);
        if (rc < 0) return rc;
    }
    return l.count;
}

/* ---- prepared states ------------------------------------------------------------------ */
typedef struct {
    lt_problem p;
    cublasLtMatmulAlgo_t algo;
    const void *w, *x;
    void *d;
    kbw_prog *reorder; /* the scale reorder, NULL when kbench's layouts are cuBLASLt's */
    float alpha, beta;
} lt_state;

static void lt_destroy(void *impl) {
    lt_state *st = impl;
    if (!st) return;
    problem_destroy(&st->p);
    kbw_prog_free(st->reorder);
    free(st);
}

static int lt_enqueue(void *impl, char *msg) {
    lt_state *st = impl;
    if (st->reorder) {
        int rc = kbw_prog_enqueue(st->reorder, msg);
        if (rc != KB_OK) return rc;
    }
    if (g.workspace_fill >= 0) {
        const CUresult r = kbw_driver()->MemsetD8Async(g.workspace, (unsigned char)g.workspace_fill, KBLT_WORKSPACE_BYTES,
                                                       (CUstream)kbw_stream());
        if (r != CUDA_SUCCESS) return kbw_cu_fail(msg, r, "cuMemsetD8Async (KB_LT_WORKSPACE_FILL)");
    }
    const cublasStatus_t s =
        cublasLtMatmul(g.lt, st->p.op, &st->alpha, st->w, st->p.a, st->x, st->p.b, &st->beta, st->d, st->p.c, st->d,
                       st->p.d, &st->algo, g.workspace_ptr, KBLT_WORKSPACE_BYTES, (cudaStream_t)kbw_stream());
    return s == CUBLAS_STATUS_SUCCESS ? KB_OK : lt_fail_checked(msg, s, "cublasLtMatmul");
}

static const kbw_state_ops lt_ops = {lt_enqueue, lt_destroy};

/* Re-create an algorithm from a variant's identity fields (a variant from an earlier
 * variants() call of another case, or from before a reset). */
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

int kbw_lt_prepare(const kb_case *c, const kb_variant *v, const kb_arg *args, const CUdeviceptr *ptrs, int n_in,
                   int n_out, void **impl, const kbw_state_ops **ops, char *msg) {
    *impl = NULL;
    *ops = &lt_ops;
    int rc = lt_ready(msg);
    if (rc != KB_OK) return rc;
    if ((rc = kblt_check_case(c, msg)) != KB_OK) return rc;
    if (n_in != 4 || n_out != 1) return kb_fail(msg, KB_ERROR, "gemm_fp8 takes w, x, sa, sb and d");
    (void)args;
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
    static const char *const names[5] = {"W (A)", "X (B)", "W's scales", "X's scales", "D"};
    for (int t = 0; t < 5; t++)
        if ((rc = kblt_check_pointer((const void *)(uintptr_t)ptrs[t], names[t], msg)) != KB_OK) return rc;

    lt_state *st = calloc(1, sizeof *st);
    if (!st) return kb_fail(msg, KB_ERROR, "out of host memory");
    st->alpha = 1.0f;
    st->beta = 0.0f;
    /* the scales cuBLASLt reads: kbench's buffers, or the reorder's output in its workspace */
    kbcu_plan plan;
    memset(&plan, 0, sizeof plan);
    int64_t ws_off[2] = {-1, -1};
    if ((rc = kblt_scale_reorder_plan(c, &plan, ws_off, msg)) != KB_OK) {
        kbcu_plan_free(&plan);
        lt_destroy(st);
        return rc;
    }
    if (plan.nlaunch > 0) {
        rc = kbw_prog_build(&plan, ptrs, n_in + n_out, &st->reorder, msg);
        if (rc != KB_OK) {
            kbcu_plan_free(&plan);
            lt_destroy(st);
            return rc;
        }
    }
    kbcu_plan_free(&plan);
    const CUdeviceptr ws = st->reorder ? kbw_prog_workspace(st->reorder) : 0;
    const void *sa = (const void *)(uintptr_t)(ws_off[0] >= 0 ? ws + (CUdeviceptr)ws_off[0] : ptrs[2]);
    const void *sb = (const void *)(uintptr_t)(ws_off[1] >= 0 ? ws + (CUdeviceptr)ws_off[1] : ptrs[3]);
    if ((rc = problem_create(c, fast_accum, sa, sb, &st->p, msg)) != KB_OK) {
        lt_destroy(st);
        return rc;
    }
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    const cublasStatus_t s = cublasLtMatmulAlgoCheck(g.lt, st->p.op, st->p.a, st->p.b, st->p.c, st->p.d, &algo, &r);
    if (s != CUBLAS_STATUS_SUCCESS) {
        lt_destroy(st);
        return kb_fail(msg, KB_NOT_SUPPORTED, "cublasLtMatmulAlgoCheck: %s (%s)", cublasLtGetStatusName(s),
                       cublasLtGetStatusString(s));
    }
    if (r.workspaceSize > KBLT_WORKSPACE_BYTES) {
        lt_destroy(st);
        return kb_fail(msg, KB_NOT_SUPPORTED, "algorithm needs %zu bytes of workspace, more than the 32 MiB allowed",
                       r.workspaceSize);
    }
    st->algo = algo;
    st->w = (const void *)(uintptr_t)ptrs[0];
    st->x = (const void *)(uintptr_t)ptrs[1];
    st->d = (void *)(uintptr_t)ptrs[4];
    *impl = st;
    return KB_OK;
}
