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
