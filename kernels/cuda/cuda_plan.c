/* cuda_plan.c - the op table of the cuda backend (built from bench/op_list.h), variant
 * lookup, and what every launch plan needs whatever the op (cuda_ops.h): the checks
 * CUDA imposes on any launch and the generic test-only variant. */
#include "kernels/cuda/cuda_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KBCU_OP_ENTRY(name) [KB_OP_##name] = &kbcu_op_##name,
static const kbcu_op *const ops[KB_OP_COUNT] = {KB_OP_LIST(KBCU_OP_ENTRY)};
#undef KBCU_OP_ENTRY

#define KBCU_OP_NAME(name) [KB_OP_##name] = #name,
static const char *const op_names[KB_OP_COUNT] = {KB_OP_LIST(KBCU_OP_NAME)};
#undef KBCU_OP_NAME

const kbcu_op *kbcu_op_of(kb_op_id op) { return (unsigned)op < KB_OP_COUNT ? ops[op] : NULL; }
const char *kbcu_op_name(kb_op_id op) { return (unsigned)op < KB_OP_COUNT ? op_names[op] : "?"; }

/* Test-only variants every op has: the op's first variant that takes the case, then
 * a one-thread kernel (test_fault.cu) writes NaN into the middle element of output
 * 0, so the row must fail on every op (the harness's NaN check, through the cuda
 * backend's memory and download path). */
static const kbcu_variant generic_tests[] = {
    {"test_nan", "test_fault.cu", "(first variant), kb_test_poke", "", 75, 1, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

static int is_generic_test(const kbcu_variant *v) {
    for (int i = 0; generic_tests[i].name; i++)
        if (v == &generic_tests[i]) return 1;
    return 0;
}

int kbcu_list_variants(kb_op_id op, int allow_test, const kbcu_variant **out, int max) {
    const kbcu_op *o = kbcu_op_of(op);
    int n = 0;
    if (!o) return 0;
    const char *e = getenv("KB_CUDA_UNVERIFIED");
    const int allow_unverified = e && strcmp(e, "1") == 0;
    for (int i = 0; o->variants[i].name && n < max; i++)
        if ((allow_test || !o->variants[i].test_only) && (allow_unverified || !o->variants[i].unverified))
            out[n++] = &o->variants[i];
    for (int i = 0; allow_test && generic_tests[i].name && n < max; i++) out[n++] = &generic_tests[i];
    return n;
}

const kbcu_variant *kbcu_find_variant(kb_op_id op, const char *name, int allow_test) {
    const kbcu_variant *list[256];
    const int n = kbcu_list_variants(op, allow_test, list, 256);
    for (int i = 0; i < n; i++)
        if (strcmp(list[i]->name, name) == 0) return list[i];
    return NULL;
}

/* The next "-DNAME=value" option of a -D option string at s: its name into
 * name[KB_TUNE_NAME_LEN] (cut short if longer), *val at its value's text (NULL without
 * '='), *len its length; returns where the next option starts, NULL at the end. */
static const char *next_define(const char *s, char *name, const char **val, size_t *len) {
    s += strspn(s, " ");
    if (!*s) return NULL;
    *len = strcspn(s, " ");
    const char *eq = memchr(s, '=', *len);
    const size_t nlen = (eq ? (size_t)(eq - s) : *len) - (strncmp(s, "-D", 2) ? 0 : 2);
    const char *nstart = strncmp(s, "-D", 2) ? s : s + 2;
    snprintf(name, KB_TUNE_NAME_LEN, "%.*s", (int)nlen, nstart);
    *val = eq ? eq + 1 : NULL;
    return s + *len;
}

int kbcu_def_int(const kbcu_variant *v, const char *name, int fallback) {
    char dn[KB_TUNE_NAME_LEN];
    const char *val;
    size_t len;
    for (const char *s = v && v->defines ? v->defines : ""; (s = next_define(s, dn, &val, &len));)
        if (!strcmp(dn, name) && val) return atoi(val);
    return fallback;
}

/* ---- tunables ------------------------------------------------------------------------- */
const kbcu_tunable *kbcu_find_tunable(kb_op_id op, const char *name) {
    const kbcu_op *o = kbcu_op_of(op);
    for (int i = 0; o && o->tunables && o->tunables[i].name; i++)
        if (!strcmp(o->tunables[i].name, name)) return &o->tunables[i];
    return NULL;
}

int kbcu_tunable_values(const kbcu_tunable *t, int *out, int max) {
    int n = 0;
    for (int v = t->lo; v <= t->hi && n < max; v = t->pow2 ? 2 * v : v + 1)
        if (!t->pow2 || (v & (v - 1)) == 0) out[n++] = v;
    return n;
}

void kbcu_variant_tunables(kb_op_id op, const kbcu_variant *v, char *out, size_t n) {
    char dn[KB_TUNE_NAME_LEN];
    const char *val;
    size_t len, o = 0;
    out[0] = 0;
    for (const char *s = v->defines ? v->defines : ""; (s = next_define(s, dn, &val, &len)) && o < n;)
        if (val && kbcu_find_tunable(op, dn))
            o += (size_t)snprintf(out + o, n - o, "%s%s=%.*s", o ? " " : "", dn, (int)(s - val), val);
}

static int in_range(const kbcu_tunable *t, int v) {
    return v >= t->lo && v <= t->hi && (!t->pow2 || (v & (v - 1)) == 0);
}

int kbcu_resolve_variant(kb_op_id op, const char *name, int allow_test, kbcu_tuned *t, const kbcu_variant **out,
                         char *msg) {
    char base[64], why[KB_MSG];
    kb_tune_point p;
    *out = NULL;
    if (kb_tune_split(name, base, sizeof base, &p, why)) return kb_fail(msg, KB_ERROR, "cuda: variant %s", why);
    const kbcu_variant *v = kbcu_find_variant(op, base, allow_test);
    if (!v) return kb_fail(msg, KB_ERROR, "cuda has no variant '%s' for %s", base, kbcu_op_name(op));
    if (p.n == 0) {
        *out = v;
        return KB_OK;
    }
    memset(t, 0, sizeof *t);
    t->v = *v;
    if (kb_tune_name(base, &p, t->name, sizeof t->name))
        return kb_fail(msg, KB_ERROR, "cuda: the tuned name of %s is longer than %zu", base, sizeof t->name - 1);
    char has[64];
    kbcu_variant_tunables(op, v, has, sizeof has);
    for (int k = 0; k < p.n; k++) {
        const kbcu_tunable *tu = kbcu_find_tunable(op, p.name[k]);
        if (kbcu_def_int(v, p.name[k], -1) == -1)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: %s has no tunable %s (%s%s)", t->name, base, p.name[k],
                           has[0] ? "its tunables: " : "it has none", has);
        if (!tu)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: %s is fixed in %s's kernels (%s's tunables: %s)", t->name,
                           p.name[k], kbcu_op_name(op), base, has[0] ? has : "none");
        if (!in_range(tu, p.value[k]))
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: %s=%d is outside %s's range (%s: %s%d to %d)", t->name,
                           p.name[k], p.value[k], kbcu_op_name(op), tu->what, tu->pow2 ? "a power of two from " : "",
                           tu->lo, tu->hi);
    }
    /* the -D options with the point's values in place: the source of truth the plan
     * reads (kbcu_def_int) and NVRTC compiles */
    char dn[KB_TUNE_NAME_LEN];
    const char *val;
    size_t len, o = 0;
    for (const char *s = v->defines; (s = next_define(s, dn, &val, &len)) && o < sizeof t->defines;) {
        const int *nv = kb_tune_get(&p, dn);
        if (nv) o += (size_t)snprintf(t->defines + o, sizeof t->defines - o, "%s-D%s=%d", o ? " " : "", dn, *nv);
        else o += (size_t)snprintf(t->defines + o, sizeof t->defines - o, "%s%.*s", o ? " " : "", (int)len, s - len);
    }
    if (o >= sizeof t->defines) return kb_fail(msg, KB_ERROR, "%s: -D options longer than %d", t->name, KBCU_OPTS - 1);
    t->v.name = t->name;
    t->v.defines = t->defines;
    const kbcu_op *entry = kbcu_op_of(op);
    const int rc = entry->tune_check ? entry->tune_check(&t->v, msg) : KB_OK;
    if (rc != KB_OK) return rc;
    *out = &t->v;
    return KB_OK;
}

/* ---- building --------------------------------------------------------------------------- */
void kbcu_plan_free(kbcu_plan *p) {
    for (int i = 0; i < p->nlaunch; i++) free(p->launch[i].args);
    free(p->launch);
    free(p->ws_init);
    memset(p, 0, sizeof *p);
}

kbcu_launch *kbcu_add_launch_module(kbcu_plan *p, const char *source, const char *opts, const char *kernel, int64_t gx,
                                    int64_t gy, int64_t gz, int64_t block) {
    if (p->nlaunch == p->cap) {
        const int cap = p->cap ? 2 * p->cap : 4;
        kbcu_launch *l = realloc(p->launch, (size_t)cap * sizeof *l);
        if (!l) {
            p->oom = 1;
            return NULL;
        }
        p->launch = l;
        p->cap = cap;
    }
    kbcu_launch *l = &p->launch[p->nlaunch++];
    memset(l, 0, sizeof *l);
    snprintf(l->source, sizeof l->source, "%s", source);
    snprintf(l->opts, sizeof l->opts, "%s", opts ? opts : "");
    snprintf(l->kernel, sizeof l->kernel, "%s", kernel);
    l->grid[0] = gx;
    l->grid[1] = gy;
    l->grid[2] = gz;
    l->block[0] = block;
    l->block[1] = l->block[2] = 1;
    return l;
}

kbcu_launch *kbcu_add_launch(kbcu_plan *p, const kbcu_variant *v, const char *kernel, int64_t gx, int64_t gy,
                             int64_t gz, int64_t block) {
    kbcu_launch *l = kbcu_add_launch_module(p, v->source, v->defines, kernel, gx, gy, gz, block);
    if (l) l->pdl = kbcu_def_int(v, "PDL", 0) != 0;
    return l;
}

static void add_arg(kbcu_plan *p, kbcu_launch *l, kbcu_arg a) {
    if (!l) return;
    if (l->nargs == l->cap) {
        const int cap = l->cap ? 2 * l->cap : 8;
        kbcu_arg *n = realloc(l->args, (size_t)cap * sizeof *n);
        if (!n) {
            p->oom = 1;
            return;
        }
        l->args = n;
        l->cap = cap;
    }
    l->args[l->nargs++] = a;
}

void kbcu_arg_tensor_at(kbcu_plan *p, kbcu_launch *l, int tensor, int64_t byte_offset) {
    add_arg(p, l, (kbcu_arg){KBCU_ARG_TENSOR, tensor, byte_offset, 0});
}
void kbcu_arg_tensor(kbcu_plan *p, kbcu_launch *l, int tensor) { kbcu_arg_tensor_at(p, l, tensor, 0); }
void kbcu_arg_ws(kbcu_plan *p, kbcu_launch *l, int64_t byte_offset) {
    add_arg(p, l, (kbcu_arg){KBCU_ARG_WS, -1, byte_offset, 0});
}
void *kbcu_ws_init(kbcu_plan *p, uint64_t bytes) {
    free(p->ws_init);
    p->ws_init_bytes = 0;
    if (!(p->ws_init = calloc(1, bytes ? (size_t)bytes : 1))) {
        p->oom = 1;
        return NULL;
    }
    p->ws_init_bytes = bytes;
    if (p->workspace < bytes) p->workspace = bytes;
    return p->ws_init;
}
void kbcu_arg_i32(kbcu_plan *p, kbcu_launch *l, int64_t v) { add_arg(p, l, (kbcu_arg){KBCU_ARG_I32, -1, v, 0}); }
void kbcu_arg_i64(kbcu_plan *p, kbcu_launch *l, int64_t v) { add_arg(p, l, (kbcu_arg){KBCU_ARG_I64, -1, v, 0}); }
void kbcu_arg_f32(kbcu_plan *p, kbcu_launch *l, double v) { add_arg(p, l, (kbcu_arg){KBCU_ARG_F32, -1, 0, v}); }
void kbcu_arg_f64(kbcu_plan *p, kbcu_launch *l, double v) { add_arg(p, l, (kbcu_arg){KBCU_ARG_F64, -1, 0, v}); }

/* ---- helpers --------------------------------------------------------------------------- */
int kbcu_need_aligned(const kbcu_job *j, int t, int align, const char *why, char *msg) {
    const uint64_t off = j->args[t].view.offset;
    if (off % (uint64_t)align == 0) return KB_OK;
    return kb_fail(msg, KB_NOT_SUPPORTED, "%s %s: tensor %d starts at byte %llu, not a multiple of %d", j->v->name, why,
                   t, (unsigned long long)off, align);
}

uint32_t kbcu_nan_code(kb_dtype t) {
    switch (t) {
    case KB_F16: return 0x7e00u;
    case KB_BF16: return 0x7fc0u;
    case KB_E4M3: return 0x7fu; /* S.1111.111 */
    case KB_E5M2: return 0x7fu; /* exponent 31, mantissa 3 */
    default: return 0x7fc00000u;
    }
}

int kbcu_float_code(kb_dtype t) { return kb_dtype_float_index(t); }

int kbcu_is(const kbcu_variant *v, const char *prefix) { return strncmp(v->name, prefix, strlen(prefix)) == 0; }

/* The alignment a scalar load of one element needs. */
static int element_align(kb_dtype t) {
    switch (t) {
    case KB_F32:
    case KB_I32:
    case KB_Q4K: return 4; /* the Q4_K kernels read the quants as 32-bit words */
    case KB_F16:
    case KB_BF16:
    case KB_Q6K: return 2;
    default: return 1;
    }
}

/* ---- the checks of every plan ------------------------------------------------------------ */
static int finish(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const int ntensors = j->n_in + j->n_out;
    if (p->oom) return kb_fail(msg, KB_ERROR, "out of host memory while planning");
    if (p->nlaunch == 0) return kb_fail(msg, KB_ERROR, "%s: the plan has no launch", j->v->name);
    for (int i = 0; i < p->nlaunch; i++) {
        const kbcu_launch *l = &p->launch[i];
        /* CUDA's limits: grid x < 2^31, y and z < 2^16, at most 1024 threads a block */
        if (l->grid[0] < 1 || l->grid[1] < 1 || l->grid[2] < 1)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: empty grid", l->kernel);
        if (l->grid[0] > 2147483647LL || l->grid[1] > 65535 || l->grid[2] > 65535)
            return kb_fail(msg, KB_NOT_SUPPORTED,
                           "%s: grid %lldx%lldx%lld beyond CUDA's limits (x < 2^31, y, z <= 65535)", l->kernel,
                           (long long)l->grid[0], (long long)l->grid[1], (long long)l->grid[2]);
        const int64_t threads = l->block[0] * l->block[1] * l->block[2];
        if (l->block[0] < 1 || l->block[1] < 1 || l->block[2] < 1 || threads > 1024)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: block of %lld threads", l->kernel, (long long)threads);
        /* griddepcontrol, which a kernel launched with PDL=1 waits with, is sm_90's */
        if (l->pdl && j->dev.sm < 90)
            return kb_fail(msg, KB_NOT_SUPPORTED,
                           "%s: PDL=1 (programmatic dependent launch) needs sm_90 (device: %d.%d)", l->kernel,
                           j->dev.sm / 10, j->dev.sm % 10);
        if (l->smem < 0 || l->smem > j->dev.smem_optin)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s needs %lld bytes of shared memory (device: %d)", l->kernel,
                           (long long)l->smem, j->dev.smem_optin);
        for (int a = 0; a < l->nargs; a++) {
            const kbcu_arg *g = &l->args[a];
            if (g->kind == KBCU_ARG_I32 && (g->i < INT32_MIN || g->i > INT32_MAX))
                return kb_fail(msg, KB_NOT_SUPPORTED, "%s: argument %d = %lld is beyond int32", l->kernel, a,
                               (long long)g->i);
            if (g->kind == KBCU_ARG_TENSOR && (g->tensor < 0 || g->tensor >= ntensors || g->i < 0))
                return kb_fail(msg, KB_ERROR, "%s: argument %d names tensor %d of %d", l->kernel, a, g->tensor,
                               ntensors);
            if (g->kind == KBCU_ARG_WS && (g->i < 0 || (uint64_t)g->i > p->workspace))
                return kb_fail(msg, KB_ERROR, "%s: argument %d is beyond the workspace", l->kernel, a);
        }
    }
    return KB_OK;
}

static int plan_variant(const kbcu_op *op, const kbcu_job *j, kbcu_plan *p, char *msg) {
    if (j->dev.sm < j->v->min_sm)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s needs compute capability %d.%d (device has %d.%d)", j->v->name,
                       j->v->min_sm / 10, j->v->min_sm % 10, j->dev.sm / 10, j->dev.sm % 10);
    return op->plan(j, p, msg);
}

/* The generic test variants: the first real variant that takes the case, then the damage. */
static int plan_generic_test(const kbcu_op *op, const kbcu_job *j, kbcu_plan *p, char *msg) {
    int rc = kb_fail(msg, KB_NOT_SUPPORTED, "%s: no variant of %s takes this case", j->v->name, kbcu_op_name(j->c->op));
    for (int i = 0; op->variants[i].name; i++) {
        if (op->variants[i].test_only) continue;
        kbcu_job real = *j;
        real.v = &op->variants[i];
        kbcu_plan_free(p);
        if ((rc = plan_variant(op, &real, p, msg)) == KB_OK) break;
    }
    if (rc != KB_OK) return rc;
    const kb_arg *out = &j->args[j->n_in];
    if (out->count < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "%s: output 0 is empty", j->v->name);
    const int64_t eb = (int64_t)kb_dtype_bytes(out->type, 1);
    if (eb < 1 || eb > 4)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s: output type %s", j->v->name, kb_dtype_name(out->type));
    kbcu_launch *l = kbcu_add_launch_module(p, "test_fault.cu", "", "kb_test_poke", 1, 1, 1, 1);
    kbcu_arg_tensor_at(p, l, j->n_in, out->count / 2 * eb);
    kbcu_arg_i64(p, l, (int64_t)kbcu_nan_code(out->type));
    kbcu_arg_i32(p, l, eb);
    return KB_OK;
}

int kbcu_plan_case(const kbcu_job *j, kbcu_plan *p, char *msg) {
    memset(p, 0, sizeof *p);
    const kbcu_op *op = kbcu_op_of(j->c->op);
    if (!op) return kb_fail(msg, KB_NOT_SUPPORTED, "cuda: op %d is not implemented", (int)j->c->op);
    if (!j->v) return kb_fail(msg, KB_ERROR, "cuda: no variant");
    if (j->n_in != op->n_in || j->n_out != op->n_out)
        return kb_fail(msg, KB_ERROR, "cuda %s takes %d inputs and %d outputs, not %d and %d", kbcu_op_name(j->c->op),
                       op->n_in, op->n_out, j->n_in, j->n_out);
    for (int t = 0; t < j->n_in + j->n_out; t++) {
        const kb_arg *a = &j->args[t];
        const uint64_t need = kb_dtype_bytes(a->type, a->count);
        if (a->count < 0 || need == UINT64_MAX || a->view.bytes < need)
            return kb_fail(msg, KB_ERROR, "tensor %d: %lld %s need %llu bytes, its view has %llu", t,
                           (long long)a->count, kb_dtype_name(a->type), (unsigned long long)need,
                           (unsigned long long)a->view.bytes);
        if (a->view.offset % (uint64_t)element_align(a->type))
            return kb_fail(msg, KB_NOT_SUPPORTED, "tensor %d (%s) starts at byte %llu, not a multiple of %d", t,
                           kb_dtype_name(a->type), (unsigned long long)a->view.offset, element_align(a->type));
    }
    int rc = is_generic_test(j->v) ? plan_generic_test(op, j, p, msg) : plan_variant(op, j, p, msg);
    if (rc == KB_OK) rc = finish(j, p, msg);
    if (rc != KB_OK) kbcu_plan_free(p);
    return rc;
}

int kbcu_plan_elementwise3(const kbcu_job *j, kbcu_plan *p, const char *inputs, char *msg) {
    const kb_case *c = j->c;
    const int type = kbcu_float_code(c->a_type);
    if (type < 0) return kb_fail(msg, KB_NOT_SUPPORTED, "%s type %s (f32, f16 or bf16)", inputs, kb_dtype_name(c->a_type));
    if (c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "N, K >= 1");
    const int block = kbcu_def_int(j->v, "BLOCK", 256);
    const int64_t count = c->n * c->k;
    int64_t per_thread = 1;
    if (kbcu_is(j->v, "v2")) {
        for (int t = 0; t < 3; t++) {
            int rc = kbcu_need_aligned(j, t, 16, "loads and stores 4 elements at once", msg);
            if (rc != KB_OK) return rc;
        }
        per_thread = 4;
    }
    kbcu_launch *l = kbcu_add_launch(p, j->v, j->v->kernel, kbcu_ceil_div(count, block * per_thread), 1, 1, block);
    for (int t = 0; t < 3; t++) kbcu_arg_tensor(p, l, t);
    kbcu_arg_i64(p, l, count);
    kbcu_arg_i32(p, l, type);
    return KB_OK;
}
