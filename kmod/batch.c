// SPDX-License-Identifier: GPL-2.0
/*
 * PCB_IOC_PUBLISH_BATCH: many messages in one system call.
 *
 * Without PCB_PUB_ATOMIC a batch is single publishes sharing one deadline,
 * each entry getting its own result; the entries are read a block at a
 * time, and consecutive small entries to one topic go out as one run
 * (pcb_publish_run()), which pays for the lookup, the topic lock, the
 * statistics and the wake-ups once.
 *
 * With PCB_PUB_ATOMIC all entries are published or none, even across
 * topics.  The work is split so that the topic locks cover only what
 * ordering needs:
 *
 *   1. load: the entries and every payload are copied into kernel memory
 *      once (PCB_BATCH_ATOMIC_BYTES at most), each entry checked, each
 *      topic referenced;
 *   2. snapshot: under each topic's lock in turn, its subscriptions are
 *      noted with references to their rings and filters;
 *   3. filter: without any lock, each filter judges each of its topic's
 *      messages once, which sizes each subscription's chunk: one
 *      reservation per ring and topic for all the records it accepts;
 *   4. under all the topics' locks (in id order, at most
 *      PCB_BATCH_ATOMIC_TOPICS): the snapshot is checked to be current
 *      (no subscription came, no filter changed since: else it is taken
 *      again, as the batch is ordered after those changes), matched with
 *      the lists as they are now (one gone since is not written to),
 *      reliable rings are checked for room and every chunk reserved, the
 *      ids and sequence numbers taken and the subscriptions' counters
 *      moved;
 *   5. without the locks, preemption still off: the records are written
 *      into the chunks from the kernel's copies, BUSY, then committed in
 *      order.
 *
 * When a reliable ring has no room for its chunks, every chunk reserved so
 * far becomes one DISCARD record and nothing is published: no sequence
 * number is taken; the batch then lets go of everything it loaded before
 * it waits.  Under the locks the work is bounded by the topics'
 * subscriptions, never by the number or size of the entries, and filters
 * never run there: a batch whose snapshot went stale
 * PCB_BATCH_STALE_TRIES times in a row (subscriptions changing all the
 * time) takes the next one holding the bus's lock, which every such
 * change needs, so that it cannot be put off for ever.
 */
#include <linux/pagemap.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>

#include "internal.h"
#include "trace.h"

/*
 * Snapshots outrun by subscription changes before an atomic batch takes
 * its snapshot holding its bus's lock, which every such change takes: it
 * cannot be outrun then, and its filters still run outside spinlocks.
 */
#define PCB_BATCH_STALE_TRIES	2

/* One subscription of a topic of the batch, as the snapshot saw it. */
struct batch_sub {
	const struct pcb_sub *sub;	/* compared with @sub_id, never read */
	u64 sub_id;
	struct pcb_ring *ring;		/* a reference */
	struct pcb_filter_prog *filter;	/* a reference, or NULL */
	bool reliable;
	unsigned long *bits;		/* room for the verdicts */
	unsigned long *accept;		/* @bits if filtered, else NULL: all */
	struct pcb_ident id;		/* the publisher as the ring sees it */
	u32 nr_in;			/* messages it accepts */
	u64 chunk;			/* bytes of their records */
	struct batch_sub *group;	/* the first of the same ring */
	u64 group_need;			/* on the first: reliable bytes */
	/* Under the topic locks. */
	struct pcb_sub *live;		/* still subscribed, or NULL */
	enum pcb_fate fate;
	struct pcb_record *resv;
};

/* One message, in kernel memory. */
struct batch_msg {
	struct pcb_msg msg;		/* data points into batch->payloads */
	struct pcb_topic *t;		/* not a reference: see batch_topic */
	u32 next;			/* next message of the topic, or U32_MAX */
	u64 seq;
};

struct batch_topic {
	struct pcb_topic *t;		/* a reference */
	u32 nr;				/* its messages */
	u32 first, last;		/* the first and last of them */
	u64 bytes;			/* their payload bytes */
	u64 rec_bytes;			/* their records' bytes */
	u64 first_seq;			/* of its first record, once published */
	u32 fates[PCB_FATE_SKIP + 1];	/* as in struct pcb_pub */
	unsigned long gen;		/* t->space_gen before the attempt */
	u64 subs_gen;			/* t->subs_gen of the snapshot */
	struct batch_sub *subs;
	unsigned int nr_subs;
	unsigned int cap_subs;
};

struct batch {
	struct pcb_batch_entry __user *uents;
	u32 count;
	bool nonblock;
	struct pcb_pub pub;		/* what every message has in common */
	u64 deps[PCB_MAX_DEPS];
	struct pcb_batch_entry *ents;	/* read once */
	struct batch_msg *msgs;
	void *payloads;			/* copied once */
	u64 id0;			/* message id of entry 0 */
	struct batch_sub **by_ring;	/* room to sort the snapshot */
	unsigned int nr_topics;
	struct batch_topic topics[PCB_BATCH_ATOMIC_TOPICS];
	int full;			/* index of a topic with a full ring */
	u32 bad;			/* the entry that failed validation */
};

/* Loop ends: for (bt = b->topics; bt < topics_end(b); bt++) and so on. */
static struct batch_topic *topics_end(struct batch *b)
{
	return b->topics + b->nr_topics;
}

static struct batch_sub *bsubs_end(struct batch_topic *bt)
{
	return bt->subs + bt->nr_subs;
}

/* A topic's messages: for (m = first_msg(bt); m != U32_MAX; m = next). */
static u32 first_msg(const struct batch_topic *bt)
{
	return bt->nr ? bt->first : U32_MAX;
}

static int check_batch(const struct pcb_publish_batch *args)
{
	if (args->flags & ~PCB_BATCH_FLAGS_ALL || args->reserved[0])
		return -EINVAL;
	if (!args->count || args->count > PCB_BATCH_MAX)
		return -EINVAL;
	return 0;
}

/* The three out fields of an entry, in one user access window. */
static int put_result(struct pcb_batch_entry __user *ue, int result,
		      u64 msg_id, u64 seq)
{
	if (!user_write_access_begin(ue, sizeof(*ue)))
		return -EFAULT;
	unsafe_put_user(result, &ue->result, efault);
	unsafe_put_user(msg_id, &ue->msg_id, efault);
	unsafe_put_user(seq, &ue->seq, efault);
	user_write_access_end();
	return 0;
efault:
	user_write_access_end();
	return -EFAULT;
}

/* --- plain batches ------------------------------------------------------ */

/*
 * A plain batch's working memory: a block of entries read in one copy,
 * their results, and the kernel's copies of a run's payloads.  The
 * endpoint keeps one for its next batch, so that in the steady state a
 * batch allocates nothing.
 */
struct pcb_batch_block {
	struct pcb_batch_entry ents[PCB_RUN_MAX];
	struct pcb_msg msgs[PCB_RUN_MAX];
	struct pcb_run_out out[PCB_RUN_MAX];
	u8 payloads[PCB_RUN_MAX][PCB_PAYLOAD_INLINE] __aligned(8);
};

/*
 * The same for one entry at a time, on the stack: what a batch uses when
 * memory for a block is short (a memory cgroup at its limit), so that a
 * plain batch never fails for want of it.
 */
struct batch_block_one {
	struct pcb_batch_entry ents[1];
	struct pcb_msg msgs[1];
	struct pcb_run_out out[1];
	u8 payloads[1][PCB_PAYLOAD_INLINE] __aligned(8);
};

/* A plain batch under way. */
struct plain {
	struct pcb_endpoint *ep;
	const struct pcb_pub *base;	/* what every message has in common */
	struct pcb_call *call;
	bool nonblock;
	struct pcb_batch_block *blk;	/* NULL: a batch_block_one */
	/* The block's arrays, of @cap entries. */
	struct pcb_batch_entry *ents;
	struct pcb_msg *msgs;
	struct pcb_run_out *out;
	u8 (*payloads)[PCB_PAYLOAD_INLINE];
	u32 cap;
	u32 published;
	int last;			/* the last result: -EINTR ends it */
};

/* Point @p at its block's arrays, of @cap entries each. */
static void plain_use_block(struct plain *p, struct pcb_batch_entry *ents,
			    struct pcb_msg *msgs, struct pcb_run_out *out,
			    u8 (*payloads)[PCB_PAYLOAD_INLINE], u32 cap)
{
	p->ents = ents;
	p->msgs = msgs;
	p->out = out;
	p->payloads = payloads;
	p->cap = cap;
}

static struct pcb_batch_block *batch_block_get(struct pcb_endpoint *ep)
{
	struct pcb_batch_block *blk = xchg(&ep->batch_block, NULL);

	return blk ?: kmalloc(sizeof(*blk), GFP_KERNEL_ACCOUNT);
}

/* Keep @blk for the next batch (of two at once, one frees its own). */
static void batch_block_put(struct pcb_endpoint *ep,
			    struct pcb_batch_block *blk)
{
	kfree(xchg(&ep->batch_block, blk));
}

/* At release: no batch of the endpoint runs any more. */
void pcb_batch_block_free(struct pcb_endpoint *ep)
{
	kfree(ep->batch_block);
	ep->batch_block = NULL;
}

/*
 * How many entries from @j on can go as one run: to the same handle,
 * small, without flags (pcb_publish_run() checks the rest).
 */
static u32 run_length(const struct pcb_batch_entry *ents, u32 j, u32 nb)
{
	u32 k;

	for (k = j; k < nb; k++) {
		const struct pcb_batch_entry *e = &ents[k];

		if (e->flags || e->len > PCB_PAYLOAD_INLINE ||
		    e->handle != ents[j].handle)
			break;
	}
	return k - j;
}

/*
 * Publish a run of @r entries from @j on; returns how many went out.  An
 * unreadable payload ends the run before its entry, which then goes on
 * its own and gets the error a single publish would give.
 */
static u32 run_publish(struct plain *p, u32 j, u32 r)
{
	struct pcb_pub pub PCB_NOINIT;
	u32 k, done;

	for (k = 0; k < r; k++) {
		const struct pcb_batch_entry *e = &p->ents[j + k];
		struct pcb_msg *m = &p->msgs[k];

		if (pcb_copy_in_small(p->payloads[k],
				      u64_to_user_ptr(e->payload), e->len))
			break;
		m->data = p->payloads[k];
		m->len = e->len;
		m->key = e->key;
	}
	if (!k)
		return 0;
	pub = *p->base;
	pub.nonblock = p->nonblock;
	done = pcb_publish_run(p->ep, p->ents[j].handle, &pub, p->msgs, k,
			       p->out);
	for (k = 0; k < done; k++) {
		struct pcb_batch_entry *e = &p->ents[j + k];

		e->result = 0;
		e->msg_id = p->out[k].msg_id;
		e->seq = p->out[k].seq;
	}
	return done;
}

/* One entry on its own: it may wait, and it gets its own error. */
static int entry_publish(struct plain *p, struct pcb_batch_entry *e)
{
	struct pcb_src src = { .uptr = u64_to_user_ptr(e->payload) };
	struct pcb_pub pub = *p->base;
	int ret;

	pub.nonblock = p->nonblock;
	pub.msg.len = e->len;
	pub.msg.key = e->key;
	ret = e->flags ? -EINVAL :
	      pcb_publish_one(p->ep, e->handle, &pub, &src, p->call);
	e->result = ret;
	e->msg_id = pub.msg_id;
	e->seq = pub.seq;
	return ret;
}

/* The @nb entries of the block, read into p->ents: their results there. */
static int block_publish(struct plain *p, u32 nb)
{
	u32 j, step;

	for (j = 0; j < nb; j += step) {
		struct pcb_batch_entry *e = &p->ents[j];

		step = 1;
		if (p->last == -EINTR) {
			e->result = -EINTR;
			e->msg_id = 0;
			e->seq = 0;
			continue;
		}
		step = run_publish(p, j, run_length(p->ents, j, nb));
		if (step) {
			p->published += step;
			p->last = 0;
			continue;
		}
		step = 1;
		p->last = entry_publish(p, e);
		/* Nothing went out yet: the whole call can restart. */
		if (!p->published &&
		    pcb_restartable(p->last) == -ERESTARTNOHAND)
			return -ERESTARTNOHAND;
		p->published += !p->last;
	}
	return 0;
}

/* The three out fields of @nb entries, in one user access window. */
static int put_results(struct pcb_batch_entry __user *ue,
		       const struct pcb_batch_entry *e, u32 nb)
{
	u32 k;

	if (!user_write_access_begin(ue, nb * sizeof(*ue)))
		return -EFAULT;
	for (k = 0; k < nb; k++) {
		unsafe_put_user(e[k].result, &ue[k].result, efault);
		unsafe_put_user(e[k].msg_id, &ue[k].msg_id, efault);
		unsafe_put_user(e[k].seq, &ue[k].seq, efault);
	}
	user_write_access_end();
	return 0;
efault:
	user_write_access_end();
	return -EFAULT;
}

/*
 * Every result must be writable before the first message goes out, else a
 * caller could get EFAULT for messages that went: in each page that holds
 * out fields (result up to seq), one of them is rewritten as it is, in one
 * user access window.  Only a racing munmap() or mprotect() can still
 * defeat it.  Not fault_in_safe_writeable(): that one walks the page
 * tables through get_user_pages() even when every page is there.
 */
static int probe_results(struct pcb_batch_entry __user *ue, u32 count)
{
	unsigned long last_page = 0;
	u32 k, w, v;

	if (!user_access_begin(ue, (size_t)count * sizeof(*ue)))
		return -EFAULT;
	for (k = 0; k < count; k++) {
		/* The out fields' pages: those of their first and last word. */
		u32 __user *words[] = {
			(u32 __user *)&ue[k].result,
			(u32 __user *)&ue[k].seq + 1,
		};

		for (w = 0; w < ARRAY_SIZE(words); w++) {
			/*
			 * The page of the word's last byte: the caller's
			 * array may end one byte into a page, inside a word
			 * whose first byte lies in a page already done.
			 */
			unsigned long page = ((unsigned long)words[w] +
					      sizeof(u32) - 1) & PAGE_MASK;

			if (page == last_page)
				continue;
			unsafe_get_user(v, words[w], efault);
			unsafe_put_user(v, words[w], efault);
			last_page = page;
		}
	}
	user_access_end();
	return 0;
efault:
	user_access_end();
	return -EFAULT;
}

/*
 * A plain batch: each entry published as by PCB_IOC_PUBLISH, in order,
 * with its own result; consecutive small entries to one topic go as one
 * run (pcb_publish_run()), so that a batch to one topic pays for the
 * lookup, the topic lock, the statistics and the wake-ups once every
 * PCB_RUN_MAX messages.  Entries are read PCB_RUN_MAX at a time, each
 * once: what the kernel acts on is its copy.
 */
static noinline_for_stack int publish_each(struct pcb_endpoint *ep,
					   const struct pcb_publish_batch *args,
					   const struct pcb_pub *base,
					   struct pcb_call *call, u32 *published)
{
	struct pcb_batch_entry __user *uents = u64_to_user_ptr(args->entries);
	struct batch_block_one one;
	struct plain p = {
		.ep = ep,
		.base = base,
		.call = call,
		.nonblock = args->flags & PCB_PUB_NONBLOCK,
	};
	u32 i, nb;
	int ret = 0;

	if (probe_results(uents, args->count))
		return -EFAULT;
	p.blk = args->count > 1 ? batch_block_get(ep) : NULL;
	if (p.blk)
		plain_use_block(&p, p.blk->ents, p.blk->msgs, p.blk->out,
				p.blk->payloads, PCB_RUN_MAX);
	else
		plain_use_block(&p, one.ents, one.msgs, one.out, one.payloads,
				1);

	for (i = 0; i < args->count && !ret; i += nb) {
		nb = min(args->count - i, p.cap);
		if (pcb_copy_in_small(p.ents, &uents[i], nb * sizeof(*uents))) {
			ret = -EFAULT;
			break;
		}
		ret = block_publish(&p, nb);
		if (!ret)
			ret = put_results(&uents[i], p.ents, nb);
	}
	if (p.blk)
		batch_block_put(ep, p.blk);
	*published = p.published;
	return ret;
}

/* --- atomic batches, 1: load ---------------------------------------------- */

static struct batch_topic *batch_topic_of(struct batch *b, struct pcb_topic *t)
{
	struct batch_topic *bt;

	for (bt = b->topics; bt < topics_end(b); bt++)
		if (bt->t == t)
			return bt;
	return NULL;
}

/* The topic behind @handle, a reference taken for the batch. */
static struct pcb_topic *batch_add_handle(struct pcb_endpoint *ep,
					  struct batch *b, u32 handle)
{
	struct pcb_topic *t, *ret = ERR_PTR(-EBADF);

	rcu_read_lock();
	t = xa_load(&ep->handles, handle);
	if (!t)
		goto out;
	ret = t;
	if (batch_topic_of(b, t))
		goto out;
	ret = ERR_PTR(-E2BIG);
	if (b->nr_topics == PCB_BATCH_ATOMIC_TOPICS ||
	    !refcount_inc_not_zero(&t->ref))
		goto out;
	b->topics[b->nr_topics++].t = t;
	ret = t;
out:
	rcu_read_unlock();
	return ret;
}

static int batch_check_entry(struct pcb_endpoint *ep, struct batch *b, u32 i)
{
	const struct pcb_batch_entry *e = &b->ents[i];
	struct pcb_topic *t;

	if (e->flags)
		return -EINVAL;
	t = batch_add_handle(ep, b, e->handle);
	if (IS_ERR(t))
		return PTR_ERR(t);
	if (e->len > t->max_msg_size)
		return -EMSGSIZE;
	b->msgs[i].t = t;
	b->msgs[i].msg.len = e->len;
	b->msgs[i].msg.key = e->key;
	return 0;
}

/*
 * A deleted topic, kept by a handle, may share its id with a newer one
 * once ids have gone round: the address breaks the tie, so that every
 * batch takes the locks in the same order.
 */
static int topic_id_cmp(const void *a, const void *b)
{
	const struct batch_topic *x = a, *y = b;

	if (x->t->id != y->t->id)
		return x->t->id < y->t->id ? -1 : 1;
	return x->t < y->t ? -1 : x->t > y->t;
}

/* Lock order between topics: ascending id.  Then each topic's messages. */
static void batch_link_msgs(struct batch *b)
{
	struct batch_topic *bt;
	u32 i;

	sort(b->topics, b->nr_topics, sizeof(b->topics[0]), topic_id_cmp, NULL);
	for (i = 0; i < b->count; i++) {
		struct batch_msg *m = &b->msgs[i];

		bt = batch_topic_of(b, m->t);
		m->next = U32_MAX;
		if (bt->nr++)
			b->msgs[bt->last].next = i;
		else
			bt->first = i;
		bt->last = i;
		bt->bytes += m->msg.len;
		bt->rec_bytes += PCB_REC_SIZE(pcb_record_len(b->pub.hdr_len,
							     m->msg.len));
	}
}

/* Copy every payload once; b->bad names a payload that cannot be read. */
static int batch_copy_payloads(struct batch *b, u64 total)
{
	void *pos;
	u32 i;

	if (!total)
		return 0;
	b->payloads = kvmalloc(total, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!b->payloads)
		return -ENOMEM;
	pos = b->payloads;
	for (i = 0; i < b->count; i++) {
		const struct pcb_batch_entry *e = &b->ents[i];

		b->msgs[i].msg.data = pos;
		if (copy_from_user(pos, u64_to_user_ptr(e->payload), e->len)) {
			b->bad = i;
			return -EFAULT;
		}
		pos += e->len;
	}
	return 0;
}

/*
 * Read and check every entry, reference each topic and copy every
 * payload.  An error that b->bad names is an entry's; one with b->bad ==
 * b->count is the whole batch's.
 */
static int batch_load(struct pcb_endpoint *ep, struct batch *b)
{
	size_t size = (size_t)b->count * sizeof(*b->ents);
	u64 total = 0;
	int ret;

	b->bad = b->count;
	/* The results are all the batch writes: see probe_results(). */
	if (probe_results(b->uents, b->count))
		return -EFAULT;
	b->ents = kvmalloc(size, GFP_KERNEL_ACCOUNT);
	b->msgs = kvcalloc(b->count, sizeof(*b->msgs), GFP_KERNEL_ACCOUNT);
	if (!b->ents || !b->msgs)
		return -ENOMEM;
	/* In words: at most PCB_BATCH_MAX entries (pcb_copy_in_small()). */
	if (pcb_copy_in_small(b->ents, b->uents, size))
		return -EFAULT;

	for (b->bad = 0; b->bad < b->count; b->bad++) {
		ret = batch_check_entry(ep, b, b->bad);
		if (ret)
			return ret;
		total += b->ents[b->bad].len;
	}
	b->bad = b->count;
	if (total > PCB_BATCH_ATOMIC_BYTES)
		return -E2BIG;
	ret = batch_copy_payloads(b, total);
	if (ret)
		return ret;
	batch_link_msgs(b);
	return 0;
}

/* --- atomic batches, 2 and 3: snapshot and filters -------------------- */

static void batch_drop_snapshot(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;

	for (bt = b->topics; bt < topics_end(b); bt++) {
		for (bs = bt->subs; bs < bt->subs + bt->cap_subs; bs++) {
			if (bs->ring)
				pcb_ring_put(bs->ring);
			pcb_filter_put(bs->filter);
			kvfree(bs->bits);
		}
		kvfree(bt->subs);
		bt->subs = NULL;
		bt->nr_subs = 0;
		bt->cap_subs = 0;
	}
	kvfree(b->by_ring);
	b->by_ring = NULL;
}

/* Room for @cap subscriptions of @bt. */
static int batch_alloc_topic(struct batch_topic *bt, unsigned int cap)
{
	cap = max(cap, 1U);
	bt->subs = kvcalloc(cap, sizeof(*bt->subs), GFP_KERNEL_ACCOUNT);
	if (!bt->subs)
		return -ENOMEM;
	bt->cap_subs = cap;
	return 0;
}

/*
 * Note @bt's subscriptions, with references to their rings and filters,
 * and the generation of the list: bounded by the topic's subscriptions.
 * -ESTALE when the room made for them is too small.
 */
static int batch_fill_topic(struct batch_topic *bt)
{
	struct pcb_topic *t = bt->t;
	struct pcb_sub *sub;

	lockdep_assert_held(&t->lock);
	if (t->nr_subs > bt->cap_subs)
		return -ESTALE;
	bt->subs_gen = t->subs_gen;
	list_for_each_entry(sub, &t->subs, topic_node) {
		struct batch_sub *bs = &bt->subs[bt->nr_subs++];

		bs->sub = sub;
		bs->sub_id = sub->id;
		bs->ring = sub->ring;
		pcb_ring_get(bs->ring);
		bs->reliable = pcb_sub_is_reliable(sub);
		bs->filter = pcb_sub_filter(sub);
		/* The subscription holds one: it cannot be going. */
		if (bs->filter && WARN_ON_ONCE(!pcb_filter_get(bs->filter)))
			bs->filter = NULL;
	}
	return 0;
}

/* A snapshot of @bt taken under its lock alone, before the batch's locks. */
static int batch_snapshot_topic(struct batch_topic *bt)
{
	struct pcb_topic *t = bt->t;
	int ret;

	for (;;) {
		ret = batch_alloc_topic(bt, READ_ONCE(t->nr_subs));
		if (ret)
			return ret;
		spin_lock(&t->lock);
		ret = batch_fill_topic(bt);
		spin_unlock(&t->lock);
		if (ret != -ESTALE)
			return ret;
		/* More came meanwhile: a bigger array, then. */
		kvfree(bt->subs);
		bt->subs = NULL;
		bt->cap_subs = 0;
	}
}

static bool bsub_accepts(const struct batch_sub *bs, u32 k)
{
	return !bs->accept || test_bit(k, bs->accept);
}

/* Run @bs's filter over its topic's messages, once each: its chunk. */
static int batch_filter(struct batch *b, struct batch_topic *bt,
			struct batch_sub *bs)
{
	u32 m, k = 0;

	bs->id = *pcb_pub_ident(&b->pub, bs->ring);
	if (!bs->filter) {
		bs->nr_in = bt->nr;
		bs->chunk = bt->rec_bytes;
		return 0;
	}
	bs->bits = kvcalloc(BITS_TO_LONGS(bt->nr), sizeof(long),
			    GFP_KERNEL_ACCOUNT);
	if (!bs->bits)
		return -ENOMEM;
	bs->accept = bs->bits;
	for (m = first_msg(bt); m != U32_MAX; m = b->msgs[m].next) {
		const struct pcb_msg *msg = &b->msgs[m].msg;

		if (pcb_filter_match(bs->filter, msg, &bs->id)) {
			__set_bit(k, bs->accept);
			bs->nr_in++;
			bs->chunk += PCB_REC_SIZE(pcb_record_len(b->pub.hdr_len,
								 msg->len));
		}
		k++;
	}
	return 0;
}

static int bsub_ring_cmp(const void *a, const void *b)
{
	const struct batch_sub *x = *(struct batch_sub * const *)a;
	const struct batch_sub *y = *(struct batch_sub * const *)b;

	return x->ring < y->ring ? -1 : x->ring > y->ring;
}

/* Room to sort every subscription the snapshot may hold, by ring. */
static int batch_alloc_groups(struct batch *b)
{
	struct batch_topic *bt;
	unsigned int n = 0;

	for (bt = b->topics; bt < topics_end(b); bt++)
		n += bt->cap_subs;
	b->by_ring = kvmalloc_array(max(n, 1U), sizeof(*b->by_ring),
				    GFP_KERNEL_ACCOUNT);
	return b->by_ring ? 0 : -ENOMEM;
}

/* Subscriptions sharing a ring share a group: their chunks add up there. */
static void batch_group(struct batch *b)
{
	struct batch_sub **all = b->by_ring, *bs;
	struct batch_topic *bt;
	unsigned int n = 0, i;

	for (bt = b->topics; bt < topics_end(b); bt++)
		for (bs = bt->subs; bs < bsubs_end(bt); bs++)
			all[n++] = bs;
	sort(all, n, sizeof(*all), bsub_ring_cmp, NULL);
	for (i = 0; i < n; i++)
		all[i]->group = i && all[i - 1]->ring == all[i]->ring ?
				all[i - 1]->group : all[i];
}

/*
 * Each topic's snapshot under its own lock, the filters without any lock.
 * batch_check_snapshot() then sees, under the batch's locks, whether a
 * subscription came or a filter changed meanwhile.
 */
static int batch_prepare(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;
	int ret;

	/* A translation cached before a wait may name a freed namespace. */
	b->pub.id_pid_ns = NULL;
	b->pub.id_user_ns = NULL;
	for (bt = b->topics; bt < topics_end(b); bt++) {
		ret = batch_snapshot_topic(bt);
		if (ret)
			return ret;
	}
	ret = batch_alloc_groups(b);
	if (ret)
		return ret;
	for (bt = b->topics; bt < topics_end(b); bt++) {
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			ret = batch_filter(b, bt, bs);
			if (ret)
				return ret;
			cond_resched();
		}
	}
	batch_group(b);
	return 0;
}

/*
 * A subscription that came, or a filter that changed, since the snapshot
 * is ordered before the batch once the locks are held: the batch must
 * see it, or a reliable subscriber would find a hole in its sequence.
 * Both happen under bus->lock only: a batch holding it is never stale.
 */
static int batch_check_snapshot(struct batch *b)
{
	struct batch_topic *bt;

	for (bt = b->topics; bt < topics_end(b); bt++)
		if (bt->t->subs_gen != bt->subs_gen)
			return -ESTALE;
	return 0;
}

/* --- atomic batches, 4: under the locks --------------------------------- */

static void batch_lock(struct batch *b)
{
	unsigned int i;

	for (i = 0; i < b->nr_topics; i++) {
		b->topics[i].gen = atomic_long_read(&b->topics[i].t->space_gen);
		/* As in publish_once(): the generation before the rings. */
		smp_rmb();
		/* Ascending topic id: see batch_link_msgs(). */
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

/*
 * Find the snapshot's subscriptions in the topic's list as it is now.
 * Both are in id order (see sub_link()): a subscription the snapshot has
 * not seen joined since and is not offered the batch; one missing from
 * the list left since and gets nothing.
 */
static void batch_match(struct batch_topic *bt)
{
	struct batch_sub *end = bt->subs + bt->nr_subs;
	struct batch_sub *bs;
	struct pcb_sub *sub;

	for (bs = bt->subs; bs < end; bs++)
		bs->live = NULL;
	bs = bt->subs;
	list_for_each_entry(sub, &bt->t->subs, topic_node) {
		while (bs < end && bs->sub_id < sub->id)
			bs++;
		if (bs == end)
			break;
		if (bs->sub_id != sub->id || bs->sub != sub)
			continue;
		bs->live = sub;
		if (pcb_ring_is_broken(bs->ring))
			bs->fate = PCB_FATE_SKIP;
		else
			bs->fate = bs->nr_in ? PCB_FATE_WRITE : PCB_FATE_REJECT;
		sub->fate = bs->fate;
		bs->resv = NULL;
		bs++;
	}
}

static bool bsub_writes(const struct batch_sub *bs)
{
	return bs->live && bs->fate == PCB_FATE_WRITE;
}

/*
 * Room for every reliable chunk?  Nothing reserved yet.  E2BIG when a
 * ring could never hold its chunks, or when all the records would add up
 * to more than PCB_BATCH_FANOUT_BYTES.  b->full names the topic of a live
 * reliable subscription of a full ring: its publishers are the ones its
 * consumer's NOTIFY wakes.
 */
static int batch_check_room(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;
	u64 total = 0;

	for (bt = b->topics; bt < topics_end(b); bt++)
		for (bs = bt->subs; bs < bsubs_end(bt); bs++)
			bs->group->group_need = 0;
	for (bt = b->topics; bt < topics_end(b); bt++) {
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			if (!bsub_writes(bs))
				continue;
			total += bs->chunk;
			if (bs->reliable)
				bs->group->group_need += bs->chunk;
		}
	}
	if (total > PCB_BATCH_FANOUT_BYTES)
		return -E2BIG;
	for (bt = b->topics; bt < topics_end(b); bt++) {
		b->full = bt - b->topics;
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			u64 need = bs->group->group_need;

			if (!bsub_writes(bs) || !bs->reliable || !need)
				continue;
			/* However empty the ring, the batch would never fit. */
			if (need > bs->ring->size)
				return -E2BIG;
			if (!pcb_ring_has_room(bs->ring, need, !b->nonblock))
				return -EAGAIN;
			bs->group->group_need = 0;	/* checked */
		}
	}
	return 0;
}

static void batch_discard(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;

	for (bt = b->topics; bt < topics_end(b); bt++) {
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			if (bs->resv)
				pcb_ring_discard(bs->ring, bs->resv, bs->chunk);
			bs->resv = NULL;
		}
	}
}

/*
 * Reliable chunks first, all of them or none, then lossy ones where they
 * fit: a lossy subscription never takes the room of a reliable one.
 */
static int batch_reserve(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;

	for (bt = b->topics; bt < topics_end(b); bt++) {
		b->full = bt - b->topics;
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			if (!bsub_writes(bs) || !bs->reliable)
				continue;
			bs->resv = pcb_ring_reserve(bs->ring, bs->chunk,
						    !b->nonblock);
			if (bs->resv)
				continue;
			if (!pcb_ring_is_broken(bs->ring)) {
				batch_discard(b);
				return -EAGAIN;
			}
			bs->fate = PCB_FATE_SKIP;
		}
	}
	for (bt = b->topics; bt < topics_end(b); bt++) {
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			if (!bsub_writes(bs) || bs->reliable)
				continue;
			if (bs->chunk <= bs->ring->size)
				bs->resv = pcb_ring_reserve(bs->ring, bs->chunk,
							    false);
			if (!bs->resv)
				bs->fate = pcb_ring_is_broken(bs->ring) ?
					   PCB_FATE_SKIP : PCB_FATE_MISS;
		}
	}
	return 0;
}

/*
 * Ids, sequence numbers and the subscriptions' counters: the ranges are
 * taken here, each message's number is worked out after the locks.
 */
static void batch_number_and_count(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;

	b->id0 = pcb_hlc_next_n(b->pub.bus, b->count, b->pub.real_ns,
				b->pub.dep_max);
	for (bt = b->topics; bt < topics_end(b); bt++) {
		struct pcb_topic *t = bt->t;

		bt->first_seq = t->seq + 1;
		t->seq += bt->nr;
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			if (!bs->live)
				continue;
			bs->live->fate = bs->fate;
			if (bs->fate != PCB_FATE_SKIP) {
				bs->live->rejected += bt->nr - bs->nr_in;
				bt->fates[PCB_FATE_REJECT] += bt->nr - bs->nr_in;
			}
			if (bs->fate != PCB_FATE_REJECT)
				pcb_sub_count(bs->live, bs->nr_in, t->seq,
					      bt->fates);
		}
	}
}

/* The fate of message @k of @bt for @bs, for tracing. */
static enum pcb_fate bsub_fate(const struct batch_sub *bs, u32 k)
{
	if (bs->fate != PCB_FATE_SKIP && !bsub_accepts(bs, k))
		return PCB_FATE_REJECT;
	return bs->fate;
}

/* Each message's sequence number, from its topic's range. */
static void batch_number_msgs(struct batch *b)
{
	struct batch_topic *bt;
	u64 seq;
	u32 m;

	for (bt = b->topics; bt < topics_end(b); bt++) {
		seq = bt->first_seq;
		for (m = first_msg(bt); m != U32_MAX; m = b->msgs[m].next)
			b->msgs[m].seq = seq++;
	}
}

/*
 * Tracing only: one pcb_publish event per message and one event per
 * subscription and message, as for single publishes; only when an event
 * is on.  After the commits: the cost of the batch is one for all.
 */
static void batch_trace(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;
	struct pcb_pub pub;
	u32 m, k;

	if (!trace_pcb_publish_enabled() && !trace_pcb_deliver_enabled() &&
	    !trace_pcb_drop_enabled() && !trace_pcb_filter_reject_enabled())
		return;
	for (bt = b->topics; bt < topics_end(b); bt++) {
		k = 0;
		for (m = first_msg(bt); m != U32_MAX; m = b->msgs[m].next) {
			pub = b->pub;
			pub.msg = b->msgs[m].msg;
			pub.msg_id = b->id0 + m;
			pub.seq = b->msgs[m].seq;
			memset(pub.fates, 0, sizeof(pub.fates));
			for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
				enum pcb_fate fate = bsub_fate(bs, k);

				if (!bs->live)
					continue;
				pub.fates[PCB_FATE_WRITE] += fate == PCB_FATE_WRITE;
				pcb_trace_fate(bt->t, bs->ring->ep_id, fate, &pub);
			}
			trace_pcb_publish(bt->t, &pub,
					  pcb_clock_ns(pub.commit_ts - pub.tsc));
			k++;
		}
	}
}

static int batch_publish_locked(struct batch *b)
{
	struct batch_topic *bt;
	int ret;

	for (bt = b->topics; bt < topics_end(b); bt++) {
		b->full = bt - b->topics;
		if (bt->t->dead)
			return -EIDRM;
		batch_match(bt);
	}
	ret = batch_check_room(b);
	if (!ret)
		ret = batch_reserve(b);
	if (ret)
		return ret;
	batch_number_and_count(b);
	return 0;
}

/* --- atomic batches, 5: after the locks --------------------------------- */

/*
 * Fill @bs's chunk: every record it accepts, each BUSY, then commit them
 * in order, so that a consumer never passes one that is not complete.
 * Sizes come from the kernel's copies, never from the ring.
 */
static void batch_write_chunk(struct batch *b, struct batch_topic *bt,
			      struct batch_sub *bs)
{
	void *pos = bs->resv;
	u32 m, k = 0;

	for (m = first_msg(bt); m != U32_MAX; m = b->msgs[m].next) {
		const struct pcb_msg *msg = &b->msgs[m].msg;
		u32 rlen = pcb_record_len(b->pub.hdr_len, msg->len);

		if (bsub_accepts(bs, k++)) {
			WRITE_ONCE(((struct pcb_record *)pos)->len,
				   rlen | PCB_REC_BUSY);
			pcb_record_write(pos, bt->t->id, &b->pub, msg, &bs->id,
					 b->id0 + m, b->msgs[m].seq);
			pos += PCB_REC_SIZE(rlen);
		}
	}
	WARN_ON_ONCE(pos != (void *)bs->resv + bs->chunk);

	pos = bs->resv;
	k = 0;
	for (m = first_msg(bt); m != U32_MAX; m = b->msgs[m].next) {
		u32 rlen = pcb_record_len(b->pub.hdr_len, b->msgs[m].msg.len);

		if (bsub_accepts(bs, k++)) {
			pcb_ring_commit(pos, rlen);
			pos += PCB_REC_SIZE(rlen);
		}
	}
}

/*
 * Write, commit and wake; then statistics.  No lock, no RCU needed, but
 * preemption is off from the reservations on: the chunks are BUSY in
 * their rings, holding up their consumers, only as long as the copies
 * take (PCB_BATCH_FANOUT_BYTES at most), never while the publisher is
 * scheduled out.
 */
static void batch_write(struct batch *b)
{
	struct batch_topic *bt;
	struct batch_sub *bs;

	for (bt = b->topics; bt < topics_end(b); bt++) {
		for (bs = bt->subs; bs < bsubs_end(bt); bs++) {
			if (!bs->resv)
				continue;
			batch_write_chunk(b, bt, bs);
			bs->resv = NULL;
			if (pcb_ring_wake_consumer(bs->ring)) {
				pcb_stats_inc(bt->t, PCB_CNT_WAKEUPS);
				trace_pcb_wakeup(bt->t, bs->ring->ep_id,
						 bt->first_seq);
			}
		}
	}
	/* From batch_try(): the chunks were BUSY, now they are committed. */
	preempt_enable();
	b->pub.commit_ts = pcb_clock_now();
	for (bt = b->topics; bt < topics_end(b); bt++) {
		memcpy(b->pub.fates, bt->fates, sizeof(b->pub.fates));
		pcb_account_publish(bt->t, &b->pub, bt->nr, bt->bytes);
	}
}

/* One try: 0, or an error with b->full naming the topic to wait for. */
static int batch_try(struct batch *b, bool hold_bus)
{
	struct mutex *bus_lock = &b->pub.bus->lock;
	int ret;

	memset(b->pub.fates, 0, sizeof(b->pub.fates));
	if (hold_bus)
		mutex_lock(bus_lock);
	ret = batch_prepare(b);
	if (!ret) {
		batch_lock(b);
		ret = batch_check_snapshot(b);
		if (!ret)
			ret = batch_publish_locked(b);
		if (!ret)
			preempt_disable();	/* see batch_write() */
		batch_unlock(b);
	}
	if (hold_bus)
		mutex_unlock(bus_lock);
	if (!ret) {
		batch_number_msgs(b);
		batch_write(b);
		batch_trace(b);
	}
	batch_drop_snapshot(b);
	return ret;
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

static int batch_results(struct batch *b)
{
	u32 i;

	for (i = 0; i < b->count; i++)
		if (put_result(&b->uents[i], 0, b->id0 + i, b->msgs[i].seq))
			return -EFAULT;
	return 0;
}

/* Everything batch_load() took: a batch that waits holds none of it. */
static void batch_unload(struct batch *b)
{
	struct batch_topic *bt;

	for (bt = b->topics; bt < topics_end(b); bt++)
		pcb_topic_put(bt->t);
	memset(b->topics, 0, sizeof(b->topics));
	b->nr_topics = 0;
	kvfree(b->payloads);
	kvfree(b->msgs);
	kvfree(b->ents);
	b->payloads = NULL;
	b->msgs = NULL;
	b->ents = NULL;
}

/*
 * Tries on a loaded batch: 0, an errno, or -EAGAIN with *@waitp (a
 * reference) and *@genp naming what to wait for.
 */
static int batch_attempt(struct batch *b, struct pcb_topic **waitp,
			 unsigned long *genp)
{
	struct batch_topic *bt;
	int stale = 0;
	int ret;

	for (;;) {
		for (bt = b->topics; bt < topics_end(b); bt++)
			memset(bt->fates, 0, sizeof(bt->fates));
		ret = batch_try(b, stale >= PCB_BATCH_STALE_TRIES);
		if (ret != -ESTALE)
			break;
		stale++;
	}
	if (ret == -EAGAIN && !b->nonblock) {
		bt = &b->topics[b->full];
		pcb_topic_get(bt->t);
		*waitp = bt->t;
		*genp = bt->gen;
	}
	return ret;
}

/*
 * Load the batch, try it, and when it must wait, unload it first: each
 * attempt after a wait reads and checks the entries and copies the
 * payloads again, so that waiting costs the kernel nothing but the
 * sleeping thread.
 */
static int publish_atomic_loop(struct pcb_endpoint *ep, struct batch *b,
			       struct pcb_call *call)
{
	struct pcb_topic *wait;
	unsigned long gen;
	int ret;

	for (;;) {
		ret = batch_load(ep, b);
		if (ret && b->bad < b->count)
			return batch_fail(b, -ECANCELED, b->bad, ret);
		if (ret == -E2BIG)
			return batch_fail(b, ret, b->count, ret);
		if (ret)
			return ret;
		wait = NULL;
		ret = batch_attempt(b, &wait, &gen);
		if (!ret)
			return batch_results(b);
		if (!wait)
			break;
		batch_unload(b);
		ret = pcb_wait_for_room(wait, gen, pcb_call_when(call));
		pcb_topic_put(wait);
		if (ret)
			break;
	}
	return batch_fail(b, ret, b->count, ret);
}

static noinline_for_stack int publish_atomic(struct pcb_endpoint *ep,
					     const struct pcb_publish_batch *args,
					     const struct pcb_pub *base,
					     struct pcb_call *call, u32 *published)
{
	struct batch *b = kzalloc(sizeof(*b), GFP_KERNEL);
	int ret;

	if (!b)
		return -ENOMEM;
	b->uents = u64_to_user_ptr(args->entries);
	b->count = args->count;
	b->nonblock = args->flags & PCB_PUB_NONBLOCK;
	b->pub = *base;
	if (base->nr_deps)
		memcpy(b->deps, base->deps, base->nr_deps * sizeof(*b->deps));
	b->pub.deps = b->deps;

	ret = publish_atomic_loop(ep, b, call);
	if (!ret)
		*published = b->count;
	batch_unload(b);
	kfree(b);
	return ret;
}

int pcb_publish_batch(struct pcb_endpoint *ep, void __user *arg)
{
	struct pcb_call call = { .cmd = PCB_IOC_PUBLISH_BATCH, .arg = arg };
	struct pcb_publish_batch args;
	u64 deps[PCB_MAX_DEPS] PCB_NOINIT;
	struct pcb_pub pub PCB_NOINIT;
	u32 published = 0;
	int ret;

	pcb_pub_init(&pub, ep);
	if (copy_from_user(&args, arg, sizeof(args)))
		return -EFAULT;
	ret = check_batch(&args);
	if (ret)
		return ret;
	ret = pcb_pub_deps(&pub, deps, args.deps, args.nr_deps);
	if (ret)
		return ret;

	ret = pcb_probe_out(arg, &args, sizeof(args));
	if (ret)
		return ret;

	call.timeout_ns = args.timeout_ns;
	pcb_call_begin(ep, &call);
	if (args.flags & PCB_PUB_ATOMIC)
		ret = publish_atomic(ep, &args, &pub, &call, &published);
	else
		ret = publish_each(ep, &args, &pub, &call, &published);
	/*
	 * EINTR (a restart, without a signal) only from an atomic batch,
	 * which then published nothing; a plain batch restarts on its own.
	 */
	if (ret)
		return pcb_call_end(ep, &call, ret);

	args.published = published;
	return copy_to_user(arg, &args, sizeof(args)) ? -EFAULT : 0;
}
