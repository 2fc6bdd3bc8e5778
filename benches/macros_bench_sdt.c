/* The bench loop of macros-bench with a <sys/sdt.h> probe, for the
   attached-probe comparison in macros_bench.sh.
   usage: macros_bench_sdt ITERATIONS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/sdt.h>

/* Thread CPU time, user and kernel (uprobe hits count), as macros-bench. */
static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  uint64_t acc = 1;
  double start = now_ns();
  for (uint64_t i = 0; i < n; i++) {
    acc ^= i;
    acc = (acc << 7) | (acc >> 57);
    DTRACE_PROBE2(bench, hit, i, acc);
  }
  double elapsed = now_ns() - start;
  printf("sys/sdt.h DTRACE_PROBE2: %.1f ns/iteration (acc %llu)\n", elapsed / n,
         (unsigned long long)acc);
  return 0;
}
