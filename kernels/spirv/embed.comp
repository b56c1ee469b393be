#version 450
// embed.comp - token embedding lookup: out[i][c] = table[ids[i]][c], dequantized to f32.
// One workgroup per (token, 256 columns): a Q4_K / Q6_K row is k/256 blocks, so a workgroup
// decodes exactly one block. The table type is a -D build:
//   KB_TABLE_Q4K  ggml Q4_K (q4k.glsl, as dequant_q4k.comp)      needs 8- and 16-bit storage
//   KB_TABLE_Q6K  ggml Q6_K (q6k.glsl)                           needs 8- and 16-bit storage
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
#include "q6k.glsl"
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
