/* harness.h - the case loop: generate, reference, then for every backend and
 * variant: upload, poison, run, download, judge, time, report. Written once. */
#ifndef KB_HARNESS_H
#define KB_HARNESS_H

#include "bench/kbench.h"
#include "bench/report.h"
#include "bench/shapes.h"

#define KB_MAX_REPORTERS 4

typedef struct {
    const kb_backend *backends[8];
    int n_backends;
    const char *variant_filter; /* comma list of names or prefixes ending in '*', NULL = all */
    kb_options opt;
    int cold;         /* 1: flush caches before every sample */
    int timing;       /* 0: parity only */
    int warmup;       /* untimed runs before the samples */
    int reps;         /* most samples per row */
    double max_time;  /* seconds of samples per row before reps is cut (never below 3) */
    int progress;     /* progress lines on stderr */
    kb_reporter *reporters[KB_MAX_REPORTERS];
    int n_reporters;
    kb_run_info info;
    int variants_matched; /* out: rows whose variant matched the filter */
} kb_harness;

/* Exit codes (documented in the README and --help). */
enum { KB_EXIT_PASS = 0, KB_EXIT_FAIL = 1, KB_EXIT_USAGE = 2, KB_EXIT_ERROR = 3 };

/* Run every case on every backend; returns an exit code: 0 every row passed
 * (skipped / not_supported rows allowed), 1 a row failed parity, 3 a row was an
 * error and none failed. */
int kb_harness_run(kb_harness *h, const kb_case_list *cases);

#endif
