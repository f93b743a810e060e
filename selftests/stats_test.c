// SPDX-License-Identifier: GPL-2.0
/*
 * Statistics: PCB_IOC_STATS per topic and for the bus, and the read-only
 * views /proc/pcb/topics and /proc/pcb/subscriptions, against a workload
 * whose every outcome is known: deliveries, filter rejects, drops of a
 * full lossy ring, publishes refused, blocked and timed out, consumers
 * woken.
 *
 * The bus counters are compared as deltas around the workload, which
 * assumes nothing else publishes meanwhile (run.sh runs one test at a
 * time).
 */
#include "pcb_util.h"

#define SCHEMA		0x5eed
#define LEN		64
/* A record of LEN payload bytes and no dependency takes this much ring. */
#define REC		PCB_REC_SIZE(sizeof(struct pcb_record) + LEN)
#define SMALL_RING	4096U
#define BIG_RING	65536U
#define NR_MSGS		40U

static int stats_of(int fd, __u32 topic_id, struct pcb_stats *st)
{
	struct pcb_stats_query q = {
		.stats = (uintptr_t)st,
		.size = sizeof(*st),
		.topic_id = topic_id,
	};

	memset(st, 0xa5, sizeof(*st));
	return pcbt_ioctl(fd, PCB_IOC_STATS, &q);
}

/* Index of the bucket of @ns, as the ABI describes them. */
static unsigned int bucket_of(__u64 ns)
{
	unsigned int b = ns ? 64 - __builtin_clzll(ns) : 0;

	return b < PCB_HIST_BUCKETS ? b : PCB_HIST_BUCKETS - 1;
}

/*
 * Whether a histogram holds together: the buckets add up to @count, the
 * sum lies between what the buckets allow, and max_ns is in the highest
 * bucket used.  Prints what is wrong.
 */
static bool hist_consistent(const struct pcb_hist *h)
{
	__u64 total = 0, lo = 0, hi = 0;
	int top = -1;
	unsigned int i;

	for (i = 0; i < PCB_HIST_BUCKETS; i++) {
		total += h->buckets[i];
		if (!h->buckets[i])
			continue;
		top = i;
		if (i) {
			lo += h->buckets[i] << (i - 1);
			hi += h->buckets[i] * ((1ULL << i) - 1);
		}
	}
	/* The last bucket has no upper bound. */
	if (top == PCB_HIST_BUCKETS - 1)
		hi = ~0ULL;
	if (total != h->count) {
		printf("# buckets add up to %llu, count %llu\n",
		       (unsigned long long)total, (unsigned long long)h->count);
		return false;
	}
	if (h->count && (h->sum_ns < lo || h->sum_ns > hi)) {
		printf("# sum_ns %llu outside [%llu, %llu]\n",
		       (unsigned long long)h->sum_ns, (unsigned long long)lo,
		       (unsigned long long)hi);
		return false;
	}
	if (h->count && (int)bucket_of(h->max_ns) != top) {
		printf("# max_ns %llu is not in the top bucket %d\n",
		       (unsigned long long)h->max_ns, top);
		return false;
	}
	if (!h->count && (h->sum_ns || h->max_ns))
		return false;
	return true;
}

/* A key filter that accepts even keys only. */
static void even_keys(union pcbt_filter *f)
{
	pcbt_filter_init(f);
	pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_EQ, 0)->mask = 1;
}

FIXTURE(stats) {
	int pfd;
	__u32 handle;
	__u32 topic_id;
	char name[PCB_NAME_MAX];
	struct pcbt_ring a;	/* reliable, even keys only, BIG_RING */
	struct pcbt_ring b;	/* lossy, SMALL_RING */
};

FIXTURE_SETUP(stats)
{
	self->a.fd = self->b.fd = -1;
	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "stats");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0740,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
}

FIXTURE_TEARDOWN(stats)
{
	if (self->a.fd >= 0)
		pcbt_ring_close(&self->a);
	if (self->b.fd >= 0)
		pcbt_ring_close(&self->b);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

/* Subscribes a (filtered) and b (lossy), publishes NR_MSGS, keys 0 ... */
static int filter_and_drop(FIXTURE_DATA(stats) *self)
{
	static const char msg[LEN];
	union pcbt_filter even;
	unsigned int i;
	int ret;

	even_keys(&even);
	ret = pcbt_ring_open(BIG_RING, &self->a);
	if (ret < 0)
		return ret;
	ret = pcbt_subscribe_filter(self->a.fd, self->name, SCHEMA, 0,
				    &even.f, NULL);
	if (ret)
		return ret;
	ret = pcbt_ring_open(SMALL_RING, &self->b);
	if (ret < 0)
		return ret;
	ret = pcbt_subscribe(self->b.fd, self->name, SCHEMA, PCB_SUB_LOSSY,
			     NULL);
	for (i = 0; !ret && i < NR_MSGS; i++)
		ret = pcbt_publish_deps(self->pfd, self->handle, msg, LEN, i,
					NULL, 0, 0, NULL);
	return ret;
}

TEST_F(stats, topic_counts_deliveries_rejects_drops)
{
	const __u64 fit = SMALL_RING / REC;	/* what b holds */
	struct pcb_stats st;

	ASSERT_EQ(0, filter_and_drop(self));
	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &st));

	EXPECT_EQ(PCB_STATS_VERSION, st.version);
	EXPECT_EQ(self->topic_id, st.topic_id);
	EXPECT_TRUE(st.clock == PCB_CLOCK_TSC || st.clock == PCB_CLOCK_MONO);
	EXPECT_EQ(st.clock == PCB_CLOCK_TSC, st.tsc_khz != 0);
	EXPECT_EQ(1U, st.nr_topics);
	EXPECT_EQ(2U, st.nr_subscriptions);
	EXPECT_EQ(NR_MSGS, st.published);
	EXPECT_EQ(NR_MSGS * LEN, st.bytes);
	EXPECT_EQ(NR_MSGS / 2 + fit, st.delivered);
	EXPECT_EQ(NR_MSGS / 2, st.rejected);
	EXPECT_EQ(NR_MSGS - fit, st.dropped_full);
	EXPECT_EQ(0U, st.dropped_broken);
	EXPECT_EQ(0U, st.blocked);
	EXPECT_EQ(0U, st.timeouts);
	EXPECT_EQ(0U, st.would_block);
	EXPECT_EQ(0U, st.wakeups);
	/* a holds the even half, b is full. */
	EXPECT_EQ(NR_MSGS / 2 * REC + fit * REC, st.ring_used);
	EXPECT_EQ(BIG_RING + SMALL_RING, st.ring_size);
	EXPECT_EQ(1000U, st.ring_fill_max);
	/* PCB_STATS_PARTIAL is for the bus's figures only. */
	EXPECT_EQ(0U, st.flags);
	EXPECT_EQ(NR_MSGS, st.publish_ns.count);
	EXPECT_LT(0U, st.publish_ns.max_ns);
	EXPECT_TRUE(hist_consistent(&st.publish_ns));
	/* The ring header agrees about the drops. */
	EXPECT_EQ(NR_MSGS - fit, self->b.hdr->dropped);

	/* Consuming changes the fill levels, not the counters. */
	pcbt_ring_drain(&self->a);
	pcbt_ring_drain(&self->b);
	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &st));
	EXPECT_EQ(0U, st.ring_used);
	EXPECT_EQ(0U, st.ring_fill_max);
	EXPECT_EQ(NR_MSGS, st.published);
	EXPECT_EQ(NR_MSGS / 2 + fit, st.delivered);
}

/* A publisher that waits for room in another thread. */
struct bg_pub {
	int fd;
	__u32 handle;
	__u64 timeout_ns;
	pthread_t thread;
	int ret;
};

static void *bg_publish(void *p)
{
	struct bg_pub *b = p;
	static const char msg[LEN];

	b->ret = pcbt_publish(b->fd, b->handle, msg, LEN, 0, b->timeout_ns,
			      NULL);
	return NULL;
}

/* Waits up to @ms for a publisher to be waiting for room in @r. */
static bool pub_waiting_within(const struct pcbt_ring *r, unsigned int ms)
{
	while (!(pcbt_ring_flags(r) & PCB_RING_PUB_WAITING) && ms--)
		pcbt_sleep_ms(1);
	return pcbt_ring_flags(r) & PCB_RING_PUB_WAITING;
}

TEST_F(stats, topic_counts_backpressure)
{
	static const char msg[LEN];
	const __u64 fit = SMALL_RING / REC;
	struct bg_pub bg = {
		.fd = self->pfd,
		.handle = self->handle,
		.timeout_ns = 60 * PCBT_SEC,
	};
	struct pcb_stats st;
	__u64 i, t0;

	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &self->a));
	ASSERT_EQ(0, pcbt_subscribe(self->a.fd, self->name, SCHEMA, 0, NULL));
	for (i = 0; i < fit; i++)
		ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN,
					  PCB_PUB_NONBLOCK, 0, NULL));
	/* Refused at once: would_block, not blocked. */
	ASSERT_EQ(-EAGAIN, pcbt_publish(self->pfd, self->handle, msg, LEN,
					PCB_PUB_NONBLOCK, 0, NULL));
	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &st));
	EXPECT_EQ(1U, st.would_block);
	EXPECT_EQ(0U, st.blocked);

	/* Waits, gives up: blocked once, one timeout, nothing published. */
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	ASSERT_EQ(-ETIMEDOUT, pcbt_publish(self->pfd, self->handle, msg, LEN,
					   0, 30 * PCBT_MS, NULL));
	EXPECT_LE(30 * PCBT_MS, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &st));
	EXPECT_EQ(1U, st.blocked);
	EXPECT_EQ(1U, st.timeouts);
	EXPECT_EQ(fit, st.published);

	/*
	 * Waits, then gets room: blocked once more, no timeout.  NOTIFY
	 * clears the PUB_WAITING the publisher that gave up left behind.
	 */
	ASSERT_EQ(0, pcbt_ioctl_val(self->a.fd, PCB_IOC_NOTIFY, 0));
	ASSERT_EQ(0U, pcbt_ring_flags(&self->a) & PCB_RING_PUB_WAITING);
	ASSERT_EQ(0, pthread_create(&bg.thread, NULL, bg_publish, &bg));
	ASSERT_TRUE(pub_waiting_within(&self->a, 20000));
	EXPECT_EQ(fit, pcbt_ring_drain(&self->a));
	pthread_join(bg.thread, NULL);
	ASSERT_EQ(0, bg.ret);

	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &st));
	EXPECT_EQ(fit + 1, st.published);
	EXPECT_EQ((fit + 1) * LEN, st.bytes);
	EXPECT_EQ(fit + 1, st.delivered);
	EXPECT_EQ(2U, st.blocked);
	EXPECT_EQ(1U, st.timeouts);
	EXPECT_EQ(1U, st.would_block);
	EXPECT_EQ(0U, st.dropped_full);
	EXPECT_EQ(0U, st.rejected);
	EXPECT_EQ(REC, st.ring_used);
	/* One sample per publish that went out, waits included. */
	EXPECT_EQ(fit + 1, st.publish_ns.count);
	EXPECT_TRUE(hist_consistent(&st.publish_ns));
	/* The wait is in the last sample: about a wake-up's time at least. */
	EXPECT_LT(0U, st.publish_ns.max_ns);
}

/* Sleeps in PCB_IOC_WAIT on a ring until a record comes. */
static void *sleeper(void *p)
{
	struct pcbt_ring *r = p;

	return (void *)(long)pcbt_ring_wait(r, 60 * PCBT_SEC);
}

static bool need_wakeup_within(const struct pcbt_ring *r, unsigned int ms)
{
	while (!(pcbt_load_once(&r->cons->flags) & PCB_CONS_NEED_WAKEUP) &&
	       ms--)
		pcbt_sleep_ms(1);
	return pcbt_load_once(&r->cons->flags) & PCB_CONS_NEED_WAKEUP;
}

TEST_F(stats, topic_counts_wakeups)
{
	struct pcb_stats st;
	pthread_t thread;
	void *ret;

	ASSERT_LE(0, pcbt_ring_open(BIG_RING, &self->a));
	ASSERT_EQ(0, pcbt_subscribe(self->a.fd, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pthread_create(&thread, NULL, sleeper, &self->a));
	ASSERT_TRUE(need_wakeup_within(&self->a, 20000));
	pcbt_sleep_ms(50);	/* into the kernel, most likely */
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "x", 1, 0, 0, NULL));
	pthread_join(thread, &ret);
	ASSERT_EQ(0, (long)ret);

	/* Nobody asleep now: no wake-up. */
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, "y", 1, 0, 0, NULL));
	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &st));
	EXPECT_EQ(1U, st.wakeups);
	EXPECT_EQ(2U, st.published);
	EXPECT_EQ(2U, st.delivered);
}

TEST_F(stats, bus_deltas_equal_the_topics)
{
	struct pcb_stats before, after, topic;

	ASSERT_EQ(0, stats_of(self->pfd, 0, &before));
	EXPECT_EQ(0U, before.topic_id);
	EXPECT_LE(1U, before.nr_topics);
	ASSERT_EQ(0, filter_and_drop(self));
	ASSERT_EQ(0, stats_of(self->pfd, 0, &after));
	ASSERT_EQ(0, stats_of(self->pfd, self->topic_id, &topic));

	EXPECT_EQ(topic.published, after.published - before.published);
	EXPECT_EQ(topic.bytes, after.bytes - before.bytes);
	EXPECT_EQ(topic.delivered, after.delivered - before.delivered);
	EXPECT_EQ(topic.dropped_full, after.dropped_full - before.dropped_full);
	EXPECT_EQ(topic.dropped_broken,
		  after.dropped_broken - before.dropped_broken);
	EXPECT_EQ(topic.rejected, after.rejected - before.rejected);
	EXPECT_EQ(topic.blocked, after.blocked - before.blocked);
	EXPECT_EQ(topic.timeouts, after.timeouts - before.timeouts);
	EXPECT_EQ(topic.would_block, after.would_block - before.would_block);
	EXPECT_EQ(topic.wakeups, after.wakeups - before.wakeups);
	EXPECT_EQ(topic.publish_ns.count,
		  after.publish_ns.count - before.publish_ns.count);
	EXPECT_EQ(topic.publish_ns.sum_ns,
		  after.publish_ns.sum_ns - before.publish_ns.sum_ns);
	EXPECT_EQ(before.nr_topics, after.nr_topics);
	EXPECT_EQ(before.nr_subscriptions + 2, after.nr_subscriptions);
	EXPECT_EQ(before.ring_size + BIG_RING + SMALL_RING, after.ring_size);
	EXPECT_EQ(1000U, after.ring_fill_max);
	EXPECT_TRUE(hist_consistent(&after.publish_ns));
	EXPECT_EQ(after.clock, topic.clock);
	EXPECT_EQ(after.tsc_khz, topic.tsc_khz);
	/*
	 * Without CAP_IPC_OWNER the bus's figures are sums over the topics
	 * the caller may see; the deltas above hold either way.
	 */
	EXPECT_EQ(pcbt_has_cap(CAP_IPC_OWNER) ? 0U : PCB_STATS_PARTIAL,
		  after.flags);
}

struct hidden_args {
	__u32 secret_id;	/* mode 0700: traffic hidden from others */
	__u32 open_id;		/* mode 0704: others may read it */
	char secret[PCB_NAME_MAX];
};

/*
 * What the caller may see of every topic's traffic, summed: published
 * over the topics whose STATS it may read.  -errno on a failure.
 */
static long long visible_published(int fd)
{
	struct pcb_topic_info ents[16];
	struct pcb_topic_list l = { .start_id = 1 };
	long long sum = 0;
	struct pcb_stats st;
	__u32 i;
	int ret;

	do {
		l.entries = (uintptr_t)ents;
		l.capacity = ARRAY_SIZE(ents);
		ret = pcbt_ioctl(fd, PCB_IOC_TOPIC_LIST, &l);
		if (ret)
			return ret;
		for (i = 0; i < l.count; i++) {
			ret = stats_of(fd, ents[i].topic_id, &st);
			if (ret == -EACCES || ret == -ENOENT)
				continue;
			if (ret)
				return ret;
			sum += st.published;
		}
		l.start_id = l.next_id;
	} while (l.next_id);
	return sum;
}

/* As uid 65534: what another user's topics let it see. */
static int read_as_stranger(void *arg)
{
	const struct hidden_args *a = arg;
	struct pcb_topic_info info;
	struct pcb_stats st, bus_st;
	char buf[8192], *line, *save = NULL;
	int fd = pcbt_open();
	int found = 0;

	PCBT_CHILD_EXPECT(1, fd >= 0);
	PCBT_CHILD_EXPECT(-EACCES, stats_of(fd, a->secret_id, &st));
	PCBT_CHILD_EXPECT(0, stats_of(fd, a->open_id, &st));
	PCBT_CHILD_EXPECT(1, st.published);
	PCBT_CHILD_EXPECT(0, st.flags);
	PCBT_CHILD_EXPECT(0, stats_of(fd, 0, &bus_st));
	PCBT_CHILD_EXPECT(PCB_STATS_PARTIAL, bus_st.flags);
	/* The secret topic's traffic is not in the sums either. */
	PCBT_CHILD_EXPECT(visible_published(fd), (long long)bus_st.published);
	PCBT_CHILD_EXPECT(0, pcbt_info(fd, a->secret, &info));
	PCBT_CHILD_EXPECT(PCB_TOPIC_INFO_HIDDEN,
			  info.flags & PCB_TOPIC_INFO_HIDDEN);
	PCBT_CHILD_EXPECT(0, info.published);
	PCBT_CHILD_EXPECT(0, info.nr_subscribers);
	PCBT_CHILD_EXPECT(1, pcbt_read_file("/proc/pcb/topics", buf,
					    sizeof(buf)) > 0);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[PCB_NAME_MAX], subs[16], published[24];

		if (sscanf(line, "%*u %63s %*s %*u %*o %*u %*u %15s %23s",
			   name, subs, published) != 3 ||
		    strcmp(name, a->secret))
			continue;
		PCBT_CHILD_EXPECT(0, strcmp(subs, "-"));
		PCBT_CHILD_EXPECT(0, strcmp(published, "-"));
		found++;
	}
	PCBT_CHILD_EXPECT(1, found);
	close(fd);
	return 0;
}

/*
 * A topic's traffic is for its owner, its readers and CAP_IPC_OWNER:
 * STATS is EACCES for others, TOPIC_INFO and /proc/pcb/topics hide the
 * counters, and the bus's sums leave the topic out.
 */
TEST_F(stats, traffic_hidden_without_read)
{
	struct hidden_args a;
	char open_name[PCB_NAME_MAX];
	struct pcb_topic_info info;
	__u32 h;

	if (!pcbt_is_root())
		SKIP(return, "needs root to look as another user");
	pcbt_name(a.secret, "secret");
	pcbt_name(open_name, "open");
	ASSERT_EQ(0, pcbt_create(self->pfd, a.secret, SCHEMA, LEN, 0700,
				 &a.secret_id));
	ASSERT_EQ(0, pcbt_create(self->pfd, open_name, SCHEMA, LEN, 0704,
				 &a.open_id));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, a.secret, SCHEMA, &h));
	ASSERT_EQ(0, pcbt_publish(self->pfd, h, "s", 1, 0, 0, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, open_name, SCHEMA, &h));
	ASSERT_EQ(0, pcbt_publish(self->pfd, h, "o", 1, 0, 0, NULL));
	/* The owner sees its traffic. */
	ASSERT_EQ(0, pcbt_info(self->pfd, a.secret, &info));
	EXPECT_EQ(1U, info.published);
	EXPECT_EQ(0U, info.flags & PCB_TOPIC_INFO_HIDDEN);
	EXPECT_EQ(0, pcbt_run_as_nobody(read_as_stranger, &a));
}

TEST_F(stats, query_errors_and_sizes)
{
	struct {
		struct pcb_stats st;
		unsigned char more[64];
	} big;
	struct pcb_stats st;
	struct pcb_stats_query q = {
		.stats = (uintptr_t)&st,
		.size = sizeof(st),
	};
	struct pcb_stats_query bad;
	unsigned int i;
	void *hole = pcbt_no_access_page();

	ASSERT_EQ(PCB_STATS_SIZE_V1, sizeof(st));
	ASSERT_EQ(0, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &q));
	EXPECT_EQ(PCB_STATS_SIZE_V1, q.size);

	bad = q;
	bad.flags = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &bad));
	bad = q;
	bad.reserved0 = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &bad));
	bad = q;
	bad.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &bad));
	bad = q;
	bad.size = PCB_STATS_SIZE_V1 - 1;
	EXPECT_EQ(-EINVAL, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &bad));
	bad = q;
	bad.topic_id = ~0U;
	EXPECT_EQ(-ENOENT, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &bad));
	ASSERT_NE(NULL, hole);
	bad = q;
	bad.stats = (uintptr_t)hole;
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &bad));
	EXPECT_EQ(-EFAULT, pcbt_ioctl(self->pfd, PCB_IOC_STATS, hole));
	munmap(hole, 4096);

	/* A bigger struct: filled as far as the kernel knows, zeroes after. */
	memset(&big, 0xa5, sizeof(big));
	q.stats = (uintptr_t)&big;
	q.size = sizeof(big);
	q.topic_id = self->topic_id;
	ASSERT_EQ(0, pcbt_ioctl(self->pfd, PCB_IOC_STATS, &q));
	EXPECT_EQ(PCB_STATS_SIZE_V1, q.size);
	EXPECT_EQ(self->topic_id, big.st.topic_id);
	for (i = 0; i < sizeof(big.more); i++)
		ASSERT_EQ(0, big.more[i]);
	for (i = 0; i < ARRAY_SIZE(big.st.reserved); i++)
		EXPECT_EQ(0U, big.st.reserved[i]);
}

/* The line of /proc/pcb/FILE whose second column is @name, in @line. */
static bool proc_line(const char *file, const char *name, unsigned int nth,
		      char *line, size_t size, char *header, size_t hsize)
{
	char path[64], col[PCB_NAME_MAX + 16];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/pcb/%s", file);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(header, hsize, f))
		header[0] = '\0';
	while (!found && fgets(line, size, f))
		found = sscanf(line, "%*s %79s", col) == 1 &&
			!strcmp(col, name) && !nth--;
	fclose(f);
	return found;
}

TEST_F(stats, proc_topics)
{
	static const char msg[LEN];
	char line[256], header[256], expect[256];

	ASSERT_EQ(0, filter_and_drop(self));
	ASSERT_EQ(0, pcbt_publish(self->pfd, self->handle, msg, LEN, 0, 0,
				  NULL));
	ASSERT_TRUE(proc_line("topics", self->name, 0, line, sizeof(line),
			      header, sizeof(header)));
	EXPECT_STREQ("id name schema max_msg_size mode uid gid subscriptions published\n",
		     header);
	snprintf(expect, sizeof(expect), "%u %s %#x %u %04o %u %u 2 %u\n",
		 self->topic_id, self->name, SCHEMA, LEN, 0740,
		 (unsigned int)geteuid(), (unsigned int)getegid(),
		 NR_MSGS + 1);
	EXPECT_STREQ(expect, line);
}

struct proc_sub {
	unsigned int topic_id;
	char name[PCB_NAME_MAX];
	unsigned long long endpoint;
	int pid;
	char mode[16];
	unsigned int preds, ring_size;
	unsigned long long used, delivered, dropped, rejected;
};

static bool proc_sub(const char *name, unsigned int nth, struct proc_sub *s,
		     char *header, size_t hsize)
{
	char line[256];

	if (!proc_line("subscriptions", name, nth, line, sizeof(line), header,
		       hsize))
		return false;
	return sscanf(line, "%u %63s %llu %d %15s %u %u %llu %llu %llu %llu",
		      &s->topic_id, s->name, &s->endpoint, &s->pid, s->mode,
		      &s->preds, &s->ring_size, &s->used, &s->delivered,
		      &s->dropped, &s->rejected) == 11;
}

TEST_F(stats, proc_subscriptions)
{
	const __u64 fit = SMALL_RING / REC;
	struct proc_sub a, b, none;
	char header[256];

	ASSERT_EQ(0, filter_and_drop(self));
	/* Listed in the order they subscribed. */
	ASSERT_TRUE(proc_sub(self->name, 0, &a, header, sizeof(header)));
	EXPECT_STREQ("topic name endpoint pid mode filter_preds ring_size ring_used delivered dropped rejected\n",
		     header);
	ASSERT_TRUE(proc_sub(self->name, 1, &b, header, sizeof(header)));
	EXPECT_FALSE(proc_sub(self->name, 2, &none, header, sizeof(header)));

	EXPECT_EQ(self->topic_id, a.topic_id);
	EXPECT_EQ(getpid(), a.pid);
	EXPECT_STREQ("reliable", a.mode);
	EXPECT_EQ(1U, a.preds);
	EXPECT_EQ(BIG_RING, a.ring_size);
	EXPECT_EQ(NR_MSGS / 2 * REC, a.used);
	EXPECT_EQ(NR_MSGS / 2, a.delivered);
	EXPECT_EQ(0U, a.dropped);
	EXPECT_EQ(NR_MSGS / 2, a.rejected);

	EXPECT_EQ(self->topic_id, b.topic_id);
	EXPECT_EQ(getpid(), b.pid);
	EXPECT_STREQ("lossy", b.mode);
	EXPECT_EQ(0U, b.preds);
	EXPECT_EQ(SMALL_RING, b.ring_size);
	EXPECT_EQ(SMALL_RING, b.used);
	EXPECT_EQ(fit, b.delivered);
	EXPECT_EQ(NR_MSGS - fit, b.dropped);
	EXPECT_EQ(0U, b.rejected);

	EXPECT_LT(0U, a.endpoint);
	EXPECT_LT(0U, b.endpoint);
	EXPECT_NE(a.endpoint, b.endpoint);

	/* Gone with the subscription. */
	ASSERT_EQ(0, pcbt_unsubscribe(self->a.fd, self->topic_id));
	ASSERT_TRUE(proc_sub(self->name, 0, &none, header, sizeof(header)));
	EXPECT_EQ(b.endpoint, none.endpoint);
	EXPECT_FALSE(proc_sub(self->name, 1, &none, header, sizeof(header)));
}

TEST_HARNESS_MAIN
