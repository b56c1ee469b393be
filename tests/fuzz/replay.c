/* replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on files (or every file of
 * directories) given as arguments, without libFuzzer: how CTest replays the seed
 * corpora and every input that once crashed (tests/fuzz/corpus/<target>/) in any
 * build, sanitized or not. Exits non-zero only if an input cannot be read; a crash
 * is the target's abort or a sanitizer's report. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    size_t cap = 4096, n = 0, got;
    uint8_t *data = malloc(cap);
    while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) data = realloc(data, cap *= 2);
    }
    fclose(f);
    if (!data) return 1;
    uint8_t *exact = malloc(n ? n : 1); /* exactly n bytes: ASan sees reads past the input */
    memcpy(exact, data, n);
    free(data);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0, runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such input %s\n", argv[i]);
            bad++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += run_file(argv[i]);
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        char **names = NULL;
        int n = 0;
        while (d && (e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') {
                names = realloc(names, sizeof *names * (size_t)(n + 1));
                names[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2);
                sprintf(names[n++], "%s/%s", argv[i], e->d_name);
            }
        if (d) closedir(d);
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        for (int j = 0; j < n; j++) {
            bad += run_file(names[j]);
            runs++;
            free(names[j]);
        }
        free(names);
    }
    printf("replay: %d inputs, %d unreadable\n", runs, bad);
    return bad || !runs ? 1 : 0;
}
