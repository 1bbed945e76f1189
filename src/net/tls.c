#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/util.h"

static void tls_err(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char buf[160] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "", buf);
	ERR_clear_error();
}

static int version_of(const char *name)
{
	if (str_ieq(name, "tlsv1.0") || str_ieq(name, "tlsv1"))
		return TLS1_VERSION;
	if (str_ieq(name, "tlsv1.1"))
		return TLS1_1_VERSION;
	if (str_ieq(name, "tlsv1.2"))
		return TLS1_2_VERSION;
	if (str_ieq(name, "tlsv1.3"))
		return TLS1_3_VERSION;
	return -1;
}

bool tls_protocol_range(const char *spec, int *min_version, int *max_version)
{
	if (!spec || !*spec || str_ieq(spec, "secure")) {
		*min_version = TLS1_2_VERSION;
		*max_version = 0;
		return true;
	}
	if (str_ieq(spec, "all") || str_ieq(spec, "legacy")) {
		*min_version = TLS1_VERSION;
		*max_version = 0;
		return true;
	}
	int lo = 0, hi = 0;
	char tmp[128];
	if (!strlcpy_ok(tmp, spec, sizeof(tmp)))
		return false;
	char *save = NULL;
	for (char *tok = strtok_r(tmp, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		int v = version_of(tok);
		if (v < 0)
			return false;
		if (!lo || v < lo)
			lo = v;
		if (v > hi)
			hi = v;
	}
	if (!lo)
		return false;
	*min_version = lo;
	*max_version = hi;
	return true;
}

static bool set_protocols(SSL_CTX *ctx, const char *spec, char *err, size_t errlen)
{
	int lo, hi;
	if (!tls_protocol_range(spec, &lo, &hi)) {
		snprintf(err, errlen, "invalid TLS protocols \"%s\"", spec);
		return false;
	}
	SSL_CTX_set_min_proto_version(ctx, lo);
	SSL_CTX_set_max_proto_version(ctx, hi);
	return true;
}

static bool load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
	if (cert && *cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_err(err, errlen, "cannot load certificate", cert);
		return false;
	}
	if (key && *key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, "cannot load private key", key);
		return false;
	}
	if (cert && *cert && key && *key && SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "private key does not match certificate", cert);
		return false;
	}
	return true;
}

/* PgBouncer's cipher shortcuts: default, secure, fast and normal all keep
 * OpenSSL's defaults; all enables everything. A TLS 1.3 list left empty
 * keeps OpenSSL's suites. */
static bool set_ciphers(SSL_CTX *ctx, const char *side, const char *tls12, const char *tls13, char *err,
			size_t errlen)
{
	static const char *const keep[] = { "default", "secure", "fast", "normal" };
	bool keep12 = !tls12 || !*tls12;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		keep12 = keep12 || str_ieq(tls12, keep[i]);
	char what[64];
	if (!keep12 && SSL_CTX_set_cipher_list(ctx, str_ieq(tls12, "all") ? "ALL" : tls12) != 1) {
		snprintf(what, sizeof(what), "invalid %s_tls_ciphers", side);
		tls_err(err, errlen, what, tls12);
		return false;
	}
	if (tls13 && *tls13 && SSL_CTX_set_ciphersuites(ctx, tls13) != 1) {
		snprintf(what, sizeof(what), "invalid %s_tls13_ciphers", side);
		tls_err(err, errlen, what, tls13);
		return false;
	}
	return true;
}

/* client_tls_ecdhcurve and client_tls_dheparams (PgBouncer's values). */
static bool set_key_exchange(SSL_CTX *ctx, const struct tb_config *cfg, char *err, size_t errlen)
{
	const char *curve = cfg->client_tls_ecdhcurve, *dh = cfg->client_tls_dheparams;
	if (curve && *curve && !str_ieq(curve, "auto")) {
		/* none: no elliptic curves, finite-field groups only */
		const char *groups = str_ieq(curve, "none") ? "ffdhe2048:ffdhe3072:ffdhe4096" : curve;
		if (SSL_CTX_set1_groups_list(ctx, groups) != 1) {
			tls_err(err, errlen, "invalid client_tls_ecdhcurve", curve);
			return false;
		}
	}
	if (dh && str_ieq(dh, "none"))
		SSL_CTX_set_dh_auto(ctx, 0);
	else if (!dh || !*dh || str_ieq(dh, "auto") || str_ieq(dh, "legacy"))
		SSL_CTX_set_dh_auto(ctx, 1);
	else {
		snprintf(err, errlen, "invalid client_tls_dheparams \"%s\" (expected auto, legacy or none)",
			 dh);
		return false;
	}
	return true;
}

static SSL_CTX *ctx_common(const SSL_METHOD *m)
{
	SSL_CTX *ctx = SSL_CTX_new(m);
	if (!ctx)
		return NULL;
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	return ctx;
}

SSL_CTX *tls_accept_ctx_new(const struct tb_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_common(TLS_server_method());
	if (!ctx) {
		tls_err(err, errlen, "cannot create TLS context", NULL);
		return NULL;
	}
	if (!set_protocols(ctx, cfg->client_tls_protocols, err, errlen) ||
	    !load_pair(ctx, cfg->client_tls_cert_file, cfg->client_tls_key_file, err, errlen))
		goto fail;
	if (!set_ciphers(ctx, "client", cfg->client_tls_ciphers, cfg->client_tls13_ciphers, err, errlen) ||
	    !set_key_exchange(ctx, cfg, err, errlen))
		goto fail;
	if (cfg->client_tls_ca_file && *cfg->client_tls_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->client_tls_ca_file, NULL) != 1) {
			tls_err(err, errlen, "cannot load client_tls_ca_file", cfg->client_tls_ca_file);
			goto fail;
		}
		int mode = SSL_VERIFY_PEER;
		if (cfg->client_tls_sslmode >= TLS_MODE_VERIFY_CA)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_connect_ctx_new(const struct tb_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_common(TLS_client_method());
	if (!ctx) {
		tls_err(err, errlen, "cannot create TLS context", NULL);
		return NULL;
	}
	if (!set_protocols(ctx, cfg->server_tls_protocols, err, errlen) ||
	    !load_pair(ctx, cfg->server_tls_cert_file, cfg->server_tls_key_file, err, errlen) ||
	    !set_ciphers(ctx, "server", cfg->server_tls_ciphers, cfg->server_tls13_ciphers, err, errlen))
		goto fail;
	if (cfg->server_tls_ca_file && *cfg->server_tls_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->server_tls_ca_file, NULL) != 1) {
			tls_err(err, errlen, "cannot load server_tls_ca_file", cfg->server_tls_ca_file);
			goto fail;
		}
	} else {
		SSL_CTX_set_default_verify_paths(ctx);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *tls_accept_new(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return NULL;
	SSL_set_fd(ssl, fd);
	SSL_set_accept_state(ssl);
	return ssl;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

SSL *tls_connect_new(SSL_CTX *ctx, int fd, const char *host, enum tls_mode mode, char *err, size_t errlen)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl) {
		tls_err(err, errlen, "cannot create TLS session", NULL);
		return NULL;
	}
	SSL_set_fd(ssl, fd);
	SSL_set_connect_state(ssl);
	bool ip = host && is_ip_literal(host);
	/* Cloud front ends route on SNI; an IP literal must not be sent as SNI. */
	if (host && *host && !ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (mode >= TLS_MODE_VERIFY_CA) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (mode == TLS_MODE_VERIFY_FULL && host) {
			X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
			int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
				    : X509_VERIFY_PARAM_set1_host(vp, host, 0);
			if (ok != 1) {
				tls_err(err, errlen, "cannot set the host name to verify", host);
				SSL_free(ssl);
				return NULL;
			}
		}
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	return ssl;
}

char *tls_peer_common_name(SSL *ssl)
{
	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return NULL;
	char cn[256];
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
	X509_free(cert);
	return n > 0 ? xstrdup(cn) : NULL;
}

static void cert_expiry(X509 *cert, struct tls_peer_info *info)
{
	struct tm tm;
	const ASN1_TIME *na = X509_get0_notAfter(cert);
	if (!na || ASN1_TIME_to_tm(na, &tm) != 1)
		return;
	strftime(info->not_after, sizeof(info->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int days = 0, secs = 0;
	if (ASN1_TIME_diff(&days, &secs, NULL, na) == 1)
		info->days_left = days;
}

bool tls_peer_describe(SSL *ssl, struct tls_peer_info *info)
{
	memset(info, 0, sizeof(*info));
	if (!ssl)
		return false;
	snprintf(info->protocol, sizeof(info->protocol), "%s", SSL_get_version(ssl));
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (cert) {
		X509_NAME_oneline(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
		cert_expiry(cert, info);
		X509_free(cert);
	}
	long v = SSL_get_verify_result(ssl);
	info->verify_ok = v == X509_V_OK && cert;
	snprintf(info->verify, sizeof(info->verify), "%s",
		 !cert            ? "no certificate"
		 : v == X509_V_OK ? "ok"
				  : X509_verify_cert_error_string(v));
	return true;
}

bool tls_error_is_version(unsigned long e)
{
	int r = ERR_GET_REASON(e);
	return e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	       (r == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION || r == SSL_R_UNSUPPORTED_PROTOCOL ||
		r == SSL_R_WRONG_VERSION_NUMBER);
}
