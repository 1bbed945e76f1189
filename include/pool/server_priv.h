/* What server.c shares with the modules that take a server over for a
 * while (the drain in server_drain.c, cancel forwarding in cancel.c) or do a
 * part of its login (upstream authentication in server_auth.c); the
 * rest of the pooler uses pool/server.h. */
#ifndef TB_POOL_SERVER_PRIV_H
#define TB_POOL_SERVER_PRIV_H
#include <stdbool.h>
#include <stddef.h>

#include "core/mustcheck.h"
#include "core/log.h"
#include "pool/pool-t.h"

struct pbuf;

/* "S-id user@db (host:port)", the prefix of every line about a server. */
void server_log_prefix(const struct server *s, char *buf, size_t len);
#define server_log(lvl, s, fmt, ...) \
	do { \
		if (log_enabled(lvl)) { \
			char pfx_[200]; \
			server_log_prefix(s, pfx_, sizeof(pfx_)); \
			log_msg(lvl, "%s: " fmt, pfx_, ##__VA_ARGS__); \
		} \
	} while (0)

/* Move to a state (and list, if not NULL), telling the watch. */
void server_set_state(struct server *s, enum server_state st, struct list_node *list);
/* Send a built message and free it; false if it failed or the server closed. */
TB_MUSTCHECK bool server_send_pbuf(struct server *s, struct pbuf *b);
/* Record a ParameterStatus (login: part of the pool's welcome). */
void server_record_param(struct server *s, const unsigned char *body, size_t len, bool login);
/* The server owes nothing to the client that left: reset it or make it idle. */
void server_finish_release(struct server *s, bool run_reset);
/* Handle what is in the receive buffer for the current state. */
void server_process(struct server *s);
/* A cancel request forwarded for this server has been handled by the backend. */
void server_cancel_finished(struct server *s);
/* The login failed: tell the waiting clients (SQLSTATE, message) and close the server. */
void server_fail_loginf(struct server *s, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Wipe and free the token fetched for this server's login. */
void server_drop_token(struct server *s);
/* Answer an AuthenticationRequest (body of an 'R' message) during the login. */
void server_login_auth(struct server *s, const unsigned char *body, size_t len);
#endif
