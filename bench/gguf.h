/* gguf.h - a reader for llama.cpp's GGUF files (versions 2 and 3), memory-mapped.
 *
 * Format (docs/GGUF.md; llama.cpp's gguf/README and the `gguf` Python package are
 * the sources): little-endian; magic "GGUF", u32 version, u64 tensor count, u64
 * metadata count; metadata entries (string key, u32 type, value); tensor infos (name,
 * u32 n_dims <= 4, u64 dims innermost first, u32 ggml type, u64 offset into the data
 * section); the data section starts at the next multiple of general.alignment
 * (default 32) after the infos, and every offset is a multiple of it.
 *
 * Every read is bounds-checked: a corrupt or hostile file (bad magic, truncated,
 * offsets or sizes past the end or overflowing, unknown types, absurd counts) gives
 * one clear message and no crash. */
#ifndef KB_GGUF_H
#define KB_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum {
    KB_GGUF_U8 = 0, KB_GGUF_I8, KB_GGUF_U16, KB_GGUF_I16, KB_GGUF_U32, KB_GGUF_I32, KB_GGUF_F32, KB_GGUF_BOOL,
    KB_GGUF_STRING, KB_GGUF_ARRAY, KB_GGUF_U64, KB_GGUF_I64, KB_GGUF_F64, KB_GGUF_TYPE_COUNT
};

/* ggml tensor types kbench reads; any other is named in the error */
enum { KB_GGML_F32 = 0, KB_GGML_F16 = 1, KB_GGML_Q4_K = 12, KB_GGML_Q6_K = 14 };

typedef struct {
    const char *key; /* NUL-terminated copy */
    uint32_t type;   /* KB_GGUF_* */
    uint32_t array_type;
    uint64_t array_count;
    /* scalar value (integers widened, floats as double, bool 0/1) */
    int64_t i;
    uint64_t u;
    double f;
    const char *str; /* KB_GGUF_STRING: NUL-terminated copy */
} kb_gguf_kv;

typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t dims[4]; /* innermost first: dims[0] is the row length */
    uint32_t ggml_type;
    uint64_t offset; /* into the data section */
    uint64_t bytes;
    const void *data; /* into the mapping */
} kb_gguf_tensor;

typedef struct {
    uint32_t version;
    uint64_t alignment;
    int n_kv, n_tensors;
    kb_gguf_kv *kv;
    kb_gguf_tensor *tensors;
    /* private */
    void *map;
    size_t map_len;
    char *strings; /* one arena for every copied string */
} kb_gguf;

/* Parse a file in memory (tests, fuzzing) or map one from disk. 0, or -1 with a
 * one-line msg; on failure nothing needs freeing. The buffer must outlive g. */
int kb_gguf_parse(const void *buf, size_t len, kb_gguf *g, char *msg, size_t msg_len);
int kb_gguf_open(const char *path, kb_gguf *g, char *msg, size_t msg_len);
void kb_gguf_close(kb_gguf *g);

const kb_gguf_kv *kb_gguf_find_kv(const kb_gguf *g, const char *key);
const kb_gguf_tensor *kb_gguf_find_tensor(const kb_gguf *g, const char *name);
/* "Q5_K", "IQ2_XXS", ... for a ggml type id; "type N" when unknown. */
const char *kb_ggml_type_name(uint32_t type, char *buf, size_t n);

#endif
