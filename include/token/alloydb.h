/* AlloyDB connector pieces without I/O (spec §3.9): instance URIs and the
 * metadata exchange (MDX) frames sent right after the TLS handshake. */
#ifndef TB_TOKEN_ALLOYDB_H
#define TB_TOKEN_ALLOYDB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mdx_auth_type {
	MDX_AUTH_UNSPECIFIED = 0,
	MDX_AUTH_DB_NATIVE = 1,
	MDX_AUTH_AUTO_IAM = 2,
};

#define MDX_MAX_RESPONSE 4096

struct alloydb_name {
	char project[256], region[64], cluster[128], instance[128];
};
/* §3.9.1: projects/P/locations/R/clusters/C/instances/I (P may hold one colon). */
bool alloydb_parse_name(const char *s, struct alloydb_name *out);

struct alloydb_info {
	char *private_ip, *public_ip, *psc_dns;
};
void alloydb_info_clear(struct alloydb_info *i);
/* connectionInfo (§3.9.2 a): at least one address. */
bool alloydb_parse_info(const char *body, size_t len, struct alloydb_info *out, char *err, size_t errlen);
/* generateClientCertificate's answer: the chain as one PEM text (leaf
 * first) and the root CA; malloc'd. */
bool alloydb_parse_cert(const char *body, size_t len, char **chain_pem, char **ca_pem, char *err,
			size_t errlen);
char *alloydb_cert_body(const char *public_pem, int64_t duration_s, size_t *len);

/* The request frame: 4-byte big-endian length, then MetadataExchangeRequest
 * (user_agent = 1, auth_type = 2, oauth2_token = 3; defaults omitted).
 * malloc'd, *len set; the caller wipes it (it holds the token). */
unsigned char *mdx_request(const char *user_agent, enum mdx_auth_type auth, const char *token, size_t *len);
/* The response message (without its length prefix): true when
 * response_code is OK; else false with the server's error text in err. */
bool mdx_parse_response(const unsigned char *msg, size_t len, char *err, size_t errlen);
/* The length prefix of a response, or -1 when it exceeds MDX_MAX_RESPONSE. */
long mdx_frame_length(const unsigned char head[4]);
#endif
