/* The Entra ID ("azure") provider family, inside: a configured credential
 * resolves (at validation) into one token source, or, for azure-default,
 * into the chain of spec §2.2; azure_sources.c fetches from one source
 * asynchronously with the retries of §2.4 / §2.7.1. */
#ifndef TB_TOKEN_AZURE_H
#define TB_TOKEN_AZURE_H
#include <stdbool.h>

#include "token/azure_parse.h"

enum az_kind {
	AZ_CLIENT_SECRET, /* §2.4 */
	AZ_CLIENT_CERT,   /* §2.5 */
	AZ_WORKLOAD,      /* §2.6 */
	AZ_MANAGED,       /* §2.7 */
	AZ_CLI,           /* §2.8 */
};

/* Where a managed identity is asked, chosen from the environment (§2.7). */
enum az_mi_where {
	AZ_MI_AT_IMDS,
	AZ_MI_AT_APP_SERVICE, /* IDENTITY_ENDPOINT + IDENTITY_HEADER */
	AZ_MI_AT_WORKLOAD,    /* AKS workload identity (§2.7 step 3) */
	AZ_MI_UNSUPPORTED,    /* Service Fabric, Arc, ML, Cloud Shell */
};

/* One token source, resolved from the section and the environment. Strings
 * are owned; secret and cert_password are wiped when cleared. */
struct az_source {
	enum az_kind kind;
	const char *owner; /* the credential's name, for log lines */
	char label[40];    /* reported as credential.source */
	char *tenant_id, *client_id;
	char *authority; /* normalised; NULL = AZURE_AUTHORITY_HOST or the default */
	char *secret;    /* inline client_secret */
	char *secret_file, *secret_env;
	char *cert_file, *cert_password;
	bool send_chain;
	char *token_file;
	enum az_mi_where mi_where;
	enum azure_mi_id mi_kind;
	char *mi_id;
	char *mi_base;        /* IMDS root, or IDENTITY_ENDPOINT */
	char *mi_unsupported; /* why, for AZ_MI_UNSUPPORTED */
	bool imds_known;      /* no availability probe needed (§2.7.1) */
	char *subscription;   /* azure-cli */
};
void az_source_clear(struct az_source *s);

/* One fetch's end: tok on AZURE_OK (valid during the call), else err.
 * source is what answered ("imds", "app-service", a label). */
typedef void (*az_fetch_cb)(void *arg, enum azure_outcome o, const struct azure_token *tok,
			    const char *source, const char *err);

struct az_fetch;
/* Starts a fetch for scope; cb runs exactly once, later, from the loop,
 * unless cancelled. in_chain: inside azure-default (probe IMDS first; IMDS
 * and CLI failures count as unavailable). */
struct az_fetch *az_fetch_start(struct az_source *src, const char *scope, bool in_chain, az_fetch_cb cb,
				void *arg);
void az_fetch_cancel(struct az_fetch *f);
#endif
