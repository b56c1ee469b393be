/* hostmem.c - host memory availability (hostmem.h). */
#include "bench/hostmem.h"

#include "bench/kbench.h"

#include <stdio.h>
#include <string.h>

uint64_t kb_host_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
    fclose(f);
    return (uint64_t)kib * 1024u;
}

int kb_host_mem_check(double bytes, char *msg) {
    const uint64_t avail = kb_host_mem_available();
    if (avail && bytes > (double)avail)
        return kb_fail(msg, KB_ERROR, "needs %.1f GiB of host memory, %.1f GiB available", bytes / 1073741824.0,
                       (double)avail / 1073741824.0);
    return KB_OK;
}
