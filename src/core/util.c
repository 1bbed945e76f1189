#include "core/util.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static void oom(size_t n)
{
	fprintf(stderr, "tokenbouncer: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return s ? xstrndup(s, strlen(s)) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	char *p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void secret_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void secret_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void secret_free_n(void *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

void secret_free_each(char **v, size_t max)
{
	for (size_t i = 0; i < max && v[i]; i++) {
		secret_free(v[i]);
		v[i] = NULL;
	}
}

bool strlcpy_ok(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);
	if (size == 0)
		return false;
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

bool str_ieq(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0;
}

bool str_in_list(const char *list, const char *word)
{
	if (!list || !word)
		return false;
	size_t wl = strlen(word);
	const char *p = list;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		const char *start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - start) == wl && strncasecmp(start, word, wl) == 0)
			return true;
	}
	return false;
}

usec_t time_mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* 0: not read yet in this loop pass. */
static usec_t cached_now;

usec_t time_now_usec(void)
{
	if (!cached_now)
		cached_now = time_mono_usec();
	return cached_now;
}

void time_cache_reset(void)
{
	cached_now = 0;
}

usec_t time_wall_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* Random bytes come from the kernel's CSPRNG (getrandom) a pool at a time:
 * a login needs about 30 (its SCRAM nonce and its cancel key), so one
 * system call serves several logins, and OpenSSL's DRBG, with its locks and
 * the 2 MB its providers take on first use, is not on the login path. Bytes
 * are wiped as they are handed out, and a forked child never reuses the
 * parent's pool. */
#define RANDOM_POOL 512

static struct {
	unsigned char bytes[RANDOM_POOL];
	size_t left; /* unused bytes, at the end of bytes */
} rnd;

static void random_forget(void)
{
	secret_wipe(&rnd, sizeof(rnd));
}

static bool random_refill(void)
{
	static bool atfork;
	if (!atfork)
		atfork = pthread_atfork(NULL, NULL, random_forget) == 0;
	size_t got = 0;
	while (got < RANDOM_POOL) {
		ssize_t r = getrandom(rnd.bytes + got, RANDOM_POOL - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	rnd.left = RANDOM_POOL;
	return true;
}

bool random_bytes(void *buf, size_t n)
{
	if (n > RANDOM_POOL / 4)
		return RAND_bytes(buf, (int)n) == 1;
	if (rnd.left < n && !random_refill())
		return RAND_bytes(buf, (int)n) == 1;
	unsigned char *from = rnd.bytes + RANDOM_POOL - rnd.left;
	memcpy(buf, from, n);
	secret_wipe(from, n);
	rnd.left -= n;
	return true;
}

uint32_t random_below(uint32_t n)
{
	uint32_t v = 0;
	if (n == 0)
		return 0;
	if (!random_bytes(&v, sizeof(v)))
		v = (uint32_t)rand();
	return v % n;
}

void err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
