/* cuda_worker.h - inside kbcuda_worker: the device (cuda_device.c), the cuBLASLt part
 * (cublaslt_device.c) and the request loop (cuda_worker.c). Nothing here is linked
 * into kbench.
 *
 * One device, one context (the device's primary context, made current once: the CUDA
 * runtime inside cuBLASLt uses the same one), one non-blocking stream, one pair of
 * timing events, one L2 flush buffer. Buffers and prepared states live in handle
 * tables; a handle carries the worker's epoch, its table, a slot and a generation, so
 * a stale or forged handle is refused. After a sticky fault every call answers
 * KB_ERROR_FATAL and kbench replaces the process. */
#ifndef KB_CUDA_WORKER_H
#define KB_CUDA_WORKER_H

#include "kernels/cuda/cuda_driver.h"
#include "kernels/cuda/cuda_ipc.h"
#include "kernels/cuda/cuda_ops.h"

/* ---- the device (cuda_device.c) -------------------------------------------------- */
int kbw_probe(const kbcu_probe_req *req, kbcu_probe_rep *rep, char *msg);
/* KB_OK when probed and healthy; KB_ERROR before a successful probe; FATAL once lost. */
int kbw_ready(char *msg);
int kbw_alloc(uint64_t bytes, uint64_t *handle, char *msg);
int kbw_free(uint64_t handle, char *msg);
/* The device address of a view, after checking that it lies inside its allocation. */
int kbw_view(kb_view v, CUdeviceptr *p, char *msg);
/* The staging buffer for uploads and downloads (pinned where possible). */
void *kbw_staging(size_t *bytes);
int kbw_copy_in(CUdeviceptr dst, const void *host, size_t n, char *msg);
int kbw_copy_out(void *host, CUdeviceptr src, size_t n, char *msg);
int kbw_copy_device(CUdeviceptr dst, CUdeviceptr src, size_t n, char *msg);
int kbw_prepare(int front, const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out,
                uint64_t *state, char *msg);
int kbw_release(uint64_t state, char *msg);
int kbw_enqueue(const uint64_t *states, int n, char *msg);
int kbw_wait(char *msg);
int kbw_record(const uint64_t *states, int n, uint64_t *seq, char *msg);
int kbw_run_timed(const uint64_t *states, int n, int flush, double *seconds, char *msg);
int kbw_lt_variants(const kbcu_variants_req *r, kb_variant *out, int max, char *msg);

/* ---- what cuda_device.c offers cublaslt_device.c ------------------------------------- */
const kbcu_driver *kbw_driver(void);
CUstream kbw_stream(void);
/* A failed driver call into msg: "what: NAME: text"; a sticky error loses the context
 * (FATAL from now on). */
int kbw_cu_fail(char *msg, CUresult r, const char *what);
/* After a library call failed: KB_ERROR_FATAL (msg says so) if the context is lost
 * underneath, else KB_OK. */
int kbw_lost_underneath(char *msg, const char *what);

/* A plan turned into launches: modules loaded, functions found, arguments bound. */
typedef struct kbw_prog kbw_prog;
/* tensors[i]: the device address of tensor i (plan's KBCU_ARG_TENSOR). Allocates the
 * plan's workspace. */
int kbw_prog_build(const kbcu_plan *p, const CUdeviceptr *tensors, int ntensors, kbw_prog **out, char *msg);
int kbw_prog_enqueue(const kbw_prog *pr, char *msg);
CUdeviceptr kbw_prog_workspace(const kbw_prog *pr);
void kbw_prog_free(kbw_prog *pr);

/* A prepared state's own operations. */
typedef struct {
    int (*enqueue)(void *impl, char *msg);
    void (*destroy)(void *impl);
} kbw_state_ops;

/* ---- cuBLASLt (cublaslt_device.c) ------------------------------------------------------- */
/* After the context exists: KB_OK, or KB_NOT_SUPPORTED with why cuBLASLt cannot run. */
int kbw_lt_init(int sm, char *reason);
int kbw_lt_prepare(const kb_case *c, const kb_variant *v, const kb_arg *args, const CUdeviceptr *ptrs, int n_in,
                   int n_out, void **impl, const kbw_state_ops **ops, char *msg);

#endif
