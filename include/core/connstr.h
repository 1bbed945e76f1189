/* Parser for libpq-style connection strings: whitespace-separated key=value
 * pairs, as in [databases] and [users] entries:
 *
 *   host=db.example.com port=5432 password='it\'s a secret' application_name=''
 *
 * Spaces may surround '='. A value in single quotes may contain spaces; inside
 * it, and in an unquoted value, a backslash makes the next character literal.
 * Keys are letters, digits and '_'. Values of "password" never appear in error
 * messages, nor does any text that follows one. */
#ifndef TB_CORE_CONNSTR_H
#define TB_CORE_CONNSTR_H
#include <stdbool.h>
#include <stddef.h>

/* Called once per pair, in order. key and value are valid only during the
 * call (the buffer holding them is wiped afterwards). Return false to stop,
 * with a reason in err. */
typedef bool (*connstr_cb)(void *arg, const char *key, const char *value, char *err, size_t errlen);

/* False on a syntax error or when cb fails; err then holds the reason
 * (without file or line: the caller adds those). */
bool connstr_parse(const char *text, connstr_cb cb, void *arg, char *err, size_t errlen);
#endif
