/* Entra ID requests and responses without I/O (spec/cloud-tokens.md §2, §4).
 * The JWT half (client assertions, user names) is in azure_jwt.c. */
#include "token/azure_parse.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/encode.h"
#include "core/util.h"
#include "token/jwt.h"

/* Ten years: longer lifetimes or hints are nonsense. */
#define MAX_SECONDS INT64_C(315360000)
/* Year 10000. */
#define MAX_EPOCH INT64_C(253402300800)
/* Managed identity refreshes at half-life from this lifetime on (§2.9). */
#define HALF_LIFE_FROM 7200
#define DESC_MAX 160

void azure_token_clear(struct azure_token *t)
{
	if (t->token) {
		secret_wipe(t->token, t->len);
		free(t->token);
	}
	memset(t, 0, sizeof(*t));
}

/* ---- requests ---- */

bool azure_tenant_ok(const char *tenant)
{
	if (!tenant || !*tenant || strlen(tenant) > 256)
		return false;
	for (const char *p = tenant; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

char *azure_scope_v2(const char *scope)
{
	if (ends_with(scope, "/.default"))
		return xstrdup(scope);
	size_t n = strlen(scope);
	while (n > 0 && scope[n - 1] == '/')
		n--;
	return xasprintf("%.*s/.default", (int)n, scope);
}

char *azure_scope_resource(const char *scope)
{
	size_t n = strlen(scope);
	if (ends_with(scope, "/.default"))
		n -= strlen("/.default");
	return xstrndup(scope, n);
}

/* host[:port] or [v6]:port → is it a loopback name or address? */
static bool host_is_loopback(const char *host, size_t n)
{
	size_t h = n;
	if (n > 0 && host[0] == '[') {
		const char *close = memchr(host, ']', n);
		if (!close)
			return false;
		return (size_t)(close - host) == 4 && strncmp(host, "[::1]", 5) == 0;
	}
	const char *colon = memchr(host, ':', n);
	if (colon)
		h = (size_t)(colon - host);
	if (h == 9 && strncasecmp(host, "localhost", 9) == 0)
		return true;
	if (h <= 4 || strncmp(host, "127.", 4) != 0)
		return false;
	for (size_t i = 0; i < h; i++)
		if (!isdigit((unsigned char)host[i]) && host[i] != '.')
			return false;
	return true;
}

char *azure_base_url(const char *value, const char *default_scheme, bool https_only, char *err, size_t errlen)
{
	while (value && isspace((unsigned char)*value))
		value++;
	size_t n = value ? strlen(value) : 0;
	while (n > 0 && (isspace((unsigned char)value[n - 1]) || value[n - 1] == '/'))
		n--;
	if (n == 0) {
		err_set(err, errlen, "an empty URL");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)value[i] <= ' ' || value[i] == 0x7f || value[i] == '"') {
			err_set(err, errlen, "\"%.*s\" is not a valid URL", (int)n, value);
			return NULL;
		}
	}
	const char *sep = strstr(value, "://");
	char *url = sep && (size_t)(sep - value) < n ? xstrndup(value, n)
						     : xasprintf("%s://%.*s", default_scheme, (int)n, value);
	bool https = strncasecmp(url, "https://", 8) == 0;
	bool http = strncasecmp(url, "http://", 7) == 0;
	const char *host = url + (https ? 8 : 7);
	size_t hostlen = strcspn(host, "/?#");
	if ((!https && !http) || hostlen == 0) {
		err_set(err, errlen, "\"%s\" is not an http(s) URL", url);
		free(url);
		return NULL;
	}
	if (http && https_only && !host_is_loopback(host, hostlen)) {
		err_set(err, errlen,
			"\"%s\" must use https (http:// is accepted only for loopback test "
			"endpoints)",
			url);
		free(url);
		return NULL;
	}
	return url;
}

char *azure_token_endpoint(const char *authority, const char *tenant)
{
	return xasprintf("%s/%s/oauth2/v2.0/token", authority, tenant);
}

char *azure_token_body(enum azure_grant g, const char *client_id, const char *scope, const char *credential,
		       size_t *len)
{
	char *id = url_encode(client_id, false), *sc = url_encode(scope, false),
	     *cr = url_encode(credential, false);
	char *type = url_encode(AZURE_JWT_BEARER, false);
	char *body;
	switch (g) {
	case AZURE_GRANT_SECRET:
		body = xasprintf("client_id=%s&grant_type=client_credentials&client_info=1&client_secret=%s"
				 "&scope=%s",
				 id, cr, sc);
		break;
	case AZURE_GRANT_CERTIFICATE:
		body = xasprintf("client_id=%s&grant_type=client_credentials&client_info=1"
				 "&client_assertion_type=%s&client_assertion=%s&scope=%s",
				 id, type, cr, sc);
		break;
	default:
		body = xasprintf("client_assertion=%s&client_assertion_type=%s&client_id=%s"
				 "&grant_type=client_credentials&scope=%s",
				 cr, type, id, sc);
		break;
	}
	free(id);
	free(sc);
	free(type);
	secret_free(cr);
	if (len)
		*len = strlen(body);
	return body;
}

char *azure_mi_url(enum azure_mi_host host, const char *base, const char *resource, enum azure_mi_id kind,
		   const char *id)
{
	static const char *const imds_names[] = { NULL, "client_id", "object_id", "msi_res_id" };
	static const char *const app_names[] = { NULL, "client_id", "object_id", "mi_res_id" };
	const char *name = host == AZURE_MI_IMDS ? imds_names[kind] : app_names[kind];
	char *res = url_encode(resource, false);
	char *sel = NULL;
	if (name && id && *id) {
		char *enc = url_encode(id, false);
		sel = xasprintf("&%s=%s", name, enc);
		free(enc);
	}
	char *url;
	if (host == AZURE_MI_IMDS)
		url = xasprintf("%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s",
				base, res, sel ? sel : "");
	else
		url = xasprintf("%s%sapi-version=2019-08-01&resource=%s%s", base,
				strchr(base, '?') ? "&" : "?", res, sel ? sel : "");
	free(res);
	free(sel);
	return url;
}

void azure_cli_argv(const char *resource, const char *tenant, const char *subscription,
		    const char *argv[AZURE_CLI_ARGV_MAX])
{
	size_t n = 0;
	static const char *const head[] = { "az",       "account", "get-access-token",
					    "--output", "json",    "--resource" };
	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		argv[n++] = head[i];
	argv[n++] = resource;
	if (tenant && *tenant) {
		argv[n++] = "--tenant";
		argv[n++] = tenant;
	}
	if (subscription && *subscription) {
		argv[n++] = "--subscription";
		argv[n++] = subscription;
	}
	argv[n] = NULL;
}

/* ---- times ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (civil-from-days inverse). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* Between min and max digits into *out; advances *p. */
static bool scan_num(const char **p, int min, int max, int *out)
{
	int v = 0, n = 0;
	while (n < max && isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	*out = v;
	return n >= min;
}

static bool scan_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

struct civil {
	int y, mo, d, h, mi, s;
	int offset; /* seconds east of UTC */
	bool zone;
};

static bool civil_valid(const struct civil *c)
{
	return c->y >= 1970 && c->y <= 9999 && c->mo >= 1 && c->mo <= 12 && c->d >= 1 &&
	       c->d <= days_in_month(c->y, c->mo) && c->h <= 23 && c->mi <= 59 && c->s <= 59;
}

static int64_t civil_epoch(const struct civil *c)
{
	return days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s - c->offset;
}

static void skip_fraction(const char **p)
{
	if (**p == '.' || **p == ',') {
		(*p)++;
		while (isdigit((unsigned char)**p))
			(*p)++;
	}
}

/* "Z", "+HH:MM", "+HHMM", "+HH" or nothing; then the end of the text. */
static bool scan_zone(const char **p, struct civil *c)
{
	while (**p == ' ')
		(*p)++;
	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		c->zone = true;
	} else if (**p == '+' || **p == '-') {
		int sign = **p == '-' ? -1 : 1, hh, mm = 0;
		(*p)++;
		if (!scan_num(p, 2, 2, &hh))
			return false;
		scan_char(p, ':');
		if (isdigit((unsigned char)**p) && !scan_num(p, 2, 2, &mm))
			return false;
		if (hh > 23 || mm > 59)
			return false;
		c->offset = sign * (hh * 3600 + mm * 60);
		c->zone = true;
	}
	return **p == '\0';
}

/* YYYY-MM-DD[T ]HH:MM[:SS[.f]][zone] */
static bool scan_iso(const char *s, struct civil *c, bool zone_allowed)
{
	const char *p = s;
	memset(c, 0, sizeof(*c));
	if (!scan_num(&p, 4, 4, &c->y) || !scan_char(&p, '-') || !scan_num(&p, 2, 2, &c->mo) ||
	    !scan_char(&p, '-') || !scan_num(&p, 2, 2, &c->d))
		return false;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!scan_num(&p, 2, 2, &c->h) || !scan_char(&p, ':') || !scan_num(&p, 2, 2, &c->mi))
		return false;
	if (scan_char(&p, ':') && !scan_num(&p, 2, 2, &c->s))
		return false;
	skip_fraction(&p);
	if (!zone_allowed)
		return *p == '\0';
	return scan_zone(&p, c);
}

/* M/D/YYYY H:MM:SS [AM|PM] [zone] (App Service 2017, Azure ML; §2.7.3) */
static bool scan_mdy(const char *s, struct civil *c)
{
	const char *p = s;
	memset(c, 0, sizeof(*c));
	if (!scan_num(&p, 1, 2, &c->mo) || !scan_char(&p, '/') || !scan_num(&p, 1, 2, &c->d) ||
	    !scan_char(&p, '/') || !scan_num(&p, 4, 4, &c->y) || !scan_char(&p, ' ') ||
	    !scan_num(&p, 1, 2, &c->h) || !scan_char(&p, ':') || !scan_num(&p, 2, 2, &c->mi) ||
	    !scan_char(&p, ':') || !scan_num(&p, 2, 2, &c->s))
		return false;
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "AM", 2) == 0 || strncasecmp(p, "PM", 2) == 0) {
		bool pm = toupper((unsigned char)*p) == 'P';
		if (c->h < 1 || c->h > 12)
			return false;
		c->h = c->h % 12 + (pm ? 12 : 0);
		p += 2;
	}
	return scan_zone(&p, c);
}

static bool parse_epoch_digits(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = 0;
	for (; s[n]; n++) {
		if (!isdigit((unsigned char)s[n]) || n >= 15)
			return false;
		v = v * 10 + (s[n] - '0');
	}
	*out = v;
	return n > 0;
}

bool azure_parse_time(const char *s, int64_t *out)
{
	struct civil c;
	int64_t v;
	if (!s)
		return false;
	if (parse_epoch_digits(s, &v)) {
		if (v <= 0 || v >= MAX_EPOCH)
			return false;
		*out = v;
		return true;
	}
	if ((scan_iso(s, &c, true) || scan_mdy(s, &c)) && civil_valid(&c)) {
		*out = civil_epoch(&c);
		return *out > 0;
	}
	return false;
}

bool azure_parse_local_time(const char *s, int64_t *out)
{
	struct civil c;
	if (!s || !scan_iso(s, &c, false) || !civil_valid(&c))
		return false;
	struct tm tm = {
		.tm_year = c.y - 1900,
		.tm_mon = c.mo - 1,
		.tm_mday = c.d,
		.tm_hour = c.h,
		.tm_min = c.mi,
		.tm_sec = c.s,
		.tm_isdst = -1,
	};
	time_t t = mktime(&tm);
	if (t == (time_t)-1 || t <= 0)
		return false;
	*out = (int64_t)t;
	return true;
}

/* ---- token responses ---- */

enum field_role {
	F_TOKEN,
	F_EXPIRES_IN,
	F_EXPIRES_ON,
	F_REFRESH_IN,
	F_EXPIRES_LOCAL,
};

struct token_field {
	const char *name;
	enum field_role role;
};

static const struct token_field oauth_fields[] = {
	{ "access_token", F_TOKEN },
	{ "expires_in", F_EXPIRES_IN },
	{ "expires_on", F_EXPIRES_ON },
	{ "refresh_in", F_REFRESH_IN },
	{ NULL, F_TOKEN },
};

static const struct token_field cli_fields[] = {
	{ "accessToken", F_TOKEN },
	{ "expires_on", F_EXPIRES_ON },
	{ "expiresOn", F_EXPIRES_LOCAL },
	{ NULL, F_TOKEN },
};

struct token_fields {
	const char *token;
	size_t len;
	bool has[F_EXPIRES_LOCAL + 1];
	bool bad_local;
	int64_t val[F_EXPIRES_LOCAL + 1];
};

/* A count of seconds (number or digit string), or with as_time an epoch or a
 * date (§2.11). */
static bool json_seconds(const json_t *v, bool as_time, int64_t *out)
{
	int64_t x;
	if (json_is_integer(v)) {
		x = (int64_t)json_integer_value(v);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!isfinite(d) || d < 0 || d >= (double)MAX_EPOCH)
			return false;
		x = (int64_t)d;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (as_time)
			return azure_parse_time(s, out);
		if (!parse_epoch_digits(s, &x))
			return false;
	} else {
		return false;
	}
	if (x < 0 || x >= (as_time ? MAX_EPOCH : MAX_SECONDS) || (as_time && x == 0))
		return false;
	*out = x;
	return true;
}

static bool token_text_ok(const char *s, size_t n)
{
	if (n == 0 || n > AZURE_MAX_TOKEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool read_field(const json_t *v, const struct token_field *f, struct token_fields *tf, const char *who,
		       char *err, size_t errlen)
{
	bool ok;
	if (f->role == F_TOKEN) {
		ok = json_is_string(v) && token_text_ok(json_string_value(v), json_string_length(v));
		if (ok) {
			tf->token = json_string_value(v);
			tf->len = json_string_length(v);
		}
	} else if (f->role == F_EXPIRES_LOCAL) {
		/* Only a fallback for expires_on: an odd one is ignored until needed. */
		tf->bad_local = !json_is_string(v) ||
				!azure_parse_local_time(json_string_value(v), &tf->val[f->role]);
		ok = true;
		if (tf->bad_local)
			return true;
	} else {
		ok = json_seconds(v, f->role == F_EXPIRES_ON, &tf->val[f->role]);
	}
	if (!ok) {
		err_set(err, errlen, "%s returned an unusable \"%s\" (%s)", who, f->name,
			f->role == F_TOKEN ? "not a string of 1 to 65536 printable characters"
			: f->role == F_EXPIRES_ON || f->role == F_EXPIRES_LOCAL ? "not a time"
										: "not a number of seconds");
		return false;
	}
	tf->has[f->role] = true;
	return true;
}

static bool collect_fields(enum azure_response kind, const json_t *root, struct token_fields *tf,
			   const char *who, char *err, size_t errlen)
{
	const struct token_field *table = kind == AZURE_RESP_CLI ? cli_fields : oauth_fields;
	memset(tf, 0, sizeof(*tf));
	for (const struct token_field *f = table; f->name; f++) {
		const json_t *v = json_object_get(root, f->name);
		if (v && !json_is_null(v) && !read_field(v, f, tf, who, err, errlen))
			return false;
	}
	if (!tf->token) {
		err_set(err, errlen, "%s returned no \"%s\"", who, table[0].name);
		return false;
	}
	return true;
}

/* expires_at and refresh_at from the fields found (§2.8, §2.9, §2.11). */
static bool token_times(enum azure_response kind, const struct token_fields *tf, int64_t request_time,
			struct azure_token *out, const char *who, char *err, size_t errlen)
{
	int64_t exp = 0;
	if (kind == AZURE_RESP_CLI) {
		exp = tf->has[F_EXPIRES_ON]      ? tf->val[F_EXPIRES_ON]
		      : tf->has[F_EXPIRES_LOCAL] ? tf->val[F_EXPIRES_LOCAL]
						 : 0;
	} else {
		if (tf->has[F_EXPIRES_IN])
			exp = request_time + tf->val[F_EXPIRES_IN];
		if (tf->has[F_EXPIRES_ON] && (!exp || tf->val[F_EXPIRES_ON] < exp))
			exp = tf->val[F_EXPIRES_ON];
	}
	if (!exp && tf->bad_local) {
		err_set(err, errlen, "%s returned an unusable \"expiresOn\" (not a time) and no expires_on",
			who);
		return false;
	}
	if (!exp) {
		err_set(err, errlen, "%s returned no expiry (%s)", who,
			kind == AZURE_RESP_CLI ? "expires_on or expiresOn" : "expires_in or expires_on");
		return false;
	}
	out->expires_at = exp;
	out->refresh_at = 0;
	int64_t life = exp - request_time;
	if (tf->has[F_REFRESH_IN])
		out->refresh_at = request_time + tf->val[F_REFRESH_IN];
	else if (kind == AZURE_RESP_MANAGED_IDENTITY && life >= HALF_LIFE_FROM)
		out->refresh_at = request_time + life / 2;
	return true;
}

bool azure_parse_token(enum azure_response kind, const char *who, const char *body, size_t len,
		       int64_t request_time, struct azure_token *out, char *err, size_t errlen)
{
	json_error_t jerr;
	struct token_fields tf;
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		/* jansson's own text may quote the body, which may hold a token. */
		if (root)
			err_set(err, errlen, "%s returned JSON that is not an object", who);
		else
			err_set(err, errlen, "%s returned invalid JSON (line %d, column %d)", who, jerr.line,
				jerr.column);
		json_secret_free(root);
		return false;
	}
	bool ok = collect_fields(kind, root, &tf, who, err, errlen) &&
		  token_times(kind, &tf, request_time, out, who, err, errlen);
	if (ok) {
		out->token = xstrndup(tf.token, tf.len);
		out->len = tf.len;
	}
	json_secret_free(root);
	return ok;
}

/* ---- errors ---- */

/* The first line of s[0..n), control characters blanked, "Trace ID: ..." and
 * what follows dropped, cut to max with "...". */
static void clean_line(const char *s, size_t n, size_t max, char *out, size_t outlen)
{
	size_t o = 0;
	if (max + 4 > outlen)
		max = outlen - 4;
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	for (size_t i = 0; i < n && s[i] != '\r' && s[i] != '\n'; i++) {
		if (i + 10 <= n && strncmp(s + i, " Trace ID:", 10) == 0)
			break;
		if (o == max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		out[o++] = ch < ' ' || ch == 0x7f ? ' ' : (char)ch;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static const char *json_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

void azure_describe_error(const char *who, long status, const char *body, size_t len, char *err, size_t errlen)
{
	char code[80] = "", desc[DESC_MAX + 8] = "";
	json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
	if (json_is_object(root)) {
		const json_t *e = json_object_get(root, "error");
		const char *c = json_is_string(e) ? json_string_value(e) : json_str(e, "code");
		const char *d = json_str(root, "error_description");
		if (!d)
			d = json_is_object(e) ? json_str(e, "message") : NULL;
		if (!d)
			d = json_str(root, "message");
		if (!d)
			d = json_str(root, "Message");
		if (c)
			clean_line(c, strlen(c), 60, code, sizeof(code));
		if (d)
			clean_line(d, strlen(d), DESC_MAX, desc, sizeof(desc));
	}
	json_secret_free(root);
	if (*code || *desc) {
		err_set(err, errlen, "%s answered %ld%s%s%s%s%s", who, status, *code ? " " : "", code,
			*desc ? " (" : "", desc, *desc ? ")" : "");
		return;
	}
	clean_line(body ? body : "", len, 100, desc, sizeof(desc));
	if (*desc)
		err_set(err, errlen, "%s answered %ld: %s", who, status, desc);
	else
		err_set(err, errlen, "%s answered %ld with an empty body", who, status);
}

static bool contains_ci(const char *body, size_t len, const char *word)
{
	size_t m = strlen(word);
	for (size_t i = 0; i + m <= len; i++)
		if (strncasecmp(body + i, word, m) == 0)
			return true;
	return false;
}

enum azure_outcome azure_imds_outcome(long status, const char *body, size_t len)
{
	/* azure-identity: a 400 to a token request means no such identity here. */
	if (status == 400)
		return AZURE_UNAVAILABLE;
	if (status == 403 && body && contains_ci(body, len, "unreachable"))
		return AZURE_UNAVAILABLE;
	return AZURE_FAILED;
}

/* ---- retries ---- */

static bool status_retried(enum azure_retry policy, long status)
{
	if (policy == AZURE_RETRY_IMDS)
		return status == 404 || status == 410 || status == 429 || (status >= 500 && status <= 599);
	return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
	       status == 504 || (status >= 506 && status <= 998);
}

/* The delay before retry number n (1-based): 0, then factor * 2^(n-1). */
static int64_t backoff_ms(int64_t factor_ms, int n, int64_t cap_ms)
{
	if (n <= 1)
		return 0;
	int64_t d = factor_ms;
	for (int i = 1; i < n && d < cap_ms; i++)
		d *= 2;
	return d < cap_ms ? d : cap_ms;
}

int64_t azure_retry_delay_ms(enum azure_retry policy, long status, int attempt, int64_t elapsed_ms,
			     double retry_after)
{
	bool transport = status == 0;
	if (policy == AZURE_RETRY_NONE || attempt < 1 || (!transport && !status_retried(policy, status)))
		return -1;
	bool gone = policy == AZURE_RETRY_IMDS && status == 410;
	int max = policy == AZURE_RETRY_IMDS && !transport ? 5 : 3;
	if (attempt > max) {
		/* IMDS restarts take up to 70 s (§2.7.1): keep asking until then. */
		if (gone && elapsed_ms < 70000)
			return 70000 - elapsed_ms;
		return -1;
	}
	if (retry_after >= 0) {
		if (retry_after * 1000 > AZURE_MAX_RETRY_AFTER_MS)
			return -1;
		return (int64_t)(retry_after * 1000 + 0.999);
	}
	if (policy == AZURE_RETRY_CORE)
		return backoff_ms(800, attempt, 120000);
	return backoff_ms(gone ? 2500 : 2000, attempt, 60000);
}

/* ---- Azure CLI ---- */

/* The stderr line worth showing: the first "ERROR:" line, else the first
 * non-empty one. */
static void cli_message(const char *text, char *out, size_t outlen)
{
	const char *pick = NULL;
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		bool blank = strspn(line, " \t\r") >= n;
		if (!blank && !pick)
			pick = line;
		if (strncmp(line, "ERROR:", 6) == 0) {
			pick = line;
			break;
		}
		line = end ? end + 1 : NULL;
	}
	if (pick)
		clean_line(pick, strlen(pick), DESC_MAX, out, outlen);
	else
		out[0] = '\0';
}

enum azure_outcome azure_cli_outcome(int exit_code, bool timed_out, const char *failure,
				     const char *stderr_text, char *err, size_t errlen)
{
	char msg[DESC_MAX + 8];
	const char *text = stderr_text ? stderr_text : "";
	if (timed_out) {
		err_set(err, errlen, "az did not answer in time");
		return AZURE_UNAVAILABLE;
	}
	if (failure) {
		err_set(err, errlen, "az: %s", failure);
		return AZURE_FAILED;
	}
	if (exit_code == 0) {
		err_set(err, errlen, "%s", "");
		return AZURE_OK;
	}
	cli_message(text, msg, sizeof(msg));
	if (exit_code == 127) {
		err_set(err, errlen, "az is not installed or not on PATH (exit 127%s%s)", *msg ? ": " : "",
			msg);
		return AZURE_UNAVAILABLE;
	}
	if (*msg)
		err_set(err, errlen, "az exited with %d: %s", exit_code, msg);
	else
		err_set(err, errlen, "az exited with %d", exit_code);
	bool login = strstr(text, "az login") || strstr(text, "az account set");
	return login && !strstr(text, "AADSTS") ? AZURE_UNAVAILABLE : AZURE_FAILED;
}
