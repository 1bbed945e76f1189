/* Allocation, strings, time: small helpers every module uses. */
#ifndef TB_CORE_UTIL_H
#define TB_CORE_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mustcheck.h"

/* Microseconds; all timeouts and ages are kept in this unit. */
typedef int64_t usec_t;
#define USEC_PER_SEC ((usec_t)1000000)

/* Allocators that abort on out-of-memory: a pooler that cannot allocate a
 * few hundred bytes cannot do anything useful, and checking every call site
 * would bury the logic. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fill a caller's error buffer (modules that must not log). err may be NULL. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Wipe then free: for passwords, tokens, keys. Accepts NULL. */
void secret_free(char *s);
void secret_wipe(void *p, size_t n);
/* Wipe n bytes then free: for a secret that is not a C string. Accepts NULL. */
void secret_free_n(void *p, size_t n);
/* secret_free each of v[0..max) up to the first NULL, leaving each NULL
 * (a request's header lines, which may carry a bearer token). */
void secret_free_each(char **v, size_t max);

/* Bounded copy that always terminates; returns false on truncation. */
bool strlcpy_ok(char *dst, const char *src, size_t size);
bool str_ieq(const char *a, const char *b);
/* Case-insensitive membership in a comma/space separated list. */
bool str_in_list(const char *list, const char *word);

/* Monotonic and wall clocks. */
usec_t time_mono_usec(void);
usec_t time_wall_usec(void);
/* The monotonic clock as read once per event loop pass (PgBouncer's
 * get_cached_time): state changes, waits and statistics of one pass share
 * one reading. The loop calls time_cache_reset before each pass. */
usec_t time_now_usec(void);
void time_cache_reset(void);

/* Cryptographically random bytes; false if the RNG failed. */
TB_MUSTCHECK bool random_bytes(void *buf, size_t n);
/* Uniform random in [0, n). */
uint32_t random_below(uint32_t n);
#endif
