/* Fetching a Google access token from one source without blocking the
 * loop: the token endpoint (JWT-bearer and refresh-token grants), the
 * metadata server (with detection inside gcp-default), and impersonation
 * through IAM Credentials on top of another source. Every fetch begins from
 * a zero timer and ends with one callback; retries wait on the same timer. */
#include "token/gcp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config-t.h"
#include "core/log.h"
#include "core/util.h"
#include "token/azure_parse.h"
#include "token/credential.h"
#include "token/http.h"
#include "token/provider.h"

#define PING_TIMEOUT_MS 3000
#define PING_ATTEMPTS 3
#define MAX_HEADERS 4
#define MAX_SOURCE_HOPS 4
#define SOURCE_REFRESH_S 225
#define GCP_MAX_EMAIL 254

enum stage {
	STAGE_BEGIN,
	STAGE_SEND,
};

enum answer {
	ANSWER_OAUTH,
	ANSWER_IAM,
	ANSWER_PING,
	ANSWER_EMAIL,
};

struct gcp_fetch {
	struct gcp_source *src;
	char *scope;
	gcp_fetch_cb cb;
	void *arg;
	const char *who; /* "Google token endpoint", "metadata server", ... */
	enum stage stage;
	struct event *timer;
	enum gcp_retry policy;
	enum answer answer;
	char *url, *body;
	size_t body_len;
	char *headers[MAX_HEADERS + 1];
	int attempt;
	long timeout_ms;
	int64_t sent_s;
	struct http_call *call;
	struct gcp_fetch *inner; /* impersonation: the source token */
	struct provider_op *inner_op;
	struct credential *inner_cred;
};

void gcp_source_clear(struct gcp_source *s)
{
	gcp_file_clear(&s->file);
	free(s->token_uri);
	free(s->quota_project);
	free(s->target);
	for (size_t i = 0; i < s->ndelegates; i++)
		free(s->delegates[i]);
	free(s->iam_base);
	if (s->inner) {
		gcp_source_clear(s->inner);
		free(s->inner);
	}
	free(s->source_name);
	free(s->email);
	secret_free(s->source_token);
	free(s->why);
	memset(s, 0, sizeof(*s));
}

const char *gcp_source_email(const struct gcp_source *s)
{
	if (s->kind == GCP_SRC_IMPERSONATE)
		return s->target;
	if (s->kind == GCP_SRC_FILE)
		return s->file.client_email;
	return s->email;
}

static void forget_source_token(struct gcp_source *s)
{
	secret_free(s->source_token);
	s->source_token = NULL;
	s->source_refresh_at = 0;
}

static void add_header(struct gcp_fetch *f, char *owned)
{
	int i = 0;
	while (i < MAX_HEADERS && f->headers[i])
		i++;
	if (i < MAX_HEADERS)
		f->headers[i] = owned;
	else
		secret_free(owned);
}

static void clear_request(struct gcp_fetch *f)
{
	if (f->call)
		http_cancel(f->call);
	f->call = NULL;
	secret_free_each(f->headers, MAX_HEADERS);
	secret_free_n(f->body, f->body_len);
	f->body = NULL;
	free(f->url);
	f->url = NULL;
	f->attempt = 0;
}

static void fetch_free(struct gcp_fetch *f)
{
	clear_request(f);
	if (f->inner)
		gcp_fetch_cancel(f->inner);
	if (f->inner_op)
		gcp_family.cancel(f->inner_op);
	if (f->timer)
		event_free(f->timer);
	free(f->scope);
	free(f);
}

static void finish(struct gcp_fetch *f, const struct gcp_token *tok, const char *err)
{
	f->cb(f->arg, tok, f->src->label, err);
	fetch_free(f);
}

__attribute__((format(printf, 2, 3))) static void fail(struct gcp_fetch *f, const char *fmt, ...)
{
	char err[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
	finish(f, NULL, err);
}

static void arm(struct gcp_fetch *f, enum stage stage, int64_t delay_ms)
{
	struct timeval tv = { (time_t)(delay_ms / 1000), (suseconds_t)((delay_ms % 1000) * 1000) };
	f->stage = stage;
	evtimer_add(f->timer, &tv);
}

/* ---- HTTP with retries ---- */

static void on_http_done(void *arg, const struct http_response *resp);

static void send_request(struct gcp_fetch *f)
{
	f->attempt++;
	f->sent_s = time_wall_usec() / USEC_PER_SEC;
	struct http_request req = {
		.method = f->body ? "POST" : "GET",
		.url = f->url,
		.headers = (const char *const *)f->headers,
		.body = f->body,
		.body_len = f->body_len,
		.timeout_ms = f->timeout_ms ? f->timeout_ms : token_fetch_timeout_ms(),
		.max_response = GCP_MAX_RESPONSE,
		.ca_file = token_ca_file(),
	};
	f->call = http_start(&req, on_http_done, f);
	if (!f->call)
		fail(f, "could not start a request to the %s", f->who);
}

static void begin_metadata_token(struct gcp_fetch *f);

static void ping_answered(struct gcp_fetch *f, const struct http_response *r)
{
	if (r->status == 200 && r->metadata_flavor) {
		f->src->metadata_known = true;
		clear_request(f);
		begin_metadata_token(f);
		return;
	}
	if (r->status == 0 && f->attempt < PING_ATTEMPTS) {
		send_request(f);
		return;
	}
	if (r->status == 0)
		fail(f, "no metadata server at %s (%s)", f->url, r->error ? r->error : "no answer");
	else
		fail(f, "what answers at %s is not a metadata server (status %ld%s)", f->url, r->status,
		     r->metadata_flavor ? "" : ", no Metadata-Flavor: Google header");
}

static void email_answered(struct gcp_fetch *f, const struct http_response *r)
{
	struct gcp_source *s = f->src;
	int64_t delay = r->status == 200
				? -1
				: gcp_retry_delay_ms(GCP_RETRY_METADATA, f->attempt, r->status, r->body,
						     r->body_len, (double)random_below(1000) / 1000.0);
	if (delay >= 0) {
		arm(f, STAGE_SEND, delay); /* §3.4's retries, as for the token */
		return;
	}
	size_t n = r->body_len;
	while (n > 0 && (r->body[n - 1] == '\n' || r->body[n - 1] == '\r' || r->body[n - 1] == ' '))
		n--;
	bool plain = n > 2 && n <= GCP_MAX_EMAIL && memchr(r->body, '@', n);
	for (size_t i = 0; plain && i < n; i++)
		plain = r->body[i] > ' ' && r->body[i] < 0x7f;
	if (r->status == 200 && plain) {
		free(s->email);
		s->email = xstrndup(r->body, n);
	} else if (r->status == 200) {
		snprintf(s->email_error, sizeof(s->email_error), "the answer is not an e-mail address");
	} else if (r->status == 0) {
		snprintf(s->email_error, sizeof(s->email_error), "%s", r->error ? r->error : "no answer");
	} else {
		snprintf(s->email_error, sizeof(s->email_error), "status %ld", r->status);
	}
	if (!s->email)
		log_warning("credential %s: the metadata server did not tell the service account's e-mail: %s",
			    s->owner, s->email_error);
	clear_request(f);
	begin_metadata_token(f);
}

static void got_token(struct gcp_fetch *f, const struct http_response *r)
{
	char err[400];
	struct gcp_token tok;
	bool ok = f->answer == ANSWER_IAM
			  ? gcp_parse_iam(r->body, r->body_len, &tok, err, sizeof(err))
			  : gcp_parse_oauth(r->body, r->body_len, f->sent_s, &tok, err, sizeof(err));
	if (!ok) {
		fail(f, "%s: %s", f->who, err);
		return;
	}
	if (tok.refresh_token && f->src->kind == GCP_SRC_FILE && f->src->file.refresh_token) {
		/* A returned refresh token replaces the old one (§3.3.2). */
		secret_free(f->src->file.refresh_token);
		f->src->file.refresh_token = xstrdup(tok.refresh_token);
	}
	finish(f, &tok, NULL);
	gcp_token_clear(&tok);
}

static void on_http_done(void *arg, const struct http_response *r)
{
	struct gcp_fetch *f = arg;
	f->call = NULL;
	if (f->answer == ANSWER_PING) {
		ping_answered(f, r);
		return;
	}
	if (f->answer == ANSWER_EMAIL) {
		email_answered(f, r);
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		got_token(f, r);
		return;
	}
	char err[400];
	if (r->status == 0)
		snprintf(err, sizeof(err), "could not reach the %s at %.*s: %s", f->who,
			 http_url_path_len(f->url), f->url, r->error ? r->error : "no answer");
	else
		azure_describe_error(f->who, r->status, r->body, r->body_len, err, sizeof(err));
	if (f->answer == ANSWER_IAM && r->status == 401)
		forget_source_token(f->src); /* the source token was refused: fetch a new one next time */
	double jitter = (double)random_below(1000) / 1000.0;
	int64_t delay = gcp_retry_delay_ms(f->policy, f->attempt, r->status, r->body, r->body_len, jitter);
	if (delay >= 0) {
		log_info("credential %s: %s; retry %d in %.1f s", f->src->owner, err, f->attempt,
			 (double)delay / 1000.0);
		arm(f, STAGE_SEND, delay);
		return;
	}
	if (f->attempt > 1)
		fail(f, "%s (after %d attempts)", err, f->attempt);
	else
		fail(f, "%s", err);
}

/* ---- the sources ---- */

static void begin_token_endpoint(struct gcp_fetch *f)
{
	const struct gcp_file *file = &f->src->file;
	f->who = "Google token endpoint";
	f->policy = GCP_RETRY_TOKEN;
	f->answer = ANSWER_OAUTH;
	f->url = xstrdup(f->src->token_uri);
	if (file->type == GCP_FILE_SERVICE_ACCOUNT) {
		int64_t now = time_wall_usec() / USEC_PER_SEC;
		char *jwt = gcp_jwt_assertion(file->key, file->private_key_id, file->client_email, f->scope,
					      now);
		if (!jwt) {
			fail(f, "could not sign the JWT assertion with the service account's key");
			return;
		}
		f->body = gcp_jwt_grant_body(jwt, &f->body_len);
		secret_free(jwt);
	} else {
		f->body = gcp_refresh_body(file->client_id, file->client_secret, file->refresh_token,
					   f->scope, &f->body_len);
	}
	add_header(f, xstrdup("Content-Type: application/x-www-form-urlencoded"));
	add_header(f, xstrdup("Accept: application/json"));
	send_request(f);
}

static const char *env_or(const char *a, const char *b, const char *dflt)
{
	const char *v = getenv(a);
	if ((!v || !*v) && b)
		v = getenv(b);
	return v && *v ? v : dflt;
}

/* §3.4: the e-mail names the IAM database user (§3.6); asked once, before
 * the first token. Without it the token still serves aliases with user=. */
static void begin_metadata_email(struct gcp_fetch *f)
{
	f->src->email_asked = true;
	f->who = "metadata server";
	f->answer = ANSWER_EMAIL;
	f->timeout_ms = 0;
	f->url = xasprintf("http://%s/computeMetadata/v1/instance/service-accounts/default/email",
			   env_or("GCE_METADATA_HOST", "GCE_METADATA_ROOT", "metadata.google.internal"));
	add_header(f, xstrdup("Metadata-Flavor: Google"));
	send_request(f);
}

static void begin_metadata_token(struct gcp_fetch *f)
{
	if (!f->src->email_asked) {
		begin_metadata_email(f);
		return;
	}
	f->who = "metadata server";
	f->policy = GCP_RETRY_METADATA;
	f->answer = ANSWER_OAUTH;
	f->timeout_ms = 0;
	f->url = gcp_metadata_token_url(
		env_or("GCE_METADATA_HOST", "GCE_METADATA_ROOT", "metadata.google.internal"), f->scope);
	add_header(f, xstrdup("Metadata-Flavor: Google"));
	send_request(f);
}

static void begin_metadata(struct gcp_fetch *f)
{
	if (!f->src->ping || f->src->metadata_known) {
		begin_metadata_token(f);
		return;
	}
	/* gcp-default: is there a metadata server at all (§3.4)? */
	f->who = "metadata server";
	f->answer = ANSWER_PING;
	f->timeout_ms = PING_TIMEOUT_MS;
	f->url = xasprintf("http://%s/", env_or("GCE_METADATA_IP", NULL, "169.254.169.254"));
	add_header(f, xstrdup("Metadata-Flavor: Google"));
	send_request(f);
}

static void impersonate_with(struct gcp_fetch *f, const char *source_token)
{
	const struct gcp_source *s = f->src;
	f->who = "IAM Credentials API";
	f->policy = GCP_RETRY_NONE;
	f->answer = ANSWER_IAM;
	f->url = gcp_impersonate_url(s->iam_base, s->target);
	f->body = gcp_impersonate_body(s->delegates, s->ndelegates, f->scope, s->lifetime, &f->body_len);
	add_header(f, xasprintf("Authorization: Bearer %s", source_token));
	add_header(f, xstrdup("Content-Type: application/json"));
	if (s->quota_project)
		add_header(f, xasprintf("x-goog-user-project: %s", s->quota_project));
	send_request(f);
}

/* The source token serves every impersonation until its own refresh point
 * (§3.5: 225 s ahead, scaled per §0.3.1 for short lifetimes). */
static void keep_source_token(struct gcp_fetch *f, const char *token, int64_t expires_at)
{
	struct gcp_source *s = f->src;
	int64_t now = time_wall_usec() / USEC_PER_SEC;
	int64_t margin = (expires_at - now) / 2 < SOURCE_REFRESH_S ? (expires_at - now) / 2 : SOURCE_REFRESH_S;
	secret_free(s->source_token);
	s->source_token = xstrdup(token);
	s->source_refresh_at = expires_at - margin;
}

static void on_inner_token(void *arg, const struct gcp_token *tok, const char *source, const char *err)
{
	struct gcp_fetch *f = arg;
	f->inner = NULL;
	if (!tok) {
		fail(f, "the impersonation source (%s) failed: %s", source, err);
		return;
	}
	keep_source_token(f, tok->access_token, tok->expires_at);
	impersonate_with(f, tok->access_token);
}

static void on_inner_op(void *arg, const char *token, size_t len, int64_t expires_at, int64_t refresh_at,
			const char *err)
{
	struct gcp_fetch *f = arg;
	f->inner_op = NULL;
	if (!token) {
		fail(f, "the impersonation source credential %s failed: %s", f->inner_cred->name, err);
		return;
	}
	keep_source_token(f, token, expires_at);
	impersonate_with(f, token);
}

/* The source credential named by source=, checked for loops of sources. */
static struct credential *source_credential(struct gcp_fetch *f, char *err, size_t errlen)
{
	const char *name = f->src->source_name;
	for (int hop = 0; hop < MAX_SOURCE_HOPS; hop++) {
		struct credential *c = token_engine_credential(name);
		if (!c || c->family != CRED_FAMILY_GCP || !c->state) {
			err_set(err, errlen, "source=%s names no gcp-* credential", name);
			return NULL;
		}
		const struct gcp_source *next = c->state;
		if (hop == 0)
			f->inner_cred = c;
		if (next->kind != GCP_SRC_IMPERSONATE || !next->source_name)
			return f->inner_cred;
		name = next->source_name;
	}
	err_set(err, errlen, "source=%s: impersonation sources chain more than %d deep (a loop?)",
		f->src->source_name, MAX_SOURCE_HOPS);
	return NULL;
}

static void begin_impersonate(struct gcp_fetch *f)
{
	if (f->src->source_token && time_wall_usec() / USEC_PER_SEC < f->src->source_refresh_at) {
		impersonate_with(f, f->src->source_token);
		return;
	}
	/* Ask the source for cloud-platform: IAM Credentials refuses a token
	 * scoped to the database login only (§3.10). */
	if (f->src->inner) {
		f->inner = gcp_fetch_start(f->src->inner, GCP_CLOUD_PLATFORM, on_inner_token, f);
		return;
	}
	char err[300];
	struct credential *c = source_credential(f, err, sizeof(err));
	if (!c) {
		fail(f, "%s", err);
		return;
	}
	f->inner_op = gcp_family.get_token(c, GCP_CLOUD_PLATFORM, on_inner_op, f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct gcp_fetch *f = arg;
	if (f->stage == STAGE_SEND) {
		send_request(f);
		return;
	}
	switch (f->src->kind) {
	case GCP_SRC_FILE:
		begin_token_endpoint(f);
		break;
	case GCP_SRC_METADATA:
		begin_metadata(f);
		break;
	case GCP_SRC_IMPERSONATE:
		begin_impersonate(f);
		break;
	default:
		fail(f, "%s", f->src->why ? f->src->why : "no credential source");
		break;
	}
}

struct gcp_fetch *gcp_fetch_start(struct gcp_source *src, const char *scope, gcp_fetch_cb cb, void *arg)
{
	struct gcp_fetch *f = xcalloc(1, sizeof(*f));
	f->src = src;
	f->scope = xstrdup(scope);
	f->cb = cb;
	f->arg = arg;
	f->who = "Google";
	f->timer = evtimer_new(token_engine_base(), on_timer, f);
	arm(f, STAGE_BEGIN, 0);
	return f;
}

void gcp_fetch_cancel(struct gcp_fetch *f)
{
	if (f)
		fetch_free(f);
}
