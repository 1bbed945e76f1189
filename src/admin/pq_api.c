#include "admin/pq_api.h"

#include "core/dl_table.h"

struct pq_api pq_api;

#define PQ_SONAME "libpq.so.5"

bool pq_api_load(char *err, size_t errlen)
{
	static void *handle;
	if (handle)
		return true;
	struct pq_api api;
	const struct dl_symbol syms[] = {
		{ "PQconnectStartParams", (void **)&api.connect_start_params },
		{ "PQconnectPoll", (void **)&api.connect_poll },
		{ "PQstatus", (void **)&api.status },
		{ "PQsetnonblocking", (void **)&api.set_nonblocking },
		{ "PQsocket", (void **)&api.socket },
		{ "PQerrorMessage", (void **)&api.error_message },
		{ "PQsendQuery", (void **)&api.send_query },
		{ "PQconsumeInput", (void **)&api.consume_input },
		{ "PQisBusy", (void **)&api.is_busy },
		{ "PQgetResult", (void **)&api.get_result },
		{ "PQresultStatus", (void **)&api.result_status },
		{ "PQresultErrorMessage", (void **)&api.result_error_message },
		{ "PQclear", (void **)&api.clear },
		{ "PQfinish", (void **)&api.finish },
	};
	void *h;
	if (!dl_table_load(PQ_SONAME, syms, sizeof(syms) / sizeof(syms[0]), &h, err, errlen))
		return false;
	pq_api = api;
	handle = h;
	return true;
}
