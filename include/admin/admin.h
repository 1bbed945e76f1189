/* The admin console: a virtual database ("tokenbouncer", or "pgbouncer" for
 * existing tools) served on the same listeners over the simple query
 * protocol, with PgBouncer-compatible SHOW output and control commands. */
#ifndef TB_ADMIN_ADMIN_H
#define TB_ADMIN_ADMIN_H
#include <stdbool.h>

#include "pool/pool-t.h"

/* True for the console's database names. */
bool admin_is_console_db(const char *dbname);
/* Local authentication succeeded for a console client: check admin_users /
 * stats_users, then send the login reply (state CL_IDLE, no pool). */
void admin_login(struct client *c);
/* A console client in CL_IDLE has bytes buffered: handle whole messages. */
void admin_process(struct client *c);
/* Called by the janitor: completes commands that wait (PAUSE, WAIT_CLOSE, SHUTDOWN). */
void admin_tick(void);
#endif
