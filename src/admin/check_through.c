/* The doctor's client-side check: libpq through a running pooler. Each
 * alias is tried in turn on the pooler's event loop: PQconnectStartParams,
 * then PQconnectPoll driven by libevent on the connection's socket, then
 * PQsendQuery("SELECT 1") and PQconsumeInput until the result is in. Nothing
 * here blocks: a stuck pooler is cut by the per-alias deadline. libpq itself
 * is loaded only when the check runs (admin/pq_api.h). */
#include "admin/check.h"

#include <stdlib.h>
#include <string.h>

#include "admin/pq_api.h"
#include "core/config.h"
#include "core/util.h"
#include "pool/runtime.h"

#define THROUGH_DEADLINE_SEC 10

struct through {
	struct event_base *base;
	PGconn *conn;
	struct event *io, *deadline;
	bool querying, done, ok;
	usec_t started, connected;
	char why[256];
};

static void finish(struct through *t, bool ok, const char *why)
{
	t->done = true;
	t->ok = ok;
	if (why) {
		/* libpq's message: its first line is the cause. */
		snprintf(t->why, sizeof(t->why), "%s", why);
		t->why[strcspn(t->why, "\n")] = '\0';
	}
	event_base_loopbreak(t->base);
}

static void on_io(evutil_socket_t fd, short what, void *arg);

static bool wait_for(struct through *t, short what)
{
	if (t->io)
		event_free(t->io);
	t->io = event_new(t->base, pq_api.socket(t->conn), what, on_io, t);
	return t->io && event_add(t->io, NULL) == 0;
}

static void read_result(struct through *t)
{
	if (!pq_api.consume_input(t->conn)) {
		finish(t, false, pq_api.error_message(t->conn));
		return;
	}
	if (pq_api.is_busy(t->conn)) {
		if (!wait_for(t, EV_READ))
			finish(t, false, "cannot watch the connection");
		return;
	}
	PGresult *res;
	bool ok = true;
	char why[256] = "";
	while ((res = pq_api.get_result(t->conn))) {
		if (pq_api.result_status(res) != PGRES_TUPLES_OK) {
			ok = false;
			snprintf(why, sizeof(why), "SELECT 1: %s", pq_api.result_error_message(res));
		}
		pq_api.clear(res);
	}
	finish(t, ok, ok ? NULL : why);
}

static void connect_step(struct through *t)
{
	switch (pq_api.connect_poll(t->conn)) {
	case PGRES_POLLING_READING:
		if (!wait_for(t, EV_READ))
			finish(t, false, "cannot watch the connection");
		return;
	case PGRES_POLLING_WRITING:
		if (!wait_for(t, EV_WRITE))
			finish(t, false, "cannot watch the connection");
		return;
	case PGRES_POLLING_OK:
		t->connected = time_mono_usec();
		t->querying = true;
		if (!pq_api.send_query(t->conn, "SELECT 1") || !wait_for(t, EV_READ))
			finish(t, false, pq_api.error_message(t->conn));
		return;
	default:
		finish(t, false, pq_api.error_message(t->conn));
	}
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct through *t = arg;
	(void)fd, (void)what;
	if (t->querying)
		read_result(t);
	else
		connect_step(t);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	finish(arg, false, "no answer within 10 s");
}

/* One alias: connect as a client would, SELECT 1. */
static void try_alias(struct through *t, const char *host, const char *port, const char *alias,
		      const char *user)
{
	const char *keys[] = { "host", "port", "dbname", "user", "application_name", "connect_timeout", NULL };
	const char *vals[] = { host, port, alias, user, "tokenbouncer-check", "10", NULL };
	if (!user)
		keys[3] = NULL; /* libpq's default user (PGUSER, then the login name) */
	t->started = time_mono_usec();
	t->conn = pq_api.connect_start_params(keys, vals, 0);
	if (!t->conn || pq_api.status(t->conn) == CONNECTION_BAD) {
		snprintf(t->why, sizeof(t->why), "%s",
			 t->conn ? pq_api.error_message(t->conn) : "out of memory");
		t->why[strcspn(t->why, "\n")] = '\0';
	} else {
		pq_api.set_nonblocking(t->conn, 1);
		struct timeval tv = { THROUGH_DEADLINE_SEC, 0 };
		t->deadline = evtimer_new(t->base, on_deadline, t);
		if (t->deadline && evtimer_add(t->deadline, &tv) == 0) {
			connect_step(t);
			if (!t->done)
				event_base_dispatch(t->base);
		} else {
			snprintf(t->why, sizeof(t->why), "cannot arm the deadline");
		}
	}
	if (t->io)
		event_free(t->io);
	if (t->deadline)
		event_free(t->deadline);
	pq_api.finish(t->conn);
}

/* "HOST:PORT" (the last colon splits, so a bare IPv6 address needs [..]). */
static bool split_through(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon || colon == s || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	const char *h = s, *hend = colon;
	if (*h == '[' && hend[-1] == ']') {
		h++;
		hend--;
	}
	if ((size_t)(hend - h) >= hostlen || strlen(colon + 1) >= portlen)
		return false;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return true;
}

int check_through_run(struct worker *w, struct event_base *base, const struct check_options *o, FILE *out)
{
	char host[256], port[16];
	if (!split_through(o->through, host, sizeof(host), port, sizeof(port))) {
		fprintf(out, "--through wants HOST:PORT, not \"%s\"\n", o->through ? o->through : "");
		return 2;
	}
	char err[256];
	if (!pq_api_load(err, sizeof(err))) {
		fprintf(out, "check --through needs libpq: %s\n", err);
		return 2;
	}
	int failed = 0, tried = 0;
	struct through t;
	for (size_t i = 0; i < w->cfg->ndbs; i++) {
		const struct db_alias *a = &w->cfg->dbs[i];
		if ((o->alias && strcmp(o->alias, a->name) != 0) || (!o->alias && strcmp(a->name, "*") == 0))
			continue;
		tried++;
		memset(&t, 0, sizeof(t));
		t.base = base;
		try_alias(&t, host, port, a->name, o->user);
		if (t.ok)
			fprintf(out, "  %s: ok through %s:%s (login %.0f ms, SELECT 1 %.0f ms)\n", a->name,
				host, port, (double)(t.connected - t.started) / 1000,
				(double)(time_mono_usec() - t.connected) / 1000);
		else
			fprintf(out, "  %s: FAILED through %s:%s: %s\n", a->name, host, port, t.why);
		failed += !t.ok;
	}
	if (!tried) {
		fprintf(out, "no alias to check%s%s\n", o->alias ? ": no alias " : "",
			o->alias ? o->alias : "");
		return 2;
	}
	fprintf(out, "%d of %d aliases answered through %s:%s\n", tried - failed, tried, host, port);
	return failed ? 1 : 0;
}
