/* types.c - names, sizes and facts of the number formats (types.h, docs/FORMATS.md). */
#include "ref/types.h"

#include <math.h>
#include <string.h>

static const char *const dtype_names[KB_DTYPE_COUNT] = {"f32", "f16", "bf16", "e4m3", "e5m2", "q4_k", "q6_k", "i32"};

const char *kb_dtype_name(kb_dtype t) { return (unsigned)t < KB_DTYPE_COUNT ? dtype_names[t] : "?"; }

int kb_dtype_parse(const char *s, kb_dtype *t) {
    static const struct {
        const char *alias;
        kb_dtype t;
    } aliases[] = {{"q4k", KB_Q4K}, {"q6k", KB_Q6K}, {"fp32", KB_F32}, {"fp16", KB_F16}};
    for (int i = 0; i < KB_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_names[i]) == 0) {
            *t = (kb_dtype)i;
            return 0;
        }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(s, aliases[i].alias) == 0) {
            *t = aliases[i].t;
            return 0;
        }
    return -1;
}

int kb_dtype_is_fp8(kb_dtype t) { return t == KB_E4M3 || t == KB_E5M2; }
int kb_dtype_is_kquant(kb_dtype t) { return t == KB_Q4K || t == KB_Q6K; }
int kb_dtype_float_index(kb_dtype t) { return t == KB_F32 ? 0 : t == KB_F16 ? 1 : t == KB_BF16 ? 2 : -1; }
int kb_dtype_is_float(kb_dtype t) { return t == KB_F32 || t == KB_F16 || t == KB_BF16; }
int64_t kb_dtype_block(kb_dtype t) { return kb_dtype_is_kquant(t) ? 256 : 1; }

uint64_t kb_dtype_bytes(kb_dtype t, int64_t count) {
    uint64_t per; /* bytes per block */
    switch (t) {
    case KB_F32:
    case KB_I32: per = 4; break;
    case KB_F16:
    case KB_BF16: per = 2; break;
    case KB_E4M3:
    case KB_E5M2: per = 1; break;
    case KB_Q4K: per = 144; break; /* ggml block_q4_K */
    case KB_Q6K: per = 210; break; /* ggml block_q6_K */
    default: return UINT64_MAX;
    }
    const int64_t block = kb_dtype_block(t);
    if (count < 0 || count % block) return UINT64_MAX;
    const uint64_t blocks = (uint64_t)(count / block);
    if (blocks > UINT64_MAX / per) return UINT64_MAX;
    return blocks * per;
}

double kb_unit_roundoff(kb_dtype t) {
    switch (t) {
    case KB_F16: return ldexp(1.0, -11); /* 11-bit significand */
    case KB_BF16: return ldexp(1.0, -8); /* 8-bit significand */
    case KB_E4M3: return ldexp(1.0, -4); /* 4-bit significand */
    case KB_E5M2: return ldexp(1.0, -3); /* 3-bit significand */
    default: return ldexp(1.0, -24);
    }
}

double kb_max_finite(kb_dtype t) {
    switch (t) {
    case KB_F16: return 65504.0;
    case KB_BF16: return 3.3895313892515355e38;
    case KB_E4M3: return 448.0;
    case KB_E5M2: return 57344.0;
    default: return 3.4028234663852886e38;
    }
}

double kb_min_normal(kb_dtype t) {
    switch (t) {
    case KB_F16: return ldexp(1.0, -14);
    case KB_E4M3: return ldexp(1.0, -6);
    case KB_E5M2: return ldexp(1.0, -14);
    default: return ldexp(1.0, -126); /* f32, bf16 */
    }
}

double kb_subnormal_step(kb_dtype t) {
    switch (t) {
    case KB_F16: return ldexp(1.0, -24);
    case KB_BF16: return ldexp(1.0, -133);
    case KB_E4M3: return ldexp(1.0, -9);
    case KB_E5M2: return ldexp(1.0, -16);
    default: return ldexp(1.0, -149);
    }
}

static const char *const scale_names[KB_SCALE_COUNT] = {"tensor", "outer", "vec128", "blk128"};

const char *kb_scale_mode_name(kb_scale_mode s) { return (unsigned)s < KB_SCALE_COUNT ? scale_names[s] : "?"; }

int kb_scale_mode_parse(const char *s, kb_scale_mode *m) {
    for (int i = 0; i < KB_SCALE_COUNT; i++)
        if (strcmp(s, scale_names[i]) == 0) {
            *m = (kb_scale_mode)i;
            return 0;
        }
    return -1;
}

kb_scale_mode kb_scale_mode_for_x(kb_scale_mode m) { return m == KB_SCALE_BLK128 ? KB_SCALE_VEC128 : m; }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t kb_scale_count(kb_scale_mode m, int64_t rows, int64_t k) {
    switch (m) {
    case KB_SCALE_OUTER: return rows;
    case KB_SCALE_VEC128: return rows * ceil_div(k, 128);
    case KB_SCALE_BLK128: return ceil_div(rows, 128) * ceil_div(k, 128);
    default: return 1;
    }
}

int64_t kb_scale_index(kb_scale_mode m, int64_t row, int64_t col, int64_t k) {
    switch (m) {
    case KB_SCALE_OUTER: return row;
    case KB_SCALE_VEC128: return row * ceil_div(k, 128) + col / 128;
    case KB_SCALE_BLK128: return (row / 128) * ceil_div(k, 128) + col / 128;
    default: return 0;
    }
}
