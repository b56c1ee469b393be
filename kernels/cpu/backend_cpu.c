/* backend_cpu.c - the float32 cpu backend: host memory, the op dispatch, wall-clock
 * timing, the cache flush, and the test-only broken variants. The ops themselves
 * live in cpu_<op>.c (see cpu_ops.h). Threads: the reference pool (kb_parallel_for),
 * kb_ref_threads() of them. */
#include "kernels/cpu/cpu_ops.h"
#include "ref/ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const cpu_op *const cpu_ops[KB_OP_COUNT] = {
    [KB_OP_DEQUANT_Q4K] = &cpu_op_dequant_q4k, [KB_OP_RMSNORM] = &cpu_op_rmsnorm,
    [KB_OP_GEMM_FP8] = &cpu_op_gemm_fp8,       [KB_OP_ROPE_NEOX] = &cpu_op_rope_neox,
    [KB_OP_ATTENTION] = &cpu_op_attention,     [KB_OP_EMBED] = &cpu_op_embed,
};

static const char *const variant_names[CPU_VARIANT_COUNT] = {"f32", "test_unwritten", "test_off1e3", "test_nan",
                                                             "test_eps1e5"};

static const char *const variant_details[CPU_VARIANT_COUNT] = {
    "", "TEST ONLY: leaves the last output element unwritten", "TEST ONLY: adds 1e-3 to the middle element",
    "TEST ONLY: writes NaN into the middle element", "TEST ONLY: rmsnorm with eps 1e-5 instead of the case's"};

static const cpu_op *op_of(const kb_case *c) {
    return (unsigned)c->op < KB_OP_COUNT ? cpu_ops[c->op] : NULL;
}

/* ---- slices over the reference pool --------------------------------------- */
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

/* ---- device description -------------------------------------------------- */
static char cpu_name[160] = "cpu";

static void read_cpu_name(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    char model[128] = "unknown CPU";
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *colon = strchr(line, ':');
                if (colon) {
                    colon++;
                    while (*colon == ' ' || *colon == '\t') colon++;
                    snprintf(model, sizeof model, "%s", colon);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(f);
    }
    snprintf(cpu_name, sizeof cpu_name, "%s, %d threads", model, kb_ref_threads());
}

static int cpu_probe(const kb_options *opt, char *msg) {
    (void)opt;
    (void)msg;
    read_cpu_name();
    return KB_OK;
}

static const char *cpu_device_name(void) { return cpu_name; }

static const char *cpu_driver_version(void) {
#ifdef __VERSION__
    return "C11 float32, compiler " __VERSION__;
#else
    return "C11 float32";
#endif
}

static void cpu_ceilings(const kb_case *c, double *bytes_per_s, double *flops_per_s) {
    (void)c;
    *bytes_per_s = 0; /* unknown: not measured on this host */
    *flops_per_s = 0;
}

/* ---- variants -------------------------------------------------------------- */
static int test_variants_enabled(void) {
    const char *e = getenv("KB_TEST_VARIANTS");
    return e && strcmp(e, "1") == 0;
}

static int cpu_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    (void)opt;
    (void)msg;
    const cpu_op *op = op_of(c);
    if (!op) return 0;
    int count = 0;
    for (int kind = 0; kind < CPU_VARIANT_COUNT && count < max; kind++) {
        if (kind != CPU_VARIANT_F32 && !test_variants_enabled()) break;
        if (kind == CPU_VARIANT_TEST_EPS1E5 && c->op != KB_OP_RMSNORM) continue;
        kb_variant_init(&out[count], variant_names[kind]);
        if (kind == CPU_VARIANT_F32)
            snprintf(out[count].detail, sizeof out[count].detail, "%s", op->detail);
        else
            snprintf(out[count].detail, sizeof out[count].detail, "%s", variant_details[kind]);
        count++;
    }
    return count;
}

/* ---- memory ---------------------------------------------------------------- */
static int cpu_alloc(size_t bytes, void **dbuf, char *msg) {
    size_t rounded = (bytes + 63) / 64 * 64; /* aligned_alloc wants a multiple of the alignment */
    if (rounded == 0) rounded = 64;
    *dbuf = aligned_alloc(64, rounded);
    if (!*dbuf) return kb_fail(msg, KB_ERROR, "out of host memory (%zu bytes)", bytes);
    return KB_OK;
}

static void cpu_free(void *dbuf) { free(dbuf); }

static int cpu_upload(void *dbuf, const void *host, size_t bytes, char *msg) {
    (void)msg;
    memcpy(dbuf, host, bytes);
    return KB_OK;
}

static int cpu_download(void *host, const void *dbuf, size_t bytes, char *msg) {
    (void)msg;
    memcpy(host, dbuf, bytes);
    return KB_OK;
}

/* ---- prepare / run / release ----------------------------------------------- */
static int64_t output_count(const kb_case *c) {
    switch (c->op) {
    case KB_OP_DEQUANT_Q4K: return c->m * c->k;
    case KB_OP_RMSNORM: return c->n * c->k;
    case KB_OP_GEMM_FP8: return c->n * c->m;
    case KB_OP_ROPE_NEOX:
    case KB_OP_ATTENTION: return c->n * c->heads * c->head_dim;
    case KB_OP_EMBED: return c->n * c->k;
    default: return 0;
    }
}

static void cpu_release(void *state) {
    cpu_state *s = state;
    if (!s) return;
    free(s->shared);
    free(s->slice_mem);
    free(s);
}

static int cpu_prepare(const kb_case *c, const kb_variant *v, void *const *dev_in, void *dev_out, void **state,
                       char *msg) {
    *state = NULL;
    const cpu_op *op = op_of(c);
    if (!op) return kb_fail(msg, KB_NOT_SUPPORTED, "cpu: op %d is not implemented", (int)c->op);
    int kind = -1;
    for (int i = 0; i < CPU_VARIANT_COUNT; i++)
        if (strcmp(v->name, variant_names[i]) == 0) kind = i;
    if (kind < 0) return kb_fail(msg, KB_ERROR, "cpu: unknown variant '%s'", v->name);
    if (kind != CPU_VARIANT_F32 && !test_variants_enabled())
        return kb_fail(msg, KB_NOT_SUPPORTED, "cpu: %s is a test variant (set KB_TEST_VARIANTS=1)", v->name);
    if (kind == CPU_VARIANT_TEST_EPS1E5 && c->op != KB_OP_RMSNORM)
        return kb_fail(msg, KB_NOT_SUPPORTED, "cpu: test_eps1e5 is a rmsnorm variant");
    size_t shared_floats = 0, slice_floats = 0;
    int rc = op->check(c, &shared_floats, &slice_floats, msg);
    if (rc != KB_OK) return rc;

    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return kb_fail(msg, KB_ERROR, "cpu: out of host memory");
    s->c = *c;
    s->kind = (cpu_variant_kind)kind;
    if (s->kind == CPU_VARIANT_TEST_EPS1E5) s->c.eps = 1e-5;
    for (int i = 0; i < KB_MAX_INPUTS; i++) s->in[i] = dev_in ? dev_in[i] : NULL;
    s->out = dev_out;
    s->out_type = c->op == KB_OP_GEMM_FP8 ? c->out_type : KB_F32;
    s->out_count = output_count(c);
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

static size_t element_bytes(kb_dtype t) { return kb_dtype_bytes(t, 1); }

static float element_get(kb_dtype t, const void *out, int64_t i) {
    switch (t) {
    case KB_F16: return kb_f16_to_f32(((const uint16_t *)out)[i]);
    case KB_BF16: return kb_bf16_to_f32(((const uint16_t *)out)[i]);
    case KB_E4M3: return kb_e4m3_to_f32(((const uint8_t *)out)[i]);
    case KB_E5M2: return kb_e5m2_to_f32(((const uint8_t *)out)[i]);
    default: return ((const float *)out)[i];
    }
}

static void element_set(kb_dtype t, void *out, int64_t i, float v) {
    switch (t) {
    case KB_F16: ((uint16_t *)out)[i] = kb_f32_to_f16(v, 0); break;
    case KB_BF16: ((uint16_t *)out)[i] = kb_f32_to_bf16(v, 0); break;
    case KB_E4M3: ((uint8_t *)out)[i] = kb_f32_to_e4m3(v, 0); break;
    case KB_E5M2: ((uint8_t *)out)[i] = kb_f32_to_e5m2(v, 0); break;
    default: ((float *)out)[i] = v; break;
    }
}

/* The test variants' damage, after an otherwise identical f32 run. */
static void break_output(cpu_state *s, const unsigned char *saved_last) {
    const int64_t mid = s->out_count / 2;
    const size_t eb = element_bytes(s->out_type);
    switch (s->kind) {
    case CPU_VARIANT_TEST_UNWRITTEN: /* put back what was there before the run (the poison) */
        memcpy((unsigned char *)s->out + (size_t)(s->out_count - 1) * eb, saved_last, eb);
        break;
    case CPU_VARIANT_TEST_OFF1E3: {
        unsigned char before[4];
        memcpy(before, (unsigned char *)s->out + (size_t)mid * eb, eb);
        element_set(s->out_type, s->out, mid, element_get(s->out_type, s->out, mid) + 1e-3f);
        /* a narrow output type may not see 1e-3: then step one code up, so the damage
         * always exists (the size of the step is then the type's spacing) */
        if (memcmp(before, (unsigned char *)s->out + (size_t)mid * eb, eb) == 0) {
            if (eb == 1)
                ((uint8_t *)s->out)[mid]++;
            else if (eb == 2)
                ((uint16_t *)s->out)[mid]++;
        }
        break;
    }
    case CPU_VARIANT_TEST_NAN: element_set(s->out_type, s->out, mid, NAN); break;
    default: break;
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cpu_run(void *state, double *seconds, char *msg) {
    cpu_state *s = state;
    const cpu_op *op = op_of(&s->c);
    unsigned char saved_last[4] = {0};
    const size_t eb = element_bytes(s->out_type);
    if (s->kind == CPU_VARIANT_TEST_UNWRITTEN && s->out_count > 0)
        memcpy(saved_last, (unsigned char *)s->out + (size_t)(s->out_count - 1) * eb, eb);
    const double t0 = now_seconds();
    int rc = op->run(s, msg);
    const double t1 = now_seconds();
    if (rc != KB_OK) return rc;
    if (s->kind != CPU_VARIANT_F32 && s->out_count > 0) break_output(s, saved_last);
    if (seconds) *seconds = t1 - t0;
    return KB_OK;
}

/* ---- cache flush ------------------------------------------------------------ */
/* The size of this CPU's last-level cache: the OS's view in sysfs first (the cache
 * this core actually shares; on a VM sysconf can report the host socket's total),
 * then sysconf, then 64 MiB. */
static size_t last_level_cache_bytes(void) {
    size_t best = 0;
    int best_level = 0;
    for (int index = 0; index < 16; index++) {
        char path[96], text[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int level = 0;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
        f = fopen(path, "r");
        if (!f) continue;
        unsigned long long size = 0;
        char unit = 0;
        if (fgets(text, sizeof text, f) && sscanf(text, "%llu%c", &size, &unit) >= 1) {
            if (unit == 'K') size <<= 10;
            if (unit == 'M') size <<= 20;
            if (unit == 'G') size <<= 30;
            if (level > best_level || (level == best_level && size > best)) {
                best_level = level;
                best = (size_t)size;
            }
        }
        fclose(f);
    }
    if (best) return best;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0) return (size_t)l3;
#endif
    return (size_t)64 << 20;
}

static unsigned char *flush_buffer;
static size_t flush_bytes;
static unsigned char flush_value;

static int cpu_flush_cache(char *msg) {
    if (!flush_buffer) {
        flush_bytes = 2 * last_level_cache_bytes();
        flush_buffer = malloc(flush_bytes);
        if (!flush_buffer) return kb_fail(msg, KB_ERROR, "cpu: cannot allocate the %zu-byte flush buffer", flush_bytes);
    }
    memset(flush_buffer, ++flush_value, flush_bytes); /* a new value each time: real writes */
    return KB_OK;
}

static int cpu_reset(char *msg) {
    (void)msg;
    return KB_OK;
}

const kb_backend kb_backend_cpu = {
    .name = "cpu",
    .description = "plain float32 C (ggml-CPU-like), pthreads over rows",
    .probe = cpu_probe,
    .device_name = cpu_device_name,
    .driver_version = cpu_driver_version,
    .ceilings = cpu_ceilings,
    .variants = cpu_variants,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .prepare = cpu_prepare,
    .run = cpu_run,
    .release = cpu_release,
    .flush_cache = cpu_flush_cache,
    .reset = cpu_reset,
};
