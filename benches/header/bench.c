/* The loop timed by header_bench.sh: N calls of step(), which fires
   bench:hit (or not, per the build), timed with clock_gettime. Prints
   nanoseconds per iteration on stdout. Built with either <sys/sdt.h> or
   stap-sdt's sdt.h; -DPROBE=0 builds the baseline without a probe,
   -DSEMAPHORE=1 guards the probe with its semaphore. */
#ifdef SEMAPHORE_SYSTEMTAP
#define _SDT_HAS_SEMAPHORES 1
#endif
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef PROBE
#define PROBE 1
#endif

#if defined SEMAPHORE_SYSTEMTAP
unsigned short bench_hit_semaphore __attribute__((unused, section(".probes")));
#define ENABLED() __builtin_expect(*(volatile unsigned short *)&bench_hit_semaphore, 0)
#elif defined SEMAPHORE_OURS
STAP_SEMAPHORE_DEFINE(bench, hit);
#define ENABLED() STAP_PROBE_ENABLED(bench, hit)
#else
#define ENABLED() 1
#endif

static __attribute__((noinline)) long step(long i, long acc) {
#if PROBE
  if (ENABLED())
    STAP_PROBE2(bench, hit, i, acc);
#endif
  return acc + (i ^ (acc >> 3));
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  long i, acc = 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < n; i++)
    acc = step(i, acc);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.3f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
  fprintf(stderr, "%ld\n", acc);
  return 0;
}
