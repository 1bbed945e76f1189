/* Every pool of every database, in one loop instead of a database loop and a
 * pool loop at each site. Safe iteration: the current pool may be unlinked or
 * freed by the loop body (the next one is fetched beforehand), and break and
 * continue mean what they say. A body that frees a database must use its own
 * loop. */
#ifndef TB_POOL_POOL_ITER_H
#define TB_POOL_POOL_ITER_H
#include "core/list.h"

struct pool;
struct server;
struct worker;

struct pool_iter {
	struct list_node *head;             /* the worker's databases */
	struct list_node *db, *db_next;     /* in head */
	struct list_node *pool, *pool_next; /* in the current database's pools */
};

struct pool *pool_iter_first(struct pool_iter *it, struct worker *w);
struct pool *pool_iter_next(struct pool_iter *it);

/* for_each_pool(w, p) { ... p->db ... } declares p and its iterator. */
#define for_each_pool(w, p) \
	for (struct pool_iter p##_iter_, *p##_once_ = &p##_iter_; p##_once_; p##_once_ = NULL) \
		for (struct pool *p = pool_iter_first(&p##_iter_, (w)); p; p = pool_iter_next(&p##_iter_))

/* Every server of every pool, each pool's idle, active, used and new lists in
 * that order; the same safety as for_each_pool (the current server may be
 * closed and unlinked by the body). */
struct server_iter {
	struct pool_iter pools;
	struct pool *pool;
	int list; /* which of the pool's four lists */
	struct list_node *node, *next;
};

struct server *server_iter_first(struct server_iter *it, struct worker *w);
struct server *server_iter_next(struct server_iter *it);

#define for_each_server(w, s) \
	for (struct server_iter s##_iter_, *s##_once_ = &s##_iter_; s##_once_; s##_once_ = NULL) \
		for (struct server *s = server_iter_first(&s##_iter_, (w)); s; \
		     s = server_iter_next(&s##_iter_))
#endif
