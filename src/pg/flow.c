#include "pg/flow.h"

void pg_flow_init(struct pg_flow *f)
{
	*f = (struct pg_flow){ .tx_status = 'I' };
}

enum pg_flow_kind pg_flow_classify(char type)
{
	switch (type) {
	case 'Q': case 'F': case 'S': case 'P': case 'B': case 'E': case 'D': case 'C':
	case 'c': case 'f': case 'd': case 'H':
		return PG_FLOW_REQUEST;
	case 'X':
		return PG_FLOW_TERMINATE;
	default:
		return PG_FLOW_INVALID;
	}
}

enum pg_flow_kind pg_flow_client(struct pg_flow *f, char type)
{
	switch (type) {
	case 'Q':
	case 'F':
	case 'S':
		f->owed_rfq++;
		f->unsynced = false;
		return PG_FLOW_REQUEST;
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
		f->unsynced = true;
		return PG_FLOW_REQUEST;
	case 'c':
	case 'f':
		f->copy_in = false;
		return PG_FLOW_REQUEST;
	case 'd':
	case 'H':
		return PG_FLOW_REQUEST; /* CopyData and Flush owe nothing of their own */
	case 'X':
		return PG_FLOW_TERMINATE;
	default:
		return PG_FLOW_INVALID;
	}
}

bool pg_flow_server(struct pg_flow *f, char type, char status)
{
	switch (type) {
	case 'G':
		f->copy_in = true;
		return false;
	case 'H':
		f->copy_out = true;
		return false;
	case 'W':
		f->copy_in = f->copy_out = true;
		return false;
	case 'c':
		f->copy_out = false;
		return false;
	case 'E':
		/* An error ends any COPY; the backend then ignores the client's
		 * remaining CopyData until the next Query or Sync. */
		f->copy_in = f->copy_out = false;
		return false;
	case 'Z':
		f->tx_status = status;
		f->copy_in = f->copy_out = false;
		if (f->owed_rfq == 0)
			return false;
		f->owed_rfq--;
		return true;
	default:
		return false;
	}
}

bool pg_flow_settled(const struct pg_flow *f)
{
	return f->owed_rfq == 0 && !f->unsynced && !f->copy_in && !f->copy_out;
}

bool pg_flow_reusable(const struct pg_flow *f)
{
	return pg_flow_settled(f) && f->tx_status == 'I';
}
