// timing.cu - the worker's own kernels for timing and cache flushing (cuda_device.c).
//
// kb_block_stream: holds the stream until the host sets *flag (host-mapped memory),
//   so that the start event, the timed work and the stop event are all queued before
//   the start event fires: the events then time the GPU's work, not the host's
//   enqueue cost (nvbench's "blocking kernel"). A bug must not hang the GPU: after
//   timeout_ns of %globaltimer it gives up, sets *timed_out and the host throws the
//   sample away. One thread; it touches no device memory.
// kb_empty: nothing, timed like a case to measure the launch floor.
// kb_flush_read: reads n16 16-byte words (twice the L2) and writes nothing unless the
//   XOR of what it read equals `never` (the buffer is zero and never = 1): a cache
//   flush made of reads, which leaves no dirty lines for the timed work to write back
//   (the default, KB_CUDA_FLUSH=read; a memset flush is KB_CUDA_FLUSH=write).
__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

extern "C" __global__ void kb_block_stream(const volatile unsigned int *flag, volatile unsigned int *timed_out,
                                           unsigned long long timeout_ns) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    const unsigned long long t0 = global_ns();
    while (*flag == 0u) {
        if (global_ns() - t0 > timeout_ns) {
            *timed_out = 1u;
            __threadfence_system();
            return;
        }
        __nanosleep(200);
    }
}

extern "C" __global__ void kb_empty() {}

extern "C" __global__ void __launch_bounds__(256)
kb_flush_read(const uint4 *__restrict__ buf, long long n16, unsigned int never, unsigned int *__restrict__ sink) {
    unsigned int acc = 0u;
    for (long long i = (long long)blockIdx.x * 256 + threadIdx.x; i < n16; i += (long long)gridDim.x * 256) {
        const uint4 v = buf[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == never) sink[0] = acc;
}
