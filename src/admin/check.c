/* The doctor: one real server login per alias through the pooler's own
 * code. It launches a server as a waiting client would (server_launch) and
 * follows it with a server_watch; nothing here speaks the protocol, resolves,
 * connects or fetches a token itself. */
#include "admin/check.h"
#include "admin/check-t.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "core/config.h"
#include "core/util.h"
#include "net/tls.h"
#include "pool/pool.h"
#include "pool/runtime.h"
#include "pool/server.h"
#include "token/token.h"

struct doctor {
	struct event_base *base;
	struct probe *probes;
	size_t n;
	const char *check_query; /* server_check_query when it is more than SELECT 1 */
};

static struct doctor doc;

static struct probe *probe_of(const struct server *s)
{
	for (size_t i = 0; i < doc.n; i++)
		if (doc.probes[i].pool == s->pool)
			return &doc.probes[i];
	return NULL;
}

static int step_of(const struct probe *pr, enum server_state st)
{
	switch (st) {
	case SV_TOKEN:
		return STEP_TOKEN;
	case SV_RESOLVING:
		return STEP_RESOLVE;
	case SV_CONNECTING:
		return STEP_CONNECT;
	case SV_TLS_REQ:
	case SV_TLS:
		return STEP_TLS;
	case SV_LOGIN:
	case SV_CONNECT_QUERY:
		return STEP_LOGIN;
	case SV_CHECK:
		return pr->phase == PH_CHECK ? STEP_CHECK : STEP_QUERY;
	default:
		return -1;
	}
}

static void all_done_maybe(void)
{
	for (size_t i = 0; i < doc.n; i++)
		if (doc.probes[i].phase != PH_DONE)
			return;
	event_base_loopbreak(doc.base);
}

static void finish(struct probe *pr, bool ok, int failed_step, const char *cause)
{
	if (pr->phase == PH_DONE)
		return;
	pr->phase = PH_DONE;
	pr->ok = ok;
	pr->failed = failed_step >= 0 ? (enum step)failed_step : STEP_TOKEN;
	if (cause) {
		const char *prefix = "login failed: ";
		if (strncmp(cause, prefix, strlen(prefix)) == 0)
			cause += strlen(prefix);
		snprintf(pr->cause, sizeof(pr->cause), "%s", cause);
	}
	all_done_maybe();
}

static void note_address(struct probe *pr, const struct server *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->addr;
	char ip[INET6_ADDRSTRLEN] = "";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
	else if (sa->sa_family == AF_UNIX)
		snprintf(ip, sizeof(ip), "unix socket");
	snprintf(pr->address, sizeof(pr->address), "%s", ip);
}

static void on_state(struct server *s, enum server_state from, void *arg)
{
	(void)arg;
	struct probe *pr = probe_of(s);
	if (!pr || pr->phase == PH_DONE)
		return;
	usec_t now = time_mono_usec();
	int left = step_of(pr, from), entered = step_of(pr, s->state);
	if (left >= 0)
		pr->spent[left] += now - pr->since;
	pr->since = now;
	if (entered >= 0)
		pr->reached[entered] = true;
	pr->server = s;
	if (from == SV_RESOLVING || (from == SV_TOKEN && s->state == SV_CONNECTING))
		note_address(pr, s);
	if (from == SV_TLS && s->sock.ssl)
		pr->have_tls = tls_peer_describe(s->sock.ssl, &pr->tls);
	if (s->state == SV_IDLE) {
		struct timeval now0 = { 0, 0 };
		evtimer_add(pr->next, &now0);
	}
}

static void on_closed(struct server *s, const char *why, void *arg)
{
	(void)arg;
	struct probe *pr = probe_of(s);
	if (!pr || pr->phase == PH_DONE)
		return;
	int step = step_of(pr, s->state);
	usec_t now = time_mono_usec();
	if (step >= 0)
		pr->spent[step] += now - pr->since;
	pr->since = now;
	if (strcmp(why, "token rejected") == 0) {
		pr->token_retried = true; /* the pooler retries once with a fresh token */
		return;
	}
	if (step == STEP_TLS && s->sock.ssl)
		pr->have_tls = tls_peer_describe(s->sock.ssl, &pr->tls);
	finish(pr, false, step, why);
}

static const struct server_watch watch = { on_state, on_closed, NULL };

/* The server is idle: run the next query, or the alias passed. */
static void on_next(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct probe *pr = arg;
	if (pr->phase == PH_DONE || !pr->server || pr->server->state != SV_IDLE)
		return;
	if (pr->phase == PH_LOGIN) {
		pr->phase = PH_QUERY;
		server_probe_query(pr->server, "SELECT 1");
	} else if (pr->phase == PH_QUERY && doc.check_query) {
		pr->phase = PH_CHECK;
		server_probe_query(pr->server, doc.check_query);
	} else {
		finish(pr, true, -1, NULL);
	}
}

static const char *fixed_user(const struct probe *pr, const char *given)
{
	if (pr->alias->user)
		return pr->alias->user;
	if (pr->db->default_user)
		return pr->db->default_user;
	return given;
}

static void launch(struct probe *pr, const char *given_user)
{
	pr->user = fixed_user(pr, given_user);
	if (!pr->user) {
		pr->skipped = true;
		snprintf(pr->cause, sizeof(pr->cause),
			 "the upstream user is the client's: give one with --user NAME");
		pr->phase = PH_DONE;
		return;
	}
	pr->pool = pool_for_client(pr->db, pr->user, REPLICATION_NONE);
	if (!pr->pool) {
		finish(pr, false, STEP_TOKEN, "no pool can be made for this alias and user");
		return;
	}
	pr->phase = PH_LOGIN;
	pr->since = time_mono_usec();
	/* A server starts in SV_TOKEN (no state change to watch); password aliases pass it at once. */
	if (pr->pool->token)
		pr->reached[STEP_TOKEN] = true;
	server_launch(pr->pool);
}

/* user_from_token: the user is known once the alias's token is in. */
static void on_user_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct probe *pr = arg;
	if (pr->phase != PH_WAIT_USER)
		return;
	if (pr->db->default_user) {
		pr->spent[STEP_TOKEN] += time_mono_usec() - pr->since;
		event_assign(pr->next, doc.base, -1, 0, on_next, pr);
		launch(pr, NULL);
		return;
	}
	struct token_target t;
	pool_token_target(pr->db, "", &t);
	char why[320];
	struct token_entry *e = token_entry_for(&t);
	if (!token_entry_ready(e, why, sizeof(why)) && strstr(why, "token failed")) {
		pr->spent[STEP_TOKEN] += time_mono_usec() - pr->since;
		finish(pr, false, STEP_TOKEN, why);
		return;
	}
	struct timeval tv = { 0, 50000 };
	evtimer_add(pr->next, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	usec_t now = time_mono_usec();
	for (size_t i = 0; i < doc.n; i++) {
		struct probe *pr = &doc.probes[i];
		if (pr->phase == PH_DONE)
			continue;
		int step = pr->server ? step_of(pr, pr->server->state) : STEP_TOKEN;
		if (step >= 0)
			pr->spent[step] += now - pr->since;
		char msg[120];
		snprintf(msg, sizeof(msg), "no answer in time (waited %.1f s)",
			 (double)(now - pr->started) / USEC_PER_SEC);
		finish(pr, false, step, msg);
	}
	event_base_loopbreak(doc.base);
}

static bool select_aliases(struct worker *w, const struct check_options *o)
{
	doc.probes = xcalloc(w->cfg->ndbs ? w->cfg->ndbs : 1, sizeof(*doc.probes));
	for (size_t i = 0; i < w->cfg->ndbs; i++) {
		const struct db_alias *a = &w->cfg->dbs[i];
		if (strcmp(a->name, "*") == 0 || (o->alias && strcmp(o->alias, a->name) != 0))
			continue;
		struct probe *pr = &doc.probes[doc.n++];
		pr->alias = a;
		pr->db = runtime_find_database(w, a->name);
	}
	return doc.n > 0;
}

static void start_all(const struct check_options *o)
{
	usec_t now = time_mono_usec();
	for (size_t i = 0; i < doc.n; i++) {
		struct probe *pr = &doc.probes[i];
		pr->started = pr->since = now;
		if (!pr->db) {
			finish(pr, false, STEP_TOKEN, "the alias could not be set up");
			continue;
		}
		if (pr->alias->user_from_token && !pr->db->default_user) {
			pr->phase = PH_WAIT_USER;
			pr->reached[STEP_TOKEN] = true;
			pr->next = evtimer_new(doc.base, on_user_poll, pr);
			struct timeval tv = { 0, 0 };
			evtimer_add(pr->next, &tv);
			continue;
		}
		pr->next = evtimer_new(doc.base, on_next, pr);
		launch(pr, o->user);
	}
}

int check_run(struct worker *w, struct event_base *base, const struct check_options *o, FILE *out)
{
	memset(&doc, 0, sizeof(doc));
	doc.base = base;
	const char *cq = w->cfg->server_check_query;
	if (cq && *cq && strcasecmp(cq, "select 1") != 0 && strcasecmp(cq, "select 1;") != 0 &&
	    strcmp(cq, "<empty>") != 0)
		doc.check_query = cq;
	if (!select_aliases(w, o)) {
		fprintf(stderr,
			o->alias ? "alias \"%s\" is not in [databases]\n" : "no aliases in [databases]%s\n",
			o->alias ? o->alias : "");
		free(doc.probes);
		return 2;
	}
	server_watch_set(&watch);
	start_all(o);
	usec_t limit = (w->cfg->server_connect_timeout > 0 ? w->cfg->server_connect_timeout
							   : 15 * USEC_PER_SEC) +
		       3 * w->cfg->token_fetch_timeout + 5 * USEC_PER_SEC;
	struct event *deadline = evtimer_new(base, on_deadline, NULL);
	struct timeval tv = { (time_t)(limit / USEC_PER_SEC), (suseconds_t)(limit % USEC_PER_SEC) };
	evtimer_add(deadline, &tv);
	bool pending = false;
	for (size_t i = 0; i < doc.n; i++)
		pending |= doc.probes[i].phase != PH_DONE;
	if (pending)
		event_base_dispatch(base);
	event_free(deadline);
	server_watch_set(NULL);
	int rc = o->json ? check_report_json(doc.probes, doc.n, out)
			 : check_report_text(doc.probes, doc.n, out);
	for (size_t i = 0; i < doc.n; i++)
		if (doc.probes[i].next)
			event_free(doc.probes[i].next);
	free(doc.probes);
	return rc;
}
