/* lt_rotate_check.c - an independent timing of cuBLASLt's FP8 GEMM, to check kbench's
 * rotate mode against: a plain loop of cublasLtMatmul calls over R copies of W, X and D
 * (R x bytes > 2 x L2, so every call meets its weights in DRAM, as a forward pass
 * does), back to back on one stream, timed with two events around ITERS calls.
 *
 * Nothing of kbench is used (no worker, no harness): the CUDA runtime and cuBLASLt
 * directly, the heuristic's first algorithm, e4m3 x e4m3 -> bf16, tensor scales of 1
 * given as device scalars (A/B_SCALE_POINTER, as kbench gives them), FAST_ACCUM off: the
 * problem of kbench's `cublaslt` row h00_fa0 at the same shape; each line names the
 * algorithm (id, tile, custom option, cluster), to compare with the row's.
 *
 *   lt_rotate_check [N ...]        default N = 1 16 512 4096, M = K = 3584
 * prints one line per N: "N <n> copies <R> algo <id> tile <t> custom <c> cluster <cl>
 * us_per_call <graph> host_loop_us_per_call
 * <loop>", each the median of 7 timings of 200 calls: <graph> with the calls captured
 * in a CUDA graph (device time, comparable to kbench's rotate rows), <loop> issued one
 * by one from the host (includes cublasLtMatmul's own host cost when it exceeds the
 * kernel's time); then "one_pass_us_per_call <pass>": a graph of one call per copy,
 * launched and timed alone 51 times (median), the shape of a kbench rotate sample. */
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_CUDA(x)                                                                                  \
    do {                                                                                               \
        cudaError_t e_ = (x);                                                                          \
        if (e_ != cudaSuccess) {                                                                       \
            fprintf(stderr, "lt_rotate_check: %s: %s\n", #x, cudaGetErrorString(e_));                  \
            exit(2);                                                                                   \
        }                                                                                              \
    } while (0)
#define CHECK_LT(x)                                                                                    \
    do {                                                                                               \
        cublasStatus_t s_ = (x);                                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                             \
            fprintf(stderr, "lt_rotate_check: %s: %s\n", #x, cublasLtGetStatusString(s_));             \
            exit(2);                                                                                   \
        }                                                                                              \
    } while (0)

enum { M = 3584, K = 3584, ITERS = 200, LOOPS = 7, SAMPLES = 51, MAX_COPIES = 64 };

static int cmp(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One problem over its rotated copies: what every timed call needs. */
typedef struct {
    cublasLtHandle_t lt;
    cudaStream_t st;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    void *ws;
    size_t ws_bytes;
    int copies;
    void *w[MAX_COPIES], *x[MAX_COPIES], *d[MAX_COPIES];
    cudaEvent_t e0, e1;
} lt_problem;

/* `count` calls back to back on the stream, call i on copy i % copies. */
static void enqueue_calls(const lt_problem *p, int count) {
    static const float one = 1.0f, zero = 0.0f;
    for (int i = 0; i < count; i++) {
        const int c = i % p->copies;
        CHECK_LT(cublasLtMatmul(p->lt, p->op, &one, p->w[c], p->la, p->x[c], p->lb, &zero, p->d[c], p->lc, p->d[c],
                                p->lc, &p->algo, p->ws, p->ws_bytes, p->st));
    }
}

/* The same calls captured once in a CUDA graph: launched whole, the GPU runs them back
 * to back with no host in between, as kbench's recorded repetitions do. */
static cudaGraphExec_t capture_calls(const lt_problem *p, int count) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_CUDA(cudaStreamBeginCapture(p->st, cudaStreamCaptureModeThreadLocal));
    enqueue_calls(p, count);
    CHECK_CUDA(cudaStreamEndCapture(p->st, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    CHECK_CUDA(cudaGraphDestroy(graph));
    return exec;
}

/* Milliseconds between two events around the graph (exec) or, without one, around
 * `count` calls issued from the host. */
static float time_ms(const lt_problem *p, cudaGraphExec_t exec, int count) {
    float ms = 0;
    CHECK_CUDA(cudaEventRecord(p->e0, p->st));
    if (exec) CHECK_CUDA(cudaGraphLaunch(exec, p->st));
    else enqueue_calls(p, count);
    CHECK_CUDA(cudaEventRecord(p->e1, p->st));
    CHECK_CUDA(cudaEventSynchronize(p->e1));
    CHECK_CUDA(cudaEventElapsedTime(&ms, p->e0, p->e1));
    return ms;
}

static void check_n(cublasLtHandle_t lt, cudaStream_t st, void *ws, size_t ws_bytes, int l2, int n) {
    const size_t wb = (size_t)M * K, xb = (size_t)n * K, db = (size_t)n * M * 2, per = wb + xb + db;
    lt_problem p = {.lt = lt, .st = st, .ws = ws, .ws_bytes = ws_bytes};
    p.copies = (int)((2.0 * l2) / (double)per) + 1;
    if (p.copies < 2) p.copies = 2;
    if (p.copies > MAX_COPIES) p.copies = MAX_COPIES;
    for (int i = 0; i < p.copies; i++) {
        CHECK_CUDA(cudaMalloc(&p.w[i], wb));
        CHECK_CUDA(cudaMalloc(&p.x[i], xb));
        CHECK_CUDA(cudaMalloc(&p.d[i], db));
        CHECK_CUDA(cudaMemset(p.w[i], 0x38, wb)); /* e4m3 0x38 = 1.0: finite, not zero */
        CHECK_CUDA(cudaMemset(p.x[i], 0x30, xb)); /* 0.5 */
    }
    int32_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    int8_t fa = 0;
    static const float one_host = 1.0f;
    /* A's and B's tensor scales, 1.0 each, on the device: one allocation each (cuBLASLt
     * refused a scale pointer 4 bytes into an allocation, "not supported") */
    float *sa = NULL, *sb = NULL;
    CHECK_CUDA(cudaMalloc((void **)&sa, sizeof(float)));
    CHECK_CUDA(cudaMalloc((void **)&sb, sizeof(float)));
    CHECK_CUDA(cudaMemcpy(sa, &one_host, sizeof one_host, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(sb, &one_host, sizeof one_host, cudaMemcpyHostToDevice));
    CHECK_LT(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CHECK_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa));
    CHECK_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb));
    CHECK_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CHECK_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    CHECK_LT(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fa, sizeof fa));
    CHECK_LT(cublasLtMatrixLayoutCreate(&p.la, CUDA_R_8F_E4M3, K, M, K));
    CHECK_LT(cublasLtMatrixLayoutCreate(&p.lb, CUDA_R_8F_E4M3, K, n, K));
    CHECK_LT(cublasLtMatrixLayoutCreate(&p.lc, CUDA_R_16BF, M, n, M));
    cublasLtMatmulPreference_t pref;
    uint64_t wsb = ws_bytes;
    CHECK_LT(cublasLtMatmulPreferenceCreate(&pref));
    CHECK_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t res;
    int got = 0;
    CHECK_LT(cublasLtMatmulAlgoGetHeuristic(lt, p.op, p.la, p.lb, p.lc, p.lc, pref, 1, &res, &got));
    if (!got) {
        fprintf(stderr, "lt_rotate_check: no algorithm for N=%d\n", n);
        exit(2);
    }
    p.algo = res.algo;
    CHECK_CUDA(cudaEventCreate(&p.e0));
    CHECK_CUDA(cudaEventCreate(&p.e1));
    /* ITERS calls as one graph, and the plain host loop beside it (at small N it measures
     * cublasLtMatmul's host cost), interleaved; loop -1 is the warm-up */
    cudaGraphExec_t all = capture_calls(&p, ITERS);
    float ms_graph[LOOPS], ms_loop[LOOPS];
    for (int loop = -1; loop < LOOPS; loop++) {
        const float g = time_ms(&p, all, ITERS), h = time_ms(&p, NULL, ITERS);
        if (loop >= 0) ms_graph[loop] = g, ms_loop[loop] = h;
    }
    /* one pass over the copies per graph launch, each launch timed alone (kbench's rotate
     * sample: `copies` calls between two events): the per-sample fixed cost shows here */
    cudaGraphExec_t pass = capture_calls(&p, p.copies);
    float ms_pass[SAMPLES];
    for (int i = -1; i < SAMPLES; i++) {
        const float t = time_ms(&p, pass, p.copies);
        if (i >= 0) ms_pass[i] = t;
    }
    qsort(ms_pass, SAMPLES, sizeof ms_pass[0], cmp);
    qsort(ms_graph, LOOPS, sizeof ms_graph[0], cmp);
    qsort(ms_loop, LOOPS, sizeof ms_loop[0], cmp);
    int32_t algo_id = -1;
    uint32_t tile = 0, custom = 0;
    uint16_t cluster = 0;
    size_t got_bytes;
    cublasLtMatmulAlgoConfigGetAttribute(&p.algo, CUBLASLT_ALGO_CONFIG_ID, &algo_id, sizeof algo_id, &got_bytes);
    cublasLtMatmulAlgoConfigGetAttribute(&p.algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &got_bytes);
    cublasLtMatmulAlgoConfigGetAttribute(&p.algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &got_bytes);
    cublasLtMatmulAlgoConfigGetAttribute(&p.algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster,
                                         &got_bytes);
    printf("N %d copies %d algo %d tile %u custom %u cluster %u us_per_call %.3f host_loop_us_per_call %.3f "
           "one_pass_us_per_call %.3f\n",
           n, p.copies, algo_id, tile, custom, (unsigned)cluster, ms_graph[LOOPS / 2] * 1000.0 / ITERS,
           ms_loop[LOOPS / 2] * 1000.0 / ITERS, ms_pass[SAMPLES / 2] * 1000.0 / p.copies);
    cudaGraphExecDestroy(pass);
    cudaGraphExecDestroy(all);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(p.la);
    cublasLtMatrixLayoutDestroy(p.lb);
    cublasLtMatrixLayoutDestroy(p.lc);
    cublasLtMatmulDescDestroy(p.op);
    for (int i = 0; i < p.copies; i++) cudaFree(p.w[i]), cudaFree(p.x[i]), cudaFree(p.d[i]);
    cudaFree(sa);
    cudaFree(sb);
    cudaEventDestroy(p.e0);
    cudaEventDestroy(p.e1);
}

int main(int argc, char **argv) {
    int ns[16] = {1, 16, 512, 4096}, count = 4;
    if (argc > 1) {
        count = 0;
        for (int i = 1; i < argc && count < 16; i++) ns[count++] = atoi(argv[i]);
    }
    int l2 = 0;
    CHECK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    cublasLtHandle_t lt;
    CHECK_LT(cublasLtCreate(&lt));
    cudaStream_t st;
    CHECK_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    const size_t ws_bytes = (size_t)32 << 20;
    void *ws;
    CHECK_CUDA(cudaMalloc(&ws, ws_bytes));
    for (int i = 0; i < count; i++) {
        if (ns[i] < 1 || ns[i] > 65536) {
            fprintf(stderr, "lt_rotate_check: N %d out of range\n", ns[i]);
            return 2;
        }
        check_n(lt, st, ws, ws_bytes, l2, ns[i]);
    }
    cudaFree(ws);
    cublasLtDestroy(lt);
    return 0;
}
