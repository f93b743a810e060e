// SPDX-License-Identifier: GPL-2.0
/*
 * Message ids and causal dependencies: the rules a publish's dependencies
 * must follow on every publish path, what the record carries, ids that
 * stay unique and increasing across threads and CPUs, and a seeded
 * property test of random publish / read / republish chains.
 *
 * PCB_TEST_SEED reproduces the random choices of causal.property (the
 * interleaving of its threads is the scheduler's).
 */
#include "pcb_util.h"
#include "pcb_uring.h"

#define SCHEMA		0xca05a1
#define LEN		64	/* the fixture topic's max_msg_size */
#define RING		(64U * 1024)
#define HDR		sizeof(struct pcb_record)

FIXTURE(causal) {
	int pfd;			/* publisher endpoint */
	__u32 handle;
	char name[PCB_NAME_MAX];
	__u32 topic_id;
	struct pcbt_ring ring;		/* reliable subscriber */
};

FIXTURE_SETUP(causal)
{
	self->ring.fd = -1;
	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "causal");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0700,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
	ASSERT_LE(0, pcbt_ring_open(RING, &self->ring));
	ASSERT_EQ(0, pcbt_subscribe(self->ring.fd, self->name, SCHEMA, 0,
				    NULL));
}

FIXTURE_TEARDOWN(causal)
{
	if (self->ring.fd >= 0)
		pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

static bool ring_empty(struct pcbt_ring *r)
{
	return !pcbt_ring_peek(r) && !r->corrupt;
}

/* The id of a new message without dependencies (consumed at once). */
static __u64 fresh_id(struct __test_metadata *_metadata,
		      FIXTURE_DATA(causal) *self)
{
	struct pcb_publish p;

	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, "f", 1, 0, NULL,
				       0, 0, &p));
	ASSERT_EQ(1U, pcbt_ring_drain(&self->ring));
	return p.msg_id;
}

static int pub_deps(FIXTURE_DATA(causal) *self, const __u64 *deps,
		    __u32 nr_deps, struct pcb_publish *out)
{
	return pcbt_publish_deps(self->pfd, self->handle, "payload", 7, 0x1d,
				 deps, nr_deps, PCB_PUB_NONBLOCK, out);
}

/*
 * The next record carries @deps and @len payload bytes of @payload, and
 * is message @msg_id: checks it and consumes it.
 */
static void expect_record(struct __test_metadata *_metadata,
			  struct pcbt_ring *r, __u64 msg_id,
			  const __u64 *deps, __u32 nr_deps,
			  const void *payload, __u32 len)
{
	const struct pcb_record *rec = pcbt_ring_peek(r);
	__u64 pos = r->pos;
	__u32 i;

	ASSERT_NE(NULL, rec) TH_LOG("message %llu missing",
				    (unsigned long long)msg_id);
	EXPECT_EQ(msg_id, rec->msg_id);
	ASSERT_EQ(nr_deps, rec->nr_deps);
	EXPECT_EQ(HDR + 8 * nr_deps, rec->hdr_len);
	ASSERT_EQ(len, rec->payload_len);
	EXPECT_EQ(rec->hdr_len + len, rec->len);
	EXPECT_EQ(0ULL, rec->reserved);
	for (i = 0; i < nr_deps; i++) {
		EXPECT_EQ(deps[i], pcbt_rec_deps(rec)[i]) TH_LOG("dep %u", i);
		EXPECT_LT(deps[i], rec->msg_id);
	}
	EXPECT_EQ(0, memcmp(payload, pcbt_payload(rec), len));
	pcbt_ring_pop(r);
	/* The record took exactly its size of ring. */
	EXPECT_EQ(pos + PCB_REC_SIZE(HDR + 8 * nr_deps + len), r->pos);
}

/* Nothing was published since @published and @prod were read. */
static void expect_nothing(struct __test_metadata *_metadata,
			   FIXTURE_DATA(causal) *self, long long published,
			   __u64 prod, const char *what)
{
	EXPECT_EQ(published, pcbt_published(self->pfd, self->name))
		TH_LOG("%s", what);
	EXPECT_EQ(prod, pcbt_prod_pos(&self->ring)) TH_LOG("%s", what);
}

/* Dependency lists that must be refused, with their errno. */
struct bad_deps {
	const char *what;
	int err;
	__u32 nr_deps;
	const __u64 *deps;
};

/* @ids: PCB_MAX_DEPS + 1 distinct ids handed out, the last one last. */
static unsigned int bad_deps(struct bad_deps *b, const __u64 *ids,
			     __u64 *scratch, const void *guarded_end)
{
	const __u64 last = ids[PCB_MAX_DEPS];
	unsigned int n = 0;

#define BADD(desc, e, nr, ...) do {					\
	const __u64 __d[] = { __VA_ARGS__ };				\
	memcpy(scratch, __d, sizeof(__d));				\
	b[n++] = (struct bad_deps){ desc, e, nr, scratch };		\
	scratch += ARRAY_SIZE(__d);					\
} while (0)
	BADD("from the future", -EINVAL, 1, last + 3600 * PCBT_SEC);
	BADD("UINT64_MAX", -EINVAL, 1, ~0ULL);
	BADD("id 0", -EINVAL, 1, 0);
	BADD("id 0 second", -EINVAL, 2, ids[0], 0);
	BADD("future second", -EINVAL, 3, ids[0], ids[1],
	     last + 3600 * PCBT_SEC);
	BADD("the same twice", -EINVAL, 2, ids[0], ids[0]);
	BADD("the same twice, apart", -EINVAL, 3, ids[1], ids[0], ids[1]);
	BADD("the same at both ends of eight", -EINVAL, PCB_MAX_DEPS,
	     ids[7], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7]);
	BADD("one too many", -EINVAL, PCB_MAX_DEPS + 1,
	     ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7],
	     ids[8]);
	BADD("UINT32_MAX of them", -EINVAL, ~0U,
	     ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7],
	     ids[8]);
#undef BADD
	b[n++] = (struct bad_deps){ "unmapped", -EFAULT, 1,
				    (const __u64 *)(uintptr_t)8 };
	b[n++] = (struct bad_deps){ "no access", -EFAULT, 1,
				    pcbt_no_access_page() };
	/* The first id readable, the second in the page after. */
	b[n++] = (struct bad_deps){ "across into no access", -EFAULT, 2,
				    (const __u64 *)guarded_end - 1 };
	return n;
}

#define MAX_BAD		16

/*
 * PCB_MAX_DEPS + 1 ids, oldest first, and a bad_deps() table.  Its ids
 * "from the future" are an hour ahead of the clock, so they stay so for
 * the whole test.
 */
static unsigned int setup_bad(struct __test_metadata *_metadata,
			      FIXTURE_DATA(causal) *self, __u64 *ids,
			      struct bad_deps *b, __u64 *scratch)
{
	char *guarded = pcbt_guarded_page();
	unsigned int i;

	ASSERT_NE(NULL, guarded);
	for (i = 0; i <= PCB_MAX_DEPS; i++)
		ids[i] = fresh_id(_metadata, self);
	*(__u64 *)(guarded + 4096 - 8) = ids[0];
	return bad_deps(b, ids, scratch, guarded + 4096);
}

TEST_F(causal, dependency_errors)
{
	__u64 ids[PCB_MAX_DEPS + 1], scratch[128];
	struct bad_deps b[MAX_BAD];
	unsigned int i, n;
	long long published;
	__u64 prod;

	n = setup_bad(_metadata, self, ids, b, scratch);
	ASSERT_NE(NULL, b[n - 2].deps);
	published = pcbt_published(self->pfd, self->name);
	prod = pcbt_prod_pos(&self->ring);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(b[i].err, pub_deps(self, b[i].deps, b[i].nr_deps,
					     NULL))
			TH_LOG("%s", b[i].what);
		/* Waiting or not makes no difference. */
		EXPECT_EQ(b[i].err, pcbt_publish_deps(self->pfd, self->handle,
						      "x", 1, 0, b[i].deps,
						      b[i].nr_deps, 0, NULL))
			TH_LOG("%s, blocking", b[i].what);
		expect_nothing(_metadata, self, published, prod, b[i].what);
	}
}

/*
 * "From the future" means past both the last id handed out and the wall
 * clock.  An id the clock has passed is accepted though nobody was given
 * it (so the answer tells nothing of when the bus's last message went
 * out), and the new id exceeds it; one a second ahead of the clock is
 * refused and publishes nothing.
 */
TEST_F(causal, future_is_past_the_clock_and_the_last_id)
{
	__u64 last = fresh_id(_metadata, self), dep;
	struct pcb_publish p;
	long long published;

	pcbt_sleep_ms(20);	/* the clock is now well past last */
	ASSERT_LT(last + 10 * PCBT_MS, pcbt_now_ns(CLOCK_REALTIME));
	published = pcbt_published(self->pfd, self->name);
	dep = pcbt_now_ns(CLOCK_REALTIME) + PCBT_SEC;
	EXPECT_EQ(-EINVAL, pub_deps(self, &dep, 1, NULL));
	EXPECT_EQ(published, pcbt_published(self->pfd, self->name));
	dep = last + PCBT_MS;
	EXPECT_EQ(0, pub_deps(self, &dep, 1, &p));
	EXPECT_LT(dep, p.msg_id);
	dep = last;
	EXPECT_EQ(0, pub_deps(self, &dep, 1, NULL));
	EXPECT_EQ(2U, pcbt_ring_drain(&self->ring));
}

/*
 * The same when the clock steps back: a dependency on an id now ahead of
 * the clock is still valid, the new id still greater.  Stepping the clock
 * disturbs the whole machine: only when PCB_TEST_STEP_CLOCK=1 (the test
 * VM's root run).
 */
TEST_F(causal, deps_when_the_clock_steps_back)
{
	const char *ok = getenv("PCB_TEST_STEP_CLOCK");
	struct pcb_publish p2, p3;
	struct timespec ts;
	__u64 p1, dep;
	int r2, r3, r4;

	if (!pcbt_is_root() || !ok || strcmp(ok, "1"))
		SKIP(return, "PCB_TEST_STEP_CLOCK=1 and root let it step the clock");
	p1 = fresh_id(_metadata, self);
	ASSERT_EQ(0, clock_gettime(CLOCK_REALTIME, &ts));
	ts.tv_sec -= 10;
	ASSERT_EQ(0, clock_settime(CLOCK_REALTIME, &ts));
	r2 = pub_deps(self, &p1, 1, &p2);
	r3 = pub_deps(self, &p2.msg_id, 1, &p3);
	dep = p3.msg_id + 1;
	r4 = pub_deps(self, &dep, 1, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	ASSERT_EQ(0, clock_settime(CLOCK_REALTIME, &ts));

	ASSERT_EQ(0, r2);
	ASSERT_EQ(0, r3);
	EXPECT_EQ(-EINVAL, r4);
	EXPECT_LT(p1, p2.msg_id);
	EXPECT_LT(p2.msg_id, p3.msg_id);
	expect_record(_metadata, &self->ring, p2.msg_id, &p1, 1, "payload", 7);
	expect_record(_metadata, &self->ring, p3.msg_id, &p2.msg_id, 1,
		      "payload", 7);
}

/* What the rules let through. */
TEST_F(causal, dependency_edges)
{
	__u64 ids[PCB_MAX_DEPS], one = 1, last;
	struct pcb_publish p;
	unsigned int i;

	for (i = 0; i < PCB_MAX_DEPS; i++)
		ids[i] = fresh_id(_metadata, self);

	/* nr_deps 0: the pointer is not looked at. */
	ASSERT_EQ(0, pub_deps(self, (const __u64 *)(uintptr_t)8, 0, &p));
	expect_record(_metadata, &self->ring, p.msg_id, NULL, 0, "payload", 7);
	ASSERT_EQ(0, pub_deps(self, pcbt_no_access_page(), 0, &p));
	expect_record(_metadata, &self->ring, p.msg_id, NULL, 0, "payload", 7);

	/* The very last id handed out. */
	last = p.msg_id;
	ASSERT_EQ(0, pub_deps(self, &last, 1, &p));
	EXPECT_LT(last, p.msg_id);
	expect_record(_metadata, &self->ring, p.msg_id, &last, 1, "payload",
		      7);

	/*
	 * An id long past: the kernel cannot tell it from a real one, and
	 * the uapi refuses only 0 and ids from the future.
	 */
	ASSERT_EQ(0, pub_deps(self, &one, 1, &p));
	expect_record(_metadata, &self->ring, p.msg_id, &one, 1, "payload", 7);

	/* PCB_MAX_DEPS of them. */
	ASSERT_EQ(0, pub_deps(self, ids, PCB_MAX_DEPS, &p));
	expect_record(_metadata, &self->ring, p.msg_id, ids, PCB_MAX_DEPS,
		      "payload", 7);
	EXPECT_TRUE(ring_empty(&self->ring));
}

/*
 * The record: nr_deps, hdr_len, the ids in the publisher's order, then
 * the payload; the id greater than every dependency.
 */
TEST_F(causal, record_layout)
{
	__u64 ids[PCB_MAX_DEPS], deps[PCB_MAX_DEPS];
	unsigned char payload[LEN];
	struct pcb_publish p;
	__u32 k, i, len;

	for (i = 0; i < PCB_MAX_DEPS; i++)
		ids[i] = fresh_id(_metadata, self);
	for (i = 0; i < LEN; i++)
		payload[i] = (unsigned char)(i * 13 + 1);

	for (k = 0; k <= PCB_MAX_DEPS; k++) {
		/* Not sorted: newest, oldest, then the rest backwards. */
		for (i = 0; i < k; i++)
			deps[i] = ids[(PCB_MAX_DEPS - 1 + i * 5) % PCB_MAX_DEPS];
		for (len = 0; len <= LEN; len += LEN / 2 + k) {
			ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle,
						       payload, len, k, deps, k,
						       0, &p));
			expect_record(_metadata, &self->ring, p.msg_id, deps,
				      k, payload, len);
		}
	}
	/* The payload of the largest message behind the most deps. */
	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, self->handle, payload, LEN,
				       9, ids, PCB_MAX_DEPS, 0, &p));
	expect_record(_metadata, &self->ring, p.msg_id, ids, PCB_MAX_DEPS,
		      payload, LEN);
	EXPECT_TRUE(ring_empty(&self->ring));
	pcbt_ring_release(&self->ring);
}

/*
 * A ring of 4096 bytes takes a topic whose largest message, behind
 * PCB_MAX_DEPS dependencies, fills it exactly; and such records go
 * through it, one at a time, across its end.
 */
TEST_F(causal, max_deps_in_an_exact_ring)
{
	const __u32 max = 4096 - HDR - 8 * PCB_MAX_DEPS;
	__u64 ids[PCB_MAX_DEPS];
	char name[PCB_NAME_MAX], big[PCB_NAME_MAX];
	unsigned char *payload = malloc(max);
	struct pcb_publish p;
	struct pcbt_ring r;
	__u32 h, i;

	ASSERT_NE(NULL, payload);
	for (i = 0; i < PCB_MAX_DEPS; i++)
		ids[i] = fresh_id(_metadata, self);
	pcbt_name(name, "exact");
	pcbt_name(big, "toobig");
	ASSERT_EQ(0, pcbt_create(self->pfd, name, SCHEMA, max, 0700, NULL));
	ASSERT_EQ(0, pcbt_create(self->pfd, big, SCHEMA, max + 1, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, name, SCHEMA, &h));
	ASSERT_LE(0, pcbt_ring_open(4096, &r));
	EXPECT_EQ(-ENOSPC, pcbt_subscribe(r.fd, big, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcbt_subscribe(r.fd, name, SCHEMA, 0, NULL));

	/* A small record first, so that the big ones wrap. */
	ASSERT_EQ(0, pcbt_publish_deps(self->pfd, h, "s", 1, 0, NULL, 0,
				       PCB_PUB_NONBLOCK, NULL));
	EXPECT_EQ(1U, pcbt_ring_drain(&r));
	for (i = 0; i < 3; i++) {
		memset(payload, 'a' + (int)i, max);
		payload[0] = payload[max - 1] = (unsigned char)i;
		ASSERT_EQ(0, pcbt_publish_deps(self->pfd, h, payload, max, i,
					       ids, PCB_MAX_DEPS,
					       PCB_PUB_NONBLOCK, &p))
			TH_LOG("round %u", i);
		/* Full: not a byte more. */
		EXPECT_EQ(-EAGAIN, pcbt_publish_deps(self->pfd, h, NULL, 0, 0,
						     NULL, 0, PCB_PUB_NONBLOCK,
						     NULL));
		ASSERT_NE(NULL, pcbt_ring_peek(&r));
		EXPECT_EQ(4096U, pcbt_ring_peek(&r)->len);
		expect_record(_metadata, &r, p.msg_id, ids, PCB_MAX_DEPS,
			      payload, max);
		pcbt_ring_release(&r);
	}
	pcbt_ring_close(&r);
	free(payload);
}

static int batch_deps(int fd, struct pcb_batch_entry *e, __u32 count,
		      __u32 flags, const __u64 *deps, __u32 nr_deps)
{
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)e,
		.count = count,
		.flags = flags,
		.nr_deps = nr_deps,
		.deps = (uintptr_t)deps,
	};

	return pcbt_ioctl(fd, PCB_IOC_PUBLISH_BATCH, &b);
}

static void set_entries(struct pcb_batch_entry *e, __u32 count, __u32 handle)
{
	__u32 i;

	memset(e, 0, count * sizeof(*e));
	for (i = 0; i < count; i++) {
		e[i].handle = handle;
		e[i].payload = (uintptr_t)"batch";
		e[i].len = 5;
		e[i].key = i;
	}
}

/* A batch's dependencies, atomic or not, go on every one of its records. */
TEST_F(causal, batch_deps)
{
	static const __u32 flags[] = { 0, PCB_PUB_ATOMIC };
	__u64 ids[PCB_MAX_DEPS + 1], scratch[128], deps[3];
	struct bad_deps b[MAX_BAD];
	struct pcb_batch_entry e[5];
	unsigned int n, i, k;
	long long published;
	__u64 prod;

	n = setup_bad(_metadata, self, ids, b, scratch);
	deps[0] = ids[5];
	deps[1] = ids[0];
	deps[2] = ids[3];
	for (k = 0; k < ARRAY_SIZE(flags); k++) {
		set_entries(e, 5, self->handle);
		ASSERT_EQ(0, batch_deps(self->pfd, e, 5, flags[k], deps, 3));
		for (i = 0; i < 5; i++) {
			EXPECT_EQ(0, e[i].result);
			if (i)
				EXPECT_LT(e[i - 1].msg_id, e[i].msg_id);
			expect_record(_metadata, &self->ring, e[i].msg_id, deps,
				      3, "batch", 5);
		}
		/* nr_deps 0: the pointer is not looked at. */
		set_entries(e, 2, self->handle);
		ASSERT_EQ(0, batch_deps(self->pfd, e, 2, flags[k],
					(const __u64 *)(uintptr_t)8, 0));
		for (i = 0; i < 2; i++)
			expect_record(_metadata, &self->ring, e[i].msg_id, NULL,
				      0, "batch", 5);
		EXPECT_TRUE(ring_empty(&self->ring));
		pcbt_ring_release(&self->ring);

		n = setup_bad(_metadata, self, ids, b, scratch);
		published = pcbt_published(self->pfd, self->name);
		prod = pcbt_prod_pos(&self->ring);
		for (i = 0; i < n; i++) {
			set_entries(e, 5, self->handle);
			EXPECT_EQ(b[i].err, batch_deps(self->pfd, e, 5,
						       flags[k], b[i].deps,
						       b[i].nr_deps))
				TH_LOG("%s, flags %#x", b[i].what, flags[k]);
			expect_nothing(_metadata, self, published, prod,
				       b[i].what);
		}
	}
}

/*
 * Dependencies take ring space: an atomic batch must fit with them.  A
 * topic of 200-byte messages: 15 records fit in 4096 bytes without
 * dependencies, 12 with PCB_MAX_DEPS of them.
 */
TEST_F(causal, atomic_batch_sized_with_deps)
{
	const __u32 with = PCB_REC_SIZE(HDR + 8 * PCB_MAX_DEPS + 200);
	const __u32 fit = 4096 / with;
	struct pcb_batch_entry e[16];
	__u64 ids[PCB_MAX_DEPS];
	char name[PCB_NAME_MAX];
	static char buf[200];
	struct pcbt_ring r;
	__u32 h, i;

	ASSERT_EQ(12U, fit);
	for (i = 0; i < PCB_MAX_DEPS; i++)
		ids[i] = fresh_id(_metadata, self);
	pcbt_name(name, "sized");
	ASSERT_EQ(0, pcbt_create(self->pfd, name, SCHEMA, 200, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, name, SCHEMA, &h));
	ASSERT_LE(0, pcbt_ring_open(4096, &r));
	ASSERT_EQ(0, pcbt_subscribe(r.fd, name, SCHEMA, 0, NULL));

	set_entries(e, fit + 1, h);
	for (i = 0; i <= fit; i++) {
		e[i].payload = (uintptr_t)buf;
		e[i].len = 200;
	}
	EXPECT_EQ(-E2BIG, batch_deps(self->pfd, e, fit + 1,
				     PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, ids,
				     PCB_MAX_DEPS));
	EXPECT_EQ(0LL, pcbt_published(self->pfd, name));
	/* Without the dependencies they would fit. */
	EXPECT_EQ(0, batch_deps(self->pfd, e, fit + 1,
				PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, NULL, 0));
	EXPECT_EQ(fit + 1, pcbt_ring_drain(&r));
	EXPECT_EQ(0, batch_deps(self->pfd, e, fit,
				PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, ids,
				PCB_MAX_DEPS));
	for (i = 0; i < fit; i++)
		expect_record(_metadata, &r, e[i].msg_id, ids, PCB_MAX_DEPS,
			      buf, 200);
	pcbt_ring_close(&r);
}

static struct pcb_uring_publish uring_deps(__u32 handle, const __u64 *deps,
					   __u32 nr_deps, __u32 flags)
{
	return (struct pcb_uring_publish){
		.handle = handle,
		.flags = flags,
		.payload = (uintptr_t)"payload",
		.len = 7,
		.key = 0x1d,
		.nr_deps = nr_deps,
		.deps = (uintptr_t)deps,
	};
}

TEST_F(causal, uring_deps)
{
	__u64 ids[PCB_MAX_DEPS + 1], scratch[128], deps[2];
	struct pcb_uring_publish up;
	struct bad_deps b[MAX_BAD];
	struct pcbt_cqe c;
	struct io_uring u;
	long long published;
	unsigned int n, i;
	__u64 prod;

	PCBT_URING_INIT(&u, 8);
	n = setup_bad(_metadata, self, ids, b, scratch);
	deps[0] = ids[2];
	deps[1] = ids[1];
	up = uring_deps(self->handle, deps, 2, PCB_PUB_NONBLOCK);
	ASSERT_EQ(0, pcbt_uring_publish(&u, self->pfd, &up, &c));
	expect_record(_metadata, &self->ring, c.msg_id, deps, 2, "payload", 7);
	up = uring_deps(self->handle, ids, PCB_MAX_DEPS, 0);
	ASSERT_EQ(0, pcbt_uring_publish(&u, self->pfd, &up, &c));
	expect_record(_metadata, &self->ring, c.msg_id, ids, PCB_MAX_DEPS,
		      "payload", 7);
	up = uring_deps(self->handle, pcbt_no_access_page(), 0, 0);
	ASSERT_EQ(0, pcbt_uring_publish(&u, self->pfd, &up, &c));
	expect_record(_metadata, &self->ring, c.msg_id, NULL, 0, "payload", 7);
	pcbt_ring_release(&self->ring);

	n = setup_bad(_metadata, self, ids, b, scratch);
	published = pcbt_published(self->pfd, self->name);
	prod = pcbt_prod_pos(&self->ring);
	for (i = 0; i < n; i++) {
		up = uring_deps(self->handle, b[i].deps, b[i].nr_deps,
				PCB_PUB_NONBLOCK);
		EXPECT_EQ(b[i].err, pcbt_uring_publish(&u, self->pfd, &up,
						       NULL))
			TH_LOG("%s", b[i].what);
		expect_nothing(_metadata, self, published, prod, b[i].what);
	}
	io_uring_queue_exit(&u);
}

/*
 * io_uring reads the dependencies when the command is issued: a command
 * that waits for room publishes those, whatever the array holds later.
 */
TEST_F(causal, uring_deps_read_at_issue)
{
	static const char buf[LEN];
	struct pcb_uring_publish up;
	const struct pcb_record *rec;
	__u64 deps[1], want;
	struct pcbt_cqe c;
	struct io_uring u;
	struct pcbt_ring r;
	int n = 0, ret;

	PCBT_URING_INIT(&u, 8);
	want = deps[0] = fresh_id(_metadata, self);
	ASSERT_LE(0, pcbt_ring_open(4096, &r));
	ASSERT_EQ(0, pcbt_subscribe(r.fd, self->name, SCHEMA, 0, NULL));
	while (!(ret = pcbt_publish_deps(self->pfd, self->handle, buf, LEN, 0,
					 NULL, 0, PCB_PUB_NONBLOCK, NULL)))
		n++;
	ASSERT_EQ(-EAGAIN, ret);
	pcbt_ring_drain(&self->ring);

	up = uring_deps(self->handle, deps, 1, 0);
	up.timeout_ns = 60 * PCBT_SEC;
	ASSERT_NE(NULL, pcbt_uring_queue(&u, self->pfd, &up, 1));
	ASSERT_EQ(1, io_uring_submit(&u));
	EXPECT_EQ(-ETIME, pcbt_uring_reap(&u, &c, 300));
	deps[0] = ~0ULL;	/* too late to matter */

	while (pcbt_ring_peek(&r))
		pcbt_ring_pop(&r);
	ASSERT_EQ(0, pcbt_ring_release(&r));
	pcbt_ioctl_val(r.fd, PCB_IOC_NOTIFY, 0);
	ASSERT_EQ(0, pcbt_uring_reap(&u, &c, PCBT_CQE_WAIT_MS));
	ASSERT_EQ(0, c.res);
	rec = pcbt_ring_next(&r, 10 * PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(c.msg_id, rec->msg_id);
	ASSERT_EQ(1U, rec->nr_deps);
	EXPECT_EQ(want, pcbt_rec_deps(rec)[0]);
	TH_LOG("%d records filled the ring", n);
	io_uring_queue_exit(&u);
	pcbt_ring_close(&r);
}

/* The CPUs this process may run on. */
static int online_cpus(int *cpus, int max)
{
	cpu_set_t set;
	int cpu, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	for (cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus[n++] = cpu;
	return n;
}

/* Pins the calling thread to @cpu: 0 or -errno. */
static int pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

#define MAX_CPUS	64
#define CPU_MSGS	5000
#define CPU_RING	(256U * 1024)

struct cpu_pub {
	int cpu;
	const char (*names)[PCB_NAME_MAX];
	__u64 *ids;
	int err;
	const char *what;
	unsigned int moved;	/* publishes that ran on another CPU */
};

/* One thread per CPU, publishing to two topics in turn. */
static void *cpu_publisher(void *arg)
{
	struct cpu_pub *a = arg;
	__u32 h[2];
	int fd, i;

	a->err = pin_to(a->cpu);
	if (a->err) {
		a->what = "sched_setaffinity";
		return NULL;
	}
	fd = pcbt_open();
	if (fd < 0) {
		a->err = fd;
		return NULL;
	}
	for (i = 0; i < 2 && !a->err; i++)
		a->err = pcbt_open_topic(fd, a->names[i], SCHEMA, &h[i]);
	for (i = 0; i < CPU_MSGS && !a->err; i++) {
		struct pcb_publish p = {
			.handle = h[(i + a->cpu) % 2],
			.payload = (uintptr_t)&i,
			.len = sizeof(i),
			.key = (__u64)a->cpu << 32 | (__u32)i,
			.timeout_ns = 60 * PCBT_SEC,
		};

		a->err = pcbt_ioctl(fd, PCB_IOC_PUBLISH, &p);
		a->ids[i] = p.msg_id;
		if (!a->err && i && a->ids[i] <= a->ids[i - 1]) {
			a->err = -EILSEQ;
			a->what = "a thread's ids not increasing";
		}
		if (sched_getcpu() != a->cpu)
			a->moved++;
	}
	close(fd);
	return NULL;
}

struct cpu_sub {
	struct pcbt_ring ring;
	__u32 topic_ids[2];
	__u64 total;
	__u64 *ids;
	__u64 got;
	const char *err;
};

/* Reads both topics: per topic, ids and sequence numbers increase. */
static void *cpu_consumer(void *arg)
{
	struct cpu_sub *s = arg;
	__u64 last_id[2] = { 0, 0 }, last_seq[2] = { 0, 0 };
	__u64 deadline = pcbt_now_ns(CLOCK_MONOTONIC) + 120 * PCBT_SEC;

	while (s->got < s->total && !s->err) {
		const struct pcb_record *rec;
		int t;

		rec = pcbt_ring_next(&s->ring, 10 * PCBT_MS);
		if (!rec) {
			if (s->ring.corrupt)
				s->err = s->ring.corrupt;
			else if (pcbt_now_ns(CLOCK_MONOTONIC) > deadline)
				s->err = "records missing";
			continue;
		}
		t = rec->topic_id == s->topic_ids[1];
		if (rec->msg_id <= last_id[t])
			s->err = "a topic's ids not increasing in ring order";
		if (rec->seq != last_seq[t] + 1)
			s->err = "a topic's sequence numbers not in order";
		last_id[t] = rec->msg_id;
		last_seq[t] = rec->seq;
		s->ids[s->got++] = rec->msg_id;
		pcbt_ring_pop(&s->ring);
		pcbt_ring_release(&s->ring);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * One publisher pinned to each CPU: every id unique, each thread's ids
 * increasing, each topic's ids increasing in ring order.
 */
TEST_F_TIMEOUT(causal, ids_across_cpus, 300)
{
	char names[2][PCB_NAME_MAX];
	struct cpu_pub pubs[MAX_CPUS];
	pthread_t threads[MAX_CPUS], consumer;
	struct cpu_sub s = { 0 };
	__u64 *all;
	int cpus[MAX_CPUS], nr, i, k;

	nr = online_cpus(cpus, MAX_CPUS);
	ASSERT_LT(0, nr);
	TH_LOG("%d CPUs", nr);
	for (i = 0; i < 2; i++) {
		pcbt_name(names[i], "cpus");
		ASSERT_EQ(0, pcbt_create(self->pfd, names[i], SCHEMA, LEN, 0700,
					 &s.topic_ids[i]));
	}
	ASSERT_LE(0, pcbt_ring_open(CPU_RING, &s.ring));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pcbt_subscribe(s.ring.fd, names[i], SCHEMA, 0,
					    NULL));
	s.total = (__u64)nr * CPU_MSGS;
	s.ids = calloc(s.total, sizeof(*s.ids));
	all = calloc(s.total, sizeof(*all));
	ASSERT_NE(NULL, s.ids);
	ASSERT_NE(NULL, all);

	ASSERT_EQ(0, pthread_create(&consumer, NULL, cpu_consumer, &s));
	for (i = 0; i < nr; i++) {
		pubs[i] = (struct cpu_pub){
			.cpu = cpus[i],
			.names = names,
			.ids = all + (size_t)i * CPU_MSGS,
		};
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, cpu_publisher,
					    &pubs[i]));
	}
	for (i = 0; i < nr; i++)
		pthread_join(threads[i], NULL);
	pthread_join(consumer, NULL);

	for (i = 0; i < nr; i++) {
		EXPECT_EQ(0, pubs[i].err) TH_LOG("CPU %d: %s", pubs[i].cpu,
						 pubs[i].what ?: "");
		EXPECT_EQ(0U, pubs[i].moved) TH_LOG("CPU %d", pubs[i].cpu);
	}
	ASSERT_EQ(NULL, s.err) TH_LOG("%s after %llu records", s.err,
				      (unsigned long long)s.got);
	ASSERT_EQ(s.total, s.got);

	/* Unique, and exactly the ids the publishers were given. */
	qsort(all, s.total, sizeof(*all), cmp_u64);
	qsort(s.ids, s.total, sizeof(*s.ids), cmp_u64);
	for (k = 1; k < (int)s.total; k++) {
		ASSERT_LT(all[k - 1], all[k]) TH_LOG("id %llu handed out twice",
						    (unsigned long long)all[k]);
	}
	EXPECT_EQ(0, memcmp(all, s.ids, s.total * sizeof(*all)));
	pcbt_ring_close(&s.ring);
	free(all);
	free(s.ids);
}

/*
 * Two threads on two CPUs pass an id back and forth; each publishes at
 * once with the id it was handed as its dependency.  The id was handed
 * out: never EINVAL, and the new id is greater.
 */
#define RELAY_ROUNDS	3000

struct relay {
	const char *name;
	int cpu;
	unsigned int me;
	__u64 *baton;		/* atomic: the last id */
	unsigned int *turn;	/* atomic: whose turn */
	int err;
	__u64 dep, got;
};

static void *relay_run(void *arg)
{
	struct relay *a = arg;
	__u32 h;
	int fd, i;

	fd = pcbt_open();
	if (fd < 0 || pin_to(a->cpu) ||
	    pcbt_open_topic(fd, a->name, SCHEMA, &h)) {
		a->err = -EIO;
		return NULL;
	}
	for (i = 0; i < RELAY_ROUNDS && !a->err; i++) {
		struct pcb_publish p;
		__u64 dep;

		while (__atomic_load_n(a->turn, __ATOMIC_ACQUIRE) % 2 != a->me)
			sched_yield();
		dep = __atomic_load_n(a->baton, __ATOMIC_ACQUIRE);
		a->err = pcbt_publish_deps(fd, h, "r", 1, a->me, &dep, dep ? 1 : 0,
					   0, &p);
		if (!a->err && p.msg_id <= dep)
			a->err = -EILSEQ;
		if (a->err) {
			a->dep = dep;
			a->got = p.msg_id;
		}
		__atomic_store_n(a->baton, p.msg_id, __ATOMIC_RELEASE);
		__atomic_fetch_add(a->turn, 1, __ATOMIC_ACQ_REL);
	}
	/* Let the other one finish, whatever happened here. */
	while (i++ < RELAY_ROUNDS) {
		while (__atomic_load_n(a->turn, __ATOMIC_ACQUIRE) % 2 != a->me)
			sched_yield();
		__atomic_fetch_add(a->turn, 1, __ATOMIC_ACQ_REL);
	}
	close(fd);
	return NULL;
}

TEST_F_TIMEOUT(causal, deps_handed_across_cpus, 300)
{
	struct relay r[2];
	pthread_t threads[2];
	int cpus[MAX_CPUS], nr, i;
	unsigned int turn = 0;
	__u64 baton = 0;
	char name[PCB_NAME_MAX];

	nr = online_cpus(cpus, MAX_CPUS);
	ASSERT_LT(0, nr);
	pcbt_name(name, "relay");
	ASSERT_EQ(0, pcbt_create(self->pfd, name, SCHEMA, LEN, 0700, NULL));
	for (i = 0; i < 2; i++) {
		r[i] = (struct relay){
			.name = name,
			.cpu = cpus[i % nr],
			.me = i,
			.baton = &baton,
			.turn = &turn,
		};
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, relay_run, &r[i]));
	}
	for (i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, r[0].err) TH_LOG("first: dep %llu, got %llu",
				      (unsigned long long)r[0].dep,
				      (unsigned long long)r[0].got);
	EXPECT_EQ(0, r[1].err) TH_LOG("second: dep %llu, got %llu",
				      (unsigned long long)r[1].dep,
				      (unsigned long long)r[1].got);
	EXPECT_EQ(2LL * RELAY_ROUNDS, pcbt_published(self->pfd, name));
}

/*
 * A consumer that publishes after reading message X gets an id greater
 * than X, also when it reads on one CPU and publishes on another, while
 * a publisher on every CPU keeps the clock busy.
 */
struct echo {
	struct pcbt_ring ring;
	int pfd;
	__u32 handle;		/* the topic the echo publishes to */
	const int *cpus;
	int nr_cpus;
	int *pubs_done;		/* atomic */
	__u64 checked;
	const char *err;
	__u64 bad_read, bad_id;
};

static void *echo_run(void *arg)
{
	struct echo *e = arg;
	__u64 max_read = 0;
	unsigned int hop = 0;

	for (;;) {
		int done = __atomic_load_n(e->pubs_done, __ATOMIC_ACQUIRE);
		const struct pcb_record *rec = pcbt_ring_next(&e->ring,
							     10 * PCBT_MS);
		struct pcb_publish p;

		if (!rec) {
			if (e->ring.corrupt)
				e->err = e->ring.corrupt;
			if (done || e->err)
				return NULL;
			continue;
		}
		if (rec->msg_id > max_read)
			max_read = rec->msg_id;
		pcbt_ring_pop(&e->ring);
		pcbt_ring_release(&e->ring);
		if (pin_to(e->cpus[hop++ % e->nr_cpus])) {
			e->err = "sched_setaffinity";
			return NULL;
		}
		if (pcbt_publish_deps(e->pfd, e->handle, "echo", 4, 0, NULL, 0,
				      0, &p)) {
			e->err = "publish";
			return NULL;
		}
		if (p.msg_id <= max_read) {
			e->err = "an id not greater than one read before";
			e->bad_read = max_read;
			e->bad_id = p.msg_id;
			return NULL;
		}
		e->checked++;
	}
}

TEST_F_TIMEOUT(causal, publish_after_read_across_cpus, 300)
{
	char src[PCB_NAME_MAX], dst[PCB_NAME_MAX];
	struct cpu_pub pubs[MAX_CPUS];
	pthread_t threads[MAX_CPUS], echo;
	int cpus[MAX_CPUS], nr, i, done = 0;
	const char (*names)[PCB_NAME_MAX];
	char both[2][PCB_NAME_MAX];
	__u64 *ids;
	struct echo e = { .pubs_done = &done };

	nr = online_cpus(cpus, MAX_CPUS);
	ASSERT_LT(0, nr);
	pcbt_name(src, "src");
	pcbt_name(dst, "dst");
	ASSERT_EQ(0, pcbt_create(self->pfd, src, SCHEMA, LEN, 0700, NULL));
	ASSERT_EQ(0, pcbt_create(self->pfd, dst, SCHEMA, LEN, 0700, NULL));
	/* The publishers alternate between two names: give them src twice. */
	pcbt_copy_name(both[0], src);
	pcbt_copy_name(both[1], src);
	names = both;

	ASSERT_LE(0, pcbt_ring_open(RING, &e.ring));
	ASSERT_EQ(0, pcbt_subscribe(e.ring.fd, src, SCHEMA, PCB_SUB_LOSSY,
				    NULL));
	e.pfd = self->pfd;
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, dst, SCHEMA, &e.handle));
	e.cpus = cpus;
	e.nr_cpus = nr;
	ids = calloc((size_t)nr * CPU_MSGS, sizeof(*ids));
	ASSERT_NE(NULL, ids);

	ASSERT_EQ(0, pthread_create(&echo, NULL, echo_run, &e));
	for (i = 0; i < nr; i++) {
		pubs[i] = (struct cpu_pub){
			.cpu = cpus[i],
			.names = names,
			.ids = ids + (size_t)i * CPU_MSGS,
		};
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, cpu_publisher,
					    &pubs[i]));
	}
	for (i = 0; i < nr; i++)
		pthread_join(threads[i], NULL);
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	pthread_join(echo, NULL);

	for (i = 0; i < nr; i++) {
		EXPECT_EQ(0, pubs[i].err) TH_LOG("CPU %d: %s", pubs[i].cpu,
						 pubs[i].what ?: "");
	}
	EXPECT_EQ(NULL, e.err) TH_LOG("%s: read %llu, then got %llu",
				      e.err, (unsigned long long)e.bad_read,
				      (unsigned long long)e.bad_id);
	TH_LOG("%llu read-then-publish pairs checked",
	       (unsigned long long)e.checked);
	EXPECT_LT(100ULL, e.checked);
	pcbt_ring_close(&e.ring);
	free(ids);
}

/*
 * The property test.  PROP_THREADS threads, each with its own ring
 * subscribed to a random subset of PROP_TOPICS shared topics, take random
 * steps: publish a fresh message, read some records, or republish naming
 * a random subset of the ids read so far as dependencies (one message, or
 * an atomic batch of a few).  Afterwards:
 *  - ids are unique;
 *  - every id is greater than each dependency its publisher declared, and
 *    than every id its publisher had read before publishing;
 *  - every record carries what its publisher declared;
 *  - every ring holds exactly the messages of its topics, and never a
 *    message before one it depends on, declared or read before its
 *    publication, when both are in that ring.
 */
#define PROP_THREADS	4
#define PROP_TOPICS	3
#define PROP_STEPS	3000
#define PROP_RING	(64U * 1024)

struct prop_msg {
	__u64 id;
	__u32 topic;
	__u32 nr_deps;
	__u64 deps[PCB_MAX_DEPS];
	__u64 nr_read;		/* publishes: records read before it */
	__u32 thread;		/* publishes: who */
};

struct prop_thread {
	unsigned int index;
	__u64 rng;
	const char (*names)[PCB_NAME_MAX];
	const __u32 *topic_ids;
	bool subscribed[PROP_TOPICS];
	struct pcbt_ring ring;
	__u32 handles[PROP_TOPICS];
	struct prop_msg *pubs, *reads;
	size_t nr_pubs, nr_reads, cap_pubs, cap_reads;
	pthread_barrier_t *ready;
	int *finished;		/* atomic: threads past their last step */
	int err;
	const char *what;
};

static int prop_topic(const struct prop_thread *t, __u32 topic_id)
{
	int i;

	for (i = 0; i < PROP_TOPICS; i++)
		if (t->topic_ids[i] == topic_id)
			return i;
	return -1;
}

static bool prop_fail(struct prop_thread *t, int err, const char *what)
{
	t->err = err ?: -EILSEQ;
	t->what = what;
	return false;
}

/* Reads up to @max records from the thread's ring. */
static bool prop_read(struct prop_thread *t, size_t max)
{
	const struct pcb_record *rec;

	while (max-- && (rec = pcbt_ring_peek(&t->ring))) {
		struct prop_msg *m = &t->reads[t->nr_reads];
		int topic = prop_topic(t, rec->topic_id);

		if (t->nr_reads == t->cap_reads)
			return prop_fail(t, -ENOSPC, "too many records");
		if (topic < 0 || !t->subscribed[topic])
			return prop_fail(t, 0, "a record of another topic");
		if (rec->nr_deps > PCB_MAX_DEPS ||
		    rec->hdr_len != HDR + 8 * rec->nr_deps)
			return prop_fail(t, 0, "nr_deps or hdr_len");
		memset(m, 0, sizeof(*m));
		m->id = rec->msg_id;
		m->topic = topic;
		m->nr_deps = rec->nr_deps;
		memcpy(m->deps, pcbt_rec_deps(rec), 8 * rec->nr_deps);
		t->nr_reads++;
		pcbt_ring_pop(&t->ring);
	}
	if (t->ring.corrupt)
		return prop_fail(t, 0, t->ring.corrupt);
	pcbt_ring_release(&t->ring);
	return true;
}

/* Up to PCB_MAX_DEPS distinct ids read so far, at random. */
static __u32 prop_pick_deps(struct prop_thread *t, __u64 *deps)
{
	size_t max = t->nr_reads < PCB_MAX_DEPS ? t->nr_reads : PCB_MAX_DEPS;
	__u32 n = 0, want, i, tries;

	if (!max)
		return 0;
	want = 1 + pcbt_rand_below(&t->rng, max);
	for (tries = 0; n < want && tries < 1000; tries++) {
		/* Recent records more often than old ones. */
		size_t span = pcbt_rand_below(&t->rng, 2) ? t->nr_reads :
			      (t->nr_reads < 32 ? t->nr_reads : 32);
		__u64 id = t->reads[t->nr_reads - 1 -
				    pcbt_rand_below(&t->rng, span)].id;

		for (i = 0; i < n && deps[i] != id; i++)
			;
		if (i == n)
			deps[n++] = id;
	}
	return n;
}

static bool prop_publish(struct prop_thread *t, bool with_deps)
{
	struct prop_msg *m = &t->pubs[t->nr_pubs];
	unsigned int tries;

	if (t->nr_pubs == t->cap_pubs)
		return prop_fail(t, -ENOSPC, "too many publishes");
	memset(m, 0, sizeof(*m));
	m->topic = pcbt_rand_below(&t->rng, PROP_TOPICS);
	m->thread = t->index;
	if (with_deps)
		m->nr_deps = prop_pick_deps(t, m->deps);
	for (tries = 0;; tries++) {
		struct pcb_publish p;
		int ret;

		/* Taken now: reading while retrying moves it. */
		m->nr_read = t->nr_reads;
		ret = pcbt_publish_deps(t->ring.fd, t->handles[m->topic],
					&t->nr_pubs, sizeof(t->nr_pubs),
					t->index, m->deps, m->nr_deps,
					PCB_PUB_NONBLOCK, &p);
		if (!ret) {
			m->id = p.msg_id;
			t->nr_pubs++;
			return true;
		}
		if (ret != -EAGAIN)
			return prop_fail(t, ret, "publish");
		/* Somebody's ring is full: make room in ours, wait a bit. */
		if (!prop_read(t, SIZE_MAX))
			return false;
		if (tries > 10)
			pcbt_sleep_ms(1);
		if (tries > 20000)
			return prop_fail(t, -ETIMEDOUT, "a ring stayed full");
	}
}

/*
 * An atomic batch of one to three messages, to random topics, all with
 * the same dependencies.
 */
static bool prop_publish_batch(struct prop_thread *t)
{
	struct pcb_batch_entry e[3];
	struct prop_msg *m = &t->pubs[t->nr_pubs];
	__u32 n = 1 + pcbt_rand_below(&t->rng, 3), i;
	unsigned int tries;

	if (t->nr_pubs + n > t->cap_pubs)
		return prop_fail(t, -ENOSPC, "too many publishes");
	memset(m, 0, sizeof(*m));
	m->nr_deps = prop_pick_deps(t, m->deps);
	memset(e, 0, sizeof(e));
	for (i = 0; i < n; i++) {
		m[i] = m[0];
		m[i].topic = pcbt_rand_below(&t->rng, PROP_TOPICS);
		m[i].thread = t->index;
		e[i].handle = t->handles[m[i].topic];
		e[i].payload = (uintptr_t)&t->nr_pubs;
		e[i].len = sizeof(t->nr_pubs);
		e[i].key = t->index;
	}
	for (tries = 0;; tries++) {
		struct pcb_publish_batch b = {
			.entries = (uintptr_t)e,
			.count = n,
			.flags = PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK,
			.nr_deps = m->nr_deps,
			.deps = (uintptr_t)m->deps,
		};
		int ret;

		for (i = 0; i < n; i++)
			m[i].nr_read = t->nr_reads;
		ret = pcbt_ioctl(t->ring.fd, PCB_IOC_PUBLISH_BATCH, &b);
		if (!ret) {
			for (i = 0; i < n; i++)
				m[i].id = e[i].msg_id;
			t->nr_pubs += n;
			return true;
		}
		if (ret != -EAGAIN)
			return prop_fail(t, ret, "batch");
		if (!prop_read(t, SIZE_MAX))
			return false;
		if (tries > 10)
			pcbt_sleep_ms(1);
		if (tries > 20000)
			return prop_fail(t, -ETIMEDOUT, "a ring stayed full");
	}
}

static bool prop_setup(struct prop_thread *t)
{
	int fd = pcbt_open(), i, ret;

	if (fd < 0)
		return prop_fail(t, fd, "open");
	ret = pcbt_ring_init(fd, PROP_RING, &t->ring);
	if (ret) {
		close(fd);
		return prop_fail(t, ret, "ring");
	}
	/* A random non-empty subset of the topics. */
	while (!t->subscribed[0] && !t->subscribed[1] && !t->subscribed[2])
		for (i = 0; i < PROP_TOPICS; i++)
			t->subscribed[i] = pcbt_rand_below(&t->rng, 3);
	for (i = 0; i < PROP_TOPICS; i++) {
		ret = pcbt_open_topic(fd, t->names[i], SCHEMA, &t->handles[i]);
		if (!ret && t->subscribed[i])
			ret = pcbt_subscribe(fd, t->names[i], SCHEMA, 0, NULL);
		if (ret)
			return prop_fail(t, ret, "topic");
	}
	return true;
}

static void *prop_run(void *arg)
{
	struct prop_thread *t = arg;
	bool ok = prop_setup(t);
	int step;

	/* Everybody subscribed before anybody publishes. */
	pthread_barrier_wait(t->ready);
	for (step = 0; ok && step < PROP_STEPS; step++) {
		__u64 r = pcbt_rand_below(&t->rng, 10);

		if (r < 3)
			ok = prop_publish(t, false);
		else if (r < 6)
			ok = prop_read(t, 1 + pcbt_rand_below(&t->rng, 8));
		else if (r < 9)
			ok = prop_publish(t, true);
		else
			ok = prop_publish_batch(t);
	}
	__atomic_fetch_add(t->finished, 1, __ATOMIC_ACQ_REL);
	/* Keep making room until the others are done publishing. */
	while (ok && __atomic_load_n(t->finished, __ATOMIC_ACQUIRE) <
		     PROP_THREADS) {
		ok = prop_read(t, SIZE_MAX);
		pcbt_sleep_ms(1);
	}
	if (ok)
		prop_read(t, SIZE_MAX);
	return NULL;
}

/* An id's place in a sorted array of (id, index) pairs, or -1. */
struct id_pos {
	__u64 id;
	long pos;
};

static int cmp_id_pos(const void *a, const void *b)
{
	return cmp_u64(&((const struct id_pos *)a)->id,
		       &((const struct id_pos *)b)->id);
}

static long find_id(const struct id_pos *v, size_t n, __u64 id)
{
	struct id_pos key = { .id = id };
	const struct id_pos *hit = bsearch(&key, v, n, sizeof(*v), cmp_id_pos);

	return hit ? hit->pos : -1;
}

static struct id_pos *index_ids(const struct prop_msg *m, size_t n)
{
	struct id_pos *v = calloc(n ?: 1, sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = (struct id_pos){ .id = m[i].id, .pos = (long)i };
	qsort(v, n, sizeof(*v), cmp_id_pos);
	return v;
}

/* Every publish of every thread, indexed by id (pos: thread << 32 | i). */
static struct id_pos *index_pubs(struct prop_thread *t, size_t *total)
{
	struct id_pos *v;
	size_t n = 0, i;
	int k;

	for (k = 0; k < PROP_THREADS; k++)
		n += t[k].nr_pubs;
	v = calloc(n ?: 1, sizeof(*v));
	if (!v)
		return NULL;
	n = 0;
	for (k = 0; k < PROP_THREADS; k++)
		for (i = 0; i < t[k].nr_pubs; i++)
			v[n++] = (struct id_pos){
				.id = t[k].pubs[i].id,
				.pos = (long)((size_t)k << 32 | i),
			};
	qsort(v, n, sizeof(*v), cmp_id_pos);
	*total = n;
	return v;
}

static const struct prop_msg *pub_at(struct prop_thread *t, long pos)
{
	return &t[pos >> 32].pubs[pos & 0xffffffff];
}

/* Each publish: greater than its declared deps and what it read before. */
static void check_publishes(struct __test_metadata *_metadata,
			    struct prop_thread *t)
{
	size_t i, r;
	__u32 d;
	int k;

	for (k = 0; k < PROP_THREADS; k++) {
		__u64 max_read = 0;

		for (i = 0, r = 0; i < t[k].nr_pubs; i++) {
			const struct prop_msg *m = &t[k].pubs[i];

			for (; r < m->nr_read; r++)
				if (t[k].reads[r].id > max_read)
					max_read = t[k].reads[r].id;
			ASSERT_LT(max_read, m->id)
				TH_LOG("thread %d publish %zu: id not above one read before",
				       k, i);
			for (d = 0; d < m->nr_deps; d++) {
				ASSERT_LT(m->deps[d], m->id)
					TH_LOG("thread %d publish %zu dep %u",
					       k, i, d);
			}
			if (i)
				ASSERT_LT(t[k].pubs[i - 1].id, m->id);
		}
	}
}

/*
 * For ring @in_ring and each thread u: reach[u][j] is one past the
 * furthest place in the ring of the first j records u read (0 when none
 * of them is in the ring).  A message u published after reading j
 * records must come after all of them: at reach[u][j] or beyond.
 */
static __u64 **ring_reach(struct prop_thread *t, const struct id_pos *in_ring,
			  size_t nr_in_ring)
{
	__u64 **reach = calloc(PROP_THREADS, sizeof(*reach));
	size_t j;
	int u;

	if (!reach)
		return NULL;
	for (u = 0; u < PROP_THREADS; u++) {
		reach[u] = calloc(t[u].nr_reads + 1, sizeof(**reach));
		if (!reach[u])
			return NULL;
		for (j = 0; j < t[u].nr_reads; j++) {
			long p = find_id(in_ring, nr_in_ring, t[u].reads[j].id);

			reach[u][j + 1] = reach[u][j];
			if (p >= 0 && (__u64)p + 1 > reach[u][j + 1])
				reach[u][j + 1] = (__u64)p + 1;
		}
	}
	return reach;
}

/*
 * One ring (thread @k's): exactly its topics' messages, as published,
 * each after what it depends on.
 */
static void check_ring(struct __test_metadata *_metadata, struct prop_thread *t,
		       int k, const struct id_pos *pubs, size_t nr_pubs)
{
	const struct prop_thread *me = &t[k];
	struct id_pos *in_ring = index_ids(me->reads, me->nr_reads);
	__u64 last[PROP_TOPICS] = { 0 };
	size_t i, expected = 0;
	__u64 **reach;
	__u32 d;
	int u;

	ASSERT_NE(NULL, in_ring);
	for (i = 1; i < me->nr_reads; i++) {
		ASSERT_NE(in_ring[i - 1].id, in_ring[i].id)
			TH_LOG("ring %d: a message twice", k);
	}
	for (i = 0; i < nr_pubs; i++)
		expected += me->subscribed[pub_at(t, pubs[i].pos)->topic];
	ASSERT_EQ(expected, me->nr_reads) TH_LOG("ring %d", k);
	reach = ring_reach(t, in_ring, me->nr_reads);
	ASSERT_NE(NULL, reach);

	for (i = 0; i < me->nr_reads; i++) {
		const struct prop_msg *rec = &me->reads[i];
		long at = find_id(pubs, nr_pubs, rec->id);
		const struct prop_msg *pub;

		ASSERT_LE(0, at) TH_LOG("ring %d: a message nobody sent", k);
		pub = pub_at(t, at);
		ASSERT_EQ(pub->topic, rec->topic);
		ASSERT_EQ(pub->nr_deps, rec->nr_deps) TH_LOG("ring %d", k);
		ASSERT_EQ(0, memcmp(pub->deps, rec->deps, 8 * rec->nr_deps));
		ASSERT_LT(last[rec->topic], rec->id)
			TH_LOG("ring %d: a topic's ids out of order", k);
		last[rec->topic] = rec->id;

		/* Declared dependencies come first... */
		for (d = 0; d < rec->nr_deps; d++) {
			ASSERT_GT((long)i, find_id(in_ring, me->nr_reads,
						   rec->deps[d]))
				TH_LOG("ring %d: record %zu before its dependency %u",
				       k, i, d);
		}
		/* ...and so does what its publisher had read before. */
		ASSERT_GE(i, reach[pub->thread][pub->nr_read])
			TH_LOG("ring %d: record %zu before a message its publisher had read",
			       k, i);
	}
	for (u = 0; u < PROP_THREADS; u++)
		free(reach[u]);
	free(reach);
	free(in_ring);
}

TEST_F_TIMEOUT(causal, property, 300)
{
	char names[PROP_TOPICS][PCB_NAME_MAX];
	__u32 topic_ids[PROP_TOPICS];
	struct prop_thread t[PROP_THREADS];
	pthread_t threads[PROP_THREADS];
	pthread_barrier_t ready;
	__u64 seed = pcbt_seed(), deps = 0;
	struct id_pos *pubs;
	size_t nr_pubs, i;
	int k, finished = 0;

	TH_LOG("seed %llu (PCB_TEST_SEED reproduces)",
	       (unsigned long long)seed);
	for (k = 0; k < PROP_TOPICS; k++) {
		pcbt_name(names[k], "prop");
		ASSERT_EQ(0, pcbt_create(self->pfd, names[k], SCHEMA, 8, 0700,
					 &topic_ids[k]));
	}
	ASSERT_EQ(0, pthread_barrier_init(&ready, NULL, PROP_THREADS));
	for (k = 0; k < PROP_THREADS; k++) {
		t[k] = (struct prop_thread){
			.index = k,
			.rng = seed + (__u64)k * 0x9e3779b97f4a7c15ULL,
			.names = names,
			.topic_ids = topic_ids,
			.cap_pubs = 3 * PROP_STEPS,	/* batches of 3 */
			.cap_reads = 3 * PROP_THREADS * PROP_STEPS,
			.ready = &ready,
			.finished = &finished,
		};
		t[k].pubs = calloc(t[k].cap_pubs, sizeof(*t[k].pubs));
		t[k].reads = calloc(t[k].cap_reads, sizeof(*t[k].reads));
		ASSERT_NE(NULL, t[k].pubs);
		ASSERT_NE(NULL, t[k].reads);
	}
	for (k = 0; k < PROP_THREADS; k++)
		ASSERT_EQ(0, pthread_create(&threads[k], NULL, prop_run, &t[k]));
	for (k = 0; k < PROP_THREADS; k++)
		pthread_join(threads[k], NULL);
	pthread_barrier_destroy(&ready);

	for (k = 0; k < PROP_THREADS; k++) {
		ASSERT_EQ(0, t[k].err) TH_LOG("thread %d: %s", k, t[k].what);
		for (i = 0; i < t[k].nr_pubs; i++)
			deps += t[k].pubs[i].nr_deps;
		TH_LOG("thread %d: topics %d%d%d, %zu published, %zu read", k,
		       t[k].subscribed[0], t[k].subscribed[1],
		       t[k].subscribed[2], t[k].nr_pubs, t[k].nr_reads);
	}
	pubs = index_pubs(t, &nr_pubs);
	ASSERT_NE(NULL, pubs);
	TH_LOG("%zu messages, %llu dependencies declared", nr_pubs,
	       (unsigned long long)deps);
	for (i = 1; i < nr_pubs; i++) {
		ASSERT_NE(pubs[i - 1].id, pubs[i].id) TH_LOG("an id twice");
	}

	check_publishes(_metadata, t);
	for (k = 0; k < PROP_THREADS; k++)
		check_ring(_metadata, t, k, pubs, nr_pubs);

	free(pubs);
	for (k = 0; k < PROP_THREADS; k++) {
		pcbt_ring_close(&t[k].ring);
		free(t[k].pubs);
		free(t[k].reads);
	}
}

TEST_HARNESS_MAIN
