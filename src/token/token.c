#include "token/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/util.h"
#include "token/aws_token.h"
#include "token/aws_parse.h"
#include "token/connector.h"
#include "token/credential.h"
#include "token/http.h"
#include "token/method.h"
#include "token/proc.h"
#include "token/provider.h"
#include "token/token_clock.h"

/* Spec §0.3: never retry a failed refresh sooner than this (as token_clock_wait_ms passes it). */
#define MIN_RETRY_MS 30000
#define MAX_RETRY_MS 300000
/* Forced refreshes (a token the server rejected): one per this, a burst of 2. */
#define FORCED_REFRESH_EVERY_MS 30000
/* A server login that cannot get a token must not wait forever. */
#define WAIT_CAP_MS 60000

struct token_wait {
	struct list_node node;
	struct token_entry *entry;
	token_cb cb;
	void *arg;
};

struct token_entry {
	struct list_node node;
	enum upstream_auth kind;
	char *cred_name, *audience, *user, *region, *alias;
	int64_t duration;
	int port;
	struct credential *cred;
	/* connector mode */
	char *instance, *api;
	int ip_type;
	bool auto_iam;
	struct connector_op *cop;
	struct connector_bundle *bundle;
	struct token_entry *login; /* the login token apart from the certificate, or NULL */
	double bucket;             /* forced refreshes left (burst 2, one per 30 s) */
	int64_t bucket_ms;
	char *token;
	size_t token_len;
	int64_t issued_ms, expires_ms, refresh_ms, hard_ms;
	uint64_t generation;
	struct provider_op *op;
	bool fetching;
	struct list_node waiters;
	int64_t retry_ms;
	int failures;
	char last_error[256];
	uint64_t fetch_count, failure_count;
	int64_t last_refresh;
	struct event *timer;
};

/* Process-wide by design, not per loop (pool/worker.h): one token per
 * alias and identity serves every loop, fetched once however many want it. */
static struct event_base *tok_base;
static struct list_node entries = { &entries, &entries };
static struct credential *creds;
static size_t ncreds;
static const struct tb_config *tok_cfg;

const char *aws_env_region(void)
{
	const char *r = getenv("AWS_REGION");
	if (!r || !*r)
		r = getenv("AWS_DEFAULT_REGION");
	return r && *r ? r : NULL;
}

static int64_t now_ms(void)
{
	return time_wall_usec() / 1000;
}

const struct provider_family *provider_family_get(enum credential_family f)
{
	switch (f) {
	case CRED_FAMILY_AZURE:
		return &azure_family;
	case CRED_FAMILY_AWS:
		return &aws_family;
	case CRED_FAMILY_GCP:
		return &gcp_family;
	default:
		return NULL;
	}
}

static const char *kind_provider(const struct token_entry *e)
{
	if (e->instance && e->kind == UPSTREAM_AUTH_CLOUDSQL)
		return "cloudsql-connector";
	if (e->instance && e->kind == UPSTREAM_AUTH_ALLOYDB)
		return "alloydb-connector";
	return upstream_auth_name(e->kind);
}

static void wipe_token(struct token_entry *e)
{
	if (e->token) {
		secret_wipe(e->token, e->token_len);
		free(e->token);
	}
	e->token = NULL;
	e->token_len = 0;
	e->expires_ms = e->refresh_ms = e->hard_ms = 0;
	connector_bundle_unref(e->bundle);
	e->bundle = NULL;
}

static bool token_usable(const struct token_entry *e, int64_t now)
{
	return e->token && now < e->hard_ms;
}

static void arm_timer(struct token_entry *e, int64_t at_ms)
{
	int64_t d = at_ms - now_ms();
	if (d < 0)
		d = 0;
	struct timeval tv = { (time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000) };
	evtimer_add(e->timer, &tv);
}

static void notify_waiters(struct token_entry *e, const char *err)
{
	struct list_node *n;
	while ((n = list_first(&e->waiters))) {
		struct token_wait *w = list_entry(n, struct token_wait, node);
		list_del(n);
		if (err)
			w->cb(w->arg, NULL, 0, 0, 0, err);
		else
			w->cb(w->arg, e->token, e->token_len, e->expires_ms / 1000, e->generation, NULL);
		free(w);
	}
}

/* Spec §0.3.1: margins shrink with short lifetimes so a 20 s token is still
 * refreshed ahead and served until shortly before it expires. */
static void set_schedule(struct token_entry *e, int64_t refresh_margin_s, int64_t hard_margin_s,
			 int64_t hint_ms)
{
	int64_t life = e->expires_ms - e->issued_ms;
	if (life < 0)
		life = 0;
	int64_t rm = refresh_margin_s * 1000, hm = hard_margin_s * 1000;
	if (rm > life / 2)
		rm = life / 2;
	if (hm > life / 6)
		hm = life / 6;
	e->refresh_ms = e->expires_ms - rm;
	if (hint_ms > 0 && hint_ms < e->refresh_ms)
		e->refresh_ms = hint_ms;
	e->hard_ms = e->expires_ms - hm;
}

static void fetch_succeeded(struct token_entry *e, const char *token, size_t len, int64_t expires_s,
			    int64_t hint_s, int64_t refresh_margin, int64_t hard_margin,
			    struct connector_bundle *b)
{
	int64_t now = now_ms();
	e->op = NULL;
	e->cop = NULL;
	e->fetching = false;
	if (expires_s * 1000 <= now) {
		char msg[200];
		snprintf(msg, sizeof(msg), "the token source returned a token that has already expired");
		/* handled as a failure below */
		e->failures++;
		e->failure_count++;
		snprintf(e->last_error, sizeof(e->last_error), "%s", msg);
		e->retry_ms = now + token_clock_wait_ms(MIN_RETRY_MS);
		notify_waiters(e, e->last_error);
		arm_timer(e, e->retry_ms);
		return;
	}
	wipe_token(e);
	e->bundle = connector_bundle_ref(b);
	e->token = xmalloc(len + 1);
	memcpy(e->token, token, len);
	e->token[len] = '\0';
	e->token_len = len;
	e->issued_ms = now;
	e->expires_ms = expires_s * 1000;
	set_schedule(e, refresh_margin, hard_margin, hint_s * 1000);
	e->generation++;
	e->failures = 0;
	e->retry_ms = 0;
	e->last_error[0] = '\0';
	e->last_refresh = now / 1000;
	log_info("token for alias \"%s\" (credential %s, user %s): new %s, expires in %lld s, "
		 "refresh in %lld s",
		 e->alias, e->cred_name, e->user, b ? "certificate" : "token",
		 (long long)((e->expires_ms - now) / 1000), (long long)((e->refresh_ms - now) / 1000));
	notify_waiters(e, NULL);
	arm_timer(e, e->refresh_ms);
}

static void fetch_failed(struct token_entry *e, const char *err)
{
	int64_t now = now_ms();
	e->op = NULL;
	e->cop = NULL;
	e->fetching = false;
	e->failures++;
	e->failure_count++;
	if (e->cred) {
		e->cred->failure_count++;
		snprintf(e->cred->last_error, sizeof(e->cred->last_error), "%s", err);
	}
	snprintf(e->last_error, sizeof(e->last_error), "%s", err);
	/* Jittered exponential backoff, never sooner than 30 s (spec §0.3). */
	int64_t backoff = MIN_RETRY_MS << (e->failures > 4 ? 4 : e->failures - 1);
	if (backoff > MAX_RETRY_MS)
		backoff = MAX_RETRY_MS;
	backoff = token_clock_wait_ms(backoff);
	backoff += (int64_t)random_below((uint32_t)(backoff / 4 + 1));
	e->retry_ms = now + backoff;
	bool still_valid = token_usable(e, now);
	log_warning("token for alias \"%s\" (credential %s): %s; %s; retrying in %lld s", e->alias,
		    e->cred_name, err, still_valid ? "the cached token stays in use" : "no valid token",
		    (long long)(backoff / 1000));
	notify_waiters(e, err);
	int64_t next = e->retry_ms;
	if (still_valid && e->hard_ms < next)
		next = e->hard_ms;
	arm_timer(e, next);
}

/* ---- provider callbacks ---- */

static void on_access_token(void *arg, const char *token, size_t len, int64_t expires_at, int64_t refresh_at,
			    const char *err)
{
	struct token_entry *e = arg;
	if (err || !token) {
		fetch_failed(e, err ? err : "no token");
		return;
	}
	/* A reload may have removed the credential's section while the fetch was in flight. */
	if (!e->cred) {
		fetch_failed(e, "its credential section is gone");
		return;
	}
	const struct provider_family *f = provider_family_get(e->cred->family);
	e->cred->fetch_count++;
	e->cred->last_success = now_ms() / 1000;
	fetch_succeeded(e, token, len, expires_at, refresh_at, f->refresh_margin, f->hard_margin, NULL);
}

static void on_aws_credentials(void *arg, const struct aws_credentials *creds_in, const char *err)
{
	struct token_entry *e = arg;
	if (err || !creds_in) {
		fetch_failed(e, err ? err : "no AWS credentials");
		return;
	}
	int64_t now_s = now_ms() / 1000;
	struct aws_db_target t = {
		.host = e->audience,
		.port = e->port,
		.user = e->user,
		.region = e->region,
		.env_region = aws_env_region(),
		.duration = e->duration,
	};
	char merr[256];
	int64_t expires = 0;
	const struct upstream_method *m = upstream_method_of(e->kind);
	char *tok = m->mint(creds_in, &t, now_s, &expires, merr, sizeof(merr));
	if (!tok) {
		fetch_failed(e, merr);
		return;
	}
	e->cred->fetch_count++;
	e->cred->last_success = now_s;
	fetch_succeeded(e, tok, strlen(tok), expires, 0, m->mint_refresh_s, m->mint_hard_s, NULL);
	secret_free(tok);
}

/* Connector mode: the certificate refreshes per §3.8.4, scaled for short
 * lifetimes (§0.3.1); without automatic IAM login there is no token to send. */
static void on_bundle(void *arg, struct connector_bundle *b, const char *login, size_t len,
		      int64_t token_expires, const char *err)
{
	struct token_entry *e = arg;
	if (!b) {
		fetch_failed(e, err ? err : "no certificate");
		return;
	}
	int64_t now_s = now_ms() / 1000;
	e->cred->fetch_count++;
	e->cred->last_success = now_s;
	fetch_succeeded(e, login ? login : "", login ? len : 0, b->expires_at, 0,
			connector_refresh_margin(b->expires_at - now_s), 30, b);
}

static void start_connector(struct token_entry *e, const struct upstream_method *m)
{
	struct token_target t = {
		.kind = e->kind,
		.credential = e->cred_name,
		.user = e->user,
		.port = e->port,
		.alias = e->alias,
		.instance = e->instance,
		.ip_type = e->ip_type,
		.auto_iam = e->auto_iam,
		.api_endpoint = e->api,
		.login = e->login,
	};
	struct connector_op *op = m->connect_start(e->cred, &t, on_bundle, e);
	if (e->fetching)
		e->cop = op;
}

static void cancel_fetch(struct token_entry *e)
{
	const struct upstream_method *m = upstream_method_of(e->kind);
	if (e->cop && m && m->connect_cancel)
		m->connect_cancel(e->cop);
	if (e->op && e->cred) {
		const struct provider_family *f = provider_family_get(e->cred->family);
		if (f && f->cancel)
			f->cancel(e->op);
	}
	e->op = NULL;
	e->cop = NULL;
	e->fetching = false;
}

static void start_fetch(struct token_entry *e)
{
	if (e->fetching)
		return;
	if (!e->cred) {
		fetch_failed(e, "its credential section is gone");
		return;
	}
	const struct provider_family *f = provider_family_get(e->cred->family);
	const struct upstream_method *m = upstream_method_of(e->kind);
	if (!f || !m || (m->mint ? !f->get_aws : !f->get_token)) {
		fetch_failed(e, "this credential family is not supported yet");
		return;
	}
	e->fetching = true;
	e->fetch_count++;
	log_debug("token for alias \"%s\": fetching (credential %s)", e->alias, e->cred_name);
	if (e->instance && m->connect_start) {
		start_connector(e, m);
		return;
	}
	/* Providers may answer before returning; 'fetching' stays consistent either way. */
	struct provider_op *op;
	if (m->mint)
		op = f->get_aws(e->cred, on_aws_credentials, e);
	else
		op = f->get_token(e->cred, e->audience, on_access_token, e);
	if (e->fetching)
		e->op = op;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct token_entry *e = arg;
	int64_t now = now_ms();
	if (e->token && now >= e->expires_ms)
		wipe_token(e);
	if (e->retry_ms && now < e->retry_ms) {
		arm_timer(e, e->retry_ms);
		return;
	}
	start_fetch(e);
}

/* ---- public API ---- */

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct credential *find_credential(const char *name)
{
	for (size_t i = 0; i < ncreds; i++)
		if (strcmp(creds[i].name, name) == 0)
			return &creds[i];
	return NULL;
}

struct token_entry *token_entry_for(const struct token_target *t)
{
	const struct upstream_method *m = upstream_method_of(t->kind);
	const char *aud = t->audience;
	if (!aud && m && !m->audience_is_host)
		aud = m->default_scope;
	struct list_node *n, *tmp;
	list_for_each_safe(n, tmp, &entries) {
		struct token_entry *e = list_entry(n, struct token_entry, node);
		if (e->kind == t->kind && str_same(e->cred_name, t->credential) &&
		    str_same(e->audience, aud) && str_same(e->user, t->user) &&
		    str_same(e->region, t->region) && e->duration == t->duration && e->port == t->port &&
		    str_same(e->instance, t->instance) && str_same(e->api, t->api_endpoint) &&
		    e->ip_type == t->ip_type && e->auto_iam == t->auto_iam)
			return e;
	}
	struct token_entry *e = xcalloc(1, sizeof(*e));
	e->kind = t->kind;
	e->cred_name = xstrdup(t->credential);
	e->audience = xstrdup(aud);
	e->user = xstrdup(t->user);
	e->region = xstrdup(t->region);
	e->alias = xstrdup(t->alias ? t->alias : "?");
	e->duration = t->duration;
	e->port = t->port;
	e->instance = t->instance ? xstrdup(t->instance) : NULL;
	e->api = t->api_endpoint ? xstrdup(t->api_endpoint) : NULL;
	e->ip_type = t->ip_type;
	e->auto_iam = t->auto_iam;
	e->bucket = 2;
	e->cred = find_credential(t->credential);
	list_init(&e->waiters);
	e->timer = evtimer_new(tok_base, on_timer, e);
	list_add_tail(&entries, &e->node);
	if (e->instance && m && m->connector_token_scope) {
		/* Not bound to the database user: one token for every pool of the alias. */
		struct token_target lt = { .kind = t->kind,
					   .credential = t->credential,
					   .audience = m->connector_token_scope,
					   .user = "",
					   .alias = t->alias };
		e->login = token_entry_for(&lt);
	}
	return e;
}

struct token_entry *token_entry_login(struct token_entry *e)
{
	return e ? e->login : NULL;
}

struct token_wait *token_request(struct token_entry *e, token_cb cb, void *arg)
{
	int64_t now = now_ms();
	if (e->token && now >= e->expires_ms)
		wipe_token(e);
	if (token_usable(e, now)) {
		if (now >= e->refresh_ms && (!e->retry_ms || now >= e->retry_ms))
			start_fetch(e);
		cb(arg, e->token, e->token_len, e->expires_ms / 1000, e->generation, NULL);
		return NULL;
	}
	if (!e->fetching && e->retry_ms && now < e->retry_ms) {
		/* The last fetch failed and it is too early to ask again. */
		cb(arg, NULL, 0, 0, 0, e->last_error);
		return NULL;
	}
	struct token_wait *w = xcalloc(1, sizeof(*w));
	w->entry = e;
	w->cb = cb;
	w->arg = arg;
	list_add_tail(&e->waiters, &w->node);
	start_fetch(e);
	/* A fetch that finished synchronously has answered (and freed) the waiter. */
	return e->fetching ? w : NULL;
}

void token_wait_cancel(struct token_wait *w)
{
	if (!w)
		return;
	list_del(&w->node);
	free(w);
}

void token_reject(struct token_entry *e, uint64_t generation)
{
	if (e->generation != generation || !e->token)
		return;
	if (e->bundle) {
		/* Connector material: a refused login may mean a stale certificate
		 * or token, but the Admin API is asked at the connectors' pace. */
		token_force_refresh(e, generation);
		return;
	}
	log_warning("token for alias \"%s\" (credential %s, user %s) was rejected by the server; "
		    "fetching a new one",
		    e->alias, e->cred_name, e->user);
	wipe_token(e);
	e->retry_ms = 0;
}

struct connector_bundle *token_entry_bundle(struct token_entry *e)
{
	return e && e->token && e->bundle ? connector_bundle_ref(e->bundle) : NULL;
}

void token_force_refresh(struct token_entry *e, uint64_t generation)
{
	int64_t now = now_ms();
	e->bucket += (double)(now - e->bucket_ms) / (double)token_clock_wait_ms(FORCED_REFRESH_EVERY_MS);
	if (e->bucket > 2)
		e->bucket = 2;
	e->bucket_ms = now;
	if (e->generation != generation || e->fetching || e->bucket < 1)
		return;
	e->bucket -= 1;
	log_warning("alias \"%s\": the connection failed in a way stale material explains; refreshing "
		    "the certificate",
		    e->alias);
	e->retry_ms = 0;
	start_fetch(e);
}

void token_prefetch(const struct token_target *t)
{
	struct token_entry *e = token_entry_for(t);
	if (!e->token && !e->fetching && (!e->retry_ms || now_ms() >= e->retry_ms))
		start_fetch(e);
}

int token_refresh_all(const char *alias)
{
	int n = 0;
	struct list_node *it, *tmp;
	list_for_each_safe(it, tmp, &entries) {
		struct token_entry *e = list_entry(it, struct token_entry, node);
		if (alias && strcmp(alias, e->alias) != 0)
			continue;
		e->retry_ms = 0;
		start_fetch(e);
		n++;
	}
	return n;
}

static const char *entry_state(const struct token_entry *e, int64_t now)
{
	if (e->fetching)
		return e->token ? "refreshing" : "fetching";
	if (!e->token)
		return e->failures ? "failed" : "empty";
	if (now >= e->hard_ms)
		return "expired";
	return "valid";
}

bool token_entry_ready(const struct token_entry *e, char *why, size_t whylen)
{
	int64_t now = now_ms();
	if (token_usable(e, now))
		return true;
	snprintf(why, whylen, "token %s%s%s", entry_state(e, now), e->last_error[0] ? ": " : "",
		 e->last_error);
	return false;
}

void token_foreach(void (*fn)(const struct token_view *v, void *arg), void *arg)
{
	int64_t now = now_ms();
	struct list_node *it, *tmp;
	list_for_each_safe(it, tmp, &entries) {
		struct token_entry *e = list_entry(it, struct token_entry, node);
		struct token_view v = {
			.cert_subject = e->bundle ? e->bundle->subject : NULL,
			.cert_expires_in = e->bundle ? e->bundle->cert_expires - now / 1000 : -1,
			.alias = e->alias,
			.credential = e->cred_name,
			.provider = kind_provider(e),
			.user = e->user,
			.audience = e->audience,
			.state = entry_state(e, now),
			.expires_in = e->token ? (e->expires_ms - now) / 1000 : -1,
			.refresh_in = -1,
			.last_refresh = e->last_refresh,
			.last_error = e->last_error,
			.fetch_count = e->fetch_count,
			.failure_count = e->failure_count,
		};
		if (e->token && !e->fetching)
			v.refresh_in = (e->refresh_ms > now ? e->refresh_ms - now : 0) / 1000;
		fn(&v, arg);
	}
}

void credential_foreach(void (*fn)(const struct credential *c, void *arg), void *arg)
{
	for (size_t i = 0; i < ncreds; i++)
		fn(&creds[i], arg);
}

/* ---- configuration ---- */

static void credential_clear(struct credential *c)
{
	const struct provider_family *f = provider_family_get(c->family);
	if (f && f->free_state)
		f->free_state(c);
	for (size_t i = 0; i < c->nkv; i++) {
		free(c->kv[i].key);
		secret_free(c->kv[i].value);
	}
	free(c->kv);
	free(c->name);
	free(c->type);
	memset(c, 0, sizeof(*c));
}

static bool credential_build(struct credential *c, const struct credential_cfg *cc, const char *path,
			     char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(cc->name);
	c->type = xstrdup(cc->type);
	c->file = path;
	c->line = cc->line;
	c->nkv = cc->nkv;
	c->kv = xcalloc(cc->nkv ? cc->nkv : 1, sizeof(*c->kv));
	for (size_t i = 0; i < cc->nkv; i++) {
		c->kv[i].key = xstrdup(cc->kv[i].key);
		c->kv[i].value = xstrdup(cc->kv[i].value);
		c->kv[i].line = cc->kv[i].line;
	}
	if (!credential_family_of(c->type, &c->family)) {
		snprintf(err, errlen,
			 "%s:%d: [credential.%s]: unknown type \"%s\" (expected azure-*, aws-*, gcp-*)", path,
			 credential_line(c, "type"), c->name, c->type);
		return false;
	}
	const struct provider_family *f = provider_family_get(c->family);
	if (!f) {
		snprintf(err, errlen, "%s:%d: [credential.%s]: type %s is not supported yet", path,
			 credential_line(c, "type"), c->name, c->type);
		return false;
	}
	return f->validate(c, err, errlen);
}

static bool check_alias(const struct tb_config *cfg, const struct db_alias *db, struct credential *set,
			size_t n, char *err, size_t errlen)
{
	struct credential *c = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(set[i].name, db->credential) == 0)
			c = &set[i];
	const struct upstream_method *m = upstream_method_of(db->auth);
	const char *file = db->file ? db->file : cfg->path;
	if (!c || c->family != m->family) {
		snprintf(err, errlen,
			 "%s:%d: [databases] entry \"%s\": auth=%s needs a credential of type %s, "
			 "but [credential.%s] is of type %s",
			 file, db->line, db->name, upstream_auth_name(db->auth), m->family_types,
			 db->credential, c ? c->type : "?");
		return false;
	}
	char why[200];
	if (m->check && !m->check(db, why, sizeof(why))) {
		snprintf(err, errlen, "%s:%d: [databases] entry \"%s\": %s", file, db->line, db->name, why);
		return false;
	}
	return true;
}

bool token_engine_apply(const struct tb_config *cfg, char *err, size_t errlen)
{
	size_t n = cfg->ncreds;
	struct credential *set = xcalloc(n ? n : 1, sizeof(*set));
	bool ok = true;
	size_t built = 0;
	for (; built < n && ok; built++)
		ok = credential_build(&set[built], &cfg->creds[built],
				      cfg->creds[built].file ? cfg->creds[built].file : cfg->path, err,
				      errlen);
	bool connectors = false;
	for (size_t i = 0; ok && i < cfg->ndbs; i++) {
		if (cfg->dbs[i].auth != UPSTREAM_AUTH_PASSWORD)
			ok = check_alias(cfg, &cfg->dbs[i], set, n, err, errlen);
		connectors = connectors || cfg->dbs[i].instance;
	}
	/* The one RSA key of every ephemeral certificate: made at start-up, before
	 * the loop runs (a reload adding the first connector alias makes it then). */
	if (ok && connectors)
		ok = connector_key_init(err, errlen);
	if (!ok) {
		for (size_t i = 0; i < built; i++)
			credential_clear(&set[i]);
		free(set);
		return false;
	}
	struct credential *old = creds;
	size_t nold = ncreds;
	creds = set;
	ncreds = n;
	tok_cfg = cfg;
	/* Rebind entries; a credential whose section changed starts from scratch. */
	struct list_node *it, *tmp;
	list_for_each_safe(it, tmp, &entries) {
		struct token_entry *e = list_entry(it, struct token_entry, node);
		struct credential *nc = find_credential(e->cred_name);
		struct credential *oc = e->cred;
		bool same = nc && oc && nc->nkv == oc->nkv;
		for (size_t i = 0; same && i < nc->nkv; i++)
			same = strcmp(nc->kv[i].key, oc->kv[i].key) == 0 &&
			       strcmp(nc->kv[i].value, oc->kv[i].value) == 0;
		if (e->fetching && (e->op || e->cop))
			cancel_fetch(e);
		if (!same) {
			/* A fixed credential must not wait out the old one's backoff. */
			wipe_token(e);
			e->retry_ms = 0;
			e->failures = 0;
			e->last_error[0] = '\0';
		}
		e->cred = nc;
		if (!list_empty(&e->waiters))
			start_fetch(e);
	}
	for (size_t i = 0; i < nold; i++)
		credential_clear(&old[i]);
	free(old);
	return true;
}

bool token_engine_init(struct event_base *base, char *err, size_t errlen)
{
	tok_base = base;
	if (!token_clock_init(err, errlen))
		return false;
	if (!http_init(base, err, errlen))
		return false;
	return proc_init(base);
}

void token_engine_shutdown(void)
{
	struct list_node *it;
	while ((it = list_first(&entries))) {
		struct token_entry *e = list_entry(it, struct token_entry, node);
		if (e->fetching)
			cancel_fetch(e);
		notify_waiters(e, "the pooler is shutting down");
		list_del(it);
		wipe_token(e);
		event_free(e->timer);
		free(e->cred_name);
		free(e->audience);
		free(e->user);
		free(e->region);
		free(e->instance);
		free(e->api);
		free(e->alias);
		free(e);
	}
	for (size_t i = 0; i < ncreds; i++)
		credential_clear(&creds[i]);
	free(creds);
	creds = NULL;
	ncreds = 0;
	http_shutdown();
	connector_key_free();
	proc_shutdown();
}

struct event_base *token_engine_base(void)
{
	return tok_base;
}

struct credential *token_engine_credential(const char *name)
{
	return name ? find_credential(name) : NULL;
}

const struct tb_config *token_engine_config(void)
{
	return tok_cfg;
}

long token_fetch_timeout_ms(void)
{
	if (!tok_cfg || tok_cfg->token_fetch_timeout <= 0)
		return 10000;
	return (long)(tok_cfg->token_fetch_timeout / 1000);
}

const char *token_ca_file(void)
{
	return tok_cfg ? tok_cfg->token_ca_file : NULL;
}
