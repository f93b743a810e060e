// SPDX-License-Identifier: GPL-2.0
/*
 * Topic permissions: owner, group and other bits (read = lossy subscribe
 * and the sight of the topic's traffic, read + execute = reliable
 * subscribe, write = publish), delete only by the owner, CAP_IPC_OWNER
 * overriding the mode, and topics created by unprivileged users.
 *
 * As root, each case forks a child that drops to uid/gid 65534 (with the
 * supplementary groups the case needs).  Run as another user, the cases
 * that need root skip and the unprivileged ones run in-process.
 */
#include "pcb_util.h"

#include <sys/fsuid.h>

#define SCHEMA		0x9e4
#define GROUP		4242
#define SKIP_OP		1000	/* do not try this operation */

FIXTURE(perm) {
	int fd;
	char name[PCB_NAME_MAX];
};

FIXTURE_SETUP(perm)
{
	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "perm");
}

FIXTURE_TEARDOWN(perm)
{
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

/* What a child tries, and the answers it expects (0 or -errno). */
struct ops {
	int fd;			/* the parent's endpoint, as a fallback */
	const char *name;
	int lossy;		/* subscribe, PCB_SUB_LOSSY */
	int reliable;		/* subscribe, reliable */
	int open;
	int del;
	bool publish;		/* publish our pid when open succeeds */
};

/* An endpoint with a ring for the child. */
static int child_endpoint(int inherited)
{
	struct pcbt_ring r;
	int fd = pcbt_child_fd(inherited);
	int ret = pcbt_ring_init(fd, 4096, &r);

	/* An inherited endpoint may have its ring already. */
	if (ret && ret != -EBUSY)
		return ret;
	return fd;
}

static int try_ops(void *arg)
{
	const struct ops *o = arg;
	struct pcb_topic_info info;
	__u32 h;
	int fd = child_endpoint(o->fd);

	PCBT_CHILD_EXPECT(1, fd >= 0);
	/*
	 * Looking a topic up needs no right on it; its traffic is shown to
	 * those who may read it (a lossy subscriber could count it anyway).
	 */
	PCBT_CHILD_EXPECT(0, pcbt_info(fd, o->name, &info));
	if (o->lossy != SKIP_OP) {
		bool hidden = o->lossy && info.uid != (__u32)geteuid();

		PCBT_CHILD_EXPECT(hidden ? PCB_TOPIC_INFO_HIDDEN : 0,
				  info.flags & PCB_TOPIC_INFO_HIDDEN);
	}
	if (o->lossy != SKIP_OP) {
		__u32 id = 0;

		PCBT_CHILD_EXPECT(o->lossy, pcbt_subscribe(fd, o->name, SCHEMA,
							   PCB_SUB_LOSSY, &id));
		/* Leave a shared (inherited) endpoint as it was. */
		if (!o->lossy)
			PCBT_CHILD_EXPECT(0, pcbt_unsubscribe(fd, id));
	}
	if (o->reliable != SKIP_OP) {
		__u32 id = 0;

		PCBT_CHILD_EXPECT(o->reliable, pcbt_subscribe(fd, o->name,
							      SCHEMA, 0, &id));
		if (!o->reliable)
			PCBT_CHILD_EXPECT(0, pcbt_unsubscribe(fd, id));
	}
	if (o->open != SKIP_OP) {
		int ret = pcbt_open_topic(fd, o->name, SCHEMA, &h);

		PCBT_CHILD_EXPECT(o->open, ret);
		if (!ret && o->publish) {
			__u32 pid = getpid();

			PCBT_CHILD_EXPECT(0, pcbt_publish(fd, h, &pid,
							  sizeof(pid), 0,
							  10 * PCBT_SEC, NULL));
		}
	}
	if (o->del != SKIP_OP)
		PCBT_CHILD_EXPECT(o->del, pcbt_delete(fd, o->name));
	return 0;
}

static int create_owned(int fd, const char *name, __u32 mode, __u32 uid,
			__u32 gid)
{
	struct pcb_topic_create tc = {
		.schema_id = SCHEMA,
		.max_msg_size = 64,
		.mode = mode,
		.uid = uid,
		.gid = gid,
	};

	pcbt_copy_name(tc.name, name);
	return pcbt_create_raw(fd, &tc);
}

static int as_nobody(struct ops *o, const gid_t *groups, int nr_groups,
		     gid_t gid)
{
	struct pcbt_creds c = {
		.uid = PCBT_NOBODY,
		.gid = gid,
		.nr_groups = nr_groups,
	};

	memcpy(c.groups, groups, nr_groups * sizeof(gid_t));
	return pcbt_run_as(&c, try_ops, o);
}

#define OPS(ls, rel, op, dl) {						\
	.fd = self->fd, .name = self->name,				\
	.lossy = (ls), .reliable = (rel), .open = (op), .del = (dl),	\
}

#define NEED_ROOT() do {						\
	if (!pcbt_is_root())						\
		SKIP(return, "needs root to act as another user");	\
} while (0)

TEST_F(perm, mode_0600_other_has_no_right)
{
	struct ops o = OPS(-EACCES, -EACCES, -EACCES, -EPERM);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0600, 0, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
	EXPECT_EQ(0LL, pcbt_nr_subs(self->fd, self->name));
}

/* Read without execute: a lossy subscription, never a reliable one. */
TEST_F(perm, mode_0644_other_may_subscribe_lossy_only)
{
	struct ops o = OPS(0, -EACCES, -EACCES, -EPERM);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0644, 0, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
}

/* Read and execute: reliable too. */
TEST_F(perm, mode_0645_other_may_subscribe_reliably)
{
	struct ops o = OPS(0, 0, -EACCES, -EPERM);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0645, 0, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
}

TEST_F(perm, mode_0622_other_may_publish)
{
	struct ops o = OPS(-EACCES, -EACCES, 0, -EPERM);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0622, 0, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
}

TEST_F(perm, mode_0666_both_and_record_names_publisher)
{
	struct ops o = OPS(0, -EACCES, 0, -EPERM);
	const struct pcb_record *rec;
	struct pcbt_ring r;
	int fd;

	NEED_ROOT();
	o.publish = true;
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0666, 0, 0));
	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));

	rec = pcbt_ring_peek(&r);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ((__u32)PCBT_NOBODY, rec->uid);
	EXPECT_EQ(sizeof(__u32), rec->payload_len);
	EXPECT_EQ(*(const __u32 *)pcbt_payload(rec), rec->pid);
	EXPECT_NE((__u32)getpid(), rec->pid);
	pcbt_ring_close(&r);
}

TEST_F(perm, mode_0777_other_may_do_all_but_delete)
{
	struct ops o = OPS(0, 0, 0, -EPERM);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0777, 0, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
}

/* Execute without read grants nothing, with write only publishing. */
TEST_F(perm, execute_bits_alone_grant_nothing)
{
	struct ops o = OPS(-EACCES, -EACCES, -EACCES, SKIP_OP);
	struct ops w = OPS(-EACCES, -EACCES, 0, SKIP_OP);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0111, 0, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
	ASSERT_EQ(0, pcbt_delete(self->fd, self->name));
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0333, 0, 0));
	ASSERT_EQ(0, as_nobody(&w, NULL, 0, PCBT_NOBODY));
}

TEST_F(perm, group_bits)
{
	struct ops member = OPS(0, -EACCES, -EACCES, -EPERM);
	struct ops stranger = OPS(-EACCES, -EACCES, -EACCES, SKIP_OP);
	const gid_t group = GROUP;

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0640, 0, GROUP));
	/* A supplementary group counts, ... */
	EXPECT_EQ(0, as_nobody(&member, &group, 1, PCBT_NOBODY));
	/* ... so does the primary one, ... */
	EXPECT_EQ(0, as_nobody(&member, NULL, 0, GROUP));
	/* ... and without it the other bits apply. */
	EXPECT_EQ(0, as_nobody(&stranger, NULL, 0, PCBT_NOBODY));
}

/* The group's execute bit is the group's, not the other users'. */
TEST_F(perm, group_execute)
{
	struct ops member = OPS(0, 0, -EACCES, SKIP_OP);
	struct ops stranger = OPS(0, -EACCES, -EACCES, SKIP_OP);
	const gid_t group = GROUP;

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0654, 0, GROUP));
	EXPECT_EQ(0, as_nobody(&member, &group, 1, PCBT_NOBODY));
	EXPECT_EQ(0, as_nobody(&member, NULL, 0, GROUP));
	EXPECT_EQ(0, as_nobody(&stranger, NULL, 0, PCBT_NOBODY));
}

TEST_F(perm, group_bits_take_precedence_over_other)
{
	struct ops member = OPS(-EACCES, -EACCES, -EACCES, SKIP_OP);
	struct ops stranger = OPS(0, 0, 0, SKIP_OP);
	const gid_t group = GROUP;

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0607, 0, GROUP));
	EXPECT_EQ(0, as_nobody(&member, &group, 1, PCBT_NOBODY));
	EXPECT_EQ(0, as_nobody(&stranger, NULL, 0, PCBT_NOBODY));
}

TEST_F(perm, group_write)
{
	struct ops member = OPS(0, -EACCES, 0, SKIP_OP);
	struct ops member_x = OPS(0, 0, 0, SKIP_OP);
	const gid_t groups[] = { 17, GROUP };

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0060, 0, GROUP));
	EXPECT_EQ(0, as_nobody(&member, groups, 2, PCBT_NOBODY));
	ASSERT_EQ(0, pcbt_delete(self->fd, self->name));
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0070, 0, GROUP));
	EXPECT_EQ(0, as_nobody(&member_x, groups, 2, PCBT_NOBODY));
}

TEST_F(perm, owner_bits_take_precedence)
{
	struct ops o = OPS(-EACCES, -EACCES, -EACCES, SKIP_OP);

	NEED_ROOT();
	/* Everybody but the owner may do everything. */
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0077, PCBT_NOBODY,
				  PCBT_NOBODY));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
}

/* The owner too needs execute for a reliable subscription. */
TEST_F(perm, owner_read_only_then_deletes)
{
	struct ops o = OPS(0, -EACCES, -EACCES, 0);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0400, PCBT_NOBODY, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
	EXPECT_EQ(-ENOENT, pcbt_nr_subs(self->fd, self->name));
}

TEST_F(perm, owner_read_execute_subscribes_reliably)
{
	struct ops o = OPS(0, 0, -EACCES, SKIP_OP);

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0500, PCBT_NOBODY, 0));
	ASSERT_EQ(0, as_nobody(&o, NULL, 0, PCBT_NOBODY));
}

TEST_F(perm, cap_ipc_owner_overrides_mode)
{
	struct pcb_topic_info info;
	struct pcbt_ring r;
	int fd;

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0000, PCBT_NOBODY,
				  PCBT_NOBODY));
	/* It sees the traffic, ... */
	ASSERT_EQ(0, pcbt_info(self->fd, self->name, &info));
	EXPECT_EQ(0U, info.flags & PCB_TOPIC_INFO_HIDDEN);
	/* ... subscribes reliably without execute, publishes, deletes. */
	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));
	EXPECT_EQ(0, pcbt_open_topic(self->fd, self->name, SCHEMA, NULL));
	EXPECT_EQ(0, pcbt_delete(self->fd, self->name));
	pcbt_ring_close(&r);
}

struct fsuid_args {
	int fd;
	const char *name;
};

/* Owner checks use the fsuid, and records carry the effective uid. */
static int as_fsuid(void *arg)
{
	const struct fsuid_args *a = arg;
	__u32 h;
	int fd;

	if (setgroups(0, NULL) || setresgid(PCBT_NOBODY, PCBT_NOBODY,
					   PCBT_NOBODY))
		return PCBT_CHILD_BROKEN;
	if (setresuid(PCBT_NOBODY, PCBT_NOBODY - 1, PCBT_NOBODY))
		return PCBT_CHILD_BROKEN;
	setfsuid(PCBT_NOBODY);
	if (setfsuid(-1) != PCBT_NOBODY)
		return PCBT_CHILD_BROKEN;
	fd = child_endpoint(a->fd);
	PCBT_CHILD_EXPECT(1, fd >= 0);
	PCBT_CHILD_EXPECT(0, pcbt_subscribe(fd, a->name, SCHEMA, 0, NULL));
	PCBT_CHILD_EXPECT(0, pcbt_open_topic(fd, a->name, SCHEMA, &h));
	PCBT_CHILD_EXPECT(0, pcbt_publish(fd, h, "f", 1, 0, 10 * PCBT_SEC,
					  NULL));
	return 0;
}

TEST_F(perm, owner_is_fsuid)
{
	struct fsuid_args a = { self->fd, self->name };
	const struct pcb_record *rec;
	struct pcbt_ring r;
	int fd, status;
	pid_t pid;

	NEED_ROOT();
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0700, PCBT_NOBODY,
				  PCBT_NOBODY));
	fd = pcbt_ring_open(4096, &r);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));

	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(as_fsuid(&a));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	rec = pcbt_ring_peek(&r);
	ASSERT_NE(NULL, rec);
	EXPECT_EQ((__u32)PCBT_NOBODY - 1, rec->uid);
	EXPECT_EQ((__u32)pid, rec->pid);
	pcbt_ring_close(&r);
}

/*
 * An unprivileged user: creates topics it owns, cannot give them away,
 * and is bound by its own topics' owner bits.
 */
static int unprivileged(void *arg)
{
	const struct ops *o = arg;
	struct pcb_topic_info info;
	char name[PCB_NAME_MAX + 8];
	int fd = child_endpoint(o->fd);
	__u32 h;

	PCBT_CHILD_EXPECT(1, fd >= 0);
	PCBT_CHILD_EXPECT(0, create_owned(fd, o->name, 0200, PCB_OWNER_CALLER,
					  PCB_OWNER_CALLER));
	PCBT_CHILD_EXPECT(0, pcbt_info(fd, o->name, &info));
	PCBT_CHILD_EXPECT(geteuid(), info.uid);
	PCBT_CHILD_EXPECT(getegid(), info.gid);
	PCBT_CHILD_EXPECT(0200, info.mode);
	PCBT_CHILD_EXPECT(-EACCES, pcbt_subscribe(fd, o->name, SCHEMA, 0,
						  NULL));
	PCBT_CHILD_EXPECT(0, pcbt_open_topic(fd, o->name, SCHEMA, &h));
	PCBT_CHILD_EXPECT(0, pcbt_delete(fd, o->name));

	/* Its own topic: read lets it listen, lossy only. */
	PCBT_CHILD_EXPECT(0, create_owned(fd, o->name, 0400, PCB_OWNER_CALLER,
					  PCB_OWNER_CALLER));
	PCBT_CHILD_EXPECT(-EACCES, pcbt_subscribe(fd, o->name, SCHEMA, 0,
						  NULL));
	PCBT_CHILD_EXPECT(0, pcbt_subscribe(fd, o->name, SCHEMA, PCB_SUB_LOSSY,
					    NULL));
	PCBT_CHILD_EXPECT(-EACCES, pcbt_open_topic(fd, o->name, SCHEMA, &h));
	PCBT_CHILD_EXPECT(0, pcbt_delete(fd, o->name));

	/* Read and execute: reliably. */
	PCBT_CHILD_EXPECT(0, create_owned(fd, o->name, 0500, PCB_OWNER_CALLER,
					  PCB_OWNER_CALLER));
	PCBT_CHILD_EXPECT(0, pcbt_subscribe(fd, o->name, SCHEMA, 0, NULL));
	PCBT_CHILD_EXPECT(-EACCES, pcbt_open_topic(fd, o->name, SCHEMA, &h));
	PCBT_CHILD_EXPECT(0, pcbt_delete(fd, o->name));

	/* Giving a topic to someone else takes CAP_CHOWN. */
	snprintf(name, sizeof(name), "%s-x", o->name);
	PCBT_CHILD_EXPECT(-EPERM, create_owned(fd, name, 0600, 0,
					       PCB_OWNER_CALLER));
	PCBT_CHILD_EXPECT(-EPERM, create_owned(fd, name, 0600,
					       PCB_OWNER_CALLER, 0));
	PCBT_CHILD_EXPECT(-ENOENT, pcbt_info(fd, name, &info));
	return 0;
}

TEST_F(perm, unprivileged_user_owns_its_topics)
{
	struct ops o = { .fd = self->fd, .name = self->name };
	char extra[PCB_NAME_MAX + 8];
	int ret;

	snprintf(extra, sizeof(extra), "%s-x", self->name);
	pcbt_remember(extra);
	if (pcbt_is_root())
		ret = pcbt_run_as_nobody(unprivileged, &o);
	else
		ret = unprivileged(&o);
	ASSERT_EQ(0, ret);
}

struct group_args {
	int fd;
	const char *name;
};

/*
 * As chown(2): a user may name one of its own groups as a topic's group.
 * (The header says "any other owner than the caller needs CAP_CHOWN";
 * the caller's supplementary groups are read as the caller's.)
 */
static int own_group(void *arg)
{
	const struct group_args *a = arg;
	struct pcb_topic_info info;
	char other[PCB_NAME_MAX + 8];
	int fd = pcbt_child_fd(a->fd);

	PCBT_CHILD_EXPECT(0, create_owned(fd, a->name, 0660, PCB_OWNER_CALLER,
					  GROUP));
	PCBT_CHILD_EXPECT(0, pcbt_info(fd, a->name, &info));
	PCBT_CHILD_EXPECT(GROUP, info.gid);
	PCBT_CHILD_EXPECT((__u32)geteuid(), info.uid);
	snprintf(other, sizeof(other), "%s-x", a->name);
	PCBT_CHILD_EXPECT(-EPERM, create_owned(fd, other, 0660,
					       PCB_OWNER_CALLER, GROUP + 1));
	return 0;
}

TEST_F(perm, supplementary_group_as_topic_group)
{
	struct group_args a = { self->fd, self->name };
	struct pcbt_creds c = {
		.uid = PCBT_NOBODY,
		.gid = PCBT_NOBODY,
		.nr_groups = 1,
		.groups = { GROUP },
	};
	char other[PCB_NAME_MAX + 8];

	NEED_ROOT();
	snprintf(other, sizeof(other), "%s-x", self->name);
	pcbt_remember(other);
	ASSERT_EQ(0, pcbt_run_as(&c, own_group, &a));
}

TEST_F(perm, unprivileged_user_cannot_override)
{
	struct ops o = OPS(-EACCES, -EACCES, -EACCES, -EPERM);
	int ret;

	/* As root, a topic of root's; else we cannot make one for others. */
	if (!pcbt_is_root())
		SKIP(return, "needs root to make a topic of another user");
	ASSERT_EQ(0, create_owned(self->fd, self->name, 0000, 0, 0));
	ret = as_nobody(&o, NULL, 0, PCBT_NOBODY);
	ASSERT_EQ(0, ret);
}

TEST_HARNESS_MAIN
