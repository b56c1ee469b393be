/* fake_libcuda.c - TEST ONLY: a CUDA driver API on the CPU, so that the worker
 * (kbcuda_worker), the socket protocol and the two CUDA fronts can be run end to end
 * on a machine without a GPU (tests/test_cuda_host.c "fake" modes, kbench rows on
 * --backend cuda). The worker loads it through KB_CUDA_LIBCUDA instead of libcuda.so.1.
 *
 * It checks the host-side machinery, not any kernel: device memory is host memory,
 * work runs at once when queued, and only a handful of kernels are emulated (enough to
 * check that arguments arrive): rmsnorm_v1, add_v1 (f32 b), kb_test_poke and the
 * cuBLASLt scale reorders. Every other kernel does nothing, so its outputs keep the
 * harness's poison and its rows fail: only an emulated kernel's row can pass.
 *
 * Time is a counter: each launch takes 1 us, a device-to-device copy of B bytes takes
 * B / 1e12 s (so the measured copy bandwidth is exactly 2e12 B/s); events read it.
 * Stream capture records launches; a graph replays them.
 *
 * Limits (environment): KB_FAKE_CUDA_MAX_THREADS=<n> every function takes at most n
 * threads a block (cuFuncGetAttribute), as a kernel's registers can limit it;
 * KB_FAKE_CUDA_STATIC_SMEM=<bytes> every function has that much static shared memory.
 * As on a GPU, a launch whose static plus dynamic shared memory exceeds 48 KiB fails
 * (CUDA_ERROR_INVALID_VALUE) unless the function opted in to that much dynamic memory.
 *
 * Fault injection (environment):
 *   KB_FAKE_CUDA_FAIL=<file>   while <file> exists, the next launch of an op kernel
 *                              removes it and poisons the context: the next
 *                              synchronisation, and every call after, returns
 *                              CUDA_ERROR_ILLEGAL_ADDRESS (a sticky fault).
 *   KB_FAKE_CUDA_LATE=<n>      the first n blocking kernels report that they timed out. */
#include <cuda.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_MAX_ALLOC ((size_t)128 << 20) /* larger allocations fail: out of memory */
#define EXPORT __attribute__((visibility("default")))

typedef struct {
    char name[64];
    int max_dynamic_smem; /* cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES); 0: not set */
} fake_fn;

typedef struct {
    fake_fn *fn;
    unsigned grid[3], block[3];
    void **params;
} fake_launch;

typedef struct {
    fake_launch *l;
    int n, cap;
} fake_graph;

typedef struct {
    int capturing;
    fake_graph *cap;
} fake_stream;

typedef struct {
    double t;
} fake_event;

static double clock_us;   /* the fake GPU's time */
static int sticky;        /* a fault happened: every call fails */
static int pending_fault; /* ... from the next synchronisation on */
static int late_left = -1;
static int ctx_dummy;

static CUresult fail_if_sticky(void) { return sticky ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_SUCCESS; }

EXPORT CUresult cuInit(unsigned int flags) {
    (void)flags;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDriverGetVersion(int *v) {
    *v = 13000;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGetCount(int *n) {
    *n = 1;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGet(CUdevice *d, int ordinal) {
    *d = ordinal;
    return ordinal == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}
EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
    (void)d;
    snprintf(name, (size_t)len, "kbench fake CUDA device");
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
    (void)d;
    switch (a) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 4; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 1 << 20; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = 227 * 1024; break;
    default: *v = 0; break;
    }
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceTotalMem_v2(size_t *b, CUdevice d) {
    (void)d;
    *b = (size_t)1 << 30;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) {
    (void)d;
    *c = (CUcontext)&ctx_dummy;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    (void)d;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuCtxSetCurrent(CUcontext c) {
    (void)c;
    return fail_if_sticky();
}
EXPORT CUresult cuCtxGetCurrent(CUcontext *c) {
    *c = (CUcontext)&ctx_dummy;
    return CUDA_SUCCESS;
}

static CUresult sync_point(void) {
    if (pending_fault) {
        pending_fault = 0;
        sticky = 1;
    }
    return fail_if_sticky();
}

EXPORT CUresult cuCtxSynchronize(void) { return sync_point(); }
EXPORT CUresult cuMemGetInfo_v2(size_t *f, size_t *t) {
    *f = (size_t)900 << 20;
    *t = (size_t)1 << 30;
    return fail_if_sticky();
}

EXPORT CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
    (void)flags;
    *s = (CUstream)calloc(1, sizeof(fake_stream));
    return *s ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
EXPORT CUresult cuStreamDestroy_v2(CUstream s) {
    free(s);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuStreamSynchronize(CUstream s) {
    (void)s;
    return sync_point();
}
EXPORT CUresult cuStreamQuery(CUstream s) {
    (void)s;
    return sync_point();
}
EXPORT CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) {
    (void)mode;
    fake_stream *fs = (fake_stream *)s;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    if (fs->capturing) return CUDA_ERROR_ILLEGAL_STATE;
    fs->capturing = 1;
    fs->cap = calloc(1, sizeof(fake_graph));
    return fs->cap ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph *g) {
    fake_stream *fs = (fake_stream *)s;
    if (!fs->capturing) return CUDA_ERROR_ILLEGAL_STATE;
    fs->capturing = 0;
    *g = (CUgraph)fs->cap;
    fs->cap = NULL;
    return fail_if_sticky();
}
EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags) {
    (void)flags;
    const fake_graph *src = (const fake_graph *)g;
    fake_graph *dst = calloc(1, sizeof *dst);
    if (!dst) return CUDA_ERROR_OUT_OF_MEMORY;
    if (src->n) {
        dst->l = malloc((size_t)src->n * sizeof *dst->l);
        if (!dst->l) return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(dst->l, src->l, (size_t)src->n * sizeof *dst->l);
    }
    dst->n = dst->cap = src->n;
    *e = (CUgraphExec)dst;
    return fail_if_sticky();
}
EXPORT CUresult cuGraphDestroy(CUgraph g) {
    fake_graph *fg = (fake_graph *)g;
    if (fg) free(fg->l);
    free(fg);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuGraphExecDestroy(CUgraphExec e) { return cuGraphDestroy((CUgraph)e); }

EXPORT CUresult cuEventCreate(CUevent *e, unsigned int flags) {
    (void)flags;
    *e = (CUevent)calloc(1, sizeof(fake_event));
    return *e ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
EXPORT CUresult cuEventDestroy_v2(CUevent e) {
    free(e);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuEventRecord(CUevent e, CUstream s) {
    (void)s;
    ((fake_event *)e)->t = clock_us;
    return fail_if_sticky();
}
EXPORT CUresult cuEventSynchronize(CUevent e) {
    (void)e;
    return sync_point();
}
#undef cuEventElapsedTime /* cuda.h maps it to _v2; the worker loads the first one */
EXPORT CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) {
    *ms = (float)((((fake_event *)b)->t - ((fake_event *)a)->t) * 1e-3);
    return fail_if_sticky();
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    if (bytes > FAKE_MAX_ALLOC) return CUDA_ERROR_OUT_OF_MEMORY;
    void *m = NULL;
    if (posix_memalign(&m, 256, bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
    *p = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr p) {
    free((void *)(uintptr_t)p);
    return fail_if_sticky();
}
EXPORT CUresult cuMemHostAlloc(void **p, size_t bytes, unsigned int flags) {
    (void)flags;
    *p = calloc(1, bytes);
    return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
EXPORT CUresult cuMemFreeHost(void *p) {
    free(p);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *d, void *p, unsigned int flags) {
    (void)flags;
    *d = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
    (void)s;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    memcpy((void *)(uintptr_t)dst, src, n);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s) {
    (void)s;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
    (void)s;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    clock_us += (double)n / 1e12 * 1e6;
    return CUDA_SUCCESS;
}
EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
    (void)s;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    memset((void *)(uintptr_t)dst, v, n);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    if (!image) return CUDA_ERROR_INVALID_VALUE;
    *m = (CUmodule)malloc(1);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuModuleUnload(CUmodule m) {
    free(m);
    return CUDA_SUCCESS;
}
EXPORT CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    (void)m;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    /* one per lookup, from a static pool: the worker keeps what it gets for its life,
     * and heap handles would be leaks at its exit under LeakSanitizer */
    static fake_fn pool[4096];
    static int used;
    if (used == (int)(sizeof pool / sizeof pool[0])) return CUDA_ERROR_OUT_OF_MEMORY;
    fake_fn *fn = &pool[used++];
    memset(fn, 0, sizeof *fn);
    snprintf(fn->name, sizeof fn->name, "%s", name);
    *f = (CUfunction)fn;
    return CUDA_SUCCESS;
}
static int static_smem(void) {
    const char *e = getenv("KB_FAKE_CUDA_STATIC_SMEM");
    return e ? atoi(e) : 0;
}
EXPORT CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v) {
    if (!f) return CUDA_ERROR_INVALID_VALUE;
    if (a == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        if (v < 0 || v + static_smem() > 227 * 1024) return CUDA_ERROR_INVALID_VALUE;
        ((fake_fn *)f)->max_dynamic_smem = v;
    }
    return fail_if_sticky();
}

/* A function takes 1024 threads a block (KB_FAKE_CUDA_MAX_THREADS=n: n, as registers
 * would limit it) and no static shared memory (KB_FAKE_CUDA_STATIC_SMEM=n: n bytes). */
EXPORT CUresult cuFuncGetAttribute(int *v, CUfunction_attribute a, CUfunction f) {
    if (!v || !f) return CUDA_ERROR_INVALID_VALUE;
    const char *e = getenv("KB_FAKE_CUDA_MAX_THREADS");
    *v = a == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK ? (e ? atoi(e) : 1024)
         : a == CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES ? static_smem()
                                                     : 0;
    return fail_if_sticky();
}

/* ---- the emulated kernels ---------------------------------------------------------------- */
#define ARG(i, type) (*(type *)params[i])

static void run(const fake_launch *l) {
    void **params = l->params;
    const char *k = l->fn->name;
    clock_us += 1.0;
    if (!strcmp(k, "kb_block_stream")) {
        if (late_left < 0) {
            const char *e = getenv("KB_FAKE_CUDA_LATE");
            late_left = e ? atoi(e) : 0;
        }
        if (late_left > 0) {
            late_left--;
            *(volatile unsigned int *)(uintptr_t)ARG(1, CUdeviceptr) = 1u;
        }
    } else if (!strcmp(k, "rmsnorm_v1")) {
        const float *x = (const float *)(uintptr_t)ARG(0, CUdeviceptr),
                    *w = (const float *)(uintptr_t)ARG(1, CUdeviceptr);
        float *y = (float *)(uintptr_t)ARG(2, CUdeviceptr);
        const int K = ARG(3, int);
        const float eps = ARG(4, float);
        for (unsigned r = 0; r < l->grid[0]; r++) {
            double ss = 0;
            for (int i = 0; i < K; i++) ss += (double)x[(size_t)r * K + i] * x[(size_t)r * K + i];
            const float scale = 1.0f / sqrtf((float)ss / (float)K + eps);
            for (int i = 0; i < K; i++) y[(size_t)r * K + i] = (x[(size_t)r * K + i] * scale) * w[i];
        }
    } else if (!strcmp(k, "add_v1") && ARG(4, int) == 0) {
        const float *a = (const float *)(uintptr_t)ARG(0, CUdeviceptr),
                    *b = (const float *)(uintptr_t)ARG(1, CUdeviceptr);
        float *y = (float *)(uintptr_t)ARG(2, CUdeviceptr);
        for (long long i = 0; i < ARG(3, long long); i++) y[i] = a[i] + b[i];
    } else if (!strcmp(k, "kb_test_poke")) {
        unsigned char *p = (unsigned char *)(uintptr_t)ARG(0, CUdeviceptr);
        for (int i = 0; i < ARG(2, int); i++) p[i] = (unsigned char)(ARG(1, long long) >> (8 * i));
    } else if (!strcmp(k, "kb_scales_transpose")) {
        const float *src = (const float *)(uintptr_t)ARG(0, CUdeviceptr);
        float *dst = (float *)(uintptr_t)ARG(1, CUdeviceptr);
        const long long rows = ARG(2, long long);
        const int kb = ARG(3, int);
        for (long long r = 0; r < rows; r++)
            for (int j = 0; j < kb; j++) dst[j * rows + r] = src[r * kb + j];
    } else if (!strcmp(k, "kb_scales_pad")) {
        const float *src = (const float *)(uintptr_t)ARG(0, CUdeviceptr);
        float *dst = (float *)(uintptr_t)ARG(1, CUdeviceptr);
        const long long mb = ARG(2, long long);
        const int kb = ARG(3, int), kbp = ARG(4, int);
        for (long long i = 0; i < mb; i++)
            for (int j = 0; j < kbp; j++) dst[i * kbp + j] = j < kb ? src[i * kb + j] : 0.0f;
    } else {
        /* not emulated: a fault to inject? (support kernels never fault) */
        const char *f = getenv("KB_FAKE_CUDA_FAIL");
        if (f && strncmp(k, "kb_", 3) != 0 && access(f, F_OK) == 0 && remove(f) == 0) pending_fault = 1;
    }
}

/* KB_FAKE_CUDA_EXPECT_PDL=1 (0): an op's kernel (not a kb_ support kernel) launched
 * without (with) the programmatic-dependent-launch attribute fails to launch, so a test
 * sees whether the PDL tunable reaches the driver. */
static int pdl_unexpected(const fake_fn *fn, int pdl) {
    const char *e = getenv("KB_FAKE_CUDA_EXPECT_PDL");
    return e && *e && strncmp(fn->name, "kb_", 3) != 0 && atoi(e) != pdl;
}

static CUresult launch(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                       unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params, int pdl) {
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    if (!f || gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || bx * by * bz > 1024)
        return CUDA_ERROR_INVALID_VALUE;
    if (pdl_unexpected((fake_fn *)f, pdl)) return CUDA_ERROR_INVALID_VALUE;
    /* beyond 48 KiB a block, static + dynamic, only with the function's opt-in */
    const int opted = ((fake_fn *)f)->max_dynamic_smem;
    if ((int)smem + static_smem() > 48 * 1024 && (int)smem > opted) return CUDA_ERROR_INVALID_VALUE;
    const fake_launch l = {(fake_fn *)f, {gx, gy, gz}, {bx, by, bz}, params};
    fake_stream *fs = (fake_stream *)s;
    if (fs && fs->capturing) {
        fake_graph *g = fs->cap;
        if (g->n == g->cap) {
            const int cap = g->cap ? 2 * g->cap : 8;
            fake_launch *n = realloc(g->l, (size_t)cap * sizeof *n);
            if (!n) return CUDA_ERROR_OUT_OF_MEMORY;
            g->l = n;
            g->cap = cap;
        }
        g->l[g->n++] = l; /* the argument values stay where the worker keeps them */
        return CUDA_SUCCESS;
    }
    run(&l);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                               unsigned int by, unsigned int bz, unsigned int smem, CUstream s, void **params,
                               void **extra) {
    (void)extra;
    return launch(f, gx, gy, gz, bx, by, bz, smem, s, params, 0);
}

/* The one attribute kbench sets; any other is refused, as is a value other than 0 or 1. */
EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
    (void)extra;
    if (!c || (c->numAttrs && !c->attrs)) return CUDA_ERROR_INVALID_VALUE;
    int pdl = 0;
    for (unsigned i = 0; i < c->numAttrs; i++) {
        if (c->attrs[i].id != CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION ||
            c->attrs[i].value.programmaticStreamSerializationAllowed > 1)
            return CUDA_ERROR_INVALID_VALUE;
        pdl = (int)c->attrs[i].value.programmaticStreamSerializationAllowed;
    }
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ,
                  c->sharedMemBytes, c->hStream, params, pdl);
}

EXPORT CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    (void)s;
    if (sticky) return CUDA_ERROR_ILLEGAL_ADDRESS;
    const fake_graph *g = (const fake_graph *)e;
    for (int i = 0; i < g->n; i++) run(&g->l[i]);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetErrorName(CUresult r, const char **name) {
    switch (r) {
    case CUDA_ERROR_ILLEGAL_ADDRESS: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case CUDA_ERROR_INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; break;
    default: *name = "CUDA_ERROR_FAKE"; break;
    }
    return CUDA_SUCCESS;
}
EXPORT CUresult cuGetErrorString(CUresult r, const char **text) {
    *text = r == CUDA_ERROR_ILLEGAL_ADDRESS ? "an illegal memory access was encountered (fake)" : "fake driver error";
    return CUDA_SUCCESS;
}
