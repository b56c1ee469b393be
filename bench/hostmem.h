/* hostmem.h - is there host memory for this? Asked before anything big is
 * allocated, so a case too large for the machine is a clear message, not a crash. */
#ifndef KB_HOSTMEM_H
#define KB_HOSTMEM_H

#include <stddef.h>
#include <stdint.h>

/* Bytes the kernel says can be allocated without swapping (MemAvailable in
 * /proc/meminfo); 0 when unknown. */
uint64_t kb_host_mem_available(void);
/* KB_OK, or KB_ERROR with "needs X GiB of host memory, Y GiB available" when
 * `bytes` exceeds what is available (unknown availability is no objection). */
int kb_host_mem_check(double bytes, char *msg);
/* The size of this CPU's last-level cache (a cold flush evicts it, rotate outgrows it):
 * sysfs, then sysconf, then 64 MiB. */
size_t kb_host_llc_bytes(void);

#endif
