#include "pool/varcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

bool varcache_set(struct varcache *v, int idx, const char *value)
{
	if (idx < 0 || idx >= VAR_COUNT || !value)
		return false;
	if (v->values[idx] && strcmp(v->values[idx], value) == 0)
		return false;
	free(v->values[idx]);
	v->values[idx] = xstrdup(value);
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
		free(v->values[i]);
		v->values[i] = NULL;
	}
}

/* E'' literal with quotes and backslashes escaped: correct whatever the
 * server's standard_conforming_strings is. */
static void append_literal(char **sql, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + 2 * strlen(s) + 8;
	if (need > *cap) {
		*cap = need * 2;
		*sql = xrealloc(*sql, *cap);
	}
	char *p = *sql + *len;
	*p++ = 'E';
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			*p++ = *s;
		*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	*len = (size_t)(p - *sql);
}

char *varcache_sync_sql(const struct varcache *client, const struct varcache *server)
{
	char *sql = NULL;
	size_t len = 0, cap = 0;
	for (int i = 0; i < VAR_COUNT; i++) {
		const char *want = client->values[i];
		const char *have = server->values[i];
		if (!want || (have && strcmp(want, have) == 0))
			continue;
		char head[64];
		size_t hl = (size_t)snprintf(head, sizeof(head), "SET %s = ", var_names[i]);
		if (len + hl + 2 > cap) {
			cap = (len + hl + 2) * 2 + 64;
			sql = xrealloc(sql, cap);
		}
		memcpy(sql + len, head, hl + 1);
		len += hl;
		append_literal(&sql, &len, &cap, want);
		if (len + 2 > cap) {
			cap = len + 64;
			sql = xrealloc(sql, cap);
		}
		sql[len++] = ';';
		sql[len] = '\0';
	}
	return sql;
}
