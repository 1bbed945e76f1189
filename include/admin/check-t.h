/* What the doctor (admin/check.c) learns per alias, for its report
 * (admin/check_report.c). */
#ifndef TB_ADMIN_CHECK_T_H
#define TB_ADMIN_CHECK_T_H
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/config-t.h"
#include "core/util.h"
#include "net/tls.h"
#include "pool/pool-t.h"

enum step {
	STEP_TOKEN,
	STEP_RESOLVE,
	STEP_CONNECT,
	STEP_TLS,
	STEP_LOGIN,
	STEP_QUERY,
	STEP_CHECK,
	NSTEPS
};

enum phase {
	PH_WAIT_USER,
	PH_LOGIN,
	PH_QUERY,
	PH_CHECK,
	PH_DONE
};

struct probe {
	const struct db_alias *alias;
	struct database *db;
	struct pool *pool;
	struct server *server;
	const char *user;
	enum phase phase;
	bool ok, skipped, token_retried;
	enum step failed;
	bool reached[NSTEPS];
	usec_t spent[NSTEPS];
	usec_t since, started;
	char cause[400];
	char address[INET6_ADDRSTRLEN + 8];
	struct tls_peer_info tls;
	bool have_tls;
	struct event *next; /* deferred: the next step runs outside the pool's callbacks */
};

/* "token", "resolve", ...: the names of the report's columns and JSON keys. */
const char *check_step_name(enum step st);
/* One row per alias; both return the exit status (0: every alias checked passed). */
int check_report_text(const struct probe *probes, size_t n, FILE *out);
int check_report_json(const struct probe *probes, size_t n, FILE *out);
#endif
