#version 450
// embed.comp - token embedding lookup: out[i][c] = table[ids[i]][c], dequantized to f32.
// One workgroup per (token, 256 columns): a Q4_K / Q6_K row is k/256 blocks, so a workgroup
// decodes exactly one block. The table type is a -D build:
//   KB_TABLE_Q4K  ggml Q4_K (q4k.glsl, as dequant_q4k.comp)      needs 8- and 16-bit storage
//   KB_TABLE_Q6K  ggml Q6_K (dequantize_row_q6_K, below)         needs 8- and 16-bit storage
//   KB_TABLE_F16  half table                                     needs 16-bit storage
//   KB_TABLE_F32  float table                                    needs nothing
// An id outside [0, m) writes NaN, so a bad id can never pass as a row.
#extension GL_GOOGLE_include_directive : require
#if defined(KB_TABLE_Q4K) || defined(KB_TABLE_Q6K)
#extension GL_EXT_shader_8bit_storage : require
#endif
#if defined(KB_TABLE_Q4K) || defined(KB_TABLE_Q6K) || defined(KB_TABLE_F16)
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(local_size_x = 256) in;

#if defined(KB_TABLE_Q4K) || defined(KB_TABLE_Q6K)
layout(std430, set = 0, binding = 0) readonly buffer Table8 { uint8_t qb[]; };
layout(std430, set = 0, binding = 0) readonly buffer Table16 { uint16_t qh[]; };
#elif defined(KB_TABLE_F16)
layout(std430, set = 0, binding = 0) readonly buffer Table16 { uint16_t th[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer Table32 { float tf[]; };
#endif
layout(std430, set = 0, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float y[]; };

layout(push_constant) uniform Push {
    uint m; // vocab rows
    uint n; // tokens
    uint k; // hidden
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten

#include "kb_common.glsl"
#if defined(KB_TABLE_Q4K)
#include "q4k.glsl"
#endif

#if defined(KB_TABLE_Q6K)
// ggml block_q6_K (210 bytes): uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d.
// Per 128-value half: l = 0..31, is = l/16,
//   y[l]    = d*sc[is+0] * ((ql[l]    & 15 | ((qh[l] >> 0) & 3) << 4) - 32)
//   y[l+32] = d*sc[is+2] * ((ql[l+32] & 15 | ((qh[l] >> 2) & 3) << 4) - 32)
//   y[l+64] = d*sc[is+4] * ((ql[l]    >> 4 | ((qh[l] >> 4) & 3) << 4) - 32)
//   y[l+96] = d*sc[is+6] * ((ql[l+32] >> 4 | ((qh[l] >> 6) & 3) << 4) - 32)
// then ql += 64, qh += 32, sc += 8 (ggml dequantize_row_q6_K). (d*sc) is exact in float and
// the product with q is rounded once, in the same order as ggml.
float q6k_value(uint blk, uint t) {
    uint base = blk * 210u;
    float d = kb_half_to_float(uint(qh[blk * 105u + 104u]));
    uint hf = t >> 7;
    uint w = t & 127u;
    uint quarter = w >> 5;
    uint l = w & 31u;
    uint ql_at = base + 64u * hf + l + ((quarter & 1u) != 0u ? 32u : 0u);
    uint qh_at = base + 128u + 32u * hf + l;
    uint lo = uint(qb[ql_at]);
    lo = (quarter >= 2u) ? (lo >> 4) : (lo & 15u);
    uint hi = (uint(qb[qh_at]) >> (2u * quarter)) & 3u;
    int qv = int(lo | (hi << 4)) - 32;
    int sc = bitfieldExtract(int(uint(qb[base + 192u + 8u * hf + (l >> 4) + 2u * quarter])), 0, 8);
    float ds = d * float(sc);
    return ds * float(qv);
}
#endif

void main() {
    uint cols = (pc.k + 255u) / 256u;
    uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (wg >= pc.n * cols) return;
    uint token = wg / cols;
    uint cb = wg % cols;
    uint t = gl_LocalInvocationID.x;
    uint c = cb * 256u + t;
    if (c >= pc.k) return;
    uint idx = token * pc.k + c;
    if (KB_SHORT_WRITE && idx == pc.n * pc.k - 1u) return;
    int id = ids[token];
    if (id < 0 || uint(id) >= pc.m) {
        y[idx] = uintBitsToFloat(0x7fc00000u);
        return;
    }
    uint row = uint(id);
#if defined(KB_TABLE_Q4K)
    y[idx] = q4k_value(row * cols + cb, t);
#elif defined(KB_TABLE_Q6K)
    y[idx] = q6k_value(row * cols + cb, t);
#elif defined(KB_TABLE_F16)
    y[idx] = kb_half_to_float(uint(th[row * pc.k + c]));
#else
    y[idx] = tf[row * pc.k + c];
#endif
}
