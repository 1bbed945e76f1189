/* Unit tests for the parameter table, the config parser and the connection
 * string parser, plus the check that the generated sample and reference
 * files are up to date. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/connstr.h"
#include "core/hostlist.h"
#include "core/params.h"
#include "core/credential_doc.h"
#include "core/params_man.h"
#include "token/credential.h"
#include "unit.h"

/* Enough to pass the semantic checks; the line after it is line 3. */
#define BASE "[tokenbouncer]\nauth_type = trust\n"

static char err[1024];

static struct tb_config *parse(const char *text)
{
	err[0] = '\0';
	return config_parse_string(text, "t.ini", err, sizeof(err));
}

/* The text must fail with exactly this message. */
static void expect_error(const char *text, const char *message, int line)
{
	struct tb_config *cfg = parse(text);
	CHECK(cfg == NULL);
	config_free(cfg);
	if (strcmp(err, message) != 0)
		fprintf(stderr, "  (from test line %d)\n", line);
	CHECK_STR(err, message);
}
#define EXPECT_ERROR(text, message) expect_error(text, message, __LINE__)

static struct tb_config *parse_ok(const char *text, int line)
{
	struct tb_config *cfg = parse(text);
	if (!cfg)
		fprintf(stderr, "  unexpected error (test line %d): %s\n", line, err);
	CHECK(cfg != NULL);
	return cfg;
}
#define PARSE_OK(text) parse_ok(text, __LINE__)

/* The config carries exactly this warning. */
static void expect_warning(const struct tb_config *cfg, const char *message, int line)
{
	bool found = false;
	for (size_t i = 0; cfg && i < cfg->nwarnings; i++)
		found = found || strcmp(cfg->warnings[i], message) == 0;
	if (!found) {
		fprintf(stderr, "  warning not found (test line %d): %s\n", line, message);
		for (size_t i = 0; cfg && i < cfg->nwarnings; i++)
			fprintf(stderr, "    have: %s\n", cfg->warnings[i]);
	}
	CHECK(found);
}
#define EXPECT_WARNING(cfg, message) expect_warning(cfg, message, __LINE__)

/* ---- the tables ---- */

static void test_tables(void)
{
	char perr[256];
	struct tb_config *cfg = config_new_default();
	struct unit_loop each = UNIT_LOOP;
	for (size_t i = 0; i < param_count; i++) {
		const struct param_def *p = &param_table[i];
		CHECK_EACH(each, p->doc && strlen(p->doc) > 10 && p->doc[strlen(p->doc) - 1] == '.');
		CHECK_EACH(each, param_find(p->name) == p);
		if (p->default_value)
			CHECK_EACH(each, param_set(cfg, p, p->default_value, perr, sizeof(perr)));
		CHECK_EACH(each, p->type != PARAM_ENUM || p->enum_vals);
		CHECK_EACH(each, !p->ignored || strlen(p->ignored) > 10);
	}
	CHECK_LOOP_END(each);
	CHECK(param_db_count < 64 && param_user_count < 64);
	CHECK(param_find("LISTEN_PORT") == param_find("listen_port"));
	CHECK(param_find("no_such_thing") == NULL);
	CHECK(param_find("job_name") == param_find("service_name"));
	CHECK(param_find_in(param_db_table, param_db_count, "reserve_pool_size") ==
	      param_find_in(param_db_table, param_db_count, "reserve_pool"));
	config_free(cfg);
}

static void test_defaults(void)
{
	struct tb_config *cfg = config_new_default();
	CHECK_STR(cfg->listen_addr, "127.0.0.1");
	CHECK(cfg->listen_port == 6432);
	CHECK_STR(cfg->unix_socket_dir, "");
	CHECK(cfg->auth_type == AUTH_TYPE_MD5);
	CHECK(cfg->auth_file == NULL && cfg->auth_hba_file == NULL && cfg->admin_users == NULL);
	CHECK(cfg->pool_mode == POOL_MODE_SESSION);
	CHECK(cfg->max_client_conn == 100 && cfg->default_pool_size == 20);
	CHECK(cfg->min_pool_size == 0 && cfg->reserve_pool_size == 0);
	CHECK(cfg->reserve_pool_timeout == 5 * USEC_PER_SEC);
	CHECK(cfg->server_lifetime == 3600 * USEC_PER_SEC);
	CHECK(cfg->server_idle_timeout == 600 * USEC_PER_SEC);
	CHECK(cfg->server_connect_timeout == 15 * USEC_PER_SEC);
	CHECK(cfg->server_login_retry == 15 * USEC_PER_SEC);
	CHECK_STR(cfg->server_reset_query, "DISCARD ALL");
	CHECK_STR(cfg->server_check_query, "<empty>");
	CHECK(cfg->server_check_delay == 30 * USEC_PER_SEC);
	CHECK(cfg->client_login_timeout == 60 * USEC_PER_SEC);
	CHECK(cfg->client_idle_timeout == 0);
	CHECK(cfg->query_wait_timeout == 120 * USEC_PER_SEC);
	CHECK(cfg->query_timeout == 0 && cfg->idle_transaction_timeout == 0);
	CHECK(!cfg->server_reset_query_always);
	CHECK_STR(cfg->ignore_startup_parameters, "");
	CHECK(cfg->client_tls_sslmode == TLS_MODE_DISABLE);
	CHECK(cfg->server_tls_sslmode == TLS_MODE_PREFER);
	CHECK_STR(cfg->client_tls_protocols, "secure");
	CHECK_STR(cfg->server_tls_protocols, "secure");
	CHECK_STR(cfg->client_tls_ciphers, "default");
	CHECK(cfg->max_packet_size == 1073741824 && cfg->pkt_buf == 4096);
	CHECK(cfg->log_connections && cfg->log_disconnections && cfg->tcp_keepalive);
	CHECK(cfg->verbose == 0 && !cfg->auth_plain_without_tls);
	CHECK(cfg->logfile == NULL && cfg->pidfile == NULL);
	CHECK(cfg->ndbs == 0 && cfg->nusers == 0);
	config_free(cfg);

	cfg = PARSE_OK(BASE);
	if (cfg) {
		CHECK(cfg->auth_type == AUTH_TYPE_TRUST);
		CHECK(cfg->listen_port == 6432);
		CHECK_STR(cfg->path, "t.ini");
	}
	config_free(cfg);
}

/* ---- values of each type ---- */

static void test_int(void)
{
	struct tb_config *cfg = PARSE_OK(BASE "listen_port = 5433\nmax_client_conn = +7\n");
	if (cfg)
		CHECK(cfg->listen_port == 5433 && cfg->max_client_conn == 7);
	config_free(cfg);
	const char *bad[] = { "abc", "0", "65536", "12x", "1 2", "", "-1", "99999999999999999999", "0x10" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], msg[256];
		snprintf(text, sizeof(text), BASE "listen_port = %s\n", bad[i]);
		snprintf(msg, sizeof(msg),
			 "t.ini:3: invalid value for listen_port: \"%s\" "
			 "(expected an integer between 1 and 65535)",
			 bad[i]);
		EXPECT_ERROR(text, msg);
	}
	EXPECT_ERROR(BASE "verbose = 3\n",
		     "t.ini:3: invalid value for verbose: \"3\" (expected an integer between 0 and 2)");
}

static void test_bool(void)
{
	const char *yes[] = { "1", "yes", "on", "true", "TRUE", "Yes" };
	const char *no[] = { "0", "no", "off", "false", "OFF" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), BASE "auth_plain_without_tls = %s\n", yes[i]);
		struct tb_config *cfg = PARSE_OK(text);
		CHECK(cfg && cfg->auth_plain_without_tls);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), BASE "tcp_keepalive = %s\n", no[i]);
		struct tb_config *cfg = PARSE_OK(text);
		CHECK(cfg && !cfg->tcp_keepalive);
		config_free(cfg);
	}
	EXPECT_ERROR(BASE "log_connections = maybe\n",
		     "t.ini:3: invalid value for log_connections: \"maybe\" "
		     "(expected a boolean: 1, 0, yes, no, on, off, true or false)");
	EXPECT_ERROR(BASE "log_connections = 2\n",
		     "t.ini:3: invalid value for log_connections: \"2\" "
		     "(expected a boolean: 1, 0, yes, no, on, off, true or false)");
}

static void check_time(const char *value, usec_t expect)
{
	char text[128];
	snprintf(text, sizeof(text), BASE "server_lifetime = %s\n", value);
	struct tb_config *cfg = parse(text);
	if (!cfg || cfg->server_lifetime != expect)
		fprintf(stderr, "  time \"%s\": %s\n", value, cfg ? "wrong value" : err);
	CHECK(cfg && cfg->server_lifetime == expect);
	config_free(cfg);
}

static void test_time(void)
{
	check_time("10", 10 * USEC_PER_SEC);
	check_time("0", 0);
	check_time("0.5", 500000);
	check_time(".25", 250000);
	check_time("1.000001", 1000001);
	check_time("250ms", 250000);
	check_time("1.5ms", 1500);
	check_time("3s", 3 * USEC_PER_SEC);
	check_time("2min", 120 * USEC_PER_SEC);
	check_time("1.5 h", 5400 * USEC_PER_SEC);
	check_time("31536000", 31536000 * USEC_PER_SEC);
	const char *bad[] = { "-1",   "1x",       "abc", "1.2.3", "0.0000001", "99999999999999999999",
			      "1 MS", "31536001", "5d",  "",      "." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128], msg[512];
		snprintf(text, sizeof(text), BASE "server_lifetime = %s\n", bad[i]);
		snprintf(msg, sizeof(msg),
			 "t.ini:3: invalid value for server_lifetime: \"%s\" "
			 "(expected a number of seconds between 0 and 31536000, or a number with a unit: "
			 "ms, s, min, h)",
			 bad[i]);
		EXPECT_ERROR(text, msg);
	}
	EXPECT_ERROR(BASE "server_connect_timeout = 0\n",
		     "t.ini:3: invalid value for server_connect_timeout: \"0\" (expected a number of seconds "
		     "between 0.001 and 31536000, or a number with a unit: ms, s, min, h)");
	struct tb_config *cfg = PARSE_OK(BASE "server_connect_timeout = 1ms\n");
	CHECK(cfg && cfg->server_connect_timeout == 1000);
	config_free(cfg);
}

static void test_enum(void)
{
	struct tb_config *cfg = PARSE_OK(BASE "pool_mode = Transaction\nserver_tls_sslmode = VERIFY-FULL\n"
					      "server_tls_ca_file = ca.pem\n");
	if (cfg) {
		CHECK(cfg->pool_mode == POOL_MODE_TRANSACTION);
		CHECK(cfg->server_tls_sslmode == TLS_MODE_VERIFY_FULL);
	}
	config_free(cfg);
	EXPECT_ERROR(BASE "pool_mode = foo\n", "t.ini:3: invalid value for pool_mode: \"foo\" "
					       "(expected one of: session, transaction, statement)");
	EXPECT_ERROR("[tokenbouncer]\nauth_type = cert\n",
		     "t.ini:2: invalid value for auth_type: "
		     "\"cert\" (expected one of: scram-sha-256, md5, plain, trust, hba)");
	EXPECT_ERROR(BASE "client_tls_sslmode = on\n",
		     "t.ini:3: invalid value for client_tls_sslmode: "
		     "\"on\" (expected one of: disable, allow, prefer, require, verify-ca, verify-full)");
}

static void test_string(void)
{
	struct tb_config *cfg = PARSE_OK(BASE "auth_file =\nadmin_users = admin, ops\n"
					      "server_reset_query =\nclient_tls_protocols = tlsv1.2, TLSv1.3\n"
					      "server_check_query = select 'a;b' ; a comment\n");
	if (cfg) {
		CHECK(cfg->auth_file == NULL);
		CHECK_STR(cfg->admin_users, "admin, ops");
		CHECK_STR(cfg->server_reset_query, "");
		CHECK_STR(cfg->client_tls_protocols, "tlsv1.2, TLSv1.3");
		CHECK_STR(cfg->server_check_query, "select 'a;b'");
	}
	config_free(cfg);
	EXPECT_ERROR(BASE "client_tls_protocols = tlsv1.1\n",
		     "t.ini:3: invalid value for "
		     "client_tls_protocols: \"tlsv1.1\" (expected a comma-separated list of: secure, all, "
		     "tlsv1.2, tlsv1.3)");
	EXPECT_ERROR(BASE "server_tls_protocols =\n",
		     "t.ini:3: invalid value for "
		     "server_tls_protocols: \"\" (expected a comma-separated list of: secure, all, "
		     "tlsv1.2, tlsv1.3)");
	bool t12, t13;
	CHECK(param_parse_tls_protocols("secure", &t12, &t13) && t12 && t13);
	CHECK(param_parse_tls_protocols("tlsv1.3", &t12, &t13) && !t12 && t13);
	CHECK(param_parse_tls_protocols("tlsv1.2:tlsv1.3", &t12, &t13) && t12 && t13);
	CHECK(!param_parse_tls_protocols(" , ", &t12, &t13));
}

static void test_format(void)
{
	char buf[64];
	struct tb_config *cfg = config_new_default();
	param_format(cfg, param_find("server_lifetime"), true, buf, sizeof(buf));
	CHECK_STR(buf, "3600");
	cfg->server_lifetime = 500000;
	param_format(cfg, param_find("server_lifetime"), true, buf, sizeof(buf));
	CHECK_STR(buf, "0.5");
	cfg->server_lifetime = 1000001;
	param_format(cfg, param_find("server_lifetime"), true, buf, sizeof(buf));
	CHECK_STR(buf, "1.000001");
	param_format(cfg, param_find("pool_mode"), true, buf, sizeof(buf));
	CHECK_STR(buf, "session");
	param_format(cfg, param_find("tcp_keepalive"), true, buf, sizeof(buf));
	CHECK_STR(buf, "1");
	param_format(cfg, param_find("auth_file"), true, buf, sizeof(buf));
	CHECK_STR(buf, "");
	param_format(cfg, param_find("listen_port"), true, buf, sizeof(buf));
	CHECK_STR(buf, "6432");
	config_free(cfg);

	cfg = PARSE_OK(BASE "[databases]\na = password=hunter2\n");
	if (cfg && cfg->ndbs == 1) {
		const struct param_def *p = param_find_in(param_db_table, param_db_count, "password");
		param_format_at(&cfg->dbs[0], p, true, buf, sizeof(buf));
		CHECK_STR(buf, "********");
		param_format_at(&cfg->dbs[0], p, false, buf, sizeof(buf));
		CHECK_STR(buf, "hunter2");
	}
	config_free(cfg);
}

/* ---- file structure ---- */

/* PgBouncer: the last setting wins, with a warning naming both lines. */
static void test_duplicates(void)
{
	struct tb_config *cfg = PARSE_OK(
		BASE
		"listen_port = 1\nlisten_port = 2\n[pgbouncer]\n"
		"AUTH_TYPE = trust\n[credential.x]\ntype = a\nclient_id = 1\nclient_id = 2\n"
		"[databases]\na = host=x\na = host=y port=1 port=2\n[users]\nbob =\nbob = pool_mode=session\n");
	if (!cfg)
		return;
	CHECK(cfg->listen_port == 2 && cfg->ndbs == 1 && cfg->nusers == 1);
	CHECK(strcmp(cfg->dbs[0].host, "y") == 0 && cfg->dbs[0].port == 2 && cfg->dbs[0].line == 13);
	CHECK(cfg->users[0].pool_mode == POOL_MODE_SESSION);
	CHECK(cfg->ncreds == 1 && cfg->creds[0].nkv == 2 && strcmp(cfg->creds[0].kv[1].value, "2") == 0);
	EXPECT_WARNING(cfg, "t.ini:4: listen_port is set again (first at t.ini:3); the last value is used");
	EXPECT_WARNING(cfg, "t.ini:6: auth_type is set again (first at t.ini:2); the last value is used");
	EXPECT_WARNING(cfg, "t.ini:10: key \"client_id\" in [credential.x] is set again (first at "
			    "line 9); the last value is used");
	EXPECT_WARNING(cfg, "t.ini:13: [databases] entry \"a\" is defined again (first at t.ini:12); "
			    "the last one is used");
	EXPECT_WARNING(cfg, "t.ini:13: [databases] entry \"a\": key \"port\" is given twice; the last "
			    "one is used");
	EXPECT_WARNING(cfg, "t.ini:16: [users] entry \"bob\" is defined again (first at t.ini:15); "
			    "the last one is used");
	CHECK(cfg->nwarnings == 6);
	config_free(cfg);
}

static void test_structure(void)
{
	EXPECT_ERROR(BASE "no_such_param = 1\n",
		     "t.ini:3: unknown parameter \"no_such_param\" in [tokenbouncer]");
	EXPECT_ERROR(BASE "[foo]\nx = 1\n",
		     "t.ini:3: unknown section [foo] (expected "
		     "[tokenbouncer], [databases], [users], [peers] or [credential.NAME])");
	EXPECT_ERROR(BASE "[credential.x]\n", "t.ini:3: [credential.x] has no type");
	EXPECT_ERROR(
		BASE "[credential]\ntype = a\n",
		"t.ini:3: unknown section [credential] (expected [tokenbouncer], [databases], [users], [peers] or "
		"[credential.NAME])");
	EXPECT_ERROR(BASE "[credential.]\ntype = a\n",
		     "t.ini:3: a credential section needs a name: [credential.NAME]");
	EXPECT_ERROR(BASE "[credential.x]\ntype = a\n[credential.x]\ntype = b\n",
		     "t.ini:5: duplicate section [credential.x] (first at t.ini:3)");
	EXPECT_ERROR("listen_port = 1\n" BASE,
		     "t.ini:1: \"listen_port\" is outside any section (start the file with [tokenbouncer])");
	EXPECT_ERROR(BASE "just some words\n", "t.ini:3: syntax error: expected \"name = value\", "
					       "a [section] header or a comment");
	EXPECT_ERROR(BASE "[databases\n", "t.ini:3: missing \"]\" in section header");
	EXPECT_ERROR(BASE "[databases] x\n", "t.ini:3: unexpected text after section header");
	EXPECT_ERROR(BASE "%include /nonexistent/other.ini\n",
		     "t.ini:3: /nonexistent/other.ini: cannot open: No such file or directory");
	EXPECT_ERROR(BASE "%include\n", "t.ini:3: %include needs a file name");
	EXPECT_ERROR(BASE "%includes x\n", "t.ini:3: syntax error: expected \"name = value\", "
					   "a [section] header or a comment");

	/* [pgbouncer], case-insensitive names, comments, CRLF, a BOM, indented keys. */
	struct tb_config *cfg = PARSE_OK(
		"\xEF\xBB\xBF; comment\r\n# another\r\n[PgBouncer]\r\n"
		"  Listen_Port = 7000 ; inline comment\r\nauth_type: trust\r\n\r\n[ Databases ]\r\n"
		"a = host=h\r\n");
	if (cfg) {
		CHECK(cfg->listen_port == 7000);
		CHECK(cfg->auth_type == AUTH_TYPE_TRUST);
		CHECK(cfg->ndbs == 1 && strcmp(cfg->dbs[0].host, "h") == 0 && cfg->dbs[0].line == 8);
	}
	config_free(cfg);
	test_duplicates();
	EXPECT_ERROR(
		"[tokenbouncer]\r\nauth_type = trust\r\nlisten_port = x\r\n",
		"t.ini:3: invalid value for listen_port: \"x\" (expected an integer between 1 and 65535)");
	EXPECT_ERROR("", "t.ini: auth_type = md5 (the default) requires auth_file");
	EXPECT_ERROR("[tokenbouncer]\n", "t.ini: auth_type = md5 (the default) requires auth_file");
}

/* A value of n bytes on one line, read back whole (inih gets it in pieces). */
static void check_long_value(size_t n)
{
	size_t cap = 2 * n + 4096;
	char *text = malloc(cap), *pw = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		pw[i] = (char)('a' + i % 26);
	pw[n] = '\0';
	/* Spaces and a " ;" comment right where a piece may end must survive. */
	if (n > 400)
		memcpy(pw + 190, " x  y ", 6);
	snprintf(text, cap,
		 BASE "server_check_query = %s\r\n[databases]\n"
		      "  long = host=h password='%s' port=7 ; a comment\n",
		 pw, pw);
	struct tb_config *cfg = PARSE_OK(text);
	CHECK(cfg && strcmp(cfg->server_check_query, pw) == 0);
	CHECK(cfg && cfg->ndbs == 1 && strcmp(cfg->dbs[0].password, pw) == 0 && cfg->dbs[0].port == 7);
	config_free(cfg);
	free(text);
	free(pw);
}

static void test_long_lines(void)
{
	char text[1024], line[300];
	check_long_value(198 - strlen("server_check_query = "));
	check_long_value(300);
	check_long_value(4096);
	check_long_value(65536);
	check_long_value(300000);

	/* A long comment line, and a long line without a newline at the end. */
	memset(line, ';', 250);
	line[250] = '\0';
	snprintf(text, sizeof(text), BASE "\n%s\n", line);
	struct tb_config *cfg = PARSE_OK(text);
	config_free(cfg);
	memset(line, 'x', 250);
	snprintf(text, sizeof(text), BASE "server_check_query = %s", line);
	cfg = PARSE_OK(text);
	CHECK(cfg && strlen(cfg->server_check_query) == 250);
	config_free(cfg);
	/* The name must fit inih's buffer. */
	memset(line, 'n', 250);
	snprintf(text, sizeof(text), BASE "[databases]\n%s = host=x\n", line);
	EXPECT_ERROR(text, "t.ini:4: the name before \"=\" is too long");

	char nul[] = BASE "listen_port = 1\0 2\n";
	cfg = config_parse_string(nul, "t.ini", err, sizeof(err));
	CHECK(cfg != NULL); /* a C string ends at the NUL */
	config_free(cfg);
}

/* ---- connection strings ---- */

struct pairs {
	char buf[512];
	size_t n;
};

static bool collect(void *arg, const char *key, const char *value, char *perr, size_t errlen)
{
	struct pairs *p = arg;
	p->n += (size_t)snprintf(p->buf + p->n, sizeof(p->buf) - p->n, "[%s|%s]", key, value);
	if (strcmp(key, "stop") == 0) {
		snprintf(perr, errlen, "stopped");
		return false;
	}
	return true;
}

static void check_connstr(const char *text, bool ok, const char *expect, int line)
{
	struct pairs p = { .n = 0 };
	char perr[256] = "";
	p.buf[0] = '\0';
	bool got = connstr_parse(text, collect, &p, perr, sizeof(perr));
	if (got != ok)
		fprintf(stderr, "  connstr (test line %d): %s\n", line, perr);
	CHECK(got == ok);
	CHECK_STR(ok ? p.buf : perr, expect);
}
#define CONNSTR_OK(text, pairs) check_connstr(text, true, pairs, __LINE__)
#define CONNSTR_BAD(text, msg) check_connstr(text, false, msg, __LINE__)

static void test_connstr(void)
{
	CONNSTR_OK("", "");
	CONNSTR_OK("  host=a  port = 5 ", "[host|a][port|5]");
	CONNSTR_OK("password='it\\'s a \\\\ secret' x=''", "[password|it's a \\ secret][x|]");
	CONNSTR_OK("a=b\\ c d=\\'q", "[a|b c][d|'q]");
	CONNSTR_OK("a=x=y b=", "[a|x=y][b|]");
	CONNSTR_OK("a=\t'tab'\tb=2", "[a|tab][b|2]");
	CONNSTR_BAD("host", "missing \"=\" after \"host\"");
	CONNSTR_BAD("host x=1", "missing \"=\" after \"host\"");
	CONNSTR_BAD("=x", "missing key before \"=\"");
	CONNSTR_BAD("host='abc", "unterminated quoted value of \"host\"");
	CONNSTR_BAD("host='abc\\'", "unterminated quoted value of \"host\"");
	CONNSTR_BAD("host='a'b", "unexpected text after the quoted value of \"host\"");
	CONNSTR_BAD("ho-st=x", "invalid key \"ho-st\"");
	CONNSTR_BAD("host=x\\", "backslash at the end of the value of \"host\"");
	CONNSTR_BAD("a=1 stop=2 c=3", "stopped");
	/* Text after a password is never echoed: it is probably the rest of it. */
	CONNSTR_BAD("password=my secret words", "unexpected text after the value of \"password\" "
						"(quote a value that contains spaces: password='...')");
	CONNSTR_BAD("password='my secret", "unterminated quoted value of \"password\"");
}

/* ---- [databases] and [users] ---- */

static void test_databases(void)
{
	struct tb_config *cfg = PARSE_OK(
		BASE "[databases]\n"
		     "orders = host=10.0.0.7 port=6543 dbname=orders_db user=app password='p w'"
		     " pool_size=10 min_pool_size=2"
		     "\treserve_pool_size=3 pool_mode=transaction max_db_connections=50 server_lifetime=0.5"
		     "  connect_query='SET x = 1' application_name=app client_encoding=UTF8"
		     "  datestyle='ISO, MDY' timezone=UTC auth=password max_db_client_connections=9\n"
		     "; a comment\n"
		     "\t* = host=/var/run/postgresql\n"
		     "  # another\n"
		     "empty =\n"
		     "[users]\n"
		     "    reports = pool_mode=session max_user_connections=5 max_user_client_connections=4\n"
		     "\n"
		     "nobody =\n");
	if (!cfg)
		return;
	CHECK(cfg->ndbs == 3 && cfg->nusers == 2);
	const struct db_alias *d = config_find_db(cfg, "orders");
	CHECK(d && d->line == 4);
	if (d) {
		CHECK_STR(d->host, "10.0.0.7");
		CHECK(d->port == 6543);
		CHECK_STR(d->dbname, "orders_db");
		CHECK_STR(d->user, "app");
		CHECK_STR(d->password, "p w");
		CHECK(d->pool_size == 10 && d->min_pool_size == 2 && d->reserve_pool == 3);
		CHECK(d->pool_mode == POOL_MODE_TRANSACTION && d->max_db_connections == 50);
		CHECK(d->max_db_client_connections == 9);
		CHECK(d->server_lifetime == 500000);
		CHECK_STR(d->connect_query, "SET x = 1");
		CHECK_STR(d->application_name, "app");
		CHECK_STR(d->client_encoding, "UTF8");
		CHECK_STR(d->datestyle, "ISO, MDY");
		CHECK_STR(d->timezone, "UTC");
		CHECK(d->auth == UPSTREAM_AUTH_PASSWORD && d->credential == NULL);
	}
	d = config_find_db(cfg, "empty");
	CHECK(d && d->line == 8);
	if (d) {
		CHECK(d->host == NULL && d->port == 5432 && d->dbname == NULL && d->password == NULL);
		CHECK(d->pool_size == -1 && d->min_pool_size == -1 && d->reserve_pool == -1);
		CHECK(d->pool_mode == POOL_MODE_UNSET && d->max_db_connections == -1);
		CHECK(d->server_lifetime == -1 && d->auth == UPSTREAM_AUTH_PASSWORD);
	}
	d = config_find_db(cfg, "anything_else");
	CHECK(d && strcmp(d->name, "*") == 0 && strcmp(d->host, "/var/run/postgresql") == 0);
	const struct user_cfg *u = config_find_user(cfg, "reports");
	CHECK(u && u->pool_mode == POOL_MODE_SESSION && u->max_user_connections == 5 && u->line == 10);
	CHECK(u && u->max_user_client_connections == 4);
	CHECK(cfg->nwarnings == 0);
	u = config_find_user(cfg, "nobody");
	CHECK(u && u->pool_mode == POOL_MODE_UNSET && u->max_user_connections == -1);
	CHECK(config_find_user(cfg, "REPORTS") == NULL);
	config_free(cfg);

	cfg = PARSE_OK(BASE "[databases]\n\"my-db\" = host=x\n\"say \"\"hi\"\"\" = host=y\n"
			    "[users]\n\"app-user\" = pool_mode=statement\n");
	if (cfg) {
		CHECK(config_find_db(cfg, "my-db") != NULL);
		CHECK(config_find_db(cfg, "say \"hi\"") != NULL);
		CHECK(config_find_user(cfg, "app-user") != NULL);
	}
	config_free(cfg);

	cfg = PARSE_OK(BASE "[databases]\na = host=x\n");
	if (cfg) {
		CHECK(config_find_db(cfg, "a") != NULL);
		CHECK(config_find_db(cfg, "b") == NULL);
		CHECK(config_find_db(cfg, "A") == NULL);
	}
	config_free(cfg);
}

static void test_database_errors(void)
{
	EXPECT_ERROR(BASE "[databases]\na = host=x bogus=1\n",
		     "t.ini:4: [databases] entry \"a\": unknown key \"bogus\"");
	EXPECT_ERROR(BASE "[databases]\na = host=x port=0\n",
		     "t.ini:4: [databases] entry \"a\": "
		     "invalid value for port: \"0\" (expected an integer between 1 and 65535)");
	EXPECT_ERROR(BASE "[databases]\na = pool_size=-1\n",
		     "t.ini:4: [databases] entry \"a\": "
		     "invalid value for pool_size: \"-1\" (expected an integer between 0 and 1000000)");
	EXPECT_ERROR(BASE "[databases]\na = host=x,,y\n",
		     "t.ini:4: [databases] entry \"a\": invalid "
		     "value for host: \"x,,y\" (expected a host name, IP address or socket directory, or a "
		     "comma-separated list of host names or addresses, each with an optional :port)");
	EXPECT_ERROR(BASE "[databases]\na = host=/tmp,y\n",
		     "t.ini:4: [databases] entry \"a\": invalid "
		     "value for host: \"/tmp,y\" (expected a host name, IP address or socket directory, or a "
		     "comma-separated list of host names or addresses, each with an optional :port)");
	EXPECT_ERROR(BASE "[databases]\na = host=x:0,y\n",
		     "t.ini:4: [databases] entry \"a\": invalid "
		     "value for host: \"x:0,y\" (expected a host name, IP address or socket directory, or a "
		     "comma-separated list of host names or addresses, each with an optional :port)");
	EXPECT_ERROR(BASE "[databases]\na = host=x,y auth=entra credential=c sslmode=require\n"
			  "[credential.c]\ntype = azure-cli\n",
		     "t.ini:4: [databases] entry \"a\": a host list needs "
		     "auth=password (a token is minted for one host)");
	EXPECT_ERROR(BASE "[databases]\na = host=x auth=entra credential=mi sslmode=require\n",
		     "t.ini:4: [databases] entry \"a\": no section [credential.mi]");
	EXPECT_ERROR(BASE "[databases]\na = auth=AWS-DSQL\n",
		     "t.ini:4: [databases] entry \"a\": "
		     "auth=aws-dsql needs credential=NAME naming a [credential.NAME] section");
	EXPECT_ERROR(BASE "[databases]\na = auth=kerberos\n",
		     "t.ini:4: [databases] entry \"a\": "
		     "invalid value for auth: \"kerberos\" (expected one of: password, entra, aws-rds, "
		     "aws-dsql, cloudsql, alloydb)");
	EXPECT_ERROR(
		BASE "[databases]\na = host=x credential=mi\n",
		"t.ini:4: [databases] entry "
		"\"a\": credential=mi needs a token method (auth=entra, aws-rds, aws-dsql, cloudsql or alloydb)");
	EXPECT_ERROR(BASE "[databases]\na = host=x server_lifetime=token\n",
		     "t.ini:4: [databases] "
		     "entry \"a\": server_lifetime=token needs a token method in auth=");
	EXPECT_ERROR(BASE "[databases]\na = host=x auth=cloudsql credential=g sslmode=require\n",
		     "t.ini:4: [databases] entry \"a\": no section [credential.g]");
	EXPECT_ERROR(BASE "[databases]\na = host=x auth=entra credential=mi password=p\n",
		     "t.ini:4: [databases] entry \"a\": password= cannot be combined with auth=entra");
	/* A token is a password: it never travels without TLS. */
	EXPECT_ERROR(
		BASE "server_tls_sslmode = prefer\n[databases]\n"
		     "a = host=x auth=entra credential=mi\n[credential.mi]\ntype = azure-managed-identity\n",
		"t.ini:5: [databases] entry \"a\": auth=entra sends a token as the password, which needs "
		"TLS: set sslmode=require (or verify-ca, verify-full) on the alias or server_tls_sslmode");
	EXPECT_ERROR(BASE "[databases]\na = host=x auth=aws-rds credential=c sslmode=disable\n"
			  "[credential.c]\ntype = aws-default\n",
		     "t.ini:4: [databases] entry \"a\": auth=aws-rds sends a token as the password, which "
		     "needs TLS: set sslmode=require (or verify-ca, verify-full) on the alias or "
		     "server_tls_sslmode");
	EXPECT_ERROR(BASE "[databases]\na = host=/tmp auth=entra credential=c sslmode=require\n"
			  "[credential.c]\ntype = azure-cli\n",
		     "t.ini:4: [databases] entry \"a\": auth=entra "
		     "needs a TCP host (a Unix socket cannot carry TLS)");
	EXPECT_ERROR(BASE "[databases]\na = host=x auth=entra credential=c sslmode=require\n"
			  "[credential.c]\nclient_id = 1\n",
		     "t.ini:5: [credential.c] has no type");
	EXPECT_ERROR(BASE "[databases]\na = host='x\n", "t.ini:4: [databases] entry \"a\": "
							"unterminated quoted value of \"host\"");
	EXPECT_ERROR(
		BASE "[users]\nbob = pool_mode=fast\n",
		"t.ini:4: [users] entry \"bob\": "
		"invalid value for pool_mode: \"fast\" (expected one of: session, transaction, statement)");
	EXPECT_ERROR(BASE "[users]\nbob = pool_sizes=3\n",
		     "t.ini:4: [users] entry \"bob\": unknown key \"pool_sizes\"");
	EXPECT_ERROR(BASE "[databases]\n= host=x\n", "t.ini:4: empty database alias");
	EXPECT_ERROR(BASE "[databases]\npgbouncer = host=x\n",
		     "t.ini:4: database alias \"pgbouncer\" is reserved for the admin console");
	EXPECT_ERROR(BASE "[databases]\n\"abc = host=x\n", "t.ini:4: unterminated quoted name \"abc");
	EXPECT_ERROR(BASE "[databases]\n\"a\"b = host=x\n",
		     "t.ini:4: unexpected text after quoted name \"a\"b");

	/* Never echo a password or what follows it: an unknown key after one may
	 * be the rest of an unquoted password. */
	struct tb_config *cfg = parse(BASE "[databases]\nb = password=sekrit words=1\n");
	CHECK(cfg == NULL && strstr(err, "sekrit") == NULL && strstr(err, "words") == NULL);
	CHECK_STR(err, "t.ini:4: [databases] entry \"b\": unexpected key after the value of "
		       "\"password\" (quote a value that contains spaces: password='...')");
	config_free(cfg);
}

/* Every PgBouncer 1.25 parameter is accepted; one that has no effect here
 * warns, saying why, when set to anything but its default. */
static void test_pgbouncer_params(void)
{
	struct tb_config *cfg = PARSE_OK(
		BASE "auth_ident_file = /x\ndns_zone_check_period = 0\n"
		     "job_name = pgb2\nsuspend_timeout = 10\n[databases]\n"
		     "a = host=x target_session_attrs=any auth_user=pgb auth_query='SELECT 1'\n"
		     "[users]\nbob = pool_size=3\n");
	if (!cfg)
		return;
	EXPECT_WARNING(cfg, "t.ini:5: service_name has no effect: it names a Windows service");
	/* [users] pool_size is a real parameter (it wins over the database's) */
	const struct user_cfg *bob = config_find_user(cfg, "bob");
	CHECK(bob && bob->pool_size == 3 && bob->reserve_pool_size == -1 && bob->query_timeout == -1);
	/* auth_user / auth_query are real parameters, globally and per database */
	const struct db_alias *a = config_find_db(cfg, "a");
	CHECK(a && a->auth_user && strcmp(a->auth_user, "pgb") == 0);
	CHECK(a && a->auth_query && strcmp(a->auth_query, "SELECT 1") == 0);
	CHECK(a && a->target_session_attrs == TSA_MODE_ANY); /* a real key now */
	CHECK_STR(cfg->auth_ident_file, "/x");               /* a real parameter now */
	CHECK(cfg->nwarnings == 1);                          /* values equal to the default do not warn */
	CHECK_STR(cfg->service_name, "pgb2");
	CHECK_STR(cfg->conffile, "t.ini");
	config_free(cfg);
}

/* ---- semantic checks ---- */

static void test_semantic(void)
{
	EXPECT_ERROR("[tokenbouncer]\nauth_type = hba\nauth_file = u.txt\n",
		     "t.ini:2: auth_type = hba requires auth_hba_file");
	EXPECT_ERROR("[tokenbouncer]\nauth_type = scram-sha-256\n",
		     "t.ini:2: auth_type = scram-sha-256 requires auth_file");
	EXPECT_ERROR("[tokenbouncer]\nauth_file =\n",
		     "t.ini: auth_type = md5 (the default) requires auth_file");
	EXPECT_ERROR(
		BASE "client_tls_sslmode = require\nclient_tls_key_file = k.pem\n",
		"t.ini:3: client_tls_sslmode = require requires client_tls_key_file and client_tls_cert_file");
	EXPECT_ERROR(BASE "client_tls_sslmode = verify-full\nclient_tls_key_file = k.pem\n"
			  "client_tls_cert_file = c.pem\n",
		     "t.ini:3: client_tls_sslmode = verify-full requires client_tls_ca_file");
	EXPECT_ERROR(BASE "server_tls_sslmode = verify-ca\n",
		     "t.ini:3: server_tls_sslmode = verify-ca requires server_tls_ca_file");
	EXPECT_ERROR(BASE "server_tls_cert_file = c.pem\n",
		     "t.ini:3: server_tls_key_file and server_tls_cert_file must be set together");
	EXPECT_ERROR(BASE "listen_addr =\n",
		     "t.ini:3: nothing to listen on: listen_addr and unix_socket_dir are both empty");

	struct tb_config *cfg = PARSE_OK(
		"[tokenbouncer]\nauth_type = hba\nauth_file = u.txt\n"
		"auth_hba_file = hba.conf\nclient_tls_sslmode = prefer\nclient_tls_key_file = k.pem\n"
		"client_tls_cert_file = c.pem\nlisten_addr =\nunix_socket_dir = /tmp\n");
	if (cfg) {
		CHECK(cfg->listen_addr == NULL || cfg->listen_addr[0] == '\0');
		CHECK(!config_str_set(cfg->listen_addr));
		CHECK_STR(cfg->unix_socket_dir, "/tmp");
	}
	config_free(cfg);
}

/* ---- reload helpers ---- */

struct warned {
	char names[256];
	int calls;
};

static void on_warn(const char *param, void *arg)
{
	struct warned *w = arg;
	size_t n = strlen(w->names);
	snprintf(w->names + n, sizeof(w->names) - n, "%s%s", n ? "," : "", param);
	w->calls++;
}

static void test_reload(void)
{
	struct tb_config *old = PARSE_OK(BASE "listen_port = 6432\npidfile = /run/a.pid\n"
					      "[databases]\na = host=x pool_size=5\nb = host=y\n");
	struct tb_config *new = PARSE_OK(BASE "listen_port = 7000\nmax_client_conn = 500\n"
					      "unix_socket_dir = /tmp\npkt_buf = 8192\n"
					      "[databases]\na = host=x pool_size=5\nb = host=y pool_size=6\n");
	if (!old || !new) {
		config_free(old);
		config_free(new);
		return;
	}
	struct warned w = { .names = "", .calls = 0 };
	CHECK(config_keep_restart_only(new, old, on_warn, &w) == 4);
	CHECK(w.calls == 4);
	CHECK_STR(w.names, "listen_port,unix_socket_dir,pkt_buf,pidfile");
	CHECK(new->listen_port == 6432 && new->pkt_buf == 4096);
	CHECK_STR(new->unix_socket_dir, "");
	CHECK_STR(new->pidfile, "/run/a.pid");
	CHECK(new->max_client_conn == 500); /* reloadable: the new value stays */
	CHECK(config_keep_restart_only(new, old, NULL, NULL) == 0);

	CHECK(config_db_equal(&old->dbs[0], &new->dbs[0]));
	CHECK(!config_db_equal(&old->dbs[1], &new->dbs[1]));
	CHECK(!config_db_equal(&old->dbs[0], &old->dbs[1]));
	config_free(old);
	config_free(new);
}

/* ---- files ---- */

static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		size_t got = fread(buf + *len, 1, cap - *len - 1, f);
		*len += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

static char *generate(void (*print)(FILE *f), size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		abort();
	print(f);
	fclose(f);
	return buf;
}

static void check_generated(const char *rel, void (*print)(FILE *f), const char *option)
{
	const char *srcdir = getenv("srcdir");
	char path[4096];
	size_t want_len, have_len = 0;
	snprintf(path, sizeof(path), "%s/%s", srcdir && *srcdir ? srcdir : ".", rel);
	char *want = generate(print, &want_len);
	char *have = read_whole(path, &have_len);
	bool same = have && have_len == want_len && memcmp(have, want, want_len) == 0;
	if (!same)
		fprintf(stderr, "%s is out of date: regenerate with tokenbouncer %s\n", rel, option);
	CHECK(same);
	free(want);
	free(have);
}

static void test_generated_files(void)
{
	check_generated("etc/tokenbouncer.ini", params_print_sample, "--print-sample-config");
	check_generated("doc/config-reference.md", params_print_reference, "--print-config-reference");
	check_generated("doc/man/tokenbouncer.1", params_print_man_cli, "--print-man tokenbouncer.1");
	check_generated("doc/man/tokenbouncer.ini.5", params_print_man_ini, "--print-man tokenbouncer.ini.5");
}

/* The documented keys of each credential type are exactly those its provider
 * accepts, and every type a provider accepts is documented. */
static void test_credential_docs_match_providers(void)
{
	static const char *const known[] = {
		"azure-managed-identity",
		"azure-client-secret",
		"azure-client-certificate",
		"azure-workload-identity",
		"azure-cli",
		"azure-default",
		"aws-default",
		"aws-static",
		"aws-profile",
		"aws-web-identity",
		"aws-assume-role",
		"aws-process",
		"aws-container",
		"aws-imds",
		"gcp-default",
		"gcp-service-account",
		"gcp-authorized-user",
		"gcp-impersonate",
		"gcp-metadata",
	};
	CHECK(credential_type_doc_count == sizeof(known) / sizeof(known[0]));
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const struct credential_type_doc *d = NULL;
		for (size_t k = 0; k < credential_type_doc_count; k++)
			if (strcmp(credential_type_docs[k].type, known[i]) == 0)
				d = &credential_type_docs[k];
		CHECK(d != NULL);
		const char *const *keys = azure_credential_keys(known[i]);
		if (!keys)
			keys = aws_credential_keys(known[i]);
		if (!keys)
			keys = gcp_credential_keys(known[i]);
		CHECK(keys != NULL);
		if (!d || !keys)
			continue;
		size_t nkeys = 0, ndoc = 0;
		for (; keys[nkeys]; nkeys++) {
			bool found = false;
			for (const struct credential_key_doc *kd = d->keys; kd->key; kd++)
				found |= strcmp(kd->key, keys[nkeys]) == 0;
			if (!found)
				fprintf(stderr, "credential type %s: key %s is not documented\n", known[i],
					keys[nkeys]);
			CHECK(found);
		}
		for (const struct credential_key_doc *kd = d->keys; kd->key; kd++)
			ndoc++;
		if (ndoc != nkeys)
			fprintf(stderr, "credential type %s: %zu keys documented, %zu accepted\n", known[i],
				ndoc, nkeys);
		CHECK(ndoc == nkeys);
	}
}

/* The sample parses: as is (all commented) and with every example uncommented. */
static void test_sample_parses(void)
{
	size_t len;
	char *sample = generate(params_print_sample, &len);
	struct unit_loop each = UNIT_LOOP;
	for (char *line = sample; *line;) {
		size_t n = strcspn(line, "\n");
		CHECK_EACH(each, n <= 198); /* stays readable, and parses with any inih */
		line += n + (line[n] ? 1 : 0);
	}
	CHECK_LOOP_END(each);
	struct tb_config *cfg = config_parse_string(sample, "etc/tokenbouncer.ini", err, sizeof(err));
	CHECK(cfg == NULL);
	CHECK_STR(err, "etc/tokenbouncer.ini: auth_type = md5 (the default) requires auth_file");
	config_free(cfg);

	/* Drop the ';' of every ";name" line, keeping ";;" prose. */
	char *open = malloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		bool line_start = i == 0 || sample[i - 1] == '\n';
		if (line_start && sample[i] == ';' && sample[i + 1] != ';')
			continue;
		open[o++] = sample[i];
	}
	open[o] = '\0';
	cfg = config_parse_string(open, "open.ini", err, sizeof(err));
	CHECK(cfg == NULL);
	if (!strstr(err, "auth_type = md5 requires auth_file"))
		fprintf(stderr, "uncommented sample: %s\n", err);
	CHECK(strstr(err, "auth_type = md5 requires auth_file") != NULL);
	config_free(cfg);
	free(open);
	free(sample);
}

/* Host lists: entries, per-entry ports, IPv6 literals. */
static void test_hostlist(void)
{
	char h[HOSTLIST_MAX_HOST];
	int port;
	CHECK(hostlist_count(NULL) == 0 && hostlist_count("a") == 1 && hostlist_count("a,b:7,c") == 3);
	CHECK(hostlist_valid("a,b:7,[::1]:9,::1,10.0.0.1") && hostlist_valid("/var/run/pg"));
	CHECK(!hostlist_valid("a,") && !hostlist_valid("a b") && !hostlist_valid("[::1") &&
	      !hostlist_valid("a:99999") && !hostlist_valid("a:x"));
	CHECK(hostlist_pick("a,b:7,[::1]:9,::1", 1, 5432, h, sizeof(h), &port) && strcmp(h, "b") == 0 &&
	      port == 7);
	CHECK(hostlist_pick("a,b:7,[::1]:9,::1", 2, 5432, h, sizeof(h), &port) && strcmp(h, "::1") == 0 &&
	      port == 9);
	CHECK(hostlist_pick("a,b:7,[::1]:9,::1", 3, 5432, h, sizeof(h), &port) && strcmp(h, "::1") == 0 &&
	      port == 5432);
	CHECK(hostlist_pick("a,b:7,[::1]:9,::1", 4, 5432, h, sizeof(h), &port) && strcmp(h, "a") == 0 &&
	      port == 5432);
	CHECK(hostlist_pick("/tmp", 9, 6000, h, sizeof(h), &port) && strcmp(h, "/tmp") == 0 && port == 6000);
	struct tb_config *cfg = PARSE_OK(BASE "[databases]\na = host=x,y:6000 load_balance_hosts=disable\n");
	CHECK(cfg && cfg->dbs[0].load_balance_hosts == LOAD_BALANCE_DISABLE && cfg->nwarnings == 0);
	config_free(cfg);
}

/* A clone owns everything: it outlives its original (ASan checks the rest). */
static void test_clone(void)
{
	struct tb_config *cfg = PARSE_OK(
		BASE "admin_users = a\n[databases]\nx = host=h password=p\n"
		     "* = host=f\n[users]\nbob = pool_mode=session\n[credential.c]\ntype = aws-default\n"
		     "[peers]\n1 = host=/tmp/p1\n");
	if (!cfg)
		return;
	struct tb_config *copy = config_clone(cfg);
	config_free(cfg);
	const struct db_alias *x = config_find_db(copy, "x");
	CHECK(x && strcmp(x->password, "p") == 0 && strcmp(x->file, "t.ini") == 0);
	CHECK(config_find_db(copy, "other") && strcmp(config_find_db(copy, "other")->host, "f") == 0);
	CHECK(config_find_user(copy, "bob") && config_find_user(copy, "bob")->pool_mode == POOL_MODE_SESSION);
	CHECK_STR(copy->admin_users, "a");
	CHECK(copy->ncreds == 1 && strcmp(copy->creds[0].type, "aws-default") == 0);
	CHECK(copy->npeers == 1 && strcmp(copy->peers[0].host, "/tmp/p1") == 0);
	char e[256];
	CHECK(config_validate(copy, e, sizeof(e)));
	free(copy->auth_file);
	copy->auth_file = NULL;
	copy->auth_type = AUTH_TYPE_MD5;
	CHECK(!config_validate(copy, e, sizeof(e)));
	CHECK_STR(e, "t.ini: auth_type = md5 (the default) requires auth_file");
	config_free(copy);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* %include as PgBouncer: the file's lines at that point, sections carrying
 * over both ways, nesting, and loops refused. */
static void test_include(void)
{
	char dir[] = "/tmp/test_include_XXXXXX", a[128], b[128], main_ini[128], text[1024], msg[512];
	if (!mkdtemp(dir))
		return;
	snprintf(a, sizeof(a), "%s/a.ini", dir);
	snprintf(b, sizeof(b), "%s/b.ini", dir);
	snprintf(main_ini, sizeof(main_ini), "%s/main.ini", dir);
	snprintf(text, sizeof(text), "  listen_port = 7001\n  %%include %s\n[databases]\nx = host=a\n", b);
	write_file(a, text);
	write_file(b, "pool_mode = transaction\n[databases]\ny = host=b\n");
	snprintf(text, sizeof(text), BASE "%%include %s\nz = host=c\n[tokenbouncer]\nlisten_port = 7002\n", a);
	write_file(main_ini, text);
	struct tb_config *cfg = config_load(main_ini, err, sizeof(err));
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->pool_mode == POOL_MODE_TRANSACTION && cfg->listen_port == 7002);
		CHECK(cfg->ndbs == 3 && config_find_db(cfg, "z") != NULL);
		const struct db_alias *y = config_find_db(cfg, "y");
		CHECK(y && strcmp(y->file, b) == 0 && y->line == 3);
		snprintf(msg, sizeof(msg),
			 "%s:6: listen_port is set again (first at %s:1); the last "
			 "value is used",
			 main_ini, a);
		EXPECT_WARNING(cfg, msg);
		CHECK(cfg->nfiles == 3);
	} else {
		fprintf(stderr, "  %s\n", err);
	}
	config_free(cfg);

	/* b includes a, which is still being read. */
	snprintf(text, sizeof(text), "%%include %s\n", a);
	write_file(b, text);
	cfg = config_load(main_ini, err, sizeof(err));
	CHECK(cfg == NULL);
	snprintf(msg, sizeof(msg),
		 "%s:1: %s: included again while it is being read (an %%include "
		 "loop)",
		 b, a);
	CHECK_STR(err, msg);
	/* An error inside an included file names that file. */
	write_file(b, "pool_mode = sometimes\n");
	cfg = config_load(main_ini, err, sizeof(err));
	CHECK(cfg == NULL);
	snprintf(msg, sizeof(msg),
		 "%s:1: invalid value for pool_mode: \"sometimes\" (expected one "
		 "of: session, transaction, statement)",
		 b);
	CHECK_STR(err, msg);
	unlink(a);
	unlink(b);
	unlink(main_ini);
	rmdir(dir);
}

static void test_load(void)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	const char text[] = BASE "listen_port = 6000\n[databases]\na = host=x password=pw\n";
	CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	struct tb_config *cfg = config_load(path, err, sizeof(err));
	CHECK(cfg && cfg->listen_port == 6000 && cfg->ndbs == 1);
	CHECK(cfg && strcmp(cfg->path, path) == 0);
	config_free(cfg);

	/* A NUL byte inside the file is an error, not the end of the file. */
	FILE *f = fopen(path, "wb");
	fwrite(BASE "listen_port = 1\0 2\n", 1, sizeof(BASE) - 1 + 19, f);
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	CHECK(cfg == NULL);
	char msg[256];
	snprintf(msg, sizeof(msg), "%s:3: line contains a NUL byte", path);
	CHECK_STR(err, msg);
	unlink(path);

	cfg = config_load("/nonexistent/tokenbouncer.ini", err, sizeof(err));
	CHECK(cfg == NULL);
	CHECK_STR(err, "/nonexistent/tokenbouncer.ini: cannot open: No such file or directory");
}

static void test_token_aliases(void)
{
	struct tb_config *cfg = parse_ok(
		BASE
		"server_tls_sslmode = verify-full\n"
		"server_tls_ca_file = /etc/ssl/ca.pem\n"
		"[databases]\n"
		"orders = host=orders.postgres.database.azure.com dbname=orders user=orders-app"
		"  auth=entra credential=orders_mi server_lifetime=token\n"
		"ledger = host=abc.dsql.us-east-1.on.aws auth=aws-dsql credential=aws token_duration=1200\n"
		"legacy = host=10.0.0.7 password=x sslmode=disable\n"
		"[credential.orders_mi]\n"
		"type = azure-managed-identity\n"
		"client_id = 00000000-0000-0000-0000-000000000000\n"
		"[credential.aws]\n"
		"type = aws-default\nprofile = prod\n",
		__LINE__);
	if (!cfg)
		return;
	const struct db_alias *o = config_find_db(cfg, "orders");
	const struct db_alias *l = config_find_db(cfg, "ledger");
	CHECK(o && o->auth == UPSTREAM_AUTH_ENTRA && o->lifetime_from_token);
	CHECK_STR(o ? o->credential : NULL, "orders_mi");
	CHECK(l && l->auth == UPSTREAM_AUTH_AWS_DSQL && l->token_duration == 1200 * USEC_PER_SEC);
	CHECK(config_find_db(cfg, "legacy")->sslmode == TLS_MODE_DISABLE);
	CHECK(o && o->sslmode == -1);
	const struct credential_cfg *c = config_find_credential(cfg, "orders_mi");
	CHECK(c && c->nkv == 2 && strcmp(c->type, "azure-managed-identity") == 0);
	CHECK(c && c->kv[1].line == 11);
	CHECK(config_find_credential(cfg, "nope") == NULL);
	CHECK_STR(upstream_auth_name(UPSTREAM_AUTH_AWS_RDS), "aws-rds");
	config_free(cfg);
}

int main(void)
{
	test_token_aliases();
	test_tables();
	test_defaults();
	test_int();
	test_bool();
	test_time();
	test_enum();
	test_string();
	test_format();
	test_structure();
	test_long_lines();
	test_connstr();
	test_databases();
	test_database_errors();
	test_pgbouncer_params();
	test_include();
	test_clone();
	test_hostlist();
	test_semantic();
	test_reload();
	test_generated_files();
	test_credential_docs_match_providers();
	test_sample_parses();
	test_load();
	return unit_finish("test_config");
}
