/* Stopping the pooler with PgBouncer 1.23+ semantics: SHUTDOWN
 * WAIT_FOR_SERVERS (SIGINT), SHUTDOWN WAIT_FOR_CLIENTS (SIGTERM) and an
 * immediate SHUTDOWN (SIGQUIT, or a second SIGINT/SIGTERM). */
#ifndef TB_POOL_SHUTDOWN_H
#define TB_POOL_SHUTDOWN_H
#include "pool/runtime.h"

struct worker;

/* Start (or change) a shutdown. The waiting modes close the TCP listeners,
 * keep the Unix socket for the console only, and exit from the janitor once
 * their condition holds; SHUTDOWN_IMMEDIATE stops the loop now. */
void shutdown_begin(struct worker *w, enum shutdown_mode mode);
/* A shutdown signal: while a shutdown is already under way it means "now". */
void shutdown_on_signal(struct worker *w, enum shutdown_mode mode, const char *signame);
/* Janitor: exit once the mode's condition holds. */
void shutdown_check(struct worker *w);
const char *shutdown_mode_name(enum shutdown_mode mode);
#endif
