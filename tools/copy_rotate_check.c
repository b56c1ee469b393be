/* copy_rotate_check.c - the device copy rate at a memory-bound op's own size, timed the
 * way kbench's rotate mode times a kernel: the ceiling a streaming op of that size can
 * reach, beside the 2 GiB copy rate kbench's rows are judged against.
 *
 * Nothing of kbench is used: the CUDA runtime directly. For each size S, R pairs of
 * buffers (R x 2S > 2 x L2, so every copy reads and writes DRAM, as rotate mode's
 * kernels do), ITERS device-to-device cudaMemcpyAsync calls back to back (copy i on
 * pair i % R), captured once in a CUDA graph and timed with two events, median of
 * LOOPS. The reference is the worker's own probe: the best of 5 copies of 2 GiB
 * (halved while the memory is not there), each timed alone with events.
 *
 *   copy_rotate_check [BYTES ...]   default 58720256 (4096 x 3584 floats: rmsnorm,
 *                                   rope, embed's output) 154927104 (dequant_q4k
 *                                   18944x3584's read + write, halved)
 * prints "ref_bytes B ref_gbps G", then per size "bytes S copies R us_per_copy T
 * gbps G of_ref F" (GB/s count bytes read + written, as kbench's rows do), and the same
 * for a write-only stream, ITERS cudaMemsetAsync of S bytes (a byte pattern, not zeros)
 * over the R destination buffers: "bytes S memsets R us_per_memset T write_gbps G
 * of_ref F", the ceiling of an op that mostly writes (embed, dequant: f32 out of 4.5- or
 * 6.6-bit weights), against the same copy rate. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_CUDA(x)                                                                                  \
    do {                                                                                               \
        cudaError_t e_ = (x);                                                                          \
        if (e_ != cudaSuccess) {                                                                       \
            fprintf(stderr, "copy_rotate_check: %s: %s\n", #x, cudaGetErrorString(e_));                \
            exit(2);                                                                                   \
        }                                                                                              \
    } while (0)

enum { ITERS = 100, LOOPS = 7, MAX_COPIES = 64 };

static int cmp(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float elapsed_ms(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, cudaGraphExec_t g, void *dst, const void *src,
                        size_t bytes) {
    float ms = 0;
    CHECK_CUDA(cudaEventRecord(e0, st));
    if (g) CHECK_CUDA(cudaGraphLaunch(g, st));
    else CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st));
    CHECK_CUDA(cudaEventRecord(e1, st));
    CHECK_CUDA(cudaEventSynchronize(e1));
    CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
    return ms;
}

/* a graph of ITERS operations: the median of LOOPS replays (after one untimed), us per operation */
static double median_us(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, cudaGraphExec_t exec) {
    float ms[LOOPS];
    for (int loop = -1; loop < LOOPS; loop++) {
        const float t = elapsed_ms(st, e0, e1, exec, NULL, NULL, 0);
        if (loop >= 0) ms[loop] = t;
    }
    qsort(ms, LOOPS, sizeof ms[0], cmp);
    return ms[LOOPS / 2] * 1000.0 / ITERS;
}

/* the reference: best of 5 single copies of 2 GiB (or less while cudaMalloc refuses) */
static double reference_gbps(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, size_t *bytes_out) {
    size_t bytes = (size_t)2 << 30;
    void *a = NULL, *b = NULL;
    while (bytes >= ((size_t)64 << 20)) {
        if (cudaMalloc(&a, bytes) == cudaSuccess) {
            if (cudaMalloc(&b, bytes) == cudaSuccess) break;
            cudaFree(a);
        }
        a = b = NULL;
        (void)cudaGetLastError(); /* the refused allocation is not an error to keep */
        bytes /= 2;
    }
    if (!a || !b) {
        fprintf(stderr, "copy_rotate_check: no memory for the reference copy\n");
        exit(2);
    }
    CHECK_CUDA(cudaMemset(a, 0x3c, bytes));
    float best = 1e30f;
    for (int i = -1; i < 5; i++) {
        const float ms = elapsed_ms(st, e0, e1, NULL, b, a, bytes);
        if (i >= 0 && ms < best) best = ms;
    }
    cudaFree(a);
    cudaFree(b);
    *bytes_out = bytes;
    return 2.0 * (double)bytes / (best * 1e-3) / 1e9;
}

static void check_size(cudaStream_t st, cudaEvent_t e0, cudaEvent_t e1, int l2, size_t bytes, double ref_gbps) {
    int copies = (int)((2.0 * l2) / (2.0 * (double)bytes)) + 1;
    if (copies < 2) copies = 2;
    if (copies > MAX_COPIES) copies = MAX_COPIES;
    void *src[MAX_COPIES], *dst[MAX_COPIES];
    for (int i = 0; i < copies; i++) {
        CHECK_CUDA(cudaMalloc(&src[i], bytes));
        CHECK_CUDA(cudaMalloc(&dst[i], bytes));
        CHECK_CUDA(cudaMemset(src[i], 0x3c, bytes)); /* not zeros: no compression shortcut */
    }
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < ITERS; i++)
        CHECK_CUDA(cudaMemcpyAsync(dst[i % copies], src[i % copies], bytes, cudaMemcpyDeviceToDevice, st));
    CHECK_CUDA(cudaStreamEndCapture(st, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    CHECK_CUDA(cudaGraphDestroy(graph));
    double us = median_us(st, e0, e1, exec), gbps = 2.0 * (double)bytes / (us * 1e-6) / 1e9;
    printf("bytes %zu copies %d us_per_copy %.3f gbps %.1f of_ref %.3f\n", bytes, copies, us, gbps, gbps / ref_gbps);
    cudaGraphExecDestroy(exec);
    /* the write-only stream over the same destinations */
    CHECK_CUDA(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < ITERS; i++) CHECK_CUDA(cudaMemsetAsync(dst[i % copies], 0x5a, bytes, st));
    CHECK_CUDA(cudaStreamEndCapture(st, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    CHECK_CUDA(cudaGraphDestroy(graph));
    us = median_us(st, e0, e1, exec);
    gbps = (double)bytes / (us * 1e-6) / 1e9;
    printf("bytes %zu memsets %d us_per_memset %.3f write_gbps %.1f of_ref %.3f\n", bytes, copies, us, gbps,
           gbps / ref_gbps);
    cudaGraphExecDestroy(exec);
    for (int i = 0; i < copies; i++) cudaFree(src[i]), cudaFree(dst[i]);
}

int main(int argc, char **argv) {
    size_t sizes[16] = {58720256, 154927104};
    int count = 2;
    if (argc > 1) {
        count = 0;
        for (int i = 1; i < argc && count < 16; i++) {
            char *end = NULL;
            const unsigned long long v = strtoull(argv[i], &end, 10);
            if (!end || *end || v < 4096 || v > ((unsigned long long)8 << 30)) {
                fprintf(stderr, "copy_rotate_check: size '%s': bytes from 4096 to 8 GiB\n", argv[i]);
                return 2;
            }
            sizes[count++] = (size_t)v;
        }
    }
    int l2 = 0;
    CHECK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    cudaStream_t st;
    CHECK_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    size_t ref_bytes = 0;
    const double ref = reference_gbps(st, e0, e1, &ref_bytes);
    printf("ref_bytes %zu ref_gbps %.1f\n", ref_bytes, ref);
    for (int i = 0; i < count; i++) check_size(st, e0, e1, l2, sizes[i], ref);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 0;
}
