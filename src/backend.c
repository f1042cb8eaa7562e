/*
 * Rare jemalloc services: statistics and purging (for mallinfo,
 * malloc_trim and our own report).
 */
#include "backend.h"

#include <string.h>

static size_t read_stat(const char *name)
{
    size_t v = 0, len = sizeof v;
    if (mallctl(name, &v, &len, NULL, 0) != 0)
        return 0;
    return v;
}

void fb_je_info(struct fb_je_info *out)
{
    /* Statistics are cached per "epoch" in jemalloc; bump it to refresh. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    out->allocated = read_stat("stats.allocated");
    out->active = read_stat("stats.active");
    out->resident = read_stat("stats.resident");
    out->mapped = read_stat("stats.mapped");
}

int fb_je_trim(void)
{
    char name[64];
    /* MALLCTL_ARENAS_ALL: purge every arena. */
    memset(name, 0, sizeof name);
    strcpy(name, "arena.4096.purge");
    return mallctl(name, NULL, NULL, NULL, 0) == 0;
}
