/* Client and server timeouts applied by the janitor's pass over a pool,
 * with PgBouncer's precedence: the pool's [users] entry, then (for
 * query_wait_timeout) its [databases] entry, then the global value. */
#ifndef TB_POOL_TIMEOUTS_H
#define TB_POOL_TIMEOUTS_H
#include "core/util.h"
#include "pool/pool-t.h"

/* The timeouts that apply to one pool's clients and servers; 0: off. */
struct pool_timeouts {
	usec_t query;          /* query_timeout */
	usec_t query_wait;     /* query_wait_timeout */
	usec_t idle_xact;      /* idle_transaction_timeout */
	usec_t xact;           /* transaction_timeout */
	usec_t client_idle;    /* client_idle_timeout */
};

void timeouts_of_pool(const struct pool *p, struct pool_timeouts *out);
/* Waiting clients: query_wait_timeout, and query_wait_notify's one NOTICE per wait. */
void timeouts_expire_waiting(struct pool *p, const struct pool_timeouts *t, usec_t now);
/* Logged-in clients without a server: client_idle_timeout. */
void timeouts_expire_idle(struct pool *p, const struct pool_timeouts *t, usec_t now);
/* Servers carrying a client: query_timeout, idle_transaction_timeout,
 * transaction_timeout, and server_fast_close in session mode. */
void timeouts_expire_active(struct pool *p, const struct pool_timeouts *t, usec_t now);
#endif
