/* Unit tests for core/sha256.c: the FIPS 180-2 example vectors, RFC 4231's
 * HMAC-SHA-256 cases, and agreement with OpenSSL for every length around the
 * block and padding boundaries, fed whole and in pieces; all of it with the
 * portable block function and with the SHA-NI one, and the two block
 * functions against each other on random blocks and states. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "core/sha256_block.h"
#include "unit.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_digest(const void *data, size_t len, const char *want)
{
	unsigned char d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	sha256_digest(data, len, d);
	hex(d, sizeof(d), h);
	CHECK_STR(h, want);
}

static void test_vectors(void)
{
	check_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check_digest(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	struct sha256_ctx c;
	unsigned char chunk[1000], d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&c);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c, chunk, sizeof(chunk));
	sha256_final(&c, d);
	hex(d, sizeof(d), h);
	CHECK_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void check_hmac(const void *key, size_t keylen, const char *data, const char *want)
{
	unsigned char d[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	hmac_sha256_digest(key, keylen, data, strlen(data), d);
	hex(d, sizeof(d), h);
	CHECK_STR(h, want);
}

static void test_hmac_rfc4231(void)
{
	unsigned char k1[20], k6[131];
	memset(k1, 0x0b, sizeof(k1));
	memset(k6, 0xaa, sizeof(k6));
	check_hmac(k1, sizeof(k1), "Hi There",
		   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	check_hmac("Jefe", 4, "what do ya want for nothing?",
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	check_hmac(k6, sizeof(k6), "Test Using Larger Than Block-Size Key - Hash Key First",
		   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_against_openssl(void)
{
	unsigned char buf[300], key[100], mine[SHA256_LEN], theirs[SHA256_LEN];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 37 + 1);
	int digest_ok = 0, split_ok = 0, hmac_ok = 0;
	for (size_t len = 0; len <= sizeof(buf); len++) {
		unsigned int olen = 0;
		EVP_Digest(buf, len, theirs, &olen, EVP_sha256(), NULL);
		sha256_digest(buf, len, mine);
		digest_ok += memcmp(mine, theirs, SHA256_LEN) == 0;
		struct sha256_ctx c;
		sha256_init(&c);
		for (size_t at = 0; at < len; at += 1 + at % 7) {
			size_t n = 1 + at % 7 < len - at ? 1 + at % 7 : len - at;
			sha256_update(&c, buf + at, n);
		}
		sha256_final(&c, mine);
		split_ok += memcmp(mine, theirs, SHA256_LEN) == 0;
		size_t klen = len % sizeof(key);
		HMAC(EVP_sha256(), key, (int)klen, buf, len, theirs, &olen);
		hmac_sha256_digest(key, klen, buf, len, mine);
		hmac_ok += memcmp(mine, theirs, SHA256_LEN) == 0;
	}
	CHECK(digest_ok == (int)sizeof(buf) + 1);
	CHECK(split_ok == (int)sizeof(buf) + 1);
	CHECK(hmac_ok == (int)sizeof(buf) + 1);
}

static void test_pbkdf2(void)
{
	/* RFC 7914, section 11: PBKDF2-HMAC-SHA256 ("passwd", "salt", c = 1), first 32 bytes. */
	unsigned char mine[SHA256_LEN], theirs[SHA256_LEN];
	char h[2 * SHA256_LEN + 1];
	pbkdf2_sha256("passwd", 6, "salt", 4, 1, mine);
	hex(mine, sizeof(mine), h);
	CHECK_STR(h, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
	/* SCRAM's 4096 iterations, and odd lengths (a key longer than a block), against OpenSSL. */
	const char *pws[] = { "pencil", "",
			      "a much longer password that is longer than one block of sixty-four bytes" };
	const unsigned iters[] = { 4096, 1, 2 };
	int same = 0;
	for (int i = 0; i < 3; i++) {
		pbkdf2_sha256(pws[i], strlen(pws[i]), "QSXCR+Q6sek8bf92", 16, iters[i], mine);
		PKCS5_PBKDF2_HMAC(pws[i], (int)strlen(pws[i]), (const unsigned char *)"QSXCR+Q6sek8bf92", 16,
				  (int)iters[i], EVP_sha256(), SHA256_LEN, theirs);
		same += memcmp(mine, theirs, SHA256_LEN) == 0;
	}
	CHECK(same == 3);
	/* A prepared key gives the one-shot HMAC. */
	struct hmac_sha256_key k;
	hmac_sha256_prepare(&k, "Jefe", 4);
	hmac_sha256_keyed(&k, "what do ya want for nothing?", 28, mine);
	hex(mine, sizeof(mine), h);
	CHECK_STR(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void run_all(void)
{
	test_pbkdf2();
	test_vectors();
	test_hmac_rfc4231();
	test_against_openssl();
}

/* Random states and runs of 1-8 blocks: both block functions agree. */
static void test_shani_against_portable(void)
{
	unsigned char blocks[8 * SHA256_BLOCK];
	int same = 0, runs = 2000;
	srand(13);
	for (int r = 0; r < runs; r++) {
		uint32_t a[8], b[8];
		for (int i = 0; i < 8; i++)
			a[i] = b[i] = (uint32_t)rand() << 16 ^ (uint32_t)rand();
		size_t n = 1 + (size_t)(r % 8);
		for (size_t i = 0; i < n * SHA256_BLOCK; i++)
			blocks[i] = (unsigned char)rand();
		sha256_blocks_portable(a, blocks, n);
		sha256_blocks_shani(b, blocks, n);
		same += memcmp(a, b, sizeof(a)) == 0;
	}
	CHECK(same == runs);
}

int main(void)
{
	CHECK(!sha256_use_shani(false));
	run_all();
	if (sha256_use_shani(true)) {
		run_all();
		test_shani_against_portable();
	} else {
		printf("test_sha256: this CPU has no SHA-NI; only the portable block function was tested\n");
	}
	return unit_finish("test_sha256");
}
