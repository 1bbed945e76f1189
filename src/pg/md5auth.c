/* md5 authentication as PostgreSQL does it: the stored secret is
 * md5(password || user), and the wire response is md5(hex(stored) || salt). */
#include "pg/md5auth.h"
#include "core/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define MD5_DIGEST 16
#define MD5_SALT_LEN 4

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
}

/* Digest in two parts so the password is never copied into a scratch buffer. */
static bool md5_two(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[MD5_DIGEST])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int olen = 0;
	bool ok;

	if (!ctx)
		return false;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
	     EVP_DigestUpdate(ctx, b, blen) == 1 && EVP_DigestFinal_ex(ctx, out, &olen) == 1 &&
	     olen == MD5_DIGEST;
	EVP_MD_CTX_free(ctx);
	return ok;
}

bool md5_encrypt(const char *passwd, const unsigned char *salt, size_t salt_len, char out[36])
{
	unsigned char digest[MD5_DIGEST];

	if (!out)
		return false;
	out[0] = '\0';
	if (!passwd || (!salt && salt_len))
		return false;
	if (!md5_two(passwd, strlen(passwd), salt ? (const void *)salt : "", salt_len, digest))
		return false;
	memcpy(out, "md5", 3);
	hex_encode(digest, MD5_DIGEST, out + 3);
	out[MD5_PASSWD_LEN] = '\0';
	secret_wipe(digest, sizeof(digest));
	return true;
}

bool md5_password_hash(const char *password, const char *user, char out[36])
{
	if (!user) {
		if (out)
			out[0] = '\0';
		return false;
	}
	return md5_encrypt(password, (const unsigned char *)user, strlen(user), out);
}

bool md5_is_hashed(const char *s)
{
	if (!s || strncmp(s, "md5", 3) != 0)
		return false;
	for (size_t i = 3; i < MD5_PASSWD_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[MD5_PASSWD_LEN] == '\0';
}

/* Response for a plain password: md5(hex(md5(password || user)) || salt). */
static bool plain_response(const char *password, const char *user, const unsigned char *salt, char out[36])
{
	char hashed[MD5_PASSWD_LEN + 1];
	bool ok = md5_password_hash(password, user, hashed) &&
		  md5_encrypt(hashed + 3, salt, MD5_SALT_LEN, out);

	secret_wipe(hashed, sizeof(hashed));
	return ok;
}

bool md5_client_response(const char *secret, const char *user, const unsigned char salt[4], char out[36])
{
	if (!out)
		return false;
	out[0] = '\0';
	if (!secret || !user || !salt)
		return false;
	/* Like PgBouncer: a secret of the md5 shape is taken to be already hashed. */
	if (md5_is_hashed(secret))
		return md5_encrypt(secret + 3, salt, MD5_SALT_LEN, out);
	return plain_response(secret, user, salt, out);
}

bool md5_verify_response(const char *stored, bool stored_is_md5, const char *user,
			 const unsigned char salt[4], const char *response)
{
	char expected[MD5_PASSWD_LEN + 1];
	bool ok;

	/* PostgreSQL never accepts an empty password; neither do we. */
	if (!stored || !*stored || !user || !salt || !response)
		return false;
	if (stored_is_md5) {
		if (!md5_is_hashed(stored) || !md5_encrypt(stored + 3, salt, MD5_SALT_LEN, expected))
			return false;
	} else if (!plain_response(stored, user, salt, expected)) {
		return false;
	}
	ok = strnlen(response, MD5_PASSWD_LEN + 1) == MD5_PASSWD_LEN &&
	     CRYPTO_memcmp(expected, response, MD5_PASSWD_LEN) == 0;
	secret_wipe(expected, sizeof(expected));
	return ok;
}
