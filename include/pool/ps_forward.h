/* Named prepared statements on the data path (transaction and statement
 * mode, max_prepared_statements > 0): the client's Parse, Bind, Describe and
 * Close of statements are rewritten to the pooler's names, the Parse a
 * server lacks is injected before the Bind or Describe that needs it, and
 * the answers are matched to what was sent through the server's answer
 * tracker (its respq, which this layer fills and is told of completions
 * by), so that absorbed and synthesized answers take their exact place in
 * the stream.
 *
 * client.c and server.c call these from their forwarding loops; all the
 * bookkeeping lives here and in prepared.c. */
#ifndef TB_POOL_PS_FORWARD_H
#define TB_POOL_PS_FORWARD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mustcheck.h"
#include "pool/pool-t.h"
#include "pool/respq.h"

struct pbuf;

/* At login: does this client get statement tracking? */
void ps_client_attach(struct client *c);
void ps_client_detach(struct client *c);
/* After the server's tracker is freed (which reports its entries here). */
void ps_server_free(struct server *s);
/* The pooler runs this reset query on the server: forget what it drops. */
void ps_server_reset(struct server *s, const char *sql);
/* Number of statements a client has named, a server has prepared. */
uint32_t ps_client_count(const struct client *c);
uint32_t ps_server_count(const struct server *s);

/* ---- client side ---- */

/* The message must be read whole before it is forwarded. */
bool ps_wants_whole(char type, uint32_t len);
/* A whole client message (msg points at its type byte, len counts it all):
 * append to 'out' what the server gets for it and queue the answers. False
 * if it is malformed (the caller closes the client with a protocol error). */
bool ps_client_msg(struct client *c, struct server *s, const unsigned char *msg, size_t len, struct pbuf *out);
/* A message that streams through unchanged: queue its answer. */
void ps_client_streamed(struct server *s, char type);
/* After sending: answers the pooler makes that are due now go to the client.
 * False when that closed the client (and released the server). */
TB_MUSTCHECK bool ps_flush_synth(struct server *s);

/* ---- server side ---- */

/* The client left: forget the answers owed to it (the tracker keeps them
 * owed, so the server is drained). If any were, what the server has
 * prepared is no longer known exactly, so every Parse on it is preceded by
 * a Close from now on. */
void ps_server_abandon(struct server *s);
/* The server's answers are acted on by this layer (its client tracks statements). */
bool ps_server_active(const struct server *s);
/* The message at the queue's head must be read whole (it may be absorbed). */
bool ps_server_wants_whole(const struct server *s);
/* The bytes that stand in for a replaced message (RQV_REPLACE); body is the
 * replaced message's, whole. */
TB_MUSTCHECK bool ps_send_replacement(struct server *s, const struct rq_entry *answered,
				      const unsigned char *body, size_t len);
bool ps_synth_due(const struct server *s);
/* Send the synthesized answers now due; the stream before them was flushed.
 * False as ps_flush_synth. */
TB_MUSTCHECK bool ps_release_synth(struct server *s);
#endif
