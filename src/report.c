/*
 * Reports: bad frees and notes.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>

#include "epoch.h"
#include "fb.h"
#include "fmt.h"
#include "options.h"
#include "stats.h"

FB_COLD void fb_report_bad_free(const void *ptr, enum fb_bad_kind kind,
                                const char *op)
{
    int saved = errno;
    fb_stats_event(&fb_stats_g.bad_frees);
    if (kind == FB_BAD_DOUBLE)
        fb_fmt_dprintf(2,
                       "fbmalloc: double free of %p in %s(): a block that "
                       "started there was already freed\n",
                       ptr, op);
    else
        fb_fmt_dprintf(2,
                       "fbmalloc: invalid pointer %p passed to %s(): not the "
                       "start of a live block\n",
                       ptr, op);
    if (fb_opt.on_bad_free == FB_BAD_FREE_ABORT) {
        fb_fmt_dprintf(2, "fbmalloc: aborting (FBMALLOC_ON_BAD_FREE=ignore "
                          "reports and goes on)\n");
        abort();
    }
    errno = saved;
}

FB_COLD void fb_report_note(const char *msg)
{
    fb_fmt_dprintf(2, "fbmalloc: %s\n", msg);
}
