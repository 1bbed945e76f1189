/* Parked cancel requests. PgBouncer queues a cancel for a client that is
 * still waiting for a server instead of dropping it; here the cancel
 * connection stays open on a list of its own (at most one per target) and
 * is forwarded once the target's request runs on a server, so the cancel
 * reaches exactly that request and nothing else. */
#include "pool/cancel_wait.h"

#include "core/log.h"
#include "pool/client.h"
#include "pool/client_rare.h"
#include "pool/runtime.h"
#include "pool/cancel.h"
#include "pool/server.h"

/* The request is on the server once the parameter sync is absorbed and an
 * answer is owed; before that a cancel would hit the pooler's own SET. */
static struct server *running_server(const struct client *target)
{
	struct server *s = target->state == CL_ACTIVE ? target->server : NULL;
	return s && s->swallow == 0 && respq_owed_rfq(&s->respq) > 0 ? s : NULL;
}

bool cancel_wait_needed(const struct client *target)
{
	if (target->state == CL_WAITING)
		return true;
	return target->state == CL_ACTIVE && target->server && target->server->swallow > 0;
}

bool cancel_wait_park(struct client *req, struct client *target)
{
	struct worker *w = client_worker(req);
	if (client_cancel_parked(target))
		return false;
	client_rare_get(target)->cancel_parked = req;
	client_rare_get(req)->cancel_target = target;
	sock_set_read(&req->sock, false);
	/* cancel_wait_timeout, not client_login_timeout, bounds its wait now. */
	deadline_disarm(&w->client_timers, &req->timer);
	list_move_tail(&w->parked_cancels, &req->node);
	log_debug("C-%llu: cancel request for C-%llu waits for its server (cancel_wait_timeout)",
		  (unsigned long long)req->id, (unsigned long long)target->id);
	return true;
}

static void unpark(struct client *req)
{
	struct client *target = client_cancel_target(req);
	if (target) {
		target->rare->cancel_parked = NULL;
		client_rare_trim(target);
		req->rare->cancel_target = NULL;
		client_rare_trim(req);
	}
}

void cancel_wait_try(struct client *target)
{
	struct client *req = client_cancel_parked(target);
	struct server *s = req ? running_server(target) : NULL;
	if (!s)
		return;
	unpark(req);
	log_debug("C-%llu: waited cancel request for C-%llu forwarded", (unsigned long long)req->id,
		  (unsigned long long)target->id);
	server_forward_cancel_for(s, sock_detach(&req->sock));
	client_close(req, NULL, "cancel request handled");
}

void cancel_wait_closing(struct client *c)
{
	if (client_cancel_target(c))
		unpark(c);
	struct client *req = client_cancel_parked(c);
	if (req) {
		unpark(req);
		client_close(req, NULL, "cancel request: its client has gone");
	}
}

int cancel_wait_count(const struct pool *p)
{
	struct worker *w = p->w;
	int n = 0;
	const struct list_node *it;
	for (it = w->parked_cancels.next; it != &w->parked_cancels; it = it->next)
		if (client_cancel_target(list_entry(it, struct client, node))->pool == p)
			n++;
	return n;
}

void cancel_wait_run(struct worker *w, usec_t now)
{
	usec_t limit = w->cfg->cancel_wait_timeout;
	struct list_node *n, *t;
	list_for_each_safe(n, t, &w->parked_cancels) {
		struct client *req = list_entry(n, struct client, node);
		struct client *target = client_cancel_target(req);
		cancel_wait_try(target);
		if (client_cancel_target(req) != target)
			continue; /* forwarded */
		if (!cancel_wait_needed(target)) {
			unpark(req);
			client_close(req, NULL, "cancel request for no active query");
		} else if (limit > 0 && now - req->connect_at >= limit) {
			unpark(req);
			client_close(req, NULL,
				     "cancel_wait_timeout: no server for the cancelled client in time");
		}
	}
}
