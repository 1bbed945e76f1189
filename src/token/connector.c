/* Connector bundles (see token/connector.h): the process key, the TLS
 * context built from an ephemeral certificate and the instance's CA, and the
 * server identity rule of spec §3.8.3. */
#include "token/connector.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"

#define MAX_CA_CERTS 16

static EVP_PKEY *process_key;

bool connector_key_init(char *err, size_t errlen)
{
	if (process_key)
		return true;
	process_key = EVP_RSA_gen(2048);
	ERR_clear_error();
	if (!process_key)
		err_set(err, errlen, "could not generate the RSA-2048 key for connector certificates");
	return process_key != NULL;
}

void connector_key_free(void)
{
	EVP_PKEY_free(process_key);
	process_key = NULL;
}

char *connector_public_pem(void)
{
	BIO *b = process_key ? BIO_new(BIO_s_mem()) : NULL;
	char *out = NULL, *data;
	if (b && PEM_write_bio_PUBKEY(b, process_key) == 1) {
		long n = BIO_get_mem_data(b, &data);
		out = xstrndup(data, (size_t)n);
	}
	BIO_free(b);
	return out;
}

struct connector_bundle *connector_bundle_ref(struct connector_bundle *b)
{
	if (b)
		b->refs++;
	return b;
}

void connector_bundle_unref(struct connector_bundle *b)
{
	if (!b || --b->refs > 0)
		return;
	SSL_CTX_free(b->ctx);
	free(b->dial_host);
	free(b->server_cn);
	free(b->server_dns);
	free(b->subject);
	free(b);
}

static X509 *read_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* Every certificate of the PEM text as a trust anchor (CAS-based CAs send several). */
static int add_anchors(SSL_CTX *ctx, const char *pem)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int n = 0;
	while (b && n < MAX_CA_CERTS && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (X509_STORE_add_cert(store, x) == 1)
			n++;
		X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error();
	return n;
}

static int64_t not_after(X509 *x)
{
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* The certificates after the first: the chain sent with it (AlloyDB). */
static bool add_chain(SSL_CTX *ctx, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	bool ok = x != NULL;
	X509_free(x);
	for (int n = 0; ok && n < MAX_CA_CERTS && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)); n++) {
		ok = SSL_CTX_add1_chain_cert(ctx, x) == 1;
		X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error();
	return ok;
}

static SSL_CTX *bundle_ctx(X509 *cert, const char *cert_pem, const char *ca_pem, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *why = NULL;
	if (!ctx)
		why = "could not create a TLS context";
	else if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
		why = "this OpenSSL cannot do TLS 1.3";
	else if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, process_key) != 1 ||
		 SSL_CTX_check_private_key(ctx) != 1)
		why = "the ephemeral certificate does not match the process key";
	else if (!add_chain(ctx, cert_pem))
		why = "the certificate chain is not readable";
	else if (add_anchors(ctx, ca_pem) == 0)
		why = "the instance's CA certificate (serverCaCert) is not readable";
	ERR_clear_error();
	if (why) {
		err_set(err, errlen, "%s", why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

struct connector_bundle *connector_bundle_new(const struct connector_spec *sp, char *err, size_t errlen)
{
	X509 *cert = read_cert(sp->cert_pem);
	if (!cert || !process_key) {
		err_set(err, errlen, "the ephemeral certificate is not a PEM certificate");
		X509_free(cert);
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX *ctx = bundle_ctx(cert, sp->cert_pem, sp->ca_pem, err, errlen);
	if (!ctx) {
		X509_free(cert);
		return NULL;
	}
	struct connector_bundle *b = xcalloc(1, sizeof(*b));
	b->refs = 1;
	b->ctx = ctx;
	b->dial_host = xstrdup(sp->dial);
	b->port = sp->port;
	b->server_cn = sp->server_cn ? xstrdup(sp->server_cn) : NULL;
	b->server_dns = sp->server_dns ? xstrdup(sp->server_dns) : NULL;
	b->mdx_auth = sp->mdx_auth;
	char line[256];
	X509_NAME_oneline(X509_get_subject_name(cert), line, sizeof(line));
	b->subject = xstrdup(line);
	b->cert_expires = not_after(cert);
	int64_t te = sp->token_expires;
	b->expires_at = te > 0 && te < b->cert_expires ? te : b->cert_expires;
	X509_free(cert);
	return b;
}

static bool cn_is(X509 *x, const char *want)
{
	char cn[256];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	return n > 0 && (size_t)n == strlen(want) && strcmp(cn, want) == 0;
}

bool connector_server_identity_ok(const struct connector_bundle *b, SSL *ssl, char *err, size_t errlen)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (peer && !b->server_cn)
		return true; /* the handshake checked the name dialled */
	if (!peer) {
		err_set(err, errlen, "the server sent no certificate");
		return false;
	}
	if (b->server_dns && X509_check_host(peer, b->server_dns, 0, 0, NULL) == 1)
		return true;
	if (cn_is(peer, b->server_cn))
		return true;
	ERR_clear_error();
	err_set(err, errlen, "the server certificate names neither %s%s%s nor the instance \"%s\"",
		b->server_dns ? "the DNS name " : "", b->server_dns ? b->server_dns : "",
		b->server_dns ? "" : "a DNS name", b->server_cn);
	return false;
}
