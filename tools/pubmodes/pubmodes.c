// SPDX-License-Identifier: GPL-2.0
/*
 * pubmodes - publish the same messages through each publish path of pcb.
 *
 * One run publishes --count messages of --size bytes to a fresh topic with
 * one reliable subscriber, whose ring a second thread drains (and checks:
 * every message, in order), through one of:
 *
 *   ioctl    PCB_IOC_PUBLISH, one message per call
 *   batch    PCB_IOC_PUBLISH_BATCH, --batch messages per call
 *   uring    one IORING_OP_URING_CMD per message, --group SQEs per submit
 *   sqpoll   the same on an IORING_SETUP_SQPOLL ring, completions reaped
 *            by spinning on the CQ ring
 *
 * and prints one line: the mode, the parameters, the seconds the publishing
 * took and messages per second.  tools/pubmodes/run.sh turns the rates
 * into ratios and counts system calls.
 *
 * The publishing thread is named PUB_COMM during the timed phase and only
 * then, so that a tracer can count exactly the system calls it makes
 * there: filter on the thread's comm.  The prctl() that ends the phase is
 * the only call made under that name that is not part of publishing.
 *
 * The ring is large enough for every message of a run, so no publish ever
 * waits for room: what is timed and counted is the publish path itself.
 * It talks to the raw ABI of <linux/pcb.h>, as libpcb would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/pcb.h>

#define PUB_COMM	"pcb-pub"	/* the timed phase */
#define DONE_COMM	"pcb-pub-done"
#define SUB_COMM	"pcb-sub"
#define SCHEMA		0x9b0de5ULL
#define URING_DEPTH	256

/* The consumer's side of the barrier table in <linux/pcb.h> (A-E). */
#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

enum mode { MODE_IOCTL, MODE_BATCH, MODE_URING, MODE_SQPOLL };

static const char *const mode_names[] = {
	[MODE_IOCTL] = "ioctl",
	[MODE_BATCH] = "batch",
	[MODE_URING] = "uring",
	[MODE_SQPOLL] = "sqpoll",
};

struct opts {
	enum mode mode;
	unsigned int count;
	unsigned int size;
	unsigned int batch;
	unsigned int group;
};

/* The topic, the publisher endpoint and the payloads of every message. */
struct pub {
	int fd;
	__u32 handle;
	char name[PCB_NAME_MAX];
	unsigned char *pool;		/* count * size bytes */
	const struct opts *o;
};

/* The reliable subscriber: its own endpoint and mapped ring. */
struct sub {
	int fd;
	struct pcb_ring_consumer *cons;
	const struct pcb_ring_header *hdr;
	const unsigned char *data;
	__u64 size;
	__u64 pos;
	__u64 got;
	__u64 want;
	unsigned int msg_size;
	const char *err;
	pthread_t thread;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "pubmodes: %s: %s\n", what, strerror(err));
	exit(1);
}

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pub_setup(struct pub *p, const struct opts *o)
{
	struct pcb_topic_create tc = {
		.schema_id = SCHEMA,
		.max_msg_size = o->size,
		/* Its own subscriber is reliable: read and execute. */
		.mode = 0700,
		.uid = PCB_OWNER_CALLER,
		.gid = PCB_OWNER_CALLER,
	};
	struct pcb_topic_open to = { .schema_id = SCHEMA };
	unsigned int i;
	int ret;

	p->o = o;
	p->fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (p->fd < 0)
		die(PCB_DEVICE_PATH, errno);
	snprintf(p->name, sizeof(p->name), "pubmodes-%d", (int)getpid());
	memcpy(tc.name, p->name, sizeof(tc.name));
	memcpy(to.name, p->name, sizeof(to.name));
	ret = xioctl(p->fd, PCB_IOC_TOPIC_CREATE, &tc);
	if (ret)
		die("TOPIC_CREATE", -ret);
	ret = xioctl(p->fd, PCB_IOC_TOPIC_OPEN, &to);
	if (ret)
		die("TOPIC_OPEN", -ret);
	p->handle = to.handle;

	/* Each message carries its index; the subscriber checks the order. */
	p->pool = calloc(o->count, o->size);
	if (!p->pool)
		die("payloads", ENOMEM);
	for (i = 0; i < o->count; i++)
		memcpy(p->pool + (size_t)i * o->size, &i, sizeof(i));
}

static void pub_teardown(struct pub *p)
{
	struct pcb_topic_name tn = { 0 };

	memcpy(tn.name, p->name, sizeof(tn.name));
	xioctl(p->fd, PCB_IOC_TOPIC_DELETE, &tn);
	close(p->fd);
	free(p->pool);
}

static const void *payload(const struct pub *p, unsigned int i)
{
	return p->pool + (size_t)i * p->o->size;
}

/* A data area that holds every record of the run. */
static __u32 ring_size_for(const struct opts *o)
{
	__u64 need = (__u64)o->count *
		     PCB_REC_SIZE(sizeof(struct pcb_record) + o->size);
	__u32 size = PCB_RING_MIN_SIZE;

	while (size < need && size < (1U << 30))
		size <<= 1;
	return size;
}

static void sub_setup(struct sub *s, const struct pub *p)
{
	struct pcb_ring_setup rs = { .data_size = ring_size_for(p->o) };
	struct pcb_subscribe sb = { .schema_id = SCHEMA };
	void *m;
	int ret;

	memset(s, 0, sizeof(*s));
	s->want = p->o->count;
	s->msg_size = p->o->size;
	s->fd = open(PCB_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (s->fd < 0)
		die(PCB_DEVICE_PATH, errno);
	ret = xioctl(s->fd, PCB_IOC_RING_SETUP, &rs);
	if (ret)
		die("RING_SETUP (see module parameter max_ring_size)", -ret);
	s->size = rs.data_size;

	m = mmap(NULL, rs.page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 s->fd, rs.cons_offset);
	if (m == MAP_FAILED)
		die("mmap consumer page", errno);
	s->cons = m;
	m = mmap(NULL, rs.page_size, PROT_READ, MAP_SHARED, s->fd,
		 rs.header_offset);
	if (m == MAP_FAILED)
		die("mmap header", errno);
	s->hdr = m;
	m = mmap(NULL, 2 * s->size, PROT_READ, MAP_SHARED, s->fd,
		 rs.data_offset);
	if (m == MAP_FAILED)
		die("mmap data", errno);
	s->data = m;

	memcpy(sb.name, p->name, sizeof(sb.name));
	ret = xioctl(s->fd, PCB_IOC_SUBSCRIBE, &sb);
	if (ret)
		die("SUBSCRIBE", -ret);
}

/* Consumes every complete record; false when one is wrong. */
static bool sub_consume(struct sub *s)
{
	/* A: pairs with the kernel's release of prod_pos (1). */
	__u64 prod = load_acquire(&s->hdr->prod_pos);

	while (s->pos != prod) {
		const struct pcb_record *rec =
			(const void *)(s->data + (s->pos & (s->size - 1)));
		/* B: pairs with the kernel's release of rec->len (2). */
		__u32 len = load_acquire(&rec->len);
		__u32 index;

		if (len & PCB_REC_BUSY)
			break;
		s->pos += PCB_REC_SIZE(len);
		if (len & PCB_REC_DISCARD)
			continue;
		memcpy(&index, (const unsigned char *)rec + rec->hdr_len,
		       sizeof(index));
		if (rec->seq != s->got + 1 || index != s->got ||
		    rec->payload_len != s->msg_size) {
			s->err = "a message missing, changed or out of order";
			return false;
		}
		s->got++;
	}
	/* C: pairs with the kernel's acquire of cons_pos (3). */
	store_release(&s->cons->cons_pos, s->pos);
	return true;
}

/* D: sleep in PCB_IOC_WAIT until a record is pending. */
static void sub_sleep(struct sub *s)
{
	struct pcb_wait w = { .timeout_ns = 1000000000ULL };

	__atomic_fetch_or(&s->cons->flags, PCB_CONS_NEED_WAKEUP,
			  __ATOMIC_RELAXED);
	/* D: pairs with the kernel's barrier before testing NEED_WAKEUP (4). */
	smp_mb();
	if (load_acquire(&s->hdr->prod_pos) == s->pos)
		xioctl(s->fd, PCB_IOC_WAIT, &w);
	__atomic_fetch_and(&s->cons->flags, ~PCB_CONS_NEED_WAKEUP,
			   __ATOMIC_RELAXED);
}

static void *sub_run(void *arg)
{
	struct sub *s = arg;
	double deadline = now() + 600;

	prctl(PR_SET_NAME, SUB_COMM);
	while (s->got < s->want) {
		__u64 before = s->got;

		if (!sub_consume(s))
			return NULL;
		/* E: pairs with the publisher's barrier after PUB_WAITING (5). */
		smp_mb();
		if (load_acquire(&s->hdr->flags) & PCB_RING_PUB_WAITING)
			ioctl(s->fd, PCB_IOC_NOTIFY, 0);
		if (s->got != before)
			continue;
		if (now() > deadline) {
			s->err = "timed out waiting for messages";
			return NULL;
		}
		sub_sleep(s);
	}
	return NULL;
}

static void publish_ioctl(const struct pub *p)
{
	struct pcb_publish pb = { .handle = p->handle, .len = p->o->size };
	unsigned int i;
	int ret;

	for (i = 0; i < p->o->count; i++) {
		pb.payload = (uintptr_t)payload(p, i);
		pb.key = i;
		ret = xioctl(p->fd, PCB_IOC_PUBLISH, &pb);
		if (ret)
			die("PUBLISH", -ret);
	}
}

static void publish_batch(const struct pub *p)
{
	unsigned int n = p->o->batch, i, k;
	struct pcb_batch_entry *e = calloc(n, sizeof(*e));
	struct pcb_publish_batch b = { .entries = (uintptr_t)e };
	int ret;

	if (!e)
		die("batch entries", ENOMEM);
	for (i = 0; i < p->o->count; i += b.count) {
		b.count = p->o->count - i < n ? p->o->count - i : n;
		for (k = 0; k < b.count; k++) {
			e[k].handle = p->handle;
			e[k].flags = 0;
			e[k].payload = (uintptr_t)payload(p, i + k);
			e[k].len = p->o->size;
			e[k].key = i + k;
		}
		ret = xioctl(p->fd, PCB_IOC_PUBLISH_BATCH, &b);
		if (ret)
			die("PUBLISH_BATCH", -ret);
		for (k = 0; k < b.count; k++)
			if (e[k].result)
				die("PUBLISH_BATCH entry", -e[k].result);
	}
	free(e);
}

static void uring_prep(struct io_uring_sqe *sqe, const struct pub *p,
		       unsigned int i)
{
	struct pcb_uring_publish up = {
		.handle = p->handle,
		.payload = (uintptr_t)payload(p, i),
		.len = p->o->size,
		.key = i,
	};

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, p->fd, NULL, 0, 0);
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	sqe->user_data = i;
	/* The whole 80-byte command area of a 128-byte SQE. */
	memset(sqe->cmd, 0, 80);
	memcpy(sqe->cmd, &up, sizeof(up));
}

/* Reaps what has completed, without a system call; how many. */
static unsigned int uring_reap(struct io_uring *u)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(u, head, cqe) {
		if (cqe->res)
			die("io_uring publish", -cqe->res);
		n++;
	}
	io_uring_cq_advance(u, n);
	return n;
}

/*
 * Keeps up to URING_DEPTH commands in flight, --group per submit.  With
 * SQPOLL, submitting enters the kernel only to wake the polling thread,
 * and completions are awaited by spinning on the CQ ring.
 */
static void publish_uring(const struct pub *p, struct io_uring *u, bool spin)
{
	unsigned int count = p->o->count, group = p->o->group;
	unsigned int queued = 0, done = 0, inflight = 0;
	int ret;

	while (done < count) {
		unsigned int n = 0;

		while (queued < count && n < group && inflight < URING_DEPTH) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(u);

			if (!sqe)
				break;
			uring_prep(sqe, p, queued++);
			inflight++;
			n++;
		}
		if (n) {
			ret = io_uring_submit(u);
			if (ret < 0)
				die("io_uring_submit", -ret);
		}
		n = uring_reap(u);
		if (!n && !spin && (inflight == URING_DEPTH || queued == count)) {
			struct io_uring_cqe *cqe;

			ret = io_uring_wait_cqe(u, &cqe);
			if (ret)
				die("io_uring_wait_cqe", -ret);
			n = uring_reap(u);
		}
		inflight -= n;
		done += n;
	}
}

static void uring_setup(struct io_uring *u, bool sqpoll)
{
	struct io_uring_params prm = {
		.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32,
		.sq_thread_idle = 1000,
	};
	int ret;

	if (sqpoll)
		prm.flags |= IORING_SETUP_SQPOLL;
	ret = io_uring_queue_init_params(URING_DEPTH, u, &prm);
	if (ret)
		die("io_uring_queue_init", -ret);
}

/* The timed phase, under PUB_COMM. */
static double publish(const struct pub *p)
{
	struct io_uring u;
	double t0, t1;

	if (p->o->mode >= MODE_URING)
		uring_setup(&u, p->o->mode == MODE_SQPOLL);

	/*
	 * The clock is read outside the named phase: in a guest whose clock
	 * source the vDSO cannot read, clock_gettime() is a system call.
	 */
	t0 = now();
	prctl(PR_SET_NAME, PUB_COMM);
	switch (p->o->mode) {
	case MODE_IOCTL:
		publish_ioctl(p);
		break;
	case MODE_BATCH:
		publish_batch(p);
		break;
	case MODE_URING:
	case MODE_SQPOLL:
		publish_uring(p, &u, p->o->mode == MODE_SQPOLL);
		break;
	}
	prctl(PR_SET_NAME, DONE_COMM);
	t1 = now();

	if (p->o->mode >= MODE_URING)
		io_uring_queue_exit(&u);
	return t1 - t0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pubmodes --mode ioctl|batch|uring|sqpoll [--batch N]\n"
		"                [--group N] [--count N] [--size BYTES]\n");
	exit(2);
}

static unsigned int number(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*end || !v || v > 1U << 30)
		usage();
	return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "batch", required_argument, NULL, 'b' },
		{ "group", required_argument, NULL, 'g' },
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned int i;
	int c;

	*o = (struct opts){ .count = 102400, .size = 64, .batch = 16,
			    .group = 32, .mode = MODE_IOCTL };
	while ((c = getopt_long(argc, argv, "m:b:g:c:s:", longs, NULL)) != -1) {
		switch (c) {
		case 'm':
			for (i = 0; i < 4 && strcmp(optarg, mode_names[i]); i++)
				;
			if (i == 4)
				usage();
			o->mode = i;
			break;
		case 'b':
			o->batch = number(optarg);
			break;
		case 'g':
			o->group = number(optarg);
			break;
		case 'c':
			o->count = number(optarg);
			break;
		case 's':
			o->size = number(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o->batch > PCB_BATCH_MAX || o->size < 4 ||
	    o->group > URING_DEPTH)
		usage();
}

int main(int argc, char **argv)
{
	struct opts o;
	struct pub p;
	struct sub s;
	double secs;
	int ret;

	parse(argc, argv, &o);
	pub_setup(&p, &o);
	sub_setup(&s, &p);
	ret = pthread_create(&s.thread, NULL, sub_run, &s);
	if (ret)
		die("pthread_create", ret);

	secs = publish(&p);

	pthread_join(s.thread, NULL);
	if (s.err) {
		fprintf(stderr, "pubmodes: subscriber: %s (after %llu)\n",
			s.err, (unsigned long long)s.got);
		return 1;
	}
	printf("pubmodes: mode=%s batch=%u group=%u count=%u size=%u seconds=%.6f rate=%.0f\n",
	       mode_names[o.mode], o.mode == MODE_BATCH ? o.batch : 0,
	       o.mode >= MODE_URING ? o.group : 0, o.count, o.size, secs,
	       o.count / secs);
	pub_teardown(&p);
	return 0;
}
