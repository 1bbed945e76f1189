#include "pool/ps_forward.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "pg/proto.h"
#include "pool/client.h"
#include "pool/client_rare.h"
#include "pool/prepared.h"
#include "pool/runtime.h"

/* Simple queries shorter than this are read whole, to see DISCARD ALL and
 * DEALLOCATE; longer ones stream (no such statement is that long). */
#define PS_QUERY_PEEK_MAX 256u

/* An unnamed statement that drops statements (psycopg sends DEALLOCATE ALL
 * that way): what its next Execute does. */
enum ps_armed {
	ARM_NONE = 0,
	ARM_DISCARD,
	ARM_DEALLOCATE
};

struct ps_server {
	struct server *srv;
	struct ps_sset set;
	enum ps_armed armed;
	struct ps_name *renaming; /* the name an error being replaced is about (held) */
};

/* What a queued request does to the bookkeeping when it completes. */
enum ps_op {
	OP_NONE = 0,
	OP_SRV_PARSE,    /* a Parse the pooler sent: undone if it fails or is skipped */
	OP_CLIENT_PARSE, /* the client's Parse sent on: also unmaps the client's name */
	OP_SYNTH_PARSE,  /* the client's Parse the pooler answered: unmapped if skipped */
	OP_EVICT_CLOSE,  /* Close of the least recently used statement */
	OP_DISCARD,      /* DISCARD ALL / DEALLOCATE ALL sent on */
	OP_RENAMED,      /* a request under the pooler's name for the client's name (arg2) */
};

static void on_done(void *ctx, const struct rq_entry *e, enum rq_result r);
static bool on_emit(void *ctx, const struct rq_entry *e);
static bool unnamed_parse(struct client *c, struct ps_server *ps, const unsigned char *key,
			  const unsigned char *raw, size_t len, struct pbuf *out);

void ps_client_attach(struct client *c)
{
	struct worker *w = client_worker(c);
	if (c->mode == POOL_MODE_SESSION || w->cfg->max_prepared_statements <= 0)
		return;
	c->ps_on = true; /* the map itself comes with the first name */
}

void ps_client_detach(struct client *c)
{
	if (c->rare) {
		ps_client_free(c->rare->ps);
		c->rare->ps = NULL;
		client_rare_trim(c);
	}
	c->ps_on = false;
}

static struct ps_server *server_state(struct server *s)
{
	if (!s->ps) {
		s->ps = xcalloc(1, sizeof(*s->ps));
		s->ps->srv = s;
		ps_sset_init(&s->ps->set);
		/* From now on the server's answer tracker reports to this layer. */
		respq_set_owner(&s->respq, on_done, on_emit, s->ps);
	}
	return s->ps;
}

void ps_server_free(struct server *s)
{
	if (!s->ps)
		return;
	respq_abandon(&s->respq);
	respq_set_owner(&s->respq, NULL, NULL, NULL);
	if (s->ps->renaming)
		ps_name_put(s->ps->renaming);
	ps_sset_free(&s->ps->set);
	free(s->ps);
	s->ps = NULL;
}

uint32_t ps_client_count(const struct client *c)
{
	return client_ps(c) ? client_ps(c)->count : 0;
}

uint32_t ps_server_count(const struct server *s)
{
	return s->ps ? s->ps->set.count : 0;
}

/* ---- completion of queued requests ---- */

static void unmap_if_current(struct ps_name *n)
{
	if (n->owner)
		ps_name_remove(n);
}

static void on_done(void *ctx, const struct rq_entry *e, enum rq_result r)
{
	struct ps_server *ps = ctx;
	struct ps_stmt *st = e->arg;
	struct ps_name *n = e->arg2;
	switch ((enum ps_op)e->op) {
	case OP_NONE:
		return;
	case OP_SRV_PARSE:
		if (r != RQ_OK)
			ps_sset_forget(&ps->set, st, e->aux);
		ps_stmt_unref(st);
		return;
	case OP_CLIENT_PARSE:
		if (r != RQ_OK) {
			ps_sset_forget(&ps->set, st, e->aux);
			unmap_if_current(n);
		}
		ps_name_put(n);
		ps_stmt_unref(st);
		return;
	case OP_SYNTH_PARSE:
		if (r == RQ_SKIPPED)
			unmap_if_current(n);
		ps_name_put(n);
		return;
	case OP_EVICT_CLOSE:
		if (r == RQ_OK)
			ps_sset_forget(&ps->set, st, e->aux);
		else
			ps->set.unsure = true; /* it may still be there: Close before any Parse from now on */
		ps_stmt_unref(st);
		return;
	case OP_DISCARD:
		ps->set.discards--;
		if (r != RQ_OK)
			ps->set.unsure = true;
		return;
	case OP_RENAMED:
		/* An error is replaced after this returns: keep the name until then. */
		if (r == RQ_FAILED && !ps->renaming)
			ps->renaming = n;
		else
			ps_name_put(n);
		return;
	}
}

/* A lost client releases the server, whose queue may be freed then: false
 * stops the release. */
static bool on_emit(void *ctx, const struct rq_entry *e)
{
	struct ps_server *ps = ctx;
	struct client *c = ps->srv->client;
	if (!c)
		return false;
	unsigned char msg[5] = { e->kind == RQ_PARSE ? '1' : '3', 0, 0, 0, 4 };
	return client_send(c, msg, sizeof(msg));
}

static void push(struct ps_server *ps, enum rq_kind kind, enum rq_action action, enum ps_op op, void *arg,
		 void *arg2, uint64_t aux)
{
	struct rq_entry e = { .kind = (uint8_t)kind,
			      .action = (uint8_t)action,
			      .op = (uint8_t)op,
			      .arg = arg,
			      .arg2 = arg2,
			      .aux = aux };
	respq_push(&ps->srv->respq, &e);
}

/* The client's request sent under the pooler's name for its statement n:
 * an error about it must name the client's statement, as PostgreSQL would. */
static void push_renamed(struct ps_server *ps, enum rq_kind kind, struct ps_name *n)
{
	ps_name_hold(n);
	push(ps, kind, RQ_RENAME_ERROR, OP_RENAMED, NULL, n, 0);
}

/* ---- what the pooler sends of its own ---- */

static void put_close(struct pbuf *out, const char *name)
{
	pbuf_begin(out, 'C');
	pbuf_put_u8(out, 'S');
	pbuf_put_str(out, name);
	pbuf_end(out);
}

static uint32_t server_capacity(struct worker *w)
{
	int max = w->cfg->max_prepared_statements;
	return max > 0 ? (uint32_t)max : 1;
}

/* At max_prepared_statements, close the least recently used statements. */
static void make_room(struct ps_server *ps, struct pbuf *out)
{
	struct worker *w = ps->srv->w;
	struct ps_snode *old;
	while (ps->set.count >= server_capacity(w) && (old = ps_sset_oldest(&ps->set))) {
		uint64_t gen = ps_sset_closing(&ps->set, old);
		ps_stmt_ref(old->stmt);
		put_close(out, old->stmt->name);
		push(ps, RQ_CLOSE, RQ_ABSORB, OP_EVICT_CLOSE, old->stmt, NULL, gen);
	}
}

/* Before a Parse of st: room for it, and a Close first when the server
 * might still hold it (a Close or DISCARD of it not yet confirmed). */
static uint64_t prepare_slot(struct ps_server *ps, struct ps_stmt *st, struct pbuf *out)
{
	make_room(ps, out);
	if (ps_sset_needs_close(&ps->set, st)) {
		put_close(out, st->name);
		push(ps, RQ_CLOSE, RQ_ABSORB, OP_NONE, NULL, NULL, 0);
	}
	ps->srv->pool->stats.server_parse_count++;
	return ps_sset_prepare(&ps->set, st)->gen;
}

/* The statement must exist on the server before the message that uses it. */
static void ensure_prepared(struct ps_server *ps, struct ps_stmt *st, struct pbuf *out)
{
	struct ps_snode *n = ps_sset_find(&ps->set, st);
	if (n && !n->closing) {
		ps_sset_touch(&ps->set, n);
		return;
	}
	uint64_t gen = prepare_slot(ps, st, out);
	pbuf_put_bytes(out, st->parse, st->parse_len);
	ps_stmt_ref(st);
	push(ps, RQ_PARSE, RQ_ABSORB, OP_SRV_PARSE, st, NULL, gen);
}

/* ---- client messages ---- */

struct client_msg {
	const unsigned char *raw; /* the whole message */
	size_t len;
	struct msg_reader r; /* over its body */
};

static void forward_raw(const struct client_msg *m, struct pbuf *out)
{
	pbuf_put_bytes(out, m->raw, m->len);
}

/* The Parse body after its name must be a query and parameter OIDs. */
static bool parse_key(struct msg_reader *r, const unsigned char **key, size_t *key_len)
{
	*key = r->p;
	reader_str(r);
	uint16_t n = reader_u16(r);
	reader_bytes(r, (size_t)n * 4);
	*key_len = (size_t)(r->p - *key);
	return reader_done(r);
}

static bool on_parse(struct client *c, struct ps_server *ps, struct client_msg *m, struct pbuf *out)
{
	struct worker *w = client_worker(c);
	const char *name = reader_str(&m->r);
	const unsigned char *key;
	size_t key_len;
	if (!parse_key(&m->r, &key, &key_len))
		return false;
	ps->srv->pool->stats.client_parse_count++;
	if (!*name)
		return unnamed_parse(c, ps, key, m->raw, m->len, out);
	struct ps_name *n = ps_client_find(client_ps(c), name);
	if (n) {
		/* A name in use: the server itself answers 42P05 and skips the batch,
		 * as it would without the pooler. */
		ensure_prepared(ps, n->stmt, out);
		ps->srv->pool->stats.server_parse_count++;
		pbuf_begin(out, 'P');
		pbuf_put_str(out, n->stmt->name);
		pbuf_put_bytes(out, key, key_len);
		pbuf_end(out);
		push_renamed(ps, RQ_PARSE, n);
		return true;
	}
	struct ps_stmt *st = ps_cache_get(&w->stmts, key, key_len);
	struct client_rare *r = client_rare_get(c);
	if (!r->ps)
		r->ps = ps_client_new();
	n = ps_client_add(r->ps, name, st);
	ps_stmt_unref(st);
	ps_name_hold(n);
	struct ps_snode *sn = ps_sset_find(&ps->set, st);
	if (sn && !sn->closing) {
		ps_sset_touch(&ps->set, sn);
		push(ps, RQ_PARSE, RQ_SYNTH, OP_SYNTH_PARSE, NULL, n, 0);
		return true;
	}
	uint64_t gen = prepare_slot(ps, st, out);
	pbuf_put_bytes(out, st->parse, st->parse_len);
	ps_stmt_ref(st);
	push(ps, RQ_PARSE, RQ_FORWARD, OP_CLIENT_PARSE, st, n, gen);
	return true;
}

static bool on_bind(struct client *c, struct ps_server *ps, struct client_msg *m, struct pbuf *out)
{
	const char *portal = reader_str(&m->r);
	const char *name = reader_str(&m->r);
	if (m->r.bad)
		return false;
	struct ps_name *n = *name ? ps_client_find(client_ps(c), name) : NULL;
	if (!n) {
		/* Unnamed, or not one of ours: the server answers as it would. */
		forward_raw(m, out);
		push(ps, RQ_BIND, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return true;
	}
	ensure_prepared(ps, n->stmt, out);
	pbuf_begin(out, 'B');
	pbuf_put_str(out, portal);
	pbuf_put_str(out, n->stmt->name);
	pbuf_put_bytes(out, m->r.p, reader_left(&m->r));
	pbuf_end(out);
	push_renamed(ps, RQ_BIND, n);
	return true;
}

static bool on_describe(struct client *c, struct ps_server *ps, struct client_msg *m, struct pbuf *out)
{
	uint8_t what = reader_u8(&m->r);
	const char *name = reader_str(&m->r);
	if (!reader_done(&m->r) || (what != 'S' && what != 'P'))
		return false;
	struct ps_name *n = what == 'S' && *name ? ps_client_find(client_ps(c), name) : NULL;
	if (!n) {
		forward_raw(m, out);
		push(ps, what == 'S' ? RQ_DESCRIBE_STMT : RQ_DESCRIBE_PORTAL, RQ_FORWARD, OP_NONE, NULL, NULL,
		     0);
		return true;
	}
	ensure_prepared(ps, n->stmt, out);
	pbuf_begin(out, 'D');
	pbuf_put_u8(out, 'S');
	pbuf_put_str(out, n->stmt->name);
	pbuf_end(out);
	push_renamed(ps, RQ_DESCRIBE_STMT, n);
	return true;
}

static bool on_close(struct client *c, struct ps_server *ps, struct client_msg *m, struct pbuf *out)
{
	uint8_t what = reader_u8(&m->r);
	const char *name = reader_str(&m->r);
	if (!reader_done(&m->r) || (what != 'S' && what != 'P'))
		return false;
	if (what == 'P' || !*name) {
		forward_raw(m, out);
		push(ps, RQ_CLOSE, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return true;
	}
	/* Only the client's name goes: the server keeps the statement for others.
	 * PostgreSQL answers CloseComplete for an unknown name too. */
	struct ps_name *n = ps_client_find(client_ps(c), name);
	if (n)
		ps_name_remove(n);
	push(ps, RQ_CLOSE, RQ_SYNTH, OP_NONE, NULL, NULL, 0);
	return true;
}

/* ---- DISCARD ALL, DEALLOCATE ---- */

enum discard_kind {
	SQL_OTHER = 0,
	SQL_DISCARD_ALL,
	SQL_DEALLOCATE_ALL,
	SQL_DEALLOCATE_NAME
};

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return p;
}

/* A keyword followed by a space or the end. */
static bool take_word(const char **p, const char *end, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(end - *p) < n || strncasecmp(*p, word, n) != 0)
		return false;
	if (*p + n < end && (isalnum((unsigned char)(*p)[n]) || (*p)[n] == '_'))
		return false;
	*p = skip_space(*p + n, end);
	return true;
}

/* An identifier, folded to lower case unless quoted, as PostgreSQL reads it. */
static bool take_ident(const char **p, const char *end, char *out, size_t outlen)
{
	size_t n = 0;
	const char *s = *p;
	if (s < end && *s == '"') {
		for (s++; s < end; s++) {
			if (*s == '"' && !(s + 1 < end && s[1] == '"'))
				break;
			if (*s == '"')
				s++;
			if (n + 1 >= outlen)
				return false;
			out[n++] = *s;
		}
		if (s >= end)
			return false;
		s++;
	} else {
		while (s < end &&
		       (isalnum((unsigned char)*s) || *s == '_' || *s == '$' || (unsigned char)*s >= 0x80)) {
			if (n + 1 >= outlen)
				return false;
			out[n++] = (char)tolower((unsigned char)*s);
			s++;
		}
	}
	out[n] = '\0';
	*p = skip_space(s, end);
	return n > 0;
}

static enum discard_kind classify_query(const char *sql, size_t len, char *name, size_t namelen)
{
	const char *end = sql + len, *p = skip_space(sql, end);
	enum discard_kind kind;
	if (take_word(&p, end, "discard")) {
		if (!take_word(&p, end, "all"))
			return SQL_OTHER;
		kind = SQL_DISCARD_ALL;
	} else if (take_word(&p, end, "deallocate")) {
		take_word(&p, end, "prepare");
		if (take_word(&p, end, "all"))
			kind = SQL_DEALLOCATE_ALL;
		else if (take_ident(&p, end, name, namelen))
			kind = SQL_DEALLOCATE_NAME;
		else
			return SQL_OTHER;
	} else {
		return SQL_OTHER;
	}
	if (p < end && *p == ';')
		p = skip_space(p + 1, end);
	return p == end ? kind : SQL_OTHER;
}

/* The server will drop every statement: so do the client's names and the
 * record of what this server has (until it confirms, a Parse is preceded by
 * a Close, in case it failed). */
static void discard_all(struct client *c, struct ps_server *ps)
{
	if (client_ps(c))
		ps_client_clear(client_ps(c));
	ps_sset_clear(&ps->set);
	ps->set.discards++;
}

/* An unnamed Parse goes on as it is, unless its text drops statements. */
static bool unnamed_parse(struct client *c, struct ps_server *ps, const unsigned char *key,
			  const unsigned char *raw, size_t len, struct pbuf *out)
{
	char name[256];
	const char *sql = (const char *)key;
	ps->srv->pool->stats.server_parse_count++;
	ps->armed = ARM_NONE;
	switch (classify_query(sql, strlen(sql), name, sizeof(name))) {
	case SQL_DISCARD_ALL:
	case SQL_DEALLOCATE_ALL:
		discard_all(c, ps);
		ps->armed = ARM_DISCARD;
		break;
	case SQL_DEALLOCATE_NAME: {
		struct ps_name *n = ps_client_find(client_ps(c), name);
		if (!n)
			break;
		/* Ours: an empty statement stands in; its Execute answers DEALLOCATE. */
		ps_name_remove(n);
		ps->armed = ARM_DEALLOCATE;
		const unsigned char *params = key + strlen(sql) + 1;
		pbuf_begin(out, 'P');
		pbuf_put_str(out, "");
		pbuf_put_str(out, "");
		pbuf_put_bytes(out, params, (size_t)(raw + len - params));
		pbuf_end(out);
		push(ps, RQ_PARSE, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return true;
	}
	case SQL_OTHER:
		break;
	}
	pbuf_put_bytes(out, raw, len);
	push(ps, RQ_PARSE, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
	return true;
}

static bool on_query(struct client *c, struct ps_server *ps, struct client_msg *m, struct pbuf *out)
{
	size_t left = reader_left(&m->r);
	const char *sql = (const char *)m->r.p;
	if (left == 0 || sql[left - 1] != '\0')
		return false;
	char name[256];
	switch (classify_query(sql, left - 1, name, sizeof(name))) {
	case SQL_DISCARD_ALL:
	case SQL_DEALLOCATE_ALL:
		discard_all(c, ps);
		forward_raw(m, out);
		push(ps, RQ_QUERY, RQ_FORWARD, OP_DISCARD, NULL, NULL, 0);
		return true;
	case SQL_DEALLOCATE_NAME: {
		struct ps_name *n = ps_client_find(client_ps(c), name);
		if (n) {
			/* Ours: unmap it and let an empty query stand in, so the client
			 * gets DEALLOCATE and ReadyForQuery from the server's own state. */
			ps_name_remove(n);
			proto_query(out, "");
			push(ps, RQ_QUERY, RQ_EMPTY_AS_TAG, OP_NONE, (void *)"DEALLOCATE", NULL, 0);
			return true;
		}
		break;
	}
	case SQL_OTHER:
		break;
	}
	forward_raw(m, out);
	push(ps, RQ_QUERY, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
	return true;
}

static bool mentions(const char *sql, const char *word)
{
	return strcasestr(sql, word) != NULL;
}

void ps_server_reset(struct server *s, const char *sql)
{
	if (!s->ps)
		return;
	char name[256];
	enum discard_kind k = classify_query(sql, strlen(sql), name, sizeof(name));
	if (k == SQL_DISCARD_ALL || k == SQL_DEALLOCATE_ALL) {
		ps_sset_clear(&s->ps->set);
	} else if (mentions(sql, "discard") || mentions(sql, "deallocate")) {
		/* Some of them may go: Close before every Parse from now on. */
		ps_sset_clear(&s->ps->set);
		s->ps->set.unsure = true;
	}
}

bool ps_wants_whole(char type, uint32_t len)
{
	switch (type) {
	case 'P':
	case 'B':
	case 'D':
	case 'C':
		return true;
	case 'Q':
		return len <= PS_QUERY_PEEK_MAX;
	default:
		return false;
	}
}

bool ps_client_msg(struct client *c, struct server *s, const unsigned char *msg, size_t len, struct pbuf *out)
{
	struct ps_server *ps = server_state(s);
	struct client_msg m = { .raw = msg, .len = len };
	reader_init(&m.r, msg + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	switch (msg[0]) {
	case 'P':
		return on_parse(c, ps, &m, out);
	case 'B':
		return on_bind(c, ps, &m, out);
	case 'D':
		return on_describe(c, ps, &m, out);
	case 'C':
		return on_close(c, ps, &m, out);
	case 'Q':
		return on_query(c, ps, &m, out);
	default:
		forward_raw(&m, out);
		ps_client_streamed(s, (char)msg[0]);
		return true;
	}
}

void ps_client_streamed(struct server *s, char type)
{
	struct ps_server *ps = server_state(s);
	switch (type) {
	case 'E': {
		enum ps_armed armed = ps->armed;
		ps->armed = ARM_NONE;
		if (armed == ARM_DISCARD)
			push(ps, RQ_EXECUTE, RQ_FORWARD, OP_DISCARD, NULL, NULL, 0);
		else if (armed == ARM_DEALLOCATE)
			push(ps, RQ_EXECUTE, RQ_EMPTY_AS_TAG, OP_NONE, (void *)"DEALLOCATE", NULL, 0);
		else
			push(ps, RQ_EXECUTE, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return;
	}
	case 'S':
		push(ps, RQ_SYNC, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return;
	case 'Q':
		push(ps, RQ_QUERY, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return;
	case 'F':
		push(ps, RQ_FUNCTION, RQ_FORWARD, OP_NONE, NULL, NULL, 0);
		return;
	default:
		return; /* Flush and COPY messages get no answer of their own */
	}
}

bool ps_flush_synth(struct server *s)
{
	/* Not inside a message the server is still streaming to the client. */
	if (s->ps && s->fwd_remaining == 0 && respq_synth_due(&s->respq))
		return respq_release_synth(&s->respq);
	return true;
}

/* ---- server messages ---- */

void ps_server_abandon(struct server *s)
{
	struct ps_server *ps = s->ps;
	if (!ps)
		return;
	ps->armed = ARM_NONE;
	if (respq_empty(&s->respq) && !s->respq.skipping)
		return;
	respq_abandon(&s->respq);
	ps_sset_clear(&ps->set);
	ps->set.unsure = true;
}

bool ps_server_active(const struct server *s)
{
	return s->ps && s->client && s->client->ps_on;
}

bool ps_server_wants_whole(const struct server *s)
{
	const struct rq_entry *e = respq_head(&s->respq);
	return e && e->action != RQ_FORWARD;
}

/* The server says one of the pooler's statements does not exist: something
 * the pooler could not see dropped it (a DEALLOCATE ALL inside a function or
 * a multi-statement query). This request fails; the next one prepares it again. */
static void forget_if_missing(struct ps_server *ps, const unsigned char *body, size_t len,
			      const struct ps_stmt *st)
{
	struct pg_error e;
	if (!proto_parse_error(body, len, &e) || strcmp(e.sqlstate, "26000") != 0)
		return;
	struct ps_snode *node = ps_sset_find(&ps->set, st);
	if (node)
		ps_sset_forget(&ps->set, st, node->gen);
}

/* The same ErrorResponse with "TB_<n>" written as the client's "name". */
static void put_renamed_error(struct pbuf *b, const unsigned char *body, size_t len, const struct ps_name *n)
{
	char from[40], to[300];
	snprintf(from, sizeof(from), "\"%s\"", n->stmt->name);
	snprintf(to, sizeof(to), "\"%s\"", n->name);
	size_t flen = strlen(from);
	pbuf_begin(b, 'E');
	size_t i = 0;
	while (i < len) {
		const unsigned char *end = memchr(body + i, '\0', len - i);
		size_t field = end ? (size_t)(end - (body + i)) + 1 : len - i;
		const char *v = (const char *)body + i;
		const char *hit = field > 1 && v[0] == 'M' ? strstr(v + 1, from) : NULL;
		if (hit) {
			pbuf_put_bytes(b, v, (size_t)(hit - v));
			pbuf_put_bytes(b, to, strlen(to));
			pbuf_put_bytes(b, hit + flen, field - (size_t)(hit + flen - v));
		} else {
			pbuf_put_bytes(b, v, field);
		}
		i += field;
	}
	pbuf_end(b);
}

bool ps_send_replacement(struct server *s, const struct rq_entry *answered, const unsigned char *body,
			 size_t len)
{
	struct ps_name *n = s->ps ? s->ps->renaming : NULL;
	if (n)
		s->ps->renaming = NULL;
	if (!s->client || (answered->action == RQ_RENAME_ERROR && !n)) {
		if (n)
			ps_name_put(n);
		return true;
	}
	struct pbuf b;
	pbuf_init(&b, len + 512);
	if (answered->action == RQ_RENAME_ERROR) {
		forget_if_missing(s->ps, body, len, n->stmt);
		put_renamed_error(&b, body, len, n);
		ps_name_put(n);
	} else {
		pbuf_begin(&b, 'C');
		pbuf_put_str(&b, answered->arg);
		pbuf_end(&b);
	}
	bool ok = !b.failed && client_send(s->client, b.data, b.len);
	pbuf_free(&b);
	return ok;
}

bool ps_synth_due(const struct server *s)
{
	return s->ps && respq_synth_due(&s->respq);
}

bool ps_release_synth(struct server *s)
{
	return !s->ps || respq_release_synth(&s->respq);
}
