/* One event loop's state: everything the pooler changes while it serves is
 * reached through a struct worker that is passed (servers, pools and
 * databases carry theirs in 'w', a client finds it through its socket with
 * client_worker(); event callbacks get it through their argument), never
 * through a global, so that a later step can run one loop per core. main.c
 * creates the one worker of today's process.
 *
 * Process-wide by design, and why:
 *   - main.c's instance itself, reached there by the signal handlers (a
 *     signal is delivered to the process, not to a loop), the listener's
 *     accept callback and the command-line paths (token, check);
 *   - the token engine's cache (token/token.c): one token per alias and
 *     identity serves every loop; fetching it per loop would multiply the
 *     calls to the cloud (doc/architecture.md, "Towards one loop per core");
 *   - the mock SCRAM key for unknown users (pool/client_auth.c): a random
 *     key made once, so that a user's fake salt is the same on every loop;
 *   - the log sink (core/log.c): one file or syslog for the process;
 *   - `tokenbouncer check`'s report (admin/check.c): a one-shot command, not
 *     a loop.
 * Not moved yet (one per process today; each would become a field here):
 * the listening sockets (net/listener.c; one SO_REUSEPORT set per loop),
 * the DNS answer cache (net/dnscache.c) and the metrics HTTP server
 * (admin/metrics.c). */
#ifndef TB_POOL_WORKER_H
#define TB_POOL_WORKER_H
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config-t.h"
#include "core/list.h"
#include "core/strmap.h"
#include "net/linger.h"
#include "pool/cancel_index.h"
#include "pool/climit.h"
#include "pool/deadline.h"
#include "pool/janitor.h"
#include "pool/prepared.h"
#include "pool/pool-t.h"

struct config_ref;
struct stats_ring;
struct admin_state;
struct userlist;
struct hba;

/* How the pooler stops (PgBouncer's SHUTDOWN variants). */
enum shutdown_mode {
	SHUTDOWN_NONE = 0,
	SHUTDOWN_WAIT_FOR_SERVERS, /* SIGINT: transactions finish, idle clients are let go */
	SHUTDOWN_WAIT_FOR_CLIENTS, /* SIGTERM: clients keep working until they leave */
	SHUTDOWN_IMMEDIATE,        /* SIGQUIT, SHUTDOWN */
};

struct worker {
	struct event_base *base;
	struct evdns_base *dns;
	struct config_ref *cref;     /* current */
	const struct tb_config *cfg; /* == cref->cfg */
	struct userlist *users;
	struct hba *hba;
	SSL_CTX *client_tls;
	SSL_CTX *server_tls;

	struct list_node databases;
	struct strmap db_by_name;            /* databases not retired, by name */
	struct strmap user_loads;            /* struct user_load by user name */
	struct list_node clients;            /* every client, for counts and the console */
	struct cancel_index cancel_keys;     /* logged-in clients by cancel key */
	struct deadline_wheel client_timers; /* the clients' timeouts */
	struct list_node login_clients;      /* CL_STARTUP, CL_TLS, CL_AUTH */
	struct list_node free_clients;       /* closed; freed at the end of the loop pass */
	struct list_node free_servers;
	struct list_node dirty_pools;
	struct event *free_ev;
	struct database *admin_db; /* the console's virtual database (admin_db_store) */
	struct db_alias admin_alias;
	struct database admin_db_store;
	int nclients;
	uint64_t next_id;
	bool shutting_down; /* a shutdown is under way: no new clients */
	enum shutdown_mode shutdown_mode;
	uint64_t admit_until_id; /* shutdown: clients accepted before it may still log in */
	bool suspended;          /* SUSPEND: no socket but the console's is read */

	struct varcache_state vars;  /* extra parameter names, interned values */
	struct sock_loop socks;      /* last socket error, spare input buffers */
	struct linger_set lingering; /* closes waiting for the peer's EOF (net/linger.c) */
	struct ps_cache stmts;       /* prepared statements by text (pool/prepared.c) */
	/* The console's state and its statistics ring belong to the admin layer,
	 * which the pool may not include: main.c attaches them (admin_attach),
	 * and only admin/ reads them. */
	struct stats_ring *stats;    /* SHOW STATS averages, log_stats */
	struct admin_state *admin;   /* console sessions */
	struct climit_state climits; /* client counts per alias and user */
	struct janitor_state janitor;
	struct list_node cancels;        /* cancels forwarded to servers, in flight (pool/cancel.c) */
	struct list_node parked_cancels; /* cancels waiting for their target's server */
	struct strmap auth_lookups;      /* auth_query lookups in flight, single-flight index */
	struct list_node peer_fwds;      /* cancels forwarded to peers (pool/peer.c) */
	/* Finished peer forwards are freed, and queued ones started, from this
	 * event: never inside a callback chain that may still hold the request. */
	struct event *peer_kick_ev;
};
/* The loop a client lives on: the one that owns its socket (sock.loop is the
 * worker's socks field, set at accept and never changed). */
static inline struct worker *client_worker(const struct client *c)
{
	return (struct worker *)(void *)((char *)c->sock.loop - offsetof(struct worker, socks));
}
#endif
