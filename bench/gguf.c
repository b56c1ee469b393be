/* gguf.c - the GGUF reader of gguf.h. Every read goes through a bounds-checked
 * cursor; every size is computed with overflow checks before it is trusted. */
#include "bench/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define MAX_ARRAY_DEPTH 4

typedef struct {
    const uint8_t *p, *end, *begin;
    char *arena;
    size_t arena_used, arena_cap;
    char *msg;
    size_t msg_len;
    int failed;
} cursor;

static int fail(cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cursor *c, const char *fmt, ...) {
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, c->msg_len, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return -1;
}

static uint64_t at(const cursor *c) { return (uint64_t)(c->p - c->begin); }

static int take(cursor *c, void *dst, size_t n, const char *what) {
    if ((size_t)(c->end - c->p) < n)
        return fail(c, "truncated: %s at byte %llu needs %zu bytes, %zu left", what, (unsigned long long)at(c), n,
                    (size_t)(c->end - c->p));
    if (dst) memcpy(dst, c->p, n);
    c->p += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) { return take(c, v, 4, what); }
static int rd_u64(cursor *c, uint64_t *v, const char *what) { return take(c, v, 8, what); }

/* A GGUF string (u64 length + bytes) copied NUL-terminated into the arena, or
 * skipped when out is NULL. */
static int rd_str(cursor *c, const char **out, const char *what) {
    uint64_t len = 0;
    if (rd_u64(c, &len, what)) return -1;
    if (len > (uint64_t)(c->end - c->p))
        return fail(c, "truncated: %s at byte %llu claims %llu bytes, %zu left", what, (unsigned long long)at(c),
                    (unsigned long long)len, (size_t)(c->end - c->p));
    if (out) {
        if (c->arena_used + len + 1 > c->arena_cap) return fail(c, "internal: string arena full");
        char *s = c->arena + c->arena_used;
        memcpy(s, c->p, (size_t)len);
        s[len] = 0;
        if (memchr(s, 0, (size_t)len)) return fail(c, "%s at byte %llu holds a NUL byte", what, (unsigned long long)at(c));
        c->arena_used += len + 1;
        *out = s;
    }
    c->p += len;
    return 0;
}

static size_t scalar_size(uint32_t type) {
    switch (type) {
    case KB_GGUF_U8:
    case KB_GGUF_I8:
    case KB_GGUF_BOOL: return 1;
    case KB_GGUF_U16:
    case KB_GGUF_I16: return 2;
    case KB_GGUF_U32:
    case KB_GGUF_I32:
    case KB_GGUF_F32: return 4;
    case KB_GGUF_U64:
    case KB_GGUF_I64:
    case KB_GGUF_F64: return 8;
    default: return 0;
    }
}

/* One value of `type`; scalars land in kv (when given). */
static int rd_value(cursor *c, uint32_t type, kb_gguf_kv *kv, int depth, const char *key) {
    if (type == KB_GGUF_STRING) return rd_str(c, kv ? &kv->str : NULL, key);
    if (type == KB_GGUF_ARRAY) {
        uint32_t et = 0;
        uint64_t count = 0;
        if (depth >= MAX_ARRAY_DEPTH) return fail(c, "metadata '%s': arrays nested deeper than %d", key, MAX_ARRAY_DEPTH);
        if (rd_u32(c, &et, key) || rd_u64(c, &count, key)) return -1;
        if (et >= KB_GGUF_TYPE_COUNT) return fail(c, "metadata '%s': unknown array element type %u", key, et);
        if (kv) {
            kv->array_type = et;
            kv->array_count = count;
        }
        const size_t es = scalar_size(et);
        if (es) { /* fixed-size elements: skip them at once, checked */
            if (count > (uint64_t)(c->end - c->p) / es)
                return fail(c, "truncated: metadata '%s' claims %llu elements of %zu bytes", key,
                            (unsigned long long)count, es);
            c->p += count * es;
            return 0;
        }
        /* strings and arrays: each at least 8 bytes, so a hostile count cannot spin */
        if (count > (uint64_t)(c->end - c->p) / 8)
            return fail(c, "truncated: metadata '%s' claims %llu elements", key, (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++)
            if (rd_value(c, et, NULL, depth + 1, key)) return -1;
        return 0;
    }
    const size_t n = scalar_size(type);
    if (!n) return fail(c, "metadata '%s': unknown value type %u", key, type);
    uint8_t b[8] = {0};
    if (take(c, b, n, key)) return -1;
    if (!kv) return 0;
    uint64_t u = 0;
    memcpy(&u, b, n);
    switch (type) {
    case KB_GGUF_I8: kv->i = (int8_t)b[0]; break;
    case KB_GGUF_I16: { int16_t v; memcpy(&v, b, 2); kv->i = v; break; }
    case KB_GGUF_I32: { int32_t v; memcpy(&v, b, 4); kv->i = v; break; }
    case KB_GGUF_I64: { int64_t v; memcpy(&v, b, 8); kv->i = v; break; }
    case KB_GGUF_F32: { float v; memcpy(&v, b, 4); kv->f = v; break; }
    case KB_GGUF_F64: { double v; memcpy(&v, b, 8); kv->f = v; break; }
    default: kv->i = (int64_t)u; break;
    }
    kv->u = type == KB_GGUF_I8 || type == KB_GGUF_I16 || type == KB_GGUF_I32 || type == KB_GGUF_I64 ? (uint64_t)kv->i : u;
    if (type != KB_GGUF_F32 && type != KB_GGUF_F64) kv->f = (double)kv->i;
    return 0;
}

const char *kb_ggml_type_name(uint32_t type, char *buf, size_t n) {
    static const char *const names[] = {
        "F32",   "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",  "Q5_1",   "Q8_0",   "Q8_1",
        "Q2_K",  "Q3_K",   "Q4_K",    "Q5_K",  "Q6_K",   "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
        "IQ4_NL", "IQ3_S", "IQ2_S",   "IQ4_XS", "I8",    "I16",   "I32",   "I64",    "F64",    "IQ1_M",
        "BF16",  NULL,     NULL,      NULL,    "TQ1_0",  "TQ2_0", NULL,    NULL,     NULL,     "MXFP4"};
    if (type < sizeof names / sizeof names[0] && names[type]) snprintf(buf, n, "%s", names[type]);
    else snprintf(buf, n, "type %u", type);
    return buf;
}

/* Bytes of a tensor of a type kbench reads; 0 with msg for the others. */
static int tensor_bytes(cursor *c, const kb_gguf_tensor *t, uint64_t *bytes) {
    uint64_t elems = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] == 0) return fail(c, "tensor '%s': dimension %u is 0", t->name, d);
        if (elems > UINT64_MAX / t->dims[d]) return fail(c, "tensor '%s': its element count overflows", t->name);
        elems *= t->dims[d];
    }
    uint64_t block, per;
    switch (t->ggml_type) {
    case KB_GGML_F32: block = 1, per = 4; break;
    case KB_GGML_F16: block = 1, per = 2; break;
    case KB_GGML_Q4_K: block = 256, per = 144; break;
    case KB_GGML_Q6_K: block = 256, per = 210; break;
    default: {
        char name[32];
        return fail(c, "tensor '%s' has type %s, which kbench does not read (F32, F16, Q4_K, Q6_K)", t->name,
                    kb_ggml_type_name(t->ggml_type, name, sizeof name));
    }
    }
    if (t->dims[0] % block)
        return fail(c, "tensor '%s': row length %llu is not a multiple of its block (%llu)", t->name,
                    (unsigned long long)t->dims[0], (unsigned long long)block);
    if (elems / block > UINT64_MAX / per) return fail(c, "tensor '%s': its byte size overflows", t->name);
    *bytes = elems / block * per;
    return 0;
}

void kb_gguf_close(kb_gguf *g) {
    if (!g) return;
    free(g->kv);
    free(g->tensors);
    free(g->strings);
    if (g->map) munmap(g->map, g->map_len);
    memset(g, 0, sizeof *g);
}

int kb_gguf_parse(const void *buf, size_t len, kb_gguf *g, char *msg, size_t msg_len) {
    memset(g, 0, sizeof *g);
    cursor c = {.p = buf, .end = (const uint8_t *)buf + len, .begin = buf, .msg = msg, .msg_len = msg_len};
    uint32_t magic = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    if (len < 4 || (memcpy(&magic, buf, 4), magic != GGUF_MAGIC)) {
        snprintf(msg, msg_len, "not a GGUF file (bad magic)");
        return -1;
    }
    c.p += 4;
    if (rd_u32(&c, &g->version, "version")) goto fail;
    if (g->version != 2 && g->version != 3) {
        fail(&c, "GGUF version %u is not supported (2 and 3 are)", g->version);
        goto fail;
    }
    if (rd_u64(&c, &n_tensors, "tensor count") || rd_u64(&c, &n_kv, "metadata count")) goto fail;
    /* a metadata entry takes at least 13 bytes, a tensor info at least 28 */
    if (n_kv > len / 13 || n_tensors > len / 28) {
        fail(&c, "counts too large for the file: %llu tensors, %llu metadata entries in %zu bytes",
             (unsigned long long)n_tensors, (unsigned long long)n_kv, len);
        goto fail;
    }
    c.arena_cap = len + 2 * (size_t)(n_kv + n_tensors) + 64;
    c.arena = malloc(c.arena_cap);
    g->kv = calloc((size_t)n_kv + 1, sizeof *g->kv);
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    if (!c.arena || !g->kv || !g->tensors) {
        fail(&c, "out of memory reading the GGUF header");
        goto fail;
    }
    g->strings = c.arena;
    g->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        kb_gguf_kv *kv = &g->kv[i];
        if (rd_str(&c, &kv->key, "metadata key") || rd_u32(&c, &kv->type, "metadata type")) goto fail;
        if (kv->type >= KB_GGUF_TYPE_COUNT) {
            fail(&c, "metadata '%s': unknown value type %u", kv->key, kv->type);
            goto fail;
        }
        if (rd_value(&c, kv->type, kv, 0, kv->key)) goto fail;
        g->n_kv = (int)i + 1;
        if (!strcmp(kv->key, "general.alignment")) {
            if (kv->type != KB_GGUF_U32 || kv->u == 0 || (kv->u & (kv->u - 1)) || kv->u > 65536) {
                fail(&c, "general.alignment must be a u32 power of two <= 65536");
                goto fail;
            }
            g->alignment = kv->u;
        }
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        kb_gguf_tensor *t = &g->tensors[i];
        if (rd_str(&c, &t->name, "tensor name") || rd_u32(&c, &t->n_dims, "tensor dims")) goto fail;
        if (t->n_dims == 0 || t->n_dims > 4) {
            fail(&c, "tensor '%s': %u dimensions (1..4)", t->name, t->n_dims);
            goto fail;
        }
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (rd_u64(&c, &t->dims[d], "tensor dimension")) goto fail;
        for (uint32_t d = t->n_dims; d < 4; d++) t->dims[d] = 1;
        if (rd_u32(&c, &t->ggml_type, "tensor type") || rd_u64(&c, &t->offset, "tensor offset")) goto fail;
        g->n_tensors = (int)i + 1;
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->tensors[j].name, t->name)) {
                fail(&c, "tensor '%s' appears twice", t->name);
                goto fail;
            }
    }
    /* the data section: the next multiple of the alignment after the infos */
    uint64_t data = at(&c);
    data = (data + g->alignment - 1) / g->alignment * g->alignment;
    if (data > len && n_tensors) {
        fail(&c, "truncated: the data section would start at byte %llu of %zu", (unsigned long long)data, len);
        goto fail;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        kb_gguf_tensor *t = &g->tensors[i];
        if (tensor_bytes(&c, t, &t->bytes)) goto fail;
        if (t->offset % g->alignment) {
            fail(&c, "tensor '%s': offset %llu is not a multiple of the alignment %llu", t->name,
                 (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (t->offset > len - data || t->bytes > len - data - t->offset) {
            fail(&c, "tensor '%s': bytes %llu..%llu of the data section lie past the end of the file (%llu bytes)",
                 t->name, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->bytes),
                 (unsigned long long)(len - data));
            goto fail;
        }
        t->data = (const uint8_t *)buf + data + t->offset;
    }
    return 0;
fail:
    g->strings = NULL;
    free(c.arena);
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
    return -1;
}

int kb_gguf_open(const char *path, kb_gguf *g, char *msg, size_t msg_len) {
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(msg, msg_len, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(msg, msg_len, "'%s' is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size < 24) {
        snprintf(msg, msg_len, "'%s': not a GGUF file (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        return -1;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(msg, msg_len, "cannot map '%s': %s", path, strerror(errno));
        return -1;
    }
    char why[256];
    if (kb_gguf_parse(map, (size_t)st.st_size, g, why, sizeof why) != 0) {
        snprintf(msg, msg_len, "'%s': %s", path, why);
        munmap(map, (size_t)st.st_size);
        return -1;
    }
    g->map = map;
    g->map_len = (size_t)st.st_size;
    return 0;
}

const kb_gguf_kv *kb_gguf_find_kv(const kb_gguf *g, const char *key) {
    for (int i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const kb_gguf_tensor *kb_gguf_find_tensor(const kb_gguf *g, const char *name) {
    for (int i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}
