/* Listening sockets (TCP and Unix) and accepting, with a pause for
 * max_client_conn and for running out of file descriptors. */
#ifndef TB_NET_LISTENER_H
#define TB_NET_LISTENER_H
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/config-t.h"

/* Called for each accepted, non-blocking socket. addr is NULL for Unix sockets. */
typedef void (*listener_accept_cb)(int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix);

bool listeners_open(struct event_base *base, const struct tb_config *cfg, listener_accept_cb cb, char *err,
		    size_t errlen);
void listeners_pause(bool pause);
/* True if the sockets accepted on the TCP listeners already carry cfg's
 * connection options (sockopt_tcp_connection), copied by the kernel from
 * the listening socket; false after a reload changed them. */
bool listeners_give_options(const struct tb_config *cfg);
/* Listening sockets open now (TCP and Unix); for /readyz. */
size_t listeners_count(void);
/* SUSPEND: accept nothing until released (the kernel backlog keeps new
 * connections waiting). */
void listeners_hold(bool hold);
/* Shutdown: close the TCP listeners; the Unix socket stays for the console. */
void listeners_close_tcp(void);
/* Close every listener and remove Unix socket files. */
void listeners_close(void);
#endif
