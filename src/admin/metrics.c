/* Prometheus text exposition (version 0.0.4) of what the console shows:
 * pool gauges per (database, user), counters per database, server ages,
 * login failures per alias, and per cached token key its seconds to expiry
 * and its fetch and failure counts. */
#include "admin/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_priv.h"
#include "admin/health.h"
#include "admin/stats.h"
#include "config.h"
#include "core/dynbuf.h"
#include "core/log.h"
#include "core/util.h"
#include "token/token.h"
#include "pool/pool_iter.h"
#include "pool/prepared.h"
#include "pool/runtime.h"

static struct evhttp *http;

/* ---- the page text ---- */

/* The page is capped; a failure sticks in t->failed and the page is refused
 * whole rather than served cut. */
#define METRICS_MAX_PAGE (64u << 20)

static void text_printf(struct dynbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct dynbuf *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool ok = dynbuf_vaddf(t, fmt, ap);
	va_end(ap);
	(void)ok; /* sticky: metrics_render checks t->failed once */
}

/* Label values may hold any byte a database or user name may. */
static void text_label(struct dynbuf *t, const char *name, const char *value)
{
	text_printf(t, "%s=\"", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			text_printf(t, "\\\\");
		else if (*p == '"')
			text_printf(t, "\\\"");
		else if (*p == '\n')
			text_printf(t, "\\n");
		else
			text_printf(t, "%c", *p);
	}
	text_printf(t, "\"");
}

static void family(struct dynbuf *t, const char *name, const char *type, const char *help)
{
	text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- the page ---- */

struct pool_entry {
	const char *db;
	struct stats_pool_row row;
};

static struct pool_entry *collect_pools(struct worker *w, const char **names, size_t nnames, usec_t now,
					size_t *n)
{
	struct dynbuf out;
	dynbuf_init(&out, SIZE_MAX, false);
	for (size_t i = 0; i < nnames; i++) {
		size_t nrows;
		struct stats_pool_row *rows = stats_pool_rows(w, names[i], now, &nrows);
		for (size_t k = 0; k < nrows; k++) {
			struct pool_entry *e = dynbuf_push(&out, sizeof(*e));
			if (e) {
				e->db = names[i];
				e->row = rows[k];
			}
		}
		free(rows);
	}
	size_t bytes;
	struct pool_entry *all = dynbuf_take(&out, &bytes);
	*n = bytes / sizeof(*all);
	return all;
}

static void pool_labels(struct dynbuf *t, const struct pool_entry *e)
{
	text_label(t, "database", e->db);
	text_printf(t, ",");
	text_label(t, "user", e->row.user);
}

enum pool_field {
	PF_CL_ACTIVE,
	PF_CL_WAITING,
	PF_SV_ACTIVE,
	PF_SV_IDLE,
	PF_SV_USED,
	PF_SV_TESTED,
	PF_SV_LOGIN
};

static int pool_value(const struct stats_pool_counts *c, enum pool_field f)
{
	switch (f) {
	case PF_CL_ACTIVE:
		return c->cl_active;
	case PF_CL_WAITING:
		return c->cl_waiting;
	case PF_SV_ACTIVE:
		return c->sv_active;
	case PF_SV_IDLE:
		return c->sv_idle;
	case PF_SV_USED:
		return c->sv_used;
	case PF_SV_TESTED:
		return c->sv_tested;
	case PF_SV_LOGIN:
		return c->sv_login;
	}
	return 0;
}

static usec_t pool_maxwait(const struct stats_pool_counts *c)
{
	return c->maxwait;
}

static usec_t pool_server_age(const struct stats_pool_counts *c)
{
	return c->max_server_age;
}

/* A gauge in seconds, one sample a pool, with that many decimals. */
static void seconds_gauge(struct dynbuf *t, const char *name, const char *help, const struct pool_entry *pools,
			  size_t n, usec_t (*value)(const struct stats_pool_counts *), int decimals)
{
	family(t, name, "gauge", help);
	for (size_t i = 0; i < n; i++) {
		text_printf(t, "%s{", name);
		pool_labels(t, &pools[i]);
		text_printf(t, "} %.*f\n", decimals, (double)value(&pools[i].row.counts) / USEC_PER_SEC);
	}
}

static void render_pools(struct dynbuf *t, const struct pool_entry *pools, size_t n, usec_t now)
{
	static const struct {
		const char *name;
		enum pool_field field;
		const char *help;
	} gauges[] = {
		{ "tokenbouncer_pool_cl_active", PF_CL_ACTIVE,
		  "Clients logged in to the pool, with or without a server (SHOW POOLS cl_active)." },
		{ "tokenbouncer_pool_cl_waiting", PF_CL_WAITING,
		  "Clients waiting for a server (SHOW POOLS cl_waiting)." },
		{ "tokenbouncer_pool_sv_active", PF_SV_ACTIVE,
		  "Servers linked to a client (SHOW POOLS sv_active)." },
		{ "tokenbouncer_pool_sv_idle", PF_SV_IDLE,
		  "Servers idle and usable now (SHOW POOLS sv_idle)." },
		{ "tokenbouncer_pool_sv_used", PF_SV_USED,
		  "Idle servers to be checked before reuse (SHOW POOLS sv_used)." },
		{ "tokenbouncer_pool_sv_tested", PF_SV_TESTED,
		  "Servers running the reset, check or connect query (SHOW POOLS sv_tested)." },
		{ "tokenbouncer_pool_sv_login", PF_SV_LOGIN,
		  "Servers connecting or logging in (SHOW POOLS sv_login)." },
	};
	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		family(t, gauges[g].name, "gauge", gauges[g].help);
		for (size_t i = 0; i < n; i++) {
			text_printf(t, "%s{", gauges[g].name);
			pool_labels(t, &pools[i]);
			text_printf(t, "} %d\n", pool_value(&pools[i].row.counts, gauges[g].field));
		}
	}
	seconds_gauge(t, "tokenbouncer_pool_maxwait_seconds",
		      "How long the oldest waiting client has waited (SHOW POOLS maxwait).", pools, n,
		      pool_maxwait, 6);
	seconds_gauge(t, "tokenbouncer_pool_server_max_age_seconds",
		      "Age of the pool's oldest open server connection.", pools, n, pool_server_age, 3);
	(void)now;
}

/* Ages of the logged-in servers of one (database name, user). */
static void server_ages(struct worker *w, const char *db, const char *user, usec_t now, const double *bounds,
			size_t nb, uint64_t *buckets, uint64_t *count, double *sum)
{
	for_each_pool(w, p)
	{
		if (strcmp(p->db->name, db) != 0 || strcmp(p->user, user) != 0)
			continue;
		const struct list_node *lists[] = { &p->idle_servers, &p->active_servers, &p->used_servers };
		for (size_t l = 0; l < 3; l++) {
			struct list_node *n, *t;
			list_for_each_safe(n, t, lists[l]) {
				const struct server *s = list_entry(n, struct server, node);
				double age = (double)(now - s->created_at) / USEC_PER_SEC;
				for (size_t b = 0; b < nb; b++)
					if (age <= bounds[b])
						buckets[b]++;
				(*count)++;
				*sum += age;
			}
		}
	}
}

static void render_ages(struct worker *w, struct dynbuf *t, const struct pool_entry *pools, size_t n,
			usec_t now)
{
	static const double bounds[] = { 60, 300, 900, 1800, 3600, 7200, 14400 };
	enum {
		NB = sizeof(bounds) / sizeof(bounds[0])
	};
	family(t, "tokenbouncer_server_age_seconds", "histogram",
	       "Ages of the open server connections, for lifetime and retirement tuning.");
	for (size_t i = 0; i < n; i++) {
		uint64_t buckets[NB] = { 0 }, count = 0;
		double sum = 0;
		server_ages(w, pools[i].db, pools[i].row.user, now, bounds, NB, buckets, &count, &sum);
		for (size_t b = 0; b <= NB; b++) {
			text_printf(t, "tokenbouncer_server_age_seconds_bucket{");
			pool_labels(t, &pools[i]);
			if (b < NB)
				text_printf(t, ",le=\"%g\"} %llu\n", bounds[b],
					    (unsigned long long)buckets[b]);
			else
				text_printf(t, ",le=\"+Inf\"} %llu\n", (unsigned long long)count);
		}
		text_printf(t, "tokenbouncer_server_age_seconds_sum{");
		pool_labels(t, &pools[i]);
		text_printf(t, "} %.3f\n", sum);
		text_printf(t, "tokenbouncer_server_age_seconds_count{");
		pool_labels(t, &pools[i]);
		text_printf(t, "} %llu\n", (unsigned long long)count);
	}
}

enum counter_field {
	CF_ASSIGN,
	CF_XACT,
	CF_QUERY,
	CF_RECV,
	CF_SENT,
	CF_XACT_TIME,
	CF_QUERY_TIME,
	CF_WAIT_TIME,
	CF_LOGINS,
	CF_LOGIN_FAILURES,
	CF_CLIENT_PARSE,
	CF_SERVER_PARSE,
	CF_BIND,
};

static uint64_t counter_value(const struct pool_stats *s, enum counter_field f)
{
	switch (f) {
	case CF_ASSIGN:
		return s->server_assignment_count;
	case CF_XACT:
		return s->xact_count;
	case CF_QUERY:
		return s->query_count;
	case CF_RECV:
		return s->bytes_received;
	case CF_SENT:
		return s->bytes_sent;
	case CF_XACT_TIME:
		return s->xact_time;
	case CF_QUERY_TIME:
		return s->query_time;
	case CF_WAIT_TIME:
		return s->wait_time;
	case CF_LOGINS:
		return s->login_count;
	case CF_LOGIN_FAILURES:
		return s->login_failures;
	case CF_CLIENT_PARSE:
		return s->client_parse_count;
	case CF_SERVER_PARSE:
		return s->server_parse_count;
	case CF_BIND:
		return s->bind_count;
	}
	return 0;
}

static void render_databases(struct worker *w, struct dynbuf *t, const char **names, size_t n)
{
	static const struct {
		const char *name;
		enum counter_field field;
		bool seconds; /* kept in microseconds, exported in seconds */
		const char *help;
	} counters[] = {
		{ "tokenbouncer_server_assignments_total", CF_ASSIGN, false,
		  "Times a server was assigned to a client (SHOW STATS total_server_assignment_count)." },
		{ "tokenbouncer_xacts_total", CF_XACT, false,
		  "Transactions pooled (SHOW STATS total_xact_count)." },
		{ "tokenbouncer_queries_total", CF_QUERY, false,
		  "Queries pooled (SHOW STATS total_query_count)." },
		{ "tokenbouncer_received_bytes_total", CF_RECV, false,
		  "Bytes received from clients (SHOW STATS total_received)." },
		{ "tokenbouncer_sent_bytes_total", CF_SENT, false,
		  "Bytes sent to clients (SHOW STATS total_sent)." },
		{ "tokenbouncer_xact_time_seconds_total", CF_XACT_TIME, true,
		  "Time spent in transactions on servers (SHOW STATS total_xact_time)." },
		{ "tokenbouncer_query_time_seconds_total", CF_QUERY_TIME, true,
		  "Time spent running queries on servers (SHOW STATS total_query_time)." },
		{ "tokenbouncer_wait_time_seconds_total", CF_WAIT_TIME, true,
		  "Time clients waited for a server (SHOW STATS total_wait_time)." },
		{ "tokenbouncer_client_logins_total", CF_LOGINS, false, "Client logins completed." },
		{ "tokenbouncer_server_login_failures_total", CF_LOGIN_FAILURES, false,
		  "Failed server connections and logins, per database alias." },
		{ "tokenbouncer_client_parses_total", CF_CLIENT_PARSE, false,
		  "Parse messages from clients (SHOW STATS total_client_parse_count)." },
		{ "tokenbouncer_server_parses_total", CF_SERVER_PARSE, false,
		  "Parse messages sent to servers, injected ones included (SHOW STATS total_server_parse_count)." },
		{ "tokenbouncer_binds_total", CF_BIND, false,
		  "Bind messages from clients (SHOW STATS total_bind_count)." },
	};
	struct pool_stats *totals = xcalloc(n ? n : 1, sizeof(*totals));
	for (size_t i = 0; i < n; i++)
		stats_db_totals(w, names[i], &totals[i]);
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		family(t, counters[c].name, "counter", counters[c].help);
		for (size_t i = 0; i < n; i++) {
			uint64_t v = counter_value(&totals[i], counters[c].field);
			text_printf(t, "%s{", counters[c].name);
			text_label(t, "database", names[i]);
			if (counters[c].seconds)
				text_printf(t, "} %.6f\n", (double)v / USEC_PER_SEC);
			else
				text_printf(t, "} %llu\n", (unsigned long long)v);
		}
	}
	free(totals);
	family(t, "tokenbouncer_database_paused", "gauge", "1 while the database is paused (PAUSE, KILL).");
	family(t, "tokenbouncer_database_disabled", "gauge",
	       "1 while the database refuses new clients (DISABLE).");
	for (size_t i = 0; i < n; i++) {
		bool paused = false, disabled = false;
		struct list_node *d, *dt;
		list_for_each_safe(d, dt, &w->databases) {
			const struct database *db = list_entry(d, struct database, node);
			if (strcmp(db->name, names[i]) == 0 && !db->retired) {
				paused = db->paused;
				disabled = db->disabled;
			}
		}
		text_printf(t, "tokenbouncer_database_paused{");
		text_label(t, "database", names[i]);
		text_printf(t, "} %d\n", paused);
		text_printf(t, "tokenbouncer_database_disabled{");
		text_label(t, "database", names[i]);
		text_printf(t, "} %d\n", disabled);
	}
}

static void token_labels(struct dynbuf *t, const struct token_view *v)
{
	text_label(t, "alias", v->alias);
	text_printf(t, ",");
	text_label(t, "credential", v->credential);
	text_printf(t, ",");
	text_label(t, "provider", v->provider);
	text_printf(t, ",");
	text_label(t, "user", v->user);
}

struct token_pass {
	struct dynbuf *t;
	int which;
};

static void token_series(const struct token_view *v, void *arg)
{
	struct token_pass *tp = arg;
	static const char *const names[] = {
		"tokenbouncer_token_expires_in_seconds",
		"tokenbouncer_token_fetches_total",
		"tokenbouncer_token_fetch_failures_total",
		"tokenbouncer_certificate_expires_in_seconds",
	};
	if ((tp->which == 0 && v->expires_in < 0) || (tp->which == 3 && v->cert_expires_in < 0))
		return; /* no token: the series is absent, not zero */
	text_printf(tp->t, "%s{", names[tp->which]);
	token_labels(tp->t, v);
	if (tp->which == 0 || tp->which == 3)
		text_printf(tp->t, "} %lld\n",
			    (long long)(tp->which == 0 ? v->expires_in : v->cert_expires_in));
	else
		text_printf(tp->t, "} %llu\n",
			    (unsigned long long)(tp->which == 1 ? v->fetch_count : v->failure_count));
}

static void render_statement_cache(struct worker *w, struct dynbuf *t)
{
	family(t, "tokenbouncer_prepared_statement_cache_entries", "gauge",
	       "Unique statements (text and parameter types) the pooler keeps for its clients.");
	text_printf(t, "tokenbouncer_prepared_statement_cache_entries %llu\n",
		    (unsigned long long)ps_cache_count(&w->stmts));
	family(t, "tokenbouncer_prepared_statement_cache_bytes", "gauge",
	       "Memory the statement cache holds (SHOW MEM prepared_statement_cache).");
	text_printf(t, "tokenbouncer_prepared_statement_cache_bytes %llu\n",
		    (unsigned long long)ps_cache_bytes(&w->stmts));
}

static void render_tokens(struct dynbuf *t)
{
	static const char *const fam[][3] = {
		{ "tokenbouncer_token_expires_in_seconds", "gauge",
		  "Seconds until the cached token expires." },
		{ "tokenbouncer_token_fetches_total", "counter", "Token fetches started for this key." },
		{ "tokenbouncer_token_fetch_failures_total", "counter",
		  "Token fetches that failed for this key." },
		{ "tokenbouncer_certificate_expires_in_seconds", "gauge",
		  "Connector mode: seconds until the key's ephemeral client certificate expires." },
	};
	for (int i = 0; i < 4; i++) {
		family(t, fam[i][0], fam[i][1], fam[i][2]);
		struct token_pass tp = { t, i };
		token_foreach(token_series, &tp);
	}
}

char *metrics_render(struct worker *w)
{
	struct dynbuf t;
	dynbuf_init(&t, METRICS_MAX_PAGE, false);
	usec_t now = time_mono_usec();
	family(&t, "tokenbouncer_info", "gauge", "Always 1; the labels say which build answers.");
	text_printf(&t, "tokenbouncer_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	family(&t, "tokenbouncer_client_connections", "gauge", "Client connections open, logins included.");
	text_printf(&t, "tokenbouncer_client_connections %d\n", w->nclients);
	family(&t, "tokenbouncer_client_login_connections", "gauge", "Client connections still logging in.");
	text_printf(&t, "tokenbouncer_client_login_connections %zu\n", list_count(&w->login_clients));
	family(&t, "tokenbouncer_console_connections", "gauge", "Admin console connections.");
	text_printf(&t, "tokenbouncer_console_connections %zu\n", list_count(admin_client_list(w)));
	size_t nnames, npools;
	const char **names = stats_db_names(w, &nnames);
	struct pool_entry *pools = collect_pools(w, names, nnames, now, &npools);
	render_pools(&t, pools, npools, now);
	render_ages(w, &t, pools, npools, now);
	render_databases(w, &t, names, nnames);
	render_statement_cache(w, &t);
	render_tokens(&t);
	free(pools);
	free(names);
	if (t.failed || !dynbuf_reserve(&t, 0)) {
		log_error("metrics: the page is larger than %u bytes; not served", METRICS_MAX_PAGE);
		dynbuf_free(&t);
		return NULL;
	}
	return dynbuf_take(&t, NULL);
}

/* ---- HTTP ---- */

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body, size_t len,
		       const char *type)
{
	struct evbuffer *buf = evbuffer_new();
	if (!buf) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evbuffer_add(buf, body, len);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, buf);
	evbuffer_free(buf);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	char *page = metrics_render(w);
	if (!page) {
		static const char msg[] = "metrics page too large\n";
		reply_text(req, 500, "Internal Server Error", msg, sizeof(msg) - 1,
			   "text/plain; charset=utf-8");
		return;
	}
	reply_text(req, 200, "OK", page, strlen(page), "text/plain; version=0.0.4; charset=utf-8");
	free(page);
}

/* 200 "ok" or 503 with the cause, one line: what a probe log shows. */
static void reply_health(struct evhttp_request *req, bool ok, const char *why)
{
	char body[512];
	int n = snprintf(body, sizeof(body), "%s%s\n", ok ? "ok" : "not ok: ", ok ? "" : why);
	size_t len = n < 0 ? 0 : (size_t)n >= sizeof(body) ? sizeof(body) - 1 : (size_t)n;
	reply_text(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", body, len,
		   "text/plain; charset=utf-8");
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	char why[400] = "";
	reply_health(req, health_live(w, why, sizeof(why)), why);
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	char why[400] = "";
	reply_health(req, health_ready(w, why, sizeof(why)), why);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	static const char body[] = "tokenbouncer: /metrics, /healthz and /readyz are served here\n";
	reply_text(req, 404, "Not Found", body, sizeof(body) - 1, "text/plain; charset=utf-8");
}

/* "host:port", "[v6]:port", "*:port" into a bind address and port. */
static bool parse_listen(const char *listen, char *host, size_t hostlen, unsigned short *port)
{
	const char *colon;
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= hostlen)
			return false;
		memcpy(host, listen + 1, (size_t)(close - listen - 1));
		host[close - listen - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || (size_t)(colon - listen) >= hostlen || colon == listen)
			return false;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		if (strcmp(host, "*") == 0)
			snprintf(host, hostlen, "0.0.0.0");
	}
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || p == 0 || p > 65535)
		return false;
	*port = (unsigned short)p;
	return true;
}

bool metrics_start(struct worker *w, const char *listen, char *err, size_t errlen)
{
	char host[256];
	unsigned short port;
	if (!parse_listen(listen, host, sizeof(host), &port)) {
		snprintf(err, errlen, "metrics_listen: cannot parse \"%s\" (expected host:port)", listen);
		return false;
	}
	metrics_stop();
	http = evhttp_new(w->base);
	if (!http) {
		snprintf(err, errlen, "metrics_listen: cannot create the HTTP server");
		return false;
	}
	/* Scrapers send small GETs; anything else is turned away early. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(http, 10);
	evhttp_set_max_headers_size(http, 16384);
	evhttp_set_max_body_size(http, 1024);
	evhttp_set_cb(http, "/metrics", on_metrics, w);
	evhttp_set_cb(http, "/healthz", on_healthz, w);
	evhttp_set_cb(http, "/readyz", on_readyz, w);
	evhttp_set_gencb(http, on_other, NULL);
	if (!evhttp_bind_socket_with_handle(http, host, port)) {
		snprintf(err, errlen, "metrics_listen: cannot listen on %s: %s", listen,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		metrics_stop();
		return false;
	}
	log_info("serving Prometheus metrics on http://%s/metrics", listen);
	return true;
}

void metrics_stop(void)
{
	if (http) {
		evhttp_free(http);
		http = NULL;
	}
}
