/* main.c - kbench: the command line (cli.c) -> a plan of cases -> the harness.
 * Subcommands: `kbench forward` (bench/forward_cli.c) and `kbench falsify`. */
#include "bench/cli.h"
#include "bench/forward.h"
#include "bench/gbench_shim.h"
#include "ref/pool.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage_error(const char *msg) {
    fprintf(stderr, "kbench: %s (see kbench --help)\n", msg);
    return KB_EXIT_USAGE;
}

static void list_ops(void) {
    for (int i = 0; i < KB_OP_COUNT; i++)
        printf("%-12s %-34s %s\n", kb_ops[i]->name, kb_ops[i]->dims_text, kb_ops[i]->summary);
}

static int list_shapes(void) {
    char buf[4096], path[PATH_MAX], msg[KB_MSG];
    kb_shapes_list(buf, sizeof buf);
    if (!buf[0]) {
        fprintf(stderr, "kbench: no shapes directory found (set KB_SHAPES_DIR)\n");
        return KB_EXIT_USAGE;
    }
    for (char *save, *name = strtok_r(buf, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
        kb_case_list l = {0};
        if (kb_shapes_resolve(name, path, sizeof path, msg) == 0 && kb_shapes_load(path, NULL, &l, msg) == 0) {
            int per_op[KB_OP_COUNT] = {0};
            for (int i = 0; i < l.count; i++) per_op[l.cases[i].op]++;
            printf("%-24s %4d rows:", name, l.count);
            for (int o = 0; o < KB_OP_COUNT; o++)
                if (per_op[o]) printf(" %s %d", kb_ops[o]->name, per_op[o]);
            printf("   (%s)\n", path);
        } else {
            printf("%-24s unreadable: %s\n", name, msg);
        }
        kb_case_list_free(&l);
    }
    return 0;
}

extern int kb_vulkan_list_devices(char *buf, size_t n) __attribute__((weak));

static void list_backends(const kb_options *opt) {
    for (int i = 0; i < kb_backend_count; i++) {
        const kb_backend *b = kb_backends[i];
        char why[KB_MSG] = "";
        if (b->probe(opt, why) == KB_OK) {
            const kb_device_info *d = b->device();
            printf("%-9s available    %s; %s   [%s]\n", b->name, d->name, d->driver, b->description);
        } else {
            printf("%-9s unavailable  %s   [%s]\n", b->name, why, b->description);
        }
        if (strcmp(b->name, "vulkan") == 0 && kb_vulkan_list_devices) {
            char buf[2048] = "";
            if (kb_vulkan_list_devices(buf, sizeof buf) > 0) printf("%s", buf);
        }
    }
}

static void list_case(const kb_case *c) {
    const kb_op *op = kb_ops[c->op];
    printf("%-12s %-24s", op->name, c->label);
    for (int p = 0; p < KB_P_COUNT; p++) {
        if (!(op->params & KB_PBIT(p))) continue;
        char v[64];
        kb_param_format(c, (kb_param)p, v, sizeof v);
        printf(" %s=%s", kb_params[p].name, v);
    }
    printf("\n");
}

#define LIST_MAX_VARIANTS 1024

/* The cases, and under --tune every row each case will have: a tunable backend's
 * variants at each point (from the same variants() the run calls, the --variant filter
 * applied), one not_supported row per case for a backend without tunables. No device
 * is touched: a tunable backend lists its variants without one. Returns an exit code. */
static int list_axes(const kb_harness *h, const kb_case_list *cases) {
    if (!h->opt.tune) {
        for (int i = 0; i < cases->count; i++) list_case(&cases->cases[i]);
        printf("%d cases\n", cases->count);
        return 0;
    }
    kb_variant *vars = malloc(LIST_MAX_VARIANTS * sizeof *vars);
    if (!vars) return fprintf(stderr, "kbench: out of host memory\n"), KB_EXIT_ERROR;
    long rows[KB_MAX_BACKENDS] = {0}, total = 0, matched = 0;
    for (int i = 0; i < cases->count; i++) {
        const kb_case *c = &cases->cases[i];
        list_case(c);
        for (int bi = 0; bi < h->n_backends; bi++) {
            const kb_backend *b = h->backends[bi];
            char msg[KB_MSG] = "";
            /* a backend without tunables runs as written when a plain --variant name asks so */
            const int runs = kb_tune_runs_on(h->opt.tune, b->tunable);
            const int nv = runs ? b->variants(c, &h->opt, vars, LIST_MAX_VARIANTS, msg) : 0;
            if (!runs || nv <= 0) {
                printf("  %-9s %-36s not_supported: %s\n", b->name, "-",
                       !runs ? "no tunables" : msg[0] ? msg : "no kernel");
                rows[bi]++;
                continue;
            }
            for (int v = 0; v < nv; v++) {
                if (!kb_variant_matches(h->variant_filter, vars[v].name)) continue;
                printf("  %-9s %-36s %s\n", b->name, vars[v].name, vars[v].detail);
                rows[bi]++;
                matched++;
            }
        }
    }
    free(vars);
    if (h->variant_filter && !matched) {
        fprintf(stderr, "kbench: --variant '%s' matched no tuned point of the selected backends (see --list-axes "
                        "without --variant)\n", h->variant_filter);
        return KB_EXIT_USAGE;
    }
    char per[256] = "";
    size_t o = 0;
    for (int bi = 0; bi < h->n_backends; bi++) {
        total += rows[bi];
        o += (size_t)snprintf(per + o, o < sizeof per ? sizeof per - o : 0, "%s%s %ld%s", o ? ", " : "",
                              h->backends[bi]->name, rows[bi],
                              kb_tune_runs_on(h->opt.tune, h->backends[bi]->tunable) ? "" : " not_supported");
    }
    printf("%d cases x %d tune points: %ld rows (%s)\n", cases->count, h->opt.tune->n, total, per);
    return 0;
}

/* Every tunable --tune names must be one some variant of the selected tunable backends
 * has, for some case (a misspelt BLOK is a usage error, not a page of not_supported
 * rows). 0, or -1 with msg. */
#define MAX_TUNABLE_NAMES 32
static int check_tunables(const kb_harness *h, const kb_case_list *cases, char *msg, size_t n) {
    char list[128] = "";
    size_t o = 0;
    int any = 0;
    for (int i = 0; i < kb_backend_count; i++)
        if (kb_backends[i]->tunable)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", kb_backends[i]->name);
    for (int bi = 0; bi < h->n_backends; bi++) any |= h->backends[bi]->tunable;
    if (!any)
        return snprintf(msg, n, "--tune: none of the selected backends has tunables (%s%s)",
                        list[0] ? list : "none of this build's", list[0] ? " have" : ""),
               -1;

    /* the names the selected variants have, as written (opt.tune unset) */
    char have[MAX_TUNABLE_NAMES][KB_TUNE_NAME_LEN];
    int nhave = 0, per_op[KB_OP_COUNT] = {0};
    kb_options as_written = h->opt;
    as_written.tune = NULL;
    kb_variant *vars = malloc(LIST_MAX_VARIANTS * sizeof *vars);
    if (!vars) return snprintf(msg, n, "out of host memory"), -1;
    for (int i = 0; i < cases->count; i++) {
        if (per_op[cases->cases[i].op]++ >= 16) continue; /* an op's tunables seldom depend on its sizes */
        for (int bi = 0; bi < h->n_backends; bi++) {
            if (!h->backends[bi]->tunable) continue;
            char why[KB_MSG];
            const int nv = h->backends[bi]->variants(&cases->cases[i], &as_written, vars, LIST_MAX_VARIANTS, why);
            for (int v = 0; v < nv; v++) {
                char text[sizeof vars[v].tunables];
                snprintf(text, sizeof text, "%s", vars[v].tunables);
                for (char *save, *tok = strtok_r(text, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                    tok[strcspn(tok, "=")] = 0;
                    int seen = 0;
                    for (int j = 0; j < nhave; j++) seen |= !strcmp(have[j], tok);
                    if (!seen && nhave < MAX_TUNABLE_NAMES) snprintf(have[nhave++], KB_TUNE_NAME_LEN, "%s", tok);
                }
            }
        }
    }
    free(vars);
    const kb_tune *t = h->opt.tune;
    for (int p = 0; p < t->n; p++)
        for (int k = 0; k < t->p[p].n; k++) {
            int seen = 0;
            for (int j = 0; j < nhave; j++) seen |= !strcmp(have[j], t->p[p].name[k]);
            if (seen) continue;
            char names[256] = "";
            o = 0;
            for (int j = 0; j < nhave && o < sizeof names; j++)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", j ? ", " : "", have[j]);
            return snprintf(msg, n, "--tune: no variant of the selected ops and backends has a tunable %s (theirs: %s)",
                            t->p[p].name[k], nhave ? names : "none"),
                   -1;
        }
    return 0;
}

static int parse_backends(const char *arg, kb_harness *h, char *msg, size_t n) {
    if (!strcmp(arg, "all")) {
        for (int b = 0; b < kb_backend_count && h->n_backends < KB_MAX_BACKENDS; b++)
            h->backends[h->n_backends++] = kb_backends[b];
        return 0;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const kb_backend *b = kb_backend_find(t);
        if (!b) return snprintf(msg, n, "unknown backend '%s' (cpu, cuda, cublaslt, vulkan)", t), -1;
        int dup = 0;
        for (int j = 0; j < h->n_backends; j++) dup |= h->backends[j] == b;
        if (!dup && h->n_backends < KB_MAX_BACKENDS) h->backends[h->n_backends++] = b;
    }
    if (!h->n_backends) return snprintf(msg, n, "--backend: no backend named in '%s'", arg), -1;
    return 0;
}

static void on_signal(int signo) { kb_harness_request_stop(signo); }

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "forward")) return kb_forward_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "falsify")) return kb_falsify_main(argc - 1, argv + 1);
    /* --help is ours; Google Benchmark would print its own usage and exit */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(kb_cli_usage, stdout);
            return 0;
        }
    if (kb_gb_init(&argc, argv) != 0) return KB_EXIT_USAGE;

    kb_cli cli;
    char msg[512];
    if (kb_cli_parse(argc, argv, &cli, msg, sizeof msg) != 0) return usage_error(msg);
    kb_set_ref_threads((int)cli.threads);
    if (cli.list == KB_LIST_OPS) return list_ops(), 0;
    if (cli.list == KB_LIST_SHAPES) return list_shapes();
    if (cli.list == KB_LIST_BACKENDS) return list_backends(&cli.opt), 0;

    kb_harness h;
    memset(&h, 0, sizeof h);
    h.variant_filter = cli.variant;
    h.opt = cli.opt;
    h.timing = cli.timing;
    h.mode = cli.mode;
    h.warmup = cli.warmup;
    h.reps = cli.reps;
    h.max_time = cli.max_time;
    h.budget_s = cli.budget_s;
    h.repeat = cli.repeat;
    h.best = cli.best;
    h.progress = cli.progress_set ? cli.progress : isatty(2);
    if (parse_backends(cli.backend, &h, msg, sizeof msg) != 0) return usage_error(msg);

    kb_case_list cases = {0};
    if (kb_cli_cases(&cli, &cases, msg, sizeof msg) != 0) return usage_error(msg);
    if (h.opt.tune && check_tunables(&h, &cases, msg, sizeof msg) != 0)
        return kb_case_list_free(&cases), usage_error(msg);
    if (cli.list == KB_LIST_AXES) {
        const int rc = list_axes(&h, &cases);
        kb_case_list_free(&cases);
        return rc;
    }
    /* a case the command line spelled out that cannot fit this host is a usage
     * error; a table row that cannot is a not_supported row */
    if (cli.shape && strchr(cli.shape, 'x')) {
        for (int i = 0; i < cases.count; i++)
            if (kb_case_check_size(&cases.cases[i], msg) != KB_OK) return kb_case_list_free(&cases), usage_error(msg);
        h.strict_sizes = 1;
    }

    kb_resume *resume = NULL;
    const char *csv_path = cli.csv;
    if (cli.resume) {
        if (!(resume = kb_resume_load(cli.resume, "--resume", msg, sizeof msg))) return kb_case_list_free(&cases), usage_error(msg);
        h.resume = resume;
        if (!csv_path) csv_path = cli.resume;
        if (cli.progress_set || isatty(2))
            fprintf(stderr, "kbench: --resume: %d rows of %s are done\n", kb_resume_rows(resume), cli.resume);
    }
    /* both files open before any reporter exists: a bad path leaves nothing behind */
    FILE *csv = NULL, *json = NULL;
    const int append = cli.resume && csv_path && !strcmp(csv_path, cli.resume);
    if (append && kb_resume_schema(resume)[0] && strcmp(kb_resume_schema(resume), KB_SCHEMA_VERSION)) {
        snprintf(msg, sizeof msg, "--resume: %s holds %s rows, this kbench writes %s: name another --csv for the rest",
                 cli.resume, kb_resume_schema(resume), KB_SCHEMA_VERSION);
        kb_resume_free(resume);
        return kb_case_list_free(&cases), usage_error(msg);
    }
    if (csv_path && !(csv = fopen(csv_path, append ? "a" : "w"))) {
        snprintf(msg, sizeof msg, "cannot write --csv file '%s'", csv_path);
        kb_resume_free(resume);
        return kb_case_list_free(&cases), usage_error(msg);
    }
    if (cli.json && !(json = fopen(cli.json, cli.resume ? "a" : "w"))) {
        snprintf(msg, sizeof msg, "cannot write --json file '%s'", cli.json);
        if (csv) fclose(csv);
        kb_resume_free(resume);
        return kb_case_list_free(&cases), usage_error(msg);
    }
    if (!cli.quiet) h.reporters[h.n_reporters++] = kb_console_reporter(stdout);
    if (csv) h.reporters[h.n_reporters++] = append ? kb_csv_reporter_append(csv) : kb_csv_reporter(csv);
    if (json) h.reporters[h.n_reporters++] = kb_jsonl_reporter(json);
    kb_run_info_fill(&h.info);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = kb_harness_run(&h, &cases);
    if (csv) fclose(csv);
    if (json) fclose(json);
    kb_gb_finish();
    if (rc < 128 && h.variant_filter && h.variants_matched == 0) {
        fprintf(stderr, "kbench: --variant '%s' matched no variant of the selected backends\n", h.variant_filter);
        rc = KB_EXIT_USAGE;
    }
    kb_case_list_free(&cases);
    kb_resume_free(resume);
    return rc;
}
