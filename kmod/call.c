// SPDX-License-Identifier: GPL-2.0
/*
 * Calls that wait (PUBLISH, PUBLISH_BATCH, WAIT): their deadlines, and
 * restarts that keep them.
 *
 * io_uring's task work interrupts a waiting thread like a signal
 * (TIF_NOTIFY_SIGNAL) without being one: such a call restarts
 * (-ERESTARTNOHAND) and must not start its timeout over.  The deadline
 * waits for the restart in a small per-endpoint table of slots, one per
 * thread restarting, found again by the thread's identity; a slot is
 * taken back by the restart, or becomes free once it is too old to belong
 * to one (its thread exited, or was stopped).
 */
#include <linux/ktime.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>

#include "internal.h"

/* A restart slot left longer ago than this belongs to no restart. */
#define PCB_RESTART_STALE	HZ

/*
 * An interrupted wait of a call that has done nothing yet.  signal_pending()
 * is also true for io_uring's task work (TIF_NOTIFY_SIGNAL), which is no
 * signal: restart the call then (pcb_call_end() keeps its deadline), and
 * keep EINTR for a real signal.
 */
int pcb_restartable(int ret)
{
	if (ret == -EINTR && !task_sigpending(current))
		return -ERESTARTNOHAND;
	return ret;
}

static bool restart_is_mine(const struct pcb_restart *r)
{
	return r->task == current && r->start_time == current->start_time;
}

/*
 * A slot left by a thread that has exited, or that never came back: a
 * restart follows its interruption at once, when the thread returns to
 * user mode, so a slot this old belongs to no restart.
 */
static bool restart_is_stale(const struct pcb_restart *r)
{
	return !r->task || time_after(jiffies, r->stamp + PCB_RESTART_STALE);
}

/* The slot of this thread (a thread has one call at a time), or NULL. */
static struct pcb_restart *restart_slot(struct pcb_endpoint *ep)
{
	int i;

	lockdep_assert_held(&ep->restart_lock);
	for (i = 0; i < PCB_RESTARTS; i++)
		if (restart_is_mine(&ep->restarts[i]))
			return &ep->restarts[i];
	return NULL;
}

static void restart_release(struct pcb_endpoint *ep, struct pcb_restart *r)
{
	lockdep_assert_held(&ep->restart_lock);
	if (!r->task)
		return;
	r->task = NULL;
	WRITE_ONCE(ep->nr_restarts, ep->nr_restarts - 1);
}

/*
 * Starts @call: its deadline is the one pcb_call_end() kept if this is
 * the restart of this thread's last call (same command, argument and
 * timeout), else none yet: pcb_call_when() sets it, timeout_ns from the
 * first time the call is about to wait, so that a call that never waits
 * never reads the clock.  Without the kept one, a thread whose io_uring
 * keeps completing would start its timeout over at every completion.  A
 * restart that a signal turned into EINTR in between, and that the thread
 * retries at once, keeps the deadline too: the same wait.
 */
void pcb_call_begin(struct pcb_endpoint *ep, struct pcb_call *call)
{
	struct pcb_restart *r;

	call->deadline = 0;
	/*
	 * Without the lock: a thread always sees its own pcb_call_end(),
	 * and others' only matter to them.
	 */
	if (!call->timeout_ns || !READ_ONCE(ep->nr_restarts))
		return;

	spin_lock(&ep->restart_lock);
	r = restart_slot(ep);
	if (r) {
		if (!restart_is_stale(r) && r->cmd == call->cmd &&
		    r->arg == call->arg && r->timeout_ns == call->timeout_ns)
			call->deadline = r->deadline;
		restart_release(ep, r);
	}
	spin_unlock(&ep->restart_lock);
}

/* @call's deadline (0: none), set now if this is its first wait. */
ktime_t pcb_call_when(struct pcb_call *call)
{
	if (!call->deadline && call->timeout_ns)
		call->deadline = pcb_deadline(call->timeout_ns);
	return call->deadline;
}

/* A slot for this thread: its own, a free or stale one, else another's. */
static struct pcb_restart *restart_take(struct pcb_endpoint *ep)
{
	struct pcb_restart *r = restart_slot(ep);
	int i;

	for (i = 0; i < PCB_RESTARTS && !r; i++)
		if (restart_is_stale(&ep->restarts[i]))
			r = &ep->restarts[i];
	if (!r)
		r = &ep->restarts[ep->restart_next++ % PCB_RESTARTS];
	return r;
}

/*
 * Ends @call, which has done nothing, with @ret: a restart when it is an
 * EINTR without a signal (pcb_restartable()).  A call about to restart
 * leaves its deadline for the restart: in its thread's slot, a free or
 * stale one or, when more threads than slots restart at once, another's
 * (that thread starts over).
 */
int pcb_call_end(struct pcb_endpoint *ep, const struct pcb_call *call, int ret)
{
	struct pcb_restart *r;

	ret = pcb_restartable(ret);
	if (ret != -ERESTARTNOHAND || !call->deadline)
		return ret;

	spin_lock(&ep->restart_lock);
	r = restart_take(ep);
	if (!r->task)
		WRITE_ONCE(ep->nr_restarts, ep->nr_restarts + 1);
	*r = (struct pcb_restart){
		.task = current, .start_time = current->start_time,
		.stamp = jiffies, .cmd = call->cmd, .arg = call->arg,
		.timeout_ns = call->timeout_ns, .deadline = call->deadline,
	};
	spin_unlock(&ep->restart_lock);
	return ret;
}

ktime_t pcb_deadline(u64 timeout_ns)
{
	/* Saturating: a timeout beyond KTIME_MAX waits without limit, too. */
	ktime_t limit = ns_to_ktime(min_t(u64, timeout_ns, KTIME_MAX));

	return timeout_ns ? ktime_add_safe(ktime_get(), limit) : 0;
}
