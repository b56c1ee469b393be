/* hostmem.c - host memory availability (hostmem.h). */
#include "bench/hostmem.h"

#include "bench/kbench.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* The OS's view in sysfs first (the cache this core actually shares; on a VM sysconf
 * can report the host socket's total), then sysconf, then 64 MiB. */
size_t kb_host_llc_bytes(void) {
    size_t best = 0;
    int best_level = 0;
    for (int index = 0; index < 16; index++) {
        char path[96], text[32];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int level = 0;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
        f = fopen(path, "r");
        if (!f) continue;
        unsigned long long size = 0;
        char unit = 0;
        if (fgets(text, sizeof text, f) && sscanf(text, "%llu%c", &size, &unit) >= 1) {
            if (unit == 'K') size <<= 10;
            if (unit == 'M') size <<= 20;
            if (unit == 'G') size <<= 30;
            if (level > best_level || (level == best_level && size > best)) {
                best_level = level;
                best = (size_t)size;
            }
        }
        fclose(f);
    }
    if (best) return best;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0) return (size_t)l3;
#endif
    return (size_t)64 << 20;
}
