/* backend_cuda.c - the "cuda" backend: our own kernels (kernels/cuda/NAME.cu), compiled at
 * run time by NVRTC for the device's architecture, launched through the CUDA driver
 * API (loaded with dlopen: kbench runs, and says why, without a driver).
 *
 * Context: our own (cuCtxCreate), never the primary one, and current only inside our
 * calls (push on entry, pop on exit): the cuBLASLt backend uses the runtime API and
 * the primary context in the same process and must never see ours. A sticky fault
 * (illegal address...) poisons only our context: every call then answers
 * KB_ERROR_FATAL until reset() destroys and recreates it.
 *
 * Timing: CUDA events around the launch(es) on our stream. Cold samples: flush_cache
 * writes a buffer of twice the device's L2 size first. */
#include "kernels/cuda/backend_cuda.h"

#include "kernels/cuda/cuda_driver.h"
#include "kernels/cuda/nvrtc_build.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================= the kernel table ===================================== */
/* Numbered versions per op, llm.c dev/cuda style: v1 is the simplest correct kernel,
 * later versions are faster ones; each tunable set is its own named variant. */
const kbcu_kernel_def kbcu_kernel_defs[] = {
    {KB_OP_DEQUANT_Q4K, "v1_b256", "dequant_q4k.cu", "dequant_q4k_v1", "-DBLOCK=256", 75, 0},
    {KB_OP_DEQUANT_Q4K, "v2_b128", "dequant_q4k.cu", "dequant_q4k_v2", "-DBLOCK=128", 75, 0},
    {KB_OP_DEQUANT_Q4K, "v2_b256", "dequant_q4k.cu", "dequant_q4k_v2", "-DBLOCK=256", 75, 0},
    {KB_OP_RMSNORM, "v1_b256", "rmsnorm.cu", "rmsnorm_v1", "-DBLOCK=256", 75, 0},
    {KB_OP_RMSNORM, "v2_b256_i4", "rmsnorm.cu", "rmsnorm_v2", "-DBLOCK=256 -DITEMS=4", 75, 0},
    {KB_OP_RMSNORM, "v2_b128_i8", "rmsnorm.cu", "rmsnorm_v2", "-DBLOCK=128 -DITEMS=8", 75, 0},
    {KB_OP_RMSNORM, "test_fault", "test_fault.cu", "rmsnorm_test_fault", "-DBLOCK=256", 75, 1},
    {KB_OP_RMSNORM, "test_unwritten", "test_fault.cu", "rmsnorm_test_unwritten", "-DBLOCK=256", 75, 1},
    {KB_OP_GEMM_FP8, "gemv_v1_b128", "gemm_fp8.cu", "gemm_fp8_gemv_v1", "-DWARPS=4 -DNB=8", 75, 0},
    /* mma.sync m16n8k16 f16 with fp32 accumulation: sm_80 and later */
    {KB_OP_GEMM_FP8, "gemv_v2_b128_u2", "gemm_fp8.cu", "gemm_fp8_gemv_v2", "-DWARPS=4 -DUNROLL=2", 80, 0},
    {KB_OP_GEMM_FP8, "gemv_v2_b256_u2", "gemm_fp8.cu", "gemm_fp8_gemv_v2", "-DWARPS=8 -DUNROLL=2", 80, 0},
    {KB_OP_GEMM_FP8, "gemv_v2_b256_u4", "gemm_fp8.cu", "gemm_fp8_gemv_v2", "-DWARPS=8 -DUNROLL=4", 80, 0},
    {KB_OP_ROPE_NEOX, "v1_b256", "rope_neox.cu", "rope_neox_v1", "-DBLOCK=256", 75, 0},
    {KB_OP_ROPE_NEOX, "v2_b256", "rope_neox.cu", "rope_neox_v2", "-DBLOCK=256", 75, 0},
    {KB_OP_ROPE_NEOX, "v3_b256_i2", "rope_neox.cu", "rope_neox_v3", "-DBLOCK=256 -DITEMS=2", 75, 0},
    {KB_OP_ATTENTION, "decode_v1", "attention.cu", "attn_decode_v1,attn_decode_combine_v1", "-DWARPS=4 -DKPW=4", 75, 0},
    {KB_OP_ATTENTION, "prefill_v1", "attention.cu", "attn_prefill_v1", "-DWARPS=8 -DKT=32", 75, 0},
    {KB_OP_EMBED, "v1_b256", "embed.cu", "embed_{q4k,q6k,f16,f32}_v1", "-DBLOCK=256", 75, 0},
    {KB_OP_EMBED, "v2_b256", "embed.cu", "embed_q4k_v2", "-DBLOCK=256", 75, 0},
};
const int kbcu_kernel_def_count = (int)(sizeof kbcu_kernel_defs / sizeof kbcu_kernel_defs[0]);

int kbcu_def_specs(const kbcu_kernel_def *def, char specs[][64], int max) {
    if (def->op != KB_OP_GEMM_FP8) {
        if (max < 1) return 0;
        specs[0][0] = 0;
        return 1;
    }
    int n = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            if (n < max) snprintf(specs[n++], 64, "-DA_E5M2=%d -DB_E5M2=%d", a, b);
    return n;
}

void kbcu_case_spec(const kb_case *c, char *out, size_t cap) {
    if (c->op == KB_OP_GEMM_FP8)
        snprintf(out, cap, "-DA_E5M2=%d -DB_E5M2=%d", c->a_type == KB_E5M2, c->b_type == KB_E5M2);
    else if (cap) out[0] = 0;
}

void kbcu_def_options(const kbcu_kernel_def *def, const char *spec, char *out, size_t cap) {
    snprintf(out, cap, "%s%s%s", def->defines, spec && *spec ? " " : "", spec ? spec : "");
}

int kbcu_def_int(const kbcu_kernel_def *def, const char *name, int fallback) {
    char key[40];
    snprintf(key, sizeof key, "-D%s=", name);
    const char *p = strstr(def->defines, key);
    return p ? atoi(p + strlen(key)) : fallback;
}

static int test_variants_enabled(void) {
    const char *e = getenv("KB_TEST_VARIANTS");
    return e && strcmp(e, "1") == 0;
}

const kbcu_kernel_def *kbcu_find_def(kb_op_id op, const char *name, int allow_test) {
    for (int i = 0; i < kbcu_kernel_def_count; i++) {
        const kbcu_kernel_def *d = &kbcu_kernel_defs[i];
        if (d->op == op && strcmp(d->name, name) == 0 && (allow_test || !d->test_only)) return d;
    }
    return NULL;
}

/* ======================= launch planning ====================================== */
static kbcu_arg ptr_arg(int kind) { return (kbcu_arg){kind, 0, 0}; }
static kbcu_arg i32_arg(int64_t v) { return (kbcu_arg){KBCU_ARG_I32, v, 0}; }
static kbcu_arg i64_arg(int64_t v) { return (kbcu_arg){KBCU_ARG_I64, v, 0}; }
static kbcu_arg f32_arg(double v) { return (kbcu_arg){KBCU_ARG_F32, 0, v}; }
static kbcu_arg f64_arg(double v) { return (kbcu_arg){KBCU_ARG_F64, 0, v}; }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static kbcu_launch *add_launch(kbcu_plan *p, const char *kernel, int64_t gx, int64_t gy, int64_t gz, int block) {
    kbcu_launch *l = &p->launch[p->nlaunch++];
    snprintf(l->kernel, sizeof l->kernel, "%s", kernel);
    l->grid[0] = (unsigned)gx;
    l->grid[1] = (unsigned)gy;
    l->grid[2] = (unsigned)gz;
    l->block[0] = (unsigned)block;
    l->block[1] = l->block[2] = 1;
    return l;
}

static void set_args(kbcu_launch *l, int n, const kbcu_arg *a) {
    l->nargs = n;
    memcpy(l->args, a, (size_t)n * sizeof *a);
}

/* CUDA's grid limits: x < 2^31, y and z < 2^16. */
static int grid_ok(const kbcu_plan *p) {
    for (int i = 0; i < p->nlaunch; i++) {
        const kbcu_launch *l = &p->launch[i];
        if (l->grid[0] == 0 || l->grid[1] == 0 || l->grid[2] == 0) return 0;
        if (l->grid[1] > 65535 || l->grid[2] > 65535) return 0;
    }
    return 1;
}

static int fits_i32(int64_t v) { return v >= 0 && v <= 2147483647LL; }

void kbcu_decode_splits(const kb_case *c, int warps, int kpw, int sm_count, int *splits, int *chunk) {
    /* Enough blocks to fill the chip about 4 deep (4 blocks of 4 warps per SM), but
     * each split keeps at least two rounds of its warps' key steps. */
    int64_t step = (int64_t)warps * kpw;
    int64_t want = ceil_div(4LL * (sm_count > 0 ? sm_count : 1), c->heads * c->n);
    int64_t most = ceil_div(c->kv_len, 2 * step);
    int64_t s = want < most ? want : most;
    if (s < 1) s = 1;
    int64_t ch = ceil_div(ceil_div(c->kv_len, s), step) * step; /* whole key steps */
    *chunk = (int)ch;
    *splits = (int)ceil_div(c->kv_len, ch);
}

int kbcu_plan_case(const kb_case *c, const kbcu_kernel_def *def, const kbcu_devinfo *dev, kbcu_plan *p, char *msg) {
    memset(p, 0, sizeof *p);
    kbcu_case_spec(c, p->spec, sizeof p->spec);
    if (dev->sm < def->min_sm)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s needs compute capability %d.%d (device has %d.%d)", def->name,
                       def->min_sm / 10, def->min_sm % 10, dev->sm / 10, dev->sm % 10);
    const int block = kbcu_def_int(def, "BLOCK", 256), warps = kbcu_def_int(def, "WARPS", 4);
    const char *k = def->kernel;

    switch (c->op) {
    case KB_OP_DEQUANT_Q4K: {
        int64_t nvalues = c->m * c->k;
        if (c->k % 256) return kb_fail(msg, KB_NOT_SUPPORTED, "K %% 256 != 0");
        if (strcmp(k, "dequant_q4k_v1") == 0) {
            kbcu_launch *l = add_launch(p, k, ceil_div(nvalues, block), 1, 1, block);
            set_args(l, 3, (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_OUT), i64_arg(nvalues)});
        } else {
            int64_t nblocks = nvalues / 256;
            kbcu_launch *l = add_launch(p, k, ceil_div(nblocks, block / 32), 1, 1, block);
            set_args(l, 3, (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_OUT), i64_arg(nblocks)});
        }
        if (ceil_div(nvalues, block) > 2147483647LL) return kb_fail(msg, KB_NOT_SUPPORTED, "too many values for one grid");
        break;
    }
    case KB_OP_RMSNORM: {
        if (!fits_i32(c->k) || !fits_i32(c->n)) return kb_fail(msg, KB_NOT_SUPPORTED, "N or K beyond int32");
        if (strcmp(k, "rmsnorm_v2") == 0) {
            int items = kbcu_def_int(def, "ITEMS", 4);
            if (c->k % 4 || c->k > (int64_t)block * 4 * items)
                return kb_fail(msg, KB_NOT_SUPPORTED, "%s keeps a row in registers: needs K %% 4 == 0 and K <= %d",
                               def->name, block * 4 * items);
        }
        kbcu_launch *l = add_launch(p, k, c->n, 1, 1, block);
        set_args(l, 5,
                 (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_OUT), i32_arg(c->k),
                              f32_arg(c->eps)});
        break;
    }
    case KB_OP_GEMM_FP8: {
        if (!fits_i32(c->m) || !fits_i32(c->n) || !fits_i32(c->k))
            return kb_fail(msg, KB_NOT_SUPPORTED, "M, N or K beyond int32");
        int out_type = c->out_type == KB_F32 ? 0 : c->out_type == KB_F16 ? 1 : c->out_type == KB_BF16 ? 2 : -1;
        if (out_type < 0) return kb_fail(msg, KB_NOT_SUPPORTED, "output type %s", kb_dtype_name(c->out_type));
        if ((c->a_type != KB_E4M3 && c->a_type != KB_E5M2) || (c->b_type != KB_E4M3 && c->b_type != KB_E5M2))
            return kb_fail(msg, KB_NOT_SUPPORTED, "operand types %s x %s", kb_dtype_name(c->a_type),
                           kb_dtype_name(c->b_type));
        kbcu_launch *l;
        if (strcmp(k, "gemm_fp8_gemv_v1") == 0) {
            int nb = kbcu_def_int(def, "NB", 8);
            l = add_launch(p, k, ceil_div(c->m, warps), ceil_div(c->n, nb), 1, warps * 32);
        } else {
            if (c->k % 16)
                return kb_fail(msg, KB_NOT_SUPPORTED, "%s loads 16-byte row pieces: needs K %% 16 == 0 (K = %lld)",
                               def->name, (long long)c->k);
            l = add_launch(p, k, ceil_div(c->m, 16), ceil_div(c->n, 16), 1, warps * 32);
        }
        set_args(l, 10,
                 (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_IN2),
                              ptr_arg(KBCU_ARG_IN3), ptr_arg(KBCU_ARG_OUT), i32_arg(c->m), i32_arg(c->n), i32_arg(c->k),
                              i32_arg(c->scale_mode), i32_arg(out_type)});
        break;
    }
    case KB_OP_ROPE_NEOX: {
        int64_t d = c->head_dim;
        if (!fits_i32(c->n * c->heads * d)) return kb_fail(msg, KB_NOT_SUPPORTED, "tensor beyond int32 elements");
        kbcu_launch *l;
        if (strcmp(k, "rope_neox_v2") == 0 || strcmp(k, "rope_neox_v3") == 0) {
            if (d % 8) return kb_fail(msg, KB_NOT_SUPPORTED, "%s needs head_dim %% 8 == 0 (float4 halves)", def->name);
            l = add_launch(p, k, c->n, 1, 1, block);
            l->smem = (unsigned)(d * sizeof(float));
        } else {
            l = add_launch(p, k, ceil_div(c->n * c->heads * (d / 2), block), 1, 1, block);
        }
        set_args(l, 7,
                 (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_OUT), i32_arg(c->n),
                              i32_arg(c->heads), i32_arg(d), f64_arg(c->theta)});
        break;
    }
    case KB_OP_ATTENTION: {
        int64_t d = c->head_dim;
        if (d > 256) return kb_fail(msg, KB_NOT_SUPPORTED, "head_dim %lld > 256", (long long)d);
        if (!fits_i32(c->kv_len * c->kv_heads * d) || !fits_i32(c->n * c->heads * d))
            return kb_fail(msg, KB_NOT_SUPPORTED, "tensor beyond int32 elements");
        double scale = 1.0 / sqrt((double)d);
        if (strcmp(def->name, "decode_v1") == 0) {
            if (c->n > 16)
                return kb_fail(msg, KB_NOT_SUPPORTED, "decode_v1 is for n <= 16 queries (n = %lld): prefill_v1 runs it",
                               (long long)c->n);
            int kpw = kbcu_def_int(def, "KPW", 4), splits, chunk;
            kbcu_decode_splits(c, warps, kpw, dev->sm_count, &splits, &chunk);
            int64_t S = c->n * c->heads * splits;
            p->workspace = (size_t)(2 * S + S * d) * sizeof(float);
            kbcu_launch *l = add_launch(p, "attn_decode_v1", splits, c->heads, c->n, warps * 32);
            set_args(l, 11,
                     (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_IN2),
                                  ptr_arg(KBCU_ARG_WS), i32_arg(c->n), i32_arg(c->kv_len), i32_arg(c->heads),
                                  i32_arg(c->kv_heads), i32_arg(d), i32_arg(chunk), f32_arg(scale)});
            l = add_launch(p, "attn_decode_combine_v1", c->heads, c->n, 1, 128);
            set_args(l, 6,
                     (kbcu_arg[]){ptr_arg(KBCU_ARG_WS), ptr_arg(KBCU_ARG_OUT), i32_arg(c->n), i32_arg(c->heads),
                                  i32_arg(d), i32_arg(splits)});
        } else {
            if (d % 4) return kb_fail(msg, KB_NOT_SUPPORTED, "prefill_v1 needs head_dim %% 4 == 0");
            int kt = kbcu_def_int(def, "KT", 32);
            int64_t d4 = d / 4;
            int64_t smem = (2 * kt * (d4 + 1) + warps * d4) * 16;
            if (smem > dev->smem_optin)
                return kb_fail(msg, KB_NOT_SUPPORTED, "needs %lld bytes of shared memory (device: %d)", (long long)smem,
                               dev->smem_optin);
            kbcu_launch *l = add_launch(p, k, ceil_div(c->n, warps), c->heads, 1, warps * 32);
            l->smem = (unsigned)smem;
            set_args(l, 10,
                     (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_IN2),
                                  ptr_arg(KBCU_ARG_OUT), i32_arg(c->n), i32_arg(c->kv_len), i32_arg(c->heads),
                                  i32_arg(c->kv_heads), i32_arg(d), f32_arg(scale)});
        }
        break;
    }
    case KB_OP_EMBED: {
        if (!fits_i32(c->m) || !fits_i32(c->k)) return kb_fail(msg, KB_NOT_SUPPORTED, "M or K beyond int32");
        const char *kern;
        int64_t gx;
        if (strcmp(def->name, "v2_b256") == 0) {
            if (c->a_type != KB_Q4K)
                return kb_fail(msg, KB_NOT_SUPPORTED, "%s is for Q4_K tables (this one is %s): v1 runs it", def->name,
                               kb_dtype_name(c->a_type));
            kern = "embed_q4k_v2";
            gx = ceil_div(c->k / 256, block / 32);
        } else {
            switch (c->a_type) {
            case KB_Q4K: kern = "embed_q4k_v1"; break;
            case KB_Q6K: kern = "embed_q6k_v1"; break;
            case KB_F16: kern = "embed_f16_v1"; break;
            case KB_F32: kern = "embed_f32_v1"; break;
            default: return kb_fail(msg, KB_NOT_SUPPORTED, "table type %s", kb_dtype_name(c->a_type));
            }
            gx = ceil_div(c->k, block);
        }
        if ((c->a_type == KB_Q4K || c->a_type == KB_Q6K) && c->k % 256)
            return kb_fail(msg, KB_NOT_SUPPORTED, "K %% 256 != 0");
        kbcu_launch *l = add_launch(p, kern, gx, c->n, 1, block);
        set_args(l, 5,
                 (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_OUT), i32_arg(c->m),
                              i32_arg(c->k)});
        break;
    }
    default: return kb_fail(msg, KB_NOT_SUPPORTED, "op not implemented");
    }
    if (!grid_ok(p)) return kb_fail(msg, KB_NOT_SUPPORTED, "grid beyond CUDA's limits (y, z <= 65535) or empty");
    return KB_OK;
}

/* ======================= device state ========================================= */
#define MAX_MODULES 64

typedef struct {
    uint64_t key;
    CUmodule mod;
} module_entry;

static struct {
    int probed;       /* probe ran (result in probe_rc / reason) */
    int probe_rc;
    char reason[KB_MSG];
    kbcu_driver drv;
    int live;         /* context and friends exist */
    int poisoned;     /* a sticky fault happened: FATAL until reset() */
    char poison[KB_MSG];
    int generation;   /* bumped by reset(): states from before are dead */
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    CUevent ev0, ev1;
    CUdeviceptr flush_buf;
    size_t flush_bytes;
    unsigned char flush_value;
    kbcu_devinfo info;
    int cc_major, cc_minor, l2_bytes;
    double copy_bw; /* bytes/s, read + written, measured at probe */
    char arch[16];
    char include_dir[1024];
    char include_err[KB_MSG];
    char cache_dir[1024];
    int use_cache;
    char name[160];
    char description[256];
    char driver[160];
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
        return kb_fail(msg, KB_ERROR_FATAL, "%s: %s (context lost; reset needed)", what, cu_text(r));
    }
    return kb_fail(msg, KB_ERROR, "%s: %s", what, cu_text(r));
}

#define CU_TRY(call, what)                       \
    do {                                         \
        CUresult r_ = (call);                    \
        if (r_ != CUDA_SUCCESS) {                \
            int rc_ = cu_fail(msg, r_, what);    \
            leave();                             \
            return rc_;                          \
        }                                        \
    } while (0)

static void leave(void) {
    CUcontext c;
    g.drv.CtxPopCurrent(&c);
}

static int enter(char *msg) {
    if (!g.live) return kb_fail(msg, KB_ERROR, "cuda backend is not initialised (%s)", g.probed ? g.reason : "no probe");
    if (g.poisoned) return kb_fail(msg, KB_ERROR_FATAL, "context lost after %s; reset needed", g.poison);
    CUresult r = g.drv.CtxPushCurrent(g.ctx);
    if (r != CUDA_SUCCESS) return cu_fail(msg, r, "cuCtxPushCurrent");
    return KB_OK;
}

/* The context, stream, events and the L2 flush buffer. cuCtxCreate leaves the new
 * context current: popped again before returning, like every entry point. */
static int make_context(char *msg) {
    CUresult r = g.drv.CtxCreate(&g.ctx, 0, g.dev); /* created current: pop below */
    if (r != CUDA_SUCCESS) return kb_fail(msg, KB_NOT_SUPPORTED, "cuCtxCreate: %s", cu_text(r));
    g.live = 1;
    g.poisoned = 0;
    g.nmods = 0;
    CU_TRY(g.drv.StreamCreate(&g.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    CU_TRY(g.drv.EventCreate(&g.ev0, CU_EVENT_DEFAULT), "cuEventCreate");
    CU_TRY(g.drv.EventCreate(&g.ev1, CU_EVENT_DEFAULT), "cuEventCreate");
    /* nvbench flushes with a buffer of the L2 size; twice that leaves no line of the
     * timed op's data behind whatever the replacement policy. */
    g.flush_bytes = 2 * (size_t)(g.l2_bytes > 0 ? g.l2_bytes : 64 << 20);
    CU_TRY(g.drv.MemAlloc(&g.flush_buf, g.flush_bytes), "cuMemAlloc (L2 flush buffer)");
    leave();
    return KB_OK;
}

static void destroy_context(void) {
    if (!g.live) return;
    /* Destroying the context frees its memory, modules, streams and events, also
     * after a sticky fault (the only way out of one). */
    g.drv.CtxDestroy(g.ctx);
    g.ctx = NULL;
    g.stream = NULL;
    g.ev0 = g.ev1 = NULL;
    g.flush_buf = 0;
    g.nmods = 0;
    g.live = 0;
}

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

/* "580.159.04" from the kernel module's version file, when there is one. */
static void kernel_driver_version(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f) return;
    char line[512];
    if (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "Kernel Module");
        if (p) {
            p += strlen("Kernel Module");
            while (*p == ' ' || *p == '\t') p++;
            size_t n = strcspn(p, " \t\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, p, n);
            out[n] = 0;
        }
    }
    fclose(f);
}

static int do_probe(const kb_options *opt, char *msg) {
    int rc = kbcu_driver_load(&g.drv, NULL, msg);
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
    if (!kbcu_nvrtc_supports(g.info.sm)) {
        int vmaj, vmin;
        kbcu_nvrtc_version(&vmaj, &vmin);
        return kb_fail(msg, KB_NOT_SUPPORTED, "compute capability %d.%d is not a target of NVRTC %d.%d", g.cc_major,
                       g.cc_minor, vmaj, vmin);
    }
    kbcu_arch_name(g.cc_major, g.cc_minor, g.arch, sizeof g.arch);
    if (g.drv.DeviceGetName(g.name, sizeof g.name, g.dev) != CUDA_SUCCESS) snprintf(g.name, sizeof g.name, "CUDA device 0");

    rc = make_context(msg);
    if (rc != KB_OK) return rc == KB_ERROR_FATAL ? KB_NOT_SUPPORTED : rc;

    /* Missing headers fail only the kernels that include them, with this text. */
    if (kbcu_cuda_include(g.include_dir, sizeof g.include_dir, g.include_err) != KB_OK) g.include_dir[0] = 0;
    g.use_cache = kbcu_cache_dir(opt ? opt->cache_dir : NULL, g.cache_dir, sizeof g.cache_dir);
    g.copy_bw = measure_copy_bw();

    int drv_api = 0, nv_maj = 0, nv_min = 0;
    g.drv.DriverGetVersion(&drv_api);
    kbcu_nvrtc_version(&nv_maj, &nv_min);
    char kmod[64];
    kernel_driver_version(kmod, sizeof kmod);
    snprintf(g.driver, sizeof g.driver, "%s%sCUDA %d.%d driver API, NVRTC %d.%d", kmod, kmod[0] ? " (" : "",
             drv_api / 1000, (drv_api % 1000) / 10, nv_maj, nv_min);
    if (kmod[0]) strncat(g.driver, ")", sizeof g.driver - strlen(g.driver) - 1);
    snprintf(g.description, sizeof g.description, "%s (%s, %d SMs, %d MiB L2)", g.name, g.arch, g.info.sm_count,
             g.l2_bytes >> 20);
    return KB_OK;
}

static int cuda_probe(const kb_options *opt, char *msg) {
    if (!g.probed) {
        g.probed = 1;
        g.probe_rc = do_probe(opt, g.reason);
        if (g.probe_rc != KB_OK) {
            destroy_context();
            if (g.drv.lib) kbcu_driver_unload(&g.drv);
        }
    }
    if (g.probe_rc != KB_OK) return kb_fail(msg, g.probe_rc, "%s", g.reason);
    return KB_OK;
}

static const char *cuda_device_name(void) { return g.description[0] ? g.description : "none"; }
static const char *cuda_driver_version(void) { return g.driver[0] ? g.driver : "none"; }

static void cuda_ceilings(const kb_case *c, double *bytes_per_s, double *flops_per_s) {
    *bytes_per_s = g.copy_bw; /* measured at probe; 0 if that failed */
    /* Upper ceiling only: H100 SXM's datasheet dense FP8 tensor rate (REFERENCE.md
     * section 5; an H200 is the same chip). Our GEMV runs f16 mma.sync (dense f16:
     * 989 TFLOP/s) and is memory-bound at N <= 16 anyway. Unknown elsewhere: 0. */
    *flops_per_s = (c->op == KB_OP_GEMM_FP8 && g.info.sm == 90) ? 1979e12 : 0;
}

static int cuda_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    (void)opt;
    (void)msg;
    int n = 0, allow_test = test_variants_enabled();
    char spec[64], opts[128];
    kbcu_case_spec(c, spec, sizeof spec);
    for (int i = 0; i < kbcu_kernel_def_count && n < max; i++) {
        const kbcu_kernel_def *d = &kbcu_kernel_defs[i];
        if (d->op != c->op || (d->test_only && !allow_test)) continue;
        kb_variant *v = &out[n++];
        kb_variant_init(v, d->name);
        kbcu_def_options(d, spec, opts, sizeof opts);
        snprintf(v->detail, sizeof v->detail, "%s %s", d->kernel, opts);
        v->acc_unit_roundoff = 0; /* every kernel accumulates in fp32 */
    }
    return n;
}

/* ======================= memory =============================================== */
static CUdeviceptr dptr(const void *p) { return (CUdeviceptr)(uintptr_t)p; }

static int cuda_alloc(size_t bytes, void **dbuf, char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    CUdeviceptr p = 0;
    CU_TRY(g.drv.MemAlloc(&p, bytes ? bytes : 1), "cuMemAlloc");
    leave();
    *dbuf = (void *)(uintptr_t)p;
    return KB_OK;
}

static void cuda_free(void *dbuf) {
    char msg[KB_MSG];
    if (!dbuf || enter(msg) != KB_OK) return; /* after a fault: the context's reset frees it */
    g.drv.MemFree(dptr(dbuf));
    leave();
}

static int cuda_upload(void *dbuf, const void *host, size_t bytes, char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    CU_TRY(g.drv.MemcpyHtoDAsync(dptr(dbuf), host, bytes, g.stream), "cuMemcpyHtoDAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (upload)");
    leave();
    return KB_OK;
}

static int cuda_download(void *host, const void *dbuf, size_t bytes, char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    CU_TRY(g.drv.MemcpyDtoHAsync(host, dptr(dbuf), bytes, g.stream), "cuMemcpyDtoHAsync");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (download)");
    leave();
    return KB_OK;
}

/* ======================= modules ============================================== */
/* Compile (or take from the disk cache) and load; loaded modules are kept per
 * context, keyed like the cache. Called with the context pushed. */
static int get_module(const kbcu_kernel_def *def, const char *spec, CUmodule *mod, char *msg) {
    const char *src = kbcu_source_text(def->source);
    if (!src) return kb_fail(msg, KB_ERROR, "kernel source %s is not embedded in this build", def->source);
    if (strstr(src, "#include <cuda_") && !g.include_dir[0]) return kb_fail(msg, KB_ERROR, "%s", g.include_err);
    char opts[256];
    kbcu_def_options(def, spec, opts, sizeof opts);
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    uint64_t key = kbcu_cache_key(src, opts, g.arch, vmaj, vmin);
    for (int i = 0; i < g.nmods; i++)
        if (g.mods[i].key == key) {
            *mod = g.mods[i].mod;
            return KB_OK;
        }
    kbcu_binary bin;
    int rc = kbcu_compile(def->source, src, opts, g.arch, g.include_dir, g.use_cache ? g.cache_dir : NULL, &bin, msg);
    if (rc != KB_OK) return rc;
    CUresult r = g.drv.ModuleLoadData(mod, bin.image);
    if (r != CUDA_SUCCESS && bin.from_cache && !kbcu_result_is_sticky(r)) {
        /* a damaged cache file: drop it and compile afresh (which rewrites it) */
        free(bin.image);
        remove(bin.cache_path);
        rc = kbcu_compile(def->source, src, opts, g.arch, g.include_dir, g.use_cache ? g.cache_dir : NULL, &bin, msg);
        if (rc != KB_OK) return rc;
        r = g.drv.ModuleLoadData(mod, bin.image);
    }
    free(bin.image);
    if (r != CUDA_SUCCESS) return cu_fail(msg, r, "cuModuleLoadData");
    if (g.nmods < MAX_MODULES) g.mods[g.nmods++] = (module_entry){key, *mod};
    return KB_OK;
}

/* ======================= prepare / run ======================================== */
typedef union {
    CUdeviceptr p;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
} arg_value;

typedef struct {
    int generation;
    int nlaunch;
    struct {
        CUfunction fn;
        unsigned grid[3], block[3], smem;
        arg_value values[KBCU_MAX_ARGS];
        void *params[KBCU_MAX_ARGS];
    } l[2];
    CUdeviceptr ws;
} cuda_state;

static int cuda_prepare(const kb_case *c, const kb_variant *v, void *const *dev_in, void *dev_out, void **state,
                        char *msg) {
    *state = NULL;
    const kbcu_kernel_def *def = kbcu_find_def(c->op, v->name, test_variants_enabled());
    if (!def) return kb_fail(msg, KB_ERROR, "cuda has no variant %s for %s", v->name, kb_op_name(c->op));
    kbcu_plan plan;
    int rc = kbcu_plan_case(c, def, &g.info, &plan, msg);
    if (rc != KB_OK) return rc;
    rc = enter(msg);
    if (rc != KB_OK) return rc;

    CUmodule mod;
    rc = get_module(def, plan.spec, &mod, msg);
    if (rc != KB_OK) {
        leave();
        return rc;
    }
    cuda_state *st = calloc(1, sizeof *st);
    if (!st) {
        leave();
        return kb_fail(msg, KB_ERROR, "out of host memory");
    }
    st->generation = g.generation;
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
            case KBCU_ARG_IN3: val->p = dptr(dev_in[arg->kind - KBCU_ARG_IN0]); break;
            case KBCU_ARG_OUT: val->p = dptr(dev_out); break;
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
    *state = st;
    return KB_OK;
}

static int cuda_run(void *state, double *seconds, char *msg) {
    cuda_state *st = state;
    if (!st || st->generation != g.generation) return kb_fail(msg, KB_ERROR, "stale state (the context was reset)");
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    if (seconds) CU_TRY(g.drv.EventRecord(g.ev0, g.stream), "cuEventRecord");
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

static void cuda_release(void *state) {
    cuda_state *st = state;
    if (!st) return;
    char msg[KB_MSG];
    /* From an older context (reset since): its memory went with it. */
    if (st->ws && st->generation == g.generation && enter(msg) == KB_OK) {
        g.drv.MemFree(st->ws);
        leave();
    }
    free(st);
}

static int cuda_flush_cache(char *msg) {
    int rc = enter(msg);
    if (rc != KB_OK) return rc;
    /* a new byte value each time: no chance of a write the memory system can skip */
    CU_TRY(g.drv.MemsetD8Async(g.flush_buf, ++g.flush_value, g.flush_bytes, g.stream), "cuMemsetD8Async (L2 flush)");
    CU_TRY(g.drv.StreamSynchronize(g.stream), "cuStreamSynchronize (L2 flush)");
    leave();
    return KB_OK;
}

static int cuda_reset(char *msg) {
    if (!g.probed || g.probe_rc != KB_OK) return kb_fail(msg, KB_ERROR, "cuda backend is not initialised");
    destroy_context();
    g.generation++;
    char why[KB_MSG];
    if (make_context(why) != KB_OK) {
        destroy_context();
        return kb_fail(msg, KB_ERROR_FATAL, "reset: %s", why);
    }
    return KB_OK;
}

const kb_backend kb_backend_cuda = {
    .name = "cuda",
    .description = "our CUDA kernels (kernels/cuda/NAME.cu), NVRTC, driver API",
    .probe = cuda_probe,
    .device_name = cuda_device_name,
    .driver_version = cuda_driver_version,
    .ceilings = cuda_ceilings,
    .variants = cuda_variants,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .prepare = cuda_prepare,
    .run = cuda_run,
    .release = cuda_release,
    .flush_cache = cuda_flush_cache,
    .reset = cuda_reset,
};
