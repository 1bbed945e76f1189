#include "pool/respq.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define RQ_INITIAL_CAP 16u

void respq_init(struct respq *q, rq_done_fn done, rq_emit_fn emit, void *ctx)
{
	*q = (struct respq){ .tx_status = 'I' };
	respq_set_owner(q, done, emit, ctx);
}

void respq_set_owner(struct respq *q, rq_done_fn done, rq_emit_fn emit, void *ctx)
{
	q->done = done;
	q->emit = emit;
	q->ctx = ctx;
}

static struct rq_entry *entry_at(const struct respq *q, uint32_t i)
{
	return &q->ring[(q->head + i) & (q->cap - 1)];
}

/* Copy out before calling back: the callback may look at the queue. */
static void pop_head(struct respq *q, enum rq_result r)
{
	struct rq_entry e = *entry_at(q, 0);
	q->head = (q->head + 1) & (q->cap - 1);
	q->len--;
	if (rq_kind_owes_rfq(e.kind))
		q->owed_rfq--;
	if (q->done)
		q->done(q->ctx, &e, r);
}

static void drop_all(struct respq *q)
{
	while (q->len)
		pop_head(q, RQ_SKIPPED);
}

void respq_free(struct respq *q)
{
	drop_all(q);
	free(q->ring);
	q->ring = NULL;
	q->cap = q->head = 0;
	q->skipping = false;
}

void respq_reset(struct respq *q)
{
	drop_all(q);
	struct respq fresh = { .ring = q->ring, .cap = q->cap, .tx_status = 'I' };
	respq_set_owner(&fresh, q->done, q->emit, q->ctx);
	*q = fresh;
}

void respq_abandon(struct respq *q)
{
	for (uint32_t i = 0; i < q->len; i++)
		if (entry_at(q, i)->action != RQ_SYNTH)
			q->inexact = true;
	drop_all(q);
	q->inexact = q->inexact || q->skipping;
}

/* Lost track: whatever is queued can no longer be matched. */
static void lose_track(struct respq *q)
{
	q->inexact = true;
	drop_all(q);
}

static bool grow(struct respq *q)
{
	uint32_t ncap = q->cap ? q->cap * 2 : RQ_INITIAL_CAP;
	if (ncap > RQ_RING_MAX)
		return false;
	struct rq_entry *n = xcalloc(ncap, sizeof(*n));
	for (uint32_t i = 0; i < q->len; i++)
		n[i] = *entry_at(q, i);
	free(q->ring);
	q->ring = n;
	q->cap = ncap;
	q->head = 0;
	return true;
}

void respq_push(struct respq *q, const struct rq_entry *e)
{
	if (q->skipping) {
		if (e->kind != RQ_SYNC) {
			if (q->done)
				q->done(q->ctx, e, RQ_SKIPPED);
			return;
		}
		q->skipping = false;
	}
	if (q->len == q->cap && !grow(q)) {
		q->inexact = true; /* the server will answer it, unmatched: drained */
		if (q->done)
			q->done(q->ctx, e, RQ_SKIPPED);
		return;
	}
	*entry_at(q, q->len) = *e;
	q->len++;
	if (rq_kind_owes_rfq(e->kind)) {
		q->owed_rfq++;
		q->batch = false; /* a Query, FunctionCall or Sync ends the implicit transaction */
	} else if (e->action != RQ_SYNTH)
		q->batch = true;
}

void respq_sent(struct respq *q, char type)
{
	if (!q->copy_in)
		return;
	if (type == 'c' || type == 'f')
		q->copy_in = false;
	else if (type != 'd' && type != 'H')
		/* The backend takes it as the end of the COPY (a Sync it ignores,
		 * unless the COPY failed first): which messages then get answers
		 * is beyond exact accounting. */
		q->inexact = true;
}

/* The kind of a frontend message's answer, or RQ_KIND_COUNT for none. */
static enum rq_kind kind_of(char type)
{
	switch (type) {
	case 'P':
		return RQ_PARSE;
	case 'B':
		return RQ_BIND;
	case 'D':
		return RQ_DESCRIBE;
	case 'E':
		return RQ_EXECUTE;
	case 'C':
		return RQ_CLOSE;
	case 'S':
		return RQ_SYNC;
	case 'Q':
		return RQ_QUERY;
	case 'F':
		return RQ_FUNCTION;
	default:
		return RQ_KIND_COUNT; /* Flush, CopyData, CopyDone, CopyFail */
	}
}

void respq_push_sent(struct respq *q, char type)
{
	respq_sent(q, type);
	enum rq_kind kind = kind_of(type);
	if (kind == RQ_KIND_COUNT)
		return;
	struct rq_entry e = { .kind = (uint8_t)kind };
	respq_push(q, &e);
}

const struct rq_entry *respq_head(const struct respq *q)
{
	return q->len ? entry_at(q, 0) : NULL;
}

bool respq_synth_due(const struct respq *q)
{
	return q->len && entry_at(q, 0)->action == RQ_SYNTH;
}

bool respq_release_synth(struct respq *q)
{
	while (respq_synth_due(q)) {
		struct rq_entry e = *entry_at(q, 0);
		if (q->emit && !q->emit(q->ctx, &e))
			return false;
		pop_head(q, RQ_OK);
	}
	return true;
}

void respq_foreach(struct respq *q, void (*fn)(void *ctx, struct rq_entry *e), void *ctx)
{
	for (uint32_t i = 0; i < q->len; i++)
		fn(ctx, entry_at(q, i));
}

static bool is_async(char type)
{
	return type == 'N' || type == 'A' || type == 'S';
}

static bool is_extended(uint8_t kind)
{
	return kind <= RQ_CLOSE;
}

/* An extended-protocol request failed: the server skips the rest of the
 * batch, so every entry up to the batch's Sync completes unanswered. */
static void fail_and_skip(struct respq *q)
{
	pop_head(q, RQ_FAILED);
	while (q->len && entry_at(q, 0)->kind != RQ_SYNC)
		pop_head(q, RQ_SKIPPED);
	if (q->len == 0)
		q->skipping = true;
}

enum rq_step {
	STEP_BAD = 0,
	STEP_PART,
	STEP_END
};

/* Where a non-error message stands in the answer to an entry of this kind. */
static enum rq_step step_for(struct rq_entry *e, char type)
{
	switch (e->kind) {
	case RQ_PARSE:
		return type == '1' ? STEP_END : STEP_BAD;
	case RQ_BIND:
		return type == '2' ? STEP_END : STEP_BAD;
	case RQ_CLOSE:
		return type == '3' ? STEP_END : STEP_BAD;
	case RQ_DESCRIBE_STMT:
		if (type == 't' && !e->started) {
			e->started = true;
			return STEP_PART;
		}
		return (type == 'T' || type == 'n') && e->started ? STEP_END : STEP_BAD;
	case RQ_DESCRIBE_PORTAL:
		return type == 'T' || type == 'n' ? STEP_END : STEP_BAD;
	case RQ_DESCRIBE:
		if (type == 't' && !e->started) {
			e->started = true;
			return STEP_PART;
		}
		return type == 'T' || type == 'n' ? STEP_END : STEP_BAD;
	case RQ_EXECUTE:
		if (type == 'C' || type == 'I' || type == 's')
			return STEP_END;
		return strchr("DGHdcW", type) && type ? STEP_PART : STEP_BAD;
	case RQ_SYNC:
		return type == 'Z' ? STEP_END : STEP_BAD;
	case RQ_QUERY:
	case RQ_FUNCTION:
		return type == 'Z' ? STEP_END : STEP_PART;
	default:
		return STEP_BAD;
	}
}

static enum rq_verdict verdict_for(const struct rq_entry *e, char type)
{
	if (e->action == RQ_ABSORB)
		return type == 'E' ? RQV_FORWARD : RQV_DROP;
	if (e->action == RQ_EMPTY_AS_TAG && type == 'I')
		return RQV_REPLACE;
	if (e->action == RQ_RENAME_ERROR && type == 'E')
		return RQV_REPLACE;
	return RQV_FORWARD;
}

/* A COPY starts: exact only when the request that started it is the last
 * one sent, since whatever follows it reaches a backend in COPY IN. */
static void copy_starts(struct respq *q, char type)
{
	if (q->len > 1)
		q->inexact = true;
	q->copy_in = true;
	q->copy_out = q->copy_out || type == 'W';
}

static void follow_copy(struct respq *q, char type, char status)
{
	switch (type) {
	case 'G':
	case 'W':
		copy_starts(q, type);
		return;
	case 'H':
		q->copy_out = true;
		return;
	case 'c':
		q->copy_out = false;
		return;
	case 'Z':
		q->tx_status = status;
		/* fall through */
	case 'E':
		q->copy_in = q->copy_out = false;
		return;
	default:
		return;
	}
}

enum rq_verdict respq_server_msg(struct respq *q, char type, char status, struct rq_entry *answered)
{
	struct rq_entry none = { .kind = RQ_KIND_COUNT };
	if (answered)
		*answered = none;
	if (is_async(type))
		return RQV_FORWARD;
	follow_copy(q, type, status);
	if (q->len == 0 || entry_at(q, 0)->action == RQ_SYNTH) {
		lose_track(q);
		return RQV_CONFUSED;
	}
	struct rq_entry *e = entry_at(q, 0);
	if (type == 'E') {
		e->seen_error = true;
		if (answered)
			*answered = *e;
		enum rq_verdict v = verdict_for(e, type);
		if (is_extended(e->kind))
			fail_and_skip(q);
		return v;
	}
	enum rq_step step = step_for(e, type);
	if (step == STEP_BAD) {
		lose_track(q);
		return RQV_CONFUSED;
	}
	if (answered)
		*answered = *e;
	enum rq_verdict v = verdict_for(e, type);
	if (step == STEP_END)
		pop_head(q, e->seen_error ? RQ_FAILED : RQ_OK);
	return v;
}
