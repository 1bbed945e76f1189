/* Shared by the console's own files (admin.c, show.c, show_peers.c,
 * control.c, metrics.c); the rest of the pooler uses admin/admin.h. */
#ifndef TB_ADMIN_ADMIN_PRIV_H
#define TB_ADMIN_ADMIN_PRIV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/admin-t.h"
#include "core/list.h"
#include "core/mustcheck.h"
#include "core/util.h"
#include "pg/proto.h"
#include "pool/pool-t.h"

struct worker;

/* True for the console's database names. */
bool admin_is_console_db(const char *dbname);
/* Local authentication succeeded for a console client: check admin_users /
 * stats_users, then send the login reply (state CL_IDLE, no pool). */
TB_MUSTCHECK bool admin_login(struct client *c);
/* A console client in CL_IDLE has bytes buffered: handle whole messages.
 * False: the client is closed. */
TB_MUSTCHECK bool admin_process(struct client *c);

#define ADMIN_MAX_ARGS 8

enum admin_token {
	ADMIN_TOK_WORD,   /* bare word or number */
	ADMIN_TOK_IDENT,  /* "double-quoted" name */
	ADMIN_TOK_STRING, /* 'single-quoted' string */
	ADMIN_TOK_SYMBOL, /* = */
};

enum admin_status {
	ADMIN_DONE,   /* the handler wrote its result and CommandComplete */
	ADMIN_FAILED, /* sqlstate and message say why; nothing was written */
	ADMIN_WAIT,   /* completes later (admin_tick) with wait.tag */
	ADMIN_GONE,   /* the console client itself was closed */
};

enum admin_wait_kind {
	ADMIN_WAIT_PAUSE,   /* no server of the database(s) linked to a client */
	ADMIN_WAIT_CLOSE,   /* the listed servers are closed */
	ADMIN_WAIT_SUSPEND, /* every suspended socket has flushed its output */
};

struct admin_wait {
	enum admin_wait_kind kind;
	char *db;             /* NULL: every database */
	uint64_t *server_ids; /* ADMIN_WAIT_CLOSE */
	size_t nservers;
	const char *tag; /* CommandComplete tag when done (static string) */
};

/* One command of a simple Query, tokenized. */
struct admin_req {
	struct client *c;
	struct pbuf *out; /* result of this command only */
	const char *text; /* the whole command, trimmed */
	int argc;
	char *argv[ADMIN_MAX_ARGS]; /* unquoted tokens; argv[0] is the verb */
	enum admin_token kind[ADMIN_MAX_ARGS];
	char sqlstate[6];
	char message[512];
	struct admin_wait wait;
};

enum admin_status admin_fail(struct admin_req *r, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Console clients logged in and not closed; linked through client.node. */
const struct list_node *admin_client_list(struct worker *w);
/* "15.0 (tokenbouncer X.Y.Z)": what psql and drivers parse as the server version. */
const char *admin_server_version(void);

/* show.c */
enum admin_status show_command(struct admin_req *r);
/* show_dns.c: SHOW DNS_HOSTS */
enum admin_status show_dns_hosts(struct admin_req *r);
/* show_peers.c: SHOW PEERS [id], SHOW PEER_POOLS [id] */
enum admin_status show_peers(struct admin_req *r);
enum admin_status show_peer_pools(struct admin_req *r);

/* control.c: each takes the verb's arguments in r->argv[1..] */
enum admin_status control_pause(struct admin_req *r);
enum admin_status control_resume(struct admin_req *r);
enum admin_status control_reconnect(struct admin_req *r);
enum admin_status control_kill(struct admin_req *r);
enum admin_status control_kill_client(struct admin_req *r);
enum admin_status control_disable(struct admin_req *r);
enum admin_status control_enable(struct admin_req *r);
enum admin_status control_reload(struct admin_req *r);
enum admin_status control_shutdown(struct admin_req *r);
enum admin_status control_wait_close(struct admin_req *r);
enum admin_status control_set(struct admin_req *r);
enum admin_status control_refresh(struct admin_req *r);
enum admin_status control_suspend(struct admin_req *r);
/* SET of the session parameters drivers send on connect (client_encoding,
 * DateStyle, ...): accepted and ignored, as PgBouncer does. NULL if not one. */
const char *control_fake_param(const char *name);
bool control_wait_done(struct worker *w, const struct admin_wait *aw);
void control_wait_clear(struct admin_wait *w);
/* Pause databases created after a PAUSE of all; finish SHUTDOWN WAIT_FOR_SERVERS. */
void control_tick(struct worker *w, usec_t now);
/* PAUSE without a database is in force. */
bool control_paused_all(struct worker *w);
#endif
