/* Reading a configuration file into a fresh struct tb_config.
 *
 * libinih does the INI syntax, but Debian's build has a fixed 200-byte line
 * buffer and gives the handler no line number. So the lines come from our
 * own reader (cfgsrc: the file and those it %includes, in memory), which
 * counts lines, drops leading whitespace, comments and %include directives,
 * checks each line's shape, and hands inih what fits its buffer. A longer
 * "name = value" line is handed over as its first piece, which still holds
 * the name and the start of the value; the reader keeps the rest aside and
 * the handler appends it to the value inih passes. inih calls the handler
 * right after the reader returns a line, so the reader's position is the
 * handler's file and line. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cfgsrc.h"
#include "core/connstr.h"
#include "core/hostlist.h"
#include "core/params.h"
#include "core/util.h"

struct parse_ctx;

/* One kind of section. A future kind is one more row: [credential.NAME] is
 * prefix "credential.", with on_enter creating the credential that its keys
 * then fill. */
struct section_def {
	const char *name;
	bool prefix; /* name is a prefix; the rest is passed to on_enter */
	bool (*on_enter)(struct parse_ctx *ctx, const char *suffix);
	bool (*on_key)(struct parse_ctx *ctx, const char *name, const char *value);
};

/* Where a setting was made: for messages that name both places. */
struct place {
	const char *file; /* owned by the cfgsrc; NULL = not set in the file */
	int line;
};

struct parse_ctx {
	struct tb_config *cfg;
	struct tb_config *defaults; /* to tell a no-op setting of an ignored parameter */
	struct cfgsrc *src;
	const char *file; /* file and line last returned by the reader */
	int lineno;
	const char *rest; /* the part of a long line inih did not get */
	size_t rest_len;
	const struct section_def *section;
	char section_name[64];
	struct place *param_place; /* per [tokenbouncer] parameter: where it was set */
	bool failed;
	char *err;
	size_t errlen;
};

static bool fail_at(struct parse_ctx *ctx, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool fail(struct parse_ctx *ctx, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_warning(struct parse_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool vfail_at(struct parse_ctx *ctx, const char *file, int line, const char *fmt, va_list ap)
{
	int n;
	if (ctx->failed)
		return false;
	ctx->failed = true;
	if (line > 0)
		n = snprintf(ctx->err, ctx->errlen, "%s:%d: ", file, line);
	else
		n = snprintf(ctx->err, ctx->errlen, "%s: ", file);
	if (n < 0 || (size_t)n >= ctx->errlen)
		return false;
	vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
	return false;
}

static bool fail_at(struct parse_ctx *ctx, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(ctx, file ? file : ctx->cfg->path, line, fmt, ap);
	va_end(ap);
	return false;
}

/* line > 0: in the file being read (during parsing) or the main file. */
static bool fail(struct parse_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(ctx, ctx->file && line > 0 ? ctx->file : ctx->cfg->path, line, fmt, ap);
	va_end(ap);
	return false;
}

/* A warning about the line being read: "file:line: text". */
static void add_warning(struct parse_ctx *ctx, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "%s:%d: ", ctx->file, ctx->lineno);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(msg))
		vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	struct tb_config *cfg = ctx->cfg;
	cfg->warnings = xrealloc(cfg->warnings, (cfg->nwarnings + 1) * sizeof(*cfg->warnings));
	cfg->warnings[cfg->nwarnings++] = xstrdup(msg);
}

/* ---- [databases] and [users] entries ---- */

/* State while the key=value pairs of one entry are stored. */
struct entry_ctx {
	struct parse_ctx *ctx;
	const char *what, *name; /* section and entry, for warnings */
	void *base;
	const struct param_def *table;
	size_t count;
	uint64_t seen;    /* bit per table row (tables have fewer than 64 rows) */
	bool prev_secret; /* previous key was a secret: do not echo what follows */
};

static bool unknown_key(const struct entry_ctx *ec, const char *key, char *err, size_t errlen)
{
	if (ec->prev_secret)
		snprintf(err, errlen,
			 "unexpected key after the value of \"password\" "
			 "(quote a value that contains spaces: password='...')");
	else
		snprintf(err, errlen, "unknown key \"%s\"", key);
	return false;
}

static bool entry_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct entry_ctx *ec = arg;
	const struct param_def *p = param_find_in(ec->table, ec->count, key);
	if (!p)
		return unknown_key(ec, key, err, errlen);
	uint64_t bit = (uint64_t)1 << (p - ec->table);
	/* PgBouncer: a key given again overrides the earlier one. */
	if (ec->seen & bit)
		add_warning(ec->ctx, "[%s] entry \"%s\": key \"%s\" is given twice; the last one is used",
			    ec->what, ec->name, p->name);
	ec->seen |= bit;
	if (p->ignored && strcmp(value, p->default_value ? p->default_value : "") != 0)
		add_warning(ec->ctx, "[%s] entry \"%s\": %s has no effect: %s", ec->what, ec->name, p->name,
			    p->ignored);
	if (ec->table == param_db_table && strcmp(p->name, "server_lifetime") == 0 && str_ieq(value, "token")) {
		((struct db_alias *)ec->base)->lifetime_from_token = true;
		return true;
	}
	ec->prev_secret = p->secret;
	return param_store(ec->base, p, value, err, errlen);
}

/* Unset values: NULL strings, -1 numbers and enums; then the table defaults. */
static void entry_init(void *base, const struct param_def *table, size_t count)
{
	char err[256];
	for (size_t i = 0; i < count; i++) {
		void *f = (char *)base + table[i].offset;
		if (table[i].type == PARAM_TIME)
			*(usec_t *)f = -1;
		else if (table[i].type == PARAM_INT || table[i].type == PARAM_ENUM)
			*(int *)f = -1;
		if (table[i].default_value)
			param_store(base, &table[i], table[i].default_value, err, sizeof(err));
	}
}

static void entry_clear(void *base, const struct param_def *table, size_t count)
{
	for (size_t i = 0; i < count; i++)
		param_clear(base, &table[i]);
}

static bool entry_parse(struct parse_ctx *ctx, void *base, const struct param_def *table, size_t count,
			const char *what, const char *name, const char *text, int line)
{
	char perr[512];
	struct entry_ctx ec = {
		.ctx = ctx, .what = what, .name = name, .base = base, .table = table, .count = count
	};
	entry_init(base, table, count);
	if (connstr_parse(text, entry_pair, &ec, perr, sizeof(perr)))
		return true;
	return fail(ctx, line, "[%s] entry \"%s\": %s", what, name, perr);
}

static void db_clear(struct db_alias *db)
{
	entry_clear(db, param_db_table, param_db_count);
	free(db->name);
	db->name = NULL;
}

static bool connector_check(struct parse_ctx *ctx, const struct db_alias *db)
{
	bool gcp = db->auth == UPSTREAM_AUTH_CLOUDSQL || db->auth == UPSTREAM_AUTH_ALLOYDB;
	const char *key = db->instance          ? NULL
			  : db->ip_type >= 0    ? "ip_type"
			  : db->enable_iam_auth ? "enable_iam_auth"
						: NULL;
	if (db->instance && !gcp)
		return fail_at(ctx, db->file, db->line,
			       "[databases] entry \"%s\": instance= needs auth=cloudsql "
			       "or auth=alloydb",
			       db->name);
	if (key)
		return fail_at(ctx, db->file, db->line,
			       "[databases] entry \"%s\": %s needs instance= (connector "
			       "mode)",
			       db->name, key);
	return true;
}

static bool db_check(struct parse_ctx *ctx, const struct db_alias *db)
{
	if (!connector_check(ctx, db))
		return false;
	if (db->auth == UPSTREAM_AUTH_PASSWORD) {
		if (db->credential)
			return fail_at(ctx, db->file, db->line,
				       "[databases] entry \"%s\": credential=%s needs a token "
				       "method (auth=entra, aws-rds, aws-dsql, cloudsql or alloydb)",
				       db->name, db->credential);
		if (db->lifetime_from_token || db->user_from_token)
			return fail_at(ctx, db->file, db->line,
				       "[databases] entry \"%s\": %s needs a token method in "
				       "auth=",
				       db->name,
				       db->user_from_token ? "user_from_token" : "server_lifetime=token");
		return true;
	}
	if (hostlist_count(db->host) > 1)
		return fail_at(ctx, db->file, db->line,
			       "[databases] entry \"%s\": a host list needs "
			       "auth=password (a token is minted for one host)",
			       db->name);
	if (!db->credential)
		return fail_at(ctx, db->file, db->line,
			       "[databases] entry \"%s\": auth=%s needs credential=NAME "
			       "naming a [credential.NAME] section",
			       db->name, upstream_auth_name(db->auth));
	/* Connector mode without automatic IAM login: the server asks for a password. */
	if (db->password && !(db->instance && !db->enable_iam_auth))
		return fail_at(ctx, db->file, db->line,
			       "[databases] entry \"%s\": password= cannot be combined "
			       "with auth=%s",
			       db->name, upstream_auth_name(db->auth));
	if (db->user_from_token && (db->auth != UPSTREAM_AUTH_ENTRA || db->user))
		return fail_at(ctx, db->file, db->line,
			       "[databases] entry \"%s\": user_from_token needs auth=entra "
			       "and no user=",
			       db->name);
	return true;
}

const char *upstream_auth_name(enum upstream_auth a)
{
	switch (a) {
	case UPSTREAM_AUTH_PASSWORD:
		return "password";
	case UPSTREAM_AUTH_ENTRA:
		return "entra";
	case UPSTREAM_AUTH_AWS_RDS:
		return "aws-rds";
	case UPSTREAM_AUTH_AWS_DSQL:
		return "aws-dsql";
	case UPSTREAM_AUTH_CLOUDSQL:
		return "cloudsql";
	case UPSTREAM_AUTH_ALLOYDB:
		return "alloydb";
	}
	return "?";
}

/* Names may be written as SQL identifiers in double quotes, as in PgBouncer:
 * "my-db" or "say ""hi""". Copies the name into out (of the name's size). */
static bool unquote_name(struct parse_ctx *ctx, const char *name, char *out, int line)
{
	if (name[0] != '"') {
		memcpy(out, name, strlen(name) + 1);
		return true;
	}
	const char *p = name + 1;
	for (;;) {
		if (*p == '\0')
			return fail(ctx, line, "unterminated quoted name %s", name);
		if (*p == '"' && p[1] == '"')
			p++;
		else if (*p == '"')
			break;
		*out++ = *p++;
	}
	*out = '\0';
	if (p[1] != '\0')
		return fail(ctx, line, "unexpected text after quoted name %s", name);
	return true;
}

/* PgBouncer: an alias or user defined again replaces the earlier entry. */
static void warn_redefined(struct parse_ctx *ctx, const char *what, const char *name, const char *file,
			   int line)
{
	add_warning(ctx, "[%s] entry \"%s\" is defined again (first at %s:%d); the last one is used", what,
		    name, file, line);
}

static bool db_add(struct parse_ctx *ctx, const char *name, const char *value)
{
	struct tb_config *cfg = ctx->cfg;
	struct db_alias db = { 0 };

	if (!*name)
		return fail(ctx, ctx->lineno, "empty database alias");
	if (strcmp(name, "pgbouncer") == 0 || strcmp(name, "tokenbouncer") == 0)
		return fail(ctx, ctx->lineno, "database alias \"%s\" is reserved for the admin console", name);
	db.name = xstrdup(name);
	db.file = ctx->file;
	db.line = ctx->lineno;
	if (!entry_parse(ctx, &db, param_db_table, param_db_count, "databases", name, value, db.line) ||
	    !db_check(ctx, &db)) {
		db_clear(&db);
		return false;
	}
	for (size_t i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0) {
			warn_redefined(ctx, "databases", name, cfg->dbs[i].file, cfg->dbs[i].line);
			db_clear(&cfg->dbs[i]);
			cfg->dbs[i] = db;
			return true;
		}
	}
	cfg->dbs = xrealloc(cfg->dbs, (cfg->ndbs + 1) * sizeof(*cfg->dbs));
	cfg->dbs[cfg->ndbs++] = db;
	return true;
}

static void user_clear(struct user_cfg *u)
{
	entry_clear(u, param_user_table, param_user_count);
	free(u->name);
	u->name = NULL;
}

static bool user_add(struct parse_ctx *ctx, const char *name, const char *value)
{
	struct tb_config *cfg = ctx->cfg;
	struct user_cfg u = { 0 };

	if (!*name)
		return fail(ctx, ctx->lineno, "empty user name");
	u.name = xstrdup(name);
	u.file = ctx->file;
	u.line = ctx->lineno;
	if (!entry_parse(ctx, &u, param_user_table, param_user_count, "users", name, value, u.line)) {
		user_clear(&u);
		return false;
	}
	for (size_t i = 0; i < cfg->nusers; i++) {
		if (strcmp(cfg->users[i].name, name) == 0) {
			warn_redefined(ctx, "users", name, cfg->users[i].file, cfg->users[i].line);
			user_clear(&cfg->users[i]);
			cfg->users[i] = u;
			return true;
		}
	}
	cfg->users = xrealloc(cfg->users, (cfg->nusers + 1) * sizeof(*cfg->users));
	cfg->users[cfg->nusers++] = u;
	return true;
}

static bool databases_on_key(struct parse_ctx *ctx, const char *quoted, const char *value)
{
	char *name = xmalloc(strlen(quoted) + 1);
	bool ok = unquote_name(ctx, quoted, name, ctx->lineno) && db_add(ctx, name, value);
	free(name);
	return ok;
}

/* ---- [peers] ---- */

static void peer_clear(struct peer_cfg *pe)
{
	entry_clear(pe, param_peer_table, param_peer_count);
}

static bool peers_on_key(struct parse_ctx *ctx, const char *name, const char *value)
{
	struct tb_config *cfg = ctx->cfg;
	char *end;
	long id = strtol(name, &end, 10);
	if (!*name || *end || id < 1 || id > 16383)
		return fail(ctx, ctx->lineno, "[peers] key \"%s\": a peer_id from 1 to 16383", name);
	struct peer_cfg pe = { .id = (int)id, .file = ctx->file, .line = ctx->lineno };
	if (!entry_parse(ctx, &pe, param_peer_table, param_peer_count, "peers", name, value, pe.line)) {
		peer_clear(&pe);
		return false;
	}
	if (!pe.host || !*pe.host) {
		peer_clear(&pe);
		return fail(ctx, ctx->lineno, "[peers] entry %ld: host= is required", id);
	}
	for (size_t i = 0; i < cfg->npeers; i++) {
		if (cfg->peers[i].id == pe.id) {
			warn_redefined(ctx, "peers", name, cfg->peers[i].file, cfg->peers[i].line);
			peer_clear(&cfg->peers[i]);
			cfg->peers[i] = pe;
			return true;
		}
	}
	cfg->peers = xrealloc(cfg->peers, (cfg->npeers + 1) * sizeof(*cfg->peers));
	cfg->peers[cfg->npeers++] = pe;
	return true;
}

static bool users_on_key(struct parse_ctx *ctx, const char *quoted, const char *value)
{
	char *name = xmalloc(strlen(quoted) + 1);
	bool ok = unquote_name(ctx, quoted, name, ctx->lineno) && user_add(ctx, name, value);
	free(name);
	return ok;
}

/* ---- [tokenbouncer] ---- */

static bool global_on_key(struct parse_ctx *ctx, const char *name, const char *value)
{
	char perr[512];
	const struct param_def *p = param_find(name);
	if (!p)
		return fail(ctx, ctx->lineno, "unknown parameter \"%s\" in [%s]", name, ctx->section_name);
	size_t idx = (size_t)(p - param_table);
	struct place *was = &ctx->param_place[idx];
	if (!param_set(ctx->cfg, p, value, perr, sizeof(perr)))
		return fail(ctx, ctx->lineno, "%s", perr);
	/* PgBouncer: the last setting wins. */
	if (was->line)
		add_warning(ctx, "%s is set again (first at %s:%d); the last value is used", p->name,
			    was->file, was->line);
	if (p->ignored && !param_equal(ctx->cfg, ctx->defaults, p))
		add_warning(ctx, "%s has no effect: %s", p->name, p->ignored);
	*was = (struct place){ .file = ctx->file, .line = ctx->lineno };
	return true;
}

/* ---- [credential.NAME] ---- */

static bool credential_enter(struct parse_ctx *ctx, const char *suffix)
{
	struct tb_config *cfg = ctx->cfg;
	if (!*suffix)
		return fail(ctx, ctx->lineno, "a credential section needs a name: [credential.NAME]");
	for (size_t i = 0; i < cfg->ncreds; i++)
		if (strcmp(cfg->creds[i].name, suffix) == 0)
			return fail(ctx, ctx->lineno, "duplicate section [credential.%s] (first at %s:%d)",
				    suffix, cfg->creds[i].file, cfg->creds[i].line);
	cfg->creds = xrealloc(cfg->creds, (cfg->ncreds + 1) * sizeof(*cfg->creds));
	struct credential_cfg *c = &cfg->creds[cfg->ncreds++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(suffix);
	c->file = ctx->file;
	c->line = ctx->lineno;
	return true;
}

static bool credential_on_key(struct parse_ctx *ctx, const char *name, const char *value)
{
	struct credential_cfg *c = &ctx->cfg->creds[ctx->cfg->ncreds - 1];
	struct credential_kv *kv = NULL;
	for (size_t i = 0; i < c->nkv && !kv; i++)
		if (str_ieq(c->kv[i].key, name))
			kv = &c->kv[i];
	if (kv) {
		add_warning(ctx,
			    "key \"%s\" in [credential.%s] is set again (first at line %d); the last "
			    "value is used",
			    name, c->name, kv->line);
		secret_free(kv->value);
	} else {
		c->kv = xrealloc(c->kv, (c->nkv + 1) * sizeof(*c->kv));
		kv = &c->kv[c->nkv++];
		kv->key = xstrdup(name);
	}
	kv->value = xstrdup(value);
	kv->line = ctx->lineno;
	if (str_ieq(name, "type")) {
		free(c->type);
		c->type = xstrdup(value);
	}
	return true;
}

static void credentials_free(struct tb_config *cfg)
{
	for (size_t i = 0; i < cfg->ncreds; i++) {
		struct credential_cfg *c = &cfg->creds[i];
		for (size_t k = 0; k < c->nkv; k++) {
			free(c->kv[k].key);
			secret_free(c->kv[k].value);
		}
		free(c->kv);
		free(c->name);
		free(c->type);
	}
	free(cfg->creds);
	cfg->creds = NULL;
	cfg->ncreds = 0;
}

const struct credential_cfg *config_find_credential(const struct tb_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->ncreds; i++)
		if (strcmp(cfg->creds[i].name, name) == 0)
			return &cfg->creds[i];
	return NULL;
}

/* Cross-references that need the whole file: credentials exist and have a
 * type; a token never travels without TLS. */
static bool validate_tokens(struct parse_ctx *ctx)
{
	const struct tb_config *cfg = ctx->cfg;
	for (size_t i = 0; i < cfg->ncreds; i++)
		if (!cfg->creds[i].type)
			return fail_at(ctx, cfg->creds[i].file, cfg->creds[i].line,
				       "[credential.%s] has no type", cfg->creds[i].name);
	for (size_t i = 0; i < cfg->ndbs; i++) {
		const struct db_alias *db = &cfg->dbs[i];
		if (db->auth == UPSTREAM_AUTH_PASSWORD)
			continue;
		if (!config_find_credential(cfg, db->credential))
			return fail_at(ctx, db->file, db->line,
				       "[databases] entry \"%s\": no section [credential.%s]", db->name,
				       db->credential);
		/* DSQL aliases default to verify-full, whatever server_tls_sslmode says. */
		if (db->instance)
			continue; /* connector mode: always TLS 1.3 with its own certificates */
		int mode = db->sslmode >= 0                     ? db->sslmode
			   : db->auth == UPSTREAM_AUTH_AWS_DSQL ? TLS_MODE_VERIFY_FULL
								: (int)cfg->server_tls_sslmode;
		if (mode < TLS_MODE_REQUIRE)
			return fail_at(
				ctx, db->file, db->line,
				"[databases] entry \"%s\": auth=%s sends a token as the "
				"password, which needs TLS: set sslmode=require (or verify-ca, verify-full) on the "
				"alias or server_tls_sslmode",
				db->name, upstream_auth_name(db->auth));
		if (db->host && db->host[0] == '/')
			return fail_at(ctx, db->file, db->line,
				       "[databases] entry \"%s\": auth=%s needs a TCP host (a "
				       "Unix socket cannot carry TLS)",
				       db->name, upstream_auth_name(db->auth));
	}
	return true;
}

static const struct section_def sections[] = {
	{ .name = "credential.", .prefix = true, .on_enter = credential_enter, .on_key = credential_on_key },
	{ .name = "tokenbouncer", .on_key = global_on_key },
	{ .name = "pgbouncer", .on_key = global_on_key },
	{ .name = "databases", .on_key = databases_on_key },
	{ .name = "users", .on_key = users_on_key },
	{ .name = "peers", .on_key = peers_on_key },
};

static const struct section_def *section_find(const char *name, const char **suffix)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const struct section_def *s = &sections[i];
		size_t n = strlen(s->name);
		if (s->prefix ? strncasecmp(name, s->name, n) == 0 : str_ieq(name, s->name)) {
			*suffix = name + (s->prefix ? n : strlen(name));
			return s;
		}
	}
	return NULL;
}

/* ---- the handler: inih's name and value, plus what the reader kept aside ---- */

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	(void)section; /* the reader tracks sections itself, with their kinds */
	if (ctx->failed)
		return 0;
	if (!ctx->section)
		return fail(ctx, ctx->lineno,
			    "\"%s\" is outside any section (start the file with "
			    "[tokenbouncer])",
			    name)
			       ? 1
			       : 0;
	char *joined = NULL;
	if (ctx->rest_len > 0) {
		size_t n = strlen(value);
		joined = xmalloc(n + ctx->rest_len + 1);
		memcpy(joined, value, n);
		memcpy(joined + n, ctx->rest, ctx->rest_len);
		joined[n + ctx->rest_len] = '\0';
		value = joined;
	}
	bool ok = ctx->section->on_key(ctx, name, value);
	secret_free(joined); /* may hold a password */
	return ok ? 1 : 0;
}

/* ---- the reader: one line at a time, checked before inih parses it ---- */

static bool is_space(char c)
{
	return isspace((unsigned char)c) != 0;
}

static const char *skip_space(const char *s, const char *end)
{
	while (s < end && is_space(*s))
		s++;
	return s;
}

/* First of chars in [s, end), or a ';' after whitespace (inih's inline
 * comment rule, which holds for values too); end if neither. */
static const char *find_or_comment(const char *s, const char *end, const char *chars)
{
	bool was_space = false;
	for (; s < end; s++) {
		if ((chars && strchr(chars, *s)) || (was_space && *s == ';'))
			return s;
		was_space = is_space(*s);
	}
	return end;
}

static bool on_section_line(struct parse_ctx *ctx, const char *s, const char *line_end)
{
	const char *end = find_or_comment(s + 1, line_end, "]");
	if (end == line_end || *end != ']')
		return fail(ctx, ctx->lineno, "missing \"]\" in section header");
	const char *rest = skip_space(end + 1, line_end);
	if (rest < line_end && *rest != ';' && *rest != '#')
		return fail(ctx, ctx->lineno, "unexpected text after section header");
	const char *start = skip_space(s + 1, end);
	while (end > start && is_space(end[-1]))
		end--;
	char name[64];
	if ((size_t)(end - start) >= sizeof(name))
		return fail(ctx, ctx->lineno, "section name \"%.*s\" is too long", (int)(end - start), start);
	memcpy(name, start, (size_t)(end - start));
	name[end - start] = '\0';

	const char *suffix;
	const struct section_def *sec = section_find(name, &suffix);
	if (!sec)
		return fail(ctx, ctx->lineno,
			    "unknown section [%s] (expected [tokenbouncer], "
			    "[databases], [users], [peers] or [credential.NAME])",
			    name);
	ctx->section = sec;
	memcpy(ctx->section_name, name, sizeof(name));
	return !sec->on_enter || sec->on_enter(ctx, suffix);
}

/* "%include FILE": PgBouncer's directive; a relative name is relative to the
 * working directory, as there. */
static bool on_include(struct parse_ctx *ctx, const char *s, const char *end)
{
	char ierr[512];
	s = skip_space(s, end);
	while (end > s && is_space(end[-1]))
		end--;
	if (s == end)
		return fail(ctx, ctx->lineno, "%%include needs a file name");
	char *path = xstrndup(s, (size_t)(end - s));
	bool ok = cfgsrc_include(ctx->src, path, CONFIG_MAX_FILE_SIZE, ierr, sizeof(ierr));
	free(path);
	return ok || fail(ctx, ctx->lineno, "%s", ierr);
}

/* Where to cut a key line that does not fit inih's buffer of num bytes: the
 * piece must hold the separator and end on a non-space character, so that
 * inih's trimming removes nothing the handler's join would need. */
static const char *piece_end(const char *s, const char *sep, const char *value_end, int num)
{
	const char *cut = s + (num > 2 ? num - 2 : 0);
	if (cut >= value_end)
		return value_end;
	while (cut > sep + 1 && is_space(cut[-1]))
		cut--;
	return skip_space(sep + 1, cut) < cut ? cut : NULL;
}

static bool on_key_text(struct parse_ctx *ctx, const char *s, const char *end, char *str, int num)
{
	const char *sep = find_or_comment(s, end, "=:");
	if (sep == end || (*sep != '=' && *sep != ':'))
		return fail(ctx, ctx->lineno,
			    "syntax error: expected \"name = value\", a [section] "
			    "header or a comment");
	const char *value_end = find_or_comment(sep + 1, end, NULL);
	while (value_end > sep + 1 && is_space(value_end[-1]))
		value_end--;
	const char *cut = piece_end(s, sep, value_end, num);
	if (!cut)
		return fail(ctx, ctx->lineno, "the name before \"%c\" is too long", *sep);
	memcpy(str, s, (size_t)(cut - s));
	str[cut - s] = '\n';
	str[cut - s + 1] = '\0';
	ctx->rest = cut;
	ctx->rest_len = (size_t)(value_end - cut);
	return true;
}

/* One physical line. Sections, comments and %include are the reader's (the
 * handler needs each section's kind anyway); a key line goes to inih, in str,
 * with *for_inih set. False on an error. */
static bool take_line(struct parse_ctx *ctx, const struct cfgsrc_line *ln, char *str, int num, bool *for_inih)
{
	const char *s = ln->text, *end = ln->text + ln->len;
	*for_inih = false;
	ctx->file = config_intern_file(ctx->cfg, ln->file);
	ctx->lineno = ln->lineno;
	ctx->rest_len = 0;
	if (memchr(s, '\0', ln->len))
		return fail(ctx, ctx->lineno, "line contains a NUL byte");
	if (ln->lineno == 1 && ln->len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	/* Leading whitespace means nothing (PgBouncer): an indented line is an
	 * ordinary line, never a continuation. */
	s = skip_space(s, end);
	if (s == end || *s == ';' || *s == '#')
		return true;
	if ((size_t)(end - s) >= 8 && memcmp(s, "%include", 8) == 0 && (end - s == 8 || is_space(s[8])))
		return on_include(ctx, s + 8, end);
	if (*s == '[')
		return on_section_line(ctx, s, end);
	*for_inih = on_key_text(ctx, s, end, str, num);
	return *for_inih;
}

static char *config_reader(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	struct cfgsrc_line ln;
	bool for_inih = false;
	if (num < 8)
		return NULL;
	while (!ctx->failed && !for_inih && cfgsrc_next(ctx->src, &ln))
		if (!take_line(ctx, &ln, str, num, &for_inih))
			return NULL;
	return for_inih && !ctx->failed ? str : NULL;
}

/* ---- checks that span parameters ---- */

static struct place place_of(const struct parse_ctx *ctx, const char *name)
{
	const struct param_def *p = param_find(name);
	return p ? ctx->param_place[p - param_table] : (struct place){ 0 };
}

/* An error about a parameter: at the line that set it, else about the file. */
static bool fail_param(struct parse_ctx *ctx, struct place at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool fail_param(struct parse_ctx *ctx, struct place at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(ctx, at.file ? at.file : ctx->cfg->path, at.line, fmt, ap);
	va_end(ap);
	return false;
}

static bool tls_verifies(enum tls_mode m)
{
	return m == TLS_MODE_VERIFY_CA || m == TLS_MODE_VERIFY_FULL;
}

static const char *fmt_param(const struct tb_config *cfg, const char *name, char *buf, size_t len)
{
	param_format(cfg, param_find(name), false, buf, len);
	return buf;
}

static bool validate_auth(struct parse_ctx *ctx)
{
	const struct tb_config *cfg = ctx->cfg;
	char v[64];
	struct place at = place_of(ctx, "auth_type");
	const char *dflt = at.line ? "" : " (the default)";

	fmt_param(cfg, "auth_type", v, sizeof(v));
	if (cfg->auth_type == AUTH_TYPE_HBA && !config_str_set(cfg->auth_hba_file))
		return fail_param(ctx, at, "auth_type = hba requires auth_hba_file");
	if (cfg->auth_type != AUTH_TYPE_TRUST && !config_str_set(cfg->auth_file))
		return fail_param(ctx, at, "auth_type = %s%s requires auth_file", v, dflt);
	return true;
}

static bool validate_tls(struct parse_ctx *ctx)
{
	const struct tb_config *cfg = ctx->cfg;
	char v[64];
	struct place cat = place_of(ctx, "client_tls_sslmode"), sat = place_of(ctx, "server_tls_sslmode");

	fmt_param(cfg, "client_tls_sslmode", v, sizeof(v));
	if (cfg->client_tls_sslmode != TLS_MODE_DISABLE &&
	    (!config_str_set(cfg->client_tls_key_file) || !config_str_set(cfg->client_tls_cert_file)))
		return fail_param(ctx, cat,
				  "client_tls_sslmode = %s requires client_tls_key_file and "
				  "client_tls_cert_file",
				  v);
	if (tls_verifies(cfg->client_tls_sslmode) && !config_str_set(cfg->client_tls_ca_file))
		return fail_param(ctx, cat, "client_tls_sslmode = %s requires client_tls_ca_file", v);
	fmt_param(cfg, "server_tls_sslmode", v, sizeof(v));
	if (tls_verifies(cfg->server_tls_sslmode) && !config_str_set(cfg->server_tls_ca_file))
		return fail_param(ctx, sat, "server_tls_sslmode = %s requires server_tls_ca_file", v);
	if (config_str_set(cfg->server_tls_key_file) != config_str_set(cfg->server_tls_cert_file)) {
		struct place at = place_of(ctx, "server_tls_key_file");
		return fail_param(ctx, at.line ? at : place_of(ctx, "server_tls_cert_file"),
				  "server_tls_key_file and server_tls_cert_file must be set together");
	}
	return true;
}

static bool validate_listen(struct parse_ctx *ctx)
{
	const struct tb_config *cfg = ctx->cfg;
	if (!config_str_set(cfg->listen_addr) && !config_str_set(cfg->unix_socket_dir))
		return fail_param(ctx, place_of(ctx, "listen_addr"),
				  "nothing to listen on: listen_addr "
				  "and unix_socket_dir are both empty");
	return true;
}

/* ---- public ---- */

struct tb_config *config_new_default(void)
{
	struct tb_config *cfg = xcalloc(1, sizeof(*cfg));
	char err[256];
	for (size_t i = 0; i < param_count; i++)
		if (param_table[i].default_value)
			param_set(cfg, &param_table[i], param_table[i].default_value, err, sizeof(err));
	return cfg;
}

void config_free(struct tb_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < param_count; i++)
		param_clear(cfg, &param_table[i]);
	for (size_t i = 0; i < cfg->ndbs; i++)
		db_clear(&cfg->dbs[i]);
	for (size_t i = 0; i < cfg->nusers; i++)
		user_clear(&cfg->users[i]);
	for (size_t i = 0; i < cfg->npeers; i++)
		peer_clear(&cfg->peers[i]);
	strmap_clear(&cfg->db_index);
	strmap_clear(&cfg->user_index);
	free(cfg->dbs);
	free(cfg->users);
	free(cfg->peers);
	credentials_free(cfg);
	for (size_t i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	for (size_t i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg->path);
	free(cfg);
}

/* Logins look up their alias and [users] entry by name: index them once, so
 * the cost does not grow with the number of entries. The first entry of a
 * name wins, as the linear search it replaces did; of several "*" the last. */
static void build_index(struct tb_config *cfg)
{
	for (size_t i = 0; i < cfg->ndbs; i++) {
		if (!strmap_get(&cfg->db_index, cfg->dbs[i].name))
			strmap_put(&cfg->db_index, cfg->dbs[i].name, &cfg->dbs[i]);
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			cfg->db_fallback = &cfg->dbs[i];
	}
	for (size_t i = 0; i < cfg->nusers; i++)
		if (!strmap_get(&cfg->user_index, cfg->users[i].name))
			strmap_put(&cfg->user_index, cfg->users[i].name, &cfg->users[i]);
	cfg->indexed = true;
}

/* The config keeps the names of the files it was read from; entries point
 * at them for later messages. */
const char *config_intern_file(struct tb_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->nfiles; i++)
		if (strcmp(cfg->files[i], path) == 0)
			return cfg->files[i];
	cfg->files = xrealloc(cfg->files, (cfg->nfiles + 1) * sizeof(*cfg->files));
	cfg->files[cfg->nfiles] = xstrdup(path);
	return cfg->files[cfg->nfiles++];
}

static struct tb_config *parse_source(struct cfgsrc *src, const char *path, char *err, size_t errlen)
{
	struct parse_ctx ctx = {
		.cfg = config_new_default(),
		.defaults = config_new_default(),
		.src = src,
		.err = err,
		.errlen = errlen,
	};
	ctx.cfg->path = xstrdup(path);
	ctx.file = config_intern_file(ctx.cfg, path);
	ctx.param_place = xcalloc(param_count, sizeof(*ctx.param_place));

	int ret = ini_parse_stream(config_reader, &ctx, config_handler, &ctx);
	if (!ctx.failed && ret != 0)
		fail(&ctx, ret > 0 ? ctx.lineno : 0, "%s",
		     ret > 0 ? "syntax error" : "cannot parse (out of memory)");
	if (!ctx.failed && validate_auth(&ctx) && validate_tls(&ctx) && validate_tokens(&ctx))
		validate_listen(&ctx);
	if (!config_str_set(ctx.cfg->conffile)) {
		free(ctx.cfg->conffile);
		ctx.cfg->conffile = xstrdup(path); /* PgBouncer: the file given on the command line */
	}

	free(ctx.param_place);
	config_free(ctx.defaults);
	if (ctx.failed) {
		config_free(ctx.cfg);
		return NULL;
	}
	build_index(ctx.cfg);
	return ctx.cfg;
}

struct tb_config *config_parse_string(const char *text, const char *path_for_messages, char *err,
				      size_t errlen)
{
	struct cfgsrc *src = cfgsrc_new_text(text, strlen(text), path_for_messages);
	struct tb_config *cfg = parse_source(src, path_for_messages, err, errlen);
	cfgsrc_free(src);
	return cfg;
}

struct tb_config *config_load(const char *path, char *err, size_t errlen)
{
	struct cfgsrc *src = cfgsrc_new_file(path, CONFIG_MAX_FILE_SIZE, err, errlen);
	if (!src)
		return NULL;
	struct tb_config *cfg = parse_source(src, path, err, errlen);
	cfgsrc_free(src); /* wipes the text: the file may hold passwords */
	return cfg;
}

/* ---- copying a config (SET builds a changed copy and applies it like a reload) ----
 * A pointer field of struct tb_config outside the parameter tables must be
 * given its own copy (or rebuilt) here. */

/* Shallow copy of an entry, then its own copies of the strings. */
static void dup_strings(void *dst, const void *src, const struct param_def *table, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (table[i].type != PARAM_STRING)
			continue;
		const char *from = *(char *const *)(const void *)((const char *)src + table[i].offset);
		*(char **)(void *)((char *)dst + table[i].offset) = xstrdup(from);
	}
}

static void clone_creds(struct tb_config *to, const struct tb_config *from)
{
	to->creds = xcalloc(from->ncreds ? from->ncreds : 1, sizeof(*to->creds));
	to->ncreds = from->ncreds;
	for (size_t i = 0; i < from->ncreds; i++) {
		const struct credential_cfg *c = &from->creds[i];
		struct credential_cfg *d = &to->creds[i];
		*d = *c;
		d->name = xstrdup(c->name);
		d->type = xstrdup(c->type);
		d->file = c->file ? config_intern_file(to, c->file) : NULL;
		d->kv = xcalloc(c->nkv ? c->nkv : 1, sizeof(*d->kv));
		for (size_t k = 0; k < c->nkv; k++) {
			d->kv[k] = c->kv[k];
			d->kv[k].key = xstrdup(c->kv[k].key);
			d->kv[k].value = xstrdup(c->kv[k].value);
		}
	}
}

struct tb_config *config_clone(const struct tb_config *from)
{
	struct tb_config *to = xcalloc(1, sizeof(*to));
	*to = *from;
	to->path = xstrdup(from->path);
	to->files = NULL;
	to->nfiles = 0;
	to->warnings = NULL;
	to->nwarnings = 0;
	dup_strings(to, from, param_table, param_count);
	to->dbs = xcalloc(from->ndbs ? from->ndbs : 1, sizeof(*to->dbs));
	for (size_t i = 0; i < from->ndbs; i++) {
		to->dbs[i] = from->dbs[i];
		to->dbs[i].name = xstrdup(from->dbs[i].name);
		to->dbs[i].file = from->dbs[i].file ? config_intern_file(to, from->dbs[i].file) : NULL;
		dup_strings(&to->dbs[i], &from->dbs[i], param_db_table, param_db_count);
	}
	to->users = xcalloc(from->nusers ? from->nusers : 1, sizeof(*to->users));
	for (size_t i = 0; i < from->nusers; i++) {
		to->users[i] = from->users[i];
		to->users[i].name = xstrdup(from->users[i].name);
		to->users[i].file = from->users[i].file ? config_intern_file(to, from->users[i].file) : NULL;
		dup_strings(&to->users[i], &from->users[i], param_user_table, param_user_count);
	}
	clone_creds(to, from);
	to->peers = xcalloc(from->npeers ? from->npeers : 1, sizeof(*to->peers));
	for (size_t i = 0; i < from->npeers; i++) {
		to->peers[i] = from->peers[i];
		to->peers[i].file = from->peers[i].file ? config_intern_file(to, from->peers[i].file) : NULL;
		dup_strings(&to->peers[i], &from->peers[i], param_peer_table, param_peer_count);
	}
	/* The indexes point into the entries: the copy gets its own. */
	memset(&to->db_index, 0, sizeof(to->db_index));
	memset(&to->user_index, 0, sizeof(to->user_index));
	to->db_fallback = NULL;
	to->indexed = false;
	if (from->indexed)
		build_index(to);
	return to;
}

bool config_validate(struct tb_config *cfg, char *err, size_t errlen)
{
	struct parse_ctx ctx = { .cfg = cfg, .err = err, .errlen = errlen };
	ctx.param_place = xcalloc(param_count, sizeof(*ctx.param_place));
	bool ok = validate_auth(&ctx) && validate_tls(&ctx) && validate_tokens(&ctx) && validate_listen(&ctx);
	free(ctx.param_place);
	return ok;
}

const struct db_alias *config_find_db(const struct tb_config *cfg, const char *name)
{
	if (cfg->indexed) {
		const struct db_alias *a = strmap_get(&cfg->db_index, name);
		return a ? a : cfg->db_fallback;
	}
	const struct db_alias *fallback = NULL;
	for (size_t i = 0; i < cfg->ndbs; i++) {
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return &cfg->dbs[i];
		if (strcmp(cfg->dbs[i].name, "*") == 0)
			fallback = &cfg->dbs[i];
	}
	return fallback;
}

const struct user_cfg *config_find_user(const struct tb_config *cfg, const char *name)
{
	if (cfg->indexed)
		return strmap_get(&cfg->user_index, name);
	for (size_t i = 0; i < cfg->nusers; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	return NULL;
}

int config_keep_restart_only(struct tb_config *newcfg, const struct tb_config *oldcfg,
			     void (*warn)(const char *param, void *arg), void *arg)
{
	int kept = 0;
	for (size_t i = 0; i < param_count; i++) {
		const struct param_def *p = &param_table[i];
		if (p->reloadable || param_equal(newcfg, oldcfg, p))
			continue;
		param_copy(newcfg, oldcfg, p);
		if (warn)
			warn(p->name, arg);
		kept++;
	}
	return kept;
}

bool config_db_equal(const struct db_alias *a, const struct db_alias *b)
{
	if (strcmp(a->name, b->name) != 0)
		return false;
	for (size_t i = 0; i < param_db_count; i++)
		if (!param_equal(a, b, &param_db_table[i]))
			return false;
	return true;
}
