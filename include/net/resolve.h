/* Non-blocking host name resolution on libevent's evdns. */
#ifndef TB_NET_RESOLVE_H
#define TB_NET_RESOLVE_H
#include <event2/dns.h>
#include <stdbool.h>
#include <sys/socket.h>

struct resolve_req;

/* On success addr is the first usable address. errmsg is set on failure.
 * The callback is never called after resolve_cancel. */
typedef void (*resolve_cb)(const struct sockaddr *addr, socklen_t addrlen, const char *errmsg, void *arg);

/* May call cb before returning (numeric hosts, /etc/hosts); returns NULL then. */
struct resolve_req *resolve_start(struct evdns_base *dns, const char *host, int port, resolve_cb cb,
				  void *arg);
void resolve_cancel(struct resolve_req *req);
/* The resolver: resolv_conf (nameservers, search, options; /etc/hosts too)
 * when set, else the system's /etc/resolv.conf. NULL and err on failure. */
struct evdns_base *resolve_base_new(struct event_base *base, const char *resolv_conf, char *err,
				    size_t errlen);
#endif
