#include "pool/deadline.h"

#define SLOT_MASK ((int64_t)DEADLINE_SLOTS - 1)

void deadline_wheel_init(struct deadline_wheel *w, deadline_fire_fn fire, usec_t now)
{
	for (size_t i = 0; i < DEADLINE_SLOTS; i++)
		list_init(&w->slots[i]);
	w->done_slot = now / DEADLINE_SLOT_USEC;
	w->armed = 0;
	w->fire = fire;
}

/* A deadline further away than one lap sits in its slot and is looked at
 * once per lap (64 s) until it is due. */
static void insert(struct deadline_wheel *w, struct deadline *d)
{
	int64_t slot = d->at / DEADLINE_SLOT_USEC;
	if (slot <= w->done_slot)
		slot = w->done_slot + 1;
	list_add_tail(&w->slots[slot & SLOT_MASK], &d->node);
}

void deadline_arm(struct deadline_wheel *w, struct deadline *d, usec_t at)
{
	if (deadline_armed(d))
		list_del(&d->node);
	else
		w->armed++;
	d->at = at;
	insert(w, d);
}

void deadline_disarm(struct deadline_wheel *w, struct deadline *d)
{
	if (!deadline_armed(d))
		return;
	list_del(&d->node);
	w->armed--;
}

/* Move a slot's deadlines to the end of batch. */
static void take_slot(struct list_node *slot, struct list_node *batch)
{
	if (list_empty(slot))
		return;
	struct list_node *first = slot->next, *last = slot->prev;
	first->prev = batch->prev;
	batch->prev->next = first;
	last->next = batch;
	batch->prev = last;
	list_init(slot);
}

void deadline_run(struct deadline_wheel *w, usec_t now)
{
	int64_t upto = now / DEADLINE_SLOT_USEC;
	if (upto <= w->done_slot)
		return;
	int64_t from = w->done_slot + 1;
	if (upto - from >= DEADLINE_SLOTS)
		from = upto - DEADLINE_SLOTS + 1; /* a stall longer than a lap: each slot once */
	struct list_node batch;
	list_init(&batch);
	for (int64_t s = from; s <= upto; s++)
		take_slot(&w->slots[s & SLOT_MASK], &batch);
	w->done_slot = upto;
	/* The batch holds armed deadlines; a callback that disarms one of them
	 * takes it out of the batch. */
	struct list_node *n;
	while ((n = list_first(&batch))) {
		struct deadline *d = list_entry(n, struct deadline, node);
		list_del(n);
		if (d->at > now) {
			insert(w, d);
			continue;
		}
		w->armed--;
		w->fire(w, d, now);
	}
}
