/* The session parameters a client may set and that PostgreSQL reports with
 * ParameterStatus. Each client and each server keeps its values, so a
 * server handed to a client is first set to what that client expects. */
#ifndef TB_POOL_VARCACHE_H
#define TB_POOL_VARCACHE_H
#include <stdbool.h>
#include <stddef.h>

#include "pg/proto.h"

enum varcache_var {
	VAR_CLIENT_ENCODING = 0,
	VAR_DATESTYLE,
	VAR_INTERVALSTYLE,
	VAR_TIMEZONE,
	VAR_STANDARD_CONFORMING_STRINGS,
	VAR_APPLICATION_NAME,
	VAR_COUNT,
};

struct varcache {
	const char *values[VAR_COUNT];  /* interned: shared, reference counted */
};

/* Index of a tracked parameter (case-insensitive), or -1. */
int varcache_index(const char *name);
/* The spelling PostgreSQL uses in ParameterStatus. */
const char *varcache_name(int idx);
/* Returns true when the value changed. */
bool varcache_set(struct varcache *v, int idx, const char *value);
const char *varcache_get(const struct varcache *v, int idx);
void varcache_copy(struct varcache *dst, const struct varcache *src);
void varcache_clear(struct varcache *v);
/* Distinct values held, for SHOW MEM and tests. */
size_t varcache_interned_count(void);
/* One simple-protocol query that sets on the server every value the client
 * has and the server does not; NULL when they already agree. Caller frees. */
char *varcache_sync_sql(const struct varcache *client, const struct varcache *server);
#endif
