// q6k.glsl - one value of a ggml Q6_K block, shared by dequant_q4k.comp (-DKB_BLOCKS_Q6K),
// embed.comp and weight_fp8.comp. The including shader declares qb (uint8_t[]) and qh
// (uint16_t[]) over the same buffer and includes kb_common.glsl.
//
// ggml block_q6_K (210 bytes): uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d.
// Per 128-value half: l = 0..31, is = l/16,
//   y[l]    = d*sc[is+0] * ((ql[l]    & 15 | ((qh[l] >> 0) & 3) << 4) - 32)
//   y[l+32] = d*sc[is+2] * ((ql[l+32] & 15 | ((qh[l] >> 2) & 3) << 4) - 32)
//   y[l+64] = d*sc[is+4] * ((ql[l]    >> 4 | ((qh[l] >> 4) & 3) << 4) - 32)
//   y[l+96] = d*sc[is+6] * ((ql[l+32] >> 4 | ((qh[l] >> 6) & 3) << 4) - 32)
// then ql += 64, qh += 32, sc += 8 (ggml dequantize_row_q6_K). (d*sc) is exact in float
// (11 x 8 bits) and the product with q is rounded once, in the same order as ggml: the
// value is bit-exact whether or not the compiler fuses.

float q6k_value(uint blk, uint t) {
    uint base = blk * 210u;
    float d = kb_half_to_float(uint(qh[blk * 105u + 104u]));
    uint hf = t >> 7;
    uint w = t & 127u;
    uint quarter = w >> 5;
    uint l = w & 31u;
    uint ql_at = base + 64u * hf + l + ((quarter & 1u) != 0u ? 32u : 0u);
    uint qh_at = base + 128u + 32u * hf + l;
    uint lo = uint(qb[ql_at]);
    lo = (quarter >= 2u) ? (lo >> 4) : (lo & 15u);
    uint hi = (uint(qb[qh_at]) >> (2u * quarter)) & 3u;
    int qv = int(lo | (hi << 4)) - 32;
    int sc = bitfieldExtract(int(uint(qb[base + 192u + 8u * hf + (l >> 4) + 2u * quarter])), 0, 8);
    float ds = d * float(sc);
    return ds * float(qv);
}
