// SPDX-License-Identifier: GPL-2.0
/*
 * The buses, one per IPC namespace, each a topic namespace with its own
 * hybrid logical clock that numbers its messages.
 */
#include <linux/atomic.h>
#include <linux/ipc_namespace.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/nsproxy.h>
#include <linux/slab.h>

#include "compat.h"
#include "internal.h"

/*
 * Take @n consecutive message ids of @bus, all greater than @floor (the
 * message's greatest dependency, or 0); returns the first.  An id is
 * max(@now, last id + 1, @floor + 1), @now being CLOCK_REALTIME in ns when
 * the publish entered the kernel (struct pcb_pub): physical time while the
 * clock moves forward faster than ids are taken, a logical counter on top
 * of it otherwise, and never backwards when the wall clock is stepped
 * back.
 */
u64 pcb_hlc_next_n(struct pcb_bus *bus, u32 n, u64 now, u64 floor)
{
	now = max(now, floor + 1);
	s64 last = atomic64_read(&bus->hlc_last);
	u64 next;

	/* Full ordering: an id taken after another is always greater. */
	do {
		next = max_t(u64, now, (u64)last + 1);
	} while (!atomic64_try_cmpxchg(&bus->hlc_last, &last, next + n - 1));
	return next;
}

/*
 * Dependencies of a message about to be published on @bus: not from the
 * future, that is none past both the last id handed out and the wall
 * clock, each once; *@max gets the greatest, which the new id will
 * exceed.  Comparing with the wall clock too, not with the last id alone,
 * keeps the answer from telling when the bus's last message went out.
 */
int pcb_hlc_check_deps(struct pcb_bus *bus, const u64 *deps, u32 nr, u64 *max)
{
	u64 limit = max_t(u64, atomic64_read(&bus->hlc_last),
			  ktime_get_real_ns());
	u32 i, j;

	*max = 0;
	for (i = 0; i < nr; i++) {
		if (!deps[i] || deps[i] > limit)
			return -EINVAL;
		*max = max(*max, deps[i]);
		for (j = 0; j < i; j++)
			if (deps[j] == deps[i])
				return -EINVAL;
	}
	return 0;
}

/* --- one bus per IPC namespace ------------------------------------------ */

/*
 * Every bus, under @pcb_buses_lock, which also covers each bus's @users.
 * A bus holds a reference to its IPC namespace, so the namespace cannot be
 * freed and its address reused while the bus is listed; it is reaped once
 * that reference is the namespace's last one and no one uses the bus.
 */
static LIST_HEAD(pcb_buses);
static DEFINE_MUTEX(pcb_buses_lock);

static void bus_reap_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(pcb_bus_reap_work, bus_reap_fn);

/* How often idle buses of other namespaces are looked at. */
#define PCB_BUS_REAP_DELAY	(10 * HZ)

/*
 * A bus for @ipc_ns, counted against the caller's user (whose first open
 * there makes it) until it is freed, as it may outlive their endpoints.
 */
static struct pcb_bus *bus_create(struct ipc_namespace *ipc_ns)
{
	struct pcb_bus *bus = pcb_zalloc(sizeof(*bus));
	int ret = -ENOMEM;

	if (!bus)
		return ERR_PTR(-ENOMEM);
	bus->stats = pcb_should_fail() ? NULL : pcb_stats_alloc();
	if (!bus->stats)
		goto err_free;
	bus->creator = pcb_user_get();
	if (!bus->creator)
		goto err_stats;
	ret = pcb_quota_charge(bus->creator, PCB_QUOTA_BUSES);
	if (ret)
		goto err_user;
	mutex_init(&bus->lock);
	hash_init(bus->names);
	xa_init_flags(&bus->topics, XA_FLAGS_ALLOC1);
	INIT_LIST_HEAD(&bus->endpoints);
	bus->next_topic_id = 1;
	bus->next_ep_id = 1;
	bus->next_sub_id = 1;
	bus->ipc_ns = get_ipc_ns(ipc_ns);
	bus->user_ns = ipc_ns->user_ns;	/* held by the IPC namespace */
	atomic64_set(&bus->hlc_last, 0);
	atomic_long_inc(&pcb_usage[PCB_USAGE_BUSES]);
	return bus;

err_user:
	pcb_user_put(bus->creator);
err_stats:
	pcb_stats_free(bus->stats);
err_free:
	kfree(bus);
	return ERR_PTR(ret);
}

/* Nothing uses @bus any more: no endpoint, and no one can open one. */
static void bus_destroy(struct pcb_bus *bus)
{
	pcb_topic_destroy_all(bus);
	xa_destroy(&bus->topics);
	mutex_destroy(&bus->lock);
	pcb_stats_free(bus->stats);
	pcb_put_ipc_ns(bus->ipc_ns);
	pcb_quota_uncharge(bus->creator, PCB_QUOTA_BUSES);
	pcb_user_put(bus->creator);
	kfree(bus);
	atomic_long_dec(&pcb_usage[PCB_USAGE_BUSES]);
}

/*
 * Our reference is the namespace's last: no task is in it and no nsfs
 * file or mount names it, so no one can enter it again.
 */
static bool bus_ns_dead(const struct pcb_bus *bus)
{
	return refcount_read(&bus->ipc_ns->ns.count) == 1;
}

/* Caller holds pcb_buses_lock.  Returns whether idle buses remain. */
static bool buses_reap_locked(struct list_head *dead)
{
	struct pcb_bus *bus, *tmp;
	bool idle = false;

	list_for_each_entry_safe(bus, tmp, &pcb_buses, node) {
		if (bus->users)
			continue;
		if (bus_ns_dead(bus))
			list_move(&bus->node, dead);
		else if (bus->ipc_ns != current->nsproxy->ipc_ns)
			idle = true;
	}
	return idle;
}

static void buses_destroy(struct list_head *dead)
{
	struct pcb_bus *bus, *tmp;

	list_for_each_entry_safe(bus, tmp, dead, node)
		bus_destroy(bus);
}

/* Returns whether idle buses of other namespaces remain. */
bool pcb_buses_reap(void)
{
	LIST_HEAD(dead);
	bool idle;

	mutex_lock(&pcb_buses_lock);
	idle = buses_reap_locked(&dead);
	mutex_unlock(&pcb_buses_lock);
	buses_destroy(&dead);
	return idle;
}

static void bus_reap_fn(struct work_struct *work)
{
	/* A namespace whose bus is idle may die without telling us: look again. */
	if (pcb_buses_reap())
		queue_delayed_work(pcb_wq, &pcb_bus_reap_work,
				   PCB_BUS_REAP_DELAY);
}

/*
 * The bus of the caller's IPC namespace, created on first use, with a use
 * counted for the caller: an endpoint, or a /proc reader with @create
 * false, which gets NULL when the namespace has no bus.  An ERR_PTR when
 * it cannot be made (ENOMEM, EDQUOT).
 */
struct pcb_bus *pcb_bus_get(bool create)
{
	struct ipc_namespace *ipc_ns = current->nsproxy->ipc_ns;
	struct pcb_bus *bus, *found = NULL;
	LIST_HEAD(dead);

	mutex_lock(&pcb_buses_lock);
	buses_reap_locked(&dead);
	list_for_each_entry(bus, &pcb_buses, node) {
		if (bus->ipc_ns == ipc_ns) {
			found = bus;
			break;
		}
	}
	if (!found && create) {
		found = bus_create(ipc_ns);
		if (!IS_ERR(found))
			list_add(&found->node, &pcb_buses);
	}
	if (!IS_ERR_OR_NULL(found))
		found->users++;
	mutex_unlock(&pcb_buses_lock);
	buses_destroy(&dead);
	return found;
}

void pcb_bus_put(struct pcb_bus *bus)
{
	bool idle;

	/*
	 * Not a word about current's namespaces here: the last fput() of an
	 * exiting task runs after it has left them (nsproxy is NULL).
	 */
	mutex_lock(&pcb_buses_lock);
	idle = !--bus->users;
	mutex_unlock(&pcb_buses_lock);
	/* Its namespace may be dying: look at it after a while. */
	if (idle)
		queue_delayed_work(pcb_wq, &pcb_bus_reap_work,
				   PCB_BUS_REAP_DELAY);
}

/* Module unload: no file of the device is open, so no bus is in use. */
void pcb_buses_destroy_all(void)
{
	LIST_HEAD(all);

	cancel_delayed_work_sync(&pcb_bus_reap_work);
	mutex_lock(&pcb_buses_lock);
	list_splice_init(&pcb_buses, &all);
	mutex_unlock(&pcb_buses_lock);
	buses_destroy(&all);
}
