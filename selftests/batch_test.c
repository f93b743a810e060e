// SPDX-License-Identifier: GPL-2.0
/*
 * PCB_IOC_PUBLISH_BATCH: many messages in one system call, one result per
 * entry; with PCB_PUB_ATOMIC all of them or none, across topics.
 */
#include "pcb_util.h"

#define SCHEMA		0xba7c
#define LEN		200	/* every topic's max_msg_size */
#define REC		PCB_REC_SIZE(sizeof(struct pcb_record) + LEN)
#define SMALL_RING	4096U	/* SMALL_RING / REC records of LEN fit */
#define RING		(64U * 1024)
#define BIG_RING	(512U * 1024)	/* PCB_BATCH_MAX records of 8 bytes */
#define NR_TOPICS	3
#define MAX_RINGS	4

/* What the kernel must overwrite, or leave alone. */
#define UNTOUCHED	0x5eadbeef		/* an entry's result */
#define NOT_WRITTEN	0x5eadbeefU		/* the batch's published */

static unsigned char pool[PCB_BATCH_MAX + 1][LEN];

FIXTURE(batch) {
	int pfd;			/* publisher endpoint */
	char names[NR_TOPICS][PCB_NAME_MAX];
	__u32 ids[NR_TOPICS];
	__u32 h[NR_TOPICS];		/* publish handles on pfd */
	struct pcbt_ring ring;		/* reliable, RING, on topic 0 */
	struct pcbt_ring extra[MAX_RINGS];
	int nr_extra;
};

FIXTURE_SETUP(batch)
{
	unsigned int i, k;
	int fd;

	for (i = 0; i <= PCB_BATCH_MAX; i++)
		for (k = 0; k < LEN; k++)
			pool[i][k] = (unsigned char)(i * 31 + k);

	PCBT_OPEN(self->pfd);
	for (i = 0; i < NR_TOPICS; i++) {
		pcbt_name(self->names[i], "batch");
		ASSERT_EQ(0, pcbt_create(self->pfd, self->names[i], SCHEMA, LEN,
					 0700, &self->ids[i]));
		ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->names[i], SCHEMA,
					     &self->h[i]));
	}
	fd = pcbt_ring_open(RING, &self->ring);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->names[0], SCHEMA, 0, NULL));
}

FIXTURE_TEARDOWN(batch)
{
	int i;

	for (i = 0; i < self->nr_extra; i++)
		pcbt_ring_close(&self->extra[i]);
	pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

/* Another subscriber endpoint with a ring of @size bytes. */
static struct pcbt_ring *add_ring(struct __test_metadata *_metadata,
				  FIXTURE_DATA(batch) *self, __u32 size)
{
	struct pcbt_ring *r = &self->extra[self->nr_extra];

	ASSERT_GT(MAX_RINGS, self->nr_extra);
	ASSERT_LE(0, pcbt_ring_open(size, r));
	self->nr_extra++;
	return r;
}

static void set_entry(struct pcb_batch_entry *e, __u32 handle, __u32 i,
		      __u32 len)
{
	memset(e, 0, sizeof(*e));
	e->handle = handle;
	e->payload = (uintptr_t)pool[i];
	e->len = len;
	e->key = 0x6b000000ULL + i;
	e->result = UNTOUCHED;
}

static int batch(int fd, struct pcb_batch_entry *e, __u32 count, __u32 flags,
		 __u64 timeout_ns, __u32 *published)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)e,
		.count = count,
		.flags = flags,
		.timeout_ns = timeout_ns,
		.published = NOT_WRITTEN,
	};
	int ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &b);

	if (published)
		*published = b.published;
	return ret;
}

/* The next record of @r is the message of entry @e, to @topic_id. */
static void expect_entry(struct __test_metadata *_metadata,
			 struct pcbt_ring *r, const struct pcb_batch_entry *e,
			 __u32 topic_id)
{
	const struct pcb_record *rec = pcbt_ring_next(r, PCBT_SEC);

	ASSERT_NE(NULL, rec) TH_LOG("no record for key %llx",
				    (unsigned long long)e->key);
	EXPECT_EQ(topic_id, rec->topic_id);
	EXPECT_EQ(e->msg_id, rec->msg_id);
	EXPECT_EQ(e->seq, rec->seq);
	EXPECT_EQ(e->key, rec->key);
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ((__u32)geteuid(), rec->uid);
	ASSERT_EQ(e->len, rec->payload_len);
	EXPECT_EQ(0, memcmp(pcbt_payload(rec),
			    (const void *)(uintptr_t)e->payload, e->len));
	pcbt_ring_pop(r);
}

static bool ring_empty(struct pcbt_ring *r)
{
	return !pcbt_ring_peek(r) && !r->corrupt;
}

/* Every entry has @result. */
static void expect_all(struct __test_metadata *_metadata,
		       const struct pcb_batch_entry *e, __u32 count, int result)
{
	__u32 i;

	for (i = 0; i < count; i++) {
		ASSERT_EQ(result, e[i].result) TH_LOG("entry %u", i);
	}
}

/* Fills a reliable ring with NONBLOCK publishes of LEN; how many fitted. */
static int fill(int fd, __u32 handle)
{
	int n = 0, ret;

	while (!(ret = pcbt_publish(fd, handle, pool[0], LEN, PCB_PUB_NONBLOCK,
				    0, NULL)))
		n++;
	return ret == -EAGAIN ? n : ret;
}

/* A batch published from another thread. */
struct bg_batch {
	int fd;
	struct pcb_batch_entry *e;
	__u32 count;
	__u32 flags;
	__u64 timeout_ns;
	pthread_t thread;
	int ret;
	__u32 published;
	int done;
};

static void *bg_run(void *p)
{
	struct bg_batch *b = p;

	b->ret = batch(b->fd, b->e, b->count, b->flags, b->timeout_ns,
		       &b->published);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool bg_done(struct bg_batch *b)
{
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

static bool bg_wait(struct bg_batch *b, unsigned int ms)
{
	while (!bg_done(b) && ms--)
		pcbt_sleep_ms(1);
	return bg_done(b);
}

static bool flag_within(const struct pcbt_ring *r, __u32 flag, unsigned int ms)
{
	while (!(pcbt_ring_flags(r) & flag) && ms--)
		pcbt_sleep_ms(1);
	return pcbt_ring_flags(r) & flag;
}

/* Consumes every record and wakes waiting publishers (C, E). */
static void drain_and_notify(struct pcbt_ring *r)
{
	while (pcbt_ring_peek(r))
		pcbt_ring_pop(r);
	pcbt_ring_store_cons(r);
	pcbt_smp_mb();
	pcbt_ioctl_val(r->fd, PCB_IOC_NOTIFY, 0);
}

/* An inaccessible page, for pointers that must fault. */
static void *no_access_page(void)
{
	void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	return p == MAP_FAILED ? NULL : p;
}

TEST_F(batch, one)
{
	struct pcb_batch_entry e;
	struct pcb_publish p;
	__u32 published;

	set_entry(&e, self->h[0], 1, 17);
	ASSERT_EQ(0, batch(self->pfd, &e, 1, 0, 0, &published));
	EXPECT_EQ(1U, published);
	EXPECT_EQ(0, e.result);
	EXPECT_EQ(1ULL, e.seq);
	EXPECT_NE(0ULL, e.msg_id);
	expect_entry(_metadata, &self->ring, &e, self->ids[0]);
	EXPECT_TRUE(ring_empty(&self->ring));
	EXPECT_EQ(1LL, pcbt_published(self->pfd, self->names[0]));

	/* A single publish after it takes the next number and a later id. */
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->h[0], "x", 1, 0, 0, &p));
	EXPECT_EQ(2ULL, p.seq);
	EXPECT_LT(e.msg_id, p.msg_id);

	/* The same with PCB_PUB_ATOMIC. */
	set_entry(&e, self->h[0], 2, LEN);
	ASSERT_EQ(0, batch(self->pfd, &e, 1, PCB_PUB_ATOMIC, 0, &published));
	EXPECT_EQ(1U, published);
	EXPECT_EQ(0, e.result);
	EXPECT_EQ(3ULL, e.seq);
	EXPECT_LT(p.msg_id, e.msg_id);
	pcbt_ring_drain(&self->ring);
}

/* PCB_BATCH_MAX entries, one topic, in entry order. */
static void max_batch(struct __test_metadata *_metadata,
		      FIXTURE_DATA(batch) *self, __u32 flags)
{
	struct pcb_batch_entry *e = calloc(PCB_BATCH_MAX, sizeof(*e));
	struct pcbt_ring *r = add_ring(_metadata, self, BIG_RING);
	__u32 published, i;

	ASSERT_NE(NULL, e);
	ASSERT_EQ(0, pcbt_subscribe(r->fd, self->names[1], SCHEMA, 0, NULL));
	for (i = 0; i < PCB_BATCH_MAX; i++)
		set_entry(&e[i], self->h[1], i, 8);

	ASSERT_EQ(0, batch(self->pfd, e, PCB_BATCH_MAX, flags, 0, &published));
	EXPECT_EQ((__u32)PCB_BATCH_MAX, published);
	for (i = 0; i < PCB_BATCH_MAX; i++) {
		ASSERT_EQ(0, e[i].result) TH_LOG("entry %u", i);
		ASSERT_EQ(i + 1ULL, e[i].seq);
		if (i)
			ASSERT_LT(e[i - 1].msg_id, e[i].msg_id);
	}
	for (i = 0; i < PCB_BATCH_MAX; i++)
		expect_entry(_metadata, r, &e[i], self->ids[1]);
	EXPECT_TRUE(ring_empty(r));
	EXPECT_EQ((long long)PCB_BATCH_MAX,
		  pcbt_published(self->pfd, self->names[1]));
	free(e);
}

TEST_F(batch, max_count)
{
	max_batch(_metadata, self, 0);
}

TEST_F(batch, max_count_atomic)
{
	max_batch(_metadata, self, PCB_PUB_ATOMIC);
}

TEST_F(batch, count_out_of_range)
{
	static const __u32 flags[] = { 0, PCB_PUB_ATOMIC, PCB_PUB_NONBLOCK };
	struct pcb_batch_entry *e = calloc(PCB_BATCH_MAX + 1, sizeof(*e));
	__u32 published, i;

	ASSERT_NE(NULL, e);
	for (i = 0; i <= PCB_BATCH_MAX; i++)
		set_entry(&e[i], self->h[0], 0, 1);
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		EXPECT_EQ(-EINVAL, batch(self->pfd, e, 0, flags[i], 0,
					 &published));
		EXPECT_EQ(NOT_WRITTEN, published);
		EXPECT_EQ(-EINVAL, batch(self->pfd, e, PCB_BATCH_MAX + 1,
					 flags[i], 0, &published));
		EXPECT_EQ(NOT_WRITTEN, published);
		EXPECT_EQ(-EINVAL, batch(self->pfd, e, ~0U, flags[i], 0, NULL));
	}
	EXPECT_EQ(UNTOUCHED, e[0].result);
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_TRUE(ring_empty(&self->ring));
	free(e);
}

TEST_F(batch, flags_and_reserved)
{
	struct pcb_batch_entry e;
	struct pcb_publish_batch b;
	unsigned int i;

	set_entry(&e, self->h[0], 0, 1);
	for (i = 0; i < 5; i++) {
		memset(&b, 0, sizeof(b));
		b.entries = (uintptr_t)&e;
		b.count = 1;
		switch (i) {
		case 0: b.flags = PCB_BATCH_FLAGS_ALL + 1; break;
		case 1: b.flags = 0x80000000U | PCB_PUB_ATOMIC; break;
		case 2: b.nr_deps = PCB_MAX_DEPS + 1; break;
		case 3: b.reserved[0] = 1; break;
		case 4: b.reserved[0] = ~0ULL; break;
		}
		EXPECT_EQ(-EINVAL, pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH,
					      &b)) TH_LOG("case %u", i);
	}
	EXPECT_EQ(UNTOUCHED, e.result);
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[0]));

	/* published is an output: whatever it held does not matter. */
	memset(&b, 0, sizeof(b));
	b.entries = (uintptr_t)&e;
	b.count = 1;
	b.published = 77;
	EXPECT_EQ(0, pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH, &b));
	EXPECT_EQ(1U, b.published);
}

TEST_F(batch, argument_efault)
{
	struct pcb_publish_batch *ro;

	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH, NULL));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH,
				      no_access_page()));

	/* Readable but not writable: published cannot be written back. */
	ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	memset(ro, 0, sizeof(*ro));
	ro->count = 1;
	ro->flags = PCB_PUB_ATOMIC;
	ro->entries = (uintptr_t)calloc(1, sizeof(struct pcb_batch_entry));
	set_entry((void *)(uintptr_t)ro->entries, self->h[0], 0, 1);
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH, ro));
	free((void *)(uintptr_t)ro->entries);
	munmap(ro, 4096);
	pcbt_ring_drain(&self->ring);
}

/* @entries not readable, or not writable, for each kind of batch. */
TEST_F(batch, entries_efault)
{
	static const __u32 flags[] = { 0, PCB_PUB_ATOMIC };
	struct pcb_batch_entry *e;
	unsigned char *pages;
	__u32 published, i;

	pages = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, pages);
	ASSERT_EQ(0, munmap(pages + 4096, 4096));
	/* Two entries, the second running off the end of the mapping. */
	e = (void *)(pages + 4096 - sizeof(*e) - sizeof(*e) / 2);

	for (i = 0; i < 2; i++) {
		EXPECT_EQ(-EFAULT, batch(self->pfd, NULL, 1, flags[i], 0,
					 &published));
		EXPECT_EQ(NOT_WRITTEN, published);
		EXPECT_EQ(-EFAULT, batch(self->pfd, no_access_page(), 3,
					 flags[i], 0, &published));
		EXPECT_EQ(NOT_WRITTEN, published);
		EXPECT_EQ(-EFAULT, batch(self->pfd,
					 (void *)(uintptr_t)0xffff800000000000ULL,
					 1, flags[i], 0, NULL));
	}

	/* Atomic: nothing is published when part of the array is missing. */
	set_entry(&e[0], self->h[0], 0, 1);
	EXPECT_EQ(-EFAULT, batch(self->pfd, e, 2, PCB_PUB_ATOMIC, 0,
				 &published));
	EXPECT_EQ(NOT_WRITTEN, published);
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_TRUE(ring_empty(&self->ring));

	/* Read-only entries: results cannot be written. */
	e = (void *)pages;
	set_entry(&e[0], self->h[0], 0, 1);
	set_entry(&e[1], self->h[0], 1, 2);
	ASSERT_EQ(0, mprotect(pages, 4096, PROT_READ));
	EXPECT_EQ(-EFAULT, batch(self->pfd, e, 2, PCB_PUB_ATOMIC, 0,
				 &published));
	EXPECT_EQ(NOT_WRITTEN, published);
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_TRUE(ring_empty(&self->ring));

	/*
	 * Without PCB_PUB_ATOMIC an entry may be published before its result
	 * fails to be written; the ioctl still fails and leaves published.
	 */
	EXPECT_EQ(-EFAULT, batch(self->pfd, e, 2, 0, 0, &published));
	EXPECT_EQ(NOT_WRITTEN, published);
	EXPECT_GE(1LL, pcbt_published(self->pfd, self->names[0]));
	munmap(pages, 4096);
	pcbt_ring_drain(&self->ring);
}

/* The invalid entries of mixed_invalid() and atomic_invalid_entry. */
enum bad_kind { BAD_HANDLE, BAD_SIZE, BAD_PAYLOAD, BAD_FLAGS, NR_BAD };

static int make_bad(struct pcb_batch_entry *e, enum bad_kind kind)
{
	switch (kind) {
	case BAD_HANDLE:
		e->handle = PCB_MAX_HANDLES - 1;
		return -EBADF;
	case BAD_SIZE:
		e->len = LEN + 1;
		return -EMSGSIZE;
	case BAD_PAYLOAD:
		e->payload = (uintptr_t)no_access_page();
		return -EFAULT;
	case BAD_FLAGS:
		e->flags = 1;
		return -EINVAL;
	default:
		return 0;
	}
}

/*
 * Without PCB_PUB_ATOMIC, invalid entries fail alone: the others are
 * published, in entry order, across two topics.
 */
TEST_F(batch, mixed_invalid)
{
	struct pcb_batch_entry e[12];
	int expect[12];
	__u64 next_seq[2] = { 1, 1 };
	__u32 published, i, nr_ok = 0;

	ASSERT_EQ(0, pcbt_subscribe(self->ring.fd, self->names[1], SCHEMA, 0,
				    NULL));
	for (i = 0; i < 12; i++) {
		set_entry(&e[i], self->h[i % 2], i, (i * 37) % (LEN + 1));
		expect[i] = 0;
		if (i % 3 == 1 && i / 3 < NR_BAD)
			expect[i] = make_bad(&e[i], i / 3);
	}
	/* A message of no bytes needs no payload. */
	e[11].len = 0;
	e[11].payload = 0;

	ASSERT_EQ(0, batch(self->pfd, e, 12, 0, 0, &published));
	for (i = 0; i < 12; i++) {
		ASSERT_EQ(expect[i], e[i].result) TH_LOG("entry %u", i);
		if (expect[i])
			continue;
		nr_ok++;
		EXPECT_EQ(next_seq[i % 2]++, e[i].seq);
	}
	EXPECT_EQ(nr_ok, published);
	EXPECT_EQ(8U, nr_ok);
	/* Exactly the published ones, in entry order. */
	for (i = 0; i < 12; i++)
		if (!expect[i])
			expect_entry(_metadata, &self->ring, &e[i],
				     self->ids[i % 2]);
	EXPECT_TRUE(ring_empty(&self->ring));
	EXPECT_EQ((long long)next_seq[0] - 1,
		  pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ((long long)next_seq[1] - 1,
		  pcbt_published(self->pfd, self->names[1]));
}

/*
 * Without PCB_PUB_ATOMIC, consecutive small entries to one topic go out as
 * runs (and the entries are read in blocks): invalid entries inside a run,
 * at a block's end and at the next one's start, fail alone; every other
 * entry is delivered exactly, in entry order, with consecutive sequence
 * numbers and increasing ids; a filtered ring gets exactly what its filter
 * takes; a lossy ring too small for them all gets what fits, in order, and
 * counts every other one as dropped.
 */
TEST_F(batch, runs_with_invalid)
{
	struct pcb_batch_entry e[40];
	struct pcbt_ring *lossy = add_ring(_metadata, self, SMALL_RING);
	struct pcbt_ring *odd = add_ring(_metadata, self, RING);
	const __u32 n = ARRAY_SIZE(e);
	__u64 seq = 1, last_id = 0;
	__u32 published, i, nr_ok = 0, in_lossy = 0;
	int expect[ARRAY_SIZE(e)];
	union pcbt_filter f;

	ASSERT_EQ(0, pcbt_subscribe(lossy->fd, self->names[0], SCHEMA,
				    PCB_SUB_LOSSY, NULL));
	/* A filter that takes the entries of odd index (their keys). */
	ASSERT_EQ(0, pcbt_subscribe(odd->fd, self->names[0], SCHEMA, 0, NULL));
	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_ANY, 1);
	ASSERT_EQ(0, pcbt_set_filter(odd->fd, self->ids[0], &f.f));
	for (i = 0; i < n; i++) {
		set_entry(&e[i], self->h[0], i, (i * 53) % (LEN + 1));
		expect[i] = 0;
	}
	expect[5] = make_bad(&e[5], BAD_PAYLOAD);
	expect[15] = make_bad(&e[15], BAD_SIZE);
	expect[16] = make_bad(&e[16], BAD_FLAGS);
	expect[33] = make_bad(&e[33], BAD_HANDLE);
	e[20].len = 0;
	e[20].payload = 0;

	ASSERT_EQ(0, batch(self->pfd, e, n, 0, 0, &published));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(expect[i], e[i].result) TH_LOG("entry %u", i);
		if (expect[i])
			continue;
		nr_ok++;
		EXPECT_EQ(seq++, e[i].seq) TH_LOG("entry %u", i);
		EXPECT_LT(last_id, e[i].msg_id) TH_LOG("entry %u", i);
		last_id = e[i].msg_id;
	}
	EXPECT_EQ(n - 4, nr_ok);
	EXPECT_EQ(nr_ok, published);
	for (i = 0; i < n; i++)
		if (!expect[i])
			expect_entry(_metadata, &self->ring, &e[i], self->ids[0]);
	EXPECT_TRUE(ring_empty(&self->ring));
	EXPECT_EQ((long long)nr_ok, pcbt_published(self->pfd, self->names[0]));
	for (i = 1; i < n; i += 2)
		if (!expect[i])
			expect_entry(_metadata, odd, &e[i], self->ids[0]);
	EXPECT_TRUE(ring_empty(odd));

	/*
	 * The lossy ring: the published entries that found room, in order
	 * (a short one may fit after a long one did not), the rest dropped.
	 */
	for (i = 0; i < n; i++) {
		const struct pcb_record *rec = pcbt_ring_peek(lossy);

		if (expect[i] || !rec || rec->msg_id != e[i].msg_id)
			continue;
		expect_entry(_metadata, lossy, &e[i], self->ids[0]);
		in_lossy++;
	}
	EXPECT_TRUE(ring_empty(lossy));
	EXPECT_LT(0U, in_lossy);
	EXPECT_GT(nr_ok, in_lossy);
	EXPECT_EQ((__u64)(nr_ok - in_lossy), lossy->hdr->dropped);
}

TEST_F(batch, closed_and_deleted_handles)
{
	struct pcb_batch_entry e[3];
	__u32 published;

	ASSERT_EQ(0, pcbt_close_topic(self->pfd, self->h[2]));
	ASSERT_EQ(0, pcbt_delete(self->pfd, self->names[1]));
	set_entry(&e[0], self->h[2], 0, 1);
	set_entry(&e[1], self->h[1], 1, 1);
	set_entry(&e[2], self->h[0], 2, 1);

	ASSERT_EQ(0, batch(self->pfd, e, 3, 0, 0, &published));
	EXPECT_EQ(1U, published);
	EXPECT_EQ(-EBADF, e[0].result);
	EXPECT_EQ(-EIDRM, e[1].result);
	EXPECT_EQ(0, e[2].result);
	expect_entry(_metadata, &self->ring, &e[2], self->ids[0]);

	/* Atomic: EBADF is one entry's fault, EIDRM the whole batch's. */
	set_entry(&e[0], self->h[0], 0, 1);
	set_entry(&e[1], self->h[2], 1, 1);
	EXPECT_EQ(-EBADF, batch(self->pfd, e, 2, PCB_PUB_ATOMIC, 0,
				&published));
	EXPECT_EQ(-ECANCELED, e[0].result);
	EXPECT_EQ(-EBADF, e[1].result);

	set_entry(&e[0], self->h[0], 0, 1);
	set_entry(&e[1], self->h[1], 1, 1);
	EXPECT_EQ(-EIDRM, batch(self->pfd, e, 2, PCB_PUB_ATOMIC, 0,
				&published));
	EXPECT_EQ(NOT_WRITTEN, published);
	expect_all(_metadata, e, 2, -EIDRM);
	EXPECT_EQ(1LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_TRUE(ring_empty(&self->ring));
}

/* The ring's records, sorted by topic id, then by entry. */
static void expect_grouped(struct __test_metadata *_metadata,
			   struct pcbt_ring *r,
			   const struct pcb_batch_entry *e, const int *topic,
			   __u32 count, const __u32 *ids, const bool *subbed)
{
	bool done[NR_TOPICS] = { false };
	unsigned int round, t, best;
	__u32 i;

	for (round = 0; round < NR_TOPICS; round++) {
		best = NR_TOPICS;
		for (t = 0; t < NR_TOPICS; t++)
			if (!done[t] && (best == NR_TOPICS || ids[t] < ids[best]))
				best = t;
		done[best] = true;
		if (!subbed[best])
			continue;
		for (i = 0; i < count; i++)
			if (topic[i] == (int)best)
				expect_entry(_metadata, r, &e[i], ids[best]);
	}
	EXPECT_TRUE(ring_empty(r));
}

/*
 * An atomic batch across three topics: ids in entry order, each topic's
 * sequence numbers contiguous, and a ring subscribed to several of them
 * gets the records grouped by topic, in ascending topic id.
 */
TEST_F(batch, atomic_across_topics)
{
	static const int topic[] = { 2, 0, 1, 1, 2, 0, 0, 1, 2, 2, 0, 1, 2 };
	static const bool all[NR_TOPICS] = { true, true, true };
	static const bool only1[NR_TOPICS] = { false, true, false };
	const __u32 n = ARRAY_SIZE(topic);
	struct pcb_batch_entry e[ARRAY_SIZE(topic)];
	__u64 seq[NR_TOPICS] = { 0, 1, 2 };	/* published before */
	struct pcbt_ring *r1;
	__u32 published, i;

	/* Sequence numbers taken before the batch, not seen by the rings. */
	for (i = 0; i < NR_TOPICS; i++) {
		__u64 k;

		for (k = 0; k < seq[i]; k++)
			ASSERT_EQ(0, pcbt_publish(self->pfd, self->h[i], "p", 1,
						  0, 0, NULL));
	}
	pcbt_ring_drain(&self->ring);
	for (i = 1; i < NR_TOPICS; i++)
		ASSERT_EQ(0, pcbt_subscribe(self->ring.fd, self->names[i],
					    SCHEMA, 0, NULL));
	r1 = add_ring(_metadata, self, RING);
	ASSERT_EQ(0, pcbt_subscribe(r1->fd, self->names[1], SCHEMA, 0, NULL));

	for (i = 0; i < n; i++)
		set_entry(&e[i], self->h[topic[i]], i, (i * 53) % (LEN + 1));
	ASSERT_EQ(0, batch(self->pfd, e, n, PCB_PUB_ATOMIC, 0, &published));
	EXPECT_EQ(n, published);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, e[i].result) TH_LOG("entry %u", i);
		EXPECT_EQ(++seq[topic[i]], e[i].seq) TH_LOG("entry %u", i);
		if (i)
			EXPECT_LT(e[i - 1].msg_id, e[i].msg_id);
	}
	for (i = 0; i < NR_TOPICS; i++)
		EXPECT_EQ((long long)seq[i],
			  pcbt_published(self->pfd, self->names[i]));

	expect_grouped(_metadata, &self->ring, e, topic, n, self->ids, all);
	expect_grouped(_metadata, r1, e, topic, n, self->ids, only1);
}

/*
 * One invalid entry fails an atomic batch: it has the error, the others
 * -ECANCELED, nothing reaches any ring and no sequence number is used.
 */
TEST_F(batch, atomic_invalid_entry)
{
	struct pcb_batch_entry e[6];
	struct pcb_publish p;
	__u32 published, i;
	int kind, err;

	ASSERT_EQ(0, pcbt_subscribe(self->ring.fd, self->names[1], SCHEMA, 0,
				    NULL));
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->h[0], "a", 1, 0, 0, NULL));
	pcbt_ring_drain(&self->ring);

	for (kind = 0; kind < NR_BAD; kind++) {
		unsigned int bad = (unsigned int)kind + 1;

		for (i = 0; i < 6; i++)
			set_entry(&e[i], self->h[i % 2], i, LEN - i);
		err = make_bad(&e[bad], kind);
		EXPECT_EQ(err, batch(self->pfd, e, 6, PCB_PUB_ATOMIC, 0,
				     &published)) TH_LOG("kind %d", kind);
		EXPECT_EQ(NOT_WRITTEN, published);
		for (i = 0; i < 6; i++) {
			EXPECT_EQ(i == bad ? err : -ECANCELED, e[i].result)
				TH_LOG("kind %d entry %u", kind, i);
		}
		EXPECT_TRUE(ring_empty(&self->ring));
		EXPECT_EQ(1LL, pcbt_published(self->pfd, self->names[0]));
		EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));
	}

	/* Nothing was used up: the next messages take the next numbers. */
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->h[0], "b", 1, 0, 0, &p));
	EXPECT_EQ(2ULL, p.seq);
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->h[1], "c", 1, 0, 0, &p));
	EXPECT_EQ(1ULL, p.seq);
	EXPECT_EQ(2U, pcbt_ring_drain(&self->ring));
}

TEST_F(batch, atomic_too_many_topics)
{
	enum { N = PCB_BATCH_ATOMIC_TOPICS + 1 };
	char names[N][PCB_NAME_MAX];
	struct pcb_batch_entry e[2 * N];
	__u32 h[N], published, i;

	for (i = 0; i < N; i++) {
		if (i < NR_TOPICS) {
			h[i] = self->h[i];
			continue;
		}
		pcbt_name(names[i], "many");
		ASSERT_EQ(0, pcbt_create(self->pfd, names[i], SCHEMA, LEN, 0700,
					 NULL));
		ASSERT_EQ(0, pcbt_open_topic(self->pfd, names[i], SCHEMA,
					     &h[i]));
	}

	/* PCB_BATCH_ATOMIC_TOPICS topics, each named twice: fine. */
	for (i = 0; i < 2 * (N - 1); i++)
		set_entry(&e[i], h[i % (N - 1)], i, 8);
	ASSERT_EQ(0, batch(self->pfd, e, 2 * (N - 1), PCB_PUB_ATOMIC, 0,
			   &published));
	EXPECT_EQ(2U * (N - 1), published);
	EXPECT_EQ(2U, pcbt_ring_drain(&self->ring));

	/* One more topic: its first entry is the one at fault. */
	for (i = 0; i < 2 * N; i++)
		set_entry(&e[i], h[i % N], i, 8);
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, 2 * N, PCB_PUB_ATOMIC, 0,
				&published));
	EXPECT_EQ(NOT_WRITTEN, published);
	for (i = 0; i < 2 * N; i++) {
		EXPECT_EQ(i == N - 1 ? -E2BIG : -ECANCELED, e[i].result)
			TH_LOG("entry %u", i);
	}
	for (i = 0; i < NR_TOPICS; i++)
		EXPECT_EQ(2LL, pcbt_published(self->pfd, self->names[i]));
	EXPECT_TRUE(ring_empty(&self->ring));

	/* Without PCB_PUB_ATOMIC there is no such limit. */
	ASSERT_EQ(0, batch(self->pfd, e, 2 * N, 0, 0, &published));
	EXPECT_EQ(2U * N, published);
	EXPECT_EQ(2U, pcbt_ring_drain(&self->ring));
}

/* A topic's records of one atomic batch must fit each reliable ring. */
TEST_F(batch, atomic_bigger_than_ring)
{
	const __u32 fit = SMALL_RING / REC;
	struct pcb_batch_entry e[SMALL_RING / REC + 1];
	struct pcbt_ring *small = add_ring(_metadata, self, SMALL_RING);
	__u32 published, i;
	__u64 t0;

	ASSERT_EQ(0, pcbt_subscribe(small->fd, self->names[0], SCHEMA, 0,
				    NULL));
	for (i = 0; i <= fit; i++)
		set_entry(&e[i], self->h[0], i, LEN);

	/* Even with nothing in the ring, and without waiting for room. */
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, fit + 1, PCB_PUB_ATOMIC, 0,
				&published));
	EXPECT_GT(5 * PCBT_SEC, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	EXPECT_EQ(NOT_WRITTEN, published);
	expect_all(_metadata, e, fit + 1, -E2BIG);
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, fit + 1,
				PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, 0, NULL));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_TRUE(ring_empty(small));
	EXPECT_TRUE(ring_empty(&self->ring));

	/* What fits exactly is published. */
	for (i = 0; i < fit; i++)
		set_entry(&e[i], self->h[0], i, LEN);
	ASSERT_EQ(0, batch(self->pfd, e, fit, PCB_PUB_ATOMIC, 0, &published));
	EXPECT_EQ(fit, published);
	for (i = 0; i < fit; i++)
		expect_entry(_metadata, small, &e[i], self->ids[0]);
	EXPECT_EQ(fit, pcbt_ring_drain(&self->ring));
}

/*
 * Two topics whose records each fit a ring subscribed to both, but not
 * together: the batch can never be published as a whole.
 */
TEST_F(batch, atomic_topics_together_bigger_than_ring)
{
	const __u32 per_topic = SMALL_RING / REC / 2 + 1;
	struct pcb_batch_entry e[2 * (SMALL_RING / REC / 2 + 1)];
	struct pcbt_ring *small = add_ring(_metadata, self, SMALL_RING);
	__u32 published, i;

	ASSERT_EQ(0, pcbt_subscribe(small->fd, self->names[0], SCHEMA, 0,
				    NULL));
	ASSERT_EQ(0, pcbt_subscribe(small->fd, self->names[1], SCHEMA, 0,
				    NULL));
	for (i = 0; i < 2 * per_topic; i++)
		set_entry(&e[i], self->h[i % 2], i, LEN);
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, 2 * per_topic,
				PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, 0,
				&published));
	EXPECT_EQ(-E2BIG, e[0].result);
	/* Not a wait for room that can never come. */
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, 2 * per_topic, PCB_PUB_ATOMIC,
				500 * PCBT_MS, &published));
	EXPECT_EQ(-E2BIG, e[0].result);
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_TRUE(ring_empty(small));
}

/* A lossy ring that cannot take a topic's records misses all of them. */
TEST_F(batch, atomic_lossy_drops)
{
	const __u32 fit = SMALL_RING / REC;
	struct pcb_batch_entry e[SMALL_RING / REC + 1];
	struct pcbt_ring *lossy = add_ring(_metadata, self, SMALL_RING);
	__u32 published, i;

	ASSERT_EQ(0, pcbt_subscribe(lossy->fd, self->names[0], SCHEMA,
				    PCB_SUB_LOSSY, NULL));

	/* Bigger than the lossy ring: every record is a drop. */
	for (i = 0; i <= fit; i++)
		set_entry(&e[i], self->h[0], i, LEN);
	ASSERT_EQ(0, batch(self->pfd, e, fit + 1, PCB_PUB_ATOMIC, 0,
			   &published));
	EXPECT_EQ(fit + 1, published);
	EXPECT_EQ(fit + 1ULL, lossy->hdr->dropped);
	EXPECT_TRUE(ring_empty(lossy));
	for (i = 0; i <= fit; i++)
		expect_entry(_metadata, &self->ring, &e[i], self->ids[0]);

	/* Half full: a batch that does not fit the rest is dropped whole. */
	for (i = 0; i < fit / 2; i++)
		ASSERT_EQ(0, pcbt_publish(self->pfd, self->h[0], pool[0], LEN,
					  0, 0, NULL));
	for (i = 0; i < fit - fit / 2 + 1; i++)
		set_entry(&e[i], self->h[0], i, LEN);
	ASSERT_EQ(0, batch(self->pfd, e, fit - fit / 2 + 1, PCB_PUB_ATOMIC, 0,
			   &published));
	EXPECT_EQ(2ULL * fit - fit / 2 + 2, lossy->hdr->dropped);
	EXPECT_EQ(fit / 2, pcbt_ring_drain(lossy));

	/* And one that fits arrives whole. */
	ASSERT_EQ(0, batch(self->pfd, e, 3, PCB_PUB_ATOMIC, 0, &published));
	for (i = 0; i < 3; i++)
		expect_entry(_metadata, lossy, &e[i], self->ids[0]);
	EXPECT_EQ(2ULL * fit - fit / 2 + 2, lossy->hdr->dropped);
	pcbt_ring_drain(&self->ring);
}

/*
 * A ring subscribed reliably to some topics of an atomic batch and lossy
 * to others gets the chunks of its reliable subscriptions first (a lossy
 * one never takes the room of a reliable one), then the lossy ones, each
 * kind in ascending topic id, and the records of a topic together.
 */
TEST_F(batch, atomic_reliable_chunks_first)
{
	static const int topic[] = { 0, 2, 1, 1, 0, 2, 2, 1, 0 };
	static const int order[NR_TOPICS] = { 2, 0, 1 };
	const __u32 n = ARRAY_SIZE(topic);
	struct pcb_batch_entry e[ARRAY_SIZE(topic)];
	struct pcbt_ring *r = add_ring(_metadata, self, RING);
	__u32 published, i, k;

	/* Created in turn: their ids rise. */
	ASSERT_LT(self->ids[0], self->ids[1]);
	ASSERT_LT(self->ids[1], self->ids[2]);
	ASSERT_EQ(0, pcbt_subscribe(r->fd, self->names[0], SCHEMA,
				    PCB_SUB_LOSSY, NULL));
	ASSERT_EQ(0, pcbt_subscribe(r->fd, self->names[1], SCHEMA,
				    PCB_SUB_LOSSY, NULL));
	ASSERT_EQ(0, pcbt_subscribe(r->fd, self->names[2], SCHEMA, 0, NULL));
	for (i = 0; i < n; i++)
		set_entry(&e[i], self->h[topic[i]], i, LEN - i);
	ASSERT_EQ(0, batch(self->pfd, e, n, PCB_PUB_ATOMIC, 0, &published));
	EXPECT_EQ(n, published);
	for (k = 0; k < NR_TOPICS; k++)
		for (i = 0; i < n; i++)
			if (topic[i] == order[k])
				expect_entry(_metadata, r, &e[i],
					     self->ids[order[k]]);
	EXPECT_TRUE(ring_empty(r));
	EXPECT_EQ(0ULL, r->hdr->dropped);
	pcbt_ring_drain(&self->ring);
}

/*
 * The payloads of an atomic batch add up to PCB_BATCH_ATOMIC_BYTES at
 * most, as the kernel copies them all before it publishes any: one byte
 * more is E2BIG for the whole batch, every entry's result included.
 */
TEST_F_TIMEOUT(batch, atomic_byte_limit, 60)
{
	enum { MIB = 1 << 20, N = PCB_BATCH_ATOMIC_BYTES / MIB };
	struct pcb_batch_entry e[N + 1];
	char name[PCB_NAME_MAX];
	unsigned char *buf;
	__u32 h, published, i;

	if (pcbt_param("max_msg_size", MIB) < MIB)
		SKIP(return, "module parameter max_msg_size is below 1 MiB");
	buf = calloc(1, MIB);
	ASSERT_NE(NULL, buf);
	pcbt_name(name, "bytes");
	ASSERT_EQ(0, pcbt_create(self->pfd, name, SCHEMA, MIB, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, name, SCHEMA, &h));

	/* N MiB and one byte, all from one buffer. */
	for (i = 0; i <= N; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].handle = h;
		e[i].payload = (uintptr_t)buf;
		e[i].len = i < N ? MIB : 1;
		e[i].result = UNTOUCHED;
	}
	EXPECT_EQ(-E2BIG, batch(self->pfd, e, N + 1, PCB_PUB_ATOMIC, 0,
				&published));
	EXPECT_EQ(NOT_WRITTEN, published);
	expect_all(_metadata, e, N + 1, -E2BIG);
	EXPECT_EQ(0LL, pcbt_published(self->pfd, name));

	/* The limit itself is allowed. */
	for (i = 0; i <= N; i++)
		e[i].result = UNTOUCHED;
	e[N].len = 0;
	ASSERT_EQ(0, batch(self->pfd, e, N + 1, PCB_PUB_ATOMIC, 0,
			   &published));
	EXPECT_EQ(N + 1U, published);
	expect_all(_metadata, e, N + 1, 0);
	EXPECT_EQ(N + 1LL, pcbt_published(self->pfd, name));
	free(buf);
}

/* A small reliable ring on topic 0, full. */
static struct pcbt_ring *full_ring(struct __test_metadata *_metadata,
				   FIXTURE_DATA(batch) *self, int *n)
{
	struct pcbt_ring *small = add_ring(_metadata, self, SMALL_RING);

	ASSERT_EQ(0, pcbt_subscribe(small->fd, self->names[0], SCHEMA, 0,
				    NULL));
	*n = fill(self->pfd, self->h[0]);
	ASSERT_EQ((int)(SMALL_RING / REC), *n);
	pcbt_ring_drain(&self->ring);
	return small;
}

/*
 * Entries to topic 0 and to topic 1, which nobody subscribed to, each
 * taking a full record: none fits what fill() leaves of a ring.
 */
static void two_topic_entries(FIXTURE_DATA(batch) *self,
			      struct pcb_batch_entry *e, __u32 count)
{
	__u32 i;

	for (i = 0; i < count; i++)
		set_entry(&e[i], self->h[i % 2], i, LEN - i % 2);
}

TEST_F(batch, atomic_full_ring_nonblock)
{
	struct pcb_batch_entry e[4];
	struct pcbt_ring *small;
	__u32 published;
	__u64 prod;
	int n;

	small = full_ring(_metadata, self, &n);
	prod = pcbt_prod_pos(small);
	two_topic_entries(self, e, 4);
	EXPECT_EQ(-EAGAIN, batch(self->pfd, e, 4,
				 PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK,
				 10 * PCBT_SEC, &published));
	EXPECT_EQ(NOT_WRITTEN, published);
	expect_all(_metadata, e, 4, -EAGAIN);
	/* Not even the topic nobody listens to took the messages. */
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ(prod, pcbt_prod_pos(small));
	EXPECT_TRUE(ring_empty(&self->ring));
	EXPECT_EQ(0U, pcbt_ring_flags(small) & PCB_RING_PUB_WAITING);

	/* Room for one of the two records to topic 0 is not enough. */
	ASSERT_NE(NULL, pcbt_ring_peek(small));
	pcbt_ring_pop(small);
	pcbt_ring_release(small);
	two_topic_entries(self, e, 4);
	EXPECT_EQ(-EAGAIN, batch(self->pfd, e, 4,
				 PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, 0, NULL));
	expect_all(_metadata, e, 4, -EAGAIN);
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ(n - 1U, pcbt_ring_drain(small));
}

TEST_F(batch, atomic_full_ring_etimedout)
{
	struct pcb_batch_entry e[4];
	struct pcbt_ring *small;
	__u32 published;
	__u64 t0, dt;
	int n;

	small = full_ring(_metadata, self, &n);
	two_topic_entries(self, e, 4);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, batch(self->pfd, e, 4, PCB_PUB_ATOMIC,
				    100 * PCBT_MS, &published));
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_LE(100 * PCBT_MS, dt);
	EXPECT_GT(10 * PCBT_SEC, dt);
	EXPECT_EQ(NOT_WRITTEN, published);
	expect_all(_metadata, e, 4, -ETIMEDOUT);
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(small));
}

TEST_F(batch, atomic_full_ring_eintr)
{
	struct pcb_batch_entry e[4];
	struct pcbt_ring *small;
	int n;

	small = full_ring(_metadata, self, &n);
	two_topic_entries(self, e, 4);
	pcbt_alarm_in(200);
	EXPECT_EQ(-EINTR, batch(self->pfd, e, 4, PCB_PUB_ATOMIC, 0, NULL));
	expect_all(_metadata, e, 4, -EINTR);
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(small));
}

/* A blocking atomic batch goes through once the consumer makes room. */
TEST_F(batch, atomic_blocking_woken_by_notify)
{
	struct pcb_batch_entry e[4];
	struct pcbt_ring *small;
	struct bg_batch b = { 0 };
	__u32 i;
	int n;

	small = full_ring(_metadata, self, &n);
	two_topic_entries(self, e, 4);
	b.fd = self->pfd;
	b.e = e;
	b.count = 4;
	b.flags = PCB_PUB_ATOMIC;
	ASSERT_EQ(0, pthread_create(&b.thread, NULL, bg_run, &b));

	ASSERT_TRUE(flag_within(small, PCB_RING_PUB_WAITING, 10000));
	pcbt_sleep_ms(50);
	EXPECT_FALSE(bg_done(&b));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->names[1]));

	drain_and_notify(small);
	ASSERT_TRUE(bg_wait(&b, 10000));
	pthread_join(b.thread, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_EQ(4U, b.published);
	expect_all(_metadata, e, 4, 0);
	for (i = 0; i < 4; i += 2)
		expect_entry(_metadata, small, &e[i], self->ids[0]);
	EXPECT_TRUE(ring_empty(small));
	EXPECT_EQ(n + 2LL, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(2LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ(n + 1ULL, e[0].seq);
	EXPECT_EQ(1ULL, e[1].seq);
	pcbt_ring_drain(&self->ring);
}

/* Without PCB_PUB_ATOMIC a full ring takes the first entries only. */
TEST_F(batch, nonblock_partial)
{
	const __u32 fit = SMALL_RING / REC;
	struct pcb_batch_entry e[SMALL_RING / REC + 5];
	struct pcbt_ring *small = add_ring(_metadata, self, SMALL_RING);
	__u32 published, i;

	ASSERT_EQ(0, pcbt_subscribe(small->fd, self->names[0], SCHEMA, 0,
				    NULL));
	for (i = 0; i < fit + 5; i++)
		set_entry(&e[i], self->h[0], i, LEN);
	ASSERT_EQ(0, batch(self->pfd, e, fit + 5, PCB_PUB_NONBLOCK, 0,
			   &published));
	EXPECT_EQ(fit, published);
	for (i = 0; i < fit + 5; i++) {
		ASSERT_EQ(i < fit ? 0 : -EAGAIN, e[i].result) TH_LOG("entry %u", i);
		if (i < fit)
			EXPECT_EQ(i + 1ULL, e[i].seq);
	}
	for (i = 0; i < fit; i++)
		expect_entry(_metadata, small, &e[i], self->ids[0]);
	EXPECT_TRUE(ring_empty(small));
	EXPECT_EQ((long long)fit, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(0U, pcbt_ring_flags(small) & PCB_RING_PUB_WAITING);
	pcbt_ring_drain(&self->ring);
}

/* One deadline for the whole batch; each entry says how it ended. */
TEST_F(batch, blocking_etimedout)
{
	struct pcb_batch_entry e[4];
	struct pcbt_ring *small;
	__u32 published;
	__u64 t0, dt;
	int n;

	small = full_ring(_metadata, self, &n);
	two_topic_entries(self, e, 4);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	ASSERT_EQ(0, batch(self->pfd, e, 4, 0, 200 * PCBT_MS, &published));
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_LE(200 * PCBT_MS, dt);
	EXPECT_GT(10 * PCBT_SEC, dt);
	/* Topic 1 has no subscriber to wait for. */
	EXPECT_EQ(2U, published);
	EXPECT_EQ(-ETIMEDOUT, e[0].result);
	EXPECT_EQ(0, e[1].result);
	EXPECT_EQ(-ETIMEDOUT, e[2].result);
	EXPECT_EQ(0, e[3].result);
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ(2LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(small));
}

/*
 * A signal stops a batch: the entry that waits and every entry after it
 * get -EINTR, even those that would have found room.
 */
TEST_F(batch, blocking_eintr)
{
	struct pcb_batch_entry e[4];
	struct pcbt_ring *small;
	__u32 published, i;
	int n;

	small = full_ring(_metadata, self, &n);
	for (i = 0; i < 4; i++)
		set_entry(&e[i], self->h[i % 2 ? 0 : 1], i, LEN);
	pcbt_alarm_in(200);
	ASSERT_EQ(0, batch(self->pfd, e, 4, 0, 0, &published));
	EXPECT_EQ(1U, published);
	EXPECT_EQ(0, e[0].result);
	EXPECT_EQ(1ULL, e[0].seq);
	for (i = 1; i < 4; i++) {
		EXPECT_EQ(-EINTR, e[i].result) TH_LOG("entry %u", i);
	}
	EXPECT_EQ(1LL, pcbt_published(self->pfd, self->names[1]));
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->names[0]));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(small));
}

/* A consumer in another thread keeps a big blocking batch going. */
struct drainer {
	struct pcbt_ring *r;
	const struct pcb_batch_entry *e;
	__u32 count;
	__u32 got;
	const char *err;
};

static void *drain_thread(void *p)
{
	struct drainer *d = p;

	while (d->got < d->count) {
		const struct pcb_record *rec = pcbt_ring_next(d->r, 20 * PCBT_SEC);
		const struct pcb_batch_entry *e = &d->e[d->got];

		if (!rec) {
			d->err = "timed out";
			return NULL;
		}
		/* Results are not written yet: check what the entry said. */
		if (rec->key != e->key || rec->payload_len != e->len ||
		    rec->seq != d->got + 1ULL ||
		    memcmp(pcbt_payload(rec), (const void *)(uintptr_t)e->payload,
			   e->len)) {
			d->err = "wrong record";
			return NULL;
		}
		pcbt_ring_pop(d->r);
		d->got++;
		pcbt_ring_release(d->r);
	}
	return NULL;
}

TEST_F(batch, blocking_with_consumer)
{
	enum { N = 200 };
	struct pcb_batch_entry e[N];
	struct pcbt_ring *small = add_ring(_metadata, self, SMALL_RING);
	struct drainer d = { .r = small, .e = e, .count = N };
	__u32 published, i;
	pthread_t th;

	ASSERT_EQ(0, pcbt_subscribe(small->fd, self->names[0], SCHEMA, 0,
				    NULL));
	for (i = 0; i < N; i++)
		set_entry(&e[i], self->h[0], i, LEN - i % 7);
	ASSERT_EQ(0, pthread_create(&th, NULL, drain_thread, &d));
	EXPECT_EQ(0, batch(self->pfd, e, N, 0, 60 * PCBT_SEC, &published));
	pthread_join(th, NULL);
	EXPECT_EQ(NULL, d.err);
	EXPECT_EQ((__u32)N, d.got);
	EXPECT_EQ((__u32)N, published);
	expect_all(_metadata, e, N, 0);
	pcbt_ring_drain(&self->ring);
}

TEST_HARNESS_MAIN
