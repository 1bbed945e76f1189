/* RDS / Aurora / RDS Proxy IAM tokens and Aurora DSQL tokens
 * (spec/cloud-tokens.md §1.7, §1.8): SigV4 presigned URLs without a scheme,
 * used as the PostgreSQL password. Pure: time and environment values are
 * inputs. Returned tokens are malloc'd; free them with secret_free. */
#ifndef TB_TOKEN_AWS_TOKEN_H
#define TB_TOKEN_AWS_TOKEN_H
#include "token/aws_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RDS tokens always live 15 minutes (fixed by the SDKs). */
#define AWS_RDS_TOKEN_SECONDS 900
#define AWS_DSQL_TOKEN_DEFAULT_SECONDS 900
#define AWS_DSQL_TOKEN_MAX_SECONDS 604800

/* Where a token is for. Strings are borrowed. */
struct aws_db_target {
	const char *host;       /* as configured; RDS endpoint, DSQL endpoint or bare DSQL cluster id */
	int port;               /* RDS: 1..65535 (always signed); DSQL: ignored */
	const char *user;       /* database user, exactly as in the StartupMessage */
	const char *region;     /* explicit setting, or NULL to derive */
	const char *env_region; /* DSQL only: AWS_REGION, else AWS_DEFAULT_REGION, or NULL */
	int64_t duration;       /* DSQL only: seconds, 0 = AWS_DSQL_TOKEN_DEFAULT_SECONDS */
};

/* Region of "<...>.<region>.rds.amazonaws.com[.cn]" (the label right before
 * ".rds."), lower-cased; NULL when the name has no such form. malloc'd. */
char *aws_rds_region_from_host(const char *host);
/* Region of "<id>.dsql<suffix>.<region>.on.aws", lower-cased; NULL otherwise. */
char *aws_dsql_region_from_host(const char *host);
/* A bare DSQL cluster id: 26 characters [a-z0-9], no dots (the Go connector's rule). */
bool aws_dsql_is_cluster_id(const char *host);

/* RDS signing region: t->region, else derived from t->host, else an error
 * ("cannot derive the AWS region from host \"x\"; set region="). malloc'd. */
char *aws_rds_region(const struct aws_db_target *t, char *err, size_t errlen);
/* DSQL signing region: t->region, else from the host name, else t->env_region. */
char *aws_dsql_region(const struct aws_db_target *t, char *err, size_t errlen);
/* The DSQL host to connect to and sign: a bare cluster id becomes
 * "<id>.dsql.<region>.on.aws" (region from aws_dsql_region); any other name
 * is returned as configured. malloc'd. */
char *aws_dsql_host(const struct aws_db_target *t, char *err, size_t errlen);

/* RDS IAM token (§1.7): service rds-db, Action=connect&DBUser=<user>,
 * host "<host>:<port>", 900 s. *expires_at (may be NULL) = min(now + 900,
 * credential expiration). NULL with err on invalid input. */
char *aws_rds_token(const struct aws_credentials *creds, const struct aws_db_target *t, int64_t now,
		    int64_t *expires_at, char *err, size_t errlen);

/* DSQL token (§1.8): service dsql, Action=DbConnectAdmin when user is exactly
 * "admin", else Action=DbConnect; host without port; duration 1..604800 s
 * (0 = 900). *expires_at as for RDS. */
char *aws_dsql_token(const struct aws_credentials *creds, const struct aws_db_target *t, int64_t now,
		     int64_t *expires_at, char *err, size_t errlen);
#endif
