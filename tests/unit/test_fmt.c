/* The write(2) formatter (src/fmt.c). */
#include <stdint.h>

#include "check.h"
#include "fmt.h"

int main(void)
{
    char b[64];
    fb_fmt_snprintf(b, sizeof b, "%d %d %u", -42, 0, 7u);
    CHECK(strcmp(b, "-42 0 7") == 0);
    fb_fmt_snprintf(b, sizeof b, "%'lu|%'lu|%'lu", 1234567UL, 999UL, 1000UL);
    CHECK(strcmp(b, "1,234,567|999|1,000") == 0);
    fb_fmt_snprintf(b, sizeof b, "%x %lx %p", 255u, 0xdeadbeefUL, (void *)0x1000);
    CHECK(strcmp(b, "ff deadbeef 0x1000") == 0);
    fb_fmt_snprintf(b, sizeof b, "[%5u][%05u]", 42u, 42u);
    CHECK(strcmp(b, "[   42][00042]") == 0);
    const char *volatile nul = NULL;
    fb_fmt_snprintf(b, sizeof b, "%s %c %%", nul, 'x');
    CHECK(strcmp(b, "(null) x %") == 0);
    fb_fmt_snprintf(b, sizeof b, "%ld %zu", (long)INT64_MIN, (size_t)SIZE_MAX);
    CHECK(strcmp(b, "-9223372036854775808 18446744073709551615") == 0);
    /* Truncation keeps the NUL. */
    size_t n = fb_fmt_snprintf(b, 8, "%s", "abcdefghijkl");
    CHECK(n == 7 && strcmp(b, "abcdefg") == 0);
    return check_done("fmt");
}
