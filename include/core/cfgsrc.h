/* The lines of a configuration file and the files it pulls in with
 * "%include FILE" (PgBouncer's directive). A source is a stack of files held
 * in memory; lines come out in reading order, each with its file and line
 * number, whatever their length. Nothing here knows INI syntax: the caller
 * decides which line is an %include and pushes the file it names. */
#ifndef TB_CORE_CFGSRC_H
#define TB_CORE_CFGSRC_H
#include <stdbool.h>
#include <stddef.h>

/* Nesting deeper than this is refused (it is almost certainly a loop). */
#define CFGSRC_MAX_DEPTH 16

struct cfgsrc;

/* One physical line, without its "\n" or "\r\n", valid until the next call to
 * cfgsrc_next or cfgsrc_free. file stays valid until cfgsrc_free. */
struct cfgsrc_line {
	const char *text;
	size_t len;
	const char *file;
	int lineno;
};

/* A source whose first file is text (not copied: it must outlive the source),
 * named path in messages. */
struct cfgsrc *cfgsrc_new_text(const char *text, size_t len, const char *path);
/* A source whose first file is read from path; NULL with err set. */
struct cfgsrc *cfgsrc_new_file(const char *path, size_t max_size, char *err, size_t errlen);
/* Read path and continue with its lines; when they are done, the line after
 * the directive follows. Refuses a file that is already being read (a loop)
 * and nesting beyond CFGSRC_MAX_DEPTH. */
bool cfgsrc_include(struct cfgsrc *src, const char *path, size_t max_size, char *err, size_t errlen);
/* The next line, or false at the end of the last file. */
bool cfgsrc_next(struct cfgsrc *src, struct cfgsrc_line *line);
/* Every file read, in order of first reading (for messages and SHOW). */
size_t cfgsrc_file_count(const struct cfgsrc *src);
const char *cfgsrc_file_name(const struct cfgsrc *src, size_t i);
/* Wipes the text read from files (it may hold passwords). */
void cfgsrc_free(struct cfgsrc *src);
#endif
