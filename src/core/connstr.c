/* libpq-style key=value parser; see include/core/connstr.h. */
#include "core/connstr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct connstr_state {
	const char *p;     /* read position in the text */
	char *out;         /* write position in the scratch buffer */
	bool after_secret; /* previous pair was a password: echo nothing after it */
	char *err;
	size_t errlen;
};

static bool is_space(char c)
{
	return isspace((unsigned char)c) != 0;
}

static void skip_space(struct connstr_state *st)
{
	while (is_space(*st->p))
		st->p++;
}

static bool is_secret_key(const char *key)
{
	return str_ieq(key, "password");
}

static bool valid_key(const char *key)
{
	for (const char *c = key; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			return false;
	return *key != '\0';
}

/* An error about text the user wrote where a key belongs. After a password,
 * that text is likely the rest of an unquoted password, so it is not shown. */
static bool key_error(struct connstr_state *st, const char *what, const char *key)
{
	if (st->after_secret)
		snprintf(st->err, st->errlen,
			 "unexpected text after the value of \"password\" "
			 "(quote a value that contains spaces: password='...')");
	else
		snprintf(st->err, st->errlen, "%s \"%.64s\"", what, key);
	return false;
}

/* Copy the key into the scratch buffer; return it, or NULL on error. */
static char *read_key(struct connstr_state *st)
{
	char *key = st->out;
	while (*st->p && *st->p != '=' && !is_space(*st->p))
		*st->out++ = *st->p++;
	*st->out++ = '\0';
	if (*key == '\0') {
		snprintf(st->err, st->errlen, "missing key before \"=\"");
		return NULL;
	}
	if (!valid_key(key)) {
		key_error(st, "invalid key", key);
		return NULL;
	}
	skip_space(st);
	if (*st->p != '=') {
		key_error(st, "missing \"=\" after", key);
		return NULL;
	}
	st->p++;
	skip_space(st);
	return key;
}

static char *read_quoted(struct connstr_state *st, const char *key)
{
	char *value = st->out;
	st->p++;
	for (;;) {
		if (*st->p == '\\' && st->p[1])
			st->p++;
		else if (*st->p == '\'')
			break;
		if (*st->p == '\0') {
			snprintf(st->err, st->errlen, "unterminated quoted value of \"%s\"", key);
			return NULL;
		}
		*st->out++ = *st->p++;
	}
	st->p++;
	*st->out++ = '\0';
	if (*st->p && !is_space(*st->p)) {
		snprintf(st->err, st->errlen, "unexpected text after the quoted value of \"%s\"", key);
		return NULL;
	}
	return value;
}

static char *read_plain(struct connstr_state *st, const char *key)
{
	char *value = st->out;
	while (*st->p && !is_space(*st->p)) {
		if (*st->p == '\\') {
			st->p++;
			if (*st->p == '\0') {
				snprintf(st->err, st->errlen, "backslash at the end of the value of \"%s\"",
					 key);
				return NULL;
			}
		}
		*st->out++ = *st->p++;
	}
	*st->out++ = '\0';
	return value;
}

static bool parse_pairs(struct connstr_state *st, connstr_cb cb, void *arg)
{
	for (;;) {
		skip_space(st);
		if (*st->p == '\0')
			return true;
		char *mark = st->out;
		char *key = read_key(st);
		if (!key)
			return false;
		char *value = *st->p == '\'' ? read_quoted(st, key) : read_plain(st, key);
		if (!value || !cb(arg, key, value, st->err, st->errlen))
			return false;
		st->after_secret = is_secret_key(key);
		/* Reuse the scratch space; wipe it first, it may hold a password. */
		secret_wipe(mark, (size_t)(st->out - mark));
		st->out = mark;
	}
}

bool connstr_parse(const char *text, connstr_cb cb, void *arg, char *err, size_t errlen)
{
	/* Keys and values are never longer than the text, plus two terminators. */
	size_t cap = strlen(text) + 2;
	char *scratch = xmalloc(cap);
	struct connstr_state st = { .p = text, .out = scratch, .err = err, .errlen = errlen };
	bool ok = parse_pairs(&st, cb, arg);
	secret_wipe(scratch, cap);
	free(scratch);
	return ok;
}
