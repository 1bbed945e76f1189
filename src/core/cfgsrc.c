/* A stack of configuration files in memory, read line by line. See
 * include/core/cfgsrc.h. */
#include "core/cfgsrc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dynbuf.h"
#include "core/util.h"

struct cfgsrc_frame {
	char *text;
	size_t len, pos;
	bool owned; /* read from a file by us: wiped and freed */
	int lineno;
	size_t name; /* index into names */
	dev_t dev;   /* identity of the file, to refuse include loops */
	ino_t ino;
};

struct cfgsrc {
	struct cfgsrc_frame stack[CFGSRC_MAX_DEPTH];
	int depth;
	char **names;
	size_t nnames;
};

static size_t add_name(struct cfgsrc *src, const char *path)
{
	src->names = xrealloc(src->names, (src->nnames + 1) * sizeof(*src->names));
	src->names[src->nnames] = xstrdup(path);
	return src->nnames++;
}

/* Whole file into memory, NUL-terminated, through the descriptor (stdio's
 * buffers would keep an unwiped copy of a file that holds passwords). */
static char *read_whole(int fd, const char *path, size_t max_size, size_t *lenp, char *err, size_t errlen)
{
	struct dynbuf b;
	dynbuf_init(&b, max_size, true);
	if (!dynbuf_read_fd(&b, fd) || !dynbuf_reserve(&b, 0)) {
		if (b.failed)
			err_set(err, errlen, "%s: file is larger than %zu MiB", path,
				max_size / (1024 * 1024));
		else
			err_set(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		dynbuf_free(&b);
		return NULL;
	}
	return dynbuf_take(&b, lenp);
}

static bool push_file(struct cfgsrc *src, const char *path, size_t max_size, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f) {
		err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
		err_set(err, errlen, "%s: cannot read: %s", path,
			S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
		fclose(f);
		return false;
	}
	for (int i = 0; i < src->depth; i++) {
		if (src->stack[i].owned && src->stack[i].dev == st.st_dev && src->stack[i].ino == st.st_ino) {
			err_set(err, errlen, "%s: included again while it is being read (an %%include loop)",
				path);
			fclose(f);
			return false;
		}
	}
	size_t len;
	char *text = read_whole(fileno(f), path, max_size, &len, err, errlen);
	fclose(f);
	if (!text)
		return false;
	src->stack[src->depth++] = (struct cfgsrc_frame){
		.text = text,
		.len = len,
		.owned = true,
		.name = add_name(src, path),
		.dev = st.st_dev,
		.ino = st.st_ino,
	};
	return true;
}

struct cfgsrc *cfgsrc_new_text(const char *text, size_t len, const char *path)
{
	struct cfgsrc *src = xcalloc(1, sizeof(*src));
	src->stack[0] = (struct cfgsrc_frame){ .text = (char *)text, .len = len, .name = add_name(src, path) };
	src->depth = 1;
	return src;
}

struct cfgsrc *cfgsrc_new_file(const char *path, size_t max_size, char *err, size_t errlen)
{
	struct cfgsrc *src = xcalloc(1, sizeof(*src));
	if (!push_file(src, path, max_size, err, errlen)) {
		cfgsrc_free(src);
		return NULL;
	}
	return src;
}

bool cfgsrc_include(struct cfgsrc *src, const char *path, size_t max_size, char *err, size_t errlen)
{
	if (src->depth >= CFGSRC_MAX_DEPTH) {
		err_set(err, errlen, "%%include nested more than %d files deep", CFGSRC_MAX_DEPTH);
		return false;
	}
	return push_file(src, path, max_size, err, errlen);
}

bool cfgsrc_next(struct cfgsrc *src, struct cfgsrc_line *line)
{
	while (src->depth > 0) {
		struct cfgsrc_frame *fr = &src->stack[src->depth - 1];
		if (fr->pos >= fr->len) {
			if (src->depth == 1)
				return false; /* the first file stays for its name and line count */
			if (fr->owned) {
				secret_wipe(fr->text, fr->len);
				free(fr->text);
			}
			src->depth--;
			continue;
		}
		const char *start = fr->text + fr->pos;
		size_t left = fr->len - fr->pos;
		const char *nl = memchr(start, '\n', left);
		size_t n = nl ? (size_t)(nl - start) : left;
		fr->pos += nl ? n + 1 : n;
		fr->lineno++;
		if (n > 0 && start[n - 1] == '\r')
			n--;
		*line = (struct cfgsrc_line){
			.text = start, .len = n, .file = src->names[fr->name], .lineno = fr->lineno
		};
		return true;
	}
	return false;
}

size_t cfgsrc_file_count(const struct cfgsrc *src)
{
	return src->nnames;
}

const char *cfgsrc_file_name(const struct cfgsrc *src, size_t i)
{
	return i < src->nnames ? src->names[i] : NULL;
}

void cfgsrc_free(struct cfgsrc *src)
{
	if (!src)
		return;
	for (int i = 0; i < src->depth; i++) {
		if (src->stack[i].owned) {
			secret_wipe(src->stack[i].text, src->stack[i].len);
			free(src->stack[i].text);
		}
	}
	for (size_t i = 0; i < src->nnames; i++)
		free(src->names[i]);
	free(src->names);
	free(src);
}
