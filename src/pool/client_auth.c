#include "pool/client_auth.h"

#include <openssl/crypto.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/tls.h"
#include "pg/hba.h"
#include "pg/md5auth.h"
#include "pg/proto.h"
#include "pg/scram.h"
#include "pg/userlist.h"
#include "pool/authq.h"
#include "pool/client.h"
#include "pool/client_rare.h"
#include "pool/runtime.h"

enum auth_method {
	AM_TRUST,
	AM_REJECT,
	AM_PLAIN,
	AM_MD5,
	AM_SCRAM,
	AM_PEER,
	AM_CERT,
};

struct client_auth {
	enum auth_method method;
	const struct userlist_entry *entry; /* NULL: unknown user, fail after the exchange */
	unsigned char salt[4];
	struct scram_server *scram;
	bool scram_first_done;
	struct userlist_entry *looked_up; /* from auth_query: owned, wiped on free */
	struct authq_waiter wait;         /* while auth_query runs for this login */
};

void client_auth_free(struct client_auth *a)
{
	if (!a)
		return;
	if (a->scram)
		scram_server_free(a->scram);
	authq_cancel(&a->wait);
	userlist_entry_free(a->looked_up);
	secret_wipe(a, sizeof(*a));
	free(a);
}

bool client_auth_take_scram_keys(const struct client_auth *a, struct scram_keys *out)
{
	memset(out, 0, sizeof(*out));
	return a && a->method == AM_SCRAM && a->entry && a->entry->kind == USERLIST_SCRAM &&
	       scram_server_keys(a->scram, out);
}

char *client_auth_take_password(const struct client_auth *a)
{
	const struct userlist_entry *e = a ? a->looked_up : NULL;
	return e && (e->kind == USERLIST_PLAIN || e->kind == USERLIST_MD5) ? xstrdup(e->secret) : NULL;
}

/* Always closes the client: false, for the login chain to pass on. */
static bool fail_login(struct client *c)
{
	client_close(c, "28P01", "password authentication failed for user \"%s\"", c->user);
	return false;
}

/* The client's address for hba rules: NULL on a Unix socket. */
static const struct sockaddr *peer_for_hba(const struct client *c, struct sockaddr_storage *ss)
{
	return !c->is_unix && peer_addr_get(&c->addr, ss) ? (const struct sockaddr *)ss : NULL;
}

static enum auth_method from_hba(enum hba_method m)
{
	switch (m) {
	case HBA_TRUST:
		return AM_TRUST;
	case HBA_PASSWORD:
		return AM_PLAIN;
	case HBA_MD5:
		return AM_MD5;
	case HBA_SCRAM:
		return AM_SCRAM;
	case HBA_PEER:
		return AM_PEER;
	case HBA_CERT:
		return AM_CERT;
	default:
		return AM_REJECT;
	}
}

static enum auth_method choose_method(struct client *c)
{
	struct worker *w = client_worker(c);
	switch (w->cfg->auth_type) {
	case AUTH_TYPE_TRUST:
		return AM_TRUST;
	case AUTH_TYPE_PLAIN:
		return AM_PLAIN;
	case AUTH_TYPE_MD5:
		return AM_MD5;
	case AUTH_TYPE_SCRAM:
		return AM_SCRAM;
	case AUTH_TYPE_HBA:
		if (!w->hba)
			return AM_REJECT;
		{
			struct sockaddr_storage ss;
			return from_hba(hba_match(w->hba, c->is_unix, c->tls, c->db->name, c->user,
						  peer_for_hba(c, &ss)));
		}
	}
	return AM_REJECT;
}

/* False: the client is closed. */
static TB_MUSTCHECK bool send_request(struct client *c, uint32_t code, const void *data, size_t len)
{
	struct pbuf b;
	pbuf_init(&b, 65536);
	proto_auth_request(&b, code, data, len);
	bool ok = !b.failed && client_send(c, b.data, b.len);
	pbuf_free(&b);
	return ok;
}

/* The rule that chose this method, for its map= (auth_ident_file). */
static bool name_allowed(const struct client *c, const char *system_user)
{
	struct worker *w = client_worker(c);
	size_t line = 0;
	struct sockaddr_storage ss;
	hba_match_rule(w->hba, c->is_unix, c->tls, c->db->name, c->user, peer_for_hba(c, &ss), &line);
	return hba_user_allowed(w->hba, line, system_user, c->user);
}

/* The functions of the login chain return false when they closed the client. */
static TB_MUSTCHECK bool auth_peer(struct client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (!c->is_unix || getsockopt(c->sock.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		client_close(c, "28000", "peer authentication is only available on Unix sockets");
		return false;
	}
	/* Local passwd lookup; NSS modules that go to the network would block. */
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) != 0 || !res || !name_allowed(c, res->pw_name)) {
		client_close(c, "28000", "peer authentication failed for user \"%s\"", c->user);
		return false;
	}
	return client_auth_ok(c);
}

static TB_MUSTCHECK bool auth_cert(struct client *c)
{
	char *cn = c->tls ? tls_peer_common_name(c->sock.ssl) : NULL;
	bool ok = cn && name_allowed(c, cn);
	free(cn);
	if (!ok) {
		client_close(c, "28000", "certificate authentication failed for user \"%s\"", c->user);
		return false;
	}
	return client_auth_ok(c);
}

static bool wants_secret(enum auth_method m)
{
	return m == AM_PLAIN || m == AM_MD5 || m == AM_SCRAM;
}

static TB_MUSTCHECK bool start_method(struct client *c, struct client_auth *a);

static TB_MUSTCHECK bool begin_scram(struct client *c, struct client_auth *a)
{
	struct worker *w = client_worker(c);
	static const char mechs[] = "SCRAM-SHA-256\0";
	const struct scram_secret *secret = NULL;
	if (a->entry && a->entry->kind == USERLIST_SCRAM)
		secret = &a->entry->scram;
	else if (a->entry && a->entry->kind == USERLIST_PLAIN)
		secret = userlist_plain_scram(a->entry, w->cfg->scram_iterations);
	if (secret) {
		a->scram = scram_server_new(secret);
	} else {
		/* Unknown user, or an md5 secret that cannot serve SCRAM: a mock
		 * exchange that fails at the end, with a salt stable per user name so
		 * retries cannot tell a missing user from a wrong password. The key
		 * is process-wide by design (pool/worker.h): the same salt on every loop. */
		static unsigned char mock_key[32];
		static bool have_key;
		if (!have_key)
			have_key = random_bytes(mock_key, sizeof(mock_key));
		a->scram = scram_server_new_mock(c->user, mock_key, sizeof(mock_key));
	}
	return send_request(c, 10, mechs, sizeof(mechs));
}

/* PgBouncer lets its own OS user into the console over the Unix socket by
 * peer credentials, as user pgbouncer, whatever admin_users says: the way
 * in when the configuration locks everyone else out. */
static bool console_by_peer(struct client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (!c->is_admin || !c->is_unix ||
	    (strcmp(c->user, "pgbouncer") != 0 && strcmp(c->user, "tokenbouncer") != 0))
		return false;
	if (getsockopt(c->sock.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != getuid())
		return false;
	c->console_peer = true;
	return true;
}

bool client_auth_begin(struct client *c)
{
	struct worker *w = client_worker(c);
	struct client_auth *a = xcalloc(1, sizeof(*a));
	client_rare_get(c)->auth = a;
	if (console_by_peer(c))
		return client_auth_ok(c);
	a->method = choose_method(c);
	a->entry = w->users ? userlist_find(w->users, c->user) : NULL;
	list_init(&a->wait.node);
	if (!a->entry && wants_secret(a->method) && authq_enabled(c)) {
		char why[300];
		if (!authq_start(c, &a->wait, why, sizeof(why))) {
			client_close(c, "08P01", "auth_query cannot run: %s", why);
			return false;
		}
		sock_set_read(&c->sock, false);
		return true;
	}
	return start_method(c, a);
}

bool client_auth_lookup_done(struct client *c, struct userlist_entry *e, const char *err)
{
	struct client_auth *a = client_auth_of(c);
	if (err) {
		userlist_entry_free(e);
		client_close(c, "08P01", "%s", err);
		return false;
	}
	a->looked_up = e;
	a->entry = e; /* NULL: not found, the exchange fails as for a wrong password */
	sock_set_read(&c->sock, true);
	return start_method(c, a);
}

static bool start_method(struct client *c, struct client_auth *a)
{
	struct worker *w = client_worker(c);
	switch (a->method) {
	case AM_TRUST:
		return client_auth_ok(c);
	case AM_REJECT:
		client_close(c, "28000", "connection rejected by hba rules for user \"%s\", database \"%s\"",
			     c->user, c->db->name);
		return false;
	case AM_PEER:
		return auth_peer(c);
	case AM_CERT:
		return auth_cert(c);
	case AM_PLAIN:
		if (!c->tls && !c->is_unix && !w->cfg->auth_plain_without_tls) {
			client_close(c, "28000",
				     "cleartext password authentication requires TLS "
				     "(set auth_plain_without_tls to allow it)");
			return false;
		}
		return send_request(c, 3, NULL, 0);
	case AM_MD5:
		if (a->entry && a->entry->kind == USERLIST_SCRAM) {
			/* As PostgreSQL: md5 in the rules means SCRAM when the secret is SCRAM. */
			a->method = AM_SCRAM;
			return begin_scram(c, a);
		}
		if (!random_bytes(a->salt, sizeof(a->salt))) {
			client_close(c, "58000", "no random bytes for the md5 salt");
			return false;
		}
		return send_request(c, 5, a->salt, sizeof(a->salt));
	case AM_SCRAM:
		return begin_scram(c, a);
	}
	return true;
}

static bool check_plain(const struct userlist_entry *e, const char *user, const char *pw)
{
	if (!e)
		return false;
	switch (e->kind) {
	case USERLIST_PLAIN: {
		size_t a = strlen(e->secret), b = strlen(pw);
		return a == b && CRYPTO_memcmp(e->secret, pw, a) == 0;
	}
	case USERLIST_MD5: {
		char h[36];
		bool ok = md5_password_hash(pw, user, h) && CRYPTO_memcmp(h, e->secret, 35) == 0;
		secret_wipe(h, sizeof(h));
		return ok;
	}
	case USERLIST_SCRAM: {
		struct scram_secret s;
		bool ok = scram_secret_from_password(pw, e->scram.salt, e->scram.salt_len,
						     e->scram.iterations, &s) &&
			  CRYPTO_memcmp(s.stored_key, e->scram.stored_key, sizeof(s.stored_key)) == 0;
		secret_wipe(&s, sizeof(s));
		return ok;
	}
	}
	return false;
}

static const char *password_body(const unsigned char *body, size_t len)
{
	/* A PasswordMessage is one NUL-terminated string that fills the body. */
	if (len == 0 || body[len - 1] != '\0' || memchr(body, 0, len) != body + len - 1)
		return NULL;
	return (const char *)body;
}

static TB_MUSTCHECK bool scram_step(struct client *c, struct client_auth *a, const unsigned char *body,
				    size_t len)
{
	char err[200];
	char *out = NULL;
	size_t outlen = 0;
	if (!a->scram_first_done) {
		struct msg_reader r;
		reader_init(&r, body, len);
		const char *mech = reader_str(&r);
		uint32_t dlen = reader_u32(&r);
		const unsigned char *data = reader_bytes(&r, dlen);
		if (r.bad || !reader_done(&r)) {
			client_close(c, "08P01", "malformed SASLInitialResponse");
			return false;
		}
		if (strcmp(mech, "SCRAM-SHA-256") != 0) {
			client_close(c, "28000", "unsupported SASL mechanism \"%s\"", mech);
			return false;
		}
		if (!scram_server_first(a->scram, (const char *)data, dlen, &out, &outlen, err, sizeof(err))) {
			client_close(c, "08P01", "invalid SCRAM message: %s", err);
			return false;
		}
		a->scram_first_done = true;
		bool open = send_request(c, 11, out, outlen);
		free(out);
		return open;
	}
	enum scram_result res = scram_server_final(a->scram, (const char *)body, len, &out, &outlen, err,
						   sizeof(err));
	bool open = false;
	if (res == SCRAM_FAIL_PROTOCOL) {
		client_close(c, "08P01", "invalid SCRAM message: %s", err);
	} else if (res != SCRAM_OK || !a->entry) {
		fail_login(c);
	} else {
		/* SASLFinal and the login reply that follows leave in one send. */
		sock_cork(&c->sock);
		open = send_request(c, 12, out, outlen) && client_auth_ok(c);
		if (open && !sock_uncork(&c->sock)) {
			client_close(c, NULL, "write failed: %s", sock_errmsg(&c->sock));
			open = false;
		}
	}
	free(out);
	return open;
}

bool client_auth_message(struct client *c, char type, const unsigned char *body, size_t len)
{
	struct client_auth *a = client_auth_of(c);
	if (type != 'p' || !a || a->wait.lookup) {
		client_close(c, "08P01", "expected a password message, got '%c'",
			     type >= 32 && type < 127 ? type : '?');
		return false;
	}
	if (a->method == AM_SCRAM)
		return scram_step(c, a, body, len);
	const char *pw = password_body(body, len);
	if (!pw) {
		client_close(c, "08P01", "malformed password message");
		return false;
	}
	bool ok;
	if (a->method == AM_MD5)
		ok = a->entry && md5_verify_response(a->entry->secret, a->entry->kind == USERLIST_MD5,
						     c->user, a->salt, pw);
	else
		ok = check_plain(a->entry, c->user, pw);
	return ok ? client_auth_ok(c) : fail_login(c);
}
