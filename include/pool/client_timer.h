/* A client's timeouts on the clients' deadline wheel (worker.client_timers):
 * one deadline per client, armed for what its state can time out on:
 * client_login_timeout until it is logged in, query_wait_timeout while it
 * waits for a server, and while idle the release of its packet buffers
 * and client_idle_timeout. A client linked to a server has none armed.
 * Nothing walks the clients: a janitor pass costs the deadlines due. */
#ifndef TB_POOL_CLIENT_TIMER_H
#define TB_POOL_CLIENT_TIMER_H
#include "pool/deadline.h"
#include "pool/pool-t.h"

struct worker;

/* An idle client's packet buffers go back to malloc after this long, so an
 * idle connection costs a few hundred bytes and a busy one does not
 * reallocate per transaction. */
#define CLIENT_TRIM_AFTER_USEC USEC_PER_SEC

/* The client changed state (state and state_since are set): arm, move or disarm. */
void client_timer_update(struct client *c);
/* The wheel's callback. */
void client_timer_fire(struct deadline_wheel *w, struct deadline *d, usec_t now);
/* The timeouts may have changed (reload): re-arm every client. */
void client_timers_reconfigure(struct worker *w);
#endif
