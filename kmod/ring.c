// SPDX-License-Identifier: GPL-2.0
/*
 * The receive ring: one per endpoint, written by the kernel on behalf of any
 * number of publishers, read in place by one consumer through mmap().
 *
 * Memory: a consumer page (the only page userspace may write), a header
 * page, and the data pages, which are vmap()ed twice in a row so that a
 * record crossing the end of the area is contiguous for the kernel and, as
 * the mmap() covers the same layout, for the consumer.
 *
 * Producers reserve under ring->lock (prod_pos), then write and commit the
 * record without it; a record is visible once its BUSY bit is cleared.  The
 * barrier protocol is the table in uapi/linux/pcb.h; the numbers in the
 * comments below (1-5, A-E) refer to it.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "compat.h"
#include "internal.h"

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

	ring->cons = ring->vaddr;
	ring->hdr = ring->vaddr + PAGE_SIZE;
	ring->data = ring->vaddr + PCB_RING_META_PAGES * PAGE_SIZE;
	ring->size = data_size;
	ring->mask = data_size - 1;
	spin_lock_init(&ring->lock);
	init_waitqueue_head(&ring->data_wq);
	INIT_RCU_WORK(&ring->free_work, ring_free_work);

	ring->hdr->magic = PCB_RING_MAGIC;
	ring->hdr->version = PCB_RING_VERSION;
	ring->hdr->data_size = data_size;
	ring->hdr->record_align = PCB_REC_ALIGN;
	ring->hdr->tsc_khz = pcb_clock_khz;
	ring->hdr->clock = pcb_clock;
	return ring;
}

/*
 * The caller has unlinked every subscription; publishers that found the
 * ring before that may still touch it until a grace period has passed.
 */
void pcb_ring_destroy(struct pcb_ring *ring)
{
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

/*
 * Bytes in use, or U64_MAX when the consumer position makes no sense; then
 * the ring is marked broken and never written again.  Caller holds
 * ring->lock.
 */
static u64 ring_used(struct pcb_ring *ring)
{
	/* 3: pairs with the consumer's store-release of cons_pos (C). */
	u64 cons = smp_load_acquire(&ring->cons->cons_pos);
	u64 used = ring->prod - cons;

	if (unlikely(used > ring->size)) {
		if (!pcb_ring_is_broken(ring))
			pr_debug("ring %p: consumer position %llu, producer %llu: broken\n",
				 ring, cons, ring->prod);
		ring_set_flag(ring, PCB_RING_BROKEN);
		return U64_MAX;
	}
	return used;
}

/*
 * Whether a record of @len bytes fits now.  A broken ring "has room": it
 * takes nothing and must not hold publishers back.  With @mark_waiting,
 * a full ring gets PCB_RING_PUB_WAITING so that its consumer calls NOTIFY
 * once it has made room (5 / E).
 */
bool pcb_ring_has_room(struct pcb_ring *ring, u32 len, bool mark_waiting)
{
	u64 need = PCB_REC_SIZE(len);
	bool room;
	u64 used;

	/* A broken ring takes nothing and holds no one back. */
	if (pcb_ring_is_broken(ring))
		return true;
	spin_lock(&ring->lock);
	used = ring_used(ring);
	room = used == U64_MAX || need <= ring->size - used;
	if (!room && mark_waiting) {
		ring_set_flag(ring, PCB_RING_PUB_WAITING);
		/*
		 * 5: the flag must be visible before cons_pos is read again,
		 * pairs with the consumer's smp_mb() between its cons_pos
		 * store and its flags load (E).
		 */
		smp_mb();
		used = ring_used(ring);
		room = used == U64_MAX || need <= ring->size - used;
	}
	spin_unlock(&ring->lock);
	return room;
}

/*
 * Reserve a record of @len bytes.  Returns it with len = @len | BUSY, or
 * NULL when the ring is full or broken.
 */
struct pcb_record *pcb_ring_reserve(struct pcb_ring *ring, u32 len)
{
	u64 need = PCB_REC_SIZE(len);
	struct pcb_record *rec = NULL;
	u64 used;

	spin_lock(&ring->lock);
	used = ring_used(ring);
	if (used != U64_MAX && need <= ring->size - used) {
		rec = ring->data + (ring->prod & ring->mask);
		WRITE_ONCE(rec->len, len | PCB_REC_BUSY);
		ring->prod += need;
		/*
		 * 1: publishes the BUSY word above with the new position,
		 * pairs with the consumer's load-acquire of prod_pos (A).
		 */
		smp_store_release(&ring->hdr->prod_pos, ring->prod);
	}
	spin_unlock(&ring->lock);
	return rec;
}

void pcb_ring_commit(struct pcb_record *rec, u32 len)
{
	/*
	 * 2: the record's contents before its len word loses BUSY, pairs
	 * with the consumer's load-acquire of rec->len (B).
	 */
	smp_store_release(&rec->len, len);
}

void pcb_ring_discard(struct pcb_record *rec, u32 len)
{
	/* 2, as for a commit: the consumer may skip it only once complete. */
	smp_store_release(&rec->len, len | PCB_REC_DISCARD);
}

void pcb_ring_count_drops(struct pcb_ring *ring, u64 n)
{
	spin_lock(&ring->lock);
	WRITE_ONCE(ring->hdr->dropped, ring->hdr->dropped + n);
	spin_unlock(&ring->lock);
}

bool pcb_ring_readable(struct pcb_ring *ring)
{
	/* A: as the consumer does; the kernel only compares positions. */
	return smp_load_acquire(&ring->hdr->prod_pos) !=
	       READ_ONCE(ring->cons->cons_pos);
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
