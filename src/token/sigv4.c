/* AWS SigV4 signing. Everything is built in growable buffers that are wiped
 * when freed, because the canonical request and the presigned query carry the
 * session token. */
#include "token/sigv4.h"
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
/* 9999-12-31T23:59:59Z: the last second strftime's %Y gives four digits. */
#define MAX_EPOCH INT64_C(253402300799)

/* ---------- growable string that never leaves copies behind ---------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sbuf_reserve(struct sbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	/* Not realloc: the old block would be freed unwiped. */
	char *p = xmalloc(cap);
	if (b->p) {
		memcpy(p, b->p, b->len);
		secret_wipe(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
	b->p[b->len] = '\0';
}

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	sbuf_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

static void sbuf_addc(struct sbuf *b, char c)
{
	sbuf_add(b, &c, 1);
}

static void sbuf_wipe(struct sbuf *b)
{
	if (b->p) {
		secret_wipe(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Hands the string over; the caller owns it (and wipes it if secret). */
static char *sbuf_take(struct sbuf *b)
{
	if (!b->p)
		sbuf_reserve(b, 0);
	char *p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* ---------- encoding ---------- */

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void encode_into(struct sbuf *b, const char *s, bool keep_slash)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (is_unreserved(*p) || (keep_slash && *p == '/')) {
			sbuf_addc(b, (char)*p);
		} else {
			char e[3] = { '%', hex_upper[*p >> 4], hex_upper[*p & 15] };
			sbuf_add(b, e, 3);
		}
	}
}

char *sigv4_uri_encode(const char *s, bool keep_slash)
{
	struct sbuf b = { 0 };

	encode_into(&b, s ? s : "", keep_slash);
	return sbuf_take(&b);
}

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

	return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
		    &olen) && olen == SHA256_LEN;
}

/* signature = hex(HMAC(kSigning, string_to_sign)), the key chain of §1.6 step 8. */
static bool sign_string(const char *secret, const char *date, const char *region,
			const char *service, const char *string_to_sign,
			char out[SIGV4_SIGNATURE_LEN + 1])
{
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
	struct sbuf seed = { 0 };
	bool ok;

	sbuf_adds(&seed, "AWS4");
	sbuf_adds(&seed, secret);
	ok = hmac(seed.p, seed.len, date, k1) &&
	     hmac(k1, SHA256_LEN, region, k2) &&
	     hmac(k2, SHA256_LEN, service, k1) &&
	     hmac(k1, SHA256_LEN, "aws4_request", k2) &&
	     hmac(k2, SHA256_LEN, string_to_sign, sig);
	if (ok)
		hex_encode(sig, SHA256_LEN, out);
	sbuf_wipe(&seed);
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
		if (!is_unreserved(c) || c == '~')
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
	if (!s->secret_access_key || !*s->secret_access_key ||
	    strlen(s->secret_access_key) > MAX_SECRET_LEN) {
		err_set(err, errlen, "the AWS secret access key is missing or too long");
		return false;
	}
	if (s->session_token && (strlen(s->session_token) > MAX_TOKEN_LEN ||
				 has_ctl(s->session_token))) {
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
		if (c <= 0x20 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '@' ||
		    c == '\\')
			return false;
	}
	return true;
}

static bool path_ok(const char *path)
{
	return path[0] == '/' && !has_ctl(path);
}

static const char *const reserved_query[] = {
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
};

static bool params_ok(const struct sigv4_param *params, size_t n, bool presign, char *err,
		      size_t errlen)
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
	p->key = sigv4_uri_encode(key, false);
	p->value = sigv4_uri_encode(value ? value : "", false);
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
static void join_pairs(struct sbuf *b, const struct enc_pair *pairs, size_t n, bool sorted)
{
	struct enc_pair *order = xcalloc(n ? n : 1, sizeof(*order));

	memcpy(order, pairs, n * sizeof(*order));
	if (sorted)
		qsort(order, n, sizeof(*order), enc_pair_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sbuf_addc(b, '&');
		sbuf_adds(b, order[i].key);
		sbuf_addc(b, '=');
		sbuf_adds(b, order[i].value);
	}
	/* order only holds pointers; nothing secret of its own. */
	free(order);
}

static void lower_into(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		sbuf_addc(b, c);
	}
}

/* string to sign from a finished canonical request; fills the trace. */
static bool finish_signature(const struct sigv4_signer *s, const char *amz_date,
			     const char *scope, const struct sbuf *creq,
			     char sig[SIGV4_SIGNATURE_LEN + 1], struct sigv4_trace *trace)
{
	char date[9], creq_hash[2 * SHA256_LEN + 1];
	struct sbuf sts = { 0 };
	bool ok;

	memcpy(date, amz_date, 8);
	date[8] = '\0';
	if (!sha256_hex(creq->p, creq->len, creq_hash))
		return false;
	sbuf_adds(&sts, ALGORITHM "\n");
	sbuf_adds(&sts, amz_date);
	sbuf_addc(&sts, '\n');
	sbuf_adds(&sts, scope);
	sbuf_addc(&sts, '\n');
	sbuf_adds(&sts, creq_hash);
	ok = sign_string(s->secret_access_key, date, s->region, s->service, sts.p, sig);
	if (ok && trace) {
		trace->canonical_request = xstrndup(creq->p, creq->len);
		trace->string_to_sign = xstrdup(sts.p);
		memcpy(trace->signature, sig, SIGV4_SIGNATURE_LEN + 1);
	}
	sbuf_wipe(&sts);
	return ok;
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
	struct sbuf scope = { 0 }, cred = { 0 }, creq = { 0 }, out = { 0 };
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
		err_set(err, errlen, "presign lifetime %lld s is outside 1..%d s",
			(long long)expires, SIGV4_MAX_EXPIRES);
		return NULL;
	}
	if (!format_amz_date(s->now, amz_date)) {
		err_set(err, errlen, "cannot format the signing time");
		return NULL;
	}
	snprintf(expires_text, sizeof(expires_text), "%lld", (long long)expires);

	sbuf_add(&scope, amz_date, 8);
	sbuf_addc(&scope, '/');
	sbuf_adds(&scope, s->region);
	sbuf_addc(&scope, '/');
	sbuf_adds(&scope, s->service);
	sbuf_adds(&scope, "/aws4_request");
	sbuf_adds(&cred, s->access_key_id);
	sbuf_addc(&cred, '/');
	sbuf_adds(&cred, scope.p);

	/* Operation parameters first, then the auth parameters in botocore's order. */
	pairs = xcalloc(nparams + 6, sizeof(*pairs));
	for (size_t i = 0; i < nparams; i++)
		enc_pair_set(&pairs[n++], params[i].key, params[i].value);
	enc_pair_set(&pairs[n++], "X-Amz-Algorithm", ALGORITHM);
	enc_pair_set(&pairs[n++], "X-Amz-Credential", cred.p);
	enc_pair_set(&pairs[n++], "X-Amz-Date", amz_date);
	enc_pair_set(&pairs[n++], "X-Amz-Expires", expires_text);
	enc_pair_set(&pairs[n++], "X-Amz-SignedHeaders", "host");
	if (has_token(s))
		enc_pair_set(&pairs[n++], "X-Amz-Security-Token", s->session_token);

	sbuf_adds(&creq, "GET\n");
	encode_into(&creq, path, true);
	sbuf_addc(&creq, '\n');
	join_pairs(&creq, pairs, n, true);
	sbuf_adds(&creq, "\nhost:");
	lower_into(&creq, host);
	sbuf_adds(&creq, "\n\nhost\n");
	/* Hash of the empty payload (both SDKs hash it; not UNSIGNED-PAYLOAD). */
	sbuf_adds(&creq, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	if (!finish_signature(s, amz_date, scope.p, &creq, sig, trace)) {
		err_set(err, errlen, "SigV4 signing failed (OpenSSL error)");
		goto out;
	}
	sbuf_adds(&out, host);
	encode_into(&out, path, true);
	sbuf_addc(&out, '?');
	join_pairs(&out, pairs, n, false);
	sbuf_adds(&out, "&X-Amz-Signature=");
	sbuf_adds(&out, sig);
	result = sbuf_take(&out);
out:
	enc_pairs_free(pairs, n);
	sbuf_wipe(&scope);
	sbuf_wipe(&cred);
	sbuf_wipe(&creq);
	sbuf_wipe(&out);
	secret_wipe(sig, sizeof(sig));
	return result;
}

/* ---------- header signing ---------- */

struct canon_header {
	char *name;	/* lower case */
	char *value;	/* trimmed, blanks folded */
	size_t index;	/* input order, for a stable sort */
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

static char *canon_value(const char *v)
{
	struct sbuf b = { 0 };
	bool blank = false;

	for (; *v == ' ' || *v == '\t'; v++)
		;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if (blank)
			sbuf_addc(&b, ' ');
		blank = false;
		sbuf_addc(&b, *v);
	}
	return sbuf_take(&b);
}

static void canon_set(struct canon_header *h, const char *name, const char *value, size_t index)
{
	struct sbuf b = { 0 };

	lower_into(&b, name);
	h->name = sbuf_take(&b);
	h->value = canon_value(value ? value : "");
	h->index = index;
}

bool sigv4_sign_headers(const struct sigv4_signer *s, const char *method, const char *path,
			const struct sigv4_param *query, size_t nquery,
			const struct sigv4_param *headers, size_t nheaders,
			const void *body, size_t body_len, struct sigv4_auth *out,
			struct sigv4_trace *trace, char *err, size_t errlen)
{
	char amz_date[SIGV4_AMZ_DATE_LEN + 1], body_hash[2 * SHA256_LEN + 1];
	char sig[SIGV4_SIGNATURE_LEN + 1];
	struct sbuf scope = { 0 }, creq = { 0 }, signed_names = { 0 }, auth = { 0 };
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
		if (strcasecmp(name, "x-amz-date") == 0 ||
		    strcasecmp(name, "x-amz-security-token") == 0 ||
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

	sbuf_add(&scope, amz_date, 8);
	sbuf_addc(&scope, '/');
	sbuf_adds(&scope, s->region);
	sbuf_addc(&scope, '/');
	sbuf_adds(&scope, s->service);
	sbuf_adds(&scope, "/aws4_request");

	sbuf_adds(&creq, method);
	sbuf_addc(&creq, '\n');
	encode_into(&creq, path, true);
	sbuf_addc(&creq, '\n');
	join_pairs(&creq, pairs, nq, true);
	sbuf_addc(&creq, '\n');
	for (size_t i = 0; i < nh; i++) {
		bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
		if (repeat) {
			/* Same name again: join the values with a comma. */
			creq.len--;
			sbuf_addc(&creq, ',');
		} else {
			sbuf_adds(&creq, hs[i].name);
			sbuf_addc(&creq, ':');
			if (signed_names.len)
				sbuf_addc(&signed_names, ';');
			sbuf_adds(&signed_names, hs[i].name);
		}
		sbuf_adds(&creq, hs[i].value);
		sbuf_addc(&creq, '\n');
	}
	sbuf_addc(&creq, '\n');
	sbuf_adds(&creq, signed_names.p);
	sbuf_addc(&creq, '\n');
	sbuf_adds(&creq, body_hash);

	if (!finish_signature(s, amz_date, scope.p, &creq, sig, trace)) {
		err_set(err, errlen, "SigV4 signing failed (OpenSSL error)");
		goto out;
	}
	sbuf_adds(&auth, ALGORITHM " Credential=");
	sbuf_adds(&auth, s->access_key_id);
	sbuf_addc(&auth, '/');
	sbuf_adds(&auth, scope.p);
	sbuf_adds(&auth, ", SignedHeaders=");
	sbuf_adds(&auth, signed_names.p);
	sbuf_adds(&auth, ", Signature=");
	sbuf_adds(&auth, sig);
	memcpy(out->amz_date, amz_date, sizeof(amz_date));
	memcpy(out->signature, sig, sizeof(sig));
	out->authorization = sbuf_take(&auth);
	ok = true;
out:
	for (size_t i = 0; i < nh; i++) {
		secret_free(hs[i].name);
		secret_free(hs[i].value);
	}
	free(hs);
	enc_pairs_free(pairs, nq);
	sbuf_wipe(&scope);
	sbuf_wipe(&creq);
	sbuf_wipe(&signed_names);
	sbuf_wipe(&auth);
	secret_wipe(sig, sizeof(sig));
	return ok;
}
