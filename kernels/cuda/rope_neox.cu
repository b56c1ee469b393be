// rope_neox.cu - rotary embedding, NEOX layout: x [N][heads][d], pos [N] (int32).
// For i < d/2, pair (i, i + d/2), angle a = pos * theta^(-2i/d) (RoFormer, Su et al.
// 2021; the NEOX half-split pairing of GPT-NeoX and HF's rotate_half):
//   y_i = x_i cos a - x_{i+d/2} sin a,   y_{i+d/2} = x_i sin a + x_{i+d/2} cos a.
// theta (the base) comes from the case (Qwen2.5: 1e6).
//
// The angle and its cos/sin are computed in fp64 and rounded once to fp32: at
// pos ~ 32k an fp32 angle (powf, or ggml CPU's repeated products) is off by up to
// ~pos*(i+2)*2^-24 rad, which is the known way fp32 rope implementations drift apart.
// The cost is one pow + sincos per (token, i): amortized over the heads in v2.
//
// -D options: BLOCK (threads per block); PDL (1: a programmatic dependent launch, pdl.cuh);
// ITEMS (v3, v4: float4 pairs a thread loads before it computes); LDHINT, STHINT (v3, v4:
// cache hints of the loads and stores, stream.cuh). v2-v4 need d % 8 == 0 (float4 halves).
#include "pdl.cuh"    // pdl_enter, pdl_wait: the PDL tunable
#include "stream.cuh" // ld_stream, st_stream: the LDHINT and STHINT tunables
#ifndef BLOCK
#define BLOCK 256
#endif

__device__ __forceinline__ void rope_angle(int p, int i, int d, double theta, float *c, float *s) {
    const double a = (double)p * pow(theta, -2.0 * (double)i / (double)d);
    double sd, cd;
    sincos(a, &sd, &cd);
    *c = (float)cd;
    *s = (float)sd;
}

// v1: one thread per (token, head, pair); each computes its own angle.
extern "C" __global__ void __launch_bounds__(BLOCK)
rope_neox_v1(const float *__restrict__ x, const int *__restrict__ pos, float *__restrict__ y, int n, int heads, int d,
             double theta) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int half = d / 2;
    const long long idx = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (idx >= (long long)n * heads * half) return;
    const int i = (int)(idx % half);
    const long long row = idx / half; // token * heads + head
    const int t = (int)(row / heads);
    float c, s;
    rope_angle(pos[t], i, d, theta, &c, &s);
    const long long b = row * d;
    const float x0 = x[b + i], x1 = x[b + i + half];
    y[b + i] = x0 * c - x1 * s;
    y[b + i + half] = x0 * s + x1 * c;
}

// One float4 of pairs: x_i cos - x_{i+d/2} sin and x_i sin + x_{i+d/2} cos, from the
// (cos, sin) table cs, streamed to yb (the row's output).
__device__ __forceinline__ void rope4(const float4 a, const float4 u, const float *cs, int half, int i, float *yb) {
    const float4 c = *(const float4 *)(cs + i), s = *(const float4 *)(cs + half + i);
    float4 lo, hi;
    lo.x = a.x * c.x - u.x * s.x;
    hi.x = a.x * s.x + u.x * c.x;
    lo.y = a.y * c.y - u.y * s.y;
    hi.y = a.y * s.y + u.y * c.y;
    lo.z = a.z * c.z - u.z * s.z;
    hi.z = a.z * s.z + u.z * c.z;
    lo.w = a.w * c.w - u.w * s.w;
    hi.w = a.w * s.w + u.w * c.w;
    st_stream((float4 *)(yb + i), lo);
    st_stream((float4 *)(yb + half + i), hi);
}

// v2: one block per token. The d/2 (cos, sin) pairs go to shared memory once, then the
// block sweeps heads x (d/2)/4 with 16-byte loads of both halves.
extern "C" __global__ void __launch_bounds__(BLOCK)
rope_neox_v2(const float *__restrict__ x, const int *__restrict__ pos, float *__restrict__ y, int n, int heads, int d,
             double theta) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    extern __shared__ __align__(16) float cs[]; // cos [d/2], then sin [d/2]
    const int half = d / 2, t = blockIdx.x;
    (void)n;
    const int p = pos[t];
    for (int i = threadIdx.x; i < half; i += BLOCK) rope_angle(p, i, d, theta, &cs[i], &cs[half + i]);
    __syncthreads();
    const int q = half / 4;
    for (int e = threadIdx.x; e < heads * q; e += BLOCK) {
        const int h = e / q, i = (e - h * q) * 4;
        const long long b = ((long long)t * heads + h) * d;
        const float4 a = *(const float4 *)(x + b + i), u = *(const float4 *)(x + b + half + i);
        rope4(a, u, cs, half, i, y + b);
    }
}

// v3: v2 with the loads issued before the fp64 table: each thread first loads up to
// ITEMS (x_i, x_{i+d/2}) float4 pairs into registers, so the DRAM latency overlaps the
// pow/sincos latency instead of following it. Pairs beyond BLOCK*ITEMS (more heads
// than planned for) take v2's path after the table.
#ifndef ITEMS
#define ITEMS 2
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
rope_neox_v3(const float *__restrict__ x, const int *__restrict__ pos, float *__restrict__ y, int n, int heads, int d,
             double theta) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    extern __shared__ __align__(16) float cs3[]; // cos [d/2], then sin [d/2]
    const int half = d / 2, t = blockIdx.x, q = half / 4, total = heads * q;
    (void)n;
    const float *xt = x + (long long)t * heads * d;
    float *yt = y + (long long)t * heads * d;
    float4 a[ITEMS], u[ITEMS];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int e = threadIdx.x + it * BLOCK;
        if (e < total) {
            const int h = e / q, i = (e - h * q) * 4;
            a[it] = ld_stream((const float4 *)(xt + h * d + i));
            u[it] = ld_stream((const float4 *)(xt + h * d + half + i));
        }
    }
    const int p = pos[t];
    for (int i = threadIdx.x; i < half; i += BLOCK) rope_angle(p, i, d, theta, &cs3[i], &cs3[half + i]);
    __syncthreads();
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int e = threadIdx.x + it * BLOCK;
        if (e < total) {
            const int h = e / q, i = (e - h * q) * 4;
            rope4(a[it], u[it], cs3, half, i, yt + h * d);
        }
    }
    for (int e = threadIdx.x + ITEMS * BLOCK; e < total; e += BLOCK) {
        const int h = e / q, i = (e - h * q) * 4;
        rope4(*(const float4 *)(xt + h * d + i), *(const float4 *)(xt + h * d + half + i), cs3, half, i, yt + h * d);
    }
}

// v4: no fp64 at all. The angle of pair i at position p is p * g_i turns, g_i =
// theta^(-2i/d) / (2 pi), which the plan hands over as 64-bit binary fractions (turns[i] =
// (high, low) 32 bits; ref/rope_neox.c, kb_rope_turns): (|p| * g_i) mod 1 is then exact
// in 32-bit integer arithmetic, its top two bits (rounded) pick the quarter turn, and the
// rest, |a| <= pi/4, goes to Cephes' sinf/cosf polynomials (about 1 ulp there): the Vulkan
// shader's method (kernels/spirv/rope_neox.comp). The remainder's conversion to float
// rounds it by at most 2^-24 of pi/4 (4.7e-8 rad). One thread per float4 of pairs
// (x_i..x_i+3 and their partners) and ITEMS of them a thread, a flat grid: no table, no
// barrier, any head count.
__device__ __forceinline__ void turn_sincos(int p, uint2 g, float *s, float *c) {
    const unsigned a = (unsigned)abs(p);
    const unsigned lo = a * g.y;
    unsigned hi = __umulhi(a, g.y) + a * g.x; // bits 32..63 of (|p| * G) mod 2^64
    if (p < 0) hi = ~hi + (lo == 0u ? 1u : 0u); // the fraction of -|p| * G: two's complement
    const unsigned q = (hi + 0x20000000u) >> 30;           // the nearest quarter turn
    const float r = (float)(int)(hi - (q << 30)) * 1.4629180792671596e-9f; // 2 pi / 2^32
    const float z = r * r;
    const float s0 = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
    const float c0 = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                     0.5f * z + 1.0f;
    switch (q & 3u) {
    case 0: *s = s0; *c = c0; break;
    case 1: *s = c0; *c = -s0; break;
    case 2: *s = -s0; *c = -c0; break;
    default: *s = -c0; *c = s0; break;
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
rope_neox_v4(const float *__restrict__ x, const int *__restrict__ pos, float *__restrict__ y, int n, int heads, int d,
             const uint2 *__restrict__ turns) {
    pdl_enter(); // PDL=1: wait for the previous kernel (pdl.cuh)
    const int half = d / 2, q = half / 4;
    // 32-bit indices: the plan keeps n * heads * d within int32, so the pair count and
    // every float index fit (a 64-bit division is a long software sequence, two per item)
    const int total = n * heads * q;
    // A block covers BLOCK * ITEMS consecutive float4s of pairs, item `it` the BLOCK of
    // them at it * BLOCK (coalesced); every item's loads are issued before the first angle.
    const int e0 = blockIdx.x * BLOCK * ITEMS + threadIdx.x; // (token * heads + head) * q + j
    float4 a[ITEMS], u[ITEMS];
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int e = e0 + it * BLOCK;
        if (e < total) {
            const int row = e / q;
            const float *xb = x + row * d + (e - row * q) * 4;
            a[it] = ld_stream((const float4 *)xb);
            u[it] = ld_stream((const float4 *)(xb + half));
        }
    }
#pragma unroll
    for (int it = 0; it < ITEMS; it++) {
        const int e = e0 + it * BLOCK;
        if (e >= total) break;
        const int row = e / q, i = (e - row * q) * 4;
        const int p = pos[row / heads];
        float s[4], c[4];
#pragma unroll
        for (int k = 0; k < 4; k++) turn_sincos(p, turns[i + k], &s[k], &c[k]);
        float4 lo, hi;
        lo.x = a[it].x * c[0] - u[it].x * s[0];
        hi.x = a[it].x * s[0] + u[it].x * c[0];
        lo.y = a[it].y * c[1] - u[it].y * s[1];
        hi.y = a[it].y * s[1] + u[it].y * c[1];
        lo.z = a[it].z * c[2] - u[it].z * s[2];
        hi.z = a[it].z * s[2] + u[it].z * c[2];
        lo.w = a[it].w * c[3] - u[it].w * s[3];
        hi.w = a[it].w * s[3] + u[it].w * c[3];
        float *yb = y + row * d;
        st_stream((float4 *)(yb + i), lo);
        st_stream((float4 *)(yb + half + i), hi);
    }
}
