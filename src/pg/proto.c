#include "pg/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static uint32_t get_u32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

enum proto_status proto_peek_header(const unsigned char *data, size_t avail, uint32_t max_len,
				    struct pg_hdr *hdr, char *err, size_t errlen)
{
	if (avail < PROTO_HDR_LEN)
		return PROTO_NEED_MORE;
	hdr->type = (char)data[0];
	hdr->len = get_u32(data + 1);
	if (hdr->len < 4) {
		snprintf(err, errlen, "invalid message length %u for message type '%c'", hdr->len,
			 hdr->type >= 32 && hdr->type < 127 ? hdr->type : '?');
		return PROTO_ERROR;
	}
	if (hdr->len > max_len) {
		snprintf(err, errlen, "message of %u bytes exceeds max_packet_size (%u)", hdr->len, max_len);
		return PROTO_ERROR;
	}
	return PROTO_OK;
}

/* Key/value pairs: name NUL value NUL ... NUL. Every string must end inside the packet. */
static enum proto_status parse_startup_params(const unsigned char *p, const unsigned char *end,
					      struct startup_pkt *out, char *err, size_t errlen)
{
	out->nparams = 0;
	for (;;) {
		if (p >= end) {
			snprintf(err, errlen, "startup packet is missing its terminator");
			return PROTO_ERROR;
		}
		if (*p == '\0') {
			if (p + 1 != end) {
				snprintf(err, errlen, "startup packet has data after its terminator");
				return PROTO_ERROR;
			}
			return PROTO_OK;
		}
		const unsigned char *name = p;
		const unsigned char *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul || nul + 1 >= end) {
			snprintf(err, errlen, "startup packet has an unterminated parameter");
			return PROTO_ERROR;
		}
		const unsigned char *value = nul + 1;
		const unsigned char *vnul = memchr(value, 0, (size_t)(end - value));
		if (!vnul) {
			snprintf(err, errlen, "startup packet has an unterminated value");
			return PROTO_ERROR;
		}
		if (out->nparams >= PROTO_MAX_PARAMS) {
			snprintf(err, errlen, "startup packet has more than %d parameters", PROTO_MAX_PARAMS);
			return PROTO_ERROR;
		}
		out->params[out->nparams].name = (const char *)name;
		out->params[out->nparams].value = (const char *)value;
		out->nparams++;
		p = vnul + 1;
	}
}

enum proto_status proto_parse_startup(const unsigned char *data, size_t avail, struct startup_pkt *out,
				      char *err, size_t errlen)
{
	if (avail < 4)
		return PROTO_NEED_MORE;
	uint32_t len = get_u32(data);
	if (len < 8 || len > PROTO_STARTUP_MAX) {
		snprintf(err, errlen, "invalid startup packet length %u", len);
		return PROTO_ERROR;
	}
	if (avail < len)
		return PROTO_NEED_MORE;
	memset(out, 0, sizeof(*out));
	out->len = len;
	out->code = get_u32(data + 4);
	switch (out->code) {
	case PROTO_SSL_CODE:
	case PROTO_GSSENC_CODE:
		if (len != 8) {
			snprintf(err, errlen, "invalid length %u for an encryption request", len);
			return PROTO_ERROR;
		}
		return PROTO_OK;
	case PROTO_CANCEL_CODE:
		if (len != 16) {
			snprintf(err, errlen, "invalid length %u for a cancel request", len);
			return PROTO_ERROR;
		}
		out->cancel_pid = get_u32(data + 8);
		out->cancel_key = get_u32(data + 12);
		return PROTO_OK;
	default:
		break;
	}
	if ((out->code >> 16) != 3)
		return PROTO_OK; /* the caller refuses other versions with its own message */
	return parse_startup_params(data + 8, data + len, out, err, errlen);
}

const char *startup_get(const struct startup_pkt *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

void reader_init(struct msg_reader *r, const unsigned char *body, size_t len)
{
	r->p = body;
	r->end = body + len;
	r->bad = false;
}

size_t reader_left(const struct msg_reader *r)
{
	return (size_t)(r->end - r->p);
}

bool reader_done(const struct msg_reader *r)
{
	return !r->bad && r->p == r->end;
}

const unsigned char *reader_bytes(struct msg_reader *r, size_t n)
{
	if (r->bad || reader_left(r) < n) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

uint8_t reader_u8(struct msg_reader *r)
{
	const unsigned char *p = reader_bytes(r, 1);
	return p ? p[0] : 0;
}

uint16_t reader_u16(struct msg_reader *r)
{
	const unsigned char *p = reader_bytes(r, 2);
	return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t reader_u32(struct msg_reader *r)
{
	const unsigned char *p = reader_bytes(r, 4);
	return p ? get_u32(p) : 0;
}

const char *reader_str(struct msg_reader *r)
{
	if (r->bad)
		return "";
	const unsigned char *nul = memchr(r->p, 0, reader_left(r));
	if (!nul) {
		r->bad = true;
		return "";
	}
	const char *s = (const char *)r->p;
	r->p = nul + 1;
	return s;
}

void pbuf_init(struct pbuf *b, size_t max)
{
	dynbuf_init(&b->buf, max, true);
	b->msg_start = 0;
}

void pbuf_free(struct pbuf *b)
{
	dynbuf_free(&b->buf);
	b->msg_start = 0;
}

void pbuf_reset(struct pbuf *b)
{
	dynbuf_reset(&b->buf);
	b->msg_start = 0;
}

void pbuf_put_bytes(struct pbuf *b, const void *p, size_t n)
{
	/* Failure sticks in b->failed; the sender checks it once. */
	if (!dynbuf_add(&b->buf, p, n))
		return;
}

void pbuf_put_u8(struct pbuf *b, uint8_t v)
{
	pbuf_put_bytes(b, &v, 1);
}

void pbuf_put_u16(struct pbuf *b, uint16_t v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	pbuf_put_bytes(b, x, 2);
}

void pbuf_put_u32(struct pbuf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	pbuf_put_bytes(b, x, 4);
}

void pbuf_put_str(struct pbuf *b, const char *s)
{
	pbuf_put_bytes(b, s, strlen(s) + 1);
}

void pbuf_begin(struct pbuf *b, char type)
{
	if (type)
		pbuf_put_u8(b, (uint8_t)type);
	b->msg_start = b->len;
	pbuf_put_u32(b, 0);
}

void pbuf_end(struct pbuf *b)
{
	if (b->failed)
		return;
	uint32_t len = (uint32_t)(b->len - b->msg_start);
	unsigned char *p = b->data + b->msg_start;
	p[0] = (unsigned char)(len >> 24);
	p[1] = (unsigned char)(len >> 16);
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
}

static void put_error_fields(struct pbuf *b, const char *severity, const char *sqlstate, const char *message)
{
	pbuf_put_u8(b, 'S');
	pbuf_put_str(b, severity);
	pbuf_put_u8(b, 'V');
	pbuf_put_str(b, severity);
	pbuf_put_u8(b, 'C');
	pbuf_put_str(b, sqlstate);
	pbuf_put_u8(b, 'M');
	pbuf_put_str(b, message);
	pbuf_put_u8(b, 0);
}

void proto_error(struct pbuf *b, const char *severity, const char *sqlstate, const char *message)
{
	pbuf_begin(b, 'E');
	put_error_fields(b, severity, sqlstate, message);
	pbuf_end(b);
}

void proto_notice(struct pbuf *b, const char *sqlstate, const char *message)
{
	pbuf_begin(b, 'N');
	put_error_fields(b, "NOTICE", sqlstate, message);
	pbuf_end(b);
}

void proto_auth_request(struct pbuf *b, uint32_t code, const void *data, size_t len)
{
	pbuf_begin(b, 'R');
	pbuf_put_u32(b, code);
	pbuf_put_bytes(b, data, len);
	pbuf_end(b);
}

void proto_param_status(struct pbuf *b, const char *name, const char *value)
{
	pbuf_begin(b, 'S');
	pbuf_put_str(b, name);
	pbuf_put_str(b, value);
	pbuf_end(b);
}

void proto_backend_key(struct pbuf *b, uint32_t pid, uint32_t key)
{
	pbuf_begin(b, 'K');
	pbuf_put_u32(b, pid);
	pbuf_put_u32(b, key);
	pbuf_end(b);
}

void proto_ready(struct pbuf *b, char status)
{
	pbuf_begin(b, 'Z');
	pbuf_put_u8(b, (uint8_t)status);
	pbuf_end(b);
}

void proto_negotiate_version(struct pbuf *b, uint32_t newest, const char *const *unknown, size_t n)
{
	pbuf_begin(b, 'v');
	pbuf_put_u32(b, newest);
	pbuf_put_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		pbuf_put_str(b, unknown[i]);
	pbuf_end(b);
}

void proto_query(struct pbuf *b, const char *sql)
{
	pbuf_begin(b, 'Q');
	pbuf_put_str(b, sql);
	pbuf_end(b);
}

void proto_password(struct pbuf *b, const void *pw, size_t len)
{
	pbuf_begin(b, 'p');
	pbuf_put_bytes(b, pw, len);
	pbuf_put_u8(b, 0);
	pbuf_end(b);
}

void proto_sasl_initial(struct pbuf *b, const char *mech, const void *data, size_t len)
{
	pbuf_begin(b, 'p');
	pbuf_put_str(b, mech);
	pbuf_put_u32(b, (uint32_t)len);
	pbuf_put_bytes(b, data, len);
	pbuf_end(b);
}

void proto_sasl_response(struct pbuf *b, const void *data, size_t len)
{
	pbuf_begin(b, 'p');
	pbuf_put_bytes(b, data, len);
	pbuf_end(b);
}

void proto_cancel_request(struct pbuf *b, uint32_t pid, uint32_t key)
{
	pbuf_begin(b, 0);
	pbuf_put_u32(b, PROTO_CANCEL_CODE);
	pbuf_put_u32(b, pid);
	pbuf_put_u32(b, key);
	pbuf_end(b);
}

void proto_sync(struct pbuf *b)
{
	pbuf_begin(b, 'S');
	pbuf_end(b);
}

void proto_copy_fail(struct pbuf *b, const char *reason)
{
	pbuf_begin(b, 'f');
	pbuf_put_str(b, reason);
	pbuf_end(b);
}

void proto_terminate(struct pbuf *b)
{
	pbuf_begin(b, 'X');
	pbuf_end(b);
}

bool proto_parse_error(const unsigned char *body, size_t len, struct pg_error *out)
{
	struct msg_reader r;
	memset(out, 0, sizeof(*out));
	reader_init(&r, body, len);
	for (;;) {
		uint8_t code = reader_u8(&r);
		if (r.bad)
			return false;
		if (code == 0)
			break;
		const char *s = reader_str(&r);
		if (r.bad)
			return false;
		switch (code) {
		case 'S':
			if (!out->severity)
				out->severity = s;
			break;
		case 'V':
			out->severity = s;
			break;
		case 'C':
			out->sqlstate = s;
			break;
		case 'M':
			out->message = s;
			break;
		case 'D':
			out->detail = s;
			break;
		default:
			break;
		}
	}
	if (!out->severity)
		out->severity = "ERROR";
	if (!out->sqlstate)
		out->sqlstate = "XX000";
	if (!out->message)
		out->message = "";
	return reader_done(&r);
}

enum pg_frontend_kind proto_frontend_kind(char type)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'S':
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
	case 'c':
	case 'f':
	case 'd':
	case 'H':
		return PG_FRONTEND_REQUEST;
	case 'X':
		return PG_FRONTEND_TERMINATE;
	default:
		return PG_FRONTEND_INVALID;
	}
}
