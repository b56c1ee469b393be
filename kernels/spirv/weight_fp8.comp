#version 450
// weight_fp8.comp - ggml Q4_K (or, -DKB_BLOCKS_Q6K, Q6_K) weights, m x k, to fp8 codes +
// float32 amax scales: tensor (three passes), per row (outer), 1x128 (vec128) or 128x128
// (blk128). Each value decoded as dequant_q4k.comp does (q4k.glsl / q6k.glsl: bit-exact with
// ggml's float dequantization), then fp8_quant.glsl. Needs storageBuffer8BitAccess and
// storageBuffer16BitAccess.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_16bit_storage : require

// The same buffer seen as bytes and as halves (the half scales sit 2-byte aligned in every block).
layout(std430, set = 0, binding = 0) readonly buffer Blocks8 { uint8_t qb[]; };
layout(std430, set = 0, binding = 0) readonly buffer Blocks16 { uint16_t qh[]; };

#include "kb_common.glsl"
#ifdef KB_BLOCKS_Q6K
#include "q6k.glsl"
#else
#include "q4k.glsl"
#endif

// k is a multiple of 256, so element i = row * k + col sits in block i / 256 at i % 256.
uint load_bits(uint i) {
#ifdef KB_BLOCKS_Q6K
    return floatBitsToUint(q6k_value(i >> 8, i & 255u));
#else
    return floatBitsToUint(q4k_value(i >> 8, i & 255u));
#endif
}

#include "fp8_quant.glsl"
