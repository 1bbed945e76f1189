#include "pg/session_attrs.h"

#include <string.h>
#include <strings.h>

void session_attrs_init(struct session_attrs *a)
{
	a->hot_standby = -1;
	a->read_only = -1;
}

static signed char on_off(const char *value)
{
	if (strcasecmp(value, "on") == 0)
		return 1;
	if (strcasecmp(value, "off") == 0)
		return 0;
	return -1;
}

void session_attrs_note(struct session_attrs *a, const char *name, const char *value)
{
	if (strcasecmp(name, "in_hot_standby") == 0)
		a->hot_standby = on_off(value);
	else if (strcasecmp(name, "default_transaction_read_only") == 0)
		a->read_only = on_off(value);
}

static enum tsa_verdict want(signed char have, signed char wanted)
{
	if (have < 0)
		return TSA_UNKNOWN;
	return have == wanted ? TSA_OK : TSA_WRONG;
}

enum tsa_verdict session_attrs_judge(enum target_session_attrs mode, const struct session_attrs *a,
				     bool fallback)
{
	switch (mode) {
	case TSA_MODE_READ_WRITE:
		/* libpq: read-write means neither a standby nor read-only by default. */
		if (a->hot_standby < 0 || a->read_only < 0)
			return TSA_UNKNOWN;
		return a->hot_standby == 0 && a->read_only == 0 ? TSA_OK : TSA_WRONG;
	case TSA_MODE_READ_ONLY:
		if (a->hot_standby < 0 || a->read_only < 0)
			return TSA_UNKNOWN;
		return a->hot_standby == 1 || a->read_only == 1 ? TSA_OK : TSA_WRONG;
	case TSA_MODE_PRIMARY:
		return want(a->hot_standby, 0);
	case TSA_MODE_STANDBY:
		return want(a->hot_standby, 1);
	case TSA_MODE_PREFER_STANDBY:
		if (fallback)
			return TSA_OK;
		return want(a->hot_standby, 1);
	case TSA_MODE_ANY:
	default:
		return TSA_OK;
	}
}

const char *session_attrs_mode_name(enum target_session_attrs mode)
{
	switch (mode) {
	case TSA_MODE_READ_WRITE:
		return "read-write";
	case TSA_MODE_READ_ONLY:
		return "read-only";
	case TSA_MODE_PRIMARY:
		return "primary";
	case TSA_MODE_STANDBY:
		return "standby";
	case TSA_MODE_PREFER_STANDBY:
		return "prefer-standby";
	case TSA_MODE_ANY:
	default:
		return "any";
	}
}
