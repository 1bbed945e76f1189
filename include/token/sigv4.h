/* AWS Signature Version 4 (spec/cloud-tokens.md §1.6, §1.3.3): query-string
 * presigning for RDS and DSQL tokens, and Authorization-header signing for
 * STS AssumeRole. Pure: the signing time is an input, nothing is logged, and
 * every buffer that held a secret key, a derived key or a session token is
 * wiped before it is freed. */
#ifndef TB_TOKEN_SIGV4_H
#define TB_TOKEN_SIGV4_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest presign lifetime AWS accepts (7 days). */
#define SIGV4_MAX_EXPIRES 604800
/* "20150830T123600Z" */
#define SIGV4_AMZ_DATE_LEN 16
#define SIGV4_SIGNATURE_LEN 64

/* Who signs, where, and when. */
struct sigv4_signer {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" when the keys are long-term */
	const char *region;        /* e.g. "us-east-1" */
	const char *service;       /* e.g. "rds-db", "dsql", "sts" */
	int64_t now;               /* signing time, epoch seconds (UTC) */
};

/* A query parameter or header. Keys and values are raw (not yet encoded)
 * bytes; a NULL value is the empty string. */
struct sigv4_param {
	const char *key;
	const char *value;
};

/* Intermediate values, for tests and debugging. Holds the session token
 * (it is part of the canonical request), so clear it with sigv4_trace_clear. */
struct sigv4_trace {
	char *canonical_request;
	char *string_to_sign;
	char signature[SIGV4_SIGNATURE_LEN + 1];
};
void sigv4_trace_clear(struct sigv4_trace *t);

/* The RFC 3986 encoding SigV4 wants is url_encode (core/encode.h). */

/* Query presigning (§1.6). host is the host header as configured, including
 * ":port" when one is signed; it is lower-cased in the canonical request and
 * written as given in the result. path is the decoded path ("/" when NULL);
 * it must already be normalised. params are the operation parameters, in the
 * order they appear in the result; they may not use the X-Amz-* names the
 * signer adds. expires is 1..SIGV4_MAX_EXPIRES.
 * Returns malloc'd "<host><path>?<params>&X-Amz-Algorithm=...&X-Amz-Signature=<hex>"
 * (no scheme), which contains the session token: free it with secret_free.
 * NULL on invalid input, with a reason in err. trace may be NULL. */
char *sigv4_presign(const struct sigv4_signer *s, const char *host, const char *path,
		    const struct sigv4_param *params, size_t nparams, int64_t expires,
		    struct sigv4_trace *trace, char *err, size_t errlen);

/* Result of header signing. The request must carry "X-Amz-Date: amz_date",
 * "Authorization: authorization" and, with a session token,
 * "X-Amz-Security-Token: <token>". Clear with sigv4_auth_clear. */
struct sigv4_auth {
	char amz_date[SIGV4_AMZ_DATE_LEN + 1];
	char *authorization;
	char signature[SIGV4_SIGNATURE_LEN + 1];
};
void sigv4_auth_clear(struct sigv4_auth *a);

/* Authorization-header signing (as botocore signs STS AssumeRole). headers
 * are the request headers to sign; they must include Host and must not
 * include X-Amz-Date, X-Amz-Security-Token or Authorization, which the signer
 * adds (x-amz-date always, x-amz-security-token when there is a session
 * token). Header names are compared case-insensitively; values are trimmed
 * and inner runs of blanks folded; repeated names are joined with ",".
 * Values are otherwise signed as given, so pass Host lower-cased (as
 * botocore sends it) and send exactly what was signed.
 * query holds the URL's query parameters (may be empty); body is hashed with
 * SHA-256 (NULL/0 for an empty body). trace may be NULL. */
bool sigv4_sign_headers(const struct sigv4_signer *s, const char *method, const char *path,
			const struct sigv4_param *query, size_t nquery, const struct sigv4_param *headers,
			size_t nheaders, const void *body, size_t body_len, struct sigv4_auth *out,
			struct sigv4_trace *trace, char *err, size_t errlen);
#endif
