/* report.h - one result row and the reporters that format it. The harness fills
 * every field, derived throughput included; reporters only format. The columns are
 * defined once (report.c: name, kind, getter); results/README.md documents the
 * schema. */
#ifndef KB_REPORT_H
#define KB_REPORT_H

#include "bench/kbench.h"
#include "bench/metrics.h"
#include "bench/op.h"

#include <stdio.h>

#define KB_SCHEMA_VERSION "kbench-row-3"
#define KB_SCHEMA_PREVIOUS "kbench-row-2" /* --resume reads it (no repeats column) */

/* Dispositions kept apart, as CUTLASS's profiler keeps them. */
/* KB_MEASURED: a forward pass's chained row, which no tolerance judges (drift is
 * reported, not passed or failed). */
typedef enum { KB_PASS = 0, KB_FAIL, KB_SKIPPED, KB_UNSUPPORTED, KB_ERRORED, KB_MEASURED, KB_VERDICT_COUNT } kb_verdict;
const char *kb_verdict_name(kb_verdict v);

typedef struct {
    const kb_case *c;
    const char *backend;
    const kb_device_info *dev; /* NULL when the backend is unavailable */
    kb_variant variant;
    kb_verdict verdict;
    char reason[2 * KB_MSG]; /* room for a step name plus a backend message */
    /* parity: the metrics of one output (the first that failed, else the first) */
    int have_metrics;
    const char *output; /* its tensor name */
    kb_metrics m;
    kb_tolerance tol;
    uint64_t hash; /* FNV-1a over every output's bytes, in order */
    int repeats;   /* --repeat: runs whose output hash was compared with this one (0: not asked) */
    /* timing; reps == 0 when not timed */
    const char *mode; /* "cold", "hot", "rotate" */
    int reps, rotate_copies;
    double t_med, t_min, t_max, cv; /* seconds */
    double bytes, flops;            /* the op's minimum model */
    /* derived by the harness from the above and the device's ceilings */
    double gbps, tflops, ceiling_frac;
    double bw_ceiling, flop_ceiling;
    char selection[96]; /* --best: which variants it was picked from */
    /* forward-pass rows (kbench forward): "" / -1 for single-op rows */
    int step; /* 0 the prompt, 1.. the decode steps */
    int layer;
    char node[32];
    const char *measure; /* "chained" or "isolated" */
} kb_row;

/* Run-wide facts written into every row. */
typedef struct {
    char timestamp[32];
    char git_commit[48];
    char host[64];
} kb_run_info;
void kb_run_info_fill(kb_run_info *ri);

typedef struct kb_reporter kb_reporter;
kb_reporter *kb_console_reporter(FILE *f); /* aligned table */
/* CSV (header first) and JSON Lines; each row is flushed as one write so an
 * interrupted run keeps every finished row, complete lines only. */
kb_reporter *kb_csv_reporter(FILE *f);
kb_reporter *kb_csv_reporter_append(FILE *f); /* to a file that already has the header */
kb_reporter *kb_jsonl_reporter(FILE *f);
/* A device the run uses: the console prints it in the header. */
void kb_report_device(kb_reporter *r, const char *backend, const kb_device_info *dev);
void kb_report_row(kb_reporter *r, const kb_run_info *ri, const kb_row *row);
/* Closing summary (console), then free; does not close f. wall_s: the run's wall time. */
void kb_report_end(kb_reporter *r, double wall_s);

/* The CSV header line (without newline), for tests and docs. */
const char *kb_csv_header(void);

#endif
