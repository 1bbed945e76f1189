/* The pure half of the Microsoft Entra ID token sources (spec/cloud-tokens.md
 * §2): request URLs and bodies, token responses and error bodies (jansson,
 * against a table of expected fields), the retry tables of §2.4 and §2.7.1,
 * the Azure CLI's answers, the client-assertion JWT of §2.5 and the
 * user-name derivation of §2.10. No I/O and no logging; error text names the
 * source and the cause, never a token or a secret. */
#ifndef TB_TOKEN_AZURE_PARSE_H
#define TB_TOKEN_AZURE_PARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AZURE_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define AZURE_DEFAULT_IMDS "http://169.254.169.254"
#define AZURE_JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
/* Longest access token accepted, and largest response body read. */
#define AZURE_MAX_TOKEN (64 * 1024)
#define AZURE_MAX_RESPONSE (128 * 1024)
/* Client assertions live this long (MSAL, §2.5). */
#define AZURE_ASSERTION_LIFETIME 600
/* Retry-After values above this make us give up instead of waiting. */
#define AZURE_MAX_RETRY_AFTER_MS 60000

/* What a source reports (§2.2): unavailable moves a chain on, failed stops it. */
enum azure_outcome {
	AZURE_OK = 0,
	AZURE_UNAVAILABLE,
	AZURE_FAILED,
};

/* A token and its times (epoch seconds; refresh_at 0 = no hint). */
struct azure_token {
	char *token; /* malloc'd; azure_token_clear wipes it */
	size_t len;
	int64_t expires_at;
	int64_t refresh_at;
};
void azure_token_clear(struct azure_token *t);

/* ---- requests ---- */

/* Tenant ids go into URL paths: [A-Za-z0-9.-]+ (azure-identity's rule). */
bool azure_tenant_ok(const char *tenant);
/* The v2 scope (".../.default" appended when missing) and the v1 resource
 * (the scope without "/.default"). malloc'd. */
char *azure_scope_v2(const char *scope);
char *azure_scope_resource(const char *scope);
/* Normalise a base URL: a bare host gets default_scheme ("https" or "http"),
 * trailing slashes go. With https_only, http:// is accepted for loopback
 * hosts only (tests). malloc'd, or NULL with err. */
char *azure_base_url(const char *value, const char *default_scheme, bool https_only, char *err, size_t errlen);
/* <authority>/<tenant>/oauth2/v2.0/token */
char *azure_token_endpoint(const char *authority, const char *tenant);

/* Client-credentials form bodies (§2.4, §2.5, §2.6). credential is the
 * secret, the signed assertion, or the federated token. Wipe the result. */
enum azure_grant {
	AZURE_GRANT_SECRET,
	AZURE_GRANT_CERTIFICATE,
	AZURE_GRANT_FEDERATED,
};
char *azure_token_body(enum azure_grant g, const char *client_id, const char *scope, const char *credential,
		       size_t *len);

/* Managed-identity GETs: IMDS (§2.7.1, base is the IMDS root) and App
 * Service (§2.7.2, base is IDENTITY_ENDPOINT itself). */
enum azure_mi_host {
	AZURE_MI_IMDS,
	AZURE_MI_APP_SERVICE,
};
enum azure_mi_id {
	AZURE_MI_SYSTEM = 0,
	AZURE_MI_CLIENT_ID,
	AZURE_MI_OBJECT_ID,
	AZURE_MI_RESOURCE_ID,
};
char *azure_mi_url(enum azure_mi_host host, const char *base, const char *resource, enum azure_mi_id kind,
		   const char *id);

/* az account get-access-token --output json --resource R [--tenant T]
 * [--subscription S]; argv points into the arguments, NULL-terminated. */
#define AZURE_CLI_ARGV_MAX 12
void azure_cli_argv(const char *resource, const char *tenant, const char *subscription,
		    const char *argv[AZURE_CLI_ARGV_MAX]);

/* ---- responses ---- */

enum azure_response {
	AZURE_RESP_ENTRA,            /* v2 token endpoint (§2.4) */
	AZURE_RESP_MANAGED_IDENTITY, /* IMDS, App Service (§2.7) */
	AZURE_RESP_CLI,              /* az account get-access-token (§2.8) */
};
/* A 2xx body. request_time is when the request was sent (expires_in and
 * refresh_in count from it). expires_in and expires_on may be numbers or
 * strings, expires_on epoch or ISO 8601; with both, the earlier wins (§2.11).
 * Managed identity without refresh_in: refresh at half-life when the
 * lifetime is at least 2 h (§2.9). err starts with who. */
bool azure_parse_token(enum azure_response kind, const char *who, const char *body, size_t len,
		       int64_t request_time, struct azure_token *out, char *err, size_t errlen);
/* Epoch seconds from "1893459599", "2030-01-01T06:00:00Z",
 * "2030-01-01T06:00:00.123+02:00", "06/20/2019 02:57:58 +00:00",
 * "1/16/2020 5:24:12 AM +00:00". A time without zone is taken as UTC. */
bool azure_parse_time(const char *s, int64_t *out);
/* The CLI's expiresOn: a naive local time "2030-01-01 06:00:00.000000". */
bool azure_parse_local_time(const char *s, int64_t *out);

/* "<who> answered <status> <error> (<description>)" from an error body
 * (Entra/IMDS {"error","error_description"}, App Service
 * {"statusCode","message"}, {"error":{"code","message"}}), or a cleaned first
 * line of a non-JSON body. */
void azure_describe_error(const char *who, long status, const char *body, size_t len, char *err,
			  size_t errlen);
/* IMDS non-2xx (§2.7.1): a 400 (no such identity here, as azure-identity
 * reads it) or a 403 saying the network is unreachable is unavailable;
 * anything else is a failure. */
enum azure_outcome azure_imds_outcome(long status, const char *body, size_t len);

/* ---- retries ---- */

enum azure_retry {
	AZURE_RETRY_NONE, /* availability probe */
	AZURE_RETRY_CORE, /* azure-core RetryPolicy (§2.4): Entra, App Service */
	AZURE_RETRY_IMDS, /* §2.7.1 */
};
/* After attempt number attempt (1 = the first request) ended with status
 * (0 = transport failure), elapsed_ms after the first request started, with
 * Retry-After retry_after seconds (-1 = none): the delay before the next
 * attempt in ms, or -1 to give up. */
int64_t azure_retry_delay_ms(enum azure_retry policy, long status, int attempt, int64_t elapsed_ms,
			     double retry_after);

/* ---- Azure CLI ---- */

/* How an az run ended that did not print a token: exit 127 / not found,
 * "az login" on stderr (without AADSTS), timeouts: unavailable; other
 * non-zero exits: failed. err like "az exited with 1: ERROR: Please run 'az
 * login' to setup account." failure is proc_result.failure or NULL. */
enum azure_outcome azure_cli_outcome(int exit_code, bool timed_out, const char *failure,
				     const char *stderr_text, char *err, size_t errlen);

/* ---- client assertion (§2.5) ---- */

/* A private key, the certificate matching it, and the file's other
 * certificates (the chain, leaf first). */
struct azure_cert;
/* PEM (key and certificates in any order; an encrypted key needs password)
 * or PKCS#12 (DER). The key must be RSA. */
struct azure_cert *azure_cert_load(const void *data, size_t len, const char *password, char *err,
				   size_t errlen);
void azure_cert_free(struct azure_cert *c);

enum azure_jwt_alg {
	AZURE_JWT_RS256, /* header x5t = base64url(SHA-1(cert DER)) */
	AZURE_JWT_PS256, /* header x5t#S256 = base64url(SHA-256(cert DER)) */
};
struct azure_assertion {
	const char *audience;  /* the token endpoint URL posted to */
	const char *client_id; /* iss and sub */
	const char *jti;       /* a fresh UUID */
	int64_t now;           /* iat and nbf; exp = now + lifetime */
	int64_t lifetime;
	enum azure_jwt_alg alg;
	bool send_chain; /* header x5c */
};
/* header.payload.signature, base64url without padding. malloc'd. */
char *azure_client_assertion(const struct azure_cert *c, const struct azure_assertion *a, char *err,
			     size_t errlen);
/* Version 4 UUID text from 16 random bytes (37 bytes with the NUL). */
void azure_uuid_format(const unsigned char rnd[16], char out[37]);

/* §2.10: the database user for a token, from its (unverified) payload:
 * xms_mirid's user-assigned identity name, else upn, preferred_username,
 * unique_name. malloc'd, or NULL with err. */
char *azure_token_username(const char *token, size_t len, char *err, size_t errlen);
#endif
