/* forward_ref.h - the reference forward: the decoder of bench/model.h in fp64 from the
 * exactly decoded weights, every intermediate kept, step by step with its KV cache.
 * Each op is the fp64 reference of ref/ (threads over outputs: bit-identical for any
 * thread count). No quantization happens here: FP8 recipes are judged against the
 * exact model. */
#ifndef KB_FORWARD_REF_H
#define KB_FORWARD_REF_H

#include "bench/model.h"

/* The values of one layer, in graph order. */
typedef enum {
    FV_X_IN = 0, /* the layer's input (the previous layer's output, or the embedding) */
    FV_N1,       /* rmsnorm(x) * attn_norm */
    FV_QP, FV_Q, /* q_proj(n1), + bq */
    FV_KP, FV_K, /* k_proj(n1), + bk */
    FV_VP, FV_V, /* v_proj(n1), + bv: the V cache rows */
    FV_QR, FV_KR,/* rope(q), rope(k): the K cache rows */
    FV_ATT,      /* attention over the cache */
    FV_O,        /* o_proj(att) */
    FV_H,        /* x + o */
    FV_N2,       /* rmsnorm(h) * ffn_norm */
    FV_GATE, FV_UP, FV_ACT, /* gate(n2), up(n2), silu(gate) * up */
    FV_DOWN,     /* down(act) */
    FV_X_OUT,    /* h + down */
    FV_COUNT
} kb_fv;

/* Row width of a value ([n][width]). */
int64_t kb_fv_width(const kb_model_dims *d, kb_fv v);

typedef struct {
    int n, pos0; /* tokens in this step, position of the first */
    int32_t ids[4096];
    double **v;  /* v[l * FV_COUNT + fv]: [n][width]; FV_X_IN of layer 0 is the embedding */
    double *nf;     /* final norm of the last token [hidden] */
    double *logits; /* lm_head of the last token [vocab] */
    int argmax;
} kb_ref_step;

typedef struct {
    const kb_model *m;
    int max_pos;
    double **kcache, **vcache; /* per layer [max_pos][kv_heads * head_dim] */
} kb_ref_forward;

int kb_ref_forward_init(kb_ref_forward *f, const kb_model *m, int max_pos, char *msg, size_t n);
/* One step: n tokens at positions pos0.. (the cache holds 0..pos0-1). */
int kb_ref_forward_step(kb_ref_forward *f, const int32_t *ids, int n, int pos0, kb_ref_step *s, char *msg, size_t len);
void kb_ref_step_free(const kb_ref_forward *f, kb_ref_step *s);
void kb_ref_forward_free(kb_ref_forward *f);

#endif
