#include "core/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "core/dynbuf.h"
#include "core/util.h"

char *file_read_all(const char *path, size_t cap, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err_set(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct dynbuf b;
	dynbuf_init(&b, cap, true);
	bool ok = dynbuf_read_fd(&b, fd) && dynbuf_reserve(&b, 0);
	int saved = errno;
	close(fd);
	if (!ok) {
		err_set(err, errlen, "%s: %s", path, b.failed ? "file too large" : strerror(saved));
		dynbuf_free(&b);
		return NULL;
	}
	return dynbuf_take(&b, len);
}
