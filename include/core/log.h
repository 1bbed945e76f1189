/* Logging: one line per event, levels, optional file. Callers never pass a
 * secret: the only places that touch passwords or tokens log their length
 * or kind, never their value. */
#ifndef TB_CORE_LOG_H
#define TB_CORE_LOG_H
#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LVL_FATAL = 0,
	LOG_LVL_ERROR,
	LOG_LVL_WARNING,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_NOISE,
};

/* verbosity: 0 = info, 1 = debug, 2+ = noise; quiet suppresses info. */
void log_setup(int verbosity, bool quiet, bool to_stderr);
/* Open (or reopen, on reload) the log file; NULL stops file logging. */
bool log_set_file(const char *path, char *err, size_t errlen);
/* Also send each line to syslog (PgBouncer's syslog, syslog_ident,
 * syslog_facility); on = false stops. False for an unknown facility. */
bool log_set_syslog(bool on, const char *ident, const char *facility, char *err, size_t errlen);
bool log_facility_valid(const char *name);
bool log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_fatal(...) log_msg(LOG_LVL_FATAL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { \
		if (log_enabled(LOG_LVL_DEBUG)) \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_noise(...) \
	do { \
		if (log_enabled(LOG_LVL_NOISE)) \
			log_msg(LOG_LVL_NOISE, __VA_ARGS__); \
	} while (0)
#endif
