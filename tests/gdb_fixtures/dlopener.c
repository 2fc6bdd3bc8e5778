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
    /* Unload and load again (at the same or another address): the probe
     * breakpoint must follow. */
    dlclose(lib);
    puts("unloaded");
    lib = dlopen(argv[1], RTLD_NOW);
    if (!lib)
        return 1;
    fire = (void (*)(int))dlsym(lib, "lib_fire");
    fire(102);
    puts("done");
    return 0;
}
