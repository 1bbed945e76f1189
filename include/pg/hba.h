/* PgBouncer's auth_hba_file: the subset of pg_hba.conf that a pooler can
 * enforce. Fields: TYPE DATABASE USER [ADDRESS [MASK]] METHOD [name=value...]. */
#ifndef TB_PG_HBA_H
#define TB_PG_HBA_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HBA_MAX_FILE_SIZE ((size_t)64 << 20)

enum hba_method {
	HBA_REJECT,
	HBA_TRUST,
	HBA_PASSWORD,
	HBA_MD5,
	HBA_SCRAM,
	HBA_PEER,
	HBA_CERT
};

struct hba;

/* Parses text[0..len). On error returns NULL with err "fname:line: reason". */
struct hba *hba_parse(const char *text, size_t len, const char *fname, char *err, size_t errlen);
/* Reads and parses a file of at most HBA_MAX_FILE_SIZE bytes. */
struct hba *hba_load(const char *path, char *err, size_t errlen);
/* First matching rule wins; no match is HBA_REJECT. addr is NULL for
 * Unix-socket connections. An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is
 * also matched against IPv4 rules. */
enum hba_method hba_match(const struct hba *h, bool is_unix, bool is_tls, const char *db, const char *user,
			  const struct sockaddr *addr);
/* Same, and *line is the matching rule's line number (0 if none), for logs. */
enum hba_method hba_match_rule(const struct hba *h, bool is_unix, bool is_tls, const char *db,
			       const char *user, const struct sockaddr *addr, size_t *line);
size_t hba_rule_count(const struct hba *h);
/* Adds the user name maps of an auth_ident_file (pg_ident.conf: MAPNAME
 * SYSTEM-USERNAME DATABASE-USERNAME; a system name starting with / is a
 * POSIX extended regex whose first group \1 may appear in the database
 * name; database name "all" matches any). False and err on a bad file. */
bool hba_load_ident(struct hba *h, const char *path, char *err, size_t errlen);
/* The same from text[0..len) (fuzzable); fname is for messages. */
bool hba_parse_ident(struct hba *h, const char *text, size_t len, const char *fname, char *err, size_t errlen);
/* Whether system_user (the peer's OS user, or a certificate's CN) may log
 * in as db_user under the rule at rule_line: the names must be equal, or,
 * with map= on that rule, a line of the map must allow it. */
bool hba_user_allowed(const struct hba *h, size_t rule_line, const char *system_user, const char *db_user);
void hba_free(struct hba *h);
/* pg_hba.conf spelling: "trust", "scram-sha-256", ... */
const char *hba_method_name(enum hba_method m);
#endif
