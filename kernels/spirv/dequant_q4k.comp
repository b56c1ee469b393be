#version 450
// dequant_q4k.comp - ggml Q4_K blocks (or, -DKB_BLOCKS_Q6K, Q6_K blocks) -> f32, one
// 256-value block per workgroup, thread t writes value t.
//
// Q4_K (ggml block_q4_K, 144 bytes): half d; half dmin; uint8 scales[12]; uint8 qs[128].
// Value t of a block (ggml dequantize_row_q4_K): 64-value chunk c = t/64 uses qs[32c .. 32c+31];
// its first 32 values are the low nibbles with sub-block 2c, the next 32 the high nibbles
// with sub-block 2c+1.  y = (d*sc) * q - (dmin*m), both products formed in float first.
// d*sc and dmin*m are exact in float (11-bit x 6-bit), and so is (d*sc)*q (+4 bits), so the
// result is the correctly rounded difference whether or not the compiler fuses it (q4k.glsl).
// Q6_K (210 bytes): y = (d*sc) * q, q6k.glsl.
//
// Needs: storageBuffer8BitAccess (bytes), storageBuffer16BitAccess (the half scales, decoded
// exactly by kb_half_to_float).
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

// The same buffer seen as bytes and as halves (the half scales sit 2-byte aligned in every block).
layout(std430, set = 0, binding = 0) readonly buffer Blocks8 { uint8_t qb[]; };
layout(std430, set = 0, binding = 0) readonly buffer Blocks16 { uint16_t qh[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float y[]; };

layout(push_constant) uniform Push {
    uint nblocks; // m * k / 256
} pc;

// Test-only broken variant: leave the last element of the output unwritten.
layout(constant_id = 0) const bool KB_SHORT_WRITE = false;

#include "kb_common.glsl"
#ifdef KB_BLOCKS_Q6K
#include "q6k.glsl"
#else
#include "q4k.glsl"
#endif

void main() {
    // 2D grid: maxComputeWorkGroupCount[0] may be only 65535.
    uint blk = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (blk >= pc.nblocks) return;
    uint t = gl_LocalInvocationID.x;
    uint idx = blk * 256u + t;
    if (KB_SHORT_WRITE && idx == pc.nblocks * 256u - 1u) return;
#ifdef KB_BLOCKS_Q6K
    y[idx] = q6k_value(blk, t);
#else
    y[idx] = q4k_value(blk, t);
#endif
}
