/* Minimal unit-test support: CHECK records a result; unit_finish prints the
 * "N passed, N failed" line that CI reads and returns the exit status. */
#ifndef TB_TEST_UNIT_H
#define TB_TEST_UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(cond) do { \
	if (cond) { unit_passed++; } \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *ua_ = (a), *ub_ = (b); \
	if (ua_ && ub_ && strcmp(ua_, ub_) == 0) { unit_passed++; } \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", \
		__FILE__, __LINE__, #a, #b, ua_ ? ua_ : "(null)", ub_ ? ub_ : "(null)"); } \
} while (0)

static inline int unit_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
#endif
