/* SV_DRAIN: reading and discarding the answers a departed client was owed,
 * up to a marker query of the pooler's own, so none reaches the next client. */
#include "pool/server_drain.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "pg/proto.h"
#include "pool/cancel.h"
#include "pool/server.h"
#include "pool/server_priv.h"

bool server_drain_done(const struct server *s)
{
	return s->drain_step == 3 && s->fwd_remaining == 0 && s->cancels == 0;
}

/* The text of the marker query's one value: random, so no departed client
 * can forge the row that ends a drain. */
static void drain_marker_text(const struct server *s, char *buf, size_t len)
{
	snprintf(buf, len, "tokenbouncer-drain-%016llx", (unsigned long long)s->drain_marker);
}

/* The client left with answers owed: read them and throw them away, so not
 * one byte of them can reach the next client. Counting ReadyForQuery is not
 * exact (after an extended-protocol error the backend skips every message up
 * to Sync, Queries included), so the pooler sends a Sync, a ROLLBACK and a
 * query of its own with a random value, and the drain ends at that query's
 * answer. An abandoned COPY IN gets a CopyFail first. Bounded by
 * SERVER_DRAIN_MAX_BYTES and SERVER_DRAIN_TIMEOUT. */
void server_drain_start(struct server *s, bool run_reset)
{
	struct pbuf b;
	pbuf_init(&b, 256);
	if (s->respq.copy_in)
		proto_copy_fail(&b, "client disconnected during COPY");
	proto_sync(&b);
	/* What a backend does when its client disconnects: an open transaction
	 * is rolled back, never committed. Also lets the marker run in a
	 * transaction that failed. */
	proto_query(&b, "ROLLBACK");
	if (!random_bytes(&s->drain_marker, sizeof(s->drain_marker))) {
		pbuf_free(&b);
		server_close(s, "no random bytes for the drain marker");
		return;
	}
	char sql[80], marker[48];
	drain_marker_text(s, marker, sizeof(marker));
	snprintf(sql, sizeof(sql), "SELECT '%s'", marker);
	proto_query(&b, sql);
	s->drained = 0;
	s->drain_step = 1;
	s->drain_reset = run_reset;
	server_set_state(s, SV_DRAIN, &s->pool->used_servers);
	if (!server_send_pbuf(s, &b))
		return;
	sock_set_read(&s->sock, true);
	server_log(LOG_LVL_DEBUG, s, "draining the answers owed to a departed client");
	if (s->sock.in && iobuf_len(s->sock.in) > 0)
		server_process(s);
}

/* Called when a cancel request for this backend has been handled. */
void server_cancel_finished(struct server *s)
{
	if (s->cancels > 0)
		s->cancels--;
	if (s->state == SV_DRAIN && server_drain_done(s))
		server_finish_release(s, s->drain_reset);
}

void server_expire_drain(struct server *s, usec_t now)
{
	if (s->state != SV_DRAIN || now - s->state_since < SERVER_DRAIN_TIMEOUT)
		return;
	if (s->drain_step < 3)
		server_forward_cancel(s);
	server_close(s, "answers owed to a departed client did not arrive in time");
}

/* Is this DataRow the marker query's row? */
static bool is_marker_row(const struct server *s, const unsigned char *body, size_t len)
{
	char marker[48];
	drain_marker_text(s, marker, sizeof(marker));
	size_t mlen = strlen(marker);
	struct msg_reader r;
	reader_init(&r, body, len);
	if (reader_u16(&r) != 1 || reader_u32(&r) != mlen)
		return false;
	const unsigned char *v = reader_bytes(&r, mlen);
	return v && reader_done(&r) && memcmp(v, marker, mlen) == 0;
}

/* One whole small message during the drain: ParameterStatus is recorded (the
 * departed client's SETs changed the session, and the next client's
 * parameter sync must know it); the marker row and its ReadyForQuery end it. */
static void drain_message(struct server *s, char type, const unsigned char *body, size_t len)
{
	if (type == 'S') {
		server_record_param(s, body, len, false);
	} else if (type == 'D' && s->drain_step == 1 && is_marker_row(s, body, len)) {
		s->drain_step = 2;
	} else if (type == 'Z' && s->drain_step == 2) {
		s->drain_step = 3;
		respq_reset(&s->respq);
		s->respq.tx_status = len > 0 ? (char)body[0] : 'I';
	}
}

/* SV_DRAIN: the same walk as forward_to_client, but every byte is dropped. */
void server_drain_input(struct server *s)
{
	struct iobuf *in = s->sock.in;
	s->need = 0;
	while (s->state == SV_DRAIN && s->drain_step < 3 && in && iobuf_len(in) > 0) {
		size_t avail = iobuf_len(in);
		if (s->drained > SERVER_DRAIN_MAX_BYTES) {
			server_forward_cancel(s);
			server_close(s, "more than %u bytes owed to a departed client",
				     SERVER_DRAIN_MAX_BYTES);
			return;
		}
		if (s->fwd_remaining) {
			size_t n = avail < s->fwd_remaining ? avail : s->fwd_remaining;
			iobuf_consume(in, n);
			s->fwd_remaining -= (uint32_t)n;
			s->drained += n;
			continue;
		}
		struct pg_hdr h;
		char err[160];
		enum proto_status st = proto_peek_header(iobuf_head(in), avail, 0x7fffffff, &h, err,
							 sizeof(err));
		if (st == PROTO_ERROR) {
			server_close(s, "protocol error while draining: %s", err);
			return;
		}
		if (st == PROTO_NEED_MORE) {
			s->need = PROTO_HDR_LEN;
			break;
		}
		if (h.type == 'G' || h.type == 'W') {
			server_close(s, "a departed client's pipeline started a COPY");
			return;
		}
		/* Small messages the drain must read are taken whole; the rest stream. */
		if (h.type == 'S' || h.type == 'Z' || (h.type == 'D' && h.len <= 128)) {
			if (avail < h.len + 1) {
				s->need = h.len + 1;
				break;
			}
			drain_message(s, h.type, iobuf_head(in) + PROTO_HDR_LEN, h.len - 4);
			iobuf_consume(in, h.len + 1);
			s->drained += h.len + 1;
			continue;
		}
		iobuf_consume(in, PROTO_HDR_LEN);
		s->drained += PROTO_HDR_LEN;
		s->fwd_remaining = h.len - 4;
	}
	if (s->state == SV_DRAIN && server_drain_done(s))
		server_finish_release(s, s->drain_reset);
}
