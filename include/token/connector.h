/* Connector mode (Cloud SQL §3.8, AlloyDB §3.9): what a server connection needs to
 * reach an instance the way Google's connectors do. A bundle is built from
 * the Admin API's answers: a TLS context (TLS 1.3 minimum, the ephemeral
 * client certificate and the process's RSA key, the instance's CA as the only
 * trust anchor), the address to dial, the identity the server certificate
 * must show, and when it all expires. Bundles are shared by reference. */
#ifndef TB_TOKEN_CONNECTOR_H
#define TB_TOKEN_CONNECTOR_H
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config-t.h"

struct connector_bundle {
	int refs;
	SSL_CTX *ctx;
	char *dial_host;      /* IP address or PSC DNS name */
	int port;             /* 3307 unless port= */
	char *server_cn;      /* Cloud SQL: "<project>:<instance>" (§3.8.3 rule 4); NULL: the
				      * certificate must name dial_host (AlloyDB, §3.9.3) */
	char *server_dns;     /* the instance's DNS name, or NULL */
	int mdx_auth;         /* AlloyDB: enum mdx_auth_type of the metadata exchange; 0: none */
	char *subject;        /* the client certificate's subject, for people */
	int64_t cert_expires; /* notAfter of the client certificate */
	int64_t expires_at;   /* the earlier of that and the embedded login token's expiry */
};
void connector_bundle_unref(struct connector_bundle *b);
struct connector_bundle *connector_bundle_ref(struct connector_bundle *b);
/* After the handshake: does the server certificate show the instance's
 * identity (DNS name, else or failing that the CN "project:instance")? */
bool connector_server_identity_ok(const struct connector_bundle *b, SSL *ssl, char *err, size_t errlen);

/* The process's RSA-2048 key for every ephemeral certificate: made once,
 * before the loop starts; freed (and so wiped) at shutdown. */
bool connector_key_init(char *err, size_t errlen);
void connector_key_free(void);
/* Its public half as a PEM SubjectPublicKeyInfo; caller frees. */
char *connector_public_pem(void);

/* ---- Cloud SQL Admin API, without I/O ---- */

struct cloudsql_name {
	char project[256], region[64], instance[128];
};
/* §3.8.1: PROJECT:REGION:INSTANCE, the project may hold one colon. */
bool cloudsql_parse_name(const char *s, struct cloudsql_name *out);

struct cloudsql_settings {
	char *ca_pem; /* serverCaCert.cert (may hold several certificates) */
	char *public_ip, *private_ip, *psc_dns, *dns_name;
	char *region, *version;
};
void cloudsql_settings_clear(struct cloudsql_settings *s);
/* connectSettings (§3.8.2 a); false with err when the answer is unusable. */
bool cloudsql_parse_settings(const char *body, size_t len, struct cloudsql_settings *out, char *err,
			     size_t errlen);
/* The rules of §3.8.2: region equal to the name's, a PostgreSQL version, an
 * address of the wanted type; *addr points into s. */
bool cloudsql_check_settings(const struct cloudsql_settings *s, const struct cloudsql_name *n,
			     enum connector_ip_type ip, const char **addr, char *err, size_t errlen);
/* generateEphemeralCert's certificate PEM (§3.8.2 b), malloc'd. */
char *cloudsql_parse_cert(const char *body, size_t len, char *err, size_t errlen);
/* Its request body; access_token only for automatic IAM login. */
char *cloudsql_cert_body(const char *public_pem, const char *access_token, size_t *len);
/* §3.8.2 c: the delay before the next re-send when the first request
 * (resend -1) or re-send resend (0-based) got status, or -1: no more (5
 * re-sends at most, only for status >= 500). jitter01 in [0,1). */
int64_t cloudsql_retry_delay_ms(int resend, long status, double jitter01);
/* §3.8.4 with §0.3.1 for short lifetimes: seconds before expiry to refresh. */
int64_t connector_refresh_margin(int64_t lifetime);

struct connector_spec {
	const char *cert_pem; /* the client certificate, then its chain */
	const char *ca_pem;   /* the trust anchors */
	const char *dial;
	int port;
	const char *server_cn, *server_dns;
	int64_t token_expires; /* a login token the material depends on, or 0 */
	int mdx_auth;
};
/* Builds the bundle; takes nothing over (copies what it keeps). */
struct connector_bundle *connector_bundle_new(const struct connector_spec *sp, char *err, size_t errlen);
#endif
