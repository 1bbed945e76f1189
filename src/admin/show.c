/* SHOW commands. Column names and order are PgBouncer 1.25's, so tools that
 * read its console read ours; tokenbouncer's own columns, and the legacy
 * names old exporters still read, come after them. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "admin/admin_priv.h"
#include "admin/resultset.h"
#include "admin/stats.h"
#include "config.h"
#include "core/config.h"
#include "core/dynbuf.h"
#include "core/params.h"
#include "core/version.h"
#include "net/dnscache.h"
#include "pg/userlist.h"
#include "pool/climit.h"
#include "pool/client.h"
#include "pool/pool.h"
#include "pool/pool_iter.h"
#include "pool/prepared.h"
#include "pool/ps_forward.h"
#include "pool/runtime.h"
#include "pool/server.h"
#include "token/credential.h"
#include "token/token.h"

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const help_text =
	"SHOW HELP|VERSION|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|STATS|STATS_TOTALS|"
	"STATS_AVERAGES|TOTALS|LISTS|MEM|STATE|SOCKETS|ACTIVE_SOCKETS|TOKENS|CREDENTIALS\n"
	"SHOW DNS_HOSTS|DNS_ZONES (zones always empty)\n"
	"SHOW PEERS|PEER_POOLS\n"
	"SHOW TOKENS lists cached token keys (never the token); SHOW CREDENTIALS the cloud identities\n"
	"SET key = arg\n"
	"RELOAD\n"
	"PAUSE [<db>]\n"
	"RESUME [<db>]\n"
	"DISABLE <db>\n"
	"ENABLE <db>\n"
	"RECONNECT [<db>]\n"
	"KILL [<db>]\n"
	"KILL_CLIENT <id>\n"
	"WAIT_CLOSE [<db>]\n"
	"REFRESH TOKENS [<alias>]\n"
	"SHUTDOWN\n"
	"SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS";

static enum admin_status syntax(struct admin_req *r)
{
	return admin_fail(r, "42601", "syntax error in \"%s\", use SHOW HELP;", r->text);
}

static enum admin_status done(struct admin_req *r)
{
	resultset_complete(r->out, "SHOW");
	return ADMIN_DONE;
}

/* The optional filter argument (SHOW STATS db, SHOW CLIENTS id, ...). */
static const char *filter_arg(const struct admin_req *r)
{
	return r->argc >= 3 ? r->argv[2] : NULL;
}

static bool name_passes(const char *filter, const char *name)
{
	return !filter || (name && strcmp(filter, name) == 0);
}

static const char *pool_mode_name(enum pool_mode m)
{
	switch (m) {
	case POOL_MODE_SESSION:
		return "session";
	case POOL_MODE_TRANSACTION:
		return "transaction";
	case POOL_MODE_STATEMENT:
		return "statement";
	default:
		return NULL;
	}
}

static int64_t usec_to_sec(usec_t t)
{
	return t / USEC_PER_SEC;
}

/* Wall-clock text of a monotonic instant, as PgBouncer prints timestamps. */
static void format_time(usec_t mono, usec_t now_mono, usec_t now_wall, char *buf, size_t len)
{
	time_t t = (time_t)((now_wall - (now_mono - mono)) / USEC_PER_SEC);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void format_addr(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen, int *port)
{
	char serv[16] = "0";
	*port = 0;
	if (sa->sa_family == AF_UNIX || sa->sa_family == AF_UNSPEC) {
		snprintf(host, hostlen, "unix");
		return;
	}
	if (getnameinfo(sa, salen, host, (socklen_t)hostlen, serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(host, hostlen, "?");
	*port = (int)strtol(serv, NULL, 10);
}

static void local_addr(struct worker *w, int fd, char *host, size_t hostlen, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(host, hostlen, "?");
		*port = 0;
		return;
	}
	format_addr((struct sockaddr *)&ss, len, host, hostlen, port);
	if (ss.ss_family == AF_UNIX)
		*port = w->cfg->listen_port;
}

static void tls_info(SSL *ssl, char *buf, size_t len)
{
	buf[0] = '\0';
	if (ssl)
		snprintf(buf, len, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

/* ---- SHOW HELP, VERSION, STATE, CONFIG ---- */

static enum admin_status show_help(struct admin_req *r)
{
	resultset_notice(r->out, "Console usage", help_text);
	return done(r);
}

static enum admin_status show_version(struct admin_req *r)
{
	static const struct resultset_col cols[] = { { "version", RS_TEXT } };
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	resultset_row_begin(&rs);
	resultset_text(&rs, TB_VERSION_STRING);
	resultset_row_end(&rs);
	return done(r);
}

static enum admin_status show_state(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col cols[] = { { "key", RS_TEXT }, { "value", RS_TEXT } };
	bool paused = control_paused_all(w);
	const char *const rows[][2] = {
		{ "active", paused || w->suspended || w->shutting_down ? "no" : "yes" },
		{ "paused", paused ? "yes" : "no" },
		{ "suspended", w->suspended ? "yes" : "no" },
	};
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	for (size_t i = 0; i < NCOLS(rows); i++) {
		resultset_row_begin(&rs);
		resultset_text(&rs, rows[i][0]);
		resultset_text(&rs, rows[i][1]);
		resultset_row_end(&rs);
	}
	return done(r);
}

static int cmp_params(const void *a, const void *b)
{
	return strcmp((*(const struct param_def *const *)a)->name,
		      (*(const struct param_def *const *)b)->name);
}

static enum admin_status show_config(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col cols[] = {
		{ "key", RS_TEXT },
		{ "value", RS_TEXT },
		{ "default", RS_TEXT },
		{ "changeable", RS_TEXT },
	};
	const char *filter = filter_arg(r);
	const struct param_def **sorted = xcalloc(param_count, sizeof(*sorted));
	for (size_t i = 0; i < param_count; i++)
		sorted[i] = &param_table[i];
	qsort(sorted, param_count, sizeof(*sorted), cmp_params);
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	char value[1024];
	for (size_t i = 0; i < param_count; i++) {
		const struct param_def *p = sorted[i];
		if (filter && !str_ieq(filter, p->name))
			continue;
		param_format(w->cfg, p, true, value, sizeof(value));
		resultset_row_begin(&rs);
		resultset_text(&rs, p->name);
		resultset_text(&rs, value);
		resultset_text(&rs, p->secret && p->default_value && *p->default_value ? "********"
				    : p->default_value                                 ? p->default_value
										       : "");
		resultset_text(&rs, p->reloadable ? "yes" : "no");
		resultset_row_end(&rs);
	}
	free(sorted);
	if (filter && rs.rows == 0) {
		pbuf_reset(r->out);
		return admin_fail(r, "42704", "unrecognized configuration parameter \"%s\"", filter);
	}
	return done(r);
}

/* ---- SHOW DATABASES ---- */

static int count_db_servers(struct worker *w, const char *name)
{
	int n = 0;
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases) {
		const struct database *db = list_entry(d, struct database, node);
		if (strcmp(db->name, name) != 0)
			continue;
		struct list_node *pn, *pt;
		list_for_each_safe(pn, pt, &db->pools)
			n += list_entry(pn, struct pool, node)->nservers;
	}
	return n;
}

static int count_db_clients(struct worker *w, const struct database *want, const char *name)
{
	int n = 0;
	struct list_node *it, *t;
	list_for_each_safe(it, t, &w->clients) {
		const struct client *c = list_entry(it, struct client, all_node);
		if (c->state == CL_CLOSING || !c->db)
			continue;
		if (want ? c->db == want : (name && !c->db->is_admin && strcmp(c->db->name, name) == 0))
			n++;
	}
	return n;
}

/* The database of that name that takes new clients, if there is one yet. */
static const struct database *current_db(struct worker *w, const char *name)
{
	const struct database *found = NULL;
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases) {
		const struct database *db = list_entry(d, struct database, node);
		if (strcmp(db->name, name) == 0 && (!found || !db->retired))
			found = db;
	}
	return found;
}

static int int_or(int v, int dflt)
{
	return v >= 0 ? v : dflt;
}

static void database_row(struct worker *w, struct resultset *rs, const char *name, const struct db_alias *a)
{
	const struct tb_config *cfg = w->cfg;
	const struct database *db = current_db(w, name);
	int reserve = int_or(a->reserve_pool, cfg->reserve_pool_size);
	usec_t life = a->server_lifetime >= 0 ? a->server_lifetime : cfg->server_lifetime;
	resultset_row_begin(rs);
	resultset_text(rs, name);
	resultset_text(rs, a->host);
	resultset_int(rs, a->port > 0 ? a->port : 5432);
	resultset_text(rs, a->dbname ? a->dbname : name);
	resultset_text(rs, a->user);
	resultset_int(rs, int_or(a->pool_size, cfg->default_pool_size));
	resultset_int(rs, int_or(a->min_pool_size, cfg->min_pool_size));
	resultset_int(rs, reserve);
	resultset_int(rs, usec_to_sec(life));
	resultset_text(rs, pool_mode_name(a->pool_mode));
	resultset_text(rs, a->load_balance_hosts == LOAD_BALANCE_DISABLE ? "disable" : "round-robin");
	resultset_int(rs, int_or(a->max_db_connections, cfg->max_db_connections));
	resultset_int(rs, count_db_servers(w, name));
	resultset_int(rs, climit_db_max(w, name));
	resultset_int(rs, climit_db_clients(w, name));
	resultset_int(rs, db ? db->paused : control_paused_all(w));
	resultset_int(rs, db ? db->disabled : 0);
	resultset_int(rs, reserve); /* legacy reserve_pool */
	resultset_row_end(rs);
}

static void console_database_row(struct worker *w, struct resultset *rs)
{
	resultset_row_begin(rs);
	resultset_text(rs, w->admin_db->name);
	resultset_null(rs);
	resultset_int(rs, w->cfg->listen_port);
	resultset_text(rs, w->admin_db->name);
	resultset_null(rs);
	for (int i = 0; i < 4; i++)
		resultset_int(rs, 0); /* pool_size, min_pool_size, reserve_pool_size, server_lifetime */
	resultset_text(rs, "statement");
	resultset_null(rs);
	resultset_int(rs, 0);
	resultset_int(rs, 0);
	resultset_int(rs, 0);
	resultset_int(rs, count_db_clients(w, w->admin_db, NULL));
	resultset_int(rs, 0);
	resultset_int(rs, 0);
	resultset_int(rs, 0);
	resultset_row_end(rs);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Configured aliases (not "*"), the databases made from "*" or kept by a
 * reload, and the console: sorted and distinct. */
/* Sorts the k names and drops repeats; returns how many are left. */
static size_t sort_unique(const char **names, size_t k)
{
	size_t out = 0;
	qsort(names, k, sizeof(*names), cmp_str);
	for (size_t i = 0; i < k; i++)
		if (out == 0 || strcmp(names[out - 1], names[i]) != 0)
			names[out++] = names[i];
	return out;
}

static const char **database_names(struct worker *w, size_t *n)
{
	size_t nrt;
	const char **rtnames = stats_db_names(w, &nrt);
	size_t cap = w->cfg->ndbs + nrt + 1, k = 0;
	const char **names = xcalloc(cap, sizeof(*names));
	for (size_t i = 0; i < w->cfg->ndbs; i++)
		if (strcmp(w->cfg->dbs[i].name, "*") != 0)
			names[k++] = w->cfg->dbs[i].name;
	for (size_t i = 0; i < nrt; i++)
		names[k++] = rtnames[i];
	names[k++] = w->admin_db->name;
	free(rtnames);
	*n = sort_unique(names, k);
	return names;
}

static const struct db_alias *alias_of(struct worker *w, const char *name)
{
	for (size_t i = 0; i < w->cfg->ndbs; i++)
		if (strcmp(w->cfg->dbs[i].name, name) == 0)
			return &w->cfg->dbs[i];
	const struct database *db = current_db(w, name);
	return db ? db->cfg : NULL;
}

/* The row builder of SHOW DATABASES or SHOW POOLS for one database name
 * (is_console: the admin console's). */
typedef void database_rows_fn(struct worker *w, struct resultset *rs, const char *name, bool is_console,
			      void *arg);

/* One call of row for each database name the request's filter lets through, in order. */
static enum admin_status database_table(struct admin_req *r, const struct resultset_col *cols, size_t ncols,
					database_rows_fn *row, void *arg)
{
	struct worker *w = client_worker(r->c);
	const char *filter = filter_arg(r);
	size_t n;
	const char **names = database_names(w, &n);
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, ncols);
	for (size_t i = 0; i < n; i++)
		if (name_passes(filter, names[i]))
			row(w, &rs, names[i], strcmp(names[i], w->admin_db->name) == 0, arg);
	free(names);
	return done(r);
}

static void database_rows(struct worker *w, struct resultset *rs, const char *name, bool is_console, void *arg)
{
	(void)arg;
	if (is_console) {
		console_database_row(w, rs);
		return;
	}
	const struct db_alias *a = alias_of(w, name);
	if (a)
		database_row(w, rs, name, a);
}

static enum admin_status show_databases(struct admin_req *r)
{
	static const struct resultset_col cols[] = {
		{ "name", RS_TEXT },
		{ "host", RS_TEXT },
		{ "port", RS_INT4 },
		{ "database", RS_TEXT },
		{ "force_user", RS_TEXT },
		{ "pool_size", RS_INT4 },
		{ "min_pool_size", RS_INT4 },
		{ "reserve_pool_size", RS_INT4 },
		{ "server_lifetime", RS_INT4 },
		{ "pool_mode", RS_TEXT },
		{ "load_balance_hosts", RS_TEXT },
		{ "max_connections", RS_INT4 },
		{ "current_connections", RS_INT4 },
		{ "max_client_connections", RS_INT4 },
		{ "current_client_connections", RS_INT4 },
		{ "paused", RS_INT4 },
		{ "disabled", RS_INT4 },
		/* Renamed reserve_pool_size in PgBouncer 1.24; Debian's exporter 1.7 reads this. */
		{ "reserve_pool", RS_INT4 },
	};
	return database_table(r, cols, NCOLS(cols), database_rows, NULL);
}

/* ---- SHOW POOLS ---- */

static void pool_row(struct resultset *rs, const char *dbname, const char *user,
		     const struct stats_pool_counts *pc, const char *mode)
{
	resultset_row_begin(rs);
	resultset_text(rs, dbname);
	resultset_text(rs, user);
	resultset_int(rs, pc->cl_active);
	resultset_int(rs, pc->cl_waiting);
	resultset_int(rs, 0); /* cl_active_cancel_req */
	resultset_int(rs, pc->cl_waiting_cancel_req);
	resultset_int(rs, pc->sv_active);
	resultset_int(rs, 0); /* sv_active_cancel */
	resultset_int(rs, 0); /* sv_being_canceled */
	resultset_int(rs, pc->sv_idle);
	resultset_int(rs, pc->sv_used);
	resultset_int(rs, pc->sv_tested);
	resultset_int(rs, pc->sv_login);
	resultset_int(rs, usec_to_sec(pc->maxwait));
	resultset_int(rs, pc->maxwait % USEC_PER_SEC);
	resultset_text(rs, mode);
	resultset_null(rs); /* load_balance_hosts */
	resultset_row_end(rs);
}

static enum pool_mode pool_mode_of(const struct pool *p)
{
	struct worker *w = p->w;
	const struct user_cfg *u = config_find_user(w->cfg, p->user);
	if (u && u->pool_mode != POOL_MODE_UNSET)
		return u->pool_mode;
	if (p->db->cfg->pool_mode != POOL_MODE_UNSET)
		return p->db->cfg->pool_mode;
	return w->cfg->pool_mode;
}

/* arg: the monotonic time of the request. */
static void pool_rows(struct worker *w, struct resultset *rs, const char *name, bool is_console, void *arg)
{
	if (is_console) {
		struct stats_pool_counts pc = { .cl_active = (int)list_count(admin_client_list(w)) };
		pool_row(rs, name, w->admin_db->name, &pc, "statement");
		return;
	}
	size_t nrows;
	struct stats_pool_row *rows = stats_pool_rows(w, name, *(const usec_t *)arg, &nrows);
	for (size_t k = 0; k < nrows; k++)
		pool_row(rs, name, rows[k].user, &rows[k].counts, pool_mode_name(pool_mode_of(rows[k].pool)));
	free(rows);
}

static enum admin_status show_pools(struct admin_req *r)
{
	static const struct resultset_col cols[] = {
		{ "database", RS_TEXT },
		{ "user", RS_TEXT },
		{ "cl_active", RS_INT4 },
		{ "cl_waiting", RS_INT4 },
		{ "cl_active_cancel_req", RS_INT4 },
		{ "cl_waiting_cancel_req", RS_INT4 },
		{ "sv_active", RS_INT4 },
		{ "sv_active_cancel", RS_INT4 },
		{ "sv_being_canceled", RS_INT4 },
		{ "sv_idle", RS_INT4 },
		{ "sv_used", RS_INT4 },
		{ "sv_tested", RS_INT4 },
		{ "sv_login", RS_INT4 },
		{ "maxwait", RS_INT4 },
		{ "maxwait_us", RS_INT4 },
		{ "pool_mode", RS_TEXT },
		{ "load_balance_hosts", RS_TEXT },
	};
	usec_t now = time_mono_usec();
	return database_table(r, cols, NCOLS(cols), pool_rows, &now);
}

/* ---- SHOW STATS, STATS_TOTALS, STATS_AVERAGES, TOTALS ---- */

enum stats_cols {
	STATS_ALL,
	STATS_TOTALS_ONLY,
	STATS_AVERAGES_ONLY
};

static void put_totals(struct resultset *rs, const struct pool_stats *t)
{
	resultset_uint(rs, t->server_assignment_count);
	resultset_uint(rs, t->xact_count);
	resultset_uint(rs, t->query_count);
	resultset_uint(rs, t->bytes_received);
	resultset_uint(rs, t->bytes_sent);
	resultset_uint(rs, t->xact_time);
	resultset_uint(rs, t->query_time);
	resultset_uint(rs, t->wait_time);
	resultset_uint(rs, t->client_parse_count);
	resultset_uint(rs, t->server_parse_count);
	resultset_uint(rs, t->bind_count);
}

static void put_averages(struct resultset *rs, const struct stats_averages *a)
{
	resultset_uint(rs, a->server_assignment_count);
	resultset_uint(rs, a->xact_count);
	resultset_uint(rs, a->query_count);
	resultset_uint(rs, a->bytes_received);
	resultset_uint(rs, a->bytes_sent);
	resultset_uint(rs, a->xact_time);
	resultset_uint(rs, a->query_time);
	resultset_uint(rs, a->wait_time);
	resultset_uint(rs, a->client_parse_count);
	resultset_uint(rs, a->server_parse_count);
	resultset_uint(rs, a->bind_count);
}

static enum admin_status show_stats(struct admin_req *r, enum stats_cols which)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col all[] = {
		{ "database", RS_TEXT },
		{ "total_server_assignment_count", RS_NUMERIC },
		{ "total_xact_count", RS_NUMERIC },
		{ "total_query_count", RS_NUMERIC },
		{ "total_received", RS_NUMERIC },
		{ "total_sent", RS_NUMERIC },
		{ "total_xact_time", RS_NUMERIC },
		{ "total_query_time", RS_NUMERIC },
		{ "total_wait_time", RS_NUMERIC },
		{ "total_client_parse_count", RS_NUMERIC },
		{ "total_server_parse_count", RS_NUMERIC },
		{ "total_bind_count", RS_NUMERIC },
		{ "avg_server_assignment_count", RS_NUMERIC },
		{ "avg_xact_count", RS_NUMERIC },
		{ "avg_query_count", RS_NUMERIC },
		{ "avg_recv", RS_NUMERIC },
		{ "avg_sent", RS_NUMERIC },
		{ "avg_xact_time", RS_NUMERIC },
		{ "avg_query_time", RS_NUMERIC },
		{ "avg_wait_time", RS_NUMERIC },
		{ "avg_client_parse_count", RS_NUMERIC },
		{ "avg_server_parse_count", RS_NUMERIC },
		{ "avg_bind_count", RS_NUMERIC },
		/* Names from before PgBouncer 1.8, still read by Debian's exporter 1.7:
		 * requests are queries, avg_query the average query time. */
		{ "total_requests", RS_NUMERIC },
		{ "avg_req", RS_NUMERIC },
		{ "avg_query", RS_NUMERIC },
	};
	static const struct resultset_col totals[] = {
		{ "database", RS_TEXT },
		{ "server_assignment_count", RS_NUMERIC },
		{ "xact_count", RS_NUMERIC },
		{ "query_count", RS_NUMERIC },
		{ "bytes_received", RS_NUMERIC },
		{ "bytes_sent", RS_NUMERIC },
		{ "xact_time", RS_NUMERIC },
		{ "query_time", RS_NUMERIC },
		{ "wait_time", RS_NUMERIC },
		{ "client_parse_count", RS_NUMERIC },
		{ "server_parse_count", RS_NUMERIC },
		{ "bind_count", RS_NUMERIC },
	};
	/* PgBouncer's own spelling, avg_ prefix on the last three included. */
	static const struct resultset_col averages[] = {
		{ "database", RS_TEXT },
		{ "server_assignment_count", RS_NUMERIC },
		{ "xact_count", RS_NUMERIC },
		{ "query_count", RS_NUMERIC },
		{ "bytes_received", RS_NUMERIC },
		{ "bytes_sent", RS_NUMERIC },
		{ "xact_time", RS_NUMERIC },
		{ "query_time", RS_NUMERIC },
		{ "wait_time", RS_NUMERIC },
		{ "avg_client_parse_count", RS_NUMERIC },
		{ "avg_server_parse_count", RS_NUMERIC },
		{ "avg_bind_count", RS_NUMERIC },
	};
	const char *filter = filter_arg(r);
	usec_t now = time_mono_usec();
	struct resultset rs;
	if (which == STATS_ALL)
		resultset_begin(&rs, r->out, all, NCOLS(all));
	else if (which == STATS_TOTALS_ONLY)
		resultset_begin(&rs, r->out, totals, NCOLS(totals));
	else
		resultset_begin(&rs, r->out, averages, NCOLS(averages));
	size_t nrt;
	const char **rtnames = stats_db_names(w, &nrt);
	const char **names = xcalloc(nrt + 1, sizeof(*names));
	memcpy(names, rtnames, nrt * sizeof(*names));
	names[nrt] = w->admin_db->name;
	free(rtnames);
	size_t n = sort_unique(names, nrt + 1);
	for (size_t i = 0; i < n; i++) {
		if (!name_passes(filter, names[i]))
			continue;
		struct pool_stats t;
		struct stats_averages a;
		/* The console is not a pool: its row is all zeros, as in PgBouncer. */
		bool console = strcmp(names[i], w->admin_db->name) == 0;
		memset(&t, 0, sizeof(t));
		memset(&a, 0, sizeof(a));
		if (!console) {
			stats_db_totals(w, names[i], &t);
			stats_db_averages(w, names[i], now, &a);
		}
		resultset_row_begin(&rs);
		resultset_text(&rs, names[i]);
		if (which != STATS_AVERAGES_ONLY)
			put_totals(&rs, &t);
		if (which != STATS_TOTALS_ONLY)
			put_averages(&rs, &a);
		if (which == STATS_ALL) {
			resultset_uint(&rs, t.query_count);
			resultset_uint(&rs, a.query_count);
			resultset_uint(&rs, a.query_time);
		}
		resultset_row_end(&rs);
	}
	free(names);
	return done(r);
}

static enum admin_status show_totals(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col cols[] = { { "name", RS_TEXT }, { "value", RS_NUMERIC } };
	struct pool_stats t;
	struct stats_averages a;
	stats_db_totals(w, NULL, &t);
	stats_db_averages(w, NULL, time_mono_usec(), &a);
	const struct {
		const char *name;
		uint64_t value;
	} rows[] = {
		{ "total_server_assignment_count", t.server_assignment_count },
		{ "total_xact_count", t.xact_count },
		{ "total_query_count", t.query_count },
		{ "total_client_bytes", t.bytes_received },
		{ "total_server_bytes", t.bytes_sent },
		{ "total_xact_time", t.xact_time },
		{ "total_query_time", t.query_time },
		{ "total_wait_time", t.wait_time },
		{ "total_ps_client_parse_count", t.client_parse_count },
		{ "total_ps_server_parse_count", t.server_parse_count },
		{ "total_ps_bind_count", t.bind_count },
		{ "avg_server_assignment_count", a.server_assignment_count },
		{ "avg_xact_count", a.xact_count },
		{ "avg_query_count", a.query_count },
		{ "avg_client_bytes", a.bytes_received },
		{ "avg_server_bytes", a.bytes_sent },
		{ "avg_xact_time", a.xact_time },
		{ "avg_query_time", a.query_time },
		{ "avg_wait_time", a.wait_time },
		{ "avg_ps_client_parse_count", a.client_parse_count },
		{ "avg_ps_server_parse_count", a.server_parse_count },
		{ "avg_ps_bind_count", a.bind_count },
	};
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	for (size_t i = 0; i < NCOLS(rows); i++) {
		resultset_row_begin(&rs);
		resultset_text(&rs, rows[i].name);
		resultset_uint(&rs, rows[i].value);
		resultset_row_end(&rs);
	}
	return done(r);
}

/* ---- SHOW SERVERS, CLIENTS ---- */

static const struct resultset_col socket_cols[] = {
	{ "type", RS_TEXT },
	{ "user", RS_TEXT },
	{ "database", RS_TEXT },
	{ "replication", RS_TEXT },
	{ "state", RS_TEXT },
	{ "addr", RS_TEXT },
	{ "port", RS_INT4 },
	{ "local_addr", RS_TEXT },
	{ "local_port", RS_INT4 },
	{ "connect_time", RS_TEXT },
	{ "request_time", RS_TEXT },
	{ "wait", RS_INT4 },
	{ "wait_us", RS_INT4 },
	{ "close_needed", RS_INT4 },
	{ "ptr", RS_TEXT },
	{ "link", RS_TEXT },
	{ "remote_pid", RS_INT4 },
	{ "tls", RS_TEXT },
	{ "application_name", RS_TEXT },
	{ "prepared_statements", RS_INT4 },
	{ "id", RS_INT8 },
	/* tokenbouncer's: SHOW SERVERS only */
	{ "age_seconds", RS_INT8 },
	{ "retire_in_seconds", RS_INT8 },
};
#define SOCKET_COLS_COMMON 21

/* SHOW SOCKETS and ACTIVE_SOCKETS: SHOW CLIENTS's columns, then PgBouncer's
 * buffer columns, filled from our buffers: recv_pos is where the next read
 * lands, pkt_pos where unparsed input starts, pkt_avail the bytes between,
 * pkt_remain the body bytes of the message being forwarded still to come,
 * send_remain/send_avail the bytes queued because the kernel refused them. */
static const struct resultset_col buffer_cols[] = {
	{ "recv_pos", RS_INT4 },   { "pkt_pos", RS_INT4 },     { "pkt_remain", RS_INT4 },
	{ "send_pos", RS_INT4 },   { "send_remain", RS_INT4 }, { "pkt_avail", RS_INT4 },
	{ "send_avail", RS_INT4 },
};

enum row_kind {
	ROW_PLAIN,
	ROW_SERVERS,
	ROW_SOCKETS
};

static size_t buf_len(const struct iobuf *b)
{
	return b ? b->wpos - b->rpos : 0;
}

static void buffer_cells(struct resultset *rs, const struct sock *sk, uint32_t remain)
{
	resultset_int(rs, sk->in ? (int32_t)sk->in->wpos : 0);
	resultset_int(rs, sk->in ? (int32_t)sk->in->rpos : 0);
	resultset_int(rs, (int32_t)remain);
	resultset_int(rs, sk->out ? (int32_t)sk->out->rpos : 0);
	resultset_int(rs, (int32_t)buf_len(sk->out));
	resultset_int(rs, (int32_t)buf_len(sk->in));
	resultset_int(rs, (int32_t)buf_len(sk->out));
}

static bool id_filter(struct admin_req *r, bool *has, uint64_t *id)
{
	*has = false;
	const char *f = filter_arg(r);
	if (!f)
		return true;
	char *end;
	*id = strtoull(f, &end, 10);
	if (!*f || *end)
		return false;
	*has = true;
	return true;
}

static const char *server_state_text(const struct server *s, usec_t now)
{
	struct worker *w = s->w;
	switch (s->state) {
	case SV_ACTIVE:
		return "active";
	case SV_IDLE:
		if (config_str_set(w->cfg->server_check_query) &&
		    now - s->idle_since >= w->cfg->server_check_delay)
			return "used";
		return "idle";
	case SV_RESET:
	case SV_CHECK:
	case SV_CONNECT_QUERY:
	case SV_DRAIN:
		return "tested";
	default:
		return "new";
	}
}

/* The cells addr to request_time of a socket row: the peer's address and
 * port, ours (read from fd), when it connected and when it last asked. */
static void where_when_cells(struct worker *w, struct resultset *rs, int fd, const char *addr, int port,
			     usec_t connect_at, usec_t request_at, usec_t now, usec_t wall)
{
	char laddr[INET6_ADDRSTRLEN + 8], t1[40], t2[40];
	int lport = 0;
	local_addr(w, fd, laddr, sizeof(laddr), &lport);
	format_time(connect_at, now, wall, t1, sizeof(t1));
	format_time(request_at, now, wall, t2, sizeof(t2));
	resultset_text(rs, addr);
	resultset_int(rs, port);
	resultset_text(rs, laddr);
	resultset_int(rs, lport);
	resultset_text(rs, t1);
	resultset_text(rs, t2);
}

static void server_row(struct resultset *rs, const struct server *s, usec_t now, usec_t wall,
		       enum row_kind kind)
{
	struct worker *w = s->w;
	const struct pool *p = s->pool;
	const struct db_alias *a = p->db->cfg;
	char addr[INET6_ADDRSTRLEN + 8], tls[128], link[32], ptr[32];
	int port = 0;
	if (s->state > SV_RESOLVING && s->addrlen > 0) {
		format_addr((const struct sockaddr *)&s->addr, s->addrlen, addr, sizeof(addr), &port);
		if (s->addr.ss_family == AF_UNIX)
			port = a->port > 0 ? a->port : 5432;
	} else {
		snprintf(addr, sizeof(addr), "%s", a->host ? a->host : "unix");
		port = a->port > 0 ? a->port : 5432;
	}
	tls_info(s->sock.ssl, tls, sizeof(tls));
	snprintf(ptr, sizeof(ptr), "S-%llu", (unsigned long long)s->id);
	link[0] = '\0';
	if (s->client)
		snprintf(link, sizeof(link), "C-%llu", (unsigned long long)s->client->id);
	const char *app = s->client ? varcache_get(&w->vars, &s->client->vars, VAR_APPLICATION_NAME) : NULL;
	usec_t age = now - s->created_at;
	resultset_row_begin(rs);
	resultset_text(rs, "S");
	resultset_text(rs, p->user);
	resultset_text(rs, p->db->name);
	resultset_text(rs, pool_replication_name(p->replication));
	resultset_text(rs, server_state_text(s, now));
	where_when_cells(w, rs, s->sock.fd, addr, port, s->created_at,
			 s->query_start > s->state_since ? s->query_start : s->state_since, now, wall);
	resultset_int(rs, 0);
	resultset_int(rs, 0);
	resultset_int(rs, s->retire || p->db->retired);
	resultset_text(rs, ptr);
	resultset_text(rs, link);
	resultset_int(rs, (int32_t)s->backend_pid);
	resultset_text(rs, tls);
	resultset_text(rs, app ? app : "");
	resultset_int(rs, (int32_t)ps_server_count(s));
	resultset_uint(rs, s->id);
	if (kind == ROW_SOCKETS) {
		buffer_cells(rs, &s->sock, 0);
	} else {
		resultset_int(rs, usec_to_sec(age));
		if (s->lifetime > 0)
			resultset_int(rs, usec_to_sec(s->lifetime > age ? s->lifetime - age : 0));
		else
			resultset_null(rs);
	}
	resultset_row_end(rs);
}

/* Which servers a SHOW lists: one id (has_id), or those with bytes
 * buffered (active_only), or all. */
struct server_pick {
	bool has_id, active_only;
	uint64_t id;
};

static bool sock_active(const struct sock *sk);

/* A row for each server picked, in PgBouncer's order: active, idle, used, new. */
static void server_rows(struct worker *w, struct resultset *rs, const struct server_pick *pick, usec_t now,
			usec_t wall, enum row_kind kind)
{
	for_each_pool(w, p)
	{
		const struct list_node *lists[] = { &p->active_servers, &p->idle_servers, &p->used_servers,
						    &p->new_servers };
		for (size_t i = 0; i < NCOLS(lists); i++) {
			struct list_node *n, *t;
			list_for_each_safe(n, t, lists[i]) {
				const struct server *s = list_entry(n, struct server, node);
				if ((!pick->has_id || s->id == pick->id) &&
				    (!pick->active_only || sock_active(&s->sock)))
					server_row(rs, s, now, wall, kind);
			}
		}
	}
}

static enum admin_status show_servers(struct admin_req *r)
{
	struct server_pick pick = { 0 };
	if (!id_filter(r, &pick.has_id, &pick.id))
		return admin_fail(r, "22023", "SHOW SERVERS takes a server id");
	struct resultset rs;
	resultset_begin(&rs, r->out, socket_cols, NCOLS(socket_cols));
	server_rows(client_worker(r->c), &rs, &pick, time_mono_usec(), time_wall_usec(), ROW_SERVERS);
	return done(r);
}

static const char *client_state_text(const struct client *c)
{
	if (c->is_admin || c->server)
		return "active";
	if (c->state == CL_WAITING || c->state == CL_WAIT_WELCOME)
		return "waiting";
	return "idle";
}

static void client_row(struct resultset *rs, const struct client *c, usec_t now, usec_t wall,
		       enum row_kind kind)
{
	struct worker *w = client_worker(c);
	char addr[INET6_ADDRSTRLEN + 8], tls[128], link[32], ptr[32];
	int port = 0;
	if (c->is_unix) {
		snprintf(addr, sizeof(addr), "unix");
		port = w->cfg->listen_port;
	} else {
		struct sockaddr_storage ss;
		socklen_t len = peer_addr_get(&c->addr, &ss);
		format_addr((struct sockaddr *)&ss, len, addr, sizeof(addr), &port);
	}
	tls_info(c->sock.ssl, tls, sizeof(tls));
	snprintf(ptr, sizeof(ptr), "C-%llu", (unsigned long long)c->id);
	link[0] = '\0';
	if (c->server)
		snprintf(link, sizeof(link), "S-%llu", (unsigned long long)c->server->id);
	usec_t wait = 0;
	if (c->state == CL_WAITING || c->state == CL_WAIT_WELCOME)
		wait = now - c->state_since;
	const char *app = varcache_get(&w->vars, &c->vars, VAR_APPLICATION_NAME);
	resultset_row_begin(rs);
	resultset_text(rs, "C");
	resultset_text(rs, c->user);
	resultset_text(rs, c->db ? c->db->name : NULL);
	resultset_text(rs, pool_replication_name(c->replication));
	resultset_text(rs, client_state_text(c));
	where_when_cells(w, rs, c->sock.fd, addr, port, c->connect_at, c->state_since, now, wall);
	resultset_int(rs, usec_to_sec(wait));
	resultset_int(rs, wait % USEC_PER_SEC);
	resultset_int(rs, 0);
	resultset_text(rs, ptr);
	resultset_text(rs, link);
	resultset_int(rs, 0);
	resultset_text(rs, tls);
	resultset_text(rs, app ? app : "");
	resultset_int(rs, (int32_t)ps_client_count(c));
	resultset_uint(rs, c->id);
	if (kind == ROW_SOCKETS)
		buffer_cells(rs, &c->sock, c->fwd_remaining);
	resultset_row_end(rs);
}

static enum admin_status show_clients(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	bool has_id;
	uint64_t id = 0;
	if (!id_filter(r, &has_id, &id))
		return admin_fail(r, "22023", "SHOW CLIENTS takes a client id");
	usec_t now = time_mono_usec(), wall = time_wall_usec();
	struct resultset rs;
	resultset_begin(&rs, r->out, socket_cols, SOCKET_COLS_COMMON);
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		const struct client *c = list_entry(n, struct client, all_node);
		/* Logged-in clients only, as PgBouncer lists them. */
		if (c->state < CL_WAIT_WELCOME || c->state == CL_CLOSING)
			continue;
		if (!has_id || c->id == id)
			client_row(&rs, c, now, wall, ROW_PLAIN);
	}
	return done(r);
}

static bool sock_active(const struct sock *sk)
{
	return buf_len(sk->in) > 0 || buf_len(sk->out) > 0;
}

/* Every client (logging in too) and server; active_only: those with bytes
 * buffered, as PgBouncer's SHOW ACTIVE_SOCKETS. */
static enum admin_status show_sockets(struct admin_req *r, bool active_only)
{
	struct worker *w = client_worker(r->c);
	struct resultset_col cols[SOCKET_COLS_COMMON + NCOLS(buffer_cols)];
	memcpy(cols, socket_cols, SOCKET_COLS_COMMON * sizeof(cols[0]));
	memcpy(cols + SOCKET_COLS_COMMON, buffer_cols, sizeof(buffer_cols));
	usec_t now = time_mono_usec(), wall = time_wall_usec();
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		const struct client *c = list_entry(n, struct client, all_node);
		if (c->state != CL_CLOSING && (!active_only || sock_active(&c->sock)))
			client_row(&rs, c, now, wall, ROW_SOCKETS);
	}
	const struct server_pick pick = { .active_only = active_only };
	server_rows(w, &rs, &pick, now, wall, ROW_SOCKETS);
	return done(r);
}

/* ---- SHOW USERS ---- */

/* Arrays grown here have no cap of their own: memory bounds them, as it
 * bounds the lists they are read from. */
static void add_name(struct dynbuf *names, const char *s)
{
	const char **slot = dynbuf_push(names, sizeof(*slot));
	if (slot)
		*slot = s;
}

static const char **user_names(struct worker *w, size_t *n)
{
	struct dynbuf b;
	dynbuf_init(&b, SIZE_MAX, false);
	size_t nul = w->users ? userlist_count(w->users) : 0;
	for (size_t i = 0; i < w->cfg->nusers; i++)
		add_name(&b, w->cfg->users[i].name);
	for (size_t i = 0; i < nul; i++)
		add_name(&b, userlist_entry_at(w->users, i)->user);
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases) {
		struct list_node *pn, *pt;
		list_for_each_safe(pn, pt, &list_entry(d, struct database, node)->pools)
			add_name(&b, list_entry(pn, struct pool, node)->user);
	}
	list_for_each_safe(d, dt, &w->clients) {
		const struct client *c = list_entry(d, struct client, all_node);
		if (c->user && c->state >= CL_WAIT_WELCOME && c->state != CL_CLOSING)
			add_name(&b, c->user);
	}
	add_name(&b, NULL); /* so the array is never NULL, even with no name */
	size_t bytes;
	const char **names = dynbuf_take(&b, &bytes);
	*n = sort_unique(names, bytes / sizeof(*names) - 1);
	return names;
}

static enum admin_status show_users(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col cols[] = {
		{ "name", RS_TEXT },
		{ "pool_size", RS_INT4 },
		{ "reserve_pool_size", RS_INT4 },
		{ "pool_mode", RS_TEXT },
		{ "max_user_connections", RS_INT4 },
		{ "current_connections", RS_INT4 },
		{ "max_user_client_connections", RS_INT4 },
		{ "current_client_connections", RS_INT4 },
	};
	const char *filter = filter_arg(r);
	size_t n;
	const char **names = user_names(w, &n);
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		if (!name_passes(filter, name))
			continue;
		const struct user_cfg *u = config_find_user(w->cfg, name);
		int servers = 0;
		for_each_pool(w, p)
		{
			if (strcmp(p->user, name) == 0)
				servers += p->nservers;
		}
		resultset_row_begin(&rs);
		resultset_text(&rs, name);
		/* PgBouncer: the user's own override, NULL when it sets none. */
		if (u && u->pool_size >= 0)
			resultset_int(&rs, u->pool_size);
		else
			resultset_null(&rs);
		if (u && u->reserve_pool_size >= 0)
			resultset_int(&rs, u->reserve_pool_size);
		else
			resultset_null(&rs);
		resultset_text(&rs, u ? pool_mode_name(u->pool_mode) : NULL);
		resultset_int(&rs, u && u->max_user_connections >= 0 ? u->max_user_connections
								     : w->cfg->max_user_connections);
		resultset_int(&rs, servers);
		resultset_int(&rs, climit_user_max(w, name));
		resultset_int(&rs, climit_user_clients(w, name));
		resultset_row_end(&rs);
	}
	free(names);
	return done(r);
}

/* ---- SHOW LISTS, MEM ---- */

struct object_counts {
	int pools, servers, resolving, iobufs;
	size_t iobuf_bytes;
};

static void count_iobufs(const struct sock *s, struct object_counts *oc)
{
	if (s->in) {
		oc->iobufs++;
		oc->iobuf_bytes += s->in->cap;
	}
	if (s->out) {
		oc->iobufs++;
		oc->iobuf_bytes += s->out->cap;
	}
}

static void count_objects(struct worker *w, struct object_counts *oc)
{
	memset(oc, 0, sizeof(*oc));
	for_each_pool(w, p)
	{
		oc->pools++;
		oc->servers += p->nservers;
	}
	for_each_server(w, s)
	{
		if (s->state == SV_RESOLVING)
			oc->resolving++;
		count_iobufs(&s->sock, oc);
	}
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients)
		count_iobufs(&list_entry(n, struct client, all_node)->sock, oc);
}

static enum admin_status show_lists(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col cols[] = { { "list", RS_TEXT }, { "items", RS_INT4 } };
	struct object_counts oc;
	count_objects(w, &oc);
	size_t ndbs, nusers;
	free(database_names(w, &ndbs));
	free(user_names(w, &nusers));
	const struct {
		const char *name;
		int64_t items;
	} rows[] = {
		{ "databases", (int64_t)ndbs },
		{ "users", (int64_t)nusers },
		{ "peers", (int64_t)w->cfg->npeers },
		{ "pools", oc.pools + 1 }, /* the console's, as PgBouncer counts it */
		{ "peer_pools", (int64_t)w->cfg->npeers },
		{ "free_clients", 0 }, /* freed at once: no free lists */
		{ "used_clients", w->nclients },
		{ "login_clients", (int64_t)list_count(&w->login_clients) },
		{ "free_servers", 0 },
		{ "used_servers", oc.servers },
		{ "dns_names", (int64_t)dnscache_count() },
		{ "dns_zones", 0 },
		{ "dns_queries", oc.resolving },
		{ "dns_pending", 0 },
	};
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	for (size_t i = 0; i < NCOLS(rows); i++) {
		resultset_row_begin(&rs);
		resultset_text(&rs, rows[i].name);
		resultset_int(&rs, rows[i].items);
		resultset_row_end(&rs);
	}
	return done(r);
}

static enum admin_status show_mem(struct admin_req *r)
{
	struct worker *w = client_worker(r->c);
	static const struct resultset_col cols[] = {
		{ "name", RS_TEXT }, { "size", RS_INT4 },     { "used", RS_INT4 },
		{ "free", RS_INT4 }, { "memtotal", RS_INT8 },
	};
	struct object_counts oc;
	count_objects(w, &oc);
	const struct {
		const char *name;
		int64_t size, used;
		int64_t total;
	} rows[] = {
		{ "db_cache", sizeof(struct database), (int64_t)list_count(&w->databases) + 1, 0 },
		{ "pool_cache", sizeof(struct pool), oc.pools, 0 },
		{ "server_cache", sizeof(struct server), oc.servers, 0 },
		{ "client_cache", sizeof(struct client), w->nclients, 0 },
		{ "iobuf_cache", w->cfg->pkt_buf, oc.iobufs, (int64_t)oc.iobuf_bytes },
		/* size: average bytes per cached statement (text, parameter types, entry) */
		{ "prepared_statement_cache",
		  ps_cache_count(&w->stmts) ? (int64_t)(ps_cache_bytes(&w->stmts) / ps_cache_count(&w->stmts))
					    : (int64_t)sizeof(struct ps_stmt),
		  (int64_t)ps_cache_count(&w->stmts), (int64_t)ps_cache_bytes(&w->stmts) },
	};
	const char *filter = filter_arg(r);
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, NCOLS(cols));
	for (size_t i = 0; i < NCOLS(rows); i++) {
		if (!name_passes(filter, rows[i].name))
			continue;
		resultset_row_begin(&rs);
		resultset_text(&rs, rows[i].name);
		resultset_int(&rs, rows[i].size);
		resultset_int(&rs, rows[i].used);
		resultset_int(&rs, 0);
		resultset_int(&rs, rows[i].total ? rows[i].total : rows[i].size * rows[i].used);
		resultset_row_end(&rs);
	}
	return done(r);
}

/* ---- empty result sets ---- */

static enum admin_status show_empty(struct admin_req *r, const struct resultset_col *cols, size_t n)
{
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, n);
	return done(r);
}

static const struct resultset_col tokens_cols[] = {
	{ "alias", RS_TEXT },       { "credential", RS_TEXT },    { "provider", RS_TEXT },
	{ "db_user", RS_TEXT },     { "state", RS_TEXT },         { "expires_in", RS_INT8 },
	{ "refresh_in", RS_INT8 },  { "last_refresh", RS_TEXT },  { "last_error", RS_TEXT },
	{ "fetch_count", RS_INT8 }, { "failure_count", RS_INT8 },
};
static const struct resultset_col credentials_cols[] = {
	{ "name", RS_TEXT },
	{ "type", RS_TEXT },
	{ "source", RS_TEXT },
	{ "state", RS_TEXT },
};
static void token_row(const struct token_view *v, void *arg)
{
	struct resultset *rs = arg;
	resultset_row_begin(rs);
	resultset_text(rs, v->alias);
	resultset_text(rs, v->credential);
	resultset_text(rs, v->provider);
	resultset_text(rs, v->user);
	resultset_text(rs, v->state);
	if (v->expires_in >= 0)
		resultset_int(rs, v->expires_in);
	else
		resultset_null(rs);
	if (v->refresh_in >= 0)
		resultset_int(rs, v->refresh_in);
	else
		resultset_null(rs);
	if (v->last_refresh > 0) {
		char when[32];
		time_t t = (time_t)v->last_refresh;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		resultset_text(rs, when);
	} else {
		resultset_null(rs);
	}
	if (v->last_error && *v->last_error)
		resultset_text(rs, v->last_error);
	else
		resultset_null(rs);
	resultset_uint(rs, v->fetch_count);
	resultset_uint(rs, v->failure_count);
	resultset_row_end(rs);
}

/* One row per cached token key; never the token itself. */
static enum admin_status show_tokens(struct admin_req *r)
{
	struct resultset rs;
	resultset_begin(&rs, r->out, tokens_cols, NCOLS(tokens_cols));
	token_foreach(token_row, &rs);
	return done(r);
}

static void credential_row(const struct credential *c, void *arg)
{
	struct resultset *rs = arg;
	resultset_row_begin(rs);
	resultset_text(rs, c->name);
	resultset_text(rs, c->type);
	if (c->source[0])
		resultset_text(rs, c->source);
	else
		resultset_null(rs);
	const char *state = c->last_error[0] && c->failure_count && !c->last_success ? "failing"
			    : c->last_success                                        ? "ok"
										     : "unused";
	resultset_text(rs, state);
	resultset_row_end(rs);
}

static enum admin_status show_credentials(struct admin_req *r)
{
	struct resultset rs;
	resultset_begin(&rs, r->out, credentials_cols, NCOLS(credentials_cols));
	credential_foreach(credential_row, &rs);
	return done(r);
}

static const struct resultset_col dns_zones_cols[] = {
	{ "zonename", RS_TEXT },
	{ "serial", RS_INT8 },
	{ "count", RS_INT4 },
};

/* SHOW of a session parameter a driver asks for on connect. */
static enum admin_status show_fake(struct admin_req *r, const char *value)
{
	const struct resultset_col cols[] = { { r->argv[1], RS_TEXT } };
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, 1);
	resultset_row_begin(&rs);
	resultset_text(&rs, value);
	resultset_row_end(&rs);
	return done(r);
}

enum admin_status show_command(struct admin_req *r)
{
	if (r->argc < 2 || r->argc > 3 || r->kind[1] != ADMIN_TOK_WORD)
		return syntax(r);
	const char *what = r->argv[1];
	bool arg_ok = r->argc == 2;
	static const char *const with_arg[] = {
		"CONFIG",         "DATABASES", "POOLS",   "STATS", "STATS_TOTALS",
		"STATS_AVERAGES", "SERVERS",   "CLIENTS", "USERS", "MEM",
	};
	for (size_t i = 0; i < NCOLS(with_arg) && !arg_ok; i++)
		arg_ok = str_ieq(what, with_arg[i]);
	if (!arg_ok)
		return syntax(r);
#define IS(name) str_ieq(what, name)
	if (IS("HELP"))
		return show_help(r);
	if (IS("VERSION"))
		return show_version(r);
	if (IS("CONFIG"))
		return show_config(r);
	if (IS("DATABASES"))
		return show_databases(r);
	if (IS("POOLS"))
		return show_pools(r);
	if (IS("STATS"))
		return show_stats(r, STATS_ALL);
	if (IS("STATS_TOTALS"))
		return show_stats(r, STATS_TOTALS_ONLY);
	if (IS("STATS_AVERAGES"))
		return show_stats(r, STATS_AVERAGES_ONLY);
	if (IS("TOTALS"))
		return show_totals(r);
	if (IS("SERVERS"))
		return show_servers(r);
	if (IS("CLIENTS"))
		return show_clients(r);
	if (IS("USERS"))
		return show_users(r);
	if (IS("LISTS"))
		return show_lists(r);
	if (IS("MEM"))
		return show_mem(r);
	if (IS("STATE"))
		return show_state(r);
	if (IS("TOKENS"))
		return show_tokens(r);
	if (IS("CREDENTIALS"))
		return show_credentials(r);
	if (IS("DNS_HOSTS"))
		return show_dns_hosts(r);
	if (IS("DNS_ZONES"))
		return show_empty(r, dns_zones_cols, NCOLS(dns_zones_cols));
	if (IS("PEERS"))
		return show_peers(r);
	if (IS("PEER_POOLS"))
		return show_peer_pools(r);
	if (IS("SOCKETS"))
		return show_sockets(r, false);
	if (IS("ACTIVE_SOCKETS"))
		return show_sockets(r, true);
	if (IS("FDS"))
		return admin_fail(r, "0A000",
				  "SHOW FDS is not supported: it serves PgBouncer's online "
				  "restart (-R), which tokenbouncer does not have (restart with "
				  "so_reuseport instead); see SHOW SOCKETS");
#undef IS
	const char *fake = control_fake_param(what);
	if (fake)
		return show_fake(r, fake);
	return admin_fail(r, "42601", "invalid command \"%s\", use SHOW HELP;", r->text);
}
