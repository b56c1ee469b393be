#version 450
// rope_neox.comp - rotary position embedding, NEOX pairing, one thread per rotated pair.
// For head dim d and i < d/2 (the NEOX / "rotate_half" layout of Hugging Face's
// apply_rotary_pos_emb and ggml's GGML_ROPE_TYPE_NEOX; Su et al. 2021, RoFormer): pair (i, i + d/2),
//   theta_i = pos * base^(-2i/d),  x'_i = x_i cos - x_{i+d/2} sin,  x'_{i+d/2} = x_i sin + x_{i+d/2} cos.
//
// The angle: a float theta_i loses ~pos * 2^-24 rad (4e-3 rad at pos 32768), and GLSL sin/cos
// only promise 2^-11 absolute error inside [-pi, pi]. So the host passes, per i, the frequency
// in turns per position, g_i = base^(-2i/d) / (2 pi), as a 64-bit binary fraction (computed in
// fp64). pos * g_i mod 1 is then an exact 32x64-bit integer product, its top bits pick the
// quadrant, and the rest is a small angle in [-pi/4, pi/4] for the Cephes sinf/cosf
// polynomials (about 1 ulp there). Only 32-bit integer and float arithmetic: no device feature.

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Pos { int pos[]; };
layout(std430, set = 0, binding = 2) readonly buffer Freq { uvec2 turns[]; }; // (high, low) 32 bits of g_i * 2^64
layout(std430, set = 0, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;
    uint heads;
    uint head_dim;
} pc;

// Test-only broken variants: leave the last element unwritten; pair (2i, 2i+1) (GPT-J layout).
layout(constant_id = 0) const bool KB_SHORT_WRITE = false;
layout(constant_id = 1) const bool KB_ROPE_GPTJ = false;

// sin and cos of a in [-pi/4, pi/4]: Cephes sinf.c / cosf.c minimax coefficients.
void sincos_small(float a, out float s, out float c) {
    float z = a * a;
    s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * a + a;
    c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
}

void main() {
    uint half_dim = pc.head_dim / 2u;
    uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    uint total = pc.n * pc.heads * half_dim;
    if (gid >= total) return;
    uint i = gid % half_dim;
    uint row = gid / half_dim;           // token * heads + head
    uint token = row / pc.heads;

    // Fraction of a turn: (|p| * G) mod 2^64, G = (g.x << 32) | g.y; only the top word is kept.
    int p = pos[token];
    uint a = uint(abs(p));
    uvec2 g = turns[i];
    uint hi, lo;
    umulExtended(a, g.y, hi, lo);
    hi += a * g.x;                       // mod 2^32
    if (p < 0) hi = ~hi + ((lo == 0u) ? 1u : 0u); // two's complement of the 64-bit fraction

    // Nearest quarter turn q, remainder r in [-2^29, 2^29) units of 2^-32 turn.
    uint q = (hi + 0x20000000u) >> 30;
    int r = int(hi - (q << 30));
    float ang = float(r) * 1.4629180792671596e-9; // 2 pi / 2^32
    float s0, c0;
    sincos_small(ang, s0, c0);
    float s, c;
    if (q == 0u)      { s = s0;  c = c0;  }
    else if (q == 1u) { s = c0;  c = -s0; }
    else if (q == 2u) { s = -s0; c = -c0; }
    else              { s = -c0; c = s0;  }

    uint i0 = KB_ROPE_GPTJ ? 2u * i : i;
    uint i1 = KB_ROPE_GPTJ ? 2u * i + 1u : i + half_dim;
    uint e0 = row * pc.head_dim + i0;
    uint e1 = row * pc.head_dim + i1;
    float x0 = x[e0];
    float x1 = x[e1];
    uint last = pc.n * pc.heads * pc.head_dim - 1u;
    if (!(KB_SHORT_WRITE && e0 == last)) y[e0] = x0 * c - x1 * s;
    if (!(KB_SHORT_WRITE && e1 == last)) y[e1] = x0 * s + x1 * c;
}
