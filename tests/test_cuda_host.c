/* test_cuda_host.c - the cuda backend's host logic, on a machine without a GPU:
 * FNV-1a and the cubin cache key, CUDA include discovery and its error text, the
 * cache directory rules, the variant list, launch-geometry arithmetic, the driver
 * loader (missing library; the toolkit's stub libcuda when there is one) and the
 * probe's reason when no driver is installed. */
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/cuda_driver.h"
#include "kernels/cuda/nvrtc_build.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const kb_backend kb_backend_cuda;

#include "tests/kb_check.h"

static int skipped;


static void skip(const char *why) {
    skipped++;
    printf("SKIP %s\n", why);
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
    CHECK(nhdr >= 1, "q4k.cuh is embedded as a header");
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
    CHECK(kbcu_find_include(NULL, 0, out, sizeof out, msg) == KB_ERROR && strstr(msg, "nothing"),
          "no candidates: %s", msg);

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
    rc = kbcu_compile("warn.cu", "extern \"C\" __global__ void k(float *y) { int unused; y[0] = 1.0f; }\n", "",
                      "sm_90", inc, NULL, &a, msg);
    CHECK(rc == KB_OK && strstr(a.log, "unused") != NULL, "warnings reach the log: '%s'", a.log);
    free(a.image);
    rc = kbcu_compile("bad.cu", "this is not CUDA", "", "sm_90", inc, NULL, &a, msg);
    CHECK(rc == KB_ERROR && strstr(msg, "bad.cu"), "a compile error names the source: %s", msg);
    free(a.image);
}

/* ---- variants ---- */
static kb_case base_case(kb_op_id op) {
    kb_case c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.eps = 1e-6;
    c.theta = 1e6;
    c.max_pos = 32768;
    c.a_type = op == KB_OP_EMBED ? KB_Q4K : KB_E4M3;
    c.b_type = KB_E4M3;
    c.out_type = KB_BF16;
    return c;
}

static void test_variants(void) {
    kb_variant v[32];
    char msg[KB_MSG];
    unsetenv("KB_TEST_VARIANTS");
    for (int op = 0; op < KB_OP_COUNT; op++) {
        kb_case c = base_case((kb_op_id)op);
        int n = kb_backend_cuda.variants(&c, NULL, v, 32, msg);
        CHECK(n >= 2, "%s has at least two variants (got %d)", kb_op_name((kb_op_id)op), n);
        for (int i = 0; i < n; i++) {
            CHECK(strncmp(v[i].name, "test_", 5) != 0, "test variant %s listed without KB_TEST_VARIANTS", v[i].name);
            CHECK(strstr(v[i].detail, "-D") != NULL, "detail has the -D options: %s", v[i].detail);
            CHECK(v[i].acc_unit_roundoff == 0, "fp32 accumulation declared");
            for (int j = 0; j < i; j++) CHECK(strcmp(v[i].name, v[j].name) != 0, "duplicate name %s", v[i].name);
        }
    }
    kb_case g = base_case(KB_OP_GEMM_FP8);
    g.b_type = KB_E5M2;
    CHECK(kb_backend_cuda.variants(&g, NULL, v, 1, msg) == 1, "max is respected");

    kb_case r = base_case(KB_OP_RMSNORM);
    int plain = kb_backend_cuda.variants(&r, NULL, v, 32, msg);
    setenv("KB_TEST_VARIANTS", "1", 1);
    int with = kb_backend_cuda.variants(&r, NULL, v, 32, msg);
    int fault = 0, unwritten = 0;
    for (int i = 0; i < with; i++) {
        fault += strcmp(v[i].name, "test_fault") == 0;
        unwritten += strcmp(v[i].name, "test_unwritten") == 0;
    }
    CHECK(with == plain + 2 && fault == 1 && unwritten == 1, "KB_TEST_VARIANTS=1 adds test_fault and test_unwritten");
    unsetenv("KB_TEST_VARIANTS");
    CHECK(kbcu_find_def(KB_OP_RMSNORM, "test_fault", 0) == NULL, "test_fault hidden from prepare without the env");

    /* every definition's source is embedded and defines its entry point */
    for (int i = 0; i < kbcu_kernel_def_count; i++) {
        const kbcu_kernel_def *d = &kbcu_kernel_defs[i];
        const char *src = kbcu_source_text(d->source);
        CHECK(src != NULL, "%s is embedded", d->source);
        if (src && !strchr(d->kernel, '{')) {
            char first[64];
            snprintf(first, sizeof first, "%.*s", (int)strcspn(d->kernel, ","), d->kernel);
            CHECK(strstr(src, first) != NULL, "%s defines %s", d->source, first);
        }
    }
}

/* ---- launch geometry ---- */
static const kbcu_devinfo h100 = {90, 132, 227 * 1024};

static int plan(const kb_case *c, const char *variant, kbcu_plan *p, char *msg) {
    const kbcu_kernel_def *d = kbcu_find_def(c->op, variant, 1);
    if (!d) {
        snprintf(msg, KB_MSG, "no def %s", variant);
        return -1;
    }
    return kbcu_plan_case(c, d, &h100, p, msg);
}

static void test_geometry(void) {
    kbcu_plan p;
    char msg[KB_MSG];

    kb_case g = base_case(KB_OP_GEMM_FP8);
    g.m = 3584, g.k = 3584, g.n = 1;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.nlaunch == 1 && p.launch[0].grid[0] == 224 &&
              p.launch[0].grid[1] == 1 && p.launch[0].block[0] == 256,
          "gemv_v2 3584x1: 224x1 blocks of 256");
    CHECK(p.spec[0] == 0 && p.launch[0].nargs == 11 && p.launch[0].args[10].i == 0, "e4m3 x e4m3: fmt 0");
    g.a_type = KB_E5M2, g.b_type = KB_E5M2;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.launch[0].args[10].i == 3, "e5m2 x e5m2: fmt 3");
    g.a_type = KB_E4M3;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.launch[0].args[10].i == 2, "e4m3 x e5m2: fmt 2");
    g.b_type = KB_E4M3;
    g.n = 17;
    CHECK(plan(&g, "gemv_v2_b128_u2", &p, msg) == KB_OK && p.launch[0].grid[1] == 2 && p.launch[0].block[0] == 128,
          "N = 17 takes two 16-token blocks");
    CHECK(plan(&g, "gemv_v2_b256_u7_t1", &p, msg) == KB_OK && p.launch[0].grid[1] == 3,
          "one n8 tile: N = 17 takes three 8-token blocks");
    g.n = 16, g.m = 3585;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_OK && p.launch[0].grid[0] == 225, "M = 3585: 225 row blocks");
    g.k = 3583;
    CHECK(plan(&g, "gemv_v2_b256_u2", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "K % 16"), "K %% 16: %s", msg);
    CHECK(plan(&g, "gemv_v1_b128", &p, msg) == KB_OK && p.launch[0].grid[0] == 897 && p.launch[0].grid[1] == 2,
          "v1 takes any K: grid %u x %u", p.launch[0].grid[0], p.launch[0].grid[1]);
    CHECK(p.launch[0].nargs == 11 && p.launch[0].args[9].kind == KBCU_ARG_I32 && p.launch[0].args[9].i == 2,
          "bf16 output code 2");
    g.k = 3584, g.out_type = KB_E4M3;
    CHECK(plan(&g, "gemv_v1_b128", &p, msg) == KB_NOT_SUPPORTED, "fp8 output is not supported");
    g.out_type = KB_F16;
    kbcu_devinfo old = {75, 40, 64 * 1024};
    CHECK(kbcu_plan_case(&g, kbcu_find_def(KB_OP_GEMM_FP8, "gemv_v2_b256_u2", 0), &old, &p, msg) == KB_NOT_SUPPORTED &&
              strstr(msg, "8.0"),
          "mma.sync needs sm_80: %s", msg);

    kb_case r = base_case(KB_OP_RMSNORM);
    r.n = 512, r.k = 3584;
    CHECK(plan(&r, "v2_b256_i4", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].block[0] == 256,
          "rmsnorm: a block per token");
    CHECK(p.launch[0].args[4].kind == KBCU_ARG_F32 && p.launch[0].args[4].f == 1e-6, "eps from the case");
    r.k = 4100;
    CHECK(plan(&r, "v2_b256_i4", &p, msg) == KB_NOT_SUPPORTED, "v2 row beyond its registers");
    r.k = 3586;
    CHECK(plan(&r, "v2_b256_i4", &p, msg) == KB_NOT_SUPPORTED, "v2 needs K %% 4 == 0");
    CHECK(plan(&r, "v1_b256", &p, msg) == KB_OK, "v1 takes any K");

    kb_case d = base_case(KB_OP_DEQUANT_Q4K);
    d.m = 18944, d.k = 3584;
    CHECK(plan(&d, "v2_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 33152 && p.launch[0].args[2].i == 265216,
          "dequant v2: 265216 blocks, 8 per CTA");
    CHECK(plan(&d, "v1_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 265216 &&
              p.launch[0].args[2].i == 18944LL * 3584,
          "dequant v1: a thread per value");

    kb_case ro = base_case(KB_OP_ROPE_NEOX);
    ro.n = 512, ro.heads = 28, ro.head_dim = 128;
    CHECK(plan(&ro, "v1_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 * 28 * 64 / 256, "rope v1 grid");
    CHECK(plan(&ro, "v2_b256", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].smem == 512,
          "rope v2: a block per token, d floats of shared memory");
    CHECK(p.launch[0].args[6].kind == KBCU_ARG_F64 && p.launch[0].args[6].f == 1e6, "theta from the case");
    CHECK(plan(&ro, "v3_b256_i2", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].smem == 512 &&
              strcmp(p.launch[0].kernel, "rope_neox_v3") == 0,
          "rope v3: v2's geometry");
    ro.head_dim = 68;
    CHECK(plan(&ro, "v2_b256", &p, msg) == KB_NOT_SUPPORTED, "rope v2 needs d %% 8 == 0");

    kb_case a = base_case(KB_OP_ATTENTION);
    a.heads = 28, a.kv_heads = 4, a.head_dim = 128, a.kv_len = 4096, a.n = 1;
    int splits, chunk;
    kbcu_decode_splits(&a, 4, 4, 132, &splits, &chunk);
    CHECK(splits == 19 && chunk == 224, "decode 4096 keys on 132 SMs: %d splits of %d", splits, chunk);
    CHECK(plan(&a, "decode_v1", &p, msg) == KB_OK && p.nlaunch == 2 && p.launch[0].grid[0] == 19 &&
              p.launch[0].grid[1] == 28 && p.launch[1].grid[0] == 28 &&
              p.workspace == (size_t)(2 * 28 * 19 + 28 * 19 * 128) * 4,
          "decode: partials + combine, workspace");
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
              p.launch[1].smem == (128 + 5) * 4 && p.workspace == (size_t)(28 * 128 * 128 + 2 * 28 * 128) * 4,
          "decode_v2: a block per (split, KV head), workspace %zu", p.workspace);
    a.kv_len = 32768;
    kbcu_decode_splits_v2(&a, 32, 132, &splits, &chunk);
    CHECK(splits == 256 && chunk == 128, "decode_v2 32768 keys: %d splits of %d", splits, chunk);
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
    CHECK(plan(&a, "decode_v2", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "8 query heads"), "GQA group > 8: %s",
          msg);
    a.heads = 28;
    a.kv_len = 4096, a.n = 17;
    CHECK(plan(&a, "decode_v1", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "prefill_v1"), "decode n > 16: %s", msg);
    a.n = 4096;
    CHECK(plan(&a, "prefill_v1", &p, msg) == KB_OK && p.launch[0].grid[0] == 512 && p.launch[0].grid[1] == 28 &&
              p.launch[0].smem == (2 * 32 * 33 + 8 * 32) * 16,
          "prefill: 8 queries a block, K/V tiles in shared memory");
    a.head_dim = 260;
    CHECK(plan(&a, "prefill_v1", &p, msg) == KB_NOT_SUPPORTED, "head_dim > 256");

    kb_case e = base_case(KB_OP_EMBED);
    e.m = 152064, e.k = 3584, e.n = 512;
    CHECK(plan(&e, "v2_b256", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_q4k_v2") == 0 &&
              p.launch[0].grid[0] == 2 && p.launch[0].grid[1] == 512,
          "embed v2: 14 blocks a row, 8 warps a CTA");
    e.a_type = KB_F16;
    CHECK(plan(&e, "v2_b256", &p, msg) == KB_NOT_SUPPORTED, "embed v2 is Q4_K only");
    CHECK(plan(&e, "v1_b256", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_f16_v1") == 0, "f16 table");
    e.a_type = KB_Q6K;
    CHECK(plan(&e, "v1_b256", &p, msg) == KB_OK && strcmp(p.launch[0].kernel, "embed_q6k_v1") == 0, "q6_k table");
    e.n = 70000;
    CHECK(plan(&e, "v1_b256", &p, msg) == KB_NOT_SUPPORTED && strstr(msg, "65535"), "grid.y limit: %s", msg);
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

    void *real = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (real) {
        dlclose(real);
        skip("a CUDA driver is installed here: the no-driver probe message is not checked");
    } else {
        kb_options opt;
        memset(&opt, 0, sizeof opt);
        rc = kb_backend_cuda.probe(&opt, msg);
        CHECK(rc == KB_NOT_SUPPORTED && strncmp(msg, "no CUDA driver (", 16) == 0 && strstr(msg, "libcuda.so.1"),
              "probe without a driver: %s", msg);
        char m2[KB_MSG];
        CHECK(kb_backend_cuda.probe(&opt, m2) == KB_NOT_SUPPORTED && strcmp(m2, msg) == 0, "probe is repeatable");
        void *buf2 = NULL;
        CHECK(kb_backend_cuda.alloc(16, &buf2, m2) != KB_OK, "no allocations without a device");
        CHECK(strcmp(kb_backend_cuda.device_name(), "none") == 0, "device name without a device");
    }
}

/* Modes for the worker path, run by CTest with KB_CUDA_LIBCUDA pointing at the
 * toolkit's stub libcuda (it loads, but cuInit fails: no GPU needed):
 *   stub:     KB_CUDA_WORKER = the built worker: probe goes through a real worker
 *             process and the socket protocol, and comes back "no CUDA driver".
 *   noworker: KB_CUDA_WORKER = a path that does not exist: a clear reason. */
static int worker_mode(const char *mode) {
    char msg[KB_MSG];
    kb_options opt;
    memset(&opt, 0, sizeof opt);
    opt.cache_dir = "";
    int rc = kb_backend_cuda.probe(&opt, msg);
    printf("probe: %d %s\n", rc, msg);
    if (strcmp(mode, "stub") == 0) {
        CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "stub") && strstr(msg, "no CUDA driver"),
              "the worker's probe answer travels back: %s", msg);
        void *buf = NULL;
        rc = kb_backend_cuda.alloc(16, &buf, msg);
        CHECK(rc != KB_OK && buf == NULL, "no worker after a failed probe: %s", msg);
        CHECK(kb_backend_cuda.reset(msg) == KB_ERROR, "reset refuses without a probe: %s", msg);
    } else {
        CHECK(rc == KB_NOT_SUPPORTED && strstr(msg, "KB_CUDA_WORKER") && strstr(msg, "not an executable"),
              "missing worker: %s", msg);
    }
    printf("%d passed, %d failed (%d skipped)\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1) return worker_mode(argv[1]);
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
    test_geometry();
    test_driver();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp);
    printf("%d passed, %d failed (%d skipped)\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
