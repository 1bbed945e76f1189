/* The environment and the shared files, read into the pieces of a plan
 * (spec/cloud-tokens.md §1.2-1.4, §1.3.6-1.3.7 for the variables), and the
 * pure decisions the fetchers and the cache take: retry rules, refresh
 * windows, IMDS static stability, which URLs are allowed. Every environment
 * read goes through aws_env_source so tests can replace it. */
#include "token/aws_chain.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/util.h"

extern char **environ;

#define IMDS_DEFAULT_BASE "http://169.254.169.254"
#define IMDS_IPV6_BASE "http://[fd00:ec2::254]"
#define CONTAINER_BASE "http://169.254.170.2"
#define STS_MAX_ATTEMPTS 5
#define SMALL_FILE_MAX (64 * 1024)

/* ---- environment ---- */

static const char *env_get_real(const char *name)
{
	return getenv(name);
}

static char *const *env_all_real(void)
{
	return environ;
}

struct aws_env_source aws_env_source = { env_get_real, env_all_real };

const char *aws_env(const char *name)
{
	const char *v = aws_env_source.get(name);
	return v && *v ? v : NULL;
}

bool aws_env_true(const char *name)
{
	const char *v = aws_env(name);
	return v && strcasecmp(v, "true") == 0;
}

/* ---- small helpers ---- */

static void fail_wipe(char *buf, size_t cap)
{
	secret_wipe(buf, cap);
	free(buf);
}

char *aws_read_secret_file(const char *path, const char *what, bool trim, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	char *buf = xmalloc(SMALL_FILE_MAX + 1);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, SMALL_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read the %s %s: %s", what, path, strerror(errno));
			close(fd);
			fail_wipe(buf, SMALL_FILE_MAX + 1);
			return NULL;
		}
		len += (size_t)n;
		if (n == 0 || len > SMALL_FILE_MAX)
			break;
	}
	close(fd);
	buf[len > SMALL_FILE_MAX ? SMALL_FILE_MAX : len] = '\0';
	const char *why = len > SMALL_FILE_MAX ? "is larger than 64 KiB"
			  : strlen(buf) != len ? "contains a NUL byte"
					       : NULL;
	while (!why && trim && len > 0 && strchr(" \t\r\n", buf[len - 1]))
		buf[--len] = '\0';
	if (!why && len == 0)
		why = "is empty";
	if (why) {
		snprintf(err, errlen, "the %s %s %s", what, path, why);
		fail_wipe(buf, SMALL_FILE_MAX + 1);
		return NULL;
	}
	return buf;
}

static bool region_ok(const char *r)
{
	return *r && strlen(r) < 64 && strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(r);
}

static char *strip_slash(const char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	return xstrndup(url, n);
}

/* ---- URLs ---- */

static bool url_fail(const char *url, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "\"%.120s\": %s", url, why);
	return false;
}

/* Host (without brackets, as written), port text and path of an http(s)
 * URL. No user information, query or fragment: none of our endpoints has
 * one, and "user@host" is a classic way to dress one host up as another. */
static bool url_parse(const char *url, bool *https, char *host, size_t hostlen, char *port, size_t portlen,
		      const char **path, char *err, size_t errlen)
{
	const char *a;
	if (strncasecmp(url, "http://", 7) == 0)
		a = url + 7, *https = false;
	else if (strncasecmp(url, "https://", 8) == 0)
		a = url + 8, *https = true;
	else
		return url_fail(url, "not an http:// or https:// URL", err, errlen);
	size_t alen = strcspn(a, "/?#");
	const char *hs = a, *he, *ps = NULL;
	if (strpbrk(a, "?#"))
		return url_fail(url, "a query or fragment is not allowed", err, errlen);
	if (memchr(a, '@', alen))
		return url_fail(url, "user information is not allowed", err, errlen);
	if (*a == '[') {
		he = memchr(a, ']', alen);
		if (!he)
			return url_fail(url, "unterminated [IPv6 address]", err, errlen);
		hs = a + 1;
		if (he + 1 < a + alen && he[1] != ':')
			return url_fail(url, "bad text after the IPv6 address", err, errlen);
		ps = he + 1 < a + alen ? he + 2 : NULL;
	} else {
		he = memchr(a, ':', alen);
		ps = he ? he + 1 : NULL;
		he = he ? he : a + alen;
	}
	size_t hl = (size_t)(he - hs), pl = ps ? (size_t)(a + alen - ps) : 0;
	if (hl == 0 || hl >= hostlen)
		return url_fail(url, "no host, or the host is too long", err, errlen);
	if (ps && (pl == 0 || pl > 5 || pl >= portlen || strspn(ps, "0123456789") < pl ||
		   strtol(ps, NULL, 10) > 65535 || strtol(ps, NULL, 10) == 0))
		return url_fail(url, "bad port", err, errlen);
	memcpy(host, hs, hl);
	host[hl] = '\0';
	memcpy(port, ps ? ps : "", pl);
	port[pl] = '\0';
	*path = a + alen;
	return true;
}

bool aws_url_split(const char *url, char **host, char **path, char *err, size_t errlen)
{
	bool https;
	char h[256], port[8];
	const char *p;
	if (!url_parse(url, &https, h, sizeof(h), port, sizeof(port), &p, err, errlen))
		return false;
	for (char *c = h; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	bool ipv6 = strchr(h, ':') != NULL;
	bool default_port = !*port || strtol(port, NULL, 10) == (https ? 443 : 80);
	*host = xasprintf("%s%s%s%s%s", ipv6 ? "[" : "", h, ipv6 ? "]" : "", default_port ? "" : ":",
			  default_port ? "" : port);
	*path = xstrdup(*p ? p : "/");
	return true;
}

static bool host_is(const char *host, int af, const char *want)
{
	unsigned char a[16], b[16];
	return inet_pton(af, host, a) == 1 && inet_pton(af, want, b) == 1 &&
	       memcmp(a, b, af == AF_INET ? 4 : 16) == 0;
}

bool aws_container_url_ok(const char *url, char *err, size_t errlen)
{
	bool https;
	char host[256], port[8];
	const char *path;
	if (!url_parse(url, &https, host, sizeof(host), port, sizeof(port), &path, err, errlen))
		return false;
	if (https)
		return true;
	unsigned char v4[4];
	if (inet_pton(AF_INET, host, v4) == 1 && v4[0] == 127)
		return true;
	if (strcasecmp(host, "localhost") == 0 || host_is(host, AF_INET6, "::1") ||
	    host_is(host, AF_INET, "169.254.170.2") || host_is(host, AF_INET, "169.254.170.23") ||
	    host_is(host, AF_INET6, "fd00:ec2::23"))
		return true;
	snprintf(err, errlen,
		 "http:// is only allowed to a loopback address, 169.254.170.2, "
		 "169.254.170.23 or fd00:ec2::23, not to \"%.100s\" (use https://)",
		 host);
	return false;
}

/* ---- plan pieces from the environment ---- */

bool aws_plan_env_creds(struct aws_plan *p, bool *found, char *err, size_t errlen)
{
	const char *akid = aws_env("AWS_ACCESS_KEY_ID"), *secret = aws_env("AWS_SECRET_ACCESS_KEY");
	const char *exp = aws_env("AWS_CREDENTIAL_EXPIRATION");
	*found = akid != NULL;
	if (!akid)
		return true;
	if (!secret) {
		snprintf(err, errlen,
			 "partial AWS credentials in the environment: AWS_ACCESS_KEY_ID is set "
			 "but AWS_SECRET_ACCESS_KEY is not");
		return false;
	}
	struct aws_credentials *c = &p->p.static_creds;
	aws_credentials_clear(c);
	if (exp && !aws_parse_iso8601(exp, &c->expiration)) {
		snprintf(err, errlen, "AWS_CREDENTIAL_EXPIRATION \"%.40s\" is not an ISO-8601 UTC time", exp);
		return false;
	}
	/* botocore looks at the legacy name first. */
	const char *token = aws_env("AWS_SECURITY_TOKEN");
	token = token ? token : aws_env("AWS_SESSION_TOKEN");
	c->access_key_id = xstrdup(akid);
	c->secret_access_key = xstrdup(secret);
	c->session_token = xstrdup(token);
	c->account_id = xstrdup(aws_env("AWS_ACCOUNT_ID"));
	return true;
}

/* The Authorization value, file first; *out = NULL when none is configured. */
static bool container_token(char **out, char *err, size_t errlen)
{
	const char *file = aws_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *var = file ? "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
			       : "AWS_CONTAINER_AUTHORIZATION_TOKEN";
	/* Read at every fetch: EKS Pod Identity rotates the file. Sent verbatim. */
	*out = file ? aws_read_secret_file(file, "container authorization token file", false, err, errlen)
		    : xstrdup(aws_env(var));
	if (file && !*out)
		return false;
	if (*out && strpbrk(*out, "\r\n")) {
		snprintf(err, errlen, "the container authorization token (%s) contains a CR or LF", var);
		secret_free(*out);
		*out = NULL;
		return false;
	}
	return true;
}

bool aws_plan_container(struct aws_plan *p, bool *found, char *err, size_t errlen)
{
	const char *rel = aws_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = aws_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	char why[300];
	*found = rel || full;
	if (!*found)
		return true;
	if (rel && *rel != '/') {
		snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with /");
		return false;
	}
	if (!rel && !aws_container_url_ok(full, why, sizeof(why))) {
		snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: %s", why);
		return false;
	}
	p->container_url = rel ? xasprintf(CONTAINER_BASE "%s", rel) : xstrdup(full);
	return container_token(&p->container_auth, err, errlen);
}

/* Seconds (a decimal number) into ms within [1 ms, max_s]; dflt when unset. */
static bool env_seconds(const char *name, long dflt, long max_s, long *out, char *err, size_t errlen)
{
	const char *v = aws_env(name);
	char *end;
	*out = dflt;
	if (!v)
		return true;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || *end || end == v || !(d * 1000 >= 1) || d > (double)max_s) {
		snprintf(err, errlen, "%s=\"%.32s\" is not a number of seconds from 0.001 to %ld", name, v,
			 max_s);
		return false;
	}
	*out = (long)(d * 1000);
	return true;
}

static bool env_int(const char *name, int dflt, int max, int *out, char *err, size_t errlen)
{
	const char *v = aws_env(name);
	char *end;
	*out = dflt;
	if (!v)
		return true;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < 1 || n > max) {
		snprintf(err, errlen, "%s=\"%.32s\" is not a whole number from 1 to %d", name, v, max);
		return false;
	}
	*out = (int)n;
	return true;
}

/* An endpoint variable's URL splits as aws_url_split wants; err is label
 * and the reason. */
static bool endpoint_ok(const char *url, const char *label, char *err, size_t errlen)
{
	char *host, *path, why[300];
	if (!aws_url_split(url, &host, &path, why, sizeof(why))) {
		snprintf(err, errlen, "%s%s", label, why);
		return false;
	}
	free(host);
	free(path);
	return true;
}

bool aws_plan_imds(struct aws_plan *p, bool *found, char *err, size_t errlen)
{
	const char *ep = aws_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = aws_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	*found = !aws_env_true("AWS_EC2_METADATA_DISABLED");
	if (!*found)
		return true;
	if (ep) {
		if (!endpoint_ok(ep, "AWS_EC2_METADATA_SERVICE_ENDPOINT: ", err, errlen))
			return false;
	} else if (mode && strcasecmp(mode, "ipv6") != 0 && strcasecmp(mode, "ipv4") != 0) {
		snprintf(err, errlen,
			 "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE must be IPv4 or IPv6, not \"%.20s\"", mode);
		return false;
	}
	p->imds_base = strip_slash(ep                                      ? ep
				   : mode && strcasecmp(mode, "ipv6") == 0 ? IMDS_IPV6_BASE
									   : IMDS_DEFAULT_BASE);
	p->imds_v1_disabled = aws_env_true("AWS_EC2_METADATA_V1_DISABLED");
	return env_seconds("AWS_METADATA_SERVICE_TIMEOUT", 1000, 3600, &p->imds_timeout_ms, err, errlen) &&
	       env_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 20, &p->imds_attempts, err, errlen);
}

/* Regions that AWS_STS_REGIONAL_ENDPOINTS=legacy sends to the global endpoint. */
static bool legacy_global_region(const char *r)
{
	static const char *const legacy[] = {
		"ap-northeast-1", "ap-south-1",   "ap-southeast-1", "ap-southeast-2",
		"aws-global",     "ca-central-1", "eu-central-1",   "eu-north-1",
		"eu-west-1",      "eu-west-2",    "eu-west-3",      "sa-east-1",
		"us-east-1",      "us-east-2",    "us-west-1",      "us-west-2",
	};
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
		if (strcmp(r, legacy[i]) == 0)
			return true;
	return false;
}

bool aws_plan_sts(struct aws_plan *p, const char *region, char *err, size_t errlen)
{
	const char *custom = NULL;
	region = region                          ? region
		 : aws_env("AWS_REGION")         ? aws_env("AWS_REGION")
		 : aws_env("AWS_DEFAULT_REGION") ? aws_env("AWS_DEFAULT_REGION")
						 : p->p.region;
	if (region && !region_ok(region)) {
		snprintf(err, errlen, "AWS region \"%.40s\" is not valid (lower-case letters, digits and -)",
			 region);
		return false;
	}
	if (!aws_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
		custom = aws_env("AWS_ENDPOINT_URL_STS");
		custom = custom ? custom : aws_env("AWS_ENDPOINT_URL");
	}
	const char *legacy = aws_env("AWS_STS_REGIONAL_ENDPOINTS");
	bool global = !region || (legacy && strcasecmp(legacy, "legacy") == 0 && legacy_global_region(region));
	if (custom) {
		if (!endpoint_ok(custom, "STS endpoint ", err, errlen))
			return false;
		p->sts_url = strip_slash(custom);
	} else if (global) {
		p->sts_url = xstrdup("https://sts.amazonaws.com");
	} else {
		p->sts_url = xasprintf("https://sts.%s.amazonaws.com%s", region,
				       strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	}
	/* The global endpoint signs as us-east-1 (§1.4). */
	p->sts_region = xstrdup(region && !(global && !custom) ? region : "us-east-1");
	return true;
}

struct aws_files *aws_plan_load_files(char *err, size_t errlen)
{
	char *const *envp = aws_env_source.all();
	const char *cp = aws_env("AWS_CONFIG_FILE"), *kp = aws_env("AWS_SHARED_CREDENTIALS_FILE");
	char *cpath = aws_files_expand_path(cp ? cp : AWS_FILES_DEFAULT_CONFIG, NULL, envp);
	char *kpath = aws_files_expand_path(kp ? kp : AWS_FILES_DEFAULT_CREDENTIALS, NULL, envp);
	struct aws_files *f = aws_files_new();
	bool ok = aws_files_load(f, AWS_FILE_CONFIG, cpath, NULL, err, errlen) &&
		  aws_files_load(f, AWS_FILE_CREDENTIALS, kpath, NULL, err, errlen);
	free(cpath);
	free(kpath);
	if (!ok) {
		aws_files_free(f);
		return NULL;
	}
	return f;
}

const char *aws_plan_profile(const char *key, bool *explicit_name)
{
	const char *p = key ? key : aws_env("AWS_DEFAULT_PROFILE");
	p = p ? p : aws_env("AWS_PROFILE");
	*explicit_name = p != NULL;
	return p ? p : "default";
}

static char *secret_from(const char *file, const char *var, const char *key, char *err, size_t errlen)
{
	if (file)
		return aws_read_secret_file(file, key, true, err, errlen);
	if (!aws_env(var)) {
		snprintf(err, errlen, "the environment variable %s (%s) is not set", var, key);
		return NULL;
	}
	return xstrdup(aws_env(var));
}

bool aws_plan_static_keys(struct aws_plan *p, const struct aws_cfg *cfg, char *err, size_t errlen)
{
	struct aws_credentials *c = &p->p.static_creds;
	aws_credentials_clear(c);
	c->secret_access_key = secret_from(
		cfg->secret_file, cfg->secret_env,
		cfg->secret_file ? "secret_access_key_file" : "secret_access_key_env", err, errlen);
	if (!c->secret_access_key)
		return false;
	if (cfg->session_token_file || cfg->session_token_env) {
		c->session_token = secret_from(
			cfg->session_token_file, cfg->session_token_env,
			cfg->session_token_file ? "session_token_file" : "session_token_env", err, errlen);
		if (!c->session_token)
			return false;
	}
	c->access_key_id = xstrdup(cfg->access_key_id);
	return true;
}

/* ---- pure decisions ---- */

bool aws_sts_should_retry(int attempt, long status, const char *code)
{
	static const char *const codes[] = {
		"Throttling",
		"ThrottlingException",
		"ThrottledException",
		"RequestThrottledException",
		"ProvisionedThroughputExceededException",
		"IDPCommunicationError",
	};
	if (attempt >= STS_MAX_ATTEMPTS)
		return false;
	if (status == 0 || status == 429 || status == 500 || status == 502 || status == 503 ||
	    status == 504 || status == 509)
		return true;
	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return true;
	return false;
}

long aws_sts_retry_delay_ms(int n, double rnd)
{
	if (n < 1)
		n = 1;
	if (n > 16)
		n = 16;
	return (long)(rnd * 1000.0 * (double)(1L << (n - 1)));
}

enum aws_imds_token_outcome aws_imds_token_outcome(long status)
{
	switch (status) {
	case 200:
		return AWS_IMDS_TOKEN_OK;
	case 403:
	case 404:
	case 405:
		return AWS_IMDS_TOKEN_V1;
	case 400:
		return AWS_IMDS_TOKEN_FATAL;
	default:
		return AWS_IMDS_TOKEN_RETRY;
	}
}

int64_t aws_imds_extend(int64_t expiration, int64_t now, int jitter)
{
	int64_t offset = AWS_ADVISORY_S + jitter;
	if (expiration == 0 || now < expiration - offset)
		return expiration;
	return now + offset;
}

void aws_plan_free(struct aws_plan *p)
{
	if (!p)
		return;
	aws_profile_plan_clear(&p->p);
	free(p->sts_url);
	free(p->sts_region);
	free(p->container_url);
	secret_free(p->container_auth);
	free(p->imds_base);
	free(p->ca_file);
	free(p);
}
