/* Inside the "aws" provider family (spec/cloud-tokens.md §1.2-1.5). aws.c
 * checks [credential.NAME] sections, turns one into a plan at each fetch
 * (which source answers, which roles are assumed after it) and keeps one
 * credentials cache per credential; aws_plan.c reads the environment and the
 * shared files into the pieces of a plan and holds the pure decisions;
 * aws_sources.c runs a plan asynchronously (STS, container endpoint, IMDS,
 * credential_process). Shared here so the unit tests can
 * reach the pure parts: environment lookups go through aws_env_source,
 * which tests replace. */
#ifndef TB_TOKEN_AWS_CHAIN_H
#define TB_TOKEN_AWS_CHAIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "token/aws_files.h"
#include "token/aws_parse.h"

/* ---- environment ---- */

/* Every environment read of the family goes through these (getenv and
 * environ by default). */
struct aws_env_source {
	const char *(*get)(const char *name);
	char *const *(*all)(void); /* "NAME=value" strings, for $VAR and ~ in paths */
};
extern struct aws_env_source aws_env_source;

/* The variable's value, or NULL when unset or empty (botocore ignores empty ones). */
const char *aws_env(const char *name);
/* botocore's ensure_boolean: "true" in any case. */
bool aws_env_true(const char *name);

/* ---- configuration (checked once, by validate) ---- */

enum aws_cred_type {
	AWS_TYPE_DEFAULT, /* the chain of §1.2 */
	AWS_TYPE_STATIC,
	AWS_TYPE_PROFILE,
	AWS_TYPE_WEB_IDENTITY,
	AWS_TYPE_ASSUME_ROLE,
	AWS_TYPE_PROCESS,
	AWS_TYPE_CONTAINER,
	AWS_TYPE_IMDS,
};

/* The section's keys, copied. NULL = not set. */
struct aws_cfg {
	enum aws_cred_type type;
	const char *owner; /* the credential's name, for messages (borrowed) */
	char *profile, *region;
	char *access_key_id, *secret_file, *secret_env, *session_token_file, *session_token_env;
	char *role_arn, *token_file, *session_name, *source_profile, *external_id;
	int duration; /* aws-assume-role duration_seconds, 0 = STS default */
	char **argv;  /* aws-process command, split */
	char *command;
};
void aws_cfg_clear(struct aws_cfg *cfg);

/* ---- a plan: what one fetch does ---- */

struct aws_plan {
	struct aws_profile_plan p; /* first credentials, then p.roles in order (innermost first) */
	const char *owner;         /* borrowed, for log lines */
	const char *label;         /* credential.source: "env", "shared-file", "assume-role", ... */
	bool chain_last;           /* IMDS as the default chain's last resort */
	char *sts_url;             /* STS endpoint (only with web identity or roles) */
	char *sts_region;          /* its signing region */
	char *container_url;
	char *container_auth; /* Authorization value: a secret */
	char *imds_base;      /* no trailing slash */
	long imds_timeout_ms;
	int imds_attempts;
	bool imds_v1_disabled;
	long timeout_ms; /* one STS request or the credential_process run */
	char *ca_file;
};
void aws_plan_free(struct aws_plan *p);

/* The plan for cfg from the environment and the files, as of now (§1.2).
 * NULL with err (naming the source and cause) when nothing usable is there. */
struct aws_plan *aws_plan_build(const struct aws_cfg *cfg, char *err, size_t errlen);

/* Pieces of a plan, from the environment (aws_plan.c). Each returns false
 * with err on a configuration error. */
/* §1.3.1 into p->p.static_creds; *found = false when AWS_ACCESS_KEY_ID is unset. */
bool aws_plan_env_creds(struct aws_plan *p, bool *found, char *err, size_t errlen);
/* §1.3.6; *found = false when neither container URI variable is set. */
bool aws_plan_container(struct aws_plan *p, bool *found, char *err, size_t errlen);
/* §1.3.7; *found = false when AWS_EC2_METADATA_DISABLED is true. */
bool aws_plan_imds(struct aws_plan *p, bool *found, char *err, size_t errlen);
/* STS endpoint and signing region (§1.4) for the region setting, else
 * AWS_REGION, AWS_DEFAULT_REGION, the profile's region. */
bool aws_plan_sts(struct aws_plan *p, const char *region, char *err, size_t errlen);
/* aws-static with keys: access_key_id and the secret (and session token)
 * read from their files or variables now. */
bool aws_plan_static_keys(struct aws_plan *p, const struct aws_cfg *cfg, char *err, size_t errlen);
/* A small file that holds a secret (web identity token, container token,
 * key), at most 64 KiB, not empty, no NUL; trim drops trailing blanks and
 * newlines. Free with secret_free. */
char *aws_read_secret_file(const char *path, const char *what, bool trim, char *err, size_t errlen);
/* The shared config and credentials files named by the environment. */
struct aws_files *aws_plan_load_files(char *err, size_t errlen);
/* The selected profile: key, else AWS_DEFAULT_PROFILE, else AWS_PROFILE,
 * else "default"; *explicit says whether it was named anywhere. */
const char *aws_plan_profile(const char *key, bool *explicit_name);

/* ---- pure decisions ---- */

enum aws_cache_action {
	AWS_CACHE_SERVE,         /* cached credentials are fine */
	AWS_CACHE_SERVE_REFRESH, /* advisory window: serve and refresh in the background */
	AWS_CACHE_WAIT,          /* mandatory window or nothing cached: wait for a fetch */
};
/* Base windows of §1.5. */
#define AWS_ADVISORY_S 900
#define AWS_MANDATORY_S 600
/* A failed background refresh is not retried sooner (§0.3). */
#define AWS_BACKGROUND_RETRY_S 30

/* §1.5 windows, scaled down for short lifetimes as §0.3.1 says:
 * advisory = min(900, L/2), mandatory = min(600, L/6), L = expiration -
 * fetched_at. expiration 0 = never refresh. retry_at holds back a
 * background refresh after a failed one. */
enum aws_cache_action aws_cache_decide(bool have, int64_t fetched_at, int64_t expiration, int64_t retry_at,
				       int64_t now);

/* §1.4 legacy retry mode: whether attempt (1-based) may be followed by another
 * (5 attempts at most), given the HTTP status (0 = transport error) and the
 * STS error code ("" when none). */
bool aws_sts_should_retry(int attempt, long status, const char *code);
/* Delay before retry n (n >= 1): rand[0,1) * 2^(n-1) s, in ms; rnd in [0,1). */
long aws_sts_retry_delay_ms(int n, double rnd);

enum aws_imds_token_outcome {
	AWS_IMDS_TOKEN_OK,    /* 200 */
	AWS_IMDS_TOKEN_V1,    /* 403/404/405: go on without a token */
	AWS_IMDS_TOKEN_FATAL, /* 400 */
	AWS_IMDS_TOKEN_RETRY, /* anything else: try again, then go on without */
};
enum aws_imds_token_outcome aws_imds_token_outcome(long status);

/* Static stability (§1.3.7): the expiration to believe, given the jitter
 * (120..600 s). Unchanged unless within 900 s + jitter of now. */
int64_t aws_imds_extend(int64_t expiration, int64_t now, int jitter);

/* §1.3.6 allowed container URLs: any https; http only to loopback,
 * 169.254.170.2, 169.254.170.23, fd00:ec2::23 or localhost. */
bool aws_container_url_ok(const char *url, char *err, size_t errlen);

/* Splits an http(s) URL into the Host header to sign (lower-cased, port only
 * when not the scheme's default) and the path ("/" when empty). malloc'd. */
bool aws_url_split(const char *url, char **host, char **path, char *err, size_t errlen);

/* ---- running a plan (aws_sources.c) ---- */

/* creds valid during the call; label = plan's label; err names source and cause. */
typedef void (*aws_fetch_cb)(void *arg, const struct aws_credentials *creds, const char *label,
			     const char *err);
struct aws_fetch;
/* Takes plan over. cb runs exactly once, always later from the loop, unless
 * cancelled. */
struct aws_fetch *aws_fetch_start(struct aws_plan *plan, aws_fetch_cb cb, void *arg);
/* A fetch that only reports err, later from the loop. */
struct aws_fetch *aws_fetch_fail(const char *err, aws_fetch_cb cb, void *arg);
void aws_fetch_cancel(struct aws_fetch *f);
#endif
