/* The "aws" provider family (the AWS default credential chain to AWS credential refresh): validation of
 * [credential.NAME] sections, chain selection from a fake environment and
 * temporary shared files, the refresh windows, retry rules, URL rules, and
 * end to end against a small HTTP server in a thread (IMDSv2 and v1, the
 * container endpoint, STS) and helper scripts (credential_process), with
 * the real libevent loop, libcurl and the shared cache. */
#include "token/aws_chain.h"
#include "token/credential.h"
#include "token/provider.h"
#include "token/token.h"
#include "token/token_clock.h"
#include "core/log.h"
#include "core/util.h"
#include "unit.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char err[1024];
static char tmpdir[64];

/* ---------- a fake environment ---------- */

#define MAX_ENV 48
static char *env_kv[MAX_ENV];
static size_t nenv;

static const char *fake_get(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(env_kv[i], name, n) == 0 && env_kv[i][n] == '=')
			return env_kv[i] + n + 1;
	return NULL;
}

static char *const *fake_all(void)
{
	env_kv[nenv] = NULL;
	return env_kv;
}

static void env_clear(void)
{
	for (size_t i = 0; i < nenv; i++)
		free(env_kv[i]);
	nenv = 0;
	/* Point the shared files at nothing unless a test says otherwise. */
	env_kv[nenv++] = xasprintf("HOME=%s/nohome", tmpdir);
}

static void env_set(const char *name, const char *value)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < nenv; i++) {
		if (strncmp(env_kv[i], name, n) == 0 && env_kv[i][n] == '=') {
			free(env_kv[i]);
			env_kv[i] = xasprintf("%s=%s", name, value);
			return;
		}
	}
	if (nenv + 1 < MAX_ENV)
		env_kv[nenv++] = xasprintf("%s=%s", name, value);
}

static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* ---------- validation ---------- */

static struct credential *cred_new(const char *type, const char *const *kv)
{
	struct credential *c = xcalloc(1, sizeof(*c));
	size_t n = 1;
	while (kv && kv[2 * (n - 1)])
		n++;
	c->name = xstrdup("c1");
	c->type = xstrdup(type);
	c->file = "test.ini";
	c->line = 3;
	c->family = CRED_FAMILY_AWS;
	c->kv = xcalloc(n, sizeof(*c->kv));
	c->nkv = n;
	c->kv[0] = (struct credential_kv){ xstrdup("type"), xstrdup(type), 4 };
	for (size_t i = 1; kv && i < n; i++)
		c->kv[i] = (struct credential_kv){ xstrdup(kv[2 * (i - 1)]), xstrdup(kv[2 * (i - 1) + 1]),
						   4 + (int)i };
	return c;
}

static void cred_free(struct credential *c)
{
	aws_family.free_state(c);
	for (size_t i = 0; i < c->nkv; i++) {
		free(c->kv[i].key);
		free(c->kv[i].value);
	}
	free(c->kv);
	free(c->name);
	free(c->type);
	free(c);
}

static bool validate(const char *type, const char *const *kv)
{
	struct credential *c = cred_new(type, kv);
	err[0] = '\0';
	bool ok = aws_family.validate(c, err, sizeof(err));
	cred_free(c);
	return ok;
}

#define KV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_validate(void)
{
	env_clear();
	CHECK(aws_family.refresh_margin == 900 && aws_family.hard_margin == 600);
	CHECK_STR(aws_family.name, "aws");

	CHECK(validate("aws-default", NULL));
	CHECK(validate("aws-default", KV("profile", "prod", "region", "eu-west-1")));
	CHECK(!validate("aws-default", KV("region", "eu-west-1", "bogus", "1")));
	CHECK_STR(err, "test.ini:6: [credential.c1]: unknown key \"bogus\" for type aws-default");
	CHECK(!validate("aws-default", KV("region", "EU West")));
	CHECK_STR(
		err,
		"test.ini:5: [credential.c1]: region \"EU West\" is not an AWS region name (like us-east-1)");
	CHECK(!validate("aws-nope", NULL));
	CHECK(strstr(err, "test.ini:4: [credential.c1]: unknown type \"aws-nope\"") == err);
	CHECK(!validate("aws-profile", KV("role_arn", "arn:aws:iam::1:role/x")));
	CHECK(strstr(err, "unknown key \"role_arn\" for type aws-profile") != NULL);

	/* aws-static */
	CHECK(!validate("aws-static", NULL));
	CHECK(strstr(err, "AWS_ACCESS_KEY_ID is not set") != NULL);
	env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
	CHECK(validate("aws-static", NULL));
	CHECK(!validate("aws-static", KV("access_key_id", "AKID", "secret_access_key", "x")));
	CHECK(strstr(err, "unknown key \"secret_access_key\" for type aws-static (secrets are not written") !=
	      NULL);
	CHECK(!validate("aws-static", KV("access_key_id", "AKID")));
	CHECK(strstr(err, "exactly one of secret_access_key_file and secret_access_key_env") != NULL);
	CHECK(!validate("aws-static", KV("secret_access_key_env", "MYSECRET")));
	CHECK(strstr(err, "needs access_key_id") != NULL);
	CHECK(!validate("aws-static", KV("access_key_id", "AKID", "secret_access_key_env", "MYSECRET")));
	CHECK_STR(err,
		  "test.ini:6: [credential.c1]: the environment variable MYSECRET (secret_access_key_env) is "
		  "not set");
	env_set("MYSECRET", "s3cr3t");
	CHECK(validate("aws-static", KV("access_key_id", "AKID", "secret_access_key_env", "MYSECRET")));
	CHECK(!validate("aws-static",
			KV("access_key_id", "AKID", "secret_access_key_file", "/nonexistent/x")));
	CHECK(strstr(err, "test.ini:6: [credential.c1]: cannot read secret_access_key_file /nonexistent/x") ==
	      err);
	char *sf = write_file("secret", "abc\n");
	CHECK(validate("aws-static", KV("access_key_id", "AKID", "secret_access_key_file", sf,
					"session_token_env", "MYSECRET")));
	CHECK(!validate("aws-static", KV("access_key_id", "AKID", "secret_access_key_file", sf,
					 "secret_access_key_env", "MYSECRET")));
	CHECK(!validate("aws-static", KV("access_key_id", "AKID", "secret_access_key_file", sf,
					 "session_token_env", "MYSECRET", "session_token_file", sf)));
	free(sf);

	/* aws-web-identity */
	env_clear();
	CHECK(!validate("aws-web-identity", KV("token_file", "/t")));
	CHECK_STR(err, "test.ini:3: [credential.c1]: type aws-web-identity needs role_arn (or the environment "
		       "variable AWS_ROLE_ARN)");
	env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r");
	CHECK(!validate("aws-web-identity", NULL));
	CHECK(strstr(err, "needs token_file (or the environment variable AWS_WEB_IDENTITY_TOKEN_FILE)") !=
	      NULL);
	env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "/t");
	CHECK(validate("aws-web-identity", NULL));
	CHECK(!validate("aws-web-identity", KV("role_arn", "my-role")));
	CHECK(strstr(err, "role_arn \"my-role\" is not an IAM role ARN") != NULL);
	CHECK(!validate("aws-web-identity", KV("role_session_name", "bad name")));
	CHECK(strstr(err, "test.ini:5:") == err);
	CHECK(validate("aws-web-identity", KV("role_arn", "arn:aws-cn:iam::123456789012:role/a/b",
					      "role_session_name", "tb@host", "region", "cn-north-1")));

	/* aws-assume-role */
	CHECK(!validate("aws-assume-role", KV("source_profile", "p")));
	CHECK(strstr(err, "type aws-assume-role needs role_arn") != NULL);
	CHECK(!validate("aws-assume-role",
			KV("role_arn", "arn:aws:iam::1:role/x", "duration_seconds", "100")));
	CHECK(strstr(err, "test.ini:6: [credential.c1]: duration_seconds must be") == err);
	CHECK(!validate("aws-assume-role",
			KV("role_arn", "arn:aws:iam::1:role/x", "duration_seconds", "9e2")));
	CHECK(validate("aws-assume-role", KV("role_arn", "arn:aws:iam::1:role/x", "duration_seconds", "900",
					     "external_id", "ext-1", "source_profile", "base",
					     "role_session_name", "s1", "region", "us-west-2")));

	/* aws-process, aws-container, aws-imds */
	CHECK(!validate("aws-process", NULL));
	CHECK(strstr(err, "type aws-process needs command") != NULL);
	CHECK(!validate("aws-process", KV("command", "get-creds | jq")));
	CHECK(strstr(err, "test.ini:5: [credential.c1]: command: ") == err);
	CHECK(validate("aws-process", KV("command", "/usr/bin/get-creds --profile 'a b'")));
	CHECK(!validate("aws-container", NULL));
	CHECK(strstr(err, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI") !=
	      NULL);
	CHECK(!validate("aws-container", KV("endpoint", "x")));
	CHECK(strstr(err, "unknown key \"endpoint\" for type aws-container") != NULL);
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/x");
	CHECK(validate("aws-container", NULL));
	CHECK(validate("aws-imds", NULL));
	env_set("AWS_EC2_METADATA_DISABLED", "TRUE");
	CHECK(!validate("aws-imds", NULL));
	CHECK(strstr(err, "AWS_EC2_METADATA_DISABLED") != NULL);
}

/* ---------- chain selection ---------- */

static struct aws_plan *plan_for(enum aws_cred_type type, const char *profile)
{
	struct aws_cfg cfg = { .type = type, .owner = "c1", .profile = (char *)profile };
	err[0] = '\0';
	return aws_plan_build(&cfg, err, sizeof(err));
}

static void test_chain_env(void)
{
	env_clear();
	env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
	env_set("AWS_SECRET_ACCESS_KEY", "secret");
	env_set("AWS_SESSION_TOKEN", "session");
	env_set("AWS_SECURITY_TOKEN", "legacy");
	env_set("AWS_CREDENTIAL_EXPIRATION", "2030-01-01T06:00:00Z");
	struct aws_plan *p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_ENVIRONMENT);
	if (p) {
		CHECK_STR(p->label, "env");
		CHECK_STR(p->p.static_creds.access_key_id, "AKIDENV");
		CHECK_STR(p->p.static_creds.secret_access_key, "secret");
		CHECK_STR(p->p.static_creds.session_token, "legacy");
		CHECK(p->p.static_creds.expiration == INT64_C(1893477600));
		CHECK(p->p.nroles == 0 && !p->sts_url);
	}
	aws_plan_free(p);
	env_set("AWS_SECURITY_TOKEN", "");
	p = plan_for(AWS_TYPE_STATIC, NULL);
	CHECK(p && p->p.static_creds.session_token && strcmp(p->p.static_creds.session_token, "session") == 0);
	aws_plan_free(p);
	env_set("AWS_CREDENTIAL_EXPIRATION", "tomorrow");
	CHECK(!plan_for(AWS_TYPE_DEFAULT, NULL));
	CHECK(strstr(err, "AWS_CREDENTIAL_EXPIRATION \"tomorrow\" is not an ISO-8601") != NULL);
	env_clear();
	env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
	CHECK(!plan_for(AWS_TYPE_DEFAULT, NULL));
	CHECK(strstr(err, "partial AWS credentials in the environment") == err);
	/* A profile named in the section skips the environment (the AWS default credential chain)... */
	p = plan_for(AWS_TYPE_DEFAULT, "prod");
	CHECK(!p && strstr(err, "AWS profile \"prod\" is in neither") == err);
	aws_plan_free(p);
	/* ...but AWS_PROFILE does not. */
	env_set("AWS_SECRET_ACCESS_KEY", "secret");
	env_set("AWS_PROFILE", "prod");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_ENVIRONMENT);
	aws_plan_free(p);
}

static void test_chain_files(void)
{
	char *cfg = write_file(
		"config",
		"[default]\nregion = eu-west-1\n"
		"[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/dev\nsource_profile = default\n"
		"role_session_name = tb\nexternal_id = xyz\nduration_seconds = 1800\n"
		"[profile proc]\ncredential_process = /bin/creds --a 'b c'\n"
		"[profile envsrc]\nrole_arn = arn:aws:iam::123456789012:role/e\n"
		"credential_source = Environment\n"
		"[profile imdssrc]\nrole_arn = arn:aws:iam::123456789012:role/i\n"
		"credential_source = Ec2InstanceMetadata\n"
		"[profile empty]\nregion = us-west-2\n"
		"[profile bad]\nrole_arn = arn:aws:iam::123456789012:role/b\n");
	char *creds = write_file("credentials", "[default]\naws_access_key_id = AKIDFILE\n"
						"aws_secret_access_key = filesecret\n");
	env_clear();
	env_set("AWS_CONFIG_FILE", cfg);
	env_set("AWS_SHARED_CREDENTIALS_FILE", creds);
	struct aws_plan *p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_STATIC);
	if (p) {
		CHECK_STR(p->label, "shared-file");
		CHECK_STR(p->p.static_creds.access_key_id, "AKIDFILE");
	}
	aws_plan_free(p);

	/* A role profile: region from the profile, then AWS_DEFAULT_REGION, AWS_REGION, the key. */
	env_set("AWS_PROFILE", "dev");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.nroles == 1);
	if (p && p->p.nroles == 1) {
		CHECK_STR(p->label, "assume-role");
		CHECK_STR(p->p.roles[0].role_arn, "arn:aws:iam::123456789012:role/dev");
		CHECK_STR(p->p.roles[0].external_id, "xyz");
		CHECK(p->p.roles[0].duration_seconds == 1800);
		CHECK_STR(p->p.static_creds.access_key_id, "AKIDFILE");
		/* dev has no region of its own */
		CHECK_STR(p->sts_url, "https://sts.amazonaws.com");
		CHECK_STR(p->sts_region, "us-east-1");
	}
	aws_plan_free(p);
	env_set("AWS_DEFAULT_REGION", "eu-central-1");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "https://sts.eu-central-1.amazonaws.com") == 0 &&
	      strcmp(p->sts_region, "eu-central-1") == 0);
	aws_plan_free(p);
	env_set("AWS_REGION", "cn-north-1");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "https://sts.cn-north-1.amazonaws.com.cn") == 0);
	aws_plan_free(p);
	env_set("AWS_REGION", "us-east-2");
	env_set("AWS_STS_REGIONAL_ENDPOINTS", "legacy");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "https://sts.amazonaws.com") == 0 &&
	      strcmp(p->sts_region, "us-east-1") == 0);
	aws_plan_free(p);
	env_set("AWS_REGION", "ap-east-1");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "https://sts.ap-east-1.amazonaws.com") == 0);
	aws_plan_free(p);
	env_set("AWS_ENDPOINT_URL", "http://127.0.0.1:9/");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "http://127.0.0.1:9") == 0 && strcmp(p->sts_region, "ap-east-1") == 0);
	aws_plan_free(p);
	env_set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:8");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "http://127.0.0.1:8") == 0);
	aws_plan_free(p);
	env_set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && strcmp(p->sts_url, "https://sts.ap-east-1.amazonaws.com") == 0);
	aws_plan_free(p);
	env_set("AWS_REGION", "../evil");
	CHECK(!plan_for(AWS_TYPE_DEFAULT, NULL));
	CHECK(strstr(err, "AWS region \"../evil\" is not valid") == err);
	env_set("AWS_REGION", "us-east-1");

	/* AWS_DEFAULT_PROFILE beats AWS_PROFILE; credential_process. */
	env_set("AWS_DEFAULT_PROFILE", "proc");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_PROCESS);
	if (p && p->p.source == AWS_SOURCE_PROCESS) {
		CHECK_STR(p->label, "process");
		CHECK_STR(p->p.process_argv[2], "b c");
	}
	aws_plan_free(p);
	/* credential_source = Environment: env keys, then the role. */
	env_set("AWS_DEFAULT_PROFILE", "envsrc");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(!p && strstr(err, "credential_source Environment, but AWS_ACCESS_KEY_ID is not set") == err);
	env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
	env_set("AWS_SECRET_ACCESS_KEY", "s");
	/* Env keys win the chain unless the section names the profile. */
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_ENVIRONMENT && p->p.nroles == 0);
	aws_plan_free(p);
	p = plan_for(AWS_TYPE_DEFAULT, "envsrc");
	CHECK(p && p->p.source == AWS_SOURCE_ENVIRONMENT && p->p.nroles == 1);
	if (p)
		CHECK_STR(p->p.static_creds.access_key_id, "AKIDENV");
	aws_plan_free(p);
	p = plan_for(AWS_TYPE_PROFILE, "imdssrc");
	CHECK(p && p->p.source == AWS_SOURCE_IMDS && p->p.nroles == 1 && p->imds_base);
	aws_plan_free(p);
	p = plan_for(AWS_TYPE_PROFILE, "bad");
	CHECK(!p && strstr(err, "neither source_profile nor credential_source") != NULL);
	/* A profile without credentials: the chain goes on, aws-profile fails. */
	p = plan_for(AWS_TYPE_PROFILE, "empty");
	CHECK(!p && strstr(err, "AWS profile \"empty\" has no credentials") == err);
	p = plan_for(AWS_TYPE_DEFAULT, "empty");
	CHECK(p && p->p.source == AWS_SOURCE_IMDS && p->chain_last);
	aws_plan_free(p);
	p = plan_for(AWS_TYPE_PROFILE, "nope");
	CHECK(!p && strstr(err, "AWS profile \"nope\" is in neither") == err);

	/* aws-assume-role from a source profile. */
	struct aws_cfg ar = { .type = AWS_TYPE_ASSUME_ROLE,
			      .owner = "c1",
			      .role_arn = "arn:aws:iam::1:role/top",
			      .source_profile = "dev",
			      .region = "ap-east-1",
			      .duration = 900 };
	p = aws_plan_build(&ar, err, sizeof(err));
	CHECK(p && p->p.nroles == 2);
	if (p && p->p.nroles == 2) {
		CHECK_STR(p->p.roles[0].role_arn, "arn:aws:iam::123456789012:role/dev");
		CHECK_STR(p->p.roles[1].role_arn, "arn:aws:iam::1:role/top");
		CHECK(p->p.roles[1].duration_seconds == 900);
		/* AWS_STS_REGIONAL_ENDPOINTS=legacy is still set; ap-east-1 is not a legacy region. */
		CHECK_STR(p->sts_region, "ap-east-1");
		CHECK_STR(p->label, "assume-role");
	}
	aws_plan_free(p);
	/* ...or from the chain (here: the environment). */
	ar.source_profile = NULL;
	p = aws_plan_build(&ar, err, sizeof(err));
	CHECK(p && p->p.source == AWS_SOURCE_ENVIRONMENT && p->p.nroles == 1);
	aws_plan_free(p);
	free(cfg);
	free(creds);
}

static void test_chain_web_container_imds(void)
{
	env_clear();
	env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token");
	env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
	struct aws_plan *p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_WEB_IDENTITY);
	if (p && p->p.source == AWS_SOURCE_WEB_IDENTITY) {
		CHECK_STR(p->label, "web-identity");
		CHECK_STR(p->p.web_identity_token_file, "/var/run/token");
		CHECK(p->p.web_identity_session_name == NULL);
		CHECK_STR(p->sts_url, "https://sts.amazonaws.com");
	}
	aws_plan_free(p);
	/* aws-web-identity: keys over the environment */
	struct aws_cfg wc = { .type = AWS_TYPE_WEB_IDENTITY,
			      .owner = "c1",
			      .token_file = "/k",
			      .session_name = "s",
			      .region = "eu-west-2" };
	p = aws_plan_build(&wc, err, sizeof(err));
	CHECK(p && strcmp(p->p.web_identity_token_file, "/k") == 0 &&
	      strcmp(p->p.web_identity_role_arn, "arn:aws:iam::123456789012:role/irsa") == 0 &&
	      strcmp(p->sts_region, "eu-west-2") == 0);
	aws_plan_free(p);

	/* Container beats IMDS; relative URI; auth token from the file first. */
	env_clear();
	env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc");
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "envtok");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_CONTAINER);
	if (p && p->p.source == AWS_SOURCE_CONTAINER) {
		CHECK_STR(p->label, "container");
		CHECK_STR(p->container_url, "http://169.254.170.2/v2/credentials/abc");
		CHECK_STR(p->container_auth, "envtok");
	}
	aws_plan_free(p);
	char *tf = write_file("ctok", "filetok");
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf);
	p = plan_for(AWS_TYPE_CONTAINER, NULL);
	CHECK(p && strcmp(p->container_auth, "filetok") == 0);
	aws_plan_free(p);
	free(tf);
	tf = write_file("ctok2", "filetok\n");
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tf);
	CHECK(!plan_for(AWS_TYPE_CONTAINER, NULL));
	CHECK(strstr(err, "contains a CR or LF") != NULL && !strstr(err, "filetok"));
	free(tf);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/tok");
	CHECK(!plan_for(AWS_TYPE_CONTAINER, NULL));
	CHECK(strstr(err, "cannot read the container authorization token file /nonexistent/tok") == err);
	env_clear();
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds");
	CHECK(!plan_for(AWS_TYPE_DEFAULT, NULL));
	CHECK(strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI: http:// is only allowed") == err);
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.example.com/x");
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->container_auth == NULL);
	aws_plan_free(p);

	/* IMDS last, with its variables. */
	env_clear();
	p = plan_for(AWS_TYPE_DEFAULT, NULL);
	CHECK(p && p->p.source == AWS_SOURCE_IMDS && p->chain_last);
	if (p && p->imds_base) {
		CHECK_STR(p->label, "imds");
		CHECK_STR(p->imds_base, "http://169.254.169.254");
		CHECK(p->imds_timeout_ms == 1000 && p->imds_attempts == 1 && !p->imds_v1_disabled);
	}
	aws_plan_free(p);
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1234/");
	env_set("AWS_METADATA_SERVICE_TIMEOUT", "2.5");
	env_set("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3");
	env_set("AWS_EC2_METADATA_V1_DISABLED", "true");
	p = plan_for(AWS_TYPE_IMDS, NULL);
	CHECK(p && strcmp(p->imds_base, "http://127.0.0.1:1234") == 0 && p->imds_timeout_ms == 2500 &&
	      p->imds_attempts == 3 && p->imds_v1_disabled && !p->chain_last);
	aws_plan_free(p);
	env_set("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "0");
	CHECK(!plan_for(AWS_TYPE_IMDS, NULL));
	CHECK(strstr(err, "AWS_METADATA_SERVICE_NUM_ATTEMPTS=\"0\"") == err);
	env_clear();
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6");
	p = plan_for(AWS_TYPE_IMDS, NULL);
	CHECK(p && strcmp(p->imds_base, "http://[fd00:ec2::254]") == 0);
	aws_plan_free(p);
	env_clear();
	env_set("AWS_EC2_METADATA_DISABLED", "true");
	CHECK(!plan_for(AWS_TYPE_DEFAULT, NULL));
	CHECK_STR(err, "no AWS credentials found (tried env, shared files, container; IMDS is disabled by "
		       "AWS_EC2_METADATA_DISABLED)");

	/* aws-static with keys from a file (trimmed) and a variable. */
	env_clear();
	char *sf = write_file("sk", "file-secret \n");
	env_set("TOK", "tok-env");
	struct aws_cfg sc = { .type = AWS_TYPE_STATIC,
			      .owner = "c1",
			      .access_key_id = "AKIDCFG",
			      .secret_file = sf,
			      .session_token_env = "TOK" };
	p = aws_plan_build(&sc, err, sizeof(err));
	CHECK(p && strcmp(p->p.static_creds.secret_access_key, "file-secret") == 0 &&
	      strcmp(p->p.static_creds.session_token, "tok-env") == 0 && strcmp(p->label, "static") == 0);
	aws_plan_free(p);
	free(sf);
}

/* ---------- pure decisions ---------- */

static void test_decide(void)
{
	const int64_t t0 = 1000000;
	/* One-hour credentials: advisory 900 s, mandatory 600 s before expiry (AWS credential refresh). */
	int64_t exp = t0 + 3600;
	CHECK(aws_cache_decide(false, 0, 0, 0, t0) == AWS_CACHE_WAIT);
	CHECK(aws_cache_decide(true, t0, 0, 0, t0 + 99999999) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, t0) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, exp - 901) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, exp - 900) == AWS_CACHE_SERVE_REFRESH);
	CHECK(aws_cache_decide(true, t0, exp, 0, exp - 601) == AWS_CACHE_SERVE_REFRESH);
	CHECK(aws_cache_decide(true, t0, exp, exp - 600, exp - 601) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, exp - 600) == AWS_CACHE_WAIT);
	CHECK(aws_cache_decide(true, t0, exp, exp, exp - 600) == AWS_CACHE_WAIT);
	CHECK(aws_cache_decide(true, t0, exp, 0, exp + 5) == AWS_CACHE_WAIT);
	/* Six hours: the same absolute windows. */
	exp = t0 + 21600;
	CHECK(aws_cache_decide(true, t0, exp, 0, exp - 901) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, exp - 700) == AWS_CACHE_SERVE_REFRESH);
	/* Short lifetimes scale (the short-lifetime rule): 60 s -> refresh at 30 s of age, wait from 50 s. */
	exp = t0 + 60;
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 29) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 30) == AWS_CACHE_SERVE_REFRESH);
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 49) == AWS_CACHE_SERVE_REFRESH);
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 50) == AWS_CACHE_WAIT);
	/* 15-minute role credentials: 450 s / 150 s. */
	exp = t0 + 900;
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 449) == AWS_CACHE_SERVE);
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 450) == AWS_CACHE_SERVE_REFRESH);
	CHECK(aws_cache_decide(true, t0, exp, 0, t0 + 750) == AWS_CACHE_WAIT);
	/* Fetched already expired. */
	CHECK(aws_cache_decide(true, t0, t0 - 1, 0, t0) == AWS_CACHE_WAIT);
}

static void test_retry_rules(void)
{
	CHECK(aws_sts_should_retry(1, 0, ""));
	CHECK(aws_sts_should_retry(1, 400, "Throttling"));
	CHECK(aws_sts_should_retry(2, 400, "IDPCommunicationError"));
	CHECK(aws_sts_should_retry(1, 400, "ThrottlingException"));
	CHECK(aws_sts_should_retry(1, 500, ""));
	CHECK(aws_sts_should_retry(1, 503, "ServiceUnavailable"));
	CHECK(aws_sts_should_retry(1, 429, ""));
	CHECK(aws_sts_should_retry(4, 509, ""));
	CHECK(!aws_sts_should_retry(5, 503, ""));
	CHECK(!aws_sts_should_retry(5, 400, "Throttling"));
	CHECK(!aws_sts_should_retry(1, 400, "InvalidIdentityToken"));
	CHECK(!aws_sts_should_retry(1, 403, "AccessDenied"));
	CHECK(!aws_sts_should_retry(1, 400, "ExpiredTokenException"));
	CHECK(!aws_sts_should_retry(1, 200, ""));
	CHECK(!aws_sts_should_retry(1, 501, ""));
	CHECK(aws_sts_retry_delay_ms(1, 0.0) == 0);
	CHECK(aws_sts_retry_delay_ms(1, 0.5) == 500);
	CHECK(aws_sts_retry_delay_ms(2, 0.999) == 1998);
	CHECK(aws_sts_retry_delay_ms(4, 0.5) == 4000);
	long total = 0;
	for (int n = 1; n < 5; n++)
		total += aws_sts_retry_delay_ms(n, 0.999999);
	CHECK(total < 15000);

	CHECK(aws_imds_token_outcome(200) == AWS_IMDS_TOKEN_OK);
	CHECK(aws_imds_token_outcome(403) == AWS_IMDS_TOKEN_V1);
	CHECK(aws_imds_token_outcome(404) == AWS_IMDS_TOKEN_V1);
	CHECK(aws_imds_token_outcome(405) == AWS_IMDS_TOKEN_V1);
	CHECK(aws_imds_token_outcome(400) == AWS_IMDS_TOKEN_FATAL);
	CHECK(aws_imds_token_outcome(500) == AWS_IMDS_TOKEN_RETRY);
	CHECK(aws_imds_token_outcome(401) == AWS_IMDS_TOKEN_RETRY);

	/* Static stability: extended only inside 900 s + jitter of now. */
	const int64_t now = 2000000;
	CHECK(aws_imds_extend(now + 3600, now, 300) == now + 3600);
	CHECK(aws_imds_extend(now + 1201, now, 300) == now + 1201);
	CHECK(aws_imds_extend(now + 1200, now, 300) == now + 1200);
	CHECK(aws_imds_extend(now + 1199, now, 300) == now + 1200);
	CHECK(aws_imds_extend(now - 50, now, 120) == now + 1020);
	CHECK(aws_imds_extend(0, now, 120) == 0);
}

static void test_urls(void)
{
	static const char *const ok[] = {
		"https://anything.example.com/x",
		"http://127.0.0.1:8080/v2/c",
		"http://127.9.8.7/",
		"http://[::1]:9/x",
		"http://localhost/x",
		"http://LOCALHOST:80/x",
		"http://169.254.170.2/v2/c",
		"http://169.254.170.23/v1",
		"http://[fd00:ec2::23]/v1",
		"http://[fd00:ec2:0::23]:80/v1",
	};
	static const char *const bad[] = {
		"http://10.0.0.1/",
		"http://169.254.169.254/",
		"http://example.com/",
		"ftp://127.0.0.1/",
		"http://127.0.0.1@evil.com/",
		"http://[fd00:ec2::24]/",
		"http://127.0.0.1:99999/",
		"127.0.0.1/x",
		"http://127.0.0.1/x?y=1",
		"http:///x",
		"http://[::1/x",
		"http://128.0.0.1/",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		bool r = aws_container_url_ok(ok[i], err, sizeof(err));
		if (!r)
			fprintf(stderr, "  rejected %s: %s\n", ok[i], err);
		CHECK(r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool r = aws_container_url_ok(bad[i], err, sizeof(err));
		if (r)
			fprintf(stderr, "  accepted %s\n", bad[i]);
		CHECK(!r);
	}
	char *host, *path;
	CHECK(aws_url_split("https://STS.Example.com", &host, &path, err, sizeof(err)));
	CHECK_STR(host, "sts.example.com");
	CHECK_STR(path, "/");
	free(host);
	free(path);
	CHECK(aws_url_split("http://127.0.0.1:8443/sts/x", &host, &path, err, sizeof(err)));
	CHECK_STR(host, "127.0.0.1:8443");
	CHECK_STR(path, "/sts/x");
	free(host);
	free(path);
	CHECK(aws_url_split("https://h:443/", &host, &path, err, sizeof(err)));
	CHECK_STR(host, "h");
	free(host);
	free(path);
	CHECK(aws_url_split("http://[::1]:80", &host, &path, err, sizeof(err)));
	CHECK_STR(host, "[::1]");
	free(host);
	free(path);
}

/* ---------- a tiny HTTP server ---------- */

struct srv_req {
	char method[8];
	char path[256];
	char headers[4096];
	char body[8192];
};

struct srv_resp {
	int status;
	char body[2048];
};

typedef void (*srv_handler)(const struct srv_req *rq, int n, struct srv_resp *out);

static struct {
	int fd, port;
	pthread_t th;
	pthread_mutex_t mu;
	srv_handler handler;
	struct srv_req reqs[16];
	int nreqs;
	volatile int stop;
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* A header's value, or NULL. */
static const char *hdr(const struct srv_req *r, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	for (const char *l = r->headers; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r\n");
			snprintf(out, outlen, "%.*s", (int)vl, v);
			return out;
		}
	}
	return NULL;
}

static void srv_serve(int c)
{
	static struct srv_req rq;
	struct srv_resp resp = { 500, "" };
	char buf[16384];
	size_t len = 0;
	char *end = NULL;
	buf[0] = '\0';
	memset(&rq, 0, sizeof(rq));
	while (len < sizeof(buf) - 1 && !(end = strstr(buf, "\r\n\r\n"))) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
	}
	if (!end)
		return;
	sscanf(buf, "%7s %255s", rq.method, rq.path);
	const char *h = strstr(buf, "\r\n") + 2;
	snprintf(rq.headers, sizeof(rq.headers), "%.*s", (int)(end + 2 - h), h);
	char cl[32];
	size_t want = hdr(&rq, "Content-Length", cl, sizeof(cl)) ? (size_t)strtoul(cl, NULL, 10) : 0;
	size_t have = len - (size_t)(end + 4 - buf);
	while (have < want && len < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		have += (size_t)n;
	}
	buf[len] = '\0';
	snprintf(rq.body, sizeof(rq.body), "%s", end + 4);
	pthread_mutex_lock(&srv.mu);
	int idx = srv.nreqs++;
	if (idx < 16)
		srv.reqs[idx] = rq;
	if (srv.handler)
		srv.handler(&rq, idx, &resp);
	pthread_mutex_unlock(&srv.mu);
	char out[4096];
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", resp.status,
			 strlen(resp.body), resp.body);
	if (write(c, out, (size_t)n) < 0)
		return;
}

static void *srv_main(void *arg)
{
	while (!srv.stop) {
		struct pollfd pfd = { srv.fd, POLLIN, 0 };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			continue;
		srv_serve(c);
		close(c);
	}
	return NULL;
}

static bool srv_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	srv.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(srv.fd, 16) != 0 ||
	    getsockname(srv.fd, (struct sockaddr *)&a, &al) != 0)
		return false;
	srv.port = ntohs(a.sin_port);
	return pthread_create(&srv.th, NULL, srv_main, NULL) == 0;
}

static void srv_stop(void)
{
	srv.stop = 1;
	pthread_join(srv.th, NULL);
	close(srv.fd);
}

static void srv_use(srv_handler h)
{
	pthread_mutex_lock(&srv.mu);
	srv.handler = h;
	srv.nreqs = 0;
	pthread_mutex_unlock(&srv.mu);
}

static int srv_count(void)
{
	pthread_mutex_lock(&srv.mu);
	int n = srv.nreqs;
	pthread_mutex_unlock(&srv.mu);
	return n;
}

static char *srv_url(const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", srv.port, path);
}

static void iso_in(int64_t secs, char *out, size_t outlen)
{
	time_t t = (time_t)(time(NULL) + secs);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------- running the loop ---------- */

static struct event_base *base;

struct got {
	int calls;
	char akid[64];
	char token[64];
	char err[600];
	int64_t exp;
};

static void on_creds(void *arg, const struct aws_credentials *c, const char *e)
{
	struct got *g = arg;
	g->calls++;
	g->akid[0] = g->token[0] = g->err[0] = '\0';
	if (c) {
		snprintf(g->akid, sizeof(g->akid), "%s", c->access_key_id);
		snprintf(g->token, sizeof(g->token), "%s", c->session_token ? c->session_token : "");
		g->exp = c->expiration;
	}
	if (e)
		snprintf(g->err, sizeof(g->err), "%s", e);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Runs the loop until g has calls callbacks or 15 s pass. */
static void run_until(struct got *g, int calls)
{
	bool timeout = false;
	struct event *guard = evtimer_new(base, on_guard, &timeout);
	struct timeval tv = { 15, 0 };
	evtimer_add(guard, &tv);
	while (g->calls < calls && !timeout)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	CHECK(!timeout);
}

/* One get_aws on a fresh credential of that type; the credential is freed. */
static void fetch_once(const char *type, const char *const *kv, struct got *g)
{
	memset(g, 0, sizeof(*g));
	struct credential *c = cred_new(type, kv);
	if (!aws_family.validate(c, err, sizeof(err))) {
		fprintf(stderr, "  validate: %s\n", err);
		CHECK(false);
		cred_free(c);
		return;
	}
	struct provider_op *op = aws_family.get_aws(c, on_creds, g);
	CHECK(op != NULL);
	CHECK(g->calls == 0);
	run_until(g, 1);
	cred_free(c);
}

/* ---------- IMDS ---------- */

static int imds_token_status = 200;
static char imds_exp[32];

static void imds_handler(const struct srv_req *rq, int n, struct srv_resp *out)
{
	char v[256];
	if (strcmp(rq->path, "/latest/api/token") == 0) {
		bool ttl = hdr(rq, "x-aws-ec2-metadata-token-ttl-seconds", v, sizeof(v)) &&
			   strcmp(v, "21600") == 0;
		out->status = strcmp(rq->method, "PUT") == 0 && ttl ? imds_token_status : 400;
		snprintf(out->body, sizeof(out->body), "%s", out->status == 200 ? "imds-session-token" : "");
		return;
	}
	const char *tok = hdr(rq, "x-aws-ec2-metadata-token", v, sizeof(v));
	if (imds_token_status == 200 && (!tok || strcmp(tok, "imds-session-token") != 0)) {
		out->status = 401;
		return;
	}
	if (strcmp(rq->path, "/latest/meta-data/iam/security-credentials/") == 0) {
		out->status = 200;
		snprintf(out->body, sizeof(out->body), "tb-role\n");
	} else if (strcmp(rq->path, "/latest/meta-data/iam/security-credentials/tb-role") == 0) {
		out->status = 200;
		snprintf(out->body, sizeof(out->body),
			 "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
			 "\"AccessKeyId\":\"ASIAIMDS%d\",\"SecretAccessKey\":\"imds-secret\",\"Token\":\"imds-tok\","
			 "\"Expiration\":\"%s\"}",
			 n, imds_exp);
	} else {
		out->status = 404;
	}
}

static void test_imds(void)
{
	struct got g1, g2, g3;
	char *ep = srv_url("/");
	env_clear();
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep);
	iso_in(6 * 3600, imds_exp, sizeof(imds_exp));
	srv_use(imds_handler);

	/* Two callers, one fetch (single flight); a third is served from the cache. */
	struct credential *c = cred_new("aws-imds", NULL);
	CHECK(aws_family.validate(c, err, sizeof(err)));
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	memset(&g3, 0, sizeof(g3));
	CHECK(aws_family.get_aws(c, on_creds, &g1) != NULL);
	CHECK(aws_family.get_aws(c, on_creds, &g2) != NULL);
	run_until(&g2, 1);
	CHECK(g1.calls == 1 && g2.calls == 1);
	CHECK_STR(g1.akid, "ASIAIMDS2");
	CHECK_STR(g2.akid, "ASIAIMDS2");
	CHECK_STR(g1.token, "imds-tok");
	CHECK(srv_count() == 3);
	CHECK_STR(c->source, "imds");
	pthread_mutex_lock(&srv.mu);
	CHECK_STR(srv.reqs[0].method, "PUT");
	CHECK_STR(srv.reqs[1].path, "/latest/meta-data/iam/security-credentials/");
	char v[128];
	CHECK(hdr(&srv.reqs[2], "x-aws-ec2-metadata-token", v, sizeof(v)) &&
	      strcmp(v, "imds-session-token") == 0);
	pthread_mutex_unlock(&srv.mu);
	CHECK(aws_family.get_aws(c, on_creds, &g3) == NULL);
	CHECK(g3.calls == 1 && strcmp(g3.akid, "ASIAIMDS2") == 0);
	CHECK(srv_count() == 3);
	cred_free(c);

	/* Static stability: credentials about to expire are carried 17-25 minutes. */
	iso_in(60, imds_exp, sizeof(imds_exp));
	fetch_once("aws-imds", NULL, &g1);
	int64_t left = g1.exp - (int64_t)time(NULL);
	CHECK(g1.calls == 1 && left >= 900 + 118 && left <= 900 + 602);

	/* IMDSv1 fallback on 403/404/405, unless disabled; 400 is fatal. */
	iso_in(6 * 3600, imds_exp, sizeof(imds_exp));
	imds_token_status = 403;
	srv_use(imds_handler);
	fetch_once("aws-imds", NULL, &g1);
	CHECK(g1.calls == 1 && strncmp(g1.akid, "ASIAIMDS", 8) == 0);
	pthread_mutex_lock(&srv.mu);
	CHECK(srv.nreqs == 3 && !hdr(&srv.reqs[1], "x-aws-ec2-metadata-token", v, sizeof(v)));
	pthread_mutex_unlock(&srv.mu);
	env_set("AWS_EC2_METADATA_V1_DISABLED", "true");
	fetch_once("aws-imds", NULL, &g1);
	CHECK_STR(g1.err, "IMDS gave no session token (HTTP 403) and IMDSv1 is disabled "
			  "(AWS_EC2_METADATA_V1_DISABLED)");
	env_set("AWS_EC2_METADATA_V1_DISABLED", "false");
	imds_token_status = 400;
	srv_use(imds_handler);
	fetch_once("aws-default", NULL, &g1);
	CHECK_STR(g1.err,
		  "no AWS credentials found (tried env, shared files, container, IMDS): IMDS rejected the "
		  "session token request (HTTP 400)");
	CHECK(srv_count() == 1);
	imds_token_status = 200;

	/* A role that is not there; retries per AWS_METADATA_SERVICE_NUM_ATTEMPTS. */
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep);
	free(ep);
	ep = srv_url("/bad");
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep);
	env_set("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "2");
	srv_use(imds_handler);
	fetch_once("aws-imds", NULL, &g1);
	CHECK_STR(g1.err, "IMDS answered 401 for the role name");
	CHECK(srv_count() == 4);
	free(ep);
}

/* ---------- container ---------- */

static int container_fail_first;

static void container_handler(const struct srv_req *rq, int n, struct srv_resp *out)
{
	char v[128], exp[32];
	if (!hdr(rq, "Authorization", v, sizeof(v)) || strcmp(v, "Bearer-less token") != 0) {
		out->status = 401;
		snprintf(out->body, sizeof(out->body), "{\"Message\":\"bad token\"}");
		return;
	}
	if (n < container_fail_first) {
		out->status = 500;
		return;
	}
	iso_in(3600, exp, sizeof(exp));
	out->status = 200;
	snprintf(out->body, sizeof(out->body),
		 "{\"RoleArn\":\"arn:aws:iam::123456789012:role/t\","
		 "\"AccessKeyId\":\"ASIACONT%d\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"%s\","
		 "\"AccountId\":\"123456789012\"}",
		 n, exp);
}

static void test_container(void)
{
	struct got g;
	char *url = srv_url("/v2/credentials/tb");
	env_clear();
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer-less token");
	container_fail_first = 1;
	srv_use(container_handler);
	fetch_once("aws-default", NULL, &g);
	CHECK_STR(g.akid, "ASIACONT1");
	CHECK(srv_count() == 2);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong");
	srv_use(container_handler);
	fetch_once("aws-container", NULL, &g);
	CHECK_STR(g.err, "container credentials endpoint answered HTTP 401: bad token (after 3 attempts)");
	CHECK(srv_count() == 3);
	free(url);
}

/* ---------- STS ---------- */

static int sts_throttle;
static const char *sts_fail_code;

static void sts_handler(const struct srv_req *rq, int n, struct srv_resp *out)
{
	char exp[32];
	if (n < sts_throttle || sts_fail_code) {
		out->status = sts_fail_code && strcmp(sts_fail_code, "AccessDenied") == 0 ? 403 : 400;
		snprintf(out->body, sizeof(out->body),
			 "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
			 "<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
			 "<RequestId>r</RequestId></ErrorResponse>",
			 sts_fail_code ? sts_fail_code : "Throttling",
			 sts_fail_code ? "Not authorized to perform sts:AssumeRoleWithWebIdentity"
				       : "Rate exceeded");
		return;
	}
	const char *op = strstr(rq->body, "Action=AssumeRoleWithWebIdentity&") ? "AssumeRoleWithWebIdentity"
									       : "AssumeRole";
	iso_in(3600, exp, sizeof(exp));
	out->status = 200;
	snprintf(out->body, sizeof(out->body),
		 "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		 "<%sResult><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"
		 "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser><Credentials>"
		 "<AccessKeyId>ASIASTS%d</AccessKeyId><SecretAccessKey>sts-secret</SecretAccessKey>"
		 "<SessionToken>sts-token-%d</SessionToken><Expiration>%s</Expiration></Credentials></%sResult>"
		 "</%sResponse>",
		 op, op, n, n, exp, op, op);
}

static void test_sts(void)
{
	struct got g;
	char v[512];
	char *url = srv_url("");
	char *tok = write_file("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig");
	env_clear();
	env_set("AWS_ENDPOINT_URL_STS", url);
	env_set("AWS_REGION", "eu-west-1");

	/* Web identity: unsigned, token file content sent. */
	srv_use(sts_handler);
	fetch_once("aws-web-identity",
		   KV("role_arn", "arn:aws:iam::123456789012:role/web", "token_file", tok,
		      "role_session_name", "tb-sess"),
		   &g);
	CHECK_STR(g.akid, "ASIASTS0");
	CHECK_STR(g.token, "sts-token-0");
	pthread_mutex_lock(&srv.mu);
	CHECK_STR(srv.reqs[0].method, "POST");
	CHECK_STR(srv.reqs[0].path, "/");
	CHECK_STR(srv.reqs[0].body,
		  "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=tb-sess"
		  "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fweb"
		  "&WebIdentityToken=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig");
	CHECK(!hdr(&srv.reqs[0], "Authorization", v, sizeof(v)));
	CHECK(hdr(&srv.reqs[0], "Content-Type", v, sizeof(v)) &&
	      strcmp(v, "application/x-www-form-urlencoded; charset=utf-8") == 0);
	pthread_mutex_unlock(&srv.mu);

	/* Throttling is retried (legacy schedule). */
	sts_throttle = 1;
	srv_use(sts_handler);
	fetch_once("aws-web-identity",
		   KV("role_arn", "arn:aws:iam::123456789012:role/web", "token_file", tok), &g);
	CHECK_STR(g.akid, "ASIASTS1");
	CHECK(srv_count() == 2);
	sts_throttle = 0;

	/* AccessDenied is not. */
	sts_fail_code = "AccessDenied";
	srv_use(sts_handler);
	fetch_once("aws-web-identity",
		   KV("role_arn", "arn:aws:iam::123456789012:role/web", "token_file", tok), &g);
	CHECK_STR(g.err, "STS AssumeRoleWithWebIdentity failed: AccessDenied: Not authorized to perform "
			 "sts:AssumeRoleWithWebIdentity");
	CHECK(srv_count() == 1);
	sts_fail_code = NULL;

	/* A missing token file names the file. */
	fetch_once("aws-web-identity",
		   KV("role_arn", "arn:aws:iam::123456789012:role/web", "token_file", "/nonexistent/jwt"), &g);
	CHECK(strstr(g.err, "cannot read the web identity token file /nonexistent/jwt") == g.err);

	/* AssumeRole signed with environment keys, session token included. */
	env_set("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
	env_set("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	env_set("AWS_SESSION_TOKEN", "src-session");
	srv_use(sts_handler);
	fetch_once("aws-assume-role",
		   KV("role_arn", "arn:aws:iam::123456789012:role/top", "external_id", "ext",
		      "duration_seconds", "1200", "role_session_name", "s1"),
		   &g);
	CHECK_STR(g.akid, "ASIASTS0");
	pthread_mutex_lock(&srv.mu);
	CHECK_STR(
		srv.reqs[0].body,
		"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1"
		"&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftop&ExternalId=ext&DurationSeconds=1200");
	CHECK(hdr(&srv.reqs[0], "Authorization", v, sizeof(v)) &&
	      strncmp(v, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) == 0 &&
	      strstr(v, "/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
			"x-amz-security-token, Signature=") != NULL);
	CHECK(hdr(&srv.reqs[0], "X-Amz-Security-Token", v, sizeof(v)) && strcmp(v, "src-session") == 0);
	CHECK(hdr(&srv.reqs[0], "X-Amz-Date", v, sizeof(v)) && strlen(v) == 16);
	char host[64];
	snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
	CHECK(hdr(&srv.reqs[0], "Host", v, sizeof(v)) && strcmp(v, host) == 0);
	pthread_mutex_unlock(&srv.mu);

	/* A role chain from the files: web identity, then two roles (innermost first). */
	char *cfg = xasprintf(
		"[profile top]\nrole_arn = arn:aws:iam::123456789012:role/top\nsource_profile = mid\n"
		"[profile mid]\nrole_arn = arn:aws:iam::123456789012:role/mid\nsource_profile = web\n"
		"[profile web]\nrole_arn = arn:aws:iam::123456789012:role/web\n"
		"web_identity_token_file = %s\n",
		tok);
	char *cfgp = write_file("chaincfg", cfg);
	env_clear();
	env_set("AWS_ENDPOINT_URL_STS", url);
	env_set("AWS_CONFIG_FILE", cfgp);
	env_set("AWS_PROFILE", "top");
	srv_use(sts_handler);
	fetch_once("aws-default", NULL, &g);
	CHECK_STR(g.akid, "ASIASTS2");
	CHECK(srv_count() == 3);
	pthread_mutex_lock(&srv.mu);
	CHECK(strstr(srv.reqs[0].body, "Action=AssumeRoleWithWebIdentity&") != NULL);
	CHECK(strstr(srv.reqs[1].body, "role%2Fmid") && hdr(&srv.reqs[1], "Authorization", v, sizeof(v)) &&
	      strstr(v, "Credential=ASIASTS0/") && strstr(v, "/us-east-1/sts/"));
	CHECK(hdr(&srv.reqs[1], "X-Amz-Security-Token", v, sizeof(v)) && strcmp(v, "sts-token-0") == 0);
	CHECK(strstr(srv.reqs[2].body, "role%2Ftop") && hdr(&srv.reqs[2], "Authorization", v, sizeof(v)) &&
	      strstr(v, "Credential=ASIASTS1/"));
	pthread_mutex_unlock(&srv.mu);
	free(cfg);
	free(cfgp);
	free(tok);
	free(url);
}

/* ---------- credential_process ---------- */

static void test_process(void)
{
	struct got g;
	char *ok = write_file("ok.sh",
			      "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
			      "\"SecretAccessKey\": \"s\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n");
	char *bad = write_file("bad.sh", "#!/bin/sh\necho 'boom: no session' >&2\necho second >&2\nexit 3\n");
	char *junk = write_file("junk.sh", "#!/bin/sh\necho '{\"Version\": 2}'\n");
	chmod(ok, 0700);
	chmod(bad, 0700);
	chmod(junk, 0700);
	env_clear();
	fetch_once("aws-process", KV("command", ok), &g);
	CHECK_STR(g.akid, "AKIDPROC");
	CHECK(g.exp == INT64_C(4070908800));
	fetch_once("aws-process", KV("command", bad), &g);
	CHECK_STR(g.err, "credential_process exited with 3: boom: no session");
	fetch_once("aws-process", KV("command", junk), &g);
	CHECK_STR(g.err, "credential_process output: unsupported Version 2 (expected 1)");
	fetch_once("aws-process", KV("command", "/nonexistent/creds-helper"), &g);
	CHECK(strstr(g.err, "credential_process could not start \"/nonexistent/creds-helper\"") == g.err);
	free(ok);
	free(bad);
	free(junk);
}

/* ---------- refresh through the shared cache ---------- */

static int refresh_ttl;

static void refresh_handler(const struct srv_req *rq, int n, struct srv_resp *out)
{
	char exp[32];
	iso_in(refresh_ttl, exp, sizeof(exp));
	out->status = 200;
	snprintf(out->body, sizeof(out->body),
		 "{\"AccessKeyId\":\"ASIAREF%d\",\"SecretAccessKey\":\"s\","
		 "\"Token\":\"t\",\"Expiration\":\"%s\"}",
		 n, exp);
}

static void test_refresh(void)
{
	struct got g;
	char *url = srv_url("/creds");
	env_clear();
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	srv_use(refresh_handler);
	/* Already expired: a clear error, and nothing cached. */
	refresh_ttl = -120;
	fetch_once("aws-container", NULL, &g);
	CHECK(strstr(g.err, "the AWS credentials from container have already expired (Expiration ") == g.err);

	/* 4 s credentials: advisory from 2 s of age (served, refreshed in the background). */
	refresh_ttl = 4;
	srv_use(refresh_handler);
	struct credential *c = cred_new("aws-container", NULL);
	CHECK(aws_family.validate(c, err, sizeof(err)));
	memset(&g, 0, sizeof(g));
	CHECK(aws_family.get_aws(c, on_creds, &g) != NULL);
	run_until(&g, 1);
	CHECK_STR(g.akid, "ASIAREF0");
	CHECK(aws_family.get_aws(c, on_creds, &g) == NULL);
	CHECK(srv_count() == 1);
	sleep(2);
	memset(&g, 0, sizeof(g));
	CHECK(aws_family.get_aws(c, on_creds, &g) == NULL);
	CHECK_STR(g.akid, "ASIAREF0");
	/* The background refresh lands without anyone waiting. */
	for (int i = 0; i < 300 && strcmp(g.akid, "ASIAREF1") != 0; i++) {
		usleep(10000);
		event_base_loop(base, EVLOOP_NONBLOCK);
		memset(&g, 0, sizeof(g));
		CHECK(aws_family.get_aws(c, on_creds, &g) == NULL);
	}
	CHECK_STR(g.akid, "ASIAREF1");
	CHECK(srv_count() == 2);
	cred_free(c);

	/* A waiter that is cancelled is never called; the other one is. */
	refresh_ttl = 3600;
	srv_use(refresh_handler);
	c = cred_new("aws-container", NULL);
	CHECK(aws_family.validate(c, err, sizeof(err)));
	struct got g2;
	memset(&g2, 0, sizeof(g2));
	memset(&g, 0, sizeof(g));
	struct provider_op *op = aws_family.get_aws(c, on_creds, &g2);
	CHECK(op != NULL);
	CHECK(aws_family.get_aws(c, on_creds, &g) != NULL);
	aws_family.cancel(op);
	run_until(&g, 1);
	CHECK(g2.calls == 0);
	CHECK_STR(g.akid, "ASIAREF0");
	CHECK(srv_count() == 1);
	cred_free(c);

	/* Freeing the state with a fetch and a waiter under way. */
	c = cred_new("aws-container", NULL);
	CHECK(aws_family.validate(c, err, sizeof(err)));
	memset(&g, 0, sizeof(g));
	CHECK(aws_family.get_aws(c, on_creds, &g) != NULL);
	cred_free(c);
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(g.calls == 0);
	free(url);
}

/* The test hook scales the engine's own waits; a bad value is refused; unset is 1. */
static void test_token_clock(void)
{
	char why[200] = "";
	unsetenv(TOKEN_TIME_SCALE_ENV);
	CHECK(token_clock_init(why, sizeof(why)) && token_clock_scale() == 1);
	CHECK(token_clock_wait_ms(30000) == 30000 && token_clock_wait_s(30) == 30);
#ifndef NDEBUG
	setenv(TOKEN_TIME_SCALE_ENV, "10", 1);
	CHECK(token_clock_init(why, sizeof(why)) && token_clock_scale() == 10);
	CHECK(token_clock_wait_ms(30000) == 3000 && token_clock_wait_s(30) == 3 && token_clock_wait_s(5) == 1);
	static const char *const bad[] = { "0", "101", "x", "3s", "-2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv(TOKEN_TIME_SCALE_ENV, bad[i], 1);
		why[0] = '\0';
		CHECK(!token_clock_init(why, sizeof(why)) && strstr(why, TOKEN_TIME_SCALE_ENV) != NULL);
	}
#endif
	unsetenv(TOKEN_TIME_SCALE_ENV);
	CHECK(token_clock_init(why, sizeof(why)) && token_clock_scale() == 1);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tb_aws_chain_XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	log_setup(0, true, true);
	aws_env_source.get = fake_get;
	aws_env_source.all = fake_all;
	test_validate();
	test_chain_env();
	test_chain_files();
	test_chain_web_container_imds();
	test_decide();
	test_retry_rules();
	test_urls();

	base = event_base_new();
	char e[200];
	CHECK(token_engine_init(base, e, sizeof(e)));
	CHECK(srv_start());
	test_imds();
	test_container();
	test_sts();
	test_process();
	test_refresh();
	test_token_clock();
	srv_stop();
	token_engine_shutdown();
	event_base_free(base);
	env_clear();
	free(env_kv[0]);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return unit_finish("test_aws_chain");
}
