/* tokenbouncer: start-up and shutdown order, signals, pidfile, exit codes. */
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin-t.h"
#include "admin/admin.h"
#include "admin/check.h"
#include "admin/metrics.h"
#include "admin/stats.h"
#include "config.h"
#include "core/config.h"
#include "core/log.h"
#include "core/runas.h"
#include "core/params.h"
#include "core/params_man.h"
#include "core/service.h"
#include "core/util.h"
#include "core/version.h"
#include "net/dnscache.h"
#include "net/listener.h"
#include "net/resolve.h"
#include "pool/client.h"
#include "pool/console.h"
#include "pool/janitor.h"
#include "pool/pool.h"
#include "pool/runtime.h"
#include "pool/shutdown.h"
#include "token/connector.h"
#include "token/token.h"

struct options {
	const char *token_alias; /* "token ALIAS": print the token and exit */
	const char *token_user;
	bool doctor; /* "check FILE.ini": log in through every alias and report */
	const char *check_alias;
	const char *check_through; /* "check FILE.ini --through HOST:PORT": as a client, with libpq */
	bool check_json;
	int verbose;
	bool quiet;
	bool daemonize;
	bool check_only;
	const char *config_path;
};

static char *pidfile_path;
/* The process's one event loop and everything it changes (pool/worker.h);
 * signal handlers and the command-line paths reach it here, the rest of the
 * pooler through the objects that carry it. */
static struct worker the_worker;
/* The console's state and statistics of that worker (the admin layer's parts). */
static struct admin_state the_console;
static struct stats_ring the_stats;
/* Each is handled on the loop (libevent), never in signal context. */
static const int handled_signals[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2 };
#define NSIGNALS (sizeof(handled_signals) / sizeof(handled_signals[0]))
static struct event *sig_events[NSIGNALS];

static void usage(FILE *f)
{
	fprintf(f,
		"tokenbouncer %s: a PostgreSQL connection pooler for cloud IAM tokens\n\n"
		"Usage: tokenbouncer [OPTIONS] FILE.ini\n"
		"       tokenbouncer token ALIAS [--user USER] FILE.ini\n"
		"       tokenbouncer check FILE.ini [--alias NAME] [--user USER] [--json]\n"
		"       tokenbouncer check FILE.ini --through HOST:PORT [--alias NAME] [--user USER]\n\n"
		"  -d, --daemon                run in the background\n"
		"  -v, --verbose               more log output (repeat for more)\n"
		"  -q, --quiet                 log only warnings and errors\n"
		"      --check                 validate FILE.ini and its auth files, then exit\n"
		"      --print-sample-config   print the commented sample configuration\n"
		"      --print-config-reference  print the parameter reference (Markdown)\n"
		"      --print-man PAGE        print man page tokenbouncer.1 or tokenbouncer.ini.5\n"
		"      --user USER             with token or check: the database user, when the alias has none\n"
		"      --alias NAME            with check: only this alias\n"
		"      --json                  with check: the report as JSON\n"
		"      --through HOST:PORT     with check: log in through a running pooler as a client (libpq)\n"
		"  -V, --version               print the version\n"
		"  -h, --help                  this help\n\n"
		"Signals (as PgBouncer 1.23+): SIGHUP reloads; SIGTERM stops once every client has left\n"
		"(SHUTDOWN WAIT_FOR_CLIENTS); SIGINT stops once transactions in flight are done\n"
		"(SHUTDOWN WAIT_FOR_SERVERS); a second SIGTERM or SIGINT, or SIGQUIT, stops now;\n"
		"SIGUSR1 pauses (PAUSE), SIGUSR2 resumes (RESUME).\n",
		PACKAGE_VERSION);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_CHECK = 256,
		OPT_SAMPLE,
		OPT_REFERENCE,
		OPT_USER,
		OPT_ALIAS,
		OPT_JSON,
		OPT_MAN,
		OPT_THROUGH
	};
	if (argc >= 2 && strcmp(argv[1], "check") == 0) {
		o->doctor = true;
		argv[1] = argv[0];
		argc -= 1;
		argv += 1;
	} else if (argc >= 3 && strcmp(argv[1], "token") == 0) {
		o->token_alias = argv[2];
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	}
	static const struct option longopts[] = {
		{ "daemon", no_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "print-sample-config", no_argument, NULL, OPT_SAMPLE },
		{ "print-config-reference", no_argument, NULL, OPT_REFERENCE },
		{ "print-man", required_argument, NULL, OPT_MAN },
		{ "user", required_argument, NULL, OPT_USER },
		{ "alias", required_argument, NULL, OPT_ALIAS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "through", required_argument, NULL, OPT_THROUGH },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "dvqVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o->daemonize = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_CHECK:
			o->check_only = true;
			break;
		case OPT_USER:
			o->token_user = optarg;
			break;
		case OPT_ALIAS:
			o->check_alias = optarg;
			break;
		case OPT_JSON:
			o->check_json = true;
			break;
		case OPT_THROUGH:
			o->check_through = optarg;
			break;
		case OPT_SAMPLE:
			params_print_sample(stdout);
			exit(0);
		case OPT_REFERENCE:
			params_print_reference(stdout);
			exit(0);
		case OPT_MAN:
			if (!params_print_man(stdout, optarg)) {
				fprintf(stderr, "--print-man: tokenbouncer.1 or tokenbouncer.ini.5\n");
				return -1;
			}
			exit(0);
		case 'V':
			printf("%s\n", TB_VERSION_STRING);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	o->config_path = argv[optind];
	return 0;
}

/* Write to a temporary name, then rename: nobody ever reads half a pidfile. */
static bool write_pidfile(const char *path, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	bool ok = f && fprintf(f, "%d\n", (int)getpid()) > 0;
	if (f && fclose(f) != 0)
		ok = false;
	if (ok && rename(tmp, path) != 0)
		ok = false;
	if (!ok) {
		snprintf(err, errlen, "cannot write pidfile %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return ok;
}

static void remove_pidfile(void)
{
	if (pidfile_path) {
		unlink(pidfile_path);
		free(pidfile_path);
		pidfile_path = NULL;
	}
}

static void do_reload(void)
{
	struct worker *w = &the_worker;
	char err[512];
	service_reloading();
	if (!runtime_reload(w, err, sizeof(err)))
		log_error("reload failed, keeping the running configuration: %s", err);
	service_ready();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = &the_worker;
	switch (sig) {
	case SIGHUP:
		do_reload();
		break;
	case SIGINT:
		service_stopping();
		shutdown_on_signal(w, SHUTDOWN_WAIT_FOR_SERVERS, "SIGINT");
		break;
	case SIGTERM:
		service_stopping();
		shutdown_on_signal(w, SHUTDOWN_WAIT_FOR_CLIENTS, "SIGTERM");
		break;
	case SIGQUIT:
		service_stopping();
		shutdown_on_signal(w, SHUTDOWN_IMMEDIATE, "SIGQUIT");
		break;
	case SIGUSR1:
		control_signal_pause(w);
		break;
	case SIGUSR2:
		control_signal_resume(w);
		break;
	default:
		break;
	}
}

static void on_accept(int fd, const struct sockaddr *addr, socklen_t addrlen, bool is_unix)
{
	struct worker *w = &the_worker;
	client_accept(w, fd, addr, addrlen, is_unix);
}

static bool daemonize(char *err, size_t errlen)
{
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork failed: %s", strerror(errno));
		return false;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return true;
}

/* The epoll changelist folds the event_del + event_add of an interest change
 * (sock_update) into one epoll_ctl at the end of the loop pass instead of
 * two at once. It is unsafe only with dup()ed descriptors, which the pooler
 * never registers. */
/* The console lives in admin/, above the pool: the pool reaches it through
 * these registrations only. */
static bool register_console(void)
{
	struct worker *w = &the_worker;
	console_register(&admin_console);
	return janitor_hook_add(w, admin_tick);
}

static struct event_base *make_base(void)
{
	struct event_config *ec = event_config_new();
	if (!ec)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

static void setup_signals(struct event_base *base)
{
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < NSIGNALS; i++) {
		sig_events[i] = evsignal_new(base, handled_signals[i], on_signal, NULL);
		event_add(sig_events[i], NULL);
	}
}

static void teardown(struct event_base *base, struct evdns_base *dns)
{
	struct worker *w = &the_worker;
	janitor_stop(w);
	metrics_stop();
	listeners_close();
	runtime_shutdown(w);
	dnscache_clear();
	for (size_t i = 0; i < NSIGNALS; i++) {
		if (sig_events[i])
			event_free(sig_events[i]);
		sig_events[i] = NULL;
	}
	token_engine_shutdown();
	evdns_base_free(dns, 0);
	event_base_free(base);
	remove_pidfile();
	log_set_file(NULL, NULL, 0);
}

struct token_cmd {
	struct event_base *base;
	bool done;
	char *token;
	int64_t expires_at;
	char err[512];
};

static void on_cmd_token(void *arg, const char *token, size_t len, int64_t expires_at, uint64_t gen,
			 const char *err)
{
	struct token_cmd *tc = arg;
	tc->done = true;
	if (err)
		snprintf(tc->err, sizeof(tc->err), "%s", err);
	else {
		tc->token = xstrndup(token, len);
		tc->expires_at = expires_at;
	}
	event_base_loopbreak(tc->base);
}

static void on_cmd_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct token_cmd *tc = arg;
	snprintf(tc->err, sizeof(tc->err), "timed out waiting for the token");
	event_base_loopbreak(tc->base);
}

static void print_expiry(const char *what, int64_t at, const char *user)
{
	time_t exp = (time_t)at;
	struct tm tm;
	char when[64];
	gmtime_r(&exp, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s (in %lld s); user %s\n", what, when,
		(long long)(at - time_wall_usec() / USEC_PER_SEC), user);
}

/* Connector aliases: the ephemeral certificate too (its subject and expiry). */
static void print_certificate(struct connector_bundle *b)
{
	if (!b)
		return;
	time_t exp = (time_t)b->cert_expires;
	struct tm tm;
	char when[64];
	gmtime_r(&exp, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "certificate %s, certificate expires %s; dials %s:%d\n", b->subject, when,
		b->dial_host, b->port);
	connector_bundle_unref(b);
}

/* Runs the loop until the entry answers or the command's deadline passes. */
static bool cmd_fetch(struct event_base *base, struct token_entry *entry, struct token_cmd *tc)
{
	memset(tc, 0, sizeof(*tc));
	tc->base = base;
	struct event *timeout = evtimer_new(base, on_cmd_timeout, tc);
	struct timeval tv = { (time_t)(the_worker.cfg->token_fetch_timeout / USEC_PER_SEC) * 3 + 5, 0 };
	evtimer_add(timeout, &tv);
	struct token_wait *w = token_request(entry, on_cmd_token, tc);
	if (!tc->done)
		runtime_loop(base);
	/* cppcheck-suppress duplicateCondition ; on_cmd_token, run by the loop, sets tc->done */
	if (!tc->done)
		token_wait_cancel(w);
	event_free(timeout);
	return tc->token != NULL;
}

/* "tokenbouncer token ALIAS": what the pooler would send as the password,
 * for operators checking an alias by hand (as aws rds generate-db-auth-token). */
static int print_token(const struct options *o, struct event_base *base)
{
	struct worker *w = &the_worker;
	struct database *db = runtime_find_database(w, o->token_alias);
	if (!db || db->cfg->auth == UPSTREAM_AUTH_PASSWORD) {
		fprintf(stderr, "alias \"%s\" %s\n", o->token_alias,
			db ? "does not use a token (auth=password)" : "is not in [databases]");
		return 1;
	}
	const char *user = db->cfg->user      ? db->cfg->user
			   : db->default_user ? db->default_user
					      : o->token_user;
	if (!user) {
		fprintf(stderr, "alias \"%s\" has no user=: give one with --user\n", o->token_alias);
		return 1;
	}
	struct token_target t;
	pool_token_target(db, user, &t);
	struct token_cmd tc, login = { 0 };
	struct token_entry *entry = token_entry_for(&t);
	/* A login token kept apart from the certificate (AlloyDB) is the one sent. */
	bool ok = cmd_fetch(base, entry, &tc) &&
		  (!token_entry_login(entry) || cmd_fetch(base, token_entry_login(entry), &login));
	if (!ok) {
		fprintf(stderr, "could not obtain a token for alias \"%s\": %s\n", o->token_alias,
			tc.token ? login.err : tc.err);
		secret_free(tc.token);
		return 1;
	}
	const char *shown = login.token ? login.token : tc.token;
	if (*shown)
		printf("%s\n", shown);
	print_expiry(*shown ? "expires" : "connector material expires",
		     login.token ? login.expires_at : tc.expires_at, user);
	print_certificate(token_entry_bundle(entry));
	secret_free(tc.token);
	secret_free(login.token);
	return 0;
}

static int check_config(struct tb_config *cfg)
{
	struct worker *w = &the_worker;
	char err[512];
	if (!runtime_apply_config(w, cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		config_free(cfg);
		return 1;
	}
	runtime_shutdown(w);
	return 0;
}

int main(int argc, char **argv)
{
	struct worker *w = &the_worker;
	struct options o = { 0 };
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	char err[512];
	struct tb_config *cfg = config_load(o.config_path, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if ((o.token_alias || o.doctor) && o.verbose == 0)
		o.quiet = true; /* keep stderr for the expiry line; the doctor's report is on stdout */
	/* The doctor reports on stdout; the pooler's own log lines only with -v, and never into logfile. */
	log_setup(cfg->verbose + o.verbose, o.quiet, !o.daemonize && !(o.doctor && o.verbose == 0));
	for (size_t i = 0; i < cfg->nwarnings; i++) {
		if (o.doctor && o.verbose == 0)
			fprintf(stderr, "warning: %s\n", cfg->warnings[i]);
		else
			log_warning("%s", cfg->warnings[i]);
	}
	if (o.check_only) {
		struct event_base *base = event_base_new();
		runtime_init(w, base, NULL);
		admin_attach(w, &the_console, &the_stats);
		token_engine_init(base, err, sizeof(err));
		int rc = check_config(cfg);
		token_engine_shutdown();
		event_base_free(base);
		if (rc == 0)
			printf("%s: configuration is valid\n", o.config_path);
		return rc;
	}
	if (!o.doctor &&
	    (!log_set_file(cfg->logfile, err, sizeof(err)) ||
	     !log_set_syslog(cfg->syslog, cfg->syslog_ident, cfg->syslog_facility, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (o.daemonize && !o.token_alias && !o.doctor && !daemonize(err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct event_base *base = make_base();
	if (!base) {
		log_fatal("cannot initialise the event loop");
		return 1;
	}
	struct evdns_base *dns = resolve_base_new(base, cfg->resolv_conf, err, sizeof(err));
	if (!dns) {
		log_fatal("%s", err);
		return 1;
	}
	runtime_init(w, base, dns);
	admin_attach(w, &the_console, &the_stats);
	if (!register_console()) {
		log_fatal("cannot register the console with the janitor");
		return 1;
	}
	if (!token_engine_init(base, err, sizeof(err))) {
		log_fatal("%s", err);
		return 1;
	}
	if (!runtime_apply_config(w, cfg, err, sizeof(err))) {
		log_fatal("%s", err);
		config_free(cfg);
		teardown(base, dns);
		return 1;
	}
	if (o.token_alias) {
		int rc = print_token(&o, base);
		teardown(base, dns);
		return rc;
	}
	if (o.doctor) {
		struct check_options co = { .alias = o.check_alias,
					    .user = o.token_user,
					    .json = o.check_json,
					    .through = o.check_through };
		int rc = co.through ? check_through_run(w, base, &co, stdout)
				    : check_run(w, base, &co, stdout);
		teardown(base, dns);
		return rc;
	}
	/* Every port is bound before the client port is: a pooler that cannot serve its
	 * metrics or probes fails before a client can connect to it. */
	if (config_str_set(the_worker.cfg->metrics_listen) &&
	    !metrics_start(&the_worker, the_worker.cfg->metrics_listen, err, sizeof(err))) {
		log_fatal("%s", err);
		teardown(base, dns);
		return 1;
	}
	if (!listeners_open(base, the_worker.cfg, on_accept, err, sizeof(err))) {
		log_fatal("%s", err);
		teardown(base, dns);
		return 1;
	}
	if (the_worker.cfg->pidfile && *the_worker.cfg->pidfile) {
		if (!write_pidfile(the_worker.cfg->pidfile, err, sizeof(err))) {
			log_fatal("%s", err);
			teardown(base, dns);
			return 1;
		}
		pidfile_path = xstrdup(the_worker.cfg->pidfile);
	}
	if (config_str_set(the_worker.cfg->user) && !runas_switch(the_worker.cfg->user, err, sizeof(err))) {
		log_fatal("%s", err);
		teardown(base, dns);
		return 1;
	}
	setup_signals(base);
	janitor_start(&the_worker);
	log_info("tokenbouncer %s listening on %s port %d%s%s", PACKAGE_VERSION,
		 the_worker.cfg->listen_addr && *the_worker.cfg->listen_addr ? the_worker.cfg->listen_addr
									     : "(no TCP)",
		 the_worker.cfg->listen_port,
		 the_worker.cfg->unix_socket_dir && *the_worker.cfg->unix_socket_dir ? " and in " : "",
		 the_worker.cfg->unix_socket_dir ? the_worker.cfg->unix_socket_dir : "");
	service_ready();
	runtime_loop(base);
	teardown(base, dns);
	log_info("stopped");
	return 0;
}
