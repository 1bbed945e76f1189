#include "net/dnscache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct entry {
	struct entry *next;
	char host[DNSCACHE_HOST_MAX + 1];
	int port;
	usec_t expires;
	struct dnscache_hit hit;
};

/* A list: lookups happen once per server connection attempt, not per
 * transaction, and the number of upstream hosts is small. */
static struct entry *head;
static size_t count;
static usec_t answer_ttl = 15 * USEC_PER_SEC, failure_ttl = 15 * USEC_PER_SEC;

void dnscache_set_ttl(usec_t answer, usec_t failure)
{
	answer_ttl = answer;
	failure_ttl = failure;
}

static struct entry **find(const char *host, int port)
{
	struct entry **pp = &head;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->port == port && strcasecmp((*pp)->host, host) == 0)
			return pp;
	return NULL;
}

static void drop(struct entry **pp)
{
	struct entry *e = *pp;
	*pp = e->next;
	free(e);
	count--;
}

bool dnscache_lookup(const char *host, int port, usec_t now, struct dnscache_hit *out)
{
	struct entry **pp = find(host, port);
	if (!pp)
		return false;
	if ((*pp)->expires <= now) {
		drop(pp);
		return false;
	}
	*out = (*pp)->hit;
	return true;
}

/* Room for one more: expired entries first, else the one closest to expiry. */
static void make_room(usec_t now)
{
	struct entry **pp = &head, **soonest = NULL;
	while (*pp) {
		if ((*pp)->expires <= now) {
			drop(pp);
			continue;
		}
		if (!soonest || (*pp)->expires < (*soonest)->expires)
			soonest = pp;
		pp = &(*pp)->next;
	}
	if (count >= DNSCACHE_MAX && soonest)
		drop(soonest);
}

void dnscache_store(const char *host, int port, const struct sockaddr *addr, socklen_t addrlen,
		    const char *errmsg, usec_t now)
{
	usec_t ttl = addr ? answer_ttl : failure_ttl;
	struct entry **pp = find(host, port);
	if (pp)
		drop(pp);
	if (ttl <= 0 || strlen(host) > DNSCACHE_HOST_MAX ||
	    (addr && (size_t)addrlen > sizeof(struct sockaddr_storage)))
		return;
	if (count >= DNSCACHE_MAX)
		make_room(now);
	struct entry *e = xcalloc(1, sizeof(*e));
	snprintf(e->host, sizeof(e->host), "%s", host);
	e->port = port;
	e->expires = now + ttl;
	e->hit.ok = addr != NULL;
	if (addr) {
		memcpy(&e->hit.addr, addr, (size_t)addrlen);
		e->hit.addrlen = addrlen;
	} else {
		snprintf(e->hit.errmsg, sizeof(e->hit.errmsg), "%s", errmsg ? errmsg : "lookup failed");
	}
	e->next = head;
	head = e;
	count++;
}

void dnscache_each(usec_t now,
		   void (*each)(const char *host, int port, usec_t ttl_left, const struct sockaddr *addr,
				void *arg),
		   void *arg)
{
	for (struct entry *e = head; e; e = e->next)
		if (e->expires > now)
			each(e->host, e->port, e->expires - now,
			     e->hit.ok ? (const struct sockaddr *)&e->hit.addr : NULL, arg);
}

size_t dnscache_count(void)
{
	return count;
}

void dnscache_clear(void)
{
	while (head)
		drop(&head);
}
