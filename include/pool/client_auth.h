/* Local client authentication: trust, cleartext, md5, SCRAM-SHA-256, hba,
 * peer and cert, against auth_file. Clients never see upstream secrets. */
#ifndef TB_POOL_CLIENT_AUTH_H
#define TB_POOL_CLIENT_AUTH_H
#include <stdbool.h>
#include <stddef.h>

#include "core/mustcheck.h"
#include "pool/pool-t.h"

/* Pick the method and send the first request; may finish at once (trust).
 * These three return false when they closed the client. */
TB_MUSTCHECK bool client_auth_begin(struct client *c);
/* A message from the client while in CL_AUTH. */
TB_MUSTCHECK bool client_auth_message(struct client *c, char type, const unsigned char *body, size_t len);
void client_auth_free(struct client_auth *a);
struct userlist_entry;
/* auth_query answered for this login: the user's entry (owned from here
 * on; NULL: no such user, fail as a wrong password), or err: close. */
TB_MUSTCHECK bool client_auth_lookup_done(struct client *c, struct userlist_entry *e, const char *err);
/* After a login against a secret auth_query returned: a copy of the md5 hash
 * or plain password that logs the user's servers in, or NULL. */
char *client_auth_take_password(const struct client_auth *a);
struct scram_keys;
/* After a SCRAM login against an auth_file verifier: the keys SCRAM
 * pass-through logs in upstream with. False for any other login. */
bool client_auth_take_scram_keys(const struct client_auth *a, struct scram_keys *out);
#endif
