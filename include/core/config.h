/* Loading, validating and freeing a configuration, and the helpers a reload
 * needs. Nothing here logs: errors come back as "path:line: reason" (or
 * "path: reason" when no single line is to blame) in the caller's buffer. */
#ifndef TB_CORE_CONFIG_H
#define TB_CORE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "core/config-t.h"

/* Largest configuration file read. */
#define CONFIG_MAX_FILE_SIZE (16u * 1024 * 1024)

/* A complete, validated config, or NULL with err set. */
struct tb_config *config_load(const char *path, char *err, size_t errlen);
struct tb_config *config_parse_string(const char *text, const char *path_for_messages, char *err,
				      size_t errlen);
/* Every parameter at its default, no databases or users (not validated). */
struct tb_config *config_new_default(void);
void config_free(struct tb_config *cfg);

/* Exact match, else the "*" entry, else NULL. */
const struct db_alias *config_find_db(const struct tb_config *cfg, const char *name);
const struct user_cfg *config_find_user(const struct tb_config *cfg, const char *name);

/* For reload: for each restart-only parameter that differs, copy the old value
 * into newcfg and call warn(name, arg) if warn is not NULL. Returns how many. */
int config_keep_restart_only(struct tb_config *newcfg, const struct tb_config *oldcfg,
			     void (*warn)(const char *param, void *arg), void *arg);
/* Same upstream and pool settings (name included; line ignored): a pool for
 * a can be kept when the reloaded config has b. */
bool config_db_equal(const struct db_alias *a, const struct db_alias *b);

/* A deep copy (warnings are not copied). */
struct tb_config *config_clone(const struct tb_config *cfg);
/* The checks a loaded file passes (auth files named, TLS files paired,
 * tokens only over TLS, something to listen on), for a changed copy. */
bool config_validate(struct tb_config *cfg, char *err, size_t errlen);

/* The config's own copy of a file name (kept in cfg->files). */
const char *config_intern_file(struct tb_config *cfg, const char *path);

const struct credential_cfg *config_find_credential(const struct tb_config *cfg, const char *name);
const char *upstream_auth_name(enum upstream_auth a);

/* String parameters may be NULL (unset) or "" (set empty); both mean "none". */
static inline bool config_str_set(const char *s)
{
	return s && *s;
}

/* PgBouncer: server_check_query "<empty>" sends an empty query (the
 * cheapest round trip); an empty value disables the check. */
static inline const char *config_check_query_sql(const char *server_check_query)
{
	if (!config_str_set(server_check_query))
		return NULL;
	return strcmp(server_check_query, "<empty>") == 0 ? "" : server_check_query;
}
#endif
