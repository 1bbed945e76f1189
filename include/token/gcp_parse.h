/* Google Cloud pieces without I/O, so they can be unit-tested and fuzzed:
 * credential files (spec §3.3), the JWT-bearer assertion (§3.3.1), request
 * bodies, token responses (§3.3, §3.4, §4), the retry rules of §3.4/§3.5
 * and IAM database user names (§3.6). Secrets returned are wiped by the
 * caller (secret_free / gcp_file_clear). */
#ifndef TB_TOKEN_GCP_PARSE_H
#define TB_TOKEN_GCP_PARSE_H
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GCP_TOKEN_URI "https://oauth2.googleapis.com/token"
/* The assertion's audience, whatever token_uri says (§3.3.1). */
#define GCP_JWT_AUDIENCE "https://oauth2.googleapis.com/token"
#define GCP_IAM_ENDPOINT "https://iamcredentials.googleapis.com"
#define GCP_CLOUD_PLATFORM "https://www.googleapis.com/auth/cloud-platform"
#define GCP_JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define GCP_ASSERTION_LIFETIME 3600
#define GCP_MAX_RESPONSE (128 * 1024)
#define GCP_MAX_FILE (64 * 1024)
#define GCP_MAX_DELEGATES 16

enum gcp_file_type {
	GCP_FILE_SERVICE_ACCOUNT,
	GCP_FILE_AUTHORIZED_USER,
	GCP_FILE_IMPERSONATED,
};

/* A credential file's fields (owned). For an impersonated file, source
 * holds the embedded source_credentials. */
struct gcp_file {
	enum gcp_file_type type;
	char *client_email, *private_key_id, *token_uri;
	EVP_PKEY *key;                                   /* service_account */
	char *client_id, *client_secret, *refresh_token; /* authorized_user */
	char *quota_project;
	char *target;   /* impersonated: the target principal */
	char *iam_base; /* impersonated: scheme://host of the URL */
	char *delegates[GCP_MAX_DELEGATES];
	size_t ndelegates;
	struct gcp_file *source;
};

/* Parses a credential file's JSON; false with err (no secret in it). */
bool gcp_file_parse(const char *json, size_t len, struct gcp_file *out, char *err, size_t errlen);
void gcp_file_clear(struct gcp_file *f);

/* The JWT-bearer assertion of §3.3.1 for scope at now. */
char *gcp_jwt_assertion(EVP_PKEY *key, const char *kid, const char *email, const char *scope, int64_t now);
/* Form bodies; *len set. */
char *gcp_jwt_grant_body(const char *assertion, size_t *len);
char *gcp_refresh_body(const char *client_id, const char *secret, const char *refresh_token,
		       const char *scope, size_t *len);
/* The generateAccessToken URL and JSON body (§3.3.3); scope space-separated. */
char *gcp_impersonate_url(const char *base, const char *target);
char *gcp_impersonate_body(char *const *delegates, size_t n, const char *scope, int64_t lifetime, size_t *len);
/* The metadata token URL for host[:port] and a space-separated scope. */
char *gcp_metadata_token_url(const char *host, const char *scope);

struct gcp_token {
	char *access_token;  /* wiped by gcp_token_clear */
	int64_t expires_at;  /* epoch seconds */
	char *refresh_token; /* a replacement refresh token, or NULL */
};
void gcp_token_clear(struct gcp_token *t);
/* OAuth / metadata answers: access_token + expires_in (number or string). */
bool gcp_parse_oauth(const char *body, size_t len, int64_t now, struct gcp_token *out, char *err,
		     size_t errlen);
/* IAM Credentials: accessToken + expireTime "YYYY-MM-DDTHH:MM:SSZ". */
bool gcp_parse_iam(const char *body, size_t len, struct gcp_token *out, char *err, size_t errlen);

enum gcp_retry {
	GCP_RETRY_TOKEN,    /* §3.5: 3 attempts */
	GCP_RETRY_METADATA, /* §3.4: 5 attempts, transport errors too */
	GCP_RETRY_NONE,     /* IAM Credentials */
};
/* Delay before the next attempt after attempt (1-based) got status (0 =
 * transport failure) and body, or -1: no retry. jitter01 in [0,1). */
int64_t gcp_retry_delay_ms(enum gcp_retry policy, int attempt, long status, const char *body, size_t len,
			   double jitter01);

/* §3.6: a service account's e-mail without ".gserviceaccount.com". */
char *gcp_db_user(const char *email);
#endif
