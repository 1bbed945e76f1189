/* libFuzzer: auth_file and hba parsing, and the SCRAM server exchange fed
 * with arbitrary client messages (the first byte picks the split point). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/hba.h"
#include "pg/scram.h"
#include "pg/userlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void scram_exchange(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	size_t cut = data[0] % size;
	static const unsigned char salt[16] = "fuzz-salt-16byte";
	struct scram_secret secret;
	if (!scram_secret_from_password("pencil", salt, sizeof(salt), 16, &secret))
		return;
	struct scram_server *s = scram_server_new(&secret);
	char err[256], *out = NULL;
	size_t outlen = 0;
	if (scram_server_first(s, (const char *)data + 1, cut, &out, &outlen, err, sizeof(err))) {
		free(out);
		out = NULL;
		scram_server_final(s, (const char *)data + 1 + cut, size - 1 - cut, &out, &outlen, err,
				   sizeof(err));
		free(out);
	}
	scram_server_free(s);
	struct scram_client *c = scram_client_new("pencil");
	if (c && scram_client_first(c, &out, &outlen)) {
		free(out);
		out = NULL;
		if (scram_client_final(c, (const char *)data, size, &out, &outlen, err, sizeof(err)))
			free(out);
	}
	if (c)
		scram_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct userlist *ul = userlist_parse((const char *)data, size, "u.txt", err, sizeof(err));
	if (ul)
		userlist_free(ul);
	struct hba *h = hba_parse((const char *)data, size, "hba.conf", err, sizeof(err));
	if (h)
		hba_free(h);
	/* The same bytes as an auth_ident_file, then used by a map= rule. */
	h = hba_parse("local all all peer map=m\n", 25, "hba.conf", err, sizeof(err));
	if (h && hba_parse_ident(h, (const char *)data, size, "ident.conf", err, sizeof(err)))
		(void)hba_user_allowed(h, 1, "postgres", "alice");
	hba_free(h);
	scram_exchange(data, size);
	return 0;
}
