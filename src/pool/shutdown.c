/* Shutdown modes. WAIT_FOR_CLIENTS lets every connected client carry on
 * until it disconnects, which is what a rolling restart needs: the new
 * process takes new connections while the old one drains. WAIT_FOR_SERVERS
 * holds every pool (as PAUSE), lets transactions and session clients finish,
 * lets idle and waiting clients go, and exits once no server is linked. */
#include "pool/pool_iter.h"
#include "pool/shutdown.h"

#include "core/log.h"
#include "core/service.h"
#include "net/listener.h"
#include "pool/janitor.h"
#include "pool/pool-t.h"
#include "pool/suspend.h"

const char *shutdown_mode_name(enum shutdown_mode mode)
{
	switch (mode) {
	case SHUTDOWN_WAIT_FOR_SERVERS:
		return "WAIT_FOR_SERVERS";
	case SHUTDOWN_WAIT_FOR_CLIENTS:
		return "WAIT_FOR_CLIENTS";
	case SHUTDOWN_IMMEDIATE:
		return "immediate";
	case SHUTDOWN_NONE:
		break;
	}
	return "none";
}

static void pause_all_databases(struct worker *w)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->databases)
		list_entry(n, struct database, node)->paused = true;
}

static bool servers_linked(struct worker *w)
{
	for_each_pool(w, p) if (!list_empty(&p->active_servers)) return true;
	return false;
}

void shutdown_begin(struct worker *w, enum shutdown_mode mode)
{
	if (mode == SHUTDOWN_NONE)
		return;
	bool first = !w->shutting_down;
	w->shutting_down = true;
	w->shutdown_mode = mode;
	if (first)
		service_stopping(); /* a console SHUTDOWN as much as a signal */
	if (mode == SHUTDOWN_IMMEDIATE) {
		log_info("shutting down now");
		event_base_loopbreak(w->base);
		return;
	}
	log_info("shutting down (%s): no new connections except to the console over the Unix socket; "
		 "exiting when %s",
		 shutdown_mode_name(mode),
		 mode == SHUTDOWN_WAIT_FOR_CLIENTS ? "every client has left" : "no server is in use");
	if (first) {
		listeners_close_tcp();
		w->admit_until_id = w->next_id;
	}
	suspend_all(w, false); /* held sockets would never drain */
	if (mode == SHUTDOWN_WAIT_FOR_SERVERS)
		pause_all_databases(w);
	janitor_run(w);
}

void shutdown_on_signal(struct worker *w, enum shutdown_mode mode, const char *signame)
{
	if (w->shutting_down && mode != SHUTDOWN_IMMEDIATE) {
		log_info("%s while shutting down (%s): exiting now", signame,
			 shutdown_mode_name(w->shutdown_mode));
		mode = SHUTDOWN_IMMEDIATE;
	} else if (w->suspended && mode != SHUTDOWN_IMMEDIATE) {
		/* Held sockets would never drain: as PgBouncer, go down now. */
		log_info("%s while suspended: exiting now", signame);
		mode = SHUTDOWN_IMMEDIATE;
	} else {
		log_info("%s received", signame);
	}
	shutdown_begin(w, mode);
}

void shutdown_check(struct worker *w)
{
	if (w->shutdown_mode == SHUTDOWN_WAIT_FOR_SERVERS && !servers_linked(w)) {
		log_info("shutdown WAIT_FOR_SERVERS: no server is in use any more; exiting");
		w->shutdown_mode = SHUTDOWN_IMMEDIATE;
		event_base_loopbreak(w->base);
	} else if (w->shutdown_mode == SHUTDOWN_WAIT_FOR_CLIENTS && w->nclients == 0) {
		log_info("shutdown WAIT_FOR_CLIENTS: all clients are gone; exiting");
		w->shutdown_mode = SHUTDOWN_IMMEDIATE;
		event_base_loopbreak(w->base);
	}
}
