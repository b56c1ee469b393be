/* backend_vulkan.h - the Vulkan compute backend (GLSL -> SPIR-V at build time).
 * The backend itself is `kb_backend_vulkan` (bench/kbench.h); this header adds what the
 * CLI (--list-backends) and the selftest need beyond the kb_backend interface. */
#ifndef KB_BACKEND_VULKAN_H
#define KB_BACKEND_VULKAN_H

#include <stddef.h>

#include "bench/kbench.h"

extern const kb_backend kb_backend_vulkan;

/* Write one line per Vulkan physical device into buf (at most n bytes, NUL-terminated):
 *   "  [0] llvmpipe (LLVM 15.0.6, 256 bits)  cpu  Vulkan 1.3.230  llvmpipe Mesa 22.3.6"
 * Returns the number of devices, or -1 with the reason written into buf (no loader/ICD). */
int kb_vulkan_list_devices(char *buf, size_t n);

/* The compute barriers the last enqueue, run_timed or record put between dispatches (a
 * test of the dependency tracking; the full barrier each command buffer opens with is not
 * counted). */
int kb_vulkan_last_barriers(void);

#endif
