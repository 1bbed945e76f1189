#include "core/dynbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "core/util.h"

#define DYNBUF_FIRST_CAP 256
#define READ_CHUNK 4096

void dynbuf_init(struct dynbuf *b, size_t max, bool wipe)
{
	memset(b, 0, sizeof(*b));
	/* Keeps max + 1 (room for the terminator) and every doubling in range. */
	b->max = max < SIZE_MAX / 2 ? max : SIZE_MAX / 2;
	b->wipe = wipe;
}

static void release(struct dynbuf *b)
{
	if (!b->data)
		return;
	if (b->wipe)
		secret_wipe(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void dynbuf_free(struct dynbuf *b)
{
	release(b);
	b->failed = false;
}

void dynbuf_reset(struct dynbuf *b)
{
	if (b->data) {
		if (b->wipe)
			secret_wipe(b->data, b->len);
		b->data[0] = '\0';
	}
	b->len = 0;
	b->failed = false;
}

void dynbuf_truncate(struct dynbuf *b, size_t len)
{
	if (len >= b->len)
		return;
	if (b->wipe)
		secret_wipe(b->data + len, b->len - len);
	b->len = len;
	b->data[len] = '\0';
}

/* A secret buffer grows by copy, never realloc: realloc may free the old
 * block unwiped. Other buffers may let realloc move them. */
static void grow_to(struct dynbuf *b, size_t cap)
{
	if (!b->wipe) {
		b->data = xrealloc(b->data, cap);
	} else {
		unsigned char *nd = xmalloc(cap);
		if (b->data) {
			memcpy(nd, b->data, b->len + 1);
			secret_wipe(b->data, b->cap);
			free(b->data);
		}
		b->data = nd;
	}
	if (!b->cap)
		b->data[0] = '\0';
	b->cap = cap;
}

bool dynbuf_reserve(struct dynbuf *b, size_t more)
{
	if (b->failed)
		return false;
	if (more > b->max - b->len) {
		b->failed = true;
		return false;
	}
	size_t need = b->len + more + 1; /* cannot overflow: len + more <= max < SIZE_MAX */
	if (need <= b->cap)
		return true;
	size_t limit = b->max + 1, cap = b->cap ? b->cap : DYNBUF_FIRST_CAP;
	while (cap < need)
		cap = cap > limit / 2 ? limit : cap * 2;
	grow_to(b, cap < limit ? cap : limit);
	return true;
}

bool dynbuf_add(struct dynbuf *b, const void *p, size_t n)
{
	if (!dynbuf_reserve(b, n))
		return false;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

bool dynbuf_addstr(struct dynbuf *b, const char *s)
{
	return dynbuf_add(b, s, strlen(s));
}

bool dynbuf_addc(struct dynbuf *b, char c)
{
	return dynbuf_add(b, &c, 1);
}

bool dynbuf_vaddf(struct dynbuf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	bool ok = n >= 0;
	if (!ok)
		b->failed = true;
	else if ((size_t)n < sizeof(small))
		ok = dynbuf_add(b, small, (size_t)n);
	else if ((ok = dynbuf_reserve(b, (size_t)n))) {
		vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
	if (b->wipe)
		secret_wipe(small, sizeof(small));
	return ok;
}

bool dynbuf_addf(struct dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool ok = dynbuf_vaddf(b, fmt, ap);
	va_end(ap);
	return ok;
}

void *dynbuf_push(struct dynbuf *b, size_t n)
{
	if (!dynbuf_reserve(b, n))
		return NULL;
	unsigned char *at = b->data + b->len;
	memset(at, 0, n);
	b->len += n;
	b->data[b->len] = '\0';
	return at;
}

const char *dynbuf_str(const struct dynbuf *b)
{
	return b->data ? (const char *)b->data : "";
}

void *dynbuf_take(struct dynbuf *b, size_t *len)
{
	void *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
	return p;
}

/* At the cap, one byte more is read to tell "exactly max" from "too big". */
static bool read_past_cap(struct dynbuf *b, int fd)
{
	char probe;
	ssize_t got;
	do
		got = read(fd, &probe, 1);
	while (got < 0 && errno == EINTR);
	if (got > 0) {
		secret_wipe(&probe, 1);
		b->failed = true;
	}
	return got == 0;
}

bool dynbuf_read_fd(struct dynbuf *b, int fd)
{
	for (;;) {
		size_t room = b->max - b->len;
		if (b->failed)
			return false;
		if (room == 0)
			return read_past_cap(b, fd);
		if (!dynbuf_reserve(b, room < READ_CHUNK ? room : READ_CHUNK))
			return false;
		ssize_t got = read(fd, b->data + b->len, b->cap - 1 - b->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got == 0;
		b->len += (size_t)got;
		b->data[b->len] = '\0';
	}
}
