#pragma D attributes Evolving/Evolving/ISA provider app provider
# 3 "app.d"
typedef struct conn { int fd; } conn_t;
/* block comment */ // line comment
provider app {
  probe start(const char *, int, struct conn *) : (string, int, conninfo_t *);
  probe stop(void)
  probe many(int a, long long b, unsigned char c[16], void (*)(int, long), double, float, string, char **, uint64_t, int8_t, uintptr_t, const volatile int * restrict);
};
