/* Running a helper program (Azure CLI, AWS credential_process) without
 * blocking the loop: argv without a shell, stdout and stderr captured with a
 * cap, a timeout after which the process group is killed. */
#ifndef TB_TOKEN_PROC_H
#define TB_TOKEN_PROC_H
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct proc_result {
	int exit_code; /* -1 when killed or failed to start */
	bool timed_out;
	const char *out; /* NUL-terminated, valid during the callback */
	size_t out_len;
	const char *err;
	size_t err_len;
	const char *failure; /* why it could not run, or NULL */
};

typedef void (*proc_done_cb)(void *arg, const struct proc_result *res);
struct proc_call;

bool proc_init(struct event_base *base);
void proc_shutdown(void);
/* argv[0] is looked up on PATH. cb runs later from the loop. */
struct proc_call *proc_start(const char *const *argv, long timeout_ms, size_t max_output, proc_done_cb cb,
			     void *arg);
void proc_cancel(struct proc_call *call);
#endif
