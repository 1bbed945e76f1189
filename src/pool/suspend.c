/* SUSPEND walks every client and server once when it starts and once at
 * RESUME; while it lasts, sockets opened meanwhile (server logins for
 * clients that were already waiting) run normally, as in PgBouncer, which
 * suspends only the sockets it has when the command arrives. */
#include "pool/pool_iter.h"
#include "pool/suspend.h"

#include "core/log.h"
#include "net/listener.h"
#include "pool/pool-t.h"
#include "pool/runtime.h"

typedef bool (*sock_visit)(struct sock *s, void *arg);

/* Visit every non-console client and every server; stop when visit says so. */
static bool each_sock(struct worker *w, sock_visit visit, void *arg)
{
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->clients) {
		struct client *c = list_entry(n, struct client, all_node);
		if (!c->is_admin && c->state != CL_CLOSING && !visit(&c->sock, arg))
			return false;
	}
	for_each_server(w, s) if (!visit(&s->sock, arg)) return false;
	return true;
}

static bool hold_one(struct sock *s, void *arg)
{
	const bool *on = arg;
	if (s->fd >= 0 && s->held != *on)
		sock_hold(s, *on);
	return true;
}

static bool is_flushed(struct sock *s, void *arg)
{
	(void)arg;
	return !s->held || !sock_has_output(s);
}

void suspend_all(struct worker *w, bool on)
{
	if (w->suspended == on)
		return;
	w->suspended = on;
	log_info("%s", on ? "SUSPEND: flushing and no longer reading any client or server"
			  : "RESUME: reading clients and servers again");
	listeners_hold(on);
	each_sock(w, hold_one, &on);
}

bool suspend_flushed(struct worker *w)
{
	return each_sock(w, is_flushed, NULL);
}
