/* Unit tests for net/peer_addr.c: IPv4 and IPv6 addresses and ports come
 * back as they went in; Unix and unknown families come back as none. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "net/peer_addr.h"
#include "unit.h"

static void test_ipv4(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(54321) };
	inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
	struct peer_addr p;
	peer_addr_set(&p, (struct sockaddr *)&in, sizeof(in));
	struct sockaddr_storage ss;
	socklen_t len = peer_addr_get(&p, &ss);
	const struct sockaddr_in *back = (const struct sockaddr_in *)&ss;
	CHECK(len == sizeof(struct sockaddr_in));
	CHECK(back->sin_family == AF_INET && back->sin_port == htons(54321));
	CHECK(memcmp(&back->sin_addr, &in.sin_addr, sizeof(in.sin_addr)) == 0);
}

static void test_ipv6(void)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(6432) };
	inet_pton(AF_INET6, "2001:db8::1:2", &in6.sin6_addr);
	struct peer_addr p;
	peer_addr_set(&p, (struct sockaddr *)&in6, sizeof(in6));
	struct sockaddr_storage ss;
	socklen_t len = peer_addr_get(&p, &ss);
	const struct sockaddr_in6 *back = (const struct sockaddr_in6 *)&ss;
	CHECK(len == sizeof(struct sockaddr_in6));
	CHECK(back->sin6_family == AF_INET6 && back->sin6_port == htons(6432));
	CHECK(memcmp(&back->sin6_addr, &in6.sin6_addr, sizeof(in6.sin6_addr)) == 0);
}

static void test_none(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct peer_addr p;
	struct sockaddr_storage ss;
	peer_addr_set(&p, (struct sockaddr *)&un, sizeof(un));
	CHECK(peer_addr_get(&p, &ss) == 0 && ss.ss_family == AF_UNSPEC);
	peer_addr_set(&p, NULL, 0);
	CHECK(peer_addr_get(&p, &ss) == 0 && ss.ss_family == AF_UNSPEC);
	/* A truncated IPv6 address is not read past its length. */
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	peer_addr_set(&p, (struct sockaddr *)&in6, sizeof(struct sockaddr_in));
	CHECK(peer_addr_get(&p, &ss) == 0);
	CHECK(sizeof(struct peer_addr) == 20);
}

int main(void)
{
	test_ipv4();
	test_ipv6();
	test_none();
	return unit_finish("test_peer_addr");
}
