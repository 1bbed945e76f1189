/* Socket options from the configuration, PgBouncer's parameters:
 * tcp_keepalive, tcp_keepcnt, tcp_keepidle, tcp_keepintvl, tcp_user_timeout
 * and tcp_socket_buffer on client and server connections; listen_backlog
 * and tcp_defer_accept on TCP listeners; unix_socket_mode and
 * unix_socket_group on the Unix socket. */
#ifndef TB_NET_SOCKOPT_H
#define TB_NET_SOCKOPT_H
#include <stdbool.h>
#include <stddef.h>
#include "core/config-t.h"

/* A connected TCP socket (client or server side). Failures are ignored, as
 * in PgBouncer: an option the kernel refuses leaves its default. */
void sockopt_tcp_connection(int fd, const struct tb_config *cfg);
/* The values sockopt_tcp_connection sets, to compare configurations. */
struct tcp_conn_opts {
	int keepalive, keepcnt, keepidle, keepintvl, user_timeout, socket_buffer;
};
void sockopt_conn_opts(const struct tb_config *cfg, struct tcp_conn_opts *o);
bool sockopt_conn_opts_equal(const struct tcp_conn_opts *a, const struct tcp_conn_opts *b);
/* A TCP listening socket, before listen(). */
void sockopt_tcp_listener(int fd, const struct tb_config *cfg);
/* listen(2)'s backlog. */
int sockopt_backlog(const struct tb_config *cfg);
/* Mode and group of the Unix socket file at path. */
bool sockopt_unix_socket_perms(const char *path, const struct tb_config *cfg, char *err, size_t errlen);
/* unix_socket_mode as a mode; false if it is not an octal number up to 0777. */
bool sockopt_parse_mode(const char *text, unsigned *mode);
#endif
