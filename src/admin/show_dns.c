/* SHOW DNS_HOSTS with PgBouncer's columns: the host names in the pooler's
 * lookup cache (see net/dnscache.h), seconds until each is looked up again,
 * and its address (empty for a remembered failure). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include "admin/admin_priv.h"
#include "admin/resultset.h"
#include "net/dnscache.h"

static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	out[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
			  (socklen_t)len);
}

static void host_row(const char *host, int port, usec_t ttl_left, const struct sockaddr *addr, void *arg)
{
	struct resultset *rs = arg;
	char name[DNSCACHE_HOST_MAX + 8], ip[INET6_ADDRSTRLEN];
	/* One entry per (host, port): the port tells two of one name apart. */
	snprintf(name, sizeof(name), "%s:%d", host, port);
	addr_text(addr, ip, sizeof(ip));
	resultset_row_begin(rs);
	resultset_text(rs, name);
	resultset_int(rs, (ttl_left + USEC_PER_SEC - 1) / USEC_PER_SEC);
	resultset_text(rs, ip);
	resultset_row_end(rs);
}

enum admin_status show_dns_hosts(struct admin_req *r)
{
	static const struct resultset_col cols[] = {
		{ "hostname", RS_TEXT },
		{ "ttl", RS_INT8 },
		{ "addrs", RS_TEXT },
	};
	struct resultset rs;
	resultset_begin(&rs, r->out, cols, sizeof(cols) / sizeof(cols[0]));
	dnscache_each(time_mono_usec(), host_row, &rs);
	resultset_complete(r->out, "SHOW");
	return ADMIN_DONE;
}
