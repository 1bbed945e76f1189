#include "pool/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/dnscache.h"
#include "net/linger.h"
#include "net/tls.h"
#include "pg/hba.h"
#include "pg/userlist.h"
#include "pool/cancel.h"
#include "pool/client.h"
#include "pool/client_timer.h"
#include "pool/climit.h"
#include "pool/peer.h"
#include "pool/pool.h"
#include "pool/reconfig.h"
#include "pool/server.h"
#include "pool/varcache.h"
#include "token/method.h"
#include "token/token.h"

struct config_ref *config_ref_new(struct tb_config *cfg)
{
	struct config_ref *r = xcalloc(1, sizeof(*r));
	r->cfg = cfg;
	r->refs = 1;
	return r;
}

void config_ref_put(struct config_ref *r)
{
	if (r && --r->refs == 0) {
		config_free(r->cfg);
		free(r);
	}
}

static void run_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	/* Dispatch can close objects and closing can dirty pools: run to a fixpoint. */
	while (!list_empty(&w->dirty_pools) || !list_empty(&w->free_clients) ||
	       !list_empty(&w->free_servers)) {
		struct list_node *n;
		while ((n = list_first(&w->dirty_pools))) {
			list_del(n);
			pool_dispatch(list_entry(n, struct pool, dirty_node));
		}
		while ((n = list_first(&w->free_servers)))
			server_free(list_entry(n, struct server, node));
		while ((n = list_first(&w->free_clients)))
			client_free(list_entry(n, struct client, node));
	}
}

void runtime_loop(struct event_base *base)
{
	/* One pass at a time (PgBouncer's main loop does the same), so that each
	 * pass starts with a fresh cached clock. */
	for (;;) {
		time_cache_reset();
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			return;
		if (event_base_got_break(base) || event_base_got_exit(base))
			return;
	}
}

void runtime_schedule_free(struct worker *w)
{
	if (w->free_ev && !event_pending(w->free_ev, EV_TIMEOUT | EV_READ | EV_WRITE, NULL))
		event_active(w->free_ev, EV_TIMEOUT, 0);
}

void runtime_init(struct worker *w, struct event_base *base, struct evdns_base *dns)
{
	w->base = base;
	w->dns = dns;
	list_init(&w->databases);
	list_init(&w->clients);
	list_init(&w->login_clients);
	list_init(&w->free_clients);
	list_init(&w->free_servers);
	list_init(&w->dirty_pools);
	list_init(&w->cancels);
	linger_set_init(&w->lingering);
	list_init(&w->parked_cancels);
	list_init(&w->peer_fwds);
	deadline_wheel_init(&w->client_timers, client_timer_fire, time_mono_usec());
	w->free_ev = event_new(base, -1, 0, run_deferred, w);
	w->admin_alias = (struct db_alias){ .name = "tokenbouncer",
					    .port = -1,
					    .pool_size = 0,
					    .min_pool_size = -1,
					    .reserve_pool = -1,
					    .pool_mode = POOL_MODE_UNSET,
					    .max_db_connections = -1,
					    .server_lifetime = -1 };
	w->admin_db_store = (struct database){
		.w = w, .name = "tokenbouncer", .cfg = &w->admin_alias, .is_admin = true
	};
	list_init(&w->admin_db_store.pools);
	list_init(&w->admin_db_store.node);
	w->admin_db = &w->admin_db_store;
}

static void warn_restart_only(const char *param, void *arg)
{
	log_warning("reload: %s changed but takes effect only after a restart", param);
}

bool runtime_reload(struct worker *w, char *err, size_t errlen)
{
	/* conffile names the file: SET conffile makes this reload read another one. */
	const char *path = config_str_set(w->cfg->conffile) ? w->cfg->conffile : w->cfg->path;
	log_info("reloading %s", path);
	struct tb_config *cfg = config_load(path, err, errlen);
	if (!cfg)
		return false;
	for (size_t i = 0; i < cfg->nwarnings; i++)
		log_warning("%s", cfg->warnings[i]);
	config_keep_restart_only(cfg, w->cfg, warn_restart_only, NULL);
	bool tls_changed = reconfig_tls_differs(w->cfg, cfg);
	if (!runtime_apply_config(w, cfg, err, errlen)) {
		config_free(cfg);
		return false;
	}
	if (tls_changed) /* PgBouncer: a TLS change reconnects servers */
		reconfig_reconnect_all(w, "TLS settings changed");
	log_setup(cfg->verbose, false, true);
	char lerr[256];
	if (!log_set_file(cfg->logfile, lerr, sizeof(lerr)) ||
	    !log_set_syslog(cfg->syslog, cfg->syslog_ident, cfg->syslog_facility, lerr, sizeof(lerr)))
		log_error("%s", lerr);
	log_info("reload complete: %zu databases, %zu users", cfg->ndbs, cfg->nusers);
	return true;
}

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What a server connection was opened with; pool sizes may change freely. */
static bool same_upstream(const struct db_alias *a, const struct db_alias *b)
{
	return str_same(a->host, b->host) && a->port == b->port && str_same(a->dbname, b->dbname) &&
	       str_same(a->user, b->user) && str_same(a->password, b->password) &&
	       str_same(a->connect_query, b->connect_query) &&
	       str_same(a->application_name, b->application_name) &&
	       str_same(a->client_encoding, b->client_encoding) && str_same(a->datestyle, b->datestyle) &&
	       str_same(a->timezone, b->timezone) && a->auth == b->auth &&
	       str_same(a->credential, b->credential);
}

/* What the alias means on the wire, settled once: the host to reach (as its
 * upstream method rewrites it), the defaults the method implies, the TLS mode. */
static void database_derive(struct database *db)
{
	struct worker *w = db->w;
	const struct db_alias *a = db->cfg;
	free(db->host);
	free(db->dbname);
	db->host = a->host ? xstrdup(a->host) : NULL;
	db->dbname = xstrdup(a->dbname ? a->dbname : db->name);
	struct method_endpoint ep;
	upstream_method_endpoint(a, &ep);
	db->learn_user = a->user_from_token || ep.user_after_token;
	if (!db->learn_user) {
		/* A user learned from the token stays learned across reloads. */
		free(db->default_user);
		db->default_user = NULL;
	}
	if (ep.host) {
		free(db->host);
		db->host = ep.host;
	}
	if (ep.default_user && !db->default_user)
		db->default_user = ep.default_user;
	else
		free(ep.default_user);
	if (ep.default_dbname && !a->dbname) {
		free(db->dbname);
		db->dbname = xstrdup(ep.default_dbname);
	}
	int global = (int)w->cfg->server_tls_sslmode;
	db->sslmode = a->sslmode >= 0 ? a->sslmode : ep.default_sslmode >= 0 ? ep.default_sslmode : global;
}

struct database *runtime_find_database(struct worker *w, const char *name)
{
	struct database *found = strmap_get(&w->db_by_name, name);
	if (found)
		return found;
	const struct db_alias *a = config_find_db(w->cfg, name);
	if (!a)
		return NULL;
	struct database *db = xcalloc(1, sizeof(*db));
	db->w = w;
	db->name = xstrdup(name);
	db->cfg = a;
	db->cref = w->cref;
	w->cref->refs++;
	database_derive(db);
	list_init(&db->pools);
	list_add_tail(&w->databases, &db->node);
	strmap_put(&w->db_by_name, db->name, db);
	return db;
}

/* A retired database keeps serving who it has; new clients get a fresh one. */
static void database_retire(struct database *db)
{
	struct worker *w = db->w;
	db->retired = true;
	strmap_del_value(&w->db_by_name, db->name, db);
}

static void resume_awaiting(struct database *db)
{
	struct worker *w = db->w;
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->login_clients) {
		struct client *c = list_entry(n, struct client, node);
		if (!c->awaiting_user || c->db != db)
			continue;
		c->awaiting_user = false;
		if (db->default_user)
			TB_UNUSED_RESULT(client_auth_ok(c)); /* closed or logged in, the loop goes on */
		else
			client_close(c, "08001",
				     "could not learn the user of alias \"%s\" from its %s token: %s",
				     db->name, upstream_method_of(db->cfg->auth)->label, db->user_error);
	}
}

static void on_user_token(void *arg, const char *token, size_t len, int64_t expires_at, uint64_t gen,
			  const char *err)
{
	struct database *db = arg;
	db->user_wait = NULL;
	if (err) {
		snprintf(db->user_error, sizeof(db->user_error), "%s", err);
	} else {
		char why[200] = "this method's tokens name no user";
		const struct upstream_method *m = upstream_method_of(db->cfg->auth);
		char *name = !m                    ? NULL
			     : m->user_from_token  ? m->user_from_token(token, len, why, sizeof(why))
			     : m->user_after_fetch ? m->user_after_fetch(db->cfg, why, sizeof(why))
						   : NULL;
		if (name) {
			db->default_user = name;
			db->user_error[0] = '\0';
			log_info("database %s: upstream user \"%s\" taken from %s", db->name, name,
				 m->user_from_token ? "the token's claims" : "the credential's e-mail");
		} else {
			snprintf(db->user_error, sizeof(db->user_error), "%s", why);
		}
	}
	if (!db->default_user)
		log_warning("database %s: cannot learn the upstream user from a token: %s", db->name,
			    db->user_error);
	resume_awaiting(db);
}

void runtime_learn_user(struct database *db)
{
	if (db->default_user || db->user_wait || !db->learn_user)
		return;
	struct token_target t;
	pool_token_target(db, "", &t);
	db->user_wait = token_request(token_entry_for(&t), on_user_token, db);
}

static bool database_in_use(const struct database *db)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &db->pools)
		if (!pool_is_empty(list_entry(n, struct pool, node)))
			return true;
	return false;
}

static bool database_has_clients(const struct database *db)
{
	struct worker *w = db->w;
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		/* Closing clients count too: their deferred free still reads c->db. */
		struct client *c = list_entry(n, struct client, all_node);
		if (c->db == db)
			return true;
	}
	return false;
}

static void database_free(struct database *db)
{
	struct worker *w = db->w;
	struct list_node *n;
	while ((n = list_first(&db->pools)))
		pool_free(list_entry(n, struct pool, node));
	strmap_clear(&db->pools_by_user);
	strmap_del_value(&w->db_by_name, db->name, db);
	list_del(&db->node);
	token_wait_cancel(db->user_wait);
	config_ref_put(db->cref);
	free(db->name);
	free(db->host);
	free(db->default_user);
	free(db->dbname);
	free(db);
}

bool runtime_database_free_unused(struct database *db)
{
	if (database_in_use(db) || database_has_clients(db))
		return false;
	database_free(db);
	return true;
}

void runtime_database_maybe_free(struct database *db)
{
	if (db->retired && !database_in_use(db) && !database_has_clients(db))
		database_free(db);
}

static bool load_auth_files(const struct tb_config *cfg, struct userlist **ul, struct hba **hba, char *err,
			    size_t errlen)
{
	*ul = NULL;
	*hba = NULL;
	if (cfg->auth_file && *cfg->auth_file) {
		*ul = userlist_load(cfg->auth_file, err, errlen);
		if (!*ul)
			return false;
	}
	if (cfg->auth_type == AUTH_TYPE_HBA) {
		*hba = hba_load(cfg->auth_hba_file, err, errlen);
		if (*hba && cfg->auth_ident_file && *cfg->auth_ident_file &&
		    !hba_load_ident(*hba, cfg->auth_ident_file, err, errlen)) {
			hba_free(*hba);
			*hba = NULL;
		}
		if (!*hba) {
			if (*ul)
				userlist_free(*ul);
			*ul = NULL;
			return false;
		}
	}
	return true;
}

static bool make_tls(const struct tb_config *cfg, SSL_CTX **cli, SSL_CTX **srv, char *err, size_t errlen)
{
	*cli = NULL;
	*srv = NULL;
	if (cfg->client_tls_sslmode != TLS_MODE_DISABLE) {
		*cli = tls_accept_ctx_new(cfg, err, errlen);
		if (!*cli)
			return false;
	}
	/* Named files are loaded now, so that a bad one fails the load or the
	 * reload; with the defaults the context waits for a server that answers
	 * an SSLRequest with 'S' (runtime_server_tls). */
	int lo, hi;
	bool default_ciphers = !config_str_set(cfg->server_tls13_ciphers) &&
			       (!config_str_set(cfg->server_tls_ciphers) ||
				str_ieq(cfg->server_tls_ciphers, "default"));
	if (!config_str_set(cfg->server_tls_ca_file) && !config_str_set(cfg->server_tls_cert_file) &&
	    !config_str_set(cfg->server_tls_key_file) && default_ciphers &&
	    tls_protocol_range(cfg->server_tls_protocols, &lo, &hi))
		return true;
	*srv = tls_connect_ctx_new(cfg, err, errlen);
	if (!*srv) {
		SSL_CTX_free(*cli);
		*cli = NULL;
		return false;
	}
	return true;
}

SSL_CTX *runtime_server_tls(struct worker *w, char *err, size_t errlen)
{
	/* The first SSL_CTX of a process costs ~1.7 MB of resident memory
	 * (OpenSSL fetches every cipher and digest it may negotiate): a pooler
	 * whose servers never speak TLS does not pay it. */
	if (!w->server_tls)
		w->server_tls = tls_connect_ctx_new(w->cfg, err, errlen);
	return w->server_tls;
}

static void rebind_databases(struct worker *w)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->databases) {
		struct database *db = list_entry(n, struct database, node);
		if (db->retired)
			continue;
		const struct db_alias *a = config_find_db(w->cfg, db->name);
		if (a && same_upstream(a, db->cfg)) {
			config_ref_put(db->cref);
			db->cref = w->cref;
			w->cref->refs++;
			db->cfg = a;
			database_derive(db);
			struct list_node *pn, *pt;
			list_for_each_safe(pn, pt, &db->pools) {
				struct pool *p = list_entry(pn, struct pool, node);
				pool_refresh_password(p);
				pool_bind_token(p);
				pool_kick(p);
			}
			continue;
		}
		log_info("database %s: %s by reload; its servers retire as they become free", db->name,
			 a ? "changed" : "removed");
		database_retire(db);
		struct list_node *pn, *pt;
		list_for_each_safe(pn, pt, &db->pools)
			pool_kick(list_entry(pn, struct pool, node));
		runtime_database_maybe_free(db);
	}
}

/* Aliases whose upstream user is fixed can have their token before the
 * first client asks; the others learn the user from their first client. */
static void prefetch_tokens(struct worker *w)
{
	for (size_t i = 0; i < w->cfg->ndbs; i++) {
		const struct db_alias *a = &w->cfg->dbs[i];
		if (a->auth == UPSTREAM_AUTH_PASSWORD || strcmp(a->name, "*") == 0)
			continue;
		struct database *db = runtime_find_database(w, a->name);
		if (db && db->learn_user) {
			runtime_learn_user(db);
			continue;
		}
		const char *user = db && db->cfg->user ? db->cfg->user : db ? db->default_user : NULL;
		if (!user)
			continue;
		struct token_target t;
		pool_token_target(db, user, &t);
		token_prefetch(&t);
	}
}

/* As PgBouncer: an alias with a forced user and min_pool_size gets its pool
 * now, so the janitor opens those servers before any client asks. */
static void create_forced_pools(struct worker *w)
{
	for (size_t i = 0; i < w->cfg->ndbs; i++) {
		const struct db_alias *a = &w->cfg->dbs[i];
		int min = a->min_pool_size >= 0 ? a->min_pool_size : w->cfg->min_pool_size;
		if (!a->user || a->user_from_token || min <= 0 || strcmp(a->name, "*") == 0)
			continue;
		struct database *db = runtime_find_database(w, a->name);
		if (db)
			pool_for_client(db, a->user, REPLICATION_NONE);
	}
}

static void free_auth_files(struct userlist *ul, struct hba *hba)
{
	if (ul)
		userlist_free(ul);
	if (hba)
		hba_free(hba);
}

/* A configuration's auth files and TLS contexts in place of the worker's,
 * which are freed (all NULL at shutdown). */
static void install_auth_tls(struct worker *w, struct userlist *ul, struct hba *hba, SSL_CTX *cli,
			     SSL_CTX *srv)
{
	free_auth_files(w->users, w->hba);
	SSL_CTX_free(w->client_tls);
	SSL_CTX_free(w->server_tls);
	w->users = ul;
	w->hba = hba;
	w->client_tls = cli;
	w->server_tls = srv;
}

bool runtime_apply_config(struct worker *w, struct tb_config *cfg, char *err, size_t errlen)
{
	struct userlist *ul;
	struct hba *hba;
	SSL_CTX *cli, *srv;
	if (!varcache_extra_valid(cfg->track_extra_parameters)) {
		snprintf(err, errlen,
			 "track_extra_parameters: expected at most %d comma-separated "
			 "parameter names besides the built-in ones",
			 VAR_EXTRA_MAX);
		return false;
	}
	if (!load_auth_files(cfg, &ul, &hba, err, errlen))
		return false;
	if (!token_engine_apply(cfg, err, errlen) || !make_tls(cfg, &cli, &srv, err, errlen)) {
		free_auth_files(ul, hba);
		return false;
	}
	install_auth_tls(w, ul, hba, cli, srv);
	struct config_ref *old = w->cref;
	w->cref = config_ref_new(cfg);
	w->cfg = cfg;
	dnscache_set_ttl(cfg->dns_max_ttl, cfg->dns_nxdomain_ttl);
	if (!varcache_track_extra(&w->vars, cfg->track_extra_parameters))
		log_warning("track_extra_parameters: this process tracks at most %d extra names over "
			    "its life; the newest were left out until a restart",
			    VAR_EXTRA_MAX);
	rebind_databases(w);
	config_ref_put(old);
	if (w->base)
		client_timers_reconfigure(w);
	if (w->base && w->dns) {
		prefetch_tokens(w);
		create_forced_pools(w);
	}
	return true;
}

void runtime_shutdown(struct worker *w)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		struct client *c = list_entry(n, struct client, all_node);
		client_close(c, "57P01", "terminating connection: the pooler is shutting down");
	}
	list_for_each_safe(n, t, &w->databases) {
		struct database *db = list_entry(n, struct database, node);
		struct list_node *pn, *pt;
		list_for_each_safe(pn, pt, &db->pools) {
			struct pool *p = list_entry(pn, struct pool, node);
			struct list_node *lists[] = { &p->idle_servers, &p->active_servers, &p->used_servers,
						      &p->new_servers };
			for (size_t i = 0; i < 4; i++) {
				struct list_node *sn, *st;
				list_for_each_safe(sn, st, lists[i])
					server_close(list_entry(sn, struct server, node), "shutting down");
			}
		}
		database_retire(db);
	}
	run_deferred(-1, 0, w);
	climit_reset(w);
	cancel_index_clear(&w->cancel_keys);
	server_cancels_shutdown(w);
	peers_shutdown(w);
	linger_shutdown(&w->lingering);
	list_for_each_safe(n, t, &w->databases)
		database_free(list_entry(n, struct database, node));
	install_auth_tls(w, NULL, NULL, NULL, NULL);
	config_ref_put(w->cref);
	w->cref = NULL;
	event_free(w->free_ev);
	w->free_ev = NULL;
	varcache_state_free(&w->vars);
	sock_loop_free(&w->socks);
}
