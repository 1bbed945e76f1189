#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int log_verbosity;
static bool log_quiet;
static bool log_stderr = true;
static FILE *log_file;
static bool log_syslog;
static char syslog_ident[64];

static const char *const level_names[] = {
	"FATAL", "ERROR", "WARNING", "LOG", "DEBUG", "NOISE",
};

void log_setup(int verbosity, bool quiet, bool to_stderr)
{
	log_verbosity = verbosity;
	log_quiet = quiet;
	log_stderr = to_stderr;
}

bool log_set_file(const char *path, char *err, size_t errlen)
{
	FILE *f = NULL;
	if (path && *path) {
		f = fopen(path, "a");
		if (!f) {
			snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
			return false;
		}
		setvbuf(f, NULL, _IOLBF, 0);
	}
	if (log_file)
		fclose(log_file);
	log_file = f;
	return true;
}

static const struct {
	const char *name;
	int facility;
} facilities[] = {
	{ "auth", LOG_AUTH },     { "authpriv", LOG_AUTHPRIV }, { "daemon", LOG_DAEMON },
	{ "user", LOG_USER },     { "local0", LOG_LOCAL0 },     { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },     { "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },     { "local7", LOG_LOCAL7 },
};

bool log_facility_valid(const char *name)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(facilities[i].name, name) == 0)
			return true;
	return false;
}

bool log_set_syslog(bool on, const char *ident, const char *facility, char *err, size_t errlen)
{
	int fac = -1;
	for (size_t i = 0; facility && i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(facilities[i].name, facility) == 0)
			fac = facilities[i].facility;
	if (on && fac < 0) {
		snprintf(err, errlen, "unknown syslog_facility \"%s\"", facility ? facility : "");
		return false;
	}
	if (log_syslog)
		closelog();
	log_syslog = on;
	if (on) {
		/* openlog keeps the pointer: the ident lives in a static buffer. */
		snprintf(syslog_ident, sizeof(syslog_ident), "%s", ident && *ident ? ident : "tokenbouncer");
		openlog(syslog_ident, LOG_PID, fac);
	}
	return true;
}

static int syslog_priority(enum log_level lvl)
{
	static const int prio[] = { LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG };
	return prio[lvl];
}

bool log_enabled(enum log_level lvl)
{
	if (lvl <= LOG_LVL_WARNING)
		return true;
	if (lvl == LOG_LVL_INFO)
		return !log_quiet;
	return (int)lvl - (int)LOG_LVL_INFO <= log_verbosity;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (!log_enabled(lvl))
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC [%d] %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(tv.tv_usec / 1000), (int)getpid(), level_names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One event, one line: fold embedded newlines so logs stay greppable. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_stderr)
		fprintf(stderr, "%s\n", line);
	if (log_file)
		fprintf(log_file, "%s\n", line);
	/* syslog stamps the time and pid itself: send the level and message. */
	if (log_syslog && n > 0 && (size_t)n < sizeof(line))
		syslog(syslog_priority(lvl), "%s %s", level_names[lvl], line + n);
}
