
#include <stddef.h>

#include "pool/pool-t.h"
#include "pool/pool_iter.h"
#include "pool/runtime.h"

/* From it->db on, the first database with a pool; NULL past the last one. */
static struct pool *first_in_db(struct pool_iter *it)
{
	for (; it->db != &rt.databases; it->db = it->db_next, it->db_next = it->db->next) {
		struct database *db = list_entry(it->db, struct database, node);
		if (list_empty(&db->pools))
			continue;
		it->pool = db->pools.next;
		it->pool_next = it->pool->next;
		return list_entry(it->pool, struct pool, node);
	}
	return NULL;
}

struct pool *pool_iter_first(struct pool_iter *it)
{
	it->db = rt.databases.next;
	it->db_next = it->db->next;
	return first_in_db(it);
}

struct pool *pool_iter_next(struct pool_iter *it)
{
	struct database *db = list_entry(it->db, struct database, node);
	if (it->pool_next != &db->pools) {
		it->pool = it->pool_next;
		it->pool_next = it->pool->next;
		return list_entry(it->pool, struct pool, node);
	}
	it->db = it->db_next;
	it->db_next = it->db->next;
	return first_in_db(it);
}
