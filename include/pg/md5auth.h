/* PostgreSQL's md5 password scheme, for both ends of a login. */
#ifndef TB_PG_MD5AUTH_H
#define TB_PG_MD5AUTH_H
#include <stdbool.h>
#include <stddef.h>

/* "md5" + 32 hex digits + NUL */
#define MD5_PASSWD_LEN 35

/* PostgreSQL's pg_md5_encrypt: "md5" + hex(md5(passwd || salt)); out holds 36 bytes. */
bool md5_encrypt(const char *passwd, const unsigned char *salt, size_t salt_len, char out[36]);
/* Stored form for a user: "md5" + hex(md5(password || username)). */
bool md5_password_hash(const char *password, const char *user, char out[36]);
/* True if s is "md5" followed by exactly 32 lowercase hex digits. */
bool md5_is_hashed(const char *s);
/* Server side check: stored is "md5<32 hex>" (stored_is_md5) or a plain
 * password; response is what the client sent to a 4-byte salt challenge.
 * Constant-time. An empty or malformed stored secret never matches. */
bool md5_verify_response(const char *stored, bool stored_is_md5, const char *user,
			 const unsigned char salt[4], const char *response);
/* Client side: answer an upstream AuthenticationMD5Password with a plain
 * password, or with an already md5-hashed stored secret (md5_is_hashed).
 * out holds 36 bytes. */
bool md5_client_response(const char *secret, const char *user, const unsigned char salt[4], char out[36]);
#endif
