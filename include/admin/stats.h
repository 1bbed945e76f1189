/* What SHOW and /metrics report about pools and databases: live counts per
 * pool, counter totals per database (the sum of its pools, PgBouncer's
 * definition), and averages over stats_period from a ring of snapshots taken
 * by admin_tick. */
#ifndef TB_ADMIN_STATS_H
#define TB_ADMIN_STATS_H
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/util.h"
#include "pool/pool-t.h"

struct worker;

/* The snapshots of one loop's counters (a field of struct worker): one ring
 * slot per snapshot, STATS_RING of them, and an entry per database name. */
#define STATS_RING 64
struct stats_ring {
	struct list_node entries; /* struct stats_entry (admin/stats.c) */
	usec_t time[STATS_RING];
	int len, head;
	usec_t interval;
	/* The first snapshot is all zeros, a second before the first tick: the
	 * counters were zero at start, and averages taken before a whole period
	 * has passed then cover the start too (PgBouncer does the same). */
	bool started;
	usec_t last_line; /* log_stats: the last line written (admin/stats_log.c) */
};

/* SHOW POOLS columns of one pool. */
struct stats_pool_counts {
	int cl_active;             /* logged in, with or without a server */
	int cl_waiting;            /* queued for a server or for the pool's first login */
	int sv_active;             /* linked to a client */
	int sv_idle;               /* usable now */
	int sv_used;               /* idle longer than server_check_delay: checked before reuse */
	int sv_tested;             /* running the reset, check or connect query */
	int sv_login;              /* connecting or logging in */
	int cl_waiting_cancel_req; /* cancel requests parked for its waiting clients (cancel_wait) */
	usec_t maxwait;            /* oldest waiting client's wait */
	usec_t max_server_age;
};

/* Per-second rates and per-transaction/query/assignment averages (microseconds). */
struct stats_averages {
	uint64_t server_assignment_count;
	uint64_t xact_count;
	uint64_t query_count;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t xact_time;
	uint64_t query_time;
	uint64_t wait_time;
	uint64_t client_parse_count;
	uint64_t server_parse_count;
	uint64_t bind_count;
	uint64_t login_count;
};

/* One (database name, user): pools of a database retired by a reload are
 * merged into the current one's, so a name and user appear once. */
struct stats_pool_row {
	const char *user;
	const struct pool *pool; /* the current database's pool, for its settings */
	struct stats_pool_counts counts;
};

void stats_pool_counts(const struct pool *p, usec_t now, struct stats_pool_counts *out);
/* The pools of a database name; the caller frees the array. */
struct stats_pool_row *stats_pool_rows(struct worker *w, const char *dbname, usec_t now, size_t *n);
void stats_add(struct pool_stats *dst, const struct pool_stats *src);
/* Sum over every runtime database of that name (one retired by a reload
 * included) and all their pools; NULL sums every database. */
void stats_db_totals(struct worker *w, const char *name, struct pool_stats *out);
void stats_db_averages(struct worker *w, const char *name, usec_t now, struct stats_averages *out);
/* Sorted, distinct names of the runtime databases (the console excluded).
 * The strings belong to the databases: use before the loop runs again.
 * The caller frees the array. */
const char **stats_db_names(struct worker *w, size_t *n);
/* Take a snapshot when one is due; called from admin_tick. */
void stats_tick(struct worker *w, usec_t now);
/* log_stats: log the averages over all databases once every stats_period. */
void stats_log_tick(struct worker *w, usec_t now);
/* Forget every snapshot (shutdown, or tests). */
void stats_reset(struct worker *w);
#endif
