/* cuda_ipc.h - the request/reply protocol between kbench's CUDA fronts (backend_cuda.c:
 * the `cuda` and `cublaslt` backends) and the worker process kbcuda_worker
 * (cuda_worker.c), over a Unix socket pair.
 *
 * Why a worker: a kernel that faults (illegal address) makes every later CUDA call of
 * its process fail, new contexts included (seen on the H100, driver 580); kbench must
 * mark that row `error` and go on. So the device lives in a child process that reset()
 * replaces, and kbench itself never initialises CUDA. Both fronts talk to the same
 * worker: one context, one stream, shared buffers and states.
 *
 * Every request is a kbcu_req header and `len` payload bytes, answered by one kbcu_rep
 * header and its `len` payload bytes (DOWNLOAD: the bytes, then a second kbcu_rep with
 * the final status). Both sides are built from the same sources, so the structs travel
 * as raw bytes; the worker still checks every length, count, handle and view, and
 * answers a malformed request with an error instead of acting on it. */
#ifndef KB_CUDA_IPC_H
#define KB_CUDA_IPC_H

#include "bench/kbench.h"
#include "kernels/cuda/cuda_ops.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KBCU_MAGIC 0x5543424bu /* "KBCU" */
#define KBCU_MAX_SEQ 4096      /* states in one enqueue / record / run_timed */
#define KBCU_MAX_VARIANTS 4096
/* A payload beyond this is no request of ours: the worker answers and exits, since
 * it could not stay in step with the stream. */
#define KBCU_MAX_PAYLOAD ((uint64_t)1 << 40)

typedef enum {
    KBCU_REQ_PROBE = 1, /* payload kbcu_probe_req                  reply payload kbcu_probe_rep */
    KBCU_REQ_ALLOC,     /* a = bytes                               reply a = buffer handle */
    KBCU_REQ_FREE,      /* a = buffer handle */
    KBCU_REQ_UPLOAD,    /* a, b, c = view (handle, offset, bytes); payload = the c bytes */
    KBCU_REQ_DOWNLOAD,  /* a, b, c = view                          reply payload = the bytes, then a kbcu_rep */
    KBCU_REQ_VARIANTS,  /* payload kbcu_variants_req (cuBLASLt)    reply a = n, payload kb_variant[n] */
    KBCU_REQ_PREPARE,   /* payload kbcu_prepare_req + kb_arg[n]    reply a = state handle */
    KBCU_REQ_RELEASE,   /* a = state handle */
    KBCU_REQ_ENQUEUE,   /* payload uint64_t states[n] */
    KBCU_REQ_WAIT,
    KBCU_REQ_RECORD,    /* payload uint64_t states[n]              reply a = state handle */
    KBCU_REQ_RUN_TIMED, /* a = flush, payload uint64_t states[n]   reply seconds */
    KBCU_REQ_COPY,      /* a, b, c = destination view; payload = the source kb_view (device to device) */
    KBCU_REQ_END
} kbcu_req_op;

typedef struct {
    uint32_t magic, op;
    uint64_t a, b, c;
    uint64_t len; /* payload bytes that follow */
} kbcu_req;

typedef struct {
    int32_t rc;
    uint32_t pad;
    uint64_t a;
    double seconds;
    uint64_t len; /* payload bytes that follow */
    char msg[KB_MSG];
} kbcu_rep;

typedef struct {
    uint32_t epoch;        /* tags every handle of this worker (a stale one is refused) */
    int32_t measure;       /* measure bandwidth and launch floor (0 after a reset: kept) */
    int32_t test_variants; /* allow the test-only variants (KB_TEST_VARIANTS=1) */
    int32_t has_cache_dir; /* 0: the default cubin cache */
    int32_t has_libcuda;   /* 0: libcuda.so.1 */
    char cache_dir[1024];
    char libcuda[1024];
} kbcu_probe_req;

typedef struct {
    kb_device_info info;
    kbcu_devinfo dev;
    int32_t lt_rc; /* cuBLASLt usable here: KB_OK, or why not */
    char lt_reason[KB_MSG];
} kbcu_probe_rep;

typedef struct {
    kb_case c;
    char algo[32];
    int32_t algo_cap, fast_accum, max;
} kbcu_variants_req;

enum { KBCU_FRONT_CUDA = 0, KBCU_FRONT_CUBLASLT = 1 };

typedef struct {
    int32_t front; /* which backend's variant: KBCU_FRONT_* */
    int32_t n_in, n_out, pad;
    kb_case c;
    kb_variant v;
    /* followed by kb_arg[n_in + n_out] */
} kbcu_prepare_req;

/* Whole-buffer socket I/O (EINTR and short transfers handled, no SIGPIPE).
 * 0 on success, -1 on error or end of stream. timeout_ms < 0: wait forever. */
int kbcu_send_all(int fd, const void *buf, size_t n);
int kbcu_recv_all(int fd, void *buf, size_t n, int timeout_ms);

/* Start `path` with its end of a new socket pair on file descriptor 3 and stdout on
 * /dev/null. KB_OK with *pid and *fd (ours, close-on-exec), or KB_NOT_SUPPORTED. */
int kbcu_spawn_worker(const char *path, pid_t *pid, int *fd, char *msg);

/* The worker's request loop on fd (cuda_worker.c); returns when the parent closes
 * its end (0) or the stream cannot be trusted any more (non-zero). */
int kbcu_worker_serve(int fd);

#endif
