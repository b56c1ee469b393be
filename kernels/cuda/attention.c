/* attention.c - the cuda variants and launch plan of attention (attention.cu): causal
 * GQA attention, q [n][heads][d], k, v [kv_len][kv_heads][d] -> o [n][heads][d].
 * The decode variants split the keys over blocks (flash-decoding) and combine the
 * partial results from the workspace in a second launch (decode_v4: in the same
 * launch, by the last block to finish). */
#include "kernels/cuda/cuda_ops.h"

#include <math.h>

static const kbcu_variant variants[] = {
    {"decode_v1", "attention.cu", "attn_decode_v1,attn_decode_combine_v1", "-DWARPS=4 -DKPW=4", 75, 0, 0},
    {"decode_v2", "attention.cu", "attn_decode_v2,attn_decode_combine_v2", "-DKT=32", 75, 0, 0},
    {"prefill_v1", "attention.cu", "attn_prefill_v1", "-DWARPS=8 -DKT=32", 75, 0, 0},
    /* cp.async (sm_80); parity and timing on the H200 in NOTES.md */
    {"decode_v3_w4_s4", "attention.cu", "attn_decode_v3,attn_decode_combine_v3", "-DHD=128 -DWARPS=4 -DSTAGES=4", 80, 0,
     0},
    /* the best --tune points on the H200 (results/h200/attention-tune.csv): 8 warps at
     * kv 32768, 2 stages at kv 4096-16384; both pass the smoke and qwen2.5-7b tables there
     * with the same bits in 3 runs (results/h200/attention-v3-tuned.csv) */
    {"decode_v3_w8_s4", "attention.cu", "attn_decode_v3,attn_decode_combine_v3", "-DHD=128 -DWARPS=8 -DSTAGES=4", 80, 0,
     0},
    {"decode_v3_w4_s2", "attention.cu", "attn_decode_v3,attn_decode_combine_v3", "-DHD=128 -DWARPS=4 -DSTAGES=2", 80, 0,
     0},
    /* decode_v3 and its combine in one launch (last-block tickets): passes parity on the
     * H200 with identical bits run to run, but slower than v3 at n = 1 (NOTES.md): hidden */
    {"decode_v4_w4_s4", "attention.cu", "attn_decode_v4", "-DHD=128 -DWARPS=4 -DSTAGES=4", 80, 0, 1},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

void kbcu_decode_splits(const kb_case *c, int warps, int kpw, int sm_count, int *splits, int *chunk);
void kbcu_decode_splits_v2(const kb_case *c, int kt, int sm_count, int *splits, int *chunk);
void kbcu_decode_splits_v3(const kb_case *c, int warps, int per_sm, int sm_count, int *splits, int *chunk);
int64_t kbcu_decode_v3_smem(int warps, int stages, int hd);
int kbcu_decode_v3_per_sm(int warps, int64_t smem, int smem_optin);
int kbcu_decode_v4_group(int splits);

void kbcu_decode_splits(const kb_case *c, int warps, int kpw, int sm_count, int *splits, int *chunk) {
    /* Enough blocks to fill the chip about 4 deep (4 blocks of 4 warps per SM), but
     * each split keeps at least two rounds of its warps' key steps. */
    const int64_t step = (int64_t)warps * kpw;
    const int64_t want = kbcu_ceil_div(4LL * (sm_count > 0 ? sm_count : 1), c->heads * c->n);
    const int64_t most = kbcu_ceil_div(c->kv_len, 2 * step);
    int64_t s = want < most ? want : most;
    if (s < 1) s = 1;
    const int64_t ch = kbcu_ceil_div(kbcu_ceil_div(c->kv_len, s), step) * step; /* whole key steps */
    *chunk = (int)ch;
    *splits = (int)kbcu_ceil_div(c->kv_len, ch);
}

void kbcu_decode_splits_v2(const kb_case *c, int kt, int sm_count, int *splits, int *chunk) {
    /* One KT-key tile per block where the chip can hold all the blocks at once (about
     * 8 blocks of 256 threads per SM); longer contexts get several tiles a block. */
    const int64_t tiles = kbcu_ceil_div(c->kv_len, kt);
    const int64_t cap = 8LL * (sm_count > 0 ? sm_count : 1) / (c->kv_heads * c->n);
    int64_t s = tiles < cap ? tiles : cap;
    if (s < 1) s = 1;
    const int64_t ch = kbcu_ceil_div(kbcu_ceil_div(c->kv_len, s), kt) * kt;
    *chunk = (int)ch;
    *splits = (int)kbcu_ceil_div(c->kv_len, ch);
}

/* decode_v3 (attention.cu): 4 keys a warp step, a GQA group padded to 8 heads. */
#define V3_KU 4
#define V3_G 8

void kbcu_decode_splits_v3(const kb_case *c, int warps, int per_sm, int sm_count, int *splits, int *chunk) {
    /* As many blocks as the chip holds at once (per_sm a SM; the n query blocks of a
     * split read the same K/V, n x splits x kv_heads blocks in all): one wave, every
     * byte requested from the start. A chunk is whole rounds of the block's warps'
     * 4-key steps, at least one. */
    const int64_t round = (int64_t)V3_KU * warps;
    const int64_t want = (int64_t)(per_sm > 0 ? per_sm : 1) * (sm_count > 0 ? sm_count : 1) / (c->kv_heads * c->n);
    const int64_t most = kbcu_ceil_div(c->kv_len, round);
    int64_t s = want < most ? want : most;
    if (s < 1) s = 1;
    const int64_t ch = kbcu_ceil_div(kbcu_ceil_div(c->kv_len, s), round) * round;
    *chunk = (int)ch;
    *splits = (int)kbcu_ceil_div(c->kv_len, ch);
}

/* attn_decode_v3's dynamic shared memory: the larger of the warps' K/V stages
 * (STAGES x 4 K rows + 4 V rows each) and the merge area (8 heads' acc + m, l a warp),
 * then 40 floats a warp (the step's 32 probabilities and 8 rescale factors). */
int64_t kbcu_decode_v3_smem(int warps, int stages, int hd) {
    const int64_t hd4 = hd / 4;
    const int64_t pipe4 = (int64_t)warps * stages * 2 * V3_KU * hd4, merge4 = (int64_t)warps * (V3_G * hd4 + 4);
    return (pipe4 > merge4 ? pipe4 : merge4) * 16 + (int64_t)warps * 40 * 4;
}

/* Blocks of attn_decode_v3 an SM holds, for the split count only (a wrong guess costs
 * balance, never correctness): shared memory (an SM has about the opt-in maximum + 1 KiB,
 * 1 KiB reserved a block: sm_80/sm_90), 2048 threads, and 65536 registers at the 128 a
 * thread ptxas gives it (sm_80/89/90, WARPS=4 STAGES=4). */
int kbcu_decode_v3_per_sm(int warps, int64_t smem, int smem_optin) {
    int64_t b = ((int64_t)smem_optin + 1024) / (smem + 1024);
    const int64_t by_threads = 2048 / (32 * warps), by_regs = 65536 / (128 * 32 * warps);
    if (by_threads < b) b = by_threads;
    if (by_regs < b) b = by_regs;
    return b < 1 ? 1 : (int)b;
}

/* decode_v4's merge group: the splits one block merges at the first level, and the
 * groups the last block merges at the second. ~sqrt(splits) each, so neither merge reads
 * many partials through one SM; up to 8 splits one level (group = splits). */
int kbcu_decode_v4_group(int splits) {
    if (splits <= 8) return splits < 1 ? 1 : splits;
    int g = 1;
    while (g * g < splits) g++;
    return g;
}

static int aligned16(const kbcu_job *j, int last, char *msg) {
    for (int t = 0; t <= last; t++) {
        int rc = kbcu_need_aligned(j, t, 16, "reads float4 rows", msg);
        if (rc != KB_OK) return rc;
    }
    return KB_OK;
}

/* The split-KV decode kernels' sizes, keys per split and softmax scale (every decode
 * variant's arguments end so). */
static void decode_size_args(kbcu_plan *p, kbcu_launch *l, const kb_case *c, int chunk, double scale) {
    kbcu_arg_i32(p, l, c->n);
    kbcu_arg_i32(p, l, c->kv_len);
    kbcu_arg_i32(p, l, c->heads);
    kbcu_arg_i32(p, l, c->kv_heads);
    kbcu_arg_i32(p, l, c->head_dim);
    kbcu_arg_i32(p, l, chunk);
    kbcu_arg_f32(p, l, scale);
}

/* The split-KV decode kernels' arguments (v1, v2 and v3 alike): q, k, v, the partials in
 * the workspace, then the sizes. */
static void decode_split_args(kbcu_plan *p, kbcu_launch *l, const kb_case *c, int chunk, double scale) {
    for (int t = 0; t < 3; t++) kbcu_arg_tensor(p, l, t);
    kbcu_arg_ws(p, l, 0);
    decode_size_args(p, l, c, chunk, scale);
}

/* The launch that merges the splits' partials into the output: one block per head and query. */
static void decode_combine(kbcu_plan *p, const kbcu_job *j, const char *kernel, int splits, int64_t smem) {
    const kb_case *c = j->c;
    const int v3 = kbcu_is(j->v, "decode_v3");
    /* v3: a block per (32 dims, head, query), 8 warps over the splits */
    kbcu_launch *l = v3 ? kbcu_add_launch(p, j->v, kernel, c->head_dim / 32, c->heads, c->n, 256)
                        : kbcu_add_launch(p, j->v, kernel, c->heads, c->n, 1, 128);
    if (l && smem) l->smem = smem;
    kbcu_arg_ws(p, l, 0);
    kbcu_arg_tensor(p, l, 3);
    kbcu_arg_i32(p, l, c->n);
    kbcu_arg_i32(p, l, c->heads);
    if (!v3) kbcu_arg_i32(p, l, c->head_dim); /* v3: HD */
    kbcu_arg_i32(p, l, splits);
}

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    const int64_t d = c->head_dim;
    if (c->n < 1 || c->kv_len < 1 || c->heads < 1 || c->kv_heads < 1 || d < 1 || c->heads % c->kv_heads ||
        c->n > c->kv_len)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "attention needs n, kv_len, heads, kv_heads, head_dim >= 1, heads a "
                       "multiple of kv_heads and n <= kv_len");
    if (d > 256) return kb_fail(msg, KB_NOT_SUPPORTED, "head_dim %lld > 256", (long long)d);
    if (!kbcu_fits_i32(c->kv_len * c->kv_heads * d) || !kbcu_fits_i32(c->n * c->heads * d))
        return kb_fail(msg, KB_NOT_SUPPORTED, "tensor beyond int32 elements");
    const double scale = 1.0 / sqrt((double)d);
    const int warps = kbcu_def_int(j->v, "WARPS", 4);
    kbcu_launch *l;
    if (!kbcu_is(j->v, "prefill") && c->n > 16)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s is for n <= 16 queries (n = %lld): prefill_v1 runs it", j->v->name,
                       (long long)c->n);
    if (kbcu_is(j->v, "decode_v1")) {
        const int kpw = kbcu_def_int(j->v, "KPW", 4);
        int splits, chunk;
        kbcu_decode_splits(c, warps, kpw, j->dev.sm_count, &splits, &chunk);
        const int64_t S = c->n * c->heads * splits;
        p->workspace = (uint64_t)(2 * S + S * d) * sizeof(float);
        l = kbcu_add_launch(p, j->v, "attn_decode_v1", splits, c->heads, c->n, warps * 32);
        decode_split_args(p, l, c, chunk, scale);
        decode_combine(p, j, "attn_decode_combine_v1", splits, 0);
    } else if (kbcu_is(j->v, "decode_v2")) {
        if (d % 4) return kb_fail(msg, KB_NOT_SUPPORTED, "decode_v2 needs head_dim %% 4 == 0");
        if (c->heads / c->kv_heads > 8)
            return kb_fail(msg, KB_NOT_SUPPORTED, "decode_v2 takes a GQA group of <= 8 query heads (%lld)",
                           (long long)(c->heads / c->kv_heads));
        int rc = aligned16(j, 2, msg);
        if (rc != KB_OK) return rc;
        const int kt = kbcu_def_int(j->v, "KT", 32);
        int splits, chunk;
        kbcu_decode_splits_v2(c, kt, j->dev.sm_count, &splits, &chunk);
        const int64_t d4 = d / 4, S = c->n * c->heads * splits;
        p->workspace = (uint64_t)(S * d + 2 * S) * sizeof(float);
        l = kbcu_add_launch(p, j->v, "attn_decode_v2", splits, c->kv_heads, c->n, 256);
        if (l) l->smem = (2 * kt * (d4 + 1) + 8 * d4) * 16;
        decode_split_args(p, l, c, chunk, scale);
        /* shared: the weights, 4 partials, the broadcast */
        decode_combine(p, j, "attn_decode_combine_v2", splits, (splits + 5) * (int64_t)sizeof(float));
    } else if (kbcu_is(j->v, "decode_v3") || kbcu_is(j->v, "decode_v4")) {
        const int hd = kbcu_def_int(j->v, "HD", 128), stages = kbcu_def_int(j->v, "STAGES", 4);
        if (d != hd)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s is compiled for head_dim %d (-DHD), not %lld", j->v->name, hd,
                           (long long)d);
        if (c->heads / c->kv_heads > V3_G)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s holds a GQA group of <= %d query heads (%lld)", j->v->name, V3_G,
                           (long long)(c->heads / c->kv_heads));
        int rc = aligned16(j, 2, msg); /* q, k, v: float4 rows, 16-byte cp.async */
        if (rc != KB_OK) return rc;
        const int64_t smem = kbcu_decode_v3_smem(warps, stages, hd);
        int splits, chunk;
        kbcu_decode_splits_v3(c, warps, kbcu_decode_v3_per_sm(warps, smem, j->dev.smem_optin), j->dev.sm_count, &splits,
                              &chunk);
        const int64_t S = c->n * c->heads * splits;
        if (kbcu_is(j->v, "decode_v3")) {
            p->workspace = (uint64_t)(S * d + 2 * S) * sizeof(float);
            /* query fastest: the n blocks of a (split, KV head) run together and share
             * its K/V through L2 */
            l = kbcu_add_launch(p, j->v, "attn_decode_v3", c->n, splits, c->kv_heads, warps * 32);
            if (l) l->smem = smem;
            decode_split_args(p, l, c, chunk, scale);
            /* shared: the weights, 8 maxima, 8 sums, 8 warps x 32 partials */
            decode_combine(p, j, "attn_decode_combine_v3", splits, (splits + 16 + 256) * (int64_t)sizeof(float));
            return KB_OK;
        }
        /* decode_v4: workspace = v3's partials, the group partials, the counters (each
         * part 16-byte aligned: float4 rows); zeroed once at prepare (the counters) */
        const int group = kbcu_decode_v4_group(splits), ngroups = (int)kbcu_ceil_div(splits, group);
        const int most = group > ngroups ? group : ngroups;
        if ((V3_G * most + 16) * 4 > smem - warps * 40 * 4)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: a merge of %d partials outgrows the shared memory",
                           j->v->name, most);
        const int64_t S2 = c->n * c->heads * ngroups;
        const int64_t at2 = kbcu_ceil_div(S * (d + 2), 4) * 4, atc = at2 + kbcu_ceil_div(S2 * (d + 2), 4) * 4;
        p->workspace = (uint64_t)(atc + c->n * c->kv_heads * (ngroups + 1)) * sizeof(float);
        p->zero_workspace = 1;
        l = kbcu_add_launch(p, j->v, "attn_decode_v4", c->n, splits, c->kv_heads, warps * 32);
        if (l) l->smem = smem;
        for (int t = 0; t < 4; t++) kbcu_arg_tensor(p, l, t);
        kbcu_arg_ws(p, l, 0);
        kbcu_arg_ws(p, l, at2 * (int64_t)sizeof(float));
        kbcu_arg_ws(p, l, atc * (int64_t)sizeof(float));
        decode_size_args(p, l, c, chunk, scale);
        kbcu_arg_i32(p, l, group);
    } else {
        if (d % 4) return kb_fail(msg, KB_NOT_SUPPORTED, "prefill_v1 needs head_dim %% 4 == 0");
        int rc = aligned16(j, 3, msg);
        if (rc != KB_OK) return rc;
        const int kt = kbcu_def_int(j->v, "KT", 32);
        const int64_t d4 = d / 4;
        l = kbcu_add_launch(p, j->v, "attn_prefill_v1", kbcu_ceil_div(c->n, warps), c->heads, 1, warps * 32);
        if (l) l->smem = (2 * kt * (d4 + 1) + warps * d4) * 16;
        for (int t = 0; t < 4; t++) kbcu_arg_tensor(p, l, t);
        kbcu_arg_i32(p, l, c->n);
        kbcu_arg_i32(p, l, c->kv_len);
        kbcu_arg_i32(p, l, c->heads);
        kbcu_arg_i32(p, l, c->kv_heads);
        kbcu_arg_i32(p, l, d);
        kbcu_arg_f32(p, l, scale);
    }
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    int n = 0;
    kb_case c = {.op = KB_OP_attention, .heads = 28, .kv_heads = 4, .head_dim = 128, .kv_len = 64, .n = 1};
    if (n < max) out[n++] = c;
    c.n = 64;
    if (n < max) out[n++] = c;
    return n;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    {"WARPS", 1, 32, 1, "decode_v1, prefill_v1, decode_v3, decode_v4: warps a block"},
    {"KPW", 1, 8, 0, "decode_v1: keys a warp step"},
    {"STAGES", 1, 8, 0, "decode_v3, decode_v4: 4-key K/V steps in flight a warp"},
    KBCU_TUNE_END,
};

const kbcu_op kbcu_op_attention = {variants, 3, 1, plan, samples, tunables, NULL, NULL};
