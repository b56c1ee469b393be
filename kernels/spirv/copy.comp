#version 450
// copy.comp - the bandwidth probe (backend_vulkan.c measure_bandwidth): dst = src in 16-byte
// words, one per invocation, 256-invocation workgroups over the linear 2D grid. A compute
// copy, not vkCmdCopyBuffer: the ops are compute shaders, and a driver may run a transfer
// on a copy engine far slower than the SMs (the H200: 0.85 TB/s vs 4.2 TB/s).
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Dst { uvec4 dst[]; };

layout(push_constant) uniform Push {
    uint count; // 16-byte words
} pc;

layout(constant_id = 0) const bool KB_SHORT_WRITE = false; // unused: the convention's slot

void main() {
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i < pc.count) dst[i] = src[i];
}
