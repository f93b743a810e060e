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
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0600,
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
	ASSERT_EQ(0, pcbt_create(self->pfd, other, SCHEMA, LEN, 0600, NULL));
	EXPECT_EQ(-EPIPE, pcbt_subscribe(self->victim.fd, other, SCHEMA, 0,
					 NULL));

	/* No more deliveries to it, no push back from it. */
	prod = pcbt_prod_pos(&self->victim);
	for (i = 0; i < 100; i++)
		ASSERT_EQ(0, pub(self, PCB_PUB_NONBLOCK)) TH_LOG("message %d", i);
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
	self->victim.cons->reserved0 = 0xffffffff;
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

TEST_HARNESS_MAIN
