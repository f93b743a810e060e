// SPDX-License-Identifier: GPL-2.0
/*
 * Ordering under concurrency: several publisher threads on one topic,
 * several subscribers draining at the same time.  Every reliable
 * subscriber must see the same messages in the same order, sequence
 * numbers without holes, message ids strictly increasing and each
 * publisher's messages in the order it sent them.  A lossy subscriber
 * must account for every message it missed.
 *
 * PCB_ORDER_MSGS overrides the number of messages per publisher.
 */
#include "pcb_util.h"

#define SCHEMA		0x0bde7
#define NR_PUB		4
#define NR_SUB_MAX	4
#define MSGS		100000
#define PUB_TIMEOUT	(30 * PCBT_SEC)
#define RUN_TIMEOUT	(240 * PCBT_SEC)

struct payload {
	__u32 pub;
	__u32 pad;
	__u64 count;
};

struct pub_arg {
	const char *name;
	__u32 index;
	__u64 msgs;
	int err;		/* first error, negative errno */
	__u64 done;
};

/* What one subscriber saw. */
struct sub_arg {
	struct pcbt_ring ring;
	bool lossy;
	__u64 total;		/* messages that will be published */
	const int *pubs_done;	/* atomic */
	__u64 *msg_ids;		/* indexed by seq - 1 */
	__u64 got;
	__u64 gaps;		/* missing sequence numbers seen */
	__u64 last_seq;
	__u64 next_count[NR_PUB];
	const char *err;
	__u64 err_at;
	__u64 start_after;	/* lossy: wait until this many published */
	const char *name;
	int info_fd;
};

static __u64 msgs_per_pub(void)
{
	const char *s = getenv("PCB_ORDER_MSGS");

	return s ? strtoull(s, NULL, 0) : MSGS;
}

static void *publisher(void *p)
{
	struct pub_arg *a = p;
	struct payload pl = { .pub = a->index };
	__u32 h;
	int fd;

	fd = pcbt_open();
	if (fd < 0) {
		a->err = fd;
		return NULL;
	}
	a->err = pcbt_open_topic(fd, a->name, SCHEMA, &h);
	for (pl.count = 0; !a->err && pl.count < a->msgs; pl.count++) {
		a->err = pcbt_publish(fd, h, &pl, sizeof(pl), 0, PUB_TIMEOUT,
				      NULL);
		a->done++;
	}
	close(fd);
	return NULL;
}

static bool check_record(struct sub_arg *s, const struct pcb_record *rec,
			 __u64 *expect_seq)
{
	const struct payload *pl = (const void *)pcbt_payload(rec);

	if (rec->payload_len != sizeof(*pl)) {
		s->err = "payload length";
		return false;
	}
	if (rec->seq < *expect_seq || rec->seq > s->total ||
	    (!s->lossy && rec->seq != *expect_seq)) {
		s->err = "sequence number out of order";
		return false;
	}
	s->gaps += rec->seq - *expect_seq;
	*expect_seq = rec->seq + 1;
	s->last_seq = rec->seq;
	if (s->got && rec->msg_id <= s->msg_ids[s->got - 1]) {
		s->err = "msg_id not strictly increasing";
		return false;
	}
	if (pl->pub >= NR_PUB || pl->count < s->next_count[pl->pub] ||
	    (!s->lossy && pl->count != s->next_count[pl->pub])) {
		s->err = "a publisher's messages out of its order";
		return false;
	}
	s->next_count[pl->pub] = pl->count + 1;
	/* Lossy rings store ids densely; reliable ones by seq. */
	s->msg_ids[s->got] = rec->msg_id;
	s->got++;
	return true;
}

static void *subscriber(void *p)
{
	struct sub_arg *s = p;
	__u64 deadline = pcbt_now_ns(CLOCK_MONOTONIC) + RUN_TIMEOUT;
	__u64 expect_seq = 1;

	while (s->start_after &&
	       pcbt_published(s->info_fd, s->name) < (long long)s->start_after)
		pcbt_sleep_ms(1);

	for (;;) {
		const struct pcb_record *rec;
		int ret;

		while ((rec = pcbt_ring_peek(&s->ring))) {
			if (!check_record(s, rec, &expect_seq)) {
				s->err_at = s->got;
				return NULL;
			}
			pcbt_ring_pop(&s->ring);
			/* Hand space back in batches, as a real consumer would. */
			if (!(s->got & 63))
				pcbt_ring_release(&s->ring);
		}
		if (s->ring.corrupt) {
			s->err = s->ring.corrupt;
			return NULL;
		}
		pcbt_ring_release(&s->ring);
		if (expect_seq > s->total)
			return NULL;
		if (s->lossy && __atomic_load_n(s->pubs_done, __ATOMIC_ACQUIRE)) {
			/* Publishers are gone: what is not there never will be. */
			if (!pcbt_ring_peek(&s->ring) && !s->ring.corrupt)
				return NULL;
			continue;
		}
		if (pcbt_now_ns(CLOCK_MONOTONIC) > deadline) {
			s->err = "timed out waiting for messages";
			return NULL;
		}
		ret = pcbt_ring_wait(&s->ring, 100 * PCBT_MS);
		if (ret && ret != -ETIMEDOUT && ret != -EINTR) {
			s->err = "PCB_IOC_WAIT failed";
			s->err_at = -ret;
			return NULL;
		}
	}
}

FIXTURE(order) {
	int fd;
	char name[PCB_NAME_MAX];
	struct pub_arg pubs[NR_PUB];
	struct sub_arg subs[NR_SUB_MAX];
	int nr_subs;
	int pubs_done;		/* atomic */
	__u64 msgs;
};

FIXTURE_SETUP(order)
{
	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "order");
	self->msgs = msgs_per_pub();
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA,
				 sizeof(struct payload), 0700, NULL));
}

FIXTURE_TEARDOWN(order)
{
	int i;

	for (i = 0; i < self->nr_subs; i++) {
		pcbt_ring_close(&self->subs[i].ring);
		free(self->subs[i].msg_ids);
	}
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

static int add_sub(FIXTURE_DATA(order) *self, __u32 ring_size, bool lossy)
{
	struct sub_arg *s = &self->subs[self->nr_subs];
	int fd;

	memset(s, 0, sizeof(*s));
	s->lossy = lossy;
	s->total = self->msgs * NR_PUB;
	s->pubs_done = &self->pubs_done;
	s->name = self->name;
	s->info_fd = self->fd;
	s->msg_ids = calloc(s->total, sizeof(*s->msg_ids));
	if (!s->msg_ids)
		return -ENOMEM;
	fd = pcbt_ring_open(ring_size, &s->ring);
	if (fd < 0)
		return fd;
	self->nr_subs++;
	return pcbt_subscribe(fd, self->name, SCHEMA,
			      lossy ? PCB_SUB_LOSSY : 0, NULL);
}

/* Runs every publisher and subscriber to the end; returns the seconds. */
static double run(FIXTURE_DATA(order) *self)
{
	pthread_t pt[NR_PUB], st[NR_SUB_MAX];
	__u64 start = pcbt_now_ns(CLOCK_MONOTONIC);
	int i;

	for (i = 0; i < self->nr_subs; i++)
		pthread_create(&st[i], NULL, subscriber, &self->subs[i]);
	for (i = 0; i < NR_PUB; i++) {
		self->pubs[i] = (struct pub_arg){
			.name = self->name,
			.index = i,
			.msgs = self->msgs,
		};
		pthread_create(&pt[i], NULL, publisher, &self->pubs[i]);
	}
	for (i = 0; i < NR_PUB; i++)
		pthread_join(pt[i], NULL);
	__atomic_store_n(&self->pubs_done, 1, __ATOMIC_RELEASE);
	for (i = 0; i < self->nr_subs; i++)
		pthread_join(st[i], NULL);
	return (pcbt_now_ns(CLOCK_MONOTONIC) - start) / 1e9;
}

static void report(struct __test_metadata *_metadata,
		   FIXTURE_DATA(order) *self, double secs)
{
	TH_LOG("%d publishers x %llu messages, %d subscribers: %.2f s",
	       NR_PUB, (unsigned long long)self->msgs, self->nr_subs, secs);
}

TEST_F_TIMEOUT(order, reliable_subscribers_agree, 300)
{
	__u64 total = self->msgs * NR_PUB;
	int i, j;
	double secs;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, add_sub(self, 256 * 1024, false));
	secs = run(self);
	report(_metadata, self, secs);

	for (i = 0; i < NR_PUB; i++) {
		EXPECT_EQ(0, self->pubs[i].err) TH_LOG("publisher %d", i);
		EXPECT_EQ(self->msgs, self->pubs[i].done);
	}
	EXPECT_EQ((long long)total, pcbt_published(self->fd, self->name));
	for (i = 0; i < self->nr_subs; i++) {
		struct sub_arg *s = &self->subs[i];

		EXPECT_EQ(NULL, s->err)
			TH_LOG("subscriber %d: %s at message %llu", i, s->err,
			       (unsigned long long)s->err_at);
		EXPECT_EQ(total, s->got) TH_LOG("subscriber %d", i);
		EXPECT_EQ(0ULL, s->gaps);
		EXPECT_EQ(0ULL, s->ring.hdr->dropped);
		for (j = 0; j < NR_PUB; j++)
			EXPECT_EQ(self->msgs, s->next_count[j]);
		if (i && s->got == total && self->subs[0].got == total)
			EXPECT_EQ(0, memcmp(self->subs[0].msg_ids, s->msg_ids,
					    total * sizeof(__u64)))
				TH_LOG("subscribers 0 and %d disagree", i);
	}
}

/* How many of @part's first ids appear in @all in the same order. */
static __u64 subsequence(const struct sub_arg *part, const struct sub_arg *all)
{
	__u64 k = 0, m;

	for (m = 0; m < part->got; m++) {
		while (k < all->got && all->msg_ids[k] != part->msg_ids[m])
			k++;
		if (k == all->got)
			break;
	}
	return m;
}

TEST_F_TIMEOUT(order, lossy_subscriber_accounts_for_drops, 300)
{
	__u64 total = self->msgs * NR_PUB;
	struct sub_arg *lossy;
	double secs;
	int i;

	ASSERT_EQ(0, add_sub(self, 256 * 1024, false));
	ASSERT_EQ(0, add_sub(self, 8192, true));
	lossy = &self->subs[1];
	/* Start late so that the small ring overflows for certain. */
	lossy->start_after = total / 10;
	secs = run(self);
	report(_metadata, self, secs);

	for (i = 0; i < NR_PUB; i++) {
		EXPECT_EQ(0, self->pubs[i].err) TH_LOG("publisher %d", i);
	}
	EXPECT_EQ(NULL, self->subs[0].err) TH_LOG("reliable: %s",
						  self->subs[0].err);
	EXPECT_EQ(total, self->subs[0].got);
	EXPECT_EQ(NULL, lossy->err) TH_LOG("lossy: %s at %llu", lossy->err,
					   (unsigned long long)lossy->err_at);

	/* Missing sequence numbers, including those after the last one. */
	lossy->gaps += total - lossy->last_seq;
	EXPECT_LT(0ULL, lossy->ring.hdr->dropped);
	EXPECT_EQ(total, lossy->got + lossy->ring.hdr->dropped);
	EXPECT_EQ(lossy->ring.hdr->dropped, lossy->gaps);

	/* What the lossy one got is a subsequence of the reliable one. */
	EXPECT_EQ(lossy->got, subsequence(lossy, &self->subs[0]));
}

/* One publisher, two topics: its ids grow in its own order across both. */
TEST_F_TIMEOUT(order, one_publisher_two_topics, 120)
{
	enum { N = 10000 };
	char other[PCB_NAME_MAX];
	struct pcbt_ring both, only_b;
	__u64 last_id = 0, seq[2] = { 0, 0 };
	__u32 h[2], id[2];
	int fb, fo, i;

	pcbt_name(other, "order-b");
	ASSERT_EQ(0, pcbt_create(self->fd, other, SCHEMA,
				 sizeof(struct payload), 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA, &h[0]));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, other, SCHEMA, &h[1]));
	fb = pcbt_ring_open(1 << 20, &both);
	ASSERT_LE(0, fb);
	fo = pcbt_ring_open(1 << 20, &only_b);
	ASSERT_LE(0, fo);
	ASSERT_EQ(0, pcbt_subscribe(fb, self->name, SCHEMA, 0, &id[0]));
	ASSERT_EQ(0, pcbt_subscribe(fb, other, SCHEMA, 0, &id[1]));
	ASSERT_EQ(0, pcbt_subscribe(fo, other, SCHEMA, 0, NULL));

	for (i = 0; i < N; i++) {
		struct payload pl = { .pub = i & 1, .count = i };
		const struct pcb_record *rec;
		struct pcb_publish p;
		int t = i & 1;

		ASSERT_EQ(0, pcbt_publish(self->fd, h[t], &pl, sizeof(pl), 0,
					  PUB_TIMEOUT, &p));
		ASSERT_LT(last_id, p.msg_id) TH_LOG("message %d", i);
		last_id = p.msg_id;
		ASSERT_EQ(++seq[t], p.seq);

		/* The ring of both topics holds them in publish order. */
		rec = pcbt_ring_next(&both, PCBT_SEC);
		ASSERT_NE(NULL, rec) TH_LOG("message %d", i);
		EXPECT_EQ(id[t], rec->topic_id);
		EXPECT_EQ(p.msg_id, rec->msg_id);
		EXPECT_EQ(p.seq, rec->seq);
		pcbt_ring_pop(&both);
		if (!(i & 255))
			pcbt_ring_release(&both);
		if (t) {
			rec = pcbt_ring_next(&only_b, PCBT_SEC);
			ASSERT_NE(NULL, rec);
			EXPECT_EQ(p.msg_id, rec->msg_id);
			pcbt_ring_pop(&only_b);
			if (!(i & 255))
				pcbt_ring_release(&only_b);
		}
	}
	pcbt_ring_close(&both);
	pcbt_ring_close(&only_b);
}

TEST_HARNESS_MAIN
