/* AWS shared files, profile resolution, STS XML, credential JSON and
 * ISO-8601 parsing (AWS credential objects, the AWS credential sources, the STS wire format). */
#include "token/aws_files.h"
#include "token/aws_parse.h"
#include "core/util.h"
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[512];

/* ---------- ISO-8601 ---------- */

static void test_iso8601(void)
{
	static const struct {
		const char *text;
		int64_t want;
	} good[] = {
		{ "2030-01-01T06:00:00Z", INT64_C(1893477600) },
		{ "2019-11-09T13:34:41.123Z", INT64_C(1573306481) },
		{ "2019-11-09T13:34:41.999999999Z", INT64_C(1573306481) },
		{ "2019-11-09T13:34:41.1z", INT64_C(1573306481) },
		{ "2019-11-09t13:34:41Z", INT64_C(1573306481) },
		{ "2019-11-09T13:34:41+00:00", INT64_C(1573306481) },
		{ "2019-11-09T13:34:41-00:00", INT64_C(1573306481) },
		{ "2019-11-09T14:34:41+01:00", INT64_C(1573306481) },
		{ "2019-11-09T08:34:41-0500", INT64_C(1573306481) },
		{ "2019-11-09T13:34:41.5+00:00", INT64_C(1573306481) },
		{ "2024-02-29T23:59:59Z", INT64_C(1709251199) },
		{ "2000-03-01T00:00:00Z", INT64_C(951868800) },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1969-12-31T23:59:59Z", -1 },
		{ "0001-01-01T00:00:00Z", INT64_C(-62135596800) },
		{ "9999-12-31T23:59:59Z", INT64_C(253402300799) },
	};
	static const char *const bad[] = {
		"",
		"2030-01-01",
		"2030-01-01T06:00:00",
		"2030-01-01T06:00:00 Z",
		"2030-01-01 06:00:00Z",
		"2030-1-01T06:00:00Z",
		"2030-01-01T06:00Z",
		"2030-13-01T06:00:00Z",
		"2030-00-01T06:00:00Z",
		"2030-02-30T00:00:00Z",
		"2023-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z",
		"2030-01-32T00:00:00Z",
		"2030-01-01T24:00:00Z",
		"2030-01-01T23:60:00Z",
		"2030-01-01T23:59:60Z",
		"2030-01-01T06:00:00.Z",
		"2030-01-01T06:00:00ZZ",
		"2030-01-01T06:00:00+24:00",
		"2030-01-01T06:00:00+01",
		"2030-01-01T06:00:00+01:60",
		"+2030-01-01T06:00:00Z",
		"2030-01-01T06:00:00Z\n",
		" 2030-01-01T06:00:00Z",
		"1893477600",
	};
	int64_t t;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		t = 42;
		bool ok = aws_parse_iso8601(good[i].text, &t);
		if (!ok || t != good[i].want)
			fprintf(stderr, "  iso8601 %s -> %d %lld\n", good[i].text, ok, (long long)t);
		CHECK(ok && t == good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool ok = aws_parse_iso8601(bad[i], &t);
		if (ok)
			fprintf(stderr, "  iso8601 accepted %s\n", bad[i]);
		CHECK(!ok);
	}
	CHECK(!aws_parse_iso8601(NULL, &t));
	/* Every day of 1999-2004 against a running counter. */
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t expect = INT64_C(915148800); /* 1999-01-01 */
	bool all = true;
	for (int y = 1999; y <= 2004; y++) {
		for (int m = 1; m <= 12; m++) {
			int nd = mdays[m - 1] + (m == 2 && y % 4 == 0);
			for (int d = 1; d <= nd; d++) {
				char buf[32];
				snprintf(buf, sizeof(buf), "%04d-%02d-%02dT00:00:00Z", y, m, d);
				if (!aws_parse_iso8601(buf, &t) || t != expect)
					all = false;
				expect += 86400;
			}
		}
	}
	CHECK(all);
}

/* ---------- STS XML ---------- */

#define SESSION_TOKEN_1K \
	"FwoGZXIvYXdzEBYaDHqa0AP1h3u6H6sVmCKsAWbbNZUwRRSoBj0fXHyLsVDLzGP1xtn5Cm5YK1bF8f0p" \
	"Z3CSoQuvxfMxCZ2hZH1n0BjpW+L8UDvmjVqxNAMoqCLnVzU/p3ZyhT6d1s4eZkM2B9vIbO2Eh1fjGbQS" \
	"dXR2KNMBWnmq0gsQeIFJtsl6hNrjYmXXwSL0hBPJt6n6T7Lrq8uNX1PIgJtsVfcfPxpY6s9f2+SNsLvf" \
	"AgAAABBTM2C7i0Xa4kN0dGVycJzbLvnDeTfJ1fe+YqQ3r4gYGqPX6EbWwLrg0Uwq9bmqGbxU5i8NMVcP" \
	"n1CyE4Tr4v7b9JI1vtpZkH6Ql2oM5ptf0hXr3bWwL2XSU9kc9GK8xvf5FhD1G8Bt4NV3a8o7dmeAcwk3" \
	"uJwL1xJTRvUCT3R1WwMnf5hNo5w4UuBsTScXyPqkvtp0F2hJ0K2kZ6V1s8vG3kHTRfxBd5GmE0J7D6qp" \
	"Q0z7d1C2b5v5gH8sJpR4aB5gM7cYjWw1Xn8rW4sPpKj9cX4UvA6Vv3fQmI7JzB8sHqP4kD5LxT2aN9fR" \
	"oY1eK7gH3jS6wQ0tU2vZ5cB8nM1xL4pA7dF0iG3hJ6kR9sT2uV5wX8yZ1aC4eE7fI0gK3jN6mO9pQ2rS" \
	"5tU8vW1xY4zA7bD0cF3gH6iJ9kL2mN5oP8qR1sT4uV7wX0yZ3aB6cD9eF2gH5iJ8kL1mN4oP7qR0sT3u" \
	"V6wX9yZ2aB5cD8eF1gH4iJ7kL0mN3oP6qR9sT2uV5wX8yZ1aB4cD7eF0gH3iJ6kL9mN2oP5qR8sT1uV4" \
	"wX7yZ0aB3cD6eF9gH2iJ5kL8mN1oP4qR7sT0uV3wX6yZ9aB2cD5eF8gH1iJ4kL7mN0oP3qR6sT9uV2wX" \
	"5yZ8aB1cD4eF7gH0iJ3kL6mN9oP2qR5sT8uV1wX4yZ7aB0cD3eF6gH9iJ2kL5mN8oP1qR4sT7uV0wX3y" \
	"Z6aB9cD2eF5gH8iJ1kL4mN7oP0qR3sT6uV9wX2yZ5aB8cD1eF4gH7iJ0kL3mN6oP9qR2sT5uV8wX1yZ4"

#define STS_WEB_OK \
	"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n" \
	"  <AssumeRoleWithWebIdentityResult>\n" \
	"    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n" \
	"    <Audience>sts.amazonaws.com</Audience>\n" \
	"    <AssumedRoleUser>\n" \
	"      <Arn>arn:aws:sts::123456789012:assumed-role/my-role/my-session</Arn>\n" \
	"      <AssumedRoleId>AROAEXAMPLE:my-session</AssumedRoleId>\n" \
	"    </AssumedRoleUser>\n" \
	"    <Credentials>\n" \
	"      <AccessKeyId>ASIAEXAMPLEKEY</AccessKeyId>\n" \
	"      <SecretAccessKey>SecretKeyValue/abc+def</SecretAccessKey>\n" \
	"      <SessionToken>" SESSION_TOKEN_1K "</SessionToken>\n" \
	"      <Expiration>2030-01-01T06:00:00Z</Expiration>\n" \
	"    </Credentials>\n" \
	"    <Provider>oidc.example.com</Provider>\n" \
	"  </AssumeRoleWithWebIdentityResult>\n" \
	"  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>\n" \
	"</AssumeRoleWithWebIdentityResponse>\n"

static bool sts(const char *xml, struct aws_credentials *c, char *code)
{
	return aws_parse_sts_response(xml, strlen(xml), c, code, AWS_STS_CODE_MAX, err, sizeof(err));
}

static void test_sts_success(void)
{
	struct aws_credentials c;
	char code[AWS_STS_CODE_MAX];

	CHECK(sts(STS_WEB_OK, &c, code));
	CHECK_STR(c.access_key_id, "ASIAEXAMPLEKEY");
	CHECK_STR(c.secret_access_key, "SecretKeyValue/abc+def");
	CHECK_STR(c.session_token, SESSION_TOKEN_1K);
	CHECK_STR(c.account_id, "123456789012");
	CHECK(c.expiration == INT64_C(1893477600));
	CHECK_STR(code, "");
	aws_credentials_clear(&c);
	CHECK(c.access_key_id == NULL && c.expiration == 0);

	/* AssumeRole, fractional seconds, no AssumedRoleUser, entities, CDATA. */
	static const char ar[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
				 "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
				 "<AssumeRoleResult><Credentials>"
				 "<AccessKeyId>ASIA2</AccessKeyId>"
				 "<SecretAccessKey>a&amp;b&lt;c</SecretAccessKey>"
				 "<SessionToken><![CDATA[tok+/=]]></SessionToken>"
				 "<Expiration>2019-11-09T13:34:41.123Z</Expiration>"
				 "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	CHECK(sts(ar, &c, code));
	CHECK_STR(c.secret_access_key, "a&b<c");
	CHECK_STR(c.session_token, "tok+/=");
	CHECK(c.account_id == NULL);
	CHECK(c.expiration == INT64_C(1573306481));
	aws_credentials_clear(&c);

	/* A namespace prefix instead of a default namespace. */
	static const char pfx[] =
		"<s:AssumeRoleResponse xmlns:s=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<s:AssumeRoleResult><s:Credentials>"
		"<s:AccessKeyId>ASIA3</s:AccessKeyId><s:SecretAccessKey>x</s:SecretAccessKey>"
		"<s:SessionToken>y</s:SessionToken><s:Expiration>2030-01-01T06:00:00Z</s:Expiration>"
		"</s:Credentials></s:AssumeRoleResult></s:AssumeRoleResponse>";
	CHECK(sts(pfx, &c, NULL));
	CHECK_STR(c.access_key_id, "ASIA3");
	aws_credentials_clear(&c);

	/* Credentials outside the Result element do not count. */
	static const char misplaced[] =
		"<AssumeRoleResponse><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
		"<Expiration>2030-01-01T06:00:00Z</Expiration></Credentials></AssumeRoleResponse>";
	CHECK(!sts(misplaced, &c, code));
	CHECK_STR(err, "malformed STS response: no Credentials/AccessKeyId");
	CHECK_STR(code, "");
	CHECK(c.access_key_id == NULL);

	/* The result element must match the root: AssumeRoleResponse/AssumeRoleWithWebIdentityResult. */
	static const char mismatch[] = "<AssumeRoleResponse><AssumeRoleWithWebIdentityResult><Credentials>"
				       "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
				       "<SessionToken>T</SessionToken><Expiration>2030-01-01T06:00:00Z</Expiration>"
				       "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleResponse>";
	CHECK(!sts(mismatch, &c, code));
}

static void test_sts_errors(void)
{
	struct aws_credentials c;
	char code[AWS_STS_CODE_MAX];

	static const char e1[] = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
				 "  <Error><Type>Sender</Type><Code>AccessDenied</Code>"
				 "<Message>User: arn:aws:iam::123456789012:user/x is not authorized to perform: "
				 "sts:AssumeRole</Message></Error>\n"
				 "  <RequestId>4e2ba9c0-0000-0000-0000-000000000000</RequestId>\n"
				 "</ErrorResponse>\n";
	CHECK(!sts(e1, &c, code));
	CHECK_STR(code, "AccessDenied");
	CHECK_STR(err, "STS returned error AccessDenied: User: arn:aws:iam::123456789012:user/x "
		       "is not authorized to perform: sts:AssumeRole");

	static const char e2[] = "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
	CHECK(!sts(e2, &c, code));
	CHECK_STR(code, "Throttling");
	CHECK_STR(err, "STS returned error Throttling");

	static const char e3[] =
		"<Response><Errors><Error><Code>IDPCommunicationError</Code>"
		"<Message>line1\nline2</Message></Error></Errors><RequestID>x</RequestID></Response>";
	CHECK(!sts(e3, &c, code));
	CHECK_STR(code, "IDPCommunicationError");
	CHECK_STR(err, "STS returned error IDPCommunicationError: line1 line2");

	static const char e4[] = "<ErrorResponse><Error><Message>m</Message></Error></ErrorResponse>";
	CHECK(!sts(e4, &c, code));
	CHECK_STR(code, "");
	CHECK(strstr(err, "without a Code") != NULL);

	/* A huge message is cut. */
	char *mmm = xmalloc(10001);
	memset(mmm, 'm', 10000);
	mmm[10000] = '\0';
	char *big = xasprintf("<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>%s"
			      "</Message></Error></ErrorResponse>",
			      mmm);
	free(mmm);
	CHECK(!sts(big, &c, code));
	CHECK(strlen(err) < 400 && strncmp(err, "STS returned error InvalidIdentityToken: mmm", 44) == 0);
	free(big);

	/* The code buffer is optional and bounded. */
	char small[5];
	CHECK(!aws_parse_sts_response(e1, strlen(e1), &c, small, sizeof(small), err, sizeof(err)));
	CHECK_STR(small, "Acce");
}

static void test_sts_malformed(void)
{
	struct aws_credentials c;
	char code[AWS_STS_CODE_MAX];
	size_t len = strlen(STS_WEB_OK);

	CHECK(!aws_parse_sts_response("", 0, &c, code, sizeof(code), err, sizeof(err)));
	CHECK_STR(err, "empty STS response");
	CHECK(!sts("<html><body>502 Bad Gateway</body></html>", &c, code));
	CHECK_STR(err, "malformed STS response: not an STS response");
	CHECK(!sts("not xml at all", &c, code));
	CHECK(strncmp(err, "malformed STS response: ", 24) == 0);
	CHECK(!sts("{\"json\": true}", &c, code));

	/* Every truncation of a good response fails cleanly without leaking secrets. */
	bool all_fail = true, leaked = false;
	for (size_t cut = 0; cut < len - 2; cut++) {
		if (aws_parse_sts_response(STS_WEB_OK, cut, &c, code, sizeof(code), err, sizeof(err))) {
			all_fail = false;
			aws_credentials_clear(&c);
		}
		if (strstr(err, "SecretKeyValue") || strstr(err, "FwoGZXIv"))
			leaked = true;
	}
	CHECK(all_fail);
	CHECK(!leaked);
	/* Cut right after the last '>' but before the final newline: still complete. */
	CHECK(aws_parse_sts_response(STS_WEB_OK, len - 1, &c, code, sizeof(code), err, sizeof(err)));
	aws_credentials_clear(&c);

	/* Missing SessionToken, bad Expiration, repeated element. */
	static const char no_tok[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>S</SecretAccessKey><Expiration>2030-01-01T06:00:00Z</Expiration>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	CHECK(!sts(no_tok, &c, code));
	CHECK_STR(err, "malformed STS response: no Credentials/SessionToken");
	static const char empty_tok[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>S</SecretAccessKey><SessionToken>  </SessionToken>"
		"<Expiration>2030-01-01T06:00:00Z</Expiration>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	CHECK(!sts(empty_tok, &c, code));
	static const char bad_exp[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
		"<Expiration>tomorrow</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
	CHECK(!sts(bad_exp, &c, code));
	CHECK(strstr(err, "Expiration") != NULL);
	static const char twice[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<AccessKeyId>B</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
		"<SessionToken>T</SessionToken><Expiration>2030-01-01T06:00:00Z</Expiration>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	CHECK(!sts(twice, &c, code));
	CHECK(strstr(err, "repeated") != NULL);
	static const char nested[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A<b>x</b></AccessKeyId>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	CHECK(!sts(nested, &c, code));

	/* DOCTYPE and entity expansion (billion laughs) are refused. */
	static const char lol[] = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
				  "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
				  "<ErrorResponse><Error><Code>&lol2;</Code></Error></ErrorResponse>";
	CHECK(!sts(lol, &c, code));
	CHECK(strstr(err, "DOCTYPE") != NULL);
	static const char ext[] = "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"file:///etc/passwd\">"
				  "<ErrorResponse><Error><Code>x</Code></Error></ErrorResponse>";
	CHECK(!sts(ext, &c, code));

	/* Deep nesting and oversize input. */
	char deep[256] = "<AssumeRoleResponse>";
	for (int i = 0; i < 40; i++)
		memcpy(deep + strlen(deep), "<a>", 4);
	CHECK(!sts(deep, &c, code));
	CHECK(strstr(err, "nested too deeply") != NULL);

	size_t huge = AWS_PARSE_MAX_BODY + 1;
	char *h = xmalloc(huge);
	memset(h, ' ', huge);
	CHECK(!aws_parse_sts_response(h, huge, &c, code, sizeof(code), err, sizeof(err)));
	CHECK(strstr(err, "too large") != NULL);
	free(h);

	/* A 64 KiB + 1 value is refused. */
	size_t vn = 65537;
	char *xs = xmalloc(vn + 1);
	memset(xs, 'x', vn);
	xs[vn] = '\0';
	char *v = xasprintf("<AssumeRoleResponse><AssumeRoleResult><Credentials><SessionToken>%s"
			    "</SessionToken></Credentials></AssumeRoleResult></AssumeRoleResponse>",
			    xs);
	free(xs);
	CHECK(!sts(v, &c, code));
	CHECK(strstr(err, "too long") != NULL);
	free(v);

	CHECK(!aws_parse_sts_response(NULL, 5, &c, code, sizeof(code), err, sizeof(err)));
}

/* ---------- JSON ---------- */

static bool cj(enum aws_json_source src, const char *json, struct aws_credentials *c)
{
	return aws_parse_credentials_json(src, json, strlen(json), c, err, sizeof(err));
}

static void test_json(void)
{
	struct aws_credentials c;

	/* IMDS (EC2 instance metadata / the AWS IMDS stand-in). */
	CHECK(cj(AWS_JSON_IMDS,
		 "{\"Code\":\"Success\",\"LastUpdated\":\"2030-01-01T00:00:00Z\",\"Type\":\"AWS-HMAC\","
		 "\"AccessKeyId\":\"ASIAIMDS\",\"SecretAccessKey\":\"imds-secret\",\"Token\":\"imds-tok\","
		 "\"Expiration\":\"2030-01-01T06:00:00Z\"}",
		 &c));
	CHECK_STR(c.access_key_id, "ASIAIMDS");
	CHECK_STR(c.secret_access_key, "imds-secret");
	CHECK_STR(c.session_token, "imds-tok");
	CHECK(c.account_id == NULL);
	CHECK(c.expiration == INT64_C(1893477600));
	aws_credentials_clear(&c);

	CHECK(!cj(AWS_JSON_IMDS, "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no role\"}", &c));
	CHECK_STR(err, "IMDS returned error AssumeRoleUnauthorizedAccess: no role");
	CHECK(!cj(AWS_JSON_IMDS, "{\"Code\":\"Failure\"}", &c));
	CHECK_STR(err, "IMDS returned error Failure");
	CHECK(!cj(AWS_JSON_IMDS,
		  "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\","
		  "\"Expiration\":\"2030-01-01T06:00:00Z\"}",
		  &c));
	CHECK_STR(err, "IMDS credentials: missing field \"Token\"");
	CHECK(!cj(AWS_JSON_IMDS, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\"}", &c));
	CHECK_STR(err, "IMDS credentials: missing field \"Expiration\"");
	CHECK(!cj(AWS_JSON_IMDS,
		  "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":42,\"Token\":\"T\","
		  "\"Expiration\":\"2030-01-01T06:00:00Z\"}",
		  &c));
	CHECK_STR(err, "IMDS credentials: field \"SecretAccessKey\" must be a string");
	CHECK(!cj(AWS_JSON_IMDS,
		  "{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
		  "\"Expiration\":\"2030-01-01T06:00:00Z\"}",
		  &c));
	CHECK_STR(err, "IMDS credentials: field \"AccessKeyId\" is empty");
	CHECK(!cj(AWS_JSON_IMDS,
		  "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
		  "\"Expiration\":\"2030-01-01 06:00\"}",
		  &c));
	CHECK_STR(err, "IMDS credentials: field \"Expiration\" is not an ISO-8601 UTC time");
	CHECK(c.access_key_id == NULL);

	/* Invalid JSON: position only, never the text near the error. */
	CHECK(!cj(AWS_JSON_IMDS, "{\"SecretAccessKey\":\"very-secret-value", &c));
	CHECK(strncmp(err, "IMDS credentials: invalid JSON at line 1 column ", 48) == 0);
	CHECK(strstr(err, "very-secret") == NULL);
	CHECK(!cj(AWS_JSON_IMDS, "", &c));
	CHECK_STR(err, "IMDS credentials: empty document");
	CHECK(!cj(AWS_JSON_IMDS, "[1,2]", &c));
	CHECK_STR(err, "IMDS credentials: not a JSON object");
	CHECK(!cj(AWS_JSON_IMDS, "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\"}", &c));
	CHECK(strstr(err, "invalid JSON") != NULL);
	CHECK(!cj(AWS_JSON_IMDS, "{\"AccessKeyId\":\"A\"} trailing", &c));

	/* Container (the container credential provider). */
	CHECK(cj(AWS_JSON_CONTAINER,
		 "{\"RoleArn\":\"arn:aws:iam::123456789012:role/r\",\"AccessKeyId\":\"ASIACONT\","
		 "\"SecretAccessKey\":\"cs\",\"Token\":\"ct\",\"Expiration\":\"2030-01-01T06:00:00Z\","
		 "\"AccountId\":\"123456789012\"}",
		 &c));
	CHECK_STR(c.access_key_id, "ASIACONT");
	CHECK_STR(c.session_token, "ct");
	CHECK_STR(c.account_id, "123456789012");
	aws_credentials_clear(&c);
	CHECK(!cj(AWS_JSON_CONTAINER, "{\"Message\":\"Unauthorized\"}", &c));
	CHECK_STR(err, "container credentials endpoint returned an error: Unauthorized");
	CHECK(!cj(AWS_JSON_CONTAINER, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\"}",
		  &c));
	CHECK_STR(err, "container credentials: missing field \"Expiration\"");
	CHECK(!cj(AWS_JSON_CONTAINER,
		  "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
		  "\"Expiration\":\"2030-01-01T06:00:00Z\",\"AccountId\":123}",
		  &c));
	CHECK_STR(err, "container credentials: field \"AccountId\" must be a string");

	/* credential_process (credential_process). */
	CHECK(cj(AWS_JSON_PROCESS,
		 "{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", \"SecretAccessKey\": \"ps\", "
		 "\"SessionToken\": \"pt\", \"Expiration\": \"2030-01-01T06:00:00Z\", "
		 "\"AccountId\": \"210987654321\"}",
		 &c));
	CHECK_STR(c.access_key_id, "AKIAPROC");
	CHECK_STR(c.session_token, "pt");
	CHECK_STR(c.account_id, "210987654321");
	CHECK(c.expiration == INT64_C(1893477600));
	aws_credentials_clear(&c);
	CHECK(cj(AWS_JSON_PROCESS, "{\"Version\":1,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\"}", &c));
	CHECK(c.session_token == NULL && c.expiration == 0 && c.account_id == NULL);
	aws_credentials_clear(&c);
	CHECK(cj(AWS_JSON_PROCESS,
		 "{\"Version\":1,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\","
		 "\"SessionToken\":null,\"Expiration\":\"\",\"Extra\":{\"x\":[1,\"y\"]}}",
		 &c));
	CHECK(c.session_token == NULL && c.expiration == 0);
	aws_credentials_clear(&c);
	CHECK(!cj(AWS_JSON_PROCESS, "{\"Version\":2,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\"}", &c));
	CHECK_STR(err, "credential_process output: unsupported Version 2 (expected 1)");
	CHECK(!cj(AWS_JSON_PROCESS, "{\"Version\":\"1\",\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\"}",
		  &c));
	CHECK_STR(err, "credential_process output: field \"Version\" must be an integer");
	CHECK(!cj(AWS_JSON_PROCESS, "{\"Version\":1.0,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\"}", &c));
	CHECK_STR(err, "credential_process output: field \"Version\" must be an integer");
	CHECK(!cj(AWS_JSON_PROCESS, "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\"}", &c));
	CHECK_STR(err, "credential_process output: missing field \"Version\"");
	CHECK(!cj(AWS_JSON_PROCESS, "{\"Version\":1,\"AccessKeyId\":\"AK\"}", &c));
	CHECK_STR(err, "credential_process output: missing field \"SecretAccessKey\"");
	CHECK(!cj(AWS_JSON_PROCESS,
		  "{\"Version\":1,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"S\","
		  "\"SessionToken\":true}",
		  &c));
	CHECK_STR(err, "credential_process output: field \"SessionToken\" must be a string");
	CHECK(!cj(AWS_JSON_PROCESS, "{\"Version\":1,\"AccessKeyId\":\"A\\u0000B\",\"SecretAccessKey\":\"S\"}",
		  &c));
	CHECK(!aws_parse_credentials_json((enum aws_json_source)99, "{}", 2, &c, err, sizeof(err)));

	size_t huge = AWS_PARSE_MAX_BODY + 1;
	char *h = xmalloc(huge);
	memset(h, ' ', huge);
	CHECK(!aws_parse_credentials_json(AWS_JSON_PROCESS, h, huge, &c, err, sizeof(err)));
	CHECK(strstr(err, "too large") != NULL);
	free(h);
}

static void test_imds_role(void)
{
	char *r;

	r = aws_parse_imds_role("my-role\n", 8, err, sizeof(err));
	CHECK_STR(r, "my-role");
	free(r);
	r = aws_parse_imds_role("  web+role=a,b.c@d_e \r\nsecond\n", 31, err, sizeof(err));
	CHECK_STR(r, "web+role=a,b.c@d_e");
	free(r);
	CHECK(aws_parse_imds_role("", 0, err, sizeof(err)) == NULL);
	CHECK(aws_parse_imds_role("\nrole", 5, err, sizeof(err)) == NULL);
	CHECK_STR(err, "IMDS returned no role name");
	CHECK(aws_parse_imds_role("a/b", 3, err, sizeof(err)) == NULL);
	CHECK_STR(err, "IMDS returned an invalid role name");
	CHECK(aws_parse_imds_role("<html>", 6, err, sizeof(err)) == NULL);
}

/* ---------- shared files ---------- */

static struct aws_files *files(const char *config, const char *credentials)
{
	struct aws_files *f = aws_files_new();
	bool ok = true;

	if (config)
		ok = aws_files_parse(f, AWS_FILE_CONFIG, config, strlen(config), "config", err, sizeof(err));
	if (ok && credentials)
		ok = aws_files_parse(f, AWS_FILE_CREDENTIALS, credentials, strlen(credentials), "credentials",
				     err, sizeof(err));
	if (!ok)
		fprintf(stderr, "  parse failed: %s\n", err);
	CHECK(ok);
	return f;
}

static void test_ini_parse(void)
{
	struct aws_files *f;

	f = files("\xef\xbb\xbf# leading comment\r\n"
		  "; another\r\n"
		  "[default]\r\n"
		  "region = us-east-1\r\n"
		  "Output: json\r\n"
		  "s3 =\r\n"
		  "  addressing_style = path\r\n"
		  "  signature_version = s3v4\r\n"
		  "\r\n"
		  "  # comment inside the block\r\n"
		  "  max_concurrent_requests = 20\r\n"
		  "cli_pager=\r\n"
		  "[profile prod]\r\n"
		  "   region   =   eu-west-1   \r\n"
		  "role_arn=arn:aws:iam::123456789012:role/prod\r\n"
		  "credential_process = /usr/bin/get-creds\r\n"
		  "    --profile prod\r\n"
		  "    # not part of the value\r\n"
		  "    --verbose\r\n"
		  "[prod]\r\n"
		  "region = ignored-not-a-profile\r\n"
		  "[profile \"quoted name\"]\r\n"
		  "region = ap-south-1\r\n"
		  "[profile  spaced]   \r\n"
		  "region = sa-east-1\r\n"
		  "[ profile two words ]\r\n"
		  "region = nope\r\n"
		  "[profileX]\r\n"
		  "region = nope\r\n"
		  "[sso-session corp]\r\n"
		  "sso_region = us-east-1\r\n",
		  NULL);
	CHECK_STR(aws_files_get(f, "default", "region"), "us-east-1");
	CHECK_STR(aws_files_get(f, "default", "output"), "json");
	CHECK(aws_files_get(f, "default", "s3") == NULL);
	CHECK(aws_files_get(f, "default", "addressing_style") == NULL);
	CHECK(aws_files_get(f, "default", "max_concurrent_requests") == NULL);
	CHECK(aws_files_get(f, "default", "cli_pager") == NULL);
	CHECK_STR(aws_files_get(f, "prod", "region"), "eu-west-1");
	CHECK_STR(aws_files_get(f, "prod", "role_arn"), "arn:aws:iam::123456789012:role/prod");
	CHECK_STR(aws_files_get(f, "prod", "credential_process"),
		  "/usr/bin/get-creds\n--profile prod\n--verbose");
	CHECK_STR(aws_files_get(f, "quoted name", "region"), "ap-south-1");
	CHECK_STR(aws_files_get(f, "spaced", "region"), "sa-east-1");
	CHECK(!aws_files_has_profile(f, "two"));
	CHECK(!aws_files_has_profile(f, "profileX"));
	CHECK(!aws_files_has_profile(f, "X"));
	CHECK(!aws_files_has_profile(f, "corp"));
	CHECK(aws_files_has_profile(f, "prod"));
	CHECK(!aws_files_has_profile(f, "nope"));
	CHECK(aws_files_get_in(f, AWS_FILE_CREDENTIALS, "prod", "region") == NULL);
	aws_files_free(f);

	/* The credentials file: section name = profile, "[profile x]" is literal. */
	f = files(NULL, "[default]\naws_access_key_id=AKID1\n[profile x]\nregion=r\n");
	CHECK_STR(aws_files_get(f, "default", "aws_access_key_id"), "AKID1");
	CHECK_STR(aws_files_get(f, "profile x", "region"), "r");
	CHECK(aws_files_get(f, "x", "region") == NULL);
	aws_files_free(f);

	/* Long lines: a 1.5 KiB session token and a 100 KiB value survive intact. */
	char tok[1537];
	for (size_t i = 0; i < sizeof(tok) - 1; i++)
		tok[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[i % 65];
	tok[sizeof(tok) - 1] = '\0';
	size_t bign = 100 * 1024;
	char *big = xmalloc(bign + 1);
	memset(big, 'v', bign);
	big[bign] = '\0';
	char *text = xasprintf("[default]\naws_session_token = %s\nbig=%s\nafter = yes", tok, big);
	f = files(NULL, text);
	CHECK_STR(aws_files_get(f, "default", "aws_session_token"), tok);
	CHECK(aws_files_get(f, "default", "big") && strlen(aws_files_get(f, "default", "big")) == bign);
	CHECK_STR(aws_files_get(f, "default", "after"), "yes");
	aws_files_free(f);
	free(text);
	free(big);

	/* Repeated sections merge; later keys win; [default] and [profile default] are one. */
	f = files("[default]\nregion=a\noutput=text\n[profile default]\nregion=b\n"
		  "[profile p]\nk=1\n[profile p]\nk=2\nk=3\n",
		  NULL);
	CHECK_STR(aws_files_get(f, "default", "region"), "b");
	CHECK_STR(aws_files_get(f, "default", "output"), "text");
	CHECK_STR(aws_files_get(f, "p", "k"), "3");
	aws_files_free(f);

	/* No inline comments (botocore's RawConfigParser); values keep quotes. */
	f = files("[default]\nregion = us-east-1 # comment\nx = \"q\"\n", NULL);
	CHECK_STR(aws_files_get(f, "default", "region"), "us-east-1 # comment");
	CHECK_STR(aws_files_get(f, "default", "x"), "\"q\"");
	aws_files_free(f);

	/* Errors name the file and line, never the content. */
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
		{ "aws_secret_access_key = s3cr3t\n[default]\n",
		  "config: line 1: setting outside of any [section]" },
		{ "[default]\nk = v\njust-a-s3cr3t-word\n", "config: line 3: expected \"key = value\"" },
		{ "[default]\n= s3cr3t\n", "config: line 2: missing key before \"=\"" },
		{ "[]\n", "config: line 1: empty section name" },
		{ "[ ]\n", "config: line 1: empty section name" },
		{ "[default\n", "config: line 1: section header without \"]\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = aws_files_new();
		CHECK(!aws_files_parse(f, AWS_FILE_CONFIG, bad[i].text, strlen(bad[i].text), "config", err,
				       sizeof(err)));
		CHECK_STR(err, bad[i].want);
		CHECK(strstr(err, "s3cr3t") == NULL);
		aws_files_free(f);
	}
	f = aws_files_new();
	CHECK(!aws_files_parse(f, AWS_FILE_CONFIG, "[default]\nk=a\0b\n", 14, "config", err, sizeof(err)));
	CHECK_STR(err, "config: contains a NUL byte");
	/* A failed parse keeps what was there before. */
	CHECK(aws_files_parse(f, AWS_FILE_CONFIG, "[default]\nk=1\n", 14, NULL, err, sizeof(err)));
	CHECK(!aws_files_parse(f, AWS_FILE_CONFIG, "junk\n", 5, NULL, err, sizeof(err)));
	CHECK_STR(err, "config file: line 1: setting outside of any [section]");
	CHECK_STR(aws_files_get(f, "default", "k"), "1");
	CHECK(aws_files_parse(f, AWS_FILE_CONFIG, "", 0, NULL, err, sizeof(err)));
	CHECK(!aws_files_has_profile(f, "default"));
	aws_files_free(f);
}

static void test_files_merge(void)
{
	struct aws_files *f = files(
		"[profile p]\nregion = eu-west-1\nrole_arn = arn:config\nsource_profile = s\n"
		"external_id = from-config\n",
		"[p]\nrole_arn = arn:creds\nexternal_id =\n");

	CHECK_STR(aws_files_get(f, "p", "role_arn"), "arn:creds");
	CHECK_STR(aws_files_get(f, "p", "region"), "eu-west-1");
	/* An empty credentials-file value overrides the config file's. */
	CHECK(aws_files_get(f, "p", "external_id") == NULL);
	CHECK_STR(aws_files_get_in(f, AWS_FILE_CONFIG, "p", "role_arn"), "arn:config");
	CHECK_STR(aws_files_get_in(f, AWS_FILE_CREDENTIALS, "p", "role_arn"), "arn:creds");
	CHECK(aws_files_get(f, "missing", "region") == NULL);
	CHECK(aws_files_get(NULL, "p", "region") == NULL);
	aws_files_free(f);
}

static void test_files_load(void)
{
	char dir[] = "/tmp/tb_aws_files_XXXXXX";
	struct aws_files *f = aws_files_new();
	bool found = true;

	CHECK(mkdtemp(dir) != NULL);
	char *path = xasprintf("%s/credentials", dir);
	char *missing = xasprintf("%s/nope/credentials", dir);
	FILE *fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp) {
		fputs("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = sfile\n", fp);
		fclose(fp);
	}
	CHECK(aws_files_load(f, AWS_FILE_CREDENTIALS, path, &found, err, sizeof(err)));
	CHECK(found);
	CHECK_STR(aws_files_get(f, "default", "aws_access_key_id"), "AKIDFILE");
	CHECK(aws_files_load(f, AWS_FILE_CREDENTIALS, missing, &found, err, sizeof(err)));
	CHECK(!found);
	CHECK(!aws_files_has_profile(f, "default"));
	CHECK(!aws_files_load(f, AWS_FILE_CONFIG, dir, &found, err, sizeof(err)));
	CHECK(strstr(err, "not a regular file") != NULL);
	CHECK(!aws_files_load(f, AWS_FILE_CONFIG, "", &found, err, sizeof(err)));
	if (geteuid() != 0) {
		chmod(path, 0);
		CHECK(!aws_files_load(f, AWS_FILE_CREDENTIALS, path, &found, err, sizeof(err)));
		CHECK(strstr(err, "Permission denied") != NULL);
	}
	unlink(path);
	rmdir(dir);
	free(path);
	free(missing);
	aws_files_free(f);
}

static void test_expand_path(void)
{
	char *const envp[] = { "HOME=/home/pg", "AWS_DIR=/etc/aws", "X=1", "EMPTY=", NULL };
	static const struct {
		const char *in, *home, *want;
	} cases[] = {
		{ "~/.aws/config", NULL, "/home/pg/.aws/config" },
		{ "~/.aws/config", "/srv/tb/", "/srv/tb/.aws/config" },
		{ "~", NULL, "/home/pg" },
		{ "~/x", "/", "/x" },
		{ "~other/x", NULL, "~other/x" },
		{ "/a/~/b", NULL, "/a/~/b" },
		{ "$AWS_DIR/config", NULL, "/etc/aws/config" },
		{ "${AWS_DIR}/c$X.ini", NULL, "/etc/aws/c1.ini" },
		{ "$UNSET/a${UNSET}b", NULL, "$UNSET/a${UNSET}b" },
		{ "a$EMPTY.b", NULL, "a.b" },
		{ "$", NULL, "$" },
		{ "a$", NULL, "a$" },
		{ "${}", NULL, "${}" },
		{ "${AWS_DIR", NULL, "${AWS_DIR" },
		{ "$HOME/.aws", "/ignored", "/home/pg/.aws" },
		{ "plain", NULL, "plain" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = aws_files_expand_path(cases[i].in, cases[i].home, envp);
		CHECK_STR(out, cases[i].want);
		free(out);
	}
	char *out = aws_files_expand_path("~/x", NULL, NULL);
	CHECK_STR(out, "~/x");
	free(out);
	char *const tilde_env[] = { "P=~/p", "HOME=/h", NULL };
	out = aws_files_expand_path("$P", NULL, tilde_env);
	CHECK_STR(out, "/h/p");
	free(out);
	CHECK(aws_files_expand_path(NULL, NULL, envp) == NULL);
}

static void check_split(const char *cmd, const char *const *want, size_t nwant)
{
	size_t argc = 99;
	char **argv = aws_files_split_command(cmd, &argc, err, sizeof(err));

	CHECK(argv != NULL);
	if (!argv) {
		fprintf(stderr, "  split %s: %s\n", cmd, err);
		return;
	}
	CHECK(argc == nwant);
	for (size_t i = 0; i < nwant && i < argc; i++)
		CHECK_STR(argv[i], want[i]);
	CHECK(argv[argc] == NULL);
	aws_files_argv_free(argv);
}

static void test_split(void)
{
	{
		const char *w[] = { "/usr/bin/get-creds", "--profile", "prod" };
		check_split("  /usr/bin/get-creds\t--profile   prod  ", w, 3);
	}
	{
		const char *w[] = { "cmd", "a b", "c\"d", "$HOME", "e f", "x\\y", "", "" };
		check_split("cmd 'a b' \"c\\\"d\" '$HOME' e\\ f \"x\\y\" '' \"\"", w, 8);
	}
	{
		const char *w[] = { "a$b`c\\d", "multi\nline" };
		check_split("\"a\\$b\\`c\\\\d\" 'multi\nline'", w, 2);
	}
	{
		const char *w[] = { "ab", "c" };
		check_split("a\\\nb c", w, 2);
	}
	{
		const char *w[] = { "ab" };
		check_split("\"a\\\nb\"", w, 1);
	}
	{
		const char *w[] = { "adjacent'quoted'\"parts\"" };
		(void)w;
		const char *w2[] = { "adjacentquotedparts" };
		check_split("adjacent'quoted'\"parts\"", w2, 1);
	}
	{
		const char *w[] = { "a|b", "c;d", "x>y", "*", "$(x)", "#c" };
		check_split("'a|b' \"c;d\" x\\>y * '$(x)' #c", w, 6);
	}
	{
		/* A value joined from continuation lines splits on the newlines. */
		const char *w[] = { "/usr/bin/get-creds", "--profile", "prod", "--verbose" };
		check_split("/usr/bin/get-creds\n--profile prod\n--verbose", w, 4);
	}
	static const struct {
		const char *cmd, *want;
	} bad[] = {
		{ "", "credential_process is empty" },
		{ "   \t ", "credential_process is empty" },
		{ "cmd 'open", "credential_process has an unterminated ' quote" },
		{ "cmd \"open", "credential_process has an unterminated \" quote" },
		{ "cmd \"esc\\\"", "credential_process has an unterminated \" quote" },
		{ "cmd \\", "credential_process ends with a lone backslash" },
		{ "cmd | jq .", NULL },
		{ "cmd; rm -rf x", NULL },
		{ "cmd > out", NULL },
		{ "cmd && other", NULL },
		{ "(cmd)", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t argc = 7;
		CHECK(aws_files_split_command(bad[i].cmd, &argc, err, sizeof(err)) == NULL);
		CHECK(argc == 0);
		if (bad[i].want)
			CHECK_STR(err, bad[i].want);
		else
			CHECK(strstr(err, "without a shell") != NULL);
	}
	CHECK(aws_files_split_command(NULL, NULL, err, sizeof(err)) == NULL);
}

/* ---------- profile resolution ---------- */

static enum aws_resolve_result resolve(struct aws_files *f, const char *profile,
				       const struct aws_files_env *env, struct aws_profile_plan *plan)
{
	return aws_files_resolve(f, profile, env, plan, err, sizeof(err));
}

static void test_resolve_static(void)
{
	struct aws_profile_plan p;
	struct aws_files *f = files(
		"[default]\nregion = us-east-1\naws_access_key_id = AKIDCONFIG\n"
		"aws_secret_access_key = sconfig\n"
		"[profile both]\naws_access_key_id = AKIDCONFIG2\naws_secret_access_key = s2\n"
		"[profile proc]\nregion = eu-west-1\ncredential_process = /bin/creds --json 'a b'\n"
		"aws_access_key_id = AKIDPROCCFG\naws_secret_access_key = sp\n"
		"[profile cfgonly]\naws_access_key_id = AKIDCFGONLY\naws_secret_access_key = sc\n"
		"aws_session_token = tcfg\naws_account_id = 111122223333\n"
		"[profile partial]\naws_access_key_id = AKIDPART\n"
		"[profile badproc]\ncredential_process = cmd 'open\n"
		"[profile regiononly]\nregion = ap-south-1\n",
		"[default]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = screds\n"
		"aws_session_token = tnew\naws_security_token = tlegacy\n"
		"[both]\naws_access_key_id = AKIDCREDS2\naws_secret_access_key = s3\n"
		"[proc]\nregion = ignored? no: credentials win\n");

	/* Credentials file beats config file; legacy token name first (botocore). */
	CHECK(resolve(f, "default", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_STATIC && p.static_file == AWS_FILE_CREDENTIALS);
	CHECK_STR(p.static_creds.access_key_id, "AKIDCREDS");
	CHECK_STR(p.static_creds.secret_access_key, "screds");
	CHECK_STR(p.static_creds.session_token, "tlegacy");
	CHECK_STR(p.source_profile, "default");
	CHECK_STR(p.region, "us-east-1");
	CHECK(p.nroles == 0);
	aws_profile_plan_clear(&p);
	CHECK(p.static_creds.access_key_id == NULL && p.region == NULL);

	CHECK(resolve(f, "both", NULL, &p) == AWS_RESOLVE_OK);
	CHECK_STR(p.static_creds.access_key_id, "AKIDCREDS2");
	aws_profile_plan_clear(&p);

	/* credential_process beats keys in the config file. */
	CHECK(resolve(f, "proc", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_PROCESS);
	CHECK_STR(p.process_command, "/bin/creds --json 'a b'");
	CHECK(p.process_argv && p.process_argv[0] && p.process_argv[1] && p.process_argv[2] &&
	      !p.process_argv[3]);
	if (p.process_argv) {
		CHECK_STR(p.process_argv[0], "/bin/creds");
		CHECK_STR(p.process_argv[2], "a b");
	}
	CHECK_STR(p.region, "ignored? no: credentials win");
	aws_profile_plan_clear(&p);

	CHECK(resolve(f, "cfgonly", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_STATIC && p.static_file == AWS_FILE_CONFIG);
	CHECK_STR(p.static_creds.session_token, "tcfg");
	CHECK_STR(p.static_creds.account_id, "111122223333");
	aws_profile_plan_clear(&p);

	CHECK(resolve(f, "partial", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "profile \"partial\" in the config file has aws_access_key_id but no "
		       "aws_secret_access_key");
	CHECK(resolve(f, "badproc", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "profile \"badproc\": credential_process has an unterminated ' quote");
	CHECK(resolve(f, "regiononly", NULL, &p) == AWS_RESOLVE_NONE);
	CHECK(resolve(f, "nosuch", NULL, &p) == AWS_RESOLVE_NONE);
	CHECK(p.source == AWS_SOURCE_NONE && p.region == NULL);
	CHECK(resolve(f, "", NULL, &p) == AWS_RESOLVE_ERROR);
	aws_files_free(f);

	/* A 1.5 KiB session token in the credentials file. */
	char tok[1537];
	memset(tok, 'T', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	char *text = xasprintf("[default]\naws_access_key_id=A\naws_secret_access_key=S\n"
			       "aws_session_token=%s\n",
			       tok);
	f = files(NULL, text);
	CHECK(resolve(f, "default", NULL, &p) == AWS_RESOLVE_OK);
	CHECK_STR(p.static_creds.session_token, tok);
	aws_profile_plan_clear(&p);
	aws_files_free(f);
	free(text);
}

static void test_resolve_roles(void)
{
	struct aws_profile_plan p;
	struct aws_files *f = files(
		"[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = sbase\n"
		"[profile dev]\nregion = eu-west-1\nrole_arn = arn:aws:iam::111111111111:role/dev\n"
		"source_profile = base\nrole_session_name = tb\nexternal_id = ext-1\n"
		"duration_seconds = 3600\n"
		"[profile chain]\nrole_arn = arn:aws:iam::222222222222:role/chain\nsource_profile = dev\n"
		"[profile self]\nrole_arn = arn:aws:iam::333333333333:role/self\nsource_profile = self\n"
		"aws_access_key_id = AKIDSELF\naws_secret_access_key = sself\n"
		"[profile selfnokeys]\nrole_arn = arn:r\nsource_profile = selfnokeys\n"
		"[profile loopa]\nrole_arn = arn:a\nsource_profile = loopb\n"
		"[profile loopb]\nrole_arn = arn:b\nsource_profile = loopa\n"
		"[profile both]\nrole_arn = arn:r\nsource_profile = base\ncredential_source = Environment\n"
		"[profile neither]\nrole_arn = arn:r\n"
		"[profile env]\nrole_arn = arn:r\ncredential_source = Environment\n"
		"[profile imds]\nrole_arn = arn:r\ncredential_source = Ec2InstanceMetadata\n"
		"[profile ecs]\nrole_arn = arn:r\ncredential_source = EcsContainer\n"
		"[profile badsrc]\nrole_arn = arn:r\ncredential_source = environment\n"
		"[profile mfa]\nrole_arn = arn:r\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/u\n"
		"[profile missing]\nrole_arn = arn:r\nsource_profile = ghost\n"
		"[profile empty]\nregion = us-east-1\n"
		"[profile fromempty]\nrole_arn = arn:r\nsource_profile = empty\n"
		"[profile keysandrole]\nrole_arn = arn:ignored\nsource_profile = base\n"
		"aws_access_key_id = AKIDKR\naws_secret_access_key = skr\n"
		"[profile viakeys]\nrole_arn = arn:v\nsource_profile = keysandrole\n"
		"[profile viaproc]\nrole_arn = arn:p\nsource_profile = proc\n"
		"[profile proc]\ncredential_process = /bin/creds\n"
		"[profile viaweb]\nrole_arn = arn:w\nsource_profile = web\n"
		"[profile web]\nrole_arn = arn:aws:iam::444444444444:role/web\n"
		"web_identity_token_file = /var/run/token\nrole_session_name = websess\n"
		"[profile dur1]\nrole_arn = arn:r\nsource_profile = base\nduration_seconds = 899\n"
		"[profile dur2]\nrole_arn = arn:r\nsource_profile = base\nduration_seconds = 1h\n"
		"[profile dur3]\nrole_arn = arn:r\nsource_profile = base\nduration_seconds = 43201\n",
		NULL);

	CHECK(resolve(f, "dev", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_STATIC);
	CHECK_STR(p.source_profile, "base");
	CHECK_STR(p.static_creds.access_key_id, "AKIDBASE");
	CHECK(p.nroles == 1);
	if (p.nroles == 1) {
		CHECK_STR(p.roles[0].profile, "dev");
		CHECK_STR(p.roles[0].role_arn, "arn:aws:iam::111111111111:role/dev");
		CHECK_STR(p.roles[0].role_session_name, "tb");
		CHECK_STR(p.roles[0].external_id, "ext-1");
		CHECK(p.roles[0].duration_seconds == 3600);
	}
	CHECK_STR(p.region, "eu-west-1");
	aws_profile_plan_clear(&p);

	/* chain -> dev -> base: roles innermost first. */
	CHECK(resolve(f, "chain", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.nroles == 2);
	if (p.nroles == 2) {
		CHECK_STR(p.roles[0].profile, "dev");
		CHECK_STR(p.roles[1].profile, "chain");
		CHECK(p.roles[1].role_session_name == NULL && p.roles[1].external_id == NULL &&
		      p.roles[1].duration_seconds == 0);
	}
	CHECK(p.region == NULL);
	aws_profile_plan_clear(&p);

	/* A profile may name itself when it has its own keys. */
	CHECK(resolve(f, "self", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_STATIC && p.nroles == 1);
	CHECK_STR(p.static_creds.access_key_id, "AKIDSELF");
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "selfnokeys", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK(strstr(err, "loop") != NULL);
	CHECK(resolve(f, "loopa", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "source_profile of profile \"loopb\" leads back to profile \"loopa\": the "
		       "role chain is a loop");
	CHECK(p.roles == NULL && p.nroles == 0);

	/* Exactly one of source_profile / credential_source. */
	CHECK(resolve(f, "both", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "profile \"both\" sets both source_profile and credential_source; set exactly one");
	CHECK(resolve(f, "neither", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "profile \"neither\" has role_arn but neither source_profile nor "
		       "credential_source; set exactly one");
	CHECK(resolve(f, "env", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_ENVIRONMENT && p.nroles == 1 && p.source_profile == NULL);
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "imds", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_IMDS);
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "ecs", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_CONTAINER);
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "badsrc", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "profile \"badsrc\": credential_source \"environment\" is not one of "
		       "Environment, Ec2InstanceMetadata, EcsContainer");

	CHECK(resolve(f, "mfa", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK(strstr(err, "mfa_serial") != NULL);
	CHECK(resolve(f, "missing", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "source_profile \"ghost\" of profile \"missing\" does not exist");
	CHECK(resolve(f, "fromempty", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "source_profile \"empty\" (of profile \"fromempty\") has no credentials");

	/* As a source, a profile's keys beat its own role_arn (botocore). */
	CHECK(resolve(f, "viakeys", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.nroles == 1 && p.source == AWS_SOURCE_STATIC);
	CHECK_STR(p.static_creds.access_key_id, "AKIDKR");
	aws_profile_plan_clear(&p);
	/* As the selected profile, role_arn wins over its keys. */
	CHECK(resolve(f, "keysandrole", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.nroles == 1 && p.source == AWS_SOURCE_STATIC);
	CHECK_STR(p.static_creds.access_key_id, "AKIDBASE");
	aws_profile_plan_clear(&p);

	CHECK(resolve(f, "viaproc", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_PROCESS && p.nroles == 1);
	CHECK_STR(p.source_profile, "proc");
	aws_profile_plan_clear(&p);

	/* A source profile with web identity: that role first, then ours. */
	CHECK(resolve(f, "viaweb", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_WEB_IDENTITY && p.nroles == 1);
	CHECK_STR(p.web_identity_token_file, "/var/run/token");
	CHECK_STR(p.web_identity_role_arn, "arn:aws:iam::444444444444:role/web");
	CHECK_STR(p.web_identity_session_name, "websess");
	CHECK_STR(p.roles[0].role_arn, "arn:w");
	aws_profile_plan_clear(&p);

	CHECK(resolve(f, "dur1", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK_STR(err, "profile \"dur1\": duration_seconds must be a whole number of seconds from "
		       "900 to 43200");
	CHECK(resolve(f, "dur2", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK(resolve(f, "dur3", NULL, &p) == AWS_RESOLVE_ERROR);
	aws_files_free(f);
}

/* A chain longer than the limit is refused, not followed forever. */
static void test_resolve_role_chain_limit(void)
{
	struct aws_profile_plan p;
	struct aws_files *f;
	struct {
		char *p;
		size_t n, cap;
	} t = { xmalloc(1 << 16), 0, 1 << 16 };
	t.n += (size_t)snprintf(t.p, t.cap, "[profile p0]\naws_access_key_id=A\naws_secret_access_key=S\n");
	for (int i = 1; i <= 40; i++)
		t.n += (size_t)snprintf(t.p + t.n, t.cap - t.n,
					"[profile p%d]\nrole_arn=arn:%d\nsource_profile=p%d\n", i, i, i - 1);
	f = files(t.p, NULL);
	CHECK(resolve(f, "p10", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.nroles == 10);
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "p40", NULL, &p) == AWS_RESOLVE_ERROR);
	CHECK(strstr(err, "longer than") != NULL);
	aws_files_free(f);
	free(t.p);
}

static void test_resolve_web_identity(void)
{
	struct aws_profile_plan p;
	struct aws_files *f = files("[default]\nregion = us-west-2\n"
				    "[profile web]\nrole_arn = arn:aws:iam::123456789012:role/my-role\n"
				    "web_identity_token_file = /var/run/secrets/token\n"
				    "[profile nowebarn]\nweb_identity_token_file = /t\n"
				    "[profile role]\nrole_arn = arn:role\nsource_profile = keys\n"
				    "[profile keys]\naws_access_key_id = AK\naws_secret_access_key = SK\n",
				    NULL);
	struct aws_files_env env = {
		.web_identity_token_file = "/env/token",
		.role_arn = "arn:aws:iam::123456789012:role/env-role",
		.role_session_name = "env-session",
	};

	CHECK(resolve(f, "web", NULL, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_WEB_IDENTITY && p.nroles == 0);
	CHECK_STR(p.web_identity_token_file, "/var/run/secrets/token");
	CHECK_STR(p.web_identity_role_arn, "arn:aws:iam::123456789012:role/my-role");
	CHECK(p.web_identity_session_name == NULL);
	CHECK_STR(p.source_profile, "web");
	aws_profile_plan_clear(&p);

	/* Environment variables take precedence, one by one. */
	CHECK(resolve(f, "web", &env, &p) == AWS_RESOLVE_OK);
	CHECK_STR(p.web_identity_token_file, "/env/token");
	CHECK_STR(p.web_identity_role_arn, "arn:aws:iam::123456789012:role/env-role");
	CHECK_STR(p.web_identity_session_name, "env-session");
	CHECK(p.source_profile == NULL);
	aws_profile_plan_clear(&p);
	struct aws_files_env only_file = { .web_identity_token_file = "/env/token" };
	CHECK(resolve(f, "web", &only_file, &p) == AWS_RESOLVE_OK);
	CHECK_STR(p.web_identity_token_file, "/env/token");
	CHECK_STR(p.web_identity_role_arn, "arn:aws:iam::123456789012:role/my-role");
	aws_profile_plan_clear(&p);

	/* Environment-only web identity (EKS IRSA), with or without a profile. */
	CHECK(resolve(f, "default", &env, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_WEB_IDENTITY);
	CHECK_STR(p.region, "us-west-2");
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "nosuchprofile", &env, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_WEB_IDENTITY && p.region == NULL);
	aws_profile_plan_clear(&p);
	CHECK(resolve(f, "default", &only_file, &p) == AWS_RESOLVE_ERROR);
	CHECK(strstr(err, "no role ARN") != NULL);
	CHECK(resolve(f, "nowebarn", NULL, &p) == AWS_RESOLVE_ERROR);

	/* role_arn + source_profile in the profile (provider 2) beats env web identity (3). */
	CHECK(resolve(f, "role", &env, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_STATIC && p.nroles == 1);
	aws_profile_plan_clear(&p);
	/* ...but env web identity beats static keys (provider 5). */
	CHECK(resolve(f, "keys", &env, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_WEB_IDENTITY);
	aws_profile_plan_clear(&p);
	struct aws_files_env empty = { .web_identity_token_file = "" };
	CHECK(resolve(f, "keys", &empty, &p) == AWS_RESOLVE_OK);
	CHECK(p.source == AWS_SOURCE_STATIC);
	aws_profile_plan_clear(&p);
	aws_files_free(f);
}

int main(void)
{
	test_iso8601();
	test_sts_success();
	test_sts_errors();
	test_sts_malformed();
	test_json();
	test_imds_role();
	test_ini_parse();
	test_files_merge();
	test_files_load();
	test_expand_path();
	test_split();
	test_resolve_static();
	test_resolve_roles();
	test_resolve_role_chain_limit();
	test_resolve_web_identity();
	return unit_finish("test_aws");
}
