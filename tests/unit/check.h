/* Minimal assertions for unit tests: count failures, print where. */
#ifndef FB_TEST_CHECK_H
#define FB_TEST_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond)                                                          \
    do {                                                                     \
        check_count++;                                                       \
        if (!(cond)) {                                                       \
            check_failures++;                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_EQ_U(a, b)                                                     \
    do {                                                                     \
        unsigned long long a_ = (unsigned long long)(a);                     \
        unsigned long long b_ = (unsigned long long)(b);                     \
        check_count++;                                                       \
        if (a_ != b_) {                                                      \
            check_failures++;                                                \
            fprintf(stderr, "%s:%d: %s == %llu, expected %s == %llu\n",      \
                    __FILE__, __LINE__, #a, a_, #b, b_);                     \
        }                                                                    \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                      \
    do {                                                                     \
        check_count++;                                                       \
        if (!strstr((hay), (needle))) {                                      \
            check_failures++;                                                \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n",       \
                    __FILE__, __LINE__, (hay), (needle));                    \
        }                                                                    \
    } while (0)

static int check_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}
#endif
