/* A server connection's upstream authentication: the answer to each AuthenticationRequest
 * (cleartext with the alias's password or a cloud token, md5, SCRAM with a password or the
 * keys of a client's SCRAM login). */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "pg/md5auth.h"
#include "pg/proto.h"
#include "pg/scram.h"
#include "pool/pool-t.h"
#include "pool/server_priv.h"
#include "token/method.h"

/* A token goes upstream as the password (not the alias's password). */
static bool sends_token(const struct server *s)
{
	return s->pool->token && !upstream_method_uses_password(s->pool->db->cfg);
}

static bool require_password(struct server *s)
{
	if (s->pool->password)
		return true;
	server_fail_loginf(s, "28P01",
			   "no password for upstream user \"%s\" (set password= on the alias, "
			   "a plain or md5 entry in auth_file, or log in with SCRAM against a verifier in "
			   "auth_file for SCRAM pass-through)",
			   s->pool->user);
	return false;
}

static bool auth_cleartext(struct server *s)
{
	if (s->bundle && sends_token(s)) {
		/* §0.2.4: with automatic IAM login the server must not ask. */
		server_fail_loginf(s, "28000",
				   "the instance asked alias \"%s\" for a password: automatic IAM login was "
				   "not applied (is \"%s\" an IAM database user of the instance?)",
				   s->pool->db->name, s->pool->user);
		return false;
	}
	if (sends_token(s)) {
		/* Config validation already demands TLS; this guards the wire itself. */
		if (!s->tls || !s->token) {
			server_fail_loginf(s, "08001", "refusing to send a token for alias \"%s\" without TLS",
					   s->pool->db->name);
			return false;
		}
		struct pbuf b;
		pbuf_init(&b, 70000);
		proto_password(&b, s->token, s->token_len);
		server_drop_token(s);
		return server_send_pbuf(s, &b);
	}
	if (!require_password(s))
		return false;
	struct pbuf b;
	pbuf_init(&b, 70000);
	proto_password(&b, s->pool->password, strlen(s->pool->password));
	return server_send_pbuf(s, &b);
}

static bool auth_md5(struct server *s, struct msg_reader *r)
{
	const unsigned char *salt = reader_bytes(r, 4);
	if (!salt) {
		server_fail_loginf(s, "08P01", "malformed MD5 request from server");
		return false;
	}
	if (!require_password(s))
		return false;
	char out[36];
	if (!md5_client_response(s->pool->password, s->pool->user, salt, out)) {
		server_fail_loginf(s, "28P01", "cannot compute md5 response");
		return false;
	}
	struct pbuf b;
	pbuf_init(&b, 128);
	proto_password(&b, out, strlen(out));
	secret_wipe(out, sizeof(out));
	return server_send_pbuf(s, &b);
}

static bool list_has_scram(struct msg_reader *r)
{
	for (;;) {
		const char *mech = reader_str(r);
		if (r->bad || !*mech)
			return false;
		if (strcmp(mech, "SCRAM-SHA-256") == 0)
			return true;
	}
}

static bool auth_sasl(struct server *s, uint32_t code, struct msg_reader *r)
{
	char err[200];
	char *out = NULL;
	size_t outlen = 0;
	struct pbuf b;
	pbuf_init(&b, 4096);
	if (code == 10) {
		if (!list_has_scram(r)) {
			server_fail_loginf(s, "28000", "server offers no SASL mechanism we support");
			pbuf_free(&b);
			return false;
		}
		/* Without a password, SCRAM pass-through: the key of a client's login. */
		if (!s->pool->scram_keys && !require_password(s)) {
			pbuf_free(&b);
			return false;
		}
		if (s->scram)
			scram_client_free(s->scram);
		s->scram = s->pool->password ? scram_client_new(s->pool->password)
					     : scram_client_new_keys(s->pool->scram_keys);
		if (s->pool->password)
			scram_client_use_cache(s->scram, &s->pool->password_keys);
		if (!s->scram || !scram_client_first(s->scram, &out, &outlen)) {
			server_fail_loginf(s, "28000", "cannot start SCRAM exchange");
			pbuf_free(&b);
			return false;
		}
		proto_sasl_initial(&b, "SCRAM-SHA-256", out, outlen);
	} else if (code == 11 && s->scram) {
		size_t n = reader_left(r);
		if (!scram_client_final(s->scram, (const char *)reader_bytes(r, n), n, &out, &outlen, err,
					sizeof(err))) {
			server_fail_loginf(s, "28000", "SCRAM exchange with server failed: %s", err);
			pbuf_free(&b);
			return false;
		}
		proto_sasl_response(&b, out, outlen);
	} else if (code == 12 && s->scram) {
		size_t n = reader_left(r);
		bool ok = scram_client_verify_server(s->scram, (const char *)reader_bytes(r, n), n, err,
						     sizeof(err));
		pbuf_free(&b);
		if (!ok)
			server_fail_loginf(s, "28000", "server SCRAM signature invalid: %s", err);
		return ok;
	} else {
		server_fail_loginf(s, "08P01", "unexpected SASL message from server");
		pbuf_free(&b);
		return false;
	}
	if (out) {
		secret_wipe(out, outlen);
		free(out);
	}
	return server_send_pbuf(s, &b);
}

void server_login_auth(struct server *s, const unsigned char *body, size_t len)
{
	struct msg_reader r;
	reader_init(&r, body, len);
	uint32_t code = reader_u32(&r);
	switch (code) {
	case 0:
		return;
	case 3:
		auth_cleartext(s);
		return;
	case 5:
	case 10:
		if (sends_token(s)) {
			server_fail_loginf(
				s, "28000",
				"server asked for %s, but alias \"%s\" logs in with a token, "
				"which needs a cleartext password request over TLS (is this user set up for "
				"IAM authentication?)",
				code == 5 ? "md5" : "SCRAM", s->pool->db->name);
			return;
		}
		if (code == 5) {
			auth_md5(s, &r);
			return;
		}
		auth_sasl(s, code, &r);
		return;
	case 11:
	case 12:
		auth_sasl(s, code, &r);
		return;
	default:
		server_fail_loginf(s, "28000", "server requested unsupported authentication method %u", code);
	}
}
