/* cuda_worker.c - kbcuda_worker, the process that owns the GPU for kbench's cuda
 * backend (see cuda_ipc.h for why). Started by the backend with its end of a socket
 * pair on file descriptor 3 (or the number given as the first argument); serves
 * requests until kbench closes the socket or exits. Prints nothing. */
#include "kernels/cuda/cuda_ipc.h"

#include <stdlib.h>

int main(int argc, char **argv) {
    int fd = argc > 1 ? atoi(argv[1]) : 3;
    return kbcu_worker_serve(fd);
}
