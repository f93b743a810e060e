// SPDX-License-Identifier: GPL-2.0
/*
 * Subscribe, unsubscribe and publish: the records subscribers read, the
 * publish errors, reliable and lossy delivery, topic deletion.
 */
#include "pcb_util.h"

#define SCHEMA		0x5eed
#define MAX_MSG		256
#define RING		(64 * 1024)

FIXTURE(pubsub) {
	int fd;			/* publisher and first subscriber */
	struct pcbt_ring ring;
	char name[PCB_NAME_MAX];
	__u32 topic_id;
	__u32 handle;
};

FIXTURE_SETUP(pubsub)
{
	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "ps");
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, MAX_MSG, 0777,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA,
				     &self->handle));
	ASSERT_EQ(0, pcbt_ring_init(self->fd, RING, &self->ring));
}

FIXTURE_TEARDOWN(pubsub)
{
	pcbt_ring_unmap(&self->ring);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

static int publish_key(int fd, __u32 handle, const void *buf, __u32 len,
		       __u64 key, struct pcb_publish *out)
{
	struct pcb_publish p = {
		.handle = handle,
		.payload = (uintptr_t)buf,
		.len = len,
		.key = key,
	};
	int ret = pcbt_ioctl(fd, PCB_IOC_PUBLISH, &p);

	*out = p;
	return ret;
}

TEST_F(pubsub, subscribe)
{
	__u32 id = 0;

	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, &id));
	EXPECT_EQ(self->topic_id, id);
	EXPECT_EQ(1LL, pcbt_nr_subs(self->fd, self->name));
	EXPECT_EQ(-EALREADY, pcbt_subscribe(self->fd, self->name, SCHEMA, 0,
					    NULL));
	EXPECT_EQ(-EALREADY, pcbt_subscribe(self->fd, self->name, SCHEMA,
					    PCB_SUB_LOSSY, NULL));
	EXPECT_EQ(1LL, pcbt_nr_subs(self->fd, self->name));
}

TEST_F(pubsub, subscribe_errors)
{
	struct pcb_subscribe s = { .schema_id = SCHEMA };
	char missing[PCB_NAME_MAX];

	pcbt_name(missing, "missing");
	EXPECT_EQ(-ENOENT, pcbt_subscribe(self->fd, missing, SCHEMA, 0, NULL));
	EXPECT_EQ(-EPROTOTYPE, pcbt_subscribe(self->fd, self->name, SCHEMA + 1,
					      0, NULL));
	EXPECT_EQ(-EINVAL, pcbt_subscribe(self->fd, self->name, SCHEMA,
					  PCB_SUB_FLAGS_ALL + 1, NULL));
	EXPECT_EQ(-EINVAL, pcbt_subscribe(self->fd, self->name, SCHEMA,
					  0x80000000, NULL));

	pcbt_copy_name(s.name, self->name);
	s.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_SUBSCRIBE, &s));
	s.reserved[0] = 0;
	memset(s.name, 'k', PCB_NAME_MAX);
	EXPECT_EQ(-ENAMETOOLONG, pcbt_ioctl(self->fd, PCB_IOC_SUBSCRIBE, &s));

	/* None of them subscribed anything. */
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->name));
}

struct child_sub {
	int fd;
	const char *name;
};

static int subscribe_without_read(void *arg)
{
	struct child_sub *a = arg;
	struct pcbt_ring r;
	int fd = pcbt_child_fd(a->fd);
	int ret;

	/* An inherited endpoint already has the parent's ring. */
	if (fd != a->fd) {
		ret = pcbt_ring_init(fd, 4096, &r);
		PCBT_CHILD_EXPECT(0, ret);
	}
	PCBT_CHILD_EXPECT(-EACCES, pcbt_subscribe(fd, a->name, SCHEMA, 0,
						  NULL));
	PCBT_CHILD_EXPECT(-EACCES, pcbt_subscribe(fd, a->name, SCHEMA,
						  PCB_SUB_LOSSY, NULL));
	return 0;
}

TEST_F(pubsub, subscribe_eacces)
{
	struct child_sub a = { .fd = self->fd, .name = self->name };
	char name[PCB_NAME_MAX];

	if (!pcbt_is_root())
		SKIP(return, "needs root to make a topic of another user");
	pcbt_name(name, "wo");
	ASSERT_EQ(0, pcbt_create(self->fd, name, SCHEMA, 8, 0622, NULL));
	a.name = name;
	ASSERT_EQ(0, pcbt_run_as_nobody(subscribe_without_read, &a));
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, name));
}

TEST_F(pubsub, subscribe_enospc_small_ring)
{
	/* Room for the largest header: PCB_MAX_DEPS dependencies. */
	const __u32 hdr = sizeof(struct pcb_record) + 8 * PCB_MAX_DEPS;
	char fits[PCB_NAME_MAX], big[PCB_NAME_MAX];
	struct pcbt_ring r;
	int fd;

	pcbt_name(fits, "fits");
	pcbt_name(big, "big");
	/* One record of the largest message fills the ring exactly. */
	ASSERT_EQ(0, pcbt_create(self->fd, fits, SCHEMA, 4096 - hdr, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_create(self->fd, big, SCHEMA, 4096 - hdr + 1, 0700,
				 NULL));
	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOSPC, pcbt_subscribe(fd, big, SCHEMA, 0, NULL));
	EXPECT_EQ(-ENOSPC, pcbt_subscribe(fd, big, SCHEMA, PCB_SUB_LOSSY,
					  NULL));
	EXPECT_EQ(0, pcbt_subscribe(fd, fits, SCHEMA, 0, NULL));
	pcbt_ring_close(&r);
}

TEST_F(pubsub, unsubscribe)
{
	char byte = 1;

	EXPECT_EQ(-ENOENT, pcbt_unsubscribe(self->fd, self->topic_id));
	EXPECT_EQ(-ENOENT, pcbt_unsubscribe(self->fd, 0));
	EXPECT_EQ(-ENOENT, pcbt_unsubscribe(self->fd, 0xfffffff0));
	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcbt_unsubscribe(self->fd, self->topic_id));
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->name));
	EXPECT_EQ(-ENOENT, pcbt_unsubscribe(self->fd, self->topic_id));

	/* Unsubscribed: nothing arrives. */
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, &byte, 1, 0, 0,
				  NULL));
	EXPECT_EQ(0ULL, pcbt_prod_pos(&self->ring));
	/* And subscribing again works. */
	EXPECT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
}

TEST_F(pubsub, record_fields)
{
	static const char msg[] = "phase coherence";
	const struct pcb_record *rec;
	struct pcb_publish p1, p2;
	__u64 before, after;

	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
	before = pcbt_now_ns(CLOCK_REALTIME);
	ASSERT_EQ(0, publish_key(self->fd, self->handle, msg, sizeof(msg),
				 0x1122334455667788ULL, &p1));
	after = pcbt_now_ns(CLOCK_REALTIME);
	EXPECT_LT(0ULL, p1.msg_id);
	EXPECT_EQ(1ULL, p1.seq);
	/* A hybrid logical clock: close to CLOCK_REALTIME. */
	EXPECT_LE(before - 50 * PCBT_MS, p1.msg_id);
	EXPECT_GE(after + PCBT_SEC, p1.msg_id);

	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(0ULL, (uintptr_t)rec % PCB_REC_ALIGN);
	EXPECT_EQ(sizeof(struct pcb_record) + sizeof(msg), rec->len);
	EXPECT_EQ(self->topic_id, rec->topic_id);
	EXPECT_EQ(p1.msg_id, rec->msg_id);
	EXPECT_EQ(1ULL, rec->seq);
	EXPECT_NE(0ULL, rec->tsc);
	EXPECT_EQ(0x1122334455667788ULL, rec->key);
	EXPECT_EQ(sizeof(msg), rec->payload_len);
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ((__u32)geteuid(), rec->uid);
	EXPECT_EQ(0, rec->nr_deps);
	EXPECT_EQ(sizeof(struct pcb_record), rec->hdr_len);
	EXPECT_EQ(0ULL, rec->reserved);
	EXPECT_EQ(0, memcmp(pcbt_payload(rec), msg, sizeof(msg)));
	EXPECT_EQ(PCB_REC_SIZE(rec->len), pcbt_prod_pos(&self->ring));
	pcbt_ring_pop(&self->ring);

	ASSERT_EQ(0, publish_key(self->fd, self->handle, msg, 3, 7, &p2));
	EXPECT_EQ(2ULL, p2.seq);
	EXPECT_LT(p1.msg_id, p2.msg_id);
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(2ULL, rec->seq);
	EXPECT_EQ(p2.msg_id, rec->msg_id);
	EXPECT_EQ(7ULL, rec->key);
	EXPECT_EQ(3U, rec->payload_len);
	pcbt_ring_pop(&self->ring);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));
	EXPECT_EQ(NULL, self->ring.corrupt);
	EXPECT_EQ(2LL, pcbt_published(self->fd, self->name));
}

/*
 * "never going back when the clock does": step CLOCK_REALTIME back between
 * two publishes.  That disturbs the whole machine, so only when asked to
 * (PCB_TEST_STEP_CLOCK=1, as the test VM does).
 */
TEST_F(pubsub, ids_do_not_follow_the_clock_back)
{
	const char *ok = getenv("PCB_TEST_STEP_CLOCK");
	struct pcb_publish p1, p2, p3;
	struct timespec ts;

	if (!pcbt_is_root() || !ok || strcmp(ok, "1"))
		SKIP(return, "PCB_TEST_STEP_CLOCK=1 and root let it step the clock");
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, "a", 1, 0, 0, &p1));
	ASSERT_EQ(0, clock_gettime(CLOCK_REALTIME, &ts));
	ts.tv_sec -= 10;
	ASSERT_EQ(0, clock_settime(CLOCK_REALTIME, &ts));
	EXPECT_EQ(0, pcbt_publish(self->fd, self->handle, "b", 1, 0, 0, &p2));
	EXPECT_EQ(0, pcbt_publish(self->fd, self->handle, "c", 1, 0, 0, &p3));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	ASSERT_EQ(0, clock_settime(CLOCK_REALTIME, &ts));
	EXPECT_LT(p1.msg_id, p2.msg_id);
	EXPECT_LT(p2.msg_id, p3.msg_id);
}

TEST_F(pubsub, payload_sizes)
{
	unsigned char buf[MAX_MSG + 1];
	const struct pcb_record *rec;
	struct pcb_publish p;
	unsigned int i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = i * 7 + 3;
	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));

	EXPECT_EQ(-EMSGSIZE, pcbt_publish(self->fd, self->handle, buf,
					  MAX_MSG + 1, 0, 0, NULL));
	EXPECT_EQ(-EMSGSIZE, pcbt_publish(self->fd, self->handle, buf,
					  UINT32_MAX, 0, 0, NULL));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, buf, MAX_MSG, 0, 0,
				  &p));
	EXPECT_EQ(1ULL, p.seq);
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, NULL, 0, 0, 0, &p));
	EXPECT_EQ(2ULL, p.seq);

	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ((__u32)MAX_MSG, rec->payload_len);
	EXPECT_EQ(0, memcmp(pcbt_payload(rec), buf, MAX_MSG));
	pcbt_ring_pop(&self->ring);
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(0U, rec->payload_len);
	EXPECT_EQ(2ULL, rec->seq);
	EXPECT_EQ(rec->hdr_len, rec->len);
	pcbt_ring_pop(&self->ring);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));
}

TEST_F(pubsub, publish_ebadf)
{
	char byte = 0;
	__u32 h2;
	int fd2, fd3;

	EXPECT_EQ(-EBADF, pcbt_publish(self->fd, self->handle + 1000, &byte, 1,
				       0, 0, NULL));
	EXPECT_EQ(-EBADF, pcbt_publish(self->fd, UINT32_MAX, &byte, 1, 0, 0,
				       NULL));
	/* A handle of another endpoint means nothing here. */
	PCBT_OPEN(fd2);
	PCBT_OPEN(fd3);
	ASSERT_EQ(0, pcbt_open_topic(fd2, self->name, SCHEMA, &h2));
	EXPECT_EQ(-EBADF, pcbt_publish(fd3, h2, &byte, 1, 0, 0, NULL));
	close(fd2);
	close(fd3);
	EXPECT_EQ(0LL, pcbt_published(self->fd, self->name));
}

TEST_F(pubsub, publish_efault_publishes_nothing)
{
	long page = sysconf(_SC_PAGESIZE);
	const struct pcb_record *rec;
	struct pcb_publish p;
	char *two;

	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(-EFAULT, pcbt_publish(self->fd, self->handle, (void *)8, 16,
					0, 0, NULL));
	/* A payload whose second half is not readable. */
	two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, mprotect(two + page, page, PROT_NONE));
	memset(two, 'a', page);
	EXPECT_EQ(-EFAULT, pcbt_publish(self->fd, self->handle,
					two + page - 100, 200, 0, 0, NULL));
	EXPECT_EQ(-EFAULT, pcbt_publish(self->fd, self->handle,
					two + page - 100, 200,
					PCB_PUB_NONBLOCK, 0, NULL));

	/* Nothing reached the ring (a DISCARD record is allowed) ... */
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));
	EXPECT_EQ(NULL, self->ring.corrupt);
	/* ... and no sequence number was used up. */
	EXPECT_EQ(0LL, pcbt_published(self->fd, self->name));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, two, 100, 0, 0, &p));
	EXPECT_EQ(1ULL, p.seq);
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(1ULL, rec->seq);
	EXPECT_EQ(100U, rec->payload_len);
	munmap(two, 2 * page);
}

/*
 * A struct pcb_publish that can be read but not written back: EFAULT, and
 * the header promises that then nothing was published.
 */
TEST_F(pubsub, publish_read_only_argument)
{
	long page = sysconf(_SC_PAGESIZE);
	struct pcb_publish p = {
		.handle = self->handle,
		.payload = (uintptr_t)"ro",
		.len = 2,
	}, *ro;
	long long published;

	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
	ro = mmap(NULL, page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = p;
	ASSERT_EQ(0, mprotect(ro, page, PROT_READ));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, ro));
	munmap(ro, page);

	/* EFAULT means nothing went out: no sequence number, no record. */
	published = pcbt_published(self->fd, self->name);
	EXPECT_EQ(0LL, published);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));
}

TEST_F(pubsub, publish_einval)
{
	struct pcb_publish p = { .handle = self->handle };
	char byte = 0;

	p.payload = (uintptr_t)&byte;
	p.len = 1;
	p.flags = PCB_PUB_FLAGS_ALL + 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p));
	p.flags = 0x80000000;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p));
	p.flags = 0;
	p.nr_deps = PCB_MAX_DEPS + 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p));
	p.nr_deps = 0;
	p.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p));
	p.reserved[0] = 0;
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, NULL));
	EXPECT_EQ(0LL, pcbt_published(self->fd, self->name));
	/* Output fields hold no meaning on input. */
	p.msg_id = ~0ULL;
	p.seq = ~0ULL;
	EXPECT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_PUBLISH, &p));
	EXPECT_EQ(1ULL, p.seq);
}

TEST_F(pubsub, publish_without_subscribers)
{
	struct pcb_publish p1, p2;
	char byte = 0;

	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, &byte, 1, 0, 0, &p1));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, &byte, 1,
				  PCB_PUB_NONBLOCK, 0, &p2));
	EXPECT_EQ(1ULL, p1.seq);
	EXPECT_EQ(2ULL, p2.seq);
	EXPECT_LT(0ULL, p1.msg_id);
	EXPECT_LT(p1.msg_id, p2.msg_id);
	EXPECT_EQ(2LL, pcbt_published(self->fd, self->name));
	EXPECT_EQ(0ULL, pcbt_prod_pos(&self->ring));
}

TEST_F(pubsub, sequence_is_per_topic)
{
	char other[PCB_NAME_MAX];
	struct pcb_publish p;
	char byte = 0;
	__u32 h2;

	pcbt_name(other, "seq2");
	ASSERT_EQ(0, pcbt_create(self->fd, other, SCHEMA, 8, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, other, SCHEMA, &h2));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, &byte, 1, 0, 0, &p));
	EXPECT_EQ(1ULL, p.seq);
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, &byte, 1, 0, 0, &p));
	EXPECT_EQ(2ULL, p.seq);
	ASSERT_EQ(0, pcbt_publish(self->fd, h2, &byte, 1, 0, 0, &p));
	EXPECT_EQ(1ULL, p.seq);
}

TEST_F(pubsub, two_subscribers_get_identical_records)
{
	enum { N = 50 };
	struct pcbt_ring a, b;
	unsigned char buf[MAX_MSG];
	int fa, fb, i;

	fa = pcbt_ring_open(8192, &a);
	ASSERT_LE(0, fa);
	fb = pcbt_ring_open(RING, &b);
	ASSERT_LE(0, fb);
	ASSERT_EQ(0, pcbt_subscribe(fa, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcbt_subscribe(fb, self->name, SCHEMA, PCB_SUB_LOSSY,
				    NULL));
	EXPECT_EQ(2LL, pcbt_nr_subs(self->fd, self->name));

	for (i = 0; i < N; i++) {
		const struct pcb_record *ra, *rb;
		__u32 len = (i * 13) % MAX_MSG;

		memset(buf, 'A' + i % 26, len);
		ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, buf, len, 0,
					  0, NULL));
		ra = pcbt_ring_next(&a, PCBT_SEC);
		rb = pcbt_ring_next(&b, PCBT_SEC);
		ASSERT_NE(NULL, ra);
		ASSERT_NE(NULL, rb);
		ASSERT_EQ(ra->len, rb->len);
		EXPECT_EQ((__u64)i + 1, ra->seq);
		EXPECT_EQ(0, memcmp(ra, rb, ra->len)) TH_LOG("record %d", i);
		pcbt_ring_pop(&a);
		pcbt_ring_pop(&b);
		ASSERT_EQ(0, pcbt_ring_release(&a));
		ASSERT_EQ(0, pcbt_ring_release(&b));
	}
	EXPECT_EQ(0ULL, b.hdr->dropped);
	pcbt_ring_close(&a);
	pcbt_ring_close(&b);
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->name));
}

/* Fills a ring that nobody drains; returns the records that fitted. */
static int fill(int fd, __u32 handle, __u32 len, int max, int *eagain)
{
	static unsigned char buf[MAX_MSG];
	int i, ret;

	*eagain = 0;
	for (i = 0; i < max; i++) {
		ret = pcbt_publish(fd, handle, buf, len, PCB_PUB_NONBLOCK, 0,
				   NULL);
		if (ret == -EAGAIN) {
			*eagain = 1;
			break;
		}
		if (ret)
			return ret;
	}
	return i;
}

TEST_F(pubsub, lossy_full_ring_drops)
{
	enum { N = 100, LEN = 200 };
	const struct pcb_record *rec;
	struct pcbt_ring r;
	struct pcb_publish p;
	__u64 got = 0;
	int fd, n, eagain;

	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, PCB_SUB_LOSSY,
				    NULL));

	/* A lossy subscriber never pushes back. */
	n = fill(self->fd, self->handle, LEN, N, &eagain);
	ASSERT_EQ(N, n);
	EXPECT_EQ(0, eagain);
	EXPECT_EQ((long long)N, pcbt_published(self->fd, self->name));

	/* The newest messages were dropped: the ring holds 1..got. */
	while ((rec = pcbt_ring_peek(&r))) {
		EXPECT_EQ(got + 1, rec->seq);
		got++;
		pcbt_ring_pop(&r);
	}
	EXPECT_EQ(NULL, r.corrupt);
	EXPECT_LT(0ULL, got);
	EXPECT_EQ(4096 / PCB_REC_SIZE(sizeof(struct pcb_record) + LEN), got);
	EXPECT_EQ((__u64)N, got + r.hdr->dropped);

	/* Room again: the next message arrives, after a visible gap. */
	ASSERT_EQ(0, pcbt_ring_release(&r));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, "x", 1, 0, 0, &p));
	EXPECT_EQ((__u64)N + 1, p.seq);
	rec = pcbt_ring_peek(&r);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ((__u64)N + 1, rec->seq);
	EXPECT_EQ((__u64)N - got, r.hdr->dropped);
	pcbt_ring_close(&r);
}

TEST_F(pubsub, lossy_accounting)
{
	enum { N = 300, LEN = 100 };
	static const unsigned char buf[LEN];
	const struct pcb_record *rec;
	struct pcbt_ring r;
	__u64 got = 0, expect = 1, gaps = 0;
	int fd, i;

	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, PCB_SUB_LOSSY,
				    NULL));
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, buf, LEN, 0,
					  0, NULL));
		/* Drain now and then, so that some messages get through. */
		if (i % 97 == 96) {
			while ((rec = pcbt_ring_peek(&r))) {
				ASSERT_LE(expect, rec->seq);
				gaps += rec->seq - expect;
				expect = rec->seq + 1;
				got++;
				pcbt_ring_pop(&r);
			}
			pcbt_ring_release(&r);
		}
	}
	while ((rec = pcbt_ring_peek(&r))) {
		ASSERT_LE(expect, rec->seq);
		gaps += rec->seq - expect;
		expect = rec->seq + 1;
		got++;
		pcbt_ring_pop(&r);
	}
	gaps += N + 1 - expect;
	EXPECT_EQ((__u64)N, got + r.hdr->dropped);
	EXPECT_EQ(gaps, r.hdr->dropped);
	EXPECT_LT(0ULL, r.hdr->dropped);
	pcbt_ring_close(&r);
}

TEST_F(pubsub, reliable_full_ring_eagain_publishes_nothing)
{
	enum { LEN = 200 };
	static const char buf[LEN];
	struct pcbt_ring small, lossy;
	struct pcb_publish p;
	int fs, fl, n, eagain;
	__u64 prod_big, prod_lossy;

	/* The fixture's ring is the big reliable subscriber. */
	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
	fs = pcbt_ring_open(4096, &small);
	ASSERT_LE(0, fs);
	ASSERT_EQ(0, pcbt_subscribe(fs, self->name, SCHEMA, 0, NULL));
	fl = pcbt_ring_open(RING, &lossy);
	ASSERT_LE(0, fl);
	ASSERT_EQ(0, pcbt_subscribe(fl, self->name, SCHEMA, PCB_SUB_LOSSY,
				    NULL));

	n = fill(self->fd, self->handle, LEN, 1000, &eagain);
	ASSERT_LT(0, n);
	ASSERT_EQ(1, eagain);
	EXPECT_EQ((long long)n, pcbt_published(self->fd, self->name));

	prod_big = pcbt_prod_pos(&self->ring);
	prod_lossy = pcbt_prod_pos(&lossy);
	EXPECT_EQ(-EAGAIN, pcbt_publish(self->fd, self->handle, buf, LEN,
					PCB_PUB_NONBLOCK, 0, NULL));
	EXPECT_EQ(-EAGAIN, pcbt_publish(self->fd, self->handle, buf, LEN,
					PCB_PUB_NONBLOCK, 0, NULL));
	/* All or none: the others got nothing either. */
	EXPECT_EQ(prod_big, pcbt_prod_pos(&self->ring));
	EXPECT_EQ(prod_lossy, pcbt_prod_pos(&lossy));
	EXPECT_EQ(0ULL, lossy.hdr->dropped);
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->ring));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&lossy));
	EXPECT_EQ((long long)n, pcbt_published(self->fd, self->name));

	/* Room again: the sequence goes on without a hole. */
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&small));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, buf, LEN,
				  PCB_PUB_NONBLOCK, 0, &p));
	EXPECT_EQ((__u64)n + 1, p.seq);
	pcbt_ring_close(&small);
	pcbt_ring_close(&lossy);
}

TEST_F(pubsub, deleted_topic)
{
	const struct pcb_record *rec;
	struct pcb_publish p;
	__u32 new_id;
	int i;

	ASSERT_EQ(0, pcbt_subscribe(self->fd, self->name, SCHEMA, 0, NULL));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, "abc", 3, 0,
					  0, NULL));
	ASSERT_EQ(0, pcbt_delete(self->fd, self->name));

	EXPECT_EQ(-EIDRM, pcbt_publish(self->fd, self->handle, "abc", 3, 0, 0,
				       NULL));
	EXPECT_EQ(-EIDRM, pcbt_publish(self->fd, self->handle, "abc", 3,
				       PCB_PUB_NONBLOCK, 0, NULL));
	/* The subscription went with the topic; its records stayed. */
	EXPECT_EQ(-ENOENT, pcbt_unsubscribe(self->fd, self->topic_id));
	for (i = 0; i < 3; i++) {
		rec = pcbt_ring_peek(&self->ring);
		ASSERT_NE(NULL, rec);
		EXPECT_EQ((__u64)i + 1, rec->seq);
		EXPECT_EQ(0, memcmp(pcbt_payload(rec), "abc", 3));
		pcbt_ring_pop(&self->ring);
	}
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));

	/* The name is free; the new topic is another topic. */
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, MAX_MSG, 0777,
				 &new_id));
	EXPECT_NE(self->topic_id, new_id);
	EXPECT_EQ(-EIDRM, pcbt_publish(self->fd, self->handle, "abc", 3, 0, 0,
				       NULL));
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->name));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA,
				     &self->handle));
	ASSERT_EQ(0, pcbt_publish(self->fd, self->handle, "new", 3, 0, 0, &p));
	EXPECT_EQ(1ULL, p.seq);
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));
}

TEST_F(pubsub, close_handle_of_deleted_topic)
{
	__u32 h = self->handle;

	ASSERT_EQ(0, pcbt_delete(self->fd, self->name));
	EXPECT_EQ(-EIDRM, pcbt_publish(self->fd, h, "a", 1, 0, 0, NULL));
	EXPECT_EQ(0, pcbt_close_topic(self->fd, h));
	EXPECT_EQ(-EBADF, pcbt_publish(self->fd, h, "a", 1, 0, 0, NULL));
}

TEST_F(pubsub, large_messages_wrap)
{
	enum { BIG = 100000, SIZE = 256 * 1024 };
	char name[PCB_NAME_MAX];
	unsigned char *buf = malloc(BIG);
	struct pcbt_ring r;
	__u32 h;
	int fd, i, j;

	ASSERT_NE(NULL, buf);
	pcbt_name(name, "big");
	ASSERT_EQ(0, pcbt_create(self->fd, name, SCHEMA, BIG, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, name, SCHEMA, &h));
	fd = pcbt_ring_open(SIZE, &r);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, name, SCHEMA, 0, NULL));
	for (i = 0; i < 12; i++) {
		const struct pcb_record *rec;
		__u32 len = BIG - i * 999;

		for (j = 0; j < (int)len; j++)
			buf[j] = (unsigned char)(i + j * 31);
		ASSERT_EQ(0, pcbt_publish(self->fd, h, buf, len, 0,
					  10 * PCBT_SEC, NULL));
		rec = pcbt_ring_next(&r, PCBT_SEC);
		ASSERT_NE(NULL, rec);
		ASSERT_EQ(len, rec->payload_len);
		EXPECT_EQ(0, memcmp(pcbt_payload(rec), buf, len))
			TH_LOG("message %d", i);
		pcbt_ring_pop(&r);
		pcbt_ring_release(&r);
	}
	pcbt_ring_close(&r);
	free(buf);
}

TEST_F(pubsub, subscribe_enospc_at_max_subscribers)
{
	unsigned long long saved = pcbt_param("max_subscribers", 0);
	struct pcbt_ring a, b;
	int fa, fb;

	if (!pcbt_is_root() || !saved)
		SKIP(return, "needs root and the max_subscribers parameter");
	if (pcbt_set_param("max_subscribers", 1))
		SKIP(return, "max_subscribers is not writable");
	fa = pcbt_ring_open(4096, &a);
	fb = pcbt_ring_open(4096, &b);
	EXPECT_EQ(0, pcbt_subscribe(fa, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(-ENOSPC, pcbt_subscribe(fb, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(-ENOSPC, pcbt_subscribe(fb, self->name, SCHEMA,
					  PCB_SUB_LOSSY, NULL));
	ASSERT_EQ(0, pcbt_set_param("max_subscribers", saved));
	EXPECT_EQ(0, pcbt_subscribe(fb, self->name, SCHEMA, 0, NULL));
	pcbt_ring_close(&a);
	pcbt_ring_close(&b);
}

TEST_HARNESS_MAIN
