/* Cloud identities from [credential.NAME] sections. The section's keys are
 * kept as written; each provider family validates and interprets its own. */
#ifndef TB_TOKEN_CREDENTIAL_H
#define TB_TOKEN_CREDENTIAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config-t.h"

enum credential_family {
	CRED_FAMILY_AZURE = 0,
	CRED_FAMILY_AWS,
	CRED_FAMILY_GCP,
};

struct credential {
	char *name;
	char *type; /* e.g. azure-managed-identity, aws-default */
	enum credential_family family;
	const char *file; /* config path, for messages */
	int line;
	struct credential_kv *kv; /* copied from the config section */
	size_t nkv;
	void *state;     /* the family's own runtime state (caches, chain choice) */
	char source[48]; /* what actually answered last (e.g. "imds", "env") */
	char last_error[256];
	uint64_t fetch_count, failure_count;
	int64_t last_success; /* wall clock epoch seconds, 0 = never */
};

/* Value of a key in the section, or NULL. Keys are case-insensitive. */
const char *credential_get(const struct credential *c, const char *key);
/* Line of a key, or the section's line, for "file:line: reason" errors. */
int credential_line(const struct credential *c, const char *key);
/* A key's value when set and not empty, else NULL. */
const char *credential_value(const struct credential *c, const char *key);
/* Format "file:line: [credential.NAME]: message" (line of key) into err; returns false. */
bool credential_fail(const struct credential *c, const char *key, char *err, size_t errlen, const char *fmt,
		     ...) __attribute__((format(printf, 5, 6)));
/* The head each entry of a provider's table of credential types starts with. */
struct credential_type {
	const char *name;        /* "aws-static", matched case-insensitively */
	const char *const *keys; /* besides "type"; NULL-terminated */
};
/* The entry named type in a provider's table (n entries of size bytes, each
 * starting with a struct credential_type); NULL when none is. */
const struct credential_type *credential_type_find(const void *table, size_t n, size_t size, const char *type);
#define CREDENTIAL_TYPE_FIND(table, type) \
	credential_type_find((table), sizeof(table) / sizeof((table)[0]), sizeof((table)[0]), (type))
/* t's keys, NULL for no type (what the *_credential_keys functions return). */
const char *const *credential_type_keys(const struct credential_type *t);
/* The first key of c that t does not take ("type" is always taken); NULL when
 * every key is known. */
const char *credential_unknown_key(const struct credential *c, const struct credential_type *t);
/* false with "unknown key ... for type ..." in err when a key is unknown. */
bool credential_check_keys(const struct credential *c, const struct credential_type *t, char *err,
			   size_t errlen);
/* The keys (besides "type") each provider accepts for a credential type, or
 * NULL for a type it does not know; NULL-terminated. For the documentation
 * drift test (core/credential_doc.c must list exactly these). */
const char *const *azure_credential_keys(const char *type);
const char *const *aws_credential_keys(const char *type);
const char *const *gcp_credential_keys(const char *type);
/* Family from the type prefix; false for an unknown type. */
bool credential_family_of(const char *type, enum credential_family *out);
#endif
