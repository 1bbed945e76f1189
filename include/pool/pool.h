/* Pools: matching clients to servers, the wait queue, limits, and what a
 * server does when it becomes usable or goes away. */
#ifndef TB_POOL_POOL_H
#define TB_POOL_POOL_H
#include <stdbool.h>

#include "pool/pool-t.h"

/* The pool a client of this database and user uses; NULL if no upstream
 * credentials can be had for it. */
/* "none", "physical" or "logical": the replication column of SHOW CLIENTS/SERVERS. */
const char *pool_replication_name(enum replication_mode repl);
/* The pool of (database, upstream user); replication clients get a pool of
 * their own kind, whose servers are never shared or reused. */
struct pool *pool_for_client(struct database *db, const char *client_user, enum replication_mode repl);
/* A client waits for the pool's first login to learn the server's parameters. */
void pool_need_welcome(struct pool *p, struct client *c);
/* A logged-in client queued in waiting_clients needs a server. */
void pool_client_wants_server(struct client *c);
/* A server finished logging in: capture the welcome, finish waiting logins. */
void pool_server_logged_in(struct server *s);
/* A server is ready for a client (after login, reset, check or release). */
void pool_server_usable(struct server *s);
/* A server login failed; restarting: it looked like a server restart. */
void pool_record_failure(struct pool *p, const char *sqlstate, const char *msg, bool restarting);
/* With no server left to wait for, waiting clients get the last error;
 * after a restart-like failure only those that have waited longer than
 * server_connect_timeout + server_login_retry (one more login). */
void pool_fail_waiters(struct pool *p);
/* Accounting when a server is created (server_new) and when it closes;
 * dispatch after a close is deferred to the loop pass end. */
void pool_server_added(struct server *s);
void pool_server_gone(struct server *s, enum server_state was);
/* Every change of a client's state goes through here, so the pool's
 * counters follow its lists. */
void pool_client_state_changed(struct client *c, enum client_state from, enum client_state to);
/* Assert builds: abort if a counter disagrees with its list. */
void pool_check_counts(const struct pool *p);
/* Match waiting clients with idle servers and open servers within limits. */
void pool_dispatch(struct pool *p);
/* Ask for a dispatch at the end of this loop pass. */
void pool_kick(struct pool *p);
/* Periodic work: timeouts, lifetimes, idle trimming, min_pool_size. */
void pool_maintain(struct pool *p, usec_t now);
int pool_size_limit(const struct pool *p);
bool pool_is_empty(const struct pool *p);
void pool_free(struct pool *p);
struct scram_keys;
/* A client of this user logged in with SCRAM against an auth_file verifier:
 * with no password for the upstream user, its keys log servers in. */
void pool_take_scram_keys(struct pool *p, const char *client_user, const struct scram_keys *keys);
/* Refresh the upstream secret from the current config and auth_file. */
void pool_refresh_password(struct pool *p);
struct token_target;
/* What a pool of this database and upstream user asks the token cache for. */
void pool_token_target(const struct database *db, const char *user, struct token_target *t);
/* Token-backed aliases: look up the cache entry this pool's logins use. */
void pool_bind_token(struct pool *p);
#endif
