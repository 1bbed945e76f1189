/* Client connection limits; see include/pool/climit.h. Counts live in two
 * small chained hash tables keyed by name, an entry freed when it drops to
 * zero, so memory follows the names in use. */
#include "pool/climit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/util.h"
#include "pool/pool-t.h"
#include "pool/runtime.h"

struct name_count {
	struct name_count *next;
	int n;
	char name[];
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct name_count **slot_of(struct climit_table *t, const char *name)
{
	struct name_count **p = &t->bucket[name_hash(name) % CLIMIT_BUCKETS];
	while (*p && strcmp((*p)->name, name) != 0)
		p = &(*p)->next;
	return p;
}

static int count_of(struct climit_table *t, const char *name)
{
	struct name_count *e = *slot_of(t, name);
	return e ? e->n : 0;
}

static void count_add(struct climit_table *t, const char *name, int delta)
{
	struct name_count **p = slot_of(t, name);
	if (!*p) {
		if (delta <= 0)
			return;
		size_t len = strlen(name);
		*p = xcalloc(1, sizeof(**p) + len + 1);
		memcpy((*p)->name, name, len + 1);
	}
	(*p)->n += delta;
	if ((*p)->n <= 0) {
		struct name_count *dead = *p;
		*p = dead->next;
		free(dead);
	}
}

static void table_clear(struct climit_table *t)
{
	for (size_t i = 0; i < CLIMIT_BUCKETS; i++) {
		while (t->bucket[i]) {
			struct name_count *e = t->bucket[i];
			t->bucket[i] = e->next;
			free(e);
		}
	}
}

int climit_db_max(struct worker *w, const char *alias)
{
	const struct db_alias *a = config_find_db(w->cfg, alias);
	if (a && a->max_db_client_connections >= 0)
		return a->max_db_client_connections;
	return w->cfg->max_db_client_connections;
}

/* PgBouncer: the [users] entry of the login user (not the pool's forced user). */
int climit_user_max(struct worker *w, const char *user)
{
	const struct user_cfg *u = config_find_user(w->cfg, user);
	if (u && u->max_user_client_connections >= 0)
		return u->max_user_client_connections;
	return w->cfg->max_user_client_connections;
}

bool climit_admit(struct client *c, const char **why)
{
	struct worker *w = client_worker(c);
	if (c->is_admin || c->limit_counted || !c->db || !c->user)
		return true;
	int dmax = climit_db_max(w, c->db->name), umax = climit_user_max(w, c->user);
	if (dmax > 0 && count_of(&w->climits.by_db, c->db->name) >= dmax) {
		*why = "client connections exceeded (max_db_client_connections)";
		return false;
	}
	if (umax > 0 && count_of(&w->climits.by_user, c->user) >= umax) {
		*why = "client connections exceeded (max_user_client_connections)";
		return false;
	}
	count_add(&w->climits.by_db, c->db->name, 1);
	count_add(&w->climits.by_user, c->user, 1);
	c->limit_counted = true;
	return true;
}

void climit_release(struct client *c)
{
	struct worker *w = client_worker(c);
	if (!c->limit_counted)
		return;
	count_add(&w->climits.by_db, c->db->name, -1);
	count_add(&w->climits.by_user, c->user, -1);
	c->limit_counted = false;
}

int climit_db_clients(struct worker *w, const char *alias)
{
	return count_of(&w->climits.by_db, alias);
}

int climit_user_clients(struct worker *w, const char *user)
{
	return count_of(&w->climits.by_user, user);
}

void climit_reset(struct worker *w)
{
	table_clear(&w->climits.by_db);
	table_clear(&w->climits.by_user);
}
