#include "net/resolve.h"

#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "net/dnscache.h"

struct resolve_req {
	struct evdns_getaddrinfo_request *req;
	resolve_cb cb;
	void *arg;
	bool cancelled;
	bool done;
	int port;
	char host[];
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
			dnscache_store(r->host, r->port, pick->ai_addr, (socklen_t)pick->ai_addrlen, NULL,
				       time_mono_usec());
			r->cb(pick->ai_addr, (socklen_t)pick->ai_addrlen, NULL, r->arg);
		} else {
			char msg[DNSCACHE_ERR_MAX];
			snprintf(msg, sizeof(msg), "could not resolve host: %s", evutil_gai_strerror(result));
			/* A cancelled lookup says nothing about the name: not cached. */
			if (result != EVUTIL_EAI_CANCEL)
				dnscache_store(r->host, r->port, NULL, 0, msg, time_mono_usec());
			r->cb(NULL, 0, msg, r->arg);
		}
	}
	if (res)
		evutil_freeaddrinfo(res);
	r->done = true;
	free(r);
}

struct resolve_req *resolve_start(struct evdns_base *dns, const char *host, int port, resolve_cb cb, void *arg)
{
	struct dnscache_hit hit;
	if (dnscache_lookup(host, port, time_mono_usec(), &hit)) {
		if (hit.ok)
			cb((const struct sockaddr *)&hit.addr, hit.addrlen, NULL, arg);
		else
			cb(NULL, 0, hit.errmsg, arg);
		return NULL;
	}
	size_t hl = strlen(host) + 1;
	struct resolve_req *r = xcalloc(1, sizeof(*r) + hl);
	memcpy(r->host, host, hl);
	r->port = port;
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

struct evdns_base *resolve_base_new(struct event_base *base, const char *resolv_conf, char *err, size_t errlen)
{
	if (resolv_conf && *resolv_conf) {
		struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (!dns) {
			snprintf(err, errlen, "cannot create the DNS resolver");
			return NULL;
		}
		/* Also reads /etc/hosts, as the default configuration does. */
		int rc = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, resolv_conf);
		if (rc != 0 && rc != 6) { /* 6: no nameserver line, 127.0.0.1 is used */
			snprintf(err, errlen, "resolv_conf: cannot read \"%s\" (evdns error %d)", resolv_conf,
				 rc);
			evdns_base_free(dns, 0);
			return NULL;
		}
		return dns;
	}
	struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
							      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!dns) {
		/* No usable resolv.conf: still resolve names from /etc/hosts. */
		dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (dns)
			evdns_base_load_hosts(dns, NULL);
	}
	if (!dns)
		snprintf(err, errlen, "cannot create the DNS resolver");
	return dns;
}
