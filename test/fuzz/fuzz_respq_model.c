/* libFuzzer: the answer tracker (pool/respq) against a model of a
 * PostgreSQL backend, over sequences of messages. The input is a script:
 * each byte either sends a frontend message or lets the model backend
 * process the next one (succeeding, failing, or starting a COPY). The
 * property the pooler's isolation rests on: whenever the tracker says
 * "settled", the backend has nothing left to answer and is in no COPY, so a
 * server released at that moment cannot pass anyone's answers on. While it
 * is exact, every answer the backend sends fits a queued request. And the
 * converse, exactness: when the backend owes nothing the tracker says so
 * (unless it gave up exactness, as after a Sync the backend ignored in COPY
 * IN), so no client keeps a server it no longer needs. fuzz_respq covers the
 * pooler's own entries (absorbed, synthesized, replaced answers). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "pool/respq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QMAX 256

struct backend {
	char queue[QMAX];    /* frontend messages received, not yet processed */
	uint32_t seq[QMAX];  /* when each was sent */
	uint32_t sent;       /* frontend messages sent so far */
	uint32_t copy_start; /* 'sent' when the current COPY IN started */
	bool ambiguous;      /* a Sync sent before CopyInResponse was ignored: the tracker may overcount */
	size_t head, len;
	bool skipping; /* after an extended-protocol error: discard until Sync */
	bool copy_in, copy_simple;
	bool batch; /* extended messages processed since the last Sync */
	struct respq *q;
};

static void emit(struct backend *b, char type, char status)
{
	bool exact = !b->q->inexact;
	if (respq_server_msg(b->q, type, status, NULL) == RQV_CONFUSED && exact)
		abort(); /* an exact tracker found no request for a real answer */
}

/* Nothing the backend holds can still produce output: outside COPY, only
 * Flush and stray CopyData/CopyDone/CopyFail are left, and they are ignored. */
static bool idle(const struct backend *b)
{
	if (b->skipping || b->copy_in || b->batch)
		return false;
	for (size_t i = 0; i < b->len; i++) {
		char m = b->queue[(b->head + i) % QMAX];
		if (m != 'H' && m != 'd' && m != 'c' && m != 'f')
			return false;
	}
	return true;
}

static void process_copy(struct backend *b, char m, uint32_t seq)
{
	if (m == 'S')
		b->ambiguous = true; /* ignored here, but queued by the tracker */
	(void)seq;
	if (m == 'd' || m == 'S' || m == 'H')
		return; /* data, and Sync/Flush are ignored during COPY IN */
	if (m != 'c' && m != 'f')
		b->ambiguous = true; /* a protocol violation the backend swallows: the tracker may overcount */
	b->copy_in = false;
	if (m == 'c') {
		emit(b, 'C', 0);
	} else {
		emit(b, 'E', 0); /* CopyFail, or any other message, aborts the COPY */
		if (!b->copy_simple)
			b->skipping = true;
	}
	if (b->copy_simple)
		emit(b, 'Z', 'I');
}

/* op: 0 success, 1 error, 2 start a COPY IN (for a Query or an Execute) */
static void process(struct backend *b, int op)
{
	char m = b->queue[b->head];
	uint32_t seq = b->seq[b->head];
	b->head = (b->head + 1) % QMAX;
	b->len--;
	if (b->copy_in) {
		process_copy(b, m, seq);
		return;
	}
	if (b->skipping) {
		if (m == 'S') {
			b->skipping = b->batch = false;
			emit(b, 'Z', 'I');
		}
		return;
	}
	switch (m) {
	case 'Q':
		b->batch = false;
		if (op == 2) {
			emit(b, 'G', 0);
			b->copy_in = b->copy_simple = true;
			b->copy_start = b->sent;
			return;
		}
		emit(b, op == 1 ? 'E' : 'C', 0);
		emit(b, 'Z', 'I');
		return;
	case 'F':
		b->batch = false; /* like a Query, it ends with ReadyForQuery */
		emit(b, op == 1 ? 'E' : 'V', 0);
		emit(b, 'Z', 'I');
		return;
	case 'S':
		b->batch = false;
		emit(b, 'Z', 'I');
		return;
	case 'P':
	case 'B':
	case 'D':
	case 'C':
	case 'E':
		b->batch = true;
		if (op == 1) {
			emit(b, 'E', 0);
			b->skipping = true;
		} else if (op == 2 && m == 'E') {
			emit(b, 'G', 0);
			b->copy_in = true;
			b->copy_simple = false;
			b->copy_start = b->sent;
		} else {
			/* Describe answers RowDescription or NoData (a statement's with
			 * ParameterDescription first); Execute rows then CommandComplete. */
			if (m == 'D')
				emit(b, 't', 0);
			if (m == 'E')
				emit(b, 'D', 0);
			emit(b, m == 'P' ? '1' : m == 'B' ? '2' : m == 'C' ? '3' : m == 'D' ? 'T' : 'C', 0);
		}
		return;
	default:
		return; /* Flush; CopyData/Done/Fail outside COPY are ignored */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char types[] = "QPBDCESHFdcf";
	struct respq q;
	respq_init(&q, NULL, NULL, NULL);
	struct backend b = { .q = &q };
	for (size_t i = 0; i < size; i++) {
		uint8_t x = data[i];
		if (x < 128) {
			if (b.len == QMAX)
				continue;
			char m = types[x % (sizeof(types) - 1)];
			respq_push_sent(&q, m);
			b.queue[(b.head + b.len) % QMAX] = m;
			b.seq[(b.head + b.len) % QMAX] = b.sent++;
			b.len++;
		} else if (b.len > 0) {
			process(&b, x % 3);
		}
		if (respq_settled(&q) && !idle(&b))
			abort(); /* the pooler would hand over a server that still owes answers */
		if (!q.inexact && !b.ambiguous && idle(&b) && !respq_settled(&q))
			abort(); /* exactness: a connection that owes nothing is given back */
	}
	respq_free(&q);
	return 0;
}
