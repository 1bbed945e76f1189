#include "pool/cancel_index.h"

#include <stdlib.h>

#include "core/util.h"

static size_t hash_of(uint32_t pid, uint32_t key)
{
	uint64_t h = ((uint64_t)pid << 32 | key) * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h ^ (h >> 29));
}

static bool same_key(const struct client *c, uint32_t pid, uint32_t key)
{
	return c->cancel_pid == pid && c->cancel_key == key;
}

/* Slot holding the key, or the empty slot where it would go. cap > 0. */
static size_t find_slot(const struct cancel_index *ix, uint32_t pid, uint32_t key)
{
	size_t mask = ix->cap - 1;
	size_t i = hash_of(pid, key) & mask;
	while (ix->slots[i] && !same_key(ix->slots[i], pid, key))
		i = (i + 1) & mask;
	return i;
}

static void grow(struct cancel_index *ix)
{
	struct client **old = ix->slots;
	size_t oldcap = ix->cap;
	ix->cap = oldcap ? oldcap * 2 : 64;
	ix->slots = xcalloc(ix->cap, sizeof(*ix->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i])
			ix->slots[find_slot(ix, old[i]->cancel_pid, old[i]->cancel_key)] = old[i];
	free(old);
}

bool cancel_index_add(struct cancel_index *ix, struct client *c)
{
	/* Load at most 1/2: probes stay short (8 bytes a slot). */
	if ((ix->count + 1) * 2 > ix->cap)
		grow(ix);
	size_t i = find_slot(ix, c->cancel_pid, c->cancel_key);
	if (ix->slots[i])
		return ix->slots[i] == c;
	ix->slots[i] = c;
	ix->count++;
	return true;
}

/* Backward-shift deletion: no tombstones, so lookups never slow down. */
static void remove_at(struct cancel_index *ix, size_t i)
{
	size_t mask = ix->cap - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		const struct client *c = ix->slots[j];
		if (!c)
			break;
		size_t home = hash_of(c->cancel_pid, c->cancel_key) & mask;
		/* Move j back into the hole at i unless its home lies in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		ix->slots[i] = ix->slots[j];
		i = j;
	}
	ix->slots[i] = NULL;
	ix->count--;
}

void cancel_index_del(struct cancel_index *ix, const struct client *c)
{
	if (!ix->count)
		return;
	size_t i = find_slot(ix, c->cancel_pid, c->cancel_key);
	if (ix->slots[i] == c)
		remove_at(ix, i);
}

struct client *cancel_index_find(const struct cancel_index *ix, uint32_t pid, uint32_t key)
{
	if (!ix->count)
		return NULL;
	return ix->slots[find_slot(ix, pid, key)];
}

void cancel_index_clear(struct cancel_index *ix)
{
	free(ix->slots);
	*ix = (struct cancel_index){ 0 };
}
