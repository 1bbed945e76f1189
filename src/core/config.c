/* Reading a configuration file into a fresh struct tb_config.
 *
 * libinih does the INI syntax, but Debian's build has a fixed 200-byte line
 * buffer (it hands the handler a truncated value for a longer line) and gives
 * the handler no line number. So the file is read into memory and fed to
 * ini_parse_stream() by our own reader, which counts lines, refuses long ones,
 * and checks each line's shape before inih sees it; inih calls the handler
 * right after the reader returns a line, so the reader's count is the
 * handler's line number. */
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

#include "core/connstr.h"
#include "core/params.h"
#include "core/util.h"

struct parse_ctx;

/* One kind of section. Entries of a multiline section may continue on
 * indented lines, so they are handed to on_key only once complete. A future
 * [credential.NAME] is one more row: prefix "credential.", with on_enter
 * creating the credential that its keys then fill. */
struct section_def {
	const char *name;
	bool prefix;        /* name is a prefix; the rest is passed to on_enter */
	bool multiline;
	bool (*on_enter)(struct parse_ctx *ctx, const char *suffix);
	bool (*on_key)(struct parse_ctx *ctx, const char *name, const char *value, int line);
};

struct parse_ctx {
	struct tb_config *cfg;
	const char *path;
	const char *text;   /* whole file */
	size_t len, pos;
	int lineno;         /* line last returned by the reader */
	bool indented;      /* that line starts with whitespace */
	const struct section_def *section;
	char section_name[64];
	bool have_prev_key; /* a key since the section header: inih's condition for continuations */
	const struct section_def *pend_section; /* entry waiting for continuation lines */
	char *pend_name;
	char *pend_text;    /* may hold a password: wiped */
	int pend_line;
	int *param_line;    /* per [tokenbouncer] parameter: line that set it, 0 = default */
	bool failed;
	char *err;
	size_t errlen;
};

static bool fail(struct parse_ctx *ctx, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(struct parse_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (ctx->failed)
		return false;
	ctx->failed = true;
	if (line > 0)
		n = snprintf(ctx->err, ctx->errlen, "%s:%d: ", ctx->path, line);
	else
		n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->path);
	if (n < 0 || (size_t)n >= ctx->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

/* ---- [databases] and [users] entries ---- */

/* State while the key=value pairs of one entry are stored. */
struct entry_ctx {
	void *base;
	const struct param_def *table;
	size_t count;
	uint64_t seen;      /* bit per table row (tables have fewer than 64 rows) */
	bool prev_secret;   /* previous key was a secret: do not echo what follows */
};

/* PgBouncer [databases] keys we do not accept, named as such in the error. */
static const char *const pgbouncer_only_db_keys[] = {
	"auth_user", "auth_query", "auth_dbname", "max_db_client_connections", "load_balance_hosts",
};

static bool unknown_key(const struct entry_ctx *ec, const char *key, char *err, size_t errlen)
{
	bool pgb = false;
	for (size_t i = 0; ec->table == param_db_table &&
	     i < sizeof(pgbouncer_only_db_keys) / sizeof(pgbouncer_only_db_keys[0]); i++)
		pgb = pgb || str_ieq(pgbouncer_only_db_keys[i], key);
	if (ec->prev_secret)
		snprintf(err, errlen, "unexpected key after the value of \"password\" "
			"(quote a value that contains spaces: password='...')");
	else
		snprintf(err, errlen, "unknown key \"%s\"%s", key,
			pgb ? " (a PgBouncer key that tokenbouncer does not support)" : "");
	return false;
}

static bool entry_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct entry_ctx *ec = arg;
	const struct param_def *p = param_find_in(ec->table, ec->count, key);
	if (!p)
		return unknown_key(ec, key, err, errlen);
	uint64_t bit = (uint64_t)1 << (p - ec->table);
	if (ec->seen & bit) {
		snprintf(err, errlen, "key \"%s\" is given twice", p->name);
		return false;
	}
	ec->seen |= bit;
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

static bool entry_parse(struct parse_ctx *ctx, void *base, const struct param_def *table,
	size_t count, const char *what, const char *name, const char *text, int line)
{
	char perr[512];
	struct entry_ctx ec = { .base = base, .table = table, .count = count };
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

static bool db_check(struct parse_ctx *ctx, const struct db_alias *db)
{
	if (db->auth == UPSTREAM_AUTH_PASSWORD) {
		if (db->credential)
			return fail(ctx, db->line, "[databases] entry \"%s\": credential=%s needs a token "
				"method (auth=entra, aws-rds or aws-dsql)", db->name, db->credential);
		if (db->lifetime_from_token || db->user_from_token)
			return fail(ctx, db->line, "[databases] entry \"%s\": %s needs a token method in "
				"auth=", db->name, db->user_from_token ? "user_from_token" : "server_lifetime=token");
		return true;
	}
	if (db->auth == UPSTREAM_AUTH_GCP)
		return fail(ctx, db->line, "[databases] entry \"%s\": auth=gcp is not implemented yet",
			db->name);
	if (!db->credential)
		return fail(ctx, db->line, "[databases] entry \"%s\": auth=%s needs credential=NAME "
			"naming a [credential.NAME] section", db->name, upstream_auth_name(db->auth));
	if (db->password)
		return fail(ctx, db->line, "[databases] entry \"%s\": password= cannot be combined "
			"with auth=%s", db->name, upstream_auth_name(db->auth));
	if (db->user_from_token && (db->auth != UPSTREAM_AUTH_ENTRA || db->user))
		return fail(ctx, db->line, "[databases] entry \"%s\": user_from_token needs auth=entra "
			"and no user=", db->name);
	return true;
}

const char *upstream_auth_name(enum upstream_auth a)
{
	switch (a) {
	case UPSTREAM_AUTH_PASSWORD: return "password";
	case UPSTREAM_AUTH_ENTRA: return "entra";
	case UPSTREAM_AUTH_AWS_RDS: return "aws-rds";
	case UPSTREAM_AUTH_AWS_DSQL: return "aws-dsql";
	case UPSTREAM_AUTH_GCP: return "gcp";
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

static bool db_add(struct parse_ctx *ctx, const char *name, const char *value, int line)
{
	struct tb_config *cfg = ctx->cfg;
	struct db_alias db = { 0 };

	if (!*name)
		return fail(ctx, line, "empty database alias");
	if (strcmp(name, "pgbouncer") == 0 || strcmp(name, "tokenbouncer") == 0)
		return fail(ctx, line, "database alias \"%s\" is reserved for the admin console", name);
	for (size_t i = 0; i < cfg->ndbs; i++)
		if (strcmp(cfg->dbs[i].name, name) == 0)
			return fail(ctx, line, "duplicate database alias \"%s\" (first defined on line %d)",
				name, cfg->dbs[i].line);
	db.name = xstrdup(name);
	db.line = line;
	if (!entry_parse(ctx, &db, param_db_table, param_db_count, "databases", name, value, line) ||
	    !db_check(ctx, &db)) {
		db_clear(&db);
		return false;
	}
	cfg->dbs = xrealloc(cfg->dbs, (cfg->ndbs + 1) * sizeof(*cfg->dbs));
	cfg->dbs[cfg->ndbs++] = db;
	return true;
}

static bool user_add(struct parse_ctx *ctx, const char *name, const char *value, int line)
{
	struct tb_config *cfg = ctx->cfg;
	struct user_cfg u = { 0 };

	if (!*name)
		return fail(ctx, line, "empty user name");
	for (size_t i = 0; i < cfg->nusers; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return fail(ctx, line, "duplicate user \"%s\" (first defined on line %d)",
				name, cfg->users[i].line);
	u.name = xstrdup(name);
	u.line = line;
	if (!entry_parse(ctx, &u, param_user_table, param_user_count, "users", name, value, line)) {
		entry_clear(&u, param_user_table, param_user_count);
		free(u.name);
		return false;
	}
	cfg->users = xrealloc(cfg->users, (cfg->nusers + 1) * sizeof(*cfg->users));
	cfg->users[cfg->nusers++] = u;
	return true;
}

static bool databases_on_key(struct parse_ctx *ctx, const char *quoted, const char *value, int line)
{
	char *name = xmalloc(strlen(quoted) + 1);
	bool ok = unquote_name(ctx, quoted, name, line) && db_add(ctx, name, value, line);
	free(name);
	return ok;
}

static bool users_on_key(struct parse_ctx *ctx, const char *quoted, const char *value, int line)
{
	char *name = xmalloc(strlen(quoted) + 1);
	bool ok = unquote_name(ctx, quoted, name, line) && user_add(ctx, name, value, line);
	free(name);
	return ok;
}

/* ---- [tokenbouncer] ---- */

static bool global_on_key(struct parse_ctx *ctx, const char *name, const char *value, int line)
{
	char perr[512];
	const struct param_def *p = param_find(name);
	if (!p) {
		if (param_is_pgbouncer_only(name))
			return fail(ctx, line, "unknown parameter \"%s\" in [%s] (a PgBouncer parameter "
				"that tokenbouncer does not support)", name, ctx->section_name);
		return fail(ctx, line, "unknown parameter \"%s\" in [%s]", name, ctx->section_name);
	}
	size_t idx = (size_t)(p - param_table);
	if (ctx->param_line[idx])
		return fail(ctx, line, "duplicate key \"%s\" in [%s] (first set on line %d)",
			p->name, ctx->section_name, ctx->param_line[idx]);
	if (!param_set(ctx->cfg, p, value, perr, sizeof(perr)))
		return fail(ctx, line, "%s", perr);
	ctx->param_line[idx] = line;
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
			return fail(ctx, ctx->lineno, "duplicate section [credential.%s] (first on line %d)",
				suffix, cfg->creds[i].line);
	cfg->creds = xrealloc(cfg->creds, (cfg->ncreds + 1) * sizeof(*cfg->creds));
	struct credential_cfg *c = &cfg->creds[cfg->ncreds++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(suffix);
	c->line = ctx->lineno;
	return true;
}

static bool credential_on_key(struct parse_ctx *ctx, const char *name, const char *value, int line)
{
	struct credential_cfg *c = &ctx->cfg->creds[ctx->cfg->ncreds - 1];
	for (size_t i = 0; i < c->nkv; i++)
		if (str_ieq(c->kv[i].key, name))
			return fail(ctx, line, "duplicate key \"%s\" in [credential.%s] (first set on line %d)",
				name, c->name, c->kv[i].line);
	c->kv = xrealloc(c->kv, (c->nkv + 1) * sizeof(*c->kv));
	c->kv[c->nkv].key = xstrdup(name);
	c->kv[c->nkv].value = xstrdup(value);
	c->kv[c->nkv].line = line;
	c->nkv++;
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
			return fail(ctx, cfg->creds[i].line, "[credential.%s] has no type", cfg->creds[i].name);
	for (size_t i = 0; i < cfg->ndbs; i++) {
		const struct db_alias *db = &cfg->dbs[i];
		if (db->auth == UPSTREAM_AUTH_PASSWORD)
			continue;
		if (!config_find_credential(cfg, db->credential))
			return fail(ctx, db->line, "[databases] entry \"%s\": no section [credential.%s]",
				db->name, db->credential);
		/* DSQL aliases default to verify-full, whatever server_tls_sslmode says. */
		int mode = db->sslmode >= 0 ? db->sslmode
			   : db->auth == UPSTREAM_AUTH_AWS_DSQL ? TLS_MODE_VERIFY_FULL
			   : (int)cfg->server_tls_sslmode;
		if (mode < TLS_MODE_REQUIRE)
			return fail(ctx, db->line, "[databases] entry \"%s\": auth=%s sends a token as the "
				"password, which needs TLS: set sslmode=require (or verify-ca, verify-full) on the "
				"alias or server_tls_sslmode", db->name, upstream_auth_name(db->auth));
		if (db->host && db->host[0] == '/')
			return fail(ctx, db->line, "[databases] entry \"%s\": auth=%s needs a TCP host (a "
				"Unix socket cannot carry TLS)", db->name, upstream_auth_name(db->auth));
	}
	return true;
}

static const struct section_def sections[] = {
	{ .name = "credential.", .prefix = true, .on_enter = credential_enter, .on_key = credential_on_key },
	{ .name = "tokenbouncer", .on_key = global_on_key },
	{ .name = "pgbouncer", .on_key = global_on_key },
	{ .name = "databases", .multiline = true, .on_key = databases_on_key },
	{ .name = "users", .multiline = true, .on_key = users_on_key },
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

/* ---- entries spanning lines ---- */

static void pending_drop(struct parse_ctx *ctx)
{
	free(ctx->pend_name);
	secret_free(ctx->pend_text);
	ctx->pend_name = ctx->pend_text = NULL;
	ctx->pend_section = NULL;
}

/* The entry is complete: a new key, section or the end of the file follows. */
static bool pending_flush(struct parse_ctx *ctx)
{
	if (!ctx->pend_section)
		return true;
	bool ok = ctx->pend_section->on_key(ctx, ctx->pend_name, ctx->pend_text, ctx->pend_line);
	pending_drop(ctx);
	return ok;
}

static bool on_key_line(struct parse_ctx *ctx, const char *name, const char *value)
{
	if (!ctx->section)
		return fail(ctx, ctx->lineno, "\"%s\" is outside any section (start the file with "
			"[tokenbouncer])", name);
	if (!pending_flush(ctx))
		return false;
	ctx->have_prev_key = *name != '\0';
	if (!ctx->section->multiline)
		return ctx->section->on_key(ctx, name, value, ctx->lineno);
	ctx->pend_section = ctx->section;
	ctx->pend_name = xstrdup(name);
	ctx->pend_text = xstrdup(value);
	ctx->pend_line = ctx->lineno;
	return true;
}

static bool on_continuation(struct parse_ctx *ctx, const char *value)
{
	if (!ctx->pend_section)
		return fail(ctx, ctx->lineno, "unexpected indented line (only [databases] and [users] "
			"entries may continue on indented lines)");
	char *joined = xasprintf("%s %s", ctx->pend_text, value);
	secret_free(ctx->pend_text);
	ctx->pend_text = joined;
	return true;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	if (ctx->failed)
		return 0;
	/* inih passes a continuation with the previous key's name; the reader saw
	 * which kind of line this is. */
	bool ok = ctx->indented && ctx->have_prev_key ? on_continuation(ctx, value)
		: on_key_line(ctx, name, value);
	return ok ? 1 : 0;
}

/* ---- the reader: one line at a time, checked before inih parses it ---- */

static const char *skip_space(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/* inih's rule: ';' starts a comment where it follows whitespace. */
static const char *find_or_comment(const char *s, const char *chars)
{
	bool was_space = false;
	for (; *s; s++) {
		if (strchr(chars, *s) || (was_space && *s == ';'))
			return s;
		was_space = isspace((unsigned char)*s) != 0;
	}
	return s;
}

static bool on_section_line(struct parse_ctx *ctx, const char *s)
{
	const char *end = find_or_comment(s + 1, "]");
	if (*end != ']')
		return fail(ctx, ctx->lineno, "missing \"]\" in section header");
	const char *rest = skip_space(end + 1);
	if (*rest && *rest != ';' && *rest != '#')
		return fail(ctx, ctx->lineno, "unexpected text after section header");
	const char *start = skip_space(s + 1);
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	char name[64];
	if ((size_t)(end - start) >= sizeof(name))
		return fail(ctx, ctx->lineno, "section name \"%.*s\" is too long", (int)(end - start), start);
	memcpy(name, start, (size_t)(end - start));
	name[end - start] = '\0';

	const char *suffix;
	const struct section_def *sec = section_find(name, &suffix);
	if (!sec)
		return fail(ctx, ctx->lineno, "unknown section [%s] (expected [tokenbouncer], "
			"[databases], [users] or [credential.NAME])", name);
	if (!pending_flush(ctx))
		return false;
	ctx->section = sec;
	memcpy(ctx->section_name, name, sizeof(name));
	ctx->have_prev_key = false;
	return !sec->on_enter || sec->on_enter(ctx, suffix);
}

/* Mirror inih's view of the line: comment, continuation, section or key. */
static bool check_line(struct parse_ctx *ctx, const char *line)
{
	const char *s = line;
	if (ctx->lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
	    (unsigned char)s[2] == 0xBF)
		s += 3;
	ctx->indented = isspace((unsigned char)*s) != 0;
	s = skip_space(s);
	if (*s == '\0' || *s == ';' || *s == '#')
		return true;
	if (ctx->indented && ctx->have_prev_key)
		return true;
	if (*s == '[')
		return on_section_line(ctx, s);
	if (strncmp(s, "%include", 8) == 0)
		return fail(ctx, ctx->lineno, "%%include is not supported yet");
	const char *sep = find_or_comment(s, "=:");
	if (*sep != '=' && *sep != ':')
		return fail(ctx, ctx->lineno, "syntax error: expected \"name = value\", a [section] "
			"header or a comment");
	return true;
}

static char *config_reader(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	if (ctx->failed || ctx->pos >= ctx->len)
		return NULL;
	const char *line = ctx->text + ctx->pos;
	size_t left = ctx->len - ctx->pos;
	const char *nl = memchr(line, '\n', left);
	size_t n = nl ? (size_t)(nl - line) : left;
	ctx->pos += nl ? n + 1 : n;
	ctx->lineno++;
	if (n > 0 && line[n - 1] == '\r')
		n--;

	/* inih needs room for the newline and the terminator. */
	size_t limit = num - 2 < PARAM_MAX_LINE ? (size_t)(num > 2 ? num - 2 : 0) : PARAM_MAX_LINE;
	if (n > limit) {
		fail(ctx, ctx->lineno, "line too long (%zu bytes; lines are limited to %zu bytes, "
			"continue a [databases] entry on indented lines)", n, limit);
		return NULL;
	}
	if (memchr(line, '\0', n)) {
		fail(ctx, ctx->lineno, "line contains a NUL byte");
		return NULL;
	}
	memcpy(str, line, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return check_line(ctx, str) ? str : NULL;
}

/* ---- checks that span parameters ---- */

static int line_of(const struct parse_ctx *ctx, const char *name)
{
	const struct param_def *p = param_find(name);
	return p ? ctx->param_line[p - param_table] : 0;
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
	int line = line_of(ctx, "auth_type");
	const char *dflt = line ? "" : " (the default)";

	fmt_param(cfg, "auth_type", v, sizeof(v));
	if (cfg->auth_type == AUTH_TYPE_HBA && !config_str_set(cfg->auth_hba_file))
		return fail(ctx, line, "auth_type = hba requires auth_hba_file");
	if (cfg->auth_type != AUTH_TYPE_TRUST && !config_str_set(cfg->auth_file))
		return fail(ctx, line, "auth_type = %s%s requires auth_file", v, dflt);
	return true;
}

static bool validate_tls(struct parse_ctx *ctx)
{
	const struct tb_config *cfg = ctx->cfg;
	char v[64];
	int cline = line_of(ctx, "client_tls_sslmode"), sline = line_of(ctx, "server_tls_sslmode");

	fmt_param(cfg, "client_tls_sslmode", v, sizeof(v));
	if (cfg->client_tls_sslmode != TLS_MODE_DISABLE &&
	    (!config_str_set(cfg->client_tls_key_file) || !config_str_set(cfg->client_tls_cert_file)))
		return fail(ctx, cline, "client_tls_sslmode = %s requires client_tls_key_file and "
			"client_tls_cert_file", v);
	if (tls_verifies(cfg->client_tls_sslmode) && !config_str_set(cfg->client_tls_ca_file))
		return fail(ctx, cline, "client_tls_sslmode = %s requires client_tls_ca_file", v);
	fmt_param(cfg, "server_tls_sslmode", v, sizeof(v));
	if (tls_verifies(cfg->server_tls_sslmode) && !config_str_set(cfg->server_tls_ca_file))
		return fail(ctx, sline, "server_tls_sslmode = %s requires server_tls_ca_file", v);
	if (config_str_set(cfg->server_tls_key_file) != config_str_set(cfg->server_tls_cert_file)) {
		int line = line_of(ctx, "server_tls_key_file");
		return fail(ctx, line ? line : line_of(ctx, "server_tls_cert_file"),
			"server_tls_key_file and server_tls_cert_file must be set together");
	}
	return true;
}

static bool validate_listen(struct parse_ctx *ctx)
{
	const struct tb_config *cfg = ctx->cfg;
	if (!config_str_set(cfg->listen_addr) && !config_str_set(cfg->unix_socket_dir))
		return fail(ctx, line_of(ctx, "listen_addr"), "nothing to listen on: listen_addr and "
			"unix_socket_dir are both empty");
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
	for (size_t i = 0; i < cfg->nusers; i++) {
		entry_clear(&cfg->users[i], param_user_table, param_user_count);
		free(cfg->users[i].name);
	}
	strmap_clear(&cfg->db_index);
	strmap_clear(&cfg->user_index);
	free(cfg->dbs);
	free(cfg->users);
	credentials_free(cfg);
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

static struct tb_config *parse_text(const char *text, size_t len, const char *path,
	char *err, size_t errlen)
{
	struct parse_ctx ctx = {
		.cfg = config_new_default(), .path = path, .text = text, .len = len,
		.err = err, .errlen = errlen,
	};
	ctx.cfg->path = xstrdup(path);
	ctx.param_line = xcalloc(param_count, sizeof(int));

	int ret = ini_parse_stream(config_reader, &ctx, config_handler, &ctx);
	if (!ctx.failed)
		pending_flush(&ctx);
	if (!ctx.failed && ret != 0)
		fail(&ctx, ret > 0 ? ret : 0, "%s", ret > 0 ? "syntax error" : "cannot parse (out of memory)");
	if (!ctx.failed && validate_auth(&ctx) && validate_tls(&ctx) && validate_tokens(&ctx))
		validate_listen(&ctx);

	pending_drop(&ctx);
	free(ctx.param_line);
	if (ctx.failed) {
		config_free(ctx.cfg);
		return NULL;
	}
	build_index(ctx.cfg);
	return ctx.cfg;
}

struct tb_config *config_parse_string(const char *text, const char *path_for_messages,
	char *err, size_t errlen)
{
	return parse_text(text, strlen(text), path_for_messages, err, errlen);
}

/* Whole file into memory, NUL-terminated. One byte more than the cap is read,
 * to tell a file of exactly the cap from a larger one. */
static char *read_file(const char *path, size_t *lenp, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 8192, len = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			size_t bigger_cap = cap * 2 > CONFIG_MAX_FILE_SIZE + 1 ? CONFIG_MAX_FILE_SIZE + 1 : cap * 2;
			if (bigger_cap == cap)
				break;
			char *bigger = xmalloc(bigger_cap + 1);
			memcpy(bigger, buf, len);
			secret_wipe(buf, len);
			free(buf);
			buf = bigger;
			cap = bigger_cap;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	int read_errno = ferror(f) ? errno : 0;
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad || len > CONFIG_MAX_FILE_SIZE) {
		if (bad)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(read_errno));
		else
			snprintf(err, errlen, "%s: file is larger than %u MiB", path,
				CONFIG_MAX_FILE_SIZE / (1024 * 1024));
		secret_wipe(buf, len);
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

struct tb_config *config_load(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *text = read_file(path, &len, err, errlen);
	if (!text)
		return NULL;
	struct tb_config *cfg = parse_text(text, len, path, err, errlen);
	/* The file may hold passwords. */
	secret_wipe(text, len);
	free(text);
	return cfg;
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
