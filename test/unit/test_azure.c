/* Entra ID pure parts against the Entra ID rules, what the Azure SDKs were seen to do and the expiry fields of each answer:
 * request URLs and bodies, token and error bodies, the retry tables, the
 * Azure CLI's answers, client assertions (decoded and verified with the
 * public key) and the the database user taken from an Entra token user-name derivation. */
#include "token/azure_parse.h"
#include "core/encode.h"
#include "core/util.h"
#include "unit.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0 INT64_C(1893456000) /* 2030-01-01T00:00:00Z */
#define SCOPE "https://ossrdbms-aad.database.windows.net/.default"
#define RESOURCE "https://ossrdbms-aad.database.windows.net"
#define SCOPE_ENC "https%3A%2F%2Fossrdbms-aad.database.windows.net%2F.default"
#define RESOURCE_ENC "https%3A%2F%2Fossrdbms-aad.database.windows.net"

static char err[512];

static bool contains(const char *s, const char *sub)
{
	return s && sub && strstr(s, sub) != NULL;
}

static void check_owned(char *got, const char *want)
{
	CHECK_STR(got, want);
	free(got);
}

/* ---- requests ---- */

static void test_scopes(void)
{
	check_owned(azure_scope_v2(SCOPE), SCOPE);
	check_owned(azure_scope_v2(RESOURCE), SCOPE);
	check_owned(azure_scope_v2("api://abc/"), "api://abc/.default");
	check_owned(azure_scope_resource(SCOPE), RESOURCE);
	check_owned(azure_scope_resource(RESOURCE), RESOURCE);
	CHECK(azure_tenant_ok("72f988bf-86f1-41af-91ab-2d7cd011db47"));
	CHECK(azure_tenant_ok("contoso.onmicrosoft.com"));
	CHECK(!azure_tenant_ok("a/b"));
	CHECK(!azure_tenant_ok("a b"));
	CHECK(!azure_tenant_ok(""));
	CHECK(!azure_tenant_ok(NULL));
}

static void test_base_url(void)
{
	check_owned(azure_base_url("login.microsoftonline.com", "https", true, err, sizeof(err)),
		    "https://login.microsoftonline.com");
	check_owned(azure_base_url("https://login.chinacloudapi.cn/", "https", true, err, sizeof(err)),
		    "https://login.chinacloudapi.cn");
	check_owned(azure_base_url("http://127.0.0.1:8443//", "https", true, err, sizeof(err)),
		    "http://127.0.0.1:8443");
	check_owned(azure_base_url("http://localhost:1", "https", true, err, sizeof(err)),
		    "http://localhost:1");
	check_owned(azure_base_url("http://[::1]:99", "https", true, err, sizeof(err)), "http://[::1]:99");
	CHECK(azure_base_url("http://login.example.com", "https", true, err, sizeof(err)) == NULL);
	CHECK(contains(err, "must use https"));
	CHECK(azure_base_url("http://127.evil.com", "https", true, err, sizeof(err)) == NULL);
	CHECK(azure_base_url("ftp://x", "https", true, err, sizeof(err)) == NULL);
	CHECK(azure_base_url("", "https", true, err, sizeof(err)) == NULL);
	CHECK(azure_base_url("a b", "https", true, err, sizeof(err)) == NULL);
	check_owned(azure_base_url("10.0.0.5:8080", "http", false, err, sizeof(err)), "http://10.0.0.5:8080");
	check_owned(azure_base_url("http://169.254.169.254/", "http", false, err, sizeof(err)),
		    "http://169.254.169.254");
	check_owned(azure_token_endpoint(AZURE_DEFAULT_AUTHORITY, "t1"),
		    "https://login.microsoftonline.com/t1/oauth2/v2.0/token");
}

static void test_bodies(void)
{
	size_t len = 0;
	char *b = azure_token_body(AZURE_GRANT_SECRET, "app-1", SCOPE, "s3cr&t=+/", &len);
	CHECK_STR(b, "client_id=app-1&grant_type=client_credentials&client_info=1"
		     "&client_secret=s3cr%26t%3D%2B%2F&scope=" SCOPE_ENC);
	CHECK(len == strlen(b));
	secret_free(b);
	b = azure_token_body(AZURE_GRANT_CERTIFICATE, "app-1", SCOPE, "h.p.s", NULL);
	CHECK_STR(b, "client_id=app-1&grant_type=client_credentials&client_info=1&client_assertion_type="
		     "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=h.p.s"
		     "&scope=" SCOPE_ENC);
	secret_free(b);
	/* the workload identity exchange exactly: no client_info. */
	b = azure_token_body(AZURE_GRANT_FEDERATED, "app-2", SCOPE, "eyJ.a_b-c.d", NULL);
	CHECK_STR(b, "client_assertion=eyJ.a_b-c.d&client_assertion_type="
		     "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id=app-2"
		     "&grant_type=client_credentials&scope=" SCOPE_ENC);
	secret_free(b);
}

static void test_mi_urls(void)
{
	const char *imds = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
			   "&resource=" RESOURCE_ENC;
	char *u = azure_mi_url(AZURE_MI_IMDS, AZURE_DEFAULT_IMDS, RESOURCE, AZURE_MI_SYSTEM, NULL);
	CHECK_STR(u, imds);
	free(u);
	u = azure_mi_url(AZURE_MI_IMDS, AZURE_DEFAULT_IMDS, RESOURCE, AZURE_MI_CLIENT_ID, "c-1");
	CHECK(contains(u, "&client_id=c-1") && strncmp(u, imds, strlen(imds)) == 0);
	free(u);
	u = azure_mi_url(AZURE_MI_IMDS, AZURE_DEFAULT_IMDS, RESOURCE, AZURE_MI_OBJECT_ID, "o-1");
	CHECK(contains(u, "&object_id=o-1"));
	free(u);
	u = azure_mi_url(AZURE_MI_IMDS, AZURE_DEFAULT_IMDS, RESOURCE, AZURE_MI_RESOURCE_ID,
			 "/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/"
			 "userAssignedIdentities/id1");
	CHECK(contains(u, "&msi_res_id=%2Fsubscriptions%2Fs%2Fresourcegroups%2Fg%2Fproviders%2F"));
	free(u);
	check_owned(azure_mi_url(AZURE_MI_APP_SERVICE, "http://127.0.0.1:41741/msi/token", RESOURCE,
				 AZURE_MI_SYSTEM, NULL),
		    "http://127.0.0.1:41741/msi/token?api-version=2019-08-01&resource=" RESOURCE_ENC);
	check_owned(azure_mi_url(AZURE_MI_APP_SERVICE, "http://h/t?x=1", RESOURCE, AZURE_MI_RESOURCE_ID, "r"),
		    "http://h/t?x=1&api-version=2019-08-01&resource=" RESOURCE_ENC "&mi_res_id=r");
	check_owned(azure_mi_url(AZURE_MI_APP_SERVICE, "http://h/t", RESOURCE, AZURE_MI_CLIENT_ID, "c"),
		    "http://h/t?api-version=2019-08-01&resource=" RESOURCE_ENC "&client_id=c");
}

static void test_cli_argv(void)
{
	const char *argv[AZURE_CLI_ARGV_MAX];
	azure_cli_argv(RESOURCE, NULL, NULL, argv);
	const char *want[] = { "az",   "account",    "get-access-token", "--output",
			       "json", "--resource", RESOURCE,           NULL };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(want[i] ? argv[i] && strcmp(argv[i], want[i]) == 0 : argv[i] == NULL);
	azure_cli_argv(RESOURCE, "t1", "sub one", argv);
	CHECK_STR(argv[7], "--tenant");
	CHECK_STR(argv[8], "t1");
	CHECK_STR(argv[9], "--subscription");
	CHECK_STR(argv[10], "sub one");
	CHECK(argv[11] == NULL);
}

/* ---- times ---- */

static void test_times(void)
{
	int64_t t = 0;
	CHECK(azure_parse_time("1893459599", &t) && t == 1893459599);
	CHECK(azure_parse_time("2030-01-01T00:00:00Z", &t) && t == T0);
	CHECK(azure_parse_time("2030-01-01T02:00:00.123+02:00", &t) && t == T0);
	CHECK(azure_parse_time("2029-12-31T19:00:00-0500", &t) && t == T0);
	CHECK(azure_parse_time("2030-01-01 00:00:00", &t) && t == T0);
	CHECK(azure_parse_time("2030-01-01T00:00Z", &t) && t == T0);
	CHECK(azure_parse_time("06/20/2019 02:57:58 +00:00", &t) && t == 1560999478);
	CHECK(azure_parse_time("1/16/2020 5:24:12 AM +00:00", &t) && t == 1579152252);
	CHECK(azure_parse_time("1/16/2020 5:24:12 PM +00:00", &t) && t == 1579152252 + 12 * 3600);
	CHECK(azure_parse_time("1/16/2020 12:00:00 AM +00:00", &t) && t == 1579132800);
	CHECK(azure_parse_time("2024-02-29T00:00:00Z", &t) && t == 1709164800);
	CHECK(!azure_parse_time("2023-02-29T00:00:00Z", &t));
	CHECK(!azure_parse_time("2030-13-01T00:00:00Z", &t));
	CHECK(!azure_parse_time("2030-01-01T24:00:00Z", &t));
	CHECK(!azure_parse_time("2030-01-01T00:00:00Zjunk", &t));
	CHECK(!azure_parse_time("13/01/2020 1:00:00 +00:00", &t));
	CHECK(!azure_parse_time("", &t));
	CHECK(!azure_parse_time("0", &t));
	CHECK(!azure_parse_time("-5", &t));
	CHECK(!azure_parse_time("soon", &t));
	setenv("TZ", "UTC", 1);
	tzset();
	CHECK(azure_parse_local_time("2030-01-01 00:00:00.000000", &t) && t == T0);
	setenv("TZ", "EST5", 1);
	tzset();
	CHECK(azure_parse_local_time("2029-12-31 19:00:00.5", &t) && t == T0);
	CHECK(!azure_parse_local_time("2030-01-01 00:00:00Z", &t));
	setenv("TZ", "UTC", 1);
	tzset();
}

/* ---- token responses ---- */

static bool parse(enum azure_response k, const char *body, struct azure_token *out)
{
	err[0] = '\0';
	return azure_parse_token(k, "Entra", body, strlen(body), T0, out, err, sizeof(err));
}

static void test_entra_response(void)
{
	struct azure_token t;
	CHECK(parse(AZURE_RESP_ENTRA,
		    "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
		    "\"access_token\":\"eyJ0eXAiOiJKV1Qi.x.y\",\"refresh_in\":1799}",
		    &t));
	CHECK_STR(t.token, "eyJ0eXAiOiJKV1Qi.x.y");
	CHECK(t.len == 20 && t.expires_at == T0 + 3599 && t.refresh_at == T0 + 1799);
	azure_token_clear(&t);
	CHECK(t.token == NULL);
	/* Strings for numbers; no refresh_in means no hint (no half-life outside MI). */
	CHECK(parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_in\":\"7200\"}", &t));
	CHECK(t.expires_at == T0 + 7200 && t.refresh_at == 0);
	azure_token_clear(&t);
	/* Both: the earlier wins (what the Azure SDKs were seen to do), either way round. */
	CHECK(parse(AZURE_RESP_ENTRA,
		    "{\"access_token\":\"a\",\"expires_in\":3600,\"expires_on\":1893457000}", &t) &&
	      t.expires_at == 1893457000);
	azure_token_clear(&t);
	CHECK(parse(AZURE_RESP_ENTRA,
		    "{\"access_token\":\"a\",\"expires_in\":60,\"expires_on\":\"1893457000\"}", &t) &&
	      t.expires_at == T0 + 60);
	azure_token_clear(&t);
	CHECK(parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_on\":\"2030-01-01T01:00:00.000Z\"}",
		    &t) &&
	      t.expires_at == T0 + 3600);
	azure_token_clear(&t);
	CHECK(parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_in\":3599.0}", &t) &&
	      t.expires_at == T0 + 3599);
	azure_token_clear(&t);
}

static void test_entra_response_errors(void)
{
	struct azure_token t;
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"expires_in\":3599}", &t));
	CHECK_STR(err, "Entra returned no \"access_token\"");
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\"}", &t));
	CHECK(contains(err, "no expiry"));
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a b\",\"expires_in\":1}", &t));
	CHECK(contains(err, "\"access_token\"") && !contains(err, "a b"));
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":7,\"expires_in\":1}", &t));
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_in\":-1}", &t));
	CHECK(contains(err, "\"expires_in\""));
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_in\":\"soon\"}", &t));
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_on\":\"tomorrow\"}", &t));
	CHECK(contains(err, "\"expires_on\" (not a time)"));
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"a\",\"expires_in\":true}", &t));
	CHECK(!parse(AZURE_RESP_ENTRA, "[1]", &t));
	CHECK(contains(err, "not an object"));
	/* A broken body never shows up in the error: it may hold a token. */
	CHECK(!parse(AZURE_RESP_ENTRA, "{\"access_token\":\"SECRETTOKEN", &t));
	CHECK(contains(err, "Entra returned invalid JSON") && !contains(err, "SECRET"));
	CHECK(!parse(AZURE_RESP_ENTRA, "SECRETTOKEN", &t));
	CHECK(!contains(err, "SECRET"));
	CHECK(!parse(AZURE_RESP_ENTRA, "", &t));
	CHECK(t.token == NULL);
	/* Size limit. */
	size_t big = AZURE_MAX_TOKEN + 1;
	char *body = xmalloc(big + 64);
	size_t o = (size_t)snprintf(body, big + 64, "{\"expires_in\":1,\"access_token\":\"");
	memset(body + o, 'a', big);
	memcpy(body + o + big, "\"}", 3);
	CHECK(!parse(AZURE_RESP_ENTRA, body, &t));
	body[o + big - 1] = '"';
	body[o + big] = '}';
	body[o + big + 1] = '\0';
	CHECK(parse(AZURE_RESP_ENTRA, body, &t) && t.len == AZURE_MAX_TOKEN);
	azure_token_clear(&t);
	free(body);
}

static void test_mi_response(void)
{
	struct azure_token t;
	/* Azure IMDS sample: strings; expires_on earlier than T0 + expires_in. */
	CHECK(parse(AZURE_RESP_MANAGED_IDENTITY,
		    "{\"access_token\":\"eyJ0eXAi.b.c\",\"client_id\":\"c\","
		    "\"expires_in\":\"86399\",\"expires_on\":\"1893542000\",\"ext_expires_in\":\"86399\","
		    "\"not_before\":\"1893455999\",\"resource\":\"" RESOURCE "\",\"token_type\":\"Bearer\"}",
		    &t));
	CHECK(t.expires_at == 1893542000);
	/* Half-life (Entra token refresh): lifetime 86000 → refresh after 43000. */
	CHECK(t.refresh_at == T0 + 43000);
	azure_token_clear(&t);
	/* App Service: only expires_on. */
	CHECK(parse(AZURE_RESP_MANAGED_IDENTITY,
		    "{\"access_token\":\"x\",\"expires_on\":\"1893459600\","
		    "\"resource\":\"r\",\"token_type\":\"Bearer\",\"client_id\":\"c\"}",
		    &t));
	CHECK(t.expires_at == T0 + 3600 && t.refresh_at == 0);
	azure_token_clear(&t);
	CHECK(parse(AZURE_RESP_MANAGED_IDENTITY, "{\"access_token\":\"x\",\"expires_in\":7200}", &t));
	CHECK(t.refresh_at == T0 + 3600);
	azure_token_clear(&t);
	CHECK(parse(AZURE_RESP_MANAGED_IDENTITY, "{\"access_token\":\"x\",\"expires_in\":7199}", &t));
	CHECK(t.refresh_at == 0);
	azure_token_clear(&t);
	CHECK(parse(AZURE_RESP_MANAGED_IDENTITY,
		    "{\"access_token\":\"x\",\"expires_in\":86400,"
		    "\"refresh_in\":600}",
		    &t));
	CHECK(t.refresh_at == T0 + 600);
	azure_token_clear(&t);
	/* Azure ML legacy date. */
	CHECK(parse(AZURE_RESP_MANAGED_IDENTITY,
		    "{\"access_token\":\"x\",\"expires_on\":"
		    "\"1/1/2030 1:00:00 AM +00:00\"}",
		    &t) &&
	      t.expires_at == T0 + 3600);
	azure_token_clear(&t);
}

static void test_cli_response(void)
{
	struct azure_token t;
	CHECK(parse(
		AZURE_RESP_CLI,
		"{\"accessToken\":\"eyJ.c.d\",\"expiresOn\":\"2031-01-01 06:00:00.000000\","
		"\"expires_on\":1893477600,\"subscription\":\"s\",\"tenant\":\"t\",\"tokenType\":\"Bearer\"}",
		&t));
	CHECK_STR(t.token, "eyJ.c.d");
	CHECK(t.expires_at == 1893477600 && t.refresh_at == 0);
	azure_token_clear(&t);
	/* Older CLI: local naive time (TZ=UTC here). */
	CHECK(parse(AZURE_RESP_CLI, "{\"accessToken\":\"x\",\"expiresOn\":\"2030-01-01 01:00:00.000000\"}",
		    &t));
	CHECK(t.expires_at == T0 + 3600);
	azure_token_clear(&t);
	CHECK(!parse(AZURE_RESP_CLI, "{\"access_token\":\"x\",\"expires_on\":1893477600}", &t));
	CHECK(contains(err, "\"accessToken\""));
	CHECK(parse(AZURE_RESP_CLI,
		    "{\"accessToken\":\"x\",\"expiresOn\":\"odd\",\"expires_on\":\"1893459600\"}", &t) &&
	      t.expires_at == T0 + 3600);
	azure_token_clear(&t);
	CHECK(!parse(AZURE_RESP_CLI, "{\"accessToken\":\"x\",\"expiresOn\":\"odd\"}", &t));
	CHECK(contains(err, "unusable \"expiresOn\""));
	CHECK(!parse(AZURE_RESP_CLI, "{\"accessToken\":\"x\"}", &t));
	CHECK(contains(err, "expires_on or expiresOn"));
}

/* ---- errors ---- */

static void describe(const char *who, long status, const char *body)
{
	azure_describe_error(who, status, body, strlen(body), err, sizeof(err));
}

static void test_errors(void)
{
	describe("Entra", 401,
		 "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid "
		 "client secret provided. Trace ID: 1 Correlation ID: 2 Timestamp: 2030-01-01 00:00:00Z\","
		 "\"error_codes\":[7000215],\"timestamp\":\"2030-01-01 00:00:00Z\",\"trace_id\":\"1\"}");
	CHECK_STR(err, "Entra answered 401 invalid_client (AADSTS7000215: Invalid client secret provided.)");
	describe("Entra", 400,
		 "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90002: Tenant "
		 "'x' not found.\\r\\nTrace ID: 1\"}");
	CHECK_STR(err, "Entra answered 400 invalid_request (AADSTS90002: Tenant 'x' not found.)");
	describe("IMDS", 400, "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}");
	CHECK_STR(err, "IMDS answered 400 invalid_request (Identity not found)");
	describe("App Service", 401, "{\"statusCode\":401,\"message\":\"Unauthorized request\"}");
	CHECK_STR(err, "App Service answered 401 (Unauthorized request)");
	describe("X", 400, "{\"error\":{\"code\":\"SecretHeaderNotFound\",\"message\":\"no secret\"}}");
	CHECK_STR(err, "X answered 400 SecretHeaderNotFound (no secret)");
	describe("IMDS", 502, "<html>Bad\tgateway</html>\nmore");
	CHECK_STR(err, "IMDS answered 502: <html>Bad gateway</html>");
	describe("IMDS", 503, "");
	CHECK_STR(err, "IMDS answered 503 with an empty body");
	char longd[600];
	memset(longd, 'x', sizeof(longd));
	const char *head = "{\"error\":\"e\",\"error_description\":\"";
	memcpy(longd, head, strlen(head));
	memcpy(longd + 500, "\"}", 3);
	describe("Entra", 400, longd);
	CHECK(strlen(err) < 220 && contains(err, "...)"));
	azure_describe_error("Entra", 500, NULL, 0, err, sizeof(err));
	CHECK_STR(err, "Entra answered 500 with an empty body");

	CHECK(azure_imds_outcome(
		      400, "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}",
		      78) == AZURE_UNAVAILABLE);
	const char *unreach = "{\"error\":\"forbidden\",\"error_description\":\"A socket operation was attempted "
			      "to an unreachable network\"}";
	CHECK(azure_imds_outcome(403, unreach, strlen(unreach)) == AZURE_UNAVAILABLE);
	CHECK(azure_imds_outcome(403, "{}", 2) == AZURE_FAILED);
	CHECK(azure_imds_outcome(401, "", 0) == AZURE_FAILED);
	CHECK(azure_imds_outcome(500, "", 0) == AZURE_FAILED);
}

/* ---- retries ---- */

static void test_retry_core(void)
{
	const int64_t want[] = { 0, 1600, 3200 };
	for (int a = 1; a <= 3; a++)
		CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 503, a, 0, -1) == want[a - 1]);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 503, 4, 0, -1) == -1);
	const long retried[] = { 408, 429, 500, 502, 503, 504, 506, 599, 998 };
	for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++)
		CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, retried[i], 2, 0, -1) == 1600);
	const long final[] = { 200, 400, 401, 403, 404, 410, 501, 505, 999 };
	for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++)
		CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, final[i], 1, 0, -1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 0, 1, 0, -1) == 0);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 0, 3, 0, -1) == 3200);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 0, 4, 0, -1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 429, 1, 0, 2) == 2000);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 429, 1, 0, 0.5) == 500);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 429, 1, 0, 61) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_CORE, 400, 1, 0, 1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_NONE, 0, 1, 0, -1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_NONE, 503, 1, 0, -1) == -1);
}

static void test_retry_imds(void)
{
	const int64_t want[] = { 0, 4000, 8000, 16000, 32000 };
	const int64_t gone[] = { 0, 5000, 10000, 20000, 40000 };
	int64_t total = 0;
	for (int a = 1; a <= 5; a++) {
		CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 404, a, 0, -1) == want[a - 1]);
		CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 500, a, 0, -1) == want[a - 1]);
		CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 429, a, 0, -1) == want[a - 1]);
		int64_t d = azure_retry_delay_ms(AZURE_RETRY_IMDS, 410, a, total, -1);
		CHECK(d == gone[a - 1]);
		total += d;
	}
	CHECK(total >= 70000);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 404, 6, 60000, -1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 410, 6, total, -1) == -1);
	/* Retry-After shortened the waits: keep going until 70 s have passed. */
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 410, 6, 30000, -1) == 40000);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 410, 9, 69000, -1) == 1000);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 429, 2, 0, 3) == 3000);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 400, 1, 0, -1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 403, 1, 0, -1) == -1);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 0, 3, 0, -1) == 8000);
	CHECK(azure_retry_delay_ms(AZURE_RETRY_IMDS, 0, 4, 0, -1) == -1);
}

/* ---- Azure CLI ---- */

static void test_cli_outcome(void)
{
	CHECK(azure_cli_outcome(1, false, NULL, "WARNING: x\nERROR: Please run 'az login' to setup account.\n",
				err, sizeof(err)) == AZURE_UNAVAILABLE);
	CHECK_STR(err, "az exited with 1: ERROR: Please run 'az login' to setup account.");
	CHECK(azure_cli_outcome(1, false, NULL,
				"ERROR: AADSTS70043: The refresh token has expired. Run "
				"'az login'.",
				err, sizeof(err)) == AZURE_FAILED);
	CHECK(contains(err, "AADSTS70043"));
	CHECK(azure_cli_outcome(127, false, NULL, "", err, sizeof(err)) == AZURE_UNAVAILABLE);
	CHECK(contains(err, "not installed"));
	CHECK(azure_cli_outcome(-1, true, "helper program timed out", "", err, sizeof(err)) ==
	      AZURE_UNAVAILABLE);
	CHECK_STR(err, "az did not answer in time");
	CHECK(azure_cli_outcome(2, false, NULL, "\n\nsomething broke\n", err, sizeof(err)) == AZURE_FAILED);
	CHECK_STR(err, "az exited with 2: something broke");
	CHECK(azure_cli_outcome(3, false, NULL, "", err, sizeof(err)) == AZURE_FAILED);
	CHECK_STR(err, "az exited with 3");
	CHECK(azure_cli_outcome(0, false, "helper program output too large", "", err, sizeof(err)) ==
	      AZURE_FAILED);
	CHECK(contains(err, "too large"));
	CHECK(azure_cli_outcome(0, false, NULL, "", err, sizeof(err)) == AZURE_OK);
}

/* ---- client assertion ---- */

static EVP_PKEY *make_key(int type)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(type, NULL);
	EVP_PKEY *k = NULL;
	EVP_PKEY_keygen_init(ctx);
	if (type == EVP_PKEY_RSA)
		EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048);
	else
		EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1);
	EVP_PKEY_keygen(ctx, &k);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_sign(x, key, EVP_sha256());
	return x;
}

/* PEM of certs then key (key last, to check order does not matter). */
static char *pem_of(X509 *const *certs, int ncerts, EVP_PKEY *key, const char *pass, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	for (int i = 0; i < ncerts; i++)
		PEM_write_bio_X509(b, certs[i]);
	if (pass)
		PEM_write_bio_PrivateKey(b, key, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)pass);
	else
		PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = xstrndup(data, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static json_t *decode_part(const char *s, size_t n)
{
	size_t len = 0;
	unsigned char *raw = base64_decode_lenient(s, n, &len);
	json_t *j = raw ? json_loadb((const char *)raw, len, 0, NULL) : NULL;
	free(raw);
	return j;
}

static char *b64url_digest(X509 *x, const EVP_MD *md)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509_digest(x, md, d, &n);
	char std[128];
	int m = EVP_EncodeBlock((unsigned char *)std, d, (int)n);
	while (m > 0 && std[m - 1] == '=')
		m--;
	std[m] = '\0';
	for (char *p = std; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return xstrdup(std);
}

static bool verify_sig(EVP_PKEY *key, enum azure_jwt_alg alg, const char *jwt)
{
	const char *dot2 = strrchr(jwt, '.');
	size_t siglen = 0;
	unsigned char *sig = base64_decode_lenient(dot2 + 1, strlen(dot2 + 1), &siglen);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok = EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) == 1;
	if (alg == AZURE_JWT_PS256) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
	}
	ok = ok && sig &&
	     EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) == 1;
	EVP_MD_CTX_free(md);
	free(sig);
	return ok;
}

static void check_assertion(struct azure_cert *c, EVP_PKEY *key, X509 *leaf, enum azure_jwt_alg alg,
			    bool chain, int nchain)
{
	struct azure_assertion a = {
		.audience = "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
		.client_id = "app-1",
		.jti = "5f0e1c2a-0000-4000-8000-000000000001",
		.now = T0,
		.lifetime = AZURE_ASSERTION_LIFETIME,
		.alg = alg,
		.send_chain = chain,
	};
	char *jwt = azure_client_assertion(c, &a, err, sizeof(err));
	CHECK(jwt != NULL);
	if (!jwt)
		return;
	CHECK(strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == strlen(jwt));
	const char *d1 = strchr(jwt, '.'), *d2 = strrchr(jwt, '.');
	CHECK(d1 && d2 && d1 != d2);
	if (!d1 || !d2 || d1 == d2) {
		free(jwt);
		return;
	}
	json_t *h = decode_part(jwt, (size_t)(d1 - jwt));
	json_t *p = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	CHECK_STR(json_string_value(json_object_get(h, "alg")), alg == AZURE_JWT_PS256 ? "PS256" : "RS256");
	CHECK_STR(json_string_value(json_object_get(h, "typ")), "JWT");
	char *thumb = b64url_digest(leaf, alg == AZURE_JWT_PS256 ? EVP_sha256() : EVP_sha1());
	CHECK_STR(json_string_value(json_object_get(h, alg == AZURE_JWT_PS256 ? "x5t#S256" : "x5t")), thumb);
	free(thumb);
	json_t *x5c = json_object_get(h, "x5c");
	CHECK(chain ? json_is_array(x5c) && (int)json_array_size(x5c) == nchain : x5c == NULL);
	if (chain && json_array_size(x5c) > 0) {
		unsigned char *der = NULL;
		int n = i2d_X509(leaf, &der);
		unsigned char dec[8192];
		const char *b64 = json_string_value(json_array_get(x5c, 0));
		int m = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)strlen(b64));
		CHECK(m >= n && memcmp(dec, der, (size_t)n) == 0);
		OPENSSL_free(der);
	}
	CHECK_STR(json_string_value(json_object_get(p, "aud")), a.audience);
	CHECK_STR(json_string_value(json_object_get(p, "iss")), "app-1");
	CHECK_STR(json_string_value(json_object_get(p, "sub")), "app-1");
	CHECK_STR(json_string_value(json_object_get(p, "jti")), a.jti);
	CHECK(json_integer_value(json_object_get(p, "nbf")) == T0);
	CHECK(json_integer_value(json_object_get(p, "iat")) == T0);
	CHECK(json_integer_value(json_object_get(p, "exp")) == T0 + 600);
	CHECK(verify_sig(key, alg, jwt));
	/* A flipped payload byte breaks the signature. */
	jwt[(d1 - jwt) + 3] ^= 1;
	CHECK(!verify_sig(key, alg, jwt));
	json_decref(h);
	json_decref(p);
	free(jwt);
}

static void test_assertion(void)
{
	EVP_PKEY *key = make_key(EVP_PKEY_RSA), *other = make_key(EVP_PKEY_RSA);
	X509 *leaf = make_cert(key, "app"), *ca = make_cert(other, "ca");
	X509 *certs[] = { ca, leaf };
	size_t len;
	char *pem = pem_of(certs, 2, key, NULL, &len);
	struct azure_cert *c = azure_cert_load(pem, len, NULL, err, sizeof(err));
	CHECK(c != NULL);
	if (c) {
		check_assertion(c, key, leaf, AZURE_JWT_RS256, false, 0);
		check_assertion(c, key, leaf, AZURE_JWT_PS256, false, 0);
		check_assertion(c, key, leaf, AZURE_JWT_RS256, true, 2);
	}
	azure_cert_free(c);
	free(pem);

	/* Encrypted key: the right password, a wrong one, none. */
	pem = pem_of(&leaf, 1, key, "pw", &len);
	c = azure_cert_load(pem, len, "pw", err, sizeof(err));
	CHECK(c != NULL);
	if (c)
		check_assertion(c, key, leaf, AZURE_JWT_RS256, true, 1);
	azure_cert_free(c);
	CHECK(azure_cert_load(pem, len, "nope", err, sizeof(err)) == NULL);
	CHECK(contains(err, "private key"));
	CHECK(azure_cert_load(pem, len, NULL, err, sizeof(err)) == NULL);
	free(pem);

	/* The key's own certificate is missing. */
	pem = pem_of(&ca, 1, key, NULL, &len);
	CHECK(azure_cert_load(pem, len, NULL, err, sizeof(err)) == NULL);
	CHECK(contains(err, "matches"));
	free(pem);
	pem = pem_of(NULL, 0, key, NULL, &len);
	CHECK(azure_cert_load(pem, len, NULL, err, sizeof(err)) == NULL);
	CHECK(contains(err, "no certificate"));
	free(pem);

	/* PKCS#12. */
	STACK_OF(X509) *cas = sk_X509_new_null();
	sk_X509_push(cas, ca);
	PKCS12 *p12 = PKCS12_create("pw", "app", key, leaf, cas, 0, 0, 0, 0, 0);
	unsigned char *der = NULL;
	int n = i2d_PKCS12(p12, &der);
	c = azure_cert_load(der, (size_t)n, "pw", err, sizeof(err));
	CHECK(c != NULL);
	if (c)
		check_assertion(c, key, leaf, AZURE_JWT_RS256, true, 2);
	azure_cert_free(c);
	CHECK(azure_cert_load(der, (size_t)n, "bad", err, sizeof(err)) == NULL);
	CHECK(contains(err, "PKCS#12"));
	CHECK(azure_cert_load("garbage", 7, NULL, err, sizeof(err)) == NULL);
	OPENSSL_free(der);
	PKCS12_free(p12);
	sk_X509_free(cas);

	/* Not RSA. */
	EVP_PKEY *ec = make_key(EVP_PKEY_EC);
	X509 *ecx = make_cert(ec, "ec");
	pem = pem_of(&ecx, 1, ec, NULL, &len);
	CHECK(azure_cert_load(pem, len, NULL, err, sizeof(err)) == NULL);
	CHECK(contains(err, "not an RSA key"));
	free(pem);
	X509_free(ecx);
	EVP_PKEY_free(ec);

	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void test_uuid(void)
{
	unsigned char r[16];
	memset(r, 0xff, sizeof(r));
	char u[37];
	azure_uuid_format(r, u);
	CHECK_STR(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
	memset(r, 0, sizeof(r));
	azure_uuid_format(r, u);
	CHECK_STR(u, "00000000-0000-4000-8000-000000000000");
}

/* ---- user names ---- */

static char *jwt_with(const char *payload)
{
	char b64[2048];
	int m = EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)payload, (int)strlen(payload));
	while (m > 0 && b64[m - 1] == '=')
		m--;
	b64[m] = '\0';
	for (char *p = b64; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return xasprintf("eyJhbGciOiJub25lIn0.%s.sig", b64);
}

static void check_user(const char *payload, const char *want)
{
	char *jwt = jwt_with(payload);
	char *u = azure_token_username(jwt, strlen(jwt), err, sizeof(err));
	if (want)
		CHECK_STR(u, want);
	else
		CHECK(u == NULL);
	free(u);
	free(jwt);
}

static void test_username(void)
{
	check_user("{\"xms_mirid\":\"/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/"
		   "userAssignedIdentities/orders-app\",\"upn\":\"x@y\"}",
		   "orders-app");
	check_user("{\"xms_mirid\":\"/subscriptions/s/resourcegroups/g/providers/microsoft.managedidentity/"
		   "USERASSIGNEDIDENTITIES/Id-Two\"}",
		   "Id-Two");
	/* System-assigned: the path names a VM, not an identity. */
	check_user("{\"xms_mirid\":\"/subscriptions/s/resourcegroups/g/providers/Microsoft.Compute/"
		   "virtualMachines/vm1\",\"oid\":\"o\"}",
		   NULL);
	CHECK(contains(err, "names no user"));
	check_user("{\"xms_mirid\":\"/subscriptions/s/providers/Microsoft.Compute/virtualMachines/vm1\","
		   "\"upn\":\"alice@contoso.com\"}",
		   "alice@contoso.com");
	check_user("{\"upn\":\"alice@contoso.com\",\"preferred_username\":\"p\"}", "alice@contoso.com");
	check_user("{\"preferred_username\":\"bob@contoso.com\",\"unique_name\":\"u\"}", "bob@contoso.com");
	check_user("{\"unique_name\":\"live.com#carol@x.com\"}", "live.com#carol@x.com");
	check_user("{\"upn\":\"\",\"unique_name\":\"u\"}", "u");
	check_user("[1,2]", NULL);
	CHECK(contains(err, "not a JSON object"));
	CHECK(azure_token_username("nodots", 6, err, sizeof(err)) == NULL);
	CHECK(contains(err, "not a JWT"));
	CHECK(azure_token_username("a.!!!.c", 7, err, sizeof(err)) == NULL);

	size_t n = 0;
	unsigned char *d = base64_decode_lenient("aGk-_w", 6, &n);
	CHECK(d && n == 4 && memcmp(d, "hi\x3e\xff", 4) == 0);
	free(d);
	d = base64_decode_lenient("aGk=", 4, &n);
	CHECK(d && n == 2 && memcmp(d, "hi", 2) == 0);
	free(d);
	CHECK(base64_decode_lenient("a", 1, &n) == NULL);
}

int main(void)
{
	test_scopes();
	test_base_url();
	test_bodies();
	test_mi_urls();
	test_cli_argv();
	test_times();
	test_entra_response();
	test_entra_response_errors();
	test_mi_response();
	test_cli_response();
	test_errors();
	test_retry_core();
	test_retry_imds();
	test_cli_outcome();
	test_assertion();
	test_uuid();
	test_username();
	return unit_finish("test_azure");
}
