// SPDX-License-Identifier: GPL-2.0
/*
 * The publisher's identity in a record: "the publishing process (thread
 * group id) and its effective uid, taken by the kernel, as seen in the
 * publisher's own pid and user namespace".  A publisher in a new user and
 * pid namespace is uid 0 and pid 1 there, and the record says so.
 */
#include "pcb_util.h"

#include <sched.h>

#define SCHEMA		0x25

FIXTURE(ns) {
	int fd;
	char name[PCB_NAME_MAX];
	struct pcbt_ring ring;
};

FIXTURE_SETUP(ns)
{
	int fd;

	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "ns");
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, 64, 0666, NULL));
	fd = pcbt_ring_open(4096, &self->ring);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pcbt_subscribe(fd, self->name, SCHEMA, 0, NULL));
}

FIXTURE_TEARDOWN(ns)
{
	pcbt_ring_close(&self->ring);
	pcbt_cleanup();
	if (self->fd >= 0)
		close(self->fd);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t len = strlen(text);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

/* Become uid/gid 0 of a new user namespace, the outer ids mapped to 0. */
static int enter_userns(void)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	char map[64];

	if (unshare(CLONE_NEWUSER))
		return -errno;
	if (write_file("/proc/self/setgroups", "deny"))
		return -EIO;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)uid);
	if (write_file("/proc/self/uid_map", map))
		return -EIO;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned int)gid);
	if (write_file("/proc/self/gid_map", map))
		return -EIO;
	return 0;
}

struct pub_args {
	int fd;			/* inherited endpoint of the test */
	const char *name;
	bool new_pidns;
};

/* Publishes its own view of its pid, from wherever it runs. */
static int publish_self(const struct pub_args *a)
{
	__u32 ids[2] = { getpid(), geteuid() };
	__u32 h;
	int ret;

	ret = pcbt_open_topic(a->fd, a->name, SCHEMA, &h);
	if (!ret)
		ret = pcbt_publish(a->fd, h, ids, sizeof(ids), 0, 10 * PCBT_SEC,
				   NULL);
	return ret ? -ret : 0;
}

/*
 * Child: new user namespace, or with @new_pidns a new pid namespace (in a
 * new user namespace unless we are root: user namespaces cannot be made in
 * a chroot, as in the test VM), then publish.
 */
static int child(const struct pub_args *a)
{
	int status, ret = 0;
	pid_t pid;

	if (!a->new_pidns || !pcbt_is_root())
		ret = enter_userns();
	if (ret)
		return ret == -EPERM || ret == -EINVAL || ret == -ENOSPC ?
		       KSFT_SKIP : PCBT_CHILD_BROKEN;
	if (!a->new_pidns)
		return publish_self(a);
	if (unshare(CLONE_NEWPID))
		return PCBT_CHILD_BROKEN;
	/* The first child in the new pid namespace is its pid 1. */
	pid = fork();
	if (pid < 0)
		return PCBT_CHILD_BROKEN;
	if (!pid)
		_exit(publish_self(a));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return PCBT_CHILD_BROKEN;
	return WEXITSTATUS(status);
}

static int run_child(const struct pub_args *a)
{
	int status;
	pid_t pid;

	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid)
		_exit(child(a));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* @pid: the pid the publisher must have seen, or 0 for any. */
static void check_record(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ns) *self, __u32 pid, __u32 uid)
{
	const struct pcb_record *rec = pcbt_ring_peek(&self->ring);
	const __u32 *ids;

	ASSERT_NE(NULL, rec);
	ASSERT_EQ(8U, rec->payload_len);
	ids = (const void *)pcbt_payload(rec);
	/* What the publisher saw of itself ... */
	if (pid)
		EXPECT_EQ(pid, ids[0]);
	EXPECT_EQ(uid, ids[1]);
	/* ... is what the kernel wrote. */
	EXPECT_EQ(ids[0], rec->pid);
	EXPECT_EQ(ids[1], rec->uid);
	pcbt_ring_pop(&self->ring);
}

TEST_F(ns, user_namespace_uid)
{
	struct pub_args a = { self->fd, self->name, false };
	int ret = run_child(&a);

	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	check_record(_metadata, self, 0, 0);
}

TEST_F(ns, pid_namespace_pid)
{
	struct pub_args a = { self->fd, self->name, true };
	int ret = run_child(&a);

	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	/* uid 0: root, or root of the new user namespace. */
	check_record(_metadata, self, 1, 0);
}

TEST_HARNESS_MAIN
