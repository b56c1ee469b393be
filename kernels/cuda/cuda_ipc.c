/* cuda_ipc.c - socket I/O and starting the worker (cuda_ipc.h). */
#include "kernels/cuda/cuda_ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

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

int kbcu_spawn_worker(const char *path, pid_t *pid, int *fd, char *msg) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "socketpair: %s", strerror(errno));
    fcntl(sv[0], F_SETFD, FD_CLOEXEC); /* later children must not hold our end */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, sv[0]);
    if (sv[1] != 3) {
        posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
        posix_spawn_file_actions_addclose(&fa, sv[1]);
    }
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0); /* a backend prints nothing */
    char arg0[2048], arg1[] = "3";
    snprintf(arg0, sizeof arg0, "%s", path);
    char *argv[] = {arg0, arg1, NULL};
    pid_t p;
    int err = posix_spawn(&p, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (err) {
        close(sv[0]);
        return kb_fail(msg, KB_NOT_SUPPORTED, "starting %s: %s", path, strerror(err));
    }
    *pid = p;
    *fd = sv[0];
    return KB_OK;
}
