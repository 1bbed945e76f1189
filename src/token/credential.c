#include "token/credential.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

const char *credential_get(const struct credential *c, const char *key)
{
	for (size_t i = 0; i < c->nkv; i++)
		if (strcasecmp(c->kv[i].key, key) == 0)
			return c->kv[i].value;
	return NULL;
}

int credential_line(const struct credential *c, const char *key)
{
	for (size_t i = 0; key && i < c->nkv; i++)
		if (strcasecmp(c->kv[i].key, key) == 0)
			return c->kv[i].line;
	return c->line;
}

const char *credential_value(const struct credential *c, const char *key)
{
	const char *v = credential_get(c, key);
	return v && *v ? v : NULL;
}

bool credential_fail(const struct credential *c, const char *key, char *err, size_t errlen, const char *fmt,
		     ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_set(err, errlen, "%s:%d: [credential.%s]: %s", c->file, credential_line(c, key), c->name, msg);
	return false;
}

const struct credential_type *credential_type_find(const void *table, size_t n, size_t size, const char *type)
{
	const unsigned char *at = table;
	for (size_t i = 0; type && i < n; i++, at += size) {
		const struct credential_type *t = (const struct credential_type *)at;
		if (strcasecmp(type, t->name) == 0)
			return t;
	}
	return NULL;
}

const char *const *credential_type_keys(const struct credential_type *t)
{
	return t ? t->keys : NULL;
}

static bool key_known(const struct credential_type *t, const char *key)
{
	if (strcasecmp(key, "type") == 0)
		return true;
	for (const char *const *k = t->keys; *k; k++)
		if (strcasecmp(*k, key) == 0)
			return true;
	return false;
}

const char *credential_unknown_key(const struct credential *c, const struct credential_type *t)
{
	for (size_t i = 0; i < c->nkv; i++)
		if (!key_known(t, c->kv[i].key))
			return c->kv[i].key;
	return NULL;
}

bool credential_check_keys(const struct credential *c, const struct credential_type *t, char *err,
			   size_t errlen)
{
	const char *k = credential_unknown_key(c, t);
	return !k || credential_fail(c, k, err, errlen, "unknown key \"%s\" for type %s", k, t->name);
}

bool credential_family_of(const char *type, enum credential_family *out)
{
	if (!type)
		return false;
	if (strncasecmp(type, "azure-", 6) == 0)
		*out = CRED_FAMILY_AZURE;
	else if (strncasecmp(type, "aws-", 4) == 0)
		*out = CRED_FAMILY_AWS;
	else if (strncasecmp(type, "gcp-", 4) == 0)
		*out = CRED_FAMILY_GCP;
	else
		return false;
	return true;
}
