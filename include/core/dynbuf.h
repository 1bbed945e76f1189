/* One growable byte buffer for the whole tree: a hard size cap (curl's dynbuf
 * "toobig" idea, so a peer cannot make us grow without bound), an optional
 * wipe-on-free for buffers that may hold a password, token or key, and a
 * sticky failure so a builder can add many pieces and check once. */
#ifndef TB_CORE_DYNBUF_H
#define TB_CORE_DYNBUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/mustcheck.h"

/* The members, by macro so a wrapper (struct pbuf) can expose them by name
 * in an anonymous union member with the very same layout. */
#define DYNBUF_MEMBERS \
	unsigned char *data; /* NULL until the first add; then NUL-terminated at len */ \
	size_t len, cap; \
	size_t max; /* len may never exceed this: an add past it fails */ \
	bool wipe;  /* every block is wiped before it is freed or left behind */ \
	bool failed /* sticky: an add went past max; later adds fail too */

struct dynbuf {
	DYNBUF_MEMBERS;
};

/* max is the most bytes the buffer may hold (not counting the terminator). */
void dynbuf_init(struct dynbuf *b, size_t max, bool wipe);
/* Frees the block (wiped when wipe) and leaves the buffer empty, reusable. */
void dynbuf_free(struct dynbuf *b);
/* Empty again, keeping the block; clears failed. */
void dynbuf_reset(struct dynbuf *b);
/* Drops everything after the first len bytes (no-op when len >= b->len). */
void dynbuf_truncate(struct dynbuf *b, size_t len);

/* Room for more bytes after len; false (and failed set) past max. */
TB_MUSTCHECK bool dynbuf_reserve(struct dynbuf *b, size_t more);
TB_MUSTCHECK bool dynbuf_add(struct dynbuf *b, const void *p, size_t n);
TB_MUSTCHECK bool dynbuf_addstr(struct dynbuf *b, const char *s);
TB_MUSTCHECK bool dynbuf_addc(struct dynbuf *b, char c);
TB_MUSTCHECK bool dynbuf_addf(struct dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
TB_MUSTCHECK bool dynbuf_vaddf(struct dynbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* n zeroed bytes appended; returns where they start, NULL past max. For arrays
 * of structs: the block is malloc-aligned and elements are contiguous. */
TB_MUSTCHECK void *dynbuf_push(struct dynbuf *b, size_t n);

/* Appends everything fd gives until end of file. false on a read error
 * (errno says which) or when the file holds more than max (failed set). */
TB_MUSTCHECK bool dynbuf_read_fd(struct dynbuf *b, int fd);

/* The contents as a C string ("" while empty). */
const char *dynbuf_str(const struct dynbuf *b);
/* Hands the block to the caller (NULL while empty; free or secret_free it)
 * and leaves the buffer empty. */
void *dynbuf_take(struct dynbuf *b, size_t *len);
#endif
