/* shapes.c - shape tables: whitespace-separated columns, one case per row.
 *
 * Format (shapes/README.md): '#' starts a comment; the first non-comment line
 * names the columns; '-' leaves a field at its default. Columns:
 *   op m n k heads kv_heads head_dim kv_len a_type b_type out_type scale eps theta max_pos
 */
#include "bench/shapes.h"

#include "bench/ops.h"

#include <errno.h>
#include <dirent.h>
#include <limits.h>
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

/* Strict number parsing: the whole token must be a number. */
static int parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *v = x;
    return 0;
}
static int parse_f64(const char *s, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end) return -1;
    *v = x;
    return 0;
}

enum { C_OP, C_M, C_N, C_K, C_HEADS, C_KVHEADS, C_HEADDIM, C_KVLEN, C_ATYPE, C_BTYPE, C_OUTTYPE, C_SCALE, C_EPS,
       C_THETA, C_MAXPOS, C_COUNT };
static const char *const col_names[C_COUNT] = {"op",     "m",      "n",        "k",     "heads", "kv_heads",
                                               "head_dim", "kv_len", "a_type", "b_type", "out_type", "scale",
                                               "eps",    "theta",  "max_pos"};

static int parse_scale(const char *s, kb_scale_mode *m) {
    for (int i = 0; i < KB_SCALE_COUNT; i++)
        if (strcmp(s, kb_scale_mode_name((kb_scale_mode)i)) == 0) {
            *m = (kb_scale_mode)i;
            return 0;
        }
    return -1;
}

int kb_shapes_load(const char *path, const int *want, kb_case_list *out, char *msg) {
    FILE *f = fopen(path, "r");
    if (!f) return kb_fail(msg, -1, "cannot read shape table '%s': %s", path, strerror(errno));
    char line[1024];
    int lineno = 0, map[C_COUNT], ncols = 0, have_header = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *tok[C_COUNT + 1];
        int nt = 0;
        for (char *save, *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
            if (nt == C_COUNT) {
                rc = kb_fail(msg, -1, "%s:%d: too many columns", path, lineno);
                goto done;
            }
            tok[nt++] = t;
        }
        if (nt == 0) continue;
        if (!have_header) {
            for (int i = 0; i < nt; i++) {
                map[i] = -1;
                for (int j = 0; j < C_COUNT; j++)
                    if (strcmp(tok[i], col_names[j]) == 0) map[i] = j;
                if (map[i] < 0) {
                    rc = kb_fail(msg, -1, "%s:%d: unknown column '%s'", path, lineno, tok[i]);
                    goto done;
                }
            }
            if (map[0] != C_OP) {
                rc = kb_fail(msg, -1, "%s:%d: the first column must be 'op'", path, lineno);
                goto done;
            }
            ncols = nt;
            have_header = 1;
            continue;
        }
        if (nt != ncols) {
            rc = kb_fail(msg, -1, "%s:%d: %d fields, the header has %d", path, lineno, nt, ncols);
            goto done;
        }
        const kb_op *op = kb_op_find(tok[0]);
        if (!op) {
            rc = kb_fail(msg, -1, "%s:%d: unknown op '%s'", path, lineno, tok[0]);
            goto done;
        }
        kb_case c;
        memset(&c, 0, sizeof c);
        c.op = op->id;
        kb_case_defaults(&c);
        for (int i = 1; i < nt; i++) {
            const char *s = tok[i];
            if (strcmp(s, "-") == 0) continue;
            int bad = 0;
            switch (map[i]) {
            case C_M: bad = parse_i64(s, &c.m); break;
            case C_N: bad = parse_i64(s, &c.n); break;
            case C_K: bad = parse_i64(s, &c.k); break;
            case C_HEADS: bad = parse_i64(s, &c.heads); break;
            case C_KVHEADS: bad = parse_i64(s, &c.kv_heads); break;
            case C_HEADDIM: bad = parse_i64(s, &c.head_dim); break;
            case C_KVLEN: bad = parse_i64(s, &c.kv_len); break;
            case C_MAXPOS: bad = parse_i64(s, &c.max_pos); break;
            case C_ATYPE: bad = kb_dtype_parse(s, &c.a_type); break;
            case C_BTYPE: bad = kb_dtype_parse(s, &c.b_type); break;
            case C_OUTTYPE: bad = kb_dtype_parse(s, &c.out_type); break;
            case C_SCALE: bad = parse_scale(s, &c.scale_mode); break;
            case C_EPS: bad = parse_f64(s, &c.eps); break;
            case C_THETA: bad = parse_f64(s, &c.theta); break;
            default: break;
            }
            if (bad) {
                rc = kb_fail(msg, -1, "%s:%d: bad %s '%s'", path, lineno, col_names[map[i]], s);
                goto done;
            }
        }
        char why[KB_MSG];
        if (op->validate(&c, why) != KB_OK) {
            rc = kb_fail(msg, -1, "%s:%d: %s", path, lineno, why);
            goto done;
        }
        kb_shape_format(&c, c.label, sizeof c.label);
        if (!want || want[c.op]) kb_case_list_add(out, &c);
    }
    if (!have_header) rc = kb_fail(msg, -1, "%s: no header line", path);
done:
    fclose(f);
    return rc;
}

int kb_shape_parse_explicit(kb_op_id op, const char *spec, kb_case *c, char *msg) {
    int64_t v[6];
    int nv = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || nv == 6) return kb_fail(msg, -1, "malformed shape '%s'", spec);
        v[nv++] = x;
        p = end;
        if (*p == 'x') {
            p++;
            if (!*p) return kb_fail(msg, -1, "malformed shape '%s'", spec);
        } else if (*p) {
            return kb_fail(msg, -1, "malformed shape '%s'", spec);
        }
    }
    const char *want;
    switch (op) {
    case KB_OP_GEMM_FP8:
        want = "MxNxK";
        if (nv != 3) break;
        c->m = v[0], c->n = v[1], c->k = v[2];
        return 0;
    case KB_OP_DEQUANT_Q4K:
        want = "MxK";
        if (nv != 2) break;
        c->m = v[0], c->k = v[1];
        return 0;
    case KB_OP_RMSNORM:
        want = "NxK";
        if (nv != 2) break;
        c->n = v[0], c->k = v[1];
        return 0;
    case KB_OP_ROPE_NEOX:
        want = "NxHEADSxHEAD_DIM";
        if (nv != 3) break;
        c->n = v[0], c->heads = v[1], c->head_dim = v[2];
        return 0;
    case KB_OP_ATTENTION:
        want = "NxKV_LENxHEADSxKV_HEADSxHEAD_DIM";
        if (nv != 5) break;
        c->n = v[0], c->kv_len = v[1], c->heads = v[2], c->kv_heads = v[3], c->head_dim = v[4];
        return 0;
    case KB_OP_EMBED:
        want = "NxK or NxKxVOCAB";
        if (nv != 2 && nv != 3) break;
        c->n = v[0], c->k = v[1], c->m = nv == 3 ? v[2] : 152064;
        return 0;
    default: want = "?";
    }
    return kb_fail(msg, -1, "malformed shape '%s' for %s: expected %s", spec, kb_op_name(op), want);
}

int kb_shape_matches_leading(const kb_case *c, int64_t v) {
    switch (c->op) {
    case KB_OP_GEMM_FP8: return c->m == v && c->k == v;
    case KB_OP_DEQUANT_Q4K: return c->m == v;
    case KB_OP_RMSNORM:
    case KB_OP_EMBED: return c->k == v;
    case KB_OP_ROPE_NEOX:
    case KB_OP_ATTENTION: return c->heads * c->head_dim == v;
    default: return 0;
    }
}

void kb_shape_format(const kb_case *c, char *buf, size_t n) {
    long long m = c->m, nn = c->n, k = c->k;
    switch (c->op) {
    case KB_OP_GEMM_FP8: snprintf(buf, n, "%lldx%lldx%lld", m, nn, k); break;
    case KB_OP_DEQUANT_Q4K: snprintf(buf, n, "%lldx%lld", m, k); break;
    case KB_OP_RMSNORM: snprintf(buf, n, "%lldx%lld", nn, k); break;
    case KB_OP_ROPE_NEOX: snprintf(buf, n, "%lldx%lldx%lld", nn, (long long)c->heads, (long long)c->head_dim); break;
    case KB_OP_ATTENTION:
        snprintf(buf, n, "%lldx%lldx%lldx%lldx%lld", nn, (long long)c->kv_len, (long long)c->heads,
                 (long long)c->kv_heads, (long long)c->head_dim);
        break;
    case KB_OP_EMBED: snprintf(buf, n, "%lldx%lldx%lld", nn, k, m); break;
    default: buf[0] = 0;
    }
}
