/* Fetching an Entra ID token from one source without blocking the loop:
 * the token endpoint (client secret, certificate, workload identity), IMDS
 * (with the availability probe and the retry table of spec §2.7.1), App
 * Service, and the Azure CLI. Every fetch begins from a zero timer and ends
 * with one callback; retries wait on the same timer. */
#include "token/azure.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config-t.h"
#include "core/log.h"
#include "core/util.h"
#include "token/http.h"
#include "token/proc.h"
#include "token/provider.h"

#define PROBE_TIMEOUT_MS 1000
#define MAX_SECRET_FILE (16 * 1024)
#define MAX_TOKEN_FILE (64 * 1024)
#define MAX_CERT_FILE (256 * 1024)
#define MAX_HEADERS 4

enum fetch_step {
	STEP_BEGIN,
	STEP_SEND,
};

struct az_fetch {
	struct az_source *src;
	az_fetch_cb cb;
	void *arg;
	bool in_chain;
	char *scope, *resource;
	const char *who;  /* "Entra", "IMDS", "App Service", "az" */
	const char *name; /* what answers, for credential.source */
	enum fetch_step step;
	struct event *timer;
	/* the HTTP exchange */
	enum azure_retry policy;
	enum azure_response parse_as;
	char *url, *body;
	size_t body_len;
	char *headers[MAX_HEADERS + 1];
	bool probing;
	int attempt;
	int64_t first_ms, sent_s;
	struct http_call *call;
	struct proc_call *proc;
};

void az_source_clear(struct az_source *s)
{
	free(s->tenant_id);
	free(s->client_id);
	free(s->authority);
	secret_free(s->secret);
	free(s->secret_file);
	free(s->secret_env);
	free(s->cert_file);
	secret_free(s->cert_password);
	free(s->token_file);
	free(s->mi_id);
	free(s->mi_base);
	free(s->mi_unsupported);
	free(s->subscription);
	memset(s, 0, sizeof(*s));
}

static int64_t mono_ms(void)
{
	return time_mono_usec() / 1000;
}

static void set_headers(struct az_fetch *f, const char *first, const char *second)
{
	secret_free_each(f->headers, MAX_HEADERS);
	int n = 0;
	if (first)
		f->headers[n++] = xstrdup(first);
	if (second)
		f->headers[n++] = xstrdup(second);
}

static void fetch_free(struct az_fetch *f)
{
	if (f->call)
		http_cancel(f->call);
	if (f->proc)
		proc_cancel(f->proc);
	if (f->timer)
		event_free(f->timer);
	secret_free_each(f->headers, MAX_HEADERS);
	secret_free_n(f->body, f->body_len);
	free(f->url);
	free(f->scope);
	free(f->resource);
	free(f);
}

static void finish(struct az_fetch *f, enum azure_outcome o, const struct azure_token *tok, const char *err)
{
	f->cb(f->arg, o, tok, f->name, err);
	fetch_free(f);
}

__attribute__((format(printf, 3, 4))) static void fail(struct az_fetch *f, enum azure_outcome o,
						       const char *fmt, ...)
{
	char err[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
	finish(f, o, NULL, err);
}

static void arm(struct az_fetch *f, enum fetch_step step, int64_t delay_ms)
{
	struct timeval tv = { (time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000) };
	f->step = step;
	evtimer_add(f->timer, &tv);
}

/* ---- local files ---- */

/* A small regular file, NUL-terminated; the caller wipes it. */
static char *read_small_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		snprintf(err, errlen, "%s is not a regular file of at most %zu bytes", path, max);
		close(fd);
		return NULL;
	}
	char *buf = xmalloc((size_t)st.st_size + 1);
	size_t n = 0;
	ssize_t r = 1;
	while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) > 0)
		n += (size_t)r;
	int saved = errno;
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(saved));
		secret_wipe(buf, n);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Reads a one-value file (secret, federated token) without its surrounding
 * whitespace (§2.11). */
static char *read_value_file(const char *path, size_t max, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf = read_small_file(path, max, &len, err, errlen);
	if (!buf)
		return NULL;
	size_t start = strspn(buf, " \t\r\n");
	while (len > start && strchr(" \t\r\n", buf[len - 1]))
		len--;
	if (len == start) {
		snprintf(err, errlen, "%s is empty", path);
		secret_free(buf);
		return NULL;
	}
	memmove(buf, buf + start, len - start);
	secret_wipe(buf + (len - start), start + 1);
	buf[len - start] = '\0';
	return buf;
}

static char *client_secret(const struct az_source *s, char *err, size_t errlen)
{
	if (s->secret)
		return xstrdup(s->secret);
	if (s->secret_file)
		return read_value_file(s->secret_file, MAX_SECRET_FILE, err, errlen);
	const char *v = s->secret_env ? getenv(s->secret_env) : NULL;
	if (!v || !*v) {
		snprintf(err, errlen, "environment variable %s is not set",
			 s->secret_env ? s->secret_env : "?");
		return NULL;
	}
	return xstrdup(v);
}

/* ---- HTTP with retries ---- */

static void on_http_done(void *arg, const struct http_response *resp);

static void send_request(struct az_fetch *f)
{
	f->attempt++;
	if (f->attempt == 1)
		f->first_ms = mono_ms();
	f->sent_s = time_wall_usec() / USEC_PER_SEC;
	struct http_request req = {
		.method = f->body ? "POST" : "GET",
		.url = f->url,
		.headers = (const char *const *)f->headers,
		.body = f->body,
		.body_len = f->body_len,
		.timeout_ms = f->probing ? PROBE_TIMEOUT_MS : token_fetch_timeout_ms(),
		.max_response = AZURE_MAX_RESPONSE,
		.ca_file = token_ca_file(),
	};
	f->call = http_start(&req, on_http_done, f);
	if (!f->call)
		fail(f, f->in_chain ? AZURE_UNAVAILABLE : AZURE_FAILED, "could not start a request to %s",
		     f->who);
}

/* IMDS answered something: it exists. Now the real request (§2.7.1). */
static void probe_answered(struct az_fetch *f, const struct http_response *r)
{
	if (r->status == 0) {
		fail(f, AZURE_UNAVAILABLE, "no IMDS at %.*s (%s)", http_url_path_len(f->url), f->url,
		     r->error ? r->error : "no answer");
		return;
	}
	f->src->imds_known = true;
	f->probing = false;
	f->policy = AZURE_RETRY_IMDS;
	f->attempt = 0;
	set_headers(f, "Metadata: true", NULL);
	send_request(f);
}

static enum azure_outcome failure_outcome(const struct az_fetch *f, long status, const char *body, size_t len)
{
	if (f->src->kind == AZ_MANAGED && f->src->mi_where == AZ_MI_AT_IMDS)
		return f->in_chain || status == 0 ? AZURE_UNAVAILABLE : azure_imds_outcome(status, body, len);
	if (f->src->kind == AZ_MANAGED && status == 0 && f->in_chain)
		return AZURE_UNAVAILABLE;
	return AZURE_FAILED;
}

static void got_token_body(struct az_fetch *f, const struct http_response *r)
{
	char err[512];
	struct azure_token tok;
	if (!azure_parse_token(f->parse_as, f->who, r->body, r->body_len, f->sent_s, &tok, err, sizeof(err))) {
		/* A non-JSON 200 from IMDS means something else answers there (§2.7.1). */
		bool imds = f->src->kind == AZ_MANAGED && f->src->mi_where == AZ_MI_AT_IMDS;
		finish(f, imds ? AZURE_UNAVAILABLE : AZURE_FAILED, NULL, err);
		return;
	}
	finish(f, AZURE_OK, &tok, NULL);
	azure_token_clear(&tok);
}

static void on_http_done(void *arg, const struct http_response *r)
{
	struct az_fetch *f = arg;
	f->call = NULL;
	if (f->probing) {
		probe_answered(f, r);
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		got_token_body(f, r);
		return;
	}
	int64_t delay = azure_retry_delay_ms(f->policy, r->status, f->attempt, mono_ms() - f->first_ms,
					     r->retry_after);
	char err[400];
	if (r->status == 0)
		snprintf(err, sizeof(err), "could not reach %s at %.*s: %s", f->who,
			 http_url_path_len(f->url), f->url, r->error ? r->error : "no answer");
	else
		azure_describe_error(f->who, r->status, r->body, r->body_len, err, sizeof(err));
	if (delay >= 0) {
		log_info("credential %s: %s; retry %d in %.1f s", f->src->owner, err, f->attempt,
			 (double)delay / 1000.0);
		arm(f, STEP_SEND, delay);
		return;
	}
	enum azure_outcome o = failure_outcome(f, r->status, r->body, r->body_len);
	if (r->retry_after * 1000 > AZURE_MAX_RETRY_AFTER_MS)
		fail(f, o, "%s (it asks to retry after %.0f s)", err, r->retry_after);
	else if (f->attempt > 1)
		fail(f, o, "%s (after %d attempts)", err, f->attempt);
	else
		finish(f, o, NULL, err);
}

/* ---- the token endpoint (§2.4-§2.6) ---- */

static char *authority_url(const struct az_source *s, char *err, size_t errlen)
{
	if (s->authority)
		return xstrdup(s->authority);
	const char *env = getenv("AZURE_AUTHORITY_HOST");
	if (!env || !*env)
		return xstrdup(AZURE_DEFAULT_AUTHORITY);
	char why[256];
	char *url = azure_base_url(env, "https", true, why, sizeof(why));
	if (!url)
		snprintf(err, errlen, "AZURE_AUTHORITY_HOST: %s", why);
	return url;
}

/* The credential part of the body: the secret, a signed assertion or the
 * federated token. */
static char *grant_credential(struct az_fetch *f, const char *endpoint, enum azure_grant *g, char *err,
			      size_t errlen)
{
	const struct az_source *s = f->src;
	if (s->kind == AZ_CLIENT_SECRET) {
		*g = AZURE_GRANT_SECRET;
		return client_secret(s, err, errlen);
	}
	if (s->kind == AZ_WORKLOAD || s->kind == AZ_MANAGED) {
		*g = AZURE_GRANT_FEDERATED;
		return read_value_file(s->token_file, MAX_TOKEN_FILE, err, errlen);
	}
	*g = AZURE_GRANT_CERTIFICATE;
	size_t len = 0;
	char *pem = read_small_file(s->cert_file, MAX_CERT_FILE, &len, err, errlen);
	if (!pem)
		return NULL;
	char why[256];
	struct azure_cert *cert = azure_cert_load(pem, len, s->cert_password, why, sizeof(why));
	secret_wipe(pem, len);
	free(pem);
	if (!cert) {
		snprintf(err, errlen, "%s: %s", s->cert_file, why);
		return NULL;
	}
	unsigned char rnd[16];
	char jti[37];
	if (!random_bytes(rnd, sizeof(rnd))) {
		azure_cert_free(cert);
		snprintf(err, errlen, "no random bytes for the client assertion's id");
		return NULL;
	}
	azure_uuid_format(rnd, jti);
	struct azure_assertion a = {
		.audience = endpoint,
		.client_id = s->client_id,
		.jti = jti,
		.now = time_wall_usec() / USEC_PER_SEC,
		.lifetime = AZURE_ASSERTION_LIFETIME,
		.alg = AZURE_JWT_RS256,
		.send_chain = s->send_chain,
	};
	char *jwt = azure_client_assertion(cert, &a, err, errlen);
	azure_cert_free(cert);
	return jwt;
}

static void begin_entra(struct az_fetch *f)
{
	char err[400];
	enum azure_grant g;
	char *authority = authority_url(f->src, err, sizeof(err));
	if (!authority) {
		fail(f, AZURE_FAILED, "%s", err);
		return;
	}
	f->url = azure_token_endpoint(authority, f->src->tenant_id);
	free(authority);
	char *cred = grant_credential(f, f->url, &g, err, sizeof(err));
	if (!cred) {
		fail(f, AZURE_FAILED, "%s", err);
		return;
	}
	f->body = azure_token_body(g, f->src->client_id, f->scope, cred, &f->body_len);
	secret_free(cred);
	f->who = "Entra";
	f->policy = AZURE_RETRY_CORE;
	f->parse_as = AZURE_RESP_ENTRA;
	set_headers(f, "Accept: application/json", "Content-Type: application/x-www-form-urlencoded");
	send_request(f);
}

/* ---- managed identity (§2.7) ---- */

static void begin_app_service(struct az_fetch *f)
{
	const char *secret = getenv("IDENTITY_HEADER");
	if (!secret || !*secret) {
		fail(f, AZURE_FAILED, "IDENTITY_HEADER is not set");
		return;
	}
	f->who = "App Service";
	f->policy = AZURE_RETRY_CORE;
	f->url = azure_mi_url(AZURE_MI_APP_SERVICE, f->src->mi_base, f->resource, f->src->mi_kind,
			      f->src->mi_id);
	char *h = xasprintf("X-IDENTITY-HEADER: %s", secret);
	set_headers(f, h, NULL);
	secret_free(h);
	send_request(f);
}

static void begin_imds(struct az_fetch *f)
{
	f->who = "IMDS";
	f->url = azure_mi_url(AZURE_MI_IMDS, f->src->mi_base, f->resource, f->src->mi_kind, f->src->mi_id);
	/* Inside a chain, first check that something answers at all (§2.7.1). */
	f->probing = f->in_chain && !f->src->imds_known;
	f->policy = f->probing ? AZURE_RETRY_NONE : AZURE_RETRY_IMDS;
	set_headers(f, f->probing ? NULL : "Metadata: true", NULL);
	send_request(f);
}

static void begin_managed(struct az_fetch *f)
{
	f->parse_as = AZURE_RESP_MANAGED_IDENTITY;
	switch (f->src->mi_where) {
	case AZ_MI_AT_IMDS:
		f->name = "imds";
		begin_imds(f);
		break;
	case AZ_MI_AT_APP_SERVICE:
		f->name = "app-service";
		begin_app_service(f);
		break;
	case AZ_MI_AT_WORKLOAD:
		f->name = "workload-identity";
		begin_entra(f);
		break;
	default:
		fail(f, f->in_chain ? AZURE_UNAVAILABLE : AZURE_FAILED, "%s", f->src->mi_unsupported);
		break;
	}
}

/* ---- Azure CLI (§2.8) ---- */

static void on_cli_done(void *arg, const struct proc_result *res)
{
	struct az_fetch *f = arg;
	char err[400];
	f->proc = NULL;
	enum azure_outcome o = azure_cli_outcome(res->exit_code, res->timed_out, res->failure, res->err, err,
						 sizeof(err));
	if (res->timed_out)
		snprintf(err, sizeof(err), "az did not answer within %.1f s",
			 (double)token_fetch_timeout_ms() / 1000);
	if (o != AZURE_OK) {
		finish(f, f->in_chain ? AZURE_UNAVAILABLE : o, NULL, err);
		return;
	}
	struct azure_token tok;
	if (!azure_parse_token(AZURE_RESP_CLI, "az", res->out, res->out_len, f->sent_s, &tok, err,
			       sizeof(err))) {
		finish(f, f->in_chain ? AZURE_UNAVAILABLE : AZURE_FAILED, NULL, err);
		return;
	}
	finish(f, AZURE_OK, &tok, NULL);
	azure_token_clear(&tok);
}

static void begin_cli(struct az_fetch *f)
{
	const char *argv[AZURE_CLI_ARGV_MAX];
	f->who = "az";
	azure_cli_argv(f->resource, f->src->tenant_id, f->src->subscription, argv);
	f->sent_s = time_wall_usec() / USEC_PER_SEC;
	f->proc = proc_start(argv, token_fetch_timeout_ms(), AZURE_MAX_RESPONSE, on_cli_done, f);
	if (f->proc)
		return;
	if (errno == ENOENT)
		fail(f, AZURE_UNAVAILABLE, "az is not installed or not on PATH");
	else
		fail(f, f->in_chain ? AZURE_UNAVAILABLE : AZURE_FAILED, "could not run az: %s",
		     strerror(errno));
}

/* ---- the fetch ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct az_fetch *f = arg;
	if (f->step == STEP_SEND) {
		send_request(f);
		return;
	}
	switch (f->src->kind) {
	case AZ_MANAGED:
		begin_managed(f);
		break;
	case AZ_CLI:
		begin_cli(f);
		break;
	default:
		begin_entra(f);
		break;
	}
}

struct az_fetch *az_fetch_start(struct az_source *src, const char *scope, bool in_chain, az_fetch_cb cb,
				void *arg)
{
	struct az_fetch *f = xcalloc(1, sizeof(*f));
	f->src = src;
	f->cb = cb;
	f->arg = arg;
	f->in_chain = in_chain;
	f->scope = azure_scope_v2(scope);
	f->resource = azure_scope_resource(scope);
	f->name = src->label;
	f->who = "Entra";
	f->timer = evtimer_new(token_engine_base(), on_timer, f);
	arm(f, STEP_BEGIN, 0);
	return f;
}

void az_fetch_cancel(struct az_fetch *f)
{
	if (f)
		fetch_free(f);
}
