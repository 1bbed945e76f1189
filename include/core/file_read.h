/* Reading a whole small file (auth_file, auth_hba_file, a key file) without
 * stdio, whose buffers would keep a copy of a secret. Built on core/dynbuf,
 * kept apart from core/util so that util depends on nothing of ours. */
#ifndef TB_CORE_FILE_READ_H
#define TB_CORE_FILE_READ_H
#include <stddef.h>

/* A whole file of at most cap bytes, NUL-terminated, in a buffer the caller
 * frees (secret_free when it may hold a secret); *len is its length without
 * the NUL. NULL on failure, err as "path: reason". */
char *file_read_all(const char *path, size_t cap, size_t *len, char *err, size_t errlen);
#endif
