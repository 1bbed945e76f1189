#include "token/token_clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

static unsigned scale = 1;

#ifndef NDEBUG
static bool parse_scale(const char *s, unsigned *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > TOKEN_TIME_SCALE_MAX)
		return false;
	*out = (unsigned)v;
	return true;
}
#endif

bool token_clock_init(char *err, size_t errlen)
{
	scale = 1;
#ifndef NDEBUG
	const char *s = getenv(TOKEN_TIME_SCALE_ENV);
	if (!s || !*s)
		return true;
	if (!parse_scale(s, &scale)) {
		snprintf(err, errlen, "%s=\"%.20s\": expected a whole number from 1 to %d",
			 TOKEN_TIME_SCALE_ENV, s, TOKEN_TIME_SCALE_MAX);
		return false;
	}
	if (scale > 1)
		log_warning("%s=%u (test build): the token engine's retry and refresh waits pass %u times "
			    "faster",
			    TOKEN_TIME_SCALE_ENV, scale, scale);
#else
	(void)err;
	(void)errlen;
#endif
	return true;
}

unsigned token_clock_scale(void)
{
	return scale;
}

int64_t token_clock_wait_ms(int64_t ms)
{
	int64_t w = ms / (int64_t)scale;
	return w > 0 ? w : 1;
}

int64_t token_clock_wait_s(int64_t s)
{
	int64_t w = s / (int64_t)scale;
	return w > 0 ? w : 1;
}
