#version 450
// bias_add.comp - y[n][m] = x[n][m] + bias[m] (the q/k/v projection biases): x f32 or
// (-DKB_IN_F16 / -DKB_IN_BF16) 16-bit bits decoded exactly (kb_common.glsl), bias f32, one
// rounding of the float sum. One element per thread; -DKB_VEC4 ("vec4"): 4 per thread, one
// 16-byte load of x (8 bytes when 16-bit), of the bias (when m % 4 == 0) and one 16-byte store
// when the views allow it, bit-identical results. Needs storageBuffer16BitAccess for a 16-bit x,
// nothing otherwise.
#extension GL_GOOGLE_include_directive : require
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif

// The workgroup size is specialization constant 1, the plan's BLOCK (256 as written;
// --tune BLOCK sets it); every index below strides by it.
layout(local_size_x = 256, local_size_x_id = 1) in;

#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 0) readonly buffer X { uint16_t x[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
#endif
layout(std430, set = 0, binding = 1) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };
#ifdef KB_VEC4
// The same buffers 4 elements at a time.
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 0) readonly buffer X4 { uvec2 x4[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
#endif
layout(std430, set = 0, binding = 1) readonly buffer Bias4 { vec4 bias4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y4 { vec4 y4[]; };
#endif

layout(push_constant) uniform Push {
    uint n; // rows (tokens)
    uint m; // features
#ifdef KB_VEC4
    uint vec_ok;  // x and y start where their vector loads need (16 bytes; 8 for a 16-bit x)
    uint bias_ok; // m % 4 == 0 and the bias starts on 16 bytes: 4 elements share a row
#endif
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten

#include "kb_common.glsl"

float load_x(uint i) {
#if defined(KB_IN_F16)
    return kb_half_to_float(uint(x[i]));
#elif defined(KB_IN_BF16)
    return kb_bf16_to_float(uint(x[i]));
#else
    return x[i];
#endif
}

#ifndef KB_VEC4
void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint count = pc.n * pc.m;
    if (i >= count) return;
    if (KB_SHORT_WRITE && i == count - 1u) return;
    y[i] = load_x(i) + bias[i % pc.m];
}
#else
vec4 load_x4(uint t) {
#if defined(KB_IN_F16)
    uvec2 h = x4[t];
    return vec4(kb_half_to_float(h.x & 0xffffu), kb_half_to_float(h.x >> 16), kb_half_to_float(h.y & 0xffffu),
                kb_half_to_float(h.y >> 16));
#elif defined(KB_IN_BF16)
    uvec2 h = x4[t];
    return uintBitsToFloat(uvec4(h.x << 16, h.x & 0xffff0000u, h.y << 16, h.y & 0xffff0000u));
#else
    return x4[t];
#endif
}

void main() {
    uint t = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint count = pc.n * pc.m;
    uint i0 = 4u * t;
    if (i0 >= count) return;
    if (pc.vec_ok != 0u && i0 + 4u <= count && !(KB_SHORT_WRITE && i0 + 4u == count)) {
        uint c = i0 % pc.m;
        vec4 b = pc.bias_ok != 0u ? bias4[c >> 2]
                                  : vec4(bias[c], bias[(i0 + 1u) % pc.m], bias[(i0 + 2u) % pc.m], bias[(i0 + 3u) % pc.m]);
        y4[t] = load_x4(t) + b;
        return;
    }
    for (uint i = i0; i < min(i0 + 4u, count); i++) // the tail (or unaligned views)
        if (!(KB_SHORT_WRITE && i == count - 1u)) y[i] = load_x(i) + bias[i % pc.m];
}
#endif
