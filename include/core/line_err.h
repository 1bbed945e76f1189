/* Error messages of the line-oriented file parsers (auth_file, auth_hba_file):
 * "FILE:LINE: reason" into the caller's buffer, and user text shown printable
 * and cut so a message stays one short line whatever the file holds. */
#ifndef TB_CORE_LINE_ERR_H
#define TB_CORE_LINE_ERR_H
#include <stddef.h>

/* Where a parser is, and where its first error goes (err may be NULL). */
struct line_pos {
	const char *fname;
	size_t line;
	char *err;
	size_t errlen;
};

void line_err(const struct line_pos *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SHOWN_MAX 64
#define SHOWN_SIZE (SHOWN_MAX + 4)
/* At most SHOWN_MAX bytes of s, non-printable bytes as '?', "..." when cut. */
const char *shown_token(const char *s, char out[SHOWN_SIZE]);
#endif
