// SPDX-License-Identifier: GPL-2.0
/*
 * libpcb's observability: the bus clock and one-way latency of records,
 * the consumer-side latency histogram and its precision, and pcb_stats()
 * (PCB_IOC_STATS) against workloads whose every counter is known.
 */
#include "pcb_util.h"

#include <sys/epoll.h>

#include <libpcb.h>

#define SCHEMA		0x57a7500ULL
#define MAX_MSG		256
#define BIG_RING	(64 * 1024)
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

/* ------------------------------------------------------------------ */
/* The latency histogram, without the bus                             */
/* ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted @v, the definition libpcb follows. */
static uint64_t true_percentile(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n);

	/* ceil, without floating-point noise for p * n whole */
	if ((double)rank * 100.0 < p * (double)n - 1e-6)
		rank++;
	return v[rank ? rank - 1 : 0];
}

TEST(lat_hist_empty)
{
	struct pcb_lat_hist *h = calloc(1, sizeof(*h));
	struct pcb_lat_summary s;

	ASSERT_NE(NULL, h);
	EXPECT_EQ(0ULL, pcb_lat_hist_percentile(h, 50));
	EXPECT_EQ(0ULL, pcb_lat_hist_percentile(NULL, 50));
	memset(&s, 0xa5, sizeof(s));
	pcb_lat_hist_summary(h, &s);
	EXPECT_EQ(0ULL, s.count);
	EXPECT_EQ(0ULL, s.min_ns);
	EXPECT_EQ(0ULL, s.p99_ns);
	EXPECT_EQ(0ULL, s.max_ns);

	/* init is a reset; NULL is harmless */
	pcb_lat_hist_add(h, 12345);
	pcb_lat_hist_init(h);
	EXPECT_EQ(0ULL, h->count);
	EXPECT_EQ(0ULL, pcb_lat_hist_percentile(h, 100));
	pcb_lat_hist_init(NULL);
	pcb_lat_hist_add(NULL, 1);
	free(h);
}

/* 1 .. 1000 ns: exact count, min, mean, max; percentiles at bucket tops. */
TEST(lat_hist_known_values)
{
	struct pcb_lat_hist *h = calloc(1, sizeof(*h));
	struct pcb_lat_summary s;
	uint64_t v;

	ASSERT_NE(NULL, h);
	for (v = 1000; v >= 1; v--)	/* order does not matter */
		pcb_lat_hist_add(h, v);
	pcb_lat_hist_summary(h, &s);
	EXPECT_EQ(1000ULL, s.count);
	EXPECT_EQ(1ULL, s.min_ns);
	EXPECT_EQ(500ULL, s.mean_ns);	/* 500500 / 1000 */
	EXPECT_EQ(1000ULL, s.max_ns);
	EXPECT_EQ(500500ULL, h->sum_ns);
	/*
	 * 500 lies in [256, 512), buckets 16 ns wide: [496, 511]; 900 in
	 * [512, 1024), 32 ns wide: [896, 927]; 990 in [960, 991]; 999 in
	 * [992, 1023], above the max.
	 */
	EXPECT_EQ(511ULL, s.p50_ns);
	EXPECT_EQ(927ULL, s.p90_ns);
	EXPECT_EQ(991ULL, s.p99_ns);
	EXPECT_EQ(1000ULL, s.p999_ns);
	EXPECT_EQ(1ULL, pcb_lat_hist_percentile(h, 0));
	EXPECT_EQ(1000ULL, pcb_lat_hist_percentile(h, 100));
	/* 10 is below PCB_LAT_SUB: exact */
	EXPECT_EQ(10ULL, pcb_lat_hist_percentile(h, 1));
	free(h);
}

/* Ranks are exact: 99.9 % of 1000 values is the 999th, not the 1000th. */
TEST(lat_hist_rank)
{
	struct pcb_lat_hist *h = calloc(1, sizeof(*h));
	int i;

	ASSERT_NE(NULL, h);
	for (i = 0; i < 999; i++)
		pcb_lat_hist_add(h, 3);
	pcb_lat_hist_add(h, 9);
	EXPECT_EQ(3ULL, pcb_lat_hist_percentile(h, 99.9));
	EXPECT_EQ(9ULL, pcb_lat_hist_percentile(h, 99.95));
	pcb_lat_hist_init(h);
	pcb_lat_hist_add(h, 3);
	pcb_lat_hist_add(h, 9);
	EXPECT_EQ(3ULL, pcb_lat_hist_percentile(h, 50));
	EXPECT_EQ(9ULL, pcb_lat_hist_percentile(h, 50.01));
	free(h);
}

/*
 * The documented precision, on random values over the whole range: a
 * percentile is never below the true one and exceeds it by less than
 * 1/16 of it (by nothing below 16 ns).
 */
TEST(lat_hist_error_bound)
{
	static const double pct[] = { 0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9,
				      99.99, 100 };
	const size_t n = 20000;
	uint64_t *v = calloc(n, sizeof(*v));
	struct pcb_lat_hist *h = calloc(1, sizeof(*h));
	__u64 seed = pcbt_seed(), st = seed;
	uint64_t worst = 0;
	unsigned int i, round;
	size_t j;

	ASSERT_NE(NULL, v);
	ASSERT_NE(NULL, h);
	TH_LOG("seed %#llx (PCB_TEST_SEED reproduces)", (unsigned long long)seed);
	for (round = 0; round < 4; round++) {
		pcb_lat_hist_init(h);
		for (j = 0; j < n; j++) {
			/* log-uniform: every bucket size gets its turn */
			unsigned int bits = (unsigned int)pcbt_rand_below(&st, 65);

			v[j] = bits ? pcbt_rand(&st) >> (64 - bits) : 0;
			pcb_lat_hist_add(h, v[j]);
		}
		qsort(v, n, sizeof(*v), cmp_u64);
		EXPECT_EQ(v[0], h->min_ns);
		EXPECT_EQ(v[n - 1], h->max_ns);
		for (i = 0; i < 200; i++) {
			double p = i < ARRAY_SIZE(pct) ? pct[i] :
				   (double)pcbt_rand_below(&st, 1000001) / 10000;
			uint64_t t = true_percentile(v, n, p);
			uint64_t r = pcb_lat_hist_percentile(h, p);

			EXPECT_LE(t, r) {
				TH_LOG("p%g: true %llu, reported %llu", p,
				       (unsigned long long)t,
				       (unsigned long long)r);
			}
			/* r - t < t / 16, in integers */
			if (t < PCB_LAT_SUB) {
				EXPECT_EQ(t, r);
			} else {
				EXPECT_LE(r - t, (t - 1) / PCB_LAT_SUB);
			}
			if (t && (r - t) * 1000 / t > worst)
				worst = (r - t) * 1000 / t;
		}
	}
	TH_LOG("worst relative error seen: %.1f %%", worst / 10.0);
	free(h);
	free(v);
}

TEST(lat_hist_extremes)
{
	struct pcb_lat_hist *h = calloc(1, sizeof(*h));

	ASSERT_NE(NULL, h);
	pcb_lat_hist_add(h, UINT64_MAX);
	pcb_lat_hist_add(h, 1ULL << 63);
	pcb_lat_hist_add(h, 0);
	EXPECT_EQ(3ULL, h->count);
	EXPECT_EQ(UINT64_MAX, h->sum_ns);	/* saturated */
	EXPECT_EQ(0ULL, pcb_lat_hist_percentile(h, 0));
	/* 2^63 is the bottom of a bucket 2^59 wide */
	EXPECT_EQ((1ULL << 63) + (1ULL << 59) - 1,
		  pcb_lat_hist_percentile(h, 66));
	EXPECT_EQ(UINT64_MAX, pcb_lat_hist_percentile(h, 100));
	free(h);
}

TEST(lat_hist_merge)
{
	struct pcb_lat_hist *a = calloc(1, sizeof(*a));
	struct pcb_lat_hist *b = calloc(1, sizeof(*b));
	struct pcb_lat_hist *all = calloc(1, sizeof(*all));
	__u64 st = 42;
	uint64_t x;
	int i;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, all);
	for (i = 0; i < 5000; i++) {
		x = pcbt_rand(&st) >> (pcbt_rand(&st) % 64);
		pcb_lat_hist_add(i % 3 ? a : b, x);
		pcb_lat_hist_add(all, x);
	}
	a->failed = 2;
	b->failed = 3;
	all->failed = 5;
	pcb_lat_hist_merge(a, b);
	EXPECT_EQ(0, memcmp(a, all, sizeof(*a)));
	/* merging an empty one changes nothing, not even min */
	pcb_lat_hist_init(b);
	pcb_lat_hist_merge(a, b);
	EXPECT_EQ(0, memcmp(a, all, sizeof(*a)));
	/* into an empty one: a copy */
	pcb_lat_hist_merge(b, all);
	EXPECT_EQ(0, memcmp(b, all, sizeof(*b)));
	free(all);
	free(b);
	free(a);
}

/* ------------------------------------------------------------------ */
/* struct pcb_hist: the kernel's log2 histogram                       */
/* ------------------------------------------------------------------ */

/* The bucket <linux/pcb.h> defines for @ns. */
static unsigned int uapi_bucket(uint64_t ns)
{
	unsigned int b = ns ? 64 - (unsigned int)__builtin_clzll(ns) : 0;

	return b < PCB_HIST_BUCKETS - 1 ? b : PCB_HIST_BUCKETS - 1;
}

static void hist_add(struct pcb_hist *h, uint64_t ns)
{
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->buckets[uapi_bucket(ns)]++;
}

TEST(hist_bucket_bounds)
{
	unsigned int i;

	EXPECT_EQ(0ULL, pcb_hist_bucket_max(0));
	EXPECT_EQ(1ULL, pcb_hist_bucket_max(1));
	EXPECT_EQ(3ULL, pcb_hist_bucket_max(2));
	EXPECT_EQ(1023ULL, pcb_hist_bucket_max(10));
	EXPECT_EQ((1ULL << 38) - 1, pcb_hist_bucket_max(PCB_HIST_BUCKETS - 2));
	EXPECT_EQ(UINT64_MAX, pcb_hist_bucket_max(PCB_HIST_BUCKETS - 1));
	EXPECT_EQ(UINT64_MAX, pcb_hist_bucket_max(1000));
	/* each bound is in its bucket, one more is in the next */
	for (i = 0; i < PCB_HIST_BUCKETS - 1; i++) {
		EXPECT_EQ(i, uapi_bucket(pcb_hist_bucket_max(i)));
		EXPECT_EQ(i + 1, uapi_bucket(pcb_hist_bucket_max(i) + 1));
	}
}

TEST(hist_percentile_known)
{
	struct pcb_hist h = { 0 };

	EXPECT_EQ(0ULL, pcb_hist_total(&h));
	EXPECT_EQ(0ULL, pcb_hist_percentile(&h, 50));
	EXPECT_EQ(0ULL, pcb_hist_total(NULL));

	/* one 0 and nine values in [16, 32) whose max is 20 */
	h.count = 10;
	h.buckets[0] = 1;
	h.buckets[5] = 9;
	h.max_ns = 20;
	EXPECT_EQ(10ULL, pcb_hist_total(&h));
	EXPECT_EQ(0ULL, pcb_hist_percentile(&h, 10));
	EXPECT_EQ(20ULL, pcb_hist_percentile(&h, 10.01));
	EXPECT_EQ(20ULL, pcb_hist_percentile(&h, 100));
	/* the bucket's top when the max lies further out */
	h.buckets[7] = 1;
	h.max_ns = 100;
	EXPECT_EQ(31ULL, pcb_hist_percentile(&h, 50));
	EXPECT_EQ(100ULL, pcb_hist_percentile(&h, 100));
	/* a max lagging behind the buckets: not below the bucket's bottom */
	h.max_ns = 20;
	EXPECT_EQ(64ULL, pcb_hist_percentile(&h, 100));
	/* the open-ended last bucket: the max */
	memset(&h, 0, sizeof(h));
	hist_add(&h, 1ULL << 45);
	EXPECT_EQ(1ULL << 45, pcb_hist_percentile(&h, 99));
	/* percentiles of the buckets' sum, not of a lagging count */
	memset(&h, 0, sizeof(h));
	h.count = 1;
	h.buckets[3] = 2;
	h.buckets[4] = 2;
	h.max_ns = 15;
	EXPECT_EQ(7ULL, pcb_hist_percentile(&h, 50));
}

/* The documented precision: v <= reported <= 2v - 1. */
TEST(hist_percentile_bound)
{
	uint64_t v[2000];
	__u64 st = pcbt_seed();
	struct pcb_hist h = { 0 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(v); i++) {
		v[i] = pcbt_rand(&st) >> (26 + pcbt_rand_below(&st, 38));
		hist_add(&h, v[i]);
	}
	qsort(v, ARRAY_SIZE(v), sizeof(v[0]), cmp_u64);
	for (i = 0; i <= 1000; i++) {
		double p = i / 10.0;
		uint64_t t = true_percentile(v, ARRAY_SIZE(v), p);
		uint64_t r = pcb_hist_percentile(&h, p);

		EXPECT_LE(t, r);
		if (t) {
			EXPECT_LE(r, 2 * t - 1);
		} else {
			EXPECT_EQ(0ULL, r);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The bus                                                            */
/* ------------------------------------------------------------------ */

FIXTURE(st) {
	struct pcb *pub;	/* publishes, asks for statistics */
	struct pcb *sub;	/* a ring */
	struct pcb *sub2;	/* another ring */
	char name[PCB_NAME_MAX];
	uint32_t topic_id;
	int handle;
};

FIXTURE_SETUP(st)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;

	self->pub = self->sub = self->sub2 = NULL;
	LIBPCB_OPEN(self->pub);
	LIBPCB_OPEN(self->sub);
	LIBPCB_OPEN(self->sub2);
	pcbt_name(self->name, "stats");
	opts.schema_id = SCHEMA;
	opts.max_msg_size = MAX_MSG;
	ASSERT_EQ(0, pcb_topic_create(self->pub, self->name, &opts,
				      &self->topic_id));
	self->handle = pcb_topic_open(self->pub, self->name, SCHEMA);
	ASSERT_LE(0, self->handle);
}

FIXTURE_TEARDOWN(st)
{
	pcb_close(self->sub2);
	pcb_close(self->sub);
	pcb_close(self->pub);
	pcbt_cleanup();
}

static void ring_sub(struct __test_metadata *_metadata,
		     FIXTURE_DATA(st) *self, struct pcb *bus, size_t size, uint32_t flags,
		     const struct pcb_filter_spec *filter)
{
	uint32_t id = 0;

	ASSERT_EQ(0, pcb_ring_setup(bus, size));
	ASSERT_EQ(0, pcb_subscribe_filtered(bus, self->name, SCHEMA, flags,
					    filter, &id));
	ASSERT_EQ(self->topic_id, id);
}

static struct pcb_stats topic_stats(struct __test_metadata *_metadata,
				    FIXTURE_DATA(st) *self)
{
	struct pcb_stats s;

	memset(&s, 0xa5, sizeof(s));
	EXPECT_EQ(0, pcb_stats(self->pub, self->topic_id, &s));
	return s;
}

/* FILL_LEN-byte messages: 15 records of 264 bytes fill a 4 KiB ring. */
#define FILL_LEN	200
#define FILL_RECS	15
#define FILL_REC_SIZE	264
static const char fill_buf[FILL_LEN];

static uint64_t bus_clock_now(uint32_t clock)
{
	return clock == PCB_CLOCK_TSC ? pcb_tsc() :
	       pcbt_now_ns(CLOCK_MONOTONIC);
}

TEST_F(st, clock_is_named)
{
	struct pcb_stats s = topic_stats(_metadata, self);
	uint32_t clock;

	EXPECT_EQ(0U, pcb_clock(self->sub));	/* no ring yet */
	EXPECT_EQ(0U, pcb_clock(NULL));
	ring_sub(_metadata, self, self->sub, BIG_RING, 0, NULL);
	clock = pcb_clock(self->sub);
	TH_LOG("bus clock: %s, tsc_khz %u", clock == PCB_CLOCK_TSC ? "TSC" :
	       clock == PCB_CLOCK_MONO ? "CLOCK_MONOTONIC" : "?",
	       pcb_tsc_khz(self->sub));
	ASSERT_TRUE(clock == PCB_CLOCK_TSC || clock == PCB_CLOCK_MONO);
	EXPECT_EQ(clock, s.clock);
	EXPECT_EQ(s.tsc_khz, pcb_tsc_khz(self->sub));
	if (clock == PCB_CLOCK_TSC) {
		EXPECT_LT(0U, pcb_tsc_khz(self->sub));
	} else {
		EXPECT_EQ(0U, pcb_tsc_khz(self->sub));
	}
}

/*
 * record->tsc is the bus clock read inside the publish call, and
 * pcb_msg_latency_ns() turns it into nanoseconds in the unit of that
 * clock: a record made to look one second old reads as one second.
 */
TEST_F(st, latency_follows_the_clock)
{
	struct pcb_lat_hist *h = calloc(1, sizeof(*h));
	struct pcb_record fake;
	struct pcb_msg msg, old;
	uint64_t before, after, ns = 0, second;
	uint32_t clock;

	ASSERT_NE(NULL, h);
	ring_sub(_metadata, self, self->sub, BIG_RING, 0, NULL);
	clock = pcb_clock(self->sub);
	if (clock == PCB_CLOCK_TSC && !pcb_tsc())
		PCBT_SKIP("TSC clock on an architecture without rdtsc");

	before = bus_clock_now(clock);
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "x", 1, 0, 0, NULL));
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	after = bus_clock_now(clock);
	EXPECT_LE(before, msg.rec->tsc);
	EXPECT_GE(after, msg.rec->tsc);

	ASSERT_EQ(0, pcb_msg_latency_ns(self->sub, &msg, &ns));
	EXPECT_GT(10 * PCBT_SEC, ns);
	ASSERT_EQ(0, pcb_lat_hist_record(self->sub, h, &msg));
	EXPECT_EQ(1ULL, h->count);
	EXPECT_GT(10 * PCBT_SEC, h->max_ns);

	/* the same record, one second older */
	second = clock == PCB_CLOCK_TSC ? pcb_tsc_khz(self->sub) * 1000ULL :
		 PCBT_SEC;
	fake = *msg.rec;
	fake.tsc -= second;
	old = msg;
	old.rec = &fake;
	ASSERT_EQ(0, pcb_msg_latency_ns(self->sub, &old, &ns));
	EXPECT_LE(PCBT_SEC, ns);
	EXPECT_GT(PCBT_SEC + 10 * PCBT_SEC, ns);

	/* from the future: -ERANGE, counted as failed by the histogram */
	fake.tsc = bus_clock_now(clock) + 100 * second;
	EXPECT_EQ(-ERANGE, pcb_msg_latency_ns(self->sub, &old, &ns));
	EXPECT_EQ(-ERANGE, pcb_lat_hist_record(self->sub, h, &old));
	EXPECT_EQ(1ULL, h->count);
	EXPECT_EQ(1ULL, h->failed);

	/* an endpoint without a ring has no clock */
	EXPECT_EQ(-EOPNOTSUPP, pcb_msg_latency_ns(self->pub, &msg, &ns));
	EXPECT_EQ(-EINVAL, pcb_msg_latency_ns(self->sub, NULL, &ns));
	EXPECT_EQ(-EINVAL, pcb_msg_latency_ns(self->sub, &msg, NULL));
	EXPECT_EQ(-EINVAL, pcb_lat_hist_record(self->sub, NULL, &msg));
	EXPECT_EQ(-EINVAL, pcb_lat_hist_record(self->sub, h, NULL));
	EXPECT_EQ(1ULL, h->failed);
	pcb_release(self->sub, &msg);
	free(h);
}

/*
 * A consumer in a time namespace whose CLOCK_MONOTONIC is 1000 s ahead
 * still measures the real latency: libpcb takes the offset off.
 */
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME	0x00000080
#endif
#define TIMENS_OFFSET_S	1000
#define CHILD_SKIP	4

struct timens_child {
	const char *name;
	int ready;	/* write end: one byte once subscribed */
};

/* In the new time namespace. */
static int timens_consumer(const struct timens_child *c)
{
	struct pcb_msg msg;
	struct pcb *bus;
	uint64_t ns;
	char ok = 1;

	PCBT_CHILD_EXPECT(0, pcb_open(&bus));
	PCBT_CHILD_EXPECT(0, pcb_ring_setup(bus, BIG_RING));
	PCBT_CHILD_EXPECT(0, pcb_subscribe(bus, c->name, SCHEMA, 0, NULL));
	PCBT_CHILD_EXPECT(1, write(c->ready, &ok, 1));
	PCBT_CHILD_EXPECT(1, pcb_receive(bus, &msg, WAIT));
	PCBT_CHILD_EXPECT(0, pcb_msg_latency_ns(bus, &msg, &ns));
	if (ns >= 100 * PCBT_SEC) {
		fprintf(stderr, "# latency %llu ns in a time namespace\n",
			(unsigned long long)ns);
		return 1;
	}
	pcb_close(bus);
	return 0;
}

/* Makes a time namespace for its children and runs one in it. */
static int timens_parent(const struct timens_child *c)
{
	int status;
	pid_t pid;
	FILE *f;

	if (unshare(CLONE_NEWTIME))
		return CHILD_SKIP;
	f = fopen("/proc/self/timens_offsets", "w");
	if (!f)
		return CHILD_SKIP;
	fprintf(f, "monotonic %d 0\n", TIMENS_OFFSET_S);
	if (fclose(f))
		return CHILD_SKIP;
	pid = fork();
	if (pid < 0)
		return 1;
	if (!pid)
		_exit(timens_consumer(c));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}

TEST_F(st, latency_in_time_namespace)
{
	struct timens_child c = { .name = self->name };
	int fds[2], status;
	char byte;
	pid_t pid;

	if (!pcbt_is_root())
		SKIP(return, "a time namespace needs root");
	ASSERT_EQ(0, pipe(fds));
	c.ready = fds[1];
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(fds[0]);
		_exit(timens_parent(&c));
	}
	close(fds[1]);
	if (read(fds[0], &byte, 1) == 1)
		EXPECT_EQ(0, pcb_publish(self->pub, self->handle, "t", 1, 0, 0,
					 NULL));
	close(fds[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_SKIP)
		SKIP(return, "no time namespaces here");
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(st, args)
{
	struct pcb_stats s;

	EXPECT_EQ(-EINVAL, pcb_stats(NULL, 0, &s));
	EXPECT_EQ(-EINVAL, pcb_stats(self->pub, 0, NULL));
	EXPECT_EQ(0, pcb_stats(self->pub, 0, &s));
	EXPECT_EQ(PCB_STATS_VERSION, s.version);
	EXPECT_EQ(0U, s.topic_id);
	EXPECT_LE(1U, s.nr_topics);
}

/* A new topic: all zero but the topic count. */
TEST_F(st, fresh_topic)
{
	struct pcb_stats s = topic_stats(_metadata, self);
	struct pcb_stats zero;

	EXPECT_EQ(PCB_STATS_VERSION, s.version);
	EXPECT_EQ(self->topic_id, s.topic_id);
	EXPECT_EQ(1U, s.nr_topics);
	memset(&zero, 0, sizeof(zero));
	EXPECT_EQ(0, memcmp(&zero.nr_subscriptions, &s.nr_subscriptions,
			    sizeof(s) - offsetof(struct pcb_stats,
						 nr_subscriptions)));
}

/* Published, bytes, delivered, the histogram and the rings' fill. */
TEST_F(st, publish_and_deliver)
{
	struct pcb_stats s;
	struct pcb_msg msg;
	unsigned int i;

	/* without subscribers: published, reaching nobody */
	for (i = 1; i <= 4; i++)
		ASSERT_EQ(0, pcb_publish(self->pub, self->handle, fill_buf, i,
					 0, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(4ULL, s.published);
	EXPECT_EQ(10ULL, s.bytes);
	EXPECT_EQ(0ULL, s.delivered);

	ring_sub(_metadata, self, self->sub, BIG_RING, 0, NULL);
	ring_sub(_metadata, self, self->sub2, BIG_RING, PCB_SUB_LOSSY, NULL);
	for (i = 1; i <= 7; i++)
		ASSERT_EQ(0, pcb_publish(self->pub, self->handle, fill_buf, i,
					 0, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(1U, s.nr_topics);
	EXPECT_EQ(2U, s.nr_subscriptions);
	EXPECT_EQ(11ULL, s.published);
	EXPECT_EQ(10ULL + 28, s.bytes);
	EXPECT_EQ(14ULL, s.delivered);
	EXPECT_EQ(0ULL, s.dropped_full);
	EXPECT_EQ(0ULL, s.dropped_broken);
	EXPECT_EQ(0ULL, s.rejected);
	EXPECT_EQ(0ULL, s.blocked);
	EXPECT_EQ(0ULL, s.timeouts);
	EXPECT_EQ(0ULL, s.would_block);
	EXPECT_EQ(0ULL, s.wakeups);
	/* seven 72-byte records in each of two 64 KiB rings */
	EXPECT_EQ(2ULL * 7 * 72, s.ring_used);
	EXPECT_EQ(2ULL * BIG_RING, s.ring_size);
	EXPECT_EQ(7U * 72 * 1000 / BIG_RING, s.ring_fill_max);

	/* one entry per single publish; the buckets hold them all */
	EXPECT_EQ(11ULL, s.publish_ns.count);
	EXPECT_EQ(11ULL, pcb_hist_total(&s.publish_ns));
	EXPECT_LE(s.publish_ns.max_ns, s.publish_ns.sum_ns);
	EXPECT_EQ(s.publish_ns.max_ns, pcb_hist_percentile(&s.publish_ns, 100));
	EXPECT_GE(s.publish_ns.max_ns, pcb_hist_percentile(&s.publish_ns, 50));

	/* what a consumer reads leaves its ring */
	for (i = 0; i < 7; i++) {
		ASSERT_EQ(1, pcb_peek(self->sub, &msg));
		pcb_release(self->sub, &msg);
	}
	s = topic_stats(_metadata, self);
	EXPECT_EQ(7ULL * 72, s.ring_used);
	EXPECT_EQ(14ULL, s.delivered);
}

TEST_F(st, lossy_ring_drops)
{
	struct pcb_sub_info si;
	struct pcb_stats s;
	int i;

	ring_sub(_metadata, self, self->sub, PCB_RING_MIN_SIZE, PCB_SUB_LOSSY,
		 NULL);
	for (i = 0; i < FILL_RECS + 5; i++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, fill_buf,
					     FILL_LEN, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ((uint64_t)FILL_RECS + 5, s.published);
	EXPECT_EQ((uint64_t)FILL_RECS, s.delivered);
	EXPECT_EQ(5ULL, s.dropped_full);
	EXPECT_EQ(0ULL, s.would_block);
	EXPECT_EQ(5ULL, pcb_dropped(self->sub));
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &si));
	EXPECT_EQ(5ULL, si.dropped);
	EXPECT_EQ((uint64_t)FILL_RECS * FILL_REC_SIZE, s.ring_used);
	EXPECT_EQ((uint64_t)PCB_RING_MIN_SIZE, s.ring_size);
	EXPECT_EQ(FILL_RECS * FILL_REC_SIZE * 1000 / PCB_RING_MIN_SIZE,
		  s.ring_fill_max);
	EXPECT_EQ((uint64_t)FILL_RECS + 5, s.publish_ns.count);
}

TEST_F(st, filter_rejects)
{
	static const uint64_t keys[] = { 0, 1, 2, 1, 3, 1 };
	struct pcb_filter_spec f;
	struct pcb_sub_info si;
	struct pcb_stats s;
	unsigned int i;

	pcb_filter_init(&f);
	ASSERT_EQ(0, pcb_filter_key(&f, PCB_OP_EQ, 1));
	ring_sub(_metadata, self, self->sub, BIG_RING, 0, &f);
	ring_sub(_metadata, self, self->sub2, BIG_RING, 0, NULL);
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "m", 1,
					 keys[i], 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(6ULL, s.published);
	EXPECT_EQ(3ULL + 6, s.delivered);
	EXPECT_EQ(3ULL, s.rejected);
	ASSERT_EQ(0, pcb_sub_info(self->sub, self->topic_id, &si));
	EXPECT_EQ(3ULL, si.rejected);
	EXPECT_EQ(3ULL, si.delivered);
}

struct late_consumer {
	struct pcb *bus;
	unsigned int delay_ms;
	int ret;
};

static void *consume_one_later(void *arg)
{
	struct late_consumer *c = arg;
	struct pcb_msg msg;

	pcbt_sleep_ms(c->delay_ms);
	c->ret = pcb_peek(c->bus, &msg);
	if (c->ret == 1)
		pcb_release(c->bus, &msg);
	return NULL;
}

/* Backpressure: would_block, blocked, timeouts. */
TEST_F(st, reliable_ring_backpressure)
{
	struct late_consumer c = { .delay_ms = 100 };
	struct pcb_stats s;
	pthread_t thread;
	int i;

	ring_sub(_metadata, self, self->sub, PCB_RING_MIN_SIZE, 0, NULL);
	for (i = 0; i < FILL_RECS; i++)
		ASSERT_EQ(0, pcb_try_publish(self->pub, self->handle, fill_buf,
					     FILL_LEN, 0, NULL));
	/* nonblocking into a full ring: refused, twice */
	EXPECT_EQ(-EAGAIN, pcb_try_publish(self->pub, self->handle, fill_buf,
					   FILL_LEN, 0, NULL));
	EXPECT_EQ(-EAGAIN, pcb_try_publish(self->pub, self->handle, fill_buf,
					   FILL_LEN, 0, NULL));
	/* waiting with a timeout: blocked once, timed out once */
	EXPECT_EQ(-ETIMEDOUT, pcb_publish(self->pub, self->handle, fill_buf,
					  FILL_LEN, 0, 20 * PCBT_MS, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ((uint64_t)FILL_RECS, s.published);
	EXPECT_EQ((uint64_t)FILL_RECS, s.delivered);
	EXPECT_EQ(2ULL, s.would_block);
	EXPECT_EQ(1ULL, s.blocked);
	EXPECT_EQ(1ULL, s.timeouts);
	EXPECT_EQ(0ULL, s.dropped_full);
	EXPECT_EQ((uint64_t)FILL_RECS, s.publish_ns.count);
	EXPECT_EQ(1000U * FILL_RECS * FILL_REC_SIZE / PCB_RING_MIN_SIZE,
		  s.ring_fill_max);

	/* waiting until a consumer makes room: blocked, then published */
	c.bus = self->sub;
	ASSERT_EQ(0, pthread_create(&thread, NULL, consume_one_later, &c));
	EXPECT_EQ(0, pcb_publish(self->pub, self->handle, fill_buf, FILL_LEN,
				 0, WAIT, NULL));
	pthread_join(thread, NULL);
	EXPECT_EQ(1, c.ret);
	s = topic_stats(_metadata, self);
	EXPECT_EQ((uint64_t)FILL_RECS + 1, s.published);
	EXPECT_EQ(2ULL, s.blocked);
	EXPECT_EQ(1ULL, s.timeouts);
	EXPECT_EQ(2ULL, s.would_block);
	EXPECT_EQ((uint64_t)FILL_RECS + 1, s.publish_ns.count);
	/* the waiting one cost at least its wait (the consumer's delay) */
	EXPECT_LE((uint64_t)(c.delay_ms / 2) * PCBT_MS, s.publish_ns.max_ns);
}

/*
 * Wake-ups count consumers that wait: an epoll registration waits on the
 * ring (and sets NEED_WAKEUP, as poll() does) until it is removed.
 */
TEST_F(st, wakeups)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct pcb_stats s;
	int ep;

	ring_sub(_metadata, self, self->sub, BIG_RING, 0, NULL);
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "a", 1, 0, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(0ULL, s.wakeups);	/* nobody waits */

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, pcb_fd(self->sub), &ev));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "b", 1, 0, 0, NULL));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "c", 1, 0, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(2ULL, s.wakeups);
	EXPECT_EQ(1, epoll_wait(ep, &ev, 1, 0));
	close(ep);
}

/*
 * An epoll consumer that says when it sleeps (pcb_sleep_prepare()) and
 * when it is awake (pcb_sleep_done()) costs publishers no wake-up while
 * it is busy.
 */
TEST_F(st, sleep_prepare_and_done)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct pcb_stats s;
	struct pcb_msg msg;
	int ep;

	EXPECT_EQ(-EBADFD, pcb_sleep_prepare(self->sub));
	ring_sub(_metadata, self, self->sub, BIG_RING, 0, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, pcb_fd(self->sub), &ev));

	/* busy: registered in epoll, but not asking */
	pcb_sleep_done(self->sub);
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "a", 1, 0, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(0ULL, s.wakeups);

	/* a record is there: do not sleep */
	EXPECT_EQ(1, pcb_sleep_prepare(self->sub));
	pcb_sleep_done(self->sub);
	ASSERT_EQ(1, pcb_peek(self->sub, &msg));
	pcb_release(self->sub, &msg);

	/* empty: sleep, and the next publish wakes us once */
	EXPECT_EQ(0, pcb_sleep_prepare(self->sub));
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "b", 1, 0, 0, NULL));
	EXPECT_EQ(1, epoll_wait(ep, &ev, 1, 1000));
	pcb_sleep_done(self->sub);
	ASSERT_EQ(0, pcb_publish(self->pub, self->handle, "c", 1, 0, 0, NULL));
	s = topic_stats(_metadata, self);
	EXPECT_EQ(1ULL, s.wakeups);
	close(ep);
}

/* The bus counts at least what each of its topics does. */
TEST_F(st, bus_covers_topic)
{
	struct pcb_stats b0, b1, t;
	int i;

	ASSERT_EQ(0, pcb_stats(self->pub, 0, &b0));
	ring_sub(_metadata, self, self->sub, PCB_RING_MIN_SIZE, PCB_SUB_LOSSY,
		 NULL);
	for (i = 0; i < FILL_RECS + 3; i++)
		ASSERT_EQ(0, pcb_publish(self->pub, self->handle, fill_buf,
					 FILL_LEN, 0, 0, NULL));
	t = topic_stats(_metadata, self);
	ASSERT_EQ(0, pcb_stats(self->pub, 0, &b1));

	EXPECT_EQ(PCB_STATS_VERSION, b1.version);
	EXPECT_EQ(0U, b1.topic_id);
	EXPECT_EQ(t.clock, b1.clock);
	EXPECT_LE(1U, b1.nr_topics);
	EXPECT_LE(t.nr_subscriptions, b1.nr_subscriptions);
	EXPECT_LE(t.published, b1.published - b0.published);
	EXPECT_LE(t.bytes, b1.bytes - b0.bytes);
	EXPECT_LE(t.delivered, b1.delivered - b0.delivered);
	EXPECT_LE(t.dropped_full, b1.dropped_full - b0.dropped_full);
	EXPECT_LE(t.publish_ns.count,
		  b1.publish_ns.count - b0.publish_ns.count);
	EXPECT_LE(t.ring_size, b1.ring_size);
	EXPECT_LE(t.ring_fill_max, b1.ring_fill_max);
	EXPECT_LE(t.publish_ns.max_ns, b1.publish_ns.max_ns);
	EXPECT_EQ((uint64_t)FILL_RECS + 3, t.published);
	EXPECT_EQ(3ULL, t.dropped_full);
}

TEST_F(st, unknown_topic_enoent)
{
	struct pcb_stats s;

	EXPECT_EQ(-ENOENT, pcb_stats(self->pub, 0xfffffff0U, &s));
	ASSERT_EQ(0, pcb_topic_delete(self->pub, self->name));
	EXPECT_EQ(-ENOENT, pcb_stats(self->pub, self->topic_id, &s));
}

/* PCB_IOC_STATS itself: the size protocol and the argument checks. */
static int stats_ioctl(int fd, void *buf, uint32_t size, uint32_t topic_id,
		       struct pcb_stats_query *q)
{
	memset(q, 0, sizeof(*q));
	q->stats = (uintptr_t)buf;
	q->size = size;
	q->topic_id = topic_id;
	return pcbt_ioctl(fd, PCB_IOC_STATS, q);
}

TEST_F(st, size_protocol)
{
	unsigned char buf[2048] __attribute__((aligned(8)));
	struct pcb_stats_query q;
	int fd = pcb_fd(self->pub);
	size_t i;

	ASSERT_EQ(PCB_STATS_SIZE_V1, sizeof(struct pcb_stats));

	/* too small: EINVAL, nothing written */
	memset(buf, 0xa5, sizeof(buf));
	EXPECT_EQ(-EINVAL, stats_ioctl(fd, buf, PCB_STATS_SIZE_V1 - 1,
				       self->topic_id, &q));
	EXPECT_EQ(-EINVAL, stats_ioctl(fd, buf, 0, self->topic_id, &q));
	EXPECT_EQ(0xa5, buf[0]);

	/* exactly V1 */
	EXPECT_EQ(0, stats_ioctl(fd, buf, PCB_STATS_SIZE_V1, self->topic_id,
				 &q));
	EXPECT_EQ(PCB_STATS_SIZE_V1, q.size);
	EXPECT_EQ(0xa5, buf[PCB_STATS_SIZE_V1]);

	/* larger: what the kernel knows, then zeroes; size says how much */
	memset(buf, 0xa5, sizeof(buf));
	EXPECT_EQ(0, stats_ioctl(fd, buf, sizeof(buf) - 8, self->topic_id,
				 &q));
	EXPECT_EQ(sizeof(struct pcb_stats), q.size);
	EXPECT_EQ(PCB_STATS_VERSION, ((struct pcb_stats *)buf)->version);
	EXPECT_EQ(self->topic_id, ((struct pcb_stats *)buf)->topic_id);
	for (i = sizeof(struct pcb_stats); i < sizeof(buf) - 8; i++)
		if (buf[i])
			break;
	EXPECT_EQ(sizeof(buf) - 8, i);
	EXPECT_EQ(0xa5, buf[sizeof(buf) - 8]);	/* not beyond */
	/* a topic's figures are never partial; reserved words come back 0 */
	EXPECT_EQ(0U, ((struct pcb_stats *)buf)->flags);
	for (i = 0; i < ARRAY_SIZE(((struct pcb_stats *)buf)->reserved); i++)
		EXPECT_EQ(0ULL, ((struct pcb_stats *)buf)->reserved[i]);

	/* flags and reserved words of the query */
	memset(&q, 0, sizeof(q));
	q.stats = (uintptr_t)buf;
	q.size = PCB_STATS_SIZE_V1;
	q.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, PCB_IOC_STATS, &q));
	q.flags = 0;
	q.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, PCB_IOC_STATS, &q));
	q.reserved0 = 0;
	q.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(fd, PCB_IOC_STATS, &q));

	/* bad pointers */
	EXPECT_EQ(-EFAULT, stats_ioctl(fd, (void *)8, PCB_STATS_SIZE_V1, 0,
				       &q));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(fd, PCB_IOC_STATS, (void *)8));
	/* ENOENT before touching the buffer */
	EXPECT_EQ(-ENOENT, stats_ioctl(fd, buf, PCB_STATS_SIZE_V1,
				       0xfffffff0U, &q));
}

/*
 * A topic's statistics are its traffic: others than its owner need read
 * permission (else -EACCES), and the bus's figures they get are the sums
 * over the topics they may see (PCB_STATS_PARTIAL).
 */
struct stats_ids {
	uint32_t private_id;	/* mode 0600 */
	uint32_t readable_id;	/* mode 0604 */
};

static int nobody_reads_stats(void *arg)
{
	const struct stats_ids *ids = arg;
	struct pcb_stats s, bus_s;
	struct pcb *bus;

	PCBT_CHILD_EXPECT(0, pcb_open(&bus));
	PCBT_CHILD_EXPECT(-EACCES, pcb_stats(bus, ids->private_id, &s));
	PCBT_CHILD_EXPECT(0, pcb_stats(bus, ids->readable_id, &s));
	PCBT_CHILD_EXPECT(ids->readable_id, s.topic_id);
	PCBT_CHILD_EXPECT(3, s.published);
	PCBT_CHILD_EXPECT(0, s.flags);
	PCBT_CHILD_EXPECT(0, pcb_stats(bus, 0, &bus_s));
	PCBT_CHILD_EXPECT(PCB_STATS_PARTIAL, bus_s.flags);
	PCBT_CHILD_EXPECT(1, bus_s.published >= s.published);
	pcb_close(bus);
	return 0;
}

TEST(read_right_needed)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	struct stats_ids ids;
	char name[PCB_NAME_MAX], other[PCB_NAME_MAX];
	struct pcb_stats s;
	struct pcb *bus;
	int h, i;

	if (!pcbt_is_root())
		SKIP(return, "needs root to run a child as uid %d", PCBT_NOBODY);
	LIBPCB_OPEN(bus);
	pcbt_name(name, "private");
	pcbt_name(other, "readable");
	opts.mode = 0600;
	ASSERT_EQ(0, pcb_topic_create(bus, name, &opts, &ids.private_id));
	opts.mode = 0604;
	ASSERT_EQ(0, pcb_topic_create(bus, other, &opts, &ids.readable_id));
	h = pcb_topic_open(bus, name, 0);
	ASSERT_LE(0, h);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pcb_publish(bus, h, "p", 1, 0, 0, NULL));
	h = pcb_topic_open(bus, other, 0);
	ASSERT_LE(0, h);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pcb_publish(bus, h, "p", 1, 0, 0, NULL));
	/* Root (CAP_IPC_OWNER) sees everything: the bus's own figures. */
	ASSERT_EQ(0, pcb_stats(bus, ids.private_id, &s));
	EXPECT_EQ(3U, s.published);
	ASSERT_EQ(0, pcb_stats(bus, 0, &s));
	EXPECT_EQ(0U, s.flags);
	EXPECT_EQ(0, pcbt_run_as_nobody(nobody_reads_stats, &ids));
	pcb_close(bus);
	pcbt_cleanup();
}

TEST_HARNESS_MAIN
