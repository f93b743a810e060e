// SPDX-License-Identifier: GPL-2.0
/*
 * pcb-bench cost - what one call costs, single-threaded, in TSC cycles.
 *
 * Nobody is on the other side: one thread, pinned to one CPU, makes a
 * block of calls of one kind with the TSC read before and after, then
 * (untimed) undoes them, draining what it wrote or refilling what it read.
 * The cost of a call is the block's cycles over its calls; a kind's figure
 * is the median over its rounds, so that a round the host preempted does
 * not count; each round measures every kind once, in turn.  These are the
 * figures least disturbed by the machine: no wake-up, no cache line
 * moving between CPUs, no scheduler.
 *
 * Each pcb figure stands next to its baseline measured in the same run:
 * a publish next to a pipe write of the same size, a receive next to a
 * pipe read.  In a virtual machine the cycles are the VM's, and only the
 * ratios mean anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpcb.h>

#include "bench.h"

#define COST_BLOCK	64		/* calls per timed block */
#define COST_ROUNDS	301		/* timed blocks per kind; odd */
#define COST_WARMUP	20		/* untimed blocks first */
#define COST_SCHEMA	0x70636263ULL	/* "pcbc" */

struct cost_env {
	unsigned int size;
	unsigned char *buf;
	struct pcb *admin, *pub, *sub;
	int handle;			/* a topic with one reliable subscriber */
	int handle_none;		/* a topic with none */
	char topic[64], topic_none[64];
	struct pcb_batch_entry batch[COST_BLOCK];
	struct pcb_uring_pub *uring;	/* NULL: the kernel has no io_uring */
	struct pcb_uring_pub *sqpoll;	/* NULL: no SQPOLL for this user */
	int pipe[2];
	int uds[2];
};

/*
 * One kind of call: @timed makes COST_BLOCK calls and returns 0 or an
 * errno; @undo (untimed, may be NULL) puts things back for the next
 * block; @setup (untimed, may be NULL) runs before each block.
 */
struct cost_kind {
	const char *name;
	bool pcb;			/* needs the bus */
	const char *baseline;		/* the kind it is compared with */
	int (*setup)(struct cost_env *e);
	int (*timed)(struct cost_env *e);
	int (*undo)(struct cost_env *e);
	/* NULL, or false when the kernel or the user cannot make the call */
	bool (*available)(const struct cost_env *e);
};

static int drain_ring(struct cost_env *e)
{
	struct pcb_msg msg;
	int ret;

	while ((ret = pcb_peek(e->sub, &msg)) > 0)
		pcb_release(e->sub, &msg);
	return ret;
}

static int publish_block(struct cost_env *e, int handle)
{
	unsigned int i;
	int ret;

	for (i = 0; i < COST_BLOCK; i++) {
		ret = pcb_publish(e->pub, handle, e->buf, e->size, i, 0, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int pcb_publish_sub(struct cost_env *e)
{
	return publish_block(e, e->handle);
}

static int pcb_publish_none(struct cost_env *e)
{
	return publish_block(e, e->handle_none);
}

/*
 * The floor of every pcb call: an ioctl the module does not know, which
 * goes through the system call, the VFS and the security modules' ioctl
 * hooks to pcb's dispatch and back with ENOTTY.
 */
static int pcb_ioctl_nothing(struct cost_env *e)
{
	unsigned int i;

	for (i = 0; i < COST_BLOCK; i++) {
		if (ioctl(pcb_fd(e->pub), _IO(PCB_IOC_MAGIC, 0xff)) != -1)
			return EPROTO;
		if (errno != ENOTTY)
			return errno;
	}
	return 0;
}

static int pcb_try_sub(struct cost_env *e)
{
	unsigned int i;
	int ret;

	for (i = 0; i < COST_BLOCK; i++) {
		ret = pcb_try_publish(e->pub, e->handle, e->buf, e->size, i,
				      NULL);
		if (ret)
			return ret;
	}
	return 0;
}

static int pcb_batch_sub(struct cost_env *e)
{
	int ret = pcb_publish_batch(e->pub, e->batch, COST_BLOCK, 0, 0);

	if (ret < 0)
		return ret;
	return ret == COST_BLOCK ? 0 : -EIO;
}

static int pcb_atomic_batch_sub(struct cost_env *e)
{
	int ret = pcb_publish_batch(e->pub, e->batch, COST_BLOCK,
				    PCB_PUB_ATOMIC, 0);

	if (ret < 0)
		return ret;
	return ret == COST_BLOCK ? 0 : -EIO;
}

/*
 * COST_BLOCK messages queued, submitted and reaped: the publisher's cost
 * per message of an io_uring burst, its waits for the completions
 * included (with SQPOLL, the kernel thread works on another CPU: this is
 * the submitter's time, not the CPU time spent).
 */
static int uring_burst(struct pcb_uring_pub *up, struct cost_env *e)
{
	struct pcb_uring_result res[COST_BLOCK];
	unsigned int i, got = 0;
	int ret;

	if (!up)
		return -EOPNOTSUPP;
	for (i = 0; i < COST_BLOCK; i++) {
		ret = pcb_uring_pub_queue(up, e->handle, e->buf, e->size, i, 0,
					  i);
		if (ret)
			return ret;
	}
	ret = pcb_uring_pub_submit(up);
	while (ret >= 0 && got < COST_BLOCK) {
		ret = pcb_uring_pub_reap(up, res + got, COST_BLOCK - got,
					 PCB_URING_WAIT_FOREVER);
		if (ret > 0)
			got += (unsigned int)ret;
	}
	if (ret < 0)
		return ret;
	for (i = 0; i < COST_BLOCK; i++)
		if (res[i].res)
			return res[i].res;
	return 0;
}

static int pcb_uring_sub(struct cost_env *e)
{
	return uring_burst(e->uring, e);
}

static int pcb_sqpoll_sub(struct cost_env *e)
{
	return uring_burst(e->sqpoll, e);
}

static bool have_uring(const struct cost_env *e)
{
	return e->uring;
}

static bool have_sqpoll(const struct cost_env *e)
{
	return e->sqpoll;
}

static int fill_ring(struct cost_env *e)
{
	return publish_block(e, e->handle);
}

static int pcb_receive_block(struct cost_env *e)
{
	struct pcb_msg msg;
	unsigned int i;
	int ret;

	for (i = 0; i < COST_BLOCK; i++) {
		ret = pcb_peek(e->sub, &msg);
		if (ret <= 0)
			return ret ? ret : -ENODATA;
		pcb_release(e->sub, &msg);
	}
	return 0;
}

static int fd_write_block(int fd, const void *buf, size_t len)
{
	unsigned int i;

	for (i = 0; i < COST_BLOCK; i++)
		if (write(fd, buf, len) != (ssize_t)len)
			return -errno ?: -EIO;
	return 0;
}

static int fd_read_block(int fd, void *buf, size_t len)
{
	unsigned int i;

	for (i = 0; i < COST_BLOCK; i++)
		if (read(fd, buf, len) != (ssize_t)len)
			return -errno ?: -EIO;
	return 0;
}

static int pipe_write_block(struct cost_env *e)
{
	return fd_write_block(e->pipe[1], e->buf, e->size);
}

static int pipe_read_block(struct cost_env *e)
{
	return fd_read_block(e->pipe[0], e->buf, e->size);
}

static int pipe_fill(struct cost_env *e)
{
	return pipe_write_block(e);
}

static int pipe_drain(struct cost_env *e)
{
	return pipe_read_block(e);
}

static int uds_send_block(struct cost_env *e)
{
	return fd_write_block(e->uds[1], e->buf, e->size);
}

static int uds_drain(struct cost_env *e)
{
	return fd_read_block(e->uds[0], e->buf, e->size);
}

static const struct cost_kind kinds[] = {
	{ "pipe write", false, NULL, NULL, pipe_write_block, pipe_drain, NULL },
	{ "pipe read", false, NULL, pipe_fill, pipe_read_block, NULL, NULL },
	{ "unix socket send", false, "pipe write", NULL, uds_send_block,
	  uds_drain, NULL },
	{ "pcb ioctl doing nothing (ENOTTY)", true, "pipe write", NULL,
	  pcb_ioctl_nothing, NULL, NULL },
	{ "pcb publish, no subscriber", true, "pipe write", NULL,
	  pcb_publish_none, NULL, NULL },
	{ "pcb publish, 1 subscriber", true, "pipe write", NULL,
	  pcb_publish_sub, drain_ring, NULL },
	{ "pcb try_publish, 1 subscriber", true, "pipe write", NULL,
	  pcb_try_sub, drain_ring, NULL },
	{ "pcb batch of 64, per message", true, "pipe write", NULL,
	  pcb_batch_sub, drain_ring, NULL },
	{ "pcb atomic batch of 64, per msg", true, "pipe write", NULL,
	  pcb_atomic_batch_sub, drain_ring, NULL },
	{ "pcb io_uring burst of 64, per msg", true, "pipe write", NULL,
	  pcb_uring_sub, drain_ring, have_uring },
	{ "pcb SQPOLL burst of 64, per msg", true, "pipe write", NULL,
	  pcb_sqpoll_sub, drain_ring, have_sqpoll },
	{ "pcb receive (peek + release)", true, "pipe read", fill_ring,
	  pcb_receive_block, NULL, NULL },
};

#define NR_KINDS	(sizeof(kinds) / sizeof(kinds[0]))

/* One timed block of @k, its cycles in *@cyc; 0 or an errno. */
static int measure_block(struct cost_env *e, const struct cost_kind *k,
			 uint64_t *cyc)
{
	uint64_t t0;
	int ret = k->setup ? k->setup(e) : 0;

	if (ret)
		return ret;
	t0 = bench_tsc_begin();
	ret = k->timed(e);
	*cyc = bench_tsc_end() - t0;
	if (!ret && k->undo)
		ret = k->undo(e);
	return ret;
}

/*
 * The median cycles per call of each kind @run[] says to measure, into
 * @cyc[]; a kind that fails stops being measured, its errno in @err[].
 * Rounds take one block of every kind in turn, so that whatever slows
 * the machine for a while (the host, a VM's translation caches) falls
 * on all kinds alike and the ratios between them hold.
 */
static void measure_kinds(struct cost_env *e, const bool *run, double *cyc,
			  int *err)
{
	static uint64_t blocks[NR_KINDS][COST_ROUNDS];
	unsigned int r, i;
	uint64_t c = 0;

	for (r = 0; r < COST_WARMUP + COST_ROUNDS; r++) {
		for (i = 0; i < NR_KINDS; i++) {
			if (!run[i] || err[i])
				continue;
			err[i] = measure_block(e, &kinds[i], &c);
			if (r >= COST_WARMUP)
				blocks[i][r - COST_WARMUP] = c;
		}
	}
	for (i = 0; i < NR_KINDS; i++) {
		if (!run[i] || err[i])
			continue;
		qsort(blocks[i], COST_ROUNDS, sizeof(blocks[i][0]),
		      bench_cmp_u64);
		cyc[i] = (double)blocks[i][COST_ROUNDS / 2] / COST_BLOCK;
	}
}

static int setup_pcb(struct cost_env *e)
{
	struct pcb_topic_opts o = PCB_TOPIC_OPTS_DEFAULT;
	unsigned int i;
	int ret;

	snprintf(e->topic, sizeof(e->topic), "pcbc/%d/sub", (int)getpid());
	snprintf(e->topic_none, sizeof(e->topic_none), "pcbc/%d/none",
		 (int)getpid());
	o.schema_id = COST_SCHEMA;
	o.max_msg_size = e->size;
	o.mode = 0700;
	ret = pcb_open(&e->admin);
	if (!ret)
		ret = pcb_topic_create(e->admin, e->topic, &o, NULL);
	if (!ret)
		ret = pcb_topic_create(e->admin, e->topic_none, &o, NULL);
	if (!ret)
		ret = pcb_open(&e->sub);
	if (!ret)
		ret = pcb_ring_setup(e->sub, 4U << 20);
	if (!ret)
		ret = pcb_subscribe(e->sub, e->topic, COST_SCHEMA, 0, NULL);
	if (!ret)
		ret = pcb_open(&e->pub);
	if (ret)
		return ret;
	e->handle = pcb_topic_open(e->pub, e->topic, COST_SCHEMA);
	e->handle_none = pcb_topic_open(e->pub, e->topic_none, COST_SCHEMA);
	if (e->handle < 0)
		return e->handle;
	if (e->handle_none < 0)
		return e->handle_none;
	for (i = 0; i < COST_BLOCK; i++)
		pcb_batch_entry_prep(&e->batch[i], e->handle, e->buf, e->size,
				     i);
	/* Without io_uring (or SQPOLL) those kinds are not measured. */
	if (pcb_uring_pub_create(&e->uring, e->pub, COST_BLOCK, 0))
		e->uring = NULL;
	if (pcb_uring_pub_create(&e->sqpoll, e->pub, COST_BLOCK,
				 PCB_URING_SQPOLL))
		e->sqpoll = NULL;
	return 0;
}

static void teardown_pcb(struct cost_env *e)
{
	pcb_uring_pub_destroy(e->uring);
	pcb_uring_pub_destroy(e->sqpoll);
	pcb_close(e->pub);
	pcb_close(e->sub);
	if (e->admin) {
		pcb_topic_delete(e->admin, e->topic);
		pcb_topic_delete(e->admin, e->topic_none);
	}
	pcb_close(e->admin);
}

static int setup_fds(struct cost_env *e)
{
	int sndbuf = 4 << 20;

	e->pipe[0] = e->pipe[1] = e->uds[0] = e->uds[1] = -1;
	/*
	 * Non-blocking: a block that does not fit (an unprivileged user's
	 * pipes stop at 1 MiB) fails with EAGAIN rather than hang.
	 */
	if (pipe2(e->pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	/*
	 * Room for a block of the largest size, 64 x 64 KiB; else the most
	 * an unprivileged user gets (1 MiB), enough up to 16 KiB.
	 */
	if (fcntl(e->pipe[1], F_SETPIPE_SZ, 4 << 20) < 0)
		fcntl(e->pipe[1], F_SETPIPE_SZ, 1 << 20);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0, e->uds))
		return -errno;
	/* Beyond wmem_max where we may (CAP_NET_ADMIN): 64 x 4 KiB is more. */
	if (setsockopt(e->uds[1], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
		       sizeof(sndbuf)))
		setsockopt(e->uds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf,
			   sizeof(sndbuf));
	return 0;
}

static void teardown_fds(struct cost_env *e)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (e->pipe[i] >= 0)
			close(e->pipe[i]);
		if (e->uds[i] >= 0)
			close(e->uds[i]);
	}
}

static int pin_to_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static double find(const double *cyc, const char *name)
{
	unsigned int i;

	for (i = 0; i < NR_KINDS; i++)
		if (!strcmp(kinds[i].name, name))
			return cyc[i];
	return 0;
}

/* With --only: the kinds whose name has @only in it, and their baselines. */
static bool wanted(unsigned int i, const char *only)
{
	unsigned int j;

	if (!only || strstr(kinds[i].name, only))
		return true;
	for (j = 0; j < NR_KINDS; j++)
		if (strstr(kinds[j].name, only) && kinds[j].baseline &&
		    !strcmp(kinds[j].baseline, kinds[i].name))
			return true;
	return false;
}

static void print_kind(FILE *out, bool json, bool *first_json,
		       unsigned int size, const struct cost_kind *k,
		       double cyc, double base)
{
	if (json) {
		fprintf(out, "%s    {\"size\": %u, \"kind\": \"%s\", \"cycles\": %.0f, \"baseline\": %s%s%s, \"ratio\": %.3f}",
			*first_json ? "" : ",\n", size, k->name, cyc,
			k->baseline ? "\"" : "", k->baseline ?: "null",
			k->baseline ? "\"" : "", base > 0 ? cyc / base : 0);
		*first_json = false;
		return;
	}
	fprintf(out, "%7u  %-32s %10.0f", size, k->name, cyc);
	if (base > 0)
		fprintf(out, "   %5.2fx %s", cyc / base, k->baseline);
	fputc('\n', out);
}

/*
 * One size: every kind, a table row each; without the bus (no module),
 * the baselines alone.  Returns the failures.
 */
static unsigned int cost_size(unsigned int size, FILE *out, bool json,
			      bool *first_json, const char *only)
{
	struct cost_env e = { .size = size };
	double cyc[NR_KINDS] = { 0 };
	bool done[NR_KINDS] = { false }, run[NR_KINDS];
	int err[NR_KINDS] = { 0 };
	unsigned int i, failed = 0;
	int ret, bus;

	e.buf = calloc(1, size);
	if (!e.buf)
		return NR_KINDS;
	ret = setup_fds(&e);
	bus = setup_pcb(&e);
	if (bus)
		fprintf(stderr, "pcb-bench cost: no bus (%s): baselines only\n",
			strerror(-bus));
	for (i = 0; i < NR_KINDS; i++) {
		run[i] = !(kinds[i].pcb && bus) && wanted(i, only);
		if (run[i] && kinds[i].available && !kinds[i].available(&e)) {
			fprintf(stderr, "pcb-bench cost: %s: not here (no io_uring, or not for this user)\n",
				kinds[i].name);
			run[i] = false;
		}
	}
	if (!ret)
		measure_kinds(&e, run, cyc, err);
	for (i = 0; i < NR_KINDS && !ret; i++) {
		done[i] = run[i] && !err[i];
		if (err[i]) {
			fprintf(stderr, "pcb-bench cost: %s, %u B: %s\n",
				kinds[i].name, size, strerror(-err[i]));
			failed++;
		}
	}
	if (ret) {
		fprintf(stderr, "pcb-bench cost: set-up: %s\n", strerror(-ret));
		failed = NR_KINDS;
	}
	for (i = 0; i < NR_KINDS; i++)
		if (done[i])
			print_kind(out, json, first_json, size, &kinds[i],
				   cyc[i], kinds[i].baseline ?
				   find(cyc, kinds[i].baseline) : 0);
	teardown_pcb(&e);
	teardown_fds(&e);
	free(e.buf);
	return failed;
}

static void cost_usage(FILE *f)
{
	fprintf(f,
"usage: pcb-bench cost [--json] [--only TEXT] [SIZE...]\n"
"Single-threaded cost of one call, in TSC cycles (median of %u blocks of\n"
"%u calls, pinned to CPU 0, nobody on the other side), for each SIZE in\n"
"bytes (default 64), each pcb call next to its baseline from the same run.\n"
"--only TEXT: the calls whose name has TEXT in it (and their baselines),\n"
"for a profiler to watch one kind.\n",
		COST_ROUNDS, COST_BLOCK);
}

int cost_main(int argc, char **argv)
{
	unsigned int sizes[16], nr = 0, i, failed = 0;
	bool json = false, first = true;
	const char *only = NULL;
	int a;

	for (a = 1; a < argc; a++) {
		char *end;
		unsigned long v;

		if (!strcmp(argv[a], "--json")) {
			json = true;
			continue;
		}
		if (!strcmp(argv[a], "--only") && a + 1 < argc) {
			only = argv[++a];
			continue;
		}
		if (!strcmp(argv[a], "--help")) {
			cost_usage(stdout);
			return 0;
		}
		v = strtoul(argv[a], &end, 0);
		if (*end || !v || v > (64U << 10) || nr == 16) {
			cost_usage(stderr);
			return 2;
		}
		sizes[nr++] = (unsigned int)v;
	}
	if (!nr)
		sizes[nr++] = 64;
	if (pin_to_cpu0())
		fprintf(stderr, "pcb-bench cost: cannot pin to CPU 0\n");
	if (json) {
		printf("{\n  \"host\": {");
		bench_json_host(stdout, time(NULL));
		printf("},\n  \"cost\": {\"clock\": \"%s\", \"block\": %u, \"rounds\": %u},\n  \"costs\": [\n",
		       bench_tsc_name(), COST_BLOCK, COST_ROUNDS);
	} else {
		printf("# single-threaded cost per call, %s cycles, median of %u blocks of %u\n#   size  %-32s %10s   vs baseline\n",
		       bench_tsc_name(), COST_ROUNDS, COST_BLOCK, "call",
		       "cycles");
	}
	for (i = 0; i < nr; i++)
		failed += cost_size(sizes[i], stdout, json, &first, only);
	if (json)
		printf("\n  ]\n}\n");
	return failed ? 1 : 0;
}
