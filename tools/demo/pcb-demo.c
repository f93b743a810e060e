// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-demo - two publishers, two subscribers (one reliable, one lossy) on
 * one topic; checks ordering and delivery and measures one-way latency.
 *
 * Each subscriber checks what the bus promises:
 *  - message ids strictly increasing, sequence numbers increasing, each
 *    publisher's messages in the order it sent them;
 *  - reliable: every message, sequence numbers contiguous from 1, nothing
 *    dropped;
 *  - lossy: what it missed equals the drop counter of its ring header.
 * Exit status 0 when all holds, 1 when something is violated or fails.
 *
 * One-way latency goes into libpcb's histogram (struct pcb_lat_hist), on
 * the bus clock: the TSC where it is usable, CLOCK_MONOTONIC elsewhere
 * (as in most virtual machines).
 *
 * With PCB_DEMO_VM=1 in the environment every latency figure is labelled
 * as coming from an emulated machine.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpcb.h>

#define NR_PUBLISHERS		2
#define DEFAULT_MSGS		3000	/* per publisher */
#define RELIABLE_RING		(64 * 1024)
#define LOSSY_RING		PCB_RING_MIN_SIZE
#define PUBLISH_TIMEOUT_NS	(10 * 1000000000ULL)
#define WAIT_NS			(100 * 1000000ULL)
#define SPIN_NS			20000

struct demo_msg {
	uint32_t publisher;
	uint32_t reserved;
	uint64_t n;		/* 0, 1, ... per publisher */
};

PCB_DEFINE_TOPIC(demo, struct demo_msg, 0x70636264656d6f31ULL /* "pcbdemo1" */)

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

static const char *topic_name;
static uint64_t msgs_per_pub = DEFAULT_MSGS;
static bool in_vm;
static int done;	/* set once every publisher has returned */

struct subscriber {
	const char *label;
	bool lossy;
	size_t ring_size;
	struct pcb *bus;
	struct pcb_topic_demo topic;
	pthread_t thread;

	uint64_t received;
	uint64_t gaps;		/* messages missing between two received */
	uint64_t last_seq;
	uint64_t last_id;
	uint64_t next_n[NR_PUBLISHERS];
	uint64_t dropped;	/* ring header */
	uint32_t clock;		/* PCB_CLOCK_*, 0 when the kernel names none */
	struct pcb_lat_hist *lat;
	int error;		/* a negative errno from the bus */
	char violation[160];	/* the first broken promise */
};

struct publisher {
	unsigned int index;
	struct pcb *bus;
	pthread_t thread;
	int error;
	uint64_t published;
};

static void violate(struct subscriber *s, const char *fmt, ...)
{
	va_list ap;

	if (s->violation[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
	va_end(ap);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * One-way latency of @msg: from the publish call entering the kernel
 * (record->tsc, on the bus clock) to now.  A kernel that names no clock
 * leaves the message id, CLOCK_REALTIME when the message was accepted
 * (hybrid logical clock), to compare with CLOCK_REALTIME now.
 */
static void record_latency(struct subscriber *s, const struct pcb_msg *msg)
{
	uint64_t now;

	if (s->clock) {
		pcb_lat_hist_record(s->bus, s->lat, msg);	/* failures counted */
		return;
	}
	now = realtime_ns();
	pcb_lat_hist_add(s->lat, now > msg->rec->msg_id ?
				 now - msg->rec->msg_id : 0);
}

static void check_order(struct subscriber *s, const struct pcb_msg *msg,
			const struct demo_msg *m)
{
	const struct pcb_record *r = msg->rec;

	if (r->msg_id <= s->last_id)
		violate(s, "message id %" PRIu64 " after %" PRIu64,
			(uint64_t)r->msg_id, s->last_id);
	if (r->seq <= s->last_seq)
		violate(s, "seq %" PRIu64 " after %" PRIu64,
			(uint64_t)r->seq, s->last_seq);
	else if (r->seq != s->last_seq + 1)
		s->gaps += r->seq - s->last_seq - 1;
	if (!s->lossy && r->seq != s->last_seq + 1)
		violate(s, "reliable: seq %" PRIu64 " after %" PRIu64,
			(uint64_t)r->seq, s->last_seq);

	if (m->publisher >= NR_PUBLISHERS || m->n >= msgs_per_pub) {
		violate(s, "bad payload: publisher %u, n %" PRIu64,
			m->publisher, m->n);
	} else if (m->n < s->next_n[m->publisher] ||
		   (!s->lossy && m->n != s->next_n[m->publisher])) {
		violate(s, "publisher %u: message %" PRIu64 " when %" PRIu64 " was next",
			m->publisher, m->n, s->next_n[m->publisher]);
	} else {
		s->next_n[m->publisher] = m->n + 1;
	}
	s->last_id = r->msg_id;
	s->last_seq = r->seq;
}

static void consume(struct subscriber *s, const struct pcb_msg *msg)
{
	const struct demo_msg *m = pcb_msg_typed(&s->topic, msg);

	record_latency(s, msg);
	if (!m) {
		violate(s, "message of %zu bytes from topic %u", msg->len,
			msg->rec->topic_id);
		return;
	}
	check_order(s, msg, m);
}

/* The lossy subscriber is slow on purpose, so that its small ring overflows. */
static void dawdle(const struct subscriber *s)
{
	struct timespec ts = { 0, 200000 };

	if (s->lossy && s->received % 8 == 0)
		nanosleep(&ts, NULL);
}

static void *subscriber_main(void *arg)
{
	struct subscriber *s = arg;
	struct pcb_msg msg;
	bool finished;
	int ret;

	for (;;) {
		/* Read before the ring: once set, an empty ring is the end. */
		finished = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
		ret = pcb_peek(s->bus, &msg);
		if (ret < 0)
			break;
		if (!ret) {
			if (finished)
				break;
			ret = pcb_wait(s->bus, WAIT_NS, SPIN_NS);
			if (ret && ret != -ETIMEDOUT)
				break;
			continue;
		}
		consume(s, &msg);
		pcb_release(s->bus, &msg);
		s->received++;
		dawdle(s);
	}
	if (ret < 0)
		s->error = ret;
	s->dropped = pcb_dropped(s->bus);
	return NULL;
}

static void *publisher_main(void *arg)
{
	struct publisher *p = arg;
	struct pcb_topic_demo t;
	struct demo_msg m = { .publisher = p->index };
	int ret;

	ret = pcb_topic_demo_open(&t, p->bus, topic_name);
	if (ret < 0) {
		p->error = ret;
		return NULL;
	}
	for (m.n = 0; m.n < msgs_per_pub; m.n++) {
		ret = pcb_publish_typed(&t, &m, m.n, PUBLISH_TIMEOUT_NS, NULL);
		if (ret) {
			p->error = ret;
			break;
		}
		p->published++;
	}
	pcb_topic_demo_close(&t);
	return NULL;
}

static int subscriber_setup(struct subscriber *s)
{
	int ret;

	s->lat = calloc(1, sizeof(*s->lat));
	if (!s->lat)
		return -ENOMEM;
	ret = pcb_open(&s->bus);
	if (ret)
		return ret;
	ret = pcb_ring_setup(s->bus, s->ring_size);
	if (ret)
		return ret;
	s->clock = pcb_clock(s->bus);
	return pcb_topic_demo_subscribe(&s->topic, s->bus, topic_name,
					s->lossy ? PCB_SUB_LOSSY : 0);
}

static void format_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns < 1000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else
		snprintf(buf, len, "%.2f ms", ns / 1e6);
}

static const char *clock_source(uint32_t clock)
{
	switch (clock) {
	case PCB_CLOCK_TSC:
		return "TSC at publish to TSC at receive";
	case PCB_CLOCK_MONO:
		return "CLOCK_MONOTONIC at publish to CLOCK_MONOTONIC at receive";
	default:
		return "message id (CLOCK_REALTIME at publish) to CLOCK_REALTIME at receive";
	}
}

static void print_latency(const struct subscriber *s)
{
	static const char *const names[] = {
		"min", "p50", "p90", "p99", "p99.9", "max", "mean",
	};
	struct pcb_lat_summary ls;
	uint64_t v[ARRAY_SIZE(names)];
	char buf[32];
	size_t i;

	pcb_lat_hist_summary(s->lat, &ls);
	if (!ls.count)
		return;
	v[0] = ls.min_ns;
	v[1] = ls.p50_ns;
	v[2] = ls.p90_ns;
	v[3] = ls.p99_ns;
	v[4] = ls.p999_ns;
	v[5] = ls.max_ns;
	v[6] = ls.mean_ns;
	printf("  latency%s, %s, %" PRIu64 " samples (libpcb histogram: percentiles at most 6.25 %% high):\n",
	       in_vm ? " [VM (TCG emulation) figures: not hardware latency]" : "",
	       clock_source(s->clock), ls.count);
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		format_ns(buf, sizeof(buf), v[i]);
		printf("    %-5s %12s%s\n", names[i], buf,
		       in_vm ? "  (VM figure)" : "");
	}
	if (s->lat->failed)
		printf("    %" PRIu64 " message(s) could not be measured (clock read earlier than the record's)\n",
		       s->lat->failed);
}

/* Print what @s saw; returns whether every promise held. */
static bool report(struct subscriber *s, uint64_t published)
{
	uint64_t missing = published - s->received;
	bool ok = true;

	if (s->error) {
		violate(s, "receiving: %s", strerror(-s->error));
	} else if (!s->lossy) {
		if (s->received != published)
			violate(s, "reliable: %" PRIu64 " of %" PRIu64 " messages",
				s->received, published);
		if (s->dropped)
			violate(s, "reliable: ring header counts %" PRIu64 " drops",
				s->dropped);
	} else if (s->dropped != missing) {
		violate(s, "lossy: %" PRIu64 " messages missed, ring header counts %" PRIu64,
			missing, s->dropped);
	}
	ok = !s->violation[0];

	printf("subscriber %s (%s, ring %zu bytes):\n", s->label,
	       s->lossy ? "lossy" : "reliable", s->ring_size);
	printf("  received %" PRIu64 " of %" PRIu64 ", dropped %" PRIu64
	       " (ring header), %" PRIu64 " missing in sequence gaps, %" PRIu64
	       " after the last one received\n",
	       s->received, published, s->dropped, s->gaps,
	       missing - s->gaps);
	printf("  order: %s%s\n", ok ? "OK" : "VIOLATED: ",
	       ok ? "" : s->violation);
	print_latency(s);
	return ok;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "pcb-demo: %s: %s\n", what, strerror(-err));
	return 1;
}

static int parse_args(int argc, char **argv)
{
	static const char usage[] = "Usage: pcb-demo [-n MESSAGES_PER_PUBLISHER]\n";
	int c;

	while ((c = getopt(argc, argv, "n:h")) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			exit(0);
		}
		if (c == 'n') {
			msgs_per_pub = strtoull(optarg, NULL, 10);
			if (msgs_per_pub && msgs_per_pub <= 100000000)
				continue;
		}
		fputs(usage, stderr);
		return 2;
	}
	return 0;
}

static int run(struct pcb *ctl)
{
	struct subscriber subs[] = {
		{ .label = "A", .lossy = false, .ring_size = RELIABLE_RING },
		{ .label = "B", .lossy = true,  .ring_size = LOSSY_RING },
	};
	struct publisher pubs[NR_PUBLISHERS];
	uint64_t published = 0, start, elapsed;
	bool ok = true;
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(subs); i++) {
		ret = subscriber_setup(&subs[i]);
		if (ret)
			return fail("subscriber setup", ret);
		ret = -pthread_create(&subs[i].thread, NULL, subscriber_main,
				      &subs[i]);
		if (ret)
			return fail("pthread_create", ret);
	}

	start = monotonic_ns();
	for (i = 0; i < NR_PUBLISHERS; i++) {
		pubs[i] = (struct publisher){ .index = i, .bus = ctl };
		ret = -pthread_create(&pubs[i].thread, NULL, publisher_main,
				      &pubs[i]);
		if (ret)
			return fail("pthread_create", ret);
	}
	for (i = 0; i < NR_PUBLISHERS; i++) {
		pthread_join(pubs[i].thread, NULL);
		published += pubs[i].published;
		if (pubs[i].error) {
			fprintf(stderr, "pcb-demo: publisher %u: %s\n", i,
				strerror(-pubs[i].error));
			ok = false;
		}
	}
	elapsed = monotonic_ns() - start;
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);

	printf("published %" PRIu64 " messages from %d threads in %.3f s%s\n",
	       published, NR_PUBLISHERS, elapsed / 1e9,
	       in_vm ? " [VM (TCG emulation) figure: not hardware speed]" : "");
	for (i = 0; i < ARRAY_SIZE(subs); i++) {
		pthread_join(subs[i].thread, NULL);
		ok &= report(&subs[i], published);
		pcb_close(subs[i].bus);
		free(subs[i].lat);
	}
	printf("verdict: %s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *vm = getenv("PCB_DEMO_VM");
	static char name[PCB_NAME_MAX];
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	struct pcb *ctl;
	int ret;

	ret = parse_args(argc, argv);
	if (ret)
		return ret;
	in_vm = vm && !strcmp(vm, "1");
	setvbuf(stdout, NULL, _IOLBF, 0);

	ret = pcb_open(&ctl);
	if (ret)
		return fail("cannot open " PCB_DEVICE_PATH, ret);
	snprintf(name, sizeof(name), "pcb-demo.%d.%" PRIu64, (int)getpid(),
		 monotonic_ns() % 1000000);
	topic_name = name;
	/* Private; the reliable subscriber needs execute as well as read. */
	opts.mode = 0700;
	ret = pcb_topic_demo_create(ctl, name, &opts);
	if (ret) {
		pcb_close(ctl);
		return fail("creating the topic", ret);
	}
	printf("topic '%s': %d publishers x %" PRIu64 " messages, ", name,
	       NR_PUBLISHERS, msgs_per_pub);
	printf("one reliable and one lossy subscriber\n");

	ret = run(ctl);

	if (pcb_topic_delete(ctl, name))
		ret = 1;
	pcb_close(ctl);
	return ret;
}
