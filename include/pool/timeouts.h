/* Client and server timeouts with PgBouncer's precedence: the pool's
 * [users] entry, then (for query_wait_timeout) its [databases] entry, then
 * the global value. Clients time out on their deadlines (client_timer.c)
 * from the pool's resolved values; servers in the janitor's pass. */
#ifndef TB_POOL_TIMEOUTS_H
#define TB_POOL_TIMEOUTS_H
#include "core/mustcheck.h"
#include "core/util.h"
#include "pool/pool-t.h"

/* Resolve p->to again (the janitor's pass, a new pool, a reload). */
void timeouts_refresh(struct pool *p);
/* A waiting client past query_wait_notify gets its one NOTICE of this wait.
 * False when sending it closed the client. */
TB_MUSTCHECK bool timeouts_notify_waiting(struct client *c, usec_t now);
/* Servers carrying a client: query_timeout, idle_transaction_timeout,
 * transaction_timeout, and server_fast_close in session mode. */
void timeouts_expire_active(struct pool *p, usec_t now);
#endif
