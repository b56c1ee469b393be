/* forward.h - a whole Qwen2 decoder chained from the registered ops on one device, against
 * the same graph in fp64, op by op and layer by layer (docs/FORWARD.md).
 *
 * A run: the reference forward (fp64 from the exactly decoded weights, every
 * intermediate kept), then on the backend: the weights converted as the recipe says
 * (on the device, by the dequant_q4k / weight_fp8 ops), the prompt and the decode
 * steps (teacher-forced by the reference's argmax, so every backend sees the same
 * tokens), each step enqueued as one sequence with no host copy between ops. After each
 * step every node's output is downloaded and compared with the reference twice:
 *   chained   the node's own output, computed from the backend's own previous outputs
 *             (accumulated drift: cosine, rel_l2 - measured, no tolerance applies);
 *   isolated  the node run alone on the reference's inputs (rounded to its input types)
 *             and judged by its op's tolerance against its op's reference.
 * The verdict names the first isolated failure (the culprit) or says the drift is
 * accumulated rounding, with the first layer whose chained cosine drops below the
 * threshold. */
#ifndef KB_FORWARD_H
#define KB_FORWARD_H

#include "bench/harness.h"
#include "bench/forward_ref.h"
#include "bench/model.h"
#include "bench/resume.h"

/* How a stack runs its matmuls (docs/FORWARD.md "Recipes"). */
/* The forward's default --prefer: per op, the fastest cuda variant of the H200 qwen2.5-7b
 * measurements (results/h200/README.md) where it differs from the first listed (v1, the
 * simplest), one name an op: gemm_fp8 gemv_v2_b256_u4, rmsnorm v2_b256_i4_w, rope v4_b256,
 * attention decode_v2, embed v3_b256_i1, dequant_q4k v3_b128. A name a backend does not
 * have is ignored; the first variant that prepares runs where none of these does.
 * --prefer-from chooses per shape from a measured table instead. */
#define KB_FORWARD_PREFER "gemv_v2_b256_u4,v2_b256_i4_w,v4_b256,decode_v2,v3_b256_i1,v3_b128"

typedef struct {
    const char *name;
    int fp8;                  /* 0: weights dequantized to f32, gemm_f32 */
    kb_scale_mode w_scale;    /* weight_fp8's layout */
    kb_scale_mode x_scale;    /* quant_fp8's layout for the activations */
    kb_scale_mode gemm_scale; /* gemm_fp8's scale mode */
    kb_dtype gemm_out;        /* the GEMMs' output type */
    const char *summary;
} kb_recipe;

extern const kb_recipe kb_recipes[];
extern const int kb_recipe_count;
const kb_recipe *kb_recipe_find(const char *name);

/* A test-only variant planted at one node of one layer (layer -1: the embedding,
 * layers: the final norm and lm_head). */
typedef struct {
    int layer;
    char node[32];
    char variant[64];
} kb_plant;

#define KB_MAX_PLANTS 8
#define KB_MAX_TOKENS 4096

typedef struct {
    const kb_model *model;
    const kb_recipe *recipe;
    int flush;                  /* fp8: results that would be subnormal become 0 */
    const kb_backend *backend;  /* every op */
    const kb_backend *gemm;     /* the GEMMs and weight conversions (same device) */
    const char *prefer;         /* comma list of variant names to prefer, or NULL */
    const kb_resume *prefer_from; /* --prefer-from: a node's variants timed fastest there
                                     (its op and shape) come first, ahead of prefer; or NULL */
    kb_options opt;
    int32_t tokens[KB_MAX_TOKENS];
    int n_tokens, steps, repeat;
    double threshold; /* chained cosine below this marks the layer (default 0.99) */
    int isolated;     /* run the isolated checks (default 1) */
    int check_weights;/* weight conversions judged: 0 none, 1 first/last layer, 2 all */
    int timing, reps; /* time the steps (decode: per token) */
    kb_plant plants[KB_MAX_PLANTS];
    int n_plants;
    int progress;
} kb_forward_cfg;

/* Per step and layer (-1 the embedding .. layers the head): the worst of each measure. */
typedef struct {
    double min_cosine; /* chained */
    char min_cosine_node[32];
    double max_err_over_tol; /* isolated */
    char max_node[32];
    int isolated_fail;
} kb_forward_layer;

/* What a run found (also printed and written as rows). */
typedef struct {
    kb_forward_layer *layer; /* [step][layers + 2]: index layer + 1 */
    int culprit_found;
    int culprit_step, culprit_layer;
    char culprit_node[32], culprit_op[24], culprit_reason[2 * KB_MSG];
    int drop_layer; /* first layer whose chained cosine < threshold (-2: none) */
    char drop_node[32];
    double drop_cosine;
    /* logits, per step */
    int steps;      /* steps the reference ran */
    int steps_done; /* steps the backend finished (fewer after an error) */
    int ref_argmax[64], argmax[64];
    double pearson[64], cosine[64], max_abs[64], fit_a[64], fit_b[64];
    int top5[64];
    uint64_t logits_hash[64];
    int deterministic; /* --repeat: every run's logits bit-identical (-1: not run) */
    int overflow_nodes; /* node outputs with an fp16/bf16 overflow to inf */
    double decode_s, prompt_s, floor_s; /* per-token decode time, prompt time, weight-bytes floor */
    int errors;
    char first_error[2 * KB_MSG]; /* the first backend error's message ("": none) */
} kb_forward_result;

/* The reference forward of a configuration's prompt and decode steps (each decode step
 * fed the reference's own argmax): made once, shared by every run on the same model,
 * tokens and step count (kbench falsify runs several). */
typedef struct kb_forward_reference kb_forward_reference;
/* NULL with msg on failure; exit code in *rc (2: too many positions, 3: an error, 128+N:
 * stopped by signal N). */
kb_forward_reference *kb_forward_reference_make(const kb_forward_cfg *cfg, int *rc, char *msg, size_t n);
void kb_forward_reference_free(kb_forward_reference *r);
const kb_ref_step *kb_forward_reference_step(const kb_forward_reference *r, int step); /* 0: the prompt */

/* Run it; rows go to the harness's reporters. `ref`: a reference made for the same model,
 * tokens and steps, or NULL (then the run makes its own). Returns an exit code: 0 no op
 * exceeds its tolerance, 1 an isolated check failed (a culprit), 3 a backend error. */
int kb_forward_run(const kb_forward_cfg *cfg, kb_harness *h, const kb_forward_reference *ref, kb_forward_result *res);
void kb_forward_result_free(kb_forward_result *res);
kb_forward_layer *kb_forward_layer_at(const kb_forward_result *res, const kb_model *m, int step, int layer);

/* `kbench forward ...` (bench/forward_cli.c). Setup parses the options, loads the
 * model and probes the backends: -1 when the run should go on, else the exit code
 * (--help, --info, bad input). test_variants: the backends list their test-only
 * variants too (kbench falsify's deliberate fault; a run uses them only where planted). */
typedef struct {
    kb_forward_cfg cfg;
    kb_model model;
    kb_resume *prefer_from; /* cfg.prefer_from's owner */
    const char *csv_path, *json_path;
    int rows, quiet;
} kb_forward_cli;
int kb_forward_setup(int argc, char **argv, int test_variants, kb_forward_cli *cli);
/* What a setup that returned -1 holds: the model, the --prefer-from table. */
void kb_forward_cli_free(kb_forward_cli *cli);
int kb_forward_main(int argc, char **argv);
/* `kbench falsify ...` (bench/falsify.c) */
int kb_falsify_main(int argc, char **argv);

#endif
