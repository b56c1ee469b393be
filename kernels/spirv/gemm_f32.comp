#version 450
// gemm_f32.comp - D[n][m] = sum_k W[m][k] X[n][k], float32 operands, products and sums (the
// GEMM of a path that dequantizes its weights to f32). Two -D builds of the loop, as in
// gemm_fp8.comp:
//   default        "gemv": one workgroup of 128 threads per output row m; thread t takes
//                  k = t, t+128, ... , 4 tokens at a time in a vec4, then a shared-memory
//                  tree sum. For small n (decode).
//   KB_GEMM_TILED  "tiled64": 64(m) x 64(n) output tile per workgroup of 256 threads, 4x4
//                  outputs each (a mat4 of outer products), K in steps of 32 staged in shared
//                  memory, each 128-wide K block summed apart and then added in.
// KB_VEC4 (specialization constant 1, set when k % 4 == 0 and both views start on 16 bytes):
// W and X are read 4 values per 16-byte load.
// Needs no optional device feature.
#extension GL_EXT_control_flow_attributes : require // [[unroll]] on the 4-wide loops

#ifdef KB_GEMM_TILED
#define LOCAL 256u
#else
#define LOCAL 128u
#endif
layout(local_size_x = LOCAL) in;

layout(std430, set = 0, binding = 0) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
// The same buffers as vec4 (KB_VEC4).
layout(std430, set = 0, binding = 0) readonly buffer W4 { vec4 w4[]; };
layout(std430, set = 0, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint m;
    uint n;
    uint k;
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten
layout(constant_id = 1) const bool KB_VEC4 = false;

void store(uint row_n, uint col_m, float v) {
    uint idx = row_n * pc.m + col_m;
    if (KB_SHORT_WRITE && idx == pc.n * pc.m - 1u) return;
    d[idx] = v;
}

#ifndef KB_GEMM_TILED
// ---- gemv ---------------------------------------------------------------------------------
shared vec4 red[LOCAL];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint mi = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (mi >= pc.m) return; // uniform per workgroup

    for (uint n0 = 0u; n0 < pc.n; n0 += 4u) {
        // Rows past n are clamped to the last one: computed, never stored.
        uvec4 nj = min(uvec4(n0, n0 + 1u, n0 + 2u, n0 + 3u), uvec4(pc.n - 1u));
        vec4 acc = vec4(0.0);
        if (KB_VEC4) {
            uint k4 = pc.k >> 2;
            for (uint kw = t; kw < k4; kw += LOCAL) {
                vec4 a = w4[mi * k4 + kw];
                acc += vec4(dot(a, x4[nj.x * k4 + kw]), dot(a, x4[nj.y * k4 + kw]), dot(a, x4[nj.z * k4 + kw]),
                            dot(a, x4[nj.w * k4 + kw]));
            }
        } else {
            for (uint kk = t; kk < pc.k; kk += LOCAL) {
                float a = w[mi * pc.k + kk];
                acc += a * vec4(x[nj.x * pc.k + kk], x[nj.y * pc.k + kk], x[nj.z * pc.k + kk], x[nj.w * pc.k + kk]);
            }
        }
        red[t] = acc;
        barrier();
        for (uint stride = LOCAL / 2u; stride > 0u; stride >>= 1) {
            if (t < stride) red[t] += red[t + stride];
            barrier();
        }
        if (t < 4u && n0 + t < pc.n) store(n0 + t, mi, red[0][t]);
        barrier(); // red is reused by the next pass
    }
}

#else
// ---- tiled --------------------------------------------------------------------------------
// Shared tiles as vec4 along the output dimension: each thread's 4x4 block is two vec4 reads
// and one outer product per k (a mat4 accumulator: no dynamically indexed arrays, which some
// compilers, lavapipe's among them, turn into scratch memory).
const uint BM = 64u, BN = 64u, BK = 32u;
shared vec4 ws4[BK][BM / 4u]; // ws4[c][q][i] = W[m0 + 4q + i][k0 + c]
shared vec4 xs4[BK][BN / 4u]; // xs4[c][q][j] = X[n0 + 4q + j][k0 + c]

void main() {
    uint t = gl_LocalInvocationID.x;
    uint tiles_m = (pc.m + BM - 1u) / BM;
    uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint m0 = (tile % tiles_m) * BM;
    uint n0 = (tile / tiles_m) * BN;
    if (n0 >= pc.n) return; // uniform per workgroup
    uint tx = t % 16u, ty = t / 16u;

    // [j][i]: n = n0 + 4 ty + j, m = m0 + 4 tx + i. Each 128-wide K block is summed apart and
    // then folded in: about 128 + K/128 roundings deep instead of K.
    mat4 acc = mat4(0.0), part = mat4(0.0);

    for (uint k0 = 0u; k0 < pc.k; k0 += BK) {
        // Stage the tiles: consecutive threads on consecutive values of a row; zeros outside.
        if (KB_VEC4) {
            uint k4 = pc.k >> 2;
            for (uint e = t; e < BM * BK / 4u; e += LOCAL) {
                uint r = e / (BK / 4u), cw = e % (BK / 4u);
                uint gm = m0 + r, gk = k0 + 4u * cw;
                vec4 v = (gm < pc.m && gk < pc.k) ? w4[gm * k4 + (gk >> 2)] : vec4(0.0);
                [[unroll]] for (uint b = 0u; b < 4u; b++) ws4[4u * cw + b][r >> 2][r & 3u] = v[b];
            }
            for (uint e = t; e < BN * BK / 4u; e += LOCAL) {
                uint r = e / (BK / 4u), cw = e % (BK / 4u);
                uint gn = n0 + r, gk = k0 + 4u * cw;
                vec4 v = (gn < pc.n && gk < pc.k) ? x4[gn * k4 + (gk >> 2)] : vec4(0.0);
                [[unroll]] for (uint b = 0u; b < 4u; b++) xs4[4u * cw + b][r >> 2][r & 3u] = v[b];
            }
        } else {
            for (uint e = t; e < BM * BK; e += LOCAL) {
                uint r = e / BK, c = e % BK;
                uint gm = m0 + r, gk = k0 + c;
                ws4[c][r >> 2][r & 3u] = (gm < pc.m && gk < pc.k) ? w[gm * pc.k + gk] : 0.0;
            }
            for (uint e = t; e < BN * BK; e += LOCAL) {
                uint r = e / BK, c = e % BK;
                uint gn = n0 + r, gk = k0 + c;
                xs4[c][r >> 2][r & 3u] = (gn < pc.n && gk < pc.k) ? x[gn * pc.k + gk] : 0.0;
            }
        }
        barrier();
        for (uint c = 0u; c < BK; c++) part += outerProduct(ws4[c][tx], xs4[c][ty]);
        barrier();
        if (((k0 + BK) & 127u) == 0u || k0 + BK >= pc.k) {
            acc += part;
            part = mat4(0.0);
        }
    }
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint ni = n0 + ty * 4u + j;
        if (ni >= pc.n) break;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint mi = m0 + tx * 4u + i;
            if (mi < pc.m) store(ni, mi, acc[j][i]);
        }
    }
}
#endif
