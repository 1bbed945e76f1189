/* Protocol-level named prepared statements in transaction and statement
 * mode: the state, without the forwarding (ps_forward.h does that).
 *
 * - The statement cache, one per loop (struct worker): one entry per unique
 *   (query text, parameter type OIDs), named TB_<n>, holding the Parse
 *   message servers get for it. Entries are reference counted and the text
 *   is held once however many clients and servers use it.
 * - Per client: its statement names mapped to cache entries.
 * - Per server: which cache entries it has prepared, least recently used
 *   first, so that at max_prepared_statements the oldest is closed.
 *
 * Pure data structures: no sockets, no configuration, unit-tested. */
#ifndef TB_POOL_PREPARED_H
#define TB_POOL_PREPARED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"

#define PS_NAME_PREFIX "TB_"

/* One loop's statement cache (a field of struct worker): entries by key,
 * shared by that loop's clients and servers. */
struct ps_cache {
	struct ps_stmt **buckets;
	uint32_t nbuckets, count;
	uint64_t next_id;
	size_t bytes;
};

struct ps_stmt {
	struct ps_cache *cache; /* the one it is in */
	uint64_t id;
	uint32_t hash;
	uint32_t refs; /* client names, server nodes and queued requests */
	struct ps_stmt *hnext;
	uint32_t key_len; /* query text, NUL, parameter count and OIDs */
	uint32_t parse_len;
	unsigned char *parse; /* the whole Parse message servers get: 'P', length, name, key */
	char name[24];        /* TB_<id> */
};

/* The cache entry for this key (the bytes of a Parse body after its name),
 * created on first use; one reference more for the caller. */
struct ps_stmt *ps_cache_get(struct ps_cache *pc, const unsigned char *key, size_t key_len);
void ps_stmt_ref(struct ps_stmt *st);
void ps_stmt_unref(struct ps_stmt *st);
const unsigned char *ps_stmt_key(const struct ps_stmt *st);
size_t ps_cache_count(const struct ps_cache *pc);
/* Bytes held by the cache: entries and their Parse messages. */
size_t ps_cache_bytes(const struct ps_cache *pc);

struct ps_client;

/* One statement name of one client. A queued request may still point at a
 * name the client has closed meanwhile: such a name is unlinked (owner NULL)
 * and freed when the last request lets go. */
struct ps_name {
	struct ps_name *hnext;
	struct ps_client *owner; /* NULL once closed or its client gone */
	struct ps_stmt *stmt;
	uint32_t hash;
	uint32_t qrefs;
	char name[];
};

struct ps_client {
	struct ps_name **buckets;
	uint32_t nbuckets, count;
};

struct ps_client *ps_client_new(void);
void ps_client_free(struct ps_client *m);
/* NULL m: an empty map. */
struct ps_name *ps_client_find(const struct ps_client *m, const char *name);
/* The name must not be mapped yet. Takes its own reference on st. */
struct ps_name *ps_client_add(struct ps_client *m, const char *name, struct ps_stmt *st);
/* Unmap a name (it stays allocated while requests hold it). */
void ps_name_remove(struct ps_name *n);
void ps_name_hold(struct ps_name *n);
void ps_name_put(struct ps_name *n);
void ps_client_clear(struct ps_client *m);

/* One cache entry on one server. 'closing': the pooler sent Close for it and
 * the server has not confirmed; until then a new Parse of it is preceded by
 * another Close, in case an error made the server skip the first. */
struct ps_snode {
	struct ps_snode *hnext;
	struct ps_stmt *stmt;
	struct list_node lru; /* ps_sset.lru while prepared */
	uint64_t gen;         /* which Parse or Close of it is the latest */
	bool closing;
};

struct ps_sset {
	struct ps_snode **buckets;
	uint32_t nbuckets, count; /* count: prepared (not closing) nodes */
	uint32_t nnodes;
	struct list_node lru; /* least recently used first */
	uint64_t next_gen;
	uint32_t discards; /* DISCARD ALL / DEALLOCATE ALL sent, not yet confirmed */
	bool unsure;       /* a Close or discard went unanswered: always Close before Parse */
};

void ps_sset_init(struct ps_sset *s);
void ps_sset_free(struct ps_sset *s);
struct ps_snode *ps_sset_find(const struct ps_sset *s, const struct ps_stmt *st);
/* Record a Parse of st sent now; returns its node with a fresh gen. */
struct ps_snode *ps_sset_prepare(struct ps_sset *s, struct ps_stmt *st);
void ps_sset_touch(struct ps_sset *s, struct ps_snode *n);
/* The least recently used prepared node, or NULL. */
struct ps_snode *ps_sset_oldest(const struct ps_sset *s);
/* Record a Close of the node sent now; returns its gen. */
uint64_t ps_sset_closing(struct ps_sset *s, struct ps_snode *n);
/* Forget the node if its latest Parse or Close is the one with this gen. */
void ps_sset_forget(struct ps_sset *s, const struct ps_stmt *st, uint64_t gen);
/* The server dropped all its statements (DISCARD ALL, DEALLOCATE ALL). */
void ps_sset_clear(struct ps_sset *s);
/* A Parse of st must be preceded by a Close of it. */
bool ps_sset_needs_close(const struct ps_sset *s, const struct ps_stmt *st);
#endif
