// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures in set-up paths (<linux/pcb.h>, "Limits and
 * accounting", fail_nth): for each set-up operation and N = 1, 2, ...,
 * module parameter fail_nth = N makes the Nth allocation fail.  When it
 * reads back 0, the failure happened: the operation must have failed with
 * ENOMEM and left nothing behind (/proc/pcb/usage as before, and what the
 * operation would have made absent, and makeable).  When it still reads
 * N, the operation made fewer than N allocations and must have succeeded:
 * every allocation of the path has then been failed once, and the loop
 * stops.  Every set-up path allocates, so at least one N must fail.
 *
 * Root only: fail_nth and /proc/pcb/usage are root's.
 */
#define PCBT_GUARD_PARAMS
#include "pcb_util.h"

#define SCHEMA		0xfa17
#define MAX_N		100		/* no set-up path allocates this often */
#define SETTLE_MS	5000

FIXTURE(fault) {
	int fd;
	char topic[PCB_NAME_MAX];	/* to open and subscribe to */
	__u32 topic_id;
	char name[PCB_NAME_MAX];	/* to create */
	struct pcbt_usage base;		/* with nothing of the operation */
	/* What one operation made or prepared. */
	int fd2;
	__u32 handle;
	struct pcbt_ring ring;
};

FIXTURE_SETUP(fault)
{
	unsigned long long v;

	self->fd2 = -1;
	self->ring.fd = -1;
	if (!pcbt_is_root())
		PCBT_SKIP("needs root for fail_nth and " PCBT_USAGE_PATH);
	PCBT_OPEN(self->fd);
	ASSERT_EQ(0, pcbt_param_get("fail_nth", &v));
	ASSERT_EQ(0ULL, v);
	pcbt_name(self->topic, "fault");
	pcbt_name(self->name, "fault-new");
	ASSERT_EQ(0, pcbt_create(self->fd, self->topic, SCHEMA, 64, 0666,
				 &self->topic_id));
	ASSERT_EQ(0, pcbt_usage_quiesce(&self->base, 300, 10000));
}

FIXTURE_TEARDOWN(fault)
{
	EXPECT_EQ(0, pcbt_set_param("fail_nth", 0));
	pcbt_params_restore();
	pcbt_ring_close(&self->ring);
	if (self->fd2 >= 0)
		close(self->fd2);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

struct fault_op {
	const char *what;
	/* Before arming: what the operation needs (0 or -errno). */
	int (*prepare)(FIXTURE_DATA(fault) *self);
	/* The operation: 0 or -errno. */
	int (*run)(FIXTURE_DATA(fault) *self);
	/* After an injected failure: nothing of it is left, it can be redone. */
	void (*check)(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fault) *self);
};

static void undo(FIXTURE_DATA(fault) *self)
{
	pcbt_ring_close(&self->ring);
	if (self->fd2 >= 0)
		close(self->fd2);
	self->fd2 = -1;
	pcbt_delete(self->fd, self->name);
}

static int inject(struct __test_metadata *_metadata,
		  FIXTURE_DATA(fault) *self, const struct fault_op *op)
{
	char diff[256];
	int n, failed = 0;

	for (n = 1; n <= MAX_N; n++) {
		struct pcbt_usage before, after;
		unsigned long long left = ~0ULL;
		int ret;

		/* What earlier rounds freed (RCU-deferred) is gone. */
		EXPECT_EQ(0, pcbt_usage_wait(&self->base, -1, SETTLE_MS, &after))
			TH_LOG("%s N=%d: not back to the baseline:%s", op->what,
			       n, pcbt_usage_diff(&self->base, &after, diff,
						  sizeof(diff)));
		ASSERT_EQ(0, op->prepare ? op->prepare(self) : 0);
		ASSERT_EQ(0, pcbt_usage_read(&before));
		ASSERT_EQ(0, pcbt_param_push("fail_nth", n));
		ret = op->run(self);
		ASSERT_EQ(0, pcbt_param_get("fail_nth", &left));
		ASSERT_EQ(0, pcbt_set_param("fail_nth", 0));
		if (left) {
			/* Fewer than N allocations: the path is done. */
			EXPECT_EQ((unsigned long long)n, left) TH_LOG("%s", op->what);
			EXPECT_EQ(0, ret) TH_LOG("%s N=%d, no failure injected",
						 op->what, n);
			undo(self);
			break;
		}
		failed++;
		EXPECT_EQ(-ENOMEM, ret) TH_LOG("%s N=%d", op->what, n);
		EXPECT_EQ(0, pcbt_usage_wait(&before, -1, SETTLE_MS, &after))
			TH_LOG("%s N=%d left:%s", op->what, n,
			       pcbt_usage_diff(&before, &after, diff,
					       sizeof(diff)));
		if (op->check)
			op->check(_metadata, self);
		undo(self);
	}
	fprintf(stderr, "# %s: N = 1..%d tried, %d injected failures\n",
		op->what, n > MAX_N ? MAX_N : n, failed);
	EXPECT_GE(MAX_N, n) TH_LOG("%s never succeeded", op->what);
	EXPECT_LT(0, failed) TH_LOG("%s: no allocation to fail", op->what);
	return failed;
}

/* ---- open ---- */

static int open_run(FIXTURE_DATA(fault) *self)
{
	self->fd2 = pcbt_open();
	return self->fd2 < 0 ? self->fd2 : 0;
}

TEST_F_TIMEOUT(fault, open, 120)
{
	static const struct fault_op op = { "open", NULL, open_run, NULL };

	inject(_metadata, self, &op);
}

/* ---- TOPIC_CREATE ---- */

static int create_run(FIXTURE_DATA(fault) *self)
{
	return pcbt_create(self->fd, self->name, SCHEMA, 64, 0600, NULL);
}

static void create_check(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fault) *self)
{
	struct pcb_topic_info info;

	EXPECT_EQ(-ENOENT, pcbt_info(self->fd, self->name, &info));
	/* The name is free again. */
	EXPECT_EQ(0, create_run(self));
}

TEST_F_TIMEOUT(fault, topic_create, 120)
{
	static const struct fault_op op = {
		"TOPIC_CREATE", NULL, create_run, create_check,
	};

	inject(_metadata, self, &op);
}

/* ---- TOPIC_OPEN ---- */

static int new_endpoint(FIXTURE_DATA(fault) *self)
{
	self->fd2 = pcbt_open();
	return self->fd2 < 0 ? self->fd2 : 0;
}

static int topic_open_run(FIXTURE_DATA(fault) *self)
{
	return pcbt_open_topic(self->fd2, self->topic, SCHEMA, &self->handle);
}

static void topic_open_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fault) *self)
{
	__u32 h;

	/* No handle was left half-open. */
	for (h = 0; h < 8; h++) {
		EXPECT_EQ(-EBADF, pcbt_publish(self->fd2, h, "x", 1,
					       PCB_PUB_NONBLOCK, 0, NULL))
			TH_LOG("handle %u", h);
	}
	EXPECT_EQ(0, topic_open_run(self));
	EXPECT_EQ(0, pcbt_publish(self->fd2, self->handle, "x", 1,
				  PCB_PUB_NONBLOCK, 0, NULL));
}

TEST_F_TIMEOUT(fault, topic_open, 120)
{
	static const struct fault_op op = {
		"TOPIC_OPEN", new_endpoint, topic_open_run, topic_open_check,
	};

	inject(_metadata, self, &op);
}

/* ---- RING_SETUP ---- */

static int ring_run(FIXTURE_DATA(fault) *self)
{
	struct pcb_ring_setup rs;

	return pcbt_ring_setup(self->fd2, 16384, &rs);
}

static void ring_check(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fault) *self)
{
	void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd2, 0);

	/* No ring yet ... */
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EBADFD, errno);
	if (p != MAP_FAILED)
		munmap(p, 4096);
	/* ... and one can be set up. */
	EXPECT_EQ(0, ring_run(self));
}

TEST_F_TIMEOUT(fault, ring_setup, 120)
{
	static const struct fault_op op = {
		"RING_SETUP", new_endpoint, ring_run, ring_check,
	};

	inject(_metadata, self, &op);
}

/* ---- SUBSCRIBE, SET_FILTER ---- */

static int new_ring(FIXTURE_DATA(fault) *self)
{
	int fd = pcbt_ring_open(4096, &self->ring);

	return fd < 0 ? fd : 0;
}

static int subscribe_run(FIXTURE_DATA(fault) *self)
{
	return pcbt_subscribe(self->ring.fd, self->topic, SCHEMA, 0, NULL);
}

static void filter_of(union pcbt_filter *f, int nr_preds)
{
	int i;

	pcbt_filter_init(f);
	for (i = 0; i < nr_preds; i++)
		pcbt_pred(f, PCB_FIELD_KEY, PCB_OP_NE, 1000 + i);
}

static int subscribe_filter_run(FIXTURE_DATA(fault) *self)
{
	union pcbt_filter f;

	filter_of(&f, 2);
	return pcbt_subscribe_filter(self->ring.fd, self->topic, SCHEMA, 0, &f,
				     NULL);
}

static void subscribe_check(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fault) *self)
{
	struct pcb_sub_info si;

	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->topic));
	EXPECT_EQ(-ENOENT, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(0, subscribe_filter_run(self));
	EXPECT_EQ(1LL, pcbt_nr_subs(self->fd, self->topic));
}

TEST_F_TIMEOUT(fault, subscribe, 120)
{
	static const struct fault_op op = {
		"SUBSCRIBE", new_ring, subscribe_run, subscribe_check,
	};

	inject(_metadata, self, &op);
}

TEST_F_TIMEOUT(fault, subscribe_with_filter, 120)
{
	static const struct fault_op op = {
		"SUBSCRIBE with a filter", new_ring, subscribe_filter_run,
		subscribe_check,
	};

	inject(_metadata, self, &op);
}

static int subscribed_ring(FIXTURE_DATA(fault) *self)
{
	union pcbt_filter f;
	int ret = new_ring(self);

	if (ret)
		return ret;
	filter_of(&f, 1);
	return pcbt_subscribe_filter(self->ring.fd, self->topic, SCHEMA, 0, &f,
				     NULL);
}

static int set_filter_run(FIXTURE_DATA(fault) *self)
{
	union pcbt_filter f;

	filter_of(&f, 3);
	return pcbt_set_filter(self->ring.fd, self->topic_id, &f);
}

static void set_filter_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fault) *self)
{
	struct pcb_sub_info si;

	/* The old filter is still in place. */
	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(1U, si.nr_preds);
	EXPECT_EQ(0, set_filter_run(self));
	ASSERT_EQ(0, pcbt_sub_info(self->ring.fd, self->topic_id, &si));
	EXPECT_EQ(3U, si.nr_preds);
}

TEST_F_TIMEOUT(fault, set_filter, 120)
{
	static const struct fault_op op = {
		"SET_FILTER", subscribed_ring, set_filter_run, set_filter_check,
	};

	inject(_metadata, self, &op);
}

/* ---- the first open() in a new IPC namespace: a new bus ---- */

struct bus_result {
	int ret;			/* of open() */
	unsigned long long left;	/* fail_nth read back */
	int err;			/* the child's own trouble */
	bool usage_same;
	char diff[256];
};

/* In a child: new IPC namespace, arm, open. */
static int new_bus_child(struct bus_result *res, int n)
{
	struct pcbt_usage before, after;
	int fd;

	res->err = unshare(CLONE_NEWIPC) ? -errno : 0;
	if (!res->err)
		res->err = pcbt_usage_read(&before);
	if (!res->err)
		res->err = pcbt_set_param("fail_nth", n);
	if (res->err)
		return res->err;
	fd = pcbt_open();
	res->ret = fd < 0 ? fd : 0;
	res->err = pcbt_param_get("fail_nth", &res->left);
	pcbt_set_param("fail_nth", 0);
	if (res->err)
		return res->err;
	if (!res->left) {
		res->usage_same =
			!pcbt_usage_wait(&before, -1, SETTLE_MS, &after);
		pcbt_usage_diff(&before, &after, res->diff,
				sizeof(res->diff));
	}
	return 0;
}

TEST_F_TIMEOUT(fault, new_bus, 240)
{
	struct bus_result *res;
	char diff[256];
	int n, failed = 0;

	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	for (n = 1; n <= MAX_N; n++) {
		struct pcbt_usage now;
		int status;
		pid_t pid;

		/* The namespaces of earlier rounds are dead: their buses gone. */
		EXPECT_EQ(0, pcbt_usage_wait(&self->base, -1, SETTLE_MS, &now))
			TH_LOG("N=%d: not back to the baseline:%s", n,
			       pcbt_usage_diff(&self->base, &now, diff,
					       sizeof(diff)));
		memset(res, 0, sizeof(*res));
		fflush(stderr);
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(new_bus_child(res, n) ? 1 : 0);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		pcbt_set_param("fail_nth", 0);
		ASSERT_EQ(0, res->err);
		ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
		if (res->left) {
			EXPECT_EQ((unsigned long long)n, res->left);
			EXPECT_EQ(0, res->ret) TH_LOG("N=%d, no failure injected",
						      n);
			break;
		}
		failed++;
		EXPECT_EQ(-ENOMEM, res->ret) TH_LOG("N=%d", n);
		EXPECT_TRUE(res->usage_same)
			TH_LOG("N=%d left:%s", n, res->diff);
	}
	fprintf(stderr, "# first open of a bus: N = 1..%d tried, %d injected failures\n",
		n > MAX_N ? MAX_N : n, failed);
	EXPECT_GE(MAX_N, n);
	EXPECT_LT(0, failed);
	munmap(res, sizeof(*res));
}

TEST_HARNESS_MAIN
