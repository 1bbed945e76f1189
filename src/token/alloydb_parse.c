/* AlloyDB's metadata exchange (spec §3.9.4) as bytes: proto3 fields in
 * field-number order, base-128 varint lengths, a 4-byte big-endian frame
 * length. Parsing is bounds-checked and skips unknown fields. */
#include "token/alloydb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static size_t put_varint(unsigned char *out, uint64_t v)
{
	size_t n = 0;
	do {
		unsigned char b = (unsigned char)(v & 0x7f);
		v >>= 7;
		out[n++] = (unsigned char)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

static size_t put_bytes_field(unsigned char *out, unsigned tag, const char *s)
{
	size_t n = strlen(s), k = 0;
	out[k++] = (unsigned char)tag;
	k += put_varint(out + k, n);
	memcpy(out + k, s, n);
	return k + n;
}

unsigned char *mdx_request(const char *user_agent, enum mdx_auth_type auth, const char *token, size_t *len)
{
	size_t cap = 4 + 2 * 10 + 2 + strlen(user_agent) + (token ? strlen(token) : 0) + 16;
	unsigned char *buf = xmalloc(cap), *m = buf + 4;
	size_t n = 0;
	if (*user_agent)
		n += put_bytes_field(m + n, 0x0a, user_agent);
	if (auth != MDX_AUTH_UNSPECIFIED) {
		m[n++] = 0x10;
		n += put_varint(m + n, (uint64_t)auth);
	}
	if (token && *token)
		n += put_bytes_field(m + n, 0x1a, token);
	buf[0] = (unsigned char)(n >> 24);
	buf[1] = (unsigned char)(n >> 16);
	buf[2] = (unsigned char)(n >> 8);
	buf[3] = (unsigned char)n;
	*len = n + 4;
	return buf;
}

static bool get_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
		unsigned char b = p[(*pos)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

bool mdx_parse_response(const unsigned char *msg, size_t len, char *err, size_t errlen)
{
	uint64_t code = 0, key, v;
	const unsigned char *text = NULL;
	size_t pos = 0, tlen = 0;
	while (pos < len) {
		if (!get_varint(msg, len, &pos, &key))
			goto bad;
		if ((key & 7) == 0) {
			if (!get_varint(msg, len, &pos, &v))
				goto bad;
			if (key >> 3 == 1)
				code = v;
		} else if ((key & 7) == 2) {
			if (!get_varint(msg, len, &pos, &v) || v > len - pos)
				goto bad;
			if (key >> 3 == 2) {
				text = msg + pos;
				tlen = (size_t)v;
			}
			pos += (size_t)v;
		} else {
			goto bad;
		}
	}
	if (code == 1)
		return true;
	err_set(err, errlen, "the metadata exchange was refused: %.*s", (int)(tlen > 200 ? 200 : tlen),
		text ? (const char *)text : "no reason given");
	return false;
bad:
	err_set(err, errlen, "the metadata exchange answer is malformed");
	return false;
}

long mdx_frame_length(const unsigned char head[4])
{
	uint32_t n = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
	return n > MDX_MAX_RESPONSE ? -1 : (long)n;
}
