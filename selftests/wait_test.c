// SPDX-License-Identifier: GPL-2.0
/*
 * Sleeping and waking: poll(), epoll, PCB_IOC_WAIT on the consumer side,
 * and publishers that wait for room in a full reliable ring.
 */
#include "pcb_util.h"
#include "pcb_uring.h"

#include <sys/epoll.h>

#define SCHEMA		0xa11
#define LEN		200

FIXTURE(wait) {
	int pfd;		/* publisher endpoint */
	__u32 handle;
	struct pcbt_ring ring;	/* reliable subscriber, 4 KiB */
	char name[PCB_NAME_MAX];
};

FIXTURE_SETUP(wait)
{
	int fd;

	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "wait");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
	fd = pcbt_ring_open(4096, &self->ring);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));
}

FIXTURE_TEARDOWN(wait)
{
	pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

static bool need_wakeup(const struct pcbt_ring *r)
{
	return pcbt_load_once(&r->cons->flags) & PCB_CONS_NEED_WAKEUP;
}

static bool pub_waiting(const struct pcbt_ring *r)
{
	return pcbt_ring_flags(r) & PCB_RING_PUB_WAITING;
}

/* A publisher in another thread, optionally after a delay. */
struct bg_pub {
	int fd;
	__u32 handle;
	unsigned int delay_ms;
	__u64 timeout_ns;
	pthread_t thread;
	int done;		/* atomic */
	int ret;
	__u64 returned_at;
};

static void *bg_publish(void *p)
{
	struct bg_pub *b = p;
	static const char msg[LEN];

	if (b->delay_ms)
		pcbt_sleep_ms(b->delay_ms);
	b->ret = pcbt_publish(b->fd, b->handle, msg, LEN, 0, b->timeout_ns,
			      NULL);
	b->returned_at = pcbt_now_ns(CLOCK_MONOTONIC);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void bg_start(struct bg_pub *b, int fd, __u32 handle,
		     unsigned int delay_ms, __u64 timeout_ns)
{
	memset(b, 0, sizeof(*b));
	b->fd = fd;
	b->handle = handle;
	b->delay_ms = delay_ms;
	b->timeout_ns = timeout_ns;
	pthread_create(&b->thread, NULL, bg_publish, b);
}

static bool bg_done(struct bg_pub *b)
{
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

/* Waits up to @ms for @b to return. */
static bool bg_wait(struct bg_pub *b, unsigned int ms)
{
	while (!bg_done(b) && ms--)
		pcbt_sleep_ms(1);
	return bg_done(b);
}

/* Waits up to @ms for header->flags to have @flag. */
static bool flag_within(const struct pcbt_ring *r, __u32 flag, unsigned int ms)
{
	while (!(pcbt_ring_flags(r) & flag) && ms--)
		pcbt_sleep_ms(1);
	return pcbt_ring_flags(r) & flag;
}

/* Fills the ring with NONBLOCK publishes; the number that fitted. */
static int fill(int fd, __u32 handle)
{
	static const char msg[LEN];
	int n = 0, ret;

	while (!(ret = pcbt_publish(fd, handle, msg, LEN, PCB_PUB_NONBLOCK, 0,
				    NULL)))
		n++;
	return ret == -EAGAIN ? n : ret;
}

static short poll_events(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) < 0)
		return -1;
	return pfd.revents;
}

TEST_F(wait, poll_pollin_only_with_data)
{
	EXPECT_EQ(0, poll_events(self->ring.fd, 0));
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "a", 1, 0, 0, NULL));
	EXPECT_EQ(POLLIN, poll_events(self->ring.fd, 0) & (POLLIN | POLLERR));
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
	EXPECT_EQ(0, poll_events(self->ring.fd, 0));
}

TEST_F(wait, poll_sleeps_until_publish)
{
	struct bg_pub b;
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	short ev;

	bg_start(&b, self->pfd, self->handle, 200, 0);
	ev = poll_events(self->ring.fd, 20000);
	EXPECT_EQ(POLLIN, ev);
	EXPECT_LT(pcbt_now_ns(CLOCK_MONOTONIC) - t0, 10 * PCBT_SEC);
	pthread_join(b.thread, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
}

TEST_F(wait, poll_sets_need_wakeup)
{
	self->ring.cons->flags = 0;
	EXPECT_EQ(0, poll_events(self->ring.fd, 10));
	EXPECT_TRUE(need_wakeup(&self->ring));
}

TEST_F(wait, epoll)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct bg_pub b;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->ring.fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));

	bg_start(&b, self->pfd, self->handle, 200, 0);
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 20000));
	EXPECT_TRUE(!!(out.events & EPOLLIN));
	pthread_join(b.thread, NULL);

	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));
	close(ep);
}

TEST_F(wait, wait_returns_at_once_with_data)
{
	struct pcb_wait w = { .timeout_ns = 10 * PCBT_SEC };
	__u64 t0;

	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "a", 1, 0, 0, NULL));
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	EXPECT_LT(pcbt_now_ns(CLOCK_MONOTONIC) - t0, 5 * PCBT_SEC);
	/* Still pending: WAIT consumes nothing. */
	EXPECT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
}

TEST_F(wait, wait_etimedout_sets_need_wakeup)
{
	static const __u64 timeouts[] = { 1, 20 * PCBT_MS, 150 * PCBT_MS };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(timeouts); i++) {
		struct pcb_wait w = { .timeout_ns = timeouts[i] };
		__u64 t0, dt;

		self->ring.cons->flags = 0;
		t0 = pcbt_now_ns(CLOCK_MONOTONIC);
		EXPECT_EQ(-ETIMEDOUT, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT,
						 &w));
		dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
		EXPECT_LE(timeouts[i], dt);
		EXPECT_GT(timeouts[i] + 10 * PCBT_SEC, dt);
		EXPECT_TRUE(need_wakeup(&self->ring));
	}
}

TEST_F(wait, wait_woken_by_publish)
{
	struct pcb_wait w = { .timeout_ns = 20 * PCBT_SEC };
	struct bg_pub b;
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);

	bg_start(&b, self->pfd, self->handle, 200, 0);
	EXPECT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	EXPECT_LT(pcbt_now_ns(CLOCK_MONOTONIC) - t0, 10 * PCBT_SEC);
	pthread_join(b.thread, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_NE(NULL, pcbt_ring_peek(&self->ring));

	/* The same through the barrier-following consumer. */
	pcbt_ring_drain(&self->ring);
	bg_start(&b, self->pfd, self->handle, 100, 0);
	EXPECT_NE(NULL, pcbt_ring_next(&self->ring, 20 * PCBT_SEC));
	pthread_join(b.thread, NULL);
}

TEST_F(wait, wait_eintr)
{
	struct pcb_wait w = { .timeout_ns = 0 };
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);

	pcbt_alarm_in(200);
	EXPECT_EQ(-EINTR, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	EXPECT_LE(150 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
}

/* Timeouts too large for ktime wait without limit; they do not wrap. */
TEST_F(wait, huge_timeouts_mean_forever)
{
	struct pcb_wait w = { .timeout_ns = ~0ULL };
	static const char msg[LEN];
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);

	pcbt_alarm_in(300);
	EXPECT_EQ(-EINTR, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	EXPECT_LE(250 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);

	w.timeout_ns = 1ULL << 63;
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	pcbt_alarm_in(300);
	EXPECT_EQ(-EINTR, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	EXPECT_LE(250 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);

	ASSERT_LT(0, fill(self->pfd, self->handle));
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	pcbt_alarm_in(300);
	EXPECT_EQ(-EINTR, pcbt_publish(self->pfd, self->handle, msg, LEN, 0,
				       ~0ULL, NULL));
	EXPECT_LE(250 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
}

TEST_F(wait, blocking_publish_woken_by_notify)
{
	struct bg_pub b;
	bool waiting;
	int n;

	n = fill(self->pfd, self->handle);
	ASSERT_LT(0, n);
	bg_start(&b, self->pfd, self->handle, 0, 0);

	waiting = flag_within(&self->ring, PCB_RING_PUB_WAITING, 10000);
	EXPECT_TRUE(waiting);
	EXPECT_FALSE(bg_done(&b));

	/* Drain and release, then NOTIFY by hand (C, E). */
	while (pcbt_ring_peek(&self->ring))
		pcbt_ring_pop(&self->ring);
	pcbt_ring_store_cons(&self->ring);
	pcbt_smp_mb();
	EXPECT_TRUE(pub_waiting(&self->ring));
	EXPECT_EQ(0, pcbt_ioctl_val(self->ring.fd, PCB_IOC_NOTIFY, 0));

	ASSERT_TRUE(bg_wait(&b, 10000));
	pthread_join(b.thread, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_NE(NULL, pcbt_ring_next(&self->ring, PCBT_SEC));
	EXPECT_EQ((long long)n + 1, pcbt_published(self->pfd, self->name));
	EXPECT_FALSE(pub_waiting(&self->ring));
}

TEST_F(wait, blocking_publish_woken_by_wait)
{
	struct pcb_wait w = { .timeout_ns = 10 * PCBT_SEC };
	struct bg_pub b;

	ASSERT_LT(0, fill(self->pfd, self->handle));
	bg_start(&b, self->pfd, self->handle, 0, 0);
	ASSERT_TRUE(flag_within(&self->ring, PCB_RING_PUB_WAITING, 10000));

	/* WAIT does what NOTIFY does, then sleeps until the record lands. */
	while (pcbt_ring_peek(&self->ring))
		pcbt_ring_pop(&self->ring);
	pcbt_ring_store_cons(&self->ring);
	EXPECT_EQ(0, pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w));
	ASSERT_TRUE(bg_wait(&b, 10000));
	pthread_join(b.thread, NULL);
	EXPECT_EQ(0, b.ret);
}

TEST_F(wait, blocking_publish_etimedout)
{
	static const char msg[LEN];
	__u64 t0, dt;
	int n;

	n = fill(self->pfd, self->handle);
	ASSERT_LT(0, n);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, pcbt_publish(self->pfd, self->handle, msg, LEN,
					   0, 100 * PCBT_MS, NULL));
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_LE(100 * PCBT_MS, dt);
	EXPECT_GT(10 * PCBT_SEC, dt);
	/* Nothing published. */
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->ring));
	/* NONBLOCK ignores the timeout. */
	n = fill(self->pfd, self->handle);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-EAGAIN, pcbt_publish(self->pfd, self->handle, msg, LEN,
					PCB_PUB_NONBLOCK, 10 * PCBT_SEC, NULL));
	EXPECT_GT(5 * PCBT_SEC, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
}

TEST_F(wait, blocking_publish_eintr)
{
	static const char msg[LEN];
	int n;

	n = fill(self->pfd, self->handle);
	ASSERT_LT(0, n);
	pcbt_alarm_in(200);
	EXPECT_EQ(-EINTR, pcbt_publish(self->pfd, self->handle, msg, LEN, 0, 0,
				       NULL));
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->ring));
}

/*
 * A consumer that skips step E only moves cons_pos: a publisher waiting
 * without a time limit must notice on its own, "every few milliseconds".
 */
TEST_F(wait, waiting_publisher_rechecks_without_notify)
{
	struct bg_pub b;
	__u64 t0;

	ASSERT_LT(0, fill(self->pfd, self->handle));
	bg_start(&b, self->pfd, self->handle, 0, 0);
	ASSERT_TRUE(flag_within(&self->ring, PCB_RING_PUB_WAITING, 10000));
	pcbt_sleep_ms(50);
	ASSERT_FALSE(bg_done(&b));

	while (pcbt_ring_peek(&self->ring))
		pcbt_ring_pop(&self->ring);
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	pcbt_ring_store_cons(&self->ring);
	if (!bg_wait(&b, 2000)) {
		/* Unblock it so the test can end, then fail. */
		pcbt_ioctl_val(self->ring.fd, PCB_IOC_NOTIFY, 0);
		bg_wait(&b, 10000);
		ASSERT_TRUE(false) TH_LOG("publisher still asleep after 2 s");
	}
	TH_LOG("publisher noticed the room after %.1f ms",
	       (b.returned_at - t0) / 1e6);
	pthread_join(b.thread, NULL);
	EXPECT_EQ(0, b.ret);
}

/*
 * io_uring task work for a thread that sleeps in a call: reads queued by
 * the thread on an empty pipe, which a feeder thread fills a byte at a
 * time.  Each byte completes a read through task work, which interrupts
 * the call without a signal: the call restarts, and must keep its
 * deadline.
 */
#define FEED_BYTES	128
#define FEED_GAP_MS	20

struct feeder {
	struct io_uring u;
	int pipe[2];
	char buf[FEED_BYTES];
	pthread_t thread;
	int done;		/* atomic */
};

static void *feed(void *p)
{
	struct feeder *f = p;

	for (int i = 0; i < FEED_BYTES; i++) {
		pcbt_sleep_ms(FEED_GAP_MS);
		if (write(f->pipe[1], "x", 1) != 1)
			break;
	}
	__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Queues the reads from this thread, then starts the feeder. */
static int feeder_start(struct feeder *f)
{
	int ret;

	memset(f, 0, sizeof(*f));
	/* Neither COOP_TASKRUN nor DEFER_TASKRUN: task work interrupts. */
	ret = io_uring_queue_init(FEED_BYTES, &f->u, 0);
	if (ret)
		return ret;
	if (pipe(f->pipe))
		return -errno;
	for (int i = 0; i < FEED_BYTES; i++)
		io_uring_prep_read(io_uring_get_sqe(&f->u), f->pipe[0],
				   &f->buf[i], 1, 0);
	ret = io_uring_submit(&f->u);
	if (ret != FEED_BYTES)
		return ret < 0 ? ret : -EIO;
	return -pthread_create(&f->thread, NULL, feed, f);
}

static bool feeder_done(struct feeder *f)
{
	return __atomic_load_n(&f->done, __ATOMIC_ACQUIRE);
}

/* The reads completed so far: the task work that has run. */
static unsigned int feeder_completed(struct feeder *f)
{
	return io_uring_cq_ready(&f->u);
}

static void feeder_stop(struct feeder *f)
{
	pthread_join(f->thread, NULL);
	io_uring_queue_exit(&f->u);
	close(f->pipe[0]);
	close(f->pipe[1]);
}

enum restart_call { R_PUBLISH, R_ATOMIC_BATCH, R_PLAIN_BATCH, R_WAIT };

static int restart_call(struct __test_metadata *_metadata,
			FIXTURE_DATA(wait) *self, enum restart_call what,
			__u64 timeout_ns)
{
	static const char msg[LEN];
	struct pcb_batch_entry e = {
		.handle = self->handle, .payload = (uintptr_t)msg, .len = LEN,
		.result = 1,
	};
	struct pcb_publish_batch b = {
		.entries = (uintptr_t)&e, .count = 1, .timeout_ns = timeout_ns,
	};
	struct pcb_wait w = { .timeout_ns = timeout_ns };
	int ret;

	switch (what) {
	case R_PUBLISH:
		return pcbt_publish(self->pfd, self->handle, msg, LEN, 0,
				    timeout_ns, NULL);
	case R_ATOMIC_BATCH:
		b.flags = PCB_PUB_ATOMIC;
		/* fall through */
	case R_PLAIN_BATCH:
		ret = pcbt_ioctl(self->pfd, PCB_IOC_PUBLISH_BATCH, &b);
		if (what == R_PLAIN_BATCH && !ret) {
			EXPECT_EQ(0U, b.published);
			ret = e.result;
		}
		return ret;
	default:
		pcbt_ring_drain(&self->ring);
		return pcbt_ioctl(self->ring.fd, PCB_IOC_WAIT, &w);
	}
}

/*
 * The bug this guards against: each restart started the timeout over, so
 * a call timed out only once the task work stopped for a whole timeout.
 * Here the call must time out while the feeder still feeds, after several
 * restarts, and not before its timeout.
 */
static void restart_keeps_deadline(struct __test_metadata *_metadata,
				   FIXTURE_DATA(wait) *self,
				   enum restart_call what)
{
	const __u64 timeout = 300 * PCBT_MS;
	struct feeder f;
	unsigned int completed;
	bool fed_all;
	__u64 t0, dt;
	int ret;

	if (what != R_WAIT)
		ASSERT_LT(0, fill(self->pfd, self->handle));
	ret = feeder_start(&f);
	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "io_uring is not available: %s", strerror(-ret));
	ASSERT_EQ(0, ret);

	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	ret = restart_call(_metadata, self, what, timeout);
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	fed_all = feeder_done(&f);
	completed = feeder_completed(&f);
	feeder_stop(&f);

	TH_LOG("timed out after %.0f ms, %u reads completed meanwhile",
	       dt / 1e6, completed);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_LE(timeout, dt);
	EXPECT_FALSE(fed_all) TH_LOG("the deadline moved with each restart");
	EXPECT_LE(3U, completed) TH_LOG("no task work interrupted the call");
}

TEST_F(wait, restarted_publish_keeps_deadline)
{
	restart_keeps_deadline(_metadata, self, R_PUBLISH);
}

TEST_F(wait, restarted_atomic_batch_keeps_deadline)
{
	restart_keeps_deadline(_metadata, self, R_ATOMIC_BATCH);
}

TEST_F(wait, restarted_plain_batch_keeps_deadline)
{
	restart_keeps_deadline(_metadata, self, R_PLAIN_BATCH);
}

TEST_F(wait, restarted_wait_keeps_deadline)
{
	restart_keeps_deadline(_metadata, self, R_WAIT);
}

TEST_HARNESS_MAIN
