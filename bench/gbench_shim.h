/* gbench_shim.h - Google Benchmark behind a C API (the one C++ file is
 * gbench_shim.cc). Each timed case is one Google Benchmark benchmark with
 * manual time from the backend's device timer, so --benchmark_out=FILE
 * --benchmark_out_format=json gives a file tools/compare.py-style diffing
 * (Google Benchmark's compare.py) understands. */
#ifndef KB_GBENCH_SHIM_H
#define KB_GBENCH_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Takes the --benchmark_* arguments out of argv (Google Benchmark parses them)
 * and opens --benchmark_out once for the whole run. Returns 0, or -1 with a
 * message on stderr for a bad --benchmark_* flag. */
int kb_gb_init(int *argc, char **argv);

/* One sample: the seconds the backend's timer measured, or < 0 on error (with
 * msg[256] filled). */
typedef double (*kb_gb_sample_fn)(void *user, char *msg);

/* Run `iterations` samples of `name` through Google Benchmark; the samples land
 * in samples[0..iterations). bytes/flops per sample become Google Benchmark's
 * bytes_per_second and FLOP/s counters. Returns the number of samples taken, or
 * -1 when a sample failed (msg says why). */
int kb_gb_time(const char *name, int iterations, kb_gb_sample_fn fn, void *user, double bytes, double flops,
               double *samples, char *msg);

/* Close the Google Benchmark output file (valid JSON/CSV only after this). */
void kb_gb_finish(void);

#ifdef __cplusplus
}
#endif
#endif
