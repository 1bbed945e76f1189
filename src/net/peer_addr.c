#include "net/peer_addr.h"

#include <netinet/in.h>
#include <string.h>

void peer_addr_set(struct peer_addr *p, const struct sockaddr *sa, socklen_t len)
{
	memset(p, 0, sizeof(*p));
	p->family = AF_UNSPEC;
	if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		memcpy(p->ip, &in->sin_addr, sizeof(in->sin_addr));
		p->port = in->sin_port;
		p->family = AF_INET;
	} else if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(p->ip, &in6->sin6_addr, sizeof(in6->sin6_addr));
		p->port = in6->sin6_port;
		p->family = AF_INET6;
	}
}

socklen_t peer_addr_get(const struct peer_addr *p, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (p->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
		in->sin_family = AF_INET;
		in->sin_port = p->port;
		memcpy(&in->sin_addr, p->ip, sizeof(in->sin_addr));
		return sizeof(*in);
	}
	if (p->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = p->port;
		memcpy(&in6->sin6_addr, p->ip, sizeof(in6->sin6_addr));
		return sizeof(*in6);
	}
	out->ss_family = AF_UNSPEC;
	return 0;
}
