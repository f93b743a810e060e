// SPDX-License-Identifier: GPL-2.0
/*
 * The publisher's identity in a record (<linux/pcb.h>, "Namespaces"):
 * its effective uid and its pid (thread group id) as the ring's owner
 * sees them, as SCM_CREDENTIALS does for a socket's receiver: in the user
 * and pid namespaces of the process that set the ring up, fixed then;
 * overflowuid (65534) for a uid not mapped there, pid 0 for a publisher
 * not visible there.  A publisher cannot fake them by making namespaces
 * (root of a child user namespace reads as its outer uid to the rings of
 * the parent's, pid 1 of a child pid namespace as its outer pid), and
 * whoever opens a bus first decides nothing: two rings on one bus read
 * the same message each in its own owner's terms.
 *
 * The test's ring is set up in the test's namespaces, so the pids fork()
 * returns here are the ones its records carry.  Publishers put what they
 * see of themselves in the payload, so that each case shows both views.
 *
 * Making a pid namespace needs root, or a user namespace, which cannot be
 * made in a chroot: those cases skip then.
 */
#include "pcb_util.h"

#define SCHEMA		0x25
#define LEN		64

FIXTURE(ns) {
	int fd;
	char name[PCB_NAME_MAX];
	struct pcbt_ring ring;
};

/* What a publisher saw of itself, and what a reader in a child found. */
struct ids {
	__u32 pid;
	__u32 uid;
};

#define NR_RECS		4

struct shared {
	__u32 outer_pid;		/* of the publisher, from fork() */
	int nr;				/* records the child read */
	struct {
		struct ids seen;	/* the payload */
		struct ids rec;		/* the record */
	} recs[NR_RECS];
};

FIXTURE_SETUP(ns)
{
	int fd;

	self->ring.fd = -1;
	PCBT_OPEN(self->fd);
	pcbt_name(self->name, "ns");
	/* Others publish, and listen (lossy); we subscribe reliably. */
	ASSERT_EQ(0, pcbt_create(self->fd, self->name, SCHEMA, LEN, 0766,
				 NULL));
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

static struct shared *shared_page(void)
{
	void *p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Publishes {getpid(), geteuid()} to @name through @fd: 0 or -errno. */
static int publish_self(int fd, const char *name)
{
	struct ids me = { getpid(), geteuid() };
	__u32 h;
	int ret;

	ret = pcbt_open_topic(fd, name, SCHEMA, &h);
	if (!ret)
		ret = pcbt_publish(fd, h, &me, sizeof(me), 0, 10 * PCBT_SEC,
				   NULL);
	return ret;
}

/* A child's exit status for a namespace it could not make. */
static int ns_status(int err)
{
	return err == -EPERM || err == -EINVAL || err == -ENOSPC ?
	       KSFT_SKIP : PCBT_CHILD_BROKEN;
}

/* Runs @fn(@arg) in a child; its exit status, or -1. */
static int run_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid)
		_exit(fn(arg) & 0xff);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return PCBT_CHILD_BROKEN;
	return WEXITSTATUS(status);
}

/* The next record of the test's ring: both views of the publisher. */
static void next_record(struct __test_metadata *_metadata,
			FIXTURE_DATA(ns) *self, struct ids *seen,
			struct ids *rec_ids)
{
	const struct pcb_record *rec = pcbt_ring_peek(&self->ring);

	ASSERT_NE(NULL, rec);
	ASSERT_EQ(sizeof(*seen), rec->payload_len);
	memcpy(seen, pcbt_payload(rec), sizeof(*seen));
	rec_ids->pid = rec->pid;
	rec_ids->uid = rec->uid;
	pcbt_ring_pop(&self->ring);
}

/* Reads @n records of ring @r into @sh. */
static int read_records(struct shared *sh, struct pcbt_ring *r, int n)
{
	int i;

	for (i = 0; i < n && i < NR_RECS; i++) {
		const struct pcb_record *rec = pcbt_ring_next(r, 10 * PCBT_SEC);

		if (!rec || rec->payload_len != sizeof(struct ids))
			return PCBT_CHILD_BROKEN;
		memcpy(&sh->recs[i].seen, pcbt_payload(rec),
		       sizeof(struct ids));
		sh->recs[i].rec.pid = rec->pid;
		sh->recs[i].rec.uid = rec->uid;
		sh->nr = i + 1;
		pcbt_ring_pop(r);
	}
	pcbt_ring_release(r);
	return 0;
}

struct args {
	FIXTURE_DATA(ns) *self;
	struct shared *sh;
};

/*
 * Root of a new user namespace (0 mapped to the outer uid; as root, after
 * dropping to 65534 so that the outer uid is not 0 itself) publishes on
 * the initial bus.
 */
static int userns_publisher(void *arg)
{
	struct args *a = arg;
	struct pcbt_creds nobody = { .uid = PCBT_NOBODY, .gid = PCBT_NOBODY };
	int ret, fd;

	if (pcbt_is_root() && pcbt_drop_to(&nobody))
		return PCBT_CHILD_BROKEN;
	ret = pcbt_userns_self(0);
	if (ret)
		return ns_status(ret);
	if (geteuid() != 0)
		return PCBT_CHILD_BROKEN;
	/* An endpoint of its own: the same bus, as the IPC namespace is. */
	fd = pcbt_child_fd(a->self->fd);
	return publish_self(fd, a->self->name) ? PCBT_CHILD_BROKEN : 0;
}

TEST_F(ns, user_namespace_root_is_its_outer_uid)
{
	struct args a = { self, NULL };
	__u32 outer = pcbt_is_root() ? PCBT_NOBODY : geteuid();
	struct ids seen, rec;
	int ret = run_child(userns_publisher, &a);

	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	next_record(_metadata, self, &seen, &rec);
	EXPECT_EQ(0U, seen.uid);
	EXPECT_EQ(outer, rec.uid);
	/* Same pid namespace: the same pid. */
	EXPECT_EQ(seen.pid, rec.pid);
}

/*
 * A ring set up in a child user namespace, on the initial bus: root of
 * that namespace (0 mapped to the outer uid; as root, after dropping to
 * 65534) has two rings, A set up before it made the namespace and B
 * after, both subscribed from inside it.  The test publishes, then the
 * child.  B reads the child as uid 0 and the test as its uid mapped into
 * the child's namespace (overflowuid when unmapped, as root is); A, set
 * up outside, reads both as the test's ring does: a ring's view is fixed
 * when it is set up.
 */
struct userns_ring {
	FIXTURE_DATA(ns) *self;
	struct shared *a, *b;
	int ready[2];			/* child -> test: subscribed */
	int go[2];			/* test -> child: the test published */
};

static int userns_ring_child(void *arg)
{
	struct userns_ring *u = arg;
	struct pcbt_creds nobody = { .uid = PCBT_NOBODY, .gid = PCBT_NOBODY };
	struct pcbt_ring a, b;
	char byte = 0;
	int fa, fb, ret;

	if (pcbt_is_root() && pcbt_drop_to(&nobody))
		return PCBT_CHILD_BROKEN;
	fa = pcbt_ring_open(4096, &a);
	if (fa < 0)
		return PCBT_CHILD_BROKEN;
	ret = pcbt_userns_self(0);
	if (ret)
		return ns_status(ret);
	fb = pcbt_ring_open(4096, &b);
	/* The topic is the test's: others may listen, lossy. */
	if (fb < 0 ||
	    pcbt_subscribe(fa, u->self->name, SCHEMA, PCB_SUB_LOSSY, NULL) ||
	    pcbt_subscribe(fb, u->self->name, SCHEMA, PCB_SUB_LOSSY, NULL))
		return PCBT_CHILD_BROKEN;
	if (write(u->ready[1], &byte, 1) != 1 ||
	    read(u->go[0], &byte, 1) != 1)
		return PCBT_CHILD_BROKEN;
	u->a->outer_pid = getpid();
	if (publish_self(fb, u->self->name))
		return PCBT_CHILD_BROKEN;
	ret = read_records(u->a, &a, 2);
	return ret ? ret : read_records(u->b, &b, 2);
}

static int userns_ring_run(void *arg)
{
	struct userns_ring *u = arg;
	char byte = 0;
	pid_t pid;
	int ret;

	pid = fork();
	if (pid < 0)
		return PCBT_CHILD_BROKEN;
	if (!pid)
		_exit(userns_ring_child(u) & 0xff);
	/* The child's status says why it did not get ready. */
	if (read(u->ready[0], &byte, 1) != 1)
		return wait_child(pid);
	ret = publish_self(u->self->fd, u->self->name);
	if (write(u->go[1], &byte, 1) != 1 || ret)
		ret = PCBT_CHILD_BROKEN;
	return wait_child(pid) ?: ret;
}

TEST_F(ns, uid_as_seen_by_the_ring_owner)
{
	struct userns_ring u = {
		.self = self, .a = shared_page(), .b = shared_page(),
	};
	/* The child's outer uid, and the test's uid as the child sees it. */
	__u32 outer = pcbt_is_root() ? PCBT_NOBODY : geteuid();
	__u32 test_inside = pcbt_is_root() ? PCBT_NOBODY : 0;
	struct ids seen, rec;
	int ret;

	ASSERT_NE(NULL, u.a);
	ASSERT_NE(NULL, u.b);
	ASSERT_EQ(0, pipe(u.ready));
	ASSERT_EQ(0, pipe(u.go));
	ret = userns_ring_run(&u);
	close(u.ready[1]);
	close(u.go[0]);
	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(2, u.a->nr);
	ASSERT_EQ(2, u.b->nr);

	/* The test's ring: its own uid, then the child's outer one. */
	next_record(_metadata, self, &seen, &rec);
	EXPECT_EQ(geteuid(), rec.uid);
	EXPECT_EQ((__u32)getpid(), rec.pid);
	next_record(_metadata, self, &seen, &rec);
	EXPECT_EQ(0U, seen.uid);
	EXPECT_EQ(outer, rec.uid);
	EXPECT_EQ(u.a->outer_pid, rec.pid);

	/* Ring B, set up inside: the child is 0 there. */
	EXPECT_EQ(test_inside, u.b->recs[0].rec.uid);
	EXPECT_EQ(0U, u.b->recs[1].rec.uid);
	/* Ring A, set up outside, sees what the test's ring sees. */
	EXPECT_EQ(geteuid(), u.a->recs[0].rec.uid);
	EXPECT_EQ(outer, u.a->recs[1].rec.uid);
	/* One pid namespace: the same pids everywhere. */
	EXPECT_EQ((__u32)getpid(), u.b->recs[0].rec.pid);
	EXPECT_EQ(u.a->outer_pid, u.b->recs[1].rec.pid);
	munmap(u.a, sizeof(*u.a));
	munmap(u.b, sizeof(*u.b));
}

/*
 * A new pid namespace (with a user namespace unless root); its first
 * child, pid 1 there, publishes on the initial bus.
 */
static int pidns_publisher(void *arg)
{
	struct args *a = arg;
	int ret = pcbt_is_root() ? (unshare(CLONE_NEWPID) ? -errno : 0) :
		  pcbt_userns_self(CLONE_NEWPID);
	pid_t pid;

	if (ret)
		return ns_status(ret);
	pid = fork();
	if (pid < 0)
		return PCBT_CHILD_BROKEN;
	if (!pid)
		_exit(publish_self(a->self->fd, a->self->name) ?
		      PCBT_CHILD_BROKEN : 0);
	/* fork() gave the pid in our pid namespace: the test's. */
	a->sh->outer_pid = pid;
	return wait_child(pid);
}

TEST_F(ns, pid_namespace_publisher_has_its_outer_pid)
{
	struct args a = { self, shared_page() };
	struct ids seen, rec;
	int ret;

	ASSERT_NE(NULL, a.sh);
	ret = run_child(pidns_publisher, &a);
	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	next_record(_metadata, self, &seen, &rec);
	EXPECT_EQ(1U, seen.pid);
	EXPECT_NE(0U, a.sh->outer_pid);
	EXPECT_EQ(a.sh->outer_pid, rec.pid);
	/* Root of the user namespace, if any, is the test's uid outside. */
	EXPECT_EQ(geteuid(), rec.uid);
	munmap(a.sh, sizeof(*a.sh));
}

/*
 * Two rings on one bus in two pid namespaces: in a new IPC namespace (and
 * user namespace unless root), the child C forks G, pid 1 of a new pid
 * namespace, which opens the bus first and sets up a ring; then C sets up
 * one.  Both read what is published by C, by G's child H and by G.  G's
 * ring sees G as pid 1, H as H sees itself, and C, which G's pid
 * namespace cannot see, as pid 0; C's ring sees C and G with the pids of
 * C's namespace, although G opened the bus first.  Both rings' owners
 * are uid 0 of the user namespace the publishers are in.
 */
struct own_bus {
	struct shared *sh;		/* G's ring */
	struct shared *sh2;		/* C's ring */
	char name[PCB_NAME_MAX];
	__u32 g_pid;			/* G, as C sees it */
	int ready[2];			/* G -> C: the bus is open */
	int done[2];			/* C -> G: C has published */
};

/* G: pid 1 of the new pid namespace, first on the new bus. */
static int first_opener(struct own_bus *b)
{
	struct pcbt_ring r;
	char byte = 0;
	pid_t h;
	int fd, ret;

	fd = pcbt_ring_open(4096, &r);
	if (fd < 0)
		return PCBT_CHILD_BROKEN;
	if (pcbt_create(fd, b->name, SCHEMA, LEN, 0700, NULL) ||
	    pcbt_subscribe(fd, b->name, SCHEMA, 0, NULL))
		return PCBT_CHILD_BROKEN;
	/* C publishes first, ... */
	if (write(b->ready[1], &byte, 1) != 1 ||
	    read(b->done[0], &byte, 1) != 1)
		return PCBT_CHILD_BROKEN;
	/* ... then a child of ours, then we. */
	h = fork();
	if (h < 0)
		return PCBT_CHILD_BROKEN;
	if (!h)
		_exit(publish_self(fd, b->name) ? PCBT_CHILD_BROKEN : 0);
	ret = wait_child(h);
	if (ret)
		return ret;
	if (publish_self(fd, b->name))
		return PCBT_CHILD_BROKEN;
	return read_records(b->sh, &r, 3);
}

static int own_bus_child(void *arg)
{
	struct own_bus *b = arg;
	int flags = CLONE_NEWPID | CLONE_NEWIPC;
	int ret = pcbt_is_root() ? (unshare(flags) ? -errno : 0) :
		  pcbt_userns_self(flags);
	struct pcbt_ring r;
	char byte;
	pid_t g;
	int fd;

	if (ret)
		return ns_status(ret);
	g = fork();
	if (g < 0)
		return PCBT_CHILD_BROKEN;
	if (!g)
		_exit(first_opener(b));
	b->g_pid = g;
	/* C: in the new IPC namespace, outside the new pid namespace. */
	if (read(b->ready[0], &byte, 1) != 1)
		return PCBT_CHILD_BROKEN;
	b->sh->outer_pid = getpid();
	/* Its ring, on the bus G opened first. */
	fd = pcbt_ring_open(4096, &r);
	if (fd < 0 || pcbt_subscribe(fd, b->name, SCHEMA, 0, NULL) ||
	    publish_self(fd, b->name))
		return PCBT_CHILD_BROKEN;
	if (write(b->done[1], &byte, 1) != 1)
		return PCBT_CHILD_BROKEN;
	ret = wait_child(g);
	return ret ? ret : read_records(b->sh2, &r, 3);
}

TEST_F(ns, pid_as_seen_by_each_ring_owner)
{
	struct own_bus *b;
	int ret, i;

	/* Shared: C writes G's pid into it. */
	b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, b);
	b->sh = shared_page();
	b->sh2 = shared_page();
	ASSERT_NE(NULL, b->sh);
	ASSERT_NE(NULL, b->sh2);
	ASSERT_EQ(0, pipe(b->ready));
	ASSERT_EQ(0, pipe(b->done));
	pcbt_name(b->name, "ns-own");
	ret = run_child(own_bus_child, b);
	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(3, b->sh->nr);
	ASSERT_EQ(3, b->sh2->nr);

	/* G's ring.  C: not visible in G's pid namespace. */
	EXPECT_EQ(b->sh->outer_pid, b->sh->recs[0].seen.pid);
	EXPECT_EQ(0U, b->sh->recs[0].rec.pid);
	/* H: its pid in G's namespace, which it sees too. */
	EXPECT_LT(1U, b->sh->recs[1].seen.pid);
	EXPECT_EQ(b->sh->recs[1].seen.pid, b->sh->recs[1].rec.pid);
	/* G itself. */
	EXPECT_EQ(1U, b->sh->recs[2].seen.pid);
	EXPECT_EQ(1U, b->sh->recs[2].rec.pid);

	/* C's ring: the same messages, C's view, whoever opened first. */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(b->sh->recs[i].seen.pid, b->sh2->recs[i].seen.pid);
	EXPECT_EQ(b->sh->outer_pid, b->sh2->recs[0].rec.pid);
	EXPECT_NE(0U, b->sh2->recs[1].rec.pid);
	EXPECT_NE(b->sh->recs[1].seen.pid, b->sh2->recs[1].rec.pid);
	EXPECT_NE(0U, b->g_pid);
	EXPECT_EQ(b->g_pid, b->sh2->recs[2].rec.pid);

	/* Both owners are uid 0 of the publishers' user namespace. */
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0U, b->sh->recs[i].seen.uid);
		EXPECT_EQ(0U, b->sh->recs[i].rec.uid);
		EXPECT_EQ(0U, b->sh2->recs[i].rec.uid);
	}
	/* Nothing of it reached the initial bus. */
	EXPECT_EQ(NULL, pcbt_ring_peek(&self->ring));
	munmap(b->sh, sizeof(*b->sh));
	munmap(b->sh2, sizeof(*b->sh2));
	munmap(b, sizeof(*b));
}

/*
 * In a new user and IPC namespace, with its ring set up there: its root
 * publishes as uid 0 to it, unlike to the test's ring on the initial bus
 * (user_namespace_root_is_its_outer_uid).
 */
struct own_userns {
	struct shared *sh;
	char name[PCB_NAME_MAX];
};

static int own_userns_child(void *arg)
{
	struct own_userns *o = arg;
	struct pcbt_creds nobody = { .uid = PCBT_NOBODY, .gid = PCBT_NOBODY };
	struct pcbt_ring r;
	int ret, fd;

	if (pcbt_is_root() && pcbt_drop_to(&nobody))
		return PCBT_CHILD_BROKEN;
	ret = pcbt_userns_self(CLONE_NEWIPC);
	if (ret)
		return ns_status(ret);
	fd = pcbt_ring_open(4096, &r);
	if (fd < 0 || pcbt_create(fd, o->name, SCHEMA, LEN, 0700, NULL) ||
	    pcbt_subscribe(fd, o->name, SCHEMA, 0, NULL) ||
	    publish_self(fd, o->name))
		return PCBT_CHILD_BROKEN;
	o->sh->outer_pid = getpid();
	return read_records(o->sh, &r, 1);
}

TEST_F(ns, own_user_and_ipc_namespace_uid_is_inner)
{
	struct own_userns o = { .sh = shared_page() };
	int ret;

	ASSERT_NE(NULL, o.sh);
	pcbt_name(o.name, "ns-user");
	ret = run_child(own_userns_child, &o);
	if (ret == KSFT_SKIP)
		SKIP(return, "cannot create a user namespace here");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(1, o.sh->nr);
	EXPECT_EQ(0U, o.sh->recs[0].seen.uid);
	EXPECT_EQ(0U, o.sh->recs[0].rec.uid);
	/* The ring's owner is the publisher: the same pid. */
	EXPECT_EQ(o.sh->outer_pid, o.sh->recs[0].rec.pid);
	munmap(o.sh, sizeof(*o.sh));
}

TEST_HARNESS_MAIN
