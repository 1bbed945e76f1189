#include "net/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sockopt.h"

#define MAX_LISTENERS 16
#define ACCEPT_BATCH 64

struct listener {
	int fd;
	bool is_unix;
	char *unix_path;
	struct event *ev;
};

static struct listener listeners[MAX_LISTENERS];
static size_t nlisteners;
static listener_accept_cb accept_cb;
static bool paused;
static bool held;
static struct event *resume_ev;

static void on_accept(evutil_socket_t fd, short what, void *arg);
/* The connection options the TCP listeners were given (see listen_tcp). */
static struct tcp_conn_opts inherited;
static bool have_inherited;

bool listeners_give_options(const struct tb_config *cfg)
{
	struct tcp_conn_opts want;
	sockopt_conn_opts(cfg, &want);
	return have_inherited && sockopt_conn_opts_equal(&inherited, &want);
}

static void resume_later(void)
{
	/* Out of descriptors: accepting again at once would spin. */
	struct timeval tv = { 0, 200000 };
	listeners_pause(true);
	if (resume_ev)
		event_add(resume_ev, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	listeners_pause(false);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	for (int i = 0; i < ACCEPT_BATCH && !paused; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warning("accept failed: %s; pausing new connections briefly",
					    strerror(errno));
				resume_later();
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				   errno != ECONNABORTED) {
				log_warning("accept failed: %s", strerror(errno));
			}
			return;
		}
		accept_cb(fd, l->is_unix ? NULL : (struct sockaddr *)&ss, len, l->is_unix);
	}
}

static bool add_listener(struct event_base *base, int fd, bool is_unix, const char *path, char *err,
			 size_t errlen)
{
	if (nlisteners >= MAX_LISTENERS) {
		snprintf(err, errlen, "too many listen addresses (at most %d)", MAX_LISTENERS);
		close(fd);
		return false;
	}
	struct listener *l = &listeners[nlisteners++];
	l->fd = fd;
	l->is_unix = is_unix;
	l->unix_path = path ? xstrdup(path) : NULL;
	l->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, l);
	event_add(l->ev, NULL);
	return true;
}

static bool listen_tcp(struct event_base *base, const struct tb_config *cfg, const char *host, int port,
		       char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	bool any = strcmp(host, "*") == 0;
	/* Start-up only: the loop is not running yet, so a blocking lookup is fine. */
	int rc = getaddrinfo(any ? NULL : host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve listen_addr %s: %s", host, gai_strerror(rc));
		return false;
	}
	bool ok = true;
	for (struct addrinfo *a = res; a && ok; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (cfg->so_reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
			snprintf(err, errlen, "so_reuseport: %s", strerror(errno));
			close(fd);
			ok = false;
			break;
		}
		if (a->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		sockopt_tcp_listener(fd, cfg);
		/* Linux copies TCP_NODELAY, the keepalive settings, TCP_USER_TIMEOUT
		 * and the buffer sizes from the listening socket to the sockets it
		 * accepts: set once here, they cost no system call per connection. */
		sockopt_tcp_connection(fd, cfg);
		sockopt_conn_opts(cfg, &inherited);
		have_inherited = true;
		if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, sockopt_backlog(cfg)) < 0) {
			char addr[INET6_ADDRSTRLEN] = "?";
			getnameinfo(a->ai_addr, a->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
			snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
			close(fd);
			ok = false;
			break;
		}
		ok = add_listener(base, fd, false, NULL, err, errlen);
	}
	freeaddrinfo(res);
	return ok;
}

/* A socket file left by a crashed instance is removed; a live one is an error. */
static bool clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return true;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy_ok(sun.sun_path, path, sizeof(sun.sun_path));
	bool live = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	if (fd >= 0)
		close(fd);
	if (live) {
		snprintf(err, errlen, "another process is listening on %s", path);
		return false;
	}
	unlink(path);
	return true;
}

static bool listen_unix(struct event_base *base, const struct tb_config *cfg, const char *dir, int port,
			char *err, size_t errlen)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", dir, port);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix_socket_dir %s is too long", dir);
		return false;
	}
	if (!clear_stale_socket(sun.sun_path, err, errlen))
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, sockopt_backlog(cfg)) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (!sockopt_unix_socket_perms(sun.sun_path, cfg, err, errlen)) {
		close(fd);
		unlink(sun.sun_path);
		return false;
	}
	return add_listener(base, fd, true, sun.sun_path, err, errlen);
}

bool listeners_open(struct event_base *base, const struct tb_config *cfg, listener_accept_cb cb, char *err,
		    size_t errlen)
{
	accept_cb = cb;
	if (!resume_ev)
		resume_ev = evtimer_new(base, on_resume, NULL);
	if (cfg->listen_addr && *cfg->listen_addr) {
		char *list = xstrdup(cfg->listen_addr);
		char *save = NULL;
		bool ok = true;
		for (char *h = strtok_r(list, ", ", &save); h && ok; h = strtok_r(NULL, ", ", &save))
			ok = listen_tcp(base, cfg, h, cfg->listen_port, err, errlen);
		free(list);
		if (!ok)
			return false;
	}
	if (cfg->unix_socket_dir && *cfg->unix_socket_dir &&
	    !listen_unix(base, cfg, cfg->unix_socket_dir, cfg->listen_port, err, errlen))
		return false;
	if (nlisteners == 0) {
		snprintf(err, errlen, "no listen_addr and no unix_socket_dir: nothing to listen on");
		return false;
	}
	return true;
}

void listeners_pause(bool pause)
{
	if (pause == paused || (!pause && held))
		return;
	paused = pause;
	for (size_t i = 0; i < nlisteners; i++) {
		if (pause)
			event_del(listeners[i].ev);
		else
			event_add(listeners[i].ev, NULL);
	}
}

size_t listeners_count(void)
{
	return nlisteners;
}

void listeners_hold(bool hold)
{
	if (hold) {
		listeners_pause(true);
		held = true;
	} else {
		held = false;
		listeners_pause(false);
	}
}

void listeners_close_tcp(void)
{
	size_t kept = 0;
	for (size_t i = 0; i < nlisteners; i++) {
		struct listener *l = &listeners[i];
		if (l->is_unix) {
			listeners[kept++] = *l;
			continue;
		}
		/* Closing a listener resets the connections in its accept queue;
		 * with so_reuseport the kernel may have queued some here that
		 * arrived just before. Take them first: they count as arrived
		 * before the shutdown. */
		on_accept(l->fd, EV_READ, l);
		event_free(l->ev);
		close(l->fd);
	}
	nlisteners = kept;
}

void listeners_close(void)
{
	for (size_t i = 0; i < nlisteners; i++) {
		struct listener *l = &listeners[i];
		event_free(l->ev);
		close(l->fd);
		if (l->unix_path) {
			unlink(l->unix_path);
			free(l->unix_path);
		}
	}
	nlisteners = 0;
	if (resume_ev) {
		event_free(resume_ev);
		resume_ev = NULL;
	}
}
