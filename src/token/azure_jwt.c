/* JWTs for Entra ID without I/O: the client assertion of a certificate
 * credential (spec §2.5) and the user name carried by an access token
 * (§2.10). Keys stay in OpenSSL objects; decoded payloads are wiped. */
#include "token/azure_parse.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/encode.h"
#include "core/util.h"
#include "token/jwt.h"

#define MAX_CERTS 16
#define MIRID_SUFFIX "/providers/microsoft.managedidentity/userassignedidentities"

struct azure_cert {
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* [0] matches key */
};

/* ---- loading ---- */

static int pem_password(char *buf, int size, int rwflag, void *u)
{
	const char *pw = u;
	size_t n = pw ? strlen(pw) : 0;
	if (!pw || n > (size_t)size)
		return -1;
	memcpy(buf, pw, n);
	return (int)n;
}

static bool load_pem(const void *data, size_t len, const char *password, EVP_PKEY **key, STACK_OF(X509) * all)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	*key = b ? PEM_read_bio_PrivateKey(b, NULL, pem_password, (void *)password) : NULL;
	BIO_free(b);
	b = BIO_new_mem_buf(data, (int)len);
	X509 *x;
	while (b && sk_X509_num(all) < MAX_CERTS && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		sk_X509_push(all, x);
	BIO_free(b);
	return *key != NULL;
}

static bool load_p12(const void *data, size_t len, const char *password, EVP_PKEY **key, STACK_OF(X509) * all)
{
	const unsigned char *p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	bool ok = p12 && PKCS12_parse(p12, password ? password : "", key, &cert, &ca) && *key;
	PKCS12_free(p12);
	if (cert)
		sk_X509_push(all, cert);
	while (ca && sk_X509_num(ca) > 0)
		sk_X509_push(all, sk_X509_shift(ca));
	sk_X509_pop_free(ca, X509_free);
	return ok;
}

/* Moves the certificate that matches key to the front. */
static bool leaf_first(EVP_PKEY *key, STACK_OF(X509) * all)
{
	for (int i = 0; i < sk_X509_num(all); i++) {
		X509 *x = sk_X509_value(all, i);
		if (X509_check_private_key(x, key) == 1) {
			sk_X509_delete(all, i);
			sk_X509_unshift(all, x);
			return true;
		}
	}
	return false;
}

struct azure_cert *azure_cert_load(const void *data, size_t len, const char *password, char *err,
				   size_t errlen)
{
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *all = sk_X509_new_null();
	bool pem = len >= 10 && memmem(data, len, "-----BEGIN", 10) != NULL;
	bool ok = pem ? load_pem(data, len, password, &key, all) : load_p12(data, len, password, &key, all);
	const char *why = NULL;
	if (!ok)
		why = pem ? "no readable private key (a PEM file needs the key and the certificate; an "
			    "encrypted key needs certificate_password)"
			  : "neither PEM nor a PKCS#12 file this password opens";
	else if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		why = "the private key is not an RSA key (Entra client assertions are RS256)";
	else if (sk_X509_num(all) == 0)
		why = "no certificate next to the private key";
	else if (!leaf_first(key, all))
		why = "no certificate in the file matches its private key";
	ERR_clear_error();
	if (why) {
		err_set(err, errlen, "%s", why);
		EVP_PKEY_free(key);
		sk_X509_pop_free(all, X509_free);
		return NULL;
	}
	struct azure_cert *c = xcalloc(1, sizeof(*c));
	c->key = key;
	c->chain = all;
	return c;
}

void azure_cert_free(struct azure_cert *c)
{
	if (!c)
		return;
	EVP_PKEY_free(c->key);
	sk_X509_pop_free(c->chain, X509_free);
	free(c);
}

/* ---- the assertion ---- */

static char *cert_thumbprint(X509 *x, const EVP_MD *md)
{
	unsigned char buf[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!X509_digest(x, md, buf, &n))
		return NULL;
	return base64_encode(buf, n, true);
}

static json_t *chain_array(STACK_OF(X509) * chain)
{
	json_t *arr = json_array();
	for (int i = 0; i < sk_X509_num(chain); i++) {
		unsigned char *der = NULL;
		int n = i2d_X509(sk_X509_value(chain, i), &der);
		if (n <= 0)
			continue;
		char *b64 = base64_encode(der, (size_t)n, false);
		json_array_append_new(arr, json_string(b64));
		free(b64);
		OPENSSL_free(der);
	}
	return arr;
}

static json_t *assertion_header(const struct azure_cert *c, const struct azure_assertion *a)
{
	X509 *leaf = sk_X509_value(c->chain, 0);
	bool ps = a->alg == AZURE_JWT_PS256;
	char *thumb = cert_thumbprint(leaf, ps ? EVP_sha256() : EVP_sha1());
	if (!thumb)
		return NULL;
	json_t *h = json_object();
	json_object_set_new(h, "alg", json_string(ps ? "PS256" : "RS256"));
	json_object_set_new(h, "typ", json_string("JWT"));
	json_object_set_new(h, ps ? "x5t#S256" : "x5t", json_string(thumb));
	if (a->send_chain)
		json_object_set_new(h, "x5c", chain_array(c->chain));
	free(thumb);
	return h;
}

static json_t *assertion_payload(const struct azure_assertion *a)
{
	json_t *p = json_object();
	json_object_set_new(p, "aud", json_string(a->audience));
	json_object_set_new(p, "iss", json_string(a->client_id));
	json_object_set_new(p, "sub", json_string(a->client_id));
	json_object_set_new(p, "jti", json_string(a->jti));
	json_object_set_new(p, "nbf", json_integer((json_int_t)a->now));
	json_object_set_new(p, "iat", json_integer((json_int_t)a->now));
	json_object_set_new(p, "exp", json_integer((json_int_t)(a->now + a->lifetime)));
	return p;
}

char *azure_client_assertion(const struct azure_cert *c, const struct azure_assertion *a, char *err,
			     size_t errlen)
{
	json_t *header = assertion_header(c, a);
	char *jwt = header ? jwt_sign(c->key, a->alg == AZURE_JWT_PS256 ? JWT_PS256 : JWT_RS256, header,
				      assertion_payload(a))
			   : NULL;
	if (!jwt)
		err_set(err, errlen, "could not sign the client assertion with the certificate's key");
	return jwt;
}

void azure_uuid_format(const unsigned char rnd[16], char out[37])
{
	unsigned char b[16];
	memcpy(b, rnd, 16);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- user names (§2.10) ---- */

/* The identity name from ".../providers/Microsoft.ManagedIdentity/
 * userAssignedIdentities/<name>", or NULL. */
static const char *mirid_name(const char *mirid)
{
	const char *slash = mirid ? strrchr(mirid, '/') : NULL;
	size_t m = strlen(MIRID_SUFFIX);
	if (!slash || !slash[1] || (size_t)(slash - mirid) < m)
		return NULL;
	return strncasecmp(slash - m, MIRID_SUFFIX, m) == 0 ? slash + 1 : NULL;
}

static const char *claim_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static char *payload_username(const json_t *claims)
{
	static const char *const order[] = { "upn", "preferred_username", "unique_name" };
	const char *name = mirid_name(claim_str(claims, "xms_mirid"));
	for (size_t i = 0; !name && i < sizeof(order) / sizeof(order[0]); i++)
		name = claim_str(claims, order[i]);
	return name ? xstrdup(name) : NULL;
}

char *azure_token_username(const char *token, size_t len, char *err, size_t errlen)
{
	const char *dot1 = memchr(token, '.', len);
	const char *start = dot1 ? dot1 + 1 : NULL;
	const char *dot2 = start ? memchr(start, '.', len - (size_t)(start - token)) : NULL;
	if (!dot2) {
		err_set(err, errlen, "the access token is not a JWT");
		return NULL;
	}
	size_t n = 0;
	unsigned char *raw = base64_decode_lenient(start, (size_t)(dot2 - start), &n);
	json_t *claims = raw ? json_loadb((const char *)raw, n, 0, NULL) : NULL;
	if (raw) {
		secret_wipe(raw, n);
		free(raw);
	}
	char *name = json_is_object(claims) ? payload_username(claims) : NULL;
	if (!json_is_object(claims))
		err_set(err, errlen, "the access token's payload is not a JSON object");
	else if (!name)
		err_set(err, errlen,
			"the access token names no user (no xms_mirid of a user-assigned "
			"identity, upn, preferred_username or unique_name)");
	json_decref(claims);
	return name;
}
