/* A string-keyed hash index: open addressing with linear probing, keys
 * borrowed from the values they index (the caller keeps them alive while
 * they are in the map). A zeroed struct is an empty map, so objects made
 * with calloc need no init. Keys are hashed with SipHash-2-4 under a
 * per-process random key, so names chosen by clients cannot make the
 * probes long. */
#ifndef TB_CORE_STRMAP_H
#define TB_CORE_STRMAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
	const char *key; /* NULL: empty */
	uint64_t hash;
	void *value;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t count;
};

/* SipHash-2-4 of len bytes under a 16-byte key (exported for its unit test). */
uint64_t strmap_siphash(const unsigned char key[16], const void *data, size_t len);

/* The value for key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Add or replace. The key pointer is stored, not copied. */
void strmap_put(struct strmap *m, const char *key, void *value);
/* Remove key if present; true if it was. */
bool strmap_del(struct strmap *m, const char *key);
/* Remove key only if it maps to value (a retired object must not unlink its successor). */
bool strmap_del_value(struct strmap *m, const char *key, const void *value);
void strmap_clear(struct strmap *m);
#endif
