/* fuzz_gguf.c - libFuzzer target: the GGUF reader (kb_gguf_parse, bench/gguf.c: what
 * kbench forward --model FILE.gguf reads first). Input: the file's bytes. Properties
 * checked: a failure leaves a terminated message; an accepted file's every key and
 * tensor lies inside the buffer (each tensor's first and last byte is read, so ASan
 * sees any slip), tensor sizes are consistent, and the lookups find what was parsed. */
#include "bench/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kb_gguf g;
    char msg[256] = "";
    if (kb_gguf_parse(data, size, &g, msg, sizeof msg) != 0) {
        if (!msg[0] || memchr(msg, 0, sizeof msg) == NULL) abort(); /* an error without a message */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        const kb_gguf_tensor *t = &g.tensors[i];
        const uint8_t *p = t->data;
        if (t->bytes > size || p < data || p + t->bytes > data + size) abort(); /* outside the file */
        if (t->bytes) sink ^= p[0] ^ p[t->bytes - 1];
        if (kb_gguf_find_tensor(&g, t->name) == NULL) abort();
    }
    for (int i = 0; i < g.n_kv; i++)
        if (kb_gguf_find_kv(&g, g.kv[i].key) == NULL) abort();
    (void)sink;
    kb_gguf_close(&g);
    return 0;
}
