/* Clients by cancel key: an open-addressing hash of client pointers keyed
 * by (cancel_pid, cancel_key), so a CancelRequest costs O(1) however many
 * clients are connected. The keys are random and chosen by the pooler
 * (never by a client), so a cheap mix spreads them; a key already in use
 * is refused, and the caller draws another, so every key names one client. */
#ifndef TB_POOL_CANCEL_INDEX_H
#define TB_POOL_CANCEL_INDEX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/pool-t.h"

struct cancel_index {
	struct client **slots; /* NULL: empty */
	size_t cap;            /* 0 or a power of two */
	size_t count;
};

/* Index c under its cancel_pid and cancel_key; false if another client has them. */
bool cancel_index_add(struct cancel_index *ix, struct client *c);
/* Drop c if it is indexed. */
void cancel_index_del(struct cancel_index *ix, const struct client *c);
struct client *cancel_index_find(const struct cancel_index *ix, uint32_t pid, uint32_t key);
void cancel_index_clear(struct cancel_index *ix);
#endif
