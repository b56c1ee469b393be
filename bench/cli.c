/* cli.c - kbench's single-op command line: parse (kb_cli_parse) and the plan of
 * cases it names (kb_cli_cases). Pure: no printing, no exits. */
#include "bench/cli.h"

#include "bench/shapes.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char kb_cli_usage[] =
    "usage: kbench [options]                       single ops against the fp64 reference\n"
    "       kbench forward [options]               a whole decoder (kbench forward --help)\n"
    "       kbench falsify [options]               stages A-E of a divergence hunt (--help)\n"
    "Runs each op on each backend against a scalar fp64 CPU reference and reports\n"
    "error metrics, the tolerance, the verdict and the timing per row.\n"
    "\n"
    "What to run:\n"
    "  --op OP[,OP]|all        ops (see --list-ops; default all)\n"
    "  --shape SPEC            a table name (smoke, qwen2.5-7b), a leading dimension\n"
    "                          (3584: gemm M=K=3584, dequant M, rmsnorm/embed hidden,\n"
    "                          rope/attention heads*head_dim), or one explicit case in\n"
    "                          the op's form (--list-ops: gemm MxNxK, rmsnorm NxK, ...);\n"
    "                          a dimension may be a list (1,16,512) or a range A:B:*F\n"
    "                          (geometric) / A:B:+S: --shape 3584x1:4096:*2x3584\n"
    "  --shapes NAME|FILE      the shape table (default qwen2.5-7b)\n"
    "  --backend LIST|all      cpu,cuda,cublaslt,vulkan (default all)\n"
    "  --variant LIST          variant names (a name also selects its --tune points),\n"
    "                          prefixes ending in '*', or tuned names V[NAME=value,...]\n"
    "                          (beside a tuned name, a name or prefix means the\n"
    "                          variants as written)\n"
    "  --seed N                input seed (default 1), written in every row\n"
    "Case parameters (override the table; a comma list is a sweep axis: one row per\n"
    "combination, applied to the ops that read the parameter):\n"
    "  --eps X --theta X --max-pos N --a-type T --b-type T --out-type T --scale MODE\n"
    "  --flush 0|1             (types f32 f16 bf16 e4m3 e5m2 q4_k q6_k; MODE tensor,\n"
    "                          outer, vec128, blk128)\n"
    "Kernel tunables (sweep axes too: one row per case, variant and point):\n"
    "  --tune NAME=VALUES      run every variant with NAME set to each value instead of\n"
    "                          its own (cuda: the kernels' -D options BLOCK, ITEMS, WARPS,\n"
    "                          NB, UNROLL, NT, LDHINT, RING, PER_SM, KPW...; vulkan: BLOCK,\n"
    "                          the workgroup size of rmsnorm and the element-wise ops, and\n"
    "                          ROWS, SGS of gemm_fp8 gemv_sg); values a list or a range\n"
    "                          (BLOCK=32:1024:*2); once per tunable, the\n"
    "                          points are their product (at most 64). Variant V at a\n"
    "                          point is named V[NAME=value,...]: --variant and --resume\n"
    "                          match it, --variant 'V[BLOCK=128]' alone runs that point.\n"
    "                          A point a variant cannot take (a tunable it lacks, a value\n"
    "                          out of its range or the device's) is a not_supported row\n"
    "                          saying why; a backend without tunables gets one a case\n"
    "Backends:\n"
    "  --algo heuristic|exhaustive|best   cuBLASLt algorithms (default heuristic;\n"
    "                          best = heuristic + --best)\n"
    "  --algo-cap N            most algorithms per case for exhaustive (default 256)\n"
    "  --fast-accum on|off|both  cuBLASLt FAST_ACCUM (default both)\n"
    "  --vk-device N           Vulkan device index (default: first discrete GPU)\n"
    "  --threads N             reference and cpu-backend threads (default all cores)\n"
    "Timing:\n"
    "  --mode cold|hot|rotate  cold: caches flushed before every sample (default);\n"
    "                          hot: back to back; rotate: back to back over copies of\n"
    "                          the tensors that outgrow the cache, replayed as one CUDA\n"
    "                          graph / command buffer (--cold/--hot/--rotate)\n"
    "  --reps N                most samples per row (default 30; fewer when a row's\n"
    "                          samples would pass --max-time, never fewer than 3)\n"
    "  --max-time S            seconds of samples per row (default 1.0)\n"
    "  --warmup N              untimed runs first (default 2; fewer once they pass\n"
    "                          a tenth of --max-time)\n"
    "  --no-timing             parity only\n"
    "  --best                  per case and backend, only the fastest variant that\n"
    "                          passed (failing rows are always reported)\n"
    "  --repeat N              run each variant N times on freshly poisoned outputs: a\n"
    "                          different output hash in any run fails the row\n"
    "                          (nondeterministic; column repeats)\n"
    "  --budget S              stop starting cases after S seconds (exit 4)\n"
    "  --resume FILE.csv       skip the points (case, backend, variant) FILE already holds\n"
    "                          and append the rest to it (the --csv file unless given)\n"
    "  --benchmark_out=FILE --benchmark_out_format=json|console --benchmark_format=...\n"
    "                          Google Benchmark's own output (compare.py reads it)\n"
    "Output:\n"
    "  --csv FILE              CSV rows (schema: results/README.md)\n"
    "  --json FILE             JSON Lines rows, same columns\n"
    "  --quiet                 no console table;  --progress  progress on stderr\n"
    "Information:\n"
    "  --list-ops --list-shapes --list-backends --list-axes --help\n"
    "  --list-axes             print the cases (points) the options name, and how many;\n"
    "                          with --tune, every row each case will have (no device)\n"
    "Exit codes: 0 all rows pass (skipped/not_supported allowed), 1 a row failed\n"
    "parity, 2 bad usage or input, 3 a row errored and none failed, 4 the --budget ran\n"
    "out, 128+N stopped by signal N (every finished row is written).\n";

int kb_parse_ll(const char *s, long long lo, long long hi, long long *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static int parse_real(const char *s, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || x != x) return -1;
    *v = x;
    return 0;
}

/* "--max-pos" -> the parameter max_pos */
static int option_param(const char *opt, kb_param *p) {
    char name[32];
    if (strncmp(opt, "--", 2) != 0 || strlen(opt + 2) >= sizeof name) return -1;
    snprintf(name, sizeof name, "%s", opt + 2);
    for (char *c = name; *c; c++)
        if (*c == '-') *c = '_';
    if (!kb_param_find(name, p)) return -1;
    /* sizes come from --shape; the rest are options */
    return kb_params[*p].kind == KB_PK_INT && *p != KB_P_MAX_POS ? -1 : 0;
}

/* A comma list into an axis; every value must parse for the parameter. */
static int parse_axis(const char *opt, kb_param p, const char *v, kb_axis *ax, char *msg, size_t n) {
    ax->count = 0;
    const char *s = v;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len >= sizeof ax->values[0]) return kb_failn(msg, n, "%s: bad value in '%s'", opt, v);
        if (ax->count == KB_MAX_AXIS_VALUES) return kb_failn(msg, n, "%s: more than %d values", opt, KB_MAX_AXIS_VALUES);
        char *dst = ax->values[ax->count++];
        memcpy(dst, s, len);
        dst[len] = 0;
        kb_case probe;
        memset(&probe, 0, sizeof probe);
        if (kb_param_parse(&probe, p, dst) != 0) {
            const kb_param_kind k = kb_params[p].kind;
            if (k == KB_PK_DTYPE) return kb_failn(msg, n, "unknown type '%s'", dst);
            if (k == KB_PK_SCALE) return kb_failn(msg, n, "%s: '%s' is not tensor, outer, vec128 or blk128", opt, dst);
            if (k == KB_PK_BOOL) return kb_failn(msg, n, "%s: '%s' is not 0 or 1", opt, dst);
            return kb_failn(msg, n, "%s: '%s' is not a number", opt, dst);
        }
        if ((p == KB_P_EPS && !(probe.eps > 0)) || (p == KB_P_THETA && !(probe.theta > 0)))
            return kb_failn(msg, n, "%s must be > 0 (got %s)", opt, dst);
        if (p == KB_P_MAX_POS && (probe.max_pos < 1 || probe.max_pos > 2147483647LL))
            return kb_failn(msg, n, "%s: '%s' is not a position count", opt, dst);
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

static int expand_values(const char *what, const char *part, const char *text, long long *vals, int *n, int max,
                         char *msg, size_t msg_len);

/* --tune NAME=VALUES: one axis of a kernel tunable (kbench.h), values as a --shape
 * dimension writes them (128,256,512 or 32:1024:*2). */
static int parse_tune_axis(kb_cli *c, const char *v, char *msg, size_t n) {
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return kb_failn(msg, n, "--tune: '%s' is not NAME=VALUES (e.g. --tune BLOCK=128,256,512)", v);
    const size_t len = (size_t)(eq - v);
    if (!kb_tune_name_ok(v, len))
        return kb_failn(msg, n, "--tune: '%.*s' is not a tunable name (upper case, as the kernels' -D options: BLOCK, "
                                "ITEMS, WARPS)", (int)(len < 64 ? len : 64), v);
    if (c->n_tune_axes == KB_TUNE_NAMES) return kb_failn(msg, n, "--tune: more than %d tunables", KB_TUNE_NAMES);
    for (int a = 0; a < c->n_tune_axes; a++)
        if (strlen(c->tune_axes[a].name) == len && !strncmp(c->tune_axes[a].name, v, len))
            return kb_failn(msg, n, "--tune: %s given twice (one --tune per tunable, its values a list)",
                            c->tune_axes[a].name);
    kb_tune_axis *ax = &c->tune_axes[c->n_tune_axes];
    memcpy(ax->name, v, len);
    ax->name[len] = 0;
    char what[KB_TUNE_NAME_LEN + 16];
    snprintf(what, sizeof what, "--tune %s", ax->name);
    long long vals[KB_MAX_AXIS_VALUES];
    int count = 0;
    if (expand_values(what, "list", eq + 1, vals, &count, KB_MAX_AXIS_VALUES, msg, n)) return -1;
    for (int i = 0; i < count; i++) {
        if (vals[i] < 0 || vals[i] > KB_TUNE_MAX)
            return kb_failn(msg, n, "--tune %s: %lld is out of range (0 to %d)", ax->name, vals[i], KB_TUNE_MAX);
        for (int j = 0; j < i; j++)
            if (vals[j] == vals[i]) return kb_failn(msg, n, "--tune %s: %lld is given twice", ax->name, vals[i]);
        ax->values[i] = (int)vals[i];
    }
    ax->count = count;
    c->n_tune_axes++;
    return 0;
}

/* The points: the product of the --tune axes, or without them, the points of the
 * bracketed --variant names ("v2_b256_i4[BLOCK=128]" runs that point alone). */
static int tune_points(kb_cli *c, char *msg, size_t n) {
    kb_tune *t = &c->tune;
    t->n = 0;
    if (c->n_tune_axes) {
        long long total = 1;
        for (int a = 0; a < c->n_tune_axes; a++) total *= c->tune_axes[a].count;
        if (total > KB_TUNE_POINTS)
            return kb_failn(msg, n, "--tune: %lld points (the product of the axes), at most %d", total, KB_TUNE_POINTS);
        int idx[KB_TUNE_NAMES] = {0};
        for (;;) {
            kb_tune_point *p = &t->p[t->n++];
            memset(p, 0, sizeof *p);
            for (int a = 0; a < c->n_tune_axes; a++)
                kb_tune_set(p, c->tune_axes[a].name, c->tune_axes[a].values[idx[a]]);
            int a = c->n_tune_axes - 1; /* odometer, the last axis fastest */
            for (; a >= 0; a--) {
                if (++idx[a] < c->tune_axes[a].count) break;
                idx[a] = 0;
            }
            if (a < 0) break;
        }
    } else if (c->variant && strchr(c->variant, '[')) {
        const char *s = c->variant;
        char item[KB_MSG], base[64], why[KB_MSG];
        int got, plain = 0;
        while ((got = kb_variant_item(&s, item, sizeof item)) > 0) {
            kb_tune_point p;
            if (!strchr(item, '[')) { /* a plain name or prefix beside tuned ones: as written */
                if (!plain++ && t->n < KB_TUNE_POINTS) memset(&t->p[t->n++], 0, sizeof t->p[0]);
                continue;
            }
            if (kb_tune_split(item, base, sizeof base, &p, why)) return kb_failn(msg, n, "--variant: %s", why);
            int seen = 0;
            for (int i = 0; i < t->n; i++) seen |= kb_tune_equal(&t->p[i], &p);
            if (seen) continue;
            if (t->n == KB_TUNE_POINTS) return kb_failn(msg, n, "--variant: more than %d points", KB_TUNE_POINTS);
            t->p[t->n++] = p;
        }
        if (got < 0)
            return kb_failn(msg, n, "--variant: '%s' is malformed (NAME, PREFIX* or NAME[T=V,...], comma-separated)",
                            c->variant);
    }
    c->opt.tune = t->n ? t : NULL;
    return 0;
}

int kb_cli_parse(int argc, char **argv, kb_cli *c, char *msg, size_t n) {
    memset(c, 0, sizeof *c);
    c->ops = "all";
    c->backend = "all";
    c->seed = 1;
    c->opt.algo = "heuristic";
    c->opt.fast_accum = -1;
    c->opt.vk_device = -1;
    c->timing = 1;
    c->warmup = 2;
    c->reps = 30;
    c->max_time = 1.0;
    c->mode = KB_MODE_COLD;
    msg[0] = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        kb_param p;
#define NEED_VALUE()                                                   \
    do {                                                               \
        if (!v) return kb_failn(msg, n, "%s needs a value", a);            \
        i++;                                                           \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) c->help = 1;
        else if (!strcmp(a, "--list-ops")) c->list = KB_LIST_OPS;
        else if (!strcmp(a, "--list-shapes")) c->list = KB_LIST_SHAPES;
        else if (!strcmp(a, "--list-backends")) c->list = KB_LIST_BACKENDS;
        else if (!strcmp(a, "--list-axes") || !strcmp(a, "--dry-run")) c->list = KB_LIST_AXES;
        else if (!strcmp(a, "--op")) { NEED_VALUE(); c->ops = v; }
        else if (!strcmp(a, "--shape")) { NEED_VALUE(); c->shape = v; }
        else if (!strcmp(a, "--shapes")) { NEED_VALUE(); c->table = v; }
        else if (!strcmp(a, "--backend")) { NEED_VALUE(); c->backend = v; }
        else if (!strcmp(a, "--variant")) { NEED_VALUE(); c->variant = v; }
        else if (!strcmp(a, "--csv")) { NEED_VALUE(); c->csv = v; }
        else if (!strcmp(a, "--json")) { NEED_VALUE(); c->json = v; }
        else if (!strcmp(a, "--resume")) { NEED_VALUE(); c->resume = v; }
        else if (!strcmp(a, "--seed")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 0, LLONG_MAX, &c->seed)) return kb_failn(msg, n, "--seed: '%s' is not a non-negative integer", v);
        } else if (!strcmp(a, "--threads")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 1, 1024, &c->threads)) return kb_failn(msg, n, "--threads: '%s' is not a thread count", v);
        } else if (!strcmp(a, "--reps")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 3, 1000000, &x)) return kb_failn(msg, n, "--reps: '%s' is not an integer >= 3", v);
            c->reps = (int)x;
        } else if (!strcmp(a, "--warmup")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 0, 1000000, &x)) return kb_failn(msg, n, "--warmup: '%s' is not an integer >= 0", v);
            c->warmup = (int)x;
        } else if (!strcmp(a, "--max-time")) {
            NEED_VALUE();
            if (parse_real(v, &c->max_time) || !(c->max_time > 0) || c->max_time > 1e6)
                return kb_failn(msg, n, "--max-time: '%s' is not a number of seconds > 0", v);
        } else if (!strcmp(a, "--repeat")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 1, 100, &x)) return kb_failn(msg, n, "--repeat: '%s' is not 1..100", v);
            c->repeat = (int)x;
        } else if (!strcmp(a, "--budget")) {
            NEED_VALUE();
            if (parse_real(v, &c->budget_s) || !(c->budget_s > 0))
                return kb_failn(msg, n, "--budget: '%s' is not a number of seconds > 0", v);
        } else if (!strcmp(a, "--cold")) c->mode = KB_MODE_COLD;
        else if (!strcmp(a, "--hot")) c->mode = KB_MODE_HOT;
        else if (!strcmp(a, "--rotate")) c->mode = KB_MODE_ROTATE;
        else if (!strcmp(a, "--mode")) {
            NEED_VALUE();
            if (!strcmp(v, "cold")) c->mode = KB_MODE_COLD;
            else if (!strcmp(v, "hot")) c->mode = KB_MODE_HOT;
            else if (!strcmp(v, "rotate")) c->mode = KB_MODE_ROTATE;
            else return kb_failn(msg, n, "--mode: '%s' is not cold, hot or rotate", v);
        } else if (!strcmp(a, "--no-timing")) c->timing = 0;
        else if (!strcmp(a, "--best")) c->best = 1;
        else if (!strcmp(a, "--quiet")) c->quiet = 1;
        else if (!strcmp(a, "--progress")) c->progress = c->progress_set = 1;
        else if (!strcmp(a, "--algo")) {
            NEED_VALUE();
            if (!strcmp(v, "best")) c->best = 1, c->opt.algo = "heuristic";
            else if (!strcmp(v, "heuristic") || !strcmp(v, "exhaustive")) c->opt.algo = v;
            else return kb_failn(msg, n, "--algo: '%s' is not heuristic, exhaustive or best", v);
        } else if (!strcmp(a, "--algo-cap")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 1, 100000, &x)) return kb_failn(msg, n, "--algo-cap: '%s' is not a positive integer", v);
            c->opt.algo_cap = (int)x;
        } else if (!strcmp(a, "--fast-accum")) {
            NEED_VALUE();
            if (!strcmp(v, "on")) c->opt.fast_accum = 1;
            else if (!strcmp(v, "off")) c->opt.fast_accum = 0;
            else if (!strcmp(v, "both")) c->opt.fast_accum = -1;
            else return kb_failn(msg, n, "--fast-accum: '%s' is not on, off or both", v);
        } else if (!strcmp(a, "--vk-device")) {
            NEED_VALUE();
            if (kb_parse_ll(v, 0, 64, &x)) return kb_failn(msg, n, "--vk-device: '%s' is not a device index", v);
            c->opt.vk_device = (int)x;
        } else if (!strcmp(a, "--tune")) {
            NEED_VALUE();
            if (parse_tune_axis(c, v, msg, n) != 0) return -1;
        } else if (option_param(a, &p) == 0) {
            NEED_VALUE();
            if (parse_axis(a, p, v, &c->axes[p], msg, n) != 0) return -1;
        } else {
            return kb_failn(msg, n, "unknown option '%s'", a);
        }
#undef NEED_VALUE
    }
    const char *tv = getenv("KB_TEST_VARIANTS");
    c->opt.test_variants = tv && !strcmp(tv, "1");
    return tune_points(c, msg, n);
}

/* ---- the plan ------------------------------------------------------------------------- */
static int is_number(const char *s) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    return 1;
}

/* "MxNxK" of numbers, lists and ranges: an explicit case (or a sweep of them), not a
 * table name */
static int is_explicit(const char *s) {
    if (!isdigit((unsigned char)*s) && *s != '-') return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("x-,:*+", *p)) return 0;
    return 1;
}

/* A list of integers as a --shape dimension or a --tune axis writes it: "N", a list
 * "A,B,C", or ranges "A:B:*F" (A, A*F, ... while <= B) or "A:B:+S" (A, A+S, ...), "A:B"
 * stepping by 1. Values appended to vals; -1 with msg when malformed (`what` names the
 * whole, e.g. "shape '3584x9:1'", `part` the piece, e.g. "dimension") or longer than max. */
static int expand_values(const char *what, const char *part, const char *text, long long *vals, int *n, int max,
                         char *msg, size_t msg_len) {
    char buf[128];
    if (strlen(text) >= sizeof buf) return kb_failn(msg, msg_len, "malformed %s (%s '%s')", what, part, text);
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        long long a, b, step = 1;
        int geometric = 0;
        if (!colon) {
            if (kb_parse_ll(item, LLONG_MIN, LLONG_MAX, &a))
                return kb_failn(msg, msg_len, "malformed %s (%s '%s')", what, part, text);
            if (*n == max) return kb_failn(msg, msg_len, "%s: more than %d values in a %s", what, max, part);
            vals[(*n)++] = a;
            continue;
        }
        *colon = 0;
        char *second = colon + 1, *third = strchr(second, ':');
        if (third) *third++ = 0;
        if (kb_parse_ll(item, 1, LLONG_MAX, &a) || kb_parse_ll(second, 1, LLONG_MAX, &b) || b < a)
            return kb_failn(msg, msg_len, "malformed range in '%s' (A:B[:*F|:+S] with 1 <= A <= B)", text);
        if (third) {
            if ((third[0] != '*' && third[0] != '+') || kb_parse_ll(third + 1, 1, LLONG_MAX, &step) ||
                (third[0] == '*' && step < 2))
                return kb_failn(msg, msg_len, "malformed step in '%s' (*F with F >= 2, or +S with S >= 1)", text);
            geometric = third[0] == '*';
        }
        for (long long v = a; v <= b;) {
            if (*n == max) return kb_failn(msg, msg_len, "%s: more than %d values in a %s", what, max, part);
            vals[(*n)++] = v;
            if (geometric ? v > LLONG_MAX / step : v > LLONG_MAX - step) break;
            v = geometric ? v * step : v + step;
        }
    }
    if (*n == 0) return kb_failn(msg, msg_len, "malformed %s (%s '%s')", what, part, text);
    return 0;
}

/* Every explicit "AxBxC" a swept --shape names, into specs (each < 128 chars). */
#define MAX_SHAPE_POINTS 4096
static int expand_shape(const char *shape, char (*specs)[128], int *count, char *msg, size_t msg_len) {
    char buf[512];
    if (strlen(shape) >= sizeof buf) return kb_failn(msg, msg_len, "malformed shape '%s'", shape);
    snprintf(buf, sizeof buf, "%s", shape);
    long long vals[KB_MAX_DIMS][KB_MAX_AXIS_VALUES];
    int nvals[KB_MAX_DIMS] = {0}, ndims = 0;
    char *p = buf;
    for (;;) { /* split on 'x' */
        char *x = strchr(p, 'x');
        if (x) *x = 0;
        if (ndims == KB_MAX_DIMS || !*p) return kb_failn(msg, msg_len, "malformed shape '%s'", shape);
        char what[sizeof buf + 16];
        snprintf(what, sizeof what, "shape '%s'", shape);
        if (expand_values(what, "dimension", p, vals[ndims], &nvals[ndims], KB_MAX_AXIS_VALUES, msg, msg_len))
            return -1;
        ndims++;
        if (!x) break;
        p = x + 1;
    }
    int idx[KB_MAX_DIMS] = {0};
    *count = 0;
    for (;;) {
        if (*count == MAX_SHAPE_POINTS) return kb_failn(msg, msg_len, "shape sweep: more than %d shapes", MAX_SHAPE_POINTS);
        size_t o = 0;
        for (int d = 0; d < ndims; d++)
            o += (size_t)snprintf(specs[*count] + o, 128 - o, "%s%lld", d ? "x" : "", vals[d][idx[d]]);
        (*count)++;
        int d = ndims - 1;
        for (; d >= 0; d--) {
            if (++idx[d] < nvals[d]) break;
            idx[d] = 0;
        }
        if (d < 0) return 0;
    }
}

static int op_reads(const kb_op *op, kb_param p) {
    if (op->params & KB_PBIT(p)) return 1;
    for (int i = 0; i < op->n_dims; i++)
        if (op->dims[i] == p) return 1;
    return 0;
}

/* Every combination of the axes an op reads, applied to `base`. */
static int expand_axes(const kb_cli *cli, const kb_case *base, kb_case_list *out, char *msg, size_t n) {
    const kb_op *op = kb_ops[base->op];
    int idx[KB_P_COUNT] = {0};
    for (;;) {
        kb_case c = *base;
        for (int p = 0; p < KB_P_COUNT; p++)
            if (cli->axes[p].count && op_reads(op, (kb_param)p)) kb_param_parse(&c, (kb_param)p, cli->axes[p].values[idx[p]]);
        c.seed = (uint64_t)cli->seed;
        kb_case_label(&c);
        char why[KB_MSG];
        if (op->validate(&c, why) != KB_OK) return kb_failn(msg, n, "%s", why);
        if (out->count >= 1000000) return kb_failn(msg, n, "more than 1000000 cases");
        kb_case_list_add(out, &c);
        int p = 0; /* odometer over the axes this op reads */
        for (; p < KB_P_COUNT; p++) {
            if (!cli->axes[p].count || !op_reads(op, (kb_param)p)) continue;
            if (++idx[p] < cli->axes[p].count) break;
            idx[p] = 0;
        }
        if (p == KB_P_COUNT) return 0;
    }
}

int kb_cli_cases(const kb_cli *cli, kb_case_list *out, char *msg, size_t n) {
    int want[KB_OP_COUNT] = {0}, n_ops = 0;
    if (!strcmp(cli->ops, "all")) {
        for (int o = 0; o < KB_OP_COUNT; o++) want[o] = 1;
        n_ops = KB_OP_COUNT;
    } else {
        char buf[512];
        if (strlen(cli->ops) >= sizeof buf) return kb_failn(msg, n, "--op: list too long");
        snprintf(buf, sizeof buf, "%s", cli->ops);
        for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            kb_op_id id;
            if (kb_op_lookup(t, &id) != 0) return kb_failn(msg, n, "unknown op '%s' (see --list-ops)", t);
            if (!want[id]) n_ops++;
            want[id] = 1;
        }
        if (!n_ops) return kb_failn(msg, n, "--op: no op named in '%s'", cli->ops);
    }

    kb_case_list base = {0};
    char why[KB_MSG], path[PATH_MAX];
    int rc = 0;
    if (cli->shape && !is_number(cli->shape) && is_explicit(cli->shape)) {
        char(*specs)[128] = malloc(sizeof(char[128]) * MAX_SHAPE_POINTS);
        int nspecs = 0;
        if (!specs) return kb_failn(msg, n, "out of memory");
        if (expand_shape(cli->shape, specs, &nspecs, msg, n) != 0) {
            free(specs);
            rc = -1;
            goto done;
        }
        for (int o = 0; o < KB_OP_COUNT && rc == 0; o++) {
            if (!want[o]) continue;
            for (int i = 0; i < nspecs; i++) {
                kb_case c;
                kb_case_init(&c, (kb_op_id)o);
                if (kb_case_parse_shape(&c, specs[i], why) != 0) {
                    rc = kb_failn(msg, n, "%s", nspecs == 1 ? why : why);
                    break;
                }
                kb_case_list_add(&base, &c);
            }
        }
        free(specs);
        if (rc) goto done;
    } else {
        const int leading = cli->shape && is_number(cli->shape);
        const char *table = cli->shape && !leading ? cli->shape : cli->table ? cli->table : "qwen2.5-7b";
        kb_case_list rows = {0};
        if (kb_shapes_resolve(table, path, sizeof path, why) != 0 || kb_shapes_load(path, want, &rows, why) != 0) {
            kb_case_list_free(&rows);
            rc = kb_failn(msg, n, "%s", why);
            goto done;
        }
        long long lead = 0;
        if (leading && kb_parse_ll(cli->shape, 1, LLONG_MAX, &lead)) {
            kb_case_list_free(&rows);
            rc = kb_failn(msg, n, "malformed shape '%s'", cli->shape);
            goto done;
        }
        for (int i = 0; i < rows.count; i++)
            if (!leading || kb_ops[rows.cases[i].op]->matches_leading(&rows.cases[i], lead))
                kb_case_list_add(&base, &rows.cases[i]);
        kb_case_list_free(&rows);
        if (!base.count) {
            rc = kb_failn(msg, n, "no rows of table '%s' match --op %s%s%s (see --list-shapes)", table, cli->ops,
                      cli->shape ? " --shape " : "", cli->shape ? cli->shape : "");
            goto done;
        }
    }
    for (int i = 0; i < base.count && rc == 0; i++) rc = expand_axes(cli, &base.cases[i], out, msg, n);
done:
    kb_case_list_free(&base);
    return rc;
}
