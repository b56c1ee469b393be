/* cuda_ipc.c - socket I/O and the worker's request loop (see cuda_ipc.h). */
#include "kernels/cuda/cuda_ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

int kbcu_send_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL); /* a dead peer: EPIPE, not SIGPIPE */
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int kbcu_recv_all(int fd, void *buf, size_t n, int timeout_ms) {
    char *p = buf;
    while (n > 0) {
        if (timeout_ms >= 0) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int r = poll(&pfd, 1, timeout_ms);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1; /* timeout or error */
        }
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1; /* error or the peer closed */
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ---- the worker ---------------------------------------------------------------------- */
static int reply(int fd, kbcu_rep *rep, const void *payload, size_t len) {
    rep->len = len;
    if (kbcu_send_all(fd, rep, sizeof *rep)) return -1;
    return len ? kbcu_send_all(fd, payload, len) : 0;
}

/* Read and drop n bytes (a payload we cannot use), keeping the stream in step. */
static int drain(int fd, uint64_t n) {
    char buf[65536];
    while (n > 0) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (kbcu_recv_all(fd, buf, k, -1)) return -1;
        n -= k;
    }
    return 0;
}

int kbcu_worker_serve(int fd) {
    for (;;) {
        kbcu_req req;
        if (kbcu_recv_all(fd, &req, sizeof req, -1)) return 0; /* the parent is gone */
        kbcu_rep rep;
        memset(&rep, 0, sizeof rep);
        void *out = NULL;
        size_t out_len = 0;
        switch (req.op) {
        case KBCU_REQ_PROBE: {
            kbcu_probe_req pr;
            kbcu_device_info info;
            if (req.len != sizeof pr) {
                drain(fd, req.len);
                return 1;
            }
            if (kbcu_recv_all(fd, &pr, sizeof pr, -1)) return 1;
            pr.cache_dir[sizeof pr.cache_dir - 1] = 0;
            pr.libcuda[sizeof pr.libcuda - 1] = 0;
            rep.rc = kbcu_dev_probe(pr.has_libcuda ? pr.libcuda : NULL, pr.has_cache_dir ? pr.cache_dir : NULL, &info,
                                    rep.msg);
            if (reply(fd, &rep, &info, sizeof info)) return 1;
            continue;
        }
        case KBCU_REQ_ALLOC: rep.rc = kbcu_dev_alloc((size_t)req.a, &rep.a, rep.msg); break;
        case KBCU_REQ_FREE: kbcu_dev_free(req.a); break;
        case KBCU_REQ_UPLOAD: {
            void *buf = malloc(req.len ? (size_t)req.len : 1);
            if (!buf) {
                if (drain(fd, req.len)) return 1;
                rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: out of host memory (%llu bytes)",
                                 (unsigned long long)req.len);
                break;
            }
            if (kbcu_recv_all(fd, buf, (size_t)req.len, -1)) return 1;
            rep.rc = kbcu_dev_upload(req.a, buf, (size_t)req.len, rep.msg);
            free(buf);
            break;
        }
        case KBCU_REQ_DOWNLOAD:
            out = malloc(req.b ? (size_t)req.b : 1);
            if (!out) {
                rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: out of host memory (%llu bytes)", (unsigned long long)req.b);
                break;
            }
            rep.rc = kbcu_dev_download(out, req.a, (size_t)req.b, rep.msg);
            if (rep.rc == KB_OK) out_len = (size_t)req.b;
            break;
        case KBCU_REQ_PREPARE: {
            kbcu_prepare_req pr;
            if (req.len != sizeof pr) {
                drain(fd, req.len);
                return 1;
            }
            if (kbcu_recv_all(fd, &pr, sizeof pr, -1)) return 1;
            pr.variant[sizeof pr.variant - 1] = 0;
            rep.rc = kbcu_dev_prepare(&pr.c, pr.variant, pr.dev_in, pr.dev_out, &rep.a, rep.msg);
            break;
        }
        case KBCU_REQ_RUN: {
            double s = 0;
            rep.rc = kbcu_dev_run(req.a, req.b ? &s : NULL, rep.msg);
            rep.seconds = s;
            break;
        }
        case KBCU_REQ_RELEASE: kbcu_dev_release(req.a); break;
        case KBCU_REQ_FLUSH: rep.rc = kbcu_dev_flush(rep.msg); break;
        default:
            if (drain(fd, req.len)) return 1;
            rep.rc = kb_fail(rep.msg, KB_ERROR, "worker: unknown request %u", req.op);
            break;
        }
        int bad = reply(fd, &rep, out, out_len);
        free(out);
        if (bad) return 1;
    }
}
