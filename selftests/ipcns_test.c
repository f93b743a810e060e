// SPDX-License-Identifier: GPL-2.0
/*
 * Namespaces (<linux/pcb.h>, "Namespaces"): one bus per IPC namespace,
 * with its own topics, topic ids, statistics and /proc/pcb listings; an
 * endpoint keeps the bus it was opened on; a bus goes once its namespace
 * has died and no endpoint of it is left.  Topic rights follow the
 * caller's kernel credentials: root of a child user namespace has no
 * right on the parent's topics, but CAP_IPC_OWNER and CAP_CHOWN count in
 * the user namespace that owns the bus's IPC namespace.
 *
 * The process in the other namespace is an agent (pcbt_agent) that
 * inherits the test's endpoint, opened before the agent unshares.  As
 * root it unshares the IPC namespace alone; as another user it needs a
 * user namespace too, and the cases skip where user namespaces cannot be
 * made (a chroot, for one).  Cases that read /proc/pcb/usage need root.
 */
#include "pcb_util.h"

#include <sys/socket.h>
#include <sys/uio.h>

#define SCHEMA		0x1bcULL
#define SCHEMA2		0x2bcULL
#define SETTLE_MS	15000		/* a dead namespace's bus: 10 s at most */

FIXTURE(ipcns) {
	int fd;				/* opened before any unshare */
	char name[PCB_NAME_MAX];	/* a topic of the test's bus */
	__u32 topic_id;
	struct pcbt_ring ring;		/* subscribed to it */
	struct pcbt_agent x;
};

/* The agent's copy of the test's endpoint. */
static int old_fd = -1;

FIXTURE_SETUP(ipcns)
{
	int fd;

	self->x.pid = -1;
	self->x.to = self->x.from = -1;
	self->ring.fd = -1;
	PCBT_OPEN(self->fd);
	old_fd = self->fd;
	pcbt_name(self->name, "ipcns");
	/* Ours to subscribe reliably, anyone's to publish. */
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, 64, 0766,
				 &self->topic_id));
	fd = pcbt_ring_open(4096, &self->ring);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));
}

FIXTURE_TEARDOWN(ipcns)
{
	pcbt_agent_stop(&self->x);
	pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

/* ---- the agent's side ---- */

enum { VIA_OLD, VIA_NEW };

struct req {
	char name[PCB_NAME_MAX];
	int via;			/* which endpoint */
	int flags;			/* unshare() flags */
	__u64 schema;
	__u32 mode, uid, gid, max_msg_size;
	__u32 topic_id;
	__u64 key;
	struct pcb_topic_info info;	/* out */
	__u64 published, nr_topics;	/* out: STATS */
	int count, found;		/* out: LIST, /proc */
};

static int new_fd = -1;			/* opened in the new namespace */
static struct pcbt_ring new_ring;

static int via(const struct req *q)
{
	return q->via == VIA_OLD ? old_fd : new_fd;
}

static int ag_unshare(void *arg)
{
	struct req *q = arg;

	return unshare(q->flags) ? -errno : 0;
}

static int ag_userns_self(void *arg)
{
	struct req *q = arg;

	return pcbt_userns_self(q->flags);
}

/* An endpoint with a ring, in the agent's namespace of the moment. */
static int ag_open(void *arg)
{
	int fd = pcbt_ring_open(4096, &new_ring);

	(void)arg;
	if (fd < 0)
		return fd;
	new_fd = fd;
	return 0;
}

static int ag_info(void *arg)
{
	struct req *q = arg;

	return pcbt_info(via(q), q->name, &q->info);
}

static int ag_create(void *arg)
{
	struct req *q = arg;
	struct pcb_topic_create tc = {
		.schema_id = q->schema,
		.max_msg_size = q->max_msg_size ? q->max_msg_size : 64,
		.mode = q->mode,
		.uid = q->uid,
		.gid = q->gid,
	};
	int ret;

	pcbt_copy_name(tc.name, q->name);
	ret = pcbt_create_raw(via(q), &tc);
	q->topic_id = tc.topic_id;
	return ret;
}

static int ag_delete(void *arg)
{
	struct req *q = arg;

	return pcbt_delete(via(q), q->name);
}

static int ag_open_topic(void *arg)
{
	struct req *q = arg;

	return pcbt_open_topic(via(q), q->name, q->schema, NULL);
}

/* Subscribes the agent's ring. */
static int ag_subscribe(void *arg)
{
	struct req *q = arg;

	return pcbt_subscribe(new_fd, q->name, q->schema, 0, &q->topic_id);
}

/* Publishes one message with key req->key. */
static int ag_publish(void *arg)
{
	struct req *q = arg;
	struct pcb_publish p = { 0 };
	__u32 h;
	int ret = pcbt_open_topic(via(q), q->name, q->schema, &h);

	if (ret)
		return ret;
	p.handle = h;
	p.key = q->key;
	p.payload = (uintptr_t)&q->key;
	p.len = sizeof(q->key);
	ret = pcbt_ioctl(via(q), PCB_IOC_PUBLISH, &p);
	pcbt_close_topic(via(q), h);
	return ret;
}

/* The next record of the agent's ring: 0 with key and topic, or -EAGAIN. */
static int ag_receive(void *arg)
{
	struct req *q = arg;
	const struct pcb_record *rec = pcbt_ring_peek(&new_ring);

	if (!rec)
		return -EAGAIN;
	q->key = rec->key;
	q->topic_id = rec->topic_id;
	pcbt_ring_pop(&new_ring);
	pcbt_ring_release(&new_ring);
	return 0;
}

/* TOPIC_LIST: how many topics, and whether req->name is one of them. */
static int ag_list(void *arg)
{
	struct req *q = arg;
	struct pcb_topic_info all[64];
	struct pcb_topic_list l = {
		.entries = (uintptr_t)all,
		.capacity = 64,
	};
	int ret, i;

	q->count = 0;
	q->found = 0;
	do {
		ret = pcbt_ioctl(via(q), PCB_IOC_TOPIC_LIST, &l);
		if (ret)
			return ret;
		for (i = 0; i < (int)l.count; i++)
			if (!strcmp(all[i].name, q->name))
				q->found = 1;
		q->count += l.count;
		l.start_id = l.next_id;
	} while (l.next_id);
	return 0;
}

/*
 * /proc/pcb/topics as this process sees it: topic lines (header
 * excluded), and whether one names req->name (with req->schema).
 */
static int proc_topics(struct req *q)
{
	static char buf[1 << 16];
	char *line, *save = NULL;
	int ret = pcbt_read_file("/proc/pcb/topics", buf, sizeof(buf));

	if (ret < 0)
		return ret;
	q->count = -1;
	q->found = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[PCB_NAME_MAX];
		unsigned long long schema;
		unsigned int id;

		q->count++;
		if (sscanf(line, "%u %63s %llx", &id, name, &schema) == 3 &&
		    !strcmp(name, q->name) && schema == q->schema)
			q->found = 1;
	}
	return 0;
}

static int ag_proc_topics(void *arg)
{
	return proc_topics(arg);
}

static int ag_stats(void *arg)
{
	struct req *q = arg;
	struct pcb_stats st = { 0 };
	struct pcb_stats_query sq = {
		.stats = (uintptr_t)&st,
		.size = sizeof(st),
		.topic_id = q->topic_id,
	};
	int ret = pcbt_ioctl(via(q), PCB_IOC_STATS, &sq);

	q->published = st.published;
	q->nr_topics = st.nr_topics;
	return ret;
}

/* Sends the agent's new endpoint over the socket req->flags. */
static int ag_send_fd(void *arg)
{
	struct req *q = arg;
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &new_fd, sizeof(int));
	return sendmsg(q->flags, &mh, 0) == 1 ? 0 : -errno;
}

static int ag_has_ipc_owner(void *arg)
{
	(void)arg;
	return pcbt_has_cap(CAP_IPC_OWNER);
}

/* ---- the test's side ---- */

static int call(struct pcbt_agent *a, int (*fn)(void *), struct req *q)
{
	return pcbt_agent_call(a, fn, q, sizeof(*q));
}

static struct req named(const char *name, int v, __u64 schema)
{
	struct req q = { .via = v, .schema = schema };

	pcbt_copy_name(q.name, name);
	return q;
}

/*
 * Starts the agent and moves it to a new IPC namespace (with a user
 * namespace when not root), where it opens an endpoint with a ring.
 * 0, or KSFT_SKIP when no user namespace can be made here.
 */
static int agent_in_new_ipcns(struct pcbt_agent *x)
{
	struct req q = { .flags = CLONE_NEWIPC };
	int ret = pcbt_agent_start(x, NULL);

	if (ret)
		return ret;
	if (pcbt_is_root())
		ret = call(x, ag_unshare, &q);
	else
		ret = call(x, ag_userns_self, &q);
	if (ret == -EPERM || ret == -EINVAL || ret == -ENOSPC)
		return KSFT_SKIP;
	if (ret)
		return ret;
	return call(x, ag_open, &q);
}

#define NEW_IPCNS(x) do {						\
	int __r = agent_in_new_ipcns(x);				\
	if (__r == KSFT_SKIP)						\
		SKIP(return, "cannot make a user namespace here");	\
	ASSERT_EQ(0, __r);						\
} while (0)

/* No record waits in the test's ring. */
#define EXPECT_RING_EMPTY(self) do {					\
	const struct pcb_record *__rec = pcbt_ring_peek(&(self)->ring);	\
	EXPECT_EQ(NULL, __rec) TH_LOG("unexpected record, key %llu",	\
				      __rec ? (unsigned long long)__rec->key : 0); \
} while (0)

TEST_F(ipcns, parent_topics_invisible)
{
	struct req q = named(self->name, VIA_NEW, SCHEMA);

	NEW_IPCNS(&self->x);
	EXPECT_EQ(-ENOENT, call(&self->x, ag_info, &q));
	EXPECT_EQ(-ENOENT, call(&self->x, ag_open_topic, &q));
	EXPECT_EQ(-ENOENT, call(&self->x, ag_subscribe, &q));
	EXPECT_EQ(-ENOENT, call(&self->x, ag_delete, &q));
	/* A new bus is empty. */
	ASSERT_EQ(0, call(&self->x, ag_list, &q));
	EXPECT_EQ(0, q.count);
	EXPECT_EQ(0, q.found);
	ASSERT_EQ(0, call(&self->x, ag_proc_topics, &q));
	EXPECT_EQ(0, q.count);
	EXPECT_EQ(0, q.found);
	/* Here, it is seen: the checks above could fail. */
	ASSERT_EQ(0, proc_topics(&q));
	EXPECT_EQ(1, q.found);
	EXPECT_EQ(0, pcbt_delete(self->fd, self->name));
}

TEST_F(ipcns, same_name_independent_no_crossing)
{
	struct req q = named(self->name, VIA_NEW, SCHEMA2);
	struct pcb_topic_info info;
	const struct pcb_record *rec;
	__u32 h;

	NEW_IPCNS(&self->x);
	q.mode = 0700;
	q.uid = q.gid = PCB_OWNER_CALLER;
	q.max_msg_size = 32;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	ASSERT_EQ(0, call(&self->x, ag_subscribe, &q));
	/* Each bus has its own topic of that name. */
	ASSERT_EQ(0, call(&self->x, ag_info, &q));
	EXPECT_EQ(SCHEMA2, q.info.schema_id);
	EXPECT_EQ(32U, q.info.max_msg_size);
	EXPECT_EQ(1U, q.info.nr_subscribers);
	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
	EXPECT_EQ(SCHEMA, info.schema_id);
	EXPECT_EQ(64U, info.max_msg_size);
	EXPECT_EQ(1U, info.nr_subscribers);
	/* Each /proc/pcb/topics shows its own. */
	ASSERT_EQ(0, call(&self->x, ag_proc_topics, &q));
	EXPECT_EQ(1, q.count);
	EXPECT_EQ(1, q.found);
	q.schema = SCHEMA;
	ASSERT_EQ(0, call(&self->x, ag_proc_topics, &q));
	EXPECT_EQ(0, q.found);
	ASSERT_EQ(0, proc_topics(&q));
	EXPECT_EQ(1, q.found);
	q.schema = SCHEMA2;
	ASSERT_EQ(0, proc_topics(&q));
	EXPECT_EQ(0, q.found);

	/* Messages stay on their bus. */
	ASSERT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA, &h));
	ASSERT_EQ(0, pcbt_publish_deps(self->fd, h, "m", 1, 11, NULL, 0, 0,
				       NULL));
	EXPECT_EQ(-EAGAIN, call(&self->x, ag_receive, &q));
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(11ULL, rec->key);
	pcbt_ring_pop(&self->ring);

	q.key = 22;
	ASSERT_EQ(0, call(&self->x, ag_publish, &q));
	EXPECT_RING_EMPTY(self);
	ASSERT_EQ(0, call(&self->x, ag_receive, &q));
	EXPECT_EQ(22ULL, q.key);
	EXPECT_EQ(-EAGAIN, call(&self->x, ag_receive, &q));

	/* Deleting one leaves the other. */
	ASSERT_EQ(0, call(&self->x, ag_delete, &q));
	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
}

TEST_F(ipcns, fd_keeps_its_bus)
{
	struct req q = named(self->name, VIA_OLD, SCHEMA);
	const struct pcb_record *rec;

	NEW_IPCNS(&self->x);
	/* The endpoint opened before unshare() still reaches our bus ... */
	ASSERT_EQ(0, call(&self->x, ag_info, &q));
	EXPECT_EQ(self->topic_id, q.info.topic_id);
	q.key = 33;
	ASSERT_EQ(0, call(&self->x, ag_publish, &q));
	rec = pcbt_ring_peek(&self->ring);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ(33ULL, rec->key);
	EXPECT_EQ(self->topic_id, rec->topic_id);
	pcbt_ring_pop(&self->ring);
	ASSERT_EQ(0, call(&self->x, ag_list, &q));
	EXPECT_EQ(1, q.found);
	/* ... while one opened after does not. */
	q.via = VIA_NEW;
	EXPECT_EQ(-ENOENT, call(&self->x, ag_info, &q));
	/* A topic made through the old endpoint lands on our bus. */
	pcbt_name(q.name, "ipcns-old");
	q.via = VIA_OLD;
	q.mode = 0600;
	q.uid = q.gid = PCB_OWNER_CALLER;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	EXPECT_EQ(0, pcbt_info(self->fd, q.name, &q.info));
	q.via = VIA_NEW;
	EXPECT_EQ(-ENOENT, call(&self->x, ag_info, &q));
}

TEST_F(ipcns, topic_ids_and_stats_per_bus)
{
	struct req q = named(self->name, VIA_NEW, SCHEMA);
	struct pcb_stats before, after;
	struct pcb_stats_query sq = {
		.stats = (uintptr_t)&before,
		.size = sizeof(before),
	};
	__u32 child_id;
	int i;

	NEW_IPCNS(&self->x);
	/* A new bus counts from nothing. */
	ASSERT_EQ(0, call(&self->x, ag_stats, &q));
	EXPECT_EQ(0ULL, q.nr_topics);
	EXPECT_EQ(0ULL, q.published);

	q.mode = 0600;
	q.uid = q.gid = PCB_OWNER_CALLER;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	child_id = q.topic_id;
	EXPECT_NE(0U, child_id);
	/* Our topic's id means nothing on the other bus. */
	if (child_id != self->topic_id) {
		q.topic_id = self->topic_id;
		EXPECT_EQ(-ENOENT, call(&self->x, ag_stats, &q));
	}

	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_STATS, &sq));
	for (i = 0; i < 3; i++) {
		q.key = i;
		ASSERT_EQ(0, call(&self->x, ag_publish, &q));
	}
	q.topic_id = 0;
	ASSERT_EQ(0, call(&self->x, ag_stats, &q));
	EXPECT_EQ(1ULL, q.nr_topics);
	EXPECT_EQ(3ULL, q.published);
	q.topic_id = child_id;
	ASSERT_EQ(0, call(&self->x, ag_stats, &q));
	EXPECT_EQ(3ULL, q.published);
	/* Our bus did not see them. */
	sq.stats = (uintptr_t)&after;
	ASSERT_EQ(0, pcbt_ioctl(self->fd, PCB_IOC_STATS, &sq));
	EXPECT_EQ(before.published, after.published);
	EXPECT_EQ(before.nr_topics, after.nr_topics);
	/* Through the old endpoint, the agent reads our bus's figures. */
	q.via = VIA_OLD;
	q.topic_id = 0;
	ASSERT_EQ(0, call(&self->x, ag_stats, &q));
	EXPECT_EQ(after.nr_topics, q.nr_topics);
}

/* Root only from here: they read /proc/pcb/usage. */
#define NEED_ROOT() do {						\
	if (!pcbt_is_root())						\
		SKIP(return, "needs root to read " PCBT_USAGE_PATH);	\
} while (0)

static void fill_new_bus(struct __test_metadata *_metadata,
			 struct pcbt_agent *x)
{
	struct req q = named("", VIA_NEW, SCHEMA);
	int i;

	q.mode = 0766;
	q.uid = q.gid = PCB_OWNER_CALLER;
	for (i = 0; i < 3; i++) {
		snprintf(q.name, sizeof(q.name), "ipcns-%d-%d", (int)getpid(), i);
		ASSERT_EQ(0, call(x, ag_create, &q));
		ASSERT_EQ(0, call(x, ag_subscribe, &q));
		q.key = i;
		ASSERT_EQ(0, call(x, ag_publish, &q));
	}
}

TEST_F_TIMEOUT(ipcns, bus_goes_with_its_namespace, 60)
{
	struct pcbt_usage u0, u;
	char diff[256];

	NEED_ROOT();
	ASSERT_EQ(0, pcbt_usage_quiesce(&u0, 300, 10000));
	NEW_IPCNS(&self->x);
	fill_new_bus(_metadata, &self->x);
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_BUSES] + 1, u.v[PCBT_U_BUSES]);
	EXPECT_EQ(u0.v[PCBT_U_TOPICS] + 3, u.v[PCBT_U_TOPICS]);
	EXPECT_EQ(u0.v[PCBT_U_ENDPOINTS] + 1, u.v[PCBT_U_ENDPOINTS]);
	EXPECT_EQ(u0.v[PCBT_U_SUBSCRIPTIONS] + 3, u.v[PCBT_U_SUBSCRIPTIONS]);
	EXPECT_EQ(u0.v[PCBT_U_RINGS] + 1, u.v[PCBT_U_RINGS]);

	/* Its last process leaves: the namespace dies, the bus with it. */
	pcbt_agent_stop(&self->x);
	EXPECT_EQ(0, pcbt_usage_wait(&u0, -1, SETTLE_MS, &u))
		TH_LOG("not back to the baseline:%s",
		       pcbt_usage_diff(&u0, &u, diff, sizeof(diff)));
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1)
		return -errno;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

TEST_F_TIMEOUT(ipcns, endpoint_outlives_namespace, 60)
{
	struct pcbt_usage u0, u;
	struct pcb_topic_info info;
	struct req q = { 0 };
	char diff[256], name[PCB_NAME_MAX];
	int sv[2], fd;

	NEED_ROOT();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pcbt_usage_quiesce(&u0, 300, 10000));
	NEW_IPCNS(&self->x);
	fill_new_bus(_metadata, &self->x);
	q.flags = sv[1];
	ASSERT_EQ(0, call(&self->x, ag_send_fd, &q));
	fd = recv_fd(sv[0]);
	ASSERT_LE(0, fd);
	close(sv[0]);
	close(sv[1]);

	/* The namespace dies; our endpoint of its bus keeps the bus. */
	pcbt_agent_stop(&self->x);
	pcbt_sleep_ms(200);
	ASSERT_EQ(0, pcbt_usage_read(&u));
	EXPECT_EQ(u0.v[PCBT_U_BUSES] + 1, u.v[PCBT_U_BUSES]);
	EXPECT_EQ(u0.v[PCBT_U_TOPICS] + 3, u.v[PCBT_U_TOPICS]);
	snprintf(name, sizeof(name), "ipcns-%d-%d", (int)getpid(), 1);
	EXPECT_EQ(0, pcbt_info(fd, name, &info));
	EXPECT_EQ(1U, info.nr_subscribers);
	EXPECT_EQ(-ENOENT, pcbt_info(self->fd, name, &info));

	close(fd);
	EXPECT_EQ(0, pcbt_usage_wait(&u0, -1, SETTLE_MS, &u))
		TH_LOG("not back to the baseline:%s",
		       pcbt_usage_diff(&u0, &u, diff, sizeof(diff)));
}

/* ---- user namespaces ---- */

/*
 * The agent becomes root of a new user namespace: as root, it first drops
 * to 65534 and the test maps 0 -> 65534 and 1 -> 65533 (two ids, which
 * only a privileged parent can write); as another user it maps 0 to
 * itself.  With @ipc, it also gets a new IPC namespace, owned by the new
 * user namespace.  0, or KSFT_SKIP.
 */
static int agent_in_userns(struct pcbt_agent *x, bool ipc)
{
	struct pcbt_creds c = { .uid = PCBT_NOBODY, .gid = PCBT_NOBODY };
	struct req q = { .flags = CLONE_NEWUSER };
	int ret;

	if (pcbt_is_root()) {
		ret = pcbt_agent_start(x, &c);
		if (!ret)
			ret = call(x, ag_unshare, &q);
		if (!ret)
			ret = pcbt_userns_map(x->pid, "0 65534 1\n1 65533 1\n",
					      "0 65534 1\n1 65533 1\n");
	} else {
		ret = pcbt_agent_start(x, NULL);
		q.flags = 0;
		if (!ret)
			ret = call(x, ag_userns_self, &q);
	}
	if (ret == -EPERM || ret == -EINVAL || ret == -ENOSPC)
		return KSFT_SKIP;
	if (!ret && ipc) {
		q.flags = CLONE_NEWIPC;
		ret = call(x, ag_unshare, &q);
	}
	if (!ret)
		ret = call(x, ag_open, &q);
	if (!ret && call(x, ag_has_ipc_owner, &q) != 1)
		ret = -ECHILD;
	return ret;
}

#define USERNS(x, ipc) do {						\
	int __r = agent_in_userns((x), (ipc));				\
	if (__r == KSFT_SKIP)						\
		SKIP(return, "cannot make a user namespace here");	\
	ASSERT_EQ(0, __r);						\
} while (0)

TEST_F(ipcns, child_userns_root_has_no_rights_on_parent_topics)
{
	struct req q = named("", VIA_NEW, SCHEMA);
	struct pcb_topic_create tc = {
		.schema_id = SCHEMA,
		.max_msg_size = 64,
		.mode = 0600,
		.uid = 0,
		.gid = 0,
	};
	struct pcb_topic_info info;

	if (!pcbt_is_root())
		SKIP(return, "needs root to own a topic the agent does not");
	pcbt_name(tc.name, "ns-root");
	ASSERT_EQ(0, pcbt_create_raw(self->fd, &tc));
	USERNS(&self->x, false);
	pcbt_copy_name(q.name, tc.name);

	/* Looking up needs no right; the owner is unmapped there. */
	ASSERT_EQ(0, call(&self->x, ag_info, &q));
	EXPECT_EQ(65534U, q.info.uid);
	EXPECT_EQ(65534U, q.info.gid);
	/* Its CAP_IPC_OWNER does not show it our topic's traffic. */
	EXPECT_EQ(PCB_TOPIC_INFO_HIDDEN,
		  q.info.flags & PCB_TOPIC_INFO_HIDDEN);
	EXPECT_EQ(-EACCES, call(&self->x, ag_subscribe, &q));
	EXPECT_EQ(-EACCES, call(&self->x, ag_open_topic, &q));
	EXPECT_EQ(-EPERM, call(&self->x, ag_delete, &q));
	ASSERT_EQ(0, pcbt_info(self->fd, tc.name, &info));

	/* Its CAP_CHOWN does not count on our bus either. */
	pcbt_name(q.name, "ns-chown");
	q.mode = 0600;
	q.uid = 1;
	q.gid = PCB_OWNER_CALLER;
	EXPECT_EQ(-EPERM, call(&self->x, ag_create, &q));
	q.uid = PCB_OWNER_CALLER;
	q.gid = 1;
	EXPECT_EQ(-EPERM, call(&self->x, ag_create, &q));
	EXPECT_EQ(-ENOENT, pcbt_info(self->fd, q.name, &info));

	/* Its own topic is owned by its outer uid. */
	q.gid = PCB_OWNER_CALLER;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	ASSERT_EQ(0, call(&self->x, ag_info, &q));
	EXPECT_EQ(0U, q.info.uid);
	ASSERT_EQ(0, pcbt_info(self->fd, q.name, &info));
	EXPECT_EQ(65534U, info.uid);
	EXPECT_EQ(65534U, info.gid);
}

/* Root of a child user namespace: CAP_IPC_OWNER does not count here. */
TEST_F(ipcns, child_userns_root_not_owner_override_on_parent_bus)
{
	struct req q = named("", VIA_NEW, SCHEMA);

	USERNS(&self->x, false);
	pcbt_name(q.name, "ns-mode0");
	q.mode = 0;
	q.uid = q.gid = PCB_OWNER_CALLER;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	EXPECT_EQ(-EACCES, call(&self->x, ag_subscribe, &q));
	EXPECT_EQ(-EACCES, call(&self->x, ag_open_topic, &q));
	/* It owns the topic: deleting is its right. */
	EXPECT_EQ(0, call(&self->x, ag_delete, &q));
	/* Uids are in its namespace: one not mapped there is malformed. */
	q.uid = 2;
	EXPECT_EQ(-EINVAL, call(&self->x, ag_create, &q));
	q.uid = PCB_OWNER_CALLER;
	q.gid = 2;
	EXPECT_EQ(-EINVAL, call(&self->x, ag_create, &q));
}

/* With its own IPC namespace as well, its capabilities count there. */
TEST_F(ipcns, child_userns_root_is_owner_on_its_own_bus)
{
	struct req q = named("", VIA_NEW, SCHEMA);

	USERNS(&self->x, true);
	pcbt_name(q.name, "ns-own");
	q.mode = 0;
	q.uid = q.gid = PCB_OWNER_CALLER;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	EXPECT_EQ(0, call(&self->x, ag_subscribe, &q));
	EXPECT_EQ(0, call(&self->x, ag_open_topic, &q));
	ASSERT_EQ(0, call(&self->x, ag_info, &q));
	EXPECT_EQ(0U, q.info.uid);
	EXPECT_EQ(0U, q.info.gid);
	EXPECT_EQ(0, call(&self->x, ag_delete, &q));

	if (!pcbt_is_root())
		return;
	/* A topic of another mapped user: giving it away and reading it. */
	pcbt_name(q.name, "ns-other");
	q.uid = 1;
	q.gid = 1;
	ASSERT_EQ(0, call(&self->x, ag_create, &q));
	ASSERT_EQ(0, call(&self->x, ag_info, &q));
	EXPECT_EQ(1U, q.info.uid);
	EXPECT_EQ(1U, q.info.gid);
	EXPECT_EQ(0, call(&self->x, ag_subscribe, &q));
	EXPECT_EQ(0, call(&self->x, ag_open_topic, &q));
	EXPECT_EQ(0, call(&self->x, ag_delete, &q));
}

TEST_HARNESS_MAIN
