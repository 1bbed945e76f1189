/* A non-blocking socket, optionally TLS, with one libevent event whose
 * interest follows what the owner needs, a receive buffer and a pending
 * output queue. Forwarding sends straight from the source's receive buffer;
 * only what the kernel does not take is copied into the destination's queue,
 * and the owner stops reading the source until that queue drains. */
#ifndef TB_NET_SOCK_H
#define TB_NET_SOCK_H
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/mustcheck.h"

struct iobuf {
	size_t cap;
	size_t rpos, wpos;
	unsigned char data[];
};

enum sock_io {
	SOCK_IO_OK = 0,
	SOCK_IO_AGAIN,
	SOCK_IO_EOF,
	SOCK_IO_ERR,
};

/* What the sockets of one loop share (a field of struct worker): the text
 * of the most recent hard error and the spare input buffers. Input buffers
 * of the usual size that connections gave back are kept for the next
 * connection that reads: a connection holds its buffer only while it has
 * bytes in it (a client between transactions holds none), and taking one
 * back costs no malloc. At most SOCK_SPARE_MAX (256 KiB with 4 KiB buffers). */
#define SOCK_SPARE_MAX 64
struct sock_loop {
	char last_error[160];
	unsigned long last_tls_error;
	struct iobuf *spares[SOCK_SPARE_MAX];
	unsigned nspares;
};

struct sock {
	int fd;
	int err;                /* errno of the last hard error, or 0 */
	struct sock_loop *loop; /* set by sock_setup */
	SSL *ssl;
	struct event ev;
	short ev_flags; /* what is registered now; 0 = nothing */
	/* Bit-fields, so that with ev_flags they fill one word: every client
	 * and server embeds this. */
	bool ev_assigned : 1;
	bool want_read : 1;     /* the owner wants input */
	bool held : 1;          /* SUSPEND: no input however much the owner wants it */
	bool want_write_io : 1; /* a connect or a TLS step waits for writability */
	bool ssl_read_wants_write : 1;
	bool ssl_write_wants_read : 1;
	bool corked : 1; /* sock_write queues; sock_uncork sends it all at once */
	struct iobuf *in;
	struct iobuf *out;
};

/* Text of the most recent hard error on any socket of s's loop. A loop is
 * single threaded and callers read it right after the failing call, so one
 * buffer per loop saves ~100 bytes per connection. */
const char *sock_errmsg(const struct sock *s);
/* The OpenSSL error code of that error when it was a TLS one, else 0. */
unsigned long sock_tls_errcode(const struct sock *s);

void sock_setup(struct sock *s, struct sock_loop *loop, struct event_base *base, int fd, event_callback_fn cb,
		void *arg);
/* Frees the spare buffers (the loop's end). */
void sock_loop_free(struct sock_loop *loop);
/* Stop events, free TLS, close the fd. Idempotent. The buffers stay until
 * sock_free_buffers: a handler still running on a message in s->in after
 * its connection closed (the close runs inside it) reads valid memory, so
 * messages are handled in place, never copied out first. */
void sock_close(struct sock *s);
/* Free the receive buffer and the output queue: when the owner is freed. */
void sock_free_buffers(struct sock *s);
/* sock_close, but the fd is handed to the caller instead of closed (-1 if none). */
int sock_detach(struct sock *s);
void sock_set_read(struct sock *s, bool on);
void sock_set_write_io(struct sock *s, bool on);
/* SUSPEND: stop reading (output still drains) until released. */
void sock_hold(struct sock *s, bool on);

/* Read what is available into s->in, growing it to at least 'need' bytes of
 * room when the caller waits for a whole message. */
enum sock_io sock_fill(struct sock *s, size_t bufsize, size_t need);
/* Between these, writes are only queued, then leave in one send: replies
 * the pooler builds in steps (a SCRAM final and the login reply after it)
 * cost one system call, not one each. sock_uncork is false on a hard error. */
void sock_cork(struct sock *s);
TB_MUSTCHECK bool sock_uncork(struct sock *s);
/* Send now what the kernel takes, queue the rest. False on a hard error. */
TB_MUSTCHECK bool sock_write(struct sock *s, const void *data, size_t len);
/* Try to send the queue. OK when it is empty, AGAIN while some remains. */
enum sock_io sock_flush(struct sock *s);
bool sock_has_output(const struct sock *s);
/* After a read with TLS, decrypted bytes may wait inside OpenSSL where
 * epoll cannot see them; this re-arms the read callback in that case. */
void sock_kick_pending(struct sock *s);
/* Drop empty buffers so idle connections hold no packet memory. */
void sock_trim(struct sock *s);

/* TLS on an established socket. AGAIN means call again on the next event. */
enum sock_io sock_tls_handshake(struct sock *s);

static inline size_t iobuf_len(const struct iobuf *b)
{
	return b ? b->wpos - b->rpos : 0;
}

static inline unsigned char *iobuf_head(const struct iobuf *b)
{
	return (unsigned char *)b->data + b->rpos;
}

static inline void iobuf_consume(struct iobuf *b, size_t n)
{
	b->rpos += n;
	if (b->rpos == b->wpos)
		b->rpos = b->wpos = 0;
}
#endif
