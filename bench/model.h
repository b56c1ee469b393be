/* model.h - a Qwen2 decoder's shape and weights, from a GGUF file or made from a
 * seed (synthetic:tiny, synthetic:qwen2.5-7b). The decoder (docs/FORWARD.md):
 *   x = embed(tokens)
 *   per layer: h = x + o_proj(attn(rope(q_proj(n1) + bq), rope(k_proj(n1) + bk), v_proj(n1) + bv)),
 *              n1 = rmsnorm(x) * w_attn_norm
 *              x = h + down(silu(gate(n2)) * up(n2)),  n2 = rmsnorm(h) * w_ffn_norm
 *   logits = lm_head(rmsnorm(x) * w_output_norm)
 * (HF transformers' Qwen2DecoderLayer; GQA: query head h reads KV head h / (heads / kv_heads);
 * RoPE NEOX with the file's base; RMSNorm with the file's eps.) */
#ifndef KB_MODEL_H
#define KB_MODEL_H

#include "bench/gguf.h"
#include "ref/types.h"

#include <stddef.h>
#include <stdint.h>

/* One weight: rows x cols row-major (a GGUF tensor's dims[1] x dims[0]); vectors
 * have rows = 1. */
typedef struct {
    const char *name;
    kb_dtype type; /* f32, f16, q4_k, q6_k */
    int64_t rows, cols;
    const void *data;
    uint64_t bytes;
} kb_weight;

typedef struct {
    int64_t hidden, ffn, layers, heads, kv_heads, head_dim, vocab, context;
    double eps, rope_base;
} kb_model_dims;

typedef struct {
    kb_weight attn_norm, wq, bq, wk, bk, wv, bv, wo, ffn_norm, wgate, wup, wdown;
} kb_layer_weights;

typedef struct {
    char name[256]; /* "synthetic:tiny (seed 1)" or the file's path */
    kb_model_dims d;
    kb_weight tok_embd, out_norm, output;
    kb_layer_weights *layer;
    int tied; /* no output.weight: the embedding is the lm_head */
    /* where the bytes live */
    kb_gguf gguf;
    void *owned;
    size_t owned_bytes;
    char *names; /* synthetic: the weights' GGUF names */
} kb_model;

/* "synthetic:tiny", "synthetic:qwen2.5-7b" (seeded) or a GGUF path. 0, or -1 with
 * one line in msg (a missing key, a wrong shape, an unsupported type, a corrupt file). */
int kb_model_load(const char *spec, uint64_t seed, kb_model *m, char *msg, size_t msg_len);
void kb_model_free(kb_model *m);
/* Bytes of every weight the model has (what a forward pass reads per token, in the
 * file's formats). */
double kb_model_weight_bytes(const kb_model *m);

/* The synthetic models' massive-activation channels (docs/FORWARD.md). */
int kb_synthetic_massive_channels(const kb_model_dims *d, int64_t *ch, int max);

#endif
