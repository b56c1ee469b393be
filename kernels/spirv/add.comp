#version 450
// add.comp - y = a + b (the residual connection): a f32, b f32 or (-DKB_IN_F16 / -DKB_IN_BF16)
// 16-bit bits decoded exactly (kb_common.glsl), one rounding of the float sum (ggml_add).
// One element per thread; -DKB_VEC4 ("vec4"): 4 per thread, one 16-byte load of a (8 bytes of a
// 16-bit b) and one 16-byte store when the views allow it, bit-identical results. Needs
// storageBuffer16BitAccess for a 16-bit b, nothing otherwise.
#extension GL_GOOGLE_include_directive : require
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif

// The workgroup size is specialization constant 1, the plan's BLOCK (256 as written;
// --tune BLOCK sets it); every index below strides by it.
layout(local_size_x = 256, local_size_x_id = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 1) readonly buffer B { uint16_t b[]; };
#else
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };
#ifdef KB_VEC4
// The same buffers 4 elements at a time.
layout(std430, set = 0, binding = 0) readonly buffer A4 { vec4 a4[]; };
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 1) readonly buffer B4 { uvec2 b4[]; };
#else
layout(std430, set = 0, binding = 1) readonly buffer B4 { vec4 b4[]; };
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Y4 { vec4 y4[]; };
#endif

layout(push_constant) uniform Push {
    uint count;
#ifdef KB_VEC4
    uint vec_ok; // every view starts where its vector loads need (16 bytes; 8 for a 16-bit b)
#endif
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten

#include "kb_common.glsl"

float load_b(uint i) {
#if defined(KB_IN_F16)
    return kb_half_to_float(uint(b[i]));
#elif defined(KB_IN_BF16)
    return kb_bf16_to_float(uint(b[i]));
#else
    return b[i];
#endif
}

#ifndef KB_VEC4
void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= pc.count) return;
    if (KB_SHORT_WRITE && i == pc.count - 1u) return;
    y[i] = a[i] + load_b(i);
}
#else
vec4 load_b4(uint t) {
#if defined(KB_IN_F16)
    uvec2 h = b4[t];
    return vec4(kb_half_to_float(h.x & 0xffffu), kb_half_to_float(h.x >> 16), kb_half_to_float(h.y & 0xffffu),
                kb_half_to_float(h.y >> 16));
#elif defined(KB_IN_BF16)
    uvec2 h = b4[t];
    return uintBitsToFloat(uvec4(h.x << 16, h.x & 0xffff0000u, h.y << 16, h.y & 0xffff0000u));
#else
    return b4[t];
#endif
}

void main() {
    uint t = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint i0 = 4u * t;
    if (i0 >= pc.count) return;
    if (pc.vec_ok != 0u && i0 + 4u <= pc.count && !(KB_SHORT_WRITE && i0 + 4u == pc.count)) {
        y4[t] = a4[t] + load_b4(t);
        return;
    }
    for (uint i = i0; i < min(i0 + 4u, pc.count); i++) // the tail (or unaligned views)
        if (!(KB_SHORT_WRITE && i == pc.count - 1u)) y[i] = a[i] + load_b(i);
}
#endif
