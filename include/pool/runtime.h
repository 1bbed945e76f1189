/* The life cycle of a worker's state (struct worker, pool/worker.h): the
 * current configuration and auth files, TLS contexts, databases; reload builds
 * new pieces and swaps them in. */
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
#include "pool/worker.h"

/* A loaded config is shared by the databases made from it and freed when the
 * last of them is gone. */
struct config_ref {
	struct tb_config *cfg;
	int refs;
};

struct config_ref *config_ref_new(struct tb_config *cfg);
void config_ref_put(struct config_ref *r);

/* Apply a freshly loaded config (and its auth files) to the running state:
 * keep databases whose upstream is unchanged, retire the others. */
bool runtime_apply_config(struct worker *w, struct tb_config *cfg, char *err, size_t errlen);
/* Find or create the runtime database for a client's requested name. */
struct database *runtime_find_database(struct worker *w, const char *name);
void runtime_database_maybe_free(struct database *db);
/* Free a database no client and no server uses (autodb_idle_timeout); false if one does. */
bool runtime_database_free_unused(struct database *db);
/* user_from_token: fetch the alias's token and take its user from the claims;
 * clients waiting for it continue (or get the error) when it is known. */
void runtime_learn_user(struct database *db);
/* The TLS context for server connections, built on first use from the
 * current config; NULL with err set if it cannot be. */
SSL_CTX *runtime_server_tls(struct worker *w, char *err, size_t errlen);
/* Run the event loop until it is broken or has nothing left to wait for. */
void runtime_loop(struct event_base *base);
/* Queue the deferred-free pass. */
void runtime_schedule_free(struct worker *w);
void runtime_init(struct worker *w, struct event_base *base, struct evdns_base *dns);
/* Re-read the config file and auth files; on any error nothing changes. */
bool runtime_reload(struct worker *w, char *err, size_t errlen);
void runtime_shutdown(struct worker *w);
#endif
