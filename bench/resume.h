/* resume.h - `--resume FILE.csv`: the points a previous run already wrote, so a sweep
 * interrupted at hour two continues instead of restarting; and, for `kbench forward
 * --prefer-from`, which variant the file timed fastest at each op and shape. A point is a
 * case (op, shape, every parameter the op reads, seed) on a backend with a variant; a row
 * for it in the file (any verdict) means it is done. */
#ifndef KB_RESUME_H
#define KB_RESUME_H

#include "bench/kbench.h"

#include <stddef.h>

typedef struct kb_resume kb_resume;

/* Read a kbench CSV (this build's schema, KB_SCHEMA_VERSION, or the one before it).
 * NULL with msg, which starts with `what` (the option: "--resume"), when it cannot be
 * read or is not one. */
kb_resume *kb_resume_load(const char *path, const char *what, char *msg, size_t msg_len);
/* The schema of its rows ("" when it has none): new rows are appended to it only
 * when they are this build's. */
const char *kb_resume_schema(const kb_resume *r);
void kb_resume_free(kb_resume *r);
int kb_resume_rows(const kb_resume *r);
/* Is there a row for this case on this backend with this variant (NULL: any variant)? */
int kb_resume_has(const kb_resume *r, const kb_case *c, const char *backend, const char *variant);
/* `kbench forward --prefer-from FILE.csv`: the variants the file timed at this case's op
 * and shape on this backend (passing rows, any types, parameters and seed), fastest
 * median first, each once: up to max names (pointers into r) into out; how many. */
int kb_resume_fastest(const kb_resume *r, const kb_case *c, const char *backend, const char **out, int max);

/* One CSV record from `line` into at most max fields (quotes as RFC 4180: "" inside a
 * quoted field). Returns the field count, or -1 for a malformed record. The fields
 * point into `line`, which is modified. */
int kb_csv_split(char *line, char **fields, int max);

#endif
