#include "core/encode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encode_to(const unsigned char *src, size_t n, char *dst, bool url)
{
	const char *alpha = url ? b64_url : b64_std;
	size_t i = 0, o = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		dst[o++] = alpha[v >> 18];
		dst[o++] = alpha[v >> 12 & 63];
		dst[o++] = alpha[v >> 6 & 63];
		dst[o++] = alpha[v & 63];
	}
	if (i < n) {
		bool two = i + 1 < n;
		uint32_t v = (uint32_t)src[i] << 16 | (two ? (uint32_t)src[i + 1] << 8 : 0);
		dst[o++] = alpha[v >> 18];
		dst[o++] = alpha[v >> 12 & 63];
		if (two)
			dst[o++] = alpha[v >> 6 & 63];
		else if (!url)
			dst[o++] = '=';
		if (!url)
			dst[o++] = '=';
	}
	dst[o] = '\0';
	return o;
}

char *base64_encode(const unsigned char *src, size_t n, bool url)
{
	char *dst = xmalloc(BASE64_LEN(n) + 1);
	base64_encode_to(src, n, dst, url);
	return dst;
}

/* The value of one base64 digit, -1 if it is none; lenient accepts both
 * alphabets' last two digits. */
static int b64_value(unsigned char c, bool lenient)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || (lenient && c == '-'))
		return 62;
	if (c == '/' || (lenient && c == '_'))
		return 63;
	return -1;
}

/* Decodes n digits (no padding) into dst, which has room; false on a bad digit. */
static bool decode_digits(const char *s, size_t n, bool lenient, unsigned char *dst, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i], lenient);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*outlen = o;
	return true;
}

bool base64_decode_strict(const char *src, size_t n, unsigned char *dst, size_t cap, size_t *outlen)
{
	size_t pad = 0;
	if (n % 4 != 0)
		return false;
	if (n >= 4 && src[n - 1] == '=')
		pad = src[n - 2] == '=' ? 2 : 1;
	if (n / 4 * 3 - pad > cap)
		return false;
	size_t whole = n - (pad ? 4 : 0), got = 0, tail = 0;
	if (!decode_digits(src, whole, false, dst, &got))
		return false;
	if (pad) {
		unsigned char tmp[3];
		if (!decode_digits(src + whole, 4 - pad, false, tmp, &tail))
			return false;
		memcpy(dst + got, tmp, tail);
		secret_wipe(tmp, sizeof(tmp));
	}
	*outlen = got + tail;
	return true;
}

unsigned char *base64_decode_lenient(const char *s, size_t n, size_t *outlen)
{
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return NULL;
	unsigned char *out = xmalloc(n * 3 / 4 + 2);
	size_t o = 0;
	if (!decode_digits(s, n, true, out, &o)) {
		secret_wipe(out, n * 3 / 4 + 2);
		free(out);
		return NULL;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

bool url_is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.' || c == '~';
}

bool url_encode_into(struct dynbuf *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool ok;
		if (url_is_unreserved(*p) || (keep_slash && *p == '/')) {
			ok = dynbuf_addc(b, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			ok = dynbuf_add(b, e, 3);
		}
		if (!ok)
			return false;
	}
	return true;
}

char *url_encode(const char *s, bool keep_slash)
{
	struct dynbuf b;
	const char *in = s ? s : "";
	/* 3 bytes out per byte in at most: the cap is never reached. */
	dynbuf_init(&b, 3 * strlen(in) + 1, true);
	if (!url_encode_into(&b, in, keep_slash) || !dynbuf_reserve(&b, 0)) {
		dynbuf_free(&b);
		return xstrdup("");
	}
	return dynbuf_take(&b, NULL);
}
