/* pool.c - the thread pool of pool.h. */
#include "ref/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* The caller runs chunk 0, workers 1..T-1 run the others. Chunk t covers the
 * contiguous range [n*t/T, n*(t+1)/T), so which thread computes an output does
 * change with T, but how it is computed does not. Calls are serialised by
 * pool_lock; a call made from inside a running chunk (nested) runs serially on
 * the calling thread instead of deadlocking. */

#define KB_MAX_THREADS 256

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int requested_threads = 0; /* 0 = online cores */
static _Thread_local int inside_parallel_for = 0;

typedef struct {
    int nthreads; /* caller + workers; 0 = not started */
    pthread_t workers[KB_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t generation;
    int pending;
    int shutdown;
    /* the job of the current generation */
    int64_t n;
    int nchunks;
    void (*fn)(int64_t, void *);
    void *arg;
} kb_pool;

static kb_pool pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static _Atomic int cancelled;

void kb_parallel_cancel(int on) { atomic_store(&cancelled, on); }

static void run_chunk(int64_t n, int nchunks, int chunk, void (*fn)(int64_t, void *), void *arg) {
    int64_t begin = n * chunk / nchunks, end = n * (chunk + 1) / nchunks;
    for (int64_t i = begin; i < end && !atomic_load_explicit(&cancelled, memory_order_relaxed); i++) fn(i, arg);
}

typedef struct {
    int index;
    uint64_t start_generation; /* the generation already done when it was started */
} worker_arg;

static worker_arg worker_args[KB_MAX_THREADS];

static void *pool_worker(void *p) {
    const int index = ((worker_arg *)p)->index;
    uint64_t seen = ((worker_arg *)p)->start_generation;
    inside_parallel_for = 1;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.generation == seen && !pool.shutdown) pthread_cond_wait(&pool.go, &pool.mu);
        if (pool.shutdown) break;
        seen = pool.generation;
        int64_t n = pool.n;
        int nchunks = pool.nchunks;
        void (*fn)(int64_t, void *) = pool.fn;
        void *arg = pool.arg;
        pthread_mutex_unlock(&pool.mu);
        if (index < nchunks) run_chunk(n, nchunks, index, fn, arg);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

static void pool_stop(void) {
    if (pool.nthreads <= 1) {
        pool.nthreads = 0;
        return;
    }
    pthread_mutex_lock(&pool.mu);
    pool.shutdown = 1;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    for (int w = 1; w < pool.nthreads; w++) pthread_join(pool.workers[w], NULL);
    pool.shutdown = 0;
    pool.nthreads = 0;
}

static void pool_start(int nthreads) {
    pool.nthreads = 1;
    pthread_mutex_lock(&pool.mu);
    for (int w = 1; w < nthreads; w++) {
        worker_args[w].index = w;
        worker_args[w].start_generation = pool.generation;
        if (pthread_create(&pool.workers[w], NULL, pool_worker, &worker_args[w]) != 0) break; /* run with fewer */
        pool.nthreads = w + 1;
    }
    pthread_mutex_unlock(&pool.mu);
}

void kb_set_ref_threads(int threads) {
    pthread_mutex_lock(&pool_lock);
    requested_threads = threads < 0 ? 0 : threads;
    pthread_mutex_unlock(&pool_lock);
}

static int resolve_threads(int requested) {
    long t = requested;
    if (t <= 0) t = sysconf(_SC_NPROCESSORS_ONLN);
    if (t < 1) t = 1;
    if (t > KB_MAX_THREADS) t = KB_MAX_THREADS;
    return (int)t;
}

int kb_ref_threads(void) {
    pthread_mutex_lock(&pool_lock);
    int t = resolve_threads(requested_threads);
    pthread_mutex_unlock(&pool_lock);
    return t;
}

void kb_parallel_for(int64_t n, void (*fn)(int64_t i, void *arg), void *arg) {
    if (n <= 0) return;
    if (inside_parallel_for) { /* nested: this thread already is one of the pool's */
        run_chunk(n, 1, 0, fn, arg);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    int want = resolve_threads(requested_threads);
    if (pool.nthreads != want) {
        pool_stop();
        pool_start(want);
    }
    int nchunks = pool.nthreads;
    if ((int64_t)nchunks > n) nchunks = (int)n;
    inside_parallel_for = 1;
    if (nchunks > 1) {
        pthread_mutex_lock(&pool.mu);
        pool.n = n;
        pool.nchunks = nchunks;
        pool.fn = fn;
        pool.arg = arg;
        pool.pending = pool.nthreads - 1;
        pool.generation++;
        pthread_cond_broadcast(&pool.go);
        pthread_mutex_unlock(&pool.mu);
        run_chunk(n, nchunks, 0, fn, arg);
        pthread_mutex_lock(&pool.mu);
        while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    } else {
        run_chunk(n, 1, 0, fn, arg);
    }
    inside_parallel_for = 0;
    pthread_mutex_unlock(&pool_lock);
}
