/* GDB plugin fixture: dlopen the library named by argv[1] after start-up and
 * fire its probe five times. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    puts("before dlopen");
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    void (*fire)(int) = (void (*)(int))dlsym(lib, "lib_fire");
    for (int i = 0; i < 5; i++)
        fire(i);
    puts("done");
    return 0;
}
