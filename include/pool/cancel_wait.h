/* cancel_wait_timeout (PgBouncer 1.19+): a cancel request for a client
 * that has not got its server yet waits until the client's request runs
 * on one, then is forwarded; it gives up after cancel_wait_timeout. */
#ifndef TB_POOL_CANCEL_WAIT_H
#define TB_POOL_CANCEL_WAIT_H
#include <stdbool.h>

#include "core/util.h"
#include "pool/pool-t.h"

struct worker;

/* Whether a cancel for target must wait (its request is not on a server yet). */
bool cancel_wait_needed(const struct client *target);
/* Keep the cancel connection req open for target; false: target already
 * has one waiting, and req should be closed. */
bool cancel_wait_park(struct client *req, struct client *target);
/* target's request may now be running on its server: forward if so. */
void cancel_wait_try(struct client *target);
/* A client closes: release what it parked or what was parked for it. */
void cancel_wait_closing(struct client *c);
/* Cancel requests parked for clients of p (SHOW POOLS cl_waiting_cancel_req);
 * walks the parked requests, which are few. */
int cancel_wait_count(const struct pool *p);
/* The janitor: forward, drop or time out the parked cancels. */
void cancel_wait_run(struct worker *w, usec_t now);
#endif
