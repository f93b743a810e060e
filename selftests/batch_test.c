// SPDX-License-Identifier: GPL-2.0
/*
 * PCB_IOC_PUBLISH_BATCH: many messages in one call, each with its own
 * result; with PCB_PUB_ATOMIC all of them or none.
 */
#include "pcb_util.h"

#define SCHEMA		0xba7c
#define MAX_MSG		200
#define N		32

FIXTURE(batch) {
	int fd;			/* the publisher */
	char name[2][PCB_NAME_MAX];
	__u32 id[2];
	__u32 h[2];
	struct pcbt_ring both;	/* reliable, subscribed to both topics */
	struct pcb_batch_entry e[N];
	unsigned char payload[N][MAX_MSG];
};

FIXTURE_SETUP(batch)
{
	int i, fd;

	PCBT_OPEN(self->fd);
	for (i = 0; i < 2; i++) {
		pcbt_name(self->name[i], "batch");
		ASSERT_EQ(0, pcbt_create(self->fd, self->name[i], SCHEMA,
					 MAX_MSG, 0600, &self->id[i]));
		ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name[i], SCHEMA,
					     &self->h[i]));
	}
	fd = pcbt_ring_open(64 * 1024, &self->both);
	ASSERT_LE(0, fd);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pcbt_subscribe(fd, self->name[i], SCHEMA, 0, NULL));
	for (i = 0; i < N; i++)
		memset(self->payload[i], 'a' + i % 26, MAX_MSG);
}

FIXTURE_TEARDOWN(batch)
{
	pcbt_ring_close(&self->both);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

/* Entry @i: topic @t, @len bytes; result and outputs poisoned. */
static void entry(FIXTURE_DATA(batch) *self, int i, int t, __u32 len)
{
	self->e[i] = (struct pcb_batch_entry){
		.handle = self->h[t],
		.payload = (uintptr_t)self->payload[i],
		.len = len,
		.key = 1000 + i,
		.result = 0x7eadbeef,
		.msg_id = ~0ULL,
		.seq = ~0ULL,
	};
}

static int batch(int fd, struct pcb_batch_entry *e, __u32 count, __u32 flags,
		 __u64 timeout_ns, __u32 *published)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)e,
		.count = count,
		.flags = flags,
		.timeout_ns = timeout_ns,
		.published = 0xdead,
	};
	int ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &b);

	if (published)
		*published = b.published;
	return ret;
}

/* Reads the next record and checks it is entry @i of the batch. */
static void expect_record(struct __test_metadata *_metadata,
			  FIXTURE_DATA(batch) *self, int i, int t)
{
	const struct pcb_record *rec = pcbt_ring_peek(&self->both);

	ASSERT_NE(NULL, rec) TH_LOG("entry %d", i);
	EXPECT_EQ(self->id[t], rec->topic_id);
	EXPECT_EQ(self->e[i].msg_id, rec->msg_id);
	EXPECT_EQ(self->e[i].seq, rec->seq);
	EXPECT_EQ(self->e[i].key, rec->key);
	EXPECT_EQ(self->e[i].len, rec->payload_len);
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ(0, memcmp(pcbt_payload(rec), self->payload[i],
			    self->e[i].len));
	pcbt_ring_pop(&self->both);
}

static long long published(FIXTURE_DATA(batch) *self, int t)
{
	return pcbt_published(self->fd, self->name[t]);
}

TEST_F(batch, each_in_array_order)
{
	__u32 n;
	int i;

	for (i = 0; i < N; i++)
		entry(self, i, i % 3 == 2, i * 5 % MAX_MSG);
	ASSERT_EQ(0, batch(self->fd, self->e, N, 0, 0, &n));
	EXPECT_EQ((__u32)N, n);
	for (i = 0; i < N; i++) {
		EXPECT_EQ(0, self->e[i].result) TH_LOG("entry %d", i);
		if (i)
			EXPECT_LT(self->e[i - 1].msg_id, self->e[i].msg_id);
	}
	/* Without ATOMIC the ring sees them in array order. */
	for (i = 0; i < N; i++)
		expect_record(_metadata, self, i, i % 3 == 2);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->both));
	EXPECT_EQ((long long)(N - N / 3), published(self, 0));
	EXPECT_EQ((long long)(N / 3), published(self, 1));
}

TEST_F(batch, atomic_grouped_by_topic)
{
	__u32 n;
	int i, t;

	for (i = 0; i < N; i++)
		entry(self, i, i & 1, 1 + i);
	ASSERT_EQ(0, batch(self->fd, self->e, N, PCB_PUB_ATOMIC, 0, &n));
	EXPECT_EQ((__u32)N, n);
	for (i = 0; i < N; i++) {
		EXPECT_EQ(0, self->e[i].result);
		if (i)
			EXPECT_LT(self->e[i - 1].msg_id, self->e[i].msg_id);
		EXPECT_EQ((__u64)i / 2 + 1, self->e[i].seq);
	}
	/* Grouped by topic, in ascending topic id, each in array order. */
	for (t = 0; t < 2; t++) {
		int first = self->id[0] < self->id[1] ? t : !t;

		for (i = first; i < N; i += 2)
			expect_record(_metadata, self, i, first);
	}
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->both));
}

TEST_F(batch, each_entry_gets_its_own_error)
{
	__u32 n, h_dead;
	char dead[PCB_NAME_MAX];

	pcbt_name(dead, "dead");
	ASSERT_EQ(0, pcbt_create(self->fd, dead, SCHEMA, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, dead, SCHEMA, &h_dead));
	ASSERT_EQ(0, pcbt_delete(self->fd, dead));

	entry(self, 0, 0, 10);
	entry(self, 1, 0, 10);
	self->e[1].handle = 4000;		/* never opened */
	entry(self, 2, 0, MAX_MSG + 1);
	entry(self, 3, 0, 10);
	self->e[3].flags = 1;
	entry(self, 4, 0, 10);
	self->e[4].payload = 8;			/* unreadable */
	entry(self, 5, 0, 4);
	self->e[5].handle = h_dead;
	entry(self, 6, 1, 0);
	ASSERT_EQ(0, batch(self->fd, self->e, 7, 0, 0, &n));
	EXPECT_EQ(2U, n);
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(-EBADF, self->e[1].result);
	EXPECT_EQ(-EMSGSIZE, self->e[2].result);
	EXPECT_EQ(-EINVAL, self->e[3].result);
	EXPECT_EQ(-EFAULT, self->e[4].result);
	EXPECT_EQ(-EIDRM, self->e[5].result);
	EXPECT_EQ(0, self->e[6].result);
	EXPECT_EQ(1ULL, self->e[0].seq);
	EXPECT_EQ(1ULL, self->e[6].seq);
	expect_record(_metadata, self, 0, 0);
	expect_record(_metadata, self, 6, 1);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->both));
	EXPECT_EQ(1LL, published(self, 0));
}

/* An invalid entry in an atomic batch: its error, -ECANCELED for the rest. */
static void atomic_invalid(struct __test_metadata *_metadata,
			   FIXTURE_DATA(batch) *self, int err)
{
	__u32 n = 0;
	int i;

	ASSERT_EQ(err, batch(self->fd, self->e, 6, PCB_PUB_ATOMIC, 0, &n));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(i == 3 ? err : -ECANCELED, self->e[i].result)
			TH_LOG("entry %d", i);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->both));
	EXPECT_EQ(NULL, self->both.corrupt);
	EXPECT_EQ(0LL, published(self, 0));
	EXPECT_EQ(0LL, published(self, 1));
}

static void six(FIXTURE_DATA(batch) *self)
{
	int i;

	for (i = 0; i < 6; i++)
		entry(self, i, i & 1, 20);
}

TEST_F(batch, atomic_ebadf)
{
	six(self);
	self->e[3].handle = 999;
	atomic_invalid(_metadata, self, -EBADF);
}

TEST_F(batch, atomic_einval_entry_flags)
{
	six(self);
	self->e[3].flags = 0x80000000;
	atomic_invalid(_metadata, self, -EINVAL);
}

TEST_F(batch, atomic_emsgsize)
{
	six(self);
	self->e[3].len = MAX_MSG + 1;
	atomic_invalid(_metadata, self, -EMSGSIZE);
}

TEST_F(batch, atomic_efault_payload)
{
	six(self);
	self->e[3].payload = 16;
	atomic_invalid(_metadata, self, -EFAULT);
}

TEST_F(batch, atomic_e2big_too_many_topics)
{
	char names[PCB_BATCH_ATOMIC_TOPICS + 1][PCB_NAME_MAX];
	__u32 h, n;
	int i;

	for (i = 0; i <= PCB_BATCH_ATOMIC_TOPICS; i++) {
		pcbt_name(names[i], "many");
		ASSERT_EQ(0, pcbt_create(self->fd, names[i], SCHEMA, 8, 0600,
					 NULL));
		ASSERT_EQ(0, pcbt_open_topic(self->fd, names[i], SCHEMA, &h));
		entry(self, i, 0, 4);
		self->e[i].handle = h;
	}
	/* Eight distinct topics are fine. */
	ASSERT_EQ(0, batch(self->fd, self->e, PCB_BATCH_ATOMIC_TOPICS,
			   PCB_PUB_ATOMIC, 0, &n));
	EXPECT_EQ((__u32)PCB_BATCH_ATOMIC_TOPICS, n);
	/* The ninth is one too many. */
	ASSERT_EQ(-E2BIG, batch(self->fd, self->e, PCB_BATCH_ATOMIC_TOPICS + 1,
				PCB_PUB_ATOMIC, 0, &n));
	for (i = 0; i <= PCB_BATCH_ATOMIC_TOPICS; i++)
		EXPECT_EQ(i == PCB_BATCH_ATOMIC_TOPICS ? -E2BIG : -ECANCELED,
			  self->e[i].result) TH_LOG("entry %d", i);
	EXPECT_EQ(1LL, pcbt_published(self->fd, names[0]));
	/* Without ATOMIC there is no such limit. */
	ASSERT_EQ(0, batch(self->fd, self->e, PCB_BATCH_ATOMIC_TOPICS + 1, 0,
			   0, &n));
	EXPECT_EQ((__u32)PCB_BATCH_ATOMIC_TOPICS + 1, n);
}

/* A small reliable ring on topic 0; returns its endpoint's fd. */
static int small_ring(FIXTURE_DATA(batch) *self, struct pcbt_ring *r,
		      __u32 flags)
{
	int fd = pcbt_ring_open(4096, r);

	if (fd < 0)
		return fd;
	return pcbt_subscribe(fd, self->name[0], SCHEMA, flags, NULL) ?: fd;
}

TEST_F(batch, atomic_e2big_larger_than_a_ring)
{
	struct pcbt_ring r;
	__u32 n;
	int i;

	ASSERT_LE(0, small_ring(self, &r, 0));
	/* 20 records of 264 bytes cannot be in a 4 KiB ring at once. */
	for (i = 0; i < 20; i++)
		entry(self, i, 0, MAX_MSG);
	ASSERT_EQ(-E2BIG, batch(self->fd, self->e, 20, PCB_PUB_ATOMIC, 0, &n));
	for (i = 0; i < 20; i++)
		EXPECT_EQ(-E2BIG, self->e[i].result);
	EXPECT_EQ(0LL, published(self, 0));
	EXPECT_EQ(NULL, pcbt_ring_peek(&r));
	/* The same, one by one, fills the ring and then waits. */
	ASSERT_EQ(0, batch(self->fd, self->e, 20, PCB_PUB_NONBLOCK, 0, &n));
	EXPECT_EQ(4096 / PCB_REC_SIZE(sizeof(struct pcb_record) + MAX_MSG), n);
	EXPECT_EQ(-EAGAIN, self->e[19].result);
	pcbt_ring_close(&r);
}

/*
 * Two topics whose chunks each fit a ring but not both at once: the batch
 * can never be published, which the header calls E2BIG ("a batch too big
 * to be published all at once").  A timeout keeps a hang from hanging us.
 */
TEST_F(batch, atomic_e2big_chunks_together_too_big)
{
	struct pcbt_ring r;
	__u64 t0, dt;
	__u32 n;
	int i, fd, ret;

	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name[0], SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name[1], SCHEMA, 0, NULL));
	/* 2 x 10 records of 264 bytes: 2640 bytes per topic, 5280 in all. */
	for (i = 0; i < 20; i++)
		entry(self, i, i & 1, MAX_MSG);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	ret = batch(self->fd, self->e, 20, PCB_PUB_ATOMIC, 500 * PCBT_MS, &n);
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_EQ(-E2BIG, ret) TH_LOG("after %.0f ms", dt / 1e6);
	EXPECT_EQ(0LL, published(self, 0));
	EXPECT_EQ(NULL, pcbt_ring_peek(&r));
	ret = batch(self->fd, self->e, 20, PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK,
		    0, &n);
	EXPECT_EQ(-E2BIG, ret);
	pcbt_ring_close(&r);
}

/* Fills the small ring with single publishes; the number that fitted. */
static int fill(FIXTURE_DATA(batch) *self)
{
	int n = 0;

	while (!pcbt_publish(self->fd, self->h[0], self->payload[0], MAX_MSG,
			     PCB_PUB_NONBLOCK, 0, NULL))
		n++;
	return n;
}

TEST_F(batch, atomic_eagain_publishes_nothing)
{
	struct pcbt_ring r;
	__u32 n;
	int i, k;

	ASSERT_LE(0, small_ring(self, &r, 0));
	k = fill(self);
	ASSERT_LT(0, k);
	/* Room for one more record, not for two. */
	ASSERT_NE(NULL, pcbt_ring_peek(&r));
	pcbt_ring_pop(&r);
	pcbt_ring_release(&r);
	for (i = 0; i < 3; i++)
		entry(self, i, i == 1, MAX_MSG);
	ASSERT_EQ(-EAGAIN, batch(self->fd, self->e, 3,
				 PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, 0, &n));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-EAGAIN, self->e[i].result);
	EXPECT_EQ((long long)k, published(self, 0));
	EXPECT_EQ(0LL, published(self, 1));
	/* The other subscriber got nothing either (DISCARDs are allowed). */
	for (i = 0; i < k; i++) {
		ASSERT_NE(NULL, pcbt_ring_peek(&self->both));
		pcbt_ring_pop(&self->both);
	}
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->both));

	/* Without ATOMIC, the first fits and the rest do not. */
	ASSERT_EQ(0, batch(self->fd, self->e, 3, PCB_PUB_NONBLOCK, 0, &n));
	EXPECT_EQ(2U, n);
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(0, self->e[1].result);	/* topic 1: no small ring */
	EXPECT_EQ(-EAGAIN, self->e[2].result);
	pcbt_ring_close(&r);
}

TEST_F(batch, atomic_etimedout)
{
	struct pcbt_ring r;
	__u64 t0, dt;
	__u32 n;
	int i;

	ASSERT_LE(0, small_ring(self, &r, 0));
	ASSERT_LT(0, fill(self));
	for (i = 0; i < 2; i++)
		entry(self, i, 0, MAX_MSG);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	ASSERT_EQ(-ETIMEDOUT, batch(self->fd, self->e, 2, PCB_PUB_ATOMIC,
				    100 * PCBT_MS, &n));
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_LE(100 * PCBT_MS, dt);
	EXPECT_GT(10 * PCBT_SEC, dt);
	EXPECT_EQ(-ETIMEDOUT, self->e[0].result);
	EXPECT_EQ(-ETIMEDOUT, self->e[1].result);

	/* Without ATOMIC: each entry times out, the call itself succeeds. */
	ASSERT_EQ(0, batch(self->fd, self->e, 2, 0, 100 * PCBT_MS, &n));
	EXPECT_EQ(0U, n);
	EXPECT_EQ(-ETIMEDOUT, self->e[0].result);
	EXPECT_EQ(-ETIMEDOUT, self->e[1].result);
	pcbt_ring_close(&r);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void alarm_in(unsigned int ms)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = { .it_value = { .tv_usec = ms * 1000 } };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

TEST_F(batch, eintr)
{
	struct pcbt_ring r;
	__u32 n;
	int i, k;

	ASSERT_LE(0, small_ring(self, &r, 0));
	k = fill(self);
	for (i = 0; i < 3; i++)
		entry(self, i, 0, MAX_MSG);
	alarm_in(200);
	ASSERT_EQ(-EINTR, batch(self->fd, self->e, 3, PCB_PUB_ATOMIC, 0, &n));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-EINTR, self->e[i].result);

	/* Without ATOMIC, the entries not tried get -EINTR too. */
	entry(self, 0, 1, 5);			/* topic 1 has room */
	alarm_in(200);
	ASSERT_EQ(0, batch(self->fd, self->e, 3, 0, 0, &n));
	EXPECT_EQ(1U, n);
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(-EINTR, self->e[1].result);
	EXPECT_EQ(-EINTR, self->e[2].result);
	EXPECT_EQ((long long)k, published(self, 0));
	pcbt_ring_close(&r);
}

TEST_F(batch, atomic_eidrm)
{
	__u32 n;
	int i;

	six(self);
	ASSERT_EQ(0, pcbt_delete(self->fd, self->name[1]));
	ASSERT_EQ(-EIDRM, batch(self->fd, self->e, 6, PCB_PUB_ATOMIC, 0, &n));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(-EIDRM, self->e[i].result);
	EXPECT_EQ(0LL, published(self, 0));
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->both));
}

struct drainer {
	struct pcbt_ring *r;
	unsigned int ms;
	unsigned int got;
};

static void *drain_later(void *p)
{
	struct drainer *d = p;

	pcbt_sleep_ms(d->ms);
	d->got = pcbt_ring_drain(d->r);
	return NULL;
}

TEST_F(batch, atomic_waits_for_room)
{
	struct drainer d;
	struct pcbt_ring r;
	pthread_t t;
	__u32 n;
	int i, k;

	ASSERT_LE(0, small_ring(self, &r, 0));
	k = fill(self);
	for (i = 0; i < 4; i++)
		entry(self, i, 0, MAX_MSG);
	d = (struct drainer){ .r = &r, .ms = 200 };
	pthread_create(&t, NULL, drain_later, &d);
	ASSERT_EQ(0, batch(self->fd, self->e, 4, PCB_PUB_ATOMIC,
			   20 * PCBT_SEC, &n));
	pthread_join(t, NULL);
	EXPECT_EQ((unsigned int)k, d.got);
	EXPECT_EQ(4U, n);
	for (i = 0; i < 4; i++)
		EXPECT_EQ((__u64)k + 1 + i, self->e[i].seq);
	EXPECT_EQ(4U, pcbt_ring_drain(&r));
	pcbt_ring_close(&r);
}

TEST_F(batch, atomic_lossy_subscriber_misses_whole_batch)
{
	struct pcbt_ring r;
	__u32 n;
	int i;

	ASSERT_LE(0, small_ring(self, &r, PCB_SUB_LOSSY));
	for (i = 0; i < 20; i++)
		entry(self, i, 0, MAX_MSG);
	/* Too big for the lossy ring: it misses it, nobody waits. */
	ASSERT_EQ(0, batch(self->fd, self->e, 20, PCB_PUB_ATOMIC, 0, &n));
	EXPECT_EQ(20U, n);
	EXPECT_EQ(20ULL, r.hdr->dropped);
	EXPECT_EQ(NULL, pcbt_ring_peek(&r));
	for (i = 0; i < 20; i++)
		expect_record(_metadata, self, i, 0);
	pcbt_ring_close(&r);
}

TEST_F(batch, ioctl_errors)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)self->e,
		.count = 1,
	};
	long page = sysconf(_SC_PAGESIZE);
	struct pcb_batch_entry *ro;
	__u32 n;

	entry(self, 0, 0, 1);
	EXPECT_EQ(-EINVAL, batch(self->fd, self->e, 0, 0, 0, &n));
	EXPECT_EQ(-EINVAL, batch(self->fd, self->e, PCB_BATCH_MAX + 1, 0, 0,
				 &n));
	EXPECT_EQ(-EINVAL, batch(self->fd, self->e, 1,
				 PCB_BATCH_FLAGS_ALL + 1, 0, &n));
	EXPECT_EQ(-EINVAL, batch(self->fd, self->e, 1, 0x80000000, 0, &n));
	b.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &b));
	b.reserved0 = 0;
	b.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, &b));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH_BATCH, NULL));
	EXPECT_EQ(-EFAULT, batch(self->fd, (void *)8, 1, 0, 0, &n));
	EXPECT_EQ(-EFAULT, batch(self->fd, (void *)8, 1, PCB_PUB_ATOMIC, 0,
				 &n));
	EXPECT_EQ(0LL, published(self, 0));

	/* Entries must be writable too; atomically, nothing goes out. */
	ro = mmap(NULL, page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ro[0] = self->e[0];
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	EXPECT_EQ(-EFAULT, batch(self->fd, ro, 1, PCB_PUB_ATOMIC, 0, &n));
	EXPECT_EQ(0LL, published(self, 0));
	EXPECT_EQ(-EFAULT, batch(self->fd, ro, 1, 0, 0, &n));
	munmap(ro, page);
}

TEST_F_TIMEOUT(batch, max_count, 120)
{
	struct pcb_batch_entry *e = calloc(PCB_BATCH_MAX, sizeof(*e));
	int fd = pcbt_open();
	__u32 h, n;
	int i;

	ASSERT_NE(NULL, e);
	ASSERT_LE(0, fd);
	/* No subscriber: nothing to wait for. */
	ASSERT_EQ(0, pcbt_open_topic(fd, self->name[0], SCHEMA, &h));
	pcbt_ring_close(&self->both);
	for (i = 0; i < PCB_BATCH_MAX; i++) {
		e[i].handle = h;
		e[i].payload = (uintptr_t)self->payload[0];
		e[i].len = 8;
	}
	ASSERT_EQ(0, batch(fd, e, PCB_BATCH_MAX, 0, 0, &n));
	EXPECT_EQ((__u32)PCB_BATCH_MAX, n);
	ASSERT_EQ(0, batch(fd, e, PCB_BATCH_MAX, PCB_PUB_ATOMIC, 0, &n));
	EXPECT_EQ((__u32)PCB_BATCH_MAX, n);
	for (i = 1; i < PCB_BATCH_MAX; i++)
		ASSERT_EQ(e[i - 1].seq + 1, e[i].seq);
	EXPECT_EQ(2LL * PCB_BATCH_MAX, published(self, 0));
	close(fd);
	free(e);
}

TEST_HARNESS_MAIN
