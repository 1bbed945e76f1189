/* SV_DRAIN: a client left with answers owed; its server reads and discards
 * them up to a marker query of the pooler's own before anyone reuses it. */
#ifndef TB_POOL_SERVER_DRAIN_H
#define TB_POOL_SERVER_DRAIN_H
#include <stdbool.h>

#include "core/util.h"
#include "pool/pool-t.h"

/* Bounds on what the pooler reads and discards for a client that left with
 * answers owed (SV_DRAIN); past either the server is closed instead. */
#define SERVER_DRAIN_MAX_BYTES (64u << 20)
#define SERVER_DRAIN_TIMEOUT (10 * USEC_PER_SEC)

/* Send Sync, ROLLBACK and the marker query, and enter SV_DRAIN; run_reset is
 * passed on to the release that follows. */
void server_drain_start(struct server *s, bool run_reset);
/* SV_DRAIN: consume what arrived; releases the server at the marker. */
void server_drain_input(struct server *s);
/* The marker has been answered and nothing (bytes, cancels) is pending. */
bool server_drain_done(const struct server *s);
/* Janitor: a drain that has run past SERVER_DRAIN_TIMEOUT closes the server. */
void server_expire_drain(struct server *s, usec_t now);
#endif
