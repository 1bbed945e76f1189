/* Periodic maintenance: timeouts, lifetimes, idle trimming, min_pool_size,
 * retired databases, and the end of a graceful shutdown. */
#ifndef TB_POOL_JANITOR_H
#define TB_POOL_JANITOR_H
#include <event2/event.h>
#include <stdbool.h>

#include "core/util.h"

struct worker;

void janitor_start(struct worker *w);
void janitor_stop(void);
/* One pass now (also called by the timer). */
void janitor_run(struct worker *w);
/* Work of modules above the pool (the console's waiting commands) that runs
 * on every pass, after the pools' maintenance and before the shutdown check;
 * registered by main.c. False when JANITOR_MAX_HOOKS are taken. */
#define JANITOR_MAX_HOOKS 4
bool janitor_hook_add(void (*fn)(struct worker *w));
/* Monotonic time of the last pass, 0 before the first: /healthz's sign of life. */
usec_t janitor_last_run(void);
#endif
