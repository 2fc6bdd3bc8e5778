/* The churning process of benches/soak.sh.
 *
 *   soak_app run LIB FIRES COUNTS   fire soak:hit FIRES times, exec itself
 *                                   as `stage2`, which dlopens LIB, fires
 *                                   soaklib:hit FIRES times, dlcloses it,
 *                                   appends "FIRES FIRES" to COUNTS, exits
 *   soak_app sentinel LIB OUT       keep LIB loaded; on SIGUSR1 write both
 *                                   semaphores to OUT ("app N lib M")
 *
 * Every probe fires unconditionally (a semaphore only tells the program a
 * tracer is there), so the counts file is the truth the tracers' counts
 * are compared with. One write(2) per process to an O_APPEND file: lines
 * of concurrent processes do not interleave. */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <unistd.h>

unsigned short soak_hit_semaphore __attribute__((section(".probes"), used));

static void fire(int n)
{
    for (int i = 0; i < n; i++)
        STAP_PROBE1(soak, hit, i);
}

static volatile sig_atomic_t dump;
static void on_usr1(int sig) { (void)sig; dump = 1; }

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "run") == 0) {
        fire(atoi(argv[3]));
        char *again[] = { argv[0], "stage2", argv[2], argv[3], argv[4], NULL };
        execv("/proc/self/exe", again);
        return 1;
    }
    if (argc == 5 && strcmp(argv[1], "stage2") == 0) {
        int n = atoi(argv[3]);
        void *lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        if (!lib)
            return 2;
        void (*lib_fire)(int) = (void (*)(int))dlsym(lib, "soak_lib_fire");
        lib_fire(n);
        dlclose(lib);
        char line[64];
        int len = snprintf(line, sizeof line, "%d %d\n", n, n);
        int fd = open(argv[4], O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd < 0 || write(fd, line, len) != len)
            return 3;
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "sentinel") == 0) {
        void *lib = dlopen(argv[2], RTLD_NOW);
        if (!lib)
            return 2;
        unsigned short (*lib_sem)(void) = (unsigned short (*)(void))dlsym(lib, "soak_lib_semaphore");
        signal(SIGUSR1, on_usr1);
        for (;;) {
            pause();
            if (dump) {
                dump = 0;
                FILE *f = fopen(argv[3], "w");
                fprintf(f, "app %u lib %u\n", soak_hit_semaphore, lib_sem());
                fclose(f);
            }
        }
    }
    fprintf(stderr, "usage: soak_app run LIB FIRES COUNTS | sentinel LIB OUT\n");
    return 64;
}
