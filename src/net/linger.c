#include "net/linger.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/list.h"

struct lingering_sock {
	struct linger_set *set;
	struct list_node node;
	struct event *ev;
	int fd;
};

void linger_set_init(struct linger_set *ls)
{
	list_init(&ls->socks);
	ls->n = 0;
}

static void linger_free(struct lingering_sock *l)
{
	list_del(&l->node);
	l->set->n--;
	event_free(l->ev);
	close(l->fd);
	free(l);
}

static void linger_io(evutil_socket_t fd, short what, void *arg)
{
	struct lingering_sock *l = arg;
	if (what & EV_TIMEOUT) {
		linger_free(l);
		return;
	}
	unsigned char scratch[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		linger_free(l); /* EOF or a hard error: the peer is done */
		return;
	}
}

void linger_close(struct linger_set *ls, struct event_base *base, int fd)
{
	if (fd < 0)
		return;
	struct lingering_sock *l = ls->n < LINGER_MAX ? calloc(1, sizeof(*l)) : NULL;
	if (l)
		l->ev = event_new(base, fd, EV_READ | EV_PERSIST, linger_io, l);
	if (!l || !l->ev || shutdown(fd, SHUT_WR) != 0) {
		if (l && l->ev)
			event_free(l->ev);
		free(l);
		close(fd);
		return;
	}
	l->fd = fd;
	l->set = ls;
	list_add_tail(&ls->socks, &l->node);
	ls->n++;
	struct timeval tv = { LINGER_TIMEOUT_SEC, 0 };
	event_add(l->ev, &tv);
}

void linger_shutdown(struct linger_set *ls)
{
	struct list_node *n;
	while ((n = list_first(&ls->socks)))
		linger_free(list_entry(n, struct lingering_sock, node));
}

unsigned linger_count(const struct linger_set *ls)
{
	return ls->n;
}
