// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-bench pingpong - one message there and back, closed loop: RTT/2.
 *
 * Two threads, the pinger on CPU 0 and the ponger on CPU 1, pass one
 * message of a given size back and forth, N times after a warm-up.  The
 * pinger reads the TSC before it sends and after the answer is there;
 * half of that round trip is the one-way figure.  One message in flight
 * at a time: no queueing, no pacing, no coordinated omission to hide,
 * and a figure the host disturbs less than a throughput run (the median
 * especially).
 *
 * Transports, each with its receiving side as users run it:
 *   pcb-spin   publish; the other side spins on its mapped ring
 *              (pcb_peek(), no system call to receive)
 *   pcb-wait   publish; the other side sleeps in pcb_receive()
 *   pipe       write; the other side sleeps in read()
 *   uds        send on a SOCK_SEQPACKET pair; the other side in recv()
 *   spin-shm   a store into shared memory; the other side spins on it:
 *              no kernel at all, the floor
 *
 * In a virtual machine the cycles are the VM's: compare transports
 * within one run, never with hardware.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpcb.h>

#include "bench.h"

#define PP_SCHEMA	0x70636270ULL	/* "pcbp" */
#define PP_WARMUP	1000
#define PP_DEFAULT_N	20000
#define PP_TIMEOUT_NS	(10ULL * 1000000000ULL)

enum pp_kind { PP_PCB_SPIN, PP_PCB_WAIT, PP_PIPE, PP_UDS, PP_SHM, PP_KINDS };

static const char *const pp_names[PP_KINDS] = {
	"pcb-spin", "pcb-wait", "pipe", "uds", "spin-shm",
};

/* One direction of the loop. */
struct pp_chan {
	struct pcb *rx;			/* pcb: the receiver's endpoint */
	struct pcb *tx;			/* pcb: the sender's */
	int handle;
	int fd[2];			/* pipe, uds: [0] read, [1] write */
	/* spin-shm: the sequence number of the last message, alone on its line */
	uint64_t seq __attribute__((aligned(64)));
	unsigned char data[4096] __attribute__((aligned(64)));
};

struct pp_run {
	enum pp_kind kind;
	unsigned int size, n;
	unsigned char *buf;
	struct pcb *admin;
	char topic[2][64];
	struct pp_chan ch[2];		/* 0: ping, 1: pong */
	uint64_t *rtt;
	int err;
	int stop;			/* the other side gave up: stop spinning */
};

static int pin(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int pp_send(struct pp_run *r, struct pp_chan *c, uint64_t seq)
{
	memcpy(r->buf, &seq, sizeof(seq));
	switch (r->kind) {
	case PP_PCB_SPIN:
	case PP_PCB_WAIT:
		return pcb_publish(c->tx, c->handle, r->buf, r->size, seq,
				   PP_TIMEOUT_NS, NULL);
	case PP_PIPE:
	case PP_UDS:
		return write(c->fd[1], r->buf, r->size) == (ssize_t)r->size ?
		       0 : -EIO;
	case PP_SHM:
		memcpy(c->data, r->buf, r->size);
		__atomic_store_n(&c->seq, seq, __ATOMIC_RELEASE);
		return 0;
	default:
		return -EINVAL;
	}
}

/* Wait for message @seq on @c; its payload must carry @seq. */
static int pp_recv(struct pp_run *r, struct pp_chan *c, uint64_t seq,
		   unsigned char *buf)
{
	struct pcb_msg msg;
	uint64_t got;
	int ret;

	switch (r->kind) {
	case PP_PCB_SPIN:
		while (!(ret = pcb_peek(c->rx, &msg)))
			if (!bench_relax(&r->stop))
				return -ECANCELED;
		if (ret < 0)
			return ret;
		memcpy(&got, msg.data, sizeof(got));
		pcb_release(c->rx, &msg);
		break;
	case PP_PCB_WAIT:
		ret = pcb_receive(c->rx, &msg, PP_TIMEOUT_NS);
		if (ret < 0)
			return ret;
		memcpy(&got, msg.data, sizeof(got));
		pcb_release(c->rx, &msg);
		break;
	case PP_PIPE:
	case PP_UDS:
		if (read(c->fd[0], buf, r->size) != (ssize_t)r->size)
			return -EIO;
		memcpy(&got, buf, sizeof(got));
		break;
	case PP_SHM:
		while (__atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) != seq)
			if (!bench_relax(&r->stop))
				return -ECANCELED;
		memcpy(buf, c->data, r->size);
		memcpy(&got, buf, sizeof(got));
		break;
	default:
		return -EINVAL;
	}
	return got == seq ? 0 : -EPROTO;
}

static void *ponger(void *arg)
{
	struct pp_run *r = arg;
	unsigned char *buf = malloc(r->size);
	uint64_t i;
	int ret = buf ? 0 : -ENOMEM;

	pin(1);
	for (i = 1; !ret && i <= PP_WARMUP + r->n; i++) {
		ret = pp_recv(r, &r->ch[0], i, buf);
		if (!ret)
			ret = pp_send(r, &r->ch[1], i);
	}
	if (ret) {
		r->err = ret;
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

static int pinger(struct pp_run *r)
{
	unsigned char *buf = malloc(r->size);
	uint64_t i, t0;
	int ret = buf ? 0 : -ENOMEM;

	pin(0);
	for (i = 1; !ret && i <= PP_WARMUP + r->n; i++) {
		t0 = bench_tsc_begin();
		ret = pp_send(r, &r->ch[0], i);
		if (!ret)
			ret = pp_recv(r, &r->ch[1], i, buf);
		if (!ret && i > PP_WARMUP)
			r->rtt[i - PP_WARMUP - 1] = bench_tsc_end() - t0;
	}
	free(buf);
	return ret;
}

/* Direction @d: topic @d, received by a ring of its own. */
static int pp_pcb_setup(struct pp_run *r, unsigned int d)
{
	struct pcb_topic_opts o = PCB_TOPIC_OPTS_DEFAULT;
	struct pp_chan *c = &r->ch[d];
	int ret;

	snprintf(r->topic[d], sizeof(r->topic[d]), "pcbp/%d/%u",
		 (int)getpid(), d);
	o.schema_id = PP_SCHEMA;
	o.max_msg_size = r->size;
	o.mode = 0700;
	ret = pcb_topic_create(r->admin, r->topic[d], &o, NULL);
	if (!ret)
		ret = pcb_open(&c->rx);
	if (!ret)
		ret = pcb_ring_setup(c->rx, 1U << 20);
	if (!ret)
		ret = pcb_subscribe(c->rx, r->topic[d], PP_SCHEMA, 0, NULL);
	if (!ret)
		ret = pcb_open(&c->tx);
	if (ret)
		return ret;
	c->handle = pcb_topic_open(c->tx, r->topic[d], PP_SCHEMA);
	return c->handle < 0 ? c->handle : 0;
}

static int pp_setup(struct pp_run *r)
{
	unsigned int d;
	int ret = 0;

	for (d = 0; d < 2; d++)
		r->ch[d].fd[0] = r->ch[d].fd[1] = -1;
	for (d = 0; d < 2 && !ret; d++) {
		struct pp_chan *c = &r->ch[d];

		switch (r->kind) {
		case PP_PCB_SPIN:
		case PP_PCB_WAIT:
			if (!r->admin)
				ret = pcb_open(&r->admin);
			if (!ret)
				ret = pp_pcb_setup(r, d);
			break;
		case PP_PIPE:
			ret = pipe(c->fd) ? -errno : 0;
			break;
		case PP_UDS:
			ret = socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c->fd) ?
			      -errno : 0;
			break;
		default:
			break;
		}
	}
	return ret;
}

static void pp_teardown(struct pp_run *r)
{
	unsigned int d;
	int i;

	for (d = 0; d < 2; d++) {
		pcb_close(r->ch[d].rx);
		pcb_close(r->ch[d].tx);
		for (i = 0; i < 2; i++)
			if (r->ch[d].fd[i] >= 0)
				close(r->ch[d].fd[i]);
		if (r->admin && r->topic[d][0])
			pcb_topic_delete(r->admin, r->topic[d]);
	}
	pcb_close(r->admin);
}

/* One transport: a row of the table (RTT/2 in cycles), or an errno. */
static int pp_one(enum pp_kind kind, unsigned int size, unsigned int n,
		  bool json, bool *first)
{
	struct pp_run *r = calloc(1, sizeof(*r));
	pthread_t th;
	int ret;

	if (!r)
		return -ENOMEM;
	r->kind = kind;
	r->size = size;
	r->n = n;
	r->buf = calloc(1, size);
	r->rtt = calloc(n, sizeof(*r->rtt));
	ret = r->buf && r->rtt ? pp_setup(r) : -ENOMEM;
	if (!ret)
		ret = -pthread_create(&th, NULL, ponger, r);
	if (!ret) {
		ret = pinger(r);
		/*
		 * A ponger left waiting for a message that will not come:
		 * spinning, it sees @stop; asleep, it is cancelled.
		 */
		if (ret) {
			__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
			pthread_cancel(th);
		}
		pthread_join(th, NULL);
		ret = ret ?: r->err;
	}
	if (!ret) {
		qsort(r->rtt, n, sizeof(*r->rtt), bench_cmp_u64);
		if (json)
			printf("%s    {\"transport\": \"%s\", \"size\": %u, \"rtt_half_p50\": %.0f, \"rtt_half_p90\": %.0f, \"rtt_half_p99\": %.0f, \"rtt_half_min\": %.0f}",
			       *first ? "" : ",\n", pp_names[kind], size,
			       r->rtt[n / 2] / 2.0, r->rtt[n * 9 / 10] / 2.0,
			       r->rtt[n * 99 / 100] / 2.0, r->rtt[0] / 2.0);
		else
			printf("%-10s %7u %10.0f %10.0f %10.0f %10.0f\n",
			       pp_names[kind], size, r->rtt[0] / 2.0,
			       r->rtt[n / 2] / 2.0, r->rtt[n * 9 / 10] / 2.0,
			       r->rtt[n * 99 / 100] / 2.0);
		*first = false;
	}
	pp_teardown(r);
	free(r->buf);
	free(r->rtt);
	free(r);
	return ret;
}

static void pp_usage(FILE *f)
{
	fprintf(f,
"usage: pcb-bench pingpong [--json] [--count N] [--size N] [TRANSPORT...]\n"
"One message there and back, N times (default %u) after %u of warm-up;\n"
"RTT/2 in %s cycles.  Transports (default all): pcb-spin pcb-wait pipe\n"
"uds spin-shm.  Size: 8 to 4096 bytes (default 64).\n",
		PP_DEFAULT_N, PP_WARMUP, bench_tsc_name());
}

int pingpong_main(int argc, char **argv)
{
	unsigned int size = 64, n = PP_DEFAULT_N, k, failed = 0;
	bool want[PP_KINDS] = { false }, any = false, json = false;
	bool first = true;
	int a, ret;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--json")) {
			json = true;
		} else if (!strcmp(argv[a], "--count") && a + 1 < argc) {
			n = (unsigned int)strtoul(argv[++a], NULL, 0);
		} else if (!strcmp(argv[a], "--size") && a + 1 < argc) {
			size = (unsigned int)strtoul(argv[++a], NULL, 0);
		} else if (!strcmp(argv[a], "--help")) {
			pp_usage(stdout);
			return 0;
		} else {
			for (k = 0; k < PP_KINDS; k++)
				if (!strcmp(argv[a], pp_names[k]))
					break;
			if (k == PP_KINDS) {
				pp_usage(stderr);
				return 2;
			}
			want[k] = any = true;
		}
	}
	if (n < 10 || size < sizeof(uint64_t) || size > 4096) {
		pp_usage(stderr);
		return 2;
	}
	if (json) {
		printf("{\n  \"host\": {");
		bench_json_host(stdout, time(NULL));
		printf("},\n  \"pingpong\": {\"clock\": \"%s\", \"count\": %u},\n  \"rtt\": [\n",
		       bench_tsc_name(), n);
	} else {
		printf("# ping-pong, RTT/2 in %s cycles over %u round trips, CPU 0 <-> CPU 1\n%-10s %7s %10s %10s %10s %10s\n",
		       bench_tsc_name(), n, "# transport", "size", "min", "p50",
		       "p90", "p99");
	}
	for (k = 0; k < PP_KINDS; k++) {
		if (any && !want[k])
			continue;
		ret = pp_one((enum pp_kind)k, size, n, json, &first);
		if (ret) {
			fprintf(stderr, "pcb-bench pingpong: %s: %s\n",
				pp_names[k], strerror(-ret));
			failed++;
		}
	}
	if (json)
		printf("\n  ]\n}\n");
	return failed ? 1 : 0;
}
