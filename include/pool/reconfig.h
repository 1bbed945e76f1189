/* Changing the running configuration from the console: SET of a parameter
 * that lives in loaded state (auth_type, auth_file, auth_hba_file, the TLS
 * settings) builds a changed copy of the configuration and applies it as a
 * reload does; a TLS change marks server connections for reconnect. */
#ifndef TB_POOL_RECONFIG_H
#define TB_POOL_RECONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include "core/config-t.h"
#include "core/params.h"

struct worker;

struct pool;

/* Parameters whose value is loaded into the running state when a config is
 * applied (files read, contexts built), so SET goes through reconfig_set. */
bool reconfig_needs_apply(const struct param_def *p);
/* SET p = value on a copy of the running config, validate and apply it.
 * On any error (bad value, missing file, invalid pairing) nothing changes. */
bool reconfig_set(struct worker *w, const struct param_def *p, const char *value, char *err, size_t errlen);
/* Any client_tls_* or server_tls_* parameter differs. */
bool reconfig_tls_differs(const struct tb_config *a, const struct tb_config *b);
/* PgBouncer's close_needed: idle servers close now, the others when released. */
void reconfig_reconnect_pool(struct pool *p, const char *why);
void reconfig_reconnect_all(struct worker *w, const char *why);
#endif
