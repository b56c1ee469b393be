/* cpu_rope_neox.c - RoPE, NEOX layout, as ggml's CPU backend computes it
 * (ggml_rope_cache_init + rotate_pairs, no YaRN, freq_scale 1):
 *   theta_scale = powf(base, -2.0f / d)
 *   theta_0 = (float)pos, theta_{i+1} = theta_i * theta_scale     (float, repeated)
 *   cos_i = cosf(theta_i), sin_i = sinf(theta_i)
 *   y_i = x_i cos_i - x_{i+d/2} sin_i,  y_{i+d/2} = x_i sin_i + x_{i+d/2} cos_i
 * The repeated multiplication makes theta_i carry a relative error growing with i,
 * which at long positions is the dominant error (the reference uses fp64 pow). */
#include "kernels/cpu/cpu_ops.h"

#include <math.h>

static int rope_check(const kb_case *c, size_t *shared_floats, size_t *slice_floats, char *msg) {
    *shared_floats = 0;
    *slice_floats = (size_t)(c->head_dim > 0 ? c->head_dim : 0); /* cos and sin caches, d/2 each */
    if (c->n < 1 || c->heads < 1 || c->head_dim < 2 || c->head_dim % 2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "rope_neox needs n, heads >= 1 and an even head_dim");
    if (!(c->theta > 0)) return kb_fail(msg, KB_NOT_SUPPORTED, "rope_neox needs a positive theta base");
    return KB_OK;
}

static void rope_tokens(const cpu_state *s, int slice, int64_t begin, int64_t end, void *arg) {
    (void)arg;
    const int64_t d = s->c.head_dim, half = d / 2, heads = s->c.heads;
    float *cache_cos = cpu_slice_mem(s, slice), *cache_sin = cache_cos + half;
    const float theta_scale = powf((float)s->c.theta, -2.0f / (float)d);
    const int32_t *pos = s->in[1];
    for (int64_t t = begin; t < end; t++) {
        float theta = (float)pos[t];
        for (int64_t i = 0; i < half; i++) {
            cache_cos[i] = cosf(theta);
            cache_sin[i] = sinf(theta);
            theta *= theta_scale;
        }
        for (int64_t h = 0; h < heads; h++) {
            const float *x = (const float *)s->in[0] + (t * heads + h) * d;
            float *y = (float *)s->out[0] + (t * heads + h) * d;
            for (int64_t i = 0; i < half; i++) {
                const float x0 = x[i], x1 = x[i + half];
                y[i] = x0 * cache_cos[i] - x1 * cache_sin[i];
                y[i + half] = x0 * cache_sin[i] + x1 * cache_cos[i];
            }
        }
    }
}

static int rope_run(cpu_state *s, char *msg) {
    (void)msg;
    cpu_for_slices(s, s->c.n, rope_tokens, NULL);
    return KB_OK;
}

const cpu_op cpu_op_rope_neox = {rope_check, NULL, rope_run,
                                 "ggml CPU rope: theta *= powf(base,-2/d) repeated in float, cosf/sinf", NULL};
