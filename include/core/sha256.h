/* SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) of our own, for the
 * SCRAM exchange on the login path: a login computes two HMACs and one hash
 * of short inputs, where OpenSSL 3's EVP layer fetches algorithms, allocates
 * about eight blocks and takes locks per call, and initialises its providers
 * (2 MB of resident memory) on first use. Everything is on the stack. */
#ifndef TB_CORE_SHA256_H
#define TB_CORE_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64

struct sha256_ctx {
	uint32_t h[8];
	uint64_t total;              /* bytes hashed */
	unsigned char buf[SHA256_BLOCK];
	size_t used;                 /* bytes in buf */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN]);
void sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN]);
void hmac_sha256_digest(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN]);
#endif
