#include "pool/janitor.h"

#include <malloc.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/util.h"
#include "pool/cancel_wait.h"
#include "pool/client.h"
#include "pool/idle_drop.h"
#include "pool/deadline.h"
#include "pool/pool.h"
#include "pool/runtime.h"
#include "pool/shutdown.h"

/* Four passes a second: timeouts are honoured to within 250 ms without a
 * libevent event per connection (each costs 128 bytes); the clients'
 * timeouts are deadlines on a wheel, so a pass costs the servers and the
 * pools, and only the clients whose deadline is due. */
#define JANITOR_INTERVAL_USEC DEADLINE_SLOT_USEC

bool janitor_hook_add(struct worker *w, void (*fn)(struct worker *w))
{
	if (w->janitor.nhooks == JANITOR_MAX_HOOKS)
		return false;
	w->janitor.hooks[w->janitor.nhooks++] = fn;
	return true;
}

/* After a storm (thousands of connections that came and went) glibc keeps
 * the freed heap mapped; hand it back to the system once the crowd is gone,
 * at most once a second. */
#define TRIM_AFTER_DROP 256

static void return_memory(struct worker *w, usec_t now)
{
	unsigned n = w->nclients;
	if (n > w->janitor.trim_high)
		w->janitor.trim_high = n;
	if (w->janitor.trim_high - n < TRIM_AFTER_DROP || now - w->janitor.trim_last < USEC_PER_SEC)
		return;
	malloc_trim(0);
	w->janitor.trim_high = n;
	w->janitor.trim_last = now;
}

void janitor_run(struct worker *w)
{
	usec_t now = time_mono_usec();
	w->janitor.last_run = now;
	idle_drop_run(w, now);
	deadline_run(&w->client_timers, now);
	cancel_wait_run(w, now);
	return_memory(w, now);
	struct list_node *d, *dt;
	list_for_each_safe(d, dt, &w->databases) {
		struct database *db = list_entry(d, struct database, node);
		struct list_node *n, *t;
		list_for_each_safe(n, t, &db->pools)
			pool_maintain(list_entry(n, struct pool, node), now);
		runtime_database_maybe_free(db);
	}
	for (unsigned i = 0; i < w->janitor.nhooks; i++)
		w->janitor.hooks[i](w);
	shutdown_check(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	janitor_run(arg);
}

void janitor_start(struct worker *w)
{
	struct timeval tv = { 0, JANITOR_INTERVAL_USEC };
	w->janitor.ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
	event_add(w->janitor.ev, &tv);
}

usec_t janitor_last_run(struct worker *w)
{
	return w->janitor.last_run;
}

void janitor_stop(struct worker *w)
{
	if (w->janitor.ev) {
		event_free(w->janitor.ev);
		w->janitor.ev = NULL;
	}
}
