/* cuda_driver.h - the CUDA driver API, loaded at run time with dlopen.
 *
 * kbench must start (and say why cuda is unavailable) on machines without the
 * NVIDIA driver, so nothing links libcuda: kbcu_driver_load() dlopens libcuda.so.1
 * and resolves each entry point by its exported, versioned name. The types come
 * from the toolkit's cuda.h; the names below are the ABI-stable ones (the _v2
 * suffixes are the 64-bit CUdeviceptr / size_t versions every driver since CUDA
 * 4.0 exports; cuStreamBeginCapture_v2 takes a capture mode (CUDA 10.1),
 * cuGraphInstantiateWithFlags is CUDA 11.4's, cuLaunchKernelEx 12.0's). The worker runs in the device's
 * primary context (cuDevicePrimaryCtxRetain), the one the CUDA runtime inside
 * cuBLASLt uses, so both share memory, streams and faults. */
#ifndef KB_CUDA_DRIVER_H
#define KB_CUDA_DRIVER_H

#include <cuda.h>
#include <stddef.h>

typedef struct {
    void *lib; /* dlopen handle */
    CUresult (*Init)(unsigned int flags);
    CUresult (*DriverGetVersion)(int *version);
    CUresult (*DeviceGetCount)(int *count);
    CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*DeviceGetAttribute)(int *value, CUdevice_attribute attrib, CUdevice dev);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice dev);
    CUresult (*CtxSetCurrent)(CUcontext ctx);
    CUresult (*CtxGetCurrent)(CUcontext *ctx);
    CUresult (*CtxSynchronize)(void);
    CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total_bytes);
    CUresult (*StreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*StreamDestroy)(CUstream stream);
    CUresult (*StreamSynchronize)(CUstream stream);
    CUresult (*StreamQuery)(CUstream stream);
    CUresult (*StreamBeginCapture)(CUstream stream, CUstreamCaptureMode mode);
    CUresult (*StreamEndCapture)(CUstream stream, CUgraph *graph);
    CUresult (*GraphInstantiateWithFlags)(CUgraphExec *exec, CUgraph graph, unsigned long long flags);
    CUresult (*GraphLaunch)(CUgraphExec exec, CUstream stream);
    CUresult (*GraphExecDestroy)(CUgraphExec exec);
    CUresult (*GraphDestroy)(CUgraph graph);
    CUresult (*EventCreate)(CUevent *event, unsigned int flags);
    CUresult (*EventDestroy)(CUevent event);
    CUresult (*EventRecord)(CUevent event, CUstream stream);
    CUresult (*EventSynchronize)(CUevent event);
    CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
    CUresult (*MemAlloc)(CUdeviceptr *dptr, size_t bytes);
    CUresult (*MemFree)(CUdeviceptr dptr);
    CUresult (*MemHostAlloc)(void **pp, size_t bytes, unsigned int flags);
    CUresult (*MemFreeHost)(void *p);
    CUresult (*MemHostGetDevicePointer)(CUdeviceptr *dptr, void *p, unsigned int flags);
    CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream);
    CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream stream);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream);
    CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t count, CUstream stream);
    CUresult (*ModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*ModuleUnload)(CUmodule module);
    CUresult (*ModuleGetFunction)(CUfunction *fn, CUmodule module, const char *name);
    CUresult (*FuncSetAttribute)(CUfunction fn, CUfunction_attribute attrib, int value);
    CUresult (*FuncGetAttribute)(int *value, CUfunction_attribute attrib, CUfunction fn);
    CUresult (*LaunchKernel)(CUfunction fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                             unsigned int by, unsigned int bz, unsigned int smem, CUstream stream, void **params,
                             void **extra);
    /* CUDA 12.0's launch with attributes: programmatic dependent launch (sm_90) */
    CUresult (*LaunchKernelEx)(const CUlaunchConfig *config, CUfunction fn, void **params, void **extra);
    CUresult (*GetErrorName)(CUresult error, const char **name);
    CUresult (*GetErrorString)(CUresult error, const char **text);
} kbcu_driver;

/* The exported symbol each member is loaded from (for tests and error text). */
typedef struct {
    const char *symbol;
    size_t offset; /* offsetof(kbcu_driver, member) */
} kbcu_driver_symbol;
extern const kbcu_driver_symbol kbcu_driver_symbols[];
extern const int kbcu_driver_symbol_count;

/* dlopen `path` (NULL: "libcuda.so.1") and resolve every entry point.
 * Returns 0 (KB_OK), or KB_NOT_SUPPORTED with msg = "no CUDA driver (<dlerror>)"
 * or "CUDA driver too old: <path> lacks <symbol>". */
int kbcu_driver_load(kbcu_driver *d, const char *path, char *msg);
void kbcu_driver_unload(kbcu_driver *d);

/* "CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered", or
 * "CUresult 700" where the driver cannot name it. Writes into buf, returns buf. */
const char *kbcu_result_text(const kbcu_driver *d, CUresult r, char *buf, size_t cap);

/* Errors after which the context is unusable (sticky): the caller must recreate it. */
int kbcu_result_is_sticky(CUresult r);

#endif
