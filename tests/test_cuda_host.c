/* test_cuda_host.c - the cuda and cublaslt backends on a machine without a GPU.
 *
 * Default mode: FNV-1a and the cubin cache key, CUDA include discovery, the cache
 * directory rules, a compile through the cache, the variant lists, the fp8 encoder the
 * quantization kernels use (fp8.cuh, compiled here as C) against ref/formats.c, the
 * launch planning of every op (grids that cover every output element, int32 and
 * shared-memory limits, alignment, the generic test variant), cuBLASLt's device-side
 * scale reorder plan, the driver loader (the toolkit's stub resolves every symbol) and
 * the probe's reason without a driver.
 * Modes (tests/cuda.cmake sets the environment):
 *   stub      KB_CUDA_LIBCUDA = the toolkit's stub libcuda (cuInit fails): the probe
 *             says why through a real worker; malformed requests to a worker are
 *             answered with errors, never a crash.
 *   noworker  KB_CUDA_WORKER names no program: a clear reason.
 *   fake      KB_CUDA_LIBCUDA = tests/fake_libcuda.c: both fronts end to end (memory,
 *             views, prepare, enqueue, record, run_timed, release and free in any
 *             order, handles checked, a sticky fault and reset, a killed worker). */
#include "bench/op.h"
#include "kernels/cuda/cublaslt_host.h"
#include "kernels/cuda/cuda_driver.h"
#include "kernels/cuda/cuda_ipc.h"
#include "kernels/cuda/cuda_ops.h"
#include "ref/ref.h"
#include "kernels/cuda/fp8.cuh"
#include "kernels/cuda/nvrtc_build.h"
#include "ref/formats.h"

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern const kb_backend kb_backend_cuda, kb_backend_cublaslt;
void kbcu_decode_splits(const kb_case *c, int warps, int kpw, int sm_count, int *splits, int *chunk);
void kbcu_decode_splits_v2(const kb_case *c, int kt, int sm_count, int *splits, int *chunk);
void kbcu_decode_splits_v3(const kb_case *c, int warps, int per_sm, int sm_count, int *splits, int *chunk);
int64_t kbcu_decode_v3_smem(int warps, int stages, int hd);
int64_t kbcu_gemv_v5_smem(int warps, int ring, int nt);
int kbcu_decode_v3_per_sm(int warps, int64_t smem, int smem_optin);
int kbcu_decode_v4_group(int splits);

#include "tests/kb_check.h"

static int skipped;

static void skip(const char *why) {
    skipped++;
    printf("SKIP %s\n", why);
}

static int finish(void) {
    printf("%d passed, %d failed (%d skipped)\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

/* ---- hashing ---- */
static void test_fnv(void) {
    /* published FNV-1a 64 test vectors (Fowler/Noll/Vo reference test suite) */
    CHECK(kbcu_fnv1a(KBCU_FNV_OFFSET, "", 0) == 0xcbf29ce484222325ull, "fnv(\"\")");
    CHECK(kbcu_fnv1a(KBCU_FNV_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cull, "fnv(\"a\")");
    CHECK(kbcu_fnv1a(KBCU_FNV_OFFSET, "foobar", 6) == 0x85944171f73967e8ull, "fnv(\"foobar\")");

    /* the key is FNV-1a over "name\0text\0" of every embedded .cuh header, then
     * "src\0opts\0arch\0nvrtc M.m\0" */
    uint64_t want = KBCU_FNV_OFFSET;
    int nhdr = 0;
    for (int i = 0; i < kbcu_source_count; i++) {
        const char *nm = kbcu_sources[i].name, *tx = kbcu_sources[i].text;
        size_t len = strlen(nm);
        if (len > 4 && strcmp(nm + len - 4, ".cuh") == 0) {
            want = kbcu_fnv1a(want, nm, len + 1);
            want = kbcu_fnv1a(want, tx, strlen(tx) + 1);
            nhdr++;
        }
    }
    CHECK(nhdr >= 5 && nhdr <= KBCU_MAX_HEADERS, "%d headers embedded (q4k, q6k, fp8, fp8_quant, floatio), at most %d",
          nhdr, KBCU_MAX_HEADERS);
    const char bytes[] = "x\0-DA=1\0sm_90\0nvrtc 13.0";
    want = kbcu_fnv1a(want, bytes, sizeof bytes); /* sizeof keeps the final 0 */
    uint64_t k = kbcu_cache_key("x", "-DA=1", "sm_90", 13, 0);
    CHECK(k == want, "cache key layout: %016llx vs %016llx", (unsigned long long)k, (unsigned long long)want);
    CHECK(k == kbcu_cache_key("x", "-DA=1", "sm_90", 13, 0), "cache key is deterministic");
    CHECK(k != kbcu_cache_key("y", "-DA=1", "sm_90", 13, 0), "source changes the key");
    CHECK(k != kbcu_cache_key("x", "-DA=2", "sm_90", 13, 0), "options change the key");
    CHECK(k != kbcu_cache_key("x", "-DA=1", "sm_89", 13, 0), "arch changes the key");
    CHECK(k != kbcu_cache_key("x", "-DA=1", "sm_90", 13, 1), "NVRTC version changes the key");
    CHECK(kbcu_cache_key("ab", "c", "sm_90", 13, 0) != kbcu_cache_key("a", "bc", "sm_90", 13, 0),
          "fields are separated");
}

/* ---- include discovery ---- */
static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
}

static void test_include(const char *tmp) {
    char empty[256], good[256], goodinc[256], hdr[300], out[1024], msg[KB_MSG];
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    snprintf(good, sizeof good, "%s/toolkit", tmp);
    snprintf(goodinc, sizeof goodinc, "%s/toolkit/include", tmp);
    snprintf(hdr, sizeof hdr, "%s/cuda_fp16.h", goodinc);
    mkdir(empty, 0755);
    mkdir(good, 0755);
    mkdir(goodinc, 0755);
    touch(hdr);

    const char *c1[] = {NULL, "", empty, goodinc};
    CHECK(kbcu_find_include(c1, 4, out, sizeof out, msg) == KB_OK && strcmp(out, goodinc) == 0,
          "finds the directory with cuda_fp16.h (got %s)", out);
    const char *c2[] = {empty, "/nonexistent/kbench"};
    int rc = kbcu_find_include(c2, 2, out, sizeof out, msg);
    CHECK(rc == KB_ERROR, "no headers: KB_ERROR");
    CHECK(strstr(msg, "CUDA headers not found") && strstr(msg, "CUDA_HOME") && strstr(msg, empty) &&
              strstr(msg, "/nonexistent/kbench"),
          "the error says what and where: %s", msg);
    CHECK(kbcu_find_include(NULL, 0, out, sizeof out, msg) == KB_ERROR && strstr(msg, "nothing"), "no candidates: %s",
          msg);

    /* CUDA_HOME wins over everything else */
    char *old = getenv("CUDA_HOME") ? strdup(getenv("CUDA_HOME")) : NULL;
    setenv("CUDA_HOME", good, 1);
    CHECK(kbcu_cuda_include(out, sizeof out, msg) == KB_OK && strcmp(out, goodinc) == 0, "CUDA_HOME/include: %s", out);
    if (old) setenv("CUDA_HOME", old, 1);
    else unsetenv("CUDA_HOME");
    free(old);
}

/* ---- cache directory ---- */
static void test_cache_dir(void) {
    char out[1024];
    CHECK(kbcu_cache_dir("", out, sizeof out) == 0, "\"\" disables the cache");
    CHECK(kbcu_cache_dir("/x/y", out, sizeof out) == 1 && strcmp(out, "/x/y") == 0, "explicit dir");
    char *xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(kbcu_cache_dir(NULL, out, sizeof out) == 1 && strcmp(out, "/xdg/kbench") == 0, "XDG: %s", out);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/h", 1);
    CHECK(kbcu_cache_dir(NULL, out, sizeof out) == 1 && strcmp(out, "/h/.cache/kbench") == 0, "HOME: %s", out);
    unsetenv("HOME");
    CHECK(kbcu_cache_dir(NULL, out, sizeof out) == 0, "no HOME, no XDG: no cache");
    if (xdg) setenv("XDG_CACHE_HOME", xdg, 1);
    if (home) setenv("HOME", home, 1);
    free(xdg);
    free(home);
}

/* ---- the compile cache round trip (NVRTC runs here, no GPU needed) ---- */
static void test_cache_roundtrip(const char *tmp) {
    char dir[512], inc[1024], msg[KB_MSG];
    snprintf(dir, sizeof dir, "%s/cache/deep", tmp);
    if (kbcu_cuda_include(inc, sizeof inc, msg) != KB_OK) inc[0] = 0;
    const char *src = "extern \"C\" __global__ void k(float *y) { y[threadIdx.x] = 2.0f * FACTOR; }\n";
    kbcu_binary a, b;
    int rc = kbcu_compile("cache_test.cu", src, "-DFACTOR=3", "sm_90", inc, dir, &a, msg);
    CHECK(rc == KB_OK && !a.from_cache && a.size > 0, "first compile: %s", rc == KB_OK ? "ok" : msg);
    rc = kbcu_compile("cache_test.cu", src, "-DFACTOR=3", "sm_90", inc, dir, &b, msg);
    CHECK(rc == KB_OK && b.from_cache && b.size == a.size && a.image && b.image &&
              memcmp(a.image, b.image, a.size) == 0,
          "second compile comes from the cache, same bytes");
    CHECK(strstr(b.cache_path, "cache_test-") && strstr(b.cache_path, ".cubin"), "cache file name: %s", b.cache_path);
    free(a.image);
    free(b.image);
    /* the NVRTC compile test fails on a non-empty log: make sure warnings land there */
    rc = kbcu_compile("warn.cu", "extern \"C\" __global__ void k(float *y) { int unused; y[0] = 1.0f; }\n", "", "sm_90",
                      inc, NULL, &a, msg);
    CHECK(rc == KB_OK && strstr(a.log, "unused") != NULL, "warnings reach the log: '%s'", a.log);
    free(a.image);
    rc = kbcu_compile("bad.cu", "this is not CUDA", "", "sm_90", inc, NULL, &a, msg);
    CHECK(rc == KB_ERROR && strstr(msg, "bad.cu"), "a compile error names the source: %s", msg);
    free(a.image);
}

/* ---- variants ---- */
static void test_variants(void) {
    kb_variant v[64];
    char msg[KB_MSG];
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    for (int op = 0; op < KB_OP_COUNT; op++) {
        kb_case c;
        kb_case_init(&c, (kb_op_id)op);
        const int n = kb_backend_cuda.variants(&c, &opt, v, 64, msg);
        CHECK(n >= 1, "%s has a variant (got %d)", kbcu_op_name((kb_op_id)op), n);
        for (int i = 0; i < n; i++) {
            CHECK(!v[i].test_only && strncmp(v[i].name, "test_", 5) != 0,
                  "test variant %s listed without test_variants", v[i].name);
            CHECK(strstr(v[i].detail, "-D") != NULL, "detail has the -D options: %s", v[i].detail);
            /* fp32, except the fp8 tensor-core steps of MMA8=1 (2^-10/sqrt(K), gemm_fp8.c) on a
             * device not probed here (sm 0) */
            const double u_acc = strstr(v[i].detail, "-DMMA8=1") ? 0x1p-10 / sqrt((double)(c.k > 0 ? c.k : 1)) : 0;
            CHECK(fabs(v[i].acc_unit_roundoff - u_acc) <= 1e-6 * u_acc, "%s: accumulation unit roundoff %g, want %g",
                  v[i].name, v[i].acc_unit_roundoff, u_acc);
            for (int j = 0; j < i; j++) CHECK(strcmp(v[i].name, v[j].name) != 0, "duplicate name %s", v[i].name);
        }
        const kbcu_op *o = kbcu_op_of((kb_op_id)op);
        CHECK(o && o->n_in == kb_ops[op]->n_in && o->n_out == kb_ops[op]->n_out,
              "%s: tensor counts agree with the registry", kbcu_op_name((kb_op_id)op));
        CHECK(!strcmp(kbcu_op_name((kb_op_id)op), kb_ops[op]->name), "op names agree");
        opt.test_variants = 1;
        const int with = kb_backend_cuda.variants(&c, &opt, v, 64, msg);
        opt.test_variants = 0;
        int nan = 0;
        for (int i = 0; i < with; i++) nan += !strcmp(v[i].name, "test_nan") && v[i].test_only;
        CHECK(with > n && nan == 1, "%s: test_variants adds test_nan (%d -> %d)", kbcu_op_name((kb_op_id)op), n, with);
    }
    kb_case g;
    kb_case_init(&g, KB_OP_gemm_fp8);
    CHECK(kb_backend_cuda.variants(&g, &opt, v, 1, msg) == 1, "max is respected");
    kb_case r;
    kb_case_init(&r, KB_OP_rmsnorm);
    opt.test_variants = 1;
    const int with = kb_backend_cuda.variants(&r, &opt, v, 64, msg);
    int fault = 0, unwritten = 0;
    for (int i = 0; i < with; i++) {
        fault += !strcmp(v[i].name, "test_fault") && v[i].test_only;
        unwritten += !strcmp(v[i].name, "test_unwritten") && v[i].test_only;
    }
    CHECK(fault == 1 && unwritten == 1, "rmsnorm lists test_fault and test_unwritten with test_variants");
    CHECK(kbcu_find_variant(KB_OP_rmsnorm, "test_fault", 0) == NULL, "test_fault hidden from prepare without them");
    CHECK(kbcu_find_variant(KB_OP_rmsnorm, "test_fault", 1) != NULL, "... and found with them");
    CHECK(kb_backend_cublaslt.variants(&r, &opt, v, 64, msg) == 0, "cublaslt runs no rmsnorm");

    /* --tune: every variant at every point, named V[...], described as resolved */
    kb_tune tune;
    memset(&tune, 0, sizeof tune);
    kb_tune_set(&tune.p[0], "BLOCK", 128);
    kb_tune_set(&tune.p[1], "ITEMS", 8);
    tune.n = 2;
    opt.tune = &tune;
    opt.test_variants = 0;
    const int nt = kb_backend_cuda.variants(&r, &opt, v, 64, msg);
    CHECK(nt == 8 && !strcmp(v[0].name, "v1_b256[BLOCK=128]") && !strcmp(v[1].name, "v1_b256[ITEMS=8]") &&
              !strcmp(v[2].name, "v2_b256_i4[BLOCK=128]") && !strcmp(v[5].name, "v2_b128_i8[ITEMS=8]") &&
              !strcmp(v[7].name, "v2_b256_i4_w[ITEMS=8]"),
          "rmsnorm: 4 variants x 2 points, variant-major (%d)", nt);
    CHECK(!strcmp(v[0].detail, "rmsnorm_v1 -DBLOCK=128 -DPDL=0") && !strcmp(v[0].tunables, "BLOCK=128 PDL=0"),
          "the point's -D options: %s", v[0].detail);
    CHECK(strstr(v[1].detail, "not_supported") && strstr(v[1].detail, "no tunable ITEMS"),
          "a point the variant cannot take says why: %s", v[1].detail);
    CHECK(!strcmp(v[5].detail, "rmsnorm_v2 -DBLOCK=128 -DITEMS=8 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0") &&
              !strcmp(v[5].tunables, "BLOCK=128 ITEMS=8 PDL=0 LDHINT=1 STHINT=1 WPRE=0"),
          "v2_b128_i8[ITEMS=8]: %s", v[5].detail);
    CHECK(!strcmp(v[6].detail, "rmsnorm_v2 -DBLOCK=128 -DITEMS=4 -DPDL=0 -DLDHINT=1 -DSTHINT=2 -DWPRE=1"),
          "v2_b256_i4_w[BLOCK=128]: %s", v[6].detail);
    CHECK(kb_backend_cuda.variants(&r, &opt, v, 5, msg) < 0 && strstr(msg, "more than 5"),
          "points beyond max are an error, not a silent cut: %s", msg);
    opt.tune = NULL;
    CHECK(kb_backend_cuda.tunable && !kb_backend_cublaslt.tunable, "cuda is tunable, cublaslt is not");

    /* every variant's source is embedded and defines its first entry point */
    for (int op = 0; op < KB_OP_COUNT; op++) {
        const kbcu_variant *list[64];
        const int n = kbcu_list_variants((kb_op_id)op, 1, list, 64);
        for (int i = 0; i < n; i++) {
            const char *src = kbcu_source_text(list[i]->source);
            CHECK(src != NULL, "%s is embedded", list[i]->source);
            char first[64];
            snprintf(first, sizeof first, "%.*s", (int)strcspn(list[i]->kernel, ",|({ "), list[i]->kernel);
            if (src && first[0]) CHECK(strstr(src, first) != NULL, "%s defines %s", list[i]->source, first);
        }
    }
}

/* ---- the fp8 encoder of the quantization kernels, against ref/formats.c ---- */
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_fp8_encode(void) {
    int64_t bad[2] = {0, 0}, tried = 0;
    uint32_t first_bad[2] = {0, 0};
    /* every 7th float32 bit pattern (all exponents, a spread of mantissas, both signs) */
    for (uint64_t u = 0; u <= 0xffffffffu; u += 7) {
        const float x = bits_f32((uint32_t)u);
        tried++;
        if (kbf8_encode(x, 0) != kb_f32_to_e4m3(x, 1) && !bad[0]++) first_bad[0] = (uint32_t)u;
        if (kbf8_encode(x, 1) != kb_f32_to_e5m2(x, 1) && !bad[1]++) first_bad[1] = (uint32_t)u;
    }
    /* and every float within 64 ulp of each fp8 value and of each midpoint between neighbours */
    for (int e5 = 0; e5 < 2; e5++)
        for (int code = 0; code < 256; code++) {
            const float v = e5 ? kb_e5m2_to_f32((uint8_t)code) : kb_e4m3_to_f32((uint8_t)code);
            const float w = e5 ? kb_e5m2_to_f32((uint8_t)(code + 1)) : kb_e4m3_to_f32((uint8_t)(code + 1));
            const float pts[2] = {v, (float)(0.5 * ((double)v + (double)w))};
            for (int p = 0; p < 2; p++) {
                if (!isfinite(pts[p])) continue;
                uint32_t c;
                memcpy(&c, &pts[p], 4);
                for (int d = -64; d <= 64; d++) {
                    const float x = bits_f32(c + (uint32_t)d);
                    tried++;
                    const unsigned want = e5 ? kb_f32_to_e5m2(x, 1) : kb_f32_to_e4m3(x, 1);
                    if (kbf8_encode(x, e5) != want && !bad[e5]++) first_bad[e5] = c + (uint32_t)d;
                }
            }
        }
    const float specials[] = {0.0f,     -0.0f,    INFINITY, -INFINITY, NAN,      448.0f,     464.0f,   480.0f,  -1e30f,
                              57344.0f, 61440.0f, 1e-45f,   0x1p-9f,   0x1p-10f, 0x1.8p-10f, 0x1p-16f, 0x1p-17f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        for (int e5 = 0; e5 < 2; e5++) {
            const unsigned want = e5 ? kb_f32_to_e5m2(specials[i], 1) : kb_f32_to_e4m3(specials[i], 1);
            CHECK(kbf8_encode(specials[i], e5) == want, "%s(%g) = 0x%02x, want 0x%02x", e5 ? "e5m2" : "e4m3",
                  (double)specials[i], kbf8_encode(specials[i], e5), want);
        }
    CHECK(bad[0] == 0, "e4m3: %lld of %lld floats differ from ref/formats.c (first 0x%08x)", (long long)bad[0],
          (long long)tried, first_bad[0]);
    CHECK(bad[1] == 0, "e5m2: %lld of %lld floats differ from ref/formats.c (first 0x%08x)", (long long)bad[1],
          (long long)tried, first_bad[1]);
    /* subnormal codes: exponent field 0, mantissa not 0 */
    int sub[2] = {0, 0};
    for (unsigned code = 0; code < 256; code++)
        for (int e5 = 0; e5 < 2; e5++) sub[e5] += kbf8_is_subnormal(code, e5);
    CHECK(sub[0] == 14 && sub[1] == 6, "subnormal codes: %d e4m3 (want 14), %d e5m2 (want 6)", sub[0], sub[1]);
    CHECK(kbf8_is_subnormal(0x01, 0) && kbf8_is_subnormal(0x87, 0) && !kbf8_is_subnormal(0x08, 0) &&
              !kbf8_is_subnormal(0x80, 0) && kbf8_is_subnormal(0x03, 1) && !kbf8_is_subnormal(0x04, 1),
          "subnormal examples");
}

/* ---- planning ---- */
static const kbcu_devinfo h100 = {90, 132, 227 * 1024};

/* Views for case c's tensors (from the registry), all at `offset` bytes. */
static int make_args(const kb_case *c, kb_arg *args, uint64_t offset) {
    kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
    char msg[KB_MSG];
    if (kb_case_tensors(c, t, msg) != KB_OK) return -1;
    const int n = kb_ops[c->op]->n_in + kb_ops[c->op]->n_out;
    for (int i = 0; i < n; i++) args[i] = (kb_arg){t[i].type, t[i].count, {1, offset, t[i].bytes}};
    return n;
}

/* Plan a variant by name (a tuned name too, read as the worker reads it). */
static int plan_dev(const kb_case *c, const char *variant, const kbcu_devinfo *dev, uint64_t offset, kbcu_plan *p,
                    char *msg) {
    kbcu_plan_free(p);
    kbcu_tuned tuned;
    const kbcu_variant *v;
    kb_arg args[KB_MAX_ARGS];
    const int rc = kbcu_resolve_variant(c->op, variant, 1, &tuned, &v, msg);
    if (rc == KB_ERROR) return kb_fail(msg, -1, "no variant %s", variant);
    if (rc != KB_OK) return rc;
    if (make_args(c, args, offset) < 0) return kb_fail(msg, -1, "bad case");
    const kbcu_job j = {c, v, args, kb_ops[c->op]->n_in, kb_ops[c->op]->n_out, *dev};
    return kbcu_plan_case(&j, p, msg);
}

static int plan(const kb_case *c, const char *variant, kbcu_plan *p, char *msg) {
    return plan_dev(c, variant, &h100, 0, p, msg);
}

static int64_t threads_x(const kbcu_launch *l) { return l->grid[0] * l->block[0]; }

/* rope_neox.cu's turn_sincos in C: (|p| * G) mod 1 in 32-bit integers, the nearest quarter
 * turn, Cephes' sinf/cosf polynomials on the rest */
static void turn_sincos_model(int p, uint32_t g_hi, uint32_t g_lo, float *s, float *c) {
    const uint32_t a = (uint32_t)(p < 0 ? -p : p);
    const uint32_t lo = a * g_lo;
    uint32_t hi = (uint32_t)(((uint64_t)a * g_lo) >> 32) + a * g_hi;
    if (p < 0) hi = ~hi + (lo == 0u ? 1u : 0u);
    const uint32_t q = (hi + 0x20000000u) >> 30;
    const float r = (float)(int32_t)(hi - (q << 30)) * 1.4629180792671596e-9f;
    const float z = r * r;
    const float s0 = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
    const float c0 = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                     0.5f * z + 1.0f;
    const float ss[4] = {s0, c0, -s0, -c0}, cc[4] = {c0, -s0, -c0, s0};
    *s = ss[q & 3u];
    *c = cc[q & 3u];
}

/* q4k.cuh's q4k_scale_min_regs in C: sub-block j = 2c + h's 6-bit scale and min from the
 * block header's words 1..3 (scales[0..11] little-endian) */
static void q4k_scale_min_regs_model(const uint32_t w[4], int c, int h, uint32_t *sc, uint32_t *m) {
    const int sh = 8 * (2 * (c & 1) + h);
    const uint32_t s1 = (w[1] >> sh) & 0xffu, s2 = (w[2] >> sh) & 0xffu, s3 = (w[3] >> sh) & 0xffu;
    *sc = c < 2 ? s1 & 63u : (s3 & 0xFu) | ((s1 >> 6) << 4);
    *m = c < 2 ? s2 & 63u : (s3 >> 4) | ((s2 >> 6) << 4);
}

static kb_case make_case(kb_op_id op) {
    kb_case c;
    kb_case_init(&c, op);
    return c;
}

/* one query of Qwen2.5-7B's attention (28 heads over 4 KV heads of 128) at kv_len keys */
static kb_case qwen_decode_case(int64_t kv_len) {
    kb_case a = make_case(KB_OP_attention);
    a.heads = 28, a.kv_heads = 4, a.head_dim = 128, a.kv_len = kv_len, a.n = 1;
    return a;
}

/* decode_v3 (attention.c, NOTES.md): grid (n, splits, kv_heads) of WARPS*32 threads,
 * STAGES x (4 K + 4 V rows) a warp in shared memory, one wave of blocks (3 an SM on the
 * H100/H200 at 66 KB), the combine a block per (32 dims, head, query). Numbers by hand. */
static void test_plan_decode_v3(kbcu_plan *pp) {
    kbcu_plan p = *pp;
    char msg[KB_MSG];
    kb_case a = qwen_decode_case(4096);
    unsetenv("KB_CUDA_UNVERIFIED");
    CHECK(kbcu_find_variant(KB_OP_attention, "decode_v3_w4_s4", 0) != NULL, "decode_v3 is listed (it ran on the H200)");
    CHECK(kbcu_find_variant(KB_OP_attention, "decode_v3_w8_s4", 0) != NULL &&
              kbcu_find_variant(KB_OP_attention, "decode_v3_w4_s2", 0) != NULL,
          "decode_v3's tuned points are listed (they passed the smoke and qwen tables on the H200)");
    CHECK(plan(&a, "decode_v3_w8_s4", &p, msg) == KB_OK && p.launch[0].block[0] == 256 &&
              p.launch[0].smem == kbcu_decode_v3_smem(8, 4, 128),
          "decode_v3_w8_s4: 8 warps, 4 stages: %s", msg);
    CHECK(plan(&a, "decode_v3_w4_s2", &p, msg) == KB_OK && p.launch[0].block[0] == 128 &&
              p.launch[0].smem == kbcu_decode_v3_smem(4, 2, 128),
          "decode_v3_w4_s2: 4 warps, 2 stages: %s", msg);
    CHECK(kbcu_decode_v3_smem(4, 4, 128) == 4 * 4 * 8 * 512 + 4 * 40 * 4,
          "v3 smem: 4 warps x 4 stages x 8 rows + 40 floats a warp");
    CHECK(kbcu_decode_v3_smem(4, 1, 128) == 4 * (8 * 32 + 4) * 16 + 4 * 40 * 4, "one stage: the merge area is larger");
    CHECK(kbcu_decode_v3_per_sm(4, 66176, 227 * 1024) == 3, "3 blocks of 66 KB an H100 SM");
    CHECK(kbcu_decode_v3_per_sm(8, 66176, 227 * 1024) == 2, "8 warps at 128 registers: 2 blocks");
    CHECK(kbcu_decode_v3_per_sm(4, 200000, 99 * 1024) == 1, "at least one");
    int splits, chunk;
    kbcu_decode_splits_v3(&a, 4, 3, 132, &splits, &chunk);
    CHECK(splits == 86 && chunk == 48, "v3 4096 keys: %d splits of %d (99 wanted, 16-key rounds)", splits, chunk);
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_OK && p.nlaunch == 2, "decode_v3 plans: %s", msg);
    if (p.nlaunch == 2) {
        const kbcu_launch *m = &p.launch[0], *c = &p.launch[1];
        CHECK(!strcmp(m->kernel, "attn_decode_v3") && m->grid[0] == 1 && m->grid[1] == 86 && m->grid[2] == 4 &&
                  m->block[0] == 128 && m->smem == 66176 && !strcmp(m->opts, "-DHD=128 -DWARPS=4 -DSTAGES=4"),
              "v3 main: grid (n, splits, kv_heads) = (%lld, %lld, %lld), block %lld, smem %lld", (long long)m->grid[0],
              (long long)m->grid[1], (long long)m->grid[2], (long long)m->block[0], (long long)m->smem);
        CHECK(m->nargs == 11 && m->args[3].kind == KBCU_ARG_WS && m->args[8].i == 128 && m->args[9].i == 48 &&
                  m->args[10].kind == KBCU_ARG_F32 && fabs(m->args[10].f - 1.0 / sqrt(128.0)) < 1e-15,
              "v3 main args: q k v ws n L heads kv_heads d chunk scale");
        CHECK(!strcmp(c->kernel, "attn_decode_combine_v3") && c->grid[0] == 4 && c->grid[1] == 28 && c->grid[2] == 1 &&
                  c->block[0] == 256 && c->smem == (86 + 16 + 256) * 4,
              "v3 combine: a block per (32 dims, head, query), smem %lld", (long long)c->smem);
        CHECK(c->nargs == 5 && c->args[0].kind == KBCU_ARG_WS && c->args[1].kind == KBCU_ARG_TENSOR &&
                  c->args[1].tensor == 3 && c->args[2].i == 1 && c->args[3].i == 28 && c->args[4].i == 86,
              "v3 combine args: ws o n heads splits");
        CHECK(p.workspace == (uint64_t)(28 * 86 * 128 + 2 * 28 * 86) * 4,
              "v3 workspace: exactly S*d + 2S floats (%llu)", (unsigned long long)p.workspace);
    }
    a.kv_len = 32768;
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_OK && p.launch[0].grid[1] == 98 && p.launch[0].args[9].i == 336,
          "v3 32768 keys: 98 splits of 336 keys, 392 blocks on 396 slots");
    a.n = 16, a.kv_len = 4096;
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_OK && p.launch[0].grid[0] == 16 && p.launch[0].grid[1] == 6 &&
              p.launch[0].args[9].i == 688 && p.launch[1].grid[2] == 16,
          "v3 n = 16: 6 splits of 688 keys, 16 query blocks a split");
    /* every kv_len and n: the splits cover the keys once in whole rounds, within one wave */
    int bad_L = 0, bad_n = 0;
    for (int n = 1; n <= 16 && !bad_L; n += 5)
        for (int L = n; L <= 40000 && !bad_L; L += 89) {
            a.n = n, a.kv_len = L;
            kbcu_decode_splits_v3(&a, 4, 3, 132, &splits, &chunk);
            if (!(splits >= 1 && chunk % 16 == 0 && (int64_t)splits * chunk >= L && (int64_t)(splits - 1) * chunk < L &&
                  (splits == 1 || (int64_t)n * splits * a.kv_heads <= 3 * 132)))
                bad_L = L, bad_n = n;
        }
    CHECK(!bad_L, "v3 splits cover L = %d (n = %d) once: %d x %d", bad_L, bad_n, splits, chunk);
    a.n = 1, a.kv_len = 4096;
    CHECK(plan(&a, "decode_v3_w4_s4[STAGES=2]", &p, msg) == KB_OK && p.launch[0].smem == 2 * 4 * 8 * 512 + 640 &&
              !strcmp(p.launch[0].opts, "-DHD=128 -DWARPS=4 -DSTAGES=2"),
          "v3 at 2 stages: %s", msg);
    CHECK(plan(&a, "decode_v3_w4_s4[WARPS=8]", &p, msg) == KB_OK && p.launch[0].block[0] == 256 &&
              p.launch[0].smem == 8 * 4 * 8 * 512 + 8 * 160 && p.launch[0].grid[1] == 32 &&
              p.launch[0].args[9].i == 128,
          "v3 at 8 warps: 1 block of 129 KB an SM, 32 splits of 128 keys (%s)", msg);
    CHECK(plan(&a, "decode_v3_w4_s4[WARPS=32]", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "shared memory"),
          "v3 at 32 warps: its stages exceed the device: %s", msg);
    /* refusals */
    a.head_dim = 64;
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "head_dim 128"), "v3 d = 64: %s",
          msg);
    a.head_dim = 128, a.heads = 36;
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "<= 8 query heads"),
          "v3 GQA group of 9: %s", msg);
    a.heads = 16, a.kv_heads = 2;
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_OK && p.launch[0].grid[2] == 2, "v3 group of 8: %s", msg);
    a.heads = 28, a.kv_heads = 4;
    CHECK(plan_dev(&a, "decode_v3_w4_s4", &h100, 4, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "not a multiple of 16"),
          "v3 reads 16-byte pieces: %s", msg);
    const kbcu_devinfo turing = {75, 40, 64 * 1024};
    CHECK(plan_dev(&a, "decode_v3_w4_s4", &turing, 0, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "8.0"),
          "v3 needs cp.async (sm_80): %s", msg);
    a.n = 17;
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "prefill_v1"), "v3 n > 16: %s", msg);
    *pp = p;
}

/* decode_v4 (attention.c, NOTES.md): decode_v3's grid, one launch; merge groups of
 * ~sqrt(splits); workspace = v3's partials, the group partials, the counters (16-byte
 * aligned parts), zeroed once at prepare. Numbers by hand. */
static void test_plan_decode_v4(kbcu_plan *pp) {
    kbcu_plan p = *pp;
    char msg[KB_MSG];
    kb_case a = qwen_decode_case(4096);
    unsetenv("KB_CUDA_UNVERIFIED");
    CHECK(kbcu_find_variant(KB_OP_attention, "decode_v4_w4_s4", 0) == NULL,
          "decode_v4 is hidden (slower than v3 at n = 1 on the H200; KB_CUDA_UNVERIFIED=1)");
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    CHECK(kbcu_find_variant(KB_OP_attention, "decode_v4_w4_s4", 0) != NULL, "KB_CUDA_UNVERIFIED=1 lists decode_v4");
    CHECK(kbcu_decode_v4_group(1) == 1 && kbcu_decode_v4_group(8) == 8 && kbcu_decode_v4_group(9) == 3 &&
              kbcu_decode_v4_group(32) == 6 && kbcu_decode_v4_group(86) == 10 && kbcu_decode_v4_group(98) == 10 &&
              kbcu_decode_v4_group(100) == 10 && kbcu_decode_v4_group(101) == 11,
          "v4 groups: one level up to 8 splits, then ceil(sqrt(splits))");
    int bad = 0;
    for (int s = 1; s <= 5000 && !bad; s++) {
        const int g = kbcu_decode_v4_group(s), ng = (s + g - 1) / g;
        if (!(g >= 1 && g <= s && (s <= 8 ? ng == 1 : (g - 1) * (g - 1) < s && ng <= g)))
            bad = s;
    }
    CHECK(!bad, "v4 group of %d splits: both levels ~sqrt", bad);
    CHECK(plan(&a, "decode_v4_w4_s4", &p, msg) == KB_OK && p.nlaunch == 1, "decode_v4 plans one launch: %s", msg);
    if (p.nlaunch == 1) {
        const kbcu_launch *m = &p.launch[0];
        CHECK(!strcmp(m->kernel, "attn_decode_v4") && m->grid[0] == 1 && m->grid[1] == 86 && m->grid[2] == 4 &&
                  m->block[0] == 128 && m->smem == 66176 && !strcmp(m->opts, "-DHD=128 -DWARPS=4 -DSTAGES=4"),
              "v4: v3's grid, block and shared memory");
        /* S = 28 x 86 = 2408 partials of 130 floats; 9 groups of 10: S2 = 252 */
        const int64_t at2 = 2408 * 130, atc = at2 + 252 * 130;
        CHECK(m->nargs == 15 && m->args[3].kind == KBCU_ARG_TENSOR && m->args[3].tensor == 3 &&
                  m->args[4].kind == KBCU_ARG_WS && m->args[4].i == 0 && m->args[5].kind == KBCU_ARG_WS &&
                  m->args[5].i == at2 * 4 && m->args[6].kind == KBCU_ARG_WS && m->args[6].i == atc * 4 &&
                  m->args[7].i == 1 && m->args[8].i == 4096 && m->args[9].i == 28 && m->args[10].i == 4 &&
                  m->args[11].i == 128 && m->args[12].i == 48 && m->args[13].kind == KBCU_ARG_F32 &&
                  fabs(m->args[13].f - 1.0 / sqrt(128.0)) < 1e-15 && m->args[14].i == 10,
              "v4 args: q k v o ws ws2 ctr n L heads kv_heads d chunk scale group");
        CHECK(p.workspace == (uint64_t)(atc + 4 * 10) * 4 && p.zero_workspace == 1,
              "v4 workspace: partials, group partials, 4 x (9 + 1) counters, zeroed (%llu)",
              (unsigned long long)p.workspace);
    }
    CHECK(plan(&a, "decode_v3_w4_s4", &p, msg) == KB_OK && p.zero_workspace == 0, "v3's workspace is not zeroed");
    a.kv_len = 32768;
    CHECK(plan(&a, "decode_v4_w4_s4", &p, msg) == KB_OK && p.launch[0].grid[1] == 98 && p.launch[0].args[14].i == 10,
          "v4 32768 keys: 98 splits in 10 groups of 10");
    a.n = 3, a.kv_len = 1000; /* S = 3 x 28 x splits: the parts' offsets stay 16-byte aligned */
    CHECK(plan(&a, "decode_v4_w4_s4", &p, msg) == KB_OK && p.launch[0].args[5].i % 16 == 0 &&
              p.launch[0].args[6].i % 16 == 0,
          "v4: aligned parts (%lld, %lld)", (long long)p.launch[0].args[5].i, (long long)p.launch[0].args[6].i);
    a.n = 16, a.kv_len = 4096;
    CHECK(plan(&a, "decode_v4_w4_s4", &p, msg) == KB_OK && p.launch[0].grid[1] == 6 && p.launch[0].args[14].i == 6,
          "v4 n = 16: 6 splits, one level");
    a.n = 1;
    const kbcu_devinfo big = {90, 2000, 227 * 1024}; /* many splits: the merge outgrows one warp's region */
    CHECK(plan_dev(&a, "decode_v4_w4_s4[WARPS=1,STAGES=1]", &big, 0, &p, msg) == KB_OK &&
              p.launch[0].args[14].i * 8 * 4 + 64 <= p.launch[0].smem - 160,
          "v4 one warp, many splits: the merge fits: %s", msg);
    a.head_dim = 64;
    CHECK(plan(&a, "decode_v4_w4_s4", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "head_dim 128"), "v4 d = 64: %s",
          msg);
    a.head_dim = 128, a.n = 17;
    CHECK(plan(&a, "decode_v4_w4_s4", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "prefill_v1"), "v4 n > 16: %s", msg);
    unsetenv("KB_CUDA_UNVERIFIED");
    *pp = p;
}

/* Every variant of every op on its samples, on the H100/H200's limits: whatever plans
 * must be within CUDA's limits (kbcu_plan_case checks, so a plan that passes it and
 * breaks one is a bug in that check) and name only the case's tensors. */
static void test_plans_all(void) {
    int planned = 0;
    for (int op = 0; op < KB_OP_COUNT; op++) {
        const kbcu_op *o = kbcu_op_of((kb_op_id)op);
        const kbcu_variant *vars[64];
        const int nv = kbcu_list_variants((kb_op_id)op, 1, vars, 64);
        kb_case s[16];
        const int ns = o->samples(s, 16);
        for (int i = 0; i < ns; i++)
            for (int v = 0; v < nv; v++) {
                kbcu_plan p;
                memset(&p, 0, sizeof p);
                char msg[KB_MSG];
                const int rc = plan(&s[i], vars[v]->name, &p, msg);
                if (rc != KB_OK) {
                    CHECK(rc == KB_NOT_SUPPORTED && msg[0], "%s/%s sample %d: rc %d (%s)", kbcu_op_name((kb_op_id)op),
                          vars[v]->name, i, rc, msg);
                    continue;
                }
                planned++;
                for (int l = 0; l < p.nlaunch; l++) {
                    const kbcu_launch *L = &p.launch[l];
                    CHECK(L->grid[0] >= 1 && L->grid[0] < (1LL << 31) && L->grid[1] >= 1 && L->grid[1] <= 65535 &&
                              L->grid[2] >= 1 && L->grid[2] <= 65535 &&
                              L->block[0] * L->block[1] * L->block[2] <= 1024 && L->smem <= h100.smem_optin,
                          "%s/%s: launch %d (%s) within CUDA's limits", kbcu_op_name((kb_op_id)op), vars[v]->name, l,
                          L->kernel);
                    for (int a = 0; a < L->nargs; a++)
                        if (L->args[a].kind == KBCU_ARG_TENSOR)
                            CHECK(L->args[a].tensor >= 0 && L->args[a].tensor < o->n_in + o->n_out, "%s: tensor index",
                                  L->kernel);
                }
                kbcu_plan_free(&p);
            }
    }
    CHECK(planned > 40, "%d plans", planned);
}

static void test_geometry(void) {
    kbcu_plan p;
    memset(&p, 0, sizeof p);
    char msg[KB_MSG];

    kb_case g = make_case(KB_OP_gemm_fp8);
    g.m = 3584, g.k = 3584, g.n = 1, g.a_type = g.b_type = KB_E4M3, g.out_type = KB_BF16;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.nlaunch == 1 && p.launch[0].grid[0] == 224 &&
              p.launch[0].grid[1] == 1 && p.launch[0].block[0] == 256,
          "gemv_v2 3584x1: 224x1 blocks of 256");
    CHECK(p.launch[0].nargs == 11 && p.launch[0].args[10].i == 0 && p.launch[0].args[9].i == 2,
          "e4m3 x e4m3: fmt 0, bf16 2");
    for (int t = 0; t < 5; t++)
        CHECK(p.launch[0].args[t].kind == KBCU_ARG_TENSOR && p.launch[0].args[t].tensor == t, "w x sa sb d");
    g.a_type = KB_E5M2, g.b_type = KB_E5M2;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.launch[0].args[10].i == 3, "e5m2 x e5m2: fmt 3");
    g.a_type = KB_E4M3;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.launch[0].args[10].i == 2, "e4m3 x e5m2: fmt 2");
    g.b_type = KB_E4M3;
    g.n = 17;
    CHECK(plan(&g, "gemv_v2_b128_u2", &p, msg) == KB_OK && p.launch[0].grid[1] == 2 && p.launch[0].block[0] == 128,
          "N = 17 takes two 16-token blocks");
    CHECK(plan(&g, "gemv_v2_b512_u2_t1_pdl", &p, msg) == KB_OK && p.launch[0].grid[1] == 3,
          "one n8 tile: N = 17 takes three 8-token blocks");
    g.n = 16, g.m = 3585;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.launch[0].grid[0] == 225, "M = 3585: 225 row blocks");
    /* gemv_v3 loses to v2 on the H200: hidden unless KB_CUDA_UNVERIFIED=1 */
    unsetenv("KB_CUDA_UNVERIFIED");
    CHECK(kbcu_find_variant(KB_OP_gemm_fp8, "gemv_v3_m16_w8", 1) == NULL, "unverified variants are not listed by default");
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    CHECK(kbcu_find_variant(KB_OP_gemm_fp8, "gemv_v3_m16_w8", 0) != NULL, "KB_CUDA_UNVERIFIED=1 lists them");
    CHECK(plan(&g, "gemv_v3_m32_w8", &p, msg) == KB_OK && p.launch[0].grid[0] == 113 && p.launch[0].grid[1] == 1 &&
              p.launch[0].block[0] == 256 && p.launch[0].smem == 8 * 32 * 448,
          "gemv_v3_m32_w8 3585x16: 113x1 blocks, 8 warps x 32 rows x 448 bytes of W slices");
    CHECK(plan(&g, "gemv_v3_m16_w4_s2", &p, msg) == KB_OK && p.launch[0].grid[0] == 225 &&
              p.launch[0].block[0] == 128 && p.launch[0].smem == 4 * 2 * 16 * 448,
          "gemv_v3_m16_w4_s2: 225 blocks of 128, 2 stages");
    const kbcu_devinfo ada = {89, 128, 99 * 1024};
    CHECK(plan_dev(&g, "gemv_v3_m16_w8", &ada, 0, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "9.0"),
          "cp.async.bulk needs sm_90: %s", msg);
    g.k = 3583;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "K % 16"), "K %% 16: %s", msg);
    CHECK(plan(&g, "gemv_v3_m16_w8", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "K % 16"), "v3 K %% 16: %s", msg);
    /* gemv_v4 (unverified: no GPU run yet): a warp per RPW rows, NB tokens a block, N <= 8 */
    g.n = 8;
    CHECK(plan(&g, "gemv_v4_b256_n1", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "K % 16"), "v4 K %% 16: %s", msg);
    g.k = 3584, g.n = 16;
    CHECK(plan(&g, "gemv_v4_b256_n8", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "N <= 8"), "v4 N = 16: %s", msg);
    g.n = 9;
    CHECK(plan(&g, "gemv_v4_b256_n8", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "N <= 8"), "v4 N = 9: %s", msg);
    g.n = 8;
    CHECK(plan(&g, "gemv_v4_b256_n8", &p, msg) == KB_OK && p.launch[0].grid[0] == 449 && p.launch[0].grid[1] == 1 &&
              p.launch[0].block[0] == 256 && p.launch[0].smem == 0 && !strcmp(p.launch[0].kernel, "gemm_fp8_gemv_v4") &&
              p.launch[0].nargs == 11,
          "gemv_v4_b256_n8 3585x8: 449 blocks of 8 rows, one token block");
    CHECK(plan(&g, "gemv_v4_b256_n1", &p, msg) == KB_OK && p.launch[0].grid[0] == 449 && p.launch[0].grid[1] == 8,
          "gemv_v4_b256_n1 at N = 8: 8 token blocks");
    g.n = 3;
    CHECK(plan(&g, "gemv_v4_b256_n2", &p, msg) == KB_OK && p.launch[0].grid[1] == 2, "gemv_v4_b256_n2 at N = 3: 2");
    CHECK(plan(&g, "gemv_v4_b256_r2_n1", &p, msg) == KB_OK && p.launch[0].grid[0] == 225 && p.launch[0].grid[1] == 3,
          "gemv_v4_b256_r2_n1 3585x3: 2 rows a warp, 225 blocks of 16 rows");
    CHECK(plan(&g, "gemv_v4_b256_r2_n1[WARPS=4]", &p, msg) == KB_OK && p.launch[0].grid[0] == 449 &&
              p.launch[0].block[0] == 128,
          "... at 4 warps: 449 blocks of 128");
    CHECK(plan_dev(&g, "gemv_v4_b256_n1", &h100, 8, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "multiple of 16"),
          "v4's 16-byte loads need 16-byte aligned views: %s", msg);
    /* gemv_v5 (unverified): one wave of persistent blocks, at most SMs x PER_SM of them,
     * over the 16-row tiles; each warp's ring of RING chunks of (2 + NT) 16-byte pieces a lane */
    g.n = 1, g.m = 3585;
    CHECK(plan(&g, "gemv_v5_w4_r8_t1", &p, msg) == KB_OK && p.launch[0].grid[0] == 225 && p.launch[0].grid[1] == 1 &&
              p.launch[0].block[0] == 128 && p.launch[0].smem == 4 * 8 * 3 * 32 * 16 &&
              p.launch[0].smem == kbcu_gemv_v5_smem(4, 8, 1) && !strcmp(p.launch[0].kernel, "gemm_fp8_gemv_v5"),
          "gemv_v5_w4_r8_t1 3585x1: 225 tiles <= 132 x 4 blocks, 48 KiB of rings: %s", msg);
    g.m = 152064, g.n = 9;
    CHECK(plan(&g, "gemv_v5_w4_r8_t1", &p, msg) == KB_OK && p.launch[0].grid[0] == 132 * 4 && p.launch[0].grid[1] == 2,
          "lm_head: 9504 tiles over 528 persistent blocks; N = 9 takes two 8-token blocks");
    CHECK(plan(&g, "gemv_v5_w8_r4", &p, msg) == KB_OK && p.launch[0].grid[0] == 132 * 3 && p.launch[0].grid[1] == 1 &&
              p.launch[0].block[0] == 256 && p.launch[0].smem == 8 * 4 * 4 * 32 * 16,
          "gemv_v5_w8_r4: 396 blocks of 256, two n8 tiles: 4 pieces a lane a chunk");
    CHECK(plan_dev(&g, "gemv_v5_w4_r8_t1", &ada, 0, &p, msg) == KB_OK && p.launch[0].grid[0] == 128 * 4,
          "the grid follows the device's SM count");
    CHECK(plan(&g, "gemv_v5_w4_r8_t1[WARPS=16,PER_SM=4]", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "1536"),
          "16 warps x 4 blocks exceed what an sm_89 SM holds: %s", msg);
    CHECK(plan(&g, "gemv_v5_w8_r4[RING=12,WARPS=32]", &p, msg) == KB_NOT_SUPPORTED,
          "32 warps x 12 chunks x 4 pieces: 768 KiB of rings is refused");
    g.m = 3585, g.k = 3583;
    CHECK(plan(&g, "gemv_v5_w8_r4", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "K % 16"), "v5 K %% 16: %s", msg);
    g.n = 16, g.k = 3583;
    unsetenv("KB_CUDA_UNVERIFIED");
    CHECK(plan(&g, "gemv_v1_b128", &p, msg) == KB_OK && p.launch[0].grid[0] == 897 && p.launch[0].grid[1] == 2,
          "v1 takes any K: grid %lld x %lld", (long long)p.launch[0].grid[0], (long long)p.launch[0].grid[1]);
    g.k = 3584, g.out_type = KB_E4M3;
    CHECK(plan(&g, "gemv_v1_b128", &p, msg) == KB_NOT_SUPPORTED, "fp8 output is not supported");
    g.out_type = KB_F16;
    const kbcu_devinfo old = {75, 40, 64 * 1024};
    CHECK(plan_dev(&g, "gemv_v2_b256_u2", &old, 0, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "8.0"),
          "mma.sync needs sm_80: %s", msg);
    CHECK(plan_dev(&g, "gemv_v2_b256_u2", &h100, 8, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "multiple of 16"),
          "16-byte loads need 16-byte aligned views: %s", msg);
    CHECK(plan_dev(&g, "gemv_v1_b128", &h100, 4, &p, msg) == KB_OK, "byte loads take a 4-byte offset");
    CHECK(plan_dev(&g, "gemv_v1_b128", &h100, 2, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "f32"),
          "f32 scales need 4-byte alignment: %s", msg);

    kb_case r = make_case(KB_OP_rmsnorm);
    r.n = 512, r.k = 3584;
    CHECK(plan(&r, "v2_b256_i4", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].block[0] == 256,
          "rmsnorm: a block per token");
    CHECK(p.launch[0].args[4].kind == KBCU_ARG_F32 && p.launch[0].args[4].f == r.eps, "eps from the case");
    r.k = 4100;
    CHECK(plan(&r, "v2_b256_i4", &p, msg) == KB_NOT_SUPPORTED, "v2 row beyond its registers");
    r.k = 3586;
    CHECK(plan(&r, "v2_b256_i4", &p, msg) == KB_NOT_SUPPORTED, "v2 needs K %% 4 == 0");
    CHECK(plan(&r, "v1_b256", &p, msg) == KB_OK, "v1 takes any K");
    CHECK(plan(&r, "test_fault", &p, msg) == KB_OK && !strcmp(p.launch[0].kernel, "rmsnorm_test_fault") &&
              !strcmp(p.launch[0].source, "test_fault.cu"),
          "test_fault launches its own kernel");
    r.k = 3584, r.n = 70000;
    CHECK(plan(&r, "v1_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 70000, "grid.x holds 70000 tokens");
    r.n = 3, r.k = (int64_t)1 << 31;
    CHECK(plan(&r, "v1_b256", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "int32"), "K beyond int32: %s", msg);

    kb_case d = make_case(KB_OP_dequant_q4k);
    d.m = 18944, d.k = 3584;
    CHECK(plan(&d, "v2_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 33152 && p.launch[0].args[2].i == 265216 &&
              !strcmp(p.launch[0].kernel, "dequant_q4k_v2"),
          "dequant v2: 265216 blocks, 8 per CTA");
    CHECK(plan(&d, "v1_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 265216 &&
              p.launch[0].args[2].i == 18944LL * 3584,
          "dequant v1: a thread per value");
    CHECK(plan(&d, "v3_b64", &p, msg) == KB_OK && p.launch[0].grid[0] == 132608 && p.launch[0].args[2].i == 265216 &&
              !strcmp(p.launch[0].kernel, "dequant_q4k_v3"),
          "dequant v3: 265216 blocks, 2 per CTA (%s)", msg);
    CHECK(plan_dev(&d, "v3_b64", &h100, 4, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "16-byte block headers"),
          "dequant v3 needs the blocks on 16 bytes: %s", msg);
    {
        /* v3's header unpacking (q4k.cuh) against ggml's get_scale_min_k4 (ref/formats.c) on
         * random headers: every sub-block, every bit of the 12 scale bytes */
        uint64_t st = 0x9e3779b97f4a7c15ull;
        int bad = 0;
        for (int trial = 0; trial < 20000; trial++) {
            uint8_t sc8[12];
            uint32_t w[4] = {0, 0, 0, 0};
            for (int b = 0; b < 12; b++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                sc8[b] = (uint8_t)(st >> 56);
                w[1 + b / 4] |= (uint32_t)sc8[b] << (8 * (b % 4));
            }
            for (int j = 0; j < 8; j++) {
                uint8_t rs, rm;
                uint32_t ms, mm;
                kb_q4k_scale_min(j, sc8, &rs, &rm);
                q4k_scale_min_regs_model(w, j / 2, j % 2, &ms, &mm);
                bad += ms != rs || mm != rm;
            }
        }
        CHECK(bad == 0, "Q4_K v3 header unpacking equals get_scale_min_k4 on 20000 random headers (%d differ)", bad);
    }
    d.a_type = KB_Q6K;
    CHECK(plan(&d, "v3_b64", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "q6_k"), "dequant v3 is Q4_K only: %s", msg);
    CHECK(plan(&d, "v1_b256", &p, msg) == KB_OK && !strcmp(p.launch[0].kernel, "dequant_q6k_v1") &&
              threads_x(&p.launch[0]) >= d.m * d.k,
          "q6_k v1 covers every value");
    CHECK(plan(&d, "v2_b128", &p, msg) == KB_OK && !strcmp(p.launch[0].kernel, "dequant_q6k_v2") &&
              p.launch[0].grid[0] * 4 >= d.m * d.k / 256 && p.launch[0].args[2].i == d.m * d.k / 256,
          "q6_k v2: a warp per block");
    d.m = 1 << 20, d.k = 1 << 20;
    CHECK(plan(&d, "v1_b256", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "grid"), "2^40 values: beyond one grid: %s",
          msg);

    kb_case ro = make_case(KB_OP_rope_neox);
    ro.n = 512, ro.heads = 28, ro.head_dim = 128;
    CHECK(plan(&ro, "v1_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 * 28 * 64 / 256, "rope v1 grid");
    CHECK(plan(&ro, "v2_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].smem == 512,
          "rope v2: a block per token, d floats of shared memory");
    CHECK(p.launch[0].args[6].kind == KBCU_ARG_F64 && p.launch[0].args[6].f == ro.theta, "theta from the case");
    CHECK(plan(&ro, "v3_b256_i2", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].smem == 512 &&
              strcmp(p.launch[0].kernel, "rope_neox_v3") == 0,
          "rope v3: v2's geometry");
    CHECK(plan(&ro, "v4_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 * 28 * 16 / 256 &&
              p.workspace == 128 * 4 && p.ws_init_bytes == 128 * 4 && p.launch[0].args[6].kind == KBCU_ARG_WS &&
              p.launch[0].nargs == 7,
          "rope v4: a thread per float4 of pairs, the frequency table in the workspace (%s)", msg);
    {
        kbcu_plan p4;
        memset(&p4, 0, sizeof p4);
        CHECK(plan(&ro, "v4_b256[ITEMS=4]", &p4, msg) == KB_OK && p4.launch[0].grid[0] == 512 * 28 * 16 / 1024 &&
                  strstr(p4.launch[0].opts, "-DITEMS=4"),
              "rope v4 at ITEMS=4: four float4s of pairs a thread, a quarter of the blocks (%s)", msg);
        kbcu_plan_free(&p4);
    }
    if (p.ws_init) {
        uint32_t want[128];
        kb_rope_turns(ro.theta, 128, want);
        CHECK(!memcmp(p.ws_init, want, sizeof want) && want[0] == 683565275u,
              "rope v4's table is kb_rope_turns' (g_0 = 1/(2 pi): 0x28be60db high word)");
        /* v4's angle (rope_neox.cu, turn_sincos) as C: integer turns, Cephes polynomials;
         * against fp64 sin/cos for every position below 32768 and both signs */
        double worst = 0;
        for (int i = 0; i < 64; i += 9)
            for (int pp = -32767; pp < 32768; pp += 7) {
                float sm, cm;
                turn_sincos_model(pp, want[2 * i], want[2 * i + 1], &sm, &cm);
                const double ang = (double)pp * pow(ro.theta, -2.0 * i / 128.0);
                const double e = fmax(fabs(sm - sin(ang)), fabs(cm - cos(ang)));
                if (e > worst) worst = e;
            }
        CHECK(worst < 2.5e-7, "rope v4's integer angle: sin/cos within %.3g of fp64 over |pos| < 32768", worst);
    }
    ro.head_dim = 68;
    CHECK(plan(&ro, "v2_b256", &p, msg) == KB_NOT_SUPPORTED, "rope v2 needs d %% 8 == 0");
    CHECK(plan(&ro, "v4_b256", &p, msg) == KB_NOT_SUPPORTED, "rope v4 needs d %% 8 == 0");

    kb_case a = make_case(KB_OP_attention);
    a.heads = 28, a.kv_heads = 4, a.head_dim = 128, a.kv_len = 4096, a.n = 1;
    int splits, chunk;
    kbcu_decode_splits(&a, 4, 4, 132, &splits, &chunk);
    CHECK(splits == 19 && chunk == 224, "decode 4096 keys on 132 SMs: %d splits of %d", splits, chunk);
    CHECK(plan(&a, "decode_v1", &p, msg) == KB_OK && p.nlaunch == 2 && p.launch[0].grid[0] == 19 &&
              p.launch[0].grid[1] == 28 && p.launch[1].grid[0] == 28 &&
              p.workspace == (uint64_t)(2 * 28 * 19 + 28 * 19 * 128) * 4,
          "decode: partials + combine, workspace");
    CHECK(p.launch[0].args[3].kind == KBCU_ARG_WS && p.launch[1].args[0].kind == KBCU_ARG_WS &&
              p.launch[1].args[1].kind == KBCU_ARG_TENSOR && p.launch[1].args[1].tensor == 3,
          "the combine reads the workspace and writes o");
    int bad_L = 0;
    for (int L = 1; L <= 5000 && !bad_L; L += 37) {
        a.kv_len = L;
        kbcu_decode_splits(&a, 4, 4, 132, &splits, &chunk);
        if (!(splits >= 1 && chunk % 16 == 0 && (int64_t)splits * chunk >= L && (int64_t)(splits - 1) * chunk < L))
            bad_L = L;
    }
    CHECK(!bad_L, "decode splits cover L = %d exactly once: %d x %d", bad_L, splits, chunk);
    a.kv_len = 4096;
    kbcu_decode_splits_v2(&a, 32, 132, &splits, &chunk);
    CHECK(splits == 128 && chunk == 32, "decode_v2 4096 keys, 4 KV heads: %d splits of %d", splits, chunk);
    CHECK(plan(&a, "decode_v2", &p, msg) == KB_OK && p.nlaunch == 2 && p.launch[0].grid[0] == 128 &&
              p.launch[0].grid[1] == 4 && p.launch[0].block[0] == 256 && p.launch[1].grid[0] == 28 &&
              p.launch[1].smem == (128 + 5) * 4 && p.workspace == (uint64_t)(28 * 128 * 128 + 2 * 28 * 128) * 4,
          "decode_v2: a block per (split, KV head), workspace %llu", (unsigned long long)p.workspace);
    bad_L = 0;
    for (int L = 1; L <= 40000 && !bad_L; L += 97) {
        a.kv_len = L;
        kbcu_decode_splits_v2(&a, 32, 132, &splits, &chunk);
        if (!(splits >= 1 && chunk % 32 == 0 && (int64_t)splits * chunk >= L && (int64_t)(splits - 1) * chunk < L &&
              splits * a.kv_heads <= 8 * 132))
            bad_L = L;
    }
    CHECK(!bad_L, "decode_v2 splits cover L = %d exactly once: %d x %d", bad_L, splits, chunk);
    a.heads = 36, a.kv_heads = 4, a.kv_len = 4096;
    CHECK(plan(&a, "decode_v2", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "8 query heads"), "GQA group > 8: %s", msg);
    a.heads = 28;
    a.kv_len = 4096, a.n = 17;
    CHECK(plan(&a, "decode_v1", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "prefill_v1"), "decode n > 16: %s", msg);
    test_plan_decode_v3(&p);
    test_plan_decode_v4(&p);
    a.n = 4096;
    CHECK(plan(&a, "prefill_v1", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].grid[1] == 28 &&
              p.launch[0].smem == (2 * 32 * 33 + 8 * 32) * 16,
          "prefill: 8 queries a block, K/V tiles in shared memory");
    a.head_dim = 260;
    CHECK(plan(&a, "prefill_v1", &p, msg) == KB_NOT_SUPPORTED, "head_dim > 256");

    kb_case e = make_case(KB_OP_embed);
    e.m = 152064, e.k = 3584, e.n = 512, e.a_type = KB_Q4K;
    CHECK(plan(&e, "v2_b256", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_q4k_v2") == 0 &&
              p.launch[0].grid[0] == 2 && p.launch[0].grid[1] == 512,
          "embed v2: 14 blocks a row, 8 warps a CTA");
    CHECK(plan(&e, "v3_b256_i2", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_q4k_v3") == 0 &&
              p.launch[0].grid[0] == 1 && p.launch[0].grid[1] == 512 && p.launch[0].block[0] == 256,
          "embed v3 at 2 items: the 14 blocks of a row in one CTA of 8 warps (%s)", msg);
    CHECK(plan(&e, "v3_b256_i1", &p, msg) == KB_OK && p.launch[0].grid[0] == 2, "embed v3 at 1 item: 2 CTAs a row");
    CHECK(plan_dev(&e, "v3_b256_i2", &h100, 4, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "16-byte block headers"),
          "embed v3 needs the table on 16 bytes: %s", msg);
    e.a_type = KB_F16;
    CHECK(plan(&e, "v2_b256", &p, msg) == KB_NOT_SUPPORTED, "embed v2 is Q4_K only");
    CHECK(plan(&e, "v3_b256_i2", &p, msg) == KB_NOT_SUPPORTED, "embed v3 is Q4_K only");
    CHECK(plan(&e, "v1_b256", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_f16_v1") == 0, "f16 table");
    e.a_type = KB_Q6K;
    CHECK(plan(&e, "v1_b256", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_q6k_v1") == 0, "q6_k table");
    e.n = 70000;
    CHECK(plan(&e, "v1_b256", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "65535"), "grid.y limit: %s", msg);

    /* gemm_f32 */
    kb_case f = make_case(KB_OP_gemm_f32);
    f.m = 3584, f.n = 512, f.k = 3584;
    CHECK(plan(&f, "tiled_v1_64x64", &p, msg) == KB_OK && p.launch[0].grid[0] == 56 && p.launch[0].grid[1] == 8 &&
              p.launch[0].block[0] == 256,
          "gemm_f32 tiled: 64x64 outputs a block");
    f.m = 3585, f.n = 65;
    CHECK(plan(&f, "tiled_v1_64x64", &p, msg) == KB_OK && p.launch[0].grid[0] * 64 >= f.m &&
              p.launch[0].grid[1] * 64 >= f.n && (p.launch[0].grid[0] - 1) * 64 < f.m,
          "ragged edges covered");
    CHECK(plan(&f, "gemv_v1_b128", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "tiled_v1"), "gemv for small N: %s",
          msg);
    f.n = 5;
    CHECK(plan(&f, "gemv_v1_b128", &p, msg) == KB_OK && p.launch[0].grid[0] * 4 >= f.m && p.launch[0].grid[1] == 2,
          "gemv: a warp a row, 4 tokens a block");
    f.k = 3583;
    CHECK(plan(&f, "gemv_v2_b128", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "K % 4"), "gemv_v2 K %% 4: %s", msg);
    f.k = 3584;
    CHECK(plan(&f, "gemv_v2_b128", &p, msg) == KB_OK, "gemv_v2 with K %% 4 == 0");
    f.m = 3, f.n = 3, f.k = 3;
    CHECK(plan(&f, "tiled_v1_64x64", &p, msg) == KB_OK && p.launch[0].grid[0] == 1, "tiny gemm");

    /* elementwise ops: every element covered, the type code passed */
    const kb_dtype types[] = {KB_F32, KB_F16, KB_BF16};
    for (int t = 0; t < 3; t++) {
        kb_case x = make_case(KB_OP_add);
        x.n = 7, x.k = 3587, x.a_type = types[t];
        CHECK(plan(&x, "v1_b256", &p, msg) == KB_OK && threads_x(&p.launch[0]) >= 7 * 3587 &&
                  p.launch[0].args[3].i == 7 * 3587 && p.launch[0].args[4].i == t,
              "add v1 %s", kb_dtype_name(types[t]));
        CHECK(plan(&x, "v2_b256", &p, msg) == KB_OK && 4 * threads_x(&p.launch[0]) >= 7 * 3587 &&
                  4 * (threads_x(&p.launch[0]) - 256) < 7 * 3587,
              "add v2: 4 elements a thread");
        CHECK(plan_dev(&x, "v2_b256", &h100, 8, &p, msg) == KB_NOT_SUPPORTED, "add v2 needs 16-byte aligned views");
        x.op = KB_OP_swiglu;
        CHECK(plan(&x, "v1_b256", &p, msg) == KB_OK && threads_x(&p.launch[0]) >= 7 * 3587 &&
                  p.launch[0].args[4].i == t,
              "swiglu v1 %s", kb_dtype_name(types[t]));
        CHECK(plan(&x, "v2_b256", &p, msg) == KB_OK && 4 * threads_x(&p.launch[0]) >= 7 * 3587, "swiglu v2");
        kb_case b = make_case(KB_OP_bias_add);
        b.n = 70000, b.m = 3584, b.a_type = types[t];
        CHECK(plan(&b, "v1_b256", &p, msg) == KB_OK && threads_x(&p.launch[0]) >= b.m && p.launch[0].grid[1] == 65535 &&
                  p.launch[0].args[5].i == t,
              "bias_add v1: grid.y strides over 70000 tokens");
        CHECK(plan(&b, "v2_b256", &p, msg) == KB_OK && 4 * threads_x(&p.launch[0]) >= b.m, "bias_add v2");
        b.m = 3586;
        CHECK(plan(&b, "v2_b256", &p, msg) == KB_NOT_SUPPORTED, "bias_add v2 needs M %% 4 == 0");
    }
    kb_case x = make_case(KB_OP_add);
    x.n = 2, x.k = 4, x.a_type = KB_E4M3;
    CHECK(plan(&x, "v1_b256", &p, msg) == KB_NOT_SUPPORTED, "add of an e4m3 b is not a case");

    /* quant_fp8: three launches (v1), or one (v2, row-local modes) */
    kb_case q = make_case(KB_OP_quant_fp8);
    q.n = 300, q.k = 3584 + 64, q.out_type = KB_E4M3;
    const int64_t kb = (q.k + 127) / 128;
    for (int s = 0; s < 3; s++) {
        q.scale_mode = (kb_scale_mode)s;
        CHECK(plan(&q, "v1_b256", &p, msg) == KB_OK && p.nlaunch == 3, "quant v1 %s: three launches",
              kb_scale_mode_name(q.scale_mode));
        CHECK(p.workspace == (uint64_t)(q.n * kb * 4) && p.launch[0].grid[0] * 8 >= q.n * kb &&
                  (p.launch[0].grid[0] - 1) * 8 < q.n * kb,
              "a warp per row block, amax in the workspace");
        if (s == 0)
            CHECK(!strcmp(p.launch[1].kernel, "fp8_scale_tensor_v1") && p.launch[1].grid[0] == 1 &&
                      p.launch[1].block[0] == 1024 && p.launch[1].args[2].i == q.n * kb,
                  "tensor: one block reduces every block's amax");
        else
            CHECK(!strcmp(p.launch[1].kernel, "fp8_scales_v1") &&
                      p.launch[1].grid[0] * 256 >= kb_scale_count(q.scale_mode, q.n, q.k) && p.launch[1].args[4].i == s,
                  "a thread per scale group");
        CHECK(p.launch[1].args[1].kind == KBCU_ARG_TENSOR && p.launch[1].args[1].tensor == 2 &&
                  p.launch[2].args[2].tensor == 1 && p.launch[2].args[1].tensor == 2 &&
                  threads_x(&p.launch[2]) >= q.n * q.k,
              "scales to s, codes to q, a thread per value");
        CHECK(p.launch[2].nargs == 9 && p.launch[2].args[7].i == 0 && p.launch[2].args[8].i == 0, "e4m3, no flush");
        const int rc = plan(&q, "v2_b256", &p, msg);
        if (s == 0) CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "v1"), "v2 has no tensor mode: %s", msg);
        if (s == 1) CHECK(rc == KB_OK && p.nlaunch == 1 && p.launch[0].grid[0] == q.n, "v2 outer: a block per token");
        if (s == 2)
            CHECK(rc == KB_OK && p.nlaunch == 1 && p.launch[0].grid[0] * 8 >= q.n * kb, "v2 vec128: a warp a group");
    }
    q.scale_mode = KB_SCALE_BLK128;
    CHECK(plan(&q, "v1_b256", &p, msg) == KB_NOT_SUPPORTED, "activations take no 128x128 blocks");
    q.scale_mode = KB_SCALE_TENSOR, q.out_type = KB_E5M2, q.flush = 1;
    CHECK(plan(&q, "v1_b256", &p, msg) == KB_OK && p.launch[2].args[7].i == 1 && p.launch[2].args[8].i == 1 &&
              p.launch[1].args[3].f == 57344.0,
          "e5m2 with flush: fmax 57344");

    kb_case w = make_case(KB_OP_weight_fp8);
    w.m = 300, w.k = 3584, w.a_type = KB_Q6K, w.scale_mode = KB_SCALE_BLK128;
    CHECK(plan(&w, "v1_b256", &p, msg) == KB_OK && p.nlaunch == 3 && !strcmp(p.launch[0].kernel, "fp8_amax_q6k_v1") &&
              !strcmp(p.launch[2].kernel, "fp8_quant_q6k_v1") && p.launch[1].args[4].i == 3 &&
              p.launch[1].grid[0] * 256 >= 3 * 28 && p.launch[2].nargs == 8,
          "weight_fp8 q6_k blk128");
    w.a_type = KB_Q4K, w.scale_mode = KB_SCALE_TENSOR;
    CHECK(plan(&w, "v1_b256", &p, msg) == KB_OK && !strcmp(p.launch[0].kernel, "fp8_amax_q4k_v1") &&
              !strcmp(p.launch[1].kernel, "fp8_scale_tensor_v1"),
          "weight_fp8 q4_k tensor");
    w.a_type = KB_F32;
    CHECK(plan(&w, "v1_b256", &p, msg) == KB_NOT_SUPPORTED, "weight_fp8 takes k-quant blocks");

    /* the generic test variant: the op's first variant, then the NaN in output 0's middle */
    r = make_case(KB_OP_rmsnorm);
    r.n = 3, r.k = 101;
    CHECK(plan(&r, "test_nan", &p, msg) == KB_OK && p.nlaunch == 2 && !strcmp(p.launch[0].kernel, "rmsnorm_v1") &&
              !strcmp(p.launch[1].kernel, "kb_test_poke") && p.launch[1].args[0].tensor == 2 &&
              p.launch[1].args[0].i == 151 * 4 && p.launch[1].args[1].i == 0x7fc00000 && p.launch[1].args[2].i == 4,
          "test_nan: v1, then a NaN at y[151]");
    q = make_case(KB_OP_quant_fp8);
    q.n = 2, q.k = 128;
    CHECK(plan(&q, "test_nan", &p, msg) == KB_OK && p.nlaunch == 4 && p.launch[3].args[0].tensor == 1 &&
              p.launch[3].args[0].i == 128 && p.launch[3].args[1].i == 0x7f && p.launch[3].args[2].i == 1,
          "test_nan on fp8 codes: 0x7f");

    /* shared memory beyond the device */
    a = make_case(KB_OP_attention);
    a.heads = 8, a.kv_heads = 8, a.head_dim = 256, a.kv_len = 64, a.n = 64;
    const kbcu_devinfo small = {90, 132, 32 * 1024};
    CHECK(plan_dev(&a, "prefill_v1", &small, 0, &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "shared memory"),
          "shared memory limit: %s", msg);
    kbcu_plan_free(&p);
}

/* cuBLASLt's scales put in its layout by a device step before the GEMM. */
/* ---- tuned variants (--tune) ---- */
static int resolve(kb_op_id op, const char *name, kbcu_tuned *t, const kbcu_variant **v, char *msg) {
    return kbcu_resolve_variant(op, name, 1, t, v, msg);
}

/* A tuned name is the variant with the point written into its -D options, and nothing
 * else changed; what the point cannot mean is not_supported with the reason. */
static void test_tune_resolve(void) {
    kbcu_tuned t;
    const kbcu_variant *v;
    char msg[KB_MSG];
    CHECK(resolve(KB_OP_rmsnorm, "v2_b256_i4", &t, &v, msg) == KB_OK &&
              v == kbcu_find_variant(KB_OP_rmsnorm, "v2_b256_i4", 1),
          "a plain name is the table's entry");
    CHECK(resolve(KB_OP_rmsnorm, "v2_b256_i4[BLOCK=128]", &t, &v, msg) == KB_OK && v == &t.v &&
              !strcmp(v->defines, "-DBLOCK=128 -DITEMS=4 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0") && !strcmp(v->name, "v2_b256_i4[BLOCK=128]") &&
              !strcmp(v->kernel, "rmsnorm_v2") && !strcmp(v->source, "rmsnorm.cu") &&
              kbcu_def_int(v, "BLOCK", 0) == 128,
          "v2_b256_i4[BLOCK=128]: %s (%s)", v ? v->defines : "-", msg);
    CHECK(resolve(KB_OP_rmsnorm, "v2_b256_i4[ITEMS=8,BLOCK=512]", &t, &v, msg) == KB_OK &&
              !strcmp(v->defines, "-DBLOCK=512 -DITEMS=8 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0") && !strcmp(v->name, "v2_b256_i4[BLOCK=512,ITEMS=8]"),
          "the tunables in any order; the name comes back sorted: %s", v ? v->name : msg);
    CHECK(resolve(KB_OP_gemm_fp8, "gemv_v2_b256_u2[UNROLL=3]", &t, &v, msg) == KB_OK &&
              !strcmp(v->defines, "-DWARPS=8 -DUNROLL=3 -DMT=1 -DNT=2 -DLDHINT=2 -DPDL=0 -DFMTT=0 -DMINB=0 -DMMA8=0") && v->min_sm == 80,
          "the other options and the minimum architecture stay: %s", v ? v->defines : msg);
    char tun[64];
    kbcu_variant_tunables(KB_OP_attention, kbcu_find_variant(KB_OP_attention, "prefill_v1", 1), tun, sizeof tun);
    CHECK(!strcmp(tun, "WARPS=8"), "prefill_v1's tunables: '%s' (KT is fixed)", tun);

    /* what a point cannot mean */
    int rc = resolve(KB_OP_rmsnorm, "v1_b256[ITEMS=4]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "v1_b256 has no tunable ITEMS") && strstr(msg, "BLOCK=256"),
          "a tunable the variant lacks: %s", msg);
    rc = resolve(KB_OP_rmsnorm, "v1_b256[BLOCK=96]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "BLOCK=96 is outside") && strstr(msg, "power of two from 32 to 1024"),
          "a block that is no power of two: %s", msg);
    rc = resolve(KB_OP_rmsnorm, "v1_b256[BLOCK=2048]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "outside"), "a block above CUDA's 1024 threads: %s", msg);
    rc = resolve(KB_OP_rmsnorm, "v2_b128_i8[ITEMS=9]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "ITEMS=9 is outside") && strstr(msg, "1 to 8"), "ITEMS 9: %s", msg);
    rc = resolve(KB_OP_attention, "prefill_v1[KT=64]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "KT is fixed") && strstr(msg, "WARPS=8"), "a fixed option: %s", msg);
    rc = resolve(KB_OP_attention, "decode_v2[WARPS=8]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "has no tunable WARPS") && strstr(msg, "it has none"),
          "a variant without tunables: %s", msg);
    rc = resolve(KB_OP_rmsnorm, "test_nan[BLOCK=128]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "has no tunable"), "the generic test variant has none: %s", msg);
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    rc = resolve(KB_OP_gemm_fp8, "gemv_v3_m16_w4_s2[WARPS=32]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "3072 threads an SM"), "v3: WARPS*32*MINB over 2048: %s", msg);
    CHECK(resolve(KB_OP_gemm_fp8, "gemv_v3_m16_w4_s2[WARPS=16]", &t, &v, msg) == KB_OK, "... 1536 is fine: %s", msg);
    rc = resolve(KB_OP_gemm_fp8, "gemv_v4_b256_n1[WARPS=16]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "2048 threads an SM") && strstr(msg, "sm_89: 1536"),
          "v4 is compiled for sm_89 too: WARPS*32*MINB over 1536: %s", msg);
    CHECK(resolve(KB_OP_gemm_fp8, "gemv_v4_b256_n2[WARPS=16]", &t, &v, msg) == KB_OK, "... 1536 is fine: %s", msg);
    rc = resolve(KB_OP_gemm_fp8, "gemv_v2_b256_u7_t1_mma8_pdl[MINB=7]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "1792 threads an SM") && strstr(msg, "sm_89: 1536"),
          "v2 is compiled for sm_89 too: WARPS*32*MINB over 1536: %s", msg);
    CHECK(resolve(KB_OP_gemm_fp8, "gemv_v2_b256_u7_t1_mma8_pdl[MINB=3]", &t, &v, msg) == KB_OK &&
              strstr(v->defines, "-DPDL=1 -DFMTT=1 -DMINB=3 -DMMA8=1"),
          "v2's MINB: %s", v ? v->defines : msg);
    rc = resolve(KB_OP_gemm_fp8, "gemv_v2_b256_u2[MMA8=1]", &t, &v, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "MMA8=1 (fp8 mma.sync) needs sm_89") && strstr(msg, "sm_80"),
          "fp8 mma.sync on a variant listed for sm_80: %s", msg);
    const kbcu_op *gemm = kbcu_op_of(KB_OP_gemm_fp8);
    CHECK(resolve(KB_OP_gemm_fp8, "gemv_v2_b512_u2_t1_pdl[MMA8=1]", &t, &v, msg) == KB_OK &&
              strstr(v->defines, "-DMMA8=1") && gemm->acc_unit_roundoff &&
              fabs(gemm->acc_unit_roundoff(v, 3584, 89) - 0x1p-10 / sqrt(3584.0)) < 1e-18 &&
              fabs(gemm->acc_unit_roundoff(v, 3584, 0) - 0x1p-10 / sqrt(3584.0)) < 1e-18 &&
              gemm->acc_unit_roundoff(v, 3584, 90) == 0 &&
              gemm->acc_unit_roundoff(kbcu_find_variant(KB_OP_gemm_fp8, "gemv_v2_b512_u2_t1_pdl", 0), 3584, 89) == 0,
          "MMA8=1: the fp8 tensor core's 2^-10/sqrt(K) on sm_89 and an unknown device, fp32 on sm_90 (HMMA) and at "
          "MMA8=0: %s",
          v ? v->defines : msg);
    CHECK(resolve(KB_OP_gemm_fp8, "gemv_v3_m16_w8[PDL=1]", &t, &v, msg) == KB_OK && strstr(v->defines, "-DPDL=1"),
          "v3 takes PDL (its copies are queued before the wait): %s", v ? v->defines : msg);
    unsetenv("KB_CUDA_UNVERIFIED");
    CHECK(resolve(KB_OP_rmsnorm, "v7[BLOCK=128]", &t, &v, msg) == KB_ERROR && strstr(msg, "no variant 'v7'"),
          "an unknown base: %s", msg);
    const char *malformed[] = {"v1_b256[BLOCK=128", "v1_b256[BLOCK=]", "v1_b256[block=128]", "v1_b256[BLOCK=128]x",
                               "v1_b256[BLOCK=128,BLOCK=64]", "v1_b256[BLOCK=0128]", "v1_b256[BLOCK=-1]", "[BLOCK=1]",
                               "v1_b256[A=1,B=1,C=1,D=1,E=1]"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
        CHECK(resolve(KB_OP_rmsnorm, malformed[i], &t, &v, msg) == KB_ERROR && !v, "malformed '%s': %s", malformed[i],
              msg);

    /* every documented value of every variant's tunables resolves (or an op's check
     * across tunables refuses it, with a reason), and the plan reads it back */
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    int points = 0;
    for (int op = 0; op < KB_OP_COUNT; op++) {
        const kbcu_variant *vars[64];
        const int nv = kbcu_list_variants((kb_op_id)op, 1, vars, 64);
        for (int i = 0; i < nv; i++) {
            char list[64];
            kbcu_variant_tunables((kb_op_id)op, vars[i], list, sizeof list);
            for (char *save, *tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                tok[strcspn(tok, "=")] = 0;
                const kbcu_tunable *tu = kbcu_find_tunable((kb_op_id)op, tok);
                int vals[64];
                const int n = tu ? kbcu_tunable_values(tu, vals, 64) : 0;
                CHECK(n >= 2, "%s/%s: %s has %d values", kbcu_op_name((kb_op_id)op), vars[i]->name, tok, n);
                for (int k = 0; k < n; k++) {
                    kb_tune_point pt = {0};
                    char name[64];
                    kb_tune_set(&pt, tok, vals[k]);
                    kb_tune_name(vars[i]->name, &pt, name, sizeof name);
                    rc = resolve((kb_op_id)op, name, &t, &v, msg);
                    if (rc == KB_NOT_SUPPORTED && msg[0]) continue;
                    CHECK(rc == KB_OK && kbcu_def_int(v, tok, -1) == vals[k], "%s: %s", name, msg);
                    points++;
                }
            }
        }
    }
    unsetenv("KB_CUDA_UNVERIFIED");
    CHECK(points > 200, "%d tuned points resolve", points);
}

/* Plans follow the tuned values: grids and blocks from the -D options of the variant
 * actually run; a value the case or the device cannot take is not_supported, why. */
static void test_tune_plans(void) {
    kbcu_plan p;
    memset(&p, 0, sizeof p);
    char msg[KB_MSG];
    kb_case r = make_case(KB_OP_rmsnorm);
    r.n = 4096, r.k = 3584;
    CHECK(plan(&r, "v1_b256[BLOCK=128]", &p, msg) == KB_OK && p.launch[0].block[0] == 128 &&
              p.launch[0].grid[0] == 4096 && strstr(p.launch[0].opts, "-DBLOCK=128"),
          "rmsnorm v1 at BLOCK=128: a block of 128 a row, compiled with -DBLOCK=128 (%s)", msg);
    CHECK(plan(&r, "v2_b256_i4[BLOCK=512]", &p, msg) == KB_OK && p.launch[0].block[0] == 512 &&
              !strcmp(p.launch[0].opts, "-DBLOCK=512 -DITEMS=4 -DPDL=0 -DLDHINT=1 -DSTHINT=1 -DWPRE=0") && !p.launch[0].pdl,
          "rmsnorm v2 at BLOCK=512: %s", msg);
    int rc = plan(&r, "v2_b256_i4[BLOCK=128]", &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "v2_b256_i4[BLOCK=128]") && strstr(msg, "K <= 2048"),
          "128 threads x 4 float4s hold 2048 of K = 3584: %s", msg);
    CHECK(plan(&r, "v2_b256_i4[BLOCK=128,ITEMS=7]", &p, msg) == KB_OK && p.launch[0].block[0] == 128,
          "... 7 float4s a thread hold it: %s", msg);

    /* PDL=1: the launch carries the attribute (cuda_device.c launches it with
     * cuLaunchKernelEx) and is refused below sm_90, which has no griddepcontrol */
    CHECK(plan(&r, "v2_b256_i4[PDL=1]", &p, msg) == KB_OK && p.launch[0].pdl &&
              strstr(p.launch[0].opts, "-DPDL=1"),
          "rmsnorm v2 at PDL=1: a programmatic dependent launch (%s)", msg);
    const kbcu_devinfo a100 = {80, 108, 163 * 1024};
    rc = plan_dev(&r, "v2_b256_i4[PDL=1]", &a100, 0, &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "PDL=1") && strstr(msg, "sm_90") && strstr(msg, "8.0"),
          "PDL=1 on sm_80: %s", msg);
    CHECK(plan_dev(&r, "v2_b256_i4", &a100, 0, &p, msg) == KB_OK && !p.launch[0].pdl, "PDL=0 runs on sm_80 (%s)",
          msg);
    kb_case g1 = make_case(KB_OP_gemm_fp8);
    g1.m = 3584, g1.k = 3584, g1.n = 1, g1.a_type = g1.b_type = KB_E4M3, g1.out_type = KB_BF16;
    CHECK(plan(&g1, "gemv_v2_b128_u2[PDL=1]", &p, msg) == KB_OK && p.launch[0].pdl,
          "gemv_v2 at PDL=1 (%s)", msg);
    rc = plan(&g1, "gemv_v1_b128[PDL=1]", &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "no tunable PDL"), "gemv_v1 does not wait: no PDL (%s)", msg);
    kb_case sw = make_case(KB_OP_swiglu);
    sw.n = 4, sw.k = 3584;
    rc = plan(&sw, "v1_b256[PDL=1]", &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "PDL"), "an op whose kernels do not wait has no PDL (%s)", msg);

    kb_case a = make_case(KB_OP_add);
    a.n = 4, a.k = 3584;
    CHECK(plan(&a, "v1_b256[BLOCK=64]", &p, msg) == KB_OK && p.launch[0].block[0] == 64 &&
              p.launch[0].grid[0] == 4 * 3584 / 64,
          "add v1 at 64: %lld blocks", (long long)p.launch[0].grid[0]);
    CHECK(plan(&a, "v2_b256[BLOCK=1024]", &p, msg) == KB_OK && p.launch[0].block[0] == 1024 &&
              p.launch[0].grid[0] == kbcu_ceil_div(4 * 3584, 4096),
          "add v2 at 1024: 4 elements a thread");

    kb_case q = make_case(KB_OP_dequant_q4k);
    q.m = 3584, q.k = 3584, q.a_type = KB_Q4K;
    CHECK(plan(&q, "v2_b128[BLOCK=512]", &p, msg) == KB_OK && p.launch[0].block[0] == 512 &&
              p.launch[0].grid[0] == kbcu_ceil_div(3584 * 3584 / 256, 16),
          "dequant v2 at 512: 16 warps, a 256-value block each");
    CHECK(plan(&q, "v2_b64[ITEMS=4]", &p, msg) == KB_OK && p.launch[0].block[0] == 64 &&
              p.launch[0].grid[0] == kbcu_ceil_div(3584 * 3584 / 256, 2 * 4),
          "dequant v2 at ITEMS=4: 2 warps of 4 blocks each a thread block (%s)", msg);


    kb_case f = make_case(KB_OP_quant_fp8);
    f.n = 5, f.k = 3584 + 64, f.a_type = KB_F32, f.out_type = KB_E4M3, f.scale_mode = KB_SCALE_TENSOR;
    CHECK(plan(&f, "v1_b256[BLOCK=64]", &p, msg) == KB_OK && p.nlaunch == 3 && p.launch[0].block[0] == 64 &&
              p.launch[0].grid[0] == kbcu_ceil_div(5 * 29, 2) && p.launch[1].block[0] == 1024 &&
              p.launch[2].block[0] == 64 && p.launch[2].grid[0] == kbcu_ceil_div(5 * 3648, 64),
          "quant_fp8 v1 at 64: the amax and code launches follow BLOCK, the tensor reduction keeps its 1024");

    kb_case g = make_case(KB_OP_gemm_fp8);
    g.m = 3584, g.k = 3584, g.n = 17, g.a_type = g.b_type = KB_E4M3, g.out_type = KB_BF16;
    CHECK(plan(&g, "gemv_v1_b128[NB=16,WARPS=16]", &p, msg) == KB_OK && p.launch[0].block[0] == 512 &&
              p.launch[0].grid[0] == 224 && p.launch[0].grid[1] == 2,
          "gemv_v1 at 16 warps, 16 tokens: 224 x 2 blocks of 512");
    CHECK(plan(&g, "gemv_v2_b256_u2[NT=1,WARPS=2]", &p, msg) == KB_OK && p.launch[0].block[0] == 64 &&
              p.launch[0].grid[1] == 3,
          "gemv_v2 at 2 warps, one n8 tile: 3 token blocks of 64 threads");
    g.m = 3600; /* not a multiple of 32: the last block's second row tile is cut */
    CHECK(plan(&g, "gemv_v2_b256_u4[MT=2]", &p, msg) == KB_OK && p.launch[0].grid[0] == 113 &&
              p.launch[0].grid[1] == 2 && p.launch[0].block[0] == 256,
          "gemv_v2 at MT=2: 32 rows a block, 3600 rows in 113 (%s)", msg);
    CHECK(plan(&g, "gemv_v2_b256_u4", &p, msg) == KB_OK && p.launch[0].grid[0] == 225, "gemv_v2 as listed: 16 rows a block");
    rc = plan(&g, "gemv_v2_b256_u4[MT=3]", &p, msg);
    CHECK(rc != KB_OK && strstr(msg, "MT"), "MT is 1 or 2: %s", msg);
    g.m = 3584, g.n = 16;
    CHECK(plan(&g, "gemv_v2_b512_u2_t1_mt2_pdl", &p, msg) == KB_OK && p.launch[0].grid[0] == 112 &&
              p.launch[0].grid[1] == 2 && p.launch[0].block[0] == 512 && p.launch[0].pdl,
          "gemv_v2_b512_u2_t1_mt2_pdl 3584x16: 112 x 2 blocks of 32 rows x 8 tokens, 16 warps (%s)", msg);
    const kbcu_variant *fmtt1 = kbcu_find_variant(KB_OP_gemm_fp8, "gemv_v2_b512_u2_t1_mt2_pdl", 1),
                       *fmtt0 = kbcu_find_variant(KB_OP_gemm_fp8, "gemv_v2_b256_u4", 1);
    CHECK(fmtt1 && strstr(fmtt1->defines, "-DFMTT=1") && fmtt0 && strstr(fmtt0->defines, "-DFMTT=0"),
          "FMTT is set per listed variant");
    g.n = 64;
    CHECK(plan(&g, "gemv_v2_b256_u4_pdl[MMA8=1,NT=4]", &p, msg) == KB_OK && p.launch[0].grid[0] == 224 &&
              p.launch[0].grid[1] == 2,
          "gemv_v2 at MMA8=1 NT=4: 32 tokens a block, 64 in 2 (%s)", msg);
    rc = plan(&g, "gemv_v2_b256_u4_pdl[NT=4]", &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "NT=4 token tiles a block needs gemv_v2 at MMA8=1"),
          "NT > 2 on the f16 path: %s", msg);
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    rc = plan(&g, "gemv_v5_w8_r4[NT=3]", &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "NT=3"), "v5 holds two token tiles: %s", msg);
    unsetenv("KB_CUDA_UNVERIFIED");
    g.n = 17;
    setenv("KB_CUDA_UNVERIFIED", "1", 1);
    CHECK(plan(&g, "gemv_v3_m32_w8[STAGES=2]", &p, msg) == KB_OK && p.launch[0].smem == 2 * 8 * 32 * 448,
          "gemv_v3 at 2 stages: twice the W slices in shared memory (%s)", msg);
    rc = plan(&g, "gemv_v3_m32_w8[STAGES=3]", &p, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "shared memory") && strstr(msg, "344064"),
          "3 stages need more shared memory than the device has: %s", msg);
    unsetenv("KB_CUDA_UNVERIFIED");

    kb_case m = make_case(KB_OP_gemm_f32);
    m.m = 3584, m.n = 512, m.k = 3584;
    CHECK(plan(&m, "tiled_v1_64x64[BM=128,BN=32]", &p, msg) == KB_OK && p.launch[0].grid[0] == 28 &&
              p.launch[0].grid[1] == 16 && p.launch[0].block[0] == 256,
          "gemm_f32 tiled at 128x32: 28 x 16 tiles, 256 threads (fixed: 16 x 16)");

    kb_case t = make_case(KB_OP_attention);
    t.heads = 28, t.kv_heads = 4, t.head_dim = 128, t.kv_len = 4096, t.n = 1;
    int splits, chunk;
    kbcu_decode_splits(&t, 8, 2, h100.sm_count, &splits, &chunk);
    CHECK(plan(&t, "decode_v1[KPW=2,WARPS=8]", &p, msg) == KB_OK && p.launch[0].block[0] == 256 &&
              p.launch[0].grid[0] == splits && p.launch[0].args[9].i == chunk,
          "decode_v1 at 8 warps x 2 keys: %d splits of %d keys", splits, chunk);
    t.n = 64, t.kv_len = 64;
    CHECK(plan(&t, "prefill_v1[WARPS=4]", &p, msg) == KB_OK && p.launch[0].block[0] == 128 &&
              p.launch[0].grid[0] == 16 && p.launch[0].smem == (2 * 32 * 33 + 4 * 32) * 16,
          "prefill_v1 at 4 warps: 16 query blocks, the q tile shrinks with WARPS");
    kbcu_plan_free(&p);
}

static void test_scale_reorder_plan(void) {
    char msg[KB_MSG];
    kb_case c = make_case(KB_OP_gemm_fp8);
    c.m = 384, c.n = 24, c.k = 640;
    int64_t off[2];
    kbcu_plan p;
    memset(&p, 0, sizeof p);
    c.scale_mode = KB_SCALE_TENSOR;
    CHECK(kblt_scale_reorder_plan(&c, &p, off, msg) == KB_OK && p.nlaunch == 0 && off[0] == -1 && off[1] == -1 &&
              p.workspace == 0,
          "tensor scales pass as they are");
    kbcu_plan_free(&p);
    c.scale_mode = KB_SCALE_VEC128;
    CHECK(kblt_scale_reorder_plan(&c, &p, off, msg) == KB_OK && p.nlaunch == 2 && off[0] == 0 &&
              off[1] == (384 * 5 * 4 + 255) / 256 * 256 && p.workspace >= (uint64_t)(off[1] + 24 * 5 * 4),
          "vec128: both transposed into the workspace");
    CHECK(!strcmp(p.launch[0].kernel, "kb_scales_transpose") && p.launch[0].args[0].tensor == 2 &&
              p.launch[1].args[0].tensor == 3 && p.launch[0].args[2].i == 384 && p.launch[0].args[3].i == 5 &&
              p.launch[0].grid[0] * 256 >= 384 * 5 && p.launch[1].grid[0] * 256 >= 24 * 5 && off[1] % 256 == 0,
          "transposes: src tensors 2 and 3, a thread per scale");
    kbcu_plan_free(&p);
    c.scale_mode = KB_SCALE_BLK128;
    CHECK(kblt_scale_reorder_plan(&c, &p, off, msg) == KB_OK && p.nlaunch == 2 &&
              !strcmp(p.launch[0].kernel, "kb_scales_pad") && p.launch[0].args[2].i == 3 &&
              p.launch[0].args[3].i == 5 && p.launch[0].args[4].i == 8 && p.launch[0].grid[0] * 256 >= 3 * 8,
          "blk128: W's rows padded to kb = 8");
    kbcu_plan_free(&p);
    c.k = 3584; /* kb = 28: W's 128x128 scales need no padding */
    CHECK(kblt_scale_reorder_plan(&c, &p, off, msg) == KB_OK && p.nlaunch == 1 && off[0] == -1 && off[1] == 0 &&
              p.launch[0].args[0].tensor == 3,
          "blk128 at kb %% 4 == 0: only X's transpose");
    kbcu_plan_free(&p);
    c.n = 1, c.scale_mode = KB_SCALE_VEC128;
    CHECK(kblt_scale_reorder_plan(&c, &p, off, msg) == KB_OK && p.nlaunch == 1 && off[1] == -1,
          "vec128 with one token: X's transpose is the identity");
    kbcu_plan_free(&p);
}

/* ---- the driver loader and the probe ---- */
static void test_driver(void) {
    kbcu_driver d;
    char msg[KB_MSG];
    int rc = kbcu_driver_load(&d, "/nonexistent/libcuda.so.1", msg);
    CHECK(rc == KB_NOT_SUPPORTED && strncmp(msg, "no CUDA driver (", 16) == 0, "missing library: %s", msg);
    CHECK(kbcu_result_is_sticky(CUDA_ERROR_ILLEGAL_ADDRESS) && kbcu_result_is_sticky(CUDA_ERROR_LAUNCH_FAILED) &&
              !kbcu_result_is_sticky(CUDA_ERROR_OUT_OF_MEMORY) && !kbcu_result_is_sticky(CUDA_ERROR_INVALID_VALUE),
          "sticky errors");
    char buf[64];
    CHECK(strcmp(kbcu_result_text(NULL, (CUresult)700, buf, sizeof buf), "CUresult 700") == 0, "unnamed result");
#ifdef KB_CUDA_STUB
    /* The toolkit's stub exports every driver entry point: all our names resolve. */
    rc = kbcu_driver_load(&d, KB_CUDA_STUB, msg);
    CHECK(rc == KB_OK, "every symbol resolves in %s: %s", KB_CUDA_STUB, rc == KB_OK ? "" : msg);
    if (rc == KB_OK) {
        CHECK(d.Init(0) != CUDA_SUCCESS, "the stub's cuInit fails");
        kbcu_driver_unload(&d);
    }
#else
    skip("no stub libcuda.so in the toolkit: symbol names not checked");
#endif
    const char *fake = getenv("KB_CUDA_FAKE");
    if (fake) {
        rc = kbcu_driver_load(&d, fake, msg);
        CHECK(rc == KB_OK, "the fake driver exports every symbol: %s", rc == KB_OK ? "" : msg);
        if (rc == KB_OK) kbcu_driver_unload(&d);
    }
    void *real = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (real) {
        dlclose(real);
        skip("a CUDA driver is installed here: the no-driver probe message is not checked");
        return;
    }
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    unsetenv("KB_CUDA_LIBCUDA");
    rc = kb_backend_cuda.probe(&opt, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strncmp(msg, "no CUDA driver (", 16) == 0 && strstr(msg, "libcuda.so.1"),
          "probe without a driver: %s", msg);
    char m2[KB_MSG];
    CHECK(kb_backend_cuda.probe(&opt, m2) == KB_NOT_SUPPORTED && strcmp(m2, msg) == 0, "probe is repeatable");
    CHECK(kb_backend_cublaslt.probe(&opt, m2) == KB_NOT_SUPPORTED && strcmp(m2, msg) == 0, "cublaslt says the same");
    kb_buf b = 0;
    CHECK(kb_backend_cuda.alloc(16, &b, m2) != KB_OK && b == 0, "no allocations without a device");
}

/* ---- talking to a worker directly ---- */
typedef struct {
    pid_t pid;
    int fd;
} raw_worker;

static int raw_start(raw_worker *w) {
    char msg[KB_MSG];
    const char *path = getenv("KB_CUDA_WORKER");
    if (!path || kbcu_spawn_worker(path, &w->pid, &w->fd, msg) != KB_OK) {
        CHECK(0, "start the worker: %s", path ? msg : "KB_CUDA_WORKER unset");
        return -1;
    }
    return 0;
}

/* One request (any header); the reply header, its payload into out (at most cap). 0,
 * or -1 when the worker stops answering. */
static int raw_call(raw_worker *w, uint32_t magic, uint32_t op, uint64_t a, uint64_t b, uint64_t c, const void *payload,
                    uint64_t len, kbcu_rep *rep, void *out, size_t cap) {
    kbcu_req req = {magic, op, a, b, c, len};
    memset(rep, 0, sizeof *rep);
    if (kbcu_send_all(w->fd, &req, sizeof req) || (len && payload && kbcu_send_all(w->fd, payload, (size_t)len)) ||
        kbcu_recv_all(w->fd, rep, sizeof *rep, 30000))
        return -1;
    if (rep->len > cap) return -1;
    if (rep->len && kbcu_recv_all(w->fd, out, (size_t)rep->len, 30000)) return -1;
    rep->msg[KB_MSG - 1] = 0;
    return 0;
}

/* The worker answers (a WAIT), i.e. it is alive and in step. */
static int raw_alive(raw_worker *w) {
    kbcu_rep rep;
    return raw_call(w, KBCU_MAGIC, KBCU_REQ_WAIT, 0, 0, 0, NULL, 0, &rep, NULL, 0) == 0;
}

/* Close our end; the worker must exit by itself with `want`, not die of a signal. */
static void raw_finish(raw_worker *w, int want, const char *what) {
    close(w->fd);
    int status = 0;
    waitpid(w->pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want, "%s: the worker exits with %d (status 0x%x)", what, want,
          status);
}

static int raw_probe(raw_worker *w, const char *libcuda, uint32_t epoch, kbcu_probe_rep *pp, char *msg) {
    kbcu_probe_req pr;
    memset(&pr, 0, sizeof pr);
    pr.epoch = epoch;
    pr.has_libcuda = libcuda != NULL;
    snprintf(pr.libcuda, sizeof pr.libcuda, "%s", libcuda ? libcuda : "");
    pr.has_cache_dir = 1; /* "": no cache */
    kbcu_rep rep;
    if (raw_call(w, KBCU_MAGIC, KBCU_REQ_PROBE, 0, 0, 0, &pr, sizeof pr, &rep, pp, sizeof *pp)) return -1;
    snprintf(msg, KB_MSG, "%s", rep.msg);
    return rep.rc;
}

/* Malformed requests to a worker that was not (or could not be) probed: an error reply
 * each, the stream stays in step. */
static void test_malformed(const char *libcuda) {
    raw_worker w;
    if (raw_start(&w)) return;
    kbcu_rep rep;
    unsigned char junk[40000];
    memset(junk, 0xa5, sizeof junk);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_ALLOC, 64, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              strstr(rep.msg, "not initialised"),
          "alloc before a probe: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_PROBE, 0, 0, 0, junk, 3, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              raw_alive(&w),
          "a probe of 3 bytes: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_UPLOAD, 1, 0, 16, junk, 8, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              strstr(rep.msg, "view's size") && raw_alive(&w),
          "an upload whose payload is not its view: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_UPLOAD, 12345, 0, 1000, junk, 1000, &rep, NULL, 0) == 0 &&
              rep.rc != KB_OK && raw_alive(&w),
          "an upload to a forged buffer: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_DOWNLOAD, 1, 0, 16, junk, 4, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              raw_alive(&w),
          "a download with a payload: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_DOWNLOAD, 77, 5, 16, NULL, 0, &rep, NULL, 0) == 0 && rep.rc != KB_OK &&
              rep.len == 0 && raw_alive(&w),
          "a download of a forged buffer: no bytes, an error: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_COPY, 1, 0, 16, junk, 5, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              strstr(rep.msg, "kb_view") && raw_alive(&w),
          "a device copy whose payload is not a view: %s", rep.msg);
    const kb_view forged_src = {4242, 0, 16};
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_COPY, 77, 0, 16, &forged_src, sizeof forged_src, &rep, NULL, 0) == 0 &&
              rep.rc != KB_OK && raw_alive(&w),
          "a device copy between forged buffers: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_ENQUEUE, 0, 0, 0, junk, 12, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              raw_alive(&w),
          "an enqueue of 12 bytes: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_RUN_TIMED, 1, 0, 0, junk, 8 * 4097, &rep, NULL, 0) == 0 &&
              rep.rc == KB_ERROR && raw_alive(&w),
          "a sequence of 4097 states: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_RECORD, 0, 0, 0, junk, 16, &rep, NULL, 0) == 0 && rep.rc != KB_OK &&
              raw_alive(&w),
          "a record of forged states: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_PREPARE, 0, 0, 0, junk, 10, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              raw_alive(&w),
          "a prepare of 10 bytes: %s", rep.msg);
    unsigned char prep[sizeof(kbcu_prepare_req) + KB_MAX_ARGS * sizeof(kb_arg)];
    kbcu_prepare_req pr;
    memset(&pr, 0, sizeof pr);
    pr.n_in = 9, pr.n_out = 1;
    memcpy(prep, &pr, sizeof pr);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_PREPARE, 0, 0, 0, prep, sizeof pr + 2 * sizeof(kb_arg), &rep, NULL, 0) ==
                  0 &&
              rep.rc == KB_ERROR && strstr(rep.msg, "9 inputs") && raw_alive(&w),
          "a prepare of 9 inputs: %s", rep.msg);
    pr.n_in = 1, pr.n_out = 1, pr.c.op = (kb_op_id)999;
    memcpy(prep, &pr, sizeof pr);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_PREPARE, 0, 0, 0, prep, sizeof pr + 2 * sizeof(kb_arg), &rep, NULL, 0) ==
                  0 &&
              rep.rc == KB_ERROR && strstr(rep.msg, "unknown op") && raw_alive(&w),
          "a prepare of op 999: %s", rep.msg);
    pr.c.op = KB_OP_rmsnorm, pr.c.k = -5;
    memcpy(prep, &pr, sizeof pr);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_PREPARE, 0, 0, 0, prep, sizeof pr + 2 * sizeof(kb_arg), &rep, NULL, 0) ==
                  0 &&
              rep.rc == KB_ERROR && strstr(rep.msg, "out of range") && raw_alive(&w),
          "a prepare of K = -5: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_VARIANTS, 0, 0, 0, junk, 100, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              raw_alive(&w),
          "a variants request of 100 bytes: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, 77, 0, 0, 0, junk, 5, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              strstr(rep.msg, "unknown request") && raw_alive(&w),
          "request 77: %s", rep.msg);
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_WAIT, 0, 0, 0, junk, 4, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              raw_alive(&w),
          "a wait with a payload: %s", rep.msg);
    kbcu_probe_rep pp;
    char msg[KB_MSG];
    if (libcuda) {
        const int rc = raw_probe(&w, libcuda, 3, &pp, msg);
        CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "stub") && strstr(msg, "no CUDA driver"), "probe on the stub: %s",
              msg);
        CHECK(raw_probe(&w, libcuda, 3, &pp, msg) == KB_ERROR && strstr(msg, "twice"), "a second probe: %s", msg);
        CHECK(raw_alive(&w), "the worker serves on after a failed probe");
    }
    CHECK(raw_call(&w, 0xdeadbeefu, KBCU_REQ_WAIT, 0, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
              strstr(rep.msg, "bad magic"),
          "a bad magic is answered: %s", rep.msg);
    raw_finish(&w, 2, "after a bad magic");

    if (raw_start(&w)) return;
    CHECK(raw_call(&w, KBCU_MAGIC, KBCU_REQ_UPLOAD, 1, 0, 0, NULL, (uint64_t)1 << 50, &rep, NULL, 0) == 0 &&
              rep.rc == KB_ERROR && strstr(rep.msg, "impossible"),
          "a 2^50-byte payload is answered: %s", rep.msg);
    raw_finish(&w, 2, "after an impossible length");

    if (raw_start(&w)) return;
    CHECK(raw_alive(&w), "a fresh worker");
    raw_finish(&w, 0, "when kbench closes the socket");
}

static int worker_mode_stub(void) {
    char msg[KB_MSG], m2[KB_MSG];
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    opt.cache_dir = "";
    int rc = kb_backend_cuda.probe(&opt, msg);
    printf("probe: %d %s\n", rc, msg);
    CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "stub") && strstr(msg, "no CUDA driver"),
          "the worker's probe answer travels back: %s", msg);
    CHECK(kb_backend_cublaslt.probe(&opt, m2) == KB_NOT_SUPPORTED && !strcmp(m2, msg), "cublaslt: the same reason");
    kb_buf b = 0;
    rc = kb_backend_cuda.alloc(16, &b, msg);
    CHECK(rc == KB_ERROR_FATAL && b == 0 && strstr(msg, "not running"), "no worker after a failed probe: %s", msg);
    CHECK(kb_backend_cuda.reset(msg) == KB_ERROR, "reset refuses without a probe: %s", msg);
    test_malformed(getenv("KB_CUDA_LIBCUDA"));
    return finish();
}

/* ---- the whole path on the fake driver ---- */
static const kb_backend *cu = &kb_backend_cuda;

static int upload_f32(kb_view v, const float *x, char *msg) { return cu->upload(v, x, msg); }

/* The worker process (our only child). */
static pid_t find_child(void) {
    DIR *d = opendir("/proc");
    pid_t found = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && !found) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) {
            const char *p = strrchr(buf, ')');
            int ppid = 0;
            char state;
            if (p && sscanf(p + 2, "%c %d", &state, &ppid) == 2 && ppid == getpid() && strstr(buf, "kbcuda_worker"))
                found = (pid_t)atoi(e->d_name);
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

static void host_rmsnorm(const float *x, const float *w, float *y, int n, int k, float eps) {
    for (int r = 0; r < n; r++) {
        double ss = 0;
        for (int i = 0; i < k; i++) ss += (double)x[r * k + i] * x[r * k + i];
        const float scale = 1.0f / sqrtf((float)ss / (float)k + eps);
        for (int i = 0; i < k; i++) y[r * k + i] = (x[r * k + i] * scale) * w[i];
    }
}

typedef struct {
    kb_buf xb, wb, yb;
    kb_arg args[3];
} rms_bufs;

/* rmsnorm n x k at byte offset `off` inside buffers of k*n*4 + off + 64 bytes. */
static int rms_make(rms_bufs *r, kb_case *c, int n, int k, uint64_t off, const float *x, const float *w, char *msg) {
    kb_case_init(c, KB_OP_rmsnorm);
    c->n = n, c->k = k;
    const uint64_t xb = (uint64_t)n * k * 4, wb = (uint64_t)k * 4;
    int rc;
    if ((rc = cu->alloc(xb + off + 64, &r->xb, msg)) || (rc = cu->alloc(wb + off + 64, &r->wb, msg)) ||
        (rc = cu->alloc(xb + off + 64, &r->yb, msg)))
        return rc;
    r->args[0] = (kb_arg){KB_F32, (int64_t)n * k, {r->xb, off, xb}};
    r->args[1] = (kb_arg){KB_F32, k, {r->wb, off, wb}};
    r->args[2] = (kb_arg){KB_F32, (int64_t)n * k, {r->yb, off, xb}};
    if ((rc = upload_f32(r->args[0].view, x, msg)) || (rc = upload_f32(r->args[1].view, w, msg))) return rc;
    return KB_OK;
}

static int fake_mode(void) {
    char msg[KB_MSG], m2[KB_MSG];
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    opt.test_variants = 1;
    opt.fast_accum = -1;
    int rc = cu->probe(&opt, msg);
    CHECK(rc == KB_OK, "probe on the fake driver: %s", msg);
    if (rc != KB_OK) return finish();
    const kb_device_info *d = cu->device();
    printf("device: %s; %s\n  %.4g B/s (%s), floor %.3g s (%s), cache %llu, mem %llu / %llu\n", d->name, d->driver,
           d->bw, d->bw_source, d->launch_floor_s, d->launch_source, (unsigned long long)d->cache_bytes,
           (unsigned long long)d->mem_free, (unsigned long long)d->mem_bytes);
    CHECK(!strcmp(d->key, "cuda:0") && strstr(d->name, "fake") && strstr(d->name, "sm_90"), "device key and name");
    CHECK(fabs(d->bw - 2e12) < 2e12 * 1e-4 && strstr(d->bw_source, "best of 5") && strstr(d->bw_source, "128 MiB"),
          "copy bandwidth: %g (%s)", d->bw, d->bw_source);
    CHECK(fabs(d->launch_floor_s - 1e-6) < 1e-9 && strstr(d->launch_source, "median of 51"), "launch floor %g (%s)",
          d->launch_floor_s, d->launch_source);
    CHECK(fabs(d->launch_seq_s - 1e-6) < 1e-9, "back-to-back launch floor %g (the fake's 1 us a launch)",
          d->launch_seq_s);
    CHECK(d->cache_bytes == (1u << 20) && d->mem_bytes == (1ull << 30) && d->mem_free == (900ull << 20),
          "cache and memory");
    CHECK(strstr(d->driver, "cold flush: reads (KB_CUDA_FLUSH=read)") != NULL, "the flush is named: %s", d->driver);
    rc = kb_backend_cublaslt.probe(&opt, m2);
    if (rc == KB_OK) skip("cuBLASLt initialised next to the fake driver (a real driver is installed)");
    else CHECK(rc == KB_NOT_SUPPORTED && m2[0], "cublaslt on the fake device says why: %s", m2);
    CHECK(kb_backend_cublaslt.device() == d, "both fronts share one device info");
    kb_case gc;
    kb_case_init(&gc, KB_OP_gemm_fp8);
    CHECK(cu->flop_peak(&gc) == 1979e12 * 4 / 132.0, "FP8 peak scaled to 4 SMs");

    /* memory and views */
    kb_buf b = 0;
    CHECK(cu->alloc(1000, &b, msg) == KB_OK && b != 0, "alloc: %s", msg);
    unsigned char in[1000], out[1000];
    for (int i = 0; i < 1000; i++) in[i] = (unsigned char)(i * 7 + 3);
    CHECK(cu->upload((kb_view){b, 100, 400}, in, msg) == KB_OK, "upload at an offset: %s", msg);
    memset(out, 0, sizeof out);
    CHECK(cu->download(out, (kb_view){b, 100, 400}, msg) == KB_OK && !memcmp(out, in, 400), "download it back");
    CHECK(cu->download(out, (kb_view){b, 200, 100}, msg) == KB_OK && !memcmp(out, in + 100, 100), "a view inside it");
    CHECK(cu->upload((kb_view){b, 900, 200}, in, msg) == KB_ERROR && strstr(msg, "outside"), "past the end: %s", msg);
    CHECK(cu->download(out, (kb_view){b, UINT64_MAX - 10, 20}, msg) == KB_ERROR && strstr(msg, "outside"),
          "an offset that wraps: %s", msg);
    CHECK(cu->download(out, (kb_view){b, 1000, 0}, msg) == KB_OK, "an empty view at the end");
    CHECK(cu->download(out, (kb_view){b ^ (1ull << 32), 0, 4}, msg) == KB_ERROR && strstr(msg, "unknown buffer"),
          "a handle of another generation: %s", msg);
    /* device to device (the harness's copies of a case's tensors) */
    kb_buf b2 = 0;
    CHECK(cu->alloc(600, &b2, msg) == KB_OK, "alloc: %s", msg);
    memset(out, 0, sizeof out);
    CHECK(cu->copy((kb_view){b2, 50, 400}, (kb_view){b, 100, 400}, msg) == KB_OK &&
              cu->download(out, (kb_view){b2, 50, 400}, msg) == KB_OK && !memcmp(out, in, 400),
          "a device copy between offsets: %s", msg);
    CHECK(cu->copy((kb_view){b2, 0, 300}, (kb_view){b, 0, 400}, msg) == KB_ERROR && strstr(msg, "400 bytes into"),
          "a device copy into a smaller view: %s", msg);
    CHECK(cu->copy((kb_view){b2, 400, 400}, (kb_view){b, 0, 400}, msg) == KB_ERROR && strstr(msg, "outside"),
          "a device copy past the end: %s", msg);
    cu->free(b2);
    CHECK(cu->copy((kb_view){b2, 0, 4}, (kb_view){b, 0, 4}, msg) == KB_ERROR && strstr(msg, "unknown buffer"),
          "a device copy into a freed buffer: %s", msg);
    cu->free(b);
    CHECK(cu->upload((kb_view){b, 0, 4}, in, msg) == KB_ERROR && strstr(msg, "unknown buffer"), "a freed buffer: %s",
          msg);
    /* more than the staging buffer (64 MiB) goes through in pieces */
    const size_t big = (size_t)100 << 20;
    unsigned char *bi = malloc(big), *bo = malloc(big);
    CHECK(cu->alloc(big, &b, msg) == KB_OK, "alloc 100 MiB: %s", msg);
    for (size_t i = 0; i < big; i++) bi[i] = (unsigned char)(i * 2654435761u >> 13);
    CHECK(cu->upload((kb_view){b, 0, big}, bi, msg) == KB_OK && cu->download(bo, (kb_view){b, 0, big}, msg) == KB_OK &&
              !memcmp(bi, bo, big),
          "100 MiB round trip: %s", msg);
    cu->free(b);
    free(bi);
    free(bo);
    CHECK(cu->alloc((size_t)200 << 20, &b, msg) == KB_ERROR && strstr(msg, "OUT_OF_MEMORY"),
          "out of memory is an error: %s", msg);

    /* a kernel state: rmsnorm v1 (the fake runs it), views at an offset */
    enum { N = 3, K = 64 };
    float x[N * K], w[K], y[N * K], want[N * K];
    for (int i = 0; i < N * K; i++) x[i] = (float)sin(0.37 * i) * 2.0f;
    for (int i = 0; i < K; i++) w[i] = 0.5f + 0.01f * (float)i;
    kb_case c;
    rms_bufs r;
    CHECK(rms_make(&r, &c, N, K, 256, x, w, msg) == KB_OK, "rmsnorm buffers: %s", msg);
    host_rmsnorm(x, w, want, N, K, (float)c.eps);
    kb_variant v;
    kb_variant_init(&v, "v1_b256");
    void *s = NULL, *s2 = NULL, *seq = NULL;
    CHECK(cu->prepare(&c, &v, r.args, 2, 1, &s, msg) == KB_OK && s, "prepare rmsnorm v1: %s", msg);
    CHECK(cu->enqueue(&s, 1, msg) == KB_OK && cu->wait(msg) == KB_OK, "enqueue + wait: %s", msg);
    CHECK(cu->download(y, r.args[2].view, msg) == KB_OK && !memcmp(y, want, sizeof y),
          "the arguments arrived (y = ref)");
    double sec = 0;
    CHECK(cu->run_timed(&s, 1, 0, &sec, msg) == KB_OK && fabs(sec - 1e-6) < 1e-9, "run_timed hot: %g s: %s", sec, msg);
    CHECK(cu->run_timed(&s, 1, 1, &sec, msg) == KB_OK && fabs(sec - 1e-6) < 1e-9, "run_timed cold: %g s", sec);
    void *three[3] = {s, s, s};
    CHECK(cu->run_timed(three, 3, 0, &sec, msg) == KB_OK && fabs(sec - 3e-6) < 1e-9, "three states timed together: %g",
          sec);
    /* the checks of prepare */
    kb_variant v2;
    kb_variant_init(&v2, "v2_b256_i4");
    rms_bufs r4;
    kb_case c4;
    CHECK(rms_make(&r4, &c4, N, K, 4, x, w, msg) == KB_OK, "buffers at offset 4: %s", msg);
    CHECK(cu->prepare(&c4, &v2, r4.args, 2, 1, &s2, msg) == KB_NOT_SUPPORTED && strstr(msg, "multiple of 16") && !s2,
          "v2 at a 4-byte offset: %s", msg);
    kb_arg bad[3];
    memcpy(bad, r.args, sizeof bad);
    bad[0].count--;
    CHECK(cu->prepare(&c, &v, bad, 2, 1, &s2, msg) == KB_ERROR && strstr(msg, "tensor 0"), "a wrong count: %s", msg);
    memcpy(bad, r.args, sizeof bad);
    bad[2].view.bytes -= 4;
    CHECK(cu->prepare(&c, &v, bad, 2, 1, &s2, msg) == KB_ERROR && strstr(msg, "needs"), "a short view: %s", msg);
    CHECK(cu->prepare(&c, &v, r.args, 1, 2, &s2, msg) == KB_ERROR, "the wrong number of inputs: %s", msg);
    memcpy(bad, r.args, sizeof bad);
    bad[1].view.offset = 1u << 20;
    CHECK(cu->prepare(&c, &v, bad, 2, 1, &s2, msg) == KB_ERROR && strstr(msg, "outside"), "a view outside: %s", msg);
    kb_variant nov;
    kb_variant_init(&nov, "v9_nothing");
    CHECK(cu->prepare(&c, &nov, r.args, 2, 1, &s2, msg) == KB_ERROR && strstr(msg, "no variant"),
          "an unknown variant: %s", msg);
    /* a tuned variant crosses to the worker as its name and is rebuilt there */
    kb_variant tv;
    kb_variant_init(&tv, "v1_b256[BLOCK=64]");
    memset(y, 0, sizeof y);
    CHECK(cu->prepare(&c, &tv, r.args, 2, 1, &s2, msg) == KB_OK && cu->upload(r.args[2].view, y, msg) == KB_OK &&
              cu->enqueue(&s2, 1, msg) == KB_OK && cu->wait(msg) == KB_OK &&
              cu->download(y, r.args[2].view, msg) == KB_OK && !memcmp(y, want, sizeof y),
          "rmsnorm v1_b256[BLOCK=64] in the worker: %s", msg);
    cu->release(s2);
    s2 = NULL;
    kb_variant_init(&tv, "v1_b256[ITEMS=4]");
    CHECK(cu->prepare(&c, &tv, r.args, 2, 1, &s2, msg) == KB_NOT_SUPPORTED && strstr(msg, "no tunable ITEMS") && !s2,
          "the worker's reason for a point the variant lacks: %s", msg);
    kb_variant_init(&tv, "v1_b256[BLOCK=48]");
    CHECK(cu->prepare(&c, &tv, r.args, 2, 1, &s2, msg) == KB_NOT_SUPPORTED && strstr(msg, "outside") && !s2,
          "... and for a value out of range: %s", msg);

    /* a recorded sequence (a CUDA graph): replays, keeps its states and their buffers */
    CHECK(cu->prepare(&c, &v, r.args, 2, 1, &s2, msg) == KB_OK, "a second state: %s", msg);
    void *pair[2] = {s, s2};
    CHECK(cu->record(pair, 2, &seq, msg) == KB_OK && seq, "record: %s", msg);
    CHECK(cu->record(&seq, 1, &s2 /* unused */, msg) == KB_NOT_SUPPORTED, "a sequence is not recorded again: %s", msg);
    memset(y, 0, sizeof y);
    CHECK(cu->upload(r.args[2].view, y, msg) == KB_OK && cu->enqueue(&seq, 1, msg) == KB_OK && cu->wait(msg) == KB_OK &&
              cu->download(y, r.args[2].view, msg) == KB_OK && !memcmp(y, want, sizeof y),
          "the sequence replays: %s", msg);
    CHECK(cu->run_timed(&seq, 1, 1, &sec, msg) == KB_OK && fabs(sec - 2e-6) < 1e-9, "a sequence timed: %g s", sec);
    cu->release(s);
    cu->free(r.yb); /* its states still hold it */
    CHECK(cu->enqueue(&s, 1, msg) == KB_ERROR && strstr(msg, "unknown state"), "a released state: %s", msg);
    CHECK(cu->enqueue(&seq, 1, msg) == KB_OK && cu->wait(msg) == KB_OK, "the sequence outlives its released state: %s",
          msg);
    CHECK(cu->download(y, r.args[2].view, msg) == KB_ERROR, "a freed buffer's handle is gone");
    cu->release(seq);
    CHECK(cu->enqueue(&seq, 1, msg) == KB_ERROR, "a released sequence");
    cu->release(s2);
    CHECK(cu->enqueue(&s2, 1, msg) == KB_ERROR, "all released");

    /* the generic test variant: the NaN lands in the middle of y */
    CHECK(cu->alloc((uint64_t)N * K * 4, &r.yb, msg) == KB_OK, "a new y: %s", msg);
    r.args[2].view = (kb_view){r.yb, 0, (uint64_t)N * K * 4};
    kb_variant tn;
    kb_variant_init(&tn, "test_nan");
    CHECK(cu->prepare(&c, &tn, r.args, 2, 1, &s, msg) == KB_OK && cu->enqueue(&s, 1, msg) == KB_OK &&
              cu->wait(msg) == KB_OK && cu->download(y, r.args[2].view, msg) == KB_OK,
          "test_nan: %s", msg);
    CHECK(isnan(y[N * K / 2]) && y[0] == want[0] && y[N * K - 1] == want[N * K - 1], "one NaN, the rest rmsnorm");
    cu->release(s);

    /* add v1 (an i64 and an i32 argument) */
    kb_case ac;
    kb_case_init(&ac, KB_OP_add);
    ac.n = 2, ac.k = 5, ac.a_type = KB_F32;
    float av[10], bv[10], yv[10];
    for (int i = 0; i < 10; i++) av[i] = (float)i, bv[i] = 0.25f * (float)i;
    kb_buf ab, bb, yb;
    cu->alloc(40, &ab, msg), cu->alloc(40, &bb, msg), cu->alloc(40, &yb, msg);
    kb_arg aargs[3] = {{KB_F32, 10, {ab, 0, 40}}, {KB_F32, 10, {bb, 0, 40}}, {KB_F32, 10, {yb, 0, 40}}};
    cu->upload(aargs[0].view, av, msg), cu->upload(aargs[1].view, bv, msg);
    kb_variant_init(&v, "v1_b256");
    CHECK(cu->prepare(&ac, &v, aargs, 2, 1, &s, msg) == KB_OK && cu->enqueue(&s, 1, msg) == KB_OK &&
              cu->wait(msg) == KB_OK && cu->download(yv, aargs[2].view, msg) == KB_OK && yv[9] == 9.0f + 2.25f &&
              yv[3] == 3.75f,
          "add: %s", msg);

    /* a sticky fault: FATAL from the next synchronisation on; reset gives a fresh worker */
    char flag[] = "/tmp/kbcu_fault_XXXXXX";
    const int fdf = mkstemp(flag);
    if (fdf >= 0) close(fdf);
    setenv("KB_FAKE_CUDA_FAIL", flag, 1); /* read by the next worker */
    CHECK(cu->reset(msg) == KB_OK, "reset: %s", msg);
    CHECK(cu->enqueue(&s, 1, msg) == KB_ERROR && strstr(msg, "unknown state"), "a state from before the reset: %s",
          msg);
    rms_bufs r5;
    kb_case c5;
    CHECK(rms_make(&r5, &c5, N, K, 0, x, w, msg) == KB_OK, "buffers on the new worker: %s", msg);
    CHECK(cu->prepare(&c5, &v2, r5.args, 2, 1, &s, msg) == KB_OK, "prepare v2 (the fake faults on it): %s", msg);
    CHECK(cu->enqueue(&s, 1, msg) == KB_OK, "the launch itself succeeds: %s", msg);
    rc = cu->wait(msg);
    CHECK(rc == KB_ERROR_FATAL && strstr(msg, "ILLEGAL_ADDRESS") && strstr(msg, "context lost"), "the fault: %d %s", rc,
          msg);
    CHECK(cu->alloc(16, &b, msg) == KB_ERROR_FATAL && strstr(msg, "context lost"), "after it, everything: %s", msg);
    cu->release(s); /* harmless on a lost context */
    unsetenv("KB_FAKE_CUDA_FAIL");
    remove(flag);
    CHECK(kb_backend_cublaslt.reset(msg) == KB_OK, "reset through the other front: %s", msg);
    CHECK(rms_make(&r5, &c5, N, K, 0, x, w, msg) == KB_OK, "the new worker works: %s", msg);
    kb_variant_init(&v, "v1_b256");
    CHECK(cu->prepare(&c5, &v, r5.args, 2, 1, &s, msg) == KB_OK && cu->enqueue(&s, 1, msg) == KB_OK &&
              cu->wait(msg) == KB_OK && cu->download(y, r5.args[2].view, msg) == KB_OK && !memcmp(y, want, sizeof y),
          "and computes: %s", msg);
    CHECK(cu->device() == d && fabs(d->launch_floor_s - 1e-6) < 1e-9, "the measurements are kept across a reset");

    /* a worker that dies */
    const pid_t child = find_child();
    CHECK(child > 0, "found the worker process");
    if (child > 0) {
        kill(child, SIGKILL);
        rc = cu->enqueue(&s, 1, msg);
        CHECK(rc == KB_ERROR_FATAL && strstr(msg, "signal 9"), "a killed worker: %s", msg);
        CHECK(cu->alloc(16, &b, m2) == KB_ERROR_FATAL && !strcmp(m2, msg), "stays lost until a reset: %s", m2);
        CHECK(cu->reset(msg) == KB_OK, "reset after a kill: %s", msg);
    }

    /* the blocking kernel's timeout: a late host means no sample; retaken, or an error */
    setenv("KB_FAKE_CUDA_LATE", "2", 1);
    CHECK(cu->reset(msg) == KB_OK && rms_make(&r5, &c5, N, K, 0, x, w, msg) == KB_OK &&
              cu->prepare(&c5, &v, r5.args, 2, 1, &s, msg) == KB_OK,
          "a worker whose first two samples come late: %s", msg);
    CHECK(cu->run_timed(&s, 1, 0, &sec, msg) == KB_OK && fabs(sec - 1e-6) < 1e-9, "the third try is the sample: %s",
          msg);
    setenv("KB_FAKE_CUDA_LATE", "3", 1);
    CHECK(cu->reset(msg) == KB_OK && rms_make(&r5, &c5, N, K, 0, x, w, msg) == KB_OK &&
              cu->prepare(&c5, &v, r5.args, 2, 1, &s, msg) == KB_OK,
          "a worker whose first three samples come late: %s", msg);
    rc = cu->run_timed(&s, 1, 0, &sec, msg);
    CHECK(rc == KB_ERROR && strstr(msg, "gave up 3 times"), "no sample after three: %s", msg);
    unsetenv("KB_FAKE_CUDA_LATE");
    CHECK(cu->run_timed(&s, 1, 0, &sec, msg) == KB_OK, "and the worker goes on: %s", msg);

    /* a device whose kernels take at most 256 threads a block (registers): a tuned block
     * beyond it is not_supported, told by the compiled function, not a failed launch */
    setenv("KB_FAKE_CUDA_MAX_THREADS", "256", 1);
    kb_variant wide;
    kb_variant_init(&wide, "v1_b256[BLOCK=512]");
    CHECK(cu->reset(msg) == KB_OK && rms_make(&r5, &c5, N, K, 0, x, w, msg) == KB_OK &&
              cu->prepare(&c5, &wide, r5.args, 2, 1, &s, msg) == KB_NOT_SUPPORTED && strstr(msg, "512 threads") &&
              strstr(msg, "at most 256"),
          "BLOCK=512 on a 256-thread kernel: %s", msg);
    kb_variant_init(&wide, "v1_b256[BLOCK=256]");
    CHECK(cu->prepare(&c5, &wide, r5.args, 2, 1, &s, msg) == KB_OK, "BLOCK=256 fits it: %s", msg);
    unsetenv("KB_FAKE_CUDA_MAX_THREADS");

    /* a blocking kernel that never sees the host's flag: the probe falls back to timing
     * without it, and says so */
    setenv("KB_FAKE_CUDA_LATE", "1000", 1);
    raw_worker lw;
    if (raw_start(&lw) == 0) {
        kbcu_probe_rep pp;
        kbcu_probe_req pr;
        memset(&pr, 0, sizeof pr);
        pr.epoch = 9, pr.measure = 1, pr.has_libcuda = 1, pr.has_cache_dir = 0;
        snprintf(pr.libcuda, sizeof pr.libcuda, "%s", getenv("KB_CUDA_LIBCUDA"));
        kbcu_rep rep;
        CHECK(raw_call(&lw, KBCU_MAGIC, KBCU_REQ_PROBE, 0, 0, 0, &pr, sizeof pr, &rep, &pp, sizeof pp) == 0 &&
                  rep.rc == KB_OK && strstr(pp.info.launch_source, "NO blocking kernel") &&
                  fabs(pp.info.launch_floor_s - 1e-6) < 1e-9,
              "the blocking kernel timed out at probe: %s (%s)", pp.info.launch_source, rep.msg);
        raw_finish(&lw, 0, "a worker without the blocking kernel");
    }
    unsetenv("KB_FAKE_CUDA_LATE");

    /* handles of another worker, forged ones, and the sequence limits, straight to a worker */
    raw_worker rw;
    if (raw_start(&rw) == 0) {
        kbcu_probe_rep pp;
        rc = raw_probe(&rw, getenv("KB_CUDA_LIBCUDA"), 7, &pp, msg);
        CHECK(rc == KB_OK && !strcmp(pp.info.key, "cuda:0") && pp.dev.sm == 90 && pp.info.bw == 0,
              "a raw probe (no measurements): %s", msg);
        kbcu_rep rep;
        raw_call(&rw, KBCU_MAGIC, KBCU_REQ_ALLOC, 64, 0, 0, NULL, 0, &rep, NULL, 0);
        const uint64_t h = rep.a;
        CHECK(rep.rc == KB_OK && h >> 48 == 7, "handles carry the epoch: 0x%llx", (unsigned long long)h);
        const uint64_t forged[] = {h ^ (1ull << 48), h | (1ull << 47), h + 1, h ^ (1ull << 33), 0};
        for (int i = 0; i < 5; i++)
            CHECK(raw_call(&rw, KBCU_MAGIC, KBCU_REQ_DOWNLOAD, forged[i], 0, 4, NULL, 0, &rep, NULL, 0) == 0 &&
                      rep.rc == KB_ERROR && strstr(rep.msg, "unknown buffer") && rep.len == 0,
                  "forged handle %d refused: %s", i, rep.msg);
        CHECK(raw_call(&rw, KBCU_MAGIC, KBCU_REQ_ENQUEUE, 0, 0, 0, &h, 8, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR &&
                  strstr(rep.msg, "unknown state"),
              "a buffer is no state: %s", rep.msg);
        CHECK(raw_call(&rw, KBCU_MAGIC, KBCU_REQ_RECORD, 0, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR,
              "record nothing: %s", rep.msg);
        CHECK(raw_call(&rw, KBCU_MAGIC, KBCU_REQ_RUN_TIMED, 0, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR,
              "time nothing: %s", rep.msg);
        CHECK(raw_call(&rw, KBCU_MAGIC, KBCU_REQ_ENQUEUE, 0, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_OK,
              "enqueue nothing: %s", rep.msg);
        CHECK(raw_call(&rw, KBCU_MAGIC, KBCU_REQ_FREE, h, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_OK &&
                  raw_call(&rw, KBCU_MAGIC, KBCU_REQ_FREE, h, 0, 0, NULL, 0, &rep, NULL, 0) == 0 && rep.rc == KB_ERROR,
              "a double free is refused: %s", rep.msg);
        raw_finish(&rw, 0, "a probed worker");
    }
    return finish();
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "stub")) return worker_mode_stub();
    if (argc > 1 && !strcmp(argv[1], "fake")) return fake_mode();
    if (argc > 1 && !strcmp(argv[1], "noworker")) {
        char msg[KB_MSG];
        kb_options opt;
        memset(&opt, 0, sizeof opt);
        const int rc = kb_backend_cuda.probe(&opt, msg);
        CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "KB_CUDA_WORKER") && strstr(msg, "not an executable"),
              "missing worker: %s", msg);
        return finish();
    }
    char tmp[] = "/tmp/kbcu_test_XXXXXX";
    if (!mkdtemp(tmp)) {
        printf("mkdtemp failed\n0 passed, 1 failed\n");
        return 1;
    }
    test_fnv();
    test_include(tmp);
    test_cache_dir();
    test_cache_roundtrip(tmp);
    test_variants();
    test_fp8_encode();
    test_plans_all();
    test_geometry();
    test_tune_resolve();
    test_tune_plans();
    test_scale_reorder_plan();
    test_driver();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp);
    return finish();
}
