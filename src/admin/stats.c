#include "admin/stats.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/dynbuf.h"
#include "pool/cancel_wait.h"
#include "pool/pool_iter.h"
#include "pool/runtime.h"

/* Snapshots are taken every stats_period / STATS_SLOTS_PER_PERIOD (at least
 * a second), so the ring always holds one taken a whole period ago and the
 * averages slide smoothly instead of jumping once a period as PgBouncer's do.
 * Memory stays at STATS_RING snapshots per database whatever the period. */
#define STATS_SLOTS_PER_PERIOD 60

struct stats_entry {
	char *name;
	struct pool_stats snap[STATS_RING];
	bool seen;
	struct list_node node;
};

void stats_add(struct pool_stats *dst, const struct pool_stats *src)
{
	dst->xact_count += src->xact_count;
	dst->query_count += src->query_count;
	dst->bytes_received += src->bytes_received;
	dst->bytes_sent += src->bytes_sent;
	dst->xact_time += src->xact_time;
	dst->query_time += src->query_time;
	dst->wait_time += src->wait_time;
	dst->server_assignment_count += src->server_assignment_count;
	dst->client_parse_count += src->client_parse_count;
	dst->server_parse_count += src->server_parse_count;
	dst->bind_count += src->bind_count;
	dst->login_count += src->login_count;
	dst->login_failures += src->login_failures;
}

static int count_list(const struct list_node *head)
{
	return (int)list_count(head);
}

void stats_pool_counts(const struct pool *p, usec_t now, struct stats_pool_counts *out)
{
	struct worker *w = p->w;
	memset(out, 0, sizeof(*out));
	out->cl_active = count_list(&p->active_clients);
	out->cl_waiting = p->nwaiting + p->nwelcome; /* PgBouncer counts logins waiting for a server too */
	out->sv_active = count_list(&p->active_servers);
	out->sv_tested = count_list(&p->used_servers);
	out->sv_login = count_list(&p->new_servers);
	out->cl_waiting_cancel_req = cancel_wait_count(p);
	bool checks = config_str_set(w->cfg->server_check_query);
	struct list_node *n, *t;
	list_for_each_safe(n, t, &p->idle_servers) {
		const struct server *s = list_entry(n, struct server, node);
		if (checks && now - s->idle_since >= w->cfg->server_check_delay)
			out->sv_used++;
		else
			out->sv_idle++;
	}
	/* Both lists are FIFO: their heads have waited longest. */
	const struct list_node *waits[] = { &p->waiting_clients, &p->welcome_clients };
	for (size_t i = 0; i < 2; i++) {
		const struct list_node *first = list_first(waits[i]);
		const struct client *c = first ? list_entry(first, struct client, node) : NULL;
		if (c && now - c->state_since > out->maxwait)
			out->maxwait = now - c->state_since;
	}
	const struct list_node *lists[] = { &p->idle_servers, &p->active_servers, &p->used_servers };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		list_for_each_safe(n, t, lists[i]) {
			const struct server *s = list_entry(n, struct server, node);
			if (now - s->created_at > out->max_server_age)
				out->max_server_age = now - s->created_at;
		}
	}
}

void stats_db_totals(struct worker *w, const char *name, struct pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases) {
		const struct database *db = list_entry(d, struct database, node);
		if (name && strcmp(db->name, name) != 0)
			continue;
		struct list_node *n, *t;
		list_for_each_safe(n, t, &db->pools)
			stats_add(out, &list_entry(n, struct pool, node)->stats);
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **stats_db_names(struct worker *w, size_t *n)
{
	size_t count = list_count(&w->databases), k = 0;
	const char **names = xcalloc(count + 1, sizeof(*names));
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases)
		names[k++] = list_entry(d, struct database, node)->name;
	qsort(names, k, sizeof(*names), cmp_names);
	size_t out = 0;
	for (size_t i = 0; i < k; i++)
		if (out == 0 || strcmp(names[out - 1], names[i]) != 0)
			names[out++] = names[i];
	*n = out;
	return names;
}

static struct stats_entry *find_entry(struct worker *w, const char *name)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->stats->entries) {
		struct stats_entry *e = list_entry(n, struct stats_entry, node);
		if (strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

static void free_entry(struct stats_entry *e)
{
	list_del(&e->node);
	free(e->name);
	free(e);
}

void stats_reset(struct worker *w)
{
	struct list_node *n;
	while ((n = list_first(&w->stats->entries)))
		free_entry(list_entry(n, struct stats_entry, node));
	w->stats->len = 0;
	w->stats->head = 0;
	w->stats->interval = 0;
}

void stats_tick(struct worker *w, usec_t now)
{
	usec_t interval = w->cfg->stats_period / STATS_SLOTS_PER_PERIOD;
	if (interval < USEC_PER_SEC)
		interval = USEC_PER_SEC;
	if (interval != w->stats->interval) {
		/* stats_period changed: old snapshots are on the wrong grid. */
		stats_reset(w);
		w->stats->interval = interval;
	}
	if (!w->stats->started) {
		w->stats->started = true;
		w->stats->len = 1;
		w->stats->head = 0;
		w->stats->time[0] = now - USEC_PER_SEC;
	}
	if (w->stats->len > 0 && now - w->stats->time[w->stats->head] < interval)
		return;
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->stats->entries)
		list_entry(n, struct stats_entry, node)->seen = false;
	size_t count;
	const char **names = stats_db_names(w, &count);
	for (size_t i = 0; i < count; i++) {
		struct stats_entry *e = find_entry(w, names[i]);
		if (!e) {
			/* Zeros in the older slots are right: a database that did not
			 * exist then had counted nothing. */
			e = xcalloc(1, sizeof(*e));
			e->name = xstrdup(names[i]);
			list_add_tail(&w->stats->entries, &e->node);
		}
		e->seen = true;
	}
	free(names);
	list_for_each_safe(n, t, &w->stats->entries) {
		struct stats_entry *e = list_entry(n, struct stats_entry, node);
		if (!e->seen)
			free_entry(e);
	}
	w->stats->head = w->stats->len == 0 ? 0 : (w->stats->head + 1) % STATS_RING;
	if (w->stats->len < STATS_RING)
		w->stats->len++;
	w->stats->time[w->stats->head] = now;
	list_for_each_safe(n, t, &w->stats->entries) {
		struct stats_entry *e = list_entry(n, struct stats_entry, node);
		stats_db_totals(w, e->name, &e->snap[w->stats->head]);
	}
}

/* Counters shrink when a pool is freed with its database; never report a
 * negative rate for that. */
static uint64_t delta(uint64_t cur, uint64_t old)
{
	return cur > old ? cur - old : 0;
}

static uint64_t per_sec(uint64_t d, usec_t dur)
{
	return (uint64_t)((double)d * (double)USEC_PER_SEC / (double)dur);
}

void stats_db_averages(struct worker *w, const char *name, usec_t now, struct stats_averages *out)
{
	memset(out, 0, sizeof(*out));
	if (w->stats->len == 0)
		return;
	/* The newest snapshot at least a period old, else the oldest there is. */
	int idx = w->stats->head;
	for (int i = 0; i < w->stats->len; i++) {
		idx = (w->stats->head - i + STATS_RING) % STATS_RING;
		if (now - w->stats->time[idx] >= w->cfg->stats_period)
			break;
	}
	usec_t dur = now - w->stats->time[idx];
	if (dur <= 0)
		return;
	struct pool_stats cur, base;
	stats_db_totals(w, name, &cur);
	memset(&base, 0, sizeof(base));
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->stats->entries) {
		const struct stats_entry *e = list_entry(n, struct stats_entry, node);
		if (!name || strcmp(e->name, name) == 0)
			stats_add(&base, &e->snap[idx]);
	}
	uint64_t assignments = delta(cur.server_assignment_count, base.server_assignment_count);
	uint64_t xacts = delta(cur.xact_count, base.xact_count);
	uint64_t queries = delta(cur.query_count, base.query_count);
	out->server_assignment_count = per_sec(assignments, dur);
	out->xact_count = per_sec(xacts, dur);
	out->query_count = per_sec(queries, dur);
	out->bytes_received = per_sec(delta(cur.bytes_received, base.bytes_received), dur);
	out->bytes_sent = per_sec(delta(cur.bytes_sent, base.bytes_sent), dur);
	out->client_parse_count = per_sec(delta(cur.client_parse_count, base.client_parse_count), dur);
	out->server_parse_count = per_sec(delta(cur.server_parse_count, base.server_parse_count), dur);
	out->bind_count = per_sec(delta(cur.bind_count, base.bind_count), dur);
	out->login_count = per_sec(delta(cur.login_count, base.login_count), dur);
	/* Durations are averaged per event, as PgBouncer does. */
	if (xacts)
		out->xact_time = delta(cur.xact_time, base.xact_time) / xacts;
	if (queries)
		out->query_time = delta(cur.query_time, base.query_time) / queries;
	if (assignments)
		out->wait_time = delta(cur.wait_time, base.wait_time) / assignments;
}

struct stats_pool_row *stats_pool_rows(struct worker *w, const char *dbname, usec_t now, size_t *n)
{
	struct dynbuf b;
	dynbuf_init(&b, SIZE_MAX, false);
	for_each_pool(w, p)
	{
		if (strcmp(p->db->name, dbname) != 0)
			continue;
		struct stats_pool_counts pc;
		stats_pool_counts(p, now, &pc);
		struct stats_pool_row *rows = (struct stats_pool_row *)b.data, *row = NULL;
		for (size_t i = 0; i < b.len / sizeof(*rows) && !row; i++)
			if (strcmp(rows[i].user, p->user) == 0)
				row = &rows[i];
		if (!row) {
			row = dynbuf_push(&b, sizeof(*row));
			if (!row)
				continue;
			row->user = p->user;
			row->pool = p;
			row->counts = pc;
			continue;
		}
		/* The same (database, user) from a database retired by a reload. */
		if (!p->db->retired)
			row->pool = p;
		struct stats_pool_counts *c = &row->counts;
		c->cl_active += pc.cl_active;
		c->cl_waiting += pc.cl_waiting;
		c->sv_active += pc.sv_active;
		c->sv_idle += pc.sv_idle;
		c->sv_used += pc.sv_used;
		c->sv_tested += pc.sv_tested;
		c->sv_login += pc.sv_login;
		c->cl_waiting_cancel_req += pc.cl_waiting_cancel_req;
		if (pc.maxwait > c->maxwait)
			c->maxwait = pc.maxwait;
		if (pc.max_server_age > c->max_server_age)
			c->max_server_age = pc.max_server_age;
	}
	if (!b.data && !dynbuf_reserve(&b, 0)) /* callers free an empty array too */
		return NULL;
	size_t bytes;
	struct stats_pool_row *rows = dynbuf_take(&b, &bytes);
	*n = bytes / sizeof(*rows);
	return rows;
}
