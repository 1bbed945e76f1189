/* Run-time configuration changes; see include/pool/reconfig.h. */
#include "pool/pool_iter.h"
#include "pool/reconfig.h"

#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "pool/pool-t.h"
#include "pool/pool.h"
#include "pool/runtime.h"
#include "pool/server.h"

static bool is_tls_param(const char *name)
{
	return strncmp(name, "client_tls", 10) == 0 || strncmp(name, "server_tls", 10) == 0;
}

bool reconfig_needs_apply(const struct param_def *p)
{
	static const char *const names[] = { "auth_type", "auth_file", "auth_hba_file", "token_ca_file" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], p->name) == 0)
			return true;
	return is_tls_param(p->name);
}

bool reconfig_tls_differs(const struct tb_config *a, const struct tb_config *b)
{
	for (size_t i = 0; i < param_count; i++)
		if (is_tls_param(param_table[i].name) && !param_equal(a, b, &param_table[i]))
			return true;
	return false;
}

void reconfig_reconnect_pool(struct pool *p, const char *why)
{
	/* In use, resetting or logging in: closed when released (release() and
	 * pool_server_usable honour retire). Idle: now. */
	struct list_node *busy[] = { &p->active_servers, &p->used_servers, &p->new_servers };
	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++) {
		struct list_node *n, *t;
		list_for_each_safe(n, t, busy[i])
			list_entry(n, struct server, node)->retire = true;
	}
	struct list_node *n, *t;
	list_for_each_safe(n, t, &p->idle_servers)
		server_close(list_entry(n, struct server, node), "%s", why);
	pool_kick(p);
}

void reconfig_reconnect_all(struct worker *w, const char *why)
{
	for_each_pool(w, p) reconfig_reconnect_pool(p, why);
}

bool reconfig_set(struct worker *w, const struct param_def *p, const char *value, char *err, size_t errlen)
{
	struct tb_config *cfg = config_clone(w->cfg);
	if (!param_set(cfg, p, value, err, errlen) || !config_validate(cfg, err, errlen)) {
		config_free(cfg);
		return false;
	}
	bool tls_changed = reconfig_tls_differs(w->cfg, cfg);
	if (!runtime_apply_config(w, cfg, err, errlen)) {
		config_free(cfg);
		return false;
	}
	/* PgBouncer: any TLS change reconnects servers, for security. */
	if (tls_changed)
		reconfig_reconnect_all(w, "TLS settings changed");
	return true;
}
