/* resume.h - `--resume FILE.csv`: the points a previous run already wrote, so a sweep
 * interrupted at hour two continues instead of restarting. A point is a case (op,
 * shape, every parameter the op reads, seed) on a backend with a variant; a row for it
 * in the file (any verdict) means it is done. */
#ifndef KB_RESUME_H
#define KB_RESUME_H

#include "bench/kbench.h"

#include <stddef.h>

typedef struct kb_resume kb_resume;

/* Read a kbench CSV (this build's schema, KB_SCHEMA_VERSION, or the one before it).
 * NULL with msg when it cannot be read or is not one. */
kb_resume *kb_resume_load(const char *path, char *msg, size_t msg_len);
/* The schema of its rows ("" when it has none): new rows are appended to it only
 * when they are this build's. */
const char *kb_resume_schema(const kb_resume *r);
void kb_resume_free(kb_resume *r);
int kb_resume_rows(const kb_resume *r);
/* Is there a row for this case on this backend with this variant (NULL: any variant)? */
int kb_resume_has(const kb_resume *r, const kb_case *c, const char *backend, const char *variant);

/* One CSV record from `line` into at most max fields (quotes as RFC 4180: "" inside a
 * quoted field). Returns the field count, or -1 for a malformed record. The fields
 * point into `line`, which is modified. */
int kb_csv_split(char *line, char **fields, int max);

#endif
