/* What a server connection still owes its client: the answers the pooler
 * must see before the connection may carry anyone else's bytes. Fed with the
 * type bytes of the messages going each way; pure, so the accounting can be
 * fuzzed against a model of the backend without sockets.
 *
 * It is exact for what a backend does, including the rule that after an
 * error in an extended-protocol message the backend skips every message up
 * to the next Sync (Queries too, which then get no ReadyForQuery): each owed
 * ReadyForQuery is one entry of a ring that remembers how many extended
 * messages precede it, so an ErrorResponse can be attributed. Where the
 * stream leaves room for doubt (a Sync the client sent during COPY IN before
 * the pooler saw CopyInResponse, a ring that would outgrow its cap) the
 * flow errs on the side of "owed": the pooler then waits or drains, and
 * never hands over a connection with answers pending. */
#ifndef TB_PG_FLOW_H
#define TB_PG_FLOW_H
#include <stdbool.h>
#include <stdint.h>

#define PG_FLOW_RING_MAX (1u << 16) /* owed ReadyForQuery entries kept exactly */

struct pg_flow {
	uint32_t owed_rfq; /* Query, FunctionCall, Sync not yet answered by ReadyForQuery */
	uint32_t ext_tail; /* extended messages sent after the last Query/FunctionCall/Sync */
	bool batch;        /* extended messages sent since the last Query/FunctionCall/Sync */
	bool unsynced;     /* batch or skipping: the backend waits for a Sync */
	bool skipping;     /* an extended-protocol error: the backend skips up to the next Sync */
	bool inexact;      /* lost track (ring cap): never settled again; the server is drained */
	bool copy_in;      /* the server asked for CopyData and the client has not ended it */
	bool copy_out;     /* the server streams CopyData until CopyDone */
	char tx_status;    /* of the last ReadyForQuery: 'I', 'T' or 'E' */
	uint32_t *ring;    /* per owed ReadyForQuery: extended messages before it << 1 | is_sync */
	uint32_t cap, head;
};

enum pg_flow_kind {
	PG_FLOW_REQUEST = 0, /* a frontend message to forward */
	PG_FLOW_TERMINATE,   /* 'X' */
	PG_FLOW_INVALID,     /* not a frontend message of the query phase */
};

/* A fresh flow; pg_flow_clear frees its ring and starts over. */
void pg_flow_init(struct pg_flow *f);
void pg_flow_clear(struct pg_flow *f);
/* What a frontend message type is, without changing any flow. */
enum pg_flow_kind pg_flow_classify(char type);
/* A frontend message the client sends; returns what kind it is. */
enum pg_flow_kind pg_flow_client(struct pg_flow *f, char type);
/* A backend message on its way to the client; 'status' is the byte of a
 * ReadyForQuery (ignored otherwise). True when it was a ReadyForQuery that
 * answered an owed request. */
bool pg_flow_server(struct pg_flow *f, char type, char status);
/* Everything sent has been answered and no COPY is in progress. */
bool pg_flow_settled(const struct pg_flow *f);
/* Settled and outside a transaction block: the connection may be reused. */
bool pg_flow_reusable(const struct pg_flow *f);
#endif
