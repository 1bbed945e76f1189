/* Which timeout applies to a client or a server (PgBouncer 1.25's
 * precedence), the query_wait_notify NOTICE, and the servers' timeouts,
 * applied by the janitor's pass (four times a second) instead of a timer
 * per connection. */
#include "pool/timeouts.h"

#include <stdint.h>

#include "core/config.h"
#include "pg/proto.h"
#include "pool/cancel.h"
#include "pool/client.h"
#include "pool/runtime.h"
#include "pool/server.h"

/* A set value wins, 0 included (query_wait_timeout, as PgBouncer's "_set"). */
static usec_t pick_set(usec_t own, usec_t otherwise)
{
	return own >= 0 ? own : otherwise;
}

/* Only a positive value wins: PgBouncer reads a [users] 0 as "not set". */
static usec_t pick_positive(usec_t own, usec_t otherwise)
{
	return own > 0 ? own : otherwise;
}

void timeouts_refresh(struct pool *p)
{
	struct worker *w = p->w;
	const struct tb_config *cfg = w->cfg;
	const struct user_cfg *u = config_find_user(cfg, p->user);
	struct pool_timeouts *out = &p->to;
	out->query = pick_positive(u ? u->query_timeout : -1, cfg->query_timeout);
	out->idle_xact = pick_positive(u ? u->idle_transaction_timeout : -1, cfg->idle_transaction_timeout);
	out->xact = pick_positive(u ? u->transaction_timeout : -1, cfg->transaction_timeout);
}

static uint32_t to_ms(usec_t t)
{
	if (t <= 0)
		return 0;
	usec_t ms = (t + 999) / 1000;
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

void timeouts_client_refresh(struct client *c)
{
	struct worker *w = client_worker(c);
	const struct tb_config *cfg = w->cfg;
	const struct user_cfg *u = c->user ? config_find_user(cfg, c->user) : NULL;
	usec_t wait = c->db ? pick_set(c->db->cfg->query_wait_timeout, cfg->query_wait_timeout)
			    : cfg->query_wait_timeout;
	c->wait_timeout_ms = to_ms(pick_set(u ? u->query_wait_timeout : -1, wait));
	c->idle_timeout_ms = to_ms(pick_positive(u ? u->client_idle_timeout : -1, cfg->client_idle_timeout));
}

/* query_wait_notify: tell a client that waits that it waits, once per
 * wait, in PgBouncer 1.25's words. A waiting client has no server writing
 * to it, so the NOTICE cannot land inside another message. */
bool timeouts_notify_waiting(struct client *c)
{
	struct pbuf b;
	pbuf_init(&b, 1024);
	proto_notice(&b, "00000", "No server connection available in postgres backend, client being queued");
	/* A notice that cannot be built is skipped; one that cannot be sent closed the client. */
	bool open = b.failed || client_send(c, b.data, b.len);
	pbuf_free(&b);
	c->wait_notified = true;
	return open;
}

static bool in_transaction(const struct server *s)
{
	return s->respq.tx_status == 'T' || s->respq.tx_status == 'E';
}

/* server_fast_close: a session whose server must go (RECONNECT, a reload
 * that changed its database, a shutdown waiting for servers) ends as soon
 * as it is outside a transaction with nothing owed. */
static bool fast_close_due(const struct server *s)
{
	struct worker *w = s->w;
	const struct client *c = s->client;
	if (!w->cfg->server_fast_close || c->mode != POOL_MODE_SESSION)
		return false;
	if (!s->retire && !s->pool->db->retired && w->shutdown_mode != SHUTDOWN_WAIT_FOR_SERVERS)
		return false;
	return s->ready && !respq_owed_rfq(&s->respq) && !in_transaction(s) && !c->fwd_remaining;
}

/* In PgBouncer's order: query_timeout, idle_transaction_timeout,
 * transaction_timeout, then server_fast_close; the client gets PgBouncer's 08P01 and text. */
static void expire_one(struct server *s, usec_t now)
{
	const struct pool_timeouts *t = &s->pool->to;
	struct client *c = s->client;
	bool running = respq_owed_rfq(&s->respq) > 0;
	if (t->query > 0 && running && now - s->query_start >= t->query) {
		/* Closing alone would let the backend run on until it next writes. */
		server_forward_cancel(s);
		client_close(c, "08P01", "query timeout");
	} else if (t->idle_xact > 0 && !running && s->ready && in_transaction(s) &&
		   now - s->last_rfq >= t->idle_xact) {
		client_close(c, "08P01", "idle transaction timeout");
	} else if (t->xact > 0 && (running || in_transaction(s)) && now - s->xact_start >= t->xact) {
		if (running)
			server_forward_cancel(s);
		client_close(c, "08P01", "transaction timeout");
	} else if (fast_close_due(s)) {
		s->retire = true;
		client_close(c, "08P01", "database configuration changed");
	}
}

void timeouts_expire_active(struct pool *p, usec_t now)
{
	struct list_node *n, *nt;
	list_for_each_safe(n, nt, &p->active_servers) {
		struct server *s = list_entry(n, struct server, node);
		if (s->client && !s->swallow)
			expire_one(s, now);
	}
}
