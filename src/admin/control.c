/* Console commands that change the pooler: PAUSE, RESUME, RECONNECT, KILL,
 * KILL_CLIENT, DISABLE, ENABLE, RELOAD, SHUTDOWN, WAIT_CLOSE, SUSPEND, SET
 * and REFRESH TOKENS, with PgBouncer's semantics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_priv.h"
#include "admin/resultset.h"
#include "core/config.h"
#include "core/dynbuf.h"
#include "core/log.h"
#include "core/params.h"
#include "pool/client.h"
#include "pool/pool.h"
#include "pool/pool_iter.h"
#include "pool/reconfig.h"
#include "pool/runtime.h"
#include "pool/server.h"
#include "pool/shutdown.h"
#include "pool/suspend.h"
#include "token/token.h"

bool control_paused_all(struct worker *w)
{
	return w->admin->paused_all;
}

static enum admin_status syntax(struct admin_req *r)
{
	return admin_fail(r, "42601", "syntax error in \"%s\", use SHOW HELP;", r->text);
}

static enum admin_status done(struct admin_req *r, const char *tag)
{
	resultset_complete(r->out, tag);
	return ADMIN_DONE;
}

/* The optional database argument of a command; false (and r filled) on error. */
static bool db_arg(struct admin_req *r, bool required, const char **name)
{
	struct worker *w = client_worker(r->c);
	*name = NULL;
	if (r->argc > 2 || (required && r->argc < 2)) {
		syntax(r);
		return false;
	}
	if (r->argc < 2)
		return true;
	if (r->kind[1] != ADMIN_TOK_WORD && r->kind[1] != ADMIN_TOK_IDENT) {
		syntax(r);
		return false;
	}
	if (admin_is_console_db(r->argv[1])) {
		admin_fail(r, "55000", "%s does not apply to the admin console database", r->argv[0]);
		return false;
	}
	/* Creates the runtime database from its alias (or the "*" entry), so
	 * a command may target an alias nobody has used yet. */
	if (!runtime_find_database(w, r->argv[1])) {
		admin_fail(r, "3D000", "no such database: %s", r->argv[1]);
		return false;
	}
	*name = r->argv[1];
	return true;
}

/* Every runtime database of that name (a reload may leave a retired one
 * draining next to the new one), or all of them for NULL. */
static bool db_matches(const struct database *db, const char *name)
{
	return !db->is_admin && (!name || strcmp(db->name, name) == 0);
}

#define for_each_db(d, dt) list_for_each_safe(d, dt, &w->databases)
#define DB_OF(d) list_entry(d, struct database, node)

static void kick_pools(struct database *db)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &db->pools)
		pool_kick(list_entry(n, struct pool, node));
}

static void ensure_configured_databases(struct worker *w)
{
	for (size_t i = 0; i < w->cfg->ndbs; i++)
		if (strcmp(w->cfg->dbs[i].name, "*") != 0 && !admin_is_console_db(w->cfg->dbs[i].name))
			runtime_find_database(w, w->cfg->dbs[i].name);
}

static bool servers_linked(struct worker *w, const char *name)
{
	for_each_pool(w, p)
	{
		if (db_matches(p->db, name) && !list_empty(&p->active_servers))
			return true;
	}
	return false;
}

static bool any_paused(struct worker *w, const char *name)
{
	struct list_node *d, *dt;
	for_each_db(d, dt)
	{
		struct database *db = DB_OF(d);
		if (db_matches(db, name) && db->paused)
			return true;
	}
	return false;
}

/* ---- waits ---- */

static bool server_alive(struct worker *w, uint64_t id)
{
	for_each_server(w, s) if (s->id == id) return true;
	return false;
}

bool control_wait_done(struct worker *w, const struct admin_wait *aw)
{
	switch (aw->kind) {
	case ADMIN_WAIT_PAUSE:
		/* A RESUME from another console ends the wait too. */
		return !servers_linked(w, aw->db) || !any_paused(w, aw->db);
	case ADMIN_WAIT_SUSPEND:
		return !w->suspended || suspend_flushed(w);
	case ADMIN_WAIT_CLOSE:
		for (size_t i = 0; i < aw->nservers; i++)
			if (server_alive(w, aw->server_ids[i]))
				return false;
		return true;
	}
	return true;
}

void control_wait_clear(struct admin_wait *w)
{
	free(w->db);
	free(w->server_ids);
	memset(w, 0, sizeof(*w));
}

static bool console_client_alive(struct worker *w, uint64_t id)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, admin_client_list(w))
		if (list_entry(n, struct client, node)->id == id)
			return true;
	return false;
}

void control_tick(struct worker *w, usec_t now)
{
	(void)now;
	if (w->suspended && !console_client_alive(w, w->admin->suspend_owner)) {
		log_info("the console client that ran SUSPEND has gone: resuming");
		suspend_all(w, false);
	}
	if (w->admin->paused_all) {
		struct list_node *d, *dt;
		for_each_db(d, dt) DB_OF(d)->paused = true;
	}
}

/* ---- PAUSE, RESUME, RECONNECT, KILL ---- */

static void pause_databases(struct worker *w, const char *name)
{
	if (!name) {
		w->admin->paused_all = true;
		ensure_configured_databases(w);
	}
	struct list_node *d, *dt;
	for_each_db(d, dt)
	{
		struct database *db = DB_OF(d);
		if (db_matches(db, name))
			db->paused = true;
	}
}

enum admin_status control_pause(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	const char *name;
	if (!db_arg(r, false, &name))
		return ADMIN_FAILED;
	if (w->suspended)
		return admin_fail(r, "55000", "already suspended/paused");
	pause_databases(w, name);
	r->wait.kind = ADMIN_WAIT_PAUSE;
	r->wait.db = name ? xstrdup(name) : NULL;
	r->wait.tag = "PAUSE";
	return ADMIN_WAIT;
}

static void resume_databases(struct worker *w, const char *name)
{
	if (!name)
		w->admin->paused_all = false;
	struct list_node *d, *dt;
	for_each_db(d, dt)
	{
		struct database *db = DB_OF(d);
		if (!db_matches(db, name))
			continue;
		db->paused = false;
		kick_pools(db);
	}
}

enum admin_status control_resume(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	const char *name;
	if (!db_arg(r, false, &name))
		return ADMIN_FAILED;
	/* As PgBouncer 1.23+: a shutdown cannot be resumed; one database may
	 * be, except while WAIT_FOR_SERVERS holds every pool. */
	if (w->shutting_down && (!name || w->shutdown_mode == SHUTDOWN_WAIT_FOR_SERVERS))
		return admin_fail(r, "55000", "pooler is shutting down");
	if (!name)
		suspend_all(w, false);
	resume_databases(w, name);
	return done(r, "RESUME");
}

void control_signal_pause(struct worker *w)
{
	log_info("SIGUSR1: pausing every database (as PAUSE)");
	pause_databases(w, NULL);
}

void control_signal_resume(struct worker *w)
{
	if (w->shutting_down) {
		log_info("SIGUSR2 while shutting down: ignored");
		return;
	}
	log_info("SIGUSR2: resuming every database (as RESUME)");
	suspend_all(w, false);
	resume_databases(w, NULL);
}

static void close_servers(struct pool *p, bool idle_only, const char *why)
{
	struct list_node *lists[] = { &p->idle_servers, &p->active_servers, &p->used_servers,
				      &p->new_servers };
	size_t nlists = idle_only ? 1 : sizeof(lists) / sizeof(lists[0]);
	for (size_t i = 0; i < nlists; i++) {
		struct list_node *n, *t;
		list_for_each_safe(n, t, lists[i])
			server_close(list_entry(n, struct server, node), "%s", why);
	}
}

enum admin_status control_reconnect(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	const char *name;
	if (!db_arg(r, false, &name))
		return ADMIN_FAILED;
	for_each_pool(w, p)
	{
		if (db_matches(p->db, name))
			reconfig_reconnect_pool(p, "RECONNECT");
	}
	return done(r, "RECONNECT");
}

enum admin_status control_kill(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	const char *name;
	if (!db_arg(r, false, &name))
		return ADMIN_FAILED;
	/* PgBouncer's KILL leaves the database paused until RESUME. */
	pause_databases(w, name);
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		struct client *c = list_entry(n, struct client, all_node);
		if (c->state != CL_CLOSING && !c->is_admin && c->db && db_matches(c->db, name))
			client_close(c, "08P01", "database \"%s\" was killed by the administrator",
				     c->db->name);
	}
	for_each_pool(w, p)
	{
		if (db_matches(p->db, name))
			close_servers(p, false, "KILL");
	}
	return done(r, "KILL");
}

enum admin_status control_kill_client(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	if (r->argc != 2 || r->kind[1] != ADMIN_TOK_WORD)
		return syntax(r);
	char *end;
	unsigned long long id = strtoull(r->argv[1], &end, 10);
	if (*end || !*r->argv[1])
		return admin_fail(r, "22023", "KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)");
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		struct client *c = list_entry(n, struct client, all_node);
		if (c->id != id || c->state == CL_CLOSING)
			continue;
		client_close(c, "08P01", "client was killed by the administrator (KILL_CLIENT)");
		if (c == r->c)
			return ADMIN_GONE;
		return done(r, "KILL_CLIENT");
	}
	return admin_fail(r, "42704", "no client with id %llu", id);
}

/* ---- DISABLE, ENABLE ---- */

static enum admin_status set_disabled(struct admin_req *r, bool disabled, const char *tag)
{
	struct worker *w = client_worker(r->c);
	const char *name;
	if (!db_arg(r, true, &name))
		return ADMIN_FAILED;
	struct list_node *d, *dt;
	for_each_db(d, dt)
	{
		struct database *db = DB_OF(d);
		if (db_matches(db, name))
			db->disabled = disabled;
	}
	return done(r, tag);
}

enum admin_status control_disable(struct admin_req *r)
{
	return set_disabled(r, true, "DISABLE");
}

enum admin_status control_enable(struct admin_req *r)
{
	return set_disabled(r, false, "ENABLE");
}

/* ---- RELOAD, SHUTDOWN, WAIT_CLOSE ---- */

enum admin_status control_reload(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	if (r->argc != 1)
		return syntax(r);
	char err[512];
	if (!runtime_reload(w, err, sizeof(err))) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return admin_fail(r, "F0000", "reload failed, the running configuration is unchanged: %s",
				  err);
	}
	return done(r, "RELOAD");
}

enum admin_status control_shutdown(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	if (r->argc > 2 || (r->argc == 2 && r->kind[1] != ADMIN_TOK_WORD))
		return syntax(r);
	enum shutdown_mode mode = SHUTDOWN_IMMEDIATE;
	if (r->argc == 2 && str_ieq(r->argv[1], "WAIT_FOR_CLIENTS"))
		mode = SHUTDOWN_WAIT_FOR_CLIENTS;
	else if (r->argc == 2 && str_ieq(r->argv[1], "WAIT_FOR_SERVERS"))
		mode = SHUTDOWN_WAIT_FOR_SERVERS;
	else if (r->argc == 2)
		return syntax(r);
	log_info("SHUTDOWN%s%s from the console (by %s)", r->argc == 2 ? " " : "",
		 r->argc == 2 ? shutdown_mode_name(mode) : "", r->c->user);
	if (mode == SHUTDOWN_WAIT_FOR_SERVERS)
		pause_databases(w, NULL); /* databases created later are held too */
	/* An immediate SHUTDOWN still answers: the reply is written before
	 * the loop gets to stop. */
	shutdown_begin(w, mode);
	return done(r, "SHUTDOWN");
}

enum admin_status control_wait_close(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	const char *name;
	if (!db_arg(r, false, &name))
		return ADMIN_FAILED;
	/* PgBouncer's close_needed: servers that RECONNECT or a reload marked. */
	struct dynbuf idb;
	dynbuf_init(&idb, SIZE_MAX, false);
	for_each_server(w, s)
	{
		const struct database *db = s->pool->db;
		if (!db_matches(db, name) || (!s->retire && !db->retired))
			continue;
		uint64_t *id = dynbuf_push(&idb, sizeof(*id));
		if (id)
			*id = s->id;
	}
	r->wait.kind = ADMIN_WAIT_CLOSE;
	r->wait.db = name ? xstrdup(name) : NULL;
	size_t bytes;
	r->wait.server_ids = dynbuf_take(&idb, &bytes);
	r->wait.nservers = bytes / sizeof(uint64_t);
	r->wait.tag = "WAIT_CLOSE";
	return ADMIN_WAIT;
}

/* ---- SET ---- */

static const struct {
	const char *name;
	const char *value;
} fake_params[] = {
	{ "client_encoding", "UTF8" },
	{ "default_transaction_isolation", "read committed" },
	{ "standard_conforming_strings", "on" },
	{ "datestyle", "ISO" },
	{ "timezone", "UTC" },
	{ "application_name", "" },
	{ "extra_float_digits", "1" },
};

const char *control_fake_param(const char *name)
{
	for (size_t i = 0; i < sizeof(fake_params) / sizeof(fake_params[0]); i++)
		if (str_ieq(fake_params[i].name, name))
			return fake_params[i].value;
	return NULL;
}

/* SET key = value | SET key TO value; value a word, a 'string', or words. */
static bool set_value(struct admin_req *r, char *buf, size_t len)
{
	if (r->argc < 4 || (r->kind[1] != ADMIN_TOK_WORD && r->kind[1] != ADMIN_TOK_IDENT))
		return false;
	if (!(r->kind[2] == ADMIN_TOK_SYMBOL || (r->kind[2] == ADMIN_TOK_WORD && str_ieq(r->argv[2], "TO"))))
		return false;
	if (r->argc == 4) {
		if (r->kind[3] == ADMIN_TOK_SYMBOL)
			return false;
		snprintf(buf, len, "%s", r->argv[3]);
		return true;
	}
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 3; i < r->argc; i++) {
		if (r->kind[i] != ADMIN_TOK_WORD)
			return false;
		int w = snprintf(buf + n, len - n, "%s%s", i > 3 ? " " : "", r->argv[i]);
		if (w < 0 || (size_t)w >= len - n)
			return false;
		n += (size_t)w;
	}
	return true;
}

enum admin_status control_set(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	char value[1024];
	if (!set_value(r, value, sizeof(value)))
		return syntax(r);
	const char *key = r->argv[1];
	if (control_fake_param(key)) {
		/* Drivers set these on connect; the console speaks UTF-8 ISO anyway. */
		proto_notice(r->out, "00000", "SET ignored");
		return done(r, "SET");
	}
	if (r->c->admin_stats_only)
		return admin_fail(r, "42501", "permission denied: SET requires a user listed in admin_users");
	const struct param_def *p = param_find(key);
	if (!p)
		return admin_fail(r, "42704", "unrecognized configuration parameter \"%s\"", key);
	if (!p->reloadable)
		return admin_fail(r, "55P02",
				  "parameter \"%s\" cannot be changed without restarting "
				  "tokenbouncer",
				  p->name);
	char err[512];
	/* Files and TLS contexts: a changed copy of the configuration is
	 * applied as a reload would (and a TLS change reconnects servers). */
	if (reconfig_needs_apply(p)) {
		if (!reconfig_set(w, p, value, err, sizeof(err)))
			return admin_fail(r, "F0000", "%s", err);
		char shown[256];
		param_format(w->cfg, p, true, shown, sizeof(shown));
		log_info("SET %s = %s (by %s on the console)", p->name, shown, r->c->user);
		return done(r, "SET");
	}
	/* The running configuration is shared by the current databases: the
	 * new value is in force for all of them at once. A later RELOAD reads
	 * the file again and so undoes SET, as in PgBouncer. */
	if (!param_set(w->cref->cfg, p, value, err, sizeof(err)))
		return admin_fail(r, "22023", "%s", err);
	if (strcmp(p->name, "verbose") == 0 || strcmp(p->name, "logfile") == 0 ||
	    strncmp(p->name, "syslog", 6) == 0) {
		log_setup(w->cfg->verbose, false, true);
		if (!log_set_file(w->cfg->logfile, err, sizeof(err)) ||
		    !log_set_syslog(w->cfg->syslog, w->cfg->syslog_ident, w->cfg->syslog_facility, err,
				    sizeof(err)))
			log_error("%s", err);
	}
	/* Larger pools or other limits may let waiting clients in now. */
	struct list_node *d, *dt;
	for_each_db(d, dt) kick_pools(DB_OF(d));
	char shown[256];
	param_format(w->cfg, p, true, shown, sizeof(shown));
	log_info("SET %s = %s (by %s on the console)", p->name, shown, r->c->user);
	return done(r, "SET");
}

/* ---- REFRESH TOKENS, SUSPEND ---- */

/* Force a fetch now for every cached token key, or those of one alias; the
 * fetch runs in the background and SHOW TOKENS shows its outcome. */
enum admin_status control_refresh(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	if (r->argc < 2 || r->argc > 3 || !str_ieq(r->argv[1], "TOKENS"))
		return syntax(r);
	const char *alias = r->argc == 3 ? r->argv[2] : NULL;
	bool found = false, token_backed = false;
	for (size_t i = 0; i < w->cfg->ndbs; i++) {
		const struct db_alias *a = &w->cfg->dbs[i];
		if (alias && strcmp(a->name, alias) != 0)
			continue;
		found = true;
		if (a->auth != UPSTREAM_AUTH_PASSWORD)
			token_backed = true;
	}
	if (alias && !found)
		return admin_fail(r, "3D000", "no such database alias: %s", alias);
	if (alias && !token_backed)
		return admin_fail(r, "55000",
				  "alias \"%s\" is not token-backed (it logs in with "
				  "auth=password): there is no token to refresh",
				  alias);
	if (!token_backed) {
		proto_notice(r->out, "00000", "no token-backed aliases");
		return done(r, "REFRESH");
	}
	int n = token_refresh_all(alias);
	char msg[128];
	snprintf(msg, sizeof(msg), "refreshing %d cached token%s", n, n == 1 ? "" : "s");
	proto_notice(r->out, "00000", msg);
	log_info("REFRESH TOKENS%s%s (by %s on the console): %d keys", alias ? " " : "", alias ? alias : "",
		 r->c->user, n);
	return done(r, "REFRESH");
}

/* Flush and stop reading every client and server; completes when every
 * output queue is empty. Only RESUME (or the console client leaving) ends it. */
enum admin_status control_suspend(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	if (r->argc != 1)
		return syntax(r);
	if (w->suspended || w->admin->paused_all)
		return admin_fail(r, "55000", "already suspended/paused");
	if (any_paused(w, NULL))
		return admin_fail(r, "55000", "cannot suspend with paused databases");
	if (w->shutting_down)
		return admin_fail(r, "55000", "pooler is shutting down");
	log_info("SUSPEND from the console (by %s)", r->c->user);
	w->admin->suspend_owner = r->c->id;
	suspend_all(w, true);
	r->wait.kind = ADMIN_WAIT_SUSPEND;
	r->wait.tag = "SUSPEND";
	return ADMIN_WAIT;
}
