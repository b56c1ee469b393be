/* backends.c - the backend registry. Backends that were not built (no CUDA
 * toolkit or no Vulkan SDK at configure time) stay listed, unavailable, with the
 * reason, so --list-backends and their rows say why instead of vanishing. */
#include "bench/kbench.h"

#include <string.h>

extern const kb_backend kb_backend_cpu;

__attribute__((unused)) static int not_built_probe(const kb_options *opt, char *msg, const char *what) {
    (void)opt;
    return kb_fail(msg, KB_NOT_SUPPORTED, "not built: %s was not found when kbench was configured", what);
}

/* cuda and cublaslt: two fronts of one worker process (kernels/cuda/backend_cuda.c) */
#ifdef KB_HAVE_CUDA
extern const kb_backend kb_backend_cuda, kb_backend_cublaslt;
#else
static int cuda_not_built(const kb_options *o, char *m) { return not_built_probe(o, m, "the CUDA toolkit (NVRTC)"); }
static const kb_backend kb_backend_cuda = {.name = "cuda", .description = "our CUDA kernels, NVRTC", .probe = cuda_not_built};
static int lt_not_built(const kb_options *o, char *m) { return not_built_probe(o, m, "the CUDA toolkit (cuBLASLt)"); }
static const kb_backend kb_backend_cublaslt = {.name = "cublaslt", .description = "cuBLASLt FP8 GEMM", .probe = lt_not_built};
#endif

#ifdef KB_HAVE_VULKAN
extern const kb_backend kb_backend_vulkan;
#else
static int vk_not_built(const kb_options *o, char *m) { return not_built_probe(o, m, "Vulkan (libvulkan-dev, glslang-tools)"); }
static const kb_backend kb_backend_vulkan = {.name = "vulkan", .description = "GLSL compute via SPIR-V", .probe = vk_not_built};
#endif

const kb_backend *const kb_backends[] = {&kb_backend_cpu, &kb_backend_cuda, &kb_backend_cublaslt, &kb_backend_vulkan};
const int kb_backend_count = (int)(sizeof kb_backends / sizeof kb_backends[0]);

const kb_backend *kb_backend_find(const char *name) {
    for (int i = 0; i < kb_backend_count; i++)
        if (strcmp(kb_backends[i]->name, name) == 0) return kb_backends[i];
    return NULL;
}
