/* cuda_ipc.h - the request/reply protocol between kbench's cuda backend (the parent,
 * backend_cuda.c) and its worker process (cuda_worker.c), over a Unix socket pair.
 *
 * Why a worker: a kernel that faults (illegal address) makes every later CUDA call of
 * its process fail, new contexts included; kbench must mark that row `error` and go
 * on. So the device lives in a child process that reset() replaces. The parent never
 * initialises CUDA itself, which also keeps our faults away from the cuBLASLt backend.
 *
 * Every request gets one reply. Both sides are built from the same sources, so the
 * structs travel as raw bytes. Bulk data (upload/download) follows the header. */
#ifndef KB_CUDA_IPC_H
#define KB_CUDA_IPC_H

#include "bench/kbench.h"
#include "kernels/cuda/cuda_device.h"

#include <stddef.h>
#include <stdint.h>

enum {
    KBCU_REQ_PROBE = 1, /* payload: kbcu_probe_req          reply payload: kbcu_device_info */
    KBCU_REQ_ALLOC,     /* a = bytes                        reply a = device pointer */
    KBCU_REQ_FREE,      /* a = device pointer */
    KBCU_REQ_UPLOAD,    /* a = device pointer, payload = the bytes */
    KBCU_REQ_DOWNLOAD,  /* a = device pointer, b = bytes    reply payload = the bytes */
    KBCU_REQ_PREPARE,   /* payload: kbcu_prepare_req        reply a = state handle */
    KBCU_REQ_RUN,       /* a = state, b = 1 to time it      reply seconds */
    KBCU_REQ_RELEASE,   /* a = state */
    KBCU_REQ_FLUSH,
};

typedef struct {
    uint32_t op;
    uint32_t pad;
    uint64_t a, b;
    uint64_t len; /* payload bytes that follow */
} kbcu_req;

typedef struct {
    int32_t rc;
    uint32_t pad;
    uint64_t a;
    double seconds;
    char msg[KB_MSG];
    uint64_t len; /* payload bytes that follow */
} kbcu_rep;

typedef struct {
    int has_cache_dir; /* 0: the default cache */
    char cache_dir[1024];
    int has_libcuda; /* 0: libcuda.so.1 */
    char libcuda[1024];
} kbcu_probe_req;

typedef struct {
    kb_case c;
    char variant[64];
    uint64_t dev_in[KB_MAX_INPUTS];
    uint64_t dev_out;
} kbcu_prepare_req;

/* Whole-buffer socket I/O (EINTR and short transfers handled, no SIGPIPE).
 * 0 on success, -1 on error or end of stream. timeout_ms < 0: wait forever. */
int kbcu_send_all(int fd, const void *buf, size_t n);
int kbcu_recv_all(int fd, void *buf, size_t n, int timeout_ms);

/* The worker's request loop on fd; returns when the parent closes its end. */
int kbcu_worker_serve(int fd);

#endif
