/* ops.h - the op registry: what each op is, independent of any backend.
 * An op knows its tensors, how to generate realistic inputs, which reference
 * computes it, how many flops and bytes it needs at minimum, and how far a
 * float implementation may honestly drift from the fp64 reference. */
#ifndef KB_OPS_H
#define KB_OPS_H

#include "bench/kbench.h"

/* Per-element tolerance: |out_i - ref_i| <= rel * |ref_i| + acc * mag_i + abs.
 * `formula` says where the numbers come from, for the row and the docs. */
typedef struct {
    double rel;
    double acc;
    double abs;
    char formula[160];
} kb_tolerance;

typedef struct {
    kb_op_id id;
    const char *name;
    const char *summary;
    /* Sizes/params this op cannot take at all: a usage error (exit 2). */
    int (*validate)(const kb_case *c, char *msg);
    /* Input tensors (name, type, count) and the output's, for this case. */
    int (*tensors)(const kb_case *c, kb_tensor *in, kb_tensor *out);
    /* Fill the inputs (already allocated) from the case's seed. */
    void (*generate)(const kb_case *c, kb_tensor *in);
    /* fp64 reference and the error magnitude mag (see ref/ref.h). */
    void (*reference)(const kb_case *c, kb_tensor *in, double *ref, double *mag);
    double (*flops)(const kb_case *c);
    double (*bytes)(const kb_case *c);
    /* u_acc: the implementation's accumulator unit roundoff (fp32 unless the
     * variant says otherwise); in: the generated inputs. */
    void (*tolerance)(const kb_case *c, const kb_tensor *in, double u_acc, kb_tolerance *t);
} kb_op;

extern const kb_op kb_ops[KB_OP_COUNT];
const kb_op *kb_op_find(const char *name);
/* Defaults for the op's parameters (eps 1e-6, theta 1e6, types...). */
void kb_case_defaults(kb_case *c);

/* Unit roundoff of a float type (2^-24 for f32, 2^-11 f16, 2^-8 bf16). */
double kb_unit_roundoff(kb_dtype t);
/* Largest finite value of a float output type. */
double kb_max_finite(kb_dtype t);

/* Seeded generator (splitmix64 to seed xoshiro256**), for inputs and tests. */
typedef struct {
    uint64_t s[4];
} kb_rng;
void kb_rng_seed(kb_rng *r, uint64_t seed, uint64_t stream);
uint64_t kb_rng_next(kb_rng *r);
double kb_rng_uniform(kb_rng *r); /* [0, 1) */
double kb_rng_normal(kb_rng *r);  /* N(0, 1), Box-Muller */

#endif
