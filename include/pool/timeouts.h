/* Client and server timeouts with PgBouncer 1.25's precedence. A client's
 * query_wait_timeout: its login user's [users] value, else its database's,
 * else the global one; client_idle_timeout: a positive [users] value of the
 * login user, else the global one. A server's query_timeout,
 * idle_transaction_timeout and transaction_timeout: a positive [users]
 * value of the pool's user, else the global one. Clients time out on their
 * deadlines (client_timer.c) from values resolved at login and reload;
 * servers in the janitor's pass. */
#ifndef TB_POOL_TIMEOUTS_H
#define TB_POOL_TIMEOUTS_H
#include "core/mustcheck.h"
#include "core/util.h"
#include "pool/pool-t.h"

/* Resolve p->to again (the janitor's pass, a new pool). */
void timeouts_refresh(struct pool *p);
/* Resolve a logged-in client's own timeouts (login, reload). */
void timeouts_client_refresh(struct client *c);
/* A waiting client past query_wait_notify gets its one NOTICE of this wait.
 * False when sending it closed the client. */
TB_MUSTCHECK bool timeouts_notify_waiting(struct client *c);
/* Servers carrying a client: query_timeout, idle_transaction_timeout,
 * transaction_timeout, and server_fast_close in session mode. */
void timeouts_expire_active(struct pool *p, usec_t now);
#endif
