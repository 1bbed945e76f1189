/* The console's state of one loop (a field of struct worker). */
#ifndef TB_ADMIN_ADMIN_T_H
#define TB_ADMIN_ADMIN_T_H
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

struct admin_state {
	struct list_node clients;  /* console clients logged in, through client.node */
	struct list_node sessions; /* struct admin_session (admin/admin.c) */
	/* runtime_begin_shutdown runs the janitor, which runs admin_tick: never
	 * in the middle of a command. */
	bool busy;
	bool paused_all; /* PAUSE without a database: databases created later are paused too */
	/* The console client that ran SUSPEND: if it leaves, RESUME (as PgBouncer). */
	uint64_t suspend_owner;
};
#endif
