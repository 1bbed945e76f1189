/* SASLprep (RFC 4013, the stringprep profile of RFC 3454) as PostgreSQL
 * applies it to SCRAM passwords, so that a password with non-ASCII characters
 * hashes here exactly as libpq and the server hash it. */
#ifndef TB_PG_SASLPREP_H
#define TB_PG_SASLPREP_H
#include <stddef.h>

enum saslprep_result {
	SASLPREP_OK,
	SASLPREP_INVALID_UTF8, /* not UTF-8: PostgreSQL then hashes the raw bytes */
	SASLPREP_PROHIBITED,   /* a prohibited or unassigned character, bad bidi, or empty */
	SASLPREP_TOO_LONG,     /* over SASLPREP_MAX_INPUT bytes */
	SASLPREP_FAILED,       /* the normaliser failed */
};

/* PostgreSQL's MAX_PASSWORD_LENGTH: longer non-ASCII input is not prepared. */
#define SASLPREP_MAX_INPUT 1024

/* The prepared form of in (in_len bytes, no NUL inside) into *out, malloc'd
 * and NUL-terminated, its length in *out_len; the caller wipes and frees it.
 * Pure ASCII is returned unchanged (PostgreSQL's fast path). */
enum saslprep_result saslprep(const char *in, size_t in_len, char **out, size_t *out_len);

/* What SCRAM hashes: the prepared password, or a copy of the raw bytes when
 * preparation fails, as PostgreSQL's client and server both fall back. */
char *saslprep_or_raw(const char *in, size_t in_len, size_t *out_len);
#endif
