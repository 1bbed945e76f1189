/* Google Cloud credential files, request bodies and token answers without
 * I/O (see token/gcp_parse.h). Parsed documents are wiped before they are
 * freed; private keys stay inside OpenSSL objects. */
#include "token/gcp_parse.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "token/aws_parse.h"
#include "token/http.h"
#include "token/jwt.h"

#define IMPERSONATE_SUFFIX ":generateAccessToken"
#define SA_SUFFIX ".gserviceaccount.com"
#define MAX_EXPIRES_IN (366LL * 86400)

static const char *str_field(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static char *dup_field(const json_t *obj, const char *key)
{
	const char *v = str_field(obj, key);
	return v ? xstrdup(v) : NULL;
}

static EVP_PKEY *load_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	if (k && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

static bool parse_service_account(const json_t *o, struct gcp_file *f, char *err, size_t errlen)
{
	f->type = GCP_FILE_SERVICE_ACCOUNT;
	f->client_email = dup_field(o, "client_email");
	f->private_key_id = dup_field(o, "private_key_id");
	f->token_uri = dup_field(o, "token_uri");
	f->quota_project = dup_field(o, "quota_project_id");
	const char *pem = str_field(o, "private_key");
	if (!f->client_email || !pem) {
		err_set(err, errlen, "a service_account file needs client_email and private_key");
		return false;
	}
	f->key = load_key(pem);
	if (!f->key) {
		err_set(err, errlen, "private_key is not a PEM RSA private key");
		return false;
	}
	return true;
}

static bool parse_authorized_user(const json_t *o, struct gcp_file *f, char *err, size_t errlen)
{
	f->type = GCP_FILE_AUTHORIZED_USER;
	f->client_id = dup_field(o, "client_id");
	f->client_secret = dup_field(o, "client_secret");
	f->refresh_token = dup_field(o, "refresh_token");
	f->quota_project = dup_field(o, "quota_project_id");
	f->client_email = dup_field(o, "account");
	/* google-auth ignores the file's token_uri for this type (§3.3.2). */
	if (!f->client_id || !f->client_secret || !f->refresh_token) {
		err_set(err, errlen,
			"an authorized_user file needs client_id, client_secret and refresh_token");
		return false;
	}
	return true;
}

/* ".../v1/projects/-/serviceAccounts/<email>:generateAccessToken": the
 * target and the scheme://host base. */
static bool impersonation_url(const char *url, struct gcp_file *f)
{
	size_t n = strlen(url), sl = strlen(IMPERSONATE_SUFFIX);
	const char *scheme = strstr(url, "://");
	if (n <= sl || strcmp(url + n - sl, IMPERSONATE_SUFFIX) != 0 || !scheme)
		return false;
	const char *slash = url + n - sl;
	while (slash > url && slash[-1] != '/')
		slash--;
	const char *path = strchr(scheme + 3, '/');
	if (slash == url || !path || (size_t)(url + n - sl - slash) == 0)
		return false;
	f->target = xstrndup(slash, (size_t)(url + n - sl - slash));
	f->iam_base = xstrndup(url, (size_t)(path - url));
	return true;
}

static bool parse_file_object(const json_t *o, struct gcp_file *f, bool nested, char *err, size_t errlen);

static bool parse_impersonated(const json_t *o, struct gcp_file *f, char *err, size_t errlen)
{
	f->type = GCP_FILE_IMPERSONATED;
	f->quota_project = dup_field(o, "quota_project_id");
	const char *url = str_field(o, "service_account_impersonation_url");
	const json_t *src = json_object_get(o, "source_credentials");
	if (!url || !impersonation_url(url, f)) {
		err_set(err, errlen,
			"an impersonated_service_account file needs service_account_impersonation_url "
			"ending in /serviceAccounts/EMAIL:generateAccessToken");
		return false;
	}
	const json_t *d = json_object_get(o, "delegates");
	size_t i;
	const json_t *item;
	json_array_foreach(d, i, item) {
		if (f->ndelegates < GCP_MAX_DELEGATES && json_is_string(item))
			f->delegates[f->ndelegates++] = xstrdup(json_string_value(item));
	}
	if (!json_is_object(src)) {
		err_set(err, errlen, "an impersonated_service_account file needs source_credentials");
		return false;
	}
	f->source = xcalloc(1, sizeof(*f->source));
	char why[300];
	if (!parse_file_object(src, f->source, true, why, sizeof(why))) {
		err_set(err, errlen, "source_credentials: %s", why);
		return false;
	}
	return true;
}

static bool parse_file_object(const json_t *o, struct gcp_file *f, bool nested, char *err, size_t errlen)
{
	const char *type = str_field(o, "type");
	if (!type) {
		err_set(err, errlen, "no \"type\" field");
		return false;
	}
	if (strcmp(type, "service_account") == 0)
		return parse_service_account(o, f, err, errlen);
	if (strcmp(type, "authorized_user") == 0)
		return parse_authorized_user(o, f, err, errlen);
	if (strcmp(type, "impersonated_service_account") == 0 && !nested)
		return parse_impersonated(o, f, err, errlen);
	if (strcmp(type, "external_account") == 0 || strcmp(type, "external_account_authorized_user") == 0)
		err_set(err, errlen,
			"type %s (workload identity federation) is not supported; use a "
			"service account key, gcloud user credentials, impersonation or the metadata server",
			type);
	else
		err_set(err, errlen, "unsupported credential file type \"%.40s\"", type);
	return false;
}

bool gcp_file_parse(const char *json, size_t len, struct gcp_file *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(json, len, 0, NULL);
	bool ok = json_is_object(root);
	if (!ok)
		err_set(err, errlen, "not a JSON object");
	else
		ok = parse_file_object(root, out, false, err, errlen);
	json_secret_free(root);
	if (!ok)
		gcp_file_clear(out);
	return ok;
}

void gcp_file_clear(struct gcp_file *f)
{
	if (!f)
		return;
	free(f->client_email);
	free(f->private_key_id);
	free(f->token_uri);
	EVP_PKEY_free(f->key);
	free(f->client_id);
	secret_free(f->client_secret);
	secret_free(f->refresh_token);
	free(f->quota_project);
	free(f->target);
	free(f->iam_base);
	for (size_t i = 0; i < f->ndelegates; i++)
		free(f->delegates[i]);
	if (f->source) {
		gcp_file_clear(f->source);
		free(f->source);
	}
	memset(f, 0, sizeof(*f));
}

/* ---- requests ---- */

char *gcp_jwt_assertion(EVP_PKEY *key, const char *kid, const char *email, const char *scope, int64_t now)
{
	json_t *h = json_object();
	json_object_set_new(h, "typ", json_string("JWT"));
	json_object_set_new(h, "alg", json_string("RS256"));
	if (kid && *kid)
		json_object_set_new(h, "kid", json_string(kid));
	json_t *p = json_object();
	json_object_set_new(p, "iat", json_integer((json_int_t)now));
	json_object_set_new(p, "exp", json_integer((json_int_t)(now + GCP_ASSERTION_LIFETIME)));
	json_object_set_new(p, "iss", json_string(email));
	json_object_set_new(p, "aud", json_string(GCP_JWT_AUDIENCE));
	json_object_set_new(p, "scope", json_string(scope));
	return jwt_sign(key, JWT_RS256, h, p);
}

char *gcp_jwt_grant_body(const char *assertion, size_t *len)
{
	char *gt = http_urlencode(GCP_JWT_BEARER);
	char *body = xasprintf("assertion=%s&grant_type=%s", assertion, gt);
	free(gt);
	*len = strlen(body);
	return body;
}

char *gcp_refresh_body(const char *client_id, const char *secret, const char *refresh_token,
		       const char *scope, size_t *len)
{
	char *id = http_urlencode(client_id), *sec = http_urlencode(secret);
	char *rt = http_urlencode(refresh_token), *sc = scope ? http_urlencode(scope) : NULL;
	char *body = xasprintf("grant_type=refresh_token&client_id=%s&client_secret=%s&refresh_token=%s%s%s",
			       id, sec, rt, sc ? "&scope=" : "", sc ? sc : "");
	free(id);
	secret_free(sec);
	secret_free(rt);
	free(sc);
	*len = strlen(body);
	return body;
}

char *gcp_impersonate_url(const char *base, const char *target)
{
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	return xasprintf("%.*s/v1/projects/-/serviceAccounts/%s" IMPERSONATE_SUFFIX, (int)n, base, target);
}

/* Space-separated scopes as a JSON array. */
static json_t *scope_array(const char *scope)
{
	json_t *arr = json_array();
	const char *p = scope;
	while (p && *p) {
		size_t n = strcspn(p, " ");
		if (n)
			json_array_append_new(arr, json_stringn(p, n));
		p += n + strspn(p + n, " ");
	}
	return arr;
}

char *gcp_impersonate_body(char *const *delegates, size_t n, const char *scope, int64_t lifetime, size_t *len)
{
	json_t *o = json_object();
	json_t *d = json_array();
	for (size_t i = 0; i < n; i++) {
		char *full = strchr(delegates[i], '/')
				     ? xstrdup(delegates[i])
				     : xasprintf("projects/-/serviceAccounts/%s", delegates[i]);
		json_array_append_new(d, json_string(full));
		free(full);
	}
	json_object_set_new(o, "delegates", d);
	json_object_set_new(o, "scope", scope_array(scope));
	char life[32];
	snprintf(life, sizeof(life), "%llds", (long long)lifetime);
	json_object_set_new(o, "lifetime", json_string(life));
	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	*len = strlen(body);
	return body;
}

char *gcp_metadata_token_url(const char *host, const char *scope)
{
	char *commas = xstrdup(scope ? scope : "");
	for (char *c = commas; *c; c++)
		if (*c == ' ')
			*c = ',';
	char *enc = http_urlencode(commas);
	char *url = xasprintf("http://%s/computeMetadata/v1/instance/service-accounts/default/token%s%s",
			      host, *enc ? "?scopes=" : "", enc);
	free(commas);
	free(enc);
	return url;
}

/* ---- answers ---- */

void gcp_token_clear(struct gcp_token *t)
{
	secret_free(t->access_token);
	secret_free(t->refresh_token);
	memset(t, 0, sizeof(*t));
}

static bool json_count(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (!json_is_string(v))
		return false;
	char *end;
	long long x = strtoll(json_string_value(v), &end, 10);
	if (end == json_string_value(v) || *end)
		return false;
	*out = x;
	return true;
}

static bool take_token(const json_t *root, const char *key, struct gcp_token *out, char *err, size_t errlen)
{
	const char *tok = str_field(root, key);
	if (!tok) {
		err_set(err, errlen, "the answer has no %s", key);
		return false;
	}
	if (strlen(tok) > GCP_MAX_RESPONSE / 2) {
		err_set(err, errlen, "the %s is implausibly long", key);
		return false;
	}
	out->access_token = xstrdup(tok);
	return true;
}

bool gcp_parse_oauth(const char *body, size_t len, int64_t now, struct gcp_token *out, char *err,
		     size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, 0, NULL);
	int64_t in = 0;
	bool ok = json_is_object(root);
	if (!ok)
		err_set(err, errlen, "the answer is not a JSON object");
	ok = ok && take_token(root, "access_token", out, err, errlen);
	if (ok && (!json_count(json_object_get(root, "expires_in"), &in) || in <= 0 || in > MAX_EXPIRES_IN)) {
		err_set(err, errlen, "the answer has no valid expires_in");
		ok = false;
	}
	if (ok) {
		out->expires_at = now + in;
		out->refresh_token = dup_field(root, "refresh_token");
	}
	json_secret_free(root);
	if (!ok)
		gcp_token_clear(out);
	return ok;
}

bool gcp_parse_iam(const char *body, size_t len, struct gcp_token *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, 0, NULL);
	bool ok = json_is_object(root);
	if (!ok)
		err_set(err, errlen, "the answer is not a JSON object");
	ok = ok && take_token(root, "accessToken", out, err, errlen);
	const char *when = ok ? str_field(root, "expireTime") : NULL;
	if (ok && (!when || !aws_parse_iso8601(when, &out->expires_at))) {
		err_set(err, errlen, "the answer has no valid expireTime");
		ok = false;
	}
	json_secret_free(root);
	if (!ok)
		gcp_token_clear(out);
	return ok;
}

/* ---- retries (§3.4, §3.5) ---- */

static bool retryable_status(long status)
{
	return status == 500 || status == 503 || status == 504 || status == 408 || status == 429;
}

static bool retryable_error(const char *body, size_t len)
{
	static const char *const codes[] = { "internal_failure", "server_error", "temporarily_unavailable" };
	json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *e = str_field(root, "error"), *d = str_field(root, "error_description");
	bool yes = false;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		yes = yes || (e && strcmp(e, codes[i]) == 0) || (d && strcmp(d, codes[i]) == 0);
	json_decref(root);
	return yes;
}

int64_t gcp_retry_delay_ms(enum gcp_retry policy, int attempt, long status, const char *body, size_t len,
			   double jitter01)
{
	int max = policy == GCP_RETRY_TOKEN ? 3 : policy == GCP_RETRY_METADATA ? 5 : 1;
	if (attempt >= max || (status >= 200 && status < 300))
		return -1;
	bool again = retryable_status(status) || (status == 0 && policy == GCP_RETRY_METADATA) ||
		     (policy == GCP_RETRY_TOKEN && status >= 400 && retryable_error(body, len));
	if (!again)
		return -1;
	/* 1 s, 2 s, 4 s, 8 s, each within +-10 %. */
	double base = 1000.0 * (double)(1 << (attempt - 1));
	return (int64_t)(base * (0.9 + 0.2 * jitter01));
}

char *gcp_db_user(const char *email)
{
	if (!email)
		return NULL;
	size_t n = strlen(email), s = strlen(SA_SUFFIX);
	if (n > s && strcmp(email + n - s, SA_SUFFIX) == 0)
		return xstrndup(email, n - s);
	return xstrdup(email);
}
