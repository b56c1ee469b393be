/* backend_cuda.c - kbench's two CUDA backends, `cuda` (our kernels, kernels/cuda/<op>.cu,
 * compiled by NVRTC) and `cublaslt` (FP8 GEMM through cuBLASLt): two fronts of one
 * device. Both are proxies to the same worker process, kbcuda_worker (cuda_ipc.h,
 * cuda_worker.h), which holds the one CUDA context, stream, timer, L2 flush and
 * measured ceiling; they return the same kb_device_info (key "cuda:0"), so a buffer,
 * a state or a sequence of states from either front works with the other (a cuBLASLt
 * GEMM reads our quantization's output in place).
 *
 * kbench never initialises CUDA itself: a kernel fault kills only the worker's CUDA
 * state, and reset() (either front's) starts a new worker; the cases after it run as
 * if nothing happened. Nothing here needs a device: the cuda front's variant list
 * comes from the op tables (cuda_ops.h), the rest travels over the socket. */
#include "bench/op.h"
#include "kernels/cuda/cuda_ipc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const kb_backend kb_backend_cuda, kb_backend_cublaslt;

/* ---- the worker ------------------------------------------------------------------------ */
static struct {
    int probed, probe_rc;
    char reason[KB_MSG];
    int lt_rc;
    char lt_reason[KB_MSG];
    kbcu_probe_req opts; /* the options of the first probe; every worker gets them */
    pid_t pid;
    int fd; /* our end of the socket pair, -1 without a worker */
    uint32_t epoch;
    char lost[KB_MSG];
    kb_device_info info;
    kbcu_devinfo dev;
} W = {.fd = -1};

static int timeout_ms(void) {
    /* per reply; a probe compiles and measures, a kernel may be slow: be generous */
    const char *e = getenv("KB_CUDA_TIMEOUT_S");
    const int s = e && atoi(e) > 0 && atoi(e) < 1000000 ? atoi(e) : 300;
    return s * 1000;
}

static void kill_worker(void) {
    if (W.fd >= 0) close(W.fd);
    W.fd = -1;
    if (W.pid > 0) {
        kill(W.pid, SIGKILL);
        while (waitpid(W.pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    W.pid = 0;
}

/* Why the worker stopped answering, for the row; the worker is gone after this. */
static void describe_loss(const char *what) {
    int status = 0;
    char why[96] = "did not answer in time (killed)";
    /* a closed socket may come a moment before the exit status: give it half a second */
    for (int i = 0; W.pid > 0 && i < 50; i++) {
        if (waitpid(W.pid, &status, WNOHANG) == W.pid) {
            if (WIFSIGNALED(status)) snprintf(why, sizeof why, "died of signal %d", WTERMSIG(status));
            else snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
            W.pid = 0;
            break;
        }
        const struct timespec ten_ms = {0, 10000000};
        nanosleep(&ten_ms, NULL);
    }
    snprintf(W.lost, sizeof W.lost, "cuda worker %s during %s", why, what);
    kill_worker();
}

/* The worker: $KB_CUDA_WORKER, else next to the running executable, else where the
 * build put it. */
static int find_worker(char *out, size_t cap, char *msg) {
    const char *e = getenv("KB_CUDA_WORKER");
    if (e && *e) {
        snprintf(out, cap, "%s", e);
        if (access(out, X_OK) == 0) return KB_OK;
        return kb_fail(msg, KB_NOT_SUPPORTED, "KB_CUDA_WORKER=%s is not an executable", e);
    }
    char exe[2048];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char beside[2100] = "";
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(beside, sizeof beside, "%s/kbcuda_worker", exe);
        if (access(beside, X_OK) == 0) {
            snprintf(out, cap, "%s", beside);
            return KB_OK;
        }
    }
#ifdef KB_CUDA_WORKER_BUILD
    if (access(KB_CUDA_WORKER_BUILD, X_OK) == 0) {
        snprintf(out, cap, "%s", KB_CUDA_WORKER_BUILD);
        return KB_OK;
    }
#endif
    return kb_fail(msg, KB_NOT_SUPPORTED,
                   "cuda worker program kbcuda_worker not found (looked at %s; set KB_CUDA_WORKER)",
                   beside[0] ? beside : "/proc/self/exe's directory");
}

/* One request: header + payload out, reply header + up to out_cap payload bytes in
 * (*out_len gets how many). An unusable worker answers KB_ERROR_FATAL: the harness
 * then calls reset(). */
static int call(const char *what, kbcu_req *req, const void *payload, uint64_t payload_len, kbcu_rep *rep, void *out,
                uint64_t out_cap, uint64_t *out_len, char *msg) {
    if (W.fd < 0)
        return kb_fail(msg, KB_ERROR_FATAL, "%s",
                       W.lost[0] ? W.lost : "cuda worker not running (probe or reset first)");
    req->magic = KBCU_MAGIC;
    req->len = payload_len;
    const int t = timeout_ms();
    if (kbcu_send_all(W.fd, req, sizeof *req) || (payload_len && kbcu_send_all(W.fd, payload, (size_t)payload_len)) ||
        kbcu_recv_all(W.fd, rep, sizeof *rep, t) || rep->len > out_cap ||
        (rep->len && kbcu_recv_all(W.fd, out, (size_t)rep->len, t))) {
        describe_loss(what);
        return kb_fail(msg, KB_ERROR_FATAL, "%s", W.lost);
    }
    if (out_len) *out_len = rep->len;
    rep->msg[KB_MSG - 1] = 0;
    if (rep->rc != KB_OK) snprintf(msg, KB_MSG, "%s", rep->msg);
    if (rep->rc < KB_OK || rep->rc > KB_ERROR_FATAL)
        return kb_fail(msg, KB_ERROR, "cuda worker answered status %d", rep->rc);
    return rep->rc;
}

static int simple(const char *what, uint32_t op, uint64_t a, uint64_t *ra, char *msg) {
    kbcu_req req = {0, op, a, 0, 0, 0};
    kbcu_rep rep;
    const int rc = call(what, &req, NULL, 0, &rep, NULL, 0, NULL, msg);
    if (ra) *ra = rc == KB_OK ? rep.a : 0;
    return rc;
}

static int start_worker(int measure, char *msg) {
    char path[2200];
    int rc = find_worker(path, sizeof path, msg);
    if (rc != KB_OK) return rc;
    if ((rc = kbcu_spawn_worker(path, &W.pid, &W.fd, msg)) != KB_OK) return rc;
    W.lost[0] = 0;
    W.opts.epoch = ++W.epoch;
    W.opts.measure = measure;
    kbcu_req req = {0, KBCU_REQ_PROBE, 0, 0, 0, 0};
    kbcu_rep rep;
    kbcu_probe_rep pr;
    uint64_t got = 0;
    rc = call("probe", &req, &W.opts, sizeof W.opts, &rep, &pr, sizeof pr, &got, msg);
    if (rc == KB_OK && got != sizeof pr) rc = kb_fail(msg, KB_ERROR, "cuda worker: a short probe reply");
    if (rc != KB_OK) {
        kill_worker();
        return rc == KB_ERROR_FATAL || rc == KB_ERROR ? KB_NOT_SUPPORTED : rc;
    }
    pr.lt_reason[KB_MSG - 1] = 0;
    if (measure) W.info = pr.info; /* a reset keeps the first worker's measurements */
    W.dev = pr.dev;
    W.lt_rc = pr.lt_rc;
    snprintf(W.lt_reason, sizeof W.lt_reason, "%s", pr.lt_reason);
    return KB_OK;
}

static int shared_probe(const kb_options *opt, char *msg) {
    if (!W.probed) {
        W.probed = 1;
        memset(&W.opts, 0, sizeof W.opts);
        const char *lib = getenv("KB_CUDA_LIBCUDA"); /* tests: another libcuda (the toolkit's stub) */
        if (lib && *lib) {
            W.opts.has_libcuda = 1;
            snprintf(W.opts.libcuda, sizeof W.opts.libcuda, "%s", lib);
        }
        if (opt && opt->cache_dir) {
            W.opts.has_cache_dir = 1;
            snprintf(W.opts.cache_dir, sizeof W.opts.cache_dir, "%s", opt->cache_dir);
        }
        W.opts.test_variants = opt && opt->test_variants;
        W.probe_rc = start_worker(1, W.reason);
        if (W.probe_rc == KB_OK) {
            /* the driver line names cuBLASLt's version, or why it cannot run */
            const size_t len = strlen(W.info.driver);
            snprintf(W.info.driver + len, sizeof W.info.driver - len, "; %s", W.lt_reason);
        }
    }
    if (W.probe_rc != KB_OK) return kb_fail(msg, W.probe_rc, "%s", W.reason);
    return KB_OK;
}

/* ---- what both fronts share ------------------------------------------------------------- */
static const kb_device_info *cu_device(void) { return &W.info; }

static double cu_flop_peak(const kb_case *c) {
    /* Dense FP8 tensor rate of the H100 SXM / H200 datasheets, 1979 TFLOP/s at 132 SMs,
     * scaled by the SM count for other sm_90 parts (an upper ceiling: clocks differ).
     * Unknown elsewhere: 0. */
    if (c && c->op == KB_OP_gemm_fp8 && W.dev.sm == 90 && W.dev.sm_count > 0) return 1979e12 * W.dev.sm_count / 132.0;
    return 0;
}

static int cu_alloc(uint64_t bytes, kb_buf *buf, char *msg) {
    uint64_t h = 0;
    const int rc = simple("alloc", KBCU_REQ_ALLOC, bytes, &h, msg);
    *buf = rc == KB_OK ? h : 0;
    return rc;
}

static void cu_free(kb_buf buf) {
    char msg[KB_MSG];
    if (!buf || W.fd < 0) return; /* after a reset the old worker took its memory along */
    simple("free", KBCU_REQ_FREE, buf, NULL, msg);
}

static int cu_upload(kb_view dst, const void *host, char *msg) {
    kbcu_req req = {0, KBCU_REQ_UPLOAD, dst.buf, dst.offset, dst.bytes, 0};
    kbcu_rep rep;
    return call("upload", &req, host, dst.bytes, &rep, NULL, 0, NULL, msg);
}

static int cu_copy(kb_view dst, kb_view src, char *msg) {
    kbcu_req req = {0, KBCU_REQ_COPY, dst.buf, dst.offset, dst.bytes, 0};
    kbcu_rep rep;
    return call("copy", &req, &src, sizeof src, &rep, NULL, 0, NULL, msg);
}

static int cu_download(void *host, kb_view src, char *msg) {
    if (W.fd < 0)
        return kb_fail(msg, KB_ERROR_FATAL, "%s",
                       W.lost[0] ? W.lost : "cuda worker not running (probe or reset first)");
    kbcu_req req = {KBCU_MAGIC, KBCU_REQ_DOWNLOAD, src.buf, src.offset, src.bytes, 0};
    kbcu_rep rep, tail;
    const int t = timeout_ms();
    /* header, then (when it says KB_OK) the bytes and a second header with the status */
    if (kbcu_send_all(W.fd, &req, sizeof req) || kbcu_recv_all(W.fd, &rep, sizeof rep, t)) goto lost;
    rep.msg[KB_MSG - 1] = 0;
    if (rep.rc != KB_OK) {
        if (rep.len) goto lost;
        return kb_fail(msg, rep.rc >= KB_NOT_SUPPORTED && rep.rc <= KB_ERROR_FATAL ? rep.rc : KB_ERROR, "%s", rep.msg);
    }
    if (rep.len != src.bytes || (src.bytes && kbcu_recv_all(W.fd, host, (size_t)src.bytes, t)) ||
        kbcu_recv_all(W.fd, &tail, sizeof tail, t) || tail.len)
        goto lost;
    tail.msg[KB_MSG - 1] = 0;
    if (tail.rc != KB_OK)
        return kb_fail(msg, tail.rc >= KB_NOT_SUPPORTED && tail.rc <= KB_ERROR_FATAL ? tail.rc : KB_ERROR, "%s",
                       tail.msg);
    return KB_OK;
lost:
    describe_loss("download");
    return kb_fail(msg, KB_ERROR_FATAL, "%s", W.lost);
}

/* The arguments against the op's own description of its tensors (bench/ops/<op>.c):
 * a wrong type, count or short view is the caller's mistake, reported here rather
 * than as a kernel reading out of bounds. */
static int check_args(const kb_case *c, const kb_arg *args, int n_in, int n_out, char *msg) {
    if ((unsigned)c->op >= KB_OP_COUNT) return kb_fail(msg, KB_ERROR, "unknown op %d", (int)c->op);
    const kb_op *op = kb_ops[c->op];
    if (n_in != op->n_in || n_out != op->n_out)
        return kb_fail(msg, KB_ERROR, "%s takes %d inputs and %d outputs, not %d and %d", op->name, op->n_in, op->n_out,
                       n_in, n_out);
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    int rc = kb_case_tensors(c, t, msg);
    if (rc != KB_OK) return rc;
    for (int i = 0; i < n_in + n_out; i++) {
        if (args[i].type != t[i].type || args[i].count != t[i].count)
            return kb_fail(msg, KB_ERROR, "%s: tensor %d (%s) is %lld %s, the argument says %lld %s", op->name, i,
                           t[i].name, (long long)t[i].count, kb_dtype_name(t[i].type), (long long)args[i].count,
                           kb_dtype_name(args[i].type));
        if (args[i].view.bytes < t[i].bytes)
            return kb_fail(msg, KB_ERROR, "%s: tensor %d (%s) needs %llu bytes, its view has %llu", op->name, i,
                           t[i].name, (unsigned long long)t[i].bytes, (unsigned long long)args[i].view.bytes);
    }
    return KB_OK;
}

static int prepare_front(int front, const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out,
                         void **state, char *msg) {
    *state = NULL;
    int rc = check_args(c, args, n_in, n_out, msg);
    if (rc != KB_OK) return rc;
    unsigned char buf[sizeof(kbcu_prepare_req) + KB_MAX_ARGS * sizeof(kb_arg)];
    kbcu_prepare_req pr;
    memset(&pr, 0, sizeof pr);
    pr.front = front;
    pr.n_in = n_in;
    pr.n_out = n_out;
    pr.c = *c;
    pr.v = *v;
    const int n = n_in + n_out;
    if (n > KB_MAX_ARGS) return kb_fail(msg, KB_ERROR, "%d tensors (at most %d)", n, KB_MAX_ARGS);
    memcpy(buf, &pr, sizeof pr);
    memcpy(buf + sizeof pr, args, (size_t)n * sizeof *args);
    kbcu_req req = {0, KBCU_REQ_PREPARE, 0, 0, 0, 0};
    kbcu_rep rep;
    rc = call("prepare", &req, buf, sizeof pr + (size_t)n * sizeof *args, &rep, NULL, 0, NULL, msg);
    if (rc == KB_OK) *state = (void *)(uintptr_t)rep.a;
    return rc;
}

static void cu_release(void *state) {
    char msg[KB_MSG];
    if (!state || W.fd < 0) return;
    simple("release", KBCU_REQ_RELEASE, (uint64_t)(uintptr_t)state, NULL, msg);
}

/* ENQUEUE, RECORD, RUN_TIMED: one round trip for the whole sequence. */
static int sequence(const char *what, uint32_t op, void *const *states, int n, uint64_t a, kbcu_rep *rep, char *msg) {
    if (n < 0 || n > KBCU_MAX_SEQ)
        return kb_fail(msg, KB_ERROR, "%d states in one sequence (at most %d)", n, KBCU_MAX_SEQ);
    uint64_t h[KBCU_MAX_SEQ];
    for (int i = 0; i < n; i++) h[i] = (uint64_t)(uintptr_t)states[i];
    kbcu_req req = {0, op, a, 0, 0, 0};
    return call(what, &req, h, (uint64_t)n * sizeof h[0], rep, NULL, 0, NULL, msg);
}

static int cu_enqueue(void *const *states, int n, char *msg) {
    kbcu_rep rep;
    return sequence("enqueue", KBCU_REQ_ENQUEUE, states, n, 0, &rep, msg);
}

static int cu_wait(char *msg) { return simple("wait", KBCU_REQ_WAIT, 0, NULL, msg); }

static int cu_record(void *const *states, int n, void **seq, char *msg) {
    kbcu_rep rep;
    const int rc = sequence("record", KBCU_REQ_RECORD, states, n, 0, &rep, msg);
    *seq = rc == KB_OK ? (void *)(uintptr_t)rep.a : NULL;
    return rc;
}

static int cu_run_timed(void *const *states, int n, int flush, double *seconds, char *msg) {
    kbcu_rep rep;
    const int rc = sequence("run_timed", KBCU_REQ_RUN_TIMED, states, n, flush != 0, &rep, msg);
    *seconds = rc == KB_OK ? rep.seconds : 0;
    return rc;
}

static int cu_reset(char *msg) {
    if (!W.probed || W.probe_rc != KB_OK) return kb_fail(msg, KB_ERROR, "cuda backend is not initialised");
    kill_worker(); /* its context, memory and modules go with it */
    char why[KB_MSG];
    if (start_worker(0, why) != KB_OK) {
        snprintf(W.lost, sizeof W.lost, "reset: %.240s", why);
        return kb_fail(msg, KB_ERROR_FATAL, "reset: %.240s", why);
    }
    return KB_OK;
}

/* ---- the cuda front: our kernels ----------------------------------------------------------- */
static int cuda_probe(const kb_options *opt, char *msg) { return shared_probe(opt, msg); }

/* One listed variant: the name as kbcu_resolve_variant reads it (a tuned name in the
 * worker too), its kernel and -D options after the point's values are written in; a
 * point the variant cannot take is listed with the reason its prepare will give. */
static void describe(kb_op_id op, const char *name, int allow_test, int64_t k, kb_variant *v) {
    kbcu_tuned t;
    const kbcu_variant *r;
    char why[KB_MSG];
    kb_variant_init(v, name);
    v->acc_unit_roundoff = 0; /* fp32, unless the op's entry says the kernel sums coarser */
    if (kbcu_resolve_variant(op, name, allow_test, &t, &r, why) != KB_OK) {
        snprintf(v->detail, sizeof v->detail, "not_supported: %.170s", why);
        char base[64];
        kb_tune_point p;
        const kbcu_variant *b =
            kb_tune_split(name, base, sizeof base, &p, NULL) ? NULL : kbcu_find_variant(op, base, allow_test);
        if (b) kbcu_variant_tunables(op, b, v->tunables, sizeof v->tunables);
        v->test_only = b && b->test_only;
        return;
    }
    snprintf(v->detail, sizeof v->detail, "%s %s", r->kernel, r->defines);
    kbcu_variant_tunables(op, r, v->tunables, sizeof v->tunables);
    const kbcu_op *entry = kbcu_op_of(op);
    if (entry && entry->acc_unit_roundoff) v->acc_unit_roundoff = entry->acc_unit_roundoff(r, k, W.dev.sm);
    v->test_only = r->test_only;
}

static int cuda_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    const kbcu_variant *list[256];
    const int allow_test = opt && opt->test_variants;
    const kb_tune *tune = opt ? opt->tune : NULL;
    if (!tune) {
        const int n = kbcu_list_variants(c->op, allow_test, list, max < 256 ? max : 256);
        for (int i = 0; i < n; i++) describe(c->op, list[i]->name, allow_test, c->k, &out[i]);
        return n;
    }
    /* --tune: every variant at every point, none as written */
    const int n = kbcu_list_variants(c->op, allow_test, list, 256);
    if ((long)n * tune->n > max)
        return -kb_fail(msg, KB_ERROR, "%d variants x %d --tune points: more than %d rows a case", n, tune->n, max);
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < tune->n; p++) {
            char name[sizeof out->name];
            if (kb_tune_name(list[i]->name, &tune->p[p], name, sizeof name))
                return -kb_fail(msg, KB_ERROR, "the tuned name of %s is longer than %zu characters", list[i]->name,
                                sizeof name - 1);
            describe(c->op, name, allow_test, c->k, &out[k++]);
        }
    return k;
}

static int cuda_prepare(const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out, void **state,
                        char *msg) {
    return prepare_front(KBCU_FRONT_CUDA, c, v, args, n_in, n_out, state, msg);
}

const kb_backend kb_backend_cuda = {
    .name = "cuda",
    .description = "our CUDA kernels (kernels/cuda/<op>.cu), NVRTC, driver API, in the worker process",
    .tunable = 1, /* the -D options of kernels/cuda/<op>.c's variants */
    .probe = cuda_probe,
    .device = cu_device,
    .flop_peak = cu_flop_peak,
    .variants = cuda_variants,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .prepare = cuda_prepare,
    .release = cu_release,
    .enqueue = cu_enqueue,
    .wait = cu_wait,
    .record = cu_record,
    .run_timed = cu_run_timed,
    .reset = cu_reset,
};

/* ---- the cublaslt front: cuBLASLt's FP8 GEMM --------------------------------------------------- */
static int lt_probe(const kb_options *opt, char *msg) {
    int rc = shared_probe(opt, msg);
    if (rc != KB_OK) return rc;
    if (W.lt_rc != KB_OK) return kb_fail(msg, KB_NOT_SUPPORTED, "%s", W.lt_reason);
    return KB_OK;
}

static int lt_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    if (c->op != KB_OP_gemm_fp8) return 0;
    if (max < 1) return 0;
    kbcu_variants_req r;
    memset(&r, 0, sizeof r);
    r.c = *c;
    snprintf(r.algo, sizeof r.algo, "%s", opt && opt->algo ? opt->algo : "");
    r.algo_cap = opt ? opt->algo_cap : 0;
    r.fast_accum = opt ? opt->fast_accum : -1;
    r.max = max < KBCU_MAX_VARIANTS ? max : KBCU_MAX_VARIANTS;
    kbcu_req req = {0, KBCU_REQ_VARIANTS, 0, 0, 0, 0};
    kbcu_rep rep;
    uint64_t got = 0;
    const int rc = call("variants", &req, &r, sizeof r, &rep, out, (uint64_t)r.max * sizeof *out, &got, msg);
    if (rc != KB_OK) return -rc;
    if (got != rep.a * sizeof *out || rep.a > (uint64_t)r.max)
        return -kb_fail(msg, KB_ERROR, "cuda worker: a bad variant list");
    for (uint64_t i = 0; i < rep.a; i++) {
        out[i].name[sizeof out[i].name - 1] = 0;
        out[i].detail[sizeof out[i].detail - 1] = 0;
    }
    if (rep.a == 0) snprintf(msg, KB_MSG, "%s", rep.msg);
    return (int)rep.a;
}

static int lt_prepare(const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out, void **state,
                      char *msg) {
    return prepare_front(KBCU_FRONT_CUBLASLT, c, v, args, n_in, n_out, state, msg);
}

const kb_backend kb_backend_cublaslt = {
    .name = "cublaslt",
    .description = "cuBLASLt FP8 GEMM (TN, fp32 compute; heuristic / exhaustive algorithms), in the cuda worker",
    .probe = lt_probe,
    .device = cu_device,
    .flop_peak = cu_flop_peak,
    .variants = lt_variants,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .prepare = lt_prepare,
    .release = cu_release,
    .enqueue = cu_enqueue,
    .wait = cu_wait,
    .record = cu_record,
    .run_timed = cu_run_timed,
    .reset = cu_reset,
};
