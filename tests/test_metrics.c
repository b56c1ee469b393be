/* test_metrics.c - the metrics and poison logic on hand-made outputs. */
#include "bench/metrics.h"
#include "ref/formats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/kb_check.h"

int main(void) {
    /* FNV-1a 64 test vectors (Fowler/Noll/Vo reference): "" and "a" */
    CHECK(kb_fnv1a64("", 0) == 0xcbf29ce484222325ull, "fnv empty");
    CHECK(kb_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull, "fnv a");

    kb_tolerance tol = {.rel = 0, .acc = 1e-6, .abs = 0};
    double ref[4] = {1, -2, 3, 4}, mag[4] = {1, 2, 3, 4};
    float out[4] = {1, -2, 3, 4};
    kb_metrics m;
    kb_compute_metrics(KB_F32, out, ref, mag, 4, &tol, &m);
    CHECK(kb_metrics_pass(&m) && m.max_abs == 0 && m.rel_l2 == 0 && fabs(m.cosine - 1) < 1e-15, "exact passes");

    out[2] = 3.001f; /* error 1e-3 > 1e-6 * 3 */
    kb_compute_metrics(KB_F32, out, ref, mag, 4, &tol, &m);
    CHECK(!kb_metrics_pass(&m) && m.n_bad == 1 && m.first_bad == 2, "one bad element, first_bad=%lld",
          (long long)m.first_bad);
    CHECK(fabs(m.max_abs - 1e-3) < 1e-6 && m.worst > 300, "max_abs %g worst %g", m.max_abs, m.worst);
    double nmse = (double)(3.001f - 3) * (3.001f - 3) / 30.0;
    CHECK(fabs(m.nmse - nmse) < 1e-15 && fabs(m.rel_l2 - sqrt(nmse)) < 1e-12, "nmse %g", m.nmse);

    /* poison: an unwritten element is counted as unwritten, not as NaN */
    float p[4] = {1, -2, 3, 4};
    kb_poison(KB_F32, &p[3], 1);
    CHECK(kb_is_poison(KB_F32, p, 3) && !kb_is_poison(KB_F32, p, 2), "poison detect");
    kb_compute_metrics(KB_F32, p, ref, mag, 4, &tol, &m);
    CHECK(m.n_unwritten == 1 && m.n_nan == 0 && !kb_metrics_pass(&m), "unwritten %lld nan %lld",
          (long long)m.n_unwritten, (long long)m.n_nan);
    p[3] = NAN; /* a computed NaN is a NaN, not "unwritten" */
    kb_compute_metrics(KB_F32, p, ref, mag, 4, &tol, &m);
    CHECK(m.n_unwritten == 0 && m.n_nan == 1 && !kb_metrics_pass(&m), "computed NaN");

    /* f16 overflow: ref beyond 65504 and the output +inf is counted as overflow */
    uint16_t h[2] = {kb_f32_to_f16(70000.0f, 0), kb_f32_to_f16(1.0f, 0)};
    double href[2] = {70000.0, 1.0}, hmag[2] = {70000.0, 1.0};
    kb_tolerance ht = {.rel = 1.0 / 2048, .acc = 0, .abs = 0};
    kb_compute_metrics(KB_F16, h, href, hmag, 2, &ht, &m);
    CHECK(m.n_overflow == 1 && m.n_nan == 0 && !kb_metrics_pass(&m), "f16 overflow counted: %lld",
          (long long)m.n_overflow);
    uint16_t hp[2];
    kb_poison(KB_F16, hp, 2);
    CHECK(kb_is_poison(KB_F16, hp, 0) && isnan(kb_f16_to_f32(hp[0])), "f16 poison is a NaN");
    kb_poison(KB_BF16, hp, 2);
    CHECK(kb_is_poison(KB_BF16, hp, 1) && isnan(kb_bf16_to_f32(hp[1])), "bf16 poison is a NaN");

    /* bf16 output: one rounding within u_out passes, two ulps off fails */
    uint16_t b[1] = {kb_f32_to_bf16(1.00390625f * 1.001f, 0)};
    double bref[1] = {1.00390625 * 1.001}, bmag[1] = {1.0};
    kb_tolerance bt = {.rel = 1.0 / 256, .acc = 0, .abs = 0};
    kb_compute_metrics(KB_BF16, b, bref, bmag, 1, &bt, &m);
    CHECK(kb_metrics_pass(&m), "bf16 rounding within u_out");
    b[0] += 2;
    kb_compute_metrics(KB_BF16, b, bref, bmag, 1, &bt, &m);
    CHECK(!kb_metrics_pass(&m), "bf16 two ulps off fails");

    /* pearson is insensitive to an offset, cosine is not */
    float o2[4] = {2, -1, 4, 5};
    kb_compute_metrics(KB_F32, o2, ref, mag, 4, &tol, &m);
    CHECK(fabs(m.pearson - 1) < 1e-12 && m.cosine < 0.99, "pearson %g cosine %g", m.pearson, m.cosine);

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
