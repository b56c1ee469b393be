/* main.c - the kbench command line: options -> a plan of cases -> the harness.
 * Exit codes: 0 every row passed (skipped / not_supported rows allowed),
 * 1 a row failed parity, 2 bad usage or input, 3 a row errored (none failed). */
#include "bench/gbench_shim.h"
#include "bench/harness.h"
#include "bench/ops.h"
#include "bench/shapes.h"
#include "ref/ref.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: kbench [options]\n"
    "Runs each op on each backend against a scalar fp64 CPU reference and reports\n"
    "error metrics, the tolerance, the verdict and the timing per row.\n"
    "\n"
    "What to run:\n"
    "  --op OP[,OP]|all        ops (see --list-ops; default all)\n"
    "  --shape SPEC            a table name (smoke, qwen2.5-7b), a leading dimension\n"
    "                          (3584: gemm M=K=3584, dequant M, rmsnorm/embed hidden,\n"
    "                          rope/attention heads*head_dim), or one explicit case\n"
    "                          (gemm MxNxK, dequant MxK, rmsnorm NxK, rope NxHEADSxD,\n"
    "                          attention NxKV_LENxHEADSxKV_HEADSxD, embed NxK[xVOCAB])\n"
    "  --shapes NAME|FILE      the shape table (default qwen2.5-7b)\n"
    "  --backend LIST|all      cpu,cuda,cublaslt,vulkan (default all)\n"
    "  --variant LIST          variant names, or prefixes ending in '*'\n"
    "  --seed N                input seed (default 1), written in every row\n"
    "Case parameters (override the table):\n"
    "  --eps X --theta X --max-pos N --a-type T --b-type T --out-type T --scale MODE\n"
    "                          (types f32 f16 bf16 e4m3 e5m2 q4_k q6_k; MODE tensor,\n"
    "                          outer, vec128, blk128)\n"
    "Backends:\n"
    "  --algo heuristic|exhaustive|best   cuBLASLt algorithms (default heuristic)\n"
    "  --algo-cap N            most algorithms per case for exhaustive (default 256)\n"
    "  --fast-accum on|off|both  cuBLASLt FAST_ACCUM (default both)\n"
    "  --vk-device N           Vulkan device index (default: first discrete GPU)\n"
    "  --threads N             reference and cpu-backend threads (default all cores)\n"
    "Timing:\n"
    "  --cold | --hot          flush caches before every sample (default) or not\n"
    "  --reps N                most samples per row (default 30; fewer when a row's\n"
    "                          samples would pass --max-time, never fewer than 3)\n"
    "  --max-time S            seconds of samples per row (default 1.0)\n"
    "  --warmup N              untimed runs first (default 2; fewer once they pass\n"
    "                          a tenth of --max-time)\n"
    "  --no-timing             parity only\n"
    "  --benchmark_out=FILE --benchmark_out_format=json|console --benchmark_format=...\n"
    "                          Google Benchmark's own output (compare.py reads it)\n"
    "Output:\n"
    "  --csv FILE              CSV rows (schema: results/README.md)\n"
    "  --json FILE             JSON Lines rows, same columns\n"
    "  --quiet                 no console table;  --progress  progress on stderr\n"
    "Information:\n"
    "  --list-ops --list-shapes --list-backends --help\n"
    "Exit codes: 0 all rows pass (skipped/not_supported allowed), 1 a row failed\n"
    "parity, 2 bad usage or input, 3 a row errored and none failed.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "kbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see kbench --help)\n");
    return KB_EXIT_USAGE;
}

static int parse_int(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static int parse_double(const char *s, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end) return -1;
    *v = x;
    return 0;
}

static int is_leading_spec(const char *s) {
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    return *s != 0;
}

static int is_explicit_spec(const char *s) {
    if (!isdigit((unsigned char)*s) && *s != '-') return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != 'x' && *p != '-') return 0;
    return 1;
}

static void list_ops(void) {
    for (int i = 0; i < KB_OP_COUNT; i++) printf("%-12s %s\n", kb_ops[i].name, kb_ops[i].summary);
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
            printf("%-14s %4d rows:", name, l.count);
            for (int o = 0; o < KB_OP_COUNT; o++)
                if (per_op[o]) printf(" %s %d", kb_ops[o].name, per_op[o]);
            printf("   (%s)\n", path);
        } else {
            printf("%-14s unreadable: %s\n", name, msg);
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
        if (b->probe(opt, why) == KB_OK)
            printf("%-9s available    %s; driver %s   [%s]\n", b->name, b->device_name(), b->driver_version(),
                   b->description);
        else
            printf("%-9s unavailable  %s   [%s]\n", b->name, why, b->description);
        if (strcmp(b->name, "vulkan") == 0 && kb_vulkan_list_devices) {
            char buf[2048] = "";
            if (kb_vulkan_list_devices(buf, sizeof buf) > 0) printf("%s", buf);
        }
    }
}

/* Parameter overrides from the command line, applied to every case. */
typedef struct {
    int has_eps, has_theta, has_maxpos, has_a, has_b, has_out, has_scale;
    double eps, theta;
    long long max_pos;
    kb_dtype a, b, out;
    kb_scale_mode scale;
} overrides;

static void apply_overrides(const overrides *o, kb_case *c) {
    if (o->has_eps) c->eps = o->eps;
    if (o->has_theta) c->theta = o->theta;
    if (o->has_maxpos) c->max_pos = o->max_pos;
    if (o->has_a && (c->op == KB_OP_GEMM_FP8 || c->op == KB_OP_EMBED)) c->a_type = o->a;
    if (o->has_b) c->b_type = o->b;
    if (o->has_out) c->out_type = o->out;
    if (o->has_scale) c->scale_mode = o->scale;
}

int main(int argc, char **argv) {
    /* --help is ours; Google Benchmark would print its own usage and exit */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    if (kb_gb_init(&argc, argv) != 0) return KB_EXIT_USAGE;

    kb_harness h;
    memset(&h, 0, sizeof h);
    h.opt.algo = "heuristic";
    h.opt.fast_accum = -1;
    h.opt.vk_device = -1;
    h.opt.cache_dir = NULL;
    h.cold = 1;
    h.timing = 1;
    h.warmup = 2;
    h.reps = 30;
    h.max_time = 1.0;
    h.progress = isatty(2);

    const char *ops_arg = "all", *shape_arg = NULL, *table_arg = NULL, *backend_arg = "all";
    const char *csv_path = NULL, *json_path = NULL;
    long long seed = 1, threads = 0;
    int quiet = 0, want_list = 0;
    overrides ov;
    memset(&ov, 0, sizeof ov);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                                                  \
    do {                                                                                                              \
        if (!v) return usage_error("%s needs a value", a);                                                            \
        i++;                                                                                                          \
    } while (0)
        long long n;
        if (!strcmp(a, "--list-ops")) want_list = 1;
        else if (!strcmp(a, "--list-shapes")) want_list = 2;
        else if (!strcmp(a, "--list-backends")) want_list = 3;
        else if (!strcmp(a, "--op")) { NEED_VALUE(); ops_arg = v; }
        else if (!strcmp(a, "--shape")) { NEED_VALUE(); shape_arg = v; }
        else if (!strcmp(a, "--shapes")) { NEED_VALUE(); table_arg = v; }
        else if (!strcmp(a, "--backend")) { NEED_VALUE(); backend_arg = v; }
        else if (!strcmp(a, "--variant")) { NEED_VALUE(); h.variant_filter = v; }
        else if (!strcmp(a, "--seed")) {
            NEED_VALUE();
            if (parse_int(v, 0, LLONG_MAX, &seed)) return usage_error("--seed: '%s' is not a non-negative integer", v);
        } else if (!strcmp(a, "--threads")) {
            NEED_VALUE();
            if (parse_int(v, 1, 1024, &threads)) return usage_error("--threads: '%s' is not a thread count", v);
        } else if (!strcmp(a, "--reps")) {
            NEED_VALUE();
            if (parse_int(v, 3, 1000000, &n)) return usage_error("--reps: '%s' is not an integer >= 3", v);
            h.reps = (int)n;
        } else if (!strcmp(a, "--warmup")) {
            NEED_VALUE();
            if (parse_int(v, 0, 1000000, &n)) return usage_error("--warmup: '%s' is not an integer >= 0", v);
            h.warmup = (int)n;
        } else if (!strcmp(a, "--max-time")) {
            NEED_VALUE();
            if (parse_double(v, &h.max_time) || !(h.max_time > 0)) return usage_error("--max-time: '%s' is not > 0", v);
        } else if (!strcmp(a, "--cold")) h.cold = 1;
        else if (!strcmp(a, "--hot")) h.cold = 0;
        else if (!strcmp(a, "--no-timing")) h.timing = 0;
        else if (!strcmp(a, "--csv")) { NEED_VALUE(); csv_path = v; }
        else if (!strcmp(a, "--json")) { NEED_VALUE(); json_path = v; }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--progress")) h.progress = 1;
        else if (!strcmp(a, "--algo")) {
            NEED_VALUE();
            if (strcmp(v, "heuristic") && strcmp(v, "exhaustive") && strcmp(v, "best"))
                return usage_error("--algo: '%s' is not heuristic, exhaustive or best", v);
            h.opt.algo = v;
        } else if (!strcmp(a, "--algo-cap")) {
            NEED_VALUE();
            if (parse_int(v, 1, 100000, &n)) return usage_error("--algo-cap: '%s' is not a positive integer", v);
            h.opt.algo_cap = (int)n;
        } else if (!strcmp(a, "--fast-accum")) {
            NEED_VALUE();
            if (!strcmp(v, "on")) h.opt.fast_accum = 1;
            else if (!strcmp(v, "off")) h.opt.fast_accum = 0;
            else if (!strcmp(v, "both")) h.opt.fast_accum = -1;
            else return usage_error("--fast-accum: '%s' is not on, off or both", v);
        } else if (!strcmp(a, "--vk-device")) {
            NEED_VALUE();
            if (parse_int(v, 0, 64, &n)) return usage_error("--vk-device: '%s' is not a device index", v);
            h.opt.vk_device = (int)n;
        } else if (!strcmp(a, "--eps")) {
            NEED_VALUE();
            if (parse_double(v, &ov.eps)) return usage_error("--eps: '%s' is not a number", v);
            if (!(ov.eps > 0)) return usage_error("--eps must be > 0 (got %s)", v);
            ov.has_eps = 1;
        } else if (!strcmp(a, "--theta")) {
            NEED_VALUE();
            if (parse_double(v, &ov.theta)) return usage_error("--theta: '%s' is not a number", v);
            if (!(ov.theta > 0)) return usage_error("--theta must be > 0 (got %s)", v);
            ov.has_theta = 1;
        } else if (!strcmp(a, "--max-pos")) {
            NEED_VALUE();
            if (parse_int(v, 1, 2147483647LL, &ov.max_pos)) return usage_error("--max-pos: '%s' is not a position count", v);
            ov.has_maxpos = 1;
        } else if (!strcmp(a, "--a-type") || !strcmp(a, "--b-type") || !strcmp(a, "--out-type")) {
            NEED_VALUE();
            kb_dtype t;
            if (kb_dtype_parse(v, &t)) return usage_error("unknown type '%s'", v);
            if (a[2] == 'a') ov.a = t, ov.has_a = 1;
            else if (a[2] == 'b') ov.b = t, ov.has_b = 1;
            else ov.out = t, ov.has_out = 1;
        } else if (!strcmp(a, "--scale")) {
            NEED_VALUE();
            int found = 0;
            for (int s = 0; s < KB_SCALE_COUNT; s++)
                if (!strcmp(v, kb_scale_mode_name((kb_scale_mode)s))) ov.scale = (kb_scale_mode)s, found = 1;
            if (!found) return usage_error("--scale: '%s' is not tensor, outer, vec128 or blk128", v);
            ov.has_scale = 1;
        } else {
            return usage_error("unknown option '%s'", a);
        }
#undef NEED_VALUE
    }
    kb_set_ref_threads((int)threads);

    if (want_list == 1) { list_ops(); return 0; }
    if (want_list == 2) return list_shapes();
    if (want_list == 3) { list_backends(&h.opt); return 0; }

    /* ops */
    int want_ops[KB_OP_COUNT] = {0}, n_ops = 0;
    if (!strcmp(ops_arg, "all")) {
        for (int o = 0; o < KB_OP_COUNT; o++) want_ops[o] = 1;
        n_ops = KB_OP_COUNT;
    } else {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", ops_arg);
        for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            const kb_op *op = kb_op_find(t);
            if (!op) return usage_error("unknown op '%s' (see --list-ops)", t);
            if (!want_ops[op->id]) n_ops++;
            want_ops[op->id] = 1;
        }
        if (!n_ops) return usage_error("--op: no op named in '%s'", ops_arg);
    }

    /* backends */
    if (!strcmp(backend_arg, "all")) {
        for (int b = 0; b < kb_backend_count; b++) h.backends[h.n_backends++] = kb_backends[b];
    } else {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", backend_arg);
        for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            const kb_backend *b = kb_backend_find(t);
            if (!b) return usage_error("unknown backend '%s' (cpu, cuda, cublaslt, vulkan)", t);
            int dup = 0;
            for (int j = 0; j < h.n_backends; j++) dup |= h.backends[j] == b;
            if (!dup) h.backends[h.n_backends++] = b;
        }
        if (!h.n_backends) return usage_error("--backend: no backend named in '%s'", backend_arg);
    }

    /* cases */
    char msg[KB_MSG], path[PATH_MAX];
    kb_case_list table = {0}, cases = {0};
    const char *table_name = table_arg ? table_arg : "qwen2.5-7b";
    if (shape_arg && !is_leading_spec(shape_arg) && is_explicit_spec(shape_arg)) {
        for (int o = 0; o < KB_OP_COUNT; o++) {
            if (!want_ops[o]) continue;
            kb_case c;
            memset(&c, 0, sizeof c);
            c.op = (kb_op_id)o;
            kb_case_defaults(&c);
            if (kb_shape_parse_explicit(c.op, shape_arg, &c, msg) != 0) return usage_error("%s", msg);
            kb_case_list_add(&cases, &c);
        }
    } else {
        int leading = shape_arg && is_leading_spec(shape_arg);
        if (shape_arg && !leading) table_name = shape_arg; /* --shape smoke */
        if (kb_shapes_resolve(table_name, path, sizeof path, msg) != 0) return usage_error("%s", msg);
        if (kb_shapes_load(path, want_ops, &table, msg) != 0) return usage_error("%s", msg);
        long long lead = 0;
        if (leading && parse_int(shape_arg, 1, LLONG_MAX, &lead)) return usage_error("malformed shape '%s'", shape_arg);
        for (int i = 0; i < table.count; i++)
            if (!leading || kb_shape_matches_leading(&table.cases[i], lead)) kb_case_list_add(&cases, &table.cases[i]);
        if (!cases.count) {
            fprintf(stderr, "kbench: no rows of table '%s' match --op %s%s%s (see --list-shapes)\n", table_name, ops_arg,
                    shape_arg ? " --shape " : "", shape_arg ? shape_arg : "");
            return KB_EXIT_USAGE;
        }
    }
    for (int i = 0; i < cases.count; i++) {
        kb_case *c = &cases.cases[i];
        apply_overrides(&ov, c);
        c->seed = (uint64_t)seed;
        if (kb_ops[c->op].validate(c, msg) != KB_OK) return usage_error("%s", msg);
        kb_shape_format(c, c->label, sizeof c->label);
    }

    /* reporters */
    FILE *csv = NULL, *json = NULL;
    if (!quiet) h.reporters[h.n_reporters++] = kb_console_reporter(stdout);
    if (csv_path) {
        if (!(csv = fopen(csv_path, "w"))) return usage_error("cannot write --csv file '%s'", csv_path);
        h.reporters[h.n_reporters++] = kb_csv_reporter(csv);
    }
    if (json_path) {
        if (!(json = fopen(json_path, "w"))) return usage_error("cannot write --json file '%s'", json_path);
        h.reporters[h.n_reporters++] = kb_jsonl_reporter(json);
    }
    kb_run_info_fill(&h.info);

    int rc = kb_harness_run(&h, &cases);
    for (int i = 0; i < h.n_reporters; i++) kb_report_end(h.reporters[i]);
    if (csv) fclose(csv);
    if (json) fclose(json);
    kb_gb_finish();
    if (h.variant_filter && h.variants_matched == 0) {
        fprintf(stderr, "kbench: --variant '%s' matched no variant of the selected backends\n", h.variant_filter);
        rc = KB_EXIT_USAGE;
    }
    kb_case_list_free(&table);
    kb_case_list_free(&cases);
    return rc;
}
