/* The "options" startup parameter; see include/pg/startup_opts.h. */
#include "pg/startup_opts.h"

#include <ctype.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

/* One token up to unescaped whitespace, unescaped into out. */
static const char *read_token(const char *p, char *out, size_t cap, bool *ok)
{
	size_t n = 0;
	*ok = true;
	while (*p && !isspace((unsigned char)*p)) {
		if (*p == '\\' && p[1])
			p++;
		if (n + 1 >= cap) {
			*ok = false;
			return p;
		}
		out[n++] = *p++;
	}
	out[n] = '\0';
	return p;
}

bool startup_opts_parse(const char *options, bool (*each)(const char *name, const char *value, void *arg),
			void *arg)
{
	char token[STARTUP_OPT_MAX + 1];
	const char *p = skip_ws(options);
	while (*p) {
		if (strncmp(p, "-c", 2) == 0)
			p = skip_ws(p + 2);
		else if (strncmp(p, "--", 2) == 0)
			p += 2;
		else
			return false;
		bool ok;
		p = read_token(p, token, sizeof(token), &ok);
		char *eq = strchr(token, '=');
		if (!ok || !eq || eq == token)
			return false;
		*eq = '\0';
		if (!each(token, eq + 1, arg))
			return true;
		p = skip_ws(p);
	}
	return true;
}
