// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring: IORING_OP_URING_CMD on a /dev/pcb file publishes a message.
 *
 * io_uring first issues a command with IO_URING_F_NONBLOCK (inline at
 * submission, or from the SQPOLL thread); a command that would have to
 * wait for room answers -EAGAIN and io_uring issues it again from one of
 * its workers, where waiting is allowed.  Commands complete before
 * ->uring_cmd() returns, so none is left queued in the driver to cancel:
 * a worker waiting for room is interrupted like a signal when the ring is
 * torn down or its task exits, and completes with EINTR.
 */
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "compat.h"
#include "internal.h"

static int check_uring_publish(const struct pcb_uring_publish *up)
{
	if (up->flags & ~PCB_PUB_FLAGS_ALL || up->reserved[0] ||
	    up->reserved[1])
		return -EINVAL;
	return 0;
}

static int uring_publish(struct io_uring_cmd *cmd,
			 const struct pcb_uring_publish *up, bool nonblock,
			 u64 *msg_id)
{
	struct pcb_endpoint *ep = pcb_uring_cmd_file(cmd)->private_data;
	struct pcb_src src = { .uptr = u64_to_user_ptr(up->payload) };
	/* No restart to keep a deadline for: io_uring retries by itself. */
	struct pcb_call call = { .timeout_ns = up->timeout_ns };
	u64 deps[PCB_MAX_DEPS] PCB_NOINIT;
	struct iov_iter iter;
	struct pcb_pub pub PCB_NOINIT;
	int ret;

	pcb_pub_init(&pub, ep);
	pub.msg.len = up->len;
	pub.msg.key = up->key;
	pub.nonblock = nonblock;
	/* Not the caller's EAGAIN: io_uring tries again from a worker. */
	pub.retried_later = nonblock && !(up->flags & PCB_PUB_NONBLOCK);
	ret = pcb_pub_deps(&pub, deps, up->deps, up->nr_deps);
	if (ret)
		return ret;

	if (pcb_uring_cmd_fixed(cmd)) {
		/* The registered buffer's pages are pinned: copy from them. */
		ret = io_uring_cmd_import_fixed(up->payload, up->len,
						ITER_SOURCE, &iter, cmd);
		if (ret)
			return ret;
		src.iter = &iter;
	}

	ret = pcb_publish_one(ep, up->handle, &pub, &src, &call);
	*msg_id = pub.msg_id;
	return ret;
}

int pcb_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	bool may_wait = !(issue_flags & IO_URING_F_NONBLOCK);
	struct pcb_uring_publish up;
	u64 msg_id = 0;
	int ret;

	if (cmd->cmd_op != PCB_URING_CMD_PUBLISH) {
		ret = -ENOTTY;
		goto done;
	}
	/* The 16 bytes of a plain SQE cannot hold the command. */
	if (!(issue_flags & IO_URING_F_SQE128)) {
		ret = -EINVAL;
		goto done;
	}
	/* One copy: userspace may rewrite the SQE while we look at it. */
	memcpy(&up, pcb_uring_cmd_data(cmd), sizeof(up));
	ret = check_uring_publish(&up);
	if (ret)
		goto done;

	ret = uring_publish(cmd, &up, !may_wait || up.flags & PCB_PUB_NONBLOCK,
			    &msg_id);
	if (ret == -EAGAIN && !may_wait && !(up.flags & PCB_PUB_NONBLOCK))
		return -EAGAIN;	/* io_uring issues it again from a worker */

	if (!ret && up.msg_id_addr &&
	    put_user(msg_id, (u64 __user *)u64_to_user_ptr(up.msg_id_addr)))
		ret = -EFAULT;
done:
	/* The id in the CQE's first extra word when the ring has CQE32. */
	io_uring_cmd_done(cmd, ret, msg_id, issue_flags);
	return -EIOCBQUEUED;
}
