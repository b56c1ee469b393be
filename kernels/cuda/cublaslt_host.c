/* cublaslt_host.c - host-only logic of the cublaslt backend (see cublaslt_host.h).
 * Only cuBLASLt's and CUDA's headers are included, for their enum values; nothing
 * here calls into CUDA, so it all runs and is tested without a GPU. */
#include "kernels/cuda/cublaslt_host.h"

#include <cublasLt.h>
#include <driver_types.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- enum names ----------------------------------------------------------------
 * Designated initializers indexed by cublasLt.h's own enumerators: the compiler
 * checks every name against the installed header, and the numbers are its. A
 * value added by a newer header shows up as "tile#N" until it is listed here.
 * The lists were taken from cuBLAS 13.1's cublasLt.h (every enumerator of
 * cublasLtMatmulTile_t, cublasLtMatmulStages_t and cublasLtClusterShape_t). */
#define T(s) [CUBLASLT_MATMUL_TILE_##s] = #s
static const char *const tile_names[CUBLASLT_MATMUL_TILE_END] = {
    [CUBLASLT_MATMUL_TILE_UNDEFINED] = "undefined",
    T(8x8), T(8x16), T(16x8), T(8x32), T(16x16), T(32x8), T(8x64), T(16x32), T(32x16), T(64x8), T(32x32),
    T(32x64), T(64x32), T(32x128), T(64x64), T(128x32), T(64x128), T(128x64), T(64x256), T(128x128), T(256x64),
    T(64x512), T(128x256), T(256x128), T(512x64), T(64x96), T(96x64), T(96x128), T(128x160), T(160x128),
    T(192x128), T(128x192), T(128x96), T(32x256), T(256x32), T(8x128), T(8x192), T(8x256), T(8x320), T(8x384),
    T(8x448), T(8x512), T(8x576), T(8x640), T(8x704), T(8x768), T(16x64), T(16x128), T(16x192), T(16x256),
    T(16x320), T(16x384), T(16x448), T(16x512), T(16x576), T(16x640), T(16x704), T(16x768), T(24x64), T(24x128),
    T(24x192), T(24x256), T(24x320), T(24x384), T(24x448), T(24x512), T(24x576), T(24x640), T(24x704), T(24x768),
    T(32x192), T(32x320), T(32x384), T(32x448), T(32x512), T(32x576), T(32x640), T(32x704), T(32x768), T(40x64),
    T(40x128), T(40x192), T(40x256), T(40x320), T(40x384), T(40x448), T(40x512), T(40x576), T(40x640), T(40x704),
    T(40x768), T(48x64), T(48x128), T(48x192), T(48x256), T(48x320), T(48x384), T(48x448), T(48x512), T(48x576),
    T(48x640), T(48x704), T(48x768), T(56x64), T(56x128), T(56x192), T(56x256), T(56x320), T(56x384), T(56x448),
    T(56x512), T(56x576), T(56x640), T(56x704), T(56x768), T(64x192), T(64x320), T(64x384), T(64x448), T(64x576),
    T(64x640), T(64x704), T(64x768), T(72x64), T(72x128), T(72x192), T(72x256), T(72x320), T(72x384), T(72x448),
    T(72x512), T(72x576), T(72x640), T(80x64), T(80x128), T(80x192), T(80x256), T(80x320), T(80x384), T(80x448),
    T(80x512), T(80x576), T(88x64), T(88x128), T(88x192), T(88x256), T(88x320), T(88x384), T(88x448), T(88x512),
    T(96x192), T(96x256), T(96x320), T(96x384), T(96x448), T(96x512), T(104x64), T(104x128), T(104x192),
    T(104x256), T(104x320), T(104x384), T(104x448), T(112x64), T(112x128), T(112x192), T(112x256), T(112x320),
    T(112x384), T(120x64), T(120x128), T(120x192), T(120x256), T(120x320), T(120x384), T(128x320), T(128x384),
    T(136x64), T(136x128), T(136x192), T(136x256), T(136x320), T(144x64), T(144x128), T(144x192), T(144x256),
    T(144x320), T(152x64), T(152x128), T(152x192), T(152x256), T(152x320), T(160x64), T(160x192), T(160x256),
    T(168x64), T(168x128), T(168x192), T(168x256), T(176x64), T(176x128), T(176x192), T(176x256), T(184x64),
    T(184x128), T(184x192), T(184x256), T(192x64), T(192x192), T(192x256), T(200x64), T(200x128), T(200x192),
    T(208x64), T(208x128), T(208x192), T(216x64), T(216x128), T(216x192), T(224x64), T(224x128), T(224x192),
    T(232x64), T(232x128), T(232x192), T(240x64), T(240x128), T(240x192), T(248x64), T(248x128), T(248x192),
    T(256x192), T(264x64), T(264x128), T(272x64), T(272x128), T(280x64), T(280x128), T(288x64), T(288x128),
    T(296x64), T(296x128), T(304x64), T(304x128), T(312x64), T(312x128), T(320x64), T(320x128), T(328x64),
    T(328x128), T(336x64), T(336x128), T(344x64), T(344x128), T(352x64), T(352x128), T(360x64), T(360x128),
    T(368x64), T(368x128), T(376x64), T(376x128), T(384x64), T(384x128), T(392x64), T(400x64), T(408x64),
    T(416x64), T(424x64), T(432x64), T(440x64), T(448x64), T(456x64), T(464x64), T(472x64), T(480x64), T(488x64),
    T(496x64), T(504x64), T(520x64), T(528x64), T(536x64), T(544x64), T(552x64), T(560x64), T(568x64), T(576x64),
    T(584x64), T(592x64), T(600x64), T(608x64), T(616x64), T(624x64), T(632x64), T(640x64), T(648x64), T(656x64),
    T(664x64), T(672x64), T(680x64), T(688x64), T(696x64), T(704x64), T(712x64), T(720x64), T(728x64), T(736x64),
    T(744x64), T(752x64), T(760x64), T(768x64), T(64x16), T(64x24), T(64x40), T(64x48), T(64x56), T(64x72),
    T(64x80), T(64x88), T(64x104), T(64x112), T(64x120), T(64x136), T(64x144), T(64x152), T(64x160), T(64x168),
    T(64x176), T(64x184), T(64x200), T(64x208), T(64x216), T(64x224), T(64x232), T(64x240), T(64x248), T(64x264),
    T(64x272), T(64x280), T(64x288), T(64x296), T(64x304), T(64x312), T(64x328), T(64x336), T(64x344), T(64x352),
    T(64x360), T(64x368), T(64x376), T(64x392), T(64x400), T(64x408), T(64x416), T(64x424), T(64x432), T(64x440),
    T(64x456), T(64x464), T(64x472), T(64x480), T(64x488), T(64x496), T(64x504), T(64x520), T(64x528), T(64x536),
    T(64x544), T(64x552), T(64x560), T(64x568), T(64x584), T(64x592), T(64x600), T(64x608), T(64x616), T(64x624),
    T(64x632), T(64x648), T(64x656), T(64x664), T(64x672), T(64x680), T(64x688), T(64x696), T(64x712), T(64x720),
    T(64x728), T(64x736), T(64x744), T(64x752), T(64x760), T(128x8), T(128x16), T(128x24), T(128x40), T(128x48),
    T(128x56), T(128x72), T(128x80), T(128x88), T(128x104), T(128x112), T(128x120), T(128x136), T(128x144),
    T(128x152), T(128x168), T(128x176), T(128x184), T(128x200), T(128x208), T(128x216), T(128x224), T(128x232),
    T(128x240), T(128x248), T(128x264), T(128x272), T(128x280), T(128x288), T(128x296), T(128x304), T(128x312),
    T(128x328), T(128x336), T(128x344), T(128x352), T(128x360), T(128x368), T(128x376), T(128x392), T(128x400),
    T(128x408), T(128x416), T(128x424), T(128x432), T(128x440), T(128x448), T(128x456), T(128x464), T(128x472),
    T(128x480), T(128x488), T(128x496), T(128x504), T(128x512), T(192x8), T(192x16), T(192x24), T(192x32),
    T(192x40), T(192x48), T(192x56), T(192x72), T(192x80), T(192x88), T(192x96), T(192x104), T(192x112),
    T(192x120), T(192x136), T(192x144), T(192x152), T(192x160), T(192x168), T(192x176), T(192x184), T(192x200),
    T(192x208), T(192x216), T(192x224), T(192x232), T(192x240), T(192x248), T(192x264), T(192x272), T(192x280),
    T(192x288), T(192x296), T(192x304), T(192x312), T(192x320), T(192x328), T(192x336), T(256x8), T(256x16),
    T(256x24), T(256x40), T(256x48), T(256x56), T(256x72), T(256x80), T(256x88), T(256x96), T(256x104), T(256x112),
    T(256x120), T(256x136), T(256x144), T(256x152), T(256x160), T(256x168), T(256x176), T(256x184), T(256x200),
    T(256x208), T(256x216), T(256x224), T(256x232), T(256x240), T(256x248), T(256x256), T(320x8), T(320x16),
    T(320x24), T(320x32), T(320x40), T(320x48), T(320x56), T(320x72), T(320x80), T(320x88), T(320x96), T(320x104),
    T(320x112), T(320x120), T(320x136), T(320x144), T(320x152), T(320x160), T(320x168), T(320x176), T(320x184),
    T(320x192), T(320x200), T(384x8), T(384x16), T(384x24), T(384x32), T(384x40), T(384x48), T(384x56), T(384x72),
    T(384x80), T(384x88), T(384x96), T(384x104), T(384x112), T(384x120), T(384x136), T(384x144), T(384x152),
    T(384x160), T(384x168), T(448x8), T(448x16), T(448x24), T(448x32), T(448x40), T(448x48), T(448x56), T(448x72),
    T(448x80), T(448x88), T(448x96), T(448x104), T(448x112), T(448x120), T(448x128), T(448x136), T(448x144),
    T(512x8), T(512x16), T(512x24), T(512x32), T(512x40), T(512x48), T(512x56), T(512x72), T(512x80), T(512x88),
    T(512x96), T(512x104), T(512x112), T(512x120), T(512x128), T(576x8), T(576x16), T(576x24), T(576x32),
    T(576x40), T(576x48), T(576x56), T(576x72), T(576x80), T(576x88), T(576x96), T(576x104), T(576x112),
    T(640x8), T(640x16), T(640x24), T(640x32), T(640x40), T(640x48), T(640x56), T(640x72), T(640x80), T(640x88),
    T(640x96), T(704x8), T(704x16), T(704x24), T(704x32), T(704x40), T(704x48), T(704x56), T(704x72), T(704x80),
    T(704x88), T(768x8), T(768x16), T(768x24), T(768x32), T(768x40), T(768x48), T(768x56), T(768x72), T(768x80),
    T(256x512), T(256x1024), T(512x512), T(512x1024),
};
#undef T

#define S(s) [CUBLASLT_MATMUL_STAGES_##s] = #s
static const char *const stages_names[CUBLASLT_MATMUL_STAGES_END] = {
    [CUBLASLT_MATMUL_STAGES_UNDEFINED] = "undefined",
    S(16x1), S(16x2), S(16x3), S(16x4), S(16x5), S(16x6), S(32x1), S(32x2), S(32x3), S(32x4), S(32x5), S(32x6),
    S(64x1), S(64x2), S(64x3), S(64x4), S(64x5), S(64x6), S(128x1), S(128x2), S(128x3), S(128x4), S(128x5),
    S(128x6), S(32x10), S(8x4), S(16x10), S(8x5), S(8x3), S(8xAUTO), S(16xAUTO), S(32xAUTO), S(64xAUTO),
    S(128xAUTO), S(256xAUTO), S(768xAUTO),
};
#undef S

#define C(s) [CUBLASLT_CLUSTER_SHAPE_##s] = #s
static const char *const cluster_names[CUBLASLT_CLUSTER_SHAPE_END] = {
    [CUBLASLT_CLUSTER_SHAPE_AUTO] = "auto",
    C(1x1x1), C(2x1x1), C(4x1x1), C(1x2x1), C(2x2x1), C(4x2x1), C(1x4x1), C(2x4x1), C(4x4x1), C(8x1x1),
    C(1x8x1), C(8x2x1), C(2x8x1), C(16x1x1), C(1x16x1), C(3x1x1), C(5x1x1), C(6x1x1), C(7x1x1), C(9x1x1),
    C(10x1x1), C(11x1x1), C(12x1x1), C(13x1x1), C(14x1x1), C(15x1x1), C(3x2x1), C(5x2x1), C(6x2x1), C(7x2x1),
    C(1x3x1), C(2x3x1), C(3x3x1), C(4x3x1), C(5x3x1), C(3x4x1), C(1x5x1), C(2x5x1), C(3x5x1), C(1x6x1),
    C(2x6x1), C(1x7x1), C(2x7x1), C(1x9x1), C(1x10x1), C(1x11x1), C(1x12x1), C(1x13x1), C(1x14x1), C(1x15x1),
};
#undef C

static const char *table_name(const char *const *names, int count, int v) {
    if (v < 0 || v >= count) return NULL;
    return names[v];
}

static int table_parse(const char *const *names, int count, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < count; i++)
        if (names[i] && strcmp(names[i], name) == 0) return i;
    return -1;
}

const char *kblt_tile_name(int tile) { return table_name(tile_names, CUBLASLT_MATMUL_TILE_END, tile); }
const char *kblt_stages_name(int stages) { return table_name(stages_names, CUBLASLT_MATMUL_STAGES_END, stages); }
const char *kblt_cluster_name(int cluster) {
    return table_name(cluster_names, CUBLASLT_CLUSTER_SHAPE_END, cluster);
}
int kblt_tile_parse(const char *name) { return table_parse(tile_names, CUBLASLT_MATMUL_TILE_END, name); }
int kblt_stages_parse(const char *name) { return table_parse(stages_names, CUBLASLT_MATMUL_STAGES_END, name); }
int kblt_cluster_parse(const char *name) {
    return table_parse(cluster_names, CUBLASLT_CLUSTER_SHAPE_END, name);
}
int kblt_tile_count(void) { return CUBLASLT_MATMUL_TILE_END; }
int kblt_stages_count(void) { return CUBLASLT_MATMUL_STAGES_END; }
int kblt_cluster_count(void) { return CUBLASLT_CLUSTER_SHAPE_END; }

/* The reduction scheme of one configuration is a single value of the mask enum. */
const char *kblt_reduction_name(int scheme) {
    switch (scheme) {
    case CUBLASLT_REDUCTION_SCHEME_NONE: return "none";
    case CUBLASLT_REDUCTION_SCHEME_INPLACE: return "inplace";
    case CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE: return "compute_type";
    case CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE: return "output_type";
    default: return NULL;
    }
}

int kblt_reduction_parse(const char *name) {
    static const int schemes[] = {CUBLASLT_REDUCTION_SCHEME_NONE, CUBLASLT_REDUCTION_SCHEME_INPLACE,
                                  CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE, CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE};
    if (!name) return -1;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strcmp(kblt_reduction_name(schemes[i]), name) == 0) return schemes[i];
    return -1;
}

/* ---- algorithm identity ------------------------------------------------------- */
static void name_or_number(char *dst, size_t size, const char *name, const char *what, int v) {
    if (name)
        snprintf(dst, size, "%s", name);
    else
        snprintf(dst, size, "%s#%d", what, v);
}

void kblt_identity_to_variant(const kblt_identity *id, kb_variant *v) {
    v->algo_id = id->algo_id;
    name_or_number(v->tile, sizeof v->tile, kblt_tile_name(id->tile), "tile", id->tile);
    v->stages = id->stages;
    v->splitk = id->splitk;
    name_or_number(v->reduction, sizeof v->reduction, kblt_reduction_name(id->reduction), "reduction",
                   id->reduction);
    v->swizzle = id->swizzle;
    v->custom = id->custom;
    name_or_number(v->cluster, sizeof v->cluster, kblt_cluster_name(id->cluster), "cluster", id->cluster);
    v->workspace = id->workspace;
    v->waves = id->waves;
    v->heuristic_rank = id->heuristic_rank;
}

/* "tile#N" style names of values this header does not know parse back too. */
static int parse_name_or_number(const char *s, const char *what, int (*parse)(const char *)) {
    int v = parse(s);
    if (v >= 0) return v;
    size_t n = strlen(what);
    if (strncmp(s, what, n) == 0 && s[n] == '#') {
        char *end = NULL;
        long x = strtol(s + n + 1, &end, 10);
        if (end != s + n + 1 && *end == '\0' && x >= 0 && x < (1L << 30)) return (int)x;
    }
    return -1;
}

int kblt_identity_from_variant(const kb_variant *v, kblt_identity *id, char *msg) {
    memset(id, 0, sizeof *id);
    id->algo_id = v->algo_id;
    id->tile = parse_name_or_number(v->tile, "tile", kblt_tile_parse);
    if (id->tile < 0) return kb_fail(msg, -1, "variant %s: unknown tile '%s'", v->name, v->tile), -1;
    id->stages = v->stages;
    id->splitk = v->splitk;
    id->reduction = parse_name_or_number(v->reduction, "reduction", kblt_reduction_parse);
    if (id->reduction < 0)
        return kb_fail(msg, -1, "variant %s: unknown reduction scheme '%s'", v->name, v->reduction), -1;
    id->swizzle = v->swizzle;
    id->custom = v->custom;
    id->cluster = parse_name_or_number(v->cluster, "cluster", kblt_cluster_parse);
    if (id->cluster < 0) return kb_fail(msg, -1, "variant %s: unknown cluster shape '%s'", v->name, v->cluster), -1;
    if (v->algo_id < 0) return kb_fail(msg, -1, "variant %s carries no algorithm id", v->name), -1;
    id->workspace = v->workspace;
    id->waves = v->waves;
    id->heuristic_rank = v->heuristic_rank;
    return 0;
}

int kblt_identity_format(const kblt_identity *id, char *buf, size_t size) {
    char tile[24], stages[24], red[24], cluster[16];
    name_or_number(tile, sizeof tile, kblt_tile_name(id->tile), "tile", id->tile);
    name_or_number(stages, sizeof stages, kblt_stages_name(id->stages), "stages", id->stages);
    name_or_number(red, sizeof red, kblt_reduction_name(id->reduction), "reduction", id->reduction);
    name_or_number(cluster, sizeof cluster, kblt_cluster_name(id->cluster), "cluster", id->cluster);
    return snprintf(buf, size,
                    "algo %d tile %s stages %s splitk %d reduction %s swizzle %d custom %d cluster %s ws %lld "
                    "waves %.2f rank %d",
                    id->algo_id, tile, stages, id->splitk, red, id->swizzle, id->custom, cluster,
                    (long long)id->workspace, id->waves, id->heuristic_rank);
}

/* ---- variant names --------------------------------------------------------------- */
static const char *none_word(kblt_source none_of) { return none_of == KBLT_SRC_EXHAUSTIVE ? "exhaustive" : "heuristic"; }

void kblt_variant_name(char *out, size_t size, kblt_source src, kblt_source none_of, int index, int fast_accum) {
    int fa = fast_accum ? 1 : 0;
    switch (src) {
    case KBLT_SRC_HEURISTIC: snprintf(out, size, "h%02d_fa%d", index, fa); break;
    case KBLT_SRC_EXHAUSTIVE: snprintf(out, size, "x%03d_fa%d", index, fa); break;
    default: snprintf(out, size, "%s_fa%d", none_word(none_of), fa); break;
    }
}

/* Reads "_fa0" / "_fa1" at the end; returns the length before it, or -1. */
static int split_fa(const char *name, int *fa) {
    size_t n = strlen(name);
    if (n < 5 || strncmp(name + n - 4, "_fa", 3) != 0) return -1;
    char d = name[n - 1];
    if (d != '0' && d != '1') return -1;
    *fa = d - '0';
    return (int)(n - 4);
}

/* A run of 2+ decimal digits filling s[0..len). */
static int parse_digits(const char *s, int len, int *value) {
    if (len < 2 || len > 6) return -1;
    int v = 0;
    for (int i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 0;
}

int kblt_variant_parse(const char *name, kblt_source *src, int *index, int *fast_accum) {
    int fa = 0, idx = -1;
    kblt_source s;
    if (!name) return -1;
    int stem = split_fa(name, &fa);
    if (stem < 0) return -1;
    if (name[0] == 'h' && parse_digits(name + 1, stem - 1, &idx) == 0)
        s = KBLT_SRC_HEURISTIC;
    else if (name[0] == 'x' && parse_digits(name + 1, stem - 1, &idx) == 0)
        s = KBLT_SRC_EXHAUSTIVE;
    else if ((stem == 9 && strncmp(name, "heuristic", 9) == 0) || (stem == 10 && strncmp(name, "exhaustive", 10) == 0))
        s = KBLT_SRC_NONE;
    else
        return -1;
    if (src) *src = s;
    if (index) *index = idx;
    if (fast_accum) *fast_accum = fa;
    return 0;
}

int kblt_fast_accum_settings(int opt_fast_accum, int out[2]) {
    switch (opt_fast_accum) {
    case -1: out[0] = 0; out[1] = 1; return 2;
    case 0: out[0] = 0; return 1;
    case 1: out[0] = 1; return 1;
    default: return 0;
    }
}

double kblt_acc_unit_roundoff(int fast_accum, int64_t k) {
    /* FAST_ACCUM off: 2 sqrt(K) u = 32 * 2^-14 (cublaslt_host.h says why) */
    const double promoted = 0x1p-10 / sqrt((double)(k > 0 ? k : 1));
    if (fast_accum) return promoted > KBLT_FAST_ACCUM_UNIT_ROUNDOFF ? promoted : KBLT_FAST_ACCUM_UNIT_ROUNDOFF;
    return promoted;
}

double kblt_acc_tolerance(int64_t k, double acc_unit_roundoff) {
    double u = acc_unit_roundoff > 0x1p-24 ? acc_unit_roundoff : 0x1p-24;
    return 2.0 * sqrt((double)(k > 0 ? k : 1)) * u + 4 * 0x1p-24;
}

/* ---- --algo ------------------------------------------------------------------------ */
int kblt_algo_mode_parse(const char *s, kblt_algo_mode *mode) {
    if (!s || !*s || strcmp(s, "heuristic") == 0)
        *mode = KBLT_ALGO_HEURISTIC;
    else if (strcmp(s, "exhaustive") == 0)
        *mode = KBLT_ALGO_EXHAUSTIVE;
    else
        return -1;
    return 0;
}

int kblt_exhaustive_cap(int algo_cap) { return algo_cap > 0 ? algo_cap : KBLT_EXHAUSTIVE_DEFAULT_CAP; }

int64_t kblt_subsample_index(int64_t j, int64_t total, int64_t cap) {
    if (total <= cap) return j;
    /* j * total < cap * total fits easily: both stay below 2^15 * 2^31 here. */
    return j * total / cap;
}

/* ---- scales ----------------------------------------------------------------------- */
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up4(int64_t a) { return (a + 3) / 4 * 4; }

int kblt_scale_mode_lt(kb_scale_mode mode, int operand) {
    switch (mode) {
    case KB_SCALE_TENSOR: return CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
    case KB_SCALE_OUTER: return CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    case KB_SCALE_VEC128: return CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    case KB_SCALE_BLK128:
        return operand == 0 ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F : CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    default: return -1;
    }
}

int64_t kblt_scale_elems_kb(kb_scale_mode mode, int operand, int64_t rows, int64_t k) {
    int64_t kb = ceil_div(k, 128);
    switch (mode) {
    case KB_SCALE_TENSOR: return 1;
    case KB_SCALE_OUTER: return rows;
    case KB_SCALE_VEC128: return rows * kb;
    case KB_SCALE_BLK128: return operand == 0 ? ceil_div(rows, 128) * kb : rows * kb;
    default: return -1;
    }
}

int64_t kblt_scale_elems_lt(kb_scale_mode mode, int operand, int64_t rows, int64_t k) {
    int64_t kb = ceil_div(k, 128);
    switch (mode) {
    case KB_SCALE_TENSOR: return 1;
    case KB_SCALE_OUTER: return rows;
    case KB_SCALE_VEC128: return kb * rows;
    case KB_SCALE_BLK128: return operand == 0 ? ceil_div(rows, 128) * round_up4(kb) : kb * rows;
    default: return -1;
    }
}

int kblt_scale_needs_reorder(kb_scale_mode mode, int operand, int64_t rows, int64_t k) {
    int64_t kb = ceil_div(k, 128);
    switch (mode) {
    case KB_SCALE_VEC128: return kb > 1 && rows > 1; /* [rows][kb] -> [kb][rows] is the identity otherwise */
    case KB_SCALE_BLK128:
        if (operand == 0) return kb % 4 != 0; /* only the padding of each block row differs */
        return kb > 1 && rows > 1;
    default: return 0;
    }
}

/* [rows][kb] -> [kb][rows] */
static void transpose_1x128(int64_t rows, int64_t kb, const float *src, float *dst) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < kb; j++) dst[j * rows + r] = src[r * kb + j];
}

int kblt_scales_to_lt(kb_scale_mode mode, int operand, int64_t rows, int64_t k, const float *src, float *dst) {
    int64_t kb = ceil_div(k, 128);
    switch (mode) {
    case KB_SCALE_TENSOR: dst[0] = src[0]; return 0;
    case KB_SCALE_OUTER: memcpy(dst, src, (size_t)rows * sizeof(float)); return 0;
    case KB_SCALE_VEC128: transpose_1x128(rows, kb, src, dst); return 0;
    case KB_SCALE_BLK128:
        if (operand == 1) {
            transpose_1x128(rows, kb, src, dst);
        } else {
            int64_t mb = ceil_div(rows, 128), kbp = round_up4(kb);
            for (int64_t i = 0; i < mb; i++) {
                memcpy(dst + i * kbp, src + i * kb, (size_t)kb * sizeof(float));
                for (int64_t j = kb; j < kbp; j++) dst[i * kbp + j] = 0.0f;
            }
        }
        return 0;
    default: return -1;
    }
}

/* ---- the scale reorder on the device ------------------------------------------------ */
int kblt_scale_reorder_plan(const kb_case *c, kbcu_plan *p, int64_t ws_offset[2], char *msg) {
    const int64_t kb = ceil_div(c->k, 128);
    uint64_t ws = 0;
    for (int operand = 0; operand < 2; operand++) {
        const int64_t rows = operand == 0 ? c->m : c->n;
        ws_offset[operand] = -1;
        if (!kblt_scale_needs_reorder(c->scale_mode, operand, rows, c->k)) continue;
        const int64_t lt = kblt_scale_elems_lt(c->scale_mode, operand, rows, c->k);
        if (lt < 1) return kb_fail(msg, KB_ERROR, "scale mode %d has no cuBLASLt layout", (int)c->scale_mode);
        ws_offset[operand] = (int64_t)ws;
        kbcu_launch *l;
        if (c->scale_mode == KB_SCALE_BLK128 && operand == 0) {
            const int64_t mb = ceil_div(rows, 128), kbp = round_up4(kb);
            l = kbcu_add_launch_module(p, "cublaslt_scales.cu", "", "kb_scales_pad", ceil_div(mb * kbp, 256), 1, 1, 256);
            kbcu_arg_tensor(p, l, 2);
            kbcu_arg_ws(p, l, ws_offset[operand]);
            kbcu_arg_i64(p, l, mb);
            kbcu_arg_i32(p, l, kb);
            kbcu_arg_i32(p, l, kbp);
        } else {
            l = kbcu_add_launch_module(p, "cublaslt_scales.cu", "", "kb_scales_transpose", ceil_div(rows * kb, 256), 1, 1,
                                       256);
            kbcu_arg_tensor(p, l, 2 + operand);
            kbcu_arg_ws(p, l, ws_offset[operand]);
            kbcu_arg_i64(p, l, rows);
            kbcu_arg_i32(p, l, kb);
        }
        ws += ((uint64_t)lt * sizeof(float) + 255) / 256 * 256;
    }
    p->workspace = ws;
    if (p->oom) return kb_fail(msg, KB_ERROR, "out of host memory while planning the scale reorder");
    return KB_OK;
}

/* ---- checks ---------------------------------------------------------------------- */
static int is_fp8(kb_dtype t) { return t == KB_E4M3 || t == KB_E5M2; }

int kblt_check_case(const kb_case *c, char *msg) {
    if (c->op != KB_OP_gemm_fp8)
        return kb_fail(msg, KB_NOT_SUPPORTED, "cublaslt runs only gemm_fp8, not %s", kbcu_op_name(c->op));
    if (!is_fp8(c->a_type))
        return kb_fail(msg, KB_NOT_SUPPORTED, "A (W) type %s is not FP8 (cuBLASLt FP8 GEMM takes e4m3 or e5m2)",
                       kb_dtype_name(c->a_type));
    if (!is_fp8(c->b_type))
        return kb_fail(msg, KB_NOT_SUPPORTED, "B (X) type %s is not FP8 (cuBLASLt FP8 GEMM takes e4m3 or e5m2)",
                       kb_dtype_name(c->b_type));
    if (c->a_type == KB_E5M2 && c->b_type == KB_E5M2)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "e5m2 x e5m2 is not a cuBLASLt FP8 pair (e4m3 x e4m3, e4m3 x e5m2, e5m2 x e4m3 are)");
    if (c->out_type != KB_BF16 && c->out_type != KB_F16 && c->out_type != KB_F32)
        return kb_fail(msg, KB_NOT_SUPPORTED, "D type %s is not run here (cublaslt takes bf16, f16 or f32 output)",
                       kb_dtype_name(c->out_type));
    if ((int)c->scale_mode < 0 || c->scale_mode >= KB_SCALE_COUNT)
        return kb_fail(msg, KB_NOT_SUPPORTED, "unknown scale mode %d", (int)c->scale_mode);
    if (c->m <= 0 || c->n <= 0 || c->k <= 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "empty GEMM: m = %lld, n = %lld, k = %lld", (long long)c->m,
                       (long long)c->n, (long long)c->k);
    /* A = W is k x m (lda = k), B = X is k x n (ldb = k), D is m x n (ldd = m),
     * all column-major: 16-byte aligned leading dimensions need k % 16 == 0
     * (1-byte fp8) and m * sizeof(D) % 16 == 0, and the FP8 kernels need m % 16 too. */
    if (c->m % 16 != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "m = %lld is not a multiple of 16 (cuBLASLt FP8 needs 16-byte aligned dimensions)",
                       (long long)c->m);
    if (c->k % 16 != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED,
                       "k = %lld is not a multiple of 16 (cuBLASLt FP8 needs lda = ldb = k to be a multiple of 16 "
                       "bytes)",
                       (long long)c->k);
    return KB_OK;
}

int kblt_check_pointer(const void *p, const char *what, char *msg) {
    uintptr_t a = (uintptr_t)p;
    if (a % 16 != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "%s pointer 0x%llx is not 16-byte aligned (cuBLASLt needs 16-byte "
                       "aligned matrices)", what, (unsigned long long)a);
    return KB_OK;
}

/* ---- CUDA errors ----------------------------------------------------------------- */
/* The errors the CUDA runtime documents as leaving the context in an
 * inconsistent state ("the process must be terminated and relaunched"). */
int kblt_cuda_error_is_sticky(int err) {
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorContextIsDestroyed:
    case cudaErrorTensorMemoryLeak:
    case cudaErrorExternalDevice:
    case cudaErrorUnknown: return 1;
    default: return 0;
    }
}

size_t kblt_elem_bytes(kb_dtype t) {
    switch (t) {
    case KB_E4M3:
    case KB_E5M2: return 1;
    case KB_F16:
    case KB_BF16: return 2;
    case KB_F32: return 4;
    default: return 0;
    }
}
