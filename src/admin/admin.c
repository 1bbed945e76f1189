/* The console session: login, message framing, splitting a simple Query
 * into commands, privileges, and commands that complete later. */
#include "admin/admin.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_priv.h"
#include "admin/resultset.h"
#include "admin/stats.h"
#include "config.h"
#include "core/log.h"
#include "pool/client.h"
#include "pool/runtime.h"
#include "pool/worker.h"

/* A console Query is a few words; this only bounds what a confused client
 * can make us buffer. */
#define ADMIN_MSG_MAX (1u << 20)
/* SHOW CLIENTS of a very busy pooler is tens of MB; beyond this, refuse. */
#define ADMIN_OUT_MAX ((size_t)1 << 28)

/* Per console client state. struct client has no slot for it, so sessions
 * are found by client pointer and id, and freed by admin_tick once their
 * client has left admin_clients (client_close moves client.node away). */
struct admin_session {
	struct client *c;
	uint64_t id;
	struct list_node node;
	char *pending;    /* the Query being run, NULL between queries */
	size_t pos;       /* next command in pending */
	size_t ncommands; /* commands run so far in pending */
	bool waiting;
	struct admin_wait wait;
	bool skip_to_sync; /* after refusing an extended-protocol message */
	bool live;
};

static TB_MUSTCHECK bool process_messages(struct admin_session *s);

bool admin_is_console_db(const char *dbname)
{
	return dbname && (strcmp(dbname, "tokenbouncer") == 0 || strcmp(dbname, "pgbouncer") == 0);
}

const struct list_node *admin_client_list(struct worker *w)
{
	return &w->admin->clients;
}

const char *admin_server_version(void)
{
	return "15.0 (tokenbouncer " PACKAGE_VERSION ")";
}

enum admin_status admin_fail(struct admin_req *r, const char *sqlstate, const char *fmt, ...)
{
	snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", sqlstate);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	return ADMIN_FAILED;
}

/* ---- sessions ---- */

static struct admin_session *session_find(const struct client *c)
{
	struct worker *w = client_worker(c);
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->admin->sessions) {
		struct admin_session *s = list_entry(n, struct admin_session, node);
		if (s->c == c && s->id == c->id)
			return s;
	}
	return NULL;
}

static struct admin_session *session_get(struct client *c)
{
	struct worker *w = client_worker(c);
	struct admin_session *s = session_find(c);
	if (s)
		return s;
	s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->id = c->id;
	list_add_tail(&w->admin->sessions, &s->node);
	return s;
}

static void session_free(struct admin_session *s)
{
	list_del(&s->node);
	control_wait_clear(&s->wait);
	free(s->pending);
	free(s);
}

/* ---- login ---- */

bool admin_login(struct client *c)
{
	struct worker *w = client_worker(c);
	const struct tb_config *cfg = w->cfg;
	bool admin = c->console_peer || str_in_list(cfg->admin_users, c->user);
	bool stats = str_in_list(cfg->stats_users, c->user);
	if (!admin && !stats) {
		client_close(c, "28000",
			     "user \"%s\" may not use the admin console: it is in neither "
			     "admin_users nor stats_users",
			     c->user);
		return false;
	}
	c->admin_stats_only = !admin;
	if (!random_bytes(&c->cancel_pid, sizeof(c->cancel_pid)) ||
	    !random_bytes(&c->cancel_key, sizeof(c->cancel_key))) {
		client_close(c, "58000", "no random bytes for the cancel key");
		return false;
	}
	const char *app = varcache_get(&w->vars, &c->vars, VAR_APPLICATION_NAME);
	struct pbuf b;
	pbuf_init(&b, 65536);
	proto_auth_request(&b, 0, NULL, 0);
	/* What psql and drivers look at on connect. A PostgreSQL-like version
	 * keeps psql from warning about a major version mismatch. */
	proto_param_status(&b, "server_version", admin_server_version());
	proto_param_status(&b, "server_encoding", "UTF8");
	proto_param_status(&b, "client_encoding", "UTF8");
	proto_param_status(&b, "DateStyle", "ISO");
	proto_param_status(&b, "IntervalStyle", "postgres");
	proto_param_status(&b, "TimeZone", "UTC");
	proto_param_status(&b, "integer_datetimes", "on");
	proto_param_status(&b, "standard_conforming_strings", "on");
	proto_param_status(&b, "is_superuser", "off");
	proto_param_status(&b, "application_name", app ? app : "");
	proto_backend_key(&b, c->cancel_pid, c->cancel_key);
	proto_ready(&b, 'I');
	c->state = CL_IDLE;
	c->state_since = time_mono_usec();
	list_del(&c->node);
	list_add_tail(&w->admin->clients, &c->node);
	session_get(c);
	bool ok = !b.failed && client_send(c, b.data, b.len);
	pbuf_free(&b);
	if (!ok)
		return false;
	log_debug("C-%llu: console login as %s user %s", (unsigned long long)c->id, admin ? "admin" : "stats",
		  c->user);
	sock_set_read(&c->sock, true);
	return iobuf_len(c->sock.in) == 0 || admin_process(c);
}

/* ---- commands ---- */

struct admin_verb {
	const char *name;
	enum admin_status (*run)(struct admin_req *r);
	bool admin_only; /* stats_users may not */
};

static const struct admin_verb verbs[] = {
	{ "SHOW", show_command, false },
	{ "SET", control_set, false }, /* checks itself: stats users may SET the fake parameters */
	{ "PAUSE", control_pause, true },
	{ "RESUME", control_resume, true },
	{ "RECONNECT", control_reconnect, true },
	{ "KILL", control_kill, true },
	{ "KILL_CLIENT", control_kill_client, true },
	{ "DISABLE", control_disable, true },
	{ "ENABLE", control_enable, true },
	{ "RELOAD", control_reload, true },
	{ "SHUTDOWN", control_shutdown, true },
	{ "WAIT_CLOSE", control_wait_close, true },
	{ "REFRESH", control_refresh, true },
	{ "SUSPEND", control_suspend, true },
};

static void free_args(struct admin_req *r)
{
	for (int i = 0; i < r->argc; i++)
		free(r->argv[i]);
	r->argc = 0;
}

/* Words, "quoted names", 'strings' (doubled quotes inside) and '='. */
static bool tokenize(struct admin_req *r, const char *s)
{
	while (*s) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (r->argc == ADMIN_MAX_ARGS)
			return false;
		char *tok;
		enum admin_token kind;
		if (*s == '\'' || *s == '"') {
			char q = *s++;
			tok = xmalloc(strlen(s) + 1);
			size_t n = 0;
			for (;;) {
				if (!*s) {
					free(tok);
					return false;
				}
				if (*s == q && s[1] == q) {
					tok[n++] = q;
					s += 2;
				} else if (*s == q) {
					s++;
					break;
				} else {
					tok[n++] = *s++;
				}
			}
			tok[n] = '\0';
			kind = q == '\'' ? ADMIN_TOK_STRING : ADMIN_TOK_IDENT;
		} else if (*s == '=') {
			tok = xstrdup("=");
			kind = ADMIN_TOK_SYMBOL;
			s++;
		} else {
			const char *start = s;
			while (*s && !isspace((unsigned char)*s) && *s != '=' && *s != '\'' && *s != '"')
				s++;
			tok = xstrndup(start, (size_t)(s - start));
			kind = ADMIN_TOK_WORD;
		}
		r->argv[r->argc] = tok;
		r->kind[r->argc] = kind;
		r->argc++;
	}
	return true;
}

static enum admin_status run_command(struct admin_session *s, struct admin_req *r)
{
	if (!tokenize(r, r->text) || r->argc == 0 || r->kind[0] != ADMIN_TOK_WORD)
		return admin_fail(r, "42601", "syntax error in \"%s\", use SHOW HELP;", r->text);
	const struct admin_verb *v = NULL;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (str_ieq(verbs[i].name, r->argv[0]))
			v = &verbs[i];
	if (!v)
		return admin_fail(r, "42601", "invalid command \"%s\", use SHOW HELP;", r->text);
	if (v->admin_only && s->c->admin_stats_only)
		return admin_fail(r, "42501", "permission denied: %s requires a user listed in admin_users",
				  v->name);
	if (v->admin_only)
		log_info("C-%llu: console command by %s: %s", (unsigned long long)s->c->id, s->c->user,
			 r->text);
	else
		log_debug("C-%llu: console command by %s: %s", (unsigned long long)s->c->id, s->c->user,
			  r->text);
	return v->run(r);
}

/* The next command of pending, trimmed, or NULL at the end. ';' inside
 * quotes does not split. */
static char *next_command(struct admin_session *s)
{
	const char *p = s->pending + s->pos;
	for (;;) {
		while (isspace((unsigned char)*p) || *p == ';')
			p++;
		if (!*p) {
			s->pos = (size_t)(p - s->pending);
			return NULL;
		}
		const char *start = p;
		char q = 0;
		for (; *p; p++) {
			if (q) {
				if (*p == q)
					q = 0; /* a doubled quote closes and reopens: same result */
			} else if (*p == '\'' || *p == '"') {
				q = *p;
			} else if (*p == ';') {
				break;
			}
		}
		const char *end = p;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		s->pos = (size_t)(p - s->pending);
		if (end > start)
			return xstrndup(start, (size_t)(end - start));
	}
}

/* False: the client is closed (the send failed, or it was already). */
static TB_MUSTCHECK bool send_out(struct client *c, struct pbuf *out)
{
	if (out->len == 0)
		return c->state != CL_CLOSING;
	bool ok = client_send(c, out->data, out->len);
	pbuf_reset(out);
	return ok;
}

static void append(struct pbuf *dst, const struct pbuf *src)
{
	pbuf_put_bytes(dst, src->data, src->len);
}

/* Run commands of the pending Query until it ends, fails, or one waits.
 * False: the client is closed. */
static TB_MUSTCHECK bool continue_query(struct admin_session *s)
{
	struct client *c = s->c;
	struct pbuf out;
	pbuf_init(&out, ADMIN_OUT_MAX);
	char *text;
	while ((text = next_command(s))) {
		struct pbuf cmd_out;
		pbuf_init(&cmd_out, ADMIN_OUT_MAX);
		struct admin_req r;
		memset(&r, 0, sizeof(r));
		r.c = c;
		r.out = &cmd_out;
		r.text = text;
		s->ncommands++;
		enum admin_status st = run_command(s, &r);
		free_args(&r);
		free(text);
		if (st == ADMIN_GONE || c->state == CL_CLOSING) {
			control_wait_clear(&r.wait);
			pbuf_free(&cmd_out);
			pbuf_free(&out);
			free(s->pending);
			s->pending = NULL;
			return false;
		}
		if (st == ADMIN_DONE && cmd_out.failed)
			st = admin_fail(&r, "54000", "result too large for the console");
		if (st == ADMIN_WAIT && control_wait_done(client_worker(c), &r.wait)) {
			resultset_complete(&cmd_out, r.wait.tag);
			control_wait_clear(&r.wait);
			st = ADMIN_DONE;
		}
		if (st == ADMIN_DONE) {
			append(&out, &cmd_out);
			pbuf_free(&cmd_out);
			continue;
		}
		pbuf_free(&cmd_out);
		if (st == ADMIN_WAIT) {
			/* What earlier commands produced goes out now; the rest of the
			 * Query, and reading, resume when the wait is over. */
			s->waiting = true;
			s->wait = r.wait;
			sock_set_read(&c->sock, false);
			bool open = send_out(c, &out);
			pbuf_free(&out);
			return open;
		}
		proto_error(&out, "ERROR", r.sqlstate, r.message);
		break;
	}
	if (s->ncommands == 0) {
		pbuf_begin(&out, 'I'); /* EmptyQueryResponse */
		pbuf_end(&out);
	}
	proto_ready(&out, 'I');
	free(s->pending);
	s->pending = NULL;
	bool open = send_out(c, &out);
	pbuf_free(&out);
	return open;
}

static TB_MUSTCHECK bool start_query(struct admin_session *s, const unsigned char *body, size_t len)
{
	if (len == 0 || body[len - 1] != '\0' || memchr(body, '\0', len) != body + len - 1) {
		client_close(s->c, "08P01", "malformed Query message");
		return false;
	}
	s->pending = xstrdup((const char *)body);
	s->pos = 0;
	s->ncommands = 0;
	return continue_query(s);
}

static TB_MUSTCHECK bool refuse_extended(struct admin_session *s, char type)
{
	struct pbuf out;
	pbuf_init(&out, 4096);
	proto_error(&out, "ERROR", "0A000",
		    "the admin console supports only the simple query protocol "
		    "(psql, or a driver's simple or \"client-side binding\" mode)");
	if (type == 'F')
		proto_ready(&out, 'I'); /* FunctionCall is answered at once, no Sync follows */
	else
		s->skip_to_sync = true;
	bool open = send_out(s->c, &out);
	pbuf_free(&out);
	return open;
}

/* False: the client is closed. */
static TB_MUSTCHECK bool handle_message(struct admin_session *s, char type, const unsigned char *body,
					size_t len)
{
	struct client *c = s->c;
	if (type == 'X') {
		client_close(c, NULL, "client sent Terminate");
		return false;
	}
	if (type == 'S') {
		/* Sync ends the error recovery of an extended-protocol attempt. */
		s->skip_to_sync = false;
		struct pbuf out;
		pbuf_init(&out, 64);
		proto_ready(&out, 'I');
		bool open = send_out(c, &out);
		pbuf_free(&out);
		return open;
	}
	if (s->skip_to_sync)
		return true;
	switch (type) {
	case 'Q':
		return start_query(s, body, len);
	case 'P':
	case 'B':
	case 'D':
	case 'E':
	case 'C':
	case 'H':
	case 'F':
		return refuse_extended(s, type);
	case 'd':
	case 'c':
	case 'f':
		return true; /* stray COPY data: nothing is copying */
	default:
		client_close(c, "08P01", "unexpected message type '%c' on the admin console", type);
		return false;
	}
}

/* False: the client is closed. */
static bool process_messages(struct admin_session *s)
{
	struct client *c = s->c;
	while (!s->waiting && iobuf_len(c->sock.in) > 0) {
		struct iobuf *in = c->sock.in;
		struct pg_hdr h;
		char err[160];
		enum proto_status st = proto_peek_header(iobuf_head(in), iobuf_len(in), ADMIN_MSG_MAX, &h,
							 err, sizeof(err));
		if (st == PROTO_ERROR) {
			client_close(c, "08P01", "%s", err);
			return false;
		}
		if (st == PROTO_NEED_MORE || iobuf_len(in) < (size_t)h.len + 1)
			return true;
		size_t blen = h.len - 4;
		/* Read in place: a command may close the client, whose buffers
		 * live until client_free. */
		const unsigned char *body = iobuf_head(in) + PROTO_HDR_LEN;
		iobuf_consume(in, (size_t)h.len + 1);
		if (!handle_message(s, h.type, body, blen))
			return false;
	}
	if (!s->waiting && iobuf_len(c->sock.in) == 0)
		sock_trim(&c->sock);
	return true;
}

bool admin_process(struct client *c)
{
	struct worker *w = client_worker(c);
	struct admin_session *s = session_get(c);
	if (s->waiting) {
		sock_set_read(&c->sock, false);
		return true;
	}
	w->admin->busy = true;
	bool open = process_messages(s);
	w->admin->busy = false;
	return open;
}

/* ---- the janitor's pass ---- */

/* False: the client is closed. */
static TB_MUSTCHECK bool finish_wait(struct admin_session *s)
{
	struct client *c = s->c;
	struct pbuf out;
	pbuf_init(&out, 256);
	resultset_complete(&out, s->wait.tag);
	control_wait_clear(&s->wait);
	s->waiting = false;
	bool ok = send_out(c, &out);
	pbuf_free(&out);
	if (!ok || (s->pending && !continue_query(s)))
		return false;
	if (s->waiting)
		return true;
	sock_set_read(&c->sock, true);
	return process_messages(s);
}

void admin_tick(struct worker *w)
{
	if (w->admin->busy)
		return;
	w->admin->busy = true;
	usec_t now = time_mono_usec();
	stats_tick(w, now);
	stats_log_tick(w, now);
	control_tick(w, now);
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->admin->sessions)
		list_entry(n, struct admin_session, node)->live = false;
	list_for_each_safe(n, t, &w->admin->clients) {
		struct admin_session *s = session_find(list_entry(n, struct client, node));
		if (s)
			s->live = true;
	}
	list_for_each_safe(n, t, &w->admin->sessions) {
		struct admin_session *s = list_entry(n, struct admin_session, node);
		if (!s->live)
			session_free(s);
	}
	list_for_each_safe(n, t, &w->admin->sessions) {
		struct admin_session *s = list_entry(n, struct admin_session, node);
		if (s->live && s->waiting && s->c->state == CL_IDLE &&
		    control_wait_done(client_worker(s->c), &s->wait))
			TB_UNUSED_RESULT(finish_wait(s)); /* the other sessions are served either way */
	}
	w->admin->busy = false;
}

const struct console_ops admin_console = {
	.is_console_db = admin_is_console_db,
	.login = admin_login,
	.process = admin_process,
};

void admin_attach(struct worker *w, struct admin_state *console, struct stats_ring *stats)
{
	*console = (struct admin_state){ 0 };
	list_init(&console->clients);
	list_init(&console->sessions);
	*stats = (struct stats_ring){ 0 };
	list_init(&stats->entries);
	w->admin = console;
	w->stats = stats;
}
