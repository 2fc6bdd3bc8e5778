/* GDB plugin fixture for attach/detach: runs until the file named by argv[1]
 * exists (at most 20 s), firing attach:beat whenever its semaphore is raised,
 * then prints the semaphore's value as the program sees it. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <sys/sdt.h>
#include <unistd.h>

unsigned short attach_beat_semaphore __attribute__((section(".probes"), used));

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    puts("ready");
    for (int i = 0; i < 2000 && access(argv[1], F_OK) != 0; i++) {
        if (attach_beat_semaphore) {
            printf("enabled %d\n", i);
            STAP_PROBE1(attach, beat, i);
        }
        usleep(10000);
    }
    printf("final semaphore %u\n", (unsigned)attach_beat_semaphore);
    return 0;
}
