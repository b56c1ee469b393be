// timing.cu - kb_spin: holds the stream for `ns` nanoseconds of GPU time (the global
// nanosecond timer), so that the host can enqueue the start event, the timed
// launches and the stop event before the start event fires (cuda_device.c). One warp;
// it touches no memory, so it leaves the caches as the cold flush left them.
extern "C" __global__ void kb_spin(unsigned long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do {
        __nanosleep(500);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    } while (t - t0 < ns);
}
