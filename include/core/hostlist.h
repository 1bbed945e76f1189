/* [databases] host lists, as PgBouncer 1.24: host=a,b,c, each entry with an
 * optional :port ([v6]:port for IPv6 literals), and load_balance_hosts
 * choosing round-robin (each new connection takes the next entry) or
 * disable (stay on an entry until a connection to it fails). Pure text. */
#ifndef TB_CORE_HOSTLIST_H
#define TB_CORE_HOSTLIST_H
#include <stdbool.h>
#include <stddef.h>

/* Longest single entry. */
#define HOSTLIST_MAX_HOST 256

/* A valid host value: one entry (a name, an IP address, or a directory
 * starting with /) or a list of names and addresses. */
bool hostlist_valid(const char *value);
/* Number of entries (1 for a single host, 0 for NULL). */
size_t hostlist_count(const char *value);
/* Entry i (modulo the count) into host, its port or default_port. False if
 * value is NULL or the entry does not fit. */
bool hostlist_pick(const char *value, size_t i, int default_port, char *host, size_t hostlen, int *port);
#endif
