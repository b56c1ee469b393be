/* gemm_fp8.c - the cuda variants and launch plan of gemm_fp8 (gemm_fp8.cu):
 * D[N][M] = scales * W[M][K] X[N][K]. Tensors: w, x, sa, sb, d. */
#include "kernels/cuda/cublaslt_host.h"
#include "kernels/cuda/cuda_ops.h"

/* v2's -D options, every tunable spelled out (the order the tests compare): WARPS, UNROLL, MT,
 * NT, PDL, FMTT, MINB, MMA8. Every listed v2 variant's W loads carry a 256-byte L2 prefetch hint
 * (LDHINT=2): 2-8 % faster than plain loads at every decode shape on the H200, the same bits
 * (results/h200/gemv-ldhint.csv). */
#define V2_DEFINES(warps, unroll, mt, nt, pdl, fmtt, minb, mma8)                                             \
    "-DWARPS=" #warps " -DUNROLL=" #unroll " -DMT=" #mt " -DNT=" #nt " -DLDHINT=2 -DPDL=" #pdl " -DFMTT=" #fmtt \
    " -DMINB=" #minb " -DMMA8=" #mma8
static const kbcu_variant variants[] = {
    {"gemv_v1_b128", "gemm_fp8.cu", "gemm_fp8_gemv_v1", "-DWARPS=4 -DNB=8", 75, 0, 0},
    /* mma.sync m16n8k16 f16 with fp32 accumulation: sm_80 and later */
    {"gemv_v2_b128_u2", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(4, 2, 1, 2, 0, 0, 0, 0), 80, 0, 0},
    {"gemv_v2_b256_u2", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(8, 2, 1, 2, 0, 0, 0, 0), 80, 0, 0},
    {"gemv_v2_b256_u4", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(8, 4, 1, 2, 0, 0, 0, 0), 80, 0, 0},
    /* programmatic dependent launch (PDL=1, sm_90): a block loads its first W chunks, then
     * waits for the previous kernel, so in a back-to-back stream the next GEMV's weights are
     * on their way while this one ends (rotate mode on the H200, results/h200/gemv-pdl.csv:
     * 3584x1x3584 7.36 -> 5.75 us, 512x1x3584 4.39 -> 2.58, FFN 18944x1 23.3 -> 22.7; that
     * variant, gemv_v2_b256_u7_t1_pdl, is listed at MMA8=1 since: gemv_v2_b256_u7_t1_mma8_pdl) */
    /* FMTT=1: the operand formats are compile-time, one copy of the body per fp8 format pair
     * (no uniform branch at every conversion), the same output bits. Rotate, H200,
     * results/h200/fmtt2-*.csv (WARPS x UNROLL x MT x NT at FMTT=1, PDL=1) against the best
     * listed FMTT=0 point of the same lease (fmtt-*.csv): 3584x1x3584 4.95 us (5.65),
     * 3584x1x18944 19.8, 3584x16x3584 6.45 (7.86), 3584x32x3584 9.74 (10.97), 18944x1x3584
     * 20.8 (22.0); cuBLASLt 6.20, 21.6, 6.38, 6.53, 19.7. Not every point gains: W8 U4 MT1 NT1
     * (the former gemv_v2_b256_u4_t1_pdl) went 5.65 -> 7.17 us, so FMTT is set per variant. */
    {"gemv_v2_b512_u2_t1_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(16, 2, 1, 1, 1, 1, 0, 0), 90, 0, 0},
    {"gemv_v2_b256_u4_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(8, 4, 1, 2, 1, 1, 0, 0), 90, 0, 0},
    {"gemv_v2_b128_u2_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(4, 2, 1, 2, 1, 1, 0, 0), 90, 0, 0},
    /* two 16-row tiles a block (MT=2: the tokens' conversions once for both), PDL; rotate,
     * H200, results/h200/mt-n.csv: 3584x8x3584 5.86 us (MT=1 at best 6.12, cuBLASLt 6.29),
     * 3584x32x3584 11.0 (13.5), 3584x64x3584 20.9 (22.9); b512_u2_t1_mt2 at FMTT=1 5.27 us at
     * 3584x8x3584 (fmtt2-n.csv) */
    {"gemv_v2_b512_u2_t1_mt2_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(16, 2, 2, 1, 1, 1, 0, 0), 90, 0, 0},
    /* 4 warps held to fewer registers (MINB blocks an SM, where ptxas's own 128 allow 4): for
     * the FFN and lm_head decode shapes, where the weight streams. At FMTT=1 (rotate, H200,
     * results/h200/sweep16-m.csv, WARPS x UNROLL x MINB): 18944x1x3584 19.7 us at 4 chunks a
     * warp and MINB=4 (the former listed b128_u4_t1_m6 at FMTT=1 21.5 in the same run),
     * 152064x1x3584 126.4 at 2 chunks and MINB=8 (b128_u4_t1_m6 137.7); cuBLASLt 20.7 and
     * 126.9 in the whole table (table-whole-beb4059.csv.gz) */
    {"gemv_v2_b128_u4_t1_m4_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(4, 4, 1, 1, 1, 1, 4, 0), 90, 0, 0},
    {"gemv_v2_b128_u2_t1_m8_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(4, 2, 1, 1, 1, 1, 8, 0), 90, 0, 0},
    /* MMA8=1: the fp8 bytes straight into mma.m16n8k32 .e4m3/.e5m2 (on sm_90 ptxas converts
     * them to f16 itself for HMMA: gemm_fp8.c's acc_unit_roundoff). Rotate, H200, against the
     * best MMA8=0 point of the same lease (results/h200/mma8nt-n.csv): 3584x1x3584 4.69 us
     * (gemv_v2_b512_u2_t1_pdl 4.98, cuBLASLt 6.19), 3584x8x3584 5.08 (5.46; 6.30); with four
     * token tiles a block (NT=4, W read once per 32 tokens) 3584x64x3584 14.89 (18.04; 6.96).
     * They replace gemv_v2_b256_u7_t1_pdl and gemv_v2_b256_u2_mt2_pdl, the fastest at none of
     * the 57 gemm_fp8 shapes of results/h200/table-whole-9dc59f4.csv.gz (the table's 4 minutes) */
    {"gemv_v2_b256_u7_t1_mma8_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(8, 7, 1, 1, 1, 1, 0, 1), 90, 0, 0},
    {"gemv_v2_b128_u1_nt4_mma8_pdl", "gemm_fp8.cu", "gemm_fp8_gemv_v2", V2_DEFINES(4, 1, 1, 4, 1, 1, 0, 1), 90, 0, 0},
    /* TMA bulk copies of W rows into shared memory (cp.async.bulk, mbarrier): sm_90.
     * Parity passes on the H200 but slower than v2 there (results/h200/gemv-v3.csv):
     * listed only with KB_CUDA_UNVERIFIED=1. */
    {"gemv_v3_m32_w8", "gemm_fp8.cu", "gemm_fp8_gemv_v3", "-DWARPS=8 -DMT=2 -DNT=2 -DCPS=7 -DSTAGES=1 -DMINB=1 -DPDL=0",
     90, 0, 1},
    {"gemv_v3_m16_w8", "gemm_fp8.cu", "gemm_fp8_gemv_v3", "-DWARPS=8 -DMT=1 -DNT=2 -DCPS=7 -DSTAGES=1 -DMINB=2 -DPDL=0",
     90, 0, 1},
    {"gemv_v3_m16_w4_s2", "gemm_fp8.cu", "gemm_fp8_gemv_v3", "-DWARPS=4 -DMT=1 -DNT=2 -DCPS=7 -DSTAGES=2 -DMINB=3 -DPDL=0",
     90, 0, 1},
    /* CUDA cores for decode, N <= 8: a warp per RPW rows, NB tokens a block, LOADS 16-byte
     * pieces a lane in flight per row; MINB sized so that ptxas needs no spills (NOTES.md,
     * "gemm_fp8 v4"). Parity passes on the H200 but slower than v2 there: listed only
     * with KB_CUDA_UNVERIFIED=1. */
    {"gemv_v4_b256_n1", "gemm_fp8.cu", "gemm_fp8_gemv_v4", "-DWARPS=8 -DRPW=1 -DLOADS=8 -DNB=1 -DMINB=4", 80, 0, 1},
    {"gemv_v4_b256_r2_n1", "gemm_fp8.cu", "gemm_fp8_gemv_v4", "-DWARPS=8 -DRPW=2 -DLOADS=8 -DNB=1 -DMINB=2", 80, 0, 1},
    {"gemv_v4_b256_n2", "gemm_fp8.cu", "gemm_fp8_gemv_v4", "-DWARPS=8 -DRPW=1 -DLOADS=8 -DNB=2 -DMINB=3", 80, 0, 1},
    {"gemv_v4_b256_n4", "gemm_fp8.cu", "gemm_fp8_gemv_v4", "-DWARPS=8 -DRPW=1 -DLOADS=8 -DNB=4 -DMINB=2", 80, 0, 1},
    {"gemv_v4_b256_n8", "gemm_fp8.cu", "gemm_fp8_gemv_v4", "-DWARPS=8 -DRPW=1 -DLOADS=8 -DNB=8 -DMINB=2", 80, 0, 1},
    /* v2's math fed by a cp.async ring per warp (RING chunks in flight), blocks persistent
     * over row tiles (at most sm_count * PER_SM of them), written for the steady stream of
     * the FFN and lm_head weights: passes parity on the H200 but slower than v2 there, the
     * deeper the ring the slower (NOTES.md, "gemm_fp8 v5"): hidden (KB_CUDA_UNVERIFIED=1) */
    {"gemv_v5_w4_r8_t1", "gemm_fp8.cu", "gemm_fp8_gemv_v5", "-DWARPS=4 -DRING=8 -DNT=1 -DPER_SM=4", 80, 0, 1},
    {"gemv_v5_w8_r4", "gemm_fp8.cu", "gemm_fp8_gemv_v5", "-DWARPS=8 -DRING=4 -DNT=2 -DPER_SM=3", 80, 0, 1},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};

/* gemv_v5's dynamic shared memory: each warp's ring of RING chunks, (2 + NT) 16-byte
 * pieces a lane a chunk (W rows g and g+8, X tokens g and 8+g) */
int64_t kbcu_gemv_v5_smem(int warps, int ring, int nt);
int64_t kbcu_gemv_v5_smem(int warps, int ring, int nt) { return (int64_t)warps * ring * (2 + nt) * 32 * 16; }

static int plan(const kbcu_job *j, kbcu_plan *p, char *msg) {
    const kb_case *c = j->c;
    if (c->m < 1 || c->n < 1 || c->k < 1) return kb_fail(msg, KB_NOT_SUPPORTED, "M, N, K >= 1");
    if (!kbcu_fits_i32(c->m) || !kbcu_fits_i32(c->n) || !kbcu_fits_i32(c->k))
        return kb_fail(msg, KB_NOT_SUPPORTED, "M, N or K beyond int32");
    const int out_type = kbcu_float_code(c->out_type);
    if (out_type < 0) return kb_fail(msg, KB_NOT_SUPPORTED, "output type %s", kb_dtype_name(c->out_type));
    if ((c->a_type != KB_E4M3 && c->a_type != KB_E5M2) || (c->b_type != KB_E4M3 && c->b_type != KB_E5M2))
        return kb_fail(msg, KB_NOT_SUPPORTED, "operand types %s x %s", kb_dtype_name(c->a_type),
                       kb_dtype_name(c->b_type));
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT) return kb_fail(msg, KB_NOT_SUPPORTED, "unknown scale mode");
    const int warps = kbcu_def_int(j->v, "WARPS", 4);
    kbcu_launch *l;
    if (kbcu_is(j->v, "gemv_v1")) {
        const int nb = kbcu_def_int(j->v, "NB", 8);
        l = kbcu_add_launch(p, j->v, "gemm_fp8_gemv_v1", kbcu_ceil_div(c->m, warps), kbcu_ceil_div(c->n, nb), 1,
                            warps * 32);
    } else if (kbcu_is(j->v, "gemv_v4") && c->n > 8) {
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "%s is for decode: N <= 8 (N = %lld; its CUDA-core math grows with N, v2's tensor cores do not)",
                       j->v->name, (long long)c->n);
    } else {
        /* v2 and v4 load 16-byte row pieces; v3's bulk copies move 16-byte multiples from
         * 16-byte aligned addresses (PTX ISA, cp.async.bulk) */
        if (c->k % 16)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s loads 16-byte row pieces: needs K %% 16 == 0 (K = %lld)",
                           j->v->name, (long long)c->k);
        for (int t = 0; t < 2; t++) {
            int rc = kbcu_need_aligned(j, t, 16, "loads 16-byte row pieces", msg);
            if (rc != KB_OK) return rc;
        }
        const int nt = kbcu_def_int(j->v, "NT", 2);
        if (kbcu_is(j->v, "gemv_v4")) {
            /* a warp per RPW rows, WARPS warps a block; NB tokens a block */
            const int rpw = kbcu_def_int(j->v, "RPW", 1), nb = kbcu_def_int(j->v, "NB", 8);
            l = kbcu_add_launch(p, j->v, "gemm_fp8_gemv_v4", kbcu_ceil_div(c->m, (int64_t)warps * rpw),
                                kbcu_ceil_div(c->n, nb), 1, warps * 32);
        } else if (kbcu_is(j->v, "gemv_v5")) {
            /* one wave of persistent blocks: each takes the 16-row tiles bx, bx + grid.x, ... */
            const int per_sm = kbcu_def_int(j->v, "PER_SM", 4), ring = kbcu_def_int(j->v, "RING", 8);
            const int64_t tiles = kbcu_ceil_div(c->m, 16);
            int64_t gx = (int64_t)(j->dev.sm_count > 0 ? j->dev.sm_count : 1) * per_sm;
            if (gx > tiles) gx = tiles;
            l = kbcu_add_launch(p, j->v, "gemm_fp8_gemv_v5", gx, kbcu_ceil_div(c->n, 8 * nt), 1, warps * 32);
            if (l) l->smem = kbcu_gemv_v5_smem(warps, ring, nt);
        } else if (kbcu_is(j->v, "gemv_v2")) {
            /* 16*MT rows a block */
            const int mt = kbcu_def_int(j->v, "MT", 1);
            l = kbcu_add_launch(p, j->v, "gemm_fp8_gemv_v2", kbcu_ceil_div(c->m, 16 * mt), kbcu_ceil_div(c->n, 8 * nt),
                                1, warps * 32);
        } else {
            /* v3: 16*MT rows a block; per warp STAGES slice buffers of 16*MT rows of CPS
             * 64-byte chunks, the row stride an odd multiple of 64 bytes (gemm_fp8.cu) */
            const int mt = kbcu_def_int(j->v, "MT", 1), cps = kbcu_def_int(j->v, "CPS", 7);
            const int stages = kbcu_def_int(j->v, "STAGES", 1);
            const int64_t rs = 64 * cps + (cps % 2 ? 0 : 64);
            l = kbcu_add_launch(p, j->v, "gemm_fp8_gemv_v3", kbcu_ceil_div(c->m, 16 * mt), kbcu_ceil_div(c->n, 8 * nt),
                                1, warps * 32);
            if (l) l->smem = (int64_t)warps * stages * 16 * mt * rs;
        }
    }
    const int fmt = (c->a_type == KB_E5M2) | (c->b_type == KB_E5M2) << 1;
    for (int t = 0; t < 5; t++) kbcu_arg_tensor(p, l, t);
    kbcu_arg_i32(p, l, c->m);
    kbcu_arg_i32(p, l, c->n);
    kbcu_arg_i32(p, l, c->k);
    kbcu_arg_i32(p, l, c->scale_mode);
    kbcu_arg_i32(p, l, out_type);
    kbcu_arg_i32(p, l, fmt);
    return KB_OK;
}

static int samples(kb_case *out, int max) {
    /* N = 16 (v2, v3) and the decode sizes v4 takes (N <= 8) */
    const int64_t ns[] = {16, 1, 8};
    int k = 0;
    for (; k < 3 && k < max; k++)
        out[k] = (kb_case){.op = KB_OP_gemm_fp8, .m = 3584, .n = ns[k], .k = 3584, .a_type = KB_E4M3,
                           .b_type = KB_E4M3, .out_type = KB_BF16};
    return k;
}

/* What --tune may set (cuda_ops.h): the range every kernel here takes. */
static const kbcu_tunable tunables[] = {
    {"WARPS", 1, 32, 1, "warps a block"},
    {"NB", 1, 16, 1, "v1, v4: tokens a block"},
    {"UNROLL", 1, 8, 0, "v2: 64-wide K chunks a warp has in flight"},
    {"NT", 1, 8, 0, "n8 token tiles a block (v3, v5 and v2 at MMA8=0: 1 or 2)"},
    {"MT", 1, 2, 0, "v2, v3: m16 row tiles a block (v2: X converted once for them; v3: a lane copies a row)"},
    {"CPS", 1, 8, 0, "v3: 64-byte chunks of a bulk-copied slice"},
    {"STAGES", 1, 4, 0, "v3: slices in flight a warp"},
    {"MINB", 0, 16, 0, "v2, v3, v4: blocks an SM must hold (__launch_bounds__; 0: no minimum)"},
    {"RPW", 1, 2, 0, "v4: rows of W a warp"},
    {"LOADS", 1, 16, 0, "v4: 16-byte pieces of a row a lane has in flight"},
    {"LDHINT", 1, 2, 0, "v2: W's loads (1 plain, 2 no L1 allocation and a 256-byte L2 prefetch)"},
    {"FMTT", 0, 1, 0, "v2: the fp8 formats (0 read at every conversion, 1 one compiled copy per format pair)"},
    {"MMA8", 0, 1, 0, "v2: the tensor-core step (0 fp8 -> f16 and mma .f16, 1 mma .e4m3/.e5m2 on the fp8 bytes)"},
    {"RING", 1, 12, 0, "v5: 64-wide K chunks a warp has in flight (cp.async ring)"},
    {"PER_SM", 1, 8, 0, "v5: blocks an SM holds (grid <= SMs * PER_SM; __launch_bounds__)"},
    KBCU_TUNE_PDL,
    KBCU_TUNE_END,
};

/* v2's, v3's and v4's __launch_bounds__(WARPS*32, MINB) (v5's: PER_SM) asks an SM to hold
 * MINB blocks: beyond the threads an SM holds (sm_90: 2048; sm_86/sm_89: 1536), ptxas
 * ignores it with a warning (CUDA C++ Programming Guide, compute capabilities table), and
 * the point would not be what its name says. v2, v4 and v5 are compiled for sm_80 and up,
 * so sm_89's 1536 bounds them. */
static int tune_check(const kbcu_variant *v, char *msg) {
    const char *minb_name = kbcu_is(v, "gemv_v5") ? "PER_SM" : "MINB";
    const int warps = kbcu_def_int(v, "WARPS", 4), minb = kbcu_def_int(v, minb_name, 1);
    const int from_sm80 = kbcu_is(v, "gemv_v2") || kbcu_is(v, "gemv_v4") || kbcu_is(v, "gemv_v5");
    const int cap = from_sm80 ? 1536 : 2048;
    if ((kbcu_is(v, "gemv_v3") || from_sm80) && warps * 32 * minb > cap)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s: WARPS*32*%s = %d threads an SM must hold (%s: %d)", v->name,
                       minb_name, warps * 32 * minb, from_sm80 ? "sm_89" : "sm_90", cap);
    /* v2's f16 chunk, v3 and v5 hold two token tiles; v2 at MMA8=1 any number */
    const int nt = kbcu_def_int(v, "NT", 1);
    if (nt > 2 && !(kbcu_is(v, "gemv_v2") && kbcu_def_int(v, "MMA8", 0)))
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s: NT=%d token tiles a block needs gemv_v2 at MMA8=1 (else 1 or 2)",
                       v->name, nt);
    /* mma.sync with fp8 operands exists from sm_89 (PTX ISA); a variant listed for sm_80 would
     * be offered to devices that cannot compile it */
    if (kbcu_def_int(v, "MMA8", 0) && v->min_sm < 89)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s: MMA8=1 (fp8 mma.sync) needs sm_89; %s is listed from sm_%d", v->name,
                       v->name, v->min_sm);
    return KB_OK;
}

/* MMA8=1's mma.m16n8k32 on fp8 operands: on sm_89 (and later but sm_90) the fp8 tensor core,
 * whose step aligns its 32 products to the largest and keeps about 14 bits (gemm_fp8.cu);
 * each step is promoted to fp32 as cuBLASLt does with FAST_ACCUM off, so cuBLASLt's bound
 * holds, and its function gives it (kblt_acc_unit_roundoff: 2^-10 / sqrt(K)). On sm_90, whose fp8 tensor math is wgmma only, ptxas lowers
 * the instruction to fp8 -> f16 conversions and HMMA with an fp32 accumulator (the SASS of
 * every MMA8=1 cubin: no QMMA; results/h200/sass-gemv-v2.txt) and the error at f32 output
 * equals the f16 path's (results/h200/mma8nt-f32.csv): fp32. A device not yet known (sm 0)
 * gets the coarse bound. */
static double acc_unit_roundoff(const kbcu_variant *v, int64_t k, int sm) {
    if (!kbcu_def_int(v, "MMA8", 0) || sm == 90) return 0;
    return kblt_acc_unit_roundoff(0, k);
}

const kbcu_op kbcu_op_gemm_fp8 = {variants, 4, 1, plan, samples, tunables, tune_check, acc_unit_roundoff};
