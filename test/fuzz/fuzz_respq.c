/* libFuzzer: the queue of answers a server owes. Input bytes are a script
 * of pushes (what the pooler sent), server message types and releases of
 * synthesized answers. Checked: every request completes exactly once and in
 * send order, only synthesized ones are emitted, and nothing is emitted
 * that an error skipped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool/respq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct track {
	uint64_t pushed, last_done;
	uint64_t emitted_pending; /* id emitted, its done must follow at once */
};

static void on_done(void *ctx, const struct rq_entry *e, enum rq_result r)
{
	struct track *t = ctx;
	if (e->aux != t->last_done + 1)
		abort();
	if (t->emitted_pending && (t->emitted_pending != e->aux || r != RQ_OK))
		abort();
	t->emitted_pending = 0;
	t->last_done = e->aux;
}

static bool on_emit(void *ctx, const struct rq_entry *e)
{
	struct track *t = ctx;
	if (e->action != RQ_SYNTH || t->emitted_pending)
		abort();
	t->emitted_pending = e->aux;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char types[] = "123tTnDCIsZEGHdcNSAVW";
	struct track t = { 0 };
	struct respq q;
	respq_init(&q, on_done, on_emit, &t);
	for (size_t i = 0; i + 1 < size; i += 2) {
		uint8_t op = data[i] % 3, arg = data[i + 1];
		if (op == 0) {
			struct rq_entry e = { .kind = (uint8_t)(arg % RQ_KIND_COUNT),
					      .action = (uint8_t)((arg / RQ_KIND_COUNT) % 5),
					      .aux = ++t.pushed };
			respq_push(&q, &e);
		} else if (op == 1) {
			struct rq_entry ans;
			enum rq_verdict v = respq_server_msg(&q, types[arg % (sizeof(types) - 1)], 'I', &ans);
			if (v == RQV_REPLACE && ans.action != RQ_EMPTY_AS_TAG && ans.action != RQ_RENAME_ERROR)
				abort();
		} else {
			if (!respq_release_synth(&q) || respq_synth_due(&q))
				abort();
		}
		if (q.len > 100000)
			break;
	}
	respq_free(&q);
	if (t.last_done != t.pushed)
		abort();
	return 0;
}
