/* backend_cpu.c - the float32 cpu backend: host memory, the op dispatch, wall-clock
 * timing, the cache flush, and the test-only broken variants. The ops themselves live
 * in cpu_<op>.c (cpu_ops.h). Threads: the reference pool (kb_parallel_for). The
 * device is synchronous: enqueue runs the ops, wait has nothing to wait for. */
#include "kernels/cpu/cpu_ops.h"

#include "bench/hostmem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CPU_OP_ENTRY(name) [KB_OP_##name] = &cpu_op_##name,
static const cpu_op *const cpu_ops[KB_OP_COUNT] = {KB_OP_LIST(CPU_OP_ENTRY)};
#undef CPU_OP_ENTRY

static const cpu_test generic_tests[CPU_TEST_GENERIC_COUNT] = {
    [CPU_TEST_UNWRITTEN] = {"test_unwritten", "TEST ONLY: leaves the last output element unwritten"},
    [CPU_TEST_OFF1E3] = {"test_off1e3", "TEST ONLY: adds 1e-3 to the middle element (or steps its code)"},
    [CPU_TEST_NAN] = {"test_nan", "TEST ONLY: writes NaN into the middle element"},
    [CPU_TEST_NONDET] = {"test_nondet", "TEST ONLY: flips the middle element's last bit on every other run"},
};

/* ---- slices over the thread pool ---------------------------------------------------- */
typedef struct {
    const cpu_state *s;
    int64_t count;
    cpu_slice_fn fn;
    void *arg;
} slice_job;

static void run_slice(int64_t i, void *p) {
    const slice_job *j = p;
    const int64_t slices = j->s->slices;
    const int64_t begin = j->count * i / slices, end = j->count * (i + 1) / slices;
    if (begin < end) j->fn(j->s, (int)i, begin, end, j->arg);
}

void cpu_for_slices(const cpu_state *s, int64_t count, cpu_slice_fn fn, void *arg) {
    slice_job j = {s, count, fn, arg};
    kb_parallel_for(s->slices, run_slice, &j);
}

float *cpu_slice_mem(const cpu_state *s, int slice) { return s->slice_mem + (size_t)slice * s->slice_floats; }

float cpu_load(kb_dtype t, const void *p, int64_t i) {
    switch (t) {
    case KB_F16: return kb_f16_to_f32(((const uint16_t *)p)[i]);
    case KB_BF16: return kb_bf16_to_f32(((const uint16_t *)p)[i]);
    case KB_E4M3: return kb_e4m3_to_f32(((const uint8_t *)p)[i]);
    case KB_E5M2: return kb_e5m2_to_f32(((const uint8_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

void cpu_store(kb_dtype t, void *p, int64_t i, float v) {
    switch (t) {
    case KB_F16: ((uint16_t *)p)[i] = kb_f32_to_f16(v, 0); break;
    case KB_BF16: ((uint16_t *)p)[i] = kb_f32_to_bf16(v, 0); break;
    case KB_E4M3: ((uint8_t *)p)[i] = kb_f32_to_e4m3(v, 0); break;
    case KB_E5M2: ((uint8_t *)p)[i] = kb_f32_to_e5m2(v, 0); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* ---- the device ------------------------------------------------------------------------ */
static kb_device_info info;
static unsigned char *flush_buffer;
static size_t flush_bytes;
static unsigned char flush_value;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void read_cpu_name(char *out, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256], model[128] = "unknown CPU";
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            const char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t') colon++;
                snprintf(model, sizeof model, "%s", colon);
                model[strcspn(model, "\n")] = 0;
            }
            break;
        }
        fclose(f);
    }
    snprintf(out, n, "%s, %d threads", model, kb_ref_threads());
}

/* memcpy of 256 MiB (beyond any cache), best of 3 after a warm-up: bytes read + written per second */
static double measure_copy_bw(void) {
    const size_t bytes = (size_t)256 << 20;
    unsigned char *a = malloc(bytes), *b = malloc(bytes);
    double best = 0;
    if (a && b) {
        memset(a, 1, bytes);
        memset(b, 2, bytes);
        for (int i = 0; i < 4; i++) {
            const double t0 = now_seconds();
            memcpy(b, a, bytes);
            const double t = now_seconds() - t0;
            if (i > 0 && t > 0 && 2.0 * (double)bytes / t > best) best = 2.0 * (double)bytes / t;
        }
    }
    free(a);
    free(b);
    return best;
}

static int cpu_probe(const kb_options *opt, char *msg) {
    (void)opt;
    (void)msg;
    if (info.key[0]) return KB_OK;
    snprintf(info.key, sizeof info.key, "cpu");
    info.runs_on_host = 1;
    read_cpu_name(info.name, sizeof info.name);
#ifdef __VERSION__
    snprintf(info.driver, sizeof info.driver, "C11 float32, compiler %s", __VERSION__);
#else
    snprintf(info.driver, sizeof info.driver, "C11 float32");
#endif
    info.cache_bytes = kb_host_llc_bytes();
    info.bw = measure_copy_bw();
    snprintf(info.bw_source, sizeof info.bw_source, "memcpy of 256 MiB, one thread, best of 3");
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) info.mem_bytes = (uint64_t)pages * (uint64_t)page;
    if (avail > 0 && page > 0) info.mem_free = (uint64_t)avail * (uint64_t)page;
    return KB_OK;
}

static const kb_device_info *cpu_device(void) { return &info; }
static double cpu_flop_peak(const kb_case *c) {
    (void)c;
    return 0; /* not measured on this host */
}

/* ---- variants -------------------------------------------------------------------------- */
static const cpu_op *op_of(const kb_case *c) { return (unsigned)c->op < KB_OP_COUNT ? cpu_ops[c->op] : NULL; }

static int cpu_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    (void)msg;
    const cpu_op *op = op_of(c);
    if (!op || max < 1) return 0;
    int n = 0;
    kb_variant_init(&out[n], "f32");
    snprintf(out[n++].detail, sizeof out[0].detail, "%s", op->detail);
    if (!opt->test_variants) return n;
    for (int t = 1; t < CPU_TEST_GENERIC_COUNT && n < max; t++, n++) {
        kb_variant_init(&out[n], generic_tests[t].name);
        snprintf(out[n].detail, sizeof out[n].detail, "%s", generic_tests[t].detail);
        out[n].test_only = 1;
    }
    for (int t = 0; op->tests && op->tests[t].name && n < max; t++, n++) {
        kb_variant_init(&out[n], op->tests[t].name);
        snprintf(out[n].detail, sizeof out[n].detail, "%s", op->tests[t].detail);
        out[n].test_only = 1;
    }
    return n;
}

/* ---- memory: a buffer is host memory, its handle the pointer ----------------------------- */
static int cpu_alloc(uint64_t bytes, kb_buf *buf, char *msg) {
    const uint64_t rounded = bytes ? (bytes + 63) / 64 * 64 : 64; /* aligned_alloc wants whole alignments */
    void *p = rounded >= bytes && rounded <= SIZE_MAX ? aligned_alloc(64, (size_t)rounded) : NULL;
    if (!p) return kb_fail(msg, KB_ERROR, "out of host memory (%llu bytes)", (unsigned long long)bytes);
    *buf = (kb_buf)(uintptr_t)p;
    return KB_OK;
}

static void cpu_free(kb_buf buf) { free((void *)(uintptr_t)buf); }
static void *ptr(kb_view v) { return (char *)(uintptr_t)v.buf + v.offset; }

static int cpu_upload(kb_view dst, const void *host, char *msg) {
    (void)msg;
    memcpy(ptr(dst), host, dst.bytes);
    return KB_OK;
}

static int cpu_download(void *host, kb_view src, char *msg) {
    (void)msg;
    memcpy(host, ptr(src), src.bytes);
    return KB_OK;
}

/* ---- prepare / run ---------------------------------------------------------------------- */
static void cpu_release(void *state) {
    cpu_state *s = state;
    if (!s) return;
    free(s->shared);
    free(s->slice_mem);
    free(s);
}

static int find_test(const cpu_op *op, const char *name) {
    if (!strcmp(name, "f32")) return CPU_TEST_NONE;
    for (int t = 1; t < CPU_TEST_GENERIC_COUNT; t++)
        if (!strcmp(name, generic_tests[t].name)) return t;
    for (int t = 0; op->tests && op->tests[t].name; t++)
        if (!strcmp(name, op->tests[t].name)) return CPU_OP_TEST(t);
    return -1;
}

static int cpu_prepare(const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out, void **state,
                       char *msg) {
    *state = NULL;
    const cpu_op *op = op_of(c);
    if (!op) return kb_fail(msg, KB_NOT_SUPPORTED, "cpu: op %d is not implemented", (int)c->op);
    const int test = find_test(op, v->name);
    if (test < 0) return kb_fail(msg, KB_ERROR, "cpu: unknown variant '%s'", v->name);
    size_t shared_floats = 0, slice_floats = 0;
    int rc = op->check(c, &shared_floats, &slice_floats, msg);
    if (rc != KB_OK) return rc;

    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return kb_fail(msg, KB_ERROR, "cpu: out of host memory");
    s->c = *c;
    s->test = test;
    s->n_in = n_in;
    s->n_out = n_out;
    for (int i = 0; i < n_in; i++) s->in[i] = ptr(args[i].view);
    for (int o = 0; o < n_out; o++) {
        s->out[o] = ptr(args[n_in + o].view);
        s->out_type[o] = args[n_in + o].type;
        s->out_count[o] = args[n_in + o].count;
    }
    s->slices = kb_ref_threads();
    s->shared_floats = shared_floats;
    s->slice_floats = slice_floats;
    if (shared_floats) s->shared = malloc(shared_floats * sizeof(float));
    if (slice_floats) s->slice_mem = malloc(slice_floats * (size_t)s->slices * sizeof(float));
    if ((shared_floats && !s->shared) || (slice_floats && !s->slice_mem)) {
        cpu_release(s);
        return kb_fail(msg, KB_ERROR, "cpu: out of host memory for working buffers");
    }
    if (op->setup) op->setup(s);
    *state = s;
    return KB_OK;
}

/* The generic test variants' damage to output 0, after an otherwise normal run. */
static void break_output(cpu_state *s, const unsigned char *saved_last) {
    const int64_t count = s->out_count[0], mid = count / 2;
    const kb_dtype t = s->out_type[0];
    const size_t eb = (size_t)kb_dtype_bytes(t, 1);
    unsigned char *out = s->out[0];
    switch (s->test) {
    case CPU_TEST_UNWRITTEN: /* put back what was there before the run (the poison) */
        memcpy(out + (size_t)(count - 1) * eb, saved_last, eb);
        break;
    case CPU_TEST_OFF1E3: {
        unsigned char before[4];
        memcpy(before, out + (size_t)mid * eb, eb);
        cpu_store(t, out, mid, cpu_load(t, out, mid) + 1e-3f);
        /* a narrow type may not see 1e-3: then step the code up, so the damage always
         * exists: one code for 16-bit types, two for fp8 (whose codes an fp8
         * quantization is judged on within half a step of the exact quotient, so one
         * code toward a quotient near a midpoint would be a legal rounding) */
        if (memcmp(before, out + (size_t)mid * eb, eb) == 0) {
            if (eb == 1) out[mid] = (unsigned char)(out[mid] + 2);
            else if (eb == 2) ((uint16_t *)out)[mid]++;
        }
        break;
    }
    case CPU_TEST_NAN: cpu_store(t, out, mid, NAN); break;
    case CPU_TEST_NONDET: out[(size_t)mid * eb] ^= (unsigned char)(s->runs++ & 1); break; /* little-endian low byte */
    default: break;
    }
}

static int run_one(cpu_state *s, char *msg) {
    const cpu_op *op = op_of(&s->c);
    unsigned char saved_last[4] = {0};
    const int generic = s->test > 0 && s->test < CPU_TEST_GENERIC_COUNT && s->out_count[0] > 0;
    const size_t eb = (size_t)kb_dtype_bytes(s->out_type[0], 1);
    if (generic && s->test == CPU_TEST_UNWRITTEN)
        memcpy(saved_last, (unsigned char *)s->out[0] + (size_t)(s->out_count[0] - 1) * eb, eb);
    int rc = op->run(s, msg);
    if (rc != KB_OK) return rc;
    if (generic) break_output(s, saved_last);
    return KB_OK;
}

static int cpu_enqueue(void *const *states, int n, char *msg) {
    for (int i = 0; i < n; i++) {
        int rc = run_one(states[i], msg);
        if (rc != KB_OK) return rc;
    }
    return KB_OK;
}

static int cpu_wait(char *msg) {
    (void)msg;
    return KB_OK;
}

/* Evict the last-level cache: write twice its size, a new value each time so the
 * writes are real. */
static int flush_cache(char *msg) {
    if (!flush_buffer) {
        flush_bytes = 2 * (size_t)(info.cache_bytes ? info.cache_bytes : kb_host_llc_bytes());
        flush_buffer = malloc(flush_bytes);
        if (!flush_buffer) return kb_fail(msg, KB_ERROR, "cpu: cannot allocate the %zu-byte flush buffer", flush_bytes);
    }
    memset(flush_buffer, ++flush_value, flush_bytes);
    return KB_OK;
}

static int cpu_run_timed(void *const *states, int n, int flush, double *seconds, char *msg) {
    if (flush) {
        int rc = flush_cache(msg);
        if (rc != KB_OK) return rc;
    }
    const double t0 = now_seconds();
    int rc = cpu_enqueue(states, n, msg);
    *seconds = now_seconds() - t0;
    return rc;
}

static int cpu_reset(char *msg) {
    (void)msg;
    return KB_OK;
}

const kb_backend kb_backend_cpu = {
    .name = "cpu",
    .description = "plain float32 C (ggml-CPU-like), pthreads over rows",
    .probe = cpu_probe,
    .device = cpu_device,
    .flop_peak = cpu_flop_peak,
    .variants = cpu_variants,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .prepare = cpu_prepare,
    .release = cpu_release,
    .enqueue = cpu_enqueue,
    .wait = cpu_wait,
    .record = NULL,
    .run_timed = cpu_run_timed,
    .reset = cpu_reset,
};
