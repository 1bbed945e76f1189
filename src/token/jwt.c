/* Compact JWS without I/O (see token/jwt.h). Signing goes through OpenSSL's
 * EVP interface so the key never leaves its object. */
#include "token/jwt.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/encode.h"
#include "core/util.h"

/* Overwrites every string in a parsed document before it is freed, so the
 * token does not linger in freed heap. jansson's strings are malloc'd. */
static void json_wipe(json_t *v)
{
	const char *key;
	json_t *child;
	size_t i;
	if (json_is_string(v)) {
		secret_wipe((char *)json_string_value(v), json_string_length(v));
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, child)
			json_wipe(child);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			json_wipe(child);
	}
}

void json_secret_free(json_t *v)
{
	if (v) {
		json_wipe(v);
		json_decref(v);
	}
}

static char *json_b64url(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!text)
		return NULL;
	char *out = base64_encode((const unsigned char *)text, strlen(text), true);
	free(text);
	return out;
}

/* RSASSA-PKCS1-v1_5 or RSASSA-PSS (salt = digest length, JWA) over SHA-256. */
static char *sign_b64url(EVP_PKEY *key, enum jwt_alg alg, const char *input)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *out = NULL;
	bool ok = md && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1;
	if (ok && alg == JWT_PS256)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
	ok = ok && EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) == 1;
	if (ok) {
		sig = xmalloc(siglen);
		ok = EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) == 1;
	}
	if (ok)
		out = base64_encode(sig, siglen, true);
	free(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return out;
}

char *jwt_sign(EVP_PKEY *key, enum jwt_alg alg, json_t *header, json_t *payload)
{
	char *h = header ? json_b64url(header) : NULL;
	char *p = payload ? json_b64url(payload) : NULL;
	char *signing = h && p ? xasprintf("%s.%s", h, p) : NULL;
	char *sig = signing ? sign_b64url(key, alg, signing) : NULL;
	char *jwt = sig ? xasprintf("%s.%s", signing, sig) : NULL;
	free(h);
	free(p);
	free(signing);
	free(sig);
	return jwt;
}
