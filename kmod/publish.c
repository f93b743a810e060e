// SPDX-License-Identifier: GPL-2.0
/*
 * Publishing: the hot path.
 *
 * One publish of a topic runs under topic->lock, which is what gives every
 * subscriber of the topic the same order: the sequence number, the message
 * id and the position in each ring are all taken in one critical section.
 * Inside it:
 *
 *   1. run each subscription's filter, and check that every reliable
 *      subscriber that wants the message has room (else EAGAIN or wait,
 *      with nothing reserved anywhere);
 *   2. reserve a record in every ring that wants it (lossy rings that are
 *      full just miss the message); a reliable ring that filled up since 1,
 *      because another topic wrote to it, turns every reservation into a
 *      discard record;
 *   3. copy the payload from the caller once, into the first reservation,
 *      with page faults disabled (the pages were faulted in beforehand; if
 *      they went away meanwhile, discard and retry);
 *   4. take the sequence number and the id, fill in each record, copy the
 *      payload from the first record into the others, commit, count.
 *
 * Nothing allocates, nothing sleeps.  Wake-ups of sleeping consumers come
 * after the lock is dropped, for the rings that got the message.
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/pagemap.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "internal.h"
#include "trace.h"

/* A waiting publisher re-checks the rings this often on its own. */
#define PCB_RECHECK_JIFFIES	max(1, msecs_to_jiffies(10))
/* Give up on a payload whose pages keep going away under us. */
#define PCB_FAULT_RETRIES	16

bool pcb_sub_is_reliable(const struct pcb_sub *sub)
{
	return !(sub->flags & PCB_SUB_LOSSY);
}

/*
 * Whether @sub wants @pub: 1 or 0, or -EFAULT when its filter could not
 * read the payload without faulting.  Caller holds topic->lock.
 */
int pcb_sub_wants(struct pcb_sub *sub, const struct pcb_pub *pub)
{
	return sub->filter ? pcb_filter_match(sub->filter, pub) : 1;
}

/*
 * After a publish, under topic->lock: @n messages up to sequence number
 * @seq went @sub's way, with the fate the publish gave it; @fates, indexed
 * by fate, counts them for the topic's statistics.
 */
void pcb_sub_count(struct pcb_sub *sub, u32 n, u64 seq, u32 *fates)
{
	fates[sub->fate] += n;
	switch (sub->fate) {
	case PCB_FATE_WRITE:
		sub->delivered += n;
		WRITE_ONCE(sub->last_seq, seq);	/* see pcb_topic_wake_consumers() */
		break;
	case PCB_FATE_MISS:
		sub->dropped += n;
		pcb_ring_count_drops(sub->ring, n);
		break;
	case PCB_FATE_REJECT:
		sub->rejected += n;
		break;
	case PCB_FATE_SKIP:
		break;
	}
}

/* Step 1. */
static int filter_and_check_room(struct pcb_topic *t,
				 const struct pcb_pub *pub, u32 rlen)
{
	struct pcb_sub *sub;
	int ret;

	list_for_each_entry(sub, &t->subs, topic_node) {
		ret = pcb_sub_wants(sub, pub);
		if (ret < 0)
			return ret;
		sub->fate = ret ? PCB_FATE_WRITE : PCB_FATE_REJECT;
		if (ret && pcb_sub_is_reliable(sub) &&
		    !pcb_ring_has_room(sub->ring, rlen, !pub->nonblock))
			return -EAGAIN;
	}
	return 0;
}

static void discard_reservations(struct pcb_topic *t, u32 rlen)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		if (sub->resv)
			pcb_ring_discard(sub->resv, rlen);
		sub->resv = NULL;
	}
}

/* Step 2.  Returns the first reservation, or an ERR_PTR. */
static struct pcb_record *reserve_all(struct pcb_topic *t, u32 rlen)
{
	struct pcb_record *first = NULL;
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		sub->resv = NULL;
		if (sub->fate != PCB_FATE_WRITE)
			continue;
		if (pcb_ring_is_broken(sub->ring)) {
			sub->fate = PCB_FATE_SKIP;
			continue;
		}
		sub->resv = pcb_ring_reserve(sub->ring, rlen);
		if (sub->resv) {
			first = first ?: sub->resv;
			continue;
		}
		if (pcb_ring_is_broken(sub->ring)) {	/* found so just now */
			sub->fate = PCB_FATE_SKIP;
			continue;
		}
		if (pcb_sub_is_reliable(sub)) {
			discard_reservations(t, rlen);
			return ERR_PTR(-EAGAIN);
		}
		sub->fate = PCB_FATE_MISS;
	}
	return first;
}

/* With faults disabled (topic->lock is held); the caller retries. */
static int copy_payload(void *dst, struct pcb_pub *pub)
{
	if (pub->iter)	/* pinned pages of a registered buffer: cannot fault */
		return copy_from_iter(dst, pub->len, pub->iter) == pub->len ?
		       0 : -EFAULT;
	return copy_from_user_nofault(dst, pub->payload, pub->len) ? -EFAULT : 0;
}

/* The header and dependencies of a record; the caller commits it. */
void pcb_record_fill(struct pcb_record *rec, const struct pcb_topic *t,
		     const struct pcb_pub *pub)
{
	rec->topic_id = t->id;
	rec->msg_id = pub->msg_id;
	rec->seq = pub->seq;
	rec->tsc = pub->tsc;
	rec->key = pub->key;
	rec->payload_len = pub->len;
	rec->pid = pub->pid;
	rec->uid = pub->uid;
	rec->nr_deps = pub->nr_deps;
	rec->hdr_len = pub->hdr_len;
	rec->reserved = 0;
	memcpy(rec + 1, pub->deps, pub->nr_deps * sizeof(*pub->deps));
}

static void *record_payload(struct pcb_record *rec, const struct pcb_pub *pub)
{
	return (void *)rec + pub->hdr_len;
}

/* What became of the message for @sub, for tracing. */
void pcb_trace_fate(const struct pcb_sub *sub, const struct pcb_pub *pub)
{
	switch (sub->fate) {
	case PCB_FATE_WRITE:
		if (trace_pcb_deliver_enabled())
			trace_pcb_deliver(sub, pub,
					  pcb_clock_ns(pcb_clock_now() - pub->tsc));
		break;
	case PCB_FATE_REJECT:
		trace_pcb_filter_reject(sub, pub, 0);
		break;
	default:
		trace_pcb_drop(sub, pub, 0);
		break;
	}
}

/* Step 4. */
static void commit_all(struct pcb_topic *t, struct pcb_record *first,
		       struct pcb_pub *pub, u32 rlen)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		pcb_sub_count(sub, 1, pub->seq, pub->fates);
		if (sub->resv) {
			pcb_record_fill(sub->resv, t, pub);
			if (sub->resv != first)
				memcpy(record_payload(sub->resv, pub),
				       record_payload(first, pub), pub->len);
			pcb_ring_commit(sub->resv, rlen);
			sub->resv = NULL;
		}
		pcb_trace_fate(sub, pub);
	}
}

/*
 * One attempt under topic->lock.  -EAGAIN: a reliable ring is full;
 * -EFAULT: the payload could not be read without faulting.
 */
static int publish_locked(struct pcb_topic *t, struct pcb_pub *pub)
{
	u32 rlen = pcb_record_len(pub->hdr_len, pub->len);
	struct pcb_record *first;
	int ret;

	if (t->dead)
		return -EIDRM;
	ret = filter_and_check_room(t, pub, rlen);
	if (ret)
		return ret;

	first = reserve_all(t, rlen);
	if (IS_ERR(first))
		return PTR_ERR(first);

	if (first && pub->len && copy_payload(record_payload(first, pub), pub)) {
		discard_reservations(t, rlen);
		return -EFAULT;
	}

	pub->seq = ++t->seq;
	pub->msg_id = pcb_hlc_next();
	commit_all(t, first, pub, rlen);
	return 0;
}

/*
 * After publishing messages @from_seq and up: wake the consumers of the
 * rings that got one.  A ring whose last_seq moved on since got a later
 * message too, and waking it early does no harm; one whose last_seq is
 * older got nothing (filtered out, missed): its consumer sleeps on.
 */
void pcb_topic_wake_consumers(struct pcb_topic *t, u64 from_seq)
{
	struct pcb_sub *sub;

	/* RCU: the list may change once topic->lock is dropped. */
	list_for_each_entry_rcu(sub, &t->subs, topic_node) {
		if (READ_ONCE(sub->last_seq) < from_seq ||
		    !pcb_ring_wake_consumer(sub->ring))
			continue;
		pcb_stats_inc(t, PCB_CNT_WAKEUPS);
		trace_pcb_wakeup(sub, from_seq);
	}
}

/* A publisher is about to wait for room for the first time. */
void pcb_account_block(struct pcb_topic *t, u32 len)
{
	pcb_stats_inc(t, PCB_CNT_BLOCKED);
	trace_pcb_block(t, len, 0);
}

/* A publisher gave up waiting. */
void pcb_account_timeout(struct pcb_topic *t, const struct pcb_pub *pub)
{
	pcb_stats_inc(t, PCB_CNT_TIMEOUTS);
	if (trace_pcb_timeout_enabled())
		trace_pcb_timeout(t, pub->len,
				  pcb_clock_ns(pcb_clock_now() - pub->tsc));
}

/*
 * After @nr messages of @bytes went out in one publish, @pub carrying its
 * clock readings and the fates of the topic's subscriptions.  Returns the
 * publish-path cost in ns.
 */
u64 pcb_account_publish(struct pcb_topic *t, const struct pcb_pub *pub,
			u64 nr, u64 bytes)
{
	u64 add[PCB_NR_COUNTERS] = {
		[PCB_CNT_PUBLISHED] = nr,
		[PCB_CNT_BYTES] = bytes,
	};
	u64 ns = pcb_clock_ns(pub->commit_ts - pub->tsc);
	unsigned int i;

	/* The fates are the first counters: see enum pcb_fate. */
	for (i = 0; i < ARRAY_SIZE(pub->fates); i++)
		add[i] = pub->fates[i];
	pcb_stats_add(t, add, ns);
	return ns;
}

/*
 * Publish once.  Returns 0, a negative errno, or -EAGAIN with *waitp set
 * to the topic (a reference taken) and *genp to its space generation read
 * before the attempt, for the caller to sleep on.
 */
static int publish_once(struct pcb_endpoint *ep, u32 handle,
			struct pcb_pub *pub, struct pcb_topic **waitp,
			unsigned long *genp)
{
	struct pcb_topic *t;
	int ret;

	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (!t) {
		ret = -EBADF;
		goto out;
	}
	if (pub->len > t->max_msg_size) {
		ret = -EMSGSIZE;
		goto out;
	}

	*genp = atomic_long_read(&t->space_gen);
	/*
	 * The generation before the ring positions it stands for: pairs with
	 * the barrier before the increment in pcb_topic_kick_publishers().
	 */
	smp_rmb();

	spin_lock(&t->lock);
	ret = publish_locked(t, pub);
	spin_unlock(&t->lock);

	if (!ret) {
		u64 ns;

		/* Committed everywhere: read the clock outside the lock. */
		pub->commit_ts = pcb_clock_now();
		ns = pcb_account_publish(t, pub, 1, pub->len);

		trace_pcb_publish(t, pub, ns);
		pcb_topic_wake_consumers(t, pub->seq);
	} else if (ret == -EAGAIN && pub->nonblock) {
		if (!pub->retried_later)
			pcb_stats_inc(t, PCB_CNT_WOULD_BLOCK);
	} else if (ret == -EAGAIN && refcount_inc_not_zero(&t->ref)) {
		*waitp = t;
	}
out:
	rcu_read_unlock();
	return ret;
}

/* Sleep until the topic's space generation moves, or a recheck is due. */
int pcb_wait_for_room(struct pcb_topic *t, unsigned long gen, ktime_t deadline)
{
	long timeout = PCB_RECHECK_JIFFIES;
	long ret;

	if (deadline) {
		s64 left = ktime_to_ns(ktime_sub(deadline, ktime_get()));

		if (left <= 0)
			return -ETIMEDOUT;
		timeout = min_t(long, timeout, nsecs_to_jiffies(left) + 1);
	}

	ret = wait_event_interruptible_timeout(t->space_wq,
					       atomic_long_read(&t->space_gen) != gen ||
					       READ_ONCE(t->dead),
					       timeout);
	return ret < 0 ? -EINTR : 0;
}

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

/* The slot of this thread (a thread has one call at a time), or NULL. */
static struct pcb_restart *restart_slot(struct pcb_endpoint *ep)
{
	int i;

	lockdep_assert_held(&ep->restart_lock);
	for (i = 0; i < PCB_RESTARTS; i++)
		if (ep->restarts[i].task == current &&
		    ep->restarts[i].tid == current->pid)
			return &ep->restarts[i];
	return NULL;
}

/*
 * Sets and returns @call's deadline: the one pcb_call_end() kept if this
 * is the restart of this thread's last call (same command, argument and
 * timeout), else timeout_ns from now.  Without the kept one, a thread
 * whose io_uring keeps completing would start its timeout over at every
 * completion.  A restart that a signal turned into EINTR in between, and
 * that the thread retries at once, keeps the deadline too: the same wait.
 */
ktime_t pcb_call_deadline(struct pcb_endpoint *ep, struct pcb_call *call)
{
	struct pcb_restart *r;

	call->deadline = pcb_deadline(call->timeout_ns);
	/*
	 * Without the lock: a thread always sees its own pcb_call_end(),
	 * and others' only matter to them.
	 */
	if (!call->deadline || !READ_ONCE(ep->nr_restarts))
		return call->deadline;

	spin_lock(&ep->restart_lock);
	r = restart_slot(ep);
	if (r) {
		if (r->cmd == call->cmd && r->arg == call->arg &&
		    r->timeout_ns == call->timeout_ns)
			call->deadline = r->deadline;
		r->task = NULL;
		WRITE_ONCE(ep->nr_restarts, ep->nr_restarts - 1);
	}
	spin_unlock(&ep->restart_lock);
	return call->deadline;
}

/*
 * Ends @call, which has done nothing, with @ret: a restart when it is an
 * EINTR without a signal (pcb_restartable()).  A call about to restart
 * leaves its deadline for the restart: in its thread's slot, a free one
 * or, when more threads than slots restart at once, another's (that
 * thread starts over).
 */
int pcb_call_end(struct pcb_endpoint *ep, const struct pcb_call *call, int ret)
{
	struct pcb_restart *r;
	int i;

	ret = pcb_restartable(ret);
	if (ret != -ERESTARTNOHAND || !call->deadline)
		return ret;

	spin_lock(&ep->restart_lock);
	r = restart_slot(ep);
	for (i = 0; i < PCB_RESTARTS && !r; i++)
		if (!ep->restarts[i].task)
			r = &ep->restarts[i];
	if (!r)
		r = &ep->restarts[ep->restart_next++ % PCB_RESTARTS];
	else if (!r->task)
		WRITE_ONCE(ep->nr_restarts, ep->nr_restarts + 1);
	*r = (struct pcb_restart){
		.task = current, .tid = current->pid, .cmd = call->cmd,
		.arg = call->arg, .timeout_ns = call->timeout_ns,
		.deadline = call->deadline,
	};
	spin_unlock(&ep->restart_lock);
	return ret;
}

/* The topic's largest message, or -EBADF for a handle not open. */
static long handle_max_len(struct pcb_endpoint *ep, u32 handle)
{
	struct pcb_topic *t;
	long max = -EBADF;

	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (t)
		max = t->max_msg_size;
	rcu_read_unlock();
	return max;
}

ktime_t pcb_deadline(u64 timeout_ns)
{
	/* Saturating: a timeout beyond KTIME_MAX waits without limit, too. */
	ktime_t limit = ns_to_ktime(min_t(u64, timeout_ns, KTIME_MAX));

	return timeout_ns ? ktime_add_safe(ktime_get(), limit) : 0;
}

/*
 * Publish one message through @handle, waiting for room until @deadline
 * (0: no limit) unless pub->nonblock.
 */
int pcb_publish_one(struct pcb_endpoint *ep, u32 handle, struct pcb_pub *pub,
		    ktime_t deadline)
{
	long max = handle_max_len(ep, handle);
	int faults = 0, blocked = 0;
	int ret;

	if (max < 0)
		return max;
	if (pub->len > max)
		return -EMSGSIZE;
	/* Fault the payload in now: the copy happens with faults disabled. */
	if (!pub->iter && pub->len && fault_in_readable(pub->payload, pub->len))
		return -EFAULT;

	for (;;) {
		struct pcb_topic *wait_topic = NULL;
		unsigned long gen;

		ret = publish_once(ep, handle, pub, &wait_topic, &gen);
		if (ret == -EFAULT && !pub->iter && ++faults < PCB_FAULT_RETRIES &&
		    !fault_in_readable(pub->payload, pub->len))
			continue;
		if (!wait_topic)
			return ret;

		if (!blocked++)
			pcb_account_block(wait_topic, pub->len);
		ret = pcb_wait_for_room(wait_topic, gen, deadline);
		if (ret == -ETIMEDOUT)
			pcb_account_timeout(wait_topic, pub);
		pcb_topic_put(wait_topic);
		if (ret)
			return ret;
	}
}

/*
 * Write an in/out argument back as it was read, before acting on it: an
 * action must not take effect for a caller who then gets EFAULT and cannot
 * tell it did.  Only a racing munmap() or mprotect() can still defeat it.
 */
int pcb_probe_out(void __user *arg, const void *args, size_t size)
{
	return copy_to_user(arg, args, size) ? -EFAULT : 0;
}

/* Everything but the message itself; first, for the TSC. */
void pcb_pub_init(struct pcb_pub *pub, const struct pcb_endpoint *ep)
{
	*pub = (struct pcb_pub) {
		.tsc = pcb_clock_now(),
		.hdr_len = sizeof(struct pcb_record),
		/* As the bus sees them, the same for all its consumers. */
		.pid = task_tgid_nr_ns(current, ep->bus->pid_ns),
		.uid = from_kuid_munged(ep->bus->user_ns, current_euid()),
	};
}

/* Read the @nr dependencies at @uaddr into @deps, check them, use them. */
int pcb_pub_deps(struct pcb_pub *pub, u64 *deps, u64 uaddr, u32 nr)
{
	if (nr > PCB_MAX_DEPS)
		return -EINVAL;
	if (!nr)
		return 0;
	if (copy_from_user(deps, u64_to_user_ptr(uaddr), nr * sizeof(*deps)))
		return -EFAULT;
	pub->deps = deps;
	pub->nr_deps = nr;
	pub->hdr_len = sizeof(struct pcb_record) + nr * sizeof(*deps);
	return pcb_hlc_check_deps(deps, nr);
}

int pcb_publish(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_call call = { .cmd = PCB_IOC_PUBLISH, .arg = arg };
	struct pcb_publish args;
	u64 deps[PCB_MAX_DEPS];
	struct pcb_pub pub;
	int ret;

	pcb_pub_init(&pub, ep);
	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PCB_PUB_FLAGS_ALL || args.reserved[0])
		return -EINVAL;
	ret = pcb_pub_deps(&pub, deps, args.deps, args.nr_deps);
	if (ret)
		return ret;

	ret = pcb_probe_out(arg, &args, sizeof(args));
	if (ret)
		return ret;

	pub.payload = u64_to_user_ptr(args.payload);
	pub.len = args.len;
	pub.key = args.key;
	pub.nonblock = args.flags & PCB_PUB_NONBLOCK;
	call.timeout_ns = args.timeout_ns;
	ret = pcb_publish_one(ep, args.handle, &pub,
			      pcb_call_deadline(ep, &call));
	if (ret)
		return pcb_call_end(ep, &call, ret);

	args.msg_id = pub.msg_id;
	args.seq = pub.seq;
	return copy_to_user(arg, &args, sizeof(args)) ? -EFAULT : 0;
}
