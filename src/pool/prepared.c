#include "pool/prepared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static uint32_t hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- the shared statement cache ---- */

const unsigned char *ps_stmt_key(const struct ps_stmt *st)
{
	return st->parse + st->parse_len - st->key_len;
}

static struct ps_stmt *stmt_new(struct ps_cache *pc, const unsigned char *key, size_t key_len, uint32_t h)
{
	struct ps_stmt *st = xcalloc(1, sizeof(*st));
	st->cache = pc;
	st->id = ++pc->next_id;
	st->hash = h;
	snprintf(st->name, sizeof(st->name), PS_NAME_PREFIX "%llu", (unsigned long long)st->id);
	size_t nlen = strlen(st->name) + 1;
	st->key_len = (uint32_t)key_len;
	st->parse_len = (uint32_t)(5 + nlen + key_len);
	st->parse = xmalloc(st->parse_len);
	uint32_t wire = st->parse_len - 1;
	st->parse[0] = 'P';
	st->parse[1] = (unsigned char)(wire >> 24);
	st->parse[2] = (unsigned char)(wire >> 16);
	st->parse[3] = (unsigned char)(wire >> 8);
	st->parse[4] = (unsigned char)wire;
	memcpy(st->parse + 5, st->name, nlen);
	memcpy(st->parse + 5 + nlen, key, key_len);
	pc->bytes += sizeof(*st) + st->parse_len;
	return st;
}

/* Tables double when they hold more than two entries per bucket. */
static void grow_cache(struct ps_cache *pc)
{
	uint32_t nb = pc->nbuckets ? pc->nbuckets * 2 : 64;
	struct ps_stmt **b = xcalloc(nb, sizeof(*b));
	for (uint32_t i = 0; i < pc->nbuckets; i++) {
		struct ps_stmt *st = pc->buckets[i];
		while (st) {
			struct ps_stmt *next = st->hnext;
			st->hnext = b[st->hash & (nb - 1)];
			b[st->hash & (nb - 1)] = st;
			st = next;
		}
	}
	free(pc->buckets);
	pc->buckets = b;
	pc->nbuckets = nb;
}

struct ps_stmt *ps_cache_get(struct ps_cache *pc, const unsigned char *key, size_t key_len)
{
	uint32_t h = hash_bytes(key, key_len);
	if (pc->nbuckets) {
		for (struct ps_stmt *st = pc->buckets[h & (pc->nbuckets - 1)]; st; st = st->hnext) {
			if (st->hash == h && st->key_len == key_len &&
			    memcmp(ps_stmt_key(st), key, key_len) == 0) {
				st->refs++;
				return st;
			}
		}
	}
	if (pc->count >= pc->nbuckets * 2)
		grow_cache(pc);
	struct ps_stmt *st = stmt_new(pc, key, key_len, h);
	st->refs = 1;
	struct ps_stmt **b = &pc->buckets[h & (pc->nbuckets - 1)];
	st->hnext = *b;
	*b = st;
	pc->count++;
	return st;
}

void ps_stmt_ref(struct ps_stmt *st)
{
	st->refs++;
}

void ps_stmt_unref(struct ps_stmt *st)
{
	if (!st || --st->refs > 0)
		return;
	struct ps_cache *pc = st->cache;
	struct ps_stmt **link = &pc->buckets[st->hash & (pc->nbuckets - 1)];
	while (*link != st)
		link = &(*link)->hnext;
	*link = st->hnext;
	pc->count--;
	pc->bytes -= sizeof(*st) + st->parse_len;
	free(st->parse);
	free(st);
}

size_t ps_cache_count(const struct ps_cache *pc)
{
	return pc->count;
}

size_t ps_cache_bytes(const struct ps_cache *pc)
{
	return pc->bytes;
}

/* ---- per-client names ---- */

struct ps_client *ps_client_new(void)
{
	return xcalloc(1, sizeof(struct ps_client));
}

struct ps_name *ps_client_find(const struct ps_client *m, const char *name)
{
	if (!m || !m->nbuckets)
		return NULL;
	uint32_t h = hash_bytes(name, strlen(name));
	for (struct ps_name *n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->hnext)
		if (n->hash == h && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static void grow_names(struct ps_client *m)
{
	uint32_t nb = m->nbuckets ? m->nbuckets * 2 : 8;
	struct ps_name **b = xcalloc(nb, sizeof(*b));
	for (uint32_t i = 0; i < m->nbuckets; i++) {
		struct ps_name *n = m->buckets[i];
		while (n) {
			struct ps_name *next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

struct ps_name *ps_client_add(struct ps_client *m, const char *name, struct ps_stmt *st)
{
	if (m->count >= m->nbuckets * 2)
		grow_names(m);
	size_t len = strlen(name);
	struct ps_name *n = xcalloc(1, sizeof(*n) + len + 1);
	memcpy(n->name, name, len + 1);
	n->hash = hash_bytes(name, len);
	n->owner = m;
	n->stmt = st;
	ps_stmt_ref(st);
	struct ps_name **b = &m->buckets[n->hash & (m->nbuckets - 1)];
	n->hnext = *b;
	*b = n;
	m->count++;
	return n;
}

static void name_free_if_unused(struct ps_name *n)
{
	if (n->owner || n->qrefs)
		return;
	ps_stmt_unref(n->stmt);
	free(n);
}

void ps_name_remove(struct ps_name *n)
{
	struct ps_client *m = n->owner;
	if (!m)
		return;
	struct ps_name **link = &m->buckets[n->hash & (m->nbuckets - 1)];
	while (*link != n)
		link = &(*link)->hnext;
	*link = n->hnext;
	n->hnext = NULL;
	n->owner = NULL;
	m->count--;
	name_free_if_unused(n);
}

void ps_name_hold(struct ps_name *n)
{
	n->qrefs++;
}

void ps_name_put(struct ps_name *n)
{
	if (n->qrefs)
		n->qrefs--;
	name_free_if_unused(n);
}

void ps_client_clear(struct ps_client *m)
{
	for (uint32_t i = 0; i < m->nbuckets; i++)
		while (m->buckets[i])
			ps_name_remove(m->buckets[i]);
}

void ps_client_free(struct ps_client *m)
{
	if (!m)
		return;
	ps_client_clear(m);
	free(m->buckets);
	free(m);
}

/* ---- per-server sets ---- */

void ps_sset_init(struct ps_sset *s)
{
	memset(s, 0, sizeof(*s));
	list_init(&s->lru);
}

static uint32_t id_hash(const struct ps_stmt *st)
{
	return hash_bytes(&st->id, sizeof(st->id));
}

struct ps_snode *ps_sset_find(const struct ps_sset *s, const struct ps_stmt *st)
{
	if (!s->nbuckets)
		return NULL;
	for (struct ps_snode *n = s->buckets[id_hash(st) & (s->nbuckets - 1)]; n; n = n->hnext)
		if (n->stmt == st)
			return n;
	return NULL;
}

static void snode_unlink(struct ps_sset *s, struct ps_snode *n)
{
	struct ps_snode **link = &s->buckets[id_hash(n->stmt) & (s->nbuckets - 1)];
	while (*link != n)
		link = &(*link)->hnext;
	*link = n->hnext;
	if (!n->closing) {
		list_del(&n->lru);
		s->count--;
	}
	s->nnodes--;
	ps_stmt_unref(n->stmt);
	free(n);
}

static void grow_sset(struct ps_sset *s)
{
	uint32_t nb = s->nbuckets ? s->nbuckets * 2 : 16;
	struct ps_snode **b = xcalloc(nb, sizeof(*b));
	for (uint32_t i = 0; i < s->nbuckets; i++) {
		struct ps_snode *n = s->buckets[i];
		while (n) {
			struct ps_snode *next = n->hnext;
			uint32_t h = id_hash(n->stmt) & (nb - 1);
			n->hnext = b[h];
			b[h] = n;
			n = next;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

struct ps_snode *ps_sset_prepare(struct ps_sset *s, struct ps_stmt *st)
{
	struct ps_snode *n = ps_sset_find(s, st);
	if (!n) {
		if (s->nnodes >= s->nbuckets * 2)
			grow_sset(s);
		n = xcalloc(1, sizeof(*n));
		n->stmt = st;
		ps_stmt_ref(st);
		n->closing = true; /* joins the list below */
		struct ps_snode **b = &s->buckets[id_hash(st) & (s->nbuckets - 1)];
		n->hnext = *b;
		*b = n;
		s->nnodes++;
	}
	if (n->closing) {
		n->closing = false;
		list_add_tail(&s->lru, &n->lru);
		s->count++;
	} else {
		ps_sset_touch(s, n);
	}
	n->gen = ++s->next_gen;
	return n;
}

void ps_sset_touch(struct ps_sset *s, struct ps_snode *n)
{
	if (!n->closing)
		list_move_tail(&s->lru, &n->lru);
}

struct ps_snode *ps_sset_oldest(const struct ps_sset *s)
{
	struct list_node *first = list_first(&s->lru);
	return first ? list_entry(first, struct ps_snode, lru) : NULL;
}

uint64_t ps_sset_closing(struct ps_sset *s, struct ps_snode *n)
{
	if (!n->closing) {
		list_del(&n->lru);
		s->count--;
		n->closing = true;
	}
	n->gen = ++s->next_gen;
	return n->gen;
}

void ps_sset_forget(struct ps_sset *s, const struct ps_stmt *st, uint64_t gen)
{
	struct ps_snode *n = ps_sset_find(s, st);
	if (n && n->gen == gen)
		snode_unlink(s, n);
}

void ps_sset_clear(struct ps_sset *s)
{
	for (uint32_t i = 0; i < s->nbuckets; i++)
		while (s->buckets[i])
			snode_unlink(s, s->buckets[i]);
}

void ps_sset_free(struct ps_sset *s)
{
	ps_sset_clear(s);
	free(s->buckets);
	s->buckets = NULL;
	s->nbuckets = 0;
}

bool ps_sset_needs_close(const struct ps_sset *s, const struct ps_stmt *st)
{
	if (s->unsure || s->discards)
		return true;
	const struct ps_snode *n = ps_sset_find(s, st);
	return n && n->closing;
}
