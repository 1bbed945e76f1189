/* Response parsers for AWS credential sources. Expat parses STS XML with a
 * memory suite that wipes every block it frees; jansson parses the JSON
 * documents, whose string values are wiped before the tree is released. */
#include "token/aws_parse.h"
#include "core/dynbuf.h"
#include "core/util.h"

#include <expat.h>
#include <jansson.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest single value we accept (session tokens are 1-3 KiB). */
#define MAX_FIELD_LEN 65536
#define MAX_XML_DEPTH 32
/* Server-supplied text quoted in errors is cut to this many bytes. */
#define MAX_QUOTED 300
/* Expat's namespace separator: cannot occur in a namespace URI. */
#define NS_SEP ' '

/* ---------- credentials ---------- */

void aws_credentials_clear(struct aws_credentials *c)
{
	if (!c)
		return;
	secret_free(c->access_key_id);
	secret_free(c->secret_access_key);
	secret_free(c->session_token);
	secret_free(c->account_id);
	memset(c, 0, sizeof(*c));
}

void aws_credentials_free(struct aws_credentials *c)
{
	if (!c)
		return;
	aws_credentials_clear(c);
	free(c);
}

void aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src)
{
	dst->access_key_id = xstrdup(src->access_key_id);
	dst->secret_access_key = xstrdup(src->secret_access_key);
	dst->session_token = xstrdup(src->session_token);
	dst->account_id = xstrdup(src->account_id);
	dst->expiration = src->expiration;
}

/* ---------- ISO-8601 ---------- */

static bool take_digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*s)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool take_char(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

static bool is_leap(int y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (valid for years 0..9999). */
static int64_t days_since_epoch(int y, int m, int d)
{
	static const int before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
	/* Days before January 1st of year y, counted from 0000-01-01: 365 per
	 * year plus one per leap year in 0..y-1 (year 0 is one). */
	int64_t yy = (int64_t)y - 1;
	int64_t days = (int64_t)y * 365 + (y >= 1 ? yy / 4 - yy / 100 + yy / 400 + 1 : 0);

	days += before[m - 1] + (m > 2 && is_leap(y)) + (d - 1);
	/* 719528 = days from 0000-01-01 to 1970-01-01. */
	return days - 719528;
}

bool aws_parse_iso8601(const char *s, int64_t *out)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

	if (!s || !out)
		return false;
	if (!take_digits(&s, 4, &y) || !take_char(&s, '-') || !take_digits(&s, 2, &mo) ||
	    !take_char(&s, '-') || !take_digits(&s, 2, &d))
		return false;
	if (!take_char(&s, 'T') && !take_char(&s, 't'))
		return false;
	if (!take_digits(&s, 2, &h) || !take_char(&s, ':') || !take_digits(&s, 2, &mi) ||
	    !take_char(&s, ':') || !take_digits(&s, 2, &sec))
		return false;
	if (take_char(&s, '.')) {
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (take_char(&s, 'Z') || take_char(&s, 'z')) {
		sign = 0;
	} else if (*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		s++;
		if (!take_digits(&s, 2, &oh))
			return false;
		(void)take_char(&s, ':');
		if (!take_digits(&s, 2, &om))
			return false;
	} else {
		return false; /* no time zone */
	}
	if (*s)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 || mi > 59 ||
	    sec > 59 || oh > 23 || om > 59)
		return false;
	int64_t t = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= (int64_t)sign * (oh * 3600 + om * 60);
	*out = t;
	return true;
}

/* ---------- small helpers ---------- */

/* Server text for an error message: control characters become spaces, cut at
 * MAX_QUOTED bytes on a UTF-8 boundary. */
static void quote_text(const char *in, char *out, size_t outlen)
{
	size_t n = 0, limit = outlen - 1 < MAX_QUOTED ? outlen - 1 : MAX_QUOTED;
	const char *s = in ? in : "";

	/* cppcheck-suppress knownConditionTrueFalse ; limit depends on outlen, which varies by caller */
	while (n < limit && s[n])
		n++;
	if (s[n])
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[n] = '\0';
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trimmed copy of s[0..n). */
static char *trim_dup(const char *s, size_t n)
{
	while (n && is_ws(*s))
		s++, n--;
	while (n && is_ws(s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* 5th field of "arn:aws:sts::123456789012:assumed-role/r/s"; NULL if absent. */
static char *account_from_arn(const char *arn)
{
	const char *p = arn;

	for (int i = 0; i < 4; i++) {
		p = strchr(p, ':');
		if (!p)
			return NULL;
		p++;
	}
	const char *end = strchr(p, ':');
	if (!end || end == p)
		return NULL;
	return xstrndup(p, (size_t)(end - p));
}

/* ---------- STS XML ---------- */

enum sts_field {
	STS_AKID,
	STS_SECRET,
	STS_TOKEN,
	STS_EXPIRATION,
	STS_ARN,
	STS_CODE,
	STS_MESSAGE,
	STS_NFIELDS
};

static const char *const sts_field_names[STS_NFIELDS] = {
	"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Arn", "Code", "Message",
};

struct sts_parse {
	XML_Parser parser;
	char *path[MAX_XML_DEPTH]; /* local names, owned */
	int depth;
	enum {
		ROOT_UNKNOWN,
		ROOT_SUCCESS,
		ROOT_ERROR,
		ROOT_ERROR_LIST
	} root;
	char *result_name; /* "<X>Result" for root "<X>Response" */
	int capture;       /* field being read, or -1 */
	int capture_depth;
	struct dynbuf text; /* the field being read, capped at MAX_FIELD_LEN */
	char *fields[STS_NFIELDS];
	const char *fail; /* our own reason to stop */
};

/* Wiping allocator for expat: glibc tells us each block's size. */
static void *wipe_malloc(size_t n)
{
	return malloc(n ? n : 1);
}

static void wipe_free(void *p)
{
	if (p) {
		secret_wipe(p, malloc_usable_size(p));
		free(p);
	}
}

static void *wipe_realloc(void *p, size_t n)
{
	if (!p)
		return wipe_malloc(n);
	size_t old = malloc_usable_size(p);
	void *q = malloc(n ? n : 1);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p);
	return q;
}

static const XML_Memory_Handling_Suite wipe_suite = { wipe_malloc, wipe_realloc, wipe_free };

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, NS_SEP);
	return sep ? sep + 1 : name;
}

static void sts_stop(struct sts_parse *st, const char *why)
{
	if (!st->fail)
		st->fail = why;
	XML_StopParser(st->parser, XML_FALSE);
}

/* Which field, if any, the element just opened (path[depth-1]) holds. */
static int sts_field_at(const struct sts_parse *st)
{
	const char *leaf = st->path[st->depth - 1];

	if (st->root == ROOT_SUCCESS) {
		/* <X>Response/<X>Result/Credentials/<field>, .../AssumedRoleUser/Arn */
		if (st->depth != 4 || strcmp(st->path[1], st->result_name) != 0)
			return -1;
		if (strcmp(st->path[2], "Credentials") == 0) {
			for (int f = STS_AKID; f <= STS_EXPIRATION; f++)
				if (strcmp(leaf, sts_field_names[f]) == 0)
					return f;
		} else if (strcmp(st->path[2], "AssumedRoleUser") == 0 && strcmp(leaf, "Arn") == 0) {
			return STS_ARN;
		}
		return -1;
	}
	if (st->root == ROOT_ERROR || st->root == ROOT_ERROR_LIST) {
		static const char *const e1[] = { "ErrorResponse", "Error" };
		static const char *const e2[] = { "Response", "Errors", "Error" };
		int n = st->root == ROOT_ERROR ? 2 : 3;
		if (st->depth != n + 1)
			return -1;
		for (int i = 0; i < n; i++)
			if (strcmp(st->path[i], (n == 2 ? e1 : e2)[i]) != 0)
				return -1;
		if (strcmp(leaf, "Code") == 0)
			return STS_CODE;
		if (strcmp(leaf, "Message") == 0)
			return STS_MESSAGE;
	}
	return -1;
}

static void XMLCALL sts_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct sts_parse *st = ud;
	const char *local = local_name(name);

	(void)attrs;
	if (st->fail)
		return;
	if (st->capture >= 0) {
		sts_stop(st, "unexpected element inside a value");
		return;
	}
	if (st->depth >= MAX_XML_DEPTH) {
		sts_stop(st, "XML nested too deeply");
		return;
	}
	st->path[st->depth++] = xstrdup(local);
	if (st->depth == 1) {
		size_t n = strlen(local);
		if (strcmp(local, "ErrorResponse") == 0) {
			st->root = ROOT_ERROR;
		} else if (strcmp(local, "Response") == 0) {
			st->root = ROOT_ERROR_LIST;
		} else if (n > 8 && strcmp(local + n - 8, "Response") == 0) {
			st->root = ROOT_SUCCESS;
			st->result_name = xasprintf("%.*sResult", (int)(n - 8), local);
		} else {
			sts_stop(st, "not an STS response");
		}
		return;
	}
	int f = sts_field_at(st);
	if (f >= 0) {
		if (st->fields[f]) {
			sts_stop(st, "repeated element");
			return;
		}
		st->capture = f;
		st->capture_depth = st->depth;
		dynbuf_reset(&st->text);
	}
}

static void XMLCALL sts_end(void *ud, const XML_Char *name)
{
	struct sts_parse *st = ud;

	(void)name;
	if (st->fail || st->depth == 0)
		return;
	if (st->capture >= 0 && st->capture_depth == st->depth) {
		st->fields[st->capture] = trim_dup(dynbuf_str(&st->text), st->text.len);
		dynbuf_reset(&st->text);
		st->capture = -1;
	}
	free(st->path[--st->depth]);
	st->path[st->depth] = NULL;
}

static void XMLCALL sts_chars(void *ud, const XML_Char *s, int len)
{
	struct sts_parse *st = ud;

	if (st->fail || st->capture < 0 || len <= 0)
		return;
	if (!dynbuf_add(&st->text, s, (size_t)len))
		sts_stop(st, "value too long");
}

static void XMLCALL sts_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
				int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	sts_stop(ud, "DOCTYPE not allowed");
}

static void XMLCALL sts_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			       int value_length, const XML_Char *base, const XML_Char *sysid,
			       const XML_Char *pubid, const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)value_length, (void)base;
	(void)sysid, (void)pubid, (void)notation;
	sts_stop(ud, "entity declarations not allowed");
}

static void sts_parse_free(struct sts_parse *st)
{
	for (int i = 0; i < st->depth; i++)
		free(st->path[i]);
	for (int i = 0; i < STS_NFIELDS; i++)
		secret_free(st->fields[i]);
	free(st->result_name);
	dynbuf_free(&st->text);
	if (st->parser)
		XML_ParserFree(st->parser);
}

bool aws_parse_sts_response(const char *body, size_t len, struct aws_credentials *out, char *code,
			    size_t codelen, char *err, size_t errlen)
{
	struct sts_parse st;
	char quoted_code[AWS_STS_CODE_MAX], quoted_msg[MAX_QUOTED + 1];
	bool ok = false;

	if (code && codelen)
		code[0] = '\0';
	if (out)
		memset(out, 0, sizeof(*out));
	if (!out || (!body && len)) {
		err_set(err, errlen, "no STS response");
		return false;
	}
	if (len == 0) {
		err_set(err, errlen, "empty STS response");
		return false;
	}
	if (len > AWS_PARSE_MAX_BODY) {
		err_set(err, errlen, "STS response too large (%zu bytes, limit %d)", len, AWS_PARSE_MAX_BODY);
		return false;
	}
	memset(&st, 0, sizeof(st));
	st.capture = -1;
	dynbuf_init(&st.text, MAX_FIELD_LEN, true);
	/* Namespace processing on, so element prefixes do not matter. */
	static const XML_Char sep[] = { NS_SEP, '\0' };
	st.parser = XML_ParserCreate_MM(NULL, &wipe_suite, sep);
	if (!st.parser) {
		err_set(err, errlen, "out of memory creating the XML parser");
		return false;
	}
	XML_SetUserData(st.parser, &st);
	XML_SetElementHandler(st.parser, sts_start, sts_end);
	XML_SetCharacterDataHandler(st.parser, sts_chars);
	XML_SetStartDoctypeDeclHandler(st.parser, sts_doctype);
	XML_SetEntityDeclHandler(st.parser, sts_entity);
	XML_SetParamEntityParsing(st.parser, XML_PARAM_ENTITY_PARSING_NEVER);

	if (XML_Parse(st.parser, body, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (st.fail)
			err_set(err, errlen, "malformed STS response: %s", st.fail);
		else
			err_set(err, errlen, "malformed STS response: %s at line %lu",
				XML_ErrorString(XML_GetErrorCode(st.parser)),
				(unsigned long)XML_GetCurrentLineNumber(st.parser));
		goto out;
	}
	if (st.root == ROOT_ERROR || st.root == ROOT_ERROR_LIST) {
		if (!st.fields[STS_CODE] || !*st.fields[STS_CODE]) {
			err_set(err, errlen, "STS returned an error without a Code");
			goto out;
		}
		quote_text(st.fields[STS_CODE], quoted_code, sizeof(quoted_code));
		if (code && codelen)
			snprintf(code, codelen, "%s", quoted_code);
		if (st.fields[STS_MESSAGE] && *st.fields[STS_MESSAGE]) {
			quote_text(st.fields[STS_MESSAGE], quoted_msg, sizeof(quoted_msg));
			err_set(err, errlen, "STS returned error %s: %s", quoted_code, quoted_msg);
		} else {
			err_set(err, errlen, "STS returned error %s", quoted_code);
		}
		goto out;
	}
	for (int f = STS_AKID; f <= STS_EXPIRATION; f++) {
		if (!st.fields[f] || !*st.fields[f]) {
			err_set(err, errlen, "malformed STS response: no Credentials/%s", sts_field_names[f]);
			goto out;
		}
	}
	if (!aws_parse_iso8601(st.fields[STS_EXPIRATION], &out->expiration)) {
		err_set(err, errlen, "malformed STS response: Expiration is not an ISO-8601 time");
		goto out;
	}
	out->access_key_id = st.fields[STS_AKID];
	out->secret_access_key = st.fields[STS_SECRET];
	out->session_token = st.fields[STS_TOKEN];
	st.fields[STS_AKID] = st.fields[STS_SECRET] = st.fields[STS_TOKEN] = NULL;
	if (st.fields[STS_ARN])
		out->account_id = account_from_arn(st.fields[STS_ARN]);
	ok = true;
out:
	sts_parse_free(&st);
	return ok;
}

/* ---------- JSON documents ---------- */

enum json_slot {
	J_AKID,
	J_SECRET,
	J_TOKEN,
	J_EXPIRATION,
	J_ACCOUNT,
	J_VERSION,
	J_CODE,
	J_MESSAGE,
	J_ROLE,
	J_NSLOTS
};

struct json_field {
	const char *name;
	json_type type; /* JSON_STRING or JSON_INTEGER */
	bool required;
	enum json_slot slot;
};

static const struct json_field imds_fields[] = {
	{ "AccessKeyId", JSON_STRING, true, J_AKID }, { "SecretAccessKey", JSON_STRING, true, J_SECRET },
	{ "Token", JSON_STRING, true, J_TOKEN },      { "Expiration", JSON_STRING, true, J_EXPIRATION },
	{ "Code", JSON_STRING, false, J_CODE },       { "Message", JSON_STRING, false, J_MESSAGE },
};

static const struct json_field container_fields[] = {
	{ "AccessKeyId", JSON_STRING, true, J_AKID },   { "SecretAccessKey", JSON_STRING, true, J_SECRET },
	{ "Token", JSON_STRING, true, J_TOKEN },        { "Expiration", JSON_STRING, true, J_EXPIRATION },
	{ "AccountId", JSON_STRING, false, J_ACCOUNT }, { "RoleArn", JSON_STRING, false, J_ROLE },
	{ "Message", JSON_STRING, false, J_MESSAGE },
};

static const struct json_field process_fields[] = {
	{ "Version", JSON_INTEGER, true, J_VERSION },       { "AccessKeyId", JSON_STRING, true, J_AKID },
	{ "SecretAccessKey", JSON_STRING, true, J_SECRET }, { "SessionToken", JSON_STRING, false, J_TOKEN },
	{ "Expiration", JSON_STRING, false, J_EXPIRATION }, { "AccountId", JSON_STRING, false, J_ACCOUNT },
};

/* Overwrite every string in the tree before jansson frees it. */
static void json_wipe(json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (json_is_string(v)) {
		secret_wipe((char *)json_string_value(v), json_string_length(v));
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, item)
			json_wipe(item);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			json_wipe(item);
	}
}

bool aws_parse_credentials_json(enum aws_json_source src, const char *body, size_t len,
				struct aws_credentials *out, char *err, size_t errlen)
{
	const struct json_field *table;
	size_t nfields;
	const char *what;
	json_t *root, *vals[J_NSLOTS] = { 0 };
	json_error_t jerr;
	char quoted_a[MAX_QUOTED + 1], quoted_b[MAX_QUOTED + 1];
	bool ok = false;

	switch (src) {
	case AWS_JSON_IMDS:
		table = imds_fields, nfields = sizeof(imds_fields) / sizeof(imds_fields[0]);
		what = "IMDS credentials";
		break;
	case AWS_JSON_CONTAINER:
		table = container_fields;
		nfields = sizeof(container_fields) / sizeof(container_fields[0]);
		what = "container credentials";
		break;
	case AWS_JSON_PROCESS:
		table = process_fields, nfields = sizeof(process_fields) / sizeof(process_fields[0]);
		what = "credential_process output";
		break;
	default:
		err_set(err, errlen, "unknown credential source");
		return false;
	}
	if (out)
		memset(out, 0, sizeof(*out));
	if (!out || (!body && len)) {
		err_set(err, errlen, "%s: no document", what);
		return false;
	}
	if (len == 0) {
		err_set(err, errlen, "%s: empty document", what);
		return false;
	}
	if (len > AWS_PARSE_MAX_BODY) {
		err_set(err, errlen, "%s: document too large (%zu bytes, limit %d)", what, len,
			AWS_PARSE_MAX_BODY);
		return false;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jerr.text quotes the input near the error, which may be a secret. */
		err_set(err, errlen, "%s: invalid JSON at line %d column %d", what, jerr.line, jerr.column);
		secret_wipe(&jerr, sizeof(jerr));
		return false;
	}
	if (!json_is_object(root)) {
		err_set(err, errlen, "%s: not a JSON object", what);
		goto out;
	}
	for (size_t i = 0; i < nfields; i++) {
		json_t *v = json_object_get(root, table[i].name);
		if (!v || json_is_null(v))
			continue;
		bool type_ok = table[i].type == JSON_INTEGER ? json_is_integer(v) : json_is_string(v);
		if (!type_ok) {
			err_set(err, errlen, "%s: field \"%s\" must be %s", what, table[i].name,
				table[i].type == JSON_INTEGER ? "an integer" : "a string");
			goto out;
		}
		if (json_is_string(v) && json_string_length(v) > MAX_FIELD_LEN) {
			err_set(err, errlen, "%s: field \"%s\" too long", what, table[i].name);
			goto out;
		}
		if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)) {
			err_set(err, errlen, "%s: field \"%s\" contains a NUL", what, table[i].name);
			goto out;
		}
		/* An empty optional string counts as absent. */
		if (json_is_string(v) && json_string_length(v) == 0 && !table[i].required)
			continue;
		vals[table[i].slot] = v;
	}
	if (vals[J_CODE] && strcmp(json_string_value(vals[J_CODE]), "Success") != 0) {
		quote_text(json_string_value(vals[J_CODE]), quoted_a, sizeof(quoted_a));
		quote_text(vals[J_MESSAGE] ? json_string_value(vals[J_MESSAGE]) : "", quoted_b,
			   sizeof(quoted_b));
		err_set(err, errlen, "IMDS returned error %s%s%s", quoted_a, *quoted_b ? ": " : "", quoted_b);
		goto out;
	}
	if (src == AWS_JSON_PROCESS) {
		if (!vals[J_VERSION]) {
			err_set(err, errlen, "%s: missing field \"Version\"", what);
			goto out;
		}
		if (json_integer_value(vals[J_VERSION]) != 1) {
			err_set(err, errlen, "%s: unsupported Version %lld (expected 1)", what,
				(long long)json_integer_value(vals[J_VERSION]));
			goto out;
		}
	}
	for (size_t i = 0; i < nfields; i++) {
		json_t *v = vals[table[i].slot];
		if (!table[i].required)
			continue;
		if (!v) {
			if (src == AWS_JSON_CONTAINER && vals[J_MESSAGE]) {
				quote_text(json_string_value(vals[J_MESSAGE]), quoted_a, sizeof(quoted_a));
				err_set(err, errlen, "container credentials endpoint returned an error: %s",
					quoted_a);
			} else {
				err_set(err, errlen, "%s: missing field \"%s\"", what, table[i].name);
			}
			goto out;
		}
		if (json_is_string(v) && json_string_length(v) == 0) {
			err_set(err, errlen, "%s: field \"%s\" is empty", what, table[i].name);
			goto out;
		}
	}
	if (vals[J_EXPIRATION] && !aws_parse_iso8601(json_string_value(vals[J_EXPIRATION]), &out->expiration)) {
		err_set(err, errlen, "%s: field \"Expiration\" is not an ISO-8601 UTC time", what);
		out->expiration = 0;
		goto out;
	}
	out->access_key_id = xstrdup(json_string_value(vals[J_AKID]));
	out->secret_access_key = xstrdup(json_string_value(vals[J_SECRET]));
	if (vals[J_TOKEN])
		out->session_token = xstrdup(json_string_value(vals[J_TOKEN]));
	if (vals[J_ACCOUNT])
		out->account_id = xstrdup(json_string_value(vals[J_ACCOUNT]));
	ok = true;
out:
	json_wipe(root);
	json_decref(root);
	return ok;
}

/* ---------- IMDS role name ---------- */

char *aws_parse_imds_role(const char *body, size_t len, char *err, size_t errlen)
{
	size_t n = 0;

	if (!body || len == 0) {
		err_set(err, errlen, "IMDS returned no role name");
		return NULL;
	}
	while (n < len && body[n] != '\n' && body[n] != '\r')
		n++;
	char *role = trim_dup(body, n);
	size_t rn = strlen(role);
	bool ok = rn > 0 && rn <= 256 &&
		  rn == strspn(role, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-");
	if (!ok) {
		err_set(err, errlen, "IMDS returned %s", rn ? "an invalid role name" : "no role name");
		free(role);
		return NULL;
	}
	return role;
}
