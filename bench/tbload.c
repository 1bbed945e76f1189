/* tbload: a small load client for the benchmarks that pgbench cannot run on
 * two cores: thousands of connections at once, each logging in with
 * SCRAM-SHA-256 and then looping "SELECT 1" (or running one query), on one
 * thread with epoll and the raw protocol, so the client's own cost per
 * transaction stays a few microseconds.
 *
 *   tbload -p PORT -U USER -w PASSWORD -d DB[,DB...] -c CLIENTS [-T SECONDS]
 *          [-C CONCURRENT_CONNECTS] [-m loop|storm] [-t TIMEOUT] [-P POOLER_PID]
 *          [-X COMMAND]
 *
 * loop:  log every client in, then every client loops SELECT 1 for -T seconds.
 * storm: every client connects at once (at most -C connects in flight), logs
 *        in and runs one query; reports the time until all have.
 * Prints one JSON object on stdout; with -P, also the CPU time the pooler
 * process used during the login phase and during the query loop, read from
 * /proc around exactly those phases. -X runs a shell command when the query
 * loop starts (perf stat -p PID -- sleep T) and waits for it at the end, so
 * it counts the loop and nothing of the logins. Every loop is bounded by -t
 * seconds.
 *
 * The client caches the SCRAM salted password per (salt, iterations), as a
 * driver that reconnects would: with a fixed salt its PBKDF2 runs once, so
 * what is measured is the pooler.
 *
 * Build: cc -O2 -o tbload bench/tbload.c -lcrypto */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum cstate {
	C_NEW,
	C_CONNECTING,
	C_AUTH,
	C_SASL_FIRST,
	C_SASL_FINAL,
	C_LOGIN_WAIT,
	C_IDLE,
	C_QUERY,
	C_DONE,
	C_FAILED
};

struct conn {
	int fd;
	enum cstate state;
	const char *db;
	unsigned char *in;
	size_t len, cap;
	char nonce[32];
	char *auth_msg;
	unsigned char server_key[32];
	uint64_t tx;
	bool ran_query;
};

struct opts {
	int port, clients, concurrent, timeout, pooler_pid;
	double seconds;
	const char *user, *password, *at_loop;
	char *dbs[256];
	int ndbs;
	bool storm;
};

struct salted {
	char salt[128];
	int iters;
	unsigned char client_key[32], stored_key[32], server_key[32];
};

static struct opts o = { .port = 6432, .clients = 10, .concurrent = 100, .timeout = 120, .seconds = 5 };
static struct salted cache[16];
static int ncache;
static int epfd;
static int in_flight, logged_in, failed, queried;
static uint64_t total_tx;
static char first_error[256];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void fail(struct conn *c, const char *why)
{
	if (c->state == C_FAILED || c->state == C_DONE)
		return;
	if (!first_error[0])
		snprintf(first_error, sizeof(first_error), "%s", why);
	if (c->state == C_CONNECTING || c->state == C_AUTH || c->state == C_SASL_FIRST ||
	    c->state == C_SASL_FINAL || c->state == C_LOGIN_WAIT)
		in_flight--;
	c->state = C_FAILED;
	failed++;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static bool send_all(struct conn *c, const void *buf, size_t n)
{
	ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
	if (r != (ssize_t)n) {
		/* Messages are small and sockets fresh: a short write is a failure here. */
		fail(c, r < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

static bool send_msg(struct conn *c, char type, const void *body, size_t n)
{
	unsigned char buf[512];
	if (n + 5 > sizeof(buf))
		return false;
	buf[0] = (unsigned char)type;
	put32(buf + 1, (uint32_t)n + 4);
	memcpy(buf + 5, body, n);
	return send_all(c, buf, n + 5);
}

static void send_startup(struct conn *c)
{
	unsigned char buf[512];
	size_t n = 8;
	put32(buf + 4, 196608);
	n += (size_t)snprintf((char *)buf + n, sizeof(buf) - n, "user%c%s%cdatabase%c%s%c", 0, o.user, 0, 0,
			      c->db, 0);
	buf[n++] = 0;
	put32(buf, (uint32_t)n);
	if (send_all(c, buf, n))
		c->state = C_AUTH;
}

static void send_query(struct conn *c)
{
	static const char q[] = "SELECT 1";
	if (send_msg(c, 'Q', q, sizeof(q)))
		c->state = C_QUERY;
}

static void hmac256(const unsigned char *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &len);
}

static const struct salted *salted_for(const char *salt_b64, int iters)
{
	for (int i = 0; i < ncache; i++)
		if (cache[i].iters == iters && strcmp(cache[i].salt, salt_b64) == 0)
			return &cache[i];
	struct salted *s = &cache[ncache < 16 ? ncache++ : 15];
	unsigned char salt[96], salted_pw[32];
	int slen = EVP_DecodeBlock(salt, (const unsigned char *)salt_b64, (int)strlen(salt_b64));
	size_t b64len = strlen(salt_b64);
	while (b64len > 0 && salt_b64[b64len - 1] == '=' && slen > 0) {
		slen--; /* EVP_DecodeBlock counts padding as zero bytes */
		b64len--;
	}
	PKCS5_PBKDF2_HMAC(o.password, (int)strlen(o.password), salt, slen, iters, EVP_sha256(), 32, salted_pw);
	snprintf(s->salt, sizeof(s->salt), "%s", salt_b64);
	s->iters = iters;
	hmac256(salted_pw, 32, "Client Key", 10, s->client_key);
	SHA256(s->client_key, 32, s->stored_key);
	hmac256(salted_pw, 32, "Server Key", 10, s->server_key);
	return s;
}

static void sasl_first(struct conn *c)
{
	unsigned char raw[18];
	RAND_bytes(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)c->nonce, raw, sizeof(raw));
	char first[128];
	int flen = snprintf(first, sizeof(first), "n,,n=,r=%s", c->nonce);
	unsigned char body[256];
	size_t n = (size_t)snprintf((char *)body, sizeof(body), "SCRAM-SHA-256") + 1;
	put32(body + n, (uint32_t)flen);
	memcpy(body + n + 4, first, (size_t)flen);
	if (send_msg(c, 'p', body, n + 4 + (size_t)flen))
		c->state = C_SASL_FIRST;
}

static const char *attr(const char *msg, char name, size_t *len)
{
	for (const char *p = msg; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (p[0] == name && p[1] == '=') {
			const char *end = strchr(p, ',');
			*len = end ? (size_t)(end - p - 2) : strlen(p + 2);
			return p + 2;
		}
	}
	return NULL;
}

/* A decimal number from the command line or the server; 0 when it is not one. */
static int int_of(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return end != s && v >= 0 && v <= 1000000000L ? (int)v : 0;
}

static void sasl_continue(struct conn *c, const char *server_first)
{
	size_t rlen, slen, ilen;
	const char *r = attr(server_first, 'r', &rlen), *s = attr(server_first, 's', &slen);
	const char *i = attr(server_first, 'i', &ilen);
	if (!r || !s || !i || slen >= 128 || rlen > 200) {
		fail(c, "bad server-first message");
		return;
	}
	char salt[128];
	memcpy(salt, s, slen);
	salt[slen] = 0;
	const struct salted *k = salted_for(salt, int_of(i));
	char without_proof[256];
	int wlen = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)rlen, r);
	free(c->auth_msg);
	if (asprintf(&c->auth_msg, "n=,r=%s,%s,%s", c->nonce, server_first, without_proof) < 0) {
		fail(c, "out of memory");
		return;
	}
	unsigned char sig[32], proof[32];
	hmac256(k->stored_key, 32, c->auth_msg, strlen(c->auth_msg), sig);
	for (int j = 0; j < 32; j++)
		proof[j] = k->client_key[j] ^ sig[j];
	memcpy(c->server_key, k->server_key, 32);
	char final[400];
	int n = snprintf(final, sizeof(final), "%s,p=", without_proof);
	n += EVP_EncodeBlock((unsigned char *) final + n, proof, 32);
	(void)wlen;
	if (send_msg(c, 'p', final, (size_t)n))
		c->state = C_SASL_FINAL;
}

static void sasl_final(struct conn *c, const char *server_final)
{
	unsigned char sig[32];
	char expect[64] = "v=";
	hmac256(c->server_key, 32, c->auth_msg, strlen(c->auth_msg), sig);
	EVP_EncodeBlock((unsigned char *)expect + 2, sig, 32);
	free(c->auth_msg);
	c->auth_msg = NULL;
	if (strcmp(expect, server_final) != 0)
		fail(c, "bad server signature");
	else
		c->state = C_LOGIN_WAIT;
}

static void on_auth(struct conn *c, const unsigned char *body, size_t n)
{
	if (n < 4) {
		fail(c, "short auth message");
		return;
	}
	uint32_t code = get32(body);
	char text[512];
	size_t tl = n - 4 < sizeof(text) - 1 ? n - 4 : sizeof(text) - 1;
	memcpy(text, body + 4, tl);
	text[tl] = 0;
	if (code == 10)
		sasl_first(c);
	else if (code == 11)
		sasl_continue(c, text);
	else if (code == 12)
		sasl_final(c, text);
	else if (code != 0)
		fail(c, "unsupported authentication request");
}

static bool time_left(double deadline)
{
	return now_s() < deadline;
}

static void on_ready(struct conn *c, double loop_end)
{
	if (c->state == C_LOGIN_WAIT || c->state == C_AUTH) {
		in_flight--;
		logged_in++;
		c->state = C_IDLE;
		if (o.storm)
			send_query(c);
		return;
	}
	if (c->state != C_QUERY)
		return;
	c->tx++;
	total_tx++;
	if (!c->ran_query) {
		c->ran_query = true;
		queried++;
	}
	c->state = C_IDLE;
	if (!o.storm && loop_end > 0 && time_left(loop_end))
		send_query(c);
}

static void on_message(struct conn *c, char type, const unsigned char *body, size_t n, double loop_end)
{
	if (type == 'R')
		on_auth(c, body, n);
	else if (type == 'Z')
		on_ready(c, loop_end);
	else if (type == 'E') {
		char why[200];
		size_t k = 0;
		for (size_t i = 0; i + 1 < n && k < sizeof(why) - 2; i++)
			why[k++] = body[i] ? (char)body[i] : ' ';
		why[k] = 0;
		fail(c, why);
	}
}

static void on_readable(struct conn *c, double loop_end)
{
	for (int rounds = 0; rounds < 64 && c->fd >= 0; rounds++) {
		if (c->cap - c->len < 4096) {
			c->cap = c->cap ? c->cap * 2 : 8192;
			c->in = realloc(c->in, c->cap);
		}
		ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			fail(c, r == 0 ? "connection closed by the pooler" : strerror(errno));
			return;
		}
		if (r < 0)
			break;
		c->len += (size_t)r;
		size_t pos = 0;
		while (c->fd >= 0 && c->len - pos >= 5) {
			uint32_t mlen = get32(c->in + pos + 1);
			if (mlen < 4 || mlen > (1u << 24)) {
				fail(c, "bad message length");
				return;
			}
			if (c->len - pos < (size_t)mlen + 1)
				break;
			on_message(c, (char)c->in[pos], c->in + pos + 5, mlen - 4, loop_end);
			pos += (size_t)mlen + 1;
		}
		if (c->fd < 0)
			return;
		memmove(c->in, c->in + pos, c->len - pos);
		c->len -= pos;
		if ((size_t)r < c->cap - c->len)
			break;
	}
}

static void start_connect(struct conn *c, int idx)
{
	c->db = o.dbs[idx % o.ndbs];
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->state = C_CONNECTING;
		in_flight++;
		fail(c, strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o.port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->state = C_CONNECTING;
	in_flight++;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		fail(c, strerror(errno));
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_event(struct conn *c, uint32_t events, double loop_end)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			fail(c, strerror(err));
			return;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		send_startup(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(c, loop_end);
}

/* Drive the loop until done() or the deadline; connects more while fewer
 * than -C are in flight. */
static void run_until(struct conn *cs, int *next, double deadline, double loop_end, bool (*done)(void))
{
	struct epoll_event evs[512];
	for (long iter = 0; iter < 100000000L && !done() && time_left(deadline); iter++) {
		while (*next < o.clients && in_flight < o.concurrent) {
			start_connect(&cs[*next], *next);
			(*next)++;
		}
		int n = epoll_wait(epfd, evs, 512, 50);
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events, loop_end);
	}
}

static bool all_logged_in(void)
{
	return logged_in + failed >= o.clients;
}

static bool all_queried(void)
{
	return queried + failed >= o.clients;
}

static int busy_clients(const struct conn *cs)
{
	int n = 0;
	for (int i = 0; i < o.clients; i++)
		n += cs[i].state == C_QUERY;
	return n;
}

static bool parse_args(int argc, char **argv)
{
	int opt;
	char *dbs = NULL;
	while ((opt = getopt(argc, argv, "p:U:w:d:c:T:C:m:t:P:X:")) != -1) {
		switch (opt) {
		case 'p':
			o.port = int_of(optarg);
			break;
		case 'U':
			o.user = optarg;
			break;
		case 'w':
			o.password = optarg;
			break;
		case 'd':
			dbs = optarg;
			break;
		case 'c':
			o.clients = int_of(optarg);
			break;
		case 'T':
			o.seconds = atof(optarg);
			break;
		case 'C':
			o.concurrent = int_of(optarg);
			break;
		case 'm':
			o.storm = strcmp(optarg, "storm") == 0;
			break;
		case 't':
			o.timeout = int_of(optarg);
			break;
		case 'P':
			o.pooler_pid = int_of(optarg);
			break;
		case 'X':
			o.at_loop = optarg;
			break;
		default:
			return false;
		}
	}
	for (char *tok = dbs ? strtok(dbs, ",") : NULL; tok && o.ndbs < 256; tok = strtok(NULL, ","))
		o.dbs[o.ndbs++] = tok;
	return o.user && o.password && o.ndbs > 0 && o.clients > 0 && o.clients <= 100000 &&
	       o.concurrent > 0 && o.timeout > 0 && o.timeout <= 3600 && o.seconds >= 0 && o.seconds <= 3600;
}

struct cpu {
	double user, sys;
};

/* utime and stime of the pooler in seconds; -1 when unknown. */
static struct cpu pooler_cpu(void)
{
	struct cpu none = { -1, -1 };
	if (o.pooler_pid <= 0)
		return none;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", o.pooler_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return none;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	/* after ")": state is field 3; utime and stime are fields 14 and 15 */
	if (!p || sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut, &st) != 2)
		return none;
	double tck = (double)sysconf(_SC_CLK_TCK);
	return (struct cpu){ ut / tck, st / tck };
}

static struct cpu cpu_since(struct cpu a)
{
	struct cpu b = pooler_cpu();
	return (struct cpu){ b.user - a.user, b.sys - a.sys };
}

static pid_t spawn(const char *cmd)
{
	if (!cmd)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.clients + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	if (!parse_args(argc, argv)) {
		fprintf(stderr,
			"usage: tbload -p PORT -U USER -w PASSWORD -d DB[,DB...] -c CLIENTS [-T SECONDS] "
			"[-C CONNECTS_IN_FLIGHT] [-m loop|storm] [-t TIMEOUT]\n");
		return 2;
	}
	raise_nofile();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct conn *cs = calloc((size_t)o.clients, sizeof(*cs));
	if (epfd < 0 || !cs)
		return 1;
	int next = 0;
	struct cpu cpu0 = pooler_cpu(), cpu_login, cpu_run = { -1, -1 };
	double t0 = now_s(), deadline = t0 + o.timeout;
	double login_s, run_s = 0;
	if (o.storm) {
		run_until(cs, &next, deadline, 0, all_queried);
		login_s = now_s() - t0;
		cpu_login = cpu_since(cpu0);
	} else {
		run_until(cs, &next, deadline, 0, all_logged_in);
		login_s = now_s() - t0;
		cpu_login = cpu_since(cpu0);
		struct cpu cpu1 = pooler_cpu();
		pid_t helper = spawn(o.at_loop);
		double t1 = now_s(), loop_end = t1 + o.seconds;
		for (int i = 0; i < o.clients; i++)
			if (cs[i].state == C_IDLE)
				send_query(&cs[i]);
		/* Loop until the end, then drain the answers still owed. */
		struct epoll_event evs[512];
		for (long iter = 0; iter < 100000000L && time_left(loop_end + o.timeout); iter++) {
			if (!time_left(loop_end) && busy_clients(cs) == 0)
				break;
			int n = epoll_wait(epfd, evs, 512, 50);
			for (int i = 0; i < n; i++)
				on_event(evs[i].data.ptr, evs[i].events, loop_end);
		}
		run_s = now_s() - t1;
		cpu_run = cpu_since(cpu1);
		if (helper > 0)
			waitpid(helper, NULL, 0);
	}
	printf("{\"clients\": %d, \"logged_in\": %d, \"failed\": %d, \"login_s\": %.3f, \"queried\": %d, "
	       "\"tx\": %llu, \"run_s\": %.3f, \"tps\": %.1f, \"login_user_s\": %.3f, \"login_sys_s\": %.3f, "
	       "\"run_user_s\": %.3f, \"run_sys_s\": %.3f, \"first_error\": \"",
	       o.clients, logged_in, failed, login_s, queried, (unsigned long long)total_tx, run_s,
	       run_s > 0 ? total_tx / run_s : 0.0, cpu_login.user, cpu_login.sys, cpu_run.user, cpu_run.sys);
	for (const char *p = first_error; *p; p++)
		if (*p != '"' && *p != '\\' && (unsigned char)*p >= 32)
			putchar(*p);
	printf("\"}\n");
	static const unsigned char term[5] = { 'X', 0, 0, 0, 4 };
	for (int i = 0; i < o.clients; i++)
		if (cs[i].fd >= 0) {
			send(cs[i].fd, term, 5, MSG_NOSIGNAL);
			close(cs[i].fd);
		}
	return failed ? 1 : 0;
}
