/* fuzz_shape_spec.c - libFuzzer target: the --shape spec parser (kb_case_parse_shape,
 * bench/op.c) for every op, then what the CLI and the harness do with a parsed case
 * before allocating anything: the label, the op's validation, the tensor sizes with
 * their overflow checks (kb_case_tensors), flops and bytes.
 * Input: the spec text, cut at the first NUL as an argv string would be.
 * Property checked beyond "no crash, no sanitizer report": a case that passes
 * validation and kb_case_tensors has a label that parses back to the same sizes. */
#include "bench/op.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *spec = malloc(size + 1);
    if (!spec) return 0;
    memcpy(spec, data, size);
    spec[size] = 0;
    for (int o = 0; o < KB_OP_COUNT; o++) {
        const kb_op *op = kb_ops[o];
        kb_case c;
        char msg[KB_MSG];
        kb_case_init(&c, (kb_op_id)o);
        if (kb_case_parse_shape(&c, spec, msg) != 0) continue;
        kb_case_label(&c);
        if (op->validate(&c, msg) != KB_OK) continue;
        kb_tensor t[KB_MAX_IN + KB_MAX_OUT];
        if (kb_case_tensors(&c, t, msg) != KB_OK) continue;
        volatile double work = op->flops(&c) + op->bytes(&c);
        (void)work;
        for (int i = 0; i < op->n_in + op->n_out; i++)
            if (t[i].count < 0 || t[i].bytes == UINT64_MAX) abort(); /* kb_case_tensors promised sizes */
        kb_case again;
        kb_case_init(&again, (kb_op_id)o);
        if (kb_case_parse_shape(&again, c.label, msg) != 0) abort();
        for (int i = 0; i < op->n_dims; i++)
            if (kb_param_int(&again, op->dims[i]) != kb_param_int(&c, op->dims[i])) abort();
    }
    free(spec);
    return 0;
}
