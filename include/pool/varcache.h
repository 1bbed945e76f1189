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

/* track_extra_parameters: further names kept the same way, after the
 * built-in ones (indexes VAR_COUNT and up). */
#define VAR_EXTRA_MAX 8
#define VAR_NAME_MAX 63

struct interned;

/* The extra names tracked and the interned values: one per loop (a field of
 * struct worker), passed to every function here. Extra names only ever grow,
 * so an index stays valid for every cache that holds a value at it, across
 * reloads. */
struct varcache_state {
	char extra_names[VAR_EXTRA_MAX][VAR_NAME_MAX + 1];
	bool extra_on[VAR_EXTRA_MAX];
	int extra_count;
	struct interned **intern_tab;
	size_t intern_cap, intern_count;
};

struct varcache {
	const char *values[VAR_COUNT]; /* interned: shared, reference counted */
	const char **extra;            /* VAR_EXTRA_MAX values, allocated on first use */
};

/* Index of a tracked parameter (case-insensitive), or -1. */
int varcache_index(struct varcache_state *vs, const char *name);
/* Indexes in use: VAR_COUNT plus the extra names ever tracked. */
int varcache_count(struct varcache_state *vs);
/* Whether a comma-separated track_extra_parameters value is well formed:
 * parameter names, at most VAR_EXTRA_MAX besides the built-in ones. */
bool varcache_extra_valid(const char *csv);
/* Track exactly these extra names from now on (names dropped by a reload
 * keep their index but are no longer tracked). Names beyond the capacity of
 * the process are skipped: returns false then. */
bool varcache_track_extra(struct varcache_state *vs, const char *csv);
/* The spelling PostgreSQL uses in ParameterStatus. */
const char *varcache_name(struct varcache_state *vs, int idx);
/* Returns true when the value changed. */
bool varcache_set(struct varcache_state *vs, struct varcache *v, int idx, const char *value);
const char *varcache_get(struct varcache_state *vs, const struct varcache *v, int idx);
void varcache_copy(struct varcache_state *vs, struct varcache *dst, const struct varcache *src);
void varcache_clear(struct varcache_state *vs, struct varcache *v);
/* Frees the table once no value is held any more (a worker's end). */
void varcache_state_free(struct varcache_state *vs);
/* Distinct values held, for SHOW MEM and tests. */
size_t varcache_interned_count(struct varcache_state *vs);
/* The same table for other strings many clients share (their user names):
 * a reference to the one copy of s, and its release (NULL is ignored). */
const char *varcache_intern_str(struct varcache_state *vs, const char *s);
void varcache_release_str(struct varcache_state *vs, const char *s);
/* One simple-protocol query that sets on the server every value the client
 * has and the server does not; NULL when they already agree. Caller frees. */
char *varcache_sync_sql(struct varcache_state *vs, const struct varcache *client,
			const struct varcache *server);
#endif
