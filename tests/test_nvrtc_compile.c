/* test_nvrtc_compile.c - compile every CUDA kernel build with NVRTC for sm_80, sm_89
 * and sm_90, through the backend's own code path (kbcu_compile), and fail on any
 * error or any warning (a non-empty log). Needs no GPU.
 *
 * A build is a variant (kbcu_kernel_defs) with one of its case-dependent -D sets
 * (kbcu_def_specs). For each cubin we also check that the entry points the launch
 * planner names for a representative case are in it: a renamed kernel fails here,
 * not on the GPU. */
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/nvrtc_build.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int archs[] = {80, 89, 90};
#define NARCH ((int)(sizeof archs / sizeof archs[0]))

typedef struct {
    const kbcu_kernel_def *def;
    char spec[64];
    int sm;
    int result; /* 0 pass, 1 fail, 2 skipped */
    char msg[4096 + KB_MSG];
} job;

static job *jobs;
static int njobs, next_job;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char include_dir[1024];

/* Representative cases for each op, to ask the planner which kernels it launches. */
static int sample_cases(kb_op_id op, kb_case *out) {
    kb_case c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.eps = 1e-6;
    c.theta = 1e6;
    c.max_pos = 32768;
    c.a_type = c.b_type = KB_E4M3;
    c.out_type = KB_BF16;
    switch (op) {
    case KB_OP_DEQUANT_Q4K: c.m = 4, c.k = 512; out[0] = c; return 1;
    case KB_OP_RMSNORM: c.n = 4, c.k = 3584; out[0] = c; return 1;
    case KB_OP_GEMM_FP8: c.m = 3584, c.n = 16, c.k = 3584; out[0] = c; return 1;
    case KB_OP_ROPE_NEOX: c.n = 4, c.heads = 28, c.head_dim = 128; out[0] = c; return 1;
    case KB_OP_ATTENTION:
        c.heads = 28, c.kv_heads = 4, c.head_dim = 128, c.kv_len = 64;
        c.n = 1;
        out[0] = c;
        c.n = 64;
        out[1] = c;
        return 2;
    case KB_OP_EMBED: {
        const kb_dtype types[] = {KB_Q4K, KB_Q6K, KB_F16, KB_F32};
        for (int i = 0; i < 4; i++) {
            c.m = 1000, c.n = 4, c.k = 3584, c.a_type = types[i];
            out[i] = c;
        }
        return 4;
    }
    default: return 0;
    }
}

static int image_has(const kbcu_binary *b, const char *name) {
    size_t n = strlen(name);
    const char *p = b->image;
    for (size_t i = 0; i + n <= b->size; i++)
        if (memcmp(p + i, name, n) == 0 && (i + n == b->size || p[i + n] == 0)) return 1;
    return 0;
}

static void run_job(job *j) {
    char arch[16], opts[256], msg[KB_MSG];
    kbcu_arch_name(j->sm / 10, j->sm % 10, arch, sizeof arch);
    if (j->sm < j->def->min_sm) {
        j->result = 2;
        snprintf(j->msg, sizeof j->msg, "needs sm_%d", j->def->min_sm);
        return;
    }
    kbcu_def_options(j->def, j->spec, opts, sizeof opts);
    const char *src = kbcu_source_text(j->def->source);
    if (!src) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "source %s not embedded", j->def->source);
        return;
    }
    kbcu_binary bin;
    if (kbcu_compile(j->def->source, src, opts, arch, include_dir, NULL, &bin, msg) != KB_OK) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "%s\n%s", msg, bin.log);
        free(bin.image);
        return;
    }
    if (bin.log[0]) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "warnings:\n%s", bin.log);
        free(bin.image);
        return;
    }
    /* entry points the planner launches for this def */
    kb_case cases[8];
    int nc = sample_cases(j->def->op, cases);
    if (j->def->op == KB_OP_COUNT && !image_has(&bin, j->def->kernel)) {
        j->result = 1;
        snprintf(j->msg, sizeof j->msg, "entry point %s missing from the cubin", j->def->kernel);
        free(bin.image);
        return;
    }
    kbcu_devinfo dev = {j->sm, 132, 227 * 1024};
    for (int i = 0; i < nc; i++) {
        kbcu_plan plan;
        if (kbcu_plan_case(&cases[i], j->def, &dev, &plan, msg) != KB_OK) continue; /* e.g. v2 on a q6_k table */
        for (int l = 0; l < plan.nlaunch; l++)
            if (!image_has(&bin, plan.launch[l].kernel)) {
                j->result = 1;
                snprintf(j->msg, sizeof j->msg, "entry point %s missing from the cubin", plan.launch[l].kernel);
                free(bin.image);
                return;
            }
    }
    j->result = 0;
    snprintf(j->msg, sizeof j->msg, "%zu bytes", bin.size);
    free(bin.image);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        int i = next_job < njobs ? next_job++ : -1;
        pthread_mutex_unlock(&lock);
        if (i < 0) return NULL;
        run_job(&jobs[i]);
    }
}

int main(void) {
    char msg[KB_MSG];
    if (kbcu_cuda_include(include_dir, sizeof include_dir, msg) != KB_OK) {
        printf("FAIL: %s\n0 passed, 1 failed\n", msg);
        return 1;
    }
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    printf("NVRTC %d.%d, headers from %s\n", vmaj, vmin, include_dir);

    /* the backend's own support kernel (timing.cu's kb_spin), like a variant */
    static const kbcu_kernel_def timing = {KB_OP_COUNT, "kb_spin", "timing.cu", "kb_spin", "", 75, 0};
    jobs = calloc((size_t)(kbcu_kernel_def_count + 1) * 8 * NARCH, sizeof *jobs);
    for (int a = 0; a < NARCH; a++) {
        job *j = &jobs[njobs++];
        j->def = &timing;
        j->sm = archs[a];
    }
    for (int d = 0; d < kbcu_kernel_def_count; d++) {
        char specs[8][64];
        int ns = kbcu_def_specs(&kbcu_kernel_defs[d], specs, 8);
        for (int s = 0; s < ns; s++)
            for (int a = 0; a < NARCH; a++) {
                job *j = &jobs[njobs++];
                j->def = &kbcu_kernel_defs[d];
                memcpy(j->spec, specs[s], sizeof j->spec);
                j->sm = archs[a];
            }
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);

    int pass = 0, fail = 0, skip = 0;
    for (int i = 0; i < njobs; i++) {
        job *j = &jobs[i];
        const char *tag = j->result == 0 ? "ok  " : j->result == 1 ? "FAIL" : "SKIP";
        const char *op = j->def->op == KB_OP_COUNT ? "(support)" : kb_op_name(j->def->op);
        printf("%s %-12s %-16s sm_%d %-28s %s\n", tag, op, j->def->name, j->sm, j->spec, j->msg);
        if (j->result == 0) pass++;
        else if (j->result == 1) fail++;
        else skip++;
    }
    if (njobs == 0) fail++; /* an empty table is a broken build, not a pass */
    printf("%d passed, %d failed (%d skipped: below the variant's minimum architecture)\n", pass, fail, skip);
    free(jobs);
    return fail ? 1 : 0;
}
