/* md5 hashing, auth_file (userlist) and hba file parsing and matching. */
#include "pg/hba.h"
#include "pg/md5auth.h"
#include "pg/userlist.h"
#include "unit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PENCIL_SECRET \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==" \
	"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* Expected values computed with python3 hashlib when this test was written. */
#define MD5_PENCIL_USER "md520c46e3762c864548e296b33c3406aa9" /* md5("pencil" "user") */
#define MD5_PENCIL_RESP "md54376eb6913b38f9aaff38dc7cf19ca76" /* salt 01 02 03 04 */
#define MD5_FOO_BAR "md53858f62230ac3c915f300c664312c63f"     /* md5("foo" "bar") */
#define MD5_SECRET_PG "md553f48b7c4b76a86ce72276c5755f217d"   /* md5("secret" "postgres") */
#define MD5_SECRET_RESP "md5c546d0bbed2af888b328536b45c76348" /* salt de ad be ef */
#define MD5_EMPTY_USER "md5ee11cbb19052e40b07aac0ca060c23ee"  /* md5("" "user") */

static void test_md5(void)
{
	const unsigned char salt1[4] = { 1, 2, 3, 4 }, salt2[4] = { 0xde, 0xad, 0xbe, 0xef };
	char out[36];

	CHECK(md5_encrypt("foo", (const unsigned char *)"bar", 3, out));
	CHECK_STR(out, MD5_FOO_BAR);
	CHECK(md5_password_hash("pencil", "user", out));
	CHECK_STR(out, MD5_PENCIL_USER);
	CHECK(md5_password_hash("", "user", out));
	CHECK_STR(out, MD5_EMPTY_USER);
	CHECK(md5_password_hash("secret", "postgres", out));
	CHECK_STR(out, MD5_SECRET_PG);

	CHECK(md5_client_response("pencil", "user", salt1, out));
	CHECK_STR(out, MD5_PENCIL_RESP);
	CHECK(md5_client_response(MD5_PENCIL_USER, "user", salt1, out));
	CHECK_STR(out, MD5_PENCIL_RESP);
	CHECK(md5_client_response("secret", "postgres", salt2, out));
	CHECK_STR(out, MD5_SECRET_RESP);
	CHECK(!md5_client_response(NULL, "user", salt1, out));

	CHECK(md5_verify_response("pencil", false, "user", salt1, MD5_PENCIL_RESP));
	CHECK(md5_verify_response(MD5_PENCIL_USER, true, "user", salt1, MD5_PENCIL_RESP));
	CHECK(!md5_verify_response("pencil", false, "user", salt2, MD5_PENCIL_RESP));
	CHECK(!md5_verify_response("pencil", false, "other", salt1, MD5_PENCIL_RESP));
	CHECK(!md5_verify_response("pencil2", false, "user", salt1, MD5_PENCIL_RESP));
	CHECK(!md5_verify_response(MD5_PENCIL_USER, false, "user", salt1, MD5_PENCIL_RESP));
	CHECK(!md5_verify_response("pencil", true, "user", salt1, MD5_PENCIL_RESP));
	CHECK(!md5_verify_response("pencil", false, "user", salt1, MD5_PENCIL_RESP "0"));
	CHECK(!md5_verify_response("pencil", false, "user", salt1, "md54376eb6913b38f9aaff38dc7cf19ca7"));
	CHECK(!md5_verify_response("pencil", false, "user", salt1, "MD54376EB6913B38F9AAFF38DC7CF19CA76"));
	CHECK(!md5_verify_response("pencil", false, "user", salt1, ""));
	CHECK(!md5_verify_response("", false, "user", salt1, ""));
	CHECK(!md5_verify_response(NULL, false, "user", salt1, MD5_PENCIL_RESP));

	CHECK(md5_is_hashed(MD5_PENCIL_USER));
	CHECK(!md5_is_hashed("md520C46E3762C864548E296B33C3406AA9"));
	CHECK(!md5_is_hashed("md520c46e3762c864548e296b33c3406aa"));
	CHECK(!md5_is_hashed("md520c46e3762c864548e296b33c3406aa90"));
	CHECK(!md5_is_hashed("md5"));
	CHECK(!md5_is_hashed(NULL));
}

static struct userlist *ul_parse(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return userlist_parse(text, strlen(text), "users.txt", err, errlen);
}

static void ul_bad(const char *text, const char *want_err)
{
	char err[256];
	struct userlist *ul = ul_parse(text, err, sizeof(err));

	CHECK(ul == NULL);
	CHECK(strstr(err, want_err) != NULL);
	if (!strstr(err, want_err))
		fprintf(stderr, "  wanted \"%s\", got \"%s\"\n", want_err, err);
	userlist_free(ul);
}

static void test_userlist_kinds(void)
{
	char err[256];
	const struct userlist_entry *e;
	struct userlist *ul = ul_parse("; PgBouncer comment\n"
				       "# hash comment\n"
				       "\n"
				       "   \t\n"
				       "\"plain\" \"pa ss\"\n"
				       "  \"md5user\"\t\"" MD5_PENCIL_USER "\" extra fields \"ignored\"\n"
				       "\"scram\" \"" PENCIL_SECRET "\"\r\n"
				       "\"q\"\"uote\" \"a\"\"b\"\"\"\n"
				       "\"upper\" \"md520C46E3762C864548E296B33C3406AA9\"\n"
				       "\"short\" \"md5abc\"\n"
				       "\"empty\" \"\"\n"
				       "\"nospace\"\"x\"\"\" \"y\"\n"
				       "\"dup\" \"first\"\n"
				       "\"dup\" \"second\"\n"
				       "\"dup\" \"third\"",
				       err, sizeof(err));

	CHECK(ul != NULL);
	if (!ul) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(userlist_count(ul) == 9);
	CHECK((e = userlist_find(ul, "plain")) && e->kind == USERLIST_PLAIN);
	CHECK_STR(e ? e->secret : NULL, "pa ss");
	CHECK((e = userlist_find(ul, "md5user")) && e->kind == USERLIST_MD5);
	CHECK_STR(e ? e->secret : NULL, MD5_PENCIL_USER);
	CHECK((e = userlist_find(ul, "scram")) && e->kind == USERLIST_SCRAM);
	CHECK(e && e->scram.iterations == 4096 && e->scram.salt_len == 16);
	CHECK((e = userlist_find(ul, "q\"uote")) && e->kind == USERLIST_PLAIN);
	CHECK_STR(e ? e->secret : NULL, "a\"b\"");
	CHECK((e = userlist_find(ul, "upper")) && e->kind == USERLIST_PLAIN);
	CHECK((e = userlist_find(ul, "short")) && e->kind == USERLIST_PLAIN);
	CHECK((e = userlist_find(ul, "empty")) && e->kind == USERLIST_PLAIN && e->secret[0] == '\0');
	CHECK((e = userlist_find(ul, "nospace\"x\"")) != NULL);
	CHECK((e = userlist_find(ul, "dup")) != NULL);
	CHECK_STR(e ? e->secret : NULL, "third");
	CHECK(userlist_find(ul, "nobody") == NULL);
	CHECK(userlist_find(ul, "Plain") == NULL);
	CHECK(userlist_find(ul, NULL) == NULL);
	CHECK_STR(userlist_kind_name(USERLIST_SCRAM), "scram-sha-256");
	/* Listing is in name order. */
	for (size_t i = 1; i < userlist_count(ul); i++)
		CHECK(strcmp(userlist_entry_at(ul, i - 1)->user, userlist_entry_at(ul, i)->user) < 0);
	CHECK(userlist_entry_at(ul, userlist_count(ul)) == NULL);
	userlist_free(ul);

	ul = ul_parse("", err, sizeof(err));
	CHECK(ul && userlist_count(ul) == 0 && userlist_find(ul, "x") == NULL);
	userlist_free(ul);
	ul = userlist_parse(NULL, 0, NULL, err, sizeof(err));
	CHECK(ul && userlist_count(ul) == 0);
	userlist_free(ul);
	userlist_free(NULL);
}

static void test_userlist_errors(void)
{
	char err[256];

	ul_bad("\"a\" \"b\"\n\"unterminated \"x\"\n", "users.txt:2: ");
	ul_bad("\"a\" \"b\"\n\"c\" \"unterminated\n\"d\" \"e\"\n",
	       "users.txt:2: unterminated quoted password");
	ul_bad("\"a\" \"b\"\n\n\"c\"\n", "users.txt:3: missing password field");
	ul_bad("\"c\"   \r\n", "users.txt:1: missing password field");
	ul_bad("\"c\" x\n", "users.txt:1: expected a double-quoted password");
	ul_bad("user \"pw\"\n", "users.txt:1: expected a double-quoted user name");
	ul_bad("\"\" \"pw\"\n", "users.txt:1: empty user name");
	ul_bad("\"unterminated", "users.txt:1: unterminated quoted user name");
	ul_bad("# c\n\"bad\" \"SCRAM-SHA-256$4096:abc$def:ghi\"\n",
	       "users.txt:2: invalid SCRAM secret for user \"bad\"");
	/* The secret never appears in the message. */
	ul_bad("\"bad\" \"SCRAM-SHA-256$4096:c2VjcmV0$topsecret:x\"\n", "invalid SCRAM");
	struct userlist *ul = ul_parse("\"bad\" \"SCRAM-SHA-256$4096:c2VjcmV0$topsecret:x\"\n", err,
				       sizeof(err));
	CHECK(ul == NULL && strstr(err, "topsecret") == NULL);
	/* NUL bytes inside a field. */
	ul = userlist_parse("\"a\" \"b\0c\"\n", 10, "users.txt", err, sizeof(err));
	CHECK(ul == NULL && strstr(err, "users.txt:1: NUL byte") != NULL);
	/* The given length is honoured: the text after it is not read. */
	ul = userlist_parse("\"a\" \"b\"\n\"c", 8, "users.txt", err, sizeof(err));
	CHECK(ul && userlist_count(ul) == 1);
	userlist_free(ul);
	ul = userlist_parse("\"a\" \"b\"", 6, "users.txt", err, sizeof(err));
	CHECK(ul == NULL && strstr(err, "unterminated") != NULL);
	/* Every truncation of a valid line either parses or fails cleanly. */
	const char *line = "\"us\"\"er\" \"" PENCIL_SECRET "\" x\n";
	for (size_t i = 0; i <= strlen(line); i++) {
		ul = userlist_parse(line, i, "t", err, sizeof(err));
		userlist_free(ul);
	}
	CHECK(1);
}

static void test_userlist_long(void)
{
	char err[256];
	size_t n = USERLIST_MAX_SECRET_LEN;
	char *text = malloc(n + 64);
	struct userlist *ul;
	const struct userlist_entry *e;

	/* A 64 KiB password (the maximum) with a "" escape at the end. */
	memcpy(text, "\"tok\" \"", 7);
	memset(text + 7, 'T', n - 1);
	memcpy(text + 7 + n - 1, "\"\"\"\n", 5);
	ul = ul_parse(text, err, sizeof(err));
	CHECK(ul != NULL);
	CHECK((e = userlist_find(ul, "tok")) && strlen(e->secret) == n && e->secret[n - 1] == '"');
	userlist_free(ul);
	/* One byte more is refused. */
	memset(text + 7, 'T', n);
	memcpy(text + 7 + n, "\"\"\"\n", 5);
	ul = ul_parse(text, err, sizeof(err));
	CHECK(ul == NULL && strstr(err, "users.txt:1: password longer than 65536 bytes") != NULL);
	free(text);

	/* Many users; lookups still find each one. */
	size_t cap = 5000 * 40, off = 0;
	text = malloc(cap);
	for (int i = 0; i < 5000; i++)
		off += (size_t)snprintf(text + off, cap - off, "\"user%d\" \"pw%d\"\n", (i * 7919) % 5000, i);
	ul = userlist_parse(text, off, "many", err, sizeof(err));
	CHECK(ul && userlist_count(ul) == 5000);
	int found = 0;
	for (int i = 0; i < 5000; i++) {
		char name[32];
		snprintf(name, sizeof(name), "user%d", i);
		found += userlist_find(ul, name) != NULL;
	}
	CHECK(found == 5000);
	userlist_free(ul);
	free(text);
}

static struct hba *hba_text(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return hba_parse(text, strlen(text), "hba.conf", err, errlen);
}

static void hba_bad(const char *text, const char *want_err)
{
	char err[256];
	struct hba *h = hba_text(text, err, sizeof(err));

	CHECK(h == NULL);
	CHECK(strstr(err, want_err) != NULL);
	if (!strstr(err, want_err))
		fprintf(stderr, "  wanted \"%s\", got \"%s\"\n", want_err, err);
	hba_free(h);
}

static struct sockaddr_storage ss;

static const struct sockaddr *ip(const char *s)
{
	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, s, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, s, &a->sin_addr);
	}
	return (const struct sockaddr *)&ss;
}

#define TCP(db, user, addr) hba_match(h, false, false, db, user, ip(addr))
#define TLS(db, user, addr) hba_match(h, false, true, db, user, ip(addr))
#define UNIX(db, user) hba_match(h, true, false, db, user, NULL)

static void test_hba_match(void)
{
	char err[256];
	size_t line;
	struct hba *h = hba_text(
		"# TYPE  DATABASE        USER            ADDRESS                 METHOD\n"
		"local   all             postgres                                peer\n"
		"local   sameuser        all                                     md5\n"
		"local   \"all\"           all                                     password\n"
		"hostssl app,\"My DB\"     alice,bob       10.0.0.0/8              scram-sha-256 clientcert=verify-full\n"
		"hostssl all             certuser        all                     cert\n"
		"hostnossl app           alice           10.1.0.0/16             reject\n"
		"host    app,  reports   alice           10.0.0.0/8              md5   # trailing comment\n"
		"host    all             all             192.168.1.0 255.255.255.0 trust\n"
		"host    all             all             192.168.0.0 255.255.0.0   reject\n"
		"host    all             all             ::1/128                 trust\n"
		"host    all             all             2001:db8::/32           scram-sha-256\n"
		"host    all             all             2001:db9::1 ffff:ffff::   md5\n"
		"host    all             all             0.0.0.0/0               password\n",
		err, sizeof(err));

	CHECK(h != NULL);
	if (!h) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(hba_rule_count(h) == 13);
	/* local rules */
	CHECK(UNIX("x", "postgres") == HBA_PEER);
	CHECK(UNIX("carol", "carol") == HBA_MD5);
	CHECK(UNIX("other", "carol") == HBA_REJECT);
	CHECK(UNIX("all", "carol") == HBA_PASSWORD);
	/* hostssl with lists, quoted names */
	CHECK(TLS("app", "alice", "10.2.3.4") == HBA_SCRAM);
	CHECK(TLS("My DB", "bob", "10.2.3.4") == HBA_SCRAM);
	CHECK(TLS("my db", "bob", "10.2.3.4") == HBA_PASSWORD);
	CHECK(TLS("x", "certuser", "1.2.3.4") == HBA_CERT);
	CHECK(TCP("x", "certuser", "1.2.3.4") == HBA_PASSWORD);
	/* hostnossl comes before the plain host rule */
	CHECK(TCP("app", "alice", "10.1.2.3") == HBA_REJECT);
	CHECK(TLS("app", "alice", "10.1.2.3") == HBA_SCRAM);
	CHECK(TCP("app", "alice", "10.2.2.3") == HBA_MD5);
	CHECK(TCP("reports", "alice", "10.2.2.3") == HBA_MD5);
	CHECK(TCP("reports", "bob", "10.2.2.3") == HBA_PASSWORD);
	CHECK(TCP("app", "alice", "11.0.0.1") == HBA_PASSWORD);
	/* netmask column, first match wins */
	CHECK(TCP("x", "y", "192.168.1.77") == HBA_TRUST);
	CHECK(TCP("x", "y", "192.168.2.77") == HBA_REJECT);
	CHECK(TCP("x", "y", "192.169.0.1") == HBA_PASSWORD);
	CHECK(hba_match_rule(h, false, false, "x", "y", ip("192.168.2.77"), &line) == HBA_REJECT &&
	      line == 10);
	CHECK(hba_match_rule(h, false, false, "x", "y", ip("192.168.1.77"), &line) == HBA_TRUST && line == 9);
	/* IPv6 */
	CHECK(TCP("x", "y", "::1") == HBA_TRUST);
	CHECK(TCP("x", "y", "::2") == HBA_REJECT);
	CHECK(TCP("x", "y", "2001:db8:1::5") == HBA_SCRAM);
	CHECK(TCP("x", "y", "2001:db9::7") == HBA_MD5);
	CHECK(TCP("x", "y", "2001:dba::7") == HBA_REJECT);
	/* IPv4-mapped IPv6 is matched as IPv4 */
	CHECK(TCP("x", "y", "::ffff:192.168.1.5") == HBA_TRUST);
	CHECK(TCP("app", "alice", "::ffff:10.1.0.1") == HBA_REJECT);
	/* TCP without an address matches only "all" addresses; Unix never matches host rules */
	CHECK(hba_match(h, false, true, "x", "certuser", NULL) == HBA_CERT);
	CHECK(hba_match(h, false, false, "x", "y", NULL) == HBA_REJECT);
	CHECK(UNIX("x", "y") == HBA_REJECT);
	CHECK(hba_match_rule(h, true, false, "x", "y", NULL, &line) == HBA_REJECT && line == 0);
	CHECK(hba_match(NULL, true, false, "x", "y", NULL) == HBA_REJECT);
	CHECK_STR(hba_method_name(HBA_SCRAM), "scram-sha-256");
	CHECK_STR(hba_method_name(HBA_REJECT), "reject");
	hba_free(h);

	/* Prefix boundaries and host bits set in the rule address. */
	h = hba_text("host all all 10.1.2.3/31 trust\nhost all all 10.0.0.0/0 reject\n"
		     "host all all fe80::1/10 md5\n",
		     err, sizeof(err));
	CHECK(h != NULL);
	CHECK(TCP("d", "u", "10.1.2.2") == HBA_TRUST);
	CHECK(TCP("d", "u", "10.1.2.3") == HBA_TRUST);
	CHECK(TCP("d", "u", "10.1.2.4") == HBA_REJECT);
	CHECK(TCP("d", "u", "febf::9") == HBA_MD5);
	CHECK(TCP("d", "u", "fec0::9") == HBA_REJECT);
	hba_free(h);

	/* Empty file: everything rejected. */
	h = hba_text("# nothing\n\n", err, sizeof(err));
	CHECK(h && hba_rule_count(h) == 0);
	CHECK(TCP("d", "u", "1.2.3.4") == HBA_REJECT);
	hba_free(h);
	hba_free(NULL);
}

static void test_hba_errors(void)
{
	hba_bad("local all all trust\nhost all all 10.0.0.0/8\n",
		"hba.conf:2: end-of-line before authentication method");
	hba_bad("\n\nfoo all all trust\n", "hba.conf:3: invalid connection type \"foo\"");
	hba_bad("local all all trust\nlocal all\n", "hba.conf:2: end-of-line before role specification");
	hba_bad("local\n", "hba.conf:1: end-of-line before database specification");
	hba_bad("host all all\n", "hba.conf:1: end-of-line before IP address specification");
	hba_bad("local,host all all trust\n", "hba.conf:1: multiple values specified for connection type");
	hba_bad("hostgssenc all all all trust\n", "hba.conf:1: \"hostgssenc\" is not supported");
	hba_bad("local replication all trust\n", "hba.conf:1: replication connections are not supported");
	hba_bad("local db,replication all trust\n", "replication");
	hba_bad("local samerole all trust\n", "\"samerole\" is not supported");
	hba_bad("local all +admins trust\n", "group membership");
	hba_bad("local @dbs all trust\n", "@file");
	hba_bad("local all all ident\n", "hba.conf:1: authentication method \"ident\" is not supported");
	hba_bad("local all all ldap ldapserver=x\n", "\"ldap\" is not supported");
	hba_bad("local all all md6\n", "hba.conf:1: invalid authentication method \"md6\"");
	hba_bad("host all all samehost trust\n", "\"samehost\" is not supported");
	hba_bad("host all all samenet trust\n", "\"samenet\" is not supported");
	hba_bad("host all all db.example.com trust\n", "host names are not supported");
	hba_bad("host all all 10.0.0.0/33 trust\n", "invalid CIDR mask");
	hba_bad("host all all 10.0.0.0/ trust\n", "invalid CIDR mask");
	hba_bad("host all all 10.0.0.0/8x trust\n", "invalid CIDR mask");
	hba_bad("host all all ::1/129 trust\n", "invalid CIDR mask");
	hba_bad("host all all 10.0.0.300/8 trust\n", "invalid IP address");
	hba_bad("host all all 10.0.0.1 trust\n", "invalid IP mask \"trust\"");
	hba_bad("host all all 10.0.0.1\n", "end-of-line before netmask");
	hba_bad("host all all 10.0.0.1 ffff:: trust\n", "IP address and mask do not match");
	hba_bad("host all all 10.0.0.0/8,10.1.0.0/16 trust\n", "multiple values specified for host address");
	hba_bad("host all all all peer\n", "peer authentication is only supported on local sockets");
	hba_bad("host all all all cert\n", "cert authentication is only supported on hostssl");
	hba_bad("local all all trust foo\n", "authentication option not in name=value format: foo");
	hba_bad("local \"all all trust\n", "hba.conf:1: unterminated quoted string");
	hba_bad("local a,,b all trust\n", "empty element");
	hba_bad("local a, all trust\n", "hba.conf:1: ");
	hba_bad("local a, # x\n", "comma at end of list");
	hba_bad("local all all md5,trust\n", "multiple values specified for authentication method");
	hba_bad("local all all \"trust\"\n", "invalid authentication method");

	char err[256];
	struct hba *h = hba_parse("local all all trust\nlocal a\0b all trust\n", 40, "hba.conf", err,
				  sizeof(err));
	CHECK(h == NULL && strstr(err, "hba.conf:2: NUL byte") != NULL);
	/* The length given is honoured. */
	h = hba_parse("local all all trust\nxxx", 20, "hba.conf", err, sizeof(err));
	CHECK(h && hba_rule_count(h) == 1);
	hba_free(h);
	/* Long tokens are refused, not truncated. */
	char *big = malloc(3000);
	memcpy(big, "local ", 6);
	memset(big + 6, 'd', 2000);
	snprintf(big + 2006, 3000 - 2006, " all trust\n");
	h = hba_text(big, err, sizeof(err));
	CHECK(h == NULL && strstr(err, "token longer") != NULL);
	free(big);
	/* Every truncation of valid text parses or fails cleanly. */
	const char *t = "hostssl \"a\"\"b\",c  all  2001:db8::/32 scram-sha-256 x=\"1,2\" # c\n";
	for (size_t i = 0; i <= strlen(t); i++)
		hba_free(hba_parse(t, i, "t", err, sizeof(err)));
	h = hba_text(t, err, sizeof(err));
	CHECK(h != NULL);
	CHECK(hba_match(h, false, true, "a\"b", "u", ip("2001:db8::1")) == HBA_SCRAM);
	hba_free(h);
}

static void test_load(void)
{
	char path[] = "/tmp/tb_auth_XXXXXX";
	char err[256];
	int fd = mkstemp(path);
	const char *ul_text = "\"alice\" \"" PENCIL_SECRET "\"\n\"bob\" \"" MD5_PENCIL_USER "\"\n";
	const char *hba = "local all all scram-sha-256\nhost all all 127.0.0.1/32 md5\n";

	CHECK(fd >= 0);
	CHECK(write(fd, ul_text, strlen(ul_text)) == (ssize_t)strlen(ul_text));
	close(fd);
	struct userlist *ul = userlist_load(path, err, sizeof(err));
	CHECK(ul && userlist_count(ul) == 2);
	CHECK(ul && userlist_find(ul, "alice")->kind == USERLIST_SCRAM);
	userlist_free(ul);

	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, hba, strlen(hba)) == (ssize_t)strlen(hba));
	close(fd);
	struct hba *h = hba_load(path, err, sizeof(err));
	CHECK(h && hba_rule_count(h) == 2);
	CHECK(hba_match(h, false, false, "d", "u", ip("127.0.0.1")) == HBA_MD5);
	hba_free(h);
	/* The hba text is not a valid userlist: error names the file and line. */
	ul = userlist_load(path, err, sizeof(err));
	CHECK(ul == NULL && strncmp(err, path, strlen(path)) == 0 && strstr(err, ":1: ") != NULL);
	unlink(path);

	CHECK(userlist_load(path, err, sizeof(err)) == NULL && strstr(err, path) != NULL);
	CHECK(hba_load(path, err, sizeof(err)) == NULL && strstr(err, "No such file") != NULL);
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

/* auth_ident_file maps for map= of peer and cert rules. */
static void test_ident_maps(void)
{
	char path[] = "/tmp/tb_ident_XXXXXX";
	char err[256];
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	struct hba *h = hba_text("local all all peer map=ops\nhostssl all all 0.0.0.0/0 cert map=certs\n"
				 "local all all peer\n",
				 err, sizeof(err));
	CHECK(h != NULL);
	write_text(path, "# comment\nops  postgres  alice\nops /^svc-(.*)$ \\1\n"
			 "certs \"CN with space\" bob\nops admin all\n");
	CHECK(h && hba_load_ident(h, path, err, sizeof(err)));
	CHECK(hba_user_allowed(h, 1, "postgres", "alice"));
	CHECK(!hba_user_allowed(h, 1, "postgres", "bob"));
	CHECK(hba_user_allowed(h, 1, "svc-orders", "orders"));
	CHECK(!hba_user_allowed(h, 1, "svc-orders", "svc-orders"));
	CHECK(hba_user_allowed(h, 1, "admin", "anyone"));
	CHECK(hba_user_allowed(h, 2, "CN with space", "bob"));
	CHECK(!hba_user_allowed(h, 2, "postgres", "alice")); /* another map */
	/* without map=: the names must be equal */
	CHECK(hba_user_allowed(h, 3, "carol", "carol") && !hba_user_allowed(h, 3, "postgres", "alice"));
	write_text(path, "ops postgres\n");
	CHECK(!hba_load_ident(h, path, err, sizeof(err)) && strstr(err, ":1: expected MAPNAME") != NULL);
	write_text(path, "ops /([x alice\n");
	CHECK(!hba_load_ident(h, path, err, sizeof(err)) && strstr(err, "invalid regular expression") != NULL);
	hba_free(h);
	CHECK(hba_text("local all all md5 map=ops\n", err, sizeof(err)) == NULL &&
	      strstr(err, "\"map\" is only valid") != NULL);
	unlink(path);
}

/* A plain entry's SCRAM keys are derived once and answer for its password. */
static void test_plain_scram_cache(void)
{
	char err[256];
	struct userlist *ul = ul_parse("\"p\" \"pencil\"\n\"s\" \"" PENCIL_SECRET "\"\n", err, sizeof(err));
	CHECK(ul != NULL);
	if (!ul)
		return;
	const struct userlist_entry *p = userlist_find(ul, "p");
	const struct scram_secret *a = userlist_plain_scram(p, SCRAM_DEFAULT_ITERATIONS);
	const struct scram_secret *b = userlist_plain_scram(p, SCRAM_DEFAULT_ITERATIONS);
	CHECK(a != NULL && a == b);
	CHECK(userlist_plain_scram(userlist_find(ul, "s"), SCRAM_DEFAULT_ITERATIONS) == NULL);
	CHECK(userlist_plain_scram(NULL, SCRAM_DEFAULT_ITERATIONS) == NULL);
	if (a) {
		CHECK(a->iterations == SCRAM_DEFAULT_ITERATIONS && a->salt_len == 16);
		struct scram_secret again;
		CHECK(scram_secret_from_password("pencil", a->salt, a->salt_len, a->iterations, &again));
		CHECK(memcmp(again.stored_key, a->stored_key, SCRAM_KEY_LEN) == 0);
		CHECK(memcmp(again.server_key, a->server_key, SCRAM_KEY_LEN) == 0);
	}
	/* Another iteration count (scram_iterations changed) derives again. */
	const struct scram_secret *c = userlist_plain_scram(p, 1000);
	CHECK(c != NULL && c->iterations == 1000);
	CHECK(userlist_plain_scram(p, 1000) == c);
	userlist_free(ul);
}

int main(void)
{
	test_md5();
	test_plain_scram_cache();
	test_userlist_kinds();
	test_userlist_errors();
	test_userlist_long();
	test_hba_match();
	test_hba_errors();
	test_load();
	test_ident_maps();
	return unit_finish("test_auth_files");
}
