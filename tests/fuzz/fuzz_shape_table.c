/* fuzz_shape_table.c - libFuzzer target: the shape-table reader (kb_shapes_parse,
 * bench/shapes.c: what kbench --shapes FILE reads), then the sizes of every row it
 * accepts (kb_case_tensors, flops, bytes), as the harness computes them first.
 * Input: the table file's bytes. Property checked: every accepted row passed its op's
 * validation, and a failure leaves a message. */
#include "bench/op.h"
#include "bench/shapes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kb_case_list rows = {0};
    char msg[KB_MSG] = "";
    if (kb_shapes_parse((const char *)data, size, "fuzz.tsv", NULL, &rows, msg) == 0) {
        for (int i = 0; i < rows.count; i++) {
            const kb_case *c = &rows.cases[i];
            const kb_op *op = kb_ops[c->op];
            char why[KB_MSG];
            if (op->validate(c, why) != KB_OK) abort(); /* the reader validates every row */
            kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
            if (kb_case_tensors(c, t, why) != KB_OK) continue; /* too big: a not_supported row */
            volatile double work = op->flops(c) + op->bytes(c);
            (void)work;
        }
    } else if (!msg[0] || memchr(msg, 0, KB_MSG) == NULL) {
        abort(); /* an error without a (terminated) message */
    }
    kb_case_list_free(&rows);
    return 0;
}
