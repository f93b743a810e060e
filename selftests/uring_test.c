// SPDX-License-Identifier: GPL-2.0
/*
 * Publishing through io_uring: IORING_OP_URING_CMD, cmd_op
 * PCB_URING_CMD_PUBLISH, on a /dev/pcb fd.  Completions, ids, order,
 * registered buffers, SQPOLL, backpressure and what happens to commands
 * still waiting when their ring, their file or their task goes away.
 *
 * Skips when io_uring (or SQE128/CQE32 rings) is not available.
 */
#include "pcb_util.h"

#include <liburing.h>
#include <sys/resource.h>
#include <sys/uio.h>

#define SCHEMA		0x0ee1
#define LEN		200	/* the topics' max_msg_size */
#define REC		PCB_REC_SIZE(sizeof(struct pcb_record) + LEN)
#define SMALL_RING	4096U
#define RING		(64U * 1024)
#define MANY		256	/* SQEs in one submit */
#define SQPOLL_MSGS	512
#define BLOCKED		4	/* commands left waiting for room */
#define CQE_WAIT_MS	10000

/* The 80 bytes of command area of a 128-byte SQE, 16 of a 64-byte one. */
#define CMD_AREA_128	80
#define CMD_AREA_64	16

struct msg {
	__u32 index;
	__u32 pad;
	__u64 stamp;
};

FIXTURE(uring) {
	int pfd;			/* publisher endpoint; the SQEs' fd */
	__u32 handle;
	char name[PCB_NAME_MAX];
	char canary[PCB_NAME_MAX];	/* see canary_endpoint() */
	struct pcbt_ring ring;		/* reliable, RING */
	struct pcbt_ring small;		/* reliable, SMALL_RING, if opened */
	struct io_uring u;		/* SQE128 | CQE32 */
	bool have_u;
};

static int uring_init(struct io_uring *u, unsigned int entries,
		      unsigned int flags)
{
	struct io_uring_params p = { .flags = flags, .sq_thread_idle = 2000 };

	return io_uring_queue_init_params(entries, u, &p);
}

/* io_uring may be missing, disabled, or too old for 128-byte SQEs. */
#define URING_INIT(u, entries, flags) do {				\
	int __ret = uring_init((u), (entries), (flags));		\
	if (__ret == -ENOSYS || __ret == -EPERM || __ret == -EACCES ||	\
	    __ret == -EINVAL)						\
		PCBT_SKIP("io_uring with flags %#x is not available: %s", \
			  (unsigned int)(flags), strerror(-__ret));	\
	ASSERT_EQ(0, __ret);						\
} while (0)

FIXTURE_SETUP(uring)
{
	int fd;

	self->small.fd = -1;
	PCBT_OPEN(self->pfd);
	pcbt_name(self->name, "uring");
	pcbt_name(self->canary, "canary");
	ASSERT_EQ(0, pcbt_create(self->pfd, self->name, SCHEMA, LEN, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_create(self->pfd, self->canary, SCHEMA, LEN, 0700,
				 NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, self->name, SCHEMA,
				     &self->handle));
	fd = pcbt_ring_open(RING, &self->ring);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));

	URING_INIT(&self->u, MANY, IORING_SETUP_SQE128 | IORING_SETUP_CQE32);
	self->have_u = true;
}

FIXTURE_TEARDOWN(uring)
{
	if (self->have_u)
		io_uring_queue_exit(&self->u);
	if (self->small.fd >= 0)
		pcbt_ring_close(&self->small);
	pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->pfd >= 0)
		close(self->pfd);
}

static void prep_publish(struct io_uring *u, struct io_uring_sqe *sqe, int fd,
			 const struct pcb_uring_publish *up, __u64 user_data)
{
	bool big = u->flags & IORING_SETUP_SQE128;

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = PCB_URING_CMD_PUBLISH;
	sqe->user_data = user_data;
	memset(sqe->cmd, 0, big ? CMD_AREA_128 : CMD_AREA_64);
	memcpy(sqe->cmd, up, big ? sizeof(*up) : CMD_AREA_64);
}

/* Queues one publish; the SQE, for the caller to adjust, or NULL. */
static struct io_uring_sqe *queue_publish(struct io_uring *u, int fd,
					  const struct pcb_uring_publish *up,
					  __u64 user_data)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(u);

	if (sqe)
		prep_publish(u, sqe, fd, up, user_data);
	return sqe;
}

struct done {
	int res;
	__u64 user_data;
	__u64 extra;		/* big_cqe[0] on a CQE32 ring */
};

/* The next completion within @ms: 0, or -ETIME. */
static int reap(struct io_uring *u, struct done *d, unsigned int ms)
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
	d->res = cqe->res;
	d->user_data = cqe->user_data;
	d->extra = (u->flags & IORING_SETUP_CQE32) ? cqe->big_cqe[0] : 0;
	io_uring_cqe_seen(u, cqe);
	return 0;
}

/* Submits one publish and waits for it: its completion's res. */
static int publish(struct io_uring *u, int fd,
		   const struct pcb_uring_publish *up, struct done *d)
{
	struct done local;
	int ret;

	d = d ?: &local;
	if (!queue_publish(u, fd, up, 0x5eed))
		return -EBUSY;
	ret = io_uring_submit(u);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	ret = reap(u, d, CQE_WAIT_MS);
	return ret ?: d->res;
}

static struct pcb_uring_publish cmd(__u32 handle, const void *buf, __u32 len)
{
	return (struct pcb_uring_publish){
		.handle = handle,
		.payload = (uintptr_t)buf,
		.len = len,
		.key = 0xc0ffee,
	};
}

static bool ring_empty(struct pcbt_ring *r)
{
	return !pcbt_ring_peek(r) && !r->corrupt;
}

/* The next record of @r is message @index of a run of struct msg. */
static void expect_msg(struct __test_metadata *_metadata, struct pcbt_ring *r,
		       __u32 index, __u64 seq, __u64 msg_id)
{
	const struct pcb_record *rec = pcbt_ring_next(r, PCBT_SEC);
	struct msg m;

	ASSERT_NE(NULL, rec) TH_LOG("message %u missing", index);
	ASSERT_EQ(sizeof(m), rec->payload_len);
	memcpy(&m, pcbt_payload(rec), sizeof(m));
	EXPECT_EQ(index, m.index);
	EXPECT_EQ(seq, rec->seq);
	EXPECT_EQ(msg_id, rec->msg_id);
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ((__u32)geteuid(), rec->uid);
	pcbt_ring_pop(r);
}

/* A reliable SMALL_RING subscriber, full of records of LEN bytes. */
static int fill_small(struct __test_metadata *_metadata,
		      FIXTURE_DATA(uring) *self)
{
	static const char buf[LEN];
	int n = 0, ret;

	ASSERT_LE(0, pcbt_ring_open(SMALL_RING, &self->small));
	ASSERT_EQ(0, pcbt_subscribe(self->small.fd, self->name, SCHEMA, 0,
				    NULL));
	while (!(ret = pcbt_publish(self->pfd, self->handle, buf, LEN,
				    PCB_PUB_NONBLOCK, 0, NULL)))
		n++;
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_EQ((int)(SMALL_RING / REC), n);
	pcbt_ring_drain(&self->ring);
	return n;
}

static bool flag_within(const struct pcbt_ring *r, __u32 flag, unsigned int ms)
{
	while (!(pcbt_ring_flags(r) & flag) && ms--)
		pcbt_sleep_ms(1);
	return pcbt_ring_flags(r) & flag;
}

/* Consumes every record and wakes waiting publishers (C, E). */
static unsigned int drain_and_notify(struct pcbt_ring *r)
{
	unsigned int n = 0;

	while (pcbt_ring_peek(r)) {
		pcbt_ring_pop(r);
		n++;
	}
	pcbt_ring_store_cons(r);
	pcbt_smp_mb();
	pcbt_ioctl_val(r->fd, PCB_IOC_NOTIFY, 0);
	return n;
}

static void *no_access_page(void)
{
	void *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	return p == MAP_FAILED ? NULL : p;
}

TEST_F(uring, needs_sqe128)
{
	static const unsigned int flags[] = { 0, IORING_SETUP_CQE32 };
	static const char buf[] = "short";
	struct pcb_uring_publish up = cmd(self->handle, buf, sizeof(buf));
	struct io_uring u;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		URING_INIT(&u, 4, flags[i]);
		EXPECT_EQ(-EINVAL, publish(&u, self->pfd, &up, NULL));
		io_uring_queue_exit(&u);
	}
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->name));
	EXPECT_TRUE(ring_empty(&self->ring));
}

TEST_F(uring, unknown_cmd_op)
{
	static const __u32 ops[] = { 0, PCB_URING_CMD_PUBLISH + 1, 0x80000001,
				     ~0U };
	static const char buf[] = "x";
	struct pcb_uring_publish up = cmd(self->handle, buf, 1);
	struct io_uring_sqe *sqe;
	struct done d;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		sqe = queue_publish(&self->u, self->pfd, &up, i);
		ASSERT_NE(NULL, sqe);
		sqe->cmd_op = ops[i];
		ASSERT_EQ(1, io_uring_submit(&self->u));
		ASSERT_EQ(0, reap(&self->u, &d, CQE_WAIT_MS));
		EXPECT_EQ(-ENOTTY, d.res) TH_LOG("cmd_op %#x", ops[i]);
	}
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->name));
}

TEST_F(uring, reserved_and_flags)
{
	static const char buf[] = "x";
	struct pcb_uring_publish up;
	unsigned int i;

	for (i = 0; i < 6; i++) {
		up = cmd(self->handle, buf, 1);
		switch (i) {
		case 0: up.nr_deps = PCB_MAX_DEPS + 1; break;
		case 1: up.reserved[0] = 1; break;
		case 2: up.reserved[1] = 1; break;
		case 3: up.reserved[1] = ~0ULL; break;
		case 4: up.flags = PCB_PUB_FLAGS_ALL + 1; break;
		case 5: up.flags = 0x80000000U; break;
		}
		EXPECT_EQ(-EINVAL, publish(&self->u, self->pfd, &up, NULL))
			TH_LOG("case %u", i);
	}
	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->name));
	EXPECT_TRUE(ring_empty(&self->ring));
}

/* The errors of PCB_IOC_PUBLISH, as completions. */
TEST_F(uring, publish_errors)
{
	static const char buf[LEN + 1];
	struct pcb_uring_publish up;
	char dead[PCB_NAME_MAX];
	__u32 dead_handle;

	up = cmd(PCB_MAX_HANDLES - 1, buf, 1);
	EXPECT_EQ(-EBADF, publish(&self->u, self->pfd, &up, NULL));
	up = cmd(self->handle, buf, LEN + 1);
	EXPECT_EQ(-EMSGSIZE, publish(&self->u, self->pfd, &up, NULL));
	up = cmd(self->handle, no_access_page(), 10);
	EXPECT_EQ(-EFAULT, publish(&self->u, self->pfd, &up, NULL));
	up = cmd(self->handle, (void *)(uintptr_t)8, 10);
	EXPECT_EQ(-EFAULT, publish(&self->u, self->pfd, &up, NULL));

	pcbt_name(dead, "dead");
	ASSERT_EQ(0, pcbt_create(self->pfd, dead, SCHEMA, LEN, 0700, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->pfd, dead, SCHEMA, &dead_handle));
	ASSERT_EQ(0, pcbt_delete(self->pfd, dead));
	up = cmd(dead_handle, buf, 1);
	EXPECT_EQ(-EIDRM, publish(&self->u, self->pfd, &up, NULL));

	EXPECT_EQ(0LL, pcbt_published(self->pfd, self->name));
	EXPECT_TRUE(ring_empty(&self->ring));

	/* A message of no bytes needs no payload. */
	up = cmd(self->handle, NULL, 0);
	EXPECT_EQ(0, publish(&self->u, self->pfd, &up, NULL));
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
}

TEST_F(uring, single)
{
	struct msg m = { .index = 7, .stamp = 0x1122334455667788ULL };
	struct pcb_uring_publish up = cmd(self->handle, &m, sizeof(m));
	const struct pcb_record *rec;
	__u64 id = 0;
	struct done d;

	up.msg_id_addr = (uintptr_t)&id;
	ASSERT_EQ(0, publish(&self->u, self->pfd, &up, &d));
	EXPECT_NE(0ULL, d.extra);
	EXPECT_EQ(d.extra, id);
	EXPECT_EQ(0x5eedULL, d.user_data);

	rec = pcbt_ring_next(&self->ring, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(id, rec->msg_id);
	EXPECT_EQ(1ULL, rec->seq);
	EXPECT_EQ(0xc0ffeeULL, rec->key);
	ASSERT_EQ(sizeof(m), rec->payload_len);
	EXPECT_EQ(0, memcmp(&m, pcbt_payload(rec), sizeof(m)));
	EXPECT_EQ((__u32)getpid(), rec->pid);
	EXPECT_EQ((__u32)geteuid(), rec->uid);
	pcbt_ring_pop(&self->ring);
	EXPECT_TRUE(ring_empty(&self->ring));
	EXPECT_EQ(1LL, pcbt_published(self->pfd, self->name));
}

/* Without CQE32 the id comes through msg_id_addr alone. */
TEST_F(uring, without_cqe32)
{
	struct msg m = { .index = 1 };
	struct pcb_uring_publish up = cmd(self->handle, &m, sizeof(m));
	struct io_uring u;
	__u64 id = 0;

	URING_INIT(&u, 4, IORING_SETUP_SQE128);
	up.msg_id_addr = (uintptr_t)&id;
	EXPECT_EQ(0, publish(&u, self->pfd, &up, NULL));
	io_uring_queue_exit(&u);
	EXPECT_NE(0ULL, id);
	expect_msg(_metadata, &self->ring, 1, 1, id);
}

/* An id that cannot be written back: EFAULT, published all the same. */
TEST_F(uring, msg_id_addr_efault)
{
	struct msg m = { .index = 3 };
	struct pcb_uring_publish up = cmd(self->handle, &m, sizeof(m));
	const struct pcb_record *rec;
	struct done d;

	up.msg_id_addr = (uintptr_t)no_access_page();
	EXPECT_EQ(-EFAULT, publish(&self->u, self->pfd, &up, &d));
	EXPECT_EQ(1LL, pcbt_published(self->pfd, self->name));
	rec = pcbt_ring_next(&self->ring, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(1ULL, rec->seq);
	EXPECT_EQ(0, memcmp(&m, pcbt_payload(rec), sizeof(m)));
	pcbt_ring_pop(&self->ring);

	/* Read-only memory is no better. */
	up.msg_id_addr = (uintptr_t)"read-only string";
	EXPECT_EQ(-EFAULT, publish(&self->u, self->pfd, &up, &d));
	EXPECT_EQ(2LL, pcbt_published(self->pfd, self->name));
	EXPECT_EQ(1U, pcbt_ring_drain(&self->ring));
}

/*
 * @count publishes through @u, queued @group at a time: every completion
 * res 0 with the id in its extra word and in ids[], and each reliable
 * subscriber reads them in submission order.
 */
static void publish_run(struct __test_metadata *_metadata,
			FIXTURE_DATA(uring) *self, struct io_uring *u,
			struct pcbt_ring **rings, int nr_rings,
			unsigned int count, unsigned int group)
{
	struct msg *m = calloc(count, sizeof(*m));
	__u64 *ids = calloc(count, sizeof(*ids));
	unsigned int queued = 0, reaped = 0, i;
	struct done d;
	int r;

	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, ids);
	while (queued < count) {
		unsigned int n = 0;

		while (queued < count && n < group) {
			struct pcb_uring_publish up;

			m[queued].index = queued;
			up = cmd(self->handle, &m[queued], sizeof(m[0]));
			up.msg_id_addr = (uintptr_t)&ids[queued];
			ASSERT_NE(NULL, queue_publish(u, self->pfd, &up,
						      queued));
			queued++;
			n++;
		}
		r = io_uring_submit(u);
		/*
		 * With SQPOLL, liburing counts every SQE the polling thread
		 * has not retired from the SQ ring yet: it posts completions
		 * before it moves the ring's head, so a group reaped in full
		 * may still be counted.
		 */
		if (u->flags & IORING_SETUP_SQPOLL) {
			ASSERT_LE((int)n, r);
		} else {
			ASSERT_EQ((int)n, r);
		}
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, reap(u, &d, CQE_WAIT_MS))
				TH_LOG("%u of %u completions", reaped, count);
			ASSERT_EQ(0, d.res) TH_LOG("message %llu",
						   (unsigned long long)d.user_data);
			ASSERT_GT(count, d.user_data);
			if (u->flags & IORING_SETUP_CQE32)
				EXPECT_EQ(ids[d.user_data], d.extra);
			reaped++;
		}
	}
	for (i = 1; i < count; i++) {
		ASSERT_LT(ids[i - 1], ids[i]) TH_LOG("message %u", i);
	}
	for (r = 0; r < nr_rings; r++) {
		for (i = 0; i < count; i++)
			expect_msg(_metadata, rings[r], i, i + 1ULL, ids[i]);
		EXPECT_TRUE(ring_empty(rings[r]));
	}
	EXPECT_EQ((long long)count, pcbt_published(self->pfd, self->name));
	free(m);
	free(ids);
}

TEST_F(uring, many_in_one_submit)
{
	struct pcbt_ring second;
	struct pcbt_ring *rings[] = { &self->ring, &second };

	ASSERT_LE(0, pcbt_ring_open(RING, &second));
	ASSERT_EQ(0, pcbt_subscribe(second.fd, self->name, SCHEMA, 0, NULL));
	publish_run(_metadata, self, &self->u, rings, 2, MANY, MANY);
	pcbt_ring_close(&second);
}

/* The SQPOLL thread submits: records still name this process. */
TEST_F(uring, sqpoll)
{
	struct pcbt_ring *rings[] = { &self->ring };
	struct io_uring u;

	URING_INIT(&u, 64, IORING_SETUP_SQPOLL | IORING_SETUP_SQE128 |
			   IORING_SETUP_CQE32);
	publish_run(_metadata, self, &u, rings, 1, SQPOLL_MSGS, 32);
	io_uring_queue_exit(&u);
}

/* Registered buffers: the payload must lie inside the one named. */
TEST_F(uring, registered_buffer)
{
	unsigned char *buf;
	struct iovec iov;
	struct io_uring_sqe *sqe;
	struct pcb_uring_publish up;
	const struct pcb_record *rec;
	static const struct {
		long off;
		__u32 len;
		int res;
	} cases[] = {
		{ 100, LEN, 0 },
		{ 4096 - LEN, LEN, 0 },		/* up to the last byte */
		{ 4096 - LEN + 1, LEN, -EFAULT },	/* one byte beyond */
		{ -1, 10, -EFAULT },			/* one byte before */
		{ 4096, 1, -EFAULT },
	};
	unsigned int i, ok = 0;
	struct done d;
	int ret;

	/* Anonymous memory: 6.1 refuses file-backed pages (EOPNOTSUPP). */
	buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	for (i = 0; i < 4096; i++)
		buf[i] = (unsigned char)(i * 7);
	iov.iov_base = buf;
	iov.iov_len = 4096;
	ret = io_uring_register_buffers(&self->u, &iov, 1);
	if (ret == -ENOMEM)
		SKIP(return, "cannot lock one page (RLIMIT_MEMLOCK)");
	ASSERT_EQ(0, ret);

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		up = cmd(self->handle, buf + cases[i].off, cases[i].len);
		sqe = queue_publish(&self->u, self->pfd, &up, i);
		ASSERT_NE(NULL, sqe);
		sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
		sqe->buf_index = 0;
		ASSERT_EQ(1, io_uring_submit(&self->u));
		ASSERT_EQ(0, reap(&self->u, &d, CQE_WAIT_MS));
		EXPECT_EQ(cases[i].res, d.res) TH_LOG("case %u", i);
		if (d.res)
			continue;
		ok++;
		rec = pcbt_ring_next(&self->ring, PCBT_SEC);
		ASSERT_NE(NULL, rec);
		EXPECT_EQ(d.extra, rec->msg_id);
		ASSERT_EQ(cases[i].len, rec->payload_len);
		EXPECT_EQ(0, memcmp(buf + cases[i].off, pcbt_payload(rec),
				    cases[i].len));
		pcbt_ring_pop(&self->ring);
	}

	/* Memory outside every registered buffer, and a buffer not there. */
	up = cmd(self->handle, &iov, sizeof(iov));
	sqe = queue_publish(&self->u, self->pfd, &up, 100);
	sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
	up = cmd(self->handle, buf, 10);
	sqe = queue_publish(&self->u, self->pfd, &up, 101);
	sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
	sqe->buf_index = 1;
	ASSERT_EQ(2, io_uring_submit(&self->u));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, reap(&self->u, &d, CQE_WAIT_MS));
		EXPECT_EQ(-EFAULT, d.res) TH_LOG("user_data %llu",
						 (unsigned long long)d.user_data);
	}

	EXPECT_EQ((long long)ok, pcbt_published(self->pfd, self->name));
	EXPECT_TRUE(ring_empty(&self->ring));
	io_uring_unregister_buffers(&self->u);
	munmap(buf, 4096);
}

TEST_F(uring, full_ring_nonblock)
{
	static const char buf[LEN];
	struct pcb_uring_publish up = cmd(self->handle, buf, LEN);
	__u64 t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	int n = fill_small(_metadata, self);

	up.flags = PCB_PUB_NONBLOCK;
	up.timeout_ns = 10 * PCBT_SEC;		/* ignored */
	EXPECT_EQ(-EAGAIN, publish(&self->u, self->pfd, &up, NULL));
	EXPECT_GT(5 * PCBT_SEC, pcbt_now_ns(CLOCK_MONOTONIC) - t0);
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));
	EXPECT_EQ(0U, pcbt_ring_flags(&self->small) & PCB_RING_PUB_WAITING);
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->small));
}

/* A blocking command completes once the consumer makes room. */
TEST_F(uring, full_ring_blocking)
{
	struct msg m = { .index = 42 };
	struct pcb_uring_publish up = cmd(self->handle, &m, sizeof(m));
	const struct pcb_record *rec;
	__u64 id = 0;
	struct done d;
	int n = fill_small(_metadata, self);

	/* A small message would still fit: make it a full record. */
	up.len = LEN;
	up.payload = (uintptr_t)calloc(1, LEN);
	memcpy((void *)(uintptr_t)up.payload, &m, sizeof(m));
	up.msg_id_addr = (uintptr_t)&id;
	ASSERT_NE(NULL, queue_publish(&self->u, self->pfd, &up, 1));
	ASSERT_EQ(1, io_uring_submit(&self->u));

	EXPECT_EQ(-ETIME, reap(&self->u, &d, 300));
	EXPECT_TRUE(flag_within(&self->small, PCB_RING_PUB_WAITING, 10000));
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));

	EXPECT_EQ((unsigned int)n, drain_and_notify(&self->small));
	ASSERT_EQ(0, reap(&self->u, &d, CQE_WAIT_MS));
	EXPECT_EQ(0, d.res);
	EXPECT_EQ(id, d.extra);
	rec = pcbt_ring_next(&self->small, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(id, rec->msg_id);
	EXPECT_EQ(n + 1ULL, rec->seq);
	EXPECT_EQ(0, memcmp(&m, pcbt_payload(rec), sizeof(m)));
	free((void *)(uintptr_t)up.payload);
}

TEST_F(uring, full_ring_etimedout)
{
	static const char buf[LEN];
	struct pcb_uring_publish up = cmd(self->handle, buf, LEN);
	__u64 t0, dt;
	int n = fill_small(_metadata, self);

	up.timeout_ns = 100 * PCBT_MS;
	t0 = pcbt_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, publish(&self->u, self->pfd, &up, NULL));
	dt = pcbt_now_ns(CLOCK_MONOTONIC) - t0;
	EXPECT_LE(100 * PCBT_MS, dt);
	EXPECT_GT(10 * PCBT_SEC, dt);
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));
	EXPECT_EQ((unsigned int)n, pcbt_ring_drain(&self->small));
}

/*
 * A second publisher endpoint whose ring (never mapped) is subscribed to
 * the canary topic: the topic's nr_subscribers drops to 0 once the
 * endpoint is released, that is once no command holds its file.
 */
static int canary_endpoint(FIXTURE_DATA(uring) *self, __u32 *handle)
{
	struct pcb_ring_setup rs;
	int fd = pcbt_open();
	int ret;

	if (fd < 0)
		return fd;
	ret = pcbt_ring_setup(fd, SMALL_RING, &rs) ?:
	      pcbt_subscribe(fd, self->canary, SCHEMA, 0, NULL) ?:
	      pcbt_open_topic(fd, self->name, SCHEMA, handle);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static bool released_within(FIXTURE_DATA(uring) *self, unsigned int ms)
{
	while (pcbt_nr_subs(self->pfd, self->canary) != 0 && ms--)
		pcbt_sleep_ms(1);
	return pcbt_nr_subs(self->pfd, self->canary) == 0;
}

/* BLOCKED publishes that wait for room; 0 or -errno. */
static int submit_blocked(struct io_uring *u, int fd, __u32 handle)
{
	static const char buf[LEN];
	struct pcb_uring_publish up = cmd(handle, buf, LEN);
	int i;

	for (i = 0; i < BLOCKED; i++)
		if (!queue_publish(u, fd, &up, i))
			return -EBUSY;
	return io_uring_submit(u) == BLOCKED ? 0 : -EIO;
}

/* Nothing was published by the cancelled commands, nor is later. */
static void expect_cancelled(struct __test_metadata *_metadata,
			     FIXTURE_DATA(uring) *self, int n)
{
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));
	EXPECT_EQ((unsigned int)n, drain_and_notify(&self->small));
	pcbt_sleep_ms(100);
	EXPECT_TRUE(ring_empty(&self->small));
	EXPECT_EQ((long long)n, pcbt_published(self->pfd, self->name));
}

/* Tearing the ring down cancels the commands waiting for room. */
TEST_F_TIMEOUT(uring, ring_exit_with_blocked_commands, 120)
{
	struct done d;
	__u32 h;
	int n = fill_small(_metadata, self);
	int fd = canary_endpoint(self, &h);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, submit_blocked(&self->u, fd, h));
	EXPECT_EQ(-ETIME, reap(&self->u, &d, 200));
	ASSERT_TRUE(flag_within(&self->small, PCB_RING_PUB_WAITING, 10000));

	io_uring_queue_exit(&self->u);
	self->have_u = false;
	/* The commands' references to the file are gone once it is closed. */
	close(fd);
	EXPECT_TRUE(released_within(self, 20000));
	expect_cancelled(_metadata, self, n);
}

/*
 * Closing the /dev/pcb fd does not cancel commands: they keep the
 * endpoint alive, complete once there is room, and then let it go.
 */
TEST_F_TIMEOUT(uring, close_fd_with_commands_in_flight, 120)
{
	struct done d;
	__u32 h;
	int i, n = fill_small(_metadata, self);
	int fd = canary_endpoint(self, &h);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, submit_blocked(&self->u, fd, h));
	EXPECT_EQ(-ETIME, reap(&self->u, &d, 200));
	ASSERT_TRUE(flag_within(&self->small, PCB_RING_PUB_WAITING, 10000));

	close(fd);
	pcbt_sleep_ms(100);
	EXPECT_EQ(1LL, pcbt_nr_subs(self->pfd, self->canary));
	EXPECT_EQ(-EAGAIN, io_uring_peek_cqe(&self->u,
					     &(struct io_uring_cqe *){ NULL }));

	EXPECT_EQ((unsigned int)n, drain_and_notify(&self->small));
	for (i = 0; i < BLOCKED; i++) {
		ASSERT_EQ(0, reap(&self->u, &d, CQE_WAIT_MS)) TH_LOG("cqe %d", i);
		EXPECT_EQ(0, d.res);
		EXPECT_NE(0ULL, d.extra);
	}
	EXPECT_EQ(n + (long long)BLOCKED,
		  pcbt_published(self->pfd, self->name));
	EXPECT_EQ((unsigned int)BLOCKED, pcbt_ring_drain(&self->small));
	EXPECT_TRUE(released_within(self, 20000));
}

/*
 * The child: BLOCKED commands waiting for room, then it says so and exits,
 * or waits to be killed.
 */
static int blocked_child(FIXTURE_DATA(uring) *self, int ready, bool exit)
{
	struct io_uring u;
	struct io_uring_cqe *cqe;
	__u32 h;
	int fd = canary_endpoint(self, &h);

	if (fd < 0 || uring_init(&u, 8, IORING_SETUP_SQE128))
		return 1;
	if (submit_blocked(&u, fd, h))
		return 2;
	pcbt_sleep_ms(200);
	if (io_uring_peek_cqe(&u, &cqe) != -EAGAIN)
		return 3;
	if (write(ready, "r", 1) != 1)
		return 4;
	if (exit)
		return 0;
	for (;;)
		pause();
}

static bool reaped_within(pid_t pid, unsigned int ms, int *status)
{
	for (;;) {
		pid_t ret = waitpid(pid, status, WNOHANG);

		if (ret == pid)
			return true;
		if (ret < 0 || !ms--)
			return false;
		pcbt_sleep_ms(1);
	}
}

/*
 * A task that exits, or is killed, while its commands wait for room: it
 * goes away within a bounded time, its endpoint is released and nothing
 * is published.
 */
static void task_gone(struct __test_metadata *_metadata,
		      FIXTURE_DATA(uring) *self, bool kill_it)
{
	struct pollfd pfd = { .events = POLLIN };
	int n = fill_small(_metadata, self);
	int pipefd[2], status = 0;
	char c = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(pipefd));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pipefd[0]);
		_exit(blocked_child(self, pipefd[1], !kill_it));
	}
	close(pipefd[1]);
	pfd.fd = pipefd[0];
	if (poll(&pfd, 1, 30000) != 1 || read(pipefd[0], &c, 1) != 1 ||
	    c != 'r') {
		kill(pid, SIGKILL);
		reaped_within(pid, 30000, &status);
		ASSERT_TRUE(false) TH_LOG("child not ready (status %#x)",
					  status);
	}
	close(pipefd[0]);
	EXPECT_TRUE(flag_within(&self->small, PCB_RING_PUB_WAITING, 10000));

	if (kill_it) {
		ASSERT_EQ(0, kill(pid, SIGKILL));
	}
	if (!reaped_within(pid, 30000, &status)) {
		kill(pid, SIGKILL);
		ASSERT_TRUE(false) TH_LOG("child still there after 30 s");
	}
	if (kill_it) {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	} else {
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	EXPECT_TRUE(released_within(self, 20000));
	expect_cancelled(_metadata, self, n);
}

TEST_F_TIMEOUT(uring, exit_with_blocked_commands, 120)
{
	task_gone(_metadata, self, false);
}

TEST_F_TIMEOUT(uring, sigkill_with_blocked_commands, 120)
{
	task_gone(_metadata, self, true);
}

TEST_HARNESS_MAIN
