// cublaslt_scales.cu - the cuBLASLt state's device step that puts kbench's block scales
// in cuBLASLt's layout before cublasLtMatmul, in the same stream, so a chain's scales
// produced on the device a moment earlier are read as they are then
// (kernels/cuda/cublaslt_host.h, kblt_scales_to_lt, has the layouts and the host twin
// the tests check).
//   kb_scales_transpose: 1x128 blocks, kbench [rows][kb] -> cuBLASLt [kb][rows]
//   kb_scales_pad:       128x128 blocks, kbench [mb][kb] -> cuBLASLt [mb][kbp], zero pad
extern "C" __global__ void __launch_bounds__(256)
kb_scales_transpose(const float *__restrict__ src, float *__restrict__ dst, long long rows, int kb) {
    const long long e = (long long)blockIdx.x * 256 + threadIdx.x;
    if (e >= rows * kb) return;
    const long long r = e / kb, j = e - r * kb;
    dst[j * rows + r] = src[e];
}

extern "C" __global__ void __launch_bounds__(256)
kb_scales_pad(const float *__restrict__ src, float *__restrict__ dst, long long mb, int kb, int kbp) {
    const long long e = (long long)blockIdx.x * 256 + threadIdx.x;
    if (e >= mb * kbp) return;
    const long long i = e / kbp, j = e - i * kbp;
    dst[e] = j < kb ? src[i * kb + j] : 0.0f;
}
