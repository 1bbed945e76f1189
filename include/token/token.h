/* The token cache: one entry per (credential, audience or target, database
 * user). Tokens are fetched ahead of need (refresh-ahead per spec §0.3), one
 * fetch per entry at a time, with server logins queued behind a fetch only
 * when no valid token is cached. Tokens are wiped when replaced or freed and
 * never logged. */
#ifndef TB_TOKEN_TOKEN_H
#define TB_TOKEN_TOKEN_H
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config-t.h"

struct credential;

/* What an alias asks for. Strings are copied into the entry. */
struct token_target {
	enum upstream_auth kind; /* UPSTREAM_AUTH_ENTRA, ..._AWS_RDS, ..._AWS_DSQL, ..._GCP */
	const char *credential;  /* [credential.NAME] */
	const char *audience;    /* scope (Entra, GCP) or the host as configured (AWS) */
	int port;                /* AWS RDS: signed with the host */
	const char *user;        /* database user */
	const char *region;      /* AWS */
	int64_t duration;        /* requested token lifetime in seconds, 0 = default */
	const char *alias;       /* for messages */
	/* connector mode (Cloud SQL instance=): port above is the port dialled */
	const char *instance;
	int ip_type; /* enum connector_ip_type */
	bool auto_iam;
	const char *api_endpoint;  /* the Admin API base URL */
	struct token_entry *login; /* the entry whose token the Admin API calls use, or NULL: the
				      * fetch gets its own (Cloud SQL embeds it in the certificate) */
};

/* token is valid only during the call; err is NULL on success. */
typedef void (*token_cb)(void *arg, const char *token, size_t len, int64_t expires_at, uint64_t generation,
			 const char *err);

struct token_entry;
struct token_wait;

bool token_engine_init(struct event_base *base, char *err, size_t errlen);
void token_engine_shutdown(void);
/* Rebuild credentials from a new config: validates every [credential.*] and
 * every token alias; on error nothing changes. */
bool token_engine_apply(const struct tb_config *cfg, char *err, size_t errlen);

struct token_entry *token_entry_for(const struct token_target *t);
/* Calls cb before returning (and returns NULL) when a usable token is cached
 * or when the last fetch failed and no token is usable; otherwise queues. */
struct token_wait *token_request(struct token_entry *e, token_cb cb, void *arg);
void token_wait_cancel(struct token_wait *w);
/* The upstream refused this token: drop it unless a newer one replaced it. */
void token_reject(struct token_entry *e, uint64_t generation);
/* Connector mode where the login token travels apart from the certificate
 * (AlloyDB's metadata exchange): the entry of that token, refreshed on its
 * own schedule; NULL when the certificate embeds it or there is none. */
struct token_entry *token_entry_login(struct token_entry *e);
/* Connector mode: the bundle of the cached material (a new reference), or NULL. */
struct connector_bundle *token_entry_bundle(struct token_entry *e);
/* Connector mode: a TLS or login failure that may mean stale material:
 * refresh it, at most twice in a row and then once per 30 s (§3.8.4). */
void token_force_refresh(struct token_entry *e, uint64_t generation);
/* Start fetching a token nobody has asked for yet (start-up, reload), so the
 * first login does not wait. */
void token_prefetch(const struct token_target *t);
/* True when the entry holds a token a login can use now; else why says the
 * state and the last error (never the token). For /readyz and the doctor. */
bool token_entry_ready(const struct token_entry *e, char *why, size_t whylen);
/* Force a refresh of every entry, or of those an alias uses (NULL = all). */
int token_refresh_all(const char *alias);

/* A read-only view for SHOW TOKENS and /metrics. */
struct token_view {
	const char *alias, *credential, *provider, *user, *audience;
	const char *state;        /* empty, fetching, valid, refreshing, expired, failed */
	const char *cert_subject; /* connector mode: the client certificate's subject, else NULL */
	int64_t cert_expires_in;  /* connector mode: seconds to the certificate's notAfter, else -1 */
	int64_t expires_in;       /* seconds, -1 when no token */
	int64_t refresh_in;       /* seconds, -1 when none planned */
	int64_t last_refresh;     /* epoch seconds, 0 = never */
	const char *last_error;
	uint64_t fetch_count, failure_count;
};
void token_foreach(void (*fn)(const struct token_view *v, void *arg), void *arg);
/* AWS_REGION, else AWS_DEFAULT_REGION, else NULL (the SDKs' order). */
const char *aws_env_region(void);
void credential_foreach(void (*fn)(const struct credential *c, void *arg), void *arg);
#endif
