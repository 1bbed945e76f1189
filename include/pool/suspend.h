/* SUSPEND (PgBouncer's): flush every client and server socket and stop
 * reading them, and accept nothing, until RESUME. The console is left alone
 * so that RESUME can arrive. */
#ifndef TB_POOL_SUSPEND_H
#define TB_POOL_SUSPEND_H
#include <stdbool.h>

struct worker;

/* Hold (true) or release (false) every non-console socket and the listeners. */
void suspend_all(struct worker *w, bool on);
/* While suspended: every held socket's output queue is empty. */
bool suspend_flushed(struct worker *w);
#endif
