/* Parsers for what AWS credential sources send back (spec/cloud-tokens.md
 * §1.3.5-1.3.7, §1.4): STS AssumeRole / AssumeRoleWithWebIdentity XML (expat),
 * the JSON documents of IMDS, the container endpoint and credential_process
 * (jansson), and ISO-8601 UTC times. Pure: no I/O, no logging; secrets never
 * appear in error text and are wiped when freed. */
#ifndef TB_TOKEN_AWS_PARSE_H
#define TB_TOKEN_AWS_PARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest response body we parse; real ones are a few KiB. */
#define AWS_PARSE_MAX_BODY (1024 * 1024)
/* Longest STS error code we keep (e.g. "IDPCommunicationError"). */
#define AWS_STS_CODE_MAX 128

/* One set of AWS credentials (§1.1). Strings are malloc'd; session_token and
 * account_id may be NULL. */
struct aws_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *account_id;
	int64_t expiration; /* epoch seconds; 0 = none (never refreshed) */
};

/* Wipes and frees the strings and zeroes *c (c itself is not freed). */
void aws_credentials_clear(struct aws_credentials *c);
/* For heap-allocated credentials: clear, then free(c). Accepts NULL. */
void aws_credentials_free(struct aws_credentials *c);
/* Deep copy into *dst (which is overwritten, not cleared). */
void aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src);

/* "2030-01-01T06:00:00Z", "2019-11-09T13:34:41.123Z", also "t"/"z" in lower
 * case and numeric offsets "+00:00", "+0000", "-05:00". A time zone is
 * required. Seconds 0..59; fractions are dropped. */
bool aws_parse_iso8601(const char *s, int64_t *out);

/* STS AssumeRole* response (root <XResponse>, child <XResult>, §1.4).
 * Success: true, *out filled (all four Credentials elements required;
 * account_id from AssumedRoleUser/Arn when present). An <ErrorResponse>:
 * false, code = its Code (for retry decisions), err = "STS returned error
 * <Code>: <Message>". Anything else: false, code = "", err says why.
 * code may be NULL. */
bool aws_parse_sts_response(const char *body, size_t len, struct aws_credentials *out, char *code,
			    size_t codelen, char *err, size_t errlen);

/* The three JSON credential documents; each is checked against its own
 * table of required and optional fields. */
enum aws_json_source {
	AWS_JSON_IMDS,      /* §1.3.7: AccessKeyId, SecretAccessKey, Token, Expiration */
	AWS_JSON_CONTAINER, /* §1.3.6: same, plus optional AccountId, RoleArn */
	AWS_JSON_PROCESS,   /* §1.3.5: Version == 1, AccessKeyId, SecretAccessKey;
				 * optional SessionToken, Expiration, AccountId */
};

/* true with *out filled; false with err naming the source and the field
 * (never its value). An IMDS body whose Code is not "Success" is reported as
 * "IMDS returned error <Code>: <Message>". */
bool aws_parse_credentials_json(enum aws_json_source src, const char *body, size_t len,
				struct aws_credentials *out, char *err, size_t errlen);

/* IMDS role listing (GET .../security-credentials/): the first line, trimmed.
 * malloc'd; NULL with err when empty or not a plausible role name. */
char *aws_parse_imds_role(const char *body, size_t len, char *err, size_t errlen);
#endif
