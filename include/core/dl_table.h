/* A library opened by SONAME on first use and its functions resolved into a
 * table of pointers (token/curl_api, admin/pq_api, pg/icu_api): linking such
 * a library would map and relocate it, and everything it pulls in, in every
 * process, though only a rare path calls it. */
#ifndef TB_CORE_DL_TABLE_H
#define TB_CORE_DL_TABLE_H
#include <stdbool.h>
#include <stddef.h>

struct dl_symbol {
	const char *name;
	void **slot;
};

/* dlopen soname and fill every slot of syms; on success *handle is set and
 * true. False with err set ("cannot load ..." or "... has no ...") and no
 * slot trusted if the library or any symbol is missing. */
bool dl_table_load(const char *soname, const struct dl_symbol *syms, size_t nsyms, void **handle, char *err,
		   size_t errlen);
#endif
