// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-bench - pcb against what one would use instead, same workload, one run.
 *
 * A run moves messages of one size from 1..N publisher threads to 1..M
 * consumer threads through one transport ("mode"):
 *
 *   pcb-ioctl    pcb_publish(), one system call per message
 *   pcb-try      pcb_try_publish(), retried while it says -EAGAIN
 *   pcb-batch    pcb_publish_batch(), up to BURST messages per call
 *   pcb-uring    libpcb's io_uring publisher, BURST commands per submit
 *   pcb-sqpoll   the same with a kernel polling thread (PCB_URING_SQPOLL)
 *   pipe         one pipe per subscriber
 *   uds          one AF_UNIX SOCK_SEQPACKET socket pair per subscriber
 *   mq           one POSIX message queue per subscriber
 *   eventfd-shm  one shared-memory ring per subscriber; the consumer
 *                sleeps on an eventfd that the publisher signals when the
 *                consumer asked for it
 *   spin-shm     one shared-memory ring per subscriber, consumer spins:
 *                no kernel at all, the floor
 *
 * pcb modes publish into one topic with a reliable subscription per
 * consumer; the baselines fan out by writing to every subscriber's channel.
 * With --topics N, each publisher spreads its messages round-robin over N
 * topics, and every consumer takes all of them: pcb subscribes its one ring
 * to each topic, pipe and uds give each consumer a channel per topic and
 * the consumer waits on all of them in one epoll set.
 * Every transport applies backpressure (a full channel makes the publisher
 * wait), so nothing may be lost: consumers check the sequence numbers.
 *
 * A payload of 24 bytes or more starts with struct msg_hdr: the send time, a TSC reading
 * (in paced mode the time the message was scheduled for, so a late
 * publisher shows up as latency instead of hiding it), the publisher's
 * sequence number and index; a smaller one (8 bytes at least) carries the
 * same in 8 bytes, struct msg_small.  The consumer subtracts the send time from
 * the TSC when it reads the message: one-way latency, in TSC ticks until
 * it is reported in ns, with the TSC's rate measured at start-up against
 * CLOCK_MONOTONIC_RAW.  No clock_gettime() per message, no timer: in a
 * VM the first may be a system call and the second wakes ~100 us late.
 * A paced publisher spins on the TSC until its next message is due.
 *
 * A run: warm-up, then the measured interval (--duration seconds, or until
 * each publisher has sent --count messages), bracketed by pcbb_steady(1)
 * and pcbb_steady(0) for tracers; then the consumers drain.
 *
 * Two other engines have their own files: "pcb-bench cost" (cost.c), the
 * single-threaded cycles of one call, and "pcb-bench pingpong"
 * (pingpong.c), half a round trip of one message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpcb.h>

#include "bench.h"

#define BURST		64	/* messages per batch, submit or burst */
#define BURST_BYTES	(4U << 20)	/* fewer messages per burst beyond */
#define MAX_PUBS	16
#define MAX_SUBS	64
#define MAX_TOPICS	100000
#define MIN_SIZE	8U
#define MAX_SIZE	(4U << 20)
#define MAX_RUN_LIST	32
#define SCHEMA		0x70636262ULL	/* "pcbb" */
#define WAIT_MS		20	/* a sleeping consumer re-checks the end */
#define DRAIN_NS	(10ULL * 1000000000ULL)
#define PUB_TIMEOUT_NS	(10ULL * 1000000000ULL)
#define MSG_MEASURED	1U

#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define load_relaxed(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

struct msg_hdr {
	uint64_t t_tsc;
	uint64_t seq;
	uint32_t pub;
	uint32_t flags;
};

/*
 * The header of a message under sizeof(struct msg_hdr): the low 32 bits of
 * the TSC (a latency under 2^32 ticks, a second or more, comes out right)
 * and a word of the sequence number's low SMALL_SEQ_BITS, the publisher
 * and the flags; the consumer extends the sequence number from the one
 * it expects of that publisher.
 */
struct msg_small {
	uint32_t t_lo;
	uint32_t word;
};

#define SMALL_SEQ_BITS	24
#define SMALL_SEQ_MASK	((1U << SMALL_SEQ_BITS) - 1)
#define SMALL_PUB_SHIFT	SMALL_SEQ_BITS		/* 4 bits: MAX_PUBS */
#define SMALL_FLAG_SHIFT	28

enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

enum consumer { CONS_SPIN, CONS_EPOLL };

static const char *const consumer_names[] = {
	[CONS_SPIN] = "spin",
	[CONS_EPOLL] = "epoll",
};

/* A thread's CPU time, user and system apart, in seconds. */
struct cpu_time {
	double user, sys;
};

struct run;
struct pubctx;
struct subctx;

/* What a transport provides.  Every callback returns 0 or a negative errno. */
struct ops {
	const char *name;
	bool pcb;
	/*
	 * Whether one publisher's messages arrive in its order.  io_uring
	 * commands that wait for room may complete, and so publish, out
	 * of order (libpcb.h: PCB_URING_ORDERED, which these modes do not
	 * use).
	 */
	bool ordered;
	/* The consumer this mode always uses, or -1 to follow --consumer. */
	int fixed_consumer;
	int (*setup)(struct run *r);
	void (*teardown)(struct run *r);
	int (*pub_init)(struct pubctx *p);
	void (*pub_fini)(struct pubctx *p);
	/* Send the first @n of p->bufs to every subscriber. */
	int (*send)(struct pubctx *p, unsigned int n);
	/* Consume what is there (a bounded amount): count, or -errno. */
	int (*poll)(struct subctx *s);
	/* Ask to be woken; > 0 when something arrived meanwhile. */
	int (*arm)(struct subctx *s);
	void (*disarm)(struct subctx *s);
	int (*fd)(struct subctx *s);
};

struct cfg {
	const struct ops *ops;
	unsigned int size;
	unsigned int subs;
	unsigned int pubs;
	unsigned int topics;	/* per publisher, round-robin */
	enum consumer consumer;
	uint64_t rate;		/* per publisher, 0 saturates */
	uint64_t duration_ns;
	uint64_t count;		/* per publisher, 0: run for duration_ns */
	uint64_t warmup_ns;
};

/* A shared-memory ring of fixed-size slots, one producer side lock. */
struct shring {
	uint64_t head __attribute__((aligned(64)));
	uint32_t cons_wait;
	uint64_t tail __attribute__((aligned(64)));
	uint32_t prod_wait;
	pthread_mutex_t lock __attribute__((aligned(64)));
	unsigned int nslots;
	unsigned int stride;
	unsigned char *slots;
	size_t map_len;
	int data_efd;		/* consumer sleeps on it */
	int space_efd;		/* producer sleeps on it */
};

/* One subscriber's channel and consumer. */
struct subctx {
	struct run *r;
	unsigned int idx;
	pthread_t thread;
	/* transport */
	struct pcb *bus;
	int rfd, wfd;		/* pipe, uds; mq: mqd_t */
	int *trfd, *twfd;	/* pipe, uds: one per topic, when topics > 1 */
	pthread_mutex_t wlock;	/* pipe writes above PIPE_BUF, pubs > 1 */
	struct shring *ring;
	unsigned char *rbuf;
	size_t rcap, rfill;
	int epfd;
	/* results */
	struct pcb_lat_hist *hist;
	uint64_t next[MAX_PUBS];
	uint64_t received;
	uint64_t measured;
	uint64_t gaps, reordered, bad;
	struct cpu_time cpu;
	int err;
};

struct pubctx {
	struct run *r;
	unsigned int idx;
	pthread_t thread;
	struct pcb *bus;
	int handle;
	/* topics > 1: each topic's endpoint and handle (PCB_MAX_HANDLES each) */
	struct pcb **tbus;
	int *handles;
	unsigned int nr_tbus;
	struct pcb_uring_pub *up;
	struct pcb_batch_entry *entries;
	unsigned char *bufs;	/* run.burst payloads of cfg.size bytes */
	uint64_t sent;
	uint64_t measured;
	uint64_t retries;
	struct cpu_time cpu;
	int err;
};

struct result {
	uint64_t published, messages, lost, gaps, reordered, bad;
	uint64_t sent, received;	/* warm-up and drain included */
	double duration_s;
	struct cpu_time cpu_pub, cpu_sub;
	struct pcb_lat_hist hist;	/* in TSC ticks */
	int skipped;		/* errno that made the run a skip */
	int err;
	bool no_bus;		/* /dev/pcb could not be opened */
	bool unsupported;	/* the transport cannot do this run */
	char skip_why[96];
};

struct run {
	struct cfg c;
	struct pubctx pubs[MAX_PUBS];
	struct subctx subs[MAX_SUBS];
	char topic[PCB_NAME_MAX];
	struct pcb *admin;
	unsigned int phase;
	unsigned int pubs_done;
	unsigned int subs_ready;
	uint64_t expected;	/* per subscriber, valid once pubs_done */
	uint64_t done_tsc;
	/* Messages per send: BURST, fewer where they would be large. */
	unsigned int burst;
	/* More busy threads than CPUs: spinning publishers yield at times. */
	bool crowded;
	bool no_bus;		/* /dev/pcb could not be opened */
	bool unsupported;	/* the transport cannot do this run: a skip */
	unsigned int nr_created;	/* pcb topics to delete */
	char why[96];
};

static unsigned int run_serial;
/* TSC ticks per ns, measured at start-up. */
static double tsc_per_ns = 1.0;

/* The steady-state marker: bpftrace puts uprobes here. */
__attribute__((noinline, used)) void pcbb_steady(int on)
{
	__asm__ __volatile__("" : : "r"(on) : "memory");
}

static uint64_t ns_to_tsc(double ns)
{
	return (uint64_t)(ns * tsc_per_ns + 0.5);
}

static double tsc_to_ns(uint64_t t)
{
	return (double)t / tsc_per_ns;
}

/*
 * Only the main thread sleeps, through the warm-up and the measured
 * interval: it is off the message path, and waking late only makes the
 * interval longer, which is measured on the TSC.
 */
static void sleep_until_tsc(uint64_t t)
{
	struct timespec ts;
	uint64_t now, ns;

	while ((now = bench_tsc_now()) < t) {
		ns = (uint64_t)tsc_to_ns(t - now) + 1;
		ts.tv_sec = (time_t)(ns / 1000000000ULL);
		ts.tv_nsec = (long)(ns % 1000000000ULL);
		nanosleep(&ts, NULL);
	}
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Spinning must not starve the threads it waits for on a small machine. */
static void spin_wait(unsigned int *n)
{
	cpu_relax();
	if ((++*n & 63) == 0)
		sched_yield();
}

static struct cpu_time thread_cpu(void)
{
	struct rusage ru;
	struct cpu_time t;

	getrusage(RUSAGE_THREAD, &ru);
	t.user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	t.sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return t;
}

/* This thread's CPU time since @t0 was taken. */
static struct cpu_time thread_cpu_since(struct cpu_time t0)
{
	struct cpu_time t = thread_cpu();

	t.user -= t0.user;
	t.sys -= t0.sys;
	return t;
}

static void cpu_add(struct cpu_time *sum, struct cpu_time t)
{
	sum->user += t.user;
	sum->sys += t.sys;
}

static void set_why(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/* The transport cannot make this run: a skip, with the reason. */
static int unsupported(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->unsupported = true;
	return -EOPNOTSUPP;
}

static unsigned int pow2_at_least(size_t v)
{
	unsigned int p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* ------------------------------------------------------------------ */
/* The consumer's bookkeeping, common to every mode                   */
/* ------------------------------------------------------------------ */

/* The header of a message of @size bytes, into @buf. */
static void msg_encode(void *buf, size_t size, const struct msg_hdr *h)
{
	struct msg_small sm;

	if (size >= sizeof(*h)) {
		memcpy(buf, h, sizeof(*h));
		return;
	}
	sm.t_lo = (uint32_t)h->t_tsc;
	sm.word = ((uint32_t)h->seq & SMALL_SEQ_MASK) |
		  h->pub << SMALL_PUB_SHIFT |
		  (h->flags & MSG_MEASURED) << SMALL_FLAG_SHIFT;
	memcpy(buf, &sm, sizeof(sm));
}

/*
 * The header of a message of @size bytes read at TSC time @now; @next is
 * the sequence number expected of each publisher, from which a small
 * header's is extended: the one nearest to it with the same low bits.
 */
static void msg_decode(const void *buf, size_t size, const uint64_t *next,
		       uint64_t now, struct msg_hdr *h)
{
	const uint32_t half = 1U << (SMALL_SEQ_BITS - 1);
	struct msg_small sm;
	uint32_t d, ago;
	uint64_t exp;

	if (size >= sizeof(*h)) {
		memcpy(h, buf, sizeof(*h));
		return;
	}
	memcpy(&sm, buf, sizeof(sm));
	h->pub = (sm.word >> SMALL_PUB_SHIFT) & (MAX_PUBS - 1);
	h->flags = (sm.word >> SMALL_FLAG_SHIFT) & MSG_MEASURED;
	/* A stamp "from the future" is another CPU's TSC a little ahead. */
	ago = (uint32_t)now - sm.t_lo;
	h->t_tsc = ago > 1U << 31 ? now : now - ago;
	exp = next[h->pub];
	d = ((sm.word & SMALL_SEQ_MASK) - (uint32_t)exp) & SMALL_SEQ_MASK;
	if (d >= half && exp + d >= (1U << SMALL_SEQ_BITS))
		h->seq = exp + d - (1U << SMALL_SEQ_BITS);	/* behind */
	else
		h->seq = exp + d;
}

/* msg_encode() and msg_decode() agree, wrap-arounds included. */
static int msg_selfcheck(void)
{
	static const struct {
		uint64_t seq, expected, t, now;
	} t[] = {
		{ 0, 0, 100, 150 },
		{ 5, 3, 0xfffffff0ULL, 0x100000005ULL },
		{ 0x1000001, 0xfffffe, 1, 2 },
		{ 0xfffffe, 0x1000001, 7, 7 },
		{ 0x5000000, 0x4ffffff, 0x3ffffffffULL, 0x400000001ULL },
		{ 42, 40, 1000, 999 },		/* stamp ahead: latency 0 */
	};
	const size_t nr = sizeof(t) / sizeof(*t);
	unsigned char buf[sizeof(struct msg_hdr)];
	uint64_t next[MAX_PUBS] = { 0 };
	struct msg_hdr in, out;
	size_t size, i;

	for (size = MIN_SIZE; size <= sizeof(buf); size += sizeof(buf) - MIN_SIZE)
		for (i = 0; i < nr; i++) {
			in = (struct msg_hdr){ .t_tsc = t[i].t, .seq = t[i].seq,
					       .pub = MAX_PUBS - 1,
					       .flags = MSG_MEASURED };
			next[MAX_PUBS - 1] = t[i].expected;
			msg_encode(buf, size, &in);
			msg_decode(buf, size, next, t[i].now, &out);
			if (out.seq != in.seq || out.pub != in.pub ||
			    out.flags != in.flags ||
			    (size >= sizeof(in) ? out.t_tsc != in.t_tsc :
			     t[i].now - out.t_tsc !=
			     (t[i].now >= t[i].t ? t[i].now - t[i].t : 0))) {
				fprintf(stderr, "pcb-bench: header check %zu, %zu B: failed\n",
					i, size);
				return -1;
			}
		}
	return 0;
}

static void on_msg(struct subctx *s, const void *data, size_t len)
{
	uint64_t now = bench_tsc_now();
	struct msg_hdr h;

	if (len != s->r->c.size) {
		s->bad++;
		return;
	}
	msg_decode(data, len, s->next, now, &h);
	if (h.pub >= s->r->c.pubs) {
		s->bad++;
		return;
	}
	if (h.seq > s->next[h.pub])
		s->gaps += h.seq - s->next[h.pub];
	else if (h.seq < s->next[h.pub])
		s->reordered++;
	if (h.seq >= s->next[h.pub])
		s->next[h.pub] = h.seq + 1;
	s->received++;
	if (h.flags & MSG_MEASURED) {
		s->measured++;
		/* TSC ticks: ns only when reported. */
		pcb_lat_hist_add(s->hist, now >= h.t_tsc ? now - h.t_tsc : 0);
	}
}

/* ------------------------------------------------------------------ */
/* pcb                                                                */
/* ------------------------------------------------------------------ */

/*
 * Room for 64 messages, 1 to 4 MiB; and for 4 at least of the largest
 * (a record is the payload and a header of under 256 bytes): 32 MiB for
 * 4 MiB messages, under the module's default max_ring_size of 64 MiB.
 */
static size_t pcb_ring_bytes(unsigned int size)
{
	size_t want = pow2_at_least((size_t)size * 64);

	if (want < (1U << 20))
		want = 1U << 20;
	if (want > (4U << 20))
		want = 4U << 20;
	if (want < 4 * ((size_t)size + 256))
		want = pow2_at_least(4 * ((size_t)size + 256));
	return want;
}

/* A module parameter of pcb, or 0 when it cannot be read. */
static unsigned long pcb_param(const char *name)
{
	char path[128];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/pcb/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* The name of topic @k of the run: the run's own name when it has one. */
static void topic_name(const struct run *r, unsigned int k, char *buf,
		       size_t len)
{
	if (r->c.topics > 1)
		snprintf(buf, len, "%.40s/%u", r->topic, k);
	else
		snprintf(buf, len, "%s", r->topic);
}

static int pcb_pub_init(struct pubctx *p);

/* Why the module refuses the run's topics or subscriptions, if it does. */
static int pcb_limits(struct run *r)
{
	unsigned long msg = pcb_param("max_msg_size");
	unsigned long ring = pcb_param("max_ring_size");
	unsigned long topics = pcb_param("max_topics");
	unsigned long subs = pcb_param("max_subscriptions_per_user");
	bool uring = r->c.ops->pub_init != pcb_pub_init;

	if (msg && r->c.size > msg)
		return unsupported(r, "over the module's max_msg_size (%lu B)",
				   msg);
	if (ring && pcb_ring_bytes(r->c.size) > ring)
		return unsupported(r, "a ring of %zu B is over the module's max_ring_size (%lu B)",
				   pcb_ring_bytes(r->c.size), ring);
	if (topics && r->c.topics > topics)
		return unsupported(r, "over the module's max_topics (%lu)",
				   topics);
	if (subs && (unsigned long)r->c.topics * r->c.subs > subs)
		return unsupported(r, "over the module's max_subscriptions_per_user (%lu)",
				   subs);
	if (uring && r->c.topics > PCB_MAX_HANDLES)
		return unsupported(r, "an io_uring publisher has one endpoint: %u handles at most",
				   PCB_MAX_HANDLES);
	return 0;
}

static int pcb_subscribe_all(struct run *r, struct subctx *s)
{
	char name[PCB_NAME_MAX];
	unsigned int k;
	int ret;

	for (k = 0; k < r->c.topics; k++) {
		topic_name(r, k, name, sizeof(name));
		ret = pcb_subscribe(s->bus, name, SCHEMA, 0, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int pcb_setup(struct run *r)
{
	struct pcb_topic_opts o = PCB_TOPIC_OPTS_DEFAULT;
	unsigned int i;
	int ret;

	ret = pcb_open(&r->admin);
	if (ret) {
		r->no_bus = true;
		set_why(r, "open /dev/pcb: %s", strerror(-ret));
		return ret;
	}
	ret = pcb_limits(r);
	if (ret)
		return ret;
	snprintf(r->topic, sizeof(r->topic), "pcbb/%d/%u", (int)getpid(),
		 ++run_serial);
	o.schema_id = SCHEMA;
	o.max_msg_size = r->c.size;
	/* The subscribers are ours and reliable: read and execute. */
	o.mode = 0700;
	for (i = 0; i < r->c.topics; i++) {
		char name[PCB_NAME_MAX];

		topic_name(r, i, name, sizeof(name));
		ret = pcb_topic_create(r->admin, name, &o, NULL);
		if (ret) {
			r->nr_created = i;
			set_why(r, "topic create %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	r->nr_created = r->c.topics;
	for (i = 0; i < r->c.subs; i++) {
		struct subctx *s = &r->subs[i];

		ret = pcb_open(&s->bus);
		if (!ret)
			ret = pcb_ring_setup(s->bus, pcb_ring_bytes(r->c.size));
		if (!ret)
			ret = pcb_subscribe_all(r, s);
		if (ret) {
			set_why(r, "subscriber: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void pcb_teardown(struct run *r)
{
	unsigned int i;

	char name[PCB_NAME_MAX];

	for (i = 0; i < r->c.subs; i++) {
		pcb_close(r->subs[i].bus);
		r->subs[i].bus = NULL;
	}
	for (i = 0; r->admin && i < r->nr_created; i++) {
		topic_name(r, i, name, sizeof(name));
		pcb_topic_delete(r->admin, name);
	}
	pcb_close(r->admin);
	r->admin = NULL;
}

/*
 * A handle for each topic, PCB_MAX_HANDLES to an endpoint: the first
 * endpoint is p->bus, topic 0's handle p->handle.
 */
static int pcb_pub_init(struct pubctx *p)
{
	struct run *r = p->r;
	char name[PCB_NAME_MAX];
	unsigned int k;
	int ret;

	p->nr_tbus = (r->c.topics + PCB_MAX_HANDLES - 1) / PCB_MAX_HANDLES;
	p->tbus = calloc(p->nr_tbus, sizeof(*p->tbus));
	p->handles = calloc(r->c.topics, sizeof(*p->handles));
	if (!p->tbus || !p->handles)
		return -ENOMEM;
	for (k = 0; k < p->nr_tbus; k++) {
		ret = pcb_open(&p->tbus[k]);
		if (ret)
			return ret;
	}
	for (k = 0; k < r->c.topics; k++) {
		topic_name(r, k, name, sizeof(name));
		ret = pcb_topic_open(p->tbus[k / PCB_MAX_HANDLES], name, SCHEMA);
		if (ret < 0)
			return ret;
		p->handles[k] = ret;
	}
	p->bus = p->tbus[0];
	p->handle = p->handles[0];
	return 0;
}

static int pcb_uring_init_flags(struct pubctx *p, uint32_t flags)
{
	int ret = pcb_pub_init(p);

	if (ret)
		return ret;
	ret = pcb_uring_pub_create(&p->up, p->bus, BURST, flags);
	if (ret)
		return ret;
	pcb_uring_pub_set_timeout(p->up, PUB_TIMEOUT_NS);
	return 0;
}

static int pcb_uring_init(struct pubctx *p)
{
	return pcb_uring_init_flags(p, 0);
}

static int pcb_sqpoll_init(struct pubctx *p)
{
	return pcb_uring_init_flags(p, PCB_URING_SQPOLL);
}

static void pcb_pub_fini(struct pubctx *p)
{
	unsigned int k;

	pcb_uring_pub_destroy(p->up);
	p->up = NULL;
	for (k = 0; p->tbus && k < p->nr_tbus; k++)
		pcb_close(p->tbus[k]);
	free(p->tbus);
	free(p->handles);
	p->tbus = NULL;
	p->handles = NULL;
	p->bus = NULL;
}

static unsigned char *buf_at(struct pubctx *p, unsigned int i)
{
	return p->bufs + (size_t)i * p->r->c.size;
}

/* The topic of message @i of the burst being sent: round-robin. */
static unsigned int msg_topic(const struct pubctx *p, unsigned int i)
{
	return (unsigned int)((p->sent + i) % p->r->c.topics);
}

/* The endpoint and handle that publish message @i of the burst. */
static struct pcb *pub_target(const struct pubctx *p, unsigned int i,
			      int *handle)
{
	unsigned int t = msg_topic(p, i);

	*handle = p->handles[t];
	return p->tbus[t / PCB_MAX_HANDLES];
}

static int pcb_send_ioctl(struct pubctx *p, unsigned int n)
{
	struct pcb *bus;
	unsigned int i;
	int ret, h;

	for (i = 0; i < n; i++) {
		bus = pub_target(p, i, &h);
		ret = pcb_publish(bus, h, buf_at(p, i), p->r->c.size, 0,
				  PUB_TIMEOUT_NS, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int pcb_send_try(struct pubctx *p, unsigned int n)
{
	unsigned int i, spins = 0;
	struct pcb *bus;
	int ret, h;

	for (i = 0; i < n; i++) {
		bus = pub_target(p, i, &h);
		while ((ret = pcb_try_publish(bus, h, buf_at(p, i),
					      p->r->c.size, 0, NULL)) ==
		       -EAGAIN) {
			p->retries++;
			spin_wait(&spins);
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* Entries @first .. @first + @n - 1, all of endpoint @bus, in one call. */
static int pcb_batch_call(struct pubctx *p, struct pcb *bus,
			  unsigned int first, unsigned int n)
{
	struct pcb_batch_entry *e = p->entries + first;
	unsigned int i;
	int ret;

	ret = pcb_publish_batch(bus, e, n, 0, PUB_TIMEOUT_NS);
	if (ret < 0)
		return ret;
	if ((unsigned int)ret != n) {
		for (i = 0; i < n; i++)
			if (e[i].result < 0)
				return e[i].result;
		return -EIO;
	}
	return 0;
}

/* One call per run of entries whose handles belong to one endpoint. */
static int pcb_send_batch(struct pubctx *p, unsigned int n)
{
	struct pcb *bus, *run_bus = NULL;
	unsigned int i, first = 0;
	int ret, h;

	for (i = 0; i < n; i++) {
		bus = pub_target(p, i, &h);
		if (run_bus && bus != run_bus) {
			ret = pcb_batch_call(p, run_bus, first, i - first);
			if (ret)
				return ret;
			first = i;
		}
		run_bus = bus;
		pcb_batch_entry_prep(&p->entries[i], h, buf_at(p, i),
				     p->r->c.size, 0);
	}
	return n ? pcb_batch_call(p, run_bus, first, n - first) : 0;
}

static int pcb_send_uring(struct pubctx *p, unsigned int n)
{
	struct pcb_uring_result res[BURST];
	unsigned int i, handed = 0, reaped = 0;
	int ret, first_err = 0;

	for (i = 0; i < n; i++) {
		ret = pcb_uring_pub_queue(p->up, p->handles[msg_topic(p, i)],
					  buf_at(p, i), p->r->c.size, 0, 0, i);
		if (ret)
			return ret;
	}
	while (handed < n) {
		ret = pcb_uring_pub_submit(p->up);
		if (ret < 0)
			return ret;
		handed += (unsigned int)ret;
	}
	while (reaped < n) {
		ret = pcb_uring_pub_reap(p->up, res, n - reaped,
					 PCB_URING_WAIT_FOREVER);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		for (i = 0; i < (unsigned int)ret; i++)
			if (res[i].res < 0 && !first_err)
				first_err = res[i].res;
		reaped += (unsigned int)ret;
	}
	return first_err;
}

/*
 * Going to sleep in epoll: ask for wake-ups, and stop asking once awake,
 * so that publishers do not wake a consumer that is busy.
 */
static int pcb_arm(struct subctx *s)
{
	int ret = pcb_sleep_prepare(s->bus);

	if (ret)		/* not sleeping after all */
		pcb_sleep_done(s->bus);
	return ret < 0 ? 0 : ret;	/* a broken ring shows in pcb_poll() */
}

static void pcb_disarm(struct subctx *s)
{
	pcb_sleep_done(s->bus);
}

static int pcb_poll(struct subctx *s)
{
	struct pcb_msg msg;
	int n, ret;

	for (n = 0; n < BURST; n++) {
		ret = pcb_peek(s->bus, &msg);
		if (ret < 0)
			return ret;
		if (!ret)
			break;
		on_msg(s, msg.data, msg.len);
		pcb_release(s->bus, &msg);
	}
	return n;
}

static int pcb_sub_fd(struct subctx *s)
{
	return pcb_fd(s->bus);
}

/* ------------------------------------------------------------------ */
/* pipe, AF_UNIX SOCK_SEQPACKET, POSIX message queue                  */
/* ------------------------------------------------------------------ */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void fds_teardown(struct run *r)
{
	unsigned int i, k;

	for (i = 0; i < r->c.subs; i++) {
		struct subctx *s = &r->subs[i];

		for (k = 0; s->trfd && k < r->c.topics; k++) {
			if (s->trfd[k] >= 0)
				close(s->trfd[k]);
			if (s->twfd[k] >= 0)
				close(s->twfd[k]);
		}
		if (s->trfd) {		/* closed above */
			s->rfd = -1;
			s->wfd = -1;
		}
		free(s->trfd);
		free(s->twfd);
		s->trfd = NULL;
		s->twfd = NULL;
		if (s->rfd >= 0)
			close(s->rfd);
		if (s->wfd >= 0 && s->wfd != s->rfd)
			close(s->wfd);
		s->rfd = s->wfd = -1;
		free(s->rbuf);
		s->rbuf = NULL;
	}
}

/*
 * Descriptors for a channel per topic per subscriber, two each: raise
 * RLIMIT_NOFILE to that if need be (root may raise the hard limit too).
 */
static int fds_room(struct run *r)
{
	rlim_t need = (rlim_t)r->c.topics * r->c.subs * 2 + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return unsupported(r, "needs %llu descriptors, over RLIMIT_NOFILE",
				   (unsigned long long)need);
	return 0;
}

/* Makes one channel: its read and write ends. */
typedef int (*pair_fn)(struct run *r, int *rfd, int *wfd);

/*
 * Each subscriber's channel (@pair makes one), or with topics > 1 one per
 * topic (s->rfd and s->wfd are then topic 0's); @rcap: its read buffer.
 */
static int fds_setup(struct run *r, pair_fn pair, size_t rcap)
{
	unsigned int i, k, n = r->c.topics;
	int ret;

	if (n > 1) {
		ret = fds_room(r);
		if (ret)
			return ret;
	}
	for (i = 0; i < r->c.subs; i++) {
		struct subctx *s = &r->subs[i];

		s->rcap = rcap;
		s->rbuf = malloc(s->rcap);
		if (!s->rbuf)
			return -ENOMEM;
		if (n == 1) {
			ret = pair(r, &s->rfd, &s->wfd);
			if (ret)
				return ret;
			continue;
		}
		s->trfd = malloc(n * sizeof(*s->trfd));
		s->twfd = malloc(n * sizeof(*s->twfd));
		if (!s->trfd || !s->twfd)
			return -ENOMEM;
		memset(s->trfd, 0xff, n * sizeof(*s->trfd));
		memset(s->twfd, 0xff, n * sizeof(*s->twfd));
		for (k = 0; k < n; k++) {
			ret = pair(r, &s->trfd[k], &s->twfd[k]);
			if (ret)
				return ret;
		}
		s->rfd = s->trfd[0];
		s->wfd = s->twfd[0];
	}
	return 0;
}

/* The channel of subscriber @s for message @i of @p's burst. */
static int chan_wfd(const struct subctx *s, const struct pubctx *p,
		    unsigned int i)
{
	return s->twfd ? s->twfd[msg_topic(p, i)] : s->wfd;
}

/* With a channel per topic: read those the epoll set says are ready. */
static int topics_poll(struct subctx *s, int (*one)(struct subctx *s, int fd))
{
	struct epoll_event ev[BURST];
	int i, n, got, total = 0;

	n = epoll_wait(s->epfd, ev, BURST, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		got = one(s, ev[i].data.fd);
		if (got < 0)
			return got;
		total += got;
	}
	return total;
}

static int pipe_pair(struct run *r, int *rfd, int *wfd)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	*rfd = fds[0];
	*wfd = fds[1];
	/*
	 * As deep as the user may make it; a failure only costs speed.  Not
	 * with a pipe per topic: thousands of them would pin that much.
	 */
	if (r->c.topics == 1)
		fcntl(*wfd, F_SETPIPE_SZ, 1 << 20);
	return set_nonblock(*rfd);
}

static int pipe_setup(struct run *r)
{
	/*
	 * A consumer of many pipes reads whole messages only: a write of
	 * PIPE_BUF bytes at most is atomic, and reads take multiples of it.
	 */
	if (r->c.topics > 1 && r->c.size > PIPE_BUF)
		return unsupported(r, "a pipe per topic: messages of PIPE_BUF (%d B) at most",
				   PIPE_BUF);
	return fds_setup(r, pipe_pair, (size_t)r->c.size * r->burst);
}

static int write_full(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int pipe_send(struct pubctx *p, unsigned int n)
{
	struct run *r = p->r;
	/* Above PIPE_BUF, writes of several writers may interleave. */
	bool lock = r->c.pubs > 1 && r->c.size > PIPE_BUF;
	unsigned int i, j;
	int ret;

	for (i = 0; i < n; i++) {
		for (j = 0; j < r->c.subs; j++) {
			struct subctx *s = &r->subs[j];

			if (lock)
				pthread_mutex_lock(&s->wlock);
			ret = write_full(chan_wfd(s, p, i), buf_at(p, i),
					 r->c.size);
			if (lock)
				pthread_mutex_unlock(&s->wlock);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int pipe_read(struct subctx *s, int fd)
{
	size_t size = s->r->c.size, off = 0;
	ssize_t got;
	int n = 0;

	got = read(fd, s->rbuf + s->rfill, s->rcap - s->rfill);
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	s->rfill += (size_t)got;
	while (s->rfill - off >= size) {
		on_msg(s, s->rbuf + off, size);
		off += size;
		n++;
	}
	if (off) {
		memmove(s->rbuf, s->rbuf + off, s->rfill - off);
		s->rfill -= off;
	}
	return n;
}

static int pipe_poll(struct subctx *s)
{
	if (s->trfd)
		return topics_poll(s, pipe_read);
	return pipe_read(s, s->rfd);
}

static int fd_sub_fd(struct subctx *s)
{
	return s->rfd;
}

/* A socket buffer of @bytes: forced where allowed, else what the limit gives. */
static void sock_buf(int fd, int opt, int force, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

static int uds_pair(struct run *r, int *rfd, int *wfd)
{
	/* Room for a few messages; with a socket per topic, the default. */
	int bufsz = r->c.size > (1U << 20) ? (int)r->c.size * 2 : 4 << 20;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	*rfd = sv[0];
	*wfd = sv[1];
	/*
	 * Capped by net.core.[rw]mem_max unless forced (CAP_NET_ADMIN); a
	 * message the send buffer cannot hold fails with EMSGSIZE: a skip.
	 */
	if (r->c.topics == 1) {
		sock_buf(*wfd, SO_SNDBUF, SO_SNDBUFFORCE, bufsz);
		sock_buf(*rfd, SO_RCVBUF, SO_RCVBUFFORCE, bufsz);
	}
	return set_nonblock(*rfd);
}

static int uds_setup(struct run *r)
{
	return fds_setup(r, uds_pair, r->c.size + 1);
}

static int uds_send(struct pubctx *p, unsigned int n)
{
	struct run *r = p->r;
	unsigned int i, j;
	ssize_t w;

	for (i = 0; i < n; i++) {
		for (j = 0; j < r->c.subs; j++) {
			do {
				w = send(chan_wfd(&r->subs[j], p, i),
					 buf_at(p, i), r->c.size, 0);
			} while (w < 0 && errno == EINTR);
			if (w < 0)
				return -errno;
			if ((size_t)w != r->c.size)
				return -EIO;
		}
	}
	return 0;
}

static int uds_read(struct subctx *s, int fd)
{
	ssize_t got;
	int n;

	for (n = 0; n < BURST; n++) {
		got = recv(fd, s->rbuf, s->rcap, 0);
		if (got < 0)
			return errno == EAGAIN || errno == EINTR ? n : -errno;
		on_msg(s, s->rbuf, (size_t)got);
	}
	return n;
}

static int uds_poll(struct subctx *s)
{
	if (s->trfd)
		return topics_poll(s, uds_read);
	return uds_read(s, s->rfd);
}

/* Unprivileged users get at most msg_max messages of msgsize_max bytes. */
static int mq_open_pair(struct run *r, struct subctx *s)
{
	static const long depths[] = { 64, 32, 16, 10, 8, 4, 2, 1 };
	char name[64];
	unsigned int k;
	int err = 0;

	snprintf(name, sizeof(name), "/pcbb-%d-%u-%u", (int)getpid(),
		 run_serial, s->idx);
	for (k = 0; k < sizeof(depths) / sizeof(depths[0]); k++) {
		struct mq_attr a = {
			.mq_maxmsg = depths[k],
			.mq_msgsize = r->c.size,
		};
		mqd_t q = mq_open(name, O_RDONLY | O_CREAT | O_EXCL |
				  O_NONBLOCK | O_CLOEXEC, 0600, &a);

		if (q != (mqd_t)-1) {
			s->rfd = q;
			s->wfd = mq_open(name, O_WRONLY | O_CLOEXEC);
			err = s->wfd < 0 ? -errno : 0;
			mq_unlink(name);
			return err;
		}
		err = -errno;
		if (err != -EINVAL && err != -EMFILE && err != -ENOMEM)
			break;
	}
	return err;
}

static int mq_setup(struct run *r)
{
	unsigned int i;
	int ret;

	if (r->c.topics > 1)
		return unsupported(r, "no queue per topic here");
	for (i = 0; i < r->c.subs; i++) {
		struct subctx *s = &r->subs[i];

		ret = mq_open_pair(r, s);
		if (ret) {
			set_why(r, "mq_open: %s", strerror(-ret));
			return ret;
		}
		s->rcap = r->c.size;
		s->rbuf = malloc(s->rcap);
		if (!s->rbuf)
			return -ENOMEM;
	}
	return 0;
}

static int mq_send_msgs(struct pubctx *p, unsigned int n)
{
	struct run *r = p->r;
	unsigned int i, j;
	int ret;

	for (i = 0; i < n; i++) {
		for (j = 0; j < r->c.subs; j++) {
			do {
				ret = mq_send(r->subs[j].wfd,
					      (const char *)buf_at(p, i),
					      r->c.size, 0);
			} while (ret < 0 && errno == EINTR);
			if (ret < 0)
				return -errno;
		}
	}
	return 0;
}

static int mq_poll(struct subctx *s)
{
	ssize_t got;
	int n;

	for (n = 0; n < BURST; n++) {
		got = mq_receive(s->rfd, (char *)s->rbuf, s->rcap, NULL);
		if (got < 0)
			return errno == EAGAIN || errno == EINTR ? n : -errno;
		on_msg(s, s->rbuf, (size_t)got);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Shared-memory rings: eventfd-signalled and spinning                */
/* ------------------------------------------------------------------ */

static int shring_create(struct run *r, struct shring **out, bool efd)
{
	size_t stride = (r->c.size + 63) & ~(size_t)63;
	unsigned int nslots = pow2_at_least((4U << 20) / stride);
	struct shring *q;
	size_t len;

	if (nslots < 4)		/* a few MiB-sized messages */
		nslots = 4;
	if (nslots > 4096)
		nslots = 4096;
	len = sizeof(*q) + (size_t)nslots * stride;
	q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	if (q == MAP_FAILED)
		return -errno;
	q->map_len = len;
	q->nslots = nslots;
	q->stride = (unsigned int)stride;
	q->slots = (unsigned char *)q + ((sizeof(*q) + 63) & ~(size_t)63);
	q->data_efd = q->space_efd = -1;
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	if (!efd)
		return 0;
	q->data_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->space_efd = eventfd(0, EFD_CLOEXEC);
	if (q->data_efd < 0 || q->space_efd < 0)
		return -errno;
	return 0;
}

static void shring_destroy(struct shring *q)
{
	if (!q)
		return;
	if (q->data_efd >= 0)
		close(q->data_efd);
	if (q->space_efd >= 0)
		close(q->space_efd);
	pthread_mutex_destroy(&q->lock);
	munmap(q, q->map_len);
}

static int shm_setup_common(struct run *r, bool efd)
{
	unsigned int i;
	int ret;

	if (r->c.topics > 1)
		return unsupported(r, "a ring per subscriber has no topics");
	for (i = 0; i < r->c.subs; i++) {
		ret = shring_create(r, &r->subs[i].ring, efd);
		if (ret)
			return ret;
	}
	return 0;
}

static int efd_setup(struct run *r)
{
	return shm_setup_common(r, true);
}

static int spin_setup(struct run *r)
{
	return shm_setup_common(r, false);
}

static void shm_teardown(struct run *r)
{
	unsigned int i;

	for (i = 0; i < r->c.subs; i++) {
		shring_destroy(r->subs[i].ring);
		r->subs[i].ring = NULL;
	}
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter is saturated: a wake-up is pending. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

/* Wait for room: a Dekker handshake with the consumer's release. */
static void shring_wait_space(struct shring *q, uint64_t head,
			      unsigned int *spins)
{
	uint64_t v;

	if (q->space_efd < 0) {
		spin_wait(spins);
		return;
	}
	store_release(&q->prod_wait, 1);
	smp_mb();
	if (head - load_acquire(&q->tail) < q->nslots)
		return;
	if (read(q->space_efd, &v, sizeof(v)) < 0)
		return;
}

static void shring_put(struct run *r, struct shring *q, const void *msg)
{
	bool lock = r->c.pubs > 1;
	unsigned int spins = 0;
	uint64_t head;

	if (lock)
		pthread_mutex_lock(&q->lock);
	head = load_relaxed(&q->head);
	while (head - load_acquire(&q->tail) >= q->nslots)
		shring_wait_space(q, head, &spins);
	memcpy(q->slots + (size_t)(head & (q->nslots - 1)) * q->stride, msg,
	       r->c.size);
	store_release(&q->head, head + 1);
	if (lock)
		pthread_mutex_unlock(&q->lock);
	if (q->data_efd < 0)
		return;
	smp_mb();
	if (load_relaxed(&q->cons_wait) &&
	    __atomic_exchange_n(&q->cons_wait, 0, __ATOMIC_ACQ_REL))
		efd_signal(q->data_efd);
}

static int shm_send(struct pubctx *p, unsigned int n)
{
	struct run *r = p->r;
	unsigned int i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < r->c.subs; j++)
			shring_put(r, r->subs[j].ring, buf_at(p, i));
	return 0;
}

static int shm_poll(struct subctx *s)
{
	struct shring *q = s->ring;
	uint64_t tail = load_relaxed(&q->tail);
	uint64_t head = load_acquire(&q->head);
	int n = 0;

	while (tail != head && n < BURST) {
		on_msg(s, q->slots + (size_t)(tail & (q->nslots - 1)) *
			  q->stride, s->r->c.size);
		tail++;
		n++;
	}
	if (!n)
		return 0;
	store_release(&q->tail, tail);
	if (q->space_efd >= 0) {
		smp_mb();
		if (load_relaxed(&q->prod_wait) &&
		    __atomic_exchange_n(&q->prod_wait, 0, __ATOMIC_ACQ_REL))
			efd_signal(q->space_efd);
	}
	return n;
}

static int efd_arm(struct subctx *s)
{
	struct shring *q = s->ring;

	store_release(&q->cons_wait, 1);
	smp_mb();
	return load_acquire(&q->head) != load_relaxed(&q->tail);
}

static void efd_disarm(struct subctx *s)
{
	uint64_t v;

	/* Reset the counter; an empty one is fine (EAGAIN). */
	if (read(s->ring->data_efd, &v, sizeof(v)) < 0)
		return;
}

static int efd_sub_fd(struct subctx *s)
{
	return s->ring->data_efd;
}

static const struct ops modes[] = {
	{ "pcb-ioctl", true, true, -1, pcb_setup, pcb_teardown, pcb_pub_init,
	  pcb_pub_fini, pcb_send_ioctl, pcb_poll, pcb_arm, pcb_disarm, pcb_sub_fd },
	{ "pcb-try", true, true, -1, pcb_setup, pcb_teardown, pcb_pub_init,
	  pcb_pub_fini, pcb_send_try, pcb_poll, pcb_arm, pcb_disarm, pcb_sub_fd },
	{ "pcb-batch", true, true, -1, pcb_setup, pcb_teardown, pcb_pub_init,
	  pcb_pub_fini, pcb_send_batch, pcb_poll, pcb_arm, pcb_disarm, pcb_sub_fd },
	{ "pcb-uring", true, false, -1, pcb_setup, pcb_teardown, pcb_uring_init,
	  pcb_pub_fini, pcb_send_uring, pcb_poll, pcb_arm, pcb_disarm, pcb_sub_fd },
	{ "pcb-sqpoll", true, false, -1, pcb_setup, pcb_teardown, pcb_sqpoll_init,
	  pcb_pub_fini, pcb_send_uring, pcb_poll, pcb_arm, pcb_disarm, pcb_sub_fd },
	{ "pipe", false, true, -1, pipe_setup, fds_teardown, NULL, NULL,
	  pipe_send, pipe_poll, NULL, NULL, fd_sub_fd },
	{ "uds", false, true, -1, uds_setup, fds_teardown, NULL, NULL,
	  uds_send, uds_poll, NULL, NULL, fd_sub_fd },
	{ "mq", false, true, -1, mq_setup, fds_teardown, NULL, NULL,
	  mq_send_msgs, mq_poll, NULL, NULL, fd_sub_fd },
	{ "eventfd-shm", false, true, CONS_EPOLL, efd_setup, shm_teardown, NULL,
	  NULL, shm_send, shm_poll, efd_arm, efd_disarm, efd_sub_fd },
	{ "spin-shm", false, true, CONS_SPIN, spin_setup, shm_teardown, NULL, NULL,
	  shm_send, shm_poll, NULL, NULL, NULL },
};

#define NR_MODES	(sizeof(modes) / sizeof(modes[0]))

/* ------------------------------------------------------------------ */
/* Threads                                                            */
/* ------------------------------------------------------------------ */

static void name_thread(const char *role, unsigned int idx)
{
	char comm[16];

	snprintf(comm, sizeof(comm), "pcbb-%s%u", role, idx);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
}

/* Whether every message published has been read, or we gave up on it. */
static bool sub_finished(struct subctx *s)
{
	struct run *r = s->r;
	uint64_t now;

	if (!load_acquire(&r->pubs_done))
		return false;
	if (s->received >= r->expected)
		return true;
	/* Another CPU's TSC may be a little behind the one that set it. */
	now = bench_tsc_now();
	return now > r->done_tsc && now - r->done_tsc > ns_to_tsc(DRAIN_NS);
}

static int sub_wait(struct subctx *s)
{
	const struct ops *o = s->r->c.ops;
	struct epoll_event ev;
	int ret;

	if (o->arm && o->arm(s) > 0)
		return 0;
	ret = epoll_wait(s->epfd, &ev, 1, WAIT_MS);
	if (o->disarm)
		o->disarm(s);
	return ret < 0 && errno != EINTR ? -errno : 0;
}

static void *sub_main(void *arg)
{
	struct subctx *s = arg;
	struct run *r = s->r;
	bool spin = r->c.consumer == CONS_SPIN;
	bool measuring = false, stopped = false;
	struct cpu_time cpu0 = { 0, 0 };
	unsigned int spins = 0;
	int n;

	name_thread("sub", s->idx);
	__atomic_add_fetch(&r->subs_ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		unsigned int ph = load_relaxed(&r->phase);

		if (!measuring && ph >= PH_MEASURE) {
			measuring = true;
			cpu0 = thread_cpu();
		}
		if (measuring && !stopped && ph == PH_STOP) {
			stopped = true;
			s->cpu = thread_cpu_since(cpu0);
		}
		n = r->c.ops->poll(s);
		if (n < 0) {
			if (!s->err)
				s->err = n;
			break;
		}
		if (n > 0)
			continue;
		if (sub_finished(s))
			break;
		if (spin) {
			spin_wait(&spins);
		} else {
			n = sub_wait(s);
			if (n < 0 && !s->err)
				s->err = n;
		}
	}
	if (measuring && !stopped)
		s->cpu = thread_cpu_since(cpu0);
	return NULL;
}

static void fill_msg(struct pubctx *p, unsigned int i, uint64_t t,
		     uint32_t flags)
{
	struct msg_hdr h = {
		.t_tsc = t,
		.seq = p->sent + i,
		.pub = p->idx,
		.flags = flags,
	};

	msg_encode(buf_at(p, i), p->r->c.size, &h);
}

/*
 * Wait for TSC time @t, spinning: a timer would wake the publisher late
 * by its own latency (about 100 us in a TCG VM), and that would count as
 * the latency of the messages.  Where the run has more busy threads than
 * the machine has CPUs, yield now and then to the threads it waits for;
 * elsewhere a yield would only make it late.  False if the run stopped.
 */
static bool pace_until(struct run *r, uint64_t t)
{
	unsigned int spins = 0;

	while (bench_tsc_now() < t) {
		if (load_relaxed(&r->phase) == PH_STOP)
			return false;
		cpu_relax();
		if (r->crowded && (++spins & 63) == 0)
			sched_yield();
	}
	return true;
}

/* How many messages are due, waiting for the first of them if need be. */
static unsigned int pub_due(struct run *r, uint64_t *next, uint64_t period)
{
	uint64_t now = bench_tsc_now(), due;

	if (*next > now) {
		if (!pace_until(r, *next))
			return 0;
		now = bench_tsc_now();
	}
	due = (now - *next) / period + 1;
	return due > r->burst ? r->burst : (unsigned int)due;
}

static void pub_loop(struct pubctx *p)
{
	struct run *r = p->r;
	/* In TSC ticks, at least one; 0 saturates. */
	uint64_t period = r->c.rate ? (ns_to_tsc(1e9 / r->c.rate) ?: 1) : 0;
	uint64_t next = bench_tsc_now();
	bool measuring = false;
	struct cpu_time cpu0 = { 0, 0 };

	for (;;) {
		unsigned int ph = load_relaxed(&r->phase);
		unsigned int i, n = r->burst;
		uint32_t flags = 0;
		int ret;

		if (ph == PH_STOP)
			break;
		if (ph == PH_MEASURE) {
			if (!measuring) {
				measuring = true;
				cpu0 = thread_cpu();
			}
			if (r->c.count && p->measured >= r->c.count)
				break;
			flags = MSG_MEASURED;
		}
		if (period)
			n = pub_due(r, &next, period);
		if (!n)		/* stopped */
			continue;
		if (flags && r->c.count && n > r->c.count - p->measured)
			n = (unsigned int)(r->c.count - p->measured);
		for (i = 0; i < n; i++)
			fill_msg(p, i, period ? next + i * period :
				 bench_tsc_now(), flags);
		ret = r->c.ops->send(p, n);
		if (ret) {
			p->err = ret;
			break;
		}
		p->sent += n;
		if (flags)
			p->measured += n;
		next += n * period;
	}
	if (measuring)
		p->cpu = thread_cpu_since(cpu0);
}

static void *pub_main(void *arg)
{
	struct pubctx *p = arg;
	const struct ops *o = p->r->c.ops;
	int ret = 0;

	name_thread("pub", p->idx);
	if (o->pub_init)
		ret = o->pub_init(p);
	if (ret)
		p->err = ret;
	else
		pub_loop(p);
	if (o->pub_fini)
		o->pub_fini(p);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* One run                                                            */
/* ------------------------------------------------------------------ */

/* The CPUs this process may run on. */
static unsigned int nr_cpus(void)
{
	cpu_set_t set;
	long n;

	if (!sched_getaffinity(0, sizeof(set), &set))
		return (unsigned int)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

static int run_init(struct run *r, const struct cfg *c)
{
	unsigned int i, busy;

	memset(r, 0, sizeof(*r));
	r->c = *c;
	r->burst = BURST;
	if ((size_t)c->size * BURST > BURST_BYTES)
		r->burst = c->size >= BURST_BYTES ? 1 : BURST_BYTES / c->size;
	/*
	 * Publishers, consumers (spinning, or woken per message) and, for
	 * pcb-sqpoll, a kernel thread per publisher.
	 */
	busy = c->pubs + c->subs;
	if (c->ops->pub_init == pcb_sqpoll_init)
		busy += c->pubs;
	r->crowded = nr_cpus() < busy;
	for (i = 0; i < c->subs; i++) {
		struct subctx *s = &r->subs[i];

		s->r = r;
		s->idx = i;
		s->rfd = s->wfd = s->epfd = -1;
		pthread_mutex_init(&s->wlock, NULL);
		s->hist = calloc(1, sizeof(*s->hist));
		if (!s->hist)
			return -ENOMEM;
	}
	for (i = 0; i < c->pubs; i++) {
		struct pubctx *p = &r->pubs[i];

		p->r = r;
		p->idx = i;
		p->handle = -1;
		p->bufs = calloc(r->burst, c->size);
		p->entries = calloc(r->burst, sizeof(*p->entries));
		if (!p->bufs || !p->entries)
			return -ENOMEM;
	}
	return 0;
}

static void run_free(struct run *r)
{
	unsigned int i;

	for (i = 0; i < r->c.subs; i++) {
		if (r->subs[i].epfd >= 0)
			close(r->subs[i].epfd);
		pthread_mutex_destroy(&r->subs[i].wlock);
		free(r->subs[i].hist);
	}
	for (i = 0; i < r->c.pubs; i++) {
		free(r->pubs[i].bufs);
		free(r->pubs[i].entries);
	}
}

static int make_epoll(struct subctx *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd = s->r->c.ops->fd ? s->r->c.ops->fd(s) : -1;
	unsigned int k;

	if (fd < 0)
		return 0;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return -errno;
	/* A channel per topic: all of them, each event naming its fd. */
	for (k = 0; k < (s->trfd ? s->r->c.topics : 1); k++) {
		ev.data.fd = s->trfd ? s->trfd[k] : fd;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
			return -errno;
	}
	/*
	 * Adding the fd polls it once, and the kernel's poll asks for
	 * wake-ups on the consumer's behalf: take that back until it sleeps.
	 */
	if (s->bus)
		pcb_sleep_done(s->bus);
	return 0;
}

static int start_threads(struct run *r, unsigned int *nsubs,
			 unsigned int *npubs)
{
	unsigned int i;
	int ret;

	for (i = 0; i < r->c.subs; i++) {
		ret = make_epoll(&r->subs[i]);
		if (ret)
			return ret;
		ret = -pthread_create(&r->subs[i].thread, NULL, sub_main,
				      &r->subs[i]);
		if (ret)
			return ret;
		++*nsubs;
	}
	while (load_acquire(&r->subs_ready) < r->c.subs)
		usleep(100);
	for (i = 0; i < r->c.pubs; i++) {
		ret = -pthread_create(&r->pubs[i].thread, NULL, pub_main,
				      &r->pubs[i]);
		if (ret)
			return ret;
		++*npubs;
	}
	return 0;
}

/* Warm-up, the measured interval, the end; returns its length. */
static uint64_t measure(struct run *r, unsigned int npubs)
{
	uint64_t t0, t1;
	unsigned int i;

	if (r->c.warmup_ns)
		sleep_until_tsc(bench_tsc_now() + ns_to_tsc(r->c.warmup_ns));
	t0 = bench_tsc_now();
	pcbb_steady(1);
	store_release(&r->phase, PH_MEASURE);
	if (r->c.count) {
		for (i = 0; i < npubs; i++)
			pthread_join(r->pubs[i].thread, NULL);
	} else {
		sleep_until_tsc(t0 + ns_to_tsc(r->c.duration_ns));
	}
	t1 = bench_tsc_now();
	pcbb_steady(0);
	store_release(&r->phase, PH_STOP);
	if (!r->c.count)
		for (i = 0; i < npubs; i++)
			pthread_join(r->pubs[i].thread, NULL);
	return (uint64_t)tsc_to_ns(t1 - t0);
}

static void collect(struct run *r, struct result *res)
{
	unsigned int i;

	for (i = 0; i < r->c.pubs; i++) {
		struct pubctx *p = &r->pubs[i];

		res->published += p->measured;
		res->sent += p->sent;
		cpu_add(&res->cpu_pub, p->cpu);
		if (p->err && !res->err) {
			res->err = p->err;
			set_why(r, "publisher %u: %s", i, strerror(-p->err));
		}
	}
	for (i = 0; i < r->c.subs; i++) {
		struct subctx *s = &r->subs[i];

		res->messages += s->measured;
		res->received += s->received;
		res->lost += r->expected > s->received ?
			     r->expected - s->received : 0;
		res->gaps += s->gaps;
		res->reordered += s->reordered;
		res->bad += s->bad;
		cpu_add(&res->cpu_sub, s->cpu);
		pcb_lat_hist_merge(&res->hist, s->hist);
		if (s->err && !res->err) {
			res->err = s->err;
			set_why(r, "consumer %u: %s", i, strerror(-s->err));
		}
	}
}

static int run_one(const struct cfg *c, struct result *res)
{
	static struct run r;
	unsigned int i, nsubs = 0, npubs = 0;
	uint64_t dur = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = run_init(&r, c);
	if (!ret)
		ret = c->ops->setup(&r);
	if (!ret)
		ret = start_threads(&r, &nsubs, &npubs);
	if (!ret)
		dur = measure(&r, npubs);
	else
		store_release(&r.phase, PH_STOP);
	if (ret && !r.why[0])
		set_why(&r, "setup: %s", strerror(-ret));
	if (ret) {
		for (i = 0; i < npubs; i++)
			pthread_join(r.pubs[i].thread, NULL);
	}
	for (i = 0; i < c->pubs; i++)
		r.expected += r.pubs[i].sent;
	r.done_tsc = bench_tsc_now();
	store_release(&r.pubs_done, 1);
	for (i = 0; i < nsubs; i++)
		pthread_join(r.subs[i].thread, NULL);
	res->duration_s = dur / 1e9;
	if (!ret)
		collect(&r, res);
	else
		res->err = ret;
	res->no_bus = r.no_bus;
	res->unsupported = r.unsupported;
	snprintf(res->skip_why, sizeof(res->skip_why), "%s", r.why);
	c->ops->teardown(&r);
	run_free(&r);
	return res->err;
}

/* ------------------------------------------------------------------ */
/* The suite, checks and output                                       */
/* ------------------------------------------------------------------ */

struct list {
	unsigned int n;
	uint64_t v[MAX_RUN_LIST];
};

struct opts {
	bool quick, json;
	struct list modes, sizes, subs, pubs, topics, consumers;
	uint64_t rate;
	double duration, warmup;
	uint64_t count;
};

struct entry {
	struct cfg c;
	struct result res;
	bool skipped, failed;
	char why[128];
};

static struct entry *entries;
static unsigned int nr_entries;

/*
 * Errors of the environment, not of the transport: the run is skipped.
 * For pcb, only when /dev/pcb itself cannot be opened: a subscription to
 * the run's own topic refused (EACCES) is a failure, not a skip.
 */
static bool is_skip(const struct ops *o, const struct result *res, int err)
{
	if (res->unsupported)
		return true;
	/* A message larger than the socket may hold, or allocate. */
	if (!strcmp(o->name, "uds"))
		return err == -EMSGSIZE || err == -ENOBUFS || err == -ENOMEM;
	if (o->pcb && res->no_bus &&
	    (err == -ENOENT || err == -ENODEV || err == -EACCES))
		return true;
	if (!strcmp(o->name, "mq"))
		return err == -EACCES || err == -ENOSYS || err == -EPERM ||
		       err == -EINVAL || err == -EMFILE || err == -ENOMEM;
	if (o->pcb && strstr(o->name, "uring") == NULL &&
	    strstr(o->name, "sqpoll") == NULL)
		return false;
	return err == -ENOSYS || err == -EPERM || err == -EOPNOTSUPP;
}

static bool check(struct entry *e)
{
	const struct result *r = &e->res;
	struct pcb_lat_hist *h = (struct pcb_lat_hist *)&r->hist;
	uint64_t p50 = pcb_lat_hist_percentile(h, 50);
	uint64_t p99 = pcb_lat_hist_percentile(h, 99);
	/* Channels of different topics have no order between them. */
	bool ordered = e->c.ops->ordered && (e->c.ops->pcb || e->c.topics == 1);

	if (r->err) {
		snprintf(e->why, sizeof(e->why), "%s", r->skip_why);
		return false;
	}
	if (r->lost || r->bad || (ordered && r->reordered))
		snprintf(e->why, sizeof(e->why),
			 "lost %llu, out of order %llu, malformed %llu",
			 (unsigned long long)r->lost,
			 (unsigned long long)r->reordered,
			 (unsigned long long)r->bad);
	else if (!r->messages || r->duration_s <= 0)
		/* Were the threads working at all, or only not in time? */
		snprintf(e->why, sizeof(e->why),
			 "no message measured (%llu in the interval, %llu sent and %llu received in all)",
			 (unsigned long long)r->published,
			 (unsigned long long)r->sent,
			 (unsigned long long)r->received);
	else if (h->count != r->messages)
		snprintf(e->why, sizeof(e->why),
			 "latency count %llu != messages %llu",
			 (unsigned long long)h->count,
			 (unsigned long long)r->messages);
	else if (!(h->min_ns <= p50 && p50 <= p99 && p99 <= h->max_ns))
		snprintf(e->why, sizeof(e->why), "percentiles out of order");
	else
		return true;
	return false;
}

static double per_million(double cpu, uint64_t n)
{
	return n ? cpu * 1e6 / (double)n : 0;
}

/* The histograms hold TSC ticks: a percentile in ns (0: min, 100: max). */
static double lat_ns(const struct pcb_lat_hist *h, double p)
{
	return tsc_to_ns(pcb_lat_hist_percentile(h, p));
}

static void print_header(FILE *f)
{
	fprintf(f, "%-11s %7s %4s %4s %5s %5s %8s %10s %9s %5s %7s %7s %7s %8s %8s %8s %7s %7s %7s %7s %s\n",
		"mode", "size", "subs", "pubs", "topic", "cons", "rate", "msgs/s",
		"MB/s", "lost", "min", "p50", "p90", "p99", "p99.9",
		"p99.99", "max", "pub-usr", "pub-sys", "sub-usr", "sub-sys");
	fprintf(f, "%-11s %7s %4s %4s %5s %5s %8s %10s %9s %5s %7s %7s %7s %8s %8s %8s %7s %7s %7s %7s %s\n",
		"", "B", "", "", "s", "", "/s/pub", "", "", "", "us", "us", "us",
		"us", "us", "us", "us", "s/M", "s/M", "s/M", "s/M");
}

static void print_row(FILE *f, const struct entry *e)
{
	const struct cfg *c = &e->c;
	const struct result *r = &e->res;
	const struct pcb_lat_hist *h = &r->hist;
	char rate[24];

	if (c->rate)
		snprintf(rate, sizeof(rate), "%llu",
			 (unsigned long long)c->rate);
	else
		snprintf(rate, sizeof(rate), "max");
	fprintf(f, "%-11s %7u %4u %4u %5u %5s %8s ", c->ops->name, c->size,
		c->subs, c->pubs, c->topics, consumer_names[c->consumer], rate);
	if (e->skipped) {
		fprintf(f, "skipped: %s\n", e->why);
		return;
	}
	fprintf(f, "%10.0f %9.2f %5llu %7.1f %7.1f %7.1f %8.1f %8.1f %8.1f %7.0f %7.2f %7.2f %7.2f %7.2f",
		r->messages / r->duration_s,
		r->messages * (double)c->size / r->duration_s / 1e6,
		(unsigned long long)r->lost, lat_ns(h, 0) / 1e3,
		lat_ns(h, 50) / 1e3, lat_ns(h, 90) / 1e3, lat_ns(h, 99) / 1e3,
		lat_ns(h, 99.9) / 1e3, lat_ns(h, 99.99) / 1e3,
		lat_ns(h, 100) / 1e3,
		per_million(r->cpu_pub.user, r->published),
		per_million(r->cpu_pub.sys, r->published),
		per_million(r->cpu_sub.user, r->messages),
		per_million(r->cpu_sub.sys, r->messages));
	if (e->failed)
		fprintf(f, "  FAILED: %s", e->why);
	fputc('\n', f);
}

static bool in_vm(void)
{
	char buf[64] = "";
	FILE *f;

	if (getenv("PCB_VM"))
		return true;
	f = fopen("/sys/class/dmi/id/product_name", "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, "QEMU") != NULL;
}

static const char *bus_clock(void)
{
	struct pcb *bus;
	uint32_t clk = 0;

	if (pcb_open(&bus))
		return "mono";
	if (!pcb_ring_setup(bus, PCB_RING_MIN_SIZE))
		clk = pcb_clock(bus);
	pcb_close(bus);
	return clk == PCB_CLOCK_TSC ? "tsc" : "mono";
}

/*
 * host.clock is the bus's clock, for its own timestamps; bench_clock is
 * the one pcb-bench measures with, at the rate measured at start-up.
 */
static void print_json(time_t started)
{
	unsigned int i;

	printf("{\"version\":1,\"host\":{");
	bench_json_host(stdout, started);
	printf(",\"cpus\":%ld,\"vm\":%s,\"clock\":\"%s\","
	       "\"bench_clock\":\"%s\",\"tsc_per_ns\":%.4f},\"runs\":[",
	       sysconf(_SC_NPROCESSORS_ONLN), in_vm() ? "true" : "false",
	       bus_clock(), bench_tsc_name(), tsc_per_ns);
	for (i = 0; i < nr_entries; i++) {
		const struct entry *e = &entries[i];
		const struct cfg *c = &e->c;
		const struct result *r = &e->res;
		const struct pcb_lat_hist *h = &r->hist;

		printf("%s\n{\"mode\":\"%s\",\"size\":%u,\"subs\":%u,"
		       "\"pubs\":%u,\"topics\":%u,\"consumer\":\"%s\",",
		       i ? "," : "", c->ops->name, c->size, c->subs, c->pubs,
		       c->topics, consumer_names[c->consumer]);
		if (c->rate)
			printf("\"rate\":%llu,", (unsigned long long)c->rate);
		else
			printf("\"rate\":null,");
		if (e->skipped) {
			printf("\"skipped\":\"%s\"}", e->why);
			continue;
		}
		printf("\"ok\":%s,%s%s%s\"duration_s\":%.6f,\"published\":%llu,"
		       "\"messages\":%llu,\"bytes\":%llu,\"msgs_per_s\":%.1f,"
		       "\"bytes_per_s\":%.1f,\"lost\":%llu,\"reordered\":%llu,",
		       e->failed ? "false" : "true",
		       e->failed ? "\"error\":\"" : "",
		       e->failed ? e->why : "", e->failed ? "\"," : "",
		       r->duration_s, (unsigned long long)r->published,
		       (unsigned long long)r->messages,
		       (unsigned long long)(r->messages * c->size),
		       r->duration_s > 0 ? r->messages / r->duration_s : 0,
		       r->duration_s > 0 ?
		       r->messages * (double)c->size / r->duration_s : 0,
		       (unsigned long long)r->lost,
		       (unsigned long long)r->reordered);
		printf("\"latency_ns\":{\"count\":%llu,\"min\":%.0f,"
		       "\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"p99_9\":%.0f,"
		       "\"p99_99\":%.0f,\"max\":%.0f},",
		       (unsigned long long)h->count, lat_ns(h, 0),
		       lat_ns(h, 50), lat_ns(h, 90), lat_ns(h, 99),
		       lat_ns(h, 99.9), lat_ns(h, 99.99), lat_ns(h, 100));
		/* publishers, consumers: user + system, as before the split */
		printf("\"cpu_s_per_million\":{\"publishers\":%.4f,"
		       "\"consumers\":%.4f,\"publishers_user\":%.4f,"
		       "\"publishers_sys\":%.4f,\"consumers_user\":%.4f,"
		       "\"consumers_sys\":%.4f}}",
		       per_million(r->cpu_pub.user + r->cpu_pub.sys,
				   r->published),
		       per_million(r->cpu_sub.user + r->cpu_sub.sys,
				   r->messages),
		       per_million(r->cpu_pub.user, r->published),
		       per_million(r->cpu_pub.sys, r->published),
		       per_million(r->cpu_sub.user, r->messages),
		       per_million(r->cpu_sub.sys, r->messages));
	}
	printf("\n]}\n");
}

static void watchdog(int sig)
{
	static const char msg[] = "pcb-bench: a run hung, giving up\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/*
 * RLIMIT_MSGQUEUE (800 KiB by default) caps the bytes of all of a user's
 * queues: too little for 8 subscribers of 64 KiB messages.  Root may lift
 * it; for others the runs that do not fit are skipped.
 */
static void raise_mq_limit(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_MSGQUEUE, &rl) && !getrlimit(RLIMIT_MSGQUEUE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MSGQUEUE, &rl);
	}
}

static const struct option long_opts[] = {
	{ "quick", no_argument, NULL, 'q' },
	{ "json", no_argument, NULL, 'j' },
	{ "mode", required_argument, NULL, 'm' },
	{ "size", required_argument, NULL, 's' },
	{ "subs", required_argument, NULL, 'S' },
	{ "pubs", required_argument, NULL, 'P' },
	{ "topics", required_argument, NULL, 'T' },
	{ "rate", required_argument, NULL, 'r' },
	{ "saturate", no_argument, NULL, 'x' },
	{ "consumer", required_argument, NULL, 'c' },
	{ "duration", required_argument, NULL, 'd' },
	{ "count", required_argument, NULL, 'n' },
	{ "warmup", required_argument, NULL, 'w' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	unsigned int i;

	fprintf(f,
"usage: pcb-bench [--quick] [--json] [--mode LIST] [--size LIST]\n"
"                 [--subs LIST] [--pubs LIST] [--topics LIST]\n"
"                 [--rate N|--saturate]\n"
"                 [--consumer spin|epoll|LIST] [--duration SECS]\n"
"                 [--count N] [--warmup SECS]\n"
"       pcb-bench cost [--json] [SIZE...]  (single-threaded cost per call)\n"
"       pcb-bench pingpong [--json] [TRANSPORT...]  (RTT/2, closed loop)\n"
"LISTs are comma-separated.  Modes:");
	for (i = 0; i < NR_MODES; i++)
		fprintf(f, " %s", modes[i].name);
	fprintf(f,
"\n(eventfd-shm always sleeps in epoll, spin-shm always spins).\n"
"Default: every mode, sizes 64,256,1024,4096,65536, subs 1,3,8, pubs 1,\n"
"epoll consumers, saturating, 1 s per run after 0.2 s of warm-up.\n"
"--rate N paces each publisher at N messages/s (it spins on the TSC\n"
"between messages); --count N ends a run after N measured messages per\n"
"publisher instead of --duration.  Latency is timed with the TSC.\n"
"--topics N: each publisher spreads its messages round-robin over N topics,\n"
"all of them taken by every subscriber (pipe and uds: a channel per topic;\n"
"the shared-memory rings and mq have no topics and are skipped).\n"
"Sizes: %u B to %u B; a transport that cannot carry a size is skipped.\n"
"--quick: every mode at 64 and 4096 bytes, 1 and 3 subscribers, short\n"
"runs; sanity checks only.  Exit: 0 every run passed its checks, 1 one\n"
"failed, 2 usage, 4 every run was skipped.\n", MIN_SIZE, MAX_SIZE);
}

static int parse_mode(const char *s, uint64_t *v)
{
	unsigned int i;

	for (i = 0; i < NR_MODES; i++)
		if (!strcmp(s, modes[i].name)) {
			*v = i;
			return 0;
		}
	if (!strcmp(s, "all")) {
		*v = UINT64_MAX;
		return 0;
	}
	return -1;
}

static int parse_consumer(const char *s, uint64_t *v)
{
	if (!strcmp(s, "spin"))
		*v = CONS_SPIN;
	else if (!strcmp(s, "epoll"))
		*v = CONS_EPOLL;
	else
		return -1;
	return 0;
}

static int parse_num(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		*v <<= 10, end++;
	return *end ? -1 : 0;
}

static int parse_list(const char *arg, struct list *l,
		      int (*one)(const char *, uint64_t *))
{
	char *copy = strdup(arg), *tok, *save = NULL;
	uint64_t v;
	unsigned int i;
	int ret = 0;

	l->n = 0;
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		if (one(tok, &v)) {
			fprintf(stderr, "pcb-bench: bad value '%s'\n", tok);
			ret = -1;
		} else if (v == UINT64_MAX) {	/* every mode */
			for (i = 0; i < NR_MODES && l->n < MAX_RUN_LIST; i++)
				l->v[l->n++] = i;
		} else if (l->n < MAX_RUN_LIST) {
			l->v[l->n++] = v;
		}
	}
	free(copy);
	return ret || !l->n ? -1 : 0;
}

static void set_list(struct list *l, const uint64_t *v, unsigned int n)
{
	l->n = n;
	memcpy(l->v, v, n * sizeof(*v));
}

static void defaults(struct opts *o)
{
	static const uint64_t sizes[] = { 64, 256, 1024, 4096, 65536 };
	static const uint64_t subs[] = { 1, 3, 8 };
	unsigned int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < NR_MODES; i++)
		o->modes.v[i] = i;
	o->modes.n = NR_MODES;
	set_list(&o->sizes, sizes, 5);
	set_list(&o->subs, subs, 3);
	o->pubs.v[0] = 1;
	o->pubs.n = 1;
	o->topics.v[0] = 1;
	o->topics.n = 1;
	o->consumers.v[0] = CONS_EPOLL;
	o->consumers.n = 1;
	o->duration = 1.0;
	o->warmup = 0.2;
}

static void quick_defaults(struct opts *o, bool sizes_set, bool subs_set,
			   bool dur_set, bool warm_set)
{
	static const uint64_t sizes[] = { 64, 4096 };
	static const uint64_t subs[] = { 1, 3 };

	if (!sizes_set)
		set_list(&o->sizes, sizes, 2);
	if (!subs_set)
		set_list(&o->subs, subs, 2);
	if (!dur_set)
		o->duration = 0.25;
	if (!warm_set)
		o->warmup = 0.05;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	bool sizes_set = false, subs_set = false, dur_set = false;
	bool warm_set = false;
	uint64_t v;
	char *end;
	int c;

	defaults(o);
	while ((c = getopt_long(argc, argv, "qjm:s:S:P:T:r:xc:d:n:w:h",
				long_opts, NULL)) != -1) {
		switch (c) {
		case 'q': o->quick = true; break;
		case 'j': o->json = true; break;
		case 'm':
			if (parse_list(optarg, &o->modes, parse_mode))
				return -1;
			break;
		case 's':
			if (parse_list(optarg, &o->sizes, parse_num))
				return -1;
			sizes_set = true;
			break;
		case 'S':
			if (parse_list(optarg, &o->subs, parse_num))
				return -1;
			subs_set = true;
			break;
		case 'P':
			if (parse_list(optarg, &o->pubs, parse_num))
				return -1;
			break;
		case 'T':
			if (parse_list(optarg, &o->topics, parse_num))
				return -1;
			break;
		case 'c':
			if (parse_list(optarg, &o->consumers, parse_consumer))
				return -1;
			break;
		case 'r':
			if (parse_num(optarg, &o->rate) || !o->rate ||
			    o->rate > 1000000000ULL)
				return -1;
			break;
		case 'x': o->rate = 0; break;
		case 'd':
			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0))
				return -1;
			dur_set = true;
			break;
		case 'w':
			o->warmup = strtod(optarg, &end);
			if (*end || !(o->warmup >= 0))
				return -1;
			warm_set = true;
			break;
		case 'n':
			if (parse_num(optarg, &v) || !v)
				return -1;
			o->count = v;
			break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc)
		return -1;
	if (o->quick)
		quick_defaults(o, sizes_set, subs_set, dur_set, warm_set);
	for (c = 0; c < (int)o->sizes.n; c++)
		if (o->sizes.v[c] < MIN_SIZE || o->sizes.v[c] > MAX_SIZE) {
			fprintf(stderr, "pcb-bench: sizes are %u .. %u bytes\n",
				MIN_SIZE, MAX_SIZE);
			return -1;
		}
	for (c = 0; c < (int)o->topics.n; c++)
		if (!o->topics.v[c] || o->topics.v[c] > MAX_TOPICS)
			return -1;
	for (c = 0; c < (int)o->subs.n; c++)
		if (!o->subs.v[c] || o->subs.v[c] > MAX_SUBS)
			return -1;
	for (c = 0; c < (int)o->pubs.n; c++)
		if (!o->pubs.v[c] || o->pubs.v[c] > MAX_PUBS)
			return -1;
	return 0;
}

static void do_run(const struct opts *o, const struct cfg *c, FILE *tbl)
{
	struct entry *e = &entries[nr_entries++];
	uint64_t limit_s = (uint64_t)(o->warmup + o->duration) +
			   DRAIN_NS / 1000000000ULL + 60;
	int ret;

	e->c = *c;
	if (c->count)
		limit_s += 600;
	alarm((unsigned int)limit_s);
	ret = run_one(c, &e->res);
	alarm(0);
	if (ret && is_skip(c->ops, &e->res, ret)) {
		e->skipped = true;
		snprintf(e->why, sizeof(e->why), "%s", e->res.skip_why[0] ?
			 e->res.skip_why : strerror(-ret));
	} else {
		e->failed = !check(e);
	}
	print_row(tbl, e);
	fflush(tbl);
}

/* The runs of one point, @c, for each mode and consumer asked for. */
static void run_point(const struct opts *o, struct cfg *c, FILE *tbl)
{
	unsigned int m, co;

	for (m = 0; m < o->modes.n; m++) {
		bool seen[2] = { false, false };

		c->ops = &modes[o->modes.v[m]];
		for (co = 0; co < o->consumers.n; co++) {
			c->consumer = c->ops->fixed_consumer >= 0 ?
				(enum consumer)c->ops->fixed_consumer :
				(enum consumer)o->consumers.v[co];
			if (seen[c->consumer])
				continue;
			seen[c->consumer] = true;
			do_run(o, c, tbl);
		}
	}
}

/* The points of @c for each number of topics asked for. */
static void run_topics(const struct opts *o, struct cfg *c, FILE *tbl)
{
	unsigned int to;

	for (to = 0; to < o->topics.n; to++) {
		c->topics = (unsigned int)o->topics.v[to];
		run_point(o, c, tbl);
	}
}

static unsigned int count_runs(const struct opts *o)
{
	return o->modes.n * o->sizes.n * o->subs.n * o->pubs.n *
	       o->topics.n * o->consumers.n;
}

int main(int argc, char **argv)
{
	unsigned int m, si, su, pu, failed = 0, skipped = 0;
	FILE *tbl;
	time_t started = time(NULL);
	struct opts o;
	struct cfg c;

	if (argc > 1 && !strcmp(argv[1], "cost"))
		return cost_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "pingpong"))
		return pingpong_main(argc - 1, argv + 1);
	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (msg_selfcheck())
		return 1;
	entries = calloc(count_runs(&o), sizeof(*entries));
	if (!entries)
		return 1;
	tsc_per_ns = bench_tsc_calibrate();
	raise_mq_limit();
	signal(SIGALRM, watchdog);
	signal(SIGPIPE, SIG_IGN);
	tbl = o.json ? stderr : stdout;
	print_header(tbl);
	memset(&c, 0, sizeof(c));
	c.rate = o.rate;
	c.count = o.count;
	c.duration_ns = (uint64_t)(o.duration * 1e9);
	c.warmup_ns = (uint64_t)(o.warmup * 1e9);
	/*
	 * The modes of one point run back to back, so that whatever slows
	 * the machine for a while (other work on the host of a VM) falls
	 * on a point's modes alike and the ratios between them hold.
	 */
	for (si = 0; si < o.sizes.n; si++)
	for (su = 0; su < o.subs.n; su++)
	for (pu = 0; pu < o.pubs.n; pu++) {
		c.size = (unsigned int)o.sizes.v[si];
		c.subs = (unsigned int)o.subs.v[su];
		c.pubs = (unsigned int)o.pubs.v[pu];
		run_topics(&o, &c, tbl);
	}
	for (m = 0; m < nr_entries; m++) {
		failed += entries[m].failed;
		skipped += entries[m].skipped;
	}
	if (o.json)
		print_json(started);
	fprintf(tbl, "# %u runs: %u passed, %u failed, %u skipped\n",
		nr_entries, nr_entries - failed - skipped, failed, skipped);
	if (failed)
		return 1;
	return skipped == nr_entries ? 4 : 0;
}
