#include "core/sha256.h"

#include <string.h>

#include "core/sha256_block.h"
#include "core/util.h"

/* The first 32 bits of the fractional parts of the cube roots of the first
 * 64 primes (FIPS 180-4, 4.2.2). */
const uint32_t sha256_round_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void store_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

#define BSIG0(x) (ror(x, 2) ^ ror(x, 13) ^ ror(x, 22))
#define BSIG1(x) (ror(x, 6) ^ ror(x, 11) ^ ror(x, 25))
#define SSIG0(x) (ror(x, 7) ^ ror(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ror(x, 17) ^ ror(x, 19) ^ ((x) >> 10))

/* One round with the working variables named in their rotated order, so an
 * unrolled group of eight needs no moves between rounds. */
#define ROUND(a, b, c, d, e, f, g, h, t) \
	do { \
		uint32_t t1_ = h + BSIG1(e) + ((e & f) ^ (~e & g)) + sha256_round_k[t] + w[t]; \
		d += t1_; \
		h = t1_ + BSIG0(a) + ((a & b) ^ (a & c) ^ (b & c)); \
	} while (0)

/* One 64-byte block (FIPS 180-4, 6.2.2). */
static void compress_portable(uint32_t st[8], const unsigned char *block)
{
	uint32_t w[64];
	for (int t = 0; t < 16; t++)
		w[t] = load_be32(block + 4 * t);
	for (int t = 16; t < 64; t++)
		w[t] = SSIG1(w[t - 2]) + w[t - 7] + SSIG0(w[t - 15]) + w[t - 16];
	uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
	for (int t = 0; t < 64; t += 8) {
		ROUND(a, b, c, d, e, f, g, h, t);
		ROUND(h, a, b, c, d, e, f, g, t + 1);
		ROUND(g, h, a, b, c, d, e, f, t + 2);
		ROUND(f, g, h, a, b, c, d, e, t + 3);
		ROUND(e, f, g, h, a, b, c, d, t + 4);
		ROUND(d, e, f, g, h, a, b, c, t + 5);
		ROUND(c, d, e, f, g, h, a, b, t + 6);
		ROUND(b, c, d, e, f, g, h, a, t + 7);
	}
	st[0] += a;
	st[1] += b;
	st[2] += c;
	st[3] += d;
	st[4] += e;
	st[5] += f;
	st[6] += g;
	st[7] += h;
	secret_wipe(w, sizeof(w)); /* the schedule of a key block is key material */
}

void sha256_blocks_portable(uint32_t st[8], const unsigned char *blocks, size_t nblocks)
{
	for (; nblocks; nblocks--, blocks += SHA256_BLOCK)
		compress_portable(st, blocks);
}

/* SHA-NI makes a block about 4 x cheaper; a SCRAM login hashes 9 to 13. */
static sha256_blocks_fn *blocks_fn = sha256_blocks_portable;

bool sha256_use_shani(bool want)
{
	bool on = want && sha256_cpu_has_shani();
	blocks_fn = on ? sha256_blocks_shani : sha256_blocks_portable;
	return on;
}

/* The cpuid check, once before main. */
__attribute__((constructor)) static void select_blocks_fn(void)
{
	sha256_use_shani(true);
}

static inline void compress(uint32_t st[8], const unsigned char *block)
{
	blocks_fn(st, block, 1);
}

void sha256_init(struct sha256_ctx *c)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	memcpy(c->h, iv, sizeof(iv));
	c->total = 0;
	c->used = 0;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	c->total += len;
	if (c->used) {
		size_t take = SHA256_BLOCK - c->used < len ? SHA256_BLOCK - c->used : len;
		memcpy(c->buf + c->used, p, take);
		c->used += take;
		p += take;
		len -= take;
		if (c->used < SHA256_BLOCK)
			return;
		compress(c->h, c->buf);
		c->used = 0;
	}
	size_t whole = len / SHA256_BLOCK;
	if (whole)
		blocks_fn(c->h, p, whole);
	p += whole * SHA256_BLOCK;
	len -= whole * SHA256_BLOCK;
	memcpy(c->buf, p, len);
	c->used = len;
}

void sha256_final(struct sha256_ctx *c, unsigned char out[SHA256_LEN])
{
	uint64_t bits = c->total * 8;
	c->buf[c->used++] = 0x80;
	if (c->used > SHA256_BLOCK - 8) {
		memset(c->buf + c->used, 0, SHA256_BLOCK - c->used);
		compress(c->h, c->buf);
		c->used = 0;
	}
	memset(c->buf + c->used, 0, SHA256_BLOCK - 8 - c->used);
	for (int i = 0; i < 8; i++)
		c->buf[SHA256_BLOCK - 1 - i] = (unsigned char)(bits >> (8 * i));
	compress(c->h, c->buf);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, c->h[i]);
	secret_wipe(c, sizeof(*c));
}

void sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, out);
}

/* HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), K0 = K padded to a block
 * (hashed first if longer than a block). */
void hmac_sha256_prepare(struct hmac_sha256_key *k, const void *key, size_t keylen)
{
	unsigned char k0[SHA256_BLOCK] = { 0 }, pad[SHA256_BLOCK];
	if (keylen > SHA256_BLOCK)
		sha256_digest(key, keylen, k0);
	else if (keylen)
		memcpy(k0, key, keylen);
	struct sha256_ctx c;
	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k0[i] ^ 0x36;
	sha256_init(&c);
	compress(c.h, pad);
	memcpy(k->inner, c.h, sizeof(k->inner));
	for (int i = 0; i < SHA256_BLOCK; i++)
		pad[i] = k0[i] ^ 0x5c;
	sha256_init(&c);
	compress(c.h, pad);
	memcpy(k->outer, c.h, sizeof(k->outer));
	secret_wipe(&c, sizeof(c));
	secret_wipe(k0, sizeof(k0));
	secret_wipe(pad, sizeof(pad));
}

/* A context that has hashed one block: the state a prepared key keeps. */
static void resume(struct sha256_ctx *c, const uint32_t h[8])
{
	memcpy(c->h, h, sizeof(c->h));
	c->total = SHA256_BLOCK;
	c->used = 0;
}

void hmac_sha256_keyed(const struct hmac_sha256_key *k, const void *data, size_t len,
		       unsigned char out[SHA256_LEN])
{
	struct sha256_ctx c;
	unsigned char inner[SHA256_LEN];
	resume(&c, k->inner);
	sha256_update(&c, data, len);
	sha256_final(&c, inner);
	resume(&c, k->outer);
	sha256_update(&c, inner, sizeof(inner));
	sha256_final(&c, out);
	secret_wipe(inner, sizeof(inner));
}

void hmac_sha256_digest(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN])
{
	struct hmac_sha256_key k;
	hmac_sha256_prepare(&k, key, keylen);
	hmac_sha256_keyed(&k, data, len, out);
	secret_wipe(&k, sizeof(k));
}

/* T1 = U1 ^ U2 ^ ... ^ Uc, U1 = HMAC(P, S || INT(1)), Ui = HMAC(P, Ui-1). */
void pbkdf2_sha256(const void *password, size_t pwlen, const void *salt, size_t saltlen, unsigned iterations,
		   unsigned char out[SHA256_LEN])
{
	static const unsigned char block_one[4] = { 0, 0, 0, 1 };
	struct hmac_sha256_key k;
	struct sha256_ctx c;
	unsigned char u[SHA256_LEN];
	hmac_sha256_prepare(&k, password, pwlen);
	resume(&c, k.inner);
	sha256_update(&c, salt, saltlen);
	sha256_update(&c, block_one, sizeof(block_one));
	sha256_final(&c, u);
	resume(&c, k.outer);
	sha256_update(&c, u, sizeof(u));
	sha256_final(&c, u);
	memcpy(out, u, SHA256_LEN);
	for (unsigned i = 1; i < iterations; i++) {
		hmac_sha256_keyed(&k, u, sizeof(u), u);
		for (int j = 0; j < SHA256_LEN; j++)
			out[j] ^= u[j];
	}
	secret_wipe(&k, sizeof(k));
	secret_wipe(u, sizeof(u));
}
