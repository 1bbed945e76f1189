/* The "aws" provider family: checks [credential.NAME] sections of the aws-*
 * types, turns one into a plan at each fetch (botocore's chain of spec §1.2
 * for aws-default, one pinned source for the others), and keeps one
 * credentials cache per credential, shared by every token entry that uses
 * it: one fetch at a time with the callers queued behind it, and the
 * advisory / mandatory refresh windows of §1.5 (scaled for short lifetimes
 * as §0.3.1 says). The token cache copies what it needs during the callback. */
#include "token/aws_chain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/list.h"
#include "core/log.h"
#include "core/util.h"
#include "token/provider.h"
#include "token/token_clock.h"

/* One cache per credential (c->state). */
struct aws_state {
	struct credential *c;
	struct aws_cfg cfg;
	struct aws_credentials creds;
	bool have;
	int64_t fetched_at;
	int64_t retry_at;         /* no background refresh before this */
	struct aws_fetch *fetch;  /* the one fetch under way */
	struct list_node waiters; /* provider_op, waiting for it */
};

/* A caller waiting for the fetch under way. */
struct provider_op {
	struct list_node node;
	aws_credentials_cb cb;
	void *arg;
};

/* ---- configuration ---- */

static char *key_dup(const struct credential *c, const char *key)
{
	return xstrdup(credential_value(c, key));
}

void aws_cfg_clear(struct aws_cfg *cfg)
{
	free(cfg->profile);
	free(cfg->region);
	free(cfg->access_key_id);
	free(cfg->secret_file);
	free(cfg->secret_env);
	free(cfg->session_token_file);
	free(cfg->session_token_env);
	free(cfg->role_arn);
	free(cfg->token_file);
	free(cfg->session_name);
	free(cfg->source_profile);
	secret_free(cfg->external_id);
	aws_files_argv_free(cfg->argv);
	secret_free(cfg->command);
	memset(cfg, 0, sizeof(*cfg));
}

static bool chars_ok(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr(extra, *s)))
			return false;
	return true;
}

static bool check_region(const struct credential *c, char *err, size_t errlen)
{
	const char *r = credential_value(c, "region");
	if (!r || (strlen(r) < 64 && chars_ok(r, "-") && strpbrk(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL))
		return true;
	return credential_fail(c, "region", err, errlen,
			       "region \"%s\" is not an AWS region name (like us-east-1)", r);
}

/* Checks the role keys shared by aws-web-identity and aws-assume-role. */
static bool check_role_keys(const struct credential *c, char *err, size_t errlen)
{
	const char *arn = credential_value(c, "role_arn"), *sess = credential_value(c, "role_session_name");
	if (arn && (strncmp(arn, "arn:", 4) != 0 || !strstr(arn, ":iam::") || !strstr(arn, ":role/")))
		return credential_fail(c, "role_arn", err, errlen,
				       "role_arn \"%s\" is not an IAM role ARN "
				       "(arn:aws:iam::<account>:role/<name>)",
				       arn);
	if (sess && (strlen(sess) < 2 || strlen(sess) > 64 || !chars_ok(sess, "_+=,.@-")))
		return credential_fail(c, "role_session_name", err, errlen,
				       "role_session_name must be 2 to 64 letters, "
				       "digits or _+=,.@-");
	return true;
}

/* A value from the key, else from the environment variable; required. */
static bool need(const struct credential *c, const char *key, const char *env, char *err, size_t errlen)
{
	if (credential_value(c, key) || (env && aws_env(env)))
		return true;
	if (env)
		return credential_fail(c, NULL, err, errlen,
				       "type %s needs %s (or the environment variable %s)", c->type, key, env);
	return credential_fail(c, NULL, err, errlen, "type %s needs %s", c->type, key);
}

static bool check_static(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	const char *akid = credential_value(c, "access_key_id");
	const char *sf = credential_value(c, "secret_access_key_file"),
		   *se = credential_value(c, "secret_access_key_env");
	const char *tf = credential_value(c, "session_token_file"),
		   *te = credential_value(c, "session_token_env");
	if (!akid && !sf && !se && !tf && !te) {
		if (aws_env("AWS_ACCESS_KEY_ID"))
			return true;
		return credential_fail(c, "type", err, errlen,
				       "type aws-static without access_key_id reads "
				       "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment, and "
				       "AWS_ACCESS_KEY_ID is not set");
	}
	if (!akid)
		return credential_fail(c, NULL, err, errlen, "type aws-static with keys needs access_key_id");
	if (!!sf + !!se != 1)
		return credential_fail(c, NULL, err, errlen,
				       "type aws-static needs exactly one of secret_access_key_file "
				       "and secret_access_key_env");
	if (tf && te)
		return credential_fail(c, "session_token_env", err, errlen,
				       "set at most one of session_token_file and "
				       "session_token_env");
	const char *files[][2] = { { "secret_access_key_file", sf }, { "session_token_file", tf } };
	const char *envs[][2] = { { "secret_access_key_env", se }, { "session_token_env", te } };
	for (int i = 0; i < 2; i++) {
		if (files[i][1] && access(files[i][1], R_OK) != 0)
			return credential_fail(c, files[i][0], err, errlen, "cannot read %s %s: %s",
					       files[i][0], files[i][1], strerror(errno));
		if (envs[i][1] && !aws_env(envs[i][1]))
			return credential_fail(c, envs[i][0], err, errlen,
					       "the environment variable %s (%s) is not set", envs[i][1],
					       envs[i][0]);
	}
	cfg->access_key_id = xstrdup(akid);
	cfg->secret_file = xstrdup(sf);
	cfg->secret_env = xstrdup(se);
	cfg->session_token_file = xstrdup(tf);
	cfg->session_token_env = xstrdup(te);
	return true;
}

static bool check_web(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	if (!need(c, "role_arn", "AWS_ROLE_ARN", err, errlen) ||
	    !need(c, "token_file", "AWS_WEB_IDENTITY_TOKEN_FILE", err, errlen) ||
	    !check_role_keys(c, err, errlen))
		return false;
	cfg->role_arn = key_dup(c, "role_arn");
	cfg->token_file = key_dup(c, "token_file");
	cfg->session_name = key_dup(c, "role_session_name");
	return true;
}

static bool check_assume(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	const char *dur = credential_value(c, "duration_seconds"), *ext = credential_value(c, "external_id");
	if (!need(c, "role_arn", NULL, err, errlen) || !check_role_keys(c, err, errlen))
		return false;
	if (dur) {
		char *end;
		errno = 0;
		long v = strtol(dur, &end, 10);
		if (errno || *end || end == dur || v < 900 || v > 43200)
			return credential_fail(c, "duration_seconds", err, errlen,
					       "duration_seconds must be a whole number "
					       "of seconds from 900 to 43200");
		cfg->duration = (int)v;
	}
	if (ext && (strlen(ext) < 2 || strlen(ext) > 1224))
		return credential_fail(c, "external_id", err, errlen,
				       "external_id must be 2 to 1224 characters");
	cfg->role_arn = key_dup(c, "role_arn");
	cfg->session_name = key_dup(c, "role_session_name");
	cfg->source_profile = key_dup(c, "source_profile");
	cfg->external_id = key_dup(c, "external_id");
	return true;
}

static bool check_process(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	char why[200];
	if (!need(c, "command", NULL, err, errlen))
		return false;
	cfg->argv = aws_files_split_command(credential_value(c, "command"), NULL, why, sizeof(why));
	if (!cfg->argv)
		return credential_fail(c, "command", err, errlen, "command: %s", why);
	cfg->command = key_dup(c, "command");
	return true;
}

static bool check_container(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	if (aws_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || aws_env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
		return true;
	return credential_fail(c, "type", err, errlen,
			       "type aws-container needs the environment variable "
			       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

static bool check_imds(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	if (!aws_env_true("AWS_EC2_METADATA_DISABLED"))
		return true;
	return credential_fail(c, "type", err, errlen, "type aws-imds, but AWS_EC2_METADATA_DISABLED is true");
}

static bool check_nothing(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen)
{
	return true;
}

struct aws_type_def {
	struct credential_type head; /* first: credential_type_find returns it */
	enum aws_cred_type type;
	bool (*check)(struct credential *c, struct aws_cfg *cfg, char *err, size_t errlen);
};

static const char *const default_keys[] = { "profile", "region", NULL };
static const char *const static_keys[] = { "access_key_id",         "secret_access_key_file",
					   "secret_access_key_env", "session_token_file",
					   "session_token_env",     NULL };
static const char *const web_keys[] = { "role_arn", "token_file", "role_session_name", "region", NULL };
static const char *const assume_keys[] = { "role_arn",    "source_profile",   "role_session_name",
					   "external_id", "duration_seconds", "region",
					   NULL };
static const char *const process_keys[] = { "command", NULL };
static const char *const no_keys[] = { NULL };

static const struct aws_type_def aws_types[] = {
	{ { "aws-default", default_keys }, AWS_TYPE_DEFAULT, check_nothing },
	{ { "aws-static", static_keys }, AWS_TYPE_STATIC, check_static },
	{ { "aws-profile", default_keys }, AWS_TYPE_PROFILE, check_nothing },
	{ { "aws-web-identity", web_keys }, AWS_TYPE_WEB_IDENTITY, check_web },
	{ { "aws-assume-role", assume_keys }, AWS_TYPE_ASSUME_ROLE, check_assume },
	{ { "aws-process", process_keys }, AWS_TYPE_PROCESS, check_process },
	{ { "aws-container", no_keys }, AWS_TYPE_CONTAINER, check_container },
	{ { "aws-imds", no_keys }, AWS_TYPE_IMDS, check_imds },
};

const char *const *aws_credential_keys(const char *type)
{
	return credential_type_keys(CREDENTIAL_TYPE_FIND(aws_types, type));
}

static bool check_keys(const struct credential *c, const struct aws_type_def *t, char *err, size_t errlen)
{
	const char *k = credential_unknown_key(c, &t->head);
	if (k && (strcasecmp(k, "secret_access_key") == 0 || strcasecmp(k, "aws_secret_access_key") == 0))
		return credential_fail(
			c, k, err, errlen,
			"unknown key \"%s\" for type %s (secrets are not written "
			"in the configuration: use type aws-static with secret_access_key_file or "
			"secret_access_key_env)",
			k, t->head.name);
	return credential_check_keys(c, &t->head, err, errlen);
}

static bool aws_validate(struct credential *c, char *err, size_t errlen)
{
	const struct aws_type_def *t = (const struct aws_type_def *)CREDENTIAL_TYPE_FIND(aws_types, c->type);
	if (!t)
		return credential_fail(
			c, "type", err, errlen,
			"unknown type \"%s\" (expected aws-default, aws-static, "
			"aws-profile, aws-web-identity, aws-assume-role, aws-process, aws-container or "
			"aws-imds)",
			c->type);
	if (!check_keys(c, t, err, errlen) || !check_region(c, err, errlen))
		return false;
	struct aws_state *st = xcalloc(1, sizeof(*st));
	st->c = c;
	list_init(&st->waiters);
	c->state = st;
	st->cfg.type = t->type;
	st->cfg.owner = c->name;
	st->cfg.profile = key_dup(c, "profile");
	st->cfg.region = key_dup(c, "region");
	return t->check(c, &st->cfg, err, errlen);
}

/* ---- plans: which source answers (§1.2) ---- */

static struct aws_plan *plan_new(const struct aws_cfg *cfg)
{
	struct aws_plan *p = xcalloc(1, sizeof(*p));
	p->owner = cfg->owner;
	p->timeout_ms = token_fetch_timeout_ms();
	p->ca_file = xstrdup(token_ca_file());
	return p;
}

/* credential_source of a role profile (§1.3.3): read that source now. */
static bool plan_named_source(struct aws_plan *p, char *err, size_t errlen)
{
	bool found = true;
	const char *what = NULL;
	switch (p->p.source) {
	case AWS_SOURCE_ENVIRONMENT:
		if (!aws_plan_env_creds(p, &found, err, errlen))
			return false;
		what = "credential_source Environment, but AWS_ACCESS_KEY_ID is not set";
		break;
	case AWS_SOURCE_IMDS:
		if (!aws_plan_imds(p, &found, err, errlen))
			return false;
		what = "credential_source Ec2InstanceMetadata, but AWS_EC2_METADATA_DISABLED is true";
		break;
	case AWS_SOURCE_CONTAINER:
		if (!aws_plan_container(p, &found, err, errlen))
			return false;
		what = "credential_source EcsContainer, but neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
		       "AWS_CONTAINER_CREDENTIALS_FULL_URI is set";
		break;
	default:
		break;
	}
	if (!found)
		snprintf(err, errlen, "%s", what);
	return found;
}

static const char *source_label(const struct aws_profile_plan *pp)
{
	if (pp->nroles)
		return "assume-role";
	switch (pp->source) {
	case AWS_SOURCE_STATIC:
		return "shared-file";
	case AWS_SOURCE_WEB_IDENTITY:
		return "web-identity";
	case AWS_SOURCE_PROCESS:
		return "process";
	case AWS_SOURCE_ENVIRONMENT:
		return "env";
	case AWS_SOURCE_IMDS:
		return "imds";
	case AWS_SOURCE_CONTAINER:
		return "container";
	default:
		return "none";
	}
}

/* Providers 2, 3, 5, 7, 8 for one profile. with_env: the web identity
 * variables take part (the chain); must_exist: a profile that is in
 * neither file is an error even when it is "default". */
static enum aws_resolve_result plan_profile(const struct aws_cfg *cfg, struct aws_plan *p, const char *key,
					    bool with_env, bool must_exist, char *err, size_t errlen)
{
	bool named;
	const char *profile = aws_plan_profile(key, &named);
	struct aws_files *f = aws_plan_load_files(err, errlen);
	if (!f)
		return AWS_RESOLVE_ERROR;
	if ((named || must_exist) && !aws_files_has_profile(f, profile)) {
		snprintf(err, errlen, "AWS profile \"%s\" is in neither the config nor the credentials file",
			 profile);
		aws_files_free(f);
		return AWS_RESOLVE_ERROR;
	}
	struct aws_files_env fe = {
		aws_env("AWS_WEB_IDENTITY_TOKEN_FILE"),
		aws_env("AWS_ROLE_ARN"),
		aws_env("AWS_ROLE_SESSION_NAME"),
	};
	enum aws_resolve_result r = aws_files_resolve(f, profile, with_env ? &fe : NULL, &p->p, err, errlen);
	aws_files_free(f);
	if (r != AWS_RESOLVE_OK)
		return r;
	p->label = source_label(&p->p);
	if (!plan_named_source(p, err, errlen))
		return AWS_RESOLVE_ERROR;
	if ((p->p.nroles || p->p.source == AWS_SOURCE_WEB_IDENTITY) &&
	    !aws_plan_sts(p, cfg->region, err, errlen))
		return AWS_RESOLVE_ERROR;
	return AWS_RESOLVE_OK;
}

/* botocore's chain, in its order (§1.2). */
static struct aws_plan *plan_chain(const struct aws_cfg *cfg, const char *profile_key, char *err,
				   size_t errlen)
{
	struct aws_plan *p = plan_new(cfg);
	bool found;
	/* 1: skipped when the section names a profile (§1.2 row 1). */
	if (!profile_key) {
		if (!aws_plan_env_creds(p, &found, err, errlen))
			goto fail;
		if (found) {
			p->p.source = AWS_SOURCE_ENVIRONMENT;
			p->label = "env";
			return p;
		}
	}
	switch (plan_profile(cfg, p, profile_key, true, false, err, errlen)) {
	case AWS_RESOLVE_OK:
		return p;
	case AWS_RESOLVE_ERROR:
		goto fail;
	default:
		break;
	}
	aws_profile_plan_clear(&p->p);
	if (!aws_plan_container(p, &found, err, errlen))
		goto fail;
	if (found) {
		p->p.source = AWS_SOURCE_CONTAINER;
		p->label = "container";
		return p;
	}
	if (!aws_plan_imds(p, &found, err, errlen))
		goto fail;
	if (found) {
		p->p.source = AWS_SOURCE_IMDS;
		p->label = "imds";
		p->chain_last = true;
		return p;
	}
	snprintf(err, errlen,
		 "no AWS credentials found (tried env, shared files, container; IMDS is disabled "
		 "by AWS_EC2_METADATA_DISABLED)");
fail:
	aws_plan_free(p);
	return NULL;
}

static bool plan_static(const struct aws_cfg *cfg, struct aws_plan *p, char *err, size_t errlen)
{
	bool found;
	p->p.source = AWS_SOURCE_STATIC;
	if (cfg->access_key_id) {
		p->label = "static";
		return aws_plan_static_keys(p, cfg, err, errlen);
	}
	p->label = "env";
	if (!aws_plan_env_creds(p, &found, err, errlen))
		return false;
	if (!found)
		snprintf(err, errlen,
			 "AWS_ACCESS_KEY_ID is not set (type aws-static without access_key_id reads "
			 "the environment)");
	return found;
}

static bool plan_web(const struct aws_cfg *cfg, struct aws_plan *p, char *err, size_t errlen)
{
	const char *file = cfg->token_file ? cfg->token_file : aws_env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = cfg->role_arn ? cfg->role_arn : aws_env("AWS_ROLE_ARN");
	const char *sess = cfg->session_name ? cfg->session_name : aws_env("AWS_ROLE_SESSION_NAME");
	if (!file || !arn) {
		snprintf(err, errlen, "web identity needs %s",
			 file ? "a role ARN (role_arn or AWS_ROLE_ARN)"
			      : "a token file (token_file or AWS_WEB_IDENTITY_TOKEN_FILE)");
		return false;
	}
	p->p.source = AWS_SOURCE_WEB_IDENTITY;
	p->p.web_identity_token_file = xstrdup(file);
	p->p.web_identity_role_arn = xstrdup(arn);
	p->p.web_identity_session_name = xstrdup(sess);
	p->label = "web-identity";
	return aws_plan_sts(p, cfg->region, err, errlen);
}

/* aws-assume-role: the source profile's plan, or the whole chain's, then our role. */
static struct aws_plan *plan_assume(const struct aws_cfg *cfg, char *err, size_t errlen)
{
	struct aws_plan *p;
	if (cfg->source_profile) {
		p = plan_new(cfg);
		enum aws_resolve_result r = plan_profile(cfg, p, cfg->source_profile, false, true, err,
							 errlen);
		if (r == AWS_RESOLVE_NONE)
			snprintf(err, errlen, "source_profile \"%s\" has no credentials", cfg->source_profile);
		if (r != AWS_RESOLVE_OK) {
			aws_plan_free(p);
			return NULL;
		}
	} else if (!(p = plan_chain(cfg, NULL, err, errlen))) {
		return NULL;
	}
	struct aws_profile_plan *pp = &p->p;
	pp->roles = xrealloc(pp->roles, (pp->nroles + 1) * sizeof(*pp->roles));
	pp->roles[pp->nroles++] = (struct aws_role_step){
		.role_arn = xstrdup(cfg->role_arn),
		.role_session_name = xstrdup(cfg->session_name),
		.external_id = xstrdup(cfg->external_id),
		.duration_seconds = cfg->duration,
	};
	p->label = "assume-role";
	free(p->sts_url);
	free(p->sts_region);
	p->sts_url = p->sts_region = NULL;
	if (!aws_plan_sts(p, cfg->region, err, errlen)) {
		aws_plan_free(p);
		return NULL;
	}
	return p;
}

static char **argv_dup(char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(argv[i]);
	return out;
}

/* The pinned single sources. */
static bool plan_single(const struct aws_cfg *cfg, struct aws_plan *p, char *err, size_t errlen)
{
	bool found = true;
	switch (cfg->type) {
	case AWS_TYPE_STATIC:
		return plan_static(cfg, p, err, errlen);
	case AWS_TYPE_WEB_IDENTITY:
		return plan_web(cfg, p, err, errlen);
	case AWS_TYPE_PROFILE:
		switch (plan_profile(cfg, p, cfg->profile, false, true, err, errlen)) {
		case AWS_RESOLVE_OK:
			return true;
		case AWS_RESOLVE_NONE:
			snprintf(err, errlen,
				 "AWS profile \"%s\" has no credentials (no keys, role_arn, "
				 "web_identity_token_file or credential_process)",
				 aws_plan_profile(cfg->profile, &found));
			return false;
		default:
			return false;
		}
	case AWS_TYPE_PROCESS:
		p->p.source = AWS_SOURCE_PROCESS;
		p->p.process_argv = argv_dup(cfg->argv);
		p->p.process_command = xstrdup(cfg->command);
		p->label = "process";
		return true;
	case AWS_TYPE_CONTAINER:
		p->p.source = AWS_SOURCE_CONTAINER;
		p->label = "container";
		if (!aws_plan_container(p, &found, err, errlen))
			return false;
		if (!found)
			snprintf(err, errlen,
				 "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor "
				 "AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
		return found;
	case AWS_TYPE_IMDS:
		p->p.source = AWS_SOURCE_IMDS;
		p->label = "imds";
		if (!aws_plan_imds(p, &found, err, errlen))
			return false;
		if (!found)
			snprintf(err, errlen, "IMDS is disabled by AWS_EC2_METADATA_DISABLED");
		return found;
	default:
		snprintf(err, errlen, "internal error: unknown credential type");
		return false;
	}
}

struct aws_plan *aws_plan_build(const struct aws_cfg *cfg, char *err, size_t errlen)
{
	if (cfg->type == AWS_TYPE_DEFAULT)
		return plan_chain(cfg, cfg->profile, err, errlen);
	if (cfg->type == AWS_TYPE_ASSUME_ROLE)
		return plan_assume(cfg, err, errlen);
	struct aws_plan *p = plan_new(cfg);
	if (plan_single(cfg, p, err, errlen))
		return p;
	aws_plan_free(p);
	return NULL;
}

/* ---- the cache (§1.5, §0.3.1) ---- */

enum aws_cache_action aws_cache_decide(bool have, int64_t fetched_at, int64_t expiration, int64_t retry_at,
				       int64_t now)
{
	if (!have)
		return AWS_CACHE_WAIT;
	if (expiration == 0)
		return AWS_CACHE_SERVE;
	int64_t life = expiration > fetched_at ? expiration - fetched_at : 0;
	int64_t advisory = life / 2 < AWS_ADVISORY_S ? life / 2 : AWS_ADVISORY_S;
	int64_t mandatory = life / 6 < AWS_MANDATORY_S ? life / 6 : AWS_MANDATORY_S;
	if (now >= expiration - mandatory)
		return AWS_CACHE_WAIT;
	if (now >= expiration - advisory && now >= retry_at)
		return AWS_CACHE_SERVE_REFRESH;
	return AWS_CACHE_SERVE;
}

static int64_t now_s(void)
{
	return time_wall_usec() / USEC_PER_SEC;
}

/* Answers every caller queued so far; callers that queue while this runs
 * wait for the next fetch. */
static void deliver(struct aws_state *st, const struct aws_credentials *creds, const char *err)
{
	struct list_node batch, *n;
	list_init(&batch);
	while ((n = list_first(&st->waiters))) {
		list_del(n);
		list_add_tail(&batch, n);
	}
	while ((n = list_first(&batch))) {
		struct provider_op *op = list_entry(n, struct provider_op, node);
		list_del(n);
		op->cb(op->arg, creds, err);
		free(op);
	}
}

static void expired_error(const struct aws_credentials *got, const char *label, int64_t now, char *out,
			  size_t outlen)
{
	char when[32];
	struct tm tm;
	time_t t = (time_t)got->expiration;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(out, outlen, "the AWS credentials from %s have already expired (Expiration %s, %lld s ago)",
		 label ? label : "?", when, (long long)(now - got->expiration));
}

static void fetch_failed(struct aws_state *st, const char *err)
{
	struct credential *c = st->c;
	snprintf(c->last_error, sizeof(c->last_error), "%.255s", err);
	int64_t now = now_s();
	st->retry_at = now + token_clock_wait_s(AWS_BACKGROUND_RETRY_S);
	if (st->have && st->creds.expiration && now >= st->creds.expiration) {
		/* Useless now: do not keep secrets around for nothing. */
		aws_credentials_clear(&st->creds);
		st->have = false;
	}
	if (list_empty(&st->waiters)) {
		c->failure_count++;
		log_warning("credential %s: refreshing AWS credentials failed: %s%s", c->name, err,
			    st->have ? "; the cached ones stay in use" : "");
		return;
	}
	deliver(st, NULL, err);
}

static void on_fetched(void *arg, const struct aws_credentials *got, const char *label, const char *err)
{
	struct aws_state *st = arg;
	int64_t now = now_s();
	char msg[400];
	st->fetch = NULL;
	if (!err && got->expiration && got->expiration <= now) {
		expired_error(got, label, now, msg, sizeof(msg));
		err = msg;
	}
	if (err) {
		fetch_failed(st, err);
		return;
	}
	aws_credentials_clear(&st->creds);
	aws_credentials_copy(&st->creds, got);
	st->have = true;
	st->fetched_at = now;
	st->retry_at = 0;
	snprintf(st->c->source, sizeof(st->c->source), "%s", label ? label : "?");
	if (got->expiration)
		log_info("credential %s: new AWS credentials from %s, expiring in %lld s", st->c->name,
			 st->c->source, (long long)(got->expiration - now));
	else
		log_info("credential %s: AWS credentials from %s (no expiration)", st->c->name, st->c->source);
	deliver(st, &st->creds, NULL);
}

static void refresh_start(struct aws_state *st)
{
	char err[512];
	if (st->fetch)
		return;
	struct aws_plan *p = aws_plan_build(&st->cfg, err, sizeof(err));
	st->fetch = p ? aws_fetch_start(p, on_fetched, st) : aws_fetch_fail(err, on_fetched, st);
}

static struct provider_op *aws_get(struct credential *c, aws_credentials_cb cb, void *arg)
{
	struct aws_state *st = c->state;
	switch (aws_cache_decide(st->have, st->fetched_at, st->creds.expiration, st->retry_at, now_s())) {
	case AWS_CACHE_SERVE_REFRESH:
		log_debug("credential %s: AWS credentials expire in %lld s; refreshing in the background",
			  c->name, (long long)(st->creds.expiration - now_s()));
		refresh_start(st);
		/* fall through */
	case AWS_CACHE_SERVE:
		cb(arg, &st->creds, NULL);
		return NULL;
	default:
		break;
	}
	struct provider_op *op = xcalloc(1, sizeof(*op));
	op->cb = cb;
	op->arg = arg;
	list_add_tail(&st->waiters, &op->node);
	refresh_start(st);
	return op;
}

static void aws_cancel(struct provider_op *op)
{
	if (!op)
		return;
	list_del(&op->node);
	free(op);
}

static void aws_free_state(struct credential *c)
{
	struct aws_state *st = c->state;
	struct list_node *n;
	if (!st)
		return;
	aws_fetch_cancel(st->fetch);
	while ((n = list_first(&st->waiters))) {
		list_del(n);
		free(list_entry(n, struct provider_op, node));
	}
	aws_credentials_clear(&st->creds);
	aws_cfg_clear(&st->cfg);
	free(st);
	c->state = NULL;
}

const struct provider_family aws_family = {
	.name = "aws",
	.validate = aws_validate,
	.get_token = NULL,
	.get_aws = aws_get,
	.cancel = aws_cancel,
	.free_state = aws_free_state,
	.refresh_margin = AWS_ADVISORY_S,
	.hard_margin = AWS_MANDATORY_S,
};
