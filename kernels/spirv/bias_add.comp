#version 450
// bias_add.comp - y[n][m] = x[n][m] + bias[m] (the q/k/v projection biases): x f32 or
// (-DKB_IN_F16 / -DKB_IN_BF16) 16-bit bits decoded exactly (kb_common.glsl), bias f32, one
// rounding of the float sum. One element per thread. Needs storageBuffer16BitAccess for a
// 16-bit x, nothing otherwise.
#extension GL_GOOGLE_include_directive : require
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(local_size_x = 256) in;

#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 0) readonly buffer X { uint16_t x[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
#endif
layout(std430, set = 0, binding = 1) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n; // rows (tokens)
    uint m; // features
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

void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    uint count = pc.n * pc.m;
    if (i >= count) return;
    if (KB_SHORT_WRITE && i == count - 1u) return;
    y[i] = load_x(i) + bias[i % pc.m];
}
