// SPDX-License-Identifier: GPL-2.0
/*
 * The bus: the topic namespace, and the hybrid logical clock that numbers
 * every message on it.
 */
#include <linux/atomic.h>
#include <linux/ktime.h>
#include <linux/minmax.h>

#include "internal.h"

struct pcb_bus pcb_bus;

/*
 * The last message id handed out.  An id is max(CLOCK_REALTIME ns, last
 * id + 1): physical time while the clock moves forward faster than ids are
 * taken, a logical counter on top of it otherwise, and never backwards when
 * the wall clock is stepped back.
 */
static atomic64_t pcb_hlc_last;

/* Take @n consecutive ids; returns the first. */
u64 pcb_hlc_next_n(u32 n)
{
	u64 now = ktime_get_real_ns();
	s64 last = atomic64_read(&pcb_hlc_last);
	u64 next;

	/* Full ordering: an id taken after another is always greater. */
	do {
		next = max_t(u64, now, (u64)last + 1);
	} while (!atomic64_try_cmpxchg(&pcb_hlc_last, &last, next + n - 1));
	return next;
}

u64 pcb_hlc_next(void)
{
	return pcb_hlc_next_n(1);
}

/*
 * Dependencies of a message about to be published: ids handed out already
 * (the new one will be greater, as pcb_hlc_last only grows), each once.
 */
int pcb_hlc_check_deps(const u64 *deps, u32 nr)
{
	u64 last = atomic64_read(&pcb_hlc_last);
	u32 i, j;

	for (i = 0; i < nr; i++) {
		if (!deps[i] || deps[i] > last)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (deps[j] == deps[i])
				return -EINVAL;
	}
	return 0;
}

int pcb_bus_init(struct pcb_bus *bus)
{
	bus->stats = pcb_stats_alloc();
	if (!bus->stats)
		return -ENOMEM;
	mutex_init(&bus->lock);
	hash_init(bus->names);
	xa_init(&bus->topics);
	INIT_LIST_HEAD(&bus->endpoints);
	bus->next_topic_id = 1;
	bus->nr_topics = 0;
	bus->next_ep_id = 1;
	return 0;
}

void pcb_bus_destroy(struct pcb_bus *bus)
{
	pcb_topic_destroy_all(bus);
	xa_destroy(&bus->topics);
	mutex_destroy(&bus->lock);
	pcb_stats_free(bus->stats);
}
