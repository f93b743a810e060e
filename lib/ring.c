// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The receive ring: setup and mapping, subscriptions, zero-copy reading
 * and waiting.
 *
 * The kernel is the only producer; this library, on behalf of a single
 * consumer thread, is the only writer of cons_pos.  Every barrier below
 * names its pair in the barrier table of <linux/pcb.h> (kernel steps 1-5,
 * consumer steps A-E).
 */
#include <stdbool.h>
#include <sys/mman.h>
#include <time.h>

#include "internal.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds left of @timeout_ns since @start: 0 when none, ~0 for none given. */
static uint64_t time_left(uint64_t start, uint64_t timeout_ns)
{
	uint64_t spent;

	if (!timeout_ns)
		return UINT64_MAX;
	spent = now_ns() - start;
	return spent >= timeout_ns ? 0 : timeout_ns - spent;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Refuse a layout this library was not written for rather than guess. */
static int check_layout(const struct pcb_ring_setup *rs, uint32_t data_size)
{
	uint64_t page = rs->page_size;

	if (!is_pow2(page) || rs->data_size != data_size)
		return -EPROTO;
	if ((rs->cons_offset | rs->header_offset | rs->data_offset) & (page - 1))
		return -EPROTO;
	if (rs->cons_offset + page > rs->mmap_size ||
	    rs->header_offset + page > rs->data_offset ||
	    rs->data_offset + 2ULL * data_size > rs->mmap_size)
		return -EPROTO;
	return 0;
}

static int check_header(const struct pcb_ring_header *hdr, uint32_t data_size)
{
	if (hdr->magic != PCB_RING_MAGIC || hdr->version != PCB_RING_VERSION ||
	    hdr->data_size != data_size || hdr->record_align != PCB_REC_ALIGN)
		return -EPROTO;
	return 0;
}

static void unmap_ring(struct pcb *bus)
{
	if (bus->ro_map)
		munmap(bus->ro_map, bus->ro_map_len);
	if (bus->cons_map)
		munmap(bus->cons_map, bus->cons_map_len);
	bus->ro_map = NULL;
	bus->cons_map = NULL;
	bus->cons = NULL;
	bus->hdr = NULL;
	bus->data = NULL;
}

static int map_ring(struct pcb *bus, const struct pcb_ring_setup *rs)
{
	void *p;
	int ret;

	/* The consumer page: the only one the kernel lets us write. */
	p = mmap(NULL, rs->page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bus->fd, (off_t)rs->cons_offset);
	if (p == MAP_FAILED)
		return -errno;
	bus->cons_map = p;
	bus->cons_map_len = rs->page_size;

	/* Header and both copies of the data area, read-only, in one go. */
	bus->ro_map_len = rs->mmap_size - rs->header_offset;
	p = mmap(NULL, bus->ro_map_len, PROT_READ, MAP_SHARED, bus->fd,
		 (off_t)rs->header_offset);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto err;
	}
	bus->ro_map = p;

	ret = check_header(p, rs->data_size);
	if (ret)
		goto err;

	bus->cons = bus->cons_map;
	bus->hdr = bus->ro_map;
	bus->data = (const unsigned char *)bus->ro_map +
		    (rs->data_offset - rs->header_offset);
	bus->data_size = rs->data_size;
	bus->mask = rs->data_size - 1;
	bus->cons_pos = __atomic_load_n(&bus->cons->cons_pos, __ATOMIC_RELAXED);
	bus->prod_seen = bus->cons_pos;
	return 0;
err:
	unmap_ring(bus);
	return ret;
}

PCB_EXPORT int pcb_ring_setup(struct pcb *bus, size_t data_size)
{
	struct pcb_ring_setup rs = { 0 };
	int ret;

	if (!bus)
		return -EINVAL;
	if (!data_size)
		data_size = PCB_RING_DEFAULT_SIZE;
	if (data_size > UINT32_MAX || !is_pow2(data_size))
		return -EINVAL;
	if (bus->cons)
		return -EBUSY;

	rs.data_size = (uint32_t)data_size;
	ret = pcb_ioctl(bus, PCB_IOC_RING_SETUP, &rs);
	if (ret)
		return ret;
	ret = check_layout(&rs, (uint32_t)data_size);
	if (ret)
		return ret;
	ret = map_ring(bus, &rs);
	if (!ret)
		bus->mono_offset_ns = pcb_mono_offset_ns();
	return ret;
}

PCB_EXPORT int pcb_subscribe(struct pcb *bus, const char *name,
			     uint64_t schema_id, uint32_t flags,
			     uint32_t *topic_id)
{
	return pcb_subscribe_filtered(bus, name, schema_id, flags, NULL,
				      topic_id);
}

PCB_EXPORT int pcb_unsubscribe(struct pcb *bus, uint32_t topic_id)
{
	struct pcb_subscribe arg = { 0 };

	if (!bus)
		return -EINVAL;
	arg.topic_id = topic_id;
	return pcb_ioctl(bus, PCB_IOC_UNSUBSCRIBE, &arg);
}

static bool ring_broken(const struct pcb *bus)
{
	return __atomic_load_n(&bus->hdr->flags, __ATOMIC_RELAXED) &
	       PCB_RING_BROKEN;
}

/* Whether the kernel has reserved anything past our position. */
static bool ring_pending(struct pcb *bus)
{
	if (bus->prod_seen != bus->cons_pos)
		return true;
	/*
	 * A: pairs with 1: the kernel publishes prod_pos with a release
	 * after writing the BUSY length word of each record it reserved, so
	 * every record below prod_pos has a length we may read (step B).
	 */
	bus->prod_seen = __atomic_load_n(&bus->hdr->prod_pos, __ATOMIC_ACQUIRE);
	return bus->prod_seen != bus->cons_pos;
}

/*
 * Whether the record at our position is complete, which is what the
 * kernel's WAIT and poll() wait for: a record still BUSY is being written,
 * and its publisher wakes a sleeping consumer once it commits it, so
 * there is no point spinning on it.
 */
static bool ring_ready(struct pcb *bus)
{
	const struct pcb_record *rec;

	if (!ring_pending(bus))
		return false;
	rec = (const struct pcb_record *)(bus->data +
					  (bus->cons_pos & bus->mask));
	/* B: pairs with 2 (the release that clears BUSY). */
	return !(__atomic_load_n(&rec->len, __ATOMIC_ACQUIRE) & PCB_REC_BUSY);
}

/* Give the ring up to @pos back to the kernel and wake waiting publishers. */
static void advance(struct pcb *bus, uint64_t pos)
{
	bus->cons_pos = pos;
	/*
	 * C: pairs with 3: all our reads of the records below @pos happen
	 * before this store; the kernel load_acquire()s cons_pos before it
	 * writes over those bytes.
	 */
	__atomic_store_n(&bus->cons->cons_pos, pos, __ATOMIC_RELEASE);
	/*
	 * E: pairs with 5 (the publisher sets PCB_RING_PUB_WAITING, smp_mb(),
	 * re-reads cons_pos): either it sees the store above and does not
	 * sleep, or we see its flag below and wake it.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&bus->hdr->flags, __ATOMIC_RELAXED) &
	    PCB_RING_PUB_WAITING)
		ioctl(bus->fd, PCB_IOC_NOTIFY, 0);
}

/* Sanity of a committed record of length word @len at @rec. */
static bool record_ok(const struct pcb *bus, const struct pcb_record *rec,
		      uint32_t len)
{
	uint32_t bytes = len & PCB_REC_LEN_MASK;

	if (bytes < sizeof(*rec) || PCB_REC_SIZE(len) > bus->prod_seen - bus->cons_pos)
		return false;
	if (len & PCB_REC_DISCARD)
		return true;
	return rec->nr_deps <= PCB_MAX_DEPS &&
	       rec->hdr_len >= sizeof(*rec) + rec->nr_deps * sizeof(uint64_t) &&
	       rec->hdr_len <= bytes &&
	       rec->payload_len <= bytes - rec->hdr_len;
}

/*
 * Whether the message at cons_pos is one to show: the receive filter is
 * asked once per message, the first time pcb_peek() comes to it.
 */
static bool recv_accepts(struct pcb *bus, const struct pcb_msg *msg)
{
	if (bus->shown && bus->shown_pos == bus->cons_pos)
		return true;
	if (bus->recv_filter && !bus->recv_filter(msg, bus->recv_filter_arg)) {
		bus->recv_skipped++;
		return false;
	}
	bus->shown = true;
	bus->shown_pos = bus->cons_pos;
	return true;
}

/*
 * The next message to show, skipping discarded records and those the
 * receive filter rejects.  Skipping moves only our copy of cons_pos
 * (@skipped says so); the caller gives the space back with advance().
 */
static int next_message(struct pcb *bus, struct pcb_msg *msg, bool *skipped)
{
	const struct pcb_record *rec;
	uint32_t len;

	for (;;) {
		if (ring_broken(bus))
			return -EPIPE;
		/* Caught up with what we saw: release before reloading it. */
		if (*skipped && bus->cons_pos == bus->prod_seen) {
			advance(bus, bus->cons_pos);
			*skipped = false;
		}
		if (!ring_pending(bus))
			return 0;

		/* The double mapping makes every record contiguous. */
		rec = (const struct pcb_record *)(bus->data +
						  (bus->cons_pos & bus->mask));
		/*
		 * B: pairs with 2: the kernel clears BUSY with a release
		 * after writing the record, so once we see it clear the
		 * contents are visible.
		 */
		len = __atomic_load_n(&rec->len, __ATOMIC_ACQUIRE);
		if (len & PCB_REC_BUSY)
			return 0;
		if (!record_ok(bus, rec, len))
			return -EBADMSG;

		msg->end = bus->cons_pos + PCB_REC_SIZE(len);
		if (!(len & PCB_REC_DISCARD)) {
			msg->rec = rec;
			msg->data = (const unsigned char *)rec + rec->hdr_len;
			msg->len = rec->payload_len;
			if (recv_accepts(bus, msg))
				return 1;
		}
		bus->cons_pos = msg->end;
		*skipped = true;
	}
}

PCB_EXPORT int pcb_peek(struct pcb *bus, struct pcb_msg *msg)
{
	bool skipped = false;
	int ret;

	if (!bus || !msg)
		return -EINVAL;
	if (!bus->hdr)
		return -EBADFD;

	ret = next_message(bus, msg, &skipped);
	if (skipped)
		advance(bus, bus->cons_pos);
	return ret;
}

PCB_EXPORT void pcb_release(struct pcb *bus, const struct pcb_msg *msg)
{
	if (!bus || !msg || !bus->cons)
		return;
	/* Only ever forward, and never past what the kernel produced. */
	if (msg->end - bus->cons_pos - 1 >= bus->prod_seen - bus->cons_pos)
		return;
	advance(bus, msg->end);
}

/* Poll the ring for up to @spin_ns: true when something came. */
static bool spin(struct pcb *bus, uint64_t start, uint64_t spin_ns)
{
	unsigned int i;

	for (;;) {
		for (i = 0; i < 64; i++) {
			if (ring_ready(bus))
				return true;
			cpu_relax();
		}
		if (ring_broken(bus) || now_ns() - start >= spin_ns)
			return false;
	}
}

PCB_EXPORT int pcb_sleep_prepare(struct pcb *bus)
{
	if (!bus || !bus->hdr)
		return -EBADFD;
	__atomic_fetch_or(&bus->cons->flags, PCB_CONS_NEED_WAKEUP,
			  __ATOMIC_RELAXED);
	/* D: pairs with 4 (commit, smp_mb(), test NEED_WAKEUP). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ring_broken(bus))
		return -EPIPE;
	return ring_ready(bus) ? 1 : 0;
}

PCB_EXPORT void pcb_sleep_done(struct pcb *bus)
{
	if (!bus || !bus->hdr)
		return;
	__atomic_fetch_and(&bus->cons->flags, ~(uint32_t)PCB_CONS_NEED_WAKEUP,
			   __ATOMIC_RELAXED);
}

/* Sleep in the kernel until the record at our position is complete. */
static int sleep_on_ring(struct pcb *bus, uint64_t start, uint64_t timeout_ns)
{
	struct pcb_wait w = { 0 };
	int ret = 0;

	__atomic_fetch_or(&bus->cons->flags, PCB_CONS_NEED_WAKEUP,
			  __ATOMIC_RELAXED);
	/*
	 * D: pairs with 4 (commit, smp_mb(), test NEED_WAKEUP): either the
	 * kernel sees our flag and wakes us, or the re-check below sees its
	 * record.  PCB_IOC_WAIT sets the flag itself as well; doing it here
	 * first lets us skip the system call when a record just came.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!ring_ready(bus)) {
		w.timeout_ns = time_left(start, timeout_ns);
		if (!w.timeout_ns)
			ret = -ETIMEDOUT;
		else if (w.timeout_ns == UINT64_MAX)
			w.timeout_ns = 0;
		if (!ret)
			ret = pcb_ioctl(bus, PCB_IOC_WAIT, &w);
	}
	/* Awake again: publishers need not pay for wake-ups. */
	__atomic_fetch_and(&bus->cons->flags, ~(uint32_t)PCB_CONS_NEED_WAKEUP,
			   __ATOMIC_RELAXED);
	return ret;
}

PCB_EXPORT int pcb_wait(struct pcb *bus, uint64_t timeout_ns,
			unsigned int spin_ns)
{
	uint64_t start;

	if (!bus)
		return -EINVAL;
	if (!bus->hdr)
		return -EBADFD;
	if (ring_ready(bus))
		return 0;
	if (ring_broken(bus))
		return -EPIPE;

	start = now_ns();
	if (timeout_ns && spin_ns > timeout_ns)
		spin_ns = (unsigned int)timeout_ns;
	if (spin_ns && spin(bus, start, spin_ns))
		return 0;
	if (ring_broken(bus))
		return -EPIPE;
	return sleep_on_ring(bus, start, timeout_ns);
}

PCB_EXPORT int pcb_receive(struct pcb *bus, struct pcb_msg *msg,
			   uint64_t timeout_ns)
{
	uint64_t start = 0, left = 0;
	int ret;

	for (;;) {
		ret = pcb_peek(bus, msg);
		if (ret)
			return ret;
		if (!start)
			start = now_ns();
		left = time_left(start, timeout_ns);
		if (!left)
			return -ETIMEDOUT;
		ret = pcb_wait(bus, left == UINT64_MAX ? 0 : left, 0);
		if (ret)
			return ret;
	}
}

PCB_EXPORT int pcb_set_recv_filter(struct pcb *bus, pcb_recv_filter_fn fn,
				   void *arg)
{
	if (!bus)
		return -EINVAL;
	bus->recv_filter = fn;
	bus->recv_filter_arg = arg;
	return 0;
}

PCB_EXPORT uint64_t pcb_recv_skipped(const struct pcb *bus)
{
	return bus ? bus->recv_skipped : 0;
}

PCB_EXPORT uint64_t pcb_dropped(const struct pcb *bus)
{
	if (!bus || !bus->hdr)
		return 0;
	return __atomic_load_n(&bus->hdr->dropped, __ATOMIC_RELAXED);
}
