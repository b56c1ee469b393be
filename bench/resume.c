/* resume.c - the points of a previous run's CSV (resume.h). */
#include "bench/resume.h"

#include "bench/op.h"
#include "bench/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A passing, timed row: "op|shape|backend", its variant, its median. */
typedef struct {
    char *key, *variant;
    double us;
} timed_row;

struct kb_resume {
    char **keys; /* sorted: one per row (with its variant) and one per case x backend ("*") */
    int n, cap, rows;
    char schema[32]; /* of the file's rows: this build's, or the one before it */
    timed_row *timed; /* sorted by key, then time */
    int n_timed, cap_timed;
};

const char *kb_resume_schema(const kb_resume *r) { return r->schema; }

int kb_csv_split(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        if (*p == '"') {
            char *out = ++p;
            fields[n++] = out;
            for (;;) {
                if (!*p) return -1; /* unterminated quote */
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            *out = 0;
            if (*p != ',' && *p) return -1;
        } else {
            fields[n++] = p;
            p += strcspn(p, ",");
        }
        if (!*p) return n;
        *p++ = 0;
    }
}

/* "op|shape|seed|param=value...|backend|variant" */
static void case_key(char *key, size_t n, const kb_case *c, const char *backend, const char *variant) {
    const kb_op *op = kb_ops[c->op];
    size_t o = (size_t)snprintf(key, n, "%s|%s|%llu", op->name, c->label, (unsigned long long)c->seed);
    for (int p = 0; p < KB_P_COUNT && o < n; p++) {
        if (!(op->params & KB_PBIT(p))) continue;
        char v[64];
        kb_param_format(c, (kb_param)p, v, sizeof v);
        o += (size_t)snprintf(key + o, n - o, "|%s=%s", kb_params[p].name, v);
    }
    if (o < n) snprintf(key + o, n - o, "|%s|%s", backend, variant ? variant : "*");
}

static int add_key(kb_resume *r, const char *key) {
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 256;
        char **k = realloc(r->keys, (size_t)cap * sizeof *k);
        if (!k) return -1;
        r->keys = k;
        r->cap = cap;
    }
    if (!(r->keys[r->n] = strdup(key))) return -1;
    r->n++;
    return 0;
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "op|shape|backend": what --prefer-from ranks variants by (any types, parameters, seed) */
static void shape_key(char *key, size_t n, const char *op, const char *shape, const char *backend) {
    snprintf(key, n, "%s|%s|%s", op, shape, backend);
}

static int add_timed(kb_resume *r, const char *key, const char *variant, double us) {
    if (r->n_timed == r->cap_timed) {
        int cap = r->cap_timed ? 2 * r->cap_timed : 256;
        timed_row *t = realloc(r->timed, (size_t)cap * sizeof *t);
        if (!t) return -1;
        r->timed = t;
        r->cap_timed = cap;
    }
    timed_row *t = &r->timed[r->n_timed];
    t->key = strdup(key);
    t->variant = strdup(variant);
    t->us = us;
    if (!t->key || !t->variant) return free(t->key), free(t->variant), -1;
    r->n_timed++;
    return 0;
}

static int cmp_timed(const void *a, const void *b) {
    const timed_row *x = a, *y = b;
    const int c = strcmp(x->key, y->key);
    if (c) return c;
    if (x->us != y->us) return x->us < y->us ? -1 : 1;
    return strcmp(x->variant, y->variant);
}

void kb_resume_free(kb_resume *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free(r->keys[i]);
    for (int i = 0; i < r->n_timed; i++) free(r->timed[i].key), free(r->timed[i].variant);
    free(r->keys);
    free(r->timed);
    free(r);
}

int kb_resume_rows(const kb_resume *r) { return r->rows; }

#define MAX_FIELDS 128
#define LINE_MAX_BYTES 65536

kb_resume *kb_resume_load(const char *path, const char *what, char *msg, size_t msg_len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msg_len, "%s: cannot read '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    kb_resume *r = calloc(1, sizeof *r);
    char *line = malloc(LINE_MAX_BYTES), *header = malloc(LINE_MAX_BYTES);
    char *fields[MAX_FIELDS], *names[MAX_FIELDS];
    int ncols = 0, lineno = 0, col_op = -1, col_shape = -1, col_seed = -1, col_backend = -1, col_variant = -1;
    int col_verdict = -1, col_time = -1;
    int col_param[KB_P_COUNT];
    if (!r || !line || !header) goto oom;
    for (int p = 0; p < KB_P_COUNT; p++) col_param[p] = -1;
    while (fgets(line, LINE_MAX_BYTES, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') line[--len] = 0;
        else if (!feof(f)) {
            snprintf(msg, msg_len, "%s: %s:%d: line too long", what, path, lineno);
            goto fail;
        }
        if (len && line[len - 1] == '\r') line[--len] = 0;
        if (!len) continue;
        if (!ncols) { /* the header */
            memcpy(header, line, len + 1);
            ncols = kb_csv_split(header, names, MAX_FIELDS);
            for (int i = 0; i < ncols; i++) {
                if (!strcmp(names[i], "op")) col_op = i;
                if (!strcmp(names[i], "shape")) col_shape = i;
                if (!strcmp(names[i], "seed")) col_seed = i;
                if (!strcmp(names[i], "backend")) col_backend = i;
                if (!strcmp(names[i], "variant")) col_variant = i;
                if (!strcmp(names[i], "verdict")) col_verdict = i;
                if (!strcmp(names[i], "time_med_us")) col_time = i;
                for (int p = 0; p < KB_P_COUNT; p++)
                    if (!strcmp(names[i], kb_params[p].column)) col_param[p] = i;
            }
            if (ncols < 0 || strcmp(names[0], "schema") || col_op < 0 || col_shape < 0 || col_seed < 0 ||
                col_backend < 0 || col_variant < 0) {
                snprintf(msg, msg_len, "%s: '%s' is not a kbench CSV (no schema/op/shape/seed/backend header)", what, path);
                goto fail;
            }
            continue;
        }
        int nf = kb_csv_split(line, fields, MAX_FIELDS);
        if (nf != ncols) {
            snprintf(msg, msg_len, "%s: %s:%d: %d fields, the header has %d", what, path, lineno, nf, ncols);
            goto fail;
        }
        /* the previous schema's rows name their points with the same columns */
        if ((strcmp(fields[0], KB_SCHEMA_VERSION) && strcmp(fields[0], KB_SCHEMA_PREVIOUS)) ||
            (r->schema[0] && strcmp(fields[0], r->schema))) {
            snprintf(msg, msg_len, "%s: %s:%d: schema '%s' (this kbench reads %s and %s, one per file)", what, path,
                     lineno, fields[0], KB_SCHEMA_VERSION, KB_SCHEMA_PREVIOUS);
            goto fail;
        }
        snprintf(r->schema, sizeof r->schema, "%s", fields[0]);
        kb_case c;
        kb_op_id id;
        if (kb_op_lookup(fields[col_op], &id) != 0) {
            snprintf(msg, msg_len, "%s: %s:%d: unknown op '%s'", what, path, lineno, fields[col_op]);
            goto fail;
        }
        kb_case_init(&c, id);
        char err[KB_MSG];
        int bad = kb_case_parse_shape(&c, fields[col_shape], err) != 0;
        char *end;
        c.seed = strtoull(fields[col_seed], &end, 10);
        bad |= *end != 0;
        for (int p = 0; p < KB_P_COUNT && !bad; p++)
            if ((kb_ops[id]->params & KB_PBIT(p)) && col_param[p] >= 0)
                bad = kb_param_parse(&c, (kb_param)p, fields[col_param[p]]) != 0;
        if (bad) {
            snprintf(msg, msg_len, "%s: %s:%d: a case kbench cannot read back", what, path, lineno);
            goto fail;
        }
        kb_case_label(&c);
        char key[1024];
        case_key(key, sizeof key, &c, fields[col_backend], fields[col_variant]);
        if (add_key(r, key)) goto oom;
        case_key(key, sizeof key, &c, fields[col_backend], NULL);
        if (add_key(r, key)) goto oom;
        if (col_verdict >= 0 && col_time >= 0 && !strcmp(fields[col_verdict], "pass")) {
            const double us = strtod(fields[col_time], &end);
            shape_key(key, sizeof key, fields[col_op], c.label, fields[col_backend]);
            if (*end == 0 && end != fields[col_time] && us > 0 && add_timed(r, key, fields[col_variant], us)) goto oom;
        }
        r->rows++;
    }
    if (!ncols) {
        snprintf(msg, msg_len, "%s: '%s' is empty (no header)", what, path);
        goto fail;
    }
    qsort(r->keys, (size_t)r->n, sizeof *r->keys, cmp_key);
    if (r->n_timed) qsort(r->timed, (size_t)r->n_timed, sizeof *r->timed, cmp_timed);
    free(line);
    free(header);
    fclose(f);
    return r;
oom:
    snprintf(msg, msg_len, "%s: out of memory reading '%s'", what, path);
fail:
    free(line);
    free(header);
    fclose(f);
    kb_resume_free(r);
    return NULL;
}

int kb_resume_has(const kb_resume *r, const kb_case *c, const char *backend, const char *variant) {
    if (!r) return 0;
    char key[1024];
    const char *k = key;
    case_key(key, sizeof key, c, backend, variant);
    return bsearch(&k, r->keys, (size_t)r->n, sizeof *r->keys, cmp_key) != NULL;
}

int kb_resume_fastest(const kb_resume *r, const kb_case *c, const char *backend, const char **out, int max) {
    if (!r || !r->n_timed) return 0;
    char key[1024];
    shape_key(key, sizeof key, kb_ops[c->op]->name, c->label, backend);
    int lo = 0, hi = r->n_timed; /* the first row of key */
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (strcmp(r->timed[mid].key, key) < 0) lo = mid + 1;
        else hi = mid;
    }
    int n = 0;
    for (int i = lo; i < r->n_timed && n < max && !strcmp(r->timed[i].key, key); i++) {
        int seen = 0;
        for (int j = 0; j < n && !seen; j++) seen = !strcmp(out[j], r->timed[i].variant);
        if (!seen) out[n++] = r->timed[i].variant;
    }
    return n;
}
