/* The admin console: a virtual database ("tokenbouncer", or "pgbouncer" for
 * existing tools) served on the same listeners over the simple query
 * protocol, with PgBouncer-compatible SHOW output and control commands.
 * The pool reaches it only through the operations main.c registers; the
 * console's own files share include/admin/admin_priv.h. */
#ifndef TB_ADMIN_ADMIN_H
#define TB_ADMIN_ADMIN_H
#include "pool/console.h"

struct worker;
struct admin_state;
struct stats_ring;

/* Give a worker its console state and statistics ring (storage the caller
 * owns for the worker's life), initialised empty. */
void admin_attach(struct worker *w, struct admin_state *console, struct stats_ring *stats);

/* For console_register. */
extern const struct console_ops admin_console;
/* For janitor_hook_add: completes commands that wait (PAUSE, WAIT_CLOSE,
 * SHUTDOWN) and takes the statistics snapshots. */
void admin_tick(struct worker *w);
/* SIGUSR1 and SIGUSR2: PAUSE and RESUME of every database. */
void control_signal_pause(struct worker *w);
void control_signal_resume(struct worker *w);
#endif
