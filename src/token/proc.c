#include "token/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dynbuf.h"
#include "core/util.h"

extern char **environ;

struct proc_stream {
	int fd;
	struct event *ev;
	struct dynbuf text; /* capped at max_output; stdout is usually a token */
	bool open;
};

struct proc_call {
	pid_t pid;
	struct proc_stream out, err;
	struct event *deadline;
	struct event *reap_ev;
	bool timed_out;
	bool overflow;
	proc_done_cb cb;
	void *arg;
};

static struct event_base *proc_base;

bool proc_init(struct event_base *base)
{
	proc_base = base;
	return true;
}

void proc_shutdown(void)
{
	proc_base = NULL;
}

static void stream_close(struct proc_stream *s)
{
	if (s->ev) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->open = false;
}

static void call_free(struct proc_call *pc)
{
	stream_close(&pc->out);
	stream_close(&pc->err);
	if (pc->deadline)
		event_free(pc->deadline);
	if (pc->reap_ev)
		event_free(pc->reap_ev);
	dynbuf_free(&pc->out.text);
	dynbuf_free(&pc->err.text);
	free(pc);
}

static void finish(struct proc_call *pc, int status, const char *failure)
{
	struct proc_result r = {
		.exit_code = -1,
		.timed_out = pc->timed_out,
		.out = dynbuf_str(&pc->out.text),
		.out_len = pc->out.text.len,
		.err = dynbuf_str(&pc->err.text),
		.err_len = pc->err.text.len,
		.failure = failure,
	};
	if (!failure && WIFEXITED(status))
		r.exit_code = WEXITSTATUS(status);
	if (!failure && pc->overflow)
		r.failure = "helper program output too large";
	else if (!failure && pc->timed_out)
		r.failure = "helper program timed out";
	else if (!failure && !WIFEXITED(status))
		r.failure = "helper program was killed";
	pc->cb(pc->arg, &r);
	call_free(pc);
}

static void try_reap(evutil_socket_t fd, short what, void *arg)
{
	struct proc_call *pc = arg;
	int status = 0;
	pid_t r = waitpid(pc->pid, &status, WNOHANG);
	if (r == pc->pid || (r < 0 && errno == ECHILD)) {
		finish(pc, r == pc->pid ? status : 0, r == pc->pid ? NULL : "helper program vanished");
		return;
	}
	/* Pipes closed but the child has not exited yet: look again shortly. */
	struct timeval tv = { 0, 10000 };
	evtimer_add(pc->reap_ev, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct proc_call *pc = arg;
	pc->timed_out = true;
	kill(-pc->pid, SIGKILL);
	kill(pc->pid, SIGKILL);
	stream_close(&pc->out);
	stream_close(&pc->err);
	try_reap(-1, 0, pc);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct proc_call *pc = arg;
	struct proc_stream *s = fd == pc->out.fd ? &pc->out : &pc->err;
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		bool kept = dynbuf_add(&s->text, chunk, (size_t)n);
		secret_wipe(chunk, (size_t)n);
		if (kept)
			return;
		pc->overflow = true;
		kill(-pc->pid, SIGKILL);
	}
	stream_close(s);
	if (!pc->out.open && !pc->err.open)
		try_reap(-1, 0, pc);
}

static bool open_stream(struct proc_call *pc, struct proc_stream *s, int fd)
{
	s->fd = fd;
	s->open = true;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	s->ev = event_new(proc_base, fd, EV_READ | EV_PERSIST, on_readable, pc);
	return s->ev && event_add(s->ev, NULL) == 0;
}

static bool spawn(struct proc_call *pc, const char *const *argv, int outp[2], int errp[2])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	/* Its own process group, so a timeout kills whatever it started too. */
	posix_spawnattr_setpgroup(&attr, 0);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	sigset_t deflt;
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGPIPE);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setflags(&attr,
				 POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int rc = posix_spawnp(&pc->pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	errno = rc;
	return rc == 0;
}

struct proc_call *proc_start(const char *const *argv, long timeout_ms, size_t max_output, proc_done_cb cb,
			     void *arg)
{
	int outp[2], errp[2];
	if (!proc_base || !argv || !argv[0] || pipe2(outp, O_CLOEXEC) != 0)
		return NULL;
	if (pipe2(errp, O_CLOEXEC) != 0) {
		close(outp[0]);
		close(outp[1]);
		return NULL;
	}
	struct proc_call *pc = xcalloc(1, sizeof(*pc));
	pc->out.fd = pc->err.fd = -1;
	pc->cb = cb;
	pc->arg = arg;
	dynbuf_init(&pc->out.text, max_output ? max_output : (1u << 20), true);
	dynbuf_init(&pc->err.text, pc->out.text.max, true);
	bool ok = spawn(pc, argv, outp, errp);
	int spawn_errno = errno;
	close(outp[1]);
	close(errp[1]);
	if (!ok) {
		close(outp[0]);
		close(errp[0]);
		free(pc);
		errno = spawn_errno;
		return NULL;
	}
	pc->reap_ev = evtimer_new(proc_base, try_reap, pc);
	pc->deadline = evtimer_new(proc_base, on_deadline, pc);
	long ms = timeout_ms > 0 ? timeout_ms : 10000;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(pc->deadline, &tv);
	if (!open_stream(pc, &pc->out, outp[0]) || !open_stream(pc, &pc->err, errp[0])) {
		kill(-pc->pid, SIGKILL);
		waitpid(pc->pid, NULL, 0);
		call_free(pc);
		return NULL;
	}
	return pc;
}

void proc_cancel(struct proc_call *pc)
{
	if (!pc)
		return;
	kill(-pc->pid, SIGKILL);
	kill(pc->pid, SIGKILL);
	/* Reaping a killed child is immediate in practice; not blocking is worth more. */
	waitpid(pc->pid, NULL, WNOHANG);
	call_free(pc);
}
