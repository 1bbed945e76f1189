/* Freeing what nobody uses: pools after pool_idle_timeout, databases made
 * from the "*" entry after autodb_idle_timeout (PgBouncer), with their
 * statistics. */
#ifndef TB_POOL_IDLE_DROP_H
#define TB_POOL_IDLE_DROP_H
#include "core/util.h"

struct worker;

/* Called by the janitor before anything else of its pass. */
void idle_drop_run(struct worker *w, usec_t now);
#endif
