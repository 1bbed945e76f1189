/* Configuration types. A struct tb_config is built whole from a file, validated,
 * then swapped in; nothing points into a config that has been replaced except
 * through the runtime objects that copy what they need. */
#ifndef TB_CORE_CONFIG_T_H
#define TB_CORE_CONFIG_T_H
#include <stdbool.h>
#include <stddef.h>

#include "core/strmap.h"
#include "core/util.h"

enum pool_mode {
	POOL_MODE_UNSET = -1,
	POOL_MODE_SESSION = 0,
	POOL_MODE_TRANSACTION,
	POOL_MODE_STATEMENT,
};

/* [databases] target_session_attrs, as libpq's. */
enum target_session_attrs {
	TSA_MODE_ANY = 0,
	TSA_MODE_READ_WRITE,
	TSA_MODE_READ_ONLY,
	TSA_MODE_PRIMARY,
	TSA_MODE_STANDBY,
	TSA_MODE_PREFER_STANDBY,
};

enum load_balance {
	LOAD_BALANCE_ROUND_ROBIN = 0,
	LOAD_BALANCE_DISABLE,
};

enum auth_type {
	AUTH_TYPE_TRUST = 0,
	AUTH_TYPE_PLAIN,
	AUTH_TYPE_MD5,
	AUTH_TYPE_SCRAM,
	AUTH_TYPE_HBA,
};

/* Same names as libpq's sslmode. */
enum tls_mode {
	TLS_MODE_DISABLE = 0,
	TLS_MODE_ALLOW,
	TLS_MODE_PREFER,
	TLS_MODE_REQUIRE,
	TLS_MODE_VERIFY_CA,
	TLS_MODE_VERIFY_FULL,
};

/* Which address of a Cloud SQL / AlloyDB instance a connector alias dials. */
enum connector_ip_type {
	CONNECTOR_IP_PUBLIC = 0,
	CONNECTOR_IP_PRIVATE,
	CONNECTOR_IP_PSC,
};

/* How the pooler logs in upstream for an alias. Token kinds arrive with the
 * token engine; the parser already knows their names so it can say so. */
enum upstream_auth {
	UPSTREAM_AUTH_PASSWORD = 0,
	UPSTREAM_AUTH_ENTRA,    /* Microsoft Entra ID access token */
	UPSTREAM_AUTH_AWS_RDS,  /* SigV4 presigned rds-db:connect token */
	UPSTREAM_AUTH_AWS_DSQL, /* SigV4 presigned dsql DbConnect[Admin] token */
	UPSTREAM_AUTH_CLOUDSQL, /* Google OAuth access token for Cloud SQL (sqlservice.login) */
	UPSTREAM_AUTH_ALLOYDB,  /* Google OAuth access token for AlloyDB (alloydb.login) */
};

/* One key of a [credential.NAME] section, kept as written. */
struct credential_kv {
	char *key;
	char *value; /* may be a secret: wiped on free */
	int line;
};

struct credential_cfg {
	char *name;
	char *type; /* the section's "type" key */
	struct credential_kv *kv;
	size_t nkv;
	const char *file; /* where the section is, for messages (owned by the config) */
	int line;
};

/* One [databases] entry. Integers are -1 when unset (then the global applies);
 * strings are NULL when unset. */
struct db_alias {
	char *name; /* alias; "*" is the fallback entry */
	char *host; /* hostname, IP, a directory for a Unix socket, or a host list; NULL: unix_socket default */
	int port;   /* default 5432 */
	char *dbname;   /* upstream database; NULL: same as the name the client asked for */
	char *user;     /* forced upstream user; NULL: the client's user */
	char *password; /* secret; NULL: from auth_file for the user */
	int pool_size;
	int min_pool_size;
	int reserve_pool;
	enum pool_mode pool_mode;
	int max_db_connections;
	int max_db_client_connections;
	usec_t query_wait_timeout; /* -1: not set */
	char *auth_user;
	char *auth_query;
	char *auth_dbname;
	int load_balance_hosts;   /* enum load_balance; -1: round-robin */
	int target_session_attrs; /* enum target_session_attrs; -1: any */
	usec_t server_lifetime;   /* -1 unset */
	bool lifetime_from_token; /* server_lifetime = token: retire before the login token expires */
	bool user_from_token;     /* Entra: the upstream user is derived from the token's claims */
	char *connect_query;
	char *application_name;
	char *client_encoding;
	char *datestyle;
	char *timezone;
	enum upstream_auth auth;
	char *credential;            /* name of a [credential.NAME] section; NULL for password auth */
	char *region;                /* AWS region when the host name does not tell it */
	char *scope;                 /* token audience/scope override (sovereign clouds) */
	usec_t token_duration;       /* requested token lifetime (DSQL); -1 unset */
	char *instance;              /* Cloud SQL / AlloyDB connector mode: the instance's name */
	int ip_type;                 /* enum connector_ip_type; -1: the method's default */
	bool enable_iam_auth;        /* connector mode: automatic IAM database login */
	char *sqladmin_api_endpoint; /* NULL: the global one */
	char *alloydb_api_endpoint;  /* NULL: the global one */
	int sslmode;                 /* enum tls_mode for this alias; -1: server_tls_sslmode */
	const char *file;            /* file of the entry, for messages (owned by the config) */
	int line;                    /* line in that file */
};

/* One [users] entry. */
struct user_cfg {
	char *name;
	enum pool_mode pool_mode; /* POOL_MODE_UNSET: not set */
	int max_user_connections; /* -1: not set */
	int max_user_client_connections;
	int pool_size; /* -1: not set; wins over the database's */
	int reserve_pool_size;
	usec_t query_timeout;
	usec_t query_wait_timeout;
	usec_t idle_transaction_timeout;
	usec_t transaction_timeout;
	usec_t client_idle_timeout;
	const char *file; /* owned by the config */
	int line;
};

/* One [peers] entry: another tokenbouncer process of the same group, to
 * which cancel requests carrying its peer_id are forwarded. */
struct peer_cfg {
	int id;           /* the entry's key, 1..16383 */
	char *host;       /* IP address, host name, or a directory holding its Unix socket */
	int port;         /* default 6432 */
	int pool_size;    /* cancels in flight to it at once; -1: default_pool_size */
	const char *file; /* owned by the config */
	int line;
};

/* config_clone (config.c) copies this whole: a new pointer field outside the
 * parameter tables needs its own line there. */
struct tb_config {
	char *path; /* the file this was read from */

	/* [tokenbouncer] / [pgbouncer]: fields named as the parameters */
	char *listen_addr;
	int listen_port;
	char *unix_socket_dir;
	bool so_reuseport;
	int peer_id; /* 0: not peered */
	enum auth_type auth_type;
	char *auth_file;
	char *auth_hba_file;
	char *admin_users;
	char *stats_users;
	enum pool_mode pool_mode;
	int max_client_conn;
	int default_pool_size;
	int min_pool_size;
	int reserve_pool_size;
	usec_t reserve_pool_timeout;
	int max_db_connections;
	int max_user_connections;
	usec_t server_lifetime;
	usec_t server_idle_timeout;
	usec_t server_connect_timeout;
	usec_t server_login_retry;
	char *server_reset_query;
	bool server_reset_query_always; /* run the reset query in transaction mode too */
	char *server_check_query;
	usec_t server_check_delay;
	usec_t client_login_timeout;
	usec_t client_idle_timeout;
	usec_t query_wait_timeout;
	usec_t query_timeout;
	usec_t idle_transaction_timeout;
	char *ignore_startup_parameters;
	enum tls_mode client_tls_sslmode;
	char *client_tls_key_file;
	char *client_tls_cert_file;
	char *client_tls_ca_file;
	char *client_tls_protocols;
	char *client_tls_ciphers;
	enum tls_mode server_tls_sslmode;
	char *server_tls_ca_file;
	char *server_tls_key_file;
	char *server_tls_cert_file;
	char *server_tls_protocols;
	int max_packet_size;
	int max_prepared_statements; /* per server connection; 0 = off */
	int pkt_buf;
	char *logfile;
	bool log_connections;
	bool log_disconnections;
	int verbose;
	char *pidfile;
	bool tcp_keepalive;
	bool auth_plain_without_tls; /* allow cleartext client passwords without TLS */
	usec_t stats_period;         /* window of the SHOW STATS averages */
	char *metrics_listen;        /* host:port of the Prometheus endpoint; NULL: off */
	char *token_ca_file;         /* extra CA bundle for identity endpoints */
	char *sqladmin_api_endpoint; /* Cloud SQL Admin API base URL */
	char *alloydb_api_endpoint;  /* AlloyDB Admin API base URL */
	usec_t token_fetch_timeout;  /* one HTTP request or helper program */

	/* PgBouncer 1.25 parameters (some accepted but without effect: see
	 * the "ignored" note of their row in src/core/params.c) */
	char *unix_socket_mode;
	char *unix_socket_group;
	char *user;
	char *auth_ident_file;
	char *auth_user;
	char *auth_query;
	char *auth_dbname;
	char *auth_ldap_options;
	int scram_iterations;
	int max_db_client_connections;
	int max_user_client_connections;
	bool server_round_robin;
	char *track_extra_parameters;
	bool disable_pqexec;
	bool application_name_add_host;
	char *conffile;
	bool server_fast_close;
	usec_t autodb_idle_timeout;
	usec_t pool_idle_timeout;
	usec_t dns_max_ttl;
	usec_t dns_nxdomain_ttl;
	usec_t dns_zone_check_period;
	char *resolv_conf;
	usec_t query_wait_notify;
	char *login_notify_message;
	usec_t transaction_timeout;
	usec_t cancel_wait_timeout;
	usec_t suspend_timeout;
	char *client_tls13_ciphers;
	char *client_tls_ecdhcurve;
	char *client_tls_dheparams;
	char *server_tls_ciphers;
	char *server_tls13_ciphers;
	int listen_backlog;
	int sbuf_loopcnt;
	bool tcp_defer_accept;
	int tcp_socket_buffer;
	bool log_pooler_errors;
	bool log_stats;
	bool syslog;
	char *syslog_ident;
	char *syslog_facility;
	int tcp_keepcnt;
	int tcp_keepidle;
	int tcp_keepintvl;
	int tcp_user_timeout;
	char *service_name;

	struct db_alias *dbs;
	size_t ndbs;
	struct user_cfg *users;
	size_t nusers;
	struct peer_cfg *peers; /* [peers] */
	size_t npeers;
	struct credential_cfg *creds;
	size_t ncreds;

	/* Set by the parser: every file read (the main file and those it
	 * %includes), and warnings ("file:line: text") for the caller to log. */
	char **files;
	size_t nfiles;
	char **warnings;
	size_t nwarnings;

	/* Look-up indexes over dbs and users, built once parsing succeeded. */
	bool indexed;
	struct strmap db_index;
	struct strmap user_index;
	const struct db_alias *db_fallback; /* the "*" entry, or NULL */
};
#endif
