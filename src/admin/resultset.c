#include "admin/resultset.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void resultset_begin(struct resultset *rs, struct pbuf *out, const struct resultset_col *cols, size_t ncols)
{
	rs->out = out;
	rs->ncols = ncols;
	rs->col = 0;
	rs->rows = 0;
	pbuf_begin(out, 'T');
	pbuf_put_u16(out, (uint16_t)ncols);
	for (size_t i = 0; i < ncols; i++) {
		pbuf_put_str(out, cols[i].name);
		pbuf_put_u32(out, 0); /* no table */
		pbuf_put_u16(out, 0); /* no column number */
		pbuf_put_u32(out, (uint32_t)cols[i].type);
		/* Type length as PostgreSQL reports it: -1 for varlena types. */
		pbuf_put_u16(out, cols[i].type == RS_INT4 ? 4 : cols[i].type == RS_INT8 ? 8 : 0xffff);
		pbuf_put_u32(out, 0xffffffffu); /* typmod -1 */
		pbuf_put_u16(out, 0);           /* text format */
	}
	pbuf_end(out);
}

void resultset_row_begin(struct resultset *rs)
{
	rs->col = 0;
	pbuf_begin(rs->out, 'D');
	pbuf_put_u16(rs->out, (uint16_t)rs->ncols);
}

static void put_value(struct resultset *rs, const char *s, size_t len)
{
	pbuf_put_u32(rs->out, (uint32_t)len);
	pbuf_put_bytes(rs->out, s, len);
	rs->col++;
}

void resultset_text(struct resultset *rs, const char *s)
{
	if (!s) {
		resultset_null(rs);
		return;
	}
	put_value(rs, s, strlen(s));
}

void resultset_int(struct resultset *rs, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
	put_value(rs, buf, (size_t)n);
}

void resultset_uint(struct resultset *rs, uint64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
	put_value(rs, buf, (size_t)n);
}

void resultset_null(struct resultset *rs)
{
	pbuf_put_u32(rs->out, 0xffffffffu);
	rs->col++;
}

void resultset_row_end(struct resultset *rs)
{
	/* A short row would shift every later column for the client: refuse to send it. */
	if (rs->col != rs->ncols)
		rs->out->failed = true;
	pbuf_end(rs->out);
	rs->rows++;
}

void resultset_complete(struct pbuf *out, const char *tag)
{
	pbuf_begin(out, 'C');
	pbuf_put_str(out, tag);
	pbuf_end(out);
}

void resultset_notice(struct pbuf *out, const char *message, const char *detail)
{
	pbuf_begin(out, 'N');
	pbuf_put_u8(out, 'S');
	pbuf_put_str(out, "NOTICE");
	pbuf_put_u8(out, 'V');
	pbuf_put_str(out, "NOTICE");
	pbuf_put_u8(out, 'C');
	pbuf_put_str(out, "00000");
	pbuf_put_u8(out, 'M');
	pbuf_put_str(out, message);
	if (detail) {
		pbuf_put_u8(out, 'D');
		pbuf_put_str(out, detail);
	}
	pbuf_put_u8(out, 0);
	pbuf_end(out);
}
