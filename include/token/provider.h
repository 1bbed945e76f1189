/* The contract between the token cache and the cloud providers. A provider
 * family turns a credential into either an access token for a scope (Azure,
 * GCP) or signing keys (AWS, from which tokens are minted locally). Each
 * asynchronous call ends with exactly one callback, unless cancelled. */
#ifndef TB_TOKEN_PROVIDER_H
#define TB_TOKEN_PROVIDER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config-t.h"
#include "token/credential.h"

/* Access tokens (Azure, GCP). refresh_at is the provider's own hint
 * (Azure refresh_in), 0 when none. err names the source and the cause. */
typedef void (*access_token_cb)(void *arg, const char *token, size_t len, int64_t expires_at,
				int64_t refresh_at, const char *err);

struct provider_op;

struct aws_credentials;
typedef void (*aws_credentials_cb)(void *arg, const struct aws_credentials *creds, const char *err);

struct provider_family {
	const char *name; /* "azure", "aws", "gcp" */
	/* Check the section's keys (type included); err as "file:line: reason". */
	bool (*validate)(struct credential *c, char *err, size_t errlen);
	/* Start getting a token for scope (Azure, GCP). */
	struct provider_op *(*get_token)(struct credential *c, const char *scope, access_token_cb cb,
					 void *arg);
	/* Start getting signing credentials (AWS). */
	struct provider_op *(*get_aws)(struct credential *c, aws_credentials_cb cb, void *arg);
	void (*cancel)(struct provider_op *op);
	void (*free_state)(struct credential *c);
	/* Seconds before expiry to refresh, and the hard margin (spec §0.3). */
	int64_t refresh_margin, hard_margin;
};

const struct provider_family *provider_family_get(enum credential_family f);
/* The loop, for providers' retry timers. */
struct event_base *token_engine_base(void);
/* The running configuration (token_ca_file, token_fetch_timeout), for providers. */
const struct tb_config *token_engine_config(void);
/* token_fetch_timeout in milliseconds (for one HTTP request or helper program);
 * 10 s while no configuration is installed (unit tests). */
long token_fetch_timeout_ms(void);
/* The running token_ca_file, NULL when unset (the system's trust store). */
const char *token_ca_file(void);
/* An installed credential by name (one credential naming another as its source), or NULL. */
struct credential *token_engine_credential(const char *name);

/* Each family's table; a family not built yet is NULL in the registry. */
extern const struct provider_family azure_family;
extern const struct provider_family aws_family;
extern const struct provider_family gcp_family;
#endif
