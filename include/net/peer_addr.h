/* A connection's peer address (IPv4 or IPv6 and port) in 20 bytes, where a
 * sockaddr_in6 takes 28: every client keeps one for hba, logs and SHOW
 * CLIENTS, and rebuilds the sockaddr only when one of those asks. */
#ifndef TB_NET_PEER_ADDR_H
#define TB_NET_PEER_ADDR_H
#include <stdint.h>
#include <sys/socket.h>

struct peer_addr {
	uint8_t ip[16]; /* an IPv4 address in the first 4 bytes, network order */
	uint16_t port;  /* network order */
	uint8_t family; /* AF_INET, AF_INET6, or AF_UNSPEC for none */
};

/* Keeps an AF_INET or AF_INET6 address; anything else (or NULL) is none. */
void peer_addr_set(struct peer_addr *p, const struct sockaddr *sa, socklen_t len);
/* The sockaddr again, and its length; 0 (and AF_UNSPEC) if there is none. */
socklen_t peer_addr_get(const struct peer_addr *p, struct sockaddr_storage *out);
#endif
