/* Cancel requests the pooler forwards to a backend, each on a connection of
 * its own; the server is held back from reuse until the backend handled it. */
#ifndef TB_POOL_CANCEL_H
#define TB_POOL_CANCEL_H
#include "pool/pool-t.h"

/* Send a CancelRequest with this server's real key on a new connection. */
void server_forward_cancel(struct server *s);
/* The same for a client's CancelRequest: its connection (requester_fd, owned
 * from here on) is closed only once the server has handled the cancel, as a
 * server closes it, so the client cannot send its next query before the
 * cancel has landed and have that query cancelled instead. */
void server_forward_cancel_for(struct server *s, int requester_fd);
/* A closing server forgets its cancels in flight; they finish on their own. */
void server_cancels_forget(struct server *s);
/* Release cancel requests still in flight (shutdown). */
void server_cancels_shutdown(struct worker *w);
#endif
