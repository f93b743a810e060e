/* SPDX-License-Identifier: GPL-2.0 */
/*
 * io_uring helpers shared by the selftests that publish through
 * PCB_URING_CMD_PUBLISH besides their main subject.  Include after
 * pcb_util.h; link with -luring.
 */
#ifndef PCB_SELFTEST_URING_H
#define PCB_SELFTEST_URING_H

#include <liburing.h>

/* The 80 bytes of command area of a 128-byte SQE. */
#define PCBT_CMD_AREA		80
#define PCBT_CQE_WAIT_MS	10000

static inline int pcbt_uring_init(struct io_uring *u, unsigned int entries,
				  unsigned int flags)
{
	struct io_uring_params p = { .flags = flags, .sq_thread_idle = 2000 };

	return io_uring_queue_init_params(entries, u, &p);
}

/*
 * An SQE128 | CQE32 ring, or the test skips: io_uring may be missing,
 * disabled, or too old for 128-byte SQEs.
 */
#define PCBT_URING_INIT(u, entries) do {				\
	int __ret = pcbt_uring_init((u), (entries),			\
				    IORING_SETUP_SQE128 |		\
				    IORING_SETUP_CQE32);		\
	if (__ret == -ENOSYS || __ret == -EPERM || __ret == -EACCES ||	\
	    __ret == -EINVAL)						\
		SKIP(return, "io_uring with 128-byte SQEs is not available: %s", \
		     strerror(-__ret));					\
	ASSERT_EQ(0, __ret);						\
} while (0)

/* Queues one publish; the SQE, for the caller to adjust, or NULL. */
static inline struct io_uring_sqe *
pcbt_uring_queue(struct io_uring *u, int fd, const struct pcb_uring_publish *up,
		 __u64 user_data)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(u);

	if (!sqe)
		return NULL;
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	sqe->user_data = user_data;
	memset(sqe->cmd, 0, PCBT_CMD_AREA);
	memcpy(sqe->cmd, up, sizeof(*up));
	return sqe;
}

struct pcbt_cqe {
	int res;
	__u64 user_data;
	__u64 msg_id;		/* big_cqe[0] */
};

/* The next completion within @ms: 0, or -ETIME. */
static inline int pcbt_uring_reap(struct io_uring *u, struct pcbt_cqe *c,
				  unsigned int ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long long)(ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	int ret;

	do
		ret = io_uring_wait_cqe_timeout(u, &cqe, &ts);
	while (ret == -EINTR);
	if (ret)
		return ret;
	c->res = cqe->res;
	c->user_data = cqe->user_data;
	c->msg_id = cqe->big_cqe[0];
	io_uring_cqe_seen(u, cqe);
	return 0;
}

/* Submits one publish and waits for it: its completion's res. */
static inline int pcbt_uring_publish(struct io_uring *u, int fd,
				     const struct pcb_uring_publish *up,
				     struct pcbt_cqe *c)
{
	struct pcbt_cqe local;
	int ret;

	c = c ?: &local;
	if (!pcbt_uring_queue(u, fd, up, 0x5eed))
		return -EBUSY;
	ret = io_uring_submit(u);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	ret = pcbt_uring_reap(u, c, PCBT_CQE_WAIT_MS);
	return ret ?: c->res;
}

#endif /* PCB_SELFTEST_URING_H */
