#include "pg/flow.h"

#include <stdlib.h>
#include <string.h>

#define IS_SYNC 1u

void pg_flow_init(struct pg_flow *f)
{
	*f = (struct pg_flow){ .tx_status = 'I' };
}

void pg_flow_clear(struct pg_flow *f)
{
	free(f->ring);
	pg_flow_init(f);
}

enum pg_flow_kind pg_flow_classify(char type)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'S':
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
	case 'c':
	case 'f':
	case 'd':
	case 'H':
		return PG_FLOW_REQUEST;
	case 'X':
		return PG_FLOW_TERMINATE;
	default:
		return PG_FLOW_INVALID;
	}
}

static uint32_t *entry(const struct pg_flow *f, uint32_t i)
{
	return &f->ring[(f->head + i) % f->cap];
}

static bool grow(struct pg_flow *f)
{
	uint32_t ncap = f->cap ? f->cap * 2 : 16;
	if (ncap > PG_FLOW_RING_MAX)
		return false;
	uint32_t *n = malloc(ncap * sizeof(*n));
	if (!n)
		return false;
	for (uint32_t i = 0; i < f->owed_rfq; i++)
		n[i] = *entry(f, i);
	free(f->ring);
	f->ring = n;
	f->cap = ncap;
	f->head = 0;
	return true;
}

static void sync_state(struct pg_flow *f)
{
	f->unsynced = f->batch || f->skipping;
}

/* One more owed ReadyForQuery, for a Query/FunctionCall or a Sync. */
static void push(struct pg_flow *f, bool is_sync)
{
	if (!f->inexact && ((f->owed_rfq == f->cap && !grow(f)) || f->ext_tail > (UINT32_MAX >> 1)))
		f->inexact = true; /* still counted below, so the pooler keeps waiting */
	if (!f->inexact)
		*entry(f, f->owed_rfq) = f->ext_tail << 1 | (is_sync ? IS_SYNC : 0);
	f->owed_rfq++;
	f->ext_tail = 0;
	f->batch = false; /* a Query, FunctionCall or Sync ends the implicit transaction */
}

static void pop(struct pg_flow *f)
{
	f->owed_rfq--;
	if (f->inexact || !f->cap)
		return;
	f->head = (f->head + 1) % f->cap;
}

enum pg_flow_kind pg_flow_client(struct pg_flow *f, char type)
{
	enum pg_flow_kind kind = pg_flow_classify(type);
	if (kind != PG_FLOW_REQUEST)
		return kind;
	/* During COPY IN the backend takes anything but CopyData, CopyDone,
	 * CopyFail and Flush as the end of the COPY (or ignores it, a Sync):
	 * which messages then get answers is beyond exact accounting. */
	if (f->copy_in && type != 'd' && type != 'c' && type != 'f' && type != 'H')
		f->inexact = true;
	switch (type) {
	case 'Q':
	case 'F':
		if (!f->skipping)
			push(f, false);
		break;
	case 'S':
		/* Counted even during COPY IN, where the backend ignores it unless
		 * the COPY is aborted first: an overcount only makes the pooler wait. */
		push(f, true);
		f->skipping = false;
		break;
	case 'c':
	case 'f':
		f->copy_in = false;
		break;
	case 'd':
	case 'H':
		break;
	default: /* Parse, Bind, Describe, Execute, Close */
		if (!f->skipping) {
			f->ext_tail++;
			f->batch = true;
		}
		break;
	}
	sync_state(f);
	return kind;
}

/* An extended message was answered: the oldest one still owed. */
static void ext_answered(struct pg_flow *f)
{
	if (f->inexact)
		return;
	if (f->owed_rfq > 0) {
		uint32_t *e = entry(f, 0);
		if (*e >> 1)
			*e -= 2;
	} else if (f->ext_tail > 0) {
		f->ext_tail--;
	}
}

/* An ErrorResponse. If it answers an extended message, the backend now
 * skips everything up to the next Sync: the Queries in between will get no
 * ReadyForQuery, and the extended messages no answer. */
static void error_answered(struct pg_flow *f)
{
	f->copy_in = f->copy_out = false;
	if (f->inexact)
		return;
	if (f->owed_rfq > 0 && (*entry(f, 0) >> 1) == 0)
		return; /* the error of a Query, FunctionCall or Sync: its ReadyForQuery follows */
	if (f->owed_rfq == 0 && f->ext_tail == 0)
		return;
	while (f->owed_rfq > 0) {
		uint32_t *e = entry(f, 0);
		if (*e & IS_SYNC) {
			*e = IS_SYNC; /* the skipped messages before it owe nothing now */
			return;
		}
		pop(f);
	}
	f->ext_tail = 0;
	f->skipping = true;
	sync_state(f);
}

bool pg_flow_server(struct pg_flow *f, char type, char status)
{
	switch (type) {
	case 'G':
	case 'W':
		/* Whatever the client sent after the message that started this COPY
		 * reaches a backend in COPY IN (see pg_flow_client). */
		if (f->owed_rfq > 1 || f->ext_tail > 0 ||
		    (f->owed_rfq == 1 && (f->inexact || (*entry(f, 0) & IS_SYNC))))
			f->inexact = true;
		f->copy_in = true;
		f->copy_out = f->copy_out || type == 'W';
		return false;
	case 'H':
		f->copy_out = true;
		return false;
	case 'c':
		f->copy_out = false;
		return false;
	case 'E':
		error_answered(f);
		return false;
	case '1':
	case '2':
	case '3':
	case 'n':
	case 's':
	case 'I':
	case 'T':
	case 'C':
		/* ParseComplete, BindComplete, CloseComplete, NoData, PortalSuspended,
		 * EmptyQueryResponse, RowDescription, CommandComplete: the end of an
		 * extended message's answer when one is owed ahead of the next
		 * ReadyForQuery; otherwise part of a Query's answer. */
		ext_answered(f);
		return false;
	case 'Z':
		f->tx_status = status;
		f->copy_in = f->copy_out = false;
		if (f->owed_rfq == 0)
			return false;
		pop(f);
		return true;
	default:
		return false;
	}
}

bool pg_flow_settled(const struct pg_flow *f)
{
	return !f->inexact && f->owed_rfq == 0 && !f->unsynced && !f->copy_in && !f->copy_out;
}

bool pg_flow_reusable(const struct pg_flow *f)
{
	return pg_flow_settled(f) && f->tx_status == 'I';
}
