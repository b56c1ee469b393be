/* nvrtc_build.c - NVRTC compilation, the cubin cache, include discovery (nvrtc_build.h). */
#include "kernels/cuda/nvrtc_build.h"

#include <nvrtc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KB_CUDA_INCLUDE_FALLBACK
#define KB_CUDA_INCLUDE_FALLBACK ""
#endif

const char *kbcu_source_text(const char *name) {
    for (int i = 0; i < kbcu_source_count; i++)
        if (strcmp(kbcu_sources[i].name, name) == 0) return kbcu_sources[i].text;
    return NULL;
}

/* ---- hashing ---------------------------------------------------------------- */
/* FNV-1a 64 (Fowler, Noll, Vo; offset 0xcbf29ce484222325, prime 0x100000001b3). */
uint64_t kbcu_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= KBCU_FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) {
    h = kbcu_fnv1a(h, s ? s : "", s ? strlen(s) : 0);
    return kbcu_fnv1a(h, "", 1); /* the terminating 0 separates fields */
}

/* Embedded sources named *.cuh: headers handed to NVRTC with every program (the
 * tests check that every one of them fits). */
static int embedded_headers(const char **text, const char **name, int max) {
    int n = 0;
    for (int i = 0; i < kbcu_source_count && n < max; i++) {
        size_t len = strlen(kbcu_sources[i].name);
        if (len > 4 && strcmp(kbcu_sources[i].name + len - 4, ".cuh") == 0) {
            text[n] = kbcu_sources[i].text;
            name[n++] = kbcu_sources[i].name;
        }
    }
    return n;
}

uint64_t kbcu_cache_key(const char *src, const char *opts, const char *arch, int nvrtc_major, int nvrtc_minor) {
    char ver[32];
    snprintf(ver, sizeof ver, "nvrtc %d.%d", nvrtc_major, nvrtc_minor);
    uint64_t h = KBCU_FNV_OFFSET;
    /* a header change must miss the cache too */
    const char *hdr_text[KBCU_MAX_HEADERS], *hdr_name[KBCU_MAX_HEADERS];
    int nhdr = embedded_headers(hdr_text, hdr_name, KBCU_MAX_HEADERS);
    for (int i = 0; i < nhdr; i++) h = fnv_str(fnv_str(h, hdr_name[i]), hdr_text[i]);
    h = fnv_str(h, src);
    h = fnv_str(h, opts);
    h = fnv_str(h, arch);
    return fnv_str(h, ver);
}

/* ---- where things are --------------------------------------------------------- */
static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int kbcu_find_include(const char *const *candidates, int n, char *out, size_t cap, char *msg) {
    char tried[KB_MSG] = "";
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const char *dir = candidates[i];
        if (!dir || !*dir) continue;
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/cuda_fp16.h", dir);
        if (file_exists(probe)) {
            snprintf(out, cap, "%s", dir);
            return KB_OK;
        }
        if (used < sizeof tried) used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", dir);
    }
    if (out && cap) out[0] = 0;
    return kb_fail(msg, KB_ERROR,
                   "CUDA headers not found (NVRTC needs cuda_fp16.h; set CUDA_HOME to the toolkit; tried: %s)",
                   used ? tried : "nothing");
}

int kbcu_cuda_include(char *out, size_t cap, char *msg) {
    char home[2048] = "", path[2048] = "";
    const char *e = getenv("CUDA_HOME");
    if (e && *e) snprintf(home, sizeof home, "%s/include", e);
    e = getenv("CUDA_PATH");
    if (e && *e) snprintf(path, sizeof path, "%s/include", e);
    const char *cands[] = {home, path, "/usr/local/cuda/include", KB_CUDA_INCLUDE_FALLBACK};
    return kbcu_find_include(cands, 4, out, cap, msg);
}

int kbcu_cache_dir(const char *opt_dir, char *out, size_t cap) {
    if (opt_dir) {
        if (!*opt_dir) return 0;
        snprintf(out, cap, "%s", opt_dir);
        return 1;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(out, cap, "%s/kbench", xdg);
        return 1;
    }
    const char *home = getenv("HOME");
    if (home && *home) {
        snprintf(out, cap, "%s/.cache/kbench", home);
        return 1;
    }
    return 0;
}

void kbcu_arch_name(int major, int minor, char *out, size_t cap) { snprintf(out, cap, "sm_%d%d", major, minor); }

void kbcu_nvrtc_version(int *major, int *minor) {
    if (nvrtcVersion(major, minor) != NVRTC_SUCCESS) *major = *minor = 0;
}

int kbcu_nvrtc_supports(int sm) {
    int n = 0;
    if (nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0 || n > 256) return 0;
    int archs[256];
    if (nvrtcGetSupportedArchs(archs) != NVRTC_SUCCESS) return 0;
    for (int i = 0; i < n; i++)
        if (archs[i] == sm) return 1;
    return 0;
}

/* ---- the cache ------------------------------------------------------------------ */
static int mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

static void cache_path(const char *dir, const char *name, uint64_t key, char *out, size_t cap) {
    char stem[64];
    snprintf(stem, sizeof stem, "%s", name);
    char *dot = strrchr(stem, '.');
    if (dot) *dot = 0;
    snprintf(out, cap, "%s/%s-%016llx.cubin", dir, stem, (unsigned long long)key);
}

static int cache_read(const char *path, kbcu_binary *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
            void *buf = malloc((size_t)n);
            if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
                out->image = buf;
                out->size = (size_t)n;
                ok = 1;
            } else {
                free(buf);
            }
        }
    }
    fclose(f);
    return ok;
}

/* Best effort: a cache that cannot be written only costs a recompile next time.
 * Written to a unique temporary name, then renamed: concurrent kbench runs never
 * see a half-written cubin. */
static void cache_write(const char *dir, const char *path, const void *data, size_t n) {
    if (mkdir_p(dir) != 0) return;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    int ok = fwrite(data, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

/* ---- compile ----------------------------------------------------------------------- */
#define MAX_OPTS 32

static int first_lines(const char *log, char *out, size_t cap) {
    /* the log's first two lines, on one line, for a row's message */
    size_t j = 0;
    int lines = 0;
    for (size_t i = 0; log[i] && j + 1 < cap && lines < 2; i++) {
        if (log[i] == '\n') {
            lines++;
            if (j && lines < 2) out[j++] = ' ';
            continue;
        }
        out[j++] = log[i];
    }
    out[j] = 0;
    return (int)j;
}

int kbcu_compile(const char *name, const char *src, const char *opts, const char *arch, const char *include_dir,
                 const char *cache_dir, kbcu_binary *out, char *msg) {
    memset(out, 0, sizeof *out);
    int vmaj, vmin;
    kbcu_nvrtc_version(&vmaj, &vmin);
    out->key = kbcu_cache_key(src, opts, arch, vmaj, vmin);
    char path[1024] = "";
    if (cache_dir && *cache_dir) {
        cache_path(cache_dir, name, out->key, path, sizeof path);
        snprintf(out->cache_path, sizeof out->cache_path, "%s", path);
        if (cache_read(path, out)) {
            out->from_cache = 1;
            return KB_OK;
        }
    }

    /* argv: architecture, language, include dir, then the -D options split at spaces */
    char archopt[64], incopt[4200], optbuf[1024];
    const char *argv[MAX_OPTS];
    int argc = 0;
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    argv[argc++] = archopt;
    argv[argc++] = "--std=c++17";
    if (include_dir && *include_dir) {
        snprintf(incopt, sizeof incopt, "-I%s", include_dir);
        argv[argc++] = incopt;
    }
    snprintf(optbuf, sizeof optbuf, "%s", opts ? opts : "");
    for (char *tok = strtok(optbuf, " "); tok; tok = strtok(NULL, " ")) {
        if (argc == MAX_OPTS) return kb_fail(msg, KB_ERROR, "nvrtc: too many options for %s", name);
        argv[argc++] = tok;
    }

    /* The embedded .cuh sources are the headers every kernel may #include. */
    const char *hdr_text[KBCU_MAX_HEADERS], *hdr_name[KBCU_MAX_HEADERS];
    int nhdr = embedded_headers(hdr_text, hdr_name, KBCU_MAX_HEADERS);
    nvrtcProgram prog;
    nvrtcResult r = nvrtcCreateProgram(&prog, src, name, nhdr, hdr_text, hdr_name);
    if (r != NVRTC_SUCCESS) return kb_fail(msg, KB_ERROR, "nvrtcCreateProgram(%s): %s", name, nvrtcGetErrorString(r));
    nvrtcResult rc = nvrtcCompileProgram(prog, argc, argv);
    size_t logsize = 0;
    if (nvrtcGetProgramLogSize(prog, &logsize) == NVRTC_SUCCESS && logsize > 1) {
        char *log = malloc(logsize);
        if (log && nvrtcGetProgramLog(prog, log) == NVRTC_SUCCESS) snprintf(out->log, sizeof out->log, "%s", log);
        free(log);
    }
    if (rc != NVRTC_SUCCESS) {
        char lines[200];
        if (!first_lines(out->log, lines, sizeof lines)) snprintf(lines, sizeof lines, "(no log)");
        /* Missing headers are the common setup failure: say where we looked. */
        if (strstr(out->log, "could not open source file"))
            kb_fail(msg, KB_ERROR, "nvrtc %s (%s): %s [CUDA include dir: %s]", name, arch, lines,
                    include_dir && *include_dir ? include_dir : "none found, set CUDA_HOME");
        else kb_fail(msg, KB_ERROR, "nvrtc %s (%s, %s): %s", name, arch, nvrtcGetErrorString(rc), lines);
        nvrtcDestroyProgram(&prog);
        return KB_ERROR;
    }
    size_t n = 0;
    r = nvrtcGetCUBINSize(prog, &n);
    if (r == NVRTC_SUCCESS && n > 0) {
        out->image = malloc(n);
        if (!out->image) r = NVRTC_ERROR_OUT_OF_MEMORY;
        else r = nvrtcGetCUBIN(prog, out->image);
    }
    nvrtcDestroyProgram(&prog);
    if (r != NVRTC_SUCCESS || n == 0) {
        free(out->image);
        out->image = NULL;
        return kb_fail(msg, KB_ERROR, "nvrtcGetCUBIN(%s, %s): %s", name, arch,
                       r != NVRTC_SUCCESS ? nvrtcGetErrorString(r) : "empty (a virtual architecture?)");
    }
    out->size = n;
    if (path[0]) cache_write(cache_dir, path, out->image, n);
    return KB_OK;
}
