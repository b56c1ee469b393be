/* vk_op.h - what an op's Vulkan code (kernels/spirv/<op>.c + <op>.comp) and the backend
 * (backend_vulkan.c) share.
 *
 * An op file defines `const vk_op vk_op_<name>` (bench/op_list.h names them all): the
 * variants it offers for a case, and a plan for one variant: any number of dispatches
 * of its shader modules (specialization constants, push constants, workgroup count,
 * which tensor or scratch buffer sits at each binding) and any number of scratch
 * buffers. The backend owns everything else: pipelines, descriptor sets, barriers,
 * command buffers, timing. Nothing outside an op's own files switches on the op.
 *
 * Conventions every shader follows:
 *   - set 0, storage buffers at bindings 0..VK_NBIND-1, one push-constant block of at
 *     most VK_PUSH_WORDS 32-bit words;
 *   - specialization constant 0 is KB_SHORT_WRITE (test_short_write: the dispatch that
 *     writes the last element of output 0 skips it);
 *   - a shader whose workgroup size is tunable (BLOCK: rmsnorm, add, bias_add, swiglu)
 *     takes it as constant 1 (local_size_x_id = 1, 256 as written; vk_set_block);
 *   - the workgroups of a dispatch are numbered linearly over a 2D grid (x at most
 *     65535): wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, and a
 *     workgroup at or past the count returns. */
#ifndef KB_VK_OP_H
#define KB_VK_OP_H

#include "bench/kbench.h"

#include <stddef.h>
#include <stdint.h>

#define VK_NBIND 8        /* storage-buffer bindings in set 0 */
#define VK_PUSH_WORDS 16  /* push-constant block: 64 bytes (128 is the guaranteed minimum) */
#define VK_MAX_SPEC 13    /* specialization constants 0..12 */

/* One SPIR-V module, embedded at build time (vulkan.cmake). `name` says what it is
 * built from ("gemm_fp8.comp -DKB_GEMM_TILED"); rows and not_supported reasons show it. */
typedef struct {
    const char *name;
    const uint32_t *words;
    size_t bytes;
} vk_module;

/* What sits at a binding: nothing (a dummy buffer), the op's argument `index`
 * (inputs then outputs, as prepare got them) or the plan's scratch buffer `index`. */
typedef enum { VK_BIND_NONE = 0, VK_BIND_ARG, VK_BIND_SCRATCH } vk_bind_kind;
typedef struct {
    vk_bind_kind kind;
    int index;
} vk_binding;

typedef struct {
    const vk_module *module;
    uint32_t spec[VK_MAX_SPEC]; /* constant_id i = spec[i], i < nspec */
    int nspec;
    uint32_t push[VK_PUSH_WORDS];
    uint32_t groups; /* workgroups in all */
    vk_binding bind[VK_NBIND];
} vk_dispatch;

typedef struct {
    uint64_t bytes;
    void *init; /* uploaded at prepare when not NULL (malloc'd; the backend frees it) */
} vk_scratch;

/* A plan under construction. The op reads the first block and fills the second
 * through vk_plan_dispatch / vk_plan_scratch / vk_bind_*. */
typedef struct {
    const kb_case *c;
    const char *variant; /* one of the op's variants, or one of its own test variants */
    /* The --tune point of the variant's name ("row256[BLOCK=128]": BLOCK=128), n = 0 as
     * written; prepare checked that the variant has each tunable it sets. */
    const kb_tune_point *tune;
    int short_write;     /* test_short_write: set spec 0 (vk_plan_dispatch does it) */
    const kb_arg *args;  /* inputs then outputs */
    int n_in, n_out;
    /* the device, for plans sized by it */
    uint32_t subgroup_size;    /* VkPhysicalDeviceSubgroupProperties.subgroupSize */
    uint32_t max_shared_bytes; /* maxComputeSharedMemorySize */
    uint32_t max_invocations;  /* min(maxComputeWorkGroupInvocations, maxComputeWorkGroupSize[0]) */
    /* filled by the op */
    vk_dispatch *d;
    int ndisp, dcap;
    vk_scratch *scratch;
    int nscratch, scap;
} vk_plan;

/* A test-only broken variant an op offers beyond test_short_write (every op has that). */
typedef struct {
    const char *name;
    const char *detail;
} vk_test;

typedef struct {
    /* The variants this op runs for case c, at most max (the first is its default,
     * the one test_short_write breaks). 0 with msg: the case is not offered. */
    int (*variants)(const kb_case *c, kb_variant *out, int max, char *msg);
    /* Fill p for p->variant: KB_OK, KB_NOT_SUPPORTED with the reason, KB_ERROR. */
    int (*plan)(vk_plan *p, char *msg);
    const vk_test *tests; /* NULL-name terminated, or NULL */
} vk_op;

#define VK_OP_DECL(name) extern const vk_op vk_op_##name;
KB_OP_LIST(VK_OP_DECL)
#undef VK_OP_DECL

/* ---- helpers for the op files (vk_plan.c) ---------------------------------------- */
/* A new dispatch of module m over `groups` workgroups, spec 0 = the short-write flag,
 * every binding empty; NULL when out of host memory (vk_plan_oom says so). */
vk_dispatch *vk_plan_dispatch(vk_plan *p, const vk_module *m, uint32_t groups);
/* A scratch buffer of `bytes` (init: its contents, malloc'd, owned by the plan from
 * here on, or NULL); its index, or -1 when out of host memory. */
int vk_plan_scratch(vk_plan *p, uint64_t bytes, void *init);
int vk_plan_oom(char *msg);
static inline void vk_bind_arg(vk_dispatch *d, int binding, int arg) { d->bind[binding] = (vk_binding){VK_BIND_ARG, arg}; }
static inline void vk_bind_scratch(vk_dispatch *d, int binding, int scratch) {
    d->bind[binding] = (vk_binding){VK_BIND_SCRATCH, scratch};
}
/* The workgroup size of p's variant, specialization constant 1 of its shader: `written`
 * (the variant as written), or the --tune point's BLOCK, a power of two from 32 to the
 * device's maxComputeWorkGroupInvocations (KB_NOT_SUPPORTED saying why otherwise). */
#define VK_SPEC_BLOCK 1
int vk_plan_block(const vk_plan *p, uint32_t written, uint32_t *block, char *msg);
static inline void vk_set_block(vk_dispatch *d, uint32_t block) {
    d->spec[VK_SPEC_BLOCK] = block;
    if (d->nspec <= VK_SPEC_BLOCK) d->nspec = VK_SPEC_BLOCK + 1;
}
/* Append a variant (name, printf detail) when there is room. */
void vk_variant_add(kb_variant *out, int max, int *n, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The bits of a float (push constants). */
uint32_t vk_f32_bits(float f);
/* 0 <= v < 2^32: the shaders index with 32-bit unsigned ints. */
int vk_fits_u32(int64_t v);
/* ceil(a / b) for positive b. */
static inline int64_t vk_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- the elementwise ops (add, bias_add, swiglu) ----------------------------------- */
/* One module per input type (f32, f16, bf16) and loop: `elem256` one element per
 * thread, `vec4` four with vector loads where the views allow; both tune BLOCK (the
 * workgroup size, 256 as written). */
typedef struct {
    const char *op;
    const vk_module *elem[3], *vec4[3]; /* f32, f16, bf16 */
} vk_elementwise;
/* Both variants for c's input type (c->a_type); 0 with msg for another type. */
int vk_elementwise_variants(const vk_elementwise *e, const kb_case *c, kb_variant *out, int max, char *msg);
/* The variant's dispatch over `count` elements (push[0] = count), *vec4 set; NULL with
 * *rc and msg when the variant, the type or the count is not one it runs. */
vk_dispatch *vk_elementwise_dispatch(vk_plan *p, const vk_elementwise *e, int64_t count, int *vec4, int *rc, char *msg);

#endif
