/* report.c - console table, CSV and JSON Lines from one column list.
 *
 * A column is a name, a kind (string or number) and a getter that formats one field
 * of the row; nothing here computes a value the harness did not put in the row. */
#include "bench/report.h"

#include "bench/kb_version.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *kb_verdict_name(kb_verdict v) {
    static const char *const names[KB_VERDICT_COUNT] = {"pass", "fail", "skipped", "not_supported", "error", "measured"};
    return (unsigned)v < KB_VERDICT_COUNT ? names[v] : "?";
}

void kb_run_info_fill(kb_run_info *ri) {
    memset(ri, 0, sizeof *ri);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ri->timestamp, sizeof ri->timestamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gethostname(ri->host, sizeof ri->host - 1);
    snprintf(ri->git_commit, sizeof ri->git_commit, "%s", kb_git_commit); /* taken at build time */
}

/* ---- the columns ------------------------------------------------------------------ */
enum { COL_STR, COL_NUM };
typedef char cell[2 * KB_MSG + 8]; /* fits the longest value: the reason */
typedef void (*getter)(const kb_run_info *ri, const kb_row *r, cell v);

typedef struct {
    const char *name;
    int kind;
    getter get;
    kb_param param; /* KB_P_COUNT: not a case parameter */
} column;

static void put_int(cell v, int64_t x) { snprintf(v, sizeof(cell), "%lld", (long long)x); }
static void put_opt_int(cell v, int64_t x) { /* -1 = not applicable */
    if (x < 0) v[0] = 0;
    else put_int(v, x);
}
static void put_num(cell v, double x) {
    if (isnan(x)) v[0] = 0;
    else snprintf(v, sizeof(cell), "%.6g", x);
}
static void put_str(cell v, const char *s) { snprintf(v, sizeof(cell), "%s", s ? s : ""); }

#define GET(name, body) \
    static void get_##name(const kb_run_info *ri, const kb_row *r, cell v) { (void)ri; (void)r; body; }
#define METRIC(name, expr) GET(name, if (r->have_metrics) put_num(v, expr); else v[0] = 0)
#define METRIC_N(name, expr) GET(name, if (r->have_metrics) put_int(v, expr); else v[0] = 0)
#define TIMED(name, expr) GET(name, if (r->reps > 0) put_num(v, expr); else v[0] = 0)

GET(schema, put_str(v, KB_SCHEMA_VERSION))
GET(timestamp, put_str(v, ri->timestamp))
GET(git_commit, put_str(v, ri->git_commit))
GET(host, put_str(v, ri->host))
GET(device, put_str(v, r->dev ? r->dev->name : ""))
GET(device_key, put_str(v, r->dev ? r->dev->key : ""))
GET(driver, put_str(v, r->dev ? r->dev->driver : ""))
GET(op, put_str(v, kb_op_name(r->c->op)))
GET(shape, put_str(v, r->c->label))
GET(backend, put_str(v, r->backend))
GET(variant, put_str(v, r->variant.name))
GET(algo_id, put_opt_int(v, r->variant.algo_id))
GET(tile, put_str(v, r->variant.tile))
GET(stages, put_opt_int(v, r->variant.stages))
GET(splitk, put_opt_int(v, r->variant.splitk))
GET(reduction, put_str(v, r->variant.reduction))
GET(swizzle, put_opt_int(v, r->variant.swizzle))
GET(custom, put_opt_int(v, r->variant.custom))
GET(cluster, put_str(v, r->variant.cluster))
GET(workspace, put_opt_int(v, r->variant.workspace))
GET(waves, put_num(v, r->variant.waves >= 0 ? r->variant.waves : NAN))
GET(heuristic_rank, put_opt_int(v, r->variant.heuristic_rank))
GET(detail, put_str(v, r->variant.detail))
GET(seed, put_int(v, (int64_t)r->c->seed))
GET(verdict, put_str(v, kb_verdict_name(r->verdict)))
GET(reason, put_str(v, r->reason))
GET(output, put_str(v, r->have_metrics ? r->output : ""))
METRIC(max_abs, r->m.max_abs)
METRIC(max_rel, r->m.max_rel)
METRIC(rel_l2, r->m.rel_l2)
METRIC(nmse, r->m.nmse)
/* 1 - cosine below 1e-6 matters (chained drift): nine digits */
GET(cosine, if (r->have_metrics) snprintf(v, sizeof(cell), "%.9g", r->m.cosine); else v[0] = 0)
GET(pearson, if (r->have_metrics) snprintf(v, sizeof(cell), "%.9g", r->m.pearson); else v[0] = 0)
METRIC_N(n_elems, r->m.n)
METRIC_N(n_bad, r->m.n_bad)
METRIC_N(n_nan, r->m.n_nan)
METRIC_N(n_overflow, r->m.n_overflow)
METRIC_N(n_unwritten, r->m.n_unwritten)
METRIC(worst_err_over_tol, r->m.worst)
GET(tol_rel, put_num(v, r->tol.formula[0] ? r->tol.rel : NAN))
GET(tol_acc, put_num(v, r->tol.formula[0] ? r->tol.acc : NAN))
GET(tol_abs, put_num(v, r->tol.formula[0] ? r->tol.abs : NAN))
GET(tol_formula, put_str(v, r->tol.formula))
GET(hash, if (r->have_metrics) snprintf(v, sizeof(cell), "%016llx", (unsigned long long)r->hash); else v[0] = 0)
GET(repeats, if (r->repeats > 0) put_int(v, r->repeats); else v[0] = 0)
GET(mode, put_str(v, r->reps > 0 ? r->mode : ""))
GET(reps, if (r->reps > 0) put_int(v, r->reps); else v[0] = 0)
GET(rotate_copies, if (r->reps > 0 && r->rotate_copies > 0) put_int(v, r->rotate_copies); else v[0] = 0)
TIMED(time_med_us, r->t_med * 1e6)
TIMED(time_min_us, r->t_min * 1e6)
TIMED(time_max_us, r->t_max * 1e6)
TIMED(cv, r->cv)
TIMED(gbps, r->gbps)
TIMED(tflops, r->tflops)
TIMED(ceiling_frac, r->ceiling_frac)
GET(bw_ceiling_gbps, put_num(v, r->bw_ceiling > 0 ? r->bw_ceiling * 1e-9 : NAN))
GET(bw_ceiling_source, put_str(v, r->dev && r->bw_ceiling > 0 ? r->dev->bw_source : ""))
GET(flop_ceiling_tflops, put_num(v, r->flop_ceiling > 0 ? r->flop_ceiling * 1e-12 : NAN))
GET(bytes, put_num(v, r->bytes))
GET(flops, put_num(v, r->flops))
GET(selection, put_str(v, r->selection))
GET(step, if (r->node[0]) put_int(v, r->step); else v[0] = 0)
GET(layer, if (r->node[0]) put_int(v, r->layer); else v[0] = 0)
GET(node, put_str(v, r->node))
GET(measure, put_str(v, r->measure))

/* a case parameter: empty unless the op reads it (its dims or its params) */
static int op_reads(const kb_case *c, kb_param p) {
    const kb_op *op = kb_ops[c->op];
    if (op->params & KB_PBIT(p)) return 1;
    for (int i = 0; i < op->n_dims; i++)
        if (op->dims[i] == p) return 1;
    return 0;
}

#define C(name, kind) {#name, kind, get_##name, KB_P_COUNT}
#define P(param, kind) {NULL, kind, NULL, param} /* named by kb_params[param].column */
static const column columns[] = {
    C(schema, COL_STR),
    C(timestamp, COL_STR),
    C(git_commit, COL_STR),
    C(host, COL_STR),
    C(device, COL_STR),
    C(device_key, COL_STR),
    C(driver, COL_STR),
    C(op, COL_STR),
    C(shape, COL_STR),
    P(KB_P_M, COL_NUM),
    P(KB_P_N, COL_NUM),
    P(KB_P_K, COL_NUM),
    P(KB_P_HEADS, COL_NUM),
    P(KB_P_KV_HEADS, COL_NUM),
    P(KB_P_HEAD_DIM, COL_NUM),
    P(KB_P_KV_LEN, COL_NUM),
    P(KB_P_EPS, COL_NUM),
    P(KB_P_THETA, COL_NUM),
    P(KB_P_MAX_POS, COL_NUM),
    P(KB_P_A_TYPE, COL_STR),
    P(KB_P_B_TYPE, COL_STR),
    P(KB_P_OUT_TYPE, COL_STR),
    P(KB_P_SCALE, COL_STR),
    P(KB_P_FLUSH, COL_NUM),
    C(backend, COL_STR),
    C(variant, COL_STR),
    C(algo_id, COL_NUM),
    C(tile, COL_STR),
    C(stages, COL_NUM),
    C(splitk, COL_NUM),
    C(reduction, COL_STR),
    C(swizzle, COL_NUM),
    C(custom, COL_NUM),
    C(cluster, COL_STR),
    C(workspace, COL_NUM),
    C(waves, COL_NUM),
    C(heuristic_rank, COL_NUM),
    C(detail, COL_STR),
    C(selection, COL_STR),
    C(seed, COL_NUM),
    C(step, COL_NUM),
    C(layer, COL_NUM),
    C(node, COL_STR),
    C(measure, COL_STR),
    C(verdict, COL_STR),
    C(reason, COL_STR),
    C(output, COL_STR),
    C(max_abs, COL_NUM),
    C(max_rel, COL_NUM),
    C(rel_l2, COL_NUM),
    C(nmse, COL_NUM),
    C(cosine, COL_NUM),
    C(pearson, COL_NUM),
    C(n_elems, COL_NUM),
    C(n_bad, COL_NUM),
    C(n_nan, COL_NUM),
    C(n_overflow, COL_NUM),
    C(n_unwritten, COL_NUM),
    C(worst_err_over_tol, COL_NUM),
    C(tol_rel, COL_NUM),
    C(tol_acc, COL_NUM),
    C(tol_abs, COL_NUM),
    C(tol_formula, COL_STR),
    C(hash, COL_STR),
    C(repeats, COL_NUM),
    C(mode, COL_STR),
    C(reps, COL_NUM),
    C(rotate_copies, COL_NUM),
    C(time_med_us, COL_NUM),
    C(time_min_us, COL_NUM),
    C(time_max_us, COL_NUM),
    C(cv, COL_NUM),
    C(gbps, COL_NUM),
    C(tflops, COL_NUM),
    C(ceiling_frac, COL_NUM),
    C(bw_ceiling_gbps, COL_NUM),
    C(bw_ceiling_source, COL_STR),
    C(flop_ceiling_tflops, COL_NUM),
    C(bytes, COL_NUM),
    C(flops, COL_NUM),
};
#undef C
#undef P
#define NCOLS ((int)(sizeof columns / sizeof columns[0]))

static const char *column_name(const column *col) { return col->name ? col->name : kb_params[col->param].column; }

static void column_value(const column *col, const kb_run_info *ri, const kb_row *r, cell v) {
    if (col->get) col->get(ri, r, v);
    else if (op_reads(r->c, col->param)) kb_param_format(r->c, col->param, v, sizeof(cell));
    else v[0] = 0;
}

const char *kb_csv_header(void) {
    static char buf[4096];
    if (!buf[0]) {
        size_t o = 0;
        for (int i = 0; i < NCOLS; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? "," : "", column_name(&columns[i]));
    }
    return buf;
}

/* ---- reporters ---------------------------------------------------------------------- */
typedef enum { REP_CONSOLE, REP_CSV, REP_JSONL } rep_kind;
struct kb_reporter {
    rep_kind kind;
    FILE *f;
    int rows, header_done;
    int counts[KB_VERDICT_COUNT];
    /* console: a skipped backend's reason is printed once, not on every case */
    char skipped_seen[8][2 * KB_MSG];
    int n_skipped_seen;
    /* CSV / JSONL: one row is built here and written with one fwrite */
    char *line;
    size_t line_len, line_cap;
};

static kb_reporter *new_reporter(rep_kind k, FILE *f) {
    kb_reporter *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->kind = k;
    r->f = f;
    return r;
}
kb_reporter *kb_console_reporter(FILE *f) { return new_reporter(REP_CONSOLE, f); }
kb_reporter *kb_csv_reporter(FILE *f) { return new_reporter(REP_CSV, f); }
kb_reporter *kb_csv_reporter_append(FILE *f) {
    kb_reporter *r = new_reporter(REP_CSV, f);
    r->header_done = 1;
    return r;
}
kb_reporter *kb_jsonl_reporter(FILE *f) { return new_reporter(REP_JSONL, f); }

static void line_put(kb_reporter *r, const char *s, size_t n) {
    if (r->line_len + n + 1 > r->line_cap) {
        size_t cap = r->line_cap ? r->line_cap : 4096;
        while (cap < r->line_len + n + 1) cap *= 2;
        char *p = realloc(r->line, cap);
        if (!p) abort();
        r->line = p;
        r->line_cap = cap;
    }
    memcpy(r->line + r->line_len, s, n);
    r->line_len += n;
}
static void line_str(kb_reporter *r, const char *s) { line_put(r, s, strlen(s)); }
static void line_chr(kb_reporter *r, char c) { line_put(r, &c, 1); }

static void csv_field(kb_reporter *r, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        line_str(r, s);
        return;
    }
    line_chr(r, '"');
    for (; *s; s++) {
        if (*s == '"') line_chr(r, '"');
        line_chr(r, *s);
    }
    line_chr(r, '"');
}

static void json_string(kb_reporter *r, const char *s) {
    line_chr(r, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            snprintf(esc, sizeof esc, "\\%c", ch);
            line_str(r, esc);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            line_str(r, esc);
        } else {
            line_chr(r, (char)ch);
        }
    }
    line_chr(r, '"');
}

static int console_seen(kb_reporter *rep, const char *reason) {
    for (int i = 0; i < rep->n_skipped_seen; i++)
        if (!strcmp(rep->skipped_seen[i], reason)) return 1;
    if (rep->n_skipped_seen < 8) snprintf(rep->skipped_seen[rep->n_skipped_seen++], 2 * KB_MSG, "%s", reason);
    return 0;
}

void kb_report_device(kb_reporter *rep, const char *backend, const kb_device_info *d) {
    if (rep->kind != REP_CONSOLE) return;
    fprintf(rep->f, "# %-8s %s; %s\n", backend, d->name, d->driver);
    if (d->bw > 0) fprintf(rep->f, "#          memory ceiling %.1f GB/s (%s)\n", d->bw * 1e-9, d->bw_source);
    if (d->launch_floor_s > 0)
        fprintf(rep->f, "#          launch floor %.2f us (%s)\n", d->launch_floor_s * 1e6, d->launch_source);
    if (d->launch_seq_s > 0)
        fprintf(rep->f, "#          back to back %.2f us a launch (%d empty kernels between two events, median of %d)\n",
                d->launch_seq_s * 1e6, KB_LAUNCH_SEQ, KB_LAUNCH_SEQ_SAMPLES);
}

static void console_row(kb_reporter *rep, FILE *f, const kb_row *r) {
    const int forward = r->node[0] != 0;
    if (rep->rows == 0)
        fprintf(f, "%-11s %-22s %-8s %-24s %-13s %9s %9s %9s %9s %7s %10s %8s %8s %6s\n", forward ? "node" : "op",
                forward ? "layer" : "shape", "backend", forward ? "measure" : "variant", "verdict", "max_abs", "rel_l2",
                "err/tol", "tol_acc", "bad", "median_us", "GB/s", "TFLOP/s", "%ceil");
    char maxabs[16] = "-", rel[16] = "-", worst[16] = "-", tacc[16] = "-", bad[24] = "-";
    char med[16] = "-", gbs[16] = "-", tfl[16] = "-", frac[16] = "-", where[32];
    if (r->have_metrics) {
        snprintf(maxabs, sizeof maxabs, "%.2e", r->m.max_abs);
        snprintf(rel, sizeof rel, "%.2e", r->m.rel_l2);
        snprintf(worst, sizeof worst, "%.3f", r->m.worst);
        snprintf(bad, sizeof bad, "%lld", (long long)(r->m.n_bad + r->m.n_nan + r->m.n_unwritten + r->m.n_overflow));
    }
    if (r->tol.formula[0]) snprintf(tacc, sizeof tacc, "%.2e", r->tol.acc);
    if (r->reps > 0) {
        snprintf(med, sizeof med, "%.2f", r->t_med * 1e6);
        snprintf(gbs, sizeof gbs, "%.1f", r->gbps);
        snprintf(tfl, sizeof tfl, "%.3f", r->tflops);
        if (r->ceiling_frac > 0) snprintf(frac, sizeof frac, "%.0f%%", 100 * r->ceiling_frac);
    }
    if (forward) snprintf(where, sizeof where, "step %d layer %d", r->step, r->layer);
    fprintf(f, "%-11s %-22s %-8s %-24.24s %-13s %9s %9s %9s %9s %7s %10s %8s %8s %6s\n",
            forward ? r->node : kb_op_name(r->c->op), forward ? where : r->c->label, r->backend,
            forward ? (r->measure ? r->measure : "") : r->variant.name, kb_verdict_name(r->verdict), maxabs, rel,
            worst, tacc, bad, med, gbs, tfl, frac);
    if (r->verdict != KB_PASS && r->verdict != KB_MEASURED && r->reason[0] &&
        !(r->verdict == KB_SKIPPED && console_seen(rep, r->reason)))
        fprintf(f, "    %s: %s\n", kb_verdict_name(r->verdict), r->reason);
    if (r->selection[0]) fprintf(f, "    selected: %s\n", r->selection);
}

void kb_report_row(kb_reporter *rep, const kb_run_info *ri, const kb_row *row) {
    FILE *f = rep->f;
    if (rep->kind == REP_CONSOLE) {
        console_row(rep, f, row);
    } else {
        static cell v;
        rep->line_len = 0;
        if (rep->kind == REP_CSV && !rep->header_done) {
            line_str(rep, kb_csv_header());
            line_chr(rep, '\n');
            rep->header_done = 1;
        }
        if (rep->kind == REP_JSONL) line_chr(rep, '{');
        for (int i = 0; i < NCOLS; i++) {
            column_value(&columns[i], ri, row, v);
            if (rep->kind == REP_CSV) {
                if (i) line_chr(rep, ',');
                csv_field(rep, v);
            } else {
                if (i) line_chr(rep, ',');
                json_string(rep, column_name(&columns[i]));
                line_chr(rep, ':');
                if (columns[i].kind == COL_NUM) line_str(rep, v[0] ? v : "null");
                else json_string(rep, v);
            }
        }
        if (rep->kind == REP_JSONL) line_chr(rep, '}');
        line_chr(rep, '\n');
        fwrite(rep->line, 1, rep->line_len, f);
    }
    fflush(f);
    rep->rows++;
    rep->counts[row->verdict]++;
}

void kb_report_end(kb_reporter *rep, double wall_s) {
    char measured[32] = "";
    if (rep->counts[KB_MEASURED]) snprintf(measured, sizeof measured, ", %d measured", rep->counts[KB_MEASURED]);
    if (rep->kind == REP_CONSOLE)
        fprintf(rep->f, "%d rows: %d pass, %d fail, %d error, %d not_supported, %d skipped%s; wall time %.1f s\n",
                rep->rows, rep->counts[KB_PASS], rep->counts[KB_FAIL], rep->counts[KB_ERRORED],
                rep->counts[KB_UNSUPPORTED], rep->counts[KB_SKIPPED], measured, wall_s);
    if (rep->kind == REP_CSV && !rep->header_done) fprintf(rep->f, "%s\n", kb_csv_header());
    fflush(rep->f);
    free(rep->line);
    free(rep);
}
