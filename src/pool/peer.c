/* Cancel forwarding between peers. A request for another peer's key is
 * queued on that peer, at most pool_size of them in flight; each opens a
 * connection (TCP, or the peer's Unix socket), sends the 16-byte
 * CancelRequest with one hop less in the key, and closes once the peer has
 * closed (or after a timeout). Nothing waits for an answer: PostgreSQL sends
 * none to a cancel request either. */
#include "pool/peer.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config-t.h"
#include "core/list.h"
#include "core/log.h"
#include "core/util.h"
#include "net/resolve.h"
#include "pg/proto.h"
#include "pool/runtime.h"

#define PEER_TTL_MASK (3u << PEER_TTL_SHIFT)
#define PEER_CANCEL_TIMEOUT_SEC 10

enum fwd_state {
	FWD_WAITING,
	FWD_CONNECTING,
	FWD_SENDING,
	FWD_DONE
};

struct peer_fwd {
	struct worker *w;
	struct list_node node; /* w->peer_fwds */
	int peer_id;
	enum fwd_state state;
	int fd;
	struct event *ev;
	struct resolve_req *dns;
	unsigned char pkt[16];
	size_t sent;
};

void peer_stamp_key(struct worker *w, uint32_t *cancel_pid)
{
	int id = w->cfg ? w->cfg->peer_id : 0;
	if (id > 0)
		*cancel_pid = PEER_TTL_MASK | ((uint32_t)id << PEER_ID_SHIFT) | (*cancel_pid & 0xffffu);
}

uint32_t peer_local_pid(struct worker *w, uint32_t pid)
{
	return w->cfg && w->cfg->peer_id > 0 ? pid | PEER_TTL_MASK : pid;
}

static const struct peer_cfg *peer_find(struct worker *w, int id)
{
	for (size_t i = 0; i < w->cfg->npeers; i++)
		if (w->cfg->peers[i].id == id)
			return &w->cfg->peers[i];
	return NULL;
}

static int peer_limit(struct worker *w, const struct peer_cfg *pe)
{
	return pe->pool_size >= 0 ? pe->pool_size : w->cfg->default_pool_size;
}

static int in_flight(struct worker *w, int peer_id)
{
	int n = 0;
	struct list_node *it, *t;
	list_for_each_safe(it, t, &w->peer_fwds) {
		struct peer_fwd *f = list_entry(it, struct peer_fwd, node);
		if (f->peer_id == peer_id && (f->state == FWD_CONNECTING || f->state == FWD_SENDING))
			n++;
	}
	return n;
}

static void start_next(struct worker *w, int peer_id);

static void fwd_release(struct peer_fwd *f)
{
	resolve_cancel(f->dns);
	f->dns = NULL;
	if (f->ev)
		event_free(f->ev);
	f->ev = NULL;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct list_node *it, *t;
	list_for_each_safe(it, t, &w->peer_fwds) {
		struct peer_fwd *f = list_entry(it, struct peer_fwd, node);
		if (f->state == FWD_DONE) {
			list_del(&f->node);
			free(f);
		}
	}
	for (size_t i = 0; w->cfg && i < w->cfg->npeers; i++)
		start_next(w, w->cfg->peers[i].id);
	/* Requests for peers a reload removed. */
	list_for_each_safe(it, t, &w->peer_fwds) {
		struct peer_fwd *f = list_entry(it, struct peer_fwd, node);
		if (f->state == FWD_WAITING && !peer_find(w, f->peer_id)) {
			list_del(&f->node);
			free(f);
		}
	}
}

static void kick(struct worker *w)
{
	if (!w->peer_kick_ev)
		w->peer_kick_ev = event_new(w->base, -1, 0, on_kick, w);
	if (w->peer_kick_ev && !event_pending(w->peer_kick_ev, EV_TIMEOUT, NULL))
		event_active(w->peer_kick_ev, EV_TIMEOUT, 0);
}

/* Finished, one way or the other: freed by the next kick. */
static void fwd_free(struct peer_fwd *f)
{
	fwd_release(f);
	f->state = FWD_DONE;
	kick(f->w);
}

static void fwd_io(evutil_socket_t fd, short what, void *arg)
{
	struct peer_fwd *f = arg;
	struct worker *w = f->w;
	if (what & EV_TIMEOUT) {
		log_warning("cancel request forwarded to peer %d: timed out", f->peer_id);
		fwd_free(f);
		return;
	}
	if (f->sent == sizeof(f->pkt)) {
		/* The peer closes once it has the request. */
		fwd_free(f);
		return;
	}
	f->state = FWD_SENDING;
	ssize_t n = send(fd, f->pkt + f->sent, sizeof(f->pkt) - f->sent, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINPROGRESS) {
		log_warning("cancel request forwarded to peer %d failed: %s", f->peer_id, strerror(errno));
		fwd_free(f);
		return;
	}
	if (n > 0)
		f->sent += (size_t)n;
	if (f->sent == sizeof(f->pkt)) {
		struct timeval tv = { PEER_CANCEL_TIMEOUT_SEC, 0 };
		event_del(f->ev);
		event_assign(f->ev, w->base, fd, EV_READ, fwd_io, f);
		event_add(f->ev, &tv);
	}
}

static void fwd_connect(struct worker *w, struct peer_fwd *f, const struct sockaddr *addr, socklen_t len)
{
	f->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0 || (connect(f->fd, addr, len) != 0 && errno != EINPROGRESS)) {
		log_warning("cannot forward a cancel request to peer %d: %s", f->peer_id, strerror(errno));
		fwd_free(f);
		return;
	}
	f->ev = event_new(w->base, f->fd, EV_WRITE | EV_PERSIST, fwd_io, f);
	struct timeval tv = { PEER_CANCEL_TIMEOUT_SEC, 0 };
	event_add(f->ev, &tv);
}

static void on_resolved(const struct sockaddr *addr, socklen_t addrlen, const char *errmsg, void *arg)
{
	struct peer_fwd *f = arg;
	f->dns = NULL;
	if (!addr) {
		log_warning("cannot forward a cancel request to peer %d: %s", f->peer_id,
			    errmsg ? errmsg : "host not found");
		fwd_free(f);
		return;
	}
	fwd_connect(f->w, f, addr, addrlen);
}

static void fwd_launch(struct worker *w, struct peer_fwd *f, const struct peer_cfg *pe)
{
	f->state = FWD_CONNECTING;
	if (pe->host[0] == '/') {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", pe->host, pe->port);
		if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
			log_warning("peer %d: Unix socket path too long", f->peer_id);
			fwd_free(f);
			return;
		}
		fwd_connect(w, f, (struct sockaddr *)&sun, sizeof(sun));
		return;
	}
	f->dns = resolve_start(w->dns, pe->host, pe->port, on_resolved, f);
}

/* Start queued requests of a peer while its pool_size allows. */
static void start_next(struct worker *w, int peer_id)
{
	const struct peer_cfg *pe = w->cfg ? peer_find(w, peer_id) : NULL;
	struct list_node *it, *t;
	list_for_each_safe(it, t, &w->peer_fwds) {
		struct peer_fwd *f = list_entry(it, struct peer_fwd, node);
		if (f->peer_id != peer_id || f->state != FWD_WAITING)
			continue;
		if (!pe || in_flight(w, peer_id) >= peer_limit(w, pe))
			return;
		fwd_launch(w, f, pe);
	}
}

bool peer_route_cancel(struct worker *w, uint32_t pid, uint32_t key)
{
	if (!w->cfg || w->cfg->peer_id <= 0)
		return false;
	int id = (int)((pid >> PEER_ID_SHIFT) & PEER_ID_MASK);
	if (id == w->cfg->peer_id)
		return false;
	unsigned ttl = pid >> PEER_TTL_SHIFT;
	const struct peer_cfg *pe = peer_find(w, id);
	if (!pe || ttl == 0) {
		log_info("cancel request for peer %d dropped: %s", id,
			 pe ? "it was forwarded three times already" : "no such entry in [peers]");
		return true;
	}
	struct peer_fwd *f = xcalloc(1, sizeof(*f));
	f->w = w;
	f->peer_id = id;
	f->fd = -1;
	f->state = FWD_WAITING;
	uint32_t fwd_pid = (pid & ~PEER_TTL_MASK) | ((ttl - 1) << PEER_TTL_SHIFT);
	struct pbuf b;
	pbuf_init(&b, 16);
	proto_cancel_request(&b, fwd_pid, key);
	memcpy(f->pkt, b.data, sizeof(f->pkt));
	pbuf_free(&b);
	list_add_tail(&w->peer_fwds, &f->node);
	log_info("cancel request for peer %d: forwarding it there", id);
	kick(w);
	return true;
}

void peer_counts(struct worker *w, int peer_id, struct peer_counts *out)
{
	memset(out, 0, sizeof(*out));
	struct list_node *it, *t;
	list_for_each_safe(it, t, &w->peer_fwds) {
		struct peer_fwd *f = list_entry(it, struct peer_fwd, node);
		if (f->peer_id != peer_id)
			continue;
		if (f->state == FWD_WAITING)
			out->waiting++;
		else if (f->state == FWD_CONNECTING)
			out->connecting++;
		else if (f->state == FWD_SENDING)
			out->sending++;
	}
}

void peers_shutdown(struct worker *w)
{
	struct list_node *n;
	while ((n = list_first(&w->peer_fwds))) {
		struct peer_fwd *f = list_entry(n, struct peer_fwd, node);
		fwd_release(f);
		list_del(&f->node);
		free(f);
	}
	if (w->peer_kick_ev)
		event_free(w->peer_kick_ev);
	w->peer_kick_ev = NULL;
}
