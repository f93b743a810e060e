// SPDX-License-Identifier: GPL-2.0
/*
 * libpcb's batch publishing (pcb_publish_batch()) and its io_uring
 * publisher (struct pcb_uring_pub): results as documented, and what a
 * subscriber reads matches them, ids, order and all, with nothing lost.
 */
#include "pcb_util.h"

#include <libpcb.h>

#define SCHEMA		0xba7c4ULL
#define MAX_MSG		256
#define RING		(256 * 1024)
#define SMALL_RING	PCB_RING_MIN_SIZE
#define FILL_LEN	200	/* 264-byte records: 15 fill a SMALL_RING */
#define MANY		1000
#define WAIT		(5 * PCBT_SEC)

/* Opens a libpcb endpoint or skips the test when the bus is absent. */
#define LIBPCB_OPEN(bus) do {						\
	int __ret = pcb_open(&(bus));					\
									\
	if (__ret == -ENOENT || __ret == -ENODEV || __ret == -ENXIO)	\
		PCBT_SKIP(PCB_DEVICE_PATH " is missing (module not loaded)"); \
	if (__ret == -EACCES)						\
		PCBT_SKIP(PCB_DEVICE_PATH " is not accessible to uid %d", \
			  (int)geteuid());				\
	ASSERT_EQ(0, __ret);						\
} while (0)

/*
 * Creates an io_uring publisher, or skips the test (teardown still runs)
 * when the kernel has no io_uring or does not let this process use it.
 */
#define URING_CREATE(up, bus, depth, flags) do {			\
	int __ret = pcb_uring_pub_create(&(up), (bus), (depth), (flags)); \
									\
	if (__ret == -ENOSYS || __ret == -EPERM)			\
		SKIP(return, "io_uring is not available: %s",		\
		     strerror(-__ret));					\
	ASSERT_EQ(0, __ret);						\
	self->up = (up);						\
} while (0)

FIXTURE(pub) {
	struct pcb *pub;	/* publishes */
	struct pcb *sub;	/* RING bytes, subscribed to the topic */
	struct pcb *small;	/* SMALL_RING bytes, when a test wants it */
	struct pcb_uring_pub *up;
	char name[PCB_NAME_MAX];
	int handle;
};

FIXTURE_SETUP(pub)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;

	LIBPCB_OPEN(self->pub);
	LIBPCB_OPEN(self->sub);
	pcbt_name(self->name, "lib-uring");
	opts.schema_id = SCHEMA;
	opts.max_msg_size = MAX_MSG;
	ASSERT_EQ(0, pcb_topic_create(self->pub, self->name, &opts, NULL));
	self->handle = pcb_topic_open(self->pub, self->name, SCHEMA);
	ASSERT_LE(0, self->handle);
	ASSERT_EQ(0, pcb_ring_setup(self->sub, RING));
	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
}

FIXTURE_TEARDOWN(pub)
{
	/* The publisher before the endpoint whose handles it uses. */
	pcb_uring_pub_destroy(self->up);
	pcb_close(self->small);
	pcb_close(self->sub);
	pcb_close(self->pub);
	pcbt_cleanup();
}

/* The payload of the message with key @key. */
static size_t payload_of(uint64_t key, char buf[32])
{
	return (size_t)snprintf(buf, 32, "message-%" PRIu64, key);
}

/*
 * Receives exactly @n messages on @bus and checks each against the
 * published ones, in order: message @i has id @ids[i], key @keys[i] (the
 * index when @keys is NULL) and the payload of its key, and names this
 * process and its uid as the publisher (also when an io_uring worker or
 * polling thread published it).
 */
static void expect_msgs(struct __test_metadata *_metadata, struct pcb *bus,
			const uint64_t *ids, const uint64_t *keys,
			unsigned int n)
{
	struct pcb_msg msg;
	unsigned int i;
	char buf[32];

	for (i = 0; i < n; i++) {
		uint64_t key = keys ? keys[i] : i;
		size_t len = payload_of(key, buf);

		ASSERT_EQ(1, pcb_receive(bus, &msg, WAIT)) {
			TH_LOG("message %u of %u", i, n);
		}
		EXPECT_EQ(ids[i], msg.rec->msg_id) {
			TH_LOG("message %u", i);
		}
		EXPECT_EQ(key, msg.rec->key);
		EXPECT_EQ((uint32_t)getpid(), msg.rec->pid);
		EXPECT_EQ((uint32_t)geteuid(), msg.rec->uid);
		ASSERT_EQ(len, msg.len);
		EXPECT_EQ(0, memcmp(buf, msg.data, len));
		pcb_release(bus, &msg);
	}
	/* Nothing more. */
	EXPECT_EQ(0, pcb_peek(bus, &msg));
}

static uint64_t published(struct __test_metadata *_metadata, struct pcb *bus,
			  const char *name)
{
	struct pcb_topic_info info;

	EXPECT_EQ(0, pcb_topic_info(bus, name, &info));
	return info.published;
}

/*
 * A reliable SMALL_RING subscriber, filled until no message fits: with
 * FILL_LEN-byte messages, then with empty ones (the smallest records).
 * Returns how many it published (all of them in the ring if it was empty).
 */
static unsigned int fill_small(struct __test_metadata *_metadata,
			       FIXTURE_DATA(pub) *self)
{
	static const char fill[FILL_LEN];
	int n = 0, ret;

	if (!self->small) {
		LIBPCB_OPEN(self->small);
		ASSERT_EQ(0, pcb_ring_setup(self->small, SMALL_RING));
		ASSERT_EQ(0, pcb_subscribe(self->small, self->name, SCHEMA, 0,
					   NULL));
	}
	while (!(ret = pcb_try_publish(self->pub, self->handle, fill,
				       FILL_LEN, 0, NULL)))
		n++;
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_LT(0, n);
	while (!(ret = pcb_try_publish(self->pub, self->handle, NULL, 0, 0,
				       NULL)))
		n++;
	ASSERT_EQ(-EAGAIN, ret);
	return (unsigned int)n;
}

/* Consumes exactly @n messages of @bus, waking publishers that wait. */
static void consume(struct __test_metadata *_metadata, struct pcb *bus,
		    unsigned int n)
{
	struct pcb_msg msg;

	while (n--) {
		ASSERT_EQ(1, pcb_receive(bus, &msg, WAIT));
		pcb_release(bus, &msg);
	}
}

/* Consumes everything @bus has, waking publishers that wait for room. */
static unsigned int drain(struct pcb *bus)
{
	struct pcb_msg msg;
	unsigned int n = 0;

	while (pcb_peek(bus, &msg) == 1) {
		pcb_release(bus, &msg);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* pcb_publish_batch()                                                */
/* ------------------------------------------------------------------ */

/* Entries with payloads message-<i> and keys i, in @bufs. */
static void prep_entries(struct pcb_batch_entry *e, char (*bufs)[32],
			 unsigned int n, int handle)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		size_t len = payload_of(i, bufs[i]);

		pcb_batch_entry_prep(&e[i], handle, bufs[i], (uint32_t)len, i);
	}
}

TEST_F(pub, batch_entry_prep)
{
	static const char abc[] = "abc";
	struct pcb_batch_entry e;

	memset(&e, 0xff, sizeof(e));
	pcb_batch_entry_prep(&e, 7, abc, 3, 42);
	EXPECT_EQ(7U, e.handle);
	EXPECT_EQ(0U, e.flags);
	EXPECT_EQ((uintptr_t)abc, e.payload);
	EXPECT_EQ(3U, e.len);
	EXPECT_EQ(0, e.result);
	EXPECT_EQ(42ULL, e.key);
	EXPECT_EQ(0ULL, e.msg_id);
	EXPECT_EQ(0ULL, e.seq);
}

TEST_F(pub, batch_one)
{
	struct pcb_batch_entry e;
	char buf[1][32];
	uint64_t id;

	prep_entries(&e, buf, 1, self->handle);
	ASSERT_EQ(1, pcb_publish_batch(self->pub, &e, 1, 0, 0));
	EXPECT_EQ(0, e.result);
	EXPECT_NE(0ULL, e.msg_id);
	EXPECT_EQ(1ULL, e.seq);
	id = e.msg_id;
	expect_msgs(_metadata, self->sub, &id, NULL, 1);
}

TEST_F(pub, batch_many)
{
	static struct pcb_batch_entry e[MANY];
	static char bufs[MANY][32];
	static uint64_t ids[MANY];
	unsigned int i;

	prep_entries(e, bufs, MANY, self->handle);
	ASSERT_EQ(MANY, pcb_publish_batch(self->pub, e, MANY, 0, 0));
	for (i = 0; i < MANY; i++) {
		ASSERT_EQ(0, e[i].result);
		EXPECT_EQ(i + 1ULL, e[i].seq);
		if (i)
			ASSERT_LT(e[i - 1].msg_id, e[i].msg_id);
		ids[i] = e[i].msg_id;
	}
	EXPECT_EQ((uint64_t)MANY, published(_metadata, self->pub, self->name));
	expect_msgs(_metadata, self->sub, ids, NULL, MANY);
}

/* Without PCB_PUB_ATOMIC a failed entry stops nothing. */
TEST_F(pub, batch_failing_entries)
{
	static const char big[MAX_MSG + 1];
	struct pcb_batch_entry e[6];
	uint64_t ids[3], keys[3] = { 0, 3, 5 };
	char bufs[6][32];

	prep_entries(e, bufs, 6, self->handle);
	e[1].handle = (uint32_t)self->handle + 100;	/* not open */
	e[2].payload = (uintptr_t)big;
	e[2].len = sizeof(big);				/* too big */
	e[4].payload = 8;				/* unreadable */

	ASSERT_EQ(3, pcb_publish_batch(self->pub, e, 6, 0, 0));
	EXPECT_EQ(0, e[0].result);
	EXPECT_EQ(-EBADF, e[1].result);
	EXPECT_EQ(-EMSGSIZE, e[2].result);
	EXPECT_EQ(0, e[3].result);
	EXPECT_EQ(-EFAULT, e[4].result);
	EXPECT_EQ(0, e[5].result);
	/* Sequence numbers only for what was published. */
	EXPECT_EQ(1ULL, e[0].seq);
	EXPECT_EQ(2ULL, e[3].seq);
	EXPECT_EQ(3ULL, e[5].seq);
	ids[0] = e[0].msg_id;
	ids[1] = e[3].msg_id;
	ids[2] = e[5].msg_id;
	expect_msgs(_metadata, self->sub, ids, keys, 3);
}

TEST_F(pub, batch_errors)
{
	struct pcb_batch_entry e[2];
	char bufs[2][32];

	prep_entries(e, bufs, 2, self->handle);
	EXPECT_EQ(-EINVAL, pcb_publish_batch(NULL, e, 2, 0, 0));
	EXPECT_EQ(-EINVAL, pcb_publish_batch(self->pub, e, 0, 0, 0));
	EXPECT_EQ(-EINVAL, pcb_publish_batch(self->pub, e, PCB_BATCH_MAX + 1,
					     0, 0));
	EXPECT_EQ(-EINVAL, pcb_publish_batch(self->pub, e, 2, 0x80, 0));
	EXPECT_EQ(-EFAULT, pcb_publish_batch(self->pub, NULL, 2, 0, 0));
	/* Entry flags are reserved: that entry fails, alone. */
	e[0].flags = 1;
	EXPECT_EQ(1, pcb_publish_batch(self->pub, e, 2, 0, 0));
	EXPECT_EQ(-EINVAL, e[0].result);
	EXPECT_EQ(0, e[1].result);
	EXPECT_EQ(1ULL, published(_metadata, self->pub, self->name));
}

/* Full reliable ring, PCB_PUB_NONBLOCK: each entry fails with EAGAIN. */
TEST_F(pub, batch_nonblock_full)
{
	struct pcb_batch_entry e[3];
	char bufs[3][32];
	uint64_t before;

	fill_small(_metadata, self);
	before = published(_metadata, self->pub, self->name);
	prep_entries(e, bufs, 3, self->handle);
	ASSERT_EQ(0, pcb_publish_batch(self->pub, e, 3, PCB_PUB_NONBLOCK, 0));
	EXPECT_EQ(-EAGAIN, e[0].result);
	EXPECT_EQ(-EAGAIN, e[1].result);
	EXPECT_EQ(-EAGAIN, e[2].result);
	/* A timeout without PCB_PUB_NONBLOCK: ETIMEDOUT for each. */
	ASSERT_EQ(0, pcb_publish_batch(self->pub, e, 3, 0, 20 * PCBT_MS));
	EXPECT_EQ(-ETIMEDOUT, e[0].result);
	EXPECT_EQ(-ETIMEDOUT, e[2].result);
	EXPECT_EQ(before, published(_metadata, self->pub, self->name));
}

/* A signal stops a waiting batch: the entries not done get EINTR. */
TEST_F(pub, batch_signal)
{
	struct pcb_batch_entry e[3];
	char bufs[3][32];

	fill_small(_metadata, self);
	prep_entries(e, bufs, 3, self->handle);
	/* No SA_RESTART: the ioctl must come back. */
	ASSERT_EQ(0, pcbt_alarm_in(100));
	EXPECT_EQ(0, pcb_publish_batch(self->pub, e, 3, 0, 0));
	EXPECT_EQ(-EINTR, e[0].result);
	EXPECT_EQ(-EINTR, e[1].result);
	EXPECT_EQ(-EINTR, e[2].result);
}

TEST_F(pub, batch_atomic)
{
	struct pcb_batch_entry e[50];
	char bufs[50][32];
	uint64_t ids[50];
	unsigned int i;

	prep_entries(e, bufs, 50, self->handle);
	ASSERT_EQ(50, pcb_publish_batch(self->pub, e, 50, PCB_PUB_ATOMIC, 0));
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, e[i].result);
		EXPECT_EQ(i + 1ULL, e[i].seq);
		ids[i] = e[i].msg_id;
		if (i)
			EXPECT_LT(ids[i - 1], ids[i]);
	}
	expect_msgs(_metadata, self->sub, ids, NULL, 50);
}

/* One invalid entry: it gets its error, the others ECANCELED, none goes. */
TEST_F(pub, batch_atomic_invalid_entry)
{
	static const char big[MAX_MSG + 1];
	struct pcb_batch_entry e[4];
	char bufs[4][32];
	struct pcb_msg msg;
	int i, bad;

	for (bad = 0; bad < 4; bad++) {
		int want[4] = { -EBADF, -EMSGSIZE, -EFAULT, -EINVAL };

		prep_entries(e, bufs, 4, self->handle);
		if (bad == 0)
			e[2].handle = (uint32_t)self->handle + 100;
		else if (bad == 1)
			pcb_batch_entry_prep(&e[2], self->handle, big,
					     sizeof(big), 2);
		else if (bad == 2)
			e[2].payload = 8;
		else
			e[2].flags = 1;
		EXPECT_EQ(want[bad], pcb_publish_batch(self->pub, e, 4,
						       PCB_PUB_ATOMIC, 0));
		for (i = 0; i < 4; i++) {
			EXPECT_EQ(i == 2 ? want[bad] : -ECANCELED, e[i].result) {
				TH_LOG("case %d, entry %d", bad, i);
			}
		}
	}
	EXPECT_EQ(0ULL, published(_metadata, self->pub, self->name));
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

/* Whole-batch failures: every entry gets the batch's error. */
TEST_F(pub, batch_atomic_whole)
{
	static const char fill[FILL_LEN];
	struct pcb_batch_entry e[20];
	uint64_t before;
	int i;

	fill_small(_metadata, self);
	before = published(_metadata, self->pub, self->name);
	drain(self->small);
	/* 20 FILL_LEN records do not fit a SMALL_RING at all. */
	for (i = 0; i < 20; i++)
		pcb_batch_entry_prep(&e[i], self->handle, fill, FILL_LEN, 0);
	EXPECT_EQ(-E2BIG, pcb_publish_batch(self->pub, e, 20, PCB_PUB_ATOMIC, 0));
	for (i = 0; i < 20; i++)
		EXPECT_EQ(-E2BIG, e[i].result);

	/* 8 fill half of it; 10 more fit an empty ring, not this one. */
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, fill,
					     FILL_LEN, 0, NULL));
	before += 8;
	for (i = 0; i < 10; i++)
		pcb_batch_entry_prep(&e[i], self->handle, fill, FILL_LEN, 0);
	EXPECT_EQ(-EAGAIN, pcb_publish_batch(self->pub, e, 10,
					     PCB_PUB_ATOMIC | PCB_PUB_NONBLOCK, 0));
	for (i = 0; i < 10; i++)
		EXPECT_EQ(-EAGAIN, e[i].result);
	EXPECT_EQ(-ETIMEDOUT, pcb_publish_batch(self->pub, e, 10,
						PCB_PUB_ATOMIC, 20 * PCBT_MS));
	for (i = 0; i < 10; i++)
		EXPECT_EQ(-ETIMEDOUT, e[i].result);
	EXPECT_EQ(before, published(_metadata, self->pub, self->name));

	/* Room again: the same batch goes, whole. */
	EXPECT_EQ(8U, drain(self->small));
	EXPECT_EQ(10, pcb_publish_batch(self->pub, e, 10, PCB_PUB_ATOMIC, 0));
	EXPECT_EQ(before + 10, published(_metadata, self->pub, self->name));

	/* A deleted topic. */
	ASSERT_EQ(0, pcb_topic_delete(self->pub, self->name));
	EXPECT_EQ(-EIDRM, pcb_publish_batch(self->pub, e, 10, PCB_PUB_ATOMIC, 0));
	for (i = 0; i < 10; i++)
		EXPECT_EQ(-EIDRM, e[i].result);
}

/* At most PCB_BATCH_ATOMIC_TOPICS topics in an atomic batch. */
TEST_F(pub, batch_atomic_topics)
{
	struct pcb_batch_entry e[PCB_BATCH_ATOMIC_TOPICS + 1];
	char name[PCB_NAME_MAX];
	int i;

	for (i = 0; i <= PCB_BATCH_ATOMIC_TOPICS; i++) {
		int h;

		pcbt_name(name, "atomic-topics");
		ASSERT_EQ(0, pcb_topic_create(self->pub, name, NULL, NULL));
		h = pcb_topic_open(self->pub, name, 0);
		ASSERT_LE(0, h);
		pcb_batch_entry_prep(&e[i], h, "x", 1, 0);
	}
	EXPECT_EQ(-E2BIG, pcb_publish_batch(self->pub, e,
					    PCB_BATCH_ATOMIC_TOPICS + 1,
					    PCB_PUB_ATOMIC, 0));
	for (i = 0; i < PCB_BATCH_ATOMIC_TOPICS; i++)
		EXPECT_EQ(-ECANCELED, e[i].result);
	EXPECT_EQ(-E2BIG, e[PCB_BATCH_ATOMIC_TOPICS].result);
	/* One topic fewer is fine. */
	EXPECT_EQ(PCB_BATCH_ATOMIC_TOPICS,
		  pcb_publish_batch(self->pub, e, PCB_BATCH_ATOMIC_TOPICS,
				    PCB_PUB_ATOMIC, 0));
}

/* ------------------------------------------------------------------ */
/* The io_uring publisher                                             */
/* ------------------------------------------------------------------ */

/*
 * Publishes messages 0 .. @n - 1 (payload and key from the index, which
 * is also the user_data) through @up, queueing until it is full and
 * reaping as results come.  @ids[i] gets message i's id.
 */
static void uring_publish(struct __test_metadata *_metadata,
			  struct pcb_uring_pub *up, int handle,
			  unsigned int n, uint64_t *ids)
{
	struct pcb_uring_result res[16];
	unsigned int queued = 0, done = 0;
	char (*bufs)[32] = calloc(n, 32);
	int got, i, ret;

	ASSERT_NE(NULL, bufs);
	memset(ids, 0, n * sizeof(*ids));
	while (done < n) {
		for (; queued < n; queued++) {
			size_t len = payload_of(queued, bufs[queued]);

			ret = pcb_uring_pub_queue(up, handle, bufs[queued], len,
						  queued, 0, queued);
			if (ret == -EBUSY)
				break;
			ASSERT_EQ(0, ret);
		}
		ASSERT_LE(0, pcb_uring_pub_submit(up));
		got = pcb_uring_pub_reap(up, res, 16, WAIT);
		ASSERT_LT(0, got);
		for (i = 0; i < got; i++) {
			uint64_t ud = res[i].user_data;

			ASSERT_EQ(0, res[i].res);
			ASSERT_GT(n, ud);
			ASSERT_EQ(0ULL, ids[ud]);	/* one result each */
			ASSERT_NE(0ULL, res[i].msg_id);
			ids[ud] = res[i].msg_id;
		}
		done += (unsigned int)got;
	}
	/* Queue order is publish order: nothing had to wait. */
	for (i = 1; i < (int)n; i++)
		EXPECT_LT(ids[i - 1], ids[i]);
	free(bufs);
}

TEST_F(pub, uring_publish)
{
	static uint64_t ids[MANY];
	struct pcb_uring_pub *up;

	URING_CREATE(up, self->pub, 64, 0);
	uring_publish(_metadata, up, self->handle, MANY, ids);
	EXPECT_EQ((uint64_t)MANY, published(_metadata, self->pub, self->name));
	expect_msgs(_metadata, self->sub, ids, NULL, MANY);
}

TEST_F(pub, uring_sqpoll)
{
	static uint64_t ids[MANY];
	struct pcb_uring_result res;
	struct pcb_uring_pub *up;
	struct pcb_msg msg;

	URING_CREATE(up, self->pub, 32, PCB_URING_SQPOLL);
	uring_publish(_metadata, up, self->handle, MANY, ids);
	expect_msgs(_metadata, self->sub, ids, NULL, MANY);

	/* The poller has gone to sleep: submit must wake it. */
	pcbt_sleep_ms(3 * PCB_URING_SQPOLL_IDLE_MS);
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "late", 4, 7, 0, 99));
	ASSERT_EQ(1, pcb_uring_pub_submit(up));
	ASSERT_EQ(1, pcb_uring_pub_reap(up, &res, 1, WAIT));
	EXPECT_EQ(99ULL, res.user_data);
	EXPECT_EQ(0, res.res);
	ASSERT_EQ(1, pcb_receive(self->sub, &msg, WAIT));
	EXPECT_EQ(res.msg_id, msg.rec->msg_id);
	EXPECT_EQ(7ULL, msg.rec->key);
	pcb_release(self->sub, &msg);
}

/*
 * Payloads inside the registered buffer are published from its pinned
 * pages: they still go out once the pages are made inaccessible, while a
 * payload outside it then fails with EFAULT.
 */
TEST_F(pub, uring_registered_buffer)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct pcb_uring_result res[4];
	uint64_t ids[4], keys[4] = { 0, 1, 2, 3 };
	struct pcb_uring_pub *up;
	char *mem, *straddle;
	size_t len[4];
	int i, got;

	URING_CREATE(up, self->pub, 8, 0);
	/* Two pages; the first is registered. */
	mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	EXPECT_EQ(-EINVAL, pcb_uring_pub_register_buffer(up, NULL, page));
	EXPECT_EQ(-EINVAL, pcb_uring_pub_register_buffer(up, mem, 0));
	ASSERT_EQ(0, pcb_uring_pub_register_buffer(up, mem, page));
	EXPECT_EQ(-EBUSY, pcb_uring_pub_register_buffer(up, mem, page));

	/* Inside; at its very end; across its end; outside. */
	len[0] = payload_of(0, mem + 100);
	len[1] = payload_of(1, mem + page - 32);
	straddle = mem + page - 4;
	len[2] = payload_of(2, straddle);
	len[3] = payload_of(3, mem + page + 64);
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, mem + 100, len[0], 0, 0, 0));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, mem + page - 32, len[1], 1, 0, 1));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, straddle, len[2], 2, 0, 2));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, mem + page + 64, len[3], 3, 0, 3));
	ASSERT_EQ(4, pcb_uring_pub_submit(up));
	for (got = 0; got < 4; ) {
		int n = pcb_uring_pub_reap(up, res, 4, WAIT);

		ASSERT_LT(0, n);
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, res[i].res);
			ids[res[i].user_data] = res[i].msg_id;
		}
		got += n;
	}
	expect_msgs(_metadata, self->sub, ids, keys, 4);

	/* No access through the page tables any more. */
	ASSERT_EQ(0, mprotect(mem, 2 * page, PROT_NONE));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, mem + 100, len[0], 0, 0, 0));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, mem + page + 64, len[3], 3, 0, 3));
	ASSERT_EQ(2, pcb_uring_pub_submit(up));
	for (got = 0; got < 2; ) {
		int n = pcb_uring_pub_reap(up, res, 2, WAIT);

		ASSERT_LT(0, n);
		for (i = 0; i < n; i++) {
			if (res[i].user_data == 0) {
				EXPECT_EQ(0, res[i].res);
				ids[0] = res[i].msg_id;
			} else {
				EXPECT_EQ(-EFAULT, res[i].res);
			}
		}
		got += n;
	}
	expect_msgs(_metadata, self->sub, ids, keys, 1);
	munmap(mem, 2 * page);
}

/* Errors of the messages come back as their results. */
TEST_F(pub, uring_message_errors)
{
	static const char big[MAX_MSG + 1];
	struct pcb_uring_result res[4];
	struct pcb_uring_pub *up;
	int i, got, want[4] = { -EBADF, -EBADF, -EMSGSIZE, -EINVAL };

	URING_CREATE(up, self->pub, 4, 0);
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle + 100, "x", 1, 0, 0, 0));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, -1, "x", 1, 0, 0, 1));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, big, sizeof(big), 0, 0, 2));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "x", 1, 0, 0x80, 3));
	ASSERT_EQ(4, pcb_uring_pub_submit(up));
	for (got = 0; got < 4; ) {
		int n = pcb_uring_pub_reap(up, res, 4, WAIT);

		ASSERT_LT(0, n);
		for (i = 0; i < n; i++) {
			EXPECT_EQ(want[res[i].user_data], res[i].res) {
				TH_LOG("message %d", (int)res[i].user_data);
			}
		}
		got += n;
	}
	EXPECT_EQ(0ULL, published(_metadata, self->pub, self->name));
}

/* The library's own errors, and the depth limit. */
TEST_F(pub, uring_api_errors)
{
	struct pcb_uring_result res[8];
	struct pcb_uring_pub *up, *bad = NULL;
	int i, got;

	EXPECT_EQ(-EINVAL, pcb_uring_pub_create(NULL, self->pub, 4, 0));
	EXPECT_EQ(-EINVAL, pcb_uring_pub_create(&bad, NULL, 4, 0));
	EXPECT_EQ(-EINVAL, pcb_uring_pub_create(&bad, self->pub, 4, 0x80));
	EXPECT_EQ(-EINVAL, pcb_uring_pub_create(&bad, self->pub,
						PCB_URING_MAX_DEPTH + 1, 0));
	EXPECT_EQ(NULL, bad);
	EXPECT_EQ(-EINVAL, pcb_uring_pub_queue(NULL, 0, "x", 1, 0, 0, 0));
	EXPECT_EQ(-EINVAL, pcb_uring_pub_submit(NULL));
	EXPECT_EQ(-EINVAL, pcb_uring_pub_reap(NULL, res, 1, 0));
	pcb_uring_pub_destroy(NULL);

	URING_CREATE(up, self->pub, 4, 0);
	EXPECT_EQ(-EINVAL, pcb_uring_pub_reap(up, NULL, 1, 0));
	EXPECT_EQ(-EMSGSIZE, pcb_uring_pub_queue(up, self->handle, "x",
						 (size_t)UINT32_MAX + 1, 0, 0, 0));
	/* Depth 4: four queued or unreaped at most. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "x", 1, i, 0, i));
	EXPECT_EQ(-EBUSY, pcb_uring_pub_queue(up, self->handle, "x", 1, 4, 0, 4));
	ASSERT_EQ(4, pcb_uring_pub_submit(up));
	EXPECT_EQ(-EBUSY, pcb_uring_pub_queue(up, self->handle, "x", 1, 4, 0, 4));
	/* Nothing queued: a submit hands over nothing. */
	EXPECT_EQ(0, pcb_uring_pub_submit(up));
	for (i = 0; i < 4; i += got) {
		got = pcb_uring_pub_reap(up, res + i, 8 - i, WAIT);
		ASSERT_LT(0, got);
	}
	EXPECT_EQ(4, i);
	EXPECT_EQ(0, pcb_uring_pub_queue(up, self->handle, "x", 1, 4, 0, 4));
}

/* Waiting for room in an io_uring worker; reaping with a timeout. */
TEST_F(pub, uring_wait_for_room)
{
	struct pcb_uring_result res;
	struct pcb_uring_pub *up;
	struct pcb_msg msg;
	uint64_t t0, before;
	unsigned int filled;
	int i;

	URING_CREATE(up, self->pub, 4, 0);
	/* Nothing submitted: no result can come, however long one waits. */
	EXPECT_EQ(0, pcb_uring_pub_reap(up, &res, 1, PCB_URING_WAIT_FOREVER));

	filled = fill_small(_metadata, self);
	before = published(_metadata, self->pub, self->name);
	consume(_metadata, self->sub, filled);
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "waits", 5, 1, 0, 1));
	ASSERT_EQ(1, pcb_uring_pub_submit(up));
	/* It waits: no result at once, none within the timeout. */
	EXPECT_EQ(0, pcb_uring_pub_reap(up, &res, 1, 0));
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(0, pcb_uring_pub_reap(up, &res, 1, 100 * PCBT_MS));
	EXPECT_LE(100 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	EXPECT_EQ(before, published(_metadata, self->pub, self->name));

	/* Room: it goes. */
	consume(_metadata, self->small, filled);
	ASSERT_EQ(1, pcb_uring_pub_reap(up, &res, 1, WAIT));
	EXPECT_EQ(1ULL, res.user_data);
	EXPECT_EQ(0, res.res);
	ASSERT_EQ(1, pcb_receive(self->sub, &msg, WAIT));
	EXPECT_EQ(res.msg_id, msg.rec->msg_id);
	/* Published by an io_uring worker, on behalf of this process. */
	EXPECT_EQ((uint32_t)getpid(), msg.rec->pid);
	EXPECT_EQ((uint32_t)geteuid(), msg.rec->uid);
	pcb_release(self->sub, &msg);
	/* Each ring's copy becomes visible on its own: wait for this one. */
	ASSERT_EQ(1, pcb_receive(self->small, &msg, WAIT));
	EXPECT_EQ(res.msg_id, msg.rec->msg_id);
	pcb_release(self->small, &msg);

	/* Full again: a timeout, and PCB_PUB_NONBLOCK. */
	fill_small(_metadata, self);
	pcb_uring_pub_set_timeout(up, 50 * PCBT_MS);
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "late", 4, 2, 0, 2));
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "now", 3, 3,
					 PCB_PUB_NONBLOCK, 3));
	ASSERT_EQ(2, pcb_uring_pub_submit(up));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, pcb_uring_pub_reap(up, &res, 1, WAIT));
		EXPECT_EQ(res.user_data == 2 ? -ETIMEDOUT : -EAGAIN, res.res);
	}
}

/*
 * PCB_URING_ORDERED: a failure cancels the rest of its submission, and
 * only of its submission.
 */
TEST_F(pub, uring_ordered)
{
	struct pcb_uring_result res[8];
	uint64_t ids[8], keys[4] = { 0, 1, 5, 6 };
	struct pcb_uring_pub *up;
	char bufs[8][32];
	int i, n, got;

	URING_CREATE(up, self->pub, 8, PCB_URING_ORDERED);
	for (i = 0; i < 5; i++) {
		size_t len = payload_of(i, bufs[i]);

		ASSERT_EQ(0, pcb_uring_pub_queue(up, i == 2 ? -1 : self->handle,
						 bufs[i], len, i, 0, i));
	}
	ASSERT_EQ(5, pcb_uring_pub_submit(up));
	for (i = 5; i < 7; i++) {
		size_t len = payload_of(i, bufs[i]);

		ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, bufs[i],
						 len, i, 0, i));
	}
	ASSERT_EQ(2, pcb_uring_pub_submit(up));
	for (got = 0; got < 7; got += n) {
		n = pcb_uring_pub_reap(up, res, 8, WAIT);
		ASSERT_LT(0, n);
		for (i = 0; i < n; i++) {
			int want[7] = { 0, 0, -EBADF, -ECANCELED, -ECANCELED,
					0, 0 };
			uint64_t ud = res[i].user_data;

			EXPECT_EQ(want[ud], res[i].res) {
				TH_LOG("message %d", (int)ud);
			}
			ids[ud] = res[i].msg_id;
		}
	}
	ids[2] = ids[5];
	ids[3] = ids[6];
	expect_msgs(_metadata, self->sub, ids, keys, 4);
}

/* Dependencies travel with each command; bad ones fail only their message. */
TEST_F(pub, uring_deps)
{
	struct pcb_uring_result res[4];
	uint64_t a, good[2], dup[2], future, ids[4] = { 0 };
	struct pcb_uring_pub *up;
	const uint64_t *deps;
	struct pcb_msg msg;
	int i, n, got;

	URING_CREATE(up, self->pub, 4, PCB_URING_ORDERED);
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "a", 1, 0, 0, &a));
	ASSERT_EQ(1, pcb_receive(self->sub, &msg, WAIT));
	pcb_release(self->sub, &msg);

	good[0] = a;
	dup[0] = dup[1] = a;
	future = a + 1000 * PCBT_SEC;
	ASSERT_EQ(0, pcb_uring_pub_queue_deps(up, self->handle, "b", 1, 1,
					      good, 1, 0, 0));
	ASSERT_EQ(0, pcb_uring_pub_queue_deps(up, self->handle, "c", 1, 2,
					      dup, 2, 0, 1));
	ASSERT_EQ(2, pcb_uring_pub_submit(up));
	/* Not linked to the failing one: a submission of its own. */
	ASSERT_EQ(0, pcb_uring_pub_queue_deps(up, self->handle, "d", 1, 3,
					      &future, 1, 0, 2));
	ASSERT_EQ(0, pcb_uring_pub_queue_deps(up, self->handle, "e", 1, 4,
					      NULL, 0, 0, 3));
	ASSERT_EQ(2, pcb_uring_pub_submit(up));
	for (got = 0; got < 4; got += n) {
		n = pcb_uring_pub_reap(up, res, 4, WAIT);
		ASSERT_LT(0, n);
		for (i = 0; i < n; i++) {
			int want[4] = { 0, -EINVAL, -EINVAL, -ECANCELED };
			uint64_t ud = res[i].user_data;

			EXPECT_EQ(want[ud], res[i].res) {
				TH_LOG("message %d", (int)ud);
			}
			ids[ud] = res[i].msg_id;
		}
	}
	ASSERT_EQ(1, pcb_receive(self->sub, &msg, WAIT));
	EXPECT_EQ(ids[0], msg.rec->msg_id);
	EXPECT_LT(a, msg.rec->msg_id);
	ASSERT_EQ(1U, pcb_msg_deps(&msg, &deps));
	EXPECT_EQ(a, deps[0]);
	EXPECT_EQ('b', *(const char *)msg.data);
	pcb_release(self->sub, &msg);
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
	EXPECT_EQ(2ULL, published(_metadata, self->pub, self->name));
}

/* Destroying the publisher cancels a message that waits for room. */
TEST_F(pub, uring_destroy_cancels)
{
	struct pcb_uring_pub *up;
	uint64_t before;

	URING_CREATE(up, self->pub, 4, 0);
	fill_small(_metadata, self);
	before = published(_metadata, self->pub, self->name);
	ASSERT_EQ(0, pcb_uring_pub_queue(up, self->handle, "never", 5, 0, 0, 0));
	ASSERT_EQ(1, pcb_uring_pub_submit(up));
	pcbt_sleep_ms(50);
	pcb_uring_pub_destroy(up);
	self->up = NULL;
	/* The ring's teardown is asynchronous: give it time to cancel. */
	pcbt_sleep_ms(500);
	drain(self->small);
	pcbt_sleep_ms(200);
	EXPECT_EQ(before, published(_metadata, self->pub, self->name));
}

TEST_HARNESS_MAIN
