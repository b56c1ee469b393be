// test_fault.cu - test-only kernels, with rmsnorm's signature (x, w, y, K, eps), exposed
// as rmsnorm variants only when KB_TEST_VARIANTS=1. They check the harness, not math:
//   rmsnorm_test_fault     : stores to an unmapped address -> CUDA_ERROR_ILLEGAL_ADDRESS,
//                            a sticky fault: the row must be `error`, the next cases fine.
//   rmsnorm_test_hang      : never ends (until its process dies): the worker's reply
//                            timeout (KB_CUDA_TIMEOUT_S) must turn it into an `error`
//                            row and a fresh worker for the next cases.
//   rmsnorm_test_unwritten : a correct rmsnorm that skips the very last element, so the
//                            poison check must flag one unwritten value.
//   kb_test_poke           : writes `bytes` bytes of `value` (little-endian) at p, after
//                            a real variant ran: the generic test_nan variant of every op
//                            (kernels/cuda/cuda_plan.c) puts a NaN in output 0 with it.
#ifndef BLOCK
#define BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_test_fault(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y, int K, float eps) {
    (void)x;
    (void)w;
    (void)y;
    (void)K;
    (void)eps;
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        // The first page of the address space is never mapped. volatile: the store stays.
        volatile float *bad = (volatile float *)16ull;
        *bad = 1.0f;
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_test_hang(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y, int K, float eps) {
    (void)x;
    (void)w;
    (void)K;
    (void)eps;
    // clock64() is never negative, so the loop never ends; the volatile store after it
    // keeps the compiler from proving the loop useless
    long long t = clock64();
    while (t >= 0) t = clock64();
    ((volatile float *)y)[0] = (float)t;
}

extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_test_unwritten(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ y, int K, float eps) {
    __shared__ float part[BLOCK / 32];
    __shared__ float total;
    const float *xr = x + (long long)blockIdx.x * K;
    float *yr = y + (long long)blockIdx.x * K;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < K; i += BLOCK) ss = fmaf(xr[i], xr[i], ss);
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int i = 0; i < BLOCK / 32; i++) s += part[i];
        total = s;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(total / (float)K + eps);
    const bool last_row = blockIdx.x == gridDim.x - 1;
    for (int i = threadIdx.x; i < K; i += BLOCK)
        if (!(last_row && i == K - 1)) yr[i] = (xr[i] * scale) * w[i];
}

extern "C" __global__ void kb_test_poke(unsigned char *p, long long value, int bytes) {
    if (blockIdx.x == 0 && threadIdx.x == 0)
        for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(value >> (8 * i));
}
