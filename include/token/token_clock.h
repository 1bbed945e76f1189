/* The token engine's waits, with a test hook. The engine (token.c) and the AWS credential chain
 * (aws.c) choose some waits themselves: the retry floor after a failed fetch (30 s, doubling to
 * 300 s), the forced-refresh budget (one per 30 s) and the AWS background retry (30 s). Tests
 * that check those waits would otherwise take minutes of real time.
 *
 * In a build with assertions (the test build, --enable-asserts) the environment variable
 * TB_TEST_TOKEN_TIME_SCALE=N, read once when the token engine starts, makes those waits pass N
 * times faster (N from 1 to 100; a warning is logged). Times that come from elsewhere, above all
 * a token's expiry as its identity provider states it, are not scaled: they belong to other
 * clocks. In a release build (NDEBUG) the variable is ignored and every wait is as written. */
#ifndef TB_TOKEN_TOKEN_CLOCK_H
#define TB_TOKEN_TOKEN_CLOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_TIME_SCALE_ENV "TB_TEST_TOKEN_TIME_SCALE"
#define TOKEN_TIME_SCALE_MAX 100

/* Reads TB_TEST_TOKEN_TIME_SCALE (test builds only); false with err on a bad value. */
bool token_clock_init(char *err, size_t errlen);

/* The scale in force: 1 unless a test build was started with the variable. */
unsigned token_clock_scale(void);

/* A wait the engine chose, in ms or in s, as it passes on the engine's clock (at least 1). */
int64_t token_clock_wait_ms(int64_t ms);
int64_t token_clock_wait_s(int64_t s);

#endif
