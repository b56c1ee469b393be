// q4k.glsl - one value of a ggml Q4_K block, shared by dequant_q4k.comp and embed.comp.
// The including shader declares qb (uint8_t[]) and qh (uint16_t[]) over the same buffer and
// includes kb_common.glsl. Scale/min unpacking: ggml get_scale_min_k4 (ggml-quants.c): sub-blocks
// 0..3 keep 6 bits in scales[j] / scales[j+4]; 4..7 keep the low nibbles in scales[j+4] and the
// top 2 bits in the spare top bits of scales[j-4] (scale) and scales[j] (min).

float q4k_value(uint blk, uint t) {
    uint base = blk * 144u;
    float d = kb_half_to_float(uint(qh[blk * 72u]));
    float dmin = kb_half_to_float(uint(qh[blk * 72u + 1u]));
    uint j = t >> 5;                  // sub-block 0..7
    uint c = t >> 6;                  // 64-value chunk 0..3
    uint l = t & 31u;
    uint sbase = base + 4u;           // scales[12]
    uint sc, mn;
    if (j < 4u) {
        sc = uint(qb[sbase + j]) & 63u;
        mn = uint(qb[sbase + j + 4u]) & 63u;
    } else {
        sc = (uint(qb[sbase + j + 4u]) & 15u) | ((uint(qb[sbase + j - 4u]) >> 6) << 4);
        mn = (uint(qb[sbase + j + 4u]) >> 4) | ((uint(qb[sbase + j]) >> 6) << 4);
    }
    uint q = uint(qb[base + 16u + 32u * c + l]);
    q = ((j & 1u) == 0u) ? (q & 15u) : (q >> 4);
    float d1 = d * float(sc);
    float m1 = dmin * float(mn);
    return d1 * float(q) - m1;
}
