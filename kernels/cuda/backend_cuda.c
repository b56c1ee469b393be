/* backend_cuda.c - the "cuda" backend: our own kernels (kernels/cuda/NAME.cu), compiled at
 * run time by NVRTC for the device's architecture, launched through the CUDA driver
 * API (loaded with dlopen: kbench runs, and says why, without a driver).
 *
 * This file holds what needs no device: the variant table, the launch planning
 * (pure arithmetic, unit-tested) and the kb_backend itself, which forwards every
 * device operation to the worker process kbcuda_worker (cuda_worker.c, cuda_ipc.h,
 * cuda_device.c). A kernel fault kills only the worker's CUDA state; reset() starts a
 * new worker and the next cases run as if nothing happened.
 *
 * Timing (in the worker): CUDA events around the launch(es) on our stream, behind a
 * spin kernel so the host's launch latency stays out. Cold samples: flush_cache writes
 * a buffer of twice the device's L2 size first. */
#include "kernels/cuda/backend_cuda.h"

#include "kernels/cuda/cuda_ipc.h"
#include "kernels/cuda/nvrtc_build.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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
    /* one n8 tile: half the token registers, so all 7 chunks of a warp (K = 3584) in flight */
    {KB_OP_GEMM_FP8, "gemv_v2_b256_u7_t1", "gemm_fp8.cu", "gemm_fp8_gemv_v2", "-DWARPS=8 -DUNROLL=7 -DNT=1", 80, 0},
    {KB_OP_ROPE_NEOX, "v1_b256", "rope_neox.cu", "rope_neox_v1", "-DBLOCK=256", 75, 0},
    {KB_OP_ROPE_NEOX, "v2_b256", "rope_neox.cu", "rope_neox_v2", "-DBLOCK=256", 75, 0},
    {KB_OP_ROPE_NEOX, "v3_b256_i2", "rope_neox.cu", "rope_neox_v3", "-DBLOCK=256 -DITEMS=2", 75, 0},
    {KB_OP_ATTENTION, "decode_v1", "attention.cu", "attn_decode_v1,attn_decode_combine_v1", "-DWARPS=4 -DKPW=4", 75, 0},
    {KB_OP_ATTENTION, "decode_v2", "attention.cu", "attn_decode_v2,attn_decode_combine_v2", "-DKT=32", 75, 0},
    {KB_OP_ATTENTION, "prefill_v1", "attention.cu", "attn_prefill_v1", "-DWARPS=8 -DKT=32", 75, 0},
    {KB_OP_EMBED, "v1_b256", "embed.cu", "embed_{q4k,q6k,f16,f32}_v1", "-DBLOCK=256", 75, 0},
    {KB_OP_EMBED, "v2_b256", "embed.cu", "embed_q4k_v2", "-DBLOCK=256", 75, 0},
};
const int kbcu_kernel_def_count = (int)(sizeof kbcu_kernel_defs / sizeof kbcu_kernel_defs[0]);

/* No op compiles case-dependent options today (gemm_fp8 takes its fp8 formats as a
 * run-time argument: one module per variant instead of four, and a 4x shorter NVRTC
 * test); the mechanism stays for the kernel that needs it. */
int kbcu_def_specs(const kbcu_kernel_def *def, char specs[][64], int max) {
    (void)def;
    if (max < 1) return 0;
    specs[0][0] = 0;
    return 1;
}

void kbcu_case_spec(const kb_case *c, char *out, size_t cap) {
    (void)c;
    if (cap) out[0] = 0;
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

void kbcu_decode_splits_v2(const kb_case *c, int kt, int sm_count, int *splits, int *chunk) {
    /* One KT-key tile per block where the chip can hold all the blocks at once (about
     * 8 blocks of 256 threads per SM); longer contexts get several tiles a block. */
    int64_t tiles = ceil_div(c->kv_len, kt);
    int64_t cap = 8LL * (sm_count > 0 ? sm_count : 1) / (c->kv_heads * c->n);
    int64_t s = tiles < cap ? tiles : cap;
    if (s < 1) s = 1;
    int64_t ch = ceil_div(ceil_div(c->kv_len, s), kt) * kt;
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
            int nt = kbcu_def_int(def, "NT", 2);
            l = add_launch(p, k, ceil_div(c->m, 16), ceil_div(c->n, 8 * nt), 1, warps * 32);
        }
        int fmt = (c->a_type == KB_E5M2) | (c->b_type == KB_E5M2) << 1;
        set_args(l, 11,
                 (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_IN2),
                              ptr_arg(KBCU_ARG_IN3), ptr_arg(KBCU_ARG_OUT), i32_arg(c->m), i32_arg(c->n), i32_arg(c->k),
                              i32_arg(c->scale_mode), i32_arg(out_type), i32_arg(fmt)});
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
        } else if (strcmp(def->name, "decode_v2") == 0) {
            if (c->n > 16)
                return kb_fail(msg, KB_NOT_SUPPORTED, "decode_v2 is for n <= 16 queries (n = %lld): prefill_v1 runs it",
                               (long long)c->n);
            if (d % 4) return kb_fail(msg, KB_NOT_SUPPORTED, "decode_v2 needs head_dim %% 4 == 0");
            if (c->heads / c->kv_heads > 8)
                return kb_fail(msg, KB_NOT_SUPPORTED, "decode_v2 takes a GQA group of <= 8 query heads (%lld)",
                               (long long)(c->heads / c->kv_heads));
            int kt = kbcu_def_int(def, "KT", 32), splits, chunk;
            kbcu_decode_splits_v2(c, kt, dev->sm_count, &splits, &chunk);
            int64_t d4 = d / 4, S = c->n * c->heads * splits;
            int64_t smem = (2 * kt * (d4 + 1) + 8 * d4) * 16;
            if (smem > dev->smem_optin)
                return kb_fail(msg, KB_NOT_SUPPORTED, "needs %lld bytes of shared memory (device: %d)", (long long)smem,
                               dev->smem_optin);
            p->workspace = (size_t)(S * d + 2 * S) * sizeof(float);
            kbcu_launch *l = add_launch(p, "attn_decode_v2", splits, c->kv_heads, c->n, 256);
            l->smem = (unsigned)smem;
            set_args(l, 11,
                     (kbcu_arg[]){ptr_arg(KBCU_ARG_IN0), ptr_arg(KBCU_ARG_IN1), ptr_arg(KBCU_ARG_IN2),
                                  ptr_arg(KBCU_ARG_WS), i32_arg(c->n), i32_arg(c->kv_len), i32_arg(c->heads),
                                  i32_arg(c->kv_heads), i32_arg(d), i32_arg(chunk), f32_arg(scale)});
            l = add_launch(p, "attn_decode_combine_v2", c->heads, c->n, 1, 128);
            l->smem = (unsigned)((splits + 5) * sizeof(float)); /* weights, 4 partials, broadcast */
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


/* ======================= the backend: a proxy to the worker process ============ */
/* Every device operation runs in kbcuda_worker (cuda_worker.c, cuda_ipc.h): a kernel
 * fault poisons the CUDA state of its whole process (run 1 on the H100: after
 * CUDA_ERROR_ILLEGAL_ADDRESS even a fresh cuCtxCreate failed with it), so reset()
 * replaces the worker. kbench itself never initialises CUDA for this backend. */
extern char **environ;

static struct {
    int probed, probe_rc;
    char reason[KB_MSG];
    int has_cache_dir;
    char cache_dir[1024];
    pid_t pid;
    int fd; /* our end of the socket pair, -1 without a worker */
    char lost[KB_MSG];
    kbcu_device_info info;
} P = {.fd = -1};

static int timeout_ms(void) {
    /* per reply; a probe compiles and measures, a kernel may be slow: be generous */
    const char *e = getenv("KB_CUDA_TIMEOUT_S");
    int s = e && atoi(e) > 0 ? atoi(e) : 300;
    return s * 1000;
}

static void kill_worker(void) {
    if (P.fd >= 0) close(P.fd);
    P.fd = -1;
    if (P.pid > 0) {
        kill(P.pid, SIGKILL);
        waitpid(P.pid, NULL, 0);
    }
    P.pid = 0;
}

/* The worker: $KB_CUDA_WORKER, else next to the running executable, else where the
 * build put it. */
static int find_worker(char *out, size_t cap, char *msg) {
    const char *e = getenv("KB_CUDA_WORKER");
    if (e && *e) {
        snprintf(out, cap, "%s", e);
        if (access(out, X_OK) == 0) return KB_OK;
        return kb_fail(msg, KB_NOT_SUPPORTED, "KB_CUDA_WORKER=%s is not an executable", e);
    }
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char beside[2100] = "";
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(beside, sizeof beside, "%s/kbcuda_worker", exe);
        if (access(beside, X_OK) == 0) {
            snprintf(out, cap, "%s", beside);
            return KB_OK;
        }
    }
#ifdef KB_CUDA_WORKER_BUILD
    if (access(KB_CUDA_WORKER_BUILD, X_OK) == 0) {
        snprintf(out, cap, "%s", KB_CUDA_WORKER_BUILD);
        return KB_OK;
    }
#endif
    return kb_fail(msg, KB_NOT_SUPPORTED, "cuda worker program kbcuda_worker not found (looked at %s; set KB_CUDA_WORKER)",
                   beside[0] ? beside : "/proc/self/exe's directory");
}

static int spawn_worker(char *msg) {
    char path[2200];
    int rc = find_worker(path, sizeof path, msg);
    if (rc != KB_OK) return rc;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return kb_fail(msg, KB_ERROR, "socketpair: %s", strerror(errno));
    fcntl(sv[0], F_SETFD, FD_CLOEXEC); /* later children must not hold our end */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, sv[0]);
    if (sv[1] != 3) {
        posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
        posix_spawn_file_actions_addclose(&fa, sv[1]);
    }
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0); /* a backend prints nothing */
    char *argv[] = {path, "3", NULL};
    pid_t pid;
    int err = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (err) {
        close(sv[0]);
        return kb_fail(msg, KB_NOT_SUPPORTED, "starting %s: %s", path, strerror(err));
    }
    P.pid = pid;
    P.fd = sv[0];
    P.lost[0] = 0;
    return KB_OK;
}

/* Why the worker stopped answering, for the row. */
static void describe_loss(const char *what) {
    int status = 0;
    char why[96] = "did not answer in time (killed)";
    if (P.pid > 0 && waitpid(P.pid, &status, WNOHANG) == P.pid) {
        if (WIFSIGNALED(status)) snprintf(why, sizeof why, "died of signal %d", WTERMSIG(status));
        else snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
        P.pid = 0;
    }
    snprintf(P.lost, sizeof P.lost, "cuda worker %s during %s", why, what);
    kill_worker();
}

/* One request and its reply. out/out_len receive a reply payload of exactly that size.
 * An unusable worker answers KB_ERROR_FATAL: the harness then calls reset(). */
static int call(const char *what, kbcu_req *req, const void *payload, kbcu_rep *rep, void *out, size_t out_len,
                char *msg) {
    if (P.fd < 0)
        return kb_fail(msg, KB_ERROR_FATAL, "%s", P.lost[0] ? P.lost : "cuda worker not running (probe or reset first)");
    int t = timeout_ms();
    if (kbcu_send_all(P.fd, req, sizeof *req) || (req->len && kbcu_send_all(P.fd, payload, (size_t)req->len)) ||
        kbcu_recv_all(P.fd, rep, sizeof *rep, t)) {
        describe_loss(what);
        return kb_fail(msg, KB_ERROR_FATAL, "%s", P.lost);
    }
    if (rep->len) {
        if (!out || rep->len != out_len || kbcu_recv_all(P.fd, out, out_len, t)) {
            describe_loss(what);
            return kb_fail(msg, KB_ERROR_FATAL, "%s", P.lost);
        }
    }
    rep->msg[KB_MSG - 1] = 0;
    if (rep->rc != KB_OK) snprintf(msg, KB_MSG, "%s", rep->msg);
    return rep->rc;
}

static int start_worker(char *msg) {
    /* Say "no driver" without starting anything when libcuda cannot even load. */
    const char *lib = getenv("KB_CUDA_LIBCUDA"); /* tests: the toolkit's stub */
    void *h = dlopen(lib && *lib ? lib : "libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA driver (%s)", e ? e : "libcuda.so.1 not found");
    }
    dlclose(h);
    int rc = spawn_worker(msg);
    if (rc != KB_OK) return rc;
    kbcu_probe_req pr;
    memset(&pr, 0, sizeof pr);
    pr.has_cache_dir = P.has_cache_dir;
    snprintf(pr.cache_dir, sizeof pr.cache_dir, "%s", P.cache_dir);
    pr.has_libcuda = lib && *lib;
    snprintf(pr.libcuda, sizeof pr.libcuda, "%s", lib && *lib ? lib : "");
    kbcu_req req = {KBCU_REQ_PROBE, 0, 0, 0, sizeof pr};
    kbcu_rep rep;
    rc = call("probe", &req, &pr, &rep, &P.info, sizeof P.info, msg);
    if (rc != KB_OK) {
        kill_worker();
        return rc == KB_ERROR_FATAL ? KB_NOT_SUPPORTED : rc;
    }
    return KB_OK;
}

static int cuda_probe(const kb_options *opt, char *msg) {
    if (!P.probed) {
        P.probed = 1;
        P.has_cache_dir = opt && opt->cache_dir;
        if (P.has_cache_dir) snprintf(P.cache_dir, sizeof P.cache_dir, "%s", opt->cache_dir);
        P.probe_rc = start_worker(P.reason);
    }
    if (P.probe_rc != KB_OK) return kb_fail(msg, P.probe_rc, "%s", P.reason);
    return KB_OK;
}

static const char *cuda_device_name(void) { return P.info.device[0] ? P.info.device : "none"; }
static const char *cuda_driver_version(void) { return P.info.driver[0] ? P.info.driver : "none"; }

static void cuda_ceilings(const kb_case *c, double *bytes_per_s, double *flops_per_s) {
    *bytes_per_s = P.info.copy_bw; /* measured by the worker at start; 0 if that failed */
    /* Upper ceiling only: H100 SXM's datasheet dense FP8 tensor rate (REFERENCE.md
     * section 5; an H200 is the same chip). Our GEMV runs f16 mma.sync (dense f16:
     * 989 TFLOP/s) and is memory-bound at N <= 16 anyway. Unknown elsewhere: 0. */
    *flops_per_s = (c->op == KB_OP_GEMM_FP8 && P.info.sm == 90) ? 1979e12 : 0;
}

static int cuda_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    (void)opt;
    (void)msg;
    const char *e = getenv("KB_TEST_VARIANTS");
    int n = 0, allow_test = e && strcmp(e, "1") == 0;
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

static int cuda_alloc(size_t bytes, void **dbuf, char *msg) {
    kbcu_req req = {KBCU_REQ_ALLOC, 0, bytes, 0, 0};
    kbcu_rep rep;
    int rc = call("alloc", &req, NULL, &rep, NULL, 0, msg);
    *dbuf = rc == KB_OK ? (void *)(uintptr_t)rep.a : NULL;
    return rc;
}

static void cuda_free(void *dbuf) {
    char msg[KB_MSG];
    if (!dbuf || P.fd < 0) return; /* after a reset the old worker took its memory along */
    kbcu_req req = {KBCU_REQ_FREE, 0, (uint64_t)(uintptr_t)dbuf, 0, 0};
    kbcu_rep rep;
    call("free", &req, NULL, &rep, NULL, 0, msg);
}

static int cuda_upload(void *dbuf, const void *host, size_t bytes, char *msg) {
    kbcu_req req = {KBCU_REQ_UPLOAD, 0, (uint64_t)(uintptr_t)dbuf, 0, bytes};
    kbcu_rep rep;
    return call("upload", &req, host, &rep, NULL, 0, msg);
}

static int cuda_download(void *host, const void *dbuf, size_t bytes, char *msg) {
    kbcu_req req = {KBCU_REQ_DOWNLOAD, 0, (uint64_t)(uintptr_t)dbuf, bytes, 0};
    kbcu_rep rep;
    return call("download", &req, NULL, &rep, host, bytes, msg);
}

static int cuda_prepare(const kb_case *c, const kb_variant *v, void *const *dev_in, void *dev_out, void **state,
                        char *msg) {
    *state = NULL;
    kbcu_prepare_req pr;
    memset(&pr, 0, sizeof pr);
    pr.c = *c;
    snprintf(pr.variant, sizeof pr.variant, "%s", v->name);
    for (int i = 0; i < KB_MAX_INPUTS; i++) pr.dev_in[i] = (uint64_t)(uintptr_t)dev_in[i];
    pr.dev_out = (uint64_t)(uintptr_t)dev_out;
    kbcu_req req = {KBCU_REQ_PREPARE, 0, 0, 0, sizeof pr};
    kbcu_rep rep;
    int rc = call("prepare", &req, &pr, &rep, NULL, 0, msg);
    if (rc == KB_OK) *state = (void *)(uintptr_t)rep.a;
    return rc;
}

static int cuda_run(void *state, double *seconds, char *msg) {
    kbcu_req req = {KBCU_REQ_RUN, 0, (uint64_t)(uintptr_t)state, seconds != NULL, 0};
    kbcu_rep rep;
    int rc = call("run", &req, NULL, &rep, NULL, 0, msg);
    if (rc == KB_OK && seconds) *seconds = rep.seconds;
    return rc;
}

static void cuda_release(void *state) {
    char msg[KB_MSG];
    if (!state || P.fd < 0) return;
    kbcu_req req = {KBCU_REQ_RELEASE, 0, (uint64_t)(uintptr_t)state, 0, 0};
    kbcu_rep rep;
    call("release", &req, NULL, &rep, NULL, 0, msg);
}

static int cuda_flush_cache(char *msg) {
    kbcu_req req = {KBCU_REQ_FLUSH, 0, 0, 0, 0};
    kbcu_rep rep;
    return call("flush_cache", &req, NULL, &rep, NULL, 0, msg);
}

static int cuda_reset(char *msg) {
    if (!P.probed || P.probe_rc != KB_OK) return kb_fail(msg, KB_ERROR, "cuda backend is not initialised");
    kill_worker(); /* its context, memory and modules go with it */
    char why[KB_MSG];
    if (start_worker(why) != KB_OK) return kb_fail(msg, KB_ERROR_FATAL, "reset: %s", why);
    return KB_OK;
}

const kb_backend kb_backend_cuda = {
    .name = "cuda",
    .description = "our CUDA kernels (kernels/cuda/NAME.cu), NVRTC, driver API, in a worker process",
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
