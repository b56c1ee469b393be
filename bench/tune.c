/* tune.c - tunable points (kbench.h, --tune): the name of a variant run at a point,
 * "V[NAME=value,...]" with the names sorted, written and read back here only. kbench
 * writes it (a backend's variant list), the cuda worker reads it (prepare rebuilds the
 * variant from it), --variant and --resume compare it: one spelling everywhere. */
#include "bench/kbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kb_tune_name_ok(const char *s, size_t len) {
    if (len == 0 || len >= KB_TUNE_NAME_LEN || s[0] < 'A' || s[0] > 'Z') return 0;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
    return 1;
}

int kb_tune_set(kb_tune_point *p, const char *name, int value) {
    if (p->n == KB_TUNE_NAMES || kb_tune_get(p, name)) return -1;
    int i = p->n;
    for (; i > 0 && strcmp(p->name[i - 1], name) > 0; i--) { /* insertion keeps them sorted */
        memcpy(p->name[i], p->name[i - 1], KB_TUNE_NAME_LEN);
        p->value[i] = p->value[i - 1];
    }
    snprintf(p->name[i], KB_TUNE_NAME_LEN, "%s", name);
    p->value[i] = value;
    p->n++;
    return 0;
}

const int *kb_tune_get(const kb_tune_point *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->name[i], name)) return &p->value[i];
    return NULL;
}

int kb_tune_equal(const kb_tune_point *a, const kb_tune_point *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->name[i], b->name[i]) || a->value[i] != b->value[i]) return 0;
    return 1;
}

int kb_tune_name(const char *base, const kb_tune_point *p, char *out, size_t n) {
    size_t o = (size_t)snprintf(out, n, "%s", base);
    for (int i = 0; i < p->n && o < n; i++)
        o += (size_t)snprintf(out + o, n - o, "%c%s=%d", i ? ',' : '[', p->name[i], p->value[i]);
    if (p->n && o < n) o += (size_t)snprintf(out + o, n - o, "]");
    return o < n ? 0 : -1;
}

int kb_tune_split(const char *name, char *base, size_t base_len, kb_tune_point *p, char *msg) {
    memset(p, 0, sizeof *p);
    const char *open = strchr(name, '[');
    const size_t blen = open ? (size_t)(open - name) : strlen(name);
    if (blen == 0 || blen >= base_len) return kb_failn(msg, KB_MSG, "'%s': no variant name before '['", name);
    memcpy(base, name, blen);
    base[blen] = 0;
    if (!open) return 0;
    const char *s = open + 1;
    for (;;) {
        const char *eq = strchr(s, '=');
        if (!eq || !kb_tune_name_ok(s, (size_t)(eq - s)))
            return kb_failn(msg, KB_MSG, "'%s': expected NAME=value inside [...]", name);
        char tn[KB_TUNE_NAME_LEN];
        memcpy(tn, s, (size_t)(eq - s));
        tn[eq - s] = 0;
        char *end;
        errno = 0;
        const long v = strtol(eq + 1, &end, 10);
        if (eq[1] < '0' || eq[1] > '9' || (eq[1] == '0' && end != eq + 2) || errno || v < 0 || v > KB_TUNE_MAX ||
            (*end != ',' && *end != ']'))
            return kb_failn(msg, KB_MSG, "'%s': %s needs an integer in [0, %d]", name, tn, KB_TUNE_MAX);
        if (kb_tune_set(p, tn, (int)v))
            return kb_failn(msg, KB_MSG, "'%s': %s set twice, or more than %d tunables", name, tn, KB_TUNE_NAMES);
        if (*end == ']') {
            if (end[1]) return kb_failn(msg, KB_MSG, "'%s': text after ']'", name);
            return 0;
        }
        s = end + 1;
    }
}

/* The tunable called `name` in "A=1 B=2": its value text, or NULL. */
static const char *tunable_in(const char *tunables, const char *name) {
    const size_t len = strlen(name);
    for (const char *s = tunables; s && *s; s += strcspn(s, " "), s += strspn(s, " "))
        if (!strncmp(s, name, len) && s[len] == '=') return s + len + 1;
    return NULL;
}

const char *kb_tune_lacks(const kb_tune_point *p, const char *tunables) {
    for (int i = 0; i < p->n; i++)
        if (!tunable_in(tunables, p->name[i])) return p->name[i];
    return NULL;
}

void kb_tune_apply(const char *tunables, const kb_tune_point *p, char *out, size_t n) {
    size_t o = 0;
    out[0] = 0;
    for (const char *s = tunables; *s && o < n; s += strspn(s, " ")) {
        const size_t len = strcspn(s, " "), nlen = strcspn(s, "=");
        char name[KB_TUNE_NAME_LEN];
        snprintf(name, sizeof name, "%.*s", (int)(nlen < len ? nlen : len), s);
        const int *v = kb_tune_get(p, name);
        if (v) o += (size_t)snprintf(out + o, n - o, "%s%s=%d", o ? " " : "", name, *v);
        else o += (size_t)snprintf(out + o, n - o, "%s%.*s", o ? " " : "", (int)len, s);
        s += len;
    }
}

int kb_variant_item(const char **s, char *item, size_t n) {
    const char *p = *s;
    if (!*p) return 0;
    size_t len = strcspn(p, ",[");
    if (p[len] == '[') {
        const char *close = strchr(p + len, ']');
        if (!close || (close[1] && close[1] != ',')) return -1;
        len = (size_t)(close + 1 - p);
    }
    if (len >= n) return -1;
    memcpy(item, p, len);
    item[len] = 0;
    *s = p + len + (p[len] == ',');
    return 1;
}

int kb_tune_runs_on(const kb_tune *t, int tunable) {
    if (!t || tunable) return 1;
    for (int i = 0; i < t->n; i++)
        if (t->p[i].n == 0) return 1;
    return 0;
}

/* A plain name or prefix selects the variant's --tune points too, unless the list also
 * names tuned variants: then every item means itself (`a,b[X=1]` is a as written and b
 * at X=1, not both at X=1). */
int kb_variant_matches(const char *filter, const char *name) {
    if (!filter) return 1;
    char item[KB_MSG], ibase[KB_MSG], nbase[KB_MSG];
    kb_tune_point ip, np;
    if (kb_tune_split(name, nbase, sizeof nbase, &np, NULL)) return 0;
    const int exact = strchr(filter, '[') != NULL && np.n > 0; /* a tuned name: only a tuned item takes it */
    const char *s = filter;
    while (kb_variant_item(&s, item, sizeof item) > 0) {
        const size_t len = strlen(item);
        if (len > 0 && item[len - 1] == '*') {
            if (!exact && !strncmp(name, item, len - 1)) return 1;
        } else if (strchr(item, '[')) {
            if (!kb_tune_split(item, ibase, sizeof ibase, &ip, NULL) && !strcmp(ibase, nbase) &&
                kb_tune_equal(&ip, &np))
                return 1;
        } else if (!strcmp(item, name) || (!exact && !strcmp(item, nbase))) {
            return 1;
        }
    }
    return 0;
}
