/* Periodic maintenance: timeouts, lifetimes, idle trimming, min_pool_size,
 * retired databases, and the end of a graceful shutdown. */
#ifndef TB_POOL_JANITOR_H
#define TB_POOL_JANITOR_H
#include <event2/event.h>
#include <stdbool.h>

#include "core/util.h"

struct worker;

void janitor_start(struct worker *w);
void janitor_stop(struct worker *w);
/* One pass now (also called by the timer). */
void janitor_run(struct worker *w);
/* Work of modules above the pool (the console's waiting commands) that runs
 * on every pass, after the pools' maintenance and before the shutdown check;
 * registered by main.c. False when JANITOR_MAX_HOOKS are taken. */
#define JANITOR_MAX_HOOKS 4

/* The maintenance timer of one loop (a field of struct worker). */
struct janitor_state {
	struct event *ev;
	usec_t last_run;
	void (*hooks[JANITOR_MAX_HOOKS])(struct worker *w);
	unsigned nhooks;
	unsigned trim_high; /* most clients since the heap was last trimmed */
	usec_t trim_last;   /* when it was */
};
bool janitor_hook_add(struct worker *w, void (*fn)(struct worker *w));
/* Monotonic time of the last pass, 0 before the first: /healthz's sign of life. */
usec_t janitor_last_run(struct worker *w);
#endif
