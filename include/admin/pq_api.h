/* libpq, loaded on first use. Linking it costs every process over 2 MB of
 * resident memory before main() runs (libpq pulls in GnuTLS, p11-kit,
 * Kerberos, nettle, gcrypt and more, mapped and relocated at start-up), and
 * only `tokenbouncer check --through` speaks to a server through libpq. So
 * check_through.c reaches libpq through this table, filled by dlopen() when
 * the check starts. We still compile against libpq-fe.h for its types. */
#ifndef TB_ADMIN_PQ_API_H
#define TB_ADMIN_PQ_API_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct pq_api {
	PGconn *(*connect_start_params)(const char *const *keys, const char *const *vals, int expand_dbname);
	PostgresPollingStatusType (*connect_poll)(PGconn *conn);
	ConnStatusType (*status)(const PGconn *conn);
	int (*set_nonblocking)(PGconn *conn, int arg);
	int (*socket)(const PGconn *conn);
	char *(*error_message)(const PGconn *conn);
	int (*send_query)(PGconn *conn, const char *query);
	int (*consume_input)(PGconn *conn);
	int (*is_busy)(PGconn *conn);
	PGresult *(*get_result)(PGconn *conn);
	ExecStatusType (*result_status)(const PGresult *res);
	char *(*result_error_message)(const PGresult *res);
	void (*clear)(PGresult *res);
	void (*finish)(PGconn *conn);
};

/* Filled by pq_api_load; all NULL before. */
extern struct pq_api pq_api;

/* dlopen libpq.so.5 and resolve the table. Idempotent; false with err set
 * if it cannot. */
bool pq_api_load(char *err, size_t errlen);
#endif
