#include "pool/client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "net/linger.h"
#include "net/listener.h"
#include "net/sockopt.h"
#include "net/tls.h"
#include "pg/proto.h"
#include "pg/startup_opts.h"
#include "pg/scram.h"
#include "pool/cancel.h"
#include "pool/cancel_index.h"
#include "pool/cancel_wait.h"
#include "pool/client_auth.h"
#include "pool/client_rare.h"
#include "pool/client_timer.h"
#include "pool/console.h"
#include "pool/climit.h"
#include "pool/peer.h"
#include "pool/pool.h"
#include "pool/ps_forward.h"
#include "pool/runtime.h"
#include "pool/server.h"
#include "pool/timeouts.h"

/* Largest message accepted while logging in: passwords and tokens up to 64 KiB. */
#define LOGIN_MSG_MAX (65536u + 1024u)

static void client_io(evutil_socket_t fd, short what, void *arg);
static bool client_process(struct client *c);

const char *client_state_name(enum client_state st)
{
	static const char *const names[] = {
		"startup", "tls", "auth", "wait-welcome", "idle", "waiting", "active", "closing",
	};
	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static void format_peer(const struct client *c, char *buf, size_t len)
{
	if (c->is_unix) {
		snprintf(buf, len, "unix");
		return;
	}
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
	struct sockaddr_storage ss;
	socklen_t alen = peer_addr_get(&c->addr, &ss);
	if (alen)
		getnameinfo((struct sockaddr *)&ss, alen, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(buf, len, "%s:%s", host, port);
}

void client_log_prefix(const struct client *c, char *buf, size_t len)
{
	char peer[64];
	format_peer(c, peer, sizeof(peer));
	snprintf(buf, len, "C-%llu %s@%s (%s)", (unsigned long long)c->id, c->user ? c->user : "?",
		 c->db ? c->db->name : "?", peer);
}

#define client_log(lvl, c, fmt, ...) \
	do { \
		if (log_enabled(lvl)) { \
			char pfx_[160]; \
			client_log_prefix(c, pfx_, sizeof(pfx_)); \
			log_msg(lvl, "%s: " fmt, pfx_, ##__VA_ARGS__); \
		} \
	} while (0)

static void set_state(struct client *c, enum client_state st, struct list_node *list)
{
	pool_client_state_changed(c, c->state, st);
	c->state = st;
	c->state_since = time_now_usec();
	if (list)
		list_move_tail(list, &c->node);
	else
		list_del(&c->node);
	client_timer_update(c);
}

void client_accept(struct worker *w, int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix)
{
	struct client *c = xcalloc(1, sizeof(*c));
	c->id = ++w->next_id;
	c->is_unix = is_unix;
	c->connect_at = time_now_usec();
	list_init(&c->node);
	deadline_init(&c->timer);
	list_add_tail(&w->clients, &c->all_node);
	w->nclients++;
	sock_setup(&c->sock, &w->socks, w->base, fd, client_io, c);
	peer_addr_set(&c->addr, addr, addrlen);
	set_state(c, CL_STARTUP, &w->login_clients);
	if (!is_unix && !listeners_give_options(w->cfg))
		sockopt_tcp_connection(fd, w->cfg);
	sock_set_read(&c->sock, true);
}

static void send_fatal(struct client *c, const char *sqlstate, const char *msg)
{
	/* A login refused right after its SCRAM final (the console's user
	 * check) finds the socket corked: send what is queued first, or closing
	 * drops it and the error with it. */
	if (!sock_uncork(&c->sock))
		return;
	struct pbuf b;
	pbuf_init(&b, 8192);
	proto_error(&b, "FATAL", sqlstate, msg);
	/* Best effort: the socket is closed right after, and a failed write
	 * loses only this message. */
	if (!b.failed && !c->sock.ssl_write_wants_read && !sock_write(&c->sock, b.data, b.len))
		client_log(LOG_LVL_DEBUG, c, "error not delivered: %s", sock_errmsg(&c->sock));
	pbuf_free(&b);
}

void client_close(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	struct worker *w = client_worker(c);
	if (c->state == CL_CLOSING)
		return;
	char msg[512] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (sqlstate)
		send_fatal(c, sqlstate, msg);
	/* log_pooler_errors: the errors the pooler itself sends (PgBouncer). */
	if (sqlstate && w->cfg->log_pooler_errors) {
		client_log(LOG_LVL_WARNING, c, "closing: %s (%s)", msg, sqlstate);
	} else if (sqlstate && w->cfg->log_disconnections) {
		client_log(LOG_LVL_INFO, c, "closing: %s (%s)", msg, sqlstate);
	} else if (w->cfg->log_disconnections && c->state >= CL_WAIT_WELCOME) {
		client_log(LOG_LVL_INFO, c, "closing: %s", msg);
	} else {
		client_log(LOG_LVL_DEBUG, c, "closing: %s", msg);
	}
	climit_release(c);
	cancel_wait_closing(c);
	struct server *s = c->server;
	if (s) {
		c->server = NULL;
		s->client = NULL;
		if (c->fwd_remaining)
			s->uncertain = true;
		/* As PgBouncer: the reset query belongs to session pooling. */
		server_release(s, c->mode == POOL_MODE_SESSION || w->cfg->server_reset_query_always);
	}
	if (c->rare) {
		client_auth_free(c->rare->auth);
		c->rare->auth = NULL;
		client_rare_trim(c);
	}
	/* After an ErrorResponse, linger so a reset cannot destroy it unread. */
	if (sqlstate && !c->sock.ssl && !sock_has_output(&c->sock))
		linger_close(&w->lingering, w->base, sock_detach(&c->sock));
	else
		sock_close(&c->sock);
	pool_client_state_changed(c, c->state, CL_CLOSING);
	c->state = CL_CLOSING;
	deadline_disarm(&w->client_timers, &c->timer);
	list_move_tail(&w->free_clients, &c->node);
	runtime_schedule_free(w);
}

void client_free(struct client *c)
{
	struct worker *w = client_worker(c);
	list_del(&c->node);
	list_del(&c->all_node);
	deadline_disarm(&w->client_timers, &c->timer);
	cancel_index_del(&w->cancel_keys, c);
	w->nclients--;
	varcache_clear(&w->vars, &c->vars);
	ps_client_detach(c);
	if (c->rare && c->rare->ps_out) {
		pbuf_free(c->rare->ps_out);
		free(c->rare->ps_out);
	}
	varcache_release_str(&client_worker(c)->vars, c->user);
	free(c->rare); /* client_close emptied it */
	sock_free_buffers(&c->sock);
	struct database *db = c->db;
	free(c);
	if (db)
		runtime_database_maybe_free(db);
}

bool client_send(struct client *c, const void *data, size_t len)
{
	if (c->state == CL_CLOSING)
		return false;
	if (!sock_write(&c->sock, data, len)) {
		client_close(c, NULL, "write failed: %s", sock_errmsg(&c->sock));
		return false;
	}
	return true;
}

static TB_MUSTCHECK bool send_pbuf(struct client *c, struct pbuf *b)
{
	bool ok = !b->failed && client_send(c, b->data, b->len);
	pbuf_free(b);
	return ok;
}

bool client_send_error(struct client *c, const char *sqlstate, const char *msg)
{
	struct pbuf b;
	pbuf_init(&b, 8192);
	proto_error(&b, "ERROR", sqlstate, msg);
	proto_ready(&b, 'I');
	return send_pbuf(c, &b);
}

struct client *client_find_by_cancel_key(struct worker *w, uint32_t pid, uint32_t key)
{
	struct client *c = cancel_index_find(&w->cancel_keys, pid, key);
	return c && c->state >= CL_IDLE && c->state != CL_CLOSING ? c : NULL;
}

/* A random key no other client has (a draw that collides is drawn again;
 * with 48 random bits that is rare, and a few tries always suffice). */
static void assign_cancel_key(struct client *c)
{
	struct worker *w = client_worker(c);
	for (int tries = 0; tries < 16; tries++) {
		/* Without random bytes the key is not registered: cancels for it are ignored. */
		if (!random_bytes(&c->cancel_pid, sizeof(c->cancel_pid)) ||
		    !random_bytes(&c->cancel_key, sizeof(c->cancel_key)))
			break;
		peer_stamp_key(w, &c->cancel_pid);
		if (cancel_index_add(&w->cancel_keys, c))
			return;
	}
	log_warning("C-%llu: no unique cancel key drawn; its cancel requests will be ignored",
		    (unsigned long long)c->id);
}

/* ---- login ---- */

static void handle_cancel(struct client *c, uint32_t pid, uint32_t key)
{
	struct worker *w = client_worker(c);
	if (peer_route_cancel(w, pid, key)) {
		client_close(c, NULL, "cancel request for a peer handled");
		return;
	}
	struct client *target = client_find_by_cancel_key(w, peer_local_pid(w, pid), key);
	/* Only while the key's owner has a request running on its server: once
	 * the server carries someone else, a cancel must not reach it. */
	struct server *s = target && target->state == CL_ACTIVE ? target->server : NULL;
	if (target && cancel_wait_needed(target)) {
		if (cancel_wait_park(c, target))
			return;
		log_debug("C-%llu: a cancel request for C-%llu already waits", (unsigned long long)c->id,
			  (unsigned long long)target->id);
	} else if (s && s->swallow == 0 && respq_owed_rfq(&s->respq) > 0) {
		log_debug("C-%llu: cancel request for C-%llu", (unsigned long long)c->id,
			  (unsigned long long)target->id);
		server_forward_cancel_for(s, sock_detach(&c->sock));
	} else
		log_debug("C-%llu: cancel request for no active query", (unsigned long long)c->id);
	client_close(c, NULL, "cancel request handled");
}

static TB_MUSTCHECK bool start_tls(struct client *c)
{
	struct worker *w = client_worker(c);
	/* Anything pipelined after SSLRequest was sent in clear text and could be
	 * injected by a man in the middle (CVE-2021-23214). */
	if (iobuf_len(c->sock.in) > 0) {
		client_close(c, "08P01", "received unencrypted data after SSL request");
		return false;
	}
	char yes = 'S';
	if (!sock_write(&c->sock, &yes, 1) || sock_has_output(&c->sock)) {
		client_close(c, NULL, "could not answer SSL request");
		return false;
	}
	c->sock.ssl = tls_accept_new(w->client_tls, c->sock.fd);
	if (!c->sock.ssl) {
		client_close(c, "08006", "could not start TLS");
		return false;
	}
	c->tls = true;
	set_state(c, CL_TLS, &w->login_clients);
	return true;
}

static TB_MUSTCHECK bool continue_tls(struct client *c)
{
	struct worker *w = client_worker(c);
	enum sock_io r = sock_tls_handshake(&c->sock);
	if (r == SOCK_IO_AGAIN)
		return true;
	if (r != SOCK_IO_OK) {
		client_close(c, NULL, "%s", sock_errmsg(&c->sock));
		return false;
	}
	set_state(c, CL_STARTUP, &w->login_clients);
	sock_kick_pending(&c->sock);
	return true;
}

static TB_MUSTCHECK bool answer_no(struct client *c)
{
	char no = 'N';
	return client_send(c, &no, 1);
}

static bool is_ignored_param(struct worker *w, const char *name)
{
	return str_in_list(w->cfg->ignore_startup_parameters, name);
}

/* Keeps tracked parameters, refuses unknown ones as PgBouncer does. */
/* PostgreSQL's values: a boolean, or "database" for logical replication. */
static bool parse_replication(const char *v, enum replication_mode *mode)
{
	static const char *const on[] = { "true", "on", "yes", "1" }, *const off[] = { "false", "off", "no",
										       "0" };
	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (str_ieq(v, on[i])) {
			*mode = REPLICATION_PHYSICAL;
			return true;
		}
		if (str_ieq(v, off[i])) {
			*mode = REPLICATION_NONE;
			return true;
		}
	}
	if (str_ieq(v, "database")) {
		*mode = REPLICATION_LOGICAL;
		return true;
	}
	return false;
}

struct opts_walk {
	struct client *c;
	char refused[128]; /* a setting that is neither tracked nor ignored */
};

static bool take_option(const char *name, const char *value, void *arg)
{
	struct opts_walk *w = arg;
	int idx = varcache_index(&client_worker(w->c)->vars, name);
	if (idx >= 0) {
		varcache_set(&client_worker(w->c)->vars, &w->c->vars, idx, value);
		return true;
	}
	/* PgBouncer: "options" in ignore_startup_parameters ignores any setting. */
	if (is_ignored_param(client_worker(w->c), name) || is_ignored_param(client_worker(w->c), "options"))
		return true;
	snprintf(w->refused, sizeof(w->refused), "%s", name); /* name lives in the parser's buffer */
	return false;
}

/* PgBouncer 1.20+: "-c name=value" and "--name=value" of tracked parameters
 * are taken as if sent as startup parameters. */
static bool take_options(struct client *c, const char *options)
{
	struct opts_walk w = { .c = c };
	if (!startup_opts_parse(options, take_option, &w)) {
		if (is_ignored_param(client_worker(c), "options"))
			return true;
		client_close(c, "08P01",
			     "unsupported options startup parameter: only '-c config=val' "
			     "and '--config=val' are allowed");
		return false;
	}
	if (w.refused[0]) {
		client_close(c, "08P01", "unsupported startup parameter in options: %s", w.refused);
		return false;
	}
	return true;
}

static bool take_params(struct client *c, const struct startup_pkt *pkt)
{
	struct worker *w = client_worker(c);
	const char *options = NULL;
	for (size_t i = 0; i < pkt->nparams; i++) {
		const char *name = pkt->params[i].name, *value = pkt->params[i].value;
		if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0 ||
		    strncmp(name, "_pq_.", 5) == 0)
			continue;
		if (strcmp(name, "options") == 0) {
			options = value;
			continue;
		}
		int idx = varcache_index(&w->vars, name);
		if (idx >= 0) {
			varcache_set(&w->vars, &c->vars, idx, value);
			continue;
		}
		if (strcmp(name, "replication") == 0 && !is_ignored_param(w, name)) {
			enum replication_mode r;
			if (!parse_replication(value, &r)) {
				client_close(c, "08P01",
					     "invalid value for parameter \"replication\": \"%s\"", value);
				return false;
			}
			c->replication = r;
			continue;
		}
		if (is_ignored_param(w, name))
			continue;
		client_close(c, "08P01", "unsupported startup parameter: %s", name);
		return false;
	}
	/* application_name_add_host (PgBouncer): where the client is, in its name. */
	if (w->cfg->application_name_add_host) {
		char peer[64], name[400];
		const char *app = varcache_get(&w->vars, &c->vars, VAR_APPLICATION_NAME);
		format_peer(c, peer, sizeof(peer));
		snprintf(name, sizeof(name), "%s - %s", app && *app ? app : "app", peer);
		varcache_set(&w->vars, &c->vars, VAR_APPLICATION_NAME, name);
	}
	/* Replication connections are not pooled: their options stay as before. */
	if (options && c->replication && !is_ignored_param(w, "options")) {
		client_close(c, "08P01", "unsupported startup parameter: options");
		return false;
	}
	return !options || c->replication || take_options(c, options);
}

static bool negotiate_version(struct client *c, const struct startup_pkt *pkt)
{
	const char *unknown[PROTO_MAX_PARAMS];
	size_t n = 0;
	for (size_t i = 0; i < pkt->nparams; i++)
		if (strncmp(pkt->params[i].name, "_pq_.", 5) == 0)
			unknown[n++] = pkt->params[i].name;
	if ((pkt->code & 0xffff) == 0 && n == 0)
		return true;
	struct pbuf b;
	pbuf_init(&b, 16384);
	proto_negotiate_version(&b, PROTO_V3, unknown, n);
	return send_pbuf(c, &b);
}

/* As PgBouncer, checked once the database is known: the console stays
 * reachable when the pooler is full. max_client_conn is read here, so SET
 * changes it at once. */
static bool admit(struct client *c)
{
	struct worker *w = client_worker(c);
	const char *why;
	if (!c->is_admin && w->nclients > w->cfg->max_client_conn) {
		client_close(c, "53300", "no more connections allowed (max_client_conn)");
		return false;
	}
	if (!climit_admit(c, &why)) {
		client_close(c, "53300", "%s", why);
		return false;
	}
	return true;
}

/* The login chain (startup packet, authentication, login reply): false when
 * a step closed the client. */
static TB_MUSTCHECK bool client_startup(struct client *c, const struct startup_pkt *pkt)
{
	struct worker *w = client_worker(c);
	if ((pkt->code >> 16) != 3) {
		client_close(c, "0A000", "unsupported frontend protocol %u.%u: server supports 3.0",
			     pkt->code >> 16, pkt->code & 0xffff);
		return false;
	}
	if (!negotiate_version(c, pkt))
		return false;
	const char *user = startup_get(pkt, "user");
	if (!user || !*user) {
		client_close(c, "08P01", "no user name in startup packet");
		return false;
	}
	const char *dbname = startup_get(pkt, "database");
	if (!dbname || !*dbname)
		dbname = user;
	c->user = varcache_intern_str(&client_worker(c)->vars, user);
	if (!take_params(c, pkt))
		return false;
	if (w->cfg->client_tls_sslmode >= TLS_MODE_REQUIRE && !c->tls && !c->is_unix) {
		client_close(c, "28000", "SSL required");
		return false;
	}
	if (console_is_db(dbname) && c->replication) {
		client_close(c, "08P01", "replication connections to the admin console are not supported");
		return false;
	}
	if (console_is_db(dbname)) {
		c->is_admin = true;
		c->db = w->admin_db;
	} else {
		c->db = runtime_find_database(w, dbname);
	}
	if (!c->db) {
		client_close(c, "3D000", "no such database: %s", dbname);
		return false;
	}
	if (w->shutting_down && !c->is_admin && c->id > w->admit_until_id) {
		/* Only the Unix socket is still open, and only for the console;
		 * clients accepted before the shutdown began are served. */
		client_close(c, "57P03", "the pooler is shutting down");
		return false;
	}
	if (c->db->disabled) {
		client_close(c, "57P03", "database \"%s\" is disabled", dbname);
		return false;
	}
	if (!admit(c))
		return false;
	if (w->cfg->log_connections)
		client_log(LOG_LVL_INFO, c, "login attempt%s", c->tls ? " (TLS)" : "");
	set_state(c, CL_AUTH, &w->login_clients);
	return client_auth_begin(c);
}

static TB_MUSTCHECK bool client_read_startup(struct client *c)
{
	struct worker *w = client_worker(c);
	struct startup_pkt pkt;
	char err[160];
	struct iobuf *in = c->sock.in;
	enum proto_status st = proto_parse_startup(iobuf_head(in), iobuf_len(in), &pkt, err, sizeof(err));
	if (st == PROTO_NEED_MORE)
		return true;
	if (st == PROTO_ERROR) {
		client_close(c, "08P01", "%s", err);
		return false;
	}
	/* Take the packet out of the buffer before acting on it: a login can
	 * finish inside client_startup (trust, cached welcome) and go on to
	 * forward whatever is buffered, which must not include this packet. */
	unsigned char copy[PROTO_STARTUP_MAX];
	memcpy(copy, iobuf_head(in), pkt.len);
	iobuf_consume(in, pkt.len);
	if (proto_parse_startup(copy, pkt.len, &pkt, err, sizeof(err)) != PROTO_OK) {
		client_close(c, "08P01", "%s", err);
		return false;
	}
	switch (pkt.code) {
	case PROTO_SSL_CODE:
		if (c->tls) {
			client_close(c, "08P01", "SSL request on an encrypted connection");
			return false;
		}
		if (w->client_tls && w->cfg->client_tls_sslmode != TLS_MODE_DISABLE && !c->is_unix)
			return start_tls(c) && continue_tls(c);
		return answer_no(c);
	case PROTO_GSSENC_CODE:
		return answer_no(c);
	case PROTO_CANCEL_CODE:
		handle_cancel(c, pkt.cancel_pid, pkt.cancel_key);
		return false; /* it always closes the cancel connection */
	default:
		break;
	}
	return client_startup(c, &pkt);
}

/* As PgBouncer: [users] settings belong to the pool's user, the alias's
 * forced user= when it has one, else the client's. */
static enum pool_mode effective_mode(const struct client *c)
{
	struct worker *w = client_worker(c);
	const struct user_cfg *u = config_find_user(w->cfg, c->pool->user);
	if (u && u->pool_mode != POOL_MODE_UNSET)
		return u->pool_mode;
	if (c->db->cfg->pool_mode != POOL_MODE_UNSET)
		return c->db->cfg->pool_mode;
	return w->cfg->pool_mode;
}

bool client_auth_ok(struct client *c)
{
	struct worker *w = client_worker(c);
	struct scram_keys keys;
	bool have_keys = client_auth_take_scram_keys(client_auth_of(c), &keys);
	char *looked_up_pw = client_auth_take_password(client_auth_of(c));
	if (c->rare) {
		client_auth_free(c->rare->auth);
		c->rare->auth = NULL;
		client_rare_trim(c);
	}
	if (w->cfg->log_connections)
		client_log(LOG_LVL_INFO, c, "login ok");
	if (c->is_admin) {
		scram_keys_wipe(&keys);
		secret_free(looked_up_pw);
		list_del(&c->node);
		return console_login(c);
	}
	struct pool *p = pool_for_client(c->db, c->user, c->replication);
	if (p && have_keys)
		pool_take_scram_keys(p, c->user, &keys);
	scram_keys_wipe(&keys);
	if (p)
		pool_take_password(p, c->user, looked_up_pw);
	else
		secret_free(looked_up_pw);
	if (!p && c->db->learn_user) {
		/* Stays in login (client_login_timeout applies) until the token names the user. */
		c->awaiting_user = true;
		sock_set_read(&c->sock, false);
		runtime_learn_user(c->db);
		return true;
	}
	if (!p) {
		client_close(c, "08P01", "no upstream credentials for user \"%s\" on alias \"%s\"", c->user,
			     c->db->name);
		return false;
	}
	c->pool = p;
	timeouts_client_refresh(c);
	/* A replication connection keeps its server for its whole life. */
	c->mode = c->replication ? POOL_MODE_SESSION : effective_mode(c);
	ps_client_attach(c);
	assign_cancel_key(c);
	if (p->have_welcome)
		return client_finish_login(c);
	set_state(c, CL_WAIT_WELCOME, &p->welcome_clients);
	sock_set_read(&c->sock, false);
	pool_need_welcome(p, c);
	return true;
}

bool client_finish_login(struct client *c)
{
	struct worker *w = client_worker(c);
	struct pool *p = c->pool;
	struct pbuf b;
	pbuf_init(&b, 1 << 20);
	proto_auth_request(&b, 0, NULL, 0);
	/* The client's own values win over the server's defaults. */
	for (int i = 0; i < varcache_count(&w->vars); i++) {
		if (!varcache_get(&w->vars, &c->vars, i) && varcache_get(&w->vars, &p->welcome_vars, i))
			varcache_set(&w->vars, &c->vars, i, varcache_get(&w->vars, &p->welcome_vars, i));
		if (varcache_get(&w->vars, &c->vars, i))
			proto_param_status(&b, varcache_name(&w->vars, i),
					   varcache_get(&w->vars, &c->vars, i));
	}
	if (p->welcome_other.len)
		pbuf_put_bytes(&b, p->welcome_other.data, p->welcome_other.len);
	proto_backend_key(&b, c->cancel_pid, c->cancel_key);
	if (config_str_set(w->cfg->login_notify_message))
		proto_notice(&b, "00000", w->cfg->login_notify_message);
	proto_ready(&b, 'I');
	p->stats.login_count++;
	set_state(c, CL_IDLE, &p->active_clients);
	if (!send_pbuf(c, &b))
		return false;
	sock_set_read(&c->sock, true);
	if (iobuf_len(c->sock.in) > 0)
		return client_process(c);
	sock_trim(&c->sock); /* an idle client holds no packet buffer */
	return true;
}

/* ---- forwarding ---- */

#define PS_OUT_KEEP 65536u

/* Bytes the pooler rewrote or injected wait in ps_out: the span joins them
 * so that one send carries both, in order. */
/* False when the client or the server was closed. */
static bool flush_staged(struct client *c, struct server *s, size_t span)
{
	struct pbuf *out = c->rare->ps_out;
	pbuf_put_bytes(out, iobuf_head(c->sock.in), span);
	iobuf_consume(c->sock.in, span);
	s->ready = false;
	s->pool->stats.bytes_received += span;
	if (out->failed) {
		pbuf_reset(out);
		client_close(c, "54000", "message too large to forward");
		return false;
	}
	bool ok = server_send(s, out->data, out->len);
	pbuf_reset(out);
	/* A big Bind once must not pin its buffer for the client's life. */
	if (out->cap > PS_OUT_KEEP) {
		pbuf_free(out);
		pbuf_init(out, SIZE_MAX / 4);
	}
	return ok;
}

/* False when the client or the server was closed (a lost server closes
 * its client). */
static bool flush_span(struct client *c, struct server *s, size_t span)
{
	if (c->rare && c->rare->ps_out && c->rare->ps_out->len)
		return flush_staged(c, s, span);
	if (span == 0)
		return true;
	unsigned char *head = iobuf_head(c->sock.in);
	iobuf_consume(c->sock.in, span);
	s->ready = false;
	s->pool->stats.bytes_received += span;
	return server_send(s, head, span);
}

/* What the server owes the client, so a server is released only when it
 * has answered everything it was sent (pipelined batches included). */
static void count_request(struct server *s, char type)
{
	struct pool_stats *st = &s->pool->stats;
	if ((type == 'Q' || type == 'F' || type == 'S') && respq_owed_rfq(&s->respq) == 0) {
		s->query_start = time_now_usec();
		if (s->respq.tx_status == 'I')
			s->xact_start = s->query_start;
	}
	if (type == 'P') {
		/* With statement tracking, ps_forward counts what is really sent. */
		if (!s->client || !s->client->ps_on) {
			st->client_parse_count++;
			st->server_parse_count++;
		}
	} else if (type == 'B') {
		st->bind_count++;
	}
}

/* A streamed message: with statement tracking ps_forward queues what it
 * answers, otherwise its plain entry does. */
static void track_request(struct client *c, struct server *s, char type)
{
	count_request(s, type);
	if (c->ps_on) {
		respq_sent(&s->respq, type);
		ps_client_streamed(s, type);
	} else {
		respq_push_sent(&s->respq, type);
	}
}

/* COPY IN follows what the server is sent: for a message the
 * prepared-statement layer rewrote (and queued the answers of), the
 * messages it staged in its place. */
static void track_staged(struct server *s, const unsigned char *p, size_t len)
{
	size_t off = 0;
	while (len - off >= PROTO_HDR_LEN) {
		uint32_t mlen = (uint32_t)p[off + 1] << 24 | (uint32_t)p[off + 2] << 16 |
				(uint32_t)p[off + 3] << 8 | p[off + 4];
		respq_sent(&s->respq, (char)p[off]);
		if (mlen < 4 || mlen > len - off - 1)
			break;
		off += (size_t)mlen + 1;
	}
}

/* A whole message the prepared-statement layer rewrites: staged after the
 * bytes before it, in place of its own. False if the client was closed. */
static bool stage_whole_message(struct client *c, struct server *s, size_t span, size_t len)
{
	struct client_rare *r = client_rare_get(c);
	if (!r->ps_out) {
		r->ps_out = xmalloc(sizeof(*r->ps_out));
		pbuf_init(r->ps_out, SIZE_MAX / 4);
	}
	struct pbuf *out = r->ps_out;
	struct iobuf *in = c->sock.in;
	pbuf_put_bytes(out, iobuf_head(in), span);
	iobuf_consume(in, span);
	s->pool->stats.bytes_received += span + len;
	s->ready = false;
	c->need = 0;
	char type = (char)iobuf_head(in)[0];
	size_t mark = out->len;
	if (!ps_client_msg(c, s, iobuf_head(in), len, out)) {
		pbuf_reset(out);
		client_close(c, "08P01", "malformed '%c' message", type);
		return false;
	}
	track_staged(s, out->data + mark, out->len - mark);
	iobuf_consume(in, len);
	return true;
}

/* Stream client messages to the server: headers are parsed, bodies pass
 * through. False when the client (or its server, which closes it) was closed. */
static TB_MUSTCHECK bool forward_to_server(struct client *c)
{
	struct worker *w = client_worker(c);
	struct server *s = c->server;
	struct iobuf *in = c->sock.in;
	size_t span = 0;
	while (in && span < iobuf_len(in)) {
		size_t avail = iobuf_len(in) - span;
		if (c->fwd_remaining) {
			size_t n = avail < c->fwd_remaining ? avail : c->fwd_remaining;
			span += n;
			c->fwd_remaining -= (uint32_t)n;
			continue;
		}
		struct pg_hdr h;
		char err[160];
		enum proto_status st = proto_peek_header(iobuf_head(in) + span, avail,
							 (uint32_t)w->cfg->max_packet_size, &h, err,
							 sizeof(err));
		if (st == PROTO_NEED_MORE)
			break;
		if (st == PROTO_ERROR) {
			if (flush_span(c, s, span))
				client_close(c, "08P01", "%s", err);
			return false;
		}
		enum pg_frontend_kind kind = proto_frontend_kind(h.type);
		if (kind == PG_FRONTEND_TERMINATE) {
			if (flush_span(c, s, span))
				client_close(c, NULL, "client sent Terminate");
			return false;
		}
		if (kind == PG_FRONTEND_INVALID) {
			if (flush_span(c, s, span))
				client_close(c, "08P01", "invalid frontend message type %d",
					     (unsigned char)h.type);
			return false;
		}
		/* disable_pqexec: PgBouncer refuses the simple query protocol. */
		if (h.type == 'Q' && w->cfg->disable_pqexec) {
			if (flush_span(c, s, span))
				client_close(c, "08P01", "PQexec disallowed");
			return false;
		}
		if (c->ps_on && ps_wants_whole(h.type, h.len)) {
			if (avail < (size_t)h.len + 1) {
				c->need = h.len + 1;
				break;
			}
			count_request(s, h.type);
			if (!stage_whole_message(c, s, span, (size_t)h.len + 1))
				return false;
			span = 0;
			continue;
		}
		track_request(c, s, h.type);
		span += PROTO_HDR_LEN;
		c->fwd_remaining = h.len - 4;
	}
	if (!flush_span(c, s, span))
		return false;
	if (c->ps_on && !ps_flush_synth(s))
		return false;
	if (sock_has_output(&s->sock)) {
		c->blocked_on_server = true;
		sock_set_read(&c->sock, false);
	}
	return true;
}

static bool first_message_is_terminate(struct client *c)
{
	struct iobuf *in = c->sock.in;
	return iobuf_len(in) >= PROTO_HDR_LEN && iobuf_head(in)[0] == 'X';
}

/* False when the client was closed. */
static bool client_process(struct client *c)
{
	struct worker *w = client_worker(c);
	switch (c->state) {
	case CL_STARTUP:
		/* A GSSENCRequest answer may be followed by the real startup packet. */
		if (!client_read_startup(c))
			return false;
		return c->state != CL_STARTUP || iobuf_len(c->sock.in) < 8 || client_read_startup(c);
	case CL_AUTH: {
		struct iobuf *in = c->sock.in;
		struct pg_hdr h;
		char err[160];
		enum proto_status st = proto_peek_header(iobuf_head(in), iobuf_len(in), LOGIN_MSG_MAX, &h,
							 err, sizeof(err));
		if (st == PROTO_NEED_MORE || (st == PROTO_OK && iobuf_len(in) < h.len + 1))
			return true;
		if (st == PROTO_ERROR) {
			client_close(c, "08P01", "%s", err);
			return false;
		}
		const unsigned char *body = iobuf_head(in) + PROTO_HDR_LEN;
		iobuf_consume(in, h.len + 1);
		return client_auth_message(c, h.type, body, h.len - 4);
	}
	case CL_IDLE:
		if (c->is_admin)
			return console_process(c);
		if (first_message_is_terminate(c)) {
			client_close(c, NULL, "client sent Terminate");
			return false;
		}
		set_state(c, CL_WAITING, &c->pool->waiting_clients);
		/* Reading stays on while it waits: a client that sent its request
		 * sends nothing more, so the socket stays quiet at no cost, where a
		 * pause and a resume would cost two epoll_ctl per transaction. A
		 * client that keeps pipelining is paused once a buffer is full. */
		pool_client_wants_server(c);
		return true;
	case CL_ACTIVE:
		if (c->server->swallow > 0 || c->blocked_on_server)
			return true;
		return forward_to_server(c);
	default:
		/* Waiting for the pool: keep the bytes, and stop reading once a
		 * waiting client has a buffer's worth (others stop at once). */
		if (c->state != CL_WAITING || iobuf_len(c->sock.in) >= (size_t)w->cfg->pkt_buf)
			sock_set_read(&c->sock, false);
		return true;
	}
}

/* Its server died before any of the client's bytes reached it (during the
 * parameter sync): the client waits for another, none the wiser. */
void client_requeue(struct client *c)
{
	if (c->state != CL_ACTIVE)
		return;
	c->blocked_on_server = false;
	set_state(c, CL_WAITING, &c->pool->waiting_clients);
	sock_set_read(&c->sock, false);
	pool_client_wants_server(c);
}

void client_server_ready(struct client *c)
{
	if (c->state != CL_ACTIVE)
		return;
	sock_set_read(&c->sock, true);
	if (iobuf_len(c->sock.in) > 0)
		client_process(c);
}

void client_detached(struct client *c)
{
	c->blocked_on_server = false;
	if (c->state != CL_ACTIVE)
		return;
	/* Between transactions a client holds no packet buffer (as PgBouncer):
	 * its input buffer goes back to the spares the next read takes from. */
	sock_trim(&c->sock);
	set_state(c, CL_IDLE, &c->pool->active_clients);
	sock_set_read(&c->sock, true);
	if (iobuf_len(c->sock.in) > 0)
		client_process(c);
}

void client_resume(struct client *c)
{
	if (!c->blocked_on_server)
		return;
	c->blocked_on_server = false;
	client_server_ready(c);
}

static size_t wanted_bytes(const struct client *c)
{
	const struct iobuf *in = c->sock.in;
	if (!in || iobuf_len(in) < 5)
		return 5;
	const unsigned char *p = iobuf_head(in);
	size_t len;
	if (c->state == CL_STARTUP)
		len = ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
	else if (c->state == CL_AUTH)
		len = 1 + ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]);
	else
		return c->need;
	return len <= LOGIN_MSG_MAX + 1 ? len : 0;
}

static void client_read(struct client *c)
{
	struct worker *w = client_worker(c);
	if (c->state == CL_TLS) {
		TB_UNUSED_RESULT(continue_tls(c)); /* the handler's last step */
		return;
	}
	enum sock_io r = sock_fill(&c->sock, (size_t)w->cfg->pkt_buf, wanted_bytes(c));
	if (r == SOCK_IO_EOF) {
		client_close(c, NULL, "client closed the connection");
		return;
	}
	if (r == SOCK_IO_ERR) {
		client_close(c, NULL, "read failed: %s", sock_errmsg(&c->sock));
		return;
	}
	if (iobuf_len(c->sock.in) > 0 && !client_process(c))
		return;
	if (c->sock.want_read)
		sock_kick_pending(&c->sock);
}

static void client_io(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	if (what & EV_WRITE) {
		if (c->state == CL_TLS) {
			TB_UNUSED_RESULT(continue_tls(c)); /* the handler's last step */
			return;
		}
		enum sock_io r = sock_flush(&c->sock);
		if (r == SOCK_IO_ERR) {
			client_close(c, NULL, "write failed: %s", sock_errmsg(&c->sock));
			return;
		}
		if (r == SOCK_IO_OK && c->server && c->server->blocked_on_client)
			server_resume(c->server);
		if (c->state == CL_CLOSING)
			return;
		if (c->sock.ssl_read_wants_write)
			what |= EV_READ;
	}
	if (what & EV_READ)
		client_read(c);
}
