/* pool.h - the thread pool the references (and the cpu backend) run on.
 *
 * kb_parallel_for(n, fn, arg) runs fn(i, arg) for i in [0, n) over the pool in
 * static contiguous chunks; the caller runs chunk 0. Which thread computes an index
 * changes with the thread count, how it is computed does not: code that computes
 * each output inside one fn(i) call gets the same bits for any thread count. A call
 * made from inside a running chunk runs serially on that thread (no deadlock). */
#ifndef KB_POOL_H
#define KB_POOL_H

#include <stdint.h>

void kb_set_ref_threads(int threads); /* 0 = number of online cores */
int kb_ref_threads(void);
void kb_parallel_for(int64_t n, void (*fn)(int64_t i, void *arg), void *arg);
/* While on, kb_parallel_for runs no index not yet started and returns: for work whose
 * result nobody will read (the harness dropping cases made ahead when a run ends early). */
void kb_parallel_cancel(int on);

#endif
