/* RDS and DSQL token minting on top of sigv4_presign. */
#include "token/aws_token.h"
#include "token/sigv4.h"
#include "core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HOST_LEN 253
#define MAX_USER_LEN 1024
#define DSQL_CLUSTER_ID_LEN 26

static char *lower_dup(const char *s, size_t n)
{
	char *p = xstrndup(s, n);

	for (char *q = p; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return p;
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

/* A region label: [a-z0-9-], at least one '-', not at either end. */
static bool region_label_ok(const char *s, size_t n)
{
	bool dash = false;

	if (n == 0 || n > 64 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '-')
			dash = true;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return dash;
}

/* The label that ends at s[end) (exclusive), i.e. after the previous dot. */
static size_t label_start(const char *s, size_t end)
{
	size_t i = end;

	while (i > 0 && s[i - 1] != '.')
		i--;
	return i;
}

char *aws_rds_region_from_host(const char *host)
{
	static const char *const suffixes[] = { ".rds.amazonaws.com", ".rds.amazonaws.com.cn" };
	size_t n = host ? strlen(host) : 0;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (!ends_with_ci(host, n, suffixes[i]))
			continue;
		size_t end = n - strlen(suffixes[i]);
		size_t start = label_start(host, end);
		/* At least one label (the instance, cluster or proxy) before the region. */
		if (start < 2 || !region_label_ok(host + start, end - start))
			return NULL;
		return lower_dup(host + start, end - start);
	}
	return NULL;
}

char *aws_dsql_region_from_host(const char *host)
{
	/* \.dsql[^.]*\.([^.]+)\.on\.aws$ */
	static const char suffix[] = ".on.aws";
	size_t n = host ? strlen(host) : 0;

	if (!ends_with_ci(host, n, suffix))
		return NULL;
	size_t end = n - (sizeof(suffix) - 1);
	size_t start = label_start(host, end);
	if (start < 2 || end == start)
		return NULL;
	size_t prev = label_start(host, start - 1);
	if (prev == 0 || strncasecmp(host + prev, "dsql", 4) != 0)
		return NULL;
	if (!region_label_ok(host + start, end - start))
		return NULL;
	return lower_dup(host + start, end - start);
}

bool aws_dsql_is_cluster_id(const char *host)
{
	if (!host || strlen(host) != DSQL_CLUSTER_ID_LEN)
		return false;
	for (const char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static bool host_ok(const char *host, char *err, size_t errlen)
{
	size_t n = host ? strlen(host) : 0;

	if (n == 0) {
		err_set(err, errlen, "no host given");
		return false;
	}
	if (n > MAX_HOST_LEN) {
		err_set(err, errlen, "host name too long");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\' ||
		    c == '%' || c == '"') {
			err_set(err, errlen, "host \"%.*s\" contains an invalid character",
				(int)(n > 80 ? 80 : n), host);
			return false;
		}
	}
	return true;
}

static bool explicit_region_ok(const char *region, char *err, size_t errlen)
{
	if (!region_label_ok(region, strlen(region))) {
		err_set(err, errlen, "invalid AWS region \"%.64s\"", region);
		return false;
	}
	return true;
}

/* The signing region: region= when set, else what the host name says, else
 * env_region (the environment's, when the caller allows one). */
static char *target_region(const struct aws_db_target *t, char *(*from_host)(const char *host),
			   const char *env_region, char *err, size_t errlen)
{
	if (!t || !host_ok(t->host, err, errlen))
		return NULL;
	if (t->region && *t->region) {
		if (!explicit_region_ok(t->region, err, errlen))
			return NULL;
		return lower_dup(t->region, strlen(t->region));
	}
	char *r = from_host(t->host);
	if (r)
		return r;
	if (env_region && *env_region) {
		if (!region_label_ok(env_region, strlen(env_region))) {
			err_set(err, errlen, "invalid AWS region \"%.64s\" in the environment", env_region);
			return NULL;
		}
		return lower_dup(env_region, strlen(env_region));
	}
	err_set(err, errlen, "cannot derive the AWS region from host \"%s\"; set region=", t->host);
	return NULL;
}

char *aws_rds_region(const struct aws_db_target *t, char *err, size_t errlen)
{
	return target_region(t, aws_rds_region_from_host, NULL, err, errlen);
}

char *aws_dsql_region(const struct aws_db_target *t, char *err, size_t errlen)
{
	return target_region(t, aws_dsql_region_from_host, t ? t->env_region : NULL, err, errlen);
}

char *aws_dsql_host(const struct aws_db_target *t, char *err, size_t errlen)
{
	char *region, *host;

	if (!t || !host_ok(t->host, err, errlen))
		return NULL;
	if (!aws_dsql_is_cluster_id(t->host))
		return xstrdup(t->host);
	region = aws_dsql_region(t, err, errlen);
	if (!region)
		return NULL;
	host = xasprintf("%s.dsql.%s.on.aws", t->host, region);
	free(region);
	return host;
}

static bool creds_ok(const struct aws_credentials *c, char *err, size_t errlen)
{
	if (!c || !c->access_key_id || !*c->access_key_id || !c->secret_access_key || !*c->secret_access_key) {
		err_set(err, errlen, "no AWS credentials");
		return false;
	}
	return true;
}

static bool user_ok(const char *user, char *err, size_t errlen)
{
	if (!user || !*user) {
		err_set(err, errlen, "no database user given");
		return false;
	}
	if (strlen(user) > MAX_USER_LEN) {
		err_set(err, errlen, "database user name too long");
		return false;
	}
	return true;
}

static int64_t token_expiry(const struct aws_credentials *c, int64_t now, int64_t seconds)
{
	int64_t exp = now + seconds;

	return c->expiration > 0 && c->expiration < exp ? c->expiration : exp;
}

static char *presign(const struct aws_credentials *c, const char *region, const char *service,
		     const char *host_header, const struct sigv4_param *params, size_t n, int64_t seconds,
		     int64_t now, char *err, size_t errlen)
{
	struct sigv4_signer s = {
		.access_key_id = c->access_key_id,
		.secret_access_key = c->secret_access_key,
		.session_token = c->session_token,
		.region = region,
		.service = service,
		.now = now,
	};

	return sigv4_presign(&s, host_header, "/", params, n, seconds, NULL, err, errlen);
}

char *aws_rds_token(const struct aws_credentials *creds, const struct aws_db_target *t, int64_t now,
		    int64_t *expires_at, char *err, size_t errlen)
{
	char *region, *host_header, *token;

	if (!t) {
		err_set(err, errlen, "no target");
		return NULL;
	}
	if (!creds_ok(creds, err, errlen) || !user_ok(t->user, err, errlen))
		return NULL;
	if (t->port < 1 || t->port > 65535) {
		err_set(err, errlen, "invalid port %d", t->port);
		return NULL;
	}
	region = aws_rds_region(t, err, errlen);
	if (!region)
		return NULL;
	/* An IPv6 literal needs brackets before ":port". */
	if (strchr(t->host, ':') && t->host[0] != '[')
		host_header = xasprintf("[%s]:%d", t->host, t->port);
	else
		host_header = xasprintf("%s:%d", t->host, t->port);

	const struct sigv4_param params[] = {
		{ "Action", "connect" },
		{ "DBUser", t->user },
	};
	token = presign(creds, region, "rds-db", host_header, params, 2, AWS_RDS_TOKEN_SECONDS, now, err,
			errlen);
	if (token && expires_at)
		*expires_at = token_expiry(creds, now, AWS_RDS_TOKEN_SECONDS);
	free(host_header);
	free(region);
	return token;
}

char *aws_dsql_token(const struct aws_credentials *creds, const struct aws_db_target *t, int64_t now,
		     int64_t *expires_at, char *err, size_t errlen)
{
	int64_t seconds;
	char *region, *host, *token;

	if (!t) {
		err_set(err, errlen, "no target");
		return NULL;
	}
	if (!creds_ok(creds, err, errlen) || !user_ok(t->user, err, errlen))
		return NULL;
	seconds = t->duration ? t->duration : AWS_DSQL_TOKEN_DEFAULT_SECONDS;
	if (seconds < 1 || seconds > AWS_DSQL_TOKEN_MAX_SECONDS) {
		err_set(err, errlen, "DSQL token duration %lld s is outside 1..%d s", (long long)t->duration,
			AWS_DSQL_TOKEN_MAX_SECONDS);
		return NULL;
	}
	region = aws_dsql_region(t, err, errlen);
	if (!region)
		return NULL;
	host = aws_dsql_host(t, err, errlen);
	if (!host) {
		free(region);
		return NULL;
	}
	/* All AWS DSQL connectors: exactly "admin" gets the admin action. */
	const struct sigv4_param params[] = {
		{ "Action", strcmp(t->user, "admin") == 0 ? "DbConnectAdmin" : "DbConnect" },
	};
	token = presign(creds, region, "dsql", host, params, 1, seconds, now, err, errlen);
	if (token && expires_at)
		*expires_at = token_expiry(creds, now, seconds);
	free(host);
	free(region);
	return token;
}
