// SPDX-License-Identifier: GPL-2.0
/*
 * Limits and accounting (<linux/pcb.h>, "Limits and accounting"): the
 * module parameters max_topics (ENOSPC), max_endpoints (ENFILE),
 * max_endpoints_per_user (EMFILE), max_subscribers (ENOSPC),
 * max_subscriptions_per_user and max_handles_per_user (EDQUOT),
 * max_ring_size and max_msg_size (EINVAL), changed at run time; the fair
 * share ("a user may take one more only while it holds fewer than remain
 * free": EDQUOT, EMFILE for endpoints) that CAP_SYS_RESOURCE lifts; ring
 * memory charged against RLIMIT_MEMLOCK unless CAP_IPC_LOCK; and
 * /proc/pcb/usage, which counts all of it.
 *
 * The users are agents (pcbt_agent): processes that hold what they took
 * while the next user tries.  As root, agents drop to uid 65534 ("a"),
 * 65533 ("b") or stay root ("r"); setresuid() to a non-zero uid clears
 * every capability, which each test checks.  Whatever needs root to write
 * a parameter or to be another user skips as non-root.
 *
 * Fair-share arithmetic: with room for K more (max = total + K), a user
 * that holds none takes K/2 (mine < K - mine), the next user half of the
 * rest, K/4, and root the remaining K/4 up to the limit.
 */
#define PCBT_GUARD_PARAMS
#include "pcb_util.h"

#define SCHEMA		0x117
#define K		8		/* room made above the current total */
#define OTHER		65533		/* a second unprivileged uid */
#define TRIES		(4 * K)		/* a user never gets more than this */
#define SETTLE_MS	5000		/* frees are RCU-deferred */

FIXTURE(limits) {
	int fd;
	struct pcbt_agent a;		/* uid 65534 */
	struct pcbt_agent b;		/* uid 65533 */
	struct pcbt_agent r;		/* root, with every capability */
};

static void agent_clear(struct pcbt_agent *a)
{
	a->pid = -1;
	a->to = a->from = -1;
}

FIXTURE_SETUP(limits)
{
	agent_clear(&self->a);
	agent_clear(&self->b);
	agent_clear(&self->r);
	PCBT_OPEN(self->fd);
}

FIXTURE_TEARDOWN(limits)
{
	pcbt_agent_stop(&self->a);
	pcbt_agent_stop(&self->b);
	pcbt_agent_stop(&self->r);
	/* Before cleanup: it needs to open an endpoint. */
	EXPECT_EQ(0, pcbt_params_restore());
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

#define NEED_ROOT() do {						\
	if (!pcbt_is_root())						\
		SKIP(return, "needs root to set limits and act as other users"); \
} while (0)

/* ---- what agents do, in their own process ---- */

struct req {
	char name[PCB_NAME_MAX];
	__u32 size;			/* ring data size */
	__u32 topic_id;
	int idx;			/* a held endpoint */
	unsigned long long bytes;
};

#define HELD_MAX	64

struct held {
	int fd;
	struct pcbt_ring ring;		/* ring.cons == NULL: none */
};

/* Each agent's own copy: the endpoints it holds. */
static struct held held[HELD_MAX];
static int nr_held;
static int ctl_fd = -1;

static int hold(int fd, const struct pcbt_ring *r)
{
	if (nr_held == HELD_MAX) {
		close(fd);
		return -EOVERFLOW;
	}
	held[nr_held].fd = fd;
	if (r)
		held[nr_held].ring = *r;
	else
		memset(&held[nr_held].ring, 0, sizeof(held[0].ring));
	return nr_held++;
}

/* The endpoint the agent creates and deletes topics through. */
static int ctl(void)
{
	if (ctl_fd < 0)
		ctl_fd = pcbt_open();
	return ctl_fd;
}

/* Opens an endpoint and keeps it: its index, or -errno. */
static int ag_open(void *arg)
{
	int fd = pcbt_open();

	(void)arg;
	return fd < 0 ? fd : hold(fd, NULL);
}

/* An endpoint with a mapped ring of req->size bytes: its index or -errno. */
static int ag_ring(void *arg)
{
	struct req *q = arg;
	struct pcbt_ring r;
	int fd = pcbt_ring_open(q->size, &r);

	return fd < 0 ? fd : hold(fd, &r);
}

/* Closes (and unmaps) held endpoint req->idx. */
static int ag_close(void *arg)
{
	struct req *q = arg;
	struct held *h;

	if (q->idx < 0 || q->idx >= nr_held || held[q->idx].fd < 0)
		return -EBADF;
	h = &held[q->idx];
	pcbt_ring_unmap(&h->ring);
	close(h->fd);
	h->fd = -1;
	return 0;
}

/* Anyone may subscribe, reliably too (execute), and publish. */
static int ag_create(void *arg)
{
	struct req *q = arg;
	int fd = ctl();

	return fd < 0 ? fd : pcbt_create(fd, q->name, SCHEMA, 64, 0777, NULL);
}

static int ag_delete(void *arg)
{
	struct req *q = arg;
	int fd = ctl();

	return fd < 0 ? fd : pcbt_delete(fd, q->name);
}

/* A new endpoint with a ring, subscribed to req->name: its index or -errno. */
static int ag_sub(void *arg)
{
	struct req *q = arg;
	struct pcbt_ring r;
	int fd = pcbt_ring_open(4096, &r);
	int ret;

	if (fd < 0)
		return fd;
	ret = pcbt_subscribe(fd, q->name, SCHEMA, 0, &q->topic_id);
	if (ret) {
		pcbt_ring_close(&r);
		return ret;
	}
	return hold(fd, &r);
}

/* Subscribes held ring req->idx to req->name as well. */
static int ag_sub_more(void *arg)
{
	struct req *q = arg;

	if (q->idx < 0 || q->idx >= nr_held)
		return -EBADF;
	return pcbt_subscribe(held[q->idx].fd, q->name, SCHEMA, 0,
			      &q->topic_id);
}

static int ag_unsub(void *arg)
{
	struct req *q = arg;

	if (q->idx < 0 || q->idx >= nr_held)
		return -EBADF;
	return pcbt_unsubscribe(held[q->idx].fd, q->topic_id);
}

/* Opens req->name for publishing on the control endpoint: the handle. */
static int ag_open_topic(void *arg)
{
	struct req *q = arg;
	int fd = ctl();
	__u32 h;
	int ret;

	if (fd < 0)
		return fd;
	ret = pcbt_open_topic(fd, q->name, SCHEMA, &h);
	return ret ? ret : (int)h;
}

static int ag_close_topic(void *arg)
{
	struct req *q = arg;
	int fd = ctl();

	return fd < 0 ? fd : pcbt_close_topic(fd, q->idx);
}

static int ag_memlock(void *arg)
{
	struct req *q = arg;

	return pcbt_set_memlock(q->bytes);
}

#define CAPS_RESOURCE	1
#define CAPS_IPC_LOCK	2
#define CAPS_IPC_OWNER	4

static int ag_caps(void *arg)
{
	(void)arg;
	return (pcbt_has_cap(CAP_SYS_RESOURCE) ? CAPS_RESOURCE : 0) |
	       (pcbt_has_cap(CAP_IPC_LOCK) ? CAPS_IPC_LOCK : 0) |
	       (pcbt_has_cap(CAP_IPC_OWNER) ? CAPS_IPC_OWNER : 0);
}

/* Leaves CAP_IPC_LOCK, staying root. */
static int ag_drop_ipc_lock(void *arg)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	(void)arg;
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

/* Becomes root of a new user namespace (0 mapped to its uid). */
static int ag_userns(void *arg)
{
	(void)arg;
	return pcbt_userns_self(0);
}

static int ag_getuid(void *arg)
{
	(void)arg;
	return (int)getuid();
}

/* ---- the test side ---- */

static int call(struct pcbt_agent *a, int (*fn)(void *), struct req *q)
{
	struct req dummy = { 0 };

	return pcbt_agent_call(a, fn, q ? q : &dummy, sizeof(*q));
}

/* Calls @fn until it gives something else than @busy, up to SETTLE_MS. */
static int call_until_not(struct pcbt_agent *a, int (*fn)(void *),
			  struct req *q, int busy)
{
	__u64 deadline = pcbt_now_ns(CLOCK_MONOTONIC) + SETTLE_MS * PCBT_MS;
	int ret;

	while ((ret = call(a, fn, q)) == busy &&
	       pcbt_now_ns(CLOCK_MONOTONIC) < deadline)
		pcbt_sleep_ms(10);
	return ret;
}

/* Starts an agent as @uid (root: keeps the caller's credentials). */
static int start_as(struct pcbt_agent *a, uid_t uid)
{
	struct pcbt_creds c = { .uid = uid, .gid = uid };
	int ret = pcbt_agent_start(a, uid ? &c : NULL);

	if (ret)
		return ret;
	ret = call(a, ag_getuid, NULL);
	if (ret != (int)uid)
		return -ECHILD;
	return 0;
}

/* An unprivileged agent has none of the capabilities the limits look at. */
#define START_UNPRIVILEGED(agent, uid) do {				\
	ASSERT_EQ(0, start_as((agent), (uid)));				\
	ASSERT_EQ(0, call((agent), ag_caps, NULL))			\
		TH_LOG("uid %d kept capabilities", (int)(uid));		\
} while (0)

#define START_ROOT(agent) do {						\
	ASSERT_EQ(0, start_as((agent), 0));				\
	ASSERT_EQ(CAPS_RESOURCE | CAPS_IPC_LOCK | CAPS_IPC_OWNER,	\
		  call((agent), ag_caps, NULL));			\
} while (0)

/* Count @idx once earlier tests' frees are done. */
static long long baseline(int idx)
{
	struct pcbt_usage u;
	int ret = pcbt_usage_quiesce(&u, 300, 10000);

	return ret ? ret : u.v[idx];
}

static long long usage_of(int idx)
{
	struct pcbt_usage u;
	int ret = pcbt_usage_read(&u);

	return ret ? ret : u.v[idx];
}

/* Count @idx once it is @want, or what it is after SETTLE_MS. */
static long long usage_settles(int idx, long long want)
{
	struct pcbt_usage u;
	int ret;

	u.v[idx] = want;
	ret = pcbt_usage_wait(&u, idx, SETTLE_MS, &u);
	return ret && ret != -ETIMEDOUT ? ret : u.v[idx];
}

/*
 * Agent @a creates topics (named @tag, remembered for cleanup) until one
 * fails; @last gets the last name it created.  How many it created; *err
 * the error that stopped it (0 after TRIES).
 */
static int take_topics(struct pcbt_agent *a, const char *tag, int *err,
		       char last[PCB_NAME_MAX])
{
	int n;

	for (n = 0; n < TRIES; n++) {
		struct req q = { 0 };

		pcbt_name(q.name, tag);
		*err = call(a, ag_create, &q);
		if (*err)
			return n;
		if (last)
			memcpy(last, q.name, PCB_NAME_MAX);
	}
	*err = 0;
	return n;
}

/* Agent @a opens endpoints until one fails; *last the index of its last. */
static int take_endpoints(struct pcbt_agent *a, int *err, int *last)
{
	int n;

	for (n = 0; n < TRIES; n++) {
		int ret = call(a, ag_open, NULL);

		if (ret < 0) {
			*err = ret;
			return n;
		}
		if (last)
			*last = ret;
	}
	*err = 0;
	return n;
}

/* Agent @a subscribes new rings to @name until one fails. */
static int take_subscriptions(struct pcbt_agent *a, const char *name,
			      int *err, struct req *last)
{
	int n;

	for (n = 0; n < TRIES; n++) {
		struct req q = { 0 };
		int ret;

		pcbt_copy_name(q.name, name);
		ret = call(a, ag_sub, &q);
		if (ret < 0) {
			*err = ret;
			return n;
		}
		if (last) {
			*last = q;
			last->idx = ret;
		}
	}
	*err = 0;
	return n;
}

TEST_F(limits, usage_format_and_access)
{
	char buf[1024], *line, *save = NULL;
	struct pcbt_usage u;
	int i = 0, ret;

	if (!pcbt_is_root()) {
		/* Root only: the mode is 0400. */
		EXPECT_EQ(-EACCES, pcbt_read_file(PCBT_USAGE_PATH, buf,
						  sizeof(buf)));
		return;
	}
	ret = pcbt_read_file(PCBT_USAGE_PATH, buf, sizeof(buf));
	ASSERT_LT(0, ret);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		char want[64];
		long long v;

		ASSERT_GT(PCBT_U_NR, i) TH_LOG("extra line '%s'", line);
		snprintf(want, sizeof(want), "%s %%lld", pcbt_usage_names[i]);
		EXPECT_EQ(1, sscanf(line, want, &v)) TH_LOG("line '%s'", line);
	}
	EXPECT_EQ(PCBT_U_NR, i);
	ASSERT_EQ(0, pcbt_usage_read(&u));
	/* Our endpoint is open: its bus, itself and its user count. */
	EXPECT_LE(1, u.v[PCBT_U_BUSES]);
	EXPECT_LE(1, u.v[PCBT_U_ENDPOINTS]);
	EXPECT_LE(1, u.v[PCBT_U_USERS]);
}

static int ag_read_usage(void *arg)
{
	char buf[256];
	int ret = pcbt_read_file(PCBT_USAGE_PATH, buf, sizeof(buf));

	(void)arg;
	return ret < 0 ? ret : 0;
}

TEST_F(limits, usage_unreadable_by_others)
{
	NEED_ROOT();
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	EXPECT_EQ(-EACCES, call(&self->a, ag_read_usage, NULL));
}

/*
 * Each kind of object moves its own count, and everything goes back to
 * the baseline once closed and deleted.  uid 65533 is used for "users":
 * nothing else runs as it.
 */
TEST_F_TIMEOUT(limits, usage_counts, 60)
{
	struct pcbt_usage u0, u;
	union pcbt_filter f;
	char name[PCB_NAME_MAX], diff[256];
	struct pcbt_ring r;
	long long page = sysconf(_SC_PAGESIZE);
	__u32 h;
	int fd;

	NEED_ROOT();
	ASSERT_EQ(0, pcbt_usage_quiesce(&u0, 300, 10000));

	pcbt_name(name, "usage");
	ASSERT_EQ(0, pcbt_create(self->fd, name, SCHEMA, 64, 0766, NULL));
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_TOPICS] + 1, u.v[PCBT_U_TOPICS]);

	/* A publish handle, counted until it is closed. */
	ASSERT_EQ(0, pcbt_open_topic(self->fd, name, SCHEMA, &h));
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_HANDLES] + 1, u.v[PCBT_U_HANDLES]);
	ASSERT_EQ(0, pcbt_close_topic(self->fd, h));
	EXPECT_EQ(u0.v[PCBT_U_HANDLES],
		  usage_settles(PCBT_U_HANDLES, u0.v[PCBT_U_HANDLES]));

	fd = pcbt_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_ENDPOINTS] + 1, u.v[PCBT_U_ENDPOINTS]);
	EXPECT_EQ(u0.v[PCBT_U_RINGS], u.v[PCBT_U_RINGS]);

	ASSERT_EQ(0, pcbt_ring_init(fd, 4 * page, &r));
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_RINGS] + 1, u.v[PCBT_U_RINGS]);
	/* The data area and the two header pages, as charged. */
	EXPECT_EQ(u0.v[PCBT_U_RING_PAGES] + 4 + 2, u.v[PCBT_U_RING_PAGES]);

	pcbt_filter_init(&f);
	pcbt_pred(&f, PCB_FIELD_KEY, PCB_OP_EQ, 1);
	ASSERT_EQ(0, pcbt_subscribe_filter(fd, name, SCHEMA, 0, &f, NULL));
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_SUBSCRIPTIONS] + 1, u.v[PCBT_U_SUBSCRIPTIONS]);
	EXPECT_EQ(u0.v[PCBT_U_FILTERS] + 1, u.v[PCBT_U_FILTERS]);
	EXPECT_EQ(u0.v[PCBT_U_BUSES], u.v[PCBT_U_BUSES]);

	/* A user with nothing charged yet. */
	START_UNPRIVILEGED(&self->b, OTHER);
	ASSERT_LE(0, call(&self->b, ag_open, NULL));
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_USERS] + 1, u.v[PCBT_U_USERS]);
	EXPECT_EQ(u0.v[PCBT_U_ENDPOINTS] + 2, u.v[PCBT_U_ENDPOINTS]);
	pcbt_agent_stop(&self->b);
	EXPECT_EQ(u0.v[PCBT_U_USERS],
		  usage_settles(PCBT_U_USERS, u0.v[PCBT_U_USERS]));

	/* Deleting the topic drops the subscription and its filter. */
	ASSERT_EQ(0, pcbt_delete(self->fd, name));
	EXPECT_EQ(u0.v[PCBT_U_TOPICS],
		  usage_settles(PCBT_U_TOPICS, u0.v[PCBT_U_TOPICS]));
	EXPECT_EQ(u0.v[PCBT_U_SUBSCRIPTIONS],
		  usage_settles(PCBT_U_SUBSCRIPTIONS,
				u0.v[PCBT_U_SUBSCRIPTIONS]));
	EXPECT_EQ(u0.v[PCBT_U_FILTERS],
		  usage_settles(PCBT_U_FILTERS, u0.v[PCBT_U_FILTERS]));

	pcbt_ring_unmap(&r);
	close(fd);
	EXPECT_EQ(0, pcbt_usage_wait(&u0, -1, SETTLE_MS, &u))
		TH_LOG("not back to the baseline:%s",
		       pcbt_usage_diff(&u0, &u, diff, sizeof(diff)));
}

/* ---- topics ---- */

TEST_F_TIMEOUT(limits, topics_max_and_fair_share, 60)
{
	char last[PCB_NAME_MAX], name[PCB_NAME_MAX];
	struct req q = { 0 };
	long long t0;
	int n, err;

	NEED_ROOT();
	t0 = baseline(PCBT_U_TOPICS);
	ASSERT_LE(0, t0);
	ASSERT_EQ(0, pcbt_param_push("max_topics", t0 + K));
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	START_ROOT(&self->r);

	/* 65534: half of the K free. */
	n = take_topics(&self->a, "share-a", &err, last);
	EXPECT_EQ(K / 2, n);
	EXPECT_EQ(-EDQUOT, err);
	EXPECT_EQ(t0 + K / 2, usage_of(PCBT_U_TOPICS));

	/* Deleting one gives it back, and no more. */
	memcpy(q.name, last, PCB_NAME_MAX);
	ASSERT_EQ(0, call(&self->a, ag_delete, &q));
	n = take_topics(&self->a, "share-a", &err, last);
	EXPECT_EQ(1, n);
	EXPECT_EQ(-EDQUOT, err);

	/* 65533: half of the rest. */
	n = take_topics(&self->b, "share-b", &err, NULL);
	EXPECT_EQ(K / 4, n);
	EXPECT_EQ(-EDQUOT, err);

	/* Root is not held to a share: it takes the rest, up to the limit. */
	n = take_topics(&self->r, "share-r", &err, NULL);
	EXPECT_EQ(K - K / 2 - K / 4, n);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_EQ(t0 + K, usage_of(PCBT_U_TOPICS));

	/* At the limit, everybody is told the limit is reached. */
	n = take_topics(&self->a, "share-a", &err, NULL);
	EXPECT_EQ(0, n);
	EXPECT_EQ(-ENOSPC, err);
	pcbt_name(name, "share-t");
	EXPECT_EQ(-ENOSPC, pcbt_create(self->fd, name, SCHEMA, 8, 0600, NULL));
}

/* A new max_topics applies to what is created afterwards. */
TEST_F(limits, max_topics_lowered_below_total)
{
	char a[PCB_NAME_MAX], b[PCB_NAME_MAX];
	long long t0;

	NEED_ROOT();
	pcbt_name(a, "low");
	pcbt_name(b, "low");
	ASSERT_EQ(0, pcbt_create(self->fd, a, SCHEMA, 8, 0600, NULL));
	t0 = baseline(PCBT_U_TOPICS);
	ASSERT_LE(1, t0);
	ASSERT_EQ(0, pcbt_param_push("max_topics", t0 - 1));
	EXPECT_EQ(-ENOSPC, pcbt_create(self->fd, b, SCHEMA, 8, 0600, NULL));
	/* What exists stays usable and deletable. */
	EXPECT_EQ(0, pcbt_open_topic(self->fd, a, SCHEMA, NULL));
	EXPECT_EQ(0, pcbt_delete(self->fd, a));
	EXPECT_EQ(-ENOSPC, pcbt_create(self->fd, b, SCHEMA, 8, 0600, NULL));
	ASSERT_EQ(0, pcbt_params_restore());
	EXPECT_EQ(0, pcbt_create(self->fd, b, SCHEMA, 8, 0600, NULL));
}

/* ---- endpoints ---- */

TEST_F_TIMEOUT(limits, endpoints_max_and_fair_share, 60)
{
	struct pcbt_usage u0;
	struct req q = { 0 };
	long long e0;
	int n, err, last = -1, fd;

	NEED_ROOT();
	ASSERT_EQ(0, pcbt_usage_quiesce(&u0, 300, 10000));
	e0 = u0.v[PCBT_U_ENDPOINTS];
	ASSERT_EQ(0, pcbt_param_push("max_endpoints", e0 + K));
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	START_ROOT(&self->r);

	n = take_endpoints(&self->a, &err, &last);
	EXPECT_EQ(K / 2, n);
	EXPECT_EQ(-EMFILE, err);
	EXPECT_EQ(e0 + K / 2, usage_of(PCBT_U_ENDPOINTS));

	/* Closing one gives it back. */
	q.idx = last;
	ASSERT_EQ(0, call(&self->a, ag_close, &q));
	EXPECT_LE(0, call_until_not(&self->a, ag_open, NULL, -EMFILE));
	EXPECT_EQ(-EMFILE, call(&self->a, ag_open, NULL));

	n = take_endpoints(&self->b, &err, NULL);
	EXPECT_EQ(K / 4, n);
	EXPECT_EQ(-EMFILE, err);

	n = take_endpoints(&self->r, &err, NULL);
	EXPECT_EQ(K - K / 2 - K / 4, n);
	EXPECT_EQ(-ENFILE, err);
	EXPECT_EQ(e0 + K, usage_of(PCBT_U_ENDPOINTS));

	/* At the limit: ENFILE for everybody. */
	EXPECT_EQ(-ENFILE, call(&self->a, ag_open, NULL));
	fd = pcbt_open();
	EXPECT_EQ(-ENFILE, fd);
	if (fd >= 0)
		close(fd);

	/* The agents' endpoints go with them. */
	pcbt_agent_stop(&self->a);
	pcbt_agent_stop(&self->b);
	pcbt_agent_stop(&self->r);
	EXPECT_EQ(0, pcbt_usage_wait(&u0, PCBT_U_ENDPOINTS, SETTLE_MS, NULL));
	fd = pcbt_open();
	EXPECT_LE(0, fd);
	if (fd >= 0)
		close(fd);
}

TEST_F_TIMEOUT(limits, max_endpoints_enfile, 60)
{
	long long e0;
	int fd, fd2;

	NEED_ROOT();
	e0 = baseline(PCBT_U_ENDPOINTS);
	ASSERT_LE(1, e0);
	ASSERT_EQ(0, pcbt_param_push("max_endpoints", e0));
	/* CAP_SYS_RESOURCE does not lift the limit. */
	EXPECT_EQ(-ENFILE, pcbt_open());
	ASSERT_EQ(0, pcbt_param_push("max_endpoints", e0 + 1));
	fd = pcbt_open();
	EXPECT_LE(0, fd);
	fd2 = pcbt_open();
	EXPECT_EQ(-ENFILE, fd2);
	if (fd2 >= 0)
		close(fd2);
	/* Lowered under what is open: open endpoints keep working. */
	ASSERT_EQ(0, pcbt_param_push("max_endpoints", 1));
	EXPECT_EQ(-ENFILE, pcbt_open());
	if (fd >= 0) {
		struct pcb_ring_setup rs;
		char name[PCB_NAME_MAX];

		EXPECT_EQ(0, pcbt_ring_setup(fd, 4096, &rs));
		pcbt_name(name, "enfile");
		EXPECT_EQ(0, pcbt_create(fd, name, SCHEMA, 8, 0600, NULL));
		EXPECT_EQ(0, pcbt_delete(fd, name));
		close(fd);
	}
}

TEST_F_TIMEOUT(limits, max_endpoints_per_user_emfile, 60)
{
	struct req q = { 0 };
	int n, err, last = -1;

	NEED_ROOT();
	ASSERT_EQ(0, pcbt_param_push("max_endpoints_per_user", 3));
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	START_ROOT(&self->r);

	n = take_endpoints(&self->a, &err, &last);
	EXPECT_EQ(3, n);
	EXPECT_EQ(-EMFILE, err);
	/* Per user: another user has its own three. */
	n = take_endpoints(&self->b, &err, NULL);
	EXPECT_EQ(3, n);
	EXPECT_EQ(-EMFILE, err);
	/* Closing one gives it back. */
	q.idx = last;
	ASSERT_EQ(0, call(&self->a, ag_close, &q));
	EXPECT_LE(0, call_until_not(&self->a, ag_open, NULL, -EMFILE));
	EXPECT_EQ(-EMFILE, call(&self->a, ag_open, NULL));
	/*
	 * Root is held to it too (CAP_SYS_RESOURCE lifts the fair share
	 * only); this test holds one endpoint of root's already.
	 */
	n = take_endpoints(&self->r, &err, NULL);
	EXPECT_GE(2, n);
	EXPECT_EQ(-EMFILE, err);
	/* Raising it lets the user open more at once. */
	ASSERT_EQ(0, pcbt_param_push("max_endpoints_per_user", 4));
	EXPECT_LE(0, call(&self->a, ag_open, NULL));
	EXPECT_EQ(-EMFILE, call(&self->a, ag_open, NULL));
}

/* ---- subscriptions of one topic ---- */

TEST_F_TIMEOUT(limits, subscribers_max_and_fair_share, 90)
{
	char name[PCB_NAME_MAX], other[PCB_NAME_MAX];
	struct req last = { 0 }, q = { 0 };
	int n, err;

	NEED_ROOT();
	pcbt_name(name, "subs");
	pcbt_name(other, "subs2");
	/* Others subscribe reliably: read and execute. */
	ASSERT_EQ(0, pcbt_create(self->fd, name, SCHEMA, 64, 0755, NULL));
	ASSERT_EQ(0, pcbt_create(self->fd, other, SCHEMA, 64, 0755, NULL));
	ASSERT_EQ(0, pcbt_param_push("max_subscribers", K));
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	START_ROOT(&self->r);

	n = take_subscriptions(&self->a, name, &err, &last);
	EXPECT_EQ(K / 2, n);
	EXPECT_EQ(-EDQUOT, err);
	EXPECT_EQ(K / 2, pcbt_nr_subs(self->fd, name));

	/* Unsubscribing gives one back. */
	ASSERT_EQ(0, call(&self->a, ag_unsub, &last));
	n = take_subscriptions(&self->a, name, &err, &last);
	EXPECT_EQ(1, n);
	EXPECT_EQ(-EDQUOT, err);
	/* So does closing the ring. */
	ASSERT_EQ(0, call(&self->a, ag_close, &last));
	pcbt_copy_name(q.name, name);
	EXPECT_LE(0, call_until_not(&self->a, ag_sub, &q, -EDQUOT));

	/* The share is per topic: another topic has its own. */
	q.idx = 0;
	pcbt_copy_name(q.name, other);
	EXPECT_EQ(0, call(&self->a, ag_sub_more, &q));

	n = take_subscriptions(&self->b, name, &err, NULL);
	EXPECT_EQ(K / 4, n);
	EXPECT_EQ(-EDQUOT, err);

	n = take_subscriptions(&self->r, name, &err, NULL);
	EXPECT_EQ(K - K / 2 - K / 4, n);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_EQ(K, pcbt_nr_subs(self->fd, name));

	n = take_subscriptions(&self->a, name, &err, NULL);
	EXPECT_EQ(0, n);
	EXPECT_EQ(-ENOSPC, err);

	/* Lowered under what exists: no new one, the old ones stay. */
	ASSERT_EQ(0, pcbt_param_push("max_subscribers", 1));
	n = take_subscriptions(&self->r, other, &err, NULL);
	EXPECT_EQ(0, n);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_EQ(K, pcbt_nr_subs(self->fd, name));
}

/* "So does owning the topic, for its subscriptions." */
TEST_F_TIMEOUT(limits, subscribers_topic_owner_exempt, 90)
{
	struct req q = { 0 };
	int n, err;

	NEED_ROOT();
	ASSERT_EQ(0, pcbt_param_push("max_subscribers", K));
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	pcbt_name(q.name, "subs-own");
	ASSERT_EQ(0, call(&self->a, ag_create, &q));
	/* Somebody else is held to its share ... */
	n = take_subscriptions(&self->b, q.name, &err, NULL);
	EXPECT_EQ(K / 2, n);
	EXPECT_EQ(-EDQUOT, err);
	/* ... the owner takes the rest, up to the limit. */
	n = take_subscriptions(&self->a, q.name, &err, NULL);
	EXPECT_EQ(K - K / 2, n);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_EQ(K, pcbt_nr_subs(self->fd, q.name));
}

/*
 * max_subscriptions_per_user bounds the subscriptions of all the rings of
 * one user, whatever the topics (the owner's exemption from the fair
 * share included): EDQUOT beyond, one back per unsubscribe.
 */
TEST_F_TIMEOUT(limits, subscriptions_per_user, 90)
{
	struct req last = { 0 }, q = { 0 };
	char other[PCB_NAME_MAX];
	int n, err;

	NEED_ROOT();
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	/* Topics of a's: no fair share between it and its subscriptions. */
	pcbt_name(q.name, "subs-user");
	pcbt_name(other, "subs-user");
	ASSERT_EQ(0, call(&self->a, ag_create, &q));
	memcpy(last.name, other, PCB_NAME_MAX);
	ASSERT_EQ(0, call(&self->a, ag_create, &last));
	ASSERT_EQ(0, pcbt_param_push("max_subscriptions_per_user", 3));

	n = take_subscriptions(&self->a, q.name, &err, &last);
	EXPECT_EQ(3, n);
	EXPECT_EQ(-EDQUOT, err);
	/* Per user, not per topic ... */
	n = take_subscriptions(&self->a, other, &err, NULL);
	EXPECT_EQ(0, n);
	EXPECT_EQ(-EDQUOT, err);
	/* ... nor per ring. */
	pcbt_copy_name(q.name, other);
	q.idx = last.idx;
	EXPECT_EQ(-EDQUOT, call(&self->a, ag_sub_more, &q));
	/* Another user has its own. */
	n = take_subscriptions(&self->b, other, &err, NULL);
	EXPECT_EQ(3, n);
	EXPECT_EQ(-EDQUOT, err);
	/* Unsubscribing gives one back (once freed), and no more. */
	ASSERT_EQ(0, call(&self->a, ag_unsub, &last));
	EXPECT_EQ(0, call_until_not(&self->a, ag_sub_more, &q, -EDQUOT));
	EXPECT_EQ(-EDQUOT, call(&self->a, ag_sub, &q));
	/* Lowered under what exists: nothing new, the old ones stay. */
	ASSERT_EQ(0, pcbt_param_push("max_subscriptions_per_user", 1));
	EXPECT_EQ(4, pcbt_nr_subs(self->fd, other));
	EXPECT_EQ(-EDQUOT, call(&self->b, ag_sub, &q));
	/* Raised: more again. */
	ASSERT_EQ(0, pcbt_param_push("max_subscriptions_per_user", 4));
	EXPECT_LE(0, call(&self->a, ag_sub, &q));
	EXPECT_EQ(-EDQUOT, call(&self->a, ag_sub, &q));
}

/*
 * max_handles_per_user bounds the publish handles one user has open over
 * all its endpoints: EDQUOT beyond, one back per close; a deleted topic's
 * handles still count until they are closed.
 */
TEST_F_TIMEOUT(limits, handles_per_user, 60)
{
	struct req q = { 0 };
	long long h0;
	int i, h[2];

	NEED_ROOT();
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	START_UNPRIVILEGED(&self->b, OTHER);
	pcbt_name(q.name, "handles");
	ASSERT_EQ(0, call(&self->a, ag_create, &q));
	h0 = baseline(PCBT_U_HANDLES);
	ASSERT_LE(0, h0);
	ASSERT_EQ(0, pcbt_param_push("max_handles_per_user", 2));

	for (i = 0; i < 2; i++) {
		h[i] = call(&self->a, ag_open_topic, &q);
		ASSERT_LE(0, h[i]);
	}
	EXPECT_EQ(h0 + 2, usage_of(PCBT_U_HANDLES));
	EXPECT_EQ(-EDQUOT, call(&self->a, ag_open_topic, &q));
	/* Per user: b has its own two. */
	EXPECT_LE(0, call(&self->b, ag_open_topic, &q));
	EXPECT_LE(0, call(&self->b, ag_open_topic, &q));
	EXPECT_EQ(-EDQUOT, call(&self->b, ag_open_topic, &q));
	/* Closing one gives it back. */
	q.idx = h[0];
	ASSERT_EQ(0, call(&self->a, ag_close_topic, &q));
	h[0] = call_until_not(&self->a, ag_open_topic, &q, -EDQUOT);
	EXPECT_LE(0, h[0]);
	EXPECT_EQ(-EDQUOT, call(&self->a, ag_open_topic, &q));
	/* Deleting the topic does not: the handles still name it. */
	ASSERT_EQ(0, call(&self->a, ag_delete, &q));
	ASSERT_EQ(0, call(&self->a, ag_create, &q));
	EXPECT_EQ(-EDQUOT, call(&self->a, ag_open_topic, &q));
	EXPECT_EQ(h0 + 4, usage_of(PCBT_U_HANDLES));
	/* The agents' handles go with them. */
	pcbt_agent_stop(&self->a);
	pcbt_agent_stop(&self->b);
	EXPECT_EQ(h0, usage_settles(PCBT_U_HANDLES, h0));
}

/*
 * CAP_SYS_RESOURCE counts in the initial user namespace only: root of a
 * child user namespace is held to the fair share like its outer uid.
 */
TEST_F_TIMEOUT(limits, fair_share_not_lifted_in_child_userns, 60)
{
	long long t0;
	int n, err, ret;

	NEED_ROOT();
	t0 = baseline(PCBT_U_TOPICS);
	ASSERT_LE(0, t0);
	ASSERT_EQ(0, pcbt_param_push("max_topics", t0 + K));
	START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	ret = call(&self->a, ag_userns, NULL);
	if (ret == -EPERM || ret == -EINVAL || ret == -ENOSPC)
		SKIP(return, "cannot make a user namespace here");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(CAPS_RESOURCE, call(&self->a, ag_caps, NULL) & CAPS_RESOURCE);
	n = take_topics(&self->a, "share-ns", &err, NULL);
	EXPECT_EQ(K / 2, n);
	EXPECT_EQ(-EDQUOT, err);
}

/* ---- ring memory ---- */

/*
 * The memlock sequence, for an agent without CAP_IPC_LOCK.  The budget
 * is 10 pages: one ring of 8 data pages (+ 2 header pages) fits exactly,
 * three of one page (3 pages each) fit, a fourth does not.
 */
static void memlock_sequence(struct __test_metadata *_metadata,
			     struct pcbt_agent *a)
{
	long page = sysconf(_SC_PAGESIZE);
	struct req big = { .size = 8 * page };
	struct req one = { .size = page };
	struct req q = { .bytes = 10ULL * page };
	int first, ret;

	ASSERT_EQ(0, call(a, ag_memlock, &q));
	ASSERT_EQ(0, call(a, ag_caps, NULL) & CAPS_IPC_LOCK);

	/* Earlier tests' rings of this user may still be being freed. */
	first = call_until_not(a, ag_ring, &big, -ENOMEM);
	ASSERT_LE(0, first) TH_LOG("a ring of exactly the limit: %d", first);
	EXPECT_EQ(-ENOMEM, call(a, ag_ring, &one));

	/* Freeing it (close and unmap; RCU-deferred) returns the charge. */
	q.idx = first;
	ASSERT_EQ(0, call(a, ag_close, &q));
	ret = call_until_not(a, ag_ring, &one, -ENOMEM);
	EXPECT_LE(0, ret);
	EXPECT_LE(0, call(a, ag_ring, &one));
	EXPECT_LE(0, call(a, ag_ring, &one));
	EXPECT_EQ(-ENOMEM, call(a, ag_ring, &one));
	EXPECT_EQ(-ENOMEM, call(a, ag_ring, &big));
}

TEST_F_TIMEOUT(limits, memlock_charged_to_user, 60)
{
	if (pcbt_is_root()) {
		START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
	} else {
		if (pcbt_has_cap(CAP_IPC_LOCK))
			SKIP(return, "runs with CAP_IPC_LOCK");
		ASSERT_EQ(0, pcbt_agent_start(&self->a, NULL));
	}
	memlock_sequence(_metadata, &self->a);
}

/* The charge is the user's, not the process's: two processes share it. */
TEST_F_TIMEOUT(limits, memlock_shared_by_processes_of_a_user, 60)
{
	long page = sysconf(_SC_PAGESIZE);
	struct req big = { .size = 8 * page };
	struct req one = { .size = page };
	struct req q = { .bytes = 10ULL * page };

	if (pcbt_is_root()) {
		START_UNPRIVILEGED(&self->a, PCBT_NOBODY);
		START_UNPRIVILEGED(&self->b, PCBT_NOBODY);
	} else {
		if (pcbt_has_cap(CAP_IPC_LOCK))
			SKIP(return, "runs with CAP_IPC_LOCK");
		ASSERT_EQ(0, pcbt_agent_start(&self->a, NULL));
		ASSERT_EQ(0, pcbt_agent_start(&self->b, NULL));
	}
	ASSERT_EQ(0, call(&self->a, ag_memlock, &q));
	ASSERT_EQ(0, call(&self->b, ag_memlock, &q));
	ASSERT_LE(0, call_until_not(&self->a, ag_ring, &big, -ENOMEM));
	EXPECT_EQ(-ENOMEM, call(&self->b, ag_ring, &one));
	pcbt_agent_stop(&self->a);
	EXPECT_LE(0, call_until_not(&self->b, ag_ring, &one, -ENOMEM));
}

TEST_F(limits, memlock_not_for_cap_ipc_lock)
{
	long page = sysconf(_SC_PAGESIZE);
	struct req big = { .size = 16 * page };
	struct req q = { .bytes = 4ULL * page };

	NEED_ROOT();
	START_ROOT(&self->r);
	ASSERT_EQ(0, call(&self->r, ag_memlock, &q));
	EXPECT_LE(0, call(&self->r, ag_ring, &big));
	EXPECT_LE(0, call(&self->r, ag_ring, &big));
}

/*
 * "Callers with CAP_IPC_LOCK are neither limited nor charged": root's
 * rings made with it leave root's whole budget to a ring made without.
 */
TEST_F(limits, memlock_cap_ipc_lock_not_charged)
{
	long page = sysconf(_SC_PAGESIZE);
	struct req big = { .size = 16 * page };
	struct req fit = { .size = 8 * page };
	struct req q = { .bytes = 10ULL * page };

	NEED_ROOT();
	START_ROOT(&self->r);
	ASSERT_LE(0, call(&self->r, ag_ring, &big));
	ASSERT_LE(0, call(&self->r, ag_ring, &big));
	ASSERT_EQ(0, call(&self->r, ag_drop_ipc_lock, NULL));
	ASSERT_EQ(0, call(&self->r, ag_caps, NULL) & CAPS_IPC_LOCK);
	ASSERT_EQ(0, call(&self->r, ag_memlock, &q));
	/* Without it, root is limited: 10 pages fit, 3 more do not. */
	EXPECT_LE(0, call_until_not(&self->r, ag_ring, &fit, -ENOMEM));
	fit.size = page;
	EXPECT_EQ(-ENOMEM, call(&self->r, ag_ring, &fit));
}

/* ---- sizes changed at run time ---- */

TEST_F(limits, max_ring_size_at_run_time)
{
	struct pcb_ring_setup rs;
	struct pcbt_ring old;
	char name[PCB_NAME_MAX];
	const struct pcb_record *rec;
	__u32 h;
	int ofd, fd;

	NEED_ROOT();
	pcbt_name(name, "ringsz");
	ASSERT_EQ(0, pcbt_create(self->fd, name, SCHEMA, 64, 0600, NULL));
	ofd = pcbt_ring_open(16384, &old);
	ASSERT_LE(0, ofd);

	ASSERT_EQ(0, pcbt_param_push("max_ring_size", 8192));
	fd = pcbt_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, pcbt_ring_setup(fd, 16384, &rs));
	EXPECT_EQ(0, pcbt_ring_setup(fd, 8192, &rs));
	close(fd);

	/* A ring made before keeps working. */
	ASSERT_EQ(0, pcbt_subscribe(ofd, name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, pcbt_open_topic(self->fd, name, SCHEMA, &h));
	ASSERT_EQ(0, pcbt_publish(self->fd, h, "x", 1, 0, 0, NULL));
	rec = pcbt_ring_next(&old, PCBT_SEC);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(1U, rec->payload_len);
	pcbt_ring_close(&old);

	ASSERT_EQ(0, pcbt_params_restore());
	fd = pcbt_open();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, pcbt_ring_setup(fd, 16384, &rs));
	close(fd);
}

TEST_F(limits, max_msg_size_at_run_time)
{
	char big[PCB_NAME_MAX], a[PCB_NAME_MAX], b[PCB_NAME_MAX];
	static char payload[1000];
	__u32 h;

	NEED_ROOT();
	pcbt_name(big, "msgsz");
	pcbt_name(a, "msgsz");
	pcbt_name(b, "msgsz");
	ASSERT_EQ(0, pcbt_create(self->fd, big, SCHEMA, 1000, 0600, NULL));
	ASSERT_EQ(0, pcbt_param_push("max_msg_size", 100));
	EXPECT_EQ(-EINVAL, pcbt_create(self->fd, a, SCHEMA, 101, 0600, NULL));
	EXPECT_EQ(0, pcbt_create(self->fd, a, SCHEMA, 100, 0600, NULL));
	/* A topic made before keeps its size. */
	ASSERT_EQ(0, pcbt_open_topic(self->fd, big, SCHEMA, &h));
	EXPECT_EQ(0, pcbt_publish(self->fd, h, payload, sizeof(payload), 0, 0,
				  NULL));
	ASSERT_EQ(0, pcbt_params_restore());
	EXPECT_EQ(0, pcbt_create(self->fd, b, SCHEMA, 101, 0600, NULL));
}

TEST_HARNESS_MAIN
