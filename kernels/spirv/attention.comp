#version 450
// attention.comp - causal GQA attention, fp32, online softmax (max-subtracted, rescaled per chunk).
// Scaled dot-product attention (Vaswani et al. 2017): scores q.k / sqrt(d), future positions
// masked, softmax, weighted sum of V.
// Query i sits at position kv_len - n + i and sees keys 0..that position; query head h reads
// KV head h / (heads / kv_heads).
//
// One workgroup of 64 threads walks its key range in chunks of 64 keys: each thread scores one
// key (full dot product), the chunk max rescales the running sum and accumulator
// (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"), then each thread
// accumulates the head dims it owns (t, t+64, t+128, t+192), so head_dim <= 256.
//
// KB_ATTN_MODE (specialization constant):
//   0 prefill: one workgroup per (query, head); writes out. Takes any n.
//   1 decode split: one workgroup per (head, key split) for the single query (n == 1); writes
//     (m, l, acc[d]) partials - the split-KV scheme of FlashDecoding.
//   2 decode combine: one workgroup per head; merges the splits' partials into out.
// Needs no optional device feature.

layout(local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { float kbuf[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { float vbuf[]; };
layout(std430, set = 0, binding = 3) writeonly buffer O { float o[]; };
layout(std430, set = 0, binding = 4) buffer Part { float part[]; }; // [heads][nsplit][2 + head_dim]

layout(push_constant) uniform Push {
    uint n;
    uint kv_len;
    uint heads;
    uint kv_heads;
    uint head_dim;
    float scale;      // 1 / sqrt(head_dim)
    uint nsplit;      // decode: key splits per head
    uint split_len;   // decode: keys per split (a multiple of 64)
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten
layout(constant_id = 1) const uint KB_ATTN_MODE = 0;

const float NEG = -3.0e38; // finite "minus infinity": exp(NEG - m) is a plain 0, no inf arithmetic
const uint CHUNK = 64u;

shared float sq[256];
shared float ss[CHUNK];
shared float sp[CHUNK];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint d = pc.head_dim;
    uint group = pc.heads / pc.kv_heads;

    if (KB_ATTN_MODE == 2u) {
        // Combine: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s.
        if (wg >= pc.heads) return;
        uint h = wg;
        uint stride = 2u + d;
        float mx = NEG;
        for (uint s = 0u; s < pc.nsplit; s++) mx = max(mx, part[(h * pc.nsplit + s) * stride]);
        float l = 0.0;
        for (uint s = 0u; s < pc.nsplit; s++) {
            uint b = (h * pc.nsplit + s) * stride;
            l += part[b + 1u] * exp(part[b] - mx);
        }
        for (uint dim = t; dim < d; dim += CHUNK) {
            float a = 0.0;
            for (uint s = 0u; s < pc.nsplit; s++) {
                uint b = (h * pc.nsplit + s) * stride;
                a += part[b + 2u + dim] * exp(part[b] - mx);
            }
            uint idx = h * d + dim;
            if (KB_SHORT_WRITE && idx == pc.heads * d - 1u) continue;
            o[idx] = a / l;
        }
        return;
    }

    uint qi, h, key_begin, key_end, split = 0u;
    if (KB_ATTN_MODE == 0u) {
        if (wg >= pc.n * pc.heads) return;
        qi = wg / pc.heads;
        h = wg % pc.heads;
        key_begin = 0u;
        key_end = pc.kv_len - pc.n + qi + 1u; // causal: keys 0 .. query position
    } else {
        if (wg >= pc.heads * pc.nsplit) return;
        qi = 0u;
        h = wg / pc.nsplit;
        split = wg % pc.nsplit;
        key_begin = split * pc.split_len;
        key_end = min(key_begin + pc.split_len, pc.kv_len);
    }
    uint g = h / group;

    for (uint dim = t; dim < d; dim += CHUNK) sq[dim] = q[(qi * pc.heads + h) * d + dim];
    barrier();

    float m = NEG;
    float l = 0.0;
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);

    for (uint j0 = key_begin; j0 < key_end; j0 += CHUNK) {
        uint cnt = min(CHUNK, key_end - j0);
        uint j = j0 + t;
        bool valid = t < cnt;
        float sc = NEG;
        if (valid) {
            uint kb = (j * pc.kv_heads + g) * d;
            float dot = 0.0;
            for (uint e = 0u; e < d; e++) dot += sq[e] * kbuf[kb + e];
            sc = dot * pc.scale;
        }
        ss[t] = sc;
        barrier();
        float cmax = NEG;
        for (uint jj = 0u; jj < cnt; jj++) cmax = max(cmax, ss[jj]);
        float m_new = max(m, cmax);
        float alpha = exp(m - m_new);
        sp[t] = valid ? exp(sc - m_new) : 0.0;
        barrier();
        float psum = 0.0;
        for (uint jj = 0u; jj < cnt; jj++) psum += sp[jj];
        l = l * alpha + psum;
        for (uint r = 0u; r < 4u; r++) {
            uint dim = t + r * CHUNK;
            if (dim >= d) break;
            float a = acc[r] * alpha;
            for (uint jj = 0u; jj < cnt; jj++) a += sp[jj] * vbuf[((j0 + jj) * pc.kv_heads + g) * d + dim];
            acc[r] = a;
        }
        m = m_new;
        barrier(); // ss and sp are rewritten by the next chunk
    }

    if (KB_ATTN_MODE == 0u) {
        for (uint r = 0u; r < 4u; r++) {
            uint dim = t + r * CHUNK;
            if (dim >= d) break;
            uint idx = (qi * pc.heads + h) * d + dim;
            if (KB_SHORT_WRITE && idx == pc.n * pc.heads * d - 1u) continue;
            o[idx] = acc[r] / l;
        }
    } else {
        uint b = (h * pc.nsplit + split) * (2u + d);
        if (t == 0u) {
            part[b] = m;
            part[b + 1u] = l;
        }
        for (uint r = 0u; r < 4u; r++) {
            uint dim = t + r * CHUNK;
            if (dim >= d) break;
            part[b + 2u + dim] = acc[r];
        }
    }
}
