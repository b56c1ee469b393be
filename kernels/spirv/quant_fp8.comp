#version 450
// quant_fp8.comp - activations (f32, or -DKB_IN_F16 / -DKB_IN_BF16 16-bit bits, n x k) to fp8
// codes + float32 amax scales: tensor (three passes), per token (outer) or 1x128 (vec128).
// The quantization is fp8_quant.glsl. Needs storageBuffer8BitAccess, and
// storageBuffer16BitAccess for a 16-bit input.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_8bit_storage : require
#if defined(KB_IN_F16) || defined(KB_IN_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif

#if defined(KB_IN_F16) || defined(KB_IN_BF16)
layout(std430, set = 0, binding = 0) readonly buffer X { uint16_t xh[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer X { uint xb[]; }; // float bits: no arithmetic touches them
#endif

#include "kb_common.glsl"

uint load_bits(uint i) {
#if defined(KB_IN_F16)
    return floatBitsToUint(kb_half_to_float(uint(xh[i])));
#elif defined(KB_IN_BF16)
    return uint(xh[i]) << 16;
#else
    return xb[i];
#endif
}

#include "fp8_quant.glsl"
