/* `tokenbouncer check FILE.ini`: the doctor. For each alias, one server
 * login through the pooler's own code (resolve, connect, TLS, token, login),
 * then SELECT 1 and server_check_query, each step timed; one row per alias
 * with the exact cause and what to change when a step fails. */
#ifndef TB_ADMIN_CHECK_H
#define TB_ADMIN_CHECK_H
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>

struct worker;

struct check_options {
	const char *alias; /* only this alias; NULL: all */
	const char *user;  /* upstream user for aliases that take the client's */
	bool json;
	const char *through; /* "HOST:PORT" of a running pooler: check as a client instead */
};

/* Runs on a loop whose runtime has the configuration applied (as the pooler
 * at startup, without listeners). Prints the report to out; returns the exit
 * status: 0 when every alias checked passed, 1 otherwise, 2 on bad input. */
int check_run(struct worker *w, struct event_base *base, const struct check_options *o, FILE *out);

/* `check FILE.ini --through HOST:PORT`: each alias of FILE.ini as a client
 * sees it, through a running pooler. libpq (an independent client, the one
 * most applications use) connects with its non-blocking API on our loop,
 * then runs SELECT 1; password, TLS mode and the like come from libpq's own
 * environment (PGPASSWORD, PGSSLMODE, ~/.pgpass). One line per alias; the
 * exit status as check_run's. */
int check_through_run(struct worker *w, struct event_base *base, const struct check_options *o, FILE *out);
#endif
