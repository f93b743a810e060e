// SPDX-License-Identifier: GPL-2.0
/*
 * Publishing: the hot path.
 *
 * The payload is copied once from the publisher into kernel memory (the
 * stack for small messages, the heap above PCB_PAYLOAD_INLINE), before any
 * lock: from there on nothing is read from memory the publisher can
 * change.  Filters judge that copy and every ring's record is written
 * from it.
 *
 * One publish of a topic then runs under topic->lock, which is what gives
 * every subscriber of the topic the same order: the sequence number, the
 * message id and the position in each ring are all taken in one critical
 * section.  Inside it:
 *
 *   1. run each subscription's filter on the copy, and check that every
 *      reliable subscriber that wants the message has room (else EAGAIN
 *      or wait, with nothing reserved anywhere);
 *   2. reserve a record in every ring that wants it (lossy rings that are
 *      full just miss the message); a reliable ring that filled up since 1,
 *      because another topic wrote to it, turns every reservation into a
 *      discard record;
 *   3. take the sequence number and the id; a small message is written
 *      into each record and committed there and then; for a large one the
 *      rings are pinned and the records written and committed after the
 *      lock is dropped (records commit out of order: the consumer waits
 *      at a BUSY one, and the ring's pending position keeps its bytes).
 *
 * The work under the lock is thus bounded by the topic's subscriptions
 * times a PCB_PAYLOAD_INLINE copy.  Nothing allocates, nothing sleeps
 * under it.  Wake-ups of sleeping consumers come after the lock is
 * dropped, for the rings that got the message.
 *
 * A plain batch's run of small messages to one topic (pcb_publish_run())
 * takes the lock once for up to PCB_RUN_MAX of them: the same three steps
 * for the whole run, one chunk reserved in each ring for all the records
 * it takes, when every reliable ring has room for them; else message by
 * message as above.
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "internal.h"
#include "trace.h"

/* Copied in and out in words (pcb_copy_in_small(), publish_result()). */
static_assert(sizeof(struct pcb_publish) % sizeof(u64) == 0);
static_assert(offsetof(struct pcb_publish, seq) ==
	      offsetof(struct pcb_publish, msg_id) + sizeof(__u64));

/* A waiting publisher re-checks the rings this often on its own. */
#define PCB_RECHECK_JIFFIES	max(1, msecs_to_jiffies(10))

/*
 * The rings a large message goes to, pinned under the lock, written after
 * it.  @cap slots; a publish that needs more says how many in @want.
 */
struct fanout_slot {
	struct pcb_ring *ring;
	struct pcb_record *rec;
	struct pcb_ident id;
};

struct fanout {
	struct fanout_slot *slots;	/* NULL: write under the lock */
	unsigned int cap;
	unsigned int nr;
	unsigned int want;
};

/* Step 1.  Returns the number of rings that want it, or -EAGAIN. */
static int decide_and_check_room(struct pcb_topic *t, struct pcb_pub *pub,
				 u32 rlen)
{
	struct pcb_sub *sub;
	int nr = 0;

	list_for_each_entry(sub, &t->subs, topic_node) {
		struct pcb_filter_prog *f = pcb_sub_filter(sub);
		bool wants = !f || pcb_filter_match(f, &pub->msg,
						    pcb_pub_ident(pub, sub->ring));

		sub->resv = NULL;
		sub->fate = wants ? PCB_FATE_WRITE : PCB_FATE_REJECT;
		nr += wants;
		if (wants && pcb_sub_is_reliable(sub) &&
		    !pcb_ring_has_room(sub->ring, PCB_REC_SIZE(rlen),
				       !pub->nonblock))
			return -EAGAIN;
	}
	return nr;
}

static void discard_reservations(struct pcb_topic *t, u32 rlen)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		if (sub->resv)
			pcb_ring_discard(sub->ring, sub->resv, rlen);
		sub->resv = NULL;
	}
}

/*
 * Step 2: reliable rings first, then lossy ones (@reliable false), so that
 * a reliable ring found full since step 1 leaves discard records in as few
 * rings as can be.
 */
static int reserve_each(struct pcb_topic *t, const struct pcb_pub *pub,
			u32 rlen, bool reliable_pass)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		bool reliable = pcb_sub_is_reliable(sub);

		if (sub->fate != PCB_FATE_WRITE || reliable != reliable_pass)
			continue;
		sub->resv = pcb_ring_reserve(sub->ring, rlen,
					     reliable && !pub->nonblock);
		if (sub->resv)
			continue;
		if (pcb_ring_is_broken(sub->ring)) {
			sub->fate = PCB_FATE_SKIP;
			continue;
		}
		if (reliable) {
			discard_reservations(t, rlen);
			return -EAGAIN;
		}
		sub->fate = PCB_FATE_MISS;
	}
	return 0;
}

/* Step 3: count, trace, and write each record or hand it to @fan. */
static void write_all(struct pcb_topic *t, struct pcb_pub *pub,
		      struct fanout *fan, u32 rlen)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		pcb_sub_count(sub, 1, pub->seq, pub->fates);
		if (sub->resv) {
			const struct pcb_ident *id = pcb_pub_ident(pub, sub->ring);

			if (fan->slots) {
				struct fanout_slot *s = &fan->slots[fan->nr++];

				pcb_ring_get(sub->ring);
				s->ring = sub->ring;
				s->rec = sub->resv;
				s->id = *id;
			} else {
				pcb_record_write(sub->resv, t->id, pub, &pub->msg,
						 id, pub->msg_id, pub->seq);
				pcb_ring_commit(sub->resv, rlen);
			}
			sub->resv = NULL;
		}
		pcb_trace_fate(t, sub->ep_id, sub->fate, pub);
	}
}

/*
 * One attempt under topic->lock.  -EAGAIN: a reliable ring is full;
 * -ENOBUFS: @fan needs @fan->want slots.
 */
static int publish_locked(struct pcb_topic *t, struct pcb_pub *pub,
			  struct fanout *fan)
{
	u32 rlen = pcb_record_len(pub->hdr_len, pub->msg.len);
	int ret;

	if (t->dead)
		return -EIDRM;
	ret = decide_and_check_room(t, pub, rlen);
	if (ret < 0)
		return ret;
	/* Nothing reserved yet: a subscription more costs no one a discard. */
	if (fan->slots && ret > fan->cap) {
		fan->want = ret;
		return -ENOBUFS;
	}
	ret = reserve_each(t, pub, rlen, true);
	if (!ret)
		ret = reserve_each(t, pub, rlen, false);
	if (ret)
		return ret;

	pub->seq = ++t->seq;
	pub->msg_id = pcb_hlc_next_n(pub->bus, 1, pub->real_ns, pub->dep_max);
	write_all(t, pub, fan, rlen);
	return 0;
}

/*
 * Step 3 for a large message, without the lock: write, commit and wake
 * each pinned ring, then unpin it.  Needs nothing of the topic but its id
 * (@t may be NULL: it went away meanwhile).
 */
static void fanout_write(struct pcb_topic *t, u32 topic_id,
			 struct pcb_pub *pub, struct fanout *fan)
{
	u32 rlen = pcb_record_len(pub->hdr_len, pub->msg.len);
	unsigned int i;

	for (i = 0; i < fan->nr; i++) {
		struct fanout_slot *s = &fan->slots[i];

		pcb_record_write(s->rec, topic_id, pub, &pub->msg, &s->id,
				 pub->msg_id, pub->seq);
		pcb_ring_commit(s->rec, rlen);
		if (pcb_ring_wake_consumer(s->ring) && t) {
			pcb_stats_inc(t, PCB_CNT_WAKEUPS);
			trace_pcb_wakeup(t, s->ring->ep_id, pub->seq);
		}
		pcb_ring_put(s->ring);
	}
	fan->nr = 0;
}

/* Statistics and tracing of a publish. */
static void publish_account(struct pcb_topic *t, struct pcb_pub *pub)
{
	u64 ns;

	pub->commit_ts = pcb_clock_now();
	ns = pcb_account_publish(t, pub, 1, pub->msg.len);
	trace_pcb_publish(t, pub, ns);
}

/*
 * Step 3 of a large message, after the lock, which publish_once() dropped
 * with preemption kept off: the records stay BUSY, holding up their
 * consumers, only as long as the copies take, never while the publisher
 * is scheduled out (max_subscribers x max_msg_size bytes at most).  A
 * topic reference keeps @t for the statistics; when the topic is going
 * away (no handle, no subscription left) it gets none.  Ends the RCU
 * section publish_once() began.
 */
static void publish_fanout(struct pcb_topic *t, struct pcb_pub *pub,
			   struct fanout *fan)
	__releases(RCU)
{
	u32 topic_id = t->id;

	if (!refcount_inc_not_zero(&t->ref))
		t = NULL;
	rcu_read_unlock();
	fanout_write(t, topic_id, pub, fan);
	preempt_enable();
	if (t) {
		publish_account(t, pub);
		pcb_topic_put(t);
	}
}

/*
 * Publish once.  Returns 0, a negative errno, or -EAGAIN with *waitp set
 * to the topic (a reference taken) and *genp to its space generation read
 * before the attempt, for the caller to sleep on.
 */
static int publish_once(struct pcb_endpoint *ep, u32 handle,
			struct pcb_pub *pub, struct fanout *fan,
			struct pcb_topic **waitp, unsigned long *genp)
{
	struct pcb_topic *t;
	int ret;

	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (!t) {
		ret = -EBADF;
		goto out;
	}
	/* The handle may name another topic than when the copy was made. */
	if (pub->msg.len > t->max_msg_size) {
		ret = -EMSGSIZE;
		goto out;
	}

	*genp = atomic_long_read(&t->space_gen);
	/*
	 * The generation before the ring positions it stands for: pairs with
	 * the barrier before the increment in pcb_topic_kick_publishers().
	 */
	smp_rmb();

	/* A translation cached before a wait may name a freed namespace. */
	pub->id_pid_ns = NULL;
	pub->id_user_ns = NULL;
	spin_lock(&t->lock);
	ret = publish_locked(t, pub, fan);
	if (!ret && fan->nr)
		preempt_disable();	/* see publish_fanout() */
	spin_unlock(&t->lock);

	if (!ret && fan->nr) {
		publish_fanout(t, pub, fan);
		return 0;
	}
	if (!ret) {
		publish_account(t, pub);
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

/* --- runs of a plain batch ----------------------------------------------- */

/* pcb_sub.run_accept has a bit for each message of a run. */
static_assert(PCB_RUN_MAX <= 16);

/*
 * A run goes ring by ring unless a tracepoint wants to see each message
 * and its fate in each ring: then message by message.
 */
static bool run_traced(void)
{
	return trace_pcb_publish_enabled() || trace_pcb_deliver_enabled() ||
	       trace_pcb_drop_enabled() || trace_pcb_filter_reject_enabled();
}

/*
 * Step 1 for a whole run: each filter on each message, and the bytes of
 * the records each ring takes.  False when a reliable ring that takes
 * some has no room for all of them: the run then goes message by
 * message, each waiting or failing on its own.
 */
static bool run_decide(struct pcb_topic *t, struct pcb_pub *pub,
		       const struct pcb_msg *msgs, u32 n)
{
	struct pcb_sub *sub;
	u32 k;

	list_for_each_entry(sub, &t->subs, topic_node) {
		struct pcb_filter_prog *f = pcb_sub_filter(sub);

		sub->resv = NULL;
		sub->run_accept = 0;
		sub->run_bytes = 0;
		for (k = 0; k < n; k++) {
			if (f && !pcb_filter_match(f, &msgs[k],
						   pcb_pub_ident(pub, sub->ring)))
				continue;
			sub->run_accept |= BIT(k);
			sub->run_bytes += PCB_REC_SIZE(pcb_record_len(pub->hdr_len,
								      msgs[k].len));
		}
		if (sub->run_accept && pcb_sub_is_reliable(sub) &&
		    !pcb_ring_has_room(sub->ring, sub->run_bytes, false))
			return false;
	}
	return true;
}

static void run_discard(struct pcb_topic *t)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		if (sub->resv)
			pcb_ring_discard(sub->ring, sub->resv, sub->run_bytes);
		sub->resv = NULL;
	}
}

/*
 * Step 2 for a whole run: one chunk in each ring for all the records it
 * takes, reliable rings first.  A reliable ring found full since step 1
 * turns the chunks into discard records, and the run goes message by
 * message.  A lossy ring without room for its chunk gets no chunk: its
 * messages are reserved one by one in step 3, each missed if it does not
 * fit, as single publishes would be.
 */
static bool run_reserve(struct pcb_topic *t)
{
	struct pcb_sub *sub;

	list_for_each_entry(sub, &t->subs, topic_node) {
		if (!sub->run_accept || !pcb_sub_is_reliable(sub))
			continue;
		sub->resv = pcb_ring_reserve(sub->ring, sub->run_bytes, false);
		if (!sub->resv && !pcb_ring_is_broken(sub->ring)) {
			run_discard(t);
			return false;
		}
	}
	list_for_each_entry(sub, &t->subs, topic_node)
		if (sub->run_accept && !pcb_sub_is_reliable(sub) &&
		    sub->run_bytes <= sub->ring->size)
			sub->resv = pcb_ring_reserve(sub->ring, sub->run_bytes,
						     false);
	return true;
}

/*
 * Step 3 for one ring: @msg, which the ring's filter takes, written at
 * *@pos in its chunk (BUSY: the chunk is committed once complete), or, for
 * a lossy ring without a chunk, reserved, written and committed on its
 * own.  Returns its fate.
 */
static enum pcb_fate run_write_one(struct pcb_topic *t, struct pcb_sub *sub,
				   const struct pcb_pub *pub,
				   const struct pcb_msg *msg,
				   const struct pcb_ident *id,
				   const struct pcb_run_out *out, void **pos)
{
	u32 rlen = pcb_record_len(pub->hdr_len, msg->len);
	struct pcb_record *rec = *pos;

	if (rec) {
		WRITE_ONCE(rec->len, rlen | PCB_REC_BUSY);
		pcb_record_write(rec, t->id, pub, msg, id, out->msg_id,
				 out->seq);
		*pos += PCB_REC_SIZE(rlen);
		return PCB_FATE_WRITE;
	}
	if (pcb_sub_is_reliable(sub) || pcb_ring_is_broken(sub->ring))
		return PCB_FATE_SKIP;	/* no chunk: the ring broke */
	rec = pcb_ring_reserve(sub->ring, rlen, false);
	if (!rec)
		return pcb_ring_is_broken(sub->ring) ? PCB_FATE_SKIP :
						       PCB_FATE_MISS;
	pcb_record_write(rec, t->id, pub, msg, id, out->msg_id, out->seq);
	pcb_ring_commit(rec, rlen);
	return PCB_FATE_WRITE;
}

/* Commit a ring's chunk, record by record, in order. */
static void run_commit_chunk(struct pcb_sub *sub, const struct pcb_pub *pub,
			     const struct pcb_msg *msgs, u32 n)
{
	void *pos = sub->resv;
	u32 k;

	for (k = 0; k < n; k++) {
		u32 rlen = pcb_record_len(pub->hdr_len, msgs[k].len);

		if (!(sub->run_accept & BIT(k)))
			continue;
		pcb_ring_commit(pos, rlen);
		pos += PCB_REC_SIZE(rlen);
	}
	WARN_ON_ONCE(pos != (void *)sub->resv + sub->run_bytes);
	sub->resv = NULL;
}

/*
 * Step 3 for one ring: every message of the run, counted by fate (and
 * added to @fates, as in struct pcb_pub).
 */
static void run_write_ring(struct pcb_topic *t, struct pcb_sub *sub,
			   struct pcb_pub *pub, const struct pcb_msg *msgs,
			   u32 n, const struct pcb_run_out *out, u32 *fates)
{
	const struct pcb_ident *id = pcb_pub_ident(pub, sub->ring);
	u32 nr[ARRAY_SIZE(pub->fates)] = { };
	void *pos = sub->resv;
	u64 last_seq = 0;
	u32 k, f;

	for (k = 0; k < n; k++) {
		f = PCB_FATE_REJECT;
		if (sub->run_accept & BIT(k))
			f = run_write_one(t, sub, pub, &msgs[k], id, &out[k],
					  &pos);
		nr[f]++;
		if (f == PCB_FATE_WRITE)
			last_seq = out[k].seq;
	}
	if (sub->resv)
		run_commit_chunk(sub, pub, msgs, n);
	for (f = 0; f < ARRAY_SIZE(nr); f++) {
		if (!nr[f])
			continue;
		sub->fate = f;
		pcb_sub_count(sub, nr[f], last_seq, fates);
	}
}

/*
 * A whole run under topic->lock, ring by ring: one room check, one
 * reservation and one pass per ring for all @n messages, one id range.
 * Returns false, with nothing reserved or numbered, when the run must go
 * message by message.  The fates of all are added to @fates.
 */
static bool run_locked(struct pcb_topic *t, struct pcb_pub *pub,
		       const struct pcb_msg *msgs, u32 n,
		       struct pcb_run_out *out, u32 *fates)
{
	struct pcb_sub *sub;
	u64 id0, seq0;
	u32 k;

	if (t->dead || run_traced())
		return false;
	for (k = 0; k < n; k++)
		if (msgs[k].len > t->max_msg_size)
			return false;
	if (!run_decide(t, pub, msgs, n) || !run_reserve(t))
		return false;

	seq0 = t->seq + 1;
	t->seq += n;
	id0 = pcb_hlc_next_n(pub->bus, n, pub->real_ns, pub->dep_max);
	for (k = 0; k < n; k++) {
		out[k].msg_id = id0 + k;
		out[k].seq = seq0 + k;
	}
	list_for_each_entry(sub, &t->subs, topic_node)
		run_write_ring(t, sub, pub, msgs, n, out, fates);
	return true;
}

/*
 * Trace one message of a run, under the topic lock: the cost each one
 * reports runs from the call's entry to its own commit.
 */
static void run_trace(struct pcb_topic *t, struct pcb_pub *pub)
{
	if (!trace_pcb_publish_enabled())
		return;
	pub->commit_ts = pcb_clock_now();
	trace_pcb_publish(t, pub, pcb_clock_ns(pub->commit_ts - pub->tsc));
}

/*
 * A run message by message, each as by publish_locked(), up to the first
 * that cannot go out at once.  Returns how many went; their fates are
 * added to @fates, their bytes to *@bytes.
 */
static u32 run_each_locked(struct pcb_topic *t, struct pcb_pub *pub,
			   const struct pcb_msg *msgs, u32 n,
			   struct pcb_run_out *out, u32 *fates, u64 *bytes)
{
	struct fanout fan = { };	/* no slots: written under the lock */
	u32 i, f;

	for (i = 0; i < n; i++) {
		if (msgs[i].len > t->max_msg_size)
			break;
		pub->msg = msgs[i];
		memset(pub->fates, 0, sizeof(pub->fates));
		if (publish_locked(t, pub, &fan))
			break;
		run_trace(t, pub);
		out[i].msg_id = pub->msg_id;
		out[i].seq = pub->seq;
		for (f = 0; f < ARRAY_SIZE(pub->fates); f++)
			fates[f] += pub->fates[f];
		*bytes += msgs[i].len;
	}
	return i;
}

/*
 * Publish @msgs, up to PCB_RUN_MAX small messages (each at most
 * PCB_PAYLOAD_INLINE bytes, already copied into kernel memory), through
 * @handle, as a plain batch's run of entries to one topic: one handle
 * lookup, one hold of the topic lock, one statistics update and one
 * wake-up pass for them all; and when every reliable ring has room for
 * all of them (and no tracepoint is on), one reservation per ring, one
 * pass over the subscriptions and one id range too.  The topic's order
 * and every guarantee are those of single publishes.
 *
 * Returns how many went out, 0 to @n, their ids and sequence numbers in
 * @out.  The run stops at the first message that cannot go out at once
 * (a bad handle, too long, a reliable ring full, the topic gone): the
 * caller publishes that one with pcb_publish_one(), which gives it its
 * error or its wait.  Under the lock: @n times the work of one small
 * publish.
 */
u32 pcb_publish_run(struct pcb_endpoint *ep, u32 handle, struct pcb_pub *pub,
		    const struct pcb_msg *msgs, u32 n, struct pcb_run_out *out)
{
	u32 fates[ARRAY_SIZE(pub->fates)] = { };
	struct pcb_topic *t;
	u64 bytes = 0;
	u32 done = 0, k;

	if (WARN_ON_ONCE(n > PCB_RUN_MAX))
		return 0;
	for (k = 0; k < n; k++)
		if (WARN_ON_ONCE(msgs[k].len > PCB_PAYLOAD_INLINE))
			return 0;
	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (!t)
		goto out;
	pub->id_pid_ns = NULL;
	pub->id_user_ns = NULL;
	spin_lock(&t->lock);
	if (run_locked(t, pub, msgs, n, out, fates)) {
		for (k = 0; k < n; k++)
			bytes += msgs[k].len;
		done = n;
	} else {
		done = run_each_locked(t, pub, msgs, n, out, fates, &bytes);
	}
	spin_unlock(&t->lock);
	if (done) {
		memcpy(pub->fates, fates, sizeof(fates));
		pub->commit_ts = pcb_clock_now();
		pcb_account_publish(t, pub, done, bytes);
		pcb_topic_wake_consumers(t, out[0].seq);
	}
out:
	rcu_read_unlock();
	return done;
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

/* The topic's largest message and subscriptions, or -EBADF. */
/*
 * The checks of @handle and @len that come before the payload is copied:
 * EBADF, EMSGSIZE, else 0 and the topic's subscription count.
 */
static int handle_check(struct pcb_endpoint *ep, u32 handle, u32 len,
			unsigned int *nr_subs)
{
	struct pcb_topic *t;
	int ret = -EBADF;

	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (t) {
		*nr_subs = READ_ONCE(t->nr_subs);
		ret = len > t->max_msg_size ? -EMSGSIZE : 0;
	}
	rcu_read_unlock();
	return ret;
}

/* Room in @fan for @nr rings; the old slots go (none is in use). */
static int fanout_grow(struct fanout *fan, unsigned int nr)
{
	kfree(fan->slots);
	fan->cap = max(nr, 4U);
	fan->slots = kmalloc_array(fan->cap, sizeof(*fan->slots),
				   GFP_KERNEL_ACCOUNT);
	return fan->slots ? 0 : -ENOMEM;
}

/*
 * The copy of the payload, for publish_once() to publish.  A large one is
 * copied only once the handle and the length are known good (the copy is
 * as large as the length says); a small one goes to the stack at once,
 * and publish_once() checks both as it looks the handle up: one lookup.
 * The errors the handle and the length would have given still come
 * before EFAULT.
 */
static int stage_payload(struct pcb_endpoint *ep, u32 handle,
			 struct pcb_pub *pub, const struct pcb_src *src,
			 struct pcb_stage *stage, struct fanout *fan)
{
	unsigned int nr_subs;
	int ret;

	if (pub->msg.len <= PCB_PAYLOAD_INLINE) {
		ret = pcb_stage_copy(stage, &pub->msg, src);
		if (ret == -EFAULT)
			ret = handle_check(ep, handle, pub->msg.len,
					   &nr_subs) ?: ret;
		return ret;
	}
	ret = handle_check(ep, handle, pub->msg.len, &nr_subs);
	if (!ret)
		ret = pcb_stage_copy(stage, &pub->msg, src);
	if (!ret)
		ret = fanout_grow(fan, nr_subs);
	return ret;
}

/*
 * One attempt with a copy of the payload made for it: 0, an errno, or
 * -EAGAIN with *@waitp and *@genp set as by publish_once().
 */
static int publish_attempt(struct pcb_endpoint *ep, u32 handle,
			   struct pcb_pub *pub, const struct pcb_src *src,
			   struct pcb_topic **waitp, unsigned long *genp)
{
	struct fanout fan = { };
	/* Read only as far as the copy wrote: see PCB_NOINIT. */
	struct pcb_stage stage PCB_NOINIT;
	int ret;

	stage.heap = NULL;	/* for pcb_stage_free() whatever happens */

	ret = stage_payload(ep, handle, pub, src, &stage, &fan);
	while (!ret) {
		ret = publish_once(ep, handle, pub, &fan, waitp, genp);
		if (ret != -ENOBUFS)
			break;
		ret = fanout_grow(&fan, fan.want);
	}
	/* Only large messages have slots: no call for the others. */
	if (unlikely(fan.slots))
		kfree(fan.slots);
	pcb_stage_free(&stage);
	return ret;
}

/*
 * Publish @pub, whose payload @src holds, through @handle, waiting for
 * room until @call's deadline (pcb_call_when()) unless pub->nonblock.  A
 * publisher that waits holds no copy of its payload: each attempt makes
 * its own, so that waiting costs the kernel nothing but the sleeping
 * thread.
 */
int pcb_publish_one(struct pcb_endpoint *ep, u32 handle, struct pcb_pub *pub,
		    const struct pcb_src *src, struct pcb_call *call)
{
	int blocked = 0;
	int ret;

	for (;;) {
		struct pcb_topic *wait_topic = NULL;
		unsigned long gen;

		ret = publish_attempt(ep, handle, pub, src, &wait_topic, &gen);
		if (!wait_topic)
			return ret;

		if (!blocked++)
			pcb_account_block(wait_topic, pub->msg.len);
		ret = pcb_wait_for_room(wait_topic, gen, pcb_call_when(call));
		if (ret == -ETIMEDOUT)
			pcb_account_timeout(wait_topic, pub);
		pcb_topic_put(wait_topic);
		if (ret)
			return ret;
	}
}

/*
 * Write @args' out words (msg_id, seq: adjacent, see the static_assert)
 * to @arg, and nothing else of it: the rest the caller wrote and still
 * has.  In words, as pcb_copy_out_small() says why.
 */
static int publish_result(void __user *arg, const struct pcb_publish *args)
{
	size_t off = offsetof(struct pcb_publish, msg_id);

	return pcb_copy_out_small(arg + off, &args->msg_id,
				  2 * sizeof(args->msg_id));
}

int pcb_publish(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_call call = { .cmd = PCB_IOC_PUBLISH, .arg = arg };
	struct pcb_publish args PCB_NOINIT;
	u64 deps[PCB_MAX_DEPS] PCB_NOINIT;
	struct pcb_src src = { };
	struct pcb_pub pub PCB_NOINIT;
	int ret;

	pcb_pub_init(&pub, ep);
	if (pcb_copy_in_small(&args, arg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~PCB_PUB_FLAGS_ALL || args.reserved[0])
		return -EINVAL;
	ret = pcb_pub_deps(&pub, deps, args.deps, args.nr_deps);
	if (ret)
		return ret;

	/* As pcb_probe_out(), of the out words only (publish_result()). */
	ret = publish_result(arg, &args);
	if (ret)
		return ret;

	src.uptr = u64_to_user_ptr(args.payload);
	pub.msg.len = args.len;
	pub.msg.key = args.key;
	pub.nonblock = args.flags & PCB_PUB_NONBLOCK;
	call.timeout_ns = args.timeout_ns;
	pcb_call_begin(ep, &call);
	ret = pcb_publish_one(ep, args.handle, &pub, &src, &call);
	if (ret)
		return pcb_call_end(ep, &call, ret);

	args.msg_id = pub.msg_id;
	args.seq = pub.seq;
	return publish_result(arg, &args);
}
