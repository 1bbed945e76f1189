/* log_stats: one line of averages over all databases every stats_period, in
 * PgBouncer's words, so log parsers written for it (pgbadger) read ours. */
#include "admin/stats.h"

#include <inttypes.h>

#include "core/config.h"
#include "core/log.h"
#include "pool/runtime.h"

void stats_log_tick(struct worker *w, usec_t now)
{
	if (w->stats->last_line == 0 || now < w->stats->last_line) {
		/* The first period starts at the first tick. */
		w->stats->last_line = now;
		return;
	}
	if (now - w->stats->last_line < w->cfg->stats_period)
		return;
	w->stats->last_line = now;
	if (!w->cfg->log_stats)
		return;
	struct stats_averages a;
	stats_db_averages(w, NULL, now, &a);
	log_info("stats: %" PRIu64 " xacts/s, %" PRIu64 " queries/s, %" PRIu64 " client parses/s, "
		 "%" PRIu64 " server parses/s, %" PRIu64 " binds/s, in %" PRIu64 " B/s, out %" PRIu64
		 " B/s, xact %" PRIu64 " us, query %" PRIu64 " us, wait %" PRIu64 " us",
		 a.xact_count, a.query_count, a.client_parse_count, a.server_parse_count, a.bind_count,
		 a.bytes_received, a.bytes_sent, a.xact_time, a.query_time, a.wait_time);
}
