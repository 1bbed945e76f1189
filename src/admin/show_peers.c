/* SHOW PEERS and SHOW PEER_POOLS with PgBouncer 1.25's columns: the
 * [peers] entries, and the cancel requests being forwarded to each. */
#include <stdio.h>
#include <stdlib.h>

#include "admin/admin_priv.h"
#include "admin/resultset.h"
#include "core/config-t.h"
#include "pool/peer.h"
#include "pool/runtime.h"

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* An optional peer_id argument: true and *id = -1 without one. */
static bool peer_arg(struct admin_req *r, int *id)
{
	*id = -1;
	if (r->argc < 3)
		return true;
	char *end;
	long v = strtol(r->argv[2], &end, 10);
	if (r->argc > 3 || *end || v < 1 || v > 16383) {
		admin_fail(r, "42601", "SHOW %s takes an optional peer_id (1 to 16383)", r->argv[1]);
		return false;
	}
	*id = (int)v;
	return true;
}

/* One row a [peers] entry, or only the one peer_id names; skip_self leaves
 * out this pooler's own entry. */
static enum admin_status peer_table(struct admin_req *r, const struct resultset_col *cols, size_t ncols,
				    bool skip_self,
				    void (*row)(struct resultset *, struct worker *, const struct peer_cfg *))
{
	struct worker *w = client_worker(r->c);
	const struct tb_config *cfg = w->cfg;
	int only;
	if (!peer_arg(r, &only))
		return ADMIN_FAILED;
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, ncols);
	for (size_t i = 0; i < cfg->npeers; i++) {
		const struct peer_cfg *pe = &cfg->peers[i];
		if ((skip_self && pe->id == cfg->peer_id) || (only >= 0 && pe->id != only))
			continue;
		resultset_row_begin(&rs);
		row(&rs, w, pe);
		resultset_row_end(&rs);
	}
	resultset_complete(r->out, "SHOW");
	return ADMIN_DONE;
}

static void peer_row(struct resultset *rs, struct worker *w, const struct peer_cfg *pe)
{
	resultset_int(rs, pe->id);
	resultset_text(rs, pe->host);
	resultset_int(rs, pe->port);
	resultset_int(rs, pe->pool_size >= 0 ? pe->pool_size : w->cfg->default_pool_size);
}

enum admin_status show_peers(struct admin_req *r)
{
	static const struct resultset_col cols[] = {
		{ "peer_id", RS_INT4 },
		{ "host", RS_TEXT },
		{ "port", RS_INT4 },
		{ "pool_size", RS_INT4 },
	};
	return peer_table(r, cols, NCOLS(cols), false, peer_row);
}

static void peer_pool_row(struct resultset *rs, struct worker *w, const struct peer_cfg *pe)
{
	struct peer_counts pc;
	peer_counts(w, pe->id, &pc);
	char name[16];
	snprintf(name, sizeof(name), "%d", pe->id);
	resultset_text(rs, name);
	/* The requester is let go at once (PostgreSQL answers a cancel with
	 * nothing); each request in flight stands for one. */
	resultset_int(rs, pc.connecting + pc.sending);
	resultset_int(rs, pc.waiting);
	resultset_int(rs, pc.sending);
	resultset_int(rs, pc.connecting);
}

enum admin_status show_peer_pools(struct admin_req *r)
{
	static const struct resultset_col cols[] = {
		{ "database", RS_TEXT },
		{ "cl_active_cancel_req", RS_INT4 },
		{ "cl_waiting_cancel_req", RS_INT4 },
		{ "sv_active_cancel", RS_INT4 },
		{ "sv_login", RS_INT4 },
	};
	return peer_table(r, cols, NCOLS(cols), true, peer_pool_row);
}
