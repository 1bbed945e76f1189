/* What a server connection still owes its client: the answers the pooler
 * must see before the connection may carry anyone else's bytes. Fed with the
 * type bytes of the messages going each way; pure, so the accounting can be
 * fuzzed against a model of the backend without sockets.
 *
 * The count is kept conservative: a ReadyForQuery is expected for every
 * Query, Sync and FunctionCall sent, even where the backend may skip one (a
 * Sync sent during COPY IN), so the pooler can wait too long (and then
 * close the server) but never hands over a connection with answers pending. */
#ifndef TB_PG_FLOW_H
#define TB_PG_FLOW_H
#include <stdbool.h>
#include <stdint.h>

struct pg_flow {
	uint32_t owed_rfq;   /* Query, Sync, FunctionCall not yet answered by ReadyForQuery */
	bool unsynced;       /* extended-protocol messages sent since the last Sync */
	bool copy_in;        /* the server asked for CopyData and the client has not ended it */
	bool copy_out;       /* the server streams CopyData until CopyDone */
	char tx_status;      /* of the last ReadyForQuery: 'I', 'T' or 'E' */
};

enum pg_flow_kind {
	PG_FLOW_REQUEST = 0, /* a frontend message to forward */
	PG_FLOW_TERMINATE,   /* 'X' */
	PG_FLOW_INVALID,     /* not a frontend message of the query phase */
};

void pg_flow_init(struct pg_flow *f);
/* What a frontend message type is, without changing any flow. */
enum pg_flow_kind pg_flow_classify(char type);
/* A frontend message the client sends; returns what kind it is. The flow
 * changes only for PG_FLOW_REQUEST. */
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
