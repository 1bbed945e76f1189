/* Deadlines for many connections at once: a timer wheel, so arming,
 * re-arming and disarming are O(1) (two list operations) and a pass costs
 * only the deadlines that are due or whose slot comes round. A connection
 * embeds a struct deadline (24 bytes, no libevent event per connection);
 * its owner's wheel has one callback that decides what a due deadline
 * means (the owner's state says which of its timeouts it was). The wheel
 * is run by the janitor, so a deadline fires within one janitor interval
 * plus one slot after it is due. */
#ifndef TB_POOL_DEADLINE_H
#define TB_POOL_DEADLINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/util.h"

#define DEADLINE_SLOTS 256                  /* a power of two */
#define DEADLINE_SLOT_USEC ((usec_t)250000) /* the janitor's interval */

struct deadline {
	struct list_node node; /* in a slot while armed; points to itself otherwise */
	usec_t at;             /* monotonic µs */
};

struct deadline_wheel;
/* A deadline is due (it is disarmed first; the callback may re-arm it,
 * arm or disarm others, or free the object that holds it). */
typedef void (*deadline_fire_fn)(struct deadline_wheel *w, struct deadline *d, usec_t now);

struct deadline_wheel {
	struct list_node slots[DEADLINE_SLOTS];
	int64_t done_slot; /* slots up to this absolute index have been run */
	size_t armed;
	deadline_fire_fn fire;
};

void deadline_wheel_init(struct deadline_wheel *w, deadline_fire_fn fire, usec_t now);
static inline void deadline_init(struct deadline *d)
{
	list_init(&d->node);
	d->at = 0;
}
static inline bool deadline_armed(const struct deadline *d)
{
	return list_linked(&d->node);
}
/* Arm, or move an armed deadline to at. A time already past fires on the next run. */
void deadline_arm(struct deadline_wheel *w, struct deadline *d, usec_t at);
void deadline_disarm(struct deadline_wheel *w, struct deadline *d);
/* Fire every deadline due at now. */
void deadline_run(struct deadline_wheel *w, usec_t now);
#endif
