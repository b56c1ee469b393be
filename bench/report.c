/* report.c - console table, CSV and JSON Lines from the same column list. */
#include "bench/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *kb_verdict_name(kb_verdict v) {
    static const char *const names[] = {"pass", "fail", "skipped", "not_supported", "error"};
    return (unsigned)v < 5 ? names[v] : "?";
}

void kb_run_info_fill(kb_run_info *ri) {
    memset(ri, 0, sizeof *ri);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ri->timestamp, sizeof ri->timestamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gethostname(ri->host, sizeof ri->host - 1);
    /* The commit kbench was built from (CMake passes it), else "unknown". */
#ifdef KB_GIT_COMMIT
    snprintf(ri->git_commit, sizeof ri->git_commit, "%s", KB_GIT_COMMIT);
#else
    snprintf(ri->git_commit, sizeof ri->git_commit, "unknown");
#endif
}

/* ---- the column list: one place defines name, kind and value ------------ */
enum { COL_STR, COL_NUM };
#define NCOLS 66
typedef struct {
    const char *name;
    int kind;
} column;

static const column columns[NCOLS] = {
    {"schema", COL_STR},       {"timestamp", COL_STR},   {"git_commit", COL_STR},  {"host", COL_STR},
    {"device", COL_STR},       {"driver", COL_STR},      {"op", COL_STR},          {"shape", COL_STR},
    {"m", COL_NUM},            {"n", COL_NUM},           {"k", COL_NUM},           {"heads", COL_NUM},
    {"kv_heads", COL_NUM},     {"head_dim", COL_NUM},    {"kv_len", COL_NUM},      {"eps", COL_NUM},
    {"theta", COL_NUM},        {"a_type", COL_STR},      {"b_type", COL_STR},      {"out_type", COL_STR},
    {"scale_mode", COL_STR},   {"backend", COL_STR},     {"variant", COL_STR},     {"algo_id", COL_NUM},
    {"tile", COL_STR},         {"stages", COL_NUM},      {"splitk", COL_NUM},      {"reduction", COL_STR},
    {"swizzle", COL_NUM},      {"custom", COL_NUM},      {"cluster", COL_STR},     {"workspace", COL_NUM},
    {"waves", COL_NUM},        {"heuristic_rank", COL_NUM}, {"detail", COL_STR},   {"seed", COL_NUM},
    {"verdict", COL_STR},      {"reason", COL_STR},      {"max_abs", COL_NUM},     {"max_rel", COL_NUM},
    {"rel_l2", COL_NUM},       {"nmse", COL_NUM},        {"cosine", COL_NUM},      {"pearson", COL_NUM},
    {"n_elems", COL_NUM},      {"n_bad", COL_NUM},       {"n_nan", COL_NUM},       {"n_overflow", COL_NUM},
    {"n_unwritten", COL_NUM},  {"worst_err_over_tol", COL_NUM}, {"tol_rel", COL_NUM}, {"tol_acc", COL_NUM},
    {"tol_abs", COL_NUM},      {"tol_formula", COL_STR}, {"hash", COL_STR},        {"mode", COL_STR},
    {"reps", COL_NUM},         {"time_med_us", COL_NUM}, {"time_min_us", COL_NUM}, {"time_max_us", COL_NUM},
    {"cv", COL_NUM},           {"gbps", COL_NUM},        {"tflops", COL_NUM},      {"ceiling_frac", COL_NUM},
    {"bytes", COL_NUM},        {"flops", COL_NUM},
};

typedef char cell[2 * KB_MSG + 8]; /* fits the longest value: the reason */

static void put_int(cell v, int64_t x, int na_if_negative) {
    if (na_if_negative && x < 0) v[0] = 0;
    else snprintf(v, sizeof(cell), "%lld", (long long)x);
}
static void put_num(cell v, double x) {
    if (isnan(x)) v[0] = 0;
    else snprintf(v, sizeof(cell), "%.6g", x);
}
static void put_str(cell v, const char *s) { snprintf(v, sizeof(cell), "%s", s ? s : ""); }

/* Fill every column's value for a row; empty = not applicable / not measured. */
static void row_cells(const kb_run_info *ri, const kb_row *r, cell *v) {
    const kb_case *c = r->c;
    const kb_variant *a = &r->variant;
    int gemm = c->op == KB_OP_GEMM_FP8, embed = c->op == KB_OP_EMBED;
    int i = 0;
    put_str(v[i++], KB_SCHEMA_VERSION);
    put_str(v[i++], ri->timestamp);
    put_str(v[i++], ri->git_commit);
    put_str(v[i++], ri->host);
    put_str(v[i++], r->device);
    put_str(v[i++], r->driver);
    put_str(v[i++], kb_op_name(c->op));
    put_str(v[i++], c->label);
    put_int(v[i++], c->m, 0);
    put_int(v[i++], c->n, 0);
    put_int(v[i++], c->k, 0);
    put_int(v[i++], c->heads, 0);
    put_int(v[i++], c->kv_heads, 0);
    put_int(v[i++], c->head_dim, 0);
    put_int(v[i++], c->kv_len, 0);
    put_num(v[i++], c->op == KB_OP_RMSNORM ? c->eps : NAN);
    put_num(v[i++], c->op == KB_OP_ROPE_NEOX ? c->theta : NAN);
    put_str(v[i++], gemm || embed ? kb_dtype_name(c->a_type) : "");
    put_str(v[i++], gemm ? kb_dtype_name(c->b_type) : "");
    put_str(v[i++], gemm ? kb_dtype_name(c->out_type) : (c->op == KB_OP_DEQUANT_Q4K || embed ? "f32" : "f32"));
    put_str(v[i++], gemm ? kb_scale_mode_name(c->scale_mode) : "");
    put_str(v[i++], r->backend);
    put_str(v[i++], a->name);
    put_int(v[i++], a->algo_id, 1);
    put_str(v[i++], a->tile);
    put_int(v[i++], a->stages, 1);
    put_int(v[i++], a->splitk, 1);
    put_str(v[i++], a->reduction);
    put_int(v[i++], a->swizzle, 1);
    put_int(v[i++], a->custom, 1);
    put_str(v[i++], a->cluster);
    put_int(v[i++], a->workspace, 1);
    put_num(v[i++], a->waves >= 0 ? a->waves : NAN);
    put_int(v[i++], a->heuristic_rank, 1);
    put_str(v[i++], a->detail);
    put_int(v[i++], (int64_t)c->seed, 0);
    put_str(v[i++], kb_verdict_name(r->verdict));
    put_str(v[i++], r->reason);
    const kb_metrics *m = &r->m;
    int hm = r->have_metrics;
    put_num(v[i++], hm ? m->max_abs : NAN);
    put_num(v[i++], hm ? m->max_rel : NAN);
    put_num(v[i++], hm ? m->rel_l2 : NAN);
    put_num(v[i++], hm ? m->nmse : NAN);
    put_num(v[i++], hm ? m->cosine : NAN);
    put_num(v[i++], hm ? m->pearson : NAN);
    put_int(v[i++], hm ? m->n : -1, 1);
    put_int(v[i++], hm ? m->n_bad : -1, 1);
    put_int(v[i++], hm ? m->n_nan : -1, 1);
    put_int(v[i++], hm ? m->n_overflow : -1, 1);
    put_int(v[i++], hm ? m->n_unwritten : -1, 1);
    put_num(v[i++], hm ? m->worst : NAN);
    put_num(v[i++], r->tol.formula[0] ? r->tol.rel : NAN);
    put_num(v[i++], r->tol.formula[0] ? r->tol.acc : NAN);
    put_num(v[i++], r->tol.formula[0] ? r->tol.abs : NAN);
    put_str(v[i++], r->tol.formula);
    if (hm) snprintf(v[i++], sizeof(cell), "%016llx", (unsigned long long)m->hash);
    else v[i++][0] = 0;
    int timed = r->reps > 0;
    put_str(v[i++], timed ? r->mode : "");
    put_int(v[i++], timed ? r->reps : -1, 1);
    put_num(v[i++], timed ? r->t_med * 1e6 : NAN);
    put_num(v[i++], timed ? r->t_min * 1e6 : NAN);
    put_num(v[i++], timed ? r->t_max * 1e6 : NAN);
    put_num(v[i++], timed ? r->cv : NAN);
    put_num(v[i++], timed ? r->bytes / r->t_med * 1e-9 : NAN);
    put_num(v[i++], timed ? r->flops / r->t_med * 1e-12 : NAN);
    /* fraction of the ceiling: the roofline floor time over the measured median */
    double floor_t = 0;
    if (r->bw_ceiling > 0) floor_t = r->bytes / r->bw_ceiling;
    if (r->flop_ceiling > 0 && r->flops / r->flop_ceiling > floor_t) floor_t = r->flops / r->flop_ceiling;
    put_num(v[i++], timed && r->bw_ceiling > 0 ? floor_t / r->t_med : NAN);
    put_num(v[i++], r->bytes);
    put_num(v[i++], r->flops);
}

const char *kb_csv_header(void) {
    static char buf[2048];
    if (!buf[0]) {
        size_t o = 0;
        for (int i = 0; i < NCOLS; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? "," : "", columns[i].name);
    }
    return buf;
}

/* ---- reporters ---------------------------------------------------------- */
typedef enum { REP_CONSOLE, REP_CSV, REP_JSONL } rep_kind;
struct kb_reporter {
    rep_kind kind;
    FILE *f;
    int rows, header_done;
    int counts[5];
    /* console: a skipped backend's reason is printed once, not on every case */
    char skipped_seen[8][2 * KB_MSG];
    int n_skipped_seen;
};

static int console_seen(kb_reporter *rep, const char *reason) {
    for (int i = 0; i < rep->n_skipped_seen; i++)
        if (!strcmp(rep->skipped_seen[i], reason)) return 1;
    if (rep->n_skipped_seen < 8) snprintf(rep->skipped_seen[rep->n_skipped_seen++], 2 * KB_MSG, "%s", reason);
    return 0;
}

static kb_reporter *new_reporter(rep_kind k, FILE *f) {
    kb_reporter *r = calloc(1, sizeof *r);
    r->kind = k;
    r->f = f;
    return r;
}
kb_reporter *kb_console_reporter(FILE *f) { return new_reporter(REP_CONSOLE, f); }
kb_reporter *kb_csv_reporter(FILE *f) { return new_reporter(REP_CSV, f); }
kb_reporter *kb_jsonl_reporter(FILE *f) { return new_reporter(REP_JSONL, f); }

static void csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void console_row(kb_reporter *rep, FILE *f, const kb_row *r, int first) {
    if (first)
        fprintf(f, "%-11s %-22s %-8s %-24s %-13s %9s %9s %9s %9s %7s %10s %8s %8s %6s\n", "op", "shape", "backend",
                "variant", "verdict", "max_abs", "rel_l2", "err/tol", "tol_acc", "bad", "median_us", "GB/s",
                "TFLOP/s", "%ceil");
    char maxabs[16] = "-", rel[16] = "-", worst[16] = "-", tacc[16] = "-", bad[16] = "-";
    char med[16] = "-", gbs[16] = "-", tfl[16] = "-", frac[16] = "-";
    if (r->have_metrics) {
        snprintf(maxabs, sizeof maxabs, "%.2e", r->m.max_abs);
        snprintf(rel, sizeof rel, "%.2e", r->m.rel_l2);
        snprintf(worst, sizeof worst, "%.3f", r->m.worst);
        snprintf(bad, sizeof bad, "%lld", (long long)(r->m.n_bad + r->m.n_nan + r->m.n_unwritten + r->m.n_overflow));
    }
    if (r->tol.formula[0]) snprintf(tacc, sizeof tacc, "%.2e", r->tol.acc);
    if (r->reps > 0) {
        snprintf(med, sizeof med, "%.2f", r->t_med * 1e6);
        snprintf(gbs, sizeof gbs, "%.1f", r->bytes / r->t_med * 1e-9);
        snprintf(tfl, sizeof tfl, "%.3f", r->flops / r->t_med * 1e-12);
        double floor_t = r->bw_ceiling > 0 ? r->bytes / r->bw_ceiling : 0;
        if (r->flop_ceiling > 0 && r->flops / r->flop_ceiling > floor_t) floor_t = r->flops / r->flop_ceiling;
        if (floor_t > 0) snprintf(frac, sizeof frac, "%.0f%%", 100 * floor_t / r->t_med);
    }
    fprintf(f, "%-11s %-22s %-8s %-24.24s %-13s %9s %9s %9s %9s %7s %10s %8s %8s %6s\n", kb_op_name(r->c->op),
            r->c->label, r->backend, r->variant.name, kb_verdict_name(r->verdict), maxabs, rel, worst, tacc, bad, med,
            gbs, tfl, frac);
    if (r->verdict != KB_PASS && r->reason[0] && !(r->verdict == KB_SKIPPED && console_seen(rep, r->reason)))
        fprintf(f, "    %s: %s\n", kb_verdict_name(r->verdict), r->reason);
}

void kb_report_row(kb_reporter *rep, const kb_run_info *ri, const kb_row *row) {
    cell *v = calloc(NCOLS, sizeof *v);
    row_cells(ri, row, v);
    FILE *f = rep->f;
    switch (rep->kind) {
    case REP_CONSOLE: console_row(rep, f, row, rep->rows == 0); break;
    case REP_CSV:
        if (!rep->header_done) fprintf(f, "%s\n", kb_csv_header());
        rep->header_done = 1;
        for (int i = 0; i < NCOLS; i++) {
            if (i) fputc(',', f);
            csv_field(f, v[i]);
        }
        fputc('\n', f);
        break;
    case REP_JSONL:
        fputc('{', f);
        for (int i = 0; i < NCOLS; i++) {
            fprintf(f, "%s\"%s\":", i ? "," : "", columns[i].name);
            if (columns[i].kind == COL_NUM) fputs(v[i][0] ? v[i] : "null", f);
            else json_string(f, v[i]);
        }
        fputs("}\n", f);
        break;
    }
    fflush(f);
    rep->rows++;
    rep->counts[row->verdict]++;
    free(v);
}

void kb_report_end(kb_reporter *rep) {
    if (rep->kind == REP_CONSOLE)
        fprintf(rep->f, "%d rows: %d pass, %d fail, %d error, %d not_supported, %d skipped\n", rep->rows,
                rep->counts[KB_PASS], rep->counts[KB_FAIL], rep->counts[KB_ERRORED], rep->counts[KB_UNSUPPORTED],
                rep->counts[KB_SKIPPED]);
    if (rep->kind == REP_CSV && !rep->header_done) fprintf(rep->f, "%s\n", kb_csv_header());
    fflush(rep->f);
    free(rep);
}
