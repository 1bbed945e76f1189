/* Frontend connections: startup, local authentication, and forwarding to
 * the linked server. */
#ifndef TB_POOL_CLIENT_H
#define TB_POOL_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/mustcheck.h"
#include "pool/pool-t.h"

struct worker;

void client_accept(struct worker *w, int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix);
/* The one way to end a client: optional FATAL ErrorResponse, one log line,
 * release or close of its server, and a deferred free. sqlstate NULL sends nothing. */
void client_close(struct client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A non-fatal ErrorResponse plus ReadyForQuery, for a request that cannot be
 * served. False when sending it closed the client. */
TB_MUSTCHECK bool client_send_error(struct client *c, const char *sqlstate, const char *msg);
/* Local authentication succeeded: attach to the pool and finish the login.
 * These two return false when they closed the client. */
TB_MUSTCHECK bool client_auth_ok(struct client *c);
/* The pool has its welcome parameters: send the login reply. */
TB_MUSTCHECK bool client_finish_login(struct client *c);
/* The linked server is ready (synced): resume forwarding what the client sent. */
void client_server_ready(struct client *c);
/* The linked server was lost before the client's bytes were sent: wait for another. */
void client_requeue(struct client *c);
/* Bytes for the client; false if the client was lost. */
TB_MUSTCHECK bool client_send(struct client *c, const void *data, size_t len);
/* Transaction or statement mode: the server went back to the pool. */
void client_detached(struct client *c);
/* The server's queue drained: read from the client again. */
void client_resume(struct client *c);
void client_free(struct client *c);
const char *client_state_name(enum client_state st);
/* "C-12 alice@app (127.0.0.1:5555)" style prefix for log lines. */
void client_log_prefix(const struct client *c, char *buf, size_t len);
/* A CancelRequest arrived: find the client it names. */
struct client *client_find_by_cancel_key(struct worker *w, uint32_t pid, uint32_t key);
#endif
