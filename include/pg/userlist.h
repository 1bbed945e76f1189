/* PgBouncer's auth_file (userlist.txt): one `"user" "secret"` pair per line. */
#ifndef TB_PG_USERLIST_H
#define TB_PG_USERLIST_H
#include <stdbool.h>
#include <stddef.h>

#include "pg/scram.h"

/* Longest user name and secret accepted; secrets may be long IAM tokens. */
#define USERLIST_MAX_USER_LEN 1024
#define USERLIST_MAX_SECRET_LEN 65536
#define USERLIST_MAX_FILE_SIZE ((size_t)64 << 20)

enum userlist_kind {
	USERLIST_PLAIN,
	USERLIST_MD5,
	USERLIST_SCRAM
};

struct userlist_entry {
	char *user;
	char *secret;
	enum userlist_kind kind;
	struct scram_secret scram;    /* valid if kind == USERLIST_SCRAM */
	struct scram_secret *derived; /* USERLIST_PLAIN: cache of userlist_plain_scram */
};

struct userlist;

/* Parses text[0..len). Lines: `"user" "secret" [ignored...]`; `""` inside a
 * field is a literal quote; blank lines and lines whose first non-blank
 * character is ';' or '#' are comments. A user listed twice: the last line
 * wins, as in PgBouncer. On error returns NULL and err holds
 * "fname:line: reason" (never the secret). */
struct userlist *userlist_parse(const char *text, size_t len, const char *fname, char *err, size_t errlen);
/* Reads and parses a file of at most USERLIST_MAX_FILE_SIZE bytes. */
struct userlist *userlist_load(const char *path, char *err, size_t errlen);
/* O(log n); NULL if absent. */
const struct userlist_entry *userlist_find(const struct userlist *ul, const char *user);
size_t userlist_count(const struct userlist *ul);
/* Entry i in user-name order, for listing; NULL past the end. */
const struct userlist_entry *userlist_entry_at(const struct userlist *ul, size_t i);
/* The SCRAM secret a plain-password entry logs clients in with. Its PBKDF2
 * is nearly the whole cost of a SCRAM login, so it runs once per entry and
 * iteration count (a random salt, as PostgreSQL would store it) and the keys
 * are kept with the entry until the userlist is freed (a reload loads a new
 * one), which wipes them. NULL if the entry is not plain or derivation failed. */
const struct scram_secret *userlist_plain_scram(const struct userlist_entry *e, int iterations);
/* One entry outside any file (a secret auth_query returned), classified as
 * a file's line would be; NULL if too long or an invalid SCRAM secret.
 * Free with userlist_entry_free, which wipes it. */
struct userlist_entry *userlist_entry_new(const char *user, const char *secret);
void userlist_entry_free(struct userlist_entry *e);
/* Wipes every secret. Accepts NULL. */
void userlist_free(struct userlist *ul);
const char *userlist_kind_name(enum userlist_kind kind);
#endif
