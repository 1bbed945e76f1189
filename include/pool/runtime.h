/* Process-wide state: the event base, the current configuration and auth
 * files, TLS contexts, and the lists of live objects. Reload builds new
 * pieces and swaps them in here. */
#ifndef TB_POOL_RUNTIME_H
#define TB_POOL_RUNTIME_H
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#include "core/config-t.h"
#include "core/list.h"
#include "core/strmap.h"
#include "pool/cancel_index.h"
#include "pool/deadline.h"
#include "pool/pool-t.h"

/* A loaded config is shared by the databases made from it and freed when the
 * last of them is gone. */
struct config_ref {
	struct tb_config *cfg;
	int refs;
};

/* How the pooler stops (PgBouncer's SHUTDOWN variants). */
enum shutdown_mode {
	SHUTDOWN_NONE = 0,
	SHUTDOWN_WAIT_FOR_SERVERS, /* SIGINT: transactions finish, idle clients are let go */
	SHUTDOWN_WAIT_FOR_CLIENTS, /* SIGTERM: clients keep working until they leave */
	SHUTDOWN_IMMEDIATE,        /* SIGQUIT, SHUTDOWN */
};

struct runtime {
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
	struct database *admin_db; /* the console's virtual database */
	int nclients;
	uint64_t next_id;
	bool shutting_down; /* a shutdown is under way: no new clients */
	enum shutdown_mode shutdown_mode;
	uint64_t admit_until_id; /* shutdown: clients accepted before it may still log in */
	bool suspended;          /* SUSPEND: no socket but the console's is read */
};

extern struct runtime rt;

struct config_ref *config_ref_new(struct tb_config *cfg);
void config_ref_put(struct config_ref *r);

/* Apply a freshly loaded config (and its auth files) to the running state:
 * keep databases whose upstream is unchanged, retire the others. */
bool runtime_apply_config(struct tb_config *cfg, char *err, size_t errlen);
/* Find or create the runtime database for a client's requested name. */
struct database *runtime_find_database(const char *name);
void runtime_database_maybe_free(struct database *db);
/* Free a database no client and no server uses (autodb_idle_timeout); false if one does. */
bool runtime_database_free_unused(struct database *db);
/* user_from_token: fetch the alias's token and take its user from the claims;
 * clients waiting for it continue (or get the error) when it is known. */
void runtime_learn_user(struct database *db);
/* The TLS context for server connections, built on first use from the
 * current config; NULL with err set if it cannot be. */
SSL_CTX *runtime_server_tls(char *err, size_t errlen);
/* Run the event loop until it is broken or has nothing left to wait for. */
void runtime_loop(struct event_base *base);
/* Queue the deferred-free pass. */
void runtime_schedule_free(void);
void runtime_init(struct event_base *base, struct evdns_base *dns);
/* Re-read the config file and auth files; on any error nothing changes. */
bool runtime_reload(char *err, size_t errlen);
void runtime_shutdown(void);
#endif
