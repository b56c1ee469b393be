/* op.h - the op registry: everything kbench knows about an op, independent of any
 * backend. One entry per op, in bench/ops/<op>.c: its shape and parameters, its
 * tensors, how to generate realistic inputs, its fp64 reference, its flops/bytes
 * model and how far a float implementation may honestly drift from the reference
 * (the tolerance model, docs/TOLERANCES.md). Nothing outside an op's own files and
 * its kernel files switches on the op. */
#ifndef KB_OP_H
#define KB_OP_H

#include "bench/kbench.h"

/* ---- case parameters, by name -------------------------------------------- */
/* Every kb_case field a user can set: shape tables, --shape, the CLI's --NAME
 * options, the report's columns and sweep axes all go through this one table. */
typedef enum {
    KB_P_M = 0,
    KB_P_N,
    KB_P_K,
    KB_P_HEADS,
    KB_P_KV_HEADS,
    KB_P_HEAD_DIM,
    KB_P_KV_LEN,
    KB_P_A_TYPE,
    KB_P_B_TYPE,
    KB_P_OUT_TYPE,
    KB_P_SCALE,
    KB_P_FLUSH,
    KB_P_EPS,
    KB_P_THETA,
    KB_P_MAX_POS,
    KB_P_COUNT
} kb_param;
#define KB_PBIT(p) (1u << (p))

typedef enum { KB_PK_INT, KB_PK_DTYPE, KB_PK_SCALE, KB_PK_BOOL, KB_PK_REAL } kb_param_kind;

typedef struct {
    const char *name;   /* option / table column name: "m", "a_type", "eps", "scale" */
    const char *column; /* the report's column: the name, but "scale_mode" for scale */
    kb_param_kind kind;
    size_t offset; /* into kb_case */
    const char *help;
} kb_param_def;

extern const kb_param_def kb_params[KB_P_COUNT];
const kb_param_def *kb_param_find(const char *name, kb_param *id);
/* Parse text into the field (0 on success); format it (for labels and reports). */
int kb_param_parse(kb_case *c, kb_param p, const char *text);
void kb_param_format(const kb_case *c, kb_param p, char *buf, size_t n);
int64_t kb_param_int(const kb_case *c, kb_param p); /* size params */

/* ---- tolerance ------------------------------------------------------------ */
/* Per element: |out_i - ref_i| <= rel*|ref_i| + acc*mag_i + abs. `formula` says
 * where the numbers come from, for the row and the docs. */
typedef struct {
    double rel, acc, abs;
    char formula[160];
} kb_tolerance;

/* ---- tensors -------------------------------------------------------------- */
typedef struct {
    const char *name;
    kb_dtype type;
    int64_t count; /* elements (Q4_K/Q6_K: values, a multiple of 256) */
    uint64_t bytes;
    void *host; /* filled by whoever holds the data */
} kb_tensor;

/* The reference of one output: the exact value and the error magnitude per element. */
typedef struct {
    double *ref, *mag;
} kb_ref_out;

#define KB_MAX_IN 6
#define KB_MAX_OUT 2
#define KB_MAX_DIMS 6

typedef struct kb_op {
    const char *name;
    const char *summary;
    /* The shape: size parameters in the order `--shape AxBxC` writes them (the
     * row's label); the last `optional_dims` may be left out (their defaults). */
    kb_param dims[KB_MAX_DIMS];
    int n_dims, optional_dims;
    const char *dims_text; /* "MxNxK" for messages and --list-ops */
    uint32_t params;       /* the other parameters it reads, KB_PBIT(KB_P_EPS) | ... */
    int n_in, n_out;

    void (*defaults)(kb_case *c); /* parameter defaults (sizes stay 0 unless optional) */
    /* Sizes/params this op cannot take at all: a usage error (exit 2). */
    int (*validate)(const kb_case *c, char *msg);
    /* The one number `--shape 3584` names (gemm: M = K; rmsnorm: hidden...). */
    int (*matches_leading)(const kb_case *c, int64_t v);
    /* Inputs then outputs (name, type, count), n_in + n_out of them. */
    void (*tensors)(const kb_case *c, kb_tensor *t);
    /* Fill the inputs (allocated) from the case's seed: realistic, never zeros. */
    void (*generate)(const kb_case *c, kb_tensor *in);
    /* fp64 reference of every output, from the inputs as generated (or as given). */
    void (*reference)(const kb_case *c, const kb_tensor *in, kb_ref_out *out);
    double (*flops)(const kb_case *c);
    double (*bytes)(const kb_case *c); /* each input read once, each output written once */
    /* Tolerance of output `out` for an implementation accumulating with unit
     * roundoff u_acc (fp32 unless the variant says otherwise). */
    void (*tolerance)(const kb_case *c, int out, double u_acc, kb_tolerance *t);
} kb_op;

extern const kb_op *const kb_ops[KB_OP_COUNT];
const kb_op *kb_op_find(const char *name);
int kb_op_lookup(const char *name, kb_op_id *id); /* 0 when found */
const char *kb_op_name(kb_op_id op);

/* A case of `op` with every parameter at the op's default. */
void kb_case_init(kb_case *c, kb_op_id op);
/* The label "AxBxC" from the op's dims. */
void kb_case_label(kb_case *c);
/* Parse "AxBxC" into the op's dims; 0, or -1 with msg naming the expected form. */
int kb_case_parse_shape(kb_case *c, const char *spec, char *msg);
/* Inputs then outputs, with bytes; KB_OK, or KB_ERROR when a size overflows. */
int kb_case_tensors(const kb_case *c, kb_tensor *t, char *msg);

#endif
