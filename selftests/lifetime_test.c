// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetimes: endpoints that close, die or unmap while others publish, and
 * topics deleted under a waiting publisher.  "The endpoint lives until its
 * last file descriptor is closed and its ring is unmapped."
 */
#include "pcb_util.h"

#define SCHEMA		0x11fe
#define LEN		64

FIXTURE(life) {
	int pfd;
	__u32 handle;
	char name[PCB_NAME_MAX];
};

FIXTURE_SETUP(life)
{
	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "life");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
}

FIXTURE_TEARDOWN(life)
{
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

/*
 * nr_subscribers once it reaches @want, or what it is after @ms.  The
 * header implies the release is immediate; a delay is worth a note.
 */
static long long subs_within(int fd, const char *name, long long want,
			     unsigned int ms)
{
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC), dt;
	long long n;

	while ((n = pcbt_nr_subs(fd, name)) != want && ms--)
		pcbt_sleep_ms(1);
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	if (dt > 50 * PCBT_MS)
		fprintf(stderr, "# nr_subscribers took %.1f ms to become %lld\n",
			dt / 1e6, n);
	return n;
}

static int sub_ring(const char *name, __u32 size, struct pcbt_ring *r)
{
	int fd = pcbt_ring_open(size, r);

	if (fd < 0)
		return fd;
	return pcbt_subscribe(fd, name, SCHEMA, 0, NULL);
}

struct bg_pubs {
	int fd;
	__u32 handle;
	unsigned int n;
	__u64 timeout_ns;
	unsigned int sent;	/* atomic */
	int err;
	unsigned int err_at;
	int done;		/* atomic */
};

static void *publish_many(void *p)
{
	struct bg_pubs *b = p;
	static const char msg[LEN];
	unsigned int i;

	for (i = 0; i < b->n; i++) {
		int ret = pcbt_publish(b->fd, b->handle, msg, LEN, 0,
				       b->timeout_ns, NULL);

		if (ret && !b->err) {
			b->err = ret;
			b->err_at = i;
		}
		__atomic_store_n(&b->sent, i + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool wait_done(struct bg_pubs *b, unsigned int ms)
{
	while (!__atomic_load_n(&b->done, __ATOMIC_ACQUIRE) && ms--)
		pcbt_sleep_ms(1);
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

TEST_F_TIMEOUT(life, close_while_publishing, 120)
{
	struct bg_pubs b = {
		.fd = self->pfd, .handle = self->handle, .n = 20000,
		.timeout_ns = 20 * PCBT_SEC,
	};
	struct pcbt_ring keep, gone;
	unsigned int got = 0;
	pthread_t t;

	ASSERT_EQ(0, sub_ring(self->name, 64 * 1024, &keep));
	ASSERT_EQ(0, sub_ring(self->name, 8192, &gone));
	ASSERT_EQ(2LL, pcbt_nr_subs(self->pfd, self->name));
	pthread_create(&t, NULL, publish_many, &b);

	/* Read a while from both, then drop one in the middle of it. */
	while (got < 2000) {
		if (!pcbt_ring_next(&keep, 10 * PCBT_SEC))
			break;
		pcbt_ring_pop(&keep);
		pcbt_ring_release(&keep);
		pcbt_ring_drain(&gone);
		got++;
	}
	ASSERT_EQ(2000U, got);
	pcbt_ring_close(&gone);
	EXPECT_EQ(1LL, subs_within(self->pfd, self->name, 1, 2000));

	while (got < b.n) {
		if (!pcbt_ring_next(&keep, 10 * PCBT_SEC))
			break;
		pcbt_ring_pop(&keep);
		pcbt_ring_release(&keep);
		got++;
	}
	pthread_join(t, NULL);
	EXPECT_EQ(0, b.err) TH_LOG("publish %u failed", b.err_at);
	EXPECT_EQ(20000U, got);
	pcbt_ring_close(&keep);
	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));
}

TEST_F(life, close_frees_blocked_publisher)
{
	struct bg_pubs b = {
		.fd = self->pfd, .handle = self->handle, .n = 1000,
		.timeout_ns = 0,
	};
	struct pcbt_ring full;
	pthread_t t;
	int i;

	ASSERT_EQ(0, sub_ring(self->name, 4096, &full));
	pthread_create(&t, NULL, publish_many, &b);
	for (i = 0; i < 10000 && !(pcbt_ring_flags(&full) &
				   PCB_RING_PUB_WAITING); i++)
		pcbt_sleep_ms(1);
	ASSERT_FALSE(wait_done(&b, 0));

	/* The full ring's endpoint goes away: the publisher runs free. */
	pcbt_ring_close(&full);
	ASSERT_TRUE(wait_done(&b, 10000));
	pthread_join(t, NULL);
	EXPECT_EQ(0, b.err) TH_LOG("publish %u failed", b.err_at);
	EXPECT_EQ(0LL, pcbt_nr_subs(self->pfd, self->name));
}

/* A subscriber process that reads slowly until it is killed. */
static void slow_subscriber(const char *name, int ready)
{
	struct pcbt_ring r;
	char c = 1;

	if (sub_ring(name, 8192, &r))
		_exit(1);
	if (write(ready, &c, 1) != 1)
		_exit(1);
	for (;;) {
		if (pcbt_ring_next(&r, PCBT_SEC)) {
			pcbt_ring_pop(&r);
			pcbt_ring_release(&r);
		}
		pcbt_sleep_ms(1);
	}
}

TEST_F_TIMEOUT(life, subscriber_killed_mid_stream, 120)
{
	struct bg_pubs b = {
		.fd = self->pfd, .handle = self->handle, .n = 5000,
		.timeout_ns = 20 * PCBT_SEC,
	};
	int pipefd[2], status;
	pthread_t t;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pipefd[0]);
		slow_subscriber(self->name, pipefd[1]);
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);
	EXPECT_EQ(1LL, pcbt_nr_subs(self->pfd, self->name));

	pthread_create(&t, NULL, publish_many, &b);
	while (__atomic_load_n(&b.sent, __ATOMIC_ACQUIRE) < 500)
		pcbt_sleep_ms(1);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));

	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));
	ASSERT_TRUE(wait_done(&b, 60000));
	pthread_join(t, NULL);
	EXPECT_EQ(0, b.err) TH_LOG("publish %u failed", b.err_at);
	EXPECT_EQ((long long)b.n, pcbt_published(self->pfd, self->name));
}

TEST_F(life, exit_without_closing)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct pcbt_ring r;

		_exit(sub_ring(self->name, 4096, &r) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));
}

TEST_F(life, closed_fd_mapped_ring_stays_subscribed)
{
	const __u64 rec = PCB_REC_SIZE(sizeof(struct pcb_record) + LEN);
	const struct pcb_record *r0, *r1;
	struct pcbt_ring r;
	char msg[LEN];

	ASSERT_EQ(0, sub_ring(self->name, 8192, &r));
	close(r.fd);
	r.fd = -1;

	/* Still an endpoint: subscribed, and its ring is still fed. */
	EXPECT_EQ(1LL, pcbt_nr_subs(self->pfd, self->name));
	memset(msg, 'm', LEN);
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN, 0,
				  10 * PCBT_SEC, NULL));
	EXPECT_EQ(rec, pcbt_prod_pos(&r));
	r0 = pcbt_ring_peek(&r);
	ASSERT_NE(NULL, r0);
	EXPECT_EQ(1ULL, r0->seq);
	EXPECT_EQ(0, memcmp(pcbt_payload(r0), msg, LEN));

	/* Partly unmapped is still mapped. */
	munmap(r.cons, r.setup.page_size);
	munmap((void *)r.hdr, r.setup.page_size);
	r.cons = NULL;
	r.hdr = NULL;
	EXPECT_EQ(1LL, pcbt_nr_subs(self->pfd, self->name));
	memset(msg, 'n', LEN);
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN, 0,
				  10 * PCBT_SEC, NULL));
	r1 = (const void *)(r.data + rec);
	EXPECT_EQ(2ULL, pcbt_load_acquire(&r1->seq));
	EXPECT_EQ(0, memcmp(pcbt_payload(r1), msg, LEN));

	/* The last mapping goes: so does the endpoint. */
	pcbt_ring_unmap(&r);
	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN, 0,
				  10 * PCBT_SEC, NULL));
}

TEST_F(life, forked_copy_keeps_endpoint)
{
	struct pcbt_ring r;
	int status;
	pid_t pid;

	ASSERT_EQ(0, sub_ring(self->name, 8192, &r));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child drops its references and leaves. */
		pcbt_ring_close(&r);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(1LL, pcbt_nr_subs(self->pfd, self->name));
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "x", 1, 0,
				  10 * PCBT_SEC, NULL));
	EXPECT_NE(NULL, pcbt_ring_next(&r, PCBT_SEC));
	pcbt_ring_close(&r);
	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));
}

TEST_F(life, delete_frees_blocked_publisher)
{
	struct bg_pubs b = {
		.fd = self->pfd, .handle = self->handle, .n = 1,
		.timeout_ns = 0,
	};
	struct pcbt_ring full;
	unsigned int n = 0;
	pthread_t t;
	int i;

	ASSERT_EQ(0, sub_ring(self->name, 4096, &full));
	while (!pcbt_publish(self->pfd, self->handle, "f", 1,
			     PCB_PUB_NONBLOCK, 0, NULL))
		n++;
	pthread_create(&t, NULL, publish_many, &b);
	for (i = 0; i < 10000 && !(pcbt_ring_flags(&full) &
				   PCB_RING_PUB_WAITING); i++)
		pcbt_sleep_ms(1);
	ASSERT_FALSE(wait_done(&b, 0));

	ASSERT_EQ(0, pcbt_delete(self->pfd, self->name));
	ASSERT_TRUE(wait_done(&b, 10000)) TH_LOG("publisher still asleep");
	pthread_join(t, NULL);
	EXPECT_EQ(-EIDRM, b.err);
	/* What was delivered before stays readable. */
	EXPECT_EQ(n, pcbt_ring_drain(&full));
	pcbt_ring_close(&full);
}

TEST_F_TIMEOUT(life, many_endpoints, 300)
{
	enum { ROUNDS = 1000, AT_ONCE = 200 };
	static struct pcbt_ring rings[AT_ONCE];
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	int i;

	for (i = 0; i < ROUNDS; i++) {
		struct pcbt_ring r;
		const struct pcb_record *rec;

		ASSERT_EQ(0, sub_ring(self->name, 4096, &r)) TH_LOG("round %d", i);
		ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, &i,
					  sizeof(i), 0, 10 * PCBT_SEC, NULL));
		rec = pcbt_ring_peek(&r);
		ASSERT_NE(NULL, rec);
		ASSERT_EQ(0, memcmp(pcbt_payload(rec), &i, sizeof(i)));
		pcbt_ring_close(&r);
	}
	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));

	for (i = 0; i < AT_ONCE; i++) {
		ASSERT_EQ(0, sub_ring(self->name, 4096, &rings[i]))
			TH_LOG("endpoint %d", i);
	}
	EXPECT_EQ((long long)AT_ONCE, pcbt_nr_subs(self->pfd, self->name));
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "all", 3, 0,
				  10 * PCBT_SEC, NULL));
	for (i = 0; i < AT_ONCE; i++) {
		EXPECT_NE(NULL, pcbt_ring_peek(&rings[i]));
		pcbt_ring_close(&rings[i]);
	}
	EXPECT_EQ(0LL, subs_within(self->pfd, self->name, 0, 2000));
	TH_LOG("%d + %d endpoints in %.2f s", ROUNDS, AT_ONCE,
	       (pcbt_now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
}

TEST_HARNESS_MAIN
