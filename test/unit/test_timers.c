/* Unit tests for the deadline wheel (pool/deadline.c) and the cancel-key
 * index (pool/cancel_index.c): what fires when, re-arming and disarming from
 * callbacks, deadlines further away than a lap, and look-ups after many
 * additions and deletions. */
#include <stdint.h>
#include <stdlib.h>

#include "pool/cancel_index.h"
#include "pool/deadline.h"
#include "pool/pool-t.h"
#include "unit.h"

#define SLOT DEADLINE_SLOT_USEC

struct item {
	struct deadline d;
	int fired;
	usec_t fired_at;
	usec_t rearm_to;           /* re-arm from the callback, once */
	struct item *disarm_other; /* disarm this one from the callback */
};

static void on_fire(struct deadline_wheel *w, struct deadline *d, usec_t now)
{
	struct item *it = list_entry(d, struct item, d);
	it->fired++;
	it->fired_at = now;
	if (it->rearm_to) {
		usec_t to = it->rearm_to;
		it->rearm_to = 0;
		deadline_arm(w, d, to);
	}
	if (it->disarm_other)
		deadline_disarm(w, &it->disarm_other->d);
}

static void test_wheel_basic(void)
{
	struct deadline_wheel w;
	usec_t t0 = 1000 * SLOT;
	deadline_wheel_init(&w, on_fire, t0);
	struct item a = { 0 }, b = { 0 }, c = { 0 };
	deadline_init(&a.d);
	deadline_init(&b.d);
	deadline_init(&c.d);
	deadline_arm(&w, &a.d, t0 + SLOT / 2);
	deadline_arm(&w, &b.d, t0 + 3 * SLOT);
	deadline_arm(&w, &c.d, t0 - 5); /* already due: the next run */
	CHECK(w.armed == 3 && deadline_armed(&a.d));
	deadline_run(&w, t0 + SLOT / 4); /* same slot as t0: nothing is run */
	CHECK(a.fired == 0 && c.fired == 0);
	deadline_run(&w, t0 + SLOT);
	CHECK(a.fired == 1 && c.fired == 1 && b.fired == 0 && !deadline_armed(&a.d));
	/* Moving an armed deadline: it fires at its new time only. */
	deadline_arm(&w, &b.d, t0 + 6 * SLOT);
	CHECK(w.armed == 1);
	deadline_run(&w, t0 + 4 * SLOT);
	CHECK(b.fired == 0);
	deadline_run(&w, t0 + 6 * SLOT + 1);
	CHECK(b.fired == 1 && w.armed == 0);
	/* Disarmed: never fires. */
	deadline_arm(&w, &a.d, t0 + 8 * SLOT);
	deadline_disarm(&w, &a.d);
	deadline_disarm(&w, &a.d);
	CHECK(w.armed == 0 && !deadline_armed(&a.d));
	deadline_run(&w, t0 + 10 * SLOT);
	CHECK(a.fired == 1);
}

static void test_wheel_laps_and_callbacks(void)
{
	struct deadline_wheel w;
	usec_t t0 = 77 * SLOT + 123;
	deadline_wheel_init(&w, on_fire, t0);
	/* Further away than one lap: stays until its own time. */
	struct item far = { 0 }, self = { 0 }, killer = { 0 }, victim = { 0 };
	deadline_init(&far.d);
	deadline_init(&self.d);
	deadline_init(&killer.d);
	deadline_init(&victim.d);
	usec_t far_at = t0 + (DEADLINE_SLOTS + 10) * SLOT;
	deadline_arm(&w, &far.d, far_at);
	for (usec_t now = t0; now < far_at - SLOT; now += SLOT)
		deadline_run(&w, now);
	CHECK(far.fired == 0 && deadline_armed(&far.d));
	deadline_run(&w, far_at + SLOT);
	CHECK(far.fired == 1 && far.fired_at >= far_at);
	/* A callback re-arms itself, and one disarms a deadline due in the same pass. */
	usec_t t1 = far_at + 2 * SLOT;
	/* cppcheck-suppress unreadVariable ; read by the callback through the deadline */
	self.rearm_to = t1 + 5 * SLOT;
	deadline_arm(&w, &self.d, t1);
	/* cppcheck-suppress unreadVariable ; read by the callback through the deadline */
	killer.disarm_other = &victim;
	deadline_arm(&w, &killer.d, t1);
	deadline_arm(&w, &victim.d, t1);
	deadline_run(&w, t1 + SLOT);
	CHECK(self.fired == 1 && deadline_armed(&self.d));
	CHECK(killer.fired == 1 && victim.fired == 0 && !deadline_armed(&victim.d));
	CHECK(w.armed == 1);
	/* A stall of several laps: everything due fires once. */
	deadline_run(&w, t1 + 3 * DEADLINE_SLOTS * SLOT);
	CHECK(self.fired == 2 && w.armed == 0);
}

static void test_wheel_many(void)
{
	enum {
		N = 5000
	};
	struct deadline_wheel w;
	deadline_wheel_init(&w, on_fire, 0);
	struct item *items = calloc(N, sizeof(*items));
	for (int i = 0; i < N; i++) {
		deadline_init(&items[i].d);
		deadline_arm(&w, &items[i].d, (usec_t)(i % 97) * SLOT / 3 + SLOT);
	}
	CHECK(w.armed == N);
	int early = 0;
	for (usec_t now = 0; now <= 40 * SLOT; now += SLOT / 2) {
		deadline_run(&w, now);
		for (int i = 0; i < N; i++)
			if (items[i].fired && items[i].fired_at < items[i].d.at)
				early++;
	}
	int once = 0;
	for (int i = 0; i < N; i++)
		once += items[i].fired == 1;
	CHECK(early == 0 && once == N && w.armed == 0);
	free(items);
}

static void test_cancel_index(void)
{
	enum {
		N = 3000
	};
	struct cancel_index ix = { 0 };
	struct client *cl = calloc(N, sizeof(*cl));
	struct unit_loop each = UNIT_LOOP;
	for (int i = 0; i < N; i++) {
		/* Peer-stamped keys share their high bits. */
		cl[i].cancel_pid = 0xa0030000u | (uint32_t)(i & 0xffff);
		cl[i].cancel_key = (uint32_t)i * 2654435761u;
		CHECK_EACH(each, cancel_index_add(&ix, &cl[i]));
	}
	CHECK_LOOP_END(each);
	CHECK(ix.count == N);
	struct client dup = cl[7];
	CHECK(!cancel_index_add(&ix, &dup));
	CHECK(cancel_index_add(&ix, &cl[7])); /* already there, itself */
	CHECK(ix.count == N);
	for (int i = 0; i < N; i += 2)
		cancel_index_del(&ix, &cl[i]);
	cancel_index_del(&ix, &dup); /* not indexed: nothing happens */
	CHECK(ix.count == N / 2);
	int ok = 0;
	for (int i = 0; i < N; i++) {
		struct client *f = cancel_index_find(&ix, cl[i].cancel_pid, cl[i].cancel_key);
		ok += i % 2 ? f == &cl[i] : f == NULL;
	}
	CHECK(ok == N);
	CHECK(cancel_index_find(&ix, cl[1].cancel_pid, cl[1].cancel_key + 1) == NULL);
	cancel_index_clear(&ix);
	CHECK(ix.count == 0 && cancel_index_find(&ix, cl[1].cancel_pid, cl[1].cancel_key) == NULL);
	free(cl);
}

int main(void)
{
	test_wheel_basic();
	test_wheel_laps_and_callbacks();
	test_wheel_many();
	test_cancel_index();
	return unit_finish("test_timers");
}
