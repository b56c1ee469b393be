/* cli.h - the command line of `kbench` (single-op runs) as a pure parser: argv in,
 * a plan out, or a one-line error. It prints nothing and exits nothing, so the fuzz
 * target (tests/fuzz) drives exactly what users drive. */
#ifndef KB_CLI_H
#define KB_CLI_H

#include "bench/harness.h"
#include "bench/op.h"

/* A parameter override: one value, or a list (a sweep axis). */
#define KB_MAX_AXIS_VALUES 64
typedef struct {
    int count; /* 0: not given */
    char values[KB_MAX_AXIS_VALUES][32];
} kb_axis;

/* A --tune axis: one tunable and its values. */
typedef struct {
    char name[KB_TUNE_NAME_LEN];
    int count;
    int values[KB_MAX_AXIS_VALUES];
} kb_tune_axis;

typedef enum { KB_LIST_NONE = 0, KB_LIST_OPS, KB_LIST_SHAPES, KB_LIST_BACKENDS, KB_LIST_AXES } kb_list_what;

typedef struct {
    int help;
    kb_list_what list;
    const char *ops;     /* "all" or a comma list */
    const char *shape;   /* --shape */
    const char *table;   /* --shapes */
    const char *backend; /* "all" or a comma list */
    const char *variant;
    const char *csv, *json;
    const char *resume; /* --resume FILE.csv: skip the points it holds, append to it */
    long long seed, threads;
    int quiet, progress, progress_set;
    kb_axis axes[KB_P_COUNT]; /* --eps X, --a-type e4m3,e5m2, ... */
    /* --tune NAME=VALUES, once per tunable: the axes, and the points (their product;
     * without --tune, the points bracketed --variant names give). opt.tune points at
     * `tune` when there are points: a kb_cli is used where kb_cli_parse filled it. */
    int n_tune_axes;
    kb_tune_axis tune_axes[KB_TUNE_NAMES];
    kb_tune tune;
    /* what the harness takes as is */
    kb_options opt;
    int timing, warmup, reps, best, repeat;
    kb_time_mode mode;
    double max_time, budget_s;
} kb_cli;

/* Defaults, then argv[1..argc). Returns 0, or -1 with msg (one line, no newline).
 * The strings point into argv. */
/* A whole decimal integer in [lo, hi]: 0 and *v, or -1 (nothing else in s, no overflow). */
int kb_parse_ll(const char *s, long long lo, long long hi, long long *v);
int kb_cli_parse(int argc, char **argv, kb_cli *cli, char *msg, size_t msg_len);

/* The cases the command line names: the cartesian product of --shape/--shapes
 * rows, ops and every axis. 0, or -1 with msg. */
int kb_cli_cases(const kb_cli *cli, kb_case_list *out, char *msg, size_t msg_len);

extern const char kb_cli_usage[];

#endif
