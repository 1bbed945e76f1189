/* `tokenbouncer check FILE.ini`: the doctor. For each alias, one server
 * login through the pooler's own code (resolve, connect, TLS, token, login),
 * then SELECT 1 and server_check_query, each step timed; one row per alias
 * with the exact cause and what to change when a step fails. */
#ifndef TB_ADMIN_CHECK_H
#define TB_ADMIN_CHECK_H
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>

struct check_options {
	const char *alias;     /* only this alias; NULL: all */
	const char *user;      /* upstream user for aliases that take the client's */
	bool json;
};

/* Runs on a loop whose runtime has the configuration applied (as the pooler
 * at startup, without listeners). Prints the report to out; returns the exit
 * status: 0 when every alias checked passed, 1 otherwise, 2 on bad input. */
int check_run(struct event_base *base, const struct check_options *o, FILE *out);
#endif
