// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Publishing through io_uring: PCB_URING_CMD_PUBLISH commands on a ring of
 * the publisher's own.
 *
 * The ring has SQE128, because struct pcb_uring_publish does not fit the
 * 16 command bytes of a plain SQE, and CQE32, so that the message id comes
 * back in the completion itself.
 *
 * At most @depth messages are queued or unreaped at once, in a submission
 * queue of twice that: an SQPOLL thread posts the completions of a batch
 * of SQEs before it releases their slots (advances the SQ head), so up to
 * a batch of slots, at most @depth, may still be held by messages already
 * reaped.  The completion queue is twice the submission queue and never
 * overflows.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <liburing.h>

#include "internal.h"

/* The command lives in the 80 bytes that SQE128 adds after the SQE. */
_Static_assert(sizeof(struct pcb_uring_publish) <= 80,
	       "struct pcb_uring_publish does not fit an SQE128 command area");

/* The one registered buffer, when there is one. */
#define PUB_BUF_INDEX	0

struct pcb_uring_pub {
	struct io_uring ring;
	int fd;				/* the endpoint's */
	uint32_t flags;			/* PCB_URING_* */
	unsigned int depth;		/* sq_entries / 2 */
	unsigned int inflight;		/* queued or submitted, not reaped */
	unsigned int queued;		/* queued since the last submit */
	uint64_t timeout_ns;
	struct io_uring_sqe *last;	/* last queued, for PCB_URING_ORDERED */
	const unsigned char *buf;	/* the registered buffer, or NULL */
	size_t buf_len;
};

PCB_EXPORT int pcb_uring_pub_create(struct pcb_uring_pub **out,
				    struct pcb *bus, unsigned int depth,
				    uint32_t flags)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32,
	};
	struct pcb_uring_pub *p;
	int ret;

	if (!out || !bus || flags & ~PCB_URING_FLAGS_ALL)
		return -EINVAL;
	if (!depth)
		depth = PCB_URING_DEFAULT_DEPTH;
	if (depth > PCB_URING_MAX_DEPTH)
		return -EINVAL;
	if (flags & PCB_URING_SQPOLL) {
		params.flags |= IORING_SETUP_SQPOLL;
		params.sq_thread_idle = PCB_URING_SQPOLL_IDLE_MS;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	ret = io_uring_queue_init_params(2 * depth, &p->ring, &params);
	if (ret) {
		free(p);
		return ret;
	}
	/*
	 * Without EXT_ARG, liburing would wait with a timeout by queueing
	 * a timeout SQE of its own, which this accounting does not expect.
	 */
	if (!(params.features & IORING_FEAT_EXT_ARG)) {
		pcb_uring_pub_destroy(p);
		return -EOPNOTSUPP;
	}
	p->fd = bus->fd;
	p->flags = flags;
	p->depth = params.sq_entries / 2;
	*out = p;
	return 0;
}

PCB_EXPORT void pcb_uring_pub_destroy(struct pcb_uring_pub *p)
{
	if (!p)
		return;
	/* Closing the ring cancels the commands that wait for room. */
	io_uring_queue_exit(&p->ring);
	free(p);
}

PCB_EXPORT int pcb_uring_pub_register_buffer(struct pcb_uring_pub *p,
					     void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	int ret;

	if (!p || !buf || !len)
		return -EINVAL;
	if (p->buf)
		return -EBUSY;
	ret = io_uring_register_buffers(&p->ring, &iov, 1);
	if (ret)
		return ret;
	p->buf = buf;
	p->buf_len = len;
	return 0;
}

PCB_EXPORT void pcb_uring_pub_set_timeout(struct pcb_uring_pub *p,
					  uint64_t timeout_ns)
{
	if (p)
		p->timeout_ns = timeout_ns;
}

/* Does [@buf, @buf + @len) lie inside the registered buffer? */
static bool in_registered(const struct pcb_uring_pub *p, const void *buf,
			  size_t len)
{
	/* Wraps to a huge offset when @buf is below the buffer. */
	uintptr_t off = (uintptr_t)buf - (uintptr_t)p->buf;

	return p->buf && len && off < p->buf_len && len <= p->buf_len - off;
}

PCB_EXPORT int pcb_uring_pub_queue_deps(struct pcb_uring_pub *p, int handle,
					const void *buf, size_t len,
					uint64_t key, const uint64_t *deps,
					unsigned int nr_deps,
					uint32_t pub_flags, uint64_t user_data)
{
	struct pcb_uring_publish cmd = {
		/* A negative handle is never open: the kernel says EBADF. */
		.handle = (uint32_t)handle,
		.flags = pub_flags,
		.payload = (uintptr_t)buf,
		.len = (uint32_t)len,
		.key = key,
		/* Read by the kernel when it issues the command. */
		.nr_deps = nr_deps,
		.deps = (uintptr_t)deps,
	};
	struct io_uring_sqe *sqe;

	if (!p)
		return -EINVAL;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (p->inflight == p->depth)
		return -EBUSY;
	sqe = io_uring_get_sqe(&p->ring);
	if (!sqe)
		return -EBUSY;

	/* A slot of an SQE128 ring is two SQEs long; reuse leaves junk. */
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = p->fd;
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	sqe->user_data = user_data;
	if (in_registered(p, buf, len)) {
		sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
		sqe->buf_index = PUB_BUF_INDEX;
	}
	if (p->flags & PCB_URING_ORDERED) {
		sqe->flags = IOSQE_IO_LINK;
		p->last = sqe;
	}
	cmd.timeout_ns = p->timeout_ns;
	memcpy(sqe->cmd, &cmd, sizeof(cmd));

	p->inflight++;
	p->queued++;
	return 0;
}

PCB_EXPORT int pcb_uring_pub_queue(struct pcb_uring_pub *p, int handle,
				   const void *buf, size_t len, uint64_t key,
				   uint32_t pub_flags, uint64_t user_data)
{
	return pcb_uring_pub_queue_deps(p, handle, buf, len, key, NULL, 0,
					pub_flags, user_data);
}

PCB_EXPORT int pcb_uring_pub_submit(struct pcb_uring_pub *p)
{
	int ret;

	if (!p)
		return -EINVAL;
	/*
	 * End the chain here: a failure must not cancel what a later
	 * submit queues.  The kernel has not seen this SQE yet: liburing
	 * publishes the SQ tail only in io_uring_submit().
	 */
	if (p->last) {
		p->last->flags &= ~IOSQE_IO_LINK;
		p->last = NULL;
	}
	/* With SQPOLL, enters the kernel only to wake a sleeping poller. */
	ret = io_uring_submit(&p->ring);
	if (ret < 0)
		return ret;
	/*
	 * The poller takes every SQE behind the tail just published; the
	 * count liburing returns then is only a guess, made while it runs.
	 * Without SQPOLL the kernel says how many it took.
	 */
	if (p->flags & PCB_URING_SQPOLL || (unsigned int)ret > p->queued)
		ret = (int)p->queued;
	p->queued -= (unsigned int)ret;
	return ret;
}

/* Wait for one completion: 0 when it is there or time ran out. */
static int wait_result(struct pcb_uring_pub *p, uint64_t wait_ns)
{
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(wait_ns / 1000000000ULL),
		.tv_nsec = (long long)(wait_ns % 1000000000ULL),
	};
	struct io_uring_cqe *cqe;
	int ret;

	if (wait_ns == PCB_URING_WAIT_FOREVER)
		ret = io_uring_wait_cqe(&p->ring, &cqe);
	else
		ret = io_uring_wait_cqe_timeout(&p->ring, &cqe, &ts);
	return ret == -ETIME ? 0 : ret;
}

PCB_EXPORT int pcb_uring_pub_reap(struct pcb_uring_pub *p,
				  struct pcb_uring_result *res,
				  unsigned int max, uint64_t wait_ns)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int ret;

	if (!p || (!res && max))
		return -EINVAL;
	/* Nothing submitted is outstanding: nothing can come. */
	if (!max || p->inflight == p->queued)
		return 0;
	if (!io_uring_cq_ready(&p->ring) && wait_ns) {
		ret = wait_result(p, wait_ns);
		if (ret)
			return ret;
	}

	io_uring_for_each_cqe(&p->ring, head, cqe) {
		if (n == max)
			break;
		res[n].user_data = cqe->user_data;
		res[n].res = cqe->res;
		/* CQE32: the kernel's first extra word is the message id. */
		res[n].msg_id = cqe->big_cqe[0];
		n++;
	}
	io_uring_cq_advance(&p->ring, n);
	p->inflight -= n;
	return (int)n;
}
