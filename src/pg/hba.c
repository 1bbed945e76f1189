/* hba file parser and matcher. Tokenizing follows pg_hba.conf: fields are
 * separated by blanks, a field is a comma-separated list, double quotes make
 * a keyword a plain name ("" is a literal quote), '#' starts a comment. */
#include "pg/hba.h"
#include "core/file_read.h"
#include "core/line_err.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKEN_LEN 1024
#define MAX_FIELDS 256

enum hba_type {
	HBA_TYPE_LOCAL,
	HBA_TYPE_HOST,
	HBA_TYPE_HOSTSSL,
	HBA_TYPE_HOSTNOSSL
};
enum hba_name_kind {
	HBA_NAME_LITERAL,
	HBA_NAME_ALL,
	HBA_NAME_SAMEUSER
};

struct hba_name {
	enum hba_name_kind kind;
	char *name; /* for HBA_NAME_LITERAL */
};

struct hba_rule {
	size_t line;
	enum hba_type type;
	struct hba_name *dbs;
	size_t ndbs;
	struct hba_name *users;
	size_t nusers;
	bool addr_all;
	int family;             /* AF_INET or AF_INET6 unless addr_all */
	unsigned char addr[16]; /* already masked */
	unsigned char mask[16];
	enum hba_method method;
	char *map; /* map= of a peer or cert rule, or NULL */
};

/* One line of auth_ident_file: MAPNAME SYSTEM-USERNAME DATABASE-USERNAME. */
struct ident_entry {
	char *map;
	char *system_user; /* literal, or the pattern after '/' */
	bool is_regex;
	regex_t re;
	char *db_user; /* may hold \1 (the regex's first group); "all" matches any */
	bool db_user_all;
};

struct hba {
	struct hba_rule *rules;
	size_t n, cap;
	struct ident_entry *idents;
	size_t nidents, idents_cap;
};

struct token {
	char *s;
	bool quoted;
};

struct field {
	struct token *items;
	size_t n;
};

struct line {
	struct field f[MAX_FIELDS];
	size_t n;
};

/* ---------- tokenizer ---------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void line_free(struct line *l)
{
	for (size_t i = 0; i < l->n; i++) {
		for (size_t j = 0; j < l->f[i].n; j++)
			free(l->f[i].items[j].s);
		free(l->f[i].items);
	}
	l->n = 0;
}

/* One list element: stops at a blank, ',' or '#' outside quotes. */
static bool read_token(const char **pp, const char *end, struct token *t, const struct line_pos *w)
{
	const char *p = *pp;
	char buf[MAX_TOKEN_LEN + 1];
	size_t n = 0;
	bool in_quote = false;

	t->quoted = false;
	while (p < end && (in_quote || !(is_blank(*p) || *p == ',' || *p == '#'))) {
		if (*p == '\0') {
			line_err(w, "NUL byte in line");
			return false;
		}
		if (*p == '"' && in_quote && end - p >= 2 && p[1] == '"') {
			p++; /* "" inside quotes is a literal quote */
		} else if (*p == '"') {
			in_quote = !in_quote;
			t->quoted = true;
			p++;
			continue;
		}
		if (n == MAX_TOKEN_LEN) {
			line_err(w, "token longer than %d bytes", MAX_TOKEN_LEN);
			return false;
		}
		buf[n++] = *p++;
	}
	if (in_quote) {
		line_err(w, "unterminated quoted string");
		return false;
	}
	if (n == 0 && !t->quoted) {
		line_err(w, "empty element in a comma-separated list");
		return false;
	}
	t->s = xstrndup(buf, n);
	*pp = p;
	return true;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && is_blank(*p))
		p++;
	return p;
}

/* A field is tok[,tok...]; blanks may follow a comma, as in PostgreSQL. */
static bool read_field(const char **pp, const char *end, struct field *f, const struct line_pos *w)
{
	const char *p = *pp;

	for (;;) {
		struct token t;
		if (!read_token(&p, end, &t, w))
			return false;
		f->items = xrealloc(f->items, (f->n + 1) * sizeof(*f->items));
		f->items[f->n++] = t;
		if (p >= end || *p != ',')
			break;
		p = skip_blanks(p + 1, end);
		if (p >= end || *p == '#') {
			line_err(w, "comma at end of list");
			return false;
		}
	}
	*pp = p;
	return true;
}

static bool tokenize(const char *p, const char *end, struct line *l, const struct line_pos *w)
{
	l->n = 0;
	for (;;) {
		p = skip_blanks(p, end);
		if (p >= end || *p == '#')
			return true;
		if (l->n == MAX_FIELDS) {
			line_err(w, "more than %d fields", MAX_FIELDS);
			return false;
		}
		struct field *f = &l->f[l->n++];
		f->items = NULL;
		f->n = 0;
		if (!read_field(&p, end, f, w))
			return false;
	}
}

/* ---------- fields to rule ---------- */

static bool is_kw(const struct token *t, const char *kw)
{
	return !t->quoted && strcmp(t->s, kw) == 0;
}

/* A field that must hold exactly one token. */
static const struct token *single(const struct field *f, const char *what, const struct line_pos *w)
{
	if (f->n != 1) {
		line_err(w, "multiple values specified for %s", what);
		return NULL;
	}
	return &f->items[0];
}

static bool parse_type(const struct field *f, enum hba_type *type, const struct line_pos *w)
{
	static const char *const names[] = { "local", "host", "hostssl", "hostnossl" };
	static const char *const unsupported[] = { "hostgssenc", "hostnogssenc", "include",
						   "include_if_exists", "include_dir" };
	const struct token *t = single(f, "connection type", w);
	char buf[SHOWN_SIZE];

	if (!t)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (is_kw(t, names[i])) {
			*type = (enum hba_type)i;
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		if (is_kw(t, unsupported[i])) {
			line_err(w, "\"%s\" is not supported", t->s);
			return false;
		}
	}
	line_err(w, "invalid connection type \"%s\"", shown_token(t->s, buf));
	return false;
}

static bool name_keyword(const struct token *t, bool is_db, struct hba_name *out, const struct line_pos *w)
{
	if (t->quoted) {
		out->kind = HBA_NAME_LITERAL;
		return true;
	}
	if (strcmp(t->s, "all") == 0) {
		out->kind = HBA_NAME_ALL;
	} else if (is_db && strcmp(t->s, "sameuser") == 0) {
		out->kind = HBA_NAME_SAMEUSER;
	} else if (is_db && (strcmp(t->s, "samerole") == 0 || strcmp(t->s, "samegroup") == 0)) {
		line_err(w, "\"%s\" is not supported", t->s);
		return false;
	} else if (is_db && strcmp(t->s, "replication") == 0) {
		line_err(w, "replication connections are not supported");
		return false;
	} else if (t->s[0] == '@') {
		line_err(w, "@file inclusion is not supported");
		return false;
	} else if (!is_db && t->s[0] == '+') {
		line_err(w, "group membership (+role) is not supported");
		return false;
	} else if (t->s[0] == '/') {
		line_err(w, "regular expressions are not supported");
		return false;
	} else {
		out->kind = HBA_NAME_LITERAL;
	}
	return true;
}

static bool parse_names(const struct field *f, bool is_db, struct hba_name **out, size_t *n,
			const struct line_pos *w)
{
	struct hba_name *v = xcalloc(f->n, sizeof(*v));

	for (size_t i = 0; i < f->n; i++) {
		if (!name_keyword(&f->items[i], is_db, &v[i], w)) {
			for (size_t j = 0; j < i; j++)
				free(v[j].name);
			free(v);
			return false;
		}
		if (v[i].kind == HBA_NAME_LITERAL)
			v[i].name = xstrdup(f->items[i].s);
	}
	*out = v;
	*n = f->n;
	return true;
}

/* Numeric IPv4 or IPv6 address; false for host names and zone ids. */
static bool parse_ip(const char *s, int *family, unsigned char addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

static size_t family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool prefix_mask(const char *s, int family, unsigned char mask[16])
{
	size_t bits = 0, max = family_len(family) * 8, n = strlen(s);

	if (n == 0 || n > 3)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		bits = bits * 10 + (size_t)(s[i] - '0');
	}
	if (bits > max)
		return false;
	memset(mask, 0, 16);
	for (size_t i = 0; i < bits; i++)
		mask[i / 8] |= (unsigned char)(0x80 >> (i % 8));
	return true;
}

static bool parse_cidr(struct hba_rule *r, const char *s, const struct line_pos *w)
{
	char buf[SHOWN_SIZE];
	char *ip = xstrdup(s);
	char *slash = strchr(ip, '/');
	bool ok;

	*slash = '\0';
	ok = parse_ip(ip, &r->family, r->addr);
	if (!ok)
		line_err(w, "invalid IP address \"%s\"", shown_token(ip, buf));
	else if (!(ok = prefix_mask(slash + 1, r->family, r->mask)))
		line_err(w, "invalid CIDR mask in address \"%s\"", shown_token(s, buf));
	free(ip);
	return ok;
}

/* ADDRESS [MASK]; returns how many fields were used, 0 on error. */
static size_t parse_address(struct hba_rule *r, const struct line *l, size_t idx, const struct line_pos *w)
{
	const struct token *t, *m;
	char buf[SHOWN_SIZE];
	int mfam = 0;

	if (!(t = single(&l->f[idx], "host address", w)))
		return 0;
	if (is_kw(t, "all")) {
		r->addr_all = true;
		return 1;
	}
	if (is_kw(t, "samehost") || is_kw(t, "samenet")) {
		line_err(w, "\"%s\" is not supported", t->s);
		return 0;
	}
	if (strchr(t->s, '/'))
		return parse_cidr(r, t->s, w) ? 1 : 0;
	if (!parse_ip(t->s, &r->family, r->addr)) {
		line_err(w, "invalid IP address \"%s\" (host names are not supported)",
			 shown_token(t->s, buf));
		return 0;
	}
	if (idx + 1 >= l->n) {
		line_err(w, "end-of-line before netmask specification");
		return 0;
	}
	if (!(m = single(&l->f[idx + 1], "netmask", w)))
		return 0;
	if (!parse_ip(m->s, &mfam, r->mask)) {
		line_err(w, "invalid IP mask \"%s\"", shown_token(m->s, buf));
		return 0;
	}
	if (mfam != r->family) {
		line_err(w, "IP address and mask do not match");
		return 0;
	}
	return 2;
}

static bool parse_method(const struct token *t, struct hba_rule *r, const struct line_pos *w)
{
	static const struct {
		const char *name;
		enum hba_method m;
	} methods[] = {
		{ "trust", HBA_TRUST }, { "reject", HBA_REJECT },       { "password", HBA_PASSWORD },
		{ "md5", HBA_MD5 },     { "scram-sha-256", HBA_SCRAM }, { "peer", HBA_PEER },
		{ "cert", HBA_CERT },
	};
	static const char *const unsupported[] = { "ident", "gss", "sspi",  "ldap", "radius",
						   "pam",   "bsd", "oauth", "krb5", "crypt" };
	char buf[SHOWN_SIZE];

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (is_kw(t, methods[i].name)) {
			r->method = methods[i].m;
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		if (is_kw(t, unsupported[i])) {
			line_err(w, "authentication method \"%s\" is not supported", t->s);
			return false;
		}
	}
	line_err(w, "invalid authentication method \"%s\"", shown_token(t->s, buf));
	return false;
}

/* Same restrictions as PostgreSQL: peer needs a Unix socket, cert needs TLS. */
static bool check_method_type(const struct hba_rule *r, const struct line_pos *w)
{
	if (r->method == HBA_PEER && r->type != HBA_TYPE_LOCAL) {
		line_err(w, "peer authentication is only supported on local sockets");
		return false;
	}
	if (r->method == HBA_CERT && r->type != HBA_TYPE_HOSTSSL) {
		line_err(w, "cert authentication is only supported on hostssl connections");
		return false;
	}
	return true;
}

/* Options must look like name=value; map= (a map of auth_ident_file) is
 * kept for peer and cert rules, as PostgreSQL does; the others are ignored. */
static bool check_options(const struct line *l, size_t idx, struct hba_rule *r, const struct line_pos *w)
{
	char buf[SHOWN_SIZE];

	for (size_t i = idx; i < l->n; i++) {
		for (size_t j = 0; j < l->f[i].n; j++) {
			const char *s = l->f[i].items[j].s;
			if (!strchr(s, '=') || s[0] == '=') {
				line_err(w, "authentication option not in name=value format: %s",
					 shown_token(s, buf));
				return false;
			}
			if (strncmp(s, "map=", 4) != 0)
				continue;
			if (r->method != HBA_PEER && r->method != HBA_CERT) {
				line_err(w, "authentication option \"map\" is only valid for authentication "
					    "methods peer and cert");
				return false;
			}
			if (!s[4]) {
				line_err(w, "map= needs a map name");
				return false;
			}
			free(r->map);
			r->map = xstrdup(s + 4);
		}
	}
	return true;
}

static bool parse_rule(const struct line *l, struct hba_rule *r, const struct line_pos *w)
{
	size_t idx = 3;
	const struct token *m;

	if (!parse_type(&l->f[0], &r->type, w))
		return false;
	if (l->n < 2) {
		line_err(w, "end-of-line before database specification");
		return false;
	}
	if (!parse_names(&l->f[1], true, &r->dbs, &r->ndbs, w))
		return false;
	if (l->n < 3) {
		line_err(w, "end-of-line before role specification");
		return false;
	}
	if (!parse_names(&l->f[2], false, &r->users, &r->nusers, w))
		return false;
	if (r->type != HBA_TYPE_LOCAL) {
		if (l->n <= idx) {
			line_err(w, "end-of-line before IP address specification");
			return false;
		}
		size_t used = parse_address(r, l, idx, w);
		if (!used)
			return false;
		idx += used;
		if (!r->addr_all)
			for (size_t i = 0; i < 16; i++)
				r->addr[i] &= r->mask[i];
	}
	if (l->n <= idx) {
		line_err(w, "end-of-line before authentication method");
		return false;
	}
	if (!(m = single(&l->f[idx], "authentication method", w)) || !parse_method(m, r, w))
		return false;
	return check_method_type(r, w) && check_options(l, idx + 1, r, w);
}

static void rule_clear(struct hba_rule *r)
{
	for (size_t i = 0; i < r->ndbs; i++)
		free(r->dbs[i].name);
	for (size_t i = 0; i < r->nusers; i++)
		free(r->users[i].name);
	free(r->dbs);
	free(r->users);
	free(r->map);
	memset(r, 0, sizeof(*r));
}

static void hba_push(struct hba *h, const struct hba_rule *r)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->rules = xrealloc(h->rules, h->cap * sizeof(*h->rules));
	}
	h->rules[h->n++] = *r;
}

/* One line without its '\n'; blank and comment lines add nothing. */
static bool parse_line(struct hba *h, const char *p, const char *end, struct line *l, const struct line_pos *w)
{
	struct hba_rule r;
	bool ok;

	memset(&r, 0, sizeof(r));
	ok = tokenize(p, end, l, w);
	if (ok && l->n > 0) {
		r.line = w->line;
		ok = parse_rule(l, &r, w);
		if (ok)
			hba_push(h, &r);
		else
			rule_clear(&r);
	}
	line_free(l);
	return ok;
}

struct hba *hba_parse(const char *text, size_t len, const char *fname, char *err, size_t errlen)
{
	struct line_pos w = { fname ? fname : "auth_hba_file", 0, err, errlen };
	struct hba *h;
	struct line *l;
	const char *p = text, *end = text ? text + len : text;

	if (!text && len) {
		line_err(&w, "no input");
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	l = xcalloc(1, sizeof(*l));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		w.line++;
		if (!parse_line(h, p, nl ? nl : end, l, &w)) {
			hba_free(h);
			h = NULL;
			break;
		}
		p = nl ? nl + 1 : end;
	}
	free(l);
	return h;
}

struct hba *hba_load(const char *path, char *err, size_t errlen)
{
	char dummy[1];
	size_t len = 0;
	char *text;
	struct hba *h;

	if (!err || errlen == 0)
		err = dummy, errlen = sizeof(dummy);
	if (!path) {
		snprintf(err, errlen, "no auth_hba_file given");
		return NULL;
	}
	if (!(text = file_read_all(path, HBA_MAX_FILE_SIZE, &len, err, errlen)))
		return NULL;
	h = hba_parse(text, len, path, err, errlen);
	free(text);
	return h;
}

/* ---------- matching ---------- */

static bool type_match(enum hba_type t, bool is_unix, bool is_tls)
{
	switch (t) {
	case HBA_TYPE_LOCAL:
		return is_unix;
	case HBA_TYPE_HOST:
		return !is_unix;
	case HBA_TYPE_HOSTSSL:
		return !is_unix && is_tls;
	case HBA_TYPE_HOSTNOSSL:
		return !is_unix && !is_tls;
	}
	return false;
}

static bool names_match(const struct hba_name *v, size_t n, const char *name, const char *user)
{
	for (size_t i = 0; i < n; i++) {
		switch (v[i].kind) {
		case HBA_NAME_ALL:
			return true;
		case HBA_NAME_SAMEUSER:
			if (strcmp(name, user) == 0)
				return true;
			break;
		case HBA_NAME_LITERAL:
			if (strcmp(name, v[i].name) == 0)
				return true;
			break;
		}
	}
	return false;
}

/* Client address as (family, bytes); a v4-mapped v6 address becomes v4. */
static bool client_addr(const struct sockaddr *sa, int *family, unsigned char bytes[16])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		*family = AF_INET;
		memcpy(bytes, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			*family = AF_INET;
			memcpy(bytes, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(bytes, in6->sin6_addr.s6_addr, 16);
		}
		return true;
	}
	return false;
}

static bool addr_match(const struct hba_rule *r, const struct sockaddr *sa)
{
	unsigned char bytes[16];
	int family;

	if (r->addr_all)
		return true;
	if (!sa || !client_addr(sa, &family, bytes) || family != r->family)
		return false;
	for (size_t i = 0; i < family_len(family); i++)
		if ((bytes[i] & r->mask[i]) != r->addr[i])
			return false;
	return true;
}

enum hba_method hba_match_rule(const struct hba *h, bool is_unix, bool is_tls, const char *db,
			       const char *user, const struct sockaddr *addr, size_t *line)
{
	if (line)
		*line = 0;
	if (!h || !db || !user)
		return HBA_REJECT;
	for (size_t i = 0; i < h->n; i++) {
		const struct hba_rule *r = &h->rules[i];
		if (!type_match(r->type, is_unix, is_tls) ||
		    (r->type != HBA_TYPE_LOCAL && !addr_match(r, addr)) ||
		    !names_match(r->dbs, r->ndbs, db, user) || !names_match(r->users, r->nusers, user, user))
			continue;
		if (line)
			*line = r->line;
		return r->method;
	}
	return HBA_REJECT;
}

enum hba_method hba_match(const struct hba *h, bool is_unix, bool is_tls, const char *db, const char *user,
			  const struct sockaddr *addr)
{
	return hba_match_rule(h, is_unix, is_tls, db, user, addr, NULL);
}

size_t hba_rule_count(const struct hba *h)
{
	return h ? h->n : 0;
}

static void ident_clear(struct ident_entry *e)
{
	free(e->map);
	free(e->system_user);
	free(e->db_user);
	if (e->is_regex)
		regfree(&e->re);
	memset(e, 0, sizeof(*e));
}

void hba_free(struct hba *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		rule_clear(&h->rules[i]);
	free(h->rules);
	for (size_t i = 0; i < h->nidents; i++)
		ident_clear(&h->idents[i]);
	free(h->idents);
	free(h);
}

/* ---------- ident maps (auth_ident_file) ---------- */

static bool ident_entry_parse(const struct line *l, struct ident_entry *e, const struct line_pos *w)
{
	const struct token *m, *su, *du;
	if (l->n != 3) {
		line_err(w, "expected MAPNAME SYSTEM-USERNAME DATABASE-USERNAME");
		return false;
	}
	if (!(m = single(&l->f[0], "map name", w)) || !(su = single(&l->f[1], "system user name", w)) ||
	    !(du = single(&l->f[2], "database user name", w)))
		return false;
	e->map = xstrdup(m->s);
	e->db_user = xstrdup(du->s);
	e->db_user_all = !du->quoted && strcmp(du->s, "all") == 0;
	if (su->s[0] == '/' && !su->quoted) {
		e->system_user = xstrdup(su->s + 1);
		int rc = regcomp(&e->re, e->system_user, REG_EXTENDED);
		if (rc != 0) {
			char why[128];
			regerror(rc, &e->re, why, sizeof(why));
			line_err(w, "invalid regular expression \"%s\": %s", e->system_user, why);
			return false;
		}
		e->is_regex = true;
		return true;
	}
	e->system_user = xstrdup(su->s);
	return true;
}

/* Entries already added stay when a later line fails: the caller frees h then. */
static bool ident_parse(struct hba *h, const char *text, size_t len, const struct line_pos *w0)
{
	struct line_pos w = *w0;
	struct line *l = xcalloc(1, sizeof(*l));
	const char *p = text, *end = text + len;
	bool ok = true;
	while (ok && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		w.line++;
		ok = tokenize(p, nl ? nl : end, l, &w);
		if (ok && l->n > 0) {
			struct ident_entry e;
			memset(&e, 0, sizeof(e));
			ok = ident_entry_parse(l, &e, &w);
			if (ok) {
				if (h->nidents == h->idents_cap) {
					h->idents_cap = h->idents_cap ? h->idents_cap * 2 : 16;
					h->idents = xrealloc(h->idents, h->idents_cap * sizeof(*h->idents));
				}
				h->idents[h->nidents++] = e;
			} else {
				ident_clear(&e);
			}
		}
		line_free(l);
		p = nl ? nl + 1 : end;
	}
	free(l);
	return ok;
}

bool hba_parse_ident(struct hba *h, const char *text, size_t len, const char *fname, char *err, size_t errlen)
{
	struct line_pos w = { fname ? fname : "auth_ident_file", 0, err, errlen };
	if (!text && len) {
		line_err(&w, "no input");
		return false;
	}
	return ident_parse(h, text ? text : "", len, &w);
}

bool hba_load_ident(struct hba *h, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *text = file_read_all(path, HBA_MAX_FILE_SIZE, &len, err, errlen);
	if (!text)
		return false;
	bool ok = hba_parse_ident(h, text, len, path, err, errlen);
	free(text);
	return ok;
}

/* The database user a regex entry maps to: \1 replaced by the first group. */
static bool regex_db_user(const struct ident_entry *e, const char *system_user, char *out, size_t outlen)
{
	regmatch_t g[2];
	if (regexec(&e->re, system_user, 2, g, 0) != 0)
		return false;
	const char *ref = strstr(e->db_user, "\\1");
	if (!ref) {
		snprintf(out, outlen, "%s", e->db_user);
		return true;
	}
	if (g[1].rm_so < 0)
		return false;
	int n = snprintf(out, outlen, "%.*s%.*s%s", (int)(ref - e->db_user), e->db_user,
			 (int)(g[1].rm_eo - g[1].rm_so), system_user + g[1].rm_so, ref + 2);
	return n >= 0 && (size_t)n < outlen;
}

static bool ident_allows(const struct hba *h, const char *map, const char *system_user, const char *db_user)
{
	for (size_t i = 0; i < h->nidents; i++) {
		const struct ident_entry *e = &h->idents[i];
		if (strcmp(e->map, map) != 0)
			continue;
		if (e->is_regex) {
			char want[MAX_TOKEN_LEN + 256];
			if (regex_db_user(e, system_user, want, sizeof(want)) &&
			    (e->db_user_all || strcmp(want, db_user) == 0))
				return true;
		} else if (strcmp(e->system_user, system_user) == 0 &&
			   (e->db_user_all || strcmp(e->db_user, db_user) == 0)) {
			return true;
		}
	}
	return false;
}

bool hba_user_allowed(const struct hba *h, size_t rule_line, const char *system_user, const char *db_user)
{
	if (!system_user || !db_user)
		return false;
	const struct hba_rule *r = NULL;
	for (size_t i = 0; h && i < h->n && !r; i++)
		if (h->rules[i].line == rule_line)
			r = &h->rules[i];
	if (!r || !r->map)
		return strcmp(system_user, db_user) == 0;
	return ident_allows(h, r->map, system_user, db_user);
}

const char *hba_method_name(enum hba_method m)
{
	switch (m) {
	case HBA_REJECT:
		return "reject";
	case HBA_TRUST:
		return "trust";
	case HBA_PASSWORD:
		return "password";
	case HBA_MD5:
		return "md5";
	case HBA_SCRAM:
		return "scram-sha-256";
	case HBA_PEER:
		return "peer";
	case HBA_CERT:
		return "cert";
	}
	return "unknown";
}
