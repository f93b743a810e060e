// SPDX-License-Identifier: GPL-2.0
/*
 * libpcb end to end: endpoints, topics, publishing, the zero-copy receive
 * path with its waits, errors as negative errno, and typed topics.
 */
#include "pcb_util.h"

#include <libpcb.h>

#define SCHEMA		0x11b9cbULL
#define MAX_MSG		256
#define RING		(16 * 1024)

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

FIXTURE(lib) {
	struct pcb *pub;	/* publishes */
	struct pcb *sub;	/* receives */
	char name[PCB_NAME_MAX];
	uint32_t topic_id;
	int handle;
};

FIXTURE_SETUP(lib)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;

	self->pub = NULL;
	self->sub = NULL;
	LIBPCB_OPEN(self->pub);
	LIBPCB_OPEN(self->sub);
	pcbt_name(self->name, "lib");
	opts.schema_id = SCHEMA;
	opts.max_msg_size = MAX_MSG;
	ASSERT_EQ(0, pcb_topic_create(self->pub, self->name, &opts,
				      &self->topic_id));
	self->handle = pcb_topic_open(self->pub, self->name, SCHEMA);
	ASSERT_LE(0, self->handle);
}

FIXTURE_TEARDOWN(lib)
{
	pcb_close(self->sub);
	pcb_close(self->pub);
	pcbt_cleanup();
}

/*
 * Sets up @bus's ring and subscribes it to the fixture's topic.  A failed
 * ASSERT ends the test from here too (the harness longjmp()s).
 */
static void ring_and_subscribe(struct __test_metadata *_metadata,
			       FIXTURE_DATA(lib) *self, struct pcb *bus,
			       size_t size, uint32_t flags)
{
	uint32_t id = 0;

	ASSERT_EQ(0, pcb_ring_setup(bus, size));
	ASSERT_EQ(0, pcb_subscribe(bus, self->name, SCHEMA, flags, &id));
	EXPECT_EQ(self->topic_id, id);
}

static int publish_str(FIXTURE_DATA(lib) *self, const char *s, uint64_t key,
		       uint64_t *id)
{
	return pcb_publish(self->pub, self->handle, s, strlen(s), key, 0, id);
}

/*
 * Messages that fill a PCB_RING_MIN_SIZE ring: 15 records of 264 bytes
 * (with the 64-byte record header), leaving less than one more.
 */
#define FILL_LEN	200
static const char fill_buf[FILL_LEN];

/* Publishes FILL_LEN-byte messages without blocking until the ring is full. */
static int fill_ring(FIXTURE_DATA(lib) *self)
{
	int n = 0, ret;

	while (!(ret = pcb_try_publish(self->pub, self->handle, fill_buf,
				       FILL_LEN, (uint64_t)n, NULL)))
		n++;
	return ret == -EAGAIN ? n : ret;
}

TEST(open_close)
{
	struct pcb *bus;

	LIBPCB_OPEN(bus);
	EXPECT_LE(0, pcb_fd(bus));
	EXPECT_EQ(-EINVAL, pcb_fd(NULL));
	EXPECT_EQ(-EINVAL, pcb_open(NULL));
	pcb_close(bus);
	pcb_close(NULL);
}

TEST_F(lib, topic_info_matches_create)
{
	struct pcb_topic_info info;

	ASSERT_EQ(0, pcb_topic_info(self->pub, self->name, &info));
	EXPECT_STREQ(self->name, info.name);
	EXPECT_EQ(SCHEMA, info.schema_id);
	EXPECT_EQ((uint32_t)MAX_MSG, info.max_msg_size);
	EXPECT_EQ(PCB_TOPIC_DEFAULT_MODE, info.mode);
	EXPECT_EQ((uint32_t)geteuid(), info.uid);
	EXPECT_EQ((uint32_t)getegid(), info.gid);
	EXPECT_EQ(self->topic_id, info.topic_id);
	EXPECT_EQ(0U, info.nr_subscribers);
	EXPECT_EQ(0ULL, info.published);
}

TEST_F(lib, topic_defaults)
{
	char name[PCB_NAME_MAX];
	struct pcb_topic_info info;
	uint32_t id = 0;

	pcbt_name(name, "defaults");
	ASSERT_EQ(0, pcb_topic_create(self->pub, name, NULL, &id));
	EXPECT_NE(0U, id);
	ASSERT_EQ(0, pcb_topic_info(self->pub, name, &info));
	EXPECT_EQ(0ULL, info.schema_id);
	EXPECT_EQ(PCB_TOPIC_DEFAULT_MSG_SIZE, info.max_msg_size);
	/* The owner subscribes reliably, others may listen. */
	EXPECT_EQ(0744U, info.mode);
	EXPECT_EQ((uint32_t)geteuid(), info.uid);
	/* A NULL topic_id is allowed. */
	pcbt_name(name, "noid");
	EXPECT_EQ(0, pcb_topic_create(self->pub, name, NULL, NULL));
}

TEST_F(lib, topic_errors)
{
	char long_name[PCB_NAME_MAX + 8];
	struct pcb_topic_info info;

	EXPECT_EQ(-EEXIST, pcb_topic_create(self->pub, self->name, NULL, NULL));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	EXPECT_EQ(-ENAMETOOLONG, pcb_topic_create(self->pub, long_name, NULL, NULL));
	EXPECT_EQ(-ENAMETOOLONG, pcb_topic_info(self->pub, long_name, &info));
	EXPECT_EQ(-EINVAL, pcb_topic_create(self->pub, ".hidden", NULL, NULL));
	EXPECT_EQ(-EINVAL, pcb_topic_create(self->pub, NULL, NULL, NULL));
	EXPECT_EQ(-EINVAL, pcb_topic_create(NULL, self->name, NULL, NULL));
	EXPECT_EQ(-EINVAL, pcb_topic_info(self->pub, self->name, NULL));
	EXPECT_EQ(-ENOENT, pcb_topic_info(self->pub, "pcbt-no-such-topic", &info));
	EXPECT_EQ(-ENOENT, pcb_topic_delete(self->pub, "pcbt-no-such-topic"));
	EXPECT_EQ(-ENOENT, pcb_topic_open(self->pub, "pcbt-no-such-topic", 0));
	EXPECT_EQ(-EPROTOTYPE, pcb_topic_open(self->pub, self->name, SCHEMA + 1));
}

TEST_F(lib, topic_delete)
{
	struct pcb_topic_info info;

	ASSERT_EQ(0, pcb_topic_delete(self->pub, self->name));
	EXPECT_EQ(-ENOENT, pcb_topic_info(self->pub, self->name, &info));
	EXPECT_EQ(-ENOENT, pcb_topic_delete(self->pub, self->name));
	/* Its handle is dead, and says so. */
	EXPECT_EQ(-EIDRM, publish_str(self, "x", 0, NULL));
}

struct listed {
	uint32_t ids[64];
	int n;
	int stop_after;		/* return -1234 after this many, if > 0 */
};

static int list_cb(const struct pcb_topic_info *info, void *arg)
{
	struct listed *l = arg;

	if (l->n < 64)
		l->ids[l->n] = info->topic_id;
	l->n++;
	return l->stop_after && l->n == l->stop_after ? -1234 : 0;
}

TEST_F(lib, topic_list)
{
	uint32_t mine[40];
	char name[PCB_NAME_MAX];
	struct listed l = { 0 };
	int i, j, found = 0, ret;

	/* More than one TOPIC_LIST batch of the library. */
	for (i = 0; i < 40; i++) {
		pcbt_name(name, "list");
		ASSERT_EQ(0, pcb_topic_create(self->pub, name, NULL, &mine[i]));
	}
	ret = pcb_topic_list(self->pub, list_cb, &l);
	ASSERT_EQ(l.n, ret);
	ASSERT_LE(41, ret);
	for (i = 1; i < l.n && i < 64; i++)
		EXPECT_LT(l.ids[i - 1], l.ids[i]);
	if (l.n <= 64) {
		for (i = 0; i < 40; i++)
			for (j = 0; j < l.n; j++)
				found += l.ids[j] == mine[i];
		EXPECT_EQ(40, found);
	}

	memset(&l, 0, sizeof(l));
	l.stop_after = 3;
	EXPECT_EQ(-1234, pcb_topic_list(self->pub, list_cb, &l));
	EXPECT_EQ(3, l.n);
	EXPECT_EQ(-EINVAL, pcb_topic_list(self->pub, NULL, NULL));
}

TEST_F(lib, handles)
{
	int h2 = pcb_topic_open(self->pub, self->name, SCHEMA);

	ASSERT_LE(0, h2);
	EXPECT_NE(self->handle, h2);
	EXPECT_EQ(0, pcb_topic_close(self->pub, h2));
	EXPECT_EQ(-EBADF, pcb_topic_close(self->pub, h2));
	EXPECT_EQ(-EBADF, pcb_publish(self->pub, h2, "x", 1, 0, 0, NULL));
	EXPECT_EQ(-EBADF, pcb_try_publish(self->pub, -1, "x", 1, 0, NULL));
	/* Handles belong to their endpoint. */
	EXPECT_EQ(-EBADF, pcb_publish(self->sub, self->handle, "x", 1, 0, 0, NULL));
}

TEST_F(lib, no_ring_yet)
{
	struct pcb_msg msg;

	EXPECT_EQ(-EBADFD, pcb_peek(self->sub, &msg));
	EXPECT_EQ(-EBADFD, pcb_wait(self->sub, PCBT_MS, 0));
	EXPECT_EQ(-EBADFD, pcb_receive(self->sub, &msg, PCBT_MS));
	EXPECT_EQ(-EBADFD, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(0ULL, pcb_dropped(self->sub));
	EXPECT_EQ(0U, pcb_tsc_khz(self->sub));
}

TEST_F(lib, ring_setup_errors)
{
	EXPECT_EQ(-EINVAL, pcb_ring_setup(self->sub, 3000));
	EXPECT_EQ(-EINVAL, pcb_ring_setup(self->sub, (size_t)1 << 33));
	EXPECT_EQ(-EINVAL, pcb_ring_setup(self->sub, PCB_RING_MIN_SIZE / 2));
	ASSERT_EQ(0, pcb_ring_setup(self->sub, 0));
	EXPECT_EQ(-EBUSY, pcb_ring_setup(self->sub, RING));
}

TEST_F(lib, subscribe_errors)
{
	ASSERT_EQ(0, pcb_ring_setup(self->sub, PCB_RING_MIN_SIZE));
	EXPECT_EQ(-EPROTOTYPE, pcb_subscribe(self->sub, self->name, SCHEMA + 1,
					     0, NULL));
	EXPECT_EQ(-ENOENT, pcb_subscribe(self->sub, "pcbt-no-such-topic", 0, 0,
					 NULL));
	EXPECT_EQ(-EINVAL, pcb_subscribe(self->sub, self->name, SCHEMA,
					 ~(uint32_t)PCB_SUB_FLAGS_ALL, NULL));
	ASSERT_EQ(0, pcb_subscribe(self->sub, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(-EALREADY, pcb_subscribe(self->sub, self->name, SCHEMA, 0,
					   NULL));
	EXPECT_EQ(0, pcb_unsubscribe(self->sub, self->topic_id));
	EXPECT_EQ(-ENOENT, pcb_unsubscribe(self->sub, self->topic_id));
}

TEST_F(lib, publish_peek_release)
{
	static const char *const texts[] = { "first", "second", "", "fourth" };
	uint64_t ids[4], last_id = 0;
	struct pcb_msg msg, again;
	unsigned int i;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, publish_str(self, texts[i], 100 + i, &ids[i]));

	for (i = 0; i < 4; i++) {
		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		/* Peeking again shows the same message until it is released. */
		ASSERT_EQ(1, pcb_peek(self->sub, &again));
		EXPECT_EQ(msg.rec, again.rec);

		EXPECT_EQ(self->topic_id, msg.rec->topic_id);
		EXPECT_EQ(ids[i], msg.rec->msg_id);
		EXPECT_LT(last_id, msg.rec->msg_id);
		EXPECT_EQ(i + 1ULL, msg.rec->seq);
		EXPECT_EQ(100ULL + i, msg.rec->key);
		EXPECT_EQ((uint32_t)getpid(), msg.rec->pid);
		EXPECT_EQ((uint32_t)geteuid(), msg.rec->uid);
		EXPECT_EQ(strlen(texts[i]), msg.len);
		EXPECT_EQ(0, memcmp(texts[i], msg.data, msg.len));
		EXPECT_EQ(0U, (uintptr_t)msg.data % PCB_REC_ALIGN);
		last_id = msg.rec->msg_id;
		pcb_release(self->sub, &msg);
		/* A second release of the same message changes nothing. */
		pcb_release(self->sub, &msg);
	}
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
	EXPECT_EQ(0ULL, pcb_dropped(self->sub));
}

TEST_F(lib, msg_size_limits)
{
	static char buf[MAX_MSG + 1];
	struct pcb_msg msg;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	EXPECT_EQ(-EMSGSIZE, pcb_publish(self->pub, self->handle, buf,
					 MAX_MSG + 1, 0, 0, NULL));
	EXPECT_EQ(-EMSGSIZE, pcb_try_publish(self->pub, self->handle, buf,
					     (size_t)UINT32_MAX + 2, 0, NULL));
	memset(buf, 0xa5, MAX_MSG);
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, buf, MAX_MSG, 0, 0,
				 NULL));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, NULL, 0, 0, 0, NULL));

	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ((size_t)MAX_MSG, msg.len);
	EXPECT_EQ(0, memcmp(buf, msg.data, MAX_MSG));
	pcb_release(self->sub, &msg);
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(0U, msg.len);
	pcb_release(self->sub, &msg);
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

TEST_F(lib, ring_wraps)
{
	char buf[MAX_MSG];
	struct pcb_msg msg;
	uint64_t seq = 0;
	int i;

	/* Sizes that are no divisor of the ring, so records cross its end. */
	ring_and_subscribe(_metadata, self, self->sub, PCB_RING_MIN_SIZE, 0);
	for (i = 0; i < 200; i++) {
		size_t len = 37 + (size_t)(i * 13) % 200;

		memset(buf, i, len);
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf, len,
					     0, NULL));
		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		EXPECT_EQ(++seq, msg.rec->seq);
		ASSERT_EQ(len, msg.len);
		memset(buf, i, len);
		EXPECT_EQ(0, memcmp(buf, msg.data, len));
		pcb_release(self->sub, &msg);
	}
}

TEST_F(lib, try_publish_full_ring_eagain)
{
	struct pcb_msg msg;
	int n;

	ring_and_subscribe(_metadata, self, self->sub, PCB_RING_MIN_SIZE, 0);
	n = fill_ring(self);
	EXPECT_EQ((int)(PCB_RING_MIN_SIZE /
			PCB_REC_SIZE(FILL_LEN + sizeof(struct pcb_record))), n);
	EXPECT_EQ(-EAGAIN, pcb_try_publish(self->pub, self->handle, fill_buf,
					   FILL_LEN, 0, NULL));

	/* Releasing one record makes room for one more. */
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	pcb_release(self->sub, &msg);
	EXPECT_EQ(0, pcb_try_publish(self->pub, self->handle, fill_buf,
				     FILL_LEN, 0, NULL));
	EXPECT_EQ(-EAGAIN, pcb_try_publish(self->pub, self->handle, fill_buf,
					   FILL_LEN, 0, NULL));
}

TEST_F(lib, publish_timeout)
{
	uint64_t start, spent;

	ring_and_subscribe(_metadata, self, self->sub, PCB_RING_MIN_SIZE, 0);
	ASSERT_LT(0, fill_ring(self));
	start = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, pcb_publish(self->pub, self->handle, fill_buf,
					  FILL_LEN, 0, 50 * PCBT_MS, NULL));
	spent = pcbt_now_ns(CLOCK_MONOTONIC) - start;
	EXPECT_LE(50 * PCBT_MS, spent);
}

struct blocked_pub {
	FIXTURE_DATA(lib) *self;
	int ret;
	uint64_t done_ns;
};

static void *blocked_publisher(void *arg)
{
	struct blocked_pub *b = arg;

	b->ret = pcb_publish(b->self->pub, b->self->handle, fill_buf, FILL_LEN,
			     0, 20 * PCBT_SEC, NULL);
	b->done_ns = pcbt_now_ns(CLOCK_MONOTONIC);
	return NULL;
}

/* pcb_release() wakes a publisher waiting for room (steps 5 and E). */
TEST_F(lib, release_wakes_blocked_publisher)
{
	struct blocked_pub b = { .self = self };
	uint64_t released;
	struct pcb_msg msg;
	pthread_t t;

	ring_and_subscribe(_metadata, self, self->sub, PCB_RING_MIN_SIZE, 0);
	ASSERT_LT(0, fill_ring(self));
	ASSERT_EQ(0, pthread_create(&t, NULL, blocked_publisher, &b));
	pcbt_sleep_ms(200);
	EXPECT_EQ(0ULL, b.done_ns);

	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	released = pcbt_now_ns(CLOCK_MONOTONIC);
	pcb_release(self->sub, &msg);
	pthread_join(t, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_LE(released, b.done_ns);
}

TEST_F(lib, wait_timeout)
{
	uint64_t start, spent;
	struct pcb_msg msg;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	start = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, pcb_wait(self->sub, 50 * PCBT_MS, 0));
	spent = pcbt_now_ns(CLOCK_MONOTONIC) - start;
	EXPECT_LE(50 * PCBT_MS, spent);

	/* Spinning counts towards the timeout. */
	start = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, pcb_wait(self->sub, 30 * PCBT_MS, 10 * PCBT_MS));
	spent = pcbt_now_ns(CLOCK_MONOTONIC) - start;
	EXPECT_LE(30 * PCBT_MS, spent);

	start = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, pcb_receive(self->sub, &msg, 40 * PCBT_MS));
	spent = pcbt_now_ns(CLOCK_MONOTONIC) - start;
	EXPECT_LE(40 * PCBT_MS, spent);

	/* A record already there: no waiting at all. */
	ASSERT_EQ(0, publish_str(self, "here", 0, NULL));
	EXPECT_EQ(0, pcb_wait(self->sub, 50 * PCBT_MS, 0));
	EXPECT_EQ(1, pcb_receive(self->sub, &msg, 50 * PCBT_MS));
}

struct late_pub {
	FIXTURE_DATA(lib) *self;
	unsigned int delay_ms;
	int ret;
};

static void *late_publisher(void *arg)
{
	struct late_pub *l = arg;

	pcbt_sleep_ms(l->delay_ms);
	l->ret = pcb_publish(l->self->pub, l->self->handle, "wake", 4, 7, 0,
			     NULL);
	return NULL;
}

/* A consumer asleep in PCB_IOC_WAIT is woken by a publish (steps 4 and D). */
TEST_F(lib, wait_is_woken_by_publish)
{
	struct late_pub l = { .self = self, .delay_ms = 100 };
	uint64_t start, spent;
	struct pcb_msg msg;
	pthread_t t;
	int round;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	/* Once sleeping at once, once after spinning for a while. */
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, pthread_create(&t, NULL, late_publisher, &l));
		start = pcbt_now_ns(CLOCK_MONOTONIC);
		EXPECT_EQ(0, pcb_wait(self->sub, 10 * PCBT_SEC,
				      round ? 20 * PCBT_MS : 0));
		spent = pcbt_now_ns(CLOCK_MONOTONIC) - start;
		pthread_join(t, NULL);
		EXPECT_EQ(0, l.ret);
		EXPECT_GT(5 * PCBT_SEC, spent);
		ASSERT_EQ(1, pcb_receive(self->sub, &msg, PCBT_SEC));
		EXPECT_EQ(7ULL, msg.rec->key);
		pcb_release(self->sub, &msg);
	}
}

TEST_F(lib, wait_interrupted_eintr)
{
	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	ASSERT_EQ(0, pcbt_alarm_in(100));
	EXPECT_EQ(-EINTR, pcb_wait(self->sub, 10 * PCBT_SEC, 0));
}

struct mt_pub {
	FIXTURE_DATA(lib) *self;
	uint32_t index;
	int ret;
};

#define MT_THREADS	4
#define MT_MSGS		500

static void *mt_publisher(void *arg)
{
	struct mt_pub *p = arg;
	uint32_t i;

	for (i = 0; i < MT_MSGS && !p->ret; i++)
		p->ret = pcb_publish(p->self->pub, p->self->handle, &i,
				     sizeof(i), p->index, 10 * PCBT_SEC, NULL);
	return NULL;
}

/* Many threads publish through one endpoint; one consumer sees it all. */
TEST_F(lib, threads_share_an_endpoint)
{
	struct mt_pub pubs[MT_THREADS];
	uint32_t next[MT_THREADS] = { 0 };
	uint64_t seq = 0, last_id = 0;
	struct pcb_msg msg;
	pthread_t t[MT_THREADS];
	int i, n;

	ring_and_subscribe(_metadata, self, self->sub, PCB_RING_MIN_SIZE, 0);
	for (i = 0; i < MT_THREADS; i++) {
		pubs[i] = (struct mt_pub){ .self = self, .index = (uint32_t)i };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, mt_publisher, &pubs[i]));
	}
	for (n = 0; n < MT_THREADS * MT_MSGS; n++) {
		uint32_t v, k;

		ASSERT_EQ(1, pcb_receive(self->sub, &msg, 10 * PCBT_SEC));
		ASSERT_EQ(sizeof(v), msg.len);
		memcpy(&v, msg.data, sizeof(v));
		k = (uint32_t)msg.rec->key;
		ASSERT_GT(MT_THREADS, (int)k);
		EXPECT_EQ(next[k], v);
		next[k] = v + 1;
		EXPECT_EQ(++seq, msg.rec->seq);
		EXPECT_LT(last_id, msg.rec->msg_id);
		last_id = msg.rec->msg_id;
		pcb_release(self->sub, &msg);
	}
	for (i = 0; i < MT_THREADS; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, pubs[i].ret);
	}
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

TEST_F(lib, lossy_drops_are_counted)
{
	char buf[200] = { 0 };
	uint64_t last = 0, gaps = 0;
	struct pcb_msg msg;
	int received = 0, i;

	ring_and_subscribe(_metadata, self, self->sub, PCB_RING_MIN_SIZE, PCB_SUB_LOSSY);
	/* A lossy subscriber never holds a publisher back. */
	for (i = 0; i < 100; i++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, buf,
					     sizeof(buf), 0, NULL));
	while (pcb_peek(self->sub, &msg) == 1) {
		gaps += msg.rec->seq - last - 1;
		last = msg.rec->seq;
		received++;
		pcb_release(self->sub, &msg);
	}
	EXPECT_LT(0, received);
	EXPECT_EQ(100ULL - received, pcb_dropped(self->sub));
	/* The newest messages were dropped: the gap is at the end. */
	EXPECT_EQ(0ULL, gaps);
	EXPECT_EQ((uint64_t)received, last);
}

TEST_F(lib, unsubscribe_stops_delivery)
{
	struct pcb_msg msg;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	ASSERT_EQ(0, publish_str(self, "before", 0, NULL));
	ASSERT_EQ(0, pcb_unsubscribe(self->sub, self->topic_id));
	ASSERT_EQ(0, publish_str(self, "after", 0, NULL));
	/* What came before stays readable. */
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(0, memcmp("before", msg.data, 6));
	pcb_release(self->sub, &msg);
	EXPECT_EQ(-ETIMEDOUT, pcb_receive(self->sub, &msg, 20 * PCBT_MS));
}

TEST_F(lib, deleted_topic_records_stay)
{
	struct pcb_msg msg;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	ASSERT_EQ(0, publish_str(self, "kept", 0, NULL));
	ASSERT_EQ(0, pcb_topic_delete(self->pub, self->name));
	EXPECT_EQ(-EIDRM, publish_str(self, "lost", 0, NULL));
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	EXPECT_EQ(0, memcmp("kept", msg.data, 4));
	pcb_release(self->sub, &msg);
	EXPECT_EQ(0, pcb_peek(self->sub, &msg));
}

/* A consumer position that makes no sense breaks the ring: -EPIPE. */
TEST_F(lib, broken_ring_epipe)
{
	struct pcb_ring_consumer *cons;
	struct pcb_msg msg;
	long page = sysconf(_SC_PAGESIZE);

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	/* Behind the library's back, through a second mapping (offset 0). */
	cons = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED,
		    pcb_fd(self->sub), 0);
	ASSERT_NE(MAP_FAILED, cons);
	__atomic_store_n(&cons->cons_pos, 12345, __ATOMIC_RELEASE);
	/* The kernel notices when it next looks at the ring. */
	ASSERT_EQ(0, publish_str(self, "x", 0, NULL));
	EXPECT_EQ(-EPIPE, pcb_peek(self->sub, &msg));
	EXPECT_EQ(-EPIPE, pcb_wait(self->sub, 10 * PCBT_MS, 0));
	EXPECT_EQ(-EPIPE, pcb_receive(self->sub, &msg, 10 * PCBT_MS));
	munmap(cons, (size_t)page);
}

TEST_F(lib, latency)
{
	struct pcb_msg msg;
	uint64_t ns = 0;
	int ret;

	ring_and_subscribe(_metadata, self, self->sub, RING, 0);
	ASSERT_EQ(0, publish_str(self, "t", 0, NULL));
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	ret = pcb_msg_latency_ns(self->sub, &msg, &ns);
	/* Either clock gives a latency; libpcb_stats_test checks its unit. */
	if (pcb_clock(self->sub) == PCB_CLOCK_TSC && !pcb_tsc()) {
		EXPECT_EQ(-EOPNOTSUPP, ret);
	} else {
		EXPECT_EQ(0, ret);
		EXPECT_LT(0ULL, ns);
		EXPECT_GT(10 * PCBT_SEC, ns);
	}
	if (pcb_clock(self->sub) == PCB_CLOCK_TSC) {
		EXPECT_LE(msg.rec->tsc, pcb_tsc());
	} else {
		EXPECT_EQ((uint32_t)PCB_CLOCK_MONO, pcb_clock(self->sub));
		EXPECT_LE(msg.rec->tsc, pcbt_now_ns(CLOCK_MONOTONIC));
	}
}

/* Typed topics: the compile-time half is in compile_fail/. */
struct point {
	int32_t x, y;
};

struct other {
	uint64_t v;
};

PCB_DEFINE_TOPIC(point, struct point, 0x706f696e74ULL)
PCB_DEFINE_TOPIC(point_v2, struct point, 0x706f696e7402ULL)
PCB_DEFINE_TOPIC(other, struct other, 0x6f74686572ULL)

TEST_F(lib, typed_topic)
{
	struct pcb_topic_point tx, rx;
	struct pcb_topic_other otx, orx;
	struct pcb_topic_point_v2 v2;
	const struct point p = { 3, -4 };
	struct other o = { 99 };
	const struct point *pp;
	char pname[PCB_NAME_MAX], oname[PCB_NAME_MAX];
	struct pcb_topic_info info;
	struct point copy;
	struct pcb_msg msg;
	uint64_t id = 0;

	pcbt_name(pname, "point");
	pcbt_name(oname, "other");
	ASSERT_EQ(0, pcb_topic_point_create(self->pub, pname, NULL));
	ASSERT_EQ(0, pcb_topic_info(self->pub, pname, &info));
	EXPECT_EQ(0x706f696e74ULL, info.schema_id);
	EXPECT_EQ(sizeof(struct point), info.max_msg_size);
	ASSERT_EQ(0, pcb_topic_other_create(self->pub, oname, NULL));

	/* Same C type, other schema id: the kernel refuses it. */
	EXPECT_EQ(-EPROTOTYPE, pcb_topic_point_v2_open(&v2, self->pub, pname));
	EXPECT_EQ(-1, v2.handle);

	ASSERT_LE(0, pcb_topic_point_open(&tx, self->pub, pname));
	ASSERT_LE(0, pcb_topic_other_open(&otx, self->pub, oname));
	ASSERT_EQ(0, pcb_ring_setup(self->sub, RING));
	ASSERT_EQ(0, pcb_topic_point_subscribe(&rx, self->sub, pname, 0));
	ASSERT_EQ(0, pcb_topic_other_subscribe(&orx, self->sub, oname, 0));

	EXPECT_EQ(0, pcb_publish_typed(&tx, &p, 1, 0, &id));
	EXPECT_NE(0ULL, id);
	EXPECT_EQ(0, pcb_try_publish_typed(&otx, &o, 2, NULL));

	ASSERT_EQ(1, pcb_receive(self->sub, &msg, PCBT_SEC));
	pp = pcb_msg_typed(&rx, &msg);
	ASSERT_NE(NULL, pp);
	EXPECT_EQ(3, pp->x);
	EXPECT_EQ(-4, pp->y);
	EXPECT_EQ(id, msg.rec->msg_id);
	EXPECT_EQ(0, pcb_msg_read_typed(&rx, &msg, &copy));
	EXPECT_EQ(0, memcmp(&p, &copy, sizeof(copy)));
	/* Not a message of the other topic. */
	EXPECT_EQ(NULL, pcb_msg_typed(&orx, &msg));
	pcb_release(self->sub, &msg);

	ASSERT_EQ(1, pcb_receive(self->sub, &msg, PCBT_SEC));
	EXPECT_EQ(NULL, pcb_msg_typed(&rx, &msg));
	EXPECT_EQ(-EPROTOTYPE, pcb_msg_read_typed(&rx, &msg, &copy));
	ASSERT_NE(NULL, pcb_msg_typed(&orx, &msg));
	EXPECT_EQ(99ULL, pcb_msg_typed(&orx, &msg)->v);
	pcb_release(self->sub, &msg);

	EXPECT_EQ(0, pcb_topic_point_close(&tx));
	EXPECT_EQ(0, pcb_topic_point_close(&tx));
	EXPECT_EQ(-EBADF, pcb_publish_typed(&tx, &p, 0, 0, NULL));
	EXPECT_EQ(0, pcb_topic_other_close(&otx));
}

TEST_HARNESS_MAIN
