/* util.c - small helpers shared by the harness, the references and the backends. */
#include "bench/kbench.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const dtype_names[KB_DTYPE_COUNT] = {"f32", "f16", "bf16", "e4m3", "e5m2", "q4_k", "q6_k", "i32"};

const char *kb_dtype_name(kb_dtype t) { return (unsigned)t < KB_DTYPE_COUNT ? dtype_names[t] : "?"; }

int kb_dtype_parse(const char *s, kb_dtype *t) {
    for (int i = 0; i < KB_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_names[i]) == 0) {
            *t = (kb_dtype)i;
            return 0;
        }
    }
    /* accepted spellings users type */
    if (strcmp(s, "q4k") == 0) { *t = KB_Q4K; return 0; }
    if (strcmp(s, "q6k") == 0) { *t = KB_Q6K; return 0; }
    if (strcmp(s, "fp32") == 0) { *t = KB_F32; return 0; }
    if (strcmp(s, "fp16") == 0) { *t = KB_F16; return 0; }
    return -1;
}

static const char *const op_names[KB_OP_COUNT] = {"dequant_q4k", "rmsnorm", "gemm_fp8", "rope_neox", "attention",
                                                  "embed"};

const char *kb_op_name(kb_op_id op) { return (unsigned)op < KB_OP_COUNT ? op_names[op] : "?"; }

static const char *const scale_names[KB_SCALE_COUNT] = {"tensor", "outer", "vec128", "blk128"};

const char *kb_scale_mode_name(kb_scale_mode s) { return (unsigned)s < KB_SCALE_COUNT ? scale_names[s] : "?"; }

size_t kb_dtype_bytes(kb_dtype t, int64_t count) {
    switch (t) {
    case KB_F32:
    case KB_I32: return (size_t)count * 4;
    case KB_F16:
    case KB_BF16: return (size_t)count * 2;
    case KB_E4M3:
    case KB_E5M2: return (size_t)count;
    case KB_Q4K: return (size_t)(count / 256) * 144; /* ggml block_q4_K */
    case KB_Q6K: return (size_t)(count / 256) * 210; /* ggml block_q6_K */
    default: return 0;
    }
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t kb_scale_count_a(const kb_case *c) {
    switch (c->scale_mode) {
    case KB_SCALE_OUTER: return c->m;
    case KB_SCALE_VEC128: return c->m * ceil_div(c->k, 128);
    case KB_SCALE_BLK128: return ceil_div(c->m, 128) * ceil_div(c->k, 128);
    default: return 1;
    }
}

int64_t kb_scale_count_b(const kb_case *c) {
    switch (c->scale_mode) {
    case KB_SCALE_OUTER: return c->n;
    case KB_SCALE_VEC128:
    case KB_SCALE_BLK128: return c->n * ceil_div(c->k, 128);
    default: return 1;
    }
}

int kb_fail(char *msg, int code, const char *fmt, ...) {
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, KB_MSG, fmt, ap);
        va_end(ap);
    }
    return code;
}

void kb_variant_init(kb_variant *v, const char *name) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->algo_id = -1;
    v->stages = -1;
    v->splitk = -1;
    v->swizzle = -1;
    v->custom = -1;
    v->workspace = -1;
    v->waves = -1.0;
    v->heuristic_rank = -1;
}
