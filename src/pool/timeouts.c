/* The timeouts of a pool's clients and servers, applied by the janitor's
 * pass (four times a second) instead of a timer per connection. */
#include "pool/timeouts.h"

#include <stdio.h>

#include "core/config.h"
#include "pg/proto.h"
#include "pool/client.h"
#include "pool/runtime.h"
#include "pool/cancel.h"
#include "pool/server.h"

static usec_t pick(usec_t user, usec_t global)
{
	return user >= 0 ? user : global;
}

void timeouts_refresh(struct pool *p)
{
	const struct tb_config *cfg = rt.cfg;
	const struct user_cfg *u = config_find_user(cfg, p->user);
	struct pool_timeouts *out = &p->to;
	out->query_wait = pick(p->db->cfg->query_wait_timeout, cfg->query_wait_timeout);
	out->query = cfg->query_timeout;
	out->idle_xact = cfg->idle_transaction_timeout;
	out->xact = cfg->transaction_timeout;
	out->client_idle = cfg->client_idle_timeout;
	if (!u)
		return;
	out->query_wait = pick(u->query_wait_timeout, out->query_wait);
	out->query = pick(u->query_timeout, out->query);
	out->idle_xact = pick(u->idle_transaction_timeout, out->idle_xact);
	out->xact = pick(u->transaction_timeout, out->xact);
	out->client_idle = pick(u->client_idle_timeout, out->client_idle);
}

/* query_wait_notify: tell a client that waits that it waits, once per wait,
 * as PgBouncer 1.25 does. A waiting client has no server writing to it, so
 * the NOTICE cannot land inside another message. */
bool timeouts_notify_waiting(struct client *c, usec_t now)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "no server connection available yet for pool \"%s\" of alias "
		 "\"%s\" after %lld s; still waiting (query_wait_notify)", c->pool->user, c->db->name,
		 (long long)((now - c->state_since) / USEC_PER_SEC));
	struct pbuf b;
	pbuf_init(&b, 1024);
	proto_notice(&b, "00000", msg);
	/* A notice that cannot be built is skipped; one that cannot be sent closed the client. */
	bool open = b.failed || client_send(c, b.data, b.len);
	pbuf_free(&b);
	c->wait_notified = true;
	return open;
}

static bool in_transaction(const struct server *s)
{
	return s->flow.tx_status == 'T' || s->flow.tx_status == 'E';
}

/* server_fast_close: a session whose server must go (RECONNECT, a reload
 * that changed its database, a shutdown waiting for servers) ends as soon
 * as it is outside a transaction with nothing owed. */
static bool fast_close_due(const struct server *s)
{
	const struct client *c = s->client;
	if (!rt.cfg->server_fast_close || c->mode != POOL_MODE_SESSION)
		return false;
	if (!s->retire && !s->pool->db->retired && rt.shutdown_mode != SHUTDOWN_WAIT_FOR_SERVERS)
		return false;
	return s->ready && !s->flow.owed_rfq && !in_transaction(s) && !c->fwd_remaining;
}

static void expire_one(struct server *s, usec_t now)
{
	const struct pool_timeouts *t = &s->pool->to;
	struct client *c = s->client;
	bool running = s->flow.owed_rfq > 0;
	if (t->query > 0 && running && now - s->query_start >= t->query) {
		/* Closing alone would let the backend run on until it next writes. */
		server_forward_cancel(s);
		client_close(c, "57014", "query_timeout: canceling statement due to query_timeout");
	} else if (t->xact > 0 && (running || in_transaction(s)) && now - s->xact_start >= t->xact) {
		if (running)
			server_forward_cancel(s);
		client_close(c, "25P04", "transaction_timeout: terminating connection due to "
			     "transaction timeout");
	} else if (t->idle_xact > 0 && !running && s->ready && in_transaction(s) &&
		   now - s->last_rfq >= t->idle_xact) {
		client_close(c, "25P03", "idle_transaction_timeout: idle in transaction for too long");
	} else if (fast_close_due(s)) {
		s->retire = true;
		client_close(c, "08P01", "server_fast_close: the server connection was closed for a "
			     "reconnect or shutdown; reconnect");
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
