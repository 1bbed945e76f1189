/* Text encodings of bytes shared by the wire and token code: base64 (the
 * padded standard alphabet of SCRAM and X.509, the unpadded URL alphabet of
 * JWS) and RFC 3986 percent-encoding (SigV4 queries, OAuth form bodies). */
#ifndef TB_CORE_ENCODE_H
#define TB_CORE_ENCODE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/dynbuf.h"

/* Encoded length of n bytes, padded, without the terminator; a macro so
 * arrays sized by it are not VLAs. */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* dst must hold BASE64_LEN(n) + 1 bytes. url: the URL alphabet without
 * padding, else the standard one with it. Returns the length written. */
size_t base64_encode_to(const unsigned char *src, size_t n, char *dst, bool url);
/* The same, malloc'd. */
char *base64_encode(const unsigned char *src, size_t n, bool url);
/* Strict standard base64 (padded, no whitespace, length a multiple of 4) into
 * dst of cap bytes; false when malformed or too long. */
TB_MUSTCHECK bool base64_decode_strict(const char *src, size_t n, unsigned char *dst, size_t cap,
				       size_t *outlen);
/* Either alphabet, padding optional (JWS segments); malloc'd and
 * NUL-terminated, NULL when malformed. The caller wipes and frees. */
unsigned char *base64_decode_lenient(const char *s, size_t n, size_t *outlen);

/* RFC 3986 percent-encoding: the unreserved set (ALPHA DIGIT - _ . ~) kept,
 * every other byte %XX in upper-case hex; with keep_slash "/" is kept too
 * (paths). */
bool url_is_unreserved(unsigned char c);
TB_MUSTCHECK bool url_encode_into(struct dynbuf *b, const char *s, bool keep_slash);
/* The same, malloc'd; NULL s encodes as "". */
char *url_encode(const char *s, bool keep_slash);
#endif
