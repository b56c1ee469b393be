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
