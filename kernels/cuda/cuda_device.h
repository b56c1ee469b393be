/* cuda_device.h - the device side of the cuda backend: the CUDA context, memory,
 * NVRTC modules, launches and timing. It runs inside the worker process
 * (cuda_worker.c), never inside kbench itself: after a sticky fault
 * (CUDA_ERROR_ILLEGAL_ADDRESS...) the driver refuses every later CUDA call of the
 * process, new contexts included (seen on the H100, driver 580), so the only way
 * to go on is a fresh process. Device pointers and states travel as 64-bit handles. */
#ifndef KB_CUDA_DEVICE_H
#define KB_CUDA_DEVICE_H

#include "bench/kbench.h"

#include <stdint.h>

typedef struct {
    char device[256]; /* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 50 MiB L2)" */
    char driver[160]; /* "580.159.04 (CUDA 13.0 driver API, NVRTC 13.0)" */
    double copy_bw;   /* device-to-device copy, bytes read + written per second */
    int sm;           /* compute capability major*10+minor */
    int sm_count;
    int smem_optin;
} kbcu_device_info;

/* cache_dir: NULL = the default cache, "" = none. libcuda: NULL = "libcuda.so.1". */
int kbcu_dev_probe(const char *libcuda, const char *cache_dir, kbcu_device_info *info, char *msg);
int kbcu_dev_alloc(size_t bytes, uint64_t *dptr, char *msg);
void kbcu_dev_free(uint64_t dptr);
int kbcu_dev_upload(uint64_t dst, const void *host, size_t bytes, char *msg);
int kbcu_dev_download(void *host, uint64_t src, size_t bytes, char *msg);
int kbcu_dev_prepare(const kb_case *c, const char *variant, const uint64_t dev_in[KB_MAX_INPUTS], uint64_t dev_out,
                     uint64_t *state, char *msg);
int kbcu_dev_run(uint64_t state, double *seconds, char *msg);
void kbcu_dev_release(uint64_t state);
int kbcu_dev_flush(char *msg);

#endif
