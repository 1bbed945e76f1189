
#include <stddef.h>

#include "pool/pool-t.h"
#include "pool/pool_iter.h"
#include "pool/worker.h"

/* From it->db on, the first database with a pool; NULL past the last one. */
static struct pool *first_in_db(struct pool_iter *it)
{
	for (; it->db != it->head; it->db = it->db_next, it->db_next = it->db->next) {
		struct database *db = list_entry(it->db, struct database, node);
		if (list_empty(&db->pools))
			continue;
		it->pool = db->pools.next;
		it->pool_next = it->pool->next;
		return list_entry(it->pool, struct pool, node);
	}
	return NULL;
}

struct pool *pool_iter_first(struct pool_iter *it, struct worker *w)
{
	it->head = &w->databases;
	it->db = it->head->next;
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

static struct list_node *server_list(struct pool *p, int i)
{
	switch (i) {
	case 0:
		return &p->idle_servers;
	case 1:
		return &p->active_servers;
	case 2:
		return &p->used_servers;
	default:
		return &p->new_servers;
	}
}

#define SERVER_LISTS 4

/* From it->list of it->pool on, then the next pools: the first server. */
static struct server *server_from_here(struct server_iter *it)
{
	while (it->pool) {
		for (; it->list < SERVER_LISTS; it->list++) {
			struct list_node *head = server_list(it->pool, it->list);
			if (!list_empty(head)) {
				it->node = head->next;
				it->next = it->node->next;
				return list_entry(it->node, struct server, node);
			}
		}
		it->pool = pool_iter_next(&it->pools);
		it->list = 0;
	}
	return NULL;
}

struct server *server_iter_first(struct server_iter *it, struct worker *w)
{
	it->pool = pool_iter_first(&it->pools, w);
	it->list = 0;
	return server_from_here(it);
}

struct server *server_iter_next(struct server_iter *it)
{
	if (it->next != server_list(it->pool, it->list)) {
		it->node = it->next;
		it->next = it->node->next;
		return list_entry(it->node, struct server, node);
	}
	it->list++;
	return server_from_here(it);
}
