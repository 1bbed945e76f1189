/* The parameter tables and the code that reads, compares, formats and
 * documents their values. See include/core/params.h. */
#include "core/params.h"

#include "core/credential_doc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hostlist.h"
#include "core/log.h"

/* Enum fields are read and written through int: make sure that is their size. */
_Static_assert(sizeof(enum pool_mode) == sizeof(int), "enum pool_mode is int-sized");
_Static_assert(sizeof(enum auth_type) == sizeof(int), "enum auth_type is int-sized");
_Static_assert(sizeof(enum tls_mode) == sizeof(int), "enum tls_mode is int-sized");
_Static_assert(sizeof(enum upstream_auth) == sizeof(int), "enum upstream_auth is int-sized");

#define SEC(x) ((long long)(x)*1000000LL)
#define MSEC(x) ((long long)(x)*1000LL)
/* One year: longer than any sensible timeout, small enough to add to a clock. */
#define TIME_MAX SEC(365 * 24 * 3600)
#define COUNT_MAX 1000000

#define RELOAD true
#define RESTART false

static const struct param_enum_val pool_mode_vals[] = {
	{ "session", POOL_MODE_SESSION },
	{ "transaction", POOL_MODE_TRANSACTION },
	{ "statement", POOL_MODE_STATEMENT },
	{ NULL, 0 },
};

static const struct param_enum_val auth_type_vals[] = {
	{ "scram-sha-256", AUTH_TYPE_SCRAM }, { "md5", AUTH_TYPE_MD5 }, { "plain", AUTH_TYPE_PLAIN },
	{ "trust", AUTH_TYPE_TRUST },         { "hba", AUTH_TYPE_HBA }, { NULL, 0 },
};

static const struct param_enum_val tls_mode_vals[] = {
	{ "disable", TLS_MODE_DISABLE },
	{ "allow", TLS_MODE_ALLOW },
	{ "prefer", TLS_MODE_PREFER },
	{ "require", TLS_MODE_REQUIRE },
	{ "verify-ca", TLS_MODE_VERIFY_CA },
	{ "verify-full", TLS_MODE_VERIFY_FULL },
	{ NULL, 0 },
};

static const struct param_enum_val ip_type_vals[] = {
	{ "public", CONNECTOR_IP_PUBLIC },
	{ "private", CONNECTOR_IP_PRIVATE },
	{ "psc", CONNECTOR_IP_PSC },
	{ NULL, 0 },
};

static const struct param_enum_val upstream_auth_vals[] = {
	{ "password", UPSTREAM_AUTH_PASSWORD },
	{ "entra", UPSTREAM_AUTH_ENTRA },
	{ "aws-rds", UPSTREAM_AUTH_AWS_RDS },
	{ "aws-dsql", UPSTREAM_AUTH_AWS_DSQL },
	{ "cloudsql", UPSTREAM_AUTH_CLOUDSQL },
	{ "alloydb", UPSTREAM_AUTH_ALLOYDB },
	{ NULL, 0 },
};

static bool validate_tls_protocols(const char *value)
{
	bool a, b;
	return param_parse_tls_protocols(value, &a, &b);
}

static bool validate_host(const char *value)
{
	return hostlist_valid(value);
}

static const struct param_enum_val tsa_vals[] = {
	{ "any", TSA_MODE_ANY },
	{ "read-write", TSA_MODE_READ_WRITE },
	{ "read-only", TSA_MODE_READ_ONLY },
	{ "primary", TSA_MODE_PRIMARY },
	{ "standby", TSA_MODE_STANDBY },
	{ "prefer-standby", TSA_MODE_PREFER_STANDBY },
	{ NULL, 0 },
};

static const struct param_enum_val load_balance_vals[] = {
	{ "round-robin", LOAD_BALANCE_ROUND_ROBIN },
	{ "disable", LOAD_BALANCE_DISABLE },
	{ NULL, 0 },
};

/* "host:port", "[v6addr]:port" or "*:port"; the admin module resolves it. */
static bool validate_listen_endpoint(const char *value)
{
	const char *colon;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		if (!close || close == value + 1 || close[1] != ':')
			return false;
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (!colon || colon == value || memchr(value, ':', (size_t)(colon - value)))
			return false;
	}
	const char *port = colon + 1;
	if (!*port || strlen(port) > 5)
		return false;
	long n = 0;
	for (const char *d = port; *d; d++) {
		if (!isdigit((unsigned char)*d))
			return false;
		n = n * 10 + (*d - '0');
	}
	return n >= 1 && n <= 65535;
}

static bool validate_facility(const char *value)
{
	return log_facility_valid(value);
}

/* unix_socket_mode: an octal file mode, 0 to 0777. */
static bool validate_mode(const char *value)
{
	if (!*value || strlen(value) > 4)
		return false;
	for (const char *p = value; *p; p++)
		if (*p < '0' || *p > '7')
			return false;
	return strtol(value, NULL, 8) <= 0777;
}

#define TLS_PROTOCOLS_EXPECT "a comma-separated list of: secure, all, tlsv1.2, tlsv1.3"

/* The parameter tables are laid out by hand, one entry a few lines. */
/* clang-format off */
#define P_STR(f, n, def, rl, d) { .name = #n, .type = PARAM_STRING, .offset = offsetof(f, n), \
	.default_value = def, .reloadable = rl, .doc = d }
#define P_INT(f, n, def, lo, hi, rl, d) { .name = #n, .type = PARAM_INT, .offset = offsetof(f, n), \
	.default_value = def, .min = lo, .max = hi, .reloadable = rl, .doc = d }
#define P_BOOL(f, n, def, rl, d) { .name = #n, .type = PARAM_BOOL, .offset = offsetof(f, n), \
	.default_value = def, .reloadable = rl, .doc = d }
#define P_TIME(f, n, def, lo, hi, rl, d) { .name = #n, .type = PARAM_TIME, .offset = offsetof(f, n), \
	.default_value = def, .min = lo, .max = hi, .reloadable = rl, .doc = d }
#define P_ENUM(f, n, def, vals, rl, d) { .name = #n, .type = PARAM_ENUM, .offset = offsetof(f, n), \
	.default_value = def, .enum_vals = vals, .reloadable = rl, .doc = d }

/* Accepted for PgBouncer files; "why" says what it would mean and why it does not here. */
#define P_IGN_STR(f, n, def, why, d) { .name = #n, .type = PARAM_STRING, .offset = offsetof(f, n), \
	.default_value = def, .reloadable = RELOAD, .ignored = why, .doc = d }
#define P_IGN_TIME(f, n, def, why, d) { .name = #n, .type = PARAM_TIME, .offset = offsetof(f, n), \
	.default_value = def, .min = 0, .max = TIME_MAX, .reloadable = RELOAD, .ignored = why, .doc = d }
#define P_IGN_INT(f, n, def, lo, hi, why, d) { .name = #n, .type = PARAM_INT, .offset = offsetof(f, n), \
	.default_value = def, .min = lo, .max = hi, .reloadable = RELOAD, .ignored = why, .doc = d }
#define P_IGN_BOOL(f, n, def, why, d) { .name = #n, .type = PARAM_BOOL, .offset = offsetof(f, n), \
	.default_value = def, .reloadable = RELOAD, .ignored = why, .doc = d }

#define G struct tb_config

const struct param_def param_table[] = {
	P_STR(G, listen_addr, "127.0.0.1", RESTART,
		"Comma-separated IP addresses or host names to accept TCP connections on; * means all "
		"IPv4 and IPv6 addresses and an empty value disables TCP."),
	P_INT(G, listen_port, "6432", 1, 65535, RESTART,
		"TCP port to listen on; the Unix socket is named after it too (.s.PGSQL.6432 for the "
		"default)."),
	P_BOOL(G, so_reuseport, "0", RESTART,
		"Set SO_REUSEPORT on the TCP listeners, so that several tokenbouncer processes listen on "
		"the same port and the kernel spreads new connections over them (more cores, rolling "
		"restarts); give each process its own unix_socket_dir, pidfile and peer_id."),
	P_INT(G, peer_id, "0", 0, 16383, RESTART,
		"This process's id in a group of peered processes (see [peers]): the cancel keys it hands "
		"out carry it, so a cancel request that reaches another member of the group is forwarded "
		"here; 0 disables peering."),
	P_STR(G, unix_socket_dir, "", RESTART,
		"Directory in which to create the Unix socket; empty (the default, where PgBouncer "
		"uses /tmp) means no Unix socket."),
	{ .name = "unix_socket_mode", .type = PARAM_STRING, .offset = offsetof(G, unix_socket_mode),
		.default_value = "0777", .reloadable = RESTART, .validate = validate_mode,
		.expect = "an octal file mode such as 0770", .doc = "File mode of the Unix socket." },
	P_STR(G, unix_socket_group, NULL, RESTART,
		"Group to give the Unix socket to; unset keeps the process's group."),
	P_STR(G, user, NULL, RESTART,
		"Unix user to switch to after start-up, once the listening sockets, the metrics port "
		"and the pidfile are open (as PgBouncer). Only a pooler started as root can switch; "
		"one already running as this user carries on. Files read later (reload, auth_file, "
		"TLS keys, credential files) must be readable by this user."),
	P_ENUM(G, auth_type, "md5", auth_type_vals, RELOAD,
		"How clients authenticate to the pooler: scram-sha-256, md5, plain (cleartext "
		"password), trust (no password check) or hba (rules from auth_hba_file)."),
	P_STR(G, auth_file, NULL, RELOAD,
		"File of \"user\" \"password\" lines in PgBouncer's userlist format (SCRAM secrets, md5 "
		"hashes or plain passwords); required unless auth_type is trust."),
	P_STR(G, auth_hba_file, NULL, RELOAD,
		"File of pg_hba.conf-style rules choosing the authentication method per connection; "
		"required when auth_type is hba."),
	P_STR(G, auth_ident_file, NULL, RELOAD,
		"pg_ident.conf-style user name maps (MAPNAME SYSTEM-USERNAME DATABASE-USERNAME; a "
		"system name starting with / is a regular expression, \\1 in the database name its "
		"first group) for the map= option of peer and cert rules in auth_hba_file."),
	P_STR(G, auth_user, NULL, RELOAD,
		"User that runs auth_query to look up a client whose user is not in auth_file; it logs "
		"in as the lookup alias's servers do (the alias's password= or token, or its own "
		"auth_file entry). Unset: users missing from auth_file are refused."),
	P_STR(G, auth_query, "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE "
		"rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin", RELOAD,
		"Query run with the client's user name as $1; the second column of its first row is the "
		"secret (SCRAM verifier, md5 hash or plain password) the client is checked against, "
		"and NULL or no row means a failed login. Where pg_authid is hidden (managed services), "
		"call a SECURITY DEFINER function instead, e.g. SELECT * FROM pgbouncer.get_auth($1). "
		"Concurrent logins of one user share one query; nothing is cached."),
	P_STR(G, auth_dbname, NULL, RELOAD,
		"Alias whose servers run auth_query; unset uses the alias the client connects to."),
	P_IGN_STR(G, auth_ldap_options, NULL, "LDAP authentication is not supported (auth_type ldap "
		"is refused)", "PgBouncer: LDAP connection options for auth_type ldap."),
	P_INT(G, scram_iterations, "4096", 1, 10000000, RELOAD,
		"PBKDF2 iterations of the SCRAM secret the pooler derives from a plain password in "
		"auth_file (only for a plain-text password; stored secrets keep their own)."),
	P_STR(G, admin_users, NULL, RELOAD,
		"Comma-separated user names allowed to run every admin console command."),
	P_STR(G, stats_users, NULL, RELOAD,
		"Comma-separated user names allowed to connect to the admin console and run its "
		"read-only SHOW commands."),
	P_ENUM(G, pool_mode, "session", pool_mode_vals, RELOAD,
		"When a server connection returns to the pool: session (when the client disconnects), "
		"transaction (after each transaction) or statement (after each statement)."),
	P_INT(G, max_client_conn, "100", 1, COUNT_MAX, RELOAD,
		"Maximum number of client connections open at once."),
	P_INT(G, max_db_client_connections, "0", 0, COUNT_MAX, RELOAD,
		"Maximum client connections to one database alias; 0 means no limit."),
	P_INT(G, max_user_client_connections, "0", 0, COUNT_MAX, RELOAD,
		"Maximum client connections of one user name; 0 means no limit."),
	P_INT(G, default_pool_size, "20", 1, COUNT_MAX, RELOAD,
		"Server connections allowed per (database, user) pool when the database entry sets no "
		"pool_size."),
	P_INT(G, min_pool_size, "0", 0, COUNT_MAX, RELOAD,
		"Keep at least this many server connections open in each pool, opening more in the "
		"background when it falls below."),
	P_INT(G, reserve_pool_size, "0", 0, COUNT_MAX, RELOAD,
		"Extra server connections a pool may open for clients that have waited longer than "
		"reserve_pool_timeout; 0 disables the reserve."),
	P_TIME(G, reserve_pool_timeout, "5", 0, TIME_MAX, RELOAD,
		"Seconds a client must wait for a server connection before its pool may use the "
		"reserve pool."),
	P_INT(G, max_db_connections, "0", 0, COUNT_MAX, RELOAD,
		"Maximum server connections to one database across all its pools; 0 means no limit."),
	P_INT(G, max_user_connections, "0", 0, COUNT_MAX, RELOAD,
		"Maximum server connections for one user across all its pools; 0 means no limit."),
	P_BOOL(G, server_round_robin, "0", RELOAD,
		"Hand out idle server connections in turn (oldest first) instead of reusing the most "
		"recently used one, to spread load over a round-robin address."),
	P_STR(G, track_extra_parameters, "IntervalStyle", RELOAD,
		"Comma-separated further parameters (at most 8) to keep per client and restore on the "
		"server it is given, besides client_encoding, DateStyle, IntervalStyle, TimeZone, "
		"standard_conforming_strings and application_name (always tracked). Only parameters "
		"the server reports to clients (ParameterStatus) can be tracked, such as "
		"default_transaction_read_only; clients may also send them as startup parameters."),
	P_BOOL(G, disable_pqexec, "0", RELOAD,
		"Refuse the simple query protocol (a Query message can carry several statements); only "
		"clients using the extended protocol keep working."),
	P_BOOL(G, application_name_add_host, "0", RELOAD,
		"Append \" - host:port\" of the client to the application_name it logs in with."),
	P_STR(G, conffile, NULL, RELOAD,
		"The configuration file; shows the file given on the command line, and a new value "
		"makes the next RELOAD read that file."),
	{ .name = "service_name", .synonym = "job_name", .type = PARAM_STRING,
		.offset = offsetof(G, service_name), .default_value = "pgbouncer", .reloadable = RELOAD,
		.ignored = "it names a Windows service",
		.doc = "PgBouncer: Windows service name; job_name is a synonym." },
	P_TIME(G, server_lifetime, "3600", 0, TIME_MAX, RELOAD,
		"Close a server connection once it has been open this many seconds, as soon as it is "
		"not in use; 0 means no age limit."),
	P_TIME(G, server_idle_timeout, "600", 0, TIME_MAX, RELOAD,
		"Close a server connection that has been idle in the pool this many seconds; 0 "
		"disables."),
	P_TIME(G, server_connect_timeout, "15", MSEC(1), TIME_MAX, RELOAD,
		"Seconds allowed for connecting and logging in to a server before the attempt fails."),
	P_TIME(G, server_login_retry, "15", 0, TIME_MAX, RELOAD,
		"Seconds to wait after a failed server connection or login before trying again. After a "
		"failure that looks like a restart (57P03, connection refused or closed during the login), "
		"clients without a server keep waiting for the retry, for at most server_connect_timeout + "
		"server_login_retry."),
	P_STR(G, server_reset_query, "DISCARD ALL", RELOAD,
		"SQL run on a server connection before another client gets it in session mode; empty "
		"runs nothing."),
	P_BOOL(G, server_reset_query_always, "0", RELOAD,
		"Run server_reset_query in transaction and statement mode too, not only in session "
		"mode."),
	P_STR(G, server_check_query, "<empty>", RELOAD,
		"SQL that checks a server connection idle longer than server_check_delay before reuse; "
		"<empty> (the default, as in PgBouncer) sends an empty query and an empty value disables "
		"the check."),
	P_TIME(G, server_check_delay, "30", 0, TIME_MAX, RELOAD,
		"Seconds a server connection may stay idle and still be reused without running "
		"server_check_query; 0 always checks."),
	P_BOOL(G, server_fast_close, "0", RELOAD,
		"Session mode: close a server connection marked for reconnect (RECONNECT, a reload "
		"that changes its database, a TLS change) or by a shutdown as soon as its client is "
		"outside a transaction, closing the client too, instead of waiting for the client to "
		"leave."),
	P_TIME(G, client_login_timeout, "60", 0, TIME_MAX, RELOAD,
		"Disconnect a client that has not finished logging in within this many seconds; 0 "
		"disables."),
	P_TIME(G, autodb_idle_timeout, "3600", 0, TIME_MAX, RELOAD,
		"Free a database made from the \"*\" entry (its pools and statistics) once it has "
		"had no clients and no servers (see server_idle_timeout) for this many seconds; 0 "
		"never frees them."),
	P_TIME(G, pool_idle_timeout, "0", 0, TIME_MAX, RELOAD,
		"Free a (database, user) pool, with its statistics, once it has had no clients and no "
		"servers for this many seconds; 0 keeps pools for the life of their database."),
	P_TIME(G, dns_max_ttl, "15", 0, TIME_MAX, RELOAD,
		"Seconds a host name's address is reused for new server connections before it is "
		"looked up again, whatever the record's own TTL; 0 looks up every time."),
	P_TIME(G, dns_nxdomain_ttl, "15", 0, TIME_MAX, RELOAD,
		"Seconds a failed lookup (NXDOMAIN, no answer, timeout) is remembered, so that new "
		"server connections to that name fail at once; 0 remembers none."),
	P_IGN_TIME(G, dns_zone_check_period, "0", "it needs the c-ares DNS library, which "
		"tokenbouncer does not use", "PgBouncer: how often DNS zone serials are checked."),
	P_STR(G, resolv_conf, NULL, RESTART,
		"A resolv.conf file (nameserver, search, domain and options lines; a nameserver may "
		"carry a :port) to use instead of /etc/resolv.conf; /etc/hosts is read either way."),
	P_TIME(G, query_wait_notify, "5", 0, TIME_MAX, RELOAD,
		"Send a NOTICE to a client that has waited this many seconds for a server connection "
		"(once per wait); 0 disables."),
	P_STR(G, login_notify_message, NULL, RELOAD,
		"Text of a NOTICE sent to every client of a pooled database when it has logged in "
		"(before its first ReadyForQuery); unset or empty sends none."),
	P_TIME(G, client_idle_timeout, "0", 0, TIME_MAX, RELOAD,
		"Disconnect a client that has been idle this many seconds; 0 disables."),
	P_TIME(G, query_wait_timeout, "120", 0, TIME_MAX, RELOAD,
		"Disconnect a client that has waited this many seconds for a server connection; 0 "
		"waits without limit."),
	P_TIME(G, query_timeout, "0", 0, TIME_MAX, RELOAD,
		"Cancel a query that has been running this many seconds; 0 disables."),
	P_TIME(G, idle_transaction_timeout, "0", 0, TIME_MAX, RELOAD,
		"Disconnect a client that has been idle inside a transaction this many seconds; 0 "
		"disables."),
	P_TIME(G, transaction_timeout, "0", 0, TIME_MAX, RELOAD,
		"Disconnect a client whose transaction has been open this many seconds (a running "
		"query is cancelled first); 0 disables."),
	P_TIME(G, cancel_wait_timeout, "10", 0, TIME_MAX, RELOAD,
		"A cancel request for a client still waiting for a server connection waits until the "
		"client gets one (then it is forwarded) for at most this many seconds, then its "
		"connection is closed; 0 waits without limit."),
	P_IGN_TIME(G, suspend_timeout, "10", "there is no online restart (-R) to wait for",
		"PgBouncer: how long SUSPEND and online restart wait for buffers to flush."),
	P_STR(G, ignore_startup_parameters, "", RELOAD,
		"Comma-separated startup parameters (such as extra_float_digits) that clients may send "
		"and the pooler ignores instead of refusing the login."),
	P_ENUM(G, client_tls_sslmode, "disable", tls_mode_vals, RELOAD,
		"TLS for client connections: disable, allow, prefer, require, verify-ca or verify-full "
		"(the last two require client certificates signed by client_tls_ca_file)."),
	P_STR(G, client_tls_key_file, NULL, RELOAD,
		"PEM file with the private key of the certificate the pooler presents to clients."),
	P_STR(G, client_tls_cert_file, NULL, RELOAD,
		"PEM file with the certificate (chain) the pooler presents to clients."),
	P_STR(G, client_tls_ca_file, NULL, RELOAD,
		"PEM file with the CA certificates that client certificates are checked against."),
	{ .name = "client_tls_protocols", .type = PARAM_STRING,
		.offset = offsetof(G, client_tls_protocols), .default_value = "secure",
		.reloadable = RELOAD, .validate = validate_tls_protocols, .expect = TLS_PROTOCOLS_EXPECT,
		.doc = "TLS versions clients may use: secure (TLS 1.2 and 1.3), all, tlsv1.2, tlsv1.3, "
			"or a comma-separated list of versions." },
	P_STR(G, client_tls_ciphers, "default", RELOAD,
		"OpenSSL cipher list for TLS 1.2 client connections; default keeps OpenSSL's defaults."),
	P_STR(G, client_tls13_ciphers, "", RELOAD,
		"OpenSSL TLS 1.3 cipher suites for client connections (colon-separated); empty keeps "
		"OpenSSL's defaults."),
	P_STR(G, client_tls_ecdhcurve, "auto", RELOAD,
		"Curves for ECDH key exchange with clients: auto, none, or an OpenSSL curve list."),
	P_STR(G, client_tls_dheparams, "auto", RELOAD,
		"DHE key exchange with clients: auto (OpenSSL's built-in groups), legacy (the same) "
		"or none (no DHE)."),
	P_ENUM(G, server_tls_sslmode, "prefer", tls_mode_vals, RELOAD,
		"TLS for server connections: disable, allow, prefer, require, verify-ca (check the "
		"certificate against server_tls_ca_file) or verify-full (also check the host name)."),
	P_STR(G, server_tls_ca_file, NULL, RELOAD,
		"PEM file with the CA certificates that server certificates are checked against; "
		"required for verify-ca and verify-full."),
	P_STR(G, server_tls_key_file, NULL, RELOAD,
		"PEM file with the private key of a client certificate to present to servers."),
	P_STR(G, server_tls_cert_file, NULL, RELOAD,
		"PEM file with a client certificate to present to servers."),
	{ .name = "server_tls_protocols", .type = PARAM_STRING,
		.offset = offsetof(G, server_tls_protocols), .default_value = "secure",
		.reloadable = RELOAD, .validate = validate_tls_protocols, .expect = TLS_PROTOCOLS_EXPECT,
		.doc = "TLS versions used with servers: secure (TLS 1.2 and 1.3), all, tlsv1.2, tlsv1.3, "
			"or a comma-separated list of versions." },
	P_STR(G, server_tls_ciphers, "default", RELOAD,
		"OpenSSL cipher list for TLS 1.2 server connections; default keeps OpenSSL's defaults."),
	P_STR(G, server_tls13_ciphers, "", RELOAD,
		"OpenSSL TLS 1.3 cipher suites for server connections; empty keeps OpenSSL's defaults."),
	P_INT(G, max_prepared_statements, "200", 0, COUNT_MAX, RELOAD,
		"Protocol-level named prepared statements kept per server connection in transaction "
		"and statement mode, least recently used closed first; 0 turns tracking off."),
	P_INT(G, max_packet_size, "1073741824", 8192, 1073741824, RELOAD,
		"Largest protocol message in bytes accepted from a client or server; a larger one "
		"closes the connection."),
	P_INT(G, pkt_buf, "4096", 1024, 65536, RESTART,
		"Size in bytes of each connection's network buffer."),
	P_INT(G, listen_backlog, "128", 1, 65535, RESTART,
		"Backlog of listen(2): connections the kernel queues before the pooler accepts them."),
	P_IGN_INT(G, sbuf_loopcnt, "5", 0, COUNT_MAX, "each read is bounded by pkt_buf and sent on "
		"at once, so one connection cannot stall the others",
		"PgBouncer: how many buffers to process on one connection before others."),
	P_BOOL(G, tcp_defer_accept, "0", RESTART,
		"Linux TCP_DEFER_ACCEPT on TCP listeners: wake the pooler only once a client has sent "
		"data (45 seconds at most); off by default (PgBouncer: on) so that client_login_timeout "
		"also covers connections that send nothing."),
	P_INT(G, tcp_socket_buffer, "0", 0, 1073741824, RELOAD,
		"SO_SNDBUF and SO_RCVBUF in bytes for client and server sockets; 0 keeps the "
		"kernel's."),
	P_STR(G, logfile, NULL, RELOAD,
		"File to append log lines to; it is reopened on reload."),
	P_BOOL(G, log_connections, "1", RELOAD,
		"Log each successful client login."),
	P_BOOL(G, log_disconnections, "1", RELOAD,
		"Log each client disconnection with its reason."),
	P_BOOL(G, log_pooler_errors, "1", RELOAD,
		"Log the error messages the pooler itself sends to clients."),
	P_BOOL(G, log_stats, "1", RELOAD,
		"Log one line of averages over all databases every stats_period (transactions, "
		"queries, parses and binds per second, bytes in and out per second, average "
		"transaction, query and wait time), as PgBouncer does."),
	P_BOOL(G, syslog, "0", RELOAD,
		"Also send log lines to syslog."),
	P_STR(G, syslog_ident, "pgbouncer", RELOAD,
		"Program name on syslog lines."),
	{ .name = "syslog_facility", .type = PARAM_STRING, .offset = offsetof(G, syslog_facility),
		.default_value = "daemon", .reloadable = RELOAD, .validate = validate_facility,
		.expect = "auth, authpriv, daemon, user or local0 to local7",
		.doc = "Syslog facility of the lines sent to syslog." },
	P_INT(G, verbose, "0", 0, 2, RELOAD,
		"Extra logging: 0 normal, 1 debug, 2 every detail."),
	P_STR(G, pidfile, NULL, RESTART,
		"File to write the process id to at start-up; empty writes none."),
	P_BOOL(G, tcp_keepalive, "1", RELOAD,
		"Turn on TCP keepalive for client and server sockets, so that vanished peers are "
		"noticed."),
	P_INT(G, tcp_keepcnt, "0", 0, 1000, RELOAD,
		"Keepalive probes before a silent peer is dropped (TCP_KEEPCNT); 0 keeps the kernel's."),
	P_INT(G, tcp_keepidle, "0", 0, 86400 * 7, RELOAD,
		"Seconds of silence before the first keepalive probe (TCP_KEEPIDLE); 0 keeps the "
		"kernel's."),
	P_INT(G, tcp_keepintvl, "0", 0, 86400, RELOAD,
		"Seconds between keepalive probes (TCP_KEEPINTVL); 0 keeps the kernel's."),
	P_INT(G, tcp_user_timeout, "0", 0, 2147483647, RELOAD,
		"Milliseconds sent data may stay unacknowledged before the connection is dropped "
		"(TCP_USER_TIMEOUT); 0 keeps the kernel's."),
	P_BOOL(G, auth_plain_without_tls, "0", RELOAD,
		"Allow clients to send cleartext passwords (auth_type plain or plain hba rules) over "
		"connections without TLS."),
	P_STR(G, token_ca_file, NULL, RELOAD,
		"Extra CA bundle trusted for HTTPS identity endpoints (private endpoints, tests); "
		"the system store is always used too."),
	P_STR(G, sqladmin_api_endpoint, "https://sqladmin.googleapis.com", RELOAD,
		"Cloud SQL Admin API base URL for auth=cloudsql aliases with instance=; plain http:// "
		"only for loopback hosts."),
	P_STR(G, alloydb_api_endpoint, "https://alloydb.googleapis.com", RELOAD,
		"AlloyDB Admin API base URL for auth=alloydb aliases with instance=; plain http:// "
		"only for loopback hosts."),
	P_TIME(G, token_fetch_timeout, "10", MSEC(100), TIME_MAX, RELOAD,
		"Time limit for one identity request or helper program (az, credential_process)."),
	P_TIME(G, stats_period, "60", SEC(1), SEC(24 * 3600), RELOAD,
		"Seconds over which the averages of SHOW STATS and SHOW STATS_AVERAGES are computed."),
	{ .name = "metrics_listen", .type = PARAM_STRING, .offset = offsetof(G, metrics_listen),
		.reloadable = RESTART, .validate = validate_listen_endpoint,
		.expect = "host:port, [IPv6 address]:port or *:port",
		.doc = "Address and port of an HTTP endpoint serving /metrics in the Prometheus text "
			"format, such as 127.0.0.1:9127; empty (the default) serves none." },
};
const size_t param_count = sizeof(param_table) / sizeof(param_table[0]);
#undef G

#define D struct db_alias

const struct param_def param_db_table[] = {
	{ .name = "host", .type = PARAM_STRING, .offset = offsetof(D, host), .reloadable = RELOAD,
		.validate = validate_host, .expect = "a host name, IP address or socket directory, or a "
			"comma-separated list of host names or addresses, each with an optional :port",
		.doc = "Server host name or IP address, or a directory (starting with /) holding the "
			"server's Unix socket." },
	P_INT(D, port, "5432", 1, 65535, RELOAD, "Server port."),
	P_STR(D, dbname, NULL, RELOAD,
		"Database name on the server; unset uses the name the client asked for."),
	P_STR(D, user, NULL, RELOAD,
		"User to log in to the server as; unset uses the client's user name."),
	{ .name = "password", .type = PARAM_STRING, .offset = offsetof(D, password),
		.reloadable = RELOAD, .secret = true,
		.doc = "Password for the server login; unset takes the user's password from auth_file." },
	P_INT(D, pool_size, NULL, 0, COUNT_MAX, RELOAD,
		"Server connections per pool of this database; unset uses default_pool_size."),
	P_INT(D, min_pool_size, NULL, 0, COUNT_MAX, RELOAD,
		"Minimum server connections per pool of this database; unset uses min_pool_size."),
	{ .name = "reserve_pool", .synonym = "reserve_pool_size", .type = PARAM_INT,
		.offset = offsetof(D, reserve_pool), .min = 0, .max = COUNT_MAX, .reloadable = RELOAD,
		.doc = "Reserve pool size for this database (reserve_pool_size is a synonym); unset "
			"uses reserve_pool_size." },
	P_ENUM(D, pool_mode, NULL, pool_mode_vals, RELOAD,
		"Pool mode for this database; unset uses pool_mode."),
	P_INT(D, max_db_connections, NULL, 0, COUNT_MAX, RELOAD,
		"Maximum server connections to this database; unset uses max_db_connections."),
	P_INT(D, max_db_client_connections, NULL, 0, COUNT_MAX, RELOAD,
		"Maximum client connections to this database; unset uses max_db_client_connections."),
	P_TIME(D, query_wait_timeout, NULL, 0, TIME_MAX, RELOAD,
		"query_wait_timeout for clients of this database; unset uses query_wait_timeout (the "
		"login user's [users] value wins over both)."),
	P_STR(D, auth_user, NULL, RELOAD,
		"auth_user for clients of this database; unset uses auth_user."),
	P_STR(D, auth_query, NULL, RELOAD,
		"auth_query for clients of this database; unset uses auth_query."),
	P_STR(D, auth_dbname, NULL, RELOAD,
		"auth_dbname for clients of this database; unset uses auth_dbname."),
	P_ENUM(D, load_balance_hosts, NULL, load_balance_vals, RELOAD,
		"With a host list: round-robin (the default: each new server connection takes the next "
		"host) or disable (stay on a host until a connection to it fails)."),
	P_ENUM(D, target_session_attrs, NULL, tsa_vals, RELOAD,
		"Which servers of the host list a new server connection may use, as libpq's option: "
		"any (the default), read-write, read-only, primary, standby or prefer-standby (a "
		"standby if one of the hosts is, else any). Judged from what PostgreSQL 14 and later "
		"report at login; a server that is not what is asked for is closed and the next host "
		"tried, and when no host is, waiting clients get an error."),
	P_TIME(D, server_lifetime, NULL, 0, TIME_MAX, RELOAD,
		"Server connection lifetime in seconds for this database; unset uses server_lifetime."),
	P_STR(D, connect_query, NULL, RELOAD,
		"SQL run once on each new server connection after login."),
	P_STR(D, application_name, NULL, RELOAD,
		"application_name sent to the server at login."),
	P_STR(D, client_encoding, NULL, RELOAD,
		"client_encoding sent to the server at login."),
	P_STR(D, datestyle, NULL, RELOAD,
		"DateStyle sent to the server at login."),
	P_STR(D, timezone, NULL, RELOAD,
		"TimeZone sent to the server at login."),
	P_ENUM(D, auth, "password", upstream_auth_vals, RELOAD,
		"How the pooler logs in to the server: password, or a token it obtains itself: entra "
		"(Azure), aws-rds, aws-dsql, cloudsql or alloydb (Google IAM database login)."),
	P_STR(D, credential, NULL, RELOAD,
		"Name of the [credential.NAME] section whose identity a token method uses."),
	P_STR(D, region, NULL, RELOAD,
		"AWS region of the database, when the host name does not tell it (custom DNS names)."),
	P_STR(D, scope, NULL, RELOAD,
		"Token scope or audience; default https://ossrdbms-aad.database.windows.net/.default "
		"for entra (change it for sovereign clouds)."),
	P_TIME(D, token_duration, NULL, 1, 604800 * USEC_PER_SEC, RELOAD,
		"Lifetime requested for aws-dsql tokens (default 900 s, at most 604800 s)."),
	P_BOOL(D, user_from_token, NULL, RELOAD,
		"auth=entra without user=: log in as the user named by the token's claims (the "
		"managed identity's name, else upn, preferred_username or unique_name)."),
	P_STR(D, instance, NULL, RELOAD,
		"Connector mode: auth=cloudsql PROJECT:REGION:INSTANCE (TLS 1.3 to port 3307) or "
		"auth=alloydb projects/P/locations/R/clusters/C/instances/I (port 5433, metadata "
		"exchange), with ephemeral client certificates; without it, host= is dialled and the "
		"token is the password."),
	P_ENUM(D, ip_type, NULL, ip_type_vals, RELOAD,
		"Connector mode: the instance address to dial: public (Cloud SQL default), private "
		"(AlloyDB default) or psc."),
	P_BOOL(D, enable_iam_auth, NULL, RELOAD,
		"Connector mode: automatic IAM database login (the login token travels in the "
		"certificate request or the metadata exchange); without it the server asks for password=."),
	P_STR(D, sqladmin_api_endpoint, NULL, RELOAD,
		"Cloud SQL Admin API base URL for this alias; unset uses sqladmin_api_endpoint."),
	P_STR(D, alloydb_api_endpoint, NULL, RELOAD,
		"AlloyDB Admin API base URL for this alias; unset uses alloydb_api_endpoint."),
	P_ENUM(D, sslmode, NULL, tls_mode_vals, RELOAD,
		"TLS mode to this server; unset uses server_tls_sslmode. Token methods need require "
		"or stronger."),
};
const size_t param_db_count = sizeof(param_db_table) / sizeof(param_db_table[0]);
#undef D

#define U struct user_cfg

const struct param_def param_user_table[] = {
	P_ENUM(U, pool_mode, NULL, pool_mode_vals, RELOAD,
		"Pool mode for this user's pools; unset uses the database's or the global pool_mode."),
	P_INT(U, max_user_connections, NULL, 0, COUNT_MAX, RELOAD,
		"Maximum server connections for this user; unset uses max_user_connections."),
	P_INT(U, max_user_client_connections, NULL, 0, COUNT_MAX, RELOAD,
		"Maximum client connections of this user; unset uses max_user_client_connections."),
	P_INT(U, pool_size, NULL, 0, COUNT_MAX, RELOAD,
		"Server connections per pool of this (upstream) user, over the database's pool_size "
		"and default_pool_size."),
	P_INT(U, reserve_pool_size, NULL, 0, COUNT_MAX, RELOAD,
		"Reserve pool size of this user's pools, over the database's reserve_pool and "
		"reserve_pool_size."),
	P_TIME(U, query_timeout, NULL, 0, TIME_MAX, RELOAD,
		"query_timeout of the pools of this (server) user; 0 or unset uses query_timeout."),
	P_TIME(U, query_wait_timeout, NULL, 0, TIME_MAX, RELOAD,
		"query_wait_timeout of the clients that log in as this user, over the database's and "
		"the global one (0 turns it off for them)."),
	P_TIME(U, idle_transaction_timeout, NULL, 0, TIME_MAX, RELOAD,
		"idle_transaction_timeout of the pools of this (server) user; 0 or unset uses "
		"idle_transaction_timeout."),
	P_TIME(U, transaction_timeout, NULL, 0, TIME_MAX, RELOAD,
		"transaction_timeout of the pools of this (server) user; 0 or unset uses "
		"transaction_timeout."),
	P_TIME(U, client_idle_timeout, NULL, 0, TIME_MAX, RELOAD,
		"client_idle_timeout of the clients that log in as this user; 0 or unset uses "
		"client_idle_timeout."),
};
const size_t param_user_count = sizeof(param_user_table) / sizeof(param_user_table[0]);
#undef U

#define PE struct peer_cfg

const struct param_def param_peer_table[] = {
	P_STR(PE, host, NULL, RELOAD,
		"IP address or host name of the peer, or the directory of its Unix socket (a value "
		"starting with /)."),
	P_INT(PE, port, "6432", 1, 65535, RELOAD, "Port of the peer (and of its Unix socket's name)."),
	P_INT(PE, pool_size, NULL, 0, COUNT_MAX, RELOAD,
		"Cancel requests in flight to this peer at once; more wait; unset uses default_pool_size."),
};
const size_t param_peer_count = sizeof(param_peer_table) / sizeof(param_peer_table[0]);
/* clang-format on */
#undef PE

const struct param_def *param_find_in(const struct param_def *table, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (str_ieq(table[i].name, name) || (table[i].synonym && str_ieq(table[i].synonym, name)))
			return &table[i];
	return NULL;
}

const struct param_def *param_find(const char *name)
{
	return param_find_in(param_table, param_count, name);
}

/* ---- parsing values ---- */

static bool parse_int(const char *s, long long *out)
{
	char *end;
	if (!isdigit((unsigned char)s[0]) && !((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1])))
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };
	for (size_t i = 0; i < 4; i++) {
		if (str_ieq(s, yes[i])) {
			*out = true;
			return true;
		}
		if (str_ieq(s, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Microseconds per unit; 0 for an unknown unit. Units are case-sensitive, as
 * in postgresql.conf. */
static int64_t time_unit(const char *s)
{
	if (*s == '\0' || strcmp(s, "s") == 0)
		return 1000000;
	if (strcmp(s, "ms") == 0)
		return 1000;
	if (strcmp(s, "min") == 0)
		return 60 * (int64_t)1000000;
	if (strcmp(s, "h") == 0)
		return 3600 * (int64_t)1000000;
	return 0;
}

/* "15", "0.5", "250ms", "1.5 h": a number of seconds with an optional unit.
 * At most six decimals: finer is below our microsecond resolution anyway. */
static bool parse_time(const char *s, usec_t *out)
{
	int64_t ip = 0, frac = 0, scale = 1;
	bool digits = false;
	for (; isdigit((unsigned char)*s); s++, digits = true) {
		if (ip > (INT64_MAX - 9) / 10)
			return false;
		ip = ip * 10 + (*s - '0');
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, digits = true) {
			if (scale == 1000000)
				return false;
			frac = frac * 10 + (*s - '0');
			scale *= 10;
		}
	}
	if (!digits)
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	int64_t unit = time_unit(s);
	if (unit == 0 || ip > INT64_MAX / unit)
		return false;
	int64_t whole = ip * unit, part = frac * unit / scale;
	if (whole > INT64_MAX - part)
		return false;
	*out = whole + part;
	return true;
}

static bool parse_enum(const struct param_enum_val *vals, const char *s, int *out)
{
	for (; vals->name; vals++) {
		if (str_ieq(vals->name, s)) {
			*out = vals->value;
			return true;
		}
	}
	return false;
}

bool param_parse_tls_protocols(const char *value, bool *tls12, bool *tls13)
{
	const char *p = value;
	bool any = false;
	*tls12 = *tls13 = false;
	while (*p) {
		while (*p == ',' || *p == ':' || *p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ",: \t");
		if (n == 0)
			break;
		if ((n == 6 && strncasecmp(p, "secure", n) == 0) || (n == 3 && strncasecmp(p, "all", n) == 0))
			*tls12 = *tls13 = true;
		else if (n == 7 && strncasecmp(p, "tlsv1.2", n) == 0)
			*tls12 = true;
		else if (n == 7 && strncasecmp(p, "tlsv1.3", n) == 0)
			*tls13 = true;
		else
			return false;
		any = true;
		p += n;
	}
	return any;
}

/* ---- describing and reporting ---- */

static void describe_expect(const struct param_def *p, char *buf, size_t len)
{
	char lo[32], hi[32];
	size_t n = 0;
	switch (p->type) {
	case PARAM_INT:
		snprintf(buf, len, "an integer between %lld and %lld", p->min, p->max);
		return;
	case PARAM_TIME:
		param_format_time(p->min, lo, sizeof(lo));
		param_format_time(p->max, hi, sizeof(hi));
		snprintf(buf, len,
			 "a number of seconds between %s and %s, or a number with a unit: "
			 "ms, s, min, h",
			 lo, hi);
		return;
	case PARAM_BOOL:
		snprintf(buf, len, "a boolean: 1, 0, yes, no, on, off, true or false");
		return;
	case PARAM_ENUM:
		buf[0] = '\0';
		for (const struct param_enum_val *v = p->enum_vals; v->name && n < len; v++)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", v == p->enum_vals ? "one of: " : ", ",
					      v->name);
		return;
	case PARAM_STRING:
		snprintf(buf, len, "%s", p->expect ? p->expect : "any text");
		return;
	}
}

static bool bad_value(const struct param_def *p, const char *value, char *err, size_t errlen)
{
	char expect[256];
	describe_expect(p, expect, sizeof(expect));
	if (p->secret)
		snprintf(err, errlen, "invalid value for %s (expected %s)", p->name, expect);
	else
		snprintf(err, errlen, "invalid value for %s: \"%s\" (expected %s)", p->name, value, expect);
	return false;
}

/* ---- storing, comparing, copying ---- */

static char **str_field(void *base, const struct param_def *p)
{
	return (char **)(void *)((char *)base + p->offset);
}

static void *field_at(void *base, const struct param_def *p)
{
	return (char *)base + p->offset;
}

static const void *cfield_at(const void *base, const struct param_def *p)
{
	return (const char *)base + p->offset;
}

static void free_str(const struct param_def *p, char *s)
{
	if (p->secret)
		secret_free(s);
	else
		free(s);
}

static bool store_string(void *base, const struct param_def *p, const char *value, char *err, size_t errlen)
{
	bool empty_is_unset = p->default_value == NULL && value[0] == '\0';
	if (p->validate && !empty_is_unset && !p->validate(value))
		return bad_value(p, value, err, errlen);
	char **slot = str_field(base, p);
	free_str(p, *slot);
	*slot = empty_is_unset ? NULL : xstrdup(value);
	return true;
}

bool param_store(void *base, const struct param_def *p, const char *value, char *err, size_t errlen)
{
	long long ll;
	usec_t t;
	bool b;
	int e;

	switch (p->type) {
	case PARAM_STRING:
		return store_string(base, p, value, err, errlen);
	case PARAM_INT:
		if (!parse_int(value, &ll) || ll < p->min || ll > p->max)
			return bad_value(p, value, err, errlen);
		*(int *)field_at(base, p) = (int)ll;
		return true;
	case PARAM_BOOL:
		if (!parse_bool(value, &b))
			return bad_value(p, value, err, errlen);
		*(bool *)field_at(base, p) = b;
		return true;
	case PARAM_TIME:
		if (!parse_time(value, &t) || t < p->min || t > p->max)
			return bad_value(p, value, err, errlen);
		*(usec_t *)field_at(base, p) = t;
		return true;
	case PARAM_ENUM:
		if (!parse_enum(p->enum_vals, value, &e))
			return bad_value(p, value, err, errlen);
		*(int *)field_at(base, p) = e;
		return true;
	}
	return bad_value(p, value, err, errlen);
}

bool param_set(struct tb_config *cfg, const struct param_def *p, const char *value, char *err, size_t errlen)
{
	return param_store(cfg, p, value, err, errlen);
}

void param_clear(void *base, const struct param_def *p)
{
	if (p->type != PARAM_STRING)
		return;
	char **slot = str_field(base, p);
	free_str(p, *slot);
	*slot = NULL;
}

bool param_equal(const void *a, const void *b, const struct param_def *p)
{
	const void *fa = cfield_at(a, p), *fb = cfield_at(b, p);
	switch (p->type) {
	case PARAM_STRING: {
		const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
		if (!sa || !sb)
			return sa == sb;
		return strcmp(sa, sb) == 0;
	}
	case PARAM_INT:
	case PARAM_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case PARAM_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case PARAM_TIME:
		return *(const usec_t *)fa == *(const usec_t *)fb;
	}
	return false;
}

void param_copy(void *dst, const void *src, const struct param_def *p)
{
	const void *from = cfield_at(src, p);
	void *to = field_at(dst, p);
	switch (p->type) {
	case PARAM_STRING:
		param_clear(dst, p);
		*(char **)to = xstrdup(*(char *const *)from);
		return;
	case PARAM_INT:
	case PARAM_ENUM:
		*(int *)to = *(const int *)from;
		return;
	case PARAM_BOOL:
		*(bool *)to = *(const bool *)from;
		return;
	case PARAM_TIME:
		*(usec_t *)to = *(const usec_t *)from;
		return;
	}
}

/* ---- formatting ---- */

void param_format_time(usec_t t, char *buf, size_t len)
{
	if (t < 0) {
		snprintf(buf, len, "%" PRId64, t);
		return;
	}
	int64_t sec = t / USEC_PER_SEC, us = t % USEC_PER_SEC;
	if (us == 0) {
		snprintf(buf, len, "%" PRId64, sec);
		return;
	}
	int digits = 6;
	while (us % 10 == 0) {
		us /= 10;
		digits--;
	}
	snprintf(buf, len, "%" PRId64 ".%0*" PRId64, sec, digits, us);
}

static const char *enum_name(const struct param_enum_val *vals, int v)
{
	for (; vals->name; vals++)
		if (vals->value == v)
			return vals->name;
	return "";
}

void param_format_at(const void *base, const struct param_def *p, bool mask_secret, char *buf, size_t len)
{
	const void *f = cfield_at(base, p);
	switch (p->type) {
	case PARAM_STRING: {
		const char *s = *(char *const *)f;
		if (s && *s && p->secret && mask_secret)
			s = "********";
		snprintf(buf, len, "%s", s ? s : "");
		return;
	}
	case PARAM_INT:
		snprintf(buf, len, "%d", *(const int *)f);
		return;
	case PARAM_BOOL:
		snprintf(buf, len, "%d", *(const bool *)f ? 1 : 0);
		return;
	case PARAM_TIME:
		param_format_time(*(const usec_t *)f, buf, len);
		return;
	case PARAM_ENUM:
		snprintf(buf, len, "%s", enum_name(p->enum_vals, *(const int *)f));
		return;
	}
}

void param_format(const struct tb_config *cfg, const struct param_def *p, bool mask_secret, char *buf,
		  size_t len)
{
	param_format_at(cfg, p, mask_secret, buf, len);
}

/* ---- the generated sample and reference ---- */

/* Print text as ";; " comment lines of at most 78 columns, so the sample stays
 * far below the parser's line limit. */
static void print_wrapped_comment(FILE *f, const char *text)
{
	const size_t width = 78 - 3;
	while (*text) {
		size_t n = strlen(text);
		if (n > width) {
			n = width;
			while (n > 0 && text[n] != ' ')
				n--;
			if (n == 0)
				n = strcspn(text, " ");
		}
		fprintf(f, ";; %.*s\n", (int)n, text);
		text += n;
		while (*text == ' ')
			text++;
	}
}

static const char *const sample_header[] = {
	"tokenbouncer configuration: a commented sample, generated by "
	"\"tokenbouncer --print-sample-config\". doc/config-reference.md describes every "
	"parameter.",
	"",
	"Lines are \"name = value\" under [section] headers; leading whitespace is ignored and "
	"lines may be of any length. Lines starting with ; or # are comments, and so is text after "
	"\" ;\" on a line. A setting given twice: the last one wins, with a warning. "
	"\"%include FILE\" reads another file at that point.",
	"",
	"Times are seconds (decimals allowed) or a number with a unit: ms, s, min, h. Booleans "
	"are 1/0, yes/no, on/off or true/false.",
	"",
	"[pgbouncer] is accepted in place of [tokenbouncer], and so is every PgBouncer 1.25 "
	"parameter; those that have no effect here say so below and warn when set. Every "
	"parameter is shown below commented out, with its default value.",
};

static const char *const sample_tail =
	"[databases]\n"
	"\n"
	";; alias = libpq-style key=value pairs; quote a value containing spaces with\n"
	";; single quotes, and write a quote or backslash inside one as \\' or \\\\.\n"
	";; A client asking for a database that is not listed uses the \"*\" entry.\n"
	";orders = host=10.0.0.7 port=5432 dbname=orders user=orders_app pool_size=10\n"
	";legacy = host=legacy.example.com dbname=legacy user=legacy password='an example' pool_mode=session\n"
	";* = host=10.0.0.7\n";

static const char *const sample_users = "\n"
					"[users]\n"
					"\n"
					";; user = pool_mode=... max_user_connections=...\n"
					";reports = pool_mode=session max_user_connections=5\n";

void params_print_sample(FILE *f)
{
	char buf[256];
	for (size_t i = 0; i < sizeof(sample_header) / sizeof(sample_header[0]); i++) {
		if (sample_header[i][0])
			print_wrapped_comment(f, sample_header[i]);
		else
			fputs(";;\n", f);
	}
	fputs("\n[tokenbouncer]\n\n", f);
	for (size_t i = 0; i < param_count; i++) {
		const struct param_def *p = &param_table[i];
		print_wrapped_comment(f, p->doc);
		if (p->ignored) {
			char note[512];
			snprintf(note, sizeof(note), "Accepted without effect: %s.", p->ignored);
			print_wrapped_comment(f, note);
		}
		snprintf(buf, sizeof(buf), "%s", p->default_value ? p->default_value : "");
		if (buf[0])
			fprintf(f, ";%s = %s\n\n", p->name, buf);
		else
			fprintf(f, ";%s =\n\n", p->name);
	}
	fputs(sample_tail, f);
	credential_doc_print_sample_aliases(f);
	fputs(sample_users, f);
	credential_doc_print_sample_sections(f);
}

static const char *const reference_intro =
	"# Configuration reference\n"
	"\n"
	"<!-- Generated by \"tokenbouncer --print-config-reference\" from src/core/params.c; "
	"do not edit by hand. -->\n"
	"\n"
	"tokenbouncer reads one INI file with these sections:\n"
	"\n"
	"- `[tokenbouncer]` (or `[pgbouncer]`, accepted for migration): the parameters below.\n"
	"- `[databases]`: one line per database alias.\n"
	"- `[users]`: optional per-user settings.\n"
	"- `[credential.NAME]`: one per credential that token aliases name (`credential=NAME`).\n"
	"\n"
	"Any other section is an error, and so is an unknown parameter or key. Every parameter of "
	"PgBouncer 1.25 is accepted; those that have no effect in tokenbouncer are marked "
	"\"Accepted without effect\" below, and setting one to anything but its default logs a "
	"warning that says why.\n"
	"\n"
	"## File format\n"
	"\n"
	"- Lines are `name = value` under `[section]` headers. Parameter names are "
	"case-insensitive. Leading whitespace is ignored, as in PgBouncer: an indented line is "
	"an ordinary line.\n"
	"- Lines may be of any length (the file may be up to 16 MiB).\n"
	"- A parameter, a `[databases]` or `[users]` entry, or a key within an entry given twice: "
	"the last one wins, with a warning naming both lines (PgBouncer does the same, "
	"silently).\n"
	"- `%include FILE` reads FILE at that point, as PgBouncer does; a relative name is "
	"relative to the working directory. Includes may nest 16 deep; a file that includes "
	"itself is an error.\n"
	"- Lines starting with `;` or `#` are comments, and so is text after a `;` that "
	"follows whitespace.\n"
	"- Times are seconds, whole or decimal (`0.5`), or a number with a unit: `ms`, `s`, "
	"`min`, `h`.\n"
	"- Booleans are `1`, `0`, `yes`, `no`, `on`, `off`, `true` or `false`.\n"
	"- Parameters marked \"restart\" keep their old value on a reload, with a warning, "
	"until the process restarts; the others take effect on reload.\n"
	"- Secret values are masked in SHOW CONFIG.\n"
	"\n"
	"## [tokenbouncer]\n";

static const char *const reference_databases =
	"\n"
	"## [databases]\n"
	"\n"
	"Each line defines a database alias that clients connect to:\n"
	"\n"
	"```ini\n"
	"[databases]\n"
	"orders = host=10.0.0.7 dbname=orders user=orders_app pool_size=10\n"
	"legacy = host=legacy.example.com dbname=legacy user=legacy password='an example password' pool_mode=session\n"
	"* = host=10.0.0.7\n"
	"```\n"
	"\n"
	"- The value is a libpq-style list of `key=value` pairs separated by whitespace. A "
	"value containing spaces, or an empty value, is written in single quotes; inside them "
	"`\\'` is a quote and `\\\\` a backslash.\n"
	"- A client asking for a database that has no entry uses the `*` entry, if there is "
	"one.\n"
	"- An alias defined again, or a key given twice in one entry, replaces the earlier one "
	"with a warning.\n"
	"\n"
	"| Key | Accepts | Default | Description |\n"
	"|---|---|---|---|\n";

static const char *const reference_peers =
	"\n"
	"## [peers]\n"
	"\n"
	"Processes that share a port (`so_reuseport`) or sit behind one TCP load balancer form a group: "
	"each has its own `peer_id`, and every member lists the group here, keyed by peer id (its own "
	"entry is allowed and ignored). A cancel request whose key another member handed out is "
	"forwarded to that member, at most three hops.\n"
	"\n"
	"```ini\n"
	"[peers]\n"
	"1 = host=/run/tokenbouncer-1\n"
	"2 = host=/run/tokenbouncer-2\n"
	"```\n"
	"\n"
	"| Key | Accepts | Default | Description |\n"
	"|---|---|---|---|\n";

static const char *const reference_users =
	"\n"
	"## [users]\n"
	"\n"
	"Each line gives settings for one client user name, in the same `key=value` form:\n"
	"\n"
	"```ini\n"
	"[users]\n"
	"reports = pool_mode=session max_user_connections=5\n"
	"```\n"
	"\n"
	"| Key | Accepts | Default | Description |\n"
	"|---|---|---|---|\n";

static void print_default_md(FILE *f, const struct param_def *p)
{
	if (!p->default_value)
		fputs("unset", f);
	else if (!p->default_value[0])
		fputs("empty", f);
	else
		fprintf(f, "`%s`", p->default_value);
}

static void print_param_section(FILE *f, const struct param_def *p)
{
	char expect[256];
	describe_expect(p, expect, sizeof(expect));
	fprintf(f, "\n### %s\n\n%s\n\n", p->name, p->doc);
	fprintf(f, "- Accepts: %s\n- Default: ", expect);
	print_default_md(f, p);
	fprintf(f, "\n- Reload: %s\n", p->reloadable ? "yes" : "no, restart needed");
	fprintf(f, "- Secret: %s\n", p->secret ? "yes" : "no");
	if (p->synonym)
		fprintf(f, "- Synonym: `%s`\n", p->synonym);
	if (p->ignored)
		fprintf(f, "- Accepted without effect: %s.\n", p->ignored);
}

static void print_key_rows(FILE *f, const struct param_def *table, size_t count)
{
	char expect[256];
	for (size_t i = 0; i < count; i++) {
		const struct param_def *p = &table[i];
		describe_expect(p, expect, sizeof(expect));
		fprintf(f, "| `%s` | %s | ", p->name, expect);
		print_default_md(f, p);
		fprintf(f, " | %s%s", p->doc, p->secret ? " Treated as a secret." : "");
		if (p->synonym)
			fprintf(f, " Synonym: `%s`.", p->synonym);
		if (p->ignored)
			fprintf(f, " Accepted without effect: %s.", p->ignored);
		fputs(" |\n", f);
	}
}

void params_print_reference(FILE *f)
{
	fputs(reference_intro, f);
	for (size_t i = 0; i < param_count; i++)
		print_param_section(f, &param_table[i]);
	fputs(reference_databases, f);
	print_key_rows(f, param_db_table, param_db_count);
	fputs(reference_users, f);
	print_key_rows(f, param_user_table, param_user_count);
	fputs(reference_peers, f);
	print_key_rows(f, param_peer_table, param_peer_count);
	credential_doc_print_md(f);
}
