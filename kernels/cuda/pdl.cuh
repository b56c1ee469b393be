// pdl.cuh - programmatic dependent launch (PDL) in a kernel, by the PDL tunable.
//
// With PDL=1 the plan launches the kernel with CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_-
// SERIALIZATION (cuda_device.c): it may be scheduled while the stream's previous kernel
// still runs, once every block of that kernel has called pdl_launch_dependents (or ended).
// PTX ISA, griddepcontrol (sm_90):
//  - griddepcontrol.launch_dependents: this block no longer holds back the next kernel's
//    launch (a hint; it makes nothing of this kernel's memory visible);
//  - griddepcontrol.wait: the thread waits until every prerequisite grid has completed and
//    its memory operations are visible; without a prerequisite it returns at once.
// So a kernel calls pdl_wait() before its first read of anything the previous kernel may
// write (an activation, a scale, token ids) and before its first write (the previous
// kernel may still read that buffer); what no kernel writes (weights) it may load before.
// With PDL=0, or below sm_90, both are nothing: the kernel compiles as it did without them.
#pragma once

#ifndef PDL
#define PDL 0
#endif

#if PDL && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
#else
__device__ __forceinline__ void pdl_launch_dependents() {}
__device__ __forceinline__ void pdl_wait() {}
#endif

// For a kernel whose first loads are the previous kernel's output: no prologue to overlap
// but the launch itself (the blocks are resident and waiting when that kernel ends).
__device__ __forceinline__ void pdl_enter() {
    pdl_launch_dependents();
    pdl_wait();
}
