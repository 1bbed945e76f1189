/* The table of upstream login methods (see token/method.h). Each row says
 * which credential family it needs, what the token is bound to, how it is
 * produced and what it implies for the connection, so the token cache and
 * the pool treat every cloud the same way. */
#include "token/method.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/util.h"
#include "token/aws_token.h"
#include "token/azure_parse.h"
#include "token/alloydb.h"
#include "token/connector.h"
#include "token/gcp.h"
#include "token/provider.h"
#include "token/token.h"

#define ENTRA_SCOPE "https://ossrdbms-aad.database.windows.net/.default"
#define CLOUDSQL_LOGIN_SCOPE "https://www.googleapis.com/auth/sqlservice.login"
#define ALLOYDB_LOGIN_SCOPE "https://www.googleapis.com/auth/alloydb.login"
#define CLOUD_PLATFORM_SCOPE "https://www.googleapis.com/auth/cloud-platform"
/* Locally minted SigV4 tokens: re-mint when less than 2 minutes remain. */
#define AWS_TOKEN_REFRESH_S 120
#define AWS_TOKEN_HARD_S 30
/* Aurora DSQL closes any connection at 60 minutes; stay well clear of it. */
#define DSQL_MAX_LIFETIME (3300 * USEC_PER_SEC)

static int alias_port(const struct db_alias *a)
{
	return a->port > 0 ? a->port : 5432;
}

/* ---- AWS ---- */

static bool check_aws_region(const struct db_alias *a, bool dsql, char *why, size_t whylen)
{
	struct aws_db_target t = {
		.host = a->host, .port = alias_port(a), .region = a->region, .env_region = aws_env_region()
	};
	err_set(why, whylen, "a host is required");
	char *region = !a->host ? NULL
		       : dsql   ? aws_dsql_region(&t, why, whylen)
				: aws_rds_region(&t, why, whylen);
	free(region);
	return region != NULL;
}

static bool check_rds(const struct db_alias *a, char *why, size_t whylen)
{
	return check_aws_region(a, false, why, whylen);
}

static bool check_dsql(const struct db_alias *a, char *why, size_t whylen)
{
	return check_aws_region(a, true, why, whylen);
}

/* A bare DSQL cluster id expands to its endpoint; DSQL's defaults are user
 * admin, database postgres and verify-full. */
static void dsql_endpoint(const struct db_alias *a, struct method_endpoint *ep)
{
	struct aws_db_target t = { .host = a->host, .region = a->region, .env_region = aws_env_region() };
	char err[200];
	ep->host = a->host ? aws_dsql_host(&t, err, sizeof(err)) : NULL;
	ep->default_user = xstrdup("admin");
	ep->default_dbname = "postgres";
	ep->default_sslmode = TLS_MODE_VERIFY_FULL;
}

/* ---- Google ---- */

static const char *admin_endpoint(const struct db_alias *a)
{
	const struct tb_config *cfg = token_engine_config();
	if (a->auth == UPSTREAM_AUTH_ALLOYDB)
		return a->alloydb_api_endpoint ? a->alloydb_api_endpoint
		       : cfg                   ? cfg->alloydb_api_endpoint
					       : NULL;
	return a->sqladmin_api_endpoint ? a->sqladmin_api_endpoint : cfg ? cfg->sqladmin_api_endpoint : NULL;
}

/* Connector mode needs a well-formed instance name and an Admin API that is
 * https (or loopback http, for stand-ins). */
static bool check_connector(const struct db_alias *a, char *why, size_t whylen)
{
	struct cloudsql_name n;
	struct alloydb_name an;
	bool adb = a->auth == UPSTREAM_AUTH_ALLOYDB;
	if (adb ? !alloydb_parse_name(a->instance, &an) : !cloudsql_parse_name(a->instance, &n)) {
		err_set(why, whylen, "instance=%s is not %s", a->instance,
			adb ? "an AlloyDB instance URI (projects/P/locations/R/clusters/C/instances/I)"
			    : "a Cloud SQL instance connection name (PROJECT:REGION:INSTANCE)");
		return false;
	}
	const char *api = adb ? a->alloydb_api_endpoint : a->sqladmin_api_endpoint;
	char *url = api ? azure_base_url(api, "https", true, why, whylen) : NULL;
	free(url);
	return !api || url;
}

/* Manual IAM login (token as password over TLS) needs the database's host. */
static bool check_gcp(const struct db_alias *a, char *why, size_t whylen)
{
	if (a->instance)
		return check_connector(a, why, whylen);
	if (a->host)
		return true;
	err_set(why, whylen, "auth=%s needs host= (the instance's address) or instance= (connector mode)",
		upstream_auth_name(a->auth));
	return false;
}

/* With no user=, the identity's e-mail names the IAM database user (§3.6);
 * the metadata server tells it only when asked, so the user comes after the
 * first token there. */
static void gcp_endpoint(const struct db_alias *a, struct method_endpoint *ep)
{
	if (upstream_method_uses_password(a) || a->user)
		return; /* a built-in database user, or a configured one: nothing to derive */
	const struct credential *c = token_engine_credential(a->credential);
	ep->default_user = gcp_db_user(gcp_credential_email(c));
	ep->user_after_token = !ep->default_user && gcp_credential_email_later(c);
}

static char *gcp_user_after_fetch(const struct db_alias *a, char *why, size_t whylen)
{
	const struct credential *c = token_engine_credential(a->credential);
	char *user = gcp_db_user(gcp_credential_email(c));
	if (!user)
		err_set(why, whylen,
			"the metadata server did not tell the service account's e-mail (%s); set user= "
			"on the alias",
			gcp_credential_email_error(c));
	return user;
}

static const struct upstream_method methods[] = {
	{
		.auth = UPSTREAM_AUTH_ENTRA,
		.label = "Entra",
		.family = CRED_FAMILY_AZURE,
		.family_types = "azure-*",
		.default_scope = ENTRA_SCOPE,
		.user_from_token = azure_token_username,
	},
	{
		.auth = UPSTREAM_AUTH_AWS_RDS,
		.label = "RDS IAM",
		.family = CRED_FAMILY_AWS,
		.family_types = "aws-*",
		.audience_is_host = true,
		.signs_port = true,
		.mint = aws_rds_token,
		.mint_refresh_s = AWS_TOKEN_REFRESH_S,
		.mint_hard_s = AWS_TOKEN_HARD_S,
		.check = check_rds,
	},
	{
		.auth = UPSTREAM_AUTH_AWS_DSQL,
		.label = "Aurora DSQL",
		.family = CRED_FAMILY_AWS,
		.family_types = "aws-*",
		.audience_is_host = true,
		.mint = aws_dsql_token,
		.mint_refresh_s = AWS_TOKEN_REFRESH_S,
		.mint_hard_s = AWS_TOKEN_HARD_S,
		.max_server_lifetime = DSQL_MAX_LIFETIME,
		.check = check_dsql,
		.endpoint = dsql_endpoint,
	},
	{
		.auth = UPSTREAM_AUTH_CLOUDSQL,
		.label = "IAM (Cloud SQL)",
		.family = CRED_FAMILY_GCP,
		.family_types = "gcp-*",
		.default_scope = CLOUDSQL_LOGIN_SCOPE,
		.check = check_gcp,
		.endpoint = gcp_endpoint,
		.user_after_fetch = gcp_user_after_fetch,
		.connect_start = cloudsql_connect_start,
		.connect_cancel = connector_connect_cancel,
	},
	{
		.auth = UPSTREAM_AUTH_ALLOYDB,
		.label = "IAM (AlloyDB)",
		.family = CRED_FAMILY_GCP,
		.family_types = "gcp-*",
		.default_scope = ALLOYDB_LOGIN_SCOPE,
		.check = check_gcp,
		.endpoint = gcp_endpoint,
		.user_after_fetch = gcp_user_after_fetch,
		.connector_token_scope = CLOUD_PLATFORM_SCOPE " " ALLOYDB_LOGIN_SCOPE,
		.connect_start = alloydb_connect_start,
		.connect_cancel = connector_connect_cancel,
	},
};

const struct upstream_method *upstream_method_of(enum upstream_auth auth)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].auth == auth)
			return &methods[i];
	return NULL;
}

void upstream_method_target(const struct db_alias *a, const char *alias_name, const char *user,
			    struct token_target *t)
{
	const struct upstream_method *m = upstream_method_of(a->auth);
	memset(t, 0, sizeof(*t));
	t->kind = a->auth;
	t->credential = a->credential;
	t->user = user;
	t->region = a->region;
	t->duration = a->token_duration > 0 ? a->token_duration / USEC_PER_SEC : 0;
	t->alias = alias_name;
	/* A token that names the identity, not the database user: an alias that
	 * learns its user from the token shares one entry for both purposes. */
	if (a->user_from_token || (m && m->user_after_fetch && !a->user))
		t->user = "";
	if (!m)
		return;
	t->audience = m->audience_is_host ? a->host : a->scope ? a->scope : m->default_scope;
	t->port = m->signs_port ? alias_port(a) : 0;
	if (a->instance && m->connect_start) {
		t->instance = a->instance;
		bool adb = a->auth == UPSTREAM_AUTH_ALLOYDB;
		/* The connectors' defaults: Cloud SQL public, AlloyDB private. */
		t->ip_type = a->ip_type >= 0 ? a->ip_type : adb ? CONNECTOR_IP_PRIVATE : CONNECTOR_IP_PUBLIC;
		t->auto_iam = a->enable_iam_auth;
		t->api_endpoint = admin_endpoint(a);
		t->port = a->port > 0 ? a->port : adb ? 5433 : 3307;
	}
}

bool upstream_method_uses_password(const struct db_alias *a)
{
	return a->auth == UPSTREAM_AUTH_PASSWORD || (a->instance && !a->enable_iam_auth);
}

void upstream_method_endpoint(const struct db_alias *a, struct method_endpoint *ep)
{
	const struct upstream_method *m = upstream_method_of(a->auth);
	memset(ep, 0, sizeof(*ep));
	ep->default_sslmode = -1;
	if (m && m->endpoint)
		m->endpoint(a, ep);
}
