/* GDB plugin fixture: probes through <sys/sdt.h>, one of them behind a
 * semaphore, one passing a HotSpot-style pointer+length string. The program
 * prints every value it passes so that tests compare GDB's view with it. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <string.h>
#include <sys/sdt.h>
#include <unistd.h>

/* With _SDT_HAS_SEMAPHORES every probe needs one; only `guarded` is tested. */
#define SEMAPHORE(name) unsigned short name __attribute__((section(".probes"), used))
SEMAPHORE(demo_guarded_semaphore);
SEMAPHORE(demo_tick_semaphore);
SEMAPHORE(demo_hs_string_semaphore);
SEMAPHORE(demo_twice_semaphore);

/* Inlined twice: one probe, two locations. */
static inline __attribute__((always_inline)) void twice(int which)
{
    printf("twice %d\n", which);
    STAP_PROBE1(demo, twice, which);
}
#define DEMO_GUARDED_ENABLED() __builtin_expect(demo_guarded_semaphore, 0)

long counter = 1000;

int main(int argc, char **argv)
{
    static const char text[] = "hello, probe world"; /* no NUL after "hello" */
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < 5; i++) {
        long big = counter + i;
        printf("tick %d %ld\n", i, big);
        STAP_PROBE2(demo, tick, i, big);
        if (DEMO_GUARDED_ENABLED()) {
            printf("guarded enabled %d\n", i);
            STAP_PROBE1(demo, guarded, i);
        } else {
            printf("guarded disabled %d\n", i);
        }
    }
    printf("hs %.*s\n", 5, text);
    STAP_PROBE2(demo, hs_string, text, 5);
    twice(1);
    twice(2);
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        /* A new image in the same process: probe breakpoints and semaphores
         * must follow it. */
        puts("exec");
        execl(argv[0], argv[0], (char *)NULL);
        return 1;
    }
    puts("done");
    return 0;
}
