/* lt_rotate_check.c - an independent timing of cuBLASLt's FP8 GEMM, to check kbench's
 * rotate mode against: a plain loop of cublasLtMatmul calls over R copies of W, X and D
 * (R x bytes > 2 x L2, so every call meets its weights in DRAM, as a forward pass
 * does), back to back on one stream, timed with two events around ITERS calls.
 *
 * Nothing of kbench is used (no worker, no harness): the CUDA runtime and cuBLASLt
 * directly, the heuristic's first algorithm, e4m3 x e4m3 -> bf16, tensor scales of 1,
 * FAST_ACCUM off: the problem of kbench's `cublaslt` row h00_fa0 at the same shape.
 *
 *   lt_rotate_check [N ...]        default N = 1 16 512 4096, M = K = 3584
 * prints one line per N: "N <n> copies <R> us_per_call <graph> host_loop_us_per_call
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

static void check_n(cublasLtHandle_t lt, cudaStream_t st, void *ws, size_t ws_bytes, int l2, int n) {
    const size_t wb = (size_t)M * K, xb = (size_t)n * K, db = (size_t)n * M * 2, per = wb + xb + db;
    int copies = (int)((2.0 * l2) / (double)per) + 1;
    if (copies < 2) copies = 2;
    if (copies > MAX_COPIES) copies = MAX_COPIES;
    void *w[MAX_COPIES], *x[MAX_COPIES], *d[MAX_COPIES];
    for (int i = 0; i < copies; i++) {
        CHECK_CUDA(cudaMalloc(&w[i], wb));
        CHECK_CUDA(cudaMalloc(&x[i], xb));
        CHECK_CUDA(cudaMalloc(&d[i], db));
        CHECK_CUDA(cudaMemset(w[i], 0x38, wb)); /* e4m3 0x38 = 1.0: finite, not zero */
        CHECK_CUDA(cudaMemset(x[i], 0x30, xb)); /* 0.5 */
    }
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    int32_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    int8_t fa = 0;
    CHECK_LT(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CHECK_LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CHECK_LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    CHECK_LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fa, sizeof fa));
    CHECK_LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, K, M, K));
    CHECK_LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, K, n, K));
    CHECK_LT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, M, n, M));
    cublasLtMatmulPreference_t pref;
    uint64_t wsb = ws_bytes;
    CHECK_LT(cublasLtMatmulPreferenceCreate(&pref));
    CHECK_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t res;
    int got = 0;
    CHECK_LT(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &got));
    if (!got) {
        fprintf(stderr, "lt_rotate_check: no algorithm for N=%d\n", n);
        exit(2);
    }
    const float one = 1.0f, zero = 0.0f;
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    /* The ITERS calls captured once in a CUDA graph: launched whole, the GPU runs them
     * back to back with no host in between, as kbench's recorded repetitions do. The
     * plain host loop is timed too: at small N it measures cublasLtMatmul's host cost. */
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < ITERS; i++) {
        const int c = i % copies;
        CHECK_LT(cublasLtMatmul(lt, op, &one, w[c], la, x[c], lb, &zero, d[c], lc, d[c], lc, &res.algo, ws, ws_bytes, st));
    }
    CHECK_CUDA(cudaStreamEndCapture(st, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    float ms_graph[LOOPS], ms_loop[LOOPS];
    for (int loop = -1; loop < LOOPS; loop++) { /* loop -1: warm-up */
        CHECK_CUDA(cudaEventRecord(e0, st));
        CHECK_CUDA(cudaGraphLaunch(exec, st));
        CHECK_CUDA(cudaEventRecord(e1, st));
        CHECK_CUDA(cudaEventSynchronize(e1));
        if (loop >= 0) CHECK_CUDA(cudaEventElapsedTime(&ms_graph[loop], e0, e1));
        CHECK_CUDA(cudaEventRecord(e0, st));
        for (int i = 0; i < ITERS; i++) {
            const int c = i % copies;
            CHECK_LT(cublasLtMatmul(lt, op, &one, w[c], la, x[c], lb, &zero, d[c], lc, d[c], lc, &res.algo, ws, ws_bytes, st));
        }
        CHECK_CUDA(cudaEventRecord(e1, st));
        CHECK_CUDA(cudaEventSynchronize(e1));
        if (loop >= 0) CHECK_CUDA(cudaEventElapsedTime(&ms_loop[loop], e0, e1));
    }
    /* one pass over the copies per graph launch, each launch timed alone (kbench's rotate
     * sample: `copies` calls between two events): the per-sample fixed cost shows here */
    cudaGraph_t g1;
    cudaGraphExec_t x1;
    CHECK_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int c = 0; c < copies; c++)
        CHECK_LT(cublasLtMatmul(lt, op, &one, w[c], la, x[c], lb, &zero, d[c], lc, d[c], lc, &res.algo, ws, ws_bytes, st));
    CHECK_CUDA(cudaStreamEndCapture(st, &g1));
    CHECK_CUDA(cudaGraphInstantiate(&x1, g1, 0));
    float ms_pass[SAMPLES];
    for (int i = -1; i < SAMPLES; i++) {
        CHECK_CUDA(cudaEventRecord(e0, st));
        CHECK_CUDA(cudaGraphLaunch(x1, st));
        CHECK_CUDA(cudaEventRecord(e1, st));
        CHECK_CUDA(cudaEventSynchronize(e1));
        if (i >= 0) CHECK_CUDA(cudaEventElapsedTime(&ms_pass[i], e0, e1));
    }
    qsort(ms_pass, SAMPLES, sizeof ms_pass[0], cmp);
    cudaGraphExecDestroy(x1);
    cudaGraphDestroy(g1);
    qsort(ms_graph, LOOPS, sizeof ms_graph[0], cmp);
    qsort(ms_loop, LOOPS, sizeof ms_loop[0], cmp);
    printf("N %d copies %d us_per_call %.3f host_loop_us_per_call %.3f one_pass_us_per_call %.3f\n", n, copies,
           ms_graph[LOOPS / 2] * 1000.0 / ITERS, ms_loop[LOOPS / 2] * 1000.0 / ITERS,
           ms_pass[SAMPLES / 2] * 1000.0 / copies);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
    for (int i = 0; i < copies; i++) cudaFree(w[i]), cudaFree(x[i]), cudaFree(d[i]);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
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
