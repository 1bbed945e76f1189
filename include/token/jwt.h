/* Compact JSON Web Signatures (RFC 7515) without I/O: base64url, and
 * signing a header and payload with an RSA key (RS256 or PS256). Used for
 * Entra client assertions and Google's JWT-bearer grant. */
#ifndef TB_TOKEN_JWT_H
#define TB_TOKEN_JWT_H
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

enum jwt_alg {
	JWT_RS256, /* RSASSA-PKCS1-v1_5 with SHA-256 */
	JWT_PS256, /* RSASSA-PSS with SHA-256, salt = digest length */
};

/* "header.payload.signature" from the two JSON objects (serialised compact,
 * in insertion order; both references are consumed). NULL on failure. */
char *jwt_sign(EVP_PKEY *key, enum jwt_alg alg, json_t *header, json_t *payload);
/* Wipes every string inside a JSON document (a token response), then frees it. */
void json_secret_free(json_t *v);
#endif
