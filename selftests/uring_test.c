// SPDX-License-Identifier: GPL-2.0
/*
 * Publishing through io_uring: IORING_OP_URING_CMD with cmd_op
 * PCB_URING_CMD_PUBLISH on a /dev/pcb fd.
 */
#include "pcb_util.h"

#include <liburing.h>
#include <sys/uio.h>

#ifndef IORING_URING_CMD_FIXED
#define IORING_URING_CMD_FIXED	(1U << 0)
#endif

#define SCHEMA		0x0e1
#define MAX_MSG		200

FIXTURE(uring) {
	int fd;				/* publisher endpoint */
	__u32 handle;
	char name[PCB_NAME_MAX];
	struct pcbt_ring ring;		/* reliable subscriber, 4 KiB */
	struct io_uring uring;
	bool have_uring;
};

static int uring_init(struct io_uring *u, unsigned int flags)
{
	struct io_uring_params p = { .flags = flags, .sq_thread_idle = 1000 };

	return io_uring_queue_init_params(8, u, &p);
}

FIXTURE_SETUP(uring)
{
	int fd, ret;

	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "uring");
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, MAX_MSG, 0600,
				 NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA,
				     &self->handle));
	fd = pcbt_ring_open(4096, &self->ring);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));

	ret = uring_init(&self->uring, IORING_SETUP_SQE128 |
					IORING_SETUP_CQE32);
	if (ret == -ENOSYS || ret == -EPERM)
		PCBT_SKIP("io_uring is not available (%d)", ret);
	ASSERT_EQ(0, ret);
	self->have_uring = true;
}

FIXTURE_TEARDOWN(uring)
{
	if (self->have_uring)
		io_uring_queue_exit(&self->uring);
	pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

static void prep_publish(struct io_uring_sqe *sqe, int fd,
			 const struct pcb_uring_publish *cmd)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	sqe->user_data = 0x5eed;
	memcpy(sqe->cmd, cmd, sizeof(*cmd));
}

static int submit(struct io_uring *u, int fd,
		  const struct pcb_uring_publish *cmd, __u32 cmd_flags,
		  __u16 buf_index)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(u);

	if (!sqe)
		return -EBUSY;
	prep_publish(sqe, fd, cmd);
	sqe->uring_cmd_flags = cmd_flags;
	sqe->buf_index = buf_index;
	return io_uring_submit(u) == 1 ? 0 : -EIO;
}

/* The completion's res, its first extra word in *@extra (CQE32 rings). */
static int complete(struct io_uring *u, __u64 *extra, unsigned int ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long long)(ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe_timeout(u, &cqe, &ts);

	if (ret)
		return ret == -ETIME ? -EINPROGRESS : ret;
	ret = cqe->res;
	if (extra && (u->flags & IORING_SETUP_CQE32))
		*extra = cqe->big_cqe[0];
	io_uring_cqe_seen(u, cqe);
	return ret;
}

static int publish(struct io_uring *u, int fd,
		   const struct pcb_uring_publish *cmd, __u64 *extra)
{
	int ret = submit(u, fd, cmd, 0, 0);

	return ret ?: complete(u, extra, 10000);
}

static struct pcb_uring_publish cmd_for(FIXTURE_DATA(uring) *self,
					const void *buf, __u32 len)
{
	return (struct pcb_uring_publish){
		.handle = self->handle,
		.payload = (uintptr_t)buf,
		.len = len,
		.key = 0xabcdef,
	};
}

TEST_F(uring, publish_and_cqe32_id)
{
	static const char msg[] = "over io_uring";
	struct pcb_uring_publish cmd = cmd_for(self, msg, sizeof(msg));
	const struct pcb_record *rec;
	__u64 id = 0, id_mem = 0;

	cmd.msg_id_addr = (uintptr_t)&id_mem;
	ASSERT_EQ(0, publish(&self->uring, self->fd, &cmd, &id));
	EXPECT_NE(0ULL, id);
	EXPECT_EQ(id, id_mem);

	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(id, rec->msg_id);
	EXPECT_EQ(1ULL, rec->seq);
	EXPECT_EQ(0xabcdefULL, rec->key);
	EXPECT_EQ(sizeof(msg), rec->payload_len);
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ((__u32)geteuid(), rec->uid);
	EXPECT_EQ(0, memcmp(pcbt_payload(rec), msg, sizeof(msg)));
	EXPECT_EQ(1LL, pcbt_published(self->fd, self->name));
}

TEST_F(uring, without_cqe32_id_by_pointer)
{
	struct pcb_uring_publish cmd = cmd_for(self, "p", 1);
	struct io_uring u;
	__u64 id_mem = 0;

	ASSERT_EQ(0, uring_init(&u, IORING_SETUP_SQE128));
	cmd.msg_id_addr = (uintptr_t)&id_mem;
	ASSERT_EQ(0, publish(&u, self->fd, &cmd, NULL));
	EXPECT_NE(0ULL, id_mem);
	ASSERT_NE(NULL, pcbt_ring_peek(&self->ring));
	EXPECT_EQ(id_mem, pcbt_ring_peek(&self->ring)->msg_id);
	io_uring_queue_exit(&u);
}

TEST_F(uring, needs_sqe128)
{
	struct pcb_uring_publish cmd = cmd_for(self, "x", 1);
	struct io_uring_sqe *sqe;
	struct io_uring u;

	ASSERT_EQ(0, uring_init(&u, 0));
	sqe = io_uring_get_sqe(&u);
	ASSERT_NE(NULL, sqe);
	/* Only the 16 bytes a 64-byte SQE has room for. */
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, self->fd, NULL, 0, 0);
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	memcpy(sqe->cmd, &cmd, 16);
	ASSERT_EQ(1, io_uring_submit(&u));
	EXPECT_EQ(-EINVAL, complete(&u, NULL, 10000));
	EXPECT_EQ(0LL, pcbt_published(self->fd, self->name));
	io_uring_queue_exit(&u);
}

TEST_F(uring, bad_msg_id_addr_efault_but_published)
{
	struct pcb_uring_publish cmd = cmd_for(self, "y", 1);

	cmd.msg_id_addr = 8;
	EXPECT_EQ(-EFAULT, publish(&self->uring, self->fd, &cmd, NULL));
	/* "the message is published all the same" */
	EXPECT_EQ(1LL, pcbt_published(self->fd, self->name));
	EXPECT_NE(NULL, pcbt_ring_peek(&self->ring));
}

TEST_F(uring, publish_errors)
{
	unsigned char big[MAX_MSG + 1] = { 0 };
	struct pcb_uring_publish cmd;
	char dead[PCB_NAME_MAX];
	__u32 h;

	cmd = cmd_for(self, "z", 1);
	cmd.handle = 777;
	EXPECT_EQ(-EBADF, publish(&self->uring, self->fd, &cmd, NULL));

	cmd = cmd_for(self, big, MAX_MSG + 1);
	EXPECT_EQ(-EMSGSIZE, publish(&self->uring, self->fd, &cmd, NULL));

	cmd = cmd_for(self, "z", 1);
	cmd.flags = 0x80000000;
	EXPECT_EQ(-EINVAL, publish(&self->uring, self->fd, &cmd, NULL));
	cmd.flags = 0;
	cmd.reserved0 = 1;
	EXPECT_EQ(-EINVAL, publish(&self->uring, self->fd, &cmd, NULL));
	cmd.reserved0 = 0;
	cmd.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, publish(&self->uring, self->fd, &cmd, NULL));

	cmd = cmd_for(self, (void *)16, 10);
	EXPECT_EQ(-EFAULT, publish(&self->uring, self->fd, &cmd, NULL));
	EXPECT_EQ(0LL, pcbt_published(self->fd, self->name));
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));

	pcbt_name(dead, "dead");
	ASSERT_EQ(0, pcbt_create(self->fd, dead, SCHEMA, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, dead, SCHEMA, &h));
	ASSERT_EQ(0, pcbt_delete(self->fd, dead));
	cmd = cmd_for(self, "z", 1);
	cmd.handle = h;
	EXPECT_EQ(-EIDRM, publish(&self->uring, self->fd, &cmd, NULL));
}

static int fill(FIXTURE_DATA(uring) *self)
{
	static const char msg[MAX_MSG];
	int n = 0;

	while (!pcbt_publish(self->fd, self->handle, msg, MAX_MSG,
			     PCB_PUB_NONBLOCK, 0, NULL))
		n++;
	return n;
}

TEST_F(uring, nonblock_eagain)
{
	static const char msg[MAX_MSG];
	struct pcb_uring_publish cmd = cmd_for(self, msg, MAX_MSG);
	int n = fill(self);

	cmd.flags = PCB_PUB_NONBLOCK;
	EXPECT_EQ(-EAGAIN, publish(&self->uring, self->fd, &cmd, NULL));
	EXPECT_EQ((long long)n, pcbt_published(self->fd, self->name));
}

TEST_F(uring, blocking_waits_for_room)
{
	static const char msg[MAX_MSG];
	struct pcb_uring_publish cmd = cmd_for(self, msg, MAX_MSG);
	__u64 id = 0;
	int n = fill(self);

	ASSERT_EQ(0, submit(&self->uring, self->fd, &cmd, 0, 0));
	/* Still waiting a while later. */
	EXPECT_EQ(-EINPROGRESS, complete(&self->uring, NULL, 300));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->ring));
	pcbt_ioctl_val(self->ring.fd, PCB_IOC_NOTIFY, 0);
	ASSERT_EQ(0, complete(&self->uring, &id, 10000));
	EXPECT_NE(0ULL, id);
	EXPECT_EQ((long long)n + 1, pcbt_published(self->fd, self->name));
}

TEST_F(uring, blocking_etimedout)
{
	static const char msg[MAX_MSG];
	struct pcb_uring_publish cmd = cmd_for(self, msg, MAX_MSG);
	__u64 t0, dt;
	int n = fill(self);

	cmd.timeout_ns = 100 * PCBT_MS;
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, publish(&self->uring, self->fd, &cmd, NULL));
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_LE(100 * PCBT_MS, dt);
	EXPECT_EQ((long long)n, pcbt_published(self->fd, self->name));
}

TEST_F(uring, teardown_cancels_waiting_publish)
{
	static const char msg[MAX_MSG];
	struct pcb_uring_publish cmd = cmd_for(self, msg, MAX_MSG);
	int n = fill(self);

	ASSERT_EQ(0, submit(&self->uring, self->fd, &cmd, 0, 0));
	EXPECT_EQ(-EINPROGRESS, complete(&self->uring, NULL, 200));
	/*
	 * Tearing the ring down must not hang on the waiting command, and
	 * cancels it.  io_uring finishes a teardown after close() returns:
	 * give it time before making room the command could still take.
	 */
	io_uring_queue_exit(&self->uring);
	self->have_uring = false;
	pcbt_sleep_ms(1000);
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->ring));
	pcbt_sleep_ms(100);
	EXPECT_EQ((long long)n, pcbt_published(self->fd, self->name));
}

TEST_F(uring, task_exit_cancels_waiting_publish)
{
	static const char msg[MAX_MSG];
	struct pcb_uring_publish cmd = cmd_for(self, msg, MAX_MSG);
	int status, n = fill(self);
	pid_t pid;

	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct io_uring u;

		if (uring_init(&u, IORING_SETUP_SQE128) ||
		    submit(&u, self->fd, &cmd, 0, 0))
			_exit(1);
		pcbt_sleep_ms(200);
		_exit(0);		/* with the command still waiting */
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->ring));
	pcbt_sleep_ms(100);
	EXPECT_EQ((long long)n, pcbt_published(self->fd, self->name));
}

TEST_F(uring, registered_buffer)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *buf = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec iov = { .iov_base = buf, .iov_len = 2 * page };
	struct pcb_uring_publish cmd;
	const struct pcb_record *rec;
	int i;

	ASSERT_NE(MAP_FAILED, buf);
	for (i = 0; i < 2 * page; i++)
		buf[i] = i * 13;
	ASSERT_EQ(0, io_uring_register_buffers(&self->uring, &iov, 1));

	/* Across the page boundary, inside the buffer. */
	cmd = cmd_for(self, buf + page - 50, 100);
	ASSERT_EQ(0, submit(&self->uring, self->fd, &cmd,
			    IORING_URING_CMD_FIXED, 0));
	ASSERT_EQ(0, complete(&self->uring, NULL, 10000));
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(100U, rec->payload_len);
	EXPECT_EQ(0, memcmp(pcbt_payload(rec), buf + page - 50, 100));

	/* Past the end, or outside: EFAULT, nothing published. */
	cmd = cmd_for(self, buf + 2 * page - 10, 20);
	ASSERT_EQ(0, submit(&self->uring, self->fd, &cmd,
			    IORING_URING_CMD_FIXED, 0));
	EXPECT_EQ(-EFAULT, complete(&self->uring, NULL, 10000));
	cmd = cmd_for(self, "outside", 7);
	ASSERT_EQ(0, submit(&self->uring, self->fd, &cmd,
			    IORING_URING_CMD_FIXED, 0));
	EXPECT_EQ(-EFAULT, complete(&self->uring, NULL, 10000));
	EXPECT_EQ(1LL, pcbt_published(self->fd, self->name));
	io_uring_unregister_buffers(&self->uring);
	munmap(buf, 2 * page);
}

TEST_F(uring, sqpoll)
{
	struct pcb_uring_publish cmd = cmd_for(self, "sq", 2);
	const struct pcb_record *rec;
	struct io_uring u;
	int ret;

	ret = uring_init(&u, IORING_SETUP_SQE128 | IORING_SETUP_SQPOLL);
	if (ret == -EPERM)
		SKIP(return, "SQPOLL not permitted");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, publish(&u, self->fd, &cmd, NULL));
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	/* "The record's pid is the process's, the uid that of the ring's creator." */
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ((__u32)geteuid(), rec->uid);
	io_uring_queue_exit(&u);
}

TEST_HARNESS_MAIN
