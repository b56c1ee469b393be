/* shapes.c - shape tables: whitespace-separated columns, one case per row.
 *
 * Format (shapes/README.md): '#' starts a comment; the first non-comment line names
 * the columns, `op` first, the others case parameters by name (bench/op.c's table);
 * '-' leaves a field at the op's default. A value for a parameter the op does not
 * read is an error, so a table cannot say something that is silently ignored. */
#include "bench/shapes.h"

#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kb_case_list_add(kb_case_list *l, const kb_case *c) {
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->cases = realloc(l->cases, (size_t)l->cap * sizeof *l->cases);
    }
    l->cases[l->count++] = *c;
}

void kb_case_list_free(kb_case_list *l) {
    free(l->cases);
    memset(l, 0, sizeof *l);
}

/* The shapes directory: $KB_SHAPES_DIR, else <dir of the executable>/../shapes,
 * else the source tree kbench was configured from. */
static int shapes_dir(char *dir, size_t n) {
    const char *env = getenv("KB_SHAPES_DIR");
    if (env && *env) {
        snprintf(dir, n, "%s", env);
        return 0;
    }
    char exe[PATH_MAX - 16];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(dir, n, "%s/../shapes", exe);
            if (access(dir, R_OK) == 0) return 0;
        }
    }
#ifdef KB_SOURCE_DIR
    snprintf(dir, n, "%s/shapes", KB_SOURCE_DIR);
    if (access(dir, R_OK) == 0) return 0;
#endif
    return -1;
}

int kb_shapes_resolve(const char *name, char *path, size_t n, char *msg) {
    if (strchr(name, '/') || strstr(name, ".tsv")) {
        snprintf(path, n, "%s", name);
        if (access(path, R_OK) != 0)
            return kb_fail(msg, -1, "cannot read shape table '%s': %s", name, strerror(errno));
        return 0;
    }
    char dir[PATH_MAX];
    if (shapes_dir(dir, sizeof dir) != 0)
        return kb_fail(msg, -1, "shape table '%s': no shapes directory found (set KB_SHAPES_DIR)", name);
    snprintf(path, n, "%s/%s.tsv", dir, name);
    if (access(path, R_OK) != 0) return kb_fail(msg, -1, "unknown shape table '%s' (see --list-shapes)", name);
    return 0;
}

void kb_shapes_list(char *buf, size_t n) {
    char dir[PATH_MAX];
    buf[0] = 0;
    if (shapes_dir(dir, sizeof dir) != 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    size_t o = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tsv") == 0 && o < n)
            o += (size_t)snprintf(buf + o, n - o, "%.*s\n", (int)(len - 4), e->d_name);
    }
    closedir(d);
}

#define MAX_COLS (KB_P_COUNT + 1)

static int op_reads(const kb_op *op, kb_param p) {
    if (op->params & KB_PBIT(p)) return 1;
    for (int i = 0; i < op->n_dims; i++)
        if (op->dims[i] == p) return 1;
    return 0;
}

/* One line of f into buf without its newline, NUL-terminated: its length, or -1 at
 * the end of the input, -2 when it is longer than cap - 2 characters, -3 when it
 * holds a NUL byte, -4 on a read error. Reading stops at the first character too
 * many, so input without newlines (/dev/zero) cannot make it read without bound. */
static long read_line(FILE *f, char *buf, size_t cap) {
    size_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (ch == 0) return -3;
        if (n + 2 >= cap) return -2;
        buf[n++] = (char)ch;
    }
    if (ch == EOF && ferror(f)) return -4;
    if (ch == EOF && n == 0) return -1;
    buf[n] = 0;
    return (long)n;
}

/* The table in f; `name` (the file's path) prefixes every message. */
static int parse_table(FILE *f, const char *path, const int *want, kb_case_list *out, char *msg) {
    char line[1024];
    int lineno = 0, ncols = 0, have_header = 0;
    kb_param map[MAX_COLS];
    long len;
    while ((len = read_line(f, line, sizeof line)) != -1) {
        lineno++;
        if (len == -2) return kb_fail(msg, -1, "%s:%d: line longer than %d characters", path, lineno, (int)sizeof line - 2);
        if (len == -3) return kb_fail(msg, -1, "%s:%d: a NUL byte in the line", path, lineno);
        if (len == -4) return kb_fail(msg, -1, "%s:%d: read error: %s", path, lineno, strerror(errno));
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *tok[MAX_COLS];
        int nt = 0;
        for (char *save, *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
            if (nt == MAX_COLS) return kb_fail(msg, -1, "%s:%d: too many columns", path, lineno);
            tok[nt++] = t;
        }
        if (nt == 0) continue;
        if (!have_header) {
            if (strcmp(tok[0], "op") != 0) return kb_fail(msg, -1, "%s:%d: the first column must be 'op'", path, lineno);
            for (int i = 1; i < nt; i++) {
                if (!kb_param_find(tok[i], &map[i]))
                    return kb_fail(msg, -1, "%s:%d: unknown column '%s'", path, lineno, tok[i]);
                for (int j = 1; j < i; j++)
                    if (map[j] == map[i]) return kb_fail(msg, -1, "%s:%d: column '%s' twice", path, lineno, tok[i]);
            }
            ncols = nt;
            have_header = 1;
            continue;
        }
        if (nt != ncols) return kb_fail(msg, -1, "%s:%d: %d fields, the header has %d", path, lineno, nt, ncols);
        kb_op_id id;
        if (kb_op_lookup(tok[0], &id) != 0) return kb_fail(msg, -1, "%s:%d: unknown op '%s'", path, lineno, tok[0]);
        const kb_op *op = kb_ops[id];
        kb_case c;
        kb_case_init(&c, id);
        for (int i = 1; i < nt; i++) {
            if (strcmp(tok[i], "-") == 0) continue;
            if (!op_reads(op, map[i]))
                return kb_fail(msg, -1, "%s:%d: %s takes no '%s' (leave it '-')", path, lineno, op->name,
                               kb_params[map[i]].name);
            if (kb_param_parse(&c, map[i], tok[i]) != 0)
                return kb_fail(msg, -1, "%s:%d: bad %s '%s'", path, lineno, kb_params[map[i]].name, tok[i]);
        }
        char why[KB_MSG];
        kb_case_label(&c);
        if (op->validate(&c, why) != KB_OK) return kb_fail(msg, -1, "%s:%d: %s", path, lineno, why);
        if (!want || want[c.op]) kb_case_list_add(out, &c);
    }
    if (!have_header) return kb_fail(msg, -1, "%s: no header line", path);
    return 0;
}

int kb_shapes_load(const char *path, const int *want, kb_case_list *out, char *msg) {
    FILE *f = fopen(path, "r");
    if (!f) return kb_fail(msg, -1, "cannot read shape table '%s': %s", path, strerror(errno));
    const int rc = parse_table(f, path, want, out, msg);
    fclose(f);
    return rc;
}

int kb_shapes_parse(const char *text, size_t len, const char *name, const int *want, kb_case_list *out, char *msg) {
    /* fmemopen only reads through the buffer ("r"), so dropping const is safe */
    FILE *f = fmemopen((void *)(uintptr_t)text, len, "r");
    if (!f) return kb_fail(msg, -1, "%s: cannot read the table from memory: %s", name, strerror(errno));
    const int rc = parse_table(f, name, want, out, msg);
    fclose(f);
    return rc;
}
