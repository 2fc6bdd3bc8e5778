/* The probed library of benches/soak.sh: dlopen'd, fired, dlclose'd by
 * every soak_app process, so that tracers see the same file mapped and
 * unmapped at a high rate. */
#include <sys/sdt.h>

unsigned short soaklib_hit_semaphore __attribute__((section(".probes"), used));

/* Fire N times; the caller counts what it fired, not what was enabled. */
void soak_lib_fire(int n)
{
    for (int i = 0; i < n; i++)
        STAP_PROBE1(soaklib, hit, i);
}

unsigned short soak_lib_semaphore(void)
{
    return soaklib_hit_semaphore;
}
