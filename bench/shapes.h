/* shapes.h - shape tables (the .tsv files in shapes/) and --shape specs. */
#ifndef KB_SHAPES_H
#define KB_SHAPES_H

#include "bench/kbench.h"

typedef struct {
    kb_case *cases;
    int count, cap;
} kb_case_list;

void kb_case_list_add(kb_case_list *l, const kb_case *c);
void kb_case_list_free(kb_case_list *l);

/* Resolve a table name ("smoke", "qwen2.5-7b") or a file path to a readable
 * path; 0 on success, else msg says why. */
int kb_shapes_resolve(const char *name_or_file, char *path, size_t n, char *msg);
/* Parse a table. Every row is validated; a malformed row is an error naming
 * the file and line. Rows for ops not in `want` (NULL = all) are dropped. */
int kb_shapes_load(const char *path, const int *want_ops, kb_case_list *out, char *msg);
/* Names of the tables in the shapes directory, one per line, into buf. */
void kb_shapes_list(char *buf, size_t n);

/* A --shape that is one explicit case for `op`, e.g. gemm_fp8 "3584x16x3584"
 * (MxNxK), dequant_q4k "MxK", rmsnorm "NxK", rope_neox "NxHEADSxD",
 * attention "NxKVLENxHEADSxKVHEADSxD", embed "NxK" or "NxKxVOCAB".
 * Returns 0 and fills c (sizes only), or -1 with msg. */
int kb_shape_parse_explicit(kb_op_id op, const char *spec, kb_case *c, char *msg);
/* The leading dimension `--shape 3584` matches: gemm M and K, dequant M,
 * rmsnorm/embed K (hidden), rope/attention heads*head_dim. */
int kb_shape_matches_leading(const kb_case *c, int64_t v);
/* Format the explicit form of a case's shape (the inverse of parse). */
void kb_shape_format(const kb_case *c, char *buf, size_t n);

#endif
