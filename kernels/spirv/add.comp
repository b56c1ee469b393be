#version 450
// add.comp - y = a + b (the residual connection): a f32, b f32 or (-DKB_IN_F16 / -DKB_IN_BF16)
// 16-bit bits decoded exactly (kb_common.glsl), one rounding of the float sum (ggml_add).
// One element per thread. Needs storageBuffer16BitAccess for a 16-bit b, nothing otherwise.
#extension GL_GOOGLE_include_directive : require
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 1) readonly buffer B { uint16_t b[]; };
#else
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint count;
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

void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= pc.count) return;
    if (KB_SHORT_WRITE && i == pc.count - 1u) return;
    y[i] = a[i] + load_b(i);
}
