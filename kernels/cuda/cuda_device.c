/* cuda_device.c - the device side of the cuda backend (see cuda_device.h). Runs in
 * the worker process. Driver API through dlopen (cuda_driver.c), kernels through
 * NVRTC (nvrtc_build.c), launch plans from backend_cuda.c.
 *
 * Context: our own (cuCtxCreate), pushed only inside our calls; in the worker nothing
 * else shares the thread, but the habit keeps the code usable next to the runtime API.
 * After a sticky fault every call answers KB_ERROR_FATAL: the parent replaces the
 * whole worker (a new context in the same process fails with the same error).
 *
 * Timing: CUDA events around the launches on our stream. The GPU must not wait for
 * the host between the first event and the launch, or the host's launch latency is
 * measured too (run 1 on the H100: ~7-10 us extra on every kernel). So a spin
 * kernel (timing.cu) holds the stream for SPIN_NS while the host enqueues event,
 * launches and event: the first event then fires with the launches already queued
 * (nvbench's "blocking kernel" idea, with a timed spin instead of a host flag). */
#include "kernels/cuda/cuda_device.h"

#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/cuda_driver.h"
#include "kernels/cuda/nvrtc_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODULES 64
#define SPIN_NS 50000ull /* > host enqueue time of event + 2 launches + event (~10 us) */

typedef struct {
    uint64_t key;
    CUmodule mod;
} module_entry;

static struct {
    kbcu_driver drv;
    int live;     /* context and friends exist */
    int poisoned; /* a sticky fault happened: FATAL from now on */
    char poison[KB_MSG];
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    CUevent ev0, ev1;
    CUfunction spin;
    CUdeviceptr flush_buf;
    size_t flush_bytes;
    unsigned char flush_value;
    kbcu_devinfo info;
    int cc_major, cc_minor, l2_bytes;
    char arch[16];
    char include_dir[1024];
    char include_err[KB_MSG];
    char cache_dir[1024];
    int use_cache;
    module_entry mods[MAX_MODULES];
    int nmods;
} g;

static const char *cu_text(CUresult r) {
    static char buf[KB_MSG];
    return kbcu_result_text(&g.drv, r, buf, sizeof buf);
}

/* msg = "what: NAME: text"; sticky errors poison the context and answer FATAL. */
static int cu_fail(char *msg, CUresult r, const char *what) {
    if (kbcu_result_is_sticky(r)) {
        g.poisoned = 1;
        snprintf(g.poison, sizeof g.poison, "%s: %s", what, cu_text(r));
        return kb_fail(msg, KB_ERROR_FATAL, "%s: %s (context lost)", what, cu_text(r));
    }
    return kb_fail(msg, KB_ERROR, "%s: %s", what, cu_text(r));
}

static void leave(void) {
    CUcontext c;
    g.drv.CtxPopCurrent(&c);
}

#define CU_TRY(call, what)                    \
    do {                                      \
        CUresult r_ = (call);                 \
        if (r_ != CUDA_SUCCESS) {             \
            int rc_ = cu_fail(msg, r_, what); \
            leave();                          \
            return rc_;                       \
        }                                     \
    } while (0)

static int enter(char *msg) {
    if (!g.live) return kb_fail(msg, KB_ERROR, "cuda device is not initialised");
    if (g.poisoned) return kb_fail(msg, KB_ERROR_FATAL, "context lost after %s", g.poison);
    CUresult r = g.drv.CtxPushCurrent(g.ctx);
    if (r != CUDA_SUCCESS) return cu_fail(msg, r, "cuCtxPushCurrent");
    return KB_OK;
}

/* ---- modules ---------------------------------------------------------------------- */
/* Compile (or take from the disk cache) and load; loaded modules are kept, keyed like
 * the cache. Called with the context pushed. */
static int load_module(const char *source, const char *opts, CUmodule *mod, char *msg) {
    const char *src = kbcu_source_text(source);
    if (!src) return kb_fail(msg, KB_ERROR, "kernel source %s is not embedded in this build", source);
    if (strstr(src, "#include <cuda_") && !g.include_dir[0]) return kb_fail(msg, KB_ERROR, "%s", g.include_err);
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    uint64_t key = kbcu_cache_key(src, opts, g.arch, vmaj, vmin);
    for (int i = 0; i < g.nmods; i++)
        if (g.mods[i].key == key) {
            *mod = g.mods[i].mod;
            return KB_OK;
        }
    const char *cache = g.use_cache ? g.cache_dir : NULL;
    kbcu_binary bin;
    int rc = kbcu_compile(source, src, opts, g.arch, g.include_dir, cache, &bin, msg);
    if (rc != KB_OK) return rc;
    CUresult r = g.drv.ModuleLoadData(mod, bin.image);
    if (r != CUDA_SUCCESS && bin.from_cache && !kbcu_result_is_sticky(r)) {
        /* a damaged cache file: drop it and compile afresh (which rewrites it) */
        free(bin.image);
        remove(bin.cache_path);
        rc = kbcu_compile(source, src, opts, g.arch, g.include_dir, cache, &bin, msg);
        if (rc != KB_OK) return rc;
        r = g.drv.ModuleLoadData(mod, bin.image);
    }
    free(bin.image);
    if (r != CUDA_SUCCESS) return cu_fail(msg, r, "cuModuleLoadData");
    if (g.nmods < MAX_MODULES) g.mods[g.nmods++] = (module_entry){key, *mod};
    return KB_OK;
}

/* ---- probe ------------------------------------------------------------------------ */
/* Device-to-device copy bandwidth (bytes read + written per second), the memory
 * ceiling for napkin math: best of 5 copies of up to 1 GiB, timed with events. */
static double measure_copy_bw(void) {
    char msg[KB_MSG];
    if (enter(msg) != KB_OK) return 0;
    double best = 0;
    for (size_t bytes = (size_t)1 << 30; bytes >= ((size_t)64 << 20) && best == 0; bytes /= 2) {
        CUdeviceptr a = 0, b = 0;
        if (g.drv.MemAlloc(&a, bytes) != CUDA_SUCCESS) continue;
        if (g.drv.MemAlloc(&b, bytes) != CUDA_SUCCESS) {
            g.drv.MemFree(a);
            continue;
        }
        int ok = g.drv.MemsetD8Async(a, 1, bytes, g.stream) == CUDA_SUCCESS &&
                 g.drv.MemcpyDtoDAsync(b, a, bytes, g.stream) == CUDA_SUCCESS; /* warm-up */
        for (int i = 0; ok && i < 5; i++) {
            float ms = 0;
            ok = g.drv.EventRecord(g.ev0, g.stream) == CUDA_SUCCESS &&
                 g.drv.MemcpyDtoDAsync(b, a, bytes, g.stream) == CUDA_SUCCESS &&
                 g.drv.EventRecord(g.ev1, g.stream) == CUDA_SUCCESS && g.drv.EventSynchronize(g.ev1) == CUDA_SUCCESS &&
                 g.drv.EventElapsedTime(&ms, g.ev0, g.ev1) == CUDA_SUCCESS;
            if (ok && ms > 0) {
                double bw = 2.0 * (double)bytes / (ms * 1e-3);
                if (bw > best) best = bw;
            }
        }
        g.drv.StreamSynchronize(g.stream);
        g.drv.MemFree(a);
        g.drv.MemFree(b);
    }
    leave();
    return best;
}

/* The kernel module's release ("580.159.04") from /proc/driver/nvidia/version, whose
 * first line reads "NVRM version: NVIDIA UNIX [Open ]Kernel Module [for x86_64]
 * 580.159.04  Release Build ...": the first token that starts with a digit and holds a dot. */
static void kernel_driver_version(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f) return;
    char line[512];
    if (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "Kernel Module");
        for (p = p ? p : line; *p;) {
            p += strspn(p, " \t\n");
            size_t n = strcspn(p, " \t\n");
            if (n && *p >= '0' && *p <= '9' && memchr(p, '.', n)) {
                if (n >= cap) n = cap - 1;
                memcpy(out, p, n);
                out[n] = 0;
                break;
            }
            p += n;
        }
    }
    fclose(f);
}

/* Context, stream, events, the L2 flush buffer and the spin kernel. cuCtxCreate
 * leaves the new context current: popped before returning, like every entry point. */
static int make_context(char *msg) {
    CUresult r = g.drv.CtxCreate(&g.ctx, 0, g.dev);
    if (r != CUDA_SUCCESS) return kb_fail(msg, KB_NOT_SUPPORTED, "cuCtxCreate: %s", cu_text(r));
    g.live = 1;
    CU_TRY(g.drv.StreamCreate(&g.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    CU_TRY(g.drv.EventCreate(&g.ev0, CU_EVENT_DEFAULT), "cuEventCreate");
    CU_TRY(g.drv.EventCreate(&g.ev1, CU_EVENT_DEFAULT), "cuEventCreate");
    /* nvbench flushes with a buffer of the L2 size; twice that leaves no line of the
     * timed op's data behind whatever the replacement policy. */
    g.flush_bytes = 2 * (size_t)(g.l2_bytes > 0 ? g.l2_bytes : 64 << 20);
    CU_TRY(g.drv.MemAlloc(&g.flush_buf, g.flush_bytes), "cuMemAlloc (L2 flush buffer)");
    CUmodule mod;
    int rc = load_module("timing.cu", "", &mod, msg);
    if (rc != KB_OK) {
        leave();
        return rc;
    }
    CU_TRY(g.drv.ModuleGetFunction(&g.spin, mod, "kb_spin"), "cuModuleGetFunction(kb_spin)");
    leave();
    return KB_OK;
}

int kbcu_dev_probe(const char *libcuda, const char *cache_dir, kbcu_device_info *info, char *msg) {
    memset(info, 0, sizeof *info);
    if (g.live) return kb_fail(msg, KB_ERROR, "cuda device probed twice");
    int rc = kbcu_driver_load(&g.drv, libcuda, msg);
    if (rc != KB_OK) return rc;
    CUresult r = g.drv.Init(0);
    if (r == CUDA_ERROR_STUB_LIBRARY)
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA driver (libcuda.so.1 is the toolkit's stub: %s)", cu_text(r));
    if (r != CUDA_SUCCESS) return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (cuInit: %s)", cu_text(r));
    int count = 0;
    r = g.drv.DeviceGetCount(&count);
    if (r != CUDA_SUCCESS) return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (cuDeviceGetCount: %s)", cu_text(r));
    if (count < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (the driver sees none)");
    r = g.drv.DeviceGet(&g.dev, 0);
    if (r != CUDA_SUCCESS) return kb_fail(msg, KB_NOT_SUPPORTED, "cuDeviceGet(0): %s", cu_text(r));

    int v = 0;
#define ATTR(dst, a)                                                                         \
    do {                                                                                     \
        r = g.drv.DeviceGetAttribute(&v, a, g.dev);                                          \
        if (r != CUDA_SUCCESS) return kb_fail(msg, KB_NOT_SUPPORTED, #a ": %s", cu_text(r)); \
        dst = v;                                                                             \
    } while (0)
    ATTR(g.cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    ATTR(g.cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    ATTR(g.info.sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    ATTR(g.l2_bytes, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
    ATTR(g.info.smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
#undef ATTR
    g.info.sm = g.cc_major * 10 + g.cc_minor;
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    if (!kbcu_nvrtc_supports(g.info.sm))
        return kb_fail(msg, KB_NOT_SUPPORTED, "compute capability %d.%d is not a target of NVRTC %d.%d", g.cc_major,
                       g.cc_minor, vmaj, vmin);
    kbcu_arch_name(g.cc_major, g.cc_minor, g.arch, sizeof g.arch);
    char name[160];
    if (g.drv.DeviceGetName(name, sizeof name, g.dev) != CUDA_SUCCESS) snprintf(name, sizeof name, "CUDA device 0");

    /* Missing headers fail only the kernels that include them, with this text. */
    if (kbcu_cuda_include(g.include_dir, sizeof g.include_dir, g.include_err) != KB_OK) g.include_dir[0] = 0;
    g.use_cache = kbcu_cache_dir(cache_dir, g.cache_dir, sizeof g.cache_dir);

    rc = make_context(msg);
    if (rc != KB_OK) return rc == KB_ERROR_FATAL ? KB_NOT_SUPPORTED : rc;

    int drv_api = 0;
    g.drv.DriverGetVersion(&drv_api);
    char kmod[64];
    kernel_driver_version(kmod, sizeof kmod);
    if (kmod[0])
        snprintf(info->driver, sizeof info->driver, "%s (CUDA %d.%d driver API, NVRTC %d.%d)", kmod, drv_api / 1000,
                 (drv_api % 1000) / 10, vmaj, vmin);
    else
        snprintf(info->driver, sizeof info->driver, "CUDA %d.%d driver API, NVRTC %d.%d", drv_api / 1000,
                 (drv_api % 1000) / 10, vmaj, vmin);
    snprintf(info->device, sizeof info->device, "%s (%s, %d SMs, %d MiB L2)", name, g.arch, g.info.sm_count,
             g.l2_bytes >> 20);
    info->copy_bw = measure_copy_bw();
    info->sm = g.info.sm;
    info->sm_count = g.info.sm_count;
    info->smem_optin = g.info.smem_optin;
    return KB_OK;
}

/* ---- memory ----------------------------------------------------------------------- */
int kbcu_dev_alloc(size_t bytes, uint64_t *dptr, char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    CUdeviceptr p = 0;
    CU_TRY(g.drv.MemAlloc(&p, bytes ? bytes : 1), "cuMemAlloc");
    leave();
    *dptr = (uint64_t)p;
    return KB_OK;
}

void kbcu_dev_free(uint64_t dptr) {
    char msg[KB_MSG];
    if (!dptr || enter(msg) != KB_OK) return;
    g.drv.MemFree((CUdeviceptr)dptr);
    leave();
}

int kbcu_dev_upload(uint64_t dst, const void *host, size_t bytes, char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    CU_TRY(g.drv.MemcpyHtoDAsync((CUdeviceptr)dst, host, bytes, g.stream), "cuMemcpyHtoDAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (upload)");
    leave();
    return KB_OK;
}

int kbcu_dev_download(void *host, uint64_t src, size_t bytes, char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    CU_TRY(g.drv.MemcpyDtoHAsync(host, (CUdeviceptr)src, bytes, g.stream), "cuMemcpyDtoHAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (download)");
    leave();
    return KB_OK;
}

/* ---- prepare / run ---------------------------------------------------------------- */
typedef union {
    CUdeviceptr p;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
} arg_value;

typedef struct {
    int nlaunch;
    struct {
        CUfunction fn;
        unsigned grid[3], block[3], smem;
        arg_value values[KBCU_MAX_ARGS];
        void *params[KBCU_MAX_ARGS];
    } l[2];
    CUdeviceptr ws;
} cuda_state;

static int test_variants_enabled(void) {
    const char *e = getenv("KB_TEST_VARIANTS");
    return e && strcmp(e, "1") == 0;
}

int kbcu_dev_prepare(const kb_case *c, const char *variant, const uint64_t dev_in[KB_MAX_INPUTS], uint64_t dev_out,
                     uint64_t *state, char *msg) {
    *state = 0;
    const kbcu_kernel_def *def = kbcu_find_def(c->op, variant, test_variants_enabled());
    if (!def) return kb_fail(msg, KB_ERROR, "cuda has no variant %s for %s", variant, kb_op_name(c->op));
    kbcu_plan plan;
    int rc = kbcu_plan_case(c, def, &g.info, &plan, msg);
    if (rc != KB_OK) return rc;
    rc = enter(msg);
    if (rc != KB_OK) return rc;

    char opts[256];
    kbcu_def_options(def, plan.spec, opts, sizeof opts);
    CUmodule mod;
    rc = load_module(def->source, opts, &mod, msg);
    if (rc != KB_OK) {
        leave();
        return rc;
    }
    cuda_state *st = calloc(1, sizeof *st);
    if (!st) {
        leave();
        return kb_fail(msg, KB_ERROR, "out of host memory");
    }
    st->nlaunch = plan.nlaunch;
    if (plan.workspace) {
        CUresult r = g.drv.MemAlloc(&st->ws, plan.workspace);
        if (r != CUDA_SUCCESS) {
            free(st);
            rc = cu_fail(msg, r, "cuMemAlloc (workspace)");
            leave();
            return rc;
        }
    }
    for (int i = 0; i < plan.nlaunch; i++) {
        const kbcu_launch *pl = &plan.launch[i];
        CUresult r = g.drv.ModuleGetFunction(&st->l[i].fn, mod, pl->kernel);
        if (r == CUDA_SUCCESS && pl->smem > 48 * 1024)
            r = g.drv.FuncSetAttribute(st->l[i].fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)pl->smem);
        if (r != CUDA_SUCCESS) {
            if (st->ws) g.drv.MemFree(st->ws);
            free(st);
            char what[96];
            snprintf(what, sizeof what, "cuModuleGetFunction/cuFuncSetAttribute(%s)", pl->kernel);
            rc = cu_fail(msg, r, what);
            leave();
            return rc;
        }
        memcpy(st->l[i].grid, pl->grid, sizeof pl->grid);
        memcpy(st->l[i].block, pl->block, sizeof pl->block);
        st->l[i].smem = pl->smem;
        for (int a = 0; a < pl->nargs; a++) {
            const kbcu_arg *arg = &pl->args[a];
            arg_value *val = &st->l[i].values[a];
            switch (arg->kind) {
            case KBCU_ARG_IN0:
            case KBCU_ARG_IN1:
            case KBCU_ARG_IN2:
            case KBCU_ARG_IN3: val->p = (CUdeviceptr)dev_in[arg->kind - KBCU_ARG_IN0]; break;
            case KBCU_ARG_OUT: val->p = (CUdeviceptr)dev_out; break;
            case KBCU_ARG_WS: val->p = st->ws; break;
            case KBCU_ARG_I32: val->i32 = (int32_t)arg->i; break;
            case KBCU_ARG_I64: val->i64 = arg->i; break;
            case KBCU_ARG_F32: val->f32 = (float)arg->f; break;
            default: val->f64 = arg->f; break;
            }
            st->l[i].params[a] = val;
        }
    }
    leave();
    *state = (uint64_t)(uintptr_t)st;
    return KB_OK;
}

int kbcu_dev_run(uint64_t state, double *seconds, char *msg) {
    cuda_state *st = (cuda_state *)(uintptr_t)state;
    if (!st) return kb_fail(msg, KB_ERROR, "no state");
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    if (seconds) {
        unsigned long long ns = SPIN_NS;
        void *spin_args[1] = {&ns};
        CU_TRY(g.drv.LaunchKernel(g.spin, 1, 1, 1, 32, 1, 1, 0, g.stream, spin_args, NULL), "cuLaunchKernel (kb_spin)");
        CU_TRY(g.drv.EventRecord(g.ev0, g.stream), "cuEventRecord");
    }
    for (int i = 0; i < st->nlaunch; i++) {
        char what[48];
        snprintf(what, sizeof what, "cuLaunchKernel (launch %d)", i);
        CU_TRY(g.drv.LaunchKernel(st->l[i].fn, st->l[i].grid[0], st->l[i].grid[1], st->l[i].grid[2], st->l[i].block[0],
                                  st->l[i].block[1], st->l[i].block[2], st->l[i].smem, g.stream, st->l[i].params, NULL),
               what);
    }
    if (seconds) {
        float ms = 0;
        CU_TRY(g.drv.EventRecord(g.ev1, g.stream), "cuEventRecord");
        CU_TRY(g.drv.EventSynchronize(g.ev1), "kernel execution (cuEventSynchronize)");
        CU_TRY(g.drv.EventElapsedTime(&ms, g.ev0, g.ev1), "cuEventElapsedTime");
        *seconds = (double)ms * 1e-3;
    } else {
        CU_TRY(g.drv.StreamSynchronize(g.stream), "kernel execution (cuStreamSynchronize)");
    }
    leave();
    return KB_OK;
}

void kbcu_dev_release(uint64_t state) {
    cuda_state *st = (cuda_state *)(uintptr_t)state;
    if (!st) return;
    char msg[KB_MSG];
    if (st->ws && enter(msg) == KB_OK) {
        g.drv.MemFree(st->ws);
        leave();
    }
    free(st);
}

int kbcu_dev_flush(char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    /* a new byte value each time: no chance of a write the memory system can skip */
    CU_TRY(g.drv.MemsetD8Async(g.flush_buf, ++g.flush_value, g.flush_bytes, g.stream), "cuMemsetD8Async (L2 flush)");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (L2 flush)");
    leave();
    return KB_OK;
}
