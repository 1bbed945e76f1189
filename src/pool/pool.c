#include "pool/pool.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "pg/scram.h"
#include "pg/userlist.h"
#include "pool/authq.h"
#include "pool/cancel.h"
#include "pool/cancel_wait.h"
#include "pool/client.h"
#include "pool/client_rare.h"
#include "pool/client_timer.h"
#include "pool/pool_iter.h"
#include "pool/runtime.h"
#include "pool/server.h"
#include "pool/server_drain.h"
#include "pool/timeouts.h"
#include "token/method.h"
#include "token/token.h"

static char *upstream_password(const struct database *db, const char *user)
{
	struct worker *w = db->w;
	if (!upstream_method_uses_password(db->cfg))
		return NULL;
	if (db->cfg->password)
		return xstrdup(db->cfg->password);
	const struct userlist_entry *e = w->users ? userlist_find(w->users, user) : NULL;
	/* A SCRAM secret cannot answer an upstream challenge. */
	if (e && (e->kind == USERLIST_PLAIN || e->kind == USERLIST_MD5))
		return xstrdup(e->secret);
	return NULL;
}

void pool_refresh_password(struct pool *p)
{
	char *pw = upstream_password(p->db, p->user);
	secret_free(p->password);
	scram_keys_wipe(&p->password_keys);
	p->password = pw;
}

void pool_take_scram_keys(struct pool *p, const char *client_user, const struct scram_keys *keys)
{
	if (p->password || p->token || strcmp(p->user, client_user) != 0)
		return;
	if (!p->scram_keys)
		p->scram_keys = xmalloc(sizeof(*p->scram_keys));
	*p->scram_keys = *keys; /* the latest login wins: the verifier may have changed */
}

void pool_take_password(struct pool *p, const char *client_user, char *password)
{
	if (!password || p->password || p->token || strcmp(p->user, client_user) != 0) {
		secret_free(password);
		return;
	}
	scram_keys_wipe(&p->password_keys);
	p->password = password;
}

void pool_token_target(const struct database *db, const char *user, struct token_target *t)
{
	upstream_method_target(db->cfg, db->name, user, t);
}

void pool_bind_token(struct pool *p)
{
	p->token = NULL;
	if (p->db->cfg->auth == UPSTREAM_AUTH_PASSWORD)
		return;
	struct token_target t;
	pool_token_target(p->db, p->user, &t);
	p->token = token_entry_for(&t);
}

/* The per-user server count a pool adds to; aliases with a forced user=
 * count against their own database instead (user_server_count). */
static struct user_load *user_load_get(struct worker *w, const char *user)
{
	struct user_load *u = strmap_get(&w->user_loads, user);
	if (!u) {
		u = xcalloc(1, sizeof(*u));
		u->name = xstrdup(user);
		strmap_put(&w->user_loads, u->name, u);
	}
	u->refs++;
	return u;
}

static void user_load_put(struct worker *w, struct user_load *u)
{
	if (!u || --u->refs > 0)
		return;
	strmap_del_value(&w->user_loads, u->name, u);
	free(u->name);
	free(u);
}

static struct pool *pool_new(struct database *db, const char *user, enum replication_mode repl)
{
	struct worker *w = db->w;
	struct pool *p = xcalloc(1, sizeof(*p));
	p->w = w;
	p->db = db;
	p->replication = repl;
	p->user = xstrdup(user);
	p->password = upstream_password(db, user);
	if (!db->cfg->user)
		p->user_load = user_load_get(w, p->user);
	list_init(&p->active_clients);
	list_init(&p->waiting_clients);
	list_init(&p->welcome_clients);
	list_init(&p->idle_servers);
	list_init(&p->active_servers);
	list_init(&p->used_servers);
	list_init(&p->new_servers);
	list_init(&p->authq_queue);
	list_init(&p->dirty_node);
	pbuf_init(&p->welcome_other, 1 << 16);
	list_add_tail(&db->pools, &p->node);
	if (repl == REPLICATION_NONE)
		strmap_put(&db->pools_by_user, p->user, p);
	pool_bind_token(p);
	timeouts_refresh(p);
	return p;
}

const char *pool_replication_name(enum replication_mode repl)
{
	switch (repl) {
	case REPLICATION_PHYSICAL:
		return "physical";
	case REPLICATION_LOGICAL:
		return "logical";
	case REPLICATION_NONE:
		break;
	}
	return "none";
}

struct pool *pool_for_user(struct database *db, const char *user)
{
	struct pool *p = strmap_get(&db->pools_by_user, user);
	return p ? p : pool_new(db, user, REPLICATION_NONE);
}

struct pool *pool_for_client(struct database *db, const char *client_user, enum replication_mode repl)
{
	const char *user = db->cfg->user ? db->cfg->user : db->default_user ? db->default_user : client_user;
	if (db->learn_user && !db->default_user)
		return NULL; /* not known until the first token arrives */
	if (repl == REPLICATION_NONE) {
		struct pool *p = strmap_get(&db->pools_by_user, user);
		return p ? p : pool_new(db, user, repl);
	}
	/* Replication pools are rare (one server per client): a walk is fine. */
	struct list_node *n, *t;
	list_for_each_safe(n, t, &db->pools) {
		struct pool *p = list_entry(n, struct pool, node);
		if (p->replication == repl && strcmp(p->user, user) == 0)
			return p;
	}
	return pool_new(db, user, repl);
}

bool pool_is_empty(const struct pool *p)
{
	return list_empty(&p->active_clients) && list_empty(&p->waiting_clients) &&
	       list_empty(&p->welcome_clients) && list_empty(&p->authq_queue) && p->nservers == 0;
}

void pool_free(struct pool *p)
{
	struct worker *w = p->w;
	list_del(&p->node);
	list_del(&p->dirty_node);
	strmap_del_value(&p->db->pools_by_user, p->user, p);
	user_load_put(w, p->user_load);
	free(p->user);
	secret_free(p->password);
	scram_keys_wipe(&p->password_keys);
	if (p->scram_keys) {
		scram_keys_wipe(p->scram_keys);
		free(p->scram_keys);
	}
	varcache_clear(&w->vars, &p->welcome_vars);
	pbuf_free(&p->welcome_other);
	free(p);
}

/* As PgBouncer: the pool's [users] entry wins over its database's, which
 * wins over the global default. */
int pool_size_limit(const struct pool *p)
{
	struct worker *w = p->w;
	const struct user_cfg *u = config_find_user(w->cfg, p->user);
	if (u && u->pool_size >= 0)
		return u->pool_size;
	int n = p->db->cfg->pool_size;
	return n >= 0 ? n : w->cfg->default_pool_size;
}

static int reserve_size(const struct pool *p)
{
	struct worker *w = p->w;
	const struct user_cfg *u = config_find_user(w->cfg, p->user);
	if (u && u->reserve_pool_size >= 0)
		return u->reserve_pool_size;
	int n = p->db->cfg->reserve_pool;
	return n >= 0 ? n : w->cfg->reserve_pool_size;
}

static int db_server_count(const struct database *db)
{
	return db->nservers;
}

/* A forced user= is its alias's own user (PgBouncer keeps one per database),
 * and every pool of such an alias has that user; a client's own user is
 * counted across every alias that uses it. */
static int user_server_count(const struct pool *p)
{
	return p->user_load ? p->user_load->nservers : p->db->nservers;
}

/* Accounting of a server that was just created for p (server_new). */
void pool_server_added(struct server *s)
{
	struct pool *p = s->pool;
	p->nservers++;
	p->db->nservers++;
	if (p->user_load)
		p->user_load->nservers++;
	s->opening = true;
	p->nopening++;
}

static void server_opened(struct server *s)
{
	if (s->opening) {
		s->opening = false;
		s->pool->nopening--;
	}
}

void pool_client_state_changed(struct client *c, enum client_state from, enum client_state to)
{
	struct pool *p = c->pool;
	if (!p || from == to)
		return;
	if (from == CL_WAITING)
		p->nwaiting--;
	else if (from == CL_WAIT_WELCOME)
		p->nwelcome--;
	if (to == CL_WAITING) {
		p->nwaiting++;
		c->wait_notified = false;
	} else if (to == CL_WAIT_WELCOME)
		p->nwelcome++;
}

static const struct user_cfg *user_settings(struct worker *w, const char *user)
{
	return config_find_user(w->cfg, user);
}

/* The client that has waited longest, for a server or for its first login
 * (PgBouncer keeps both in one queue): both lists are FIFO, so one of their
 * heads. */
static const struct client *longest_waiting(const struct pool *p)
{
	const struct list_node *a = list_first(&p->waiting_clients), *b = list_first(&p->welcome_clients);
	const struct client *ca = a ? list_entry(a, struct client, node) : NULL;
	const struct client *cb = b ? list_entry(b, struct client, node) : NULL;
	if (!ca || !cb)
		return ca ? ca : cb;
	return ca->state_since <= cb->state_since ? ca : cb;
}

static bool within_limits(const struct pool *p, usec_t now)
{
	struct worker *w = p->w;
	int limit = pool_size_limit(p);
	const struct client *c = longest_waiting(p);
	if (c && reserve_size(p) > 0) {
		if (now - c->state_since >= w->cfg->reserve_pool_timeout)
			limit += reserve_size(p);
	}
	if (p->nservers >= limit)
		return false;
	int maxdb = p->db->cfg->max_db_connections >= 0 ? p->db->cfg->max_db_connections
							: w->cfg->max_db_connections;
	if (maxdb > 0 && db_server_count(p->db) >= maxdb)
		return false;
	const struct user_cfg *u = user_settings(w, p->user);
	int maxuser = u && u->max_user_connections >= 0 ? u->max_user_connections
							: w->cfg->max_user_connections;
	if (maxuser > 0 && user_server_count(p) >= maxuser)
		return false;
	return true;
}

/* An idle server of another pool that counts against the same limit. */
static struct server *idle_victim(const struct pool *p, bool same_db, bool same_user)
{
	struct worker *w = p->w;
	for_each_pool(w, o)
	{
		if (o == p || (same_db && o->db != p->db) || (same_user && strcmp(o->user, p->user) != 0))
			continue;
		struct list_node *last = o->idle_servers.prev;
		if (last != &o->idle_servers)
			return list_entry(last, struct server, node);
	}
	return NULL;
}

/* When only max_db_connections or max_user_connections stands in the way,
 * close the least recently used idle server of another pool under the same
 * limit, as PgBouncer does, so a pool with waiting clients is never starved
 * by idle servers it cannot use. */
static bool evict_for(struct pool *p, usec_t now)
{
	struct worker *w = p->w;
	int limit = pool_size_limit(p);
	if (p->nservers >= limit + reserve_size(p))
		return false;
	int maxdb = p->db->cfg->max_db_connections >= 0 ? p->db->cfg->max_db_connections
							: w->cfg->max_db_connections;
	const struct user_cfg *u = user_settings(w, p->user);
	int maxuser = u && u->max_user_connections >= 0 ? u->max_user_connections
							: w->cfg->max_user_connections;
	bool db_full = maxdb > 0 && db_server_count(p->db) >= maxdb;
	bool user_full = maxuser > 0 && user_server_count(p) >= maxuser;
	if (!db_full && !user_full)
		return false;
	struct server *victim = idle_victim(p, db_full, user_full);
	if (!victim)
		return false;
	server_close(victim, "evicted: %s reached, another pool needs a server",
		     db_full ? "max_db_connections" : "max_user_connections");
	return within_limits(p, now);
}

static bool in_backoff(const struct pool *p, usec_t now)
{
	struct worker *w = p->w;
	return p->last_failure && now - p->last_failure < w->cfg->server_login_retry;
}

static struct client *first_waiting(const struct pool *p)
{
	struct list_node *n = list_first(&p->waiting_clients);
	return n ? list_entry(n, struct client, node) : NULL;
}

static bool needs_check(const struct server *s, usec_t now)
{
	struct worker *w = s->w;
	const char *q = w->cfg->server_check_query;
	/* A physical walsender runs no SQL; a replication server is used once anyway.
	 * With server_check_delay = 0 every reuse is checked, but a server that
	 * has just passed its check is given out, or it would loop. */
	return q && *q && !s->pool->replication && !s->just_checked &&
	       now - s->idle_since >= w->cfg->server_check_delay;
}

static void p_stats_wait(struct client *c, usec_t now)
{
	struct pool_stats *st = &c->pool->stats;
	st->wait_time += (uint64_t)(now - c->state_since);
	st->server_assignment_count++;
}

static void link_client(struct server *s, struct client *c, usec_t now)
{
	p_stats_wait(c, now);
	pool_client_state_changed(c, c->state, CL_ACTIVE);
	c->state = CL_ACTIVE;
	c->state_since = now;
	list_move_tail(&c->pool->active_clients, &c->node);
	client_timer_update(c);
	s->just_checked = false;
	server_link(s, c);
	if (client_cancel_parked(c))
		cancel_wait_try(c);
}

#ifndef NDEBUG
static int count_in(const struct list_node *head, int state, bool clients)
{
	int n = 0;
	const struct list_node *it;
	for (it = head->next; it != head; it = it->next) {
		int st = clients ? (int)list_entry(it, struct client, node)->state
				 : (int)list_entry(it, struct server, node)->state;
		assert(state < 0 || st == state);
		n++;
	}
	return n;
}

/* Assert builds: the counters say what the lists hold. O(clients + pools),
 * so only where tests run it. */
void pool_check_counts(const struct pool *p)
{
	struct worker *w = p->w;
	assert(p->nwaiting == count_in(&p->waiting_clients, CL_WAITING, true));
	assert(p->nwelcome == count_in(&p->welcome_clients, CL_WAIT_WELCOME, true));
	int opening = 0;
	const struct list_node *it;
	for (it = p->new_servers.next; it != &p->new_servers; it = it->next)
		opening += list_entry(it, struct server, node)->opening;
	assert(p->nopening == opening);
	int servers = count_in(&p->idle_servers, SV_IDLE, false) +
		      count_in(&p->active_servers, SV_ACTIVE, false) + count_in(&p->used_servers, -1, false) +
		      count_in(&p->new_servers, -1, false);
	assert(p->nservers == servers);
	int dbsum = 0, usersum = 0;
	struct list_node *d, *pn;
	for (pn = p->db->pools.next; pn != &p->db->pools; pn = pn->next)
		dbsum += list_entry(pn, struct pool, node)->nservers;
	assert(p->db->nservers == dbsum);
	if (!p->user_load)
		return;
	for (d = w->databases.next; d != &w->databases; d = d->next) {
		struct database *db = list_entry(d, struct database, node);
		for (pn = db->pools.next; pn != &db->pools; pn = pn->next)
			if (list_entry(pn, struct pool, node)->user_load == p->user_load)
				usersum += list_entry(pn, struct pool, node)->nservers;
	}
	assert(p->user_load->nservers == usersum);
}
#else
void pool_check_counts(const struct pool *p)
{
	(void)p;
}
#endif

void pool_dispatch(struct pool *p)
{
	usec_t now = time_now_usec();
	pool_check_counts(p);
	for (;;) {
		if (p->db->paused)
			break;
		struct list_node *idle = list_first(&p->idle_servers);
		if (idle && !list_empty(&p->authq_queue)) {
			struct server *s = list_entry(idle, struct server, node);
			if (needs_check(s, now))
				server_check(s);
			else
				authq_take_server(p, s);
			continue;
		}
		struct client *c = first_waiting(p);
		struct list_node *sn = list_first(&p->idle_servers);
		if (!c || !sn)
			break;
		struct server *s = list_entry(sn, struct server, node);
		if (needs_check(s, now)) {
			server_check(s);
			continue;
		}
		link_client(s, c, now);
	}
	if (p->db->retired && list_empty(&p->waiting_clients) && list_empty(&p->welcome_clients))
		return;
	int opening = p->nopening;
	/* Lookups are few (distinct unknown users logging in at once). */
	int waiters = p->nwaiting + p->nwelcome + (int)list_count(&p->authq_queue);
	while (opening < waiters && !in_backoff(p, now)) {
		if (!within_limits(p, now) && !evict_for(p, now))
			break;
		server_launch(p);
		opening++;
	}
	if (in_backoff(p, now))
		pool_fail_waiters(p);
}

void pool_kick(struct pool *p)
{
	struct worker *w = p->w;
	if (!list_linked(&p->dirty_node))
		list_add_tail(&w->dirty_pools, &p->dirty_node);
	runtime_schedule_free(w);
}

void pool_need_welcome(struct pool *p, struct client *c)
{
	pool_dispatch(p);
}

void pool_client_wants_server(struct client *c)
{
	pool_dispatch(c->pool);
}

void pool_server_logged_in(struct server *s)
{
	struct pool *p = s->pool;
	p->last_failure = 0;
	server_opened(s);
	if (!p->have_welcome) {
		p->have_welcome = true;
		log_info("pool %s@%s: first server login, parameters learned", p->user, p->db->name);
	}
	struct list_node *n;
	while ((n = list_first(&p->welcome_clients)))
		/* Closed or logged in, it has left welcome_clients either way. */
		TB_UNUSED_RESULT(client_finish_login(list_entry(n, struct client, node)));
}

static bool past_lifetime(const struct server *s, usec_t now)
{
	return s->lifetime > 0 && now - s->created_at >= s->lifetime;
}

static int min_pool_size_of(const struct pool *p)
{
	struct worker *w = p->w;
	if (p->replication)
		return 0;
	int min = p->db->cfg->min_pool_size;
	return min >= 0 ? min : w->cfg->min_pool_size;
}

/* A server whose successor is still logging in stays (idle, usable) until the
 * successor is ready, when closing it now would leave fewer than
 * min_pool_size ready servers: the lead alone cannot cover a login that takes
 * longer than the lead on a loaded machine. Bounded: a successor that never
 * arrives fails at server_connect_timeout, and the hold ends with it. */
static bool hold_for_successor(const struct pool *p, const struct server *s, usec_t now)
{
	struct worker *w = s->w;
	if (!s->replaced || s->retire || p->db->retired || list_empty(&p->new_servers))
		return false;
	int logging_in = p->nopening;
	usec_t grace = w->cfg->server_connect_timeout > 0 ? w->cfg->server_connect_timeout : 15 * USEC_PER_SEC;
	return p->nservers - logging_in <= min_pool_size_of(p) && now - s->created_at < s->lifetime + grace;
}

/* A server past its cap closes, unless it is holding the place of a successor. */
static bool retire_now(const struct pool *p, const struct server *s, usec_t now)
{
	return past_lifetime(s, now) && !hold_for_successor(p, s, now);
}

void pool_server_usable(struct server *s)
{
	struct worker *w = s->w;
	struct pool *p = s->pool;
	usec_t now = time_now_usec();
	if (s->retire || p->db->retired || retire_now(p, s, now)) {
		server_close(s, s->retire || p->db->retired ? "retired" : "server_lifetime reached");
		return;
	}
	enum server_state was = s->state;
	s->just_checked = was == SV_CHECK;
	s->state = SV_IDLE;
	s->state_since = now;
	s->idle_since = now;
	/* Most recently used first: keeps a warm subset busy, lets the rest idle out. */
	list_del(&s->node);
	if (w->cfg->server_round_robin)
		list_add_tail(&p->idle_servers, &s->node); /* oldest first: spread over all */
	else
		list_add_head(&p->idle_servers, &s->node);
	sock_set_read(&s->sock, true);
	server_watch_note(s, was);
	pool_dispatch(p);
}

void pool_record_failure(struct pool *p, const char *sqlstate, const char *msg, bool restarting)
{
	p->last_failure = time_mono_usec();
	p->failure_restarting = restarting;
	snprintf(p->last_sqlstate, sizeof(p->last_sqlstate), "%s", sqlstate);
	snprintf(p->last_error, sizeof(p->last_error), "%s", msg);
	log_warning("pool %s@%s: server login failed: %s; retrying after server_login_retry%s", p->user,
		    p->db->name, msg,
		    restarting ? " (the server seems to be restarting: clients without a server wait)" : "");
}

/* Clients that asked for a server (or their first login) and have none. */
static bool patient(const struct pool *p, const struct client *c, usec_t now)
{
	struct worker *w = client_worker(c);
	if (!p->failure_restarting)
		return false;
	usec_t since = c->state == CL_WAIT_WELCOME ? c->connect_at : c->state_since;
	return now - since < w->cfg->server_connect_timeout + w->cfg->server_login_retry;
}

static void fail_list(struct pool *p, struct list_node *list, usec_t now)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, list) {
		struct client *c = list_entry(n, struct client, node);
		if (patient(p, c, now))
			continue;
		client_close(c, p->last_sqlstate[0] ? p->last_sqlstate : "08006",
			     "server login failed for alias \"%s\": %s", p->db->name, p->last_error);
	}
}

void pool_fail_waiters(struct pool *p)
{
	if (p->nservers > 0 || !p->last_failure)
		return;
	usec_t now = time_mono_usec();
	authq_pool_failed(p);
	fail_list(p, &p->welcome_clients, now);
	fail_list(p, &p->waiting_clients, now);
}

void pool_server_gone(struct server *s, enum server_state was)
{
	struct pool *p = s->pool;
	(void)was;
	server_opened(s);
	p->nservers--;
	p->db->nservers--;
	if (p->user_load)
		p->user_load->nservers--;
	pool_kick(p);
}

/* The clients' timeouts are their deadlines (pool/client_timer.c); a
 * shutdown lets go of every client not in a transaction. */
static void shutdown_idle_clients(struct pool *p)
{
	struct worker *w = p->w;
	if (w->shutdown_mode == SHUTDOWN_WAIT_FOR_SERVERS) {
		struct list_node *n, *t;
		list_for_each_safe(n, t, &p->welcome_clients)
			client_close(list_entry(n, struct client, node), "57P01",
				     "terminating connection: the pooler is shutting down");
		list_for_each_safe(n, t, &p->waiting_clients)
			client_close(list_entry(n, struct client, node), "57P01",
				     "terminating connection: the pooler is shutting down");
		list_for_each_safe(n, t, &p->active_clients) {
			struct client *c = list_entry(n, struct client, node);
			if (c->state == CL_IDLE && c->mode != POOL_MODE_SESSION)
				client_close(c, "57P01",
					     "terminating connection: the pooler is shutting down");
		}
	}
}

/* How long before its cap a server's successor is opened: a tenth of the
 * lifetime, at least a second (a TLS login plus a token, and the janitor's
 * 250 ms granularity) but never more than a third of the lifetime, at most 5 s.
 * hold_for_successor() covers a login slower than that. */
static usec_t successor_lead(const struct server *s)
{
	usec_t lead = s->lifetime / 10;
	if (lead < USEC_PER_SEC)
		lead = USEC_PER_SEC < s->lifetime / 3 ? USEC_PER_SEC : s->lifetime / 3;
	return lead > 5 * USEC_PER_SEC ? 5 * USEC_PER_SEC : lead;
}

static void open_in(struct pool *p, struct list_node *list, usec_t now, int min, int live)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, list) {
		struct server *s = list_entry(n, struct server, node);
		if (s->replaced || s->lifetime <= 0 || now - s->created_at < s->lifetime - successor_lead(s))
			continue;
		/* Only while the retirement would take the pool below min_pool_size. */
		if (live > min || in_backoff(p, now) || !within_limits(p, now))
			return;
		s->replaced = true;
		server_launch(p);
	}
}

/* Servers close at their lifetime cap; when that would leave fewer than
 * min_pool_size, open the successor shortly before, so waiting clients and
 * min_pool_size never see the gap. */
static void open_successors(struct pool *p, usec_t now, int min)
{
	if (min <= 0 || p->db->retired || !p->have_welcome)
		return;
	int live = p->nservers;
	struct list_node *lists[] = { &p->idle_servers, &p->active_servers, &p->used_servers };
	for (size_t i = 0; i < 3; i++) {
		struct list_node *n, *t;
		list_for_each_safe(n, t, lists[i])
			if (list_entry(n, struct server, node)->replaced)
				live--;
	}
	for (size_t i = 0; i < 3; i++)
		open_in(p, lists[i], now, min, live);
}

static void expire_servers(struct pool *p, usec_t now)
{
	struct worker *w = p->w;
	const struct tb_config *cfg = w->cfg;
	struct list_node *n, *t;
	timeouts_expire_active(p, now);
	list_for_each_safe(n, t, &p->new_servers)
		server_login_deadline(list_entry(n, struct server, node), now);
	list_for_each_safe(n, t, &p->used_servers)
		server_expire_drain(list_entry(n, struct server, node), now);
	int min = min_pool_size_of(p);
	list_for_each_safe(n, t, &p->idle_servers) {
		struct server *s = list_entry(n, struct server, node);
		if (p->db->retired)
			server_close(s, "retired");
		else if (retire_now(p, s, now))
			server_close(s, "server_lifetime reached");
		else if (cfg->server_idle_timeout > 0 && now - s->idle_since >= cfg->server_idle_timeout &&
			 p->nservers > min)
			server_close(s, "server_idle_timeout reached");
	}
	/* A pool of a forced user opens min_pool_size before any client (its
	 * first server learns the welcome); others once a client has logged in. */
	bool warm = p->have_welcome || (p->db->cfg->user && !p->db->cfg->user_from_token);
	while (!p->db->retired && warm && p->nservers < min && !in_backoff(p, now) && within_limits(p, now))
		server_launch(p);
	open_successors(p, now, min);
}

/* Packet buffers of servers idle for a second go back to malloc, as the
 * clients' do (their deadline, pool/client_timer.c). */
static void trim_idle(struct pool *p, usec_t now)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &p->idle_servers) {
		struct server *s = list_entry(n, struct server, node);
		if ((s->sock.in || s->sock.out) && now - s->idle_since >= CLIENT_TRIM_AFTER_USEC)
			sock_trim(&s->sock);
	}
}

void pool_maintain(struct pool *p, usec_t now)
{
	timeouts_refresh(p);
	trim_idle(p, now);
	shutdown_idle_clients(p);
	expire_servers(p, now);
	pool_dispatch(p);
}
