#include "pool/varcache.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/dynbuf.h"
#include "core/util.h"

static const char *const var_names[VAR_COUNT] = {
	"client_encoding",  "DateStyle", "IntervalStyle", "TimeZone", "standard_conforming_strings",
	"application_name",
};

static int builtin_index(const char *name)
{
	for (int i = 0; i < VAR_COUNT; i++)
		if (strcasecmp(name, var_names[i]) == 0)
			return i;
	return -1;
}

int varcache_index(struct varcache_state *vs, const char *name)
{
	int i = builtin_index(name);
	if (i >= 0)
		return i;
	for (int k = 0; k < vs->extra_count; k++)
		if (vs->extra_on[k] && strcasecmp(name, vs->extra_names[k]) == 0)
			return VAR_COUNT + k;
	return -1;
}

int varcache_count(struct varcache_state *vs)
{
	return VAR_COUNT + vs->extra_count;
}

const char *varcache_name(struct varcache_state *vs, int idx)
{
	if (idx >= 0 && idx < VAR_COUNT)
		return var_names[idx];
	if (idx >= VAR_COUNT && idx < VAR_COUNT + vs->extra_count)
		return vs->extra_names[idx - VAR_COUNT];
	return "";
}

/* Calls each(name) per item of a comma-separated list, spaces trimmed;
 * false on an item that is not a parameter name. */
static bool each_name(const char *csv, bool (*each)(const char *name, void *arg), void *arg)
{
	const char *p = csv ? csv : "";
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == start)
			continue;
		size_t n = (size_t)(end - start);
		if (n > VAR_NAME_MAX)
			return false;
		char name[VAR_NAME_MAX + 1];
		memcpy(name, start, n);
		name[n] = '\0';
		for (size_t i = 0; i < n; i++) {
			char ch = name[i];
			bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
				  ch == '.' || (i > 0 && ch >= '0' && ch <= '9');
			if (!ok)
				return false;
		}
		if (!each(name, arg))
			return false;
	}
	return true;
}

struct extra_tally {
	char seen[VAR_EXTRA_MAX][VAR_NAME_MAX + 1];
	int n;
	bool overflow;
};

static bool tally_name(const char *name, void *arg)
{
	struct extra_tally *t = arg;
	if (builtin_index(name) >= 0)
		return true;
	for (int i = 0; i < t->n; i++)
		if (strcasecmp(t->seen[i], name) == 0)
			return true;
	if (t->n == VAR_EXTRA_MAX) {
		t->overflow = true;
		return false;
	}
	snprintf(t->seen[t->n++], VAR_NAME_MAX + 1, "%s", name);
	return true;
}

bool varcache_extra_valid(const char *csv)
{
	struct extra_tally t = { .n = 0 };
	return each_name(csv, tally_name, &t);
}

bool varcache_track_extra(struct varcache_state *vs, const char *csv)
{
	struct extra_tally t = { .n = 0 };
	if (!each_name(csv, tally_name, &t) && !t.overflow)
		return false;
	for (int k = 0; k < vs->extra_count; k++)
		vs->extra_on[k] = false;
	bool all = !t.overflow;
	for (int i = 0; i < t.n; i++) {
		int k = 0;
		while (k < vs->extra_count && strcasecmp(vs->extra_names[k], t.seen[i]) != 0)
			k++;
		if (k == vs->extra_count) {
			if (vs->extra_count == VAR_EXTRA_MAX) {
				all = false;
				continue;
			}
			snprintf(vs->extra_names[vs->extra_count++], VAR_NAME_MAX + 1, "%s", t.seen[i]);
		}
		vs->extra_on[k] = true;
	}
	return all;
}

static const char **slot(struct varcache_state *vs, struct varcache *v, int idx, bool make)
{
	if (idx >= 0 && idx < VAR_COUNT)
		return &v->values[idx];
	if (idx < VAR_COUNT || idx >= VAR_COUNT + vs->extra_count)
		return NULL;
	if (!v->extra) {
		if (!make)
			return NULL;
		v->extra = xcalloc(VAR_EXTRA_MAX, sizeof(*v->extra));
	}
	return &v->extra[idx - VAR_COUNT];
}

static bool tracked(struct varcache_state *vs, int idx)
{
	return idx < VAR_COUNT || vs->extra_on[idx - VAR_COUNT];
}

/* Values are interned: thousands of idle clients mostly hold the same few
 * strings ("UTF8", "ISO, MDY", "UTC"), so each distinct value is stored once
 * with a reference count. */
struct interned {
	struct interned *next;
	uint32_t hash;
	uint32_t refs;
	char s[];
};

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void intern_grow(struct varcache_state *vs)
{
	size_t cap = vs->intern_cap ? vs->intern_cap * 2 : 64;
	struct interned **tab = xcalloc(cap, sizeof(*tab));
	for (size_t i = 0; i < vs->intern_cap; i++) {
		struct interned *e = vs->intern_tab[i];
		while (e) {
			struct interned *next = e->next;
			e->next = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
			e = next;
		}
	}
	free(vs->intern_tab);
	vs->intern_tab = tab;
	vs->intern_cap = cap;
}

static const char *intern(struct varcache_state *vs, const char *value)
{
	uint32_t h = hash_str(value);
	for (struct interned *e = vs->intern_cap ? vs->intern_tab[h & (vs->intern_cap - 1)] : NULL; e;
	     e = e->next)
		if (e->hash == h && strcmp(e->s, value) == 0) {
			e->refs++;
			return e->s;
		}
	if (vs->intern_count + 1 > vs->intern_cap * 3 / 4)
		intern_grow(vs);
	size_t n = strlen(value) + 1;
	struct interned *e = xmalloc(sizeof(*e) + n);
	memcpy(e->s, value, n);
	e->hash = h;
	e->refs = 1;
	e->next = vs->intern_tab[h & (vs->intern_cap - 1)];
	vs->intern_tab[h & (vs->intern_cap - 1)] = e;
	vs->intern_count++;
	return e->s;
}

static void release(struct varcache_state *vs, const char *value)
{
	if (!value)
		return;
	struct interned *self = (struct interned *)(void *)(value - offsetof(struct interned, s));
	if (--self->refs > 0)
		return;
	struct interned **pp = &vs->intern_tab[self->hash & (vs->intern_cap - 1)];
	while (*pp != self)
		pp = &(*pp)->next;
	*pp = self->next;
	vs->intern_count--;
	free(self);
}

void varcache_state_free(struct varcache_state *vs)
{
	if (vs->intern_count == 0) {
		free(vs->intern_tab);
		vs->intern_tab = NULL;
		vs->intern_cap = 0;
	}
}

const char *varcache_intern_str(struct varcache_state *vs, const char *s)
{
	return intern(vs, s);
}

void varcache_release_str(struct varcache_state *vs, const char *s)
{
	release(vs, s);
}

size_t varcache_interned_count(struct varcache_state *vs)
{
	return vs->intern_count;
}

bool varcache_set(struct varcache_state *vs, struct varcache *v, int idx, const char *value)
{
	const char **sl = value ? slot(vs, v, idx, true) : NULL;
	if (!sl)
		return false;
	if (*sl && strcmp(*sl, value) == 0)
		return false;
	const char *nv = intern(vs, value);
	release(vs, *sl);
	*sl = nv;
	return true;
}

const char *varcache_get(struct varcache_state *vs, const struct varcache *v, int idx)
{
	const char **sl = slot(vs, (struct varcache *)v, idx, false);
	return sl ? *sl : NULL;
}

void varcache_copy(struct varcache_state *vs, struct varcache *dst, const struct varcache *src)
{
	for (int i = 0; i < varcache_count(vs); i++)
		if (varcache_get(vs, src, i))
			varcache_set(vs, dst, i, varcache_get(vs, src, i));
}

void varcache_clear(struct varcache_state *vs, struct varcache *v)
{
	for (int i = 0; i < VAR_COUNT; i++) {
		release(vs, v->values[i]);
		v->values[i] = NULL;
	}
	if (v->extra) {
		for (int i = 0; i < VAR_EXTRA_MAX; i++)
			release(vs, v->extra[i]);
		free(v->extra);
		v->extra = NULL;
	}
}

/* E'' literal with quotes and backslashes escaped: correct whatever the
 * server's standard_conforming_strings is. */
static bool append_literal(struct dynbuf *sql, const char *s)
{
	bool ok = dynbuf_addstr(sql, "E'");
	for (; *s && ok; s++) {
		if (*s == '\'' || *s == '\\')
			ok = dynbuf_addc(sql, *s); /* doubled */
		ok = ok && dynbuf_addc(sql, *s);
	}
	return ok && dynbuf_addc(sql, '\'');
}

char *varcache_sync_sql(struct varcache_state *vs, const struct varcache *client,
			const struct varcache *server)
{
	struct dynbuf sql;
	/* Values are capped by the startup packet and ParameterStatus limits. */
	dynbuf_init(&sql, SIZE_MAX, false);
	for (int i = 0; i < varcache_count(vs); i++) {
		const char *want = varcache_get(vs, client, i);
		const char *have = varcache_get(vs, server, i);
		if (!want || !tracked(vs, i) || (have && strcmp(want, have) == 0))
			continue;
		if (!dynbuf_addf(&sql, "SET %s = ", varcache_name(vs, i)) || !append_literal(&sql, want) ||
		    !dynbuf_addc(&sql, ';')) {
			dynbuf_free(&sql);
			return NULL;
		}
	}
	return dynbuf_take(&sql, NULL);
}
