/* AWS SigV4 signing. Everything is built in growable buffers that are wiped
 * when freed, because the canonical request and the presigned query carry the
 * session token. */
#include "token/sigv4.h"
#include "core/dynbuf.h"
#include "core/encode.h"
#include "core/util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SHA256_LEN 32
#define ALGORITHM "AWS4-HMAC-SHA256"
/* Caps that keep arithmetic far from overflow and reject absurd input. */
#define MAX_SCOPE_PART 64
#define MAX_AKID_LEN 256
#define MAX_SECRET_LEN 1024
#define MAX_TOKEN_LEN 65536
#define MAX_HOST_LEN 1024
#define MAX_PARAMS 256
/* The longest string the signer builds (a canonical request, a presigned URL). */
#define MAX_BUILT (16 * 1024 * 1024)
/* 9999-12-31T23:59:59Z: the last second strftime's %Y gives four digits. */
#define MAX_EPOCH INT64_C(253402300799)

/* Every string built here may carry the session token: wiped when freed. */
static void built_init(struct dynbuf *b)
{
	dynbuf_init(b, MAX_BUILT, true);
}

/* ---------- encoding ---------- */

static const char hex_lower[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_lower[in[i] >> 4];
		out[2 * i + 1] = hex_lower[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---------- crypto ---------- */

static bool sha256_hex(const void *data, size_t len, char out[2 * SHA256_LEN + 1])
{
	unsigned char md[SHA256_LEN];
	unsigned int olen = 0;

	if (!EVP_Digest(data, len, md, &olen, EVP_sha256(), NULL) || olen != SHA256_LEN)
		return false;
	hex_encode(md, SHA256_LEN, out);
	return true;
}

static bool hmac(const void *key, size_t keylen, const char *msg, unsigned char out[SHA256_LEN])
{
	unsigned int olen = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &olen) &&
	       olen == SHA256_LEN;
}

/* signature = hex(HMAC(kSigning, string_to_sign)), the key chain of §1.6 step 8. */
static bool sign_string(const char *secret, const char *date, const char *region, const char *service,
			const char *string_to_sign, char out[SIGV4_SIGNATURE_LEN + 1])
{
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
	struct dynbuf seed;
	built_init(&seed);
	bool ok = dynbuf_addf(&seed, "AWS4%s", secret) && hmac(seed.data, seed.len, date, k1) &&
		  hmac(k1, SHA256_LEN, region, k2) && hmac(k2, SHA256_LEN, service, k1) &&
		  hmac(k1, SHA256_LEN, "aws4_request", k2) && hmac(k2, SHA256_LEN, string_to_sign, sig);
	if (ok)
		hex_encode(sig, SHA256_LEN, out);
	dynbuf_free(&seed);
	secret_wipe(k1, sizeof(k1));
	secret_wipe(k2, sizeof(k2));
	secret_wipe(sig, sizeof(sig));
	return ok;
}

/* ---------- validation ---------- */

static bool scope_part_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > MAX_SCOPE_PART)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!url_is_unreserved(c) || c == '~')
			return false;
	}
	return true;
}

static bool has_ctl(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool signer_ok(const struct sigv4_signer *s, char *err, size_t errlen)
{
	if (!s) {
		err_set(err, errlen, "no signer");
		return false;
	}
	if (!s->access_key_id || !*s->access_key_id || strlen(s->access_key_id) > MAX_AKID_LEN) {
		err_set(err, errlen, "the AWS access key id is missing or too long");
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)s->access_key_id; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '/') {
			err_set(err, errlen, "the AWS access key id contains an invalid character");
			return false;
		}
	}
	if (!s->secret_access_key || !*s->secret_access_key || strlen(s->secret_access_key) > MAX_SECRET_LEN) {
		err_set(err, errlen, "the AWS secret access key is missing or too long");
		return false;
	}
	if (s->session_token && (strlen(s->session_token) > MAX_TOKEN_LEN || has_ctl(s->session_token))) {
		err_set(err, errlen, "the AWS session token is too long or contains control characters");
		return false;
	}
	if (!scope_part_ok(s->region)) {
		err_set(err, errlen, "invalid AWS region \"%s\"", s->region ? s->region : "");
		return false;
	}
	if (!scope_part_ok(s->service)) {
		err_set(err, errlen, "invalid AWS service name \"%s\"", s->service ? s->service : "");
		return false;
	}
	if (s->now < 0 || s->now > MAX_EPOCH) {
		err_set(err, errlen, "signing time out of range");
		return false;
	}
	return true;
}

static bool host_ok(const char *host)
{
	size_t n = host ? strlen(host) : 0;

	if (n == 0 || n > MAX_HOST_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c <= 0x20 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\')
			return false;
	}
	return true;
}

static bool path_ok(const char *path)
{
	return path[0] == '/' && !has_ctl(path);
}

static const char *const reserved_query[] = {
	"X-Amz-Algorithm",     "X-Amz-Credential",     "X-Amz-Date",      "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
};

static bool params_ok(const struct sigv4_param *params, size_t n, bool presign, char *err, size_t errlen)
{
	if (n > MAX_PARAMS || (n && !params)) {
		err_set(err, errlen, "too many query parameters");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!params[i].key || !*params[i].key) {
			err_set(err, errlen, "empty query parameter name");
			return false;
		}
		if (!presign)
			continue;
		for (size_t j = 0; j < sizeof(reserved_query) / sizeof(reserved_query[0]); j++) {
			if (strcasecmp(params[i].key, reserved_query[j]) == 0) {
				err_set(err, errlen, "query parameter %s is set by the signer",
					reserved_query[j]);
				return false;
			}
		}
	}
	return true;
}

/* "20150830T123600Z" */
static bool format_amz_date(int64_t now, char out[SIGV4_AMZ_DATE_LEN + 1])
{
	time_t t = (time_t)now;
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return false;
	return strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == SIGV4_AMZ_DATE_LEN;
}

/* ---------- canonical query ---------- */

struct enc_pair {
	char *key, *value;
};

static int enc_pair_cmp(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

static void enc_pair_set(struct enc_pair *p, const char *key, const char *value)
{
	p->key = url_encode(key, false);
	p->value = url_encode(value, false);
}

static void enc_pairs_free(struct enc_pair *pairs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		secret_free(pairs[i].key);
		secret_free(pairs[i].value);
	}
	free(pairs);
}

/* Appends "k=v&k=v" in the given order; sorts a copy first when asked. */
static bool join_pairs(struct dynbuf *b, const struct enc_pair *pairs, size_t n, bool sorted)
{
	struct enc_pair *order = xcalloc(n ? n : 1, sizeof(*order));
	bool ok = true;

	memcpy(order, pairs, n * sizeof(*order));
	if (sorted)
		qsort(order, n, sizeof(*order), enc_pair_cmp);
	for (size_t i = 0; i < n && ok; i++)
		ok = dynbuf_addf(b, "%s%s=%s", i ? "&" : "", order[i].key, order[i].value);
	/* order only holds pointers; nothing secret of its own. */
	free(order);
	return ok;
}

static bool lower_into(struct dynbuf *b, const char *s)
{
	bool ok = true;
	for (; *s && ok; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		ok = dynbuf_addc(b, c);
	}
	return ok;
}

/* string to sign from a finished canonical request; fills the trace. */
static bool finish_signature(const struct sigv4_signer *s, const char *amz_date, const char *scope,
			     const struct dynbuf *creq, char sig[SIGV4_SIGNATURE_LEN + 1],
			     struct sigv4_trace *trace)
{
	char date[9], creq_hash[2 * SHA256_LEN + 1];
	struct dynbuf sts;

	memcpy(date, amz_date, 8);
	date[8] = '\0';
	if (!sha256_hex(dynbuf_str(creq), creq->len, creq_hash))
		return false;
	built_init(&sts);
	bool ok = dynbuf_addf(&sts, ALGORITHM "\n%s\n%s\n%s", amz_date, scope, creq_hash) &&
		  sign_string(s->secret_access_key, date, s->region, s->service, dynbuf_str(&sts), sig);
	if (ok && trace) {
		trace->canonical_request = xstrndup(dynbuf_str(creq), creq->len);
		trace->string_to_sign = xstrdup(dynbuf_str(&sts));
		memcpy(trace->signature, sig, SIGV4_SIGNATURE_LEN + 1);
	}
	dynbuf_free(&sts);
	return ok;
}

/* "20150830/us-east-1/rds-db/aws4_request" */
static bool scope_into(struct dynbuf *b, const struct sigv4_signer *s, const char *amz_date)
{
	return dynbuf_addf(b, "%.8s/%s/%s/aws4_request", amz_date, s->region, s->service);
}

static bool has_token(const struct sigv4_signer *s)
{
	return s->session_token && *s->session_token;
}

void sigv4_trace_clear(struct sigv4_trace *t)
{
	if (!t)
		return;
	secret_free(t->canonical_request);
	secret_free(t->string_to_sign);
	secret_wipe(t, sizeof(*t));
	t->canonical_request = t->string_to_sign = NULL;
}

void sigv4_auth_clear(struct sigv4_auth *a)
{
	if (!a)
		return;
	secret_free(a->authorization);
	secret_wipe(a, sizeof(*a));
	a->authorization = NULL;
}

/* ---------- presign ---------- */

char *sigv4_presign(const struct sigv4_signer *s, const char *host, const char *path,
		    const struct sigv4_param *params, size_t nparams, int64_t expires,
		    struct sigv4_trace *trace, char *err, size_t errlen)
{
	char amz_date[SIGV4_AMZ_DATE_LEN + 1], expires_text[24], sig[SIGV4_SIGNATURE_LEN + 1];
	struct dynbuf scope, cred, creq, out;
	struct enc_pair *pairs = NULL;
	size_t n = 0;
	char *result = NULL;

	if (trace)
		memset(trace, 0, sizeof(*trace));
	if (!path)
		path = "/";
	if (!signer_ok(s, err, errlen) || !params_ok(params, nparams, true, err, errlen))
		return NULL;
	if (!host_ok(host)) {
		err_set(err, errlen, "invalid host \"%s\"", host ? host : "");
		return NULL;
	}
	if (!path_ok(path)) {
		err_set(err, errlen, "the request path must start with \"/\"");
		return NULL;
	}
	if (expires < 1 || expires > SIGV4_MAX_EXPIRES) {
		err_set(err, errlen, "presign lifetime %lld s is outside 1..%d s", (long long)expires,
			SIGV4_MAX_EXPIRES);
		return NULL;
	}
	if (!format_amz_date(s->now, amz_date)) {
		err_set(err, errlen, "cannot format the signing time");
		return NULL;
	}
	snprintf(expires_text, sizeof(expires_text), "%lld", (long long)expires);

	built_init(&scope);
	built_init(&cred);
	built_init(&creq);
	built_init(&out);
	if (!scope_into(&scope, s, amz_date) ||
	    !dynbuf_addf(&cred, "%s/%s", s->access_key_id, dynbuf_str(&scope)))
		goto too_long;

	/* Operation parameters first, then the auth parameters in botocore's order. */
	pairs = xcalloc(nparams + 6, sizeof(*pairs));
	for (size_t i = 0; i < nparams; i++)
		enc_pair_set(&pairs[n++], params[i].key, params[i].value);
	enc_pair_set(&pairs[n++], "X-Amz-Algorithm", ALGORITHM);
	enc_pair_set(&pairs[n++], "X-Amz-Credential", dynbuf_str(&cred));
	enc_pair_set(&pairs[n++], "X-Amz-Date", amz_date);
	enc_pair_set(&pairs[n++], "X-Amz-Expires", expires_text);
	enc_pair_set(&pairs[n++], "X-Amz-SignedHeaders", "host");
	if (has_token(s))
		enc_pair_set(&pairs[n++], "X-Amz-Security-Token", s->session_token);

	/* The hash is of the empty payload (both SDKs hash it; not UNSIGNED-PAYLOAD). */
	if (!dynbuf_addstr(&creq, "GET\n") || !url_encode_into(&creq, path, true) ||
	    !dynbuf_addc(&creq, '\n') || !join_pairs(&creq, pairs, n, true) ||
	    !dynbuf_addstr(&creq, "\nhost:") || !lower_into(&creq, host) ||
	    !dynbuf_addstr(&creq, "\n\nhost\n"
				  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
		goto too_long;
	if (!finish_signature(s, amz_date, dynbuf_str(&scope), &creq, sig, trace)) {
		err_set(err, errlen, "SigV4 signing failed (OpenSSL error)");
		goto out;
	}
	if (!dynbuf_addstr(&out, host) || !url_encode_into(&out, path, true) || !dynbuf_addc(&out, '?') ||
	    !join_pairs(&out, pairs, n, false) || !dynbuf_addf(&out, "&X-Amz-Signature=%s", sig))
		goto too_long;
	result = dynbuf_take(&out, NULL);
	goto out;
too_long:
	err_set(err, errlen, "the request is too long to sign (limit %d bytes)", MAX_BUILT);
out:
	enc_pairs_free(pairs, n);
	dynbuf_free(&scope);
	dynbuf_free(&cred);
	dynbuf_free(&creq);
	dynbuf_free(&out);
	secret_wipe(sig, sizeof(sig));
	return result;
}

/* ---------- header signing ---------- */

struct canon_header {
	char *name;   /* lower case */
	char *value;  /* trimmed, blanks folded */
	size_t index; /* input order, for a stable sort */
};

static int canon_header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

static bool header_name_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
			return false;
	}
	return true;
}

/* Trimmed, inner runs of blanks folded to one space: never longer than v. */
static char *canon_value(const char *v)
{
	char *out = xmalloc(strlen(v) + 1), *o = out;
	bool blank = false;

	for (; *v == ' ' || *v == '\t'; v++)
		;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if (blank)
			*o++ = ' ';
		blank = false;
		*o++ = *v;
	}
	*o = '\0';
	return out;
}

static void canon_set(struct canon_header *h, const char *name, const char *value, size_t index)
{
	h->name = xstrdup(name);
	for (char *p = h->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	h->value = canon_value(value ? value : "");
	h->index = index;
}

/* The canonical headers and the signed-header list, from the sorted headers;
 * a name that repeats joins its values with a comma. */
static bool headers_into(struct dynbuf *creq, struct dynbuf *names, const struct canon_header *hs, size_t nh)
{
	bool ok = true;
	for (size_t i = 0; i < nh && ok; i++) {
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0) {
			dynbuf_truncate(creq, creq->len - 1); /* the previous value's newline */
			ok = dynbuf_addf(creq, ",%s\n", hs[i].value);
			continue;
		}
		ok = dynbuf_addf(creq, "%s:%s\n", hs[i].name, hs[i].value) &&
		     dynbuf_addf(names, "%s%s", names->len ? ";" : "", hs[i].name);
	}
	return ok;
}

bool sigv4_sign_headers(const struct sigv4_signer *s, const char *method, const char *path,
			const struct sigv4_param *query, size_t nquery, const struct sigv4_param *headers,
			size_t nheaders, const void *body, size_t body_len, struct sigv4_auth *out,
			struct sigv4_trace *trace, char *err, size_t errlen)
{
	char amz_date[SIGV4_AMZ_DATE_LEN + 1], body_hash[2 * SHA256_LEN + 1];
	char sig[SIGV4_SIGNATURE_LEN + 1];
	struct dynbuf scope, creq, signed_names, auth;
	struct enc_pair *pairs = NULL;
	struct canon_header *hs = NULL;
	size_t nh = 0, nq = 0;
	bool have_host = false, ok = false;

	if (trace)
		memset(trace, 0, sizeof(*trace));
	if (out)
		memset(out, 0, sizeof(*out));
	if (!out) {
		err_set(err, errlen, "no output");
		return false;
	}
	if (!path)
		path = "/";
	if (!signer_ok(s, err, errlen) || !params_ok(query, nquery, false, err, errlen))
		return false;
	if (!method || !*method || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method)) {
		err_set(err, errlen, "invalid HTTP method");
		return false;
	}
	if (!path_ok(path)) {
		err_set(err, errlen, "the request path must start with \"/\"");
		return false;
	}
	if (nheaders > MAX_PARAMS || (nheaders && !headers)) {
		err_set(err, errlen, "too many headers");
		return false;
	}
	for (size_t i = 0; i < nheaders; i++) {
		const char *name = headers[i].key;
		if (!header_name_ok(name)) {
			err_set(err, errlen, "invalid header name");
			return false;
		}
		if (headers[i].value && strpbrk(headers[i].value, "\r\n")) {
			err_set(err, errlen, "header %s has a line break in its value", name);
			return false;
		}
		if (strcasecmp(name, "x-amz-date") == 0 || strcasecmp(name, "x-amz-security-token") == 0 ||
		    strcasecmp(name, "authorization") == 0) {
			err_set(err, errlen, "header %s is set by the signer", name);
			return false;
		}
		if (strcasecmp(name, "host") == 0)
			have_host = true;
	}
	if (!have_host) {
		err_set(err, errlen, "the Host header must be signed");
		return false;
	}
	if (!format_amz_date(s->now, amz_date)) {
		err_set(err, errlen, "cannot format the signing time");
		return false;
	}
	if (!sha256_hex(body ? body : "", body ? body_len : 0, body_hash)) {
		err_set(err, errlen, "SHA-256 failed (OpenSSL error)");
		return false;
	}

	hs = xcalloc(nheaders + 2, sizeof(*hs));
	for (size_t i = 0; i < nheaders; i++)
		canon_set(&hs[nh++], headers[i].key, headers[i].value, i);
	canon_set(&hs[nh++], "x-amz-date", amz_date, nheaders);
	if (has_token(s))
		canon_set(&hs[nh++], "x-amz-security-token", s->session_token, nheaders + 1);
	qsort(hs, nh, sizeof(*hs), canon_header_cmp);

	pairs = xcalloc(nquery ? nquery : 1, sizeof(*pairs));
	for (size_t i = 0; i < nquery; i++)
		enc_pair_set(&pairs[nq++], query[i].key, query[i].value);

	built_init(&scope);
	built_init(&creq);
	built_init(&signed_names);
	built_init(&auth);
	if (!scope_into(&scope, s, amz_date) || !dynbuf_addf(&creq, "%s\n", method) ||
	    !url_encode_into(&creq, path, true) || !dynbuf_addc(&creq, '\n') ||
	    !join_pairs(&creq, pairs, nq, true) || !dynbuf_addc(&creq, '\n') ||
	    !headers_into(&creq, &signed_names, hs, nh) ||
	    !dynbuf_addf(&creq, "\n%s\n%s", dynbuf_str(&signed_names), body_hash)) {
		err_set(err, errlen, "the request is too long to sign (limit %d bytes)", MAX_BUILT);
		goto out;
	}
	if (!finish_signature(s, amz_date, dynbuf_str(&scope), &creq, sig, trace)) {
		err_set(err, errlen, "SigV4 signing failed (OpenSSL error)");
		goto out;
	}
	if (!dynbuf_addf(&auth, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			 s->access_key_id, dynbuf_str(&scope), dynbuf_str(&signed_names), sig)) {
		err_set(err, errlen, "the request is too long to sign (limit %d bytes)", MAX_BUILT);
		goto out;
	}
	memcpy(out->amz_date, amz_date, sizeof(amz_date));
	memcpy(out->signature, sig, sizeof(sig));
	out->authorization = dynbuf_take(&auth, NULL);
	ok = true;
out:
	for (size_t i = 0; i < nh; i++) {
		secret_free(hs[i].name);
		secret_free(hs[i].value);
	}
	free(hs);
	enc_pairs_free(pairs, nq);
	dynbuf_free(&scope);
	dynbuf_free(&creq);
	dynbuf_free(&signed_names);
	dynbuf_free(&auth);
	secret_wipe(sig, sizeof(sig));
	return ok;
}
