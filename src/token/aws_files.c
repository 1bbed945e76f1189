/* AWS shared config/credentials files: a line-based INI reader with no line
 * length limit, path expansion, shell-word splitting and botocore's rules for
 * what a profile means. */
#include "token/aws_files.h"
#include "core/dynbuf.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest role chain we follow (botocore has no limit but detects loops). */
#define MAX_CHAIN 32
#define MIN_ROLE_DURATION 900
#define MAX_ROLE_DURATION 43200

/* ---------- storage ---------- */

struct ini_entry {
	char *key;
	char *value;
	bool nested; /* "key =" followed by an indented block */
};

struct ini_section {
	char *profile; /* profile name, or NULL for a non-profile section */
	struct ini_entry *entries;
	size_t n, cap;
};

struct ini_file {
	struct ini_section *sections;
	size_t n, cap;
};

struct aws_files {
	struct ini_file file[2]; /* indexed by enum aws_file_kind */
};

static void ini_clear(struct ini_file *ini)
{
	for (size_t i = 0; i < ini->n; i++) {
		struct ini_section *s = &ini->sections[i];
		for (size_t j = 0; j < s->n; j++) {
			free(s->entries[j].key);
			secret_free(s->entries[j].value);
		}
		free(s->entries);
		free(s->profile);
	}
	free(ini->sections);
	memset(ini, 0, sizeof(*ini));
}

struct aws_files *aws_files_new(void)
{
	return xcalloc(1, sizeof(struct aws_files));
}

void aws_files_free(struct aws_files *f)
{
	if (!f)
		return;
	ini_clear(&f->file[AWS_FILE_CONFIG]);
	ini_clear(&f->file[AWS_FILE_CREDENTIALS]);
	free(f);
}

static struct ini_section *ini_add_section(struct ini_file *ini, char *profile)
{
	if (ini->n == ini->cap) {
		ini->cap = ini->cap ? ini->cap * 2 : 8;
		ini->sections = xrealloc(ini->sections, ini->cap * sizeof(*ini->sections));
	}
	struct ini_section *s = &ini->sections[ini->n++];
	memset(s, 0, sizeof(*s));
	s->profile = profile;
	return s;
}

static struct ini_entry *ini_add_entry(struct ini_section *s, char *key, char *value)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		/* Moving the array moves only pointers; values stay where they are. */
		s->entries = xrealloc(s->entries, s->cap * sizeof(*s->entries));
	}
	struct ini_entry *e = &s->entries[s->n++];
	e->key = key;
	e->value = value;
	e->nested = false;
	return e;
}

/* ---------- small string helpers ---------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim [*s, *s+*n) in place (pointer and length). */
static void trim(const char **s, size_t *n)
{
	while (*n && is_space(**s))
		(*s)++, (*n)--;
	while (*n && is_space((*s)[*n - 1]))
		(*n)--;
}

/* Appends "\n" + add to *value (wiping the old copy). */
static void value_append(char **value, const char *add, size_t n)
{
	size_t old = strlen(*value);
	char *p = xmalloc(old + 1 + n + 1);

	memcpy(p, *value, old);
	p[old] = '\n';
	memcpy(p + old + 1, add, n);
	p[old + 1 + n] = '\0';
	secret_free(*value);
	*value = p;
}

/* ---------- shell words ---------- */

struct words {
	char **v;
	size_t n, cap;
};

static void words_push(struct words *w, char *s)
{
	if (w->n + 2 > w->cap) {
		w->cap = w->cap ? w->cap * 2 : 8;
		w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
	}
	w->v[w->n++] = s;
	w->v[w->n] = NULL;
}

void aws_files_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		secret_free(*p);
	free(argv);
}

char **aws_files_split_command(const char *cmd, size_t *argc, char *err, size_t errlen)
{
	struct words w = { 0 };
	size_t len = cmd ? strlen(cmd) : 0;
	char *word = xmalloc(len + 1); /* a word is never longer than the input */
	size_t wn = 0;
	bool in_word = false;
	const char *p = cmd ? cmd : "";

	if (argc)
		*argc = 0;
	while (*p) {
		char c = *p;
		if (c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				words_push(&w, xstrndup(word, wn));
				wn = 0;
				in_word = false;
			}
			p++;
		} else if (c == '\\') {
			if (p[1] == '\0') {
				err_set(err, errlen, "credential_process ends with a lone backslash");
				goto fail;
			}
			if (p[1] != '\n') {
				word[wn++] = p[1];
				in_word = true;
			}
			p += 2;
		} else if (c == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end) {
				err_set(err, errlen, "credential_process has an unterminated ' quote");
				goto fail;
			}
			memcpy(word + wn, p + 1, (size_t)(end - p - 1));
			wn += (size_t)(end - p - 1);
			in_word = true;
			p = end + 1;
		} else if (c == '"') {
			p++;
			for (;;) {
				if (*p == '\0') {
					err_set(err, errlen,
						"credential_process has an unterminated \" quote");
					goto fail;
				}
				if (*p == '"')
					break;
				if (*p == '\\' && p[1] && strchr("$`\"\\\n", p[1])) {
					if (p[1] != '\n')
						word[wn++] = p[1];
					p += 2;
					continue;
				}
				word[wn++] = *p++;
			}
			p++;
			in_word = true;
		} else if (strchr("|&;<>()", c)) {
			err_set(err, errlen,
				"credential_process contains an unquoted '%c': it is run without a "
				"shell, so pipes, redirections and command lists do not work",
				c);
			goto fail;
		} else {
			word[wn++] = c;
			in_word = true;
			p++;
		}
	}
	if (in_word)
		words_push(&w, xstrndup(word, wn));
	secret_wipe(word, len + 1);
	free(word);
	if (w.n == 0) {
		err_set(err, errlen, "credential_process is empty");
		free(w.v);
		return NULL;
	}
	if (argc)
		*argc = w.n;
	return w.v;
fail:
	secret_wipe(word, len + 1);
	free(word);
	if (w.v)
		aws_files_argv_free(w.v);
	return NULL;
}

/* ---------- INI parsing ---------- */

/* Profile name of a section, or NULL if the section is not a profile. */
static char *section_profile(enum aws_file_kind kind, const char *name)
{
	const char *rest;
	char **words;
	size_t n = 0;
	char *profile = NULL;

	if (kind == AWS_FILE_CREDENTIALS)
		return xstrdup(name);
	if (strcmp(name, "default") == 0)
		return xstrdup(name);
	if (strncmp(name, "profile", 7) != 0 || !is_blank(name[7]))
		return NULL;
	rest = name + 7;
	while (is_blank(*rest))
		rest++;
	/* botocore splits "profile <name>" with shlex: quotes are allowed, and
	 * exactly one word must follow. */
	if (!strpbrk(rest, "'\"\\"))
		return strpbrk(rest, " \t") ? NULL : xstrdup(rest);
	words = aws_files_split_command(name, &n, NULL, 0);
	if (words && n == 2 && *words[1])
		profile = xstrdup(words[1]);
	aws_files_argv_free(words);
	return profile;
}

static void lower_in_place(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool ini_parse(struct ini_file *ini, enum aws_file_kind kind, const char *text, size_t len,
		      const char *name, char *err, size_t errlen)
{
	struct ini_section *sect = NULL;
	struct ini_entry *cur = NULL; /* last key, for continuation lines */
	size_t cur_indent = 0, lineno = 0, pos = 0;

	if (!name)
		name = kind == AWS_FILE_CONFIG ? "config file" : "credentials file";
	if (memchr(text, '\0', len)) {
		err_set(err, errlen, "%s: contains a NUL byte", name);
		return false;
	}
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		size_t indent = 0;

		pos += n + (nl ? 1 : 0);
		lineno++;
		while (indent < n && is_blank(line[indent]))
			indent++;
		const char *s = line + indent;
		size_t sn = n - indent;
		trim(&s, &sn);
		if (sn == 0 || s[0] == '#' || s[0] == ';')
			continue;
		if (cur && indent > cur_indent) {
			/* Continuation of the previous value, or a nested block. */
			if (cur->nested || !*cur->value)
				cur->nested = true;
			else
				value_append(&cur->value, s, sn);
			continue;
		}
		cur = NULL;
		if (s[0] == '[') {
			const char *close = NULL;
			for (size_t i = sn; i > 1; i--) {
				if (s[i - 1] == ']') {
					close = s + i - 1;
					break;
				}
			}
			if (!close) {
				err_set(err, errlen, "%s: line %zu: section header without \"]\"", name,
					lineno);
				return false;
			}
			const char *h = s + 1;
			size_t hn = (size_t)(close - h);
			trim(&h, &hn);
			if (hn == 0) {
				err_set(err, errlen, "%s: line %zu: empty section name", name, lineno);
				return false;
			}
			char *hdr = xstrndup(h, hn);
			sect = ini_add_section(ini, section_profile(kind, hdr));
			free(hdr);
			continue;
		}
		if (!sect) {
			err_set(err, errlen, "%s: line %zu: setting outside of any [section]", name, lineno);
			return false;
		}
		size_t d = 0;
		while (d < sn && s[d] != '=' && s[d] != ':')
			d++;
		if (d == sn) {
			err_set(err, errlen, "%s: line %zu: expected \"key = value\"", name, lineno);
			return false;
		}
		const char *k = s, *v = s + d + 1;
		size_t kn = d, vn = sn - d - 1;
		trim(&k, &kn);
		trim(&v, &vn);
		if (kn == 0) {
			err_set(err, errlen, "%s: line %zu: missing key before \"%c\"", name, lineno, s[d]);
			return false;
		}
		char *key = xstrndup(k, kn);
		lower_in_place(key);
		cur = ini_add_entry(sect, key, xstrndup(v, vn));
		cur_indent = indent;
	}
	return true;
}

bool aws_files_parse(struct aws_files *f, enum aws_file_kind kind, const char *text, size_t len,
		     const char *name, char *err, size_t errlen)
{
	struct ini_file ini = { 0 };

	if (!f || (kind != AWS_FILE_CONFIG && kind != AWS_FILE_CREDENTIALS) || (!text && len)) {
		err_set(err, errlen, "invalid arguments");
		return false;
	}
	if (!ini_parse(&ini, kind, text ? text : "", len, name, err, errlen)) {
		ini_clear(&ini);
		return false;
	}
	ini_clear(&f->file[kind]);
	f->file[kind] = ini;
	return true;
}

/* Whole file into a wiped-on-free buffer; no stdio (its buffers are not wiped). */
static char *read_all(int fd, const char *path, size_t *len, char *err, size_t errlen)
{
	struct dynbuf b;
	dynbuf_init(&b, AWS_FILES_MAX_SIZE, true);
	if (!dynbuf_read_fd(&b, fd)) {
		if (b.failed)
			err_set(err, errlen, "%s: file too large (limit %d bytes)", path, AWS_FILES_MAX_SIZE);
		else
			err_set(err, errlen, "%s: %s", path, strerror(errno));
		dynbuf_free(&b);
		return NULL;
	}
	if (!dynbuf_reserve(&b, 0)) { /* an empty file still gets its "" */
		dynbuf_free(&b);
		return NULL;
	}
	return dynbuf_take(&b, len);
}

bool aws_files_load(struct aws_files *f, enum aws_file_kind kind, const char *path, bool *found, char *err,
		    size_t errlen)
{
	struct stat st;
	size_t len = 0;
	char *text;
	bool ok;
	int fd;

	if (found)
		*found = false;
	if (!f || !path || !*path) {
		err_set(err, errlen, "no file name given");
		return false;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			ini_clear(&f->file[kind]);
			return true;
		}
		err_set(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err_set(err, errlen, "%s: not a regular file", path);
		close(fd);
		return false;
	}
	text = read_all(fd, path, &len, err, errlen);
	close(fd);
	if (!text)
		return false;
	ok = aws_files_parse(f, kind, text, len, path, err, errlen);
	secret_wipe(text, len);
	free(text);
	if (ok && found)
		*found = true;
	return ok;
}

/* ---------- lookups ---------- */

/* The last value of key across the profile's sections (later wins); NULL if
 * absent. *present tells an empty value from an absent one. */
static const char *ini_lookup(const struct ini_file *ini, const char *profile, const char *key, bool *present)
{
	const char *v = NULL;

	*present = false;
	for (size_t i = 0; i < ini->n; i++) {
		const struct ini_section *s = &ini->sections[i];
		if (!s->profile || strcmp(s->profile, profile) != 0)
			continue;
		for (size_t j = 0; j < s->n; j++) {
			if (strcmp(s->entries[j].key, key) != 0)
				continue;
			*present = true;
			v = s->entries[j].nested ? NULL : s->entries[j].value;
		}
	}
	return v;
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

bool aws_files_has_profile(const struct aws_files *f, const char *profile)
{
	if (!f || !profile)
		return false;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < f->file[k].n; i++)
			if (f->file[k].sections[i].profile &&
			    strcmp(f->file[k].sections[i].profile, profile) == 0)
				return true;
	return false;
}

const char *aws_files_get_in(const struct aws_files *f, enum aws_file_kind kind, const char *profile,
			     const char *key)
{
	bool present;

	if (!f || !profile || !key || (kind != AWS_FILE_CONFIG && kind != AWS_FILE_CREDENTIALS))
		return NULL;
	return nonempty(ini_lookup(&f->file[kind], profile, key, &present));
}

const char *aws_files_get(const struct aws_files *f, const char *profile, const char *key)
{
	bool present;
	const char *v;

	if (!f || !profile || !key)
		return NULL;
	/* botocore: credentials-file keys update() the config profile, even when empty. */
	v = ini_lookup(&f->file[AWS_FILE_CREDENTIALS], profile, key, &present);
	if (present)
		return nonempty(v);
	return nonempty(ini_lookup(&f->file[AWS_FILE_CONFIG], profile, key, &present));
}

/* ---------- path expansion ---------- */

static const char *env_lookup(char *const *envp, const char *name, size_t n)
{
	if (!envp)
		return NULL;
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static bool is_word_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

char *aws_files_expand_path(const char *path, const char *home, char *const *envp)
{
	struct dynbuf b;
	const char *p;

	if (!path)
		return NULL;
	/* Variables first, then "~" (os.path.expandvars, then expanduser, as botocore). */
	dynbuf_init(&b, SIZE_MAX, false);
	for (p = path; *p;) {
		const char *name = NULL, *val;
		size_t nn = 0, used = 0;
		if (p[0] == '$' && p[1] == '{') {
			const char *close = strchr(p + 2, '}');
			if (close && close > p + 2) {
				name = p + 2;
				nn = (size_t)(close - name);
				used = nn + 3;
			}
		} else if (p[0] == '$' && is_word_char(p[1])) {
			name = p + 1;
			while (is_word_char(name[nn]))
				nn++;
			used = nn + 1;
		}
		val = name ? env_lookup(envp, name, nn) : NULL;
		bool ok = val ? dynbuf_addstr(&b, val) : dynbuf_add(&b, p, used ? used : 1);
		if (!ok) {
			dynbuf_free(&b);
			return NULL;
		}
		p += used ? used : 1;
	}
	if (!dynbuf_reserve(&b, 0)) {
		dynbuf_free(&b);
		return NULL;
	}
	char *out = dynbuf_take(&b, NULL);
	if (out[0] == '~' && (out[1] == '/' || out[1] == '\0')) {
		if (!home)
			home = env_lookup(envp, "HOME", 4);
		if (home) {
			char *full;
			/* "~/x" with home "/" gives "/x", not "//x". */
			size_t hn = strlen(home);
			while (hn > 1 && home[hn - 1] == '/')
				hn--;
			if (out[1] == '/' && hn == 1 && home[0] == '/')
				full = xstrdup(out + 1);
			else
				full = xasprintf("%.*s%s", (int)hn, home, out + 1);
			free(out);
			out = full;
		}
	}
	return out;
}

/* ---------- resolution ---------- */

struct resolve_ctx {
	const struct aws_files *f;
	const struct aws_files_env *env;
	struct aws_profile_plan *plan;
	const char *visited[MAX_CHAIN];
	size_t nvisited;
	char *err;
	size_t errlen;
};

void aws_profile_plan_clear(struct aws_profile_plan *p)
{
	if (!p)
		return;
	free(p->source_profile);
	aws_credentials_clear(&p->static_creds);
	free(p->web_identity_token_file);
	free(p->web_identity_role_arn);
	free(p->web_identity_session_name);
	secret_free(p->process_command);
	aws_files_argv_free(p->process_argv);
	for (size_t i = 0; i < p->nroles; i++) {
		free(p->roles[i].profile);
		free(p->roles[i].role_arn);
		free(p->roles[i].role_session_name);
		secret_free(p->roles[i].external_id);
	}
	free(p->roles);
	free(p->region);
	memset(p, 0, sizeof(*p));
}

static bool has_static(const struct aws_files *f, const char *profile)
{
	return aws_files_get(f, profile, "aws_access_key_id") ||
	       aws_files_get(f, profile, "aws_secret_access_key");
}

/* Static keys of one file's profile: OK, NONE (no access key) or ERROR (partial). */
static enum aws_resolve_result static_from(struct resolve_ctx *c, const char *profile, enum aws_file_kind kind)
{
	const char *fname = kind == AWS_FILE_CONFIG ? "config file" : "credentials file";
	const char *akid = aws_files_get_in(c->f, kind, profile, "aws_access_key_id");
	const char *secret = aws_files_get_in(c->f, kind, profile, "aws_secret_access_key");
	const char *token;

	if (!akid)
		return AWS_RESOLVE_NONE;
	if (!secret) {
		err_set(c->err, c->errlen,
			"profile \"%s\" in the %s has aws_access_key_id but no "
			"aws_secret_access_key",
			profile, fname);
		return AWS_RESOLVE_ERROR;
	}
	/* botocore looks for the legacy name first. */
	token = aws_files_get_in(c->f, kind, profile, "aws_security_token");
	if (!token)
		token = aws_files_get_in(c->f, kind, profile, "aws_session_token");
	c->plan->source = AWS_SOURCE_STATIC;
	c->plan->static_file = kind;
	c->plan->source_profile = xstrdup(profile);
	c->plan->static_creds.access_key_id = xstrdup(akid);
	c->plan->static_creds.secret_access_key = xstrdup(secret);
	c->plan->static_creds.session_token = xstrdup(token);
	c->plan->static_creds.account_id = xstrdup(aws_files_get_in(c->f, kind, profile, "aws_account_id"));
	return AWS_RESOLVE_OK;
}

static enum aws_resolve_result resolve_profile(struct resolve_ctx *c, const char *profile, bool top);

static bool parse_duration(struct resolve_ctx *c, const char *profile, const char *text, int *out)
{
	long v = 0;

	*out = 0;
	if (!text)
		return true;
	if (strspn(text, "0123456789") != strlen(text) || strlen(text) > 6)
		goto bad;
	v = strtol(text, NULL, 10);
	if (v < MIN_ROLE_DURATION || v > MAX_ROLE_DURATION)
		goto bad;
	*out = (int)v;
	return true;
bad:
	err_set(c->err, c->errlen,
		"profile \"%s\": duration_seconds must be a whole number of "
		"seconds from %d to %d",
		profile, MIN_ROLE_DURATION, MAX_ROLE_DURATION);
	return false;
}

static enum aws_resolve_result assume_role(struct resolve_ctx *c, const char *profile)
{
	const char *src = aws_files_get(c->f, profile, "source_profile");
	const char *cs = aws_files_get(c->f, profile, "credential_source");
	struct aws_role_step step = { 0 };
	int duration;

	if (src && cs) {
		err_set(c->err, c->errlen,
			"profile \"%s\" sets both source_profile and "
			"credential_source; set exactly one",
			profile);
		return AWS_RESOLVE_ERROR;
	}
	if (!src && !cs) {
		err_set(c->err, c->errlen,
			"profile \"%s\" has role_arn but neither source_profile "
			"nor credential_source; set exactly one",
			profile);
		return AWS_RESOLVE_ERROR;
	}
	if (aws_files_get(c->f, profile, "mfa_serial")) {
		err_set(c->err, c->errlen,
			"profile \"%s\" sets mfa_serial: roles that need an MFA "
			"code cannot be assumed without a person at a prompt",
			profile);
		return AWS_RESOLVE_ERROR;
	}
	if (!parse_duration(c, profile, aws_files_get(c->f, profile, "duration_seconds"), &duration))
		return AWS_RESOLVE_ERROR;
	if (cs) {
		static const struct {
			const char *name;
			enum aws_source_kind kind;
		} sources[] = {
			{ "Environment", AWS_SOURCE_ENVIRONMENT },
			{ "Ec2InstanceMetadata", AWS_SOURCE_IMDS },
			{ "EcsContainer", AWS_SOURCE_CONTAINER },
		};
		size_t i;
		for (i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
			if (strcmp(cs, sources[i].name) == 0)
				break;
		if (i == sizeof(sources) / sizeof(sources[0])) {
			err_set(c->err, c->errlen,
				"profile \"%s\": credential_source \"%.64s\" is "
				"not one of Environment, Ec2InstanceMetadata, EcsContainer",
				profile, cs);
			return AWS_RESOLVE_ERROR;
		}
		c->plan->source = sources[i].kind;
	} else {
		if (!aws_files_has_profile(c->f, src)) {
			err_set(c->err, c->errlen,
				"source_profile \"%.128s\" of profile \"%s\" does "
				"not exist",
				src, profile);
			return AWS_RESOLVE_ERROR;
		}
		for (size_t i = 0; i < c->nvisited; i++) {
			if (strcmp(c->visited[i], src) != 0)
				continue;
			/* Only a profile naming itself, with keys of its own, is not a loop. */
			if (strcmp(src, profile) != 0 || !has_static(c->f, src)) {
				err_set(c->err, c->errlen,
					"source_profile of profile \"%s\" leads "
					"back to profile \"%s\": the role chain is a loop",
					profile, src);
				return AWS_RESOLVE_ERROR;
			}
		}
		if (c->nvisited == MAX_CHAIN) {
			err_set(c->err, c->errlen,
				"profile \"%s\": role chain longer than %d "
				"profiles",
				profile, MAX_CHAIN);
			return AWS_RESOLVE_ERROR;
		}
		c->visited[c->nvisited++] = src;
		enum aws_resolve_result r = resolve_profile(c, src, false);
		if (r == AWS_RESOLVE_ERROR)
			return r;
		if (r == AWS_RESOLVE_NONE) {
			err_set(c->err, c->errlen,
				"source_profile \"%s\" (of profile \"%s\") has no "
				"credentials",
				src, profile);
			return AWS_RESOLVE_ERROR;
		}
	}
	step.profile = xstrdup(profile);
	step.role_arn = xstrdup(aws_files_get(c->f, profile, "role_arn"));
	step.role_session_name = xstrdup(aws_files_get(c->f, profile, "role_session_name"));
	step.external_id = xstrdup(aws_files_get(c->f, profile, "external_id"));
	step.duration_seconds = duration;
	c->plan->roles = xrealloc(c->plan->roles, (c->plan->nroles + 1) * sizeof(*c->plan->roles));
	c->plan->roles[c->plan->nroles++] = step;
	return AWS_RESOLVE_OK;
}

/* botocore's providers for one profile. top: the selected profile (assume role
 * whenever role_arn is set, environment variables for web identity);
 * otherwise a source profile (static keys beat its role_arn, no environment). */
static enum aws_resolve_result resolve_profile(struct resolve_ctx *c, const char *profile, bool top)
{
	const struct aws_files_env *env = top ? c->env : NULL;
	const char *role_arn = aws_files_get(c->f, profile, "role_arn");
	const char *wif = aws_files_get(c->f, profile, "web_identity_token_file");
	const char *proc;
	enum aws_resolve_result r;

	if (role_arn && !wif && (top || !has_static(c->f, profile)))
		return assume_role(c, profile);

	/* Web identity: each setting from the environment first, then the profile. */
	const char *tf = env && env->web_identity_token_file && *env->web_identity_token_file
				 ? env->web_identity_token_file
				 : wif;
	if (tf) {
		const char *arn = env && env->role_arn && *env->role_arn ? env->role_arn : role_arn;
		const char *sess = env && env->role_session_name && *env->role_session_name
					   ? env->role_session_name
					   : aws_files_get(c->f, profile, "role_session_name");
		if (!arn) {
			err_set(c->err, c->errlen,
				"web identity token file set for profile \"%s\" "
				"but no role ARN (AWS_ROLE_ARN or role_arn)",
				profile);
			return AWS_RESOLVE_ERROR;
		}
		c->plan->source = AWS_SOURCE_WEB_IDENTITY;
		c->plan->source_profile = tf == wif ? xstrdup(profile) : NULL;
		c->plan->web_identity_token_file = xstrdup(tf);
		c->plan->web_identity_role_arn = xstrdup(arn);
		c->plan->web_identity_session_name = xstrdup(sess);
		return AWS_RESOLVE_OK;
	}
	r = static_from(c, profile, AWS_FILE_CREDENTIALS);
	if (r != AWS_RESOLVE_NONE)
		return r;
	proc = aws_files_get(c->f, profile, "credential_process");
	if (proc) {
		char perr[160];
		char **argv = aws_files_split_command(proc, NULL, perr, sizeof(perr));
		if (!argv) {
			err_set(c->err, c->errlen, "profile \"%s\": %s", profile, perr);
			return AWS_RESOLVE_ERROR;
		}
		c->plan->source = AWS_SOURCE_PROCESS;
		c->plan->source_profile = xstrdup(profile);
		c->plan->process_command = xstrdup(proc);
		c->plan->process_argv = argv;
		return AWS_RESOLVE_OK;
	}
	return static_from(c, profile, AWS_FILE_CONFIG);
}

enum aws_resolve_result aws_files_resolve(const struct aws_files *f, const char *profile,
					  const struct aws_files_env *env, struct aws_profile_plan *plan,
					  char *err, size_t errlen)
{
	struct resolve_ctx c = { .f = f, .env = env, .plan = plan, .err = err, .errlen = errlen };
	enum aws_resolve_result r;

	if (!plan)
		return AWS_RESOLVE_ERROR;
	memset(plan, 0, sizeof(*plan));
	if (!f || !profile || !*profile) {
		err_set(err, errlen, "no profile name");
		return AWS_RESOLVE_ERROR;
	}
	c.visited[c.nvisited++] = profile;
	r = resolve_profile(&c, profile, true);
	if (r == AWS_RESOLVE_OK)
		plan->region = xstrdup(aws_files_get(f, profile, "region"));
	else
		aws_profile_plan_clear(plan);
	return r;
}
