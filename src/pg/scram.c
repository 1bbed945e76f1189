/* SCRAM-SHA-256 for both ends of a PostgreSQL login. Every message parser
 * works on (pointer, length) and never relies on NUL termination, because
 * the bytes come straight from the network. */
#include "pg/scram.h"
#include "core/encode.h"
#include "core/sha256.h"
#include "core/util.h"
#include "pg/saslprep.h"

#include <openssl/crypto.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_PREFIX "SCRAM-SHA-256$"
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)
/* Same raw nonce length as PostgreSQL (SCRAM_RAW_NONCE_LEN). */
#define NONCE_RAW_LEN 18
#define MOCK_SALT_LEN 16
/* Caps on message sizes: real messages are well under 1 KiB. */
#define MAX_CLIENT_MSG 8192
#define MAX_SERVER_MSG 8192
#define MAX_NONCE_LEN 1024
/* An upstream may use a longer salt than we store in struct scram_secret. */
#define MAX_UPSTREAM_SALT 1024
#define MAX_SECRET_TEXT 1024
#define MAX_ERROR_TEXT 200

/* ---------- crypto primitives ---------- */

/* Our own SHA-256 on the login path (core/sha256.h says why). */
static bool hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SCRAM_KEY_LEN])
{
	hmac_sha256_digest(key, keylen, data, len, out);
	return true;
}

static bool sha256(const void *data, size_t len, unsigned char out[SCRAM_KEY_LEN])
{
	sha256_digest(data, len, out);
	return true;
}

/*
 * SaltedPassword := Hi(Normalize(password), salt, i).
 *
 * Normalize is SASLprep as PostgreSQL applies it (pg/saslprep.h): ASCII is
 * used unchanged (which also lets ASCII control characters through), and
 * when the input is not valid UTF-8 or prep fails the raw bytes are used.
 * Both sides call this: the secret made from a plain password in auth_file,
 * and the upstream login with a plain password.
 */
static bool salted_password(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
			    int iterations, unsigned char out[SCRAM_KEY_LEN])
{
	if (pwlen > SCRAM_MAX_PASSWORD_LEN || saltlen == 0 || saltlen > INT_MAX || iterations < 1 ||
	    iterations > SCRAM_MAX_ITERATIONS)
		return false;
	size_t plen;
	char *prepped = saslprep_or_raw(pw, pwlen, &plen);
	pbkdf2_sha256(prepped, plen, salt, saltlen, (unsigned)iterations, out);
	secret_wipe(prepped, plen);
	free(prepped);
	return true;
}

/* ClientKey, StoredKey and ServerKey from SaltedPassword. */
static bool derive_keys(const unsigned char salted[SCRAM_KEY_LEN], unsigned char client_key[SCRAM_KEY_LEN],
			unsigned char stored_key[SCRAM_KEY_LEN], unsigned char server_key[SCRAM_KEY_LEN])
{
	return hmac_sha256(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) &&
	       sha256(client_key, SCRAM_KEY_LEN, stored_key) &&
	       hmac_sha256(salted, SCRAM_KEY_LEN, "Server Key", 10, server_key);
}

/* ---------- secrets ---------- */

/* Every secret that leaves this file has its HMAC states ready. */
static void prepare_macs(struct scram_secret *s)
{
	hmac_sha256_prepare(&s->stored_mac, s->stored_key, SCRAM_KEY_LEN);
	hmac_sha256_prepare(&s->server_mac, s->server_key, SCRAM_KEY_LEN);
}

void scram_secret_wipe(struct scram_secret *s)
{
	if (s)
		secret_wipe(s, sizeof(*s));
}

/* Decimal 1..max without sign or leading junk. */
static bool parse_count(const char *p, size_t n, long long max, int *out)
{
	long long v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > max)
		return false;
	*out = (int)v;
	return true;
}

static bool decode_key(const char *p, size_t n, unsigned char out[SCRAM_KEY_LEN])
{
	size_t got = 0;

	return base64_decode_strict(p, n, out, SCRAM_KEY_LEN, &got) && got == SCRAM_KEY_LEN;
}

static bool parse_secret_body(const char *p, const char *end, struct scram_secret *out)
{
	const char *colon1 = memchr(p, ':', (size_t)(end - p));
	if (!colon1 || !parse_count(p, (size_t)(colon1 - p), INT_MAX, &out->iterations))
		return false;
	const char *salt = colon1 + 1;
	const char *dollar = memchr(salt, '$', (size_t)(end - salt));
	if (!dollar)
		return false;
	if (!base64_decode_strict(salt, (size_t)(dollar - salt), out->salt, sizeof(out->salt),
				  &out->salt_len) ||
	    out->salt_len == 0)
		return false;
	const char *stored = dollar + 1;
	const char *colon2 = memchr(stored, ':', (size_t)(end - stored));
	if (!colon2)
		return false;
	return decode_key(stored, (size_t)(colon2 - stored), out->stored_key) &&
	       decode_key(colon2 + 1, (size_t)(end - colon2 - 1), out->server_key);
}

bool scram_parse_secret(const char *text, struct scram_secret *out)
{
	size_t len;

	if (!out)
		return false;
	memset(out, 0, sizeof(*out));
	if (!text)
		return false;
	len = strnlen(text, MAX_SECRET_TEXT + 1);
	if (len > MAX_SECRET_TEXT || len < SECRET_PREFIX_LEN ||
	    memcmp(text, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
		return false;
	if (!parse_secret_body(text + SECRET_PREFIX_LEN, text + len, out)) {
		scram_secret_wipe(out);
		return false;
	}
	prepare_macs(out);
	return true;
}

bool scram_secret_from_password(const char *password, const unsigned char *salt, size_t salt_len,
				int iterations, struct scram_secret *out)
{
	unsigned char salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
	bool ok;

	if (!out)
		return false;
	memset(out, 0, sizeof(*out));
	if (!password || !salt || salt_len == 0 || salt_len > SCRAM_MAX_SALT_LEN)
		return false;
	size_t pwlen = strnlen(password, SCRAM_MAX_PASSWORD_LEN + 1);
	ok = salted_password(password, pwlen, salt, salt_len, iterations, salted) &&
	     derive_keys(salted, client_key, out->stored_key, out->server_key);
	secret_wipe(salted, sizeof(salted));
	secret_wipe(client_key, sizeof(client_key));
	if (!ok) {
		scram_secret_wipe(out);
		return false;
	}
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	prepare_macs(out);
	return true;
}

char *scram_secret_to_text(const struct scram_secret *s)
{
	char salt[BASE64_LEN(SCRAM_MAX_SALT_LEN) + 1];
	char stored[BASE64_LEN(SCRAM_KEY_LEN) + 1], server[BASE64_LEN(SCRAM_KEY_LEN) + 1];
	char *text;

	if (!s || s->iterations < 1 || s->salt_len == 0 || s->salt_len > SCRAM_MAX_SALT_LEN)
		return NULL;
	base64_encode_to(s->salt, s->salt_len, salt, false);
	base64_encode_to(s->stored_key, SCRAM_KEY_LEN, stored, false);
	base64_encode_to(s->server_key, SCRAM_KEY_LEN, server, false);
	text = xasprintf("%s%d:%s$%s:%s", SECRET_PREFIX, s->iterations, salt, stored, server);
	secret_wipe(stored, sizeof(stored));
	secret_wipe(server, sizeof(server));
	return text;
}

/* ---------- message attribute cursor ---------- */

struct cursor {
	const char *p;
	const char *end;
	bool want_more; /* a ',' was consumed, so another attribute must follow */
};

static void cursor_init(struct cursor *c, const char *p, size_t len)
{
	c->p = p;
	c->end = p + len;
	c->want_more = false;
}

static bool cursor_at_end(const struct cursor *c)
{
	return c->p == c->end && !c->want_more;
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Reads "x=value" up to ',' or the end; *start points at the attribute name. */
static bool next_attr(struct cursor *c, char *attr, const char **val, size_t *vlen, const char **start)
{
	if (c->end - c->p < 2 || !is_alpha(c->p[0]) || c->p[1] != '=')
		return false;
	if (start)
		*start = c->p;
	*attr = c->p[0];
	*val = c->p + 2;
	const char *comma = memchr(*val, ',', (size_t)(c->end - *val));
	const char *vend = comma ? comma : c->end;
	*vlen = (size_t)(vend - *val);
	c->p = comma ? comma + 1 : c->end;
	c->want_more = comma != NULL;
	return true;
}

/* Reads one attribute that must be `want`. */
static bool expect_attr(struct cursor *c, char want, const char **val, size_t *vlen)
{
	char attr;

	return next_attr(c, &attr, val, vlen, NULL) && attr == want;
}

/* Extensions after the mandatory attributes are allowed and ignored. */
static bool skip_extensions(struct cursor *c)
{
	char attr;
	const char *v;
	size_t vl;

	while (!cursor_at_end(c))
		if (!next_attr(c, &attr, &v, &vl, NULL))
			return false;
	return true;
}

/* printable = %x21-2B / %x2D-7E (RFC 5802). */
static bool valid_nonce(const char *p, size_t n)
{
	if (n == 0 || n > MAX_NONCE_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return false;
	return true;
}

/* saslname: '=' only as "=2C" or "=3D". */
static bool valid_saslname(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '=')
			continue;
		if (n - i < 3 ||
		    !((p[i + 1] == '2' && p[i + 2] == 'C') || (p[i + 1] == '3' && p[i + 2] == 'D')))
			return false;
		i += 2;
	}
	return true;
}

static bool check_message(const char *msg, size_t len, size_t cap, const char *what, char *err, size_t errlen)
{
	if (!msg || len == 0) {
		err_set(err, errlen, "empty SCRAM %s", what);
		return false;
	}
	if (len > cap) {
		err_set(err, errlen, "SCRAM %s too long (%zu bytes)", what, len);
		return false;
	}
	if (memchr(msg, '\0', len)) {
		err_set(err, errlen, "SCRAM %s contains a NUL byte", what);
		return false;
	}
	return true;
}

/* AuthMessage := client-first-bare "," server-first "," client-final-without-proof */
static char *auth_message(const char *bare, size_t bare_len, const char *sfirst, size_t sfirst_len,
			  const char *cfinal, size_t cfinal_len, size_t *outlen)
{
	size_t n = bare_len + 1 + sfirst_len + 1 + cfinal_len;
	char *m = xmalloc(n + 1);

	memcpy(m, bare, bare_len);
	m[bare_len] = ',';
	memcpy(m + bare_len + 1, sfirst, sfirst_len);
	m[bare_len + 1 + sfirst_len] = ',';
	memcpy(m + bare_len + 2 + sfirst_len, cfinal, cfinal_len);
	m[n] = '\0';
	*outlen = n;
	return m;
}

static char *random_nonce(void)
{
	unsigned char raw[NONCE_RAW_LEN];

	if (!random_bytes(raw, sizeof(raw)))
		return NULL;
	return base64_encode(raw, sizeof(raw), false);
}

static void set_out(char **out, size_t *outlen, char *s)
{
	*out = s;
	if (outlen)
		*outlen = strlen(s);
}

/* ---------- server side ---------- */

enum scram_server_state {
	SS_INIT,
	SS_FIRST_SENT,
	SS_DONE,
	SS_FAILED
};

struct scram_server {
	enum scram_server_state state;
	bool mock;
	char cbind_flag; /* 'n' or 'y' */
	struct scram_secret secret;
	char *server_nonce;
	char *client_nonce;
	char *client_first_bare;
	size_t client_first_bare_len;
	char *server_first;
	size_t server_first_len;
	unsigned char client_key[SCRAM_KEY_LEN]; /* recovered from a valid proof */
};

void scram_keys_wipe(struct scram_keys *k)
{
	secret_wipe(k, sizeof(*k));
}

static struct scram_server *server_alloc(void)
{
	struct scram_server *s = xcalloc(1, sizeof(*s));
	s->state = SS_INIT;
	return s;
}

/* A mock secret: its keys are random, so no password can match it. */
static bool mock_keys(struct scram_secret *sec)
{
	sec->iterations = SCRAM_DEFAULT_ITERATIONS;
	if (!random_bytes(sec->stored_key, SCRAM_KEY_LEN) || !random_bytes(sec->server_key, SCRAM_KEY_LEN))
		return false;
	prepare_macs(sec);
	return true;
}

struct scram_server *scram_server_new(const struct scram_secret *secret)
{
	struct scram_server *s = server_alloc();

	if (secret) {
		if (secret->iterations < 1 || secret->salt_len == 0 || secret->salt_len > SCRAM_MAX_SALT_LEN) {
			free(s);
			return NULL;
		}
		s->secret = *secret;
		return s;
	}
	s->mock = true;
	s->secret.salt_len = MOCK_SALT_LEN;
	if (!mock_keys(&s->secret) || !random_bytes(s->secret.salt, MOCK_SALT_LEN)) {
		scram_server_free(s);
		return NULL;
	}
	return s;
}

struct scram_server *scram_server_new_mock(const char *user, const unsigned char *key, size_t key_len)
{
	unsigned char mac[SCRAM_KEY_LEN];
	struct scram_server *s;

	if (!user || !key || key_len == 0)
		return scram_server_new(NULL);
	s = server_alloc();
	s->mock = true;
	if (!mock_keys(&s->secret) || !hmac_sha256(key, key_len, user, strlen(user), mac)) {
		scram_server_free(s);
		return NULL;
	}
	memcpy(s->secret.salt, mac, MOCK_SALT_LEN);
	s->secret.salt_len = MOCK_SALT_LEN;
	return s;
}

void scram_server_set_nonce(struct scram_server *s, const char *nonce)
{
	if (!s || !nonce || s->state != SS_INIT || !valid_nonce(nonce, strlen(nonce)))
		return;
	free(s->server_nonce);
	s->server_nonce = xstrdup(nonce);
}

/* gs2-header = gs2-cbind-flag "," [ authzid ] "," ; returns its length or 0. */
static size_t parse_gs2_header(struct scram_server *s, const char *msg, size_t len, char *err, size_t errlen)
{
	if (msg[0] == 'p') {
		err_set(err, errlen, "client requires SCRAM channel binding, which is not offered");
		return 0;
	}
	if ((msg[0] != 'n' && msg[0] != 'y') || len < 2 || msg[1] != ',') {
		err_set(err, errlen, "malformed SCRAM GS2 header");
		return 0;
	}
	if (len > 2 && msg[2] == 'a') {
		err_set(err, errlen, "SCRAM authorization identity is not supported");
		return 0;
	}
	if (len < 3 || msg[2] != ',') {
		err_set(err, errlen, "malformed SCRAM GS2 header");
		return 0;
	}
	s->cbind_flag = msg[0];
	return 3;
}

/* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
static bool parse_client_first_bare(struct scram_server *s, const char *bare, size_t len, char *err,
				    size_t errlen)
{
	struct cursor c;
	char attr;
	const char *v;
	size_t vl;

	cursor_init(&c, bare, len);
	if (!next_attr(&c, &attr, &v, &vl, NULL)) {
		err_set(err, errlen, "malformed SCRAM client-first-message");
		return false;
	}
	if (attr == 'm') {
		err_set(err, errlen, "client requires an unsupported SCRAM extension");
		return false;
	}
	if (attr != 'n' || !valid_saslname(v, vl)) {
		err_set(err, errlen, "malformed SCRAM username in client-first-message");
		return false;
	}
	if (!expect_attr(&c, 'r', &v, &vl) || !valid_nonce(v, vl)) {
		err_set(err, errlen, "malformed SCRAM nonce in client-first-message");
		return false;
	}
	if (!skip_extensions(&c)) {
		err_set(err, errlen, "garbage at end of SCRAM client-first-message");
		return false;
	}
	s->client_nonce = xstrndup(v, vl);
	s->client_first_bare = xstrndup(bare, len);
	s->client_first_bare_len = len;
	return true;
}

static bool build_server_first(struct scram_server *s, char *err, size_t errlen)
{
	char salt[BASE64_LEN(SCRAM_MAX_SALT_LEN) + 1];

	if (!s->server_nonce && !(s->server_nonce = random_nonce())) {
		err_set(err, errlen, "could not generate SCRAM nonce");
		return false;
	}
	base64_encode_to(s->secret.salt, s->secret.salt_len, salt, false);
	s->server_first = xasprintf("r=%s%s,s=%s,i=%d", s->client_nonce, s->server_nonce, salt,
				    s->secret.iterations);
	s->server_first_len = strlen(s->server_first);
	return true;
}

bool scram_server_first(struct scram_server *s, const char *client_first, size_t len, char **out,
			size_t *outlen, char *err, size_t errlen)
{
	size_t gs2;

	if (out)
		*out = NULL;
	if (!s || !out)
		return false;
	if (s->state != SS_INIT) {
		err_set(err, errlen, "unexpected SCRAM client-first-message");
		s->state = SS_FAILED;
		return false;
	}
	s->state = SS_FAILED;
	if (!check_message(client_first, len, MAX_CLIENT_MSG, "client-first-message", err, errlen))
		return false;
	gs2 = parse_gs2_header(s, client_first, len, err, errlen);
	if (gs2 == 0 || !parse_client_first_bare(s, client_first + gs2, len - gs2, err, errlen))
		return false;
	if (!build_server_first(s, err, errlen))
		return false;
	set_out(out, outlen, xstrdup(s->server_first));
	s->state = SS_FIRST_SENT;
	return true;
}

struct client_final {
	const char *without_proof;
	size_t without_proof_len;
	unsigned char proof[SCRAM_KEY_LEN];
};

static bool check_final_nonce(const struct scram_server *s, const char *v, size_t vl)
{
	size_t cl = strlen(s->client_nonce), sl = strlen(s->server_nonce);

	return vl == cl + sl && memcmp(v, s->client_nonce, cl) == 0 &&
	       memcmp(v + cl, s->server_nonce, sl) == 0;
}

/* client-final-message = "c=" cbind "," "r=" nonce ["," extensions] "," "p=" proof */
static bool parse_client_final(const struct scram_server *s, const char *msg, size_t len,
			       struct client_final *cf, char *err, size_t errlen)
{
	struct cursor c;
	const char *v, *start = NULL;
	size_t vl, got = 0;
	char attr = 0;
	const char *want_cbind = s->cbind_flag == 'y' ? "eSws" : "biws";

	cursor_init(&c, msg, len);
	if (!expect_attr(&c, 'c', &v, &vl)) {
		err_set(err, errlen, "malformed SCRAM client-final-message (no channel binding)");
		return false;
	}
	if (vl != 4 || memcmp(v, want_cbind, 4) != 0) {
		err_set(err, errlen, "unexpected SCRAM channel-binding attribute in client-final-message");
		return false;
	}
	if (!expect_attr(&c, 'r', &v, &vl)) {
		err_set(err, errlen, "malformed SCRAM client-final-message (no nonce)");
		return false;
	}
	if (!check_final_nonce(s, v, vl)) {
		err_set(err, errlen, "SCRAM nonce in client-final-message does not match");
		return false;
	}
	while (attr != 'p') {
		if (!next_attr(&c, &attr, &v, &vl, &start)) {
			err_set(err, errlen, "malformed SCRAM client-final-message (no proof)");
			return false;
		}
	}
	if (!cursor_at_end(&c)) {
		err_set(err, errlen, "garbage at end of SCRAM client-final-message");
		return false;
	}
	if (!base64_decode_strict(v, vl, cf->proof, sizeof(cf->proof), &got) || got != SCRAM_KEY_LEN) {
		err_set(err, errlen, "malformed SCRAM proof in client-final-message");
		return false;
	}
	cf->without_proof = msg;
	cf->without_proof_len = (size_t)(start - 1 - msg);
	return true;
}

/* ClientKey := proof XOR HMAC(StoredKey, AuthMessage); ok if H(ClientKey) ==
 * StoredKey. The ClientKey is kept for pass-through only when it is ok. */
static bool verify_proof(struct scram_server *s, const char *am, size_t am_len,
			 const unsigned char proof[SCRAM_KEY_LEN])
{
	unsigned char sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	hmac_sha256_keyed(&s->secret.stored_mac, am, am_len, sig);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	sha256_digest(key, SCRAM_KEY_LEN, stored);
	bool ok = CRYPTO_memcmp(stored, s->secret.stored_key, SCRAM_KEY_LEN) == 0;
	if (ok)
		memcpy(s->client_key, key, SCRAM_KEY_LEN);
	secret_wipe(sig, sizeof(sig));
	secret_wipe(key, sizeof(key));
	secret_wipe(stored, sizeof(stored));
	return ok;
}

bool scram_server_keys(const struct scram_server *s, struct scram_keys *out)
{
	if (!s || s->mock || s->state != SS_DONE)
		return false;
	out->iterations = s->secret.iterations;
	memcpy(out->salt, s->secret.salt, s->secret.salt_len);
	out->salt_len = s->secret.salt_len;
	memcpy(out->client_key, s->client_key, SCRAM_KEY_LEN);
	memcpy(out->server_key, s->secret.server_key, SCRAM_KEY_LEN);
	return true;
}

static char *server_final_message(const struct scram_server *s, const char *am, size_t am_len)
{
	unsigned char sig[SCRAM_KEY_LEN];
	char b64[BASE64_LEN(SCRAM_KEY_LEN) + 1];

	hmac_sha256_keyed(&s->secret.server_mac, am, am_len, sig);
	base64_encode_to(sig, sizeof(sig), b64, false);
	secret_wipe(sig, sizeof(sig));
	return xasprintf("v=%s", b64);
}

enum scram_result scram_server_final(struct scram_server *s, const char *client_final, size_t len, char **out,
				     size_t *outlen, char *err, size_t errlen)
{
	struct client_final cf;
	char *am;
	size_t am_len;
	bool ok;

	if (out)
		*out = NULL;
	if (!s || !out)
		return SCRAM_FAIL_PROTOCOL;
	if (s->state != SS_FIRST_SENT) {
		err_set(err, errlen, "unexpected SCRAM client-final-message");
		s->state = SS_FAILED;
		return SCRAM_FAIL_PROTOCOL;
	}
	s->state = SS_FAILED;
	if (!check_message(client_final, len, MAX_CLIENT_MSG, "client-final-message", err, errlen) ||
	    !parse_client_final(s, client_final, len, &cf, err, errlen))
		return SCRAM_FAIL_PROTOCOL;
	am = auth_message(s->client_first_bare, s->client_first_bare_len, s->server_first,
			  s->server_first_len, cf.without_proof, cf.without_proof_len, &am_len);
	/* A mock exchange does the same work so that timing reveals nothing. */
	ok = verify_proof(s, am, am_len, cf.proof) && !s->mock;
	secret_wipe(cf.proof, sizeof(cf.proof));
	if (!ok) {
		free(am);
		err_set(err, errlen,
			s->mock ? "no valid SCRAM secret for user"
				: "SCRAM proof does not match (wrong password)");
		return SCRAM_FAIL_AUTH;
	}
	*out = server_final_message(s, am, am_len);
	free(am);
	if (!*out) {
		err_set(err, errlen, "could not compute SCRAM server signature");
		return SCRAM_FAIL_PROTOCOL;
	}
	if (outlen)
		*outlen = strlen(*out);
	s->state = SS_DONE;
	return SCRAM_OK;
}

void scram_server_free(struct scram_server *s)
{
	if (!s)
		return;
	scram_secret_wipe(&s->secret);
	secret_wipe(s->client_key, sizeof(s->client_key));
	free(s->server_nonce);
	free(s->client_nonce);
	free(s->client_first_bare);
	free(s->server_first);
	free(s);
}

/* ---------- client side ---------- */

enum scram_client_state {
	CS_INIT,
	CS_FIRST_SENT,
	CS_FINAL_SENT,
	CS_DONE,
	CS_FAILED
};

struct scram_client {
	enum scram_client_state state;
	char *password;
	size_t password_len;
	char *nonce;
	char *username; /* saslname-escaped; NULL = empty */
	char *first_bare;
	size_t first_bare_len;
	unsigned char server_sig[SCRAM_KEY_LEN];
	struct scram_keys *keys;  /* pass-through instead of a password */
	struct scram_keys *cache; /* the caller's keys of this password, or NULL */
};

void scram_client_use_cache(struct scram_client *c, struct scram_keys *cache)
{
	if (c)
		c->cache = cache;
}

struct scram_client *scram_client_new_keys(const struct scram_keys *keys)
{
	if (!keys || keys->salt_len == 0 || keys->salt_len > SCRAM_MAX_SALT_LEN)
		return NULL;
	struct scram_client *c = xcalloc(1, sizeof(*c));
	c->keys = xmalloc(sizeof(*c->keys));
	*c->keys = *keys;
	c->state = CS_INIT;
	return c;
}

struct scram_client *scram_client_new(const char *password)
{
	struct scram_client *c;
	size_t n;

	if (!password)
		return NULL;
	n = strnlen(password, SCRAM_MAX_PASSWORD_LEN + 1);
	if (n > SCRAM_MAX_PASSWORD_LEN)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->password = xstrndup(password, n);
	c->password_len = n;
	c->state = CS_INIT;
	return c;
}

void scram_client_set_nonce(struct scram_client *c, const char *nonce)
{
	if (!c || !nonce || c->state != CS_INIT || !valid_nonce(nonce, strlen(nonce)))
		return;
	free(c->nonce);
	c->nonce = xstrdup(nonce);
}

void scram_client_set_username(struct scram_client *c, const char *user)
{
	size_t n;

	if (!c || !user || c->state != CS_INIT || (n = strnlen(user, MAX_NONCE_LEN + 1)) > MAX_NONCE_LEN)
		return;
	free(c->username);
	c->username = xmalloc(3 * n + 1);
	char *o = c->username;
	for (size_t i = 0; i < n; i++) {
		if (user[i] == ',' || user[i] == '=') {
			memcpy(o, user[i] == ',' ? "=2C" : "=3D", 3);
			o += 3;
		} else {
			*o++ = user[i];
		}
	}
	*o = '\0';
}

bool scram_client_first(struct scram_client *c, char **out, size_t *outlen)
{
	if (out)
		*out = NULL;
	if (!c || !out || c->state != CS_INIT)
		return false;
	if (!c->nonce && !(c->nonce = random_nonce())) {
		c->state = CS_FAILED;
		return false;
	}
	c->first_bare = xasprintf("n=%s,r=%s", c->username ? c->username : "", c->nonce);
	c->first_bare_len = strlen(c->first_bare);
	set_out(out, outlen, xasprintf("n,,%s", c->first_bare));
	c->state = CS_FIRST_SENT;
	return true;
}

struct server_first {
	const char *nonce;
	size_t nonce_len;
	unsigned char salt[MAX_UPSTREAM_SALT];
	size_t salt_len;
	int iterations;
};

/* server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions] */
static bool parse_server_first(const struct scram_client *c, const char *msg, size_t len,
			       struct server_first *sf, char *err, size_t errlen)
{
	struct cursor cur;
	const char *v;
	size_t vl, cl = strlen(c->nonce);
	char attr;

	cursor_init(&cur, msg, len);
	if (!next_attr(&cur, &attr, &v, &vl, NULL) || (attr != 'r' && attr != 'm')) {
		err_set(err, errlen, "malformed SCRAM server-first-message");
		return false;
	}
	if (attr == 'm') {
		err_set(err, errlen, "server requires an unsupported SCRAM extension");
		return false;
	}
	if (!valid_nonce(v, vl) || vl <= cl || memcmp(v, c->nonce, cl) != 0) {
		err_set(err, errlen, "invalid SCRAM response (nonce mismatch)");
		return false;
	}
	sf->nonce = v;
	sf->nonce_len = vl;
	if (!expect_attr(&cur, 's', &v, &vl) ||
	    !base64_decode_strict(v, vl, sf->salt, sizeof(sf->salt), &sf->salt_len) || sf->salt_len == 0) {
		err_set(err, errlen, "malformed SCRAM salt in server-first-message");
		return false;
	}
	if (!expect_attr(&cur, 'i', &v, &vl) || !parse_count(v, vl, SCRAM_MAX_ITERATIONS, &sf->iterations)) {
		err_set(err, errlen, "invalid SCRAM iteration count in server-first-message (1..%d)",
			SCRAM_MAX_ITERATIONS);
		return false;
	}
	if (!skip_extensions(&cur)) {
		err_set(err, errlen, "garbage at end of SCRAM server-first-message");
		return false;
	}
	return true;
}

struct client_keys {
	unsigned char salted[SCRAM_KEY_LEN];
	unsigned char client_key[SCRAM_KEY_LEN];
	unsigned char stored_key[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN];
	unsigned char client_sig[SCRAM_KEY_LEN];
	unsigned char proof[SCRAM_KEY_LEN];
};

/* Computes the proof and remembers the ServerSignature we expect back. */
static bool pass_through_keys(const struct scram_client *c, struct client_keys *k)
{
	memcpy(k->client_key, c->keys->client_key, SCRAM_KEY_LEN);
	memcpy(k->server_key, c->keys->server_key, SCRAM_KEY_LEN);
	return sha256(k->client_key, SCRAM_KEY_LEN, k->stored_key);
}

static bool cache_matches(const struct scram_keys *cache, const struct server_first *sf)
{
	return cache && cache->iterations == sf->iterations && cache->salt_len == sf->salt_len &&
	       memcmp(cache->salt, sf->salt, sf->salt_len) == 0;
}

/* ClientKey, StoredKey and ServerKey from the password, or from the cache
 * when it holds them for this salt and iteration count. */
static bool password_keys(struct scram_client *c, const struct server_first *sf, struct client_keys *k)
{
	if (cache_matches(c->cache, sf)) {
		memcpy(k->client_key, c->cache->client_key, SCRAM_KEY_LEN);
		memcpy(k->server_key, c->cache->server_key, SCRAM_KEY_LEN);
		return sha256(k->client_key, SCRAM_KEY_LEN, k->stored_key);
	}
	if (!salted_password(c->password, c->password_len, sf->salt, sf->salt_len, sf->iterations, k->salted) ||
	    !derive_keys(k->salted, k->client_key, k->stored_key, k->server_key))
		return false;
	if (c->cache && sf->salt_len <= SCRAM_MAX_SALT_LEN) {
		scram_keys_wipe(c->cache);
		c->cache->iterations = sf->iterations;
		memcpy(c->cache->salt, sf->salt, sf->salt_len);
		c->cache->salt_len = sf->salt_len;
		memcpy(c->cache->client_key, k->client_key, SCRAM_KEY_LEN);
		memcpy(c->cache->server_key, k->server_key, SCRAM_KEY_LEN);
	}
	return true;
}

static bool compute_proof(struct scram_client *c, const struct server_first *sf, const char *am,
			  size_t am_len, struct client_keys *k)
{
	bool keys_ok = c->keys ? pass_through_keys(c, k) : password_keys(c, sf, k);
	if (!keys_ok || !hmac_sha256(k->stored_key, SCRAM_KEY_LEN, am, am_len, k->client_sig) ||
	    !hmac_sha256(k->server_key, SCRAM_KEY_LEN, am, am_len, c->server_sig))
		return false;
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		k->proof[i] = k->client_key[i] ^ k->client_sig[i];
	return true;
}

bool scram_client_final(struct scram_client *c, const char *server_first, size_t len, char **out,
			size_t *outlen, char *err, size_t errlen)
{
	struct server_first sf;
	struct client_keys k;
	char *without_proof, *am;
	size_t am_len;
	bool ok;

	if (out)
		*out = NULL;
	if (!c || !out)
		return false;
	if (c->state != CS_FIRST_SENT) {
		err_set(err, errlen, "unexpected SCRAM server-first-message");
		c->state = CS_FAILED;
		return false;
	}
	c->state = CS_FAILED;
	if (!check_message(server_first, len, MAX_SERVER_MSG, "server-first-message", err, errlen) ||
	    !parse_server_first(c, server_first, len, &sf, err, errlen))
		return false;
	if (c->keys && (sf.iterations != c->keys->iterations || sf.salt_len != c->keys->salt_len ||
			memcmp(sf.salt, c->keys->salt, sf.salt_len) != 0)) {
		err_set(err, errlen,
			"the server's SCRAM verifier differs from the one in auth_file "
			"(salt or iterations), so the client's key cannot be passed through");
		return false;
	}
	/* "biws" is base64("n,,"): we never use channel binding. */
	without_proof = xasprintf("c=biws,r=%.*s", (int)sf.nonce_len, sf.nonce);
	am = auth_message(c->first_bare, c->first_bare_len, server_first, len, without_proof,
			  strlen(without_proof), &am_len);
	ok = compute_proof(c, &sf, am, am_len, &k);
	free(am);
	if (ok) {
		char proof[BASE64_LEN(SCRAM_KEY_LEN) + 1];
		base64_encode_to(k.proof, SCRAM_KEY_LEN, proof, false);
		set_out(out, outlen, xasprintf("%s,p=%s", without_proof, proof));
		c->state = CS_FINAL_SENT;
	} else {
		err_set(err, errlen, "could not compute SCRAM client proof");
	}
	secret_wipe(&k, sizeof(k));
	free(without_proof);
	/* The password is not needed any more. */
	secret_wipe(c->password, c->password_len);
	return ok;
}

/* Copies the server's e= text, printable ASCII only, for an error message. */
static void server_error_text(const char *v, size_t vl, char *err, size_t errlen)
{
	char text[MAX_ERROR_TEXT + 1];
	size_t n = vl < MAX_ERROR_TEXT ? vl : MAX_ERROR_TEXT;

	/* cppcheck-suppress knownConditionTrueFalse ; n is the e= value's length, set by next_attr */
	for (size_t i = 0; i < n; i++)
		text[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	text[n] = '\0';
	err_set(err, errlen, "SCRAM server error: %s", text);
}

bool scram_client_verify_server(struct scram_client *c, const char *server_final, size_t len, char *err,
				size_t errlen)
{
	struct cursor cur;
	const char *v;
	size_t vl, got = 0;
	char attr;
	unsigned char sig[SCRAM_KEY_LEN];
	bool ok;

	if (!c)
		return false;
	if (c->state != CS_FINAL_SENT) {
		err_set(err, errlen, "unexpected SCRAM server-final-message");
		c->state = CS_FAILED;
		return false;
	}
	c->state = CS_FAILED;
	if (!check_message(server_final, len, MAX_SERVER_MSG, "server-final-message", err, errlen))
		return false;
	cursor_init(&cur, server_final, len);
	if (!next_attr(&cur, &attr, &v, &vl, NULL) || (attr != 'v' && attr != 'e')) {
		err_set(err, errlen, "malformed SCRAM server-final-message");
		return false;
	}
	if (attr == 'e') {
		server_error_text(v, vl, err, errlen);
		return false;
	}
	if (!cursor_at_end(&cur) || !base64_decode_strict(v, vl, sig, sizeof(sig), &got) ||
	    got != SCRAM_KEY_LEN) {
		err_set(err, errlen, "malformed SCRAM server signature");
		return false;
	}
	ok = CRYPTO_memcmp(sig, c->server_sig, SCRAM_KEY_LEN) == 0;
	if (!ok)
		err_set(err, errlen, "incorrect SCRAM server signature");
	else
		c->state = CS_DONE;
	return ok;
}

void scram_client_free(struct scram_client *c)
{
	if (!c)
		return;
	if (c->password) {
		secret_wipe(c->password, c->password_len);
		free(c->password);
	}
	if (c->keys) {
		scram_keys_wipe(c->keys);
		free(c->keys);
	}
	free(c->nonce);
	free(c->username);
	free(c->first_bare);
	secret_wipe(c->server_sig, sizeof(c->server_sig));
	free(c);
}
