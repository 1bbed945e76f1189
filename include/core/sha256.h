/* SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) of our own, for the
 * SCRAM exchange on the login path: a login computes two HMACs and one hash
 * of short inputs, where OpenSSL 3's EVP layer fetches algorithms, allocates
 * about eight blocks and takes locks per call, and initialises its providers
 * (2 MB of resident memory) on first use. Everything is on the stack.
 * PBKDF2 (RFC 8018) is here too, so that a server login with a password
 * does not initialise those providers either. */
#ifndef TB_CORE_SHA256_H
#define TB_CORE_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64

struct sha256_ctx {
	uint32_t h[8];
	uint64_t total; /* bytes hashed */
	unsigned char buf[SHA256_BLOCK];
	size_t used; /* bytes in buf */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN]);
void sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN]);
/* A key's two padded blocks, hashed once: each HMAC under it then costs two
 * compressions fewer (PBKDF2 runs thousands under one key). Secret. */
struct hmac_sha256_key {
	uint32_t inner[8], outer[8];
};
void hmac_sha256_prepare(struct hmac_sha256_key *k, const void *key, size_t keylen);
void hmac_sha256_keyed(const struct hmac_sha256_key *k, const void *data, size_t len,
		       unsigned char out[SHA256_LEN]);
/* PBKDF2-HMAC-SHA-256 with a 32-byte output (SCRAM's SaltedPassword). */
void pbkdf2_sha256(const void *password, size_t pwlen, const void *salt, size_t saltlen, unsigned iterations,
		   unsigned char out[SHA256_LEN]);
void hmac_sha256_digest(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN]);
#endif
