/* The console: a virtual database served by a module outside the pool (the
 * admin console in admin/). The pool knows it only through these operations,
 * which main.c registers, so pool/ depends on nothing above it. With none
 * registered (unit tests, the doctor) no database name is the console. */
#ifndef TB_POOL_CONSOLE_H
#define TB_POOL_CONSOLE_H
#include <stdbool.h>

#include "core/mustcheck.h"
#include "pool/pool-t.h"

struct console_ops {
	/* True for the console's database names. */
	bool (*is_console_db)(const char *dbname);
	/* Local authentication succeeded: the console takes the client over
	 * (it is on no list) and sends the login reply or closes it. False: it
	 * closed the client. */
	bool (*login)(struct client *c);
	/* A console client in CL_IDLE has bytes buffered. False: the client is
	 * closed. */
	bool (*process)(struct client *c);
};

/* ops must live as long as the process; NULL unregisters. */
void console_register(const struct console_ops *ops);
bool console_is_db(const char *dbname);
/* Only for clients with is_admin set, which console_is_db admitted. */
TB_MUSTCHECK bool console_login(struct client *c);
TB_MUSTCHECK bool console_process(struct client *c);
#endif
