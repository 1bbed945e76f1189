/* SigV4 presign and header signing against SigV4 query presigning to the published SigV4 test vectors:
 * the aws-signing-test-suite vectors, worked examples A-D, and RDS/DSQL
 * token rules. */
#include "token/sigv4.h"
#include "token/aws_token.h"
#include "core/util.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* 2015-08-30T12:36:00Z */
#define T0 INT64_C(1440938160)
#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_SCOPE "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request"

static char err[256];

static struct sigv4_signer suite_signer(const char *token)
{
	struct sigv4_signer s = {
		.access_key_id = AKID,
		.secret_access_key = SECRET,
		.session_token = token,
		.region = "us-east-1",
		.service = "service",
		.now = T0,
	};
	return s;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One aws-c-auth v4 case: presign with 3600 s, compare the signature. */
static void suite_case(const char *name, const char *path, const struct sigv4_param *params, size_t n,
		       const char *token, const char *want_sig)
{
	struct sigv4_signer s = suite_signer(token);
	struct sigv4_trace tr;
	char *url = sigv4_presign(&s, "example.amazonaws.com", path, params, n, 3600, &tr, err, sizeof(err));

	CHECK(url != NULL);
	if (!url) {
		fprintf(stderr, "  case %s: %s\n", name, err);
		return;
	}
	if (strcmp(tr.signature, want_sig) != 0)
		fprintf(stderr, "  case %s: got %s\n%s\n", name, tr.signature, tr.canonical_request);
	CHECK_STR(tr.signature, want_sig);
	char *tail = xasprintf("&X-Amz-Signature=%s", want_sig);
	CHECK(ends_with(url, tail));
	free(tail);
	secret_free(url);
	sigv4_trace_clear(&tr);
}

static void test_suite_vectors(void)
{
	struct sigv4_signer s = suite_signer(NULL);
	struct sigv4_trace tr;
	char *url;

	/* get-vanilla, with every intermediate value from the published SigV4 test vectors. */
	url = sigv4_presign(&s, "example.amazonaws.com", "/", NULL, 0, 3600, &tr, err, sizeof(err));
	CHECK(url != NULL);
	CHECK_STR(tr.canonical_request,
		  "GET\n/\n"
		  "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" SUITE_SCOPE
		  "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\n"
		  "host:example.amazonaws.com\n\nhost\n" EMPTY_HASH);
	CHECK_STR(tr.string_to_sign,
		  "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		  "bb7705b4aa3cb8e8f5e1e0b3d4c0b64030797a313c8ceee43e33117cc43eadc5");
	CHECK_STR(tr.signature, "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d");
	CHECK_STR(url, "example.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" SUITE_SCOPE
		       "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600"
		       "&X-Amz-SignedHeaders=host&X-Amz-Signature="
		       "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d");
	secret_free(url);
	sigv4_trace_clear(&tr);

	/* get-vanilla-query: "GET /?" has no parameters. */
	suite_case("get-vanilla-query", "/", NULL, 0, NULL,
		   "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d");

	suite_case("get-vanilla-with-session-token", "/", NULL, 0,
		   "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
		   "7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c");

	static const char unreserved[] = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	const struct sigv4_param unres[] = { { unreserved, unreserved } };
	suite_case("get-vanilla-query-unreserved", "/", unres, 1, NULL,
		   "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf");

	const struct sigv4_param utf8q[] = { { "\xe1\x88\xb4", "bar" } };
	suite_case("get-vanilla-utf8-query", "/", utf8q, 1, NULL,
		   "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600");

	suite_case("get-utf8", "/\xe1\x88\xb4", NULL, 0, NULL,
		   "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44");

	const struct sigv4_param empty_key[] = { { "Param1", "value1" } };
	suite_case("get-vanilla-empty-query-key", "/", empty_key, 1, NULL,
		   "49096700cbbaa5753443850f40df10f904fc2fdb544dc9512203cc77c471a9de");

	const struct sigv4_param order_enc[] = {
		{ "Param-3", "Value3" },
		{ "Param", "Value2" },
		{ "\xe1\x88\xb4", "Value1" },
	};
	suite_case("get-vanilla-query-order-encoded", "/", order_enc, 3, NULL,
		   "c5f1848ceec943ac2ca68ee720460c23aaae30a2300586597ada94c4a65e4787");

	const struct sigv4_param key_case[] = { { "Param2", "value2" }, { "Param1", "value1" } };
	suite_case("get-vanilla-query-order-key-case", "/", key_case, 2, NULL,
		   "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5");

	suite_case("get-unreserved", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		   NULL, 0, NULL, "95968482db1b9e0fadef6efc1bd24689f77c77d9ef56919c96a28cc92e0d6005");

	/* Order of the emitted query: operation params as given, auth params after. */
	s = suite_signer(NULL);
	url = sigv4_presign(&s, "example.amazonaws.com", "/", key_case, 2, 3600, NULL, err, sizeof(err));
	CHECK(url &&
	      strncmp(url, "example.amazonaws.com/?Param2=value2&Param1=value1&X-Amz-Algorithm=", 67) == 0);
	secret_free(url);
	/* get-utf8 writes the encoded path into the URL. */
	url = sigv4_presign(&s, "example.amazonaws.com", "/\xe1\x88\xb4", NULL, 0, 3600, NULL, err,
			    sizeof(err));
	CHECK(url && strncmp(url, "example.amazonaws.com/%E1%88%B4?X-Amz-Algorithm=", 48) == 0);
	secret_free(url);
}

static void test_header_vectors(void)
{
	struct sigv4_signer s = suite_signer(NULL);
	struct sigv4_auth a;
	struct sigv4_trace tr;
	const struct sigv4_param host[] = { { "Host", "example.amazonaws.com" } };

	/* botocore aws4_testsuite / aws-c-auth get-vanilla (header variant). */
	CHECK(sigv4_sign_headers(&s, "GET", "/", NULL, 0, host, 1, NULL, 0, &a, &tr, err, sizeof(err)));
	CHECK_STR(tr.canonical_request, "GET\n/\n\nhost:example.amazonaws.com\n"
					"x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_HASH);
	CHECK_STR(a.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	CHECK_STR(a.authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
				   "service/aws4_request, SignedHeaders=host;x-amz-date, Signature="
				   "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	CHECK_STR(a.amz_date, "20150830T123600Z");
	sigv4_auth_clear(&a);
	sigv4_trace_clear(&tr);

	/* get-vanilla-with-session-token (trust .authz, the published SigV4 test vectors). */
	s = suite_signer("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267");
	CHECK(sigv4_sign_headers(&s, "GET", "/", NULL, 0, host, 1, NULL, 0, &a, NULL, err, sizeof(err)));
	CHECK_STR(a.signature, "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
	CHECK(strstr(a.authorization, "SignedHeaders=host;x-amz-date;x-amz-security-token,") != NULL);
	sigv4_auth_clear(&a);

	/* Header values are trimmed and folded; names lower-cased; Host case-insensitive. */
	s = suite_signer(NULL);
	const struct sigv4_param messy[] = { { "HOST", "  example.amazonaws.com \t " } };
	CHECK(sigv4_sign_headers(&s, "GET", "/", NULL, 0, messy, 1, NULL, 0, &a, NULL, err, sizeof(err)));
	CHECK_STR(a.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	sigv4_auth_clear(&a);

	/* Repeated names are joined with a comma in input order. */
	const struct sigv4_param dup[] = {
		{ "Host", "example.amazonaws.com" },
		{ "My-Header1", "value2" },
		{ "My-Header1", "value1" },
	};
	CHECK(sigv4_sign_headers(&s, "GET", "/", NULL, 0, dup, 3, NULL, 0, &a, &tr, err, sizeof(err)));
	CHECK(strstr(tr.canonical_request, "\nmy-header1:value2,value1\n") != NULL);
	CHECK(strstr(a.authorization, "SignedHeaders=host;my-header1;x-amz-date,") != NULL);
	sigv4_auth_clear(&a);
	sigv4_trace_clear(&tr);
}

/* STS AssumeRole exactly as assume-role profiles sends it; expected values from botocore
 * 1.43 (SigV4Auth.add_auth with frozen time). */
static void test_sts_assume_role_signing(void)
{
	static const char body[] = "Action=AssumeRole&Version=2011-06-15&RoleSessionName=tb-session"
				   "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmy-role";
	struct sigv4_signer s = {
		.access_key_id = AKID,
		.secret_access_key = SECRET,
		.region = "us-east-1",
		.service = "sts",
		.now = T0,
	};
	struct sigv4_auth a;
	const struct sigv4_param h1[] = {
		{ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
		{ "Host", "sts.us-east-1.amazonaws.com" },
	};

	CHECK(sigv4_sign_headers(&s, "POST", "/", NULL, 0, h1, 2, body, strlen(body), &a, NULL, err,
				 sizeof(err)));
	CHECK_STR(a.authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/"
				   "aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
				   "1bbd12322caa8029435c538a48e9442684271dbc6379df2efe36765d1f31a356");
	sigv4_auth_clear(&a);

	s.region = "eu-west-1";
	s.session_token = "FwoGZXIvYXdzEBYaDk+token/==";
	const struct sigv4_param h2[] = {
		{ "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
		{ "Host", "sts.eu-west-1.amazonaws.com" },
	};
	CHECK(sigv4_sign_headers(&s, "POST", "/", NULL, 0, h2, 2, body, strlen(body), &a, NULL, err,
				 sizeof(err)));
	CHECK_STR(a.authorization,
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/sts/"
		  "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
		  "Signature=437715eb4dd1948608457ba578b04ff5b88fb7359551f99ed7f25af3cca42a05");
	sigv4_auth_clear(&a);
}

static void test_sigv4_errors(void)
{
	struct sigv4_signer s = suite_signer(NULL);
	struct sigv4_auth a;
	const struct sigv4_param host[] = { { "Host", "example.amazonaws.com" } };
	const struct sigv4_param bad[] = { { "x-amz-signature", "x" } };
	char *url;

	CHECK(sigv4_presign(&s, "example.amazonaws.com", "/", NULL, 0, 0, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "lifetime") != NULL);
	CHECK(sigv4_presign(&s, "example.amazonaws.com", "/", NULL, 0, SIGV4_MAX_EXPIRES + 1, NULL, err,
			    sizeof(err)) == NULL);
	url = sigv4_presign(&s, "example.amazonaws.com", "/", NULL, 0, SIGV4_MAX_EXPIRES, NULL, err,
			    sizeof(err));
	CHECK(url && strstr(url, "X-Amz-Expires=604800&") != NULL);
	secret_free(url);
	CHECK(sigv4_presign(&s, "example.amazonaws.com", "/", bad, 1, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "X-Amz-Signature") != NULL);
	CHECK(sigv4_presign(&s, "bad host", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(sigv4_presign(&s, "a/b", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(sigv4_presign(&s, "", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(sigv4_presign(&s, "h", "nopath", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	s.region = "us/east";
	CHECK(sigv4_presign(&s, "h", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "region") != NULL);
	s = suite_signer(NULL);
	s.secret_access_key = "";
	CHECK(sigv4_presign(&s, "h", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "secret") != NULL);
	s = suite_signer("tok\nen");
	CHECK(sigv4_presign(&s, "h", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "tok\nen") == NULL && strstr(err, "session token") != NULL);
	s = suite_signer(NULL);
	s.now = -1;
	CHECK(sigv4_presign(&s, "h", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);
	s = suite_signer(NULL);
	s.access_key_id = "AK/ID";
	CHECK(sigv4_presign(&s, "h", "/", NULL, 0, 60, NULL, err, sizeof(err)) == NULL);

	s = suite_signer(NULL);
	const struct sigv4_param nohost[] = { { "Content-Type", "text/plain" } };
	CHECK(!sigv4_sign_headers(&s, "GET", "/", NULL, 0, nohost, 1, NULL, 0, &a, NULL, err, sizeof(err)));
	CHECK(strstr(err, "Host") != NULL);
	const struct sigv4_param date[] = { host[0], { "X-Amz-Date", "20150830T123600Z" } };
	CHECK(!sigv4_sign_headers(&s, "GET", "/", NULL, 0, date, 2, NULL, 0, &a, NULL, err, sizeof(err)));
	const struct sigv4_param crlf[] = { host[0], { "X-Foo", "a\r\nInjected: 1" } };
	CHECK(!sigv4_sign_headers(&s, "GET", "/", NULL, 0, crlf, 2, NULL, 0, &a, NULL, err, sizeof(err)));
	const struct sigv4_param badname[] = { host[0], { "Bad Name", "x" } };
	CHECK(!sigv4_sign_headers(&s, "GET", "/", NULL, 0, badname, 2, NULL, 0, &a, NULL, err, sizeof(err)));
	CHECK(!sigv4_sign_headers(&s, "get", "/", NULL, 0, host, 1, NULL, 0, &a, NULL, err, sizeof(err)));
	CHECK(a.authorization == NULL);
}

static struct aws_credentials example_creds(const char *token)
{
	struct aws_credentials c = {
		.access_key_id = (char *)AKID,
		.secret_access_key = (char *)SECRET,
		.session_token = (char *)token,
	};
	return c;
}

#define EX_A_TOKEN \
	"mydb.123456789012.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=iam_user" \
	"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1" \
	"%2Frds-db%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900" \
	"&X-Amz-SignedHeaders=host&X-Amz-Signature=" \
	"93205406f95a81a2f41be70b83c64cffdbf019c054e14baeabe3213cc9a9036e"

/* Worked examples A and B (the RDS IAM token): the sigv4 layer with traces, then the RDS API. */
static void test_example_a_b(void)
{
	struct sigv4_signer s = {
		.access_key_id = AKID,
		.secret_access_key = SECRET,
		.region = "us-east-1",
		.service = "rds-db",
		.now = T0,
	};
	const struct sigv4_param pa[] = { { "Action", "connect" }, { "DBUser", "iam_user" } };
	struct sigv4_trace tr;
	char *tok;

	tok = sigv4_presign(&s, "mydb.123456789012.us-east-1.rds.amazonaws.com:5432", "/", pa, 2, 900, &tr,
			    err, sizeof(err));
	CHECK_STR(tr.canonical_request,
		  "GET\n/\nAction=connect&DBUser=iam_user&X-Amz-Algorithm=AWS4-HMAC-SHA256"
		  "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Frds-db%2Faws4_request"
		  "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\n"
		  "host:mydb.123456789012.us-east-1.rds.amazonaws.com:5432\n\nhost\n" EMPTY_HASH);
	CHECK_STR(tr.string_to_sign,
		  "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/rds-db/aws4_request\n"
		  "ec3893497dbe56890004e69ad074fac1561082be60738d78c54e9e30b5cd068c");
	CHECK_STR(tr.signature, "93205406f95a81a2f41be70b83c64cffdbf019c054e14baeabe3213cc9a9036e");
	CHECK_STR(tok, EX_A_TOKEN);
	secret_free(tok);
	sigv4_trace_clear(&tr);

	struct aws_credentials c = example_creds(NULL);
	struct aws_db_target t = {
		.host = "mydb.123456789012.us-east-1.rds.amazonaws.com",
		.port = 5432,
		.user = "iam_user",
	};
	int64_t exp = 0;
	tok = aws_rds_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK_STR(tok, EX_A_TOKEN);
	CHECK(exp == T0 + 900);
	secret_free(tok);

	/* B: session token and a user that needs encoding. */
	s.session_token = "AQoDYXdzEJr//session+token=";
	const struct sigv4_param pb[] = { { "Action", "connect" }, { "DBUser", "iam user@x" } };
	tok = sigv4_presign(&s, "mydb.123456789012.us-east-1.rds.amazonaws.com:5432", "/", pb, 2, 900, &tr,
			    err, sizeof(err));
	CHECK(strstr(tr.canonical_request,
		     "\nAction=connect&DBUser=iam%20user%40x&X-Amz-Algorithm=AWS4-HMAC-SHA256"
		     "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Frds-db%2Faws4_request"
		     "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-Security-Token="
		     "AQoDYXdzEJr%2F%2Fsession%2Btoken%3D&X-Amz-SignedHeaders=host\n") != NULL);
	CHECK(ends_with(tr.string_to_sign,
			"\n1208ac1a77c2638ec1e84004e45905853210102003b2b5fbec3654a8adbcfe88"));
	CHECK_STR(tr.signature, "315a729c3c6601785ea4ae2e11c039f5379e5601cdbd9cd48323c5f8d05c733c");
	sigv4_trace_clear(&tr);
	secret_free(tok);

	c = example_creds("AQoDYXdzEJr//session+token=");
	c.expiration = T0 + 300; /* credentials die before the token would */
	t.user = "iam user@x";
	tok = aws_rds_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK_STR(tok,
		  "mydb.123456789012.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=iam%20user%40x"
		  "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1"
		  "%2Frds-db%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900"
		  "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=AQoDYXdzEJr%2F%2Fsession%2Btoken%3D"
		  "&X-Amz-Signature=315a729c3c6601785ea4ae2e11c039f5379e5601cdbd9cd48323c5f8d05c733c");
	CHECK(exp == T0 + 300);
	secret_free(tok);
}

static void test_rds_rules(void)
{
	struct aws_credentials c = example_creds("AQoDYXdzEJr//session+token=");
	struct aws_db_target t = {
		.host = "MyDB.123456789012.US-EAST-1.rds.amazonaws.com",
		.port = 5432,
		.user = "iam_user",
	};
	char *tok, *r;

	/* the SigV4 host text rule: host lower-cased when signed, written as configured; region derived
	 * and lower-cased. Expected value from botocore 1.43. */
	tok = aws_rds_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK_STR(tok, "MyDB.123456789012.US-EAST-1.rds.amazonaws.com:5432/?Action=connect&DBUser=iam_user"
		       "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1"
		       "%2Frds-db%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900"
		       "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=AQoDYXdzEJr%2F%2Fsession%2Btoken%3D"
		       "&X-Amz-Signature=6f5a850d3869b002db6ea5a59308e749f6b246d2be4b704794bed05c0faaba2a");
	secret_free(tok);

	/* Region derivation: instance, cluster, reader, proxy, China. */
	static const char *const good[][2] = {
		{ "mydb.abcdefghijkl.eu-west-1.rds.amazonaws.com", "eu-west-1" },
		{ "prod.cluster-abcdefghijkl.us-west-2.rds.amazonaws.com", "us-west-2" },
		{ "prod.cluster-ro-abcdefghijkl.ap-southeast-2.rds.amazonaws.com", "ap-southeast-2" },
		{ "px.proxy-abcdefghijkl.us-gov-west-1.rds.amazonaws.com", "us-gov-west-1" },
		{ "db.abcdefghijkl.cn-north-1.rds.amazonaws.com.cn", "cn-north-1" },
		{ "DB.X.EU-CENTRAL-1.RDS.AMAZONAWS.COM", "eu-central-1" },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r = aws_rds_region_from_host(good[i][0]);
		CHECK_STR(r, good[i][1]);
		free(r);
	}
	static const char *const bad[] = {
		"db.example.com",
		"eu-west-1.rds.amazonaws.com",
		".eu-west-1.rds.amazonaws.com",
		"db.x.rds.amazonaws.com",
		"db.x.eu_west-1.rds.amazonaws.com",
		"rds.amazonaws.com",
		"db.x.eu-west-1.rds.amazonaws.com.evil",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(aws_rds_region_from_host(bad[i]) == NULL);
	CHECK(aws_rds_region_from_host(NULL) == NULL);

	/* Custom CNAME: error unless region= is set. */
	t.host = "db.example.com";
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "cannot derive the AWS region from host \"db.example.com\"; set region=");
	t.region = "eu-west-1";
	tok = aws_rds_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK(tok && strncmp(tok, "db.example.com:5432/?Action=connect&", 36) == 0);
	CHECK(tok && strstr(tok, "%2Feu-west-1%2Frds-db%2F") != NULL);
	secret_free(tok);
	/* An explicit region wins over the host's. */
	t.host = "mydb.123456789012.us-east-1.rds.amazonaws.com";
	tok = aws_rds_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK(tok && strstr(tok, "%2Feu-west-1%2Frds-db%2F") != NULL);
	secret_free(tok);
	t.region = "not a region";
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "invalid AWS region") != NULL);
	t.region = NULL;

	/* Port always present, even 443; IPv6 literals get brackets. */
	t.port = 443;
	tok = aws_rds_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK(tok && strncmp(tok, "mydb.123456789012.us-east-1.rds.amazonaws.com:443/?", 51) == 0);
	secret_free(tok);
	t.host = "::1";
	t.region = "us-east-1";
	tok = aws_rds_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK(tok && strncmp(tok, "[::1]:443/?", 11) == 0);
	secret_free(tok);
	t.region = NULL;
	t.host = "mydb.123456789012.us-east-1.rds.amazonaws.com";

	t.port = 0;
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	t.port = 65536;
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	t.port = 5432;
	t.user = "";
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "user") != NULL);
	t.user = "iam_user";
	t.host = "bad host";
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	t.host = "mydb.123456789012.us-east-1.rds.amazonaws.com";
	c.secret_access_key = NULL;
	CHECK(aws_rds_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "no AWS credentials");
	CHECK(aws_rds_token(NULL, &t, T0, NULL, err, sizeof(err)) == NULL);
}

#define DSQL_HOST "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"
#define EX_C_TOKEN \
	DSQL_HOST "/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256" \
		  "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fdsql%2Faws4_request" \
		  "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host" \
		  "&X-Amz-Signature=3efa539c4d1a7fb2d9c58013762d8ef892d26f721841801a4fd6122e0b0a8262"
#define EX_D_TOKEN \
	DSQL_HOST "/?Action=DbConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256" \
		  "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fdsql%2Faws4_request" \
		  "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" \
		  "&X-Amz-Signature=9ba66dbc2584121c8caeb4a7589112848d23116f5e89845d4dbd43484a68e998"

static void test_example_c_d(void)
{
	struct sigv4_signer s = {
		.access_key_id = AKID,
		.secret_access_key = SECRET,
		.region = "us-east-1",
		.service = "dsql",
		.now = T0,
	};
	const struct sigv4_param pc[] = { { "Action", "DbConnectAdmin" } };
	const struct sigv4_param pd[] = { { "Action", "DbConnect" } };
	struct sigv4_trace tr;
	char *tok;

	tok = sigv4_presign(&s, DSQL_HOST, "/", pc, 1, 900, &tr, err, sizeof(err));
	CHECK_STR(tr.canonical_request,
		  "GET\n/\nAction=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256"
		  "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fdsql%2Faws4_request"
		  "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\n"
		  "host:" DSQL_HOST "\n\nhost\n" EMPTY_HASH);
	CHECK(ends_with(tr.string_to_sign,
			"\n02581f608ee2dfc530e36eca2022872ed8de853a59119f9f9a1a43362ebdf38e"));
	CHECK_STR(tok, EX_C_TOKEN);
	secret_free(tok);
	sigv4_trace_clear(&tr);

	tok = sigv4_presign(&s, DSQL_HOST, "/", pd, 1, 3600, &tr, err, sizeof(err));
	CHECK(ends_with(tr.string_to_sign,
			"\nd5f658317c4289784a503fb9050dd80d93879bb6a939f95c3eeec99fa0836c88"));
	CHECK_STR(tr.signature, "9ba66dbc2584121c8caeb4a7589112848d23116f5e89845d4dbd43484a68e998");
	CHECK_STR(tok, EX_D_TOKEN);
	secret_free(tok);
	sigv4_trace_clear(&tr);

	/* Through the DSQL API. */
	struct aws_credentials c = example_creds(NULL);
	struct aws_db_target t = { .host = DSQL_HOST, .port = 5432, .user = "admin" };
	int64_t exp = 0;
	tok = aws_dsql_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK_STR(tok, EX_C_TOKEN);
	CHECK(exp == T0 + 900);
	secret_free(tok);
	t.user = "app_user";
	t.duration = 3600;
	tok = aws_dsql_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK_STR(tok, EX_D_TOKEN);
	CHECK(exp == T0 + 3600);
	secret_free(tok);
	/* Bare cluster id + region expands to the same host and token. */
	t.host = "abcdefghijklmnopqrstuvwxyz";
	t.region = "us-east-1";
	tok = aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK_STR(tok, EX_D_TOKEN);
	secret_free(tok);
	t.region = NULL;
	t.env_region = "us-east-1";
	tok = aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK_STR(tok, EX_D_TOKEN);
	secret_free(tok);
}

static void test_dsql_rules(void)
{
	struct aws_credentials c = example_creds("IQoJb3JpZ2luX2VjE+/=abc");
	struct aws_db_target t = {
		.host = "abcdefghijklmnopqrstuvwxyz.dsql.eu-west-1.on.aws",
		.user = "reader",
		.duration = 60,
	};
	char *tok, *r;
	int64_t exp;

	/* botocore 1.43: generate_db_connect_auth_token(ExpiresIn=60) with a session token. */
	tok = aws_dsql_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK_STR(tok, "abcdefghijklmnopqrstuvwxyz.dsql.eu-west-1.on.aws/?Action=DbConnect"
		       "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830"
		       "%2Feu-west-1%2Fdsql%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60"
		       "&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2B%2F%3Dabc"
		       "&X-Amz-Signature=380c3589578dee45a99cd853ccdf93ffce2d71043bce44222dc027458e4c4543");
	CHECK(exp == T0 + 60);
	secret_free(tok);

	/* Only exactly "admin" is the admin action. */
	static const char *const nonadmin[] = { "Admin", "admin ", "administrator", "ADMIN" };
	for (size_t i = 0; i < sizeof(nonadmin) / sizeof(nonadmin[0]); i++) {
		t.user = nonadmin[i];
		tok = aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err));
		CHECK(tok && strstr(tok, "/?Action=DbConnect&") != NULL);
		secret_free(tok);
	}
	t.user = "admin";
	tok = aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK(tok && strstr(tok, "/?Action=DbConnectAdmin&") != NULL);
	secret_free(tok);

	/* Duration bounds: 0 = 900, 1..604800, else error. */
	t.duration = 0;
	tok = aws_dsql_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK(tok && strstr(tok, "&X-Amz-Expires=900&") != NULL && exp == T0 + 900);
	secret_free(tok);
	t.duration = 1;
	tok = aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err));
	CHECK(tok && strstr(tok, "&X-Amz-Expires=1&") != NULL);
	secret_free(tok);
	t.duration = 604800;
	tok = aws_dsql_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK(tok && strstr(tok, "&X-Amz-Expires=604800&") != NULL && exp == T0 + 604800);
	secret_free(tok);
	c.expiration = T0 + 3600;
	tok = aws_dsql_token(&c, &t, T0, &exp, err, sizeof(err));
	CHECK(tok && exp == T0 + 3600);
	secret_free(tok);
	t.duration = 604801;
	CHECK(aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "DSQL token duration 604801 s is outside 1..604800 s");
	t.duration = -5;
	CHECK(aws_dsql_token(&c, &t, T0, NULL, err, sizeof(err)) == NULL);
	t.duration = 0;

	/* Region from the host name, suffix variants, case. */
	static const char *const good[][2] = {
		{ "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "us-east-1" },
		{ "abcdefghijklmnopqrstuvwxyz.dsql-fnh4.ap-northeast-1.on.aws", "ap-northeast-1" },
		{ "X.DSQL.EU-WEST-2.ON.AWS", "eu-west-2" },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r = aws_dsql_region_from_host(good[i][0]);
		CHECK_STR(r, good[i][1]);
		free(r);
	}
	static const char *const bad[] = {
		"dsql.us-east-1.on.aws",
		"abc.xdsql.us-east-1.on.aws",
		"abc.dsql.on.aws",
		"abc.dsql.us-east-1.on.aws.x",
		"abcdefghijklmnopqrstuvwxyz",
		"db.example.com",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(aws_dsql_region_from_host(bad[i]) == NULL);

	/* Bare cluster ids. */
	CHECK(aws_dsql_is_cluster_id("abcdefghijklmnopqrstuvwxyz"));
	CHECK(aws_dsql_is_cluster_id("0123456789abcdefghijklmnop"));
	CHECK(!aws_dsql_is_cluster_id("abcdefghijklmnopqrstuvwxy"));
	CHECK(!aws_dsql_is_cluster_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
	CHECK(!aws_dsql_is_cluster_id("abcdefghijklmnopqrstuvwxy."));
	CHECK(!aws_dsql_is_cluster_id(NULL));

	struct aws_db_target b = { .host = "abcdefghijklmnopqrstuvwxyz", .user = "admin" };
	CHECK(aws_dsql_host(&b, err, sizeof(err)) == NULL);
	CHECK_STR(err, "cannot derive the AWS region from host \"abcdefghijklmnopqrstuvwxyz\"; set region=");
	CHECK(aws_dsql_token(&c, &b, T0, NULL, err, sizeof(err)) == NULL);
	b.env_region = "ap-south-1";
	r = aws_dsql_host(&b, err, sizeof(err));
	CHECK_STR(r, "abcdefghijklmnopqrstuvwxyz.dsql.ap-south-1.on.aws");
	free(r);
	b.region = "eu-north-1"; /* explicit beats the environment */
	r = aws_dsql_host(&b, err, sizeof(err));
	CHECK_STR(r, "abcdefghijklmnopqrstuvwxyz.dsql.eu-north-1.on.aws");
	free(r);
	r = aws_dsql_region(&b, err, sizeof(err));
	CHECK_STR(r, "eu-north-1");
	free(r);
	/* Explicit region beats the host's; the host stays as configured. */
	b.host = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";
	r = aws_dsql_region(&b, err, sizeof(err));
	CHECK_STR(r, "eu-north-1");
	free(r);
	b.region = NULL;
	r = aws_dsql_region(&b, err, sizeof(err)); /* host beats the environment */
	CHECK_STR(r, "us-east-1");
	free(r);
	r = aws_dsql_host(&b, err, sizeof(err));
	CHECK_STR(r, "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws");
	free(r);
	/* A custom name (loopback stand-in) is signed as is with the given region. */
	b.host = "localhost";
	b.env_region = NULL;
	CHECK(aws_dsql_token(&c, &b, T0, NULL, err, sizeof(err)) == NULL);
	CHECK_STR(err, "cannot derive the AWS region from host \"localhost\"; set region=");
	b.region = "us-east-1";
	tok = aws_dsql_token(&c, &b, T0, NULL, err, sizeof(err));
	CHECK(tok && strncmp(tok, "localhost/?Action=DbConnectAdmin&", 33) == 0);
	secret_free(tok);
	b.env_region = "bad region";
	b.region = NULL;
	CHECK(aws_dsql_region(&b, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "environment") != NULL);
	b.user = NULL;
	b.region = "us-east-1";
	CHECK(aws_dsql_token(&c, &b, T0, NULL, err, sizeof(err)) == NULL);
}

int main(void)
{
	test_suite_vectors();
	test_header_vectors();
	test_sts_assume_role_signing();
	test_sigv4_errors();
	test_example_a_b();
	test_rds_rules();
	test_example_c_d();
	test_dsql_rules();
	return unit_finish("test_sigv4");
}
