/* shapes.h - shape tables (the .tsv files in shapes/) and --shape specs. */
#ifndef KB_SHAPES_H
#define KB_SHAPES_H

#include "bench/op.h"

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
/* The same from `len` bytes of text (any bytes; NUL is an error), `name` standing
 * for the path in messages: what kb_shapes_load does after opening the file, and
 * what the fuzz target tests/fuzz/fuzz_shape_table.c drives. */
int kb_shapes_parse(const char *text, size_t len, const char *name, const int *want_ops, kb_case_list *out,
                    char *msg);
/* Names of the tables in the shapes directory, one per line, into buf. */
void kb_shapes_list(char *buf, size_t n);

#endif
