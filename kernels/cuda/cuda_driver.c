/* cuda_driver.c - dlopen loader for the CUDA driver API (see cuda_driver.h). */
#include "kernels/cuda/cuda_driver.h"

#include "bench/kbench.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define SYM(member, symbol)                                                                                            \
    { symbol, offsetof(kbcu_driver, member) }
const kbcu_driver_symbol kbcu_driver_symbols[] = {
    SYM(Init, "cuInit"),
    SYM(DriverGetVersion, "cuDriverGetVersion"),
    SYM(DeviceGetCount, "cuDeviceGetCount"),
    SYM(DeviceGet, "cuDeviceGet"),
    SYM(DeviceGetName, "cuDeviceGetName"),
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute"),
    SYM(DeviceTotalMem, "cuDeviceTotalMem_v2"),
    SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    SYM(CtxSetCurrent, "cuCtxSetCurrent"),
    SYM(CtxGetCurrent, "cuCtxGetCurrent"),
    SYM(CtxSynchronize, "cuCtxSynchronize"),
    SYM(MemGetInfo, "cuMemGetInfo_v2"),
    SYM(StreamCreate, "cuStreamCreate"),
    SYM(StreamDestroy, "cuStreamDestroy_v2"),
    SYM(StreamSynchronize, "cuStreamSynchronize"),
    SYM(StreamQuery, "cuStreamQuery"),
    SYM(StreamBeginCapture, "cuStreamBeginCapture_v2"),
    SYM(StreamEndCapture, "cuStreamEndCapture"),
    SYM(GraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"),
    SYM(GraphLaunch, "cuGraphLaunch"),
    SYM(GraphExecDestroy, "cuGraphExecDestroy"),
    SYM(GraphDestroy, "cuGraphDestroy"),
    SYM(EventCreate, "cuEventCreate"),
    SYM(EventDestroy, "cuEventDestroy_v2"),
    SYM(EventRecord, "cuEventRecord"),
    SYM(EventSynchronize, "cuEventSynchronize"),
    SYM(EventElapsedTime, "cuEventElapsedTime"),
    SYM(MemAlloc, "cuMemAlloc_v2"),
    SYM(MemFree, "cuMemFree_v2"),
    SYM(MemHostAlloc, "cuMemHostAlloc"),
    SYM(MemFreeHost, "cuMemFreeHost"),
    SYM(MemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2"),
    SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    SYM(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
    SYM(MemsetD8Async, "cuMemsetD8Async"),
    SYM(ModuleLoadData, "cuModuleLoadData"),
    SYM(ModuleUnload, "cuModuleUnload"),
    SYM(ModuleGetFunction, "cuModuleGetFunction"),
    SYM(FuncSetAttribute, "cuFuncSetAttribute"),
    SYM(FuncGetAttribute, "cuFuncGetAttribute"),
    SYM(LaunchKernel, "cuLaunchKernel"),
    SYM(LaunchKernelEx, "cuLaunchKernelEx"),
    SYM(GetErrorName, "cuGetErrorName"),
    SYM(GetErrorString, "cuGetErrorString"),
};
#undef SYM
const int kbcu_driver_symbol_count = (int)(sizeof kbcu_driver_symbols / sizeof kbcu_driver_symbols[0]);

int kbcu_driver_load(kbcu_driver *d, const char *path, char *msg) {
    memset(d, 0, sizeof *d);
    const char *name = path ? path : "libcuda.so.1";
    dlerror();
    d->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!d->lib) {
        const char *e = dlerror();
        return kb_fail(msg, KB_NOT_SUPPORTED, "no CUDA driver (%s)", e ? e : name);
    }
    for (int i = 0; i < kbcu_driver_symbol_count; i++) {
        void *f = dlsym(d->lib, kbcu_driver_symbols[i].symbol);
        if (!f) {
            kb_fail(msg, KB_NOT_SUPPORTED, "CUDA driver too old: %s lacks %s", name, kbcu_driver_symbols[i].symbol);
            dlclose(d->lib);
            memset(d, 0, sizeof *d);
            return KB_NOT_SUPPORTED;
        }
        /* POSIX guarantees a dlsym result converts to a function pointer; memcpy
         * keeps ISO C quiet about object-to-function pointer casts. */
        memcpy((char *)d + kbcu_driver_symbols[i].offset, &f, sizeof f);
    }
    return KB_OK;
}

void kbcu_driver_unload(kbcu_driver *d) {
    if (d->lib) dlclose(d->lib);
    memset(d, 0, sizeof *d);
}

const char *kbcu_result_text(const kbcu_driver *d, CUresult r, char *buf, size_t cap) {
    const char *name = NULL, *text = NULL;
    if (d && d->GetErrorName && d->GetErrorName(r, &name) != CUDA_SUCCESS) name = NULL;
    if (d && d->GetErrorString && d->GetErrorString(r, &text) != CUDA_SUCCESS) text = NULL;
    if (name && text) snprintf(buf, cap, "%s: %s", name, text);
    else if (name) snprintf(buf, cap, "%s", name);
    else snprintf(buf, cap, "CUresult %d", (int)r);
    return buf;
}

int kbcu_result_is_sticky(CUresult r) {
    /* cuda.h documents these as leaving the context unusable ("the process must
     * terminate" / "the context cannot be used"): every later call fails. */
    switch (r) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED: return 1;
    default: return 0;
    }
}
