/* cuda_worker.c - kbcuda_worker, the process that owns the GPU for kbench's cuda and
 * cublaslt backends (cuda_ipc.h says why). Started by kbench with its end of a socket
 * pair on file descriptor 3 (or the number given as the first argument); serves
 * requests until kbench closes the socket or exits. Prints nothing.
 *
 * The request loop checks everything a request carries before acting on it: the
 * magic, the payload length each request must have, counts, enum values, sizes,
 * strings (terminated here), handles and views (cuda_device.c). A malformed request
 * gets an error reply; only a stream that cannot be followed any more (a wrong magic,
 * an impossible length) ends the worker, after saying why. */
#include "kernels/cuda/cuda_worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char small_buf[1 << 16];

static int reply(int fd, kbcu_rep *rep, const void *payload, size_t len) {
    rep->len = len;
    rep->msg[KB_MSG - 1] = 0;
    if (kbcu_send_all(fd, rep, sizeof *rep)) return -1;
    return len ? kbcu_send_all(fd, payload, len) : 0;
}

/* A buffer for moving payloads: the pinned staging buffer once the device is up. */
static void *io_buffer(size_t *bytes) {
    void *b = kbw_staging(bytes);
    if (b && *bytes) return b;
    *bytes = sizeof small_buf;
    return small_buf;
}

/* Read and drop n bytes (a payload we will not use), keeping the stream in step. */
static int drain(int fd, uint64_t n) {
    size_t cap;
    void *buf = io_buffer(&cap);
    while (n > 0) {
        const size_t k = n < cap ? (size_t)n : cap;
        if (kbcu_recv_all(fd, buf, k, -1)) return -1;
        n -= k;
    }
    return 0;
}

/* Answer a malformed request: drop its payload, reply KB_ERROR with the reason. */
static int refuse(int fd, const kbcu_req *req, const char *fmt, const char *what) {
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    char text[KB_MSG];
    snprintf(text, sizeof text, fmt, what);
    rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: request %u: %s", req->op, text);
    if (drain(fd, req->len)) return -1;
    return reply(fd, &rep, NULL, 0);
}

#define TERMINATE(field) ((field)[sizeof(field) - 1] = 0)

/* Sizes a case may carry (every real one is far below). */
#define MAX_SIZE ((int64_t)1 << 31)

static int check_case(kb_case *c, char *msg) {
    TERMINATE(c->label);
    if ((unsigned)c->op >= KB_OP_COUNT) return kb_fail(msg, KB_ERROR, "unknown op %d", (int)c->op);
    if ((unsigned)c->a_type >= KB_DTYPE_COUNT || (unsigned)c->b_type >= KB_DTYPE_COUNT ||
        (unsigned)c->out_type >= KB_DTYPE_COUNT)
        return kb_fail(msg, KB_ERROR, "unknown element type");
    if ((unsigned)c->scale_mode >= KB_SCALE_COUNT)
        return kb_fail(msg, KB_ERROR, "unknown scale mode %d", (int)c->scale_mode);
    const int64_t sizes[] = {c->m, c->n, c->k, c->heads, c->kv_heads, c->head_dim, c->kv_len, c->max_pos};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i] < 0 || sizes[i] > MAX_SIZE)
            return kb_fail(msg, KB_ERROR, "size %lld is out of range", (long long)sizes[i]);
    return KB_OK;
}

static void terminate_variant(kb_variant *v) {
    TERMINATE(v->name);
    TERMINATE(v->tile);
    TERMINATE(v->reduction);
    TERMINATE(v->cluster);
    TERMINATE(v->detail);
}

static int handle_upload(int fd, const kbcu_req *req) {
    if (req->len != req->c) return refuse(fd, req, "%s", "the payload is not the view's size");
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    CUdeviceptr dst = 0;
    rep.rc = kbw_view((kb_view){req->a, req->b, req->c}, &dst, rep.msg);
    size_t cap;
    void *buf = io_buffer(&cap);
    for (uint64_t done = 0; done < req->len;) {
        const size_t k = req->len - done < cap ? (size_t)(req->len - done) : cap;
        if (kbcu_recv_all(fd, buf, k, -1)) return -1;
        if (rep.rc == KB_OK) rep.rc = kbw_copy_in(dst + done, buf, k, rep.msg);
        done += k;
    }
    return reply(fd, &rep, NULL, 0);
}

static int handle_download(int fd, const kbcu_req *req) {
    if (req->len != 0) return refuse(fd, req, "%s", "a download carries no payload");
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    CUdeviceptr src = 0;
    rep.rc = kbw_view((kb_view){req->a, req->b, req->c}, &src, rep.msg);
    if (rep.rc != KB_OK) return reply(fd, &rep, NULL, 0);
    /* the bytes follow the header; the status after them says whether they are good */
    rep.len = req->c;
    if (kbcu_send_all(fd, &rep, sizeof rep)) return -1;
    size_t cap;
    void *buf = io_buffer(&cap);
    kbcu_rep tail;
    memset(&tail, 0, sizeof tail);
    for (uint64_t done = 0; done < req->c;) {
        const size_t k = req->c - done < cap ? (size_t)(req->c - done) : cap;
        if (tail.rc == KB_OK) tail.rc = kbw_copy_out(buf, src + done, k, tail.msg);
        if (tail.rc != KB_OK) memset(buf, 0, k);
        if (kbcu_send_all(fd, buf, k)) return -1;
        done += k;
    }
    return reply(fd, &tail, NULL, 0);
}

static int handle_copy(int fd, const kbcu_req *req) {
    kb_view src;
    if (req->len != sizeof src) return refuse(fd, req, "%s", "the payload is not a kb_view");
    if (kbcu_recv_all(fd, &src, sizeof src, -1)) return -1;
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    CUdeviceptr dp = 0, sp = 0;
    if (src.bytes != req->c)
        rep.rc = kb_fail(rep.msg, KB_ERROR, "copy: %llu bytes into a view of %llu", (unsigned long long)src.bytes,
                         (unsigned long long)req->c);
    if (rep.rc == KB_OK) rep.rc = kbw_view((kb_view){req->a, req->b, req->c}, &dp, rep.msg);
    if (rep.rc == KB_OK) rep.rc = kbw_view(src, &sp, rep.msg);
    if (rep.rc == KB_OK && src.bytes) rep.rc = kbw_copy_device(dp, sp, (size_t)src.bytes, rep.msg);
    return reply(fd, &rep, NULL, 0);
}

static int handle_variants(int fd, const kbcu_req *req) {
    kbcu_variants_req r;
    if (req->len != sizeof r) return refuse(fd, req, "%s", "the payload is not a kbcu_variants_req");
    if (kbcu_recv_all(fd, &r, sizeof r, -1)) return -1;
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    TERMINATE(r.algo);
    if ((rep.rc = check_case(&r.c, rep.msg)) != KB_OK) return reply(fd, &rep, NULL, 0);
    const int max = r.max < 0 ? 0 : r.max > KBCU_MAX_VARIANTS ? KBCU_MAX_VARIANTS : r.max;
    kb_variant *out = malloc((size_t)(max > 0 ? max : 1) * sizeof *out);
    if (!out) {
        rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: out of host memory");
        return reply(fd, &rep, NULL, 0);
    }
    const int n = kbw_lt_variants(&r, out, max, rep.msg);
    if (n < 0) {
        rep.rc = -n;
    } else {
        rep.rc = KB_OK;
        rep.a = (uint64_t)n;
    }
    const int bad = reply(fd, &rep, out, n > 0 ? (size_t)n * sizeof *out : 0);
    free(out);
    return bad;
}

static int handle_prepare(int fd, const kbcu_req *req) {
    static unsigned char buf[sizeof(kbcu_prepare_req) + KB_MAX_ARGS * sizeof(kb_arg)];
    if (req->len < sizeof(kbcu_prepare_req) || req->len > sizeof buf)
        return refuse(fd, req, "%s", "the payload is not a kbcu_prepare_req and its arguments");
    if (kbcu_recv_all(fd, buf, (size_t)req->len, -1)) return -1;
    kbcu_prepare_req pr;
    memcpy(&pr, buf, sizeof pr);
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    const int64_t n = (int64_t)pr.n_in + pr.n_out;
    if (pr.n_in < 0 || pr.n_out < 0 || n < 1 || n > KB_MAX_ARGS ||
        req->len != sizeof pr + (uint64_t)n * sizeof(kb_arg)) {
        rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: prepare with %d inputs and %d outputs in %llu bytes", pr.n_in,
                         pr.n_out, (unsigned long long)req->len);
        return reply(fd, &rep, NULL, 0);
    }
    kb_arg args[KB_MAX_ARGS];
    memcpy(args, buf + sizeof pr, (size_t)n * sizeof(kb_arg));
    terminate_variant(&pr.v);
    if ((rep.rc = check_case(&pr.c, rep.msg)) != KB_OK) return reply(fd, &rep, NULL, 0);
    for (int i = 0; i < n; i++)
        if ((unsigned)args[i].type >= KB_DTYPE_COUNT || args[i].count < 0) {
            rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: tensor %d has type %d and %lld elements", i, (int)args[i].type,
                             (long long)args[i].count);
            return reply(fd, &rep, NULL, 0);
        }
    rep.rc = kbw_prepare(pr.front, &pr.c, &pr.v, args, pr.n_in, pr.n_out, &rep.a, rep.msg);
    return reply(fd, &rep, NULL, 0);
}

/* ENQUEUE, RECORD, RUN_TIMED: a payload of state handles. */
static int handle_sequence(int fd, const kbcu_req *req) {
    static uint64_t states[KBCU_MAX_SEQ];
    if (req->len % sizeof(uint64_t) || req->len / sizeof(uint64_t) > KBCU_MAX_SEQ)
        return refuse(fd, req, "%s", "the payload is not a list of at most 4096 state handles");
    const int n = (int)(req->len / sizeof(uint64_t));
    if (n && kbcu_recv_all(fd, states, (size_t)req->len, -1)) return -1;
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    if (req->op == KBCU_REQ_ENQUEUE) rep.rc = kbw_enqueue(states, n, rep.msg);
    else if (req->op == KBCU_REQ_RECORD) rep.rc = kbw_record(states, n, &rep.a, rep.msg);
    else rep.rc = kbw_run_timed(states, n, req->a != 0, &rep.seconds, rep.msg);
    return reply(fd, &rep, NULL, 0);
}

static int handle(int fd, const kbcu_req *req) {
    kbcu_rep rep;
    memset(&rep, 0, sizeof rep);
    switch (req->op) {
    case KBCU_REQ_PROBE: {
        kbcu_probe_req pr;
        kbcu_probe_rep pp;
        if (req->len != sizeof pr) return refuse(fd, req, "%s", "the payload is not a kbcu_probe_req");
        if (kbcu_recv_all(fd, &pr, sizeof pr, -1)) return -1;
        TERMINATE(pr.cache_dir);
        TERMINATE(pr.libcuda);
        rep.rc = kbw_probe(&pr, &pp, rep.msg);
        return reply(fd, &rep, &pp, sizeof pp);
    }
    case KBCU_REQ_UPLOAD: return handle_upload(fd, req);
    case KBCU_REQ_DOWNLOAD: return handle_download(fd, req);
    case KBCU_REQ_COPY: return handle_copy(fd, req);
    case KBCU_REQ_VARIANTS: return handle_variants(fd, req);
    case KBCU_REQ_PREPARE: return handle_prepare(fd, req);
    case KBCU_REQ_ENQUEUE:
    case KBCU_REQ_RECORD:
    case KBCU_REQ_RUN_TIMED: return handle_sequence(fd, req);
    case KBCU_REQ_ALLOC:
    case KBCU_REQ_FREE:
    case KBCU_REQ_RELEASE:
    case KBCU_REQ_WAIT:
        if (req->len != 0) return refuse(fd, req, "%s", "this request carries no payload");
        if (req->op == KBCU_REQ_ALLOC) rep.rc = kbw_alloc(req->a, &rep.a, rep.msg);
        else if (req->op == KBCU_REQ_FREE) rep.rc = kbw_free(req->a, rep.msg);
        else if (req->op == KBCU_REQ_RELEASE) rep.rc = kbw_release(req->a, rep.msg);
        else rep.rc = kbw_wait(rep.msg);
        return reply(fd, &rep, NULL, 0);
    default: return refuse(fd, req, "%s", "unknown request");
    }
}

int kbcu_worker_serve(int fd) {
    for (;;) {
        kbcu_req req;
        if (kbcu_recv_all(fd, &req, sizeof req, -1)) return 0; /* the parent is gone */
        if (req.magic != KBCU_MAGIC || req.len > KBCU_MAX_PAYLOAD) {
            kbcu_rep rep;
            memset(&rep, 0, sizeof rep);
            rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: %s: the request stream cannot be followed, exiting",
                             req.magic != KBCU_MAGIC ? "bad magic" : "impossible payload length");
            reply(fd, &rep, NULL, 0);
            return 2;
        }
        if (handle(fd, &req)) return 1; /* the socket failed under us */
    }
}

int main(int argc, char **argv) {
    const int fd = argc > 1 ? atoi(argv[1]) : 3;
    /* Ctrl-C reaches the whole process group: kbench finishes its row and closes the
     * socket (then we exit); the worker must not vanish under it first. */
    signal(SIGINT, SIG_IGN);
    return kbcu_worker_serve(fd);
}
