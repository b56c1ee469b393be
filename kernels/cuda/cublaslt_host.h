/* cublaslt_host.h - the host-only logic of the cublaslt backend: no GPU and no
 * cuBLASLt call needed, so all of it is unit-tested on a GPU-less machine
 * (tests/test_cublaslt_host.c).
 *
 *   - names of cuBLASLt's algorithm enums (tile, stages, cluster shape,
 *     reduction scheme) and their inverse, for the algorithm identity of a row;
 *   - the identity -> kb_variant formatting and the variant names;
 *   - the scale buffers: which cuBLASLt scale mode each kbench mode uses, how many
 *     floats cuBLASLt reads, and the reordering from kbench's layout (kbench.h)
 *     to cuBLASLt's;
 *   - the shape / type / pointer checks with their error messages;
 *   - small policies (fast-accum settings, exhaustive subsampling, which CUDA
 *     errors are sticky).
 *
 * The enum values come from the installed cublasLt.h (header only: nothing here
 * links against CUDA), so a name can never drift from the library's number. */
#ifndef KB_CUBLASLT_HOST_H
#define KB_CUBLASLT_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "bench/kbench.h"
#include "kernels/cuda/cuda_ops.h"

/* ---- policy constants (documented in kernels/cuda/CUBLASLT_NOTES.md) ----- */
/* Workspace allowed in the heuristic preference and passed to cublasLtMatmul.
 * 32 MiB is what the cuBLAS documentation recommends for Hopper ("cublasSetWorkspace":
 * 32 MiB on sm_90); the preference's default of 0 hides every split-K algorithm. */
#define KBLT_WORKSPACE_BYTES ((size_t)32 << 20)
/* How many results one heuristic query asks for. */
#define KBLT_HEURISTIC_COUNT 32
/* --algo exhaustive: rows kept per case and fast-accum setting when
 * kb_options.algo_cap is 0. */
#define KBLT_EXHAUSTIVE_DEFAULT_CAP 256
/* --algo exhaustive: at most this many AlgoCheck calls and this many accepted
 * configurations per case and fast-accum setting, whatever the cap. */
#define KBLT_EXHAUSTIVE_MAX_CHECKS 100000
#define KBLT_EXHAUSTIVE_MAX_VALID 16384
/* ... and at most this many seconds of AlgoCheck calls (the detail then says
 * "time-bounded"): the enumeration is host work whose cost is not documented. */
#define KBLT_EXHAUSTIVE_MAX_SECONDS 20.0
/* Unit roundoff of the accumulator with FAST_ACCUM on: DeepSeek-V3's technical
 * report (section 3.3.2) measured Hopper's FP8 tensor-core accumulation at about
 * 14 bits when partial sums are not promoted to fp32, so u = 2^-14. */
#define KBLT_FAST_ACCUM_UNIT_ROUNDOFF (1.0 / 16384.0)

/* ---- enum names ------------------------------------------------------------ */
/* Each returns a static string, or NULL for a value this cublasLt.h does not name. */
const char *kblt_tile_name(int tile);       /* CUBLASLT_MATMUL_TILE_128x128 -> "128x128", 0 -> "undefined" */
const char *kblt_stages_name(int stages);   /* CUBLASLT_MATMUL_STAGES_64x3 -> "64x3", 0 -> "undefined" */
const char *kblt_cluster_name(int cluster); /* CUBLASLT_CLUSTER_SHAPE_2x1x1 -> "2x1x1", 0 -> "auto" */
const char *kblt_reduction_name(int scheme); /* NONE "none", INPLACE "inplace", COMPUTE_TYPE "compute_type",
                                              * OUTPUT_TYPE "output_type" */
/* The inverse: the enum value for a name above, or -1. */
int kblt_tile_parse(const char *name);
int kblt_stages_parse(const char *name);
int kblt_cluster_parse(const char *name);
int kblt_reduction_parse(const char *name);
/* Counts of the enums (their *_END values), for tests and loops. */
int kblt_tile_count(void);
int kblt_stages_count(void);
int kblt_cluster_count(void);

/* ---- algorithm identity ------------------------------------------------------ */
/* What identifies one cuBLASLt algorithm configuration, as raw enum values
 * (CUBLASLT_ALGO_CONFIG_*), plus what the heuristic / AlgoCheck said about it. */
typedef struct {
    int algo_id;
    int tile;       /* cublasLtMatmulTile_t */
    int stages;     /* cublasLtMatmulStages_t */
    int splitk;     /* CUBLASLT_ALGO_CONFIG_SPLITK_NUM */
    int reduction;  /* cublasLtReductionScheme_t */
    int swizzle;    /* CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING */
    int custom;     /* CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION */
    int cluster;    /* cublasLtClusterShape_t */
    int64_t workspace; /* bytes the algorithm needs */
    double waves;   /* wavesCount */
    int heuristic_rank; /* position in the heuristic's answer, -1 if not from it */
} kblt_identity;

/* Copy an identity into the variant's identity fields (enum values as names; an
 * unknown value as "tile#N" / "stages#N" / "cluster#N" / "reduction#N"). Only
 * the identity fields are written; the name, detail and acc_unit_roundoff are
 * left alone. */
void kblt_identity_to_variant(const kblt_identity *id, kb_variant *v);
/* The inverse, for re-creating an algorithm from a variant: 0 on success, -1
 * (msg says which field) if a name does not parse. workspace, waves and rank are
 * copied as they are. */
int kblt_identity_from_variant(const kb_variant *v, kblt_identity *id, char *msg);
/* One line, e.g. "algo 66 tile 128x128 stages 64x4 splitk 1 reduction none
 * swizzle 0 custom 0 cluster 1x2x1 ws 0 waves 0.87 rank 3". Returns the length
 * snprintf would have written. */
int kblt_identity_format(const kblt_identity *id, char *buf, size_t size);

/* ---- variant names -------------------------------------------------------- */
typedef enum {
    KBLT_SRC_HEURISTIC = 0, /* "h03_fa1": rank 3 of the heuristic, FAST_ACCUM on */
    KBLT_SRC_EXHAUSTIVE,    /* "x017_fa0": 17th kept configuration of the enumeration */
    KBLT_SRC_NONE           /* "heuristic_fa1", "exhaustive_fa0": placeholder row for a
                             * combination cuBLASLt does not run (prepare says why) */
} kblt_source;

/* Write the name; index is ignored for NONE, where `none_of` names the mode that
 * found nothing (HEURISTIC or EXHAUSTIVE). */
void kblt_variant_name(char *out, size_t size, kblt_source src, kblt_source none_of, int index, int fast_accum);
/* Parse a name made by kblt_variant_name: 0 on success, -1 otherwise. Any of the
 * out pointers may be NULL. */
int kblt_variant_parse(const char *name, kblt_source *src, int *index, int *fast_accum);

/* The fast-accum settings a kb_options.fast_accum value asks for, in order:
 * -1 -> {0, 1}, 0 -> {0}, 1 -> {1}. Returns the count, 0 for any other value. */
int kblt_fast_accum_settings(int opt_fast_accum, int out[2]);
/* acc_unit_roundoff of a variant for inner dimension k: the u that makes the
 * harness's accumulation term (bench/ops/gemm_fp8.c: 2 sqrt(K) u_acc sum|s a b|) cover
 * what the H100 does.
 *   FAST_ACCUM off is not fp32 accumulation either: each FP8 MMA step aligns its 32
 *   products and the running partial to the largest of them and keeps ~14 bits
 *   (DeepSeek-V3 report, section 3.3.2) before cuBLASLt promotes into fp32, so the
 *   error of a step scales with its largest addend, not with sum|s a b|. On random
 *   inputs (H100) the worst was 1.2 * 2^-14 * sum|s a b|; on the synthetic model's
 *   activations, whose few massive channels dominate each step's sum, 12 * 2^-14
 *   (H200, CUBLASLT_NOTES.md). The bound is 32 * 2^-14 * sum|s a b| at any K (one
 *   2^-14 truncation for each of a step's 32 products when one outlier is the
 *   whole sum): u = 2^-10 / sqrt(k), 2.7x the worst measured.
 *   FAST_ACCUM on: no promotion at all; u = 2^-14 (KBLT_FAST_ACCUM_UNIT_ROUNDOFF),
 *   never below FAST_ACCUM off's u (k < 256). */
double kblt_acc_unit_roundoff(int fast_accum, int64_t k);
/* The accumulation term of the gemm_fp8 tolerance (bench/ops/gemm_fp8.c) for a given
 * u (0 = fp32): 2 sqrt(k) max(u, 2^-24) + 4 * 2^-24, for the self-test's own check. */
double kblt_acc_tolerance(int64_t k, double acc_unit_roundoff);

/* ---- --algo --------------------------------------------------------------- */
/* ("best" is not a mode here: the harness times the variants and keeps the fastest
 * that passed, --best.) */
typedef enum { KBLT_ALGO_HEURISTIC = 0, KBLT_ALGO_EXHAUSTIVE } kblt_algo_mode;
/* NULL or "" -> heuristic. Returns 0, or -1 for an unknown name. */
int kblt_algo_mode_parse(const char *s, kblt_algo_mode *mode);
/* The exhaustive cap for kb_options.algo_cap (<= 0 -> KBLT_EXHAUSTIVE_DEFAULT_CAP). */
int kblt_exhaustive_cap(int algo_cap);
/* Keep `cap` of `total` enumerated configurations, evenly spread so every algo
 * id and tile early and late in the enumeration order is represented: the j-th
 * kept one (j < min(cap, total)) is index floor(j * total / cap). */
int64_t kblt_subsample_index(int64_t j, int64_t total, int64_t cap);

/* ---- scales ------------------------------------------------------------------ */
/* Operand: 0 = A (cuBLASLt's A = W [m][k]), 1 = B (X [n][k]). */
/* The CUBLASLT_MATMUL_MATRIX_SCALE_* value for an operand of a kbench mode:
 *   TENSOR: SCALAR_32F / SCALAR_32F      OUTER : OUTER_VEC_32F / OUTER_VEC_32F
 *   VEC128: VEC128_32F / VEC128_32F      BLK128: BLK128x128_32F / VEC128_32F
 * -1 for an unknown mode. */
int kblt_scale_mode_lt(kb_scale_mode mode, int operand);
/* Floats in the scale buffer cuBLASLt reads for one operand, rows = m for A,
 * n for B (layouts: kblt_scales_to_lt). -1 for an unknown mode. */
int64_t kblt_scale_elems_lt(kb_scale_mode mode, int operand, int64_t rows, int64_t k);
/* Floats kbench holds for the same operand (kbench.h): TENSOR 1, OUTER rows,
 * VEC128 rows*kb, BLK128 A ceil(rows/128)*kb, B rows*kb; -1 for unknown. */
int64_t kblt_scale_elems_kb(kb_scale_mode mode, int operand, int64_t rows, int64_t k);
/* Does the operand's scale buffer need reordering (else kbench's buffer is
 * passed to cuBLASLt as it is)? */
int kblt_scale_needs_reorder(kb_scale_mode mode, int operand, int64_t rows, int64_t k);
/* Reorder kbench's scales (src, kblt_scale_elems_kb floats) into cuBLASLt's
 * layout (dst, kblt_scale_elems_lt floats). With kb = ceil(k/128):
 *   1x128 blocks (VEC128_32F, both operands; BLK128's X): kbench [rows][kb]
 *     -> cuBLASLt [kb][rows], rows contiguous (an "outer-dimension-major"
 *     tensor; the layout PyTorch's _scaled_mm checks for cuBLASLt: scale_a
 *     shape (M, K/128) with strides (1, M));
 *   128x128 blocks (BLK128x128_32F, W): kbench [mb][kb] -> cuBLASLt [mb][kbp]
 *     with kbp = kb rounded up to a multiple of 4, the pad zero-filled (PyTorch:
 *     shape (round_up(K/128, 4), M/128), strides (1, round_up(K/128, 4)));
 *   scalars and OUTER_VEC_32F vectors are copied as they are.
 * Returns 0, or -1 for an unknown mode. */
int kblt_scales_to_lt(kb_scale_mode mode, int operand, int64_t rows, int64_t k, const float *src, float *dst);

/* The device step a prepared state runs before cublasLtMatmul (cublaslt_scales.cu):
 * for each operand whose scales need reordering, one launch reading gemm_fp8's
 * tensor 2 (W's scales) or 3 (X's scales) and writing cuBLASLt's layout into the
 * plan's workspace at ws_offset[operand] (256-byte aligned); ws_offset[operand] = -1
 * where kbench's buffer is passed as it is. KB_OK, or KB_ERROR (msg). */
int kblt_scale_reorder_plan(const kb_case *c, kbcu_plan *p, int64_t ws_offset[2], char *msg);

/* ---- checks (KB_OK, or KB_NOT_SUPPORTED with the reason in msg) ----------- */
/* Everything about the case itself that cuBLASLt's FP8 TN GEMM needs, checked
 * before any cuBLASLt call: op, types and pairs, 16-byte aligned dimensions
 * (m and k multiples of 16 for 1-byte fp8 operands; ldd = m elements a multiple
 * of 16 bytes), positive sizes. n = 1 (decode) is valid. */
int kblt_check_case(const kb_case *c, char *msg);
/* A device pointer cuBLASLt reads or writes must be 16-byte aligned. */
int kblt_check_pointer(const void *p, const char *what, char *msg);

/* ---- CUDA errors ---------------------------------------------------------- */
/* Does this cudaError_t leave the context unusable (the backend returns
 * KB_ERROR_FATAL and the harness calls reset())? */
int kblt_cuda_error_is_sticky(int err);

/* Size in bytes of one element of a kbench dtype that cuBLASLt takes here
 * (E4M3/E5M2 1, F16/BF16 2, F32 4), 0 for the others. */
size_t kblt_elem_bytes(kb_dtype t);

#endif
