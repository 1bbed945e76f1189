#include "net/sock.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"

const char *sock_errmsg(const struct sock *s)
{
	return s->loop ? s->loop->last_error : "";
}

unsigned long sock_tls_errcode(const struct sock *s)
{
	return s->loop ? s->loop->last_tls_error : 0;
}

static void set_error(struct sock *s, int err, const char *what)
{
	s->err = err ? err : EIO;
	struct sock_loop *l = s->loop;
	if (!l)
		return;
	l->last_tls_error = 0;
	if (what)
		snprintf(l->last_error, sizeof(l->last_error), "%s", what);
	else
		snprintf(l->last_error, sizeof(l->last_error), "%s", strerror(s->err));
}

static void set_tls_error(struct sock *s, const char *op)
{
	unsigned long e = ERR_get_error();
	struct sock_loop *l = s->loop;
	if (!l) {
		ERR_clear_error();
		s->err = EPROTO;
		return;
	}
	l->last_tls_error = e;
	if (e) {
		char buf[80];
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(l->last_error, sizeof(l->last_error), "TLS %s failed: %s", op, buf);
	} else {
		snprintf(l->last_error, sizeof(l->last_error), "TLS %s failed: %s", op,
			 errno ? strerror(errno) : "connection closed");
	}
	ERR_clear_error();
	s->err = EPROTO;
}

void sock_setup(struct sock *s, struct sock_loop *loop, struct event_base *base, int fd, event_callback_fn cb,
		void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->loop = loop;
	event_assign(&s->ev, base, fd, EV_READ | EV_PERSIST, cb, arg);
	s->ev_assigned = true;
}

static void sock_update(struct sock *s)
{
	if (s->fd < 0 || !s->ev_assigned)
		return;
	short want = 0;
	if ((s->want_read || s->ssl_write_wants_read) && !s->held)
		want |= EV_READ;
	if (s->want_write_io || s->ssl_read_wants_write || (iobuf_len(s->out) > 0 && !s->corked))
		want |= EV_WRITE;
	if (want == s->ev_flags)
		return;
	struct event_base *base = event_get_base(&s->ev);
	event_callback_fn cb = event_get_callback(&s->ev);
	void *arg = event_get_callback_arg(&s->ev);
	event_del(&s->ev);
	s->ev_flags = want;
	if (!want)
		return;
	event_assign(&s->ev, base, s->fd, (short)(want | EV_PERSIST), cb, arg);
	event_add(&s->ev, NULL);
}

void sock_set_read(struct sock *s, bool on)
{
	s->want_read = on;
	sock_update(s);
	if (on)
		sock_kick_pending(s);
}

void sock_hold(struct sock *s, bool on)
{
	s->held = on;
	sock_update(s);
	if (!on)
		sock_kick_pending(s);
}

void sock_set_write_io(struct sock *s, bool on)
{
	s->want_write_io = on;
	sock_update(s);
}

void sock_kick_pending(struct sock *s)
{
	if (s->ssl && s->want_read && !s->held && s->ev_flags && SSL_pending(s->ssl) > 0)
		event_active(&s->ev, EV_READ, 0);
}

#define SPARE_CAP_MAX 65536 /* a buffer grown for a big message is freed */

static struct iobuf *spare_take(struct sock_loop *l, size_t cap)
{
	while (l && l->nspares) {
		struct iobuf *b = l->spares[--l->nspares];
		if (b->cap == cap) {
			b->rpos = b->wpos = 0;
			return b;
		}
		free(b); /* pkt_buf changed since */
	}
	return NULL;
}

static void in_release(struct sock_loop *l, struct iobuf *b)
{
	if (b && l && l->nspares < SOCK_SPARE_MAX && b->cap <= SPARE_CAP_MAX)
		l->spares[l->nspares++] = b;
	else
		free(b);
}

void sock_loop_free(struct sock_loop *l)
{
	while (l->nspares)
		free(l->spares[--l->nspares]);
}

int sock_detach(struct sock *s)
{
	int fd = s->fd;
	s->fd = -1;
	sock_close(s);
	return fd;
}

void sock_close(struct sock *s)
{
	if (s->ev_assigned) {
		event_del(&s->ev);
		s->ev_assigned = false;
	}
	s->ev_flags = 0;
	if (s->ssl) {
		/* One non-blocking close_notify attempt; the peer may already be gone. */
		SSL_shutdown(s->ssl);
		ERR_clear_error();
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

void sock_free_buffers(struct sock *s)
{
	in_release(s->loop, s->in);
	free(s->out);
	s->in = s->out = NULL;
}

/* Make room for 'room' more bytes after wpos, compacting or growing. */
static struct iobuf *iobuf_make_room(struct iobuf *b, size_t bufsize, size_t room)
{
	if (!b) {
		size_t cap = bufsize > room ? bufsize : room;
		b = xmalloc(sizeof(*b) + cap);
		b->cap = cap;
		b->rpos = b->wpos = 0;
		return b;
	}
	if (b->cap - b->wpos >= room)
		return b;
	size_t len = b->wpos - b->rpos;
	if (b->rpos > 0) {
		memmove(b->data, b->data + b->rpos, len);
		b->rpos = 0;
		b->wpos = len;
	}
	if (b->cap - b->wpos >= room)
		return b;
	size_t cap = len + room;
	b = xrealloc(b, sizeof(*b) + cap);
	b->cap = cap;
	return b;
}

static enum sock_io tls_read(struct sock *s, unsigned char *dst, size_t room, size_t *got)
{
	size_t n = 0;
	ERR_clear_error();
	int r = SSL_read_ex(s->ssl, dst, room, &n);
	s->ssl_read_wants_write = false;
	if (r == 1) {
		*got = n;
		return SOCK_IO_OK;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return SOCK_IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->ssl_read_wants_write = true;
		return SOCK_IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return SOCK_IO_EOF;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 && ERR_peek_error() == 0)
			return SOCK_IO_EOF;
		/* fall through */
	default:
		set_tls_error(s, "read");
		return SOCK_IO_ERR;
	}
}

enum sock_io sock_fill(struct sock *s, size_t bufsize, size_t need)
{
	size_t have = iobuf_len(s->in);
	size_t room = need > have ? need - have : 0;
	if (room < bufsize / 2)
		room = bufsize / 2 > 0 ? bufsize / 2 : 1024;
	if (!s->in && room <= bufsize)
		s->in = spare_take(s->loop, bufsize);
	s->in = iobuf_make_room(s->in, bufsize, room);
	unsigned char *dst = s->in->data + s->in->wpos;
	size_t space = s->in->cap - s->in->wpos;
	size_t got = 0;
	enum sock_io rc;
	if (s->ssl) {
		rc = tls_read(s, dst, space, &got);
		sock_update(s);
	} else {
		ssize_t r = recv(s->fd, dst, space, 0);
		if (r > 0) {
			got = (size_t)r;
			rc = SOCK_IO_OK;
		} else if (r == 0) {
			rc = SOCK_IO_EOF;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			rc = SOCK_IO_AGAIN;
		} else {
			set_error(s, errno, NULL);
			rc = SOCK_IO_ERR;
		}
	}
	s->in->wpos += got;
	return rc;
}

/* Send from data; returns bytes taken, or -1 on a hard error. */
static ssize_t raw_send(struct sock *s, const void *data, size_t len)
{
	if (s->ssl) {
		size_t n = 0;
		ERR_clear_error();
		int r = SSL_write_ex(s->ssl, data, len, &n);
		s->ssl_write_wants_read = false;
		if (r == 1)
			return (ssize_t)n;
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
			return 0;
		case SSL_ERROR_WANT_READ:
			s->ssl_write_wants_read = true;
			return 0;
		default:
			set_tls_error(s, "write");
			return -1;
		}
	}
	ssize_t r = send(s->fd, data, len, MSG_NOSIGNAL);
	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	set_error(s, errno, NULL);
	return -1;
}

bool sock_write(struct sock *s, const void *data, size_t len)
{
	if (s->fd < 0)
		return false;
	size_t sent = 0;
	if (iobuf_len(s->out) == 0 && len > 0 && !s->corked) {
		ssize_t r = raw_send(s, data, len);
		if (r < 0)
			return false;
		sent = (size_t)r;
	}
	if (sent < len) {
		s->out = iobuf_make_room(s->out, len - sent, len - sent);
		memcpy(s->out->data + s->out->wpos, (const unsigned char *)data + sent, len - sent);
		s->out->wpos += len - sent;
	}
	sock_update(s);
	return true;
}

enum sock_io sock_flush(struct sock *s)
{
	while (iobuf_len(s->out) > 0) {
		ssize_t r = raw_send(s, iobuf_head(s->out), iobuf_len(s->out));
		if (r < 0)
			return SOCK_IO_ERR;
		if (r == 0)
			break;
		iobuf_consume(s->out, (size_t)r);
	}
	bool empty = iobuf_len(s->out) == 0;
	if (empty && s->out && s->out->cap > 65536) {
		free(s->out);
		s->out = NULL;
	}
	sock_update(s);
	return empty ? SOCK_IO_OK : SOCK_IO_AGAIN;
}

void sock_cork(struct sock *s)
{
	s->corked = true;
}

bool sock_uncork(struct sock *s)
{
	if (!s->corked)
		return true;
	s->corked = false;
	if (s->fd < 0)
		return false;
	enum sock_io r = sock_flush(s);
	if (r == SOCK_IO_OK && s->out) {
		/* The queue only held this burst: an idle client keeps no buffer. */
		free(s->out);
		s->out = NULL;
	}
	return r != SOCK_IO_ERR;
}

bool sock_has_output(const struct sock *s)
{
	return iobuf_len(s->out) > 0;
}

void sock_trim(struct sock *s)
{
	if (s->in && iobuf_len(s->in) == 0) {
		in_release(s->loop, s->in);
		s->in = NULL;
	}
	if (s->out && iobuf_len(s->out) == 0) {
		free(s->out);
		s->out = NULL;
	}
}

enum sock_io sock_tls_handshake(struct sock *s)
{
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->want_write_io = false;
		sock_update(s);
		return SOCK_IO_OK;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->want_write_io = false;
		sock_update(s);
		return SOCK_IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->want_write_io = true;
		sock_update(s);
		return SOCK_IO_AGAIN;
	default:
		set_tls_error(s, "handshake");
		return SOCK_IO_ERR;
	}
}
