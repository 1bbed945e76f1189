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
	"client_encoding", "DateStyle", "IntervalStyle", "TimeZone",
	"standard_conforming_strings", "application_name",
};

int varcache_index(const char *name)
{
	for (int i = 0; i < VAR_COUNT; i++)
		if (strcasecmp(name, var_names[i]) == 0)
			return i;
	return -1;
}

const char *varcache_name(int idx)
{
	return idx >= 0 && idx < VAR_COUNT ? var_names[idx] : "";
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

static struct interned **intern_tab;
static size_t intern_cap, intern_count;

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void intern_grow(void)
{
	size_t cap = intern_cap ? intern_cap * 2 : 64;
	struct interned **tab = xcalloc(cap, sizeof(*tab));
	for (size_t i = 0; i < intern_cap; i++) {
		struct interned *e = intern_tab[i];
		while (e) {
			struct interned *next = e->next;
			e->next = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
			e = next;
		}
	}
	free(intern_tab);
	intern_tab = tab;
	intern_cap = cap;
}

static const char *intern(const char *value)
{
	uint32_t h = hash_str(value);
	for (struct interned *e = intern_cap ? intern_tab[h & (intern_cap - 1)] : NULL; e; e = e->next)
		if (e->hash == h && strcmp(e->s, value) == 0) {
			e->refs++;
			return e->s;
		}
	if (intern_count + 1 > intern_cap * 3 / 4)
		intern_grow();
	size_t n = strlen(value) + 1;
	struct interned *e = xmalloc(sizeof(*e) + n);
	memcpy(e->s, value, n);
	e->hash = h;
	e->refs = 1;
	e->next = intern_tab[h & (intern_cap - 1)];
	intern_tab[h & (intern_cap - 1)] = e;
	intern_count++;
	return e->s;
}

static void release(const char *value)
{
	if (!value)
		return;
	struct interned *self = (struct interned *)(void *)(value - offsetof(struct interned, s));
	if (--self->refs > 0)
		return;
	struct interned **pp = &intern_tab[self->hash & (intern_cap - 1)];
	while (*pp != self)
		pp = &(*pp)->next;
	*pp = self->next;
	intern_count--;
	free(self);
}

size_t varcache_interned_count(void)
{
	return intern_count;
}

bool varcache_set(struct varcache *v, int idx, const char *value)
{
	if (idx < 0 || idx >= VAR_COUNT || !value)
		return false;
	if (v->values[idx] && strcmp(v->values[idx], value) == 0)
		return false;
	const char *nv = intern(value);
	release(v->values[idx]);
	v->values[idx] = nv;
	return true;
}

const char *varcache_get(const struct varcache *v, int idx)
{
	return idx >= 0 && idx < VAR_COUNT ? v->values[idx] : NULL;
}

void varcache_copy(struct varcache *dst, const struct varcache *src)
{
	for (int i = 0; i < VAR_COUNT; i++)
		if (src->values[i])
			varcache_set(dst, i, src->values[i]);
}

void varcache_clear(struct varcache *v)
{
	for (int i = 0; i < VAR_COUNT; i++) {
		release(v->values[i]);
		v->values[i] = NULL;
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

char *varcache_sync_sql(const struct varcache *client, const struct varcache *server)
{
	struct dynbuf sql;
	/* Values are capped by the startup packet and ParameterStatus limits. */
	dynbuf_init(&sql, SIZE_MAX, false);
	for (int i = 0; i < VAR_COUNT; i++) {
		const char *want = client->values[i];
		const char *have = server->values[i];
		if (!want || (have && strcmp(want, have) == 0))
			continue;
		if (!dynbuf_addf(&sql, "SET %s = ", var_names[i]) || !append_literal(&sql, want) ||
		    !dynbuf_addc(&sql, ';')) {
			dynbuf_free(&sql);
			return NULL;
		}
	}
	return dynbuf_take(&sql, NULL);
}
