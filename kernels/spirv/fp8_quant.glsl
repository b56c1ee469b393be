// fp8_quant.glsl - the body of quant_fp8.comp and weight_fp8.comp: a rows x k matrix to OCP
// FP8 codes with float32 amax scales (the definition of ref/quant_fp8.c):
//   amax_g = max |x| over scale group g (exact: a max of the float bits)
//   s_g    = f32(amax_g / fp8_max), or 1 when amax_g == 0
//   q      = fp8(f32(x / s_g)), round to nearest even, saturating at +-fp8_max; with FLUSH
//            a code that would be an fp8 subnormal becomes +-0
// Both divisions are correctly rounded (div_rn: integer long division of the significands)
// and the encoding is bit manipulation, so the codes and scales are bit-identical to the
// reference's float arithmetic (ref/formats.c's encoder, ported below) on every device.
//
// The including shader declares binding 0 (the input) and defines
//   uint load_bits(uint i)   the float32 bits of element i = row * k + col
// Bindings: 0 input, 1 codes (uint8_t), 2 scales (float bits), 3 partial amax (tensor mode).
// Needs storageBuffer8BitAccess (the codes).

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 1) writeonly buffer Codes { uint8_t codes[]; };
layout(std430, set = 0, binding = 2) buffer Scales { uint scales[]; };  // float bits
layout(std430, set = 0, binding = 3) buffer Partial { uint partial[]; }; // amax bits per chunk

layout(push_constant) uniform Push {
    uint rows;
    uint k;
    uint kblocks; // ceil(k / 128)
    uint nparts;  // tensor mode: partial amax values (workgroups of the first pass)
    uint chunk;   // tensor mode: elements per partial
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // test-only: last code unwritten
// 0 one workgroup per scale group (outer, vec128, blk128): amax, scale, codes;
// tensor mode: 1 amax per chunk -> partial, 2 one workgroup: amax of the partials -> scale,
// 3 codes, one element per thread.
layout(constant_id = 1) const uint PASS = 0u;
layout(constant_id = 2) const uint SCALE_MODE = 1u; // kb_scale_mode: 1 outer, 2 vec128, 3 blk128
layout(constant_id = 3) const bool E5M2 = false;
layout(constant_id = 4) const bool FLUSH = false;

const uint PASS_GROUP = 0u, PASS_PARTIAL = 1u, PASS_FINAL = 2u, PASS_CODES = 3u;
const uint SCALE_OUTER = 1u, SCALE_VEC128 = 2u, SCALE_BLK128 = 3u;
const uint F32_INF = 0x7f800000u, F32_NAN = 0x7fc00000u, F32_ONE = 0x3f800000u;
const uint FP8_MAX = E5M2 ? 0x47600000u : 0x43e00000u; // 57344 and 448 as float bits

// ---- a / b of two non-negative floats (bits), correctly rounded to nearest even ----------
// Significand m in [2^23, 2^24) and exponent e of a nonzero finite float: value = m 2^(e-23).
void unpack(uint x, out uint m, out int e) {
    uint ex = x >> 23;
    if (ex == 0u) { // subnormal: normalise
        int s = 23 - findMSB(x);
        m = x << uint(s);
        e = -126 - s;
    } else {
        m = (x & 0x7fffffu) | 0x800000u;
        e = int(ex) - 127;
    }
}

uint div_rn(uint a, uint b) {
    if (a > F32_INF || b > F32_INF) return F32_NAN;
    if (a == F32_INF) return b == F32_INF ? F32_NAN : F32_INF;
    if (b == F32_INF) return 0u;
    if (b == 0u) return a == 0u ? F32_NAN : F32_INF;
    if (a == 0u) return 0u;
    uint ma, mb;
    int ea, eb;
    unpack(a, ma, ea);
    unpack(b, mb, eb);
    int e = ea - eb;
    if (ma < mb) { // quotient of the significands in [1, 2)
        ma <<= 1;
        e -= 1;
    }
    // q = floor(ma 2^23 / mb) in [2^23, 2^24), r = twice the remainder (< 2 mb < 2^25)
    uint q = 0u, r = ma;
    for (int i = 0; i < 24; i++) {
        q <<= 1;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1;
    }
    int E = e + 127;
    if (E >= 1) {
        if (r > mb || (r == mb && (q & 1u) != 0u)) q += 1u;
        if (q == 0x1000000u) { // rounded up to the next binade
            q = 0x800000u;
            E += 1;
        }
        if (E >= 255) return F32_INF;
        return (uint(E) << 23) | (q & 0x7fffffu);
    }
    // a subnormal result, in units of 2^-149: q >> (1 - E), the remainder as sticky bit
    uint sh = uint(1 - E);
    if (sh > 24u) return 0u; // below 2^-150: rounds to zero
    uint kept = q >> sh, dropped = q & ((1u << sh) - 1u), half_unit = 1u << (sh - 1u);
    if (dropped > half_unit || (dropped == half_unit && (r != 0u || (kept & 1u) != 0u))) kept += 1u;
    return kept; // a carry into bit 23 is the smallest normal's bits: still right
}

// ---- float32 bits -> OCP FP8 code (ref/formats.c kb_f32_to_e4m3 / kb_f32_to_e5m2, saturating)
uint shift_rne(uint v, uint s) { // v >> s rounded to nearest even, s >= 1
    if (s >= 32u) return 0u;
    uint q = v >> s, rest = v & ((1u << s) - 1u), half_unit = 1u << (s - 1u);
    return q + ((rest > half_unit || (rest == half_unit && (q & 1u) != 0u)) ? 1u : 0u);
}
// A finite non-negative float (bits a) rounded to mbits stored mantissa bits, exponent bias
// `bias`: the magnitude code; a carry out of the top lands above the largest finite code.
uint round_magnitude(uint a, int mbits, int bias) {
    int e = int(a >> 23);
    if (e >= 127 - bias + 1) return shift_rne(a - (uint(127 - bias) << 23), uint(23 - mbits));
    uint sig = (a & 0x7fffffu) | (e != 0 ? 0x800000u : 0u);
    int e_eff = e != 0 ? e : 1;
    return shift_rne(sig, uint(151 - bias - mbits - e_eff)); // units of the smallest subnormal
}
uint fp8_encode(uint u) {
    uint sign = (u >> 24) & 0x80u;
    uint a = u & 0x7fffffffu;
    if (E5M2) {
        if (a > F32_INF) return sign | 0x7eu; // quiet NaN
        uint code = a == F32_INF ? 0x7cu : round_magnitude(a, 2, 15);
        return sign | min(code, 0x7bu); // saturate at 57344
    }
    if (a > F32_INF) return sign | 0x7fu; // e4m3fn NaN, no inf
    uint code = a == F32_INF ? 0x80u : round_magnitude(a, 3, 7);
    return sign | min(code, 0x7eu); // saturate at 448
}

// The code of x (bits) under scale s (bits).
uint quantize(uint x, uint s) {
    uint code = fp8_encode(div_rn(x & 0x7fffffffu, s) | (x & 0x80000000u));
    uint mbits = E5M2 ? 2u : 3u;
    bool subnormal = ((code & 0x7fu) >> mbits) == 0u && (code & ((1u << mbits) - 1u)) != 0u;
    if (FLUSH && subnormal) code &= 0x80u;
    return code;
}

// |x| as bits for the amax; NaN counts as 0 (a NaN is never greater, as in the reference).
uint abs_bits(uint x) {
    uint a = x & 0x7fffffffu;
    return a > F32_INF ? 0u : a;
}

uint scale_of(uint amax) { return amax == 0u ? F32_ONE : div_rn(amax, FP8_MAX); }

void store_code(uint i, uint code) {
    if (KB_SHORT_WRITE && i == pc.rows * pc.k - 1u) return;
    codes[i] = uint8_t(code);
}

shared uint red[256];
shared uint group_scale;

// The max over the workgroup of each thread's v (in red[0] afterwards).
uint workgroup_max(uint t, uint v) {
    red[t] = v;
    barrier();
    for (uint stride = 128u; stride > 0u; stride >>= 1) {
        if (t < stride) red[t] = max(red[t], red[t + stride]);
        barrier();
    }
    return red[0];
}

void main() {
    uint t = gl_LocalInvocationID.x;
    uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint total = pc.rows * pc.k;

    if (PASS == PASS_CODES) { // tensor mode: every element against scales[0]
        uint i = wg * 256u + t;
        if (i < total) store_code(i, quantize(load_bits(i), scales[0]));
        return;
    }
    if (PASS == PASS_PARTIAL) {
        if (wg >= pc.nparts) return; // uniform per workgroup
        uint begin = wg * pc.chunk, end = min(total, begin + pc.chunk);
        uint m = 0u;
        for (uint i = begin + t; i < end; i += 256u) m = max(m, abs_bits(load_bits(i)));
        uint amax = workgroup_max(t, m);
        if (t == 0u) partial[wg] = amax;
        return;
    }
    if (PASS == PASS_FINAL) {
        uint m = 0u;
        for (uint p = t; p < pc.nparts; p += 256u) m = max(m, partial[p]);
        uint amax = workgroup_max(t, m);
        if (t == 0u) scales[0] = scale_of(amax);
        return;
    }

    // PASS_GROUP: workgroup wg is scale group wg: rows [r0, r1) x cols [c0, c1)
    uint r0, r1, c0, c1;
    if (SCALE_MODE == SCALE_OUTER) {
        if (wg >= pc.rows) return;
        r0 = wg;
        r1 = wg + 1u;
        c0 = 0u;
        c1 = pc.k;
    } else {
        uint rb = wg / pc.kblocks, cb = wg % pc.kblocks;
        uint row_groups = SCALE_MODE == SCALE_BLK128 ? (pc.rows + 127u) / 128u : pc.rows;
        if (rb >= row_groups) return;
        r0 = SCALE_MODE == SCALE_BLK128 ? rb * 128u : rb;
        r1 = SCALE_MODE == SCALE_BLK128 ? min(pc.rows, r0 + 128u) : r0 + 1u;
        c0 = cb * 128u;
        c1 = min(pc.k, c0 + 128u);
    }
    uint width = c1 - c0, count = (r1 - r0) * width;
    uint m = 0u;
    for (uint e = t; e < count; e += 256u) m = max(m, abs_bits(load_bits((r0 + e / width) * pc.k + c0 + e % width)));
    uint amax = workgroup_max(t, m);
    if (t == 0u) {
        group_scale = scale_of(amax);
        scales[wg] = group_scale;
    }
    barrier();
    uint s = group_scale;
    for (uint e = t; e < count; e += 256u) {
        uint i = (r0 + e / width) * pc.k + c0 + e % width;
        store_code(i, quantize(load_bits(i), s));
    }
}
