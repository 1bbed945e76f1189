#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/util.h"

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3) \
	do { \
		v0 += v1; \
		v1 = rotl(v1, 13); \
		v1 ^= v0; \
		v0 = rotl(v0, 32); \
		v2 += v3; \
		v3 = rotl(v3, 16); \
		v3 ^= v2; \
		v0 += v3; \
		v3 = rotl(v3, 21); \
		v3 ^= v0; \
		v2 += v1; \
		v1 = rotl(v1, 17); \
		v1 ^= v2; \
		v2 = rotl(v2, 32); \
	} while (0)

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t strmap_siphash(const unsigned char key[16], const void *data, size_t len)
{
	const unsigned char *in = data;
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	size_t whole = len & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(in + i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	uint64_t last = (uint64_t)len << 56;
	for (size_t i = 0; i < (len & 7); i++)
		last |= (uint64_t)in[whole + i] << (8 * i);
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash_key(const char *key)
{
	static unsigned char seed[16];
	static bool seeded;
	if (!seeded) {
		/* getrandom, not random_bytes: the config is indexed at start-up, and
		 * OpenSSL's DRBG would initialise libcrypto's providers (~2 MB of
		 * resident memory) before anything needs them. Without entropy the
		 * map still works; only flooding resistance is lost. */
		if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
			memset(seed, 0x5a, sizeof(seed));
		seeded = true;
	}
	return strmap_siphash(seed, key, strlen(key));
}

/* Slot holding key, or the empty slot where it would go. cap > 0. */
static size_t find_slot(const struct strmap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)h & mask;
	while (m->slots[i].key) {
		if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

static void grow(struct strmap *m)
{
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap;
	m->cap = oldcap ? oldcap * 2 : 16;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			m->slots[find_slot(m, old[i].key, old[i].hash)] = old[i];
	free(old);
}

void *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->count)
		return NULL;
	size_t i = find_slot(m, key, hash_key(key));
	return m->slots[i].key ? m->slots[i].value : NULL;
}

void strmap_put(struct strmap *m, const char *key, void *value)
{
	/* Load at most 1/2: probes stay short. */
	if ((m->count + 1) * 2 > m->cap)
		grow(m);
	uint64_t h = hash_key(key);
	size_t i = find_slot(m, key, h);
	if (!m->slots[i].key)
		m->count++;
	m->slots[i] = (struct strmap_slot){ .key = key, .hash = h, .value = value };
}

/* Backward-shift deletion: no tombstones, so lookups never slow down. */
static void remove_at(struct strmap *m, size_t i)
{
	size_t mask = m->cap - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!m->slots[j].key)
			break;
		size_t home = (size_t)m->slots[j].hash & mask;
		/* Move j back into the hole at i unless its home lies in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	m->slots[i] = (struct strmap_slot){ 0 };
	m->count--;
}

static bool del_matching(struct strmap *m, const char *key, const void *value, bool any)
{
	if (!m->count)
		return false;
	size_t i = find_slot(m, key, hash_key(key));
	if (!m->slots[i].key || (!any && m->slots[i].value != value))
		return false;
	remove_at(m, i);
	return true;
}

bool strmap_del(struct strmap *m, const char *key)
{
	return del_matching(m, key, NULL, true);
}

bool strmap_del_value(struct strmap *m, const char *key, const void *value)
{
	return del_matching(m, key, value, false);
}

void strmap_clear(struct strmap *m)
{
	free(m->slots);
	*m = (struct strmap){ 0 };
}
