/* The program the trace benches time (benches/trace_bench.sh,
 * benches/inprocess_bench.sh): N hits of bench:hit (two integers) or, with
 * "str", of bench:str (a string in a register), timed by the program itself
 * around its loop and printed as "loop_ns N" on stderr.
 *
 * Built with the system's <sys/sdt.h> (1-byte NOP sites), or with
 * -Isdt-header/include -DSTAP_SDT_CHEAP_SITE=1 for cheap sites. BENCH_CLOCK
 * is the clock of the loop: CLOCK_MONOTONIC (wall) by default,
 * CLOCK_THREAD_CPUTIME_ID for the thread's CPU time on a loaded machine. */
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef BENCH_CLOCK
#define BENCH_CLOCK CLOCK_MONOTONIC
#endif
static char text[] = "hello, tracing";
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int str = argc > 2 && strcmp(argv[2], "str") == 0;
    char *volatile p = text;
    char *s = p; /* in a register at the probe */
    struct timespec a, b;
    clock_gettime(BENCH_CLOCK, &a);
    if (str)
        for (long i = 0; i < n; i++)
            STAP_PROBE1(bench, str, s);
    else
        for (long i = 0; i < n; i++)
            STAP_PROBE2(bench, hit, i, n - i);
    clock_gettime(BENCH_CLOCK, &b);
    fprintf(stderr, "loop_ns %lld\n",
            (long long)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec)));
    return 0;
}
