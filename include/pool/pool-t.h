/* Runtime objects of the pooler: databases (one per alias in use), pools
 * (one per database and upstream user), clients and servers. Each object is
 * on exactly one state list at a time through its 'node'. */
#ifndef TB_POOL_POOL_T_H
#define TB_POOL_POOL_T_H
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/config-t.h"
#include "core/list.h"
#include "core/strmap.h"
#include "core/util.h"
#include "net/peer_addr.h"
#include "net/sock.h"
#include "pg/scram.h"
#include "pg/session_attrs.h"
#include "pool/deadline.h"
#include "pool/prepared.h"
#include "pool/respq.h"
#include "pool/varcache.h"

struct config_ref;
struct token_entry;
struct token_wait;
struct client_auth;
struct resolve_req;
struct scram_client;
struct ps_client;
struct ps_server;
struct scram_keys;
struct auth_lookup;
struct worker;

/* Counters kept as PgBouncer keeps them (SHOW STATS sums them per database).
 * Times are in microseconds. */
struct pool_stats {
	uint64_t xact_count;
	uint64_t query_count;
	uint64_t bytes_received; /* from clients */
	uint64_t bytes_sent;     /* to clients */
	uint64_t xact_time;
	uint64_t query_time;
	uint64_t wait_time;
	uint64_t server_assignment_count;
	uint64_t client_parse_count;
	uint64_t server_parse_count;
	uint64_t bind_count;
	uint64_t login_count;
	uint64_t login_failures; /* failed server logins */
};

/* A replication=... startup parameter: the connection runs the walsender
 * protocol on a server of its own that never serves anyone else. */
enum replication_mode {
	REPLICATION_NONE = 0,
	REPLICATION_PHYSICAL, /* replication=true: pg_receivewal, pg_basebackup, standbys */
	REPLICATION_LOGICAL,  /* replication=database: pg_recvlogical, subscriptions */
};

struct database {
	struct worker *w;           /* the loop it lives on */
	char *name;                 /* the name clients use */
	const struct db_alias *cfg; /* inside cref's config */
	char *host;         /* where to connect (a bare DSQL cluster id expanded), or NULL: Unix socket */
	char *default_user; /* upstream user when the alias sets none and the client's is not used */
	bool learn_user;    /* the user is learned once the first token is in (user_from_token,
				      * or an identity whose e-mail only its source tells) */
	struct token_wait *user_wait; /* learn_user: the fetch that will name the user */
	char user_error[256];         /* user_from_token: why the user could not be learned */
	char *dbname;                 /* upstream database */
	int sslmode;                  /* effective enum tls_mode */
	struct config_ref *cref;
	bool retired;          /* removed or changed by a reload: serves who it has, takes nobody new */
	bool paused;           /* PAUSE: no new server assignments */
	bool disabled;         /* DISABLE: no new client logins */
	unsigned host_next;    /* host list, round-robin: the entry the next server takes */
	unsigned host_failed;  /* host list, load_balance_hosts=disable: failures so far */
	unsigned tsa_misses;   /* logins in a row refused by target_session_attrs */
	bool is_admin;         /* the virtual console database */
	struct list_node node; /* worker.databases */
	struct list_node pools;
	struct strmap pools_by_user; /* index over pools, keyed by pool.user */
	int nservers;                /* sum of its pools' nservers (max_db_connections) */
	usec_t unused_since;         /* "*"-made: first janitor pass that saw it unused, or 0 */
};

/* Servers of one upstream user across the aliases that do not force a
 * user= (max_user_connections), kept as they open and close so that the
 * limit check reads one number. Shared by the pools of that user. */
struct user_load {
	char *name;
	int nservers;
	int refs; /* pools pointing here */
};

/* The timeouts of one pool's servers (0: off), resolved from the [users]
 * entry of the pool's user and the globals by the janitor's pass
 * (pool/timeouts.c). */
struct pool_timeouts {
	usec_t query;     /* query_timeout */
	usec_t idle_xact; /* idle_transaction_timeout */
	usec_t xact;      /* transaction_timeout */
};

struct pool {
	struct worker *w; /* == db->w */
	struct database *db;
	char *user;                    /* upstream user */
	char *password;                /* upstream secret, or NULL; wiped on free */
	struct scram_keys *scram_keys; /* SCRAM pass-through from a client's login, or NULL; wiped on free */
	struct scram_keys password_keys; /* what password derived for server logins; wiped */
	struct list_node node;           /* database.pools */

	struct list_node active_clients;  /* logged in; with or without a server */
	struct list_node waiting_clients; /* CL_WAITING: want a server, FIFO */
	struct list_node welcome_clients; /* CL_WAIT_WELCOME: wait for the first server login, FIFO */
	struct list_node idle_servers;
	struct list_node active_servers; /* linked to a client */
	struct list_node used_servers;   /* running a reset, check or connect query */
	struct list_node new_servers;    /* connecting and logging in */
	struct list_node authq_queue;    /* auth_query lookups waiting for a server (authq.c) */
	/* Counters kept beside the lists by the state changes, so that dispatch
	 * never counts a list (checked against the lists in assert builds). */
	int nservers;                /* every server of the pool but closed ones */
	int nwaiting;                /* length of waiting_clients */
	int nwelcome;                /* length of welcome_clients */
	int nopening;                /* servers not yet logged in */
	struct user_load *user_load; /* NULL when the alias forces its user= */

	bool have_welcome; /* parameters learned from a first login */
	struct varcache welcome_vars;
	struct pbuf welcome_other; /* ParameterStatus messages of untracked parameters */

	struct list_node dirty_node;       /* worker.dirty_pools: dispatch at the end of the loop pass */
	struct token_entry *token;         /* token-backed aliases: the cache entry logins use */
	enum replication_mode replication; /* a pool of replication servers, one per client */
	struct pool_stats stats;
	usec_t last_failure; /* monotonic time of the last failed server login, or 0 */
	usec_t unused_since; /* first janitor pass that saw it empty (pool_idle_timeout), or 0 */
	struct pool_timeouts to;
	bool failure_restarting; /* it looked like a restart (57P03, refused, closed): waiters wait */
	char last_sqlstate[6];
	char last_error[256];
};

enum client_state {
	CL_STARTUP = 0,  /* waiting for the startup packet */
	CL_TLS,          /* TLS handshake after SSLRequest */
	CL_AUTH,         /* authentication exchange */
	CL_WAIT_WELCOME, /* authenticated; waiting for the pool's first server login */
	CL_IDLE,         /* logged in, no server */
	CL_WAITING,      /* has a request queued, waits for a server */
	CL_ACTIVE,       /* linked to a server */
	CL_CLOSING,
};

/* What a client needs only while it logs in, or only in rare cases: behind
 * one pointer, allocated on first use and freed when nothing in it is in use
 * (pool/client_rare.h), so that an idle client does not carry it. */
struct client_rare {
	struct client_auth *auth;     /* the authentication exchange while it runs */
	struct client *cancel_parked; /* a cancel request waiting for this client to get a server */
	struct client *cancel_target; /* this connection is a cancel request parked for that client */
	struct pbuf *ps_out;  /* prepared statements: what forwarding sends in place of the client's bytes */
	struct ps_client *ps; /* its named prepared statements (client ps_on), allocated with the first */
};

/* Ordered so that the struct has no holes: an idle client is mostly this. */
struct client {
	struct sock sock;
	uint64_t id;
	/* no worker pointer: client_worker() finds the loop through sock.loop,
	 * 8 bytes less on every idle client */
	struct list_node node;
	struct list_node all_node; /* worker.clients */
	struct database *db;
	struct pool *pool;
	struct server *server;
	const char *user; /* interned (varcache_intern_str): clients of one user share it */
	struct varcache vars;
	usec_t connect_at, state_since;
	struct deadline timer;    /* on worker.client_timers: see pool/client_timer.h */
	struct client_rare *rare; /* or NULL: see struct client_rare */
	/* Milliseconds (up to 49 days; longer ones are capped), 4 bytes each. */
	uint32_t wait_timeout_ms; /* query_wait_timeout of its login user and database (timeouts.c) */
	uint32_t idle_timeout_ms; /* client_idle_timeout of its login user */
	uint32_t cancel_pid, cancel_key;
	uint32_t fwd_remaining; /* body bytes of the current message still to forward */
	uint32_t need;          /* bytes a whole message needs buffered, or 0 */
	struct peer_addr addr;  /* for hba, logs and SHOW CLIENTS; none for Unix sockets */
	/* Bit-fields: with the flags below they fill the last word. */
	enum client_state state : 8;
	enum pool_mode mode : 8; /* session, transaction or statement, for this client */
	enum replication_mode replication : 8;
	bool is_unix : 1, tls : 1;
	bool is_admin : 1;          /* logged in to the console, not to a pool */
	bool awaiting_user : 1;     /* authenticated; its alias is learning its user from a token */
	bool admin_stats_only : 1;  /* a stats_users member: SHOW only */
	bool blocked_on_server : 1; /* reading paused until the server's queue drains */
	bool limit_counted : 1;     /* counted by climit under db->name and user */
	bool wait_notified : 1;     /* query_wait_notify's NOTICE sent for the current wait */
	bool console_peer : 1;      /* the pooler's own OS user on the Unix socket: console admin */
	bool ps_on : 1;             /* prepared statements tracked (transaction/statement mode) */
};

enum server_state {
	SV_TOKEN = 0, /* waiting for the token cache */
	SV_RESOLVING,
	SV_CONNECTING,
	SV_TLS_REQ, /* SSLRequest sent, waiting for S/N */
	SV_TLS,
	SV_LOGIN,
	SV_CONNECT_QUERY,
	SV_IDLE,
	SV_ACTIVE,
	SV_RESET,
	SV_CHECK,
	SV_DRAIN, /* its client left with answers owed: reading and discarding them */
	SV_CLOSING,
};

struct server {
	struct sock sock;
	uint64_t id;
	struct worker *w; /* == pool->w */
	enum server_state state;
	struct list_node node;
	struct pool *pool;
	struct client *client;
	bool just_checked; /* idle after server_check_query passed: give it out unchecked */
	char *host;        /* the host list entry this server connects to; NULL: db->host */
	int port;
	struct resolve_req *dns;
	struct scram_client *scram;
	struct token_wait *token_wait;
	char *token; /* the token this server logs in with; wiped after use */
	size_t token_len;
	uint64_t token_gen;
	int64_t token_expires;           /* epoch seconds */
	bool token_retry;                /* this login is the one retry after a rejected token */
	struct connector_bundle *bundle; /* connector mode: how to reach and trust the instance */
	bool mdx_pending;                /* AlloyDB: the metadata exchange's answer is awaited */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t backend_pid, backend_key;
	struct varcache vars;
	struct session_attrs attrs; /* what the server reported about itself at login */
	usec_t created_at, state_since, idle_since;
	usec_t lifetime; /* this connection's own cap, with jitter; 0 = none */
	uint32_t fwd_remaining;
	uint32_t need;             /* bytes a whole message needs buffered, or 0 */
	struct ps_server *ps;      /* prepared statements and the queue of answers owed */
	struct auth_lookup *authq; /* the auth_query this server runs (SV_CHECK), or NULL */
	int swallow;               /* ReadyForQuery messages of pooler queries still to absorb */
	struct respq respq;        /* what the server still owes the client it carries */
	usec_t query_start;        /* when flow.owed_rfq went from 0 to 1 */
	usec_t xact_start;         /* when the current transaction's first request was sent */
	usec_t last_rfq;           /* last ReadyForQuery forwarded to the client */
	uint64_t drained;          /* bytes discarded since the drain began */
	uint64_t drain_marker;     /* random value of the pooler's query that ends the drain */
	uint8_t drain_step; /* 0: none, 1: waiting for the marker row, 2: for its ReadyForQuery, 3: done */
	uint32_t cancels;   /* cancel requests in flight for this backend */
	bool ready;         /* at a ReadyForQuery with nothing sent since */
	bool blocked_on_client;
	bool retire;      /* close instead of reusing when released */
	bool uncertain;   /* a client left in the middle of a message: never reuse */
	bool drain_reset; /* run server_reset_query once the drain is done */
	bool replaced;    /* a successor was opened ahead of this one's lifetime */
	bool tls;
	bool opening; /* counted in pool.nopening */
};
#endif
