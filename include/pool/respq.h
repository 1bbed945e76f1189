/* The queue of answers a server owes, one entry per message sent to it that
 * gets an answer (and per answer the pooler makes up itself), in the order
 * the server will send them. It tells for each server message which request
 * it answers and what to do with it: forward it, absorb it (the pooler's own
 * injected Parse and Close), or replace it; and it releases the pooler's
 * synthesized answers exactly at their place in the stream. It follows the
 * server's error rule: after an ErrorResponse to an extended-protocol
 * message, everything up to the next Sync is skipped and gets no answer.
 *
 * Pure: no sockets, no allocation after init beyond growing the ring, so it
 * is unit-tested and fuzzed on message types alone. */
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

struct respq {
	struct rq_entry *ring;
	uint32_t cap, head, len; /* cap is a power of two */
	bool skipping;           /* an error skipped the batch and its Sync is not queued yet */
	rq_done_fn done;
	rq_emit_fn emit;
	void *ctx;
};

void respq_init(struct respq *q, rq_done_fn done, rq_emit_fn emit, void *ctx);
/* Entries still queued are reported skipped. */
void respq_free(struct respq *q);
static inline bool respq_empty(const struct respq *q)
{
	return q->len == 0;
}
static inline uint32_t respq_len(const struct respq *q)
{
	return q->len;
}
/* Queue a request in send order. While an error is skipping the batch, the
 * server will ignore it: it completes at once as skipped (a Sync ends that). */
void respq_push(struct respq *q, const struct rq_entry *e);
/* A message the server sent (its type byte). Async messages (notices,
 * parameter status, notifications) are forwarded and belong to no entry.
 * 'answered' (may be NULL) receives a copy of the entry it belongs to, or a
 * zeroed entry with kind RQ_KIND_COUNT. */
enum rq_verdict respq_server_msg(struct respq *q, char type, struct rq_entry *answered);
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
