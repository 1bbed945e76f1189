/* Unit tests for the pooler's lookup cache: answers kept for dns_max_ttl,
 * failures for dns_nxdomain_ttl, 0 disabling each, the size cap. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/dnscache.h"
#include "unit.h"

static struct sockaddr_in v4(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void count_row(const char *host, int port, usec_t ttl_left, const struct sockaddr *addr, void *arg)
{
	(void)host;
	(void)port;
	(void)addr;
	int *n = arg;
	if (ttl_left > 0)
		(*n)++;
}

static void test_ttls(void)
{
	const usec_t s = USEC_PER_SEC;
	struct dnscache_hit hit;
	struct sockaddr_in a = v4("10.0.0.7", 5432);
	dnscache_set_ttl(15 * s, 5 * s);
	dnscache_store("db.example", 5432, (struct sockaddr *)&a, sizeof(a), NULL, 100 * s);
	dnscache_store("gone.example", 5432, NULL, 0, "could not resolve host: nodename", 100 * s);
	CHECK(dnscache_count() == 2);
	CHECK(dnscache_lookup("DB.example", 5432, 114 * s, &hit) && hit.ok &&
	      memcmp(&hit.addr, &a, sizeof(a)) == 0 && hit.addrlen == sizeof(a));
	CHECK(!dnscache_lookup("db.example", 6432, 101 * s, &hit)); /* the port is part of the key */
	CHECK(dnscache_lookup("gone.example", 5432, 104 * s, &hit) && !hit.ok &&
	      strstr(hit.errmsg, "nodename") != NULL);
	int n = 0;
	dnscache_each(104 * s, count_row, &n);
	CHECK(n == 2);
	CHECK(!dnscache_lookup("gone.example", 5432, 105 * s, &hit)); /* failure ttl over */
	CHECK(!dnscache_lookup("db.example", 5432, 115 * s, &hit));   /* answer ttl over */
	CHECK(dnscache_count() == 0);
	/* 0 caches nothing */
	dnscache_set_ttl(0, 0);
	dnscache_store("db.example", 5432, (struct sockaddr *)&a, sizeof(a), NULL, 100 * s);
	dnscache_store("gone.example", 5432, NULL, 0, "x", 100 * s);
	CHECK(dnscache_count() == 0 && !dnscache_lookup("db.example", 5432, 100 * s, &hit));
	dnscache_clear();
}

static void test_cap(void)
{
	const usec_t s = USEC_PER_SEC;
	struct sockaddr_in a = v4("10.0.0.8", 5432);
	char name[64];
	dnscache_set_ttl(60 * s, 60 * s);
	for (int i = 0; i < DNSCACHE_MAX + 10; i++) {
		snprintf(name, sizeof(name), "h%d.example", i);
		dnscache_store(name, 5432, (struct sockaddr *)&a, sizeof(a), NULL, (usec_t)i * 1000);
	}
	CHECK(dnscache_count() == DNSCACHE_MAX);
	struct dnscache_hit hit;
	/* the ones closest to expiry (the first stored) made room */
	CHECK(!dnscache_lookup("h0.example", 5432, 20000, &hit));
	snprintf(name, sizeof(name), "h%d.example", DNSCACHE_MAX + 9);
	CHECK(dnscache_lookup(name, 5432, 20000, &hit));
	dnscache_clear();
	CHECK(dnscache_count() == 0);
}

int main(void)
{
	test_ttls();
	test_cap();
	return unit_finish("test_dnscache");
}
