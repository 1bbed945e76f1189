/* Backend connections: connect, TLS, upstream authentication, login, and
 * the pooler's own queries (reset, check, parameter sync). */
#ifndef TB_POOL_SERVER_H
#define TB_POOL_SERVER_H
#include <stdbool.h>
#include <stddef.h>

#include "core/mustcheck.h"
#include "core/util.h"
#include "pool/pool-t.h"

/* Open a new connection for the pool; it reports back through pool.h. */
void server_launch(struct pool *p);
/* The one way to end a server: one log line, its client (if any) gets an
 * error and is closed, the pool is told, the free is deferred. */
void server_close(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Give an idle server to a client; syncs session parameters first. False
 * when the server was closed on the way. */
bool server_link(struct server *s, struct client *c);
/* The client is done with it: drain what it still owes, reset (run_reset:
 * server_reset_query) and reuse, or close when unsure of its state. */
void server_release(struct server *s, bool run_reset);
/* Bytes for the server; false if the server was lost. */
TB_MUSTCHECK bool server_send(struct server *s, const void *data, size_t len);
/* The client's queue drained: read from the server again. */
void server_resume(struct server *s);
/* Run server_check_query before reuse; the pool gets the server back when done. */
void server_check(struct server *s);
/* Run one query of the pooler's own on an idle server (as the check query
 * runs); the pool gets the server back when it is done, or it is closed. */
void server_probe_query(struct server *s, const char *sql);
/* Send messages of the pooler's own (extended protocol, ending in Sync) on
 * an idle server; whoever reads the answers calls server_own_done at its
 * ReadyForQuery, which gives the server back to the pool. False if the
 * server was lost. */
bool server_run_own(struct server *s, const void *msgs, size_t len);
void server_own_done(struct server *s, char tx_status);
void server_free(struct server *s);

/* An observer of every server's progress, for `tokenbouncer check`; the
 * pooler itself sets none. state runs after each change of s->state (from
 * is the state left); closed runs as server_close begins, with the reason,
 * while the connection (and its TLS session) is still there. */
struct server_watch {
	void (*state)(struct server *s, enum server_state from, void *arg);
	void (*closed)(struct server *s, const char *why, void *arg);
	void *arg;
};
void server_watch_set(const struct server_watch *w);
/* For state changes made outside server.c (pool_server_usable). */
void server_watch_note(struct server *s, enum server_state from);
/* A connect or login that took too long or cannot succeed. */
void server_login_failed(struct server *s, const char *msg);
/* A server still logging in at now: fail it past server_connect_timeout, or
 * when the instance leaves the metadata exchange unanswered (AlloyDB). */
void server_login_deadline(struct server *s, usec_t now);
const char *server_state_name(enum server_state st);
#endif
