/* Google Cloud pieces without I/O: the JWT-bearer assertion of spec §3.3.1,
 * credential files (§3.3), request bodies, token answers, retry rules
 * (§3.4, §3.5) and IAM database user names (§3.6). */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "core/encode.h"
#include "core/util.h"
#include "token/alloydb.h"
#include "token/connector.h"
#include "token/gcp_parse.h"
#include "token/jwt.h"
#include "unit.h"

#define EMAIL "tb-sa@tb-project.iam.gserviceaccount.com"
#define LOGIN_SCOPE "https://www.googleapis.com/auth/sqlservice.login"

static EVP_PKEY *test_key;

static char *key_pem(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, test_key, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = xstrndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

/* Decoded segment i (0 header, 1 payload) of a compact JWS. */
static char *segment(const char *jwt, int i)
{
	const char *p = jwt;
	for (int k = 0; k < i; k++)
		p = strchr(p, '.') + 1;
	size_t n = strcspn(p, "."), len = 0;
	return (char *)base64_decode_lenient(p, n, &len);
}

static bool signature_ok(const char *jwt)
{
	const char *dot2 = strrchr(jwt, '.');
	size_t siglen = 0;
	unsigned char *sig = base64_decode_lenient(dot2 + 1, strlen(dot2 + 1), &siglen);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = sig && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, test_key) == 1 &&
		  EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) == 1;
	EVP_MD_CTX_free(md);
	free(sig);
	return ok;
}

/* §3.3.1: header typ/alg/kid, payload iat/exp/iss/aud/scope with the
 * constant audience, RS256 over "header.payload". */
static void test_assertion(void)
{
	char *jwt = gcp_jwt_assertion(test_key, "key-1", EMAIL, LOGIN_SCOPE " https://x/y", 1700000000);
	CHECK(jwt != NULL);
	char *h = segment(jwt, 0), *p = segment(jwt, 1);
	CHECK_STR(h, "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"key-1\"}");
	CHECK_STR(p, "{\"iat\":1700000000,\"exp\":1700003600,\"iss\":\"" EMAIL "\","
		     "\"aud\":\"https://oauth2.googleapis.com/token\",\"scope\":\"" LOGIN_SCOPE
		     " https://x/y\"}");
	CHECK(signature_ok(jwt));
	jwt[strlen(jwt) - 2] ^= 1;
	CHECK(!signature_ok(jwt));
	free(h);
	free(p);
	free(jwt);
	jwt = gcp_jwt_assertion(test_key, NULL, EMAIL, LOGIN_SCOPE, 5);
	h = segment(jwt, 0);
	CHECK_STR(h, "{\"typ\":\"JWT\",\"alg\":\"RS256\"}");
	CHECK(signature_ok(jwt));
	free(h);
	free(jwt);
	size_t n = 0;
	char *body = gcp_jwt_grant_body("a.b.c", &n);
	CHECK_STR(body, "assertion=a.b.c&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
	CHECK(n == strlen(body));
	free(body);
}

static bool parse(const char *json, struct gcp_file *f, char *err)
{
	return gcp_file_parse(json, strlen(json), f, err, 300);
}

static void test_files(void)
{
	char *pem = key_pem();
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "client_email", EMAIL,
			      "private_key", pem, "private_key_id", "k1", "token_uri",
			      "http://127.0.0.1:9/token");
	char *text = json_dumps(o, 0), err[300];
	struct gcp_file f;
	CHECK(parse(text, &f, err));
	CHECK(f.type == GCP_FILE_SERVICE_ACCOUNT && f.key != NULL);
	CHECK_STR(f.client_email, EMAIL);
	CHECK_STR(f.private_key_id, "k1");
	CHECK_STR(f.token_uri, "http://127.0.0.1:9/token");
	gcp_file_clear(&f);
	free(text);
	json_object_set_new(o, "private_key", json_string("-----BEGIN PRIVATE KEY-----\nnope\n"));
	text = json_dumps(o, 0);
	CHECK(!parse(text, &f, err));
	CHECK_STR(err, "private_key is not a PEM RSA private key");
	free(text);
	json_decref(o);

	CHECK(parse("{\"type\":\"authorized_user\",\"client_id\":\"c\",\"client_secret\":\"s\","
		    "\"refresh_token\":\"r\",\"token_uri\":\"https://ignored\",\"quota_project_id\":\"q\"}",
		    &f, err));
	CHECK(f.type == GCP_FILE_AUTHORIZED_USER && f.token_uri == NULL);
	CHECK_STR(f.refresh_token, "r");
	CHECK_STR(f.quota_project, "q");
	gcp_file_clear(&f);
	CHECK(!parse("{\"type\":\"authorized_user\",\"client_id\":\"c\"}", &f, err));
	CHECK_STR(err, "an authorized_user file needs client_id, client_secret and refresh_token");

	CHECK(parse(
		"{\"type\":\"impersonated_service_account\",\"service_account_impersonation_url\":"
		"\"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/t@p.iam.gserviceaccount.com"
		":generateAccessToken\",\"delegates\":[\"d1@p\"],\"source_credentials\":{\"type\":"
		"\"authorized_user\",\"client_id\":\"c\",\"client_secret\":\"s\",\"refresh_token\":\"r\"}}",
		&f, err));
	CHECK(f.type == GCP_FILE_IMPERSONATED && f.ndelegates == 1);
	CHECK_STR(f.target, "t@p.iam.gserviceaccount.com");
	CHECK_STR(f.iam_base, "https://iamcredentials.googleapis.com");
	CHECK(f.source && f.source->type == GCP_FILE_AUTHORIZED_USER);
	gcp_file_clear(&f);
	CHECK(!parse("{\"type\":\"external_account\"}", &f, err));
	CHECK(strstr(err, "external_account (workload identity federation) is not supported") != NULL);
	CHECK(!parse("[1]", &f, err));
	CHECK(!parse("{\"type\":\"impersonated_service_account\",\"service_account_impersonation_url\":\"x\"}",
		     &f, err));
	free(pem);
}

static void test_bodies(void)
{
	size_t n;
	char *b = gcp_refresh_body("id", "s&cret", "1//rt", "a b", &n);
	CHECK_STR(
		b,
		"grant_type=refresh_token&client_id=id&client_secret=s%26cret&refresh_token=1%2F%2Frt&scope=a%20b");
	free(b);
	char *d[] = { "a@p.iam.gserviceaccount.com", "projects/-/serviceAccounts/b@p" };
	b = gcp_impersonate_body(d, 2, LOGIN_SCOPE, 600, &n);
	CHECK_STR(b, "{\"delegates\":[\"projects/-/serviceAccounts/a@p.iam.gserviceaccount.com\","
		     "\"projects/-/serviceAccounts/b@p\"],\"scope\":[\"" LOGIN_SCOPE
		     "\"],\"lifetime\":\"600s\"}");
	free(b);
	b = gcp_impersonate_url("http://127.0.0.1:5/", "t@p");
	CHECK_STR(b, "http://127.0.0.1:5/v1/projects/-/serviceAccounts/t@p:generateAccessToken");
	free(b);
	b = gcp_metadata_token_url("127.0.0.1:7", "https://a/x https://a/y");
	CHECK_STR(b, "http://127.0.0.1:7/computeMetadata/v1/instance/service-accounts/default/token"
		     "?scopes=https%3A%2F%2Fa%2Fx%2Chttps%3A%2F%2Fa%2Fy");
	free(b);
}

static void test_answers(void)
{
	struct gcp_token t;
	char err[300];
	const char *ok = "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	CHECK(gcp_parse_oauth(ok, strlen(ok), 1000, &t, err, sizeof(err)));
	CHECK_STR(t.access_token, "ya29.x");
	CHECK(t.expires_at == 4599 && t.refresh_token == NULL);
	gcp_token_clear(&t);
	const char *s = "{\"access_token\":\"y\",\"expires_in\":\"60\",\"refresh_token\":\"new\"}";
	CHECK(gcp_parse_oauth(s, strlen(s), 10, &t, err, sizeof(err)));
	CHECK(t.expires_at == 70);
	CHECK_STR(t.refresh_token, "new");
	gcp_token_clear(&t);
	const char *bad = "{\"expires_in\":5}";
	CHECK(!gcp_parse_oauth(bad, strlen(bad), 0, &t, err, sizeof(err)));
	CHECK_STR(err, "the answer has no access_token");
	bad = "{\"access_token\":\"y\",\"expires_in\":\"soon\"}";
	CHECK(!gcp_parse_oauth(bad, strlen(bad), 0, &t, err, sizeof(err)));
	CHECK(t.access_token == NULL);
	const char *iam = "{\"accessToken\":\"ya29.imp\",\"expireTime\":\"2030-01-01T06:00:00Z\"}";
	CHECK(gcp_parse_iam(iam, strlen(iam), &t, err, sizeof(err)));
	CHECK(t.expires_at == 1893477600);
	CHECK_STR(t.access_token, "ya29.imp");
	gcp_token_clear(&t);
	iam = "{\"accessToken\":\"ya29.imp\",\"expireTime\":\"tomorrow\"}";
	CHECK(!gcp_parse_iam(iam, strlen(iam), &t, err, sizeof(err)));
}

static void test_retries(void)
{
	const char *tu = "{\"error\":\"temporarily_unavailable\"}", *ig = "{\"error\":\"invalid_grant\"}";
	int64_t d = gcp_retry_delay_ms(GCP_RETRY_TOKEN, 1, 503, NULL, 0, 0.5);
	CHECK(d == 1000);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_TOKEN, 2, 429, NULL, 0, 0.0) == 1800);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_TOKEN, 3, 503, NULL, 0, 0.5) == -1);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_TOKEN, 1, 400, tu, strlen(tu), 0.5) == 1000);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_TOKEN, 1, 400, ig, strlen(ig), 0.5) == -1);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_TOKEN, 1, 0, NULL, 0, 0.5) == -1);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_METADATA, 1, 0, NULL, 0, 0.5) == 1000);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_METADATA, 4, 504, NULL, 0, 0.5) == 8000);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_METADATA, 5, 503, NULL, 0, 0.5) == -1);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_METADATA, 1, 404, NULL, 0, 0.5) == -1);
	CHECK(gcp_retry_delay_ms(GCP_RETRY_NONE, 1, 503, NULL, 0, 0.5) == -1);
}

static void test_users(void)
{
	char *u = gcp_db_user(EMAIL);
	CHECK_STR(u, "tb-sa@tb-project.iam");
	free(u);
	u = gcp_db_user("alice@example.com");
	CHECK_STR(u, "alice@example.com");
	free(u);
	u = gcp_db_user(".gserviceaccount.com");
	CHECK_STR(u, ".gserviceaccount.com");
	free(u);
	CHECK(gcp_db_user(NULL) == NULL);
}

/* §3.8.1: the project may hold one colon; every part is needed. */
static void test_instance_names(void)
{
	struct cloudsql_name n;
	CHECK(cloudsql_parse_name("my-project:us-central1:orders", &n));
	CHECK_STR(n.project, "my-project");
	CHECK_STR(n.region, "us-central1");
	CHECK_STR(n.instance, "orders");
	CHECK(cloudsql_parse_name("example.com:my-project:europe-west1:db", &n));
	CHECK_STR(n.project, "example.com:my-project");
	CHECK_STR(n.region, "europe-west1");
	CHECK(!cloudsql_parse_name("a:b:c:d:e", &n));
	CHECK(!cloudsql_parse_name("project:instance", &n));
	CHECK(!cloudsql_parse_name(":r:i", &n));
	CHECK(!cloudsql_parse_name("p::i", &n));
	CHECK(!cloudsql_parse_name("p:r:", &n));
	CHECK(!cloudsql_parse_name("p:r:i/x", &n));
	CHECK(!cloudsql_parse_name(NULL, &n));
}

static void test_connect_settings(void)
{
	const char *body =
		"{\"serverCaCert\":{\"cert\":\"PEM\"},\"region\":\"us-central1\","
		"\"databaseVersion\":\"POSTGRES_16\",\"ipAddresses\":[{\"type\":\"PRIMARY\",\"ipAddress\":\"34.1.2.3\"},"
		"{\"type\":\"OUTGOING\",\"ipAddress\":\"35.1.1.1\"},{\"type\":\"PRIVATE\",\"ipAddress\":\"10.0.0.5\"}],"
		"\"pscEnabled\":true,\"dnsName\":\"legacy.sql.goog.\",\"dnsNames\":[{\"name\":\"x.sql-psc.goog.\","
		"\"connectionType\":\"PRIVATE_SERVICE_CONNECT\",\"dnsScope\":\"INSTANCE\"}],\"mdxProtocolSupport\":[]}";
	struct cloudsql_settings s;
	char err[300];
	CHECK(cloudsql_parse_settings(body, strlen(body), &s, err, sizeof(err)));
	CHECK_STR(s.public_ip, "34.1.2.3");
	CHECK_STR(s.private_ip, "10.0.0.5");
	CHECK_STR(s.psc_dns, "x.sql-psc.goog");
	CHECK_STR(s.dns_name, "x.sql-psc.goog");
	struct cloudsql_name n;
	cloudsql_parse_name("p:us-central1:i", &n);
	const char *addr = NULL;
	CHECK(cloudsql_check_settings(&s, &n, CONNECTOR_IP_PRIVATE, &addr, err, sizeof(err)));
	CHECK_STR(addr, "10.0.0.5");
	CHECK(cloudsql_check_settings(&s, &n, CONNECTOR_IP_PSC, &addr, err, sizeof(err)));
	CHECK_STR(addr, "x.sql-psc.goog");
	cloudsql_parse_name("p:europe-west1:i", &n);
	CHECK(!cloudsql_check_settings(&s, &n, CONNECTOR_IP_PUBLIC, &addr, err, sizeof(err)));
	CHECK_STR(err, "the instance is in region us-central1, not europe-west1 as the instance name says");
	cloudsql_settings_clear(&s);
	const char *mysql =
		"{\"serverCaCert\":{\"cert\":\"PEM\"},\"region\":\"r\",\"databaseVersion\":\"MYSQL_8_0\"}";
	CHECK(cloudsql_parse_settings(mysql, strlen(mysql), &s, err, sizeof(err)));
	cloudsql_parse_name("p:r:i", &n);
	CHECK(!cloudsql_check_settings(&s, &n, CONNECTOR_IP_PUBLIC, &addr, err, sizeof(err)));
	CHECK_STR(err, "the instance runs MYSQL_8_0, not PostgreSQL");
	cloudsql_settings_clear(&s);
	const char *pg =
		"{\"serverCaCert\":{\"cert\":\"PEM\"},\"region\":\"r\",\"databaseVersion\":\"POSTGRES_15\"}";
	CHECK(cloudsql_parse_settings(pg, strlen(pg), &s, err, sizeof(err)));
	CHECK(!cloudsql_check_settings(&s, &n, CONNECTOR_IP_PUBLIC, &addr, err, sizeof(err)));
	CHECK_STR(err, "the instance has no PUBLIC address (ip_type=public)");
	cloudsql_settings_clear(&s);
	CHECK(!cloudsql_parse_settings("{\"region\":\"r\"}", 14, &s, err, sizeof(err)));
	CHECK_STR(err, "connectSettings has no serverCaCert.cert");
	size_t len;
	char *b = cloudsql_cert_body("PEM\n", "ya29.t", &len);
	CHECK_STR(b, "{\"public_key\":\"PEM\\n\",\"access_token\":\"ya29.t\"}");
	free(b);
	const char *eph = "{\"ephemeralCert\":{\"cert\":\"C\"}}";
	char *cert = cloudsql_parse_cert(eph, strlen(eph), err, sizeof(err));
	CHECK_STR(cert, "C");
	free(cert);
}

/* §3.8.2 c and §3.8.4. */
static void test_connector_timing(void)
{
	CHECK(cloudsql_retry_delay_ms(-1, 503, 0.5) == 0);
	CHECK(cloudsql_retry_delay_ms(-1, 403, 0.5) == -1);
	int64_t d0 = cloudsql_retry_delay_ms(0, 500, 0.0), d0b = cloudsql_retry_delay_ms(0, 500, 0.999);
	CHECK(d0 >= 323 && d0 <= 324 && d0b >= 520 && d0b <= 524);
	int64_t d3 = cloudsql_retry_delay_ms(3, 500, 0.0);
	CHECK(d3 >= 1370 && d3 <= 1372);
	CHECK(cloudsql_retry_delay_ms(4, 500, 0.0) == -1);
	CHECK(connector_refresh_margin(7200) == 3600);
	CHECK(connector_refresh_margin(3599) == 240);
	CHECK(connector_refresh_margin(60) == 30);
}

/* §3.9.4's worked bytes, and the answers. */
static void test_mdx(void)
{
	static const unsigned char want[] = {
		0x00, 0x00, 0x00, 0x2c, 0x0a, 0x1a, 0x61, 0x6c, 0x6c, 0x6f, 0x79, 0x64,
		0x62, 0x2d, 0x67, 0x6f, 0x2d, 0x63, 0x6f, 0x6e, 0x6e, 0x65, 0x63, 0x74,
		0x6f, 0x72, 0x2f, 0x31, 0x2e, 0x30, 0x2e, 0x30, 0x10, 0x02, 0x1a, 0x0c,
		0x79, 0x61, 0x32, 0x39, 0x2e, 0x63, 0x2e, 0x54, 0x4f, 0x4b, 0x45, 0x4e,
	};
	size_t n = 0;
	unsigned char *f = mdx_request("alloydb-go-connector/1.0.0", MDX_AUTH_AUTO_IAM, "ya29.c.TOKEN", &n);
	CHECK(n == sizeof(want) && memcmp(f, want, n) == 0);
	free(f);
	char tok[301];
	memset(tok, 'x', 300);
	tok[300] = '\0';
	f = mdx_request("", MDX_AUTH_UNSPECIFIED, tok, &n);
	CHECK(n == 4 + 1 + 2 + 300 && f[4] == 0x1a && f[5] == 0xac && f[6] == 0x02);
	free(f);
	static const unsigned char ok[] = { 0x08, 0x01 };
	static const unsigned char no[] = { 0x08, 0x02, 0x12, 0x0f, 'I', 'A', 'M', ' ', 'a', 'u',
					    't',  'h',  ' ',  'f',  'a', 'i', 'l', 'e', 'd' };
	static const unsigned char cut[] = { 0x08, 0x02, 0x12, 0x40, 'I' };
	char err[200];
	CHECK(mdx_parse_response(ok, sizeof(ok), err, sizeof(err)));
	CHECK(!mdx_parse_response(no, sizeof(no), err, sizeof(err)));
	CHECK_STR(err, "the metadata exchange was refused: IAM auth failed");
	CHECK(!mdx_parse_response(cut, sizeof(cut), err, sizeof(err)));
	CHECK_STR(err, "the metadata exchange answer is malformed");
	static const unsigned char head[] = { 0, 0, 0, 2 }, huge[] = { 0x7f, 0, 0, 0 };
	CHECK(mdx_frame_length(head) == 2 && mdx_frame_length(huge) == -1);
}

static void test_alloydb_parse(void)
{
	struct alloydb_name n;
	CHECK(alloydb_parse_name("projects/example.com:p/locations/us-central1/clusters/c1/instances/i1", &n));
	CHECK_STR(n.project, "example.com:p");
	CHECK_STR(n.region, "us-central1");
	CHECK_STR(n.cluster, "c1");
	CHECK_STR(n.instance, "i1");
	CHECK(!alloydb_parse_name("projects/p/locations/r/clusters/c/instances/i/x", &n));
	CHECK(!alloydb_parse_name("projects/p/locations/r/instances/i", &n));
	CHECK(!alloydb_parse_name("projects/a:b:c/locations/r/clusters/c/instances/i", &n));
	CHECK(!alloydb_parse_name("projects//locations/r/clusters/c/instances/i", &n));
	struct alloydb_info info;
	char err[200];
	const char *ci =
		"{\"ipAddress\":\"10.0.0.5\",\"psc_dns_name\":\"x.alloydb-psc.goog.\",\"instanceUid\":\"u\"}";
	CHECK(alloydb_parse_info(ci, strlen(ci), &info, err, sizeof(err)));
	CHECK_STR(info.private_ip, "10.0.0.5");
	CHECK_STR(info.psc_dns, "x.alloydb-psc.goog");
	CHECK(info.public_ip == NULL);
	alloydb_info_clear(&info);
	CHECK(!alloydb_parse_info("{\"instanceUid\":\"u\"}", 19, &info, err, sizeof(err)));
	CHECK_STR(err, "connectionInfo names no address of the instance");
	const char *gc = "{\"pemCertificateChain\":[\"LEAF\",\"INTER\"],\"caCert\":\"ROOT\"}";
	char *chain, *ca;
	CHECK(alloydb_parse_cert(gc, strlen(gc), &chain, &ca, err, sizeof(err)));
	CHECK_STR(chain, "LEAF\nINTER\n");
	CHECK_STR(ca, "ROOT");
	free(chain);
	free(ca);
	CHECK(!alloydb_parse_cert("{\"caCert\":\"ROOT\"}", 17, &chain, &ca, err, sizeof(err)));
	size_t len;
	char *b = alloydb_cert_body("PEM", 3600, &len);
	CHECK_STR(b, "{\"publicKey\":\"PEM\",\"certDuration\":\"3600s\",\"useMetadataExchange\":true}");
	free(b);
}

int main(void)
{
	test_mdx();
	test_alloydb_parse();
	test_instance_names();
	test_connect_settings();
	test_connector_timing();
	test_key = EVP_RSA_gen(2048);
	test_assertion();
	test_files();
	test_bodies();
	test_answers();
	test_retries();
	test_users();
	EVP_PKEY_free(test_key);
	return unit_finish("test_gcp");
}
