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

bool credential_fail(const struct credential *c, const char *key, char *err, size_t errlen,
		     const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_set(err, errlen, "%s:%d: [credential.%s]: %s", c->file, credential_line(c, key), c->name, msg);
	return false;
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
