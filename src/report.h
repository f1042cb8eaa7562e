/*
 * Reports to the user: bad frees, notes.  Cold code, written with our own
 * formatter (these run inside malloc/free).
 */
#ifndef FB_REPORT_H
#define FB_REPORT_H

enum fb_bad_kind { FB_BAD_DOUBLE, FB_BAD_INVALID };

/* Reports a double or invalid free/realloc of ptr on stderr, counts it,
 * and aborts unless FBMALLOC_ON_BAD_FREE=ignore.  op: "free", "realloc". */
void fb_report_bad_free(const void *ptr, enum fb_bad_kind kind, const char *op);

/* One informational line on stderr: "fbmalloc: <msg>". */
void fb_report_note(const char *msg);

#endif
