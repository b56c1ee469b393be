// kb_common.glsl - small helpers shared by the kbench compute shaders.

// IEEE binary16 bits -> float, exactly, by bit manipulation. A half subnormal becomes a normal
// float; converting through float16_t instead may flush it to zero (Vulkan does not promise to
// preserve fp16 denormals without shaderDenormPreserveFloat16).
float kb_half_to_float(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 31u;
    uint mant = h & 1023u;
    if (e == 0u) {
        float v = float(mant) * 5.9604644775390625e-8; // mant * 2^-24, exact
        return (sign != 0u) ? -v : v;
    }
    if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (mant << 13)); // inf / NaN
    return uintBitsToFloat(sign | ((e + 112u) << 23) | (mant << 13));       // rebias 15 -> 127
}

// bfloat16 bits -> float, exactly: the top half of a binary32.
float kb_bf16_to_float(uint b) { return uintBitsToFloat(b << 16); }
