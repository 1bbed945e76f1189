/* The "options" startup parameter, as PgBouncer 1.20+ reads it: a list of
 * "-c name=value" and "--name=value" settings, a backslash escaping the next
 * character (so a value may hold spaces). Pure: no sockets, fuzzable. */
#ifndef TB_PG_STARTUP_OPTS_H
#define TB_PG_STARTUP_OPTS_H
#include <stdbool.h>
#include <stddef.h>

/* Longest name=value setting accepted. */
#define STARTUP_OPT_MAX 1024

/* Calls each(name, value, arg) per setting, in order; each may stop the
 * walk by returning false. Returns false on a syntax error (anything but the
 * two forms above, or a setting without "="). */
bool startup_opts_parse(const char *options, bool (*each)(const char *name, const char *value, void *arg),
			void *arg);
#endif
