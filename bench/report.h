/* report.h - one result row and the reporters that format it. A reporter only
 * formats rows: adding a column means touching kb_row and the column list in
 * report.c, nothing else. Schema: results/README.md. */
#ifndef KB_REPORT_H
#define KB_REPORT_H

#include "bench/kbench.h"
#include "bench/metrics.h"
#include "bench/ops.h"

#include <stdio.h>

#define KB_SCHEMA_VERSION "kbench-row-1"

/* Dispositions kept apart, as CUTLASS's profiler keeps them. */
typedef enum { KB_PASS = 0, KB_FAIL, KB_SKIPPED, KB_UNSUPPORTED, KB_ERRORED } kb_verdict;
const char *kb_verdict_name(kb_verdict v);

typedef struct {
    const kb_case *c;
    const char *backend;
    const char *device;
    const char *driver;
    kb_variant variant;
    kb_verdict verdict;
    char reason[2 * KB_MSG]; /* room for a step name plus a backend message */
    int have_metrics;
    kb_metrics m;
    kb_tolerance tol;
    /* timing; reps == 0 when not timed */
    const char *mode; /* "cold" or "hot" */
    int reps;
    double t_med, t_min, t_max, cv; /* seconds */
    double bytes, flops;            /* the op's minimum model */
    double bw_ceiling, flop_ceiling;
} kb_row;

/* Run-wide facts written into every row. */
typedef struct {
    char timestamp[32];
    char git_commit[48];
    char host[64];
} kb_run_info;
void kb_run_info_fill(kb_run_info *ri);

typedef struct kb_reporter kb_reporter;
/* Console table to `f` (stdout). */
kb_reporter *kb_console_reporter(FILE *f);
/* CSV (header first) and JSON Lines; rows are flushed as they are written so an
 * interrupted run keeps every finished row. */
kb_reporter *kb_csv_reporter(FILE *f);
kb_reporter *kb_jsonl_reporter(FILE *f);
void kb_report_row(kb_reporter *r, const kb_run_info *ri, const kb_row *row);
void kb_report_end(kb_reporter *r); /* summary line (console), frees; does not close f */

/* The CSV header line (without newline), for tests and docs. */
const char *kb_csv_header(void);

#endif
