#version 450
// swiglu.comp - y = silu(g) * up = g / (1 + exp(-g)) * up, in ggml_vec_swiglu_f32's order; g and
// up f32 or (-DKB_IN_F16 / -DKB_IN_BF16) 16-bit bits decoded exactly (kb_common.glsl). One
// element per thread; -DKB_VEC4 ("vec4"): 4 per thread, 16-byte loads (8 bytes when 16-bit) and
// a 16-byte store when the views allow it, the same arithmetic per element (bit-identical).
// Needs storageBuffer16BitAccess for 16-bit inputs, nothing otherwise.
//
// Accuracy. The op's tolerance is 8 u32 |y| (u32 = 2^-24). Vulkan's precision table lets
// GLSL exp err by 3 + 2|x| ulp and a division by 2.5 ulp, which together can exceed it, so
// neither is used as is:
//  - exp(x) (kb_exp): Cody-Waite reduction x = n ln2 + r, n = round(x / ln2), |r| <= ln2/2,
//    with ln2 split in two (fdlibm's ln2HI = 0x3f317200, whose 15 significant bits make
//    n * ln2HI exact for |n| < 512, and ln2LO); exp(r) by its Taylor series to r^7 (the
//    truncation is < 0.1 u32 on |r| <= 0.347), summed small terms first; then ldexp(p, n),
//    exact. About 1 ulp.
//  - g / d (div_corrected): q0 = g / d, then one correction with the exact residual
//    g - q0 d (Dekker's two-product by Veltkamp splitting; g - p is exact by Sterbenz since
//    p is within a few ulp of g): q = q0 + (g - q0 d) / d, within about half an ulp.
// `precise` keeps the compiler from fusing or reordering these steps (SPIR-V NoContraction).
// In all: exp's error (damped by e / (1 + e) <= 1), then the roundings of 1 + e, of the
// quotient and of the product: about 5 u32 at worst.
#extension GL_GOOGLE_include_directive : require
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif

// The workgroup size is specialization constant 1, the plan's BLOCK (256 as written;
// --tune BLOCK sets it); every index below strides by it.
layout(local_size_x = 256, local_size_x_id = 1) in;

#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 0) readonly buffer G { uint16_t gate[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { uint16_t up[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer G { float gate[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { float up[]; };
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };
#ifdef KB_VEC4
// The same buffers 4 elements at a time.
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 0) readonly buffer G4 { uvec2 gate4[]; };
layout(std430, set = 0, binding = 1) readonly buffer U4 { uvec2 up4[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer G4 { vec4 gate4[]; };
layout(std430, set = 0, binding = 1) readonly buffer U4 { vec4 up4[]; };
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Y4 { vec4 y4[]; };
#endif

layout(push_constant) uniform Push {
    uint count;
#ifdef KB_VEC4
    uint vec_ok; // every view starts where its vector loads need (16 bytes; 8 when 16-bit)
#endif
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last element unwritten

#include "kb_common.glsl"

#if defined(KB_IN_F16)
#define LOAD(buf, i) kb_half_to_float(uint(buf[i]))
#elif defined(KB_IN_BF16)
#define LOAD(buf, i) kb_bf16_to_float(uint(buf[i]))
#else
#define LOAD(buf, i) buf[i]
#endif

float kb_exp(float x) {
    if (x > 88.72283) return uintBitsToFloat(0x7f800000u); // beyond the largest float
    if (x < -103.97208) return 0.0;                        // below half the smallest subnormal
    precise float n = roundEven(x * 1.4426950408889634);
    precise float r = (x - n * 0.693145751953125) - n * 1.4286067653e-06;
    precise float poly = 1.6666666667e-1 +
                         r * (4.1666666667e-2 + r * (8.3333333333e-3 + r * (1.3888888889e-3 + r * 1.9841269841e-4)));
    precise float t = r * r * (0.5 + r * poly);
    precise float p = 1.0 + (r + t);
    return ldexp(p, int(n));
}

// g / d for d >= 1, within about half an ulp.
float div_corrected(float g, float d) {
    float q0 = g / d;
    if (!(d < 1.0e34) || q0 == 0.0 || isinf(q0)) return q0; // 4097 d below would overflow
    // Veltkamp splitting (2^12 + 1): each factor into 12-bit halves whose products are exact
    precise float cq = 4097.0 * q0;
    precise float qh = cq - (cq - q0);
    precise float ql = q0 - qh;
    precise float cd = 4097.0 * d;
    precise float dh = cd - (cd - d);
    precise float dl = d - dh;
    precise float p = q0 * d;
    precise float perr = ((qh * dh - p) + qh * dl + ql * dh) + ql * dl; // q0 d = p + perr exactly
    precise float res = (g - p) - perr;                                  // g - q0 d
    precise float q = q0 + res / d;
    return q;
}

#ifndef KB_VEC4
void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= pc.count) return;
    if (KB_SHORT_WRITE && i == pc.count - 1u) return;
    float g = LOAD(gate, i);
    float u = LOAD(up, i);
    float e = kb_exp(-g);
    float silu = div_corrected(g, 1.0 + e);
    y[i] = silu * u;
}
#else
// elem256's main, per element
float swiglu(float g, float u) {
    float e = kb_exp(-g);
    float silu = div_corrected(g, 1.0 + e);
    return silu * u;
}

#if defined(KB_IN_F16)
vec4 unpack4(uvec2 h) {
    return vec4(kb_half_to_float(h.x & 0xffffu), kb_half_to_float(h.x >> 16), kb_half_to_float(h.y & 0xffffu),
                kb_half_to_float(h.y >> 16));
}
#define LOAD4(buf, t) unpack4(buf[t])
#elif defined(KB_IN_BF16)
#define LOAD4(buf, t) uintBitsToFloat(uvec4(buf[t].x << 16, buf[t].x & 0xffff0000u, buf[t].y << 16, buf[t].y & 0xffff0000u))
#else
#define LOAD4(buf, t) buf[t]
#endif

void main() {
    uint t = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint i0 = 4u * t;
    if (i0 >= pc.count) return;
    if (pc.vec_ok != 0u && i0 + 4u <= pc.count && !(KB_SHORT_WRITE && i0 + 4u == pc.count)) {
        vec4 g = LOAD4(gate4, t), u = LOAD4(up4, t);
        y4[t] = vec4(swiglu(g.x, u.x), swiglu(g.y, u.y), swiglu(g.z, u.z), swiglu(g.w, u.w));
        return;
    }
    for (uint i = i0; i < min(i0 + 4u, pc.count); i++) // the tail (or unaligned views)
        if (!(KB_SHORT_WRITE && i == pc.count - 1u)) y[i] = swiglu(LOAD(gate, i), LOAD(up, i));
}
#endif
