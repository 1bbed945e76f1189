/* Client connection limits per database alias and per user name
 * (max_db_client_connections, max_user_client_connections), with counts
 * kept as clients come and go, so a login never walks the client list. */
#ifndef TB_POOL_CLIMIT_H
#define TB_POOL_CLIMIT_H
#include <stdbool.h>

struct worker;
struct client;

/* The counts of one loop (a field of struct worker): two small chained hash
 * tables keyed by name. */
#define CLIMIT_BUCKETS 256
struct climit_table {
	struct name_count *bucket[CLIMIT_BUCKETS];
};
struct climit_state {
	struct climit_table by_db, by_user;
};

/* Count the client under its alias and user name; false (and it is not
 * counted) if either limit is reached: the caller refuses the login with
 * SQLSTATE 53300 and the message in why. Console clients are not counted. */
bool climit_admit(struct client *c, const char **why);
/* Undo climit_admit; safe to call for a client that was never counted. */
void climit_release(struct client *c);
/* Current counts, for SHOW DATABASES and SHOW USERS. */
int climit_db_clients(struct worker *w, const char *alias);
int climit_user_clients(struct worker *w, const char *user);
/* The limits in force (0: none). */
int climit_db_max(struct worker *w, const char *alias);
int climit_user_max(struct worker *w, const char *user);
/* Drop every count (runtime shutdown). */
void climit_reset(struct worker *w);
#endif
