// gbench_shim.cc - the C API of gbench_shim.h over Google Benchmark.
//
// kbench times one case at a time (it must upload, check parity and warm up
// first), but Google Benchmark truncates --benchmark_out on every
// RunSpecifiedBenchmarks call. So the shim owns the output file: it takes
// --benchmark_out/--benchmark_out_format from argv, keeps one reporter for the
// whole run, and forwards each single-benchmark run to it.
#include "bench/gbench_shim.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

std::ofstream g_out_file;
std::unique_ptr<benchmark::BenchmarkReporter> g_file_reporter;    // --benchmark_out
std::unique_ptr<benchmark::BenchmarkReporter> g_display_reporter;  // --benchmark_format, else none
bool g_context_done = false;

// Forwards runs to the run-wide reporters; reports the context once.
class Forwarder : public benchmark::BenchmarkReporter {
  public:
    bool ReportContext(const Context &ctx) override {
        if (!g_context_done) {
            if (g_file_reporter) g_file_reporter->ReportContext(ctx);
            if (g_display_reporter) g_display_reporter->ReportContext(ctx);
            g_context_done = true;
        }
        return true;
    }
    void ReportRuns(const std::vector<Run> &runs) override {
        if (g_file_reporter) g_file_reporter->ReportRuns(runs);
        if (g_display_reporter) g_display_reporter->ReportRuns(runs);
    }
};

std::unique_ptr<benchmark::BenchmarkReporter> make_reporter(const std::string &fmt) {
    if (fmt == "json") return std::unique_ptr<benchmark::BenchmarkReporter>(new benchmark::JSONReporter);
    if (fmt == "console")
        return std::unique_ptr<benchmark::BenchmarkReporter>(
            new benchmark::ConsoleReporter(benchmark::ConsoleReporter::OO_None));
    return nullptr;
}

bool take_flag(const char *arg, const char *name, std::string *value) {
    size_t n = std::strlen(name);
    if (std::strncmp(arg, name, n) == 0 && arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    return false;
}

}  // namespace

extern "C" int kb_gb_init(int *argc, char **argv) {
    std::string out, out_format = "json", format;
    int w = 1;
    for (int i = 1; i < *argc; i++) {
        if (take_flag(argv[i], "--benchmark_out", &out) || take_flag(argv[i], "--benchmark_out_format", &out_format) ||
            take_flag(argv[i], "--benchmark_format", &format))
            continue;
        argv[w++] = argv[i];
    }
    *argc = w;
    argv[w] = nullptr;
    benchmark::Initialize(argc, argv);
    // Anything Google Benchmark did not take and that still looks like its flag is a typo.
    for (int i = 1; i < *argc; i++)
        if (std::strncmp(argv[i], "--benchmark_", 12) == 0) {
            std::fprintf(stderr, "kbench: unknown Google Benchmark flag '%s'\n", argv[i]);
            return -1;
        }
    if (!out.empty()) {
        g_file_reporter = make_reporter(out_format);
        if (!g_file_reporter) {
            std::fprintf(stderr, "kbench: --benchmark_out_format must be json or console (got '%s')\n",
                         out_format.c_str());
            return -1;
        }
        g_out_file.open(out);
        if (!g_out_file) {
            std::fprintf(stderr, "kbench: cannot write --benchmark_out file '%s'\n", out.c_str());
            return -1;
        }
        g_file_reporter->SetOutputStream(&g_out_file);
        g_file_reporter->SetErrorStream(&std::cerr);
    }
    if (!format.empty()) {
        g_display_reporter = make_reporter(format);
        if (!g_display_reporter) {
            std::fprintf(stderr, "kbench: --benchmark_format must be json or console (got '%s')\n", format.c_str());
            return -1;
        }
        // Our own table goes to stdout; Google Benchmark's display goes to stderr.
        g_display_reporter->SetOutputStream(&std::cerr);
        g_display_reporter->SetErrorStream(&std::cerr);
    }
    return 0;
}

extern "C" int kb_gb_time(const char *name, int iterations, kb_gb_sample_fn fn, void *user, double bytes,
                          double flops, double *samples, char *msg) {
    int taken = 0;
    bool failed = false;
    benchmark::ClearRegisteredBenchmarks();
    benchmark::RegisterBenchmark(name, [&](benchmark::State &state) {
        for (auto _ : state) {
            double s = fn(user, msg);
            if (s < 0) {
                failed = true;
                state.SkipWithError(msg);
                break;
            }
            state.SetIterationTime(s);
            if (taken < iterations) samples[taken++] = s;
        }
        state.SetBytesProcessed(static_cast<int64_t>(bytes * static_cast<double>(state.iterations())));
        state.counters["FLOP/s"] =
            benchmark::Counter(flops * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    })
        ->UseManualTime()
        ->Iterations(iterations)
        ->Unit(benchmark::kMicrosecond);
    Forwarder fwd;
    benchmark::RunSpecifiedBenchmarks(&fwd);
    benchmark::ClearRegisteredBenchmarks();
    return failed ? -1 : taken;
}

extern "C" void kb_gb_finish(void) {
    if (g_file_reporter) {
        if (!g_context_done) {
            // no case was timed: still write a valid, empty document
            benchmark::BenchmarkReporter::Context ctx;
            g_file_reporter->ReportContext(ctx);
        }
        g_file_reporter->Finalize();
    }
    if (g_display_reporter) g_display_reporter->Finalize();
    g_out_file.close();
    g_file_reporter.reset();
    g_display_reporter.reset();
}
