/* Result sets for the admin console: RowDescription, DataRow and
 * CommandComplete built into a pbuf, in the text format, the way PgBouncer
 * sends them (numbers typed so drivers give numbers, NULL as length -1). */
#ifndef TB_ADMIN_RESULTSET_H
#define TB_ADMIN_RESULTSET_H
#include <stddef.h>
#include <stdint.h>

#include "pg/proto.h"

/* Type OIDs of the columns the console sends. */
enum resultset_type {
	RS_TEXT = 25,
	RS_INT4 = 23,
	RS_INT8 = 20,
	RS_NUMERIC = 1700, /* PgBouncer's type for statistics: never overflows a client's bigint */
};

struct resultset_col {
	const char *name;
	enum resultset_type type;
};

struct resultset {
	struct pbuf *out;
	size_t ncols;
	size_t col; /* values written in the current row */
	uint64_t rows;
};

/* Writes the RowDescription. */
void resultset_begin(struct resultset *rs, struct pbuf *out, const struct resultset_col *cols, size_t ncols);
void resultset_row_begin(struct resultset *rs);
/* One value each; NULL text is SQL NULL. */
void resultset_text(struct resultset *rs, const char *s);
void resultset_int(struct resultset *rs, int64_t v);
void resultset_uint(struct resultset *rs, uint64_t v);
void resultset_null(struct resultset *rs);
/* Ends the DataRow; a row with the wrong number of values fails the pbuf. */
void resultset_row_end(struct resultset *rs);
/* CommandComplete with tag (PgBouncer sends "SHOW" for every SHOW). */
void resultset_complete(struct pbuf *out, const char *tag);
/* NoticeResponse with a DETAIL field, as SHOW HELP sends it. */
void resultset_notice(struct pbuf *out, const char *message, const char *detail);
#endif
