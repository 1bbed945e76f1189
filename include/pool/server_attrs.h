/* target_session_attrs applied to a server that has just logged in. */
#ifndef TB_POOL_SERVER_ATTRS_H
#define TB_POOL_SERVER_ATTRS_H
#include <stdbool.h>

#include "pool/pool-t.h"

/* True: the server may be used. False: it was closed, and either another
 * host is tried next (the pool opens a server for its waiting clients) or,
 * when every host of the list was refused in a row, the failure is recorded
 * and the waiting clients get it, as after a failed login. */
bool server_attrs_accept(struct server *s);
#endif
