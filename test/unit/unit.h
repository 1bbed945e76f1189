/* Minimal unit-test support: CHECK records a result; unit_finish prints the
 * "N passed, N failed" line that CI reads and returns the exit status. */
#ifndef TB_TEST_UNIT_H
#define TB_TEST_UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(cond) \
	do { \
		if (cond) { \
			unit_passed++; \
		} else { \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

#define CHECK_STR(a, b) \
	do { \
		const char *ua_ = (a), *ub_ = (b); \
		if (ua_ && ub_ && strcmp(ua_, ub_) == 0) { \
			unit_passed++; \
		} else { \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, #a, \
				#b, ua_ ? ua_ : "(null)", ub_ ? ub_ : "(null)"); \
		} \
	} while (0)

/* A check repeated by a loop counts once for the whole loop, so a loop of 1,000 passes does not
 * weigh 1,000 checks: CHECK_EACH notes the passes that fail (printing the first, with its
 * line) and CHECK_LOOP_END counts the loop as one passed or failed check.
 *
 *	struct unit_loop each = UNIT_LOOP;
 *	for (...)
 *		CHECK_EACH(each, cond);
 *	CHECK_LOOP_END(each);
 */
struct unit_loop {
	int failed; /* passes that failed */
	int line;   /* CHECK_EACH of the first failure */
};
#define UNIT_LOOP \
	{ \
		0, 0 \
	}

#define CHECK_EACH(l, cond) \
	do { \
		if (!(cond) && (l).failed++ == 0) { \
			(l).line = __LINE__; \
			fprintf(stderr, "FAIL %s:%d: %s (first failing pass of a loop)\n", __FILE__, \
				__LINE__, #cond); \
		} \
	} while (0)

#define CHECK_LOOP_END(l) \
	do { \
		if ((l).failed == 0) { \
			unit_passed++; \
		} else { \
			unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %d failing passes in the loop\n", __FILE__, (l).line, \
				(l).failed); \
		} \
	} while (0)

static inline int unit_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}
#endif
