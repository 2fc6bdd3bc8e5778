/* GDB plugin fixture: a shared library with a probe behind a semaphore,
 * loaded with dlopen. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <sys/sdt.h>

unsigned short lib_hit_semaphore __attribute__((section(".probes"), used));

void lib_fire(int i)
{
    long tenfold = 10L * i;
    printf("lib hit %d %ld %s\n", i, tenfold, lib_hit_semaphore ? "enabled" : "disabled");
    fflush(stdout);
    STAP_PROBE2(lib, hit, i, tenfold);
}
