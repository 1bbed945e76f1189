/* PostgreSQL v3 wire framing and message builders. No sockets and no
 * logging, so every function here can be unit-tested and fuzzed on bytes. */
#ifndef TB_PG_PROTO_H
#define TB_PG_PROTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dynbuf.h"

#define PROTO_HDR_LEN 5
#define PROTO_V3 196608u /* 3.0 */
#define PROTO_CANCEL_CODE 80877102u
#define PROTO_SSL_CODE 80877103u
#define PROTO_GSSENC_CODE 80877104u
#define PROTO_STARTUP_MAX 10000u /* PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PROTO_MAX_PARAMS 64

enum proto_status {
	PROTO_OK = 0,
	PROTO_NEED_MORE,
	PROTO_ERROR,
};

/* Typed message header: 1 type byte, int32 length that counts itself. */
struct pg_hdr {
	char type;
	uint32_t len; /* as on the wire: body + 4 */
};

/* On OK the header is valid and len is within [4, max_len]; nothing is consumed. */
enum proto_status proto_peek_header(const unsigned char *data, size_t avail, uint32_t max_len,
				    struct pg_hdr *hdr, char *err, size_t errlen);

enum pg_frontend_kind {
	PG_FRONTEND_REQUEST = 0, /* a frontend message of the query phase, to forward */
	PG_FRONTEND_TERMINATE,   /* 'X' */
	PG_FRONTEND_INVALID,     /* not a frontend message of the query phase */
};

/* What a frontend message type is, in the query phase. */
enum pg_frontend_kind proto_frontend_kind(char type);

struct startup_param {
	const char *name;
	const char *value;
};

/* An untyped packet from a client before login. Strings point into the caller's
 * buffer, which must stay alive and is NUL-checked within bounds. */
struct startup_pkt {
	uint32_t code;                   /* protocol version or a special request code */
	uint32_t len;                    /* whole packet length */
	uint32_t cancel_pid, cancel_key; /* CancelRequest */
	size_t nparams;
	struct startup_param params[PROTO_MAX_PARAMS];
};

/* Parse the first packet in data. NEED_MORE when incomplete; ERROR for bad
 * length, bad layout, too many parameters. The protocol version itself is not
 * judged here. */
enum proto_status proto_parse_startup(const unsigned char *data, size_t avail, struct startup_pkt *out,
				      char *err, size_t errlen);
const char *startup_get(const struct startup_pkt *p, const char *name);

/* Bounds-checked reader over one message body. Any overrun sets bad. */
struct msg_reader {
	const unsigned char *p, *end;
	bool bad;
};
void reader_init(struct msg_reader *r, const unsigned char *body, size_t len);
uint8_t reader_u8(struct msg_reader *r);
uint16_t reader_u16(struct msg_reader *r);
uint32_t reader_u32(struct msg_reader *r);
/* NUL-terminated string inside the body; returns "" and sets bad if absent. */
const char *reader_str(struct msg_reader *r);
const unsigned char *reader_bytes(struct msg_reader *r, size_t n);
size_t reader_left(const struct msg_reader *r);
/* True when the whole body was read exactly (the cursor is on the end). */
bool reader_done(const struct msg_reader *r);

/* Output being built: a secret-wiping dynbuf (a message may carry a password)
 * plus where the message being built starts. The dynbuf's members stay
 * readable by name (b.data, b.len, b.failed: the union's two members share
 * one layout), so senders read them directly; growth goes through dynbuf. */
struct pbuf {
	union {
		struct dynbuf buf;
		struct {
			DYNBUF_MEMBERS;
		};
	};
	size_t msg_start;
};
void pbuf_init(struct pbuf *b, size_t max);
void pbuf_free(struct pbuf *b); /* wipes: it may hold a password */
void pbuf_reset(struct pbuf *b);
void pbuf_put_bytes(struct pbuf *b, const void *p, size_t n);
void pbuf_put_u8(struct pbuf *b, uint8_t v);
void pbuf_put_u16(struct pbuf *b, uint16_t v);
void pbuf_put_u32(struct pbuf *b, uint32_t v);
void pbuf_put_str(struct pbuf *b, const char *s); /* with its NUL */
/* type 0 starts an untyped (startup-style) packet. */
void pbuf_begin(struct pbuf *b, char type);
void pbuf_end(struct pbuf *b);

/* Builders for the messages the pooler itself sends. */
void proto_error(struct pbuf *b, const char *severity, const char *sqlstate, const char *message);
void proto_notice(struct pbuf *b, const char *sqlstate, const char *message);
void proto_auth_request(struct pbuf *b, uint32_t code, const void *data, size_t len);
void proto_param_status(struct pbuf *b, const char *name, const char *value);
void proto_backend_key(struct pbuf *b, uint32_t pid, uint32_t key);
void proto_ready(struct pbuf *b, char status);
void proto_negotiate_version(struct pbuf *b, uint32_t newest, const char *const *unknown, size_t n);
void proto_query(struct pbuf *b, const char *sql);
void proto_password(struct pbuf *b, const void *pw, size_t len);
void proto_sasl_initial(struct pbuf *b, const char *mech, const void *data, size_t len);
void proto_sasl_response(struct pbuf *b, const void *data, size_t len);
void proto_cancel_request(struct pbuf *b, uint32_t pid, uint32_t key);
void proto_terminate(struct pbuf *b);
void proto_sync(struct pbuf *b);
void proto_copy_fail(struct pbuf *b, const char *reason);

/* Fields of an ErrorResponse / NoticeResponse body. Strings point into the body. */
struct pg_error {
	const char *severity;
	const char *sqlstate;
	const char *message;
	const char *detail;
};
bool proto_parse_error(const unsigned char *body, size_t len, struct pg_error *out);
#endif
