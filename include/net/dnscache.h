/* The pooler's own cache of host name lookups, as PgBouncer keeps one:
 * answers are reused for dns_max_ttl and failures (NXDOMAIN, timeouts) for
 * dns_nxdomain_ttl, whatever TTL the record had (evdns caches nothing).
 * Pure: no sockets, no event loop; the caller passes the clock. */
#ifndef TB_NET_DNSCACHE_H
#define TB_NET_DNSCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/util.h"

/* Distinct (host, port) keys kept; beyond it the entry closest to expiry goes. */
#define DNSCACHE_MAX 1024
#define DNSCACHE_HOST_MAX 255
#define DNSCACHE_ERR_MAX 160

struct dnscache_hit {
	bool ok;
	struct sockaddr_storage addr; /* when ok */
	socklen_t addrlen;
	char errmsg[DNSCACHE_ERR_MAX]; /* when not ok */
};

/* 0 disables caching answers, resp. failures. */
void dnscache_set_ttl(usec_t answer_ttl, usec_t failure_ttl);
/* A fresh entry for (host, port) at time now, copied into *out. */
bool dnscache_lookup(const char *host, int port, usec_t now, struct dnscache_hit *out);
/* Remember an answer (addr set) or a failure (addr NULL, errmsg set). */
void dnscache_store(const char *host, int port, const struct sockaddr *addr, socklen_t addrlen,
		    const char *errmsg, usec_t now);
/* Calls each per fresh entry, for SHOW DNS_HOSTS: ttl_left in microseconds,
 * addr NULL for a cached failure. */
void dnscache_each(usec_t now,
		   void (*each)(const char *host, int port, usec_t ttl_left, const struct sockaddr *addr,
				void *arg),
		   void *arg);
size_t dnscache_count(void);
void dnscache_clear(void);
#endif
