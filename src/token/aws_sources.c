/* Running a plan (spec/cloud-tokens.md §1.3, §1.4) without blocking the
 * loop: STS AssumeRoleWithWebIdentity and AssumeRole with the legacy retry
 * schedule, the container endpoint (3 attempts 1 s apart), IMDSv2 with the
 * v1 fallback and static stability, credential_process; then the plan's
 * AssumeRole steps, each signed with the credentials before it. Keys,
 * session tokens and the web identity, IMDS and container tokens are wiped
 * when freed and never appear in messages. */
#include "token/aws_chain.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/encode.h"
#include "core/log.h"
#include "core/util.h"
#include "token/http.h"
#include "token/proc.h"
#include "token/provider.h"
#include "token/sigv4.h"

#define IMDS_TOKEN_PATH "/latest/api/token"
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"
#define CONTAINER_ATTEMPTS 3
#define CONTAINER_TIMEOUT_MS 2000L
#define CONTAINER_SLEEP_MS 1000L
#define STS_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"
#define PROCESS_MAX_OUTPUT (64 * 1024)
#define MSG_MAX 512

/* ---- running a plan ---- */

enum fetch_step {
	STEP_KICKOFF,
	STEP_FAIL,
	STEP_WEB,  /* AssumeRoleWithWebIdentity */
	STEP_ROLE, /* AssumeRole plan->p.roles[role] */
	STEP_CONTAINER,
	STEP_IMDS_TOKEN,
	STEP_IMDS_ROLE,
	STEP_IMDS_CREDS,
	STEP_PROCESS,
};

struct aws_fetch {
	struct aws_plan *plan;
	aws_fetch_cb cb;
	void *arg;
	enum fetch_step step;
	int attempt;                /* of the current request, from 1 */
	size_t role;                /* next AssumeRole step */
	struct aws_credentials cur; /* credentials so far */
	char *imds_token;           /* secret */
	char *imds_role;
	struct http_call *http;
	struct proc_call *proc;
	struct event *timer; /* kick-off, retry delays */
	char *fail;
};

static void fetch_free(struct aws_fetch *f)
{
	http_cancel(f->http);
	proc_cancel(f->proc);
	if (f->timer)
		event_free(f->timer);
	aws_credentials_clear(&f->cur);
	secret_free(f->imds_token);
	free(f->imds_role);
	aws_plan_free(f->plan);
	free(f->fail);
	free(f);
}

void aws_fetch_cancel(struct aws_fetch *f)
{
	if (f)
		fetch_free(f);
}

static bool in_imds(enum fetch_step s)
{
	return s == STEP_IMDS_TOKEN || s == STEP_IMDS_ROLE || s == STEP_IMDS_CREDS;
}

/* The one exit: the callback, then the fetch is gone. */
static void finish(struct aws_fetch *f, const struct aws_credentials *creds, const char *err)
{
	char msg[MSG_MAX + 100];
	if (err && f->plan && f->plan->chain_last && in_imds(f->step)) {
		snprintf(msg, sizeof(msg),
			 "no AWS credentials found (tried env, shared files, container, IMDS): %s", err);
		err = msg;
	}
	f->cb(f->arg, err ? NULL : creds, f->plan ? f->plan->label : NULL, err);
	fetch_free(f);
}

static void later(struct aws_fetch *f, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(f->timer, &tv);
}

static void send_step(struct aws_fetch *f);

static void retry_later(struct aws_fetch *f, long ms)
{
	f->attempt++;
	later(f, ms);
}

static void next_role(struct aws_fetch *f)
{
	if (f->role >= f->plan->p.nroles) {
		finish(f, &f->cur, NULL);
		return;
	}
	f->step = STEP_ROLE;
	f->attempt = 1;
	send_step(f);
}

/* A source or role answered: its credentials sign the next AssumeRole, if any. */
static void source_done(struct aws_fetch *f, struct aws_credentials *got)
{
	aws_credentials_clear(&f->cur);
	f->cur = *got;
	memset(got, 0, sizeof(*got));
	next_role(f);
}

static void on_http(void *arg, const struct http_response *resp);

static void launch(struct aws_fetch *f, const char *method, const char *url, const char *const *headers,
		   const char *body, long timeout_ms)
{
	struct http_request req = {
		.method = method,
		.url = url,
		.headers = headers,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.timeout_ms = timeout_ms,
		.ca_file = f->plan->ca_file,
	};
	f->http = http_start(&req, on_http, f);
	if (!f->http)
		finish(f, NULL, "could not start an HTTP request");
}

/* ---- STS ---- */

static char *session_name(const char *configured)
{
	if (configured)
		return xstrdup(configured);
	return xasprintf("botocore-session-%lld", (long long)(time_wall_usec() / USEC_PER_SEC));
}

static char *enc(const char *s)
{
	return url_encode(s, false);
}

static char *web_body(struct aws_fetch *f, char *err, size_t errlen)
{
	const struct aws_profile_plan *p = &f->plan->p;
	/* Re-read at every fetch: Kubernetes rotates the file. Sent verbatim. */
	char *tok = aws_read_secret_file(p->web_identity_token_file, "web identity token file", false, err,
					 errlen);
	if (!tok)
		return NULL;
	char *sess = session_name(p->web_identity_session_name);
	char *e_sess = enc(sess), *e_arn = enc(p->web_identity_role_arn), *e_tok = enc(tok);
	char *body = xasprintf("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=%s"
			       "&RoleArn=%s&WebIdentityToken=%s",
			       e_sess, e_arn, e_tok);
	secret_free(tok);
	secret_free(e_tok);
	free(sess);
	free(e_sess);
	free(e_arn);
	return body;
}

static char *role_body(const struct aws_role_step *r)
{
	char *sess = session_name(r->role_session_name);
	char *e_sess = enc(sess), *e_arn = enc(r->role_arn);
	char *e_ext = r->external_id ? enc(r->external_id) : NULL;
	char dur[32] = "";
	if (r->duration_seconds > 0)
		snprintf(dur, sizeof(dur), "&DurationSeconds=%d", r->duration_seconds);
	char *body = xasprintf("Action=AssumeRole&Version=2011-06-15&RoleSessionName=%s&RoleArn=%s%s%s%s",
			       e_sess, e_arn, e_ext ? "&ExternalId=" : "", e_ext ? e_ext : "", dur);
	secret_free(e_ext);
	free(sess);
	free(e_sess);
	free(e_arn);
	return body;
}

/* AssumeRole is signed with the credentials so far (§1.3.3). */
static void sts_send_role(struct aws_fetch *f, const char *url, const char *host, const char *path)
{
	char *body = role_body(&f->plan->p.roles[f->role]);
	char err[300];
	struct sigv4_signer s = {
		.access_key_id = f->cur.access_key_id,
		.secret_access_key = f->cur.secret_access_key,
		.session_token = f->cur.session_token,
		.region = f->plan->sts_region,
		.service = "sts",
		.now = time_wall_usec() / USEC_PER_SEC,
	};
	const struct sigv4_param hs[] = { { "Content-Type", STS_CONTENT_TYPE }, { "Host", host } };
	struct sigv4_auth auth;
	memset(&auth, 0, sizeof(auth));
	if (!sigv4_sign_headers(&s, "POST", path, NULL, 0, hs, 2, body, strlen(body), &auth, NULL, err,
				sizeof(err))) {
		secret_free(body);
		finish(f, NULL, err);
		return;
	}
	char *h_host = xasprintf("Host: %s", host), *h_date = xasprintf("X-Amz-Date: %s", auth.amz_date);
	char *h_tok = s.session_token && *s.session_token
			      ? xasprintf("X-Amz-Security-Token: %s", s.session_token)
			      : NULL;
	char *h_auth = xasprintf("Authorization: %s", auth.authorization);
	const char *headers[] = { h_host, "Content-Type: " STS_CONTENT_TYPE, h_date, h_auth, h_tok, NULL };
	log_debug("credential %s: STS AssumeRole %s (attempt %d)", f->plan->owner,
		  f->plan->p.roles[f->role].role_arn, f->attempt);
	launch(f, "POST", url, headers, body, f->plan->timeout_ms);
	sigv4_auth_clear(&auth);
	secret_free(body);
	secret_free(h_tok);
	secret_free(h_auth);
	free(h_host);
	free(h_date);
}

static void sts_send(struct aws_fetch *f)
{
	char *host, *path, err[MSG_MAX];
	if (!aws_url_split(f->plan->sts_url, &host, &path, err, sizeof(err))) {
		finish(f, NULL, err);
		return;
	}
	/* An endpoint without a path is asked at "/" (sts_url has no trailing slash). */
	char *url = xasprintf("%s%s", f->plan->sts_url, strcmp(path, "/") == 0 ? "/" : "");
	if (f->step == STEP_ROLE) {
		sts_send_role(f, url, host, path);
	} else {
		char *body = web_body(f, err, sizeof(err));
		if (body) {
			const char *headers[] = { "Content-Type: " STS_CONTENT_TYPE, NULL };
			log_debug("credential %s: STS AssumeRoleWithWebIdentity %s (attempt %d)",
				  f->plan->owner, f->plan->p.web_identity_role_arn, f->attempt);
			launch(f, "POST", url, headers, body, f->plan->timeout_ms);
		} else {
			finish(f, NULL, err);
		}
		secret_free(body);
	}
	free(url);
	free(host);
	free(path);
}

static void sts_failed(struct aws_fetch *f, const struct http_response *r, const char *code, const char *perr,
		       const char *action)
{
	static const char prefix[] = "STS returned error ";
	char msg[MSG_MAX + 400], after[48] = "", role[300] = "";
	if (f->attempt > 1)
		snprintf(after, sizeof(after), " (after %d attempts)", f->attempt);
	if (f->step == STEP_ROLE)
		snprintf(role, sizeof(role), " (role %.250s)", f->plan->p.roles[f->role].role_arn);
	if (r->status == 0)
		snprintf(msg, sizeof(msg), "STS %s failed: %s%s%s", action,
			 r->error ? r->error : "no response", role, after);
	else if (*code || r->status == 200)
		snprintf(msg, sizeof(msg), "STS %s failed: %s%s%s", action,
			 strncmp(perr, prefix, sizeof(prefix) - 1) == 0 ? perr + sizeof(prefix) - 1 : perr,
			 role, after);
	else
		snprintf(msg, sizeof(msg), "STS %s failed: HTTP %ld%s%s", action, r->status, role, after);
	finish(f, NULL, msg);
}

static void sts_done(struct aws_fetch *f, const struct http_response *r)
{
	const char *action = f->step == STEP_WEB ? "AssumeRoleWithWebIdentity" : "AssumeRole";
	struct aws_credentials got;
	char code[AWS_STS_CODE_MAX] = "", perr[MSG_MAX] = "";
	bool ok = r->status != 0 &&
		  aws_parse_sts_response(r->body, r->body_len, &got, code, sizeof(code), perr, sizeof(perr));
	if (ok && r->status == 200) {
		log_debug("credential %s: STS %s answered", f->plan->owner, action);
		if (f->step == STEP_ROLE)
			f->role++;
		source_done(f, &got);
		return;
	}
	if (ok)
		aws_credentials_clear(&got);
	if (aws_sts_should_retry(f->attempt, r->status, code)) {
		long ms = aws_sts_retry_delay_ms(f->attempt, random_below(1000000) / 1e6);
		log_debug("credential %s: STS %s: %s; retrying in %ld ms", f->plan->owner, action,
			  r->status ? (*code ? code : "server error") : "no response", ms);
		retry_later(f, ms);
		return;
	}
	sts_failed(f, r, code, perr, action);
}

/* ---- container endpoint (§1.3.6) ---- */

static void container_send(struct aws_fetch *f)
{
	char *h_auth = f->plan->container_auth ? xasprintf("Authorization: %s", f->plan->container_auth)
					       : NULL;
	const char *headers[] = { "Accept: application/json", h_auth, NULL };
	log_debug("credential %s: container endpoint (attempt %d)", f->plan->owner, f->attempt);
	launch(f, "GET", f->plan->container_url, headers, NULL, CONTAINER_TIMEOUT_MS);
	secret_free(h_auth);
}

/* "Message" of an error body, printable and short; "" when none. */
static void body_message(const struct http_response *r, char *out, size_t outlen)
{
	json_t *root = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
	json_t *m = root ? json_object_get(root, "Message") : NULL;
	const char *s = json_is_string(m) ? json_string_value(m) : "";
	size_t i = 0;
	for (; s[i] && i + 1 < outlen && i < 160; i++)
		out[i] = (unsigned char)s[i] < ' ' || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
	json_decref(root);
}

static void container_done(struct aws_fetch *f, const struct http_response *r)
{
	struct aws_credentials got;
	char perr[MSG_MAX] = "", msg[MSG_MAX + 64], said[200];
	if (r->status == 200 &&
	    aws_parse_credentials_json(AWS_JSON_CONTAINER, r->body, r->body_len, &got, perr, sizeof(perr))) {
		source_done(f, &got);
		return;
	}
	if (f->attempt < CONTAINER_ATTEMPTS) {
		retry_later(f, CONTAINER_SLEEP_MS);
		return;
	}
	body_message(r, said, sizeof(said));
	if (r->status == 0)
		snprintf(msg, sizeof(msg),
			 "container credentials endpoint did not answer: %s (after %d attempts)",
			 r->error ? r->error : "?", f->attempt);
	else if (r->status == 200)
		snprintf(msg, sizeof(msg), "%s (after %d attempts)", perr, f->attempt);
	else
		snprintf(msg, sizeof(msg),
			 "container credentials endpoint answered HTTP %ld%s%s (after %d attempts)",
			 r->status, *said ? ": " : "", said, f->attempt);
	finish(f, NULL, msg);
}

/* ---- IMDS (§1.3.7) ---- */

static void imds_send(struct aws_fetch *f)
{
	const struct aws_plan *p = f->plan;
	char *h_tok = f->imds_token ? xasprintf("x-aws-ec2-metadata-token: %s", f->imds_token) : NULL;
	char *url = f->step == STEP_IMDS_TOKEN ? xasprintf("%s" IMDS_TOKEN_PATH, p->imds_base)
		    : f->step == STEP_IMDS_ROLE
			    ? xasprintf("%s" IMDS_CREDS_PATH, p->imds_base)
			    : xasprintf("%s" IMDS_CREDS_PATH "%s", p->imds_base, f->imds_role);
	log_debug("credential %s: IMDS %s (attempt %d)", p->owner, url + strlen(p->imds_base), f->attempt);
	if (f->step == STEP_IMDS_TOKEN) {
		const char *put_headers[] = { "x-aws-ec2-metadata-token-ttl-seconds: 21600", NULL };
		launch(f, "PUT", url, put_headers, NULL, p->imds_timeout_ms);
	} else {
		const char *get_headers[] = { h_tok, NULL };
		launch(f, "GET", url, get_headers, NULL, p->imds_timeout_ms);
	}
	free(url);
	secret_free(h_tok);
}

static void imds_next(struct aws_fetch *f, enum fetch_step s)
{
	f->step = s;
	f->attempt = 1;
	send_step(f);
}

static void imds_token_done(struct aws_fetch *f, const struct http_response *r)
{
	enum aws_imds_token_outcome o = r->status ? aws_imds_token_outcome(r->status) : AWS_IMDS_TOKEN_RETRY;
	char why[300];
	if (o == AWS_IMDS_TOKEN_OK) {
		size_t n = r->body_len;
		while (n > 0 && strchr(" \t\r\n", r->body[n - 1]))
			n--;
		f->imds_token = n ? xstrndup(r->body, n) : NULL;
		imds_next(f, STEP_IMDS_ROLE);
		return;
	}
	if (o == AWS_IMDS_TOKEN_FATAL) {
		finish(f, NULL, "IMDS rejected the session token request (HTTP 400)");
		return;
	}
	if (o == AWS_IMDS_TOKEN_RETRY && f->attempt < f->plan->imds_attempts) {
		retry_later(f, 0);
		return;
	}
	if (r->status)
		snprintf(why, sizeof(why), "HTTP %ld", r->status);
	else
		snprintf(why, sizeof(why), "%s", r->error ? r->error : "no response");
	if (f->plan->imds_v1_disabled) {
		char msg[MSG_MAX];
		snprintf(msg, sizeof(msg),
			 "IMDS gave no session token (%s) and IMDSv1 is disabled "
			 "(AWS_EC2_METADATA_V1_DISABLED)",
			 why);
		finish(f, NULL, msg);
		return;
	}
	log_debug("credential %s: IMDS gave no session token (%s); using IMDSv1", f->plan->owner, why);
	imds_next(f, STEP_IMDS_ROLE);
}

static void imds_failed(struct aws_fetch *f, const struct http_response *r, const char *what, const char *perr)
{
	char msg[MSG_MAX];
	if (r->status == 0)
		snprintf(msg, sizeof(msg), "IMDS did not answer for the %s: %s", what,
			 r->error ? r->error : "?");
	else if (r->status != 200)
		snprintf(msg, sizeof(msg), "IMDS answered %ld for the %s", r->status, what);
	else
		snprintf(msg, sizeof(msg), "%s", perr);
	finish(f, NULL, msg);
}

static void imds_role_done(struct aws_fetch *f, const struct http_response *r)
{
	char perr[MSG_MAX] = "";
	char *role = r->status == 200 ? aws_parse_imds_role(r->body, r->body_len, perr, sizeof(perr)) : NULL;
	if (role) {
		f->imds_role = role;
		imds_next(f, STEP_IMDS_CREDS);
	} else if (f->attempt < f->plan->imds_attempts) {
		retry_later(f, 0);
	} else {
		imds_failed(f, r, "role name", perr);
	}
}

static void imds_creds_done(struct aws_fetch *f, const struct http_response *r)
{
	struct aws_credentials got;
	char perr[MSG_MAX] = "";
	if (r->status != 200 ||
	    !aws_parse_credentials_json(AWS_JSON_IMDS, r->body, r->body_len, &got, perr, sizeof(perr))) {
		if (f->attempt < f->plan->imds_attempts)
			retry_later(f, 0);
		else
			imds_failed(f, r, "role credentials", perr);
		return;
	}
	/* Static stability: an IMDS that keeps serving old keys must not stop us. */
	int64_t now = time_wall_usec() / USEC_PER_SEC;
	int64_t ext = aws_imds_extend(got.expiration, now, 120 + (int)random_below(481));
	if (ext != got.expiration) {
		log_info("credential %s: IMDS credentials expire in %lld s; using them for %lld s more while "
			 "IMDS catches up (static stability)",
			 f->plan->owner, (long long)(got.expiration - now), (long long)(ext - now));
		got.expiration = ext;
	}
	source_done(f, &got);
}

/* ---- credential_process (§1.3.5) ---- */

static void first_line(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i = 0;
	while (len > 0 && strchr(" \t\r\n", *s))
		s++, len--;
	for (; i < len && s[i] != '\n' && s[i] != '\r' && i + 1 < outlen && i < 200; i++)
		out[i] = (unsigned char)s[i] < ' ' || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
}

static void on_proc(void *arg, const struct proc_result *res)
{
	struct aws_fetch *f = arg;
	struct aws_credentials got;
	char msg[MSG_MAX], line[220];
	f->proc = NULL;
	if (res->timed_out) {
		snprintf(msg, sizeof(msg), "credential_process timed out after %ld ms", f->plan->timeout_ms);
	} else if (res->failure) {
		snprintf(msg, sizeof(msg), "credential_process failed: %s", res->failure);
	} else if (res->exit_code != 0) {
		first_line(res->err, res->err_len, line, sizeof(line));
		snprintf(msg, sizeof(msg), "credential_process exited with %d%s%s", res->exit_code,
			 *line ? ": " : "", line);
	} else if (aws_parse_credentials_json(AWS_JSON_PROCESS, res->out, res->out_len, &got, msg,
					      sizeof(msg))) {
		source_done(f, &got);
		return;
	}
	finish(f, NULL, msg);
}

static void process_start(struct aws_fetch *f)
{
	char **argv = f->plan->p.process_argv;
	log_debug("credential %s: running credential_process %s", f->plan->owner, argv[0]);
	f->proc = proc_start((const char *const *)argv, f->plan->timeout_ms, PROCESS_MAX_OUTPUT, on_proc, f);
	if (!f->proc) {
		char msg[MSG_MAX];
		snprintf(msg, sizeof(msg), "credential_process could not start \"%.200s\": %s", argv[0],
			 strerror(errno));
		finish(f, NULL, msg);
	}
}

/* ---- dispatch ---- */

static void send_step(struct aws_fetch *f)
{
	switch (f->step) {
	case STEP_WEB:
	case STEP_ROLE:
		sts_send(f);
		break;
	case STEP_CONTAINER:
		container_send(f);
		break;
	case STEP_IMDS_TOKEN:
	case STEP_IMDS_ROLE:
	case STEP_IMDS_CREDS:
		imds_send(f);
		break;
	case STEP_PROCESS:
		process_start(f);
		break;
	default:
		finish(f, NULL, "internal error: bad fetch step");
	}
}

static void on_http(void *arg, const struct http_response *resp)
{
	struct aws_fetch *f = arg;
	f->http = NULL;
	switch (f->step) {
	case STEP_WEB:
	case STEP_ROLE:
		sts_done(f, resp);
		break;
	case STEP_CONTAINER:
		container_done(f, resp);
		break;
	case STEP_IMDS_TOKEN:
		imds_token_done(f, resp);
		break;
	case STEP_IMDS_ROLE:
		imds_role_done(f, resp);
		break;
	case STEP_IMDS_CREDS:
		imds_creds_done(f, resp);
		break;
	default:
		finish(f, NULL, "internal error: unexpected HTTP answer");
	}
}

static void begin(struct aws_fetch *f)
{
	struct aws_profile_plan *p = &f->plan->p;
	f->attempt = 1;
	switch (p->source) {
	case AWS_SOURCE_STATIC:
	case AWS_SOURCE_ENVIRONMENT:
		aws_credentials_copy(&f->cur, &p->static_creds);
		next_role(f);
		return;
	case AWS_SOURCE_WEB_IDENTITY:
		f->step = STEP_WEB;
		break;
	case AWS_SOURCE_PROCESS:
		f->step = STEP_PROCESS;
		break;
	case AWS_SOURCE_CONTAINER:
		f->step = STEP_CONTAINER;
		break;
	case AWS_SOURCE_IMDS:
		f->step = STEP_IMDS_TOKEN;
		break;
	default:
		finish(f, NULL, "internal error: no credential source in the plan");
		return;
	}
	send_step(f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct aws_fetch *f = arg;
	if (f->step == STEP_KICKOFF)
		begin(f);
	else if (f->step == STEP_FAIL)
		finish(f, NULL, f->fail);
	else
		send_step(f);
}

static struct aws_fetch *fetch_new(aws_fetch_cb cb, void *arg)
{
	struct aws_fetch *f = xcalloc(1, sizeof(*f));
	f->cb = cb;
	f->arg = arg;
	/* Never answer from inside the caller: always one loop pass later. */
	f->timer = evtimer_new(token_engine_base(), on_timer, f);
	later(f, 0);
	return f;
}

struct aws_fetch *aws_fetch_start(struct aws_plan *plan, aws_fetch_cb cb, void *arg)
{
	struct aws_fetch *f = fetch_new(cb, arg);
	f->plan = plan;
	f->step = STEP_KICKOFF;
	return f;
}

struct aws_fetch *aws_fetch_fail(const char *err, aws_fetch_cb cb, void *arg)
{
	struct aws_fetch *f = fetch_new(cb, arg);
	f->step = STEP_FAIL;
	f->fail = xstrdup(err);
	return f;
}
