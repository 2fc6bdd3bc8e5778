/* GDB plugin fixture: a shared library with a probe, loaded with dlopen. */
#include <stdio.h>
#include <sys/sdt.h>

void lib_fire(int i)
{
    long tenfold = 10L * i;
    printf("lib hit %d %ld\n", i, tenfold);
    fflush(stdout);
    DTRACE_PROBE2(lib, hit, i, tenfold);
}
