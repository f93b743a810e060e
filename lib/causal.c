// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Checking a stream of messages for causal order.
 *
 * Two fixed windows, both overwritten oldest first: the ids of the last
 * messages fed, and the dependencies declared but not arrived yet.  A
 * message whose id is among the latter arrived after a message that
 * depends on it.  Ids are never 0, so 0 marks a free slot.
 */
#include "internal.h"

#define WINDOW	PCB_CAUSAL_WINDOW

PCB_EXPORT void pcb_causal_init(struct pcb_causal_check *c)
{
	if (c)
		memset(c, 0, sizeof(*c));
}

static void violation(struct pcb_causal_check *c, bool *found,
		      unsigned int kind, uint64_t dependent,
		      uint64_t dependency)
{
	c->violations++;
	if (*found)
		return;
	*found = true;
	c->first.kind = kind;
	c->first.dependent = dependent;
	c->first.dependency = dependency;
}

static bool seen(const struct pcb_causal_check *c, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < WINDOW; i++)
		if (c->__pcb_seen[i] == id)
			return true;
	return false;
}

/* Whether @id is pending already. */
static bool pending(const struct pcb_causal_check *c, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < WINDOW; i++)
		if (c->__pcb_pending[i].id == id)
			return true;
	return false;
}

/* Remember that @by depends on @id, which has not arrived. */
static void add_pending(struct pcb_causal_check *c, uint64_t id, uint64_t by)
{
	unsigned int slot = c->__pcb_pending_next;

	if (c->__pcb_pending[slot].id)
		c->forgotten++;
	c->__pcb_pending[slot].id = id;
	c->__pcb_pending[slot].by = by;
	c->__pcb_pending_next = (slot + 1) % WINDOW;
}

PCB_EXPORT int pcb_causal_feed(struct pcb_causal_check *c, uint64_t msg_id,
			       const uint64_t *deps, unsigned int nr_deps)
{
	bool found = false;
	unsigned int i;

	if (!c || !msg_id || nr_deps > PCB_MAX_DEPS || (nr_deps && !deps))
		return -EINVAL;
	c->messages++;

	/* Did a message that came earlier depend on this one? */
	for (i = 0; i < WINDOW; i++) {
		if (c->__pcb_pending[i].id != msg_id)
			continue;
		violation(c, &found, PCB_CAUSAL_LATE_DEP,
			  c->__pcb_pending[i].by, msg_id);
		c->__pcb_pending[i].id = 0;
	}

	for (i = 0; i < nr_deps; i++) {
		if (deps[i] >= msg_id)
			violation(c, &found, PCB_CAUSAL_NOT_AFTER, msg_id,
				  deps[i]);
		/* Arrived already, or never will (0, itself): nothing to wait for. */
		if (deps[i] && deps[i] != msg_id && !seen(c, deps[i]) &&
		    !pending(c, deps[i]))
			add_pending(c, deps[i], msg_id);
	}

	c->__pcb_seen[c->__pcb_seen_next] = msg_id;
	c->__pcb_seen_next = (c->__pcb_seen_next + 1) % WINDOW;
	return found ? -EPROTO : 0;
}
