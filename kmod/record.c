// SPDX-License-Identifier: GPL-2.0
/*
 * What every publish path (single, batch, io_uring) shares: the kernel's
 * copy of a payload, the publisher as each ring sees it, writing a record
 * from kernel state, and counting, tracing and waking after a publish.
 */
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/user_namespace.h>

#include "internal.h"
#include "trace.h"

/*
 * Copy @msg->len bytes from @src into @st; @msg->data then points at the
 * copy.  The only read of the payload the kernel makes.
 */
int pcb_stage_copy(struct pcb_stage *st, struct pcb_msg *msg,
		   const struct pcb_src *src)
{
	void *dst = st->buf;

	st->heap = NULL;
	if (msg->len > sizeof(st->buf)) {
		st->heap = kvmalloc(msg->len, GFP_KERNEL_ACCOUNT);
		if (!st->heap)
			return -ENOMEM;
		dst = st->heap;
	}
	msg->data = dst;
	if (!msg->len)
		return 0;
	/*
	 * Pinned pages of a registered buffer: nothing to fault in.  From a
	 * copy of the iterator: an attempt after a wait copies again.
	 */
	if (src->iter) {
		struct iov_iter it = *src->iter;

		return copy_from_iter(dst, msg->len, &it) == msg->len ?
		       0 : -EFAULT;
	}
	if (dst == st->buf)
		return pcb_copy_in_small(dst, src->uptr, msg->len);
	return copy_from_user(dst, src->uptr, msg->len) ? -EFAULT : 0;
}

/*
 * The publisher as @ring's owner sees it.  Most rings share their
 * namespaces with the last one asked about: translate once per pair.
 */
const struct pcb_ident *pcb_pub_ident(struct pcb_pub *pub,
				      const struct pcb_ring *ring)
{
	if (ring->pid_ns != pub->id_pid_ns || ring->user_ns != pub->id_user_ns) {
		pub->id.pid = pid_nr_ns(pub->tgid, ring->pid_ns);
		/* The initial namespace maps every valid uid to itself. */
		pub->id.uid = ring->user_ns == &init_user_ns &&
			      uid_valid(pub->euid) ?
			      __kuid_val(pub->euid) :
			      from_kuid_munged(ring->user_ns, pub->euid);
		pub->id_pid_ns = ring->pid_ns;
		pub->id_user_ns = ring->user_ns;
	}
	return &pub->id;
}

/*
 * Everything of a record but its len word, which the commit writes: the
 * header from kernel state, the payload from the kernel's copy.
 */
void pcb_record_write(struct pcb_record *rec, u32 topic_id,
		      const struct pcb_pub *pub, const struct pcb_msg *msg,
		      const struct pcb_ident *id, u64 msg_id, u64 seq)
{
	rec->topic_id = topic_id;
	rec->msg_id = msg_id;
	rec->seq = seq;
	rec->tsc = pub->tsc;
	rec->key = msg->key;
	rec->payload_len = msg->len;
	rec->pid = id->pid;
	rec->uid = id->uid;
	rec->nr_deps = pub->nr_deps;
	rec->hdr_len = pub->hdr_len;
	rec->reserved = 0;
	memcpy(rec + 1, pub->deps, pub->nr_deps * sizeof(*pub->deps));
	memcpy((void *)rec + pub->hdr_len, msg->data, msg->len);
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

/* What became of the message for the ring of endpoint @ep_id, for tracing. */
void pcb_trace_fate(const struct pcb_topic *t, u64 ep_id, enum pcb_fate fate,
		    const struct pcb_pub *pub)
{
	switch (fate) {
	case PCB_FATE_WRITE:
		if (trace_pcb_deliver_enabled())
			trace_pcb_deliver(t, ep_id, fate, pub,
					  pcb_clock_ns(pcb_clock_now() - pub->tsc));
		break;
	case PCB_FATE_REJECT:
		trace_pcb_filter_reject(t, ep_id, fate, pub, 0);
		break;
	default:
		trace_pcb_drop(t, ep_id, fate, pub, 0);
		break;
	}
}

/*
 * After publishing messages @from_seq and up: wake the consumers of the
 * rings that got one.  A ring whose last_seq moved on since got a later
 * message too, and waking it early does no harm; one whose last_seq is
 * older got nothing (filtered out, missed): its consumer sleeps on.
 * Caller holds rcu_read_lock().
 */
void pcb_topic_wake_consumers(struct pcb_topic *t, u64 from_seq)
{
	struct pcb_sub *sub;

	/* 4, once for every ring: the commits were all made before it. */
	smp_mb();
	/* RCU: the list may change once topic->lock is dropped. */
	list_for_each_entry_rcu(sub, &t->subs, topic_node) {
		if (READ_ONCE(sub->last_seq) < from_seq ||
		    !pcb_ring_wake_consumer_after_mb(sub->ring))
			continue;
		pcb_stats_inc(t, PCB_CNT_WAKEUPS);
		trace_pcb_wakeup(t, sub->ep_id, from_seq);
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
		trace_pcb_timeout(t, pub->msg.len,
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
	u64 ns = pcb_clock_ns(pub->commit_ts - pub->tsc);

	pcb_stats_publish(t, pub->fates, nr, bytes, ns);
	return ns;
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

/*
 * Everything but the message itself; first, for the TSC.  Field by field,
 * every one of them: a compound literal clears the whole struct first
 * ("rep stos"), then writes the fields again.
 */
void pcb_pub_init(struct pcb_pub *pub, const struct pcb_endpoint *ep)
{
	u64 now = pcb_clock_now();

	pub->bus = ep->bus;
	pub->msg.data = NULL;
	pub->msg.len = 0;
	pub->msg.key = 0;
	pub->nr_deps = 0;
	pub->hdr_len = sizeof(struct pcb_record);
	pub->deps = NULL;
	pub->dep_max = 0;
	pub->tsc = now;
	pub->real_ns = pcb_clock_real(now);
	/* Translated for each ring by pcb_pub_ident(). */
	pub->tgid = task_tgid(current);
	pub->euid = current_euid();
	pub->id_pid_ns = NULL;
	pub->id_user_ns = NULL;
	pub->id.pid = 0;
	pub->id.uid = 0;
	pub->nonblock = false;
	pub->retried_later = false;
	pub->msg_id = 0;
	pub->seq = 0;
	pub->commit_ts = 0;
	memset(pub->fates, 0, sizeof(pub->fates));
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
	return pcb_hlc_check_deps(pub->bus, deps, nr, &pub->dep_max);
}
