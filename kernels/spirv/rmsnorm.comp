#version 450
// rmsnorm.comp - y_i = x_i / sqrt(mean_j(x_j^2) + eps) * w_i, one row (token) per workgroup.
// Zhang & Sennrich 2019, "Root Mean Square Layer Normalization": eps inside the root, the weight
// applied after, as ggml_rms_norm + ggml_mul and HF's Qwen2RMSNorm do.
// Sum of squares in fp32: per-thread strided partial sums, then a shared-memory tree.
// Needs no optional device feature.

// The workgroup size is specialization constant 1, the plan's BLOCK (256 as written;
// --tune BLOCK sets it), a power of two: the tree halves it.
layout(local_size_x = 256, local_size_x_id = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;   // rows
    uint k;   // hidden size
    float eps;
} pc;

// Test-only broken variant: leave the last element of the output unwritten.
layout(constant_id = 0) const bool KB_SHORT_WRITE = false;

shared float partial[gl_WorkGroupSize.x];

void main() {
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= pc.n) return; // uniform per workgroup, so the barriers below stay uniform
    uint t = gl_LocalInvocationID.x;
    uint base = row * pc.k;

    float s = 0.0;
    for (uint i = t; i < pc.k; i += gl_WorkGroupSize.x) {
        float v = x[base + i];
        s += v * v;
    }
    partial[t] = s;
    barrier();
    for (uint stride = gl_WorkGroupSize.x / 2u; stride > 0u; stride >>= 1) {
        if (t < stride) partial[t] += partial[t + stride];
        barrier();
    }
    float mean = partial[0] / float(pc.k);
    float scale = 1.0 / sqrt(mean + pc.eps);

    for (uint i = t; i < pc.k; i += gl_WorkGroupSize.x) {
        uint idx = base + i;
        if (KB_SHORT_WRITE && idx == pc.n * pc.k - 1u) continue;
        y[idx] = (x[idx] * scale) * w[i];
    }
}
