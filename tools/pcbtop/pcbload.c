// SPDX-License-Identifier: GPL-2.0
/*
 * pcbload - a workload with known outcomes, to watch with pcbtop and the
 * bpftrace scripts: deliveries, filter rejects, drops, publishers that
 * block and time out, and a consumer that sleeps and is woken.
 *
 * Each round publishes one message to each of three topics, with the
 * round number as key:
 *
 *   PREFIX.filtered  a reliable subscriber whose kernel filter accepts even
 *                    keys only, read by a thread that sleeps between
 *                    messages: half delivered, half rejected
 *   PREFIX.lossy     a lossy subscriber on a 4 KiB ring nobody reads: once
 *                    the ring is full, every message is dropped for it
 *   PREFIX.stalled   a reliable subscriber on a 4 KiB ring nobody reads:
 *                    once full, every publish waits --timeout ms for room,
 *                    then fails with ETIMEDOUT (one block, one timeout)
 *
 * At the end it prints, per topic, what the publisher saw and what the
 * subscription's counters say (PCB_IOC_SUB_INFO), for a test to compare
 * with what the tools report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpcb.h>

#define SMALL_RING	4096U
#define NS_PER_MS	1000000ULL
#define NS_PER_SEC	1000000000ULL

static const char usage_text[] =
"Usage: pcbload [OPTION]...\n"
"Publish a workload with known outcomes on the pcb bus, to watch with\n"
"pcbtop or the bpftrace scripts.  Each round publishes one message to each\n"
"of three topics, with the round number (0, 1, ...) as key:\n"
"  PREFIX.filtered  reliable subscriber, kernel filter accepting even keys,\n"
"                   read by a thread that sleeps between messages\n"
"  PREFIX.lossy     lossy subscriber, 4 KiB ring nobody reads (drops)\n"
"  PREFIX.stalled   reliable subscriber, 4 KiB ring nobody reads: once it\n"
"                   is full each publish blocks, then times out\n"
"\n"
"  -p, --prefix P    topic name prefix (default pcbload-PID)\n"
"  -n, --count N     rounds (default 100)\n"
"  -r, --rate R      rounds per second (default 0: as fast as possible)\n"
"  -s, --size N      payload bytes (default 64, at most 3968)\n"
"  -t, --timeout MS  how long a publish to PREFIX.stalled waits for room\n"
"                    (default 5)\n"
"  -k, --keep        leave the topics in place at exit\n"
"  -h, --help        show this help\n"
"\n"
"At the end (or on SIGINT/SIGTERM), one line per topic:\n"
"  TOPIC published=N bytes=B delivered=D rejected=R dropped=X blocked=K timeouts=T\n"
"published, bytes, blocked and timeouts as the publisher saw them; delivered,\n"
"rejected and dropped from the subscription's counters.\n";

enum { FILTERED, LOSSY, STALLED, NR_TOPICS };

static const char *const suffixes[NR_TOPICS] = {
	".filtered", ".lossy", ".stalled",
};

struct options {
	char prefix[PCB_NAME_MAX];
	unsigned long count;
	double rate;
	unsigned int size;
	unsigned int timeout_ms;
	bool keep;
};

struct topic {
	char name[PCB_NAME_MAX];
	uint32_t id;
	int handle;
	struct pcb *sub;	/* the subscriber's endpoint */
	uint64_t published;
	uint64_t bytes;
	uint64_t timeouts;
};

struct load {
	struct options o;
	struct pcb *pub;
	struct topic t[NR_TOPICS];
	pthread_t reader;
	bool reader_started;
	bool done;		/* atomic: tells the reader to stop */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int fail(const char *what, int ret)
{
	fprintf(stderr, "pcbload: %s: %s\n", what, strerror(-ret));
	return ret;
}

/* Reads PREFIX.filtered until told to stop: sleeps in the kernel between messages. */
static void *reader(void *arg)
{
	struct load *l = arg;
	struct pcb *bus = l->t[FILTERED].sub;
	struct pcb_msg msg;

	while (!__atomic_load_n(&l->done, __ATOMIC_RELAXED)) {
		int ret = pcb_receive(bus, &msg, 50 * NS_PER_MS);

		if (ret == 1)
			pcb_release(bus, &msg);
		else if (ret != -ETIMEDOUT && ret != -EINTR)
			break;
	}
	return NULL;
}

/* The subscriber of topic @i: its own endpoint and ring. */
static int subscribe(struct load *l, int i)
{
	struct topic *t = &l->t[i];
	struct pcb_filter_spec even;
	int ret;

	ret = pcb_open(&t->sub);
	if (ret)
		return fail("opening " PCB_DEVICE_PATH, ret);
	ret = pcb_ring_setup(t->sub, i == FILTERED ? 0 : SMALL_RING);
	if (ret)
		return fail("setting up a ring", ret);
	switch (i) {
	case FILTERED:
		pcb_filter_init(&even);
		pcb_filter_key(&even, PCB_OP_EQ, 0);
		pcb_filter_mask(&even, 1);
		ret = pcb_subscribe_filtered(t->sub, t->name, 0, 0, &even, NULL);
		break;
	case LOSSY:
		ret = pcb_subscribe(t->sub, t->name, 0, PCB_SUB_LOSSY, NULL);
		break;
	default:
		ret = pcb_subscribe(t->sub, t->name, 0, 0, NULL);
		break;
	}
	return ret ? fail(t->name, ret) : 0;
}

static int setup(struct load *l)
{
	struct pcb_topic_opts opts = PCB_TOPIC_OPTS_DEFAULT;
	int i, ret;

	ret = pcb_open(&l->pub);
	if (ret)
		return fail("opening " PCB_DEVICE_PATH, ret);
	opts.max_msg_size = l->o.size ? l->o.size : 1;
	for (i = 0; i < NR_TOPICS; i++) {
		struct topic *t = &l->t[i];

		if (snprintf(t->name, sizeof(t->name), "%s%s", l->o.prefix,
			     suffixes[i]) >= (int)sizeof(t->name))
			return fail("topic name", -ENAMETOOLONG);
		ret = pcb_topic_create(l->pub, t->name, &opts, &t->id);
		if (ret)
			return fail(t->name, ret);
		ret = pcb_topic_open(l->pub, t->name, 0);
		if (ret < 0)
			return fail(t->name, ret);
		t->handle = ret;
		ret = subscribe(l, i);
		if (ret)
			return ret;
	}
	ret = pthread_create(&l->reader, NULL, reader, l);
	if (ret)
		return fail("starting the reader", -ret);
	l->reader_started = true;
	return 0;
}

static int publish(struct load *l, int i, const void *buf, uint64_t key)
{
	struct topic *t = &l->t[i];
	/* 0 waits without limit: only the stalled topic ever waits. */
	uint64_t timeout = i == STALLED ? l->o.timeout_ms * NS_PER_MS : 0;
	int ret = pcb_publish(l->pub, t->handle, buf, l->o.size, key, timeout,
			      NULL);

	if (!ret) {
		t->published++;
		t->bytes += l->o.size;
	} else if (ret == -ETIMEDOUT && i == STALLED) {
		t->timeouts++;
		ret = 0;
	} else if (ret == -EINTR) {
		ret = 0;	/* SIGINT: stop after this round */
	} else {
		fail(t->name, ret);
	}
	return ret;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = ns / NS_PER_SEC,
		.tv_nsec = ns % NS_PER_SEC,
	};

	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					NULL) == EINTR)
		;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int run(struct load *l)
{
	uint64_t start = now_ns();
	unsigned long round;
	char *buf;
	int ret = 0;

	buf = calloc(1, l->o.size ? l->o.size : 1);
	if (!buf)
		return fail("payload", -ENOMEM);
	for (round = 0; round < l->o.count && !stop && !ret; round++) {
		int i;

		if (l->o.rate > 0)
			sleep_until(start + (uint64_t)(round * NS_PER_SEC / l->o.rate));
		memcpy(buf, &round, l->o.size < sizeof(round) ? l->o.size :
		       sizeof(round));
		for (i = 0; i < NR_TOPICS && !ret; i++)
			ret = publish(l, i, buf, round);
	}
	free(buf);
	return ret;
}

static void report(struct load *l)
{
	int i;

	for (i = 0; i < NR_TOPICS; i++) {
		struct topic *t = &l->t[i];
		struct pcb_sub_info info = { 0 };

		if (!t->sub || pcb_sub_info(t->sub, t->id, &info))
			continue;
		printf("%s published=%" PRIu64 " bytes=%" PRIu64
		       " delivered=%llu rejected=%llu dropped=%llu blocked=%" PRIu64
		       " timeouts=%" PRIu64 "\n", t->name, t->published, t->bytes,
		       (unsigned long long)info.delivered,
		       (unsigned long long)info.rejected,
		       (unsigned long long)info.dropped, t->timeouts,
		       t->timeouts);
	}
	fflush(stdout);
}

static void teardown(struct load *l)
{
	int i;

	__atomic_store_n(&l->done, true, __ATOMIC_RELAXED);
	if (l->reader_started)
		pthread_join(l->reader, NULL);
	for (i = 0; i < NR_TOPICS; i++) {
		pcb_close(l->t[i].sub);
		if (!l->o.keep && l->t[i].id)
			pcb_topic_delete(l->pub, l->t[i].name);
	}
	pcb_close(l->pub);
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno || *end || !*s || *out > max ? -1 : 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "prefix", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	/* Room in a 4 KiB ring for a record with every dependency. */
	const unsigned long max_size = SMALL_RING - sizeof(struct pcb_record) -
				       PCB_MAX_DEPS * sizeof(uint64_t);
	unsigned long v;
	char *end;
	int c;

	*o = (struct options){ .count = 100, .size = 64, .timeout_ms = 5 };
	snprintf(o->prefix, sizeof(o->prefix), "pcbload-%d", (int)getpid());
	while ((c = getopt_long(argc, argv, "p:n:r:s:t:kh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			snprintf(o->prefix, sizeof(o->prefix), "%s", optarg);
			break;
		case 'n':
			if (parse_ulong(optarg, ~0UL, &o->count))
				goto bad;
			break;
		case 'r':
			o->rate = strtod(optarg, &end);
			if (*end || o->rate < 0)
				goto bad;
			break;
		case 's':
			if (parse_ulong(optarg, max_size, &v))
				goto bad;
			o->size = v;
			break;
		case 't':
			if (parse_ulong(optarg, 3600000, &v))
				goto bad;
			o->timeout_ms = v;
			break;
		case 'k':
			o->keep = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs("Try 'pcbload --help'.\n", stderr);
			return 2;
		}
	}
	if (optind == argc)
		return 0;
	fprintf(stderr, "pcbload: unexpected argument '%s'\n", argv[optind]);
	return 2;
bad:
	fprintf(stderr, "pcbload: bad value '%s' for -%c\n", optarg, c);
	return 2;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct load l = { 0 };
	int ret;

	ret = parse_options(argc, argv, &l.o);
	if (ret)
		return ret;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	ret = setup(&l);
	if (!ret)
		ret = run(&l);
	report(&l);
	teardown(&l);
	return ret ? 1 : 0;
}
