/* The tracker of the answers owed by a server, and the prepared-statement state
 * (shared cache, client names, server sets). */
#include <stdio.h>
#include <string.h>

#include "pool/prepared.h"
#include "pool/respq.h"
#include "unit.h"

/* One loop's statement cache, as a worker holds it. */
static struct ps_cache pc;

/* What the callbacks saw, as a string: "d<id><result>" for done (o/f/s),
 * "e<id>" for an emitted synthesized answer. Ids are the entries' aux. */
static char trail[512];

static void on_done(void *ctx, const struct rq_entry *e, enum rq_result r)
{
	(void)ctx;
	char one[16];
	snprintf(one, sizeof(one), "d%llu%c ", (unsigned long long)e->aux, "ofs"[r]);
	strncat(trail, one, sizeof(trail) - strlen(trail) - 1);
}

/* ctx, when set, is the aux of an emit that fails (its owner was closed). */
static bool on_emit(void *ctx, const struct rq_entry *e)
{
	char one[16];
	snprintf(one, sizeof(one), "e%llu ", (unsigned long long)e->aux);
	strncat(trail, one, sizeof(trail) - strlen(trail) - 1);
	return !ctx || *(const uint64_t *)ctx != e->aux;
}

static void push(struct respq *q, enum rq_kind k, enum rq_action a, uint64_t id)
{
	struct rq_entry e = { .kind = (uint8_t)k, .action = (uint8_t)a, .aux = id };
	respq_push(q, &e);
}

/* Feed server message types ('x': a ReadyForQuery in a transaction);
 * returns the verdicts as letters F/D/R/C. */
static const char *feed(struct respq *q, const char *types)
{
	static char out[64];
	size_t n = 0;
	for (const char *t = types; *t && n + 1 < sizeof(out); t++) {
		char type = *t == 'x' ? 'Z' : *t;
		out[n++] = "FDRC"[respq_server_msg(q, type, *t == 'x' ? 'T' : 'I', NULL)];
		CHECK(respq_release_synth(q));
	}
	out[n] = '\0';
	return out;
}

static void start(struct respq *q)
{
	trail[0] = '\0';
	respq_init(q, on_done, on_emit, NULL);
}

static void test_plain_and_synth(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_PARSE, RQ_SYNTH, 1);
	CHECK(respq_synth_due(&q));
	CHECK(respq_release_synth(&q));
	push(&q, RQ_BIND, RQ_FORWARD, 2);
	push(&q, RQ_EXECUTE, RQ_FORWARD, 3);
	push(&q, RQ_CLOSE, RQ_SYNTH, 4);
	push(&q, RQ_SYNC, RQ_FORWARD, 5);
	CHECK(!respq_synth_due(&q));
	CHECK_STR(feed(&q, "2DDNC"), "FFFFF");
	/* the CloseComplete is due right after the CommandComplete, before the ReadyForQuery */
	CHECK_STR(trail, "e1 d1o d2o d3o e4 d4o ");
	CHECK_STR(feed(&q, "Z"), "F");
	CHECK(respq_empty(&q));
	respq_free(&q);
}

static void test_absorb_and_describe(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_CLOSE, RQ_ABSORB, 1);
	push(&q, RQ_PARSE, RQ_ABSORB, 2);
	push(&q, RQ_DESCRIBE_STMT, RQ_FORWARD, 3);
	push(&q, RQ_BIND, RQ_FORWARD, 4);
	push(&q, RQ_DESCRIBE_PORTAL, RQ_FORWARD, 5);
	push(&q, RQ_EXECUTE, RQ_FORWARD, 6);
	push(&q, RQ_SYNC, RQ_FORWARD, 7);
	CHECK_STR(feed(&q, "31tT2nIZ"), "DDFFFFFF");
	CHECK(respq_empty(&q));
	CHECK_STR(trail, "d1o d2o d3o d4o d5o d6o d7o ");
	respq_free(&q);
}

static void test_error_skips_to_sync(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_PARSE, RQ_ABSORB, 1);
	push(&q, RQ_BIND, RQ_FORWARD, 2);
	push(&q, RQ_CLOSE, RQ_SYNTH, 3);
	push(&q, RQ_EXECUTE, RQ_FORWARD, 4);
	push(&q, RQ_SYNC, RQ_FORWARD, 5);
	push(&q, RQ_PARSE, RQ_SYNTH, 6);
	/* the absorbed Parse's error goes to the client; the skipped synth is never sent */
	CHECK_STR(feed(&q, "E"), "F");
	CHECK_STR(trail, "d1f d2s d3s d4s ");
	CHECK_STR(feed(&q, "Z"), "F");
	CHECK_STR(trail, "d1f d2s d3s d4s d5o e6 d6o ");
	CHECK(respq_empty(&q));
	respq_free(&q);
}

static void test_error_before_sync_is_sent(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_PARSE, RQ_FORWARD, 1);
	CHECK_STR(feed(&q, "E"), "F");
	CHECK(q.skipping);
	/* sent later in the same batch: the server ignores them */
	push(&q, RQ_BIND, RQ_FORWARD, 2);
	push(&q, RQ_PARSE, RQ_SYNTH, 3);
	CHECK(respq_empty(&q));
	push(&q, RQ_SYNC, RQ_FORWARD, 4);
	CHECK(!q.skipping);
	push(&q, RQ_BIND, RQ_FORWARD, 5);
	CHECK_STR(feed(&q, "Z2"), "FF");
	CHECK_STR(trail, "d1f d2s d3s d4o d5o ");
	respq_free(&q);
}

static void test_query_and_function(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_QUERY, RQ_FORWARD, 1);
	push(&q, RQ_PARSE, RQ_SYNTH, 2);
	push(&q, RQ_SYNC, RQ_FORWARD, 3);
	push(&q, RQ_FUNCTION, RQ_FORWARD, 4);
	push(&q, RQ_QUERY, RQ_EMPTY_AS_TAG, 5);
	push(&q, RQ_BIND, RQ_RENAME_ERROR, 6);
	push(&q, RQ_PARSE, RQ_RENAME_ERROR, 7);
	push(&q, RQ_SYNC, RQ_FORWARD, 8);
	/* an error inside a simple query skips nothing after it */
	CHECK_STR(feed(&q, "TDCEZ"), "FFFFF");
	CHECK_STR(trail, "d1f e2 d2o ");
	CHECK_STR(feed(&q, "ZVZIZ"), "FFFRF");
	CHECK_STR(trail, "d1f e2 d2o d3o d4o d5o ");
	/* a renamed request: its success is forwarded, its error replaced */
	CHECK_STR(feed(&q, "2EZ"), "FRF");
	CHECK_STR(trail, "d1f e2 d2o d3o d4o d5o d6o d7f d8o ");
	respq_free(&q);
}

static void test_copy_and_confusion(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_EXECUTE, RQ_FORWARD, 1);
	push(&q, RQ_SYNC, RQ_FORWARD, 2);
	CHECK_STR(feed(&q, "HddcC"), "FFFFF");
	CHECK(!q.inexact);
	/* a ParseComplete nobody asked for: track is lost, the Sync dropped */
	CHECK_STR(feed(&q, "1"), "C");
	CHECK(q.inexact && respq_empty(&q) && respq_owed_rfq(&q) == 0 && !respq_settled(&q));
	CHECK_STR(feed(&q, "Z"), "C");   /* nothing owed */
	CHECK_STR(feed(&q, "NS"), "FF"); /* async messages are always fine */
	push(&q, RQ_BIND, RQ_FORWARD, 3);
	respq_free(&q);
	CHECK_STR(trail, "d1o d2s d3s ");
}

static void test_ring_wraps(void)
{
	struct respq q;
	start(&q);
	uint64_t id = 0;
	struct unit_loop each = UNIT_LOOP;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 37; i++)
			push(&q, RQ_BIND, RQ_FORWARD, ++id);
		for (int i = 0; i < 30; i++)
			CHECK_EACH(each, respq_server_msg(&q, '2', 'I', NULL) == RQV_FORWARD);
	}
	CHECK_LOOP_END(each);
	CHECK(respq_len(&q) == 5 * 7);
	struct rq_entry e;
	respq_server_msg(&q, '2', 'I', &e);
	CHECK(e.aux == 151 && e.kind == RQ_BIND);
	respq_free(&q);
}

static void sent(struct respq *q, const char *types)
{
	for (; *types; types++)
		respq_push_sent(q, *types);
}

/* The release questions: pipelines, extended batches, COPY, transactions. */
static void test_owed_and_settled(void)
{
	struct respq q;
	respq_init(&q, NULL, NULL, NULL);
	CHECK(respq_reusable(&q));
	sent(&q, "QQQ");
	feed(&q, "TDCZ");
	CHECK(!respq_settled(&q) && respq_owed_rfq(&q) == 2);
	feed(&q, "CZCZ");
	CHECK(respq_reusable(&q));

	sent(&q, "PBDE"); /* no Sync yet: unsynced, not settled */
	CHECK_STR(feed(&q, "12TDC"), "FFFFF");
	CHECK(!respq_settled(&q) && respq_unsynced(&q) && respq_empty(&q));
	sent(&q, "S");
	CHECK(!respq_settled(&q));
	feed(&q, "Z");
	CHECK(respq_reusable(&q));

	sent(&q, "Q"); /* COPY FROM STDIN */
	feed(&q, "G");
	CHECK(q.copy_in && !respq_settled(&q));
	sent(&q, "ddc");
	CHECK(!q.copy_in);
	feed(&q, "CZ");
	CHECK(respq_reusable(&q));

	sent(&q, "Q"); /* COPY TO STDOUT */
	feed(&q, "Hdd");
	CHECK(q.copy_out && !respq_settled(&q));
	feed(&q, "cCZ");
	CHECK(respq_reusable(&q));

	sent(&q, "Q"); /* BEGIN: settled, but not reusable */
	feed(&q, "Cx");
	CHECK(respq_settled(&q) && !respq_reusable(&q));
	feed(&q, "Z"); /* an answer to nothing: no underflow, and never settled again */
	CHECK(respq_owed_rfq(&q) == 0 && q.inexact && !respq_settled(&q));
	respq_reset(&q);
	CHECK(respq_reusable(&q));
	respq_free(&q);
}

static void test_errors_and_inexact(void)
{
	struct respq q;
	respq_init(&q, NULL, NULL, NULL);
	/* An error in an extended message: the Query after it in the same batch
	 * is skipped by the backend and owes no ReadyForQuery; the Sync does. */
	sent(&q, "PBEQS");
	CHECK(respq_owed_rfq(&q) == 2);
	feed(&q, "E");
	CHECK(respq_owed_rfq(&q) == 1);
	feed(&q, "Z");
	CHECK(respq_reusable(&q));
	/* ... but a Query's own error after an answered batch is the Query's. */
	sent(&q, "PBDEQ");
	feed(&q, "12TDCE");
	CHECK(respq_owed_rfq(&q) == 1);
	feed(&q, "Z");
	CHECK(respq_reusable(&q));
	/* A protocol violation during COPY IN: exact accounting gives up. */
	sent(&q, "Q");
	feed(&q, "G");
	sent(&q, "Q");
	CHECK(q.inexact && !respq_settled(&q));
	respq_reset(&q);
	/* A COPY with requests queued behind it: they reach a backend in COPY IN. */
	sent(&q, "PBES");
	feed(&q, "12G");
	CHECK(q.inexact && q.copy_in);
	respq_reset(&q);
	CHECK(respq_reusable(&q));
	respq_free(&q);
}

/* The ring's cap: one request more than it keeps makes the tracker inexact. */
static void test_ring_cap(void)
{
	struct respq q;
	start(&q);
	for (uint32_t i = 0; i < RQ_RING_MAX; i++)
		push(&q, RQ_BIND, RQ_FORWARD, i);
	CHECK(!q.inexact && respq_len(&q) == RQ_RING_MAX);
	trail[0] = '\0';
	push(&q, RQ_BIND, RQ_FORWARD, 7);
	CHECK(q.inexact && respq_len(&q) == RQ_RING_MAX);
	CHECK_STR(trail, "d7s ");
	respq_free(&q);
}

/* The owner gives up its entries: what was sent stays owed, a synthesized
 * answer alone does not. */
static void test_abandon(void)
{
	struct respq q;
	start(&q);
	push(&q, RQ_PARSE, RQ_SYNTH, 1);
	respq_abandon(&q);
	CHECK(respq_reusable(&q));
	push(&q, RQ_QUERY, RQ_FORWARD, 2);
	respq_abandon(&q);
	CHECK(respq_empty(&q) && q.inexact && !respq_settled(&q));
	CHECK_STR(trail, "d1s d2s ");
	respq_free(&q);
}

/* ---- prepared statement state ---- */

static size_t key(unsigned char *buf, const char *sql, uint16_t nparams)
{
	size_t n = strlen(sql) + 1;
	memcpy(buf, sql, n);
	buf[n] = (unsigned char)(nparams >> 8);
	buf[n + 1] = (unsigned char)nparams;
	memset(buf + n + 2, 0, (size_t)nparams * 4);
	return n + 2 + (size_t)nparams * 4;
}

static void test_cache(void)
{
	unsigned char k1[64], k2[64];
	size_t l1 = key(k1, "select $1", 1), l2 = key(k2, "select $1", 0);
	size_t base = ps_cache_bytes(&pc);
	struct ps_stmt *a = ps_cache_get(&pc, k1, l1);
	struct ps_stmt *b = ps_cache_get(&pc, k1, l1);
	struct ps_stmt *c = ps_cache_get(&pc, k2, l2);
	CHECK(a == b && a != c);
	CHECK(strncmp(a->name, "TB_", 3) == 0 && strcmp(a->name, c->name) != 0);
	CHECK(a->parse[0] == 'P' && memcmp(ps_stmt_key(a), k1, l1) == 0);
	CHECK(a->parse_len == 5 + strlen(a->name) + 1 + l1);
	CHECK(ps_cache_count(&pc) == 2 && ps_cache_bytes(&pc) > base);
	ps_stmt_unref(a);
	ps_stmt_unref(b);
	ps_stmt_unref(c);
	CHECK(ps_cache_count(&pc) == 0 && ps_cache_bytes(&pc) == base);
	/* many entries: the table grows and every one is found again */
	struct ps_stmt *all[300];
	unsigned char k[64];
	for (int i = 0; i < 300; i++) {
		char sql[32];
		snprintf(sql, sizeof(sql), "select %d", i);
		all[i] = ps_cache_get(&pc, k, key(k, sql, 0));
	}
	int same = 0;
	for (int i = 0; i < 300; i++) {
		char sql[32];
		snprintf(sql, sizeof(sql), "select %d", i);
		struct ps_stmt *again = ps_cache_get(&pc, k, key(k, sql, 0));
		same += again == all[i];
		ps_stmt_unref(again);
		ps_stmt_unref(all[i]);
	}
	CHECK(same == 300 && ps_cache_count(&pc) == 0);
}

static void test_client_names(void)
{
	unsigned char k[64];
	struct ps_stmt *st = ps_cache_get(&pc, k, key(k, "select 1", 0));
	struct ps_client *m = ps_client_new();
	struct ps_name *n = ps_client_add(m, "s1", st);
	ps_stmt_unref(st);
	CHECK(ps_client_find(m, "s1") == n && !ps_client_find(m, "s2") && m->count == 1);
	ps_name_hold(n); /* a queued request points at it */
	ps_name_remove(n);
	CHECK(!ps_client_find(m, "s1") && m->count == 0 && !n->owner);
	CHECK(ps_cache_count(&pc) == 1); /* still held by the request */
	ps_name_put(n);
	CHECK(ps_cache_count(&pc) == 0);
	char name[16];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		st = ps_cache_get(&pc, k, key(k, name, 0));
		ps_client_add(m, name, st);
		ps_stmt_unref(st);
	}
	CHECK(m->count == 100 && ps_client_find(m, "n77") && ps_cache_count(&pc) == 100);
	ps_client_free(m);
	CHECK(ps_cache_count(&pc) == 0);
}

static void test_server_set(void)
{
	unsigned char k[64];
	struct ps_stmt *a = ps_cache_get(&pc, k, key(k, "select 'a'", 0));
	struct ps_stmt *b = ps_cache_get(&pc, k, key(k, "select 'b'", 0));
	struct ps_sset s;
	ps_sset_init(&s);
	struct ps_snode *na = ps_sset_prepare(&s, a);
	uint64_t ga = na->gen;
	ps_sset_prepare(&s, b);
	CHECK(s.count == 2 && ps_sset_oldest(&s)->stmt == a);
	ps_sset_touch(&s, na);
	CHECK(ps_sset_oldest(&s)->stmt == b);
	CHECK(!ps_sset_needs_close(&s, a));
	/* evict a: closing until confirmed, and a new Parse of it is preceded by a Close */
	uint64_t gc = ps_sset_closing(&s, na);
	CHECK(s.count == 1 && ps_sset_needs_close(&s, a) && ps_sset_find(&s, a)->closing);
	ps_sset_forget(&s, a, ga); /* a stale completion changes nothing */
	CHECK(ps_sset_find(&s, a) != NULL);
	ps_sset_forget(&s, a, gc);
	CHECK(!ps_sset_find(&s, a) && !ps_sset_needs_close(&s, a));
	/* prepare again while a Close is in flight, then the Close completes: still prepared */
	na = ps_sset_prepare(&s, a);
	gc = ps_sset_closing(&s, na);
	na = ps_sset_prepare(&s, a);
	ps_sset_forget(&s, a, gc);
	CHECK(ps_sset_find(&s, a) == na && !na->closing && s.count == 2);
	ps_sset_clear(&s);
	CHECK(s.count == 0 && s.nnodes == 0);
	s.discards = 1;
	CHECK(ps_sset_needs_close(&s, b));
	ps_sset_free(&s);
	ps_stmt_unref(a);
	ps_stmt_unref(b);
	CHECK(ps_cache_count(&pc) == 0);
}

/* An emit whose send closed the owner stops the release at once: the owner
 * may have freed the queue, so the entry is neither popped nor reported. */
static void test_failed_emit_stops_release(void)
{
	static const uint64_t failing = 2;
	struct respq q;
	trail[0] = '\0';
	respq_init(&q, on_done, on_emit, (void *)&failing);
	push(&q, RQ_PARSE, RQ_SYNTH, 1);
	push(&q, RQ_CLOSE, RQ_SYNTH, 2);
	push(&q, RQ_CLOSE, RQ_SYNTH, 3);
	CHECK(!respq_release_synth(&q));
	CHECK_STR(trail, "e1 d1o e2 ");
	CHECK(respq_len(&q) == 2);
	respq_free(&q);
	CHECK_STR(trail, "e1 d1o e2 d2s d3s ");
}

int main(void)
{
	test_failed_emit_stops_release();
	test_plain_and_synth();
	test_absorb_and_describe();
	test_error_skips_to_sync();
	test_error_before_sync_is_sent();
	test_query_and_function();
	test_copy_and_confusion();
	test_ring_wraps();
	test_owed_and_settled();
	test_errors_and_inexact();
	test_ring_cap();
	test_abandon();
	test_cache();
	test_client_names();
	test_server_set();
	return unit_finish("test_respq");
}
