// attention.cu - causal GQA attention, fp32: o = softmax(q k^T / sqrt(d)) v.
//   q [n][heads][d], k, v [kv_len][kv_heads][d], o [n][heads][d]; query head h reads KV
//   head h / (heads/kv_heads); query i sits at position p = kv_len - n + i and sees keys
//   0..p. Softmax with the running max (online softmax, Milakov & Gimelshein 2018):
//   m' = max(m, s), l' = l e^(m-m') + e^(s-m'), acc' = acc e^(m-m') + e^(s-m') v.
//   q is pre-multiplied by 1/sqrt(d) (one fp32 rounding per element).
//
// decode_v1 (small n, long kv_len): flash-decoding. grid (splits, heads, n); a block
//   takes one chunk of keys, its WARPS warps stride over the chunk KPW keys at a time
//   (lane = dims lane, lane+32, ...; q.k by a warp reduction), and writes (m, l, acc[d])
//   to a workspace; attn_decode_combine_v1 merges the splits.
// prefill_v1 (any n): grid (ceil(n/WARPS), heads), one warp per query. The block stages
//   KT keys of K and V in shared memory; lane j scores key t0+j against the warp's query
//   (no reduction per key), then every lane accumulates its dims of sum_j p_j v_j.
//
// -D options: WARPS (warps per block), KPW (decode: keys per warp step), KT (prefill:
// keys per shared-memory tile, 32). Both need d <= 256; prefill needs d % 4 == 0.
#ifndef WARPS
#define WARPS 4
#endif
#ifndef KPW
#define KPW 4
#endif
#ifndef KT
#define KT 32
#endif
#define MAXDPL 8 /* d <= 32*MAXDPL = 256 */

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Online-softmax step of one key tile for a warp: rescale the running output by
// corr, then add p_j * v_j for the tile's nkeys keys (p_j sits in lane j). Lane owns
// dims 4*(lane + 32e), e < 2 (d <= 256).
__device__ __forceinline__ void pv_tile(float4 acc[2], float corr, float pj, const float4 *Vs, int ld, int d4, int nkeys,
                                        int lane) {
#pragma unroll
    for (int e = 0; e < 2; e++) {
        acc[e].x *= corr;
        acc[e].y *= corr;
        acc[e].z *= corr;
        acc[e].w *= corr;
    }
    for (int jj = 0; jj < nkeys; jj++) {
        const float pw = __shfl_sync(0xffffffffu, pj, jj);
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int f = lane + 32 * e;
            if (f < d4) {
                const float4 b = Vs[jj * ld + f];
                acc[e].x = fmaf(pw, b.x, acc[e].x);
                acc[e].y = fmaf(pw, b.y, acc[e].y);
                acc[e].z = fmaf(pw, b.z, acc[e].z);
                acc[e].w = fmaf(pw, b.w, acc[e].w);
            }
        }
    }
}


// Workspace (floats), S = n*heads*splits partial results, index b = (qi*heads + h)*splits + s:
//   ws[b] = m, ws[S + b] = l, ws[2S + b*d + dim] = acc.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
attn_decode_v1(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
               float *__restrict__ ws, int n, int kv_len, int heads, int kv_heads, int d, int chunk, float scale) {
    __shared__ float sm_m[WARPS], sm_l[WARPS];
    __shared__ float sm_acc[WARPS][32 * MAXDPL];
    const int split = blockIdx.x, h = blockIdx.y, qi = blockIdx.z, splits = gridDim.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int hk = h / (heads / kv_heads);
    const int p = kv_len - n + qi;
    const int j0 = split * chunk, j1 = min(j0 + chunk, p + 1);
    const long long kstride = (long long)kv_heads * d;
    const float *qp = q + ((long long)qi * heads + h) * d;
    const float *kb = k + (long long)hk * d, *vb = v + (long long)hk * d;

    float qr[MAXDPL], acc[MAXDPL];
#pragma unroll
    for (int e = 0; e < MAXDPL; e++) {
        const int dim = lane + 32 * e;
        qr[e] = dim < d ? qp[dim] * scale : 0.0f;
        acc[e] = 0.0f;
    }
    float m = neg_inf(), l = 0.0f;
    for (int j = j0 + warp * KPW; j < j1; j += WARPS * KPW) {
        float s[KPW];
#pragma unroll
        for (int u = 0; u < KPW; u++) {
            float dot = 0.0f;
            if (j + u < j1) {
                const float *kr = kb + (long long)(j + u) * kstride;
#pragma unroll
                for (int e = 0; e < MAXDPL; e++)
                    if (lane + 32 * e < d) dot = fmaf(qr[e], kr[lane + 32 * e], dot);
            }
            s[u] = dot;
        }
#pragma unroll
        for (int u = 0; u < KPW; u++) s[u] = j + u < j1 ? warp_sum(s[u]) : neg_inf();
        float mn = m;
#pragma unroll
        for (int u = 0; u < KPW; u++) mn = fmaxf(mn, s[u]);
        const float corr = expf(m - mn); // m = -inf on the first step: 0
        l *= corr;
#pragma unroll
        for (int e = 0; e < MAXDPL; e++) acc[e] *= corr;
#pragma unroll
        for (int u = 0; u < KPW; u++) {
            if (j + u < j1) {
                const float pu = expf(s[u] - mn);
                const float *vr = vb + (long long)(j + u) * kstride;
                l += pu;
#pragma unroll
                for (int e = 0; e < MAXDPL; e++)
                    if (lane + 32 * e < d) acc[e] = fmaf(pu, vr[lane + 32 * e], acc[e]);
            }
        }
        m = mn;
    }

    // merge the warps of this block
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
#pragma unroll
    for (int e = 0; e < MAXDPL; e++) sm_acc[warp][lane + 32 * e] = acc[e];
    __syncthreads();
    float M = neg_inf();
#pragma unroll
    for (int w = 0; w < WARPS; w++) M = fmaxf(M, sm_m[w]);
    const int S = n * heads * splits;
    const long long b = ((long long)qi * heads + h) * splits + split;
    for (int dim = threadIdx.x; dim < d; dim += WARPS * 32) {
        float a = 0.0f;
        if (M != neg_inf())
            for (int w = 0; w < WARPS; w++)
                if (sm_m[w] != neg_inf()) a += sm_acc[w][dim] * expf(sm_m[w] - M);
        ws[2LL * S + b * d + dim] = a;
    }
    if (threadIdx.x == 0) {
        float L = 0.0f;
        if (M != neg_inf())
            for (int w = 0; w < WARPS; w++)
                if (sm_m[w] != neg_inf()) L += sm_l[w] * expf(sm_m[w] - M);
        ws[b] = M;
        ws[S + b] = L;
    }
}

// grid (heads, n); merges the splits of one (query, head).
extern "C" __global__ void __launch_bounds__(128)
attn_decode_combine_v1(const float *__restrict__ ws, float *__restrict__ o, int n, int heads, int d, int splits) {
    const int h = blockIdx.x, qi = blockIdx.y;
    const int S = n * heads * splits;
    const long long b0 = ((long long)qi * heads + h) * splits;
    float M = neg_inf();
    for (int s = 0; s < splits; s++) M = fmaxf(M, ws[b0 + s]);
    float L = 0.0f;
    for (int s = 0; s < splits; s++)
        if (ws[b0 + s] != neg_inf()) L += ws[S + b0 + s] * expf(ws[b0 + s] - M);
    for (int dim = threadIdx.x; dim < d; dim += blockDim.x) {
        float a = 0.0f;
        for (int s = 0; s < splits; s++)
            if (ws[b0 + s] != neg_inf()) a += ws[2LL * S + (b0 + s) * d + dim] * expf(ws[b0 + s] - M);
        o[((long long)qi * heads + h) * d + dim] = a / L;
    }
}

// Shared memory (float4 units, ld = d/4 + 1: the pad keeps lanes reading different
// rows of K on different banks): K tile [KT][ld], V tile [KT][ld], q [WARPS][d/4].
extern "C" __global__ void __launch_bounds__(WARPS * 32)
attn_prefill_v1(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                float *__restrict__ o, int n, int kv_len, int heads, int kv_heads, int d, float scale) {
    extern __shared__ float4 smem4[];
    const int d4 = d / 4, ld = d4 + 1;
    float4 *Ks = smem4, *Vs = smem4 + KT * ld, *Qs = smem4 + 2 * KT * ld;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, h = blockIdx.y;
    const int hk = h / (heads / kv_heads);
    const int qi = blockIdx.x * WARPS + warp;
    const bool valid = qi < n;
    const int p = kv_len - n + qi; // this warp's query position
    const int qlast = min(blockIdx.x * WARPS + WARPS, n) - 1;
    const int kend = kv_len - n + qlast + 1; // keys any query of the block sees
    const float4 *q4 = (const float4 *)q, *k4 = (const float4 *)k, *v4 = (const float4 *)v;
    const float4 z4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    for (int f = lane; f < d4; f += 32) {
        float4 a = valid ? q4[((long long)qi * heads + h) * d4 + f] : z4;
        a.x *= scale;
        a.y *= scale;
        a.z *= scale;
        a.w *= scale;
        Qs[warp * d4 + f] = a;
    }
    float4 acc[2] = {z4, z4}; // dims 4*(lane + 32e), d <= 256
    float m = neg_inf(), l = 0.0f;

    for (int t0 = 0; t0 < kend; t0 += KT) {
        __syncthreads(); // the previous tile is consumed (and Qs written, the first time)
        for (int e = threadIdx.x; e < KT * d4; e += WARPS * 32) {
            const int r = e / d4, f = e - r * d4, j = t0 + r;
            const long long g = ((long long)j * kv_heads + hk) * d4 + f;
            Ks[r * ld + f] = j < kv_len ? k4[g] : z4;
            Vs[r * ld + f] = j < kv_len ? v4[g] : z4;
        }
        __syncthreads();
        if (!valid || t0 > p) continue; // warp-uniform
        const int j = t0 + lane;
        float s = neg_inf();
        if (j <= p) {
            float dot = 0.0f;
            for (int f = 0; f < d4; f++) {
                const float4 a = Qs[warp * d4 + f], b = Ks[lane * ld + f];
                dot = fmaf(a.x, b.x, dot);
                dot = fmaf(a.y, b.y, dot);
                dot = fmaf(a.z, b.z, dot);
                dot = fmaf(a.w, b.w, dot);
            }
            s = dot;
        }
        const float mn = fmaxf(m, warp_max(s)); // finite: key t0 <= p is in the tile
        const float corr = expf(m - mn);
        const float pj = j <= p ? expf(s - mn) : 0.0f;
        l = l * corr + warp_sum(pj);
        const int nkeys = min(KT, p - t0 + 1);
        pv_tile(acc, corr, pj, Vs, ld, d4, nkeys, lane);
        m = mn;
    }
    if (!valid) return;
    const float inv = 1.0f / l;
    float4 *o4 = (float4 *)o + ((long long)qi * heads + h) * d4;
#pragma unroll
    for (int e = 0; e < 2; e++) {
        const int f = lane + 32 * e;
        if (f < d4) o4[f] = make_float4(acc[e].x * inv, acc[e].y * inv, acc[e].z * inv, acc[e].w * inv);
    }
}

// decode_v2 (small n): flash-decoding with the GQA group sharing one KV stream.
//   grid (splits, kv_heads, n), 8 warps; warp g < G = heads/kv_heads is query head
//   hk*G + g. Each 32-key tile of K and V crosses DRAM once for the whole group (v1
//   reads it once per query head), lands in shared memory, and is used as in
//   prefill_v1: lane j scores key t0+j, then every lane accumulates its 4 dims.
//   Splits are planned so most blocks hold one or two tiles: all loads of the chip go
//   out at once. Workspace (floats, S = n*heads*splits, b = (qi*heads + h)*splits + s):
//   acc at ws[b*d + dim] first (16-byte aligned rows: d % 4 == 0), then m at ws[S*d + b],
//   l at ws[S*d + S + b]. attn_decode_combine_v2 merges.
extern "C" __global__ void __launch_bounds__(256)
attn_decode_v2(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
               float *__restrict__ ws, int n, int kv_len, int heads, int kv_heads, int d, int chunk, float scale) {
    extern __shared__ float4 dsm4[];
    const int d4 = d / 4, ld = d4 + 1;
    float4 *Ks = dsm4, *Vs = dsm4 + KT * ld, *Qs = dsm4 + 2 * KT * ld;
    const int split = blockIdx.x, hk = blockIdx.y, qi = blockIdx.z, splits = gridDim.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int G = heads / kv_heads, h = hk * G + warp;
    const bool active = warp < G;
    const int p = kv_len - n + qi;
    const int j0 = split * chunk, j1 = min(j0 + chunk, p + 1);
    const float4 *q4 = (const float4 *)q, *k4 = (const float4 *)k, *v4 = (const float4 *)v;
    const float4 z4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    for (int f = lane; f < d4; f += 32) {
        float4 a = active ? q4[((long long)qi * heads + h) * d4 + f] : z4;
        a.x *= scale;
        a.y *= scale;
        a.z *= scale;
        a.w *= scale;
        Qs[warp * d4 + f] = a;
    }
    float4 acc[2] = {z4, z4};
    float m = neg_inf(), l = 0.0f;
    for (int t0 = j0; t0 < j1; t0 += KT) {
        __syncthreads();
        for (int e = threadIdx.x; e < KT * d4; e += 256) {
            const int r = e / d4, f = e - r * d4, j = t0 + r;
            const long long gi = ((long long)j * kv_heads + hk) * d4 + f;
            Ks[r * ld + f] = j < j1 ? k4[gi] : z4;
            Vs[r * ld + f] = j < j1 ? v4[gi] : z4;
        }
        __syncthreads();
        if (!active) continue;
        const int j = t0 + lane;
        float s = neg_inf();
        if (j < j1) {
            float dot = 0.0f;
            for (int f = 0; f < d4; f++) {
                const float4 a = Qs[warp * d4 + f], b = Ks[lane * ld + f];
                dot = fmaf(a.x, b.x, dot);
                dot = fmaf(a.y, b.y, dot);
                dot = fmaf(a.z, b.z, dot);
                dot = fmaf(a.w, b.w, dot);
            }
            s = dot;
        }
        const float mn = fmaxf(m, warp_max(s)); // finite: key t0 < j1 is in the tile
        const float corr = expf(m - mn);
        const float pj = j < j1 ? expf(s - mn) : 0.0f;
        l = l * corr + warp_sum(pj);
        const int nkeys = min(KT, j1 - t0);
        pv_tile(acc, corr, pj, Vs, ld, d4, nkeys, lane);
        m = mn;
    }
    if (!active) return;
    const long long S = (long long)n * heads * splits;
    const long long b = ((long long)qi * heads + h) * splits + split;
    if (lane == 0) {
        ws[S * d + b] = m;
        ws[S * d + S + b] = l;
    }
    float4 *wacc = (float4 *)(ws + b * d);
#pragma unroll
    for (int e = 0; e < 2; e++) {
        const int f = lane + 32 * e;
        if (f < d4) wacc[f] = acc[e];
    }
}

// grid (heads, n), 128 threads: the split weights w_s = e^(m_s - M) once in shared
// memory (parallel over splits), then each thread sums its dims over the splits.
extern "C" __global__ void __launch_bounds__(128)
attn_decode_combine_v2(const float *__restrict__ ws, float *__restrict__ o, int n, int heads, int d, int splits) {
    // One dynamic block: [splits] weights, then 4 warp partials and the broadcast.
    // (compute-sanitizer's memcheck flagged a 12-byte out-of-bounds __shared__ read
    // here with red/bcast as static arrays beside the dynamic one.)
    extern __shared__ float wsm[];
    float *red = wsm + splits, *bcast_p = red + 4;
    const int h = blockIdx.x, qi = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long S = (long long)n * heads * splits;
    const float *wm = ws + S * d, *wl = ws + S * d + S; // layout: attn_decode_v2
    const long long b0 = ((long long)qi * heads + h) * splits;
    float M = neg_inf();
    for (int s = threadIdx.x; s < splits; s += 128) M = fmaxf(M, wm[b0 + s]);
    M = warp_max(M);
    if (lane == 0) red[warp] = M;
    __syncthreads();
    if (threadIdx.x == 0) *bcast_p = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
    __syncthreads();
    M = *bcast_p; // finite: split 0 always holds key 0
    float L = 0.0f;
    for (int s = threadIdx.x; s < splits; s += 128) {
        const float ms = wm[b0 + s];
        const float w = ms == neg_inf() ? 0.0f : expf(ms - M);
        wsm[s] = w;
        L += wl[b0 + s] * w;
    }
    L = warp_sum(L);
    __syncthreads(); // red[] reads above are done; wsm complete below
    if (lane == 0) red[warp] = L;
    __syncthreads();
    const float inv = 1.0f / (red[0] + red[1] + red[2] + red[3]);
    for (int dim = threadIdx.x; dim < d; dim += 128) {
        float a = 0.0f;
        for (int s = 0; s < splits; s++) a = fmaf(ws[(b0 + s) * d + dim], wsm[s], a);
        o[((long long)qi * heads + h) * d + dim] = a * inv;
    }
}

// decode_v3 (small n, long kv_len, sm_80+): one block per (query, split, KV head)
//   holds the whole GQA group (<= 8 query heads), reads every K/V byte of its keys
//   once, straight into the registers that use it, through a cp.async pipeline.
//   Layout "lane per dims": lane owns dims 4*(lane + 32c), c < HD/128, of q (8 heads,
//   in registers), of every K and V row and of the 8 heads' accumulators. Warp w of the
//   block takes the 4-key steps w, w + WARPS, ... of the block's keys; per step:
//   - its lanes cp.async their own 16-byte pieces of the 4 K and 4 V rows into the
//     warp's own shared stage (keys past the query's last are zero-filled), STAGES
//     steps ahead: a lane only ever reads what it copied itself, so cp.async.wait_group
//     is the only synchronisation (no __syncthreads in the loop);
//   - 32 partial dots (8 heads x 4 keys) per lane, then a reduce-scatter over the warp
//     (31 shuffles): lane g*4 + kk ends with the full dot of head g and key kk;
//   - online softmax per head over the 4 lanes of the head (2 xor shuffles), the 32
//     probabilities and 8 rescale factors go through 40 floats of shared memory
//     (broadcast reads), and every lane adds p * v into its dims of all 8 heads.
//   At the end the warps merge in shared memory (fixed warp order: deterministic) and
//   the block writes one partial per (query, head, split), v2's workspace layout:
//   acc at ws[b*HD], m at ws[S*HD + b], l at ws[S*HD + S + b], b = (qi*heads + h)*splits
//   + split. attn_decode_combine_v3 merges the splits, parallel over (32 dims, head,
//   query). Only v3's modules (-DHD) carry these kernels: the other variants' modules
//   stay free of cp.async (sm_75).
#ifdef HD
#ifndef STAGES
#define STAGES 4
#endif
#define V3_G 8           /* query heads a block holds (a GQA group, padded) */
#define V3_KU 4          /* keys a warp step: V3_KU * V3_G = 32 dots, one a lane after the reduce-scatter */
#define V3_HD4 (HD / 4)  /* float4s a row */
#define V3_NC (HD / 128) /* float4s of a row a lane owns */
#define V3_STAGE4 (2 * V3_KU * V3_HD4) /* a stage: 4 K rows then 4 V rows, float4s */
#define V3_PIPE4 (WARPS * STAGES * V3_STAGE4)
#define V3_MERGE4 (WARPS * (V3_G * V3_HD4 + 4)) /* per warp: acc [8][HD4], then m[8], l[8] */
#define V3_REGION4 (V3_PIPE4 > V3_MERGE4 ? V3_PIPE4 : V3_MERGE4)
#define V3_XCH 40 /* floats a warp: p[32], corr[8] */
// dynamic shared memory (attention.c plans the same): V3_REGION4 float4s, then
// WARPS * V3_XCH floats
static_assert(HD % 128 == 0, "decode_v3: HD a multiple of 128 (a float4 a lane a 128-dim chunk)");
static_assert(STAGES >= 1, "decode_v3: STAGES >= 1");

__device__ __forceinline__ unsigned smem_u32(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }
// 16 bytes global -> shared, L2 only (.cg); src_bytes 0 reads nothing and writes zeros
__device__ __forceinline__ void cp_async16(unsigned dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// The warp's i-th step (keys t0 .. t0+3, those >= jend zero-filled) into stage i % STAGES;
// past the warp's last step only an empty group, so the group count stays i + 1.
__device__ __forceinline__ void v3_issue(float4 *wpipe, const float4 *kb, const float4 *vb, long long row4, int t0,
                                         int jend, int i, int mine, int lane) {
    if (i < mine) {
        float4 *st = wpipe + (i % STAGES) * V3_STAGE4;
#pragma unroll
        for (int kk = 0; kk < V3_KU; kk++) {
            const int t = t0 + kk;
            const bool ok = t < jend;
            const long long o = (ok ? (long long)t : 0LL) * row4; // a zero-fill reads nothing, its address stays valid
#pragma unroll
            for (int c = 0; c < V3_NC; c++) {
                cp_async16(smem_u32(st + kk * V3_HD4 + lane + 32 * c), kb + o + 32 * c, ok ? 16 : 0);
                cp_async16(smem_u32(st + (V3_KU + kk) * V3_HD4 + lane + 32 * c), vb + o + 32 * c, ok ? 16 : 0);
            }
        }
    }
    cp_async_commit();
}

// Reduce-scatter of 32 values over the warp (recursive halving): afterwards lane L holds
// in v[0] the sum over all lanes of their v[L]. At offset O a lane keeps the half of its
// values whose index bit O matches its own lane bit and sends the other half to lane ^ O;
// v[i], i < O, then stands for index i + (lane's bits >= O).
template <int O> __device__ __forceinline__ void v3_halve(float v[32], int lane) {
    const bool up = lane & O;
#pragma unroll
    for (int i = 0; i < O; i++) {
        const float send = up ? v[i] : v[i + O], keep = up ? v[i + O] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, O);
    }
}
__device__ __forceinline__ float v3_reduce_scatter(float v[32], int lane) {
    v3_halve<16>(v, lane);
    v3_halve<8>(v, lane);
    v3_halve<4>(v, lane);
    v3_halve<2>(v, lane);
    v3_halve<1>(v, lane);
    return v[0];
}

// Block (qi, split, hk) of a grid (n, splits, kv_heads) of WARPS * 32 threads: its
// partial (m, l, acc) of every head of the group into ws (decode_v3 and decode_v4 alike).
__device__ __forceinline__ void v3_partial(const float *__restrict__ q, const float *__restrict__ k,
                                           const float *__restrict__ v, float *__restrict__ ws, int n, int kv_len,
                                           int heads, int kv_heads, int chunk, float scale, float4 *dsm4) {
    const int qi = blockIdx.x, split = blockIdx.y, hk = blockIdx.z, splits = gridDim.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, kk_l = lane & 3, g_l = lane >> 2;
    const int G = heads / kv_heads;
    const int j0 = split * chunk;
    const int jend = min(j0 + chunk, kv_len - n + qi + 1); // this query's keys: [j0, jend), causal
    const int nsteps = jend > j0 ? (jend - j0 + V3_KU - 1) / V3_KU : 0;
    const int mine = warp < nsteps ? (nsteps - 1 - warp) / WARPS + 1 : 0; // steps warp, warp + WARPS, ...
    const float4 z4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    float4 qr[V3_G][V3_NC], acc[V3_G][V3_NC];
    const float4 *q4 = (const float4 *)q;
#pragma unroll
    for (int g = 0; g < V3_G; g++)
#pragma unroll
        for (int c = 0; c < V3_NC; c++) {
            float4 a = g < G ? q4[((long long)qi * heads + hk * G + g) * V3_HD4 + lane + 32 * c] : z4;
            a.x *= scale;
            a.y *= scale;
            a.z *= scale;
            a.w *= scale;
            qr[g][c] = a;
            acc[g][c] = z4;
        }
    float m = neg_inf(), l = 0.0f; // of head g_l (its 4 lanes hold equal copies)

    float4 *wpipe = dsm4 + warp * (STAGES * V3_STAGE4);
    float *wx = (float *)(dsm4 + V3_REGION4) + warp * V3_XCH;
    const long long row4 = (long long)kv_heads * V3_HD4; // float4s from one key to the next
    const float4 *kb = (const float4 *)k + (long long)hk * V3_HD4 + lane;
    const float4 *vb = (const float4 *)v + (long long)hk * V3_HD4 + lane;
#define V3_T0(i) (j0 + (warp + (i) * WARPS) * V3_KU)
#pragma unroll
    for (int i = 0; i < STAGES; i++) v3_issue(wpipe, kb, vb, row4, V3_T0(i), jend, i, mine, lane);

    for (int i = 0; i < mine; i++) {
        cp_async_wait<STAGES - 1>(); // groups 0..i landed: step i is in its stage
        const float4 *st = wpipe + (i % STAGES) * V3_STAGE4;
        const int t0 = V3_T0(i);
        float s[32]; // s[g*4 + kk]: this lane's part of q_g . k_kk
#pragma unroll
        for (int kk = 0; kk < V3_KU; kk++) {
            float4 kr[V3_NC];
#pragma unroll
            for (int c = 0; c < V3_NC; c++) kr[c] = st[kk * V3_HD4 + lane + 32 * c];
#pragma unroll
            for (int g = 0; g < V3_G; g++) {
                float dot = 0.0f;
#pragma unroll
                for (int c = 0; c < V3_NC; c++) {
                    dot = fmaf(qr[g][c].x, kr[c].x, dot);
                    dot = fmaf(qr[g][c].y, kr[c].y, dot);
                    dot = fmaf(qr[g][c].z, kr[c].z, dot);
                    dot = fmaf(qr[g][c].w, kr[c].w, dot);
                }
                s[g * V3_KU + kk] = dot;
            }
        }
        float sc = v3_reduce_scatter(s, lane); // head g_l, key t0 + kk_l
        if (t0 + kk_l >= jend) sc = neg_inf();
        float mt = fmaxf(sc, __shfl_xor_sync(0xffffffffu, sc, 1));
        mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
        const float mn = fmaxf(m, mt);   // finite: key t0 < jend is in the step
        const float corr = expf(m - mn); // m = -inf on the first step: 0
        const float pr = expf(sc - mn);  // a masked key: 0
        float ps = pr + __shfl_xor_sync(0xffffffffu, pr, 1);
        ps += __shfl_xor_sync(0xffffffffu, ps, 2); // a + b == b + a: the 4 copies stay equal
        l = l * corr + ps;
        m = mn;
        __syncwarp(); // the previous step's reads of wx are done
        wx[lane] = pr;
        if (kk_l == 0) wx[32 + g_l] = corr;
        __syncwarp();
        float4 vr[V3_KU][V3_NC];
#pragma unroll
        for (int kk = 0; kk < V3_KU; kk++)
#pragma unroll
            for (int c = 0; c < V3_NC; c++) vr[kk][c] = st[(V3_KU + kk) * V3_HD4 + lane + 32 * c];
#pragma unroll
        for (int g = 0; g < V3_G; g++) {
            const float cg = wx[32 + g];
            const float4 pg = ((const float4 *)wx)[g]; // p of keys 0..3 of head g
#pragma unroll
            for (int c = 0; c < V3_NC; c++) {
                float4 a = acc[g][c];
                a.x = fmaf(pg.w, vr[3][c].x,
                           fmaf(pg.z, vr[2][c].x, fmaf(pg.y, vr[1][c].x, fmaf(pg.x, vr[0][c].x, a.x * cg))));
                a.y = fmaf(pg.w, vr[3][c].y,
                           fmaf(pg.z, vr[2][c].y, fmaf(pg.y, vr[1][c].y, fmaf(pg.x, vr[0][c].y, a.y * cg))));
                a.z = fmaf(pg.w, vr[3][c].z,
                           fmaf(pg.z, vr[2][c].z, fmaf(pg.y, vr[1][c].z, fmaf(pg.x, vr[0][c].z, a.z * cg))));
                a.w = fmaf(pg.w, vr[3][c].w,
                           fmaf(pg.z, vr[2][c].w, fmaf(pg.y, vr[1][c].w, fmaf(pg.x, vr[0][c].w, a.w * cg))));
                acc[g][c] = a;
            }
        }
        // Refill the stage just read. Only this lane's own earlier shared loads touched
        // these bytes; they were issued before (the asm's memory clobber keeps the
        // order) to the same in-order load/store unit, and a cp.async writes shared
        // memory only after its own global read.
        v3_issue(wpipe, kb, vb, row4, V3_T0(i + STAGES), jend, i + STAGES, mine, lane);
    }
#undef V3_T0
    cp_async_wait<0>();
    __syncthreads(); // every warp's stages drained: the region becomes the merge area

    float4 *macc = dsm4;                                                          // [WARPS][8][HD4]
    float *mm = (float *)(dsm4 + WARPS * V3_G * V3_HD4), *ml = mm + WARPS * V3_G; // [WARPS][8] each
    float *wg = (float *)(dsm4 + V3_REGION4); // the exchange area: [WARPS][8] weights, M[8], L[8]
#pragma unroll
    for (int g = 0; g < V3_G; g++)
#pragma unroll
        for (int c = 0; c < V3_NC; c++) macc[(warp * V3_G + g) * V3_HD4 + lane + 32 * c] = acc[g][c];
    if (kk_l == 0) {
        mm[warp * V3_G + g_l] = m;
        ml[warp * V3_G + g_l] = l;
    }
    __syncthreads();
    if (threadIdx.x < V3_G) {
        const int g = threadIdx.x;
        float M = neg_inf(), L = 0.0f;
        for (int w = 0; w < WARPS; w++) M = fmaxf(M, mm[w * V3_G + g]);
        for (int w = 0; w < WARPS; w++) { // a warp without keys (m = -inf): weight 0
            const float mw = mm[w * V3_G + g], wt = mw == neg_inf() ? 0.0f : expf(mw - M);
            wg[w * V3_G + g] = wt;
            L = fmaf(ml[w * V3_G + g], wt, L);
        }
        wg[WARPS * V3_G + g] = M; // -inf when the block holds no key of this query
        wg[WARPS * V3_G + V3_G + g] = L;
    }
    __syncthreads();
    const long long S = (long long)n * heads * splits;
    const long long b0 = ((long long)qi * heads + hk * G) * splits + split; // head hk*G + g at b0 + g*splits
    for (int e = threadIdx.x; e < G * V3_HD4; e += WARPS * 32) {
        const int g = e / V3_HD4, f = e - g * V3_HD4;
        float4 a = z4;
        for (int w = 0; w < WARPS; w++) {
            const float wt = wg[w * V3_G + g];
            const float4 b = macc[(w * V3_G + g) * V3_HD4 + f];
            a.x = fmaf(wt, b.x, a.x);
            a.y = fmaf(wt, b.y, a.y);
            a.z = fmaf(wt, b.z, a.z);
            a.w = fmaf(wt, b.w, a.w);
        }
        ((float4 *)ws)[(b0 + (long long)g * splits) * V3_HD4 + f] = a;
    }
    if (threadIdx.x < G) {
        const long long b = b0 + (long long)threadIdx.x * splits;
        ws[S * HD + b] = wg[WARPS * V3_G + threadIdx.x];
        ws[S * HD + S + b] = wg[WARPS * V3_G + V3_G + threadIdx.x];
    }
}

// grid (n, splits, kv_heads), WARPS * 32 threads.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
attn_decode_v3(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
               float *__restrict__ ws, int n, int kv_len, int heads, int kv_heads, int d_is_HD, int chunk,
               float scale) {
    extern __shared__ float4 dsm4[];
    (void)d_is_HD; // the plan checks head_dim == HD
    v3_partial(q, k, v, ws, n, kv_len, heads, kv_heads, chunk, scale, dsm4);
}

// grid (HD/32, heads, n), 256 threads: block (chunk, h, qi) merges 32 dims of one
// (query, head). The split weights w_s = e^(m_s - M) once in shared memory; warp w sums
// splits w, w+8, ... with 4 independent accumulators (4 loads in flight a lane, not one
// dependent chain), and the 8 warp sums add up in warp order: deterministic.
// Shared (one dynamic block): [splits] weights, [8] maxima, [8] sums, [8][32] partials.
extern "C" __global__ void __launch_bounds__(256, 4)
attn_decode_combine_v3(const float *__restrict__ ws, float *__restrict__ o, int n, int heads, int splits) {
    extern __shared__ float csm[];
    float *wsm = csm, *rmax = csm + splits, *rsum = rmax + 8, *part = rsum + 8;
    const int h = blockIdx.y, qi = blockIdx.z, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int dim = blockIdx.x * 32 + lane;
    const long long S = (long long)n * heads * splits;
    const float *wm = ws + S * HD, *wl = wm + S; // layout: attn_decode_v3
    const long long b0 = ((long long)qi * heads + h) * splits;
    float M = neg_inf();
    for (int s = threadIdx.x; s < splits; s += 256) M = fmaxf(M, wm[b0 + s]);
    M = warp_max(M);
    if (lane == 0) rmax[warp] = M;
    __syncthreads();
    M = rmax[0];
    for (int w = 1; w < 8; w++) M = fmaxf(M, rmax[w]); // finite: split 0 always holds key 0
    float L = 0.0f;
    for (int s = threadIdx.x; s < splits; s += 256) {
        const float ms = wm[b0 + s], w = ms == neg_inf() ? 0.0f : expf(ms - M);
        wsm[s] = w;
        L = fmaf(wl[b0 + s], w, L);
    }
    L = warp_sum(L);
    if (lane == 0) rsum[warp] = L;
    __syncthreads(); // wsm and rsum complete
    float Lt = 0.0f;
    for (int w = 0; w < 8; w++) Lt += rsum[w];
    const float *ap = ws + b0 * HD + dim;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int s = warp;
    for (; s + 24 < splits; s += 32) {
        a0 = fmaf(ap[(long long)s * HD], wsm[s], a0);
        a1 = fmaf(ap[(long long)(s + 8) * HD], wsm[s + 8], a1);
        a2 = fmaf(ap[(long long)(s + 16) * HD], wsm[s + 16], a2);
        a3 = fmaf(ap[(long long)(s + 24) * HD], wsm[s + 24], a3);
    }
    for (; s < splits; s += 8) a0 = fmaf(ap[(long long)s * HD], wsm[s], a0);
    part[warp * 32 + lane] = (a0 + a1) + (a2 + a3);
    __syncthreads();
    if (warp == 0) {
        float a = 0.0f;
        for (int w = 0; w < 8; w++) a += part[w * 32 + lane];
        o[((long long)qi * heads + h) * HD + dim] = a / Lt;
    }
}

// decode_v4: decode_v3's blocks (v3_partial) and its combine fused into the same launch.
// Each block writes its partial as v3 does, then takes a ticket per (query, KV head,
// group of `group` consecutive splits); the block that takes its group's last ticket
// merges the group's partials (in split order) into a group partial in ws2; the block
// that then takes the last of the (query, KV head)'s `ngroups` tickets merges the group
// partials (in group order) into o. With one group the first merge writes o. Every sum
// is in a fixed order, so the bits do not depend on which block came last. Two levels
// of ~sqrt(splits) partials each keep the tail a single block does short (one block
// merging all the splits would read every partial of the group through one SM).
// The counters start at 0 (the plan asks the worker to zero the workspace once, at
// prepare) and the block that takes a counter's last ticket sets it back to 0: the
// next launch (same stream) finds them at 0 again.

// After every thread's partial stores: the block's ticket on *ctr; true in every thread
// of the block that took the last of `count` tickets. The fence before the ticket makes
// this block's stores visible to the last block; the last block's fence after it orders
// its reads (through L2, __ldcg) after every other block's stores.
__device__ __forceinline__ bool v4_last_ticket(unsigned *ctr, int count, volatile int *flag) {
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        const bool last = atomicAdd(ctr, 1u) == (unsigned)count - 1u;
        if (last) {
            atomicExch(ctr, 0u); // every other block of this counter has taken its ticket
            __threadfence();
        }
        *flag = last;
    }
    __syncthreads();
    return *flag != 0;
}

// Merges partials first .. first + cnt - 1 (in that order) of the heads hk*G + g of query
// qi, src in v3's layout over S partials, `per` partials a head; into the partial `di`
// of `dper` a head of dst (the same layout over Sd), or, when o, into the output.
// sm: 8 * cnt + 16 floats of shared memory (weights, then M[8], L[8]).
__device__ __forceinline__ void v4_merge(const float *src, long long S, int per, int first, int cnt, float *dst,
                                         long long Sd, int dper, int di, float *o, int qi, int heads, int hk, int G,
                                         float *sm) {
    float *sw = sm, *sM = sm + V3_G * cnt, *sL = sM + V3_G;
    const long long b0 = ((long long)qi * heads + hk * G) * per + first; // head hk*G + g at b0 + g*per
    if (threadIdx.x < G) {
        const int g = threadIdx.x;
        const float *pm = src + S * HD + b0 + (long long)g * per, *pl = pm + S;
        float M = neg_inf(), L = 0.0f;
        for (int c = 0; c < cnt; c++) M = fmaxf(M, __ldcg(pm + c));
        for (int c = 0; c < cnt; c++) { // a partial without keys (m = -inf): weight 0
            const float mc = __ldcg(pm + c), w = mc == neg_inf() ? 0.0f : expf(mc - M);
            sw[g * cnt + c] = w;
            L = fmaf(__ldcg(pl + c), w, L);
        }
        sM[g] = M; // -inf only for a group no key of the query falls in (never the last merge's)
        sL[g] = L;
    }
    __syncthreads();
    const float4 *s4 = (const float4 *)src;
    for (int e = threadIdx.x; e < G * V3_HD4; e += blockDim.x) {
        const int g = e / V3_HD4, f = e - g * V3_HD4;
        const float4 *ap = s4 + (b0 + (long long)g * per) * V3_HD4 + f;
        const float *wp = sw + g * cnt;
        float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
        for (int c = 0; c < cnt; c++) { // the loads run ahead, the sum stays in order
            const float4 b = __ldcg(ap + (long long)c * V3_HD4);
            const float w = wp[c];
            a.x = fmaf(w, b.x, a.x);
            a.y = fmaf(w, b.y, a.y);
            a.z = fmaf(w, b.z, a.z);
            a.w = fmaf(w, b.w, a.w);
        }
        if (o) {
            const float L = sL[g];
            a.x /= L;
            a.y /= L;
            a.z /= L;
            a.w /= L;
            ((float4 *)o)[((long long)qi * heads + hk * G + g) * V3_HD4 + f] = a;
        } else {
            ((float4 *)dst)[(((long long)qi * heads + hk * G + g) * dper + di) * V3_HD4 + f] = a;
        }
    }
    if (!o && threadIdx.x < G) {
        const long long b = ((long long)qi * heads + hk * G + threadIdx.x) * dper + di;
        dst[Sd * HD + b] = sM[threadIdx.x];
        dst[Sd * HD + Sd + b] = sL[threadIdx.x];
    }
}

// grid (n, splits, kv_heads), WARPS * 32 threads. ws: v3's partials (S = n*heads*splits);
// ws2: the group partials (n*heads*ngroups, same layout); ctr: n*kv_heads*ngroups group
// counters, then n*kv_heads (query, KV head) counters.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
attn_decode_v4(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
               float *__restrict__ o, float *__restrict__ ws, float *__restrict__ ws2, unsigned *__restrict__ ctr,
               int n, int kv_len, int heads, int kv_heads, int d_is_HD, int chunk, float scale, int group) {
    extern __shared__ float4 dsm4[];
    (void)d_is_HD; // the plan checks head_dim == HD
    v3_partial(q, k, v, ws, n, kv_len, heads, kv_heads, chunk, scale, dsm4);
    const int qi = blockIdx.x, split = blockIdx.y, hk = blockIdx.z, splits = gridDim.y;
    const int G = heads / kv_heads, ngroups = (splits + group - 1) / group, grp = split / group;
    const int first = grp * group, cnt = min(group, splits - first);
    const long long S = (long long)n * heads * splits, S2 = (long long)n * heads * ngroups;
    float *sm = (float *)dsm4;                         // the merge's weights: the region is free now
    volatile int *flag = (int *)(dsm4 + V3_REGION4);   // the exchange area's first float
    if (!v4_last_ticket(ctr + ((long long)qi * kv_heads + hk) * ngroups + grp, cnt, flag)) return;
    if (ngroups == 1) {
        v4_merge(ws, S, splits, 0, splits, nullptr, 0, 0, 0, o, qi, heads, hk, G, sm);
        return;
    }
    v4_merge(ws, S, splits, first, cnt, ws2, S2, ngroups, grp, nullptr, qi, heads, hk, G, sm);
    if (!v4_last_ticket(ctr + (long long)n * kv_heads * ngroups + (long long)qi * kv_heads + hk, ngroups, flag))
        return;
    v4_merge(ws2, S2, ngroups, 0, ngroups, nullptr, 0, 0, 0, o, qi, heads, hk, G, sm);
}
#endif
