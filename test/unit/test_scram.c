/* SCRAM-SHA-256: RFC 7677 vector, client against server, malformed input. */
#include "pg/scram.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* Computed independently with python3 hashlib/hmac for "pencil", RFC salt, 4096. */
#define PENCIL_SECRET \
	"SCRAM-SHA-256$4096:" RFC_SALT \
	"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static const unsigned char rfc_salt[16] = { 0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
					    0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81 };

static struct scram_secret pencil;

static void test_secrets(void)
{
	struct scram_secret s, t;
	char *text;

	CHECK(scram_parse_secret(PENCIL_SECRET, &pencil));
	CHECK(pencil.iterations == 4096 && pencil.salt_len == 16);
	CHECK(memcmp(pencil.salt, rfc_salt, 16) == 0);
	text = scram_secret_to_text(&pencil);
	CHECK_STR(text, PENCIL_SECRET);
	free(text);

	CHECK(scram_secret_from_password("pencil", rfc_salt, 16, 4096, &s));
	CHECK(memcmp(&s, &pencil, sizeof(s)) == 0);
	CHECK(!scram_secret_from_password("pencil", rfc_salt, 0, 4096, &s));
	CHECK(!scram_secret_from_password("pencil", rfc_salt, 65, 4096, &s));
	CHECK(!scram_secret_from_password("pencil", rfc_salt, 16, 0, &s));
	CHECK(!scram_secret_from_password(NULL, rfc_salt, 16, 4096, &s));
	CHECK(scram_secret_from_password("", rfc_salt, 16, 1, &t));

	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"scram-sha-256$4096:" RFC_SALT "$AAAA:AAAA",
		"SCRAM-SHA-256$0:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$-1:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$99999999999:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU",
		"SCRAM-SHA-256$4096:" RFC_SALT
		"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=x",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$4096:" RFC_SALT,
		"SCRAM-SHA-256$4096",
		"SCRAM-SHA-256$4096:W22Z aJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT
		"$$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool ok = scram_parse_secret(bad[i], &s);
		CHECK(!ok);
		if (ok)
			fprintf(stderr, "  accepted bad secret #%zu\n", i);
	}
	/* Every prefix of a valid secret is invalid. */
	size_t n = strlen(PENCIL_SECRET);
	int accepted = 0;
	for (size_t i = 0; i < n; i++) {
		char *pre = strndup(PENCIL_SECRET, i);
		accepted += scram_parse_secret(pre, &s);
		free(pre);
	}
	CHECK(accepted == 0);
	scram_secret_wipe(&t);
}

static void test_rfc_server(void)
{
	char err[256] = "";
	char *out = NULL;
	size_t outlen = 0;
	struct scram_server *s = scram_server_new(&pencil);

	scram_server_set_nonce(s, RFC_SNONCE);
	CHECK(scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &out, &outlen, err,
				 sizeof(err)));
	CHECK_STR(out, RFC_SERVER_FIRST);
	CHECK(out && outlen == strlen(out));
	free(out);
	CHECK(scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), &out, &outlen, err,
				 sizeof(err)) == SCRAM_OK);
	CHECK_STR(out, RFC_SERVER_FINAL);
	free(out);
	/* Replaying the final message is out of order. */
	CHECK(scram_server_final(s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), &out, &outlen, err,
				 sizeof(err)) == SCRAM_FAIL_PROTOCOL);
	CHECK(out == NULL);
	scram_server_free(s);
}

static void test_rfc_client(void)
{
	char err[256] = "";
	char *out = NULL;
	size_t outlen = 0;
	struct scram_client *c = scram_client_new("pencil");

	scram_client_set_username(c, "user");
	scram_client_set_nonce(c, RFC_CNONCE);
	CHECK(scram_client_first(c, &out, &outlen));
	CHECK_STR(out, RFC_CLIENT_FIRST);
	free(out);
	CHECK(scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out, &outlen, err,
				 sizeof(err)));
	CHECK_STR(out, RFC_CLIENT_FINAL);
	CHECK(out && outlen == strlen(out));
	free(out);
	CHECK(scram_client_verify_server(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err, sizeof(err)));
	/* Verifying twice is out of order. */
	CHECK(!scram_client_verify_server(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err, sizeof(err)));
	scram_client_free(c);

	/* The default client sends an empty user name, as libpq does. */
	c = scram_client_new("pencil");
	CHECK(scram_client_first(c, &out, &outlen));
	CHECK(out && strncmp(out, "n,,n=,r=", 8) == 0 && strlen(out) == 8 + 24);
	free(out);
	CHECK(!scram_client_first(c, &out, &outlen));
	scram_client_free(c);

	c = scram_client_new("x");
	scram_client_set_username(c, "a,b=c");
	scram_client_set_nonce(c, "abc");
	CHECK(scram_client_first(c, &out, &outlen));
	CHECK_STR(out, "n,,n=a=2Cb=3Dc,r=abc");
	free(out);
	scram_client_free(c);
}

/* Full exchange; returns the server's verdict. */
static enum scram_result exchange(const char *password, const struct scram_secret *sec, bool *client_ok)
{
	char err[256] = "";
	char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;
	size_t l1, l2, l3, l4 = 0;
	struct scram_client *c = scram_client_new(password);
	struct scram_server *s = scram_server_new(sec);
	enum scram_result r = SCRAM_FAIL_PROTOCOL;

	*client_ok = false;
	if (c && s && scram_client_first(c, &m1, &l1) &&
	    scram_server_first(s, m1, l1, &m2, &l2, err, sizeof(err)) &&
	    scram_client_final(c, m2, l2, &m3, &l3, err, sizeof(err))) {
		r = scram_server_final(s, m3, l3, &m4, &l4, err, sizeof(err));
		if (r == SCRAM_OK)
			*client_ok = scram_client_verify_server(c, m4, l4, err, sizeof(err));
	}
	free(m1);
	free(m2);
	free(m3);
	free(m4);
	scram_client_free(c);
	scram_server_free(s);
	return r;
}

static void test_end_to_end(void)
{
	struct scram_secret sec;
	unsigned char salt[16] = "0123456789abcdef";
	bool cok;

	CHECK(exchange("pencil", &pencil, &cok) == SCRAM_OK && cok);
	CHECK(exchange("pencil2", &pencil, &cok) == SCRAM_FAIL_AUTH && !cok);
	CHECK(exchange("", &pencil, &cok) == SCRAM_FAIL_AUTH);
	/* Mock exchange: looks normal, always fails. */
	CHECK(exchange("pencil", NULL, &cok) == SCRAM_FAIL_AUTH);

	/* Non-ASCII passwords are hashed as raw bytes on both sides. */
	CHECK(scram_secret_from_password("p\xc3\xa4ssw\xc3\xb6rd", salt, 16, 64, &sec));
	CHECK(exchange("p\xc3\xa4ssw\xc3\xb6rd", &sec, &cok) == SCRAM_OK && cok);
	/* ASCII control characters are kept as they are. */
	CHECK(scram_secret_from_password("a\tb\x01", salt, 16, 64, &sec));
	CHECK(exchange("a\tb\x01", &sec, &cok) == SCRAM_OK && cok);
	CHECK(exchange("a\tb", &sec, &cok) == SCRAM_FAIL_AUTH);
	CHECK(scram_secret_from_password("", salt, 16, 64, &sec));
	CHECK(exchange("", &sec, &cok) == SCRAM_OK && cok);

	/* Long passwords (IAM tokens): 4 KiB and the 64 KiB maximum. */
	char *big = malloc(SCRAM_MAX_PASSWORD_LEN + 2);
	memset(big, 'k', SCRAM_MAX_PASSWORD_LEN + 1);
	big[SCRAM_MAX_PASSWORD_LEN + 1] = '\0';
	CHECK(scram_client_new(big) == NULL);
	big[SCRAM_MAX_PASSWORD_LEN] = '\0';
	CHECK(scram_secret_from_password(big, salt, 16, 16, &sec));
	CHECK(exchange(big, &sec, &cok) == SCRAM_OK && cok);
	big[4096] = '\0';
	CHECK(scram_secret_from_password(big, salt, 16, 16, &sec));
	CHECK(exchange(big, &sec, &cok) == SCRAM_OK && cok);
	big[4095] = 'x';
	CHECK(exchange(big, &sec, &cok) == SCRAM_FAIL_AUTH);
	free(big);
	scram_secret_wipe(&sec);
}

/* One exchange between a client and a server; the server's keys (for
 * pass-through) are copied to *keys when given. */
static enum scram_result exchange_with(struct scram_client *c, struct scram_server *s, bool *client_ok,
				       struct scram_keys *keys, char *err, size_t errlen)
{
	char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;
	size_t l1, l2, l3, l4 = 0;
	enum scram_result r = SCRAM_FAIL_PROTOCOL;
	*client_ok = false;
	if (c && s && scram_client_first(c, &m1, &l1) &&
	    scram_server_first(s, m1, l1, &m2, &l2, err, errlen) &&
	    scram_client_final(c, m2, l2, &m3, &l3, err, errlen)) {
		r = scram_server_final(s, m3, l3, &m4, &l4, err, errlen);
		if (r == SCRAM_OK)
			*client_ok = scram_client_verify_server(c, m4, l4, err, errlen);
		if (keys)
			CHECK(scram_server_keys(s, keys) == (r == SCRAM_OK));
	}
	free(m1);
	free(m2);
	free(m3);
	free(m4);
	scram_client_free(c);
	scram_server_free(s);
	return r;
}

static void test_pass_through(void)
{
	char err[256] = "";
	bool cok;
	struct scram_keys keys, none;
	/* A client logs in with the password; the pooler keeps its key ... */
	CHECK(exchange_with(scram_client_new("pencil"), scram_server_new(&pencil), &cok, &keys, err,
			    sizeof(err)) == SCRAM_OK &&
	      cok);
	CHECK(keys.iterations == pencil.iterations && keys.salt_len == pencil.salt_len);
	CHECK(memcmp(keys.server_key, pencil.server_key, SCRAM_KEY_LEN) == 0);
	/* ... and logs in to a server holding the same verifier with it, twice. */
	for (int i = 0; i < 2; i++)
		CHECK(exchange_with(scram_client_new_keys(&keys), scram_server_new(&pencil), &cok, NULL, err,
				    sizeof(err)) == SCRAM_OK &&
		      cok);
	/* A wrong password yields no keys; a mock exchange neither. */
	CHECK(exchange_with(scram_client_new("pencil!"), scram_server_new(&pencil), &cok, &none, err,
			    sizeof(err)) == SCRAM_FAIL_AUTH);
	CHECK(exchange_with(scram_client_new("pencil"), scram_server_new(NULL), &cok, &none, err,
			    sizeof(err)) == SCRAM_FAIL_AUTH);
	/* Another salt on the server: refused before any proof is sent. */
	struct scram_secret other;
	unsigned char salt[16] = "another salt....";
	CHECK(scram_secret_from_password("pencil", salt, sizeof(salt), pencil.iterations, &other));
	err[0] = '\0';
	CHECK(exchange_with(scram_client_new_keys(&keys), scram_server_new(&other), &cok, NULL, err,
			    sizeof(err)) == SCRAM_FAIL_PROTOCOL &&
	      !cok);
	CHECK(strstr(err, "salt or iterations") != NULL);
	/* A key that is not the verifier's fails the server's check. */
	keys.client_key[0] ^= 1;
	CHECK(exchange_with(scram_client_new_keys(&keys), scram_server_new(&pencil), &cok, NULL, err,
			    sizeof(err)) == SCRAM_FAIL_AUTH);
	scram_keys_wipe(&keys);
	scram_secret_wipe(&other);
}

static char *salt_of(struct scram_server *s)
{
	char err[128];
	char *out = NULL;
	size_t n;
	const char *cf = "n,,n=,r=abc";

	if (!scram_server_first(s, cf, strlen(cf), &out, &n, err, sizeof(err)))
		return NULL;
	char *p = strstr(out, ",s=");
	char *q = p ? strstr(p, ",i=") : NULL;
	char *salt = p && q ? strndup(p + 3, (size_t)(q - p - 3)) : NULL;
	free(out);
	return salt;
}

static void test_mock(void)
{
	const unsigned char key[] = "process-wide random key";
	struct scram_server *a = scram_server_new_mock("alice", key, sizeof(key));
	struct scram_server *b = scram_server_new_mock("alice", key, sizeof(key));
	struct scram_server *c = scram_server_new_mock("bob", key, sizeof(key));
	char *sa = salt_of(a), *sb = salt_of(b), *sc = salt_of(c);

	CHECK(sa && sb && sc);
	CHECK_STR(sa, sb);
	CHECK(sa && sc && strcmp(sa, sc) != 0);
	free(sa);
	free(sb);
	free(sc);
	scram_server_free(a);
	scram_server_free(b);
	scram_server_free(c);
}

static bool server_first_ok(const char *msg, size_t len)
{
	char err[256] = "";
	char *out = NULL;
	size_t n;
	struct scram_server *s = scram_server_new(&pencil);
	bool ok = scram_server_first(s, msg, len, &out, &n, err, sizeof(err));

	CHECK(ok ? out != NULL : (out == NULL && err[0] != '\0'));
	free(out);
	scram_server_free(s);
	return ok;
}

static void test_bad_client_first(void)
{
	static const char *const bad[] = {
		"",
		"n",
		"n,",
		"n,,",
		"y",
		"x,,n=,r=abc",
		"p=tls-server-end-point,,n=,r=abc",
		"n,a=user,n=,r=abc",
		"n,x,n=,r=abc",
		"n,,m=ext,n=,r=abc",
		"n,,r=abc",
		"n,,n=,",
		"n,,n=,r=",
		"n,,n=,r=ab,c",
		"n,,n=a=b,r=abc",
		"n,,n=a=2,r=abc",
		"n,,n=,r=abc,",
		"n,,n=,r=a\001b",
		"n,,n=,r=a b",
		"n,,n=,r=abc,1=x",
		"n,,n=,r=abc,x",
		"n,,n=,s=abc",
		"n,,n=;r=abc",
		"n,,n=,r=abc,,",
	};
	static const char *const good[] = {
		"n,,n=,r=abc",         "y,,n=,r=abc",          "n,,n=user,r=abc",
		"n,,n=a=2Cb=3D,r=abc", "n,,n=,r=abc,x=ext,y=", "n,,n=*,r=rOprNGfwEbeRWgbNEkqO",
	};
	char err[256] = "";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool ok = server_first_ok(bad[i], strlen(bad[i]));
		CHECK(!ok);
		if (ok)
			fprintf(stderr, "  accepted bad client-first \"%s\"\n", bad[i]);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(server_first_ok(good[i], strlen(good[i])));
	/* NUL inside, and a length that stops before the NUL terminator. */
	CHECK(!server_first_ok("n,,n=,r=ab\0c", 12));
	CHECK(server_first_ok("n,,n=,r=abcdef", 11));
	/* Oversized. */
	char *huge = malloc(9000);
	memcpy(huge, "n,,n=,r=", 8);
	memset(huge + 8, 'a', 9000 - 8);
	CHECK(!server_first_ok(huge, 9000));
	free(huge);
	/* Every prefix of a channel-binding request fails cleanly. */
	const char *cb = "p=tls-server-end-point,,n=,r=abc";
	for (size_t i = 0; i < strlen(cb); i++)
		CHECK(!server_first_ok(cb, i));
	/* Error text for -PLUS and authzid is specific. */
	struct scram_server *s = scram_server_new(&pencil);
	char *out = NULL;
	size_t n;
	CHECK(!scram_server_first(s, cb, strlen(cb), &out, &n, err, sizeof(err)));
	CHECK(strstr(err, "channel binding") != NULL);
	/* After a failure the exchange is dead. */
	CHECK(!scram_server_first(s, "n,,n=,r=abc", 11, &out, &n, err, sizeof(err)));
	scram_server_free(s);
	s = scram_server_new(&pencil);
	CHECK(!scram_server_first(s, "n,a=bob,n=,r=abc", 16, &out, &n, err, sizeof(err)));
	CHECK(strstr(err, "authorization identity") != NULL);
	scram_server_free(s);
}

/* A server that has answered RFC_CLIENT_FIRST with the RFC nonce. */
static struct scram_server *rfc_server(const char *client_first)
{
	char err[256];
	char *out = NULL;
	size_t n;
	struct scram_server *s = scram_server_new(&pencil);

	scram_server_set_nonce(s, RFC_SNONCE);
	if (!scram_server_first(s, client_first, strlen(client_first), &out, &n, err, sizeof(err))) {
		scram_server_free(s);
		return NULL;
	}
	free(out);
	return s;
}

static enum scram_result server_final(const char *msg, size_t len)
{
	char err[256] = "";
	char *out = NULL;
	size_t n;
	struct scram_server *s = rfc_server(RFC_CLIENT_FIRST);
	enum scram_result r = scram_server_final(s, msg, len, &out, &n, err, sizeof(err));

	CHECK(r == SCRAM_OK ? out != NULL : (out == NULL && err[0] != '\0'));
	free(out);
	scram_server_free(s);
	return r;
}

static void test_bad_client_final(void)
{
	static const char *const bad[] = {
		"",
		"c=biws",
		"c=biws,",
		"r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws=,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE "x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=X" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE,
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=!HzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ==",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=AAAA",
		"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum scram_result r = server_final(bad[i], strlen(bad[i]));
		CHECK(r == SCRAM_FAIL_PROTOCOL);
		if (r != SCRAM_FAIL_PROTOCOL)
			fprintf(stderr, "  bad client-final #%zu gave %d\n", i, (int)r);
	}
	/* A well-formed message with a wrong proof is an authentication failure. */
	const char *wrong = "c=biws,r=" RFC_CNONCE RFC_SNONCE
			    ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	CHECK(server_final(wrong, strlen(wrong)) == SCRAM_FAIL_AUTH);
	/* Extensions between r= and p= are covered by the proof: changed message, same proof. */
	const char *ext = "c=biws,r=" RFC_CNONCE RFC_SNONCE
			  ",x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	CHECK(server_final(ext, strlen(ext)) == SCRAM_FAIL_AUTH);
	CHECK(server_final(RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)) == SCRAM_OK);
	/* Every truncation of a valid message fails. */
	size_t n = strlen(RFC_CLIENT_FINAL);
	int passed = 0;
	for (size_t i = 0; i < n; i++)
		passed += server_final(RFC_CLIENT_FINAL, i) == SCRAM_OK;
	CHECK(passed == 0);
	CHECK(server_final("c=biws,r=" RFC_CNONCE RFC_SNONCE
			   ",p=dHzb\0apWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			   n) == SCRAM_FAIL_PROTOCOL);

	/* A "y" client must send c=eSws. */
	char err[256];
	char *out = NULL;
	size_t olen;
	struct scram_server *s = rfc_server("y,,n=user,r=" RFC_CNONCE);
	CHECK(scram_server_final(s, RFC_CLIENT_FINAL, n, &out, &olen, err, sizeof(err)) ==
	      SCRAM_FAIL_PROTOCOL);
	CHECK(strstr(err, "channel-binding") != NULL);
	scram_server_free(s);

	/* Out of order: final before first, first after final, failure is final. */
	s = scram_server_new(&pencil);
	CHECK(scram_server_final(s, RFC_CLIENT_FINAL, n, &out, &olen, err, sizeof(err)) ==
	      SCRAM_FAIL_PROTOCOL);
	CHECK(!scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &out, &olen, err,
				  sizeof(err)));
	scram_server_free(s);
	s = rfc_server(RFC_CLIENT_FIRST);
	CHECK(!scram_server_first(s, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &out, &olen, err,
				  sizeof(err)));
	CHECK(scram_server_final(s, RFC_CLIENT_FINAL, n, &out, &olen, err, sizeof(err)) ==
	      SCRAM_FAIL_PROTOCOL);
	scram_server_free(s);
	s = rfc_server(RFC_CLIENT_FIRST);
	CHECK(scram_server_final(s, wrong, strlen(wrong), &out, &olen, err, sizeof(err)) == SCRAM_FAIL_AUTH);
	CHECK(scram_server_final(s, RFC_CLIENT_FINAL, n, &out, &olen, err, sizeof(err)) ==
	      SCRAM_FAIL_PROTOCOL);
	CHECK(out == NULL);
	scram_server_free(s);
	/* NULL handles. */
	CHECK(scram_server_final(NULL, RFC_CLIENT_FINAL, n, &out, &olen, err, sizeof(err)) ==
	      SCRAM_FAIL_PROTOCOL);
	scram_server_free(NULL);
}

/* A client that has sent its first message with the RFC nonce. */
static struct scram_client *rfc_client(void)
{
	char *out = NULL;
	size_t n;
	struct scram_client *c = scram_client_new("pencil");

	scram_client_set_username(c, "user");
	scram_client_set_nonce(c, RFC_CNONCE);
	if (!scram_client_first(c, &out, &n)) {
		scram_client_free(c);
		return NULL;
	}
	free(out);
	return c;
}

static bool client_final_ok(const char *msg, size_t len, char *err, size_t errlen)
{
	char *out = NULL;
	size_t n;
	struct scram_client *c = rfc_client();
	bool ok = scram_client_final(c, msg, len, &out, &n, err, errlen);

	CHECK(ok ? out != NULL : out == NULL);
	free(out);
	scram_client_free(c);
	return ok;
}

static void test_bad_server_first(void)
{
	static const char *const bad[] = {
		"",
		"r=",
		"r=" RFC_CNONCE ",s=" RFC_SALT ",i=4096",
		"r=X" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096",
		"r=rOprNGfwEbeRWgbNEkq"
		",s=" RFC_SALT ",i=4096",
		"m=ext,r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096",
		"r=" RFC_CNONCE RFC_SNONCE ",i=4096",
		"r=" RFC_CNONCE RFC_SNONCE ",s=,i=4096",
		"r=" RFC_CNONCE RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
		"r=" RFC_CNONCE RFC_SNONCE ",s=W22ZaJ0SNY7so!EsUEjb6gQ=,i=4096",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT,
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=0",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=-1",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=+4096",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=10000001",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=99999999999999999999",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096x",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096,",
		"r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096,garbage",
		"s=" RFC_SALT ",r=" RFC_CNONCE RFC_SNONCE ",i=4096",
		"r=" RFC_CNONCE "a,b"
		",s=" RFC_SALT ",i=4096",
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		bool ok = client_final_ok(bad[i], strlen(bad[i]), err, sizeof(err));
		CHECK(!ok && err[0]);
		if (ok)
			fprintf(stderr, "  accepted bad server-first #%zu\n", i);
	}
	const char *hi = "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=10000001";
	CHECK(!client_final_ok(hi, strlen(hi), err, sizeof(err)) && strstr(err, "iteration") != NULL);
	const char *mm = "r=X" RFC_CNONCE ",s=" RFC_SALT ",i=4096";
	CHECK(!client_final_ok(mm, strlen(mm), err, sizeof(err)) && strstr(err, "nonce") != NULL);
	/* Extensions after i= are allowed. */
	const char *ext = RFC_SERVER_FIRST ",x=1";
	CHECK(client_final_ok(ext, strlen(ext), err, sizeof(err)));
	/* Every truncation that cuts into i= or earlier fails. */
	size_t n = strlen(RFC_SERVER_FIRST);
	int passed = 0;
	for (size_t i = 0; i < n - 4; i++)
		passed += client_final_ok(RFC_SERVER_FIRST, i, err, sizeof(err));
	CHECK(passed == 0);
	CHECK(!client_final_ok(RFC_SERVER_FIRST "\0", n + 1, err, sizeof(err)));

	/* Out of order. */
	char *out = NULL;
	size_t olen;
	struct scram_client *c = scram_client_new("pencil");
	CHECK(!scram_client_final(c, RFC_SERVER_FIRST, n, &out, &olen, err, sizeof(err)));
	CHECK(!scram_client_verify_server(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err, sizeof(err)));
	scram_client_free(c);
	c = rfc_client();
	CHECK(!scram_client_verify_server(c, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err, sizeof(err)));
	scram_client_free(c);
	CHECK(scram_client_new(NULL) == NULL);
	scram_client_free(NULL);
}

static bool verify(const char *msg, size_t len, char *err, size_t errlen)
{
	char *out = NULL;
	size_t n;
	struct scram_client *c = rfc_client();
	bool ok = scram_client_final(c, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out, &n, err, errlen) &&
		  scram_client_verify_server(c, msg, len, err, errlen);

	free(out);
	scram_client_free(c);
	return ok;
}

static void test_bad_server_final(void)
{
	static const char *const bad[] = {
		"",
		"v=",
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
		"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		RFC_SERVER_FINAL ",x=1",
		RFC_SERVER_FINAL ",",
		"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=v",
		"v=AAAA",
		"e=",
	};
	char err[256];

	CHECK(verify(RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), err, sizeof(err)));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(!verify(bad[i], strlen(bad[i]), err, sizeof(err)) && err[0]);
	}
	CHECK(!verify("e=invalid-proof", 15, err, sizeof(err)));
	CHECK(strstr(err, "invalid-proof") != NULL);
	CHECK(!verify("e=bad\x01\x7f"
		      "char",
		      11, err, sizeof(err)));
	CHECK(strchr(err, '\x01') == NULL);
	size_t n = strlen(RFC_SERVER_FINAL);
	int passed = 0;
	for (size_t i = 0; i < n; i++)
		passed += verify(RFC_SERVER_FINAL, i, err, sizeof(err));
	CHECK(passed == 0);
}

static struct scram_client *cached_client(const char *password, struct scram_keys *cache)
{
	struct scram_client *c = scram_client_new(password);
	scram_client_use_cache(c, cache);
	return c;
}

/* Server logins with a password derive the keys once per salt and iterations. */
static void test_password_key_cache(void)
{
	char err[256] = "";
	bool cok;
	struct scram_keys cache;
	memset(&cache, 0, sizeof(cache));
	CHECK(exchange_with(cached_client("pencil", &cache), scram_server_new(&pencil), &cok, NULL, err,
			    sizeof(err)) == SCRAM_OK &&
	      cok);
	CHECK(cache.iterations == pencil.iterations && cache.salt_len == pencil.salt_len);
	CHECK(memcmp(cache.server_key, pencil.server_key, SCRAM_KEY_LEN) == 0);
	CHECK(exchange_with(cached_client("pencil", &cache), scram_server_new(&pencil), &cok, NULL, err,
			    sizeof(err)) == SCRAM_OK &&
	      cok);
	/* The second login took its key from the cache: a spoiled cache fails it. */
	struct scram_keys spoiled = cache;
	spoiled.client_key[0] ^= 1;
	CHECK(exchange_with(cached_client("pencil", &spoiled), scram_server_new(&pencil), &cok, NULL, err,
			    sizeof(err)) == SCRAM_FAIL_AUTH);
	/* Another salt: derived again, and the cache now holds that one. */
	struct scram_secret other;
	unsigned char salt[16] = "another salt....";
	CHECK(scram_secret_from_password("pencil", salt, sizeof(salt), pencil.iterations, &other));
	CHECK(exchange_with(cached_client("pencil", &cache), scram_server_new(&other), &cok, NULL, err,
			    sizeof(err)) == SCRAM_OK &&
	      cok);
	CHECK(cache.salt_len == sizeof(salt) && memcmp(cache.salt, salt, sizeof(salt)) == 0);
	CHECK(memcmp(cache.server_key, other.server_key, SCRAM_KEY_LEN) == 0);
	scram_secret_wipe(&other);
	scram_keys_wipe(&cache);
	scram_keys_wipe(&spoiled);
}

int main(void)
{
	test_secrets();
	test_rfc_server();
	test_rfc_client();
	test_end_to_end();
	test_pass_through();
	test_password_key_cache();
	test_mock();
	test_bad_client_first();
	test_bad_client_final();
	test_bad_server_first();
	test_bad_server_final();
	scram_secret_wipe(&pencil);
	return unit_finish("test_scram");
}
