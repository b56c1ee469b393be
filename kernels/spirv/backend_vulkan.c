/* backend_vulkan.c - the Vulkan compute backend: device selection and facts, device-local
 * buffers with staging, compute pipelines cached per (module, specialization), states
 * built from the ops' dispatch plans, command buffers that chain them, timestamp timing.
 *
 * The ops live in their own files (kernels/spirv/<op>.c + <op>.comp, vk_op.h); nothing
 * here knows an op. The SPIR-V is compiled from the .comp files at build time
 * (vulkan.cmake) and embedded as uint32 arrays, so kbench needs no build folder at run
 * time. Each module's OpCapability list is read at run time and mapped to the device
 * feature it needs (8/16-bit storage, float16, ..., and the subgroup operations of
 * VkPhysicalDeviceSubgroupProperties in compute shaders): a variant whose shader needs a
 * feature the device lacks is a KB_NOT_SUPPORTED row that names the feature.
 *
 * Memory ordering (NOTES.md "Backend"): every command buffer starts with a full memory
 * barrier (uploads, earlier work and the cache flush are visible); states queued together
 * run in order, a compute barrier between consecutive states (the contract's one
 * in-order stream: rotate copies never overlap, as on a CUDA stream); inside a state, a
 * barrier precedes each dispatch that reads or writes a byte range an earlier dispatch of
 * the state wrote, or writes one it read, since the last barrier.
 *
 * Views: a tensor is bound at its view's offset (VkDescriptorBufferInfo.offset), so the
 * shaders index from the start of the view. An offset that is not a multiple of the
 * device's minStorageBufferOffsetAlignment is KB_NOT_SUPPORTED, naming the alignment.
 *
 * Every VkResult is checked; the failing call and the result's name go into msg. A lost
 * device (or a fence that never signals) is KB_ERROR_FATAL: reset() rebuilds everything.
 *
 * Test hooks (environment):
 *   KB_VK_DISABLE_FEATURES=a,b  treat these device features as absent (tests the
 *                               not_supported path on a device that has them)
 *   KB_VK_CPU_MAX_GFLOP=x       the flop limit of a CPU Vulkan device (default 1 GFLOP)
 *   KB_VK_SUBGROUP_SIZE=n       plans see n as the subgroup size (tests a shader's check that
 *                               the device runs the subgroup size its plan assumed) */
#include "kernels/spirv/backend_vulkan.h"

#include "bench/hostmem.h"
#include "bench/op.h"
#include "kernels/spirv/vk_op.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vulkan/vulkan.h>

#include "spv_copy.h"
#include "spv_empty.h"

#define VK_OP_ENTRY(name) [KB_OP_##name] = &vk_op_##name,
static const vk_op *const vk_ops[KB_OP_COUNT] = {KB_OP_LIST(VK_OP_ENTRY)};
#undef VK_OP_ENTRY

/* The launch floor's kernel: one empty workgroup. */
static const vk_module mod_empty = {"empty.comp", kb_spv_empty, sizeof kb_spv_empty};
/* The bandwidth probe's kernel: a 16-byte-word copy. */
static const vk_module mod_copy = {"copy.comp", kb_spv_copy, sizeof kb_spv_copy};

/* ---- device features a shader may need ---------------------------------------------- */
/* SPIR-V capability numbers: SPIR-V specification, section 3.31 "Capability". */
enum {
    FEAT_SHADER_FLOAT16,
    FEAT_SHADER_FLOAT64,
    FEAT_SHADER_INT64,
    FEAT_SHADER_INT16,
    FEAT_SHADER_INT8,
    FEAT_SB16,
    FEAT_UASB16,
    FEAT_PC16,
    FEAT_SB8,
    FEAT_UASB8,
    FEAT_PC8,
    /* subgroup operations: not VkPhysicalDevice*Features members but bits of
     * VkPhysicalDeviceSubgroupProperties.supportedOperations, counted only when its
     * supportedStages include compute */
    FEAT_SG_BASIC,
    FEAT_SG_VOTE,
    FEAT_SG_ARITHMETIC,
    FEAT_SG_BALLOT,
    FEAT_SG_SHUFFLE,
    FEAT_SG_SHUFFLE_RELATIVE,
    FEAT_SG_CLUSTERED,
    FEAT_SG_QUAD,
    FEAT_COUNT
};
#define FEAT_FIRST_SUBGROUP FEAT_SG_BASIC

static const struct {
    uint32_t capability;
    const char *feature; /* the VkPhysicalDevice*Features member that enables it, or (FEAT_SG_*)
                          * the subgroup operation that VkSubgroupFeatureFlagBits names */
} feature_caps[FEAT_COUNT] = {
    [FEAT_SHADER_FLOAT16] = {9, "shaderFloat16"},
    [FEAT_SHADER_FLOAT64] = {10, "shaderFloat64"},
    [FEAT_SHADER_INT64] = {11, "shaderInt64"},
    [FEAT_SHADER_INT16] = {22, "shaderInt16"},
    [FEAT_SHADER_INT8] = {39, "shaderInt8"},
    [FEAT_SB16] = {4433, "storageBuffer16BitAccess"},
    [FEAT_UASB16] = {4434, "uniformAndStorageBuffer16BitAccess"},
    [FEAT_PC16] = {4435, "storagePushConstant16"},
    [FEAT_SB8] = {4448, "storageBuffer8BitAccess"},
    [FEAT_UASB8] = {4449, "uniformAndStorageBuffer8BitAccess"},
    [FEAT_PC8] = {4450, "storagePushConstant8"},
    /* GroupNonUniform* capabilities 61..68 <-> VK_SUBGROUP_FEATURE_*_BIT 1 << (cap - 61) */
    [FEAT_SG_BASIC] = {61, "subgroupBasic"},
    [FEAT_SG_VOTE] = {62, "subgroupVote"},
    [FEAT_SG_ARITHMETIC] = {63, "subgroupArithmetic"},
    [FEAT_SG_BALLOT] = {64, "subgroupBallot"},
    [FEAT_SG_SHUFFLE] = {65, "subgroupShuffle"},
    [FEAT_SG_SHUFFLE_RELATIVE] = {66, "subgroupShuffleRelative"},
    [FEAT_SG_CLUSTERED] = {67, "subgroupClustered"},
    [FEAT_SG_QUAD] = {68, "subgroupQuad"},
};

/* ---- the device ------------------------------------------------------------------------ */
#define STAGING_BYTES (32u << 20)
/* Cold samples: at least 128 MiB (>= 2x the 50 MiB L2 of an H100/H200, 2x 64 MiB of a host
 * running lavapipe), and 2x the cache when the device says it is larger. */
#define FLUSH_MIN_BYTES ((VkDeviceSize)128 << 20)
#define BW_COPY_BYTES ((VkDeviceSize)256 << 20) /* the bandwidth probe's copy, beyond any cache */
#define FENCE_TIMEOUT_NS (300ull * 1000000000ull)
#define MAX_INFLIGHT 64 /* enqueued command buffers not yet waited for; one more waits */
/* A CPU Vulkan device (lavapipe) runs these shaders at well under 1 GFLOP/s (NOTES.md), so a
 * case over this many GFLOP (the op's own flop model) is a not_supported row there instead
 * of minutes per sample. KB_VK_CPU_MAX_GFLOP overrides it; GPUs have no limit. */
#define CPU_DEVICE_MAX_GFLOP 1.0

typedef struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;  /* allocated (rounded up) */
    VkDeviceSize bytes; /* asked for: views must lie inside */
    void *map;          /* host-visible buffers only */
    unsigned generation; /* device generation it belongs to */
    struct vk_buffer *prev, *next;
} vk_buffer;

typedef struct {
    const vk_module *module;
    uint32_t spec[VK_MAX_SPEC];
    int nspec;
    VkPipeline pipe;
} pipe_entry;

typedef struct {
    const vk_module *module;
    VkShaderModule shader;
} shader_entry;

typedef struct {
    VkCommandBuffer cmd;
    VkFence fence;
    int busy; /* submitted, not yet waited for */
} submit_slot;

/* A byte range a dispatch touches, for the barriers between dispatches of a state. */
typedef struct {
    VkBuffer buf;
    VkDeviceSize offset, size;
    int written;
} vk_access;

typedef struct {
    VkPipeline pipe;
    VkDescriptorSet set;
    uint32_t push[VK_PUSH_WORDS];
    uint32_t gx, gy;
    vk_access acc[VK_NBIND];
    int nacc;
} vk_cmd;

/* What prepare returns (a case bound to its views: its dispatches, descriptor sets and
 * scratch buffers), and what record returns (a secondary command buffer replaying a
 * sequence of them). */
typedef struct vk_state {
    unsigned generation;
    int is_seq;
    /* a prepared case */
    vk_cmd *cmds;
    int ncmd;
    VkDescriptorPool dpool;
    vk_buffer **scratch;
    int nscratch;
    int seq_refs; /* recorded sequences that replay this state */
    int released; /* release() came while seq_refs > 0: freed with the last such sequence */
    /* a recorded sequence */
    VkCommandBuffer secondary;
    struct vk_state **members; /* the prepared cases it replays, in order */
    int nmembers;
    struct vk_state *prev, *next; /* every state of this device, for teardown */
} vk_state;

static struct {
    int ready;
    unsigned generation;
    int vk_device_opt; /* the probe's --vk-device, reused by reset() */
    int index;         /* the physical device picked */
    VkInstance inst;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceSubgroupProperties subgroup; /* size, stages, operations (Vulkan 1.1) */
    VkPhysicalDeviceMemoryProperties memprops;
    VkDeviceSize max_alloc;
    VkDeviceSize heap_bytes; /* the largest device-local heap */
    int have[FEAT_COUNT];
    int have_budget; /* VK_EXT_memory_budget */
    uint64_t ts_mask;
    double ts_period_ns;
    VkCommandPool cmdpool;
    VkCommandBuffer xfer; /* uploads, downloads: submitted and waited for */
    VkFence xfer_fence;
    VkQueryPool qpool; /* run_timed's two timestamps */
    submit_slot slots[MAX_INFLIGHT];
    int nslots;
    vk_buffer *staging;
    vk_buffer *flush;
    vk_buffer *dummy;
    uint32_t flush_value;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    shader_entry *shaders;
    int nshaders;
    pipe_entry *pipes;
    int npipes, cap_pipes;
    vk_buffer *live; /* every buffer of this device, for teardown */
    vk_state *live_states; /* every state of this device, for teardown */
    int last_barriers; /* barriers recorded by the last enqueue / run_timed / record */
} g;

static kb_device_info info; /* measured once per run, kept across reset() */

static const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
    default: return "VkResult (unnamed)";
    }
}

/* A failed Vulkan call: the call and the result into msg. A lost device is sticky. */
static int vk_fail(char *msg, VkResult r, const char *call) {
    int code = (r == VK_ERROR_DEVICE_LOST) ? KB_ERROR_FATAL : KB_ERROR;
    return kb_fail(msg, code, "%s: %s (%d)", call, vk_result_name(r), (int)r);
}

#define VK_CHECK(call)                                                                                   \
    do {                                                                                                 \
        VkResult vkr_ = (call);                                                                          \
        if (vkr_ != VK_SUCCESS) return vk_fail(msg, vkr_, #call);                                        \
    } while (0)

static int not_ready(char *msg) { return kb_fail(msg, KB_ERROR, "vulkan backend not initialised (probe failed)"); }

/* ---- instance, device ------------------------------------------------------------------ */
static int create_instance(VkInstance *inst, char *msg) {
    uint32_t loader_version = VK_API_VERSION_1_0;
    PFN_vkEnumerateInstanceVersion enum_version =
        (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    if (enum_version && enum_version(&loader_version) != VK_SUCCESS) loader_version = VK_API_VERSION_1_0;
    if (loader_version < VK_API_VERSION_1_2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "Vulkan loader is %u.%u, 1.2 needed", VK_API_VERSION_MAJOR(loader_version),
                       VK_API_VERSION_MINOR(loader_version));
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "kbench",
                             .applicationVersion = 1,
                             .pEngineName = "kbench",
                             .engineVersion = 1,
                             .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ci, NULL, inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        return kb_fail(msg, KB_NOT_SUPPORTED, "vkCreateInstance: %s (no Vulkan 1.2 driver/ICD)", vk_result_name(r));
    if (r != VK_SUCCESS) return vk_fail(msg, r, "vkCreateInstance");
    return KB_OK;
}

/* One VkInstance a process, made at first use and never destroyed: a context (a device,
 * init_device .. release) is what --repeat and the forward's fresh contexts renew; the
 * instance is only the loader's view of the drivers. Each new instance loads the driver
 * again and each destroyed one unloads it, and Mesa 22.3's lavapipe leaves 128 bytes behind
 * per re-created instance in a library already unloaded when LeakSanitizer reports it (so
 * no suppression can name it). */
static VkInstance process_inst;
static int process_instance(VkInstance *inst, char *msg) {
    if (!process_inst) {
        int rc = create_instance(&process_inst, msg);
        if (rc != KB_OK) return rc;
    }
    *inst = process_inst;
    return KB_OK;
}

static const char *device_type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

/* The compute queue family to use: compute + timestamps preferred, compute alone otherwise. */
static int pick_queue_family(VkPhysicalDevice pd, uint32_t *fam, uint32_t *ts_bits) {
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qp[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qp);
    int best = -1;
    for (uint32_t i = 0; i < nq; i++) {
        if (!(qp[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (best < 0 || (qp[best].timestampValidBits == 0 && qp[i].timestampValidBits > 0)) best = (int)i;
    }
    if (best < 0) return -1;
    *fam = (uint32_t)best;
    *ts_bits = qp[best].timestampValidBits;
    return 0;
}

static int feature_disabled_by_env(const char *name) {
    const char *s = getenv("KB_VK_DISABLE_FEATURES");
    if (!s) return 0;
    size_t len = strlen(name);
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n == len && strncmp(s, name, len) == 0) return 1;
        if (!end) break;
        s = end + 1;
    }
    return 0;
}

static int device_has_extension(VkPhysicalDevice pd, const char *name, int *found, char *msg) {
    *found = 0;
    uint32_t n = 0;
    VK_CHECK(vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL));
    VkExtensionProperties *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return kb_fail(msg, KB_ERROR, "out of host memory");
    VkResult r = vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e);
    for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < n && !*found; i++)
        *found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return vk_fail(msg, r, "vkEnumerateDeviceExtensionProperties");
    return KB_OK;
}

static void destroy_buffer(vk_buffer *b);
static void teardown(void);
static int wait_all(char *msg);

static int memory_type(uint32_t type_bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer) {
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < g.memprops.memoryTypeCount; i++) {
            VkMemoryPropertyFlags f = g.memprops.memoryTypes[i].propertyFlags;
            if (!(type_bits & (1u << i)) || (f & want) != want) continue;
            if (pass == 0 && (f & prefer) != prefer) continue;
            return (int)i;
        }
    return -1;
}

static int create_buffer(VkDeviceSize bytes, int host_visible, vk_buffer **out, char *msg) {
    VkDeviceSize size = bytes ? bytes : 16;
    size = (size + 15) & ~(VkDeviceSize)15;
    if (size < bytes || size > g.max_alloc)
        return kb_fail(msg, KB_NOT_SUPPORTED, "buffer of %llu bytes exceeds maxMemoryAllocationSize %llu",
                       (unsigned long long)bytes, (unsigned long long)g.max_alloc);
    vk_buffer *b = calloc(1, sizeof *b);
    if (!b) return kb_fail(msg, KB_ERROR, "out of host memory");
    b->size = size;
    b->bytes = bytes;
    b->generation = g.generation;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(g.dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        free(b);
        return vk_fail(msg, r, "vkCreateBuffer");
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(g.dev, b->buf, &req);
    /* Device buffers: device-local. Staging: host-visible + coherent, cached if offered
     * (downloads read it back on the host). */
    const int type = host_visible ? memory_type(req.memoryTypeBits,
                                                VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                                VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                                  : memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0) {
        vkDestroyBuffer(g.dev, b->buf, NULL);
        free(b);
        return kb_fail(msg, KB_ERROR, "no %s memory type for a buffer", host_visible ? "host-visible" : "device-local");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    const char *call = "vkAllocateMemory";
    r = vkAllocateMemory(g.dev, &ai, NULL, &b->mem);
    if (r == VK_SUCCESS) {
        call = "vkBindBufferMemory";
        r = vkBindBufferMemory(g.dev, b->buf, b->mem, 0);
    }
    if (r == VK_SUCCESS && host_visible) {
        call = "vkMapMemory";
        r = vkMapMemory(g.dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
    }
    if (r != VK_SUCCESS) {
        if (b->mem) vkFreeMemory(g.dev, b->mem, NULL);
        vkDestroyBuffer(g.dev, b->buf, NULL);
        free(b);
        return vk_fail(msg, r, call);
    }
    b->next = g.live;
    if (g.live) g.live->prev = b;
    g.live = b;
    *out = b;
    return KB_OK;
}

static void destroy_buffer(vk_buffer *b) {
    if (!b) return;
    if (b->generation == g.generation && g.dev) {
        if (b->map) vkUnmapMemory(g.dev, b->mem);
        vkDestroyBuffer(g.dev, b->buf, NULL);
        vkFreeMemory(g.dev, b->mem, NULL);
        if (b->prev) b->prev->next = b->next;
        else g.live = b->next;
        if (b->next) b->next->prev = b->prev;
    }
    free(b);
}

/* Where each FEAT_* flag lives in a features chain (queried or to enable). */
static void feature_slots(VkPhysicalDeviceFeatures2 *f2, VkPhysicalDeviceVulkan11Features *f11,
                          VkPhysicalDeviceVulkan12Features *f12, VkBool32 *slot[FEAT_COUNT]) {
    slot[FEAT_SHADER_FLOAT16] = &f12->shaderFloat16;
    slot[FEAT_SHADER_FLOAT64] = &f2->features.shaderFloat64;
    slot[FEAT_SHADER_INT64] = &f2->features.shaderInt64;
    slot[FEAT_SHADER_INT16] = &f2->features.shaderInt16;
    slot[FEAT_SHADER_INT8] = &f12->shaderInt8;
    slot[FEAT_SB16] = &f11->storageBuffer16BitAccess;
    slot[FEAT_UASB16] = &f11->uniformAndStorageBuffer16BitAccess;
    slot[FEAT_PC16] = &f11->storagePushConstant16;
    slot[FEAT_SB8] = &f12->storageBuffer8BitAccess;
    slot[FEAT_UASB8] = &f12->uniformAndStorageBuffer8BitAccess;
    slot[FEAT_PC8] = &f12->storagePushConstant8;
    for (int i = FEAT_FIRST_SUBGROUP; i < FEAT_COUNT; i++) slot[i] = NULL; /* properties, nothing to enable */
}

static int init_device(int vk_device, char *msg) {
    memset(&g.have, 0, sizeof g.have);
    int rc = process_instance(&g.inst, msg);
    if (rc != KB_OK) return rc;

    uint32_t ndev = 0;
    VK_CHECK(vkEnumeratePhysicalDevices(g.inst, &ndev, NULL));
    if (ndev == 0) return kb_fail(msg, KB_NOT_SUPPORTED, "vkEnumeratePhysicalDevices: no Vulkan device");
    VkPhysicalDevice devs[16];
    if (ndev > 16) ndev = 16;
    VkResult er = vkEnumeratePhysicalDevices(g.inst, &ndev, devs);
    if (er != VK_SUCCESS && er != VK_INCOMPLETE) return vk_fail(msg, er, "vkEnumeratePhysicalDevices");

    int pick = -1;
    if (vk_device >= 0) {
        if ((uint32_t)vk_device >= ndev)
            return kb_fail(msg, KB_NOT_SUPPORTED, "--vk-device %d: only %u Vulkan device(s)", vk_device, ndev);
        pick = vk_device;
    } else {
        for (uint32_t i = 0; i < ndev && pick < 0; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(devs[i], &p);
            if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) pick = (int)i;
        }
        if (pick < 0) pick = 0;
    }
    g.index = pick;
    g.phys = devs[pick];
    vkGetPhysicalDeviceProperties(g.phys, &g.props);
    vkGetPhysicalDeviceMemoryProperties(g.phys, &g.memprops);
    for (uint32_t i = 0; i < g.memprops.memoryHeapCount; i++)
        if ((g.memprops.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && g.memprops.memoryHeaps[i].size > g.heap_bytes)
            g.heap_bytes = g.memprops.memoryHeaps[i].size;
    if (g.props.apiVersion < VK_API_VERSION_1_2)
        return kb_fail(msg, KB_NOT_SUPPORTED, "device %d (%s) supports Vulkan %u.%u, 1.2 needed", pick,
                       g.props.deviceName, VK_API_VERSION_MAJOR(g.props.apiVersion),
                       VK_API_VERSION_MINOR(g.props.apiVersion));

    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    g.subgroup = (VkPhysicalDeviceSubgroupProperties){.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                                      .pNext = &m3};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &g.subgroup};
    vkGetPhysicalDeviceProperties2(g.phys, &p2);
    g.subgroup.pNext = NULL;
    g.max_alloc = m3.maxMemoryAllocationSize;
    rc = device_has_extension(g.phys, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME, &g.have_budget, msg);
    if (rc != KB_OK) return rc;

    uint32_t ts_bits = 0;
    if (pick_queue_family(g.phys, &g.qfam, &ts_bits) != 0)
        return kb_fail(msg, KB_NOT_SUPPORTED, "device %s has no compute queue", g.props.deviceName);
    g.ts_mask = ts_bits >= 64 ? ~0ull : ((1ull << ts_bits) - 1ull);
    if (ts_bits == 0) g.ts_mask = 0;
    g.ts_period_ns = g.props.limits.timestampPeriod;

    /* Query the optional features, enable the ones present (minus any the test env hides). */
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(g.phys, &f2);
    VkBool32 *member[FEAT_COUNT];
    feature_slots(&f2, &f11, &f12, member);
    /* Enable exactly the features we map (and have); leave everything else off. */
    VkPhysicalDeviceVulkan12Features e12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features e11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &e12};
    VkPhysicalDeviceFeatures2 e2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11};
    VkBool32 *enable[FEAT_COUNT];
    feature_slots(&e2, &e11, &e12, enable);
    const int sg_compute = (g.subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
    for (int i = 0; i < FEAT_COUNT; i++) {
        const int present = member[i] ? *member[i] != VK_FALSE
                                      : sg_compute && (g.subgroup.supportedOperations &
                                                       (1u << (feature_caps[i].capability - 61))) != 0;
        g.have[i] = present && !feature_disabled_by_env(feature_caps[i].feature);
        if (enable[i]) *enable[i] = g.have[i] ? VK_TRUE : VK_FALSE;
    }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = g.qfam,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    const char *ext[1] = {VK_EXT_MEMORY_BUDGET_EXTENSION_NAME};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = &e2,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = g.have_budget ? 1u : 0u,
                              .ppEnabledExtensionNames = ext};
    VK_CHECK(vkCreateDevice(g.phys, &dci, NULL, &g.dev));
    vkGetDeviceQueue(g.dev, g.qfam, 0, &g.queue);

    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = g.qfam};
    VK_CHECK(vkCreateCommandPool(g.dev, &cpi, NULL, &g.cmdpool));
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = g.cmdpool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    VK_CHECK(vkAllocateCommandBuffers(g.dev, &cai, &g.xfer));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(g.dev, &fci, NULL, &g.xfer_fence));
    if (g.ts_mask) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = 2};
        VK_CHECK(vkCreateQueryPool(g.dev, &qi, NULL, &g.qpool));
    }

    /* One descriptor-set layout and pipeline layout for every shader: VK_NBIND storage
     * buffers and a VK_PUSH_WORDS push-constant block (128 bytes is the guaranteed minimum). */
    VkDescriptorSetLayoutBinding binds[VK_NBIND];
    for (int i = 0; i < VK_NBIND; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                                  .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                  .descriptorCount = 1,
                                                  .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dli = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .bindingCount = VK_NBIND,
                                           .pBindings = binds};
    VK_CHECK(vkCreateDescriptorSetLayout(g.dev, &dli, NULL, &g.dsl));
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 4 * VK_PUSH_WORDS};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &g.dsl,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pcr};
    VK_CHECK(vkCreatePipelineLayout(g.dev, &pli, NULL, &g.layout));

    rc = create_buffer(STAGING_BYTES, 1, &g.staging, msg);
    if (rc != KB_OK) return rc;
    rc = create_buffer(256, 0, &g.dummy, msg);
    if (rc != KB_OK) return rc;
    g.ready = 1;
    return KB_OK;
}

static void teardown(void) {
    if (g.dev) {
        (void)vkDeviceWaitIdle(g.dev); /* best effort, nothing to report to: a lost device returns at once */
        /* States still held by the caller die with the device: their descriptor pools go
         * here (their command buffers with the pool below), their host memory at release(). */
        while (g.live_states) {
            vk_state *s = g.live_states;
            g.live_states = s->next;
            if (s->dpool) vkDestroyDescriptorPool(g.dev, s->dpool, NULL);
            s->dpool = VK_NULL_HANDLE;
            s->secondary = VK_NULL_HANDLE;
            s->prev = s->next = NULL;
            s->generation = ~0u;
        }
        for (int i = 0; i < g.npipes; i++) vkDestroyPipeline(g.dev, g.pipes[i].pipe, NULL);
        for (int i = 0; i < g.nshaders; i++) vkDestroyShaderModule(g.dev, g.shaders[i].shader, NULL);
        /* Buffers still held by the harness die with the device; their host structs are
         * freed by free() later (the generation check skips the Vulkan calls). */
        while (g.live) {
            vk_buffer *b = g.live;
            g.live = b->next;
            if (b->map) vkUnmapMemory(g.dev, b->mem);
            vkDestroyBuffer(g.dev, b->buf, NULL);
            vkFreeMemory(g.dev, b->mem, NULL);
            b->generation = ~0u; /* belongs to no device now */
            if (b == g.staging || b == g.flush || b == g.dummy) free(b);
        }
        for (int i = 0; i < g.nslots; i++)
            if (g.slots[i].fence) vkDestroyFence(g.dev, g.slots[i].fence, NULL);
        if (g.qpool) vkDestroyQueryPool(g.dev, g.qpool, NULL);
        if (g.layout) vkDestroyPipelineLayout(g.dev, g.layout, NULL);
        if (g.dsl) vkDestroyDescriptorSetLayout(g.dev, g.dsl, NULL);
        if (g.xfer_fence) vkDestroyFence(g.dev, g.xfer_fence, NULL);
        if (g.cmdpool) vkDestroyCommandPool(g.dev, g.cmdpool, NULL); /* frees every command buffer */
        vkDestroyDevice(g.dev, NULL);
    }
    /* g.inst is the process's instance (process_instance): it stays */
    free(g.pipes);
    free(g.shaders);
    unsigned gen = g.generation;
    int opt = g.vk_device_opt;
    memset(&g, 0, sizeof g);
    g.generation = gen + 1;
    g.vk_device_opt = opt;
}

/* ---- submission ------------------------------------------------------------------------ */
static int wait_fences(uint32_t n, const VkFence *fences, char *msg) {
    VkResult r = vkWaitForFences(g.dev, n, fences, VK_TRUE, FENCE_TIMEOUT_NS);
    if (r == VK_TIMEOUT)
        return kb_fail(msg, KB_ERROR_FATAL, "vkWaitForFences: VK_TIMEOUT after %llu s (device hung?)",
                       FENCE_TIMEOUT_NS / 1000000000ull);
    if (r != VK_SUCCESS) return vk_fail(msg, r, "vkWaitForFences");
    return KB_OK;
}

static int submit(VkCommandBuffer cb, VkFence fence, char *msg) {
    VK_CHECK(vkResetFences(g.dev, 1, &fence));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    VK_CHECK(vkQueueSubmit(g.queue, 1, &si, fence));
    return KB_OK;
}

/* Block until every enqueued command buffer has finished. */
static int wait_all(char *msg) {
    VkFence fences[MAX_INFLIGHT];
    uint32_t n = 0;
    for (int i = 0; i < g.nslots; i++)
        if (g.slots[i].busy) fences[n++] = g.slots[i].fence;
    if (n == 0) return KB_OK;
    int rc = wait_fences(n, fences, msg);
    if (rc != KB_OK) return rc;
    for (int i = 0; i < g.nslots; i++) g.slots[i].busy = 0;
    return KB_OK;
}

static int any_busy(void) {
    for (int i = 0; i < g.nslots; i++)
        if (g.slots[i].busy) return 1;
    return 0;
}

/* A free command buffer + fence for one enqueue; with MAX_INFLIGHT pending, waits for them. */
static int acquire_slot(submit_slot **out, char *msg) {
    for (int i = 0; i < g.nslots; i++)
        if (!g.slots[i].busy) {
            *out = &g.slots[i];
            return KB_OK;
        }
    if (g.nslots == MAX_INFLIGHT) {
        int rc = wait_all(msg);
        if (rc != KB_OK) return rc;
        *out = &g.slots[0];
        return KB_OK;
    }
    submit_slot *s = &g.slots[g.nslots];
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = g.cmdpool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    VK_CHECK(vkAllocateCommandBuffers(g.dev, &cai, &s->cmd));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkResult r = vkCreateFence(g.dev, &fci, NULL, &s->fence);
    if (r != VK_SUCCESS) {
        vkFreeCommandBuffers(g.dev, g.cmdpool, 1, &s->cmd);
        s->cmd = VK_NULL_HANDLE;
        return vk_fail(msg, r, "vkCreateFence");
    }
    g.nslots++;
    *out = s;
    return KB_OK;
}

static int begin_primary(VkCommandBuffer cb, char *msg) {
    VK_CHECK(vkResetCommandBuffer(cb, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(cb, &bi));
    return KB_OK;
}

/* Whatever earlier commands and submissions wrote (uploads, kernels, the cache flush) is
 * visible to what follows, and they have finished before it starts. */
static void full_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL,
                         0, NULL);
}

/* Between dependent dispatches: the earlier one's shader writes are visible to the
 * later one's reads and writes, and it has finished (write-after-read included). */
static void compute_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                         NULL, 0, NULL);
    g.last_barriers++;
}

/* One vkCmdCopyBuffer on the transfer command buffer, waited for: the copy is visible
 * to the host (downloads) and to later device work (uploads, device copies). */
static int buffer_copy(VkBuffer src, VkDeviceSize src_offset, VkBuffer dst, VkDeviceSize dst_offset,
                       VkDeviceSize bytes, char *msg) {
    int rc = begin_primary(g.xfer, msg);
    if (rc != KB_OK) return rc;
    full_barrier(g.xfer);
    VkBufferCopy region = {.srcOffset = src_offset, .dstOffset = dst_offset, .size = bytes};
    vkCmdCopyBuffer(g.xfer, src, dst, 1, &region);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask =
                              VK_ACCESS_HOST_READ_BIT | VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT};
    vkCmdPipelineBarrier(g.xfer, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VK_CHECK(vkEndCommandBuffer(g.xfer));
    rc = submit(g.xfer, g.xfer_fence, msg);
    return rc == KB_OK ? wait_fences(1, &g.xfer_fence, msg) : rc;
}

/* Copy between a device buffer and the staging buffer; to_device picks the direction. */
static int staged_copy(vk_buffer *dev, VkDeviceSize offset, VkDeviceSize bytes, int to_device, char *msg) {
    return to_device ? buffer_copy(g.staging->buf, 0, dev->buf, offset, bytes, msg)
                     : buffer_copy(dev->buf, offset, g.staging->buf, 0, bytes, msg);
}

/* ---- shader modules and pipelines ------------------------------------------------------- */
/* The features a module's OpCapability list needs that the device does not have, named into
 * msg. SPIR-V: 5-word header, then instructions (word count << 16 | opcode); the
 * capabilities come first, before OpMemoryModel (opcode 14). OpCapability is opcode 17. */
static int check_module_features(const vk_module *m, char *msg) {
    const uint32_t *w = m->words;
    size_t nw = m->bytes / 4;
    char missing[160] = "";
    for (size_t i = 5; i < nw;) {
        uint32_t count = w[i] >> 16, opcode = w[i] & 0xffffu;
        if (count == 0 || opcode == 14) break;
        if (opcode == 17 && count >= 2) {
            for (int f = 0; f < FEAT_COUNT; f++) {
                if (feature_caps[f].capability == w[i + 1] && !g.have[f]) {
                    size_t len = strlen(missing);
                    snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "", feature_caps[f].feature);
                }
            }
        }
        i += count;
    }
    if (missing[0]) return kb_fail(msg, KB_NOT_SUPPORTED, "device lacks %s (needed by %s)", missing, m->name);
    return KB_OK;
}

static int get_shader(const vk_module *m, VkShaderModule *out, char *msg) {
    for (int i = 0; i < g.nshaders; i++)
        if (g.shaders[i].module == m) {
            *out = g.shaders[i].shader;
            return KB_OK;
        }
    shader_entry *grown = realloc(g.shaders, (size_t)(g.nshaders + 1) * sizeof *grown);
    if (!grown) return kb_fail(msg, KB_ERROR, "out of host memory");
    g.shaders = grown;
    VkShaderModuleCreateInfo si = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = m->bytes,
                                   .pCode = m->words};
    VK_CHECK(vkCreateShaderModule(g.dev, &si, NULL, out));
    g.shaders[g.nshaders++] = (shader_entry){m, *out};
    return KB_OK;
}

static int get_pipeline(const vk_dispatch *d, VkPipeline *out, char *msg) {
    if (d->nspec < 0 || d->nspec > VK_MAX_SPEC) return kb_fail(msg, KB_ERROR, "%d specialization constants", d->nspec);
    for (int i = 0; i < g.npipes; i++) {
        const pipe_entry *e = &g.pipes[i];
        if (e->module == d->module && e->nspec == d->nspec &&
            memcmp(e->spec, d->spec, sizeof(uint32_t) * (size_t)d->nspec) == 0) {
            *out = e->pipe;
            return KB_OK;
        }
    }
    int rc = check_module_features(d->module, msg);
    if (rc != KB_OK) return rc;
    VkShaderModule shader;
    if ((rc = get_shader(d->module, &shader, msg)) != KB_OK) return rc;
    if (g.npipes == g.cap_pipes) {
        const int cap = g.cap_pipes ? 2 * g.cap_pipes : 32;
        pipe_entry *grown = realloc(g.pipes, (size_t)cap * sizeof *grown);
        if (!grown) return kb_fail(msg, KB_ERROR, "out of host memory");
        g.pipes = grown;
        g.cap_pipes = cap;
    }
    VkSpecializationMapEntry map[VK_MAX_SPEC];
    for (int i = 0; i < d->nspec; i++)
        map[i] = (VkSpecializationMapEntry){.constantID = (uint32_t)i, .offset = (uint32_t)(4 * i), .size = 4};
    VkSpecializationInfo sinfo = {.mapEntryCount = (uint32_t)d->nspec,
                                  .pMapEntries = map,
                                  .dataSize = 4 * (size_t)d->nspec,
                                  .pData = d->spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = shader,
                  .pName = "main",
                  .pSpecializationInfo = d->nspec ? &sinfo : NULL},
        .layout = g.layout};
    VkPipeline p;
    VK_CHECK(vkCreateComputePipelines(g.dev, VK_NULL_HANDLE, 1, &ci, NULL, &p));
    pipe_entry *e = &g.pipes[g.npipes++];
    memset(e, 0, sizeof *e);
    e->module = d->module;
    e->nspec = d->nspec;
    memcpy(e->spec, d->spec, sizeof(uint32_t) * (size_t)d->nspec);
    e->pipe = p;
    *out = p;
    return KB_OK;
}

/* ---- states ------------------------------------------------------------------------------ */

static int current(const vk_state *s) { return s && s->generation == g.generation && g.ready; }

/* A new state of this device, on the list teardown walks. */
static vk_state *new_state(void) {
    vk_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->generation = g.generation;
    s->next = g.live_states;
    if (g.live_states) g.live_states->prev = s;
    g.live_states = s;
    return s;
}

static void destroy_state(vk_state *s) {
    if (current(s)) {
        if (s->dpool) vkDestroyDescriptorPool(g.dev, s->dpool, NULL);
        if (s->secondary) vkFreeCommandBuffers(g.dev, g.cmdpool, 1, &s->secondary);
        if (s->prev) s->prev->next = s->next;
        else g.live_states = s->next;
        if (s->next) s->next->prev = s->prev;
    }
    for (int i = 0; i < s->nscratch; i++) destroy_buffer(s->scratch[i]);
    for (int i = 0; i < s->nmembers; i++) {
        vk_state *m = s->members[i];
        if (--m->seq_refs == 0 && m->released) destroy_state(m);
    }
    free(s->scratch);
    free(s->cmds);
    free(s->members);
    free(s);
}

static void vk_release(void *state) {
    vk_state *s = state;
    if (!s) return;
    if (s->seq_refs > 0) { /* a recorded sequence still replays it */
        s->released = 1;
        return;
    }
    char msg[KB_MSG];
    if (current(s) && any_busy()) wait_all(msg); /* queued work may still use it */
    destroy_state(s);
}

/* Do two byte ranges of the same buffer meet, with at least one of them written? */
static int hazard(const vk_access *a, const vk_access *b) {
    return a->buf == b->buf && (a->written || b->written) && a->offset < b->offset + b->size &&
           b->offset < a->offset + a->size;
}

/* The dispatches of one prepared case, with a barrier before each that depends on an
 * earlier one since the last barrier. */
static void record_case(VkCommandBuffer cb, const vk_state *s) {
    int since = 0; /* first dispatch after the last barrier */
    for (int i = 0; i < s->ncmd; i++) {
        const vk_cmd *c = &s->cmds[i];
        int dep = 0;
        for (int j = since; j < i && !dep; j++)
            for (int a = 0; a < c->nacc && !dep; a++)
                for (int b = 0; b < s->cmds[j].nacc && !dep; b++) dep = hazard(&c->acc[a], &s->cmds[j].acc[b]);
        if (dep) {
            compute_barrier(cb);
            since = i;
        }
        vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipe);
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, g.layout, 0, 1, &c->set, 0, NULL);
        vkCmdPushConstants(cb, g.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4 * VK_PUSH_WORDS, c->push);
        vkCmdDispatch(cb, c->gx, c->gy, 1);
    }
}

/* states[0..n) in order into cb: prepared cases inline, recorded sequences executed (cb is
 * a primary), a barrier between consecutive states. */
static void record_states(VkCommandBuffer cb, void *const *states, int n) {
    for (int i = 0; i < n; i++) {
        const vk_state *s = states[i];
        if (i > 0) compute_barrier(cb);
        if (s->is_seq) vkCmdExecuteCommands(cb, 1, &s->secondary);
        else record_case(cb, s);
    }
}

static int check_states(void *const *states, int n, char *msg) {
    if (!g.ready) return not_ready(msg);
    if (n < 1 || !states) return kb_fail(msg, KB_ERROR, "no states to run");
    for (int i = 0; i < n; i++) {
        const vk_state *s = states[i];
        if (!s) return kb_fail(msg, KB_ERROR, "state %d is NULL", i);
        if (!current(s)) return kb_fail(msg, KB_ERROR, "state %d is from before a reset", i);
        if (s->released) return kb_fail(msg, KB_ERROR, "state %d was released", i);
    }
    return KB_OK;
}

static vk_buffer *buffer_of(kb_buf h) { return (vk_buffer *)(uintptr_t)h; }

/* A view inside a live buffer of this device. */
static int check_view(kb_view v, char *msg) {
    const vk_buffer *b = buffer_of(v.buf);
    if (!b) return kb_fail(msg, KB_ERROR, "view of no buffer (handle 0)");
    if (b->generation != g.generation || !g.ready) return kb_fail(msg, KB_ERROR, "device buffer from before a reset");
    if (v.offset > b->bytes || v.bytes > b->bytes - v.offset)
        return kb_fail(msg, KB_ERROR, "view [%llu, +%llu) outside its %llu-byte buffer", (unsigned long long)v.offset,
                       (unsigned long long)v.bytes, (unsigned long long)b->bytes);
    return KB_OK;
}

/* Build a state from a finished plan: pipelines, scratch buffers, one descriptor set per
 * dispatch (views bound at their offsets), the byte ranges each dispatch touches. */
static int build_state(const vk_plan *p, vk_state **out, char *msg) {
    const int nargs = p->n_in + p->n_out;
    vk_state *s = new_state();
    if (!s) return kb_fail(msg, KB_ERROR, "out of host memory");
    s->cmds = calloc((size_t)(p->ndisp ? p->ndisp : 1), sizeof *s->cmds);
    s->scratch = calloc((size_t)(p->nscratch ? p->nscratch : 1), sizeof *s->scratch);
    if (!s->cmds || !s->scratch) {
        destroy_state(s);
        return kb_fail(msg, KB_ERROR, "out of host memory");
    }
    s->ncmd = p->ndisp;
    int rc = KB_OK;
    for (int i = 0; i < p->ndisp && rc == KB_OK; i++) rc = get_pipeline(&p->d[i], &s->cmds[i].pipe, msg);
    for (int i = 0; i < p->nscratch && rc == KB_OK; i++) {
        rc = create_buffer(p->scratch[i].bytes, 0, &s->scratch[i], msg);
        if (rc == KB_OK) s->nscratch++;
        if (rc == KB_OK && p->scratch[i].init) {
            for (VkDeviceSize off = 0; off < p->scratch[i].bytes && rc == KB_OK; off += STAGING_BYTES) {
                VkDeviceSize len = p->scratch[i].bytes - off < STAGING_BYTES ? p->scratch[i].bytes - off : STAGING_BYTES;
                memcpy(g.staging->map, (const char *)p->scratch[i].init + off, len);
                rc = staged_copy(s->scratch[i], off, len, 1, msg);
            }
        }
    }
    if (rc != KB_OK) {
        destroy_state(s);
        return rc;
    }
    if (p->ndisp > 0) {
        VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = (uint32_t)(VK_NBIND * p->ndisp)};
        VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                          .maxSets = (uint32_t)p->ndisp,
                                          .poolSizeCount = 1,
                                          .pPoolSizes = &ps};
        VkResult r = vkCreateDescriptorPool(g.dev, &dpi, NULL, &s->dpool);
        if (r != VK_SUCCESS) {
            destroy_state(s);
            return vk_fail(msg, r, "vkCreateDescriptorPool");
        }
    }
    const VkDeviceSize align = g.props.limits.minStorageBufferOffsetAlignment ? g.props.limits.minStorageBufferOffsetAlignment : 1;
    uint32_t max_x = g.props.limits.maxComputeWorkGroupCount[0];
    if (max_x > 65535) max_x = 65535; /* the shaders' 2D numbering assumes x <= 65535 at most */
    for (int i = 0; i < p->ndisp; i++) {
        const vk_dispatch *d = &p->d[i];
        vk_cmd *c = &s->cmds[i];
        VkDescriptorSetAllocateInfo dai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                           .descriptorPool = s->dpool,
                                           .descriptorSetCount = 1,
                                           .pSetLayouts = &g.dsl};
        VkResult r = vkAllocateDescriptorSets(g.dev, &dai, &c->set);
        if (r != VK_SUCCESS) {
            destroy_state(s);
            return vk_fail(msg, r, "vkAllocateDescriptorSets");
        }
        VkDescriptorBufferInfo bi[VK_NBIND];
        VkWriteDescriptorSet wr[VK_NBIND];
        for (int b = 0; b < VK_NBIND; b++) {
            const vk_binding *bd = &d->bind[b];
            bi[b] = (VkDescriptorBufferInfo){.buffer = g.dummy->buf, .offset = 0, .range = VK_WHOLE_SIZE};
            if (bd->kind == VK_BIND_ARG) {
                if (bd->index < 0 || bd->index >= nargs) {
                    destroy_state(s);
                    return kb_fail(msg, KB_ERROR, "the plan binds argument %d, %d given", bd->index, nargs);
                }
                const kb_view v = p->args[bd->index].view;
                if (v.offset % align) {
                    destroy_state(s);
                    return kb_fail(msg, KB_NOT_SUPPORTED,
                                   "argument %d's view starts at byte %llu, not a multiple of the device's "
                                   "minStorageBufferOffsetAlignment (%llu)",
                                   bd->index, (unsigned long long)v.offset, (unsigned long long)align);
                }
                if (v.bytes > g.props.limits.maxStorageBufferRange) {
                    destroy_state(s);
                    return kb_fail(msg, KB_NOT_SUPPORTED, "argument %d is %llu bytes > maxStorageBufferRange %u",
                                   bd->index, (unsigned long long)v.bytes, g.props.limits.maxStorageBufferRange);
                }
                if (v.bytes > 0) {
                    bi[b] = (VkDescriptorBufferInfo){.buffer = buffer_of(v.buf)->buf, .offset = v.offset, .range = v.bytes};
                    c->acc[c->nacc++] = (vk_access){bi[b].buffer, v.offset, v.bytes, bd->index >= p->n_in};
                }
            } else if (bd->kind == VK_BIND_SCRATCH) {
                if (bd->index < 0 || bd->index >= s->nscratch) {
                    destroy_state(s);
                    return kb_fail(msg, KB_ERROR, "the plan binds scratch buffer %d, %d made", bd->index, s->nscratch);
                }
                const vk_buffer *sb = s->scratch[bd->index];
                if (sb->size > g.props.limits.maxStorageBufferRange) {
                    destroy_state(s);
                    return kb_fail(msg, KB_NOT_SUPPORTED, "scratch buffer of %llu bytes > maxStorageBufferRange %u",
                                   (unsigned long long)sb->size, g.props.limits.maxStorageBufferRange);
                }
                bi[b] = (VkDescriptorBufferInfo){.buffer = sb->buf, .offset = 0, .range = sb->size};
                c->acc[c->nacc++] = (vk_access){sb->buf, 0, sb->size, 1};
            }
            wr[b] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                           .dstSet = c->set,
                                           .dstBinding = (uint32_t)b,
                                           .descriptorCount = 1,
                                           .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                           .pBufferInfo = &bi[b]};
        }
        vkUpdateDescriptorSets(g.dev, VK_NBIND, wr, 0, NULL);
        memcpy(c->push, d->push, sizeof c->push);
        const uint32_t groups = d->groups ? d->groups : 1;
        c->gx = groups < max_x ? groups : max_x;
        c->gy = (groups + c->gx - 1) / c->gx;
        if (c->gy > g.props.limits.maxComputeWorkGroupCount[1]) {
            destroy_state(s);
            return kb_fail(msg, KB_NOT_SUPPORTED, "%u workgroups exceed the device's %u x %u grid", groups, max_x,
                           g.props.limits.maxComputeWorkGroupCount[1]);
        }
    }
    *out = s;
    return KB_OK;
}

static void plan_free(vk_plan *p) {
    for (int i = 0; i < p->nscratch; i++) free(p->scratch[i].init);
    free(p->scratch);
    free(p->d);
}

/* ---- kb_backend: probe and device facts ------------------------------------------------ */
static int vk_run_timed(void *const *states, int n, int flush, double *seconds, char *msg);

/* Device time of a compute copy (copy.comp) of BW_COPY_BYTES between two device-local
 * scratch buffers, timed as cases are (run_timed), best of 3 after one warm-up: bytes
 * read + written per second. 0 when it cannot be measured. */
static double measure_bandwidth(VkDeviceSize *bytes_out, char *msg) {
    VkDeviceSize bytes = BW_COPY_BYTES;
    if (g.heap_bytes && bytes > g.heap_bytes / 8) bytes = g.heap_bytes / 8;
    if (bytes > g.max_alloc) bytes = g.max_alloc;
    if (bytes > g.props.limits.maxStorageBufferRange) bytes = g.props.limits.maxStorageBufferRange;
    bytes &= ~(VkDeviceSize)4095;
    *bytes_out = bytes;
    if (!g.ts_mask || bytes == 0) return 0;
    vk_plan p = {0};
    vk_state *s = NULL;
    double best = 0;
    const uint64_t words = bytes / 16;
    vk_dispatch *d = vk_plan_dispatch(&p, &mod_copy, (uint32_t)vk_ceil_div((int64_t)words, 256));
    const int src = vk_plan_scratch(&p, bytes, NULL), dst = vk_plan_scratch(&p, bytes, NULL);
    if (d && src >= 0 && dst >= 0) {
        d->push[0] = (uint32_t)words;
        vk_bind_scratch(d, 0, src);
        vk_bind_scratch(d, 1, dst);
        if (build_state(&p, &s, msg) == KB_OK) {
            void *states[1] = {s};
            for (int rep = 0; rep < 4; rep++) {
                double t = 0;
                if (vk_run_timed(states, 1, 0, &t, msg) != KB_OK) break;
                if (rep > 0 && t > 0 && 2.0 * (double)bytes / t > best) best = 2.0 * (double)bytes / t;
            }
            vk_release(s);
        }
    } else {
        snprintf(msg, KB_MSG, "out of host memory");
    }
    plan_free(&p);
    return best;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* An empty one-workgroup dispatch timed as cases are (run_timed): median of 21 after 3
 * warm-ups. 0 when it cannot be measured. */
static double measure_launch_floor(char *msg) {
    if (!g.ts_mask) return 0;
    vk_plan p = {0};
    vk_state *s = NULL;
    double t[24];
    int n = 0;
    if (vk_plan_dispatch(&p, &mod_empty, 1) && build_state(&p, &s, msg) == KB_OK) {
        void *states[1] = {s};
        for (int i = 0; i < 24; i++) {
            double sec = 0;
            if (vk_run_timed(states, 1, 0, &sec, msg) != KB_OK) break;
            if (i >= 3) t[n++] = sec;
        }
        vk_release(s);
    }
    plan_free(&p);
    if (n == 0) return 0;
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return t[n / 2];
}

/* Device memory: the device-local heaps; free from VK_EXT_memory_budget (budget - usage)
 * when the device has it; a CPU device's heap is host memory: what the host has free. */
static void memory_facts(void) {
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {.sType =
                                                            VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                             .pNext = g.have_budget ? &budget : NULL};
    vkGetPhysicalDeviceMemoryProperties2(g.phys, &mp2);
    uint64_t total = 0, free_bytes = 0;
    for (uint32_t i = 0; i < mp2.memoryProperties.memoryHeapCount; i++) {
        const VkMemoryHeap *h = &mp2.memoryProperties.memoryHeaps[i];
        if (!(h->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)) continue;
        total += h->size;
        if (g.have_budget && budget.heapBudget[i] > budget.heapUsage[i])
            free_bytes += budget.heapBudget[i] - budget.heapUsage[i];
    }
    if (!g.have_budget && g.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        free_bytes = kb_host_mem_available();
        if (total && free_bytes > total) free_bytes = total;
    }
    info.mem_bytes = total;
    info.mem_free = free_bytes;
}

static int vk_probe(const kb_options *opt, char *msg) {
    if (g.ready) return KB_OK;
    g.vk_device_opt = opt ? opt->vk_device : -1;
    int rc = init_device(g.vk_device_opt, msg);
    if (rc != KB_OK) {
        char keep[KB_MSG];
        snprintf(keep, sizeof keep, "%s", msg ? msg : "");
        teardown();
        if (msg) snprintf(msg, KB_MSG, "%s", keep);
        return rc == KB_ERROR_FATAL ? KB_ERROR : rc;
    }
    if (info.key[0]) return KB_OK; /* measured once per run */
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &drv};
    vkGetPhysicalDeviceProperties2(g.phys, &p2);
    snprintf(info.key, sizeof info.key, "vulkan:%d", g.index);
    snprintf(info.name, sizeof info.name, "%.200s (%s, Vulkan %u.%u.%u)", g.props.deviceName,
             device_type_name(g.props.deviceType), VK_API_VERSION_MAJOR(g.props.apiVersion),
             VK_API_VERSION_MINOR(g.props.apiVersion), VK_API_VERSION_PATCH(g.props.apiVersion));
    if (drv.driverInfo[0]) snprintf(info.driver, sizeof info.driver, "%.60s %.120s", drv.driverName, drv.driverInfo);
    else snprintf(info.driver, sizeof info.driver, "%.60s 0x%08x", drv.driverName, g.props.driverVersion);
    /* Vulkan exposes no cache size. A CPU device (lavapipe) runs on the host: its
     * last-level cache. A GPU's L2 is unknown here (0: the harness assumes 64 MiB). */
    info.cache_bytes = g.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? kb_host_llc_bytes() : 0;
    info.runs_on_host = g.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    memory_facts();
    char why[KB_MSG] = "";
    VkDeviceSize bw_bytes = 0;
    info.bw = measure_bandwidth(&bw_bytes, why);
    if (info.bw > 0)
        snprintf(info.bw_source, sizeof info.bw_source, "compute copy (copy.comp) of %llu MiB device-local, timed as cases are, best of 3",
                 (unsigned long long)(bw_bytes >> 20));
    else
        snprintf(info.bw_source, sizeof info.bw_source, "not measured: %.80s", g.ts_mask ? why : "no timestamps");
    info.launch_floor_s = measure_launch_floor(why);
    if (info.launch_floor_s > 0)
        snprintf(info.launch_source, sizeof info.launch_source,
                 "empty 1-workgroup dispatch between timestamps, median of 21");
    else
        snprintf(info.launch_source, sizeof info.launch_source, "not measured: %.80s", g.ts_mask ? why : "no timestamps");
    return KB_OK;
}

static const kb_device_info *vk_device(void) { return &info; }

/* No portable way to read a Vulkan device's peak flop rate: unknown (0). */
static double vk_flop_peak(const kb_case *c) {
    (void)c;
    return 0;
}

int kb_vulkan_list_devices(char *buf, size_t n) {
    if (!buf || n == 0) return -1;
    buf[0] = '\0';
    char msg[KB_MSG];
    VkInstance inst;
    if (process_instance(&inst, msg) != KB_OK) {
        snprintf(buf, n, "%s", msg);
        return -1;
    }
    uint32_t ndev = 0;
    VkPhysicalDevice devs[16];
    VkResult r = vkEnumeratePhysicalDevices(inst, &ndev, NULL);
    if (r == VK_SUCCESS) {
        if (ndev > 16) ndev = 16;
        r = vkEnumeratePhysicalDevices(inst, &ndev, devs);
        if (r == VK_INCOMPLETE) r = VK_SUCCESS;
    }
    if (r != VK_SUCCESS) {
        snprintf(buf, n, "vkEnumeratePhysicalDevices: %s", vk_result_name(r));
        return -1;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < ndev; i++) {
        VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &drv};
        vkGetPhysicalDeviceProperties2(devs[i], &p2);
        const VkPhysicalDeviceProperties *p = &p2.properties;
        int w = snprintf(buf + used, n - used, "  [%u] %s  %s  Vulkan %u.%u.%u  %s %s%s\n", i, p->deviceName,
                         device_type_name(p->deviceType), VK_API_VERSION_MAJOR(p->apiVersion),
                         VK_API_VERSION_MINOR(p->apiVersion), VK_API_VERSION_PATCH(p->apiVersion), drv.driverName,
                         drv.driverInfo, (g.ready && devs[i] == g.phys) ? "  (selected)" : "");
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
    return (int)ndev;
}

int kb_vulkan_last_barriers(void) { return g.last_barriers; }

/* ---- buffers ----------------------------------------------------------------------------- */
static int vk_alloc(uint64_t bytes, kb_buf *buf, char *msg) {
    *buf = 0;
    if (!g.ready) return not_ready(msg);
    vk_buffer *b = NULL;
    int rc = create_buffer((VkDeviceSize)bytes, 0, &b, msg);
    if (rc != KB_OK) return rc;
    *buf = (kb_buf)(uintptr_t)b;
    return KB_OK;
}

static void vk_free(kb_buf buf) {
    vk_buffer *b = buffer_of(buf);
    if (!b) return;
    char msg[KB_MSG];
    if (b->generation == g.generation && any_busy()) wait_all(msg); /* queued work may still use it */
    destroy_buffer(b);
}

static int vk_upload(kb_view dst, const void *host, char *msg) {
    int rc = check_view(dst, msg);
    if (rc != KB_OK) return rc;
    for (uint64_t off = 0; off < dst.bytes; off += STAGING_BYTES) {
        const uint64_t len = dst.bytes - off < STAGING_BYTES ? dst.bytes - off : STAGING_BYTES;
        memcpy(g.staging->map, (const char *)host + off, len);
        if ((rc = staged_copy(buffer_of(dst.buf), dst.offset + off, len, 1, msg)) != KB_OK) return rc;
    }
    return KB_OK;
}

static int vk_download(void *host, kb_view src, char *msg) {
    int rc = check_view(src, msg);
    if (rc != KB_OK) return rc;
    for (uint64_t off = 0; off < src.bytes; off += STAGING_BYTES) {
        const uint64_t len = src.bytes - off < STAGING_BYTES ? src.bytes - off : STAGING_BYTES;
        if ((rc = staged_copy(buffer_of(src.buf), src.offset + off, len, 0, msg)) != KB_OK) return rc;
        memcpy((char *)host + off, g.staging->map, len);
    }
    return KB_OK;
}

/* Device to device (the harness's copies of a case's tensors): one vkCmdCopyBuffer. */
static int vk_copy(kb_view dst, kb_view src, char *msg) {
    int rc = check_view(dst, msg);
    if (rc == KB_OK) rc = check_view(src, msg);
    if (rc != KB_OK) return rc;
    if (dst.bytes != src.bytes) return kb_fail(msg, KB_ERROR, "copy: %llu bytes into a view of %llu",
                                               (unsigned long long)src.bytes, (unsigned long long)dst.bytes);
    if (!dst.bytes) return KB_OK;
    return buffer_copy(buffer_of(src.buf)->buf, src.offset, buffer_of(dst.buf)->buf, dst.offset, dst.bytes, msg);
}

/* ---- variants, prepare ------------------------------------------------------------------- */
static const vk_op *op_of(const kb_case *c) { return (unsigned)c->op < KB_OP_COUNT ? vk_ops[c->op] : NULL; }

#define TEST_SHORT_WRITE "test_short_write"

/* The variants as written: the op's, then (test_variants) the test-only ones. */
static int written_variants(const vk_op *op, const kb_case *c, int test_variants, kb_variant *out, int max, char *msg) {
    const int n0 = op->variants(c, out, max, msg);
    if (n0 <= 0 || !test_variants) return n0;
    int n = n0;
    vk_variant_add(out, max, &n, TEST_SHORT_WRITE, "TEST ONLY: %s with the last element of output 0 left unwritten",
                   out[0].name);
    for (int t = 0; op->tests && op->tests[t].name; t++) vk_variant_add(out, max, &n, op->tests[t].name, "%s", op->tests[t].detail);
    for (int i = n0; i < n; i++) out[i].test_only = 1;
    return n;
}

#define VK_MAX_WRITTEN 32

/* Without a device (vulkan is `tunable`: --list-axes lists the points unprobed). */
static int vk_variants(const kb_case *c, const kb_options *opt, kb_variant *out, int max, char *msg) {
    const vk_op *op = op_of(c);
    if (!op || max < 1) return 0;
    const int test = opt && opt->test_variants;
    const kb_tune *tune = opt ? opt->tune : NULL;
    if (!tune) return written_variants(op, c, test, out, max, msg);
    /* --tune: every variant at every point, none as written */
    kb_variant base[VK_MAX_WRITTEN];
    const int n = written_variants(op, c, test, base, VK_MAX_WRITTEN, msg);
    if (n <= 0) return n;
    if ((long)n * tune->n > max)
        return -kb_fail(msg, KB_ERROR, "%d variants x %d --tune points: more than %d rows a case", n, tune->n, max);
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < tune->n; p++) {
            kb_variant *v = &out[k++];
            *v = base[i];
            if (kb_tune_name(base[i].name, &tune->p[p], v->name, sizeof v->name))
                return -kb_fail(msg, KB_ERROR, "the tuned name of %s is too long", base[i].name);
            const char *lack = kb_tune_lacks(&tune->p[p], base[i].tunables);
            if (lack) {
                snprintf(v->detail, sizeof v->detail, "not_supported: %.63s has no tunable %.15s (%s%.60s)",
                         base[i].name,
                         lack, base[i].tunables[0] ? "its tunables: " : "it has none", base[i].tunables);
                continue;
            }
            kb_tune_apply(base[i].tunables, &tune->p[p], v->tunables, sizeof v->tunables);
            snprintf(v->detail, sizeof v->detail, "%.90s; at %.60s (specialization constants)", base[i].detail,
                     v->tunables);
        }
    return k;
}

static int vk_prepare(const kb_case *c, const kb_variant *v, const kb_arg *args, int n_in, int n_out, void **state,
                      char *msg) {
    *state = NULL;
    if (!g.ready) return not_ready(msg);
    const vk_op *op = op_of(c);
    if (!op) return kb_fail(msg, KB_NOT_SUPPORTED, "vulkan: op %d is not implemented", (int)c->op);
    const kb_op *reg = kb_ops[c->op];
    if (n_in != reg->n_in || n_out != reg->n_out || n_in + n_out > KB_MAX_ARGS)
        return kb_fail(msg, KB_ERROR, "%s takes %d inputs and %d outputs, not %d and %d", reg->name, reg->n_in, reg->n_out,
                       n_in, n_out);
    for (int i = 0; i < n_in + n_out; i++) {
        char why[KB_MSG];
        if (check_view(args[i].view, why) != KB_OK) return kb_fail(msg, KB_ERROR, "argument %d: %s", i, why);
        const uint64_t need = kb_dtype_bytes(args[i].type, args[i].count);
        if (need == UINT64_MAX || args[i].view.bytes < need)
            return kb_fail(msg, KB_ERROR, "argument %d: a %llu-byte view for %lld %s values", i,
                           (unsigned long long)args[i].view.bytes, (long long)args[i].count, kb_dtype_name(args[i].type));
    }
    if (g.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        const char *env = getenv("KB_VK_CPU_MAX_GFLOP");
        const double limit = env ? atof(env) : CPU_DEVICE_MAX_GFLOP;
        const double gf = reg->flops(c) * 1e-9;
        if (gf > limit)
            return kb_fail(msg, KB_NOT_SUPPORTED,
                           "%s is a CPU Vulkan device: %.2f GFLOP is over its %.2f GFLOP limit "
                           "(KB_VK_CPU_MAX_GFLOP raises it)",
                           g.props.deviceName, gf, limit);
    }
    /* test_short_write: the op's default variant, told to skip the last element */
    const VkPhysicalDeviceLimits *lim = &g.props.limits;
    vk_plan p = {.c = c,
                 .variant = v->name,
                 .args = args,
                 .n_in = n_in,
                 .n_out = n_out,
                 .subgroup_size = g.subgroup.subgroupSize,
                 .max_shared_bytes = lim->maxComputeSharedMemorySize,
                 .max_invocations = lim->maxComputeWorkGroupInvocations < lim->maxComputeWorkGroupSize[0]
                                        ? lim->maxComputeWorkGroupInvocations
                                        : lim->maxComputeWorkGroupSize[0]};
    const char *sg_env = getenv("KB_VK_SUBGROUP_SIZE");
    if (sg_env) p.subgroup_size = (uint32_t)strtoul(sg_env, NULL, 10);
    /* the variant from its name: a tuned one ("row256[BLOCK=128]") is its variant as
     * written, at the point (which may set only tunables the variant has) */
    char base[sizeof v->name];
    kb_tune_point point;
    char why[KB_MSG] = "";
    if (kb_tune_split(v->name, base, sizeof base, &point, why))
        return kb_fail(msg, KB_ERROR, "vulkan: variant %s", why);
    kb_variant def[VK_MAX_WRITTEN];
    const int ndef = written_variants(op, c, 1, def, VK_MAX_WRITTEN, why);
    if (point.n) { /* its tunables are those of the variant as listed for this case */
        const kb_variant *named = NULL;
        for (int i = 0; i < ndef; i++)
            if (!strcmp(def[i].name, base)) named = &def[i];
        if (!named)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: vulkan lists no variant '%s' for %s %s", v->name, base,
                           reg->name, c->label);
        const char *lack = kb_tune_lacks(&point, named->tunables);
        if (lack)
            return kb_fail(msg, KB_NOT_SUPPORTED, "%s: %s has no tunable %s (%s%s)", v->name, base, lack,
                           named->tunables[0] ? "its tunables: " : "it has none", named->tunables);
    }
    p.variant = v->name;
    p.tune = &point;
    if (point.n) p.variant = base; /* the op's plan knows its variants by their written names */
    if (!strcmp(base, TEST_SHORT_WRITE)) {
        if (ndef < 1)
            return kb_fail(msg, KB_NOT_SUPPORTED, "no variant to break: %s", why[0] ? why : "none for this case");
        p.variant = def[0].name;
        p.short_write = 1;
    }
    int rc = op->plan(&p, msg);
    vk_state *s = NULL;
    if (rc == KB_OK && p.ndisp < 1) rc = kb_fail(msg, KB_ERROR, "%s: the plan has no dispatch", reg->name);
    if (rc == KB_OK) rc = build_state(&p, &s, msg);
    plan_free(&p);
    if (rc != KB_OK) return rc;
    *state = s;
    return KB_OK;
}

/* ---- running ------------------------------------------------------------------------------ */
static int vk_enqueue(void *const *states, int n, char *msg) {
    int rc = check_states(states, n, msg);
    if (rc != KB_OK) return rc;
    submit_slot *sl;
    if ((rc = acquire_slot(&sl, msg)) != KB_OK) return rc;
    if ((rc = begin_primary(sl->cmd, msg)) != KB_OK) return rc;
    g.last_barriers = 0;
    full_barrier(sl->cmd);
    record_states(sl->cmd, states, n);
    VK_CHECK(vkEndCommandBuffer(sl->cmd));
    if ((rc = submit(sl->cmd, sl->fence, msg)) != KB_OK) return rc;
    sl->busy = 1;
    return KB_OK;
}

static int vk_wait(char *msg) {
    if (!g.ready) return not_ready(msg);
    return wait_all(msg);
}

/* Append the prepared cases of states[0..n) to list (a sequence contributes its own). */
static int flatten(void *const *states, int n, vk_state ***list, int *count, int *cap) {
    for (int i = 0; i < n; i++) {
        vk_state *s = states[i];
        if (s->is_seq) {
            if (flatten((void *const *)s->members, s->nmembers, list, count, cap) != 0) return -1;
            continue;
        }
        if (*count == *cap) {
            const int c = *cap ? 2 * *cap : 8;
            vk_state **grown = realloc(*list, (size_t)c * sizeof *grown);
            if (!grown) return -1;
            *list = grown;
            *cap = c;
        }
        (*list)[(*count)++] = s;
    }
    return 0;
}

/* A secondary command buffer replaying states[0..n) (recorded sequences among them are
 * replayed member by member), as enqueue would record them, reusable at any time. */
static int vk_record(void *const *states, int n, void **seq, char *msg) {
    *seq = NULL;
    int rc = check_states(states, n, msg);
    if (rc != KB_OK) return rc;
    vk_state *s = new_state();
    if (!s) return kb_fail(msg, KB_ERROR, "out of host memory");
    s->is_seq = 1;
    int cap = 0;
    if (flatten(states, n, &s->members, &s->nmembers, &cap) != 0) {
        s->nmembers = 0; /* none counted yet */
        destroy_state(s);
        return kb_fail(msg, KB_ERROR, "out of host memory");
    }
    for (int i = 0; i < s->nmembers; i++) s->members[i]->seq_refs++;
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = g.cmdpool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_SECONDARY,
                                       .commandBufferCount = 1};
    VkResult r = vkAllocateCommandBuffers(g.dev, &cai, &s->secondary);
    if (r != VK_SUCCESS) {
        s->secondary = VK_NULL_HANDLE;
        destroy_state(s);
        return vk_fail(msg, r, "vkAllocateCommandBuffers (secondary)");
    }
    VkCommandBufferInheritanceInfo inh = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO};
    /* SIMULTANEOUS_USE: enqueued again before an earlier replay has finished */
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT,
                                   .pInheritanceInfo = &inh};
    r = vkBeginCommandBuffer(s->secondary, &bi);
    if (r != VK_SUCCESS) {
        destroy_state(s);
        return vk_fail(msg, r, "vkBeginCommandBuffer (secondary)");
    }
    g.last_barriers = 0;
    record_states(s->secondary, (void *const *)s->members, s->nmembers);
    r = vkEndCommandBuffer(s->secondary);
    if (r != VK_SUCCESS) {
        destroy_state(s);
        return vk_fail(msg, r, "vkEndCommandBuffer (secondary)");
    }
    *seq = s;
    return KB_OK;
}

/* The cache flush's buffer: max(128 MiB, 2x the device's cache), within one allocation and
 * half the largest device-local heap (the cases need the rest), made on first use. */
static int flush_buffer(char *msg) {
    if (g.flush) return KB_OK;
    VkDeviceSize bytes = FLUSH_MIN_BYTES;
    if (2 * (VkDeviceSize)info.cache_bytes > bytes) bytes = 2 * (VkDeviceSize)info.cache_bytes;
    if (g.heap_bytes && bytes > g.heap_bytes / 2) bytes = g.heap_bytes / 2;
    if (bytes > g.max_alloc) bytes = g.max_alloc;
    return create_buffer(bytes & ~(VkDeviceSize)15, 0, &g.flush, msg);
}

/* The sequence between two timestamps. Both are written at BOTTOM_OF_PIPE: a timestamp
 * there is taken once every command before it in submission order has completed, so
 * the first one waits for the flush (and any earlier work), the second for the sequence. */
static int vk_run_timed(void *const *states, int n, int flush, double *seconds, char *msg) {
    *seconds = 0;
    int rc = check_states(states, n, msg);
    if (rc != KB_OK) return rc;
    if (!g.ts_mask) return kb_fail(msg, KB_NOT_SUPPORTED, "the compute queue has no timestamps");
    if (flush && (rc = flush_buffer(msg)) != KB_OK) return rc;
    submit_slot *sl;
    if ((rc = acquire_slot(&sl, msg)) != KB_OK) return rc;
    if ((rc = begin_primary(sl->cmd, msg)) != KB_OK) return rc;
    g.last_barriers = 0;
    full_barrier(sl->cmd);
    if (flush) { /* evict the caches: a new value each time, so no layer can skip a fill it has seen */
        vkCmdFillBuffer(sl->cmd, g.flush->buf, 0, VK_WHOLE_SIZE, 0x9e3779b9u * ++g.flush_value);
        full_barrier(sl->cmd);
    }
    vkCmdResetQueryPool(sl->cmd, g.qpool, 0, 2);
    vkCmdWriteTimestamp(sl->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g.qpool, 0);
    record_states(sl->cmd, states, n);
    vkCmdWriteTimestamp(sl->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g.qpool, 1);
    VK_CHECK(vkEndCommandBuffer(sl->cmd));
    if ((rc = submit(sl->cmd, sl->fence, msg)) != KB_OK) return rc;
    sl->busy = 1;
    if ((rc = wait_all(msg)) != KB_OK) return rc;
    uint64_t ts[2] = {0, 0};
    VK_CHECK(vkGetQueryPoolResults(g.dev, g.qpool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    /* Only the low timestampValidBits bits count; the masked difference survives a wrap. */
    const uint64_t ticks = (ts[1] - ts[0]) & g.ts_mask;
    *seconds = (double)ticks * g.ts_period_ns * 1e-9;
    return KB_OK;
}

static int vk_reset(char *msg) {
    teardown();
    int rc = init_device(g.vk_device_opt, msg);
    if (rc != KB_OK) {
        char keep[KB_MSG];
        snprintf(keep, sizeof keep, "%s", msg ? msg : "");
        teardown();
        if (msg) snprintf(msg, KB_MSG, "%s", keep);
        return KB_ERROR;
    }
    return KB_OK;
}

const kb_backend kb_backend_vulkan = {
    .name = "vulkan",
    .description = "GLSL 450 compute shaders compiled to SPIR-V (Vulkan 1.2), timestamp queries",
    .tunable = 1, /* BLOCK (the workgroup size) of rmsnorm and the element-wise ops */
    .probe = vk_probe,
    .device = vk_device,
    .flop_peak = vk_flop_peak,
    .variants = vk_variants,
    .alloc = vk_alloc,
    .free = vk_free,
    .upload = vk_upload,
    .download = vk_download,
    .copy = vk_copy,
    .prepare = vk_prepare,
    .release = vk_release,
    .enqueue = vk_enqueue,
    .wait = vk_wait,
    .record = vk_record,
    .run_timed = vk_run_timed,
    .reset = vk_reset,
};
