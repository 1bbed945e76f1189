/* Framing and builders: every parser is fed truncated, oversized and
 * malformed input and must say NEED_MORE or ERROR without reading out of bounds. */
#include <stdlib.h>
#include <string.h>

#include "pg/proto.h"
#include "pg/session_attrs.h"
#include "pool/varcache.h"
#include "unit.h"

/* The interning table and extra names of one loop, as a worker holds them. */
static struct varcache_state vs;

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static size_t make_startup(unsigned char *buf, const char *const *kv, size_t n)
{
	size_t len = 8;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(kv[i]) + 1;
		memcpy(buf + len, kv[i], l);
		len += l;
	}
	buf[len++] = 0;
	put32(buf, (uint32_t)len);
	put32(buf + 4, PROTO_V3);
	return len;
}

static void test_header(void)
{
	unsigned char m[5] = { 'Q', 0, 0, 0, 9 };
	struct pg_hdr h;
	char err[128];
	CHECK(proto_peek_header(m, 4, 1000, &h, err, sizeof(err)) == PROTO_NEED_MORE);
	CHECK(proto_peek_header(m, 5, 1000, &h, err, sizeof(err)) == PROTO_OK);
	CHECK(h.type == 'Q' && h.len == 9);
	m[4] = 3;
	CHECK(proto_peek_header(m, 5, 1000, &h, err, sizeof(err)) == PROTO_ERROR);
	put32(m + 1, 2000);
	CHECK(proto_peek_header(m, 5, 1000, &h, err, sizeof(err)) == PROTO_ERROR);
	CHECK(strstr(err, "max_packet_size") != NULL);
}

static void test_startup(void)
{
	unsigned char buf[256];
	const char *kv[] = { "user", "alice", "database", "app", "application_name", "psql" };
	size_t len = make_startup(buf, kv, 6);
	struct startup_pkt p;
	char err[128];
	struct unit_loop each = UNIT_LOOP;
	for (size_t cut = 0; cut < len; cut++)
		CHECK_EACH(each, proto_parse_startup(buf, cut, &p, err, sizeof(err)) == PROTO_NEED_MORE);
	CHECK_LOOP_END(each);
	CHECK(proto_parse_startup(buf, len, &p, err, sizeof(err)) == PROTO_OK);
	CHECK(p.code == PROTO_V3 && p.nparams == 3);
	CHECK_STR(startup_get(&p, "user"), "alice");
	CHECK_STR(startup_get(&p, "database"), "app");
	CHECK(startup_get(&p, "nope") == NULL);

	/* missing terminator: the last NUL replaced */
	unsigned char bad[256];
	memcpy(bad, buf, len);
	bad[len - 1] = 'x';
	CHECK(proto_parse_startup(bad, len, &p, err, sizeof(err)) == PROTO_ERROR);
	/* a value without its NUL */
	const char *kv2[] = { "user" };
	size_t l2 = make_startup(bad, kv2, 1);
	CHECK(proto_parse_startup(bad, l2, &p, err, sizeof(err)) == PROTO_ERROR);
	/* lengths out of range */
	put32(bad, 4);
	CHECK(proto_parse_startup(bad, 8, &p, err, sizeof(err)) == PROTO_ERROR);
	put32(bad, PROTO_STARTUP_MAX + 1);
	CHECK(proto_parse_startup(bad, 8, &p, err, sizeof(err)) == PROTO_ERROR);
	/* SSLRequest and a cancel with the wrong length */
	unsigned char ssl[8];
	put32(ssl, 8);
	put32(ssl + 4, PROTO_SSL_CODE);
	CHECK(proto_parse_startup(ssl, 8, &p, err, sizeof(err)) == PROTO_OK && p.code == PROTO_SSL_CODE);
	unsigned char cancel[16];
	put32(cancel, 12);
	put32(cancel + 4, PROTO_CANCEL_CODE);
	CHECK(proto_parse_startup(cancel, 12, &p, err, sizeof(err)) == PROTO_ERROR);
	put32(cancel, 16);
	put32(cancel + 8, 77);
	put32(cancel + 12, 99);
	CHECK(proto_parse_startup(cancel, 16, &p, err, sizeof(err)) == PROTO_OK);
	CHECK(p.cancel_pid == 77 && p.cancel_key == 99);
	/* Unknown major version: parsed, judged by the caller */
	put32(ssl + 4, 2u << 16);
	CHECK(proto_parse_startup(ssl, 8, &p, err, sizeof(err)) == PROTO_OK && (p.code >> 16) == 2);
}

static void test_too_many_params(void)
{
	unsigned char buf[PROTO_STARTUP_MAX];
	size_t len = 8;
	for (int i = 0; i < PROTO_MAX_PARAMS + 1; i++) {
		len += (size_t)snprintf((char *)buf + len, sizeof(buf) - len, "k%d", i) + 1;
		len += (size_t)snprintf((char *)buf + len, sizeof(buf) - len, "v") + 1;
	}
	buf[len++] = 0;
	put32(buf, (uint32_t)len);
	put32(buf + 4, PROTO_V3);
	struct startup_pkt p;
	char err[128];
	CHECK(proto_parse_startup(buf, len, &p, err, sizeof(err)) == PROTO_ERROR);
}

static void test_reader(void)
{
	unsigned char body[] = { 0, 0, 0, 5, 'a', 'b', 0, 7 };
	struct msg_reader r;
	reader_init(&r, body, sizeof(body));
	CHECK(reader_u32(&r) == 5);
	CHECK_STR(reader_str(&r), "ab");
	CHECK(!reader_done(&r));
	CHECK(reader_u8(&r) == 7);
	CHECK(reader_done(&r));
	CHECK(reader_u32(&r) == 0 && r.bad);
	unsigned char nostr[] = { 'x', 'y' };
	reader_init(&r, nostr, sizeof(nostr));
	CHECK_STR(reader_str(&r), "");
	CHECK(r.bad);
}

static void test_builders(void)
{
	struct pbuf b;
	pbuf_init(&b, 1024);
	proto_error(&b, "FATAL", "3D000", "no such database: x");
	struct pg_hdr h;
	char err[64];
	CHECK(proto_peek_header(b.data, b.len, 1024, &h, err, sizeof(err)) == PROTO_OK);
	CHECK(h.type == 'E' && h.len + 1 == b.len);
	struct pg_error e;
	CHECK(proto_parse_error(b.data + 5, h.len - 4, &e));
	CHECK_STR(e.sqlstate, "3D000");
	CHECK_STR(e.severity, "FATAL");
	CHECK_STR(e.message, "no such database: x");
	/* truncated error body */
	CHECK(!proto_parse_error(b.data + 5, h.len - 6, &e));
	pbuf_reset(&b);
	proto_ready(&b, 'I');
	unsigned char z[] = { 'Z', 0, 0, 0, 5, 'I' };
	CHECK(b.len == sizeof(z) && memcmp(b.data, z, sizeof(z)) == 0);
	pbuf_free(&b);
	/* The cap holds: a message larger than max fails, never overflows */
	pbuf_init(&b, 16);
	proto_query(&b, "select 1 from a_long_table_name");
	CHECK(b.failed);
	pbuf_free(&b);
}

static void test_varcache(void)
{
	struct varcache c = { { 0 }, NULL }, s = { { 0 }, NULL };
	CHECK(varcache_index(&vs, "timezone") == VAR_TIMEZONE);
	CHECK(varcache_index(&vs, "search_path") == -1);
	varcache_set(&vs, &c, VAR_APPLICATION_NAME, "it's\\x");
	varcache_set(&vs, &s, VAR_APPLICATION_NAME, "other");
	varcache_set(&vs, &c, VAR_TIMEZONE, "UTC");
	varcache_set(&vs, &s, VAR_TIMEZONE, "UTC");
	char *sql = varcache_sync_sql(&vs, &c, &s);
	CHECK_STR(sql, "SET application_name = E'it''s\\\\x';");
	free(sql);
	varcache_set(&vs, &s, VAR_APPLICATION_NAME, "it's\\x");
	CHECK(varcache_sync_sql(&vs, &c, &s) == NULL);
	/* Equal values share one interned copy; clearing releases them. */
	CHECK(varcache_get(&vs, &c, VAR_APPLICATION_NAME) == varcache_get(&vs, &s, VAR_APPLICATION_NAME));
	CHECK(varcache_interned_count(&vs) == 2);
	varcache_clear(&vs, &c);
	CHECK(varcache_interned_count(&vs) == 2);
	varcache_clear(&vs, &s);
	CHECK(varcache_interned_count(&vs) == 0);
}

/* Two loops' states share nothing: names tracked and values interned in one
 * are not seen by the other. */
static void test_varcache_two_states(void)
{
	static struct varcache_state a, b;
	struct varcache ca = { { 0 }, NULL }, cb = { { 0 }, NULL };
	CHECK(varcache_track_extra(&a, "search_path"));
	CHECK(varcache_index(&a, "search_path") == VAR_COUNT);
	CHECK(varcache_index(&b, "search_path") == -1 && varcache_count(&b) == VAR_COUNT);
	CHECK(varcache_set(&a, &ca, VAR_TIMEZONE, "UTC"));
	CHECK(varcache_set(&b, &cb, VAR_TIMEZONE, "UTC"));
	CHECK(varcache_interned_count(&a) == 1 && varcache_interned_count(&b) == 1);
	/* the same text, interned once per loop: two copies, not one shared */
	CHECK(varcache_get(&a, &ca, VAR_TIMEZONE) != varcache_get(&b, &cb, VAR_TIMEZONE));
	CHECK(varcache_set(&a, &ca, VAR_COUNT, "public"));
	CHECK(!varcache_set(&b, &cb, VAR_COUNT, "public")); /* not a name b tracks */
	varcache_clear(&a, &ca);
	CHECK(varcache_interned_count(&a) == 0 && varcache_interned_count(&b) == 1);
	varcache_clear(&b, &cb);
	CHECK(varcache_interned_count(&b) == 0);
	varcache_state_free(&a);
	varcache_state_free(&b);
	CHECK(a.intern_tab == NULL && b.intern_tab == NULL);
}

static void test_varcache_extra(void)
{
	struct varcache c = { { 0 }, NULL }, s = { { 0 }, NULL };
	CHECK(varcache_extra_valid("IntervalStyle, default_transaction_read_only,citus.x"));
	CHECK(!varcache_extra_valid("a b"));
	CHECK(!varcache_extra_valid("x;drop"));
	CHECK(!varcache_extra_valid("a1,a2,a3,a4,a5,a6,a7,a8,a9"));
	CHECK(varcache_extra_valid("a1,a2,a3,a4,a5,a6,a7,a8,IntervalStyle,timezone"));
	CHECK(varcache_track_extra(&vs, "IntervalStyle, default_transaction_read_only"));
	int ro = varcache_index(&vs, "Default_Transaction_Read_Only");
	CHECK(ro == VAR_COUNT && varcache_count(&vs) == VAR_COUNT + 1);
	CHECK(varcache_index(&vs, "IntervalStyle") == VAR_INTERVALSTYLE);
	CHECK(strcmp(varcache_name(&vs, ro), "default_transaction_read_only") == 0);
	varcache_set(&vs, &c, ro, "on");
	varcache_set(&vs, &s, ro, "off");
	char *sql = varcache_sync_sql(&vs, &c, &s);
	CHECK_STR(sql, "SET default_transaction_read_only = E'on';");
	free(sql);
	/* Dropped by a reload: no longer looked up or synced, the index stays. */
	CHECK(varcache_track_extra(&vs, "search_path"));
	CHECK(varcache_index(&vs, "default_transaction_read_only") == -1);
	CHECK(varcache_index(&vs, "search_path") == VAR_COUNT + 1);
	CHECK(varcache_sync_sql(&vs, &c, &s) == NULL);
	varcache_clear(&vs, &c);
	varcache_clear(&vs, &s);
	CHECK(c.extra == NULL && varcache_interned_count(&vs) == 0);
	CHECK(varcache_track_extra(&vs, ""));
	CHECK(varcache_index(&vs, "search_path") == -1);
}

static void test_session_attrs(void)
{
	struct session_attrs primary, standby, ro_primary, old;
	session_attrs_init(&primary);
	session_attrs_init(&standby);
	session_attrs_init(&ro_primary);
	session_attrs_init(&old);
	session_attrs_note(&primary, "in_hot_standby", "off");
	session_attrs_note(&primary, "default_transaction_read_only", "off");
	session_attrs_note(&standby, "In_Hot_Standby", "on");
	session_attrs_note(&standby, "default_transaction_read_only", "off");
	session_attrs_note(&ro_primary, "in_hot_standby", "off");
	session_attrs_note(&ro_primary, "default_transaction_read_only", "on");
	session_attrs_note(&old, "server_version", "13.9");
	CHECK(session_attrs_judge(TSA_MODE_READ_WRITE, &primary, false) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_READ_WRITE, &standby, false) == TSA_WRONG);
	CHECK(session_attrs_judge(TSA_MODE_READ_WRITE, &ro_primary, false) == TSA_WRONG);
	CHECK(session_attrs_judge(TSA_MODE_READ_ONLY, &ro_primary, false) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_READ_ONLY, &standby, false) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_READ_ONLY, &primary, false) == TSA_WRONG);
	/* primary and standby look at hot standby only, as libpq */
	CHECK(session_attrs_judge(TSA_MODE_PRIMARY, &ro_primary, false) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_PRIMARY, &standby, false) == TSA_WRONG);
	CHECK(session_attrs_judge(TSA_MODE_STANDBY, &standby, false) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_STANDBY, &primary, true) == TSA_WRONG);
	CHECK(session_attrs_judge(TSA_MODE_PREFER_STANDBY, &primary, false) == TSA_WRONG);
	CHECK(session_attrs_judge(TSA_MODE_PREFER_STANDBY, &primary, true) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_ANY, &old, false) == TSA_OK);
	CHECK(session_attrs_judge(TSA_MODE_STANDBY, &old, false) == TSA_UNKNOWN);
	CHECK(session_attrs_judge(TSA_MODE_READ_WRITE, &old, false) == TSA_UNKNOWN);
	CHECK(strcmp(session_attrs_mode_name(TSA_MODE_PREFER_STANDBY), "prefer-standby") == 0);
}

static void test_frontend_kind(void)
{
	CHECK(proto_frontend_kind('Q') == PG_FRONTEND_REQUEST &&
	      proto_frontend_kind('X') == PG_FRONTEND_TERMINATE);
	CHECK(proto_frontend_kind('p') == PG_FRONTEND_INVALID &&
	      proto_frontend_kind(0) == PG_FRONTEND_INVALID);
	CHECK(proto_frontend_kind('Y') == PG_FRONTEND_INVALID);
}

int main(void)
{
	test_frontend_kind();
	test_header();
	test_startup();
	test_too_many_params();
	test_reader();
	test_builders();
	test_varcache();
	test_varcache_extra();
	test_varcache_two_states();
	test_session_attrs();
	return unit_finish("test_proto");
}
