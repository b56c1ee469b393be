/* test_nvrtc_compile.c - compile every CUDA module the cuda backend can launch with
 * NVRTC for sm_80, sm_89 and sm_90, through the backend's own code path
 * (kbcu_compile), and fail on any error or any warning (a non-empty log). Needs no GPU.
 *
 * The modules are found the way the worker finds them: every variant of every op
 * (test-only ones included) is planned for the op's sample cases, and each launch
 * names a module (source + -D options) and an entry point. Each variant must plan at
 * least one sample; each entry point must be in its compiled module (a renamed kernel
 * fails here, not on the GPU); every embedded .cu must be compiled by some module. The
 * worker's own kernels (timing.cu) and cuBLASLt's scale reorder (cublaslt_scales.cu,
 * planned for its sample modes) are modules like any other.
 *
 * Tuned points (--tune, kbench.h): every variant at every value of each of its
 * tunables' documented range (the op's kbcu_tunable table), one tunable at a time, the
 * others at the variant's own values. Each such name must resolve (the range the
 * kernels take is the range kbcu_resolve_variant accepts), its modules are those of
 * the variant's plans with the tuned -D options, and whatever of it plans on the
 * samples is added too: a value a kernel cannot compile fails here, not on the GPU.
 * The unverified variants (KB_CUDA_UNVERIFIED) are compiled like the others.
 *
 * What is compiled: the modules of the variants as written and the support steps
 * (default), --tuned only the modules no one but a tuned point names, --all both (two
 * ctest entries run the first two side by side). The tuned points are compiled as the
 * worker meets them on a GPU; a cache of all of them would be tens of MB.
 *
 * With an argument, a directory: the cubins are also written there as the backend's
 * cubin cache (the worker reads $XDG_CACHE_HOME/kbench), so a GPU run can skip NVRTC:
 *   build/tests/test_nvrtc_compile "$PWD/nvrtc-cache/kbench"
 *   XDG_CACHE_HOME="$PWD/nvrtc-cache" kbench ...   (same NVRTC version on both sides)
 * (a --tune sweep's cubins: test_nvrtc_compile --tuned DIR, a few hundred of them)
 * --point OP:NAME (repeatable): only those variants or tuned points (e.g.
 * "gemm_fp8:gemv_v2_b256_u4_pdl[MMA8=1,WARPS=4]"), for sm_90: the cubins a planned --tune
 * sweep on the GPU will ask for, compiled here instead of there (tools/device_prepare.sh). */
#include "bench/op.h"
#include "kernels/cuda/cublaslt_host.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/nvrtc_build.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int archs[] = {80, 89, 90};
#define NARCH ((int)(sizeof archs / sizeof archs[0]))
/* Tuned points change sizes (warps, stages, tiles), not which instructions exist: they
 * are compiled for sm_90 (the target; gemm_fp8's tune check still holds its points to
 * sm_89's 1536 threads an SM), every TUNED_STRIDE-th tuned-only module; the variants as
 * written for all three archs, every one. All tuned-only modules at sm_89 + sm_90 passed
 * the test's 2400 s on CI's 2 cores in the eighth session, and at sm_90 alone they still
 * ran past 1590 s here (2026-11-30; 354 of them had taken 880 s at sm_89 + sm_90), so the
 * plain build compiles a third of them. Under AddressSanitizer (CI's second pass, whose
 * point here is this driver's own code: every tuned point is still resolved and planned)
 * NVRTC is ~4x slower (sm_90 alone took 1363 s for 354 modules): every 12th. */
#define TUNED_MIN_ARCH 90
#if defined(__SANITIZE_ADDRESS__)
#define TUNED_STRIDE 12
#else
#define TUNED_STRIDE 3
#endif
#define MAX_MODULES 1024
#define MAX_ENTRIES 16

typedef struct {
    char source[40], opts[KBCU_OPTS];
    int min_sm;
    int tuned_only; /* only a tuned point names it (no variant as written, no support step) */
    char entries[MAX_ENTRIES][64];
    int nentries;
} module;

typedef struct {
    const module *m;
    int sm;
    int result; /* 0 pass, 1 fail, 2 skipped */
    char msg[4096 + KB_MSG];
} job;

static module modules[MAX_MODULES];
static int nmodules, setup_failures;
static job *jobs;
static int njobs, next_job;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char include_dir[1024];
static const char *cache_dir; /* NULL: no cache */

static int adding_tuned; /* add_entry's caller is a tuned point */

static void add_entry(const char *source, const char *opts, const char *kernel, int min_sm) {
    module *m = NULL;
    for (int i = 0; i < nmodules && !m; i++)
        if (!strcmp(modules[i].source, source) && !strcmp(modules[i].opts, opts)) m = &modules[i];
    if (!m) {
        if (nmodules == MAX_MODULES) {
            printf("FAIL: more than %d modules\n", MAX_MODULES);
            setup_failures++;
            return;
        }
        m = &modules[nmodules++];
        snprintf(m->source, sizeof m->source, "%s", source);
        snprintf(m->opts, sizeof m->opts, "%s", opts);
        m->min_sm = min_sm;
        m->tuned_only = adding_tuned;
    }
    if (!adding_tuned) m->tuned_only = 0;
    if (min_sm < m->min_sm) m->min_sm = min_sm;
    for (int e = 0; e < m->nentries; e++)
        if (!strcmp(m->entries[e], kernel)) return;
    if (m->nentries < MAX_ENTRIES) snprintf(m->entries[m->nentries++], 64, "%s", kernel);
}

static void add_plan(const kbcu_plan *p, int min_sm) {
    for (int l = 0; l < p->nlaunch; l++) add_entry(p->launch[l].source, p->launch[l].opts, p->launch[l].kernel, min_sm);
}

/* The args of sample case c (registry views at offset 0); -1 with msg on a bad case. */
static int sample_args(const kb_case *c, kb_arg *args, char *msg) {
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    if (kb_case_tensors(c, t, msg) != KB_OK) return -1;
    for (int i = 0; i < kb_ops[c->op]->n_in + kb_ops[c->op]->n_out; i++)
        args[i] = (kb_arg){t[i].type, t[i].count, {1, 0, t[i].bytes}};
    return 0;
}

/* Plan variant v on every sample on a device of its own minimum architecture or sm_90,
 * whichever is newer; adds the modules; returns how many samples planned. The entry
 * points of v's own module (source + its -D options) go to own[] when given. */
#define MAX_OWN 16
static int plan_samples(const kbcu_op *o, const kbcu_variant *v, const kb_case *samples, int ns, char (*own)[64],
                        int *nown) {
    int planned = 0;
    for (int s = 0; s < ns; s++) {
        kb_arg args[KB_MAX_ARGS];
        char msg[KB_MSG];
        if (sample_args(&samples[s], args, msg)) {
            printf("FAIL: %s sample %d: %s\n", kbcu_op_name(samples[s].op), s, msg);
            setup_failures++;
            continue;
        }
        const kbcu_job j = {&samples[s], v, args, o->n_in, o->n_out, {90, 132, 227 * 1024}};
        kbcu_plan p;
        if (kbcu_plan_case(&j, &p, msg) != KB_OK) continue; /* e.g. v2 on a q6_k table */
        add_plan(&p, v->min_sm);
        for (int l = 0; own && l < p.nlaunch; l++) {
            const kbcu_launch *L = &p.launch[l];
            if (strcmp(L->source, v->source) || strcmp(L->opts, v->defines)) continue;
            int seen = 0;
            for (int e = 0; e < *nown; e++) seen |= !strcmp(own[e], L->kernel);
            if (!seen && *nown < MAX_OWN) snprintf(own[(*nown)++], 64, "%s", L->kernel);
        }
        kbcu_plan_free(&p);
        planned++;
    }
    return planned;
}

/* Every value of each tunable of v (one tunable at a time): its name resolves, its
 * module is compiled with the entry points v's own module has, and it is planned on
 * the samples like any variant. */
static int ntuned, nrefused;
static void collect_tuned(kb_op_id op, const kbcu_op *o, const kbcu_variant *v, const kb_case *samples, int ns,
                          char (*own)[64], int nown) {
    char list[64];
    kbcu_variant_tunables(op, v, list, sizeof list);
    for (char *save, *tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        tok[strcspn(tok, "=")] = 0;
        const kbcu_tunable *tu = kbcu_find_tunable(op, tok);
        int values[64];
        const int nv = tu ? kbcu_tunable_values(tu, values, 64) : 0;
        if (nv < 1) {
            printf("FAIL: %s/%s: tunable %s has no values\n", kbcu_op_name(op), v->name, tok);
            setup_failures++;
        }
        for (int i = 0; i < nv; i++) {
            kb_tune_point pt = {0};
            char name[64], msg[KB_MSG];
            kb_tune_set(&pt, tok, values[i]);
            kbcu_tuned t;
            const kbcu_variant *tv;
            const int rc = kb_tune_name(v->name, &pt, name, sizeof name)
                               ? kb_fail(msg, KB_ERROR, "the name is too long")
                               : kbcu_resolve_variant(op, name, 1, &t, &tv, msg);
            if (rc == KB_NOT_SUPPORTED) { /* the op's check across tunables (kbcu_op.tune_check) */
                printf("SKIP %s: %s\n", name, msg);
                nrefused++;
                continue;
            }
            if (rc != KB_OK) {
                printf("FAIL: %s/%s: %s=%d of its documented range does not resolve: %s\n", kbcu_op_name(op), v->name,
                       tok, values[i], msg);
                setup_failures++;
                continue;
            }
            adding_tuned = 1;
            for (int e = 0; e < nown; e++) add_entry(tv->source, tv->defines, own[e], tv->min_sm);
            plan_samples(o, tv, samples, ns, NULL, NULL);
            adding_tuned = 0;
            ntuned++;
        }
    }
}

/* Every variant of every op on its samples, then its tuned points. */
static void collect_ops(void) {
    for (int op = 0; op < KB_OP_COUNT; op++) {
        const kbcu_op *o = kbcu_op_of((kb_op_id)op);
        const kbcu_variant *vars[64];
        const int nv = kbcu_list_variants((kb_op_id)op, 1, vars, 64);
        kb_case samples[16];
        const int ns = o->samples(samples, 16);
        if (ns < 1) {
            printf("FAIL: %s has no sample case\n", kbcu_op_name((kb_op_id)op));
            setup_failures++;
        }
        for (int v = 0; v < nv; v++) {
            char own[MAX_OWN][64];
            int nown = 0;
            if (!plan_samples(o, vars[v], samples, ns, own, &nown)) {
                printf("FAIL: %s/%s plans none of the op's %d sample cases\n", kbcu_op_name((kb_op_id)op),
                       vars[v]->name, ns);
                setup_failures++;
            }
            collect_tuned((kb_op_id)op, o, vars[v], samples, ns, own, nown);
        }
    }
}

/* --point OP:NAME: the modules of that one variant or tuned point on the op's samples */
static void collect_point(const char *arg) {
    const char *colon = strchr(arg, ':');
    char name[64];
    kb_op_id op;
    if (!colon || (size_t)(colon - arg) >= sizeof name ||
        kb_op_lookup((snprintf(name, sizeof name, "%.*s", (int)(colon - arg), arg), name), &op)) {
        printf("FAIL: --point %s: not OP:NAME with a known op\n", arg);
        setup_failures++;
        return;
    }
    const kbcu_op *o = kbcu_op_of(op);
    kbcu_tuned t;
    const kbcu_variant *v;
    char msg[KB_MSG];
    if (kbcu_resolve_variant(op, colon + 1, 1, &t, &v, msg) != KB_OK) {
        printf("FAIL: --point %s: %s\n", arg, msg);
        setup_failures++;
        return;
    }
    kb_case samples[16];
    const int ns = o->samples(samples, 16);
    if (!plan_samples(o, v, samples, ns, NULL, NULL)) {
        printf("FAIL: --point %s plans none of the op's samples\n", arg);
        setup_failures++;
    }
}

static void collect_support(void) {
    add_entry("timing.cu", "", "kb_block_stream", 75);
    add_entry("timing.cu", "", "kb_empty", 75);
    add_entry("timing.cu", "", "kb_flush_read", 75);
    /* cuBLASLt's scale reorder, as its states plan it: both kernels */
    const kb_scale_mode modes[] = {KB_SCALE_VEC128, KB_SCALE_BLK128};
    for (int i = 0; i < 2; i++) {
        kb_case c = {.op = KB_OP_gemm_fp8, .m = 384, .n = 24, .k = 640, .scale_mode = modes[i]};
        kbcu_plan p;
        memset(&p, 0, sizeof p);
        int64_t off[2];
        char msg[KB_MSG];
        if (kblt_scale_reorder_plan(&c, &p, off, msg) == KB_OK) add_plan(&p, 75);
        kbcu_plan_free(&p);
    }
}

static int image_has(const kbcu_binary *b, const char *name) {
    const size_t n = strlen(name);
    const char *p = b->image;
    for (size_t i = 0; i + n <= b->size; i++)
        if (memcmp(p + i, name, n) == 0 && (i + n == b->size || p[i + n] == 0)) return 1;
    return 0;
}

static void run_job(job *j) {
    char arch[16], msg[KB_MSG];
    kbcu_arch_name(j->sm / 10, j->sm % 10, arch, sizeof arch);
    if (j->sm < j->m->min_sm) {
        j->result = 2;
        snprintf(j->msg, sizeof j->msg, "needs sm_%d", j->m->min_sm);
        return;
    }
    const char *src = kbcu_source_text(j->m->source);
    if (!src) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "source %s not embedded", j->m->source);
        return;
    }
    kbcu_binary bin;
    if (kbcu_compile(j->m->source, src, j->m->opts, arch, include_dir, cache_dir, &bin, msg) != KB_OK) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "%s\n%s", msg, bin.log);
        free(bin.image);
        return;
    }
    if (bin.log[0] && !bin.from_cache) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "warnings:\n%s", bin.log);
        free(bin.image);
        return;
    }
    for (int e = 0; e < j->m->nentries; e++)
        if (!image_has(&bin, j->m->entries[e])) {
            j->result = 1;
            snprintf(j->msg, sizeof j->msg, "entry point %s missing from the cubin", j->m->entries[e]);
            free(bin.image);
            return;
        }
    j->result = 0;
    snprintf(j->msg, sizeof j->msg, "%zu bytes, %d entry points", bin.size, j->m->nentries);
    free(bin.image);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        const int i = next_job < njobs ? next_job++ : -1;
        pthread_mutex_unlock(&lock);
        if (i < 0) return NULL;
        run_job(&jobs[i]);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int which = 1; /* 0 --all, 1 the variants as written and the support steps, 2 --tuned */
    const char *points[256];
    int npoints = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) which = 0;
        else if (!strcmp(argv[i], "--tuned")) which = 2;
        else if (!strcmp(argv[i], "--point") && i + 1 < argc && npoints < 256) points[npoints++] = argv[++i];
        else {
            cache_dir = argv[i];
            printf("writing the cubins to %s\n", cache_dir);
        }
    }
    char msg[KB_MSG];
    if (kbcu_cuda_include(include_dir, sizeof include_dir, msg) != KB_OK) {
        printf("FAIL: %s\n0 passed, 1 failed\n", msg);
        return 1;
    }
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    printf("NVRTC %d.%d, headers from %s\n", vmaj, vmin, include_dir);
    setenv("KB_CUDA_UNVERIFIED", "1", 1); /* compiled here before they ever run */
    if (npoints) {
        for (int i = 0; i < npoints; i++) collect_point(points[i]);
    } else {
        collect_ops();
        collect_support();
    }
    /* every embedded kernel source is some module's */
    for (int i = 0; i < kbcu_source_count; i++) {
        const char *name = kbcu_sources[i].name;
        const size_t len = strlen(name);
        if (len < 3 || strcmp(name + len - 3, ".cu") != 0) continue;
        int used = 0;
        for (int m = 0; m < nmodules; m++) used |= !strcmp(modules[m].source, name);
        if (!used && !npoints) {
            printf("FAIL: %s is embedded but no variant or support step launches it\n", name);
            setup_failures++;
        }
    }
    jobs = calloc((size_t)nmodules * NARCH + 1, sizeof *jobs);
    if (!jobs) return 1;
    int compiled = 0, ntuned_only = 0;
    for (int m = 0; m < nmodules; m++) {
        if ((which == 1 && modules[m].tuned_only) || (which == 2 && !modules[m].tuned_only)) continue;
        if (modules[m].tuned_only && ntuned_only++ % TUNED_STRIDE) continue;
        compiled++;
        for (int a = 0; a < NARCH; a++) {
            if ((modules[m].tuned_only || npoints) && archs[a] < TUNED_MIN_ARCH) continue; /* --point: sm_90 */
            jobs[njobs].m = &modules[m];
            jobs[njobs++].sm = archs[a];
        }
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);

    int pass = 0, fail = setup_failures, skip = 0;
    for (int i = 0; i < njobs; i++) {
        const job *j = &jobs[i];
        const char *tag = j->result == 0 ? "ok  " : j->result == 1 ? "FAIL" : "SKIP";
        printf("%s %-20s %-40s sm_%d %s\n", tag, j->m->source, j->m->opts, j->sm, j->msg);
        if (j->result == 0) pass++;
        else if (j->result == 1) fail++;
        else skip++;
    }
    if (njobs == 0) fail++; /* an empty table is a broken build, not a pass */
    printf("%d of %d modules%s (%d tuned points; %d more refused by an op's check across tunables): %d passed, %d "
           "failed (%d skipped: below the module's minimum architecture)\n",
           compiled, nmodules, which == 1 ? " as written" : which == 2 ? " only tuned points name" : "", ntuned,
           nrefused, pass, fail, skip);
    if (TUNED_STRIDE > 1 && ntuned_only)
        printf("%d of the %d tuned-only modules compiled, for sm_90 (every %d-th)\n",
               (ntuned_only + TUNED_STRIDE - 1) / TUNED_STRIDE, ntuned_only, TUNED_STRIDE);
    free(jobs);
    return fail ? 1 : 0;
}
