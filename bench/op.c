/* op.c - the parameter table, the op registry and what every op shares: labels,
 * shape parsing, tensor sizes with overflow checks. */
#include "bench/op.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ------------------------------------------------------------ */
#define PARAM(field, kind, help) {#field, #field, kind, offsetof(kb_case, field), help}
const kb_param_def kb_params[KB_P_COUNT] = {
    [KB_P_M] = PARAM(m, KB_PK_INT, "gemm: output features; dequant/quant: rows; embed: vocab"),
    [KB_P_N] = PARAM(n, KB_PK_INT, "tokens: gemm batch, rows of rmsnorm/rope/eltwise, attention queries, embed ids"),
    [KB_P_K] = PARAM(k, KB_PK_INT, "gemm: input features; row length of everything else"),
    [KB_P_HEADS] = PARAM(heads, KB_PK_INT, "query heads (rope, attention)"),
    [KB_P_KV_HEADS] = PARAM(kv_heads, KB_PK_INT, "key/value heads (attention; heads % kv_heads == 0)"),
    [KB_P_HEAD_DIM] = PARAM(head_dim, KB_PK_INT, "head dimension (rope, attention)"),
    [KB_P_KV_LEN] = PARAM(kv_len, KB_PK_INT, "attention keys; query i sits at position kv_len - n + i"),
    [KB_P_A_TYPE] = PARAM(a_type, KB_PK_DTYPE, "first operand's type (gemm W, embed/dequant table, eltwise x)"),
    [KB_P_B_TYPE] = PARAM(b_type, KB_PK_DTYPE, "second operand's type (gemm X)"),
    [KB_P_OUT_TYPE] = PARAM(out_type, KB_PK_DTYPE, "output type (gemm D, quant target)"),
    [KB_P_SCALE] = {"scale", "scale_mode", KB_PK_SCALE, offsetof(kb_case, scale_mode),
                    "fp8 scale layout: tensor, outer, vec128, blk128"},
    [KB_P_FLUSH] = PARAM(flush, KB_PK_BOOL, "fp8 quantization flushes subnormal results to 0 (0/1)"),
    [KB_P_EPS] = PARAM(eps, KB_PK_REAL, "rmsnorm epsilon"),
    [KB_P_THETA] = PARAM(theta, KB_PK_REAL, "rope base"),
    [KB_P_MAX_POS] = PARAM(max_pos, KB_PK_INT, "rope: positions drawn from [0, max_pos)"),
};
#undef PARAM

const kb_param_def *kb_param_find(const char *name, kb_param *id) {
    for (int i = 0; i < KB_P_COUNT; i++)
        if (strcmp(kb_params[i].name, name) == 0) {
            if (id) *id = (kb_param)i;
            return &kb_params[i];
        }
    return NULL;
}

static void *field(kb_case *c, kb_param p) { return (char *)c + kb_params[p].offset; }
static const void *cfield(const kb_case *c, kb_param p) { return (const char *)c + kb_params[p].offset; }

int kb_param_parse(kb_case *c, kb_param p, const char *s) {
    char *end;
    errno = 0;
    switch (kb_params[p].kind) {
    case KB_PK_INT: {
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end) return -1;
        *(int64_t *)field(c, p) = v;
        return 0;
    }
    case KB_PK_REAL: {
        double v = strtod(s, &end);
        if (errno || end == s || *end) return -1;
        *(double *)field(c, p) = v;
        return 0;
    }
    case KB_PK_BOOL:
        if (!strcmp(s, "1") || !strcmp(s, "on")) *(int *)field(c, p) = 1;
        else if (!strcmp(s, "0") || !strcmp(s, "off")) *(int *)field(c, p) = 0;
        else return -1;
        return 0;
    case KB_PK_DTYPE: return kb_dtype_parse(s, (kb_dtype *)field(c, p));
    case KB_PK_SCALE: return kb_scale_mode_parse(s, (kb_scale_mode *)field(c, p));
    }
    return -1;
}

void kb_param_format(const kb_case *c, kb_param p, char *buf, size_t n) {
    const void *f = cfield(c, p);
    switch (kb_params[p].kind) {
    case KB_PK_INT: snprintf(buf, n, "%lld", (long long)*(const int64_t *)f); break;
    case KB_PK_REAL: snprintf(buf, n, "%.6g", *(const double *)f); break;
    case KB_PK_BOOL: snprintf(buf, n, "%d", *(const int *)f); break;
    case KB_PK_DTYPE: snprintf(buf, n, "%s", kb_dtype_name(*(const kb_dtype *)f)); break;
    case KB_PK_SCALE: snprintf(buf, n, "%s", kb_scale_mode_name(*(const kb_scale_mode *)f)); break;
    }
}

int64_t kb_param_int(const kb_case *c, kb_param p) {
    return kb_params[p].kind == KB_PK_INT ? *(const int64_t *)cfield(c, p) : 0;
}

/* ---- the registry ---------------------------------------------------------- */
#define KB_OP_DECL(name) extern const kb_op kb_op_##name;
KB_OP_LIST(KB_OP_DECL)
#undef KB_OP_DECL
#define KB_OP_ENTRY(name) [KB_OP_##name] = &kb_op_##name,
const kb_op *const kb_ops[KB_OP_COUNT] = {KB_OP_LIST(KB_OP_ENTRY)};
#undef KB_OP_ENTRY

int kb_op_lookup(const char *name, kb_op_id *id) {
    for (int i = 0; i < KB_OP_COUNT; i++)
        if (strcmp(kb_ops[i]->name, name) == 0) {
            *id = (kb_op_id)i;
            return 0;
        }
    return -1;
}

const kb_op *kb_op_find(const char *name) {
    kb_op_id id;
    return kb_op_lookup(name, &id) == 0 ? kb_ops[id] : NULL;
}

const char *kb_op_name(kb_op_id op) { return (unsigned)op < KB_OP_COUNT ? kb_ops[op]->name : "?"; }

void kb_case_init(kb_case *c, kb_op_id op) {
    memset(c, 0, sizeof *c);
    c->op = op;
    c->seed = 1;
    c->a_type = c->b_type = c->out_type = KB_F32;
    kb_ops[op]->defaults(c);
}

void kb_case_label(kb_case *c) {
    const kb_op *op = kb_ops[c->op];
    size_t o = 0;
    c->label[0] = 0;
    for (int i = 0; i < op->n_dims && o < sizeof c->label; i++)
        o += (size_t)snprintf(c->label + o, sizeof c->label - o, "%s%lld", i ? "x" : "",
                              (long long)kb_param_int(c, op->dims[i]));
}

int kb_case_parse_shape(kb_case *c, const char *spec, char *msg) {
    const kb_op *op = kb_ops[c->op];
    int64_t v[KB_MAX_DIMS];
    int nv = 0;
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || nv == KB_MAX_DIMS || (*end && *end != 'x') || (*end == 'x' && !end[1]))
            return kb_fail(msg, -1, "malformed shape '%s' for %s: expected %s", spec, op->name, op->dims_text);
        v[nv++] = x;
        p = *end ? end + 1 : end;
    }
    if (nv < op->n_dims - op->optional_dims || nv > op->n_dims)
        return kb_fail(msg, -1, "malformed shape '%s' for %s: expected %s", spec, op->name, op->dims_text);
    for (int i = 0; i < nv; i++) *(int64_t *)field(c, op->dims[i]) = v[i];
    return 0;
}

/* a * b within [0, limit]; -1 when it is not */
static int64_t mul_checked(int64_t a, int64_t b, int64_t limit) {
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > limit / a) return -1;
    return a * b;
}

int kb_case_tensors(const kb_case *c, kb_tensor *t, char *msg) {
    const kb_op *op = kb_ops[c->op];
    /* Every tensor's element count is a product of some of the dims: when the
     * product of all of them fits 2^62, no count an op computes can overflow. */
    int64_t all = 1;
    for (int i = 0; i < op->n_dims; i++) {
        int64_t d = kb_param_int(c, op->dims[i]);
        all = mul_checked(all, d > 0 ? d : 1, (int64_t)1 << 62);
        if (all < 0) return kb_fail(msg, KB_ERROR, "%s %s: the sizes overflow 64-bit arithmetic", op->name, c->label);
    }
    memset(t, 0, sizeof(kb_tensor) * (size_t)(op->n_in + op->n_out));
    op->tensors(c, t);
    for (int i = 0; i < op->n_in + op->n_out; i++) {
        t[i].bytes = kb_dtype_bytes(t[i].type, t[i].count);
        if (t[i].bytes == UINT64_MAX)
            return kb_fail(msg, KB_ERROR, "%s %s: tensor %s (%lld %s) has no byte size", op->name, c->label, t[i].name,
                           (long long)t[i].count, kb_dtype_name(t[i].type));
    }
    return KB_OK;
}
