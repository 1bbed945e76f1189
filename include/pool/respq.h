/* What a server connection still owes its client: the one tracker of the
 * answers the pooler must see before the connection may carry anyone else's
 * bytes. One entry per message sent to the server that gets an answer (and
 * per answer the pooler makes up itself), in the order the server will send
 * them. It tells for each server message which request it answers and what
 * to do with it: forward it, absorb it (the pooler's own injected Parse and
 * Close), or replace it; it releases the pooler's synthesized answers exactly
 * at their place in the stream; and it answers the release questions (owed
 * ReadyForQuery, unsynced batch, COPY in progress, transaction status).
 *
 * It follows the backend's error rule: after an ErrorResponse to an
 * extended-protocol message, everything up to the next Sync is skipped and
 * gets no answer (Queries too, which then get no ReadyForQuery). Where the
 * stream leaves room for doubt (a message other than CopyData, CopyDone,
 * CopyFail or Flush during COPY IN, a COPY started with more requests queued
 * behind it, an answer that fits no request, a queue at its cap) it becomes
 * inexact for good: never settled again, so the pooler drains the server
 * rather than hand it over with answers pending.
 *
 * Pure: no sockets, no allocation beyond growing the ring, so it is
 * unit-tested and fuzzed (against a model of the backend too) on message
 * types alone. */
#ifndef TB_POOL_RESPQ_H
#define TB_POOL_RESPQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mustcheck.h"

/* What was sent, by the shape of its answer. */
enum rq_kind {
	RQ_PARSE = 0,       /* ParseComplete */
	RQ_BIND,            /* BindComplete */
	RQ_DESCRIBE_STMT,   /* ParameterDescription, then RowDescription or NoData */
	RQ_DESCRIBE_PORTAL, /* RowDescription or NoData */
	RQ_DESCRIBE,        /* streamed, either of the two: ParameterDescription optional */
	RQ_EXECUTE,         /* rows or COPY, then CommandComplete, EmptyQuery or PortalSuspended */
	RQ_CLOSE,           /* CloseComplete */
	RQ_SYNC,            /* ReadyForQuery */
	RQ_QUERY,           /* anything, then ReadyForQuery; errors skip nothing */
	RQ_FUNCTION,        /* FunctionCallResponse or an error, then ReadyForQuery */
	RQ_KIND_COUNT,
};

enum rq_action {
	RQ_FORWARD = 0,  /* the client's own request: its answer goes to the client */
	RQ_ABSORB,       /* the pooler's request: success answers dropped, an error forwarded */
	RQ_SYNTH,        /* not sent: the pooler answers it (ParseComplete, CloseComplete) */
	RQ_EMPTY_AS_TAG, /* an empty Query standing in for one the pooler answered: its
			      * EmptyQueryResponse becomes a CommandComplete (tag in 'arg') */
	RQ_RENAME_ERROR, /* the client's request under the pooler's statement name: an
			      * ErrorResponse is replaced by one that names the client's statement */
};

enum rq_result {
	RQ_OK = 0,  /* answered without an error */
	RQ_FAILED,  /* answered with an ErrorResponse */
	RQ_SKIPPED, /* never answered: an earlier error skipped it */
};

/* What to do with one server message. */
enum rq_verdict {
	RQV_FORWARD = 0,
	RQV_DROP,     /* absorb: do not pass it on */
	RQV_REPLACE,  /* drop it and send the entry's replacement instead (RQ_EMPTY_AS_TAG,
			      * RQ_RENAME_ERROR) */
	RQV_CONFUSED, /* the answer fits no request: the bookkeeping cannot be trusted */
};

struct rq_entry {
	uint8_t kind;    /* enum rq_kind */
	uint8_t action;  /* enum rq_action */
	uint8_t op;      /* what the owner does when it completes; opaque here */
	bool seen_error; /* QUERY/SYNC/FUNCTION: an ErrorResponse was part of the answer */
	bool started;    /* DESCRIBE_STMT: its ParameterDescription came */
	void *arg;       /* owner's data for 'op' */
	void *arg2;
	uint64_t aux;
};

struct respq;
/* Called once per entry when its answer is complete, failed or skipped. */
typedef void (*rq_done_fn)(void *ctx, const struct rq_entry *e, enum rq_result r);
/* Called for an RQ_SYNTH entry when its answer is due (never for a skipped
 * one). False: sending it closed the owner, which may have freed the queue. */
typedef bool (*rq_emit_fn)(void *ctx, const struct rq_entry *e);

#define RQ_RING_MAX (1u << 16) /* entries kept exactly; one more makes the queue inexact */

struct respq {
	struct rq_entry *ring;
	uint32_t cap, head, len; /* cap is a power of two */
	uint32_t owed_rfq;       /* queued Query, FunctionCall and Sync: ReadyForQuery owed */
	bool skipping;           /* an error skipped the batch and its Sync is not queued yet */
	bool batch;              /* extended messages sent since the last Query/FunctionCall/Sync */
	bool inexact;            /* lost track: never settled again; the server is drained */
	bool copy_in;            /* the server asked for CopyData and the client has not ended it */
	bool copy_out;           /* the server streams CopyData until CopyDone */
	char tx_status;          /* of the last ReadyForQuery: 'I', 'T' or 'E' */
	rq_done_fn done;
	rq_emit_fn emit;
	void *ctx;
};

void respq_init(struct respq *q, rq_done_fn done, rq_emit_fn emit, void *ctx);
/* Who is told of completions from now on (the prepared-statement layer). */
void respq_set_owner(struct respq *q, rq_done_fn done, rq_emit_fn emit, void *ctx);
/* Entries still queued are reported skipped. */
void respq_free(struct respq *q);
/* Entries reported skipped, then a fresh start (owner kept): the stream is
 * known again (after login, after a drain). */
void respq_reset(struct respq *q);
/* The owner gives its entries up (reported skipped); what was sent and not
 * answered stays owed as inexactness, so the server is drained. */
void respq_abandon(struct respq *q);
static inline bool respq_empty(const struct respq *q)
{
	return q->len == 0;
}
static inline uint32_t respq_len(const struct respq *q)
{
	return q->len;
}
static inline uint32_t respq_owed_rfq(const struct respq *q)
{
	return q->owed_rfq;
}
/* Extended messages or a skipped batch wait for a Sync. */
static inline bool respq_unsynced(const struct respq *q)
{
	return q->batch || q->skipping;
}
/* Everything sent has been answered and no COPY is in progress. */
static inline bool respq_settled(const struct respq *q)
{
	return !q->inexact && q->len == 0 && !respq_unsynced(q) && !q->copy_in && !q->copy_out;
}
/* Settled and outside a transaction block: the connection may be reused. */
static inline bool respq_reusable(const struct respq *q)
{
	return respq_settled(q) && q->tx_status == 'I';
}
/* Queue a request in send order. While an error is skipping the batch, the
 * server will ignore it: it completes at once as skipped (a Sync ends that). */
void respq_push(struct respq *q, const struct rq_entry *e);
/* A frontend message sent to the server (each one, whoever queued its
 * entry): the end of a COPY IN, or the loss of exactness during one. */
void respq_sent(struct respq *q, char type);
/* A frontend message sent as it is: respq_sent and its plain entry, if it
 * gets an answer (Query, FunctionCall, Sync and the extended messages). */
void respq_push_sent(struct respq *q, char type);
/* A message the server sent (its type byte; 'status' is a ReadyForQuery's
 * byte, ignored otherwise). Async messages (notices, parameter status,
 * notifications) are forwarded and belong to no entry. 'answered' (may be
 * NULL) receives a copy of the entry it belongs to, or a zeroed entry with
 * kind RQ_KIND_COUNT. RQV_CONFUSED leaves the queue empty and inexact. */
enum rq_verdict respq_server_msg(struct respq *q, char type, char status, struct rq_entry *answered);
/* The entry kind whose ReadyForQuery ends it. */
static inline bool rq_kind_owes_rfq(uint8_t kind)
{
	return kind == RQ_SYNC || kind == RQ_QUERY || kind == RQ_FUNCTION;
}
/* True when a synthesized answer waits at the head: the caller forwards what
 * it has of the stream so far, then calls respq_release_synth. */
bool respq_synth_due(const struct respq *q);
/* False when an emit failed: the queue is not touched after that. */
TB_MUSTCHECK bool respq_release_synth(struct respq *q);
/* The entry the next server message answers, or NULL. */
const struct rq_entry *respq_head(const struct respq *q);
/* Walk the queue (for forgetting a departed client's data). */
void respq_foreach(struct respq *q, void (*fn)(void *ctx, struct rq_entry *e), void *ctx);
#endif
