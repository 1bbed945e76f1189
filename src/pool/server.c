#include "pool/server.h"

#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/hostlist.h"
#include "core/log.h"
#include "core/util.h"
#include "net/resolve.h"
#include "net/sockopt.h"
#include "net/tls.h"
#include "pg/md5auth.h"
#include "pg/proto.h"
#include "pg/scram.h"
#include "token/alloydb.h"
#include "token/connector.h"
#include "token/method.h"
#include "token/token.h"
#include "pool/authq.h"
#include "pool/cancel.h"
#include "pool/client.h"
#include "pool/pool.h"
#include "pool/ps_forward.h"
#include "pool/server_attrs.h"
#include "pool/runtime.h"
#include "pool/server_drain.h"
#include "pool/server_priv.h"

/* §3.9.4: the connectors read the metadata exchange's answer with a 30 s deadline. */
#define MDX_DEADLINE (30 * USEC_PER_SEC)

/* Cap on one message the pooler reads whole from a server (errors,
 * parameter status, auth requests). Data rows are streamed, not held. */
#define SERVER_MSG_MAX (1u << 20)

static void server_io(evutil_socket_t fd, short what, void *arg);

const char *server_state_name(enum server_state st)
{
	static const char *const names[] = {
		"token", "resolving", "connecting", "tls-request", "tls",   "login",   "connect-query",
		"idle",  "active",    "reset",      "check",       "drain", "closing",
	};
	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

void server_log_prefix(const struct server *s, char *buf, size_t len)
{
	const struct database *db = s->pool->db;
	snprintf(buf, len, "S-%llu %s@%s (%s:%d)", (unsigned long long)s->id, s->pool->user, db->name,
		 s->host    ? s->host
		 : db->host ? db->host
			    : "unix",
		 s->host             ? s->port
		 : db->cfg->port > 0 ? db->cfg->port
				     : 5432);
}

static const struct server_watch *watch;

void server_watch_set(const struct server_watch *w)
{
	watch = w;
}

void server_watch_note(struct server *s, enum server_state from)
{
	if (watch && watch->state && from != s->state)
		watch->state(s, from, watch->arg);
}

void server_set_state(struct server *s, enum server_state st, struct list_node *list)
{
	enum server_state from = s->state;
	s->state = st;
	s->state_since = time_now_usec();
	if (list)
		list_move_tail(list, &s->node);
	server_watch_note(s, from);
}

void server_drop_token(struct server *s)
{
	if (s->token) {
		secret_wipe(s->token, s->token_len);
		free(s->token);
		s->token = NULL;
		s->token_len = 0;
	}
}

void server_close(struct server *s, const char *fmt, ...)
{
	struct worker *w = s->w;
	if (s->state == SV_CLOSING)
		return;
	char msg[400] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bool quiet = s->state == SV_IDLE || s->state == SV_RESET;
	server_log(quiet ? LOG_LVL_INFO : LOG_LVL_WARNING, s, "closing: %s", msg);
	if (watch && watch->closed)
		watch->closed(s, msg, watch->arg);
	if (s->authq)
		authq_server_lost(s, msg);
	struct client *c = s->client;
	bool requeue = c && s->state == SV_ACTIVE && s->swallow > 0;
	if (c) {
		s->client = NULL;
		c->server = NULL;
		if (!requeue)
			client_close(c, "08006", "server connection lost: %s", msg);
	}
	if (s->dns) {
		resolve_cancel(s->dns);
		s->dns = NULL;
	}
	token_wait_cancel(s->token_wait);
	s->token_wait = NULL;
	server_drop_token(s);
	connector_bundle_unref(s->bundle);
	s->bundle = NULL;
	if (s->cancels)
		server_cancels_forget(s);
	if (s->sock.fd >= 0 && s->state >= SV_IDLE) {
		/* A polite Terminate lets the backend exit without logging an EOF. */
		static const unsigned char term[5] = { 'X', 0, 0, 0, 4 };
		if (!sock_has_output(&s->sock) && !sock_write(&s->sock, term, sizeof(term)))
			server_log(LOG_LVL_DEBUG, s, "no Terminate sent: %s", sock_errmsg(&s->sock));
	}
	sock_close(&s->sock);
	enum server_state was = s->state;
	s->state = SV_CLOSING;
	list_move_tail(&w->free_servers, &s->node);
	runtime_schedule_free(w);
	pool_server_gone(s, was);
	if (requeue)
		client_requeue(c);
}

void server_free(struct server *s)
{
	struct worker *w = s->w;
	list_del(&s->node);
	respq_free(&s->respq); /* before ps_server_free: its entries are reported to it */
	if (s->scram)
		scram_client_free(s->scram);
	varcache_clear(&w->vars, &s->vars);
	ps_server_free(s);
	sock_free_buffers(&s->sock);
	free(s->host);
	free(s);
}

bool server_send(struct server *s, const void *data, size_t len)
{
	if (s->state == SV_CLOSING)
		return false;
	if (!sock_write(&s->sock, data, len)) {
		server_close(s, "write failed: %s", sock_errmsg(&s->sock));
		return false;
	}
	return true;
}

bool server_send_pbuf(struct server *s, struct pbuf *b)
{
	bool ok = !b->failed && server_send(s, b->data, b->len);
	pbuf_free(b);
	return ok;
}

/* ---- connecting ---- */

static void fail_login(struct server *s, const char *sqlstate, const char *msg, bool restarting)
{
	struct pool *p = s->pool;
	p->stats.login_failures++;
	p->db->host_failed++; /* load_balance_hosts=disable: the next login tries the next host */
	/* Record first, so the pool does not relaunch at once from server_close. */
	pool_record_failure(p, sqlstate, msg, restarting);
	server_close(s, "login failed: %s", msg);
	pool_fail_waiters(p);
}

/* 57P03 is PostgreSQL's "starting up" / "shutting down" / "in recovery"
 * answer: the server will take logins again shortly. */
void server_fail_loginf(struct server *s, const char *sqlstate, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_login(s, sqlstate, msg, strcmp(sqlstate, "57P03") == 0);
}

/* Refused or closed while connecting or logging in: what a restarting
 * server looks like, so clients without a server wait for the retry. */
static void login_failed_restarting(struct server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void login_failed_restarting(struct server *s, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_login(s, "08006", msg, true);
}

static bool is_restart_errno(int err)
{
	/* ENOENT: a Unix socket whose file the stopping server removed. */
	return err == ECONNREFUSED || err == ECONNRESET || err == ENOENT;
}

void server_login_failed(struct server *s, const char *msg)
{
	server_fail_loginf(s, "08006", "%s", msg);
}

void server_login_deadline(struct server *s, usec_t now)
{
	struct worker *w = s->w;
	usec_t limit = w->cfg->server_connect_timeout;
	bool overall = limit > 0 && now - s->created_at >= limit;
	if (s->mdx_pending && (overall || now - s->state_since >= MDX_DEADLINE)) {
		server_fail_loginf(s, "08006",
				   "the instance of alias \"%s\" did not answer the metadata exchange within "
				   "%lld s (does %s:%d lead to the instance's server-side proxy?)",
				   s->pool->db->name, (long long)((now - s->state_since) / USEC_PER_SEC),
				   s->host, s->port);
		return;
	}
	if (overall)
		server_fail_loginf(s, "08006", "server_connect_timeout: no answer from the server in time");
}

static bool send_startup(struct server *s)
{
	const struct db_alias *a = s->pool->db->cfg;
	struct pbuf b;
	pbuf_init(&b, PROTO_STARTUP_MAX);
	pbuf_begin(&b, 0);
	pbuf_put_u32(&b, PROTO_V3);
	pbuf_put_str(&b, "user");
	pbuf_put_str(&b, s->pool->user);
	pbuf_put_str(&b, "database");
	pbuf_put_str(&b, s->pool->db->dbname);
	if (s->pool->replication) {
		pbuf_put_str(&b, "replication");
		pbuf_put_str(&b, s->pool->replication == REPLICATION_LOGICAL ? "database" : "true");
	}
	const char *names[] = { "application_name", "client_encoding", "DateStyle", "TimeZone" };
	const char *values[] = { a->application_name, a->client_encoding, a->datestyle, a->timezone };
	for (size_t i = 0; i < 4; i++) {
		if (values[i]) {
			pbuf_put_str(&b, names[i]);
			pbuf_put_str(&b, values[i]);
		}
	}
	pbuf_put_u8(&b, 0);
	pbuf_end(&b);
	server_set_state(s, SV_LOGIN, NULL);
	sock_set_read(&s->sock, true);
	return server_send_pbuf(s, &b);
}

static bool use_tls(const struct server *s)
{
	int mode = s->pool->db->sslmode;
	return s->addr.ss_family != AF_UNIX && mode != TLS_MODE_DISABLE && mode != TLS_MODE_ALLOW;
}

/* TLS failed or the server is not the instance: the cached certificate or
 * address may be stale (§3.8.4). */
static void connector_failed(struct server *s, const char *why)
{
	token_force_refresh(s->pool->token, s->token_gen);
	server_fail_loginf(s, "08006", "connection to the instance of alias \"%s\" failed: %s",
			   s->pool->db->name, why);
}

/* A server without TLS 1.3 is not the instance's server-side proxy, and no
 * refreshed material changes that: say what to change instead. */
static void connector_handshake_failed(struct server *s)
{
	if (!tls_error_is_version(sock_tls_errcode(&s->sock))) {
		connector_failed(s, sock_errmsg(&s->sock));
		return;
	}
	server_fail_loginf(
		s, "08006",
		"connection to the instance of alias \"%s\" failed: the server at %s:%d offers "
		"only TLS 1.2 or older, and connector mode requires TLS 1.3 (as Google's connectors do); "
		"check that ip_type= and port= reach the instance's server-side proxy (port 3307 for Cloud "
		"SQL, 5433 for AlloyDB), or use manual IAM login (host= with sslmode, no instance=)",
		s->pool->db->name, s->host, s->port);
}

/* AlloyDB: the metadata exchange goes first, on the TLS stream (§3.9.4),
 * with the login token on_login_token put in s->token. */
static bool send_mdx(struct server *s)
{
	size_t len = 0;
	unsigned char *frame = mdx_request("tokenbouncer/" PACKAGE_VERSION,
					   (enum mdx_auth_type)s->bundle->mdx_auth, s->token ? s->token : "",
					   &len);
	server_drop_token(s);
	s->mdx_pending = true;
	server_set_state(s, SV_LOGIN, NULL);
	sock_set_read(&s->sock, true);
	bool ok = server_send(s, frame, len);
	secret_wipe(frame, len);
	free(frame);
	return ok;
}

/* The answer's length prefix and message; returns the bytes still needed. */
static size_t mdx_answer(struct server *s)
{
	struct iobuf *in = s->sock.in;
	const unsigned char *p = (const unsigned char *)iobuf_head(in);
	if (iobuf_len(in) < 4)
		return 4;
	long n = mdx_frame_length(p);
	char err[300];
	if (n < 0) {
		connector_failed(s, "the metadata exchange answer is too long");
		return 0;
	}
	if (iobuf_len(in) < 4 + (size_t)n)
		return 4 + (size_t)n;
	bool ok = mdx_parse_response(p + 4, (size_t)n, err, sizeof(err));
	iobuf_consume(in, 4 + (size_t)n);
	s->mdx_pending = false;
	if (!ok) {
		server_fail_loginf(s, "28000", "the instance of alias \"%s\" refused the login: %s",
				   s->pool->db->name, err);
		return 0;
	}
	send_startup(s);
	return 0;
}

static void tls_established(struct server *s)
{
	char err[300];
	if (s->bundle && !connector_server_identity_ok(s->bundle, s->sock.ssl, err, sizeof(err))) {
		connector_failed(s, err);
		return;
	}
	if (s->bundle && s->bundle->mdx_auth)
		send_mdx(s);
	else
		send_startup(s);
}

/* Connector mode: TLS 1.3 right away on 3307, no SSLRequest (§3.8.3). */
static void start_direct_tls(struct server *s)
{
	char err[200];
	/* Without a CN rule (AlloyDB) the certificate must name the address dialled. */
	enum tls_mode mode = s->bundle->server_cn ? TLS_MODE_VERIFY_CA : TLS_MODE_VERIFY_FULL;
	s->sock.ssl = tls_connect_new(s->bundle->ctx, s->sock.fd, s->bundle->dial_host, mode, err,
				      sizeof(err));
	if (!s->sock.ssl) {
		server_fail_loginf(s, "08006", "%s", err);
		return;
	}
	s->tls = true;
	server_set_state(s, SV_TLS, NULL);
	sock_set_read(&s->sock, true);
	enum sock_io r = sock_tls_handshake(&s->sock);
	if (r == SOCK_IO_OK)
		tls_established(s);
	else if (r == SOCK_IO_ERR)
		connector_handshake_failed(s);
}

static bool send_ssl_request(struct server *s)
{
	struct pbuf b;
	pbuf_init(&b, 16);
	pbuf_begin(&b, 0);
	pbuf_put_u32(&b, PROTO_SSL_CODE);
	pbuf_end(&b);
	server_set_state(s, SV_TLS_REQ, NULL);
	sock_set_read(&s->sock, true);
	return server_send_pbuf(s, &b);
}

static void connected(struct server *s)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(s->sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		if (is_restart_errno(err))
			login_failed_restarting(s, "could not connect to server: %s", strerror(err));
		else
			server_fail_loginf(s, "08006", "could not connect to server: %s", strerror(err));
		return;
	}
	sock_set_write_io(&s->sock, false);
	if (s->bundle) {
		start_direct_tls(s);
		return;
	}
	if (!use_tls(s)) {
		send_startup(s);
		return;
	}
	send_ssl_request(s);
}

static void start_connect(struct server *s)
{
	struct worker *w = s->w;
	int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		server_fail_loginf(s, "08006", "could not create socket: %s", strerror(errno));
		return;
	}
	if (s->addr.ss_family != AF_UNIX)
		sockopt_tcp_connection(fd, w->cfg);
	sock_setup(&s->sock, &w->socks, w->base, fd, server_io, s);
	server_set_state(s, SV_CONNECTING, NULL);
	if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) == 0) {
		connected(s);
		return;
	}
	if (errno != EINPROGRESS) {
		int err = errno;
		if (is_restart_errno(err))
			login_failed_restarting(s, "could not connect to server: %s", strerror(err));
		else
			server_fail_loginf(s, "08006", "could not connect to server: %s", strerror(err));
		return;
	}
	sock_set_write_io(&s->sock, true);
}

static void on_resolved(const struct sockaddr *addr, socklen_t addrlen, const char *errmsg, void *arg)
{
	struct server *s = arg;
	s->dns = NULL;
	if (!addr) {
		server_fail_loginf(s, "08006", "%s", errmsg ? errmsg : "could not resolve host");
		return;
	}
	memcpy(&s->addr, addr, addrlen);
	s->addrlen = addrlen;
	start_connect(s);
}

static usec_t jittered_lifetime(const struct pool *p)
{
	struct worker *w = p->w;
	const struct db_alias *a = p->db->cfg;
	usec_t life = a->server_lifetime >= 0 ? a->server_lifetime : w->cfg->server_lifetime;
	const struct upstream_method *m = upstream_method_of(a->auth);
	usec_t cap = m ? m->max_server_lifetime : 0;
	if (cap > 0 && (life <= 0 || life > cap))
		life = cap;
	if (life <= 0)
		return 0;
	/* Up to 10% earlier, so a pool opened at once does not expire at once. */
	usec_t spread = life / 10;
	return life -
	       (spread > 0 ? (usec_t)random_below((uint32_t)(spread > UINT32_MAX ? UINT32_MAX : spread)) : 0);
}

/* A host list's entry for this server: round-robin takes the next one each
 * time; disable stays on one until a login to it fails (PgBouncer 1.24). */
static bool pick_host(struct server *s, int port)
{
	struct database *db = s->pool->db;
	char host[HOSTLIST_MAX_HOST];
	size_t i = db->cfg->load_balance_hosts == LOAD_BALANCE_DISABLE ? db->host_failed : db->host_next++;
	if (!hostlist_pick(db->host, i, port, host, sizeof(host), &s->port))
		return false;
	free(s->host);
	s->host = xstrdup(host);
	return true;
}

static void start_resolve(struct server *s)
{
	struct worker *w = s->w;
	const struct database *db = s->pool->db;
	int port = db->cfg->port > 0 ? db->cfg->port : 5432;
	server_set_state(s, SV_RESOLVING, NULL);
	if (s->bundle) {
		/* Connector mode: the address the Admin API gave, not DNS of host=. */
		free(s->host);
		s->host = xstrdup(s->bundle->dial_host);
		s->port = s->bundle->port;
		s->dns = resolve_start(w->dns, s->host, s->port, on_resolved, s);
		return;
	}
	if (db->host && db->host[0] != '/') {
		if (!pick_host(s, port)) {
			server_fail_loginf(s, "08006", "invalid host list entry");
			return;
		}
		s->dns = resolve_start(w->dns, s->host, s->port, on_resolved, s);
		return;
	}
	{
		struct sockaddr_un *sun = (struct sockaddr_un *)&s->addr;
		sun->sun_family = AF_UNIX;
		int n = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/.s.PGSQL.%d",
				 db->host ? db->host : "/var/run/postgresql", port);
		if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
			server_fail_loginf(s, "08006", "Unix socket path too long");
			return;
		}
		s->addrlen = sizeof(*sun);
		start_connect(s);
	}
}

static const char *token_kind_name(const struct server *s)
{
	const struct upstream_method *m = upstream_method_of(s->pool->db->cfg->auth);
	return m ? m->label : "IAM";
}

/* A token request's answer: on err the server fails (false); otherwise the
 * token (the login one or the connection's; what says which) replaces s's. */
static bool take_token(struct server *s, const char *what, const char *token, size_t len, const char *err)
{
	s->token_wait = NULL;
	if (err) {
		server_fail_loginf(s, "08001", "could not obtain an %s %s for alias \"%s\": %s",
				   token_kind_name(s), what, s->pool->db->name, err);
		return false;
	}
	server_drop_token(s);
	s->token = xstrndup(token, len);
	s->token_len = len;
	return true;
}

/* The login token for the metadata exchange, fresh from its own entry. */
static void on_login_token(void *arg, const char *token, size_t len, int64_t expires_at, uint64_t gen,
			   const char *err)
{
	struct server *s = arg;
	if (take_token(s, "login token", token, len, err))
		start_resolve(s);
}

/* Retire before the login token expires, less a margin: the cloud checks
 * tokens only at login, but a server that outlives its token is one a
 * reconnect could not replace. */
static void lifetime_from_token(struct server *s, int64_t expires_at)
{
	usec_t left = (usec_t)(expires_at * USEC_PER_SEC - time_wall_usec());
	usec_t margin = left / 10 < 60 * USEC_PER_SEC ? left / 10 : 60 * USEC_PER_SEC;
	usec_t cap = left - margin;
	if (cap < USEC_PER_SEC)
		cap = USEC_PER_SEC;
	if (s->lifetime <= 0 || cap < s->lifetime)
		s->lifetime = cap - (usec_t)random_below((uint32_t)(margin / 2 + 1));
}

static void on_token(void *arg, const char *token, size_t len, int64_t expires_at, uint64_t gen,
		     const char *err)
{
	struct server *s = arg;
	if (!take_token(s, "token", token, len, err))
		return;
	s->token_gen = gen;
	s->token_expires = expires_at;
	s->bundle = token_entry_bundle(s->pool->token);
	if (s->pool->db->cfg->lifetime_from_token)
		lifetime_from_token(s, expires_at);
	struct token_entry *login = s->bundle && s->bundle->mdx_auth ? token_entry_login(s->pool->token)
								     : NULL;
	if (login) {
		s->token_wait = token_request(login, on_login_token, s);
		return;
	}
	start_resolve(s);
}

static struct server *server_new(struct pool *p);

void server_launch(struct pool *p)
{
	server_new(p);
}

/* The one retry after a rejected token. */
static void server_launch_retry(struct pool *p)
{
	struct server *s = server_new(p);
	if (s && s->state != SV_CLOSING)
		s->token_retry = true;
}

static struct server *server_new(struct pool *p)
{
	struct worker *w = p->w;
	struct server *s = xcalloc(1, sizeof(*s));
	s->w = w;
	session_attrs_init(&s->attrs);
	s->id = ++w->next_id;
	s->pool = p;
	s->sock.fd = -1;
	s->created_at = time_now_usec();
	s->lifetime = jittered_lifetime(p);
	list_init(&s->node);
	pool_server_added(s);
	server_set_state(s, SV_TOKEN, &p->new_servers);
	server_log(LOG_LVL_DEBUG, s, "connecting");
	if (!p->token) {
		start_resolve(s);
		return s;
	}
	/* May answer at once from the cache, or queue behind the one fetch in flight. */
	s->token_wait = token_request(p->token, on_token, s);
	return s;
}

/* ---- TLS ---- */

static void tls_answer(struct server *s)
{
	struct worker *w = s->w;
	struct iobuf *in = s->sock.in;
	char answer = (char)iobuf_head(in)[0];
	iobuf_consume(in, 1);
	if (answer == 'S') {
		if (iobuf_len(in) > 0) {
			/* Bytes before the handshake could be injected (CVE-2021-23222). */
			server_fail_loginf(s, "08P01", "server sent unencrypted data after SSL response");
			return;
		}
		char err[200];
		const struct database *db = s->pool->db;
		SSL_CTX *ctx = runtime_server_tls(w, err, sizeof(err));
		s->sock.ssl = ctx ? tls_connect_new(ctx, s->sock.fd, s->host ? s->host : db->host,
						    (enum tls_mode)db->sslmode, err, sizeof(err))
				  : NULL;
		if (!s->sock.ssl) {
			server_fail_loginf(s, "08006", "%s", err);
			return;
		}
		s->tls = true;
		server_set_state(s, SV_TLS, NULL);
		enum sock_io r = sock_tls_handshake(&s->sock);
		if (r == SOCK_IO_OK)
			send_startup(s);
		else if (r == SOCK_IO_ERR)
			server_fail_loginf(s, "08006", "%s", sock_errmsg(&s->sock));
		return;
	}
	if (answer == 'N' && s->pool->db->sslmode <= TLS_MODE_PREFER) {
		send_startup(s);
		return;
	}
	if (answer == 'N')
		server_fail_loginf(s, "08006",
				   "server does not support TLS and server_tls_sslmode requires it");
	else
		server_fail_loginf(s, "08P01", "invalid answer to SSL request");
}

static void continue_tls(struct server *s)
{
	enum sock_io r = sock_tls_handshake(&s->sock);
	if (r == SOCK_IO_OK)
		tls_established(s);
	else if (r == SOCK_IO_ERR && s->bundle)
		connector_handshake_failed(s);
	else if (r == SOCK_IO_ERR)
		server_fail_loginf(s, "08006", "%s", sock_errmsg(&s->sock));
}

void server_record_param(struct server *s, const unsigned char *body, size_t len, bool login)
{
	struct worker *w = s->w;
	struct msg_reader r;
	reader_init(&r, body, len);
	const char *name = reader_str(&r);
	const char *value = reader_str(&r);
	if (r.bad)
		return;
	if (login)
		session_attrs_note(&s->attrs, name, value);
	int idx = varcache_index(&w->vars, name);
	if (idx >= 0) {
		varcache_set(&w->vars, &s->vars, idx, value);
		if (s->client)
			varcache_set(&w->vars, &s->client->vars, idx, value);
	}
	struct pool *p = s->pool;
	if (login && !p->have_welcome) {
		if (idx >= 0)
			varcache_set(&w->vars, &p->welcome_vars, idx, value);
		else
			proto_param_status(&p->welcome_other, name, value);
	}
}

static bool start_internal_query(struct server *s, enum server_state st, struct list_node *list,
				 const char *sql)
{
	struct pbuf b;
	pbuf_init(&b, 1 << 20);
	proto_query(&b, sql);
	server_set_state(s, st, list);
	s->ready = false;
	return server_send_pbuf(s, &b);
}

static void login_done(struct server *s)
{
	server_log(LOG_LVL_DEBUG, s, "login ok%s", s->tls ? " (TLS)" : "");
	if (s->scram) {
		scram_client_free(s->scram);
		s->scram = NULL;
	}
	s->ready = true;
	respq_reset(&s->respq);
	if (!server_attrs_accept(s))
		return;
	pool_server_logged_in(s);
	const char *cq = s->pool->db->cfg->connect_query;
	if (cq && *cq) {
		start_internal_query(s, SV_CONNECT_QUERY, &s->pool->used_servers, cq);
		return;
	}
	pool_server_usable(s);
}

static bool is_auth_failure(const char *sqlstate)
{
	return strcmp(sqlstate, "28P01") == 0 || strcmp(sqlstate, "28000") == 0;
}

/* The cloud refused the token: drop it from the cache and try once more with
 * a fresh one before telling the waiting clients. */
static void token_rejected(struct server *s, const struct pg_error *e)
{
	struct pool *p = s->pool;
	token_reject(p->token, s->token_gen);
	if (s->token_retry) {
		server_fail_loginf(s, e->sqlstate, "the server rejected a fresh %s token for alias \"%s\": %s",
				   token_kind_name(s), p->db->name, e->message);
		return;
	}
	server_log(LOG_LVL_WARNING, s, "server rejected the token (%s); retrying once with a new one",
		   e->message);
	server_close(s, "token rejected");
	server_launch_retry(p);
}

static void login_message(struct server *s, char type, const unsigned char *body, size_t len)
{
	struct pg_error e;
	switch (type) {
	case 'R':
		server_login_auth(s, body, len);
		return;
	case 'S':
		server_record_param(s, body, len, true);
		return;
	case 'K': {
		struct msg_reader r;
		reader_init(&r, body, len);
		s->backend_pid = reader_u32(&r);
		s->backend_key = reader_u32(&r);
		return;
	}
	case 'Z':
		login_done(s);
		return;
	case 'E':
		if (!proto_parse_error(body, len, &e))
			server_fail_loginf(s, "08P01", "malformed error from server");
		else if (s->pool->token && is_auth_failure(e.sqlstate))
			token_rejected(s, &e);
		else
			server_fail_loginf(s, e.sqlstate, "%s", e.message);
		return;
	case 'N':
	case 'v':
		return;
	default:
		server_fail_loginf(s, "08P01", "unexpected message '%c' from server during login", type);
	}
}

/* ---- the pooler's own queries: connect_query, reset, check, sync ---- */

static void internal_query_message(struct server *s, char type, const unsigned char *body, size_t len)
{
	struct pg_error e;
	switch (type) {
	case 'S':
		server_record_param(s, body, len, false);
		return;
	case 'E':
		if (proto_parse_error(body, len, &e))
			server_close(s, "%s failed: %s", server_state_name(s->state), e.message);
		else
			server_close(s, "%s failed", server_state_name(s->state));
		return;
	case 'Z':
		s->ready = true;
		s->respq.tx_status = len > 0 ? (char)body[0] : 'I';
		if (s->respq.tx_status != 'I') {
			server_close(s, "%s left a transaction open", server_state_name(s->state));
			return;
		}
		pool_server_usable(s);
		return;
	default:
		return; /* CommandComplete, RowDescription, DataRow, notices */
	}
}

/* FATAL, or the classes that mean the session is gone: 57P0x (operator
 * intervention, shutdown) and 08 (connection exception). */
static bool is_connection_loss(const struct pg_error *e)
{
	return strcmp(e->severity, "FATAL") == 0 || strcmp(e->severity, "PANIC") == 0 ||
	       strncmp(e->sqlstate, "57P", 3) == 0 || strncmp(e->sqlstate, "08", 2) == 0;
}

/* Parameter sync before a client's first bytes: absorbed, not forwarded. */
static void sync_message(struct server *s, char type, const unsigned char *body, size_t len)
{
	struct pg_error e;
	switch (type) {
	case 'S':
		server_record_param(s, body, len, false);
		return;
	case 'E':
		if (!proto_parse_error(body, len, &e)) {
			server_close(s, "unreadable error during parameter sync");
		} else if (is_connection_loss(&e)) {
			/* The server is going away (pg_terminate_backend, shutdown): the
			 * client has sent nothing yet and gets another server. */
			server_close(s, "lost during parameter sync: %s", e.message);
		} else if (s->client) {
			client_close(s->client, e.sqlstate, "invalid value for a session parameter: %s",
				     e.message);
		}
		return;
	case 'Z':
		s->ready = true;
		s->respq.tx_status = len > 0 ? (char)body[0] : 'I';
		if (--s->swallow == 0 && s->client)
			client_server_ready(s->client);
		return;
	default:
		return;
	}
}

bool server_link(struct server *s, struct client *c)
{
	struct worker *w = client_worker(c);
	s->client = c;
	c->server = s;
	server_set_state(s, SV_ACTIVE, &s->pool->active_servers);
	sock_set_read(&s->sock, true);
	/* A physical walsender refuses SQL, SET included: a replication
	 * client sees the server's own parameters. */
	char *sql = s->pool->replication ? NULL : varcache_sync_sql(&w->vars, &c->vars, &s->vars);
	if (!sql) {
		client_server_ready(c);
		return s->state != SV_CLOSING;
	}
	struct pbuf b;
	pbuf_init(&b, 1 << 20);
	proto_query(&b, sql);
	free(sql);
	s->swallow++;
	s->ready = false;
	return server_send_pbuf(s, &b);
}

/* The server owes nothing to the client that left: reset it or make it idle. */
void server_finish_release(struct server *s, bool run_reset)
{
	struct worker *w = s->w;
	struct pool *p = s->pool;
	s->drain_step = 0;
	if (s->respq.tx_status != 'I') {
		server_close(s, "client left a transaction open");
		return;
	}
	if (sock_has_output(&s->sock)) {
		server_close(s, "client left while bytes to the server were still queued");
		return;
	}
	if (s->retire || p->db->retired) {
		server_close(s, "retired");
		return;
	}
	const char *reset = w->cfg->server_reset_query;
	if (reset && *reset && run_reset) {
		ps_server_reset(s, reset);
		start_internal_query(s, SV_RESET, &p->used_servers, reset);
		return;
	}
	pool_server_usable(s);
}

static bool owes_nothing(const struct server *s)
{
	return respq_settled(&s->respq) && s->fwd_remaining == 0 && s->cancels == 0;
}

/* A server is given to another client only when it owes nothing to this one;
 * with answers owed it drains them first; what the pooler cannot be sure of
 * (a message cut in half, the pooler's own SET still running) closes it. */
static void release(struct server *s, bool run_reset)
{
	s->client = NULL;
	s->blocked_on_client = false;
	if (s->state == SV_CLOSING)
		return;
	if (s->pool->replication) {
		/* Never drained or reused: a walsender may be streaming still. */
		server_close(s, "replication connection ended");
		return;
	}
	if (s->uncertain) {
		server_close(s, "client left in the middle of a message");
		return;
	}
	if (s->swallow > 0) {
		server_close(s, "client left while its session parameters were being set");
		return;
	}
	/* Answers the drain throws away are not matched to the statements sent. */
	ps_server_abandon(s);
	if (!owes_nothing(s)) {
		server_drain_start(s, run_reset);
		return;
	}
	server_finish_release(s, run_reset);
}

void server_release(struct server *s, bool run_reset)
{
	release(s, run_reset);
}

void server_check(struct server *s)
{
	struct worker *w = s->w;
	const char *sql = config_check_query_sql(w->cfg->server_check_query);
	start_internal_query(s, SV_CHECK, &s->pool->used_servers, sql ? sql : "");
}

void server_probe_query(struct server *s, const char *sql)
{
	start_internal_query(s, SV_CHECK, &s->pool->used_servers, sql);
}

bool server_run_own(struct server *s, const void *msgs, size_t len)
{
	server_set_state(s, SV_CHECK, &s->pool->used_servers);
	s->ready = false;
	return server_send(s, msgs, len);
}

void server_own_done(struct server *s, char tx_status)
{
	s->ready = true;
	s->respq.tx_status = tx_status;
	if (tx_status != 'I') {
		server_close(s, "the pooler's own query left a transaction open");
		return;
	}
	pool_server_usable(s);
}

/* ---- active forwarding ---- */

/* False when the client was closed (its write failed), which released
 * this server. */
static bool flush_to_client(struct server *s, size_t span)
{
	if (span == 0)
		return true;
	unsigned char *head = iobuf_head(s->sock.in);
	iobuf_consume(s->sock.in, span);
	s->pool->stats.bytes_sent += span;
	return client_send(s->client, head, span);
}

static void count_ready(struct server *s)
{
	struct pool_stats *st = &s->pool->stats;
	st->query_count++;
	st->query_time += (uint64_t)(s->last_rfq - s->query_start);
	s->query_start = s->last_rfq;
	if (s->respq.tx_status == 'I') {
		st->xact_count++;
		st->xact_time += (uint64_t)(s->last_rfq - s->xact_start);
		/* A pipelined next request starts its transaction now. */
		s->xact_start = s->last_rfq;
	}
	/* Inside a transaction xact_start stays at its first request
	 * (transaction_timeout, xact_time). */
}

/* Transaction and statement mode give the server back once it has answered
 * everything the client sent and no transaction is open. */
static bool boundary_reached(const struct server *s)
{
	const struct client *c = s->client;
	if (!c || c->mode == POOL_MODE_SESSION || !respq_settled(&s->respq) || c->fwd_remaining)
		return false;
	return s->respq.tx_status == 'I' || c->mode == POOL_MODE_STATEMENT;
}

/* After the ReadyForQuery was taken into account: it was the last one owed. */
static bool statement_mode_violation(const struct server *s, char status)
{
	const struct client *c = s->client;
	return c && c->mode == POOL_MODE_STATEMENT && status != 'I' && respq_owed_rfq(&s->respq) == 0 &&
	       !respq_unsynced(&s->respq);
}

static void end_of_transaction(struct server *s)
{
	struct worker *w = s->w;
	struct client *c = s->client;
	if (!c || c->state == CL_CLOSING)
		return;
	if (s->respq.tx_status != 'I') {
		client_close(c, "25001", "transaction blocks are not allowed in statement pooling mode");
		return;
	}
	c->server = NULL;
	s->client = NULL;
	release(s, w->cfg->server_reset_query_always);
	if (w->shutdown_mode == SHUTDOWN_WAIT_FOR_SERVERS)
		client_close(c, "57P01", "terminating connection: the pooler is shutting down");
	else
		client_detached(c);
}

enum ps_step {
	PS_PASS,
	PS_CONSUMED,
	PS_STOP
};

/* Prepared-statement tracking: act on what the answer tracker said of the
 * message (whole in the buffer unless it is forwarded): drop or replace the
 * pooler's own answers. */
static enum ps_step ps_step(struct server *s, enum rq_verdict v, const struct rq_entry *ans,
			    const struct pg_hdr *h, size_t *span)
{
	if (v == RQV_FORWARD)
		return PS_PASS;
	bool flushed = flush_to_client(s, *span);
	*span = 0;
	if (v == RQV_CONFUSED) {
		server_close(s, "message '%c' answers nothing that was sent", h->type);
		return PS_STOP;
	}
	if (!flushed)
		return PS_STOP;
	if (v == RQV_REPLACE) {
		/* Read in place: sending may close the server, whose buffers live
		 * until server_free. */
		size_t blen = h->len - 4;
		const unsigned char *body = iobuf_head(s->sock.in) + PROTO_HDR_LEN;
		iobuf_consume(s->sock.in, (size_t)h->len + 1);
		bool ok = ps_send_replacement(s, ans, body, blen);
		return ok && s->client ? PS_CONSUMED : PS_STOP;
	}
	iobuf_consume(s->sock.in, (size_t)h->len + 1);
	return s->client ? PS_CONSUMED : PS_STOP;
}

/* A ReadyForQuery on its way to the client. False when the server went back
 * to the pool or the client was closed. */
static bool ready_for_query(struct server *s, char status, bool answered, uint32_t len, size_t *span)
{
	if (statement_mode_violation(s, status)) {
		/* The client must not see a transaction open: end it before this ReadyForQuery. */
		if (flush_to_client(s, *span))
			client_close(s->client, "25001",
				     "transaction blocks are not allowed in "
				     "statement pooling mode");
		return false;
	}
	*span += len + 1;
	s->ready = true;
	s->last_rfq = time_now_usec();
	if (answered)
		count_ready(s);
	if (boundary_reached(s)) {
		if (flush_to_client(s, *span))
			end_of_transaction(s);
		return false;
	}
	return true;
}

/* One server message to the answer tracker. Without statement tracking an
 * answer that fits nothing only makes the tracker inexact (the server is
 * drained after this client); said once. */
static enum rq_verdict track_answer(struct server *s, char type, char status, struct rq_entry *ans)
{
	bool was_inexact = s->respq.inexact;
	enum rq_verdict v = respq_server_msg(&s->respq, type, status, ans);
	if (s->respq.inexact && !was_inexact)
		server_log(LOG_LVL_DEBUG, s, "lost exact track of the answers owed at '%c'", type);
	return v;
}

enum fwd_step {
	FWD_STREAM,    /* forward its body as it comes */
	FWD_DONE,      /* handled whole */
	FWD_NEED_MORE, /* read it whole first */
	FWD_STOP,      /* the server went back to the pool or a connection closed */
};

/* One server message whose header is in: to the tracker, then to the
 * prepared-statement layer; ParameterStatus and ReadyForQuery whole. */
static enum fwd_step forward_message(struct server *s, const unsigned char *p, const struct pg_hdr *h,
				     size_t avail, size_t *span, bool ps)
{
	bool whole = h->type == 'Z' || h->type == 'S' || (ps && ps_server_wants_whole(s));
	if (whole && avail < (size_t)h->len + 1)
		return FWD_NEED_MORE;
	/* The tracker follows what the server sends, whatever the
	 * prepared-statement layer then passes on, drops or replaces. */
	char status = h->type == 'Z' && h->len >= 5 ? (char)p[PROTO_HDR_LEN] : 'I';
	struct rq_entry ans;
	enum rq_verdict v = track_answer(s, h->type, status, &ans);
	if (ps) {
		enum ps_step step = ps_step(s, v, &ans, h, span);
		if (step != PS_PASS)
			return step == PS_STOP ? FWD_STOP : FWD_DONE;
	}
	if (h->type == 'S') {
		*span += h->len + 1;
		server_record_param(s, p + PROTO_HDR_LEN, h->len - 4, false);
		return FWD_DONE;
	}
	if (h->type == 'Z')
		return ready_for_query(s, status, rq_kind_owes_rfq(ans.kind), h->len, span) ? FWD_DONE
											    : FWD_STOP;
	return FWD_STREAM;
}

/* Stream server messages to the client; ReadyForQuery and ParameterStatus
 * are read whole, the rest only by their headers. */
static void forward_to_client(struct server *s)
{
	struct iobuf *in = s->sock.in;
	size_t span = 0;
	bool ps = ps_server_active(s);
	while (s->client && in && span < iobuf_len(in)) {
		size_t avail = iobuf_len(in) - span;
		if (s->fwd_remaining) {
			size_t n = avail < s->fwd_remaining ? avail : s->fwd_remaining;
			span += n;
			s->fwd_remaining -= (uint32_t)n;
			continue;
		}
		if (ps && ps_synth_due(s)) {
			if (!flush_to_client(s, span))
				return;
			span = 0;
			if (!ps_release_synth(s))
				return;
			continue;
		}
		const unsigned char *p = iobuf_head(in) + span;
		struct pg_hdr h;
		char err[160];
		enum proto_status st = proto_peek_header(p, avail, 0x7fffffff, &h, err, sizeof(err));
		if (st == PROTO_NEED_MORE)
			break;
		if (st == PROTO_ERROR) {
			/* Closed whether or not the flush lost the client: the
			 * stream cannot be followed past this point. */
			bool flushed = flush_to_client(s, span);
			server_close(s, "protocol error: %s%s", err, flushed ? "" : " (client gone too)");
			return;
		}
		enum fwd_step step = forward_message(s, p, &h, avail, &span, ps);
		if (step == FWD_NEED_MORE)
			break;
		if (step == FWD_STOP)
			return;
		if (step == FWD_DONE)
			continue;
		span += PROTO_HDR_LEN;
		s->fwd_remaining = h.len - 4;
	}
	if (!s->client)
		return;
	struct client *c = s->client;
	if (!flush_to_client(s, span))
		return;
	if (ps && !ps_flush_synth(s))
		return;
	if (sock_has_output(&c->sock)) {
		s->blocked_on_client = true;
		sock_set_read(&s->sock, false);
	}
}

/* One whole message in a login or control state. */
static void handle_whole_message(struct server *s, char type, const unsigned char *body, size_t blen)
{
	switch (s->state) {
	case SV_LOGIN:
		login_message(s, type, body, blen);
		break;
	case SV_ACTIVE:
		sync_message(s, type, body, blen);
		break;
	case SV_CONNECT_QUERY:
	case SV_RESET:
	case SV_CHECK:
		if (s->authq)
			authq_server_message(s, type, body, blen);
		else
			internal_query_message(s, type, body, blen);
		break;
	case SV_IDLE:
		if (type == 'E') {
			struct pg_error e;
			server_close(s, "server error while idle: %s",
				     proto_parse_error(body, blen, &e) ? e.message : "?");
		} else if (type == 'S') {
			server_record_param(s, body, blen, false);
		} else if (type != 'N' && type != 'A') {
			server_close(s, "unexpected message '%c' while idle", type);
		}
		break;
	default:
		server_close(s, "unexpected data in state %s", server_state_name(s->state));
		break;
	}
}

/* Whole-message processing for every state but plain forwarding. Returns
 * the size it needs buffered to make progress, or 0. */
static size_t process_whole_messages(struct server *s)
{
	while (s->state != SV_CLOSING && s->sock.in && iobuf_len(s->sock.in) > 0) {
		if (s->state == SV_ACTIVE && s->swallow == 0)
			return 0;
		struct iobuf *in = s->sock.in;
		if (s->state == SV_TLS_REQ) {
			tls_answer(s);
			continue;
		}
		if (s->mdx_pending) {
			size_t need = mdx_answer(s);
			if (need)
				return need;
			continue;
		}
		struct pg_hdr h;
		char err[160];
		enum proto_status st = proto_peek_header(iobuf_head(in), iobuf_len(in), SERVER_MSG_MAX, &h,
							 err, sizeof(err));
		if (st == PROTO_ERROR) {
			server_close(s, "protocol error: %s", err);
			return 0;
		}
		if (st == PROTO_NEED_MORE)
			return PROTO_HDR_LEN;
		if (iobuf_len(in) < h.len + 1)
			return h.len + 1;
		unsigned char *body = iobuf_head(in) + PROTO_HDR_LEN;
		size_t blen = h.len - 4;
		/* Consumed before it is handled: a handler may hand the server on,
		 * and whoever reads it next starts after this message. The bytes
		 * stay valid even if the handler closes the server (the buffers
		 * live until server_free). */
		iobuf_consume(in, h.len + 1);
		handle_whole_message(s, h.type, body, blen);
		/* Login and auth_query answers carry secrets (SASL, password rows). */
		secret_wipe(body, blen);
	}
	return 0;
}

void server_process(struct server *s)
{
	if (s->state == SV_DRAIN) {
		server_drain_input(s);
		return;
	}
	s->need = (uint32_t)process_whole_messages(s);
	if (s->state == SV_ACTIVE && s->swallow == 0 && !s->blocked_on_client)
		forward_to_client(s);
}

void server_resume(struct server *s)
{
	if (!s->blocked_on_client)
		return;
	s->blocked_on_client = false;
	if (s->state == SV_CLOSING)
		return;
	sock_set_read(&s->sock, true);
	if (iobuf_len(s->sock.in) > 0)
		server_process(s);
}

static void server_read(struct server *s)
{
	struct worker *w = s->w;
	if (s->state == SV_TLS) {
		continue_tls(s);
		return;
	}
	enum sock_io r = sock_fill(&s->sock, (size_t)w->cfg->pkt_buf, s->need);
	if (r == SOCK_IO_EOF || r == SOCK_IO_ERR) {
		const char *why = r == SOCK_IO_EOF ? "server closed the connection unexpectedly"
						   : sock_errmsg(&s->sock);
		if (s->state < SV_IDLE && r == SOCK_IO_EOF)
			login_failed_restarting(s, "%s", why);
		else if (s->state < SV_IDLE)
			server_fail_loginf(s, "08006", "%s", why);
		else
			server_close(s, "%s", why);
		return;
	}
	if (iobuf_len(s->sock.in) > 0)
		server_process(s);
	if (s->state != SV_CLOSING && s->sock.want_read)
		sock_kick_pending(&s->sock);
}

static void server_io(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	if (what & EV_WRITE) {
		if (s->state == SV_CONNECTING) {
			connected(s);
			return;
		}
		if (s->state == SV_TLS) {
			continue_tls(s);
			return;
		}
		enum sock_io r = sock_flush(&s->sock);
		if (r == SOCK_IO_ERR) {
			server_close(s, "write failed: %s", sock_errmsg(&s->sock));
			return;
		}
		if (r == SOCK_IO_OK && s->client && s->client->blocked_on_server)
			client_resume(s->client);
		if (s->state == SV_CLOSING)
			return;
		if (s->sock.ssl_read_wants_write)
			what |= EV_READ;
	}
	if (what & EV_READ)
		server_read(s);
}
