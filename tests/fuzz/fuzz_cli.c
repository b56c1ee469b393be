/* fuzz_cli.c - libFuzzer target: kbench's command line, kb_cli_parse and the plan of
 * cases kb_cli_cases builds from it (bench/cli.c: options, --shape specs, shape
 * tables by name or path, sweep axes), then, as main.c does, the size check of
 * explicitly spelled cases and the sizes of every case.
 * Input: argv[1..] as the input's bytes split on NUL and newline ("kbench" is argv[0]).
 * Shape tables by name come from the source tree's shapes/ (KB_SHAPES_DIR). */
#include "bench/cli.h"
#include "bench/harness.h"
#include "bench/op.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("KB_SHAPES_DIR", KB_SOURCE_DIR "/shapes", 1);
    unsetenv("KB_TEST_VARIANTS");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "kbench";
    for (size_t start = 0, i = 0; i <= size && argc <= MAX_ARGS; i++)
        if (i == size || buf[i] == 0 || buf[i] == '\n') {
            buf[i] = 0;
            if (i < size || i > start) argv[argc++] = buf + start;
            start = i + 1;
        }
    argv[argc] = NULL;

    kb_cli cli;
    char msg[512];
    if (kb_cli_parse(argc, argv, &cli, msg, sizeof msg) == 0 && !cli.help && cli.list != KB_LIST_OPS &&
        cli.list != KB_LIST_SHAPES && cli.list != KB_LIST_BACKENDS) {
        kb_case_list cases = {0};
        if (kb_cli_cases(&cli, &cases, msg, sizeof msg) == 0) {
            for (int i = 0; i < cases.count; i++) {
                const kb_case *c = &cases.cases[i];
                char why[KB_MSG];
                if (cli.shape && strchr(cli.shape, 'x') && i < 16) kb_case_check_size(c, why); /* main.c's check */
                kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
                if (kb_case_tensors(c, t, why) != KB_OK) continue;
                volatile double work = kb_ops[c->op]->flops(c) + kb_ops[c->op]->bytes(c);
                (void)work;
            }
        } else if (!msg[0]) {
            abort(); /* a refused command line must say why */
        }
        kb_case_list_free(&cases);
    }
    free(buf);
    return 0;
}
