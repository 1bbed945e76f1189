/* Peering (PgBouncer's [peers]): processes that share a port or a load
 * balancer hand out cancel keys that say which of them issued the key, and
 * forward a cancel request that reached the wrong one to its owner. */
#ifndef TB_POOL_PEER_H
#define TB_POOL_PEER_H
#include <stdbool.h>
#include <stdint.h>

struct worker;

/* The key's process id half: bits 31-30 a hop budget (3 when issued),
 * bits 29-16 the issuing peer_id, bits 15-0 random. */
#define PEER_TTL_SHIFT 30
#define PEER_ID_SHIFT 16
#define PEER_ID_MASK 0x3fffu

/* With peer_id set, mark a freshly drawn random cancel pid as ours. */
void peer_stamp_key(struct worker *w, uint32_t *cancel_pid);
/* The pid a local client would hold for this key (the hop budget restored). */
uint32_t peer_local_pid(struct worker *w, uint32_t pid);
/* True when the key belongs to another peer: the request was forwarded to
 * it (or dropped: unknown peer, hop budget spent). */
bool peer_route_cancel(struct worker *w, uint32_t pid, uint32_t key);

/* SHOW PEER_POOLS: requests being forwarded to a peer, and waiting for its pool_size. */
struct peer_counts {
	int connecting; /* sv_login */
	int sending;    /* sv_active_cancel */
	int waiting;    /* cl_waiting_cancel_req */
};
void peer_counts(struct worker *w, int peer_id, struct peer_counts *out);
/* Drop every request in flight (process exit). */
void peers_shutdown(struct worker *w);
#endif
