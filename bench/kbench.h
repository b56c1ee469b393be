/* kbench.h - the contract between the op registry, the harness and the backends.
 *
 * An op knows its math (bench/ops/, ref/); a backend knows its device and its
 * kernels (kernels/<backend>/) and nothing about tolerances or reporting; the
 * harness (bench/harness.c) owns every loop, the poisoning, the metrics and the
 * timing. docs/CONTRACT.md walks through it with the chain test as the example. */
#ifndef KBENCH_H
#define KBENCH_H

#include "bench/op_list.h"
#include "ref/types.h"

#include <stddef.h>
#include <stdint.h>

/* ---- ops ---------------------------------------------------------------- */
#define KB_OP_ENUM(name) KB_OP_##name,
typedef enum { KB_OP_LIST(KB_OP_ENUM) KB_OP_COUNT } kb_op_id;
#undef KB_OP_ENUM

/* One case: an op, its sizes and its parameters. Fields an op does not use stay at
 * the defaults (sizes 0). Which fields an op reads, what its tensors are and how its
 * shape is written are the op's own business (bench/ops/<op>.c). */
typedef struct {
    kb_op_id op;
    int64_t m, n, k;
    int64_t heads, kv_heads, head_dim, kv_len;
    double eps;      /* rmsnorm */
    double theta;    /* rope base */
    int64_t max_pos; /* rope: positions are drawn from [0, max_pos) */
    kb_dtype a_type, b_type, out_type;
    kb_scale_mode scale_mode;
    int flush; /* fp8 quantization: results that would be subnormal become 0 */
    uint64_t seed;
    char label[64]; /* the shape as the user writes it, e.g. "3584x16x3584" */
} kb_case;

/* ---- device memory ------------------------------------------------------- */
/* A backend's allocation, as an opaque handle (0 = none). A view is a byte range of
 * one; ops read and write views, so a fused output can be split and a KV cache
 * appended in place. */
typedef uint64_t kb_buf;
typedef struct {
    kb_buf buf;
    uint64_t offset, bytes;
} kb_view;

/* A tensor argument of an op: its type and element count (the op's descriptor) and
 * where it lives. Kernels take their sizes from the case and their memory from
 * here; no backend re-derives a buffer size. */
typedef struct {
    kb_dtype type;
    int64_t count;
    kb_view view;
} kb_arg;

#define KB_MAX_ARGS 8 /* inputs + outputs of one op */

/* ---- status codes (returned by every backend entry point) ---------------- */
enum {
    KB_OK = 0,
    KB_NOT_SUPPORTED = 1, /* valid case this backend/variant cannot run: a row, not an error */
    KB_ERROR = 2,         /* this call failed; later calls may still work */
    KB_ERROR_FATAL = 3    /* the device context is lost (sticky fault): call reset() */
};

#define KB_MSG 256 /* error / reason text buffers are always this size */

/* ---- tunables (--tune) ----------------------------------------------------- */
/* A kernel's compile-time tunables (block size, vector width, rows per block) are
 * sweep axes like the case parameters. A point sets some of them; variant V run at
 * point P is named "V[NAME=value,...]" (names sorted), and that name is the whole
 * description: --variant and --resume match it, and a backend rebuilds the variant
 * from the name alone (the cuda worker does, across its process boundary). */
#define KB_TUNE_NAMES 4     /* tunables one point sets */
#define KB_TUNE_NAME_LEN 16 /* a name: upper-case letter, then upper case, digits, '_' */
#define KB_TUNE_MAX 1048576 /* values are integers in [0, KB_TUNE_MAX]: each backend checks its range */
#define KB_TUNE_POINTS 64   /* points of one run */
typedef struct {
    int n; /* 0: the variant as written */
    char name[KB_TUNE_NAMES][KB_TUNE_NAME_LEN]; /* sorted */
    int value[KB_TUNE_NAMES];
} kb_tune_point;
typedef struct {
    int n;
    kb_tune_point p[KB_TUNE_POINTS];
} kb_tune;

/* A tunable's name as the --tune grammar allows it (1) or not (0). */
int kb_tune_name_ok(const char *s, size_t len);
/* Set name = value in p, keeping the names sorted; -1 when the name is already set or
 * p is full. */
int kb_tune_set(kb_tune_point *p, const char *name, int value);
/* The value p gives name, or NULL. */
const int *kb_tune_get(const kb_tune_point *p, const char *name);
int kb_tune_equal(const kb_tune_point *a, const kb_tune_point *b);
/* Whether a backend (tunable or not) has rows under the points t (NULL: no --tune):
 * always without points or when tunable; a backend without tunables only when t has the
 * empty point (the variants as written: --variant listed a plain name beside tuned ones). */
int kb_tune_runs_on(const kb_tune *t, int tunable);
/* "base[A=1,B=2]" (base alone when p->n == 0) into out[n]; -1 when it does not fit. */
int kb_tune_name(const char *base, const kb_tune_point *p, char *out, size_t n);
/* The inverse: base and point of a variant name ("v2_b256_i4[BLOCK=128]"; a name
 * without '[' is its own base at the empty point). 0, or -1 when the brackets are
 * malformed (msg[KB_MSG] says how; msg may be NULL). */
int kb_tune_split(const char *name, char *base, size_t base_len, kb_tune_point *p, char *msg);
/* The first tunable p sets that a variant's tunables ("BLOCK=256 ITEMS=4") lack, or NULL. */
const char *kb_tune_lacks(const kb_tune_point *p, const char *tunables);
/* tunables with p's values in place, into out[n]. */
void kb_tune_apply(const char *tunables, const kb_tune_point *p, char *out, size_t n);
/* --variant's list: names, prefixes ending in '*', tuned names (whose brackets hold
 * commas), comma-separated. The next item of *s into item[n]: 1 (and *s moves past
 * it), 0 at the end, -1 when an item is too long or text follows a ']'. */
int kb_variant_item(const char **s, char *item, size_t n);
/* Does a --variant list (NULL: everything) select variant `name`? An item matches the
 * name itself, PREFIX* every name it starts, a plain name also that variant's tuned
 * points ("v2_b256_i4" selects "v2_b256_i4[BLOCK=128]"), a tuned name its one point
 * (its tunables in any order). */
int kb_variant_matches(const char *filter, const char *name);

/* ---- run-wide options that backends may read ----------------------------- */
typedef struct {
    const char *algo;      /* cublaslt: "heuristic" (default) or "exhaustive" */
    int algo_cap;          /* cublaslt exhaustive: at most this many algorithms per case */
    int fast_accum;        /* cublaslt: -1 both (default), 0 off, 1 on */
    int vk_device;         /* vulkan: device index, -1 = first discrete, else first */
    const char *cache_dir; /* cuda: NVRTC cubin cache (NULL default, "" none) */
    int test_variants;     /* list the test-only broken variants (KB_TEST_VARIANTS=1) */
    /* --tune (NULL: none): a tunable backend lists each of its variants at every
     * point instead of as written, named "V[NAME=value,...]"; a point that sets a
     * tunable the variant lacks is still listed (prepare says KB_NOT_SUPPORTED, why) */
    const kb_tune *tune;
} kb_options;

/* A named way of running an op on a backend (a kernel configuration, a cuBLASLt
 * algorithm). `name` is what --variant matches. */
typedef struct {
    char name[64];
    /* Algorithm identity, filled where it applies (cuBLASLt); -1 = not applicable. */
    int algo_id;
    char tile[24]; /* e.g. "128x128x64" */
    int stages;
    int splitk;
    char reduction[24]; /* "none", "inplace", "out_of_place" */
    int swizzle;
    int custom;
    char cluster[16]; /* e.g. "2x1x1" */
    int64_t workspace; /* bytes */
    double waves;
    int heuristic_rank; /* position in the heuristic's answer, -1 if not from it */
    char detail[192];   /* kernel name and -D options, for our kernels */
    /* Unit roundoff of the variant's accumulator when coarser than fp32 (cuBLASLt
     * FAST_ACCUM), 0 = fp32. The op's tolerance model reads it. */
    double acc_unit_roundoff;
    int test_only; /* a deliberately broken variant (KB_TEST_VARIANTS=1) */
    char tunables[64]; /* what --tune may set, at this variant's values: "BLOCK=256 ITEMS=4" ("" none) */
} kb_variant;

void kb_variant_init(kb_variant *v, const char *name); /* name + every field "not applicable" */

/* The back-to-back launch floor: KB_LAUNCH_SEQ empty kernels between two events, the
 * median of KB_LAUNCH_SEQ_SAMPLES such samples, per launch. */
#define KB_LAUNCH_SEQ 32
#define KB_LAUNCH_SEQ_SAMPLES 11

/* What a device is, measured once per run (probe). Backends that share a device
 * (cuda and cublaslt: one worker, one context) return the same info, `key` names it. */
typedef struct {
    char key[32];     /* "cuda:0", "vulkan:0", "cpu": backends with the same key share buffers */
    char name[256];   /* "NVIDIA H200 (sm_90, 132 SMs, 60 MiB L2)" */
    char driver[192];
    double bw;             /* memory ceiling, bytes read + written per second (0: unknown) */
    char bw_source[96];    /* how bw was measured */
    uint64_t cache_bytes;  /* the last-level cache a cold flush evicts and rotate outgrows */
    uint64_t mem_bytes;    /* device memory in all (0: unknown) */
    uint64_t mem_free;     /* free when probed (0: unknown) */
    double launch_floor_s; /* an empty kernel timed as cases are (0: not measured) */
    double launch_seq_s;   /* per launch, empty kernels back to back as rotate mode runs them (0: not measured) */
    char launch_source[96];
    int runs_on_host;      /* its kernels run on the host's cores (cpu, lavapipe): the harness
                            * computes no reference beside its timing */
} kb_device_info;

/* ---- the backend contract ------------------------------------------------ */
/* One instance per backend (a static struct in its own file). Every function
 * writes a one-line reason into msg[KB_MSG] when it returns anything but KB_OK, and
 * none prints to stdout.
 *
 * Lifecycle of a case: alloc -> upload -> prepare (bind a case and variant to
 * views) -> enqueue ... -> wait -> download. enqueue returns once the work is
 * queued; only wait and run_timed block. States of backends with the same device
 * key can be enqueued together (cuBLASLt's GEMM reading our kernel's output). */
typedef struct kb_backend {
    const char *name; /* "cpu", "cuda", "cublaslt", "vulkan" */
    const char *description;
    /* Its variants have tunables (kb_variant.tunables): variants() honours opt->tune
     * and answers without a probe (--list-axes counts the points before a device is
     * touched). A backend without (0) gets one not_supported row per case under --tune. */
    int tunable;

    /* Is it usable here? KB_OK, or KB_NOT_SUPPORTED with the reason ("no CUDA
     * driver (libcuda.so.1 not found)"). Initialises the device once. */
    int (*probe)(const kb_options *opt, char *msg);
    const kb_device_info *(*device)(void); /* after a successful probe */
    /* Peak flop/s for the case's arithmetic on this backend (0: unknown). */
    double (*flop_peak)(const kb_case *c);

    /* The variants this backend runs for case c (may query a library, e.g. the
     * cuBLASLt heuristic). Returns the count (<= max), 0 if the op is not
     * implemented here (msg may say why), or -KB_* on error. */
    int (*variants)(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg);

    int (*alloc)(uint64_t bytes, kb_buf *buf, char *msg);
    void (*free)(kb_buf buf);
    int (*upload)(kb_view dst, const void *host, char *msg);   /* dst.bytes from host; waits */
    int (*download)(void *host, kb_view src, char *msg);       /* src.bytes to host; waits */
    /* Optional (NULL if not offered): src.bytes from one device view to another of the
     * same size, on the device; waits. The harness uploads a case's tensors once and
     * gives each variant and rotate copy its own by this (uploads cross a socket or a
     * staging buffer; this is the device's copy rate). */
    int (*copy)(kb_view dst, kb_view src, char *msg);

    /* Bind a case and variant to its tensors (inputs then outputs, in the op's
     * order): compile, pick the algorithm, allocate workspace. KB_NOT_SUPPORTED with
     * the reason when this valid case cannot run here (alignment, a device feature). */
    int (*prepare)(const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out, void **state,
                   char *msg);
    void (*release)(void *state);

    /* Queue states[0..n) in order on the device's one stream/queue; returns without
     * waiting. Later ops see earlier ops' writes. */
    int (*enqueue)(void *const *states, int n, char *msg);
    /* Block until everything queued has finished. */
    int (*wait)(char *msg);
    /* Optional (NULL if not offered): capture states[0..n) once as one replayable
     * unit (a CUDA graph, a recorded command buffer). The result is a state that
     * enqueue, run_timed and release take. */
    int (*record)(void *const *states, int n, void **seq, char *msg);
    /* Queue states[0..n) between two device timestamps (flush: evict the caches
     * first, outside the timed span), wait, and return the device time between. The
     * host's enqueue cost stays out of it. */
    int (*run_timed)(void *const *states, int n, int flush, double *seconds, char *msg);

    /* After KB_ERROR_FATAL: tear the context down and build a fresh one. Every
     * buffer and state from before is gone (the caller forgets them). */
    int (*reset)(char *msg);
} kb_backend;

/* The registry of backends (bench/backends.c). */
extern const kb_backend *const kb_backends[];
extern const int kb_backend_count;
const kb_backend *kb_backend_find(const char *name);

/* snprintf into msg[KB_MSG]; returns code. */
int kb_fail(char *msg, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same into a buffer of n bytes (msg may be NULL); returns -1. */
int kb_failn(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
double kb_now_s(void); /* CLOCK_MONOTONIC seconds, for wall times and progress */

#endif
