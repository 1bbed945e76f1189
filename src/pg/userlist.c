/* auth_file parser. The input is untrusted bytes with a length: no NUL
 * termination is assumed and every read is checked against the line end. */
#include "pg/userlist.h"
#include "pg/md5auth.h"
#include "core/file_read.h"
#include "core/line_err.h"
#include "core/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAM_PREFIX "SCRAM-SHA-256$"
/* How much of a user name to quote in an error message. */

struct userlist {
	struct userlist_entry *entries; /* sorted by user, unique */
	size_t count;
};

/* An entry with its position in the file, so that the last duplicate wins. */
struct slot {
	struct userlist_entry e;
	size_t seq;
};

struct builder {
	struct slot *v;
	size_t n, cap;
};

static void drop_derived(struct userlist_entry *e)
{
	if (e->derived) {
		scram_secret_wipe(e->derived);
		free(e->derived);
		e->derived = NULL;
	}
}

static void entry_clear(struct userlist_entry *e)
{
	free(e->user);
	secret_free(e->secret);
	scram_secret_wipe(&e->scram);
	drop_derived(e);
	memset(e, 0, sizeof(*e));
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Reads a "..." field starting at *pp (which points at the quote). */
static char *read_quoted(const char **pp, const char *end, size_t max, const char *what,
			 const struct line_pos *w)
{
	const char *p = *pp + 1;
	size_t room = (size_t)(end - p) < max ? (size_t)(end - p) : max;
	char *buf = xmalloc(room + 1);
	size_t n = 0;

	for (;;) {
		if (p >= end) {
			line_err(w, "unterminated quoted %s", what);
			break;
		}
		if (*p == '"' && !(end - p >= 2 && p[1] == '"')) {
			*pp = p + 1;
			buf[n] = '\0';
			return buf;
		}
		if (*p == '\0') {
			line_err(w, "NUL byte in %s", what);
			break;
		}
		if (n >= max) {
			line_err(w, "%s longer than %zu bytes", what, max);
			break;
		}
		buf[n++] = *p;
		p += *p == '"' ? 2 : 1;
	}
	secret_wipe(buf, n);
	free(buf);
	return NULL;
}

static bool classify(struct userlist_entry *e, const struct line_pos *w)
{
	if (strncmp(e->secret, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0) {
		if (!scram_parse_secret(e->secret, &e->scram)) {
			char name[SHOWN_SIZE];
			shown_token(e->user, name);
			line_err(w, "invalid SCRAM secret for user \"%s\"", name);
			return false;
		}
		e->kind = USERLIST_SCRAM;
	} else if (md5_is_hashed(e->secret)) {
		e->kind = USERLIST_MD5;
	} else {
		e->kind = USERLIST_PLAIN;
	}
	return true;
}

/* One line without its '\n'. Returns false on error; *got says whether an
 * entry was read (comments and blank lines give none). */
static bool parse_line(const char *p, const char *end, struct userlist_entry *e, bool *got,
		       const struct line_pos *w)
{
	*got = false;
	p = skip_blanks(p, end);
	if (p == end || *p == ';' || *p == '#')
		return true;
	if (*p != '"') {
		line_err(w, "expected a double-quoted user name");
		return false;
	}
	if (!(e->user = read_quoted(&p, end, USERLIST_MAX_USER_LEN, "user name", w)))
		return false;
	if (!e->user[0]) {
		line_err(w, "empty user name");
		return false;
	}
	p = skip_blanks(p, end);
	if (p == end || *p != '"') {
		line_err(w, p == end ? "missing password field" : "expected a double-quoted password");
		return false;
	}
	if (!(e->secret = read_quoted(&p, end, USERLIST_MAX_SECRET_LEN, "password", w)))
		return false;
	/* Further fields are ignored, as PgBouncer does. */
	*got = true;
	return classify(e, w);
}

static void builder_push(struct builder *b, struct userlist_entry *e)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	b->v[b->n].e = *e;
	b->v[b->n].seq = b->n;
	b->n++;
	memset(e, 0, sizeof(*e));
}

static void builder_free(struct builder *b)
{
	for (size_t i = 0; i < b->n; i++)
		entry_clear(&b->v[i].e);
	free(b->v);
	b->v = NULL;
	b->n = b->cap = 0;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	int c = strcmp(x->e.user, y->e.user);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts by user and keeps the last line for each user. */
static struct userlist *builder_finish(struct builder *b)
{
	struct userlist *ul = xcalloc(1, sizeof(*ul));

	if (b->n)
		qsort(b->v, b->n, sizeof(*b->v), slot_cmp);
	ul->entries = xcalloc(b->n ? b->n : 1, sizeof(*ul->entries));
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && strcmp(b->v[i].e.user, b->v[i + 1].e.user) == 0) {
			entry_clear(&b->v[i].e);
			continue;
		}
		ul->entries[ul->count++] = b->v[i].e;
	}
	free(b->v);
	return ul;
}

struct userlist *userlist_parse(const char *text, size_t len, const char *fname, char *err, size_t errlen)
{
	struct line_pos w = { fname ? fname : "auth_file", 0, err, errlen };
	struct builder b = { 0 };
	const char *p = text, *end = text ? text + len : text;

	if (!text && len) {
		line_err(&w, "no input");
		return NULL;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct userlist_entry e = { 0 };
		bool got;

		w.line++;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (!parse_line(p, eol, &e, &got, &w)) {
			entry_clear(&e);
			builder_free(&b);
			return NULL;
		}
		if (got)
			builder_push(&b, &e);
		p = nl ? nl + 1 : end;
	}
	return builder_finish(&b);
}

struct userlist *userlist_load(const char *path, char *err, size_t errlen)
{
	char dummy[1];
	size_t len = 0;
	char *text;
	struct userlist *ul;

	if (!err || errlen == 0)
		err = dummy, errlen = sizeof(dummy);
	if (!path) {
		snprintf(err, errlen, "no auth_file given");
		return NULL;
	}
	text = file_read_all(path, USERLIST_MAX_FILE_SIZE, &len, err, errlen);
	if (!text)
		return NULL;
	ul = userlist_parse(text, len, path, err, errlen);
	secret_wipe(text, len);
	free(text);
	return ul;
}

static int find_cmp(const void *key, const void *elem)
{
	const struct userlist_entry *e = elem;

	return strcmp(key, e->user);
}

const struct userlist_entry *userlist_find(const struct userlist *ul, const char *user)
{
	if (!ul || !user || !ul->count)
		return NULL;
	return bsearch(user, ul->entries, ul->count, sizeof(*ul->entries), find_cmp);
}

size_t userlist_count(const struct userlist *ul)
{
	return ul ? ul->count : 0;
}

const struct userlist_entry *userlist_entry_at(const struct userlist *ul, size_t i)
{
	return ul && i < ul->count ? &ul->entries[i] : NULL;
}

const struct scram_secret *userlist_plain_scram(const struct userlist_entry *e, int iterations)
{
	if (!e || e->kind != USERLIST_PLAIN)
		return NULL;
	if (e->derived && e->derived->iterations == iterations)
		return e->derived;
	/* A cache, not a change of meaning: the entry is logically unchanged
	 * (entries live in the userlist's own malloc'd array). */
	struct userlist_entry *me = (struct userlist_entry *)e;
	drop_derived(me);
	unsigned char salt[16];
	struct scram_secret *d = xcalloc(1, sizeof(*d));
	if (!random_bytes(salt, sizeof(salt)) ||
	    !scram_secret_from_password(e->secret, salt, sizeof(salt), iterations, d)) {
		scram_secret_wipe(d);
		free(d);
		return NULL;
	}
	me->derived = d;
	return d;
}

struct userlist_entry *userlist_entry_new(const char *user, const char *secret)
{
	if (strlen(user) > USERLIST_MAX_USER_LEN || strlen(secret) > USERLIST_MAX_SECRET_LEN)
		return NULL;
	struct userlist_entry *e = xcalloc(1, sizeof(*e));
	e->user = xstrdup(user);
	e->secret = xstrdup(secret);
	struct line_pos w = { "auth_query", 1, NULL, 0 };
	if (!classify(e, &w)) {
		userlist_entry_free(e);
		return NULL;
	}
	return e;
}

void userlist_entry_free(struct userlist_entry *e)
{
	if (!e)
		return;
	entry_clear(e);
	free(e);
}

void userlist_free(struct userlist *ul)
{
	if (!ul)
		return;
	for (size_t i = 0; i < ul->count; i++)
		entry_clear(&ul->entries[i]);
	free(ul->entries);
	free(ul);
}

const char *userlist_kind_name(enum userlist_kind kind)
{
	switch (kind) {
	case USERLIST_PLAIN:
		return "plain";
	case USERLIST_MD5:
		return "md5";
	case USERLIST_SCRAM:
		return "scram-sha-256";
	}
	return "unknown";
}
