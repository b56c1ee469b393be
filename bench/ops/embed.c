/* embed.c - rows of a Q4_K/Q6_K/F16/F32 token table by id: N ids, K hidden, M vocab. */
#include "bench/ops/common.h"

static void defaults(kb_case *c) {
    c->a_type = KB_Q4K;
    c->m = 152064; /* Qwen2.5's vocabulary, when the shape leaves it out */
}

static int validate(const kb_case *c, char *msg) {
    if (op_positive(msg, "vocab (M)", c->m) || op_positive(msg, "hidden (K)", c->k) || op_positive(msg, "tokens (N)", c->n))
        return KB_ERROR;
    if (c->a_type != KB_Q4K && c->a_type != KB_Q6K && c->a_type != KB_F16 && c->a_type != KB_F32)
        return kb_fail(msg, KB_ERROR, "embed: table type must be q4_k, q6_k, f16 or f32 (got %s)", kb_dtype_name(c->a_type));
    if (kb_dtype_is_kquant(c->a_type) && c->k % 256)
        return kb_fail(msg, KB_ERROR, "embed: hidden %lld is not a multiple of the %s block (256)", (long long)c->k,
                       kb_dtype_name(c->a_type));
    if (c->m > 2147483647LL) return kb_fail(msg, KB_ERROR, "embed: vocab must fit int32 token ids");
    return KB_OK;
}

static int leading(const kb_case *c, int64_t v) { return c->k == v; }

static void tensors(const kb_case *c, kb_tensor *t) {
    op_tensor(&t[0], "table", c->a_type, c->m * c->k);
    op_tensor(&t[1], "ids", KB_I32, c->n);
    op_tensor(&t[2], "y", KB_F32, c->n * c->k);
}

/* The 152064-row table is too big to quantize row by row in a test run: a pool of
 * distinct generated rows is tiled over it (row r = pool[r mod P], P = 1024 or the
 * vocab), so every looked-up row is a real quantized row. */
#define EMBED_POOL 1024
static void generate(const kb_case *c, kb_tensor *in) {
    const int64_t pool = c->m < EMBED_POOL ? c->m : EMBED_POOL;
    const uint64_t row_bytes = kb_dtype_bytes(c->a_type, c->k);
    uint8_t *table = in[0].host;
    if (kb_dtype_is_kquant(c->a_type)) {
        kb_gen_kquant_rows(c->seed, c->a_type, table, pool, c->k, 41);
    } else {
        float *tmp = malloc((size_t)(pool * c->k) * sizeof *tmp);
        if (!tmp) abort();
        kb_gen_activations(c->seed, tmp, pool, c->k, 41, KB_GEN_PLAIN, 0.02);
        for (int64_t i = 0; i < pool * c->k; i++) {
            if (c->a_type == KB_F32) ((float *)table)[i] = tmp[i];
            else ((uint16_t *)table)[i] = kb_f32_to_f16(tmp[i], 0);
        }
        free(tmp);
    }
    for (int64_t r = pool; r < c->m; r++) memcpy(table + r * row_bytes, table + (r % pool) * row_bytes, row_bytes);
    kb_rng r;
    kb_rng_seed(&r, c->seed, 42);
    int32_t *ids = in[1].host;
    for (int64_t i = 0; i < c->n; i++) ids[i] = (int32_t)(kb_rng_next(&r) % (uint64_t)c->m);
    ids[0] = (int32_t)(c->m - 1); /* the last row always: catches an off-by-one row stride */
}

static void reference(const kb_case *c, const kb_tensor *in, kb_ref_out *out) {
    ref_embed(c->a_type, in[0].host, c->m, c->k, in[1].host, c->n, out[0].ref, out[0].mag);
}

static double flops(const kb_case *c) { return 2.0 * (double)c->n * (double)c->k; }
static double bytes(const kb_case *c) {
    return (double)kb_dtype_bytes(c->a_type, c->n * c->k) + 4.0 * (double)c->n + 4.0 * (double)c->n * (double)c->k;
}

static void tolerance(const kb_case *c, int out, double u_acc, kb_tolerance *t) {
    (void)out;
    (void)u_acc;
    /* the dequant's arithmetic (q4_k, q6_k); f16 and f32 rows are exact */
    if (c->a_type == KB_F16 || c->a_type == KB_F32) op_tol(t, 0, 0, 0, "exact");
    else op_tol(t, 0, 2 * U32, 0, c->a_type == KB_Q4K ? "2*u32*(|d*sc*q|+|dmin*m|)" : "2*u32*|y|");
}

const kb_op kb_op_embed = {
    .name = "embed",
    .summary = "rows of a Q4_K/Q6_K/F16/F32 token table by id",
    .dims = {KB_P_N, KB_P_K, KB_P_M},
    .n_dims = 3,
    .optional_dims = 1,
    .dims_text = "NxK or NxKxVOCAB",
    .params = KB_PBIT(KB_P_A_TYPE),
    .n_in = 2,
    .n_out = 1,
    .defaults = defaults,
    .validate = validate,
    .matches_leading = leading,
    .tensors = tensors,
    .generate = generate,
    .reference = reference,
    .flops = flops,
    .bytes = bytes,
    .tolerance = tolerance,
};
