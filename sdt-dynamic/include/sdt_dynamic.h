/* sdt_dynamic.h: static probes defined at run time (libsdt_dynamic.so,
 * the C ABI of the sdt-dynamic crate of stap-sdt).
 *
 *   sdt_provider *p = sdt_provider_new("app");
 *   int types[] = { SDT_ARG_I32, SDT_ARG_STR };
 *   int request = sdt_provider_add_probe(p, "request", types, 2);
 *   sdt_provider_load(p);                       // written to a memfd, dlopened
 *   const sdt_probe *req = sdt_provider_probe(p, request);
 *   if (sdt_probe_enabled(req)) {               // the semaphore: one load
 *       uint64_t args[] = { 7, (uintptr_t)"GET /" };
 *       sdt_probe_fire(req, args);
 *   }
 *   sdt_provider_free(p);                       // unloaded, nothing left behind
 *
 * Functions that can fail return -1 or NULL; sdt_last_error() says why
 * (per thread). Probe handles are valid while their provider is loaded.
 * The argument block has one uint64_t per slot: integers extended to 64
 * bits, doubles as their bits (sdt_arg_double), a pointer then a length
 * for SDT_ARG_STRLEN (two slots). At most 12 slots per probe.
 */
#ifndef SDT_DYNAMIC_H
#define SDT_DYNAMIC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sdt_provider sdt_provider;
typedef struct sdt_probe sdt_probe;

enum sdt_arg_type {
	SDT_ARG_I8 = 1,
	SDT_ARG_U8 = 2,
	SDT_ARG_I16 = 3,
	SDT_ARG_U16 = 4,
	SDT_ARG_I32 = 5,
	SDT_ARG_U32 = 6,
	SDT_ARG_I64 = 7,
	SDT_ARG_U64 = 8,
	SDT_ARG_POINTER = 9,
	SDT_ARG_STR = 10,    /* NUL-terminated string */
	SDT_ARG_STRLEN = 11, /* pointer + length string: two slots */
	SDT_ARG_DOUBLE = 12,
};

#define SDT_MAX_SLOTS 12

const char *sdt_last_error(void);

sdt_provider *sdt_provider_new(const char *name);
/* Returns the probe's index, or -1. */
int sdt_provider_add_probe(sdt_provider *provider, const char *name,
			   const int *types, size_t count);
/* Write objects to files in dir (removed at unload) instead of a memfd;
 * NULL: $STAP_SDT_DYNAMIC_DIR if set, else a memfd. */
int sdt_provider_set_dir(sdt_provider *provider, const char *dir);
int sdt_provider_load(sdt_provider *provider);
int sdt_provider_unload(sdt_provider *provider);
void sdt_provider_free(sdt_provider *provider);
/* The loaded object's path: /proc/PID/fd/N (memfd) or the file; NULL if not loaded. */
const char *sdt_provider_path(const sdt_provider *provider);

const sdt_probe *sdt_provider_probe(const sdt_provider *provider, size_t index);
int sdt_probe_enabled(const sdt_probe *probe);
/* The semaphore itself, to test inline: *sem != 0 while traced. */
const volatile unsigned short *sdt_probe_semaphore(const sdt_probe *probe);
void sdt_probe_fire(const sdt_probe *probe, const uint64_t *args);
void (*sdt_probe_fire_function(const sdt_probe *probe))(const uint64_t *args);

static inline uint64_t sdt_arg_double(double value)
{
	uint64_t bits;
	memcpy(&bits, &value, sizeof bits);
	return bits;
}

#ifdef __cplusplus
}
#endif

#endif /* SDT_DYNAMIC_H */
