// SPDX-License-Identifier: GPL-2.0
/*
 * A consumer that writes nonsense into its consumer page.  The kernel must
 * not crash or corrupt anything, must break only that ring (PCB_RING_BROKEN,
 * EPIPE, POLLERR), and must keep serving the other subscribers and the
 * publishers of the same topic.
 */
#include "pcb_util.h"

#define SCHEMA		0xbad
#define LEN		200
#define VICTIM		4096
#define GOOD		(256 * 1024)

FIXTURE(hostile) {
	int pfd;
	__u32 handle;
	char name[PCB_NAME_MAX];
	struct pcbt_ring victim;	/* the ring we abuse */
	struct pcbt_ring good;		/* a well-behaved subscriber */
	__u64 good_seq;			/* last seq the good one read */
};

static int sub_ring(const char *name, __u32 size, __u32 flags,
		    struct pcbt_ring *r)
{
	int fd = pcbt_ring_open(size, r);

	if (fd < 0)
		return fd;
	return pcbt_subscribe(fd, name, SCHEMA, flags, NULL);
}

FIXTURE_SETUP(hostile)
{
	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "hostile");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
	ASSERT_EQ(0, sub_ring(self->name, VICTIM, 0, &self->victim));
	ASSERT_EQ(0, sub_ring(self->name, GOOD, 0, &self->good));
}

FIXTURE_TEARDOWN(hostile)
{
	pcbt_ring_close(&self->victim);
	pcbt_ring_close(&self->good);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

static int pub(FIXTURE_DATA(hostile) *self, __u32 flags)
{
	static const unsigned char msg[LEN];

	return pcbt_publish(self->pfd, self->handle, msg, LEN, flags,
			    10 * PCBT_SEC, NULL);
}

/* The good subscriber reads everything pending, checking the sequence. */
static const char *good_reads(FIXTURE_DATA(hostile) *self, unsigned int *n)
{
	const struct pcb_record *rec;

	*n = 0;
	while ((rec = pcbt_ring_peek(&self->good))) {
		if (rec->seq != ++self->good_seq)
			return "good subscriber saw a sequence gap";
		pcbt_ring_pop(&self->good);
		(*n)++;
	}
	pcbt_ring_release(&self->good);
	return self->good.corrupt;
}

static bool broken(const struct pcbt_ring *r)
{
	return pcbt_ring_flags(r) & PCB_RING_BROKEN;
}

/* Consumes and releases @n messages through the victim, moving prod_pos. */
static void advance(FIXTURE_DATA(hostile) *self, int n)
{
	while (n--) {
		unsigned int got;

		pub(self, PCB_PUB_NONBLOCK);
		pcbt_ring_drain(&self->victim);
		good_reads(self, &got);
	}
}

/* Every message so far reached the good subscriber, in order. */
static void expect_good_has_all(struct __test_metadata *_metadata,
				FIXTURE_DATA(hostile) *self)
{
	unsigned int got;

	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ((long long)self->good_seq,
		  pcbt_published(self->pfd, self->name));
}

/* What a broken ring must look like from every side. */
static void check_broken(struct __test_metadata *_metadata,
			 FIXTURE_DATA(hostile) *self)
{
	struct pcb_wait w = { .timeout_ns = 10 * PCBT_SEC };
	struct pollfd pfd = { .fd = self->victim.fd, .events = POLLIN };
	char other[PCB_NAME_MAX];
	unsigned int got;
	__u64 prod;
	int i;

	ASSERT_TRUE(broken(&self->victim));
	/* What was published so far reached the good subscriber. */
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ((long long)self->good_seq,
		  pcbt_published(self->pfd, self->name));

	EXPECT_EQ(-EPIPE, pcbt_ioctl(self->victim.fd, PCB_IOC_WAIT, &w));
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_TRUE(!!(pfd.revents & POLLERR));

	pcbt_name(other, "other");
	ASSERT_EQ(0, pcbt_create(self->pfd, other, SCHEMA, LEN, 0700, NULL));
	EXPECT_EQ(-EPIPE, pcbt_subscribe(self->victim.fd, other, SCHEMA, 0,
					 NULL));

	/* No more deliveries to it, no push back from it. */
	prod = pcbt_prod_pos(&self->victim);
	for (i = 0; i < 100; i++) {
		/* Braces: else the harness bails out only after the loop. */
		ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK)) TH_LOG("message %d", i);
	}
	EXPECT_EQ(prod, pcbt_prod_pos(&self->victim));
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ(100U, got);
	EXPECT_EQ((long long)self->good_seq,
		  pcbt_published(self->pfd, self->name));
}

TEST_F(hostile, cons_pos_ahead_of_prod_pos)
{
	unsigned int got;

	ASSERT_EQ(0, pub(self, 0));
	pcbt_store_release(&self->victim.cons->cons_pos,
			   pcbt_prod_pos(&self->victim) + 16 * VICTIM);
	/* The next publish finds the nonsense; it must not block or fail. */
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ(2U, got);
	check_broken(_metadata, self);
}

TEST_F(hostile, cons_pos_just_ahead)
{
	ASSERT_EQ(0, pub(self, 0));
	pcbt_store_release(&self->victim.cons->cons_pos,
			   pcbt_prod_pos(&self->victim) + 8);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	check_broken(_metadata, self);
}

TEST_F(hostile, cons_pos_too_far_behind)
{
	__u64 prod;

	advance(self, 60);	/* prod_pos well past 2 * VICTIM */
	prod = pcbt_prod_pos(&self->victim);
	ASSERT_LT(3ULL * VICTIM, prod);
	pcbt_store_release(&self->victim.cons->cons_pos, prod - VICTIM - 8);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	check_broken(_metadata, self);
}

/*
 * Positions are free-running: modulo 2^64, ~0 - 7 is 8 bytes behind 0.
 * The header does not say whether that counts as behind or as ahead, so
 * either answer is accepted; the publisher must not suffer from it.
 */
TEST_F(hostile, cons_pos_just_below_wrap)
{
	unsigned int got;

	pcbt_store_release(&self->victim.cons->cons_pos, ~0ULL - 7);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	TH_LOG("cons_pos 2^64 - 8 with prod_pos 0 %s the ring",
	       broken(&self->victim) ? "broke" : "did not break");
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ(1U, got);
}

TEST_F(hostile, cons_pos_half_the_space_away)
{
	pcbt_store_release(&self->victim.cons->cons_pos,
			   pcbt_prod_pos(&self->victim) + (1ULL << 63));
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	check_broken(_metadata, self);
}

TEST_F(hostile, cons_pos_exactly_full_is_legal)
{
	const struct pcb_record *rec;
	__u64 prod;

	advance(self, 60);
	prod = pcbt_prod_pos(&self->victim);
	/* data_size behind: a full ring, odd but legal. */
	pcbt_store_release(&self->victim.cons->cons_pos, prod - VICTIM);
	EXPECT_EQ(-EAGAIN, pub(self, PCB_PUB_NONBLOCK));
	EXPECT_FALSE(broken(&self->victim));
	pcbt_store_release(&self->victim.cons->cons_pos, prod);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	rec = pcbt_ring_peek(&self->victim);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ((__u32)LEN, rec->payload_len);
	EXPECT_EQ(61ULL, rec->seq);
}

TEST_F(hostile, misaligned_cons_pos_hurts_only_itself)
{
	const struct pcb_record *rec;
	unsigned int got;
	__u64 prod;
	int i;

	advance(self, 10);
	prod = pcbt_prod_pos(&self->victim);
	pcbt_store_release(&self->victim.cons->cons_pos, prod - 3);
	for (i = 0; i < 5; i++) {
		int ret = pub(self, PCB_PUB_NONBLOCK);

		/* Either it is treated as three bytes in use, or broken. */
		ASSERT_EQ(0, ret) TH_LOG("message %d", i);
	}
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ(5U, got);
	TH_LOG("misaligned cons_pos %s the ring",
	       broken(&self->victim) ? "broke" : "did not break");
	if (broken(&self->victim))
		return;
	/* Back to sense: the records written meanwhile are intact. */
	pcbt_store_release(&self->victim.cons->cons_pos, self->victim.pos);
	for (i = 0; i < 5; i++) {
		rec = pcbt_ring_peek(&self->victim);
		ASSERT_NE(NULL, rec) TH_LOG("%s", self->victim.corrupt ?: "");
		EXPECT_EQ(11ULL + i, rec->seq);
		pcbt_ring_pop(&self->victim);
	}
	pcbt_ring_release(&self->victim);
}

TEST_F(hostile, consumer_flag_garbage_is_harmless)
{
	struct pcb_wait w = { .timeout_ns = 10 * PCBT_MS };
	struct pollfd pfd = { .fd = self->victim.fd, .events = POLLIN };
	unsigned int got;
	int i;

	self->victim.cons->flags = 0xffffffff;
	memset(self->victim.cons->reserved0, 0xff,
	       sizeof(self->victim.cons->reserved0));
	self->victim.cons->reserved1 = 0xffffffff;
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(0, pub(self, 0));
		ASSERT_EQ(1U, pcbt_ring_drain(&self->victim));
		self->victim.cons->flags = i & 1 ? 0xffffffff : 0xfffffffe;
	}
	EXPECT_EQ(-ETIMEDOUT, pcbt_ioctl(self->victim.fd, PCB_IOC_WAIT, &w));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_EQ(0, pub(self, 0));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);
	EXPECT_FALSE(broken(&self->victim));
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ(51U, got);
}

struct bg_pub {
	FIXTURE_DATA(hostile) *self;
	int done;		/* atomic */
	int ret;
};

static void *bg_publish(void *p)
{
	struct bg_pub *b = p;

	b->ret = pub(b->self, 0);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F(hostile, breaking_a_full_ring_frees_its_publisher)
{
	struct bg_pub b = { .self = self };
	pthread_t t;
	unsigned int got;
	int i, n = 0;

	while (!pub(self, PCB_PUB_NONBLOCK))
		n++;
	pthread_create(&t, NULL, bg_publish, &b);
	for (i = 0; i < 10000 && !(pcbt_ring_flags(&self->victim) &
				   PCB_RING_PUB_WAITING); i++)
		pcbt_sleep_ms(1);
	EXPECT_FALSE(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE));

	pcbt_store_release(&self->victim.cons->cons_pos,
			   pcbt_prod_pos(&self->victim) + 16 * VICTIM);
	pcbt_ioctl_val(self->victim.fd, PCB_IOC_NOTIFY, 0);
	for (i = 0; i < 5000 && !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE);
	     i++)
		pcbt_sleep_ms(1);
	ASSERT_TRUE(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE))
		TH_LOG("publisher still blocked by a broken ring");
	pthread_join(t, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_TRUE(broken(&self->victim));
	EXPECT_EQ(NULL, good_reads(self, &got));
	EXPECT_EQ((unsigned int)n + 1, got);
}

/*
 * A ring stays broken "the only way out is a new endpoint", and a broken
 * ring takes nothing, so it must never hold a publisher back, even once
 * its consumer writes a position that makes sense again (a full ring).
 */
TEST_F(hostile, broken_ring_never_pushes_back)
{
	static const unsigned char msg[LEN];
	__u64 cons = pcbt_load_acquire(&self->victim.cons->cons_pos);
	int i, n = 0;

	while (!pub(self, PCB_PUB_NONBLOCK))
		n++;
	ASSERT_LT(0, n);
	pcbt_store_release(&self->victim.cons->cons_pos,
			   pcbt_prod_pos(&self->victim) + 16 * VICTIM);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	ASSERT_TRUE(broken(&self->victim));

	/* Sense again: exactly the position of a full ring. */
	pcbt_store_release(&self->victim.cons->cons_pos, cons);
	for (i = 0; i < 5; i++) {
		EXPECT_EQ(0, pub(self, PCB_PUB_NONBLOCK)) TH_LOG("message %d", i);
	}
	/* Nor wait for it. */
	EXPECT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN, 0,
				  200 * PCBT_MS, NULL));
	EXPECT_TRUE(broken(&self->victim));
	expect_good_has_all(_metadata, self);
}

TEST_F(hostile, lossy_ring_breaks_too)
{
	struct pcbt_ring lossy;
	__u64 prod;

	ASSERT_EQ(0, sub_ring(self->name, VICTIM, PCB_SUB_LOSSY, &lossy));
	ASSERT_EQ(0, pub(self, 0));
	pcbt_store_release(&lossy.cons->cons_pos, 12345);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	EXPECT_TRUE(broken(&lossy));
	prod = pcbt_prod_pos(&lossy);
	ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK));
	EXPECT_EQ(prod, pcbt_prod_pos(&lossy));
	EXPECT_FALSE(broken(&self->victim));
	pcbt_ring_close(&lossy);
}

static __u64 xorshift(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Random positions, near and far, against fresh rings: nothing may break
 * but the abused ring itself.
 */
TEST_F_TIMEOUT(hostile, random_cons_pos, 120)
{
	__u64 seed = 0x9e3779b97f4a7c15ULL ^ (__u64)getpid();
	unsigned int got, total = 0, rings = 1, i;

	for (i = 0; i < 2000; i++) {
		__u64 r = xorshift(&seed), prod, pos;
		int ret;

		if (broken(&self->victim)) {
			pcbt_ring_close(&self->victim);
			ASSERT_EQ(0, sub_ring(self->name, VICTIM, i & 1 ?
					      PCB_SUB_LOSSY : 0,
					      &self->victim));
			rings++;
		}
		prod = pcbt_prod_pos(&self->victim);
		switch (r % 4) {
		case 0:
			pos = r;
			break;
		case 1:
			pos = prod + (r >> 8) % (2 * VICTIM) - VICTIM;
			break;
		case 2:
			pos = prod - (r >> 8) % 64;
			break;
		default:
			pos = prod;
			break;
		}
		pcbt_store_release(&self->victim.cons->cons_pos, pos);
		ret = pub(self, PCB_PUB_NONBLOCK);
		ASSERT_TRUE(ret == 0 || ret == -EAGAIN) TH_LOG("ret %d", ret);
		if (!ret)
			total++;
		ASSERT_EQ(NULL, good_reads(self, &got));
	}
	EXPECT_EQ((long long)self->good_seq,
		  pcbt_published(self->pfd, self->name));
	EXPECT_EQ((__u64)total, self->good_seq);
	TH_LOG("%u rings broken in 2000 rounds", rings - 1);
}

/*
 * Consumers that abuse their mapping: unmapping it while reading, sharing
 * it with a forked copy, mapping it twice, protecting or discarding its
 * pages.  Whatever happens to such a consumer, the publishers of its
 * topics and their other subscribers must not notice.
 */

/* Between a test and its children: MAP_SHARED, so both see the words. */
struct shared {
	int ready;
	int stop;
	unsigned long long seen[2];
	unsigned long long resyncs[2];
};

static struct shared *shared_area(void)
{
	void *p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static bool wait_flag(const int *flag, unsigned int ms)
{
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && ms--)
		pcbt_sleep_ms(1);
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* Runs @fn(@arg) in a child process; its pid, or -errno. */
static pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (!pid)
		_exit(fn(arg));
	return pid < 0 ? -errno : pid;
}

/* Reaps @pid within @ms: its wait status, or -1 (then it is killed). */
static int reap(pid_t pid, unsigned int ms)
{
	int status;

	while (ms--) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		pcbt_sleep_ms(1);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/*
 * Publishes @n messages, each allowed 10 s to find room, while the good
 * subscriber reads along (and the fixture's victim, when @drain_victim).
 */
static void publish_along(struct __test_metadata *_metadata,
			  FIXTURE_DATA(hostile) *self, int n,
			  bool drain_victim)
{
	unsigned int got;
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, pub(self, 0)) TH_LOG("message %d of %d", i, n);
		if (drain_victim)
			pcbt_ring_drain(&self->victim);
		ASSERT_EQ(NULL, good_reads(self, &got));
	}
}

/* Waits for the topic to have @n subscribers again; the count seen. */
static long long subs_within(FIXTURE_DATA(hostile) *self, long long n,
			     unsigned int ms)
{
	long long subs;

	while ((subs = pcbt_nr_subs(self->pfd, self->name)) != n && ms--)
		pcbt_sleep_ms(1);
	return subs;
}

struct mapped_child {
	const char *name;
	struct shared *sh;
	struct pcbt_ring ring;
	int wait_ret;
};

/* Reads the ring as fast as it can, until the ring is taken away. */
static void *spin_reader(void *p)
{
	struct mapped_child *c = p;

	for (;;) {
		if (!pcbt_ring_peek(&c->ring))
			continue;
		pcbt_ring_pop(&c->ring);
		pcbt_ring_release(&c->ring);
		__atomic_add_fetch(&c->sh->seen[0], 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int child_ring(struct mapped_child *c, __u32 flags)
{
	int fd = pcbt_ring_open(GOOD, &c->ring);

	if (fd < 0)
		return 10;
	if (pcbt_subscribe(fd, c->name, SCHEMA, flags, NULL))
		return 11;
	return 0;
}

/* Unmaps the ring under a reading thread: the child dies of SIGSEGV. */
static int unmap_under_reader(void *arg)
{
	struct mapped_child *c = arg;
	pthread_t t;
	int ret = child_ring(c, 0);

	if (ret)
		return ret;
	__atomic_store_n(&c->sh->ready, 1, __ATOMIC_RELEASE);
	pthread_create(&t, NULL, spin_reader, c);
	while (__atomic_load_n(&c->sh->seen[0], __ATOMIC_ACQUIRE) < 20)
		pcbt_sleep_ms(1);
	/* Not pcbt_ring_unmap(): the reader must keep its pointers. */
	munmap(c->ring.cons, c->ring.setup.page_size);
	munmap((void *)c->ring.hdr, c->ring.setup.page_size);
	munmap((void *)c->ring.data, 2 * c->ring.size);
	pcbt_sleep_ms(10000);
	return 12;	/* the reader survived reading unmapped memory? */
}

TEST_F_TIMEOUT(hostile, ring_unmapped_under_a_reader, 120)
{
	struct mapped_child c = { .name = self->name, .sh = shared_area() };
	int status;
	pid_t pid;

	ASSERT_NE(NULL, c.sh);
	pid = spawn(unmap_under_reader, &c);
	ASSERT_LT(0, pid);
	ASSERT_TRUE(wait_flag(&c.sh->ready, 10000));
	EXPECT_EQ(3LL, pcbt_nr_subs(self->pfd, self->name));

	/* Publishers carry on while the child reads, unmaps and dies. */
	publish_along(_metadata, self, 300, true);
	status = reap(pid, 20000);
	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
	EXPECT_LE(20ULL, c.sh->seen[0]);

	/* Its endpoint went with it; the others have every message. */
	EXPECT_EQ(2LL, subs_within(self, 2, 2000));
	publish_along(_metadata, self, 100, true);
	expect_good_has_all(_metadata, self);
	EXPECT_FALSE(broken(&self->good));
}

static void *waiter(void *p)
{
	struct mapped_child *c = p;
	struct pcb_wait w = { .timeout_ns = 0 };	/* no limit */

	c->wait_ret = pcbt_ioctl(c->ring.fd, PCB_IOC_WAIT, &w);
	return NULL;
}

/*
 * Unmaps the ring while a thread waits in PCB_IOC_WAIT: the wait ends
 * normally, and a new mapping finds the record where it was.
 */
static int unmap_under_waiter(void *arg)
{
	struct mapped_child *c = arg;
	struct pollfd pfd;
	struct pcb_ring_setup rs;
	const struct pcb_record *rec;
	pthread_t t;
	int ret = child_ring(c, 0);

	if (ret)
		return ret;
	rs = c->ring.setup;
	pthread_create(&t, NULL, waiter, c);
	pcbt_sleep_ms(50);
	pcbt_ring_unmap(&c->ring);
	__atomic_store_n(&c->sh->ready, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	if (c->wait_ret)
		return 20;
	pfd = (struct pollfd){ .fd = c->ring.fd, .events = POLLIN };
	if (poll(&pfd, 1, 1000) != 1 || pfd.revents != POLLIN)
		return 21;
	if (pcbt_ring_map(c->ring.fd, &rs, &c->ring))
		return 22;
	rec = pcbt_ring_peek(&c->ring);
	if (!rec || rec->payload_len != LEN)
		return 23;
	return 0;
}

TEST_F(hostile, ring_unmapped_under_a_waiter)
{
	struct mapped_child c = { .name = self->name, .sh = shared_area() };
	int status;
	pid_t pid;

	ASSERT_NE(NULL, c.sh);
	pid = spawn(unmap_under_waiter, &c);
	ASSERT_LT(0, pid);
	ASSERT_TRUE(wait_flag(&c.sh->ready, 10000));
	publish_along(_metadata, self, 1, true);
	status = reap(pid, 20000);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(2LL, subs_within(self, 2, 2000));
	publish_along(_metadata, self, 50, true);
	expect_good_has_all(_metadata, self);
}

/*
 * One of two processes sharing the victim's mapping after fork(): both
 * read, both store their own idea of cons_pos.  Positions that lag can
 * go back or make no sense; a reader that finds nonsense starts over at
 * prod_pos.
 */
static int racing_reader(struct pcbt_ring *r, struct shared *sh, int who)
{
	const struct pcb_record *rec;

	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		rec = pcbt_ring_peek(r);
		if (r->corrupt) {
			r->corrupt = NULL;
			r->pos = pcbt_prod_pos(r);
			sh->resyncs[who]++;
		}
		if (rec) {
			pcbt_ring_pop(r);
			sh->seen[who]++;
		}
		pcbt_ring_release(r);
	}
	return 0;
}

struct fork_readers {
	FIXTURE_DATA(hostile) *self;
	struct shared *sh;
};

/* The first child forks the second: three processes share the mapping. */
static int fork_and_read(void *arg)
{
	struct fork_readers *f = arg;
	pid_t pid = fork();
	int ret, status;

	if (pid < 0)
		return 30;
	__atomic_add_fetch(&f->sh->ready, 1, __ATOMIC_RELEASE);
	ret = racing_reader(&f->self->victim, f->sh, !pid);
	if (!pid)
		_exit(ret);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 31;
	return ret ?: WEXITSTATUS(status);
}

TEST_F_TIMEOUT(hostile, forked_consumers_share_a_ring, 120)
{
	struct fork_readers f = { .self = self, .sh = shared_area() };
	const struct pcb_record *rec;
	int status, ms;
	pid_t pid;

	ASSERT_NE(NULL, f.sh);
	pid = spawn(fork_and_read, &f);
	ASSERT_LT(0, pid);
	for (ms = 0; ms < 10000 &&
	     __atomic_load_n(&f.sh->ready, __ATOMIC_ACQUIRE) < 2; ms++)
		pcbt_sleep_ms(1);
	ASSERT_EQ(2, __atomic_load_n(&f.sh->ready, __ATOMIC_ACQUIRE));

	/* The victim is reliable: publishers wait for the racing readers. */
	publish_along(_metadata, self, 400, false);
	__atomic_store_n(&f.sh->stop, 1, __ATOMIC_RELEASE);
	status = reap(pid, 20000);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	TH_LOG("readers saw %llu and %llu records, started over %llu and %llu times, ring %s",
	       f.sh->seen[0], f.sh->seen[1], f.sh->resyncs[0],
	       f.sh->resyncs[1], broken(&self->victim) ? "broken" : "intact");
	EXPECT_LT(0ULL, f.sh->seen[0] + f.sh->seen[1]);
	expect_good_has_all(_metadata, self);

	/* The ring is still the endpoint's: broken for good, or usable. */
	if (broken(&self->victim)) {
		check_broken(_metadata, self);
		return;
	}
	self->victim.pos = pcbt_prod_pos(&self->victim);
	pcbt_ring_release(&self->victim);
	publish_along(_metadata, self, 1, false);
	rec = pcbt_ring_next(&self->victim, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(self->good_seq, rec->seq);
}

/* Two complete mappings of one ring: one ring, seen twice. */
TEST_F(hostile, ring_mapped_twice)
{
	const struct pcb_ring_setup *rs = &self->victim.setup;
	struct pcbt_ring *a = &self->victim, twin;
	const struct pcb_record *rec;
	unsigned char *all, *copy2;
	__u64 seq = 0;
	int i;

	ASSERT_EQ(0, pcbt_ring_map(a->fd, rs, &twin));
	ASSERT_NE((void *)a->data, (void *)twin.data);
	publish_along(_metadata, self, 3, false);
	EXPECT_EQ(pcbt_prod_pos(a), pcbt_prod_pos(&twin));
	EXPECT_EQ(0, memcmp(a->data, twin.data, 2 * a->size));

	/* Consumed through one mapping, released through the other. */
	for (i = 0; i < 60; i++) {
		struct pcbt_ring *r = i & 1 ? &twin : a;

		r->pos = pcbt_load_acquire(&r->cons->cons_pos);
		rec = pcbt_ring_peek(r);
		ASSERT_NE(NULL, rec) TH_LOG("record %d: %s", i,
					    r->corrupt ?: "none");
		EXPECT_EQ(++seq, rec->seq);
		pcbt_ring_pop(r);
		pcbt_ring_release(r);
		/* The other mapping sees the position at once. */
		EXPECT_EQ(r->pos, pcbt_load_acquire(&(i & 1 ? a : &twin)->cons->cons_pos));
		publish_along(_metadata, self, 1, false);	/* wraps */
	}
	EXPECT_FALSE(broken(a));

	/* One read-only mapping of everything: the same pages again. */
	all = pcbt_mmap(a->fd, rs->mmap_size, PROT_READ, MAP_SHARED, 0);
	ASSERT_NE(MAP_FAILED, all);
	EXPECT_EQ(a->cons->cons_pos,
		  ((struct pcb_ring_consumer *)(all + rs->cons_offset))->cons_pos);
	EXPECT_EQ(0, memcmp(all + rs->data_offset, a->data, 2 * a->size));
	EXPECT_EQ(0, memcmp(all + rs->data_offset,
			    all + rs->data_offset + a->size, a->size));
	/* Only the second copy of the data pages. */
	copy2 = pcbt_mmap(a->fd, a->size, PROT_READ, MAP_SHARED,
			  rs->data_offset + a->size);
	ASSERT_NE(MAP_FAILED, copy2);
	EXPECT_EQ(0, memcmp(copy2, a->data, a->size));
	munmap(copy2, a->size);
	munmap(all, rs->mmap_size);
	pcbt_ring_unmap(&twin);
}

/* The consumer page beyond struct pcb_ring_consumer is the consumer's. */
TEST_F(hostile, consumer_page_tail_garbage_is_harmless)
{
	unsigned char *page = (unsigned char *)self->victim.cons;
	size_t len = self->victim.setup.page_size;
	size_t off = sizeof(struct pcb_ring_consumer);
	struct pcb_wait w = { .timeout_ns = PCBT_MS };
	struct pollfd pfd = { .fd = self->victim.fd, .events = POLLIN };
	size_t i;

	memset(page + off, 0xa5, len - off);
	for (i = 0; i < 50; i++) {
		publish_along(_metadata, self, 1, false);
		ASSERT_EQ(1U, pcbt_ring_drain(&self->victim));
	}
	EXPECT_EQ(-ETIMEDOUT, pcbt_ioctl(self->victim.fd, PCB_IOC_WAIT, &w));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_FALSE(broken(&self->victim));
	for (i = off; i < len; i++) {
		ASSERT_EQ(0xa5, page[i]) TH_LOG("byte %zu", i);
	}
	expect_good_has_all(_metadata, self);
}

/*
 * The consumer page made read-only or inaccessible to the consumer: the
 * kernel writes it through its own mapping, so waiting and polling work.
 */
TEST_F(hostile, consumer_page_protected)
{
	static const int prots[] = { PROT_READ, PROT_NONE };
	struct pcbt_ring *v = &self->victim;
	size_t page = v->setup.page_size;
	struct pcb_wait w = { .timeout_ns = PCBT_MS };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(prots); i++) {
		struct pollfd pfd = { .fd = v->fd, .events = POLLIN };

		ASSERT_EQ(0, mprotect(v->cons, page, prots[i]));
		EXPECT_EQ(-ETIMEDOUT, pcbt_ioctl(v->fd, PCB_IOC_WAIT, &w));
		publish_along(_metadata, self, 1, false);
		w.timeout_ns = 10 * PCBT_SEC;
		EXPECT_EQ(0, pcbt_ioctl(v->fd, PCB_IOC_WAIT, &w));
		EXPECT_EQ(1, poll(&pfd, 1, 0));
		EXPECT_EQ(POLLIN, pfd.revents);
		w.timeout_ns = PCBT_MS;
		ASSERT_EQ(0, mprotect(v->cons, page, PROT_READ | PROT_WRITE));
		/* The kernel asked for wake-ups through its own mapping. */
		EXPECT_TRUE(!!(v->cons->flags & PCB_CONS_NEED_WAKEUP));
		ASSERT_EQ(1U, pcbt_ring_drain(v));
	}
	EXPECT_FALSE(broken(v));
	expect_good_has_all(_metadata, self);
}

/* Touches the victim's data; the parent made it PROT_NONE. */
static int read_data(void *arg)
{
	FIXTURE_DATA(hostile) *self = arg;

	return pcbt_ring_peek(&self->victim) ? 40 : 41;
}

TEST_F(hostile, data_pages_protected)
{
	struct pcbt_ring *v = &self->victim;
	const struct pcb_record *rec;
	int status;
	pid_t pid;

	publish_along(_metadata, self, 1, false);
	ASSERT_EQ(0, mprotect((void *)v->data, 2 * v->size, PROT_NONE));
	pid = spawn(read_data, self);
	ASSERT_LT(0, pid);
	status = reap(pid, 10000);
	ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("child status %#x", status);
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
	/* Publishing into pages the consumer cannot see. */
	publish_along(_metadata, self, 2, false);
	ASSERT_EQ(0, mprotect((void *)v->data, 2 * v->size, PROT_READ));
	for (status = 1; status <= 3; status++) {
		rec = pcbt_ring_peek(v);
		ASSERT_NE(NULL, rec);
		EXPECT_EQ((__u64)status, rec->seq);
		pcbt_ring_pop(v);
	}
	pcbt_ring_release(v);
	expect_good_has_all(_metadata, self);
}

/*
 * MADV_DONTNEED drops the consumer's page table entries.  The next touch
 * either finds the ring's pages again or kills the consumer (SIGBUS);
 * what it must never find is other memory, e.g. zeroes.
 */
static int dontneed_then_read(void *arg)
{
	FIXTURE_DATA(hostile) *self = arg;
	struct pcbt_ring *v = &self->victim;
	__u64 prod = pcbt_prod_pos(v);
	__u32 len = pcbt_load_acquire(&pcbt_ring_at(v, v->pos)->len);

	if (madvise(v->cons, v->setup.page_size, MADV_DONTNEED) ||
	    madvise((void *)v->hdr, v->setup.page_size, MADV_DONTNEED) ||
	    madvise((void *)v->data, 2 * v->size, MADV_DONTNEED))
		return 50;
	if (v->hdr->magic != PCB_RING_MAGIC || pcbt_prod_pos(v) != prod)
		return 51;
	if (pcbt_load_acquire(&pcbt_ring_at(v, v->pos)->len) != len)
		return 52;
	if (pcbt_load_acquire(&v->cons->cons_pos) != v->pos)
		return 53;
	return 0;
}

TEST_F(hostile, pages_discarded_by_madvise)
{
	int status;
	pid_t pid;

	publish_along(_metadata, self, 1, false);
	pid = spawn(dontneed_then_read, self);
	ASSERT_LT(0, pid);
	status = reap(pid, 10000);
	if (WIFSIGNALED(status)) {
		EXPECT_EQ(SIGBUS, WTERMSIG(status));
	} else {
		ASSERT_TRUE(WIFEXITED(status)) TH_LOG("child status %#x", status);
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
	TH_LOG("a discarded ring page %s", WIFSIGNALED(status) ?
	       "kills the consumer" : "comes back");
	/* The parent's mapping is another one: untouched. */
	EXPECT_EQ(1U, pcbt_ring_drain(&self->victim));
	publish_along(_metadata, self, 20, true);
	expect_good_has_all(_metadata, self);
}

/* Moved mappings are the same ring; they cannot be grown. */
TEST_F(hostile, ring_mremapped)
{
	struct pcbt_ring *v = &self->victim;
	size_t page = v->setup.page_size;
	struct pcb_wait w = { .timeout_ns = PCBT_MS };
	struct pcb_ring_consumer *cons;
	const unsigned char *data;
	void *p;

	publish_along(_metadata, self, 1, false);
	cons = mremap(v->cons, page, page, MREMAP_MAYMOVE | MREMAP_FIXED,
		      (p = mmap(NULL, page, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	ASSERT_NE(MAP_FAILED, cons);
	ASSERT_EQ(p, (void *)cons);
	v->cons = cons;
	data = mremap((void *)v->data, 2 * v->size, 2 * v->size,
		      MREMAP_MAYMOVE | MREMAP_FIXED,
		      (p = mmap(NULL, 2 * v->size, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	ASSERT_NE(MAP_FAILED, data);
	v->data = data;

	/* Reading through the moved data, releasing through the moved page. */
	EXPECT_EQ(1U, pcbt_ring_drain(v));
	EXPECT_EQ(-ETIMEDOUT, pcbt_ioctl(v->fd, PCB_IOC_WAIT, &w));
	publish_along(_metadata, self, 20, true);
	EXPECT_FALSE(broken(v));

	/* Growing would map past the ring. */
	EXPECT_EQ(MAP_FAILED, mremap((void *)v->data, 2 * v->size,
				     4 * v->size, MREMAP_MAYMOVE));
	EXPECT_EQ(MAP_FAILED, mremap(v->cons, page, 2 * page, MREMAP_MAYMOVE));
	expect_good_has_all(_metadata, self);
}

TEST_HARNESS_MAIN
