/* auth_user / auth_query / auth_dbname: a client whose user is not in
 * auth_file is looked up by running auth_query (the user name as $1) on a
 * server of the lookup alias logged in as auth_user. Concurrent logins of
 * the same user share one query (single flight); nothing is cached once the
 * waiting logins have their answer. */
#ifndef TB_POOL_AUTHQ_H
#define TB_POOL_AUTHQ_H
#include <stdbool.h>
#include <stddef.h>

#include "core/list.h"
#include "pool/pool-t.h"

struct auth_lookup;
struct userlist_entry;

/* A login waiting for a lookup; embedded in the client's auth state. */
struct authq_waiter {
	struct list_node node;      /* auth_lookup.waiters */
	struct auth_lookup *lookup; /* NULL when not waiting */
	struct client *client;
};

/* Whether auth_query applies to this client (auth_user set for its alias). */
bool authq_enabled(const struct client *c);
/* Join (or start) the lookup of c->user; the answer comes through
 * client_auth_lookup_done. False (with why) if it cannot be started. */
bool authq_start(struct client *c, struct authq_waiter *aw, char *why, size_t whylen);
/* The client gave up (closed) before the answer. */
void authq_cancel(struct authq_waiter *aw);
/* Pool dispatch: give an idle server to a waiting lookup; false if none waits. */
bool authq_take_server(struct pool *p, struct server *s);
/* The pool's server logins are failing: its lookups fail with the error. */
void authq_pool_failed(struct pool *p);
/* A message from a server running a lookup (SV_CHECK with s->authq set). */
void authq_server_message(struct server *s, char type, const unsigned char *body, size_t len);
/* The server running a lookup is closing. */
void authq_server_lost(struct server *s, const char *why);
#endif
