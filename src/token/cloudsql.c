/* Cloud SQL connector mode, fetching (spec §3.8.2): one access token for
 * the Admin API (with the login scope too when automatic IAM login is on,
 * so one grant serves both), then connectSettings and generateEphemeralCert
 * at the same time, each re-sent on 5xx as the connectors do; the answers
 * become a connector bundle. Never blocks; ends with one callback. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config-t.h"
#include "core/log.h"
#include "core/util.h"
#include "token/azure_parse.h"
#include "token/connector.h"
#include "token/http.h"
#include "token/method.h"
#include "token/provider.h"
#include "token/token.h"

#define ADMIN_SCOPE "https://www.googleapis.com/auth/sqlservice.admin"
#define LOGIN_SCOPE "https://www.googleapis.com/auth/sqlservice.login"
#define DEFAULT_TIMEOUT_MS 10000

enum call_kind {
	CALL_SETTINGS,
	CALL_CERT,
	CALL_COUNT,
};

struct admin_call {
	struct connector_op *op;
	enum call_kind kind;
	char *url, *body;
	size_t body_len;
	int resend;                  /* -1 before the first re-send */
	struct http_call *http;
	struct event *timer;
	bool done;
	char *answer;                /* the body of the 200 */
	size_t answer_len;
};

struct connector_op {
	struct credential *cred;
	struct cloudsql_name name;
	enum connector_ip_type ip;
	int port;
	bool auto_iam;
	char *api;
	char *alias;
	connector_cb cb;
	void *arg;
	struct provider_op *token_op;
	char *token;                 /* the access token (wiped) */
	int64_t token_expires;
	char *auth_header;
	struct admin_call calls[CALL_COUNT];
	struct event *later;
	char err[400];
};

static void call_clear(struct admin_call *c)
{
	if (c->http)
		http_cancel(c->http);
	if (c->timer)
		event_free(c->timer);
	free(c->url);
	secret_free(c->body);
	free(c->answer);
	memset(c, 0, sizeof(*c));
}

static void op_free(struct connector_op *op)
{
	if (op->token_op)
		gcp_family.cancel(op->token_op);
	for (int i = 0; i < CALL_COUNT; i++)
		call_clear(&op->calls[i]);
	if (op->later)
		event_free(op->later);
	secret_free(op->token);
	secret_free(op->auth_header);
	free(op->api);
	free(op->alias);
	free(op);
}

static void finish(struct connector_op *op, struct connector_bundle *b)
{
	if (b)
		op->cb(op->arg, b, op->auto_iam ? op->token : NULL, op->auto_iam ? strlen(op->token) : 0,
		       op->auto_iam ? op->token_expires : 0, NULL);
	else
		op->cb(op->arg, NULL, NULL, 0, 0, op->err);
	connector_bundle_unref(b);
	op_free(op);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	finish(arg, NULL);
}

/* Fails from the loop, never inside the caller's start call. */
__attribute__((format(printf, 2, 3)))
static void fail(struct connector_op *op, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->err, sizeof(op->err), fmt, ap);
	va_end(ap);
	for (int i = 0; i < CALL_COUNT; i++) {
		if (op->calls[i].http)
			http_cancel(op->calls[i].http);
		op->calls[i].http = NULL;
		if (op->calls[i].timer)
			evtimer_del(op->calls[i].timer);
	}
	struct timeval tv = { 0, 0 };
	op->later = evtimer_new(token_engine_base(), on_later, op);
	evtimer_add(op->later, &tv);
}

static void build_bundle(struct connector_op *op)
{
	struct cloudsql_settings s;
	const char *addr = NULL;
	char why[300];
	struct admin_call *set = &op->calls[CALL_SETTINGS], *crt = &op->calls[CALL_CERT];
	if (!cloudsql_parse_settings(set->answer, set->answer_len, &s, why, sizeof(why))) {
		fail(op, "%s", why);
		return;
	}
	char *cert = NULL;
	struct connector_bundle *b = NULL;
	char cn[sizeof(op->name.project) + sizeof(op->name.instance) + 2];
	snprintf(cn, sizeof(cn), "%s:%s", op->name.project, op->name.instance);
	if (cloudsql_check_settings(&s, &op->name, op->ip, &addr, why, sizeof(why)) &&
	    (cert = cloudsql_parse_cert(crt->answer, crt->answer_len, why, sizeof(why))))
		b = connector_bundle_new(cert, s.ca_pem, addr, op->port, cn, s.dns_name,
					 op->auto_iam ? op->token_expires : 0, why, sizeof(why));
	free(cert);
	cloudsql_settings_clear(&s);
	if (!b) {
		fail(op, "%s", why);
		return;
	}
	finish(op, b);
}

static void send_call(struct admin_call *c);

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	send_call(arg);
}

static void on_call_done(void *arg, const struct http_response *r)
{
	struct admin_call *c = arg;
	struct connector_op *op = c->op;
	const char *what = c->kind == CALL_SETTINGS ? "connectSettings" : "generateEphemeralCert";
	c->http = NULL;
	if (r->status == 200) {
		c->done = true;
		c->answer = xstrndup(r->body, r->body_len);
		c->answer_len = r->body_len;
		if (op->calls[CALL_SETTINGS].done && op->calls[CALL_CERT].done)
			build_bundle(op);
		return;
	}
	int64_t delay = cloudsql_retry_delay_ms(c->resend, r->status, (double)random_below(1000) / 1000.0);
	char err[400];
	if (r->status == 0)
		snprintf(err, sizeof(err), "could not reach the Cloud SQL Admin API (%s): %s", what,
			 r->error ? r->error : "no answer");
	else
		azure_describe_error("the Cloud SQL Admin API", r->status, r->body, r->body_len, err, sizeof(err));
	if (delay >= 0) {
		c->resend++;
		log_info("alias %s: %s (%s); re-sending in %lld ms", op->alias, err, what, (long long)delay);
		struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000) };
		evtimer_add(c->timer, &tv);
		return;
	}
	fail(op, "%s (%s)", err, what);
}

static void send_call(struct admin_call *c)
{
	struct connector_op *op = c->op;
	const struct tb_config *cfg = token_engine_config();
	const char *headers[] = { op->auth_header, "Content-Type: application/json", "Accept: application/json", NULL };
	struct http_request req = {
		.method = c->body ? "POST" : "GET", .url = c->url, .headers = headers, .body = c->body,
		.body_len = c->body_len, .timeout_ms = cfg && cfg->token_fetch_timeout > 0
			? (long)(cfg->token_fetch_timeout / 1000) : DEFAULT_TIMEOUT_MS,
		.max_response = 256 * 1024, .ca_file = cfg ? cfg->token_ca_file : NULL,
	};
	c->http = http_start(&req, on_call_done, c);
	if (!c->http)
		fail(op, "could not start a request to the Cloud SQL Admin API");
}

static void start_call(struct connector_op *op, enum call_kind kind)
{
	struct admin_call *c = &op->calls[kind];
	c->op = op;
	c->kind = kind;
	c->resend = -1;
	c->timer = evtimer_new(token_engine_base(), on_call_timer, c);
	c->url = xasprintf("%s/sql/v1beta4/projects/%s/instances/%s%s", op->api, op->name.project, op->name.instance,
			   kind == CALL_SETTINGS ? "/connectSettings" : ":generateEphemeralCert");
	if (kind == CALL_CERT) {
		char *pem = connector_public_pem();
		c->body = cloudsql_cert_body(pem ? pem : "", op->auto_iam ? op->token : NULL, &c->body_len);
		free(pem);
	}
	send_call(c);
}

static void on_token(void *arg, const char *token, size_t len, int64_t expires_at, int64_t refresh_at,
		     const char *err)
{
	struct connector_op *op = arg;
	op->token_op = NULL;
	if (!token) {
		fail(op, "%s", err ? err : "no access token");
		return;
	}
	op->token = xstrndup(token, len);
	op->token_expires = expires_at;
	op->auth_header = xasprintf("Authorization: Bearer %s", op->token);
	/* §3.8.2: the two calls run concurrently. */
	start_call(op, CALL_SETTINGS);
	start_call(op, CALL_CERT);
}

struct connector_op *cloudsql_connect_start(struct credential *c, const struct token_target *t,
					    connector_cb cb, void *arg)
{
	struct connector_op *op = xcalloc(1, sizeof(*op));
	op->cred = c;
	op->cb = cb;
	op->arg = arg;
	op->ip = t->ip_type;
	op->port = t->port;
	op->auto_iam = t->auto_iam;
	op->api = xstrdup(t->api_endpoint ? t->api_endpoint : "https://sqladmin.googleapis.com");
	for (size_t n = strlen(op->api); n > 0 && op->api[n - 1] == '/'; n--)
		op->api[n - 1] = '\0';
	op->alias = xstrdup(t->alias ? t->alias : "?");
	if (!cloudsql_parse_name(t->instance, &op->name)) {
		fail(op, "instance=%s is not PROJECT:REGION:INSTANCE", t->instance);
		return op;
	}
	op->token_op = gcp_family.get_token(c, op->auto_iam ? ADMIN_SCOPE " " LOGIN_SCOPE : ADMIN_SCOPE,
					    on_token, op);
	return op;
}

void cloudsql_connect_cancel(struct connector_op *op)
{
	if (op)
		op_free(op);
}
