// SPDX-License-Identifier: GPL-2.0
/*
 * PCB_IOC_PUBLISH_BATCH: many messages in one system call.
 *
 * Without PCB_PUB_ATOMIC a batch is a loop of single publishes sharing one
 * deadline, each entry getting its own result.
 *
 * With PCB_PUB_ATOMIC all entries are published or none, even across
 * topics.  The topics' locks are all taken (in id order, at most
 * PCB_BATCH_ATOMIC_TOPICS of them), then each subscription to a topic of
 * the batch gets one reservation in its ring, a *chunk*, big enough for
 * all of that topic's records its filter wants.  Records inside a chunk
 * are written BUSY before the one in front of them is committed, so a
 * consumer never reads past a record that is not complete.  When a
 * reliable ring has no room for its chunk, or a payload cannot be read,
 * every chunk becomes one DISCARD record and nothing is published: no
 * sequence number is taken.
 */
#include <linux/pagemap.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

#define PCB_BATCH_RETRIES	16

struct batch_topic {
	struct pcb_topic *t;		/* a reference */
	u32 total;			/* bytes of all its records */
	u32 nr;				/* its entries */
	u32 done;			/* entries written so far */
	u64 bytes;			/* payload bytes of its entries */
	u64 first_seq;			/* of its first record, once published */
	u32 fates[PCB_FATE_SKIP + 1];	/* as in struct pcb_pub */
	unsigned long gen;		/* t->space_gen before the attempt */
};

struct batch {
	struct pcb_batch_entry __user *uents;
	u32 count;
	bool nonblock;
	struct pcb_pub pub;		/* what every entry has in common */
	u64 deps[PCB_MAX_DEPS];
	unsigned int nr_topics;
	struct batch_topic topics[PCB_BATCH_ATOMIC_TOPICS];
	int full;			/* index of a topic with a full ring */
	u32 bad;			/* the entry that failed validation */
};

static int check_batch(const struct pcb_publish_batch *args)
{
	if (args->flags & ~PCB_BATCH_FLAGS_ALL || args->reserved[0])
		return -EINVAL;
	if (!args->count || args->count > PCB_BATCH_MAX)
		return -EINVAL;
	return 0;
}

static int put_result(struct pcb_batch_entry __user *ue, int result,
		      u64 msg_id, u64 seq)
{
	if (put_user(result, &ue->result) || put_user(msg_id, &ue->msg_id) ||
	    put_user(seq, &ue->seq))
		return -EFAULT;
	return 0;
}

static noinline_for_stack int publish_each(struct pcb_endpoint *ep,
					   struct batch *b, ktime_t deadline,
					   u32 *published)
{
	struct pcb_batch_entry e;
	u32 i;
	int ret = 0;

	/*
	 * Every result must be writable before the first message goes out,
	 * else a caller could get EFAULT for messages that went.  Not
	 * fault_in_writeable(): that one writes zeroes into the pages.
	 */
	if (fault_in_safe_writeable((const char __user *)b->uents,
				    (size_t)b->count * sizeof(e)))
		return -EFAULT;

	for (i = 0; i < b->count; i++) {
		struct pcb_pub pub = b->pub;

		pub.nonblock = b->nonblock;
		if (ret != -EINTR) {
			if (copy_from_user(&e, &b->uents[i], sizeof(e)))
				return -EFAULT;
			pub.payload = u64_to_user_ptr(e.payload);
			pub.len = e.len;
			pub.key = e.key;
			ret = e.flags ? -EINVAL :
			      pcb_publish_one(ep, e.handle, &pub, deadline);
			/* Nothing went out yet: the whole call can restart. */
			if (!*published &&
			    pcb_restartable(ret) == -ERESTARTNOHAND)
				return -ERESTARTNOHAND;
		}
		if (put_result(&b->uents[i], ret, pub.msg_id, pub.seq))
			return -EFAULT;
		*published += !ret;
	}
	return 0;
}

/* Atomic batches: validation, outside every lock. */

static struct batch_topic *batch_topic_of(struct batch *b, struct pcb_topic *t)
{
	unsigned int i;

	for (i = 0; i < b->nr_topics; i++)
		if (b->topics[i].t == t)
			return &b->topics[i];
	return NULL;
}

static void batch_put_topics(struct batch *b)
{
	while (b->nr_topics)
		pcb_topic_put(b->topics[--b->nr_topics].t);
}

/* Find or add the topic behind @handle, a reference taken. */
static struct batch_topic *batch_add_handle(struct pcb_endpoint *ep,
					    struct batch *b, u32 handle)
{
	struct batch_topic *bt = ERR_PTR(-EBADF);
	struct pcb_topic *t;

	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (!t)
		goto out;
	bt = batch_topic_of(b, t);
	if (bt)
		goto out;
	bt = ERR_PTR(-E2BIG);
	if (b->nr_topics == PCB_BATCH_ATOMIC_TOPICS ||
	    !refcount_inc_not_zero(&t->ref))
		goto out;
	bt = &b->topics[b->nr_topics++];
	memset(bt, 0, sizeof(*bt));
	bt->t = t;
out:
	rcu_read_unlock();
	return bt;
}

static int batch_add_entry(struct pcb_endpoint *ep, struct batch *b,
			   const struct pcb_batch_entry *e)
{
	u32 rlen = pcb_record_len(b->pub.hdr_len, e->len);

	struct batch_topic *bt;

	if (e->flags)
		return -EINVAL;
	bt = batch_add_handle(ep, b, e->handle);
	if (IS_ERR(bt))
		return PTR_ERR(bt);
	if (e->len > bt->t->max_msg_size)
		return -EMSGSIZE;
	if (e->len && fault_in_readable(u64_to_user_ptr(e->payload), e->len))
		return -EFAULT;
	bt->total += PCB_REC_SIZE(rlen);
	bt->bytes += e->len;
	bt->nr++;
	return 0;
}

static void batch_sort_topics(struct batch *b)
{
	unsigned int i, j;

	/* Lock order between topics: ascending id. */
	for (i = 1; i < b->nr_topics; i++)
		for (j = i; j && b->topics[j - 1].t->id > b->topics[j].t->id; j--)
			swap(b->topics[j - 1], b->topics[j]);
}

/*
 * Check every entry, take a reference on each topic and fault in every
 * page the locked part will touch.  On an entry's error, b->bad says which.
 */
static int batch_prepare(struct pcb_endpoint *ep, struct batch *b)
{
	struct pcb_batch_entry e;
	size_t size = (size_t)b->count * sizeof(e);
	int ret;

	b->bad = b->count;
	/* Not fault_in_writeable(): that one writes zeroes into the pages. */
	if (fault_in_safe_writeable((const char __user *)b->uents, size))
		return -EFAULT;
	for (b->bad = 0; b->bad < b->count; b->bad++) {
		if (copy_from_user(&e, &b->uents[b->bad], sizeof(e)))
			return -EFAULT;
		ret = batch_add_entry(ep, b, &e);
		if (ret)
			return ret;
	}
	batch_sort_topics(b);
	return 0;
}

/* Atomic batches: the locked part. */

static void batch_lock(struct batch *b)
{
	unsigned int i;

	for (i = 0; i < b->nr_topics; i++) {
		b->topics[i].gen = atomic_long_read(&b->topics[i].t->space_gen);
		/* As in publish_once(): the generation before the rings. */
		smp_rmb();
		/* Ascending topic id: see batch_sort_topics(). */
		spin_lock_nested(&b->topics[i].t->lock, i);
		/* Sparse cannot count locks taken in a loop; batch_unlock() pairs. */
		__release(&b->topics[i].t->lock);
	}
}

static void batch_unlock(struct batch *b)
{
	unsigned int i = b->nr_topics;

	while (i--) {
		__acquire(&b->topics[i].t->lock);	/* see batch_lock() */
		spin_unlock(&b->topics[i].t->lock);
	}
}

static void batch_discard(struct batch *b)
{
	struct batch_topic *bt;
	struct pcb_sub *sub;

	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++) {
		list_for_each_entry(sub, &bt->t->subs, topic_node) {
			if (sub->resv)
				pcb_ring_discard(sub->resv, sub->chunk);
			sub->resv = NULL;
		}
	}
}

/*
 * Entry @i again, read with faults disabled (everything was faulted in),
 * and its topic.  Another thread may have closed or reused the handle, or
 * changed the entry, since batch_prepare(): then -EFAULT, to start over
 * rather than write past a chunk.
 */
static struct batch_topic *batch_reread(struct pcb_endpoint *ep,
					struct batch *b, u32 i,
					struct pcb_batch_entry *e,
					struct pcb_pub *pub)
{
	struct batch_topic *bt;

	if (copy_from_user_nofault(e, &b->uents[i], sizeof(*e)))
		return NULL;
	bt = batch_topic_of(b, xa_load(&ep->handles, e->handle));
	if (!bt || e->len > bt->t->max_msg_size || e->flags)
		return NULL;
	*pub = b->pub;
	pub->payload = u64_to_user_ptr(e->payload);
	pub->len = e->len;
	pub->key = e->key;
	return bt;
}

static u32 batch_rec_size(const struct pcb_pub *pub)
{
	return PCB_REC_SIZE(pcb_record_len(pub->hdr_len, pub->len));
}

/*
 * Step 1: how many of its topic's records each subscription's filter
 * wants, and so how big its chunk is.  Returns whether any has a filter.
 */
static bool batch_size_unfiltered(struct batch *b)
{
	struct batch_topic *bt;
	struct pcb_sub *sub;
	bool filters = false;

	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++) {
		list_for_each_entry(sub, &bt->t->subs, topic_node) {
			sub->resv = NULL;
			sub->fate = PCB_FATE_WRITE;
			sub->chunk = sub->filter ? 0 : bt->total;
			sub->nr_in = sub->filter ? 0 : bt->nr;
			filters |= !!sub->filter;
		}
	}
	return filters;
}

static int batch_size_filtered(struct pcb_endpoint *ep, struct batch *b)
{
	struct batch_topic *bt;
	struct pcb_batch_entry e;
	struct pcb_sub *sub;
	struct pcb_pub pub;
	u32 i;
	int ret;

	for (i = 0; i < b->count; i++) {
		bt = batch_reread(ep, b, i, &e, &pub);
		if (!bt)
			return -EFAULT;
		list_for_each_entry(sub, &bt->t->subs, topic_node) {
			if (!sub->filter)
				continue;
			ret = pcb_filter_match(sub->filter, &pub);
			if (ret < 0)
				return ret;
			sub->chunk += ret ? batch_rec_size(&pub) : 0;
			sub->nr_in += ret;
		}
	}
	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++)
		list_for_each_entry(sub, &bt->t->subs, topic_node)
			if (!sub->nr_in)
				sub->fate = PCB_FATE_REJECT;
	return 0;
}

/*
 * Bytes the batch needs in @sub's ring: the chunks of every subscription
 * of the ring to a topic of the batch.  The endpoint's list is walked
 * under RCU (the caller holds rcu_read_lock()); the chunks of the batch's
 * topics are stable under their locks, which the caller holds.
 */
static u64 batch_ring_total(struct batch *b, struct pcb_sub *sub)
{
	struct pcb_sub *s;
	u64 total = 0;

	list_for_each_entry_rcu(s, &sub->ep->subs, ep_node)
		if (batch_topic_of(b, s->topic))
			total += s->chunk;
	return total;
}

/* Step 2: room for the chunks in every reliable ring?  Nothing reserved. */
static int batch_check_room(struct batch *b, struct batch_topic *bt)
{
	struct pcb_sub *sub;

	if (bt->t->dead)
		return -EIDRM;
	list_for_each_entry(sub, &bt->t->subs, topic_node) {
		if (sub->fate != PCB_FATE_WRITE || !pcb_sub_is_reliable(sub) ||
		    pcb_ring_is_broken(sub->ring))
			continue;
		/* However empty the ring, the batch would never fit. */
		if (batch_ring_total(b, sub) > sub->ring->size)
			return -E2BIG;
		if (!pcb_ring_has_room(sub->ring, sub->chunk, !b->nonblock))
			return -EAGAIN;
	}
	return 0;
}

/* Step 3: one reservation, a chunk, per ring, BUSY, for all its records. */
static int batch_reserve_topic(struct batch_topic *bt)
{
	struct pcb_sub *sub;

	bt->done = 0;
	list_for_each_entry(sub, &bt->t->subs, topic_node) {
		if (sub->fate != PCB_FATE_WRITE)
			continue;
		if (pcb_ring_is_broken(sub->ring)) {
			sub->fate = PCB_FATE_SKIP;
			continue;
		}
		sub->resv = pcb_ring_reserve(sub->ring, sub->chunk);
		sub->cursor = sub->resv;
		if (sub->resv)
			continue;
		if (!pcb_ring_is_broken(sub->ring) && pcb_sub_is_reliable(sub))
			return -EAGAIN;
		/* Broken by the reservation itself, or lossy and full. */
		sub->fate = pcb_ring_is_broken(sub->ring) ? PCB_FATE_SKIP :
							    PCB_FATE_MISS;
	}
	return 0;
}

static int batch_reserve(struct pcb_endpoint *ep, struct batch *b)
{
	unsigned int i;
	int ret;

	if (batch_size_unfiltered(b)) {
		ret = batch_size_filtered(ep, b);
		if (ret)
			return ret;
	}
	for (i = 0; i < b->nr_topics; i++) {
		b->full = i;
		ret = batch_check_room(b, &b->topics[i]);
		if (ret)
			return ret;
	}
	for (i = 0; i < b->nr_topics; i++) {
		b->full = i;
		ret = batch_reserve_topic(&b->topics[i]);
		if (ret) {
			batch_discard(b);
			return ret;
		}
	}
	return 0;
}

/*
 * Write one record for @sub at its cursor: the payload from the caller
 * into the first ring that wants it (*@src), from there into the others.
 */
static int batch_write_record(struct pcb_sub *sub, const struct pcb_pub *pub,
			      struct pcb_record **src)
{
	struct pcb_record *rec = sub->cursor;
	u32 size = batch_rec_size(pub);

	if (sub->cursor + size > (void *)sub->resv + sub->chunk)
		return -EFAULT;		/* the filter changed its mind */
	if (!*src) {
		if (pub->len && copy_from_user_nofault((void *)rec + pub->hdr_len,
						       pub->payload, pub->len))
			return -EFAULT;
		*src = rec;
	} else {
		memcpy((void *)rec + pub->hdr_len, (void *)*src + pub->hdr_len,
		       pub->len);
	}
	/* Not visible until the record in front of it is committed. */
	WRITE_ONCE(rec->len, pcb_record_len(pub->hdr_len, pub->len) | PCB_REC_BUSY);
	pcb_record_fill(rec, sub->topic, pub);
	sub->cursor += size;
	return 0;
}

/* Step 4: entry @i into every ring that wants it, and its result. */
static int batch_write_entry(struct pcb_endpoint *ep, struct batch *b, u32 i,
			     u64 msg_id)
{
	struct pcb_record *src = NULL;
	struct pcb_batch_entry e;
	struct batch_topic *bt;
	struct pcb_sub *sub;
	struct pcb_pub pub;
	int ret;

	bt = batch_reread(ep, b, i, &e, &pub);
	if (!bt || bt->done == bt->nr)
		return -EFAULT;
	pub.msg_id = msg_id;
	pub.seq = bt->t->seq + 1 + bt->done++;

	list_for_each_entry(sub, &bt->t->subs, topic_node) {
		if (!sub->resv)
			continue;
		ret = pcb_sub_wants(sub, &pub);
		if (ret > 0)
			ret = batch_write_record(sub, &pub, &src);
		if (ret < 0)
			return ret;
	}

	e.result = 0;
	e.msg_id = pub.msg_id;
	e.seq = pub.seq;
	return copy_to_user_nofault(&b->uents[i], &e, sizeof(e)) ? -EFAULT : 0;
}

/* Trace the fate of entry @pub for @sub, once published; return it. */
static enum pcb_fate batch_trace_sub(struct pcb_sub *sub,
				     const struct pcb_pub *pub)
{
	enum pcb_fate fate = sub->fate;

	/* The subscription's fate covers the chunk; its filter, the entry. */
	if (fate != PCB_FATE_SKIP && pcb_sub_wants(sub, pub) == 0)
		sub->fate = PCB_FATE_REJECT;
	pcb_trace_fate(sub, pub);
	swap(fate, sub->fate);
	return fate;
}

/*
 * Tracing only: one pcb_publish event per entry and one event per
 * subscription and entry, as for single publishes.  Entries are read
 * again, with faults disabled: everything is faulted in still.
 */
static void batch_trace(struct pcb_endpoint *ep, struct batch *b, u64 id0)
{
	struct pcb_batch_entry e;
	struct batch_topic *bt;
	struct pcb_sub *sub;
	struct pcb_pub pub;
	u64 ns;
	u32 i;

	if (!trace_pcb_publish_enabled() && !trace_pcb_deliver_enabled() &&
	    !trace_pcb_drop_enabled() && !trace_pcb_filter_reject_enabled())
		return;
	ns = pcb_clock_ns(b->pub.commit_ts - b->pub.tsc);
	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++)
		bt->done = 0;
	for (i = 0; i < b->count; i++) {
		bt = batch_reread(ep, b, i, &e, &pub);
		if (!bt)
			return;
		pub.msg_id = id0 + i;
		pub.seq = bt->first_seq + bt->done++;
		pub.commit_ts = b->pub.commit_ts;
		pub.fates[PCB_FATE_WRITE] = 0;
		list_for_each_entry(sub, &bt->t->subs, topic_node)
			pub.fates[PCB_FATE_WRITE] +=
				batch_trace_sub(sub, &pub) == PCB_FATE_WRITE;
		trace_pcb_publish(bt->t, &pub, ns);
	}
}

/* Commit the records of one chunk in order. */
static void commit_chunk(struct pcb_record *chunk, u32 total)
{
	void *pos = chunk;
	void *end = pos + total;

	while (pos < end) {
		struct pcb_record *rec = pos;
		u32 rlen = pcb_record_len(rec->hdr_len, rec->payload_len);

		pos += PCB_REC_SIZE(rlen);
		pcb_ring_commit(rec, rlen);
	}
}

static void batch_commit(struct batch *b)
{
	struct batch_topic *bt;
	struct pcb_sub *sub;

	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++) {
		u64 last = bt->t->seq + bt->nr;

		list_for_each_entry(sub, &bt->t->subs, topic_node) {
			if (sub->fate != PCB_FATE_SKIP) {
				sub->rejected += bt->nr - sub->nr_in;
				bt->fates[PCB_FATE_REJECT] += bt->nr - sub->nr_in;
			}
			if (sub->fate != PCB_FATE_REJECT)
				pcb_sub_count(sub, sub->nr_in, last, bt->fates);
			if (!sub->resv)
				continue;
			commit_chunk(sub->resv, sub->chunk);
			sub->resv = NULL;
		}
		bt->first_seq = bt->t->seq + 1;
		bt->t->seq = last;
	}
}

/* Every chunk filled exactly, as counted before? */
static bool batch_complete(struct batch *b)
{
	struct batch_topic *bt;
	struct pcb_sub *sub;

	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++) {
		if (bt->done != bt->nr)
			return false;
		list_for_each_entry(sub, &bt->t->subs, topic_node)
			if (sub->resv &&
			    sub->cursor != (void *)sub->resv + sub->chunk)
				return false;
	}
	return true;
}

static int batch_publish_locked(struct pcb_endpoint *ep, struct batch *b)
{
	int ret;
	u64 id0;
	u32 i;

	ret = batch_reserve(ep, b);
	if (ret)
		return ret;

	id0 = pcb_hlc_next_n(b->count);
	for (i = 0; i < b->count && !ret; i++)
		ret = batch_write_entry(ep, b, i, id0 + i);
	if (!ret && !batch_complete(b))
		ret = -EFAULT;	/* entries changed under us: start over */
	if (ret) {
		batch_discard(b);
		return ret;
	}
	batch_commit(b);
	b->pub.commit_ts = pcb_clock_now();
	batch_trace(ep, b, id0);
	return 0;
}

/* Statistics and wake-ups, after the locks are dropped. */
static void batch_account_and_wake(struct batch *b)
{
	struct batch_topic *bt;
	struct pcb_pub pub = b->pub;

	rcu_read_lock();
	for (bt = b->topics; bt < b->topics + b->nr_topics; bt++) {
		memcpy(pub.fates, bt->fates, sizeof(pub.fates));
		pcb_account_publish(bt->t, &pub, bt->nr, bt->bytes);
		pcb_topic_wake_consumers(bt->t, bt->first_seq);
	}
	rcu_read_unlock();
}

/* Every entry gets @err, but for entry @bad that gets @bad_err. */
static int batch_fail(struct batch *b, int err, u32 bad, int bad_err)
{
	u32 i;

	for (i = 0; i < b->count; i++)
		if (put_user(i == bad ? bad_err : err, &b->uents[i].result))
			return -EFAULT;
	return bad_err;
}

/* One try: 0, or an error with b->full naming the topic to wait for. */
static int batch_try(struct pcb_endpoint *ep, struct batch *b)
{
	int ret;

	ret = batch_prepare(ep, b);
	if (ret) {
		ret = batch_fail(b, -ECANCELED, b->bad, ret);
		batch_put_topics(b);
		return ret;
	}

	rcu_read_lock();
	batch_lock(b);
	ret = batch_publish_locked(ep, b);
	batch_unlock(b);
	rcu_read_unlock();
	if (!ret)
		batch_account_and_wake(b);
	return ret;
}

static noinline_for_stack int publish_atomic(struct pcb_endpoint *ep,
					     struct batch *b, ktime_t deadline,
					     u32 *published)
{
	int tries = 0;
	int ret;

	for (;;) {
		ret = batch_try(ep, b);
		if (!ret) {
			batch_put_topics(b);
			*published = b->count;
			return 0;
		}
		if (!b->nr_topics)	/* batch_try() failed an entry */
			return ret;
		if (ret == -EAGAIN && !b->nonblock) {
			struct batch_topic *bt = &b->topics[b->full];

			ret = pcb_wait_for_room(bt->t, bt->gen, deadline);
		} else if (ret == -EFAULT && ++tries < PCB_BATCH_RETRIES) {
			ret = 0;	/* fault everything in again */
		}
		batch_put_topics(b);
		if (ret)
			return batch_fail(b, ret, b->count, ret);
	}
}

int pcb_publish_batch(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_call call = { .cmd = PCB_IOC_PUBLISH_BATCH, .arg = arg };
	struct pcb_publish_batch args;
	struct batch b = { };
	u32 published = 0;
	ktime_t deadline;
	int ret;

	pcb_pub_init(&b.pub, ep);
	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	ret = check_batch(&args);
	if (ret)
		return ret;
	ret = pcb_pub_deps(&b.pub, b.deps, args.deps, args.nr_deps);
	if (ret)
		return ret;

	ret = pcb_probe_out(arg, &args, sizeof(args));
	if (ret)
		return ret;

	b.uents = u64_to_user_ptr(args.entries);
	b.count = args.count;
	b.nonblock = args.flags & PCB_PUB_NONBLOCK;
	call.timeout_ns = args.timeout_ns;
	deadline = pcb_call_deadline(ep, &call);
	if (args.flags & PCB_PUB_ATOMIC)
		ret = publish_atomic(ep, &b, deadline, &published);
	else
		ret = publish_each(ep, &b, deadline, &published);
	/*
	 * EINTR (a restart, without a signal) only from an atomic batch,
	 * which then published nothing; a plain batch restarts on its own.
	 */
	if (ret)
		return pcb_call_end(ep, &call, ret);

	args.published = published;
	return copy_to_user(arg, &args, sizeof(args)) ? -EFAULT : 0;
}
