#include "pool/client_timer.h"

#include "core/config-t.h"
#include "net/sock.h"
#include "pool/client.h"
#include "pool/pool_iter.h"
#include "pool/runtime.h"
#include "pool/timeouts.h"

static bool logging_in(const struct client *c)
{
	return c->state < CL_IDLE;
}

static usec_t wait_timeout(const struct client *c)
{
	return (usec_t)c->wait_timeout_ms * 1000;
}

static usec_t idle_timeout(const struct client *c)
{
	return (usec_t)c->idle_timeout_ms * 1000;
}

/* A waiting client: query_wait_timeout (the pool's [users], [databases] or
 * global value), or before it query_wait_notify's NOTICE, once per wait. */
static usec_t waiting_due(const struct client *c)
{
	struct worker *w = client_worker(c);
	usec_t wait = wait_timeout(c), notify = w->cfg->query_wait_notify;
	usec_t at = wait > 0 ? c->state_since + wait : 0;
	if (notify > 0 && !c->wait_notified && (!at || notify < wait))
		at = c->state_since + notify;
	return at;
}

/* When the client's current state next needs a look, or 0 for never. */
static usec_t due_of(const struct client *c)
{
	struct worker *w = client_worker(c);
	const struct tb_config *cfg = w->cfg;
	if (c->is_admin)
		return 0;
	if (logging_in(c))
		return cfg->client_login_timeout > 0 ? c->connect_at + cfg->client_login_timeout : 0;
	if (c->state == CL_WAITING)
		return waiting_due(c);
	if (c->state != CL_IDLE)
		return 0;
	usec_t after = CLIENT_TRIM_AFTER_USEC;
	usec_t idle = idle_timeout(c);
	if (!c->sock.in && !c->sock.out)
		after = 0; /* nothing to trim */
	if (idle > 0 && (!after || idle < after))
		after = idle;
	return after ? c->state_since + after : 0;
}

static void arm(struct client *c)
{
	struct worker *w = client_worker(c);
	usec_t at = due_of(c);
	if (!at)
		deadline_disarm(&w->client_timers, &c->timer);
	else if (!deadline_armed(&c->timer) || c->timer.at != at)
		deadline_arm(&w->client_timers, &c->timer, at);
}

void client_timer_update(struct client *c)
{
	arm(c);
}

static void idle_due(struct client *c, usec_t now)
{
	if (now - c->state_since >= CLIENT_TRIM_AFTER_USEC && (c->sock.in || c->sock.out))
		sock_trim(&c->sock);
	usec_t idle = idle_timeout(c);
	if (idle > 0 && now - c->state_since >= idle) {
		client_close(c, "08P01", "client_idle_timeout");
		return;
	}
	arm(c);
}

void client_timer_fire(struct deadline_wheel *w, struct deadline *d, usec_t now)
{
	(void)w;
	struct client *c = list_entry(d, struct client, timer);
	usec_t at = due_of(c);
	if (at && now < at) {
		arm(c); /* the config changed since it was armed */
		return;
	}
	if (!at)
		return;
	if (logging_in(c)) {
		if (c->state == CL_WAIT_WELCOME)
			client_close(c, "08P01", "client_login_timeout: no server login for alias \"%s\"",
				     c->db->name);
		else
			client_close(c, "08P01", "client_login_timeout: login not completed in time");
	} else if (c->state == CL_WAITING) {
		usec_t wait = wait_timeout(c);
		if (wait > 0 && now - c->state_since >= wait) {
			client_close(c, "08P01", "query_wait_timeout: no server was free for alias \"%s\"",
				     c->db->name);
			return;
		}
		if (timeouts_notify_waiting(c))
			arm(c);
	} else {
		idle_due(c, now);
	}
}

void client_timers_reconfigure(struct worker *w)
{
	struct list_node *n, *t;
	for_each_pool(w, p) timeouts_refresh(p);
	list_for_each_safe(n, t, &w->clients) {
		struct client *c = list_entry(n, struct client, all_node);
		if (c->state == CL_CLOSING)
			continue;
		if (c->pool)
			timeouts_client_refresh(c);
		arm(c);
	}
}
