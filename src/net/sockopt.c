/* Socket options from the configuration; see include/net/sockopt.h. */
#include "net/sockopt.h"

#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* PgBouncer's value for tcp_defer_accept = 1. */
#define DEFER_ACCEPT_SECONDS 45

static void set_int(int fd, int level, int name, int value)
{
	(void)setsockopt(fd, level, name, &value, sizeof(value));
}

void sockopt_tcp_connection(int fd, const struct tb_config *cfg)
{
	set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (cfg->tcp_keepalive) {
		set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
		if (cfg->tcp_keepcnt > 0)
			set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, cfg->tcp_keepcnt);
		if (cfg->tcp_keepidle > 0)
			set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, cfg->tcp_keepidle);
		if (cfg->tcp_keepintvl > 0)
			set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, cfg->tcp_keepintvl);
	}
	if (cfg->tcp_user_timeout > 0)
		set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, cfg->tcp_user_timeout);
	if (cfg->tcp_socket_buffer > 0) {
		set_int(fd, SOL_SOCKET, SO_SNDBUF, cfg->tcp_socket_buffer);
		set_int(fd, SOL_SOCKET, SO_RCVBUF, cfg->tcp_socket_buffer);
	}
}

void sockopt_conn_opts(const struct tb_config *cfg, struct tcp_conn_opts *o)
{
	*o = (struct tcp_conn_opts){ .keepalive = cfg->tcp_keepalive,
				     .keepcnt = cfg->tcp_keepcnt,
				     .keepidle = cfg->tcp_keepidle,
				     .keepintvl = cfg->tcp_keepintvl,
				     .user_timeout = cfg->tcp_user_timeout,
				     .socket_buffer = cfg->tcp_socket_buffer };
}

bool sockopt_conn_opts_equal(const struct tcp_conn_opts *a, const struct tcp_conn_opts *b)
{
	return a->keepalive == b->keepalive && a->keepcnt == b->keepcnt && a->keepidle == b->keepidle &&
	       a->keepintvl == b->keepintvl && a->user_timeout == b->user_timeout &&
	       a->socket_buffer == b->socket_buffer;
}

void sockopt_tcp_listener(int fd, const struct tb_config *cfg)
{
	if (cfg->tcp_defer_accept)
		set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS);
}

int sockopt_backlog(const struct tb_config *cfg)
{
	return cfg->listen_backlog > 0 ? cfg->listen_backlog : 128;
}

bool sockopt_parse_mode(const char *text, unsigned *mode)
{
	char *end;
	if (!text || !*text)
		return false;
	errno = 0;
	unsigned long v = strtoul(text, &end, 8);
	if (errno != 0 || *end != '\0' || v > 0777)
		return false;
	*mode = (unsigned)v;
	return true;
}

bool sockopt_unix_socket_perms(const char *path, const struct tb_config *cfg, char *err, size_t errlen)
{
	unsigned mode = 0777;
	if (cfg->unix_socket_mode && *cfg->unix_socket_mode &&
	    !sockopt_parse_mode(cfg->unix_socket_mode, &mode)) {
		snprintf(err, errlen, "unix_socket_mode \"%s\" is not an octal mode", cfg->unix_socket_mode);
		return false;
	}
	if (chmod(path, (mode_t)mode) != 0) {
		snprintf(err, errlen, "cannot set the mode of %s: %s", path, strerror(errno));
		return false;
	}
	if (!cfg->unix_socket_group || !*cfg->unix_socket_group)
		return true;
	/* Start-up only, before the loop runs: a blocking lookup is fine. */
	struct group gr, *found = NULL;
	char buf[4096];
	if (getgrnam_r(cfg->unix_socket_group, &gr, buf, sizeof(buf), &found) != 0 || !found) {
		snprintf(err, errlen, "unix_socket_group: no group \"%s\"", cfg->unix_socket_group);
		return false;
	}
	if (chown(path, (uid_t)-1, found->gr_gid) != 0) {
		snprintf(err, errlen, "cannot give %s to group %s: %s", path, cfg->unix_socket_group,
			 strerror(errno));
		return false;
	}
	return true;
}
