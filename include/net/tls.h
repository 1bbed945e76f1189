/* TLS contexts for both sides: accepting clients (client_tls_*) and
 * connecting upstream (server_tls_*), with verification per sslmode. */
#ifndef TB_NET_TLS_H
#define TB_NET_TLS_H
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config-t.h"

SSL_CTX *tls_accept_ctx_new(const struct tb_config *cfg, char *err, size_t errlen);
SSL_CTX *tls_connect_ctx_new(const struct tb_config *cfg, char *err, size_t errlen);
/* "secure" (TLS 1.2+), "all", "tlsv1.2", "tlsv1.3" or a comma list. */
bool tls_protocol_range(const char *spec, int *min_version, int *max_version);
SSL *tls_accept_new(SSL_CTX *ctx, int fd);
/* SNI and, for verify-full, host name (or IP) verification. */
SSL *tls_connect_new(SSL_CTX *ctx, int fd, const char *host, enum tls_mode mode, char *err, size_t errlen);
/* What a TLS session shows of its peer, for `tokenbouncer check`. */
struct tls_peer_info {
	char protocol[24];  /* "TLSv1.3"; empty before a handshake */
	char subject[256];  /* the certificate's subject, one line; empty: none */
	char not_after[32]; /* expiry, "YYYY-MM-DDTHH:MM:SSZ" */
	long days_left;
	char verify[160]; /* "ok" or the verification error */
	bool verify_ok;
};
/* Fills info from the session (after or during a handshake); false when
 * there is no session. */
bool tls_peer_describe(SSL *ssl, struct tls_peer_info *info);
/* Was this OpenSSL error a handshake refused over the protocol version
 * (the peer lacks every version this side allows)? */
bool tls_error_is_version(unsigned long e);
/* Common name of a verified client certificate, or NULL. Caller frees. */
char *tls_peer_common_name(SSL *ssl);
#endif
