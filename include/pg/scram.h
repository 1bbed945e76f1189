/* SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: the server side
 * authenticates clients of the pooler, the client side logs in upstream with a
 * plain password. No channel binding (we advertise only SCRAM-SHA-256). */
#ifndef TB_PG_SCRAM_H
#define TB_PG_SCRAM_H
#include <stdbool.h>
#include <stddef.h>

#include "core/sha256.h"

#define SCRAM_KEY_LEN 32
#define SCRAM_MAX_SALT_LEN 64
/* Upper bound on iterations we are willing to compute (DoS guard). */
#define SCRAM_MAX_ITERATIONS 10000000
/* PostgreSQL's default scram_iterations; used for mock exchanges. */
#define SCRAM_DEFAULT_ITERATIONS 4096
/* Longest password we hash; cloud IAM tokens are a few KiB. */
#define SCRAM_MAX_PASSWORD_LEN 65536

struct scram_secret {
	int iterations;
	unsigned char salt[SCRAM_MAX_SALT_LEN];
	size_t salt_len;
	unsigned char stored_key[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN];
	/* HMAC under StoredKey and under ServerKey, their padded key blocks
	 * hashed once when the secret is made (a userlist entry keeps them), so
	 * a login's two HMACs cost two compressions fewer each. */
	struct hmac_sha256_key stored_mac, server_mac;
};

/* What SCRAM pass-through keeps of a client's login: the ClientKey recovered
 * from its proof and the verifier's ServerKey, salt and iterations. With
 * them the pooler logs in upstream as the same user, wherever the server
 * holds the same verifier, without ever knowing the password. Secret. */
struct scram_keys {
	int iterations;
	unsigned char salt[SCRAM_MAX_SALT_LEN];
	size_t salt_len;
	unsigned char client_key[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN];
};
void scram_keys_wipe(struct scram_keys *k);

/* "SCRAM-SHA-256$<iter>:<b64salt>$<b64StoredKey>:<b64ServerKey>". On failure
 * *out is wiped. */
bool scram_parse_secret(const char *text, struct scram_secret *out);
/* iterations in 1..SCRAM_MAX_ITERATIONS, salt_len in 1..SCRAM_MAX_SALT_LEN. */
bool scram_secret_from_password(const char *password, const unsigned char *salt, size_t salt_len,
				int iterations, struct scram_secret *out);
/* malloc'd, PostgreSQL format; NULL if the secret is not valid. */
char *scram_secret_to_text(const struct scram_secret *s);
/* Wipe a secret held on the stack or in a struct. */
void scram_secret_wipe(struct scram_secret *s);

/* --- Server side (the pooler authenticating a client) --- */
struct scram_server;

/* secret may be NULL: then run a mock exchange with a random salt that always
 * fails at the end (no user enumeration, like PostgreSQL). */
struct scram_server *scram_server_new(const struct scram_secret *secret);
/* Mock exchange for an unknown user whose salt is derived from the user name
 * and a caller-held random key, so repeated attempts see the same salt as they
 * would for a real user (PostgreSQL's scram_mock_salt). */
struct scram_server *scram_server_new_mock(const char *user, const unsigned char *key, size_t key_len);
/* Test hook: fixed server nonce part. Call before scram_server_first. */
void scram_server_set_nonce(struct scram_server *s, const char *nonce);
/* client_first = the bytes of SASLInitialResponse's data. On success *out is
 * the malloc'd server-first-message. */
bool scram_server_first(struct scram_server *s, const char *client_first, size_t len, char **out,
			size_t *outlen, char *err, size_t errlen);

enum scram_result {
	SCRAM_OK,
	SCRAM_FAIL_AUTH,
	SCRAM_FAIL_PROTOCOL
};

/* client_final = SASLResponse data. On SCRAM_OK *out = server-final-message
 * ("v=..."). FAIL_AUTH = wrong password (or mock exchange); FAIL_PROTOCOL =
 * malformed, out of order, channel-binding or nonce mismatch. */
enum scram_result scram_server_final(struct scram_server *s, const char *client_final, size_t len, char **out,
				     size_t *outlen, char *err, size_t errlen);
/* After SCRAM_OK (never for a mock exchange): the keys for pass-through. */
bool scram_server_keys(const struct scram_server *s, struct scram_keys *out);
void scram_server_free(struct scram_server *s);

/* --- Client side (the pooler logging in upstream with a plain password) --- */
struct scram_client;

/* NULL if password is NULL or longer than SCRAM_MAX_PASSWORD_LEN. */
struct scram_client *scram_client_new(const char *password);
/* The keys a password login derives, kept by the caller across logins (wiped
 * by it): a later login with the same password against the same salt and
 * iterations skips PBKDF2, as PgBouncer keeps them per user. A zeroed struct
 * is empty. */
void scram_client_use_cache(struct scram_client *c, struct scram_keys *cache);
/* Log in with pass-through keys instead of a password: the server's salt
 * and iterations must be the ones the keys were made with. */
struct scram_client *scram_client_new_keys(const struct scram_keys *keys);
/* Test hook: fixed client nonce. Call before scram_client_first. */
void scram_client_set_nonce(struct scram_client *c, const char *nonce);
/* Test hook: user name for n= (saslname-escaped); default empty, because
 * PostgreSQL takes the user from the startup packet. Call before first. */
void scram_client_set_username(struct scram_client *c, const char *user);
/* "n,,n=,r=<nonce>" (PostgreSQL ignores the username). */
bool scram_client_first(struct scram_client *c, char **out, size_t *outlen);
bool scram_client_final(struct scram_client *c, const char *server_first, size_t len, char **out,
			size_t *outlen, char *err, size_t errlen);
/* Checks v=; rejects e= with its text. */
bool scram_client_verify_server(struct scram_client *c, const char *server_final, size_t len, char *err,
				size_t errlen);
void scram_client_free(struct scram_client *c);
#endif
