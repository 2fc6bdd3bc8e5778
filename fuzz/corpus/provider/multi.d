/*
 * Several providers in one file, 0 to 12 arguments of assorted C types,
 * C and C++ comments, and typedef-like names given with -D on the
 * command line (-DHandle=void*). Written for stap-sdt's tests.
 */
provider net__io {
	probe conn__open(int fd, const char *peer, unsigned short port);  // named arguments
	probe conn__close(int);
	probe bytes(long long, unsigned long long);
	probe idle();
};

provider app {
	probe a0();
	probe a1(char);
	probe a2(signed char, unsigned char);
	probe a3(short, unsigned short, int);
	probe a4(unsigned int, long, unsigned long, long long);
	probe a5(unsigned long long, float, double, const char *, void *);
	probe a6(struct request *, const struct reply *, char **, int *, Handle, unsigned);
	probe a12(int, int, int, int, int, int, int, int, int, int, int, const char *);
};
