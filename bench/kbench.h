/* kbench.h - the types every part of kbench shares: cases, tensors, backends.
 *
 * An op knows its math (ref/, bench/ops.c); a backend knows its device and its
 * kernels (kernels/<backend>/); the harness (bench/harness.c) owns every loop,
 * the poisoning, the metrics and the timing. This header is the contract
 * between them.  */
#ifndef KBENCH_H
#define KBENCH_H

#include <stddef.h>
#include <stdint.h>

/* ---- element types ------------------------------------------------------ */
typedef enum {
    KB_F32 = 0,
    KB_F16,
    KB_BF16,
    KB_E4M3, /* OCP FP8 e4m3 "FN": bias 7, max 448, no inf */
    KB_E5M2, /* OCP FP8 e5m2: bias 15, max 57344, IEEE inf/NaN */
    KB_Q4K,  /* ggml Q4_K: 256 values per 144-byte block */
    KB_Q6K,  /* ggml Q6_K: 256 values per 210-byte block */
    KB_I32,
    KB_DTYPE_COUNT
} kb_dtype;

/* ---- ops --------------------------------------------------------------- */
typedef enum {
    KB_OP_DEQUANT_Q4K = 0,
    KB_OP_RMSNORM,
    KB_OP_GEMM_FP8,
    KB_OP_ROPE_NEOX,
    KB_OP_ATTENTION,
    KB_OP_EMBED,
    KB_OP_COUNT
} kb_op_id;

/* FP8 GEMM scale modes (REFERENCE.md section 4). kb = ceil(K/128), mb = ceil(M/128).
 *   TENSOR: sa[1],      sb[1]
 *   OUTER : sa[M],      sb[N]         (per output row of W / per token)
 *   VEC128: sa[M][kb],  sb[N][kb]     (1x128 blocks along K, both operands)
 *   BLK128: sa[mb][kb], sb[N][kb]     (128x128 blocks on W, 1x128 on X; cuBLASLt
 *                                      does not take BLK128x128 on both)
 * All scale arrays are float32, row-major in the index order written above. */
typedef enum { KB_SCALE_TENSOR = 0, KB_SCALE_OUTER, KB_SCALE_VEC128, KB_SCALE_BLK128, KB_SCALE_COUNT } kb_scale_mode;

/* One case: an op, its sizes and its parameters. Fields an op does not use are 0.
 *
 * Sizes per op, and the tensors in the order backends receive them
 * (all row-major, innermost index last):
 *   dequant_q4k  m rows x k cols (k % 256 == 0)
 *                in[0] Q4_K blocks [m][k/256]            out f32 [m][k]
 *   rmsnorm      n tokens x k hidden, eps
 *                in[0] x f32 [n][k], in[1] w f32 [k]     out f32 [n][k]
 *   gemm_fp8     D[n][m] = sum_k W[m][k] X[n][k] scaled; m = out features,
 *                k = in features, n = batch of tokens; a_type (W), b_type (X),
 *                out_type, scale_mode
 *                in[0] W a_type [m][k], in[1] X b_type [n][k],
 *                in[2] sa f32, in[3] sb f32 (sizes: kb_scale_mode)
 *                out out_type [n][m]
 *   rope_neox    n tokens, heads, head_dim (even), theta (base)
 *                in[0] x f32 [n][heads][head_dim], in[1] pos i32 [n]
 *                out f32 [n][heads][head_dim]
 *   attention    n queries, kv_len keys, heads, kv_heads (heads % kv_heads == 0),
 *                head_dim. Query i sits at position kv_len - n + i and sees keys
 *                0..that position (causal). n == 1 is decode, n == kv_len prefill.
 *                in[0] q f32 [n][heads][d], in[1] k f32 [kv_len][kv_heads][d],
 *                in[2] v f32 [kv_len][kv_heads][d]        out f32 [n][heads][d]
 *   embed        m vocab rows x k hidden, n token ids, a_type = table type
 *                (Q4K, Q6K, F16, F32)
 *                in[0] table a_type [m][k], in[1] ids i32 [n]  out f32 [n][k]
 */
typedef struct {
    kb_op_id op;
    int64_t m, n, k;
    int64_t heads, kv_heads, head_dim, kv_len;
    double eps;   /* rmsnorm */
    double theta; /* rope base */
    int64_t max_pos; /* rope: positions are drawn from [0, max_pos) */
    kb_dtype a_type, b_type, out_type;
    kb_scale_mode scale_mode;
    uint64_t seed;
    char label[64]; /* the shape as the user sees it, e.g. "3584x16x3584" */
} kb_case;

#define KB_MAX_INPUTS 4

/* A tensor as the harness holds it on the host. */
typedef struct {
    const char *name;
    kb_dtype type;
    int64_t count; /* elements (for Q4K/Q6K: values, a multiple of 256) */
    size_t bytes;
    void *host;
} kb_tensor;

/* ---- status codes (returned by every backend entry point) ---------------- */
enum {
    KB_OK = 0,
    KB_NOT_SUPPORTED = 1, /* valid case this backend/variant cannot run: a row, not an error */
    KB_ERROR = 2,         /* this call failed; later calls may still work */
    KB_ERROR_FATAL = 3    /* the device context is lost (sticky fault): call reset() */
};

/* Error / reason text buffers are always this size. */
#define KB_MSG 256

/* ---- run-wide options that backends may read ----------------------------- */
typedef struct {
    const char *algo;  /* cublaslt: "heuristic" (default), "exhaustive", "best" */
    int algo_cap;      /* cublaslt exhaustive: at most this many algorithms per case */
    int fast_accum;    /* cublaslt: -1 both (default), 0 off, 1 on */
    int vk_device;     /* vulkan: device index, -1 = first discrete, else first */
    const char *cache_dir; /* cuda: NVRTC cubin cache ("" = none) */
    int verbose;
} kb_options;

/* A named way of running an op on a backend (a kernel configuration, a
 * cuBLASLt algorithm). `name` is what --variant matches. */
typedef struct {
    char name[64];
    /* Algorithm identity, filled where it applies (cuBLASLt). -1 = not applicable. */
    int algo_id;
    char tile[24];      /* e.g. "128x128x64" */
    int stages;
    int splitk;
    char reduction[24]; /* e.g. "none", "inplace", "out_of_place" */
    int swizzle;
    int custom;
    char cluster[16];   /* e.g. "2x1x1" */
    int64_t workspace;  /* bytes */
    double waves;
    int heuristic_rank; /* position in the heuristic's answer, -1 if not from it */
    /* Free text: kernel name and -D options for our kernels. */
    char detail[192];
    /* Unit roundoff of the variant's accumulator if coarser than fp32
     * (cuBLASLt FAST_ACCUM), 0 = fp32 accumulation. Used by the tolerance. */
    double acc_unit_roundoff;
} kb_variant;

void kb_variant_init(kb_variant *v, const char *name); /* name + every field "not applicable" */

/* ---- the backend interface ---------------------------------------------- */
/* One instance per backend (a static struct in its own file). Device buffers are
 * opaque pointers. Every function writes a one-line reason into msg[KB_MSG] when
 * it returns anything but KB_OK. No function may print to stdout. */
typedef struct kb_backend {
    const char *name;        /* "cpu", "cuda", "cublaslt", "vulkan" */
    const char *description;

    /* Is it usable here? KB_OK, or KB_NOT_SUPPORTED with the reason
     * ("no CUDA driver (libcuda.so.1 not found)"). May initialise the device. */
    int (*probe)(const kb_options *opt, char *msg);
    /* Device and driver, after a successful probe (static strings). */
    const char *(*device_name)(void);
    const char *(*driver_version)(void);
    /* Ceilings for napkin math: memory bandwidth (bytes/s) and peak flop/s for
     * the op's arithmetic (0 when unknown). */
    void (*ceilings)(const kb_case *c, double *bytes_per_s, double *flops_per_s);

    /* The variants this backend runs for case c (may query a library, e.g. the
     * cuBLASLt heuristic). Returns the count (<= max), 0 if the op is not
     * implemented, or -KB_* on error (msg says why). */
    int (*variants)(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg);

    int (*alloc)(size_t bytes, void **dbuf, char *msg);
    void (*free)(void *dbuf);
    int (*upload)(void *dbuf, const void *host, size_t bytes, char *msg);
    int (*download)(void *host, const void *dbuf, size_t bytes, char *msg);

    /* Bind a case and variant to device buffers (compile, pick the algorithm,
     * allocate workspace). KB_NOT_SUPPORTED with the reason when this valid case
     * cannot run here (alignment, a missing device feature). The op function is
     * then callable as a library function: run(state) enqueues it. */
    int (*prepare)(const kb_case *c, const kb_variant *v, void *const *dev_in, void *dev_out, void **state,
                   char *msg);
    /* Run once and wait for completion. If seconds != NULL, time the run with the
     * device's own timer (CUDA events, Vulkan timestamps) into *seconds. */
    int (*run)(void *state, double *seconds, char *msg);
    void (*release)(void *state);

    /* Evict the device's caches before a cold sample (write >= L2 size). */
    int (*flush_cache)(char *msg);
    /* After KB_ERROR_FATAL: tear the context down and build a fresh one. Every
     * buffer and state from before is gone (the harness forgets them). */
    int (*reset)(char *msg);
} kb_backend;

/* The registry of backends (bench/backends.c). */
extern const kb_backend *const kb_backends[];
extern const int kb_backend_count;
const kb_backend *kb_backend_find(const char *name);

/* ---- small shared helpers (bench/util.c) -------------------------------- */
const char *kb_dtype_name(kb_dtype t);
int kb_dtype_parse(const char *s, kb_dtype *t); /* 0 on success */
const char *kb_op_name(kb_op_id op);
const char *kb_scale_mode_name(kb_scale_mode s);
/* Bytes for `count` elements (count a multiple of 256 for Q4K/Q6K). */
size_t kb_dtype_bytes(kb_dtype t, int64_t count);
/* Element counts of the gemm scale arrays for a case. */
int64_t kb_scale_count_a(const kb_case *c);
int64_t kb_scale_count_b(const kb_case *c);
/* snprintf into msg[KB_MSG]; returns code. */
int kb_fail(char *msg, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
