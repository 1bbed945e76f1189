/* Cancel forwarding: each CancelRequest the pooler sends a backend goes on
 * a non-blocking connection of its own, followed on the loop until the
 * backend closes it (it has handled the cancel) or 10 s pass. */
#include "pool/cancel.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "pg/proto.h"
#include "pool/runtime.h"
#include "pool/server_priv.h"

struct cancel_req {
	struct worker *w;
	struct list_node node;
	struct server *server; /* held back from reuse until this is handled; NULL once closed */
	int requester_fd;      /* the client's cancel connection, closed once the server is done, or -1 */
	struct event *ev;
	int fd;
	unsigned char pkt[16];
	size_t sent;
};

static void cancel_done(struct cancel_req *cr)
{
	list_del(&cr->node);
	if (cr->requester_fd >= 0)
		close(cr->requester_fd);
	if (cr->server) {
		server_log(LOG_LVL_DEBUG, cr->server, "cancel request handled by the server");
		server_cancel_finished(cr->server);
	}
	event_free(cr->ev);
	close(cr->fd);
	free(cr);
}

void server_cancels_shutdown(struct worker *w)
{
	struct list_node *n;
	while ((n = list_first(&w->cancels))) {
		struct cancel_req *cr = list_entry(n, struct cancel_req, node);
		cr->server = NULL;
		cancel_done(cr);
	}
}

void server_cancels_forget(struct server *s)
{
	struct worker *w = s->w;
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->cancels) {
		struct cancel_req *cr = list_entry(n, struct cancel_req, node);
		if (cr->server == s)
			cr->server = NULL;
	}
	s->cancels = 0;
}

static void cancel_io(evutil_socket_t fd, short what, void *arg)
{
	struct cancel_req *cr = arg;
	struct worker *w = cr->w;
	if (what & EV_TIMEOUT) {
		log_warning("cancel request to server timed out");
		cancel_done(cr);
		return;
	}
	if (what & EV_READ) {
		/* The server closes the connection once it has handled the request. */
		cancel_done(cr);
		return;
	}
	ssize_t n = send(fd, cr->pkt + cr->sent, sizeof(cr->pkt) - cr->sent, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINPROGRESS) {
		log_warning("cancel request to server failed: %s", strerror(errno));
		cancel_done(cr);
		return;
	}
	if (n > 0)
		cr->sent += (size_t)n;
	if (cr->sent == sizeof(cr->pkt)) {
		struct timeval tv = { 10, 0 };
		event_del(cr->ev);
		event_assign(cr->ev, w->base, fd, EV_READ, cancel_io, cr);
		event_add(cr->ev, &tv);
	}
}

void server_forward_cancel(struct server *s)
{
	server_forward_cancel_for(s, -1);
}

void server_forward_cancel_for(struct server *s, int requester_fd)
{
	struct worker *w = s->w;
	int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&s->addr, s->addrlen) != 0 && errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		if (requester_fd >= 0)
			close(requester_fd);
		return;
	}
	struct cancel_req *cr = xcalloc(1, sizeof(*cr));
	cr->w = w;
	cr->fd = fd;
	cr->requester_fd = requester_fd;
	cr->server = s;
	s->cancels++;
	list_add_tail(&w->cancels, &cr->node);
	struct pbuf b;
	pbuf_init(&b, 16);
	proto_cancel_request(&b, s->backend_pid, s->backend_key);
	memcpy(cr->pkt, b.data, sizeof(cr->pkt));
	pbuf_free(&b);
	cr->ev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, cancel_io, cr);
	struct timeval tv = { 10, 0 };
	event_add(cr->ev, &tv);
	server_log(LOG_LVL_INFO, s, "forwarding cancel request");
}
