/* Unused pools and auto-created databases are freed by the janitor. An
 * object counts as unused once a pass finds it empty; it is freed by a
 * later pass when the timeout has run since then and it is still empty.
 * Nothing is freed while closed clients or servers wait for their deferred
 * free (they may still point at their pool or database). */
#include "pool/idle_drop.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "pool/pool.h"
#include "pool/runtime.h"

/* A pool the janitor fills to min_pool_size is never "unused". */
static bool keeps_servers(const struct pool *p)
{
	struct worker *w = p->w;
	int min = p->db->cfg->min_pool_size >= 0 ? p->db->cfg->min_pool_size : w->cfg->min_pool_size;
	return min > 0 && p->db->cfg->user && !p->db->cfg->user_from_token;
}

/* Whether the object stays unused past limit: stamps the first pass that
 * sees it unused, and clears the stamp when it is in use again. */
static bool unused_for(usec_t *since, bool unused, usec_t limit, usec_t now)
{
	if (!unused || limit <= 0) {
		*since = 0; /* a timeout turned on later counts from then */
		return false;
	}
	if (!*since) {
		*since = now;
		return false;
	}
	return now - *since >= limit;
}

static void drop_pools(struct database *db, usec_t limit, usec_t now)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &db->pools) {
		struct pool *p = list_entry(n, struct pool, node);
		bool unused = pool_is_empty(p) && !keeps_servers(p);
		if (!unused_for(&p->unused_since, unused, limit, now))
			continue;
		log_info("pool %s@%s: unused for pool_idle_timeout; freed", p->user, db->name);
		pool_free(p);
	}
}

/* As PgBouncer: a "*" database is unused while none of its pools has a
 * client or a server (idle servers go by server_idle_timeout first). */
static bool database_unused(const struct database *db)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &db->pools)
		if (!pool_is_empty(list_entry(n, struct pool, node)))
			return false;
	return true;
}

static void drop_database(struct database *db)
{
	char name[256];
	snprintf(name, sizeof(name), "%s", db->name);
	if (runtime_database_free_unused(db))
		log_info("database %s: made from \"*\" and unused for autodb_idle_timeout; freed", name);
}

static bool auto_created(const struct database *db)
{
	return !db->is_admin && !db->retired && strcmp(db->cfg->name, "*") == 0 && strcmp(db->name, "*") != 0;
}

void idle_drop_run(struct worker *w, usec_t now)
{
	if (!list_empty(&w->free_clients) || !list_empty(&w->free_servers))
		return;
	usec_t pool_limit = w->cfg->pool_idle_timeout, autodb_limit = w->cfg->autodb_idle_timeout;
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases) {
		struct database *db = list_entry(d, struct database, node);
		if (db->is_admin || db->retired)
			continue;
		drop_pools(db, pool_limit, now);
		if (!auto_created(db))
			continue;
		if (unused_for(&db->unused_since, database_unused(db), autodb_limit, now))
			drop_database(db);
	}
}
