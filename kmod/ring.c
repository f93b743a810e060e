// SPDX-License-Identifier: GPL-2.0
/*
 * The receive ring: one per endpoint, written by the kernel on behalf of any
 * number of publishers, read in place by one consumer through mmap().
 *
 * Memory: a consumer page (the only page userspace may write), a header
 * page, and the data pages, which are vmap()ed twice in a row so that a
 * record crossing the end of the area is contiguous for the kernel and, as
 * the mmap() covers the same layout, for the consumer.  The data pages are
 * never writable by userspace: what the kernel reads back from them (the
 * len words of its own records) only the kernel wrote.
 *
 * Producers reserve under ring->lock (prod_pos), then write and commit the
 * record without it, possibly out of order; a record is visible once its
 * BUSY bit is cleared.  The kernel keeps its own pending position, the
 * oldest record reserved and not yet committed, and never hands out bytes
 * a full ring's length beyond it, whatever the consumer's position says:
 * a consumer that claims to have read past a BUSY record breaks its ring
 * instead of getting the kernel to write over a record in progress.
 *
 * The barrier protocol is the table in uapi/linux/pcb.h; the numbers in
 * the comments below (1-5, A-E) refer to it.
 */
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>
#include <linux/vmalloc.h>

#include "compat.h"
#include "internal.h"

/*
 * The consumer stores cons_pos after every message; every publish loads
 * flags: apart, the publisher's load does not take the line the consumer
 * keeps writing (uapi: struct pcb_ring_consumer).
 */
static_assert(offsetof(struct pcb_ring_consumer, flags) >= 64);

#define PCB_RING_META_PAGES	2	/* consumer page, header page */

static int ring_alloc_pages(struct pcb_ring *ring, unsigned int nr_data)
{
	unsigned int nr_meta = PCB_RING_META_PAGES;
	unsigned int i;

	ring->nr_pages = nr_meta + nr_data;
	if (pcb_should_fail())
		return -ENOMEM;
	ring->pages = kvcalloc(nr_meta + 2 * nr_data, sizeof(*ring->pages),
			       GFP_KERNEL_ACCOUNT);
	if (!ring->pages)
		return -ENOMEM;

	for (i = 0; i < ring->nr_pages; i++) {
		if (pcb_should_fail())
			return -ENOMEM;
		ring->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!ring->pages[i])
			return -ENOMEM;
		if (i >= nr_meta)
			ring->pages[i + nr_data] = ring->pages[i];
	}

	if (pcb_should_fail())
		return -ENOMEM;
	ring->vaddr = vmap(ring->pages, nr_meta + 2 * nr_data,
			   VM_MAP | VM_USERMAP, PAGE_KERNEL);
	return ring->vaddr ? 0 : -ENOMEM;
}

static void ring_free_pages(struct pcb_ring *ring)
{
	unsigned int i;

	if (ring->vaddr)
		vunmap(ring->vaddr);
	for (i = 0; ring->pages && i < ring->nr_pages; i++)
		if (ring->pages[i])
			__free_page(ring->pages[i]);
	kvfree(ring->pages);
	pcb_memlock_uncharge(ring->memlock_user, ring->nr_pages);
	if (ring->pid_ns)
		put_pid_ns(ring->pid_ns);
	if (ring->user_ns)
		put_user_ns(ring->user_ns);
	kfree(ring);
}

static void ring_free_work(struct work_struct *work)
{
	struct pcb_ring *ring = container_of(to_rcu_work(work),
					     struct pcb_ring, free_work);

	atomic_long_dec(&pcb_usage[PCB_USAGE_RINGS]);
	atomic_long_sub(ring->nr_pages, &pcb_usage[PCB_USAGE_RING_PAGES]);
	ring_free_pages(ring);
}

static void ring_init_header(struct pcb_ring *ring, u32 data_size)
{
	ring->cons = ring->vaddr;
	ring->hdr = ring->vaddr + PAGE_SIZE;
	ring->data = ring->vaddr + PCB_RING_META_PAGES * PAGE_SIZE;
	ring->size = data_size;
	ring->mask = data_size - 1;

	ring->hdr->magic = PCB_RING_MAGIC;
	ring->hdr->version = PCB_RING_VERSION;
	ring->hdr->data_size = data_size;
	ring->hdr->record_align = PCB_REC_ALIGN;
	ring->hdr->tsc_khz = pcb_clock_khz;
	ring->hdr->clock = pcb_clock;
}

/*
 * A ring of @data_size bytes for the caller, whose namespaces say from now
 * on how records show their publishers' pids and uids.
 */
struct pcb_ring *pcb_ring_create(u32 data_size)
{
	unsigned int nr_data = data_size >> PAGE_SHIFT;
	struct user_struct *user;
	struct pcb_ring *ring;

	/* Charged first: a user past its limit costs us no allocation. */
	user = pcb_memlock_charge(PCB_RING_META_PAGES + nr_data);
	if (IS_ERR(user))
		return ERR_CAST(user);
	ring = pcb_zalloc(sizeof(*ring));
	if (!ring) {
		pcb_memlock_uncharge(user, PCB_RING_META_PAGES + nr_data);
		return ERR_PTR(-ENOMEM);
	}
	ring->memlock_user = user;
	if (ring_alloc_pages(ring, nr_data)) {
		ring_free_pages(ring);
		return ERR_PTR(-ENOMEM);
	}
	atomic_long_inc(&pcb_usage[PCB_USAGE_RINGS]);
	atomic_long_add(ring->nr_pages, &pcb_usage[PCB_USAGE_RING_PAGES]);

	ring->pid_ns = get_pid_ns(task_active_pid_ns(current));
	ring->user_ns = get_user_ns(current_user_ns());
	refcount_set(&ring->ref, 1);	/* the endpoint's */
	spin_lock_init(&ring->lock);
	init_waitqueue_head(&ring->data_wq);
	INIT_RCU_WORK(&ring->free_work, ring_free_work);
	ring_init_header(ring, data_size);
	return ring;
}

/* A reference for a publisher that writes into the ring after the topic lock. */
void pcb_ring_get(struct pcb_ring *ring)
{
	refcount_inc(&ring->ref);
}

/*
 * The endpoint's reference goes once it has unlinked every subscription;
 * wake-up walks may still look at the ring until a grace period passes.
 */
void pcb_ring_put(struct pcb_ring *ring)
{
	if (refcount_dec_and_test(&ring->ref))
		queue_rcu_work(pcb_wq, &ring->free_work);
}

int pcb_ring_mmap(struct pcb_ring *ring, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long total = (PCB_RING_META_PAGES * PAGE_SIZE) +
			      2UL * ring->size;

	if (vma->vm_pgoff > total >> PAGE_SHIFT ||
	    len > total - (vma->vm_pgoff << PAGE_SHIFT))
		return -EINVAL;

	if (vma->vm_flags & VM_WRITE) {
		/* Only the consumer page, and shared, or the protocol breaks. */
		if (vma->vm_pgoff || len != PAGE_SIZE ||
		    !(vma->vm_flags & VM_SHARED))
			return -EPERM;
	} else {
		pcb_vma_clear_maywrite(vma);
	}

	return remap_vmalloc_range(vma, ring->vaddr, vma->vm_pgoff);
}

bool pcb_ring_is_broken(const struct pcb_ring *ring)
{
	return READ_ONCE(ring->hdr->flags) & PCB_RING_BROKEN;
}

static void ring_set_flag(struct pcb_ring *ring, u32 flag)
{
	lockdep_assert_held(&ring->lock);
	WRITE_ONCE(ring->hdr->flags, ring->hdr->flags | flag);
}

static void ring_break(struct pcb_ring *ring, u64 cons)
{
	if (!pcb_ring_is_broken(ring))
		pr_debug("ring %p: consumer position %llu, pending %llu, producer %llu: broken\n",
			 ring, cons, ring->pending, ring->prod);
	ring_set_flag(ring, PCB_RING_BROKEN);
}

/*
 * Drop ring->lock; if the ring broke under it, tell a sleeping consumer
 * (WAIT and poll() report it), without the lock held.
 */
static void ring_unlock(struct pcb_ring *ring, bool was_broken)
	__releases(&ring->lock)
{
	spin_unlock(&ring->lock);
	if (!was_broken && pcb_ring_is_broken(ring))
		wake_up_interruptible(&ring->data_wq);
}

/*
 * Move the pending position over the records committed since.  Each step
 * passes one record for good, so the work is bounded by the records
 * reserved, one step each over the ring's life.  Caller holds ring->lock.
 */
static void ring_advance_pending(struct pcb_ring *ring)
{
	while (ring->pending != ring->prod) {
		const struct pcb_record *rec = ring->data +
					       (ring->pending & ring->mask);
		/*
		 * Pairs with the store-release of the commit (2): the bytes
		 * of the record are written before we hand them out again.
		 */
		u32 len = smp_load_acquire(&rec->len);
		u64 size = PCB_REC_SIZE(len);

		if (len & PCB_REC_BUSY)
			return;
		/* Only the kernel writes there: anything else is our bug. */
		if (WARN_ON_ONCE(size < sizeof(*rec) ||
				 size > ring->prod - ring->pending)) {
			ring_break(ring, ring->pending);
			ring->pending = ring->prod;
			return;
		}
		ring->pending += size;
	}
}

/*
 * Bytes in use, or U64_MAX when the consumer position makes no sense: not
 * aligned, ahead of prod_pos, more than the ring behind it, or past the
 * oldest record not committed.  Then the ring is marked broken and never
 * written again.  Caller holds ring->lock.
 */
static u64 ring_used(struct pcb_ring *ring)
{
	/*
	 * 3: pairs with the consumer's store-release of cons_pos (C); read
	 * before the pending position moves, so that every record the
	 * consumer passed had been committed when ring_advance_pending()
	 * looks at it.
	 */
	u64 cons = smp_load_acquire(&ring->cons->cons_pos);
	u64 used = ring->prod - cons;

	if (pcb_ring_is_broken(ring))
		return U64_MAX;
	ring_advance_pending(ring);
	if (unlikely(used > ring->size || cons & (PCB_REC_ALIGN - 1) ||
		     ring->pending - cons > used)) {
		ring_break(ring, cons);
		return U64_MAX;
	}
	/* For pcb_ring_has_room(), which reads it without the lock. */
	WRITE_ONCE(ring->cons_seen, cons);
	return used;
}

/*
 * Room for @need bytes?  False for a broken ring too.  With @mark_waiting,
 * a full ring gets PCB_RING_PUB_WAITING so that its consumer calls NOTIFY
 * once it has made room (5 / E).  Caller holds ring->lock.
 */
static bool ring_room(struct pcb_ring *ring, u64 need, bool mark_waiting)
{
	u64 used = ring_used(ring);

	if (used == U64_MAX)
		return false;
	if (need <= ring->size - used)
		return true;
	if (!mark_waiting)
		return false;
	ring_set_flag(ring, PCB_RING_PUB_WAITING);
	/*
	 * 5: the flag must be visible before cons_pos is read again, pairs
	 * with the consumer's smp_mb() between its cons_pos store and its
	 * flags load (E).
	 */
	smp_mb();
	used = ring_used(ring);
	return used != U64_MAX && need <= ring->size - used;
}

/*
 * Whether @need bytes of records fit now.  A broken ring "has room": it
 * takes nothing and must not hold publishers back.
 *
 * First without the lock and without the consumer's page, from the
 * position the last reservation found valid: while the consumer keeps up,
 * that says yes, and costs neither a lock round trip nor the consumer's
 * cache line.  It is an estimate (prod and cons_seen are read apart, and
 * a consumer may have moved back since): pcb_ring_reserve(), under the
 * lock, decides.  Only a "no" looks at the ring under the lock.
 */
bool pcb_ring_has_room(struct pcb_ring *ring, u64 need, bool mark_waiting)
{
	u64 used = READ_ONCE(ring->prod) - READ_ONCE(ring->cons_seen);
	bool room;

	if (pcb_ring_is_broken(ring))
		return true;
	if (used <= ring->size && need <= ring->size - used)
		return true;
	spin_lock(&ring->lock);
	room = ring_room(ring, need, mark_waiting) || pcb_ring_is_broken(ring);
	ring_unlock(ring, false);
	return room;
}

/*
 * Reserve a record (or a chunk of records) of @len bytes, @len at most
 * PCB_REC_LEN_MASK.  Returns it with len = @len | BUSY, or NULL when the
 * ring is full or broken (pcb_ring_is_broken() tells which).  With
 * @mark_waiting, a full ring is marked for NOTIFY as by pcb_ring_has_room().
 */
struct pcb_record *pcb_ring_reserve(struct pcb_ring *ring, u32 len,
				    bool mark_waiting)
{
	bool was_broken = pcb_ring_is_broken(ring);
	u64 need = PCB_REC_SIZE(len);
	struct pcb_record *rec = NULL;

	if (WARN_ON_ONCE(len > PCB_REC_LEN_MASK))
		return NULL;
	spin_lock(&ring->lock);
	if (ring_room(ring, need, mark_waiting)) {
		rec = ring->data + (ring->prod & ring->mask);
		WRITE_ONCE(rec->len, len | PCB_REC_BUSY);
		WRITE_ONCE(ring->prod, ring->prod + need);
		/*
		 * 1: publishes the BUSY word above with the new position,
		 * pairs with the consumer's load-acquire of prod_pos (A).
		 */
		smp_store_release(&ring->hdr->prod_pos, ring->prod);
	}
	ring_unlock(ring, was_broken);
	return rec;
}

void pcb_ring_commit(struct pcb_record *rec, u32 len)
{
	/*
	 * 2: the record's contents before its len word loses BUSY, pairs
	 * with the consumer's load-acquire of rec->len (B) and with the
	 * load-acquire of ring_advance_pending().
	 */
	smp_store_release(&rec->len, len);
}

/* A reservation that will not be published; its consumer may skip it. */
void pcb_ring_discard(struct pcb_ring *ring, struct pcb_record *rec, u32 len)
{
	/* 2, as for a commit. */
	smp_store_release(&rec->len, len | PCB_REC_DISCARD);
	/*
	 * A consumer asleep behind this BUSY record, with complete records
	 * after it, must not sleep on: no publish of ours will wake it.
	 */
	pcb_ring_wake_consumer(ring);
}

void pcb_ring_count_drops(struct pcb_ring *ring, u64 n)
{
	spin_lock(&ring->lock);
	WRITE_ONCE(ring->hdr->dropped, ring->hdr->dropped + n);
	spin_unlock(&ring->lock);
}

/*
 * Whether the consumer has a complete record to read (or a position that
 * makes no sense, which it will find out about itself).
 */
bool pcb_ring_readable(struct pcb_ring *ring)
{
	/* A, as the consumer does. */
	u64 prod = smp_load_acquire(&ring->hdr->prod_pos);
	u64 cons = READ_ONCE(ring->cons->cons_pos);
	const struct pcb_record *rec;

	if (prod == cons)
		return false;
	if (prod - cons > ring->size || cons & (PCB_REC_ALIGN - 1))
		return true;
	/* Masked: inside the data area whatever @cons is. */
	rec = ring->data + (cons & ring->mask);
	/* B, as the consumer does. */
	return !(smp_load_acquire(&rec->len) & PCB_REC_BUSY);
}

/*
 * After a commit: wake the consumer only if it said it would sleep and
 * someone waits on the ring (WAIT, poll, epoll).  Returns whether so.
 */
bool pcb_ring_wake_consumer(struct pcb_ring *ring)
{
	/*
	 * 4: orders the record commit before the flag load, pairs with the
	 * consumer's smp_mb() between setting NEED_WAKEUP and re-checking
	 * the ring (D).  The same barrier orders it before the wait queue
	 * load: a waiter queues itself before its own barrier in
	 * pcb_ring_want_wakeup() (poll) or set_current_state() (WAIT), then
	 * re-checks the ring.
	 */
	smp_mb();
	return pcb_ring_wake_consumer_after_mb(ring);
}

/*
 * pcb_ring_wake_consumer() for a caller that committed into many rings
 * and issued barrier 4, smp_mb(), once after the last commit.
 */
bool pcb_ring_wake_consumer_after_mb(struct pcb_ring *ring)
{
	if (!(READ_ONCE(ring->cons->flags) & PCB_CONS_NEED_WAKEUP))
		return false;
	/* Lockless check, safe after the smp_mb() above: see there. */
	if (!waitqueue_active(&ring->data_wq))
		return false;
	wake_up_interruptible(&ring->data_wq);
	return true;
}

/* Bytes in use now, for statistics: the consumer's word is not trusted. */
u64 pcb_ring_used_now(struct pcb_ring *ring)
{
	u64 used = READ_ONCE(ring->hdr->prod_pos) - READ_ONCE(ring->cons->cons_pos);

	return min_t(u64, used, ring->size);
}

/* The consumer is about to sleep in poll() or WAIT (D, on its behalf). */
void pcb_ring_want_wakeup(struct pcb_ring *ring)
{
	u32 flags = READ_ONCE(ring->cons->flags);

	if (!(flags & PCB_CONS_NEED_WAKEUP))
		WRITE_ONCE(ring->cons->flags, flags | PCB_CONS_NEED_WAKEUP);
	/* D: pairs with the publisher's smp_mb() in wake_consumer (4). */
	smp_mb();
}

/* Returns whether a publisher was waiting for room in this ring. */
bool pcb_ring_clear_pub_waiting(struct pcb_ring *ring)
{
	bool was;

	if (!(READ_ONCE(ring->hdr->flags) & PCB_RING_PUB_WAITING))
		return false;
	spin_lock(&ring->lock);
	was = ring->hdr->flags & PCB_RING_PUB_WAITING;
	WRITE_ONCE(ring->hdr->flags, ring->hdr->flags & ~PCB_RING_PUB_WAITING);
	spin_unlock(&ring->lock);
	return was;
}
