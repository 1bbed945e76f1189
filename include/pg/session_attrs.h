/* target_session_attrs of a [databases] entry, with libpq's meanings: which
 * servers of a host list a pooled connection may use, judged from what a
 * PostgreSQL 14+ server reports at login (in_hot_standby and
 * default_transaction_read_only). Pure: fuzzable, no sockets. */
#ifndef TB_PG_SESSION_ATTRS_H
#define TB_PG_SESSION_ATTRS_H
#include <stdbool.h>

#include "core/config-t.h"

/* What the server told about itself: 1, 0, or -1 when not reported. */
struct session_attrs {
	signed char hot_standby;
	signed char read_only;
};

enum tsa_verdict {
	TSA_OK,      /* use it */
	TSA_WRONG,   /* not what is asked for: try another host */
	TSA_UNKNOWN, /* the server did not report what the mode needs (before 14) */
};

void session_attrs_init(struct session_attrs *a);
/* Records an "on"/"off" ParameterStatus that matters; ignores the rest. */
void session_attrs_note(struct session_attrs *a, const char *name, const char *value);
/* prefer-standby takes any server when fallback is set (no standby found). */
enum tsa_verdict session_attrs_judge(enum target_session_attrs mode, const struct session_attrs *a,
				     bool fallback);
const char *session_attrs_mode_name(enum target_session_attrs mode);
#endif
