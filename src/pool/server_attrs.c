#include "pool/server_attrs.h"
#include "pool/worker.h"

#include <stdio.h>

#include "core/hostlist.h"
#include "pg/proto.h"
#include "pg/session_attrs.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "pool/varcache.h"

/* What a refused server is not, in words: the mode's name, as a noun for
 * the two that name a kind of server. */
static const char *wanted(enum target_session_attrs mode)
{
	if (mode == TSA_MODE_PRIMARY)
		return "a primary";
	if (mode == TSA_MODE_STANDBY || mode == TSA_MODE_PREFER_STANDBY)
		return "a standby";
	return session_attrs_mode_name(mode);
}

static enum target_session_attrs mode_of(const struct database *db)
{
	int m = db->cfg->target_session_attrs;
	return m < 0 ? TSA_MODE_ANY : (enum target_session_attrs)m;
}

bool server_attrs_accept(struct server *s)
{
	struct worker *w = s->w;
	struct database *db = s->pool->db;
	enum target_session_attrs mode = mode_of(db);
	if (mode == TSA_MODE_ANY)
		return true;
	size_t hosts = db->host && db->host[0] != '/' ? hostlist_count(db->host) : 1;
	if (hosts == 0)
		hosts = 1;
	/* prefer-standby settles for any server once a whole round found no standby. */
	bool fallback = db->tsa_misses + 1 >= hosts;
	enum tsa_verdict v = session_attrs_judge(mode, &s->attrs, fallback);
	if (v == TSA_OK) {
		db->tsa_misses = 0;
		return true;
	}
	if (!s->pool->have_welcome) {
		/* What this server reported must not reach the pool's clients. */
		varcache_clear(&w->vars, &s->pool->welcome_vars);
		pbuf_reset(&s->pool->welcome_other);
	}
	char msg[300];
	if (v == TSA_UNKNOWN) {
		snprintf(msg, sizeof(msg),
			 "server %s:%d did not report in_hot_standby and "
			 "default_transaction_read_only, which target_session_attrs=%s needs "
			 "(PostgreSQL 14 or later)",
			 s->host ? s->host : "", s->port, session_attrs_mode_name(mode));
	} else {
		snprintf(msg, sizeof(msg), "server %s:%d is not %s (target_session_attrs=%s)",
			 s->host ? s->host : "", s->port, wanted(mode), session_attrs_mode_name(mode));
	}
	db->host_failed++; /* load_balance_hosts=disable: move on to the next host */
	if (v == TSA_WRONG && ++db->tsa_misses < hosts) {
		server_close(s, "%s; trying the next host", msg);
		return false;
	}
	db->tsa_misses = 0;
	char all[400];
	snprintf(all, sizeof(all), "no host of database \"%s\" is %s: %s", db->name, wanted(mode), msg);
	/* Recorded first, so that closing does not open the next server at once. */
	pool_record_failure(s->pool, "08006", all, false);
	server_close(s, "%s", all);
	pool_fail_waiters(s->pool);
	return false;
}
