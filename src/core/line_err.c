#include "core/line_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void line_err(const struct line_pos *w, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	if (!w->err || w->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(w->err, w->errlen, "%s:%zu: %s", w->fname, w->line, reason);
}

const char *shown_token(const char *s, char out[SHOWN_SIZE])
{
	size_t i;

	for (i = 0; i < SHOWN_MAX && s[i]; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}
