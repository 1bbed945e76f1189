/* Closing a socket whose peer's bytes are still unread makes the kernel send
 * a reset, and a reset can destroy the ErrorResponse just written before the
 * peer has read it (a refused client would see "connection reset" instead of
 * "no more connections allowed"). A lingering close half-closes the socket
 * after the error, reads and drops what the peer still sends, and closes on
 * its EOF or after LINGER_TIMEOUT_SEC. */
#ifndef TB_NET_LINGER_H
#define TB_NET_LINGER_H
#include <event2/event.h>

#include "core/list.h"

#define LINGER_TIMEOUT_SEC 2
#define LINGER_MAX 4096 /* sockets lingering at once; past it, a plain close */

/* The lingering sockets of one loop (a field of struct worker); zeroed, then
 * linger_set_init. */
struct linger_set {
	struct list_node socks;
	unsigned n;
};

void linger_set_init(struct linger_set *ls);
/* Takes ownership of fd (plain TCP or Unix socket, nothing left to write). */
void linger_close(struct linger_set *ls, struct event_base *base, int fd);
/* Close every lingering socket now (shutdown). */
void linger_shutdown(struct linger_set *ls);
/* How many sockets linger now. */
unsigned linger_count(const struct linger_set *ls);
#endif
