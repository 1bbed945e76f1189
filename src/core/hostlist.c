/* [databases] host lists; see include/core/hostlist.h. */
#include "core/hostlist.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Split "name", "name:port", "[v6]:port", "v6" (several colons, no port). */
static bool split_entry(const char *e, size_t n, const char **h, size_t *hn, long *port)
{
	*port = 0;
	*h = e;
	*hn = n;
	const char *colon = NULL;
	if (n > 0 && e[0] == '[') {
		const char *close = memchr(e, ']', n);
		if (!close)
			return false;
		*h = e + 1;
		*hn = (size_t)(close - e - 1);
		if ((size_t)(close - e) + 1 == n)
			return *hn > 0;
		if (close[1] != ':')
			return false;
		colon = close + 1;
	} else {
		const char *first = memchr(e, ':', n), *last = NULL;
		for (const char *p = e; p < e + n; p++)
			if (*p == ':')
				last = p;
		if (first && first == last)
			colon = first; /* one colon: name:port; several: a bare IPv6 address */
		if (colon)
			*hn = (size_t)(colon - e);
	}
	if (colon) {
		const char *d = colon + 1, *end = e + n;
		if (d == end || end - d > 5)
			return false;
		for (const char *p = d; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return false;
			*port = *port * 10 + (*p - '0');
		}
		if (*port < 1 || *port > 65535)
			return false;
	}
	return *hn > 0 && *hn < HOSTLIST_MAX_HOST;
}

static const char *entry_at(const char *value, size_t i, size_t *n)
{
	const char *p = value;
	for (size_t k = 0; k < i; k++)
		p = strchr(p, ',') + 1;
	const char *comma = strchr(p, ',');
	*n = comma ? (size_t)(comma - p) : strlen(p);
	return p;
}

size_t hostlist_count(const char *value)
{
	if (!value)
		return 0;
	size_t n = 1;
	for (const char *p = value; *p; p++)
		n += *p == ',';
	return n;
}

bool hostlist_valid(const char *value)
{
	size_t count = hostlist_count(value);
	if (count == 1 && value[0] == '/')
		return true; /* a socket directory, as written */
	for (size_t i = 0; i < count; i++) {
		size_t n, hn;
		long port;
		const char *e = entry_at(value, i, &n), *h;
		for (size_t k = 0; k < n; k++)
			if (isspace((unsigned char)e[k]))
				return false;
		if (n == 0 || e[0] == '/' || !split_entry(e, n, &h, &hn, &port))
			return false;
	}
	return true;
}

bool hostlist_pick(const char *value, size_t i, int default_port, char *host, size_t hostlen, int *port)
{
	size_t count = hostlist_count(value), n, hn;
	long p;
	const char *h;
	if (count == 0)
		return false;
	if (count == 1 && value[0] == '/') {
		size_t len = strlen(value);
		if (len >= hostlen)
			return false;
		memcpy(host, value, len + 1);
		*port = default_port;
		return true;
	}
	const char *e = entry_at(value, i % count, &n);
	if (!split_entry(e, n, &h, &hn, &p) || hn >= hostlen)
		return false;
	memcpy(host, h, hn);
	host[hn] = '\0';
	*port = p > 0 ? (int)p : default_port;
	return true;
}
