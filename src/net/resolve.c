#include "net/resolve.h"

#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct resolve_req {
	struct evdns_getaddrinfo_request *req;
	resolve_cb cb;
	void *arg;
	bool cancelled;
	bool done;
};

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_req *r = arg;
	r->req = NULL;
	if (!r->cancelled) {
		if (result == 0 && res) {
			/* Prefer IPv4: "localhost" often lists ::1 first while servers
			 * listen on 127.0.0.1 only. */
			struct evutil_addrinfo *pick = res;
			for (struct evutil_addrinfo *a = res; a; a = a->ai_next)
				if (a->ai_family == AF_INET) {
					pick = a;
					break;
				}
			r->cb(pick->ai_addr, (socklen_t)pick->ai_addrlen, NULL, r->arg);
		} else {
			char msg[160];
			snprintf(msg, sizeof(msg), "could not resolve host: %s", evutil_gai_strerror(result));
			r->cb(NULL, 0, msg, r->arg);
		}
	}
	if (res)
		evutil_freeaddrinfo(res);
	r->done = true;
	free(r);
}

struct resolve_req *resolve_start(struct evdns_base *dns, const char *host, int port,
				  resolve_cb cb, void *arg)
{
	struct resolve_req *r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->arg = arg;
	struct evutil_addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	/* If the answer is immediate, on_resolved has already freed r. */
	struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(dns, host, portstr, &hints, on_resolved, r);
	if (!req)
		return NULL;
	r->req = req;
	return r;
}

void resolve_cancel(struct resolve_req *r)
{
	if (!r)
		return;
	r->cancelled = true;
	if (r->req)
		evdns_getaddrinfo_cancel(r->req);
}
