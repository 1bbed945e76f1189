/* /healthz and /readyz. Liveness says only that the loop turns (a restart
 * would help); readiness says whether a client arriving now would be served
 * (a restart would not help: a token endpoint that is down comes back). */
#include "admin/health.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "net/listener.h"
#include "pool/janitor.h"
#include "pool/pool.h"
#include "pool/runtime.h"
#include "token/token.h"

/* The janitor runs four times a second; ten missed passes is a stuck loop. */
#define LIVE_MAX_GAP_USEC (5 * USEC_PER_SEC / 2)

bool health_live(struct worker *w, char *why, size_t whylen)
{
	usec_t last = janitor_last_run(w);
	usec_t gap = time_mono_usec() - last;
	if (last == 0 || gap <= LIVE_MAX_GAP_USEC)
		return true;
	snprintf(why, whylen, "the maintenance timer last ran %.1f s ago", (double)gap / USEC_PER_SEC);
	return false;
}

/* The upstream user of a token alias whose user does not come from the
 * client, or NULL: the same rule the prefetch at load uses. */
static const char *fixed_user(const struct database *db)
{
	if (db->learn_user)
		return "";
	return db->cfg->user ? db->cfg->user : db->default_user;
}

static bool alias_ready(struct worker *w, const struct db_alias *a, char *why, size_t whylen)
{
	if (a->auth == UPSTREAM_AUTH_PASSWORD || strcmp(a->name, "*") == 0)
		return true;
	struct database *db = runtime_find_database(w, a->name);
	const char *user = db ? fixed_user(db) : NULL;
	if (!user)
		return true; /* the token is per client user: nothing to hold ahead */
	struct token_target t;
	pool_token_target(db, user, &t);
	char cause[320];
	if (token_entry_ready(token_entry_for(&t), cause, sizeof(cause)))
		return true;
	snprintf(why, whylen, "alias \"%s\": %s", a->name, cause);
	return false;
}

bool health_ready(struct worker *w, char *why, size_t whylen)
{
	if (!w->cfg) {
		snprintf(why, whylen, "no configuration loaded");
		return false;
	}
	if (w->shutting_down) {
		snprintf(why, whylen, "shutting down");
		return false;
	}
	if (listeners_count() == 0) {
		snprintf(why, whylen, "not listening");
		return false;
	}
	for (size_t i = 0; i < w->cfg->ndbs; i++)
		if (!alias_ready(w, &w->cfg->dbs[i], why, whylen))
			return false;
	return true;
}
