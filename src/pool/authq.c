#include "pool/authq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strmap.h"
#include "core/util.h"
#include "pg/proto.h"
#include "pg/userlist.h"
#include "pool/client_auth.h"
#include "pool/pool.h"
#include "pool/runtime.h"
#include "pool/server.h"

/* One query in flight for one (lookup alias, auth_user, query, user). */
struct auth_lookup {
	char *key;  /* in w->auth_lookups: the single-flight index */
	char *user; /* the client user looked up ($1) */
	char *query;
	struct pool *pool;           /* the lookup alias's pool of auth_user */
	struct server *server;       /* running the query, or NULL while queued */
	struct list_node queue_node; /* pool.authq_queue while waiting for a server */
	struct list_node waiters;    /* struct authq_waiter */
	char *secret;                /* the first row's second column; wiped */
	bool got_row, null_secret;
	char error[600]; /* set: the query failed */
};

static const char *cfg_or(const char *db_value, const char *global)
{
	return db_value && *db_value ? db_value : global && *global ? global : NULL;
}

bool authq_enabled(const struct client *c)
{
	struct worker *w = client_worker(c);
	return !c->is_admin && cfg_or(c->db->cfg->auth_user, w->cfg->auth_user) &&
	       cfg_or(c->db->cfg->auth_query, client_worker(c)->cfg->auth_query);
}

static void lookup_free(struct auth_lookup *l)
{
	struct worker *w = l->pool->w;
	strmap_del_value(&w->auth_lookups, l->key, l);
	list_del(&l->queue_node);
	pool_kick(l->pool); /* it may be empty now, and freed at the pass end */
	free(l->key);
	free(l->user);
	free(l->query);
	secret_free(l->secret);
	free(l);
}

/* Every waiting login gets the answer; the lookup is gone afterwards. */
static void lookup_finish(struct auth_lookup *l)
{
	struct userlist_entry *e = NULL;
	const char *err = l->error[0] ? l->error : NULL;
	if (!err && l->got_row && !l->null_secret) {
		e = userlist_entry_new(l->user, l->secret);
		if (!e)
			err = "auth_query returned a secret that is not a valid password, md5 hash or SCRAM verifier";
	}
	struct list_node *n, *t;
	list_for_each_safe(n, t, &l->waiters) {
		struct authq_waiter *aw = list_entry(n, struct authq_waiter, node);
		list_del(&aw->node);
		aw->lookup = NULL;
		/* Each login owns its copy (the entry is wiped with the login). */
		struct userlist_entry *mine = e ? userlist_entry_new(e->user, e->secret) : NULL;
		TB_UNUSED_RESULT(client_auth_lookup_done(aw->client, mine,
							 err)); /* the others are served either way */
	}
	userlist_entry_free(e);
	lookup_free(l);
}

static struct pool *lookup_pool(const struct client *c, char *why, size_t whylen)
{
	struct worker *w = client_worker(c);
	const char *dbname = cfg_or(c->db->cfg->auth_dbname, w->cfg->auth_dbname);
	struct database *db = dbname ? runtime_find_database(w, dbname) : c->db;
	if (!db) {
		snprintf(why, whylen, "auth_dbname \"%s\" is not a configured alias", dbname);
		return NULL;
	}
	return pool_for_user(db, cfg_or(c->db->cfg->auth_user, w->cfg->auth_user));
}

static char *lookup_key(const struct pool *p, const char *query, const char *user)
{
	size_t n = strlen(p->db->name) + strlen(p->user) + strlen(query) + strlen(user) + 4;
	char *key = xmalloc(n);
	snprintf(key, n, "%s\n%s\n%s\n%s", p->db->name, p->user, query, user);
	return key;
}

bool authq_start(struct client *c, struct authq_waiter *aw, char *why, size_t whylen)
{
	struct worker *w = client_worker(c);
	struct pool *p = lookup_pool(c, why, whylen);
	if (!p)
		return false;
	const char *query = cfg_or(c->db->cfg->auth_query, client_worker(c)->cfg->auth_query);
	char *key = lookup_key(p, query, c->user);
	struct auth_lookup *l = strmap_get(&w->auth_lookups, key);
	if (l) {
		free(key);
		log_debug("auth_query for user \"%s\" joins the lookup in flight", c->user);
	} else {
		l = xcalloc(1, sizeof(*l));
		l->key = key;
		l->user = xstrdup(c->user);
		l->query = xstrdup(query);
		l->pool = p;
		list_init(&l->waiters);
		list_init(&l->queue_node);
		strmap_put(&w->auth_lookups, l->key, l);
		list_add_tail(&p->authq_queue, &l->queue_node);
		log_debug("auth_query for user \"%s\" queued on %s@%s", c->user, p->user, p->db->name);
		pool_kick(p);
	}
	aw->lookup = l;
	aw->client = c;
	list_add_tail(&l->waiters, &aw->node);
	return true;
}

void authq_cancel(struct authq_waiter *aw)
{
	struct auth_lookup *l = aw->lookup;
	if (!l)
		return;
	list_del(&aw->node);
	aw->lookup = NULL;
	/* Nobody waits and no server runs it yet: drop it. A running one
	 * finishes (its server is busy anyway) and then frees itself. */
	if (list_empty(&l->waiters) && !l->server)
		lookup_free(l);
}

static void build_query(struct pbuf *b, const struct auth_lookup *l)
{
	pbuf_begin(b, 'P');
	pbuf_put_str(b, "");
	pbuf_put_str(b, l->query);
	pbuf_put_u16(b, 0);
	pbuf_end(b);
	pbuf_begin(b, 'B');
	pbuf_put_str(b, "");
	pbuf_put_str(b, "");
	pbuf_put_u16(b, 0); /* parameters in text */
	pbuf_put_u16(b, 1);
	pbuf_put_u32(b, (uint32_t)strlen(l->user));
	pbuf_put_bytes(b, l->user, strlen(l->user));
	pbuf_put_u16(b, 0); /* results in text */
	pbuf_end(b);
	pbuf_begin(b, 'E');
	pbuf_put_str(b, "");
	pbuf_put_u32(b, 0);
	pbuf_end(b);
	proto_sync(b);
}

bool authq_take_server(struct pool *p, struct server *s)
{
	struct list_node *n = list_first(&p->authq_queue);
	if (!n)
		return false;
	struct auth_lookup *l = list_entry(n, struct auth_lookup, queue_node);
	list_del(&l->queue_node);
	l->server = s;
	s->authq = l;
	s->just_checked = false;
	log_debug("auth_query for user \"%s\" runs on %s@%s", l->user, p->user, p->db->name);
	struct pbuf b;
	pbuf_init(&b, 1 << 20);
	build_query(&b, l);
	if (b.failed) {
		snprintf(l->error, sizeof(l->error), "auth_query too long");
		pbuf_free(&b);
		s->authq = NULL;
		l->server = NULL;
		lookup_finish(l);
		return true;
	}
	server_run_own(s, b.data, b.len);
	pbuf_free(&b);
	return true;
}

void authq_pool_failed(struct pool *p)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &p->authq_queue) {
		struct auth_lookup *l = list_entry(n, struct auth_lookup, queue_node);
		snprintf(l->error, sizeof(l->error),
			 "server login as auth_user \"%s\" on alias \"%s\" failed: %s", p->user, p->db->name,
			 p->last_error);
		lookup_finish(l);
	}
}

/* The first DataRow: column 2 is the secret (NULL: no password, or expired). */
static void take_row(struct auth_lookup *l, const unsigned char *body, size_t len)
{
	if (l->got_row)
		return;
	struct msg_reader r;
	reader_init(&r, body, len);
	uint16_t ncols = reader_u16(&r);
	if (ncols != 2) {
		snprintf(l->error, sizeof(l->error),
			 "auth_query on alias \"%s\" must return 2 columns "
			 "(name, secret), not %u",
			 l->pool->db->name, ncols);
		return;
	}
	uint32_t n1 = reader_u32(&r);
	if (n1 != UINT32_MAX)
		reader_bytes(&r, n1);
	uint32_t n2 = reader_u32(&r);
	const unsigned char *sec = n2 == UINT32_MAX ? NULL : reader_bytes(&r, n2);
	if (r.bad || (sec && memchr(sec, 0, n2))) {
		snprintf(l->error, sizeof(l->error), "malformed row from auth_query on alias \"%s\"",
			 l->pool->db->name);
		return;
	}
	l->got_row = true;
	l->null_secret = !sec;
	if (sec) {
		l->secret = xmalloc((size_t)n2 + 1);
		memcpy(l->secret, sec, n2);
		l->secret[n2] = '\0';
	}
}

void authq_server_message(struct server *s, char type, const unsigned char *body, size_t len)
{
	struct auth_lookup *l = s->authq;
	struct pg_error e;
	switch (type) {
	case 'D':
		take_row(l, body, len);
		return;
	case 'E':
		if (!l->error[0])
			snprintf(l->error, sizeof(l->error), "auth_query as \"%s\" on alias \"%s\" failed: %s",
				 l->pool->user, l->pool->db->name,
				 proto_parse_error(body, len, &e) ? e.message : "unreadable error");
		return;
	case 'Z':
		s->authq = NULL;
		l->server = NULL;
		if (l->error[0])
			log_warning("%s", l->error);
		lookup_finish(l);
		server_own_done(s, len > 0 ? (char)body[0] : 'I');
		return;
	default:
		return; /* ParseComplete, BindComplete, CommandComplete, notices */
	}
}

void authq_server_lost(struct server *s, const char *why)
{
	struct auth_lookup *l = s->authq;
	s->authq = NULL;
	l->server = NULL;
	snprintf(l->error, sizeof(l->error), "the server running auth_query on alias \"%s\" was lost: %s",
		 l->pool->db->name, why);
	lookup_finish(l);
}
