/* cuda_device.c - the device side of kbench's CUDA backends, inside kbcuda_worker
 * (cuda_worker.h): the context, the handle tables of buffers and states, NVRTC
 * modules, launch programs, the stream's enqueue / wait / record, and timing.
 *
 * Context: device 0's primary context (cuDevicePrimaryCtxRetain), made current once;
 * the worker is single-threaded, and the CUDA runtime inside cuBLASLt binds to the
 * same context, so our kernels and cuBLASLt share memory and the stream.
 *
 * Timing (run_timed): an optional cache flush, then kb_block_stream (timing.cu) holds
 * the stream on a host-mapped flag while the host queues the start event, the states
 * and the stop event; then the host sets the flag. The start event fires with
 * everything already queued, so the events time the GPU's work and not the host's
 * enqueue cost (nvbench's blocking kernel). The kernel gives up after 2 s of
 * %globaltimer: then the sample is taken again (3 tries), then the call fails. A state
 * runs once untimed (and waited for) before its first timed sample: a first launch may
 * load code and synchronise the context, which a held stream would turn into a wait
 * for the timeout. */
#include "kernels/cuda/cuda_worker.h"

#include "kernels/cuda/nvrtc_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_TIMEOUT_NS 2000000000ull
#define TIMED_TRIES 3
#define STAGING_BYTES ((size_t)64 << 20)
#define BW_BYTES ((size_t)2 << 30) /* device-to-device copy for the bandwidth ceiling */
#define BW_REPS 5
#define FLOOR_SAMPLES 51 /* empty-kernel samples for the launch floor (median) */
#define TAG_STATE (1ull << 47)

typedef union {
    CUdeviceptr p;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
} arg_value;

struct kbw_prog {
    int n;
    struct prog_launch {
        char kernel[64];
        CUfunction fn;
        unsigned grid[3], block[3], smem;
        int pdl; /* launched with programmatic stream serialization (pdl.cuh) */
        int nargs;
        arg_value *vals;
        void **params;
    } * l;
    CUdeviceptr ws;
};

typedef struct {
    uint64_t key;
    CUmodule mod;
} module_entry;

typedef struct {
    int live, freed, refs;
    uint32_t gen;
    CUdeviceptr ptr;
    uint64_t bytes;
} buf_slot;

typedef struct {
    int live, released, refs, warm;
    uint32_t gen;
    const kbw_state_ops *ops;
    void *impl;
    int *bufs; /* buffer slots this state reads or writes (held until it is destroyed) */
    int nbufs;
} state_slot;

static struct {
    kbcu_driver drv;
    int loaded, live, poisoned;
    char poison[KB_MSG];
    uint32_t epoch;
    int test_variants;
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    CUevent ev0, ev1;
    volatile uint32_t *flag; /* [0] go, [1] the blocking kernel timed out; host-mapped */
    CUdeviceptr flag_dev;
    CUfunction blocker, empty, flush_read;
    CUdeviceptr flush_buf, sink;
    size_t flush_bytes;
    int flush_by_reading;
    int no_blocker; /* the blocking kernel timed out at probe: samples go without it */
    unsigned char flush_value;
    kbcu_devinfo info;
    int l2_bytes;
    char arch[16];
    char include_dir[1024], include_err[KB_MSG], cache_dir[1024];
    int use_cache;
    module_entry *mods;
    int nmods, capmods;
    buf_slot *bufs;
    int nbufs, capbufs;
    state_slot *states;
    int nstates, capstates;
    void *staging;
    size_t staging_bytes;
    int staging_pinned;
} g;

/* ---- errors ------------------------------------------------------------------------ */
int kbw_cu_fail(char *msg, CUresult r, const char *what) {
    char text[KB_MSG];
    kbcu_result_text(g.loaded ? &g.drv : NULL, r, text, sizeof text);
    if (kbcu_result_is_sticky(r)) {
        if (!g.poisoned) snprintf(g.poison, sizeof g.poison, "%.100s: %.140s", what, text);
        g.poisoned = 1;
        return kb_fail(msg, KB_ERROR_FATAL, "%s: %s (context lost)", what, text);
    }
    return kb_fail(msg, KB_ERROR, "%s: %s", what, text);
}

int kbw_ready(char *msg) {
    if (g.poisoned) return kb_fail(msg, KB_ERROR_FATAL, "context lost after %s", g.poison);
    if (!g.live) return kb_fail(msg, KB_ERROR, "cuda device is not initialised (probe first)");
    return KB_OK;
}

int kbw_lost_underneath(char *msg, const char *what) {
    const CUresult r = g.drv.StreamQuery(g.stream);
    if (r == CUDA_SUCCESS || r == CUDA_ERROR_NOT_READY || !kbcu_result_is_sticky(r)) return KB_OK;
    return kbw_cu_fail(msg, r, what);
}

const kbcu_driver *kbw_driver(void) { return &g.drv; }

/* A release call's status: nothing to report to anyone, but a sticky error there
 * still means the context is lost (FATAL from the next request on). */
static void released(CUresult r, const char *what) {
    char msg[KB_MSG];
    if (r != CUDA_SUCCESS) kbw_cu_fail(msg, r, what);
}
CUstream kbw_stream(void) { return g.stream; }

#define CU_TRY(call, what)                                                                                             \
    do {                                                                                                               \
        const CUresult r_ = (call);                                                                                    \
        if (r_ != CUDA_SUCCESS) return kbw_cu_fail(msg, r_, what);                                                     \
    } while (0)

/* ---- modules ------------------------------------------------------------------------ */
/* Compile (or take from the disk cache) and load; loaded modules are kept for the
 * worker's life, keyed like the cache. */
static int load_module(const char *source, const char *opts, CUmodule *mod, char *msg) {
    const char *src = kbcu_source_text(source);
    if (!src) return kb_fail(msg, KB_ERROR, "kernel source %s is not embedded in this build", source);
    if (strstr(src, "#include <cuda_") && !g.include_dir[0]) return kb_fail(msg, KB_ERROR, "%s", g.include_err);
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    const uint64_t key = kbcu_cache_key(src, opts, g.arch, vmaj, vmin);
    for (int i = 0; i < g.nmods; i++)
        if (g.mods[i].key == key) {
            *mod = g.mods[i].mod;
            return KB_OK;
        }
    if (g.nmods == g.capmods) {
        const int cap = g.capmods ? 2 * g.capmods : 32;
        module_entry *m = realloc(g.mods, (size_t)cap * sizeof *m);
        if (!m) return kb_fail(msg, KB_ERROR, "out of host memory (module table)");
        g.mods = m;
        g.capmods = cap;
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
    if (r != CUDA_SUCCESS) return kbw_cu_fail(msg, r, "cuModuleLoadData");
    g.mods[g.nmods++] = (module_entry){key, *mod};
    return KB_OK;
}

static int get_function(const char *source, const char *opts, const char *name, CUfunction *fn, char *msg) {
    CUmodule mod;
    int rc = load_module(source, opts, &mod, msg);
    if (rc != KB_OK) return rc;
    const CUresult r = g.drv.ModuleGetFunction(fn, mod, name);
    if (r != CUDA_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s in %s)", name, source);
        return kbw_cu_fail(msg, r, what);
    }
    return KB_OK;
}

/* ---- launch programs ---------------------------------------------------------------- */
void kbw_prog_free(kbw_prog *pr) {
    if (!pr) return;
    for (int i = 0; i < pr->n; i++) {
        free(pr->l[i].vals);
        free(pr->l[i].params);
    }
    free(pr->l);
    if (pr->ws && g.live) released(g.drv.MemFree(pr->ws), "cuMemFree (workspace)");
    free(pr);
}

CUdeviceptr kbw_prog_workspace(const kbw_prog *pr) { return pr->ws; }

/* What this device can run of the compiled function: its threads a block (the
 * registers a tuned BLOCK or WARPS needs can make a block too big to launch) and its
 * static plus dynamic shared memory. KB_NOT_SUPPORTED with the numbers when the launch
 * exceeds them: a row that says why, not a launch error. *static_out: the function's
 * static shared memory. */
static int fits_function(CUfunction fn, const kbcu_launch *pl, int *static_out, char *msg) {
    int max_threads = 0, static_smem = 0;
    CU_TRY(g.drv.FuncGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn),
           "cuFuncGetAttribute(MAX_THREADS_PER_BLOCK)");
    CU_TRY(g.drv.FuncGetAttribute(&static_smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, fn),
           "cuFuncGetAttribute(SHARED_SIZE_BYTES)");
    const int64_t threads = pl->block[0] * pl->block[1] * pl->block[2];
    if (threads > max_threads)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "%s: a block of %lld threads, the compiled kernel takes at most %d on this device "
                       "(its registers)",
                       pl->kernel, (long long)threads, max_threads);
    if (static_smem + pl->smem > g.info.smem_optin)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "%s: %d bytes of static and %lld of dynamic shared memory, the device has %d a block",
                       pl->kernel, static_smem, (long long)pl->smem, g.info.smem_optin);
    *static_out = static_smem;
    return KB_OK;
}

int kbw_prog_build(const kbcu_plan *p, const CUdeviceptr *tensors, int ntensors, kbw_prog **out, char *msg) {
    *out = NULL;
    kbw_prog *pr = calloc(1, sizeof *pr);
    if (!pr || !(pr->l = calloc((size_t)(p->nlaunch > 0 ? p->nlaunch : 1), sizeof *pr->l))) {
        free(pr);
        return kb_fail(msg, KB_ERROR, "out of host memory (launch program)");
    }
    int rc = KB_OK;
    if (p->workspace) {
        const CUresult r = g.drv.MemAlloc(&pr->ws, (size_t)p->workspace);
        if (r != CUDA_SUCCESS) {
            pr->ws = 0;
            rc = kbw_cu_fail(msg, r, "cuMemAlloc (workspace)");
            goto fail;
        }
        /* stream-ordered before every launch of the program */
        const CUresult z = p->zero_workspace ? g.drv.MemsetD8Async(pr->ws, 0, (size_t)p->workspace, g.stream)
                                             : CUDA_SUCCESS;
        if (z != CUDA_SUCCESS) {
            rc = kbw_cu_fail(msg, z, "cuMemsetD8Async (zero the workspace)");
            goto fail;
        }
        /* the plan's constant table (pageable: the call has taken the bytes when it returns) */
        const CUresult t = p->ws_init_bytes ? g.drv.MemcpyHtoDAsync(pr->ws, p->ws_init, (size_t)p->ws_init_bytes, g.stream)
                                            : CUDA_SUCCESS;
        if (t != CUDA_SUCCESS) {
            rc = kbw_cu_fail(msg, t, "cuMemcpyHtoDAsync (the workspace's table)");
            goto fail;
        }
    }
    for (int i = 0; i < p->nlaunch; i++) {
        const kbcu_launch *pl = &p->launch[i];
        struct prog_launch *l = &pr->l[i];
        pr->n = i + 1; /* kbw_prog_free frees what this launch has so far */
        snprintf(l->kernel, sizeof l->kernel, "%s", pl->kernel);
        /* CUDA's limits (kbcu_plan_case checked the ops' plans; this covers every plan) */
        if (pl->grid[0] < 1 || pl->grid[0] > 2147483647LL || pl->grid[1] < 1 || pl->grid[1] > 65535 ||
            pl->grid[2] < 1 || pl->grid[2] > 65535 || pl->block[0] < 1 || pl->block[1] < 1 || pl->block[2] < 1 ||
            pl->block[0] * pl->block[1] * pl->block[2] > 1024 || pl->smem < 0 || pl->smem > g.info.smem_optin) {
            rc = kb_fail(msg, KB_NOT_SUPPORTED,
                         "%s: grid %lldx%lldx%lld of %lld threads, %lld bytes of shared memory: "
                         "beyond this device's limits",
                         pl->kernel, (long long)pl->grid[0], (long long)pl->grid[1], (long long)pl->grid[2],
                         (long long)(pl->block[0] * pl->block[1] * pl->block[2]), (long long)pl->smem);
            goto fail;
        }
        if ((rc = get_function(pl->source, pl->opts, pl->kernel, &l->fn, msg)) != KB_OK) goto fail;
        int static_smem = 0;
        if ((rc = fits_function(l->fn, pl, &static_smem, msg)) != KB_OK) goto fail;
        /* A block may use 48 KiB of shared memory, static and dynamic together, unless the
         * function opts in to more (CUDA C++ Programming Guide, "Shared Memory" of compute
         * capability 8.x/9.x): 48 KiB of dynamic beside 2 KiB of static fails to launch
         * (CUDA_ERROR_INVALID_VALUE) without it, as gemv_v5's first H200 run showed. */
        if (static_smem + pl->smem > 48 * 1024) {
            const CUresult r =
                g.drv.FuncSetAttribute(l->fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)pl->smem);
            if (r != CUDA_SUCCESS) {
                rc = kbw_cu_fail(msg, r, "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
                goto fail;
            }
        }
        for (int d = 0; d < 3; d++) {
            l->grid[d] = (unsigned)pl->grid[d];
            l->block[d] = (unsigned)pl->block[d];
        }
        l->smem = (unsigned)pl->smem;
        l->pdl = pl->pdl;
        l->nargs = pl->nargs;
        l->vals = calloc((size_t)(pl->nargs > 0 ? pl->nargs : 1), sizeof *l->vals);
        l->params = calloc((size_t)(pl->nargs > 0 ? pl->nargs : 1), sizeof *l->params);
        if (!l->vals || !l->params) {
            rc = kb_fail(msg, KB_ERROR, "out of host memory (launch arguments)");
            goto fail;
        }
        for (int a = 0; a < pl->nargs; a++) {
            const kbcu_arg *arg = &pl->args[a];
            arg_value *v = &l->vals[a];
            switch (arg->kind) {
            case KBCU_ARG_TENSOR:
                if (arg->tensor < 0 || arg->tensor >= ntensors) {
                    rc = kb_fail(msg, KB_ERROR, "%s: argument %d names tensor %d of %d", pl->kernel, a, arg->tensor,
                                 ntensors);
                    goto fail;
                }
                v->p = tensors[arg->tensor] + (CUdeviceptr)arg->i;
                break;
            case KBCU_ARG_WS: v->p = pr->ws + (CUdeviceptr)arg->i; break;
            case KBCU_ARG_I32: v->i32 = (int32_t)arg->i; break;
            case KBCU_ARG_I64: v->i64 = arg->i; break;
            case KBCU_ARG_F32: v->f32 = (float)arg->f; break;
            case KBCU_ARG_F64: v->f64 = arg->f; break;
            default: rc = kb_fail(msg, KB_ERROR, "%s: argument %d of unknown kind", pl->kernel, a); goto fail;
            }
            l->params[a] = v;
        }
    }
    *out = pr;
    return KB_OK;
fail:
    kbw_prog_free(pr);
    return rc;
}

int kbw_prog_enqueue(const kbw_prog *pr, char *msg) {
    for (int i = 0; i < pr->n; i++) {
        const struct prog_launch *l = &pr->l[i];
        CUresult r;
        if (l->pdl) {
            /* may start before the stream's previous kernel ends (CUDA Programming Guide,
             * "Programmatic Dependent Launch"); in a stream capture this becomes a
             * programmatic edge of the graph */
            CUlaunchAttribute attr;
            memset(&attr, 0, sizeof attr);
            attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
            attr.value.programmaticStreamSerializationAllowed = 1;
            CUlaunchConfig cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.gridDimX = l->grid[0], cfg.gridDimY = l->grid[1], cfg.gridDimZ = l->grid[2];
            cfg.blockDimX = l->block[0], cfg.blockDimY = l->block[1], cfg.blockDimZ = l->block[2];
            cfg.sharedMemBytes = l->smem;
            cfg.hStream = g.stream;
            cfg.attrs = &attr;
            cfg.numAttrs = 1;
            r = g.drv.LaunchKernelEx(&cfg, l->fn, l->nargs ? l->params : NULL, NULL);
        } else {
            r = g.drv.LaunchKernel(l->fn, l->grid[0], l->grid[1], l->grid[2], l->block[0], l->block[1], l->block[2],
                                   l->smem, g.stream, l->nargs ? l->params : NULL, NULL);
        }
        if (r != CUDA_SUCCESS) {
            char what[96];
            snprintf(what, sizeof what, "%s(%s)", l->pdl ? "cuLaunchKernelEx, PDL" : "cuLaunchKernel", l->kernel);
            return kbw_cu_fail(msg, r, what);
        }
    }
    return KB_OK;
}

static int prog_enqueue_impl(void *impl, char *msg) { return kbw_prog_enqueue(impl, msg); }
static void prog_destroy_impl(void *impl) { kbw_prog_free(impl); }
static const kbw_state_ops prog_ops = {prog_enqueue_impl, prog_destroy_impl};

/* ---- handle tables ------------------------------------------------------------------ */
static uint64_t make_handle(int state, int idx, uint32_t gen) {
    return (uint64_t)(g.epoch & 0xffffu) << 48 | (state ? TAG_STATE : 0) | (uint64_t)(gen & 0x7fffu) << 32 |
           (uint64_t)(uint32_t)(idx + 1);
}

/* The slot a handle names in a table of n slots (-1 if it cannot be one), and its generation. */
static int handle_slot(uint64_t h, int state, int n, uint32_t *gen) {
    if ((h >> 48) != (g.epoch & 0xffffu) || ((h & TAG_STATE) != 0) != (state != 0)) return -1;
    const uint32_t low = (uint32_t)h;
    if (low == 0 || low > (uint32_t)n) return -1;
    *gen = (uint32_t)(h >> 32) & 0x7fffu;
    return (int)low - 1;
}

static int buf_lookup(uint64_t h, char *msg) {
    uint32_t gen;
    const int i = handle_slot(h, 0, g.nbufs, &gen);
    if (i < 0 || !g.bufs[i].live || g.bufs[i].freed || (g.bufs[i].gen & 0x7fffu) != gen)
        return kb_fail(msg, KB_ERROR, "unknown buffer handle 0x%llx", (unsigned long long)h), -1;
    return i;
}

static int state_lookup(uint64_t h, char *msg) {
    uint32_t gen;
    const int i = handle_slot(h, 1, g.nstates, &gen);
    if (i < 0 || !g.states[i].live || g.states[i].released || (g.states[i].gen & 0x7fffu) != gen)
        return kb_fail(msg, KB_ERROR, "unknown state handle 0x%llx", (unsigned long long)h), -1;
    return i;
}

static void buf_unref(int i) {
    buf_slot *b = &g.bufs[i];
    if (--b->refs > 0 || !b->freed) return;
    if (g.live) released(g.drv.MemFree(b->ptr), "cuMemFree");
    b->live = 0;
}

static void state_destroy(int i);

static void state_unref(int i) {
    state_slot *s = &g.states[i];
    if (--s->refs > 0 || !s->released) return;
    state_destroy(i);
}

static void state_destroy(int i) {
    /* copy out first: destroying a recorded sequence drops its members (same table) */
    state_slot s = g.states[i];
    g.states[i].live = 0;
    g.states[i].impl = NULL;
    g.states[i].bufs = NULL;
    s.ops->destroy(s.impl);
    for (int b = 0; b < s.nbufs; b++) buf_unref(s.bufs[b]);
    free(s.bufs);
}

/* A free slot of a table (a dead one, its generation bumped, or a new one). */
static int new_slot(void **table, int *n, int *cap, size_t size, char *msg) {
    for (int i = 0; i < *n; i++) {
        int *live = (int *)((char *)*table + (size_t)i * size); /* `live` is each slot's first member */
        if (!*live) return i;
    }
    if (*n == *cap) {
        const int c = *cap ? 2 * *cap : 64;
        void *t = realloc(*table, (size_t)c * size);
        if (!t) return kb_fail(msg, KB_ERROR, "out of host memory (handle table)"), -1;
        *table = t;
        *cap = c;
    }
    memset((char *)*table + (size_t)*n * size, 0, size);
    return (*n)++;
}

static int state_add(const kbw_state_ops *ops, void *impl, const int *bufs, int nbufs, uint64_t *handle, char *msg) {
    int *copy = NULL;
    if (nbufs > 0 && !(copy = malloc((size_t)nbufs * sizeof *copy))) {
        ops->destroy(impl);
        return kb_fail(msg, KB_ERROR, "out of host memory (state)");
    }
    const int i = new_slot((void **)&g.states, &g.nstates, &g.capstates, sizeof(state_slot), msg);
    if (i < 0) {
        free(copy);
        ops->destroy(impl);
        return KB_ERROR;
    }
    state_slot *s = &g.states[i];
    const uint32_t gen = s->gen + 1;
    memset(s, 0, sizeof *s);
    s->live = 1;
    s->gen = gen;
    s->ops = ops;
    s->impl = impl;
    s->bufs = copy;
    s->nbufs = nbufs;
    for (int b = 0; b < nbufs; b++) {
        copy[b] = bufs[b];
        g.bufs[bufs[b]].refs++;
    }
    *handle = make_handle(1, i, gen);
    return KB_OK;
}

/* ---- memory ------------------------------------------------------------------------- */
int kbw_alloc(uint64_t bytes, uint64_t *handle, char *msg) {
    *handle = 0;
    int rc = kbw_ready(msg);
    if (rc != KB_OK) return rc;
    if (bytes > ((uint64_t)1 << 48))
        return kb_fail(msg, KB_ERROR, "cannot allocate %llu bytes", (unsigned long long)bytes);
    CUdeviceptr p = 0;
    CU_TRY(g.drv.MemAlloc(&p, (size_t)(bytes ? bytes : 1)), "cuMemAlloc");
    const int i = new_slot((void **)&g.bufs, &g.nbufs, &g.capbufs, sizeof(buf_slot), msg);
    if (i < 0) {
        released(g.drv.MemFree(p), "cuMemFree");
        return KB_ERROR;
    }
    buf_slot *b = &g.bufs[i];
    const uint32_t gen = b->gen + 1;
    memset(b, 0, sizeof *b);
    b->live = 1;
    b->gen = gen;
    b->ptr = p;
    b->bytes = bytes;
    *handle = make_handle(0, i, gen);
    return KB_OK;
}

int kbw_free(uint64_t handle, char *msg) {
    if (g.poisoned || !g.live) return KB_OK; /* the memory goes with the process */
    const int i = buf_lookup(handle, msg);
    if (i < 0) return KB_ERROR;
    g.bufs[i].freed = 1; /* states that use it keep it until they are destroyed */
    g.bufs[i].refs++;
    buf_unref(i);
    return KB_OK;
}

static int view_resolve(kb_view v, CUdeviceptr *p, int *slot, char *msg) {
    const int i = buf_lookup(v.buf, msg);
    if (i < 0) return KB_ERROR;
    const buf_slot *b = &g.bufs[i];
    if (v.offset > b->bytes || v.bytes > b->bytes - v.offset)
        return kb_fail(msg, KB_ERROR, "view of %llu bytes at offset %llu lies outside its %llu-byte buffer",
                       (unsigned long long)v.bytes, (unsigned long long)v.offset, (unsigned long long)b->bytes);
    *p = b->ptr + (CUdeviceptr)v.offset;
    if (slot) *slot = i;
    return KB_OK;
}

int kbw_view(kb_view v, CUdeviceptr *p, char *msg) {
    int rc = kbw_ready(msg);
    return rc != KB_OK ? rc : view_resolve(v, p, NULL, msg);
}

void *kbw_staging(size_t *bytes) {
    *bytes = g.staging_bytes;
    return g.staging;
}

int kbw_copy_in(CUdeviceptr dst, const void *host, size_t n, char *msg) {
    CU_TRY(g.drv.MemcpyHtoDAsync(dst, host, n, g.stream), "cuMemcpyHtoDAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (upload)");
    return KB_OK;
}

int kbw_copy_out(void *host, CUdeviceptr src, size_t n, char *msg) {
    CU_TRY(g.drv.MemcpyDtoHAsync(host, src, n, g.stream), "cuMemcpyDtoHAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (download)");
    return KB_OK;
}

int kbw_copy_device(CUdeviceptr dst, CUdeviceptr src, size_t n, char *msg) {
    CU_TRY(g.drv.MemcpyDtoDAsync(dst, src, n, g.stream), "cuMemcpyDtoDAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (device copy)");
    return KB_OK;
}

/* ---- prepare / release ---------------------------------------------------------------- */
int kbw_prepare(int front, const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out,
                uint64_t *state, char *msg) {
    *state = 0;
    int rc = kbw_ready(msg);
    if (rc != KB_OK) return rc;
    const int n = n_in + n_out;
    if (n_in < 0 || n_out < 0 || n > KB_MAX_ARGS)
        return kb_fail(msg, KB_ERROR, "%d inputs and %d outputs", n_in, n_out);
    CUdeviceptr ptrs[KB_MAX_ARGS];
    int slots[KB_MAX_ARGS];
    for (int i = 0; i < n; i++) {
        char why[KB_MSG];
        if (view_resolve(args[i].view, &ptrs[i], &slots[i], why) != KB_OK)
            return kb_fail(msg, KB_ERROR, "tensor %d: %s", i, why);
    }
    void *impl = NULL;
    const kbw_state_ops *ops = NULL;
    if (front == KBCU_FRONT_CUDA) {
        /* the variant from its name alone: a tuned one ("v2_b256_i4[BLOCK=128]") is
         * rebuilt here exactly as the front described it (kbcu_resolve_variant) */
        kbcu_tuned tuned;
        const kbcu_variant *def;
        if ((rc = kbcu_resolve_variant(c->op, v->name, g.test_variants, &tuned, &def, msg)) != KB_OK) return rc;
        const kbcu_job j = {c, def, args, n_in, n_out, g.info};
        kbcu_plan p;
        if ((rc = kbcu_plan_case(&j, &p, msg)) != KB_OK) return rc;
        kbw_prog *pr = NULL;
        rc = kbw_prog_build(&p, ptrs, n, &pr, msg);
        kbcu_plan_free(&p);
        if (rc != KB_OK) return rc;
        impl = pr;
        ops = &prog_ops;
    } else if (front == KBCU_FRONT_CUBLASLT) {
        if ((rc = kbw_lt_prepare(c, v, args, ptrs, n_in, n_out, &impl, &ops, msg)) != KB_OK) return rc;
    } else {
        return kb_fail(msg, KB_ERROR, "unknown backend %d", front);
    }
    return state_add(ops, impl, slots, n, state, msg);
}

int kbw_release(uint64_t state, char *msg) {
    if (g.poisoned || !g.live) return KB_OK;
    const int i = state_lookup(state, msg);
    if (i < 0) return KB_ERROR;
    g.states[i].released = 1; /* a recorded sequence that holds it keeps it alive */
    g.states[i].refs++;
    state_unref(i);
    return KB_OK;
}

/* ---- recorded sequences (CUDA graphs) --------------------------------------------------- */
typedef struct {
    CUgraphExec exec;
    int *members; /* state slots, held until this is destroyed */
    int n;
} graph_impl;

static int graph_enqueue(void *impl, char *msg) {
    const graph_impl *gr = impl;
    CU_TRY(g.drv.GraphLaunch(gr->exec, g.stream), "cuGraphLaunch");
    return KB_OK;
}

static void graph_destroy(void *impl) {
    graph_impl *gr = impl;
    if (g.live && gr->exec) released(g.drv.GraphExecDestroy(gr->exec), "cuGraphExecDestroy");
    for (int i = 0; i < gr->n; i++) state_unref(gr->members[i]);
    free(gr->members);
    free(gr);
}

static const kbw_state_ops graph_ops = {graph_enqueue, graph_destroy};

/* ---- the stream --------------------------------------------------------------------------- */
static int seq_idx[KBCU_MAX_SEQ];

static int resolve_seq(const uint64_t *h, int n, char *msg) {
    if (n < 0 || n > KBCU_MAX_SEQ)
        return kb_fail(msg, KB_ERROR, "%d states in one sequence (at most %d)", n, KBCU_MAX_SEQ);
    for (int i = 0; i < n; i++) {
        char why[KB_MSG];
        if ((seq_idx[i] = state_lookup(h[i], why)) < 0) return kb_fail(msg, KB_ERROR, "state %d: %s", i, why);
    }
    return KB_OK;
}

static int enqueue_slot(state_slot *s, char *msg) { return s->ops->enqueue(s->impl, msg); }

int kbw_enqueue(const uint64_t *states, int n, char *msg) {
    int rc = kbw_ready(msg);
    if (rc == KB_OK) rc = resolve_seq(states, n, msg);
    for (int i = 0; rc == KB_OK && i < n; i++) rc = enqueue_slot(&g.states[seq_idx[i]], msg);
    return rc;
}

int kbw_wait(char *msg) {
    int rc = kbw_ready(msg);
    if (rc != KB_OK) return rc;
    CU_TRY(g.drv.StreamSynchronize(g.stream), "the queued work (cuStreamSynchronize)");
    return KB_OK;
}

/* Run every state not run yet once, and wait: first launches may load code. */
static int warm_up(state_slot *const *s, int n, char *msg) {
    int cold = 0, rc;
    for (int i = 0; i < n; i++)
        if (!s[i]->warm) {
            if ((rc = enqueue_slot(s[i], msg)) != KB_OK) return rc;
            cold = 1;
        }
    if (!cold) return KB_OK;
    CU_TRY(g.drv.StreamSynchronize(g.stream), "warm-up run (cuStreamSynchronize)");
    for (int i = 0; i < n; i++) s[i]->warm = 1;
    return KB_OK;
}

static int flush_caches(char *msg) {
    if (g.flush_by_reading) {
        long long n16 = (long long)(g.flush_bytes / 16);
        unsigned int never = 1u;
        void *args[] = {&g.flush_buf, &n16, &never, &g.sink};
        CU_TRY(g.drv.LaunchKernel(g.flush_read, (unsigned)(g.info.sm_count > 0 ? 8 * g.info.sm_count : 1024), 1, 1, 256,
                                  1, 1, 0, g.stream, args, NULL),
               "cuLaunchKernel(kb_flush_read)");
    } else {
        /* a new byte value each time: no write the memory system could skip */
        CU_TRY(g.drv.MemsetD8Async(g.flush_buf, ++g.flush_value, g.flush_bytes, g.stream),
               "cuMemsetD8Async (L2 flush)");
    }
    return KB_OK;
}

static int run_timed_slots(state_slot *const *s, int n, int flush, double *seconds, char *msg) {
    int rc = warm_up(s, n, msg);
    if (rc != KB_OK) return rc;
    unsigned long long timeout = BLOCK_TIMEOUT_NS;
    for (int attempt = 0; attempt < TIMED_TRIES; attempt++) {
        if (flush && (rc = flush_caches(msg)) != KB_OK) return rc;
        g.flag[0] = 0;
        g.flag[1] = 0;
        CUdeviceptr go = g.flag_dev, late = g.flag_dev + sizeof(uint32_t);
        void *bargs[] = {&go, &late, &timeout};
        if (!g.no_blocker)
            CU_TRY(g.drv.LaunchKernel(g.blocker, 1, 1, 1, 32, 1, 1, 0, g.stream, bargs, NULL),
                   "cuLaunchKernel(kb_block_stream)");
        CUresult r = g.drv.EventRecord(g.ev0, g.stream);
        if (r != CUDA_SUCCESS) rc = kbw_cu_fail(msg, r, "cuEventRecord (start)");
        for (int i = 0; rc == KB_OK && i < n; i++) rc = enqueue_slot(s[i], msg);
        if (rc == KB_OK && (r = g.drv.EventRecord(g.ev1, g.stream)) != CUDA_SUCCESS)
            rc = kbw_cu_fail(msg, r, "cuEventRecord (stop)");
        __atomic_store_n(&g.flag[0], 1u, __ATOMIC_SEQ_CST); /* let the GPU go, whatever happened */
        if (rc != KB_OK) {
            r = g.drv.StreamSynchronize(g.stream);
            if (r != CUDA_SUCCESS && kbcu_result_is_sticky(r)) return kbw_cu_fail(msg, r, "the timed work");
            return rc;
        }
        CU_TRY(g.drv.EventSynchronize(g.ev1), "the timed work (cuEventSynchronize)");
        if (__atomic_load_n(&g.flag[1], __ATOMIC_SEQ_CST)) continue; /* the host was too slow: not a sample */
        float ms = 0;
        CU_TRY(g.drv.EventElapsedTime(&ms, g.ev0, g.ev1), "cuEventElapsedTime");
        *seconds = (double)ms * 1e-3;
        return KB_OK;
    }
    return kb_fail(msg, KB_ERROR,
                   "the blocking kernel gave up %d times (%.0f s each) before the host had queued the "
                   "timed work: no sample",
                   TIMED_TRIES, BLOCK_TIMEOUT_NS * 1e-9);
}

static state_slot *seq_slots[KBCU_MAX_SEQ];

int kbw_run_timed(const uint64_t *states, int n, int flush, double *seconds, char *msg) {
    *seconds = 0;
    int rc = kbw_ready(msg);
    if (rc == KB_OK) rc = resolve_seq(states, n, msg);
    if (rc != KB_OK) return rc;
    if (n < 1) return kb_fail(msg, KB_ERROR, "nothing to time");
    for (int i = 0; i < n; i++) seq_slots[i] = &g.states[seq_idx[i]];
    return run_timed_slots(seq_slots, n, flush, seconds, msg);
}

int kbw_record(const uint64_t *states, int n, uint64_t *seq, char *msg) {
    *seq = 0;
    int rc = kbw_ready(msg);
    if (rc == KB_OK) rc = resolve_seq(states, n, msg);
    if (rc != KB_OK) return rc;
    if (n < 1) return kb_fail(msg, KB_ERROR, "nothing to record");
    for (int i = 0; i < n; i++) {
        seq_slots[i] = &g.states[seq_idx[i]];
        if (seq_slots[i]->ops == &graph_ops)
            return kb_fail(msg, KB_NOT_SUPPORTED, "state %d is a recorded sequence: record its states instead", i);
    }
    if ((rc = warm_up(seq_slots, n, msg)) != KB_OK) return rc;

    char why[KB_MSG] = "";
    CUresult r = g.drv.StreamBeginCapture(g.stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    if (r != CUDA_SUCCESS) {
        rc = kbw_cu_fail(why, r, "cuStreamBeginCapture");
        return rc == KB_ERROR_FATAL ? kb_fail(msg, rc, "%s", why) : kb_fail(msg, KB_NOT_SUPPORTED, "%s", why);
    }
    for (int i = 0; rc == KB_OK && i < n; i++) rc = enqueue_slot(seq_slots[i], why);
    CUgraph graph = NULL;
    r = g.drv.StreamEndCapture(g.stream, &graph); /* always: the stream leaves capture mode */
    if (rc == KB_OK && r != CUDA_SUCCESS) rc = kbw_cu_fail(why, r, "cuStreamEndCapture");
    if (rc == KB_OK && !graph) rc = kb_fail(why, KB_ERROR, "cuStreamEndCapture returned no graph");
    if (rc != KB_OK) {
        if (graph) released(g.drv.GraphDestroy(graph), "cuGraphDestroy");
        if (rc == KB_ERROR_FATAL || kbw_lost_underneath(msg, "stream capture") != KB_OK)
            return kb_fail(msg, KB_ERROR_FATAL, "%s", g.poisoned ? g.poison : why);
        return kb_fail(msg, KB_NOT_SUPPORTED, "cannot record as a CUDA graph: %s", why);
    }
    CUgraphExec exec = NULL;
    r = g.drv.GraphInstantiateWithFlags(&exec, graph, 0);
    released(g.drv.GraphDestroy(graph), "cuGraphDestroy");
    if (r != CUDA_SUCCESS) {
        rc = kbw_cu_fail(why, r, "cuGraphInstantiateWithFlags");
        return rc == KB_ERROR_FATAL ? kb_fail(msg, rc, "%s", why) : kb_fail(msg, KB_NOT_SUPPORTED, "%s", why);
    }
    graph_impl *gr = calloc(1, sizeof *gr);
    if (!gr || !(gr->members = malloc((size_t)n * sizeof *gr->members))) {
        free(gr);
        released(g.drv.GraphExecDestroy(exec), "cuGraphExecDestroy");
        return kb_fail(msg, KB_ERROR, "out of host memory (recorded sequence)");
    }
    gr->exec = exec;
    gr->n = n;
    for (int i = 0; i < n; i++) {
        gr->members[i] = seq_idx[i];
        g.states[seq_idx[i]].refs++;
    }
    /* the first launch uploads the graph: once now, untimed */
    r = g.drv.GraphLaunch(exec, g.stream);
    if (r == CUDA_SUCCESS) r = g.drv.StreamSynchronize(g.stream);
    if (r != CUDA_SUCCESS) {
        graph_destroy(gr);
        return kbw_cu_fail(msg, r, "first replay of the recorded sequence");
    }
    if ((rc = state_add(&graph_ops, gr, NULL, 0, seq, msg)) != KB_OK) return rc;
    uint32_t gen;
    g.states[handle_slot(*seq, 1, g.nstates, &gen)].warm = 1;
    return KB_OK;
}

/* ---- probe -------------------------------------------------------------------------------- */
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

/* Device-to-device copy bandwidth, bytes read + written per second: best of BW_REPS
 * copies of BW_BYTES (halved while the memory is not there), timed with events. */
static double measure_copy_bw(size_t *copied) {
    double best = 0;
    *copied = 0;
    for (size_t bytes = BW_BYTES; bytes >= ((size_t)64 << 20) && best == 0; bytes /= 2) {
        CUdeviceptr a = 0, b = 0;
        if (g.drv.MemAlloc(&a, bytes) != CUDA_SUCCESS) continue;
        if (g.drv.MemAlloc(&b, bytes) != CUDA_SUCCESS) {
            released(g.drv.MemFree(a), "cuMemFree");
            continue;
        }
        int ok = g.drv.MemsetD8Async(a, 1, bytes, g.stream) == CUDA_SUCCESS &&
                 g.drv.MemcpyDtoDAsync(b, a, bytes, g.stream) == CUDA_SUCCESS; /* warm-up */
        for (int i = 0; ok && i < BW_REPS; i++) {
            float ms = 0;
            ok = g.drv.EventRecord(g.ev0, g.stream) == CUDA_SUCCESS &&
                 g.drv.MemcpyDtoDAsync(b, a, bytes, g.stream) == CUDA_SUCCESS &&
                 g.drv.EventRecord(g.ev1, g.stream) == CUDA_SUCCESS && g.drv.EventSynchronize(g.ev1) == CUDA_SUCCESS &&
                 g.drv.EventElapsedTime(&ms, g.ev0, g.ev1) == CUDA_SUCCESS;
            if (ok && ms > 0 && 2.0 * (double)bytes / (ms * 1e-3) > best) {
                best = 2.0 * (double)bytes / (ms * 1e-3);
                *copied = bytes;
            }
        }
        released(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (bandwidth)");
        released(g.drv.MemFree(a), "cuMemFree");
        released(g.drv.MemFree(b), "cuMemFree");
    }
    return best;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The launch floor: an empty kernel as a state, timed like a case (hot); the median.
 * seq_s: the same kernel KB_LAUNCH_SEQ times back to back, per launch (rotate mode's
 * floor: launches overlap the previous kernel's tail, events are paid once a sample). */
static int measure_launch_floor(double *floor_s, double *seq_s, char *msg) {
    *floor_s = 0;
    *seq_s = 0;
    kbcu_plan p;
    memset(&p, 0, sizeof p);
    kbcu_add_launch_module(&p, "timing.cu", "", "kb_empty", 1, 1, 1, 32);
    kbw_prog *pr = NULL;
    int rc = p.oom ? kb_fail(msg, KB_ERROR, "out of host memory") : kbw_prog_build(&p, NULL, 0, &pr, msg);
    kbcu_plan_free(&p);
    if (rc != KB_OK) return rc;
    state_slot tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.live = 1;
    tmp.ops = &prog_ops;
    tmp.impl = pr;
    state_slot *one[1] = {&tmp};
    double s[FLOOR_SAMPLES];
    for (int i = 0; rc == KB_OK && i < FLOOR_SAMPLES; i++) rc = run_timed_slots(one, 1, 0, &s[i], msg);
    state_slot *seq[KB_LAUNCH_SEQ];
    double q[KB_LAUNCH_SEQ_SAMPLES];
    for (int i = 0; i < KB_LAUNCH_SEQ; i++) seq[i] = &tmp;
    for (int i = 0; rc == KB_OK && i < KB_LAUNCH_SEQ_SAMPLES; i++) rc = run_timed_slots(seq, KB_LAUNCH_SEQ, 0, &q[i], msg);
    kbw_prog_free(pr);
    if (rc != KB_OK) return rc;
    qsort(s, FLOOR_SAMPLES, sizeof s[0], cmp_double);
    qsort(q, KB_LAUNCH_SEQ_SAMPLES, sizeof q[0], cmp_double);
    *floor_s = s[FLOOR_SAMPLES / 2];
    *seq_s = q[KB_LAUNCH_SEQ_SAMPLES / 2] / KB_LAUNCH_SEQ;
    return KB_OK;
}

/* Stream, events, the blocking flag, the support kernels, the flush buffer, staging. */
static int make_resources(char *msg) {
    CU_TRY(g.drv.StreamCreate(&g.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    CU_TRY(g.drv.EventCreate(&g.ev0, CU_EVENT_DEFAULT), "cuEventCreate");
    CU_TRY(g.drv.EventCreate(&g.ev1, CU_EVENT_DEFAULT), "cuEventCreate");
    void *host = NULL;
    CU_TRY(g.drv.MemHostAlloc(&host, 4096, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP),
           "cuMemHostAlloc (the blocking kernel's flag)");
    g.flag = host;
    g.flag[0] = g.flag[1] = 0;
    CU_TRY(g.drv.MemHostGetDevicePointer(&g.flag_dev, host, 0), "cuMemHostGetDevicePointer");
    int rc;
    if ((rc = get_function("timing.cu", "", "kb_block_stream", &g.blocker, msg)) != KB_OK ||
        (rc = get_function("timing.cu", "", "kb_empty", &g.empty, msg)) != KB_OK ||
        (rc = get_function("timing.cu", "", "kb_flush_read", &g.flush_read, msg)) != KB_OK)
        return rc;
    /* nvbench flushes with a buffer of the L2 size; twice that leaves no line of the
     * timed work's data behind whatever the replacement policy */
    g.flush_bytes = 2 * (size_t)(g.l2_bytes > 0 ? g.l2_bytes : 64 << 20);
    CU_TRY(g.drv.MemAlloc(&g.flush_buf, g.flush_bytes), "cuMemAlloc (L2 flush buffer)");
    CU_TRY(g.drv.MemAlloc(&g.sink, 256), "cuMemAlloc (flush sink)");
    CU_TRY(g.drv.MemsetD8Async(g.flush_buf, 0, g.flush_bytes, g.stream), "cuMemsetD8Async (flush buffer)");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize");
    if (g.drv.MemHostAlloc(&g.staging, STAGING_BYTES, CU_MEMHOSTALLOC_PORTABLE) == CUDA_SUCCESS) {
        g.staging_pinned = 1;
    } else {
        g.staging = malloc(STAGING_BYTES);
        if (!g.staging) return kb_fail(msg, KB_ERROR, "out of host memory (staging buffer)");
    }
    g.staging_bytes = STAGING_BYTES;
    return KB_OK;
}

int kbw_probe(const kbcu_probe_req *req, kbcu_probe_rep *rep, char *msg) {
    memset(rep, 0, sizeof *rep);
    if (g.loaded) return kb_fail(msg, KB_ERROR, "cuda device probed twice");
    g.epoch = req->epoch;
    g.test_variants = req->test_variants != 0;
    const char *flush = getenv("KB_CUDA_FLUSH");
    if (flush && *flush && strcmp(flush, "write") != 0 && strcmp(flush, "read") != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "KB_CUDA_FLUSH=%s: the cold-sample flush is `read` (default) or `write`",
                       flush);
    g.flush_by_reading = !(flush && strcmp(flush, "write") == 0); /* read: the H200 measurement in NOTES.md */
    int rc = kbcu_driver_load(&g.drv, req->has_libcuda ? req->libcuda : NULL, msg);
    if (rc != KB_OK) return rc;
    g.loaded = 1;
    char text[KB_MSG];
    CUresult r = g.drv.Init(0);
    if (r == CUDA_ERROR_STUB_LIBRARY)
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA driver (libcuda.so.1 is the toolkit's stub: %s)",
                       kbcu_result_text(&g.drv, r, text, sizeof text));
    if (r != CUDA_SUCCESS)
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (cuInit: %s)",
                       kbcu_result_text(&g.drv, r, text, sizeof text));
    int count = 0;
    r = g.drv.DeviceGetCount(&count);
    if (r != CUDA_SUCCESS)
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (cuDeviceGetCount: %s)",
                       kbcu_result_text(&g.drv, r, text, sizeof text));
    if (count < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA device (the driver sees none)");
    if ((r = g.drv.DeviceGet(&g.dev, 0)) != CUDA_SUCCESS)
        return kb_fail(msg, KB_NOT_SUPPORTED, "cuDeviceGet(0): %s", kbcu_result_text(&g.drv, r, text, sizeof text));
    int v = 0, cc_major = 0, cc_minor = 0;
#define ATTR(dst, a)                                                                                                   \
    do {                                                                                                               \
        if ((r = g.drv.DeviceGetAttribute(&v, a, g.dev)) != CUDA_SUCCESS)                                              \
            return kb_fail(msg, KB_NOT_SUPPORTED, #a ": %s", kbcu_result_text(&g.drv, r, text, sizeof text));          \
        dst = v;                                                                                                       \
    } while (0)
    ATTR(cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    ATTR(cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    ATTR(g.info.sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    ATTR(g.l2_bytes, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
    ATTR(g.info.smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
#undef ATTR
    g.info.sm = cc_major * 10 + cc_minor;
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    if (!kbcu_nvrtc_supports(g.info.sm))
        return kb_fail(msg, KB_NOT_SUPPORTED, "compute capability %d.%d is not a target of NVRTC %d.%d", cc_major,
                       cc_minor, vmaj, vmin);
    kbcu_arch_name(cc_major, cc_minor, g.arch, sizeof g.arch);
    char name[160];
    if (g.drv.DeviceGetName(name, sizeof name, g.dev) != CUDA_SUCCESS) snprintf(name, sizeof name, "CUDA device 0");
    /* missing headers fail only the kernels that include them, with this text */
    if (kbcu_cuda_include(g.include_dir, sizeof g.include_dir, g.include_err) != KB_OK) g.include_dir[0] = 0;
    g.use_cache = kbcu_cache_dir(req->has_cache_dir ? req->cache_dir : NULL, g.cache_dir, sizeof g.cache_dir);

    if ((r = g.drv.DevicePrimaryCtxRetain(&g.ctx, g.dev)) != CUDA_SUCCESS)
        return kb_fail(msg, KB_NOT_SUPPORTED, "cuDevicePrimaryCtxRetain: %s",
                       kbcu_result_text(&g.drv, r, text, sizeof text));
    if ((r = g.drv.CtxSetCurrent(g.ctx)) != CUDA_SUCCESS)
        return kb_fail(msg, KB_NOT_SUPPORTED, "cuCtxSetCurrent: %s", kbcu_result_text(&g.drv, r, text, sizeof text));
    g.live = 1;
    if ((rc = make_resources(msg)) != KB_OK) {
        g.live = 0;
        return rc == KB_ERROR_FATAL ? KB_ERROR_FATAL : KB_NOT_SUPPORTED;
    }
    rep->lt_rc = kbw_lt_init(g.info.sm, rep->lt_reason);
    /* cuBLASLt's runtime binds to the primary context; make sure it is ours and current */
    if ((r = g.drv.CtxSetCurrent(g.ctx)) != CUDA_SUCCESS) {
        g.live = 0;
        return kb_fail(msg, KB_NOT_SUPPORTED, "cuCtxSetCurrent: %s", kbcu_result_text(&g.drv, r, text, sizeof text));
    }

    kb_device_info *d = &rep->info;
    snprintf(d->key, sizeof d->key, "cuda:0");
    snprintf(d->name, sizeof d->name, "%s (%s, %d SMs, %d MiB L2)", name, g.arch, g.info.sm_count, g.l2_bytes >> 20);
    int drv_api = 0;
    if (g.drv.DriverGetVersion(&drv_api) != CUDA_SUCCESS) drv_api = 0; /* the line then says 0.0 */
    char kmod[64];
    kernel_driver_version(kmod, sizeof kmod);
    snprintf(d->driver, sizeof d->driver, "%s%sCUDA %d.%d driver API, NVRTC %d.%d; cold flush: %s of 2x L2", kmod,
             kmod[0] ? ", " : "", drv_api / 1000, (drv_api % 1000) / 10, vmaj, vmin,
             g.flush_by_reading ? "reads (KB_CUDA_FLUSH=read)" : "memset (KB_CUDA_FLUSH=write)");
    d->cache_bytes = (uint64_t)(g.l2_bytes > 0 ? g.l2_bytes : 0);
    size_t total = 0, free_b = 0;
    if (g.drv.DeviceTotalMem(&total, g.dev) == CUDA_SUCCESS) d->mem_bytes = total;
    if (req->measure) {
        size_t copied = 0;
        d->bw = measure_copy_bw(&copied);
        if ((rc = kbw_ready(msg)) != KB_OK) return rc; /* the context did not survive */
        if (d->bw > 0)
            snprintf(d->bw_source, sizeof d->bw_source,
                     "device-to-device copy of %zu MiB, best of %d, bytes read + written", copied >> 20, BW_REPS);
        else snprintf(d->bw_source, sizeof d->bw_source, "not measured (the copy failed)");
        double floor_s = 0, seq_s = 0;
        char why[KB_MSG];
        rc = measure_launch_floor(&floor_s, &seq_s, why);
        if (rc == KB_ERROR && strstr(why, "blocking kernel")) {
            /* The GPU never saw the host's flag in time: rather than lose 6 s on every
             * sample of the run, time without the hold, and say so in every row's device. */
            g.no_blocker = 1;
            rc = measure_launch_floor(&floor_s, &seq_s, why);
        }
        if (rc == KB_OK) {
            d->launch_floor_s = floor_s;
            d->launch_seq_s = seq_s;
            if (g.no_blocker)
                snprintf(d->launch_source, sizeof d->launch_source,
                         "empty kernel, median of %d; NO blocking kernel (it timed out): host enqueue included",
                         FLOOR_SAMPLES);
            else
                snprintf(d->launch_source, sizeof d->launch_source,
                         "empty kernel, median of %d samples timed as cases are", FLOOR_SAMPLES);
        } else {
            if ((rc = kbw_ready(msg)) != KB_OK) return rc; /* the context did not survive */
            snprintf(d->launch_source, sizeof d->launch_source, "not measured: %.80s", why);
        }
    }
    if (g.drv.MemGetInfo(&free_b, &total) == CUDA_SUCCESS) d->mem_free = free_b;
    rep->dev = g.info;
    return KB_OK;
}
