/* The Google ("gcp") provider family, inside: a configured credential
 * resolves at validation into one token source (for gcp-default, the first
 * of spec §3.2's order that exists); gcp_sources.c fetches from a source
 * asynchronously with the retry rules of §3.4 and §3.5. */
#ifndef TB_TOKEN_GCP_H
#define TB_TOKEN_GCP_H
#include <stdbool.h>
#include <stdint.h>

#include "token/gcp_parse.h"

enum gcp_kind {
	GCP_SRC_FILE,        /* service_account or authorized_user (file.type) */
	GCP_SRC_METADATA,    /* §3.4 */
	GCP_SRC_IMPERSONATE, /* §3.3.3: a source token, then IAM Credentials */
	GCP_SRC_NONE,        /* gcp-default found nothing: why says so */
};

struct gcp_source {
	enum gcp_kind kind;
	const char *owner;    /* the credential's name, for log lines */
	char label[40];       /* reported as credential.source */
	struct gcp_file file; /* GCP_SRC_FILE */
	char *token_uri;      /* the token endpoint to post to */
	char *quota_project;  /* x-goog-user-project, or NULL */
	bool ping;            /* metadata inside gcp-default: detect it first */
	bool metadata_known;  /* detected once: no more pings */
	/* impersonation */
	char *target;
	char *delegates[GCP_MAX_DELEGATES];
	size_t ndelegates;
	int64_t lifetime;
	char *iam_base;
	struct gcp_source *inner; /* the source credential, or NULL with source_name */
	char *source_name;        /* another [credential.NAME] supplies the source token */
	char *email;              /* metadata: the service account's, asked once with the first token */
	bool email_asked;
	char email_error[160];     /* ... or why it is not known */
	char *source_token;        /* the last source token (wiped), reused until its refresh point */
	int64_t source_refresh_at; /* epoch seconds */
	char *why;                 /* GCP_SRC_NONE */
};
void gcp_source_clear(struct gcp_source *s);
/* The identity's e-mail when the configuration tells it, or NULL. */
const char *gcp_source_email(const struct gcp_source *s);

struct credential;
/* A gcp-* credential's e-mail when its configuration tells it, else NULL. */
const char *gcp_credential_email(const struct credential *c);
/* True when its source tells the e-mail only once it has been asked (the
 * metadata server): after the first token, gcp_credential_email has it. */
bool gcp_credential_email_later(const struct credential *c);
/* Why gcp_credential_email is still NULL, for people. */
const char *gcp_credential_email_error(const struct credential *c);
/* Its quota project (x-goog-user-project for Google APIs), or NULL. */
const char *gcp_credential_quota_project(const struct credential *c);

/* tok on success (valid during the call), else err. source names what answered. */
typedef void (*gcp_fetch_cb)(void *arg, const struct gcp_token *tok, const char *source, const char *err);

struct gcp_fetch;
/* Starts a fetch for the space-separated scope; cb runs once, later, from
 * the loop, unless cancelled. */
struct gcp_fetch *gcp_fetch_start(struct gcp_source *src, const char *scope, gcp_fetch_cb cb, void *arg);
void gcp_fetch_cancel(struct gcp_fetch *f);
#endif
