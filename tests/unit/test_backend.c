/* The embedded jemalloc's stand-ins for libm (src/backend.c): exp, log
 * and round against libm's own, which this test (not the library) links. */
#include <math.h>
#include <stdint.h>

#include "check.h"

double fb_jemalloc_sys_exp(double x);
double fb_jemalloc_sys_log(double x);
double fb_jemalloc_sys_round(double x);

static int close_to(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want) || want == 0)
        return got == want;
    return fabs(got - want) <= 4e-15 * fabs(want);
}

int main(void)
{
    int bad_exp = 0, bad_log = 0, bad_round = 0;
    uint64_t s = 12345;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;   /* [0, 1) */
        double xe = (u - 0.5) * 1400;                        /* exp's range */
        double xl = ldexp(u + 0.5, (int)(s % 2000) - 1000);  /* log's */
        double xr = (u - 0.5) * ldexp(1, (int)(s % 60));     /* round's */
        bad_exp += !close_to(fb_jemalloc_sys_exp(xe), exp(xe));
        bad_log += !close_to(fb_jemalloc_sys_log(xl), log(xl));
        bad_round += fb_jemalloc_sys_round(xr) != round(xr);
    }
    CHECK_EQ_U(bad_exp, 0);
    CHECK_EQ_U(bad_log, 0);
    CHECK_EQ_U(bad_round, 0);
    /* What jemalloc computes: 1 - exp(-size / 2^19), and log(u) of a
     * uniform sample in (0, 1]. */
    CHECK(close_to(fb_jemalloc_sys_exp(-16.0 / 524288), exp(-16.0 / 524288)));
    CHECK(close_to(fb_jemalloc_sys_log(1e-300), log(1e-300)));
    CHECK(close_to(fb_jemalloc_sys_log(5e-324), log(5e-324)));   /* subnormal */
    CHECK(fb_jemalloc_sys_log(1.0) == 0.0);
    CHECK(isinf(fb_jemalloc_sys_log(0.0)) && fb_jemalloc_sys_log(0.0) < 0);
    CHECK(isnan(fb_jemalloc_sys_log(-1.0)));
    CHECK(isnan(fb_jemalloc_sys_exp(NAN)));
    CHECK(isinf(fb_jemalloc_sys_exp(1000)) && fb_jemalloc_sys_exp(-1000) == 0);
    CHECK(fb_jemalloc_sys_round(2.5) == 3 && fb_jemalloc_sys_round(-2.5) == -3);
    CHECK(fb_jemalloc_sys_round(0.49999999999999994) == 0);
    CHECK(signbit(fb_jemalloc_sys_round(-0.3)));
    CHECK(fb_jemalloc_sys_round(0x1p60) == 0x1p60);
    return check_done("backend");
}
