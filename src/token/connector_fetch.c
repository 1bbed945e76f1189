/* Connector mode, fetching (spec §3.8.2, §3.9.2): one access token for the
 * Admin API (with the login scope too, so one grant serves both), then the
 * instance's connection settings and a client certificate at the same time,
 * each re-sent on 5xx as the connectors do; the answers become a connector
 * bundle. Cloud SQL and AlloyDB differ only in the product table below.
 * Never blocks; ends with one callback. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config-t.h"
#include "core/log.h"
#include "core/util.h"
#include "token/alloydb.h"
#include "token/azure_parse.h"
#include "token/connector.h"
#include "token/gcp.h"
#include "token/http.h"
#include "token/method.h"
#include "token/provider.h"
#include "token/token.h"

#define SCOPE(s) "https://www.googleapis.com/auth/" s
#define ALLOYDB_CERT_SECONDS 3600

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
	int resend; /* -1 before the first re-send */
	struct http_call *http;
	struct event *timer;
	bool done;
	char *answer; /* the body of the 200 */
	size_t answer_len;
};

struct connector_op;

struct product {
	const char *api; /* "the Cloud SQL Admin API", for messages */
	const char *calls[CALL_COUNT];
	const char *scope, *iam_scope; /* without and with automatic IAM login */
	bool (*parse_name)(struct connector_op *op, const char *instance);
	char *(*url)(const struct connector_op *op, enum call_kind kind);
	char *(*body)(const struct connector_op *op, enum call_kind kind, size_t *len);
	struct connector_bundle *(*build)(struct connector_op *op, char *why, size_t whylen);
};

struct connector_op {
	const struct product *prod;
	struct credential *cred;
	struct cloudsql_name name;
	struct alloydb_name adb;
	enum connector_ip_type ip;
	int port;
	bool auto_iam;
	char *api;
	char *alias;
	connector_cb cb;
	void *arg;
	struct provider_op *token_op;
	struct token_wait *token_wait; /* ... or from the alias's token entry */
	bool token_apart;              /* that entry keeps the login token: the bundle holds none */
	char *token;                   /* the access token (wiped) */
	int64_t token_expires;
	char *auth_header;
	char *quota_header; /* x-goog-user-project, or NULL */
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
	token_wait_cancel(op->token_wait);
	for (int i = 0; i < CALL_COUNT; i++)
		call_clear(&op->calls[i]);
	if (op->later)
		event_free(op->later);
	secret_free(op->token);
	secret_free(op->auth_header);
	free(op->quota_header);
	free(op->api);
	free(op->alias);
	free(op);
}

static void finish(struct connector_op *op, struct connector_bundle *b)
{
	bool embedded = op->auto_iam && !op->token_apart;
	if (b)
		op->cb(op->arg, b, embedded ? op->token : NULL, embedded ? strlen(op->token) : 0,
		       embedded ? op->token_expires : 0, NULL);
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
__attribute__((format(printf, 2, 3))) static void fail(struct connector_op *op, const char *fmt, ...)
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
	char why[300];
	struct connector_bundle *b = op->prod->build(op, why, sizeof(why));
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
	const char *what = op->prod->calls[c->kind];
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
		snprintf(err, sizeof(err), "could not reach %s (%s): %s", op->prod->api, what,
			 r->error ? r->error : "no answer");
	else
		azure_describe_error(op->prod->api, r->status, r->body, r->body_len, err, sizeof(err));
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
	/* §3.8.2, §3.9.2: the quota project goes with every Admin API call. */
	const char *headers[] = { op->auth_header, "Content-Type: application/json",
				  "Accept: application/json", op->quota_header, NULL };
	struct http_request req = {
		.method = c->body ? "POST" : "GET",
		.url = c->url,
		.headers = headers,
		.body = c->body,
		.body_len = c->body_len,
		.timeout_ms = token_fetch_timeout_ms(),
		.max_response = 256 * 1024,
		.ca_file = token_ca_file(),
	};
	c->http = http_start(&req, on_call_done, c);
	if (!c->http)
		fail(op, "could not start a request to %s", op->prod->api);
}

static void start_call(struct connector_op *op, enum call_kind kind)
{
	struct admin_call *c = &op->calls[kind];
	c->op = op;
	c->kind = kind;
	c->resend = -1;
	c->timer = evtimer_new(token_engine_base(), on_call_timer, c);
	c->url = op->prod->url(op, kind);
	c->body = op->prod->body(op, kind, &c->body_len);
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

static void on_entry_token(void *arg, const char *token, size_t len, int64_t expires_at, uint64_t gen,
			   const char *err)
{
	struct connector_op *op = arg;
	op->token_wait = NULL;
	on_token(op, token, len, expires_at, 0, err);
}

/* ---- Cloud SQL (§3.8.2) ---- */

static bool csql_name(struct connector_op *op, const char *instance)
{
	return cloudsql_parse_name(instance, &op->name);
}

static char *csql_url(const struct connector_op *op, enum call_kind kind)
{
	return xasprintf("%s/sql/v1beta4/projects/%s/instances/%s%s", op->api, op->name.project,
			 op->name.instance,
			 kind == CALL_SETTINGS ? "/connectSettings" : ":generateEphemeralCert");
}

static char *csql_body(const struct connector_op *op, enum call_kind kind, size_t *len)
{
	if (kind != CALL_CERT)
		return NULL;
	char *pem = connector_public_pem();
	char *body = cloudsql_cert_body(pem ? pem : "", op->auto_iam ? op->token : NULL, len);
	free(pem);
	return body;
}

static struct connector_bundle *csql_build(struct connector_op *op, char *why, size_t whylen)
{
	struct cloudsql_settings s;
	const char *addr = NULL;
	struct admin_call *set = &op->calls[CALL_SETTINGS], *crt = &op->calls[CALL_CERT];
	if (!cloudsql_parse_settings(set->answer, set->answer_len, &s, why, whylen))
		return NULL;
	char *cert = NULL;
	struct connector_bundle *b = NULL;
	char cn[sizeof(op->name.project) + sizeof(op->name.instance) + 2];
	snprintf(cn, sizeof(cn), "%s:%s", op->name.project, op->name.instance);
	if (cloudsql_check_settings(&s, &op->name, op->ip, &addr, why, whylen) &&
	    (cert = cloudsql_parse_cert(crt->answer, crt->answer_len, why, whylen))) {
		struct connector_spec sp = {
			.cert_pem = cert,
			.ca_pem = s.ca_pem,
			.dial = addr,
			.port = op->port,
			.server_cn = cn,
			.server_dns = s.dns_name,
			.token_expires = op->auto_iam ? op->token_expires : 0,
		};
		b = connector_bundle_new(&sp, why, whylen);
	}
	free(cert);
	cloudsql_settings_clear(&s);
	return b;
}

/* ---- AlloyDB (§3.9.2) ---- */

static bool adb_name(struct connector_op *op, const char *instance)
{
	return alloydb_parse_name(instance, &op->adb);
}

static char *adb_url(const struct connector_op *op, enum call_kind kind)
{
	const struct alloydb_name *n = &op->adb;
	if (kind == CALL_SETTINGS)
		return xasprintf("%s/v1beta/projects/%s/locations/%s/clusters/%s/instances/%s/connectionInfo",
				 op->api, n->project, n->region, n->cluster, n->instance);
	return xasprintf("%s/v1beta/projects/%s/locations/%s/clusters/%s:generateClientCertificate", op->api,
			 n->project, n->region, n->cluster);
}

static char *adb_body(const struct connector_op *op, enum call_kind kind, size_t *len)
{
	if (kind != CALL_CERT)
		return NULL;
	char *pem = connector_public_pem();
	char *body = alloydb_cert_body(pem ? pem : "", ALLOYDB_CERT_SECONDS, len);
	free(pem);
	return body;
}

static const char *adb_address(const struct alloydb_info *i, enum connector_ip_type ip, char *why,
			       size_t whylen)
{
	const char *addr = ip == CONNECTOR_IP_PUBLIC    ? i->public_ip
			   : ip == CONNECTOR_IP_PRIVATE ? i->private_ip
							: i->psc_dns;
	if (!addr)
		err_set(why, whylen, "the instance has no %s address (ip_type=%s)",
			ip == CONNECTOR_IP_PUBLIC    ? "PUBLIC"
			: ip == CONNECTOR_IP_PRIVATE ? "PRIVATE"
						     : "PSC",
			ip == CONNECTOR_IP_PUBLIC    ? "public"
			: ip == CONNECTOR_IP_PRIVATE ? "private"
						     : "psc");
	return addr;
}

/* The metadata exchange carries a login token (§3.9.4), but not this one:
 * the server takes the freshest from the token's own entry, so the
 * certificate lives its full life. */
static struct connector_bundle *adb_build(struct connector_op *op, char *why, size_t whylen)
{
	struct alloydb_info info;
	struct admin_call *set = &op->calls[CALL_SETTINGS], *crt = &op->calls[CALL_CERT];
	if (!alloydb_parse_info(set->answer, set->answer_len, &info, why, whylen))
		return NULL;
	char *chain = NULL, *ca = NULL;
	struct connector_bundle *b = NULL;
	const char *addr = adb_address(&info, op->ip, why, whylen);
	if (addr && alloydb_parse_cert(crt->answer, crt->answer_len, &chain, &ca, why, whylen)) {
		struct connector_spec sp = {
			.cert_pem = chain,
			.ca_pem = ca,
			.dial = addr,
			.port = op->port,
			.mdx_auth = op->auto_iam ? MDX_AUTH_AUTO_IAM : MDX_AUTH_DB_NATIVE,
		};
		b = connector_bundle_new(&sp, why, whylen);
	}
	free(chain);
	free(ca);
	alloydb_info_clear(&info);
	return b;
}

static const struct product cloudsql = {
	.api = "the Cloud SQL Admin API",
	.calls = { "connectSettings", "generateEphemeralCert" },
	.scope = SCOPE("sqlservice.admin"),
	.iam_scope = SCOPE("sqlservice.admin") " " SCOPE("sqlservice.login"),
	.parse_name = csql_name,
	.url = csql_url,
	.body = csql_body,
	.build = csql_build,
};

static const struct product alloydb = {
	.api = "the AlloyDB Admin API",
	.calls = { "connectionInfo", "generateClientCertificate" },
	.scope = SCOPE("cloud-platform") " " SCOPE("alloydb.login"),
	.iam_scope = SCOPE("cloud-platform") " " SCOPE("alloydb.login"),
	.parse_name = adb_name,
	.url = adb_url,
	.body = adb_body,
	.build = adb_build,
};

static struct connector_op *connect_start(const struct product *prod, const char *default_api,
					  struct credential *c, const struct token_target *t, connector_cb cb,
					  void *arg)
{
	struct connector_op *op = xcalloc(1, sizeof(*op));
	op->prod = prod;
	op->cred = c;
	op->cb = cb;
	op->arg = arg;
	op->ip = t->ip_type;
	op->port = t->port;
	op->auto_iam = t->auto_iam;
	op->api = xstrdup(t->api_endpoint ? t->api_endpoint : default_api);
	for (size_t n = strlen(op->api); n > 0 && op->api[n - 1] == '/'; n--)
		op->api[n - 1] = '\0';
	op->alias = xstrdup(t->alias ? t->alias : "?");
	const char *quota = gcp_credential_quota_project(c);
	op->quota_header = quota ? xasprintf("x-goog-user-project: %s", quota) : NULL;
	if (!prod->parse_name(op, t->instance)) {
		fail(op, "instance=%s is not a valid instance name", t->instance);
		return op;
	}
	if (t->login) {
		op->token_apart = true;
		op->token_wait = token_request(t->login, on_entry_token, op);
		return op;
	}
	op->token_op = gcp_family.get_token(c, op->auto_iam ? prod->iam_scope : prod->scope, on_token, op);
	return op;
}

struct connector_op *cloudsql_connect_start(struct credential *c, const struct token_target *t,
					    connector_cb cb, void *arg)
{
	return connect_start(&cloudsql, "https://sqladmin.googleapis.com", c, t, cb, arg);
}

struct connector_op *alloydb_connect_start(struct credential *c, const struct token_target *t,
					   connector_cb cb, void *arg)
{
	return connect_start(&alloydb, "https://alloydb.googleapis.com", c, t, cb, arg);
}

void connector_connect_cancel(struct connector_op *op)
{
	if (op)
		op_free(op);
}
