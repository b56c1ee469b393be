/* harness.h - the case loop: generate, reference, then for every backend and
 * variant: upload, poison, prepare, enqueue, wait, download, judge, time, report.
 * Written once; the forward pass (bench/forward.c) reuses its pieces. */
#ifndef KB_HARNESS_H
#define KB_HARNESS_H

#include "bench/kbench.h"
#include "bench/report.h"
#include "bench/resume.h"
#include "bench/shapes.h"

#define KB_MAX_REPORTERS 4
#define KB_MAX_BACKENDS 8

typedef enum { KB_MODE_COLD = 0, KB_MODE_HOT, KB_MODE_ROTATE } kb_time_mode;
const char *kb_time_mode_name(kb_time_mode m);

typedef struct {
    const kb_backend *backends[KB_MAX_BACKENDS];
    int n_backends;
    const char *variant_filter; /* comma list of names or prefixes ending in '*', NULL = all */
    kb_options opt;
    int timing;        /* 0: parity only */
    kb_time_mode mode; /* cold: caches flushed before every sample; hot: back to back;
                          rotate: back to back over copies that outgrow the cache */
    int warmup;        /* untimed runs before the samples */
    int reps;          /* most samples per row */
    double max_time;   /* seconds of samples per row before reps is cut (never below 3) */
    double budget_s;   /* whole run: rows after this many seconds are skipped (0: none) */
    int best;          /* report only the fastest passing variant per case and backend */
    int repeat;        /* runs per variant whose output hashes must agree (0/1: one run) */
    int strict_sizes;  /* a case a device cannot hold is a usage error (exit 2), not a row */
    const kb_resume *resume; /* --resume: points already written are skipped */
    int progress;      /* progress lines on stderr */
    kb_reporter *reporters[KB_MAX_REPORTERS];
    int n_reporters;
    kb_run_info info;
    int variants_matched; /* out: rows whose variant matched the filter */
} kb_harness;

/* Exit codes (documented in the README and --help). */
enum { KB_EXIT_PASS = 0, KB_EXIT_FAIL = 1, KB_EXIT_USAGE = 2, KB_EXIT_ERROR = 3, KB_EXIT_INCOMPLETE = 4 };

/* Run every case on every backend, then close the reporters; returns an exit code:
 * 0 every row passed (skipped / not_supported rows allowed), 1 a row failed parity,
 * 3 a row was an error and none failed, 4 the run's budget ran out first (--resume
 * continues), 128 + the signal when SIGINT/SIGTERM stopped it (every finished row
 * is written, complete lines only). */
int kb_harness_run(kb_harness *h, const kb_case_list *cases);

/* Set from a signal handler: finish the current step and stop. */
void kb_harness_request_stop(int signo);
int kb_harness_stopped(void); /* the signal number, or 0 */

/* ---- pieces the forward pass shares ------------------------------------------------ */
/* Judge every output of an op against its reference: the row's metrics are those
 * of the first output that fails (else the first), its hash covers all outputs. */
typedef struct {
    const kb_case *c;
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT]; /* inputs then outputs, host data */
    kb_ref_out ref[KB_MAX_OUT];
} kb_case_data;
/* Do the case's sizes fit 64-bit arithmetic and this host's memory? KB_OK or
 * KB_ERROR with the reason. */
int kb_case_check_size(const kb_case *c, char *msg);
/* Sizes, host buffers, generated inputs and the reference; KB_OK or KB_ERROR (msg). */
int kb_case_data_make(kb_case_data *d, const kb_case *c, int generate, char *msg);
void kb_case_data_free(kb_case_data *d);
void kb_judge(const kb_case_data *d, double u_acc, kb_row *row);
/* kb_judge; with_hash 0 leaves row->hash to the caller (kb_hash_start on the outputs) */
void kb_judge_ex(const kb_case_data *d, double u_acc, int with_hash, kb_row *row);
/* The row's derived throughput from its timing and the device's ceilings. */
void kb_row_derive(kb_row *row);

#endif
