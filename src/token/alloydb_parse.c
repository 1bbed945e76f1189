/* AlloyDB's instance URIs and Admin API answers (spec §3.9.1, §3.9.2), and
 * its metadata exchange (§3.9.4) as bytes: proto3 fields in
 * field-number order, base-128 varint lengths, a 4-byte big-endian frame
 * length. Parsing is bounds-checked and skips unknown fields. */
#include "token/alloydb.h"

#include <jansson.h>
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

/* One "/"-free segment after a literal, copied into out. */
static const char *segment(const char *s, const char *lit, char *out, size_t cap, bool last)
{
	size_t l = strlen(lit);
	if (!s || strncmp(s, lit, l) != 0)
		return NULL;
	s += l;
	size_t n = strcspn(s, "/");
	if (n == 0 || n >= cap || (last ? s[n] != '\0' : s[n] != '/'))
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return s + n + (last ? 0 : 1);
}

bool alloydb_parse_name(const char *s, struct alloydb_name *out)
{
	s = segment(s, "projects/", out->project, sizeof(out->project), false);
	s = segment(s, "locations/", out->region, sizeof(out->region), false);
	s = segment(s, "clusters/", out->cluster, sizeof(out->cluster), false);
	s = segment(s, "instances/", out->instance, sizeof(out->instance), true);
	if (!s)
		return false;
	const char *colon = strchr(out->project, ':');
	bool bad = strchr(out->region, ':') || strchr(out->cluster, ':') || strchr(out->instance, ':') ||
		   (colon && (colon == out->project || !colon[1] || strchr(colon + 1, ':')));
	return !bad;
}

void alloydb_info_clear(struct alloydb_info *i)
{
	free(i->private_ip);
	free(i->public_ip);
	free(i->psc_dns);
	memset(i, 0, sizeof(*i));
}

static char *field(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (!json_is_string(v) || !json_string_length(v))
		v = b ? json_object_get(o, b) : NULL;
	return json_is_string(v) && json_string_length(v) ? xstrdup(json_string_value(v)) : NULL;
}

bool alloydb_parse_info(const char *body, size_t len, struct alloydb_info *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, 0, NULL);
	out->private_ip = field(root, "ipAddress", "ip_address");
	out->public_ip = field(root, "publicIpAddress", "public_ip_address");
	out->psc_dns = field(root, "pscDnsName", "psc_dns_name");
	json_decref(root);
	size_t n = out->psc_dns ? strlen(out->psc_dns) : 0;
	if (n && out->psc_dns[n - 1] == '.')
		out->psc_dns[n - 1] = '\0';
	if (!out->private_ip && !out->public_ip && !out->psc_dns) {
		err_set(err, errlen, "connectionInfo names no address of the instance");
		return false;
	}
	return true;
}

bool alloydb_parse_cert(const char *body, size_t len, char **chain_pem, char **ca_pem, char *err,
			size_t errlen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	const json_t *chain = json_object_get(root, "pemCertificateChain");
	size_t total = 1, i;
	const json_t *c;
	json_array_foreach(chain, i, c)
		total += json_is_string(c) ? json_string_length(c) + 1 : 0;
	*chain_pem = NULL;
	*ca_pem = field(root, "caCert", "ca_cert");
	if (json_array_size(chain) > 0 && *ca_pem) {
		char *out = xmalloc(total), *o = out;
		json_array_foreach(chain, i, c) {
			if (!json_is_string(c))
				continue;
			memcpy(o, json_string_value(c), json_string_length(c));
			o += json_string_length(c);
			*o++ = '\n';
		}
		*o = '\0';
		*chain_pem = out;
	}
	json_decref(root);
	if (!*chain_pem) {
		free(*ca_pem);
		*ca_pem = NULL;
		err_set(err, errlen, "generateClientCertificate answered no pemCertificateChain or caCert");
		return false;
	}
	return true;
}

char *alloydb_cert_body(const char *public_pem, int64_t duration_s, size_t *len)
{
	json_t *o = json_object();
	char d[32];
	snprintf(d, sizeof(d), "%llds", (long long)duration_s);
	json_object_set_new(o, "publicKey", json_string(public_pem));
	json_object_set_new(o, "certDuration", json_string(d));
	json_object_set_new(o, "useMetadataExchange", json_true());
	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	*len = strlen(body);
	return body;
}
