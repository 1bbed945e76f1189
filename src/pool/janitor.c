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

static struct event *janitor_ev;
static usec_t last_run;
static void (*hooks[JANITOR_MAX_HOOKS])(struct worker *w);
static unsigned nhooks;

bool janitor_hook_add(void (*fn)(struct worker *w))
{
	if (nhooks == JANITOR_MAX_HOOKS)
		return false;
	hooks[nhooks++] = fn;
	return true;
}

/* After a storm (thousands of connections that came and went) glibc keeps
 * the freed heap mapped; hand it back to the system once the crowd is gone,
 * at most once a second. */
#define TRIM_AFTER_DROP 256

static void return_memory(struct worker *w, usec_t now)
{
	static unsigned high;
	static usec_t last;
	unsigned n = w->nclients;
	if (n > high)
		high = n;
	if (high - n < TRIM_AFTER_DROP || now - last < USEC_PER_SEC)
		return;
	malloc_trim(0);
	high = n;
	last = now;
}

void janitor_run(struct worker *w)
{
	usec_t now = time_mono_usec();
	last_run = now;
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
	for (unsigned i = 0; i < nhooks; i++)
		hooks[i](w);
	shutdown_check(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	janitor_run(arg);
}

void janitor_start(struct worker *w)
{
	struct timeval tv = { 0, JANITOR_INTERVAL_USEC };
	janitor_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
	event_add(janitor_ev, &tv);
}

usec_t janitor_last_run(void)
{
	return last_run;
}

void janitor_stop(void)
{
	if (janitor_ev) {
		event_free(janitor_ev);
		janitor_ev = NULL;
	}
}
