/* Upstream login methods: one row per auth= value that logs in with cloud
 * material instead of a configured password. The pool asks this table what
 * to send and how to connect (which address, which defaults, how long a
 * server may live); it never names a cloud. */
#ifndef TB_TOKEN_METHOD_H
#define TB_TOKEN_METHOD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config-t.h"
#include "token/credential.h"

struct aws_credentials;
struct connector_bundle;
struct connector_op;
struct credential;
struct aws_db_target;
struct token_target;

/* Where and as whom an alias connects, once its method has had its say. */
struct method_endpoint {
	char *host;                 /* owned; NULL = the alias's host (or Unix socket) */
	char *default_user;         /* owned, or NULL */
	const char *default_dbname; /* static text, or NULL */
	int default_sslmode;        /* enum tls_mode, or -1: the global setting */
	bool user_after_token;      /* no default_user yet: ask user_after_fetch once a token is in */
};

/* Signs a token locally from cloud signing keys (AWS); the result is freed
 * with secret_free. */
typedef char *(*method_mint_fn)(const struct aws_credentials *c, const struct aws_db_target *t, int64_t now,
				int64_t *expires_at, char *err, size_t errlen);

/* Connector mode's end: the bundle (borrowed during the call) and, with
 * automatic IAM login, the login token it embeds; else err. */
typedef void (*connector_cb)(void *arg, struct connector_bundle *b, const char *login_token, size_t len,
			     int64_t token_expires, const char *err);

struct upstream_method {
	enum upstream_auth auth;
	const char *label; /* "Entra", "RDS IAM", for people */
	enum credential_family family;
	const char *family_types;  /* "azure-*", for messages */
	const char *default_scope; /* access-token methods; NULL when minted */
	bool audience_is_host;     /* the token is bound to the host as configured */
	bool signs_port;           /* ... and to its port */
	/* The database user the token's claims name (malloc'd), or NULL with why;
	 * NULL when the method's tokens carry no user. */
	char *(*user_from_token)(const char *token, size_t len, char *why, size_t whylen);
	/* The database user the alias's credential names once it has fetched a
	 * token (an e-mail its source tells), malloc'd, or NULL with why. */
	char *(*user_after_fetch)(const struct db_alias *a, char *why, size_t whylen);
	method_mint_fn mint; /* NULL: the provider's access token is the password */
	int64_t mint_refresh_s, mint_hard_s;
	usec_t max_server_lifetime; /* 0 = no cap */
	/* Load-time checks beyond the generic ones; why is for "alias: why". */
	bool (*check)(const struct db_alias *a, char *why, size_t whylen);
	/* Connector mode: the scopes of a token kept apart from the certificate
	 * (for the Admin API and the login after the handshake), refreshed on the
	 * token's own schedule; NULL: each certificate fetch gets its token. */
	const char *connector_token_scope;
	/* Connector mode (an alias with instance=): fetch the bundle. */
	struct connector_op *(*connect_start)(struct credential *c, const struct token_target *t,
					      connector_cb cb, void *arg);
	void (*connect_cancel)(struct connector_op *op);
	/* Runtime: the address and the defaults the method implies. */
	void (*endpoint)(const struct db_alias *a, struct method_endpoint *ep);
};

struct connector_op *cloudsql_connect_start(struct credential *c, const struct token_target *t,
					    connector_cb cb, void *arg);
struct connector_op *alloydb_connect_start(struct credential *c, const struct token_target *t,
					   connector_cb cb, void *arg);
void connector_connect_cancel(struct connector_op *op);

/* The row for a token-backed auth=, or NULL for auth=password. */
const struct upstream_method *upstream_method_of(enum upstream_auth auth);
/* Fills t with what an alias's pool of user asks the token cache for. */
void upstream_method_target(const struct db_alias *a, const char *alias_name, const char *user,
			    struct token_target *t);
/* The server asks for a password and gets the alias's (connector mode
 * without automatic IAM login), rather than a token. */
bool upstream_method_uses_password(const struct db_alias *a);
/* The alias's address and defaults (ep->host owned by the caller). */
void upstream_method_endpoint(const struct db_alias *a, struct method_endpoint *ep);
#endif
