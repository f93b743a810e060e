// SPDX-License-Identifier: GPL-2.0
/*
 * Rings: PCB_IOC_RING_SETUP, the mmap() rules, the double mapping of the
 * data area, and the ioctls that need a ring.
 */
#include "pcb_util.h"

FIXTURE(ring) {
	int fd;
	long page;
};

FIXTURE_SETUP(ring)
{
	PCBT_OPEN(self->fd);
	self->page = sysconf(_SC_PAGESIZE);
}

FIXTURE_TEARDOWN(ring)
{
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

static bool page_aligned(__u64 v, __u64 page)
{
	return !(v % page);
}

TEST_F(ring, setup_outputs)
{
	struct pcb_ring_setup rs;
	const struct pcb_ring_header *hdr;
	const struct pcb_ring_consumer *cons;
	__u64 page;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 16384, &rs));
	page = rs.page_size;
	EXPECT_EQ((__u64)self->page, page);
	EXPECT_EQ(16384U, rs.data_size);
	EXPECT_EQ(0U, rs.flags);
	EXPECT_EQ(0U, rs.reserved0);
	EXPECT_EQ(0ULL, rs.reserved[0]);
	EXPECT_EQ(0ULL, rs.reserved[1]);
	EXPECT_TRUE(page_aligned(rs.cons_offset, page));
	EXPECT_TRUE(page_aligned(rs.header_offset, page));
	EXPECT_TRUE(page_aligned(rs.data_offset, page));
	EXPECT_TRUE(page_aligned(rs.mmap_size, page));
	EXPECT_NE(rs.cons_offset, rs.header_offset);
	/* The three areas fit in mmap_size and do not overlap. */
	EXPECT_LE(rs.cons_offset + page, rs.mmap_size);
	EXPECT_LE(rs.header_offset + page, rs.mmap_size);
	EXPECT_LE(rs.data_offset + 2 * 16384, rs.mmap_size);
	EXPECT_TRUE(rs.data_offset >= rs.cons_offset + page ||
		    rs.data_offset + 2 * 16384 <= rs.cons_offset);
	EXPECT_TRUE(rs.data_offset >= rs.header_offset + page ||
		    rs.data_offset + 2 * 16384 <= rs.header_offset);

	hdr = pcbt_mmap(self->fd, page, PROT_READ, MAP_SHARED,
			rs.header_offset);
	ASSERT_NE(MAP_FAILED, hdr);
	EXPECT_EQ(PCB_RING_MAGIC, hdr->magic);
	EXPECT_EQ(PCB_RING_VERSION, hdr->version);
	EXPECT_EQ(16384U, hdr->data_size);
	EXPECT_EQ(PCB_REC_ALIGN, hdr->record_align);
	EXPECT_EQ(0U, hdr->flags);
	EXPECT_EQ(0ULL, hdr->dropped);
	EXPECT_EQ(0ULL, hdr->prod_pos);
	/* 0 (no usable TSC) or a frequency between 100 MHz and 20 GHz. */
	EXPECT_TRUE(!hdr->tsc_khz ||
		    (hdr->tsc_khz >= 100000 && hdr->tsc_khz <= 20000000))
		TH_LOG("tsc_khz %u", hdr->tsc_khz);

	cons = pcbt_mmap(self->fd, page, PROT_READ, MAP_SHARED,
			 rs.cons_offset);
	ASSERT_NE(MAP_FAILED, cons);
	EXPECT_EQ(0ULL, cons->cons_pos);
	EXPECT_EQ(0U, cons->flags);
	munmap((void *)hdr, page);
	munmap((void *)cons, page);
}

TEST_F(ring, setup_sizes)
{
	static const __u32 good[] = { PCB_RING_MIN_SIZE, 8192, 1 << 16,
				      1 << 20 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		struct pcbt_ring r;
		int fd = pcbt_ring_open(good[i], &r);

		ASSERT_LE(0, fd) TH_LOG("size %u", good[i]);
		EXPECT_EQ(good[i], r.hdr->data_size);
		pcbt_ring_close(&r);
	}
}

TEST_F(ring, setup_einval_sizes)
{
	unsigned long long max = pcbt_param("max_ring_size", 64 << 20);
	__u32 bad[] = { 0, 1, 8, 2048, PCB_RING_MIN_SIZE / 2,
			PCB_RING_MIN_SIZE - 1, PCB_RING_MIN_SIZE + 1, 6144,
			3 * 4096, 0x80000001, 0xffffffff, 0x80000000,
			(__u32)(max * 2) };
	struct pcb_ring_setup rs;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		if (!bad[i] && i)
			continue;	/* max * 2 overflowed */
		EXPECT_EQ(-EINVAL, pcbt_ring_setup(self->fd, bad[i], &rs))
			TH_LOG("data_size %#x", bad[i]);
	}
	/* Failures left no ring behind. */
	EXPECT_EQ(0, pcbt_ring_setup(self->fd, PCB_RING_MIN_SIZE, &rs));
}

TEST_F(ring, setup_einval_flags_reserved)
{
	struct pcb_ring_setup rs;

	memset(&rs, 0, sizeof(rs));
	rs.data_size = 4096;
	rs.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, &rs));
	rs.flags = 0x80000000;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, &rs));

	memset(&rs, 0, sizeof(rs));
	rs.data_size = 4096;
	rs.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, &rs));

	memset(&rs, 0, sizeof(rs));
	rs.data_size = 4096;
	rs.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, &rs));

	memset(&rs, 0, sizeof(rs));
	rs.data_size = 4096;
	rs.reserved[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, &rs));

	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, NULL));
	EXPECT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));
}

/*
 * RING_SETUP whose result cannot be written back fails with EFAULT; like
 * TOPIC_CREATE and TOPIC_OPEN in that case, it must leave nothing behind,
 * or the endpoint can never learn its offsets (a retry would be EBUSY).
 */
TEST_F(ring, setup_read_only_argument)
{
	struct pcb_ring_setup rs = { .data_size = 4096 }, *ro;

	ro = mmap(NULL, self->page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = rs;
	ASSERT_EQ(0, mprotect(ro, self->page, PROT_READ));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_RING_SETUP, ro));
	munmap(ro, self->page);
	EXPECT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));
}

TEST_F(ring, setup_twice_ebusy)
{
	struct pcb_ring_setup rs;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));
	EXPECT_EQ(-EBUSY, pcbt_ring_setup(self->fd, 4096, &rs));
	EXPECT_EQ(-EBUSY, pcbt_ring_setup(self->fd, 8192, &rs));
}

TEST_F(ring, mmap_before_setup_ebadfd)
{
	void *p = pcbt_mmap(self->fd, self->page, PROT_READ, MAP_SHARED, 0);

	ASSERT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EBADFD, errno);
	p = pcbt_mmap(self->fd, self->page, PROT_READ | PROT_WRITE,
		      MAP_SHARED, 0);
	ASSERT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EBADFD, errno);
}

TEST_F(ring, consumer_page_writable)
{
	struct pcb_ring_setup rs;
	struct pcb_ring_consumer *cons, *ro;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));
	cons = pcbt_mmap(self->fd, rs.page_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, rs.cons_offset);
	ASSERT_NE(MAP_FAILED, cons);
	/* Writing what is already there is harmless. */
	pcbt_store_release(&cons->cons_pos, 0);
	cons->flags = 0;

	/* A second mapping sees the same page. */
	ro = pcbt_mmap(self->fd, rs.page_size, PROT_READ, MAP_SHARED,
		       rs.cons_offset);
	ASSERT_NE(MAP_FAILED, ro);
	cons->reserved1 = 0x5a5a;
	EXPECT_EQ(0x5a5aU, pcbt_load_once(&ro->reserved1));
	cons->reserved1 = 0;
	munmap(ro, rs.page_size);
	munmap(cons, rs.page_size);
}

static int mmap_errno(int fd, size_t len, int prot, int flags, __u64 off)
{
	void *p = pcbt_mmap(fd, len, prot, flags, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		return 0;
	}
	return errno;
}

TEST_F(ring, writable_mappings_eperm)
{
	struct pcb_ring_setup rs;
	int rw = PROT_READ | PROT_WRITE;
	__u64 page;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 8192, &rs));
	page = rs.page_size;

	EXPECT_EQ(EPERM, mmap_errno(self->fd, page, rw, MAP_SHARED,
				    rs.header_offset));
	EXPECT_EQ(EPERM, mmap_errno(self->fd, page, PROT_WRITE, MAP_SHARED,
				    rs.header_offset));
	EXPECT_EQ(EPERM, mmap_errno(self->fd, page, rw, MAP_SHARED,
				    rs.data_offset));
	EXPECT_EQ(EPERM, mmap_errno(self->fd, 2 * 8192, rw, MAP_SHARED,
				    rs.data_offset));
	/* Longer than the consumer page. */
	if (rs.cons_offset + 2 * page <= rs.mmap_size)
		EXPECT_EQ(EPERM, mmap_errno(self->fd, 2 * page, rw,
					    MAP_SHARED, rs.cons_offset));
	EXPECT_EQ(EPERM, mmap_errno(self->fd, rs.mmap_size, rw, MAP_SHARED,
				    0));
	/* Private writable: the writes would never reach the kernel. */
	EXPECT_EQ(EPERM, mmap_errno(self->fd, page, rw, MAP_PRIVATE,
				    rs.cons_offset));
	EXPECT_EQ(EPERM, mmap_errno(self->fd, page, rw, MAP_PRIVATE,
				    rs.data_offset));
	/* Read-only private mappings are fine. */
	EXPECT_EQ(0, mmap_errno(self->fd, page, PROT_READ, MAP_PRIVATE,
				rs.header_offset));
}

TEST_F(ring, readonly_mappings_stay_readonly)
{
	struct pcb_ring_setup rs;
	void *data, *hdr, *cons, *all;
	__u64 page;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 8192, &rs));
	page = rs.page_size;

	data = pcbt_mmap(self->fd, 2 * 8192, PROT_READ, MAP_SHARED,
			 rs.data_offset);
	ASSERT_NE(MAP_FAILED, data);
	EXPECT_EQ(-1, mprotect(data, 2 * 8192, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(data, page, PROT_WRITE));

	hdr = pcbt_mmap(self->fd, page, PROT_READ, MAP_SHARED,
			rs.header_offset);
	ASSERT_NE(MAP_FAILED, hdr);
	EXPECT_EQ(-1, mprotect(hdr, page, PROT_READ | PROT_WRITE));

	/* Even the consumer page, once mapped read-only. */
	cons = pcbt_mmap(self->fd, page, PROT_READ, MAP_SHARED,
			 rs.cons_offset);
	ASSERT_NE(MAP_FAILED, cons);
	EXPECT_EQ(-1, mprotect(cons, page, PROT_READ | PROT_WRITE));

	/* The whole area read-only at once. */
	all = pcbt_mmap(self->fd, rs.mmap_size, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(MAP_FAILED, all);
	EXPECT_EQ(PCB_RING_MAGIC, ((const struct pcb_ring_header *)
				   ((char *)all + rs.header_offset))->magic);
	EXPECT_EQ(-1, mprotect(all, rs.mmap_size, PROT_READ | PROT_WRITE));

	/* A private read-only mapping cannot be made writable either. */
	munmap(data, 2 * 8192);
	data = pcbt_mmap(self->fd, page, PROT_READ, MAP_PRIVATE,
			 rs.data_offset);
	ASSERT_NE(MAP_FAILED, data);
	EXPECT_EQ(-1, mprotect(data, page, PROT_READ | PROT_WRITE));

	munmap(data, page);
	munmap(hdr, page);
	munmap(cons, page);
	munmap(all, rs.mmap_size);
}

TEST_F(ring, mmap_beyond_size_einval)
{
	struct pcb_ring_setup rs;
	__u64 page;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));
	page = rs.page_size;

	EXPECT_EQ(EINVAL, mmap_errno(self->fd, page, PROT_READ, MAP_SHARED,
				     rs.mmap_size));
	EXPECT_EQ(EINVAL, mmap_errno(self->fd, rs.mmap_size + page, PROT_READ,
				     MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, mmap_errno(self->fd, 2 * page, PROT_READ,
				     MAP_SHARED, rs.mmap_size - page));
	EXPECT_EQ(EINVAL, mmap_errno(self->fd, page, PROT_READ, MAP_SHARED,
				     rs.mmap_size + 16 * page));
	/* The last page itself is fine. */
	EXPECT_EQ(0, mmap_errno(self->fd, page, PROT_READ, MAP_SHARED,
				rs.mmap_size - page));
}

TEST_F(ring, ring_ioctls_without_ring_ebadfd)
{
	struct pcb_wait w = { .timeout_ns = 1 };
	char name[PCB_NAME_MAX];
	__u32 id;
	int ret;

	pcbt_name(name, "noring");
	ASSERT_EQ(0, pcbt_create(self->fd, name, 1, 8, 0700, &id));
	EXPECT_EQ(-EBADFD, pcbt_ioctl(self->fd, PCB_IOC_WAIT, &w));
	EXPECT_EQ(-EBADFD, pcbt_ioctl_val(self->fd, PCB_IOC_NOTIFY, 0));
	EXPECT_EQ(-EBADFD, pcbt_subscribe(self->fd, name, 1, 0, NULL));
	/* Nothing to unsubscribe from: either answer says so. */
	ret = pcbt_unsubscribe(self->fd, id);
	EXPECT_TRUE(ret == -EBADFD || ret == -ENOENT) TH_LOG("got %d", ret);
}

TEST_F(ring, notify)
{
	struct pcb_ring_setup rs;

	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));
	EXPECT_EQ(0, pcbt_ioctl_val(self->fd, PCB_IOC_NOTIFY, 0));
	EXPECT_EQ(-EINVAL, pcbt_ioctl_val(self->fd, PCB_IOC_NOTIFY, 1));
	EXPECT_EQ(-EINVAL, pcbt_ioctl_val(self->fd, PCB_IOC_NOTIFY,
					  (unsigned long)&rs));
}

TEST_F(ring, ring_ioctl_argument_errors)
{
	struct pcb_ring_setup rs;
	struct pcb_wait w = { 0 };
	struct pcb_subscribe s = { 0 };
	char name[PCB_NAME_MAX];
	__u32 id;

	pcbt_name(name, "args");
	ASSERT_EQ(0, pcbt_create(self->fd, name, 1, 8, 0700, &id));
	ASSERT_EQ(0, pcbt_ring_setup(self->fd, 4096, &rs));

	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_WAIT, NULL));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_SUBSCRIBE, NULL));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_UNSUBSCRIBE, NULL));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_WAIT, (void *)1));

	w.timeout_ns = 1;
	w.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_WAIT, &w));
	w.flags = 0;
	w.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_WAIT, &w));
	w.reserved0 = 0;
	w.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_WAIT, &w));

	/* UNSUBSCRIBE takes no flags and no reserved bits. */
	ASSERT_EQ(0, pcbt_subscribe(self->fd, name, 1, 0, NULL));
	s.topic_id = id;
	s.flags = PCB_SUB_LOSSY;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_UNSUBSCRIBE, &s));
	s.flags = 0;
	s.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_UNSUBSCRIBE, &s));
	EXPECT_EQ(1LL, pcbt_nr_subs(self->fd, name));
}

/*
 * Fills the data area with records of varying lengths until it has wrapped
 * a few times, then checks that both copies of every byte agree and that
 * a record crossing the end is readable in one piece.
 */
TEST_F(ring, data_is_mapped_twice)
{
	enum { SIZE = 8192, MAX = 700 };
	unsigned char buf[MAX];
	char name[PCB_NAME_MAX];
	struct pcbt_ring r;
	__u32 h, len;
	int i, wrapped = 0, nonzero = 0;

	pcbt_name(name, "dbl");
	ASSERT_EQ(0, pcbt_create(self->fd, name, 1, MAX, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, name, 1, &h));
	ASSERT_EQ(0, pcbt_ring_init(self->fd, SIZE, &r));
	ASSERT_EQ(0, pcbt_subscribe(self->fd, name, 1, 0, NULL));

	for (i = 0; i < 200; i++) {
		const struct pcb_record *rec;
		__u64 start;

		len = 1 + (i * 37) % MAX;
		memset(buf, i & 0xff, len);
		buf[0] = 0xa0;
		buf[len - 1] = 0x0a;
		ASSERT_EQ(0, pcbt_publish(self->fd, h, buf, len,
					  PCB_PUB_NONBLOCK, 0, NULL));
		rec = pcbt_ring_peek(&r);
		ASSERT_NE(NULL, rec) TH_LOG("%s", r.corrupt ?: "no record");
		start = r.pos & (SIZE - 1);
		if (start + r.next_size > SIZE)
			wrapped++;
		ASSERT_EQ(len, rec->payload_len);
		ASSERT_EQ(0, memcmp(pcbt_payload(rec), buf, len))
			TH_LOG("record %d at %llu", i,
			       (unsigned long long)start);
		pcbt_ring_pop(&r);
		ASSERT_EQ(0, pcbt_ring_release(&r));
	}
	EXPECT_LT(0, wrapped);
	for (i = 0; i < SIZE; i++)
		nonzero |= r.data[i];
	EXPECT_NE(0, nonzero);
	EXPECT_EQ(0, memcmp(r.data, r.data + SIZE, SIZE));
	pcbt_ring_unmap(&r);
}

TEST_HARNESS_MAIN
